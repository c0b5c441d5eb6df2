import CQuiverCrypto
import Crypto
import QuiverCore

/// A traffic secret together with the suite it belongs to: what the handshake hands to the
/// record layer (TCP) or to QUIC packet protection.
public struct TrafficSecret: Sendable, Hashable, CustomStringConvertible {
    /// The negotiated cipher suite.
    public let suite: CipherSuite
    /// The secret (`client_handshake_traffic_secret`, …).
    public let secret: [UInt8]
    /// The label prefix of the keys derived from it: `"dtls13"` for a DTLS 1.3 secret.
    public let prefix: TLSLabelPrefix

    /// Creates a traffic secret.
    public init(suite: CipherSuite, secret: [UInt8], prefix: TLSLabelPrefix = .tls13) {
        self.suite = suite
        self.secret = secret
        self.prefix = prefix
    }

    /// The record-protection key and IV (RFC 8446 §7.3).
    public func recordKeys() -> (key: [UInt8], iv: [UInt8]) {
        let hash = suite.hash ?? .sha256
        return (
            hash.expandLabel(secret: secret, label: "key", context: [], length: suite.keyLength, prefix: prefix),
            hash.expandLabel(secret: secret, label: "iv", context: [], length: 12, prefix: prefix)
        )
    }

    /// DTLS 1.3: the key that masks record sequence numbers (RFC 9147 §4.2.3), `"sn"`.
    public func sequenceNumberKey() -> [UInt8] {
        (suite.hash ?? .sha256).expandLabel(secret: secret, label: "sn", context: [], length: suite.keyLength, prefix: prefix)
    }

    /// The next generation after a KeyUpdate (RFC 8446 §7.2): `"traffic upd"`.
    public func updated() -> TrafficSecret {
        let hash = suite.hash ?? .sha256
        return TrafficSecret(suite: suite, secret: hash.expandLabel(secret: secret, label: "traffic upd", context: [], length: hash.length, prefix: prefix),
                             prefix: prefix)
    }

    /// Never prints the secret.
    public var description: String { "TrafficSecret(\(suite))" }
}

/// An AEAD key and IV with TLS 1.3's per-record nonce (RFC 8446 §5.3): the 64-bit sequence
/// number, left-padded, XORed into the IV. Used by the TCP record layer and by QUIC packet
/// protection (where the sequence number is the packet number).
///
/// The key schedule is expanded once, at creation, into a BoringSSL context (see
/// `CQuiverCrypto`): sealing or opening a packet costs the cipher work only, not the key set-up
/// that swift-crypto's one-shot API repeats per call.
public struct AEADKey: Sendable {
    let context: AEADContext
    /// The IV as two big-endian words: bytes 0–3 and bytes 4–11 (the part the sequence
    /// number is XORed into).
    let ivHigh: UInt32
    let ivLow: UInt64

    /// The authentication tag length (16 for all TLS 1.3 suites).
    public static let tagLength = 16

