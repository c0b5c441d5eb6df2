// quiver serve --tls --handover (the restart under load itself is QuiverCommandRestartTests'):
// the drain timeout, the refusals of the hand-over protocol, and a successor that dies after
// taking over.
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Quiver
import QuiverTestSupport
import Testing

extension QuiverCommandTests {
    @Test("serve --tls --handover: a connection still open at --drain-timeout is closed (close_notify) and the old process exits 0; the new one serves on")
    func tlsDrainTimeout() throws {
        let (fixture, path, secrets, port) = try handoverSetup()
        let arguments = ["serve", "--tls", "--host", "127.0.0.1", "--port", "\(port)", "--cert", fixture.cert, "--key", fixture.key,
                         "--loops", "1", "--handover", path, "--drain-timeout", "1", "--secrets", secrets]
        let first = try ChildProcess(try Self.quiver, arguments)
        defer { first.kill() }
        #expect(first.waitForErrorLine(containing: "serving TLS", timeout: 30) != nil, "\(first.transcript)")
        let open = try Connection.connect(.tcp, to: "127.0.0.1", port: port, tls: TestIdentity.clientTLS(), serverName: "localhost")
        try open.write(Array("open".utf8))
        #expect(try open.read() == Array("open".utf8))
        let second = try ChildProcess(try Self.quiver, arguments)
        defer { second.kill() }
        #expect(second.waitForErrorLine(containing: "took over tcp port \(port)", timeout: 30) != nil, "\(second.transcript)")
        #expect(first.waitForErrorLine(containing: "drain timeout: closing 1 connection(s)", timeout: 10) != nil, "\(first.transcript)")
        #expect(first.waitForExit(timeout: 10) == 0, "\(first.transcript)")
        // Closed by the server, not left to time out.
        let end = try? open.read()
        #expect(end == nil || end == [], "\(String(describing: end))")
        let next = try Connection.connect(.tcp, to: "127.0.0.1", port: port, tls: TestIdentity.clientTLS(), serverName: "localhost")
        try next.write(Array("next".utf8))
        #expect(try next.read() == Array("next".utf8))
        try next.shutdown()
    }

