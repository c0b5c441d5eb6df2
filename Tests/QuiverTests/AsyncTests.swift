import Quiver
import QuiverCore
import Testing

/// The async/await API: the same echo over TLS and QUIC, written with tasks instead of threads.
@Suite("Async API")
struct AsyncTests {
    /// An echo server in tasks: one child task per connection, each echoing its default
    /// stream and (QUIC) every stream the client opens, ended by `executeThenClose`.
    static func serve(_ listener: Listener) async throws {
        try await withThrowingDiscardingTaskGroup { group in
            for try await connection in listener.connections {
                group.addTask {
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

    static func pattern(_ count: Int, seed: Int) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ seed) } }

    @Test("20 concurrent clients echo 2 MB each through an async server, TLS and QUIC", arguments: [Transport.quic, .tcp])
    func echoServer(transport: Transport) async throws {
        try await onDedicatedThreads {
            let listener = try Listener(transport, tls: Identity.server(), bind: "127.0.0.1:0")
            let port = listener.localAddresses[0].port
            let server = Task(executorPreference: DedicatedExecutor.shared) { try await Self.serve(listener) }
            try await withThrowingTaskGroup { clients in
                for index in 0..<20 {
                    clients.addTask {
                        let connection = try await Connection.connect(transport, to: "127.0.0.1", port: port, tls: Identity.client(), serverName: "localhost")
                        let payload = Self.pattern(2_000_000, seed: index)
                        // Write while reading: the echo comes back while we still send (backpressure both ways).
                        let writer = Task(executorPreference: DedicatedExecutor.shared) {
                            try await connection.write(payload)
                            try connection.finish()
                        }
                        var received: [UInt8] = []
                        for try await chunk in connection.inbound { received += chunk }
                        try await writer.value
                        #expect(received == payload)
                        try await connection.shutdown()
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

    @Test("cancelling a task waiting in read ends the wait; executeThenClose closes with the error code", arguments: [Transport.quic, .tcp])
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
}
