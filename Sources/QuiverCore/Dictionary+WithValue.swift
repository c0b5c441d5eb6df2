extension Dictionary {
    /// Runs `body` on the value stored for `key`, in place; `nil` when there is none.
    ///
    /// `dictionary[key]?.change()` goes through the optional subscript's modify coroutine,
    /// whose frame holds a whole `Value` and, for a value larger than a few words, is
    /// malloc'd: a heap allocation per call (on the QUIC data path, one per acknowledged packet
    /// before it went through here). The values view's subscript changes the value where it is
    /// stored.
    @discardableResult
    package mutating func withValue<Result, Failure: Error>(
        forKey key: Key, _ body: (inout Value) throws(Failure) -> Result
    ) throws(Failure) -> Result? {
        guard let index = index(forKey: key) else { return nil }
        return try body(&values[index])
    }
}
