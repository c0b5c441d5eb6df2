/// How ``Connection/shutdown(_:)`` ends a connection.
public enum ShutdownMode: Sendable, Hashable {
    /// Finish the default stream, wait until everything written was delivered (QUIC: acknowledged;
    /// TLS: handed to the kernel after close_notify), then close with code 0.
    case flush
    /// Close at once with this application error code and reason (QUIC CONNECTION_CLOSE; on TLS
    /// a close_notify for code 0, otherwise the TCP connection is reset). Unsent data is lost.
    case rapid(code: UInt64, reason: String)
}
