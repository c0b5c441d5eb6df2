/// The public error type of Quiver's I/O-facing APIs.
///
/// Modelled on swift-certificates' `CertificateError`: an extensible ``Code``, a reason that
/// says what happened and what to do, and the source location that raised it. Equality
/// compares the code only, so callers can match `error.code == .tlsAlert` reliably.
public struct QuiverError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The category of failure. New codes can be added without breaking callers.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        enum Backing: Hashable, Sendable {
            case tlsAlertReceived, tlsAlertSent, io, closed, configuration, certificate, timeout, protocolViolation, streamReset
        }
        let backing: Backing
        /// The peer sent a fatal TLS alert.
        public static let tlsAlertReceived = Code(backing: .tlsAlertReceived)
        /// We detected a problem, sent a fatal TLS alert and closed.
        public static let tlsAlertSent = Code(backing: .tlsAlertSent)
        /// An operating-system call failed (`errno` is in the reason).
        public static let io = Code(backing: .io)
        /// The connection was closed, cleanly or not, before the operation could finish.
        public static let closed = Code(backing: .closed)
        /// The configuration is unusable (missing certificate, unreadable file, …).
        public static let configuration = Code(backing: .configuration)
        /// A certificate or key could not be parsed, generated or verified.
        public static let certificate = Code(backing: .certificate)
        /// An operation did not finish in time.
        public static let timeout = Code(backing: .timeout)
        /// The peer broke the protocol.
        public static let protocolViolation = Code(backing: .protocolViolation)
        /// The stream was reset: the peer abandoned sending (RESET_STREAM) or asked us to stop
        /// (STOP_SENDING), or we reset it ourselves; the error code is in the reason.
        public static let streamReset = Code(backing: .streamReset)

        public var description: String { "\(backing)" }
    }

    /// The category of failure.
    public let code: Code
    /// What happened, and what to do about it.
    public let reason: String
    /// Where the error was raised.
    public let file: String
    /// Where the error was raised.
    public let line: UInt
    /// The application error code that came with it: of a stream reset or STOP_SENDING
    /// (`.streamReset`) or of the peer's CONNECTION_CLOSE (`.closed`), when there is one.
    public let applicationErrorCode: UInt64?

    /// Creates an error.
    public init(_ code: Code, _ reason: String, applicationErrorCode: UInt64? = nil, file: String = #fileID, line: UInt = #line) {
        self.code = code
        self.reason = reason
        self.applicationErrorCode = applicationErrorCode
        self.file = file
        self.line = line
    }

    public static func == (a: QuiverError, b: QuiverError) -> Bool { a.code == b.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }

    public var description: String { "QuiverError.\(code): \(reason)" }
}
