import QuiverCore
import QuiverTestSupport
import Testing

@testable import QuiverTLS

/// The server's certificates and keys as configured: refused when they do not belong together.
@Suite("Server certificates and keys")
struct ServerIdentityTests {
    @Test("a key that is not the certificate's is refused when the configuration is built",
          arguments: ["p384", "ed25519", "rsa2048", "other p256"])
    func mismatchedKey(name: String) {
        let others = ["p384": TestPKI.p384, "ed25519": TestPKI.ed25519, "rsa2048": TestPKI.rsa2048, "other p256": TestPKI.clientP256]
        guard let other = others[name] else { return }
        #expect(throws: QuiverError.self) { _ = try TLSConfiguration.server(chain: TestPKI.p256.chain, key: other.key) }
        do {
            _ = try CertifiedKey(chain: TestPKI.p256.chain, key: other.key)
            Issue.record("accepted a mismatched key")
        } catch {
            #expect(error.code == .certificate)
            #expect(error.reason.contains("does not match"))
        }
        #expect((try? CertifiedKey(chain: other.chain, key: other.key)) != nil)
    }

    @Test("a key file that does not match the certificate file: the error names both files")
    func mismatchedFiles() throws {
        let directory = try TemporaryDirectory()
        let cert = try directory.write("server.crt.pem", TestPKI.p256.chain.pemRepresentation)
        let key = try directory.write("other.key.pem", TestPKI.p384.key.pemRepresentation)
        let goodKey = try directory.write("server.key.pem", TestPKI.p256.key.pemRepresentation)
        do {
            _ = try TLSConfiguration.server(certificateChainFile: cert, privateKeyFile: key, alpn: ["echo"])
            Issue.record("accepted a mismatched key file")
        } catch {
            #expect(error.code == .certificate)
            #expect(error.reason.contains(cert) && error.reason.contains(key), "\(error.reason)")
        }
        let config = try TLSConfiguration.server(certificateChainFile: cert, privateKeyFile: goodKey, alpn: ["echo"])
        let pair = StreamPair(client: Configs.client(), server: config).run()
        #expect(pair.isEstablished)
    }
}
