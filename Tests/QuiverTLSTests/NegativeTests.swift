import QuiverCore
import Testing

@testable import QuiverTLS

/// Every failure gives the RFC's alert and never a crash.
@Suite("Failures and alerts")
struct NegativeTests {
    /// Splits a chunk of handshake bytes into (type, encoded message) pairs.
    static func messages(_ bytes: [UInt8]) -> [(HandshakeType, [UInt8])] {
        var out: [(HandshakeType, [UInt8])] = []
        var i = 0
        while i + 4 <= bytes.count {
            let length = Int(bytes[i + 1]) << 16 | Int(bytes[i + 2]) << 8 | Int(bytes[i + 3])
            out.append((HandshakeType(rawValue: bytes[i]), Array(bytes[i..<min(bytes.count, i + 4 + length)])))
            i += 4 + length
        }
        return out
    }

    /// Rewrites the message of `type` inside a chunk with `change`.
    static func rewrite(_ bytes: [UInt8], _ type: HandshakeType, _ change: (inout [UInt8]) -> Void) -> [UInt8] {
        messages(bytes).flatMap { t, m -> [UInt8] in
            var m = m
            if t == type { change(&m) }
            return m
        }
    }

    @Test("tampered server Finished → decrypt_error")
    func tamperedServerFinished() {
        let pair = HandshakePair(client: Configs.client(), server: Configs.server())
        pair.tamperServer = { level, bytes in level == .handshake ? Self.rewrite(bytes, .finished) { $0[$0.count - 1] ^= 1 } : bytes }
        pair.run()
        #expect(pair.clientError?.alert == .decryptError)
        #expect(!pair.client.isHandshakeComplete)
    }

    @Test("tampered client Finished → decrypt_error")
    func tamperedClientFinished() {
        let pair = HandshakePair(client: Configs.client(), server: Configs.server())
        pair.tamperClient = { level, bytes in level == .handshake ? Self.rewrite(bytes, .finished) { $0[10] ^= 0x80 } : bytes }
        pair.run()
        #expect(pair.serverError?.alert == .decryptError)
        #expect(!pair.server.isHandshakeComplete)
    }

    @Test("bad CertificateVerify signature → decrypt_error", arguments: [TestPKI.ed25519, TestPKI.p256, TestPKI.rsa2048])
    func badSignature(identity: TestPKI.Identity) {
        let pair = HandshakePair(client: Configs.client(trusting: identity), server: Configs.server(identity))
        pair.tamperServer = { level, bytes in level == .handshake ? Self.rewrite(bytes, .certificateVerify) { $0[$0.count - 2] ^= 0x01 } : bytes }
        pair.run()
        #expect(pair.clientError?.alert == .decryptError || pair.clientError?.alert == .illegalParameter)
        #expect(pair.clientError?.alert == .decryptError, "\(String(describing: pair.clientError))")
    }

    @Test("CertificateVerify with a scheme the client did not offer → illegal_parameter")
    func unofferedScheme() {
        let pair = HandshakePair(client: Configs.client(), server: Configs.server())
        pair.tamperServer = { level, bytes in
            level == .handshake ? Self.rewrite(bytes, .certificateVerify) { $0[4] = 0x08; $0[5] = 0x07 } : bytes
        }
        pair.run()
        #expect(pair.clientError?.alert == .illegalParameter)
    }

    @Test("untrusted server certificate → unknown_ca, and the server hears it")
    func untrusted() {
        let client = TLSConfiguration.client(alpn: ["echo"], verifier: CertificateVerifier(trustRoots: [TestPKI.p384.certificate]))
        let pair = StreamPair(client: client, server: Configs.server()).run()
        #expect(pair.clientError?.alert == .unknownCA)
        #expect(pair.serverError?.alert == .unknownCA)
        #expect(pair.serverError?.origin == .peer)
    }

    @Test("wrong server name → bad_certificate")
    func wrongName() {
        let pair = StreamPair(client: Configs.client(), server: Configs.server(), serverName: "other.example").run()
        #expect(pair.clientError?.alert == .badCertificate)
        #expect(pair.clientError?.reason.contains("other.example") == true)
    }

    @Test("expired server certificate → certificate_expired")
    func expired() {
        var client = Configs.client()
        client.clock = .fixed(millisecondsSinceEpoch: WallClock.system.millisecondsSinceEpoch() + 400 * 86_400_000)
        let pair = StreamPair(client: client, server: Configs.server()).run()
        #expect(pair.clientError?.alert == .certificateExpired)
    }

