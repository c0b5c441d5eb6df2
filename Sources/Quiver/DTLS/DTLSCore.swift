#if canImport(Glibc)
import Glibc
#endif
import QuiverCore
import QuiverTLS
import QuiverUDP
import Synchronization

/// The I/O side of a DTLS listener (a ``DTLSEndpoint``: many peers on its attachments) or
/// client (one ``DTLSConnection``): attachments, the engine and the accept queue, under one lock
/// that the loop holds while it handles events — ``QUICCore``'s shape. Application commands run
/// on the loop (``Driver/perform(_:)``) and post their session to ``inbox``; each round the core
/// feeds the engine what arrived, fires its timers, files completed handshakes for accept, lets
/// the sessions it worked on absorb what changed, and sends their datagrams.
///
/// A server association lives in the endpoint, keyed by the peer's address, from its first
/// ClientHello with a valid cookie; its ``DTLSSession`` is made when the handshake completes. The
/// core forgets the association once its session closed and sent its last datagram, or when
/// the client starts a new one from the same address (the old session then ends).
final class DTLSCore: DriverCore, @unchecked Sendable {
    // @unchecked: mutable state is guarded by `lock` (or is the Mutex `inbox`); the engines
    // belong to the driver's owner.
    enum Engine {
        case server(DTLSEndpoint)
        /// One connection on its own attachment: a client, or a server connection a forked
        /// child took over (``fork(handingOff:)``).
        case single(DTLSSession)
    }

    struct Inbox {
        var sessions: [DTLSSession] = []
        var arrivals: Set<Int> = []
    }

    /// A datagram on its way to an attachment, and the session whose send buffer it counts in.
    private struct Outgoing {
        var destination: SocketAddress
        var bytes: [UInt8]
        var session: DTLSSession?
    }

    let driver: Driver
    let lock = Monitor()
    /// Where a listener's accepted connections go (`nil` for a client).
    private let acceptQueue: AcceptQueue?
    private var engine: Engine?
    /// A listener's log of failed handshakes (set before the driver starts).
    var handshakeLog: HandshakeFailureLog?
    /// A listener's metrics (set before the driver starts; `nil` without a backend).
    var metrics: ListenerMetrics?
    /// The endpoint's failed handshakes already counted in ``metrics`` (its queue of failures
    /// is bounded: the rest are counted as `other`).
    private var failuresCounted = 0
    /// Bytes the attachments moved since the metrics last took them in (once a round).
    private var transportBytes = (received: 0, sent: 0)
    /// The UDP sockets and datagram pairs.
    private let ports = DatagramAttachments()
    /// A server's sessions by peer address (a client's one session is ``engine``'s).
    private var sessions: [SocketAddress: DTLSSession] = [:]
    /// Datagrams not yet handed to an attachment, in order; the head waits for
    /// ``stalledAttachment`` when a UDP socket is full.
    private var outbox: [Outgoing] = []
    /// The most datagrams of the endpoint's own (HelloVerifyRequests, handshake flights,
    /// refusals) the outbox holds while a socket is full; more are dropped, as the network
    /// could have (the sessions' datagrams are bounded by their send buffers instead).
    static let maxQueuedEndpointDatagrams = 4096
    /// The next datagram of ``outbox`` to send.
    private var outboxHead = 0
    private var stalledAttachment: Int?
    private var heapTrimmer = HeapTrimmer()
    private(set) var isClosed = false
    private let inbox = Mutex(Inbox())
    /// Sessions worked on this round (their events are absorbed and datagrams sent at its end).
    private var touched: [ObjectIdentifier: DTLSSession] = [:]
    /// Whether this round took in input or fired timers (for the application-driven wake-up).
    private var roundProgressed = false
    let sendBufferLimit: Int
    /// Established connections with nothing moving for this long are closed (`nil`: never).
    private let idleTimeout: Duration?
    /// When sessions are next checked for idleness: every quarter of the idle timeout, as
    /// ``TLSCore`` does (one comparison per connection, not a timer per connection).
    private var nextIdleSweep: Instant?
    /// A client's handshake must complete within this.
    private let handshakeTimeout: Duration

    init(driver: Driver, acceptQueue: AcceptQueue?, sendBufferLimit: Int, idleTimeout: Duration?, handshakeTimeout: Duration) {
        self.driver = driver
        self.acceptQueue = acceptQueue
        self.sendBufferLimit = sendBufferLimit
        self.idleTimeout = idleTimeout.flatMap { $0 > .zero ? $0 : nil }
        self.handshakeTimeout = handshakeTimeout
    }

