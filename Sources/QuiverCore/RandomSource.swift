/// Where protocol randomness comes from (client/server randoms, key shares' entropy is the
/// crypto library's own, connection IDs, ticket nonces).
///
/// Engines take a `RandomSource` so tests can inject fixed bytes (RFC 8448 replays its
/// randoms); production uses ``system``, the operating system's CSPRNG.
public struct RandomSource: Sendable {
    /// Fills the buffer with random bytes.
    public let fill: @Sendable (inout [UInt8]) -> Void

    /// Creates a source from a fill function.
    public init(fill: @escaping @Sendable (inout [UInt8]) -> Void) { self.fill = fill }

    /// The system CSPRNG (`SystemRandomNumberGenerator`, getrandom(2) on Linux).
    public static let system = RandomSource { buffer in
        var generator = SystemRandomNumberGenerator()
        var i = 0
        while i < buffer.count {
            var word = generator.next()
            for _ in 0..<8 where i < buffer.count {
                buffer[i] = UInt8(truncatingIfNeeded: word)
                word >>= 8
                i += 1
            }
        }
    }

    /// Returns `count` random bytes.
    public func bytes(_ count: Int) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        fill(&buffer)
        return buffer
    }
}
