#if canImport(Glibc)
import Glibc
#endif
public import Logging
public import QuiverCore
import QuiverQUIC
import QuiverSCTP
public import QuiverTLS
import QuiverTLSSocket
import QuiverUDP
public import X509

/// One secure connection — TLS over TCP, QUIC or DTLS — as accepted from a ``Listener`` or made by
/// ``connect(_:to:port:tls:serverName:options:)-447sq``.
///
/// Every connection has a **default stream**, so TLS-style code (read, write, finish) runs
/// unchanged on QUIC: on a server it is the client's first bidirectional stream, on a client
/// the first bidirectional stream, opened on first use. QUIC connections have more streams:
/// ``acceptStream()-pn1a`` / ``openStream(bidirectional:)-23t6a``; QUIC-only features — DATAGRAMs, the
/// version, resumption, 0-RTT, key updates — are on the ``quic`` view. A DTLS connection's
/// default stream carries messages: a read returns one record's payload (cut to `maxBytes`, as
/// UDP's `recv` cuts a datagram), a write sends one record of at most 16 KiB (larger is a
/// `.configuration` error), and a message the network lost is lost.
///
/// Every operation has a blocking form and a `try…` form that returns `nil` (or 0 bytes
/// written) instead of blocking; neither throws for "would block". Errors are
/// `QuiverError`s: `.closed` (with the ``closeInfo``), `.streamReset`, TLS alerts.
///
/// **Thread safety.** A connection has its own lock: calls from any thread are safe, and calls
/// on different connections never contend. One thread may read while another writes.
public final class Connection: Sendable {
    let session: any Session
    /// A client connection owns its I/O core (a listener owns its connections' cores).
    private let owner: (any TransportCore)?

    /// The listener's (or client's) logger, without this connection's metadata.
    private let baseLogger: Logger

    init(session: any Session, owner: (any TransportCore)?, logger: Logger) {
        self.session = session
        self.owner = owner
        self.baseLogger = logger
    }

    deinit {
        // An abandoned connection is closed (code 0) rather than left to its idle timeout.
        session.withEngine { session.closeLocked(code: 0, reason: "") }
        owner?.closeUnlessLingering()
    }

    // MARK: - Properties

    /// The transport.
    public var transport: Transport { session.transport }
    /// The peer's address (for an unaddressed attachment, the synthetic address that names it).
    public var peerAddress: SocketAddress? { session.peerAddress }
    /// The negotiated application protocol (ALPN).
    public var alpn: String? { session.alpn }
    /// The TLS version negotiated (`.tls13` for QUIC; over TCP `.tls12` with a TLS 1.2 peer).
    public var tlsVersion: TLSVersion? { session.tlsVersion }
    /// The server name the client asked for (SNI).
    public var serverName: String? { session.serverName }
    /// The peer's certificate chain, leaf first (clients always see the server's).
    public var peerCertificates: [Certificate] { session.peerCertificates }
    /// How the connection ended, once it has.
    public var closeInfo: CloseInfo? { session.monitor.withLock { session.closeInfoLocked } }
    /// The default stream as a ``Stream``.
    public var defaultStream: Stream { Stream(connection: self, key: nil) }

    // MARK: - Logging

    /// A logger for lines about this connection: its listener's ``Listener/Options/logger`` (a
    /// client's ``ClientOptions/logger``) carrying ``loggerMetadata``, so every line names the
    /// connection without putting it in the message.
    ///
    /// ```swift
    /// connection.logger.info("request served")   // transport=quic peer=192.0.2.1:50000 quic.connection_id=…
    /// ```
    ///
    /// Made on each call (keep it for many lines).
    public var logger: Logger {
        var logger = baseLogger
        for (key, value) in loggerMetadata { logger[metadataKey: key] = value }
        return logger
    }

    /// The metadata that names this connection in log lines — the listener's failed-handshake
    /// lines carry the same keys:
    /// - `transport`: the transport (`tcp`, `quic`, `dtls` …);
    /// - `peer`: the peer's address;
    /// - `quic.connection_id` (QUIC only): the first Destination Connection ID the client chose
    ///   (RFC 9000 §7.3), in hex — fixed for the connection's life, as qlog names connections.
    public var loggerMetadata: Logger.Metadata {
        Self.loggerMetadata(transport: transport, peer: peerAddress, connectionID: session.quic?.originalDestinationConnectionID)
    }