    // MARK: - Set-up

    func setServer(_ endpoint: DTLSEndpoint) {
        engine = .server(endpoint)
    }

    /// Makes `connection` (a client's, started) this core's single connection with `peer`.
    func setClient(_ connection: DTLSConnection, peer: SocketAddress) -> DTLSSession {
        let session = DTLSSession(engine: connection, peer: peer, core: self, sendBufferLimit: sendBufferLimit)
        engine = .single(session)
        inbox.withLock { $0.sessions.append(session) }
        return session
    }

    /// Adds an attachment (lock held by the caller or before the driver starts).
    func addAttachment(_ attachment: Attachment) throws(QuiverError) {
        try ports.add(attachment, driver: driver, transport: "DTLS") { [weak self] index in self?.arrived(on: index) }
    }

    /// A datagram pair has datagrams (any thread).
    private func arrived(on index: Int) {
        inbox.withLock { _ = $0.arrivals.insert(index) }
        driver.wake()
    }

    var localAddresses: [SocketAddress] {
        lock.withLock { ports.localAddresses }
    }

    // MARK: - Application side

    /// Called by sessions after an application command (without their lock).
    func sessionNeedsService(_ session: DTLSSession) {
        guard !driver.isAbandoned else { return }  // a forked child's copy of a parent's listener
        inbox.withLock { $0.sessions.append(session) }
        driver.wake()
    }

    // MARK: - DriverCore

    var nextDeadline: Instant? {
        lock.withLock {
            guard !isClosed, let engine else { return nil }
            var deadlines = [nextIdleSweep, heapTrimmer.deadline]
            switch engine {
            case .server(let endpoint):
                deadlines.append(endpoint.nextDeadline)
            case .single(let session):
                let connection = session.engineForCore()
                deadlines.append(connection.nextTimeout)
                if !connection.isHandshakeComplete { deadlines.append(session.createdAt + handshakeTimeout) }
            }
            return deadlines.compactMap { $0 }.min()
        }
    }

    func handleEvents(_ ready: [EventPoll.Ready]) {
        lock.lock()
        defer { lock.unlock() }
        guard !isClosed, let engine else { return }
        let work = inbox.withLock { inbox -> Inbox in
            let work = inbox
            inbox = Inbox()
            return work
        }
        roundProgressed = false
        let now = Instant.now()
        for session in work.sessions { touched[ObjectIdentifier(session)] = session }
        receiveAll(engine, arrivals: work.arrivals, now: now)
        switch engine {
        case .server(let endpoint):
            if let deadline = endpoint.nextDeadline, deadline <= now {
                endpoint.handleTimeout(at: now)
                roundProgressed = true
            }
            var failures = 0
            while let failure = endpoint.nextFailedHandshake() {
                failures += 1
                metrics?.handshakeFailed(HandshakeFailureReason(CloseInfo(failure.error), transport: .dtls))
                handshakeLog?.record(.dtls, peer: failure.peer, reason: "\(failure.error)", at: now)
            }
            metrics?.handshakesFailedBeyondQueue(total: endpoint.statistics.handshakesFailed, drained: failures, counted: &failuresCounted)
            while let accepted = endpoint.accept() {
                let session = DTLSSession(engine: accepted.connection, peer: accepted.peer, core: self, sendBufferLimit: sendBufferLimit)
                sessions[accepted.peer] = session
                touched[ObjectIdentifier(session)] = session
                scheduleIdleSweep(at: now)
            }
        case .single(let session):
            let connection = session.engineForCore()
            if let deadline = connection.nextTimeout, deadline <= now {
                try? connection.handleTimeout(now: now)
                roundProgressed = true
            }
            if !connection.isHandshakeComplete, now - session.createdAt >= handshakeTimeout {
                session.monitor.withLock { session.expireLocked(idle: false) }
                roundProgressed = true
            }
            touched[ObjectIdentifier(session)] = session
        }
        sweepIdle(at: now)
        settleTouched(engine, at: now)
        transmit(at: now)
        metrics?.add(transportBytes: &transportBytes)
        // An application-driven loop learns of new input only through the descriptor: input
        // taken in now (perhaps in its last call of a round) must make it readable again.
        if roundProgressed || acceptQueue?.isEmpty == false, !driver.isThreadAssisted { driver.wake() }
        heapTrimmer.trimIfDue(at: now)
    }

