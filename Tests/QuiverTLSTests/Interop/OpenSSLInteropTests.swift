// Interop with OpenSSL 3 (`openssl s_client` / `openssl s_server`) over loopback TCP.
import Foundation
import QuiverCore
import QuiverTLS
import QuiverTLSSocket
import QuiverTestSupport
import Testing

/// Runs `openssl s_client` against an ``InteropServer``.
struct SClient {
    let process: PeerProcess

    /// `brief`: connection summary on stderr, stdout carries only application data.
    /// `version`: `-tls1_3` or `-tls1_2`.
    init(port: UInt16, caFile: String, brief: Bool = true, version: String = "-tls1_3", _ extra: [String]) throws {
        var arguments = [
            "s_client", "-connect", "127.0.0.1:\(port)", version, "-servername", "localhost",
            "-verify_hostname", "localhost", "-CAfile", caFile, "-verify_return_error",
        ]
        if brief { arguments.append("-brief") }
        process = try PeerProcess(try Peer.openssl.executable(), arguments + extra)
    }

    /// Sends `payload`, waits for its echo on stdout (everything stdout holds must be the echo
    /// when `exact`), then closes stdin (s_client sends close_notify) and waits for exit 0.
    func echo(_ payload: [UInt8], exact: Bool = true) throws {
        process.write(payload)
        if exact {
            try process.waitForStdout("echo of \(payload.count) bytes") { $0.count >= payload.count }
        } else {
            try process.waitForStdout("echo of \(payload.count) bytes") { Interop.contains($0, payload) }
        }
        try finish()
    }

    /// Closes stdin and expects a clean exit.
    func finish() throws {
        process.closeInput()
        let status = try process.waitForExit()
        guard status == 0 else { throw InteropError("s_client exited with \(status)\n\(process.transcript)") }
    }
}

@Suite("Interop: openssl s_client → Quiver server")
struct OpenSSLClientInteropTests {
    let directory: TemporaryDirectory
    let identity: TestIdentity
    let caFile: String

    init() throws {
        directory = try TemporaryDirectory()
        identity = try TestIdentity.localhost(.ecdsaP256)
        caFile = try identity.write(to: directory, as: "server").cert
    }

    private func serverConfiguration(_ identity: TestIdentity? = nil) throws -> TLSConfiguration {
        let identity = identity ?? self.identity
        return try .server(chain: identity.chain, key: identity.key)
    }

    /// One s_client connection echoing random binary data; returns our server's report and
    /// s_client's stderr (the `-brief` summary).
    private func echoOnce(_ configuration: TLSConfiguration, caFile: String? = nil, _ extra: [String]) throws
        -> (report: ServerConnectionReport, summary: String)
    {
        let server = try InteropServer(configuration)
        let client = try SClient(port: server.port, caFile: caFile ?? self.caFile, ["-nocommands"] + extra)
        defer { client.process.kill() }
        let payload = Interop.randomBytes(40_000)  // three records
        do {
            try client.echo(payload)
        } catch {
            let reports = try? server.waitForConnections(1, timeout: 1)
            throw InteropError("\(error)\nour server: \(reports.map { "\($0)" } ?? "no report")")
        }
        let report = try server.waitForConnections(1)[0]
        #expect(client.process.stdout == payload, "s_client printed something other than the echo")
        #expect(report.received == payload)
        #expect(report.closedCleanly, "\(report.error ?? "")")
        let summary = client.process.stderrText
        #expect(summary.contains("Protocol version: TLSv1.3"))
        #expect(summary.contains("Verification: OK"))
        return (report, summary)
    }

    @Test(Peer.requires(.openssl), arguments: CipherSuite.supported)
    func cipherSuite(_ suite: CipherSuite) throws {
        let (report, summary) = try echoOnce(serverConfiguration(), ["-ciphersuites", suite.ianaName])
        #expect(report.cipherSuite == suite)
        #expect(summary.contains("Ciphersuite: \(suite.ianaName)"))
    }

    @Test(Peer.requires(.openssl), arguments: [NamedGroup.x25519, .secp256r1, .secp384r1, .secp521r1])
    func group(_ group: NamedGroup) throws {
        let (report, summary) = try echoOnce(serverConfiguration(), ["-groups", group.opensslName])
        #expect(report.group == group)
        #expect(!report.didHelloRetry)
        let expected = group == .x25519 ? "Server Temp Key: X25519" : group == .secp256r1 ? "prime256v1" : "\(group)"
        #expect(summary.contains(expected))
    }

