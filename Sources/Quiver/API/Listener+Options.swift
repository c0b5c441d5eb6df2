import QuiverSCTP
public import CoreMetrics
public import Logging
// The engine's configuration types appear only in `@_spi(QUICEngine)` members: ordinary users
// of the listener API neither see nor import them.
@_spiOnly public import QuiverQUIC
import QuiverTLS

extension Listener {
    /// Listener settings beyond the TLS configuration.
    ///
    /// The QUIC settings a server sets are plain properties here (Retry, versions, datagram
    /// sizes, congestion control, stream limits …); their defaults are the QUIC engine's.
    public struct Options: Sendable {
        /// Who runs the I/O (default: a background thread).
        public var driver: DriverMode = .threadAssisted
        /// How many event loops — I/O threads, each running its own share of the connections —
        /// serve the listener (default 1; one per core scales a host, see
        /// ``Listener/eventLoopCount``). Several loops need the thread-assisted driver and one
        /// socket each: ``Listener/init(_:tls:bind:options:)`` makes them (one SO_REUSEPORT
        /// group; for QUIC with connection-ID steering, so every datagram of a connection
        /// reaches its loop; for DTLS by the kernel's hash of the peer's address and port). ``maxConnections`` holds for all loops together; the flood
        /// thresholds — the pending handshakes of ``retryPolicy`` — are divided among them. A
        /// connection's tasks belong on its own loop: ``Connection/taskExecutor``.
        public var eventLoops = 1
        /// What accepted connections do with streams the peer opens (QUIC).
        public var incomingStreams: IncomingStreamPolicy = .accept
        /// Bytes a connection buffers per stream for sending before writes would block (DTLS:
        /// bytes of datagrams not yet handed to the socket).
        public var sendBufferLimit = 1 << 20
        /// TLS and DTLS: how long a handshake may take before the connection is dropped.
        public var handshakeTimeout: Duration = .seconds(10)
        /// How long an established connection may stay silent before it is closed; `nil`
        /// never closes it. QUIC: the `max_idle_timeout` announced (the smaller of both
        /// sides' applies, RFC 9000 §10.1). TLS and DTLS: no byte moved either way for this long —
        /// the connection is closed with a close_notify and ``CloseInfo/Origin/timeout``, between 1
        /// and 1.25 times this after its last byte.
        public var idleTimeout: Duration? = .seconds(30)
        /// The most connections held at once, handshaking or established; more are refused —
        /// QUIC: with CONNECTION_CLOSE (CONNECTION_REFUSED) in an Initial packet, keeping no
        /// state; TLS: the TCP connection is accepted and closed at once; DTLS: the ClientHello
        /// (with a valid cookie) is dropped, keeping no state.
        public var maxConnections = 10_000
        /// Where failed and abandoned handshakes are logged (at `info`, with the peer's address
        /// and the reason, rate-limited). The default logs nothing; pass your application's
        /// logger to see them.
        public var logger = Logger(label: "quiver.listener", factory: { _ in SwiftLogNoOpLogHandler() })

        // MARK: Metrics

        /// Where the listener's metrics go (swift-metrics). `nil` (the default) takes
        /// `MetricsSystem.factory` as it is when the listener is created — the no-op factory
        /// unless the application bootstrapped a backend first. With the no-op factory the
        /// listener makes no metric handles and updates nothing.
        ///
        /// The metrics, each with a `transport` dimension (`tcp`, `quic`, `dtls`, `sctp`,
        /// `dtls_over_sctp`, `sctp_over_dtls`) and ``metricsDimensions``:
        /// - `quiver_handshakes_total` (counter) with `outcome` `success` or `failure` and
        ///   `reason`: `none` for a success, else one of `timeout`, `certificate`, `alpn`,
        ///   `version`, `negotiation`, `protocol`, `closed`, `other` (a fixed set: never a
        ///   peer address or an error text).
        /// - `quiver_connections_open` (gauge, a swift-metrics `Meter`): connections whose
        ///   handshake completed (an SCTP association: once it is ready for accept) and which
        ///   have not ended yet.
        /// - `quiver_bytes_received_total`, `quiver_bytes_sent_total` (counters): bytes on the
        ///   transport — TCP bytes of TLS connections, UDP payloads of QUIC connections, and for
        ///   DTLS and the SCTP transports every datagram the listener's attachments moved.
        /// - `quiver_quic_packets_lost_total` (counter) and `quiver_quic_smoothed_rtt_seconds`
        ///   (timer: each established connection's smoothed RTT when it ends).
        ///
        /// Handshake failures of the SCTP transports are their DTLS handshakes' (plain SCTP's
        /// refused cookies are in ``Listener/Statistics/SCTP``).
        /// Nothing is updated per packet: handshakes as they complete or fail, byte and loss
        /// counts at most every 5 seconds while the listener runs and when a connection ends.
        /// Tests pass their own factory here instead of bootstrapping the process-wide one.
        public var metricsFactory: (any MetricsFactory)?
        /// Dimensions added to every metric of this listener, such as `[("listener", "public")]`,
        /// to tell several listeners apart. Keep their values few and fixed.
        public var metricsDimensions: [(String, String)] = []

