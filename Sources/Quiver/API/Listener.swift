import Logging
public import QuiverCore
import Synchronization
import QuiverQUIC
import QuiverSCTP
public import QuiverTLS
import QuiverTLSSocket
import QuiverUDP

/// The transport a ``Listener`` or client ``Connection`` speaks.
public enum Transport: Sendable, Hashable {
    /// TLS 1.3 over TCP (or over ``StreamPair``s).
    case tcp
    /// QUIC over UDP (or over ``DatagramPair``s).
    case quic
    /// DTLS 1.3 or 1.2 over UDP (or over ``DatagramPair``s): one stream of messages per connection —
    /// a read returns one record's payload, a write sends one record (at most 16 KiB).
    case dtls
    /// SCTP (RFC 9260) over UDP — UDP encapsulation (RFC 6951), or SCTP packets as plain UDP
    /// payloads — or over ``DatagramPair``s: reliable, ordered messages on many streams, without
    /// encryption (the `tls` configuration is not used). The default stream is SCTP stream 0;
    /// a read returns one message, a write sends one; finishing a stream resets it (RFC 6525).
    /// The SCTP port is ``Listener/Options/sctpPort`` (``ClientOptions/sctpPort``).
    case sctp
    /// DTLS 1.2 over SCTP (RFC 6083, OpenSSL's DTLS/SCTP), SCTP carried as ``sctp`` is: one DTLS
    /// connection on each association, each DTLS record one SCTP message, SCTP-AUTH on DATA
    /// keyed from the DTLS exporter. Streams and messages are ``sctp``'s; a message is at most
    /// 16 KiB (one record). The connection is ready once the DTLS handshake completed.
    case dtlsOverSCTP
    /// SCTP over DTLS (RFC 8261, what WebRTC data channels run): one DTLS connection per peer
    /// over UDP (or ``DatagramPair``s), each SCTP packet in one DTLS record, its associations as
    /// ``sctp``'s. A DTLS connection that carries no association closes.
    case sctpOverDTLS

    /// Whether the transport is one of the SCTP ones (SCTP streams of messages).
    public var isSCTP: Bool { self == .sctp || self == .dtlsOverSCTP || self == .sctpOverDTLS }
}

/// Who runs a listener's (or client connection's) I/O.
public enum DriverMode: Sendable, Hashable {
    /// A background I/O thread per listener reads the attachments, runs the timers and wakes
    /// blocked callers. The default; blocking calls simply wait.
    case threadAssisted
    /// No threads: the application watches ``Listener/pollDescriptor`` and
    /// ``Listener/nextDeadline`` and calls ``Listener/handleEvents()``. Blocking calls made in
    /// this mode drive the listener themselves while they wait.
    case applicationDriven
}

/// Accepts secure connections — TLS over TCP, QUIC or DTLS — with the same code.
///
/// ```swift
/// let listener = try Listener(.quic, tls: tls, bind: "[::]:4433")   // or .tcp, .dtls
/// let connection = try listener.accept()      // blocking; the handshake has completed
/// while case let bytes = try connection.read(maxBytes: 4096), !bytes.isEmpty {
///     try connection.write(bytes)             // the default stream
/// }
/// try connection.shutdown()
/// ```
///
/// **Event loops.** A thread-assisted listener runs its connections on event loops: one I/O
/// thread each, which alone runs their engines, sockets and timers (and the tasks that prefer
/// it, ``taskExecutor``). One loop by default; ``Options/eventLoops`` gives it several, one
/// per core, each with its own socket in one SO_REUSEPORT group — QUIC datagrams steered to
/// the loop named in their connection ID, TCP connections and DTLS peers spread by the kernel.
///
/// **Thread safety.** All members may be called from any thread. Each loop's I/O state is
/// guarded by its own lock, which only its driver takes; accepted connections wait in a queue
/// with a lock of its own; each ``Connection`` has its own lock, so reads and writes on
/// different connections run in parallel. Blocking calls release every lock while they wait.
///
/// A listener stops (and closes its connections) at ``close(code:reason:)`` or when the last
/// reference goes away.
public final class Listener: Sendable {
    /// The transport.
    public let transport: Transport
    /// The transport's I/O half, one per event loop: everything below asks them, not the
    /// transport.
    let cores: [any TransportCore]
    /// The connections whose handshake completed, from every loop.
    let acceptQueue = AcceptQueue()
    let options: Options
    /// The loop the next ``attach(_:)`` goes to.
    private let nextAttachmentLoop = Atomic<Int>(0)

