import QuiverCore
import X509

extension TLSHandshake {
    func serverHandle(_ message: HandshakeMessage, at level: EncryptionLevel) throws(TLSError) {
        switch (state, message.type) {
        case (.serverExpectClientHello(let s), .clientHello):
            try expect(level, .initial, message)
            guard reassemblers[level.rawValue].isEmpty else { throw TLSError(.unexpectedMessage, "data after ClientHello") }
            try serverReceiveClientHello(message, s)
        case (.serverExpectEndOfEarlyData(let flight), .endOfEarlyData):
            try expect(level, .earlyData, message)
            guard message.body.isEmpty else { throw TLSError(.decodeError, "EndOfEarlyData with a body") }
            transcript.append(message.encoded)
            emit(.installReadSecret(.handshake, TrafficSecret(suite: flight.keys.suite, secret: flight.keys.clientSecret, prefix: labelPrefix)))
            state = flight.requestedCertificate ? .serverExpectCertificate(flight) : .serverExpectFinished(flight)
        case (.serverExpectCertificate(var flight), .certificate), (.serverExpectCertificate(var flight), .compressedCertificate):
            try expect(level, .handshake, message)
            let (context, chain) = try MessageCodec.certificate(try certificateBody(message))
            guard context.isEmpty else { throw TLSError(.illegalParameter, "client Certificate with a wrong request context") }
            transcript.append(message.encoded)
            if chain.isEmpty {
                if configuration.clientAuthentication == .required {
                    throw TLSError(.certificateRequired, "the client sent no certificate")
                }
                state = .serverExpectFinished(flight)
            } else {
                let leaf = try configuration.certificateVerifier.verify(chain: chain, serverName: nil, purpose: .clientAuthentication, clock: configuration.clock)
                peerCertificates = (try? CertificateChain(derEncoded: chain).certificates) ?? [leaf]
                flight.clientLeaf = leaf
                state = .serverExpectCertificateVerify(flight)
            }
        case (.serverExpectCertificateVerify(let flight), .certificateVerify):
            try expect(level, .handshake, message)
            guard let leaf = flight.clientLeaf else { throw TLSError(.internalError, "no client certificate") }
            try verifyCertificateVerify(message, leaf: leaf, server: false, hash: flight.keys.hash)
            state = .serverExpectFinished(flight)
        case (.serverExpectFinished(let flight), .finished):
            try expect(level, .handshake, message)
            try serverReceiveFinished(message, flight)
        default:
            throw TLSError(.unexpectedMessage, "unexpected \(message.type) at \(level)")
        }
    }

    // MARK: ClientHello

    struct ClientOffer {
        var hello: ClientHello
        /// The version chosen from what the client offers and what we allow.
        var version: TLSVersion
        var groups: [NamedGroup]
        var schemes: [SignatureScheme]
        var shares: [(NamedGroup, [UInt8])]
        var alpn: [[UInt8]]?
        var pskModes: [UInt8]
        var psk: (identities: [(identity: [UInt8], obfuscatedAge: UInt32)], binders: [[UInt8]])?
        var cookie: [UInt8]?
        var earlyData: Bool
        var transportParameters: [UInt8]?
    }

