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
///
/// A thread-assisted driver is also a `TaskExecutor` (``Listener/taskExecutor``): tasks that
/// prefer it run on the I/O thread between rounds of event handling, so a connection's engine,
/// its I/O and the application code using it share one thread — a resumed read or a write
/// crosses no thread and takes its locks uncontended, and a wake-up from the loop itself is a
/// flag, not an eventfd write.
final class Driver: TaskExecutor, @unchecked Sendable {
    // @unchecked: `core` and `thread` are set once before use; `stopping`, `loopThread` and
    // `wakePending` are atomic; `jobs` is a Mutex.
    let isThreadAssisted: Bool
    let poll: EventPoll
    private(set) weak var core: (any DriverCore)?
    private var thread: pthread_t?
    private let stopping = Atomic<Bool>(false)
    /// The I/O thread's `pthread_self()` while it runs (0 before and after).
    private let loopThread = Atomic<UInt>(0)
    /// A wake-up asked for on the I/O thread itself: the next round polls without waiting.
    private let wakePending = Atomic<Bool>(false)
    /// Jobs of tasks that prefer this executor; `nil` when no loop runs them (an
    /// application-driven driver, or after the loop ended): they go to the global executor.
    private let jobs: Mutex<[UnownedJob]?>

    init(threadAssisted: Bool) throws(QuiverError) {
        isThreadAssisted = threadAssisted
        jobs = Mutex(threadAssisted ? [] : nil)
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
        loopThread.store(UInt(pthread_self()), ordering: .releasing)
        var queued: [UnownedJob] = []
        while !stopping.load(ordering: .acquiring) {
            let busy = wakePending.exchange(false, ordering: .acquiringAndReleasing) || jobs.withLock { !($0?.isEmpty ?? true) }
            let timeout = busy ? 0 : EventPoll.timeout(until: core.nextDeadline, now: .now())
            let ready = poll.wait(timeoutMilliseconds: timeout)
            guard !stopping.load(ordering: .acquiring) else { break }
            core.handleEvents(ready)
            // The jobs queued so far (the tasks those events resumed, among others); the ones
            // they queue run after the next round of events, so I/O is never starved.
            jobs.withLock { swap(&queued, &$0!) }
            for job in queued { job.runSynchronously(on: asUnownedTaskExecutor()) }
            queued.removeAll(keepingCapacity: true)
        }
        loopThread.store(0, ordering: .releasing)
        releaseJobs()
    }

    /// Sends the queued jobs, and every later one, to the global executor: no loop runs them.
    private func releaseJobs() {
        let left = jobs.withLock { jobs in
            defer { jobs = nil }
            return jobs ?? []
        }
        for job in left { globalConcurrentExecutor.enqueue(job) }
    }

    /// Runs `job` on the I/O thread (the global executor when the driver is not running
    /// one, or no longer).
    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let accepted = jobs.withLock { jobs -> Bool in
            guard jobs != nil else { return false }
            jobs!.append(job)
            return true
        }
        guard accepted else { return globalConcurrentExecutor.enqueue(job) }
        if !isOnLoopThread { poll.wake() }
    }

    /// Whether the caller runs on the I/O thread (in event handling or a task on this executor).
    var isOnLoopThread: Bool {
        let loop = loopThread.load(ordering: .acquiring)
        return loop != 0 && loop == UInt(pthread_self())
    }

    /// What a blocking call that would wait on the I/O thread throws: a task running on this
    /// executor would wait for the very thread it holds.
    static var wouldBlockLoop: QuiverError {
        QuiverError(.configuration, "a blocking call on the listener's event loop (a task on its taskExecutor) would wait for itself: use the async overload")
    }

    /// Wakes the I/O thread (or makes the application's poll descriptor readable); on the I/O
    /// thread itself it only makes the next round poll without waiting.
    func wake() {
        if isOnLoopThread { wakePending.store(true, ordering: .releasing) } else { poll.wake() }
    }

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
        guard let thread else { return releaseJobs() }
        poll.wake()
        if !pthread_equal(thread, pthread_self()).isTrue { pthread_join(thread, nil) } else { pthread_detach(thread) }
    }

    var isStopped: Bool { stopping.load(ordering: .acquiring) }

    /// Stops a driver whose I/O thread is not there to join — in a forked child, where only
    /// the forking thread survives fork, or never started — and closes this process's copies
    /// of its descriptors.
    func abandonAfterFork() {
        stopping.store(true, ordering: .releasing)
        thread = nil
        releaseJobs()
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
