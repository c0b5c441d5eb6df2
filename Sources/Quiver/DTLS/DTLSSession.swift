import QuiverCore
import QuiverTLS
import Synchronization
import X509

/// One DTLS connection of a listener or client: the sans-I/O ``DTLSConnection``, which only its
/// loop touches (``Driver/perform(_:)``), and what the application has not consumed yet, under
/// the connection's own lock (``monitor``).
///
/// A DTLS connection carries **messages** on its one (default) stream: a read returns one
/// record's payload — cut to `maxBytes` as UDP's `recv` cuts a datagram, never split over two
/// reads — and a write sends one record, all or nothing; a write over one record's
/// 2^14 bytes is a `.configuration` error. Empty messages are skipped (an empty read is the end
/// of the stream). Nothing is retransmitted after the handshake: a message lost by the network
/// is lost (RFC 6347 §4.1).
///
/// Closing follows ``TLSSession``: ``finishLocked(_:)`` sends close_notify and reads go on (a
/// half-close, as OpenSSL allows); the peer's close_notify ends reads; once both sides sent
/// one, or at a close or failure, the core forgets the association.
final class DTLSSession: Session, @unchecked Sendable {
    // @unchecked: the engine belongs to the driver's owner; everything else mutable is guarded
    // by `monitor`.
    let monitor = Monitor()
    let driver: Driver
    let pollLinks = PollLinks()
    private let connection: DTLSConnection
    /// The engine, for its owner only (checked in debug builds).
    private var engine: DTLSConnection {
        assert(driver.isOwnerHere, "a DTLS engine touched off its loop")
        return connection
    }
    /// Strong: a connection may outlive its listener's other references. The core drops its
    /// sessions when it closes, which breaks the cycle.
    private let core: DTLSCore
    private let sendBufferLimit: Int
    /// Where the connection's datagrams go (a synthetic address on an unaddressed attachment);
    /// it follows a client whose address changed, by Connection ID (``migrate(to:)``).
    var peerAddress: SocketAddress? { peer.withLock { $0 } }
    private let peer: Mutex<SocketAddress?>
    let createdAt = Instant.now()

    private var handshakeComplete = false
    private var closeInfo: CloseInfo?
    /// Bytes taken from the engine and not yet handed to an attachment (``takeDatagramsLocked()``).
    private var queuedBytes = 0
    /// Whether a blocked writer waits for ``queuedBytes`` to fall under the limit.
    private var roomWaiter = false
    /// Messages the application stopped reading (``stopSendingLocked(_:code:)``) are dropped.
    private var readStopped = false
    /// Messages seen queued at the last look (new ones wake readers).
    private var knownMessages = 0
    /// Whether the peer's close_notify was seen (it wakes readers).
    private var peerClosed = false
    /// When a datagram last moved either way (for the idle timeout).
    private var lastActivity = Instant.now()
    /// Set by commands that give the core something to do; see ``takeServiceRequestLocked()``.
    private var serviceRequested = false
    /// Whether the accept queue already has this session.
    var isQueuedForAccept = false
    /// The connection in the listener's metrics (its core's, lock held).
    var metricsAccount = ListenerMetrics.Account()
    /// Why this object no longer serves the connection: it was handed to a forked child.
    private var handedOff: String?

    var quic: QUICSession? { nil }
    var transport: Transport { .dtls }
    var alpn: String? { withEngine { engine.handshake.negotiatedALPN } }
    var tlsVersion: TLSVersion? { withEngine { engine.handshake.negotiatedVersion } }
    var serverName: String? { withEngine { engine.handshake.serverName } }
    var peerCertificates: [Certificate] { withEngine { engine.handshake.peerCertificates } }

    init(engine: DTLSConnection, peer: SocketAddress, core: DTLSCore, sendBufferLimit: Int) {
        connection = engine
        self.core = core
        self.driver = core.driver
        self.sendBufferLimit = sendBufferLimit
        self.peer = Mutex(peer)
    }

    /// The core moves the connection to the peer's new address (RFC 9146 §6: the endpoint
    /// authenticated a newer record from there).
    func migrate(to address: SocketAddress) {
        peer.withLock { $0 = address }
    }

    /// A copy of `other` (locked by the caller) for another core: a forked child's. Both share
    /// the engine object, which from now on only the copy may use.
    convenience init(adopting other: DTLSSession, core: DTLSCore) {
        self.init(engine: other.connection, peer: other.peerAddress!, core: core, sendBufferLimit: other.sendBufferLimit)
        handshakeComplete = other.handshakeComplete
        closeInfo = other.closeInfo
        readStopped = other.readStopped
        knownMessages = other.knownMessages
        peerClosed = other.peerClosed
        isQueuedForAccept = other.isQueuedForAccept
        serviceRequested = true  // the new driver looks at it first
    }

