import QuiverCore
import QuiverQUIC
import X509

/// One QUIC connection of a listener or client: the engine, which only its loop touches
/// (``Driver/perform(_:)``), and what the application has not consumed yet, under the
/// connection's own lock (``monitor``), where callers on other threads wait.
final class QUICSession: Session, MeteredSession, @unchecked Sendable {
    // @unchecked: the engine belongs to the driver's owner; everything else mutable is guarded
    // by `monitor`.
    let monitor = Monitor()
    let driver: Driver
    let pollLinks = PollLinks()
    private let connection: QUICConnection
    /// The engine, for its owner only (checked in debug builds).
    private var engine: QUICConnection {
        assert(driver.isOwnerHere, "a QUIC engine touched off its loop")
        return connection
    }
    /// Strong: a connection may outlive its listener's other references. The core drops its
    /// sessions when it closes, which breaks the cycle.
    private let core: QUICCore
    private let policy: IncomingStreamPolicy
    private let sendBufferLimit: Int

    private var handshakeComplete = false
    private var closeInfo: CloseInfo?
    private var defaultStream: StreamID?
    /// Set by ``disableDefaultStreamLocked()``: every peer stream is offered to accept and the
    /// default stream cannot be used.
    private var defaultStreamDisabled = false
    private var incoming: [StreamID] = []
    private var readable: Set<StreamID> = []
    private var finishedReading: Set<StreamID> = []
    /// Streams we finished (a repeated finish is a no-op, not another command).
    private var finishedSending: Set<StreamID> = []
    private var datagrams: [[UInt8]] = []
    /// Streams with a writer blocked on a full send buffer.
    private var roomWaiters: Set<StreamID> = []
    /// Whether a blocked writer waits for its stream to open (the peer's stream limit).
    private var writerWaitsForStream = false
    /// Client: ``finishLocked(_:)`` on the default stream before the server allowed it to be
    /// opened (its stream limit arrives with the handshake); applied once it opens.
    private var defaultFinishPending = false
    /// Set by commands that give the engine something to send; see ``takeServiceRequestLocked()``.
    private var serviceRequested = false
    /// Whether the accept queue already has this session.
    var isQueuedForAccept = false
    /// The connection in the listener's metrics (its core's, lock held).
    var metricsAccount = ListenerMetrics.Account()
    /// The first Destination Connection ID the client chose (RFC 9000 §7.3), which names the
    /// connection in logs (as in qlog) whatever connection IDs it uses later.
    let originalDestinationConnectionID: ConnectionID
    /// Client: the newest ticket for resuming a later connection.
    @OutOfLine private(set) var resumptionTicketLocked: QUICResumptionTicket?
    /// Why this object no longer serves the connection: it was handed to a forked child (see
    /// ``handOffLocked(_:wakeWaiters:)``). Every application call then fails with `.closed`.
    private var handedOff: String?

    let peerAddress: SocketAddress?
    var alpn: String? { withEngine { engine.alpn } }
    var tlsVersion: TLSVersion? { .tls13 }
    var isResumed: Bool { withEngine { engine.isResumed } }
    var version: QUICVersion { withEngine { engine.version } }
    var isEarlyDataAccepted: Bool? { withEngine { engine.isEarlyDataAccepted } }
    var ecnStatistics: ECNStatistics { withEngine { engine.statistics.ecn } }
    var pathStatistics: (migrations: Int, validated: Int) {
        withEngine { (engine.statistics.peerMigrations, engine.statistics.pathsValidated) }
    }
    var datagramSize: Int { withEngine { engine.datagramSizeLimit } }
    var localMigrations: Int { withEngine { engine.statistics.localMigrations } }
    var preferredAddressMigrations: Int { withEngine { engine.statistics.preferredAddressMigrations } }
    var serverAddress: SocketAddress? { withEngine { engine.role == .client ? engine.remoteAddress : engine.localAddress } }
    var serverName: String? { withEngine { engine.serverName } }
    var peerCertificates: [Certificate] { withEngine { engine.peerCertificates } }
    var quic: QUICSession? { self }
    var transport: Transport { .quic }
    var metricsSample: ListenerMetrics.Sample {
        let connection = engineForCore()
        let statistics = connection.statistics
        return ListenerMetrics.Sample(bytesReceived: statistics.bytesReceived, bytesSent: statistics.bytesSent,
                                      packetsLost: statistics.packetsLost, smoothedRTT: connection.smoothedRTT)
    }
    var isClient: Bool { engine.role == .client }

