/// An append-only big-endian byte writer.
///
/// Length-prefixed fields are written with ``writeLengthPrefixed(_:_:)``, which reserves the
/// length, runs the body and patches the length afterwards (so nested structures are written
/// in one pass).
public struct ByteWriter: Sendable {
    /// The bytes written so far.
    public var bytes: [UInt8]

    /// Creates an empty writer, optionally reserving capacity.
    @inlinable
    public init(capacity: Int = 0) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    /// Number of bytes written so far.
    @inlinable public var count: Int { bytes.count }

    /// Appends one byte.
    @inlinable public mutating func writeUInt8(_ value: UInt8) { bytes.append(value) }

    /// Appends a big-endian 16-bit integer.
    @inlinable public mutating func writeUInt16(_ value: UInt16) { writeUInt(UInt64(value), byteCount: 2) }

    /// Appends a big-endian 24-bit integer; the value must fit in 24 bits.
    @inlinable public mutating func writeUInt24(_ value: UInt32) {
        precondition(value < 1 << 24, "value does not fit in 24 bits")
        writeUInt(UInt64(value), byteCount: 3)
    }

    /// Appends a big-endian 32-bit integer.
    @inlinable public mutating func writeUInt32(_ value: UInt32) { writeUInt(UInt64(value), byteCount: 4) }

    /// Appends a big-endian 64-bit integer.
    @inlinable public mutating func writeUInt64(_ value: UInt64) { writeUInt(value, byteCount: 8) }

    /// Appends the low `byteCount` bytes of `value`, big-endian.
    @inlinable
    public mutating func writeUInt(_ value: UInt64, byteCount: Int) {
        var shift = (byteCount - 1) * 8
        while shift >= 0 {
            bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift)))
            shift -= 8
        }
    }

    /// Appends a QUIC variable-length integer (RFC 9000 §16) in its shortest encoding.
    @inlinable
    public mutating func writeVarInt(_ value: UInt64) {
        VarInt.write(value, into: &bytes)
    }

    /// Appends the shortest varint encodings of `first`, `second` and, when given, `third` and
    /// `fourth` (a frame's header fields) in one append: each byte of a separate varint is an
    /// append of its own, with its capacity and uniqueness checks.
    @inlinable
    public mutating func writeVarInts(_ first: UInt64, _ second: UInt64, _ third: UInt64? = nil, _ fourth: UInt64? = nil) {
        var scratch: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &scratch) { raw in
            var count = VarInt.store(first, at: raw, offset: 0)
            count += VarInt.store(second, at: raw, offset: count)
            if let third { count += VarInt.store(third, at: raw, offset: count) }
            if let fourth { count += VarInt.store(fourth, at: raw, offset: count) }
            raw.withMemoryRebound(to: UInt8.self) { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: $0[..<count])) }
        }
    }

    /// Appends raw bytes.
    @inlinable
    public mutating func writeBytes<S: Sequence>(_ data: S) where S.Element == UInt8 {
        bytes.append(contentsOf: data)
    }

    /// Writes `count` zero bytes (QUIC PADDING frames, the room for an AEAD tag).
    ///
    /// Copied from a block of zeros: appending a `repeatElement` went element by element, a
    /// few hundred instructions for the 16 bytes of a tag's room on every packet sent.
    public mutating func writeZeros(_ count: Int) {
        var remaining = count
        while remaining > 0 {
            let chunk = Swift.min(remaining, Self.zeros.count)
            Self.zeros.withUnsafeBufferPointer { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: $0[..<chunk])) }
            remaining -= chunk
        }
    }

    private static let zeros = [UInt8](repeating: 0, count: 512)

    /// Writes a `lengthBytes`-byte length followed by whatever `body` writes.
    ///
    /// - Precondition: the body's output fits in the length field. Callers writing peer-influenced
    ///   sizes must check limits first.
    @inlinable
    public mutating func writeLengthPrefixed(_ lengthBytes: Int, _ body: (inout ByteWriter) -> Void) {
        let lengthAt = bytes.count
        bytes.append(contentsOf: repeatElement(0, count: lengthBytes))
        body(&self)
        let length = bytes.count - lengthAt - lengthBytes
        precondition(lengthBytes >= 8 || length < 1 << (8 * lengthBytes), "length-prefixed field overflow")
        for i in 0..<lengthBytes {
            bytes[lengthAt + i] = UInt8(truncatingIfNeeded: length >> (8 * (lengthBytes - 1 - i)))
        }
    }

    /// Writes a `lengthBytes`-byte length followed by `data`.
    @inlinable
    public mutating func writeLengthPrefixedBytes(_ lengthBytes: Int, _ data: [UInt8]) {
        writeLengthPrefixed(lengthBytes) { $0.writeBytes(data) }
    }
}
