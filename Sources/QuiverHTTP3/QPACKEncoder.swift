/// The encoding half of QPACK (RFC 9204 §2.1) with a dynamic table in the peer, sans I/O:
/// field sections are encoded (``encode(_:streamID:)``), the encoder-stream bytes to send come
/// out (``takeInstructions()``) and the peer's decoder-stream bytes go in
/// (``receiveDecoderInstructions(_:)``).
///
/// The strategy is simple rather than clever:
/// - Nothing is inserted before the peer's SETTINGS allow a table; we use at most
///   ``capacityLimit`` of it, set once.
/// - A field is inserted when it is worth reusing: its name is one that usually repeats
///   (``commonNames``), or the same name and value were seen before. Never-indexed fields
///   (§7.1.3) and credentials (`authorization`, `cookie`, …) are never inserted, nor entries
///   over a quarter of the capacity.
/// - An insert never evicts an entry that is unacknowledged or still referenced by an
///   unacknowledged section (§2.1.1); when no room can be made, the field goes as a literal.
/// - A section references entries the peer may not have yet (and may so block its stream)
///   only while fewer than the peer's SETTINGS_QPACK_BLOCKED_STREAMS streams could be blocked
///   (§2.1.2); otherwise only acknowledged entries, and new inserts wait for a later section.
struct QPACKEncoder: Sendable {
    /// The most of the peer's table we use.
    let capacityLimit: Int

    /// Names whose values usually repeat on a connection: inserted on first sight.
    static let commonNames: Set<String> = [":authority", "user-agent", "content-type", "server", "accept", "accept-encoding",
                                            "accept-language", "cache-control", "origin"]
    /// Names never inserted, whatever their indexing strategy says (RFC 9204 §7.1).
    static let sensitiveNames: Set<String> = ["authorization", "proxy-authorization", "cookie", "set-cookie"]

    private struct Entry {
        let name: String
        let value: String
        let size: Int
        /// Unacknowledged sections referring to it.
        var references = 0
    }

    private struct Key: Hashable {
        let name: String
        let value: String
    }

    /// A section that refers to the table and was not acknowledged yet.
    private struct Section {
        let requiredInsertCount: Int
        let references: [Int]
    }

    /// SETTINGS_QPACK_MAX_TABLE_CAPACITY of the peer (0 until its SETTINGS arrive).
    private(set) var maxTableCapacity = 0
    /// SETTINGS_QPACK_BLOCKED_STREAMS of the peer.
    private(set) var maxBlockedStreams = 0
    /// The capacity we set (`min(maxTableCapacity, capacityLimit)`).
    private(set) var capacity = 0
    /// Live entries, oldest first, from `entries[head]`.
    private var entries: [Entry] = []
    private var head = 0
    private(set) var insertCount = 0
    private var size = 0
    /// Insertions the decoder has acknowledged (§2.1.4).
    private(set) var knownReceivedCount = 0
    /// The newest entry with a name and value, and with a name.
    private var exact: [Key: Int] = [:]
    private var names: [String: Int] = [:]
    /// Unacknowledged sections per stream, oldest first.
    private var outstanding: [UInt64: [Section]] = [:]
    /// Fields seen once (candidates for insertion when seen again), bounded.
    private var seen: Set<Key> = []
    /// Encoder-stream bytes not yet taken.
    private var output: [UInt8] = []
    /// The start of a decoder instruction whose bytes have not all arrived.
    private var partial: [UInt8] = []
    private(set) var statistics = QPACKStatistics()

    init(capacityLimit: Int = 4096) {
        self.capacityLimit = capacityLimit
    }

    private var oldest: Int { insertCount - (entries.count - head) }

    /// Takes the peer's QPACK settings (once, from its SETTINGS frame) and, when they allow
    /// a table, sets its capacity (Set Dynamic Table Capacity, §4.3.1).
    mutating func applyPeerSettings(maxTableCapacity: UInt64, blockedStreams: UInt64) {
        self.maxTableCapacity = Int(clamping: maxTableCapacity)
        maxBlockedStreams = Int(clamping: blockedStreams)
        capacity = min(self.maxTableCapacity, capacityLimit)
        if capacity > 0 { QPACK.encodeInteger(capacity, prefixBits: 5, flags: 0x20, into: &output) }
    }

    // MARK: - Field sections (§4.5)

