import QuiverCore
import Testing

@testable import QuiverTLS

/// TLS 1.2 (RFC 5246 with RFC 7627, 5746, 5077, 8422, 5288, 7905) between our own client and
/// server over in-memory streams: every suite and key type, client certificates, the downgrade
/// sentinel, and the refusals. Interop with OpenSSL, GnuTLS and Python is in `Interop/`.
@Suite("TLS 1.2")
struct TLS12Tests {
    static func client(_ identity: TestPKI.Identity = TestPKI.p256) -> TLSConfiguration {
        var config = Configs.client(trusting: identity)
        config.maximumVersion = .tls12
        return config
    }

    static let ecdsaSuites: [CipherSuite] = [.ecdheECDSAWithAES128GCMSHA256, .ecdheECDSAWithAES256GCMSHA384, .ecdheECDSAWithChaCha20Poly1305SHA256]
    static let rsaSuites: [CipherSuite] = [.ecdheRSAWithAES128GCMSHA256, .ecdheRSAWithAES256GCMSHA384, .ecdheRSAWithChaCha20Poly1305SHA256]

    @Test("each suite: handshake, data both ways, the same exporter output on both sides", arguments: ecdsaSuites + rsaSuites)
    func suite(_ suite: CipherSuite) throws {
        let identity = suite.isECDSA ? TestPKI.p256 : TestPKI.rsa2048
        var client = Self.client(identity)
        client.tls12CipherSuites = [suite]
        let pair = StreamPair(client: client, server: Configs.server(identity)).run()
        #expect(pair.isEstablished, "client \(String(describing: pair.clientError)), server \(String(describing: pair.serverError))")
        #expect(pair.client.handshake.negotiatedVersion == .tls12 && pair.server.handshake.negotiatedVersion == .tls12)
        #expect(pair.client.handshake.cipherSuite == suite && pair.server.handshake.cipherSuite == suite)
        #expect(pair.client.handshake.negotiatedALPN == "echo")
        let big = (0..<70_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        #expect(try pair.echo(big) == big)
        let a = pair.client.handshake.exportKeyingMaterial(label: "EXPERIMENTAL test", context: [1, 2], length: 32)
        #expect(a != nil && a == pair.server.handshake.exportKeyingMaterial(label: "EXPERIMENTAL test", context: [1, 2], length: 32))
    }

    @Test("each server key type and group", arguments: [TestPKI.p256, TestPKI.p384, TestPKI.p521, TestPKI.ed25519, TestPKI.rsa2048])
    func keyTypes(_ identity: TestPKI.Identity) throws {
        for group in TLSHandshake.tls12Groups {
            // The server chooses the group; the client also lists the curve of an ECDSA
            // certificate, which it must support (RFC 8422 §5.3).
            var client = Self.client(identity)
            client.groups = [group] + [TLSHandshake.curve(of: identity.key)].compactMap { $0 }.filter { $0 != group }
            var server = Configs.server(identity)
            server.groups = [group]
            let pair = StreamPair(client: client, server: server).run()
            #expect(pair.isEstablished, "\(identity.key.algorithm) \(group): \(String(describing: pair.clientError)) \(String(describing: pair.serverError))")
            #expect(pair.server.handshake.group == group)
        }
    }

    @Test("an ECDSA certificate on a curve the client did not list: another certificate, else handshake_failure (RFC 8422 §5.3)")
    func certificateCurve() throws {
        var client = Self.client(TestPKI.p256)
        client.groups = [.x25519, .secp384r1]
        #expect(StreamPair(client: client, server: Configs.server(TestPKI.p256)).run().serverError?.alert == .handshakeFailure)
        var server = Configs.server(TestPKI.p384)
        server.sniCertificates = [try CertifiedKey(chain: TestPKI.p256.chain, key: TestPKI.p256.key)]
        client.certificateVerifier = CertificateVerifier(trustRoots: [TestPKI.p256.certificate, TestPKI.p384.certificate])
        let pair = StreamPair(client: client, server: server).run()
        #expect(pair.isEstablished)
        #expect(pair.client.handshake.peerCertificates.first == TestPKI.p384.certificate)
    }

    @Test("a client's record_size_limit bounds the records a TLS 1.2 server sends (RFC 8449 §4: plaintext only)")
    func recordSizeLimit() throws {
        var client = Self.client()
        client.recordSizeLimit = 1000
        let pair = StreamPair(client: client, server: Configs.server())
        var largest = 0
        pair.serverToClient = { bytes in
            var offset = 0
            while offset + 5 <= bytes.count {
                let length = Int(bytes[offset + 3]) << 8 | Int(bytes[offset + 4])
                if bytes[offset] == 23 { largest = max(largest, length) }
                offset += 5 + length
            }
            return bytes
        }
        pair.run()
        #expect(pair.isEstablished)
        let data = [UInt8](repeating: 7, count: 5000)
        #expect(try pair.echo(data) == data)
        #expect(largest == 1000 + 8 + 16)  // plaintext, explicit nonce, tag
    }

    @Test("RSA PKCS#1 v1.5 signatures for clients that offer nothing else")
    func pkcs1() throws {
        var client = Self.client(TestPKI.rsa2048)
        client.signatureSchemes = []  // only the PKCS#1 schemes TLS 1.2 adds
        let pair = StreamPair(client: client, server: Configs.server(TestPKI.rsa2048)).run()
        #expect(pair.isEstablished, "\(String(describing: pair.clientError)) \(String(describing: pair.serverError))")
    }

    @Test("session tickets (RFC 5077): the client gets one, resumes with it (abbreviated handshake), gets a fresh one", arguments: [true, false])
    func resumption(serialized: Bool) throws {
        let server = Configs.server()
        let first = StreamPair(client: Self.client(), server: server).run()
        #expect(first.isEstablished && !first.client.handshake.isResumed)
        var ticket = try #require(first.tickets.first)
        #expect(ticket.version == .tls12 && ticket.suite == first.client.handshake.cipherSuite)
        if serialized { ticket = try SessionTicket(serialized: ticket.serialized) }
        // Offered by a client that also speaks TLS 1.3: a TLS 1.2 ticket is offered in session_ticket, not as a PSK.
        var client = Configs.client()
        client.maximumVersion = .tls12
        let second = StreamPair(client: client, server: server, resumption: ticket).run()
        #expect(second.isEstablished, "\(String(describing: second.clientError)) \(String(describing: second.serverError))")
        #expect(second.client.handshake.isResumed && second.server.handshake.isResumed)
        #expect(second.client.handshake.peerCertificates.isEmpty)
        #expect(try second.echo([4, 5, 6]) == [4, 5, 6])
        let renewed = try #require(second.tickets.first)
        #expect(renewed.ticket != ticket.ticket)
        let a = second.client.handshake.exportKeyingMaterial(label: "EXPERIMENTAL r", context: [], length: 16)
        #expect(a != nil && a == second.server.handshake.exportKeyingMaterial(label: "EXPERIMENTAL r", context: [], length: 16))

        // A server whose ticket keys changed makes a full handshake instead.
        let stranger = StreamPair(client: Self.client(), server: Configs.server(), resumption: ticket).run()
        #expect(stranger.isEstablished && !stranger.client.handshake.isResumed)
        // A TLS 1.2 ticket is not offered to a TLS 1.3 handshake.
        let modern = StreamPair(client: Configs.client(), server: server, resumption: ticket).run()
        #expect(modern.isEstablished && modern.client.handshake.negotiatedVersion == .tls13 && !modern.client.handshake.isResumed)
    }

    @Test("client certificates: sent when requested, verified; required and missing → handshake_failure")
    func clientCertificates() throws {
        var server = Configs.server()
        server.clientAuthentication = .required
        server.certificateVerifier = CertificateVerifier(trustRoots: [TestPKI.clientP256.certificate])
        var client = Self.client()
        client.certificateChain = TestPKI.clientP256.chain
        client.privateKey = TestPKI.clientP256.key
        let pair = StreamPair(client: client, server: server).run()
        #expect(pair.isEstablished, "\(String(describing: pair.clientError)) \(String(describing: pair.serverError))")
        #expect(pair.server.handshake.peerCertificates.first == TestPKI.clientP256.certificate)
        #expect(try pair.echo([1, 2, 3]) == [1, 2, 3])

        let anonymous = StreamPair(client: Self.client(), server: server).run()
        #expect(anonymous.serverError?.alert == .handshakeFailure)
        server.clientAuthentication = .optional
        let optional = StreamPair(client: Self.client(), server: server).run()
        #expect(optional.isEstablished && optional.server.handshake.peerCertificates.isEmpty)
    }

    @Test("a client offering TLS 1.3 and 1.2 gets 1.3; a 1.2-only server gives it 1.2 without the sentinel")
    func versionChoice() throws {
        let both = StreamPair(client: Configs.client(), server: Configs.server()).run()
        #expect(both.isEstablished && both.client.handshake.negotiatedVersion == .tls13)
        var server = Configs.server()
        server.maximumVersion = .tls12
        let old = StreamPair(client: Configs.client(), server: server).run()
        #expect(old.isEstablished && old.client.handshake.negotiatedVersion == .tls12)
        var strict = Configs.client()
        strict.minimumVersion = .tls13
        #expect(StreamPair(client: strict, server: server).run().clientError?.alert == .protocolVersion)
    }

    @Test("supported_versions stripped on the way (a downgrade attack): the client sees the sentinel → illegal_parameter")
    func downgradeDetected() throws {
        let pair = HandshakePair(client: Configs.client(), server: Configs.server())
        pair.tamperClient = { level, bytes in
            guard bytes.first == HandshakeType.clientHello.rawValue, var hello = try? ClientHello(body: Array(bytes[4...])) else { return bytes }
            hello.extensions.items.removeAll { $0.type == .supportedVersions }
            return hello.encoded
        }
        pair.run()
        #expect(pair.server.negotiatedVersion == .tls12)
        #expect(pair.clientError?.alert == .illegalParameter)
    }

    /// The server's error for the default client's TLS 1.2-only ClientHello rewritten by `edit`.
    static func serverError(_ edit: (inout ClientHello) -> Void, server: TLSConfiguration = Configs.server()) throws -> TLSError? {
        let client = TLSHandshake(client: Self.client(), serverName: "localhost")
        try client.start()
        guard case .send(.initial, let bytes)? = client.nextEvent() else { return nil }
        var hello = try ClientHello(body: Array(bytes[4...]))
        edit(&hello)
        let handshake = TLSHandshake(server: server)
        do { try handshake.receive(hello.encoded, at: .initial) } catch { return error }
        return nil
    }

    @Test("refusals: no extended master secret, non-empty renegotiation_info, TLS_FALLBACK_SCSV, no common suite, compressed points only")
    func refusals() throws {
        #expect(try Self.serverError { $0.extensions.items.removeAll { $0.type == .extendedMasterSecret } }?.alert == .handshakeFailure)
        #expect(try Self.serverError { hello in
            hello.extensions.items.removeAll { $0.type == .renegotiationInfo }
            hello.extensions.append(.renegotiationInfo, [12] + [UInt8](repeating: 7, count: 12))
        }?.alert == .handshakeFailure)
        #expect(try Self.serverError { $0.cipherSuites.append(.fallbackSCSV) }?.alert == .inappropriateFallback)
        var oldServer = Configs.server()
        oldServer.maximumVersion = .tls12
        #expect(try Self.serverError({ $0.cipherSuites.append(.fallbackSCSV) }, server: oldServer) == nil)
        #expect(try Self.serverError { $0.cipherSuites = [.ecdheRSAWithAES128GCMSHA256] }?.alert == .handshakeFailure)  // ECDSA certificate
        #expect(try Self.serverError { hello in
            hello.extensions.items.removeAll { $0.type == .ecPointFormats }
            hello.extensions.append(.ecPointFormats, [1, 1])
        }?.alert == .illegalParameter)
        var strict = Configs.server()
        strict.minimumVersion = .tls13
        #expect(try Self.serverError({ _ in }, server: strict)?.alert == .protocolVersion)
    }

    @Test("a ClientHello after the handshake, or a HelloRequest, gets a no_renegotiation warning and nothing else")
    func renegotiationRefused() throws {
        let pair = HandshakePair(client: Self.client(), server: Configs.server()).run()
        #expect(pair.client.isHandshakeComplete && pair.server.isHandshakeComplete)
        let hello = ClientHello(random: [UInt8](repeating: 1, count: 32), legacySessionID: [], cipherSuites: [.ecdheECDSAWithAES128GCMSHA256],
                                extensions: Extensions([Extension(type: .renegotiationInfo, data: [0])]))
        try pair.server.receive(hello.encoded, at: .application)
        try pair.client.receive(HandshakeMessage(type: .helloRequest, body: []).encoded, at: .application)
        for side in [pair.server, pair.client] {
            var events: [TLSEvent] = []
            while let event = side.nextEvent() { events.append(event) }
            #expect(events.count == 1)
            guard case .warningAlert(.noRenegotiation)? = events.first else { Issue.record("\(events)"); continue }
        }
        // Other handshake messages after a TLS 1.2 handshake are unexpected.
        #expect(throws: TLSError.self) { try pair.server.receive(HandshakeMessage(type: .finished, body: [UInt8](repeating: 0, count: 12)).encoded, at: .application) }
    }

    /// Runs a TLS 1.2 handshake at the message level with `tamper` rewriting one side's
    /// messages of `type` (body only); returns both sides' errors.
    static func tampered(server: Bool, _ type: HandshakeType, serverConfiguration: TLSConfiguration = Configs.server(),
                         _ tamper: @escaping ([UInt8]) -> [UInt8]) -> (client: TLSError?, server: TLSError?) {
        let pair = HandshakePair(client: Self.client(), server: serverConfiguration)
        let rewrite: (EncryptionLevel, [UInt8]) -> [UInt8] = { _, bytes in
            // Messages of one flight arrive together: rewrite the one of `type`, keep the rest.
            var out: [UInt8] = []
            var offset = 0
            while offset + 4 <= bytes.count {
                let length = Int(bytes[offset + 1]) << 16 | Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
                let body = Array(bytes[(offset + 4)..<min(bytes.count, offset + 4 + length)])
                out += HandshakeMessage(type: HandshakeType(rawValue: bytes[offset]), body: bytes[offset] == type.rawValue ? tamper(body) : body).encoded
                offset += 4 + length
            }
            return out
        }
        if server { pair.tamperServer = rewrite } else { pair.tamperClient = rewrite }
        pair.run()
        return (pair.clientError, pair.server.error)
    }

    @Test("hostile handshake messages get the alert RFC 5246 names")
    func hostileMessages() throws {
        // A ServerKeyExchange signature that does not verify → decrypt_error.
        #expect(Self.tampered(server: true, .serverKeyExchange) { body in var b = body; b[b.count - 5] ^= 1; return b }.client?.alert == .decryptError)
        // A ServerKeyExchange for a group we did not offer → illegal_parameter.
        #expect(Self.tampered(server: true, .serverKeyExchange) { body in var b = body; b[1] = 0x00; b[2] = 0x1E; return b }.client?.alert == .illegalParameter)
        // Truncated ServerKeyExchange → decode_error.
        #expect(Self.tampered(server: true, .serverKeyExchange) { Array($0.prefix(10)) }.client?.alert == .decodeError)
        // An empty server Certificate → decode_error.
        #expect(Self.tampered(server: true, .certificate) { _ in [0, 0, 0] }.client?.alert == .decodeError)
        // ServerHelloDone with a body → decode_error.
        #expect(Self.tampered(server: true, .serverHelloDone) { _ in [1] }.client?.alert == .decodeError)
        // A ClientKeyExchange point of the wrong size for X25519 → illegal_parameter.
        #expect(Self.tampered(server: false, .clientKeyExchange) { _ in [5, 1, 2, 3, 4, 5] }.server?.alert == .illegalParameter)
        // A wrong client Finished → decrypt_error; a Finished of the wrong length → decode_error.
        #expect(Self.tampered(server: false, .finished) { body in var b = body; b[0] ^= 1; return b }.server?.alert == .decryptError)
        #expect(Self.tampered(server: false, .finished) { $0 + [0] }.server?.alert == .decodeError)
        // A wrong server Finished → decrypt_error at the client.
        #expect(Self.tampered(server: true, .finished) { body in var b = body; b[11] ^= 1; return b }.client?.alert == .decryptError)
        // The rewriting itself changes nothing.
        let untouched = Self.tampered(server: true, .serverHelloDone) { body in body }
        #expect(untouched.client == nil && untouched.server == nil)
        // A NewSessionTicket the ServerHello did not promise → unexpected_message.
        var noTickets = Configs.server()
        noTickets.sessionTicketKeys = nil
        let unpromised = TLS12Codec.encodeNewSessionTicket(lifetimeHint: 60, ticket: [1, 2, 3])
        let fresh = HandshakePair(client: Self.client(), server: noTickets)
        fresh.tamperServer = { level, bytes in level == .application ? unpromised : bytes }
        fresh.run()
        #expect(fresh.clientError?.alert == .unexpectedMessage)
    }

    @Test("records out of place: application data before Finished, a stray ChangeCipherSpec → unexpected_message; a flipped bit → bad_record_mac")
    func recordsOutOfPlace() throws {
        // A ChangeCipherSpec right after the ClientHello.
        let early = StreamPair(client: Self.client(), server: Configs.server())
        early.clientToServer = { $0 + [20, 3, 3, 0, 1, 1] }
        early.run()
        #expect(early.serverError?.alert == .unexpectedMessage)
        // Plaintext application data in the handshake.
        let data = StreamPair(client: Self.client(), server: Configs.server())
        data.clientToServer = { $0 + [23, 3, 3, 0, 2, 0x41, 0x42] }
        data.run()
        #expect(data.serverError?.alert == .unexpectedMessage)
        // A flipped bit in a protected record.
        let pair = StreamPair(client: Self.client(), server: Configs.server()).run()
        #expect(pair.isEstablished)
        try pair.client.write([1, 2, 3])
        var record = pair.client.takeOutgoing()
        record[record.count - 1] ^= 1
        #expect(throws: TLSError.self) { try pair.server.receive(record) }
        #expect(pair.server.error?.alert == .badRecordMAC)
    }
}
