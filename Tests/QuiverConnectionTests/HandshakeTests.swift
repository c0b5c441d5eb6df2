import QuiverCore
import QuiverNetSim
@_spi(Wire) import QuiverQUIC
import QuiverTLS
import Testing

@Suite("Connection: handshake and transfers over the simulator")
struct HandshakeTests {
    @Test("Handshake completes and a stream echoes")
    func handshakeEcho() throws {
        let client = TransferClient(mode: .echo, sizes: [1000])
        let scenario = try Scenario(seed: 1, app: client)
        try scenario.run(timeLimit: .seconds(10))
        #expect(client.handshakeCompleted)
        #expect(client.errors.isEmpty)
        #expect(client.allCorrect)
        #expect(scenario.clientConnection.alpn == "echo")
        #expect(scenario.clientConnection.isHandshakeConfirmed)
    }
}
