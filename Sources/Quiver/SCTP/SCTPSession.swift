import QuiverCore
import QuiverSCTP
import QuiverTLS
import Synchronization
import X509

/// One SCTP association of a listener or client (``Transport/sctp``): the sans-I/O
/// ``SCTPAssociation``, which only its loop touches (``Driver/perform(_:)``), and what the
/// application has not consumed yet, under the connection's own lock (``monitor``).
///
/// **Streams.** SCTP's streams are the connection's: the default stream is SCTP stream 0, a
/// stream key *n* is SCTP stream *n* in both directions. ``acceptStreamLocked()`` offers the
/// peer's streams other than 0 as their first message arrives; ``openStreamLocked(bidirectional:)``
/// takes the next stream not used yet. Each stream carries **messages**: a read returns one
/// (cut to `maxBytes`, as `recv` cuts a datagram), a write sends one, all or nothing, of at most
/// ``SCTPConfiguration/maxMessageSize`` bytes, and SCTP delivers them reliably and in order.
///
/// **Ends.** Finishing a stream resets it (RFC 6525): the peer reads its messages, then the
/// end, and may go on sending on its side. A peer without stream reconfiguration, or one that
/// refuses the reset (usrsctp's examples do), cannot be told the end of one stream: finishing
/// the default stream then starts the SHUTDOWN (the association's graceful end, after which
/// neither side sends new messages), finishing another stream only stops our sends on it. Resetting a stream finishes it (SCTP has no abortive stream end).
/// A close with code 0 is a SHUTDOWN (everything queued is delivered first), any other code an
/// ABORT with a User-Initiated Abort cause carrying the reason.
///
/// **DTLS over SCTP** (``Transport/dtlsOverSCTP``, RFC 6083): a ``DTLSOverSCTP`` sits on the
/// association. The connection is established when its DTLS handshake is (within the core's
/// handshake timeout); each message is one DTLS record on its stream, at most 16 KiB; a close
/// with code 0 sends `close_notify` before the SHUTDOWN.
final class SCTPSession: Session, @unchecked Sendable {
    // @unchecked: the engine belongs to the driver's owner; everything else mutable is guarded
    // by `monitor`.
    let monitor = Monitor()
    let driver: Driver
    let pollLinks = PollLinks()
    private let association: SCTPAssociation
    /// DTLS over SCTP's layer (the loop's, as the engine).
    private let secure: DTLSOverSCTP?
    private var secureStarted = false
    /// The DTLS connection on or under the association, if any (read on the loop).
    private let dtls: DTLSConnection?
    /// The DTLS handshake must be done by then.
    private var handshakeDeadline: Instant?
    /// The engine, for its owner only (checked in debug builds).
    private var engine: SCTPAssociation {
        assert(driver.isOwnerHere, "an SCTP engine touched off its loop")
        return association
    }
    /// Strong: a connection may outlive its listener's other references. The core drops its
    /// sessions when it closes, which breaks the cycle.
    private let core: SCTPCore
    private let peer: Mutex<SocketAddress>
    var peerAddress: SocketAddress? { peer.withLock { $0 } }

    private struct StreamState {
        var messages: [[UInt8]] = []
        var head = 0
        /// The peer reset the stream: its end, once the messages are read.
        var peerFinished = false
        var readStopped = false
        var localFinished = false
        /// The peer performed (or refused) our reset: nothing of ours is pending on it.
        var finishSettled = false
        var hasQueued: Bool { head < messages.count }
    }

    private var streams: [UInt16: StreamState] = [:]
    /// Bytes of messages taken from the engine and not read yet. The engine's receive window
    /// opens as messages leave it, so they are taken only while this stays under the receive
    /// buffer's size: an application that does not read stops the peer (the window is the
    /// association's, shared by its streams, as in every SCTP).
    private var queuedBytes = 0
    private let queueLimit: Int
    /// The peer's streams other than 0 that sent a first message, not yet accepted.
    private var acceptable: [UInt16] = []
    /// Streams handed out by accept or open.
    private var known: Set<UInt16> = [0]
    private var established = false
    private var closeInfo: CloseInfo?
    /// Our close with code 0 started the SHUTDOWN: its end is ours.
    private var closedLocally = false
    private var roomWaiter = false
    private var serviceRequested = false
    var isQueuedForAccept = false
    /// The connection in the listener's metrics (its core's, lock held).
    var metricsAccount = ListenerMetrics.Account()

    var quic: QUICSession? { nil }
    var transport: Transport { core.transport }
    var alpn: String? { dtls.flatMap { dtls in withEngine { dtls.handshake.negotiatedALPN } } }
    var tlsVersion: TLSVersion? { dtls.flatMap { dtls in withEngine { dtls.handshake.negotiatedVersion } } }
    var serverName: String? { dtls.flatMap { dtls in withEngine { dtls.handshake.serverName } } }
    var peerCertificates: [Certificate] { dtls.map { dtls in withEngine { dtls.handshake.peerCertificates } } ?? [] }

