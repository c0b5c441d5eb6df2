import QuiverCore
import X509

/// The TLS 1.2 client: a full handshake (ECDHE, AEAD suites), the extended master secret
/// required of the server, the server's certificate and ServerKeyExchange signature verified,
/// a client certificate sent when the server asks and one is configured. Session tickets
/// (RFC 5077): it asks for one, hands it over as a ``SessionTicket`` of version `.tls12`, and
/// offers it to resume (abbreviated handshake: the server's Finished first). It never
/// renegotiates: a HelloRequest during the handshake is ignored (RFC 5246 §7.4.1.1), after it
/// answered with a `no_renegotiation` warning.
extension TLSHandshake {
    /// Whether this client's ClientHello offers TLS 1.2 / TLS 1.3 (DTLS 1.2 / DTLS 1.3, which
    /// `.tls12` and `.tls13` stand for in DTLS).
    var offersTLS12: Bool { !isQUIC && configuration.minimumVersion <= .tls12 }
    var offersTLS13: Bool { isQUIC || configuration.maximumVersion >= .tls13 }

    /// The ServerHello version of the TLS 1.2 family: 0x0303, or 0xFEFD in DTLS 1.2.
    var wireVersion12: UInt16 { isDatagram ? ClientHello.dtls12Version : ClientHello.tlsVersion }

    /// DTLS: a HelloVerifyRequest (RFC 6347 §4.2.1) — the ClientHello again, with the cookie.
    /// Neither it nor the first ClientHello enters the transcript.
    func clientReceiveHelloVerifyRequest(_ message: HandshakeMessage, _ context: ClientHelloContext) throws(TLSError) {
        guard isDatagram else { throw TLSError(.unexpectedMessage, "HelloVerifyRequest outside DTLS") }
        helloVerifyRequests += 1
        guard helloVerifyRequests <= 3 else { throw TLSError(.unexpectedMessage, "too many HelloVerifyRequests") }
        let cookie = try MessageCodec.decode("HelloVerifyRequest", message.body) { r in
            _ = try r.readUInt16()  // server_version: DTLS 1.0 or 1.2 (RFC 6347 §4.2.1)
            return try r.readLengthPrefixedBytes(1)
        }
        var next = context
        next.dtlsCookie = cookie
        transcript = Transcript()
        send(.initial, clientHelloBytes(next))
        state = .clientExpectServerHello(next)
    }

    func client12ReceiveServerHello(_ message: HandshakeMessage, _ hello: ServerHello, resuming ticket: SessionTicket?) throws(TLSError) {
        let suite = hello.cipherSuite
        guard suite.version == .tls12, configuration.tls12CipherSuites.contains(suite), let hash = suite.hash else {
            throw TLSError(.illegalParameter, "server selected cipher suite \(suite), which was not offered for TLS 1.2")
        }
        if let ticket, ticket.suite != suite {
            throw TLSError(.illegalParameter, "resumed TLS 1.2 session with another cipher suite than the ticket's")
        }
        negotiatedVersion = .tls12
        var extendedMasterSecret = false
        var expectTicket = false
        for e in hello.extensions.items {
            switch e.type {
            case .extendedMasterSecret:
                guard e.data.isEmpty else { throw TLSError(.decodeError, "extended_master_secret with a body") }
                extendedMasterSecret = true
            case .renegotiationInfo:
                // RFC 5746 §3.4: empty in an initial handshake.
                guard e.data == [0] else { throw TLSError(.handshakeFailure, "non-empty renegotiation_info in an initial handshake") }
            case .ecPointFormats:
                let formats = try hello.extensions.decode(.ecPointFormats) { r throws(DecodeError) in try r.readLengthPrefixedBytes(1) } ?? []
                guard formats.contains(0) else { throw TLSError(.illegalParameter, "ec_point_formats without the uncompressed format") }
            case .applicationLayerProtocolNegotiation:
                try acceptServerALPN(hello.extensions)
            case .serverName:
                guard e.data.isEmpty, serverName != nil else { throw TLSError(.illegalParameter, "unexpected server_name in ServerHello") }
            case .sessionTicket:
                guard e.data.isEmpty else { throw TLSError(.decodeError, "session_ticket with a body in ServerHello") }
                expectTicket = true
            case .connectionID:
                try acceptConnectionID(hello.extensions)
            case .useSRTP:
                try acceptSRTP(hello.extensions)
            case .recordSizeLimit:
                // RFC 8449 §4: in TLS 1.2 the limit counts the plaintext alone, at most 2^14.
                guard RecordSizeLimit.local(configuration.recordSizeLimit) < RecordSizeLimit.maximum else {
                    throw TLSError(.unsupportedExtension, "record_size_limit in ServerHello, which was not offered")
                }
                if let limit = try RecordSizeLimit.peerValue(hello.extensions) { peerRecordSizeLimit = min(limit, TLSStream.maxPlaintext) }
            default:
                throw TLSError(.unsupportedExtension, "unsolicited extension \(e.type.rawValue) in a TLS 1.2 ServerHello")
            }
        }
        guard extendedMasterSecret else {
            throw TLSError(.handshakeFailure, "the server does not support extended_master_secret (RFC 7627), which TLS 1.2 requires here")
        }
        cipherSuite = suite
        serverRandom = hello.random
        transcript.append(message.encoded)
        var flight = Client12Flight(
            suite: suite, hash: hash, serverRandom: hello.random, serverLeaf: nil, serverShare: nil, certificateRequest: nil,
            master: nil, resumed: ticket != nil, expectTicket: expectTicket)
        guard let ticket else {
            state = .client12ExpectCertificate(flight)
            return
        }
        // Abbreviated handshake: [NewSessionTicket], ChangeCipherSpec, Finished from the server.
        isResumed = true
        let master = TLS12MasterSecret(hash: hash, secret: ticket.psk)
        logSecret("CLIENT_RANDOM", master.secret)
        flight.master = master
        client12AwaitServerFinished(flight)
    }

