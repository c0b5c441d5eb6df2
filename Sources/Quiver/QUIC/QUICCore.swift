#if canImport(Glibc)
import Glibc
#endif
import QuiverCore
import QuiverQUIC
import QuiverUDP
import Synchronization

/// The I/O side of a QUIC listener (an endpoint) or client (one connection): attachments,
/// the engine and the accept queue, under one lock that the loop holds while it handles
/// events. Application commands run on the loop too (``Driver/perform(_:)``) and post the
/// connection to ``inbox``; after each call into the engine the core takes the endpoint's
/// list of connections it worked on (``QUICEndpoint/takeActivity(into:)``) and absorbs their
/// events into their sessions.
final class QUICCore: DriverCore, @unchecked Sendable {
    // @unchecked: mutable state is guarded by `lock` (or is the Mutex `inbox`); the engines
    // belong to the driver's owner.
    enum Engine {
        case server(QUICEndpoint)
        /// One connection on its own attachment: a client, or a server connection a forked
        /// child took over (``fork(handingOff:)``).
        case single(QUICSession)
    }

    struct Inbox {
        var sessions: [QUICSession] = []
        var arrivals: Set<Int> = []
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
    /// When the byte and loss counters next take in what live connections did.
    private var metricsRefresh = ListenerMetrics.RefreshSchedule()
    /// The UDP sockets and datagram pairs.
    private let ports = DatagramAttachments()
    private var sessions: [ObjectIdentifier: QUICSession] = [:]
    private var closedSessions: [ObjectIdentifier] = []
    /// The endpoint's activity list, swapped in and out (``absorbActivity()``).
    private var activity: [QUICConnection] = []
    private var heapTrimmer = HeapTrimmer()
    private(set) var isClosed = false
    /// A client after its shutdown: the driver runs on through the closing period (answering
    /// the server's retransmissions with CONNECTION_CLOSE) and stops when the engine is done.
    private(set) var isLingering = false
    private let inbox = Mutex(Inbox())
    /// Whether this round of ``handleEvents(_:)`` took in input or fired timers (for the
    /// application-driven wake-up).
    @exclusivity(unchecked) private var roundProgressed = false
    /// Datagrams the engine wrote and not yet handed to an attachment: one train for one
    /// destination, or what is left of it (from ``trainNext``) while a full UDP socket
    /// (``stalledAttachment``) drains. Reused: sending allocates nothing per datagram.
    private var train = DatagramTrain(maxDatagrams: QUICCore.burst, maxBytes: QUICCore.maxTrainBytes)
    private var trainNext = 0
    /// The UDP attachment whose full send queue holds up ``train`` (output readiness watched).
    private var stalledAttachment: Int?
    let policy: IncomingStreamPolicy
    let sendBufferLimit: Int
    /// A listener that handed connections to forked children: their channels, and the routes
    /// by which datagrams that reach this process for those connections are passed on.
    private var forkForwarder: ForkForwarder?
    /// A forked child: its channel to the parent's listener.
    private var forkLink: ForkLink?

    init(driver: Driver, acceptQueue: AcceptQueue?, policy: IncomingStreamPolicy, sendBufferLimit: Int) {
        self.driver = driver
        self.acceptQueue = acceptQueue
        self.policy = policy
        self.sendBufferLimit = sendBufferLimit
    }

    // MARK: - Set-up

    func setServer(_ endpoint: QUICEndpoint) {
        engine = .server(endpoint)
    }

    /// Takes in the events of the connections the endpoint worked on since the last call (lock
    /// held): their sessions learn what the application may now read, accept or wait for.
    private func absorbActivity(_ endpoint: QUICEndpoint) {
        endpoint.takeActivity(into: &activity)
        for connection in activity {
            let session = session(for: connection)
            if connection.state == .closed {
                closedSessions.append(ObjectIdentifier(connection))
                // Before its waiters wake: whoever saw the connection end sees it counted.
                metrics?.ended(session)
            }
            session.absorbEvents()
        }
        activity.removeAll(keepingCapacity: true)
    }

    /// ``absorbActivity(_:)`` for either kind of engine (lock held).
    private func absorbActivity(_ engine: Engine) {
        switch engine {
        case .server(let endpoint): absorbActivity(endpoint)
        case .single(let session): session.absorbEvents()
        }
    }

