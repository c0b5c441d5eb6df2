import QuiverCore

/// A binary min-heap of (deadline, key) entries for the endpoint's timers. Entries are never
/// updated in place: a changed deadline pushes a new entry, and the owner discards entries that
/// no longer match when they reach the top ("lazy deletion"), so every operation is O(log n).
struct TimerHeap<Key: Hashable> {
    private(set) var entries: [(deadline: Instant, key: Key)] = []

    var count: Int { entries.count }
    var first: (deadline: Instant, key: Key)? { entries.first }

    mutating func push(_ deadline: Instant, _ key: Key) {
        entries.append((deadline, key))
        var child = entries.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard entries[child].deadline < entries[parent].deadline else { break }
            entries.swapAt(child, parent)
            child = parent
        }
    }

    @discardableResult
    mutating func popFirst() -> (deadline: Instant, key: Key)? {
        guard !entries.isEmpty else { return nil }
        entries.swapAt(0, entries.count - 1)
        let top = entries.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < entries.count, entries[left].deadline < entries[smallest].deadline { smallest = left }
            if right < entries.count, entries[right].deadline < entries[smallest].deadline { smallest = right }
            guard smallest != parent else { break }
            entries.swapAt(parent, smallest)
            parent = smallest
        }
        return top
    }

    /// Rebuilds the heap from the entries `keep` accepts (compaction when stale entries pile up).
    mutating func filter(_ keep: ((deadline: Instant, key: Key)) -> Bool) {
        let kept = entries.filter(keep)
        entries.removeAll(keepingCapacity: true)
        for entry in kept { push(entry.deadline, entry.key) }
    }
}
