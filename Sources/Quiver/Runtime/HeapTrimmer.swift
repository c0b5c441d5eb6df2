import CQuiverPoll

/// Gives the heap that ended connections freed back to the system.
///
/// glibc's allocator keeps freed memory in its arenas: after a flood of 2 000 QUIC connections
/// had closed, a server's RSS stayed at the flood's peak (72 MB against 29 MB before it),
/// though nothing leaked — `malloc_trim(0)` brought it back to within 5 %. A core reports its
/// connection count whenever connections end; once at most half of the highest count since the
/// last trim remain (and at least 64 fewer), or none remain after 16 or more, the heap is
/// trimmed: a few times per flood, never per connection.
struct HeapTrimmer {
    private var highWater = 0
    /// What trimming does (the allocator's trim; tests count calls instead).
    private let trim: () -> Void

    init(trim: @escaping () -> Void = { quiver_heap_trim() }) { self.trim = trim }

    /// Notes the current number of connections; trims when many have ended since the last trim.
    mutating func connectionsRemaining(_ count: Int) {
        highWater = max(highWater, count)
        let ended = highWater - count
        guard (ended >= 64 && count <= highWater / 2) || (count == 0 && highWater >= 16) else { return }
        highWater = count
        trim()
    }
}
