#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import QuiverCore
@testable import QuiverTLS
import SwiftASN1
import Testing
import X509

// MARK: - Helpers

/// Runs `body` and returns the TLS error it threw, or nil.
private func tlsError(_ body: () throws(TLSError) -> Void) -> TLSError? {
    do {
        try body()
        return nil
    } catch {
        return error
    }
}

/// Runs `body` and returns the Quiver error it threw, or nil.
private func quiverError(_ body: () throws(QuiverError) -> Void) -> QuiverError? {
    do {
        try body()
        return nil
    } catch {
        return error
    }
}

/// A fresh temporary directory, removed by the caller.
private func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("quiver-cert-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

private let opensslPath: String? = ["/usr/bin/openssl", "/usr/local/bin/openssl", "/bin/openssl"].first {
    FileManager.default.isExecutableFile(atPath: $0)
}

/// Runs openssl with `arguments`; returns its exit status and combined output.
private func openssl(_ arguments: [String]) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: opensslPath ?? "openssl")
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// The fixtures by file name.
private let fixtures: [String: String] = [
    "rsa2048": CertificateFixtures.rsa2048, "rsa4096": CertificateFixtures.rsa4096,
    "rsa2048-pkcs1": CertificateFixtures.rsa2048Pkcs1, "rsa1024": CertificateFixtures.rsa1024,
    "p256": CertificateFixtures.p256, "p256-sec1": CertificateFixtures.p256Sec1,
    "p384": CertificateFixtures.p384, "p384-sec1": CertificateFixtures.p384Sec1,
    "p521": CertificateFixtures.p521, "ed25519": CertificateFixtures.ed25519,
    "rsa2048-cert": CertificateFixtures.rsa2048Cert, "p256-cert": CertificateFixtures.p256Cert,
    "p384-cert": CertificateFixtures.p384Cert, "ed25519-cert": CertificateFixtures.ed25519Cert,
]

private func fixture(_ name: String) -> String { fixtures[name] ?? "missing fixture \(name)" }

private let message = Array("TLS 1.3, server CertificateVerify".utf8) + [UInt8](repeating: 0x20, count: 64)

/// A fixed validity window and a clock inside it.
private let notBefore: UInt64 = 1_700_000_000_000
private let notAfter: UInt64 = 1_800_000_000_000
private let insideWindow = WallClock.fixed(millisecondsSinceEpoch: 1_750_000_000_000)

/// root → intermediate → leaf, all P-256 unless told otherwise.
private func makeChain(leafNames: [String] = ["server.example"], leafAlgorithm: PrivateKey.Algorithm = .ecdsaP256)
    throws -> (root: CertificateChain, intermediate: CertificateChain, leaf: CertificateChain, leafKey: PrivateKey)
{
    let root = try SelfSignedCertificate.generate(
        names: ["Quiver Test Root"], algorithm: .ecdsaP384, issuer: nil, isCA: true, notBefore: notBefore, notAfter: notAfter)
    let intermediate = try SelfSignedCertificate.generate(
        names: ["Quiver Test Intermediate"], algorithm: .ecdsaP256, issuer: (root.chain.certificates[0], root.key),
        isCA: true, notBefore: notBefore, notAfter: notAfter)
    let leaf = try SelfSignedCertificate.generate(
        names: leafNames, algorithm: leafAlgorithm, issuer: (intermediate.chain.certificates[0], intermediate.key),
        isCA: false, notBefore: notBefore, notAfter: notAfter)
    return (root.chain, intermediate.chain, leaf.chain, leaf.key)
}

/// Calls the synchronous verifier from actor-isolated code.
private actor VerifyingActor {
    let verifier: CertificateVerifier
    let chain: [[UInt8]]

    init(verifier: CertificateVerifier, chain: [[UInt8]]) {
        self.verifier = verifier
        self.chain = chain
    }

    func verify() -> Bool {
        (try? verifier.verify(chain: chain, serverName: "server.example", purpose: .serverAuthentication, clock: insideWindow)) != nil
    }
}

// MARK: - Tests

@Suite("CertificateTests")
struct CertificateTests {
    // MARK: Private keys

    @Test("PEM keys of every supported type and form load", arguments: [
        ("rsa2048", PrivateKey.Algorithm.rsa(bits: 2048)),
        ("rsa4096", .rsa(bits: 4096)),
        ("rsa2048-pkcs1", .rsa(bits: 2048)),
        ("p256", .ecdsaP256),
        ("p256-sec1", .ecdsaP256),
        ("p384", .ecdsaP384),
        ("p384-sec1", .ecdsaP384),
        ("p521", .ecdsaP521),
        ("ed25519", .ed25519),
    ])
    func loadsKeys(fixtureName: String, algorithm: PrivateKey.Algorithm) throws {
        let key = try PrivateKey(pem: fixture(fixtureName))
        #expect(key.algorithm == algorithm)
        #expect(!key.signatureSchemes.isEmpty)
        // PKCS#8 output parses back to the same key.
        #expect(key.pemRepresentation.hasPrefix("-----BEGIN PRIVATE KEY-----\n"))
        let again = try PrivateKey(pem: key.pemRepresentation)
        #expect(again.algorithm == algorithm)
        #expect(again.x509PrivateKey.publicKey == key.x509PrivateKey.publicKey)
    }