    private func parseOffer(_ message: HandshakeMessage) throws(TLSError) -> ClientOffer {
        let hello = try ClientHello(body: message.body, datagram: isDatagram)
        let ext = hello.extensions
        let versions = try ext.decode(.supportedVersions) { r throws(DecodeError) in
            var list = try r.readLengthPrefixed(1)
            var out: [UInt16] = []
            while !list.isAtEnd { out.append(try list.readUInt16()) }
            return out
        }
        // Without supported_versions the client speaks TLS 1.2 (its legacy_version, RFC 8446
        // §4.2.1); QUIC is TLS 1.3 only (RFC 9001 §4.2).
        // DTLS: 1.2 only (its version was checked with the ClientHello; DTLS 1.3 is 0xFEFC).
        // DTLS: the same with DTLS 1.3 and 1.2 (0xFEFC, 0xFEFD; the ClientHello's version was
        // checked as it was parsed).
        let version: TLSVersion
        if versions?.contains(wireVersion13) == true && (isQUIC || configuration.maximumVersion >= .tls13) {
            version = .tls13
        } else if !isQUIC && configuration.minimumVersion <= .tls12 && versions?.contains(wireVersion12) ?? true {
            version = .tls12
        } else {
            throw TLSError(.protocolVersion, isQUIC || configuration.minimumVersion == .tls13
                ? "the client does not offer TLS 1.3" : "the client offers no version the server allows")
        }
        if let index = ext.items.firstIndex(where: { $0.type == .preSharedKey }), index != ext.items.count - 1 {
            throw TLSError(.illegalParameter, "pre_shared_key is not the last extension")
        }
        let offer = ClientOffer(
            hello: hello, version: version,
            groups: (try ext.decode(.supportedGroups) { r throws(DecodeError) in try ExtensionCodec.readUInt16List(&r) } ?? []).map(NamedGroup.init(rawValue:)),
            schemes: (try ext.decode(.signatureAlgorithms) { r throws(DecodeError) in try ExtensionCodec.readUInt16List(&r) } ?? []).map(SignatureScheme.init(rawValue:)),
            shares: try ext.decode(.keyShare) { r throws(DecodeError) in try ExtensionCodec.readClientKeyShares(&r) } ?? [],
            alpn: try ext.decode(.applicationLayerProtocolNegotiation) { r throws(DecodeError) in try ExtensionCodec.readALPN(&r) },
            pskModes: try ext.decode(.pskKeyExchangeModes) { r throws(DecodeError) in
                let modes = try r.readLengthPrefixedBytes(1)
                guard !modes.isEmpty else { throw DecodeError(.invalidValue, "empty psk_key_exchange_modes") }
                return modes
            } ?? [],
            psk: try ext.decode(.preSharedKey) { r throws(DecodeError) in try ExtensionCodec.readOfferedPSKs(&r) },
            cookie: try ext.decode(.cookie) { r throws(DecodeError) in try r.readLengthPrefixedBytes(2) },
            earlyData: try ext.decode(.earlyData) { _ throws(DecodeError) in true } ?? false,
            transportParameters: ext[.quicTransportParameters])
        if let name = try ext.decode(.serverName, { r throws(DecodeError) in try ExtensionCodec.readServerName(&r) }) {
            serverName = name
        }
        // RFC 8449: not used by QUIC, which has no records (RFC 9001 §8).
        if !isQUIC { peerRecordSizeLimit = try RecordSizeLimit.peerValue(ext) }
        peerCertificateCompression = try CertificateCompression.peerAlgorithms(ext)
        // RFC 8446 §4.2.8: every share must be for an offered group, each group once.
        var seen = Set<UInt16>()
        for (group, _) in offer.shares {
            guard offer.groups.contains(group), seen.insert(group.rawValue).inserted else {
                throw TLSError(.illegalParameter, "key share for \(group) is duplicated or not in supported_groups")
            }
        }
        if offer.psk != nil && offer.pskModes.isEmpty {
            throw TLSError(.missingExtension, "pre_shared_key without psk_key_exchange_modes")
        }
        return offer
    }

