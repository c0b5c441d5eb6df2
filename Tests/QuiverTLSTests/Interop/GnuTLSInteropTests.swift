// Interop with GnuTLS 3 (`gnutls-cli` / `gnutls-serv`) over loopback TCP.
import Foundation
import QuiverCore
import QuiverTLS
import QuiverTLSSocket
import QuiverTestSupport
import Testing

/// One version (TLS 1.3 unless told), optionally narrowed to one cipher or group.
func gnutlsPriority(_ suite: CipherSuite? = nil, _ group: NamedGroup? = nil, version: TLSVersion = .tls13) -> String {
    var priority = "NORMAL:-VERS-ALL:+VERS-\(version == .tls13 ? "TLS1.3" : "TLS1.2")"
    if let suite { priority += ":-CIPHER-ALL:+\(suite.gnutlsName)" }
    if let group { priority += ":-GROUP-ALL:+\(group.gnutlsName)" }
    return priority
}

/// Runs `gnutls-cli` against an ``InteropServer``; its stdin is piped.
struct GnuTLSClient {
    let process: PeerProcess

    init(port: UInt16, caFile: String, priority: String = gnutlsPriority(), serverName: String = "localhost", _ extra: [String] = []) throws {
        process = try PeerProcess(try Peer.gnutlsCLI.executable(), [
            "-p", "\(port)", "--x509cafile", caFile, "--priority", priority,
            "--sni-hostname", serverName, "--verify-hostname", serverName,
        ] + extra + ["127.0.0.1"])
    }

    /// Sends a random hex line, waits for its echo, closes stdin and expects exit 0. Returns the line.
    @discardableResult
    func echoLine() throws -> String {
        let line = Interop.randomHexLine()
        process.write(line)
        try process.waitForStdout(containing: line)
        process.closeInput()
        let status = try process.waitForExit()
        guard status == 0 else { throw InteropError("gnutls-cli exited with \(status)\n\(process.transcript)") }
        return line
    }
}

@Suite("Interop: gnutls-cli → Quiver server")
struct GnuTLSClientInteropTests {
    let directory: TemporaryDirectory
    let identity: TestIdentity
    let caFile: String

    init() throws {
        directory = try TemporaryDirectory()
        identity = try TestIdentity.localhost(.ecdsaP256)
        caFile = try identity.write(to: directory, as: "server").cert
    }

    private func echo(_ configuration: TLSConfiguration, caFile: String? = nil, priority: String = gnutlsPriority(),
                      _ extra: [String] = []) throws -> ServerConnectionReport {
        let server = try InteropServer(configuration)
        let client = try GnuTLSClient(port: server.port, caFile: caFile ?? self.caFile, priority: priority, extra)
        defer { client.process.kill() }
        let line: String
        do {
            line = try client.echoLine()
        } catch {
            let reports = try? server.waitForConnections(1, timeout: 1)
            throw InteropError("\(error)\nour server: \(reports.map { "\($0)" } ?? "no report")")
        }
        let report = try server.waitForConnections(1)[0]
        #expect(report.received == Array(line.utf8))
        #expect(report.closedCleanly, "\(report.error ?? "")")
        #expect(client.process.stdoutText.contains("(TLS1.3"))
        return report
    }

    @Test(Peer.requires(.gnutlsCLI))
    func echo() throws {
        let report = try echo(.server(chain: identity.chain, key: identity.key))
        #expect(report.serverName == "localhost")
    }

    @Test(Peer.requires(.gnutlsCLI), arguments: CipherSuite.supported)
    func cipherSuite(_ suite: CipherSuite) throws {
        let report = try echo(.server(chain: identity.chain, key: identity.key), priority: gnutlsPriority(suite))
        #expect(report.cipherSuite == suite)
    }

    @Test(Peer.requires(.gnutlsCLI), arguments: [NamedGroup.x25519, .secp256r1, .secp384r1, .secp521r1])
    func group(_ group: NamedGroup) throws {
        let report = try echo(.server(chain: identity.chain, key: identity.key), priority: gnutlsPriority(nil, group))
        #expect(report.group == group)
    }

