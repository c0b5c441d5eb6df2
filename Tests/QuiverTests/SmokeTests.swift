import Foundation
import Quiver
import QuiverCore
import Testing

@Suite("Listener basics")
struct SmokeTests {
    @Test("QUIC: one connection echoes", arguments: [Transport.quic, .tcp, .dtls])
    func oneConnection(transport: Transport) throws {
        let listener = try Listener(transport, tls: Identity.server(), bind: "127.0.0.1:0")
        let port = listener.localAddresses[0].port
        let server = Thread {
            guard let connection = try? listener.accept() else { return }
            try? serveEcho(connection)
        }
        server.start()
        let client = try Connection.connect(transport, to: "127.0.0.1", port: port, tls: Identity.client(), serverName: "localhost")
        let data = payload(seed: 1, count: 100_000)
        let echoed = try echoRoundTrip(client, data)
        #expect(echoed == data)
        try client.shutdown()
        listener.close()
    }
}