    func serverReceiveClientHello(_ message: HandshakeMessage, _ s: ServerExpectClientHello) throws(TLSError) {
        let config = configuration
        let offer = try parseOffer(message)
        if offer.version == .tls12 {
            // A second ClientHello answers a HelloRetryRequest, which is TLS 1.3's.
            guard s.retried == nil else { throw TLSError(.illegalParameter, "second ClientHello does not offer TLS 1.3") }
            try server12ReceiveClientHello(message, offer)
            return
        }
        negotiatedVersion = .tls13
        if isDatagram {
            transcript.useTLSHeaders()
            // Our messages continue the client's message_seq (1 after a HelloRetryRequest).
            datagramSendSeq = message.messageSeq ?? 0
            guard offer.hello.cookie?.isEmpty != false else {
                throw TLSError(.illegalParameter, "DTLS 1.3 ClientHello with a legacy_cookie (RFC 9147 §5.3)")
            }
        }
        if isQUIC {
            guard let tp = offer.transportParameters else { throw TLSError(.missingExtension, "the client sent no quic_transport_parameters") }
            peerTransportParameters = tp
            if let provider = transportParametersProvider { localTransportParameters = try provider(tp) }
            guard offer.hello.legacySessionID.isEmpty else { throw TLSError(.illegalParameter, "QUIC ClientHello with a legacy_session_id") }
        }
        middleboxCompatibility = !offer.hello.legacySessionID.isEmpty && !isDatagram

        // Cipher suite: our preference among the client's.
        guard let suite = config.cipherSuites.first(where: { offer.hello.cipherSuites.contains($0) }), let hash = suite.hash else {
            throw TLSError(.handshakeFailure, "no cipher suite in common")
        }
        if let retried = s.retried {
            guard suite == retried.suite else { throw TLSError(.illegalParameter, "second ClientHello changed the cipher suite") }
            guard offer.cookie == retried.cookie else { throw TLSError(.illegalParameter, "second ClientHello does not echo the cookie") }
            if let group = retried.group {
                guard offer.shares.count == 1, offer.shares[0].0 == group else {
                    throw TLSError(.illegalParameter, "second ClientHello does not carry exactly the requested key share")
                }
            }
            guard !offer.earlyData else { throw TLSError(.illegalParameter, "early_data after HelloRetryRequest") }
        } else if offer.cookie != nil {
            throw TLSError(.illegalParameter, "cookie in the first ClientHello")
        }

        let alpn = try negotiateALPN(offer)
        if isQUIC && alpn == nil { throw TLSError(.noApplicationProtocol, "QUIC requires ALPN (RFC 9001 §8.1)") }

        // Pre-shared key (resumption), only psk_dhe_ke.
        var psk: (key: [UInt8], ticket: TicketContents, index: Int, obfuscatedAge: UInt32)?
        // DTLS 1.3 resumption is not implemented: a PSK offered there is ignored.
        if let offered = offer.psk, offer.pskModes.contains(1), let keys = config.sessionTicketKeys, !isDatagram {
            let now = config.clock.millisecondsSinceEpoch()
            for (index, identity) in offered.identities.enumerated() {
                // A ticket resumes only under the server_name it was issued for: with certificates
                // chosen by SNI, a session must not carry over to a name whose certificate it
                // never saw (as rustls does).
                guard let plain = keys.open(identity.identity, at: now), let contents = TicketContents(plain),
                      contents.protocolVersion == .tls13, contents.serverName == Self.ticketServerName(serverName),
                      contents.context == acceptedTicketContext,
                      contents.suite.hash == hash, now >= contents.issuedAt, now - contents.issuedAt < UInt64(config.ticketLifetime) * 1000
                else { continue }
                psk = (contents.psk, contents, index, identity.obfuscatedAge)
                break
            }
            if let chosen = psk {
                // Verify the binder over the ClientHello truncated before the binders.
                let bindersLength = 2 + offered.binders.reduce(0) { $0 + 1 + $1.count }
                let encoded = message.encoded
                let truncated = Array(encoded[..<(encoded.count - bindersLength)])
                let binderKey = EarlySecret(hash: hash, psk: chosen.key, prefix: labelPrefix).resumptionBinderKey
                let expected = hash.finishedVerifyData(baseKey: binderKey, transcriptHash: transcript.hash(hash, appending: truncated), prefix: labelPrefix)
                guard Self.constantTimeEqual(expected, offered.binders[chosen.index]) else {
                    throw TLSError(.decryptError, "PSK binder does not verify")
                }
            }
        }
        if psk == nil {
            guard !offer.groups.isEmpty, !offer.schemes.isEmpty, offer.hello.extensions.contains(.keyShare) else {
                throw TLSError(.missingExtension, "ClientHello lacks supported_groups, signature_algorithms or key_share")
            }
        }

        // Key exchange group: a share we like, else HelloRetryRequest for a group we like.
        let shareGroup = config.groups.first { g in offer.shares.contains { $0.0 == g } }
        guard let group = shareGroup else {
            guard s.retried == nil, let wanted = config.groups.first(where: { offer.groups.contains($0) }) else {
                throw TLSError(.handshakeFailure, "no key-exchange group in common")
            }
            if offer.earlyData {
                // RFC 8446 §4.2.10: a HelloRetryRequest refuses 0-RTT; the record layer may skip
                // the early records the client sent after its first ClientHello.
                earlyDataAccepted = false
                emit(.earlyData(accepted: false))
            }
            try serverSendHelloRetry(message, suite: suite, group: wanted, sessionID: offer.hello.legacySessionID)
            return
        }
        let clientShare = offer.shares.first { $0.0 == group }?.1 ?? []

        // Certificate (by SNI) and signature scheme for CertificateVerify (not needed when resuming).
        var certificate: (chain: CertificateChain, key: PrivateKey, scheme: SignatureScheme)?
        if psk == nil {
            let candidates = serverCertificateCandidates()
            guard !candidates.isEmpty else {
                // Only SNI certificates, none for this name (RFC 6066 §3).
                if !configuration.sniCertificates.isEmpty { throw TLSError(.unrecognizedName, "no certificate for server name \(serverName ?? "(none)")") }
                throw TLSError(.internalError, "the server has no certificate configured")
            }
            for (chain, key) in candidates {
                if let scheme = key.signatureSchemes.first(where: { offer.schemes.contains($0) }) {
                    certificate = (chain, key, scheme)
                    break
                }
            }
            guard certificate != nil else { throw TLSError(.handshakeFailure, "no signature scheme in common with the server key") }
        }

        // 0-RTT decision (RFC 8446 §4.2.10, §8).
        var acceptEarly = false
        if offer.earlyData, let chosen = psk, chosen.index == 0, chosen.ticket.maxEarlyDataSize > 0, config.maxEarlyDataSize > 0,
           chosen.ticket.suite == suite, chosen.ticket.alpn == (alpn ?? ""), s.retried == nil, let antiReplay = config.antiReplay {
            let now = config.clock.millisecondsSinceEpoch()
            let reportedAge = UInt64(chosen.obfuscatedAge &- chosen.ticket.ageAdd)
            acceptEarly = antiReplay.admit(
                id: chosen.ticket.uniqueID, expectedAge: now - chosen.ticket.issuedAt, reportedAge: reportedAge,
                expiresAt: chosen.ticket.issuedAt + UInt64(config.ticketLifetime) * 1000, now: now)
        }

        // Commit to the handshake.
        cipherSuite = suite
        self.group = group
        negotiatedALPN = alpn
        isResumed = psk != nil
        clientRandom = offer.hello.random
        transcript.append(message.encoded)
        let early = EarlySecret(hash: hash, psk: psk?.key, prefix: labelPrefix)
        if offer.earlyData {
            earlyDataAccepted = acceptEarly
            emit(.earlyData(accepted: acceptEarly))
        }
        if acceptEarly {
            let secret = early.clientEarlyTrafficSecret(transcript.hash(hash))
            logSecret("CLIENT_EARLY_TRAFFIC_SECRET", secret)
            emit(.installReadSecret(.earlyData, TrafficSecret(suite: suite, secret: secret, prefix: labelPrefix)))
        }
        let (serverShare, shared) = try KeySharePrivate.respond(to: group, clientShare: clientShare, ephemeral: config.testServerKeyShare?(group))
        // Extension order as in RFC 8448's traces: pre_shared_key, key_share, supported_versions.
        var ext = Extensions()
        if let chosen = psk { ext.append(.preSharedKey) { $0.writeUInt16(UInt16(chosen.index)) } }
        ext.append(.keyShare) { w in
            w.writeUInt16(group.rawValue)
            w.writeLengthPrefixedBytes(2, serverShare)
        }
        ext.append(.supportedVersions) { $0.writeUInt16(wireVersion13) }
        try answerConnectionID(offer.hello, into: &ext)
        var serverHello = ServerHello(
            random: config.random.bytes(32), legacySessionIDEcho: isDatagram ? [] : offer.hello.legacySessionID, cipherSuite: suite, extensions: ext)
        serverHello.legacyVersion = wireVersion12
        send(.initial, serverHello.encoded)

        let handshakeSecret = early.handshakeSecret(sharedSecret: shared)
        let th = transcript.hash(hash)
        let keys = HandshakeKeys(
            suite: suite, hash: hash, handshakeSecret: handshakeSecret,
            clientSecret: handshakeSecret.clientHandshakeTrafficSecret(th), serverSecret: handshakeSecret.serverHandshakeTrafficSecret(th))
        logSecret("CLIENT_HANDSHAKE_TRAFFIC_SECRET", keys.clientSecret)
        logSecret("SERVER_HANDSHAKE_TRAFFIC_SECRET", keys.serverSecret)
        emit(.installWriteSecret(.handshake, TrafficSecret(suite: suite, secret: keys.serverSecret, prefix: labelPrefix)))
        if isQUIC || !acceptEarly {
            emit(.installReadSecret(.handshake, TrafficSecret(suite: suite, secret: keys.clientSecret, prefix: labelPrefix)))
        }

        // EncryptedExtensions.
        var ee = Extensions()
        if serverName != nil { ee.append(.serverName, []) }
        if let alpn { ee.append(.applicationLayerProtocolNegotiation) { ExtensionCodec.writeALPN(&$0, [Array(alpn.utf8)]) } }
        if acceptEarly { ee.append(.earlyData, []) }
        if peerRecordSizeLimit != nil {
            let limit = RecordSizeLimit.local(config.recordSizeLimit)
            ee.append(.recordSizeLimit) { $0.writeUInt16(UInt16(limit)) }
            localRecordSizeLimit = limit
        }
        if let tp = localTransportParameters { ee.append(.quicTransportParameters, tp) }
        try answerSRTP(offer.hello, into: &ee)
        send(.handshake, HandshakeMessage.encode(.encryptedExtensions) { ee.write(to: &$0) })

        let requestCertificate = psk == nil && config.clientAuthentication != .none
        if let (chain, key, scheme) = certificate {
            if requestCertificate {
                var crExt = Extensions()
                crExt.append(.signatureAlgorithms) { ExtensionCodec.writeUInt16List(&$0, config.signatureSchemes.map(\.rawValue)) }
                CertificateCompression.offer(config.certificateCompressionAlgorithms, into: &crExt)
                send(.handshake, MessageCodec.encodeCertificateRequest(context: [], extensions: crExt))
            }
            sendCertificate(context: [], chain: chain.derEncoded)
            let signature = try key.sign(Self.signedContent(server: true, transcriptHash: transcript.hash(hash)), scheme: scheme)
            send(.handshake, MessageCodec.encodeCertificateVerify(scheme: scheme, signature: signature))
        }
        let verify = hash.finishedVerifyData(baseKey: keys.serverSecret, transcriptHash: transcript.hash(hash), prefix: labelPrefix)
        send(.handshake, HandshakeMessage(type: .finished, body: verify).encoded)

        let master = handshakeSecret.masterSecret
        let th2 = transcript.hash(hash)
        let clientApp = TrafficSecret(suite: suite, secret: master.clientApplicationTrafficSecret0(th2), prefix: labelPrefix)
        let serverApp = TrafficSecret(suite: suite, secret: master.serverApplicationTrafficSecret0(th2), prefix: labelPrefix)
        exporterMasterSecret = master.exporterMasterSecret(th2)
        logSecret("CLIENT_TRAFFIC_SECRET_0", clientApp.secret)
        logSecret("SERVER_TRAFFIC_SECRET_0", serverApp.secret)
        logSecret("EXPORTER_SECRET", exporterMasterSecret ?? [])
        masterSecret = master
        clientApplicationSecret = clientApp
        serverApplicationSecret = serverApp
        emit(.installWriteSecret(.application, serverApp))

        let flight = ServerFlight(keys: keys, clientLeaf: nil, requestedCertificate: requestCertificate)
        if acceptEarly && !isQUIC {
            state = .serverExpectEndOfEarlyData(flight)
        } else {
            state = requestCertificate ? .serverExpectCertificate(flight) : .serverExpectFinished(flight)
        }
    }

