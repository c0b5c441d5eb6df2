/// Decodes a hex string (test vectors); traps on malformed input, which is a test bug.
func hex(_ s: String) -> [UInt8] {
    let digits = Array(s.utf8.filter { $0 != 0x20 && $0 != 0x0a })
    precondition(digits.count % 2 == 0, "odd hex length")
    func nibble(_ c: UInt8) -> UInt8 {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x61...0x66: return c - 0x61 + 10
        case 0x41...0x46: return c - 0x41 + 10
        default: preconditionFailure("bad hex digit")
        }
    }
    return stride(from: 0, to: digits.count, by: 2).map { nibble(digits[$0]) << 4 | nibble(digits[$0 + 1]) }
}
