/// The TLS 1.3 key schedule (RFC 8446 §7.1) as three typed stages, so a secret can only be
/// derived from the stage that owns it:
///
/// ```
///          0
///          |
///   PSK -> HKDF-Extract = Early Secret  ──> binder key, client_early_traffic_secret
///          |
///    Derive-Secret(., "derived", "")
///          |
/// (EC)DHE -> HKDF-Extract = Handshake Secret ──> {client,server}_handshake_traffic_secret
///          |
///    Derive-Secret(., "derived", "")
///          |
///   0 -> HKDF-Extract = Master Secret ──> {client,server}_application_traffic_secret_0,
///                                          exporter_master_secret, resumption_master_secret
/// ```
struct EarlySecret: Sendable {
    let hash: TLSHash
    let secret: [UInt8]

    /// The early secret from a PSK, or from zeros when there is none.
    init(hash: TLSHash, psk: [UInt8]?) {
        self.hash = hash
        secret = hash.extract(salt: [], ikm: psk ?? [UInt8](repeating: 0, count: hash.length))
    }

    /// `res binder` key (resumption PSKs; RFC 8446 §7.1).
    var resumptionBinderKey: [UInt8] { hash.deriveSecret(secret, label: "res binder", transcriptHash: hash.emptyHash) }

    func clientEarlyTrafficSecret(_ transcriptHash: [UInt8]) -> [UInt8] {
        hash.deriveSecret(secret, label: "c e traffic", transcriptHash: transcriptHash)
    }

    func earlyExporterMasterSecret(_ transcriptHash: [UInt8]) -> [UInt8] {
        hash.deriveSecret(secret, label: "e exp master", transcriptHash: transcriptHash)
    }

    /// Moves to the handshake secret with the (EC)DHE shared secret.
    func handshakeSecret(sharedSecret: [UInt8]) -> HandshakeSecret {
        let salt = hash.deriveSecret(secret, label: "derived", transcriptHash: hash.emptyHash)
        return HandshakeSecret(hash: hash, secret: hash.extract(salt: salt, ikm: sharedSecret))
    }
}

struct HandshakeSecret: Sendable {
    let hash: TLSHash
    let secret: [UInt8]

    func clientHandshakeTrafficSecret(_ transcriptHash: [UInt8]) -> [UInt8] {
        hash.deriveSecret(secret, label: "c hs traffic", transcriptHash: transcriptHash)
    }

    func serverHandshakeTrafficSecret(_ transcriptHash: [UInt8]) -> [UInt8] {
        hash.deriveSecret(secret, label: "s hs traffic", transcriptHash: transcriptHash)
    }

    var masterSecret: MasterSecret {
        let salt = hash.deriveSecret(secret, label: "derived", transcriptHash: hash.emptyHash)
        return MasterSecret(hash: hash, secret: hash.extract(salt: salt, ikm: [UInt8](repeating: 0, count: hash.length)))
    }
}

struct MasterSecret: Sendable {
    let hash: TLSHash
    let secret: [UInt8]

    func clientApplicationTrafficSecret0(_ transcriptHash: [UInt8]) -> [UInt8] {
        hash.deriveSecret(secret, label: "c ap traffic", transcriptHash: transcriptHash)
    }

    func serverApplicationTrafficSecret0(_ transcriptHash: [UInt8]) -> [UInt8] {
        hash.deriveSecret(secret, label: "s ap traffic", transcriptHash: transcriptHash)
    }

    func exporterMasterSecret(_ transcriptHash: [UInt8]) -> [UInt8] {
        hash.deriveSecret(secret, label: "exp master", transcriptHash: transcriptHash)
    }

    func resumptionMasterSecret(_ transcriptHash: [UInt8]) -> [UInt8] {
        hash.deriveSecret(secret, label: "res master", transcriptHash: transcriptHash)
    }
}

extension TLSHash {
    /// `finished_key` and the Finished `verify_data` (RFC 8446 §4.4.4).
    func finishedVerifyData(baseKey: [UInt8], transcriptHash: [UInt8]) -> [UInt8] {
        let finishedKey = expandLabel(secret: baseKey, label: "finished", context: [], length: length)
        return hmac(key: finishedKey, transcriptHash)
    }

    /// The PSK for a ticket (RFC 8446 §4.6.1).
    func resumptionPSK(resumptionMasterSecret: [UInt8], nonce: [UInt8]) -> [UInt8] {
        expandLabel(secret: resumptionMasterSecret, label: "resumption", context: nonce, length: length)
    }

    /// TLS-Exporter (RFC 8446 §7.5).
    func exporter(secret: [UInt8], label: String, context: [UInt8], length outputLength: Int) -> [UInt8] {
        let derived = deriveSecret(secret, label: label, transcriptHash: emptyHash)
        return expandLabel(secret: derived, label: "exporter", context: hash(context), length: outputLength)
    }
}

/// The handshake transcript (RFC 8446 §4.4.1). Messages are kept until the hash is known and
/// hashed on demand (a handshake is a few kilobytes); a HelloRetryRequest replaces the first
/// ClientHello with the synthetic `message_hash` message.
struct Transcript: Sendable {
    private(set) var bytes: [UInt8] = []

    mutating func append(_ encodedMessage: [UInt8]) { bytes.append(contentsOf: encodedMessage) }

    func hash(_ h: TLSHash) -> [UInt8] { h.hash(bytes) }

    /// Hash of the transcript followed by `extra` (a message not yet appended).
    func hash(_ h: TLSHash, appending extra: [UInt8]) -> [UInt8] { h.hash(bytes + extra) }

    /// Replaces the transcript so far (ClientHello1) with `message_hash` (RFC 8446 §4.4.1).
    mutating func replaceWithMessageHash(_ h: TLSHash) {
        let digest = h.hash(bytes)
        bytes = [HandshakeType.messageHash.rawValue, 0, 0, UInt8(digest.count)] + digest
    }
}
