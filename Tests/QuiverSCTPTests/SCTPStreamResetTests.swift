import QuiverCore
import QuiverNetSim
@testable import QuiverSCTP
import Testing

/// Stream reconfiguration (RFC 6525): the Outgoing SSN Reset Request, which ends a stream
/// after its data (WebRTC closes data channels with it; Quiver's half-close of a stream).
@Suite struct SCTPStreamResetTests {
    private func events(_ association: SCTPAssociation) -> [SCTPEvent] {
        var events: [SCTPEvent] = []
        while let event = association.nextEvent() { events.append(event) }
        return events
    }

    @Test(arguments: [0.0, 0.1, 0.3])
    func resetAfterDataEndsTheStreamThenItStartsAgain(loss: Double) throws {
        var link = LinkConfiguration()
        link.lossRate = loss
        let pair = SCTPPair(seed: 11, link: link)
        let (client, server) = try pair.connect()
        #expect(client.peerSupportsStreamReset && server.peerSupportsStreamReset)
        _ = events(client)
        _ = events(server)
        let messages = (0..<20).map { index in (0..<(100 + index * 300)).map { UInt8(truncatingIfNeeded: $0 &+ index) } }
        for message in messages { try client.send(message, stream: 1) }
        try client.resetOutgoingStreams([1], now: pair.network.now)
        #expect(throws: SCTPError.streamResetting(1)) { try client.send([1], stream: 1) }
        try client.send([9], stream: 2)  // other streams go on
        var received: [SCTPMessage] = []
        var serverEvents: [SCTPEvent] = []
        var clientEvents: [SCTPEvent] = []
        try pair.network.run(until: {
            received += readAll(server)
            serverEvents += events(server)
            clientEvents += events(client)
            return clientEvents.contains(.outgoingStreamsReset([1]))
        }, timeLimit: .seconds(3600))
        received += readAll(server)
        // Everything sent before the reset was read before its end was announced.
        #expect(received.filter { $0.stream == 1 }.map(\.bytes) == messages)
        #expect(serverEvents.filter { $0 != .readable } == [.incomingStreamsReset([1])])
        // The stream is usable again, from SSN 0.
        try client.send(Array("again".utf8), stream: 1)
        var again: [SCTPMessage] = []
        try pair.network.run(until: {
            again += readAll(server).filter { $0.stream == 1 }
            return !again.isEmpty
        }, timeLimit: .seconds(3600))
        #expect(again.map(\.bytes) == [Array("again".utf8)])
    }

    @Test func aPeerWithoutTheExtensionIsNotAsked() throws {
        let pair = SCTPPair { $0.association.streamReset = false }
        let (client, _) = try pair.connect()
        #expect(!client.peerSupportsStreamReset)
        #expect(throws: SCTPError.streamResetUnsupported) { try client.resetOutgoingStreams([0], now: pair.network.now) }
    }

    /// §5.2.1 and §5.2.3: other requests are denied, a retransmitted request gets its first
    /// answer again, and a request out of sequence is answered Bad Sequence Number.
    @Test func requestsOtherThanOutgoingResetAreDeniedAndSequenceNumbersChecked() throws {
        let pair = SCTPPair()
        let (client, server) = try pair.connect()
        _ = client
        pair.network.runToIdle(timeLimit: .seconds(1))
        let firstSeq = server.peerRequestSeqForTests
        func send(_ type: UInt16, seq: UInt32) throws -> [SCTPParameter] {
            let parameter = SCTPParameter(type: type, value: [UInt8(seq >> 24), UInt8((seq >> 16) & 0xFF), UInt8((seq >> 8) & 0xFF),
                                                              UInt8(seq & 0xFF), 0, 0, 0, 0, 0, 0, 0, 0])
            let packet = SCTPPacket(sourcePort: 5001, destinationPort: 5000, verificationTag: server.localTag,
                                    chunks: [.reconfig(parameters: [parameter])])
            pair.server.endpoint.receive(packet.encoded(), from: pair.client.address, now: pair.network.now)
            while let (bytes, _) = pair.server.endpoint.nextDatagram(now: pair.network.now) {
                for chunk in try SCTPPacket.parse(bytes).chunks { if case .reconfig(let parameters) = chunk { return parameters } }
            }
            return []
        }
        func result(_ parameters: [SCTPParameter]) -> UInt32? {
            guard let value = parameters.first?.value, value.count >= 8 else { return nil }
            return value[4...7].reduce(0) { $0 << 8 | UInt32($1) }
        }
        #expect(result(try send(SCTPParameter.incomingSSNResetRequest, seq: firstSeq)) == 2)  // denied
        #expect(result(try send(SCTPParameter.incomingSSNResetRequest, seq: firstSeq)) == 2)  // again: the same answer
        #expect(result(try send(SCTPParameter.addOutgoingStreamsRequest, seq: firstSeq &+ 5)) == 5)  // bad sequence number
    }
}
