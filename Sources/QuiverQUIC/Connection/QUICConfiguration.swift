public import QuiverCore
public import QuiverTLS

/// The settings of a QUIC connection: its TLS configuration, the transport parameters it
/// announces (RFC 9000 §18.2), and the local behaviour of recovery, congestion control and
/// key updates. One value can configure many connections.
public struct QUICConfiguration: Sendable {
    /// The TLS settings (certificates, verifier, ALPN — required by QUIC, RFC 9001 §8.1 —,
    /// tickets, 0-RTT limits). Under QUIC a server accepting 0-RTT sends max_early_data_size
    /// 0xffffffff (RFC 9001 §4.6.1) whenever ``TLSConfiguration/maxEarlyDataSize`` is non-zero.
    public var tls: TLSConfiguration
    /// The version of the client's first Initial packets (a client resuming with a ticket of
    /// another supported version starts in the ticket's version, RFC 9369 §5).
    public var version: QUICVersion = .v1
    /// The versions this endpoint accepts, most preferred first. A server switches a client
    /// to its most preferred version the client also supports by compatible version
    /// negotiation (RFC 9368 §2.3; QUIC v1 and v2 are compatible, RFC 9369 §4).
    public var supportedVersions: [QUICVersion] = [.v1, .v2]
    /// The idle timeout we announce (max_idle_timeout); the effective one is the smaller of
    /// both endpoints', at least three PTOs (RFC 9000 §10.1). `.zero` disables ours.
    public var idleTimeout: Duration = .seconds(30)
    /// Connection-level receive window announced at first (initial_max_data).
    public var initialMaxData: UInt64 = 1 << 20
    /// Per-stream receive window announced at first (initial_max_stream_data_*).
    public var initialMaxStreamData: UInt64 = 256 << 10
    /// How many bidirectional streams the peer may have open at once (initial_max_streams_bidi).
    public var maxIncomingBidirectionalStreams: UInt64 = 100
    /// How many unidirectional streams the peer may have open at once (initial_max_streams_uni).
    public var maxIncomingUnidirectionalStreams: UInt64 = 100
    /// Window auto-tuning limits.
    public var streamWindows = StreamWindowLimits()
    /// The largest DATAGRAM frame we accept (max_datagram_frame_size, RFC 9221 §3); `nil`
    /// disables DATAGRAM frames.
    public var maxDatagramFrameSize: UInt64?
    /// How many connection IDs of ours the peer may hold (active_connection_id_limit, ≥ 2).
    public var activeConnectionIDLimit: UInt64 = 4
    /// The length of the connection IDs we issue (0–20; 8 by default). Used when
    /// ``connectionIDGenerator`` is nil.
    public var connectionIDLength = 8
    /// Makes the connection IDs we issue; all must have the same length. `nil`: random bytes
    /// of ``connectionIDLength``. An endpoint can embed a worker id here (QUIC-LB style).
    public var connectionIDGenerator: (@Sendable () -> ConnectionID)?
    /// The largest UDP payload we send (at least 1200, RFC 9000 §14), capped by the peer's
    /// max_udp_payload_size and by 16 383 (a 2-octet packet Length); also the
    /// max_udp_payload_size we announce. `nil` (the default): 16 383 with
    /// ``pathMTUDiscovery``, 1452 without.
    ///
    /// With ``pathMTUDiscovery`` this is only the ceiling of the search: a connection starts
    /// at 1200 bytes and grows to sizes a probe proved — 1452 on an Ethernet path, 8952 over
    /// jumbo frames, the ceiling over loopback. Without it, this size is sent from the start,
    /// so it must be what the path carries (1452 fits a 1500-byte MTU under IPv6 and IPv4).
    public var maxDatagramSize: Int?
    /// Datagram packetization layer path MTU discovery (RFC 9000 §14.3, RFC 8899): once the
    /// handshake is confirmed and the connection has data to send, PING+PADDING probes try the
    /// common sizes up to ``maxDatagramSize`` (1452, 8952, then the ceiling itself) and, on a
    /// path narrower than Ethernet's, binary-search below 1452. A size counts as failed after
    /// 3 lost probes, and lost probes are not taken as congestion. The search starts again on
    /// a new path. Sockets must not fragment (Quiver's UDP sockets set `IP_PMTUDISC_PROBE`), or
    /// a probe proves nothing.
    public var pathMTUDiscovery = true
    /// Server: the addresses announced in the preferred_address transport parameter (RFC 9000
    /// §9.6) — at most one IPv4 and one IPv6 address (the first of each family counts), each
    /// with a specific IP address and port. The server must receive there too and tell the
    /// connection which address a datagram came to (``QUICConnection/receive(_:from:to:ecn:at:)``);
    /// `Listener.Options.preferredAddresses` binds them. A client that follows sends there once
    /// the handshake is confirmed, and the server moves there once it checked the path
    /// (§9.6.2). Empty (the default): none announced. Not offered with zero-length connection
    /// IDs (§18.2).
    public var preferredAddresses: [SocketAddress] = []
    /// Client: whether to move to the server's preferred address of the current address
    /// family once the handshake is confirmed (RFC 9000 §9.6.1 says a client SHOULD). The move
    /// is checked with PATH_CHALLENGE; without an answer within three PTOs the connection goes
    /// back to the original address.
    public var followsPreferredAddress = true