    /// `security`: the DTLS connection of DTLS over SCTP (a client's not started yet);
    /// `carrier`: the DTLS connection under SCTP over DTLS (for its ALPN, version and
    /// certificates); both `nil` for plain SCTP.
    init(engine: SCTPAssociation, core: SCTPCore, security: DTLSConnection? = nil, carrier: DTLSConnection? = nil) {
        association = engine
        secure = security.map { DTLSOverSCTP(association: engine, dtls: $0) }
        dtls = security ?? carrier
        self.core = core
        driver = core.driver
        peer = Mutex(engine.peerAddress)
        queueLimit = engine.configuration.receiveBufferSize
        // A server's association is up when it is accepted: its DTLS starts at once.
        if secure != nil, engine.state == .established { startSecurity(now: .now()) }
    }

    // MARK: - I/O side (the core, on the loop)

    /// The engine, for its core.
    func engineForCore() -> SCTPAssociation { association }

    /// Takes in the engine's messages and events, and wakes whoever waits (lock held).
    func absorbEventsLocked() {
        var changed = secure == nil && takeMessagesLocked()
        while let event = engine.nextEvent() {
            switch event {
            case .established:
                if secure == nil { established = true } else { startSecurity(now: .now()) }
            case .readable:
                continue
            case .incomingStreamsReset(let ended):
                for stream in ended { streams[stream, default: StreamState()].peerFinished = true }
            case .outgoingStreamsReset(let settled):
                for stream in settled { streams[stream, default: StreamState()].finishSettled = true }
            case .streamResetRefused(let settled):
                for stream in settled { streams[stream, default: StreamState()].finishSettled = true }
                // The peer cannot be told the end of the default stream otherwise.
                if settled.contains(0) { engine.shutdown(now: .now()) }
            case .closed(let reason):
                // DTLS over SCTP: records that came before the end (a peer's alert before its
                // ABORT) still settle the handshake.
                if secure != nil, !established { _ = runSecurityLocked() }
                guard closeInfo == nil else { break }
                let info = CloseInfo(reason, local: closedLocally)
                closeInfo = info
                if secureStarted, !established, !closedLocally {
                    core.handshakeFailed(peer: peerAddress, reason: "the association ended during the DTLS handshake: \(info)",
                                         cause: info.origin == .timeout ? .timeout : .closed, at: .now())
                }
            }
            changed = true
        }
        if secure != nil {
            if runSecurityLocked() { changed = true }
            if takeMessagesLocked() { changed = true }
        }
        let address = engine.peerAddress
        if address != peerAddress { peer.withLock { $0 = address } }
        if roomWaiter, engine.writableBytes > 0 && established || closeInfo != nil {
            roomWaiter = false
            monitor.broadcastRoom()
            changed = true
        }
        if changed { changedLocked() } else { progressedLocked() }
    }

    // MARK: - DTLS over SCTP

    /// Starts the DTLS handshake on the established association (a client's ClientHello).
    private func startSecurity(now: Instant) {
        guard let secure, !secureStarted else { return }
        secureStarted = true
        handshakeDeadline = now + core.handshakeTimeout
        do throws(DTLSOverSCTP.Refusal) { try secure.start(now: now) } catch {
            failSecurity("\(error)", cause: .negotiation, now: now)
        }
    }

    /// Runs DTLS: the handshake, its timers and deadline. Returns whether the connection
    /// became established or failed.
    private func runSecurityLocked() -> Bool {
        guard let secure, secureStarted, closeInfo == nil else { return false }
        let now = Instant.now()
        do throws(TLSError) { try secure.process(now: now) } catch {
            failSecurity("DTLS: \(error)", cause: HandshakeFailureReason(CloseInfo(error), transport: .dtls), now: now)
            return true
        }
        if !established, secure.isEstablished {
            established = true
            handshakeDeadline = nil
            return true
        }
        if !established, let deadline = handshakeDeadline, deadline <= now {
            failSecurity("the DTLS handshake was not done within \(core.handshakeTimeout)", cause: .timeout, now: now)
            return true
        }
        return false
    }

    /// When the loop must run this session's DTLS (timers, handshake deadline): `nil` once
    /// established, or without DTLS.
    var securityDeadlineLocked: Instant? {
        guard let secure, secureStarted, !established, closeInfo == nil else { return nil }
        return [secure.nextDeadline, handshakeDeadline].compactMap { $0 }.min()
    }

