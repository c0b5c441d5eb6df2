#if canImport(Glibc)
import Glibc
#endif
import Foundation
@testable import Quiver
import QuiverCore
import Synchronization
import Testing

/// One owner per engine: a connection's engine is touched only by its loop's thread (or, with
/// no loop running, under the core's lock), and code elsewhere reaches it through the loop.
/// Every QUIC engine access also checks this in debug builds (`QUICSession.engine`), so the
/// whole suite exercises it; these tests pin the mechanism down.
@Suite("One owner per engine")
struct OwnershipTests {
    @Test("a command from another thread runs on the loop's thread; with no loop, on the caller's")
    func commandsRunOnTheLoop() throws {
        let listener = try Listener(.quic, tls: Identity.server(), bind: "127.0.0.1:0")
        defer { listener.close() }
        let driver = listener.cores[0].driver
        #expect(!driver.isOnLoopThread)
        var ranOnLoop = false
        driver.perform { ranOnLoop = driver.isOnLoopThread }
        #expect(ranOnLoop)

        var options = Listener.Options()
        options.driver = .applicationDriven
        let driven = try Listener(.quic, tls: Identity.server(), bind: "127.0.0.1:0", options: options)
        defer { driven.close() }
        let caller = pthread_self()
        var ranHere = false
        driven.cores[0].driver.perform { ranHere = pthread_equal(pthread_self(), caller) != 0 }
        #expect(ranHere)
    }

    @Test("a loop parked for a fork runs nothing until released; on the loop or with no loop nothing is parked",
          .timeLimit(.minutes(1)))
    func parkedLoop() async throws {
        // On threads of its own: the suite's blocking tests hold the cooperative pool's threads
        // for seconds at a time, and this test's tasks must run within its time limit.
        try await onDedicatedThreads {
            let listener = try Listener(.quic, tls: Identity.server(), bind: "127.0.0.1:0")
            defer { listener.close() }
            let driver = listener.cores[0].driver
            let park = try #require(driver.parkLoop())
            let order = Mutex<[String]>([])
            // A command from another thread: the parked loop cannot run it before the release.
            let command = Task.detached(executorPreference: DedicatedExecutor.shared) { driver.perform { order.withLock { $0.append("command") } } }
            order.withLock { $0.append("released") }
            park.release()
            await command.value
            #expect(order.withLock { $0 } == ["released", "command"])

            var parkedOnLoop = true
            driver.perform { parkedOnLoop = driver.parkLoop() != nil }
            #expect(!parkedOnLoop)
            var options = Listener.Options()
            options.driver = .applicationDriven
            let driven = try Listener(.quic, tls: Identity.server(), bind: "127.0.0.1:0", options: options)
            defer { driven.close() }
            #expect(driven.cores[0].driver.parkLoop() == nil)
        }
    }

    /// The forked child abandons the parent's driver, taking its work-queue lock. Another thread
    /// that held that lock at the instant of fork does not exist in the child: with a
    /// `Synchronization.Mutex` (a futex that records its owner's thread id) the child crashed
    /// ("Unknown error occurred while attempting to acquire a Mutex"; seen once in ddd-01-fork
    /// under load). `Driver.fork()` holds the lock across fork, so no other thread has it then.
    @Test("forking while another thread keeps queueing work for the loop: every child abandons the driver and exits cleanly",
          .timeLimit(.minutes(1)))
    func forkWhileQueueing() async throws {
        try await onDedicatedThreads {  // as parkedLoop: not starved by the blocking tests
            let listener = try Listener(.quic, tls: Identity.server(), bind: "127.0.0.1:0")
            defer { listener.close() }
            let driver = listener.cores[0].driver
            let stop = Atomic<Bool>(false)
            let asked = Atomic<Int>(0)
            // Another thread takes the queue's lock back to back (asking whether a loop runs), as
            // threads queueing task jobs and commands do: it holds it most of the time. A thread of
            // its own, so that it runs while this one forks however busy the task pool is.
            let queueing = Thread {
                while !stop.load(ordering: .relaxed) {
                    if !driver.isOwnerHere { asked.add(1, ordering: .relaxed) }
                }
            }
            queueing.start()
            while asked.load(ordering: .relaxed) == 0 { await Task.yield() }
            var failures: [String] = []
            for _ in 0..<30 {  // with the Mutex, most of 30 children died
                let park = try #require(driver.parkLoop())
                let pid = driver.fork()
                if pid == 0 {
                    driver.abandonAfterFork()
                    _exit(0)
                }
                park.release()
                #expect(pid > 0)
                var status: Int32 = 0
                _ = waitpid(pid, &status, 0)
                let exitedCleanly = status & 0x7f == 0 && (status >> 8) & 0xff == 0
                if !exitedCleanly { failures.append("child \(pid): wait status \(status)") }
            }
            stop.store(true, ordering: .relaxed)
            #expect(failures.isEmpty)
        }
    }

