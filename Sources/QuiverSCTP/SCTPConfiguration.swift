public import QuiverCore

/// Settings of SCTP associations (RFC 9260 §16's protocol parameters and the buffers).
public struct SCTPConfiguration: Sendable {
    /// Streams we ask to send on (the INIT's Number of Outbound Streams).
    public var outboundStreams: UInt16 = 16
    /// Streams we accept from the peer (the INIT's Number of Inbound Streams).
    public var inboundStreams: UInt16 = 1024
    /// Bytes of received user data held for the application: reassembly, messages out of
    /// order, messages not yet read. The advertised receiver window is what is left of it.
    public var receiveBufferSize = 256 * 1024
    /// Bytes of user data queued or unacknowledged before ``SCTPAssociation/send(_:stream:ppid:unordered:)``
    /// refuses more.
    public var sendBufferSize = 1024 * 1024
    /// Largest SCTP packet (common header included) sent: the datagram payload when SCTP runs
    /// over UDP or DTLS. 1 200 fits any IPv6 path with room for a UDP and a DTLS header.
    public var maxPacketSize = 1200
    /// Largest user message sent or reassembled.
    public var maxMessageSize = 256 * 1024
    /// RTO.Initial, RTO.Min, RTO.Max (RFC 9260 §16: 1 s, 1 s, 60 s).
    public var rtoInitial: Duration = .seconds(1)
    public var rtoMin: Duration = .seconds(1)
    public var rtoMax: Duration = .seconds(60)
    /// Max.Init.Retransmits (8): INIT or COOKIE ECHO timeouts before the attempt fails.
    public var maxInitRetransmits = 8
    /// Association.Max.Retrans (10): consecutive timeouts before the peer counts as unreachable.
    public var maxRetransmits = 10
    /// HB.interval (30 s) after which an idle association sends a HEARTBEAT; `nil` for none.
    public var heartbeatInterval: Duration? = .seconds(30)
    /// How long a SACK may be delayed (at most 500 ms; 200 ms as RFC 9260 §6.2 recommends).
    public var delayedAckTimeout: Duration = .milliseconds(200)
    /// Whether to offer stream reconfiguration (RFC 6525): RE-CONFIG in Supported Extensions,
    /// answering the peer's requests, and ``SCTPAssociation/resetOutgoingStreams(_:now:)``.
    public var streamReset = true
    /// Whether to offer partial reliability (PR-SCTP, RFC 3758): the Forward-TSN-Supported
    /// parameter and FORWARD TSN in Supported Extensions. When both sides offer it, messages
    /// sent with an ``SCTPSendPolicy`` that allows it may be abandoned, and the peer's
    /// FORWARD TSN chunks are followed.
    public var partialReliability = true
    /// Whether to offer user message interleaving (I-DATA, RFC 8260): when both sides list
    /// I-DATA, messages of different streams interleave, so a large message on one stream
    /// does not hold up the others. Messages are still delivered whole. Not offered when
    /// ``authentication`` requires DATA authenticated and does not list I-DATA.
    public var messageInterleaving = true
    /// SCTP-AUTH (RFC 4895): offered when set, and used when the peer offers it too. `nil`
    /// (the default): not offered.
    public var authentication: SCTPAuthentication?
    /// Where verification tags, initial TSNs and heartbeat nonces come from.
    public var random: RandomSource = .system

    public init() {}

    /// The user data of one DATA chunk in a full packet.
    var maxChunkPayload: Int { maxPacketSize - SCTPPacket.headerSize - SCTPDataChunk.headerSize }
}
