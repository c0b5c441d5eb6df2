// DTLS interop over loopback UDP, both roles, with Quiver's sans-I/O DTLSEndpoint and
// DTLSConnection driven by a small blocking UDP loop: DTLS 1.2 with OpenSSL 3 (`s_client`/
// `s_server -dtls1_2`), GnuTLS 3 (`gnutls-cli`/`gnutls-serv --udp`) and pion/dtls; DTLS 1.3
// with BoringSSL (`boringpeer`, the shared peers'), including a HelloRetryRequest, a lost
// datagram (through `dtls_record_relay.py`) and a ClientHello fragmented at MTU 400.
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import QuiverCore
@testable import QuiverTLS
import QuiverTestSupport
import Testing

/// A blocking UDP socket on 127.0.0.1 for the tests.
final class TestUDPSocket: @unchecked Sendable {
    let fd: Int32
    let port: UInt16

    init(port: UInt16 = 0) throws {
        let descriptor = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard descriptor >= 0 else { throw InteropError("socket: \(errno)") }
        var address = Self.address(port: port)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0 else { close(descriptor); throw InteropError("bind: \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) } }
        fd = descriptor
        self.port = UInt16(bigEndian: address.sin_port)
    }

    deinit { close(fd) }

    static func address(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    /// A UDP port that was free a moment ago, for peer servers.
    static func freePort() throws -> UInt16 { try TestUDPSocket().port }

    func send(_ bytes: [UInt8], to port: UInt16) {
        var address = Self.address(port: port)
        _ = bytes.withUnsafeBytes { buffer in
            withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(fd, buffer.baseAddress, buffer.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            } }
        }
    }

    /// The next datagram and its sender's port, or nil after `milliseconds`.
    func receive(milliseconds: Int) -> (bytes: [UInt8], port: UInt16)? {
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&descriptor, 1, Int32(max(0, milliseconds))) > 0 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let count = buffer.withUnsafeMutableBytes { raw in
            withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                recvfrom(fd, raw.baseAddress, raw.count, 0, $0, &length)
            } }
        }
        guard count >= 0 else { return nil }
        return (Array(buffer[0..<count]), UInt16(bigEndian: address.sin_port))
    }
}

/// Drives a DTLSConnection over a TestUDPSocket until `done` says so or `seconds` pass.
func driveDTLS(_ connection: DTLSConnection, socket: TestUDPSocket, peerPort: UInt16, seconds: Double = 10,
               until done: (DTLSConnection) throws -> Bool) throws {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        for datagram in connection.takeDatagrams() { socket.send(datagram, to: peerPort) }
        if try done(connection) { return }
        if let error = connection.error { throw error }
        var wait = 50
        if let deadline = connection.nextTimeout {
            let now = Instant.now()
            wait = now < deadline ? min(50, Int((deadline - now).components.seconds * 1000) + Int((deadline - now).components.attoseconds / 1_000_000_000_000_000) + 1) : 0
        }
        if let (bytes, port) = socket.receive(milliseconds: wait), port == peerPort {
            try connection.receive(bytes, now: .now())
        }
        try connection.handleTimeout(now: .now())
    }
    throw InteropError("DTLS exchange did not finish within \(seconds) s")
}

/// Sends a random message over `connection` to an echo server and expects it back.
func expectEcho(_ connection: DTLSConnection, socket: TestUDPSocket, peerPort: UInt16) throws {
    let message = Array(Interop.hex(Interop.randomBytes(32)).utf8)
    try connection.write(message)
    var got: [UInt8]?
    try driveDTLS(connection, socket: socket, peerPort: peerPort) { connection in
        got = connection.read()
        return got != nil
    }
    #expect(got == message)
}

/// A Quiver DTLS echo server for one client: a ``DTLSEndpoint`` (cookie exchange, fragmented
/// ClientHellos reassembled), the handshake, each message echoed, until the client closes.
final class DTLSEchoServer: @unchecked Sendable {
    struct Report: Sendable {
        var helloVerifyRequests = 0
        var helloRetryRequests = 0
        var handshakeCompleted = false
        var version: TLSVersion?
        var cipherSuite: CipherSuite?
        var echoed: [[UInt8]] = []
        var peerClosed = false
        var error: String?
    }

    let socket: TestUDPSocket
    private let report = Waitable<Report?>(nil)