    /// Creates a listener on attachments (at least one; more may be attached later). With
    /// several ``Options/eventLoops``, give one attachment per loop, or one per loop and
    /// address: attachment *i* is loop *i* mod *loops*'s (for QUIC sockets, make each
    /// address's with `UDPSocket.steeringGroup` so that datagrams reach the loop of their
    /// connection).
    ///
    /// - Throws: `QuiverError` `.configuration` for attachments the transport does not take,
    ///   several loops with the application-driven driver, or with
    ///   an ``Options/quicLB`` that cannot name them (``QUICLB/refusal(workers:)``), or with
    ///   a number of attachments that is not a multiple of the number of loops; QUIC
    ///   ``Options/preferredAddresses`` that are not specific addresses, two of one family, or
    ///   without an attachment bound there.
    public init(_ transport: Transport, tls: TLSConfiguration, attachments: [Attachment], options: Options = Options()) throws(QuiverError) {
        self.transport = transport
        self.options = options
        let loops = options.eventLoops
        if loops != 1 {
            guard loops > 1, options.driver == .threadAssisted else {
                throw QuiverError(.configuration, "eventLoops must be 1 or more, and several loops need the thread-assisted driver")
            }
            guard !attachments.isEmpty, attachments.count % loops == 0 else {
                throw QuiverError(.configuration, "\(loops) event loops need one attachment each (per address), not \(attachments.count)")
            }
            guard !transport.isSCTP else {
                throw QuiverError(.configuration, "an SCTP listener has one event loop (steering SCTP packets between loops is not built yet)")
            }
        }
        if transport == .quic, let quicLB = options.quicLB,
           let refusal = quicLB.refusal(workers: options.workerID.map { max(2, Int($0) + loops) } ?? loops) {
            throw QuiverError(.configuration, refusal)
        }
        if transport == .quic { try Listener.checkPreferredAddresses(options.preferredAddresses, attachments: attachments) }
        let perLoopAttachments = loops == 1 ? [attachments]
            : (0..<loops).map { loop in stride(from: loop, to: attachments.count, by: loops).map { attachments[$0] } }
        // One count of connections for every loop: maxConnections holds for the listener.
        let budget = ConnectionBudget(limit: options.maxConnections)
        var endpointConfiguration = transport == .quic ? options.endpointConfiguration(tls: tls) : nil
        endpointConfiguration?.connectionBudget = budget
        var dtlsConfiguration = transport == .dtls ? try options.dtlsEndpointConfiguration(tls: tls) : nil
        dtlsConfiguration?.connectionBudget = budget
        if loops > 1 { dtlsConfiguration?.maxPendingConnections = Listener.share(of: options.maxPendingDTLSHandshakes, loops: loops) }
        // Made once for every loop: no metric handles at all without a backend.
        let metrics = ListenerMetrics.make(transport: transport, factory: options.metricsFactory, dimensions: options.metricsDimensions)
        var cores: [any TransportCore] = []
        defer {
            // A failure part-way: stop the loops already running.
            if cores.count < loops { for core in cores { core.close(code: 0, reason: "") } }
        }
        for (loop, attachments) in perLoopAttachments.enumerated() {
            let driver = try Driver(threadAssisted: options.driver == .threadAssisted)
            let core: any TransportCore
            switch transport {
            case .quic:
                let quic = QUICCore(driver: driver, acceptQueue: acceptQueue, policy: options.incomingStreams, sendBufferLimit: options.sendBufferLimit)
                var configuration = endpointConfiguration!
                if loops > 1 { configuration.divide(among: loops, loop: loop, firstWorkerID: options.workerID ?? 0, quicLB: options.quicLB) }
                quic.setServer(QUICEndpoint(configuration: configuration))
                core = quic
            case .tcp:
                core = TLSCore(driver: driver, acceptQueue: acceptQueue, configuration: tls, handshakeTimeout: options.handshakeTimeout,
                               bufferLimit: options.sendBufferLimit, budget: budget, idleTimeout: options.idleTimeout)
            case .dtls:
                let dtls = DTLSCore(driver: driver, acceptQueue: acceptQueue, sendBufferLimit: options.sendBufferLimit,
                                    idleTimeout: options.idleTimeout, handshakeTimeout: options.handshakeTimeout)
                var configuration = dtlsConfiguration!
                if loops > 1 { configuration.workerID = UInt16(loop) }  // the loop's socket in a DTLS steering group
                dtls.setServer(DTLSEndpoint(configuration: configuration))
                core = dtls
            case .sctp, .dtlsOverSCTP:
                let sctp = SCTPEndpoint.Configuration.quiver(transport, port: options.sctpPort, maxAssociations: options.maxConnections,
                                                             sendBufferSize: options.sendBufferLimit)
                core = SCTPCore(driver: driver, acceptQueue: acceptQueue, transport: transport, endpoint: SCTPEndpoint(configuration: sctp),
                                security: transport == .dtlsOverSCTP ? tls.dtlsOverSCTP : nil, handshakeTimeout: options.handshakeTimeout)
            case .sctpOverDTLS:
                let sctp = SCTPEndpoint.Configuration.quiver(transport, port: options.sctpPort, maxAssociations: options.maxConnections,
                                                             sendBufferSize: options.sendBufferLimit)
                let endpoint = SCTPOverDTLSEndpoint(server: try options.dtlsEndpointConfiguration(tls: tls), sctp: sctp)
                endpoint.idleDTLSTimeout = options.handshakeTimeout
                core = SCTPCore(driver: driver, acceptQueue: acceptQueue, transport: transport, endpoint: endpoint,
                                handshakeTimeout: options.handshakeTimeout)
            }
            core.handshakeLog = HandshakeFailureLog(logger: options.logger)
            core.metrics = metrics
            for attachment in attachments { try core.attachLocked(attachment) }
            try driver.start(core)
            cores.append(core)
        }
        self.cores = cores
    }

