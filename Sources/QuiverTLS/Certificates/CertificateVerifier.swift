#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
public import QuiverCore
import SwiftASN1
@_spi(DisableValidityCheck) public import X509

/// Acknowledgement value needed to turn certificate verification off (tests only).
///
/// Spelling it out makes disabling peer authentication a visible, greppable decision.
public struct InsecureVerificationAcknowledgement: Sendable {
    private init() {}

    /// "I understand this disables peer authentication."
    public static let iUnderstandThisDisablesPeerAuthentication = InsecureVerificationAcknowledgement()
}

/// Verifies peer certificate chains.
///
/// Path validation follows RFC 5280 (swift-certificates' `Verifier` with `RFC5280Policy`: chain
/// building through the peer's intermediates to a trust root, signatures, basic constraints,
/// name constraints), plus the validity period of every certificate against the supplied
/// ``WallClock``, the extended key usage for ``Purpose``, and for servers the requested name
/// (DNS with RFC 6125 wildcard rules, or IP address) via `ServerIdentityPolicy`.
///
/// ```swift
/// let verifier = try CertificateVerifier.system()
/// let leaf = try verifier.verify(chain: received, serverName: "example.com",
///                                purpose: .serverAuthentication, clock: .system)
/// ```
public struct CertificateVerifier: Sendable {
    /// What the peer's certificate must be good for.
    public enum Purpose: Sendable {
        /// The peer is a TLS server (extended key usage `serverAuth`).
        case serverAuthentication
        /// The peer is a TLS client (extended key usage `clientAuth`).
        case clientAuthentication
    }

    /// The most certificates accepted in one chain: bounds the work chain building can do.
    static let maximumChainLength = 16

    let trustRoots: [X509.Certificate]
    private let rootStore: CertificateStore
    private let insecure: Bool

    /// Creates a verifier that trusts exactly `trustRoots`.
    public init(trustRoots: [X509.Certificate]) {
        self.trustRoots = trustRoots
        self.rootStore = CertificateStore(trustRoots)
        self.insecure = false
    }

    private init(insecure: Bool) {
        self.trustRoots = []
        self.rootStore = CertificateStore()
        self.insecure = insecure
    }

    /// Creates a verifier trusting the certificates in a PEM file.
    ///
    /// - Throws: ``QuiverError`` with code `.configuration` when the file cannot be read, or
    ///   `.certificate` when it holds no certificate or one that does not parse.
    public init(trustRootsPEMFile path: String) throws(QuiverError) {
        self.init(trustRoots: try CertificateChain(pemFile: path).certificates)
    }

    /// A verifier trusting the system's roots: the bundle at `/etc/ssl/certs/ca-certificates.crt`
    /// (or the other usual bundle locations), falling back to the PEM files in `/etc/ssl/certs`.
    ///
    /// The roots are read once per process.
    ///
    /// - Throws: ``QuiverError`` with code `.configuration` when no trust root can be found.
    public static func system() throws(QuiverError) -> CertificateVerifier {
        CertificateVerifier(trustRoots: try systemTrustRoots.get())
    }

    /// No verification at all: ``verify(chain:serverName:purpose:clock:)`` only parses the leaf.
    ///
    /// For tests. The peer is not authenticated, so anyone on the path can impersonate it.
    public static func insecureNoVerification(_ acknowledgement: InsecureVerificationAcknowledgement) -> CertificateVerifier {
        CertificateVerifier(insecure: true)
    }

    /// True for a verifier made by ``insecureNoVerification(_:)``.
    public var isInsecure: Bool { insecure }

