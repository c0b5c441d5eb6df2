import Quiver
import QuiverCore
import Testing

/// `Listener.Options.maxConnections`: a full server refuses new clients at once, with an error
/// they can read, and admits them again when a connection has ended.
@Suite("Connection limits")
struct LimitTests {
    @Test("a listener at maxConnections refuses the next client at once, then admits one when a connection ended",
          arguments: [Transport.quic, .tcp, .dtls])
    func maxConnections(transport: Transport) async throws {
        try await onDedicatedThreads {
            var options = Listener.Options()
            options.maxConnections = 2
            let listener = try Listener(transport, tls: Identity.server(), bind: "127.0.0.1:0", options: options)
            defer { listener.close() }
            let port = listener.localAddresses[0].port
            func connect() async throws -> Connection {
                let connection = try await Connection.connect(transport, to: "127.0.0.1", port: port, tls: Identity.client(), serverName: "localhost")
                try await connection.write([1])  // TLS: the server's side of the handshake is done once this is read
                return connection
            }
            let first = try await connect()
            let second = try await connect()
            let accepted = [try await listener.accept(), try await listener.accept()]
            for connection in accepted { #expect(try await connection.read() == [1]) }

            // Refused by the server, not left to time out (the simulated EndpointTests check that
            // the refusal comes within one round trip).
            let error = await #expect(throws: QuiverError.self) { _ = try await connect() }
            if transport == .quic {
                #expect("\(error.map { "\($0)" } ?? "")".contains("transport code 2 (server at its connection limit)"))
                #expect(listener.statistics.quic?.connectionsRefused == 1)
            } else if transport == .dtls {
                #expect("\(error.map { "\($0)" } ?? "")".contains("internal_error"), "\(String(describing: error))")
                let dtls = try #require(listener.statistics.dtls)
                #expect(dtls.connectionsCreated == 2 && dtls.connectionsRefused == 1 && dtls.handshakesFailed == 0, "\(dtls)")
            } else {
                let tls = try #require(listener.statistics.tls)
                #expect(tls.connectionsAccepted == 2 && tls.connectionsRefused == 1 && tls.handshakesFailed == 0, "\(tls)")
            }

            // A connection ends, both sides; its slot is free once the server has let it go (the
            // listener forgets it just after its waiters are woken), so a client soon gets in.
            try await first.shutdown()
            try await accepted[0].shutdown()
            await accepted[0].waitUntilClosed()
            var third: Connection?
            for _ in 0..<50 where third == nil { third = try? await connect() }
            let admitted = try #require(third)
            #expect(try await listener.accept().read() == [1])
            try await admitted.shutdown()
            try await second.shutdown()
        }
    }
}
