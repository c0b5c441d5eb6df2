#if canImport(Glibc)
import Glibc
#endif
import QuiverCore
import QuiverTLS
import X509

/// One TLS-over-TCP (or over a ``StreamPair``) connection: the sans-I/O TLS stream, its
/// transport and the encrypted bytes not yet written, under the connection's own lock.
final class TLSSession: Session, MeteredSession, @unchecked Sendable {
    // @unchecked: everything mutable is guarded by `monitor`.
    /// What carries the TLS bytes.
    enum Carrier {
        case socket(Int32)
        case pair(StreamPair.End)
    }

    let monitor = Monitor()
    let driver: Driver
    let pollLinks = PollLinks()
    let tag: UInt64
    let peerAddress: SocketAddress?
    let createdAt = Instant.now()
    private let engine: TLSStream
    /// The engine, for its owner only (checked in debug builds; ``Driver/perform(_:)``).
    private var stream: TLSStream {
        assert(driver.isOwnerHere, "a TLS engine touched off its loop")
        return engine
    }
    private let carrier: Carrier
    /// Strong: a connection may outlive its listener's other references. The core drops its
    /// sessions when it closes, which breaks the cycle.
    private let core: TLSCore
    private let bufferLimit: Int
    private var outgoing: [UInt8] = []
    private var closeInfo: CloseInfo?
    private var transportClosed = false
    private var readPaused = false
    /// The code of the application's ``Stream/stopSending(code:)``: reads return the end from
    /// then on and the socket is no longer read (TCP's window holds the peer back).
    private var readStopCode: UInt64?
    private var wantsOutput = false
    private(set) var handshakeComplete = false
    /// Set by commands the core must look at (see ``takeServiceRequestLocked()``).
    private var serviceRequested = false
    var isQueuedForAccept = false
    /// The connection in the listener's metrics (its core's, lock held).
    var metricsAccount = ListenerMetrics.Account()
    /// Bytes read from and written to the transport (TCP bytes: TLS records).
    private(set) var transportBytesLocked = (received: 0, sent: 0)
    /// Why this object no longer serves the connection: it was handed to a forked child (see
    /// ``handOffLocked(_:wakeWaiters:)``). Application calls then fail.
    private var handedOff: String?

    var quic: QUICSession? { nil }
    var transport: Transport { .tcp }
    var metricsSample: ListenerMetrics.Sample { monitor.withLock { metricsSampleLocked } }
    var metricsSampleLocked: ListenerMetrics.Sample {
        ListenerMetrics.Sample(bytesReceived: transportBytesLocked.received, bytesSent: transportBytesLocked.sent)
    }
    var alpn: String? { withEngine { stream.handshake.negotiatedALPN } }
    var tlsVersion: TLSVersion? { withEngine { stream.handshake.negotiatedVersion } }
    var serverName: String? { withEngine { stream.handshake.serverName } }
    var peerCertificates: [Certificate] { withEngine { stream.handshake.peerCertificates } }

    init(stream: TLSStream, carrier: Carrier, peer: SocketAddress?, tag: UInt64, core: TLSCore, bufferLimit: Int) {
        engine = stream
        self.carrier = carrier
        self.peerAddress = peer
        self.tag = tag
        self.core = core
        self.driver = core.driver
        self.bufferLimit = bufferLimit
    }

    /// A copy of `other` (locked by the caller) for another core, a forked child's, with a new
    /// tag. Both share the TLS stream and the socket, which from now on only the copy may use.
    convenience init(adopting other: TLSSession, tag: UInt64, core: TLSCore) {
        self.init(stream: other.engine, carrier: other.carrier, peer: other.peerAddress, tag: tag, core: core, bufferLimit: other.bufferLimit)
        outgoing = other.outgoing
        closeInfo = other.closeInfo
        transportClosed = other.transportClosed
        readPaused = other.readPaused
        readStopCode = other.readStopCode
        handshakeComplete = other.handshakeComplete
        isQueuedForAccept = other.isQueuedForAccept
    }

    /// Whether output waits for the socket (a new core registers the descriptor accordingly).
    var wantsOutputLocked: Bool { !outgoing.isEmpty }
    var readPausedLocked: Bool { readPaused }

