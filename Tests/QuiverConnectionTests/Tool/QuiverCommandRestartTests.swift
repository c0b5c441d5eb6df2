// quiver serve --handover: restarting without dropped connections (issue 22, last item).
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Quiver
import QuiverTestSupport
import Synchronization
import Testing

extension QuiverCommandTests {
    @Test("serve --handover: two restarts under a steady load of handshakes — none fails, a connection open across both echoes 2 MB byte for byte, each old process exits by itself once its connections ended; over TLS a session resumes at the new process",
          arguments: [Transport.quic, .tcp])
    func restartWithoutDroppedConnections(_ transport: Transport) throws {
        let quic = transport == .quic
        let (fixture, path, secrets, port) = try handoverSetup()
        let arguments = ["serve", quic ? "--quic" : "--tls", "--host", "127.0.0.1", "--port", "\(port)", "--cert", fixture.cert,
                         "--key", fixture.key, "--loops", "2", "--handover", path, "--drain-timeout", "60", "--secrets", secrets]
        let first = try ChildProcess(try Self.quiver, arguments)
        defer { first.kill() }
        #expect(first.waitForErrorLine(containing: quic ? "serving QUIC echo" : "serving TLS 1.3/1.2 echo on tcp", timeout: 30) != nil,
                "\(first.transcript)")
        /// `quiver serve`'s line for a takeover: QUIC names the generation of the socket group.
        func tookOver(_ process: ChildProcess, generation: Int) -> Bool {
            let line = process.waitForErrorLine(containing: "took over \(quic ? "udp" : "tcp") port \(port)", timeout: 30)
            return line.map { !quic || $0.contains("generation \(generation)") } ?? false
        }

        // Two clients making handshakes back to back, each checking its echo, and one
        // connection open across both restarts.
        let load = HandshakeLoad(port: port, clients: 2, transport: transport)
        defer { load.stop() }
        #expect(load.wait(forHandshakes: 20, timeout: 30), "\(load.report)\n\(first.transcript)")
        let long = try Connection.connect(transport, to: "127.0.0.1", port: port, tls: TestIdentity.clientTLS(), serverName: "localhost")
        let data = (0..<2_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 11) }
        var echoed: [UInt8] = []
        // In pieces of 50 000 bytes, each read back before the next is written: the echo
        // never waits on flow control.
        func echo(_ range: Range<Int>) throws {
            for start in stride(from: range.lowerBound, to: range.upperBound, by: 50_000) {
                let end = min(start + 50_000, range.upperBound)
                try long.write(data[start..<end])
                while echoed.count < end {
                    let bytes = try long.read()
                    guard !bytes.isEmpty else { return }
                    echoed += bytes
                }
            }
        }
        try echo(0..<700_000)
        // TLS: a TLS 1.3 session ticket from the first process (the --secrets file's key).
        let session = fixture.directory.path + "/session.pem"
        if !quic {
            #expect(try Self.openSSLSession(port: port, fixture: fixture, arguments: ["-sess_out", session]).contains("New, TLSv1.3"))
        }

        // Restart 1 (QUIC: generation 1 takes over from generation 0).
        let before = load.handshakes
        let second = try ChildProcess(try Self.quiver, arguments)
        defer { second.kill() }
        #expect(tookOver(second, generation: 1), "\(second.transcript)")
        #expect(first.waitForErrorLine(containing: "handed the sockets over", timeout: 10) != nil, "\(first.transcript)")
        // New connections reach the new process while the old one still serves this one.
        #expect(load.wait(forHandshakes: load.handshakes + 50, timeout: 30), "\(load.report)\n\(second.transcript)")
        if !quic {
            // The ticket of the first process resumes the session at the second.
            #expect(try Self.openSSLSession(port: port, fixture: fixture, arguments: ["-sess_in", session]).contains("Reused, TLSv1.3"))
        }
        try echo(700_000..<1_400_000)
        #expect(first.waitForExit(timeout: 0.5) == nil, "the old process left while a connection was open\n\(first.transcript)")

        // Restart 2 is refused while the first process still drains.
        let third = try ChildProcess(try Self.quiver, arguments)
        defer { third.kill() }
        let refused = third.waitForExit(timeout: 30)
        #expect(refused != nil && refused != 0, "\(third.transcript)")
        #expect(third.standardErrorText.contains("one restart at a time"), "\(third.transcript)")

        try echo(1_400_000..<data.count)
        try long.shutdown()
        #expect(echoed == data, "\(echoed.count) of \(data.count) bytes echoed, equal so far: \(echoed[...] == data.prefix(echoed.count))")
        // The old process leaves by itself once its last connection ended, long before the
        // 60-second drain timeout.
        #expect(first.waitForExit(timeout: 10) == 0, "\(first.transcript)")
        #expect(second.waitForErrorLine(containing: "ready for the next handover", timeout: 10) != nil, "\(second.transcript)")

        // Restart 2, from the second process to a fourth (QUIC: generation 0 again).
        let fourth = try ChildProcess(try Self.quiver, arguments)
        defer { fourth.kill() }
        #expect(tookOver(fourth, generation: 0), "\(fourth.transcript)")
        #expect(load.wait(forHandshakes: load.handshakes + 50, timeout: 30), "\(load.report)\n\(fourth.transcript)")
        #expect(second.waitForExit(timeout: 10) == 0, "\(second.transcript)")
        #expect(load.wait(forHandshakes: load.handshakes + 20, timeout: 30), "\(load.report)\n\(fourth.transcript)")
        load.stop()
        let during = load.handshakes - before
        print("\(transport) restart test: \(during) handshakes from the first restart to the end, \(load.handshakes) in all, \(load.failures.count) failed; a 2 MB echo across both restarts")
        #expect(load.failures.isEmpty, "\(load.report)")
        // No process failed a handshake, and (QUIC) nothing reached a process that did not
        // know its connection: none sent a stateless reset.
        let clean = quic ? "handshakes failed 0, stateless resets sent 0" : "handshakes failed 0"
        for old in [first, second] {
            let leaving = old.waitForErrorLine(containing: "connections ended: leaving", timeout: 1) ?? old.transcript
            #expect(leaving.contains(clean), "\(leaving)")
        }
        for new in [second, fourth] {
            let left = new.waitForErrorLine(containing: "the previous process has left", timeout: 5) ?? new.transcript
            #expect(left.contains(clean), "\(left)")
        }
    }

    /// What a hand-over test needs: a fixture, the unix socket's path, a shared-secrets file
    /// written by `quiver secrets`, and a free port.
    func handoverSetup() throws -> (fixture: InteropFixture, path: String, secrets: String, port: UInt16) {
        let fixture = try InteropFixture()
        let secrets = fixture.directory.path + "/secrets.json"
        #expect(try run(["secrets", "--out", secrets]).waitForExit(timeout: 5) == 0)
        return (fixture, fixture.directory.path + "/handover", secrets, try DemoTests.freePorts(1))
    }

    @Test("serve --handover refuses, in one line, a serve without --secrets and more loops than one message passes sockets for")
    func handoverRefusals() throws {
        let fixture = try InteropFixture()
        let path = fixture.directory.path + "/handover"
        expectOneLineError(try run(["serve", "--quic", "--port", "0", "--handover", path]), containing: "needs --secrets FILE")
        let secrets = fixture.directory.path + "/secrets.json"
        #expect(try run(["secrets", "--out", secrets]).waitForExit(timeout: 5) == 0)
        expectOneLineError(try run(["serve", "--quic", "--port", "0", "--handover", path, "--secrets", secrets, "--loops", "33"]),
                           containing: "give --loops 32 or fewer")
    }
}