    /// The DTLS layer failed: the association is aborted, and a handshake failure logged.
    private func failSecurity(_ reason: String, cause: HandshakeFailureReason, now: Instant) {
        guard closeInfo == nil else { return }
        if !established { core.handshakeFailed(peer: peerAddress, reason: reason, cause: cause, at: now) }
        if secure?.sendFailureAlert() == true {
            engine.shutdown(now: now)
        } else {
            engine.abort(reason: reason, now: now)
        }
        closeInfo = CloseInfo(origin: .transport, code: 0, isApplicationCode: false, reason: reason)
        serviceRequested = true
    }

    /// The next message from the engine, through DTLS for DTLS over SCTP.
    private func nextMessageLocked() -> SCTPMessage? {
        guard let secure else { return engine.read() }
        guard established, closeInfo == nil else { return nil }
        do throws(TLSError) { return try secure.read(now: .now()) } catch {
            failSecurity("DTLS: \(error)", cause: HandshakeFailureReason(CloseInfo(error), transport: .dtls), now: .now())
            return nil
        }
    }

    /// Moves messages from the engine while under ``queueLimit``; returns whether any came.
    private func takeMessagesLocked() -> Bool {
        var took = false
        while queuedBytes < queueLimit, let message = nextMessageLocked() {
            if message.stream != 0, streams[message.stream] == nil, !known.contains(message.stream) {
                acceptable.append(message.stream)
            }
            var state = streams[message.stream] ?? StreamState()
            if !state.readStopped {
                state.messages.append(message.bytes)
                queuedBytes += message.bytes.count
            }
            streams[message.stream] = state
            took = true
        }
        return took
    }

    /// Whether the core may forget the association: closed, its last packet sent.
    var isFinishedLocked: Bool { engine.state == .closed && !engine.hasPendingControl }

    // MARK: - Session

    private func closedError() -> QuiverError {
        QuiverError(.closed, "connection closed: \(closeInfo.map { "\($0)" } ?? "")")
    }

    private func sctpStream(_ key: StreamKey) throws(QuiverError) -> UInt16 {
        guard let key else { return 0 }
        guard key <= UInt64(UInt16.max) else { throw QuiverError(.configuration, "SCTP streams are numbered 0–65535, not \(key)") }
        return UInt16(key)
    }

    func readLocked(_ key: StreamKey, maxBytes: Int) throws(QuiverError) -> [UInt8]? {
        let stream = try sctpStream(key)
        if var state = streams[stream], state.hasQueued {
            let message = state.messages[state.head]
            state.head += 1
            if state.head == state.messages.count {
                state.messages.removeAll()
                state.head = 0
            }
            streams[stream] = state
            queuedBytes -= message.count
            // Room again: more from the engine, whose window opens (a SACK may be due).
            if takeMessagesLocked() { serviceRequested = true }
            return message.count <= maxBytes ? message : Array(message.prefix(max(0, maxBytes)))
        }
        if let state = streams[stream], state.peerFinished || state.readStopped { return [] }
        if let closeInfo {
            if closeInfo.isClean { return [] }
            throw closedError()
        }
        return nil
    }

    func writeLocked(_ key: StreamKey, _ bytes: ArraySlice<UInt8>, blocking: Bool) throws(QuiverError) -> Int {
        let stream = try sctpStream(key)
        if closeInfo != nil { throw closedError() }
        guard streams[stream]?.localFinished != true else { throw QuiverError(.closed, "the stream was finished") }
        guard !bytes.isEmpty else { return 0 }
        do throws(SCTPError) {
            if let secure {
                guard established else {
                    if blocking { roomWaiter = true }
                    return 0
                }
                try secure.write(Array(bytes), stream: stream)
            } else {
                try engine.send(Array(bytes), stream: stream)
            }
        } catch {
            switch error {
            case .wouldBlock:
                if blocking { roomWaiter = true }
                return 0
            case .notWritable:
                throw QuiverError(.closed, "the association is shutting down")
            default:
                throw QuiverError(.configuration, "\(error)")
            }
        }
        serviceRequested = true
        return bytes.count
    }

    func finishLocked(_ key: StreamKey) throws(QuiverError) {
        let stream = try sctpStream(key)
        if closeInfo != nil { throw closedError() }
        guard streams[stream]?.localFinished != true else { return }
        streams[stream, default: StreamState()].localFinished = true
        if engine.peerSupportsStreamReset {
            do throws(SCTPError) { try engine.resetOutgoingStreams([stream], now: .now()) } catch {
                throw QuiverError(.configuration, "\(error)")
            }
        } else {
            // No way to end one stream: the default stream's end is the association's.
            streams[stream]!.finishSettled = true
            if stream == 0 { engine.shutdown(now: .now()) }
        }
        serviceRequested = true
    }

    func resetLocked(_ key: StreamKey, code: UInt64) throws(QuiverError) { try finishLocked(key) }