    /// The ALPN protocol for this ClientHello (RFC 7301 §3.2): ours, in our order, among the
    /// client's; `nil` when either side has none; `no_application_protocol` when none is common.
    func negotiateALPN(_ offer: ClientOffer) throws(TLSError) -> String? {
        guard let offered = offer.alpn, !configuration.alpn.isEmpty else { return nil }
        guard let alpn = configuration.alpn.first(where: { offered.contains(Array($0.utf8)) }) else {
            throw TLSError(.noApplicationProtocol, "no ALPN protocol in common (client offered \(offered.map { String(decoding: $0, as: UTF8.self) }))")
        }
        return alpn
    }

    /// The certificates that may answer this ClientHello, best first: those whose names match
    /// the client's server_name exactly, then by wildcard (each in configuration order), then
    /// the default (``TLSConfiguration/sniCertificates``).
    func serverCertificateCandidates() -> [(CertificateChain, PrivateKey)] {
        var candidates: [(CertificateChain, PrivateKey)] = []
        if let name = serverName {
            let ranked = configuration.sniCertificates.map { ($0, $0.match(name)) }.filter { $0.1 != .noMatch }
            for tier in [CertifiedKey.NameMatch.exact, .wildcard] {
                candidates += ranked.filter { $0.1 == tier }.map { ($0.0.chain, $0.0.key) }
            }
        }
        if let chain = configuration.certificateChain, let key = configuration.privateKey, !chain.derEncoded.isEmpty {
            candidates.append((chain, key))
        }
        return candidates
    }