    @Test("serve --handover refuses, in one line, a takeover between a TLS and a QUIC server (either way), a peer's malformed request, truncated answer or early close; the server serves on")
    func handoverProtocolRefusals() throws {
        let (fixture, path, secrets, port) = try handoverSetup()
        func serve(_ transport: [String], path: String) -> [String] {
            ["serve"] + transport + ["--host", "127.0.0.1", "--port", "\(port)", "--cert", fixture.cert, "--key", fixture.key,
                                     "--loops", "1", "--handover", path, "--secrets", secrets]
        }
        let tls = try ChildProcess(try Self.quiver, serve(["--tls"], path: path))
        defer { tls.kill() }
        #expect(tls.waitForErrorLine(containing: "serving TLS", timeout: 30) != nil, "\(tls.transcript)")
        expectOneLineError(try run(serve(["--quic"], path: path)), containing: "it serves TLS over TCP (--tls), not QUIC")
        expectOneLineError(try run(serve([], path: path)), containing: "it serves TLS over TCP (--tls), not TLS over TCP and QUIC")
        // Bad input from a peer: refused (or dropped) with a log line; the server serves on.
        #expect(try UnixPeer.exchange(path, "hello") == "refused: not a takeover request: “hello”")
        #expect(try UnixPeer.exchange(path, "takeover sctp 1 1").hasPrefix("refused: it asks for the sockets of “sctp”"))
        #expect(try UnixPeer.exchange(path, "takeover tls 3 1") == "refused: it serves with --loops 1; start the new process alike")
        #expect(try UnixPeer.exchange(path, nil) == "")  // connects and leaves
        #expect(tls.waitForErrorLine(containing: "connected and left without a request", timeout: 5) != nil, "\(tls.transcript)")
        let client = try Connection.connect(.tcp, to: "127.0.0.1", port: port, tls: TestIdentity.clientTLS(), serverName: "localhost")
        try client.write(Array("still here".utf8))
        #expect(try client.read() == Array("still here".utf8))
        try client.shutdown()
        #expect(tls.waitForExit(timeout: 0.2) == nil, "\(tls.transcript)")
        // A newcomer that takes the sockets, puts a socket of its own at the path (as a new
        // process does just before it serves) and ends before saying `ready`: the server serves
        // on and listens at the path again, so that the next restart reaches it.
        let stray = try UnixPeer.listen(path + ".stray")
        defer { _ = Glibc.close(stray) }
        #expect(try UnixPeer.takeSocketsAndLeave(path, "takeover tls 1 1", replacingPathWith: path + ".stray").hasPrefix("sockets tls"))
        #expect(tls.waitForErrorLine(containing: "left before serving; serving on", timeout: 5) != nil, "\(tls.transcript)")
        #expect(try UnixPeer.exchange(path, "hello") == "refused: not a takeover request: “hello”", "the server listens at the path again")
        let after = try Connection.connect(.tcp, to: "127.0.0.1", port: port, tls: TestIdentity.clientTLS(), serverName: "localhost")
        try after.write(Array("after".utf8))
        #expect(try after.read() == Array("after".utf8))
        try after.shutdown()

        // The other way round: a QUIC server refuses a TLS newcomer.
        let quicPath = fixture.directory.path + "/quic-handover"
        let quic = try ChildProcess(try Self.quiver, serve(["--quic"], path: quicPath))
        defer { quic.kill() }
        #expect(quic.waitForErrorLine(containing: "serving QUIC", timeout: 30) != nil, "\(quic.transcript)")
        expectOneLineError(try run(serve(["--tls"], path: quicPath)), containing: "it serves QUIC (--quic or --http3), not TLS over TCP")

        // A process at the path that answers wrongly: the new process says so in one line.
        let fakePath = fixture.directory.path + "/fake"
        for (answer, expected) in [("sock", "answered “sock”, not the sockets"),
                                   ("sockets tls 0", "passed 0 descriptor(s), not the 1 of a TLS over TCP"),
                                   (nil, "closed the connection without an answer")] {
            let fake = try UnixPeer.listen(fakePath)
            let server = Thread { UnixPeer.answerOnce(fake, answer) }
            server.start()
            expectOneLineError(try run(serve(["--tls"], path: fakePath)), containing: expected)
            _ = Glibc.close(fake)
            unlink(fakePath)
        }
        // --dtls has nothing to hand over.
        expectOneLineError(try run(serve(["--dtls"], path: fixture.directory.path + "/dtls")), containing: "not --dtls or --sctp")
    }

    @Test("serve --handover refuses, in one line, the sockets of a process of another user (SO_PEERCRED)",
          .enabled(if: getuid() == 0, "needs root, to run a peer as another user"))
    func handoverRefusesAnotherUser() throws {
        let fixture = try InteropFixture()
        let secrets = fixture.directory.path + "/secrets.json"
        #expect(try run(["secrets", "--out", secrets]).waitForExit(timeout: 5) == 0)
        // A directory the other user may bind in.
        let directory = NSTemporaryDirectory() + "quiver-handover-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o777])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/handover"
        // A process of uid 65534 (nobody) listening at the path, as a serving process would.
        let script = """
            import os, socket, sys
            os.setuid(65534)
            server = socket.socket(socket.AF_UNIX)
            server.bind(sys.argv[1])
            server.listen(1)
            print("listening", flush=True)
            connection, _ = server.accept()
            connection.recv(100)
            """
        let peer = try ChildProcess("/usr/bin/python3", ["-c", script, path])
        defer { peer.kill() }
        #expect(peer.waitForLine(startingWith: "listening", timeout: 10) != nil, "\(peer.transcript)")
        let port = try DemoTests.freePorts(1)
        expectOneLineError(try run(["serve", "--tls", "--host", "127.0.0.1", "--port", "\(port)", "--cert", fixture.cert, "--key", fixture.key,
                                    "--loops", "1", "--handover", path, "--secrets", secrets]),
                           containing: "the serving process runs as uid 65534, this one as uid 0")
    }

