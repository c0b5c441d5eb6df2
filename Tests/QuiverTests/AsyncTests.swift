@testable import Quiver
import QuiverCore
import Testing

/// The async/await API: the same echo over TLS and QUIC, written with tasks instead of threads.
@Suite("Async API")
struct AsyncTests {
    /// An echo server in tasks: one child task per connection, each echoing its default
    /// stream and (QUIC) every stream the client opens, ended by `executeThenClose`.
    static func serve(_ listener: Listener,
                      executor: @Sendable (Connection) -> (any TaskExecutor)? = { _ in DedicatedExecutor.shared }) async throws {
        try await withThrowingDiscardingTaskGroup { group in
            for try await connection in listener.connections {
                group.addTask(executorPreference: executor(connection)) {
                    // One connection's failure ends that connection, not the server.
                    try? await connection.executeThenClose { connection in
                        try await withThrowingDiscardingTaskGroup { streams in
                            streams.addTask { try await echo(connection.defaultStream) }
                            guard connection.transport == .quic else { return }
                            for try await stream in connection.inboundStreams {
                                streams.addTask { try await echo(stream) }
                            }
                        }
                    }
                }
            }
        }
    }

    static func echo(_ stream: Quiver.Stream) async throws {
        for try await chunk in stream.inbound { try await stream.write(chunk) }
        try stream.finish()
    }