    /// Creates a key for `suite` from raw key and IV (12 bytes).
    public init(suite: CipherSuite, key: [UInt8], iv: [UInt8]) {
        precondition(iv.count == 12, "TLS 1.3 AEAD IVs are 12 bytes")
        context = AEADContext(suite: suite, key: key)
        ivHigh = iv[0..<4].reduce(0) { $0 << 8 | UInt32($1) }
        ivLow = iv[4..<12].reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// Derives the record key and IV from a traffic secret.
    public init(_ secret: TrafficSecret) {
        let (key, iv) = secret.recordKeys()
        self.init(suite: secret.suite, key: key, iv: iv)
    }

    /// Runs `body` with the per-record nonce (IV XOR sequence number) in stack memory.
    @inline(__always)
    func withNonce<R>(_ sequence: UInt64, _ body: (UnsafePointer<UInt8>) throws -> R) rethrows -> R {
        let low = ivLow ^ sequence
        var nonce = (ivHigh.bigEndian, UInt32(truncatingIfNeeded: low >> 32).bigEndian, UInt32(truncatingIfNeeded: low).bigEndian)
        return try withUnsafeBytes(of: &nonce) { try body($0.baseAddress!.assumingMemoryBound(to: UInt8.self)) }
    }

    /// Seals `plaintext`; returns ciphertext followed by the tag.
    public func seal(_ plaintext: [UInt8], sequence: UInt64, additionalData: [UInt8]) -> [UInt8] {
        var buffer = additionalData
        buffer.append(contentsOf: plaintext)
        sealInPlace(&buffer, payloadOffset: additionalData.count, sequence: sequence)
        return Array(buffer[additionalData.count...])
    }

    /// Seals in place: `buffer[..<payloadOffset]` is the additional data (a record or packet
    /// header) and stays; the plaintext after it is replaced by ciphertext and the tag appended.
    public func sealInPlace(_ buffer: inout [UInt8], payloadOffset: Int, sequence: UInt64) {
        let length = buffer.count - payloadOffset
        buffer.append(contentsOf: repeatElement(0, count: Self.tagLength))
        buffer.withUnsafeMutableBytes { bytes in
            seal(bytes, payloadOffset: payloadOffset, length: length, sequence: sequence)
        }
    }

    /// Seals in place in raw memory: `buffer[..<payloadOffset]` is the additional data, the
    /// `length` bytes after it the plaintext, replaced by ciphertext; the tag is written after
    /// them, so `buffer` must hold `payloadOffset + length + 16` bytes.
    public func seal(_ buffer: UnsafeMutableRawBufferPointer, payloadOffset: Int, length: Int, sequence: UInt64) {
        precondition(payloadOffset >= 0 && length >= 0 && payloadOffset + length + Self.tagLength <= buffer.count, "AEAD seal outside the buffer")
        seal(UnsafeMutableRawBufferPointer(rebasing: buffer[payloadOffset...]), length: length,
             additionalData: UnsafeRawBufferPointer(rebasing: buffer[..<payloadOffset]), sequence: sequence)
    }

    /// Seals the first `length` bytes of `buffer` in place, authenticating `additionalData`
    /// (anywhere else); the tag is written after them, so `buffer` holds `length + 16` bytes.
    public func seal(_ buffer: UnsafeMutableRawBufferPointer, length: Int, additionalData: UnsafeRawBufferPointer, sequence: UInt64) {
        precondition(length >= 0 && length + Self.tagLength <= buffer.count, "AEAD seal outside the buffer")
        let base = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let sealed = withNonce(sequence) { nonce in
            quiver_aead_seal(context.pointer, nonce, base, length, additionalData.baseAddress?.assumingMemoryBound(to: UInt8.self), additionalData.count)
        }
        // BoringSSL fails a seal only on wrong lengths or more than 2^36 bytes, which callers rule out.
        precondition(sealed == 1, "AEAD seal failed")
    }

    /// Opens `ciphertext` (with its trailing tag); `nil` when authentication fails.
    public func open(_ ciphertext: [UInt8], sequence: UInt64, additionalData: [UInt8]) -> [UInt8]? {
        open(ciphertext[...], sequence: sequence, additionalData: additionalData[...])
    }

    /// Opens a ciphertext slice (tag last) authenticated with `additionalData`; `nil` when
    /// authentication fails.
    public func open(_ ciphertext: ArraySlice<UInt8>, sequence: UInt64, additionalData: ArraySlice<UInt8>) -> [UInt8]? {
        guard ciphertext.count >= Self.tagLength else { return nil }
        var authentic = false
        let plaintext = [UInt8](unsafeUninitializedCapacity: ciphertext.count - Self.tagLength) { output, count in
            authentic = ciphertext.withUnsafeBytes { input in
                additionalData.withUnsafeBytes { ad in
                    open(input, into: UnsafeMutableRawBufferPointer(output), sequence: sequence, additionalData: ad)
                }
            }
            count = authentic ? output.count : 0
        }
        return authentic ? plaintext : nil
    }

    /// Opens `input` (ciphertext, then the tag) into `output` (which may start at the same
    /// address and needs `input.count - 16` bytes); `false` when authentication fails.
    public func open(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, sequence: UInt64,
                     additionalData: UnsafeRawBufferPointer) -> Bool {
        guard input.count >= Self.tagLength, output.count >= input.count - Self.tagLength else { return false }
        let empty: UInt8 = 0
        return withUnsafePointer(to: empty) { placeholder in
            withNonce(sequence) { nonce in
                quiver_aead_open(
                    context.pointer, nonce, input.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? placeholder, input.count,
                    output.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? UnsafeMutablePointer(mutating: placeholder),
                    additionalData.baseAddress?.assumingMemoryBound(to: UInt8.self), additionalData.count) == 1
            }
        }
    }
}

/// Owns one BoringSSL AEAD context. The context is read-only after creation (BoringSSL's seal
/// and open take it `const`), so sharing it between threads is safe.
final class AEADContext: @unchecked Sendable {
    let pointer: OpaquePointer

    init(suite: CipherSuite, key: [UInt8]) {
        let algorithm = suite.usesChaCha20
            ? QUIVER_AEAD_CHACHA20_POLY1305 : key.count == 32 ? QUIVER_AEAD_AES_256_GCM : QUIVER_AEAD_AES_128_GCM
        guard let pointer = quiver_aead_new(algorithm, key, key.count) else {
            preconditionFailure("AEAD key of \(key.count) bytes does not fit \(suite)")
        }
        self.pointer = pointer
    }

    deinit { quiver_aead_free(pointer) }
}
