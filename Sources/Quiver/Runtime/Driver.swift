#if canImport(Glibc)
import Glibc
#endif
import QuiverCore
import Synchronization

/// The event-handling half of a listener or client connection: sockets, timers and engines.
protocol DriverCore: AnyObject, Sendable {
    /// The core's lock: held while it handles events, and by whoever owns its engines when no
    /// loop thread does (see ``Driver/perform(_:)``).
    var lock: Monitor { get }
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
///
/// **One owner per engine.** The engines of a core (its QUIC connections and endpoint, its TLS
/// streams) are touched only by their owner: the loop thread while it runs, and otherwise —
/// an application-driven driver, or before the loop starts or after it ended — whoever holds
/// the core's lock. Code on another thread reaches them through ``perform(_:)``, which hands
/// the work to the loop and waits for it (tasks hop to the loop as their executor instead).
final class Driver: TaskExecutor, @unchecked Sendable {
    // @unchecked: `core` and `thread` are set once before use; `stopping`, `loopThread` and
    // `wakePending` are atomic; `queue` is a Mutex.
    let isThreadAssisted: Bool
    let poll: EventPoll
    private(set) weak var core: (any DriverCore)?
    private var thread: pthread_t?
    private let stopping = Atomic<Bool>(false)
    /// The I/O thread's `pthread_self()` while it runs (0 before and after).
    private let loopThread = Atomic<UInt>(0)
    /// A wake-up asked for on the I/O thread itself: the next round polls without waiting.
    private let wakePending = Atomic<Bool>(false)

    /// What the loop runs between rounds: jobs of tasks that prefer this executor, and
    /// commands other threads hand it (``perform(_:)``).
    private enum Work {
        case job(UnownedJob)
        case command(Command)
    }
    private struct Queue {
        var work: [Work] = []
        /// The command of another driver that this loop's thread waits for (``perform(_:)``
        /// called on it): new commands for this loop nudge it, and it runs them while it waits.
        var awaited: Command?
    }
    /// `nil` while no loop runs the work — an application-driven driver, one not started yet,
    /// or after the loop ended: jobs then go to the global executor and commands run at once
    /// under the core's lock. A ``WorkQueue``, not a `Mutex`: ``fork()`` holds its lock.
    private let queue = WorkQueue<Queue>()

    init(threadAssisted: Bool) throws(QuiverError) {
        isThreadAssisted = threadAssisted
        poll = try EventPoll()
    }

