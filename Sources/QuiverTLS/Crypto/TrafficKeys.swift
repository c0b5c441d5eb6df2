import Crypto
import QuiverCore

/// A traffic secret together with the suite it belongs to: what the handshake hands to the
/// record layer (TCP) or to QUIC packet protection.
public struct TrafficSecret: Sendable, Hashable, CustomStringConvertible {
    /// The negotiated cipher suite.
    public let suite: CipherSuite
    /// The secret (`client_handshake_traffic_secret`, …).
    public let secret: [UInt8]

    /// Creates a traffic secret.
    public init(suite: CipherSuite, secret: [UInt8]) {
        self.suite = suite
        self.secret = secret
    }

    /// The record-protection key and IV (RFC 8446 §7.3).
    public func recordKeys() -> (key: [UInt8], iv: [UInt8]) {
        let hash = suite.hash ?? .sha256
        return (
            hash.expandLabel(secret: secret, label: "key", context: [], length: suite.keyLength),
            hash.expandLabel(secret: secret, label: "iv", context: [], length: 12)
        )
    }

    /// The next generation after a KeyUpdate (RFC 8446 §7.2): `"traffic upd"`.
    public func updated() -> TrafficSecret {
        let hash = suite.hash ?? .sha256
        return TrafficSecret(suite: suite, secret: hash.expandLabel(secret: secret, label: "traffic upd", context: [], length: hash.length))
    }

    /// Never prints the secret.
    public var description: String { "TrafficSecret(\(suite))" }
}

/// An AEAD key and IV with TLS 1.3's per-record nonce (RFC 8446 §5.3): the 64-bit sequence
/// number, left-padded, XORed into the IV. Used by the TCP record layer and by QUIC packet
/// protection (where the sequence number is the packet number).
public struct AEADKey: Sendable {
    enum Backing: Sendable {
        case aesGCM(SymmetricKey)
        case chacha(SymmetricKey)
    }

    let backing: Backing
    let iv: [UInt8]

    /// The authentication tag length (16 for all TLS 1.3 suites).
    public static let tagLength = 16

    /// Creates a key for `suite` from raw key and IV bytes.
    public init(suite: CipherSuite, key: [UInt8], iv: [UInt8]) {
        let k = SymmetricKey(data: key)
        backing = suite == .chacha20Poly1305SHA256 ? .chacha(k) : .aesGCM(k)
        self.iv = iv
    }

    /// Derives the record key and IV from a traffic secret.
    public init(_ secret: TrafficSecret) {
        let (key, iv) = secret.recordKeys()
        self.init(suite: secret.suite, key: key, iv: iv)
    }

    @inline(__always)
    func nonce(_ sequence: UInt64) -> [UInt8] {
        var n = iv
        for i in 0..<8 { n[n.count - 1 - i] ^= UInt8(truncatingIfNeeded: sequence >> (8 * UInt64(i))) }
        return n
    }

    /// Seals `plaintext`; returns ciphertext followed by the tag.
    public func seal(_ plaintext: [UInt8], sequence: UInt64, additionalData: [UInt8]) -> [UInt8] {
        let n = nonce(sequence)
        do {
            switch backing {
            case .aesGCM(let key):
                let box = try AES.GCM.seal(plaintext, using: key, nonce: AES.GCM.Nonce(data: n), authenticating: additionalData)
                return Array(box.ciphertext) + Array(box.tag)
            case .chacha(let key):
                let box = try ChaChaPoly.seal(plaintext, using: key, nonce: ChaChaPoly.Nonce(data: n), authenticating: additionalData)
                return Array(box.ciphertext) + Array(box.tag)
            }
        } catch {
            // Only reachable with a wrong-length nonce, which `init` rules out.
            preconditionFailure("AEAD seal failed: \(error)")
        }
    }

    /// Opens `ciphertext` (with its trailing tag); `nil` when authentication fails.
    public func open(_ ciphertext: [UInt8], sequence: UInt64, additionalData: [UInt8]) -> [UInt8]? {
        guard ciphertext.count >= Self.tagLength else { return nil }
        let n = nonce(sequence)
        let body = ciphertext[..<(ciphertext.count - Self.tagLength)]
        let tag = ciphertext[(ciphertext.count - Self.tagLength)...]
        do {
            switch backing {
            case .aesGCM(let key):
                let box = try AES.GCM.SealedBox(nonce: AES.GCM.Nonce(data: n), ciphertext: body, tag: tag)
                return Array(try AES.GCM.open(box, using: key, authenticating: additionalData))
            case .chacha(let key):
                let box = try ChaChaPoly.SealedBox(nonce: ChaChaPoly.Nonce(data: n), ciphertext: body, tag: tag)
                return Array(try ChaChaPoly.open(box, using: key, authenticating: additionalData))
            }
        } catch {
            return nil
        }
    }
}