    /// Encodes `fields` for stream `streamID`, inserting entries worth reusing (their
    /// instructions wait in ``takeInstructions()``, to be written before the section).
    mutating func encode(_ fields: [FieldLine], streamID: UInt64) -> [UInt8] {
        guard capacity > 0 else { return QPACK.encode(fields) }
        let base = insertCount
        // Whether this section may refer to entries not yet acknowledged (§2.1.2).
        let mayBlock = isBlocking(streamID) || blockingStreamCount < maxBlockedStreams
        var requiredInsertCount = 0
        var references: [Int] = []
        var lines: [UInt8] = []

        func usable(_ absolute: Int?) -> Int? {
            guard let absolute, absolute >= oldest, mayBlock || absolute < knownReceivedCount else { return nil }
            return absolute
        }
        func refer(_ absolute: Int) {
            requiredInsertCount = max(requiredInsertCount, absolute + 1)
            references.append(absolute)
            entries[head + absolute - oldest].references += 1
        }

        for field in fields {
            let key = Key(name: field.name, value: field.value)
            let indexable = !field.neverIndexed && !Self.sensitiveNames.contains(field.name)
            if indexable, QPACK.staticIndex[QPACK.StaticKey(name: field.name, value: field.value)] == nil {
                var absolute = usable(exact[key])
                if exact[key] == nil, worthInserting(key), let inserted = insert(key) {
                    absolute = usable(inserted)
                }
                if let absolute {
                    refer(absolute)
                    if absolute < base {  // Indexed Field Line, dynamic (10, §4.5.2)
                        QPACK.encodeInteger(base - 1 - absolute, prefixBits: 6, flags: 0x80, into: &lines)
                    } else {  // with Post-Base Index (0001, §4.5.3)
                        QPACK.encodeInteger(absolute - base, prefixBits: 4, flags: 0x10, into: &lines)
                    }
                    continue
                }
            }
            // A literal; its name from the static table, else the dynamic one, else literal.
            if QPACK.staticNameIndex[field.name] == nil, let absolute = usable(names[field.name]) {
                refer(absolute)
                if absolute < base {  // Literal with Name Reference, dynamic (01NT with T = 0, §4.5.4)
                    QPACK.encodeInteger(base - 1 - absolute, prefixBits: 4, flags: 0x40 | (field.neverIndexed ? 0x20 : 0), into: &lines)
                } else {  // with Post-Base Name Reference (0000N, §4.5.5)
                    QPACK.encodeInteger(absolute - base, prefixBits: 3, flags: field.neverIndexed ? 0x08 : 0, into: &lines)
                }
                QPACK.encodeString(Array(field.value.utf8), prefixBits: 7, flags: 0, into: &lines)
            } else {
                QPACK.encodeWithoutTable(field, into: &lines)
            }
        }

        var section: [UInt8] = []
        if requiredInsertCount == 0 {
            section = [0, 0]
        } else {
            // §4.5.1.1 and §4.5.1.2.
            let fullRange = 2 * (maxTableCapacity / 32)
            QPACK.encodeInteger(requiredInsertCount % fullRange + 1, prefixBits: 8, flags: 0, into: &section)
            if base >= requiredInsertCount {
                QPACK.encodeInteger(base - requiredInsertCount, prefixBits: 7, flags: 0, into: &section)
            } else {
                QPACK.encodeInteger(requiredInsertCount - base - 1, prefixBits: 7, flags: 0x80, into: &section)
            }
            outstanding[streamID, default: []].append(Section(requiredInsertCount: requiredInsertCount, references: references))
            statistics.sectionsEncodedWithTable += 1
        }
        return section + lines
    }

    /// Whether `key` is worth an entry: a name that usually repeats, or a field seen before.
    private mutating func worthInserting(_ key: Key) -> Bool {
        guard key.name.utf8.count + key.value.utf8.count + 32 <= capacity / 4 else { return false }
        if Self.commonNames.contains(key.name) { return true }
        if seen.remove(key) != nil { return true }
        if seen.count >= 256 { seen.removeAll(keepingCapacity: true) }
        seen.insert(key)
        return false
    }

