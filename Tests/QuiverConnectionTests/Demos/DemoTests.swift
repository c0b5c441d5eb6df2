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

    /// Runs the demo through the checks above; returns its log.
    @discardableResult
    func runDemo(_ name: String, transport: Transport, extraArguments: [String] = []) throws -> String {
        let demoPath = try #require(Self.executable(name), "build the demos (swift build)")
        let directory = try TemporaryDirectory()
        let cert = try directory.write("cert.pem", TestIdentity.p256.chain.pemRepresentation)
        let key = try directory.write("key.pem", TestIdentity.p256.key.pemRepresentation)
        let base = try Self.freePorts(3)
        let demo = try ChildProcess(demoPath, [cert, key, "--port", "\(base)"] + (transport == .quic ? ["--quic"] : []) + extraArguments)
        defer { demo.kill() }
        try #require(demo.waitForErrorLine(containing: "listening on", timeout: 30) != nil, "\(demo.transcript)")

        let python = try AioquicPeer.python3()  // both independent clients are Python
        let failures = Mutex<[String]>([])
        let clients = DispatchGroup()
        for index in 0..<20 {
            let port = base + UInt16(index % 3)
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
            guard line.contains(": connection from "), let range = line.range(of: "worker ") else { return nil }
            return line[range.upperBound...].prefix { $0.isNumber }
        })
        #expect(workers.count >= 2, "connections handled by workers \(workers)\n\(log)")
        #expect(log.components(separatedBy: ": connection from ").count - 1 == 20, "\(log)")

        demo.send(signal: SIGINT)
        #expect(demo.waitForExit(timeout: 5) == 0, "\(demo.transcript)")
        #expect(demo.waitForErrorLine(containing: "stopped", timeout: 1) != nil)
        // Worker processes (prefork) were reaped: none is left.
        let pids = Set(log.split(separator: "\n").compactMap { line -> Int32? in
            guard let range = line.range(of: "(pid ") else { return nil }
            return Int32(line[range.upperBound...].prefix { $0.isNumber })
        })
        for pid in pids { #expect(Glibc.kill(pid, 0) == -1 && errno == ESRCH, "worker process \(pid) is still there") }
        return log
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
        let relay = try Relay(server: server)
        let connection = try Connection.connect(.quic, to: "127.0.0.1", port: relay.port, tls: TestIdentity.clientTLS(), serverName: "localhost")
        var rng = SplitMix64(seed: 4242)
        let data = (0..<(1 << 20)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let writer = Thread {
            var offset = 0
            while offset < data.count {
                let end = min(data.count, offset + 16_384)
                try? connection.write(data[offset..<end])
                offset = end
            }
            try? connection.finish()
        }
        writer.start()
        // A connection that lost its worker would stall, not fail: bound the test.
        DispatchQueue.global().asyncAfter(deadline: .now() + 60) { try? connection.shutdown(.rapid(code: 1, reason: "test timeout")) }
        var echoed: [UInt8] = []
        while case let bytes = try connection.read(), !bytes.isEmpty {
            echoed += bytes
            if echoed.count > data.count / 3 { relay.rebind() }
        }
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

/// A UDP relay standing for a NAT: datagrams from the client go to the server from one of two
/// back sockets, switched by ``rebind()``; the server's answers (to either) go back to the client.
final class Relay: @unchecked Sendable {
    // @unchecked: the sockets are used only by the relay thread; flags are atomics.
    private let front: UDPSocket
    private let back: [UDPSocket]
    private let server: SocketAddress
    private let rebound = Atomic<Bool>(false)
    private let stopping = Atomic<Bool>(false)
    private let reboundCount = Atomic<Int>(0)
    private let done = DispatchSemaphore(value: 0)
    let port: UInt16

    init(server: SocketAddress) throws {
        self.server = server
        front = try UDPSocket(bindingTo: SocketAddress("127.0.0.1:0")!)
        back = [try UDPSocket(bindingTo: SocketAddress("127.0.0.1:0")!), try UDPSocket(bindingTo: SocketAddress("127.0.0.1:0")!)]
        port = front.localAddress.port
        Thread { [self] in run() }.start()
    }

    func rebind() { rebound.store(true, ordering: .releasing) }
    var reboundDatagrams: Int { reboundCount.load(ordering: .relaxed) }

    func stop() {
        stopping.store(true, ordering: .releasing)
        done.wait()
    }

    private func run() {
        defer { done.signal() }
        var client: SocketAddress?
        while !stopping.load(ordering: .acquiring) {
            var fds = ([front] + back).map { pollfd(fd: $0.pollDescriptor, events: Int16(POLLIN), revents: 0) }
            _ = poll(&fds, nfds_t(fds.count), 20)
            while (try? front.receive()) ?? 0 > 0 {
                for index in 0..<front.receivedCount {
                    client = front.received(index).source
                    let bytes = front.withReceivedBytes(index) { Array($0) }
                    let out = back[rebound.load(ordering: .acquiring) ? 1 : 0]
                    if rebound.load(ordering: .acquiring) { reboundCount.add(1, ordering: .relaxed) }
                    out.enqueue(bytes, to: server)
                    _ = try? out.flush()
                }
            }
            for socket in back {
                while (try? socket.receive()) ?? 0 > 0 {
                    for index in 0..<socket.receivedCount {
                        guard let client else { continue }
                        front.enqueue(socket.withReceivedBytes(index) { Array($0) }, to: client)
                    }
                    _ = try? front.flush()
                }
            }
        }
    }
}
