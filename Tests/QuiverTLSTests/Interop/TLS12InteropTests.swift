// TLS 1.2 interop, both roles: OpenSSL 3 (`s_client`/`s_server -tls1_2`), GnuTLS 3
// (`gnutls-cli`/`gnutls-serv` with a TLS 1.2 priority) and Python's `ssl` (maximum_version
// TLSv1_2), over loopback TCP.
import Foundation
import QuiverCore
import QuiverTLS
import QuiverTLSSocket
import QuiverTestSupport
import Testing

/// The identity serving `suite`: ECDSA P-256 for the ECDSA suites, RSA-2048 for the RSA ones.
private func identity(for suite: CipherSuite) throws -> TestIdentity {
    try TestIdentity.localhost(CipherSuite.ecdsaTLS12.contains(suite) ? .ecdsaP256 : .rsa(bits: 2048))
}

extension CipherSuite {
    static let ecdsaTLS12: [CipherSuite] = [.ecdheECDSAWithAES128GCMSHA256, .ecdheECDSAWithAES256GCMSHA384, .ecdheECDSAWithChaCha20Poly1305SHA256]
}

/// A client configuration that speaks TLS 1.2 only.
private func tls12Client(_ identity: TestIdentity, alpn: [String] = []) -> TLSConfiguration {
    var configuration = TLSConfiguration.client(alpn: alpn, verifier: identity.verifier)
    configuration.maximumVersion = .tls12
    return configuration
}

@Suite("Interop TLS 1.2: openssl s_client -tls1_2 → Quiver server")
struct OpenSSLClientTLS12InteropTests {
    let directory: TemporaryDirectory

    init() throws { directory = try TemporaryDirectory() }

    /// One s_client connection echoing random data; returns our server's report and s_client's
    /// `-brief` summary.
    private func echoOnce(_ identity: TestIdentity, _ configure: (inout TLSConfiguration) -> Void = { _ in }, _ extra: [String] = [])
        throws -> (report: ServerConnectionReport, summary: String)
    {
        let caFile = try identity.write(to: directory, as: "server-\(identity.key.algorithm)").cert
        var configuration = try TLSConfiguration.server(chain: identity.chain, key: identity.key)
        configure(&configuration)
        let server = try InteropServer(configuration)
        let client = try SClient(port: server.port, caFile: caFile, version: "-tls1_2", ["-nocommands"] + extra)
        defer { client.process.kill() }
        let payload = Interop.randomBytes(40_000)  // three records
        do {
            try client.echo(payload)
        } catch {
            let reports = try? server.waitForConnections(1, timeout: 1)
            throw InteropError("\(error)\nour server: \(reports.map { "\($0)" } ?? "no report")")
        }
        let report = try server.waitForConnections(1)[0]
        #expect(report.received == payload)
        #expect(report.closedCleanly, "\(report.error ?? "")")
        let summary = client.process.stderrText
        #expect(summary.contains("Protocol version: TLSv1.2"), "\(summary)")
        #expect(summary.contains("Verification: OK"))
        return (report, summary)
    }

    @Test(Peer.requires(.openssl), arguments: CipherSuite.supportedTLS12)
    func cipherSuite(_ suite: CipherSuite) throws {
        let (report, summary) = try echoOnce(try identity(for: suite), { _ in }, ["-cipher", suite.opensslName])
        #expect(report.cipherSuite == suite)
        #expect(summary.contains("Ciphersuite: \(suite.opensslName)"))
    }

    @Test("server key types and signature schemes (RSA-PSS, RSA PKCS#1, ECDSA, Ed25519)", Peer.requires(.openssl), arguments: [
        (PrivateKey.Algorithm.rsa(bits: 2048), "RSA-PSS+SHA256", "RSA-PSS"), (.rsa(bits: 2048), "RSA+SHA256", "RSA"),
        (.ecdsaP384, "ECDSA+SHA384", "ECDSA"), (.ecdsaP521, "ECDSA+SHA512", "ECDSA"), (.ed25519, "ed25519", "ed25519"),
    ])
    func serverKey(_ algorithm: PrivateKey.Algorithm, sigalgs: String, shown: String) throws {
        let (report, summary) = try echoOnce(try TestIdentity.localhost(algorithm), { _ in }, ["-sigalgs", sigalgs])
        #expect(report.handshakeCompleted)
        #expect(summary.contains("Signature type: \(shown)\n"), "\(summary)")
    }