    /// ``loggerMetadata`` from its parts (also for handshakes that failed, which have no
    /// ``Connection``).
    static func loggerMetadata(transport: Transport, peer: SocketAddress?, connectionID: ConnectionID?) -> Logger.Metadata {
        var metadata: Logger.Metadata = ["transport": "\(transport)", "peer": "\(peer.map { "\($0)" } ?? "unknown")"]
        if let connectionID { metadata["quic.connection_id"] = "\(connectionID)" }
        return metadata
    }

    /// Waits until the handshake completes (accepted connections have completed it already).
    /// - Throws: `.closed` when it failed.
    public func waitForHandshake() throws(QuiverError) {
        _ = try session.blocking(wake: .events) { () throws(QuiverError) in try handshakeOutcomeLocked() }
    }

    /// `true` once the handshake completed, `nil` while it runs; throws when it failed.
    func handshakeOutcomeLocked() throws(QuiverError) -> Bool? {
        guard session.isReadyLocked else { return nil }
        if let info = session.closeInfoLocked, !info.isClean {
            // As TCP reports a refused connection: "connect ADDRESS failed: Connection refused (errno 111)".
            if info.origin == .unreachable { throw QuiverError(.io, info.reason) }
            throw QuiverError(.closed, "handshake failed: \(info)")
        }
        return true
    }

    // MARK: - Default stream

    /// Reads up to `maxBytes`; waits for data. An empty result is the end of the stream.
    public func read(maxBytes: Int = 1 << 16) throws(QuiverError) -> [UInt8] { try defaultStream.read(maxBytes: maxBytes) }
    /// Reads into `buffer`; waits for data. Returns the count, 0 at the end of the stream.
    public func read(into buffer: inout [UInt8]) throws(QuiverError) -> Int { try defaultStream.read(into: &buffer) }
    /// Reads up to `maxBytes` if any are waiting: `nil` would block, empty is the end of stream.
    public func tryRead(maxBytes: Int = 1 << 16) throws(QuiverError) -> [UInt8]? { try defaultStream.tryRead(maxBytes: maxBytes) }
    /// Writes all of `bytes`, waiting while the send buffer is full.
    public func write(_ bytes: some Collection<UInt8>) throws(QuiverError) { try defaultStream.write(bytes) }
    /// Writes what fits now; returns the count (0 would block).
    public func tryWrite(_ bytes: some Collection<UInt8>) throws(QuiverError) -> Int { try defaultStream.tryWrite(bytes) }
    /// Ends our side of the default stream (QUIC FIN; TLS close_notify, a half-close).
    public func finish() throws(QuiverError) { try defaultStream.finish() }

    // MARK: - Streams

    /// The next stream the peer opened; waits for one. Throws `.closed` when the connection ends.
    public func acceptStream() throws(QuiverError) -> Stream {
        let id = try session.blocking(wake: .events) { () throws(QuiverError) in try session.acceptStreamLocked() }
        return Stream(connection: self, key: id)
    }

    /// The next stream the peer opened, or `nil` (would block).
    public func tryAcceptStream() throws(QuiverError) -> Stream? {
        try session.once { () throws(QuiverError) in try session.acceptStreamLocked() }.map { Stream(connection: self, key: $0) }
    }

    /// Opens a stream, waiting while the peer's stream limit is reached (QUIC only).
    public func openStream(bidirectional: Bool = true) throws(QuiverError) -> Stream {
        let id = try session.blocking { () throws(QuiverError) in try session.openStreamLocked(bidirectional: bidirectional) }
        return Stream(connection: self, key: id)
    }

    /// Opens a stream, or returns `nil` when the peer's stream limit is reached (would block).
    public func tryOpenStream(bidirectional: Bool = true) throws(QuiverError) -> Stream? {
        try session.once { () throws(QuiverError) in try session.openStreamLocked(bidirectional: bidirectional) }.map { Stream(connection: self, key: $0) }
    }

    // MARK: - Shutdown

    /// Ends the connection. `.flush` (the default) finishes the default stream, waits until
    /// everything written was delivered and then closes with code 0 (`.flushThenClose` with its
    /// own code); `.rapid` closes at once. Returns when the close has been handed to the transport.
    public func shutdown(_ mode: ShutdownMode = .flush) throws(QuiverError) {
        if mode.waitsForDelivery {
            _ = try? session.once { () throws(QuiverError) in try session.finishLocked(nil) }
            _ = try session.blocking { () -> Bool? in isFlushedOrClosedLocked }
        }
        close(mode)
    }

