public import QuiverCore

/// The three cumulative ECN counters an ACK frame of type 0x03 carries (RFC 9000 §19.3.2).
@_spi(Wire) public struct ECNCounts: Hashable, Sendable {
    /// Packets received with the ECT(0) codepoint in this packet number space.
    public var ect0: UInt64
    /// Packets received with the ECT(1) codepoint in this packet number space.
    public var ect1: UInt64
    /// Packets received with the ECN-CE codepoint in this packet number space.
    public var ce: UInt64

    /// Creates ECN counts.
    public init(ect0: UInt64, ect1: UInt64, ce: UInt64) {
        self.ect0 = ect0
        self.ect1 = ect1
        self.ce = ce
    }
}

/// The content of an ACK frame (RFC 9000 §19.3): the acknowledged packet numbers as ranges,
/// the raw ACK Delay field and, for type 0x03, the ECN counts.
///
/// `ranges` is in descending order, largest first; the ranges neither overlap nor touch (there
/// is at least one unacknowledged packet number between two ranges), which is exactly what the
/// Gap encoding of §19.3.1 can express. A decoded frame always has at least one range.
@_spi(Wire) public struct AckFrame: Hashable, Sendable {
    /// Acknowledged packet numbers, descending, largest first.
    public var ranges: AckRanges
    /// The ACK Delay field as sent: microseconds divided by 2^ack_delay_exponent of the
    /// sender's transport parameters (RFC 9000 §19.3, §18.2). Scaling is the caller's job.
    public var ackDelay: UInt64
    /// ECN counts, present for frame type 0x03.
    public var ecn: ECNCounts?

    /// Creates an ACK frame.
    ///
    /// - Parameters:
    ///   - ranges: descending, non-overlapping, non-adjacent ranges, largest first; at least one.
    ///   - ackDelay: the encoded ACK Delay field.
    ///   - ecn: ECN counts, making this a type 0x03 frame.
    public init(ranges: AckRanges, ackDelay: UInt64, ecn: ECNCounts? = nil) {
        self.ranges = ranges
        self.ackDelay = ackDelay
        self.ecn = ecn
    }

    /// The largest acknowledged packet number (0 if there are no ranges).
    public var largestAcknowledged: UInt64 { ranges.first?.upperBound ?? 0 }

    /// Whether `packetNumber` is acknowledged by this frame.
    public func contains(_ packetNumber: UInt64) -> Bool {
        ranges.contains { $0.contains(packetNumber) }
    }

    /// The frame type: ACK (0x02) or, with ECN counts, 0x03.
    public var type: FrameType { ecn == nil ? .ack : .ackECN }

    /// Appends the frame, type included.
    ///
    /// - Precondition: `ranges` is non-empty, descending and non-adjacent (API misuse otherwise).
    public func encode(into writer: inout ByteWriter) {
        precondition(!ranges.isEmpty, "ACK frame needs at least one range")
        writer.writeVarInt(type.rawValue)
        let first = ranges[0]
        writer.writeVarInt(first.upperBound)
        writer.writeVarInt(ackDelay)
        writer.writeVarInt(UInt64(ranges.count - 1))
        writer.writeVarInt(first.upperBound - first.lowerBound)
        var previousSmallest = first.lowerBound
        for range in ranges.dropFirst() {
            precondition(range.upperBound + 2 <= previousSmallest, "ACK ranges must be descending and separated by a gap")
            writer.writeVarInt(previousSmallest - range.upperBound - 2)
            writer.writeVarInt(range.upperBound - range.lowerBound)
            previousSmallest = range.lowerBound
        }
        if let ecn {
            writer.writeVarInt(ecn.ect0)
            writer.writeVarInt(ecn.ect1)
            writer.writeVarInt(ecn.ce)
        }
    }

