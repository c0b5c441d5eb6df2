import Crypto
import QuiverCore
import QuiverNetSim
@testable import QuiverSCTP
import Testing

/// SCTP-AUTH (RFC 4895): negotiation, AUTH chunks on what the peer asked for, forged and
/// unauthenticated chunks dropped, endpoint pair shared keys.
@Suite struct SCTPAuthTests {
    static let dataAndSack = SCTPAuthentication(chunks: [SCTPChunkType.data, SCTPChunkType.sack])

    private func pair(client: SCTPAuthentication?, server: SCTPAuthentication?, link: LinkConfiguration = LinkConfiguration()) -> SCTPPair {
        var count = 0
        return SCTPPair(link: link) { configuration in
            // SCTPPair configures the client first, then the server.
            configuration.association.authentication = count == 0 ? client : server
            count += 1
        }
    }

    @Test func negotiatedAndUsedUnderLoss() throws {
        var link = LinkConfiguration()
        link.lossRate = 0.1
        let pair = pair(client: Self.dataAndSack, server: Self.dataAndSack, link: link)
        let (client, server) = try pair.connect()
        #expect(client.isAuthenticating && server.isAuthenticating)
        let messages = (0..<50).map { index in (0..<(10 + index * 97)).map { UInt8(truncatingIfNeeded: $0 &* 3 &+ index) } }
        for message in messages { try client.send(message, stream: 1) }
        var received: [SCTPMessage] = []
        try pair.network.run(until: {
            received += readAll(server)
            return received.count == messages.count
        }, timeLimit: .seconds(600))
        #expect(received.map(\.bytes) == messages)
        // Every packet with DATA or SACK has an AUTH chunk before them.
        for packet in pair.client.sent + pair.server.sent {
            let types = packet.chunks.map(\.type)
            guard let first = types.firstIndex(where: { $0 == SCTPChunkType.data || $0 == SCTPChunkType.sack }) else { continue }
            #expect(types[..<first].contains(SCTPChunkType.auth), "\(types)")
        }
    }

    @Test func offeredByOneSideOnlyIsNotUsed() throws {
        let pair = pair(client: Self.dataAndSack, server: nil)
        let (client, server) = try pair.connect()
        #expect(!client.isAuthenticating && !server.isAuthenticating)
        try client.send([1, 2, 3], stream: 0)
        var received: [SCTPMessage] = []
        try pair.network.run(until: {
            received += readAll(server)
            return !received.isEmpty
        })
        #expect(!(pair.client.sent + pair.server.sent).contains { $0.chunks.contains { $0.type == SCTPChunkType.auth } })
    }

    /// §6.3: DATA without an AUTH before it, or after an AUTH with a wrong HMAC, is dropped.
    @Test func unauthenticatedAndForgedChunksAreDropped() throws {
        let pair = pair(client: Self.dataAndSack, server: Self.dataAndSack)
        let (client, server) = try pair.connect()
        _ = client
        pair.network.runToIdle(timeLimit: .seconds(1))
        let tsn = server.receivedTSNForTests &+ 1
        let data = SCTPChunk.data(SCTPDataChunk(tsn: tsn, stream: 0, ssn: 0, ppid: 0, payload: [9, 9, 9]))
        let plain = SCTPPacket(sourcePort: 5001, destinationPort: 5000, verificationTag: server.localTag, chunks: [data])
        pair.server.endpoint.receive(plain.encoded(), from: pair.client.address, now: pair.network.now)
        let forged = SCTPPacket(sourcePort: 5001, destinationPort: 5000, verificationTag: server.localTag,
                                chunks: [.auth(keyID: 0, hmacID: SCTPAuthentication.sha256, hmac: Array(repeating: 7, count: 32)), data])
        pair.server.endpoint.receive(forged.encoded(), from: pair.client.address, now: pair.network.now)
        #expect(server.read() == nil)
        #expect(server.receivedTSNForTests == tsn &- 1)
        // An HMAC we did not ask for gets an Unsupported HMAC Identifier error.
        let unsupported = SCTPPacket(sourcePort: 5001, destinationPort: 5000, verificationTag: server.localTag,
                                     chunks: [.auth(keyID: 0, hmacID: 2, hmac: Array(repeating: 7, count: 20)), data])
        pair.server.endpoint.receive(unsupported.encoded(), from: pair.client.address, now: pair.network.now)
        var causes: [SCTPErrorCause] = []
        while let (bytes, _) = pair.server.endpoint.nextDatagram(now: pair.network.now) {
            for chunk in try SCTPPacket.parse(bytes).chunks { if case .error(let found) = chunk { causes += found } }
        }
        #expect(causes.map(\.code) == [SCTPErrorCause.unsupportedHMACIdentifier])
    }

