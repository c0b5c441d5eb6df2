public import QuiverCore

/// How a server treats client certificates.
public enum ClientAuthentication: Sendable, Hashable {
    /// No CertificateRequest is sent.
    case none
    /// A certificate is requested; a client without one may continue.
    case optional
    /// A certificate is required; a client without one gets `certificate_required`.
    case required
}

/// The settings of a TLS 1.3 and TLS 1.2 client or server, shared by many connections.
///
/// Create one with ``client(alpn:verifier:)``, ``server(chain:key:alpn:)`` or
/// ``server(certificateChainFile:privateKeyFile:alpn:)``, adjust fields, then hand it to each ``TLSHandshake``.
/// Defaults are the secure choice; every field has a reason in its comment.
public struct TLSConfiguration: Sendable {
    /// The oldest version accepted over TCP. TLS 1.2 by default, so that the clients and
    /// servers still on it interoperate; `.tls13` refuses TLS 1.2 with `protocol_version`.
    /// QUIC always uses TLS 1.3 (RFC 9001 §4.2) whatever this says.
    public var minimumVersion: TLSVersion = .tls12
    /// The newest version offered or accepted over TCP (`.tls13`; `.tls12` to test TLS 1.2).
    /// A server allowing TLS 1.3 marks a TLS 1.2 ServerHello with the downgrade sentinel, and a
    /// client offering TLS 1.3 refuses a TLS 1.2 ServerHello that carries it (RFC 8446 §4.1.3).
    public var maximumVersion: TLSVersion = .tls13
    /// TLS 1.3 cipher suites, in preference order (a server uses its own order).
    public var cipherSuites: [CipherSuite] = CipherSuite.supported
    /// TLS 1.2 cipher suites, in preference order (a server uses its own order among those its
    /// certificate's key can serve: ECDSA suites need an ECDSA or Ed25519 key, RSA suites an RSA
    /// key). Only ``CipherSuite/supportedTLS12``'s ECDHE AEAD suites are implemented.
    public var tls12CipherSuites: [CipherSuite] = CipherSuite.supportedTLS12
    /// Key-exchange groups, in preference order.
    public var groups: [NamedGroup] = NamedGroup.supported
    /// Client: the groups for which key shares are sent in the first ClientHello. Others
    /// listed in ``groups`` are reachable through HelloRetryRequest.
    public var keyShareGroups: [NamedGroup] = [.x25519]
    /// Signature schemes accepted from the peer in CertificateVerify.
    public var signatureSchemes: [SignatureScheme] = SignatureScheme.supported
    /// ALPN protocol names, in preference order (empty: no ALPN).
    public var alpn: [String] = []
    /// Our certificate chain (required for servers; optional client certificate).
    public var certificateChain: CertificateChain?
    /// The private key of ``certificateChain``'s leaf.
    public var privateKey: PrivateKey?
    /// Server: further certificate chains with their keys, chosen by the `server_name` the
    /// client sends (SNI, RFC 6066 §3); ``certificateChain`` and ``privateKey`` remain the
    /// default for clients that send no name or a name none of these covers.
    ///
    /// A name matches a certificate's subjectAltName DNS names case-insensitively, exactly or
    /// by a wildcard (`*.example.com` covers `www.example.com`, not `example.com` nor
    /// `a.b.example.com`). Exact matches are preferred to wildcards, then list order decides;
    /// among equally good candidates, and then the default, the first whose key can sign with
    /// a scheme the client offers is used (so an ECDSA and an RSA certificate for one name can
    /// serve clients of either kind).
    ///
    /// ```swift
    /// var config = TLSConfiguration.server(try CertifiedKey(certificateChainFile: "default.pem", privateKeyFile: "default.key"))
    /// config.sniCertificates = [
    ///     try CertifiedKey(certificateChainFile: "example.com.pem", privateKeyFile: "example.com.key"),
    ///     try CertifiedKey(certificateChainFile: "wildcard.example.org.pem", privateKeyFile: "wildcard.example.org.key"),
    /// ]
    /// ```
    public var sniCertificates: [CertifiedKey] = []
    /// How the peer's certificates are checked (client: the server's; server: clients').
    public var certificateVerifier: CertificateVerifier
    /// Server: whether to ask for client certificates.
    public var clientAuthentication: ClientAuthentication = .none
    /// Server: the keys sealing session tickets; `nil` disables resumption.
    public var sessionTicketKeys: SessionTicketKeys?
    /// Server: how many tickets to send after each full handshake.
    public var ticketsPerConnection: Int = 2
    /// Server: ticket lifetime in seconds (at most 7 days, RFC 8446 §4.6.1).
    public var ticketLifetime: UInt32 = 7200
    /// Server: the largest amount of 0-RTT data accepted; 0 disables 0-RTT.
    /// QUIC uses 0xffffffff as the "enabled" marker (RFC 9001 §4.6.1).
    public var maxEarlyDataSize: UInt32 = 0
    /// Server: the 0-RTT replay guard; 0-RTT is refused without one.
    public var antiReplay: AntiReplay?
    /// Server: the key authenticating HelloRetryRequest cookies.
    public var cookieKey: [UInt8]
    /// Certificate compression algorithms (RFC 8879), in preference order; Quiver implements
    /// ``CertificateCompressionAlgorithm/zlib`` and ``CertificateCompressionAlgorithm/brotli``
    /// (zlib first by default: every peer that compresses has it). A client offers them in its ClientHello and a
    /// server requesting client certificates in its CertificateRequest; a peer that offered
    /// one of them gets our Certificate compressed. Received CompressedCertificate messages
    /// are decompressed into at most the size an uncompressed Certificate may have (128 KiB).
    /// Empty: no compression either way.
    public var certificateCompressionAlgorithms: [CertificateCompressionAlgorithm] = [.zlib, .brotli]
    /// The largest protected-record plaintext we accept, content type byte and padding
    /// included (RFC 8449 `record_size_limit`; 64...16385, values outside are clamped).
    ///
    /// A server announces it in EncryptedExtensions to a client that sent the extension, and
    /// then refuses larger records with `record_overflow`. A client sends the extension only when
    /// the limit is below the default 16385 (2^14 + 1), so a default ClientHello is unchanged.
    /// Either side always honours the limit its peer announces.
    public var recordSizeLimit: Int = RecordSizeLimit.maximum
    /// DTLS only: the SRTP protection profiles (RFC 5764 §4.1.2 numbers, as
    /// `SRTPProtectionProfile`'s) offered (client) or accepted (server), in preference order;
    /// empty: the `use_srtp` extension is neither sent nor answered. WebRTC peers (SCTP over
    /// DTLS for data channels, RFC 8261) fail a handshake that negotiates none. Quiver does not
    /// run SRTP: an application that does derives its keys with the exporter (label
    /// `EXTRACTOR-dtls_srtp`) for ``TLSHandshake/negotiatedSRTPProfile``.
    public var srtpProtectionProfiles: [SRTPProtectionProfile] = []
    /// Receives NSS key-log lines (`SSLKEYLOGFILE` format) for debugging with Wireshark.
    public var keyLog: (@Sendable (String) -> Void)?
    /// Real time, for certificate validity and ticket ages.
    public var clock: WallClock = .system
    /// Randomness for randoms, session ids and ticket fields.
    public var random: RandomSource = .system

