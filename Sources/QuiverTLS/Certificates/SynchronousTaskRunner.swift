#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs an `async` operation to completion on the calling thread.
///
/// swift-certificates' `Verifier.validate` is `async`, but the handshake is synchronous. Blocking a
/// thread on a semaphore while the work runs on the cooperative pool can deadlock when the caller
/// is itself on that pool (it is two threads wide on a two-core machine). Instead, the operation
/// runs in a task whose executor preference is this runner: its nonisolated code is enqueued
/// here, and ``run(_:)`` executes those jobs itself, on the calling thread, until the operation
/// has finished. It waits only when the operation is suspended on something outside (which the
/// certificate verifier never is) and another thread will enqueue the continuation.
final class SynchronousTaskRunner<Result: Sendable>: TaskExecutor, @unchecked Sendable {
    // `jobs` and `result` are guarded by `mutex`; `condition` signals changes to either.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    private var jobs: [UnownedJob] = []
    private var result: Result?

    private init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        condition = .allocate(capacity: 1)
        condition.initialize(to: pthread_cond_t())
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        condition.deinitialize(count: 1)
        condition.deallocate()
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    /// Runs `operation` on the calling thread and returns its result.
    ///
    /// Never touches the cooperative pool, so it is safe to call from inside a task. Nested
    /// calls (from within another runner's operation) work too: each has its own queue.
    static func run(_ operation: @escaping @Sendable () async -> Result) -> Result {
        let runner = SynchronousTaskRunner()
        let task = Task(executorPreference: runner) {
            let value = await operation()
            runner.finish(with: value)
        }
        let value = runner.drain()
        _ = task
        return value
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        pthread_mutex_lock(mutex)
        jobs.append(job)
        pthread_cond_signal(condition)
        pthread_mutex_unlock(mutex)
    }

    private func finish(with value: Result) {
        pthread_mutex_lock(mutex)
        result = value
        pthread_cond_signal(condition)
        pthread_mutex_unlock(mutex)
    }

    /// Executes queued jobs on this thread until the operation has produced its result.
    private func drain() -> Result {
        let executor = asUnownedTaskExecutor()
        while true {
            pthread_mutex_lock(mutex)
            while jobs.isEmpty && result == nil {
                pthread_cond_wait(condition, mutex)
            }
            if jobs.isEmpty, let result {
                pthread_mutex_unlock(mutex)
                return result
            }
            let job = jobs.removeFirst()
            pthread_mutex_unlock(mutex)
            job.runSynchronously(on: executor)
        }
    }
}
