import QuiverCore
import X509

/// The TLS 1.2 server (RFC 5246 with RFC 8422's ECDHE, RFC 5288/7905's AEAD suites, RFC 7627's
/// extended master secret, RFC 5746's renegotiation_info, RFC 5077's tickets):
///
/// ```
/// full:     ClientHello → ServerHello, Certificate, ServerKeyExchange, [CertificateRequest], ServerHelloDone
///           [Certificate], ClientKeyExchange, [CertificateVerify], CCS, Finished → [NewSessionTicket], CCS, Finished
/// resumed:  ClientHello(ticket) → ServerHello, [NewSessionTicket], CCS, Finished
///           CCS, Finished →
/// ```
///
/// Refused: clients without the extended master secret (`handshake_failure`), a non-empty
/// renegotiation_info (`handshake_failure`), TLS_FALLBACK_SCSV while we speak TLS 1.3
/// (`inappropriate_fallback`), suites other than ECDHE with AES-GCM or ChaCha20-Poly1305, SHA-1
/// signatures; a ClientHello after the handshake gets a `no_renegotiation` warning.
extension TLSHandshake {
    func server12ReceiveClientHello(_ message: HandshakeMessage, _ offer: ClientOffer) throws(TLSError) {
        let config = configuration
        let hello = offer.hello
        let ext = hello.extensions
        negotiatedVersion = .tls12
        // DTLS: our messages continue the client's message_seq (after a HelloVerifyRequest the
        // ClientHello is 1, and so is our ServerHello, RFC 6347 §4.2.2).
        datagramSendSeq = message.messageSeq ?? 0
        // Above (D)TLS 1.2 we speak (D)TLS 1.3.
        let speaksNewer = config.maximumVersion > .tls12
        if hello.cipherSuites.contains(.fallbackSCSV) && speaksNewer {
            throw TLSError(.inappropriateFallback, "TLS_FALLBACK_SCSV in a TLS 1.2 ClientHello, but the server supports TLS 1.3 (RFC 7507)")
        }
        if let info = ext[.renegotiationInfo], info != [0] {
            throw TLSError(.handshakeFailure, "non-empty renegotiation_info in an initial handshake (RFC 5746 §3.6)")
        }
        let secureRenegotiation = ext.contains(.renegotiationInfo) || hello.cipherSuites.contains(.emptyRenegotiationInfoSCSV)
        guard let ems = ext[.extendedMasterSecret] else {
            throw TLSError(.handshakeFailure, "the client does not offer extended_master_secret (RFC 7627), which TLS 1.2 requires here")
        }
        guard ems.isEmpty else { throw TLSError(.decodeError, "extended_master_secret with a body") }
        let pointFormats = try ext.decode(.ecPointFormats) { r throws(DecodeError) in try r.readLengthPrefixedBytes(1) }
        if let formats = pointFormats, !formats.contains(0) {
            throw TLSError(.illegalParameter, "ec_point_formats without the uncompressed format (RFC 8422 §5.1.2)")
        }
        let alpn = try negotiateALPN(offer)
        let ticketRequested = ext[.sessionTicket]
        let issueTicket = ticketRequested != nil && config.sessionTicketKeys != nil && config.ticketLifetime > 0 && config.ticketsPerConnection > 0

        clientRandom = hello.random
        serverRandom = config.random.bytes(32)
        if speaksNewer {
            // RFC 8446 §4.1.3: a client that also speaks TLS 1.3 detects a downgrade.
            serverRandom.replaceSubrange(24..., with: ServerHello.downgradeTLS12)
        }
        negotiatedALPN = alpn
        if let limit = peerRecordSizeLimit { peerRecordSizeLimit = min(limit, TLSStream.maxPlaintext) }  // RFC 8449 §4
        transcript.append(message.encoded)

        var serverExtensions = Extensions()
        if secureRenegotiation { serverExtensions.append(.renegotiationInfo, [0]) }
        serverExtensions.append(.extendedMasterSecret, [])
        if let alpn { serverExtensions.append(.applicationLayerProtocolNegotiation) { ExtensionCodec.writeALPN(&$0, [Array(alpn.utf8)]) } }
        if pointFormats != nil { serverExtensions.append(.ecPointFormats) { $0.writeLengthPrefixedBytes(1, [0]) } }
        if issueTicket { serverExtensions.append(.sessionTicket, []) }
        try answerConnectionID(hello, into: &serverExtensions)
        try answerSRTP(hello, into: &serverExtensions)

        if let ticket = ticketRequested, let (resumed, suite) = server12OpenTicket(ticket, offer) {
            // Abbreviated handshake (RFC 5077 §3.1): the session ID echoed tells the client.
            cipherSuite = suite
            isResumed = true
            let hash = resumed.hash
            send(.initial, serverHello12(sessionID: hello.legacySessionID, suite: suite, extensions: serverExtensions))
            var flight = Server12Flight(
                suite: suite, hash: hash, serverRandom: serverRandom, ephemeral: nil, master: resumed, clientLeaf: nil,
                requestedCertificate: false, resumed: true, issueTicket: issueTicket)
            logSecret("CLIENT_RANDOM", resumed.secret)
            if issueTicket { server12SendTicket(master: resumed) }
            let keys = resumed.recordKeys(suite: suite, clientRandom: clientRandom, serverRandom: serverRandom)
            emit(.changeWriteCipherSpec(keys.server))
            send(.application, HandshakeMessage(type: .finished, body: resumed.finishedVerifyData(client: false, transcriptHash: transcript.hash(hash))).encoded)
            emit(.expectChangeCipherSpec(keys.client))
            flight.issueTicket = false
            state = .server12ExpectFinished(flight)
            return
        }

        // Full handshake: a certificate whose key can serve a suite and a scheme the client offers.
        let candidates = serverCertificateCandidates()
        guard !candidates.isEmpty else {
            if !config.sniCertificates.isEmpty { throw TLSError(.unrecognizedName, "no certificate for server name \(serverName ?? "(none)")") }
            throw TLSError(.internalError, "the server has no certificate configured")
        }
        var chosen: (chain: CertificateChain, key: PrivateKey, suite: CipherSuite, scheme: SignatureScheme)?
        for (chain, key) in candidates {
            let ecdsaKey: Bool
            if case .rsa = key.algorithm { ecdsaKey = false } else { ecdsaKey = true }
            // RFC 8422 §5.3: an ECDSA key must be on a curve the client listed, when it listed any.
            if let curve = Self.curve(of: key), !offer.groups.isEmpty, !offer.groups.contains(curve) { continue }
            guard let suite = config.tls12CipherSuites.first(where: { $0.version == .tls12 && $0.isECDSA == ecdsaKey && hello.cipherSuites.contains($0) }),
                  let scheme = key.tls12SignatureSchemes.first(where: { offer.schemes.contains($0) })
            else { continue }
            chosen = (chain, key, suite, scheme)
            break
        }
        guard let (chain, key, suite, scheme) = chosen, let hash = suite.hash else {
            throw TLSError(.handshakeFailure, "no TLS 1.2 cipher suite and signature scheme in common with the server's certificates")
        }
        // RFC 8422 §5.1.1: without supported_groups, any curve; P-256 is the one every client has.
        let offeredGroups = offer.groups.isEmpty ? [NamedGroup.secp256r1] : offer.groups
        guard let group = config.groups.first(where: { Self.tls12Groups.contains($0) && offeredGroups.contains($0) }) else {
            throw TLSError(.handshakeFailure, "no ECDHE group in common for TLS 1.2")
        }
        guard let ephemeral = config.testServerKeyShare?(group) ?? KeySharePrivate.generate(group) else {
            throw TLSError(.internalError, "cannot generate a \(group) key")
        }
        cipherSuite = suite
        self.group = group
        if serverName != nil { serverExtensions.append(.serverName, []) }
        send(.initial, serverHello12(sessionID: [], suite: suite, extensions: serverExtensions))
        send(.initial, TLS12Codec.encodeCertificate(chain.derEncoded))
        let params = TLS12Codec.encodeECDHParams(group: group, publicKey: ephemeral.publicBytes)
        let signature = try key.sign(clientRandom + serverRandom + params, scheme: scheme)
        send(.initial, TLS12Codec.encodeServerKeyExchange(params: params, scheme: scheme, signature: signature))
        let requestCertificate = config.clientAuthentication != .none
        if requestCertificate {
            send(.initial, TLS12Codec.encodeCertificateRequest(schemes: Self.tls12AcceptedSchemes(config.signatureSchemes)))
        }
        send(.initial, HandshakeMessage(type: .serverHelloDone, body: []).encoded)
        let flight = Server12Flight(
            suite: suite, hash: hash, serverRandom: serverRandom, ephemeral: ephemeral, master: nil, clientLeaf: nil,
            requestedCertificate: requestCertificate, resumed: false, issueTicket: issueTicket)
        state = requestCertificate ? .server12ExpectCertificate(flight) : .server12ExpectClientKeyExchange(flight)
    }