    /// Verifies `chain` (DER, leaf first, as received in a TLS Certificate message) and returns
    /// the parsed leaf.
    ///
    /// Runs synchronously on the calling thread (it never waits on the Swift concurrency pool).
    ///
    /// - Parameters:
    ///   - chain: The DER certificates, leaf first; the order of the intermediates does not matter.
    ///   - serverName: The name the client asked for (DNS name or IP literal), or nil to skip the
    ///     name check (client certificates).
    ///   - purpose: The extended key usage required of the leaf (and of intermediates that restrict it).
    ///   - clock: The time the validity periods are checked against.
    /// - Throws: ``TLSError`` with alert `bad_certificate` when the chain is empty, too long or
    ///   unparsable, the leaf is not valid for `serverName` ("certificate is not valid for NAME"),
    ///   or another policy fails; `certificate_expired` when a certificate is expired or not yet
    ///   valid; `unknown_ca` when no path leads to a trust root. An insecure verifier only parses
    ///   the leaf.
    public func verify(chain: [[UInt8]], serverName: String?, purpose: Purpose, clock: WallClock) throws(TLSError)
        -> X509.Certificate
    {
        guard let leafDER = chain.first else {
            throw TLSError(.badCertificate, "the peer sent no certificate")
        }
        let leaf: X509.Certificate
        do {
            leaf = try X509.Certificate(derEncoded: leafDER)
        } catch {
            throw TLSError(.badCertificate, "the peer's certificate could not be parsed: \(error)")
        }
        if insecure { return leaf }

        guard chain.count <= Self.maximumChainLength else {
            throw TLSError(.badCertificate, "the peer sent \(chain.count) certificates; at most \(Self.maximumChainLength) are accepted")
        }
        var intermediates: [X509.Certificate] = []
        for (index, der) in chain.enumerated().dropFirst() {
            do {
                intermediates.append(try X509.Certificate(derEncoded: der))
            } catch {
                throw TLSError(.badCertificate, "certificate \(index) of the peer's chain could not be parsed: \(error)")
            }
        }

        let policy = ChainPolicy(
            validationTime: clock.millisecondsSinceEpoch(), serverName: serverName, purpose: purpose)
        for ext in leaf.extensions where ext.critical && !policy.verifyingCriticalExtensions.contains(ext.oid) {
            throw TLSError(.badCertificate, "the peer's certificate has an unsupported critical extension \(ext.oid)")
        }

        let roots = rootStore
        let intermediateStore = CertificateStore(intermediates)
        let result = SynchronousTaskRunner<CertificateValidationResult>.run {
            var verifier = Verifier(rootCertificates: roots) { policy }
            return await verifier.validate(leaf: leaf, intermediates: intermediateStore)
        }
        switch result {
        case .validCertificate:
            return leaf
        case .couldNotValidate(let failures):
            throw Self.error(for: failures.map(\.policyFailureReason.description), leaf: leaf)
        }
    }

    /// Picks the alert for a failed validation. Every candidate path failed; a name mismatch
    /// (a property of the leaf, so it holds for every path) wins, then expiry, then any other
    /// policy failure; with no candidate path at all the issuer is unknown.
    private static func error(for reasons: [String], leaf: X509.Certificate) -> TLSError {
        if let reason = reasons.lazy.compactMap({ ChainPolicy.Failure.name.strip($0) }).first {
            return TLSError(.badCertificate, reason)
        }
        if let reason = reasons.lazy.compactMap({ ChainPolicy.Failure.expired.strip($0) }).first {
            return TLSError(.certificateExpired, reason)
        }
        if let reason = reasons.first {
            return TLSError(.badCertificate, ChainPolicy.Failure.other.strip(reason) ?? reason)
        }
        return TLSError(
            .unknownCA,
            "the certificate chain for '\(leaf.subject)' does not lead to a trusted root (issuer: '\(leaf.issuer)')")
    }

    // MARK: - System roots

    private static let systemTrustRoots: Result<[X509.Certificate], QuiverError> = loadSystemTrustRoots()

    private static let systemBundlePaths = [
        "/etc/ssl/certs/ca-certificates.crt",  // Debian, Ubuntu, Alpine, Arch
        "/etc/pki/tls/certs/ca-bundle.crt",  // Fedora, RHEL
        "/etc/ssl/ca-bundle.pem",  // openSUSE
        "/etc/ssl/cert.pem",  // macOS, BSDs
    ]