/// Clients on threads of their own, each making handshakes to the echo server back to back
/// (QUIC, or TLS over TCP) and checking the echo of a few bytes, until ``stop()``.
final class HandshakeLoad: Sendable {
    private struct State {
        var handshakes = 0
        /// Each failed attempt, with when it started.
        var failures: [(started: Date, text: String)] = []
        var stopped = false
        var running = 0
    }

    private let state = Mutex(State())
    private let condition = NSCondition()

    init(port: UInt16, clients: Int, transport: Transport = .quic) {
        state.withLock { $0.running = clients }
        for client in 0..<clients {
            Thread.detachNewThread { [self] in
                var round = 0
                while !state.withLock({ $0.stopped }) {
                    round += 1
                    let message = Array("client \(client) round \(round)".utf8)
                    let started = Date()
                    do {
                        let connection = try Connection.connect(transport, to: "127.0.0.1", port: port, tls: TestIdentity.clientTLS(), serverName: "localhost")
                        try connection.write(message)
                        var echoed: [UInt8] = []
                        while echoed.count < message.count {
                            let bytes = try connection.read()
                            guard !bytes.isEmpty else { break }
                            echoed += bytes
                        }
                        try connection.shutdown()
                        guard echoed == message else { throw EchoMismatch(echoed: echoed.count, sent: message.count) }
                        state.withLock { $0.handshakes += 1 }
                    } catch {
                        state.withLock { $0.failures.append((started, "\(transport) client \(client) round \(round): \(error)")) }
                    }
                    wake()
                }
                state.withLock { $0.running -= 1 }
                wake()
            }
        }
    }

    private struct EchoMismatch: Error {
        let echoed: Int
        let sent: Int
    }

    private func wake() {
        condition.lock()
        condition.broadcast()
        condition.unlock()
    }

    var handshakes: Int { state.withLock { $0.handshakes } }
    var failures: [String] { state.withLock { $0.failures.map(\.text) } }
    /// The failed attempts that started at `date` or later.
    func failures(startedAfter date: Date) -> [String] { state.withLock { $0.failures.filter { $0.started >= date }.map(\.text) } }
    var report: String { state.withLock { "\($0.handshakes) handshakes, \($0.failures.count) failed: \($0.failures.prefix(5).map(\.text))" } }

    /// Waits until `count` handshakes succeeded in all, or `timeout` seconds passed.
    func wait(forHandshakes count: Int, timeout: Double) -> Bool {
        let deadline = Date(timeIntervalSinceNow: timeout)
        condition.lock()
        defer { condition.unlock() }
        while handshakes < count {
            if !condition.wait(until: deadline) { return handshakes >= count }
        }
        return true
    }

    /// Stops the clients and waits until each finished its round.
    func stop() {
        state.withLock { $0.stopped = true }
        let deadline = Date(timeIntervalSinceNow: 30)
        condition.lock()
        defer { condition.unlock() }
        while state.withLock({ $0.running }) > 0, condition.wait(until: deadline) {}
    }
}