    @Test(Peer.requires(.openssl), arguments: [
        PrivateKey.Algorithm.rsa(bits: 2048), .ecdsaP256, .ecdsaP384, .ecdsaP521, .ed25519,
    ])
    func serverCertificate(_ algorithm: PrivateKey.Algorithm) throws {
        let identity = try TestIdentity.localhost(algorithm)
        let caFile = try identity.write(to: directory, as: "server-\(algorithm)").cert
        let (report, summary) = try echoOnce(serverConfiguration(identity), caFile: caFile, [])
        #expect(report.handshakeCompleted)
        let signature: String
        switch algorithm {
        case .rsa: signature = "Signature type: RSA-PSS"
        case .ed25519: signature = "Signature type: ed25519"
        default: signature = "Signature type: ECDSA"
        }
        #expect(summary.contains(signature), "\(summary)")
    }

    @Test("HelloRetryRequest: client shares X25519, server only takes P-384", Peer.requires(.openssl))
    func helloRetryRequest() throws {
        var configuration = try serverConfiguration()
        configuration.groups = [.secp384r1]
        let (report, summary) = try echoOnce(configuration, ["-groups", "X25519:P-384"])
        #expect(report.didHelloRetry)
        #expect(report.group == .secp384r1)
        #expect(summary.contains("Server Temp Key: ECDH, secp384r1"))
    }

    /// Whether this `openssl s_client` offers certificate compression (`-cert_comp`, OpenSSL 3.2+).
    static let clientHasCertificateCompression: Bool = {
        guard let path = Peer.openssl.path else { return false }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = ["s_client", "-help"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        guard (try? process.run()) != nil else { return false }
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: output, as: UTF8.self).contains("-cert_comp")
    }()

    @Test("Certificate compression: s_client -cert_comp gets our zlib CompressedCertificate",
          .enabled(if: clientHasCertificateCompression, "this openssl has no -cert_comp (OpenSSL 3.2+ has)"))
    func certificateCompression() throws {
        let (report, _) = try echoOnce(try serverConfiguration(), ["-cert_comp"])
        #expect(report.sentCertificateCompression == .zlib)
    }

    @Test("SNI: s_client -servername gets the certificate for that name, verified against it", Peer.requires(.openssl),
          arguments: ["alpha.example", "ALPHA.example", "a.wild.example", "localhost"])
    func sniCertificate(_ name: String) throws {
        let alpha = try SelfSignedCertificate.generate(names: ["alpha.example"])
        let wild = try SelfSignedCertificate.generate(names: ["*.wild.example"], algorithm: .ecdsaP384)
        var configuration = try serverConfiguration()
        configuration.sniCertificates = [try CertifiedKey(chain: wild.chain, key: wild.key), try CertifiedKey(chain: alpha.chain, key: alpha.key)]
        let bundle = try directory.write(
            "sni-\(name).pem", identity.chain.pemRepresentation + alpha.chain.pemRepresentation + wild.chain.pemRepresentation)
        let (report, summary) = try echoOnce(configuration, caFile: bundle, ["-servername", name, "-verify_hostname", name])
        #expect(report.serverName == name)
        let expected = name == "localhost" ? "CN = localhost" : name.hasPrefix("a.wild") ? "CN = *.wild.example" : "CN = alpha.example"
        #expect(summary.contains("Peer certificate: \(expected)"), "\(summary)")
    }

    @Test(Peer.requires(.openssl))
    func alpn() throws {
        let server = try InteropServer(.server(chain: identity.chain, key: identity.key, alpn: ["h2", "echo"]))
        let client = try SClient(port: server.port, caFile: caFile, brief: false, ["-alpn", "echo"])
        defer { client.process.kill() }
        let line = Interop.randomHexLine()
        try client.echo(Array(line.utf8), exact: false)
        let report = try server.waitForConnections(1)[0]
        #expect(report.alpn == "echo")
        #expect(client.process.stdoutText.contains("ALPN protocol: echo"))
    }

    @Test("ALPN mismatch: our server sends no_application_protocol", Peer.requires(.openssl))
    func alpnMismatch() throws {
        let server = try InteropServer(.server(chain: identity.chain, key: identity.key, alpn: ["echo"]))
        let client = try SClient(port: server.port, caFile: caFile, ["-alpn", "h2"])
        defer { client.process.kill() }
        let report = try server.waitForConnections(1)[0]
        let status = try client.process.waitForExit()  // on the alert, without waiting for stdin
        #expect(status != 0)
        #expect(report.tlsError?.alert == .noApplicationProtocol)
        #expect(report.tlsError?.origin == .local)
        #expect(client.process.stderrText.contains("no application protocol"), "\(client.process.transcript)")
    }

