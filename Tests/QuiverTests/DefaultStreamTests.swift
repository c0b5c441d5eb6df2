import Quiver
import QuiverCore
import Testing

/// `connection.quic.disableDefaultStream()`: every stream an ordinary one, for protocols without a
/// default stream (HTTP/3).
@Suite("Disabling the default stream")
struct DefaultStreamTests {
    /// A QUIC listener and a client connected to it, the server's side accepted.
    static func pair() async throws -> (Listener, client: Connection, server: Connection) {
        let listener = try Listener(.quic, tls: Identity.server(), bind: "127.0.0.1:0")
        let client = try await Connection.connect(.quic, to: "127.0.0.1", port: listener.localAddresses[0].port,
                                                  tls: Identity.client(), serverName: "localhost")
        return (listener, client, try await listener.accept())
    }

    @Test("a server that disabled it accepts the client's stream 0 like any other, before or after it arrived",
          arguments: [false, true])
    func serverAcceptsStreamZero(arrivedFirst: Bool) async throws {
        try await onDedicatedThreads {
            let (listener, client, server) = try await Self.pair()
            defer { listener.close() }
            if arrivedFirst {
                try await client.write([1, 2, 3])
                try client.finish()
                #expect(try await server.read() == [1, 2, 3])  // readable on the default stream until disabled
            }
            try #require(server.quic).disableDefaultStream()
            if !arrivedFirst {
                try await client.write([1, 2, 3])
                try client.finish()
            }
            let stream = try await server.acceptStream()
            #expect(stream.id == 0)
            if !arrivedFirst {
                var received: [UInt8] = []
                for try await chunk in stream.inbound { received += chunk }
                #expect(received == [1, 2, 3])
            }
            try await stream.write([4])
            try stream.finish()
            #expect(try await client.read() == [4])
            // The default stream's calls now say there is none.
            let error = await #expect(throws: QuiverError.self) { _ = try await server.read() }
            #expect(error?.code == .configuration)
            try await client.shutdown()
        }
    }

    @Test("a client that disabled it opens stream 0 with openStream; once in use it cannot be disabled")
    func client() async throws {
        try await onDedicatedThreads {
            let (listener, client, server) = try await Self.pair()
            defer { listener.close() }
            try #require(client.quic).disableDefaultStream()
            #expect(throws: QuiverError.self) { try client.write([1]) }
            let stream = try await client.openStream()
            #expect(stream.id == 0)
            try await stream.write([9])
            #expect(try await server.read() == [9])  // the server still has its default stream

            let (otherListener, other, otherServer) = try await Self.pair()
            defer { otherListener.close() }
            try await other.write([1])
            let inUse = #expect(throws: QuiverError.self) { try #require(other.quic).disableDefaultStream() }
            #expect(inUse?.code == .configuration)
            withExtendedLifetime(otherServer) {}  // a Connection nobody holds is closed
        }
    }

    @Test("TLS has only its default stream: no QUIC view to disable it with")
    func tls() async throws {
        try await onDedicatedThreads {
            let listener = try Listener(.tcp, tls: Identity.server(), bind: "127.0.0.1:0")
            defer { listener.close() }
            let client = try await Connection.connect(.tcp, to: "127.0.0.1", port: listener.localAddresses[0].port,
                                                      tls: Identity.client(), serverName: "localhost")
            #expect(client.quic == nil)
        }
    }
}