    func stopSendingLocked(_ key: StreamKey, code: UInt64) throws(QuiverError) {
        let stream = try sctpStream(key)
        streams[stream, default: StreamState()].readStopped = true
        let state = streams[stream]!
        queuedBytes -= state.messages[state.head...].reduce(0) { $0 + $1.count }
        streams[stream]!.messages.removeAll()
        streams[stream]!.head = 0
        if takeMessagesLocked() { serviceRequested = true }
        changedLocked()  // a blocked read returns the end
    }

    func acceptStreamLocked() throws(QuiverError) -> UInt64? {
        if !acceptable.isEmpty {
            let stream = acceptable.removeFirst()
            known.insert(stream)
            return UInt64(stream)
        }
        if closeInfo != nil { throw closedError() }
        return nil
    }

    func openStreamLocked(bidirectional: Bool) throws(QuiverError) -> UInt64? {
        if closeInfo != nil { throw closedError() }
        guard established else { return nil }
        guard let stream = (1..<max(1, engine.outboundStreams)).first(where: { !known.contains($0) && streams[$0] == nil }) else {
            throw QuiverError(.configuration, "all \(engine.outboundStreams) SCTP streams of the association are in use")
        }
        known.insert(stream)
        return UInt64(stream)
    }

    func closeLocked(code: UInt64, reason: String) {
        guard closeInfo == nil else { return }
        if code == 0 {
            closedLocally = true
            if established { secure?.close() }
            engine.shutdown(now: .now())
        } else {
            engine.abort(reason: reason.isEmpty ? "code \(code)" : reason, now: .now())
        }
        closeInfo = CloseInfo(origin: .local, code: code, isApplicationCode: true, reason: reason)
        serviceRequested = true
        changedLocked()
    }

    var isFlushedLocked: Bool { engine.isIdle && !engine.isResettingStreams }
    var closeInfoLocked: CloseInfo? { closeInfo }
    var isReadyLocked: Bool { established || closeInfo != nil }
    /// Whether the association came up (DTLS over SCTP: and its DTLS handshake completed); it
    /// stays set after the connection ends.
    var isEstablishedLocked: Bool { established }
    var isTerminatedLocked: Bool { closeInfo != nil && isFinishedLocked || driver.isStopped }
    var isCloseSentLocked: Bool { isTerminatedLocked }

    func readinessLocked(_ key: StreamKey) -> PollEvents {
        guard let stream = try? sctpStream(key) else { return .error }
        var events: PollEvents = []
        let state = streams[stream]
        if closeInfo != nil { events.insert(.error) }
        if state?.hasQueued == true || state?.peerFinished == true || state?.readStopped == true || closeInfo != nil {
            events.insert(.readable)
        }
        if established, closeInfo == nil, state?.localFinished != true, engine.writableBytes > 0 { events.insert(.writable) }
        return events
    }

    func stateLocked(_ key: StreamKey) -> Stream.State {
        let state = (try? sctpStream(key)).flatMap { streams[$0] } ?? StreamState()
        let failed = closeInfo.map { !$0.isClean } ?? false
        let sending: Stream.State.Sending = failed ? .closed
            : state.localFinished ? (state.finishSettled && engine.isIdle ? .delivered : .finished) : .open
        let receiving: Stream.State.Receiving = state.peerFinished || state.readStopped ? .finished : closeInfo != nil ? .closed : .open
        return Stream.State(sending: sending, receiving: receiving)
    }

    func commandIssued() { core.sessionNeedsService(self) }

    func takeServiceRequestLocked() -> Bool {
        defer { serviceRequested = false }
        return serviceRequested
    }
}

extension CloseInfo {
    /// How an SCTP association ended. An ABORT's code is its first error cause's (RFC 9260
    /// §3.3.10), or ``sctpAbortWithoutCause`` when it had none.
    init(_ reason: SCTPCloseReason, local: Bool) {
        switch reason {
        case .shutdown:
            self.init(origin: local ? .local : .peer, code: 0, isApplicationCode: false, reason: "")
        case .abortedByPeer(let causes):
            self.init(origin: .peer, code: causes.first.map { UInt64($0.code) } ?? Self.sctpAbortWithoutCause, isApplicationCode: false,
                      reason: causes.isEmpty ? "ABORT" : causes.map(\.description).joined(separator: ", "))
        case .aborted(let cause):
            self.init(origin: .local, code: UInt64(cause.code), isApplicationCode: false, reason: cause.description)
        case .timedOut:
            self.init(origin: .timeout, code: 0, isApplicationCode: false, reason: "the peer stopped answering")
        case .handshakeFailed(let why), .carrierClosed(let why):
            self.init(origin: .transport, code: 0, isApplicationCode: false, reason: why)
        }
    }

    /// The code of an SCTP ABORT that carried no error cause.
    static let sctpAbortWithoutCause: UInt64 = 0xFFFF
}