        // MARK: DTLS

        /// DTLS: the key of the stateless cookies (RFC 6347 §4.2.1, an HMAC over the client's
        /// address, a time and its ClientHello). Give the processes serving one port — and a
        /// restarted server — the same key (32 random bytes), so a cookie one of them issued is
        /// good at the others. `nil` (the default): a random key per listener.
        public var dtlsCookieSecret: [UInt8]?
        /// DTLS: handshakes in progress at most (after a valid cookie); more ClientHellos are
        /// dropped. With several ``eventLoops`` it is divided among them.
        public var maxPendingDTLSHandshakes = 1024
        /// DTLS: the largest datagram a handshake flight uses (its messages are fragmented to
        /// fit; default 1200, which every IPv6 path carries). Application messages are one record
        /// each, whatever their size.
        public var dtlsMaxDatagramSize = 1200

        // MARK: QUIC

        /// QUIC: the versions accepted, most preferred first (default: v1, v2). A client that
        /// starts in one of them and offers a more preferred one in its version_information is
        /// moved to it by compatible version negotiation (RFC 9368 §2.3; v1 and v2 are
        /// compatible, RFC 9369 §4); a client starting in another version gets a Version
        /// Negotiation packet.
        public var quicVersions: [QUICVersion] = QUICDefaults.connection.supportedVersions
        /// QUIC: when a client must prove its address with a Retry round trip before its
        /// handshake proceeds (RFC 9000 §8.1.2). Default: once 128 handshakes are pending.
        public var retryPolicy = RetryPolicy(QUICDefaults.endpoint.retryPolicy)
        /// QUIC: whether established connections receive a NEW_TOKEN, with which their next
        /// connection skips Retry (RFC 9000 §8.1.3; default on). Tokens are bound to the
        /// client's address: turn them off where addresses are synthetic (unaddressed pairs).
        public var issueNewTokens = QUICDefaults.endpoint.issueNewTokens
        /// QUIC: the largest UDP payload sent, also announced as max_udp_payload_size (at least
        /// 1200, RFC 9000 §14; `nil`, the default: 16 383 with ``pathMTUDiscovery``, 1452
        /// without). With discovery it is the ceiling of the search: a connection starts at
        /// 1200 bytes and grows only to sizes a probe proved (1452 on Ethernet, 8952 on jumbo
        /// frames, the ceiling on loopback); without it, it sends this size from the start, so
        /// it must be what the path carries.
        public var maxDatagramSize = QUICDefaults.connection.maxDatagramSize
        /// QUIC: datagram packetization layer path MTU discovery (RFC 9000 §14.3, RFC 8899;
        /// default on): probes search for the largest datagram, up to ``maxDatagramSize``, that
        /// the path carries, trying the common sizes first.
        public var pathMTUDiscovery = QUICDefaults.connection.pathMTUDiscovery
        /// QUIC: the congestion controller (default CUBIC, RFC 9438).
        public var congestionControl = CongestionControl(QUICDefaults.connection.congestionAlgorithm)
        /// QUIC: how many bidirectional streams a client may have open at once
        /// (initial_max_streams_bidi; default 100).
        public var maxIncomingBidirectionalStreams = Int(QUICDefaults.connection.maxIncomingBidirectionalStreams)
        /// QUIC: how many unidirectional streams a client may have open at once
        /// (initial_max_streams_uni; default 100).
        public var maxIncomingUnidirectionalStreams = Int(QUICDefaults.connection.maxIncomingUnidirectionalStreams)
        /// QUIC: the largest DATAGRAM frame accepted (max_datagram_frame_size, RFC 9221 §3);
        /// `nil` (the default) does not offer DATAGRAM frames, and a client sending one then
        /// fails (``Connection/QUIC/sendDatagram(_:)``).
        public var maxDatagramFrameSize: Int?
        /// QUIC: announce disable_active_migration (RFC 9000 §18.2): clients must not move to
        /// a new address. (Fork-per-connection servers need not: a forked child follows its
        /// client to a new address through its parent, ``Listener/fork(handingOff:)``.)
        public var disableActiveMigration = QUICDefaults.connection.disableActiveMigration
        /// QUIC: the server's preferred addresses (RFC 9000 §9.6), at most one IPv4 and one
        /// IPv6 address, each a specific IP address. Clients that follow the preferred_address
        /// transport parameter move there once the handshake is confirmed; the server checks
        /// the path from there and then answers from there only (§9.6.2). The listener must
        /// receive there: ``Listener/init(_:tls:bind:options:)`` binds them (port 0 takes a
        /// free port, and that port is announced); a listener made from attachments needs one
        /// bound to each (per loop, after the loops' attachments for the first address). Empty
        /// (the default): none. A forked child (``Listener/fork(handingOff:)``) keeps the
        /// address its connection was on.
        public var preferredAddresses: [SocketAddress] = []
        /// QUIC and DTLS: put this worker id in every connection ID issued (bytes 1–2, the
        /// layout of the engine's `WorkerConnectionIDs`; DTLS: of the Connection IDs given to
        /// clients that offer them), so that the BPF program of a `UDPSocket.steeringGroup`
        /// (`dtls: true` for DTLS) sends each connection's datagrams to its worker's socket —
        /// prefork servers, one worker per SO_REUSEPORT socket. With several QUIC
        /// ``eventLoops``, loop *i* is worker `workerID + i` (a restarted server's generation of
        /// a `UDPSocket.generationGroup`); `nil` there means 0. `nil` (the default, one loop):
        /// random connection IDs.
        public var workerID: UInt16?
        /// QUIC: this server's place in a QUIC-LB deployment (draft-ietf-quic-load-balancers):
        /// every connection ID issued carries its server ID, by which a load balancer in front
        /// of several hosts routes each packet to this one, whatever the client's address. With
        /// several ``eventLoops`` (or a prefork ``workerID``) the loop's worker id opens the
        /// nonce and the steering group reads it there (``Listener/QUICLB/workerIDOffset``);
        /// that takes a plaintext configuration with a nonce of 6 octets or more, else the
        /// listener refuses it. `nil` (the default): no QUIC-LB server ID.
        public var quicLB: QUICLB?
        /// QUIC: the key stateless reset tokens are derived from (RFC 9000 §10.3.2). Give the
        /// processes of one server — and a restarted server — the same key, so that a client of
        /// a connection no process knows any more is told at once. `nil` (the default): a random
        /// key per listener.
        public var statelessResetKey: [UInt8]?
        /// QUIC: the secret Retry and NEW_TOKEN tokens are sealed under (AES-256-GCM, a key
        /// derived from it). Give the hosts of one service — and a restarted server — the same
        /// secret, so that a token one of them issued validates at any other. `nil` (the
        /// default): a random secret per listener.
        public var tokenSecret: [UInt8]?
        /// QUIC: write a qlog trace of every connection into this directory, which must exist
        /// (one JSON-SEQ file per connection, `<original destination connection ID>_server.sqlog`,
        /// draft-ietf-quic-qlog-main-schema and -quic-events); `nil` (the default) logs nothing.
        /// Events are buffered per connection and written in batches. The `quiver` command
        /// takes it from `--qlog` or the `QLOGDIR` environment variable.
        public var qlogDirectory: String?
        /// QUIC: whether the latency spin bit may be used (RFC 9000 §17.4; default on). Even
        /// when allowed, a random one in eight paths goes without, as the RFC requires.
        public var spinBit = QUICDefaults.connection.spinBit

