import QuiverCore
import Testing

@testable import QuiverTLS

@Suite("Client ↔ server in memory")
struct HandshakeMatrixTests {
    static let schemes: [SignatureScheme] = [
        .ecdsaSecp256r1SHA256, .ecdsaSecp384r1SHA384, .ecdsaSecp521r1SHA512, .ed25519, .rsaPSSRSAESHA256, .rsaPSSRSAESHA384, .rsaPSSRSAESHA512,
    ]

    @Test("every suite × group × signature scheme", arguments: CipherSuite.supported, NamedGroup.supported)
    func matrix(suite: CipherSuite, group: NamedGroup) throws {
        for scheme in Self.schemes {
            let identity = TestPKI.identity(for: scheme)
            var client = Configs.client(trusting: identity)
            client.cipherSuites = [suite]
            client.groups = [group]
            client.keyShareGroups = [group]
            client.signatureSchemes = [scheme]
            let pair = StreamPair(client: client, server: Configs.server(identity)).run()
            #expect(pair.isEstablished, "\(suite) \(group) \(scheme): \(String(describing: pair.clientError ?? pair.serverError))")
            #expect(pair.client.handshake.cipherSuite == suite)
            #expect(pair.server.handshake.group == group)
            #expect(pair.client.handshake.negotiatedALPN == "echo")
            #expect(pair.client.handshake.peerCertificates.first == identity.certificate)
            #expect(pair.server.handshake.serverName == "localhost")
            #expect(!pair.client.handshake.didHelloRetry)
            let data = (0..<3000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
            #expect(try pair.echo(data) == data)
        }
    }

    @Test("large transfers fragment into 2^14-byte records and arrive exactly")
    func largeTransfer() throws {
        let pair = StreamPair(client: Configs.client(), server: Configs.server()).run()
        var rng = SeededGenerator(seed: 1)
        let data = (0..<(1 << 20) + 17).map { _ in UInt8.random(in: 0...255, using: &rng) }
        try pair.client.write(data)
        let wire = pair.client.takeOutgoing()
        #expect(wire.count > data.count)
        try pair.server.receive(wire)
        #expect(pair.server.read() == data)
    }

    @Test("record padding hides lengths and still round-trips")
    func padding() throws {
        let pair = StreamPair(client: Configs.client(), server: Configs.server()).run()
        pair.client.paddingBlockSize = 256
        try pair.client.write([1, 2, 3])
        let wire = pair.client.takeOutgoing()
        #expect(wire.count == 5 + 256 + 16)
        try pair.server.receive(wire)
        #expect(pair.server.read() == [1, 2, 3])
    }

    @Test("HelloRetryRequest when the client's share is not acceptable")
    func helloRetry() throws {
        var client = Configs.client()
        client.keyShareGroups = [.x25519]
        var server = Configs.server()
        server.groups = [.secp384r1]
        let pair = StreamPair(client: client, server: server).run()
        #expect(pair.isEstablished)
        #expect(pair.client.handshake.didHelloRetry && pair.server.handshake.didHelloRetry)
        #expect(pair.client.handshake.group == .secp384r1)
        #expect(try pair.echo([9, 9, 9]) == [9, 9, 9])
    }

    @Test("HelloRetryRequest to the post-quantum hybrid group")
    func helloRetryHybrid() throws {
        var server = Configs.server()
        server.groups = [.x25519MLKEM768]
        let pair = StreamPair(client: Configs.client(), server: server).run()
        #expect(pair.isEstablished)
        #expect(pair.client.handshake.group == .x25519MLKEM768)
    }

    @Test("resumption with a ticket skips certificates and is marked resumed")
    func resumption() throws {
        let server = Configs.server()
        let first = StreamPair(client: Configs.client(), server: server).run()
        #expect(first.isEstablished)
        #expect(first.tickets.count == 2)
        #expect(first.serverEvents.filter { if case .ticketIssued = $0 { return true } else { return false } }.count == 2)
        let ticket = try #require(first.tickets.first)
        let second = StreamPair(client: Configs.client(), server: server, resumption: ticket).run()
        #expect(second.isEstablished)
        #expect(second.client.handshake.isResumed && second.server.handshake.isResumed)
        #expect(second.client.handshake.peerCertificates.isEmpty)
        #expect(try second.echo([1]) == [1])
        // A ticket survives serialisation.
        let restored = try SessionTicket(serialized: ticket.serialized)
        let third = StreamPair(client: Configs.client(), server: server, resumption: restored).run()
        #expect(third.server.handshake.isResumed)
    }

    @Test("resumption after a HelloRetryRequest")
    func resumptionWithRetry() throws {
        var server = Configs.server()
        server.groups = [.secp256r1]
        let first = StreamPair(client: Configs.client(), server: server).run()
        let ticket = try #require(first.tickets.first)
        let second = StreamPair(client: Configs.client(), server: server, resumption: ticket).run()
        #expect(second.isEstablished && second.server.handshake.isResumed && second.server.handshake.didHelloRetry)
    }

    @Test("a ticket from another server key is ignored: full handshake")
    func foreignTicket() throws {
        let first = StreamPair(client: Configs.client(), server: Configs.server()).run()
        let ticket = try #require(first.tickets.first)
        let second = StreamPair(client: Configs.client(), server: Configs.server(), resumption: ticket).run()
        #expect(second.isEstablished && !second.server.handshake.isResumed)
    }

    @Test("servers sharing a ticket secret resume each other's tickets")
    func sharedTicketKeys() throws {
        let keys = SessionTicketKeys(secret: Array(repeating: 7, count: 32))
        var a = Configs.server()
        a.sessionTicketKeys = keys
        var b = Configs.server()
        b.sessionTicketKeys = keys
        let first = StreamPair(client: Configs.client(), server: a).run()
        let ticket: SessionTicket = try #require(first.tickets.first)
        let second = StreamPair(client: Configs.client(), server: b, resumption: ticket).run()
        #expect(second.server.handshake.isResumed)
    }

    static func earlyDataServer() -> TLSConfiguration {
        var server = Configs.server()
        server.maxEarlyDataSize = 16384
        server.antiReplay = AntiReplay()
        return server
    }

    @Test("0-RTT accepted: early data arrives before the client's Finished")
    func zeroRTTAccepted() throws {
        let server = Self.earlyDataServer()
        let first = StreamPair(client: Configs.client(), server: server).run()
        let ticket = try #require(first.tickets.first)
        #expect(ticket.maxEarlyDataSize == 16384)
        let pair = StreamPair(client: Configs.client(), server: server, resumption: ticket, earlyData: true)
        try pair.start()
        try pair.client.write(Array("early hello".utf8))
        let flight = pair.client.takeOutgoing()
        try pair.server.receive(flight)
        #expect(pair.server.handshake.earlyDataAccepted == true)
        #expect(pair.server.read() == Array("early hello".utf8))
        #expect(!pair.server.isHandshakeComplete)
        pair.run()
        #expect(pair.isEstablished)
        #expect(pair.client.handshake.earlyDataAccepted == true)
        #expect(try pair.echo([4, 2]) == [4, 2])
        #expect(pair.server.read().isEmpty)
    }

    @Test("0-RTT: the client sends no more than max_early_data_size early; the rest follows the handshake")
    func zeroRTTLimit() throws {
        var server = Self.earlyDataServer()
        server.maxEarlyDataSize = 1000
        let first = StreamPair(client: Configs.client(), server: server).run()
        let ticket = try #require(first.tickets.first)
        let pair = StreamPair(client: Configs.client(), server: server, resumption: ticket, earlyData: true)
        try pair.start()
        let data = (0..<5000).map { UInt8(truncatingIfNeeded: $0) }
        try pair.client.write(data)
        try pair.server.receive(pair.client.takeOutgoing())
        #expect(pair.server.read() == Array(data[..<1000]))
        pair.run()
        #expect(pair.isEstablished)
        #expect(pair.server.read() == Array(data[1000...]))
    }

    @Test("0-RTT rejected: the client re-sends its early data as 1-RTT, nothing lost or doubled")
    func zeroRTTRejected() throws {
        let server = Self.earlyDataServer()
        let first = StreamPair(client: Configs.client(), server: server).run()
        let ticket = try #require(first.tickets.first)
        var refusing = server
        refusing.maxEarlyDataSize = 0
        let pair = StreamPair(client: Configs.client(), server: refusing, resumption: ticket, earlyData: true)
        try pair.start()
        try pair.client.write(Array("early".utf8))
        pair.run()
        #expect(pair.isEstablished)
        #expect(pair.server.handshake.isResumed)
        #expect(pair.client.handshake.earlyDataAccepted == false)
        #expect(pair.server.read() == Array("early".utf8))
    }

    @Test("0-RTT refused by a HelloRetryRequest: early records skipped, data re-sent")
    func zeroRTTWithRetry() throws {
        let server = Self.earlyDataServer()
        let first = StreamPair(client: Configs.client(), server: server).run()
        let ticket = try #require(first.tickets.first)
        var retrying = server
        retrying.groups = [.secp256r1]
        let pair = StreamPair(client: Configs.client(), server: retrying, resumption: ticket, earlyData: true)
        try pair.start()
        try pair.client.write(Array("zero".utf8))
        pair.run()
        #expect(pair.isEstablished, "\(String(describing: pair.clientError ?? pair.serverError))")
        #expect(pair.server.handshake.didHelloRetry && pair.server.handshake.isResumed)
        #expect(pair.client.handshake.earlyDataAccepted == false)
        #expect(pair.server.read() == Array("zero".utf8))
    }

    @Test("0-RTT replay: the same ticket carries early data only once")
    func zeroRTTReplay() throws {
        let server = Self.earlyDataServer()
        let first = StreamPair(client: Configs.client(), server: server).run()
        let ticket = try #require(first.tickets.first)
        let a = StreamPair(client: Configs.client(), server: server, resumption: ticket, earlyData: true).run()
        #expect(a.server.handshake.earlyDataAccepted == true)
        let b = StreamPair(client: Configs.client(), server: server, resumption: ticket, earlyData: true).run()
        #expect(b.isEstablished)
        #expect(b.server.handshake.earlyDataAccepted == false)
    }

    @Test("0-RTT: a stale ticket age is refused by the freshness check")
    func zeroRTTStale() throws {
        let server = Self.earlyDataServer()
        var client = Configs.client()
        let first = StreamPair(client: client, server: server).run()
        let ticket = try #require(first.tickets.first)
        // The client believes the ticket is a minute older than it is.
        client.clock = WallClock { WallClock.system.millisecondsSinceEpoch() + 60_000 }
        let pair = StreamPair(client: client, server: server, resumption: ticket, earlyData: true).run()
        #expect(pair.isEstablished)
        #expect(pair.server.handshake.earlyDataAccepted == false)
    }

    @Test("client certificates: required and presented")
    func clientAuthRequired() throws {
        var server = Configs.server()
        server.clientAuthentication = .required
        server.certificateVerifier = CertificateVerifier(trustRoots: [TestPKI.clientP256.certificate])
        var client = Configs.client()
        client.certificateChain = TestPKI.clientP256.chain
        client.privateKey = TestPKI.clientP256.key
        let pair = StreamPair(client: client, server: server).run()
        #expect(pair.isEstablished)
        #expect(pair.server.handshake.peerCertificates.first == TestPKI.clientP256.certificate)
    }

    @Test("client certificates: required and missing → certificate_required")
    func clientAuthMissing() {
        var server = Configs.server()
        server.clientAuthentication = .required
        let pair = StreamPair(client: Configs.client(), server: server).run()
        #expect(pair.serverError?.alert == .certificateRequired)
        #expect(pair.clientError?.alert == .certificateRequired)
        #expect(pair.clientError?.origin == .peer)
    }

    @Test("client certificates: optional and missing is fine")
    func clientAuthOptional() {
        var server = Configs.server()
        server.clientAuthentication = .optional
        let pair = StreamPair(client: Configs.client(), server: server).run()
        #expect(pair.isEstablished)
        #expect(pair.server.handshake.peerCertificates.isEmpty)
    }

    @Test("client certificates: untrusted → unknown_ca")
    func clientAuthUntrusted() {
        var server = Configs.server()
        server.clientAuthentication = .optional
        server.certificateVerifier = CertificateVerifier(trustRoots: [])
        var client = Configs.client()
        client.certificateChain = TestPKI.clientP256.chain
        client.privateKey = TestPKI.clientP256.key
        let pair = StreamPair(client: client, server: server).run()
        #expect(pair.serverError?.alert == .unknownCA)
    }

    @Test("KeyUpdate in both directions, requested and not")
    func keyUpdate() throws {
        let pair = StreamPair(client: Configs.client(), server: Configs.server()).run()
        try pair.client.updateKeys(requestPeerUpdate: true)
        #expect(try pair.echo([1, 2, 3]) == [1, 2, 3])
        try pair.server.updateKeys(requestPeerUpdate: false)
        #expect(try pair.echo([4, 5]) == [4, 5])
        for _ in 0..<5 { try pair.client.updateKeys(requestPeerUpdate: true) }
        #expect(try pair.echo([6]) == [6])
    }

    @Test("automatic KeyUpdate before the record limit")
    func automaticKeyUpdate() throws {
        let pair = StreamPair(client: Configs.client(), server: Configs.server()).run()
        pair.client.keyUpdateRecordLimit = 4
        for i in 0..<20 { #expect(try pair.echo([UInt8(i)]) == [UInt8(i)]) }
    }

    @Test("close_notify is a clean end; a bare EOF is truncation")
    func closeSemantics() throws {
        let pair = StreamPair(client: Configs.client(), server: Configs.server()).run()
        try pair.client.write([1])
        pair.client.close()
        pair.run()
        #expect(pair.server.read() == [1])
        #expect(pair.server.isPeerClosed)
        try pair.server.receiveEOF()
        // The server can still send after the client's half-close.
        try pair.server.write([2])
        pair.server.close()
        pair.run()
        #expect(pair.client.read() == [2])
        #expect(pair.client.isPeerClosed)
        let other = StreamPair(client: Configs.client(), server: Configs.server()).run()
        #expect(throws: TLSError.self) { try other.server.receiveEOF() }
        #expect(other.server.error?.origin == .transport)
    }

    @Test("the exporter agrees on both sides")
    func exporter() {
        let pair = StreamPair(client: Configs.client(), server: Configs.server()).run()
        let a = pair.client.handshake.exportKeyingMaterial(label: "EXPERIMENTAL test", context: [1], length: 32)
        let b = pair.server.handshake.exportKeyingMaterial(label: "EXPERIMENTAL test", context: [1], length: 32)
        #expect(a != nil && a == b)
    }

    @Test("QUIC mode: transport parameters exchanged, no EndOfEarlyData, all levels used")
    func quicMode() {
        let pair = HandshakePair(client: Configs.client(), server: Configs.server(), quic: true).run()
        #expect(pair.client.isHandshakeComplete && pair.server.isHandshakeComplete)
        #expect(pair.client.peerTransportParameters == [4, 5, 6])
        #expect(pair.server.peerTransportParameters == [1, 2, 3])
    }

    @Test("the key log has every secret in NSS format")
    func keyLog() {
        let log = LineCollector()
        var client = Configs.client()
        client.keyLog = { log.append($0) }
        _ = StreamPair(client: client, server: Configs.server()).run()
        let labels = Set(log.lines.map { $0.split(separator: " ")[0] })
        #expect(labels == ["CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET", "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0", "EXPORTER_SECRET"])
        #expect(log.lines.allSatisfy { $0.split(separator: " ")[1].count == 64 })
    }
}
