/// QUIC variable-length integers (RFC 9000 §16): 1, 2, 4 or 8 bytes, the two high bits of the
/// first byte giving the length. Values are limited to 2^62 − 1.
public enum VarInt {
    /// The largest encodable value, 2^62 − 1.
    public static let max: UInt64 = (1 << 62) - 1

    /// The number of bytes the shortest encoding of `value` takes.
    @inlinable
    public static func encodedLength(_ value: UInt64) -> Int {
        switch value {
        case 0..<64: return 1
        case 64..<16384: return 2
        case 16384..<1_073_741_824: return 4
        default:
            precondition(value <= max, "varint out of range")
            return 8
        }
    }

    /// Stores the shortest encoding of `value` at `offset` in `buffer` and returns its length.
    /// Eight bytes are stored (the encoding first): `buffer` needs room for them.
    @inlinable
    public static func store(_ value: UInt64, at buffer: UnsafeMutableRawBufferPointer, offset: Int) -> Int {
        let length = encodedLength(value)
        buffer.storeBytes(of: (encoded(value, length: length) << UInt64(64 - 8 * length)).bigEndian, toByteOffset: offset, as: UInt64.self)
        return length
    }

    /// Appends the shortest encoding of `value`.
    @inlinable
    public static func write(_ value: UInt64, into bytes: inout [UInt8]) {
        write(value, length: encodedLength(value), into: &bytes)
    }

    /// Appends `value` encoded in exactly `length` bytes (1, 2, 4 or 8); the value must fit.
    @inlinable
    public static func write(_ value: UInt64, length: Int, into bytes: inout [UInt8]) {
        // Byte by byte: an append checks capacity and uniqueness (about ten instructions
        // inlined), where appending a buffer of a few bytes takes the generic path (about 90).
        // Most varints on the data path have one or two bytes.
        let encoded = encoded(value, length: length)
        var shift = UInt64(8 * length)
        while shift > 0 {
            shift -= 8
            bytes.append(UInt8(truncatingIfNeeded: encoded >> shift))
        }
    }

    /// `value` encoded in `length` bytes (1, 2, 4 or 8), in the low `8 × length` bits: the
    /// length's prefix in the top two of them. The value must fit.
    @inlinable @inline(__always)
    static func encoded(_ value: UInt64, length: Int) -> UInt64 {
        let prefix: UInt64
        switch length {
        case 1: prefix = 0
        case 2: prefix = 0b01
        case 4: prefix = 0b10
        case 8: prefix = 0b11
        default: preconditionFailure("varint length must be 1, 2, 4 or 8")
        }
        precondition(length == 8 ? value <= max : value < 1 << UInt64(8 * length - 2), "varint does not fit")
        return value | (prefix << UInt64(8 * length - 2))
    }
}