    /// The datagram size a new path starts with.
    var initialDatagramSize: Int { pathMTUDiscovery ? 1200 : datagramSizeMaximum }
    /// ``maxDatagramSize``, or its default for the discovery setting, at least 1200.
    var datagramSizeMaximum: Int { max(1200, maxDatagramSize ?? (pathMTUDiscovery ? 16_383 : 1452)) }
    /// The congestion controller.
    public var congestionAlgorithm: CongestionAlgorithm = .cubic
    /// Whether sending is paced (RFC 9002 §7.7).
    public var pacing = true
    /// Explicit Congestion Notification (RFC 9000 §13.4, RFC 9002 §7.1): mark packets ECT(0),
    /// validate each path from the peer's ACK frame counts (stopping where the counts go
    /// missing or disagree, or the marked packets are lost) and take ECN-CE counts as
    /// congestion. `false` sends unmarked packets; the marks received are reported in ACK
    /// frames either way (§13.4.1). Marks reach the wire only through an attachment that
    /// carries them (a UDP socket with ECN support, a datagram pair).
    public var ecn = true
    /// The ACK delay we allow ourselves (max_ack_delay).
    public var maxAckDelay: Duration = .milliseconds(25)
    /// ack_delay_exponent.
    public var ackDelayExponent: UInt64 = 3
    /// Announce disable_active_migration.
    public var disableActiveMigration = false
    /// Initiate a key update (RFC 9001 §6) after this many packets in one key phase. `nil`:
    /// only as needed to stay below the AEAD confidentiality limit (§6.6).
    public var keyUpdateInterval: UInt64?
    /// Send a PING after this much time without sending an ack-eliciting packet, to keep an
    /// idle connection (and NAT bindings) alive; `nil` (the default) lets it idle out. Use a
    /// value below half the idle timeout.
    public var keepAliveInterval: Duration?
    /// The RTT assumed before the first sample (RFC 9002 §6.2.2).
    public var initialRTT: Duration = RTTEstimator.defaultInitialRTT
    /// The key from which stateless reset tokens are derived (RFC 9000 §10.3.2); share it
    /// between processes of one server so that any of them can reset a connection.
    public var statelessResetKey: [UInt8]
    /// Where connection IDs and PATH_CHALLENGE data come from.
    public var random: RandomSource = .system
    /// Whether the latency spin bit may be used (RFC 9000 §17.4). Even when allowed it is off
    /// on a random one in eight paths, as §17.4 requires of every endpoint (at least one in
    /// sixteen); `false` turns it off for every connection made with this configuration. Off,
    /// 1-RTT packets carry a random value per connection ID.
    public var spinBit = true
    /// Where each connection writes its qlog trace; `nil` (the default) logs nothing and costs
    /// a `nil` check per event site. ``QLogDestination/environment`` reads `QLOGDIR`.
    public var qlog: QLogDestination?

    /// A configuration with default transport settings and a random stateless-reset key.
    public init(tls: TLSConfiguration) {
        self.tls = tls
        self.random = tls.random
        self.statelessResetKey = tls.random.bytes(32)
    }

    /// The transport parameters this configuration announces, before connection IDs.
    var baseTransportParameters: TransportParameters {
        var p = TransportParameters()
        p.maxIdleTimeout = UInt64(max(idleTimeout, .zero).nanosecondsClamped / 1_000_000)
        p.maxUDPPayloadSize = UInt64(datagramSizeMaximum)
        p.initialMaxData = initialMaxData
        p.initialMaxStreamDataBidiLocal = initialMaxStreamData
        p.initialMaxStreamDataBidiRemote = initialMaxStreamData
        p.initialMaxStreamDataUni = initialMaxStreamData
        p.initialMaxStreamsBidi = maxIncomingBidirectionalStreams
        p.initialMaxStreamsUni = maxIncomingUnidirectionalStreams
        p.ackDelayExponent = ackDelayExponent
        p.maxAckDelay = UInt64(maxAckDelay.nanosecondsClamped / 1_000_000)
        p.disableActiveMigration = disableActiveMigration
        p.activeConnectionIDLimit = max(activeConnectionIDLimit, 2)
        p.maxDatagramFrameSize = maxDatagramFrameSize
        return p
    }

    /// A fresh connection ID of ours.
    func makeConnectionID() -> ConnectionID {
        if let generator = connectionIDGenerator { return generator() }
        return ConnectionID(unchecked: random.bytes(min(max(connectionIDLength, 0), ConnectionID.maxLength)))
    }

    /// The length of the connection IDs we issue.
    public var localConnectionIDLength: Int {
        connectionIDGenerator.map { $0().count } ?? min(max(connectionIDLength, 0), ConnectionID.maxLength)
    }
}

/// One ``QUICConfiguration`` shared by reference: an endpoint's connections all read the same
/// copy instead of carrying half a kilobyte each.
final class SharedConfiguration: Sendable {
    let value: QUICConfiguration
    init(_ value: QUICConfiguration) { self.value = value }
}