    init(engine: QUICConnection, core: QUICCore, policy: IncomingStreamPolicy, sendBufferLimit: Int) {
        connection = engine
        self.core = core
        self.driver = core.driver
        self.policy = policy
        self.sendBufferLimit = sendBufferLimit
        peerAddress = engine.remoteAddress
        originalDestinationConnectionID = engine.originalDestinationConnectionID
    }

    /// A copy of `other` (locked by the caller) for another core: a forked child's. Both share
    /// the engine object, which from now on only the copy may use.
    convenience init(adopting other: QUICSession, core: QUICCore) {
        self.init(engine: other.connection, core: core, policy: other.policy, sendBufferLimit: other.sendBufferLimit)
        handshakeComplete = other.handshakeComplete
        closeInfo = other.closeInfo
        defaultStream = other.defaultStream
        defaultStreamDisabled = other.defaultStreamDisabled
        incoming = other.incoming
        readable = other.readable
        finishedReading = other.finishedReading
        finishedSending = other.finishedSending
        datagrams = other.datagrams
        resumptionTicketLocked = other.resumptionTicketLocked
        defaultFinishPending = other.defaultFinishPending
        serviceRequested = true  // the new driver looks at it first
        isQueuedForAccept = other.isQueuedForAccept
    }

    /// Retires this object after a hand-off (lock held): the connection lives on elsewhere, so
    /// reads must not return what the other process also reads, and a close must not reach the
    /// engine. In a forked child (`wakeWaiters` false) no other thread exists to wake.
    func handOffLocked(_ reason: String, wakeWaiters: Bool) {
        handedOff = reason
        if closeInfo == nil { closeInfo = CloseInfo(origin: .local, code: 0, isApplicationCode: true, reason: reason) }
        if wakeWaiters { changedLocked() }
    }

    private func checkHandedOff() throws(QuiverError) {
        if let handedOff { throw QuiverError(.closed, handedOff) }
    }

    /// Takes in the engine's events after the loop operated on it (received, timed out,
    /// transmitted, or ran a command), and wakes whoever waits.
    func absorbEvents() {
        monitor.lock()
        absorbEventsLocked()
        monitor.unlock()
    }

    private func absorbEventsLocked() {
        var changed = false
        while let event = engine.nextEvent() {
            changed = true
            switch event {
            case .handshakeCompleted:
                handshakeComplete = true
            case .streamOpened(let id):
                opened(id)
            case .streamReadable(let id):
                readable.insert(id)
            case .datagramReceived(let bytes):
                if datagrams.count >= 64 { datagrams.removeFirst() }
                datagrams.append(bytes)
            case .closed(let info):
                closeInfo = CloseInfo(info)
            case .resumptionTicket(let ticket):
                resumptionTicketLocked = ticket
            default:
                break
            }
        }
        if defaultFinishPending, defaultStream == nil, let id = try? stream(nil, opening: true) {
            try? engine.finish(id)
            finishedSending.insert(id)
            defaultFinishPending = false
        }
        if engine.state != .handshaking, engine.state != .established, closeInfo == nil {
            closeInfo = CloseInfo(origin: .local, code: 0, isApplicationCode: true, reason: "")
            changed = true
        }
        // Events wake everyone; otherwise only the callers waiting for progress (send-buffer
        // space freed by acknowledgements, stream limits, delivery, the closing period) re-check.
        if changed {
            forgetRoomWaitersLocked()
            changedLocked()
        } else {
            progressedLocked()
            if hasRoomForWaitersLocked() {
                forgetRoomWaitersLocked()  // the woken writers register again if still short
                monitor.broadcastRoom()
            }
        }
    }