    private func serverSendHelloRetry(_ message: HandshakeMessage, suite: CipherSuite, group: NamedGroup, sessionID: [UInt8]) throws(TLSError) {
        guard let hash = suite.hash else { throw TLSError(.internalError, "suite without hash") }
        // The cookie binds the retry to this ClientHello: hash(CH1) ‖ HMAC(cookieKey, hash(CH1) ‖ group).
        // A server that keeps no state could rebuild the transcript from it (RFC 8446 §4.2.2).
        let chHash = hash.hash(message.encoded)
        let cookie = chHash + TLSHash.sha256.hmac(key: configuration.cookieKey, chHash + [UInt8(group.rawValue >> 8), UInt8(truncatingIfNeeded: group.rawValue)])
        transcript.append(message.encoded)
        transcript.replaceWithMessageHash(hash)
        send(.initial, Self.helloRetryRequest(suite: suite, group: group, cookie: cookie, sessionID: sessionID, datagram: isDatagram).encoded)
        didHelloRetry = true
        cipherSuite = suite
        state = .serverExpectClientHello(ServerExpectClientHello(retried: (group, cookie, suite)))
    }

    /// A HelloRetryRequest (RFC 8446 §4.1.4) asking for `group` (`nil`: only the cookie) and
    /// carrying `cookie`; in DTLS 1.3 with DTLS's versions and no session ID echoed.
    static func helloRetryRequest(suite: CipherSuite, group: NamedGroup?, cookie: [UInt8], sessionID: [UInt8], datagram: Bool) -> ServerHello {
        var ext = Extensions()
        if let group { ext.append(.keyShare) { $0.writeUInt16(group.rawValue) } }
        ext.append(.cookie) { $0.writeLengthPrefixedBytes(2, cookie) }
        ext.append(.supportedVersions) { $0.writeUInt16(datagram ? 0xFEFC : 0x0304) }
        var hrr = ServerHello(random: ServerHello.helloRetryRequestRandom, legacySessionIDEcho: datagram ? [] : sessionID, cipherSuite: suite, extensions: ext)
        if datagram { hrr.legacyVersion = ClientHello.dtls12Version }
        return hrr
    }

