import QuiverCore
import Testing

@testable import QuiverTLS

@Suite("DTLS 1.3")
struct DTLS13Tests {
    static func pair(client: TLSConfiguration = Configs.client(), server: TLSConfiguration = Configs.server(), mtu: Int = 1200) -> DTLSPair {
        DTLSPair(client: client, server: server, mtu: mtu, version: .tls13)
    }

    @Test("handshake after a stateless HelloRetryRequest, messages both ways, the same exporter output, the final flight ACKed",
          arguments: CipherSuite.supported)
    func handshake(_ suite: CipherSuite) throws {
        var client = Configs.client()
        client.cipherSuites = [suite]
        let pair = Self.pair(client: client).run()
        #expect(pair.isEstablished, "\(String(describing: pair.clientError)) \(String(describing: pair.serverError))")
        #expect(pair.client.isDTLS13 && pair.server?.isDTLS13 == true)
        #expect(pair.helloRetryRequests == 1 && pair.helloVerifyRequests == 0)
        #expect(pair.client.handshake.cipherSuite == suite && pair.client.handshake.negotiatedALPN == "echo")
        #expect(pair.client.handshake.didHelloRetry && pair.server?.handshake.didHelloRetry == true)
        // The server ACKed the client's Finished: nothing of the client's is left to repeat.
        #expect(pair.client.nextTimeout == nil && pair.server?.nextTimeout == nil)
        let message = Array("one datagram".utf8)
        let (atServer, atClient) = try pair.exchange(message)
        #expect(atServer == message && atClient == message)
        let a = pair.client.handshake.exportKeyingMaterial(label: "EXTRACTOR-dtls_srtp", context: [], length: 60)
        #expect(a != nil && a == pair.server?.handshake.exportKeyingMaterial(label: "EXTRACTOR-dtls_srtp", context: [], length: 60))
    }

    @Test("the HelloRetryRequest asks for a key share when the client sent none the server takes")
    func retryForGroup() throws {
        var client = Configs.client()
        client.keyShareGroups = [.secp256r1]
        var server = Configs.server()
        server.groups = [.x25519]
        let pair = Self.pair(client: client, server: server).run()
        #expect(pair.isEstablished, "\(String(describing: pair.clientError)) \(String(describing: pair.serverError))")
        #expect(pair.helloRetryRequests == 1 && pair.client.handshake.group == .x25519)
    }

    @Test("every message of the server's flight is fragmented at a 300-byte MTU (an RSA certificate) and reassembled")
    func fragmentation() throws {
        // The client's ClientHello stays whole: the bare gate of the pair takes whole ones
        // (the endpoint reassembles fragmented ones, endpointFragmentedHello).
        let pair = Self.pair(client: Configs.client(trusting: TestPKI.rsa2048), server: Configs.server(TestPKI.rsa2048))
        pair.serverMTU = 300
        pair.run()
        #expect(pair.isEstablished, "\(String(describing: pair.clientError)) \(String(describing: pair.serverError))")
        #expect(try pair.exchange([1, 2, 3]) == ([1, 2, 3], [1, 2, 3]))
    }

    @Test("a lost datagram in any flight, the server's ACK included, is recovered by retransmission", arguments: 0..<6)
    func loss(_ index: Int) throws {
        for fromServer in [false, true] {
            let pair = Self.pair(client: Configs.client(trusting: TestPKI.rsa2048), server: Configs.server(TestPKI.rsa2048), mtu: 600)
            if fromServer { pair.dropFromServer = [index] } else { pair.dropFromClient = [index] }
            pair.run()
            #expect(pair.isEstablished, "\(fromServer ? "server" : "client") datagram \(index): \(String(describing: pair.clientError)) \(String(describing: pair.serverError))")
            #expect(pair.client.nextTimeout == nil && pair.server?.nextTimeout == nil)
            pair.dropFromClient = []  // a lost message is lost: only the handshake's are dropped
            pair.dropFromServer = []
            #expect(try pair.exchange([9]) == ([9], [9]))
        }
    }

