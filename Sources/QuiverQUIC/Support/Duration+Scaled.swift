extension Duration {
    /// `self × factor` for a non-negative `factor`, by doubling and adding. `Duration`'s own
    /// `*` is generic over `BinaryInteger` and converts through 128-bit `Int128(exactly:)` on
    /// every call; recovery multiplies on every packet (the RFC 9002 PTO with its backoff, the
    /// idle period), where that showed at about 2 % of a bulk sender's profile. Overflow traps,
    /// as `*` does.
    func scaled(by factor: Int) -> Duration {
        precondition(factor >= 0, "a negative factor")
        var result = Duration.zero
        var addend = self
        var remaining = factor
        while remaining > 0 {
            if remaining & 1 == 1 { result += addend }
            remaining >>= 1
            if remaining > 0 { addend += addend }
        }
        return result
    }
}
