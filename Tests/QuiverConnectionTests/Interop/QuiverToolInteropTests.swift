#if canImport(Glibc)
import Glibc
#endif
import Foundation
import QuiverCore
import QuiverUDP
import QuiverTestSupport
import Testing

/// The `quiver` command's QUIC mode against aioquic 1.7.2: `quiver serve --quic` with an
/// aioquic client, and `quiver connect --quic` with an aioquic server.
@Suite("quiver command over QUIC with aioquic", .serialized, AioquicPeer.requirement)
struct QuiverToolInteropTests {
    /// The `quiver` executable built next to the test bundle.
    static var quiver: String? {
        let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [directory, directory.deletingLastPathComponent()] {
            let path = candidate.appendingPathComponent("quiver").path
            if access(path, X_OK) == 0 { return path }
        }
        return nil
    }

    /// A UDP port that was free a moment ago.
    static func freePort() throws -> UInt16 {
        let socket = try UDPSocket(host: "127.0.0.1", port: 0)
        defer { socket.close() }
        return socket.localAddress.port
    }

    @Test("aioquic client → quiver serve --quic")
    func aioquicToServe() throws {
        let quiver = try #require(Self.quiver, "build the quiver executable (swift build)")
        let port = try Self.freePort()
        let server = try ChildProcess(quiver, ["serve", "--quic", "--host", "127.0.0.1", "--port", "\(port)"])
        defer { server.kill() }
        #expect(server.waitForErrorLine(containing: "serving QUIC echo", timeout: 30) != nil, "\(server.transcript)")
        let client = try AioquicPeer.start(["client", "--port", "\(port)", "--insecure", "--sizes", "0", "5000", "300000"])
        defer { client.kill() }
        let status = client.waitForExit(timeout: 30)
        #expect(status == 0, "\(client.transcript)\n\(server.transcript)")
        #expect(client.waitForLine(startingWith: "RESULT PASS", timeout: 1) != nil, "\(client.transcript)")
    }

    @Test("quiver connect --quic → aioquic server", arguments: [false, true])
    func connectToAioquic(v2: Bool) throws {
        let quiver = try #require(Self.quiver, "build the quiver executable (swift build)")
        let directory = try TemporaryDirectory()
        let cert = try directory.write("cert.pem", TestIdentity.p256.chain.pemRepresentation)
        let key = try directory.write("key.pem", TestIdentity.p256.key.pemRepresentation)
        let server = try AioquicPeer.start(["server", "--port", "0", "--cert", cert, "--key", key] + (v2 ? ["--v2"] : []))
        defer { server.kill() }
        let ready = try #require(server.waitForLine(startingWith: "READY ", timeout: 15), "\(server.transcript)")
        let port = String(ready.dropFirst("READY ".count))
        var rng = SplitMix64(seed: 77)
        let payload = (0..<200_000).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let client = try ChildProcess(quiver, ["connect", "--quic", "--ca", cert, "127.0.0.1:\(port)", "--server-name", "localhost"]
                                      + (v2 ? ["--v2"] : []))
        defer { client.kill() }
        client.finishInput(payload)
        let status = client.waitForExit(timeout: 30)
        #expect(status == 0, "\(client.transcript)\n\(server.transcript)")
        #expect(client.standardOutput == payload, "echo differs: \(client.standardOutput.count) of \(payload.count) bytes")
        if v2 { #expect(server.waitForLine(startingWith: "CONNECTION", timeout: 5)?.contains("version=0x6b3343cf") == true, "\(server.transcript)") }
    }
}

/// A command-line peer found in PATH (openssl, python3): the same skip rule as aioquic —
/// missing peers skip visibly unless `QUIVER_REQUIRE_PEERS=1`.
enum ToolPeer {
    static func find(_ name: String) -> String? {
        let directories = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":")
        return directories.map { String($0) + "/" + name }.first { access($0, X_OK) == 0 }
    }

    static func requirement(_ name: String) -> ConditionTrait {
        .enabled(if: AioquicPeer.required || find(name) != nil,
                 "interop peer not installed: \(name) (apt-get install); set QUIVER_REQUIRE_PEERS=1 to fail instead of skipping")
    }

