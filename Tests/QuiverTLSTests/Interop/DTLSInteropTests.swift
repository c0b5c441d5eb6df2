// DTLS 1.2 interop over loopback UDP: OpenSSL 3 (`s_client`/`s_server -dtls1_2`) and GnuTLS 3
// (`gnutls-cli`/`gnutls-serv --udp`), both roles, with Quiver's sans-I/O DTLSConnection and
// DTLSCookieGate driven by a small blocking UDP loop.
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

/// A Quiver DTLS echo server for one client: cookie exchange, handshake, each message echoed.
final class DTLSEchoServer: @unchecked Sendable {
    struct Report: Sendable {
        var helloVerifyRequests = 0
        var handshakeCompleted = false
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
        Thread {
            var result = Report()
            defer { report.update { $0 = result } }
            let gate = DTLSCookieGate()
            let end = Date().addingTimeInterval(15)
            var accepted: (DTLSConnection, UInt16)?
            while accepted == nil, Date() < end {
                guard let (datagram, port) = socket.receive(milliseconds: 100) else { continue }
                switch gate.check(datagram, from: SocketAddress(host: "127.0.0.1", port: port)!) {
                case .drop: continue
                case .helloVerifyRequest(let reply):
                    result.helloVerifyRequests += 1
                    socket.send(reply, to: port)
                case .accept:
                    let connection = DTLSConnection(server: configuration)
                    connection.mtu = mtu
                    do { try connection.receive(datagram, now: .now()) } catch { result.error = "\(error)"; return }
                    accepted = (connection, port)
                }
            }
            guard let (connection, port) = accepted else { result.error = "no ClientHello with a valid cookie"; return }
            do {
                try driveDTLS(connection, socket: socket, peerPort: port, seconds: 12) { connection in
                    while let message = connection.read() {
                        result.echoed.append(message)
                        try connection.write(message)
                    }
                    return connection.isPeerClosed
                }
                for datagram in connection.takeDatagrams() { socket.send(datagram, to: port) }
                result.peerClosed = true
            } catch {
                result.error = "\(error)"
            }
            result.handshakeCompleted = connection.isHandshakeComplete
            result.cipherSuite = connection.handshake.cipherSuite
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
        let message = Array(Interop.hex(Interop.randomBytes(32)).utf8)
        try connection.write(message)
        var got: [UInt8]?
        try driveDTLS(connection, socket: socket, peerPort: port) { connection in
            got = connection.read()
            return got != nil
        }
        #expect(got == message)
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