    /// After our flight (full handshake) or the ServerHello (resumption): the server's
    /// NewSessionTicket when promised, then its ChangeCipherSpec and Finished.
    private func client12AwaitServerFinished(_ flight: Client12Flight) {
        guard let master = flight.master else { return }
        if flight.expectTicket {
            state = .client12ExpectTicket(flight)
            return
        }
        emit(.expectChangeCipherSpec(master.recordKeys(suite: flight.suite, clientRandom: clientRandom, serverRandom: flight.serverRandom).server))
        state = .client12ExpectFinished(flight)
    }

    func client12Handle(_ message: HandshakeMessage, at level: EncryptionLevel) throws(TLSError) {
        if message.type == .helloRequest && level == .initial && message.body.isEmpty {
            return  // RFC 5246 §7.4.1.1: ignored while negotiating, and not part of the transcript
        }
        switch (state, message.type) {
        case (.client12ExpectCertificate(var flight), .certificate):
            try expect(level, .initial, message)
            let chain = try TLS12Codec.certificate(message.body)
            guard !chain.isEmpty else { throw TLSError(.decodeError, "the server sent an empty Certificate message") }
            let leaf = try configuration.certificateVerifier.verify(chain: chain, serverName: serverName, purpose: .serverAuthentication, clock: configuration.clock)
            peerCertificates = (try? CertificateChain(derEncoded: chain).certificates) ?? [leaf]
            flight.serverLeaf = leaf
            transcript.append(message.encoded)
            state = .client12ExpectServerKeyExchange(flight)
        case (.client12ExpectServerKeyExchange(var flight), .serverKeyExchange):
            try expect(level, .initial, message)
            guard let leaf = flight.serverLeaf else { throw TLSError(.internalError, "no server certificate") }
            let exchange = try TLS12Codec.serverKeyExchange(message.body)
            guard Self.tls12Groups.contains(exchange.group), configuration.groups.contains(exchange.group) else {
                throw TLSError(.illegalParameter, "ServerKeyExchange uses group \(exchange.group), which was not offered")
            }
            guard Self.tls12AcceptedSchemes(configuration.signatureSchemes).contains(exchange.scheme) else {
                throw TLSError(.illegalParameter, "ServerKeyExchange signed with \(exchange.scheme), which was not offered")
            }
            try SignatureVerifier.verify(
                signature: exchange.signature, scheme: exchange.scheme, message: clientRandom + flight.serverRandom + exchange.params,
                publicKey: leaf.publicKey, version: .tls12)
            group = exchange.group
            flight.serverShare = (exchange.group, exchange.publicKey)
            transcript.append(message.encoded)
            state = .client12ExpectCertificateRequestOrDone(flight)
        case (.client12ExpectCertificateRequestOrDone(var flight), .certificateRequest):
            try expect(level, .initial, message)
            flight.certificateRequest = try TLS12Codec.certificateRequest(message.body)
            transcript.append(message.encoded)
            state = .client12ExpectServerHelloDone(flight)
        case (.client12ExpectCertificateRequestOrDone(let flight), .serverHelloDone), (.client12ExpectServerHelloDone(let flight), .serverHelloDone):
            try expect(level, .initial, message)
            guard message.body.isEmpty else { throw TLSError(.decodeError, "ServerHelloDone with a body") }
            transcript.append(message.encoded)
            try client12SendFlight(flight)
        case (.client12ExpectTicket(var flight), .newSessionTicket):
            try expect(level, .initial, message)
            guard let master = flight.master else { throw TLSError(.internalError, "no master secret") }
            let (hint, ticket) = try TLS12Codec.newSessionTicket(message.body)
            transcript.append(message.encoded)
            if !ticket.isEmpty {  // empty: no ticket this time (RFC 5077 §3.3)
                // A hint of 0 leaves the lifetime to us: the TLS 1.3 default of 2 hours; at most 7 days.
                emit(.sessionTicket(SessionTicket(
                    version: .tls12, suite: flight.suite, psk: master.secret, ticket: ticket, lifetime: hint == 0 ? 7200 : min(hint, 604_800),
                    ageAdd: 0, receivedAt: configuration.clock.millisecondsSinceEpoch(), maxEarlyDataSize: 0, alpn: negotiatedALPN,
                    serverName: serverName)))
            }
            flight.expectTicket = false
            client12AwaitServerFinished(flight)
        case (.client12ExpectFinished(let flight), .finished):
            try expect(level, .application, message)
            guard let master = flight.master else { throw TLSError(.internalError, "no master secret") }
            guard message.body.count == 12 else { throw TLSError(.decodeError, "server Finished of \(message.body.count) bytes, expected 12") }
            let expected = master.finishedVerifyData(client: false, transcriptHash: transcript.hash(flight.hash))
            guard Self.constantTimeEqual(expected, message.body) else { throw TLSError(.decryptError, "server Finished does not verify") }
            transcript.append(message.encoded)
            if flight.resumed {
                // Our ChangeCipherSpec and Finished answer the server's (RFC 5246 §7.3).
                let keys = master.recordKeys(suite: flight.suite, clientRandom: clientRandom, serverRandom: flight.serverRandom)
                emit(.changeWriteCipherSpec(keys.client))
                send(.application, HandshakeMessage(type: .finished, body: master.finishedVerifyData(client: true, transcriptHash: transcript.hash(flight.hash))).encoded)
            }
            complete12(master)
        default:
            throw TLSError(.unexpectedMessage, "unexpected \(message.type) at \(level) in a TLS 1.2 handshake")
        }
    }

