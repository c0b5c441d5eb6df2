import CQuiverCrypto
import Crypto
import QuiverCore

/// The hash function of a cipher suite, with the HMAC and HKDF operations TLS 1.3 builds on
/// (RFC 5869, RFC 8446 §7.1). One place for every keyed-hash computation in Quiver.
public enum TLSHash: Sendable, Hashable {
    case sha256, sha384

    /// The hash output length in bytes.
    public var length: Int { self == .sha256 ? 32 : 48 }

    /// Hashes `data`.
    public func hash(_ data: [UInt8]) -> [UInt8] {
        switch self {
        case .sha256: return Array(SHA256.hash(data: data))
        case .sha384: return Array(SHA384.hash(data: data))
        }
    }

    /// HMAC(key, data), in one BoringSSL call (swift-crypto's `HMAC` builds a key object per
    /// computation: a seventh of a DTLS server's handshake CPU went there).
    public func hmac(key: [UInt8], _ data: [UInt8]) -> [UInt8] {
        let length = self.length
        return [UInt8](unsafeUninitializedCapacity: length) { out, count in
            let done = key.withUnsafeBufferPointer { k in
                data.withUnsafeBufferPointer { d in
                    quiver_hmac(self == .sha384 ? 1 : 0, k.baseAddress, k.count, d.baseAddress, d.count, out.baseAddress!)
                }
            }
            precondition(done == 1, "HMAC failed")  // BoringSSL fails only on allocation failure
            count = length
        }
    }

    /// HKDF-Extract(salt, IKM) (RFC 5869 §2.2); an empty salt means `length` zero bytes.
    public func extract(salt: [UInt8], ikm: [UInt8]) -> [UInt8] {
        hmac(key: salt.isEmpty ? [UInt8](repeating: 0, count: length) : salt, ikm)
    }

    /// HKDF-Expand(PRK, info, L) (RFC 5869 §2.3).
    public func expand(prk: [UInt8], info: [UInt8], length outputLength: Int) -> [UInt8] {
        precondition(outputLength <= 255 * length, "HKDF output too long")
        var output: [UInt8] = []
        output.reserveCapacity(outputLength)
        var previous: [UInt8] = []
        var counter: UInt8 = 1
        while output.count < outputLength {
            previous = hmac(key: prk, previous + info + [counter])
            output.append(contentsOf: previous)
            counter &+= 1
        }
        return Array(output.prefix(outputLength))
    }

    /// HKDF-Expand-Label(Secret, Label, Context, Length) (RFC 8446 §7.1): the label is prefixed
    /// with `"tls13 "` (`"dtls13"` in DTLS 1.3, RFC 9147 §5.9). QUIC uses the same function with
    /// its own labels (`"quic key"` …).
    public func expandLabel(secret: [UInt8], label: String, context: [UInt8], length outputLength: Int,
                            prefix: TLSLabelPrefix = .tls13) -> [UInt8] {
        var info = ByteWriter(capacity: 10 + label.utf8.count + context.count)
        info.writeUInt16(UInt16(outputLength))
        info.writeLengthPrefixedBytes(1, Array(prefix.rawValue.utf8) + Array(label.utf8))
        info.writeLengthPrefixedBytes(1, context)
        return expand(prk: secret, info: info.bytes, length: outputLength)
    }

    /// Derive-Secret(Secret, Label, Messages) with the transcript hash already computed.
    public func deriveSecret(_ secret: [UInt8], label: String, transcriptHash: [UInt8], prefix: TLSLabelPrefix = .tls13) -> [UInt8] {
        expandLabel(secret: secret, label: label, context: transcriptHash, length: length, prefix: prefix)
    }

    /// The hash of the empty string (used by `Derive-Secret(., "derived", "")`).
    public var emptyHash: [UInt8] { hash([]) }
}

/// The prefix of every HKDF-Expand-Label label: TLS 1.3's, or DTLS 1.3's (RFC 9147 §5.9), so
/// that keys of the two protocols never coincide.
public enum TLSLabelPrefix: String, Sendable, Hashable {
    case tls13 = "tls13 "
    case dtls13 = "dtls13"
}

extension CipherSuite {
    /// The suite's hash, or `nil` for suites Quiver does not implement.
    /// For TLS 1.2 suites, the hash of the PRF (RFC 5246 §5, RFC 5289 §3).
    public var hash: TLSHash? {
        switch self {
        case .aes128GCMSHA256, .chacha20Poly1305SHA256, .ecdheECDSAWithAES128GCMSHA256, .ecdheRSAWithAES128GCMSHA256,
             .ecdheECDSAWithChaCha20Poly1305SHA256, .ecdheRSAWithChaCha20Poly1305SHA256:
            return .sha256
        case .aes256GCMSHA384, .ecdheECDSAWithAES256GCMSHA384, .ecdheRSAWithAES256GCMSHA384:
            return .sha384
        default: return nil
        }
    }

    /// The AEAD key length in bytes.
    public var keyLength: Int {
        switch self {
        case .aes128GCMSHA256, .ecdheECDSAWithAES128GCMSHA256, .ecdheRSAWithAES128GCMSHA256: return 16
        default: return 32
        }
    }

    /// Whether the suite's AEAD is ChaCha20-Poly1305 (otherwise AES-GCM).
    var usesChaCha20: Bool {
        self == .chacha20Poly1305SHA256 || self == .ecdheECDSAWithChaCha20Poly1305SHA256 || self == .ecdheRSAWithChaCha20Poly1305SHA256
    }

    /// The version the suite belongs to, or `nil` for suites Quiver does not implement.
    public var version: TLSVersion? {
        if CipherSuite.supported.contains(self) { return .tls13 }
        if CipherSuite.supportedTLS12.contains(self) { return .tls12 }
        return nil
    }

    /// TLS 1.2: whether the suite authenticates the server with an ECDSA (or EdDSA, RFC 8422
    /// §2) key, otherwise with an RSA key.
    var isECDSA: Bool {
        self == .ecdheECDSAWithAES128GCMSHA256 || self == .ecdheECDSAWithAES256GCMSHA384 || self == .ecdheECDSAWithChaCha20Poly1305SHA256
    }
}
