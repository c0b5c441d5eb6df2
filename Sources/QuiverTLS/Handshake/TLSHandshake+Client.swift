import QuiverCore
import X509

extension TLSHandshake {
    // MARK: ClientHello

    func clientSendHello(_ start: ClientStart) throws(TLSError) {
        let config = configuration
        var shares: [KeySharePrivate] = []
        for group in config.keyShareGroups where config.groups.contains(group) && offersTLS13 {
            guard let share = config.testClientKeyShare?(group) ?? KeySharePrivate.generate(group) else {
                throw TLSError(.internalError, "cannot generate a \(group) key share")
            }
            shares.append(share)
        }
        guard !shares.isEmpty || !config.groups.isEmpty else { throw TLSError(.internalError, "no key-exchange groups configured") }
        var ticket = start.ticket
        let now = config.clock.millisecondsSinceEpoch()
        // A TLS 1.2 ticket goes in the session_ticket extension (RFC 5077), not as a PSK.
        let ticket12 = ticket.flatMap { t in
            t.version == .tls12 && offersTLS12 && t.isValid(at: now) && config.tls12CipherSuites.contains(t.suite) ? t : nil
        }
        // DTLS 1.3 resumption is not implemented: no PSK is offered in DTLS.
        if let t = ticket, isDatagram || !(t.version == .tls13 && offersTLS13 && t.isValid(at: now) && config.cipherSuites.contains(where: { $0.hash == t.suite.hash })) {
            ticket = nil
        }
        let earlyData = start.attemptEarlyData && ticket.map { $0.maxEarlyDataSize > 0 && config.cipherSuites.contains($0.suite) } == true
        clientRandom = config.random.bytes(32)
        let context = ClientHelloContext(
            // DTLS has no middlebox compatibility mode (RFC 9147 §5): a session ID only to see a
            // DTLS 1.2 ticket accepted (RFC 5077 §3.4).
            keyShares: shares, sessionID: isQUIC || isDatagram && ticket12 == nil ? [] : config.random.bytes(32), ticket: ticket, ticket12: ticket12,
            offeredEarlyData: earlyData, helloRetry: nil, cookie: nil)
        let hello = clientHelloBytes(context)
        send(.initial, hello)
        if earlyData, let t = ticket {
            earlyDataLimit = t.maxEarlyDataSize
            let early = EarlySecret(hash: t.suite.hash ?? .sha256, psk: t.psk, prefix: labelPrefix)
            let secret = early.clientEarlyTrafficSecret(transcript.hash(t.suite.hash ?? .sha256))
            logSecret("CLIENT_EARLY_TRAFFIC_SECRET", secret)
            emit(.installWriteSecret(.earlyData, TrafficSecret(suite: t.suite, secret: secret, prefix: labelPrefix)))
        }
        state = .clientExpectServerHello(context)
    }