    func setClient(_ connection: QUICConnection) -> QUICSession {
        let session = session(for: connection)
        engine = .single(session)
        return session
    }

    /// Takes over `other` (locked by the caller), a connection of another core, as this core's
    /// single connection.
    private func adopt(_ other: QUICSession) -> QUICSession {
        let session = QUICSession(adopting: other, core: self)
        sessions[ObjectIdentifier(session.engineForCore())] = session
        engine = .single(session)
        inbox.withLock { $0.sessions.append(session) }
        return session
    }

    private func session(for connection: QUICConnection) -> QUICSession {
        if let session = sessions[ObjectIdentifier(connection)] { return session }
        let session = QUICSession(engine: connection, core: self, policy: policy, sendBufferLimit: sendBufferLimit)
        sessions[ObjectIdentifier(connection)] = session
        return session
    }

    /// Adds an attachment (lock held by the caller or before the driver starts).
    func addAttachment(_ attachment: Attachment) throws(QuiverError) {
        try ports.add(attachment, driver: driver, transport: "QUIC") { [weak self] index in self?.arrived(on: index) }
    }

    /// A datagram pair has datagrams (any thread).
    private func arrived(on index: Int) {
        inbox.withLock { _ = $0.arrivals.insert(index) }
        driver.wake()
    }

    var localAddresses: [SocketAddress] {
        lock.withLock { ports.localAddresses }
    }

    /// Client: moves the connection to a new UDP socket bound to `local` — by default a new
    /// port of the old socket's family — once `migrate` (the engine's side, told whether the
    /// IP address changed) accepted the move; returns the new local address. Run as the
    /// engine's owner.
    /// - Throws: `.configuration` for a connection not alone on its own UDP socket, or as
    ///   `migrate` refuses; `.io` when the socket cannot be made.
    func moveClient(to local: SocketAddress?, migrate: (_ newAddress: Bool) throws(QuiverError) -> Void) throws(QuiverError) -> SocketAddress {
        guard case .single? = engine, ports.list.count == 1, case .udp(let old) = ports.list[0].kind else {
            throw QuiverError(.configuration, "only a client connection on its own UDP socket moves to a new local address")
        }
        let wildcard = SocketAddress(host: old.localAddress.addressBytes.count == 4 ? "0.0.0.0" : "::", port: 0)!
        let socket = try UDPSocket(bindingTo: local ?? wildcard)
        do throws(QuiverError) {
            try migrate(local.map { $0.addressBytes != old.localAddress.addressBytes } ?? false)
            try ports.replaceSocket(at: 0, with: socket, driver: driver)
        } catch {
            socket.close()
            throw error
        }
        stalledAttachment = nil
        return socket.localAddress
    }

    // MARK: - Application side

    /// Called by sessions after an application command (without their lock).
    func sessionNeedsService(_ session: QUICSession) {
        guard !driver.isAbandoned else { return }  // a forked child's copy of a parent's listener
        inbox.withLock { $0.sessions.append(session) }
        driver.wake()
    }

    // MARK: - DriverCore

