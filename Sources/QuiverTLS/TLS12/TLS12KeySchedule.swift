import QuiverCore

extension TLSHash {
    /// The TLS 1.2 PRF (RFC 5246 §5): `P_hash(secret, label ‖ seed)` truncated to `length`,
    /// with the suite's hash (SHA-256, or SHA-384 for the `_SHA384` suites, RFC 5289 §3).
    func prf(secret: [UInt8], label: String, seed: [UInt8], length outputLength: Int) -> [UInt8] {
        let labelSeed = Array(label.utf8) + seed
        var output: [UInt8] = []
        output.reserveCapacity(outputLength + length)
        var a = labelSeed  // A(0)
        while output.count < outputLength {
            a = hmac(key: secret, a)
            output.append(contentsOf: hmac(key: secret, a + labelSeed))
        }
        return Array(output.prefix(outputLength))
    }
}

/// A TLS 1.2 master secret, always the extended master secret of RFC 7627 §4 (Quiver refuses
/// handshakes without it): bound to the whole handshake up to the ClientKeyExchange, so it
/// cannot be synchronised between two connections (the triple-handshake attack). What a TLS
/// 1.2 session ticket carries.
struct TLS12MasterSecret: Sendable {
    let hash: TLSHash
    let secret: [UInt8]

    /// `PRF(pre_master_secret, "extended master secret", session_hash)[0..47]`.
    init(hash: TLSHash, preMasterSecret: [UInt8], sessionHash: [UInt8]) {
        self.hash = hash
        secret = hash.prf(secret: preMasterSecret, label: "extended master secret", seed: sessionHash, length: 48)
    }

    /// A master secret restored from a session ticket.
    init(hash: TLSHash, secret: [UInt8]) {
        self.hash = hash
        self.secret = secret
    }

    /// The record keys of both directions (RFC 5246 §6.3): the key block is
    /// `client_write_key ‖ server_write_key ‖ client_write_IV ‖ server_write_IV`, the IVs being
    /// 4 bytes for AES-GCM (RFC 5288 §3) and 12 for ChaCha20-Poly1305 (RFC 7905 §2).
    func recordKeys(suite: CipherSuite, clientRandom: [UInt8], serverRandom: [UInt8]) -> (client: TLS12RecordKey, server: TLS12RecordKey) {
        let keyLength = suite.keyLength
        let ivLength = suite.usesChaCha20 ? 12 : 4
        let block = hash.prf(secret: secret, label: "key expansion", seed: serverRandom + clientRandom, length: 2 * (keyLength + ivLength))
        let clientKey = Array(block[0..<keyLength])
        let serverKey = Array(block[keyLength..<(2 * keyLength)])
        let clientIV = Array(block[(2 * keyLength)..<(2 * keyLength + ivLength)])
        let serverIV = Array(block[(2 * keyLength + ivLength)...])
        return (TLS12RecordKey(suite: suite, key: clientKey, iv: clientIV), TLS12RecordKey(suite: suite, key: serverKey, iv: serverIV))
    }

    /// Finished `verify_data` (RFC 5246 §7.4.9): 12 bytes of
    /// `PRF(master_secret, "client finished" | "server finished", Hash(handshake_messages))`.
    func finishedVerifyData(client: Bool, transcriptHash: [UInt8]) -> [UInt8] {
        hash.prf(secret: secret, label: client ? "client finished" : "server finished", seed: transcriptHash, length: 12)
    }

    /// Keying material exporter (RFC 5705 §4).
    func export(label: String, context: [UInt8]?, clientRandom: [UInt8], serverRandom: [UInt8], length: Int) -> [UInt8] {
        var seed = clientRandom + serverRandom
        if let context {
            seed += [UInt8(context.count >> 8), UInt8(truncatingIfNeeded: context.count)] + context
        }
        return hash.prf(secret: secret, label: label, seed: seed, length: length)
    }
}

