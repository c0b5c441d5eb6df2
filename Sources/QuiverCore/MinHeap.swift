/// A binary min-heap: `push` and `popFirst` in O(log n), `first` in O(1). The simulator's event
/// queue and the QUIC endpoint's timers use it.
public struct MinHeap<Element: Comparable> {
    @usableFromInline var items: [Element] = []

    @inlinable public init() {}

    /// The number of elements.
    @inlinable public var count: Int { items.count }

    /// The smallest element.
    @inlinable public var first: Element? { items.first }

    @inlinable
    public mutating func push(_ element: Element) {
        items.append(element)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child] < items[parent] else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    /// Removes and returns the smallest element.
    @inlinable @discardableResult
    public mutating func popFirst() -> Element? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let top = items.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < items.count, items[left] < items[smallest] { smallest = left }
            if right < items.count, items[right] < items[smallest] { smallest = right }
            guard smallest != parent else { break }
            items.swapAt(parent, smallest)
            parent = smallest
        }
        return top
    }

    /// The elements in no particular order (for checks; the heap order is internal).
    public var unorderedElements: [Element] { items }

    /// Keeps only the elements `keep` accepts, in O(n log n).
    @inlinable
    public mutating func filter(_ keep: (Element) -> Bool) {
        let kept = items.filter(keep)
        items.removeAll(keepingCapacity: true)
        for element in kept { push(element) }
    }
}
