import QuiverSCTP
import Testing

@Suite struct CRC32cTests {
    /// RFC 3720 Appendix B.4's vectors (iSCSI uses the same CRC32c as SCTP).
    @Test func rfc3720Vectors() {
        #expect(CRC32c.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32c.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32c.checksum((0..<32).map { UInt8($0) }) == 0x46DD_794E)
        #expect(CRC32c.checksum((0..<32).map { UInt8(31 - $0) }) == 0x113F_DB5C)
    }

    /// The eight-byte steps agree with the byte-at-a-time tail at every length and alignment.
    @Test func everyLengthAgreesWithTheBitwiseDefinition() {
        func bitwise(_ bytes: [UInt8]) -> UInt32 {
            var crc: UInt32 = 0xFFFF_FFFF
            for byte in bytes {
                crc ^= UInt32(byte)
                for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
            }
            return ~crc
        }
        let data = (0..<100).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        for start in 0..<9 {
            for end in start...data.count {
                #expect(CRC32c.checksum(data[start..<end]) == bitwise(Array(data[start..<end])))
            }
        }
    }
}
