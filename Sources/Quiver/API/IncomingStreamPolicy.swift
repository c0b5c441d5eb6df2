/// What a ``Connection`` does with streams the peer opens.
public enum IncomingStreamPolicy: Sendable, Hashable {
    /// Queue them for ``Connection/acceptStream()-pn1a`` (the default).
    case accept
    /// Refuse them with STOP_SENDING/RESET_STREAM and this application error code.
    case reject(code: UInt64)
}