    /// Whether a blocked writer's stream now has send-buffer space. (Waiting for a larger share
    /// to free up saves wake-ups but starves the connection: on a short path the buffer, not
    /// the congestion window, bounds what is in flight.)
    private func hasRoomForWaitersLocked() -> Bool {
        writerWaitsForStream || roomWaiters.contains { sendBufferLimit > Int(clamping: engine.bufferedBytes(on: $0)) }
    }

    private func forgetRoomWaitersLocked() {
        roomWaiters.removeAll()
        writerWaitsForStream = false
    }

    private func opened(_ id: StreamID) {
        guard id.initiator != (isClient ? .client : .server) else { return }
        if !isClient, !defaultStreamDisabled, defaultStream == nil, id.direction == .bidirectional, id.index == 0 {
            defaultStream = id
            return
        }
        switch policy {
        case .accept:
            incoming.append(id)
        case .reject(let code):
            try? engine.stopSending(id, errorCode: code)
            if id.direction == .bidirectional { try? engine.reset(id, errorCode: code) }
        }
    }

    // MARK: - Session

    private func stream(_ key: StreamKey, opening: Bool) throws(QuiverError) -> StreamID? {
        if let key { return StreamID(rawValue: key) }
        if defaultStreamDisabled {
            throw QuiverError(.configuration, "this connection has no default stream (quic.disableDefaultStream()): use its streams")
        }
        if let defaultStream { return defaultStream }
        guard isClient, opening else { return nil }
        // The client's default stream is its first bidirectional stream, opened on first use.
        guard let id = engine.openStream(.bidirectional) else {
            if let closeInfo { throw QuiverError(.closed, "connection closed: \(closeInfo)") }
            return nil
        }
        defaultStream = id
        return id
    }

    private func closedError() -> QuiverError {
        QuiverError(.closed, "connection closed: \(closeInfo.map { "\($0)" } ?? "")",
                    applicationErrorCode: closeInfo.flatMap { $0.isApplicationCode ? $0.code : nil })
    }

    /// A stream error as a ``QuiverError`` carrying the application error code.
    private func streamError(_ id: StreamID, _ error: StreamError) -> QuiverError {
        let code: UInt64? = switch error {
        case .reset(let code), .stopped(let code), .resetByPeer(let code), .readStopped(let code): code
        default: nil
        }
        return QuiverError(.streamReset, "\(id): \(error)", applicationErrorCode: code)
    }

    func readLocked(_ key: StreamKey, maxBytes: Int) throws(QuiverError) -> [UInt8]? {
        try checkHandedOff()
        guard let id = try stream(key, opening: handshakeComplete) else {
            if closeInfo != nil { return [] }
            return nil
        }
        if finishedReading.contains(id) { return [] }
        let result: (bytes: [UInt8], fin: Bool)
        do throws(StreamError) {
            result = try engine.read(from: id, maxBytes: maxBytes)
        } catch {
            if case .unknownStream = error, closeInfo != nil { throw closedError() }
            throw streamError(id, error)
        }
        if result.fin { finishedReading.insert(id) }
        if !result.bytes.isEmpty || result.fin { serviceRequested = true }  // flow-control credit to grant
        if result.bytes.isEmpty, !result.fin {
            readable.remove(id)
            if closeInfo != nil { throw closedError() }
            return nil
        }
        return result.bytes
    }

    func writeLocked(_ key: StreamKey, _ bytes: ArraySlice<UInt8>, blocking: Bool) throws(QuiverError) -> Int {
        try checkHandedOff()
        guard closeInfo == nil else { throw closedError() }
        guard let id = try stream(key, opening: true) else {
            if blocking { writerWaitsForStream = true }  // the peer's stream limit: any progress may lift it
            return 0
        }
        let room = sendBufferLimit - Int(clamping: engine.bufferedBytes(on: id))
        let count = min(room, bytes.count)
        guard count > 0 else {
            if blocking { roomWaiters.insert(id) }
            return 0
        }
        do throws(StreamError) {
            try engine.write(bytes.prefix(count), to: id)
        } catch {
            throw streamError(id, error)
        }
        serviceRequested = true
        return count
    }