    /// Creates a listener on a new socket bound to `address` (`"[::]:4433"`, `"127.0.0.1:0"`…):
    /// a UDP socket for QUIC and DTLS, a listening TCP socket for TLS. With several
    /// ``Options/eventLoops``, one socket per loop in one SO_REUSEPORT group: for QUIC a
    /// `UDPSocket.steeringGroup`, whose program sends each datagram to the loop named in its
    /// connection ID (a client's first Initials, by the DCID it chose, spread over the loops); for TLS
    /// listening sockets between which the kernel spreads incoming connections; for DTLS a
    /// DTLS steering group: the kernel spreads handshakes by address and port, and a
    /// connection's records carry a Connection ID naming its loop, so they reach it even after
    /// the client's address changed.
    public convenience init(_ transport: Transport, tls: TLSConfiguration, bind address: String, options: Options = Options()) throws(QuiverError) {
        guard let socketAddress = SocketAddress(address) else { throw QuiverError(.configuration, "not an address: \(address)") }
        let loops = max(1, options.eventLoops)
        guard options.workerID == nil || loops == 1 || transport != .quic else {
            throw QuiverError(.configuration, "the listener's own steering group names its loops 0..<eventLoops: workerID with several loops needs the sockets of a UDPSocket.generationGroup")
        }
        var attachments: [Attachment] = []
        var options = options
        switch transport {
        case .quic:
            // The first address's sockets (one per loop), then each preferred address's.
            func bind(_ address: SocketAddress) throws(QuiverError) -> [UDPSocket] {
                guard loops > 1 else { return [try UDPSocket(bindingTo: address, configuration: Listener.serverSocketConfiguration)] }
                return try UDPSocket.steeringGroup(bindingTo: address, count: loops, configuration: Listener.serverSocketConfiguration,
                                                   workerIDOffset: options.quicLB?.workerIDOffset ?? 1)
            }
            attachments = try bind(socketAddress).map { .udp($0) }
            for (index, preferred) in options.preferredAddresses.enumerated() {
                let sockets = try bind(preferred)
                options.preferredAddresses[index] = sockets[0].localAddress  // port 0: the port it got
                attachments += sockets.map { .udp($0) }
            }
        case .tcp:
            var bound = socketAddress
            for _ in 0..<loops {
                let socket = try TCPSocket.listen(on: bound, reusePort: loops > 1)
                bound = socket.localAddress ?? bound  // port 0: the rest join the port the first one got
                attachments.append(.tcpListener(socket))
            }
        case .dtls where loops == 1, .sctp, .dtlsOverSCTP, .sctpOverDTLS:
            attachments = [.udp(try UDPSocket(bindingTo: socketAddress, configuration: Listener.dtlsSocketConfiguration))]
        case .dtls:
            attachments = try UDPSocket.steeringGroup(bindingTo: socketAddress, count: loops, configuration: Listener.dtlsSocketConfiguration, dtls: true)
                .map { .udp($0) }
        }
        try self.init(transport, tls: tls, attachments: attachments, options: options)
    }