    /// The exact number of bytes ``encode(into:)`` appends.
    public var encodedLength: Int {
        precondition(!ranges.isEmpty, "ACK frame needs at least one range")
        let first = ranges[0]
        var length = 1 + VarInt.encodedLength(first.upperBound) + VarInt.encodedLength(ackDelay)
            + VarInt.encodedLength(UInt64(ranges.count - 1)) + VarInt.encodedLength(first.upperBound - first.lowerBound)
        var previousSmallest = first.lowerBound
        for range in ranges.dropFirst() {
            precondition(range.upperBound + 2 <= previousSmallest, "ACK ranges must be descending and separated by a gap")
            length += VarInt.encodedLength(previousSmallest - range.upperBound - 2)
            length += VarInt.encodedLength(range.upperBound - range.lowerBound)
            previousSmallest = range.lowerBound
        }
        if let ecn {
            length += VarInt.encodedLength(ecn.ect0) + VarInt.encodedLength(ecn.ect1) + VarInt.encodedLength(ecn.ce)
        }
        return length
    }

    /// Decodes the fields after the type byte.
    ///
    /// Every packet number derived from Gap and ACK Range Length must stay ≥ 0, otherwise the
    /// frame is malformed (RFC 9000 §19.3.1: FRAME_ENCODING_ERROR).
    static func decodeBody(from reader: inout ByteReader, withECN: Bool) throws(DecodeError) -> AckFrame {
        let largest = try reader.readVarInt()
        let ackDelay = try reader.readVarInt()
        let rangeCount = try reader.readVarInt()
        let firstRange = try reader.readVarInt()
        guard firstRange <= largest else {
            throw DecodeError(.invalidValue, "first ACK range \(firstRange) exceeds largest acknowledged \(largest)")
        }
        // Each further range takes at least two bytes: refuse absurd counts before allocating.
        guard rangeCount <= UInt64(reader.remaining / 2) else {
            throw DecodeError(.truncated, "ACK range count \(rangeCount) exceeds the frame")
        }
        var ranges = AckRanges()
        var smallest = largest - firstRange
        ranges.append(smallest...largest)
        for _ in 0..<rangeCount {
            let gap = try reader.readVarInt()
            let length = try reader.readVarInt()
            // largest = previous_smallest - gap - 2 (gap ≤ 2^62 − 1, so gap + 2 cannot overflow).
            guard gap + 2 <= smallest else {
                throw DecodeError(.invalidValue, "ACK gap \(gap) goes below packet number 0")
            }
            let rangeLargest = smallest - gap - 2
            guard length <= rangeLargest else {
                throw DecodeError(.invalidValue, "ACK range length \(length) goes below packet number 0")
            }
            smallest = rangeLargest - length
            ranges.append(smallest...rangeLargest)
        }
        var ecn: ECNCounts?
        if withECN {
            ecn = ECNCounts(ect0: try reader.readVarInt(), ect1: try reader.readVarInt(), ce: try reader.readVarInt())
        }
        return AckFrame(ranges: ranges, ackDelay: ackDelay, ecn: ecn)
    }
}

/// The ranges of an ACK frame, descending, largest first (``AckFrame/ranges``). The first two
/// are stored inline and only further ones in an array: decoding or building the common ACK
/// frame (one range, or two around a loss) allocates nothing — a sender decodes one per packet
/// or two it sends, a receiver builds as many.
@_spi(Wire) public struct AckRanges: RandomAccessCollection, Hashable, Sendable, ExpressibleByArrayLiteral {
    private var first: ClosedRange<UInt64> = 0...0
    private var second: ClosedRange<UInt64> = 0...0
    private var more: [ClosedRange<UInt64>] = []
    /// The number of ranges.
    public private(set) var count = 0

    /// No ranges.
    public init() {}

    /// The ranges of `ranges`, in its order.
    public init(_ ranges: some Sequence<ClosedRange<UInt64>>) {
        for range in ranges { append(range) }
    }

    public init(arrayLiteral ranges: ClosedRange<UInt64>...) {
        self.init(ranges)
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { count }

    public subscript(position: Int) -> ClosedRange<UInt64> {
        precondition(position >= 0 && position < count, "ACK range index out of bounds")
        switch position {
        case 0: return first
        case 1: return second
        default: return more[position - 2]
        }
    }

    /// Adds a range after the last.
    public mutating func append(_ range: ClosedRange<UInt64>) {
        switch count {
        case 0: first = range
        case 1: second = range
        default: more.append(range)
        }
        count += 1
    }

    public static func == (lhs: AckRanges, rhs: AckRanges) -> Bool { lhs.elementsEqual(rhs) }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(count)
        for range in self { hasher.combine(range) }
    }
}
