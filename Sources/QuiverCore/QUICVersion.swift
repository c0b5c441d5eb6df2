/// A QUIC version (RFC 8999 §5.1). Vocabulary shared by the engine and the listener API (so
/// `import Quiver` brings it); the per-version constants of packet protection are the engine's
/// (`QUICVersion+PacketProtection.swift` in QuiverQUIC).
public struct QUICVersion: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// QUIC version 1 (RFC 9000).
    public static let v1 = QUICVersion(rawValue: 0x0000_0001)
    /// QUIC version 2 (RFC 9369).
    public static let v2 = QUICVersion(rawValue: 0x6b33_43cf)
    /// The value marking a Version Negotiation packet.
    public static let negotiation = QUICVersion(rawValue: 0)

    /// Versions Quiver implements, in preference order.
    public static let supported: [QUICVersion] = [.v1, .v2]

    /// Whether Quiver implements this version.
    public var isSupported: Bool { self == .v1 || self == .v2 }

    /// Reserved versions `0x?a?a?a?a` used to exercise version negotiation (RFC 9000 §15).
    public var isReserved: Bool { rawValue & 0x0f0f_0f0f == 0x0a0a_0a0a }

    public var description: String {
        switch self {
        case .v1: return "QUICv1"
        case .v2: return "QUICv2"
        default: return "0x" + String(rawValue, radix: 16)
        }
    }
}
