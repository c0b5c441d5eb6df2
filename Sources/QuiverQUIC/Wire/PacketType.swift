/// The kinds of QUIC packets (RFC 9000 §17), as far as frame permissions and packet-number
/// spaces are concerned.
@_spi(Wire) public enum PacketType: Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case initial
    case zeroRTT
    case handshake
    case retry
    case oneRTT
    case versionNegotiation

    public var description: String {
        switch self {
        case .initial: return "Initial"
        case .zeroRTT: return "0-RTT"
        case .handshake: return "Handshake"
        case .retry: return "Retry"
        case .oneRTT: return "1-RTT"
        case .versionNegotiation: return "VersionNegotiation"
        }
    }
}
