import Crypto
import QuiverCore

/// The private half of a key share offered by a client (RFC 8446 §4.2.8), for one group.
///
/// X25519MLKEM768 follows draft-ietf-tls-ecdhe-mlkem: the client share is the ML-KEM-768
/// encapsulation key (1184 bytes) followed by the X25519 public key (32 bytes); the server
/// share is the ML-KEM ciphertext (1088 bytes) followed by the server's X25519 public key; the
/// shared secret is the ML-KEM secret followed by the X25519 secret.
struct KeySharePrivate: Sendable {
    enum Backing: Sendable {
        case x25519(Curve25519.KeyAgreement.PrivateKey)
        case p256(P256.KeyAgreement.PrivateKey)
        case p384(P384.KeyAgreement.PrivateKey)
        case p521(P521.KeyAgreement.PrivateKey)
        case x25519MLKEM768(MLKEM768.PrivateKey, Curve25519.KeyAgreement.PrivateKey)
    }

    let group: NamedGroup
    let backing: Backing

    /// Generates a fresh key share; `nil` when Quiver does not implement `group`.
    static func generate(_ group: NamedGroup) -> KeySharePrivate? {
        switch group {
        case .x25519: return KeySharePrivate(group: group, backing: .x25519(.init()))
        case .secp256r1: return KeySharePrivate(group: group, backing: .p256(.init()))
        case .secp384r1: return KeySharePrivate(group: group, backing: .p384(.init()))
        case .secp521r1: return KeySharePrivate(group: group, backing: .p521(.init()))
        case .x25519MLKEM768:
            guard let kem = try? MLKEM768.PrivateKey() else { return nil }
            return KeySharePrivate(group: group, backing: .x25519MLKEM768(kem, .init()))
        default: return nil
        }
    }

    /// A share from fixed X25519 private-key bytes (test vectors).
    static func x25519(privateKey raw: [UInt8]) -> KeySharePrivate? {
        guard let key = try? Curve25519.KeyAgreement.PrivateKey(rawRepresentation: raw) else { return nil }
        return KeySharePrivate(group: .x25519, backing: .x25519(key))
    }

    /// The share to put in the ClientHello.
    var publicBytes: [UInt8] {
        switch backing {
        case .x25519(let k): return Array(k.publicKey.rawRepresentation)
        case .p256(let k): return Array(k.publicKey.x963Representation)
        case .p384(let k): return Array(k.publicKey.x963Representation)
        case .p521(let k): return Array(k.publicKey.x963Representation)
        case .x25519MLKEM768(let kem, let x): return Array(kem.publicKey.rawRepresentation) + Array(x.publicKey.rawRepresentation)
        }
    }

    /// Completes the exchange with the peer's share (for ML-KEM: the server's ciphertext).
    func sharedSecret(withPeerShare share: [UInt8]) throws(TLSError) -> [UInt8] {
        do {
            switch backing {
            case .x25519(let k):
                return try Self.x25519(k, share)
            case .p256(let k):
                let peer = try P256.KeyAgreement.PublicKey(x963Representation: share)
                return try k.sharedSecretFromKeyAgreement(with: peer).withUnsafeBytes { Array($0) }
            case .p384(let k):
                let peer = try P384.KeyAgreement.PublicKey(x963Representation: share)
                return try k.sharedSecretFromKeyAgreement(with: peer).withUnsafeBytes { Array($0) }
            case .p521(let k):
                // Uncompressed points only (RFC 8446 §4.2.8.2); the x-coordinate is the secret,
                // 66 bytes with leading zeros kept.
                let peer = try P521.KeyAgreement.PublicKey(x963Representation: share)
                return try k.sharedSecretFromKeyAgreement(with: peer).withUnsafeBytes { Array($0) }
            case .x25519MLKEM768(let kem, let x):
                guard share.count == 1088 + 32 else { throw TLSError(.illegalParameter, "X25519MLKEM768 server share has \(share.count) bytes, expected 1120") }
                let kemSecret = try kem.decapsulate(Array(share[0..<1088])).withUnsafeBytes { Array($0) }
                return kemSecret + (try Self.x25519(x, Array(share[1088...])))
            }
        } catch let error as TLSError {
            throw error
        } catch {
            throw TLSError(.illegalParameter, "invalid \(group) key share from the peer")
        }
    }

    /// Server side: given the client's share, produce the server share and the shared secret.
    /// `ephemeral` replaces the freshly generated Diffie-Hellman key (test vectors inject it).
    static func respond(
        to group: NamedGroup, clientShare: [UInt8], ephemeral: KeySharePrivate? = nil
    ) throws(TLSError) -> (serverShare: [UInt8], sharedSecret: [UInt8]) {
        guard group == .x25519MLKEM768 else {
            guard let key = ephemeral ?? generate(group) else { throw TLSError(.illegalParameter, "group \(group) is not supported") }
            return (key.publicBytes, try key.sharedSecret(withPeerShare: clientShare))
        }
        guard clientShare.count == 1184 + 32 else {
            throw TLSError(.illegalParameter, "X25519MLKEM768 client share has \(clientShare.count) bytes, expected 1216")
        }
        do {
            let encapsulationKey = try MLKEM768.PublicKey(rawRepresentation: Array(clientShare[0..<1184]))
            let result = try encapsulationKey.encapsulate()
            let x = Curve25519.KeyAgreement.PrivateKey()
            let secret = result.sharedSecret.withUnsafeBytes { Array($0) } + (try x25519(x, Array(clientShare[1184...])))
            return (Array(result.encapsulated) + Array(x.publicKey.rawRepresentation), secret)
        } catch let error as TLSError {
            throw error
        } catch {
            throw TLSError(.illegalParameter, "invalid X25519MLKEM768 key share from the client")
        }
    }

    private static func x25519(_ k: Curve25519.KeyAgreement.PrivateKey, _ share: [UInt8]) throws -> [UInt8] {
        guard share.count == 32 else { throw TLSError(.illegalParameter, "X25519 share has \(share.count) bytes, expected 32") }
        let peer = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: share)
        let secret = try k.sharedSecretFromKeyAgreement(with: peer).withUnsafeBytes { Array($0) }
        // RFC 8446 §7.4.2: an all-zero X25519 output must be rejected.
        guard secret.contains(where: { $0 != 0 }) else { throw TLSError(.illegalParameter, "X25519 produced the all-zero secret") }
        return secret
    }
}
