/// A QUIC stream ID (RFC 9000 §2.1): a 62-bit integer whose two low bits say who opened the
/// stream and in which direction data flows, and whose remaining bits number the streams of that
/// kind (the stream's *index*).
///
/// | Bits | Stream type                      |
/// |------|----------------------------------|
/// | 0x00 | client-initiated, bidirectional  |
/// | 0x01 | server-initiated, bidirectional  |
/// | 0x02 | client-initiated, unidirectional |
/// | 0x03 | server-initiated, unidirectional |
public struct StreamID: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Whether data flows both ways on a stream or only from its initiator.
    public enum Direction: Sendable, Hashable {
        /// Both endpoints send data.
        case bidirectional
        /// Only the initiator sends data.
        case unidirectional
    }

    /// The largest stream index: stream IDs are variable-length integers (≤ 2^62 − 1), so at
    /// most 2^60 streams of each type exist (RFC 9000 §4.6).
    public static let maxIndex: UInt64 = (1 << 60) - 1

    /// The stream ID as sent on the wire.
    public var rawValue: UInt64

    /// Wraps a stream ID received on the wire (always a variable-length integer, so ≤ 2^62 − 1).
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// The stream ID of the `index`-th stream (counting from 0) of the given type.
    ///
    /// - Precondition: `index <= StreamID.maxIndex`.
    public init(index: UInt64, initiator: Role, direction: Direction) {
        precondition(index <= Self.maxIndex, "stream index out of range")
        var raw = index << 2
        if initiator == .server { raw |= 0x01 }
        if direction == .unidirectional { raw |= 0x02 }
        self.rawValue = raw
    }

    /// The endpoint that opened the stream (bit 0x01, RFC 9000 §2.1).
    public var initiator: Role { rawValue & 0x01 == 0 ? .client : .server }

    /// The stream's direction (bit 0x02, RFC 9000 §2.1).
    public var direction: Direction { rawValue & 0x02 == 0 ? .bidirectional : .unidirectional }

    /// The position of the stream among the streams of its type, from 0.
    public var index: UInt64 { rawValue >> 2 }

    /// Whether `role` may send data on this stream: always on bidirectional streams, only the
    /// initiator on unidirectional ones.
    public func canSend(as role: Role) -> Bool { direction == .bidirectional || initiator == role }

    /// Whether `role` may receive data on this stream.
    public func canReceive(as role: Role) -> Bool { direction == .bidirectional || initiator != role }

    public static func < (lhs: StreamID, rhs: StreamID) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String { "stream \(rawValue)" }
}