    func finishLocked(_ key: StreamKey) throws(QuiverError) {
        try checkHandedOff()
        guard closeInfo == nil else { throw closedError() }
        guard let id = try stream(key, opening: true) else {
            if !defaultFinishPending, key == nil, isClient {
                defaultFinishPending = true
                serviceRequested = true
            }
            return
        }
        guard !finishedSending.contains(id) else { return }
        finishedSending.insert(id)
        do throws(StreamError) { try engine.finish(id) } catch {
            throw streamError(id, error)
        }
        serviceRequested = true
    }

    func resetLocked(_ key: StreamKey, code: UInt64) throws(QuiverError) {
        try checkHandedOff()
        guard let id = try stream(key, opening: false) else { return }
        try? engine.reset(id, errorCode: code)
        serviceRequested = true
    }

    func stopSendingLocked(_ key: StreamKey, code: UInt64) throws(QuiverError) {
        try checkHandedOff()
        guard let id = try stream(key, opening: false) else { return }
        try? engine.stopSending(id, errorCode: code)
        finishedReading.insert(id)
        serviceRequested = true
    }

    func disableDefaultStreamLocked() throws(QuiverError) {
        try checkHandedOff()
        guard !defaultStreamDisabled else { return }
        if isClient, defaultStream != nil || defaultFinishPending {
            throw QuiverError(.configuration, "the default stream is in use already")
        }
        defaultStreamDisabled = true
        guard let id = defaultStream else { return }
        // The peer's stream 0 arrived already: it is the first stream to accept.
        defaultStream = nil
        incoming.insert(id, at: 0)
        changedLocked()
    }

    func acceptStreamLocked() throws(QuiverError) -> UInt64? {
        try checkHandedOff()
        if !incoming.isEmpty { return incoming.removeFirst().rawValue }
        if closeInfo != nil { throw closedError() }
        return nil
    }

    func openStreamLocked(bidirectional: Bool) throws(QuiverError) -> UInt64? {
        try checkHandedOff()
        guard closeInfo == nil else { throw closedError() }
        return engine.openStream(bidirectional ? .bidirectional : .unidirectional)?.rawValue
    }

    func closeLocked(code: UInt64, reason: String) {
        guard closeInfo == nil else { return }
        engine.close(errorCode: code, reason: reason)
        absorbEventsLocked()
        serviceRequested = true
    }

    /// Everything written was delivered: the default stream's FIN when it was finished, and
    /// every stream's data (an HTTP/3 response on its own stream, before the close).
    var isFlushedLocked: Bool {
        guard closeInfo == nil else { return true }
        if defaultFinishPending { return false }
        if let defaultStream, !engine.isSendComplete(on: defaultStream) { return false }
        return engine.isAllStreamDataDelivered
    }

    var closeInfoLocked: CloseInfo? { closeInfo }
    var isReadyLocked: Bool { handshakeComplete || closeInfo != nil }
    var isTerminatedLocked: Bool { handedOff != nil || engine.state == .closed || driver.isStopped }

    var isCloseSentLocked: Bool { isTerminatedLocked || engine.isCloseSent }

    func readinessLocked(_ key: StreamKey) -> PollEvents {
        if handedOff != nil { return [.error, .readable] }
        var events: PollEvents = []
        if closeInfo != nil { events.insert(.error) }
        if !incoming.isEmpty { events.insert(.incomingStream) }
        let id = key.map { StreamID(rawValue: $0) } ?? defaultStream
        if let id {
            if readable.contains(id) || finishedReading.contains(id) { events.insert(.readable) }
            if handshakeComplete, closeInfo == nil, Int(clamping: engine.bufferedBytes(on: id)) < sendBufferLimit { events.insert(.writable) }
        } else if isClient, handshakeComplete, closeInfo == nil {
            events.insert(.writable)
        }
        return events
    }

    func commandIssued() { core.sessionNeedsService(self) }

    func takeServiceRequestLocked() -> Bool {
        defer { serviceRequested = false }
        return serviceRequested
    }