    init(_ configuration: TLSConfiguration, mtu: Int = 1200) throws {
        socket = try TestUDPSocket()
        let socket = self.socket
        let report = self.report
        var endpointConfiguration = DTLSEndpoint.Configuration(tls: configuration)
        endpointConfiguration.mtu = mtu
        Thread { [endpointConfiguration] in
            let endpoint = DTLSEndpoint(configuration: endpointConfiguration)
            var result = Report()
            defer { report.update { $0 = result } }
            let end = Date().addingTimeInterval(15)
            var accepted: (peer: SocketAddress, connection: DTLSConnection)?
            func flush() {
                for (peer, datagram) in endpoint.takeDatagrams() { socket.send(datagram, to: peer.port) }
            }
            while Date() < end {
                if let (datagram, port) = socket.receive(milliseconds: 20) {
                    endpoint.receive(datagram, from: SocketAddress(host: "127.0.0.1", port: port)!, at: .now())
                }
                if let deadline = endpoint.nextDeadline, !(Instant.now() < deadline) { endpoint.handleTimeout(at: .now()) }
                if accepted == nil { accepted = endpoint.accept() }
                if let (_, connection) = accepted {
                    while let message = connection.read() {
                        result.echoed.append(message)
                        do { try connection.write(message) } catch { result.error = "\(error)" }
                    }
                    if connection.isPeerClosed { result.peerClosed = true }
                    if let error = connection.error { result.error = "\(error)" }
                    // The connection's datagrams go out through the endpoint's queue: move them.
                    for datagram in connection.takeDatagrams() { socket.send(datagram, to: accepted!.peer.port) }
                }
                flush()
                if let failed = endpoint.nextFailedHandshake() { result.error = "\(failed.error)"; break }
                if result.peerClosed || result.error != nil { break }
            }
            result.helloVerifyRequests = endpoint.statistics.helloVerifyRequestsSent
            result.helloRetryRequests = endpoint.statistics.helloRetryRequestsSent
            if let connection = accepted?.connection {
                result.handshakeCompleted = connection.isHandshakeComplete
                result.version = connection.handshake.negotiatedVersion
                result.cipherSuite = connection.handshake.cipherSuite
            } else if result.error == nil {
                result.error = "no handshake completed"
            }
        }.start()
    }

    func waitForReport(timeout: Double = 20) throws -> Report {
        let (value, ok) = report.wait(timeout: timeout) { $0 != nil }
        guard ok, let value else { throw InteropError("our DTLS server did not finish") }
        return value
    }
}

@Suite("Interop DTLS 1.2: openssl and gnutls clients → Quiver server")
struct DTLSClientInteropTests {
    let directory: TemporaryDirectory
    let identity: TestIdentity
    let caFile: String

    init() throws {
        directory = try TemporaryDirectory()
        identity = try TestIdentity.localhost(.ecdsaP256)
        caFile = try identity.write(to: directory, as: "server").cert
    }

    /// Runs a line-echoing peer client (`peer` with `arguments` for the server's port) against a
    /// Quiver DTLS echo server; returns the server's report once the line came back.
    private func echoLine(_ peer: Peer, _ arguments: (UInt16) -> [String]) throws -> DTLSEchoServer.Report {
        let server = try DTLSEchoServer(try .server(chain: identity.chain, key: identity.key))
        let client = try PeerProcess(try peer.executable(), arguments(server.socket.port))
        defer { client.kill() }
        let line = Interop.randomHexLine()
        client.write(line)
        try client.waitForStdout(containing: line, timeout: 10)
        client.closeInput()
        _ = try? client.waitForExit()
        let report = try server.waitForReport()
        #expect(report.error == nil, "\(report)\n\(client.transcript)")
        #expect(report.helloVerifyRequests == 1 && report.handshakeCompleted)
        #expect(Array(report.echoed.joined()) == Array(line.utf8))
        return report
    }

    @Test("openssl s_client -dtls1_2: cookie exchange, handshake, a line echoed, close", Peer.requires(.openssl),
          arguments: CipherSuite.ecdsaTLS12)
    func openssl(_ suite: CipherSuite) throws {
        let report = try echoLine(.openssl) { port in
            ["s_client", "-dtls1_2", "-connect", "127.0.0.1:\(port)", "-CAfile", caFile, "-verify_return_error",
             "-verify_hostname", "localhost", "-cipher", suite.opensslName, "-quiet", "-no_ign_eof"]
        }
        #expect(report.cipherSuite == suite)
    }

