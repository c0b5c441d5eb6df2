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

    /// Runs `body` with the per-record nonce (IV XOR sequence number) in stack memory.
    @inline(__always)
    func withNonce<R>(_ sequence: UInt64, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 12) { buffer in
            for i in 0..<12 { buffer[i] = iv[i] }
            for i in 0..<8 { buffer[11 - i] ^= UInt8(truncatingIfNeeded: sequence >> (8 * UInt64(i))) }
            return try body(UnsafeRawBufferPointer(buffer))
        }
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
        do {
            try withNonce(sequence) { nonce in
                switch backing {
                case .aesGCM(let key):
                    let box = try AES.GCM.seal(buffer[payloadOffset...], using: key, nonce: AES.GCM.Nonce(data: nonce),
                                               authenticating: buffer[..<payloadOffset])
                    buffer.replaceSubrange(payloadOffset..., with: box.ciphertext)
                    buffer.append(contentsOf: box.tag)
                case .chacha(let key):
                    let box = try ChaChaPoly.seal(buffer[payloadOffset...], using: key, nonce: ChaChaPoly.Nonce(data: nonce),
                                                  authenticating: buffer[..<payloadOffset])
                    buffer.replaceSubrange(payloadOffset..., with: box.ciphertext)
                    buffer.append(contentsOf: box.tag)
                }
            }
        } catch {
            // Only reachable with a wrong-length nonce, which `init` rules out.
            preconditionFailure("AEAD seal failed: \(error)")
        }
    }

    /// Opens `ciphertext` (with its trailing tag); `nil` when authentication fails.
    public func open(_ ciphertext: [UInt8], sequence: UInt64, additionalData: [UInt8]) -> [UInt8]? {
        open(ciphertext[...], sequence: sequence, additionalData: additionalData[...])
    }

    /// Opens a ciphertext slice (tag last) authenticated with `additionalData`; `nil` when
    /// authentication fails.
    public func open(_ ciphertext: ArraySlice<UInt8>, sequence: UInt64, additionalData: ArraySlice<UInt8>) -> [UInt8]? {
        guard ciphertext.count >= Self.tagLength else { return nil }
        let split = ciphertext.endIndex - Self.tagLength
        let body = ciphertext[..<split]
        let tag = ciphertext[split...]
        return try? withNonce(sequence) { nonce -> [UInt8] in
            switch backing {
            case .aesGCM(let key):
                let box = try AES.GCM.SealedBox(nonce: AES.GCM.Nonce(data: nonce), ciphertext: body, tag: tag)
                return Array(try AES.GCM.open(box, using: key, authenticating: additionalData))
            case .chacha(let key):
                let box = try ChaChaPoly.SealedBox(nonce: ChaChaPoly.Nonce(data: nonce), ciphertext: body, tag: tag)
                return Array(try ChaChaPoly.open(box, using: key, authenticating: additionalData))
            }
        }
    }
}
