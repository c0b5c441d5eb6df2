import Crypto
import CryptoExtras
import Foundation
public import QuiverCore
import SwiftASN1
public import X509

/// A private key usable for TLS 1.3 CertificateVerify: ECDSA P-256, P-384 or P-521, RSA (2048 bits
/// or more; signing with RSA-PSS) or Ed25519.
///
/// ```swift
/// let key = try PrivateKey(pemFile: "/etc/quiver/key.pem")
/// let signature = try key.sign(signedContent, scheme: key.signatureSchemes[0])
/// ```
public struct PrivateKey: Sendable {
    /// The key's type.
    public enum Algorithm: Sendable, Hashable, CustomStringConvertible {
        /// ECDSA on NIST P-256 (secp256r1).
        case ecdsaP256
        /// ECDSA on NIST P-384 (secp384r1).
        case ecdsaP384
        /// ECDSA on NIST P-521 (secp521r1).
        case ecdsaP521
        /// RSA with a modulus of `bits` bits (at least 2048).
        case rsa(bits: Int)
        /// Ed25519 (RFC 8032).
        case ed25519

        /// A short name: `ECDSA P-256`, `ECDSA P-384`, `ECDSA P-521`, `RSA-2048`, `Ed25519`.
        public var description: String {
            switch self {
            case .ecdsaP256: return "ECDSA P-256"
            case .ecdsaP384: return "ECDSA P-384"
            case .ecdsaP521: return "ECDSA P-521"
            case .rsa(let bits): return "RSA-\(bits)"
            case .ed25519: return "Ed25519"
            }
        }
    }

    enum Backing: Sendable {
        case p256(P256.Signing.PrivateKey)
        case p384(P384.Signing.PrivateKey)
        case p521(P521.Signing.PrivateKey)
        case rsa(_RSA.Signing.PrivateKey)
        case ed25519(Curve25519.Signing.PrivateKey)
    }

    let backing: Backing

    init(backing: Backing) { self.backing = backing }

    /// The smallest RSA modulus accepted, in bits.
    static let minimumRSABits = 2048
    /// The largest RSA modulus accepted, in bits (signing cost grows with the cube of the size).
    static let maximumRSABits = 8192

    /// The key's type.
    public var algorithm: Algorithm {
        switch backing {
        case .p256: return .ecdsaP256
        case .p384: return .ecdsaP384
        case .p521: return .ecdsaP521
        case .rsa(let key): return .rsa(bits: key.keySizeInBits)
        case .ed25519: return .ed25519
        }
    }

    /// Parses a PEM private key: PKCS#8 (`PRIVATE KEY`), SEC1 (`EC PRIVATE KEY`) or PKCS#1
    /// (`RSA PRIVATE KEY`). Encrypted keys are not supported.
    ///
    /// - Throws: ``QuiverError`` with code `.certificate` when the text is not a supported,
    ///   unencrypted key, when the curve is not P-256, P-384 or P-521, or when an RSA key is shorter
    ///   than 2048 bits.
    public init(pem: String) throws(QuiverError) {
        let documents: [PEMDocument]
        do {
            documents = try PEMDocument.parseMultiple(pemString: pem)
        } catch {
            throw QuiverError(.certificate, "the private key PEM text is malformed: \(error)")
        }
        let keyTypes = ["PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"]
        let keys = documents.filter { keyTypes.contains($0.discriminator) }
        guard keys.count == 1, let document = keys.first else {
            if documents.contains(where: { $0.discriminator == "ENCRYPTED PRIVATE KEY" }) {
                throw QuiverError(.certificate, "encrypted private keys are not supported; decrypt it first (openssl pkey -in KEY -out KEY.pem)")
            }
            throw QuiverError(
                .certificate,
                keys.isEmpty
                    ? "the PEM text holds no PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY block"
                    : "the PEM text holds \(keys.count) private keys; expected exactly one")
        }
        switch document.discriminator {
        case "RSA PRIVATE KEY":
            self.init(backing: try Self.rsaKey(pkcs1: document.derBytes))
        case "EC PRIVATE KEY":
            self.init(backing: try Self.ecKey(sec1: document.derBytes, curve: nil))
        default:
            self.init(backing: try Self.pkcs8Key(document.derBytes))
        }
    }