    /// The server picks the group (its own order); s_client also lists P-256, the curve of the
    /// server's ECDSA key, which a TLS 1.2 client must support (RFC 8422 §5.3).
    @Test(Peer.requires(.openssl), arguments: [NamedGroup.x25519, .secp256r1, .secp384r1, .secp521r1])
    func group(_ group: NamedGroup) throws {
        let (report, _) = try echoOnce(try TestIdentity.localhost(.ecdsaP256), { $0.groups = [group] }, ["-groups", group == .secp256r1 ? "P-256" : "\(group.opensslName):P-256"])
        #expect(report.group == group)
    }

    @Test("an ECDSA certificate on a curve the client did not list is not used (RFC 8422 §5.3)", Peer.requires(.openssl))
    func certificateCurve() throws {
        // Only the P-384 certificate fits a client listing X25519 and P-384.
        let p256 = try TestIdentity.localhost(.ecdsaP256)
        let p384 = try TestIdentity.localhost(.ecdsaP384)
        let exactName = try CertifiedKey(chain: p256.chain, key: p256.key)
        let (report, _) = try echoOnce(p384, { $0.sniCertificates = [exactName] }, ["-groups", "X25519:P-384"])
        #expect(report.handshakeCompleted)
    }

    @Test("ALPN and SNI", Peer.requires(.openssl))
    func alpn() throws {
        let (report, _) = try echoOnce(try TestIdentity.localhost(.ecdsaP256), { $0.alpn = ["echo"] }, ["-alpn", "h2,echo"])
        #expect(report.alpn == "echo" && report.serverName == "localhost")
    }

    @Test("client certificate, required and verified", Peer.requires(.openssl), arguments: [PrivateKey.Algorithm.ecdsaP256, .rsa(bits: 2048)])
    func clientCertificate(_ algorithm: PrivateKey.Algorithm) throws {
        let clientIdentity = try TestIdentity.localhost(algorithm, role: "client")
        let files = try clientIdentity.write(to: directory, as: "client-\(algorithm)")
        let (report, _) = try echoOnce(try TestIdentity.localhost(.ecdsaP256), {
            $0.clientAuthentication = .required
            $0.certificateVerifier = clientIdentity.verifier
        }, ["-cert", files.cert, "-key", files.key])
        #expect(report.peerCertificates == 1)
    }

    @Test("resumption with our TLS 1.2 ticket: -sess_out then -sess_in, extended master secret both times", Peer.requires(.openssl))
    func resumption() throws {
        let identity = try TestIdentity.localhost(.ecdsaP256)
        let caFile = try identity.write(to: directory, as: "server").cert
        let server = try InteropServer(try .server(chain: identity.chain, key: identity.key))
        let session = directory.path + "/session12.pem"
        let first = try SClient(port: server.port, caFile: caFile, brief: false, version: "-tls1_2", ["-sess_out", session])
        defer { first.process.kill() }
        try first.echo(Array(Interop.randomHexLine().utf8), exact: false)
        #expect(first.process.stdoutText.contains("New, TLSv1.2"))
        #expect(first.process.stdoutText.contains("TLS session ticket lifetime hint: 7200"))
        #expect(first.process.stdoutText.contains("Extended master secret: yes"))

        let second = try SClient(port: server.port, caFile: caFile, brief: false, version: "-tls1_2", ["-sess_in", session])
        defer { second.process.kill() }
        try second.echo(Array(Interop.randomHexLine().utf8), exact: false)
        #expect(second.process.stdoutText.contains("Reused, TLSv1.2"), "\(second.process.transcript)")
        #expect(second.process.stdoutText.contains("Extended master secret: yes"))

        let reports = try server.waitForConnections(2)
        #expect(!reports[0].isResumed && reports[1].isResumed)
        #expect(reports.allSatisfy { $0.closedCleanly })
    }