    @Test("no common group → handshake_failure")
    func noCommonGroup() {
        var client = Configs.client()
        client.groups = [.x25519]
        var server = Configs.server()
        server.groups = [.secp256r1]
        let pair = StreamPair(client: client, server: server).run()
        #expect(pair.serverError?.alert == .handshakeFailure)
        #expect(pair.clientError?.alert == .handshakeFailure && pair.clientError?.origin == .peer)
    }

    @Test("no common cipher suite → handshake_failure")
    func noCommonSuite() {
        var client = Configs.client()
        client.cipherSuites = [.chacha20Poly1305SHA256]
        var server = Configs.server()
        server.cipherSuites = [.aes128GCMSHA256]
        #expect(StreamPair(client: client, server: server).run().serverError?.alert == .handshakeFailure)
    }

    @Test("no common signature scheme → handshake_failure")
    func noCommonScheme() {
        var client = Configs.client()
        client.signatureSchemes = [.ed25519]
        #expect(StreamPair(client: client, server: Configs.server()).run().serverError?.alert == .handshakeFailure)
    }

    @Test("no common ALPN protocol → no_application_protocol")
    func noCommonALPN() {
        let client = Configs.client(alpn: ["h2"])
        let pair = StreamPair(client: client, server: Configs.server(alpn: ["echo"])).run()
        #expect(pair.serverError?.alert == .noApplicationProtocol)
        #expect(pair.clientError?.alert == .noApplicationProtocol)
    }

    @Test("QUIC without ALPN → no_application_protocol")
    func quicNeedsALPN() {
        let pair = HandshakePair(client: Configs.client(alpn: []), server: Configs.server(), quic: true).run()
        #expect(pair.serverError?.alert == .noApplicationProtocol)
    }

    /// Captures the client's first ClientHello message.
    static func clientHello(_ config: TLSConfiguration = Configs.client()) throws -> [UInt8] {
        let client = TLSHandshake(client: config, serverName: "localhost")
        try client.start()
        guard case .send(.initial, let bytes)? = client.nextEvent() else { return [] }
        return bytes
    }

    static func serverError(for clientHello: [UInt8], _ configuration: TLSConfiguration = Configs.server()) -> TLSError? {
        let server = TLSHandshake(server: configuration)
        do { try server.receive(clientHello, at: .initial) } catch { return error }
        return nil
    }

    @Test("truncated ClientHello → decode_error")
    func truncated() throws {
        let ch = try Self.clientHello()
        // Shorten the body but keep the header consistent, at several cut points.
        for cut in [1, 10, 40, 80, ch.count / 2, ch.count - 5] {
            var body = Array(ch[4..<(ch.count - cut)])
            if body.isEmpty { body = [3] }
            let message = HandshakeMessage(type: .clientHello, body: body).encoded
            let error = Self.serverError(for: message)
            #expect(error?.alert == .decodeError || error?.alert == .illegalParameter || error?.alert == .protocolVersion, "cut \(cut): \(String(describing: error))")
        }
        let error = Self.serverError(for: HandshakeMessage(type: .clientHello, body: Array(ch[4..<50])).encoded)
        #expect(error?.alert == .decodeError)
    }

    @Test("oversized handshake message → unexpected_message before buffering it")
    func oversizedMessage() {
        let error = Self.serverError(for: [1, 0xff, 0xff, 0xff, 3, 3])
        #expect(error?.alert == .unexpectedMessage)
    }

    @Test("trailing bytes inside a message → decode_error")
    func trailingBytes() throws {
        let ch = try Self.clientHello()
        let message = HandshakeMessage(type: .clientHello, body: Array(ch[4...]) + [0]).encoded
        #expect(Self.serverError(for: message)?.alert == .decodeError)
    }

    @Test("duplicate extension → illegal_parameter")
    func duplicateExtension() throws {
        let ch = try Self.clientHello()
        var hello = try ClientHello(body: Array(ch[4...]))
        hello.extensions.items.insert(hello.extensions.items[1], at: 0)
        #expect(Self.serverError(for: hello.encoded)?.alert == .illegalParameter)
    }

    @Test("a TLS 1.2-only ClientHello → protocol_version when the server's minimum is TLS 1.3, TLS 1.2 otherwise")
    func tls12Client() throws {
        let ch = try Self.clientHello()
        var hello = try ClientHello(body: Array(ch[4...]))
        hello.extensions.items.removeAll { $0.type == .supportedVersions }
        var strict = Configs.server()
        strict.minimumVersion = .tls13
        #expect(Self.serverError(for: hello.encoded, strict)?.alert == .protocolVersion)
        let server = TLSHandshake(server: Configs.server())
        try server.receive(hello.encoded, at: .initial)
        #expect(server.negotiatedVersion == .tls12)
    }

