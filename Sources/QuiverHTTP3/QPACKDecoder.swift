/// Reads instructions from the bytes an encoder or decoder stream delivered so far: each
/// primitive returns `nil` while its bytes have not all arrived (the instruction is then read
/// again from its start when more come) and throws with the stream's error code otherwise.
struct QPACKInstructionReader {
    let bytes: [UInt8]
    var position = 0
    /// `QPACK_ENCODER_STREAM_ERROR` or `QPACK_DECODER_STREAM_ERROR`.
    let code: HTTP3Error.Code

    init(_ bytes: [UInt8], code: HTTP3Error.Code) {
        self.bytes = bytes
        self.code = code
    }

    var isAtEnd: Bool { position >= bytes.count }

    /// An integer with a `prefixBits`-bit prefix, `nil` when it has not all arrived.
    mutating func integer(prefixBits: Int) throws(HTTP3Error) -> Int? {
        var probe = position
        do throws(HTTP3Error) {
            let value = try QPACK.decodeInteger(bytes, at: &probe, prefixBits: prefixBits)
            position = probe
            return value
        } catch {
            // Complete but over 2^62, or longer than any integer up to 2^62 can be: an error.
            if QPACK.integerIsComplete(bytes, at: position, prefixBits: prefixBits) || bytes.count - position > 11 {
                throw HTTP3Error(code, error.reason)
            }
            return nil
        }
    }

    /// A string literal (Huffman flag just above a `prefixBits`-bit length) of at most
    /// `maxLength` bytes once decoded, `nil` when it has not all arrived. The length is checked
    /// as soon as it is known, so an oversized string is refused before it is buffered: raw at
    /// most `maxLength` bytes, Huffman-coded at most 4 × `maxLength` (no symbol is longer than
    /// 30 bits), the decoded length checked again.
    mutating func string(prefixBits: Int, maxLength: Int) throws(HTTP3Error) -> [UInt8]? {
        guard position < bytes.count else { return nil }
        let huffman = bytes[position] & UInt8(1 << prefixBits) != 0
        var probe = self
        guard let length = try probe.integer(prefixBits: prefixBits) else { return nil }
        guard length <= (huffman ? 4 * maxLength : maxLength) else {
            throw HTTP3Error(code, "a string of \(length) bytes in an entry larger than the table capacity")
        }
        guard bytes.count - probe.position >= length else { return nil }
        let raw = bytes[probe.position..<probe.position + length]
        position = probe.position + length
        guard huffman else { return Array(raw) }
        guard let decoded = Huffman.decode(raw) else { throw HTTP3Error(code, "invalid Huffman coding") }
        guard decoded.count <= maxLength else { throw HTTP3Error(code, "a string larger than the table capacity") }
        return decoded
    }
}

/// What both ends count of a dynamic table in use, for tests and diagnostics.
public struct QPACKStatistics: Sendable, Hashable, CustomStringConvertible {
    /// Entries we inserted into the peer's table (Insert and Duplicate instructions sent).
    public var insertsSent = 0
    /// Entries the peer inserted into our table (its Insert and Duplicate instructions).
    public var insertsReceived = 0
    /// Field sections we encoded with references to the peer's table.
    public var sectionsEncodedWithTable = 0
    /// Field sections we decoded with references to our table (each acknowledged).
    public var sectionsDecodedWithTable = 0
    /// Field sections that had to wait for inserts still on their way.
    public var sectionsBlocked = 0

    public init() {}

    /// One line for a log: `QPACK inserts received 3 sent 1, sections decoded with the table 28 encoded 30`.
    public var description: String {
        "QPACK inserts received \(insertsReceived) sent \(insertsSent), sections decoded with the table \(sectionsDecodedWithTable) encoded \(sectionsEncodedWithTable)"
    }
}

/// The decoding half of QPACK (RFC 9204 §2.2) with a dynamic table, sans I/O: the peer's
/// encoder-stream bytes go in (``receiveEncoderInstructions(_:)``), field sections are
/// decoded or reported blocked (``decode(_:streamID:maxSize:)``), and the decoder-stream
/// bytes to send come out (``takeInstructions()``).
///
/// Memory is bounded: the table by ``maxTableCapacity`` (entry sizes as §3.2.1 counts them),
/// a partial encoder instruction by a few times the table capacity (its strings are checked
/// against the capacity as soon as their lengths arrive), blocked streams by
/// ``maxBlockedStreams``.
struct QPACKDecoder: Sendable {
    /// SETTINGS_QPACK_MAX_TABLE_CAPACITY as we announced it.
    let maxTableCapacity: Int
    /// SETTINGS_QPACK_BLOCKED_STREAMS as we announced it.
    let maxBlockedStreams: Int

    private struct Entry {
        let name: [UInt8]
        let value: [UInt8]
        /// Name + value + 32 (§3.2.1), counted on the bytes received.
        var size: Int { name.count + value.count + 32 }
    }

