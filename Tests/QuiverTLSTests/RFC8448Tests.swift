import QuiverCore
import Testing

@testable import QuiverTLS

/// RFC 8448 traces replayed through Quiver's key schedule, message codecs, record protection
/// and server handshake.
@Suite("RFC 8448")
struct RFC8448Tests {
    /// Replays a trace's handshake messages through `Transcript` and the key-schedule stages,
    /// checking every secret the RFC prints.
    @Test("§3 simple 1-RTT: every secret, key, IV and Finished")
    func simpleKeySchedule() {
        typealias V = RFC8448.Simple
        let h = TLSHash.sha256
        var t = Transcript()
        t.append(hex(V.clientHello))
        t.append(hex(V.serverHello))
        let early = EarlySecret(hash: h, psk: nil)
        #expect(early.secret == hex(V.earlySecret))
        // X25519 from the RFC's private keys.
        let client = KeySharePrivate.x25519(privateKey: hex(V.clientEphemeralPrivateKey))!
        #expect(client.publicBytes == hex(V.clientEphemeralPublicKey))
        let shared = try! client.sharedSecret(withPeerShare: hex(V.serverEphemeralPublicKey))
        #expect(shared == hex(V.sharedSecret))
        let hs = early.handshakeSecret(sharedSecret: shared)
        #expect(hs.secret == hex(V.handshakeSecret))
        let cHS = hs.clientHandshakeTrafficSecret(t.hash(h))
        let sHS = hs.serverHandshakeTrafficSecret(t.hash(h))
        #expect(cHS == hex(V.clientHandshakeTrafficSecret))
        #expect(sHS == hex(V.serverHandshakeTrafficSecret))
        let sKeys = TrafficSecret(suite: .aes128GCMSHA256, secret: sHS).recordKeys()
        #expect(sKeys.key == hex(V.serverHandshakeWriteKey))
        #expect(sKeys.iv == hex(V.serverHandshakeWriteIV))
        let cKeys = TrafficSecret(suite: .aes128GCMSHA256, secret: cHS).recordKeys()
        #expect(cKeys.key == hex(V.clientHandshakeWriteKey))
        #expect(cKeys.iv == hex(V.clientHandshakeWriteIV))
        t.append(hex(V.encryptedExtensions))
        t.append(hex(V.certificate))
        t.append(hex(V.certificateVerify))
        #expect(h.finishedVerifyData(baseKey: sHS, transcriptHash: t.hash(h)) == hex(V.serverFinishedVerifyData))
        t.append(hex(V.serverFinished))
        let master = hs.masterSecret
        #expect(master.secret == hex(V.masterSecret))
        #expect(master.clientApplicationTrafficSecret0(t.hash(h)) == hex(V.clientApplicationTrafficSecret0))
        #expect(master.serverApplicationTrafficSecret0(t.hash(h)) == hex(V.serverApplicationTrafficSecret0))
        #expect(master.exporterMasterSecret(t.hash(h)) == hex(V.exporterMasterSecret))
        let sApp = TrafficSecret(suite: .aes128GCMSHA256, secret: hex(V.serverApplicationTrafficSecret0)).recordKeys()
        #expect(sApp.key == hex(V.serverApplicationWriteKey) && sApp.iv == hex(V.serverApplicationWriteIV))
        let cApp = TrafficSecret(suite: .aes128GCMSHA256, secret: hex(V.clientApplicationTrafficSecret0)).recordKeys()
        #expect(cApp.key == hex(V.clientApplicationWriteKey) && cApp.iv == hex(V.clientApplicationWriteIV))
        #expect(h.finishedVerifyData(baseKey: cHS, transcriptHash: t.hash(h)) == hex(V.clientFinishedVerifyData))
        t.append(hex(V.clientFinished))
        let rms = master.resumptionMasterSecret(t.hash(h))
        #expect(rms == hex(V.resumptionMasterSecret))
        // The ticket nonce is 0x0000 in the trace's NewSessionTicket.
        #expect(h.resumptionPSK(resumptionMasterSecret: rms, nonce: [0, 0]) == hex(V.resumptionPSK))
    }

