#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Quiver
import QuiverCore
import QuiverTestSupport
import QuiverTLS
import QuiverUDP
import Synchronization
import Testing

/// The DDD demos as processes (Demos/README.md): 20 concurrent clients — ours and an
/// independent one (Python `ssl` for TLS, aioquic for QUIC) — send random payloads of 0 B to
/// 1 MiB in random chunks over the demo's ports and check the exact echo; the log shows the
/// connections spread over workers; SIGINT ends the demo with status 0 within 5 s.
@Suite("DDD demos end to end", .serialized)
struct DemoTests {
    static func executable(_ name: String) -> String? {
        let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [directory, directory.deletingLastPathComponent()] {
            let path = candidate.appendingPathComponent(name).path
            if access(path, X_OK) == 0 { return path }
        }
        return nil
    }

    /// A base port whose next `count` ports are free for both TCP and UDP a moment ago.
    static func freePorts(_ count: Int) throws -> UInt16 {
        for _ in 0..<50 {
            let base = try QuiverToolInteropTests.freePort()
            guard Int(base) + count < 65_536 else { continue }
            let ports = (0..<count).map { base + UInt16($0) }
            let free = ports.allSatisfy { port in
                guard let udp = try? UDPSocket(host: "127.0.0.1", port: port) else { return false }
                udp.close()
                let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                defer { close(fd) }
                var address = sockaddr_in()
                address.sin_family = sa_family_t(AF_INET)
                address.sin_port = port.bigEndian
                address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
                return withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                } == 0
            }
            if free { return base }
        }
        throw InteropFailure("no \(count) consecutive free ports")
    }

    static let pythonClient = """
        import os, socket, ssl, sys
        port, cafile, size = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
        context = ssl.create_default_context(cafile=cafile)
        context.set_alpn_protocols(["echo"])
        payload = os.urandom(size)
        with socket.create_connection(("127.0.0.1", port)) as raw:
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                offset = 0
                echo = bytearray()
                tls.setblocking(True)
                while offset < len(payload):
                    chunk = payload[offset:offset + 1 + (offset * 7919) % 65536]
                    tls.sendall(chunk)
                    offset += len(chunk)
                    while len(echo) < offset - 262144:  # keep the echo flowing
                        echo += tls.recv(65536)
                while len(echo) < len(payload):
                    data = tls.recv(65536)
                    if not data: break
                    echo += data
                assert bytes(echo) == payload, f"echo differs: {len(echo)} of {len(payload)} bytes"
        print("RESULT PASS", flush=True)
        """

    @Test("ddd-01-fork: 20 concurrent clients, each served by its own child process (QUIC re-homed on a connected socket), SIGINT reaps them",
          arguments: [Transport.tcp, .quic])
    func fork(transport: Transport) throws {
        try runDemo("ddd-01-fork", transport: transport, ports: 1, servedBy: "child ", distinctServers: 20)
    }

    @Test("ddd-01-fork over QUIC: two concurrent clients are served at the same time by two different child processes")
    func forkTwoClients() throws {
        try Self.withQUICForkDemo { demo, port, _ in try forkTwoClients(demo: demo, port: port) }
    }

    /// Runs `ddd-01-fork --quic` on a free port with a fresh certificate around `body` (given
    /// the demo, its port and the certificate's file), and kills what is left of it after.
    static func withQUICForkDemo(_ body: (_ demo: ChildProcess, _ port: UInt16, _ certificate: String) throws -> Void) throws {
        let demoPath = try #require(executable("ddd-01-fork"), "build the demos (swift build)")
        let directory = try TemporaryDirectory()
        let cert = try directory.write("cert.pem", TestIdentity.p256.chain.pemRepresentation)
        let key = try directory.write("key.pem", TestIdentity.p256.key.pemRepresentation)
        let port = try freePorts(1)
        let demo = try ChildProcess(demoPath, [cert, key, "--port", "\(port)", "--quic"])
        defer {
            demo.kill()
            // A child a failure left behind must not outlive the test.
            for child in servingChildren(demo) { _ = Glibc.kill(child, SIGKILL) }
        }
        try #require(demo.waitForErrorLine(containing: "listening on", timeout: 30) != nil, "\(demo.transcript)")
        try body(demo, port, cert)
    }

    private func forkTwoClients(demo: ChildProcess, port: UInt16) throws {
        let clients = try (0..<2).map { _ in
            try Connection.connect(.quic, to: "127.0.0.1", port: port, tls: TestIdentity.clientTLS(), serverName: "localhost")
        }
        // Both connections echo while both are open: each child serves its own.
        do {
            for round in 0..<3 {
                for (index, client) in clients.enumerated() {
                    let message = Array("round \(round) client \(index)".utf8)
                    try client.write(message)
                    var echoed: [UInt8] = []
                    while echoed.count < message.count { echoed += try client.read() }
                    #expect(echoed == message)
                }
            }
        } catch {
            // Rare (twice in many full CI runs, never under Scripts/stress.sh): a child stops
            // answering. What the demo logged and where each child's threads wait say why.
            Issue.record("\(error)\n\(demo.transcript)\n\(Self.threadStates(Self.servingChildren(demo)))")
            throw error
        }
        let children = Self.servingChildren(demo)
        #expect(Set(children).count == 2, "\(demo.transcript)")
        for child in children { #expect(Glibc.kill(child, 0) == 0, "child \(child) serves an open connection") }
        for client in clients {
            try client.finish()
            while !(try client.read()).isEmpty {}
            try client.shutdown()
            #expect(client.closeInfo?.isClean == true, "\(String(describing: client.closeInfo))")
        }
        #expect(demo.waitForErrorLine(containing: "bytes echoed", timeout: 5) != nil)
        demo.send(signal: SIGINT)
        #expect(demo.waitForExit(timeout: 5) == 0, "\(demo.transcript)")
        for child in children { #expect(Glibc.kill(child, 0) == -1 && errno == ESRCH, "child \(child) was reaped") }
    }

    /// The child processes ddd-01-fork said serve a connection.
    /// Each thread of each process: its state and the kernel function it waits in.
    static func threadStates(_ pids: [Int32]) -> String {
        pids.map { pid in
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
            let threads = tasks.sorted().map { task -> String in
                let stat = (try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/stat", encoding: .utf8)) ?? "?"
                let wchan = (try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/wchan", encoding: .utf8)) ?? "?"
                let state = stat.split(separator: ")").last?.split(separator: " ").first ?? "?"
                return "  thread \(task): state \(state), waits in \(wchan)"
            }
            return "child \(pid):\n" + (threads.isEmpty ? "  (gone)" : threads.joined(separator: "\n"))
        }.joined(separator: "\n")
    }

    static func servingChildren(_ demo: ChildProcess) -> [Int32] {
        demo.standardErrorText.split(separator: "\n").compactMap { line -> Int32? in
            guard line.contains(": serving "), let range = line.range(of: "child ") else { return nil }
            return Int32(line[range.upperBound...].prefix { $0.isNumber })
        }
    }

    @Test("ddd-02-prefork: 20 concurrent clients on 3 ports, 5 worker processes (QUIC steered by CID), SIGINT reaps them",
          arguments: [Transport.tcp, .quic])
    func prefork(transport: Transport) throws {
        try runDemo("ddd-02-prefork", transport: transport)
    }

    @Test("ddd-03-mt: 20 concurrent clients on 3 ports, 5 worker threads, SIGINT", arguments: [Transport.tcp, .quic])
    func multithreaded(transport: Transport) throws {
        try runDemo("ddd-03-mt", transport: transport)
    }

    @Test("ddd-04-async: 20 concurrent clients on 3 ports, 3 isolated Dispatch event loops on SO_REUSEPORT, SIGINT",
          arguments: [Transport.tcp, .quic])
    func async(transport: Transport) throws {
        try runDemo("ddd-04-async", transport: transport)
    }

    @Test("ddd-04b-async-await: 20 concurrent clients on 3 ports, a task per connection and per stream, SIGINT",
          arguments: [Transport.tcp, .quic])
    func asyncAwait(transport: Transport) throws {
        try runDemo("ddd-04b-async-await", transport: transport, servedBy: "listener ", distinctServers: 3)
    }

    /// Runs demo `name` on `ports` ports with 20 concurrent clients; the log names what served
    /// each connection (`<servedBy>N: connection from …`, for example `worker 2` or `child
    /// 4711`), and at least `distinctServers` different ones must appear. Process ids in the log
    /// (`(pid N)`, or the children of `servedBy: "child "`) must all be gone after SIGINT.
    /// Returns the demo's log.
    @discardableResult
    func runDemo(_ name: String, transport: Transport, extraArguments: [String] = [], ports: Int = 3, servedBy label: String = "worker ",
                 distinctServers: Int = 2) throws -> String {
        let demoPath = try #require(Self.executable(name), "build the demos (swift build)")
        let directory = try TemporaryDirectory()
        let cert = try directory.write("cert.pem", TestIdentity.p256.chain.pemRepresentation)
        let key = try directory.write("key.pem", TestIdentity.p256.key.pemRepresentation)
        let base = try Self.freePorts(ports)
        let demo = try ChildProcess(demoPath, [cert, key, "--port", "\(base)"] + (transport == .quic ? ["--quic"] : []) + extraArguments)
        defer { demo.kill() }
        try #require(demo.waitForErrorLine(containing: "listening on", timeout: 30) != nil, "\(demo.transcript)")

        let python = try AioquicPeer.python3()  // both independent clients are Python
        let failures = Mutex<[String]>([])
        let clients = DispatchGroup()
        for index in 0..<20 {
            let port = base + UInt16(index % ports)
            let size = index < 2 ? index * 17 : Int((UInt64(index) &* 2_654_435_761) % (1 << 20))
            clients.enter()
            Thread {
                defer { clients.leave() }
                do {
                    if index % 2 == 0 {
                        let connection = try Connection.connect(transport, to: "127.0.0.1", port: port, tls: TestIdentity.clientTLS(),
                                                                serverName: "localhost")
                        var rng = SplitMix64(seed: UInt64(index))
                        let data = (0..<size).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                        let writer = Thread {
                            var offset = 0
                            var chunks = SplitMix64(seed: UInt64(index) + 1000)
                            while offset < data.count {
                                let end = min(data.count, offset + 1 + Int(chunks.next() % 65_536))
                                try? connection.write(data[offset..<end])
                                offset = end
                            }
                            try? connection.finish()
                        }
                        writer.start()
                        var echoed: [UInt8] = []
                        while case let bytes = try connection.read(), !bytes.isEmpty { echoed += bytes }
                        if echoed != data { failures.withLock { $0.append("client \(index): \(echoed.count) of \(data.count) bytes, or different") } }
                        try connection.shutdown()
                    } else if transport == .tcp {
                        let client = try ChildProcess(python, ["-c", Self.pythonClient, "\(port)", cert, "\(size)"])
                        if client.waitForExit(timeout: 60) != 0 { failures.withLock { $0.append("python ssl client \(index): \(client.transcript)") } }
                    } else {
                        let client = try AioquicPeer.start(["client", "--port", "\(port)", "--ca", cert, "--sizes", "\(size)", "--timeout", "60"])
                        if client.waitForExit(timeout: 70) != 0 { failures.withLock { $0.append("aioquic client \(index): \(client.transcript)") } }
                    }
                } catch {
                    failures.withLock { $0.append("client \(index): \(error)") }
                }
            }.start()
        }
        #expect(clients.wait(timeout: .now() + 120) == .success, "clients did not finish")
        let problems = failures.withLock { $0 }
        #expect(problems.isEmpty, "\(problems.prefix(3).joined(separator: "\n"))\n\(demo.transcript)")

        // The connections were spread over workers.
        let log = demo.standardErrorText
        let workers = Set(log.split(separator: "\n").compactMap { line -> Substring? in
            guard line.contains(": connection from "), let range = line.range(of: label) else { return nil }
            return line[range.upperBound...].prefix { $0.isNumber }
        })
        #expect(workers.count >= distinctServers, "connections handled by \(label)\(workers)\n\(log)")
        #expect(log.components(separatedBy: ": connection from ").count - 1 == 20, "\(log)")

        demo.send(signal: SIGINT)
        #expect(demo.waitForExit(timeout: 5) == 0, "\(demo.transcript)")
        #expect(demo.waitForErrorLine(containing: "stopped", timeout: 1) != nil)
        // Worker or child processes were reaped: none is left.
        let processLabel = label == "child " ? label : "(pid "
        let pids = Set(log.split(separator: "\n").compactMap { line -> Int32? in
            guard let range = line.range(of: processLabel) else { return nil }
            return Int32(line[range.upperBound...].prefix { $0.isNumber })
        })
        #expect(label != "child " || pids.count >= distinctServers, "\(pids)")
        for pid in pids { #expect(Glibc.kill(pid, 0) == -1 && errno == ESRCH, "process \(pid) is still there") }
        return log
    }

    /// The demos over DTLS: 07 is DTLS by default; every other takes `--dtls` with no other change.
    static let dtlsDemos: [(name: String, arguments: [String])] = [
        ("ddd-07-dtls", []), ("ddd-01-fork", ["--dtls"]), ("ddd-02-prefork", ["--dtls"]), ("ddd-03-mt", ["--dtls"]),
        ("ddd-04-async", ["--dtls"]), ("ddd-04b-async-await", ["--dtls"]), ("ddd-05-async-nonpollable", ["--dtls"]),
        ("ddd-05-async-nonpollable", ["--dtls", "--unaddressed"]),
    ]

    @Test("DTLS demos: 20 concurrent clients (ours and openssl s_client -dtls1_2) on the demo's ports, messages echoed whole, SIGINT",
          arguments: dtlsDemos.indices)
    func dtlsDemo(_ which: Int) throws {
        let (name, arguments) = Self.dtlsDemos[which]
        let demoPath = try #require(Self.executable(name), "build the demos (swift build)")
        let candidates: [String] = ["/usr/bin/openssl", "/usr/local/bin/openssl"]
        let openssl = try #require(candidates.first { access($0, X_OK) == 0 }, "openssl is needed (apt-get install openssl)")
        let directory = try TemporaryDirectory()
        let cert = try directory.write("cert.pem", TestIdentity.p256.chain.pemRepresentation)
        let key = try directory.write("key.pem", TestIdentity.p256.key.pemRepresentation)
        let ports = name == "ddd-01-fork" ? 1 : 3
        let base = try Self.freePorts(ports)
        let demo = try ChildProcess(demoPath, [cert, key, "--port", "\(base)"] + arguments)
        defer { demo.kill() }
        try #require(demo.waitForErrorLine(containing: "listening on DTLS", timeout: 30) != nil, "\(demo.transcript)")

        let failures = Mutex<[String]>([])
        let clients = DispatchGroup()
        for index in 0..<20 {
            let port = base + UInt16(index % ports)
            clients.enter()
            Thread {
                defer { clients.leave() }
                do {
                    if index % 4 == 1 {
                        // openssl s_client: each line one record; lockstep, as DTLS does not retransmit.
                        let client = try ChildProcess(openssl, ["s_client", "-dtls1_2", "-connect", "127.0.0.1:\(port)", "-CAfile", cert,
                                                                "-verify_return_error", "-verify_hostname", "localhost", "-quiet", "-no_ign_eof"])
                        for line in 0..<3 {
                            let text = "client \(index) line \(line) " + String(repeating: "x", count: 100 * line)
                            client.write(Array((text + "\n").utf8))
                            if client.waitForLine(startingWith: text, timeout: 20) == nil {
                                failures.withLock { $0.append("openssl client \(index): no echo of line \(line): \(client.transcript)") }
                                return
                            }
                        }
                        client.finishInput([])
                        if client.waitForExit(timeout: 20) != 0 { failures.withLock { $0.append("openssl client \(index): \(client.transcript)") } }
                    } else {
                        let connection = try Connection.connect(.dtls, to: "127.0.0.1", port: port, tls: TestIdentity.clientTLS(),
                                                                serverName: "localhost")
                        var rng = SplitMix64(seed: UInt64(index))
                        for message in 0..<40 {
                            let size = message == 0 ? 16_384 : 1 + Int(rng.next() % 16_384)
                            let data = (0..<size).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                            try connection.write(data)
                            let echoed = try connection.read()
                            if echoed != data {
                                failures.withLock { $0.append("client \(index) message \(message): \(echoed.count) of \(size) bytes, or different") }
                                return
                            }
                        }
                        try connection.finish()
                        if try connection.read() != [] { failures.withLock { $0.append("client \(index): more than the echo") } }
                        try connection.shutdown()
                        if connection.closeInfo?.isClean != true { failures.withLock { $0.append("client \(index): \(String(describing: connection.closeInfo))") } }
                    }
                } catch {
                    failures.withLock { $0.append("client \(index): \(error)") }
                }
            }.start()
        }
        #expect(clients.wait(timeout: .now() + 120) == .success, "clients did not finish")
        let problems = failures.withLock { $0 }
        #expect(problems.isEmpty, "\(problems.prefix(3).joined(separator: "\n"))\n\(demo.transcript)")
        let log = demo.standardErrorText
        #expect(log.components(separatedBy: ": connection from ").count - 1 == 20, "\(log)")

        demo.send(signal: SIGINT)
        #expect(demo.waitForExit(timeout: 5) == 0, "\(demo.transcript)")
        #expect(demo.waitForErrorLine(containing: "stopped", timeout: 1) != nil)
        guard name == "ddd-07-dtls" else { return }
        for port in base..<(base + 3) { #expect(log.contains("port \(port): connection from"), "\(log)") }
        // Every client proved its address with a cookie first (RFC 6347 §4.2.1).
        let cookies = demo.standardErrorText.split(separator: "\n").compactMap { line -> Int? in
            guard let range = line.range(of: " cookies sent statelessly") else { return nil }
            return Int(line[..<range.lowerBound].split(separator: " ").last ?? "")
        }
        #expect(cookies.count == 3 && cookies.reduce(0, +) >= 20, "\(demo.standardErrorText)")
    }

    /// The demos over SCTP (UDP encapsulation): each takes `--sctp` with no other change. Fork
    /// hand-off and prefork are not built for SCTP yet (ddd-02 says so; see `sctpPreforkRefused`).
    static let sctpDemos: [(name: String, arguments: [String])] = [
        ("ddd-03-mt", ["--sctp"]), ("ddd-04-async", ["--sctp"]), ("ddd-04b-async-await", ["--sctp"]),
        ("ddd-05-async-nonpollable", ["--sctp"]), ("ddd-05-async-nonpollable", ["--sctp", "--unaddressed"]),
    ]

    @Test("SCTP demos: 20 concurrent clients (ours and usrsctp's) on the demo's ports, messages echoed whole, SIGINT",
          arguments: sctpDemos.indices)
    func sctpDemo(_ which: Int) throws {
        let (name, arguments) = Self.sctpDemos[which]
        let demoPath = try #require(Self.executable(name), "build the demos (swift build)")
        let usrsctpClient = "/usr/lib/usrsctp/client"
        let useUsrsctp = access(usrsctpClient, X_OK) == 0
        try #require(useUsrsctp || !AioquicPeer.required, "usrsctp's client is needed (apt-get install libusrsctp-examples)")
        let base = try Self.freePorts(3)
        let demo = try ChildProcess(demoPath, ["--port", "\(base)"] + arguments)
        defer { demo.kill() }
        try #require(demo.waitForErrorLine(containing: "listening on SCTP", timeout: 30) != nil, "\(demo.transcript)")

        let failures = Mutex<[String]>([])
        let clients = DispatchGroup()
        for index in 0..<20 {
            let port = base + UInt16(index % 3)
            clients.enter()
            Thread {
                defer { clients.leave() }
                do {
                    if index % 4 == 1, useUsrsctp {
                        // usrsctp's client: each line one message; its SHUTDOWN at end of input.
                        let localPort = try QuiverToolInteropTests.freePort()
                        let client = try ChildProcess(usrsctpClient, ["127.0.0.1", "5000", "0", "\(localPort)", "\(port)"])
                        defer { client.kill() }
                        for line in 0..<3 {
                            let text = "client \(index) line \(line) " + String(repeating: "x", count: 100 * line)
                            client.write(Array((text + "\n").utf8))
                            if client.waitForLine(startingWith: text, timeout: 20) == nil {
                                failures.withLock { $0.append("usrsctp client \(index): no echo of line \(line): \(client.transcript)") }
                                return
                            }
                        }
                    } else {
                        let connection = try Connection.connect(.sctp, to: "127.0.0.1", port: port, tls: TestIdentity.clientTLS(),
                                                                serverName: nil)
                        var rng = SplitMix64(seed: UInt64(index))
                        for message in 0..<40 {
                            let size = message == 0 ? 65_536 : 1 + Int(rng.next() % 16_384)
                            let data = (0..<size).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                            try connection.write(data)
                            let echoed = try connection.read()
                            if echoed != data {
                                failures.withLock { $0.append("client \(index) message \(message): \(echoed.count) of \(size) bytes, or different") }
                                return
                            }
                        }
                        try connection.finish()
                        if try connection.read() != [] { failures.withLock { $0.append("client \(index): more than the echo") } }
                        try connection.shutdown()
                        if connection.closeInfo?.isClean != true { failures.withLock { $0.append("client \(index): \(String(describing: connection.closeInfo))") } }
                    }
                } catch {
                    failures.withLock { $0.append("client \(index): \(error)") }
                }
            }.start()
        }
        #expect(clients.wait(timeout: .now() + 120) == .success, "clients did not finish")
        let problems = failures.withLock { $0 }
        #expect(problems.isEmpty, "\(problems.prefix(3).joined(separator: "\n"))\n\(demo.transcript)")
        let log = demo.standardErrorText
        #expect(log.components(separatedBy: ": connection from ").count - 1 == 20, "\(log)")
        demo.send(signal: SIGINT)
        #expect(demo.waitForExit(timeout: 5) == 0, "\(demo.transcript)")
    }

    /// Demo 08's modes: its flags, the transport our clients use, the independent client.
    static let sctpDemo08Modes: [(flags: [String], transport: Transport, independent: String?)] = [
        ([], .dtlsOverSCTP, nil),  // no independent DTLS over SCTP runs here (OpenSSL's needs kernel SCTP)
        (["--over-dtls"], .sctpOverDTLS, "pionsctp"),
        (["--plain"], .sctp, "usrsctp"),
    ]

    @Test("ddd-08-sctp: 12 concurrent clients, three streams each echoed on itself with its end, and independent clients; SIGINT",
          arguments: sctpDemo08Modes.indices)
    func sctpDemo08(_ which: Int) throws {
        let mode = Self.sctpDemo08Modes[which]
        let demoPath = try #require(Self.executable("ddd-08-sctp"), "build the demos (swift build)")
        let independent: String? = switch mode.independent {
        case "pionsctp": Peer.pionsctp.path
        case "usrsctp": Peer.usrsctpClient.path
        default: nil
        }
        try #require(mode.independent == nil || independent != nil || !AioquicPeer.required, "\(mode.independent ?? "") is needed (.ci/run installs it)")
        let directory = try TemporaryDirectory()
        let cert = try directory.write("cert.pem", TestIdentity.p256.chain.pemRepresentation)
        let key = try directory.write("key.pem", TestIdentity.p256.key.pemRepresentation)
        let port = try Self.freePorts(1)
        let demo = try ChildProcess(demoPath, [cert, key, "--port", "\(port)"] + mode.flags)
        defer { demo.kill() }
        try #require(demo.waitForErrorLine(containing: "listening on", timeout: 30) != nil, "\(demo.transcript)")

        let failures = Mutex<[String]>([])
        let clients = DispatchGroup()
        let independentClients = independent == nil ? 0 : 2
        for index in 0..<(12 + independentClients) {
            clients.enter()
            Thread {
                defer { clients.leave() }
                do {
                    if index >= 12, let independent {
                        let text = "client \(index) of ddd-08"
                        if mode.independent == "pionsctp" {
                            // pion (DTLS and SCTP as WebRTC runs them): a message on stream 1, its echo.
                            let client = try PeerProcess(independent, ["-mode", "client", "-over", "dtls", "-raddr", "127.0.0.1:\(port)", "-msg", text])
                            defer { client.kill() }
                            try client.waitForStdout(containing: "\"\(text)\"", timeout: 20)
                        } else {
                            let client = try ChildProcess(independent, ["127.0.0.1", "5000", "0", "\(try QuiverToolInteropTests.freePort())", "\(port)"])
                            defer { client.kill() }
                            client.write(Array((text + "\n").utf8))
                            if client.waitForLine(startingWith: text, timeout: 20) == nil { throw QuiverError(.io, "usrsctp: no echo: \(client.transcript)") }
                        }
                        return
                    }
                    let connection = try Connection.connect(mode.transport, to: "127.0.0.1", port: port, tls: TestIdentity.clientTLS(), serverName: "localhost")
                    let streams = [connection.defaultStream] + (try (0..<2).map { _ in try connection.openStream() })
                    let perStream = Mutex<[String]>([])
                    let group = DispatchGroup()
                    for (number, stream) in streams.enumerated() {
                        group.enter()
                        Thread {
                            defer { group.leave() }
                            var rng = SplitMix64(seed: UInt64(index * 10 + number))
                            do {
                                for message in 0..<15 {
                                    let size = 1 + Int(rng.next() % 16_384)
                                    let data = (0..<size).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                                    try stream.write(data)
                                    let echoed = try stream.read(maxBytes: 1 << 16)
                                    if echoed != data { perStream.withLock { $0.append("stream \(number) message \(message): \(echoed.count) of \(size) bytes, or different") } }
                                }
                                if number > 0 {
                                    try stream.finish()
                                    if try stream.read() != [] { perStream.withLock { $0.append("stream \(number): more than the echo") } }
                                }
                            } catch {
                                perStream.withLock { $0.append("stream \(number): \(error)") }
                            }
                        }.start()
                    }
                    group.wait()
                    try connection.finish()
                    if try connection.read() != [] { perStream.withLock { $0.append("more than the echo on stream 0") } }
                    try connection.shutdown()
                    if connection.closeInfo?.isClean != true { perStream.withLock { $0.append("\(String(describing: connection.closeInfo))") } }
                    let problems = perStream.withLock { $0 }
                    if !problems.isEmpty { failures.withLock { $0.append("client \(index): \(problems.joined(separator: "; "))") } }
                } catch {
                    failures.withLock { $0.append("client \(index): \(error)") }
                }
            }.start()
        }
        #expect(clients.wait(timeout: .now() + 120) == .success, "clients did not finish")
        let problems = failures.withLock { $0 }
        #expect(problems.isEmpty, "\(problems.prefix(3).joined(separator: "\n"))\n\(demo.transcript)")
        let log = demo.standardErrorText
        #expect(log.components(separatedBy: ": association with ").count - 1 == 12 + independentClients, "\(log)")
        if mode.transport == .dtlsOverSCTP { #expect(log.contains("(TLS 1.2)"), "\(log)") }
        demo.send(signal: SIGINT)
        #expect(demo.waitForExit(timeout: 5) == 0, "\(demo.transcript)")
        #expect(demo.standardErrorText.contains("stopped"), "\(demo.transcript)")
    }

    @Test("ddd-02-prefork --sctp says prefork over SCTP is not built yet, and exits")
    func sctpPreforkRefused() throws {
        let demoPath = try #require(Self.executable("ddd-02-prefork"), "build the demos (swift build)")
        let demo = try ChildProcess(demoPath, ["--port", "\(try Self.freePorts(1))", "--sctp"])
        defer { demo.kill() }
        #expect(demo.waitForExit(timeout: 30) == 2, "\(demo.transcript)")
        #expect(demo.standardErrorText.contains("prefork over SCTP is not built yet"), "\(demo.transcript)")
    }

    @Test("ddd-02-prefork over QUIC: a client whose source port changes mid-connection stays with its worker")
    func preforkRebinding() throws {
        let demoPath = try #require(Self.executable("ddd-02-prefork"), "build the demos (swift build)")
        let directory = try TemporaryDirectory()
        let cert = try directory.write("cert.pem", TestIdentity.p256.chain.pemRepresentation)
        let key = try directory.write("key.pem", TestIdentity.p256.key.pemRepresentation)
        let base = try Self.freePorts(1)
        let demo = try ChildProcess(demoPath, [cert, key, "--port", "\(base)", "--listeners", "1", "--quic"])
        defer { demo.kill() }
        try #require(demo.waitForErrorLine(containing: "listening on", timeout: 30) != nil, "\(demo.transcript)")

        // A NAT in between: the client talks to `front`; the server sees `back[0]`, then, once
        // `rebound` is set, `back[1]` — a new source port, as after a NAT rebinding.
        let server = SocketAddress(host: "127.0.0.1", port: base)!
        let relay = try UDPRelay(server: server)
        let connection = try Connection.connect(.quic, to: "127.0.0.1", port: relay.port, tls: TestIdentity.clientTLS(), serverName: "localhost")
        var rng = SplitMix64(seed: 4242)
        let data = (0..<(1 << 20)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let echoed = try relay.echoRebindingOnce(data, over: connection)
        #expect(echoed == data, "\(echoed.count) of \(data.count) bytes echoed")
        try connection.shutdown()
        relay.stop()
        #expect(relay.reboundDatagrams > 0, "the rebinding happened")
        let log = demo.standardErrorText
        #expect(log.components(separatedBy: ": connection from ").count - 1 == 1, "one worker, one connection\n\(log)")
        demo.send(signal: SIGINT)
        #expect(demo.waitForExit(timeout: 5) == 0, "\(demo.transcript)")
    }
}