    // MARK: Finished and tickets

    private func serverReceiveFinished(_ message: HandshakeMessage, _ flight: ServerFlight) throws(TLSError) {
        let keys = flight.keys
        // RFC 8446 §4.4.4: verify_data is exactly Hash.length bytes; any other length is malformed.
        guard message.body.count == keys.hash.length else {
            throw TLSError(.decodeError, "client Finished of \(message.body.count) bytes, expected \(keys.hash.length)")
        }
        let expected = keys.hash.finishedVerifyData(baseKey: keys.clientSecret, transcriptHash: transcript.hash(keys.hash), prefix: labelPrefix)
        guard Self.constantTimeEqual(expected, message.body) else { throw TLSError(.decryptError, "client Finished does not verify") }
        transcript.append(message.encoded)
        guard let master = masterSecret, let clientApp = clientApplicationSecret else { throw TLSError(.internalError, "no master secret") }
        resumptionMasterSecret = master.resumptionMasterSecret(transcript.hash(keys.hash))
        emit(.installReadSecret(.application, clientApp))
        isHandshakeComplete = true
        state = .connected
        releaseHandshakeSecrets()
        emit(.handshakeComplete)
        issueTickets(count: configuration.ticketsPerConnection)
    }

    /// The server name a ticket is bound to: the client's server_name, lowercased ("" without one).
    static func ticketServerName(_ name: String?) -> String {
        var lowered = (name ?? "").lowercased()
        if lowered.hasSuffix(".") { lowered.removeLast() }
        return lowered
    }