    /// Live entries, oldest first, from `entries[head]` (absolute index `insertCount − count`).
    private var entries: [Entry] = []
    private var head = 0
    /// Insertions and duplications so far (§3.2.4): the next entry's absolute index.
    private(set) var insertCount = 0
    private(set) var capacity = 0
    /// The table's size (§3.2.1).
    private(set) var size = 0
    /// The encoder's Known Received Count as our instructions so far make it (§2.1.4).
    private var knownReceivedCount = 0
    /// The start of an encoder instruction whose bytes have not all arrived.
    private var partial: [UInt8] = []
    /// Decoder-stream bytes not yet taken.
    private var output: [UInt8] = []
    /// Streams whose field section waits for inserts (§2.1.2).
    private(set) var blockedStreams: Set<UInt64> = []
    private(set) var statistics = QPACKStatistics()

    init(maxTableCapacity: Int, maxBlockedStreams: Int) {
        self.maxTableCapacity = maxTableCapacity
        self.maxBlockedStreams = maxBlockedStreams
    }

    /// The number of live entries.
    var entryCount: Int { entries.count - head }

    // MARK: - Encoder stream (§4.3)

    /// Applies the encoder instructions in `bytes` (a piece of the peer's encoder stream),
    /// keeping an unfinished last instruction until the rest arrives.
    /// - Throws: `QPACK_ENCODER_STREAM_ERROR` for a capacity above ours, an entry larger than
    ///   the capacity, a reference to an evicted or unknown entry, or malformed input.
    mutating func receiveEncoderInstructions(_ bytes: [UInt8]) throws(HTTP3Error) {
        partial += bytes
        var reader = QPACKInstructionReader(partial, code: .qpackEncoderStreamError)
        while !reader.isAtEnd {
            let start = reader.position
            guard try applyInstruction(&reader) else {
                reader.position = start
                break
            }
        }
        partial.removeFirst(reader.position)
    }

    /// Applies one instruction; `false` when its bytes have not all arrived.
    private mutating func applyInstruction(_ reader: inout QPACKInstructionReader) throws(HTTP3Error) -> Bool {
        let first = reader.bytes[reader.position]
        let limit = capacity - 32  // the longest name or value an entry can have
        if first & 0x80 != 0 {  // Insert with Name Reference (1T)
            guard let index = try reader.integer(prefixBits: 6) else { return false }
            let name: [UInt8]
            if first & 0x40 != 0 {
                guard index < QPACK.staticTable.count else { throw encoderError("static table index \(index) out of range") }
                name = Array(QPACK.staticTable[index].name.utf8)
            } else {
                name = try entry(relativeToInsertCount: index).name  // read before this insert may evict it (§3.2.2)
            }
            guard let value = try reader.string(prefixBits: 7, maxLength: max(0, limit - name.count)) else { return false }
            try insert(Entry(name: name, value: value))
        } else if first & 0x40 != 0 {  // Insert with Literal Name (01H)
            guard let name = try reader.string(prefixBits: 5, maxLength: max(0, limit)),
                  let value = try reader.string(prefixBits: 7, maxLength: max(0, limit - name.count)) else { return false }
            try insert(Entry(name: name, value: value))
        } else if first & 0x20 != 0 {  // Set Dynamic Table Capacity (001)
            guard let newCapacity = try reader.integer(prefixBits: 5) else { return false }
            guard newCapacity <= maxTableCapacity else {
                throw encoderError("dynamic table capacity \(newCapacity) exceeds our maximum \(maxTableCapacity)")
            }
            capacity = newCapacity
            evict(toFit: 0)
        } else {  // Duplicate (000)
            guard let index = try reader.integer(prefixBits: 5) else { return false }
            try insert(try entry(relativeToInsertCount: index))
        }
        return true
    }

    private func encoderError(_ reason: String) -> HTTP3Error { HTTP3Error(.qpackEncoderStreamError, reason) }

    /// The entry `index` places before the newest (encoder-stream relative indexing, §3.2.5).
    private func entry(relativeToInsertCount index: Int) throws(HTTP3Error) -> Entry {
        guard index < entryCount else { throw encoderError("relative index \(index) beyond the \(entryCount) live entries") }
        return entries[entries.count - 1 - index]
    }

    private mutating func insert(_ entry: Entry) throws(HTTP3Error) {
        guard entry.size <= capacity else { throw encoderError("an entry of \(entry.size) bytes in a table of capacity \(capacity)") }
        evict(toFit: entry.size)
        entries.append(entry)
        size += entry.size
        insertCount += 1
        statistics.insertsReceived += 1
    }

    /// Evicts the oldest entries until `needed` more bytes fit (§3.2.2).
    private mutating func evict(toFit needed: Int) {
        while size + needed > capacity, head < entries.count {
            size -= entries[head].size
            head += 1
        }
        if head > 32, head * 2 > entries.count {
            entries.removeFirst(head)
            head = 0
        }
    }