    @Test("gnutls-cli --udp: handshake and a line echoed", Peer.requires(.gnutlsCLI))
    func gnutls() throws {
        _ = try echoLine(.gnutlsCLI) { port in
            ["--udp", "-p", "\(port)", "--x509cafile", caFile, "--verify-hostname", "localhost", "127.0.0.1"]
        }
    }
}

@Suite("Interop DTLS 1.2: pion/dtls both ways")
struct DTLSPionInteropTests {
    @Test("pionecho client → Quiver server: cookie exchange, handshake, a message echoed", Peer.requires(.pionecho))
    func client() throws {
        let identity = try TestIdentity.localhost(.ecdsaP256)
        let server = try DTLSEchoServer(try .server(chain: identity.chain, key: identity.key))
        let message = Interop.hex(Interop.randomBytes(24))
        let client = try PeerProcess(try Peer.pionecho.executable(), ["-mode", "client", "-addr", "127.0.0.1:\(server.socket.port)", "-msg", message])
        defer { client.kill() }
        #expect(try client.waitForExit(timeout: 15) == 0, "\(client.transcript)")
        #expect(client.stdoutText.contains("got echo: \"\(message)\""), "\(client.transcript)")
        let report = try server.waitForReport()
        #expect(report.helloVerifyRequests == 1 && report.handshakeCompleted, "\(report)")
        #expect(report.echoed == [Array(message.utf8)])
    }

    @Test("Quiver client → pionecho server (its HelloVerifyRequest), a message echoed", Peer.requires(.pionecho))
    func server() throws {
        let directory = try TemporaryDirectory()
        let identity = try TestIdentity.localhost(.ecdsaP256)
        let files = try identity.write(to: directory, as: "pion")
        let port = try TestUDPSocket.freePort()
        let server = try PeerProcess(try Peer.pionecho.executable(), [
            "-mode", "server", "-addr", "127.0.0.1:\(port)", "-cert", files.cert, "-key", files.key,
        ])
        defer { server.kill() }
        try server.waitForStdout(containing: "listening")
        let socket = try TestUDPSocket()
        let connection = DTLSConnection(client: .client(verifier: identity.verifier), serverName: "localhost")
        try connection.start(now: .now())
        try driveDTLS(connection, socket: socket, peerPort: port) { $0.isHandshakeComplete }
        try expectEcho(connection, socket: socket, peerPort: port)
        connection.close()
        for datagram in connection.takeDatagrams() { socket.send(datagram, to: port) }
    }
}

@Suite("Interop DTLS 1.2: Quiver client → openssl and gnutls servers")
struct DTLSServerInteropTests {
    let directory: TemporaryDirectory

    init() throws { directory = try TemporaryDirectory() }

    /// Connects our client to a peer server on `port`, sends `message`, and waits for `reply`
    /// (nil: none expected); returns the connection.
    private func connect(port: UInt16, identity: TestIdentity, peer: PeerProcess, suite: CipherSuite? = nil) throws -> (DTLSConnection, TestUDPSocket) {
        var configuration = TLSConfiguration.client(verifier: identity.verifier)
        if let suite { configuration.tls12CipherSuites = [suite] }
        let socket = try TestUDPSocket()
        let connection = DTLSConnection(client: configuration, serverName: "localhost")
        try connection.start(now: .now())
        do {
            try driveDTLS(connection, socket: socket, peerPort: port) { $0.isHandshakeComplete }
        } catch {
            throw InteropError("\(error)\n\(peer.transcript)")
        }
        return (connection, socket)
    }