    /// Reads and parses a PEM private key file (see ``init(pem:)``).
    ///
    /// - Throws: ``QuiverError`` with code `.configuration` when the file cannot be read, or
    ///   `.certificate` when it does not hold a supported key.
    public init(pemFile path: String) throws(QuiverError) {
        let text = try CertificateFiles.readText(path, what: "private key file")
        do {
            try self.init(pem: text)
        } catch {
            throw QuiverError(error.code, "\(path): \(error.reason)")
        }
    }

    /// Generates a new random key.
    ///
    /// - Throws: ``QuiverError`` with code `.certificate` for an RSA size outside 2048...8192 bits
    ///   or not a multiple of 128, or if generation fails.
    public static func generate(_ algorithm: Algorithm) throws(QuiverError) -> PrivateKey {
        switch algorithm {
        case .ecdsaP256: return PrivateKey(backing: .p256(P256.Signing.PrivateKey()))
        case .ecdsaP384: return PrivateKey(backing: .p384(P384.Signing.PrivateKey()))
        case .ecdsaP521: return PrivateKey(backing: .p521(P521.Signing.PrivateKey()))
        case .ed25519: return PrivateKey(backing: .ed25519(Curve25519.Signing.PrivateKey()))
        case .rsa(let bits):
            guard bits >= minimumRSABits, bits <= maximumRSABits, bits % 128 == 0 else {
                throw QuiverError(
                    .certificate,
                    "cannot generate a \(bits)-bit RSA key: the size must be a multiple of 128 between \(minimumRSABits) and \(maximumRSABits)")
            }
            do {
                return PrivateKey(backing: .rsa(try _RSA.Signing.PrivateKey(keySize: .init(bitCount: bits))))
            } catch {
                throw QuiverError(.certificate, "RSA-\(bits) key generation failed: \(error)")
            }
        }
    }

    /// The key as PKCS#8 PEM text (`-----BEGIN PRIVATE KEY-----`).
    public var pemRepresentation: String {
        PEMDocument(type: "PRIVATE KEY", derBytes: pkcs8DER).pemString + "\n"
    }

    /// The key's PKCS#8 `PrivateKeyInfo` DER encoding.
    var pkcs8DER: [UInt8] {
        switch backing {
        case .p256(let key): return Array(key.derRepresentation)
        case .p384(let key): return Array(key.derRepresentation)
        case .p521(let key): return Array(key.derRepresentation)
        case .rsa(let key): return Array(key.pkcs8DERRepresentation)
        case .ed25519(let key):
            // PrivateKeyInfo { 0, { id-Ed25519 }, OCTET STRING { OCTET STRING (32 bytes) } } (RFC 8410 §7).
            return [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]
                + Array(key.rawRepresentation)
        }
    }

    /// Schemes this key can produce for TLS 1.3 CertificateVerify, in preference order.
    ///
    /// P-256 → `ecdsa_secp256r1_sha256`; P-384 → `ecdsa_secp384r1_sha384`; P-521 →
    /// `ecdsa_secp521r1_sha512`; RSA →
    /// `rsa_pss_rsae_sha256`, `rsa_pss_rsae_sha384`, `rsa_pss_rsae_sha512`; Ed25519 → `ed25519`.
    public var signatureSchemes: [SignatureScheme] {
        switch backing {
        case .p256: return [.ecdsaSecp256r1SHA256]
        case .p384: return [.ecdsaSecp384r1SHA384]
        case .p521: return [.ecdsaSecp521r1SHA512]
        case .rsa: return [.rsaPSSRSAESHA256, .rsaPSSRSAESHA384, .rsaPSSRSAESHA512]
        case .ed25519: return [.ed25519]
        }
    }

