import Logging
public import QuiverCore
import QuiverQUIC
public import QuiverTLS
import QuiverTLSSocket
import QuiverUDP

/// The transport a ``Listener`` or client ``Connection`` speaks.
public enum Transport: Sendable, Hashable {
    /// TLS 1.3 over TCP (or over ``StreamPair``s).
    case tcp
    /// QUIC over UDP (or over ``DatagramPair``s).
    case quic
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

/// Accepts secure connections — TLS over TCP or QUIC — with the same code.
///
/// ```swift
/// let listener = try Listener(.quic, tls: tls, bind: "[::]:4433")   // or .tcp
/// let connection = try listener.accept()      // blocking; the handshake has completed
/// while case let bytes = try connection.read(maxBytes: 4096), !bytes.isEmpty {
///     try connection.write(bytes)             // the default stream
/// }
/// try connection.shutdown()
/// ```
///
/// **Thread safety.** All members may be called from any thread. A listener's I/O state is
/// guarded by one lock that only the driver and `accept` take; each ``Connection`` has its
/// own lock, so reads and writes on different connections run in parallel. Blocking calls
/// release every lock while they wait.
///
/// A listener stops (and closes its connections) at ``close(code:reason:)`` or when the last
/// reference goes away.
public final class Listener: Sendable {
    /// The transport.
    public let transport: Transport
    /// The transport's I/O half: everything below asks it, not the transport.
    let core: any TransportCore
    let driver: Driver
    let options: Options

    /// Creates a listener on attachments (at least one; more may be attached later).
    public init(_ transport: Transport, tls: TLSConfiguration, attachments: [Attachment], options: Options = Options()) throws(QuiverError) {
        self.transport = transport
        self.options = options
        driver = try Driver(threadAssisted: options.driver == .threadAssisted)
        switch transport {
        case .quic:
            let core = QUICCore(driver: driver, policy: options.incomingStreams, sendBufferLimit: options.sendBufferLimit)
            core.setServer(QUICEndpoint(configuration: options.endpointConfiguration(tls: tls)))
            core.handshakeLog = HandshakeFailureLog(logger: options.logger)
            for attachment in attachments { try core.addAttachment(attachment) }
            self.core = core
            try driver.start(core)
        case .tcp:
            let core = TLSCore(driver: driver, configuration: tls, handshakeTimeout: options.handshakeTimeout,
                               bufferLimit: options.sendBufferLimit, maxConnections: options.maxConnections, idleTimeout: options.idleTimeout)
            core.handshakeLog = HandshakeFailureLog(logger: options.logger)
            for attachment in attachments { try core.addAttachment(attachment) }
            self.core = core
            try driver.start(core)
        }
    }

    /// Creates a listener on a new socket bound to `address` (`"[::]:4433"`, `"127.0.0.1:0"`…):
    /// a UDP socket for QUIC, a listening TCP socket for TLS.
    public convenience init(_ transport: Transport, tls: TLSConfiguration, bind address: String, options: Options = Options()) throws(QuiverError) {
        guard let socketAddress = SocketAddress(address) else { throw QuiverError(.configuration, "not an address: \(address)") }
        let attachment: Attachment = switch transport {
        case .quic: .udp(try UDPSocket(bindingTo: socketAddress, configuration: Listener.serverSocketConfiguration))
        case .tcp: .tcpListener(try TCPSocket.listen(on: socketAddress))
        }
        try self.init(transport, tls: tls, attachments: [attachment], options: options)
    }

    deinit { close() }

    /// Socket settings for a listener's own UDP socket: buffers large enough for bursts from
    /// many peers (the kernel caps them at `net.core.rmem_max`/`wmem_max`).
    static var serverSocketConfiguration: UDPSocket.Configuration {
        var configuration = UDPSocket.Configuration()
        configuration.receiveBufferSize = 4 << 20
        configuration.sendBufferSize = 4 << 20
        return configuration
    }

    /// Adds an attachment: another socket, or (TLS) a ``StreamPair`` end carrying one more
    /// connection, or (QUIC) another ``DatagramPair`` end.
    public func attach(_ attachment: Attachment) throws(QuiverError) {
        try core.lock.withLock { () throws(QuiverError) in try core.attachLocked(attachment) }
        driver.wake()
    }

    /// The local addresses of the socket attachments.
    public var localAddresses: [SocketAddress] { core.localAddresses }

    // MARK: - Accepting

    var lock: Monitor { core.lock }

    func acceptLocked() throws(QuiverError) -> Connection? {
        if core.isClosed { throw QuiverError(.closed, "the listener is closed") }
        return core.nextAcceptedLocked().map { Connection(session: $0, owner: nil) }
    }