        /// QUIC, for tests and benchmarks: adjusts the full engine configuration after the
        /// options above were applied. Not API: the engine's types change with the engine.
        @_spi(QUICEngine) public var configureQUIC: @Sendable (inout QUICEndpoint.Configuration) -> Void = { _ in }

        /// SCTP: the SCTP port (the common header's, not the UDP port under it) the listener's
        /// associations are set up on. 5000, as WebRTC's data channels use.
        public var sctpPort: UInt16 = 5000

        public init() {}
    }

    /// When a QUIC listener asks clients to prove their address with a Retry round trip
    /// (RFC 9000 §8.1.2) before their handshake proceeds.
    public enum RetryPolicy: Sendable, Hashable {
        /// Never: the anti-amplification limit alone protects against reflection.
        case never
        /// For every Initial without a valid token.
        case always
        /// Once this many handshakes are pending (a sign of a flood).
        case whenPendingExceeds(Int)
    }

    /// The congestion controller of a QUIC listener's connections.
    public enum CongestionControl: Sendable, Hashable, CaseIterable {
        /// NewReno (RFC 9002 §7).
        case newReno
        /// CUBIC (RFC 9438).
        case cubic
        /// BBR version 3 (draft-ietf-ccwg-bbr), experimental: paces at its estimate of the
        /// bottleneck bandwidth instead of backing off on every loss.
        case bbr
    }
}