    /// A TLS 1.2 (or DTLS 1.2) ServerHello with our random.
    private func serverHello12(sessionID: [UInt8], suite: CipherSuite, extensions: Extensions) -> [UInt8] {
        var hello = ServerHello(random: serverRandom, legacySessionIDEcho: sessionID, cipherSuite: suite, extensions: extensions)
        hello.legacyVersion = wireVersion12
        return hello.encoded
    }

    /// The curve of an ECDSA key (`nil` for RSA and Ed25519 keys).
    static func curve(of key: PrivateKey) -> NamedGroup? {
        switch key.algorithm {
        case .ecdsaP256: return .secp256r1
        case .ecdsaP384: return .secp384r1
        case .ecdsaP521: return .secp521r1
        case .rsa, .ed25519: return nil
        }
    }

    /// The ECDHE groups of TLS 1.2 (RFC 8422 §5.1.1; no hybrid post-quantum groups).
    static let tls12Groups: [NamedGroup] = [.x25519, .secp256r1, .secp384r1, .secp521r1]

    /// The schemes accepted in a TLS 1.2 peer's signatures: the configured ones plus RSA
    /// PKCS#1 v1.5, which TLS 1.2 allows.
    static func tls12AcceptedSchemes(_ configured: [SignatureScheme]) -> [SignatureScheme] {
        configured + [.rsaPKCS1SHA256, .rsaPKCS1SHA384, .rsaPKCS1SHA512].filter { !configured.contains($0) }
    }

