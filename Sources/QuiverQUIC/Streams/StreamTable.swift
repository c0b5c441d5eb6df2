/// The open streams' state, keyed by stream ID: an open-addressing hash table with linear
/// probing and a multiplicative hash, which a received STREAM frame consults several times.
///
/// `Dictionary<StreamID, _>` hashes with SipHash (seeding, combining and finalizing cost more
/// than the rest of the lookup), and its getter copies the whole value out (retaining the
/// stream's buffers): on a download those lookups were 5 % of the receiver's CPU. Here the hash
/// is one multiplication (Fibonacci hashing: consecutive stream IDs, the common case, land in
/// different slots), and reads and changes go through ``withValue(_:_:)`` in place.
///
/// A weak hash is safe here because the peer cannot grow the table: the streams it may open
/// are bounded by the limits we advertise (RFC 9000 §4.6), and each probe sequence is bounded
/// by the number of open streams.
struct StreamTable<Value> {
    /// The stream ID in each slot, ``empty`` when the slot is free. Stream IDs are at most
    /// 2^62 − 1, so the marker is never a stream ID.
    private var ids: [UInt64]
    private var values: [Value?]
    /// The number of streams in the table.
    private(set) var count = 0

    private static var empty: UInt64 { .max }

    /// An empty table; its slots are allocated with the first stream.
    init() {
        ids = []
        values = []
    }

    /// The stream IDs in the table, in no particular order.
    var keys: [StreamID] { ids.compactMap { $0 == Self.empty ? nil : StreamID(rawValue: $0) } }

    /// Whether a stream `id` is in the table.
    func contains(_ id: StreamID) -> Bool { slot(of: id) != nil }

    /// A copy of the value stored for `id` (retaining what it holds); `nil` when there is
    /// none. Setting `nil` removes the stream. To read or change a field, use
    /// ``withValue(_:_:)``: it works in place.
    subscript(id: StreamID) -> Value? {
        get {
            slot(of: id).flatMap { values[$0] }
        }
        set {
            if let newValue { insert(newValue, for: id) } else { remove(id) }
        }
    }

    /// Runs `body` on the value stored for `id`, in place; `nil` when there is none.
    @discardableResult
    mutating func withValue<Result, Failure: Error>(
        _ id: StreamID, _ body: (inout Value) throws(Failure) -> Result
    ) throws(Failure) -> Result? {
        guard let slot = slot(of: id) else { return nil }
        return try body(&values[slot]!)
    }

    // MARK: - Slots

    /// The slot where probing for `raw` starts: the top bits of a Fibonacci hash.
    private func home(_ raw: UInt64) -> Int {
        let bits = ids.count.trailingZeroBitCount
        return Int(truncatingIfNeeded: (raw &* 0x9E37_79B9_7F4A_7C15) >> UInt64(64 - bits))
    }

    private func slot(of id: StreamID) -> Int? {
        guard count > 0 else { return nil }
        let mask = ids.count - 1
        var slot = home(id.rawValue)
        while true {
            let stored = ids[slot]
            if stored == id.rawValue { return slot }
            if stored == Self.empty { return nil }
            slot = (slot + 1) & mask
        }
    }

    private mutating func insert(_ value: Value, for id: StreamID) {
        if let slot = slot(of: id) {
            values[slot] = value
            return
        }
        if (count + 1) * 2 > ids.count { grow() }
        let mask = ids.count - 1
        var slot = home(id.rawValue)
        while ids[slot] != Self.empty { slot = (slot + 1) & mask }
        ids[slot] = id.rawValue
        values[slot] = value
        count += 1
    }

    /// Removes `id` by backward-shift deletion: the entries after it in its probe run move
    /// back, so no tombstones accumulate.
    private mutating func remove(_ id: StreamID) {
        guard var hole = slot(of: id) else { return }
        let mask = ids.count - 1
        var next = (hole + 1) & mask
        while ids[next] != Self.empty {
            let home = home(ids[next])
            // The entry at `next` may move into the hole unless its home lies cyclically
            // within (hole, next].
            let distanceToNext = (next - home) & mask
            let distanceToHole = (hole - home) & mask
            if distanceToHole < distanceToNext {
                ids[hole] = ids[next]
                values[hole] = values[next].take()
                hole = next
            }
            next = (next + 1) & mask
        }
        ids[hole] = Self.empty
        values[hole] = nil
        count -= 1
    }

    private mutating func grow() {
        let capacity = max(8, ids.count * 2)
        let oldIDs = ids
        var oldValues = values
        ids = Array(repeating: Self.empty, count: capacity)
        values = Array(repeating: nil, count: capacity)
        let mask = capacity - 1
        for index in oldIDs.indices where oldIDs[index] != Self.empty {
            var slot = home(oldIDs[index])
            while ids[slot] != Self.empty { slot = (slot + 1) & mask }
            ids[slot] = oldIDs[index]
            values[slot] = oldValues[index].take()
        }
    }
}

extension StreamTable: Sendable where Value: Sendable {}
