public import QuiverCore
public import QuiverTLS

/// A QUIC transport error code (RFC 9000 §20.1), as an open wire enum: unknown codes
/// round-trip. TLS alerts map to `0x0100 + alert` (RFC 9001 §4.8).
public struct TransportErrorCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    public static let noError = TransportErrorCode(rawValue: 0x00)
    public static let internalError = TransportErrorCode(rawValue: 0x01)
    public static let connectionRefused = TransportErrorCode(rawValue: 0x02)
    public static let flowControlError = TransportErrorCode(rawValue: 0x03)
    public static let streamLimitError = TransportErrorCode(rawValue: 0x04)
    public static let streamStateError = TransportErrorCode(rawValue: 0x05)
    public static let finalSizeError = TransportErrorCode(rawValue: 0x06)
    public static let frameEncodingError = TransportErrorCode(rawValue: 0x07)
    public static let transportParameterError = TransportErrorCode(rawValue: 0x08)
    public static let connectionIDLimitError = TransportErrorCode(rawValue: 0x09)
    public static let protocolViolation = TransportErrorCode(rawValue: 0x0a)
    public static let invalidToken = TransportErrorCode(rawValue: 0x0b)
    public static let applicationError = TransportErrorCode(rawValue: 0x0c)
    public static let cryptoBufferExceeded = TransportErrorCode(rawValue: 0x0d)
    public static let keyUpdateError = TransportErrorCode(rawValue: 0x0e)
    public static let aeadLimitReached = TransportErrorCode(rawValue: 0x0f)
    public static let noViablePath = TransportErrorCode(rawValue: 0x10)
    /// RFC 9368 §4: version negotiation failed.
    public static let versionNegotiationError = TransportErrorCode(rawValue: 0x11)

    /// The CRYPTO_ERROR code carrying a TLS alert (RFC 9001 §4.8).
    public static func crypto(_ alert: AlertDescription) -> TransportErrorCode {
        TransportErrorCode(rawValue: 0x0100 + UInt64(alert.rawValue))
    }

    /// The TLS alert, when this is a CRYPTO_ERROR.
    public var tlsAlert: AlertDescription? {
        (0x0100...0x01ff).contains(rawValue) ? AlertDescription(rawValue: UInt8(rawValue - 0x0100)) : nil
    }

    public var description: String {
        let names: [UInt64: String] = [
            0x00: "NO_ERROR", 0x01: "INTERNAL_ERROR", 0x02: "CONNECTION_REFUSED", 0x03: "FLOW_CONTROL_ERROR",
            0x04: "STREAM_LIMIT_ERROR", 0x05: "STREAM_STATE_ERROR", 0x06: "FINAL_SIZE_ERROR",
            0x07: "FRAME_ENCODING_ERROR", 0x08: "TRANSPORT_PARAMETER_ERROR", 0x09: "CONNECTION_ID_LIMIT_ERROR",
            0x0a: "PROTOCOL_VIOLATION", 0x0b: "INVALID_TOKEN", 0x0c: "APPLICATION_ERROR",
            0x0d: "CRYPTO_BUFFER_EXCEEDED", 0x0e: "KEY_UPDATE_ERROR", 0x0f: "AEAD_LIMIT_REACHED",
            0x10: "NO_VIABLE_PATH", 0x11: "VERSION_NEGOTIATION_ERROR",
        ]
        if let alert = tlsAlert { return "CRYPTO_ERROR(\(alert))" }
        return names[rawValue] ?? "0x\(String(rawValue, radix: 16))"
    }
}

/// A QUIC protocol error found while parsing or processing: the transport error code to close
/// the connection with, the frame type that caused it (when known) and a reason phrase.
/// Parsing never traps; every malformed input becomes one of these.
public struct QUICError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The code for CONNECTION_CLOSE.
    public var code: TransportErrorCode
    /// The offending frame type, if any (carried in CONNECTION_CLOSE of type 0x1c).
    public var frameType: UInt64?
    /// A short explanation (fits a reason phrase).
    public var reason: String

    /// Creates an error.
    public init(_ code: TransportErrorCode, _ reason: String, frameType: UInt64? = nil) {
        self.code = code
        self.reason = reason
        self.frameType = frameType
    }

    /// A `FRAME_ENCODING_ERROR` from a decode failure.
    public static func frameEncoding(_ error: DecodeError, frameType: UInt64? = nil) -> QUICError {
        QUICError(.frameEncodingError, error.reason, frameType: frameType)
    }

    /// A TLS failure as CRYPTO_ERROR.
    public init(_ tls: TLSError) {
        self.init(.crypto(tls.alert), tls.reason)
    }

    public var description: String {
        "QUIC error \(code)\(frameType.map { " in frame 0x\(String($0, radix: 16))" } ?? ""): \(reason)"
    }
}
