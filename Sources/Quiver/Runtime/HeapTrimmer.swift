import CQuiverPoll
import QuiverCore

/// Gives the heap that ended connections freed back to the system.
///
/// glibc's allocator keeps freed memory in its arenas: after a flood of 2 000 QUIC connections
/// had closed, a server's RSS stayed at the flood's peak (72 MB against 29 MB before it),
/// though nothing leaked — `malloc_trim(0)` brought it back to within 5–7 %. A core reports its
/// connection count whenever connections end; once at most half of the highest count since the
/// last trim remain (and at least 64 fewer), or none remain after 16 or more, a trim is due: a
/// few times per flood, never per connection.
///
/// A due trim waits ``delay`` (a later due point moves it): much of what an ended connection
/// holds — its tasks' frames, the buffers they kept — is freed in the loop's next rounds, after
/// the count that made the trim due. A trim becomes due only when the count halved, so a
/// flood's end postpones it a few times at most. The core keeps ``deadline`` among its timers,
/// so the loop wakes for it even when nothing else happens.
struct HeapTrimmer {
    /// How long a due trim waits.
    static let delay: Duration = .seconds(1)
    /// When the trim after a flood's end is repeated.
    static let settleDelay: Duration = .seconds(10)
    /// Whether the pending trim is the repeat after a flood's end.
    private var settling = false
    private var highWater = 0
    /// Whether the last due point left connections open (a flood's tail).
    private var floodTail = false
    /// When the due trim runs; `nil` when none is due.
    private(set) var deadline: Instant?
    /// What trimming does (the allocator's trim; tests count calls instead).
    private let trim: () -> Void

    init(trim: @escaping () -> Void = { quiver_heap_trim() }) { self.trim = trim }

    /// Notes the current number of connections; a trim becomes due when many have ended since
    /// the last one was due.
    mutating func connectionsRemaining(_ count: Int, at now: Instant) {
        highWater = max(highWater, count)
        let ended = highWater - count
        // The last of a flood's connections may end much later (an idle timeout after a lost
        // CONNECTION_CLOSE); live, they pinned pages the trim could not give back, so their
        // end is a due point too, however few they were.
        let lastOfFlood = count == 0 && (highWater >= 16 || floodTail)
        guard (ended >= 64 && count <= highWater / 2) || lastOfFlood else { return }
        floodTail = count > 0
        highWater = count
        settling = false
        deadline = now + Self.delay  // a flood still ending moves it: one trim once it calmed down
    }

    /// Trims if a trim is due by `now`. A trim with no connections left is followed by one
    /// more ``settleDelay`` later: what the ended connections' tasks and buffers free in the
    /// seconds after is given back too (measured after a 2 000-connection flood: RSS +19 %
    /// over before it after the first trims, +7.7 % after this one; the same as a trim by hand).
    ///
    /// - Parameter release: lets go of memory the caller keeps for reuse, before the trim.
    mutating func trimIfDue(at now: Instant, releasing release: () -> Void = {}) {
        guard let deadline, deadline <= now else { return }
        self.deadline = nil
        release()
        trim()
        if highWater == 0, !settling {
            settling = true
            self.deadline = now + Self.settleDelay
        } else {
            settling = false
        }
    }
}