    deinit { close() }

    /// Refuses preferred addresses (``Options/preferredAddresses``) a client could not use:
    /// an unspecified address or port 0, two of one family, or one that no attachment
    /// receives at (bound there, or to the unspecified address of its family with its port).
    static func checkPreferredAddresses(_ addresses: [SocketAddress], attachments: [Attachment]) throws(QuiverError) {
        for (index, address) in addresses.enumerated() {
            guard address.port != 0, address.addressBytes.contains(where: { $0 != 0 }) else {
                throw QuiverError(.configuration, "a preferred address needs a specific IP address and port, not \(address)")
            }
            guard !addresses[..<index].contains(where: { $0.addressBytes.count == address.addressBytes.count }) else {
                throw QuiverError(.configuration, "one preferred address per address family (RFC 9000 §18.2)")
            }
            let received = attachments.contains { attachment in
                guard let local = attachment.localAddress, local.port == address.port,
                      local.addressBytes.count == address.addressBytes.count else { return false }
                return local == address || local.addressBytes.allSatisfy { $0 == 0 }
            }
            guard received else {
                throw QuiverError(.configuration, "no attachment receives at the preferred address \(address)")
            }
        }
    }

    /// Each loop's part of a listener-wide limit: the limit divided among `loops`, rounded up.
    static func share(of limit: Int, loops: Int) -> Int { (limit + loops - 1) / loops }

    /// The first loop's driver: the only one of an application-driven listener.
    var driver: Driver { cores[0].driver }

    /// Socket settings for a listener's own UDP socket: buffers large enough for bursts from
    /// many peers (the kernel caps them at `net.core.rmem_max`/`wmem_max`).
    static var serverSocketConfiguration: UDPSocket.Configuration {
        var configuration = UDPSocket.Configuration()
        configuration.receiveBufferSize = 4 << 20
        configuration.sendBufferSize = 4 << 20
        return configuration
    }

    /// Socket settings for a DTLS listener's (and client's) UDP socket: a record the
    /// application writes may be up to 16 KiB, more than a path carries, so the kernel may
    /// fragment it (no don't-fragment bit; handshake flights are fragmented by DTLS itself).
    static var dtlsSocketConfiguration: UDPSocket.Configuration {
        var configuration = serverSocketConfiguration
        configuration.dontFragment = false
        configuration.gso = false
        return configuration
    }

    /// Adds an attachment: another socket, or (TLS) a ``StreamPair`` end carrying one more
    /// connection, or (QUIC, DTLS) another ``DatagramPair`` end. With several event loops, the
    /// attachments go to the loops in turn.
    public func attach(_ attachment: Attachment) throws(QuiverError) {
        let core = cores[nextAttachmentLoop.add(1, ordering: .relaxed).oldValue % cores.count]
        var failure: QuiverError?
        core.driver.perform(locksCore: false) {  // a stream pair's TLS engine is the loop's from birth
            core.lock.withLock {
                do throws(QuiverError) { try core.attachLocked(attachment) } catch { failure = error }
            }
        }
        if let failure { throw failure }
        core.driver.wake()
    }

    /// The preferred addresses QUIC clients are told of (``Options/preferredAddresses``, with
    /// the port each got when it asked for port 0).
    public var preferredAddresses: [SocketAddress] { transport == .quic ? options.preferredAddresses : [] }

    /// The local addresses of the socket attachments (each once, though every loop has its
    /// own socket).
    public var localAddresses: [SocketAddress] {
        var seen = Set<SocketAddress>()
        return cores.flatMap(\.localAddresses).filter { seen.insert($0).inserted }
    }