    @Test("serve --handover: a new process killed (SIGKILL) right after taking over — the old one takes the port back, serves new TLS and QUIC clients again and hands over to the next process")
    func successorKilledAfterTakeover() throws {
        let (fixture, path, secrets, port) = try handoverSetup()
        // TLS and QUIC on the same port number (the default).
        let arguments = ["serve", "--host", "127.0.0.1", "--port", "\(port)", "--cert", fixture.cert, "--key", fixture.key,
                         "--loops", "2", "--handover", path, "--drain-timeout", "60", "--secrets", secrets]
        let first = try ChildProcess(try Self.quiver, arguments)
        defer { first.kill() }
        #expect(first.waitForErrorLine(containing: "serving QUIC echo", timeout: 30) != nil, "\(first.transcript)")
        let tlsLoad = HandshakeLoad(port: port, clients: 1, transport: .tcp)
        defer { tlsLoad.stop() }
        // Two QUIC clients: one whose connection was at the killed process waits for its idle
        // timeout (its packets go to that process's sockets, which nothing reads).
        let quicLoad = HandshakeLoad(port: port, clients: 2, transport: .quic)
        defer { quicLoad.stop() }
        #expect(tlsLoad.wait(forHandshakes: 10, timeout: 30) && quicLoad.wait(forHandshakes: 10, timeout: 30),
                "\(tlsLoad.report)\n\(quicLoad.report)\n\(first.transcript)")
        let long = try Connection.connect(.tcp, to: "127.0.0.1", port: port, tls: TestIdentity.clientTLS(), serverName: "localhost")
        try long.write(Array("before".utf8))
        #expect(try long.read() == Array("before".utf8))

        let second = try ChildProcess(try Self.quiver, arguments)
        defer { second.kill() }
        #expect(second.waitForErrorLine(containing: "took over tcp port \(port) and udp port \(port)", timeout: 30) != nil, "\(second.transcript)")
        second.send(signal: SIGKILL)
        #expect(second.waitForExit(timeout: 10) != nil)
        #expect(first.waitForErrorLine(containing: "took the port back", timeout: 10) != nil, "\(first.transcript)")
        // Connections at the killed process fail; every attempt from now on reaches the old one.
        let tookBack = Date()
        #expect(tlsLoad.wait(forHandshakes: tlsLoad.handshakes + 20, timeout: 60) && quicLoad.wait(forHandshakes: quicLoad.handshakes + 20, timeout: 60),
                "\(tlsLoad.report)\n\(quicLoad.report)\n\(first.transcript)")
        try long.write(Array("after".utf8))
        #expect(try long.read() == Array("after".utf8))

        // The old process serves the path again: a third process takes over from it.
        let third = try ChildProcess(try Self.quiver, arguments)
        defer { third.kill() }
        #expect(third.waitForErrorLine(containing: "took over tcp port \(port) and udp port \(port)", timeout: 30) != nil, "\(third.transcript)")
        #expect(tlsLoad.wait(forHandshakes: tlsLoad.handshakes + 20, timeout: 30) && quicLoad.wait(forHandshakes: quicLoad.handshakes + 20, timeout: 30),
                "\(tlsLoad.report)\n\(quicLoad.report)\n\(third.transcript)")
        try long.shutdown()
        #expect(first.waitForExit(timeout: 10) == 0, "\(first.transcript)")
        tlsLoad.stop()
        quicLoad.stop()
        let after = tlsLoad.failures(startedAfter: tookBack) + quicLoad.failures(startedAfter: tookBack)
        print("successor killed: \(tlsLoad.handshakes) TLS and \(quicLoad.handshakes) QUIC handshakes; \(tlsLoad.failures.count + quicLoad.failures.count - after.count) failed at the killed process, \(after.count) after the port was taken back")
        #expect(after.isEmpty, "\(after.prefix(5))\n\(tlsLoad.report)\n\(quicLoad.report)")
    }

    /// Runs `openssl s_client` (TLS 1.3) against the echo server on `port`, exchanges a line,
    /// and returns what it printed (its session summary says `New` or `Reused`).
    static func openSSLSession(port: UInt16, fixture: InteropFixture, arguments: [String]) throws -> String {
        let candidates: [String] = ["/usr/bin/openssl", "/usr/local/bin/openssl"]
        let openssl = try #require(candidates.first { access($0, X_OK) == 0 }, "openssl is needed (apt-get install openssl)")
        let peer = try ChildProcess(openssl, ["s_client", "-tls1_3", "-connect", "127.0.0.1:\(port)", "-CAfile", fixture.cert, "-alpn", "echo",
                                              "-verify_return_error", "-verify_hostname", "localhost"] + arguments)
        defer { peer.kill() }
        peer.write(Array("session check\n".utf8))
        // The echo comes after the session ticket (sent at the end of the handshake).
        #expect(peer.waitForLine(startingWith: "session check", timeout: 10) != nil, "\(peer.transcript)")
        peer.finishInput([])
        #expect(peer.waitForExit(timeout: 10) != nil, "\(peer.transcript)")
        return String(decoding: peer.standardOutput, as: UTF8.self)
    }
}

