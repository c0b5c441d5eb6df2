import QuiverCore

/// The per-version constants of packet protection (RFC 9001 §5.2, §5.8; RFC 9369 §3).
extension QUICVersion {
    /// The salt for Initial secrets.
    var initialSalt: [UInt8] {
        switch self {
        case .v2: return [0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb, 0xf9, 0xbd, 0x2e, 0xd9]
        default: return [0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a]
        }
    }

    /// The HKDF label prefix for packet keys: `"quic "` (v1) or `"quicv2 "` (v2).
    var labelPrefix: String { self == .v2 ? "quicv2 " : "quic " }

    /// Key and nonce of the Retry integrity tag.
    var retryIntegrityKey: [UInt8] {
        switch self {
        case .v2: return [0x8f, 0xb4, 0xb0, 0x1b, 0x56, 0xac, 0x48, 0xe2, 0x60, 0xfb, 0xcb, 0xce, 0xad, 0x7c, 0xcc, 0x92]
        default: return [0xbe, 0x0c, 0x69, 0x0b, 0x9f, 0x66, 0x57, 0x5a, 0x1d, 0x76, 0x6b, 0x54, 0xe3, 0x68, 0xc8, 0x4e]
        }
    }

    var retryIntegrityNonce: [UInt8] {
        switch self {
        case .v2: return [0xd8, 0x69, 0x69, 0xbc, 0x2d, 0x7c, 0x6d, 0x99, 0x90, 0xef, 0xb0, 0x4a]
        default: return [0x46, 0x15, 0x99, 0xd3, 0x5d, 0x63, 0x2b, 0xf2, 0x23, 0x98, 0x25, 0xbb]
        }
    }

    /// The 2-bit long-header type code for `type` (RFC 9000 §17.2; RFC 9369 §3.2 permutes them).
    func longHeaderTypeBits(_ type: PacketType) -> UInt8? {
        let v1: UInt8
        switch type {
        case .initial: v1 = 0
        case .zeroRTT: v1 = 1
        case .handshake: v1 = 2
        case .retry: v1 = 3
        default: return nil
        }
        return self == .v2 ? (v1 + 1) & 3 : v1
    }

    /// The packet type for a 2-bit long-header type code.
    func packetType(longHeaderBits bits: UInt8) -> PacketType {
        let v1 = self == .v2 ? (bits + 3) & 3 : bits & 3
        switch v1 {
        case 0: return .initial
        case 1: return .zeroRTT
        case 2: return .handshake
        default: return .retry
        }
    }
}