    /// Encodes a ClientHello for `context`, computing the PSK binder over the transcript so far.
    func clientHelloBytes(_ context: ClientHelloContext) -> [UInt8] {
        let config = configuration
        var ext = Extensions()
        if let name = serverName, SocketAddress(host: name, port: 0) == nil {
            ext.append(.serverName) { ExtensionCodec.writeServerName(&$0, name) }
        }
        let groups = offersTLS13 ? config.groups : config.groups.filter { Self.tls12Groups.contains($0) }
        ext.append(.supportedGroups) { ExtensionCodec.writeUInt16List(&$0, groups.map(\.rawValue)) }
        // TLS 1.2 also takes RSA PKCS#1 signatures; a TLS 1.3 peer must not use them in
        // CertificateVerify (RFC 8446 §4.2.3) and is refused if it does.
        let schemes = offersTLS12 ? Self.tls12AcceptedSchemes(config.signatureSchemes) : config.signatureSchemes
        ext.append(.signatureAlgorithms) { ExtensionCodec.writeUInt16List(&$0, schemes.map(\.rawValue)) }
        ext.append(.signatureAlgorithmsCert) { ExtensionCodec.writeUInt16List(&$0, SignatureScheme.supportedInCertificates.map(\.rawValue)) }
        if offersTLS13 { CertificateCompression.offer(config.certificateCompressionAlgorithms, into: &ext) }
        if !config.alpn.isEmpty { ext.append(.applicationLayerProtocolNegotiation) { ExtensionCodec.writeALPN(&$0, config.alpn.map { Array($0.utf8) }) } }
        if offersTLS12 {
            ext.append(.extendedMasterSecret, [])  // RFC 7627
            ext.append(.renegotiationInfo, [0])  // RFC 5746 §3.4: empty in an initial handshake
            ext.append(.ecPointFormats) { $0.writeLengthPrefixedBytes(1, [0]) }  // RFC 8422 §5.1.2: uncompressed
            ext.append(.sessionTicket, context.ticket12?.ticket ?? [])  // RFC 5077 §3.2: empty asks for one
        }
        if offersTLS13 {
            ext.append(.supportedVersions) { w in
                w.writeLengthPrefixed(1) { w in
                    w.writeUInt16(wireVersion13)
                    if offersTLS12 { w.writeUInt16(wireVersion12) }
                }
            }
            ext.append(.keyShare) { w in
                w.writeLengthPrefixed(2) { w in
                    for share in context.keyShares {
                        w.writeUInt16(share.group.rawValue)
                        w.writeLengthPrefixedBytes(2, share.publicBytes)
                    }
                }
            }
            ext.append(.pskKeyExchangeModes) { $0.writeLengthPrefixedBytes(1, [1]) }  // psk_dhe_ke
        }
        if let cookie = context.cookie { ext.append(.cookie) { $0.writeLengthPrefixedBytes(2, cookie) } }
        if isDatagram, let cid = localConnectionID { ext.append(.connectionID) { $0.writeLengthPrefixedBytes(1, cid) } }
        if isDatagram, !config.srtpProtectionProfiles.isEmpty {
            ext.append(.useSRTP) { SRTPProtectionProfile.encode(config.srtpProtectionProfiles, mki: [], into: &$0) }
        }
        if context.offeredEarlyData && context.helloRetry == nil { ext.append(.earlyData, []) }
        if let tp = localTransportParameters { ext.append(.quicTransportParameters, tp) }
        if !isQUIC && RecordSizeLimit.local(config.recordSizeLimit) < RecordSizeLimit.maximum {
            ext.append(.recordSizeLimit) { $0.writeUInt16(UInt16(RecordSizeLimit.local(config.recordSizeLimit))) }
        }

        var binderLength = 0
        if let t = context.ticket, let hash = t.suite.hash {
            binderLength = hash.length
            let age = UInt32(truncatingIfNeeded: config.clock.millisecondsSinceEpoch() &- t.receivedAt) &+ t.ageAdd
            ext.append(.preSharedKey) { w in
                w.writeLengthPrefixed(2) { w in
                    w.writeLengthPrefixedBytes(2, t.ticket)
                    w.writeUInt32(age)
                }
                w.writeLengthPrefixed(2) { $0.writeLengthPrefixedBytes(1, [UInt8](repeating: 0, count: hash.length)) }
            }
        }
        let suites = (offersTLS13 ? config.cipherSuites : []) + (offersTLS12 ? config.tls12CipherSuites : [])
        var encoded = ClientHello(
            random: clientRandom, legacySessionID: context.sessionID, cookie: isDatagram ? context.dtlsCookie : nil, cipherSuites: suites,
            extensions: ext).encoded
        if let t = context.ticket, let hash = t.suite.hash {
            // RFC 8446 §4.2.11.2: the binder covers the ClientHello up to the binders list.
            let truncated = Array(encoded[..<(encoded.count - (2 + 1 + binderLength))])
            let binderKey = EarlySecret(hash: hash, psk: t.psk, prefix: labelPrefix).resumptionBinderKey
            let binder = hash.finishedVerifyData(baseKey: binderKey, transcriptHash: transcript.hash(hash, appending: truncated), prefix: labelPrefix)
            encoded.replaceSubrange((encoded.count - binderLength)..., with: binder)
        }
        return encoded
    }