    @Test("renegotiation ('R') is refused with no_renegotiation", Peer.requires(.openssl))
    func renegotiationRefused() throws {
        let identity = try TestIdentity.localhost(.ecdsaP256)
        let caFile = try identity.write(to: directory, as: "server").cert
        let server = try InteropServer(try .server(chain: identity.chain, key: identity.key))
        let client = try SClient(port: server.port, caFile: caFile, brief: false, version: "-tls1_2", [])
        defer { client.process.kill() }
        let line = Interop.randomHexLine()
        client.process.write(line)
        try client.process.waitForStdout(containing: line)
        client.process.write("R\n")
        try client.process.waitForStderr(containing: "no renegotiation")
        #expect(try server.waitForConnections(1)[0].handshakeCompleted)
    }

    @Test("TLS_FALLBACK_SCSV to a server that speaks TLS 1.3 → inappropriate_fallback", Peer.requires(.openssl))
    func fallbackSCSV() throws {
        let identity = try TestIdentity.localhost(.ecdsaP256)
        let caFile = try identity.write(to: directory, as: "server").cert
        let server = try InteropServer(try .server(chain: identity.chain, key: identity.key))
        let client = try SClient(port: server.port, caFile: caFile, version: "-tls1_2", ["-fallback_scsv"])
        defer { client.process.kill() }
        client.process.closeInput()
        _ = try client.process.waitForExit()
        #expect(client.process.stderrText.contains("inappropriate fallback"), "\(client.process.transcript)")
        #expect(try server.waitForConnections(1)[0].tlsError?.alert == .inappropriateFallback)
    }

    @Test("a server configured TLS 1.3-only refuses s_client -tls1_2 with protocol_version", Peer.requires(.openssl))
    func minimumVersion() throws {
        let identity = try TestIdentity.localhost(.ecdsaP256)
        let caFile = try identity.write(to: directory, as: "server").cert
        var configuration = try TLSConfiguration.server(chain: identity.chain, key: identity.key)
        configuration.minimumVersion = .tls13
        let server = try InteropServer(configuration)
        let client = try SClient(port: server.port, caFile: caFile, version: "-tls1_2", [])
        defer { client.process.kill() }
        client.process.closeInput()
        _ = try client.process.waitForExit()
        #expect(client.process.stderrText.contains("protocol version"), "\(client.process.transcript)")
        #expect(try server.waitForConnections(1)[0].tlsError?.alert == .protocolVersion)
    }
}

@Suite("Interop TLS 1.2: Quiver client → openssl s_server -tls1_2")
struct OpenSSLServerTLS12InteropTests {
    let directory: TemporaryDirectory

    init() throws { directory = try TemporaryDirectory() }

    /// Fetches s_server's `-www` status page over `client` and checks it reports TLS 1.2.
    private func statusPage(_ client: InteropClient) throws -> String {
        try client.connection.write(Array("GET / HTTP/1.0\r\n\r\n".utf8))
        let (data, error) = client.readToEnd()
        client.close()
        let page = String(decoding: data, as: UTF8.self)
        guard page.hasPrefix("HTTP/1.0 200 ok") else { throw InteropError("no status page (\(error.map { "\($0)" } ?? "clean close")): \(page)") }
        #expect(error == nil, "s_server closed without close_notify: \(String(describing: error))")
        #expect(page.contains("Protocol  : TLSv1.2"))
        #expect(page.contains("Extended master secret: yes") || !page.contains("Extended master secret"))
        return page
    }