    /// §6.1: endpoint pair shared keys; a key the peer does not have makes our chunks drop.
    @Test func sharedKeys() throws {
        let pair = pair(client: Self.dataAndSack, server: Self.dataAndSack)
        let (client, server) = try pair.connect()
        client.setSharedKey(Array("from the DTLS exporter".utf8), id: 1)
        server.setSharedKey(Array("from the DTLS exporter".utf8), id: 1)
        #expect(client.useSharedKey(id: 1) && server.useSharedKey(id: 1))
        #expect(!client.useSharedKey(id: 9))
        try client.send([1], stream: 0)
        var received: [SCTPMessage] = []
        try pair.network.run(until: {
            received += readAll(server)
            return !received.isEmpty
        })
        // The server's key 1 changes: the client's chunks no longer authenticate there.
        server.setSharedKey(Array("another key".utf8), id: 1)
        try client.send([2], stream: 0)
        pair.network.advance(to: pair.network.now + .seconds(2))
        #expect(server.read() == nil)
    }

    /// §6.1: the association key orders the key vectors as numbers (the shorter first when
    /// they are equal as numbers).
    @Test func keyVectorOrder() {
        func key(_ a: [UInt8], _ b: [UInt8]) -> [UInt8] {
            SCTPAuthState.associationKey(shared: [0xAA], a, b).withUnsafeBytes { Array($0) }
        }
        #expect(key([0, 5], [4]) == [0xAA, 4, 0, 5])          // 4 < 5
        #expect(key([0, 9, 9], [2, 0]) == [0xAA, 2, 0, 0, 9, 9])  // 0x0200 < 0x0909
        #expect(key([0, 0, 1], [1]) == [0xAA, 1, 0, 0, 1])     // equal numbers: the shorter first
        #expect(key([1], [0, 0, 1]) == [0xAA, 1, 0, 0, 1])
    }

    /// §3.2: INIT, INIT ACK, SHUTDOWN COMPLETE and AUTH cannot be required authenticated;
    /// COOKIE ECHO is not supported yet. They are left out of CHUNKS.
    @Test func chunksThatCannotBeRequiredAreLeftOut() {
        let settings = SCTPAuthentication(chunks: [SCTPChunkType.initiation, SCTPChunkType.data, SCTPChunkType.cookieEcho,
                                                   SCTPChunkType.auth, SCTPChunkType.shutdownComplete, SCTPChunkType.abort])
        #expect(settings.chunks == [SCTPChunkType.data, SCTPChunkType.abort])
    }

    @Test func aRandomThatIsNot32BytesIsAborted() throws {
        let endpoint = SCTPEndpoint(configuration: {
            var configuration = SCTPEndpoint.Configuration(port: 5000)
            configuration.association.authentication = Self.dataAndSack
            return configuration
        }())
        let initiation = SCTPInitChunk(initiateTag: 7, advertisedWindow: 65536, outboundStreams: 1, inboundStreams: 1, initialTSN: 1, parameters: [
            SCTPParameter(type: SCTPParameter.random, value: [1, 2, 3, 4]),
            SCTPParameter(type: SCTPParameter.hmacAlgorithms, value: [0, 1]),
        ])
        let packet = SCTPPacket(sourcePort: 1, destinationPort: 5000, verificationTag: 0, chunks: [.initiation(initiation)])
        endpoint.receive(packet.encoded(), from: SocketAddress(host: "192.0.2.1", port: 9)!, now: .now())
        let reply = try SCTPPacket.parse(try #require(endpoint.nextDatagram(now: .now())).bytes)
        guard case .abort(_, let causes) = reply.chunks.first else {
            Issue.record("\(reply.chunks)")
            return
        }
        #expect(causes.first?.code == SCTPErrorCause.protocolViolation)
    }
}