/// A test's end of a `--handover` unix socket: what a wrong peer sends.
enum UnixPeer {
    private static func address(_ path: String) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let bytes = Array(path.utf8)
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return address
    }

    /// Connects to `path`, sends `message` (nothing for `nil`) and returns the answer ("" when
    /// the other end closed without one).
    static func exchange(_ path: String, _ message: String?) throws -> String {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { _ = Glibc.close(fd) }
        var address = address(path)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(connected == 0, "connect \(path): \(String(cString: strerror(errno)))")
        guard let message else { return "" }
        try DescriptorPassing.send(Array(message.utf8), on: fd)
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let (bytes, descriptors) = try DescriptorPassing.receive(on: fd)
        #expect(descriptors.isEmpty)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Connects to `path`, sends `request`, takes the answer and its descriptors (closed here),
    /// renames `replacement` over `path` and leaves without another word: a new process that
    /// failed between taking the sockets and saying `ready`. Returns the answer.
    static func takeSocketsAndLeave(_ path: String, _ request: String, replacingPathWith replacement: String) throws -> String {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { _ = Glibc.close(fd) }
        var address = address(path)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(connected == 0, "connect \(path): \(String(cString: strerror(errno)))")
        try DescriptorPassing.send(Array(request.utf8), on: fd)
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let (bytes, descriptors) = try DescriptorPassing.receive(on: fd)
        for descriptor in descriptors { _ = Glibc.close(descriptor) }
        try #require(rename(replacement, path) == 0, "rename: \(String(cString: strerror(errno)))")
        return String(decoding: bytes, as: UTF8.self)
    }

    /// A unix socket listening at `path`.
    static func listen(_ path: String) throws -> Int32 {
        unlink(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = address(path)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(bound == 0 && Glibc.listen(fd, 1) == 0, "bind \(path): \(String(cString: strerror(errno)))")
        return fd
    }

    /// Accepts one connection on `server`, reads its request, answers `answer` (or closes at
    /// once for `nil`).
    static func answerOnce(_ server: Int32, _ answer: String?) {
        let connection = accept(server, nil, nil)
        guard connection >= 0 else { return }
        defer { _ = Glibc.close(connection) }
        _ = try? DescriptorPassing.receive(on: connection)
        if let answer { _ = try? DescriptorPassing.send(Array(answer.utf8), on: connection) }
    }
}