    /// The sessions worked on this round absorb what changed, hand over their datagrams, and
    /// are filed: newly established ones for accept, finished ones forgotten.
    private func settleTouched(_ engine: Engine, at now: Instant) {
        for session in touched.values {
            session.monitor.lock()
            session.absorbEventsLocked()
            for datagram in session.takeDatagramsLocked() {
                outbox.append(Outgoing(destination: session.peerAddress!, bytes: datagram, session: session))
            }
            let ready = session.isReadyLocked, finished = session.isFinishedLocked
            // A connection established and closed by its peer in one round (DTLS 1.3: the
            // client's Finished, a message and an alert arrive together) is still handed to
            // accept, as accept(2) hands over a connection reset before it was accepted: the
            // application reads what the peer sent, then its close.
            let queue = !session.isQueuedForAccept && ready && (session.closeInfoLocked == nil || session.isEstablishedLocked)
            if queue { session.isQueuedForAccept = true }
            session.monitor.unlock()
            if queue {
                metrics?.opened(&session.metricsAccount)
                acceptQueue?.append(session)
            }
            if case .server(let endpoint) = engine, let peer = session.peerAddress, sessions[peer] === session {
                if finished {
                    metrics?.ended(&session.metricsAccount)
                    sessions[peer] = nil
                    endpoint.release(peer)
                    heapTrimmer.connectionsRemaining(sessions.count, at: now)
                } else {
                    endpoint.updateTimer(for: peer)  // a write may have started a KeyUpdate
                }
            }
        }
        touched.removeAll(keepingCapacity: true)
        if case .server(let endpoint) = engine {
            for (destination, bytes) in endpoint.takeDatagrams() where outbox.count - outboxHead < Self.maxQueuedEndpointDatagrams {
                outbox.append(Outgoing(destination: destination, bytes: bytes))
            }
        }
    }

    // MARK: - Timers

    private func scheduleIdleSweep(at now: Instant) {
        guard let idleTimeout, nextIdleSweep == nil else { return }
        nextIdleSweep = now + idleTimeout / 4
    }

    /// Closes (with close_notify) the established connections silent for the idle timeout.
    private func sweepIdle(at now: Instant) {
        guard let idleTimeout, let sweep = nextIdleSweep, sweep <= now else { return }
        for session in sessions.values {
            let expired = session.monitor.withLock { () -> Bool in
                guard session.closeInfoLocked == nil, session.idleTimeLocked(at: now) >= idleTimeout else { return false }
                session.expireLocked(idle: true)
                return true
            }
            if expired {
                touched[ObjectIdentifier(session)] = session
                roundProgressed = true
            }
        }
        nextIdleSweep = sessions.isEmpty ? nil : now + idleTimeout / 4
    }

    // MARK: - Input

    private func receiveAll(_ engine: Engine, arrivals: Set<Int>, now: Instant) {
        ports.receive(arrivals: arrivals, driver: driver, routes: 4 * sessions.count, again: arrived(on:),
                      peerErrors: handlePeerErrors) { bytes, source, _, index in
            transportBytes.received += bytes.count
            deliver(bytes, from: source, attachment: index, engine: engine, now: now)
        }
    }

    private func deliver(_ datagram: [UInt8], from source: SocketAddress, attachment: Int, engine: Engine, now: Instant) {
        roundProgressed = true
        switch engine {
        case .server(let endpoint):
            endpoint.receive(datagram, from: source, at: now)
            while let (from, to) = endpoint.nextMigration() {
                // A client's new address, by its Connection ID: its session goes with it.
                guard let session = sessions.removeValue(forKey: from) else { continue }
                session.migrate(to: to)
                sessions[to] = session
            }
            guard let session = sessions[source] else { return }
            if endpoint.connection(for: source) !== session.engineForCore() {
                // RFC 6347 §4.2.8: the client proved its address with a new handshake; the old
                // association is gone.
                sessions[source] = nil
                metrics?.ended(&session.metricsAccount)
                session.monitor.withLock { session.endLocked(origin: .peer, reason: "the client started a new association from the same address") }
                return
            }
            session.monitor.withLock { session.receivedLocked(at: now) }
            touched[ObjectIdentifier(session)] = session
        case .single(let session):
            // An unconnected client socket hears from anyone: only the server's datagrams count.
            guard source == session.peerAddress || !ports.list[attachment].isAddressed else { return }
            try? session.engineForCore().receive(datagram, now: now)
            session.monitor.withLock { session.receivedLocked(at: now) }
        }
    }