    @Test(Peer.requires(.gnutlsCLI), arguments: [PrivateKey.Algorithm.rsa(bits: 2048), .ecdsaP384, .ecdsaP521, .ed25519])
    func serverCertificate(_ algorithm: PrivateKey.Algorithm) throws {
        let identity = try TestIdentity.localhost(algorithm)
        let caFile = try identity.write(to: directory, as: "server-\(algorithm)").cert
        let report = try echo(.server(chain: identity.chain, key: identity.key), caFile: caFile)
        #expect(report.handshakeCompleted)
    }

    @Test("record_size_limit with gnutls-cli --recordsize=512: negotiated, handshake and echo complete", Peer.requires(.gnutlsCLI))
    func recordSizeLimit() throws {
        let report = try echo(.server(chain: identity.chain, key: identity.key), ["--recordsize=512"])
        let limit = try #require(report.peerRecordSizeLimit)
        #expect(limit >= 512 && limit <= 513)
        #expect(report.handshakeCompleted)
    }

    @Test("SNI: gnutls-cli --sni-hostname gets and verifies the certificate for that name", Peer.requires(.gnutlsCLI),
          arguments: ["alpha.example", "b.wild.example", "localhost"])
    func sniCertificate(_ name: String) throws {
        let alpha = try SelfSignedCertificate.generate(names: ["alpha.example"], algorithm: .ed25519)
        let wild = try SelfSignedCertificate.generate(names: ["*.wild.example"])
        var configuration = try TLSConfiguration.server(chain: identity.chain, key: identity.key)
        configuration.sniCertificates = [try CertifiedKey(chain: alpha.chain, key: alpha.key), try CertifiedKey(chain: wild.chain, key: wild.key)]
        let bundle = try directory.write(
            "sni-\(name).pem", identity.chain.pemRepresentation + alpha.chain.pemRepresentation + wild.chain.pemRepresentation)
        let server = try InteropServer(configuration)
        let client = try GnuTLSClient(port: server.port, caFile: bundle, serverName: name)
        defer { client.process.kill() }
        try client.echoLine()
        let report = try server.waitForConnections(1)[0]
        #expect(report.serverName == name)
        let subject = name == "localhost" ? "CN=localhost" : name.hasSuffix("wild.example") ? "CN=*.wild.example" : "CN=alpha.example"
        #expect(client.process.stdoutText.contains("subject `\(subject)'"), "\(client.process.stdoutText)")
    }

    @Test("HelloRetryRequest: gnutls-cli shares X25519 and P-384, server only takes P-256", Peer.requires(.gnutlsCLI))
    func helloRetryRequest() throws {
        var configuration = try TLSConfiguration.server(chain: identity.chain, key: identity.key)
        configuration.groups = [.secp256r1]
        let priority = gnutlsPriority() + ":-GROUP-ALL:+GROUP-X25519:+GROUP-SECP384R1:+GROUP-SECP256R1"
        let report = try echo(configuration, priority: priority)
        #expect(report.didHelloRetry)
        #expect(report.group == .secp256r1)
    }

    @Test(Peer.requires(.gnutlsCLI))
    func clientCertificate() throws {
        let clientIdentity = try TestIdentity.localhost(.ecdsaP256, role: "client")
        let files = try clientIdentity.write(to: directory, as: "client")
        var configuration = try TLSConfiguration.server(chain: identity.chain, key: identity.key)
        configuration.clientAuthentication = .required
        configuration.certificateVerifier = clientIdentity.verifier
        let report = try echo(configuration, ["--x509certfile", files.cert, "--x509keyfile", files.key])
        #expect(report.peerCertificates == 1)
    }

    @Test("Resumption: gnutls-cli --resume", Peer.requires(.gnutlsCLI))
    func resumption() throws {
        let server = try InteropServer(.server(chain: identity.chain, key: identity.key))
        let client = try GnuTLSClient(port: server.port, caFile: caFile, ["--resume", "--waitresumption"])
        defer { client.process.kill() }
        try client.process.waitForStdout(containing: "- Resume Handshake was completed")
        let line = try client.echoLine()
        #expect(client.process.stdoutText.contains("*** This is a resumed session"), "\(client.process.transcript)")
        let reports = try server.waitForConnections(2)
        #expect(!reports[0].isResumed)
        #expect(reports[1].isResumed)
        #expect(reports[1].received == Array(line.utf8))
    }
}

