/// The ECN field of an IP packet (RFC 3168 §5): what a datagram was sent with or arrived
/// with. QUIC counts the marks it receives and reports them in ACK frames (RFC 9000 §13.4).
public enum ECNCodepoint: UInt8, Hashable, Sendable {
    /// Not ECN-capable transport.
    case notECT = 0
    /// ECN-capable transport, ECT(1).
    case ect1 = 1
    /// ECN-capable transport, ECT(0).
    case ect0 = 2
    /// Congestion experienced.
    case ce = 3
}
