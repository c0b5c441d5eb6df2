/// Why an application stream operation cannot proceed. These are local conditions reported to
/// the application, not connection errors: the connection carries on.
///
/// The error codes are application protocol error codes (RFC 9000 §20.2) from RESET_STREAM
/// (§19.4) and STOP_SENDING (§19.5).
public enum StreamError: Error, Hashable, Sendable, CustomStringConvertible {
    /// No such stream: never opened, or closed and forgotten.
    case unknownStream(StreamID)
    /// The stream has no sending part here (a unidirectional stream the peer opened,
    /// RFC 9000 §2.1).
    case notSendable(StreamID)
    /// The stream has no receiving part here (a unidirectional stream we opened).
    case notReceivable(StreamID)
    /// Data was written after ``SendStream/finish()``.
    case finished
    /// The sending part was reset locally with this error code (RFC 9000 §3.1 "Reset Sent").
    case reset(errorCode: UInt64)
    /// The peer sent STOP_SENDING with this error code, so the sending part was reset
    /// (RFC 9000 §3.5).
    case stopped(errorCode: UInt64)
    /// The peer reset its sending part with this error code (RFC 9000 §3.2 "Reset Recvd").
    case resetByPeer(errorCode: UInt64)
    /// Reading was abandoned locally with STOP_SENDING and this error code.
    case readStopped(errorCode: UInt64)
    /// The write would take the stream past 2^62 − 1 bytes (RFC 9000 §4.5).
    case tooMuchData

    public var description: String {
        switch self {
        case .unknownStream(let id): return "unknown \(id)"
        case .notSendable(let id): return "\(id) is receive-only"
        case .notReceivable(let id): return "\(id) is send-only"
        case .finished: return "stream already finished"
        case .reset(let code): return "stream reset locally with error code \(code)"
        case .stopped(let code): return "peer sent STOP_SENDING with error code \(code)"
        case .resetByPeer(let code): return "peer reset the stream with error code \(code)"
        case .readStopped(let code): return "reading stopped with error code \(code)"
        case .tooMuchData: return "stream data would exceed 2^62 - 1 bytes"
        }
    }
}
