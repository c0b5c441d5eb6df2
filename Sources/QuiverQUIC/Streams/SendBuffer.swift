import QuiverCore

/// Application data queued on a stream (or crypto stream) with retransmit intent: bytes stay
/// here from ``write(_:)`` until acknowledged, so a lost packet is repaired by re-framing the
/// lost ranges (RFC 9000 §13.3) rather than by keeping packet copies.
///
/// ```
///   ackedOffset         unsentOffset        writeOffset
///       │ in flight / acked / lost │  new data   │
///   ────┼──────────────────────────┼─────────────┼──▶ stream offset
///   released                        ▲ nextRange takes lost ranges first, then new data
/// ```
///
/// ``nextRange(maxLength:newDataLimit:)`` hands out lost ranges first, then new data within the
/// flow-control limit, then a FIN-only frame if the FIN still needs sending. ``onAcked(offset:length:fin:)``
/// and ``onLost(offset:length:fin:)`` report the fate of ranges sent earlier; memory below the
/// acknowledged prefix is released chunk by chunk.
///
/// The bytes are kept as the chunks they were written in (small writes are merged), so a
/// write stores the caller's array without copying it and a release moves nothing;
/// ``nextSpan(maxLength:newDataLimit:)`` with ``copy(_:into:)`` puts a range straight into a
/// packet.
package struct SendBuffer: Sendable {
    /// The bytes from `storageOffset` to `writeOffset`: `chunks[chunkHead...]`.
    private var chunks: [ArraySlice<UInt8>] = []
    private var chunkHead = 0
    /// The stream offset of `chunks[chunkHead][0]`.
    private var storageOffset: UInt64 = 0
    /// Acknowledged ranges above `ackedOffset`.
    private var acked = ByteRangeSet()
    /// Ranges declared lost and not acknowledged since: to be sent again.
    private var lost = ByteRangeSet()
    private var finSent = false
    private var finLost = false

    /// The total number of bytes written: the stream offset the next write lands at.
    public private(set) var writeOffset: UInt64 = 0
    /// The lowest offset never sent; every byte below it was sent at least once.
    public private(set) var unsentOffset: UInt64 = 0
    /// Every byte below this offset is acknowledged (and released).
    public private(set) var ackedOffset: UInt64 = 0
    /// Whether ``finish()`` was called: ``writeOffset`` is the final size (RFC 9000 §4.5).
    public private(set) var isFinished = false
    /// Whether a frame carrying the FIN was acknowledged.
    public private(set) var isFinAcknowledged = false

    /// Creates an empty buffer.
    public init() {}

    // MARK: - Accounting

    /// Bytes written and not yet acknowledged: the buffer's memory footprint.
    public var bufferedBytes: UInt64 { writeOffset - ackedOffset }
    /// Bytes written and never sent.
    public var unsentBytes: UInt64 { writeOffset - unsentOffset }
    /// Bytes declared lost and waiting to be sent again.
    public var lostBytes: UInt64 { lost.totalLength }
    /// Bytes sent and neither acknowledged nor declared lost (nor acknowledged out of order).
    public var unacknowledgedBytes: UInt64 { unsentOffset - ackedOffset - acked.totalLength }

    /// Whether every written byte is acknowledged (FIN aside): used for crypto streams.
    public var isAllDataAcknowledged: Bool { ackedOffset == writeOffset }

    /// Whether the stream is finished and every byte and the FIN are acknowledged
    /// (RFC 9000 §3.1 "Data Recvd").
    public var isFullyAcknowledged: Bool { isFinished && isFinAcknowledged && ackedOffset == writeOffset }

    /// Whether a FIN-only frame is due: finished, all data sent, and the FIN never sent or lost.
    private var finPending: Bool {
        isFinished && !isFinAcknowledged && unsentOffset == writeOffset && (!finSent || finLost)
    }

    /// Whether lost ranges wait to be sent again.
    public var hasLostData: Bool { !lost.isEmpty }

    /// Whether anything can be sent now: lost ranges, new data below `newDataLimit`, or a FIN.
    public func hasDataToSend(newDataLimit: UInt64 = .max) -> Bool {
        nextOffset(newDataLimit: newDataLimit) != nil
    }

    /// The bytes still held (not yet released after acknowledgment) and the offset of the
    /// first; from offset 0 as long as nothing was acknowledged.
    public var retainedBytes: (offset: UInt64, bytes: [UInt8]) { (storageOffset, Array(chunks[chunkHead...].joined())) }

    // MARK: - Application side

    /// Appends application data.
    ///
    /// - Precondition: not finished, and the total stays ≤ 2^62 − 1 (RFC 9000 §4.5).
    public mutating func write(_ bytes: [UInt8]) { write(bytes[...]) }

    /// Appends a slice, kept as it is (sharing its storage) until acknowledged.
    public mutating func write(_ bytes: ArraySlice<UInt8>) {
        precondition(!isFinished, "write after finish")
        precondition(UInt64(bytes.count) <= VarInt.max - writeOffset, "stream offset beyond 2^62 - 1")
        guard !bytes.isEmpty else { return }
        // Small writes (frame headers, say) join the last chunk, so that ranges span few chunks.
        if bytes.count < 1024, chunks.count > chunkHead, chunks[chunks.count - 1].count < 16 * 1024 {
            chunks[chunks.count - 1].append(contentsOf: bytes)
        } else {
            chunks.append(bytes)
        }
        writeOffset += UInt64(bytes.count)
    }

    /// Marks the end of the data: the final size is ``writeOffset`` (RFC 9000 §4.5).
    public mutating func finish() {
        isFinished = true
    }

    // MARK: - Sending

    /// The offset the next ``nextRange(maxLength:newDataLimit:)`` would start at, or nil when
    /// nothing can be sent (lets the caller size the frame header exactly).
    public func nextOffset(newDataLimit: UInt64 = .max) -> UInt64? {
        if let range = lost.first { return range.lowerBound }
        if unsentOffset < Swift.min(writeOffset, newDataLimit) { return unsentOffset }
        return finPending ? writeOffset : nil
    }

    /// Takes the next range to send: lost ranges first, then new data ending at or below
    /// `newDataLimit` (the flow-control limit; retransmissions are already within it), then a
    /// FIN-only range. `fin` is true when the range ends at the final size.
    ///
    /// - Parameters:
    ///   - maxLength: the most bytes of data to return; 0 allows only a FIN-only range.
    ///   - newDataLimit: the stream offset new data may not pass.
    /// - Returns: the range, or nil when nothing can be sent within the limits.
    public mutating func nextRange(maxLength: Int, newDataLimit: UInt64 = .max) -> (offset: UInt64, data: [UInt8], fin: Bool)? {
        guard let span = nextSpan(maxLength: maxLength, newDataLimit: newDataLimit) else { return nil }
        var writer = ByteWriter(capacity: span.length)
        copy(span.offset..<(span.offset + UInt64(span.length)), into: &writer)
        return (span.offset, writer.bytes, span.fin)
    }

    /// ``nextRange(maxLength:newDataLimit:)`` without the bytes: the range taken, whose data
    /// ``copy(_:into:)`` then writes where it is needed.
    public mutating func nextSpan(maxLength: Int, newDataLimit: UInt64 = .max) -> (offset: UInt64, length: Int, fin: Bool)? {
        let maxLength = UInt64(Swift.max(maxLength, 0))
        if let range = lost.first {
            let end = range.lowerBound + Swift.min(maxLength, UInt64(range.count))
            guard end > range.lowerBound else { return nil }
            lost.remove(range.lowerBound..<end)
            return (range.lowerBound, Int(end - range.lowerBound), takeFin(end: end))
        }
        let limit = Swift.min(writeOffset, newDataLimit)
        if unsentOffset < limit {
            let start = unsentOffset
            let end = start + Swift.min(maxLength, limit - start)
            guard end > start else { return nil }
            unsentOffset = end
            return (start, Int(end - start), takeFin(end: end))
        }
        if finPending {
            finSent = true
            finLost = false
            return (writeOffset, 0, true)
        }
        return nil
    }

    /// Appends the bytes of `range` (held: at or above the acknowledged prefix, below
    /// ``writeOffset``) to `writer`.
    func copy(_ range: Range<UInt64>, into writer: inout ByteWriter) {
        precondition(range.lowerBound >= storageOffset && range.upperBound <= writeOffset, "range \(range) not held")
        var chunkStart = storageOffset
        var index = chunkHead
        var offset = range.lowerBound
        while offset < range.upperBound {
            let chunk = chunks[index]
            let chunkEnd = chunkStart + UInt64(chunk.count)
            if offset < chunkEnd {
                let lower = Int(offset - chunkStart)
                let upper = Int(Swift.min(range.upperBound, chunkEnd) - chunkStart)
                writer.writeBytes(chunk[(chunk.startIndex + lower)..<(chunk.startIndex + upper)])
                offset = chunkStart + UInt64(upper)
            }
            chunkStart = chunkEnd
            index += 1
        }
    }

    private mutating func takeFin(end: UInt64) -> Bool {
        guard isFinished, !isFinAcknowledged, end == writeOffset, unsentOffset == writeOffset else { return false }
        finSent = true
        finLost = false
        return true
    }


    // MARK: - Fate of sent ranges

    /// Records that a range sent earlier was acknowledged; releases memory as the acknowledged
    /// prefix advances. Ranges never sent or already released are ignored.
    ///
    /// - Parameters:
    ///   - offset: the range's start offset.
    ///   - length: its length.
    ///   - fin: whether the acknowledged frame carried the FIN.
    public mutating func onAcked(offset: UInt64, length: Int, fin: Bool = false) {
        if fin && isFinished && finSent { isFinAcknowledged = true; finLost = false }
        guard let range = clamp(offset: offset, length: length) else { return }
        if !lost.isEmpty { lost.remove(range) }
        if range.lowerBound == ackedOffset {
            // In order, as nearly every acknowledgment is: the prefix grows, and takes in the
            // ranges acknowledged earlier that it now reaches.
            ackedOffset = range.upperBound
            while let first = acked.first, first.lowerBound <= ackedOffset {
                ackedOffset = Swift.max(ackedOffset, first.upperBound)
                acked.removeFirst()
            }
        } else {
            acked.insert(range)
        }
        releaseAcknowledged()
    }

    /// Records that a range sent earlier was lost: its unacknowledged parts will be sent again.
    ///
    /// - Parameters:
    ///   - offset: the range's start offset.
    ///   - length: its length.
    ///   - fin: whether the lost frame carried the FIN.
    public mutating func onLost(offset: UInt64, length: Int, fin: Bool = false) {
        if fin && finSent && !isFinAcknowledged { finLost = true }
        guard let range = clamp(offset: offset, length: length) else { return }
        for gap in acked.gaps(in: range) { lost.insert(gap) }
    }

    /// The part of a reported range that was sent and is not below the acknowledged prefix.
    private func clamp(offset: UInt64, length: Int) -> Range<UInt64>? {
        let (end, overflow) = offset.addingReportingOverflow(UInt64(Swift.max(length, 0)))
        let lower = Swift.max(offset, ackedOffset)
        let upper = Swift.min(overflow ? .max : end, unsentOffset)
        return lower < upper ? lower..<upper : nil
    }

    private mutating func releaseAcknowledged() {
        while chunkHead < chunks.count, storageOffset + UInt64(chunks[chunkHead].count) <= ackedOffset {
            storageOffset += UInt64(chunks[chunkHead].count)
            chunks[chunkHead] = []
            chunkHead += 1
        }
        if chunkHead == chunks.count {
            chunks.removeAll(keepingCapacity: true)
            chunkHead = 0
        } else if chunkHead >= 32, chunkHead * 2 >= chunks.count {
            chunks.removeFirst(chunkHead)
            chunkHead = 0
        }
    }
}