    /// Schemes this key can produce in TLS 1.2 (ServerKeyExchange, CertificateVerify), in
    /// preference order: ``signatureSchemes`` and, for RSA, PKCS#1 v1.5 with SHA-256/384/512,
    /// which TLS 1.2 still allows (RFC 5246 §7.4.1.4.1) and older clients need.
    public var tls12SignatureSchemes: [SignatureScheme] {
        guard case .rsa = backing else { return signatureSchemes }
        return signatureSchemes + [.rsaPKCS1SHA256, .rsaPKCS1SHA384, .rsaPKCS1SHA512]
    }

    /// Signs `message`: the full TLS 1.3 signed content (RFC 8446 §4.4.3), or TLS 1.2's signed
    /// parameters or handshake messages; the hash named by `scheme` is applied here.
    ///
    /// ECDSA signatures are DER-encoded, RSA signatures use RSASSA-PSS with MGF1 and a salt as
    /// long as the hash (or PKCS#1 v1.5, TLS 1.2 only), Ed25519 signatures are the raw 64 bytes.
    ///
    /// - Throws: ``TLSError`` with alert `internal_error` when `scheme` is not one of
    ///   ``signatureSchemes`` or the signing operation fails.
    public func sign(_ message: [UInt8], scheme: SignatureScheme) throws(TLSError) -> [UInt8] {
        guard tls12SignatureSchemes.contains(scheme) else {
            throw TLSError(.internalError, "a \(algorithm) key cannot sign with \(scheme); it supports \(tls12SignatureSchemes)")
        }
        do {
            switch backing {
            case .p256(let key):
                return Array(try key.signature(for: SHA256.hash(data: message)).derRepresentation)
            case .p384(let key):
                return Array(try key.signature(for: SHA384.hash(data: message)).derRepresentation)
            case .p521(let key):
                return Array(try key.signature(for: SHA512.hash(data: message)).derRepresentation)
            case .ed25519(let key):
                return Array(try key.signature(for: message))
            case .rsa(let key):
                switch scheme {
                case .rsaPSSRSAESHA256:
                    return Array(try key.signature(for: SHA256.hash(data: message), padding: .PSS).rawRepresentation)
                case .rsaPSSRSAESHA384:
                    return Array(try key.signature(for: SHA384.hash(data: message), padding: .PSS).rawRepresentation)
                case .rsaPKCS1SHA256:
                    return Array(try key.signature(for: SHA256.hash(data: message), padding: .insecurePKCS1v1_5).rawRepresentation)
                case .rsaPKCS1SHA384:
                    return Array(try key.signature(for: SHA384.hash(data: message), padding: .insecurePKCS1v1_5).rawRepresentation)
                case .rsaPKCS1SHA512:
                    return Array(try key.signature(for: SHA512.hash(data: message), padding: .insecurePKCS1v1_5).rawRepresentation)
                default:
                    return Array(try key.signature(for: SHA512.hash(data: message), padding: .PSS).rawRepresentation)
                }
            }
        } catch {
            throw TLSError(.internalError, "signing with \(scheme) failed: \(error)")
        }
    }

    /// True when this key's public half is the certificate's public key.
    public func matches(_ certificate: X509.Certificate) -> Bool {
        certificate.publicKey == x509PrivateKey.publicKey
    }

    /// The key in swift-certificates' form, for certificate generation.
    public var x509PrivateKey: X509.Certificate.PrivateKey {
        switch backing {
        case .p256(let key): return .init(key)
        case .p384(let key): return .init(key)
        case .p521(let key): return .init(key)
        case .rsa(let key): return .init(key)
        case .ed25519(let key): return .init(key)
        }
    }