    /// For a flushing shutdown: `true` once everything written was delivered (or the
    /// connection ended), `nil` before.
    var isFlushedOrClosedLocked: Bool? { session.closeInfoLocked != nil || session.isFlushedLocked ? true : nil }

    /// The end of ``shutdown(_:)`` once a `.flush` has waited for delivery: closes the
    /// connection, and a client's own I/O core after its closing period.
    func close(_ mode: ShutdownMode) {
        let (code, reason) = mode.close
        session.withEngine { session.closeLocked(code: code, reason: reason) }
        owner?.lingerThenClose()
    }

    /// Waits until the connection has ended completely — after ``shutdown(_:)-rjtt``, a close by the
    /// peer or a failure: QUIC's closing or draining period is over (RFC 9000 §10.2: our
    /// CONNECTION_CLOSE was sent, and sent again to a peer that kept sending), TLS's socket is
    /// closed. A process about to exit after its last connection (a forked child) calls it so
    /// the close reaches the peer. It does not close the connection itself.
    public func waitUntilClosed() {
        _ = try? session.blocking { () -> Bool? in session.isTerminatedLocked ? true : nil }
    }

    /// Waits until our close has been handed to the transport — QUIC: the CONNECTION_CLOSE
    /// left in a datagram; TLS: as ``waitUntilClosed()-25c2o`` — or the connection ended otherwise.
    /// Unlike ``waitUntilClosed()-25c2o`` it does not wait out QUIC's closing period (three probe
    /// timeouts, RFC 9000 §10.2), in which a close lost on the way is sent again to a peer
    /// that keeps sending: for a process that exits right after and accepts that risk, as a
    /// command-line client does. It does not close the connection itself.
    public func waitUntilCloseSent() {
        _ = try? session.blocking { () -> Bool? in session.isCloseSentLocked ? true : nil }
    }

    /// Non-blocking shutdown: returns `false` while a flushing mode still waits for delivery
    /// (call again later), `true` once the close was issued.
    public func tryShutdown(_ mode: ShutdownMode = .flush) -> Bool {
        if mode.waitsForDelivery {
            let flushed = session.withEngine { () -> Bool in
                try? session.finishLocked(nil)
                return session.closeInfoLocked != nil || session.isFlushedLocked
            }
            guard flushed else { return false }
        }
        try? shutdown(.rapid(code: mode.close.code, reason: mode.close.reason))
        return true
    }

    // MARK: - Clients

    /// Connects to `host:port` (a name or numeric address) and completes the handshake.
    ///
    /// The connection gets its own UDP (QUIC, DTLS) or TCP socket and its own driver
    /// (thread-assisted by default); it is closed by ``shutdown(_:)-rjtt`` or when the last
    /// reference goes away.
    public static func connect(_ transport: Transport, to host: String, port: UInt16, tls: TLSConfiguration,
                               serverName: String? = nil, options: ClientOptions = ClientOptions()) throws(QuiverError) -> Connection {
        try open(transport, to: host, port: port, tls: tls, serverName: serverName, options: options)
    }