extension Listener.CongestionControl {
    init(_ algorithm: CongestionAlgorithm) {
        switch algorithm {
        case .newReno: self = .newReno
        case .cubic: self = .cubic
        case .bbr: self = .bbr
        }
    }

    var engine: CongestionAlgorithm {
        switch self {
        case .newReno: .newReno
        case .cubic: .cubic
        case .bbr: .bbr
        }
    }
}

extension Listener.RetryPolicy {
    init(_ policy: QUICEndpoint.RetryPolicy) {
        switch policy {
        case .never: self = .never
        case .always: self = .always
        case .whenPendingExceeds(let count): self = .whenPendingExceeds(count)
        }
    }

    var engine: QUICEndpoint.RetryPolicy {
        switch self {
        case .never: .never
        case .always: .always
        case .whenPendingExceeds(let count): .whenPendingExceeds(count)
        }
    }
}

extension Listener.Options {
    /// The QUIC endpoint configuration these options describe, for `tls`.
    func endpointConfiguration(tls: TLSConfiguration) -> QUICEndpoint.Configuration {
        var connection = QUICConfiguration(tls: tls)
        connection.idleTimeout = idleTimeout ?? .zero
        connection.supportedVersions = quicVersions
        connection.maxDatagramSize = maxDatagramSize
        connection.pathMTUDiscovery = pathMTUDiscovery
        connection.congestionAlgorithm = congestionControl.engine
        connection.maxIncomingBidirectionalStreams = UInt64(max(0, maxIncomingBidirectionalStreams))
        connection.maxIncomingUnidirectionalStreams = UInt64(max(0, maxIncomingUnidirectionalStreams))
        connection.maxDatagramFrameSize = maxDatagramFrameSize.map { UInt64(max(0, $0)) }
        connection.disableActiveMigration = disableActiveMigration
        connection.qlog = qlogDirectory.map { .directory($0) }
        connection.spinBit = spinBit
        connection.preferredAddresses = preferredAddresses
        if let quicLB {
            connection.connectionIDLength = quicLB.connectionIDLength
            connection.connectionIDGenerator = quicLB.server.generator(worker: workerID, random: connection.random)
        } else if let workerID {
            connection.useWorkerConnectionIDs(workerID)
        }
        if let statelessResetKey { connection.statelessResetKey = statelessResetKey }
        var configuration = QUICEndpoint.Configuration(connection: connection)
        configuration.retryPolicy = retryPolicy.engine
        configuration.issueNewTokens = issueNewTokens
        if let tokenSecret { configuration.tokenSecret = tokenSecret }
        configuration.maxConnections = maxConnections
        configureQUIC(&configuration)
        return configuration
    }
}