    func server12Handle(_ message: HandshakeMessage, at level: EncryptionLevel) throws(TLSError) {
        switch (state, message.type) {
        case (.server12ExpectCertificate(var flight), .certificate):
            try expect(level, .initial, message)
            let chain = try TLS12Codec.certificate(message.body)
            transcript.append(message.encoded)
            if chain.isEmpty {
                if configuration.clientAuthentication == .required {
                    // RFC 5246 §7.4.6 names handshake_failure for a client that sends no certificate.
                    throw TLSError(.handshakeFailure, "the client sent no certificate")
                }
            } else {
                let leaf = try configuration.certificateVerifier.verify(chain: chain, serverName: nil, purpose: .clientAuthentication, clock: configuration.clock)
                peerCertificates = (try? CertificateChain(derEncoded: chain).certificates) ?? [leaf]
                flight.clientLeaf = leaf
            }
            state = .server12ExpectClientKeyExchange(flight)
        case (.server12ExpectClientKeyExchange(var flight), .clientKeyExchange):
            try expect(level, .initial, message)
            guard let ephemeral = flight.ephemeral else { throw TLSError(.internalError, "no ECDHE key") }
            let point = try TLS12Codec.clientKeyExchange(message.body)
            let preMaster = try ephemeral.sharedSecret(withPeerShare: point)
            transcript.append(message.encoded)
            // RFC 7627 §4: the session hash covers the handshake up to the ClientKeyExchange.
            let master = TLS12MasterSecret(hash: flight.hash, preMasterSecret: preMaster, sessionHash: transcript.hash(flight.hash))
            logSecret("CLIENT_RANDOM", master.secret)
            flight.ephemeral = nil
            flight.master = master
            if flight.clientLeaf != nil {
                state = .server12ExpectCertificateVerify(flight)
            } else {
                server12ExpectClientFinished(flight)
            }
        case (.server12ExpectCertificateVerify(let flight), .certificateVerify):
            try expect(level, .initial, message)
            guard let leaf = flight.clientLeaf else { throw TLSError(.internalError, "no client certificate") }
            try verify12Signature(message, leaf: leaf)
            server12ExpectClientFinished(flight)
        case (.server12ExpectFinished(let flight), .finished):
            try expect(level, .application, message)
            try server12ReceiveFinished(message, flight)
        default:
            throw TLSError(.unexpectedMessage, "unexpected \(message.type) at \(level) in a TLS 1.2 handshake")
        }
    }

    private func server12ExpectClientFinished(_ flight: Server12Flight) {
        guard let master = flight.master else { return }
        emit(.expectChangeCipherSpec(master.recordKeys(suite: flight.suite, clientRandom: clientRandom, serverRandom: serverRandom).client))
        state = .server12ExpectFinished(flight)
    }