    /// Attaches the core and, when thread-assisted, starts the I/O thread (which holds the
    /// core until ``stop()``).
    func start(_ core: any DriverCore) throws(QuiverError) {
        self.core = core
        guard isThreadAssisted else { return }
        queue.withLock { $0 = Queue() }
        let context = Unmanaged.passRetained(ThreadContext(driver: self, core: core)).toOpaque()
        var handle = pthread_t()
        let rc = pthread_create(&handle, nil, { raw in
            let context = Unmanaged<ThreadContext>.fromOpaque(raw!).takeRetainedValue()
            context.driver.run(context.core)
            return nil
        }, context)
        guard rc == 0 else {
            Unmanaged<ThreadContext>.fromOpaque(context).release()
            releaseQueue()
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
        pthread_setspecific(currentDriverKey, Unmanaged.passUnretained(self).toOpaque())
        var queued: [Work] = []
        while !stopping.load(ordering: .acquiring) {
            let busy = wakePending.exchange(false, ordering: .acquiringAndReleasing) || queue.withLock { !($0?.work.isEmpty ?? true) }
            let timeout = busy ? 0 : EventPoll.timeout(until: core.nextDeadline, now: .now())
            let ready = poll.wait(timeoutMilliseconds: timeout)
            guard !stopping.load(ordering: .acquiring) else { break }
            core.handleEvents(ready)
            // The work queued so far (the tasks those events resumed, commands from other
            // threads); what it queues runs after the next round of events, so I/O is never
            // starved.
            queue.withLock { swap(&queued, &$0!.work) }
            for work in queued {
                switch work {
                case .job(let job): job.runSynchronously(on: asUnownedTaskExecutor())
                case .command(let command): command.run()
                }
            }
            queued.removeAll(keepingCapacity: true)
        }
        pthread_setspecific(currentDriverKey, nil)
        loopThread.store(0, ordering: .releasing)
        releaseQueue()
    }

    /// Ends the queue: its jobs, and every later one, go to the global executor; its commands,
    /// and every later one, run under the core's lock (no loop owns the engines any more).
    private func releaseQueue() {
        let left = queue.withLock { queue in
            defer { queue = nil }
            return queue?.work ?? []
        }
        for work in left {
            switch work {
            case .job(let job): globalConcurrentExecutor.enqueue(job)
            case .command(let command): runWithoutLoop(command)
            }
        }
    }

    /// Runs `command` with no loop running: under the core's lock, the owner's right then
    /// (unless the command takes it itself).
    private func runWithoutLoop(_ command: Command) {
        guard command.locksCore, let lock = core?.lock else { return command.run() }
        lock.withLock { command.run() }
    }

    /// Runs `body` as the owner of this driver's engines (see the type's documentation), and
    /// returns when it ran: directly on the loop thread; from another thread, as a command the
    /// loop runs after its current round of events, the caller waiting; with no loop running,
    /// on the caller's thread under the core's lock.
    ///
    /// A loop thread waiting here for another loop runs its own loop's commands meanwhile, so
    /// two loops asking each other never deadlock. `body` must not wait for anything itself.
    /// A `body` that takes the core's lock itself says so (`locksCore: false`).
    func perform(locksCore: Bool = true, _ body: () -> Void) {
        if isOnLoopThread { return body() }
        withoutActuallyEscaping(body) { body in
            let command = Command(body, locksCore: locksCore)
            let waiter = Driver.current  // a loop thread: it serves its own commands while it waits
            let previous = waiter?.queue.withLock { queue -> Command? in
                defer { queue?.awaited = command }
                return queue?.awaited
            }
            let (queued, busyElsewhere) = queue.withLock { queue -> (Bool, Command?) in
                guard queue != nil else { return (false, nil) }
                queue!.work.append(.command(command))
                return (true, queue!.awaited)
            }
            if queued {
                poll.wake()
                busyElsewhere?.nudge()  // this loop's thread waits for another loop: it runs this now
                command.wait(serving: waiter.map { waiter in { waiter.runQueuedCommands() } })
            } else {
                runWithoutLoop(command)
            }
            waiter?.queue.withLock { $0?.awaited = previous }
        }
    }

    /// Runs the commands queued for this loop now (its thread waits in ``perform(_:)`` for
    /// another loop); task jobs stay queued.
    private func runQueuedCommands() {
        let commands = queue.withLock { queue -> [Command] in
            guard let work = queue?.work else { return [] }
            var commands: [Command] = []
            queue!.work = work.filter { item in
                guard case .command(let command) = item else { return true }
                commands.append(command)
                return false
            }
            return commands
        }
        for command in commands { command.run() }
    }

    /// Parks the loop's thread between two rounds — holding no lock, inside no engine and no
    /// runtime call — until ``LoopPark/release()``, and returns once it waits there. For
    /// `fork`, which copies only the calling thread: the child must not find something the
    /// loop had half done (an engine mid-change, a lock taken, a Swift runtime cache being
    /// filled, which deadlocks the child's first use of that cache). `nil`, parking nothing,
    /// where no loop thread runs or the caller is the loop's thread.
    func parkLoop() -> LoopPark? {
        guard !isOnLoopThread else { return nil }
        let park = LoopPark()
        let command = Command({ park.hold() }, locksCore: false)
        let queued = queue.withLock { queue -> Bool in
            guard queue != nil else { return false }
            queue!.work.append(.command(command))
            return true
        }
        guard queued else { return nil }
        poll.wake()
        park.waitUntilHeld()
        return park
    }

    /// Whether the caller may touch this driver's engines: it runs on the loop's thread, or no
    /// loop runs (then the caller must hold the core's lock, which this does not check).
    var isOwnerHere: Bool { isOnLoopThread || queue.withLock { $0 == nil } }

    /// The driver whose loop runs on the calling thread, if any.
    static var current: Driver? {
        pthread_getspecific(currentDriverKey).map { Unmanaged<Driver>.fromOpaque($0).takeUnretainedValue() }
    }

    /// Runs `job` on the I/O thread (the global executor when the driver is not running
    /// one, or no longer).
    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let accepted = queue.withLock { queue -> Bool in
            guard queue != nil else { return false }
            queue!.work.append(.job(job))
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

    /// What a blocking call that would wait on a loop's thread throws: a task running on a
    /// loop's executor would stall every connection of that loop — or wait for the very thread
    /// it holds.
    static var wouldBlockLoop: QuiverError {
        QuiverError(.configuration, "a blocking call on an event loop's thread (a task on a listener's or connection's taskExecutor) would stall the loop: use the async overload")
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

    /// One non-blocking round: what is ready now, due timers, output. Nothing on a
    /// thread-assisted driver: its thread handles events (and owns the engines).
    func handleEventsNow() {
        guard let core, !isThreadAssisted, !isStopped else { return }
        core.handleEvents(poll.wait(timeoutMilliseconds: 0))
    }

    /// Stops the I/O thread: joins it, or detaches it when called from a loop's thread — its
    /// own, or another's, which must not wait for a loop that may be waiting for it
    /// (``perform(_:)``). The descriptors stay open until the driver is released (see
    /// ``EventPoll``).
    func stop() {
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        guard let thread else { return releaseQueue() }
        poll.wake()
        if Driver.current == nil { pthread_join(thread, nil) } else { pthread_detach(thread) }
    }

    var isStopped: Bool { stopping.load(ordering: .acquiring) }

    /// Stops a driver whose I/O thread is not there to join — in a forked child, where only
    /// the forking thread survives fork, or never started — and closes this process's copies
    /// of its descriptors. Work queued for the loop is dropped, not run: in a child it belongs
    /// to the parent's tasks and threads, which the parent runs.
    func abandonAfterFork() {
        stopping.store(true, ordering: .releasing)
        thread = nil
        queue.withLock { $0 = nil }
        poll.closeAfterFork()
    }

    /// Forks the process (a connection hand-off) with this driver's work-queue lock held, so
    /// that no other thread holds it at that instant — a task's job being queued, a command
    /// being handed over — and releases it in the parent and in the child. Other threads do
    /// not survive into the child: a lock one of them held would stay held there for good.
    /// Call it with the loop parked (``parkLoop()``).
    ///
    /// - Returns: `fork()`'s result: the child's pid in the parent, 0 in the child, −1 (errno
    ///   set) when it failed.
    func fork() -> pid_t {
        queue.lockForFork()
        let pid = Glibc.fork()
        let failure = errno
        queue.unlockAfterFork()
        errno = failure
        return pid
    }

    /// Whether ``abandonAfterFork()`` ran.
    var isAbandoned: Bool { isStopped && poll.isAbandoned }
}

/// The thread-specific slot naming the driver whose loop runs on a thread (``Driver/current``).
private let currentDriverKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key, nil)
    return key
}()

/// The loop's work queue behind a pthread mutex. Not a `Synchronization.Mutex`: on Linux that
/// is a priority-inheritance futex recording its owner's thread id, and after `fork` the child's
/// thread has another id — it could not unlock one ``Driver/fork()`` held (a fatal error), and
/// taking one another parent thread held at that instant fails too (the owner is gone). A
/// default pthread mutex checks no owner: the child unlocks what its thread locked.
private final class WorkQueue<State>: @unchecked Sendable {
    // @unchecked: `state` is guarded by `mutex`.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var state: State?

