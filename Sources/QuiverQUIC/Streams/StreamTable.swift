/// The open streams' state, keyed by stream ID: a compact hash table — the streams in a dense
/// array, and an open-addressing index into it (linear probing, a multiplicative hash) — which
/// a received STREAM frame consults several times.
///
/// `Dictionary<StreamID, _>` hashes with SipHash (seeding, combining and finalizing cost more
/// than the rest of the lookup), and its getter copies the whole value out (retaining the
/// stream's buffers): on a download those lookups were 5 % of the receiver's CPU. Here the hash
/// is one multiplication (Fibonacci hashing: consecutive stream IDs, the common case, land in
/// different slots), and reads and changes go through ``withValue(_:_:)`` in place. The index
/// holds 4-byte positions, so its room for a low load costs little: an idle HTTP/3 connection's
/// three streams take three entries and eight positions, not eight entries.
///
/// A weak hash is safe here because the peer cannot grow the table: the streams it may open
/// are bounded by the limits we advertise (RFC 9000 §4.6), and each probe sequence is bounded
/// by the number of open streams.
struct StreamTable<Value> {
    fileprivate struct Entry {
        var id: UInt64
        var value: Value
    }

    /// The streams, in no particular order.
    private var entries: [Entry] = []
    /// For each slot, the position of a stream in `entries`, or ``empty``; a power of two
    /// long, at most half full.
    private var slots: [Int32] = []

    private static var empty: Int32 { -1 }

    /// An empty table; its storage is allocated with the first stream.
    init() {}

    /// The number of streams in the table.
    var count: Int { entries.count }

    /// The stream IDs in the table, in no particular order.
    var keys: [StreamID] { entries.map { StreamID(rawValue: $0.id) } }

    /// Whether every value in the table satisfies `predicate` (read in place, no copy).
    func allSatisfy(_ predicate: (borrowing Value) -> Bool) -> Bool {
        for entry in entries where !predicate(entry.value) { return false }
        return true
    }

    /// Whether a stream `id` is in the table.
    func contains(_ id: StreamID) -> Bool { position(of: id.rawValue) != nil }

    /// A copy of the value stored for `id` (retaining what it holds); `nil` when there is
    /// none. Setting `nil` removes the stream. To read or change a field, use
    /// ``withValue(_:_:)``: it works in place.
    subscript(id: StreamID) -> Value? {
        get {
            position(of: id.rawValue).map { entries[$0].value }
        }
        set {
            if let newValue { insert(newValue, for: id.rawValue) } else { remove(id.rawValue) }
        }
    }

    /// Runs `body` on the value stored for `id`, in place; `nil` when there is none.
    @discardableResult
    mutating func withValue<Result, Failure: Error>(
        _ id: StreamID, _ body: (inout Value) throws(Failure) -> Result
    ) throws(Failure) -> Result? {
        guard let position = position(of: id.rawValue) else { return nil }
        return try body(&entries[position].value)
    }

    // MARK: - Index

    /// The slot where probing for `raw` starts: the top bits of a Fibonacci hash.
    private func home(_ raw: UInt64) -> Int {
        let bits = slots.count.trailingZeroBitCount
        return Int(truncatingIfNeeded: (raw &* 0x9E37_79B9_7F4A_7C15) >> UInt64(64 - bits))
    }

    /// The slot holding `raw`'s position, or the empty slot where it would go.
    private func slot(for raw: UInt64) -> Int {
        let mask = slots.count - 1
        var slot = home(raw)
        while slots[slot] != Self.empty, entries[Int(slots[slot])].id != raw { slot = (slot + 1) & mask }
        return slot
    }

    private func position(of raw: UInt64) -> Int? {
        guard !entries.isEmpty else { return nil }
        let position = slots[slot(for: raw)]
        return position == Self.empty ? nil : Int(position)
    }

    private mutating func insert(_ value: Value, for raw: UInt64) {
        if let position = position(of: raw) {
            entries[position].value = value
            return
        }
        if (entries.count + 1) * 2 > slots.count { rebuild(slotCount: Swift.max(4, slots.count * 2)) }
        slots[slot(for: raw)] = Int32(entries.count)
        entries.append(Entry(id: raw, value: value))
    }

    /// Removes `raw`: backward-shift deletion in the index (the slots after it in its probe
    /// run move back, so no tombstones accumulate), then the last entry moves into its place.
    private mutating func remove(_ raw: UInt64) {
        guard !entries.isEmpty else { return }
        var hole = slot(for: raw)
        guard slots[hole] != Self.empty else { return }
        let position = Int(slots[hole])
        let mask = slots.count - 1
        var next = (hole + 1) & mask
        while slots[next] != Self.empty {
            let home = home(entries[Int(slots[next])].id)
            // The slot at `next` may move into the hole unless its home lies cyclically within
            // (hole, next].
            if (hole - home) & mask < (next - home) & mask {
                slots[hole] = slots[next]
                hole = next
            }
            next = (next + 1) & mask
        }
        slots[hole] = Self.empty
        let last = entries.count - 1
        if position != last {
            let moved = slot(for: entries[last].id)  // found before the move: its slot says `last`
            entries.swapAt(position, last)
            slots[moved] = Int32(position)
        }
        entries.removeLast()
    }

    private mutating func rebuild(slotCount: Int) {
        slots = Array(repeating: Self.empty, count: slotCount)
        for position in entries.indices { slots[slot(for: entries[position].id)] = Int32(position) }
    }
}

extension StreamTable: Sendable where Value: Sendable {}
extension StreamTable.Entry: Sendable where Value: Sendable {}