    @Test(Peer.requires(.openssl), arguments: CipherSuite.supportedTLS12)
    func cipherSuite(_ suite: CipherSuite) throws {
        let identity = try identity(for: suite)
        let server = try SServer(identity, directory: directory, version: "-tls1_2", ["-cipher", suite.opensslName])
        defer { server.process.kill() }
        let client = try server.connect(tls12Client(identity))
        #expect(client.handshake.negotiatedVersion == .tls12 && client.handshake.cipherSuite == suite)
        #expect(try statusPage(client).contains("Cipher    : \(suite.opensslName)"))
    }

    @Test("our default client (TLS 1.3 and 1.2) gets TLS 1.2 from s_server -tls1_2", Peer.requires(.openssl))
    func defaultClient() throws {
        let identity = try TestIdentity.localhost(.ecdsaP256)
        let server = try SServer(identity, directory: directory, version: "-tls1_2")
        defer { server.process.kill() }
        let client = try server.connect(.client(verifier: identity.verifier))
        #expect(client.handshake.negotiatedVersion == .tls12)
        _ = try statusPage(client)
    }

    @Test("server key types and signature schemes", Peer.requires(.openssl), arguments: [
        (PrivateKey.Algorithm.rsa(bits: 2048), "RSA-PSS+SHA256"), (.rsa(bits: 2048), "RSA+SHA384"), (.ecdsaP384, "ECDSA+SHA384"),
        (.ecdsaP521, "ECDSA+SHA512"), (.ed25519, "ed25519"),
    ])
    func serverKey(_ algorithm: PrivateKey.Algorithm, sigalgs: String) throws {
        let identity = try TestIdentity.localhost(algorithm)
        let server = try SServer(identity, directory: directory, version: "-tls1_2", ["-sigalgs", sigalgs])
        defer { server.process.kill() }
        let client = try server.connect(tls12Client(identity))
        #expect(client.handshake.peerCertificates.first == identity.chain.certificates.first)
        _ = try statusPage(client)
    }

    @Test(Peer.requires(.openssl), arguments: [NamedGroup.x25519, .secp256r1, .secp384r1, .secp521r1])
    func group(_ group: NamedGroup) throws {
        let identity = try TestIdentity.localhost(.ecdsaP256)
        let server = try SServer(identity, directory: directory, version: "-tls1_2", ["-groups", group.opensslName])
        defer { server.process.kill() }
        let client = try server.connect(tls12Client(identity))
        #expect(client.handshake.group == group)
        _ = try statusPage(client)
    }

    @Test("resumption with a ticket from s_server -tls1_2", Peer.requires(.openssl))
    func resumption() throws {
        let identity = try TestIdentity.localhost(.ecdsaP256)
        let server = try SServer(identity, directory: directory, connections: 2, version: "-tls1_2")
        defer { server.process.kill() }
        let first = try server.connect(tls12Client(identity))
        _ = try statusPage(first)
        let ticket = try #require(first.sessionTicket(), "s_server sent no TLS 1.2 ticket")
        #expect(ticket.version == .tls12)
        let second = try server.connect(tls12Client(identity), resumption: ticket)
        #expect(second.handshake.isResumed)
        #expect(try statusPage(second).contains("Reused, TLSv1.2"))
    }

    @Test("client certificate asked for by s_server -Verify", Peer.requires(.openssl), arguments: [PrivateKey.Algorithm.ecdsaP256, .rsa(bits: 2048)])
    func clientCertificate(_ algorithm: PrivateKey.Algorithm) throws {
        let identity = try TestIdentity.localhost(.ecdsaP256)
        let clientIdentity = try TestIdentity.localhost(algorithm, role: "client")
        let ca = try clientIdentity.write(to: directory, as: "client-\(algorithm)").cert
        let server = try SServer(identity, directory: directory, version: "-tls1_2", ["-Verify", "1", "-CAfile", ca])
        defer { server.process.kill() }
        var configuration = tls12Client(identity)
        configuration.certificateChain = clientIdentity.chain
        configuration.privateKey = clientIdentity.key
        let client = try server.connect(configuration)
        #expect(try statusPage(client).contains("Client certificate"))
    }
}

@Suite("Interop TLS 1.2: GnuTLS both ways")
struct GnuTLSTLS12InteropTests {
    let directory: TemporaryDirectory