extension Listener.Options {
    /// The DTLS endpoint configuration these options describe, for `tls`.
    /// - Throws: `.configuration` when the datagram size is under 256 bytes.
    func dtlsEndpointConfiguration(tls: TLSConfiguration) throws(QuiverError) -> DTLSEndpoint.Configuration {
        guard dtlsMaxDatagramSize >= 256 else { throw QuiverError(.configuration, "dtlsMaxDatagramSize must be at least 256 bytes") }
        var configuration = DTLSEndpoint.Configuration(tls: tls)
        if let dtlsCookieSecret { configuration.gate = DTLSCookieGate(secret: dtlsCookieSecret) }
        configuration.maxPendingConnections = maxPendingDTLSHandshakes
        configuration.maxConnections = maxConnections
        configuration.handshakeTimeout = handshakeTimeout
        configuration.mtu = dtlsMaxDatagramSize
        configuration.workerID = workerID
        return configuration
    }
}

extension QUICConfiguration {
    /// Connection IDs that carry `worker` (bytes 1–2), for the steering program of a
    /// `UDPSocket.steeringGroup`.
    mutating func useWorkerConnectionIDs(_ worker: UInt16) {
        let ids = WorkerConnectionIDs(workerID: worker)
        connectionIDLength = ids.length
        connectionIDGenerator = ids.generator(random: random)
    }
}

extension QUICEndpoint.Configuration {
    /// The configuration of event loop `loop` of `loops` (``Listener/Options/eventLoops``):
    /// its connection IDs name the loop, and the flood thresholds — the pending-handshake cap,
    /// the Retry threshold — are divided among the loops (``maxConnections`` is one count
    /// shared by all, ``connectionBudget``). The secrets — tokens, stateless resets, session
    /// tickets — stay shared, so a token or ticket from one loop is good at every other.
    /// Behind a QUIC-LB balancer (`quicLB`) the IDs carry the server ID, then the loop. The
    /// loops' worker ids start at `firstWorkerID` (``Listener/Options/workerID``).
    mutating func divide(among loops: Int, loop: Int, firstWorkerID: UInt16, quicLB: Listener.QUICLB?) {
        let worker = firstWorkerID + UInt16(loop)
        if let quicLB {
            connection.connectionIDGenerator = quicLB.server.generator(worker: worker, random: connection.random)
        } else {
            connection.useWorkerConnectionIDs(worker)
        }
        maxPendingConnections = Listener.share(of: maxPendingConnections, loops: loops)
        if case .whenPendingExceeds(let count) = retryPolicy { retryPolicy = .whenPendingExceeds(Listener.share(of: count, loops: loops)) }
    }
}

/// The QUIC engine's defaults, which the QUIC options of ``Listener/Options`` and
/// ``ClientOptions`` start from: each default is set in one place, QuiverQUIC. (A template
/// configuration; it never configures a connection.)
enum QUICDefaults {
    static let endpoint = QUICEndpoint.Configuration(connection: QUICConfiguration(tls: .client(verifier: CertificateVerifier(trustRoots: []))))
    static let connection = endpoint.connection
}

extension SCTPEndpoint.Configuration {
    /// The SCTP endpoint of a listener or client of `transport` (one of the SCTP ones) on SCTP
    /// `port`. DTLS over SCTP authenticates DATA with SCTP-AUTH (RFC 6083 §4.4).
    static func quiver(_ transport: Transport, port: UInt16, maxAssociations: Int = 4096, sendBufferSize: Int) -> Self {
        var configuration = SCTPEndpoint.Configuration(port: port)
        configuration.maxAssociations = maxAssociations
        configuration.association.sendBufferSize = sendBufferSize
        if transport == .dtlsOverSCTP { configuration.association.authentication = SCTPAuthentication(chunks: [SCTPChunkType.data]) }
        if transport == .sctpOverDTLS { configuration.association.maxPacketSize = SCTPOverDTLS.defaultMaxPacketSize }
        return configuration
    }
}

extension TLSConfiguration {
    /// The DTLS settings of DTLS over SCTP: DTLS 1.2, the only version ``DTLSOverSCTP`` runs.
    var dtlsOverSCTP: TLSConfiguration {
        var configuration = self
        configuration.maximumVersion = .tls12
        return configuration
    }
}
