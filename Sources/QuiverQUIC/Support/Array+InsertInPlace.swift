extension Array {
    /// Inserts `element` at `index` in the array's own storage when it has room: appends, then
    /// swaps the element down into place.
    ///
    /// `insert(_:at:)` goes through `replaceSubrange`, which on this toolchain (Swift 6.3) copies
    /// the elements into a new buffer on every call, spare capacity or not — measured: 400
    /// inserts, 400 allocations (`AllocationTests`). The range sets on the data path (acked
    /// stream ranges, received packet numbers) insert once per packet; this keeps that free.
    mutating func insertInPlace(_ element: Element, at index: Int) {
        assert(index >= 0 && index <= count, "index out of range")
        append(element)
        var position = count - 1
        while position > index {
            swapAt(position, position - 1)
            position -= 1
        }
    }
}
