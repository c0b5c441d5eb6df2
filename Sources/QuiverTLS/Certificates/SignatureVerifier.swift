import Crypto
import CryptoExtras
import Foundation
public import X509

/// Checks a TLS 1.3 CertificateVerify signature with a certificate's public key.
///
/// Only the schemes in ``SignatureScheme/supported`` are accepted, each with the key type it
/// names: ECDSA P-256 with SHA-256, P-384 with SHA-384 and P-521 with SHA-512 (DER-encoded signatures), Ed25519, and
/// RSA-PSS (MGF1, salt as long as the hash) with SHA-256/384/512 for `rsaEncryption` keys.
public enum SignatureVerifier {
    /// Verifies `signature` over `message`, the full TLS 1.3 signed content (RFC 8446 §4.4.3).
    ///
    /// - Throws: ``TLSError`` with alert `decrypt_error` when the signature is wrong or malformed,
    ///   `illegal_parameter` when `scheme` is not one Quiver supports for CertificateVerify
    ///   (``SignatureScheme/supported``) or does not fit the key (for example
    ///   `ecdsa_secp256r1_sha256` with a P-384 key, or PKCS#1 RSA).
    public static func verify(
        signature: [UInt8], scheme: SignatureScheme, message: [UInt8], publicKey: X509.Certificate.PublicKey
    ) throws(TLSError) {
        try verify(signature: signature, scheme: scheme, message: message, publicKey: publicKey, version: .tls13)
    }

    /// Verifies a signature made in a handshake of `version`: TLS 1.2 also accepts RSA PKCS#1
    /// v1.5 (``SignatureScheme/rsaPKCS1SHA256`` and the SHA-384/512 variants), which TLS 1.3
    /// forbids outside certificates (RFC 8446 §4.2.3).
    static func verify(
        signature: [UInt8], scheme: SignatureScheme, message: [UInt8], publicKey: X509.Certificate.PublicKey, version: TLSVersion
    ) throws(TLSError) {
        let pkcs1: Set<SignatureScheme> = [.rsaPKCS1SHA256, .rsaPKCS1SHA384, .rsaPKCS1SHA512]
        guard SignatureScheme.supported.contains(scheme) || version == .tls12 && pkcs1.contains(scheme) else {
            throw TLSError(.illegalParameter, "signature scheme \(scheme) is not allowed in \(version) handshake signatures")
        }
        let valid: Bool
        switch scheme {
        case .ecdsaSecp256r1SHA256:
            guard let key = P256.Signing.PublicKey(publicKey) else { throw mismatch(scheme, publicKey) }
            guard let parsed = try? P256.Signing.ECDSASignature(derRepresentation: signature) else {
                throw malformed(scheme)
            }
            valid = key.isValidSignature(parsed, for: SHA256.hash(data: message))
        case .ecdsaSecp384r1SHA384:
            guard let key = P384.Signing.PublicKey(publicKey) else { throw mismatch(scheme, publicKey) }
            guard let parsed = try? P384.Signing.ECDSASignature(derRepresentation: signature) else {
                throw malformed(scheme)
            }
            valid = key.isValidSignature(parsed, for: SHA384.hash(data: message))
        case .ecdsaSecp521r1SHA512:
            guard let key = P521.Signing.PublicKey(publicKey) else { throw mismatch(scheme, publicKey) }
            guard let parsed = try? P521.Signing.ECDSASignature(derRepresentation: signature) else {
                throw malformed(scheme)
            }
            valid = key.isValidSignature(parsed, for: SHA512.hash(data: message))
        case .ed25519:
            guard let key = Curve25519.Signing.PublicKey(publicKey) else { throw mismatch(scheme, publicKey) }
            guard signature.count == 64 else { throw malformed(scheme) }
            valid = key.isValidSignature(signature, for: message)
        case .rsaPSSRSAESHA256, .rsaPSSRSAESHA384, .rsaPSSRSAESHA512:
            guard let key = _RSA.Signing.PublicKey(publicKey) else { throw mismatch(scheme, publicKey) }
            // RSASSA-PSS signatures are exactly as long as the modulus (RFC 8017 §8.1.2).
            guard signature.count == (key.keySizeInBits + 7) / 8 else { throw malformed(scheme) }
            let parsed = _RSA.Signing.RSASignature(rawRepresentation: signature)
            switch scheme {
            case .rsaPSSRSAESHA256: valid = key.isValidSignature(parsed, for: SHA256.hash(data: message), padding: .PSS)
            case .rsaPSSRSAESHA384: valid = key.isValidSignature(parsed, for: SHA384.hash(data: message), padding: .PSS)
            default: valid = key.isValidSignature(parsed, for: SHA512.hash(data: message), padding: .PSS)
            }
        case .rsaPKCS1SHA256, .rsaPKCS1SHA384, .rsaPKCS1SHA512:
            guard let key = _RSA.Signing.PublicKey(publicKey) else { throw mismatch(scheme, publicKey) }
            guard signature.count == (key.keySizeInBits + 7) / 8 else { throw malformed(scheme) }
            let parsed = _RSA.Signing.RSASignature(rawRepresentation: signature)
            switch scheme {
            case .rsaPKCS1SHA256: valid = key.isValidSignature(parsed, for: SHA256.hash(data: message), padding: .insecurePKCS1v1_5)
            case .rsaPKCS1SHA384: valid = key.isValidSignature(parsed, for: SHA384.hash(data: message), padding: .insecurePKCS1v1_5)
            default: valid = key.isValidSignature(parsed, for: SHA512.hash(data: message), padding: .insecurePKCS1v1_5)
            }
        default:
            // `supported` lists no other scheme; keep the failure explicit should it grow.
            throw TLSError(.illegalParameter, "signature scheme \(scheme) is not implemented for CertificateVerify")
        }
        guard valid else {
            throw TLSError(.decryptError, "the \(scheme) handshake signature does not verify with the certificate's key")
        }
    }

    private static func mismatch(_ scheme: SignatureScheme, _ key: X509.Certificate.PublicKey) -> TLSError {
        TLSError(.illegalParameter, "signature scheme \(scheme) does not fit the certificate's \(key) key")
    }

    private static func malformed(_ scheme: SignatureScheme) -> TLSError {
        TLSError(.decryptError, "the \(scheme) CertificateVerify signature is malformed")
    }
}