    @Test("Resumption: -sess_out then -sess_in is resumed on both sides", Peer.requires(.openssl))
    func resumption() throws {
        let server = try InteropServer(serverConfiguration())
        let session = directory.path + "/session.pem"
        let first = try SClient(port: server.port, caFile: caFile, brief: false, ["-sess_out", session])
        defer { first.process.kill() }
        try first.echo(Array(Interop.randomHexLine().utf8), exact: false)
        #expect(first.process.stdoutText.contains("New, TLSv1.3"))
        #expect(FileManager.default.fileExists(atPath: session))

        let second = try SClient(port: server.port, caFile: caFile, brief: false, ["-sess_in", session])
        defer { second.process.kill() }
        try second.echo(Array(Interop.randomHexLine().utf8), exact: false)
        #expect(second.process.stdoutText.contains("Reused, TLSv1.3"), "\(second.process.transcript)")

        let reports = try server.waitForConnections(2)
        #expect(!reports[0].isResumed)
        #expect(reports[1].isResumed)
        #expect(reports[1].peerCertificates == 0)
        #expect(reports.allSatisfy { $0.closedCleanly })
    }

    @Test("0-RTT: s_client -sess_in -early_data is accepted", Peer.requires(.openssl))
    func earlyData() throws {
        var configuration = try serverConfiguration()
        configuration.maxEarlyDataSize = 16384
        configuration.antiReplay = AntiReplay()
        let server = try InteropServer(configuration)
        let session = directory.path + "/session.pem"
        let first = try SClient(port: server.port, caFile: caFile, ["-sess_out", session])
        defer { first.process.kill() }
        try first.echo(Array(Interop.randomHexLine().utf8))

        let early = Interop.randomHexLine()
        let earlyFile = try directory.write("early.txt", early)
        let second = try SClient(port: server.port, caFile: caFile, brief: false, ["-sess_in", session, "-early_data", earlyFile])
        defer { second.process.kill() }
        try second.process.waitForStdout(containing: early)
        let late = Interop.randomHexLine()
        try second.echo(Array(late.utf8), exact: false)
        #expect(second.process.stdoutText.contains("Early data was accepted"), "\(second.process.transcript)")

        let reports = try server.waitForConnections(2)
        #expect(reports[1].isResumed)
        #expect(reports[1].earlyDataAccepted == true)
        #expect(reports[1].received == Array((early + late).utf8))
        #expect(reports[1].closedCleanly, "\(reports[1].error ?? "")")
    }

    @Test("Record padding (paddingBlockSize 256) from our server", Peer.requires(.openssl))
    func padding() throws {
        let server = try InteropServer(serverConfiguration(), options: .init(paddingBlockSize: 256))
        let client = try SClient(port: server.port, caFile: caFile, ["-nocommands"])
        defer { client.process.kill() }
        let payload = Interop.randomBytes(40_000)
        try client.echo(payload)
        #expect(client.process.stdout == payload)
        #expect(try server.waitForConnections(1)[0].received == payload)
    }

    @Test("KeyUpdate requested by s_client ('K' command)", Peer.requires(.openssl))
    func keyUpdateFromPeer() throws {
        let server = try InteropServer(serverConfiguration())
        let client = try SClient(port: server.port, caFile: caFile, [])
        defer { client.process.kill() }
        let lines = (0..<3).map { _ in Interop.randomHexLine(24) }
        for (index, line) in lines.enumerated() {
            if index > 0 {
                client.process.write("K\n")  // KeyUpdate with update_requested
                try client.process.waitForStderr(containing: String(repeating: "KEYUPDATE\n", count: index))
            }
            client.process.write(line)
            try client.process.waitForStdout(containing: line)
        }
        try client.finish()
        let report = try server.waitForConnections(1)[0]
        #expect(report.received == Array(lines.joined().utf8))
        #expect(report.closedCleanly, "\(report.error ?? "")")
    }