    @Test("§3 record protection reproduces every encrypted record")
    func simpleRecords() {
        typealias V = RFC8448.Simple
        func seal(_ secret: String, _ payload: String, type: UInt8, seq: UInt64) -> [UInt8] {
            let key = AEADKey(TrafficSecret(suite: .aes128GCMSHA256, secret: hex(secret)))
            let inner = hex(payload) + [type]
            let length = inner.count + 16
            let header: [UInt8] = [23, 3, 3, UInt8(length >> 8), UInt8(length & 0xff)]
            return header + key.seal(inner, sequence: seq, additionalData: header)
        }
        #expect(seal(V.serverHandshakeTrafficSecret, V.serverEncryptedHandshakeRecordPayload, type: 22, seq: 0) == hex(V.serverEncryptedHandshakeRecord))
        #expect(seal(V.clientHandshakeTrafficSecret, V.clientFinishedRecordPayload, type: 22, seq: 0) == hex(V.clientFinishedRecord))
        #expect(seal(V.serverApplicationTrafficSecret0, V.newSessionTicketRecordPayload, type: 22, seq: 0) == hex(V.newSessionTicketRecord))
        #expect(seal(V.clientApplicationTrafficSecret0, V.clientApplicationDataRecordPayload, type: 23, seq: 0) == hex(V.clientApplicationDataRecord))
        #expect(seal(V.serverApplicationTrafficSecret0, V.serverApplicationDataRecordPayload, type: 23, seq: 1) == hex(V.serverApplicationDataRecord))
        #expect(seal(V.clientApplicationTrafficSecret0, V.clientAlertRecordPayload, type: 21, seq: 1) == hex(V.clientAlertRecord))
        #expect(seal(V.serverApplicationTrafficSecret0, V.serverAlertRecordPayload, type: 21, seq: 2) == hex(V.serverAlertRecord))
        // And opening works in reverse, with tampering detected.
        let key = AEADKey(TrafficSecret(suite: .aes128GCMSHA256, secret: hex(V.serverHandshakeTrafficSecret)))
        let record = hex(V.serverEncryptedHandshakeRecord)
        #expect(key.open(Array(record[5...]), sequence: 0, additionalData: Array(record[..<5])) == hex(V.serverEncryptedHandshakeRecordPayload) + [22])
        var tampered = record
        tampered[40] ^= 1
        #expect(key.open(Array(tampered[5...]), sequence: 0, additionalData: Array(tampered[..<5])) == nil)
    }

    @Test("§3 messages parse and re-encode byte for byte")
    func simpleMessageCodecs() throws {
        typealias V = RFC8448.Simple
        let ch = hex(V.clientHello)
        let hello = try ClientHello(body: Array(ch[4...]))
        #expect(hello.encoded == ch)
        #expect(hello.random == hex(V.clientRandom))
        let sh = hex(V.serverHello)
        #expect(try ServerHello(body: Array(sh[4...])).encoded == sh)
        let ee = hex(V.encryptedExtensions)
        var w = ByteWriter()
        try MessageCodec.encryptedExtensions(Array(ee[4...])).write(to: &w)
        #expect(HandshakeMessage(type: .encryptedExtensions, body: w.bytes).encoded == ee)
        let cert = hex(V.certificate)
        let (context, chain) = try MessageCodec.certificate(Array(cert[4...]))
        #expect(MessageCodec.encodeCertificate(context: context, chain: chain) == cert)
        let cv = hex(V.certificateVerify)
        let (scheme, signature) = try MessageCodec.certificateVerify(Array(cv[4...]))
        #expect(scheme == .rsaPSSRSAESHA256)
        #expect(MessageCodec.encodeCertificateVerify(scheme: scheme, signature: signature) == cv)
        let nst = hex(V.newSessionTicket)
        let ticket = try MessageCodec.newSessionTicket(Array(nst[4...]))
        #expect(ticket.encoded == nst)
        #expect(ticket.nonce == [0, 0])
    }

    @Test("§3 our server, given the trace's random and key share, sends the trace's ServerHello record and secrets")
    func simpleServerReplay() throws {
        typealias V = RFC8448.Simple
        let (chain, key) = try SelfSignedCertificate.generate(names: ["server"])
        var config = try TLSConfiguration.server(chain: chain, key: key)
        let serverRandom = hex(V.serverRandom)
        config.random = RandomSource { buffer in
            // The first randomness the server draws is its ServerHello random.
            for i in buffer.indices { buffer[i] = i < serverRandom.count ? serverRandom[i] : 0 }
        }
        let serverKey = hex(V.serverEphemeralPrivateKey)
        config.testServerKeyShare = { _ in KeySharePrivate.x25519(privateKey: serverKey) }
        let log = LineCollector()
        config.keyLog = { log.append($0) }
        let stream = TLSStream(server: config)
        try stream.receive(hex(V.clientHelloRecord))
        let out = stream.takeOutgoing()
        let expectedRecord = hex(V.serverHelloRecord)
        #expect(Array(out.prefix(expectedRecord.count)) == expectedRecord)
        let random = hex(V.clientRandom).map { String($0, radix: 16).leftPad(2) }.joined()
        #expect(log.lines.contains("CLIENT_HANDSHAKE_TRAFFIC_SECRET \(random) \(V.clientHandshakeTrafficSecret)"))
        #expect(log.lines.contains("SERVER_HANDSHAKE_TRAFFIC_SECRET \(random) \(V.serverHandshakeTrafficSecret)"))
    }

