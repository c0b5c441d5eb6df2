public import QuiverCore

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
    }

    private static func describe(_ chain: CertificateChain) -> String {
        guard let leaf = chain.certificates.first else { return "empty chain" }
        return "subject \(leaf.subject)"
    }
}