    static func path(_ name: String) throws -> String {
        guard let path = find(name) else { throw InteropFailure("\(name) not found in PATH") }
        return path
    }
}

/// The `quiver` command's TLS mode against OpenSSL and Python's `ssl` module.
@Suite("quiver command over TLS with openssl and Python ssl", .serialized)
struct QuiverToolTLSInteropTests {
    /// Starts `quiver serve --tls` with the test certificate on a free port.
    static func startServer(_ directory: TemporaryDirectory, _ extra: [String] = []) throws -> (ChildProcess, UInt16, String) {
        let quiver = try #require(QuiverToolInteropTests.quiver, "build the quiver executable (swift build)")
        let cert = try directory.write("cert.pem", TestIdentity.p256.chain.pemRepresentation)
        let key = try directory.write("key.pem", TestIdentity.p256.key.pemRepresentation)
        let socket = try TCPProbe.freePort()
        let server = try ChildProcess(quiver, ["serve", "--tls", "--host", "127.0.0.1", "--port", "\(socket)", "--cert", cert, "--key", key] + extra)
        #expect(server.waitForErrorLine(containing: "echo on tcp", timeout: 30) != nil, "\(server.transcript)")
        return (server, socket, cert)
    }

    @Test("openssl s_client -tls1_2 → quiver serve --tls (TLS 1.2 accepted); --tls-min 1.3 refuses it", ToolPeer.requirement("openssl"))
    func opensslTLS12Client() throws {
        for strict in [false, true] {
            let directory = try TemporaryDirectory()
            let (server, port, cert) = try Self.startServer(directory, strict ? ["--tls-min", "1.3"] : [])
            defer { server.kill() }
            let client = try ChildProcess(try ToolPeer.path("openssl"), [
                "s_client", "-connect", "127.0.0.1:\(port)", "-tls1_2", "-alpn", "echo", "-CAfile", cert,
                "-servername", "localhost", "-verify_return_error", "-quiet"])
            defer { client.kill() }
            client.finishInput(Array("hello over TLS 1.2\n".utf8))
            if strict {
                #expect(client.waitForExit(timeout: 20) != 0, "\(client.transcript)")
                #expect(client.transcript.contains("protocol version"), "\(client.transcript)")
            } else {
                #expect(client.waitForLine(startingWith: "hello over TLS 1.2", timeout: 20) != nil, "\(client.transcript)\n\(server.transcript)")
                #expect(server.waitForErrorLine(containing: "handshake complete: TLS 1.2", timeout: 10) != nil, "\(server.transcript)")
            }
        }
    }

    @Test("quiver connect --tls-version 1.2 → openssl s_server -tls1_2", ToolPeer.requirement("openssl"))
    func connectTLS12() throws {
        let quiver = try #require(QuiverToolInteropTests.quiver, "build the quiver executable (swift build)")
        let directory = try TemporaryDirectory()
        let cert = try directory.write("cert.pem", TestIdentity.p256.chain.pemRepresentation)
        let key = try directory.write("key.pem", TestIdentity.p256.key.pemRepresentation)
        let port = try TCPProbe.freePort()
        let server = try ChildProcess(try ToolPeer.path("openssl"), [
            "s_server", "-tls1_2", "-accept", "127.0.0.1:\(port)", "-cert", cert, "-key", key, "-naccept", "1", "-www"])
        defer { server.kill() }
        #expect(server.waitForLine(startingWith: "ACCEPT", timeout: 20) != nil, "\(server.transcript)")
        let client = try ChildProcess(quiver, ["connect", "127.0.0.1:\(port)", "--tls-version", "1.2", "--ca", cert, "--server-name", "localhost"])
        defer { client.kill() }
        client.finishInput(Array("GET / HTTP/1.0\r\n\r\n".utf8))
        #expect(client.waitForExit(timeout: 20) == 0, "\(client.transcript)")
        let page = String(decoding: client.standardOutput, as: UTF8.self)
        #expect(page.contains("Protocol  : TLSv1.2"), "\(client.transcript)")
    }