    /// The next connection whose handshake completed; waits for one.
    /// - Throws: ``QuiverError`` `.closed` once the listener is closed.
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
                if driver.isOnLoopThread {
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
    /// the fork-per-connection server (`ddd-01-fork`), for TLS and QUIC alike.
    ///
    /// - TLS: the child takes over the TCP socket (and the TLS session state); the parent
    ///   closes its copy.
    /// - QUIC: before fork, a UDP socket is bound to the listener's address with
    ///   `SO_REUSEPORT` and connected to the peer; the kernel delivers the peer's datagrams to
    ///   the connected socket, which the child owns. The parent's endpoint forgets the
    ///   connection and silently drops datagrams still arriving for its connection IDs for one
    ///   idle timeout. The listener's UDP socket must have `SO_REUSEPORT`
    ///   (``QuiverUDP/UDPSocket/Configuration/reusePort``), and the connection must have
    ///   arrived on a UDP socket, not an in-memory pair. A client that migrates to a new
    ///   address is not followed (the child's socket is connected to the old one): announce
    ///   `disable_active_migration` (``Options/disableActiveMigration``).
    ///
    /// Fork safety: the fork happens with the listener's lock and the connection's lock held,
    /// so the listener's I/O thread is waiting or polling, not inside an engine; in the child
    /// only the calling thread exists, and nothing of the parent's listener runs there. Other
    /// application threads of the parent do not exist in the child either — do not rely on
    /// locks they may hold (a fork-per-connection server has none: it accepts and forks).
    ///
    /// - Throws: ``QuiverError`` in the parent, before anything changed: `.configuration` for a
    ///   connection that is not this listener's or cannot move, `.closed` for a closed one,
    ///   `.io` when the socket cannot be made or `fork` fails. In the child nothing is thrown;
    ///   if its I/O thread cannot start, the connection is returned closed.
    public func fork(handingOff connection: Connection) throws(QuiverError) -> ForkResult {
        try core.fork(handingOff: connection.session)
    }

    /// After a fork, in the child: starts the I/O of the handed-off connection's own core — or,
    /// when no thread can start, returns the connection closed — and wakes it.
    static func startInChild(_ session: any Session, core: any TransportCore) -> ForkResult {
        do throws(QuiverError) {
            try session.driver.start(core)
        } catch {
            session.monitor.withLock { session.closeLocked(code: 0, reason: "could not start an I/O thread: \(error)") }
        }
        session.driver.wake()
        return .child(Connection(session: session, owner: core))
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
    /// recovery, acknowledgements, idle and handshake timeouts).
    public var nextDeadline: Instant? { core.nextDeadline }

    /// Processes whatever is ready without blocking: input, due timers, output. Call it when
    /// ``pollDescriptor`` is readable, when ``nextDeadline`` passes, and after moving data into
    /// an in-memory attachment.
    public func handleEvents() { driver.handleEventsNow() }

    // MARK: - Closing

    /// Closes every connection (QUIC CONNECTION_CLOSE / TLS close_notify for code 0), stops
    /// the driver and releases the attachments. Blocked callers get `.closed`.
    public func close(code: UInt64 = 0, reason: String = "") { core.close(code: code, reason: reason) }

    /// What a listener counts.
    public struct Statistics: Sendable, Hashable {
        /// Connections alive (handshaking, established or closing).
        public var connections = 0
        /// Connections whose handshake is in progress.
        public var pendingConnections = 0
        /// QUIC: the endpoint's counters (Retry, Version Negotiation, stateless resets, drops);
        /// `nil` on TLS.
        public var quic: QUIC?
        /// QUIC: datagrams the kernel refused to send (`EMSGSIZE`, `ENOBUFS`, …).
        public var udpSendFailures = 0
        /// QUIC: ICMP errors reported for peers (port unreachable and the like), dropped.
        public var udpPeerErrors = 0
        /// QUIC: failed receive calls.
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
        }
    }

    /// The listener's counters now.
    public var statistics: Statistics { core.statistics }

    /// Counters and the state of the first few connections, for logs and diagnostics.
    public var statisticsDescription: String { core.debugDescription }

    // MARK: - Polling support

    func readiness() -> PollEvents {
        lock.withLock { core.isClosed ? .error : core.hasPendingAcceptLocked ? .incomingConnection : [] }
    }

    func link(_ poller: Poller, key: Int, add: Bool) {
        let links = core.listenerLinks
        lock.withLock { add ? links.add(poller, key: key) : links.remove(poller, key: key) }
    }
}
