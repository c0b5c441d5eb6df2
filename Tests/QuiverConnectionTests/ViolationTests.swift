import QuiverCore
import QuiverNetSim
@_spi(Wire) @testable import QuiverQUIC
import QuiverTLS
import Testing

/// A misbehaving peer, simulated by slipping forged frames into an established client's next
/// 1-RTT packet: the server must close with the right transport error, and the client must
/// learn it from CONNECTION_CLOSE.
@Suite("Connection: protocol violations close with the right error")
struct ViolationTests {
    static func violate(_ frame: Frame, seed: UInt64) throws -> (server: ConnectionCloseInfo?, client: ConnectionCloseInfo?) {
        let client = TransferClient(mode: .echo, sizes: [10])
        let server = EchoServer()
        let scenario = try Scenario(seed: seed, app: client, server: server)
        try scenario.run()
        scenario.clientConnection.pendingControl.append(frame)
        scenario.net.runToIdle(timeLimit: .seconds(10))
        let serverClose = server.events.compactMap { event -> ConnectionCloseInfo? in
            if case .closed(let info) = event { return info } else { return nil }
        }.first
        return (serverClose, client.closeInfo)
    }

    @Test("Data beyond the stream's flow-control limit: FLOW_CONTROL_ERROR")
    func flowControl() throws {
        let (server, client) = try Self.violate(.stream(id: StreamID(rawValue: 4), offset: 10_000_000, data: [1], fin: false), seed: 40)
        #expect(server?.origin == .local)
        #expect(server?.frame.transportErrorCode == .flowControlError)
        #expect(client?.origin == .peer)
        #expect(client?.frame.transportErrorCode == .flowControlError)
    }

    @Test("A stream beyond the advertised limit: STREAM_LIMIT_ERROR")
    func streamLimit() throws {
        let id = StreamID(index: 500, initiator: .client, direction: .bidirectional)
        let (server, client) = try Self.violate(.stream(id: id, offset: 0, data: [1], fin: false), seed: 41)
        #expect(server?.frame.transportErrorCode == .streamLimitError)
        #expect(client?.frame.transportErrorCode == .streamLimitError)
    }

    @Test("Data on the server's own unopened stream: STREAM_STATE_ERROR")
    func streamState() throws {
        let id = StreamID(index: 0, initiator: .server, direction: .unidirectional)
        let (server, client) = try Self.violate(.stream(id: id, offset: 0, data: [1], fin: false), seed: 42)
        #expect(server?.frame.transportErrorCode == .streamStateError)
        #expect(client?.frame.transportErrorCode == .streamStateError)
    }

    @Test("HANDSHAKE_DONE from a client: PROTOCOL_VIOLATION")
    func handshakeDoneFromClient() throws {
        let (server, client) = try Self.violate(.handshakeDone, seed: 43)
        #expect(server?.frame.transportErrorCode == .protocolViolation)
        #expect(client?.frame.transportErrorCode == .protocolViolation)
    }

    @Test("Garbage datagrams are dropped without harm")
    func garbage() throws {
        let client = TransferClient(mode: .echo, sizes: [100_000])
        let scenario = try Scenario(seed: 44, app: client)
        var rng = SplitMix64(seed: 44)
        for i in 0..<2000 {
            let length = Int(rng.next() % 1500)
            var bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            if i % 2 == 0, !bytes.isEmpty { bytes[0] = 0x40 | (bytes[0] & 0x3f) }  // short-header-looking
            scenario.net.inject(SimulatedDatagram(bytes: bytes, source: i % 3 == 0 ? Addresses.client : Addresses.server,
                                                  destination: i % 3 == 0 ? Addresses.server : Addresses.client))
        }
        try scenario.run()
        #expect(client.allCorrect)
    }
}