/// One direction's TLS 1.2 record protection: an AEAD key and its nonce rule, handed by the
/// handshake to the record layer at each ChangeCipherSpec (``TLSEvent/changeWriteCipherSpec(_:)``,
/// ``TLSEvent/expectChangeCipherSpec(_:)``).
///
/// AES-GCM (RFC 5288 §3): the nonce is the 4-byte implicit IV followed by an 8-byte explicit
/// part carried in each record; Quiver sends the sequence number there and reads whatever the
/// peer sent. ChaCha20-Poly1305 (RFC 7905 §2): the nonce is the 12-byte IV XOR the sequence
/// number, as in TLS 1.3, and records carry none. The additional data is
/// `seq_num ‖ type ‖ version ‖ plaintext length` (RFC 5246 §6.2.3.3). DTLS 1.2 (RFC 6347
/// §4.1.2.1) uses the same construction with `epoch ‖ sequence_number` as the 64-bit `seq_num`
/// and its own version, 0xFEFD.
public struct TLS12RecordKey: Sendable, CustomStringConvertible {
    /// The negotiated suite.
    public let suite: CipherSuite
    let aead: AEADKey
    /// Bytes of explicit nonce before each record's ciphertext: 8 (AES-GCM) or 0 (ChaCha20).
    let explicitNonceLength: Int

    init(suite: CipherSuite, key: [UInt8], iv: [UInt8]) {
        self.suite = suite
        if suite.usesChaCha20 {
            aead = AEADKey(suite: suite, key: key, iv: iv)
            explicitNonceLength = 0
        } else {
            // The implicit salt, then zeros that the explicit part is XORed into.
            aead = AEADKey(suite: suite, key: key, iv: iv + [UInt8](repeating: 0, count: 8))
            explicitNonceLength = 8
        }
    }

    /// The most a record grows when protected: explicit nonce and tag.
    var overhead: Int { explicitNonceLength + AEADKey.tagLength }

    /// Runs `body` with the 13 bytes of additional data in stack memory.
    @inline(__always)
    static func withAdditionalData<R>(sequence: UInt64, type: UInt8, version: UInt16, length: Int,
                                      _ body: (UnsafeRawBufferPointer) -> R) -> R {
        withUnsafeTemporaryAllocation(byteCount: 13, alignment: 1) { ad in
            ad.storeBytes(of: sequence.bigEndian, toByteOffset: 0, as: UInt64.self)
            ad[8] = type
            ad.storeBytes(of: version.bigEndian, toByteOffset: 9, as: UInt16.self)
            ad.storeBytes(of: UInt16(length).bigEndian, toByteOffset: 11, as: UInt16.self)
            return body(UnsafeRawBufferPointer(ad))
        }
    }

    /// Appends a protected TLS record of `type` carrying `content` (at most 2^14 bytes) to `out`.
    func sealRecord(type: UInt8, _ content: ArraySlice<UInt8>, sequence: UInt64, into out: inout [UInt8]) {
        let length = overhead + content.count
        out.append(contentsOf: [type, 3, 3, UInt8(length >> 8), UInt8(truncatingIfNeeded: length)])
        appendFragment(type: type, version: 0x0303, content, sequence: sequence, into: &out)
    }

    /// Appends the protected fragment of a record (explicit nonce, ciphertext, tag: `overhead`
    /// more bytes than `content`) to `out`; the caller writes the header. `sequence` is the
    /// 64-bit sequence number (DTLS: epoch and sequence number).
    func appendFragment(type: UInt8, version: UInt16, _ content: ArraySlice<UInt8>, sequence: UInt64, into out: inout [UInt8]) {
        Self.withAdditionalData(sequence: sequence, type: type, version: version, length: content.count) { ad in
            appendFragment(content, sequence: sequence, additionalData: ad, into: &out)
        }
    }