    /// How many event loops run the listener (``Options/eventLoops``).
    public var eventLoopCount: Int { cores.count }

    // MARK: - Accepting

    var lock: Monitor { acceptQueue.monitor }

    func acceptLocked() throws(QuiverError) -> Connection? {
        if acceptQueue.isClosedLocked { throw QuiverError(.closed, "the listener is closed") }
        if acceptQueue.isStoppedLocked { throw QuiverError(.closed, "the listener stopped accepting") }
        return acceptQueue.nextLocked().map { Connection(session: $0, owner: nil, logger: options.logger) }
    }

    /// The next connection whose handshake completed; waits for one.
    /// - Throws: `QuiverError` `.closed` once the listener is closed.
    public func accept() throws(QuiverError) -> Connection {
        while true {
            lock.lock()
            let connection: Connection?
            do throws(QuiverError) { connection = try acceptLocked() } catch {
                lock.unlock()
                throw error
            }
            if let connection {
                lock.unlock()
                return connection
            }
            if driver.isThreadAssisted {
                if Driver.current != nil {  // a waiting loop would serve none of its connections
                    lock.unlock()
                    throw Driver.wouldBlockLoop
                }
                lock.wait()
                lock.unlock()
            } else {
                lock.unlock()
                driver.driveOnce()
            }
        }
    }

    /// The next connection whose handshake completed, or `nil` when none is ready (would block).
    public func tryAccept() throws(QuiverError) -> Connection? {
        try lock.withLock { () throws(QuiverError) in try acceptLocked() }
    }

    // MARK: - Fork

    /// Who returned from ``Listener/fork(handingOff:)``.
    public enum ForkResult: Sendable {
        /// The parent: the connection now belongs to the child process `child` (reap it with
        /// `waitpid`); the parent's ``Connection`` object is retired (calls throw `.closed`).
        case parent(child: Int32)
        /// The child: the connection, running on its own I/O (a thread, unless the listener is
        /// application-driven). The child's copy of the listener is dead — its descriptors are
        /// closed, nothing in it runs — so the child serves this connection and exits.
        case child(Connection)
    }

    /// Forks the process and hands `connection` — accepted from this listener — to the child:
    /// the fork-per-connection server (`ddd-01-fork`), for TLS, QUIC and DTLS alike.
    ///
    /// - TLS: the child takes over the TCP socket (and the TLS session state); the parent
    ///   closes its copy.
    /// - QUIC: before fork, a UDP socket is bound to the listener's address with
    ///   `SO_REUSEPORT` and connected to the peer; the kernel delivers the peer's datagrams to
    ///   the connected socket, which the child owns. The parent's endpoint forgets the
    ///   connection, but keeps a channel to the child (a `SOCK_SEQPACKET` socket pair) and
    ///   routes the connection's IDs to it: a client that moves to another address (a NAT
    ///   rebinding, an active migration) reaches the parent's socket, which passes its
    ///   datagrams on to the child with their source address; the child's connection validates
    ///   the new path, and the child connects its socket to the new address. The child
    ///   announces the connection IDs it issues later on the same channel. The channel and its
    ///   routes go when the child's connection ends or the child exits
    ///   (`statistics.quic?.forkChannels`, `datagramsForwarded`); after that, datagrams for
    ///   the connection's IDs are dropped silently until one idle timeout after the hand-off,
    ///   then answered with a stateless reset. The listener's UDP socket must have `SO_REUSEPORT`
    ///   (`UDPSocket.Configuration.reusePort`), and the connection must have arrived on a UDP
    ///   socket, not an in-memory pair. The parent forwards only while its listener is open.
    /// - DTLS: as QUIC, a socket connected to the peer for the child; the parent's endpoint
    ///   forgets the association without sending anything. A client that restarts from the
    ///   same address and port reaches the child's socket, which ignores its new handshake.
    ///
    /// Fork safety: the listener's event loop is parked between two rounds while the calling
    /// thread forks (with the listener's lock and the connection's lock held), so it is inside
    /// no engine, lock or Swift runtime call that the child could find half done; in the child
    /// only the calling thread exists, and nothing of the parent's listener runs there. Other
    /// threads of the parent — the application's, Swift's concurrency pool — do not exist in the
    /// child either: a fork while one of them holds a lock (the Swift runtime's metadata caches
    /// included, when it first uses a generic type) leaves that lock held in the child. A
    /// fork-per-connection server has none busy: it accepts and forks.
    ///
    /// - Throws: `QuiverError` in the parent, before anything changed: `.configuration` for a
    ///   connection that is not this listener's or cannot move, `.closed` for a closed one,
    ///   `.io` when the socket cannot be made or `fork` fails. In the child nothing is thrown;
    ///   if its I/O thread cannot start, the connection is returned closed.
    ///
    /// A listener with several event loops cannot fork (`.configuration`): the child would
    /// inherit the other loops' sockets with no thread to serve them.
    public func fork(handingOff connection: Connection) throws(QuiverError) -> ForkResult {
        guard cores.count == 1 else {
            throw QuiverError(.configuration, "a listener with several event loops cannot hand a connection to a forked child")
        }
        return try cores[0].fork(handingOff: connection.session)
    }