    @Test("a datagram lost in the middle of the server's flight is asked for by an ACK and resent at once, with no timer", arguments: 1..<3)
    func partialACK(_ index: Int) throws {
        let pair = Self.pair(client: Configs.client(trusting: TestPKI.rsa2048), server: Configs.server(TestPKI.rsa2048), mtu: 400)
        pair.dropFromServer = [index]
        let start = pair.now
        pair.run()
        #expect(pair.isEstablished, "\(String(describing: pair.clientError)) \(String(describing: pair.serverError))")
        #expect(pair.now == start, "a retransmission timer fired")
    }

    @Test("KeyUpdate both ways: the new keys are used once ACKed, messages keep flowing")
    func keyUpdate() throws {
        let pair = Self.pair().run()
        #expect(pair.isEstablished)
        try pair.client.updateKeys(requestPeerUpdate: true, now: pair.now)
        #expect(throws: TLSError.self) { try pair.client.updateKeys(requestPeerUpdate: false, now: pair.now) }  // the first is not ACKed yet
        pair.run()
        #expect(pair.client.nextTimeout == nil && pair.server?.nextTimeout == nil)
        #expect(try pair.exchange([4, 2]) == ([4, 2], [4, 2]))
        try pair.client.updateKeys(requestPeerUpdate: false, now: pair.now)
        pair.run()
        #expect(try pair.exchange([4, 3]) == ([4, 3], [4, 3]))
        // Both at once: each KeyUpdate is ACKed, neither is lost in the other's.
        let server = try #require(pair.server)
        let (clientEpoch, serverEpoch) = (pair.client.writeEpoch, server.writeEpoch)
        try server.updateKeys(requestPeerUpdate: false, now: pair.now)
        try pair.client.updateKeys(requestPeerUpdate: false, now: pair.now)
        pair.run()
        #expect(pair.client.writeEpoch == clientEpoch + 1 && server.writeEpoch == serverEpoch + 1)
        #expect(pair.client.nextTimeout == nil && server.nextTimeout == nil)
        #expect(try pair.exchange([4, 4]) == ([4, 4], [4, 4]))
        #expect(pair.clientError == nil && pair.serverError == nil)
    }

    @Test("after keyUpdateInterval records under one key, writing sends a KeyUpdate; the new epoch is used once ACKed")
    func keyUpdateAtLimit() throws {
        let pair = Self.pair().run()
        let server = try #require(pair.server)
        pair.client.keyUpdateInterval = 10
        for index in 0..<25 {
            try pair.client.write([UInt8(index)])
            pair.run()
            #expect(server.read() == [UInt8(index)])
        }
        // Two updates (after 10 and 10 more records; the KeyUpdate is one of them), each ACKed.
        #expect(pair.client.nextTimeout == nil && pair.clientError == nil && pair.serverError == nil)
        #expect(pair.client.writeEpoch == 5)
    }

    @Test("versions: a DTLS 1.3 client and a DTLS 1.2-only server agree on 1.2; a 1.3-only server refuses a 1.2-only client")
    func versions() throws {
        var server12 = Configs.server()
        server12.maximumVersion = .tls12
        let down = Self.pair(server: server12).run()
        #expect(down.isEstablished && !down.client.isDTLS13 && down.helloVerifyRequests == 1)
        var server13 = Configs.server()
        server13.minimumVersion = .tls13
        let refused = DTLSPair(client: Configs.client(), server: server13).run()
        #expect(refused.serverError?.alert == .protocolVersion)
        #expect(refused.clientError?.alert == .protocolVersion)
    }