    /// ``connect(_:to:port:tls:serverName:options:)`` under a name the async overload can call.
    static func open(_ transport: Transport, to host: String, port: UInt16, tls: TLSConfiguration,
                     serverName: String?, options: ClientOptions) throws(QuiverError) -> Connection {
        let name = serverName ?? (SocketAddress(host: host, port: port) == nil ? host : nil)
        switch transport {
        case .tcp:
            let socket = try TCPSocket.connect(host: host, port: port)
            let fd = dup(socket.descriptor)
            socket.close()
            guard fd >= 0 else { throw QuiverError(.io, "dup: \(String(cString: strerror(errno)))") }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            _ = withUnsafeMutablePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &length) } }
            return try connectTLS(carrier: .socket(fd), peer: SocketAddress(storage: storage), tls: tls, serverName: name, options: options)
        case .quic, .dtls, .sctp, .dtlsOverSCTP, .sctpOverDTLS:
            guard let remote = SocketAddress(host: host, port: port) ?? resolve(host, port) else {
                throw QuiverError(.io, "cannot resolve \(host)")
            }
            let local = SocketAddress(host: remote.addressBytes.count == 4 ? "0.0.0.0" : "::", port: 0)!
            if transport == .quic {
                return try connectQUIC(over: .udp(try UDPSocket(bindingTo: local)), remote: remote, tls: tls, serverName: name, options: options)
            }
            if transport.isSCTP {
                return try connectSCTP(transport, over: .udp(try UDPSocket(bindingTo: local, configuration: Listener.dtlsSocketConfiguration)),
                                       remote: remote, tls: tls, serverName: name, options: options)
            }
            let socket = try UDPSocket(bindingTo: local, configuration: Listener.dtlsSocketConfiguration)
            return try connectDTLS(over: .udp(socket), remote: remote, tls: tls, serverName: name, options: options)
        }
    }

    /// Connects over an attachment: a ``DatagramPair`` end or UDP socket (QUIC; `remote` is
    /// the server's address, ignored on an unaddressed pair) or a ``StreamPair`` end (TLS).
    public static func connect(over attachment: Attachment, remote: SocketAddress? = nil, tls: TLSConfiguration,
                               serverName: String?, options: ClientOptions = ClientOptions()) throws(QuiverError) -> Connection {
        try connect(attachment.carriesDatagrams ? .quic : .tcp, over: attachment, remote: remote, tls: tls, serverName: serverName, options: options)
    }

    /// Connects with `transport` over an attachment: a ``DatagramPair`` end or UDP socket
    /// (QUIC, DTLS; `remote` is the server's address, ignored on an unaddressed pair) or a
    /// ``StreamPair`` end (TLS).
    /// - Throws: `.configuration` for an attachment the transport does not take.
    public static func connect(_ transport: Transport, over attachment: Attachment, remote: SocketAddress? = nil, tls: TLSConfiguration,
                               serverName: String?, options: ClientOptions = ClientOptions()) throws(QuiverError) -> Connection {
        switch (transport, attachment.kind) {
        case (.tcp, .stream(let end, let peer)):
            return try connectTLS(carrier: .pair(end), peer: peer ?? remote, tls: tls, serverName: serverName, options: options)
        case (.quic, .udp), (.quic, .datagrams), (.dtls, .udp), (.dtls, .datagrams), (.sctp, .udp), (.sctp, .datagrams),
             (.dtlsOverSCTP, .udp), (.dtlsOverSCTP, .datagrams), (.sctpOverDTLS, .udp), (.sctpOverDTLS, .datagrams):
            let destination = attachment.isAddressed ? remote : Attachment.syntheticAddress(0)
            guard let destination else { throw QuiverError(.configuration, "an addressed attachment needs the server's address") }
            if transport.isSCTP {
                return try connectSCTP(transport, over: attachment, remote: destination, tls: tls, serverName: serverName, options: options)
            }
            if transport == .dtls {
                return try connectDTLS(over: attachment, remote: destination, tls: tls, serverName: serverName, options: options)
            }
            return try connectQUIC(over: attachment, remote: destination, tls: tls, serverName: serverName, options: options)
        case (_, .tcpListener):
            throw QuiverError(.configuration, "cannot connect over a listening socket")
        default:
            throw QuiverError(.configuration, "\(transport) does not run over a \(attachment)")
        }
    }

    private static func connectTLS(carrier: TLSSession.Carrier, peer: SocketAddress?, tls: TLSConfiguration,
                                   serverName: String?, options: ClientOptions) throws(QuiverError) -> Connection {
        let driver = try Driver(threadAssisted: options.driver == .threadAssisted)
        let core = TLSCore(driver: driver, acceptQueue: nil, configuration: tls, handshakeTimeout: options.handshakeTimeout,
                           bufferLimit: options.sendBufferLimit, budget: ConnectionBudget(limit: 1))
        let session = try core.addSession(carrier: carrier, peer: peer, client: .some(serverName))
        try driver.start(core)
        let connection = Connection(session: session, owner: core, logger: options.logger)
        if options.waitForHandshake { try connection.waitForHandshake() }
        return connection
    }

    private static func connectDTLS(over attachment: Attachment, remote: SocketAddress, tls: TLSConfiguration,
                                    serverName: String?, options: ClientOptions) throws(QuiverError) -> Connection {
        let driver = try Driver(threadAssisted: options.driver == .threadAssisted)
        let engine = DTLSConnection(client: tls, serverName: serverName)
        engine.mtu = options.dtlsMaxDatagramSize
        do throws(TLSError) { try engine.start(now: .now()) } catch {
            throw QuiverError(.configuration, "\(error)")
        }
        let core = DTLSCore(driver: driver, acceptQueue: nil, sendBufferLimit: options.sendBufferLimit, idleTimeout: nil,
                            handshakeTimeout: options.handshakeTimeout)
        try core.addAttachment(attachment)
        let session = core.setClient(engine, peer: remote)
        try driver.start(core)
        driver.wake()
        let connection = Connection(session: session, owner: core, logger: options.logger)
        if options.waitForHandshake { try connection.waitForHandshake() }
        return connection
    }

    /// An SCTP association with the server's SCTP port ``ClientOptions/sctpPort`` at `remote`,
    /// with DTLS on it (DTLS over SCTP) or under it (SCTP over DTLS) as `transport` says.
    private static func connectSCTP(_ transport: Transport, over attachment: Attachment, remote: SocketAddress, tls: TLSConfiguration,
                                    serverName: String?, options: ClientOptions) throws(QuiverError) -> Connection {
        let driver = try Driver(threadAssisted: options.driver == .threadAssisted)
        var configuration = SCTPEndpoint.Configuration.quiver(transport, port: options.sctpPort, sendBufferSize: options.sendBufferLimit)
        configuration.acceptsAssociations = false
        let core: SCTPCore
        let session: SCTPSession
        if transport == .sctpOverDTLS {
            let dtls = DTLSConnection(client: tls, serverName: serverName)
            dtls.localConnectionID = nil  // SCTP over DTLS follows no address change
            dtls.mtu = options.dtlsMaxDatagramSize
            do throws(TLSError) { try dtls.start(now: .now()) } catch { throw QuiverError(.configuration, "\(error)") }
            let endpoint = SCTPOverDTLSEndpoint(client: dtls, peer: remote, sctp: configuration)
            core = SCTPCore(driver: driver, acceptQueue: nil, transport: transport, endpoint: endpoint, handshakeTimeout: options.handshakeTimeout)
            session = core.connect(endpoint.connect(port: options.sctpPort, now: .now())!)
        } else {
            let endpoint = SCTPEndpoint(configuration: configuration)
            core = SCTPCore(driver: driver, acceptQueue: nil, transport: transport, endpoint: endpoint, handshakeTimeout: options.handshakeTimeout)
            let association = endpoint.connect(to: remote, port: options.sctpPort, now: .now())
            session = core.connect(association, dtls: transport == .dtlsOverSCTP ? DTLSConnection(client: tls.dtlsOverSCTP, serverName: serverName) : nil)
        }
        try core.addAttachment(attachment)
        try driver.start(core)
        driver.wake()
        let connection = Connection(session: session, owner: core, logger: options.logger)
        if options.waitForHandshake { try connection.waitForHandshake() }
        return connection
    }

    private static func connectQUIC(over attachment: Attachment, remote: SocketAddress, tls: TLSConfiguration,
                                    serverName: String?, options: ClientOptions) throws(QuiverError) -> Connection {
        let driver = try Driver(threadAssisted: options.driver == .threadAssisted)
        let engine: QUICConnection
        do throws(QUICError) {
            engine = try QUICConnection(client: options.quicConfiguration(tls: tls), serverName: serverName, remoteAddress: remote,
                                        resumption: options.resumption?.engine, attemptEarlyData: options.earlyData, now: .now())
        } catch {
            throw QuiverError(.configuration, "\(error)")
        }
        let core = QUICCore(driver: driver, acceptQueue: nil, policy: options.incomingStreams, sendBufferLimit: options.sendBufferLimit)
        try core.addAttachment(attachment)
        let session = core.setClient(engine)
        try driver.start(core)
        driver.wake()
        let connection = Connection(session: session, owner: core, logger: options.logger)
        if options.waitForHandshake { try connection.waitForHandshake() }
        return connection
    }

    private static func resolve(_ host: String, _ port: UInt16) -> SocketAddress? {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &result) == 0, let first = result else { return nil }
        defer { freeaddrinfo(result) }
        var storage = sockaddr_storage()
        memcpy(&storage, first.pointee.ai_addr, Int(first.pointee.ai_addrlen))
        return SocketAddress(storage: storage)
    }

    /// Diagnostics of a client connection's engine.
    var debugDescription: String { owner?.debugDescription ?? "" }

    // MARK: - Application-driven clients

    /// The descriptor to watch (application-driven client connections; `nil` otherwise).
    public var pollDescriptor: Int32? { session.driver.isThreadAssisted ? nil : session.driver.poll.descriptor }
    /// When ``handleEvents()`` must run even if nothing arrives (application-driven clients;
    /// `nil` when a thread drives the connection).
    public var nextDeadline: Instant? { session.driver.isThreadAssisted ? nil : session.driver.core?.nextDeadline }
    /// Processes what is ready without blocking (application-driven clients; nothing when a
    /// thread drives the connection).
    public func handleEvents() { session.driver.handleEventsNow() }
}