    /// After a fork, in the child: starts the I/O of the handed-off connection's own core — or,
    /// when no thread can start, returns the connection closed — and wakes it.
    static func startInChild(_ session: any Session, core: any TransportCore, logger: Logger?) -> ForkResult {
        do throws(QuiverError) {
            try session.driver.start(core)
        } catch {
            session.withEngine { session.closeLocked(code: 0, reason: "could not start an I/O thread: \(error)") }
        }
        session.driver.wake()
        return .child(Connection(session: session, owner: core, logger: logger ?? ClientOptions().logger))
    }

    // MARK: - Application-driven I/O

    /// The descriptor to watch for readability (application-driven mode; `nil` when a thread
    /// drives the listener): it becomes readable when an attachment has input, a socket can
    /// take queued output, or a connection has a command to send.
    public var pollDescriptor: Int32? { driver.isThreadAssisted || driver.isAbandoned ? nil : driver.poll.descriptor }

    /// Whether to wait for ``pollDescriptor`` to become readable (always, in
    /// application-driven mode).
    public var wantsRead: Bool { !driver.isThreadAssisted }

    /// Whether to wait for ``pollDescriptor`` to become writable: never — output readiness of
    /// the attachments is folded into the descriptor's readability.
    public var wantsWrite: Bool { false }

    /// When ``handleEvents()`` must run even if the descriptor stays quiet (timers: loss
    /// recovery, acknowledgements, idle and handshake timeouts). `nil` when a thread drives
    /// the listener (it keeps the time itself).
    public var nextDeadline: Instant? { driver.isThreadAssisted ? nil : cores[0].nextDeadline }

    /// Processes whatever is ready without blocking: input, due timers, output. Call it when
    /// ``pollDescriptor`` is readable, when ``nextDeadline`` passes, and after moving data into
    /// an in-memory attachment. Does nothing when a thread drives the listener.
    public func handleEvents() { driver.handleEventsNow() }

    // MARK: - Closing

    /// Closes every connection (QUIC CONNECTION_CLOSE / TLS close_notify for code 0), stops
    /// the driver and releases the attachments. Blocked callers get `.closed`.
    public func close(code: UInt64 = 0, reason: String = "") {
        acceptQueue.close()
        for core in cores { core.close(code: code, reason: reason) }
    }

    /// TLS over TCP: stops taking new connections and closes the listener's descriptors of its
    /// listening sockets, without touching the connections it has — handshakes in progress
    /// complete, accepted connections and those waiting to be accepted run on until they
    /// end or ``close(code:reason:)``. For a restart without dropped connections: once another
    /// process serves the same listening sockets (passed with `DescriptorPassing` and taken
    /// over as `.tcpListener(TCPSocket(adopting:))`), the sockets stay open and listening
    /// through its descriptors, and the connections the kernel queued for `accept` — now and
    /// later — go to that process; no connection attempt is refused meanwhile. Without
    /// another descriptor the sockets close, and connections still queued in them are reset.
    ///
    /// QUIC, DTLS and SCTP listeners receive their connections' datagrams on their sockets:
    /// for them this does nothing (a QUIC restart steers new connections away instead,
    /// `UDPSocket.steerGenerations`). More sockets may be attached later (``attach(_:)``).
    public func closeListeningSockets() {
        for core in cores { core.closeListeningSockets() }
    }