    /// `count` bytes that differ per `seed`. Written as a plain loop: in a debug build a
    /// generic `map` over 2 MB takes about 0.25 s of CPU, and 40 of them on the test executor's
    /// four threads, under load, starved the tasks that keep connections alive until they
    /// idled out (see ``payloads``).
    static func pattern(_ count: Int, seed: Int) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            for index in 0..<count { buffer[index] = UInt8(truncatingIfNeeded: index &* 31 &+ seed) }
            initialized = count
        }
    }

    /// The echo test's 20 payloads of 2 MB, made once for all its cases: made in each client's
    /// task they kept the shared executor busy for seconds (``pattern(_:seed:)``).
    static let payloads = (0..<20).map { pattern(2_000_000, seed: $0) }

    /// Where a test's tasks run: Swift Testing's pool would starve (see ``DedicatedExecutor``),
    /// so either dedicated threads or the event loops of the listener and connections — one
    /// loop for the listener, or two (each connection's tasks on its own loop).
    enum Executors: CustomStringConvertible, CaseIterable {
        case dedicatedThreads
        case eventLoop
        case twoEventLoops

        var description: String {
            switch self {
            case .dedicatedThreads: "dedicated threads"
            case .eventLoop: "the event loop"
            case .twoEventLoops: "two event loops"
            }
        }

        var options: Listener.Options {
            var options = Listener.Options()
            options.eventLoops = self == .twoEventLoops ? 2 : 1
            return options
        }

        func server(_ listener: Listener) -> (any TaskExecutor)? {
            self == .dedicatedThreads ? DedicatedExecutor.shared : listener.taskExecutor
        }

        /// For a connection's tasks, the server's and the client's.
        func connection(_ connection: Connection) -> (any TaskExecutor)? {
            self == .dedicatedThreads ? DedicatedExecutor.shared : connection.taskExecutor
        }
    }

    @Test("20 concurrent clients echo 2 MB each through an async server, TLS and QUIC, tasks on dedicated threads or the event loops",
          arguments: [Transport.quic, .tcp], Executors.allCases)
    func echoServer(transport: Transport, executors: Executors) async throws {
        try await onDedicatedThreads {
            let listener = try Listener(transport, tls: Identity.server(), bind: "127.0.0.1:0", options: executors.options)
            let port = listener.localAddresses[0].port
            let server = Task(executorPreference: executors.server(listener)) {
                try await Self.serve(listener) { executors.connection($0) }
            }
            try await withThrowingTaskGroup { clients in
                for index in 0..<20 {
                    clients.addTask {
                        let connection = try await Connection.connect(transport, to: "127.0.0.1", port: port, tls: Identity.client(), serverName: "localhost")
                        do {
                            try await withTaskExecutorPreference(executors.connection(connection)) {
                                let payload = Self.payloads[index]
                                // Write while reading: the echo comes back while we still send (backpressure both ways).
                                let writer = Task(executorPreference: executors.connection(connection)) {
                                    try await connection.write(payload)
                                    try connection.finish()
                                }
                                var received: [UInt8] = []
                                for try await chunk in connection.inbound { received += chunk }
                                try await writer.value
                                #expect(received == payload)
                                try await connection.shutdown()
                            }
                        } catch {
                            // What both ends were doing, for a failure that does not come back at will.
                            Issue.record("client \(index): \(error)\nclient: \(connection.debugDescription)\nserver: \(listener.statisticsDescription)")
                            throw error
                        }
                    }
                }
                try await clients.waitForAll()
            }
            listener.close()
            try await server.value  // the connection sequence ends with the listener
        }
    }

    @Test("QUIC streams: inboundStreams and openStream echo in parallel")
    func streams() async throws {
        try await onDedicatedThreads {
            let listener = try Listener(.quic, tls: Identity.server(), bind: "127.0.0.1:0")
            let server = Task(executorPreference: DedicatedExecutor.shared) { try await Self.serve(listener) }
            let connection = try await Connection.connect(.quic, to: "127.0.0.1", port: listener.localAddresses[0].port,
                                                          tls: Identity.client(), serverName: "localhost")
            try await withThrowingTaskGroup { group in
                for index in 0..<8 {
                    group.addTask {
                        let stream = try await connection.openStream()
                        let payload = Self.pattern(100_000, seed: index)
                        try await stream.write(payload)
                        try stream.finish()
                        var received: [UInt8] = []
                        for try await chunk in stream.inbound { received += chunk }
                        #expect(received == payload)
                    }
                }
                try await group.waitForAll()
            }
            try await connection.shutdown()
            listener.close()
            try await server.value
        }
    }

    @Test("cancelling a task waiting in read ends the wait; executeThenClose closes with the error code", arguments: [Transport.quic, .tcp, .dtls])
    func cancellation(transport: Transport) async throws {
        try await onDedicatedThreads {
            let listener = try Listener(transport, tls: Identity.server(), bind: "127.0.0.1:0")
            defer { listener.close() }
            let client = try await Connection.connect(transport, to: "127.0.0.1", port: listener.localAddresses[0].port,
                                                      tls: Identity.client(), serverName: "localhost")
            try await client.write([1])
            let server = try await listener.accept()
            let reader = Task(executorPreference: DedicatedExecutor.shared) {
                try await server.executeThenClose(errorCode: 7) { connection in
                    #expect(try await connection.read(maxBytes: 1) == [1])
                    return try await connection.read()  // nothing more comes: waits until cancelled
                }
            }
            reader.cancel()
            await #expect(throws: CancellationError.self) { try await reader.value }
            // The scope closed the connection rapidly, with its error code (TLS: a reset).
            let end = await #expect(throws: QuiverError.self) { _ = try await client.read() }
            #expect(server.closeInfo?.origin == .local)
            if transport == .quic {
                #expect(end?.applicationErrorCode == 7)
            }
        }
    }

    @Test("async calls refuse an application-driven listener instead of blocking a task")
    func applicationDriven() async throws {
        try await onDedicatedThreads {
            var options = Listener.Options()
            options.driver = .applicationDriven
            let listener = try Listener(.quic, tls: Identity.server(), bind: "127.0.0.1:0", options: options)
            defer { listener.close() }
            let error = await #expect(throws: QuiverError.self) { _ = try await listener.accept() }
            #expect(error?.code == .configuration)
        }
    }

    // MARK: - Tasks on the event loop (`taskExecutor`)

    @Test("a blocking call from a task on the event loop throws instead of waiting for its own thread", arguments: [Transport.quic, .tcp, .dtls])
    func blockingOnEventLoop(transport: Transport) async throws {
        try await onDedicatedThreads {
            let listener = try Listener(transport, tls: Identity.server(), bind: "127.0.0.1:0")
            defer { listener.close() }
            let executor = try #require(listener.taskExecutor)
            // Nothing to accept: the blocking accept would wait for the loop it runs on.
            let acceptError = await #expect(throws: QuiverError.self) {
                try await withTaskExecutorPreference(executor) { _ = try listener.accept() }
            }
            #expect(acceptError?.code == .configuration)
            let client = try await Connection.connect(transport, to: "127.0.0.1", port: listener.localAddresses[0].port,
                                                      tls: Identity.client(), serverName: "localhost")
            try await client.write([1])
            let server = try await listener.accept()
            #expect(try await server.read(maxBytes: 1) == [1])
            let readError = await #expect(throws: QuiverError.self) {
                try await withTaskExecutorPreference(executor) { _ = try server.read() }  // nothing more: would wait
            }
            #expect(readError?.code == .configuration)
            // The async overloads wait on the loop as usual.
            let echo = Task(executorPreference: executor) { try await server.read() }
            try await client.write([2])
            let received = try await echo.value
            #expect(received == [2])
        }
    }

    @Test("tasks on a closed listener's event loop are resumed and run to their end")
    func tasksOutliveTheirLoop() async throws {
        try await onDedicatedThreads {
            let listener = try Listener(.quic, tls: Identity.server(), bind: "127.0.0.1:0")
            let waiter = Task(executorPreference: listener.taskExecutor) { () async throws -> Int in
                var steps = 0
                for try await _ in listener.connections { steps += 100 }  // ends when the listener closes
                // The loop's thread is gone by now: these suspensions resume elsewhere.
                for _ in 0..<3 {
                    try? await Task.sleep(for: .milliseconds(1))
                    await Task.yield()
                    steps += 1
                }
                return steps
            }
            listener.close()
            #expect(try await waiter.value == 3)
        }
    }
}
