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
    /// `"tls13 "`, or `"dtls13"` in DTLS 1.3; carried to the later stages.
    let prefix: TLSLabelPrefix

    /// The early secret from a PSK, or from zeros when there is none.
    init(hash: TLSHash, psk: [UInt8]?, prefix: TLSLabelPrefix = .tls13) {
        self.hash = hash
        self.prefix = prefix
        secret = hash.extract(salt: [], ikm: psk ?? [UInt8](repeating: 0, count: hash.length))
    }

    /// `res binder` key (resumption PSKs; RFC 8446 §7.1).
    var resumptionBinderKey: [UInt8] { hash.deriveSecret(secret, label: "res binder", transcriptHash: hash.emptyHash, prefix: prefix) }

    func clientEarlyTrafficSecret(_ transcriptHash: [UInt8]) -> [UInt8] {
        hash.deriveSecret(secret, label: "c e traffic", transcriptHash: transcriptHash, prefix: prefix)
    }

    func earlyExporterMasterSecret(_ transcriptHash: [UInt8]) -> [UInt8] {
        hash.deriveSecret(secret, label: "e exp master", transcriptHash: transcriptHash, prefix: prefix)
    }

    /// Moves to the handshake secret with the (EC)DHE shared secret.
    func handshakeSecret(sharedSecret: [UInt8]) -> HandshakeSecret {
        let salt = hash.deriveSecret(secret, label: "derived", transcriptHash: hash.emptyHash, prefix: prefix)
        return HandshakeSecret(hash: hash, secret: hash.extract(salt: salt, ikm: sharedSecret), prefix: prefix)
    }
}

struct HandshakeSecret: Sendable {
    let hash: TLSHash
    let secret: [UInt8]
    let prefix: TLSLabelPrefix

    func clientHandshakeTrafficSecret(_ transcriptHash: [UInt8]) -> [UInt8] {
        hash.deriveSecret(secret, label: "c hs traffic", transcriptHash: transcriptHash, prefix: prefix)
    }

    func serverHandshakeTrafficSecret(_ transcriptHash: [UInt8]) -> [UInt8] {
        hash.deriveSecret(secret, label: "s hs traffic", transcriptHash: transcriptHash, prefix: prefix)
    }

    var masterSecret: MasterSecret {
        let salt = hash.deriveSecret(secret, label: "derived", transcriptHash: hash.emptyHash, prefix: prefix)
        return MasterSecret(hash: hash, secret: hash.extract(salt: salt, ikm: [UInt8](repeating: 0, count: hash.length)), prefix: prefix)
    }
}

struct MasterSecret: Sendable {
    let hash: TLSHash
    let secret: [UInt8]
    let prefix: TLSLabelPrefix

    func clientApplicationTrafficSecret0(_ transcriptHash: [UInt8]) -> [UInt8] {
        hash.deriveSecret(secret, label: "c ap traffic", transcriptHash: transcriptHash, prefix: prefix)
    }

    func serverApplicationTrafficSecret0(_ transcriptHash: [UInt8]) -> [UInt8] {
        hash.deriveSecret(secret, label: "s ap traffic", transcriptHash: transcriptHash, prefix: prefix)
    }

    func exporterMasterSecret(_ transcriptHash: [UInt8]) -> [UInt8] {
        hash.deriveSecret(secret, label: "exp master", transcriptHash: transcriptHash, prefix: prefix)
    }

    func resumptionMasterSecret(_ transcriptHash: [UInt8]) -> [UInt8] {
        hash.deriveSecret(secret, label: "res master", transcriptHash: transcriptHash, prefix: prefix)
    }
}

extension TLSHash {
    /// `finished_key` and the Finished `verify_data` (RFC 8446 §4.4.4).
    func finishedVerifyData(baseKey: [UInt8], transcriptHash: [UInt8], prefix: TLSLabelPrefix = .tls13) -> [UInt8] {
        let finishedKey = expandLabel(secret: baseKey, label: "finished", context: [], length: length, prefix: prefix)
        return hmac(key: finishedKey, transcriptHash)
    }

    /// The PSK for a ticket (RFC 8446 §4.6.1).
    func resumptionPSK(resumptionMasterSecret: [UInt8], nonce: [UInt8], prefix: TLSLabelPrefix = .tls13) -> [UInt8] {
        expandLabel(secret: resumptionMasterSecret, label: "resumption", context: nonce, length: length, prefix: prefix)
    }

    /// TLS-Exporter (RFC 8446 §7.5).
    func exporter(secret: [UInt8], label: String, context: [UInt8], length outputLength: Int, prefix: TLSLabelPrefix = .tls13) -> [UInt8] {
        let derived = deriveSecret(secret, label: label, transcriptHash: emptyHash, prefix: prefix)
        return expandLabel(secret: derived, label: "exporter", context: hash(context), length: outputLength, prefix: prefix)
    }
}

/// The handshake transcript (RFC 8446 §4.4.1). Messages are kept until the hash is known and
/// hashed on demand (a handshake is a few kilobytes); a HelloRetryRequest replaces the first
/// ClientHello with the synthetic `message_hash` message.
///
/// DTLS: messages come with 12-byte headers. DTLS 1.2 hashes them so (RFC 6347 §4.2.6); DTLS 1.3
/// hashes the TLS 1.3 form without message_seq and fragment fields (RFC 9147 §5.2), which
/// ``useTLSHeaders()`` switches to once the version is known (the ClientHello is hashed again
/// in that form).
struct Transcript: Sendable {
    private(set) var bytes: [UInt8] = []
    /// DTLS 1.3: messages appended with 12-byte headers are hashed with 4-byte ones.
    private var stripsDatagramHeaders = false

    mutating func append(_ encodedMessage: [UInt8]) {
        guard stripsDatagramHeaders, encodedMessage.count >= 12 else {
            bytes.append(contentsOf: encodedMessage)
            return
        }
        bytes.append(contentsOf: encodedMessage[0..<4])
        bytes.append(contentsOf: encodedMessage[12...])
    }

    /// DTLS 1.3: from now on messages are hashed in their TLS form, and those already appended
    /// (with 12-byte headers) are rewritten in it.
    mutating func useTLSHeaders() {
        guard !stripsDatagramHeaders else { return }
        stripsDatagramHeaders = true
        let old = bytes
        bytes = []
        var offset = 0
        while old.count - offset >= 12 {
            let length = Int(old[offset + 1]) << 16 | Int(old[offset + 2]) << 8 | Int(old[offset + 3])
            guard old.count - offset - 12 >= length else { break }
            append(Array(old[offset..<(offset + 12 + length)]))
            offset += 12 + length
        }
    }

    /// A transcript that starts with the given TLS-form messages (a DTLS 1.3 server that
    /// answered the first ClientHello statelessly rebuilds `message_hash ‖ HelloRetryRequest`).
    init(tlsForm messages: [UInt8]) {
        bytes = messages
        stripsDatagramHeaders = true
    }

    init() {}

    func hash(_ h: TLSHash) -> [UInt8] { h.hash(bytes) }

    /// Hash of the transcript followed by `extra` (a message not yet appended).
    func hash(_ h: TLSHash, appending extra: [UInt8]) -> [UInt8] { h.hash(bytes + extra) }

    /// Replaces the transcript so far (ClientHello1) with `message_hash` (RFC 8446 §4.4.1).
    mutating func replaceWithMessageHash(_ h: TLSHash) {
        let digest = h.hash(bytes)
        bytes = [HandshakeType.messageHash.rawValue, 0, 0, UInt8(digest.count)] + digest
    }
}