    init() throws { directory = try TemporaryDirectory() }

    @Test("gnutls-cli → Quiver server", Peer.requires(.gnutlsCLI), arguments: CipherSuite.supportedTLS12)
    func client(_ suite: CipherSuite) throws {
        let identity = try identity(for: suite)
        let caFile = try identity.write(to: directory, as: "server-\(suite.rawValue)").cert
        let server = try InteropServer(try .server(chain: identity.chain, key: identity.key))
        let client = try GnuTLSClient(port: server.port, caFile: caFile, priority: gnutlsPriority(suite, version: .tls12))
        defer { client.process.kill() }
        let line = try client.echoLine()
        let report = try server.waitForConnections(1)[0]
        #expect(report.cipherSuite == suite)
        #expect(report.received == Array(line.utf8))
        #expect(report.closedCleanly, "\(report.error ?? "")")
        #expect(client.process.stdoutText.contains("(TLS1.2"))
    }

    @Test("gnutls-cli without the extended master secret (%NO_SESSION_HASH) → handshake_failure", Peer.requires(.gnutlsCLI))
    func noExtendedMasterSecret() throws {
        let identity = try TestIdentity.localhost(.ecdsaP256)
        let caFile = try identity.write(to: directory, as: "server").cert
        let server = try InteropServer(try .server(chain: identity.chain, key: identity.key))
        let client = try GnuTLSClient(port: server.port, caFile: caFile, priority: gnutlsPriority(version: .tls12) + ":%NO_SESSION_HASH")
        defer { client.process.kill() }
        _ = try client.process.waitForExit()
        #expect(try server.waitForConnections(1)[0].tlsError?.alert == .handshakeFailure)
        #expect(client.process.transcript.contains("Handshake failed"), "\(client.process.transcript)")
    }

    @Test("Quiver client resumes with a ticket from gnutls-serv", Peer.requires(.gnutlsServ))
    func resumption() throws {
        let identity = try TestIdentity.localhost(.ecdsaP256)
        let server = try GnuTLSServer(identity, directory: directory, priority: gnutlsPriority(version: .tls12))
        defer { server.process.kill() }
        let first = try server.connect(tls12Client(identity))
        let payload = Array("first\n".utf8)
        try first.connection.write(payload)
        #expect(try first.read(count: payload.count) == payload)
        let ticket = try #require(first.sessionTicket(), "gnutls-serv sent no TLS 1.2 ticket")
        first.close()
        let second = try server.connect(tls12Client(identity), resumption: ticket)
        #expect(second.handshake.isResumed)
        try second.connection.write(payload)
        #expect(try second.read(count: payload.count) == payload)
        second.close()
    }

    @Test("Quiver client → gnutls-serv", Peer.requires(.gnutlsServ), arguments: CipherSuite.supportedTLS12)
    func server(_ suite: CipherSuite) throws {
        let identity = try identity(for: suite)
        let server = try GnuTLSServer(identity, directory: directory, priority: gnutlsPriority(suite, version: .tls12))
        defer { server.process.kill() }
        let client = try server.connect(tls12Client(identity))
        #expect(client.handshake.cipherSuite == suite)
        let payload = Array((Interop.hex(Interop.randomBytes(15_000)) + "\n").utf8)
        try client.connection.write(payload)
        #expect(try client.read(count: payload.count) == payload)
        client.close()
    }
}

/// Python `ssl` with `maximum_version = TLSv1_2`. Client: two connections, the second
/// offering the first one's session; server: one echo connection. Each prints what `ssl`
/// negotiated as one JSON line.
private let pythonTLS12Script = #"""
import json, os, socket, ssl, sys

