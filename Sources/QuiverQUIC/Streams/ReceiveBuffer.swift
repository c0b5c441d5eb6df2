import QuiverCore

/// Reassembly of a byte stream that arrives as out-of-order, overlapping and duplicated ranges:
/// the receive side of a QUIC stream (STREAM frames, RFC 9000 §2.2) or of a crypto stream
/// (CRYPTO frames, RFC 9000 §19.6).
///
/// Received bytes are kept in sorted, non-overlapping chunks above ``readOffset``; a new range
/// fills only the gaps it covers, so duplicates cost a binary search and nothing else. Ranges
/// that arrive in order are appended to the chunk before them (up to 64 KiB per chunk), so a
/// large in-order transfer keeps a handful of chunks, and reading a whole chunk hands its array
/// over without copying.
///
/// ```
///   readOffset     contiguousEnd                       maxOffset
///        │  readable  │   gap   │ chunk │ gap │ chunk │     │
///   ─────┼────────────┼─────────┼───────┼─────┼───────┼─────┼──▶ stream offset
/// ```
///
/// The buffer enforces the final-size rules of RFC 9000 §4.5 (``insert(offset:data:fin:)``
/// throws FINAL_SIZE_ERROR) and never stores bytes at or beyond ``maxOffset``: the owner keeps
/// `maxOffset` at the flow-control limit it advertised (RFC 9000 §4.1), so the buffer never holds
/// more than the window. For CRYPTO data, create it with
/// `overflowCode: .cryptoBufferExceeded` and raise `maxOffset` as data is read (RFC 9000 §7.5).
package struct ReceiveBuffer: Sendable {
    /// A stored run of bytes; `bytes[0]` is at stream offset `offset`.
    private struct Chunk: Sendable {
        var offset: UInt64
        var bytes: [UInt8]
        var end: UInt64 { offset + UInt64(bytes.count) }
    }

    /// Chunks above which in-order data starts a new chunk instead of growing the last one.
    static let maxChunkSize = 64 * 1024

    /// Sorted, non-overlapping chunks; the live ones are `chunks[head...]`.
    private var chunks: [Chunk] = []
    private var head = 0
    /// The size of the chunk last read or dropped (at most ``maxChunkSize``): the capacity a
    /// new in-order chunk reserves.
    private var recentChunkSize = 0

    /// The number of bytes the application has read (or skipped): the stream offset of the
    /// next byte ``read(maxBytes:)`` returns.
    public private(set) var readOffset: UInt64 = 0
    /// The end of the contiguous data starting at ``readOffset``.
    public private(set) var contiguousEnd: UInt64 = 0
    /// One past the largest offset received so far: the flow-control credit the sender has
    /// consumed (RFC 9000 §4.1).
    public private(set) var highestReceived: UInt64 = 0
    /// The final size (RFC 9000 §4.5), once a range with FIN or ``setFinalSize(_:)`` told it.
    public private(set) var finalSize: UInt64?
    /// The number of received bytes held and not yet read (never more than
    /// `maxOffset - readOffset`).
    public private(set) var bufferedBytes: Int = 0

    /// The exclusive upper bound on stored offsets: a range ending beyond it throws
    /// ``overflowCode``. Keep it at the advertised flow-control limit.
    public var maxOffset: UInt64
    /// The error thrown for data beyond ``maxOffset``: FLOW_CONTROL_ERROR for streams,
    /// CRYPTO_BUFFER_EXCEEDED for crypto streams.
    public var overflowCode: TransportErrorCode

    /// Creates an empty buffer accepting data below `maxOffset`.
    ///
    /// - Parameters:
    ///   - maxOffset: the largest end offset accepted (the flow-control limit).
    ///   - overflowCode: the error for data beyond `maxOffset`.
    public init(maxOffset: UInt64 = (1 << 62) - 1, overflowCode: TransportErrorCode = .flowControlError) {
        self.maxOffset = maxOffset
        self.overflowCode = overflowCode
    }

    // MARK: - State

    /// The number of contiguous bytes ready for ``read(maxBytes:)``.
    public var readableBytes: Int { Int(contiguousEnd - readOffset) }

    /// Whether every byte up to the final size has been received (RFC 9000 §3.2 "Data Recvd").
    public var isComplete: Bool { finalSize == contiguousEnd }

    /// Whether every byte up to the final size has been read (RFC 9000 §3.2 "Data Read").
    public var isFinished: Bool { finalSize == readOffset }

    /// The number of stored chunks (a measure of fragmentation, for tests and diagnostics).
    public var chunkCount: Int { chunks.count - head }

    // MARK: - Input

    /// Checks a range against the final-size rules of RFC 9000 §4.5 without storing anything.
    ///
    /// - Parameters:
    ///   - end: the range's end offset (offset + length).
    ///   - fin: whether the range carries FIN, making `end` the final size.
    /// - Throws: FINAL_SIZE_ERROR when data lies beyond a known final size, when FIN changes a
    ///   known final size, or when FIN puts the final size below data already received.
    public func checkFinalSize(end: UInt64, fin: Bool) throws(QUICError) {
        if let finalSize {
            if end > finalSize {
                throw QUICError(.finalSizeError, "data up to \(end) beyond final size \(finalSize)")
            }
            if fin && end != finalSize {
                throw QUICError(.finalSizeError, "final size changed from \(finalSize) to \(end)")
            }
        } else if fin && end < highestReceived {
            throw QUICError(.finalSizeError, "final size \(end) below received data up to \(highestReceived)")
        }
    }

    /// Adds a received range (RFC 9000 §2.2): data at `offset`, possibly overlapping or
    /// repeating earlier ranges; bytes already received or read are ignored.
    ///
    /// - Parameters:
    ///   - offset: the stream offset of `data[0]`.
    ///   - data: the bytes, copied (a slice of the decrypted packet: this is the one copy of
    ///     received stream data); may be empty (a FIN-only frame).
    ///   - fin: whether `offset + data.count` is the final size (RFC 9000 §4.5).
    /// - Throws: FINAL_SIZE_ERROR per ``checkFinalSize(end:fin:)``; ``overflowCode`` when the
    ///   range ends beyond ``maxOffset`` or beyond 2^62 − 1 (RFC 9000 §19.8).
    public mutating func insert(offset: UInt64, data: ArraySlice<UInt8>, fin: Bool) throws(QUICError) {
        let (end, overflow) = offset.addingReportingOverflow(UInt64(data.count))
        guard !overflow, end <= VarInt.max else {
            throw QUICError(overflowCode, "data ends beyond 2^62 - 1")
        }
        try checkFinalSize(end: end, fin: fin)
        guard end <= maxOffset else {
            throw QUICError(overflowCode, "data up to \(end) exceeds limit \(maxOffset)")
        }
        if end > highestReceived { highestReceived = end }
        if fin { finalSize = end }

        let start = Swift.max(offset, contiguousEnd)
        guard start < end else { return }
        store(data, dataOffset: offset, from: start, to: end)
        advanceContiguousEnd()
    }

    /// Records a final size learnt without data (RESET_STREAM, RFC 9000 §19.4).
    ///
    /// - Throws: FINAL_SIZE_ERROR when it contradicts a known final size or lies below data
    ///   already received; ``overflowCode`` when it exceeds ``maxOffset``.
    public mutating func setFinalSize(_ size: UInt64) throws(QUICError) {
        try checkFinalSize(end: size, fin: true)
        guard size <= maxOffset else {
            throw QUICError(overflowCode, "final size \(size) exceeds limit \(maxOffset)")
        }
        if size > highestReceived { highestReceived = size }
        finalSize = size
    }

    // MARK: - Output

    /// Removes and returns `min(maxBytes, readableBytes)` contiguous bytes from
    /// ``readOffset``; empty when nothing is readable.
    public mutating func read(maxBytes: Int) -> [UInt8] {
        read(maxBytes: maxBytes, stopAtChunk: false)
    }

    /// Removes and returns up to `maxBytes` contiguous bytes from ``readOffset``, perhaps
    /// fewer than are readable: when the first stored chunk starts at ``readOffset`` and fits
    /// in `maxBytes`, that chunk is returned as it is, without copying. For a stream's reader,
    /// which reads again.
    public mutating func readChunk(maxBytes: Int) -> [UInt8] {
        read(maxBytes: maxBytes, stopAtChunk: true)
    }

    private mutating func read(maxBytes: Int, stopAtChunk: Bool) -> [UInt8] {
        let count = Swift.min(Swift.max(maxBytes, 0), readableBytes)
        guard count > 0 else { return [] }
        // Fast path: hand over a whole chunk.
        if chunks[head].offset == readOffset, chunks[head].bytes.count == count || (stopAtChunk && chunks[head].bytes.count < count) {
            let bytes = chunks[head].bytes
            dropHeadChunk()
            readOffset += UInt64(bytes.count)
            bufferedBytes -= bytes.count
            return bytes
        }
        var result: [UInt8] = []
        result.reserveCapacity(count)
        consume(count) { result.append(contentsOf: $0) }
        return result
    }

    /// Discards up to `maxBytes` contiguous bytes from ``readOffset`` without copying them;
    /// returns how many were discarded.
    @discardableResult
    public mutating func skip(maxBytes: Int) -> Int {
        let count = Swift.min(Swift.max(maxBytes, 0), readableBytes)
        if count > 0 { consume(count) { _ in } }
        return count
    }

    /// Drops every stored byte (a stream reset, RFC 9000 §3.2 "Reset Recvd"); offsets and the
    /// final size stay, so later frames are still checked against them.
    public mutating func removeAll() {
        chunks = []
        head = 0
        bufferedBytes = 0
        contiguousEnd = readOffset
    }

    // MARK: - Internals

    private mutating func consume(_ count: Int, _ body: (ArraySlice<UInt8>) -> Void) {
        var remaining = count
        while remaining > 0 {
            let chunk = chunks[head]
            let from = Int(readOffset - chunk.offset)
            let take = Swift.min(remaining, chunk.bytes.count - from)
            body(chunk.bytes[from..<(from + take)])
            remaining -= take
            readOffset += UInt64(take)
            if from + take == chunk.bytes.count { dropHeadChunk() }
        }
        bufferedBytes -= count
    }

    private mutating func dropHeadChunk() {
        recentChunkSize = chunks[head].bytes.count
        chunks[head].bytes = []
        head += 1
        if head == chunks.count {
            chunks.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 32, head * 2 >= chunks.count {
            chunks.removeFirst(head)
            head = 0
        }
    }

    /// The index of the first live chunk whose end is above `offset`.
    private func firstChunk(endingAbove offset: UInt64) -> Int {
        var low = head
        var high = chunks.count
        while low < high {
            let mid = (low + high) / 2
            if chunks[mid].end > offset { high = mid } else { low = mid + 1 }
        }
        return low
    }

    /// Stores the parts of `data` between stream offsets `start` and `end` that no chunk holds
    /// yet; `data.first` is at stream offset `dataOffset`.
    private mutating func store(_ data: ArraySlice<UInt8>, dataOffset: UInt64, from start: UInt64, to end: UInt64) {
        var index = firstChunk(endingAbove: start)
        var cursor = start
        while cursor < end {
            if index < chunks.count, chunks[index].offset <= cursor {
                cursor = chunks[index].end
                index += 1
                continue
            }
            let gapEnd = index < chunks.count ? Swift.min(end, chunks[index].offset) : end
            let piece = data[(data.startIndex + Int(cursor - dataOffset))..<(data.startIndex + Int(gapEnd - dataOffset))]
            if index > head, chunks[index - 1].end == cursor,
               chunks[index - 1].bytes.count + piece.count <= Self.maxChunkSize
            {
                chunks[index - 1].bytes.append(contentsOf: piece)
            } else {
                var bytes: [UInt8] = []
                // In-order data starting a chunk: reserve what the last chunk grew to, once,
                // rather than growing the new one by doubling (a reallocation and a copy each).
                if cursor == contiguousEnd, index == chunks.count {
                    bytes.reserveCapacity(Swift.max(piece.count, recentChunkSize))
                }
                bytes.append(contentsOf: piece)
                chunks.insert(Chunk(offset: cursor, bytes: bytes), at: index)
                index += 1
            }
            bufferedBytes += piece.count
            cursor = gapEnd
        }
    }

    private mutating func advanceContiguousEnd() {
        var index = firstChunk(endingAbove: contiguousEnd)
        while index < chunks.count, chunks[index].offset <= contiguousEnd {
            contiguousEnd = chunks[index].end
            index += 1
        }
    }
}