    /// Inserts `key` if room can be made by evicting only evictable entries (§2.1.1);
    /// returns its absolute index.
    private mutating func insert(_ key: Key) -> Int? {
        let entrySize = key.name.utf8.count + key.value.utf8.count + 32
        guard entrySize <= capacity else { return nil }
        var evicted = 0
        var free = capacity - size
        while free < entrySize {
            let index = head + evicted
            guard index < entries.count, oldest + evicted < knownReceivedCount, entries[index].references == 0 else { return nil }
            free += entries[index].size
            evicted += 1
        }
        for _ in 0..<evicted {
            let entry = entries[head]
            let absolute = oldest
            size -= entry.size
            head += 1
            let key = Key(name: entry.name, value: entry.value)
            if exact[key] == absolute { exact[key] = nil }
            if names[entry.name] == absolute { names[entry.name] = nil }
        }
        if head > 32, head * 2 > entries.count {
            entries.removeFirst(head)
            head = 0
        }
        if let index = QPACK.staticNameIndex[key.name] {  // Insert with Name Reference, static (11, §4.3.2)
            QPACK.encodeInteger(index, prefixBits: 6, flags: 0xc0, into: &output)
        } else if let absolute = names[key.name] {  // … dynamic (10): a live entry, after the evictions above
            QPACK.encodeInteger(insertCount - 1 - absolute, prefixBits: 6, flags: 0x80, into: &output)
        } else {  // Insert with Literal Name (01, §4.3.3)
            QPACK.encodeString(Array(key.name.utf8), prefixBits: 5, flags: 0x40, into: &output)
        }
        QPACK.encodeString(Array(key.value.utf8), prefixBits: 7, flags: 0, into: &output)
        let absolute = insertCount
        entries.append(Entry(name: key.name, value: key.value, size: entrySize))
        size += entrySize
        insertCount += 1
        exact[key] = absolute
        names[key.name] = absolute
        statistics.insertsSent += 1
        return absolute
    }

    /// Whether a section of `streamID` could still block the peer's decoder.
    private func isBlocking(_ streamID: UInt64) -> Bool {
        outstanding[streamID]?.contains { $0.requiredInsertCount > knownReceivedCount } ?? false
    }

    /// The streams whose sections could still block the peer's decoder.
    var blockingStreamCount: Int {
        outstanding.values.count(where: { sections in sections.contains { $0.requiredInsertCount > knownReceivedCount } })
    }

    /// The encoder-stream bytes to send, in order.
    mutating func takeInstructions() -> [UInt8] {
        defer { output = [] }
        return output
    }

    // MARK: - Decoder stream (§4.4)

    /// Applies the peer's decoder instructions in `bytes`, keeping an unfinished last one.
    /// - Throws: `QPACK_DECODER_STREAM_ERROR` for a Section Acknowledgment of a stream with
    ///   nothing unacknowledged, an Insert Count Increment of 0 or beyond our inserts (§4.4),
    ///   or a malformed instruction.
    mutating func receiveDecoderInstructions(_ bytes: [UInt8]) throws(HTTP3Error) {
        partial += bytes
        var reader = QPACKInstructionReader(partial, code: .qpackDecoderStreamError)
        while !reader.isAtEnd {
            let start = reader.position
            let first = reader.bytes[start]
            if first & 0x80 != 0 {  // Section Acknowledgment (1)
                guard let stream = try reader.integer(prefixBits: 7) else { break }
                try acknowledgeSection(UInt64(stream))
            } else if first & 0x40 != 0 {  // Stream Cancellation (01)
                guard let stream = try reader.integer(prefixBits: 6) else { break }
                for section in outstanding.removeValue(forKey: UInt64(stream)) ?? [] { release(section) }
            } else {  // Insert Count Increment (00)
                guard let increment = try reader.integer(prefixBits: 6) else { break }
                guard increment > 0, increment <= insertCount - knownReceivedCount else {
                    throw HTTP3Error(.qpackDecoderStreamError, "Insert Count Increment \(increment) with \(insertCount - knownReceivedCount) unacknowledged inserts")
                }
                knownReceivedCount += increment
            }
        }
        partial.removeFirst(reader.position)
        // Only an integer can be unfinished: a dozen bytes at most.
        guard partial.count <= 12 else { throw HTTP3Error(.qpackDecoderStreamError, "an overlong decoder instruction") }
    }

    private mutating func acknowledgeSection(_ stream: UInt64) throws(HTTP3Error) {
        guard var sections = outstanding[stream], !sections.isEmpty else {
            throw HTTP3Error(.qpackDecoderStreamError, "Section Acknowledgment for stream \(stream), which has no unacknowledged section")
        }
        let section = sections.removeFirst()
        outstanding[stream] = sections.isEmpty ? nil : sections
        knownReceivedCount = max(knownReceivedCount, section.requiredInsertCount)
        release(section)
    }

    private mutating func release(_ section: Section) {
        for absolute in section.references where absolute >= oldest {
            entries[head + absolute - oldest].references -= 1
        }
    }
}
