import QuiverCore

/// The latency spin bit of the current path (RFC 9000 §17.4).
///
/// Enabled, the value starts at 0; the server reflects the spin bit of the client's 1-RTT
/// packets, the client sends the inverse of the server's, each time a packet raises the
/// highest packet number seen from the peer — so the client's bit flips once per round trip,
/// which on-path observers time. Each endpoint decides alone: an administrator can turn it off
/// (``QUICConfiguration/spinBit``), and even when allowed it is off on a random one in eight
/// paths (§17.4 asks for at least one in sixteen; quinn also takes one in eight), so that
/// connections without it are common. Off, the bit sent is a random value chosen per
/// connection ID (the RECOMMENDED choice) and received bits are ignored.
///
/// The value goes back to 0 (or, off, to a new random value) when the connection ID we send
/// to changes.
struct SpinBit {
    /// Whether the spin bit is enabled on this path.
    private(set) var isEnabled: Bool
    /// The value our 1-RTT packets carry.
    private(set) var sentValue: Bool
    /// The sequence number of the peer's connection ID the value belongs to.
    private var connectionIDSequence: UInt64 = 0

    /// The state of a new path: enabled unless `allowed` is false or a one-in-eight draw
    /// disables it.
    init(allowed: Bool, random: RandomSource) {
        let draw = allowed ? random.bytes(1)[0] : 0
        isEnabled = allowed && draw & 0x07 != 0
        // Disabled: the value is random per connection ID (a bit of the draw not used above).
        sentValue = !isEnabled && draw & 0x80 != 0
    }

    /// The value to put in a 1-RTT packet sent to the peer's connection ID `sequence`.
    mutating func value(forConnectionID sequence: UInt64, random: RandomSource) -> Bool {
        if sequence != connectionIDSequence {
            connectionIDSequence = sequence
            sentValue = isEnabled ? false : random.bytes(1)[0] & 1 != 0
        }
        return sentValue
    }

    /// A 1-RTT packet with spin bit `bit` raised the highest packet number received from the
    /// peer: the server takes the bit, the client its inverse.
    ///
    /// - Returns: whether the value we send changed.
    mutating func received(_ bit: Bool, as role: Role) -> Bool {
        guard isEnabled else { return false }
        let value = role == .server ? bit : !bit
        guard value != sentValue else { return false }
        sentValue = value
        return true
    }
}
