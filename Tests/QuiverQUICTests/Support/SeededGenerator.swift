import QuiverCore

/// The deterministic generator of the property tests (QuiverCore's SplitMix64): the same seed
/// always yields the same sequence, so a failure can be replayed.
typealias SeededGenerator = SplitMix64

extension SplitMix64 {
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
