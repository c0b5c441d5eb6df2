/// Which end of a connection an endpoint is: the one that sent the first Initial packet
/// (the client) or the one that answered it (the server).
///
/// Used wherever RFC 9000 makes a rule depend on the sender, for example stream ID ownership
/// (§2.1) and server-only transport parameters (§18.2).
public enum Role: Sendable, Hashable {
    /// The endpoint that initiated the connection.
    case client
    /// The endpoint that accepted the connection.
    case server

    /// The other role.
    public var peer: Role {
        switch self {
        case .client: return .server
        case .server: return .client
        }
    }
}
