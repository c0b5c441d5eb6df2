/// An encryption level (RFC 9001 §2.1; for TLS over TCP, the key protecting records).
public enum EncryptionLevel: Int, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// Plaintext: ClientHello, ServerHello, HelloRetryRequest (QUIC Initial packets).
    case initial
    /// 0-RTT: the client's early data.
    case earlyData
    /// Handshake traffic keys.
    case handshake
    /// Application traffic keys (1-RTT).
    case application

    public var description: String {
        switch self {
        case .initial: return "initial"
        case .earlyData: return "0-RTT"
        case .handshake: return "handshake"
        case .application: return "1-RTT"
        }
    }
}

/// What the handshake asks its driver to do, in order. Order matters: bytes queued before a
/// key change go out under the old key.
public enum TLSEvent: Sendable {
    /// Send these handshake-message bytes at `level` (QUIC: CRYPTO frames; TCP: records).
    case send(EncryptionLevel, [UInt8])
    /// From now on, decrypt what the peer sends at `level` with this secret.
    case installReadSecret(EncryptionLevel, TrafficSecret)
    /// From now on, encrypt what we send at `level` with this secret.
    case installWriteSecret(EncryptionLevel, TrafficSecret)
    /// The handshake completed (both Finished messages verified/sent).
    case handshakeComplete
    /// Client: the server sent a ticket usable for resumption.
    case sessionTicket(SessionTicket)
    /// Server: a ticket was issued.
    case ticketIssued
    /// Whether the server accepted the client's 0-RTT data.
    case earlyData(accepted: Bool)
    /// TLS 1.2 over TCP: send ChangeCipherSpec, then protect every record we send with this key
    /// (RFC 5246 §7.1). Handshake bytes queued after it go at ``EncryptionLevel/application``.
    case changeWriteCipherSpec(TLS12RecordKey)
    /// TLS 1.2 over TCP: the peer's ChangeCipherSpec is due next (only it may come before the
    /// peer's Finished); the records after it are protected with this key and read at
    /// ``EncryptionLevel/application``.
    case expectChangeCipherSpec(TLS12RecordKey)
    /// TLS 1.2 over TCP: send this warning alert and carry on (`no_renegotiation`, refusing a
    /// renegotiation, RFC 5746 §4.2 and §4.4).
    case warningAlert(AlertDescription)
}