    // MARK: Dispatch

    func clientHandle(_ message: HandshakeMessage, at level: EncryptionLevel) throws(TLSError) {
        switch (state, message.type) {
        case (.clientExpectServerHello(let context), .serverHello):
            try expect(level, .initial, message)
            try clientReceiveServerHello(message, context)
        case (.clientExpectServerHello(let context), .helloVerifyRequest):
            try expect(level, .initial, message)
            try clientReceiveHelloVerifyRequest(message, context)
        case (.clientExpectEncryptedExtensions(let flight), .encryptedExtensions):
            try expect(level, .handshake, message)
            try clientReceiveEncryptedExtensions(message, flight)
        case (.clientExpectCertificateOrRequest(var flight), .certificateRequest):
            try expect(level, .handshake, message)
            let (requestContext, ext) = try MessageCodec.certificateRequest(message.body)
            guard requestContext.isEmpty else { throw TLSError(.illegalParameter, "non-empty certificate_request_context in the handshake") }
            guard ext.contains(.signatureAlgorithms) else { throw TLSError(.missingExtension, "CertificateRequest without signature_algorithms") }
            peerCertificateCompression = try CertificateCompression.peerAlgorithms(ext)
            transcript.append(message.encoded)
            flight.certificateRequestContext = requestContext
            state = .clientExpectCertificate(flight)
        case (.clientExpectCertificateOrRequest(let flight), .certificate), (.clientExpectCertificate(let flight), .certificate),
             (.clientExpectCertificateOrRequest(let flight), .compressedCertificate), (.clientExpectCertificate(let flight), .compressedCertificate):
            try expect(level, .handshake, message)
            let (requestContext, chain) = try MessageCodec.certificate(try certificateBody(message))
            guard requestContext.isEmpty else { throw TLSError(.illegalParameter, "server Certificate with a request context") }
            guard !chain.isEmpty else { throw TLSError(.decodeError, "the server sent an empty Certificate message") }
            var next = flight
            let leaf = try configuration.certificateVerifier.verify(chain: chain, serverName: serverName, purpose: .serverAuthentication, clock: configuration.clock)
            peerCertificates = (try? CertificateChain(derEncoded: chain).certificates) ?? [leaf]
            next.serverLeaf = leaf
            transcript.append(message.encoded)
            state = .clientExpectCertificateVerify(next)
        case (.clientExpectCertificateVerify(let flight), .certificateVerify):
            try expect(level, .handshake, message)
            guard let leaf = flight.serverLeaf else { throw TLSError(.internalError, "no server certificate") }
            try verifyCertificateVerify(message, leaf: leaf, server: true, hash: flight.keys.hash)
            state = .clientExpectFinished(flight)
        case (.clientExpectFinished(let flight), .finished):
            try expect(level, .handshake, message)
            try clientReceiveFinished(message, flight)
        default:
            throw TLSError(.unexpectedMessage, "unexpected \(message.type) at \(level)")
        }
    }

    func expect(_ level: EncryptionLevel, _ wanted: EncryptionLevel, _ message: HandshakeMessage) throws(TLSError) {
        guard level == wanted else { throw TLSError(.unexpectedMessage, "\(message.type) at \(level), expected \(wanted)") }
        guard reassemblers[level.rawValue].isEmpty || message.type != .finished else {
            // RFC 8446 §5.1: a key change must align with a record boundary.
            throw TLSError(.unexpectedMessage, "data after \(message.type) before a key change")
        }
    }

