/// The static Huffman code of HPACK (RFC 7541 §5.2, Appendix B), which QPACK uses for string
/// literals (RFC 9204 §4.1.2).
enum Huffman {
    /// The encoded length in bytes of `bytes`.
    static func encodedCount(_ bytes: some Collection<UInt8>) -> Int {
        var bits = 0
        for byte in bytes { bits += Int(HuffmanCode.lengths[Int(byte)]) }
        return (bits + 7) / 8
    }

    /// Appends the encoding of `bytes`, padded with the most significant bits of EOS (all ones).
    static func encode(_ bytes: some Collection<UInt8>, into output: inout [UInt8]) {
        var accumulator: UInt64 = 0
        var count = 0  // bits held in `accumulator`
        for byte in bytes {
            let length = Int(HuffmanCode.lengths[Int(byte)])
            accumulator = accumulator << length | UInt64(HuffmanCode.codes[Int(byte)])
            count += length
            while count >= 8 {
                count -= 8
                output.append(UInt8(truncatingIfNeeded: accumulator >> count))
            }
        }
        if count > 0 {
            output.append(UInt8(truncatingIfNeeded: accumulator << (8 - count)) | UInt8(0xff >> count))
        }
    }

    /// The decoding tree: node `i` has children at `tree[2i]` (bit 0) and `tree[2i + 1]` (bit 1);
    /// a child ≥ 0 is a node, a child < 0 is the leaf of symbol `−child − 1`.
    private static let tree: [Int32] = {
        var tree: [Int32] = [0, 0]
        var nodes = 1
        for symbol in 0...256 {
            let code = HuffmanCode.codes[symbol]
            let length = Int(HuffmanCode.lengths[symbol])
            var node = 0
            for position in stride(from: length - 1, through: 0, by: -1) {
                let slot = 2 * node + Int((code >> UInt32(position)) & 1)
                if position == 0 {
                    tree[slot] = -Int32(symbol) - 1
                } else {
                    if tree[slot] == 0 {
                        tree[slot] = Int32(nodes)
                        nodes += 1
                        tree += [0, 0]
                    }
                    node = Int(tree[slot])
                }
            }
        }
        return tree
    }()

    /// Decodes `bytes`. Fails on EOS in the data, on padding longer than 7 bits, and on padding
    /// that is not a prefix of EOS (RFC 7541 §5.2).
    static func decode(_ bytes: some Collection<UInt8>) -> [UInt8]? {
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count * 8 / 5)
        var node = 0
        var pendingBits = 0  // bits read since the last symbol
        var pendingAllOnes = true
        for byte in bytes {
            for position in stride(from: 7, through: 0, by: -1) {
                let bit = Int(byte >> UInt8(position)) & 1
                let next = tree[2 * node + bit]
                pendingBits += 1
                pendingAllOnes = pendingAllOnes && bit == 1
                if next < 0 {
                    let symbol = Int(-next - 1)
                    guard symbol < 256 else { return nil }  // EOS must not appear
                    output.append(UInt8(symbol))
                    node = 0
                    pendingBits = 0
                    pendingAllOnes = true
                } else if next == 0 {
                    return nil  // cannot happen with a complete code, but never loop on bad input
                } else {
                    node = Int(next)
                }
            }
        }
        guard pendingBits <= 7, pendingAllOnes else { return nil }
        return output
    }
}