    /// After ServerHelloDone: [Certificate], ClientKeyExchange, [CertificateVerify], then
    /// ChangeCipherSpec and Finished.
    private func client12SendFlight(_ flight: Client12Flight) throws(TLSError) {
        guard let (group, point) = flight.serverShare else { throw TLSError(.internalError, "no server key exchange") }
        var next = flight
        var signer: (PrivateKey, SignatureScheme)?
        if let requested = flight.certificateRequest {
            if let chain = configuration.certificateChain, let key = configuration.privateKey,
               let scheme = key.tls12SignatureSchemes.first(where: { requested.contains($0) }) {
                send(.initial, TLS12Codec.encodeCertificate(chain.derEncoded))
                signer = (key, scheme)
            } else {
                send(.initial, TLS12Codec.encodeCertificate([]))  // RFC 5246 §7.4.6: an empty list
            }
        }
        guard let ephemeral = configuration.testClientKeyShare?(group) ?? KeySharePrivate.generate(group) else {
            throw TLSError(.internalError, "cannot generate a \(group) key")
        }
        let preMaster = try ephemeral.sharedSecret(withPeerShare: point)
        send(.initial, TLS12Codec.encodeClientKeyExchange(ephemeral.publicBytes))
        let master = TLS12MasterSecret(hash: flight.hash, preMasterSecret: preMaster, sessionHash: transcript.hash(flight.hash))
        logSecret("CLIENT_RANDOM", master.secret)
        if let (key, scheme) = signer {
            let signature = try key.sign(transcript.bytes, scheme: scheme)
            send(.initial, MessageCodec.encodeCertificateVerify(scheme: scheme, signature: signature))
        }
        let keys = master.recordKeys(suite: flight.suite, clientRandom: clientRandom, serverRandom: flight.serverRandom)
        emit(.changeWriteCipherSpec(keys.client))
        send(.application, HandshakeMessage(type: .finished, body: master.finishedVerifyData(client: true, transcriptHash: transcript.hash(flight.hash))).encoded)
        next.master = master
        client12AwaitServerFinished(next)
    }

    /// The server's ALPN choice (RFC 7301 §3.1): one protocol, one we offered.
    func acceptServerALPN(_ ext: Extensions) throws(TLSError) {
        guard !configuration.alpn.isEmpty else { throw TLSError(.unsupportedExtension, "server sent ALPN, which was not offered") }
        let names = try ext.decode(.applicationLayerProtocolNegotiation) { r throws(DecodeError) in try ExtensionCodec.readALPN(&r) } ?? []
        guard names.count == 1, let name = String(validating: names[0], as: UTF8.self), configuration.alpn.contains(name) else {
            throw TLSError(.illegalParameter, "server selected an ALPN protocol that was not offered")
        }
        negotiatedALPN = name
    }
}
