public import QuiverCore

/// A fatal TLS failure, carrying the alert that was (or must be) sent or that was received.
///
/// Every failure of the handshake or record layer is one of these; the alert chosen follows
/// RFC 8446 §6.2. QUIC maps ``alert`` to the transport error `0x100 + alert` (RFC 9001 §4.8).
public struct TLSError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Who detected the failure.
    public enum Origin: Hashable, Sendable {
        /// We detected it; ``TLSError/alert`` is the alert we send.
        case local
        /// The peer sent ``TLSError/alert``.
        case peer
        /// The transport ended without a `close_notify` (possible truncation attack); no alert.
        case transport
    }

    /// The alert sent or received.
    public var alert: AlertDescription
    /// Who detected the failure.
    public var origin: Origin
    /// What happened.
    public var reason: String

    /// Creates an error we detected, to be reported with `alert`.
    public init(_ alert: AlertDescription, _ reason: String) {
        self.alert = alert
        self.origin = .local
        self.reason = reason
    }

    /// An alert received from the peer.
    public static func received(_ alert: AlertDescription) -> TLSError {
        var e = TLSError(alert, "peer sent alert \(alert)")
        e.origin = .peer
        return e
    }

    /// A DTLS handshake that got no answer: the transport gave up (no alert either way).
    public static func timedOut(_ reason: String) -> TLSError {
        var e = TLSError(.handshakeFailure, reason)
        e.origin = .transport
        return e
    }

    /// The byte stream ended before the peer's `close_notify`.
    public static func truncated(_ reason: String) -> TLSError {
        var e = TLSError(.closeNotify, reason)
        e.origin = .transport
        return e
    }

    /// A malformed message: `decode_error`.
    public static func decode(_ error: DecodeError, in what: String) -> TLSError {
        TLSError(.decodeError, "malformed \(what): \(error.reason)")
    }

    public var description: String {
        switch origin {
        case .local: return "TLS error (sent \(alert)): \(reason)"
        case .peer: return "TLS error (received \(alert)): \(reason)"
        case .transport: return "TLS error: \(reason)"
        }
    }

    /// This error as a ``QuiverError`` for public APIs.
    public var quiverError: QuiverError {
        switch origin {
        case .local: return QuiverError(.tlsAlertSent, description)
        case .peer: return QuiverError(.tlsAlertReceived, description)
        case .transport: return QuiverError(.closed, description)
        }
    }
}
