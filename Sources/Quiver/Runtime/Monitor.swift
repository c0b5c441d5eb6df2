#if canImport(Glibc)
import Glibc
#endif
import QuiverCore
import Synchronization

/// A mutex with three condition variables: the lock under which one connection's (or one
/// listener's) state lives, and the places where blocked callers wait for it to change.
///
/// Waiters say what they wait for (``Wake``): callers whose condition can change on any engine
/// operation (a stream limit raised, delivery, a closing period ending) are woken by
/// ``broadcastProgress()`` as well as by ``broadcast()``; writers waiting for send-buffer space
/// by ``broadcastRoom()``, which the session sends only once enough space is free for them;
/// callers whose condition changes only with an engine event (data or a stream arrived, the
/// handshake completed, the connection closed) only by ``broadcast()``. A busy connection makes
/// progress on every packet; waking its idle readers, or a writer for a few freed bytes, each
/// time would be a thundering herd.
///
/// Tasks wait here too: an `async` call that would block registers its continuation
/// (``awaiting(wake:_:afterAttempt:)``) and the broadcast that would wake a thread waiting for the same
/// thing resumes it — so async callers hold no thread while they wait.
///
/// `pthread_mutex_t`/`pthread_cond_t` must not move, so they live in allocated memory.
final class Monitor: @unchecked Sendable {
    // @unchecked: the pthread objects are the synchronisation; all other state is guarded by them.
    /// What a waiter waits for.
    enum Wake {
        /// Any change, including engine progress without events.
        case progress
        /// Events and state changes only.
        case events
        /// Send-buffer space (``broadcastRoom()``), events and state changes.
        case room
    }

    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    /// The progress, event and room conditions (guarded by the mutex), created when a thread
    /// first waits: tasks never use them, and a connection served by tasks only keeps none.
    private var conditions: UnsafeMutablePointer<pthread_cond_t>?

    /// A suspended task: what it waits for and how to resume it (guarded by the mutex).
    private struct Waiter {
        let token: UInt64
        let wake: Wake
        let continuation: UnsafeContinuation<Void, Never>
    }
    private var waiters: [Waiter] = []
    private let tokens = Atomic<UInt64>(0)
    /// How many broadcasts reached the waiters for progress, events and room (guarded by the
    /// mutex): a caller that learned it must wait in one lock hold and waits in a later one
    /// waits only if no broadcast came in between (``generation(for:)``).
    private var generations: (progress: UInt64, events: UInt64, room: UInt64) = (0, 0, 0)