    // MARK: - Output

    /// Hands the outbox to the attachments in order, until a UDP socket is full (its output
    /// readiness is then watched and the rest waits).
    private func transmit(at now: Instant) {
        if let index = stalledAttachment {
            guard ports.resume(index, driver: driver, peerErrors: handlePeerErrors) else { return }
            stalledAttachment = nil
        }
        while outboxHead < outbox.count {
            let next = outbox[outboxHead]
            if let full = ports.send(next.bytes, to: next.destination, driver: driver, peerErrors: handlePeerErrors) {
                stalledAttachment = full
                return
            }
            outboxHead += 1
            transportBytes.sent += next.bytes.count
            if let session = next.session { session.monitor.withLock { session.sentLocked(next.bytes.count, at: now) } }
        }
        outbox.removeAll(keepingCapacity: true)
        outboxHead = 0
        ports.flushAll(peerErrors: handlePeerErrors)
    }

    /// ICMP reports (counted already): a client whose server is unreachable before it answered
    /// fails as a refused TCP connection does.
    private func handlePeerErrors(_ reports: [UDPPeerError]) {
        guard case .single(let session)? = engine else { return }
        for report in reports where report.peer == session.peerAddress {
            let code = report.error.code
            guard code == .connectionRefused || code == .hostUnreachable || code == .networkUnreachable else { continue }
            let errno = report.error.errno
            session.monitor.withLock {
                session.unreachableLocked("connect \(report.peer) failed: \(String(cString: strerror(errno))) (errno \(errno))")
            }
            roundProgressed = true
        }
    }

    // MARK: - Diagnostics

    /// Counters for ``Listener/statistics``.
    var statistics: Listener.Statistics {
        lock.withLock {
            var statistics = ports.statistics
            if case .server(let endpoint) = engine {
                statistics.connections = endpoint.connectionCount
                statistics.pendingConnections = endpoint.pendingConnectionCount
                statistics.dtls = Listener.Statistics.DTLS(endpoint.statistics)
            }
            return statistics
        }
    }

    var debugDescription: String {
        lock.withLock { "dtls sessions=\(sessions.count) outbox=\(outbox.count - outboxHead) udp=\(ports.counters) \(statistics)" }
    }

    // MARK: - Fork hand-off

    /// Forks the process and hands `session` to the child (``Listener/fork(handingOff:)``), as
    /// ``QUICCore/fork(handingOff:)`` does: before fork, with the loop parked and both locks
    /// held, a UDP socket is bound to the listener's address with SO_REUSEPORT and connected to
    /// the peer (the kernel prefers it for the peer's datagrams from then on), what waits in the
    /// listener's socket is taken in, and the child's core is made. The parent then forgets the association without sending anything; the
    /// child abandons its copy of this listener and runs the connection alone.
    func fork(handingOff session: DTLSSession) throws(QuiverError) -> Listener.ForkResult {
        let park = driver.parkLoop()
        var isChild = false
        defer { if !isChild { park?.release() } }
        lock.lock()
        defer { lock.unlock() }
        guard !isClosed, case .server(let endpoint) = engine else { throw QuiverError(.closed, "the listener is closed") }
        guard let peer = session.peerAddress, sessions[peer] === session else {
            throw QuiverError(.configuration, "the connection is not this listener's, or was handed off already")
        }
        let socket = try ports.handOffSocket(to: peer, from: nil, configuration: Listener.dtlsSocketConfiguration)
        // The peer's datagrams go to the child's socket from now on; those that reached the
        // listener's socket before it existed (its first messages, sent as the handshake ended)
        // are taken in now, into the connection the child gets. After the fork the parent would
        // drop them, and DTLS does not retransmit application data (QUIC's loss recovery covers
        // the same window).
        let now = Instant.now()
        receiveAll(.server(endpoint), arrivals: [], now: now)
        // And any peer's datagrams the kernel put in the new socket before it was connected
        // (other clients' first messages would be lost in the child, which hears only its peer).
        ports.receiveStray(from: socket, as: ports.attachment(for: peer), driver: driver) { bytes, source, _, index in
            deliver(bytes, from: source, attachment: index, engine: .server(endpoint), now: now)
        }
        let childCore = DTLSCore(driver: try Driver(threadAssisted: driver.isThreadAssisted), acceptQueue: nil,
                                 sendBufferLimit: sendBufferLimit, idleTimeout: idleTimeout, handshakeTimeout: handshakeTimeout)
        try childCore.addAttachment(.udp(socket))
        acceptQueue?.monitor.lock()
        defer { acceptQueue?.monitor.unlock() }
        session.monitor.lock()
        defer { session.monitor.unlock() }
        if let info = session.closeInfoLocked { throw QuiverError(.closed, "connection closed: \(info)") }
        let childSession = DTLSSession(adopting: session, core: childCore)
        childCore.engine = .single(childSession)
        childCore.inbox.withLock { $0.sessions.append(childSession) }
        let pid = driver.fork()
        if pid < 0 {
            let failure = QuiverError(.io, "fork: \(String(cString: strerror(errno)))")
            childCore.discard()
            throw failure
        }
        if pid > 0 {
            childCore.discard()  // the child's: close this process's copies of its descriptors
            _ = session.engineForCore().takeDatagrams()  // the child sends from now on
            endpoint.release(peer)
            sessions[peer] = nil
            metrics?.ended(&session.metricsAccount)  // this process serves it no more
            acceptQueue?.removeLocked(session)
            session.handOffLocked("handed off to process \(pid)", wakeWaiters: true)
            return .parent(child: pid)
        }
        isChild = true
        session.handOffLocked("handed off to this process's copy", wakeWaiters: false)
        discard()
        return Listener.startInChild(childSession, core: childCore, logger: handshakeLog?.logger)
    }

