#if canImport(Glibc)
import Glibc
#endif
import CQuiverPoll
import QuiverCore
import Synchronization

/// One epoll set and one eventfd "waker": the single descriptor an application-driven
/// listener exposes (an epoll descriptor is itself pollable — readable when any member is
/// ready), and what the thread-assisted driver sleeps on.
final class EventPoll: @unchecked Sendable {
    // @unchecked: epoll_ctl, epoll_wait and eventfd writes are thread-safe system calls; the
    // descriptors are immutable and stay open until deinit.
    struct Ready {
        var tag: UInt64
        var readable: Bool
        var writable: Bool
        var failed: Bool
    }

    /// The tag the waker's readiness carries.
    static let wakerTag = UInt64.max

    let descriptor: Int32
    private let waker: Int32
    /// Set by ``closeAfterFork()``: the descriptors are gone and must not be touched.
    private let abandoned = Atomic<Bool>(false)

    init() throws(QuiverError) {
        descriptor = quiver_epoll_create()
        guard descriptor >= 0 else { throw QuiverError(.io, "epoll_create1: \(String(cString: strerror(errno)))") }
        waker = quiver_eventfd()
        guard waker >= 0 else {
            Glibc.close(descriptor)
            throw QuiverError(.io, "eventfd: \(String(cString: strerror(errno)))")
        }
        _ = quiver_epoll_set(descriptor, waker, QUIVER_POLL_IN, Self.wakerTag, 0)
    }

    /// Watches `fd` for input (and output when `output`), reporting `tag`.
    func add(_ fd: Int32, tag: UInt64, output: Bool = false) throws(QuiverError) {
        guard quiver_epoll_set(descriptor, fd, QUIVER_POLL_IN | QUIVER_POLL_RDHUP | (output ? QUIVER_POLL_OUT : 0), tag, 0) == 0 else {
            throw QuiverError(.io, "epoll_ctl: \(String(cString: strerror(errno)))")
        }
    }

    /// Changes which readiness of `fd` is reported.
    func setInterest(_ fd: Int32, tag: UInt64, input: Bool = true, output: Bool) {
        let events = (input ? QUIVER_POLL_IN | QUIVER_POLL_RDHUP : 0) | (output ? QUIVER_POLL_OUT : 0)
        _ = quiver_epoll_set(descriptor, fd, events, tag, 1)
    }

    func remove(_ fd: Int32) { _ = quiver_epoll_remove(descriptor, fd) }

    /// Waits up to `timeoutMilliseconds` (−1: forever, 0: just look) and returns what is ready;
    /// a wake-up is reported as the waker's tag and reset.
    func wait(timeoutMilliseconds: Int32) -> [Ready] {
        var tags = [UInt64](repeating: 0, count: 64)
        var events = [UInt32](repeating: 0, count: 64)
        let count = quiver_epoll_wait(descriptor, &tags, &events, 64, timeoutMilliseconds)
        guard count > 0 else { return [] }
        var ready: [Ready] = []
        ready.reserveCapacity(Int(count))
        for index in 0..<Int(count) {
            if tags[index] == Self.wakerTag { quiver_eventfd_drain(waker) }
            let mask = events[index]
            ready.append(Ready(tag: tags[index], readable: mask & (QUIVER_POLL_IN | QUIVER_POLL_HUP | QUIVER_POLL_RDHUP) != 0,
                               writable: mask & QUIVER_POLL_OUT != 0, failed: mask & QUIVER_POLL_ERR != 0))
        }
        return ready
    }

    /// Makes `descriptor` readable (and a waiting `wait` return) from any thread.
    func wake() {
        guard !abandoned.load(ordering: .acquiring) else { return }
        quiver_eventfd_signal(waker)
    }

    var isAbandoned: Bool { abandoned.load(ordering: .acquiring) }

    /// In a forked child that does not use this poll (its owner stays in the parent): closes
    /// the inherited descriptors now; later calls touch nothing.
    func closeAfterFork() {
        guard !abandoned.exchange(true, ordering: .acquiringAndReleasing) else { return }
        Glibc.close(waker)
        Glibc.close(descriptor)
    }

    /// The descriptors live as long as this object, never shorter: a late `wake()` from another
    /// thread must not write into a descriptor number the process has since reused (a TLS
    /// socket once received the eventfd's 8 bytes that way).
    deinit {
        guard !abandoned.load(ordering: .acquiring) else { return }
        Glibc.close(waker)
        Glibc.close(descriptor)
    }

    /// Milliseconds until `deadline` for poll-style timeouts (rounded up; −1 for none).
    static func timeout(until deadline: Instant?, now: Instant, cap: Int64 = 60_000) -> Int32 {
        guard let deadline else { return -1 }
        guard deadline > now else { return 0 }
        return Int32(min(((deadline - now).nanosecondsClamped + 999_999) / 1_000_000, cap))
    }
}