    // MARK: ServerHello / HelloRetryRequest

    func clientReceiveServerHello(_ message: HandshakeMessage, _ context: ClientHelloContext) throws(TLSError) {
        let hello = try ServerHello(body: message.body)
        let config = configuration
        guard let versionExt = hello.extensions[.supportedVersions] else {
            let tail = Array(hello.random.suffix(8))
            if offersTLS13 && (tail == ServerHello.downgradeTLS12 || tail == ServerHello.downgradeTLS11) {
                throw TLSError(.illegalParameter, "downgrade sentinel in ServerHello random")
            }
            guard offersTLS12, hello.legacyVersion == wireVersion12, !hello.isHelloRetryRequest, context.helloRetry == nil else {
                throw TLSError(.protocolVersion, offersTLS12 ? "the server offers neither TLS 1.3 nor TLS 1.2" : "the server does not support TLS 1.3")
            }
            // Echoing our session ID means resuming the TLS 1.2 session of the ticket offered
            // (RFC 5077 §3.4); without one, it resumes a session that was not offered.
            let resumes = !hello.legacySessionIDEcho.isEmpty && hello.legacySessionIDEcho == context.sessionID
            guard !resumes || context.ticket12 != nil else {
                throw TLSError(.illegalParameter, "TLS 1.2 ServerHello resumes a session that was not offered")
            }
            try client12ReceiveServerHello(message, hello, resuming: resumes ? context.ticket12 : nil)
            return
        }
        guard versionExt == [UInt8(wireVersion13 >> 8), UInt8(truncatingIfNeeded: wireVersion13)], offersTLS13 else {
            throw TLSError(.illegalParameter, "server selected a version that was not offered")
        }
        guard reassemblers[EncryptionLevel.initial.rawValue].isEmpty else {
            // RFC 8446 §5.1: the key change after a TLS 1.3 ServerHello aligns with a record boundary.
            throw TLSError(.unexpectedMessage, "data after ServerHello before a key change")
        }
        negotiatedVersion = .tls13
        guard hello.legacyVersion == wireVersion12 else { throw TLSError(.illegalParameter, "ServerHello legacy_version is not \(wireVersion12)") }
        // DTLS 1.3 servers do not echo the session ID (RFC 9147 §5).
        guard hello.legacySessionIDEcho == (isDatagram ? [] : context.sessionID) else { throw TLSError(.illegalParameter, "legacy_session_id_echo does not match") }
        if isDatagram { transcript.useTLSHeaders() }
        guard config.cipherSuites.contains(hello.cipherSuite), let hash = hello.cipherSuite.hash else {
            throw TLSError(.illegalParameter, "server selected cipher suite \(hello.cipherSuite), which was not offered")
        }
        if hello.isHelloRetryRequest {
            try clientReceiveHelloRetry(message, hello, context, hash: hash)
            return
        }
        for e in hello.extensions.items {
            switch e.type {
            case .supportedVersions, .keyShare: continue
            case .preSharedKey where context.ticket != nil: continue
            case .connectionID: try acceptConnectionID(hello.extensions)
            default: throw TLSError(.unsupportedExtension, "unexpected extension \(e.type.rawValue) in ServerHello")
            }
        }
        if let retry = context.helloRetry, retry.cipherSuite != hello.cipherSuite {
            throw TLSError(.illegalParameter, "ServerHello suite differs from HelloRetryRequest")
        }
        cipherSuite = hello.cipherSuite
        // PSK acceptance.
        var psk: [UInt8]?
        if let selected = try hello.extensions.decode(.preSharedKey, { r throws(DecodeError) in try r.readUInt16() }) {
            guard selected == 0, let t = context.ticket else { throw TLSError(.illegalParameter, "server selected PSK identity \(selected), which was not offered") }
            guard t.suite.hash == hash else { throw TLSError(.illegalParameter, "server selected a suite whose hash does not match the PSK") }
            psk = t.psk
            isResumed = true
        }
        guard let keyShare = try hello.extensions.decode(.keyShare, { r throws(DecodeError) in
            (NamedGroup(rawValue: try r.readUInt16()), try r.readLengthPrefixedBytes(2))
        }) else {
            throw TLSError(.missingExtension, "ServerHello without key_share (psk_ke is not offered)")
        }
        guard let mine = context.keyShares.first(where: { $0.group == keyShare.0 }) else {
            throw TLSError(.illegalParameter, "server key share for \(keyShare.0), which was not offered")
        }
        group = mine.group
        let shared = try mine.sharedSecret(withPeerShare: keyShare.1)
        transcript.append(message.encoded)
        let handshakeSecret = EarlySecret(hash: hash, psk: psk, prefix: labelPrefix).handshakeSecret(sharedSecret: shared)
        let th = transcript.hash(hash)
        let keys = HandshakeKeys(
            suite: hello.cipherSuite, hash: hash, handshakeSecret: handshakeSecret,
            clientSecret: handshakeSecret.clientHandshakeTrafficSecret(th), serverSecret: handshakeSecret.serverHandshakeTrafficSecret(th))
        logSecret("CLIENT_HANDSHAKE_TRAFFIC_SECRET", keys.clientSecret)
        logSecret("SERVER_HANDSHAKE_TRAFFIC_SECRET", keys.serverSecret)
        emit(.installReadSecret(.handshake, TrafficSecret(suite: keys.suite, secret: keys.serverSecret, prefix: labelPrefix)))
        // Over TCP a client sending 0-RTT keeps its early key until EndOfEarlyData; otherwise the
        // handshake key is used at once (so an alert we send from here on is protected).
        if isQUIC || !context.offeredEarlyData {
            emit(.installWriteSecret(.handshake, TrafficSecret(suite: keys.suite, secret: keys.clientSecret, prefix: labelPrefix)))
        }
        state = .clientExpectEncryptedExtensions(ClientFlight(context: context, keys: keys, certificateRequestContext: nil, serverLeaf: nil))
    }