    @Test("§4 resumed 0-RTT: binder, early secrets and keys")
    func resumedKeySchedule() {
        typealias V = RFC8448.Resumed
        let h = TLSHash.sha256
        let psk = hex(RFC8448.Simple.resumptionPSK)
        let early = EarlySecret(hash: h, psk: psk)
        #expect(early.secret == hex(V.earlySecret))
        #expect(early.resumptionBinderKey == hex(V.binderKey))
        var t = Transcript()
        let binder = h.finishedVerifyData(baseKey: early.resumptionBinderKey, transcriptHash: t.hash(h, appending: hex(V.clientHelloPrefix)))
        #expect(binder == hex(V.binder))
        let ch = hex(V.clientHelloRecordPayload)
        #expect(Array(ch.suffix(32)) == binder)
        t.append(ch)
        #expect(early.clientEarlyTrafficSecret(t.hash(h)) == hex(V.clientEarlyTrafficSecret))
        #expect(early.earlyExporterMasterSecret(t.hash(h)) == hex(V.earlyExporterMasterSecret))
        let earlyKeys = TrafficSecret(suite: .aes128GCMSHA256, secret: hex(V.clientEarlyTrafficSecret)).recordKeys()
        #expect(earlyKeys.key == hex(V.clientEarlyDataWriteKey) && earlyKeys.iv == hex(V.clientEarlyDataWriteIV))
        t.append(hex(V.serverHello))
        let hs = early.handshakeSecret(sharedSecret: hex(V.sharedSecret))
        #expect(hs.secret == hex(V.handshakeSecret))
        #expect(hs.clientHandshakeTrafficSecret(t.hash(h)) == hex(V.clientHandshakeTrafficSecret))
        #expect(hs.serverHandshakeTrafficSecret(t.hash(h)) == hex(V.serverHandshakeTrafficSecret))
        t.append(hex(V.encryptedExtensions))
        #expect(h.finishedVerifyData(baseKey: hex(V.serverHandshakeTrafficSecret), transcriptHash: t.hash(h)) == hex(V.serverFinishedVerifyData))
        t.append(hex(V.serverFinished))
        let master = hs.masterSecret
        #expect(master.secret == hex(V.masterSecret))
        #expect(master.clientApplicationTrafficSecret0(t.hash(h)) == hex(V.clientApplicationTrafficSecret0))
        #expect(master.serverApplicationTrafficSecret0(t.hash(h)) == hex(V.serverApplicationTrafficSecret0))
        #expect(master.exporterMasterSecret(t.hash(h)) == hex(V.exporterMasterSecret))
        t.append(hex(V.endOfEarlyData))
        #expect(h.finishedVerifyData(baseKey: hex(V.clientHandshakeTrafficSecret), transcriptHash: t.hash(h)) == hex(V.clientFinishedVerifyData))
        t.append(hex(V.clientFinished))
        #expect(master.resumptionMasterSecret(t.hash(h)) == hex(V.resumptionMasterSecret))
        // The trace's ClientHello carries the PSK, 0-RTT and binder extensions our parser reads.
        let hello = try? ClientHello(body: Array(ch[4...]))
        #expect(hello?.encoded == ch)
        #expect(hello?.extensions.contains(.earlyData) == true)
    }

    @Test("§5 HelloRetryRequest: message_hash transcript and secrets")
    func helloRetryKeySchedule() throws {
        typealias V = RFC8448.HelloRetry
        let h = TLSHash.sha256
        var t = Transcript()
        t.append(hex(V.clientHello))
        t.replaceWithMessageHash(h)
        let hrrBytes = hex(V.helloRetryRequest)
        let hrr = try ServerHello(body: Array(hrrBytes[4...]))
        #expect(hrr.isHelloRetryRequest)
        #expect(hrr.encoded == hrrBytes)
        t.append(hrrBytes)
        t.append(hex(V.secondClientHello))
        t.append(hex(V.serverHello))
        let early = EarlySecret(hash: h, psk: nil)
        let hs = early.handshakeSecret(sharedSecret: hex(V.sharedSecret))
        #expect(hs.secret == hex(V.handshakeSecret))
        #expect(hs.clientHandshakeTrafficSecret(t.hash(h)) == hex(V.clientHandshakeTrafficSecret))
        #expect(hs.serverHandshakeTrafficSecret(t.hash(h)) == hex(V.serverHandshakeTrafficSecret))
        t.append(hex(V.encryptedExtensions))
        t.append(hex(V.certificate))
        t.append(hex(V.certificateVerify))
        #expect(h.finishedVerifyData(baseKey: hex(V.serverHandshakeTrafficSecret), transcriptHash: t.hash(h)) == hex(V.serverFinishedVerifyData))
        t.append(hex(V.serverFinished))
        let master = hs.masterSecret
        #expect(master.clientApplicationTrafficSecret0(t.hash(h)) == hex(V.clientApplicationTrafficSecret0))
        #expect(master.serverApplicationTrafficSecret0(t.hash(h)) == hex(V.serverApplicationTrafficSecret0))
        t.append(hex(V.clientFinished))
        #expect(master.resumptionMasterSecret(t.hash(h)) == hex(V.resumptionMasterSecret))
        let second = hex(V.secondClientHello)
        #expect(try ClientHello(body: Array(second[4...])).encoded == second)
    }
}
