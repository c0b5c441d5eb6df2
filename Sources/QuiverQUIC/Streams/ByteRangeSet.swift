/// A set of stream offsets kept as sorted, disjoint, non-adjacent half-open ranges: the acked
/// and lost ranges of a ``SendBuffer``.
///
/// Lookups are binary searches; removing from the front is O(1) amortised (a head index, with
/// occasional compaction), since acknowledgements mostly advance from the front.
struct ByteRangeSet: Sendable, Hashable {
    private var ranges: [Range<UInt64>] = []
    private var head = 0

    /// The total number of offsets in the set.
    private(set) var totalLength: UInt64 = 0

    init() {}

    var isEmpty: Bool { head == ranges.count }

    /// The number of disjoint ranges.
    var count: Int { ranges.count - head }

    /// The lowest range.
    var first: Range<UInt64>? { isEmpty ? nil : ranges[head] }

    /// The ranges in ascending order.
    var elements: ArraySlice<Range<UInt64>> { ranges[head...] }

    /// The index of the first live range whose upper bound is ≥ `offset` (so a range ending
    /// exactly at `offset` is found: it is adjacent).
    private func firstIndex(upperAtLeast offset: UInt64) -> Int {
        var low = head
        var high = ranges.count
        while low < high {
            let mid = (low + high) / 2
            if ranges[mid].upperBound >= offset { high = mid } else { low = mid + 1 }
        }
        return low
    }

    /// Adds `range`, merging with overlapping and adjacent ranges.
    mutating func insert(_ range: Range<UInt64>) {
        guard !range.isEmpty else { return }
        let start = firstIndex(upperAtLeast: range.lowerBound)
        var end = start
        var lower = range.lowerBound
        var upper = range.upperBound
        var removed: UInt64 = 0
        while end < ranges.count, ranges[end].lowerBound <= upper {
            lower = Swift.min(lower, ranges[end].lowerBound)
            upper = Swift.max(upper, ranges[end].upperBound)
            removed += UInt64(ranges[end].count)
            end += 1
        }
        if start == end {
            ranges.insertInPlace(lower..<upper, at: start)
        } else {
            ranges[start] = lower..<upper
            if end > start + 1 { ranges.removeSubrange((start + 1)..<end) }
        }
        totalLength = totalLength - removed + (upper - lower)
    }

    /// Removes every offset of `range` from the set.
    mutating func remove(_ range: Range<UInt64>) {
        guard !range.isEmpty else { return }
        var index = firstIndex(upperAtLeast: range.lowerBound)
        // A range ending exactly at range.lowerBound does not overlap.
        if index < ranges.count, ranges[index].upperBound == range.lowerBound { index += 1 }
        var replacement: [Range<UInt64>] = []
        var end = index
        while end < ranges.count, ranges[end].lowerBound < range.upperBound {
            let existing = ranges[end]
            if existing.lowerBound < range.lowerBound { replacement.append(existing.lowerBound..<range.lowerBound) }
            if existing.upperBound > range.upperBound { replacement.append(range.upperBound..<existing.upperBound) }
            let overlap = Swift.min(existing.upperBound, range.upperBound) - Swift.max(existing.lowerBound, range.lowerBound)
            totalLength -= overlap
            end += 1
        }
        guard end > index else { return }
        if end == index + 1, replacement.count == 1 {
            ranges[index] = replacement[0]
        } else {
            ranges.replaceSubrange(index..<end, with: replacement)
        }
        compactIfNeeded()
    }

    /// Removes and returns the lowest range.
    @discardableResult
    mutating func removeFirst() -> Range<UInt64>? {
        guard !isEmpty else { return nil }
        let range = ranges[head]
        head += 1
        totalLength -= UInt64(range.count)
        compactIfNeeded()
        return range
    }

    /// The parts of `range` that are not in the set, in ascending order.
    func gaps(in range: Range<UInt64>) -> [Range<UInt64>] {
        guard !range.isEmpty else { return [] }
        var result: [Range<UInt64>] = []
        var cursor = range.lowerBound
        var index = firstIndex(upperAtLeast: range.lowerBound)
        while index < ranges.count, cursor < range.upperBound, ranges[index].lowerBound < range.upperBound {
            let existing = ranges[index]
            if existing.lowerBound > cursor { result.append(cursor..<existing.lowerBound) }
            cursor = Swift.max(cursor, existing.upperBound)
            index += 1
        }
        if cursor < range.upperBound { result.append(cursor..<range.upperBound) }
        return result
    }

    private mutating func compactIfNeeded() {
        if head == ranges.count {
            ranges.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 32, head * 2 >= ranges.count {
            ranges.removeFirst(head)
            head = 0
        }
    }

    static func == (lhs: ByteRangeSet, rhs: ByteRangeSet) -> Bool { lhs.elements.elementsEqual(rhs.elements) }

    func hash(into hasher: inout Hasher) {
        for range in elements { hasher.combine(range) }
    }
}