    /// Retires this object after a hand-off (lock held): the connection lives on in another
    /// process (or in this process's copy), so nothing may read, write or close it here. In a
    /// forked child no other thread exists to wake.
    func handOffLocked(_ reason: String, wakeWaiters: Bool) {
        handedOff = reason
        if closeInfo == nil { closeInfo = CloseInfo(origin: .local, code: 0, isApplicationCode: true, reason: reason) }
        if wakeWaiters { changedLocked() }
    }

    private func checkHandedOff() throws(QuiverError) {
        if let handedOff { throw QuiverError(.closed, handedOff) }
    }

    // MARK: - I/O side (the core, on the loop)

    /// The engine, for its core: the loop, and a fork hand-off holding both locks.
    func engineForCore() -> DTLSConnection { connection }

    /// Takes in what changed in the engine after the loop fed it, timed it out or ran a
    /// command, and wakes whoever waits.
    func absorbEvents() {
        monitor.lock()
        absorbEventsLocked()
        monitor.unlock()
    }

    /// ``absorbEvents()`` with the lock held.
    func absorbEventsLocked() {
        guard handedOff == nil else { return }
        var changed = false
        if !handshakeComplete, engine.isHandshakeComplete {
            handshakeComplete = true
            changed = true
        }
        let queued = engine.queuedMessageCount
        if queued > knownMessages { changed = true }
        knownMessages = queued
        if engine.isPeerClosed, !peerClosed {
            peerClosed = true  // reads end
            changed = true
        }
        if closeInfo == nil {
            if let error = engine.error {
                closeInfo = CloseInfo(error)
                // DTLS's only transport failure is a handshake that got no answer.
                if error.origin == .transport { closeInfo?.origin = .timeout }
            } else if engine.isPeerClosed, engine.isLocallyClosed {
                closeInfo = CloseInfo(origin: .peer, code: 0, isApplicationCode: false, reason: "")
            }
            if closeInfo != nil { changed = true }
        }
        if changed { changedLocked() } else { progressedLocked() }
    }

    /// A datagram arrived from the peer (for the idle timeout).
    func receivedLocked(at now: Instant) { lastActivity = now }

    /// Moves the engine's datagrams out, counting them against the send buffer until
    /// ``sentLocked(_:)`` (lock held).
    func takeDatagramsLocked() -> [[UInt8]] {
        guard engine.hasDatagrams else { return [] }
        let datagrams = engine.takeDatagrams()
        for datagram in datagrams { queuedBytes += datagram.count }
        return datagrams
    }

    /// `count` bytes of this session's datagrams were handed to an attachment (or dropped).
    func sentLocked(_ count: Int, at now: Instant) {
        queuedBytes -= count
        lastActivity = now
        if roomWaiter, queuedBytes < sendBufferLimit {
            roomWaiter = false
            monitor.broadcastRoom()
            pollLinks.signal()
        }
    }

    /// Whether the core may forget the association: closed, and nothing left to send.
    var isFinishedLocked: Bool { closeInfo != nil && !engine.hasDatagrams }

    /// The handshake (a client's) did not finish in time, or (`idle`) nothing moved on the
    /// established connection for the idle timeout: the connection ends with origin
    /// ``CloseInfo/Origin/timeout`` — an idle one after a close_notify.
    func expireLocked(idle: Bool) {
        guard closeInfo == nil, handedOff == nil else { return }
        // Idle: close_notify. A client's handshake given up: a fatal alert, which also stops
        // the engine retransmitting its flight.
        if idle { engine.close() } else { engine.abort() }
        closeInfo = CloseInfo(origin: .timeout, code: 0, isApplicationCode: false, reason: idle ? "idle timeout" : "handshake timed out")
        changedLocked()
    }

    /// How long no datagram has moved either way.
    func idleTimeLocked(at now: Instant) -> Duration { now - lastActivity }

    /// The association ended without a word from the peer's side that reached this object:
    /// the client started a new one from the same address, or the listener closed.
    func endLocked(origin: CloseInfo.Origin, reason: String) {
        guard closeInfo == nil else { return }
        closeInfo = CloseInfo(origin: origin, code: 0, isApplicationCode: false, reason: reason)
        changedLocked()
    }

    /// A client's server was unreachable (an ICMP error) before it answered: the handshake
    /// fails as a refused TCP connection does.
    func unreachableLocked(_ reason: String) {
        guard closeInfo == nil, !handshakeComplete else { return }
        engine.abort()
        _ = engine.takeDatagrams()
        closeInfo = CloseInfo(origin: .unreachable, code: 0, isApplicationCode: false, reason: reason)
        changedLocked()
    }

    // MARK: - Session

    private func closedError() -> QuiverError {
        QuiverError(.closed, "connection closed: \(closeInfo.map { "\($0)" } ?? "")")
    }

    private func checkDefaultStream(_ key: StreamKey) throws(QuiverError) {
        guard key == nil || key == 0 else { throw QuiverError(.configuration, "a DTLS connection has only its default stream") }
    }