    /// Sends `count` NewSessionTicket messages (server, after the handshake).
    public func issueTickets(count: Int) {
        let config = configuration
        // DTLS 1.3: no tickets (resumption is not implemented there).
        guard role == .server, isHandshakeComplete, !isDatagram, let keys = config.sessionTicketKeys, let suite = cipherSuite,
              let hash = suite.hash, let rms = resumptionMasterSecret, config.ticketLifetime > 0
        else { return }
        for _ in 0..<max(0, count) {
            let nonce = config.random.bytes(8)
            let ageBytes = config.random.bytes(4)
            let ageAdd = UInt32(ageBytes[0]) << 24 | UInt32(ageBytes[1]) << 16 | UInt32(ageBytes[2]) << 8 | UInt32(ageBytes[3])
            let now = config.clock.millisecondsSinceEpoch()
            let early: UInt32 = config.maxEarlyDataSize > 0 ? (isQUIC ? 0xffff_ffff : config.maxEarlyDataSize) : 0
            let contents = TicketContents(
                suite: suite, psk: hash.resumptionPSK(resumptionMasterSecret: rms, nonce: nonce, prefix: labelPrefix), issuedAt: now, ageAdd: ageAdd,
                maxEarlyDataSize: early, alpn: negotiatedALPN ?? "", uniqueID: config.random.bytes(16),
                serverName: Self.ticketServerName(serverName), context: issuedTicketContext, protocolVersion: .tls13)
            let sealed = keys.seal(contents.encoded, at: now, random: config.random)
            guard !sealed.isEmpty else { continue }
            let nst = MessageCodec.NewSessionTicket(
                lifetime: config.ticketLifetime, ageAdd: ageAdd, nonce: nonce, ticket: sealed, maxEarlyDataSize: early > 0 ? early : nil)
            send(.application, nst.encoded, transcript: false)
            emit(.ticketIssued)
        }
    }
}

/// What a sealed ticket carries (only the server reads it).
struct TicketContents {
    var suite: CipherSuite
    var psk: [UInt8]
    var issuedAt: UInt64
    var ageAdd: UInt32
    var maxEarlyDataSize: UInt32
    var alpn: String
    var uniqueID: [UInt8]
    /// The client's server_name when the ticket was issued (lowercased, "" without one).
    var serverName: String
    /// The issuing handshake's ``TLSHandshake/issuedTicketContext`` (QUIC: its version).
    var context: UInt32
    /// The TLS version of the session: a TLS 1.3 ticket carries a resumption PSK, a TLS 1.2
    /// ticket the master secret (RFC 5077 §4), and neither opens as the other.
    var protocolVersion: TLSVersion

    /// The format version (1 had no server name, 2 no context, 3 no protocol version; such
    /// tickets no longer open, so their clients make a full handshake).
    static let version: UInt8 = 4

    init(suite: CipherSuite, psk: [UInt8], issuedAt: UInt64, ageAdd: UInt32, maxEarlyDataSize: UInt32, alpn: String, uniqueID: [UInt8],
         serverName: String, context: UInt32, protocolVersion: TLSVersion) {
        self.suite = suite
        self.psk = psk
        self.issuedAt = issuedAt
        self.ageAdd = ageAdd
        self.maxEarlyDataSize = maxEarlyDataSize
        self.alpn = alpn
        self.uniqueID = uniqueID
        self.serverName = serverName
        self.context = context
        self.protocolVersion = protocolVersion
    }

    init?(_ bytes: [UInt8]) {
        var r = ByteReader(bytes)
        do {
            guard try r.readUInt8() == Self.version else { return nil }
            suite = CipherSuite(rawValue: try r.readUInt16())
            psk = try r.readLengthPrefixedBytes(1)
            issuedAt = try r.readUInt64()
            ageAdd = try r.readUInt32()
            maxEarlyDataSize = try r.readUInt32()
            alpn = String(decoding: try r.readLengthPrefixedBytes(1), as: UTF8.self)
            uniqueID = try r.readLengthPrefixedBytes(1)
            serverName = String(decoding: try r.readLengthPrefixedBytes(1), as: UTF8.self)
            context = try r.readUInt32()
            guard let version = TLSVersion(rawValue: try r.readUInt16()) else { return nil }
            protocolVersion = version
            try r.expectEnd()
        } catch {
            return nil
        }
    }

    var encoded: [UInt8] {
        var w = ByteWriter()
        w.writeUInt8(Self.version)
        w.writeUInt16(suite.rawValue)
        w.writeLengthPrefixedBytes(1, psk)
        w.writeUInt64(issuedAt)
        w.writeUInt32(ageAdd)
        w.writeUInt32(maxEarlyDataSize)
        w.writeLengthPrefixedBytes(1, Array(alpn.utf8))
        w.writeLengthPrefixedBytes(1, uniqueID)
        w.writeLengthPrefixedBytes(1, Array(serverName.utf8.prefix(255)))
        w.writeUInt32(context)
        w.writeUInt16(protocolVersion.rawValue)
        return w.bytes
    }
}