    @Test("a key share for a group not in supported_groups → illegal_parameter")
    func shareOutsideGroups() throws {
        var config = Configs.client()
        config.groups = [.x25519, .secp256r1]
        let ch = try Self.clientHello(config)
        var hello = try ClientHello(body: Array(ch[4...]))
        hello.extensions.items.removeAll { $0.type == .supportedGroups }
        var w = ByteWriter()
        ExtensionCodec.writeUInt16List(&w, [NamedGroup.secp256r1.rawValue])
        hello.extensions.items.insert(Extension(type: .supportedGroups, data: w.bytes), at: 0)
        #expect(Self.serverError(for: hello.encoded)?.alert == .illegalParameter)
    }

    /// Feeds a ServerHello to a client that sent its ClientHello.
    static func clientError(forServerHello hello: ServerHello, _ configuration: TLSConfiguration = Configs.client(), echoSessionID: Bool = true) -> TLSError? {
        let client = TLSHandshake(client: configuration, serverName: "localhost")
        do {
            try client.start()
            guard case .send(.initial, let ch)? = client.nextEvent() else { return nil }
            let sent = try ClientHello(body: Array(ch[4...]))
            var reply = hello
            if echoSessionID { reply.legacySessionIDEcho = sent.legacySessionID }
            try client.receive(reply.encoded, at: .initial)
        } catch {
            return error
        }
        return nil
    }

    @Test("downgrade sentinel in a TLS 1.2 ServerHello → illegal_parameter; plain TLS 1.2 → protocol_version when the client's minimum is TLS 1.3")
    func downgradeSentinels() {
        for sentinel in [ServerHello.downgradeTLS12, ServerHello.downgradeTLS11] {
            let hello = ServerHello(random: Array(repeating: 0x42, count: 24) + sentinel, legacySessionIDEcho: [], cipherSuite: .aes128GCMSHA256, extensions: Extensions())
            #expect(Self.clientError(forServerHello: hello)?.alert == .illegalParameter)
        }
        var strict = Configs.client()
        strict.minimumVersion = .tls13
        let plain = ServerHello(random: Array(repeating: 0x42, count: 32), legacySessionIDEcho: [], cipherSuite: .ecdheECDSAWithAES128GCMSHA256, extensions: Extensions())
        #expect(Self.clientError(forServerHello: plain, strict)?.alert == .protocolVersion)
        // Offered TLS 1.2: a TLS 1.3 suite in a TLS 1.2 ServerHello, one resuming a session we
        // did not offer (our session ID echoed), or one without the extended master secret, is
        // refused.
        var tls13Suite = plain
        tls13Suite.cipherSuite = .aes128GCMSHA256
        #expect(Self.clientError(forServerHello: tls13Suite, echoSessionID: false)?.alert == .illegalParameter)
        #expect(Self.clientError(forServerHello: plain)?.alert == .illegalParameter)
        #expect(Self.clientError(forServerHello: plain, echoSessionID: false)?.alert == .handshakeFailure)
    }

    @Test("ServerHello choosing an unoffered suite or group → illegal_parameter")
    func unofferedChoices() {
        var ext = Extensions()
        ext.append(.keyShare) { w in
            w.writeUInt16(NamedGroup.secp384r1.rawValue)
            w.writeLengthPrefixedBytes(2, Array(repeating: 4, count: 97))
        }
        ext.append(.supportedVersions) { $0.writeUInt16(0x0304) }
        let badGroup = ServerHello(random: Array(repeating: 1, count: 32), legacySessionIDEcho: [], cipherSuite: .aes128GCMSHA256, extensions: ext)
        #expect(Self.clientError(forServerHello: badGroup)?.alert == .illegalParameter)
        let badSuite = ServerHello(random: Array(repeating: 1, count: 32), legacySessionIDEcho: [], cipherSuite: CipherSuite(rawValue: 0x1304), extensions: ext)
        #expect(Self.clientError(forServerHello: badSuite)?.alert == .illegalParameter)
    }

