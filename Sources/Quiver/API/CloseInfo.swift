/// How a connection ended, for TLS and QUIC alike.
public struct CloseInfo: Sendable, Hashable, CustomStringConvertible {
    /// Who or what ended the connection.
    public enum Origin: Sendable, Hashable {
        /// This side closed it (``Connection/shutdown(_:)-rjtt`` or a protocol error we detected).
        case local
        /// The peer closed it (QUIC CONNECTION_CLOSE, TLS close_notify or a fatal alert).
        case peer
        /// Nothing was heard for the idle timeout (QUIC) or the handshake timed out.
        case timeout
        /// The transport went away: a QUIC stateless reset or Version Negotiation (the
        /// ``CloseInfo/reason`` says which), a TCP reset or end of stream without close_notify
        /// (truncation).
        case transport
        /// The peer could not be reached: QUIC's equivalent of a refused TCP connection (an
        /// ICMP port or host unreachable before the server answered); ``CloseInfo/reason``
        /// says which.
        case unreachable
    }

    /// Who or what ended the connection.
    public var origin: Origin
    /// The error code: a QUIC application or transport error code, or a TLS alert number
    /// (0 for close_notify). 0 means no error.
    public var code: UInt64
    /// Whether ``code`` is an application error code (QUIC) rather than a transport one.
    public var isApplicationCode: Bool
    /// The reason phrase (QUIC) or a description.
    public var reason: String

    /// Whether the close was orderly: code 0 from either side.
    public var isClean: Bool { code == 0 && (origin == .local || origin == .peer) }

    public var description: String {
        "\(origin): \(isApplicationCode ? "application" : "transport") code \(code)\(reason.isEmpty ? "" : " (\(reason))")"
    }
}