    @Test("cookies: a tampered, foreign-address or stale cookie is dropped; the same secret elsewhere accepts it")
    func cookies() throws {
        let gate = DTLSCookieGate(secret: [UInt8](repeating: 7, count: 32))
        let client = DTLSConnection(client: Configs.client(), serverName: "localhost")
        try client.start(now: Instant(nanoseconds: 0))
        let first = try #require(client.takeDatagrams().first)
        let address = SocketAddress(host: "192.0.2.1", port: 5000)!
        guard case .helloRetryRequest(let hrr) = gate.check(first, from: address, tls: Configs.server()) else { Issue.record("no HelloRetryRequest"); return }
        try client.receive(hrr, now: Instant(nanoseconds: 0))
        let second = try #require(client.takeDatagrams().first)
        guard case .accept(let retry?) = gate.check(second, from: address, tls: Configs.server()) else { Issue.record("not accepted"); return }
        #expect(retry.group == nil && retry.suite == Configs.server().cipherSuites[0])
        #expect(DTLSCookieGate(secret: [UInt8](repeating: 7, count: 32)).check(second, from: address, tls: Configs.server()) == .accept(retry))
        #expect(gate.check(second, from: SocketAddress(host: "192.0.2.1", port: 5001)!, tls: Configs.server()) == .drop)
        #expect(DTLSCookieGate().check(second, from: address, tls: Configs.server()) == .drop)
        var later = gate
        later.clock = .fixed(millisecondsSinceEpoch: WallClock.system.millisecondsSinceEpoch() + 120_000)
        #expect(later.check(second, from: address, tls: Configs.server()) == .drop)
        // A cookie with one byte changed (its suite, its hash, its MAC): dropped.
        let cookie = retry.cookie
        let at = try #require(second.indices.first { second[$0..<min(second.count, $0 + cookie.count)].elementsEqual(cookie) })
        for offset in [5, 12, cookie.count - 1] {
            var forged = second
            forged[at + offset] ^= 1
            #expect(gate.check(forged, from: address, tls: Configs.server()) == .drop)
        }
    }

    @Test("the endpoint reassembles a fragmented ClientHello before its cookie check, and answers with a HelloRetryRequest")
    func endpointFragmentedHello() throws {
        let harness = DTLSEndpointHarness(DTLSEndpoint.Configuration(tls: Configs.server()))
        let client = try harness.addClient(port: 4000, version: .tls13, mtu: 120)
        harness.run()
        #expect(client.isHandshakeComplete && client.isDTLS13, "\(String(describing: client.error))")
        #expect(harness.endpoint.statistics.helloRetryRequestsSent == 1 && harness.endpoint.statistics.connectionsCreated == 1)
        let server = try #require(harness.endpoint.accept()?.connection)
        try client.write([5])
        harness.run()
        #expect(server.read() == [5])
    }

    @Test("late copies of an association's own fragmented ClientHellos do not replace it; a new random after the cookie does")
    func lateFragmentedHello() throws {
        let harness = DTLSEndpointHarness(DTLSEndpoint.Configuration(tls: Configs.server()))
        let address = DTLSEndpointHarness.address(4000)
        let client = try harness.addClient(port: 4000, version: .tls13, mtu: 120)
        harness.run()
        let server = try #require(harness.endpoint.accept()?.connection)
        for datagram in harness.sent[address] ?? [] where DTLSEndpoint.startsHandshake(datagram) {
            harness.endpoint.receive(datagram, from: address, at: harness.now)
        }
        _ = harness.endpoint.takeDatagrams()
        #expect(harness.endpoint.statistics.connectionsReplaced == 0 && harness.endpoint.connection(for: address) === server)
        try client.write([6])
        harness.run()
        #expect(server.read() == [6])
        // The client restarts on the same port: a new association once its cookie came back.
        let restarted = try harness.addClient(port: 4000, version: .tls13, mtu: 120)
        harness.run()
        #expect(restarted.isHandshakeComplete && harness.endpoint.statistics.connectionsReplaced == 1)
    }