    func stateLocked(_ key: StreamKey) -> Stream.State {
        if handedOff != nil { return Stream.State(sending: .closed, receiving: .closed) }
        guard let id = key.map({ StreamID(rawValue: $0) }) ?? defaultStream else {
            return Stream.State(sending: closeInfo == nil ? .open : .closed, receiving: closeInfo == nil ? .open : .closed)
        }
        let sending: Stream.State.Sending
        if let send = engine.sendStream(id) {
            if let code = send.stopSendingErrorCode { sending = .stoppedByPeer(code: code) }
            else if let code = send.resetErrorCode { sending = .reset(code: code) }
            else {
                switch send.state {
                case .ready, .send: sending = .open
                case .dataSent: sending = .finished
                case .dataRecvd: sending = .delivered
                case .resetSent, .resetRecvd: sending = .reset(code: 0)
                }
            }
        } else {
            sending = id.direction == .unidirectional && id.initiator != (isClient ? .client : .server) ? .none : .closed
        }
        let receiving: Stream.State.Receiving
        let receive = engine.receiveStream(id)
        if let code = receive?.stopSendingErrorCode {
            receiving = .stopped(code: code)
        } else if let code = receive?.resetErrorCode {
            receiving = .resetByPeer(code: code)
        } else if finishedReading.contains(id) {
            receiving = .finished
        } else if receive != nil {
            receiving = .open
        } else {
            receiving = id.direction == .unidirectional && id.initiator == (isClient ? .client : .server) ? .none : .closed
        }
        return Stream.State(sending: sending, receiving: receiving)
    }

    // MARK: - QUIC extras

    func sendDatagramLocked(_ bytes: [UInt8]) throws(QuiverError) {
        try checkHandedOff()
        guard closeInfo == nil else { throw closedError() }
        do throws(QUICError) { try engine.sendDatagram(bytes) } catch {
            throw QuiverError(.protocolViolation, "\(error)")
        }
        serviceRequested = true
    }

    /// Client: moves to a new UDP socket bound to `local` (``Connection/QUIC-swift.struct/migrate(to:)``).
    func migrateLocked(to local: SocketAddress?) throws(QuiverError) -> SocketAddress {
        try checkHandedOff()
        guard closeInfo == nil else { throw closedError() }
        let address = try core.moveClient(to: local) { (newAddress: Bool) throws(QuiverError) in
            do throws(MigrationRefusal) { try engine.migrateLocalAddress(newAddress: newAddress) } catch {
                throw QuiverError(.configuration, "cannot move to a new local address: \(error)")
            }
        }
        serviceRequested = true
        return address
    }

    /// Starts a key update (RFC 9001 §6); `false` while the previous one is unconfirmed.
    func updateKeysLocked() throws(QuiverError) -> Bool {
        try checkHandedOff()
        guard closeInfo == nil else { throw closedError() }
        guard handshakeComplete, engine.updateKeys() else { return false }
        serviceRequested = true
        return true
    }

    func receiveDatagramLocked() -> [UInt8]? { handedOff != nil || datagrams.isEmpty ? nil : datagrams.removeFirst() }

    /// The next datagram for a waiting receiver: `nil` would block; `.closed` once the
    /// connection ended with none left.
    func nextDatagramLocked() throws(QuiverError) -> [UInt8]? {
        if let datagram = receiveDatagramLocked() { return datagram }
        if let closeInfo { throw QuiverError(.closed, "connection closed: \(closeInfo)") }
        return nil
    }

    /// The engine, for its core: the loop, and a fork hand-off holding both locks.
    func engineForCore() -> QUICConnection { connection }
}

extension CloseInfo {
    init(_ info: ConnectionCloseInfo) {
        let origin: Origin = switch info.origin {
        case .local: .local
        case .peer: .peer
        case .idleTimeout: .timeout
        case .statelessReset, .versionNegotiation: .transport
        case .unreachable: .unreachable
        }
        // The engine's resets and version negotiations carry no reason: say which it was.
        let reason = switch info.origin {
        case .statelessReset where info.reason.isEmpty: "stateless reset"
        case .versionNegotiation where info.reason.isEmpty: "version negotiation"
        default: info.reason
        }
        self.init(origin: origin, code: info.frame.errorCode, isApplicationCode: info.frame.isApplication, reason: reason)
    }
}