role, port, cert = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if role == "client":
    context = ssl.create_default_context(cafile=cert)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["echo"])
    session = None
    for _ in range(2):
        data = os.urandom(20000)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            with context.wrap_socket(sock, server_hostname="localhost", session=session) as tls:
                tls.sendall(data)
                echoed = b""
                while len(echoed) < len(data):
                    chunk = tls.recv(65536)
                    if not chunk:
                        break
                    echoed += chunk
                print(json.dumps({"version": tls.version(), "cipher": tls.cipher()[0], "alpn": tls.selected_alpn_protocol(),
                                  "reused": tls.session_reused, "echo_ok": echoed == data}), flush=True)
                session = tls.session
                tls.unwrap()
else:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, sys.argv[4])
    with socket.create_server(("127.0.0.1", port)) as listener:
        print("listening", flush=True)
        conn, _ = listener.accept()
        with context.wrap_socket(conn, server_side=True) as tls:
            received = 0
            while True:
                chunk = tls.recv(65536)
                if not chunk:
                    break
                received += len(chunk)
                tls.sendall(chunk)
            print(json.dumps({"version": tls.version(), "cipher": tls.cipher()[0], "received": received}), flush=True)
            tls.unwrap()
"""#

@Suite("Interop TLS 1.2: Python ssl both ways")
struct PythonSSLTLS12InteropTests {
    private struct ClientResult: Decodable {
        let version: String
        let cipher: String
        let alpn: String?
        let reused: Bool
        let echo_ok: Bool
    }

    private struct ServerResult: Decodable {
        let version: String
        let cipher: String
        let received: Int
    }

    @Test("Python client: echo and ticket resumption", Peer.requires(.python3))
    func client() throws {
        let directory = try TemporaryDirectory()
        let identity = try TestIdentity.localhost(.ecdsaP256)
        let caFile = try identity.write(to: directory, as: "server").cert
        let script = try directory.write("tls12.py", pythonTLS12Script)
        let server = try InteropServer(.server(chain: identity.chain, key: identity.key, alpn: ["echo"]))
        let python = try PeerProcess(try Peer.python3.executable(), [script, "client", "\(server.port)", caFile])
        defer { python.kill() }
        try #require(try python.waitForExit(timeout: 10) == 0, "\(python.transcript)")
        let results = try python.stdoutText.split(separator: "\n").map { try JSONDecoder().decode(ClientResult.self, from: Data($0.utf8)) }
        try #require(results.count == 2, "\(python.transcript)")
        let reports = try server.waitForConnections(2)
        for (result, report) in zip(results, reports) {
            #expect(result.version == "TLSv1.2" && result.alpn == "echo" && result.echo_ok)
            #expect(report.cipherSuite?.opensslName == result.cipher)
            #expect(report.closedCleanly, "\(report.error ?? "")")
        }
        #expect(!results[0].reused && results[1].reused, "\(python.transcript)")
        #expect(!reports[0].isResumed && reports[1].isResumed)
    }

    @Test("Python server: our client echoes through it", Peer.requires(.python3))
    func server() throws {
        let directory = try TemporaryDirectory()
        let identity = try TestIdentity.localhost(.rsa(bits: 2048))
        let files = try identity.write(to: directory, as: "server")
        let script = try directory.write("tls12.py", pythonTLS12Script)
        let port = try Loopback.freePort()
        let python = try PeerProcess(try Peer.python3.executable(), [script, "server", "\(port)", files.cert, files.key])
        defer { python.kill() }
        try python.waitForStdout(containing: "listening")
        let client = try InteropClient(port: port, peer: python, configuration: .client(verifier: identity.verifier))
        #expect(client.handshake.negotiatedVersion == .tls12)
        let payload = Interop.randomBytes(30_000)
        try client.connection.write(payload)
        #expect(try client.read(count: payload.count) == payload)
        client.close()
        try #require(try python.waitForExit(timeout: 10) == 0, "\(python.transcript)")
        let line = python.stdoutText.split(separator: "\n").last.map(String.init) ?? ""
        let result = try JSONDecoder().decode(ServerResult.self, from: Data(line.utf8))
        #expect(result.version == "TLSv1.2" && result.received == payload.count)
        #expect(client.handshake.cipherSuite?.opensslName == result.cipher)
    }
}