    @Test("Connection IDs: the client sends with the endpoint's; the endpoint follows it to a new address only for a new authentic record",
          arguments: [TLSVersion.tls12, .tls13])
    func connectionIDs(_ version: TLSVersion) throws {
        let harness = DTLSEndpointHarness(DTLSEndpoint.Configuration(tls: Configs.server()))
        let before = DTLSEndpointHarness.address(4000)
        let after = DTLSEndpointHarness.address(4001)
        let client = try harness.addClient(port: 4000, version: version)
        harness.run()
        let server = try #require(harness.endpoint.accept()?.connection)
        #expect(client.peerConnectionID?.count == 8 && client.peerConnectionID == server.localConnectionID)
        #expect(server.peerConnectionID == [] && client.localConnectionID == [])
        try client.write([1])
        let first = try #require(client.takeDatagrams().first)
        #expect(DTLSEndpoint.connectionID(in: first, length: 8) == client.peerConnectionID)
        harness.endpoint.receive(first, from: before, at: harness.now)
        #expect(server.read() == [1])
        // A replay from elsewhere, and a forged record with the ID: the connection stays.
        harness.endpoint.receive(first, from: after, at: harness.now)
        var forged = first
        forged[forged.count - 1] ^= 1
        harness.endpoint.receive(forged, from: after, at: harness.now)
        #expect(harness.endpoint.statistics.peersMigrated == 0 && harness.endpoint.connection(for: before) === server)
        #expect(server.read() == nil)
        // The client's address changes: its next record moves the connection.
        harness.clients[after] = harness.clients.removeValue(forKey: before)
        try client.write([2])
        harness.run()
        #expect(server.read() == [2])
        #expect(harness.endpoint.statistics.peersMigrated == 1 && harness.endpoint.nextMigration()! == (before, after))
        #expect(harness.endpoint.connection(for: after) === server && harness.endpoint.connection(for: before) == nil)
        // An older record (sent before the move, delayed) does not move it back.
        try client.write([3])
        let late = try #require(client.takeDatagrams().first)
        try client.write([4])
        harness.run()
        harness.endpoint.receive(late, from: before, at: harness.now)
        #expect(server.read() == [4] && server.read() == [3])
        #expect(harness.endpoint.connection(for: after) === server && harness.endpoint.statistics.peersMigrated == 1)
    }

    @Test("a client that does not offer Connection IDs gets none; one that is not given any sends plain records")
    func noConnectionIDs() throws {
        var configuration = DTLSEndpoint.Configuration(tls: Configs.server())
        configuration.connectionIDLength = 0
        let harness = DTLSEndpointHarness(configuration)
        let client = try harness.addClient(port: 4000, version: .tls13)
        harness.run()
        #expect(client.isHandshakeComplete && client.peerConnectionID == nil)
        let plain = DTLSEndpointHarness(DTLSEndpoint.Configuration(tls: Configs.server()))
        let other = DTLSConnection(client: Configs.client(), serverName: "localhost")
        other.localConnectionID = nil
        try other.start(now: plain.now)
        plain.clients[DTLSEndpointHarness.address(4002)] = other
        plain.run()
        let server = try #require(plain.endpoint.accept()?.connection)
        #expect(other.isHandshakeComplete && other.peerConnectionID == nil && server.peerConnectionID == nil)
        try other.write([9])
        plain.run()
        #expect(server.read() == [9])
    }

    @Test("sequence numbers are reconstructed from 8 or 16 bits around the next expected one")
    func reconstruction() {
        #expect(reconstructSequence(0x01, bits: 8, expected: 0x100) == 0x101)
        #expect(reconstructSequence(0xFF, bits: 8, expected: 0x100) == 0xFF)
        #expect(reconstructSequence(0x0002, bits: 16, expected: 0x1_FFFE) == 0x2_0002)
        #expect(reconstructSequence(0xFFFE, bits: 16, expected: 0x2_0001) == 0x1_FFFE)
        #expect(reconstructSequence(5, bits: 8, expected: 0) == 5)
    }
}