    /// What a listener counts.
    public struct Statistics: Sendable, Hashable {
        /// Connections alive (handshaking, established or closing).
        public var connections = 0
        /// Connections whose handshake is in progress.
        public var pendingConnections = 0
        /// QUIC: the endpoint's counters (Retry, Version Negotiation, stateless resets, drops);
        /// `nil` on the other transports.
        public var quic: QUIC?
        /// TLS over TCP: what the listener counts of its connections; `nil` on the others.
        public var tls: TLS?
        /// DTLS: the endpoint's counters (cookies, refusals, drops); `nil` on the others.
        public var dtls: DTLS?
        /// SCTP: the endpoint's counters (cookies, drops, refusals); `nil` on the others.
        public var sctp: SCTP?
        /// QUIC, DTLS: datagrams the kernel refused to send (`EMSGSIZE`, `ENOBUFS`, …).
        public var udpSendFailures = 0
        /// QUIC, DTLS: ICMP errors reported for peers (port unreachable and the like), dropped.
        public var udpPeerErrors = 0
        /// QUIC, DTLS: failed receive calls.
        public var udpReceiveErrors = 0

        /// What a QUIC listener's endpoint counts.
        public struct QUIC: Sendable, Hashable {
            /// Connections created from client Initials.
            public var connectionsCreated = 0
            /// Retry packets sent (address validation, RFC 9000 §8.1.2).
            public var retriesSent = 0
            /// Version Negotiation packets sent (RFC 9000 §6).
            public var versionNegotiationsSent = 0
            /// Stateless resets sent (RFC 9000 §10.3).
            public var statelessResetsSent = 0
            /// Initials dropped: too small, over the pending-connection cap, or with an invalid
            /// Retry token.
            public var initialsDropped = 0
            /// Clients refused with CONNECTION_REFUSED: ``Options/maxConnections`` were held.
            public var connectionsRefused = 0
            /// Datagrams for no connection that got no answer.
            public var datagramsDropped = 0
            /// Connections that closed before their handshake completed.
            public var handshakesFailed = 0
            /// Datagrams for connections handed to forked children (``Listener/fork(handingOff:)``)
            /// that reached this process — the client had moved to another address — and were
            /// passed on to the child.
            public var datagramsForwarded = 0
            /// Such datagrams dropped because the child's channel was full (or had closed).
            public var forwardsDropped = 0
            /// Records from children's channels that were malformed or claimed connection IDs
            /// not theirs, ignored.
            public var forkRecordsRejected = 0
            /// Channels to forked children open now (one per handed-off connection whose child
            /// has not ended).
            public var forkChannels = 0
            /// Connection IDs routed to forked children now.
            public var forkRoutes = 0

            mutating func add(_ other: QUIC) {
                connectionsCreated += other.connectionsCreated
                retriesSent += other.retriesSent
                versionNegotiationsSent += other.versionNegotiationsSent
                statelessResetsSent += other.statelessResetsSent
                initialsDropped += other.initialsDropped
                connectionsRefused += other.connectionsRefused
                datagramsDropped += other.datagramsDropped
                handshakesFailed += other.handshakesFailed
                datagramsForwarded += other.datagramsForwarded
                forwardsDropped += other.forwardsDropped
                forkRecordsRejected += other.forkRecordsRejected
                forkChannels += other.forkChannels
                forkRoutes += other.forkRoutes
            }
        }

        /// What a TLS listener counts.
        public struct TLS: Sendable, Hashable {
            /// TCP connections accepted (refused ones not included).
            public var connectionsAccepted = 0
            /// TCP connections closed at once: ``Options/maxConnections`` were held.
            public var connectionsRefused = 0
            /// Connections whose handshake failed or timed out.
            public var handshakesFailed = 0

            mutating func add(_ other: TLS) {
                connectionsAccepted += other.connectionsAccepted
                connectionsRefused += other.connectionsRefused
                handshakesFailed += other.handshakesFailed
            }
        }