    /// Certificates compressed once for all handshakes of this configuration (and its copies).
    let certificateCompressionCache = CertificateCompressionCache()

    init(verifier: CertificateVerifier) {
        certificateVerifier = verifier
        cookieKey = RandomSource.system.bytes(32)
    }

    /// A client configuration verifying servers with `verifier`.
    public static func client(alpn: [String] = [], verifier: CertificateVerifier) -> TLSConfiguration {
        var c = TLSConfiguration(verifier: verifier)
        c.alpn = alpn
        return c
    }

    /// A server configuration presenting `chain` signed with `key`. Tickets are enabled with a
    /// fresh random ticket key; client certificates, if requested, are checked against the
    /// system roots unless ``certificateVerifier`` is replaced.
    ///
    /// - Throws: ``QuiverError`` with code `.certificate` when `key` is not the private key of
    ///   the chain's leaf certificate (refused here rather than failing every client later).
    public static func server(chain: CertificateChain, key: PrivateKey, alpn: [String] = []) throws(QuiverError) -> TLSConfiguration {
        server(try CertifiedKey(chain: chain, key: key), alpn: alpn)
    }

    /// A server configuration presenting a chain and key already checked to belong together.
    /// See ``server(chain:key:alpn:)``.
    public static func server(_ certifiedKey: CertifiedKey, alpn: [String] = []) -> TLSConfiguration {
        let verifier = (try? CertificateVerifier.system()) ?? CertificateVerifier(trustRoots: [])
        var c = TLSConfiguration(verifier: verifier)
        c.certificateChain = certifiedKey.chain
        c.privateKey = certifiedKey.key
        c.alpn = alpn
        c.sessionTicketKeys = SessionTicketKeys()
        return c
    }

    /// A server configuration loading its chain and key from PEM files (see
    /// ``CertifiedKey/init(certificateChainFile:privateKeyFile:)``).
    ///
    /// ```swift
    /// let config = try TLSConfiguration.server(
    ///     certificateChainFile: "/etc/quiver/fullchain.pem", privateKeyFile: "/etc/quiver/key.pem", alpn: ["h2"])
    /// ```
    ///
    /// - Throws: ``QuiverError`` with code `.configuration` when a file cannot be read, or
    ///   `.certificate` when a file does not parse or the key does not match the certificate
    ///   (the reason then names both files).
    public static func server(certificateChainFile: String, privateKeyFile: String, alpn: [String] = []) throws(QuiverError) -> TLSConfiguration {
        server(try CertifiedKey(certificateChainFile: certificateChainFile, privateKeyFile: privateKeyFile), alpn: alpn)
    }

    // Test hooks: fixed ephemeral keys (RFC 8448 replays them).
    var testClientKeyShare: (@Sendable (NamedGroup) -> KeySharePrivate?)?
    var testServerKeyShare: (@Sendable (NamedGroup) -> KeySharePrivate?)?
}