    func readLocked(_ key: StreamKey, maxBytes: Int) throws(QuiverError) -> [UInt8]? {
        try checkHandedOff()
        try checkDefaultStream(key)
        while let message = engine.read() {
            knownMessages = engine.queuedMessageCount
            guard !readStopped, !message.isEmpty else { continue }
            return message.count <= maxBytes ? message : Array(message.prefix(max(0, maxBytes)))
        }
        if readStopped || engine.isPeerClosed { return [] }
        if let closeInfo {
            if closeInfo.isClean, closeInfo.origin == .local { return [] }
            throw closedError()
        }
        return nil
    }

    func writeLocked(_ key: StreamKey, _ bytes: ArraySlice<UInt8>, blocking: Bool) throws(QuiverError) -> Int {
        try checkHandedOff()
        try checkDefaultStream(key)
        if closeInfo != nil { throw closedError() }
        guard !engine.isLocallyClosed else { throw QuiverError(.closed, "the stream was finished") }
        guard bytes.count <= DTLSConnection.maxMessageSize else {
            throw QuiverError(.configuration, "a DTLS message is one record: at most \(DTLSConnection.maxMessageSize) bytes, not \(bytes.count)")
        }
        guard !bytes.isEmpty else { return 0 }
        guard handshakeComplete, queuedBytes < sendBufferLimit else {
            if blocking { roomWaiter = true }
            return 0
        }
        do throws(TLSError) { try engine.write(Array(bytes)) } catch {
            throw error.quiverError
        }
        serviceRequested = true
        return bytes.count
    }

    func finishLocked(_ key: StreamKey) throws(QuiverError) {
        try checkHandedOff()
        if closeInfo != nil { throw closedError() }
        guard !engine.isLocallyClosed else { return }
        engine.close()  // close_notify; reads go on until the peer's
        absorbEventsLocked()
        serviceRequested = true
    }

    func resetLocked(_ key: StreamKey, code: UInt64) throws(QuiverError) { closeLocked(code: code, reason: "reset") }

    func stopSendingLocked(_ key: StreamKey, code: UInt64) throws(QuiverError) {
        try checkHandedOff()
        readStopped = true
        while engine.read() != nil {}
        knownMessages = 0
        changedLocked()  // a blocked read returns the end
    }

    func acceptStreamLocked() throws(QuiverError) -> UInt64? {
        try checkHandedOff()
        if closeInfo != nil { throw closedError() }
        return nil
    }

    func openStreamLocked(bidirectional: Bool) throws(QuiverError) -> UInt64? {
        throw QuiverError(.configuration, "DTLS carries one stream of messages: use the connection's default stream")
    }

    /// Code 0: close_notify; otherwise a fatal alert, so the peer sees a failed close.
    func closeLocked(code: UInt64, reason: String) {
        guard closeInfo == nil, handedOff == nil else { return }
        if code == 0 { engine.close() } else { engine.abort() }
        closeInfo = CloseInfo(origin: .local, code: code, isApplicationCode: true, reason: reason)
        serviceRequested = true  // the core sends the alert and forgets the association
        changedLocked()
    }

    var isFlushedLocked: Bool { queuedBytes == 0 && !engine.hasDatagrams }
    var closeInfoLocked: CloseInfo? { closeInfo }
    var isReadyLocked: Bool { handshakeComplete || closeInfo != nil }
    var isEstablishedLocked: Bool { handshakeComplete }
    var isTerminatedLocked: Bool { handedOff != nil || closeInfo != nil && isFlushedLocked || driver.isStopped }
    var isCloseSentLocked: Bool { isTerminatedLocked }

    func readinessLocked(_ key: StreamKey) -> PollEvents {
        if handedOff != nil { return [.error, .readable] }
        var events: PollEvents = []
        if closeInfo != nil { events.insert(.error) }
        if engine.queuedMessageCount > 0 || engine.isPeerClosed || readStopped || closeInfo != nil { events.insert(.readable) }
        if handshakeComplete, closeInfo == nil, !engine.isLocallyClosed, queuedBytes < sendBufferLimit { events.insert(.writable) }
        return events
    }

    func commandIssued() { core.sessionNeedsService(self) }

    func takeServiceRequestLocked() -> Bool {
        defer { serviceRequested = false }
        return serviceRequested
    }

    func stateLocked(_ key: StreamKey) -> Stream.State {
        if handedOff != nil { return Stream.State(sending: .closed, receiving: .closed) }
        let failed = closeInfo.map { !$0.isClean } ?? false
        let sending: Stream.State.Sending = failed ? .closed : engine.isLocallyClosed ? (isFlushedLocked ? .delivered : .finished) : .open
        let receiving: Stream.State.Receiving = engine.isPeerClosed || readStopped ? .finished : closeInfo != nil ? .closed : .open
        return Stream.State(sending: sending, receiving: receiving)
    }
}

extension CloseInfo {
    /// How a failed TLS or DTLS connection ended: the alert as the code.
    init(_ error: TLSError) {
        let origin: Origin = switch error.origin {
        case .local: .local
        case .peer: .peer
        case .transport: .transport
        }
        self.init(origin: origin, code: UInt64(error.alert.rawValue), isApplicationCode: false, reason: error.reason)
    }
}