    private static func loadSystemTrustRoots() -> Result<[X509.Certificate], QuiverError> {
        for path in systemBundlePaths {
            guard let text = try? CertificateFiles.readText(path, what: "trust bundle") else { continue }
            let roots = parseCertificates(text)
            if !roots.isEmpty { return .success(roots) }
        }
        var roots: [X509.Certificate] = []
        var seen: Set<X509.Certificate> = []
        for path in CertificateFiles.files(in: "/etc/ssl/certs", suffixes: [".pem", ".crt"]) {
            guard let text = try? CertificateFiles.readText(path, what: "trust root") else { continue }
            for root in parseCertificates(text) where seen.insert(root).inserted {
                roots.append(root)
            }
        }
        guard !roots.isEmpty else {
            return .failure(
                QuiverError(
                    .configuration,
                    "no system trust roots found in \(systemBundlePaths[0]) or /etc/ssl/certs; install the ca-certificates package or pass trust roots explicitly"
                ))
        }
        return .success(roots)
    }

    /// The certificates in PEM text; blocks that do not parse are skipped.
    ///
    /// The markers are found in the UTF-8 bytes: Foundation's `String.range(of:)` took 60
    /// million instructions for Debian's bundle (callgrind), 20 ms of a server's first
    /// handshake or a client's start.
    private static func parseCertificates(_ text: String) -> [X509.Certificate] {
        let bytes = Array(text.utf8)
        let begin = Array("-----BEGIN CERTIFICATE-----".utf8)
        let end = Array("-----END CERTIFICATE-----".utf8)
        var certificates: [X509.Certificate] = []
        var cursor = 0
        while let start = firstIndex(of: begin, in: bytes, from: cursor),
              let stop = firstIndex(of: end, in: bytes, from: start + begin.count)
        {
            cursor = stop + end.count
            if let document = try? PEMDocument(pemString: String(decoding: bytes[start..<cursor], as: UTF8.self)),
                document.discriminator == "CERTIFICATE",
                let certificate = try? X509.Certificate(derEncoded: document.derBytes)
            {
                certificates.append(certificate)
            }
        }
        return certificates
    }

    /// Where `needle` first occurs in `haystack` at or after `start`.
    private static func firstIndex(of needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard let first = needle.first, haystack.count >= needle.count else { return nil }
        var index = start
        while index <= haystack.count - needle.count {
            if haystack[index] == first, haystack[index..<(index + needle.count)].elementsEqual(needle) { return index }
            index += 1
        }
        return nil
    }
}

/// The policy run on every candidate path: validity period, RFC 5280, extended key usage and
/// server identity, in that order. Failure reasons are tagged so the verifier can choose the alert.
private struct ChainPolicy: VerifierPolicy, Sendable {
    enum Failure: String {
        case expired = "\u{1}quiver-expired\u{1}"
        case name = "\u{1}quiver-name\u{1}"
        case other = "\u{1}quiver-other\u{1}"

        func tag(_ reason: String) -> String { rawValue + reason }

        /// The reason without the tag, if it carries this tag.
        func strip(_ reason: String) -> String? {
            reason.hasPrefix(rawValue) ? String(reason.dropFirst(rawValue.count)) : nil
        }
    }

    let verifyingCriticalExtensions: [ASN1ObjectIdentifier]
    private let core = RFC5280Policy.withValidityCheckDisabled()
    private var identity: ServerIdentityPolicy?
    private let serverName: String?
    private let validationTime: UInt64
    private let purpose: CertificateVerifier.Purpose

    init(validationTime: UInt64, serverName: String?, purpose: CertificateVerifier.Purpose) {
        self.validationTime = validationTime
        self.serverName = serverName
        self.purpose = purpose
        if let serverName {
            var host = serverName
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            if SelfSignedCertificate.ipAddressBytes(host) != nil {
                identity = ServerIdentityPolicy(serverHostname: nil, serverIP: host)
            } else {
                identity = ServerIdentityPolicy(serverHostname: host, serverIP: nil)
            }
        }
        verifyingCriticalExtensions =
            core.verifyingCriticalExtensions + [.X509ExtensionID.subjectAlternativeName, .X509ExtensionID.extendedKeyUsage]
    }