    @Test("two loops waiting for each other's commands serve each other instead of deadlocking",
          .timeLimit(.minutes(1)))
    func loopsServeEachOther() async throws {
        try await onDedicatedThreads {  // as parkedLoop: not starved by the blocking tests
            var options = Listener.Options()
            options.eventLoops = 2
            let listener = try Listener(.quic, tls: Identity.server(), bind: "127.0.0.1:0", options: options)
            defer { listener.close() }
            let drivers = listener.cores.map(\.driver)
            // Each loop's task waits until the other's is running too, then asks the other loop to
            // run a command and waits for it: both loop threads wait at once.
            let arrived = Arrivals()
            let tasks = (0..<2).map { index in
                Task(executorPreference: drivers[index]) { () -> Bool in
                    arrived.count.add(1, ordering: .relaxed)
                    while arrived.count.load(ordering: .relaxed) < 2 {}
                    let other = drivers[1 - index]
                    var ranOnOther = false
                    other.perform { ranOnOther = other.isOnLoopThread }
                    return ranOnOther
                }
            }
            for task in tasks { #expect(await task.value) }
        }
    }

    private final class Arrivals: Sendable {
        let count = Atomic<Int>(0)
    }

    @Test("a blocking call on any loop's thread throws instead of stalling that loop")
    func blockingOnAnotherLoop() async throws {
        try await onDedicatedThreads {
            let first = try Listener(.quic, tls: Identity.server(), bind: "127.0.0.1:0")
            defer { first.close() }
            let second = try Listener(.quic, tls: Identity.server(), bind: "127.0.0.1:0")
            defer { second.close() }
            let client = try await Connection.connect(.quic, to: "127.0.0.1", port: second.localAddresses[0].port,
                                                      tls: Identity.client(), serverName: "localhost")
            try await client.write([1])
            let server = try await second.accept()
            #expect(try await server.read(maxBytes: 1) == [1])
            // A task on the first listener's loop, blocking on the second listener's connection.
            let error = await #expect(throws: QuiverError.self) {
                try await withTaskExecutorPreference(first.taskExecutor) { _ = try server.read() }
            }
            #expect(error?.code == .configuration)
            // Its non-blocking calls and properties are served by the other loop.
            let state = try await withTaskExecutorPreference(first.taskExecutor) { () throws -> Quiver.Stream.State in
                #expect(try server.tryRead() == nil)
                #expect(server.alpn == client.alpn)
                return server.defaultStream.state
            }
            #expect(state.receiving == .open)
        }
    }

    @Test("a task off the connection's loop hops to it for each call and back")
    func asyncCallsHop() async throws {
        try await onDedicatedThreads {
            let listener = try Listener(.tcp, tls: Identity.server(), bind: "127.0.0.1:0")
            defer { listener.close() }
            let client = try await Connection.connect(.tcp, to: "127.0.0.1", port: listener.localAddresses[0].port,
                                                      tls: Identity.client(), serverName: "localhost")
            let server = try await listener.accept()
            let driver = listener.cores[0].driver
            try await client.write([7, 8])
            #expect(try await server.read(maxBytes: 2) == [7, 8])
            #expect(!driver.isOnLoopThread)  // back on the dedicated executor
        }
    }
}
