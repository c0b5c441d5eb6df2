import QuiverCore
import QuiverNetSim
@testable import QuiverSCTP
import QuiverTLS
import Testing

/// DTLS over SCTP (RFC 6083), Quiver to Quiver in the simulator: no independent peer runs here
/// (OpenSSL's needs kernel SCTP, which these machines lack).
@Suite struct DTLSOverSCTPTests {
    static let authentication = SCTPAuthentication(chunks: [SCTPChunkType.data])

    private func stacks(link: LinkConfiguration = LinkConfiguration(), seed: UInt64 = 5) throws
        -> (SCTPPair, client: DTLSOverSCTP, server: DTLSOverSCTP) {
        let pair = SCTPPair(seed: seed, link: link) { $0.association.authentication = Self.authentication }
        let (clientAssociation, serverAssociation) = try pair.connect()
        let (chain, key) = try SelfSignedCertificate.generate(names: ["localhost"])
        var clientTLS = TLSConfiguration.client(verifier: CertificateVerifier(trustRoots: chain.certificates))
        clientTLS.maximumVersion = .tls12
        var serverTLS = try TLSConfiguration.server(chain: chain, key: key)
        serverTLS.maximumVersion = .tls12
        let client = DTLSOverSCTP(association: clientAssociation, dtls: DTLSConnection(client: clientTLS, serverName: "localhost"))
        let server = DTLSOverSCTP(association: serverAssociation, dtls: DTLSConnection(server: serverTLS))
        try client.start(now: pair.network.now)
        try server.start(now: pair.network.now)
        return (pair, client, server)
    }

    private func run(_ pair: SCTPPair, _ stacks: [DTLSOverSCTP], until done: () -> Bool) throws {
        try pair.network.run(until: {
            for stack in stacks { try? stack.process(now: pair.network.now) }
            return done()
        }, timeLimit: .seconds(600))
    }

    @Test(arguments: [0.0, 0.1])
    func handshakeKeysAndMessages(loss: Double) throws {
        var link = LinkConfiguration()
        link.lossRate = loss
        let (pair, client, server) = try stacks(link: link)
        do {
            try run(pair, [client, server]) { client.isEstablished && server.isEstablished }
        } catch {
            Issue.record("\(error): client dtls \(client.dtls.isHandshakeComplete) \(String(describing: client.dtls.error)) sctp \(client.association.state) \(String(describing: client.association.closeReason)); server dtls \(server.dtls.isHandshakeComplete) \(String(describing: server.dtls.error)) sctp \(server.association.state)")
            return
        }
        #expect(client.association.isAuthenticating && client.association.authenticatesData)
        // Records larger than an SCTP packet: one message each, fragmented by SCTP.
        let messages = [[UInt8](repeating: 1, count: 1), [UInt8](repeating: 2, count: 5000), [UInt8](repeating: 3, count: 16_000)]
        for message in messages { try client.write(message, stream: 0) }
        var received: [[UInt8]] = []
        try run(pair, [client, server]) {
            while let message = try? server.read(now: pair.network.now) { received.append(message.bytes) }
            return received.count == messages.count
        }
        #expect(received == messages)
        // The server answers: its DATA too goes under the exporter key, once the client's did.
        for message in received { try server.write(message, stream: 0) }
        var echoed: [[UInt8]] = []
        try run(pair, [client, server]) {
            while let message = try? client.read(now: pair.network.now) { echoed.append(message.bytes) }
            return echoed.count == messages.count
        }
        #expect(echoed == messages)
        func keyIDs(_ node: SCTPNode) -> [UInt16] {
            node.sent.suffix(10).flatMap(\.chunks).compactMap { chunk -> UInt16? in
                if case .auth(let keyID, _, _) = chunk { keyID } else { nil }
            }
        }
        #expect(keyIDs(pair.client).contains(DTLSOverSCTP.keyID) && keyIDs(pair.server).contains(DTLSOverSCTP.keyID))
    }

    @Test("messages on several streams under loss: all read, each on its stream")
    func streamsUnderLoss() throws {
        var link = LinkConfiguration()
        link.lossRate = 0.1
        let (pair, client, server) = try stacks(link: link, seed: 11)
        try run(pair, [client, server]) { client.isEstablished && server.isEstablished }
        var sent: [UInt16: [[UInt8]]] = [:]
        for round in 0..<30 {
            for stream in UInt16(1)...3 {
                let message = [UInt8](repeating: UInt8(round), count: 700 * Int(stream))
                try client.write(message, stream: stream)
                sent[stream, default: []].append(message)
            }
        }
        var received: [UInt16: [[UInt8]]] = [:]
        try run(pair, [client, server]) {
            while let message = try? server.read(now: pair.network.now) { received[message.stream, default: []].append(message.bytes) }
            return received.values.reduce(0) { $0 + $1.count } == 90
        }
        #expect(received == sent)
        let limit = DTLSOverSCTP.maxMessageSize
        #expect(throws: SCTPError.messageTooLarge(limit + 1, limit: limit)) { try server.write([UInt8](repeating: 0, count: limit + 1), stream: 1) }
    }

    @Test("a record overtaken by 64 others is still read: DTLS replay detection is off (RFC 6083 §3.3)")
    func noReplayWindow() throws {
        let (pair, client, server) = try stacks()
        try run(pair, [client, server]) { client.isEstablished && server.isEstablished }
        func deliverReversed(_ count: Int) throws -> Int {
            for index in 0..<count { try client.dtls.write([UInt8(index)]) }
            for datagram in client.dtls.takeDatagrams().reversed() { try server.dtls.receive(datagram, now: pair.network.now) }
            var read = 0
            while server.dtls.read() != nil { read += 1 }
            return read
        }
        #expect(try deliverReversed(100) == 100)
        server.dtls.replayDetection = true  // as plain DTLS: what fell out of the window is dropped
        #expect(try deliverReversed(100) == 64)
    }

    @Test func anAssociationWithoutAuthIsRefused() throws {
        let pair = SCTPPair()
        let (client, _) = try pair.connect()
        let (chain, _) = try SelfSignedCertificate.generate(names: ["localhost"])
        let stack = DTLSOverSCTP(association: client, dtls: DTLSConnection(
            client: .client(verifier: CertificateVerifier(trustRoots: chain.certificates)), serverName: "localhost"))
        #expect(throws: DTLSOverSCTP.Refusal.self) { try stack.start(now: pair.network.now) }
    }

    @Test func recordsAreSplitFromADatagram() {
        let first: [UInt8] = [22, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2, 0xAA, 0xBB]
        let second: [UInt8] = [23, 0xFE, 0xFD, 0, 1, 0, 0, 0, 0, 0, 7, 0, 1, 0xCC]
        #expect(DTLSOverSCTP.records(first + second) == [first, second])
        #expect(DTLSOverSCTP.records([1, 2, 3]) == [])
    }
}