    init() {
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        if let conditions {
            for index in 0..<3 { pthread_cond_destroy(conditions + index) }
            conditions.deallocate()
        }
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// The condition of `wake`, created with its two siblings on first use (lock held).
    private func condition(_ wake: Wake) -> UnsafeMutablePointer<pthread_cond_t> {
        let conditions = self.conditions ?? {
            let conditions = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 3)
            var attributes = pthread_condattr_t()
            pthread_condattr_init(&attributes)
            pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)  // deadlines are `Instant`s
            for index in 0..<3 { pthread_cond_init(conditions + index, &attributes) }
            pthread_condattr_destroy(&attributes)
            self.conditions = conditions
            return conditions
        }()
        return switch wake {
        case .progress: conditions
        case .events: conditions + 1
        case .room: conditions + 2
        }
    }

    func lock() { pthread_mutex_lock(mutex) }
    func unlock() { pthread_mutex_unlock(mutex) }

    @inline(__always)
    func withLock<Result, Failure: Error>(_ body: () throws(Failure) -> Result) throws(Failure) -> Result {
        lock()
        defer { unlock() }
        return try body()
    }

    /// Waits (the lock held) until woken for `wake` or `deadline` passes; spurious wake-ups
    /// happen, so callers re-check their condition.
    func wait(until deadline: Instant? = nil, for wake: Wake = .progress) {
        let condition = condition(wake)
        guard let deadline else {
            pthread_cond_wait(condition, mutex)
            return
        }
        var time = timespec(tv_sec: Int(deadline.nanoseconds / 1_000_000_000),
                            tv_nsec: Int(deadline.nanoseconds % 1_000_000_000))
        _ = pthread_cond_timedwait(condition, mutex, &time)
    }

    /// The count of broadcasts that wake waiters for `wake` so far (lock held).
    func generation(for wake: Wake) -> UInt64 {
        switch wake {
        case .progress: generations.progress
        case .events: generations.events
        case .room: generations.room
        }
    }

    /// Waits (the lock held) until a broadcast for `wake` after the one numbered `seen`
    /// (``generation(for:)``).
    func wait(for wake: Wake, since seen: UInt64) {
        while generation(for: wake) == seen { wait(for: wake) }
    }

    /// Wakes every waiter (lock held).
    func broadcast() {
        generations.progress &+= 1
        generations.events &+= 1
        generations.room &+= 1
        if let conditions {
            for index in 0..<3 { pthread_cond_broadcast(conditions + index) }
        }
        resumeWaiters { _ in true }
    }

    /// Wakes the waiters for progress only (lock held).
    func broadcastProgress() {
        generations.progress &+= 1
        if let conditions { pthread_cond_broadcast(conditions) }
        resumeWaiters { $0 == .progress }
    }

    /// Wakes the writers waiting for send-buffer space (lock held).
    func broadcastRoom() {
        generations.room &+= 1
        if let conditions { pthread_cond_broadcast(conditions + 2) }
        resumeWaiters { $0 == .room }
    }

    // MARK: - Tasks

    /// Resumes the task suspended with `token`, if it still is (its task was cancelled).
    private func cancel(_ token: UInt64) {
        lock()
        let index = waiters.firstIndex { $0.token == token }
        let waiter = index.map { waiters.remove(at: $0) }
        unlock()
        waiter?.continuation.resume()
    }

    /// Runs `attempt` under the lock until it yields a value, suspending the task between
    /// tries until woken for `wake`. `attempt` also says whether the caller must tell the
    /// driver about a command (then it is not suspended: the driver's answer may be what it
    /// waits for), which `afterAttempt` does outside the lock.
    @inline(__always)
    func awaiting<Value>(wake: Wake, _ attempt: () throws(QuiverError) -> (Value?, Bool),
                         afterAttempt: (Bool) -> Void) async throws -> Value {
        while true {
            try Task.checkCancellation()
            // An attempt that can finish now (data to read, room to write) needs no suspension:
            // the task keeps running, with no trip through its executor's queue. (Synchronous
            // helpers that return no `Result`, so the async frame every waiting task keeps
            // stays small: inlined into `Connection.acceptStream` it is 464 bytes.)
            if let value = try attemptNow(attempt, afterAttempt: afterAttempt) { return value }
            var pending = PendingAttempt<Value>()
            await suspend(for: wake) { pending.attempt(attempt) }
            if let value = try pending.finish(afterAttempt) { return value }
        }
    }

    /// Suspends the task until a broadcast for `wake` after the one numbered `seen`
    /// (``generation(for:)``), or its cancellation.
    func suspend(for wake: Wake, since seen: UInt64) async {
        await suspend(for: wake) { generation(for: wake) == seen }
    }

    /// Suspends the task until a broadcast for `wake` or its cancellation, unless `mustWait`,
    /// run under the lock, says otherwise.
    @inline(__always)
    private func suspend(for wake: Wake, _ mustWait: () -> Bool) async {
        let token = tokens.add(1, ordering: .relaxed).newValue  // names this suspension for cancel(_:)
        await withTaskCancellationHandler {
            await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
                lock()
                // Registered in the lock hold that found it must wait: no broadcast falls in
                // between. Cancelled before registering: the handler found nothing to resume.
                if mustWait(), !Task.isCancelled {
                    waiters.append(Waiter(token: token, wake: wake, continuation: continuation))
                    unlock()
                } else {
                    unlock()
                    continuation.resume()
                }
            }
        } onCancel: {
            cancel(token)
        }
    }

    /// One attempt under the lock, for ``awaiting(wake:_:afterAttempt:)``'s path that does not
    /// suspend: its value or error, or `nil` when the caller must take the suspending path. An attempt
    /// that found nothing but passed a command on to the driver also goes that way (it is
    /// resumed at once there): a task must not spin on attempts without ever yielding — on
    /// the event loop, the driver it waits for runs on its own thread.
    @inline(never)  // its locals stay off the frame of the async caller
    private func attemptNow<Value>(_ attempt: () throws(QuiverError) -> (Value?, Bool),
                                   afterAttempt: (Bool) -> Void) throws(QuiverError) -> Value? {
        lock()
        let outcome: Result<(Value?, Bool), QuiverError>
        do throws(QuiverError) { outcome = .success(try attempt()) } catch { outcome = .failure(error) }
        unlock()
        switch outcome {
        case .failure(let error):
            afterAttempt(false)
            throw error
        case .success((let value?, let service)):
            afterAttempt(service)
            return value
        case .success((nil, let service)):
            if service { afterAttempt(true) }
            return nil
        }
    }

    /// Resumes the waiters `matching` selects and drops them, in place (this runs after every
    /// engine operation: no new array).
    private func resumeWaiters(_ matching: (Wake) -> Bool) {
        guard !waiters.isEmpty else { return }
        waiters.removeAll { waiter in
            guard matching(waiter.wake) else { return false }
            waiter.continuation.resume()
            return true
        }
    }
}

/// The outcome of the attempt ``Monitor/awaiting(wake:_:afterAttempt:)`` makes as it
/// suspends. Taken apart by synchronous methods, so the async frame a waiting task keeps holds
/// the outcome once and none of the temporaries of matching it (a `Result` matched in the async
/// function itself made that frame 592 bytes instead of 304).
private struct PendingAttempt<Value> {
    private var outcome: Result<(Value?, Bool), QuiverError> = .success((nil, false))

    /// Runs `attempt` (the lock held); whether the task must wait.
    mutating func attempt(_ attempt: () throws(QuiverError) -> (Value?, Bool)) -> Bool {
        do throws(QuiverError) { outcome = .success(try attempt()) } catch { outcome = .failure(error) }
        guard case .success((nil, false)) = outcome else { return false }
        return true
    }

    /// After the suspension: tells `afterAttempt` whether a command was passed on; the value,
    /// the attempt's error, or `nil` to try again.
    @inline(never)
    func finish(_ afterAttempt: (Bool) -> Void) throws(QuiverError) -> Value? {
        switch outcome {
        case .failure(let error):
            afterAttempt(false)
            throw error
        case .success((let value, let service)):
            afterAttempt(service)
            return value
        }
    }
}
