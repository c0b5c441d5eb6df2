#if canImport(Glibc)
import Glibc
#endif
import QuiverCore
import QuiverTLS
import QuiverTLSSocket
import Synchronization

/// The I/O side of a TLS listener (listening TCP sockets and/or stream pairs) or TLS client:
/// accepts TCP connections, drives handshakes and moves bytes for connections whose socket is
/// ready. Application reads and writes take only their connection's lock.
final class TLSCore: DriverCore, @unchecked Sendable {
    // @unchecked: mutable state is guarded by `lock` (or is the Mutex `inbox`).
    let driver: Driver
    let lock = Monitor()
    /// Where a listener's accepted connections go (`nil` for a client).
    private let acceptQueue: AcceptQueue?
    private let configuration: TLSConfiguration
    private let handshakeTimeout: Duration
    /// A listener's log of failed handshakes (set before the driver starts).
    var handshakeLog: HandshakeFailureLog?
    /// A listener's metrics (set before the driver starts; `nil` without a backend).
    var metrics: ListenerMetrics?
    /// When the byte counters next take in what live connections did.
    private var metricsRefresh = ListenerMetrics.RefreshSchedule()
    private let bufferLimit: Int
    /// The listening sockets, indexed by their poll tag; `nil` once ``closeListeningSockets()``
    /// closed one (tags are never reused).
    private var listeners: [TCPSocket?] = []
    private var sessions: [UInt64: TLSSession] = [:]
    private var handshaking: [UInt64: TLSSession] = [:]
    private var nextTag: UInt64 = 1 << 32
    private(set) var isClosed = false
    private let inbox = Mutex<[UInt64]>([])
    /// Bounds the connections a listener holds (handshaking plus established), shared by its
    /// event loops.
    private let budget: ConnectionBudget
    private var heapTrimmer = HeapTrimmer()
    /// What ``statistics`` reports of this core's connections.
    private var counters = Listener.Statistics.TLS()
    /// Established connections with nothing moving for this long are closed (`nil`: never).
    private let idleTimeout: Duration?
    /// When established sessions are next checked for idleness: every quarter of the idle
    /// timeout, so a connection ends between 1 and 1.25 idle timeouts after its last byte
    /// (a sweep costs one comparison per connection, not a timer per connection).
    private var nextIdleSweep: Instant?

    init(driver: Driver, acceptQueue: AcceptQueue?, configuration: TLSConfiguration, handshakeTimeout: Duration, bufferLimit: Int,
         budget: ConnectionBudget, idleTimeout: Duration? = nil) {
        self.driver = driver
        self.acceptQueue = acceptQueue
        self.configuration = configuration
        self.handshakeTimeout = handshakeTimeout
        self.bufferLimit = bufferLimit
        self.budget = budget
        self.idleTimeout = idleTimeout.flatMap { $0 > .zero ? $0 : nil }
    }

    func addAttachment(_ attachment: Attachment) throws(QuiverError) {
        switch attachment.kind {
        case .tcpListener(let socket):
            _ = fcntl(socket.descriptor, F_SETFL, fcntl(socket.descriptor, F_GETFL) | O_NONBLOCK)
            try driver.poll.add(socket.descriptor, tag: UInt64(listeners.count))
            listeners.append(socket)
        case .stream(let end, let peer):
            _ = try addSession(carrier: .pair(end), peer: peer, client: nil)
        case .udp, .datagrams:
            throw QuiverError(.configuration, "a TLS listener takes TCP listening sockets or stream pairs, not \(attachment)")
        }
    }

    var localAddresses: [SocketAddress] { lock.withLock { listeners.compactMap { $0?.localAddress } } }