        /// What a DTLS listener's endpoint counts.
        public struct DTLS: Sendable, Hashable {
            /// HelloVerifyRequests sent: ClientHellos without a valid cookie, answered
            /// statelessly (RFC 6347 §4.2.1).
            public var helloVerifyRequestsSent = 0
            /// DTLS 1.3 HelloRetryRequests sent with a cookie, the same stateless step (RFC
            /// 9147 §5.1).
            public var helloRetryRequestsSent = 0
            /// Connections that followed their client to a new address by Connection ID
            /// (RFC 9146 §6).
            public var peersMigrated = 0
            /// Associations created for ClientHellos with a valid cookie.
            public var connectionsCreated = 0
            /// Valid ClientHellos dropped: ``Options/maxConnections`` or the pending-handshake
            /// bound were held.
            public var connectionsRefused = 0
            /// Handshakes that failed or timed out.
            public var handshakesFailed = 0
            /// Datagrams for no association that were not a ClientHello (dropped).
            public var datagramsDropped = 0
            /// Associations replaced by a new handshake from the same address and port (a
            /// client that restarted, RFC 6347 §4.2.8).
            public var connectionsReplaced = 0

            mutating func add(_ other: DTLS) {
                helloVerifyRequestsSent += other.helloVerifyRequestsSent
                helloRetryRequestsSent += other.helloRetryRequestsSent
                peersMigrated += other.peersMigrated
                connectionsCreated += other.connectionsCreated
                connectionsRefused += other.connectionsRefused
                handshakesFailed += other.handshakesFailed
                datagramsDropped += other.datagramsDropped
                connectionsReplaced += other.connectionsReplaced
            }
        }

        /// What an SCTP listener's endpoint counts.
        public struct SCTP: Sendable, Hashable {
            /// Packets whose CRC32c was wrong (RFC 9260 §6.8), dropped.
            public var badChecksums = 0
            /// Packets that did not parse, or were for another SCTP port, dropped.
            public var malformedPackets = 0
            /// Packets of no association (RFC 9260 §8.4), answered with ABORT or dropped.
            public var outOfTheBluePackets = 0
            /// COOKIE ECHOs with a cookie that was not ours or was altered, dropped.
            public var invalidCookies = 0
            /// COOKIE ECHOs with an expired cookie, answered with a Stale Cookie error.
            public var staleCookies = 0
            /// Associations refused: ``Options/maxConnections`` were held.
            public var associationsRefused = 0

            mutating func add(_ other: SCTP) {
                badChecksums += other.badChecksums
                malformedPackets += other.malformedPackets
                outOfTheBluePackets += other.outOfTheBluePackets
                invalidCookies += other.invalidCookies
                staleCookies += other.staleCookies
                associationsRefused += other.associationsRefused
            }
        }

        /// Adds another loop's counters.
        mutating func add(_ other: Statistics) {
            connections += other.connections
            pendingConnections += other.pendingConnections
            if let theirs = other.quic {
                if quic == nil { quic = theirs } else { quic!.add(theirs) }
            }
            if let theirs = other.tls {
                if tls == nil { tls = theirs } else { tls!.add(theirs) }
            }
            if let theirs = other.dtls {
                if dtls == nil { dtls = theirs } else { dtls!.add(theirs) }
            }
            if let theirs = other.sctp {
                if sctp == nil { sctp = theirs } else { sctp!.add(theirs) }
            }
            udpSendFailures += other.udpSendFailures
            udpPeerErrors += other.udpPeerErrors
            udpReceiveErrors += other.udpReceiveErrors
        }
    }

    /// The listener's counters now: the sum of its loops'.
    public var statistics: Statistics {
        cores.dropFirst().reduce(into: cores[0].statistics) { $0.add($1.statistics) }
    }

    /// Counters and the state of the first few connections, for logs and diagnostics.
    public var statisticsDescription: String { cores.map(\.debugDescription).joined(separator: " | ") }

    // MARK: - Polling support

    func readiness() -> PollEvents {
        lock.withLock { acceptQueue.isClosedLocked ? .error : acceptQueue.isEmptyLocked ? [] : .incomingConnection }
    }

    func link(_ poller: Poller, key: Int, add: Bool) {
        let links = acceptQueue.links
        lock.withLock { add ? links.add(poller, key: key) : links.remove(poller, key: key) }
    }
}