    /// The signature algorithm this key uses when it signs certificates.
    var certificateSignatureAlgorithm: X509.Certificate.SignatureAlgorithm {
        switch backing {
        case .p256: return .ecdsaWithSHA256
        case .p384: return .ecdsaWithSHA384
        case .p521: return .ecdsaWithSHA512
        case .rsa: return .sha256WithRSAEncryption
        case .ed25519: return .ed25519
        }
    }
}

// MARK: - Parsing

extension ASN1ObjectIdentifier {
    fileprivate static let quiverECPublicKey: ASN1ObjectIdentifier = [1, 2, 840, 10045, 2, 1]
    fileprivate static let quiverRSAEncryption: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 1, 1]
    fileprivate static let quiverRSASSAPSS: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 1, 10]
    fileprivate static let quiverEd25519: ASN1ObjectIdentifier = [1, 3, 101, 112]
    fileprivate static let quiverEd448: ASN1ObjectIdentifier = [1, 3, 101, 113]
    fileprivate static let quiverP521: ASN1ObjectIdentifier = [1, 3, 132, 0, 35]
}

extension PrivateKey {
    /// Parses a PKCS#8 `PrivateKeyInfo` (RFC 5208 / RFC 5958).
    fileprivate static func pkcs8Key(_ der: [UInt8]) throws(QuiverError) -> Backing {
        let algorithm: ASN1ObjectIdentifier
        let curve: ASN1ObjectIdentifier?
        let privateKey: [UInt8]
        do {
            let root = try DER.parse(der)
            (algorithm, curve, privateKey) = try DER.sequence(root, identifier: .sequence) { nodes in
                _ = try Int(derEncoded: &nodes)
                guard let algorithmNode = nodes.next() else {
                    throw ASN1Error.invalidASN1Object(reason: "PrivateKeyInfo has no algorithm")
                }
                let (oid, parameters) = try DER.sequence(algorithmNode, identifier: .sequence) { inner in
                    let oid = try ASN1ObjectIdentifier(derEncoded: &inner)
                    let parameters = inner.next()
                    while inner.next() != nil {}
                    return (oid, parameters)
                }
                var curve: ASN1ObjectIdentifier?
                if let parameters, parameters.identifier == ASN1ObjectIdentifier.defaultIdentifier {
                    curve = try ASN1ObjectIdentifier(derEncoded: parameters)
                }
                let key = try ASN1OctetString(derEncoded: &nodes)
                while nodes.next() != nil {}  // optional attributes and public key
                return (oid, curve, Array(key.bytes))
            }
        } catch {
            throw QuiverError(.certificate, "the PKCS#8 private key is malformed: \(error)")
        }
        switch algorithm {
        case .quiverECPublicKey:
            return try ecKey(sec1: privateKey, curve: curve)
        case .quiverRSAEncryption:
            return try rsaKey(pkcs1: privateKey)
        case .quiverEd25519:
            do {
                let inner = try ASN1OctetString(derEncoded: privateKey)
                return .ed25519(try Curve25519.Signing.PrivateKey(rawRepresentation: inner.bytes))
            } catch {
                throw QuiverError(.certificate, "the Ed25519 private key is malformed: \(error)")
            }
        case .quiverRSASSAPSS:
            throw QuiverError(
                .certificate,
                "RSASSA-PSS-restricted RSA keys (OID 1.2.840.113549.1.1.10) are not supported; use a plain rsaEncryption key")
        case .quiverEd448:
            throw QuiverError(.certificate, "Ed448 keys are not supported; use Ed25519, ECDSA P-256/P-384/P-521 or RSA")
        default:
            throw QuiverError(.certificate, "unsupported private key algorithm \(algorithm); use ECDSA P-256/P-384/P-521, RSA or Ed25519")
        }
    }