    @Test("openssl s_server -dtls1_2 -listen: each suite, a message each way", Peer.requires(.openssl), arguments: CipherSuite.supportedTLS12)
    func openssl(_ suite: CipherSuite) throws {
        let identity = try TestIdentity.localhost(CipherSuite.ecdsaTLS12.contains(suite) ? .ecdsaP256 : .rsa(bits: 2048))
        let files = try identity.write(to: directory, as: "s_server-\(suite.rawValue)")
        let port = try TestUDPSocket.freePort()
        let server = try PeerProcess(try Peer.openssl.executable(), [
            "s_server", "-dtls1_2", "-listen", "-accept", "127.0.0.1:\(port)", "-cert", files.cert, "-key", files.key,
            "-cipher", suite.opensslName,
        ])
        defer { server.kill() }
        try server.waitForStdout(containing: "ACCEPT")
        let (connection, socket) = try connect(port: port, identity: identity, peer: server, suite: suite)
        #expect(connection.handshake.cipherSuite == suite)
        let line = Interop.randomHexLine()
        try connection.write(Array(line.utf8))
        for datagram in connection.takeDatagrams() { socket.send(datagram, to: port) }
        try server.waitForStdout(containing: line)
        let reply = Interop.randomHexLine()
        server.write(reply)  // s_server sends its stdin lines to the client
        var got: [UInt8] = []
        try driveDTLS(connection, socket: socket, peerPort: port) { connection in
            while let message = connection.read() { got += message }
            return String(decoding: got, as: UTF8.self).contains(reply)
        }
        connection.close()
        for datagram in connection.takeDatagrams() { socket.send(datagram, to: port) }
    }

    @Test("gnutls-serv --udp --echo: a message echoed", Peer.requires(.gnutlsServ))
    func gnutls() throws {
        let identity = try TestIdentity.localhost(.ecdsaP256)
        let files = try identity.write(to: directory, as: "gnutls-serv")
        let port = try TestUDPSocket.freePort()
        let server = try PeerProcess(try Peer.gnutlsServ.executable(), [
            "--udp", "--echo", "-p", "\(port)", "--x509certfile", files.cert, "--x509keyfile", files.key,
        ])
        defer { server.kill() }
        // gnutls-serv's ready line is block-buffered on a pipe: the client's retransmission
        // covers the moment before it listens.
        let (connection, socket) = try connect(port: port, identity: identity, peer: server)
        let line = Array(Interop.randomHexLine().utf8)
        try connection.write(line)
        var got: [UInt8] = []
        try driveDTLS(connection, socket: socket, peerPort: port) { connection in
            while let message = connection.read() { got += message }
            return got.count >= line.count
        }
        #expect(got == line)
        connection.close()
        for datagram in connection.takeDatagrams() { socket.send(datagram, to: port) }
    }
}

@Suite("Interop DTLS 1.3: BoringSSL (boringpeer) both ways")
struct DTLSBoringInteropTests {
    let directory: TemporaryDirectory
    let identity: TestIdentity

    init() throws {
        directory = try TemporaryDirectory()
        identity = try TestIdentity.localhost(.ecdsaP256)
    }

    /// boringpeer's client sends one message to `port` and waits for its echo.
    private func boringClient(port: UInt16, message: String, environment: [String: String] = [:], version: String = "1.3") throws -> PeerProcess {
        try PeerProcess(try Peer.boringpeer.executable(), ["client", "127.0.0.1", "\(port)", message, version], environment: environment)
    }

    /// A Quiver echo server; boringpeer's client through it; the report once the echo came back.
    private func echo(environment: [String: String] = [:], version: String = "1.3", relayDrops: [String]? = nil) throws -> DTLSEchoServer.Report {
        let server = try DTLSEchoServer(try .server(chain: identity.chain, key: identity.key))
        var port = server.socket.port
        var relay: PeerProcess?
        if let relayDrops {
            port = try TestUDPSocket.freePort()
            relay = try PeerProcess(try Peer.python3.executable(), [try Peer.dtlsRelay.executable(), "\(port)", "\(server.socket.port)", "10"] + relayDrops)
            // boringpeer's connected socket fails at once on an ICMP unreachable: wait until
            // the relay holds its port.
            let end = Date().addingTimeInterval(5)
            while !Self.udpPortIsBound(port), Date() < end { usleep(20_000) }
        }
        defer { relay?.kill() }
        let message = Interop.hex(Interop.randomBytes(24))
        let client = try boringClient(port: port, message: message, environment: environment, version: version)
        defer { client.kill() }
        #expect(try client.waitForExit(timeout: 15) == 0, "\(client.transcript)\n\(relay?.transcript ?? "")")
        #expect(client.stdoutText.contains("got echo: \(message)"), "\(client.transcript)")
        let report = try server.waitForReport()
        #expect(report.error == nil && report.handshakeCompleted, "\(report)\n\(client.transcript)")
        #expect(report.echoed == [Array(message.utf8)])
        return report
    }