    @Test("openssl s_client → quiver serve --tls", ToolPeer.requirement("openssl"))
    func opensslClient() throws {
        let directory = try TemporaryDirectory()
        let (server, port, cert) = try Self.startServer(directory)
        defer { server.kill() }
        let client = try ChildProcess(try ToolPeer.path("openssl"), [
            "s_client", "-connect", "127.0.0.1:\(port)", "-tls1_3", "-alpn", "echo", "-CAfile", cert,
            "-servername", "localhost", "-verify_return_error", "-quiet"])
        defer { client.kill() }
        client.finishInput(Array("hello from openssl\n".utf8))
        #expect(client.waitForLine(startingWith: "hello from openssl", timeout: 20) != nil, "\(client.transcript)\n\(server.transcript)")
    }

    @Test("Python ssl → quiver serve --tls (256 KiB echoed exactly, clean close_notify)", ToolPeer.requirement("python3"))
    func pythonClient() throws {
        let directory = try TemporaryDirectory()
        let (server, port, cert) = try Self.startServer(directory)
        defer { server.kill() }
        let script = """
            import os, socket, ssl, sys
            context = ssl.create_default_context(cafile=sys.argv[2])
            context.minimum_version = ssl.TLSVersion.TLSv1_3
            context.set_alpn_protocols(["echo"])
            payload = os.urandom(256 * 1024)
            with socket.create_connection(("127.0.0.1", int(sys.argv[1]))) as raw:
                with context.wrap_socket(raw, server_hostname="localhost") as tls:
                    assert tls.version() == "TLSv1.3" and tls.selected_alpn_protocol() == "echo"
                    tls.sendall(payload)
                    echo = bytearray()
                    while len(echo) < len(payload):
                        chunk = tls.recv(65536)
                        if not chunk: break
                        echo += chunk
                    assert bytes(echo) == payload, f"echo differs: {len(echo)} of {len(payload)} bytes"
                    tls.unwrap()  # close_notify both ways
            print("RESULT PASS", flush=True)
            """
        let client = try ChildProcess(try ToolPeer.path("python3"), ["-c", script, "\(port)", cert])
        defer { client.kill() }
        #expect(client.waitForExit(timeout: 30) == 0, "\(client.transcript)\n\(server.transcript)")
        #expect(client.waitForLine(startingWith: "RESULT PASS", timeout: 1) != nil)
    }

    @Test("quiver connect --tls → openssl s_server", ToolPeer.requirement("openssl"))
    func connectToOpenSSL() throws {
        let quiver = try #require(QuiverToolInteropTests.quiver, "build the quiver executable (swift build)")
        let directory = try TemporaryDirectory()
        let cert = try directory.write("cert.pem", TestIdentity.p256.chain.pemRepresentation)
        let key = try directory.write("key.pem", TestIdentity.p256.key.pemRepresentation)
        let port = try TCPProbe.freePort()
        // -rev: s_server answers each line reversed, and closes cleanly on close_notify.
        let server = try ChildProcess(try ToolPeer.path("openssl"), [
            "s_server", "-tls1_3", "-cert", cert, "-key", key, "-accept", "127.0.0.1:\(port)", "-rev", "-naccept", "1"])
        defer { server.kill() }
        #expect(server.waitForLine(startingWith: "ACCEPT", timeout: 20) != nil, "\(server.transcript)")
        let client = try ChildProcess(quiver, ["connect", "--tls", "127.0.0.1:\(port)", "--ca", cert, "--server-name", "localhost"])
        defer { client.kill() }
        client.finishInput(Array("hello quiver\nsecond line\n".utf8))
        #expect(client.waitForExit(timeout: 20) == 0, "\(client.transcript)\n\(server.transcript)")
        #expect(client.standardOutput == Array("reviuq olleh\nenil dnoces\n".utf8), "\(client.transcript)")
    }
}