    mutating func chainMeetsPolicyRequirements(chain: UnverifiedCertificateChain) -> PolicyEvaluationResult {
        let now = Date(timeIntervalSince1970: Double(validationTime) / 1000)
        for certificate in chain {
            if now < certificate.notValidBefore {
                let subject = certificate.subject.description
                let date = certificate.notValidBefore.description
                return .failsToMeetPolicy(reason: Failure.expired.tag("certificate '\(subject)' is not valid before \(date)"))
            }
            if now > certificate.notValidAfter {
                let subject = certificate.subject.description
                let date = certificate.notValidAfter.description
                return .failsToMeetPolicy(reason: Failure.expired.tag("certificate '\(subject)' expired at \(date)"))
            }
        }
        // A one-certificate path is a trust root presented as the leaf (a pinned self-signed
        // certificate, such as SelfSignedCertificate makes): trusted as is, without requiring
        // CA:true of it, as Go and OpenSSL do. Longer paths get the full RFC 5280 checks.
        if chain.count > 1, case .failsToMeetPolicy(let reason) = core.chainMeetsPolicyRequirements(chain: chain) {
            let text = reason.description
            return .failsToMeetPolicy(reason: Failure.other.tag(text))
        }
        // Extended key usage: the leaf, and any intermediate that restricts it, must allow the purpose.
        let required: ExtendedKeyUsage.Usage = purpose == .serverAuthentication ? .serverAuth : .clientAuth
        for certificate in chain.count > 1 ? Array(chain.dropLast()) : Array(chain) {
            let usages: ExtendedKeyUsage?
            do {
                usages = try certificate.extensions.extendedKeyUsage
            } catch {
                let text = "certificate '\(certificate.subject)' has a malformed extended key usage: \(error)"
                return .failsToMeetPolicy(reason: Failure.other.tag(text))
            }
            if let usages, !usages.contains(required), !usages.contains(.any) {
                let text = "certificate '\(certificate.subject)' is not valid for \(required) (extended key usage: \(usages))"
                return .failsToMeetPolicy(reason: Failure.other.tag(text))
            }
        }
        if var identity, let serverName {
            let result = identity.chainMeetsPolicyRequirements(chain: chain)
            self.identity = identity
            if case .failsToMeetPolicy = result {
                let names = Self.describeNames(of: chain.leaf)
                let text = "certificate is not valid for \(serverName) (it is valid for \(names))"
                return .failsToMeetPolicy(reason: Failure.name.tag(text))
            }
        }
        return .meetsPolicy
    }

    /// The names a certificate is valid for, for error messages.
    private static func describeNames(of certificate: X509.Certificate) -> String {
        var names: [String] = []
        if let alternativeNames = try? certificate.extensions.subjectAlternativeNames {
            for name in alternativeNames {
                switch name {
                case .dnsName(let dns): names.append(dns)
                case .ipAddress(let bytes): names.append(Self.describeAddress(Array(bytes.bytes)))
                default: continue
                }
            }
        } else {
            names.append("subject '\(certificate.subject)'")
        }
        return names.isEmpty ? "no names" : names.joined(separator: ", ")
    }

    private static func describeAddress(_ bytes: [UInt8]) -> String {
        let family: Int32
        switch bytes.count {
        case 4: family = AF_INET
        case 16: family = AF_INET6
        default: return "IP \(bytes)"
        }
        var buffer = [CChar](repeating: 0, count: 64)
        let ok = bytes.withUnsafeBytes { raw in
            inet_ntop(family, raw.baseAddress, &buffer, socklen_t(buffer.count)) != nil
        }
        guard ok else { return "IP \(bytes)" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
