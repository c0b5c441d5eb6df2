/// A packet number space (RFC 9000 §12.3): the context in which packets are numbered,
/// acknowledged and declared lost.
///
/// Initial packets use the Initial space, Handshake packets the Handshake space, and 0-RTT and
/// 1-RTT packets share the Application Data space. Loss detection runs separately per space
/// (RFC 9002 §6); RTT estimation and congestion control are per path.
public enum PacketNumberSpace: Int, CaseIterable, Sendable, CustomStringConvertible {
    /// The space of Initial packets.
    case initial
    /// The space of Handshake packets.
    case handshake
    /// The space of 0-RTT and 1-RTT packets.
    case applicationData

    /// The space in which packets of `type` are numbered, or `nil` for Retry and Version
    /// Negotiation packets, which carry no packet number (RFC 9000 §12.3, §17.2.1, §17.2.5).
    @_spi(Wire) public init?(_ type: PacketType) {
        switch type {
        case .initial: self = .initial
        case .handshake: self = .handshake
        case .zeroRTT, .oneRTT: self = .applicationData
        case .retry, .versionNegotiation: return nil
        }
    }

    /// The space's name as RFC 9002 writes it.
    public var description: String {
        switch self {
        case .initial: "Initial"
        case .handshake: "Handshake"
        case .applicationData: "ApplicationData"
        }
    }
}