    @Test("KeyUpdate requested by our server mid-stream", Peer.requires(.openssl))
    func keyUpdateFromUs() throws {
        let server = try InteropServer(serverConfiguration(), options: .init(keyUpdateAfterFirstEcho: true))
        let client = try SClient(port: server.port, caFile: caFile, ["-nocommands"])
        defer { client.process.kill() }
        var sent: [UInt8] = []
        for size in [1000, 20_000, 5] {
            let payload = Interop.randomBytes(size)
            sent += payload
            client.process.write(payload)
            try client.process.waitForStdout("echo of \(sent.count) bytes") { $0.count >= sent.count }
        }
        try client.finish()
        let report = try server.waitForConnections(1)[0]
        #expect(report.keyUpdateSent)
        #expect(client.process.stdout == sent)
        #expect(report.received == sent)
        #expect(report.closedCleanly, "\(report.error ?? "")")
    }

    @Test(Peer.requires(.openssl), arguments: [PrivateKey.Algorithm.ecdsaP256, .rsa(bits: 2048), .ed25519])
    func clientCertificate(_ algorithm: PrivateKey.Algorithm) throws {
        let clientIdentity = try TestIdentity.localhost(algorithm, role: "client")
        let files = try clientIdentity.write(to: directory, as: "client")
        var configuration = try serverConfiguration()
        configuration.clientAuthentication = .required
        configuration.certificateVerifier = clientIdentity.verifier
        let (report, _) = try echoOnce(configuration, ["-cert", files.cert, "-key", files.key])
        #expect(report.peerCertificates == 1)
    }

    @Test("Client certificate required but not sent: certificate_required", Peer.requires(.openssl))
    func clientCertificateMissing() throws {
        let clientIdentity = try TestIdentity.localhost(.ecdsaP256, role: "client")
        var configuration = try serverConfiguration()
        configuration.clientAuthentication = .required
        configuration.certificateVerifier = clientIdentity.verifier
        let server = try InteropServer(configuration)
        let client = try SClient(port: server.port, caFile: caFile, ["-nocommands"])
        defer { client.process.kill() }
        // Nothing is written: data arriving after our server closed would draw a TCP reset,
        // which can overtake the alert.
        let report = try server.waitForConnections(1)[0]
        let status = try client.process.waitForExit()  // on the alert, without waiting for stdin
        #expect(status != 0)
        #expect(report.tlsError?.alert == .certificateRequired, "\(report)")
        #expect(report.tlsError?.origin == .local)
        #expect(report.received.isEmpty)
        #expect(client.process.stderrText.contains("certificate required"), "\(client.process.transcript)")
    }

    @Test("Unsupported groups only: our server sends handshake_failure", Peer.requires(.openssl))
    func unsupportedGroup() throws {
        let server = try InteropServer(serverConfiguration())
        let client = try SClient(port: server.port, caFile: caFile, ["-groups", "X448:ffdhe2048"])
        defer { client.process.kill() }
        let report = try server.waitForConnections(1)[0]
        let status = try client.process.waitForExit()  // on the alert, without waiting for stdin
        #expect(status != 0)
        #expect(!report.handshakeCompleted)
        #expect(report.tlsError?.alert == .handshakeFailure, "\(report)")
        #expect(report.tlsError?.origin == .local)
        #expect(client.process.stderrText.contains("handshake failure"), "\(client.process.transcript)")
    }
}

/// Runs `openssl s_server` for a Quiver client.
struct SServer {
    let process: PeerProcess
    let port: UInt16

    init(_ identity: TestIdentity, directory: TemporaryDirectory, mode: String = "-www", connections: Int = 1, version: String = "-tls1_3",
         _ extra: [String] = []) throws {
        let files = try identity.write(to: directory, as: "s_server")
        port = try Loopback.freePort()
        process = try PeerProcess(try Peer.openssl.executable(), [
            "s_server", version, "-accept", "127.0.0.1:\(port)", "-cert", files.cert, "-key", files.key,
            mode, "-naccept", "\(connections)",
        ] + extra)
    }

    /// Connects our client.
    func connect(_ configuration: TLSConfiguration, resumption: SessionTicket? = nil) throws -> InteropClient {
        try InteropClient(port: port, peer: process, configuration: configuration, resumption: resumption)
    }
}

@Suite("Interop: Quiver client → openssl s_server")
struct OpenSSLServerInteropTests {
    let directory: TemporaryDirectory
    let identity: TestIdentity

    init() throws {
        directory = try TemporaryDirectory()
        identity = try TestIdentity.localhost(.ecdsaP256)
    }