    /// Retires this object after a hand-off (lock held): the connection lives on in another
    /// process (or in this process's copy), so nothing may read, write or close it here (the
    /// descriptor is closed, in the parent, by discarding the core made for the child). In a
    /// forked child no other thread exists to wake.
    func handOffLocked(_ reason: String, wakeWaiters: Bool) {
        handedOff = reason
        released = true
        transportClosed = true
        outgoing.removeAll()
        if closeInfo == nil { closeInfo = CloseInfo(origin: .local, code: 0, isApplicationCode: true, reason: reason) }
        if wakeWaiters { changedLocked() }
    }

    /// In a forked child, for a connection that stays with the parent: closes the inherited
    /// descriptor — without the lock, which a parent thread may have held at fork and which
    /// no thread here will release — so the child does not keep the parent's TCP connection
    /// open. Only the forking thread exists, so nothing races.
    func closeDescriptorAfterFork() {
        if case .socket(let fd) = carrier, !released { Glibc.close(fd) }
        released = true
        transportClosed = true
        if handedOff == nil { handedOff = "the connection stayed with the parent process" }
    }

    private func checkHandedOff() throws(QuiverError) {
        if let handedOff { throw QuiverError(.closed, handedOff) }
    }

    /// Set once the core closed the socket: its number may already belong to another
    /// connection, so nothing may touch it again.
    private var released = false
    /// When bytes last moved on the transport, either way (for the idle timeout).
    private var lastActivity = Instant.now()

    var descriptor: Int32? {
        if case .socket(let fd) = carrier, !released { return fd }
        return nil
    }

    // MARK: - I/O side

    /// Starts the handshake (a client sends its ClientHello).
    func start() {
        monitor.withLock {
            run { () throws(TLSError) in try stream.start() }
            flushLocked()
            changedLocked()
        }
    }

    /// Reads what the transport has, feeds TLS, writes what TLS produced. Returns whether the
    /// session is finished (closed and nothing left to write), so the core can forget it, and
    /// whether anything arrived (the application may have something to do).
    func pump() -> (finished: Bool, progressed: Bool) {
        monitor.lock()
        defer { monitor.unlock() }
        let wasClosed = closeInfo != nil
        var reads = 0
        var progressed = false
        while stream.error == nil, !transportClosed, !readPaused, reads < 16 {
            reads += 1
            guard let bytes = readTransport() else { break }
            progressed = true
            lastActivity = .now()
            transportBytesLocked.received += bytes.count
            if bytes.isEmpty {
                transportClosed = true
                run { () throws(TLSError) in try stream.receiveEOF() }
                if closeInfo == nil, stream.isPeerClosed, stream.isLocallyClosed {
                    closeInfo = CloseInfo(origin: .peer, code: 0, isApplicationCode: false, reason: "")
                }
                break
            }
            run { () throws(TLSError) in try stream.receive(bytes) }
            if stream.readableBytes >= bufferLimit { pauseReading(true) }
        }
        // Stopped at the per-round limit with input possibly left: come back soon (an
        // edge-triggered watcher of the poll descriptor would not be told again).
        if reads == 16 { driver.wake() }
        if !handshakeComplete, stream.isHandshakeComplete { handshakeComplete = true }
        while stream.nextEvent() != nil {}
        flushLocked()
        changedLocked()
        return (closeInfo != nil && outgoing.isEmpty && transportClosed, progressed || (closeInfo != nil) != wasClosed)
    }

    /// Runs a TLS operation; a failure records the close reason (the alert is queued by TLS).
    private func run(_ body: () throws(TLSError) -> Void) {
        do throws(TLSError) {
            try body()
        } catch {
            if closeInfo == nil { closeInfo = CloseInfo(error) }
        }
    }

    private func readTransport() -> [UInt8]? {
        guard !released else { return [] }
        switch carrier {
        case .socket(let fd):
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if count > 0 { return Array(buffer[..<count]) }
            if count == 0 { return [] }
            if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { return nil }
            return []  // ECONNRESET and friends: the transport ended
        case .pair(let end):
            return end.read()
        }
    }