    func clientReceiveHelloRetry(_ message: HandshakeMessage, _ hello: ServerHello, _ context: ClientHelloContext, hash: TLSHash) throws(TLSError) {
        guard context.helloRetry == nil else { throw TLSError(.unexpectedMessage, "second HelloRetryRequest") }
        var selected: NamedGroup?
        var cookie: [UInt8]?
        for e in hello.extensions.items {
            switch e.type {
            case .supportedVersions: continue
            case .keyShare:
                selected = try hello.extensions.decode(.keyShare) { r throws(DecodeError) in NamedGroup(rawValue: try r.readUInt16()) }
            case .cookie:
                cookie = try hello.extensions.decode(.cookie) { r throws(DecodeError) in try r.readLengthPrefixedBytes(2) }
                guard cookie?.isEmpty == false else { throw TLSError(.decodeError, "empty cookie") }
            default: throw TLSError(.unsupportedExtension, "unexpected extension \(e.type.rawValue) in HelloRetryRequest")
            }
        }
        // RFC 8446 §4.1.4: the HRR must change something, and may only ask for an offered group
        // for which no share was sent.
        if let group = selected {
            guard configuration.groups.contains(group), !context.keyShares.contains(where: { $0.group == group }) else {
                throw TLSError(.illegalParameter, "HelloRetryRequest asks for group \(group)")
            }
        } else if cookie == nil {
            throw TLSError(.illegalParameter, "HelloRetryRequest would not change the ClientHello")
        }
        didHelloRetry = true
        transcript.replaceWithMessageHash(hash)
        transcript.append(message.encoded)
        var next = context
        next.helloRetry = hello
        next.cookie = cookie
        next.offeredEarlyData = false
        if let group = selected {
            guard let share = configuration.testClientKeyShare?(group) ?? KeySharePrivate.generate(group) else {
                throw TLSError(.internalError, "cannot generate a \(group) key share")
            }
            next.keyShares = [share]
        }
        if let t = next.ticket, t.suite.hash != hash { next.ticket = nil }
        if context.offeredEarlyData { earlyDataAccepted = false; emit(.earlyData(accepted: false)) }
        send(.initial, clientHelloBytes(next))
        state = .clientExpectServerHello(next)
    }