    /// Creates a session on `carrier`: a server one, or a client one when `client` names the
    /// server. Lock held by the caller (or before the driver starts).
    /// - Throws: `.closed` at the connection limit; `.io` when the socket cannot be watched.
    func addSession(carrier: TLSSession.Carrier, peer: SocketAddress?, client: String??) throws(QuiverError) -> TLSSession {
        guard budget.take() else { throw QuiverError(.closed, "at the connection limit (\(budget.limit))") }
        let stream = switch client {
        case .some(let serverName): TLSStream(client: configuration, serverName: serverName)
        case .none: TLSStream(server: configuration)
        }
        let tag = nextTag
        nextTag += 1
        let session = TLSSession(stream: stream, carrier: carrier, peer: peer, tag: tag, core: self, bufferLimit: bufferLimit)
        switch carrier {
        case .socket(let fd):
            do throws(QuiverError) { try driver.poll.add(fd, tag: tag) } catch {
                budget.giveBack()
                throw error
            }
        case .pair(let end):
            end.setActivityHandler { [weak self] in self?.sessionNeedsService(tag: tag) }
        }
        sessions[tag] = session
        handshaking[tag] = session
        scheduleIdleSweep()
        session.start()
        inbox.withLock { $0.append(tag) }
        driver.wake()
        return session
    }

    // MARK: - Application side

    func sessionNeedsService(_ session: TLSSession) { sessionNeedsService(tag: session.tag) }

    private func sessionNeedsService(tag: UInt64) {
        guard !driver.isAbandoned else { return }  // a forked child's copy of a parent's listener
        inbox.withLock { $0.append(tag) }
        driver.wake()
    }

    var statistics: Listener.Statistics {
        lock.withLock {
            var statistics = Listener.Statistics()
            statistics.connections = sessions.count
            statistics.pendingConnections = handshaking.count
            statistics.tls = counters
            return statistics
        }
    }

    // MARK: - DriverCore

    var nextDeadline: Instant? {
        lock.withLock {
            let handshakeDeadline = handshaking.values.lazy.map { $0.createdAt + self.handshakeTimeout }.min()
            return [handshakeDeadline, nextIdleSweep, heapTrimmer.deadline].compactMap { $0 }.min()
        }
    }

    /// Arms the idle sweep when the first session arrives.
    private func scheduleIdleSweep() {
        guard let idleTimeout, nextIdleSweep == nil else { return }
        nextIdleSweep = Instant.now() + idleTimeout / 4
    }

    func handleEvents(_ ready: [EventPoll.Ready]) {
        lock.lock()
        defer { lock.unlock() }
        guard !isClosed else { return }
        var touched = Set(inbox.withLock { tags -> [UInt64] in
            defer { tags.removeAll(keepingCapacity: true) }
            return tags
        })
        for event in ready where event.tag != EventPoll.wakerTag {
            if event.tag < 1 << 32 {
                acceptTCP(on: Int(event.tag))
            } else {
                touched.insert(event.tag)
            }
        }
        var progressed = false
        for tag in touched {
            guard let session = sessions[tag] else { continue }
            progressed = service(session) || progressed
        }
        let now = Instant.now()
        for session in handshaking.values where now - session.createdAt >= handshakeTimeout {
            session.expire(idle: false)
            _ = service(session)
            progressed = true
        }
        if let idleTimeout, let sweep = nextIdleSweep, sweep <= now {
            for session in sessions.values where handshaking[session.tag] == nil && session.idleTime(at: now) >= idleTimeout {
                session.expire(idle: true)
                _ = service(session)
                progressed = true
            }
            nextIdleSweep = sessions.isEmpty ? nil : now + idleTimeout / 4
        }
        heapTrimmer.trimIfDue(at: now)
        metrics?.refresh(sessions.values, at: now, schedule: &metricsRefresh)
        // An application-driven loop learns of new input only through the descriptor: input
        // taken in now (perhaps in its last call of a round) must make it readable again.
        if progressed, !driver.isThreadAssisted { driver.wake() }
    }