    /// Drops everything without sending anything and closes this process's copies of the
    /// descriptors (see ``QUICCore``'s).
    private func discard() {
        isClosed = true
        driver.abandonAfterFork()
        ports.discard()
        engine = nil
        sessions.removeAll()
        outbox.removeAll()
        outboxHead = 0
        acceptQueue?.closeLocked()
    }

    // MARK: - Closing

    /// Closes every connection (close_notify for code 0, a fatal alert otherwise, sent once),
    /// wakes their waiters and stops the driver; the attachments are released.
    func close(code: UInt64, reason: String) {
        var all: [DTLSSession] = []
        driver.perform(locksCore: false) {
            lock.lock()
            defer { lock.unlock() }
            guard !isClosed, let engine else {
                isClosed = true
                return
            }
            switch engine {
            case .server: all = Array(sessions.values)
            case .single(let session): all = [session]
            }
            for session in all {
                session.monitor.withLock { session.closeLocked(code: code, reason: reason) }
                touched[ObjectIdentifier(session)] = session
            }
            settleTouched(engine, at: .now())
            transmit(at: .now())
            metrics?.add(transportBytes: &transportBytes)
            if let metrics { for session in sessions.values { metrics.ended(&session.metricsAccount) } }
            isClosed = true
            sessions.removeAll()
            outbox.removeAll()
            outboxHead = 0
            self.engine = nil  // a client's session holds this core: break the cycle
        }
        driver.stop()
        for session in all { session.monitor.withLock { session.changedLocked() } }
        ports.detachPairs()
    }
}

extension DTLSCore: TransportCore {
    func attachLocked(_ attachment: Attachment) throws(QuiverError) { try addAttachment(attachment) }

    func fork(handingOff session: any Session) throws(QuiverError) -> Listener.ForkResult {
        guard let session = session as? DTLSSession else { throw QuiverError(.configuration, "the connection is not this listener's") }
        return try fork(handingOff: session)
    }

    /// DTLS has no closing period: the close_notify is sent at once.
    func lingerThenClose() { close(code: 0, reason: "") }
    func closeUnlessLingering() { close(code: 0, reason: "") }
}

extension Listener.Statistics.DTLS {
    init(_ endpoint: DTLSEndpoint.Statistics) {
        self.init(helloVerifyRequestsSent: endpoint.helloVerifyRequestsSent, helloRetryRequestsSent: endpoint.helloRetryRequestsSent,
                  peersMigrated: endpoint.peersMigrated, connectionsCreated: endpoint.connectionsCreated,
                  connectionsRefused: endpoint.connectionsRefused, handshakesFailed: endpoint.handshakesFailed,
                  datagramsDropped: endpoint.datagramsDropped, connectionsReplaced: endpoint.connectionsReplaced)
    }
}