    // MARK: EncryptedExtensions … Finished

    func clientReceiveEncryptedExtensions(_ message: HandshakeMessage, _ flight: ClientFlight) throws(TLSError) {
        let ext = try MessageCodec.encryptedExtensions(message.body)
        for e in ext.items {
            switch e.type {
            case .serverName:
                guard e.data.isEmpty, serverName != nil else { throw TLSError(.illegalParameter, "unexpected server_name in EncryptedExtensions") }
            case .applicationLayerProtocolNegotiation:
                try acceptServerALPN(ext)
            case .earlyData:
                guard flight.context.offeredEarlyData, isResumed, e.data.isEmpty else {
                    throw TLSError(.illegalParameter, "unexpected early_data in EncryptedExtensions")
                }
            case .quicTransportParameters where isQUIC:
                peerTransportParameters = e.data
            case .useSRTP:
                try acceptSRTP(ext)
            case .recordSizeLimit:
                let offered = RecordSizeLimit.local(configuration.recordSizeLimit)
                guard !isQUIC, offered < RecordSizeLimit.maximum else {
                    throw TLSError(.unsupportedExtension, "record_size_limit in EncryptedExtensions, which was not offered")
                }
                peerRecordSizeLimit = try RecordSizeLimit.peerValue(ext)
                localRecordSizeLimit = offered
            case .supportedGroups:
                continue
            case .keyShare, .preSharedKey, .supportedVersions, .signatureAlgorithms, .cookie, .pskKeyExchangeModes, .signatureAlgorithmsCert:
                throw TLSError(.illegalParameter, "extension \(e.type.rawValue) is not allowed in EncryptedExtensions")
            default:
                throw TLSError(.unsupportedExtension, "unsolicited extension \(e.type.rawValue) in EncryptedExtensions")
            }
        }
        if isQUIC {
            guard peerTransportParameters != nil else { throw TLSError(.missingExtension, "server sent no quic_transport_parameters") }
            guard negotiatedALPN != nil else { throw TLSError(.noApplicationProtocol, "QUIC requires ALPN (RFC 9001 §8.1)") }
        }
        if flight.context.offeredEarlyData {
            earlyDataAccepted = ext.contains(.earlyData)
            emit(.earlyData(accepted: ext.contains(.earlyData)))
            if !isQUIC && !ext.contains(.earlyData) {
                emit(.installWriteSecret(.handshake, TrafficSecret(suite: flight.keys.suite, secret: flight.keys.clientSecret, prefix: labelPrefix)))
            }
        }
        transcript.append(message.encoded)
        state = isResumed ? .clientExpectFinished(flight) : .clientExpectCertificateOrRequest(flight)
    }

    func verifyCertificateVerify(_ message: HandshakeMessage, leaf: Certificate, server: Bool, hash: TLSHash) throws(TLSError) {
        let (scheme, signature) = try MessageCodec.certificateVerify(message.body)
        guard configuration.signatureSchemes.contains(scheme) else {
            throw TLSError(.illegalParameter, "CertificateVerify uses \(scheme), which was not offered")
        }
        let content = Self.signedContent(server: server, transcriptHash: transcript.hash(hash))
        try SignatureVerifier.verify(signature: signature, scheme: scheme, message: content, publicKey: leaf.publicKey)
        transcript.append(message.encoded)
    }

