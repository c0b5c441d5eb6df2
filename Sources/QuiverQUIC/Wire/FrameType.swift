/// A QUIC frame type (RFC 9000 §12.4 Table 3, RFC 9221 §4), as an open wire enum: unknown
/// values can be represented (and are rejected by the decoder with FRAME_ENCODING_ERROR).
///
/// Some types carry flags in their low bits: ACK (ECN counts), STREAM (OFF/LEN/FIN), MAX_STREAMS
/// and STREAMS_BLOCKED (direction), CONNECTION_CLOSE (transport/application) and DATAGRAM (LEN).
@_spi(Wire) public struct FrameType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The frame type value, as encoded (a variable-length integer, always in its shortest form).
    public var rawValue: UInt64

    /// Wraps a frame type value.
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// PADDING (0x00, RFC 9000 §19.1).
    public static let padding = FrameType(rawValue: 0x00)
    /// PING (0x01, RFC 9000 §19.2).
    public static let ping = FrameType(rawValue: 0x01)
    /// ACK without ECN counts (0x02, RFC 9000 §19.3).
    public static let ack = FrameType(rawValue: 0x02)
    /// ACK with ECN counts (0x03, RFC 9000 §19.3.2).
    public static let ackECN = FrameType(rawValue: 0x03)
    /// RESET_STREAM (0x04, RFC 9000 §19.4).
    public static let resetStream = FrameType(rawValue: 0x04)
    /// STOP_SENDING (0x05, RFC 9000 §19.5).
    public static let stopSending = FrameType(rawValue: 0x05)
    /// CRYPTO (0x06, RFC 9000 §19.6).
    public static let crypto = FrameType(rawValue: 0x06)
    /// NEW_TOKEN (0x07, RFC 9000 §19.7).
    public static let newToken = FrameType(rawValue: 0x07)
    /// STREAM with no flags (0x08, RFC 9000 §19.8); STREAM frames use 0x08...0x0f, see ``isStream``.
    public static let stream = FrameType(rawValue: 0x08)
    /// MAX_DATA (0x10, RFC 9000 §19.9).
    public static let maxData = FrameType(rawValue: 0x10)
    /// MAX_STREAM_DATA (0x11, RFC 9000 §19.10).
    public static let maxStreamData = FrameType(rawValue: 0x11)
    /// MAX_STREAMS for bidirectional streams (0x12, RFC 9000 §19.11).
    public static let maxStreamsBidi = FrameType(rawValue: 0x12)
    /// MAX_STREAMS for unidirectional streams (0x13, RFC 9000 §19.11).
    public static let maxStreamsUni = FrameType(rawValue: 0x13)
    /// DATA_BLOCKED (0x14, RFC 9000 §19.12).
    public static let dataBlocked = FrameType(rawValue: 0x14)
    /// STREAM_DATA_BLOCKED (0x15, RFC 9000 §19.13).
    public static let streamDataBlocked = FrameType(rawValue: 0x15)
    /// STREAMS_BLOCKED for bidirectional streams (0x16, RFC 9000 §19.14).
    public static let streamsBlockedBidi = FrameType(rawValue: 0x16)
    /// STREAMS_BLOCKED for unidirectional streams (0x17, RFC 9000 §19.14).
    public static let streamsBlockedUni = FrameType(rawValue: 0x17)
    /// NEW_CONNECTION_ID (0x18, RFC 9000 §19.15).
    public static let newConnectionID = FrameType(rawValue: 0x18)
    /// RETIRE_CONNECTION_ID (0x19, RFC 9000 §19.16).
    public static let retireConnectionID = FrameType(rawValue: 0x19)
    /// PATH_CHALLENGE (0x1a, RFC 9000 §19.17).
    public static let pathChallenge = FrameType(rawValue: 0x1a)
    /// PATH_RESPONSE (0x1b, RFC 9000 §19.18).
    public static let pathResponse = FrameType(rawValue: 0x1b)
    /// CONNECTION_CLOSE signalling a transport error (0x1c, RFC 9000 §19.19).
    public static let connectionCloseTransport = FrameType(rawValue: 0x1c)
    /// CONNECTION_CLOSE signalling an application error (0x1d, RFC 9000 §19.19).
    public static let connectionCloseApplication = FrameType(rawValue: 0x1d)
    /// HANDSHAKE_DONE (0x1e, RFC 9000 §19.20).
    public static let handshakeDone = FrameType(rawValue: 0x1e)
    /// DATAGRAM without a Length field, extending to the end of the packet (0x30, RFC 9221 §4).
    public static let datagram = FrameType(rawValue: 0x30)
    /// DATAGRAM with a Length field (0x31, RFC 9221 §4).
    public static let datagramWithLength = FrameType(rawValue: 0x31)

    /// The OFF bit of a STREAM frame type: an Offset field is present.
    public static let streamOffsetBit: UInt64 = 0x04
    /// The LEN bit of a STREAM frame type: a Length field is present.
    public static let streamLengthBit: UInt64 = 0x02
    /// The FIN bit of a STREAM frame type: the frame ends the stream.
    public static let streamFinBit: UInt64 = 0x01

    /// The STREAM frame type with the given flags (RFC 9000 §19.8).
    public static func stream(hasOffset: Bool, hasLength: Bool, fin: Bool) -> FrameType {
        var raw: UInt64 = 0x08
        if hasOffset { raw |= streamOffsetBit }
        if hasLength { raw |= streamLengthBit }
        if fin { raw |= streamFinBit }
        return FrameType(rawValue: raw)
    }

    /// Whether this is one of the STREAM types 0x08...0x0f.
    public var isStream: Bool { rawValue & ~0x07 == 0x08 }

    /// Whether this type is defined by RFC 9000 or RFC 9221 (and so can be decoded).
    public var isKnown: Bool { rawValue <= 0x1e || rawValue == 0x30 || rawValue == 0x31 }

    /// Whether a frame of this type may appear in a packet of type `packetType`
    /// (RFC 9000 §12.4 Table 3, §12.5; RFC 9221 §4 for DATAGRAM).
    ///
    /// PADDING, PING and CRYPTO go everywhere except CRYPTO in 0-RTT; ACK goes everywhere except
    /// 0-RTT; only the transport CONNECTION_CLOSE (0x1c) may appear in Initial and Handshake
    /// packets; NEW_TOKEN, PATH_RESPONSE and HANDSHAKE_DONE only in 1-RTT; DATAGRAM and the other
    /// application frames only in 0-RTT and 1-RTT. Retry and Version Negotiation packets carry no
    /// frames, and unknown types are allowed nowhere.
    public func isAllowed(in packetType: PacketType) -> Bool {
        let mask = Self.allowedPackets(rawValue)
        switch packetType {
        case .initial: return mask & Self.initialBit != 0
        case .handshake: return mask & Self.handshakeBit != 0
        case .zeroRTT: return mask & Self.zeroRTTBit != 0
        case .oneRTT: return mask & Self.oneRTTBit != 0
        case .retry, .versionNegotiation: return false
        }
    }

    static let initialBit: UInt8 = 0b1000
    static let handshakeBit: UInt8 = 0b0100
    static let zeroRTTBit: UInt8 = 0b0010
    static let oneRTTBit: UInt8 = 0b0001

    /// The "Pkts" column of Table 3 as a bit set (I, H, 0, 1).
    static func allowedPackets(_ raw: UInt64) -> UInt8 {
        switch raw {
        case 0x00, 0x01: return 0b1111  // PADDING, PING: IH01
        case 0x02, 0x03, 0x06: return 0b1101  // ACK, CRYPTO: IH_1
        case 0x07, 0x1b, 0x1e: return 0b0001  // NEW_TOKEN, PATH_RESPONSE, HANDSHAKE_DONE: ___1
        case 0x1c: return 0b1111  // CONNECTION_CLOSE (transport): ih01
        case 0x04, 0x05, 0x08...0x1a, 0x1d: return 0b0011  // __01
        case 0x30, 0x31: return 0b0011  // DATAGRAM (RFC 9221 §4)
        default: return 0
        }
    }

    /// The RFC name of the frame type, such as `STREAM` or `ACK`.
    public var name: String {
        switch rawValue {
        case 0x00: return "PADDING"
        case 0x01: return "PING"
        case 0x02, 0x03: return "ACK"
        case 0x04: return "RESET_STREAM"
        case 0x05: return "STOP_SENDING"
        case 0x06: return "CRYPTO"
        case 0x07: return "NEW_TOKEN"
        case 0x08...0x0f: return "STREAM"
        case 0x10: return "MAX_DATA"
        case 0x11: return "MAX_STREAM_DATA"
        case 0x12, 0x13: return "MAX_STREAMS"
        case 0x14: return "DATA_BLOCKED"
        case 0x15: return "STREAM_DATA_BLOCKED"
        case 0x16, 0x17: return "STREAMS_BLOCKED"
        case 0x18: return "NEW_CONNECTION_ID"
        case 0x19: return "RETIRE_CONNECTION_ID"
        case 0x1a: return "PATH_CHALLENGE"
        case 0x1b: return "PATH_RESPONSE"
        case 0x1c, 0x1d: return "CONNECTION_CLOSE"
        case 0x1e: return "HANDSHAKE_DONE"
        case 0x30, 0x31: return "DATAGRAM"
        default: return "UNKNOWN"
        }
    }

    public var description: String { "\(name)(0x\(String(rawValue, radix: 16)))" }
}