/// Runs `gnutls-serv --echo` for a Quiver client.
struct GnuTLSServer {
    let process: PeerProcess
    let port: UInt16

    init(_ identity: TestIdentity, directory: TemporaryDirectory, priority: String = gnutlsPriority()) throws {
        let files = try identity.write(to: directory, as: "gnutls-serv")
        port = try Loopback.freePort()
        process = try PeerProcess(try Peer.gnutlsServ.executable(), [
            "--echo", "-p", "\(port)", "--x509certfile", files.cert, "--x509keyfile", files.key,
            "--priority", priority, "--disable-client-cert",
        ])
    }

    func connect(_ configuration: TLSConfiguration, resumption: SessionTicket? = nil) throws -> InteropClient {
        try InteropClient(port: port, peer: process, configuration: configuration, resumption: resumption)
    }
}

@Suite("Interop: Quiver client → gnutls-serv --echo")
struct GnuTLSServerInteropTests {
    let directory: TemporaryDirectory
    let identity: TestIdentity

    init() throws {
        directory = try TemporaryDirectory()
        identity = try TestIdentity.localhost(.ecdsaP256)
    }

    /// Echoes one line of random hex (gnutls-serv's echo is line-oriented text; `size` bytes
    /// become `2 × size + 1` characters, spanning several records for large sizes).
    private func echo(_ client: InteropClient, size: Int = 15_000) throws {
        let payload = Array((Interop.hex(Interop.randomBytes(size)) + "\n").utf8)
        try client.connection.write(payload)
        let reply = try client.read(count: payload.count)
        #expect(reply == payload)
    }

    @Test(Peer.requires(.gnutlsServ), arguments: CipherSuite.supported)
    func cipherSuite(_ suite: CipherSuite) throws {
        let server = try GnuTLSServer(identity, directory: directory, priority: gnutlsPriority(suite))
        defer { server.process.kill() }
        let client = try server.connect(.client(verifier: identity.verifier))
        #expect(client.handshake.cipherSuite == suite)
        try echo(client)
        client.close()
    }

    @Test("HelloRetryRequest: we share X25519, gnutls-serv only takes P-384", Peer.requires(.gnutlsServ))
    func helloRetryRequest() throws {
        let server = try GnuTLSServer(identity, directory: directory, priority: gnutlsPriority(nil, .secp384r1))
        defer { server.process.kill() }
        let client = try server.connect(.client(verifier: identity.verifier))
        #expect(client.handshake.didHelloRetry)
        #expect(client.handshake.group == .secp384r1)
        try echo(client)
        client.close()
    }

    @Test("KeyUpdate requested by our client", Peer.requires(.gnutlsServ))
    func keyUpdate() throws {
        let server = try GnuTLSServer(identity, directory: directory)
        defer { server.process.kill() }
        let client = try server.connect(.client(verifier: identity.verifier))
        try echo(client, size: 100)
        try client.connection.updateKeys(requestPeerUpdate: true)
        try echo(client, size: 100)
        try client.connection.updateKeys(requestPeerUpdate: false)
        try echo(client, size: 100)
        client.close()
    }

    @Test("Resumption with a ticket from gnutls-serv", Peer.requires(.gnutlsServ))
    func resumption() throws {
        let server = try GnuTLSServer(identity, directory: directory)
        defer { server.process.kill() }
        let first = try server.connect(.client(verifier: identity.verifier))
        try echo(first, size: 100)
        let ticket = try #require(first.sessionTicket(), "gnutls-serv sent no session ticket")
        first.close()
        let second = try server.connect(.client(verifier: identity.verifier), resumption: ticket)
        #expect(second.handshake.isResumed)
        try echo(second, size: 100)
        second.close()
    }
}
