/// A deterministic SplitMix64 generator (Steele, Lea & Flood 2014) for property tests: the same
/// seed always yields the same sequence, so a failure can be replayed.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Random bytes of the given length.
    mutating func bytes(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: 0...255, using: &self) }
    }

    /// A variable-length-integer value whose encoded length is 1, 2, 4 or 8 bytes with equal
    /// probability, the edges of each length included now and then.
    mutating func varInt(max: UInt64 = (1 << 62) - 1) -> UInt64 {
        let bounds: [UInt64] = [63, 16383, 1_073_741_823, (1 << 62) - 1]
        let upper = Swift.min(bounds[Int.random(in: 0..<4, using: &self)], max)
        switch Int.random(in: 0..<8, using: &self) {
        case 0: return 0
        case 1: return upper
        default: return UInt64.random(in: 0...upper, using: &self)
        }
    }
}