    private func clientConfiguration(_ identity: TestIdentity? = nil) -> TLSConfiguration {
        .client(verifier: (identity ?? self.identity).verifier)
    }

    /// Fetches s_server's `-www` status page; returns it and the ticket received, if any.
    private func fetchStatusPage(_ client: InteropClient) throws -> (page: String, ticket: SessionTicket?) {
        try client.connection.write(Array("GET / HTTP/1.0\r\n\r\n".utf8))
        let (data, error) = client.readToEnd()
        let page = String(decoding: data, as: UTF8.self)
        let ticket = client.sessionTicket()
        client.close()
        guard page.hasPrefix("HTTP/1.0 200 ok") else { throw InteropError("no status page (\(error.map { "\($0)" } ?? "clean close")): \(page)") }
        #expect(error == nil, "s_server -www closed without close_notify: \(String(describing: error))")
        #expect(page.contains("Protocol  : TLSv1.3"))
        return (page, ticket)
    }

    @Test(Peer.requires(.openssl), arguments: CipherSuite.supported)
    func cipherSuite(_ suite: CipherSuite) throws {
        let server = try SServer(identity, directory: directory, ["-ciphersuites", suite.ianaName])
        defer { server.process.kill() }
        let client = try server.connect(clientConfiguration())
        #expect(client.handshake.cipherSuite == suite)
        let (page, _) = try fetchStatusPage(client)
        #expect(page.contains("Cipher    : \(suite.ianaName)"))
        #expect(try server.process.waitForExit() == 0)
    }

    @Test(Peer.requires(.openssl), arguments: [NamedGroup.x25519, .secp256r1, .secp384r1, .secp521r1])
    func group(_ group: NamedGroup) throws {
        let server = try SServer(identity, directory: directory, ["-groups", group.opensslName])
        defer { server.process.kill() }
        var configuration = clientConfiguration()
        configuration.keyShareGroups = [group]
        let client = try server.connect(configuration)
        #expect(client.handshake.group == group)
        #expect(!client.handshake.didHelloRetry)
        _ = try fetchStatusPage(client)
    }

    @Test(Peer.requires(.openssl), arguments: [
        PrivateKey.Algorithm.rsa(bits: 2048), .ecdsaP256, .ecdsaP384, .ecdsaP521, .ed25519,
    ])
    func serverCertificate(_ algorithm: PrivateKey.Algorithm) throws {
        let identity = try TestIdentity.localhost(algorithm)
        let server = try SServer(identity, directory: directory)
        defer { server.process.kill() }
        let client = try server.connect(clientConfiguration(identity))
        #expect(client.handshake.peerCertificates.first == identity.chain.certificates.first)
        _ = try fetchStatusPage(client)
    }

    @Test("HelloRetryRequest: we share X25519, s_server only takes P-384", Peer.requires(.openssl))
    func helloRetryRequest() throws {
        let server = try SServer(identity, directory: directory, ["-groups", "P-384"])
        defer { server.process.kill() }
        let client = try server.connect(clientConfiguration())
        #expect(client.handshake.didHelloRetry)
        #expect(client.handshake.group == .secp384r1)
        _ = try fetchStatusPage(client)
    }

    @Test(Peer.requires(.openssl))
    func alpn() throws {
        let server = try SServer(identity, directory: directory, ["-alpn", "echo"])
        defer { server.process.kill() }
        let client = try server.connect(.client(alpn: ["h2", "echo"], verifier: identity.verifier))
        #expect(client.handshake.negotiatedALPN == "echo")
        _ = try fetchStatusPage(client)
    }

    @Test("Resumption with a ticket from s_server", Peer.requires(.openssl))
    func resumption() throws {
        let server = try SServer(identity, directory: directory, connections: 2)
        defer { server.process.kill() }
        let first = try server.connect(clientConfiguration())
        #expect(!first.handshake.isResumed)
        let (firstPage, ticket) = try fetchStatusPage(first)
        #expect(firstPage.contains("New, TLSv1.3"))
        let resumption = try #require(ticket, "s_server sent no session ticket")

        let second = try server.connect(clientConfiguration(), resumption: resumption)
        #expect(second.handshake.isResumed)
        let (secondPage, _) = try fetchStatusPage(second)
        #expect(secondPage.contains("Reused, TLSv1.3"), "\(secondPage)")
        #expect(try server.process.waitForExit() == 0)
    }