    @Test("second HelloRetryRequest → unexpected_message")
    func secondHelloRetry() {
        var ext = Extensions()
        ext.append(.keyShare) { $0.writeUInt16(NamedGroup.secp256r1.rawValue) }
        ext.append(.supportedVersions) { $0.writeUInt16(0x0304) }
        let hrr = ServerHello(random: ServerHello.helloRetryRequestRandom, legacySessionIDEcho: [], cipherSuite: .aes128GCMSHA256, extensions: ext)
        let client = TLSHandshake(client: Configs.client(), serverName: "localhost")
        var error: TLSError?
        do {
            try client.start()
            guard case .send(.initial, let ch)? = client.nextEvent() else { return }
            var reply = hrr
            reply.legacySessionIDEcho = try ClientHello(body: Array(ch[4...])).legacySessionID
            try client.receive(reply.encoded, at: .initial)
            var ext2 = Extensions()
            ext2.append(.keyShare) { $0.writeUInt16(NamedGroup.secp384r1.rawValue) }
            ext2.append(.supportedVersions) { $0.writeUInt16(0x0304) }
            reply.extensions = ext2
            try client.receive(reply.encoded, at: .initial)
        } catch let e {
            error = e
        }
        #expect(error?.alert == .unexpectedMessage)
    }

    @Test("a message in the wrong state or level → unexpected_message")
    func wrongState() {
        let client = TLSHandshake(client: Configs.client(), serverName: "localhost")
        #expect(throws: TLSError.self) {
            try client.start()
            try client.receive(HandshakeMessage(type: .finished, body: Array(repeating: 0, count: 32)).encoded, at: .initial)
        }
        #expect(client.error?.alert == .unexpectedMessage)
        // Errors are sticky.
        #expect(throws: TLSError.self) { try client.receive([], at: .initial) }
        let server = TLSHandshake(server: Configs.server())
        #expect(throws: TLSError.self) { try server.receive(HandshakeMessage(type: .clientHello, body: []).encoded, at: .handshake) }
        #expect(server.error?.alert == .unexpectedMessage)
    }

    // MARK: Record layer

    @Test("record layer: corrupted ciphertext → bad_record_mac")
    func badRecordMAC() throws {
        let pair = StreamPair(client: Configs.client(), server: Configs.server()).run()
        try pair.client.write([1, 2, 3])
        var wire = pair.client.takeOutgoing()
        wire[wire.count - 1] ^= 1
        #expect(throws: TLSError.self) { try pair.server.receive(wire) }
        #expect(pair.server.error?.alert == .badRecordMAC)
        // The alert is queued for the peer, and the peer reports it as received.
        try? pair.client.receive(pair.server.takeOutgoing())
        #expect(pair.client.error?.alert == .badRecordMAC && pair.client.error?.origin == .peer)
    }

    @Test("record layer: oversized records → record_overflow")
    func recordOverflow() {
        let server = TLSStream(server: Configs.server())
        #expect(throws: TLSError.self) { try server.receive([22, 3, 3, 0x41, 0x01] + Array(repeating: 0, count: 16)) }
        #expect(server.error?.alert == .recordOverflow)
        let server2 = TLSStream(server: Configs.server())
        #expect(throws: TLSError.self) { try server2.receive([22, 3, 3, 0x40, 0x01] + Array(repeating: 1, count: 0x4001)) }
        #expect(server2.error?.alert == .recordOverflow)
    }

    @Test("record layer: a flood of empty records → unexpected_message")
    func emptyRecordFlood() throws {
        let pair = StreamPair(client: Configs.client(), server: Configs.server()).run()
        // Build 40 empty application-data records with the client's keys by writing empty data.
        for _ in 0..<40 { try pair.client.write([]) }
        #expect(throws: TLSError.self) { try pair.server.receive(pair.client.takeOutgoing()) }
        #expect(pair.server.error?.alert == .unexpectedMessage)
    }

    @Test("record layer: an unprotected record after keys → unexpected_message")
    func plaintextAfterKeys() throws {
        let pair = StreamPair(client: Configs.client(), server: Configs.server()).run()
        #expect(throws: TLSError.self) { try pair.server.receive([22, 3, 3, 0, 1, 0x41]) }
        #expect(pair.server.error?.alert == .unexpectedMessage)
    }

    @Test("record layer: change_cipher_spec is dropped during the handshake, refused after")
    func changeCipherSpec() throws {
        let server = TLSStream(server: Configs.server())
        try server.receive([20, 3, 3, 0, 1, 1])
        let pair = StreamPair(client: Configs.client(), server: Configs.server()).run()
        #expect(throws: TLSError.self) { try pair.server.receive([20, 3, 3, 0, 1, 1]) }
        #expect(pair.server.error?.alert == .unexpectedMessage)
    }

    @Test("record layer: application data before the handshake → unexpected_message")
    func earlyApplicationData() {
        let client = TLSStream(client: Configs.client(), serverName: "localhost")
        #expect(throws: TLSError.self) {
            try client.start()
            try client.receive([23, 3, 3, 0, 2, 1, 2])
        }
        #expect(client.error?.alert == .unexpectedMessage)
    }
}
