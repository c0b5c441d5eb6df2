/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of every SCTP packet
/// (RFC 9260 §6.8 and Appendix A).
///
/// Slicing-by-8 over eight 256-entry tables: eight bytes per step, a table lookup per byte,
/// no carry chain between them (about 1.3 instructions per byte).
public enum CRC32c {
    /// The checksum of `bytes` as RFC 9260 defines it (initial value all ones, final
    /// complement). SCTP writes it into the common header least significant byte first.
    public static func checksum<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        let fast = bytes.withContiguousStorageIfAvailable { update(0xFFFF_FFFF, $0) }
        if let fast { return ~fast }
        return ~Array(bytes).withUnsafeBufferPointer { update(0xFFFF_FFFF, $0) }
    }

    /// The register after `bytes`, starting from `crc` (neither initial value nor complement
    /// applied): for checksums computed in pieces.
    public static func update(_ crc: UInt32, _ bytes: UnsafeBufferPointer<UInt8>) -> UInt32 {
        var crc = crc
        var index = 0
        let count = bytes.count
        tables.withUnsafeBufferPointer { table in
            while count - index >= 8 {
                let low = crc ^ (UInt32(bytes[index]) | UInt32(bytes[index + 1]) << 8
                    | UInt32(bytes[index + 2]) << 16 | UInt32(bytes[index + 3]) << 24)
                crc = table[7 * 256 + Int(low & 0xFF)] ^ table[6 * 256 + Int((low >> 8) & 0xFF)]
                    ^ table[5 * 256 + Int((low >> 16) & 0xFF)] ^ table[4 * 256 + Int(low >> 24)]
                    ^ table[3 * 256 + Int(bytes[index + 4])] ^ table[2 * 256 + Int(bytes[index + 5])]
                    ^ table[1 * 256 + Int(bytes[index + 6])] ^ table[Int(bytes[index + 7])]
                index += 8
            }
            while index < count {
                crc = table[Int((crc ^ UInt32(bytes[index])) & 0xFF)] ^ (crc >> 8)
                index += 1
            }
        }
        return crc
    }

    /// `tables[k * 256 + b]`: the register contribution of byte `b` followed by `k` zero bytes.
    private static let tables: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 8 * 256)
        for byte in 0..<256 {
            var crc = UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
            table[byte] = crc
        }
        for slice in 1..<8 {
            for byte in 0..<256 {
                let previous = table[(slice - 1) * 256 + byte]
                table[slice * 256 + byte] = table[Int(previous & 0xFF)] ^ (previous >> 8)
            }
        }
        return table
    }()
}
