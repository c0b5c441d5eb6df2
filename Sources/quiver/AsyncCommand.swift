import Dispatch
import Synchronization

/// Runs the async body of a command from its synchronous `run()`: the body runs as a task on
/// Swift's cooperative pool while the main thread waits for it, and its error is rethrown.
///
/// Why not `AsyncParsableCommand`: its async `main` parks the main thread in `dispatch_main()`,
/// which retires the thread in a way valgrind 3.19 (Debian 12's, which `Benchmarks/run.py`
/// uses to count instructions per byte) cannot follow — it crashes at the next thread the
/// process creates. Waiting here costs the same: one idle main thread.
enum AsyncCommand {
    static func run(_ body: @escaping @Sendable () async throws -> Void) throws {
        let outcome = Outcome()
        let done = DispatchSemaphore(value: 0)
        Task {
            do { try await body() } catch { outcome.failure.withLock { $0 = error } }
            done.signal()
        }
        done.wait()
        if let error = outcome.failure.withLock({ $0 }) { throw error }
    }

    private final class Outcome: Sendable {
        let failure = Mutex<(any Error)?>(nil)
    }
}