    init() { pthread_mutex_init(mutex, nil) }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func withLock<Result>(_ body: (inout State?) -> Result) -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return body(&state)
    }

    /// ``Driver/fork()``: held across `fork()`.
    func lockForFork() { pthread_mutex_lock(mutex) }
    /// ``Driver/fork()``: released in the parent, and in the child by its only thread.
    func unlockAfterFork() { pthread_mutex_unlock(mutex) }
}

/// A pthread mutex and condition: where one thread waits for another's change (``Command``,
/// ``LoopPark``). Callers change and test their state with ``lock()`` held.
private final class Rendezvous: @unchecked Sendable {
    // @unchecked: the pthread objects are made for sharing between threads.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    func lock() { pthread_mutex_lock(mutex) }
    func unlock() { pthread_mutex_unlock(mutex) }
    /// Waits for a ``change(_:)`` (the lock held, as `pthread_cond_wait` needs).
    func wait() { pthread_cond_wait(condition, mutex) }

    /// Makes `change` under the lock and wakes the waiters.
    func change(_ change: () -> Void) {
        lock()
        change()
        pthread_cond_broadcast(condition)
        unlock()
    }

    /// Waits until `done` holds (tested under the lock).
    func wait(until done: () -> Bool) {
        lock()
        while !done() { wait() }
        unlock()
    }
}

/// A loop's thread parked by ``Driver/parkLoop()`` until ``release()``.
final class LoopPark: @unchecked Sendable {
    // @unchecked: `held` and `released` are guarded by `rendezvous`.
    private let rendezvous = Rendezvous()
    private var held = false
    private var released = false

    /// On the loop's thread: says it is parked, then waits for ``release()``.
    fileprivate func hold() {
        rendezvous.change { held = true }
        rendezvous.wait { released }
    }

    /// Waits until the loop's thread is parked.
    fileprivate func waitUntilHeld() { rendezvous.wait { held } }

    /// Lets the loop's thread go on (in the parent; a forked child has no such thread).
    func release() { rendezvous.change { released = true } }
}

/// A closure another thread hands a loop (``Driver/perform(_:)``), and where that thread waits
/// until it ran.
private final class Command: @unchecked Sendable {
    // @unchecked: `body` is taken by the one thread that runs it; `ran` and `nudged` are
    // guarded by `rendezvous`.
    private var body: (() -> Void)?
    /// Whether the core's lock must be held to run it when no loop runs it.
    let locksCore: Bool
    private let rendezvous = Rendezvous()
    private var ran = false
    /// Set when the waiting thread has its own loop's commands to run (``nudge()``).
    private var nudged = true  // commands queued before it started waiting

    init(_ body: @escaping () -> Void, locksCore: Bool) {
        self.body = body
        self.locksCore = locksCore
    }

    func run() {
        do {
            let body = self.body.take()
            body?()
        }  // released before the waiter is told: its `withoutActuallyEscaping` checks that
        rendezvous.change { ran = true }
    }

    func nudge() { rendezvous.change { nudged = true } }

    /// Waits until the command ran; when nudged meanwhile, calls `serving` (outside the lock).
    func wait(serving: (() -> Void)?) {
        rendezvous.lock()
        while !ran {
            if nudged, let serving {
                nudged = false
                rendezvous.unlock()
                serving()
                rendezvous.lock()
                continue
            }
            rendezvous.wait()
        }
        rendezvous.unlock()
    }
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