    /// Pumps a session and files it (accept queue, forgotten); returns whether input arrived.
    private func service(_ session: TLSSession) -> Bool {
        let (finished, progressed) = session.pump()
        if handshaking[session.tag] != nil, session.monitor.withLock({ session.isReadyLocked }) {
            handshaking[session.tag] = nil
            if !session.handshakeComplete, let info = session.monitor.withLock({ session.closeInfoLocked }) {
                counters.handshakesFailed += 1
                metrics?.handshakeFailed(HandshakeFailureReason(info, transport: .tcp))
                handshakeLog?.record(.tcp, peer: session.peerAddress, reason: "\(info)", at: .now())
            }
            if session.handshakeComplete, !session.isQueuedForAccept {
                session.isQueuedForAccept = true
                metrics?.opened(&session.metricsAccount)
                acceptQueue?.append(session)
            }
        }
        if finished { forget(session) }
        return progressed
    }

    private func forget(_ session: TLSSession) {
        metrics?.ended(session)
        if let fd = session.descriptor { driver.poll.remove(fd) }
        sessions[session.tag] = nil
        handshaking[session.tag] = nil
        budget.giveBack()
        session.releaseTransport()
        heapTrimmer.connectionsRemaining(sessions.count, at: .now())
    }

    private func acceptTCP(on index: Int) {
        // An event collected before closeListeningSockets() ran: nothing to accept here now.
        guard index < listeners.count, let listener = listeners[index] else { return }
        for _ in 0..<64 {
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let fd = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.accept(listener.descriptor, $0, &length)
                }
            }
            guard fd >= 0 else { return }  // EAGAIN, or a per-connection error: never fatal
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            let peer = SocketAddress(storage: storage)
            guard budget.hasRoom else {  // refused: closed at once
                Glibc.close(fd)
                counters.connectionsRefused += 1
                continue
            }
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            if (try? addSession(carrier: .socket(fd), peer: peer, client: nil)) == nil {
                Glibc.close(fd)
                counters.connectionsRefused += 1  // another loop took the last place (or the socket cannot be watched)
            } else {
                counters.connectionsAccepted += 1
            }
        }
        driver.wake()  // more may be waiting
    }

    // MARK: - Fork hand-off

    /// Forks the process and hands `session` to the child (``Listener/fork(handingOff:)``).
    ///
    /// Before fork, with the loop parked (``Driver/parkLoop()``) and this core's lock and the
    /// connection's lock held: the child's core and copy of the session are made, its
    /// poll watching the same socket. The parent then closes its copy of the socket and
    /// forgets the connection; the child abandons its copy of this listener (closing every
    /// inherited descriptor but the handed-off socket) and runs the connection alone.
    func fork(handingOff session: TLSSession) throws(QuiverError) -> Listener.ForkResult {
        // The loop's thread waits between two rounds while this one forks (Driver.parkLoop()).
        let park = driver.parkLoop()
        var isChild = false
        defer { if !isChild { park?.release() } }
        lock.lock()
        defer { lock.unlock() }
        guard !isClosed else { throw QuiverError(.closed, "the listener is closed") }
        guard sessions[session.tag] === session else {
            throw QuiverError(.configuration, "the connection is not this listener's, or was handed off already")
        }
        let childCore = TLSCore(driver: try Driver(threadAssisted: driver.isThreadAssisted), acceptQueue: nil, configuration: configuration,
                                handshakeTimeout: handshakeTimeout, bufferLimit: bufferLimit, budget: ConnectionBudget(limit: 1),
                                idleTimeout: idleTimeout)
        acceptQueue?.monitor.lock()
        defer { acceptQueue?.monitor.unlock() }
        session.monitor.lock()
        defer { session.monitor.unlock() }
        guard let fd = session.descriptor else {
            throw QuiverError(.configuration, "a hand-off needs a TCP socket (an in-memory pair cannot move to another process)")
        }
        if let info = session.closeInfoLocked { throw QuiverError(.closed, "connection closed: \(info)") }
        let childSession = try childCore.adopt(session, descriptor: fd)
        let pid = driver.fork()
        if pid < 0 {
            let failure = QuiverError(.io, "fork: \(String(cString: strerror(errno)))")
            childSession.monitor.withLock { childSession.handOffLocked("fork failed", wakeWaiters: false) }
            childCore.discard()
            throw failure
        }
        if pid > 0 {
            driver.poll.remove(fd)
            childCore.discard()  // the child's: closes this process's copies of its descriptors (the socket too)
            sessions[session.tag] = nil
            handshaking[session.tag] = nil
            budget.giveBack()
            metrics?.ended(&session.metricsAccount, session.metricsSampleLocked)  // this process serves it no more
            acceptQueue?.removeLocked(session)
            session.handOffLocked("handed off to process \(pid)", wakeWaiters: true)
            return .parent(child: pid)
        }
        // The child. Only this thread exists (the parked loop's is the parent's only); the locks
        // held are ours and released on return.
        isChild = true
        session.handOffLocked("handed off to this process's copy", wakeWaiters: false)
        discard()
        return Listener.startInChild(childSession, core: childCore, logger: handshakeLog?.logger)
    }

    /// Takes over `other` (locked by the caller), a connection of another core, on `fd`.
    private func adopt(_ other: TLSSession, descriptor fd: Int32) throws(QuiverError) -> TLSSession {
        let tag = nextTag
        nextTag += 1
        let session = TLSSession(adopting: other, tag: tag, core: self)
        try driver.poll.add(fd, tag: tag, output: other.wantsOutputLocked)
        if other.readPausedLocked { driver.poll.setInterest(fd, tag: tag, input: false, output: other.wantsOutputLocked) }
        _ = budget.take()  // the child's one connection
        sessions[tag] = session
        scheduleIdleSweep()
        inbox.withLock { $0.append(tag) }
        return session
    }

    /// Drops everything without sending anything and closes this process's copies of the
    /// descriptors — every connection's socket except a handed-off one, the listening
    /// sockets, the poll: in a forked child for its copy of the parent's listener (whose
    /// driver thread does not exist there and whose connections stay with the parent; lock
    /// and accept queue's lock held), and in the parent for the core it made for the child.
    private func discard() {
        isClosed = true
        driver.abandonAfterFork()
        for session in sessions.values { session.closeDescriptorAfterFork() }
        for listener in listeners { listener?.close() }
        sessions.removeAll()
        handshaking.removeAll()
        acceptQueue?.closeLocked()
    }

    // MARK: - Closing

    /// Closes every connection (close_notify for code 0, otherwise abortively), wakes their
    /// waiters and stops the driver; the listening sockets are closed. (The listener closes
    /// its ``AcceptQueue``, which all its cores share.) The engines are closed by their owner
    /// (``Driver/perform(_:)``).
    func close(code: UInt64, reason: String) {
        var closing = false
        driver.perform(locksCore: false) {
            let all = lock.withLock { () -> [TLSSession] in
                guard !isClosed else { return [] }
                isClosed = true
                closing = true
                if let metrics { for session in sessions.values { metrics.ended(session) } }
                defer {
                    sessions.removeAll()
                    handshaking.removeAll()
                }
                return Array(sessions.values)
            }
            for session in all {
                session.monitor.withLock { session.closeLocked(code: code, reason: reason) }
                session.releaseTransport()
            }
        }
        guard closing else { return }
        driver.stop()
        // Taken out under the lock, as ``closeListeningSockets()`` does: each listening socket
        // is closed once, by whichever takes it (a descriptor closed twice could be another's by then).
        let open = lock.withLock {
            defer { listeners = listeners.map { _ in nil } }
            return listeners.compactMap { $0 }
        }
        for listener in open { listener.close() }
    }

    /// Stops accepting TCP connections and closes this core's descriptors of its listening
    /// sockets, leaving handshakes in progress and established connections as they are
    /// (``Listener/closeListeningSockets()``). Runs on the loop, between two rounds: no
    /// accept is under way, and an event already collected for a listening socket finds
    /// none (``acceptTCP(on:)``). Removed from the poll before closing: epoll watches the
    /// open socket, not the descriptor, and another descriptor of it (another process's)
    /// keeps it open.
    func closeListeningSockets() {
        driver.perform(locksCore: false) {
            lock.withLock {
                for (index, listener) in listeners.enumerated() {
                    guard let listener else { continue }
                    driver.poll.remove(listener.descriptor)
                    listener.close()
                    listeners[index] = nil
                }
            }
        }
    }
}
