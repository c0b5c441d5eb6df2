#if canImport(Glibc)
import Glibc
#endif
import QuiverCore

/// A mutex with a condition variable: the lock under which one connection's (or one listener's)
/// state lives, and the place where blocked callers wait for it to change.
///
/// `pthread_mutex_t`/`pthread_cond_t` must not move, so they live in allocated memory.
final class Monitor: @unchecked Sendable {
    // @unchecked: the pthread objects are the synchronisation; all other state is guarded by them.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init() {
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)  // deadlines are `Instant`s
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        condition.deallocate()
    }

    func lock() { pthread_mutex_lock(mutex) }
    func unlock() { pthread_mutex_unlock(mutex) }

    @inline(__always)
    func withLock<Result, Failure: Error>(_ body: () throws(Failure) -> Result) throws(Failure) -> Result {
        lock()
        defer { unlock() }
        return try body()
    }

    /// Waits (the lock held) until signalled or `deadline` passes; spurious wake-ups happen, so
    /// callers re-check their condition.
    func wait(until deadline: Instant? = nil) {
        guard let deadline else {
            pthread_cond_wait(condition, mutex)
            return
        }
        var time = timespec(tv_sec: Int(deadline.nanoseconds / 1_000_000_000),
                            tv_nsec: Int(deadline.nanoseconds % 1_000_000_000))
        _ = pthread_cond_timedwait(condition, mutex, &time)
    }

    /// Wakes every waiter.
    func broadcast() { pthread_cond_broadcast(condition) }
}
