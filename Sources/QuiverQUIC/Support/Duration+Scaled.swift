extension Duration {
    /// `self × factor` for a non-negative `factor`. `Duration`'s own `*` is generic over
    /// `BinaryInteger` and converts through `Int128(exactly:)` on every call; recovery
    /// multiplies on every packet (the RFC 9002 PTO with its backoff, the idle period). Here it
    /// is one 128-bit multiplication of the attoseconds. Overflow traps, as `*` does.
    func scaled(by factor: Int) -> Duration {
        precondition(factor >= 0, "a negative factor")
        return Duration(attoseconds: attoseconds * Int128(factor))
    }

    /// `self ÷ divisor`, truncated toward zero, for a positive `divisor`: one 64-bit division
    /// when the duration is under about 9.2 s, where `Duration`'s generic `/` divides 128-bit
    /// integers (about 560 instructions, twice per RTT sample in RFC 9002 §5.3's averages).
    func divided(by divisor: Int) -> Duration {
        precondition(divisor > 0, "a divisor that is not positive")
        let attoseconds = self.attoseconds
        if let small = Int64(exactly: attoseconds) { return Duration(attoseconds: Int128(small / Int64(divisor))) }
        return Duration(attoseconds: attoseconds / Int128(divisor))
    }
}