    var nextDeadline: Instant? {
        lock.withLock {
            guard !isClosed, let engine else { return nil }
            let deadline = switch engine {
            case .server(let endpoint): endpoint.nextDeadline
            case .single(let session): session.engineForCore().nextDeadline
            }
            guard let trim = heapTrimmer.deadline else { return deadline }
            return deadline.map { min($0, trim) } ?? trim
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
        // A child's announced connection IDs route before the datagrams of this round.
        if let forkForwarder, case .server(let endpoint) = engine {
            forkForwarder.newRound()
            if forkForwarder.isReported(in: ready) { forkForwarder.serviceChannels(isLocal: endpoint.hasConnection(for:)) }
        }
        receiveAll(engine, arrivals: work.arrivals)
        if let forkLink, forkLink.isReported(in: ready) { receiveForwarded(forkLink, engine: engine) }
        // Waiters are woken once per round of input, not once per datagram.
        absorbActivity(engine)
        let now = Instant.now()
        switch engine {
        case .server(let endpoint):
            if let deadline = endpoint.nextDeadline, deadline <= now {
                endpoint.handleTimeout(at: now)
                roundProgressed = true
            }
            for session in work.sessions { endpoint.connectionDidChange(session.engineForCore(), at: now) }
            absorbActivity(endpoint)
            var failures = 0
            while let failure = endpoint.nextFailedHandshake() {
                failures += 1
                metrics?.handshakeFailed(HandshakeFailureReason(CloseInfo(failure.closeInfo), transport: .quic))
                handshakeLog?.record(.quic, peer: failure.remote, connectionID: failure.originalDestinationConnectionID,
                                     reason: "\(failure.closeInfo)", at: now)
            }
            metrics?.handshakesFailedBeyondQueue(total: endpoint.statistics.handshakesFailed, drained: failures, counted: &failuresCounted)
            while let connection = endpoint.accept() {
                let session = session(for: connection)
                metrics?.opened(&session.metricsAccount)
                acceptQueue?.append(session)
            }
        case .single(let session):
            let connection = session.engineForCore()
            if let deadline = connection.nextDeadline, deadline <= now {
                connection.handleTimeout(at: now)
                roundProgressed = true
            }
            session.absorbEvents()
            forkLink?.follow(connection, socket: ports.firstUDPSocket)
        }
        transmitAll(engine)
        absorbActivity(engine)
        // An application-driven loop learns of new input only through the descriptor: input
        // taken in now (perhaps in its last call of a round) must make it readable again.
        if roundProgressed || acceptQueue?.isEmpty == false, !driver.isThreadAssisted { driver.wake() }
        if !closedSessions.isEmpty {
            for key in closedSessions { sessions[key] = nil }
            closedSessions.removeAll()
            heapTrimmer.connectionsRemaining(sessions.count, at: now)
        }
        heapTrimmer.trimIfDue(at: now) { ports.removeSpareBuffers() }
        metrics?.refresh(sessions.values, at: now, schedule: &metricsRefresh)
        if isLingering, case .single(let session) = engine {
            if session.engineForCore().state == .closed {
                isClosed = true
                forkLink?.close(poll: driver.poll)
                sessions.removeAll()
                self.engine = nil  // the session holds this core: break the cycle
                driver.stop()
            }
        }
    }

    /// Client shutdown: keeps a thread-assisted driver running until the connection's closing
    /// period ends (RFC 9000 §10.2.1), then stops; otherwise closes at once.
    func lingerThenClose() {
        let linger = lock.withLock { () -> Bool in
            guard !isClosed, driver.isThreadAssisted, case .single = engine else { return false }
            isLingering = true
            return true
        }
        if linger { driver.wake() } else { close(code: 0, reason: "") }
    }

    // MARK: - Input

    private func receiveAll(_ engine: Engine, arrivals: Set<Int>) {
        let now = Instant.now()
        ports.receive(arrivals: arrivals, driver: driver, routes: 4 * sessions.count, again: arrived(on:),
                      peerErrors: { handlePeerErrors($0, now: now) }) { bytes, source, ecn, index in
            roundProgressed = true
            // The address it came to names the path with `source` (a server may have several:
            // its preferred address); a client's engine ignores it.
            let local = ports.list[index].localAddress
            switch engine {
            case .server(let endpoint):
                if let forkForwarder, !forkForwarder.isEmpty,
                   forkForwarder.forward(bytes, from: source, ecn: ecn, isLocal: endpoint.hasConnection(for:)) { return }
                endpoint.receive(&bytes, from: source, to: local, ecn: ecn, at: now)
            case .single(let session):
                session.engineForCore().receive(&bytes, from: source, to: local, ecn: ecn, at: now)
            }
        }
    }

    /// A forked child: the datagrams its parent passed on (the client moved, ``ForkLink``).
    private func receiveForwarded(_ link: ForkLink, engine: Engine) {
        guard case .single(let session) = engine else { return }
        let now = Instant.now()
        // The child has one socket, bound to the address of the connection's path: datagrams
        // its parent received, at any of its addresses, count as received there.
        let local = ports.list.first?.localAddress
        link.receive(poll: driver.poll) { bytes, source, ecn in
            roundProgressed = true
            session.engineForCore().receive(&bytes, from: source, to: local, ecn: ecn, at: now)
        }
    }

    // MARK: - Output

    /// The most datagrams taken from one connection in one turn: enough to fill a GSO train.
    static let burst = 32
    /// The most bytes in one GSO train: a train is one UDP datagram to the kernel, whose
    /// length field (with the UDP and IP headers) must fit 16 bits.
    static let maxTrainBytes = 65_000
    /// The smallest train handed to a UDP socket without a copy (``sendTrain()``).
    static let minSharedTrainBytes = 16_384

    private func transmitAll(_ engine: Engine) {
        if let index = stalledAttachment {
            guard case .udp(let socket) = ports.list[index].kind, flush(socket) else { return }
            driver.poll.setInterest(socket.pollDescriptor, tag: UInt64(index), output: false)
            stalledAttachment = nil
        }
        let now = Instant.now()
        while true {
            if trainNext == train.count {
                train.removeAll()
                trainNext = 0
                switch engine {
                case .server(let endpoint):
                    endpoint.transmit(at: now, into: &train)
                case .single(let session):
                    session.engineForCore().transmit(at: now, into: &train)
                }
                if train.isEmpty { break }
            }
            guard sendTrain() else { break }
        }
        ports.flushAll { handlePeerErrors($0, now: now) }
    }

    /// Hands ``train`` to its attachment: to a UDP socket as GSO trains (as many as its queue
    /// limits need); a large train without a copy — the socket's queue holds the train's array
    /// until it is sent, and the train goes on in memory the socket gave back from an earlier
    /// one — a small one copied into the queue. `false` when the UDP socket is full: the rest
    /// stays in ``train`` and the socket's output readiness is watched.
    private func sendTrain() -> Bool {
        guard let destination = train.destination else { return true }
        let index = ports.attachment(for: destination, from: train.source)
        switch ports.list[index].kind {
        case .udp(let socket):
            let size = train.segmentSize
            let maxBytes = min(Self.maxTrainBytes, socket.sendQueueCapacity)
            let perSend = max(1, min(UDPSocket.maxGSOSegments, socket.batchSize, maxBytes / size))
            let share = train.bytes.count >= Self.minSharedTrainBytes
            while trainNext < train.count {
                let end = min(train.count, trainNext + perSend)
                let range = trainNext * size..<min(end * size, train.bytes.count)
                let segmentSize = end - trainNext > 1 ? size : nil
                // A large train is queued without a copy, and only the part that ends it gives
                // its memory back (by the time it is sent, the train has moved on to other
                // memory). A small one (paced sending lets out a few datagrams per round) is
                // copied: sharing it would take a train-sized array per round for a few bytes.
                func enqueue() -> Bool {
                    guard share else {
                        return socket.enqueue(to: destination, ecn: train.ecn, segmentSize: segmentSize, capacity: range.count) { buffer in
                            train.bytes.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[range])) }
                            return range.count
                        }
                    }
                    return socket.enqueue(sharing: train.bytes, range: range, to: destination, ecn: train.ecn, segmentSize: segmentSize,
                                          recycle: end == train.count)
                }
                var queued = enqueue()
                if !queued {  // full: send what is queued, then try again
                    flush(socket)
                    queued = enqueue()
                }
                guard queued else {
                    stalledAttachment = index
                    driver.poll.setInterest(socket.pollDescriptor, tag: UInt64(index), output: true)
                    return false
                }
                trainNext = end
            }
            if share { train.removeAll(continuingIn: socket.takeSpareBuffer() ?? []) } else { train.removeAll() }
            trainNext = 0
        case .datagrams(let end, _):
            let synthetic = Attachment.syntheticIndex(destination) != nil
            for i in trainNext..<train.count {
                let bytes = Array(train.datagram(i))
                if synthetic {
                    end.send(bytes, ecn: train.ecn)
                } else {
                    end.send(bytes, from: ports.list[index].localAddress, to: destination, ecn: train.ecn)
                }
            }
            trainNext = train.count
        case .tcpListener, .stream:
            trainNext = train.count
        }
        return true
    }

    /// Sends what is queued; per-peer failures and ICMP errors are counted and dropped (QUIC's
    /// timers handle a peer that went away).
    @discardableResult
    private func flush(_ socket: UDPSocket) -> Bool {
        ports.flush(socket) { handlePeerErrors($0, now: .now()) }
    }

    /// ICMP reports (counted already): a client's connection hears of an unreachable server
    /// (which ends it only before the server answered, as a refused TCP connection does;
    /// ``QUICConnection/peerUnreachable(_:reason:at:)``).
    private func handlePeerErrors(_ reports: [UDPPeerError], now: Instant) {
        guard case .single(let session)? = engine else { return }
        for report in reports {
            let code = report.error.code
            guard code == .connectionRefused || code == .hostUnreachable || code == .networkUnreachable else { continue }
            let errno = report.error.errno
            let reason = "connect \(report.peer) failed: \(String(cString: strerror(errno))) (errno \(errno))"
            if session.engineForCore().peerUnreachable(report.peer, reason: reason, at: now) { roundProgressed = true }
            session.absorbEvents()
        }
    }

    /// Counters for ``Listener/statistics``.
    var statistics: Listener.Statistics {
        lock.withLock {
            var statistics = ports.statistics
            if case .server(let endpoint) = engine {
                statistics.connections = endpoint.connectionCount
                statistics.pendingConnections = endpoint.pendingConnectionCount
                statistics.quic = Listener.Statistics.QUIC(endpoint.statistics)
                if let forkForwarder {
                    statistics.quic?.datagramsForwarded = forkForwarder.statistics.datagramsForwarded
                    statistics.quic?.forwardsDropped = forkForwarder.statistics.datagramsDropped
                    statistics.quic?.forkRecordsRejected = forkForwarder.statistics.badRecords
                    statistics.quic?.forkChannels = forkForwarder.channelCount
                    statistics.quic?.forkRoutes = forkForwarder.routeCount
                }
            }
            return statistics
        }
    }

    /// Counters and the first connections' state, for diagnostics (read on the loop).
    var debugDescription: String {
        var text = ""
        driver.perform(locksCore: false) {
            text = lock.withLock {
                let now = Instant.now()
                func describe(_ c: QUICConnection) -> String {
                    "\(c.remoteAddress) \(c.state) deadline=\(c.nextDeadline.map { "\($0 > now ? ($0 - now) : .zero)" } ?? "none") \(c.statistics)"
                }
                if case .single(let session) = engine {
                    return "single udp=\(ports.counters) local=\(ports.localAddresses) remote=\(describe(session.engineForCore()))"
                }
                guard case .server(let endpoint) = engine else { return "" }
                let details = sessions.values.prefix(4).map { "[\(describe($0.engineForCore()))]" }.joined(separator: " ")
                return "\(endpoint.statistics) connections=\(endpoint.connectionCount) pending=\(endpoint.pendingConnectionCount) sessions=\(sessions.count) udp=\(ports.counters) \(details)"
            }
        }
        return text
    }

    // MARK: - Fork hand-off

    /// Forks the process and hands `session` to the child (``Listener/fork(handingOff:)``).
    ///
    /// Before fork, with the loop parked (``Driver/parkLoop()``) and this core's lock and the
    /// connection's lock held: a UDP socket is bound to the listener's address with
    /// SO_REUSEPORT and connected to the peer — the kernel prefers a connected socket, so from
    /// then on the peer's datagrams reach it — a ``ForkChannel`` is opened, its routes set to
    /// the connection's IDs (``ForkForwarder``), and the child's core (with the socket and the
    /// channel's other end, ``ForkLink``) and copy of the session are made. The parent then
    /// closes its copies of the child's descriptors and releases the connection from its
    /// endpoint, passing on what still reaches it for the connection; the child abandons its
    /// copy of this listener and runs the connection alone.
    func fork(handingOff session: QUICSession) throws(QuiverError) -> Listener.ForkResult {
        // The loop's thread waits between two rounds while this one forks (Driver.parkLoop()).
        let park = driver.parkLoop()
        var isChild = false
        defer { if !isChild { park?.release() } }
        lock.lock()
        defer { lock.unlock() }
        guard !isClosed, case .server(let endpoint) = engine else { throw QuiverError(.closed, "the listener is closed") }
        let connection = session.engineForCore()
        guard sessions[ObjectIdentifier(connection)] === session, let peer = session.peerAddress else {
            throw QuiverError(.configuration, "the connection is not this listener's, or was handed off already")
        }
        let socket = try ports.handOffSocket(to: peer, from: connection.localAddress, configuration: Listener.serverSocketConfiguration)
        let childCore = QUICCore(driver: try Driver(threadAssisted: driver.isThreadAssisted), acceptQueue: nil, policy: policy,
                                 sendBufferLimit: sendBufferLimit)
        try childCore.addAttachment(.udp(socket))
        let channel = try ForkChannel.pair()
        let connectionIDs = connection.localConnectionIDs
        let link = ForkLink(channel: channel.child, connectionIDs: connectionIDs, peer: peer)
        try link.register(with: childCore.driver.poll)
        childCore.forkLink = link
        let forwarder: ForkForwarder
        if let existing = forkForwarder {
            forwarder = existing
        } else {
            forwarder = try ForkForwarder(poll: driver.poll, shortHeaderConnectionIDLength: endpoint.configuration.connection.localConnectionIDLength,
                                          logger: handshakeLog?.logger)
            forkForwarder = forwarder
        }
        let route = try forwarder.add(channel.parent, connectionIDs: connectionIDs)
        var routed = false
        defer { if !routed, !isChild { forwarder.remove(route) } }
        acceptQueue?.monitor.lock()
        defer { acceptQueue?.monitor.unlock() }
        session.monitor.lock()
        defer { session.monitor.unlock() }
        if let info = session.closeInfoLocked { throw QuiverError(.closed, "connection closed: \(info)") }
        let childSession = childCore.adopt(session)
        let pid = driver.fork()
        if pid < 0 {
            let failure = QuiverError(.io, "fork: \(String(cString: strerror(errno)))")
            childCore.discard()
            throw failure
        }
        if pid > 0 {
            childCore.discard()  // the child's: close this process's copies of its descriptors
            routed = true
            forwarder.setProcess(pid, for: route)
            endpoint.release(connection, at: .now())
            sessions[ObjectIdentifier(connection)] = nil
            metrics?.ended(session)  // this process serves it no more
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

    /// Drops everything without sending anything and closes this process's copies of the
    /// descriptors: in a forked child for its copy of the parent's listener (whose driver
    /// thread does not exist there and whose connections live on in the parent; lock and
    /// accept queue's lock held), and in the parent for the core it made for the child.
    private func discard() {
        isClosed = true
        driver.abandonAfterFork()
        ports.discard()
        forkForwarder?.discardAfterFork()  // the parent's ends of every channel, this one's too
        forkLink?.discardAfterFork()
        engine = nil
        sessions.removeAll()
        acceptQueue?.closeLocked()
    }

    // MARK: - Closing

    /// Closes every connection (CONNECTION_CLOSE with `code`, sent once), wakes their waiters
    /// and stops the driver. The attachments are released. (The listener closes its
    /// ``AcceptQueue``, which all its cores share.) The engines are closed by their owner
    /// (``Driver/perform(_:)``).
    func close(code: UInt64, reason: String) {
        var all: [QUICSession] = []
        driver.perform(locksCore: false) {
            lock.lock()
            defer { lock.unlock() }
            guard !isClosed, let engine else {
                isClosed = true
                return
            }
            for session in sessions.values {
                session.monitor.withLock { session.closeLocked(code: code, reason: reason) }
            }
            if case .server(let endpoint) = engine {
                for session in sessions.values { endpoint.connectionDidChange(session.engineForCore(), at: .now()) }
            }
            transmitAll(engine)
            isClosed = true
            forkForwarder?.close()  // the children go on; new addresses no longer reach them
            forkLink?.close(poll: driver.poll)
            if let metrics { for session in sessions.values { metrics.ended(session) } }
            all = Array(sessions.values)
            sessions.removeAll()
            if case .single = engine { self.engine = nil }  // the session holds this core: break the cycle
        }
        driver.stop()
        for session in all { session.monitor.withLock { session.changedLocked() } }
        ports.detachPairs()
    }
}

extension Listener.Statistics.QUIC {
    init(_ endpoint: QUICEndpoint.Statistics) {
        self.init(connectionsCreated: endpoint.connectionsCreated, retriesSent: endpoint.retriesSent,
                  versionNegotiationsSent: endpoint.versionNegotiationsSent, statelessResetsSent: endpoint.statelessResetsSent,
                  initialsDropped: endpoint.initialsDropped, connectionsRefused: endpoint.connectionsRefused,
                  datagramsDropped: endpoint.datagramsDropped,
                  handshakesFailed: endpoint.handshakesFailed)
    }
}