    /// Parses a SEC1 `ECPrivateKey` (RFC 5915); `curve` comes from the PKCS#8 wrapper when there is one.
    fileprivate static func ecKey(sec1 der: [UInt8], curve outerCurve: ASN1ObjectIdentifier?) throws(QuiverError) -> Backing {
        let scalar: [UInt8]
        let innerCurve: ASN1ObjectIdentifier?
        do {
            let root = try DER.parse(der)
            (scalar, innerCurve) = try DER.sequence(root, identifier: .sequence) { nodes in
                let version = try Int(derEncoded: &nodes)
                guard version == 1 else {
                    throw ASN1Error.invalidASN1Object(reason: "ECPrivateKey version \(version), expected 1")
                }
                let key = try ASN1OctetString(derEncoded: &nodes)
                var curve: ASN1ObjectIdentifier?
                while let node = nodes.next() {
                    if node.identifier == ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific) {
                        curve = try DER.explicitlyTagged(node, tagNumber: 0, tagClass: .contextSpecific) {
                            try ASN1ObjectIdentifier(derEncoded: $0)
                        }
                    }
                }
                return (Array(key.bytes), curve)
            }
        } catch {
            throw QuiverError(.certificate, "the EC private key is malformed: \(error)")
        }
        if let outerCurve, let innerCurve, outerCurve != innerCurve {
            throw QuiverError(.certificate, "the EC private key names two different curves (\(outerCurve), \(innerCurve))")
        }
        let curve = outerCurve ?? innerCurve
        let length: Int
        switch curve {
        case .some(ASN1ObjectIdentifier.NamedCurves.secp256r1): length = 32
        case .some(ASN1ObjectIdentifier.NamedCurves.secp384r1): length = 48
        case .some(.quiverP521): length = 66
        case .some(let other):
            throw QuiverError(.certificate, "unsupported elliptic curve \(other); use P-256, P-384 or P-521")
        case .none:
            // No curve named anywhere: infer it from the scalar's length.
            switch scalar.count {
            case 32, 48, 66: length = scalar.count
            default: throw QuiverError(.certificate, "the EC private key names no curve and its size fits neither P-256, P-384 nor P-521")
            }
        }
        guard scalar.count <= length else {
            throw QuiverError(.certificate, "the EC private key scalar is \(scalar.count) bytes, longer than the curve allows")
        }
        let padded = [UInt8](repeating: 0, count: length - scalar.count) + scalar
        let name = length == 32 ? "P-256" : length == 48 ? "P-384" : "P-521"
        do {
            switch length {
            case 32: return .p256(try P256.Signing.PrivateKey(rawRepresentation: padded))
            case 48: return .p384(try P384.Signing.PrivateKey(rawRepresentation: padded))
            default: return .p521(try P521.Signing.PrivateKey(rawRepresentation: padded))
            }
        } catch {
            throw QuiverError(.certificate, "the EC private key is not a valid \(name) key: \(error)")
        }
    }

    /// Parses a PKCS#1 `RSAPrivateKey` (RFC 8017 §A.1.2).
    fileprivate static func rsaKey(pkcs1 der: [UInt8]) throws(QuiverError) -> Backing {
        let key: _RSA.Signing.PrivateKey
        do {
            key = try _RSA.Signing.PrivateKey(unsafeDERRepresentation: der)
        } catch {
            throw QuiverError(
                .certificate,
                "the RSA private key is malformed or shorter than 1024 bits (Quiver needs at least \(minimumRSABits)): \(error)")
        }
        guard key.keySizeInBits >= minimumRSABits else {
            throw QuiverError(
                .certificate,
                "the RSA private key is \(key.keySizeInBits) bits; TLS with Quiver needs at least \(minimumRSABits) bits")
        }
        guard key.keySizeInBits <= maximumRSABits else {
            throw QuiverError(.certificate, "the RSA private key is \(key.keySizeInBits) bits; Quiver accepts at most \(maximumRSABits) bits")
        }
        return .rsa(key)
    }
}