    @Test("0-RTT: our early data accepted by s_server -early_data", Peer.requires(.openssl))
    func earlyData() throws {
        // Default s_server mode: what the client sends is printed on stdout, s_server's stdin
        // goes to the client.
        let server = try SServer(identity, directory: directory, mode: "-early_data", connections: 2)
        defer { server.process.kill() }
        let first = try server.connect(clientConfiguration())
        server.process.write("hello from s_server\n")
        _ = try first.read { $0.last == UInt8(ascii: "\n") }  // tickets arrive before it
        let ticket = try #require(first.sessionTicket(), "s_server sent no session ticket")
        #expect(ticket.maxEarlyDataSize > 0)
        first.close()

        // TLSSocket.handshake() cannot send early data, so drive the stream by hand.
        let socket = try Loopback.connect(port: server.port, peer: server.process)
        let stream = TLSStream(client: clientConfiguration(), serverName: "localhost", resumption: ticket, attemptEarlyData: true)
        let early = "early-" + Interop.hex(Interop.randomBytes(16)) + "\n"
        try stream.start()
        try stream.write(Array(early.utf8))
        try socket.write(stream.takeOutgoing())
        while !stream.isHandshakeComplete {
            let bytes = try socket.read()
            guard !bytes.isEmpty else { throw InteropError("s_server closed during the 0-RTT handshake\n\(server.process.transcript)") }
            try stream.receive(bytes)
            if stream.hasOutgoing { try socket.write(stream.takeOutgoing()) }
        }
        #expect(stream.handshake.isResumed)
        #expect(stream.handshake.earlyDataAccepted == true)
        // s_server prints the label (buffered) and the data (unbuffered) in either order;
        // a refused 0-RTT prints "No early data received" and the data later as 1-RTT.
        try server.process.waitForStdout(containing: "Early data received:")
        try server.process.waitForStdout(containing: early)
        let second = TLSSocket(socket: socket, stream: stream)
        second.close()
        server.process.closeInput()
        #expect(try server.process.waitForExit() == 0)
    }

    @Test("KeyUpdate requested by our client (s_server -rev)", Peer.requires(.openssl))
    func keyUpdate() throws {
        let server = try SServer(identity, directory: directory, mode: "-rev")
        defer { server.process.kill() }
        let client = try server.connect(clientConfiguration())
        for round in 0..<3 {
            if round > 0 { try client.connection.updateKeys(requestPeerUpdate: true) }
            let line = Interop.hex(Interop.randomBytes(16))
            try client.connection.write(Array((line + "\n").utf8))
            let reply = try client.read { $0.last == UInt8(ascii: "\n") }
            #expect(String(decoding: reply, as: UTF8.self) == String(line.reversed()) + "\n")
        }
        client.close()
        #expect(try server.process.waitForExit() == 0)
    }

    @Test(Peer.requires(.openssl), arguments: [PrivateKey.Algorithm.ecdsaP256, .rsa(bits: 2048), .ed25519])
    func clientCertificate(_ algorithm: PrivateKey.Algorithm) throws {
        let clientIdentity = try TestIdentity.localhost(algorithm, role: "client")
        let caFile = try clientIdentity.write(to: directory, as: "client").cert
        let server = try SServer(identity, directory: directory, ["-Verify", "1", "-CAfile", caFile, "-verify_return_error"])
        defer { server.process.kill() }
        var configuration = clientConfiguration()
        configuration.certificateChain = clientIdentity.chain
        configuration.privateKey = clientIdentity.key
        let client = try server.connect(configuration)
        let (page, _) = try fetchStatusPage(client)
        #expect(page.contains("Client certificate"), "\(page)")
    }

    @Test("Client certificate required by s_server but not sent: certificate_required", Peer.requires(.openssl))
    func clientCertificateMissing() throws {
        let clientIdentity = try TestIdentity.localhost(.ecdsaP256, role: "client")
        let caFile = try clientIdentity.write(to: directory, as: "client").cert
        let server = try SServer(identity, directory: directory, ["-Verify", "1", "-CAfile", caFile])
        defer { server.process.kill() }
        // TLS 1.3: the client finishes first, then reads the alert. Nothing is written: data
        // arriving after s_server closed would draw a TCP reset, which can overtake the alert.
        let client = try server.connect(clientConfiguration())
        let (data, error) = client.readToEnd()
        client.close()
        #expect(data.isEmpty)
        #expect(error?.code == .tlsAlertReceived)
        #expect("\(String(describing: error))".contains("certificate_required"), "\(String(describing: error))")
    }
}