    @Test func traditionalAndPKCS8FormsAreTheSameKey() throws {
        #expect(
            try PrivateKey(pem: CertificateFixtures.p256Sec1).x509PrivateKey.publicKey
                == PrivateKey(pem: CertificateFixtures.p256).x509PrivateKey.publicKey)
        #expect(
            try PrivateKey(pem: CertificateFixtures.p384Sec1).x509PrivateKey.publicKey
                == PrivateKey(pem: CertificateFixtures.p384).x509PrivateKey.publicKey)
        #expect(
            try PrivateKey(pem: CertificateFixtures.rsa2048Pkcs1).x509PrivateKey.publicKey
                == PrivateKey(pem: CertificateFixtures.rsa2048).x509PrivateKey.publicKey)
    }

    @Test func signatureSchemesPerKeyType() throws {
        #expect(try PrivateKey(pem: CertificateFixtures.p256).signatureSchemes == [.ecdsaSecp256r1SHA256])
        #expect(try PrivateKey(pem: CertificateFixtures.p384).signatureSchemes == [.ecdsaSecp384r1SHA384])
        #expect(try PrivateKey(pem: CertificateFixtures.p521).signatureSchemes == [.ecdsaSecp521r1SHA512])
        #expect(
            try PrivateKey(pem: CertificateFixtures.rsa2048).signatureSchemes
                == [.rsaPSSRSAESHA256, .rsaPSSRSAESHA384, .rsaPSSRSAESHA512])
        #expect(try PrivateKey(pem: CertificateFixtures.ed25519).signatureSchemes == [.ed25519])
    }

    @Test func rejectsSmallRSAAndUnsupportedKeys() throws {
        let small = quiverError { () throws(QuiverError) in _ = try PrivateKey(pem: CertificateFixtures.rsa1024) }
        #expect(small?.code == QuiverError.Code.certificate)
        #expect(small?.reason.contains("1024 bits") == true)
        #expect(small?.reason.contains("2048") == true)

        #expect(quiverError { () throws(QuiverError) in _ = try PrivateKey(pem: "not a key") }?.code == QuiverError.Code.certificate)
        #expect(quiverError { () throws(QuiverError) in _ = try PrivateKey(pem: CertificateFixtures.p256Cert) }?.code == QuiverError.Code.certificate)
        let garbage = PEMDocument(type: "PRIVATE KEY", derBytes: [0x30, 0x03, 0x02, 0x01, 0x00]).pemString
        #expect(quiverError { () throws(QuiverError) in _ = try PrivateKey(pem: garbage) }?.code == QuiverError.Code.certificate)
        let tooSmall = quiverError { () throws(QuiverError) in _ = try PrivateKey.generate(.rsa(bits: 1024)) }
        #expect(tooSmall?.code == QuiverError.Code.certificate)
    }

    @Test func keyFilesAndMissingFiles() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("key.pem").path
        try CertificateFixtures.p256Sec1.write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try PrivateKey(pemFile: path).algorithm == .ecdsaP256)

        let missing = directory.appendingPathComponent("missing.pem").path
        #expect(quiverError { () throws(QuiverError) in _ = try PrivateKey(pemFile: missing) }?.code == QuiverError.Code.configuration)
        #expect(quiverError { () throws(QuiverError) in _ = try CertificateChain(pemFile: missing) }?.code == QuiverError.Code.configuration)
        #expect(quiverError { () throws(QuiverError) in _ = try CertificateVerifier(trustRootsPEMFile: missing) }?.code == QuiverError.Code.configuration)
    }

    @Test("generated keys", arguments: [PrivateKey.Algorithm.ecdsaP256, .ecdsaP384, .ed25519, .rsa(bits: 2048)])
    func generatesKeys(algorithm: PrivateKey.Algorithm) throws {
        let key = try PrivateKey.generate(algorithm)
        #expect(key.algorithm == algorithm)
        let signature = try key.sign(message, scheme: key.signatureSchemes[0])
        try SignatureVerifier.verify(
            signature: signature, scheme: key.signatureSchemes[0], message: message, publicKey: key.x509PrivateKey.publicKey)
    }

    @Test(.enabled(if: opensslPath != nil, "openssl is not installed; skipping the OpenSSL interoperability check"))
    func pemRepresentationIsReadableByOpenSSL() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        for algorithm in [PrivateKey.Algorithm.ecdsaP256, .ecdsaP384, .ed25519, .rsa(bits: 2048)] {
            let path = directory.appendingPathComponent("key.pem").path
            try PrivateKey.generate(algorithm).pemRepresentation.write(toFile: path, atomically: true, encoding: .utf8)
            let result = try openssl(["pkey", "-in", path, "-noout"])
            #expect(result.status == 0, "openssl cannot read a \(algorithm) PKCS#8 key: \(result.output)")
        }
    }

    @Test func keyMatchesItsCertificate() throws {
        let pairs = [
            (CertificateFixtures.p256, CertificateFixtures.p256Cert),
            (CertificateFixtures.p384, CertificateFixtures.p384Cert),
            (CertificateFixtures.rsa2048, CertificateFixtures.rsa2048Cert),
            (CertificateFixtures.ed25519, CertificateFixtures.ed25519Cert),
        ]
        for (index, (keyPEM, _)) in pairs.enumerated() {
            let key = try PrivateKey(pem: keyPEM)
            for (otherIndex, (_, otherCert)) in pairs.enumerated() {
                let certificate = try CertificateChain(pem: otherCert).certificates[0]
                #expect(key.matches(certificate) == (index == otherIndex))
            }
        }
    }

    // MARK: Signatures

    @Test("sign/verify round trip for every scheme", arguments: [
        ("p256", "p256-cert", SignatureScheme.ecdsaSecp256r1SHA256),
        ("p384", "p384-cert", .ecdsaSecp384r1SHA384),
        ("ed25519", "ed25519-cert", .ed25519),
        ("rsa2048", "rsa2048-cert", .rsaPSSRSAESHA256),
        ("rsa2048", "rsa2048-cert", .rsaPSSRSAESHA384),
        ("rsa2048", "rsa2048-cert", .rsaPSSRSAESHA512),
        ("rsa4096", nil, .rsaPSSRSAESHA256),
        ("rsa4096", nil, .rsaPSSRSAESHA512),
        ("rsa2048-pkcs1", "rsa2048-cert", .rsaPSSRSAESHA512),
    ] as [(String, String?, SignatureScheme)])
    func roundTrip(keyName: String, certificateName: String?, scheme: SignatureScheme) throws {
        let key = try PrivateKey(pem: fixture(keyName))
        let publicKey =
            try certificateName.map { try CertificateChain(pem: fixture($0)).certificates[0].publicKey } ?? key.x509PrivateKey.publicKey
        let signature = try key.sign(message, scheme: scheme)
        try SignatureVerifier.verify(signature: signature, scheme: scheme, message: message, publicKey: publicKey)

        // A changed message, a flipped signature bit, a truncated or empty signature: decrypt_error.
        var otherMessage = message
        otherMessage[3] ^= 1
        #expect(
            tlsError { () throws(TLSError) in
                try SignatureVerifier.verify(signature: signature, scheme: scheme, message: otherMessage, publicKey: publicKey)
            }?.alert == AlertDescription.decryptError)
        for index in [0, signature.count / 2, signature.count - 1] {
            var tampered = signature
            tampered[index] ^= 0x40
            #expect(
                tlsError { () throws(TLSError) in
                    try SignatureVerifier.verify(signature: tampered, scheme: scheme, message: message, publicKey: publicKey)
                }?.alert == AlertDescription.decryptError)
        }
        for bad in [Array(signature.dropLast()), []] {
            #expect(
                tlsError { () throws(TLSError) in
                    try SignatureVerifier.verify(signature: bad, scheme: scheme, message: message, publicKey: publicKey)
                }?.alert == AlertDescription.decryptError)
        }
    }

    @Test func wrongSchemesAreIllegalParameters() throws {
        let p256 = try PrivateKey(pem: CertificateFixtures.p256)
        let p384 = try PrivateKey(pem: CertificateFixtures.p384)
        let rsa = try PrivateKey(pem: CertificateFixtures.rsa2048)
        let ed25519 = try PrivateKey(pem: CertificateFixtures.ed25519)
        let p256Signature = try p256.sign(message, scheme: .ecdsaSecp256r1SHA256)
        let p384Signature = try p384.sign(message, scheme: .ecdsaSecp384r1SHA384)
        let rsaSignature = try rsa.sign(message, scheme: .rsaPSSRSAESHA256)

        let cases: [([UInt8], SignatureScheme, PrivateKey)] = [
            (p384Signature, .ecdsaSecp256r1SHA256, p384),  // P-256 scheme, P-384 key
            (p256Signature, .ecdsaSecp384r1SHA384, p256),  // P-384 scheme, P-256 key
            (rsaSignature, .rsaPKCS1SHA256, rsa),  // PKCS#1 v1.5 is not allowed in CertificateVerify
            (rsaSignature, .rsaPSSPSSSHA256, rsa),  // rsa_pss_pss needs an RSASSA-PSS key
            (rsaSignature, .ecdsaSecp256r1SHA256, rsa),
            (p256Signature, .rsaPSSRSAESHA256, p256),
            (p256Signature, .ed25519, p256),
            (p256Signature, .ecdsaSecp521r1SHA512, p256),
            (p256Signature, SignatureScheme(rawValue: 0x0a0a), p256),  // GREASE
            (p256Signature, .ed448, ed25519),
        ]
        for (signature, scheme, key) in cases {
            let error = tlsError { () throws(TLSError) in
                try SignatureVerifier.verify(
                    signature: signature, scheme: scheme, message: message, publicKey: key.x509PrivateKey.publicKey)
            }
            #expect(error?.alert == AlertDescription.illegalParameter, "\(scheme) with a \(key.algorithm) key")
        }

        // Signing with a scheme the key cannot produce is a local error.
        for (key, scheme) in [(p256, SignatureScheme.ecdsaSecp384r1SHA384), (rsa, .ecdsaSecp256r1SHA256), (ed25519, .rsaPKCS1SHA256)] {
            let error = tlsError { () throws(TLSError) in _ = try key.sign(message, scheme: scheme) }
            #expect(error?.alert == AlertDescription.internalError)
        }
    }

    @Test(.enabled(if: opensslPath != nil, "openssl is not installed; skipping the OpenSSL interoperability check"))
    func signaturesInteroperateWithOpenSSL() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let messagePath = directory.appendingPathComponent("message.bin").path
        let signaturePath = directory.appendingPathComponent("signature.bin").path
        let keyPath = directory.appendingPathComponent("key.pem").path
        try Data(message).write(to: URL(fileURLWithPath: messagePath))

        let cases: [(String, SignatureScheme, String, [String])] = [
            (CertificateFixtures.rsa2048, .rsaPSSRSAESHA256, "-sha256", ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"]),
            (CertificateFixtures.rsa2048, .rsaPSSRSAESHA384, "-sha384", ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"]),
            (CertificateFixtures.rsa4096, .rsaPSSRSAESHA512, "-sha512", ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"]),
            (CertificateFixtures.p256, .ecdsaSecp256r1SHA256, "-sha256", []),
            (CertificateFixtures.p384, .ecdsaSecp384r1SHA384, "-sha384", []),
        ]
        for (keyPEM, scheme, digest, options) in cases {
            let key = try PrivateKey(pem: keyPEM)
            try keyPEM.write(toFile: keyPath, atomically: true, encoding: .utf8)

            // Ours → OpenSSL.
            try Data(try key.sign(message, scheme: scheme)).write(to: URL(fileURLWithPath: signaturePath))
            let verified = try openssl(
                ["dgst", digest] + options + ["-prverify", keyPath, "-signature", signaturePath, messagePath])
            #expect(verified.status == 0, "OpenSSL rejects our \(scheme) signature: \(verified.output)")

            // OpenSSL → ours.
            let signed = try openssl(["dgst", digest] + options + ["-sign", keyPath, "-out", signaturePath, messagePath])
            #expect(signed.status == 0, "\(signed.output)")
            let signature = Array(try Data(contentsOf: URL(fileURLWithPath: signaturePath)))
            try SignatureVerifier.verify(
                signature: signature, scheme: scheme, message: message, publicKey: key.x509PrivateKey.publicKey)
        }

        // Ed25519 (one-shot, no digest).
        let key = try PrivateKey(pem: CertificateFixtures.ed25519)
        try CertificateFixtures.ed25519.write(toFile: keyPath, atomically: true, encoding: .utf8)
        let signed = try openssl(["pkeyutl", "-sign", "-rawin", "-inkey", keyPath, "-in", messagePath, "-out", signaturePath])
        #expect(signed.status == 0, "\(signed.output)")
        try SignatureVerifier.verify(
            signature: Array(try Data(contentsOf: URL(fileURLWithPath: signaturePath))), scheme: .ed25519, message: message,
            publicKey: key.x509PrivateKey.publicKey)
    }

    // MARK: Certificate chains

    @Test func chainParsingAndPEM() throws {
        let chain = try makeChain()
        let full = try CertificateChain(derEncoded: chain.leaf.derEncoded + chain.intermediate.derEncoded)
        #expect(full.certificates.count == 2)
        let reparsed = try CertificateChain(pem: full.pemRepresentation)
        #expect(reparsed == full)
        #expect(reparsed.derEncoded == full.derEncoded)
        #expect(full.pemRepresentation.components(separatedBy: "-----BEGIN CERTIFICATE-----").count == 3)

        // Other PEM blocks (a key in the same file) are skipped.
        let mixed = try CertificateChain(pem: CertificateFixtures.p256 + "\n" + CertificateFixtures.p256Cert)
        #expect(mixed.certificates.count == 1)

        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("chain.pem").path
        try full.pemRepresentation.write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try CertificateChain(pemFile: path) == full)

        #expect(quiverError { () throws(QuiverError) in _ = try CertificateChain(derEncoded: []) }?.code == QuiverError.Code.certificate)
        #expect(quiverError { () throws(QuiverError) in _ = try CertificateChain(derEncoded: [[0x30, 0x03, 0x01, 0x01, 0xff]]) }?.code == QuiverError.Code.certificate)
        #expect(quiverError { () throws(QuiverError) in _ = try CertificateChain(pem: "garbage") }?.code == QuiverError.Code.certificate)
        #expect(quiverError { () throws(QuiverError) in _ = try CertificateChain(pem: CertificateFixtures.p256) }?.code == QuiverError.Code.certificate)
    }

    // MARK: Self-signed certificates and names

    @Test func selfSignedDefaultVerifiesForLocalNames() throws {
        let (chain, key) = try SelfSignedCertificate.generate()
        let certificate = chain.certificates[0]
        #expect(key.algorithm == .ecdsaP256)
        #expect(key.matches(certificate))
        #expect(certificate.issuer == certificate.subject)
        #expect(certificate.subject.description == "CN=localhost")
        #expect(try certificate.extensions.basicConstraints == .notCertificateAuthority)
        #expect(try certificate.extensions.extendedKeyUsage == ExtendedKeyUsage([.serverAuth, .clientAuth]))
        #expect(try certificate.extensions.keyUsage?.digitalSignature == true)
        let sans = try #require(try certificate.extensions.subjectAlternativeNames)
        #expect(Array(sans) == [
            .dnsName("localhost"),
            .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1])),
            .ipAddress(ASN1OctetString(contentBytes: ArraySlice([UInt8](repeating: 0, count: 15) + [1]))),
        ])
        // Valid from an hour ago for a year.
        let now = Date()
        #expect(certificate.notValidBefore <= now.addingTimeInterval(-3590))
        #expect(certificate.notValidBefore >= now.addingTimeInterval(-3610))
        #expect(abs(certificate.notValidAfter.timeIntervalSince(now) - 365 * 86400) < 10)

        let verifier = CertificateVerifier(trustRoots: [certificate])
        for name in ["localhost", "LOCALHOST", "localhost.", "127.0.0.1", "::1", "[::1]"] {
            let leaf = try verifier.verify(chain: chain.derEncoded, serverName: name, purpose: .serverAuthentication, clock: .system)
            #expect(leaf == certificate)
        }
        _ = try verifier.verify(chain: chain.derEncoded, serverName: nil, purpose: .clientAuthentication, clock: .system)

        for name in ["other.example", "127.0.0.2", "::2", "localhost.example"] {
            let error = tlsError { () throws(TLSError) in
                _ = try verifier.verify(chain: chain.derEncoded, serverName: name, purpose: .serverAuthentication, clock: .system)
            }
            #expect(error?.alert == AlertDescription.badCertificate)
            #expect(error?.reason.contains("certificate is not valid for \(name)") == true, "\(String(describing: error))")
        }
    }

    @Test("self-signed certificates of every key type", arguments: [
        PrivateKey.Algorithm.ecdsaP256, .ecdsaP384, .ed25519, .rsa(bits: 2048),
    ])
    func selfSignedEveryAlgorithm(algorithm: PrivateKey.Algorithm) throws {
        let (chain, key) = try SelfSignedCertificate.generate(names: ["svc.example", "10.1.2.3"], algorithm: algorithm, validityDays: 2)
        #expect(key.algorithm == algorithm)
        #expect(key.matches(chain.certificates[0]))
        let verifier = CertificateVerifier(trustRoots: chain.certificates)
        _ = try verifier.verify(chain: chain.derEncoded, serverName: "svc.example", purpose: .serverAuthentication, clock: .system)
        _ = try verifier.verify(chain: chain.derEncoded, serverName: "10.1.2.3", purpose: .serverAuthentication, clock: .system)
        // The name "localhost" was not asked for, so no loopback addresses either.
        #expect(
            tlsError { () throws(TLSError) in
                _ = try verifier.verify(chain: chain.derEncoded, serverName: "127.0.0.1", purpose: .serverAuthentication, clock: .system)
            }?.alert == AlertDescription.badCertificate)
    }

    @Test func wildcardNames() throws {
        let (chain, _) = try SelfSignedCertificate.generate(names: ["*.wild.example", "exact.example"])
        let verifier = CertificateVerifier(trustRoots: chain.certificates)
        for name in ["a.wild.example", "exact.example"] {
            _ = try verifier.verify(chain: chain.derEncoded, serverName: name, purpose: .serverAuthentication, clock: .system)
        }
        for name in ["wild.example", "a.b.wild.example", "a.exact.example"] {
            #expect(
                tlsError { () throws(TLSError) in
                    _ = try verifier.verify(chain: chain.derEncoded, serverName: name, purpose: .serverAuthentication, clock: .system)
                }?.alert == AlertDescription.badCertificate, "\(name)")
        }
    }

    @Test func invalidGenerationInputs() {
        #expect(quiverError { () throws(QuiverError) in _ = try SelfSignedCertificate.generate(names: []) }?.code == QuiverError.Code.certificate)
        #expect(quiverError { () throws(QuiverError) in _ = try SelfSignedCertificate.generate(names: ["bad name!"]) }?.code == QuiverError.Code.certificate)
        #expect(quiverError { () throws(QuiverError) in _ = try SelfSignedCertificate.generate(validityDays: 0) }?.code == QuiverError.Code.certificate)
        #expect(
            quiverError { () throws(QuiverError) in
                _ = try SelfSignedCertificate.generate(
                    names: ["x.example"], algorithm: .ecdsaP256, issuer: nil, isCA: false, notBefore: 2000, notAfter: 1000)
            }?.code == QuiverError.Code.certificate)
        // A non-CA certificate cannot issue.
        #expect(
            quiverError { () throws(QuiverError) in
                let leaf = try SelfSignedCertificate.generate(names: ["leaf.example"])
                _ = try SelfSignedCertificate.generate(
                    names: ["x.example"], algorithm: .ecdsaP256, issuer: (leaf.chain.certificates[0], leaf.key), isCA: false,
                    notBefore: notBefore, notAfter: notAfter)
            }?.code == QuiverError.Code.certificate)
    }

    // MARK: Path validation

    @Test func rootIntermediateLeafChainVerifies() throws {
        let chain = try makeChain(leafAlgorithm: .rsa(bits: 2048))
        let verifier = CertificateVerifier(trustRoots: chain.root.certificates)
        let received = chain.leaf.derEncoded + chain.intermediate.derEncoded
        let leaf = try verifier.verify(chain: received, serverName: "server.example", purpose: .serverAuthentication, clock: insideWindow)
        #expect(leaf == chain.leaf.certificates[0])
        // The root may be sent too; client certificates skip the name check.
        _ = try verifier.verify(
            chain: received + chain.root.derEncoded, serverName: nil, purpose: .clientAuthentication, clock: insideWindow)

        // Without the intermediate there is no path to the root.
        let missing = tlsError { () throws(TLSError) in
            _ = try verifier.verify(chain: chain.leaf.derEncoded, serverName: "server.example", purpose: .serverAuthentication, clock: insideWindow)
        }
        #expect(missing?.alert == AlertDescription.unknownCA)

        // Trusting the intermediate directly works.
        _ = try CertificateVerifier(trustRoots: chain.intermediate.certificates).verify(
            chain: chain.leaf.derEncoded, serverName: "server.example", purpose: .serverAuthentication, clock: insideWindow)

        // Wrong name through a valid chain.
        let wrongName = tlsError { () throws(TLSError) in
            _ = try verifier.verify(chain: received, serverName: "other.example", purpose: .serverAuthentication, clock: insideWindow)
        }
        #expect(wrongName?.alert == AlertDescription.badCertificate)
        #expect(wrongName?.reason.contains("certificate is not valid for other.example") == true)
    }

    @Test func expiredAndNotYetValid() throws {
        let chain = try makeChain()
        let verifier = CertificateVerifier(trustRoots: chain.root.certificates)
        let received = chain.leaf.derEncoded + chain.intermediate.derEncoded
        for time in [notAfter + 1000, notBefore - 1000, UInt64(0)] {
            let error = tlsError { () throws(TLSError) in
                _ = try verifier.verify(
                    chain: received, serverName: "server.example", purpose: .serverAuthentication,
                    clock: .fixed(millisecondsSinceEpoch: time))
            }
            #expect(error?.alert == AlertDescription.certificateExpired, "\(String(describing: error))")
        }
        // The default self-signed certificate, a year and a day later.
        let (selfSigned, _) = try SelfSignedCertificate.generate()
        let later = WallClock.fixed(millisecondsSinceEpoch: WallClock.system.millisecondsSinceEpoch() + 366 * 86_400_000)
        let error = tlsError { () throws(TLSError) in
            _ = try CertificateVerifier(trustRoots: selfSigned.certificates).verify(
                chain: selfSigned.derEncoded, serverName: "localhost", purpose: .serverAuthentication, clock: later)
        }
        #expect(error?.alert == AlertDescription.certificateExpired)
    }

    @Test func untrustedChainsAreUnknownCA() throws {
        let chain = try makeChain()
        let other = try makeChain()
        let (selfSigned, _) = try SelfSignedCertificate.generate()
        let received = chain.leaf.derEncoded + chain.intermediate.derEncoded
        for roots in [[], other.root.certificates, selfSigned.certificates] {
            let error = tlsError { () throws(TLSError) in
                _ = try CertificateVerifier(trustRoots: roots).verify(
                    chain: received, serverName: "server.example", purpose: .serverAuthentication, clock: insideWindow)
            }
            #expect(error?.alert == AlertDescription.unknownCA)
        }
        let error = tlsError { () throws(TLSError) in
            _ = try CertificateVerifier(trustRoots: chain.root.certificates).verify(
                chain: selfSigned.derEncoded, serverName: "localhost", purpose: .serverAuthentication, clock: .system)
        }
        #expect(error?.alert == AlertDescription.unknownCA)
    }

    @Test func garbageIsBadCertificate() throws {
        let chain = try makeChain()
        let verifier = CertificateVerifier(trustRoots: chain.root.certificates)
        let inputs: [[[UInt8]]] = [
            [],
            [[]],
            [[0x30, 0x82, 0x01]],
            [Array("not a certificate".utf8)],
            chain.leaf.derEncoded + [[0x30, 0x00]],  // good leaf, garbage intermediate
            Array(repeating: chain.intermediate.derEncoded[0], count: 17),  // too long
        ]
        for input in inputs {
            let error = tlsError { () throws(TLSError) in
                _ = try verifier.verify(chain: input, serverName: "server.example", purpose: .serverAuthentication, clock: insideWindow)
            }
            #expect(error?.alert == AlertDescription.badCertificate)
        }
    }

    @Test func extendedKeyUsageMustAllowThePurpose() throws {
        // A CA certificate used as a leaf has no EKU (so any purpose) but is not valid for names:
        // build a leaf whose EKU is serverAuth only by hand.
        let root = try SelfSignedCertificate.generate(
            names: ["EKU Root"], algorithm: .ecdsaP256, issuer: nil, isCA: true, notBefore: notBefore, notAfter: notAfter)
        let leafKey = try PrivateKey.generate(.ecdsaP256)
        let leaf = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: leafKey.x509PrivateKey.publicKey,
            notValidBefore: Date(timeIntervalSince1970: Double(notBefore / 1000)),
            notValidAfter: Date(timeIntervalSince1970: Double(notAfter / 1000)),
            issuer: root.chain.certificates[0].subject, subject: try DistinguishedName { CommonName("server-only.example") },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames([.dnsName("server-only.example")])
            },
            issuerPrivateKey: root.key.x509PrivateKey)
        let der = try CertificateChain(certificates: [leaf]).derEncoded
        let verifier = CertificateVerifier(trustRoots: root.chain.certificates)
        _ = try verifier.verify(chain: der, serverName: "server-only.example", purpose: .serverAuthentication, clock: insideWindow)
        let error = tlsError { () throws(TLSError) in
            _ = try verifier.verify(chain: der, serverName: nil, purpose: .clientAuthentication, clock: insideWindow)
        }
        #expect(error?.alert == AlertDescription.badCertificate)
    }

    @Test func nonCAIssuerIsBadCertificate() throws {
        let root = try SelfSignedCertificate.generate(
            names: ["Root"], algorithm: .ecdsaP256, issuer: nil, isCA: true, notBefore: notBefore, notAfter: notAfter)
        // An end-entity certificate (CA:false) that then signs another certificate.
        let notACA = try SelfSignedCertificate.generate(
            names: ["not-a-ca.example"], algorithm: .ecdsaP256, issuer: (root.chain.certificates[0], root.key), isCA: false,
            notBefore: notBefore, notAfter: notAfter)
        let leafKey = try PrivateKey.generate(.ecdsaP256)
        let leaf = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: leafKey.x509PrivateKey.publicKey,
            notValidBefore: Date(timeIntervalSince1970: Double(notBefore / 1000)),
            notValidAfter: Date(timeIntervalSince1970: Double(notAfter / 1000)),
            issuer: notACA.chain.certificates[0].subject, subject: try DistinguishedName { CommonName("victim.example") },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions { SubjectAlternativeNames([.dnsName("victim.example")]) },
            issuerPrivateKey: notACA.key.x509PrivateKey)
        let received = try CertificateChain(certificates: [leaf]).derEncoded + notACA.chain.derEncoded
        let error = tlsError { () throws(TLSError) in
            _ = try CertificateVerifier(trustRoots: root.chain.certificates).verify(
                chain: received, serverName: "victim.example", purpose: .serverAuthentication, clock: insideWindow)
        }
        #expect(error?.alert == AlertDescription.badCertificate)
        #expect(error?.reason.contains("not marked as a CA") == true, "\(String(describing: error))")
    }

    @Test func insecureModeOnlyParsesTheLeaf() throws {
        let verifier = CertificateVerifier.insecureNoVerification(.iUnderstandThisDisablesPeerAuthentication)
        #expect(verifier.isInsecure)
        #expect(!CertificateVerifier(trustRoots: []).isInsecure)
        let chain = try makeChain()
        let leaf = try verifier.verify(
            chain: chain.leaf.derEncoded + [[0xde, 0xad]], serverName: "nothing.example", purpose: .serverAuthentication,
            clock: .fixed(millisecondsSinceEpoch: 0))
        #expect(leaf == chain.leaf.certificates[0])
        #expect(
            tlsError { () throws(TLSError) in
                _ = try verifier.verify(chain: [[1, 2, 3]], serverName: nil, purpose: .serverAuthentication, clock: .system)
            }?.alert == AlertDescription.badCertificate)
        #expect(
            tlsError { () throws(TLSError) in
                _ = try verifier.verify(chain: [], serverName: nil, purpose: .serverAuthentication, clock: .system)
            }?.alert == AlertDescription.badCertificate)
    }

    @Test func trustRootsFromFilesAndTheSystem() throws {
        let chain = try makeChain()
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("roots.pem").path
        try (chain.root.pemRepresentation + CertificateFixtures.p256Cert).write(toFile: path, atomically: true, encoding: .utf8)
        let verifier = try CertificateVerifier(trustRootsPEMFile: path)
        #expect(verifier.trustRoots.count == 2)
        _ = try verifier.verify(
            chain: chain.leaf.derEncoded + chain.intermediate.derEncoded, serverName: "server.example",
            purpose: .serverAuthentication, clock: insideWindow)

        if FileManager.default.fileExists(atPath: "/etc/ssl/certs/ca-certificates.crt") {
            let system = try CertificateVerifier.system()
            // Every block of the bundle is a root that parses.
            let bundle = try String(contentsOfFile: "/etc/ssl/certs/ca-certificates.crt", encoding: .utf8)
            #expect(system.trustRoots.count == bundle.components(separatedBy: "-----BEGIN CERTIFICATE-----").count - 1)
            #expect(system.trustRoots.count > 10)
            #expect(!system.isInsecure)
            // Our private root is not among them.
            #expect(
                tlsError { () throws(TLSError) in
                    _ = try system.verify(
                        chain: chain.leaf.derEncoded + chain.intermediate.derEncoded, serverName: "server.example",
                        purpose: .serverAuthentication, clock: insideWindow)
                }?.alert == AlertDescription.unknownCA)
        }
    }

    // MARK: OpenSSL cross-check

    @Test(.enabled(if: opensslPath != nil, "openssl is not installed; skipping `openssl verify`"))
    func openSSLVerifiesGeneratedCertificates() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        func write(_ text: String, _ name: String) throws -> String {
            let path = directory.appendingPathComponent(name).path
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        for algorithm in [PrivateKey.Algorithm.ecdsaP256, .ecdsaP384, .ed25519, .rsa(bits: 2048)] {
            let (chain, _) = try SelfSignedCertificate.generate(names: ["localhost"], algorithm: algorithm)
            let path = try write(chain.pemRepresentation, "self-signed.pem")
            for check in [["-verify_hostname", "localhost"], ["-verify_ip", "127.0.0.1"], ["-verify_ip", "::1"], ["-purpose", "sslserver"], ["-purpose", "sslclient"]] {
                let result = try openssl(["verify", "-CAfile", path] + check + [path])
                #expect(result.status == 0 && result.output.contains("OK"), "\(algorithm) \(check): \(result.output)")
            }
            let wrong = try openssl(["verify", "-CAfile", path, "-verify_hostname", "other.example", path])
            #expect(wrong.status != 0)
        }

        let chain = try makeChain(leafAlgorithm: .rsa(bits: 2048))
        let root = try write(chain.root.pemRepresentation, "root.pem")
        let intermediate = try write(chain.intermediate.pemRepresentation, "intermediate.pem")
        let leaf = try write(chain.leaf.pemRepresentation, "leaf.pem")
        let result = try openssl([
            "verify", "-CAfile", root, "-untrusted", intermediate, "-attime", "1750000000",
            "-verify_hostname", "server.example", "-purpose", "sslserver", leaf,
        ])
        #expect(result.status == 0 && result.output.contains("OK"), "\(result.output)")
    }

    // MARK: Running the async verifier synchronously

    @Test func synchronousRunnerStaysOnTheCallingThread() {
        let caller = pthread_self()
        let threads = SynchronousTaskRunner<[pthread_t]>.run {
            var seen: [pthread_t] = [pthread_self()]
            for _ in 0..<100 {
                await Task.yield()
                seen.append(pthread_self())
            }
            return seen
        }
        #expect(threads.count == 101)
        #expect(threads.allSatisfy { pthread_equal($0, caller) != 0 })
    }

    @Test(.timeLimit(.minutes(1)))
    func verifiesFromManyConcurrentTasks() async throws {
        let chain = try makeChain()
        let verifier = CertificateVerifier(trustRoots: chain.root.certificates)
        let received = chain.leaf.derEncoded + chain.intermediate.derEncoded
        // Far more concurrent callers than cooperative threads, each blocking its thread while it
        // verifies: with a semaphore-on-the-pool design this would deadlock.
        let results = await withTaskGroup(of: Bool.self, returning: [Bool].self) { group in
            for index in 0..<24 {
                group.addTask {
                    let serverName = index.isMultiple(of: 3) ? "wrong.example" : "server.example"
                    let error = tlsError { () throws(TLSError) in
                        _ = try verifier.verify(chain: received, serverName: serverName, purpose: .serverAuthentication, clock: insideWindow)
                    }
                    return index.isMultiple(of: 3) ? error?.alert == AlertDescription.badCertificate : error == nil
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.count == 24)
        #expect(results.allSatisfy { $0 })

        // From an actor's executor.
        #expect(await VerifyingActor(verifier: verifier, chain: received).verify())

        // Nested: a synchronous verification inside an operation that is itself run synchronously.
        let nested = SynchronousTaskRunner<Bool>.run {
            await Task.yield()
            return (try? verifier.verify(chain: received, serverName: "server.example", purpose: .serverAuthentication, clock: insideWindow)) != nil
        }
        #expect(nested)
    }
}
