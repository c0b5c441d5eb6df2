/// The content of a CONNECTION_CLOSE frame (RFC 9000 §19.19).
///
/// Type 0x1c signals a transport error (codes of §20.1) and names the frame type that caused it;
/// type 0x1d signals an application error (codes of the application protocol, §20.2) and has no
/// Frame Type field. Only type 0x1c may be sent in Initial and Handshake packets (§12.5).
public struct ConnectionClose: Hashable, Sendable {
    /// Whether this is the application variant (type 0x1d).
    public var isApplication: Bool
    /// The transport error code (type 0x1c) or application error code (type 0x1d).
    public var errorCode: UInt64
    /// The type of the frame that triggered the error (transport variant only; 0 when unknown).
    /// Ignored when encoding the application variant; `nil` encodes as 0.
    public var frameType: UInt64?
    /// The reason phrase, which SHOULD be UTF-8 (§19.19); may be empty.
    public var reason: [UInt8]

    /// Creates a CONNECTION_CLOSE frame body.
    public init(isApplication: Bool, errorCode: UInt64, frameType: UInt64? = nil, reason: [UInt8] = []) {
        self.isApplication = isApplication
        self.errorCode = errorCode
        self.frameType = isApplication ? nil : frameType
        self.reason = reason
    }

    /// A transport CONNECTION_CLOSE (type 0x1c) for a ``QUICError``.
    public init(_ error: QUICError) {
        self.init(isApplication: false, errorCode: error.code.rawValue, frameType: error.frameType ?? 0,
                  reason: Array(error.reason.utf8))
    }

    /// A transport CONNECTION_CLOSE (type 0x1c).
    public static func transport(_ code: TransportErrorCode, frameType: UInt64 = 0, reason: String = "") -> ConnectionClose {
        ConnectionClose(isApplication: false, errorCode: code.rawValue, frameType: frameType, reason: Array(reason.utf8))
    }

    /// An application CONNECTION_CLOSE (type 0x1d).
    public static func application(_ code: UInt64, reason: String = "") -> ConnectionClose {
        ConnectionClose(isApplication: true, errorCode: code, reason: Array(reason.utf8))
    }

    /// The transport error code, when this is the transport variant.
    public var transportErrorCode: TransportErrorCode? {
        isApplication ? nil : TransportErrorCode(rawValue: errorCode)
    }

    /// The frame type: 0x1c (transport) or 0x1d (application).
    @_spi(Wire) public var type: FrameType { isApplication ? .connectionCloseApplication : .connectionCloseTransport }
}
