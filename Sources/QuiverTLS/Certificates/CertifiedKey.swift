public import QuiverCore
import X509

/// A certificate chain together with the private key of its leaf, checked to belong together.
///
/// A server presents one of these; a key that does not match its certificate is refused when
/// the value is made, so the mistake shows at configuration time instead of as a failed
/// CertificateVerify at every client.
///
/// ```swift
/// let identity = try CertifiedKey(certificateChainFile: "fullchain.pem", privateKeyFile: "key.pem")
/// let config = TLSConfiguration.server(identity, alpn: ["h2"])
/// ```
public struct CertifiedKey: Sendable {
    /// The certificate chain, leaf first.
    public let chain: CertificateChain
    /// The private key of the chain's leaf certificate.
    public let key: PrivateKey
    /// The DNS names of the leaf's subjectAltName extension, lowercased (wildcards such as
    /// `*.example.com` as written): the names this certificate is chosen for by SNI.
    public let dnsNames: [String]

    /// Pairs `chain` with `key`.
    ///
    /// - Throws: ``QuiverError`` with code `.certificate` when `key`'s public half is not the
    ///   public key of the chain's leaf certificate.
    public init(chain: CertificateChain, key: PrivateKey) throws(QuiverError) {
        guard let leaf = chain.certificates.first, key.matches(leaf) else {
            throw QuiverError(
                .certificate,
                "the private key (\(key.algorithm)) does not match the certificate (\(Self.describe(chain)))")
        }
        self.chain = chain
        self.key = key
        dnsNames = Self.dnsNames(of: leaf)
    }

    /// Loads a PEM certificate chain (leaf first) and the PEM private key of its leaf.
    ///
    /// - Throws: ``QuiverError`` with code `.configuration` when a file cannot be read, or
    ///   `.certificate` when a file does not parse or when the key does not match the
    ///   certificate; that reason names both files.
    public init(certificateChainFile: String, privateKeyFile: String) throws(QuiverError) {
        let chain = try CertificateChain(pemFile: certificateChainFile)
        let key = try PrivateKey(pemFile: privateKeyFile)
        guard let leaf = chain.certificates.first, key.matches(leaf) else {
            throw QuiverError(
                .certificate,
                "the private key in '\(privateKeyFile)' (\(key.algorithm)) does not match the certificate in '\(certificateChainFile)' (\(Self.describe(chain)))")
        }
        self.chain = chain
        self.key = key
        dnsNames = Self.dnsNames(of: leaf)
    }

    /// How well this certificate's names match `serverName` (case-insensitive): an exact
    /// name, a wildcard (`*.example.com` covers exactly one further label, as in
    /// `www.example.com`, not `example.com` or `a.b.example.com`), or not at all.
    func match(_ serverName: String) -> NameMatch {
        var name = serverName.lowercased()
        if name.hasSuffix(".") { name.removeLast() }
        guard !name.isEmpty else { return .noMatch }
        if dnsNames.contains(name) { return .exact }
        guard let dot = name.firstIndex(of: "."), dot != name.startIndex else { return .noMatch }
        let wildcard = "*" + name[dot...]
        return dnsNames.contains(wildcard) ? .wildcard : .noMatch
    }

    /// The result of ``match(_:)``, best first.
    enum NameMatch {
        case exact, wildcard, noMatch
    }

    private static func dnsNames(of leaf: X509.Certificate) -> [String] {
        guard let names = try? leaf.extensions.subjectAlternativeNames else { return [] }
        return names.compactMap { name in
            guard case .dnsName(let dns) = name else { return nil }
            var lowered = dns.lowercased()
            if lowered.hasSuffix(".") { lowered.removeLast() }
            return lowered
        }
    }

    private static func describe(_ chain: CertificateChain) -> String {
        guard let leaf = chain.certificates.first else { return "empty chain" }
        return "subject \(leaf.subject)"
    }
}