/// A TCP port that was free a moment ago.
enum TCPProbe {
    static func freePort() throws -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw InteropFailure("bind failed: \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return UInt16(bigEndian: address.sin_port)
    }
}

/// The `quiver` command's SCTP mode (UDP encapsulation) against usrsctp's echo programs, and
/// against itself.
@Suite("quiver command over SCTP with usrsctp", .serialized)
struct QuiverToolSCTPInteropTests {
    static let usrsctp = "/usr/lib/usrsctp"
    static let requirement = ConditionTrait.enabled(
        if: AioquicPeer.required || access(usrsctp + "/echo_server", X_OK) == 0,
        "interop peer not installed: usrsctp (apt-get install libusrsctp-examples); set QUIVER_REQUIRE_PEERS=1 to fail instead of skipping")

    @Test("quiver connect --sctp → usrsctp echo_server: stdin echoed, then the SHUTDOWN (it refuses stream resets)", requirement)
    func connectToEchoServer() throws {
        let quiver = try #require(QuiverToolInteropTests.quiver, "build the quiver executable (swift build)")
        let port = try QuiverToolInteropTests.freePort()
        let server = try ChildProcess(Self.usrsctp + "/echo_server", ["\(port)", "9"])
        defer { server.kill() }
        // usrsctp binds its UDP port before its SCTP socket listens; an INIT in between is
        // aborted. The client is started again then (bounded), as a refused TCP connect would be.
        let lines = Array("hello usrsctp\nsecond line\n".utf8)
        for attempt in 1...20 {
            let client = try ChildProcess(quiver, ["connect", "--sctp", "127.0.0.1:\(port)"])
            defer { client.kill() }
            client.finishInput(lines)
            let status = client.waitForExit(timeout: 20)
            if status != 0, attempt < 20, client.transcript.contains("ABORT") { continue }
            #expect(status == 0, "\(client.transcript)")
            #expect(client.standardOutput == lines, "\(client.transcript)")
            return
        }
    }

    @Test("usrsctp client → quiver serve --sctp: lines echoed", requirement)
    func usrsctpClientToServe() throws {
        let quiver = try #require(QuiverToolInteropTests.quiver, "build the quiver executable (swift build)")
        let port = try QuiverToolInteropTests.freePort()
        let server = try ChildProcess(quiver, ["serve", "--sctp", "--host", "127.0.0.1", "--port", "\(port)"])
        defer { server.kill() }
        #expect(server.waitForErrorLine(containing: "serving SCTP echo", timeout: 30) != nil, "\(server.transcript)")
        let clientPort = try QuiverToolInteropTests.freePort()
        let client = try ChildProcess(Self.usrsctp + "/client", ["127.0.0.1", "7", "0", "\(clientPort)", "\(port)"])
        defer { client.kill() }
        client.write(Array("one line over SCTP\n".utf8))
        #expect(client.waitForLine(startingWith: "one line over SCTP", timeout: 15) != nil, "\(client.transcript)\n\(server.transcript)")
    }

    @Test("quiver connect --sctp → quiver serve --sctp: 200 KB echoed, the end of each side, the SHUTDOWN")
    func quiverToQuiver() throws {
        let quiver = try #require(QuiverToolInteropTests.quiver, "build the quiver executable (swift build)")
        let port = try QuiverToolInteropTests.freePort()
        let server = try ChildProcess(quiver, ["serve", "--sctp", "--host", "127.0.0.1", "--port", "\(port)"])
        defer { server.kill() }
        #expect(server.waitForErrorLine(containing: "serving SCTP echo", timeout: 30) != nil, "\(server.transcript)")
        var rng = SplitMix64(seed: 78)
        let payload = (0..<200_000).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let client = try ChildProcess(quiver, ["connect", "--sctp", "127.0.0.1:\(port)"])
        defer { client.kill() }
        client.finishInput(payload)
        #expect(client.waitForExit(timeout: 30) == 0, "\(client.transcript)\n\(server.transcript)")
        #expect(client.standardOutput == payload, "echo differs: \(client.standardOutput.count) of \(payload.count) bytes")
    }
}