    @Test("boringpeer client → Quiver server: the stateless HelloRetryRequest cookie, DTLS 1.3, a message echoed", Peer.requires(.boringpeer))
    func client() throws {
        let report = try echo()
        #expect(report.version == .tls13 && report.helloRetryRequests == 1 && report.helloVerifyRequests == 0, "\(report)")
    }

    @Test("boringpeer client at MTU 400: its 1.4 KB ClientHello arrives in fragments, reassembled before the cookie check", Peer.requires(.boringpeer))
    func fragmentedClientHello() throws {
        let report = try echo(environment: ["BORINGPEER_MTU": "400"])
        #expect(report.version == .tls13 && report.helloRetryRequests == 1, "\(report)")
    }

    @Test("boringpeer client, the server's datagrams lost one at a time (relay): recovered by ACK and retransmission",
          Peer.requires(.boringpeer, .dtlsRelay, .python3), arguments: ["S2", "S3", "C3"])
    func lostDatagram(_ drop: String) throws {
        let report = try echo(environment: ["BORINGPEER_MTU": "600"], relayDrops: [drop])
        #expect(report.version == .tls13, "\(report)")
    }

    @Test("boringpeer client, DTLS 1.2 → Quiver server: HelloVerifyRequest, a message echoed", Peer.requires(.boringpeer))
    func client12() throws {
        let report = try echo(version: "1.2")
        #expect(report.version == .tls12 && report.helloVerifyRequests == 1, "\(report)")
    }

    /// Whether a UDP socket is bound to 127.0.0.1:`port` (read from /proc/net/udp, so the check
    /// itself takes no port).
    static func udpPortIsBound(_ port: UInt16) -> Bool {
        let table = (try? String(contentsOfFile: "/proc/net/udp", encoding: .utf8)) ?? ""
        return table.contains(":" + String(format: "%04X", port) + " 00000000:0000")
    }

    /// Quiver's client to a boringpeer server: handshake, a message echoed.
    private func toServer(environment: [String: String] = [:], configure: (inout TLSConfiguration) -> Void = { _ in }, mtu: Int = 1200) throws -> DTLSConnection {
        let files = try identity.write(to: directory, as: "boring")
        let port = try TestUDPSocket.freePort()
        let server = try PeerProcess(try Peer.boringpeer.executable(), ["server", "\(port)", files.cert, files.key, "1.3"], environment: environment)
        defer { server.kill() }
        var configuration = TLSConfiguration.client(verifier: identity.verifier)
        configure(&configuration)
        let socket = try TestUDPSocket()
        let connection = DTLSConnection(client: configuration, serverName: "localhost")
        connection.mtu = mtu
        try connection.start(now: .now())
        do {
            // The server binds as it starts: our retransmission covers the moment before.
            try driveDTLS(connection, socket: socket, peerPort: port) { $0.isHandshakeComplete }
            try expectEcho(connection, socket: socket, peerPort: port)
            // The server's ACK of our Finished arrived: nothing left to retransmit.
            try driveDTLS(connection, socket: socket, peerPort: port, seconds: 3) { $0.nextTimeout == nil }
        } catch {
            throw InteropError("\(error)\n\(server.transcript)")
        }
        connection.close()
        for datagram in connection.takeDatagrams() { socket.send(datagram, to: port) }
        return connection
    }

    @Test("Quiver client → boringpeer server: DTLS 1.3, each suite, a message echoed, our Finished ACKed", Peer.requires(.boringpeer),
          arguments: CipherSuite.supported)
    func server(_ suite: CipherSuite) throws {
        let connection = try toServer { $0.cipherSuites = [suite] }
        #expect(connection.isDTLS13 && connection.handshake.cipherSuite == suite)
    }

    @Test("Quiver client → boringpeer server that wants P-256: its HelloRetryRequest answered", Peer.requires(.boringpeer))
    func serverHelloRetry() throws {
        let connection = try toServer(environment: ["BORINGPEER_GROUPS": "P-256"]) { $0.keyShareGroups = [.x25519] }
        #expect(connection.isDTLS13 && connection.handshake.didHelloRetry && connection.handshake.group == .secp256r1)
    }

    @Test("Quiver client → boringpeer server, both at MTU 400: every flight fragmented", Peer.requires(.boringpeer))
    func serverFragmented() throws {
        let connection = try toServer(environment: ["BORINGPEER_MTU": "400"], mtu: 400)
        #expect(connection.isDTLS13)
    }
}