    /// The entry with absolute index `absolute`, `nil` when evicted or not yet inserted.
    private func entry(absolute: Int) -> Entry? {
        let oldest = insertCount - entryCount
        guard absolute >= oldest, absolute < insertCount else { return nil }
        return entries[head + absolute - oldest]
    }

    // MARK: - Field sections (§4.5)

    /// A field section decoded, or waiting for inserts.
    enum Section: Equatable {
        case decoded([FieldLine])
        /// The section needs this Required Insert Count; its stream now counts as blocked.
        case blocked(requiredInsertCount: Int)
    }

    /// Decodes the field section `bytes` of stream `streamID`. When its Required Insert Count
    /// is above ``insertCount`` the stream is blocked (decode it again once inserts arrived);
    /// a decoded section with a non-zero Required Insert Count is acknowledged (§4.4.1).
    ///
    /// - Throws: `QPACK_DECOMPRESSION_FAILED` for malformed input, invalid references
    ///   (§2.2.3) or one blocked stream more than ``maxBlockedStreams`` (§2.1.2);
    ///   `H3_EXCESSIVE_LOAD` over `maxSize` (name + value + 32 per field).
    mutating func decode(_ bytes: [UInt8], streamID: UInt64, maxSize: Int) throws(HTTP3Error) -> Section {
        var position = 0
        let requiredInsertCount = try self.requiredInsertCount(QPACK.decodeInteger(bytes, at: &position, prefixBits: 8))
        guard position < bytes.count else { throw QPACK.failed("truncated field section prefix") }
        let negative = bytes[position] & 0x80 != 0
        let delta = try QPACK.decodeInteger(bytes, at: &position, prefixBits: 7)
        let base: Int
        if negative {
            // §4.5.1.2: the Base must not be negative.
            guard requiredInsertCount > delta else { throw QPACK.failed("negative Base") }
            base = requiredInsertCount - delta - 1
        } else {
            base = requiredInsertCount + delta  // both at most 2^62: no overflow
        }
        if requiredInsertCount > insertCount {
            if blockedStreams.insert(streamID).inserted {
                guard blockedStreams.count <= maxBlockedStreams else {
                    throw QPACK.failed("more than \(maxBlockedStreams) blocked streams")
                }
                statistics.sectionsBlocked += 1
            }
            return .blocked(requiredInsertCount: requiredInsertCount)
        }
        blockedStreams.remove(streamID)
        let fields = try QPACK.decodeFieldLines(bytes, from: position, requiredInsertCount: requiredInsertCount, base: base,
                                                maxSize: maxSize) { absolute in
            entry(absolute: absolute).map { ($0.name, $0.value) }
        }
        if requiredInsertCount > 0 {
            QPACK.encodeInteger(Int(streamID), prefixBits: 7, flags: 0x80, into: &output)  // Section Acknowledgment
            knownReceivedCount = max(knownReceivedCount, requiredInsertCount)
            statistics.sectionsDecodedWithTable += 1
        }
        return .decoded(fields)
    }

    /// The Required Insert Count from its encoded form (§4.5.1.1).
    private func requiredInsertCount(_ encoded: Int) throws(HTTP3Error) -> Int {
        guard encoded != 0 else { return 0 }
        let maxEntries = maxTableCapacity / 32
        let fullRange = 2 * maxEntries
        guard encoded <= fullRange else { throw QPACK.failed("encoded Required Insert Count \(encoded) beyond \(fullRange)") }
        let maxValue = insertCount + maxEntries
        let maxWrapped = maxValue / fullRange * fullRange
        var required = maxWrapped + encoded - 1
        if required > maxValue {
            guard required > fullRange else { throw QPACK.failed("invalid encoded Required Insert Count \(encoded)") }
            required -= fullRange
        }
        guard required != 0 else { throw QPACK.failed("Required Insert Count 0 encoded as non-zero") }
        return required
    }

    // MARK: - Decoder stream (§4.4)

    /// The stream was reset or its reading abandoned before all its field sections were
    /// decoded: it is no longer blocked, and the encoder is told (Stream Cancellation,
    /// §4.4.2) unless our table capacity is 0, where it may be omitted (§2.2.2.2).
    mutating func cancelStream(_ streamID: UInt64) {
        blockedStreams.remove(streamID)
        guard maxTableCapacity > 0 else { return }
        QPACK.encodeInteger(Int(streamID), prefixBits: 6, flags: 0x40, into: &output)
    }

    /// The decoder-stream bytes to send: Section Acknowledgments and Stream Cancellations in
    /// the order they arose, then an Insert Count Increment for the inserts not yet
    /// acknowledged (§4.4.3) — keeping our view of the Known Received Count equal to the
    /// encoder's, as the instructions reach it in this order.
    mutating func takeInstructions() -> [UInt8] {
        if insertCount > knownReceivedCount {
            QPACK.encodeInteger(insertCount - knownReceivedCount, prefixBits: 6, flags: 0, into: &output)
            knownReceivedCount = insertCount
        }
        defer { output = [] }
        return output
    }
}
