/// How ``Connection/shutdown(_:)-rjtt`` ends a connection.
public enum ShutdownMode: Sendable, Hashable {
    /// Finish the default stream, wait until everything written was delivered (QUIC: acknowledged;
    /// TLS: handed to the kernel after close_notify), then close with code 0.
    case flush
    /// As ``flush``, then close with this application error code and reason: for a protocol
    /// whose clean close is not code 0 (HTTP/3's is H3_NO_ERROR, 0x100).
    case flushThenClose(code: UInt64, reason: String)
    /// Close at once with this application error code and reason (QUIC CONNECTION_CLOSE; on TLS
    /// a close_notify for code 0, otherwise the TCP connection is reset). Unsent data is lost.
    case rapid(code: UInt64, reason: String)

    /// Whether the close waits until everything written was delivered.
    var waitsForDelivery: Bool {
        if case .rapid = self { false } else { true }
    }

    /// The code and reason the connection closes with.
    var close: (code: UInt64, reason: String) {
        switch self {
        case .flush: (0, "")
        case .flushThenClose(let code, let reason), .rapid(let code, let reason): (code, reason)
        }
    }
}