    /// Appends the protected fragment of `content` authenticating `additionalData` (a DTLS 1.2
    /// record with a Connection ID has its own, ``connectionIDAdditionalData(sequence:version:connectionID:length:)``).
    func appendFragment(_ content: ArraySlice<UInt8>, sequence: UInt64, additionalData: UnsafeRawBufferPointer, into out: inout [UInt8]) {
        if explicitNonceLength > 0 {
            withUnsafeBytes(of: sequence.bigEndian) { out.append(contentsOf: $0) }
        }
        // Sealed where it lies: the content, then room for the tag.
        let start = out.count
        out.append(contentsOf: content)
        out.append(contentsOf: repeatElement(0, count: AEADKey.tagLength))
        out.withUnsafeMutableBytes { raw in
            aead.seal(UnsafeMutableRawBufferPointer(rebasing: raw[start...]), length: content.count, additionalData: additionalData, sequence: sequence)
        }
    }

    /// RFC 9146 §5.3: the additional data of a DTLS 1.2 record carrying a Connection ID.
    static func connectionIDAdditionalData(sequence: UInt64, version: UInt16, connectionID: [UInt8], length: Int) -> [UInt8] {
        var ad = [UInt8](repeating: 0xFF, count: 8)
        ad += [25, UInt8(connectionID.count), 25, UInt8(version >> 8), UInt8(truncatingIfNeeded: version)]
        withUnsafeBytes(of: sequence.bigEndian) { ad.append(contentsOf: $0) }
        return ad + connectionID + [UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length)]
    }

    /// Opens a protected fragment (see ``appendFragment(type:version:_:sequence:into:)``).
    func openFragment(type: UInt8, version: UInt16, _ body: ArraySlice<UInt8>, sequence: UInt64) -> [UInt8]? {
        var buffer = Array(body)
        guard let plaintext = openInPlace(type: type, version: version, &buffer, 0..<buffer.count, sequence: sequence) else { return nil }
        return Array(buffer[plaintext])
    }

    /// Opens a protected fragment whose additional data depends on the plaintext's length
    /// (a DTLS 1.2 record with a Connection ID).
    func openFragment(_ body: ArraySlice<UInt8>, sequence: UInt64, additionalData: (_ plaintextLength: Int) -> [UInt8]) -> [UInt8]? {
        guard body.count >= overhead else { return nil }
        var buffer = Array(body)
        let ad = additionalData(body.count - overhead)
        let plaintext = ad.withUnsafeBytes { openInPlace(&buffer, 0..<buffer.count, sequence: sequence, additionalData: $0) }
        return plaintext.map { Array(buffer[$0]) }
    }

    /// Opens the protected fragment at `range` of `buffer` where it lies; returns the range of
    /// the plaintext, or `nil` when it does not authenticate (the range's bytes are then
    /// unspecified).
    func openInPlace(type: UInt8, version: UInt16, _ buffer: inout [UInt8], _ range: Range<Int>, sequence: UInt64) -> Range<Int>? {
        guard range.count >= overhead else { return nil }
        return Self.withAdditionalData(sequence: sequence, type: type, version: version, length: range.count - overhead) { ad in
            openInPlace(&buffer, range, sequence: sequence, additionalData: ad)
        }
    }

    private func openInPlace(_ buffer: inout [UInt8], _ range: Range<Int>, sequence: UInt64, additionalData: UnsafeRawBufferPointer) -> Range<Int>? {
        guard range.count >= overhead else { return nil }
        var nonce = sequence
        if explicitNonceLength > 0 {
            nonce = buffer[range.lowerBound..<(range.lowerBound + 8)].reduce(0) { $0 << 8 | UInt64($1) }
        }
        let ciphertext = (range.lowerBound + explicitNonceLength)..<range.upperBound
        let plaintext = ciphertext.lowerBound..<(ciphertext.upperBound - AEADKey.tagLength)
        let authentic = buffer.withUnsafeMutableBytes { raw in
            aead.open(UnsafeRawBufferPointer(rebasing: raw[ciphertext]), into: UnsafeMutableRawBufferPointer(rebasing: raw[plaintext]),
                      sequence: nonce, additionalData: additionalData)
        }
        return authentic ? plaintext : nil
    }

    /// Never prints the key.
    public var description: String { "TLS12RecordKey(\(suite))" }
}
