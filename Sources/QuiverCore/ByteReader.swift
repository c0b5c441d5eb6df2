/// An error produced while decoding bytes received from the network.
///
/// Decoding never traps: every short read, trailing byte or out-of-range value is reported
/// through this type. Protocol layers map it to their own error codes (a TLS `decode_error`
/// alert, a QUIC `FRAME_ENCODING_ERROR`).
public struct DecodeError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong.
    public enum Kind: Hashable, Sendable {
        /// The input ended before the value was complete.
        case truncated
        /// Bytes were left over after a value that must consume all of its input.
        case trailingBytes
        /// A length or value is outside what the encoding allows.
        case invalidValue
    }

    /// What went wrong.
    public var kind: Kind
    /// A short, human-readable explanation.
    public var reason: String

    /// Creates a decode error.
    public init(_ kind: Kind, _ reason: String) {
        self.kind = kind
        self.reason = reason
    }

    public var description: String { "decode error (\(kind)): \(reason)" }
}

/// A bounds-checked, forward-only cursor over received bytes.
///
/// `read*` methods advance and throw ``DecodeError`` when the input is short; nothing traps.
/// Integers are big-endian (network order). A sub-reader made by ``readLengthPrefixed(_:)``
/// shares storage with its parent, so slicing costs no copy.
///
/// ```swift
/// var reader = ByteReader(bytes)
/// let type = try reader.readUInt8()
/// var body = try reader.readLengthPrefixed(3)   // a 24-bit length, then that many bytes
/// try reader.expectEnd()
/// ```
public struct ByteReader: Sendable {
    @usableFromInline let storage: [UInt8]
    /// Index of the next unread byte in the underlying storage.
    @usableFromInline var position: Int
    @usableFromInline let end: Int

    /// Creates a reader over all of `bytes`.
    @inlinable
    public init(_ bytes: [UInt8]) {
        self.storage = bytes
        self.position = 0
        self.end = bytes.count
    }

    /// Creates a reader over `bytes[start...]` without copying (`start` is clamped to the end).
    /// ``offset`` stays relative to `bytes`.
    @inlinable
    public init(_ bytes: [UInt8], from start: Int) {
        self.storage = bytes
        self.position = max(0, min(start, bytes.count))
        self.end = bytes.count
    }

    /// Creates a reader over `bytes[range]` without copying (the range is clamped to the
    /// bytes). ``offset`` stays relative to `bytes`.
    @inlinable
    public init(_ bytes: [UInt8], in range: Range<Int>) {
        let range = range.clamped(to: 0..<bytes.count)
        self.storage = bytes
        self.position = range.lowerBound
        self.end = range.upperBound
    }

    @inlinable
    init(storage: [UInt8], position: Int, end: Int) {
        self.storage = storage
        self.position = position
        self.end = end
    }

    /// Index of the next unread byte in the bytes the reader was created over.
    @inlinable public var offset: Int { position }

    /// Number of bytes not yet read.
    @inlinable public var remaining: Int { end - position }

    /// `true` when every byte has been read.
    @inlinable public var isAtEnd: Bool { position == end }

    /// The bytes not yet read, copied out.
    public var remainingBytes: [UInt8] { Array(storage[position..<end]) }

    /// Throws unless every byte has been read.
    @inlinable
    public func expectEnd(_ what: @autoclosure () -> String = "value") throws(DecodeError) {
        guard position == end else { throw DecodeError(.trailingBytes, "\(remaining) trailing bytes after \(what())") }
    }

    @inlinable
    mutating func take(_ count: Int) throws(DecodeError) -> Int {
        guard count >= 0, count <= end - position else {
            throw DecodeError(.truncated, "needed \(count) bytes, \(end - position) left")
        }
        let start = position
        position += count
        return start
    }

    /// Reads one byte.
    @inlinable
    public mutating func readUInt8() throws(DecodeError) -> UInt8 {
        let i = try take(1)
        return storage[i]
    }

    /// Reads a big-endian 16-bit integer.
    @inlinable
    public mutating func readUInt16() throws(DecodeError) -> UInt16 {
        UInt16(truncatingIfNeeded: try readUInt(byteCount: 2))
    }

    /// Reads a big-endian 24-bit integer.
    @inlinable
    public mutating func readUInt24() throws(DecodeError) -> UInt32 {
        UInt32(truncatingIfNeeded: try readUInt(byteCount: 3))
    }

    /// Reads a big-endian 32-bit integer.
    @inlinable
    public mutating func readUInt32() throws(DecodeError) -> UInt32 {
        UInt32(truncatingIfNeeded: try readUInt(byteCount: 4))
    }

    /// Reads a big-endian 64-bit integer.
    @inlinable
    public mutating func readUInt64() throws(DecodeError) -> UInt64 {
        try readUInt(byteCount: 8)
    }

    /// Reads a big-endian unsigned integer of `byteCount` (1...8) bytes.
    @inlinable
    public mutating func readUInt(byteCount: Int) throws(DecodeError) -> UInt64 {
        precondition(byteCount >= 1 && byteCount <= 8, "integer width out of range")
        let start = try take(byteCount)
        var value: UInt64 = 0
        for i in start..<(start + byteCount) { value = (value << 8) | UInt64(storage[i]) }
        return value
    }

    /// Reads a QUIC variable-length integer (RFC 9000 §16).
    @inlinable
    public mutating func readVarInt() throws(DecodeError) -> UInt64 {
        let first = try readUInt8()
        let length = 1 << Int(first >> 6)
        var value = UInt64(first & 0x3f)
        if length > 1 {
            let start = try take(length - 1)
            for i in start..<(start + length - 1) { value = (value << 8) | UInt64(storage[i]) }
        }
        return value
    }

    /// Reads `count` bytes.
    @inlinable
    public mutating func readBytes(_ count: Int) throws(DecodeError) -> [UInt8] {
        let start = try take(count)
        return Array(storage[start..<(start + count)])
    }

    /// Reads `count` bytes as a slice of the underlying storage (no copy).
    @inlinable
    public mutating func readSlice(_ count: Int) throws(DecodeError) -> ArraySlice<UInt8> {
        let start = try take(count)
        return storage[start..<(start + count)]
    }

    /// Reads a length of `lengthBytes` bytes (1, 2, 3 or 4) and returns a reader over that many following bytes.
    @inlinable
    public mutating func readLengthPrefixed(_ lengthBytes: Int) throws(DecodeError) -> ByteReader {
        let length = Int(try readUInt(byteCount: lengthBytes))
        let start = try take(length)
        return ByteReader(storage: storage, position: start, end: start + length)
    }

    /// Reads a length of `lengthBytes` bytes and then that many bytes.
    @inlinable
    public mutating func readLengthPrefixedBytes(_ lengthBytes: Int) throws(DecodeError) -> [UInt8] {
        let length = Int(try readUInt(byteCount: lengthBytes))
        return try readBytes(length)
    }

    /// Returns the next byte without consuming it, or `nil` at the end.
    @inlinable
    public func peekUInt8() -> UInt8? {
        position < end ? storage[position] : nil
    }
}