    /// Moves TLS output to the transport without blocking; keeps the rest.
    private func flushLocked() {
        if stream.hasOutgoing {
            // Taken over when nothing waits (no copy); the taken buffer goes once it is sent.
            if outgoing.isEmpty { stream.takeOutgoing(into: &outgoing) } else { outgoing += stream.takeOutgoing() }
        }
        if released { outgoing.removeAll() }
        while !outgoing.isEmpty {
            let written: Int
            switch carrier {
            case .socket(let fd):
                written = outgoing.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) }
                if written < 0 {
                    if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { break }
                    outgoing.removeAll()  // the peer is gone; reads will report it
                    transportClosed = true
                    if closeInfo == nil { closeInfo = CloseInfo(origin: .transport, code: 0, isApplicationCode: false, reason: "send failed: \(String(cString: strerror(errno)))") }
                    break
                }
            case .pair(let end):
                written = end.write(outgoing)
            }
            guard written > 0 else { break }
            transportBytesLocked.sent += written
            outgoing.removeFirst(written)
            lastActivity = .now()
        }
        if outgoing.isEmpty { TLSStream.empty(&outgoing) }
        let needOutput = !outgoing.isEmpty
        // Once we closed or failed and everything is written, the transport is done with.
        if !needOutput, !transportClosed, closeInfo != nil, closeInfo?.origin != .peer || stream.error != nil {
            endTransportLocked()
        }
        if needOutput != wantsOutput, let fd = descriptor {
            wantsOutput = needOutput
            driver.poll.setInterest(fd, tag: tag, input: !readPaused, output: needOutput)
        }
    }

    private func pauseReading(_ paused: Bool) {
        guard paused != readPaused else { return }
        readPaused = paused
        if let fd = descriptor { driver.poll.setInterest(fd, tag: tag, input: !paused, output: wantsOutput) }
    }

    private func endTransportLocked() {
        transportClosed = true
        guard !released else { return }
        switch carrier {
        case .socket(let fd): shutdown(fd, Int32(SHUT_RDWR))
        case .pair(let end): end.finish()
        }
    }

    /// Releases the transport (core, once the session is finished or the listener closes).
    func releaseTransport() {
        monitor.withLock {
            guard !released else { return }
            switch carrier {
            case .socket(let fd):
                Glibc.close(fd)
            case .pair(let end):
                end.close()
            }
            released = true
            transportClosed = true
            if closeInfo == nil { closeInfo = CloseInfo(origin: .local, code: 0, isApplicationCode: false, reason: "listener closed") }
            changedLocked()
        }
    }

    /// The handshake did not finish in time, or (`idle`) nothing moved on the established
    /// connection for the listener's idle timeout: the connection ends with origin
    /// ``CloseInfo/Origin/timeout`` — an idle one after a close_notify.
    func expire(idle: Bool) {
        monitor.withLock {
            guard closeInfo == nil else { return }
            if idle {
                stream.close()
                flushLocked()
            }
            closeInfo = CloseInfo(origin: .timeout, code: 0, isApplicationCode: false, reason: idle ? "idle timeout" : "handshake timed out")
            if outgoing.isEmpty { endTransportLocked() }
            changedLocked()
        }
    }

    /// How long no byte has moved on the transport, either way.
    func idleTime(at now: Instant) -> Duration {
        monitor.withLock { now - lastActivity }
    }

    // MARK: - Session

    private func closedError() -> QuiverError {
        QuiverError(.closed, "connection closed: \(closeInfo.map { "\($0)" } ?? "")")
    }

    func readLocked(_ key: StreamKey, maxBytes: Int) throws(QuiverError) -> [UInt8]? {
        try checkHandedOff()
        guard key == nil || key == 0 else { throw QuiverError(.configuration, "a TLS connection has only its default stream") }
        if readStopCode != nil { return [] }
        if stream.readableBytes > 0 {
            let bytes = stream.read(maxBytes: maxBytes)
            if readPaused, stream.readableBytes < bufferLimit / 2 {
                pauseReading(false)
                serviceRequested = true  // read the transport again
            }
            return bytes
        }
        if stream.isPeerClosed { return [] }
        if let closeInfo {
            if closeInfo.origin == .local, closeInfo.code == 0, transportClosed { return [] }
            throw QuiverError(.closed, "connection closed: \(closeInfo)")
        }
        return nil
    }

    func writeLocked(_ key: StreamKey, _ bytes: ArraySlice<UInt8>, blocking: Bool) throws(QuiverError) -> Int {
        try checkHandedOff()
        guard key == nil || key == 0 else { throw QuiverError(.configuration, "a TLS connection has only its default stream") }
        if let closeInfo { throw QuiverError(.closed, "connection closed: \(closeInfo)") }
        guard !stream.isLocallyClosed else { throw QuiverError(.closed, "the stream was finished") }
        guard outgoing.count < bufferLimit, handshakeComplete else { return 0 }
        let count = min(bytes.count, bufferLimit)
        do throws(TLSError) { try stream.write(bytes.prefix(count)) } catch {
            run { () throws(TLSError) in throw error }
            throw error.quiverError
        }
        flushLocked()
        if !outgoing.isEmpty { serviceRequested = true }
        return count
    }

    func finishLocked(_ key: StreamKey) throws(QuiverError) {
        try checkHandedOff()
        if let closeInfo { throw QuiverError(.closed, "connection closed: \(closeInfo)") }
        guard !stream.isLocallyClosed else { return }
        stream.close()  // close_notify: TLS 1.3 half-close (RFC 8446 §6.1)
        flushLocked()
        serviceRequested = true
    }

    func resetLocked(_ key: StreamKey, code: UInt64) throws(QuiverError) { closeLocked(code: code, reason: "reset") }
    func stopSendingLocked(_ key: StreamKey, code: UInt64) throws(QuiverError) {
        try checkHandedOff()
        guard readStopCode == nil else { return }
        readStopCode = code
        _ = stream.read(maxBytes: stream.readableBytes)  // what arrived is dropped, as QUIC drops it
        pauseReading(true)
        changedLocked()  // a blocked read returns the end
    }
    func acceptStreamLocked() throws(QuiverError) -> UInt64? {
        try checkHandedOff()
        if closeInfo != nil { throw closedError() }
        return nil
    }
    func openStreamLocked(bidirectional: Bool) throws(QuiverError) -> UInt64? {
        throw QuiverError(.configuration, "TLS over TCP carries one stream: use the connection's default stream")
    }

    func closeLocked(code: UInt64, reason: String) {
        guard closeInfo == nil else { return }
        if code == 0 {
            stream.close()
            flushLocked()
        } else if let fd = descriptor {
            // An abortive close: RST instead of FIN (SO_LINGER with a zero timeout).
            var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
            outgoing.removeAll()
        }
        closeInfo = CloseInfo(origin: .local, code: code, isApplicationCode: true, reason: reason)
        if outgoing.isEmpty { endTransportLocked() }
        serviceRequested = true  // the core forgets the session once the transport is done
        changedLocked()
    }

    var isFlushedLocked: Bool { outgoing.isEmpty && !stream.hasOutgoing }
    var closeInfoLocked: CloseInfo? { closeInfo }
    var isReadyLocked: Bool { handshakeComplete || closeInfo != nil }
    var isTerminatedLocked: Bool { transportClosed && outgoing.isEmpty || driver.isStopped }

    var isCloseSentLocked: Bool { isTerminatedLocked }

    func readinessLocked(_ key: StreamKey) -> PollEvents {
        if handedOff != nil { return [.error, .readable] }
        var events: PollEvents = []
        if closeInfo != nil { events.insert(.error) }
        if stream.readableBytes > 0 || stream.isPeerClosed || closeInfo != nil { events.insert(.readable) }
        if handshakeComplete, closeInfo == nil, outgoing.count < bufferLimit { events.insert(.writable) }
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
        let sending: Stream.State.Sending = failed ? .closed : stream.isLocallyClosed ? (outgoing.isEmpty ? .delivered : .finished) : .open
        let receiving: Stream.State.Receiving = if let readStopCode { .stopped(code: readStopCode) } else {
            stream.isPeerClosed ? .finished : failed || transportClosed ? .closed : .open
        }
        return Stream.State(sending: sending, receiving: receiving)
    }
}