    func clientReceiveFinished(_ message: HandshakeMessage, _ flight: ClientFlight) throws(TLSError) {
        let keys = flight.keys
        guard message.body.count == keys.hash.length else {
            throw TLSError(.decodeError, "server Finished of \(message.body.count) bytes, expected \(keys.hash.length)")
        }
        let expected = keys.hash.finishedVerifyData(baseKey: keys.serverSecret, transcriptHash: transcript.hash(keys.hash), prefix: labelPrefix)
        guard Self.constantTimeEqual(expected, message.body) else { throw TLSError(.decryptError, "server Finished does not verify") }
        transcript.append(message.encoded)
        let master = keys.handshakeSecret.masterSecret
        let th = transcript.hash(keys.hash)
        let clientApp = TrafficSecret(suite: keys.suite, secret: master.clientApplicationTrafficSecret0(th), prefix: labelPrefix)
        let serverApp = TrafficSecret(suite: keys.suite, secret: master.serverApplicationTrafficSecret0(th), prefix: labelPrefix)
        exporterMasterSecret = master.exporterMasterSecret(th)
        logSecret("CLIENT_TRAFFIC_SECRET_0", clientApp.secret)
        logSecret("SERVER_TRAFFIC_SECRET_0", serverApp.secret)
        logSecret("EXPORTER_SECRET", exporterMasterSecret ?? [])
        emit(.installReadSecret(.application, serverApp))

        if !isQUIC && earlyDataAccepted == true {
            send(.earlyData, HandshakeMessage(type: .endOfEarlyData, body: []).encoded)
            emit(.installWriteSecret(.handshake, TrafficSecret(suite: keys.suite, secret: keys.clientSecret, prefix: labelPrefix)))
        }
        if let requestContext = flight.certificateRequestContext {
            if let chain = configuration.certificateChain, let key = configuration.privateKey {
                sendCertificate(context: requestContext, chain: chain.derEncoded)
                let scheme = key.signatureSchemes.first ?? .ecdsaSecp256r1SHA256
                let signature = try key.sign(Self.signedContent(server: false, transcriptHash: transcript.hash(keys.hash)), scheme: scheme)
                send(.handshake, MessageCodec.encodeCertificateVerify(scheme: scheme, signature: signature))
            } else {
                sendCertificate(context: requestContext, chain: [])
            }
        }
        let verify = keys.hash.finishedVerifyData(baseKey: keys.clientSecret, transcriptHash: transcript.hash(keys.hash), prefix: labelPrefix)
        send(.handshake, HandshakeMessage(type: .finished, body: verify).encoded)
        resumptionMasterSecret = master.resumptionMasterSecret(transcript.hash(keys.hash))
        clientApplicationSecret = clientApp
        serverApplicationSecret = serverApp
        emit(.installWriteSecret(.application, clientApp))
        isHandshakeComplete = true
        state = .connected
        releaseHandshakeSecrets()
        emit(.handshakeComplete)
    }

    func clientReceiveTicket(_ body: [UInt8]) throws(TLSError) {
        let nst = try MessageCodec.newSessionTicket(body)
        guard let suite = cipherSuite, let hash = suite.hash, let rms = resumptionMasterSecret else { return }
        if isQUIC, let max = nst.maxEarlyDataSize, max != 0xffff_ffff {
            throw TLSError(.illegalParameter, "QUIC ticket max_early_data_size must be 0xffffffff (RFC 9001 §4.6.1)")
        }
        guard nst.lifetime > 0 else { return }
        let ticket = SessionTicket(
            suite: suite, psk: hash.resumptionPSK(resumptionMasterSecret: rms, nonce: nst.nonce, prefix: labelPrefix), ticket: nst.ticket,
            lifetime: nst.lifetime, ageAdd: nst.ageAdd, receivedAt: configuration.clock.millisecondsSinceEpoch(),
            maxEarlyDataSize: nst.maxEarlyDataSize ?? 0, alpn: negotiatedALPN, serverName: serverName)
        emit(.sessionTicket(ticket))
    }
}
