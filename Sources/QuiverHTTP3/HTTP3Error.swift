/// An HTTP/3 or QPACK error: the application error code sent in CONNECTION_CLOSE or
/// RESET_STREAM / STOP_SENDING (RFC 9114 §8.1, RFC 9204 §6) and a description.
public struct HTTP3Error: Error, Hashable, Sendable, CustomStringConvertible {
    /// The error code.
    public let code: Code
    /// What went wrong.
    public let reason: String

    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    /// Errors are equal when their codes are (the reason is commentary).
    public static func == (a: HTTP3Error, b: HTTP3Error) -> Bool { a.code == b.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }

    public var description: String { "\(code) (0x\(String(code.rawValue, radix: 16))): \(reason)" }

    /// HTTP/3 and QPACK error codes.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: UInt64
        public init(rawValue: UInt64) { self.rawValue = rawValue }

        public static let noError = Code(rawValue: 0x100)
        public static let generalProtocolError = Code(rawValue: 0x101)
        public static let internalError = Code(rawValue: 0x102)
        public static let streamCreationError = Code(rawValue: 0x103)
        public static let closedCriticalStream = Code(rawValue: 0x104)
        public static let frameUnexpected = Code(rawValue: 0x105)
        public static let frameError = Code(rawValue: 0x106)
        public static let excessiveLoad = Code(rawValue: 0x107)
        public static let idError = Code(rawValue: 0x108)
        public static let settingsError = Code(rawValue: 0x109)
        public static let missingSettings = Code(rawValue: 0x10a)
        public static let requestRejected = Code(rawValue: 0x10b)
        public static let requestCancelled = Code(rawValue: 0x10c)
        public static let requestIncomplete = Code(rawValue: 0x10d)
        public static let messageError = Code(rawValue: 0x10e)
        public static let connectError = Code(rawValue: 0x10f)
        public static let versionFallback = Code(rawValue: 0x110)
        public static let qpackDecompressionFailed = Code(rawValue: 0x200)
        public static let qpackEncoderStreamError = Code(rawValue: 0x201)
        public static let qpackDecoderStreamError = Code(rawValue: 0x202)

        public var description: String {
            switch self {
            case .noError: "H3_NO_ERROR"
            case .generalProtocolError: "H3_GENERAL_PROTOCOL_ERROR"
            case .internalError: "H3_INTERNAL_ERROR"
            case .streamCreationError: "H3_STREAM_CREATION_ERROR"
            case .closedCriticalStream: "H3_CLOSED_CRITICAL_STREAM"
            case .frameUnexpected: "H3_FRAME_UNEXPECTED"
            case .frameError: "H3_FRAME_ERROR"
            case .excessiveLoad: "H3_EXCESSIVE_LOAD"
            case .idError: "H3_ID_ERROR"
            case .settingsError: "H3_SETTINGS_ERROR"
            case .missingSettings: "H3_MISSING_SETTINGS"
            case .requestRejected: "H3_REQUEST_REJECTED"
            case .requestCancelled: "H3_REQUEST_CANCELLED"
            case .requestIncomplete: "H3_REQUEST_INCOMPLETE"
            case .messageError: "H3_MESSAGE_ERROR"
            case .connectError: "H3_CONNECT_ERROR"
            case .versionFallback: "H3_VERSION_FALLBACK"
            case .qpackDecompressionFailed: "QPACK_DECOMPRESSION_FAILED"
            case .qpackEncoderStreamError: "QPACK_ENCODER_STREAM_ERROR"
            case .qpackDecoderStreamError: "QPACK_DECODER_STREAM_ERROR"
            default: "H3 error"
            }
        }
    }
}
