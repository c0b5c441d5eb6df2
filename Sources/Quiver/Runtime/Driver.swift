#if canImport(Glibc)
import Glibc
#endif
import QuiverCore
import Synchronization

/// The event-handling half of a listener or client connection: sockets, timers and engines.
protocol DriverCore: AnyObject, Sendable {
    /// Reads what the attachments have (`ready`: what the poll reported), fires due timers,
    /// sends what the engines produce. Never blocks.
    func handleEvents(_ ready: [EventPoll.Ready])
    /// When ``handleEvents()`` must next run even if nothing arrives.
    var nextDeadline: Instant? { get }
}

/// Runs a ``DriverCore``: either on a background thread (thread-assisted) or when the
/// application calls (application-driven).
final class Driver: @unchecked Sendable {
    // @unchecked: `core` and `thread` are set once before use; `stopping` is atomic.
    let isThreadAssisted: Bool
    let poll: EventPoll
    private(set) weak var core: (any DriverCore)?
    private var thread: pthread_t?
    private let stopping = Atomic<Bool>(false)

    init(threadAssisted: Bool) throws(QuiverError) {
        isThreadAssisted = threadAssisted
        poll = try EventPoll()
    }

    /// Attaches the core and, when thread-assisted, starts the I/O thread (which holds the
    /// core until ``stop()``).
    func start(_ core: any DriverCore) throws(QuiverError) {
        self.core = core
        guard isThreadAssisted else { return }
        let context = Unmanaged.passRetained(ThreadContext(driver: self, core: core)).toOpaque()
        var handle = pthread_t()
        let rc = pthread_create(&handle, nil, { raw in
            let context = Unmanaged<ThreadContext>.fromOpaque(raw!).takeRetainedValue()
            context.driver.run(context.core)
            return nil
        }, context)
        guard rc == 0 else {
            Unmanaged<ThreadContext>.fromOpaque(context).release()
            throw QuiverError(.io, "pthread_create: \(rc)")
        }
        thread = handle
    }

    private final class ThreadContext {
        let driver: Driver
        let core: any DriverCore
        init(driver: Driver, core: any DriverCore) {
            self.driver = driver
            self.core = core
        }
    }

    private func run(_ core: any DriverCore) {
        while !stopping.load(ordering: .acquiring) {
            let ready = poll.wait(timeoutMilliseconds: EventPoll.timeout(until: core.nextDeadline, now: .now()))
            guard !stopping.load(ordering: .acquiring) else { break }
            core.handleEvents(ready)
        }
    }

    /// Wakes the I/O thread (or makes the application's poll descriptor readable).
    func wake() { poll.wake() }

    /// For blocking calls on an application-driven driver: wait for the descriptor or the next
    /// deadline (at most 100 ms, so a command from another thread is never missed long), then
    /// handle events.
    func driveOnce() {
        guard let core, !isStopped else { return }
        let timeout = EventPoll.timeout(until: core.nextDeadline, now: .now(), cap: 100)
        core.handleEvents(poll.wait(timeoutMilliseconds: timeout))
    }

    /// One non-blocking round: what is ready now, due timers, output.
    func handleEventsNow() {
        guard let core, !isStopped else { return }
        core.handleEvents(poll.wait(timeoutMilliseconds: 0))
    }

    /// Stops the I/O thread: joins it, or detaches it when called from the I/O thread itself.
    /// The descriptors stay open until the driver is released (see ``EventPoll``).
    func stop() {
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        if let thread {
            poll.wake()
            if !pthread_equal(thread, pthread_self()).isTrue { pthread_join(thread, nil) } else { pthread_detach(thread) }
        }
    }

    var isStopped: Bool { stopping.load(ordering: .acquiring) }

    /// Stops a driver whose I/O thread is not there to join — in a forked child, where only
    /// the forking thread survives fork, or never started — and closes this process's copies
    /// of its descriptors.
    func abandonAfterFork() {
        stopping.store(true, ordering: .releasing)
        thread = nil
        poll.closeAfterFork()
    }

    /// Whether ``abandonAfterFork()`` ran.
    var isAbandoned: Bool { isStopped && poll.isAbandoned }
}

private extension Int32 {
    var isTrue: Bool { self != 0 }
}

/// The pollers watching one object, guarded by that object's lock.
final class PollLinks: @unchecked Sendable {
    // @unchecked: guarded by the owner's monitor.
    private var links: [(poller: Poller, key: Int)] = []

    func add(_ poller: Poller, key: Int) { links.append((poller, key)) }
    func remove(_ poller: Poller, key: Int) { links.removeAll { $0.poller === poller && $0.key == key } }
    func signal() {
        for link in links { link.poller.signal(link.key) }
    }
}
