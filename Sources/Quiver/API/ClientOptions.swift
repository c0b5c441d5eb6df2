// The engine's configuration type appears only in the `@_spi(QUICEngine)` member: ordinary
// users of the client API neither see nor import it.
@_spiOnly public import QuiverQUIC
public import Logging
import QuiverTLS

/// Settings of a client ``Connection``.
public struct ClientOptions: Sendable {
    /// Who runs the I/O (default: a background thread).
    public var driver: DriverMode = .threadAssisted
    /// Whether ``Connection/connect(_:to:port:tls:serverName:options:)-447sq`` returns only after
    /// the handshake (default), or at once (then use ``Connection/waitForHandshake()-81yan``).
    public var waitForHandshake = true
    /// What the connection does with streams the server opens (QUIC).
    public var incomingStreams: IncomingStreamPolicy = .accept
    /// Bytes buffered per stream for sending before writes would block.
    public var sendBufferLimit = 1 << 20
    /// The logger behind ``Connection/logger`` (which adds the connection's metadata). The
    /// default logs nothing.
    public var logger = Logger(label: "quiver.connection", factory: { _ in SwiftLogNoOpLogHandler() })
    /// TLS and DTLS: how long the handshake may take.
    public var handshakeTimeout: Duration = .seconds(10)
    /// DTLS: the largest datagram of a handshake flight (its messages are fragmented to fit;
    /// default 1200). Application messages are one record each, whatever their size.
    public var dtlsMaxDatagramSize = 1200
    /// QUIC: a ticket from an earlier connection to the same server
    /// (``Connection/QUIC/resumptionTicket``): the handshake resumes the session (no certificate).
    public var resumption: ResumptionTicket?
    /// QUIC, with ``resumption``: send what is written before the handshake completes as 0-RTT
    /// data (set ``waitForHandshake`` to `false` to write at once). 0-RTT data can be replayed
    /// by an attacker: use it only for idempotent requests.
    public var earlyData = false
    /// QUIC: the versions, most preferred first (default: v1, v2). The first Initial is sent
    /// in the first of them — a resumed connection starts in its ticket's version instead
    /// (RFC 9369 §5) — and the others are offered for compatible version negotiation
    /// (RFC 9368), by which the server may move the connection to one of them.
    public var quicVersions: [QUICVersion] = [QUICDefaults.connection.version]
        + QUICDefaults.connection.supportedVersions.filter { $0 != QUICDefaults.connection.version }
    /// QUIC: the largest DATAGRAM frame accepted from the server (max_datagram_frame_size,
    /// RFC 9221 §3); `nil` (the default) does not offer DATAGRAM frames. Sending them needs the
    /// server's offer (``Listener/Options/maxDatagramFrameSize``), not this.
    public var maxDatagramFrameSize: Int?
    /// QUIC: write a qlog trace of the connection into this directory, which must exist
    /// (JSON-SEQ, `<original destination connection ID>_client.sqlog`,
    /// draft-ietf-quic-qlog-main-schema and -quic-events); `nil` (the default) logs nothing.
    public var qlogDirectory: String?
    /// QUIC: whether the latency spin bit may be used (RFC 9000 §17.4; default on). Even when
    /// allowed, a random one in eight paths goes without, as the RFC requires.
    public var spinBit = QUICDefaults.connection.spinBit
    /// QUIC: send a PING after this long without sending anything the server must
    /// acknowledge; `nil` (the default) sends none. Keeps NAT bindings alive, and lets a
    /// client that only receives learn at once that its server is gone: behind a load
    /// balancer its next packet reaches another host of the service, which answers with a
    /// stateless reset (``CloseInfo/Origin/transport``, reason "stateless reset"). Use a
    /// value well below the idle timeout.
    public var keepAliveInterval: Duration?
    /// QUIC: move to the server's preferred address (RFC 9000 §9.6) of the address family in
    /// use once the handshake is confirmed, when the server offers one (default on, as the
    /// RFC says a client should). The new path is checked with PATH_CHALLENGE; without an
    /// answer the connection goes back to the server's first address.
    /// ``Connection/QUIC/preferredAddressMigrations`` tells whether it moved.
    public var followsPreferredAddress = QUICDefaults.connection.followsPreferredAddress

    /// QUIC, for tests and benchmarks: adjusts the full engine configuration after the options
    /// above were applied. Not API: the engine's types change with the engine.
    @_spi(QUICEngine) public var configureQUIC: @Sendable (inout QUICConfiguration) -> Void = { _ in }

    /// SCTP: the server's SCTP port (and ours). 5000, as ``Listener/Options/sctpPort``.
    public var sctpPort: UInt16 = 5000

    public init() {}
}

extension ClientOptions {
    /// The QUIC connection configuration these options describe, for `tls`.
    func quicConfiguration(tls: TLSConfiguration) -> QUICConfiguration {
        var configuration = QUICConfiguration(tls: tls)
        if let first = quicVersions.first {
            configuration.version = first
            configuration.supportedVersions = quicVersions
        }
        configuration.maxDatagramFrameSize = maxDatagramFrameSize.map { UInt64(max(0, $0)) }
        configuration.qlog = qlogDirectory.map { .directory($0) }
        configuration.spinBit = spinBit
        configuration.keepAliveInterval = keepAliveInterval
        configuration.followsPreferredAddress = followsPreferredAddress
        configureQUIC(&configuration)
        return configuration
    }
}
