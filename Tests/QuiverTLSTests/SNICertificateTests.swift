import QuiverCore
import Testing

@testable import QuiverTLS

/// Certificate selection by the client's server_name (``TLSConfiguration/sniCertificates``).
@Suite("Certificates chosen by SNI")
struct SNICertificateTests {
    static let fallback = TestPKI.p256
    static let alpha = TestPKI.make(.ecdsaP256, names: ["alpha.example", "www.alpha.example"])
    static let wildcard = TestPKI.make(.ecdsaP256, names: ["*.wild.example"])
    static let exactInWild = TestPKI.make(.ecdsaP256, names: ["exact.wild.example"])
    static let rsaAlpha = TestPKI.make(.rsa(bits: 2048), names: ["alpha.example"])

    static func certified(_ identity: TestPKI.Identity) -> CertifiedKey {
        do { return try CertifiedKey(chain: identity.chain, key: identity.key) } catch {
            preconditionFailure("\(error)")
        }
    }

    static func server(_ sni: [TestPKI.Identity], withDefault: Bool = true) -> TLSConfiguration {
        var config = Configs.server(fallback)
        if !withDefault {
            config.certificateChain = nil
            config.privateKey = nil
        }
        config.sniCertificates = sni.map(certified)
        return config
    }

    /// Runs a handshake for `name` and returns the leaf the server presented (the client trusts all).
    static func presented(_ name: String?, server: TLSConfiguration, schemes: [SignatureScheme]? = nil) -> TLSHandshake? {
        let all = [fallback, alpha, wildcard, exactInWild, rsaAlpha]
        var client = TLSConfiguration.client(alpn: ["echo"], verifier: CertificateVerifier(trustRoots: all.map(\.certificate)))
        if let schemes { client.signatureSchemes = schemes }
        let pair = StreamPair(client: client, server: server, serverName: name).run()
        guard pair.isEstablished else { return nil }
        return pair.client.handshake
    }

    @Test("the names of a certificate are its subjectAltName DNS names, lowercased")
    func names() {
        #expect(Self.certified(Self.alpha).dnsNames == ["alpha.example", "www.alpha.example"])
        #expect(Self.certified(TestPKI.make(.ecdsaP256, names: ["MiXeD.Example"])).dnsNames == ["mixed.example"])
    }

    @Test("an exact name chooses its certificate, case-insensitively", arguments: ["alpha.example", "WWW.Alpha.Example"])
    func exact(name: String) {
        let h = Self.presented(name, server: Self.server([Self.wildcard, Self.alpha]))
        #expect(h?.peerCertificates.first == Self.alpha.certificate)
    }

    @Test("a wildcard covers exactly one more label", arguments: [
        ("a.wild.example", true), ("B-2.WILD.example", true), ("wild.example", false), ("a.b.wild.example", false),
    ])
    func wildcardNames(name: String, covered: Bool) {
        let chosen = Self.certified(Self.wildcard).match(name)
        #expect((chosen == .wildcard) == covered)
    }

    @Test("a wildcard certificate is chosen for a covered name")
    func wildcardHandshake() {
        let h = Self.presented("a.wild.example", server: Self.server([Self.alpha, Self.wildcard]))
        #expect(h?.peerCertificates.first == Self.wildcard.certificate)
    }

    @Test("an exact name wins over a wildcard listed before it")
    func exactBeatsWildcard() {
        let h = Self.presented("exact.wild.example", server: Self.server([Self.wildcard, Self.exactInWild]))
        #expect(h?.peerCertificates.first == Self.exactInWild.certificate)
    }

    @Test("no server_name, or a name nothing covers: the default certificate")
    func fallbackCertificate() {
        let server = Self.server([Self.alpha, Self.wildcard])
        #expect(Self.presented("localhost", server: server)?.peerCertificates.first == Self.fallback.certificate)
        // An IP literal is not sent as SNI (RFC 6066 §3); the default certificate covers 127.0.0.1.
        #expect(Self.presented("127.0.0.1", server: server)?.peerCertificates.first == Self.fallback.certificate)
    }

    @Test("among certificates for one name, the one whose key the client can verify")
    func keyTypeByClientSchemes() {
        let server = Self.server([Self.alpha, Self.rsaAlpha])
        #expect(Self.presented("alpha.example", server: server, schemes: [.rsaPSSRSAESHA256])?.peerCertificates.first == Self.rsaAlpha.certificate)
        #expect(Self.presented("alpha.example", server: server)?.peerCertificates.first == Self.alpha.certificate)
    }

    @Test("a ticket resumes only under the server name it was issued for")
    func ticketBoundToName() throws {
        let server = Self.server([Self.alpha, Self.wildcard])
        let all = [Self.fallback, Self.alpha, Self.wildcard]
        let client = TLSConfiguration.client(alpn: ["echo"], verifier: CertificateVerifier(trustRoots: all.map(\.certificate)))
        let first = StreamPair(client: client, server: server, serverName: "alpha.example").run()
        let ticket = try #require(first.tickets.first)
        let same = StreamPair(client: client, server: server, serverName: "ALPHA.example", resumption: ticket).run()
        #expect(same.isEstablished && same.server.handshake.isResumed)
        let other = StreamPair(client: client, server: server, serverName: "a.wild.example", resumption: ticket).run()
        #expect(other.isEstablished && !other.server.handshake.isResumed)
        #expect(other.client.handshake.peerCertificates.first == Self.wildcard.certificate)
        let none = StreamPair(client: client, server: server, serverName: nil, resumption: ticket).run()
        #expect(!none.server.handshake.isResumed)
    }

    @Test("only SNI certificates and an unknown name → unrecognized_name")
    func unrecognizedName() {
        let client = TLSConfiguration.client(alpn: ["echo"], verifier: CertificateVerifier(trustRoots: [Self.alpha.certificate]))
        let pair = StreamPair(client: client, server: Self.server([Self.alpha], withDefault: false), serverName: "other.example").run()
        #expect(pair.serverError?.alert == .unrecognizedName)
        let ok = StreamPair(client: client, server: Self.server([Self.alpha], withDefault: false), serverName: "alpha.example").run()
        #expect(ok.isEstablished)
    }
}