    /// A TLS 1.2 CertificateVerify (RFC 5246 §7.4.8): a signature over the handshake messages so
    /// far, with a scheme we accept.
    func verify12Signature(_ message: HandshakeMessage, leaf: Certificate) throws(TLSError) {
        let (scheme, signature) = try MessageCodec.certificateVerify(message.body)
        guard Self.tls12AcceptedSchemes(configuration.signatureSchemes).contains(scheme) else {
            throw TLSError(.illegalParameter, "CertificateVerify uses \(scheme), which was not offered")
        }
        try SignatureVerifier.verify(signature: signature, scheme: scheme, message: transcript.bytes, publicKey: leaf.publicKey, version: .tls12)
        transcript.append(message.encoded)
    }

    private func server12ReceiveFinished(_ message: HandshakeMessage, _ flight: Server12Flight) throws(TLSError) {
        guard let master = flight.master else { throw TLSError(.internalError, "no master secret") }
        guard message.body.count == 12 else { throw TLSError(.decodeError, "client Finished of \(message.body.count) bytes, expected 12") }
        let expected = master.finishedVerifyData(client: true, transcriptHash: transcript.hash(flight.hash))
        guard Self.constantTimeEqual(expected, message.body) else { throw TLSError(.decryptError, "client Finished does not verify") }
        transcript.append(message.encoded)
        if !flight.resumed {
            if flight.issueTicket { server12SendTicket(master: master) }
            let keys = master.recordKeys(suite: flight.suite, clientRandom: clientRandom, serverRandom: serverRandom)
            emit(.changeWriteCipherSpec(keys.server))
            send(.application, HandshakeMessage(type: .finished, body: master.finishedVerifyData(client: false, transcriptHash: transcript.hash(flight.hash))).encoded)
        }
        complete12(master)
    }

    /// Both Finished messages are done: only the master secret stays, for the exporter.
    func complete12(_ master: TLS12MasterSecret) {
        tls12Master = master
        isHandshakeComplete = true
        state = .connected
        releaseHandshakeSecrets()
        emit(.handshakeComplete)
    }

    /// Sends a TLS 1.2 NewSessionTicket (RFC 5077 §3.3) sealing the master secret, in the
    /// transcript before our ChangeCipherSpec.
    private func server12SendTicket(master: TLS12MasterSecret) {
        let config = configuration
        guard let keys = config.sessionTicketKeys, let suite = cipherSuite else { return }
        let now = config.clock.millisecondsSinceEpoch()
        let contents = TicketContents(
            suite: suite, psk: master.secret, issuedAt: now, ageAdd: 0, maxEarlyDataSize: 0, alpn: negotiatedALPN ?? "", uniqueID: [],
            serverName: Self.ticketServerName(serverName), context: issuedTicketContext, protocolVersion: .tls12)
        let sealed = keys.seal(contents.encoded, at: now, random: config.random)
        // An empty ticket says "none this time" (RFC 5077 §3.3) after the ServerHello promised one.
        send(.initial, TLS12Codec.encodeNewSessionTicket(lifetimeHint: sealed.isEmpty ? 0 : config.ticketLifetime, ticket: sealed))
        if !sealed.isEmpty { emit(.ticketIssued) }
    }

    /// The master secret of a TLS 1.2 ticket that may resume this ClientHello: it opens with
    /// our keys, is a TLS 1.2 ticket within its lifetime, for this server name and ticket
    /// context, and its suite is one both sides still allow.
    private func server12OpenTicket(_ ticket: [UInt8], _ offer: ClientOffer) -> (TLS12MasterSecret, CipherSuite)? {
        let config = configuration
        guard !ticket.isEmpty, let keys = config.sessionTicketKeys else { return nil }
        let now = config.clock.millisecondsSinceEpoch()
        guard let plain = keys.open(ticket, at: now), let contents = TicketContents(plain), contents.protocolVersion == .tls12,
              contents.serverName == Self.ticketServerName(serverName), contents.context == acceptedTicketContext,
              now >= contents.issuedAt, now - contents.issuedAt < UInt64(config.ticketLifetime) * 1000,
              config.tls12CipherSuites.contains(contents.suite), offer.hello.cipherSuites.contains(contents.suite),
              let hash = contents.suite.hash, contents.psk.count == 48
        else { return nil }
        return (TLS12MasterSecret(hash: hash, secret: contents.psk), contents.suite)
    }
}
