// The HTTP/3 interop matrix (issue 7): Quiver against ngtcp2 (Debian's gtlsclient/gtlsserver
// 0.12.1, GnuTLS) and aioquic 1.7.2 (aioquic_h3_peer.py), in both roles, over the QUIC
// interop runner's test cases that one machine can reproduce. Quiver runs as the `quiver`
// command (`serve --http3`, `get`), the peers as their own programs; a UDP relay in between
// injects loss, counts bytes and sees Retry packets. Every outcome is recorded (passed,
// unsupported by the peer with the evidence, or failed) for docs/INTEROP.md.
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import QuiverCore
import QuiverTLS
import QuiverTestSupport
import Synchronization
import Testing

/// The interop runner's test cases (https://github.com/quic-interop/quic-interop-runner).
enum InteropCase: String, CaseIterable, Sendable {
    case handshake, transfer, multiplexing, chacha20, retry, resumption, zerortt, keyupdate, v2
    case transferloss, handshakeloss, amplificationlimit
    case rebindport = "rebind-port", rebindaddr = "rebind-addr", ipv6, blackhole, longrtt, ecn
    /// The server offers a preferred address (RFC 9000 §9.6, on 127.0.0.2 with a port of its
    /// own); the client moves there once the handshake is confirmed and downloads from there.
    case connectionmigration
    /// Not a runner case name: the client moves to a new local port mid-transfer by itself
    /// (active migration, RFC 9000 §9.2), with a new connection ID.
    case migration
    /// Not a runner case name: the runner's transfer (1 MiB + 5 MiB) over hq-interop, which the
    /// runner itself uses for most cases.
    case hqinterop
}

/// The independent implementations.
enum H3Peer: String, CaseIterable, Sendable {
    case ngtcp2, aioquic
}

/// Which side Quiver plays.
enum InteropRole: String, Sendable {
    case server, client
}

/// ngtcp2's example client and server from Debian (`apt-get install ngtcp2-client
/// ngtcp2-server`), found in PATH, /usr/bin or /usr/sbin. The skip rule is AioquicPeer's.
enum NgtcpPeer {
    static let availability: Result<(client: String, server: String), InteropFailure> = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let directories = path.split(separator: ":").map(String.init) + ["/usr/bin", "/usr/sbin"]
        func find(_ name: String) -> String? { directories.map { $0 + "/" + name }.first { access($0, X_OK) == 0 } }
        guard let client = find("gtlsclient"), let server = find("gtlsserver") else {
            return .failure(InteropFailure("gtlsclient/gtlsserver not found (apt-get install -y ngtcp2-client ngtcp2-server)"))
        }
        return .success((client, server))
    }()

    static var requirement: ConditionTrait {
        .enabled(if: AioquicPeer.required || (try? availability.get()) != nil,
                 "interop peer not installed: ngtcp2's gtlsclient/gtlsserver (apt-get install -y ngtcp2-client ngtcp2-server); set QUIVER_REQUIRE_PEERS=1 to fail instead of skipping")
    }

    static func paths() throws(InteropFailure) -> (client: String, server: String) { try availability.get() }
}

/// The outcomes of the matrix, appended as JSON lines to `$QUIVER_INTEROP_RESULTS` when set
/// (Scripts/interop-table.py turns them into docs/INTEROP.md).
enum InteropResults {
    enum Outcome: String { case passed, unsupported, notApplicable = "not applicable", failed }

    static func record(_ role: InteropRole, _ peer: H3Peer, _ testCase: InteropCase, _ outcome: Outcome, _ detail: String) {
        guard let path = ProcessInfo.processInfo.environment["QUIVER_INTEROP_RESULTS"] else { return }
        let entry: [String: String] = ["role": role.rawValue, "peer": peer.rawValue, "case": testCase.rawValue,
                                       "outcome": outcome.rawValue, "detail": detail]
        guard var line = try? JSONSerialization.data(withJSONObject: entry, options: [.sortedKeys]) else { return }
        line.append(0x0a)
        lock.withLock { _ in
            if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
            guard let handle = FileHandle(forWritingAtPath: path) else { return }
            handle.seekToEndOfFile()
            handle.write(line)
            try? handle.close()
        }
    }

    private static let lock = Mutex(())
}

/// Files, certificate and download directory of one matrix cell.
final class InteropFixture: @unchecked Sendable {
    // @unchecked: `files` is written only while a cell sets up, before other threads read it.
    let directory: TemporaryDirectory
    let cert: String
    let key: String
    let root: String
    let out: String
    /// Random files written under ``root``: name → content.
    private(set) var files: [String: [UInt8]] = [:]

    init(largeCertificate: Bool = false) throws {
        directory = try TemporaryDirectory()
        let identity = largeCertificate ? InteropFixture.largeIdentity : (TestIdentity.p256.chain, TestIdentity.p256.key)
        cert = try directory.write("cert.pem", identity.0.pemRepresentation)
        key = try directory.write("key.pem", identity.1.pemRepresentation)
        root = directory.path + "/www"
        out = directory.path + "/out"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
    }

    /// A certificate of about 9 KB (RSA-4096 and 150 names): its handshake needs more than three
    /// times a client's first datagram, so the anti-amplification limit matters.
    static let largeIdentity: (CertificateChain, PrivateKey) = {
        let names = ["localhost"] + (0..<150).map { "name-\($0)-of-a-deliberately-large-certificate.example" }
        do { return try SelfSignedCertificate.generate(names: names, algorithm: .rsa(bits: 4096)) } catch {
            preconditionFailure("large certificate generation failed: \(error)")
        }
    }()

    /// Writes `count` random files of `size` bytes (or sizes from `sizes`); returns their paths.
    @discardableResult
    func makeFiles(_ sizes: [Int], prefix: String = "f") throws -> [String] {
        var rng = SplitMix64(seed: UInt64(files.count + 1) &* 0x9e37_79b9)
        return try sizes.enumerated().map { index, size in
            let name = "\(prefix)\(files.count + index)-\(size)"
            let bytes = (0..<size).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            try Data(bytes).write(to: URL(fileURLWithPath: root + "/" + name))
            files[name] = bytes
            return "/" + name
        }
    }

    /// The files not downloaded intact into ``out`` (empty when all match byte for byte, which
    /// implies equal SHA-256 digests).
    func corruptDownloads(_ paths: [String]) -> [String] {
        paths.compactMap { path in
            let name = String(path.dropFirst())
            let got = FileManager.default.contents(atPath: out + "/" + name).map { Array($0) }
            return got == files[name] ? nil : "\(name): \(got.map { "\($0.count) bytes" } ?? "missing") of \(files[name]?.count ?? 0)"
        }
    }

    func clearDownloads() throws {
        try FileManager.default.removeItem(atPath: out)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
    }
}

/// A failed expectation of a matrix cell, with the transcripts that show why.
struct InteropCellFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

@Suite("HTTP/3 interop matrix: Quiver ⇄ ngtcp2 and aioquic, both roles", .serialized)
struct HTTP3InteropTests {
    // MARK: - Quiver as the server

    @Test("Quiver server, ngtcp2 client (gtlsclient)", NgtcpPeer.requirement, arguments: InteropCase.allCases)
    func serverWithNgtcp2(_ testCase: InteropCase) throws {
        try cell(.server, .ngtcp2, testCase) { try serverRole(.ngtcp2, testCase) }
    }

    @Test("Quiver server, aioquic client", AioquicPeer.requirement, arguments: InteropCase.allCases)
    func serverWithAioquic(_ testCase: InteropCase) throws {
        try cell(.server, .aioquic, testCase) { try serverRole(.aioquic, testCase) }
    }

    // MARK: - Quiver as the client

    @Test("Quiver client, ngtcp2 server (gtlsserver)", NgtcpPeer.requirement, arguments: InteropCase.allCases)
    func clientWithNgtcp2(_ testCase: InteropCase) throws {
        try cell(.client, .ngtcp2, testCase) { try clientRole(.ngtcp2, testCase) }
    }

    @Test("Quiver client, aioquic server", AioquicPeer.requirement, arguments: InteropCase.allCases)
    func clientWithAioquic(_ testCase: InteropCase) throws {
        try cell(.client, .aioquic, testCase) { try clientRole(.aioquic, testCase) }
    }

    /// Runs a cell and records its outcome: `body` returns a detail for a pass, or throws
    /// ``Unsupported`` (recorded, the test passes) or a failure (recorded, the test fails).
    private func cell(_ role: InteropRole, _ peer: H3Peer, _ testCase: InteropCase, _ body: () throws -> String) throws {
        do {
            let detail = try body()
            InteropResults.record(role, peer, testCase, .passed, detail)
        } catch let unsupported as Unsupported {
            InteropResults.record(role, peer, testCase, unsupported.applies ? .unsupported : .notApplicable, unsupported.evidence)
        } catch {
            InteropResults.record(role, peer, testCase, .failed, "\(error)".prefix(300).description)
            throw error
        }
    }

    /// A case the peer cannot run, with the evidence (or one that does not apply to the role).
    struct Unsupported: Error {
        let evidence: String
        var applies = true
    }

    /// ngtcp2 0.12.1 predates RFC 9369: checked from the program's own help, which lists the
    /// versions it accepts by name.
    private static func ngtcp2LacksV2(_ program: String) throws -> Unsupported {
        let help = try ChildProcess(program, ["--help"])
        _ = help.waitForExit(timeout: 10)
        let text = (String(decoding: help.standardOutput, as: UTF8.self) + help.standardErrorText)
            .split(whereSeparator: \.isWhitespace).joined(separator: " ")
        guard text.contains("\"v2draft\" indicates QUIC v2"), !text.contains("6b3343cf") else {
            throw InteropCellFailure("\(program) may know RFC 9369 v2 now: run the case\n\(text.prefix(2000))")
        }
        return Unsupported(evidence: "ngtcp2 0.12.1 (Debian 12) knows QUIC v1 and the v2 draft (0x709a50c4) only: its --help names \"v1\" and \"v2draft\", not RFC 9369 v2 (0x6b3343cf)")
    }

    /// The ECN statistics Quiver printed (`ecn <state>, sent ECT(0) N, received ECT(0) M …`,
    /// on `quiver get`'s summary or `quiver serve`'s close line) as the `ecn` case's evidence:
    /// with ngtcp2, Quiver's path validated (the peer counted our ECT(0) marks in its ACK
    /// frames) and the peer's own packets arrived marked; aioquic has no ECN, so there Quiver
    /// must have found the path not ECN-capable and gone on unmarked.
    private static func ecnEvidence(_ line: String, peer: H3Peer) throws -> String {
        guard let start = line.range(of: "ecn ") else { throw InteropCellFailure("no ECN statistics in: \(line)") }
        let ecn = String(line[start.lowerBound...])
        func count(after label: String) -> Int? {
            guard let range = ecn.range(of: label) else { return nil }
            return Int(ecn[range.upperBound...].prefix { $0.isNumber })
        }
        let state = ecn.dropFirst(4).prefix { $0.isLetter }
        guard let sent = count(after: "sent ECT(0) "), let received = count(after: "received ECT(0) ") else {
            throw InteropCellFailure("unreadable ECN statistics: \(ecn)")
        }
        switch peer {
        case .ngtcp2:
            guard state == "capable", sent > 0, received > 0 else {
                throw InteropCellFailure("ECN not validated both ways with ngtcp2: \(ecn)")
            }
            return "Quiver validated ECN (ngtcp2's ACK frames counted its ECT(0) packets) and ngtcp2's datagrams arrived ECT(0): \(ecn)"
        case .aioquic:
            guard state == "failed", received == 0 else { throw InteropCellFailure("aioquic may do ECN now: run the case\n\(ecn)") }
            throw Unsupported(evidence: "aioquic 1.7.2 has no ECN: its QuicConnection.receive_datagram(data, addr, now) takes no codepoint, "
                + "its ACK frames carry no ECN counts (push_ack_frame writes type 0x02; a peer's ACK_ECN counts are read and discarded) "
                + "and its asyncio transport sets no IP_TOS. Quiver's fallback held: \(ecn), the 1 MiB transfer intact")
        }
    }

    /// aioquic's QPACK counts (`qpack=a/b/c/d` on its RESULT or CLOSED line, bytes of
    /// instructions: its encoder stream sent, its decoder stream received, its encoder stream
    /// received, its decoder stream sent) as evidence that the dynamic tables were used:
    /// aioquic inserted into Quiver's table and Quiver's decoder acknowledged (the transfers
    /// themselves prove the references decoded), and with `quiverInserts` Quiver inserted into
    /// aioquic's (Quiver's requests repeat `:authority`; the file server's responses repeat
    /// nothing worth an entry).
    private static func dynamicTableEvidence(_ line: String?, quiverInserts: Bool) throws -> String {
        guard let line, let field = line.split(separator: " ").first(where: { $0.hasPrefix("qpack=") }) else {
            throw InteropCellFailure("no QPACK counts from aioquic: \(line ?? "no line")")
        }
        let counts = field.dropFirst("qpack=".count).split(separator: "/").compactMap { Int($0) }
        guard counts.count == 4, counts[0] > 0, counts[1] > 0, !quiverInserts || counts[2] > 3 else {
            throw InteropCellFailure("a QPACK dynamic table went unused: \(field) (aioquic's encoder sent/decoder received/encoder received/decoder sent)")
        }
        return "QPACK: aioquic's encoder stream \(counts[0]) bytes into Quiver's table (Quiver's decoder stream \(counts[1]) bytes), "
            + "Quiver's encoder stream \(counts[2]) bytes into aioquic's (aioquic's decoder stream \(counts[3]) bytes)"
    }

    /// Quiver's own QPACK counts, from the summary of `quiver get` or the close line of `quiver
    /// serve` (`QPACK inserts received A sent B, sections decoded with the table C encoded D`),
    /// as evidence that ngtcp2 and Quiver used a dynamic table: ngtcp2's encoder inserted into
    /// Quiver's table and Quiver decoded sections with it, or the other way round (the
    /// transfers prove the sections decoded right). Which side inserts depends on the fields
    /// (each encoder indexes what repeats: `:authority`, or a `content-length` shared by files
    /// of one size) and on when SETTINGS arrive, so either direction counts.
    private static func quiverTableEvidence(_ line: String?) throws -> String {
        let pattern = /QPACK inserts received (\d+) sent (\d+), sections decoded with the table (\d+) encoded (\d+)/
        guard let line, let match = line.firstMatch(of: pattern),
              let received = Int(match.1), let sent = Int(match.2), let decoded = Int(match.3), let encoded = Int(match.4) else {
            throw InteropCellFailure("no QPACK counts from Quiver: \(line ?? "no line")")
        }
        guard received > 0 && decoded > 0 || sent > 0 && encoded > 0 else {
            throw InteropCellFailure("no QPACK dynamic table was used: \(match.0)")
        }
        return "QPACK: ngtcp2 inserted \(received) entries into Quiver's table, used by \(decoded) field sections; "
            + "Quiver inserted \(sent) into ngtcp2's, used by \(encoded)"
    }

    // MARK: - Processes

    private static var quiverPath: String {
        get throws { try #require(DemoTests.executable("quiver"), "build the quiver command (swift build)") }
    }

    /// Starts `quiver serve --http3` on a free port of `host`.
    private func startQuiverServer(_ fixture: InteropFixture, flags: [String], host: String = "127.0.0.1") throws -> (ChildProcess, UInt16) {
        let port = try DemoTests.freePorts(1)
        let server = try ChildProcess(try Self.quiverPath, ["serve", "--http3", "--host", host, "--port", "\(port)", "--root", fixture.root,
                                                          "--cert", fixture.cert, "--key", fixture.key] + flags)
        guard server.waitForErrorLine(containing: "serving", timeout: 30) != nil else {
            throw InteropCellFailure("quiver serve did not start\n\(server.transcript)")
        }
        return (server, port)
    }

    /// Runs a peer client against `port` fetching `paths` into the fixture's `out`; returns its
    /// process after it exited (status checked by the caller's evidence).
    private func runPeerClient(_ peer: H3Peer, port: UInt16, paths: [String], fixture: InteropFixture, flags: [String] = [],
                               timeout: Double = 60, host: String = "127.0.0.1") throws -> ChildProcess {
        let client: ChildProcess
        switch peer {
        case .ngtcp2:
            let urls = paths.map { "https://localhost:\(port)\($0)" }
            client = try ChildProcess(try NgtcpPeer.paths().client,
                                      ["--exit-on-all-streams-close", "--no-quic-dump", "--no-http-dump", "--timeout=15s",
                                       "--download", fixture.out] + flags + [host, "\(port)"] + urls)
        case .aioquic:
            client = try AioquicPeer.startH3(["client", "--address", host, "--port", "\(port)", "--ca", fixture.cert, "--out", fixture.out,
                                              "--timeout", "\(Int(timeout) - 5)"] + flags + paths)
        }
        guard client.waitForExit(timeout: timeout) != nil else {
            client.kill()
            throw InteropCellFailure("the \(peer) client did not finish in \(timeout) s\n\(client.transcript)")
        }
        return client
    }

    /// Checks a peer client's run: exit status 0 (and aioquic's RESULT PASS) and intact files.
    private func expectDownloads(_ client: ChildProcess, _ peer: H3Peer, _ paths: [String], _ fixture: InteropFixture) throws {
        let status = client.waitForExit(timeout: 1)
        let summary = peer == .aioquic ? client.waitForLine(startingWith: "RESULT", timeout: 1) : "exit \(status ?? -1)"
        guard status == 0, peer == .ngtcp2 || summary?.hasPrefix("RESULT PASS") == true else {
            throw InteropCellFailure("\(peer) client failed: \(summary ?? "no summary")\n\(client.transcript)")
        }
        let corrupt = fixture.corruptDownloads(paths)
        guard corrupt.isEmpty else { throw InteropCellFailure("downloads differ: \(corrupt.prefix(3))\n\(client.transcript)") }
    }

    /// Starts a peer server on the fixture's root; returns it and its port.
    private func startPeerServer(_ peer: H3Peer, _ fixture: InteropFixture, flags: [String] = [], host: String = "127.0.0.1") throws -> (ChildProcess, UInt16) {
        switch peer {
        case .ngtcp2:
            let port = try DemoTests.freePorts(1)
            let server = try ChildProcess(try NgtcpPeer.paths().server, ["-d", fixture.root, "--no-quic-dump", "--no-http-dump"] + flags
                                          + [host, "\(port)", fixture.key, fixture.cert])
            guard server.waitForErrorLine(containing: "Using document root", timeout: 20) != nil else {
                throw InteropCellFailure("gtlsserver did not start\n\(server.transcript)")
            }
            return (server, port)
        case .aioquic:
            let server = try AioquicPeer.startH3(["server", "--address", host, "--port", "0", "--cert", fixture.cert, "--key", fixture.key,
                                                  "--root", fixture.root] + flags)
            guard let ready = server.waitForLine(startingWith: "READY", timeout: 20), let port = UInt16(ready.split(separator: " ").last ?? "") else {
                throw InteropCellFailure("the aioquic server did not start\n\(server.transcript)")
            }
            return (server, port)
        }
    }

    /// Runs `quiver get` against `port`; returns it after it exited.
    private func runQuiverGet(port: UInt16, paths: [String], fixture: InteropFixture, flags: [String] = [], timeout: Double = 60,
                              host: String = "127.0.0.1") throws -> ChildProcess {
        let authority = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        let get = try ChildProcess(try Self.quiverPath, ["get", "--ca", fixture.cert, "--server-name", "localhost", "--out", fixture.out] + flags
                                   + paths.map { "https://\(authority)\($0)" })
        guard get.waitForExit(timeout: timeout) != nil else {
            get.kill()
            throw InteropCellFailure("quiver get did not finish in \(timeout) s\n\(get.transcript)")
        }
        return get
    }

    /// Checks a `quiver get` run: status 0 and intact files; returns its summary line.
    @discardableResult
    private func expectQuiverDownloads(_ get: ChildProcess, _ paths: [String], _ fixture: InteropFixture, server: ChildProcess) throws -> String {
        let summary = get.waitForErrorLine(containing: "fetched", timeout: 1) ?? "no summary"
        guard get.waitForExit(timeout: 1) == 0 else {
            throw InteropCellFailure("quiver get failed: \(summary)\n\(get.transcript)\n\(server.transcript)")
        }
        let corrupt = fixture.corruptDownloads(paths)
        guard corrupt.isEmpty else { throw InteropCellFailure("downloads differ: \(corrupt.prefix(3))\n\(get.transcript)") }
        return summary
    }

    private func relayed(_ port: UInt16, _ configuration: UDPRelay.Configuration = UDPRelay.Configuration()) throws -> UDPRelay {
        try UDPRelay(server: SocketAddress(host: "127.0.0.1", port: port)!, configuration: configuration)
    }

    // MARK: - Quiver as the server: the cases

    private func serverRole(_ peer: H3Peer, _ testCase: InteropCase) throws -> String {
        let fixture = try InteropFixture(largeCertificate: testCase == .amplificationlimit)
        let flags = switch testCase {
        case .retry: ["--retry"]
        case .connectionmigration: ["--preferred-address", "127.0.0.2:0"]
        default: [String]()
        }
        let (server, port) = try startQuiverServer(fixture, flags: flags, host: testCase == .ipv6 ? "::1" : "127.0.0.1")
        defer { server.kill() }
        /// The server's log lines for accepted connections (the peer is metadata, before the message).
        func connections() -> [String] { server.standardErrorText.split(separator: "\n").filter { $0.contains(" connected, ") }.map(String.init) }

        switch testCase {
        case .handshake:
            let paths = try fixture.makeFiles([1000])
            try expectDownloads(try runPeerClient(peer, port: port, paths: paths, fixture: fixture), peer, paths, fixture)
            return "1 KB file; server log: \(connections().first?.components(separatedBy: "connected, ").last ?? "?")"
        case .transfer:
            let paths = try fixture.makeFiles([1 << 20, 5 << 20])
            try expectDownloads(try runPeerClient(peer, port: port, paths: paths, fixture: fixture), peer, paths, fixture)
            return "1 MiB + 5 MiB files, identical (SHA-256) on one connection"
        case .multiplexing:
            let paths = try fixture.makeFiles((0..<200).map { 1000 + $0 * 17 })
            // aioquic's requests wait for Quiver's SETTINGS, so they may use its QPACK table.
            let client = try runPeerClient(peer, port: port, paths: paths, fixture: fixture, flags: peer == .aioquic ? ["--await-settings"] : [])
            try expectDownloads(client, peer, paths, fixture)
            guard connections().count == 1 else { throw InteropCellFailure("expected one connection: \(connections())") }
            let tables = peer == .aioquic
                ? try Self.dynamicTableEvidence(client.waitForLine(startingWith: "RESULT", timeout: 1), quiverInserts: false)
                : try Self.quiverTableEvidence(server.waitForErrorLine(containing: "QPACK inserts", timeout: 10))
            return "200 files on one connection (more than the 100 concurrent streams allowed: MAX_STREAMS credit); " + tables
        case .chacha20:
            let paths = try fixture.makeFiles([100_000])
            let flags = peer == .ngtcp2 ? ["--ciphers=NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+CHACHA20-POLY1305"] : ["--chacha20"]
            let client = try runPeerClient(peer, port: port, paths: paths, fixture: fixture, flags: flags)
            try expectDownloads(client, peer, paths, fixture)
            let evidence = peer == .ngtcp2 ? client.waitForErrorLine(containing: "Negotiated cipher suite", timeout: 1)
                : client.waitForLine(startingWith: "RESULT", timeout: 1)
            guard let evidence, evidence.uppercased().contains("CHACHA20") else { throw InteropCellFailure("ChaCha20 not negotiated\n\(client.transcript)") }
            return evidence
        case .retry:
            let relay = try relayed(port)
            let paths = try fixture.makeFiles([5000])
            try expectDownloads(try runPeerClient(peer, port: relay.port, paths: paths, fixture: fixture), peer, paths, fixture)
            let retries = relay.counts.retries
            guard retries >= 1 else { throw InteropCellFailure("no Retry packet seen by the relay") }
            return "the relay saw \(retries) Retry packet(s) from Quiver; the client followed it"
        case .resumption, .zerortt:
            let paths = try fixture.makeFiles([3000])
            let session = fixture.directory.path + "/session"
            let transport = fixture.directory.path + "/tp"
            var flags: [String]
            switch (peer, testCase) {
            case (.ngtcp2, .resumption): flags = ["--session-file", session, "--tp-file", transport, "--disable-early-data"]
            case (.ngtcp2, _): flags = ["--session-file", session, "--tp-file", transport]
            case (.aioquic, _): flags = ["--session-file", session]
            }
            try expectDownloads(try runPeerClient(peer, port: port, paths: paths, fixture: fixture, flags: flags), peer, paths, fixture)
            try fixture.clearDownloads()
            if peer == .aioquic, testCase == .zerortt { flags.append("--zero-rtt") }
            try expectDownloads(try runPeerClient(peer, port: port, paths: paths, fixture: fixture, flags: flags), peer, paths, fixture)
            let lines = connections()
            guard lines.count == 2, lines[1].contains("resumed true") else { throw InteropCellFailure("second connection not resumed: \(lines)") }
            if testCase == .zerortt, !lines[1].contains("0-RTT accepted") { throw InteropCellFailure("0-RTT not accepted: \(lines)") }
            return "second connection: \(lines[1].components(separatedBy: "connected, ").last ?? "")"
        case .keyupdate:
            let paths = try fixture.makeFiles([1 << 20])
            let flags = peer == .ngtcp2 ? ["--key-update=1ms"] : ["--key-update"]
            let client = try runPeerClient(peer, port: port, paths: paths, fixture: fixture, flags: flags)
            try expectDownloads(client, peer, paths, fixture)
            if peer == .ngtcp2 {
                guard client.standardErrorText.contains("key update confirmed") else {
                    throw InteropCellFailure("gtlsclient did not confirm its key update\n\(client.transcript)")
                }
                return "gtlsclient: key update initiated and confirmed, 1 MiB transferred"
            }
            return "aioquic updated its keys before the 1 MiB transfer: \(client.waitForLine(startingWith: "RESULT", timeout: 1) ?? "")"
        case .v2:
            if peer == .ngtcp2 { throw try Self.ngtcp2LacksV2(try NgtcpPeer.paths().client) }
            let paths = try fixture.makeFiles([5000])
            try expectDownloads(try runPeerClient(peer, port: port, paths: paths, fixture: fixture, flags: ["--v2"]), peer, paths, fixture)
            guard let line = connections().first, line.contains("QUICv2") else { throw InteropCellFailure("not v2: \(connections())") }
            return "compatible version negotiation v1 → v2; server log: \(line.components(separatedBy: "connected, ").last ?? "")"
        case .transferloss:
            let relay = try relayed(port, UDPRelay.Configuration(lossToServer: 0.02, lossToClient: 0.02, seed: 7))
            let paths = try fixture.makeFiles([2 << 20])
            try expectDownloads(try runPeerClient(peer, port: relay.port, paths: paths, fixture: fixture, timeout: 90), peer, paths, fixture)
            return "2 MiB through 2 % loss each way (\(relay.counts.dropped) datagrams dropped)"
        case .handshakeloss:
            let relay = try relayed(port, UDPRelay.Configuration(lossToServer: 0.3, lossToClient: 0.3, seed: 11))
            for round in 0..<5 {
                let paths = try fixture.makeFiles([1000], prefix: "h\(round)-")
                try expectDownloads(try runPeerClient(peer, port: relay.port, paths: paths, fixture: fixture, timeout: 60), peer, paths, fixture)
            }
            return "5 connections through 30 % loss each way (\(relay.counts.dropped) datagrams dropped)"
        case .hqinterop:
            if peer == .ngtcp2 {
                let help = try ChildProcess(try NgtcpPeer.paths().client, ["--help"])
                _ = help.waitForExit(timeout: 10)
                guard !(String(decoding: help.standardOutput, as: UTF8.self) + help.standardErrorText).contains("alpn") else {
                    throw InteropCellFailure("gtlsclient may select an ALPN now: run the case")
                }
                throw Unsupported(evidence: "Debian's gtlsclient speaks HTTP/3 only: no option selects another ALPN (its --help has none)")
            }
            let paths = try fixture.makeFiles([1 << 20, 5 << 20])
            try expectDownloads(try runPeerClient(peer, port: port, paths: paths, fixture: fixture, flags: ["--hq"]), peer, paths, fixture)
            guard connections().first?.contains("alpn hq-interop") == true else { throw InteropCellFailure("not hq-interop: \(connections())") }
            return "1 MiB + 5 MiB files over hq-interop, identical (SHA-256)"
        case .rebindport, .rebindaddr:
            // The runner's NAT rebinding: the client's datagrams reach the server from a new
            // port (or address) during the transfer; the server validates the new path and
            // moves there (RFC 9000 §9.3), with its congestion state reset for a new address.
            let relay = try relayed(port, UDPRelay.Configuration(rebindAfterClientDatagrams: 40, rebindAddress: testCase == .rebindaddr))
            let paths = try fixture.makeFiles([2 << 20])
            try expectDownloads(try runPeerClient(peer, port: relay.port, paths: paths, fixture: fixture), peer, paths, fixture)
            guard relay.reboundDatagrams > 0 else { throw InteropCellFailure("the relay never rebound: \(relay.counts)") }
            guard let line = server.waitForErrorLine(containing: "the peer moved", timeout: 15),
                  let moved = line.firstMatch(of: /the peer moved (\d+) time\(s\), paths validated (\d+)/), Int(moved.2) ?? 0 >= 1 else {
                throw InteropCellFailure("quiver serve did not validate the client's new path\n\(server.transcript)")
            }
            return "2 MiB; the client's datagrams came from a new \(testCase == .rebindaddr ? "address (127.0.0.2)" : "port") after 40: "
                + "\(relay.reboundDatagrams) datagrams on the new path; server: \(moved.0)"
        case .connectionmigration:
            // Both clients follow a preferred address by default (gtlsclient unless
            // --no-preferred-addr; aioquic probes it once the handshake is confirmed and moves
            // when the server answered there).
            let paths = try fixture.makeFiles([4 << 20])
            try expectDownloads(try runPeerClient(peer, port: port, paths: paths, fixture: fixture), peer, paths, fixture)
            guard let line = server.waitForErrorLine(containing: "moved to the preferred address", timeout: 15),
                  let moved = line.firstMatch(of: /moved to the preferred address 127\.0\.0\.2:\d+/) else {
                throw InteropCellFailure("the \(peer) client did not move to the preferred address\n\(server.transcript)")
            }
            return "4 MiB; quiver serve offered 127.0.0.2 as its preferred address, checked the path from there and answered from there: \(moved.0)"
        case .migration:
            // The peer's client moves to a new local port mid-transfer (gtlsclient: 1 ms after
            // the handshake, with PATH_CHALLENGE of its own; aioquic: after 100 kB, without):
            // the server follows to the new path once it has validated it.
            let paths = try fixture.makeFiles([4 << 20])
            let client = try runPeerClient(peer, port: port, paths: paths, fixture: fixture,
                                           flags: peer == .ngtcp2 ? ["--change-local-addr=1ms"] : ["--migrate"])
            try expectDownloads(client, peer, paths, fixture)
            guard let line = server.waitForErrorLine(containing: "the peer moved", timeout: 15),
                  let moved = line.firstMatch(of: /the peer moved (\d+) time\(s\), paths validated (\d+)/), Int(moved.2) ?? 0 >= 1 else {
                throw InteropCellFailure("quiver serve did not follow the client to its new address\n\(server.transcript)")
            }
            return "4 MiB; the \(peer) client moved to a new port mid-transfer; server: \(moved.0)"
        case .ipv6:
            let paths = try fixture.makeFiles([1 << 20])
            try expectDownloads(try runPeerClient(peer, port: port, paths: paths, fixture: fixture, host: "::1"), peer, paths, fixture)
            guard let line = connections().first, line.contains("peer=[::1]:") else { throw InteropCellFailure("not over IPv6: \(connections())") }
            return "1 MiB over [::1]; server log: peer=\(line.firstMatch(of: /peer=(\S+)/)?.1 ?? "?")"
        case .blackhole:
            let relay = try relayed(port, UDPRelay.Configuration(blackhole: (afterClientDatagrams: 40, duration: .seconds(2))))
            let paths = try fixture.makeFiles([2 << 20])
            try expectDownloads(try runPeerClient(peer, port: relay.port, paths: paths, fixture: fixture, timeout: 90), peer, paths, fixture)
            guard relay.counts.blackholed > 0 else { throw InteropCellFailure("the blackhole dropped nothing: \(relay.counts)") }
            return "2 MiB through a 2 s blackhole both ways mid-transfer (\(relay.counts.blackholed) datagrams dropped)"
        case .longrtt:
            let relay = try relayed(port, UDPRelay.Configuration(oneWayDelay: .milliseconds(500)))
            let paths = try fixture.makeFiles([200_000])
            try expectDownloads(try runPeerClient(peer, port: relay.port, paths: paths, fixture: fixture, timeout: 90), peer, paths, fixture)
            return "200 kB with a 1 s round trip (the handshake's RTT is three times the initial estimate)"
        case .ecn:
            let paths = try fixture.makeFiles([1 << 20])
            try expectDownloads(try runPeerClient(peer, port: port, paths: paths, fixture: fixture), peer, paths, fixture)
            // The connection's close line carries its ECN statistics.
            guard let line = server.waitForErrorLine(containing: "; ecn ", timeout: 15) else {
                throw InteropCellFailure("no close line with ECN statistics\n\(server.transcript)")
            }
            return try Self.ecnEvidence(line, peer: peer)
        case .amplificationlimit:
            // The client's datagrams after its first are held back: until then the server may
            // send at most three times what it received (RFC 9000 §8.1).
            let relay = try relayed(port, UDPRelay.Configuration(clientDatagramsBeforeHold: 1))
            let paths = try fixture.makeFiles([5000])
            let client = Thread { [self] in _ = try? runPeerClient(peer, port: relay.port, paths: paths, fixture: fixture) }
            client.start()
            var waited = 0
            while relay.counts.datagramsToServer == 0, waited < 500 {  // the client's first flight
                usleep(10_000)
                waited += 1
            }
            usleep(1_500_000)  // the server's first flight and its probe timeouts
            let held = relay.counts
            relay.releaseClient()
            guard held.bytesToServer > 0, held.bytesToClient <= 3 * held.bytesToServer else {
                throw InteropCellFailure("sent \(held.bytesToClient) bytes for \(held.bytesToServer) received before validation")
            }
            guard held.bytesToClient >= 2 * held.bytesToServer else {
                throw InteropCellFailure("the certificate was meant to exceed the limit: only \(held.bytesToClient) bytes")
            }
            var finished = 0
            while fixture.corruptDownloads(paths).count > 0, finished < 3000 {
                usleep(10_000)
                finished += 1
            }
            guard fixture.corruptDownloads(paths).isEmpty else { throw InteropCellFailure("the transfer did not complete after release\n\(server.transcript)") }
            return "\(held.bytesToClient) bytes sent for \(held.bytesToServer) received before validation (≤ 3×), ~9 KB certificate; then completed"
        }
    }

    // MARK: - Quiver as the client: the cases

    private func clientRole(_ peer: H3Peer, _ testCase: InteropCase) throws -> String {
        let fixture = try InteropFixture()
        var serverFlags: [String] = []
        switch (testCase, peer) {
        case (.retry, .ngtcp2): serverFlags = ["-V"]
        case (.retry, .aioquic): serverFlags = ["--retry"]
        case (.chacha20, .ngtcp2): serverFlags = ["--ciphers=NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+CHACHA20-POLY1305"]
        case (.chacha20, .aioquic): serverFlags = ["--chacha20"]
        case (.v2, .ngtcp2): throw try Self.ngtcp2LacksV2(try NgtcpPeer.paths().server)
        case (.v2, .aioquic): serverFlags = ["--v2"]
        case (.amplificationlimit, _):
            throw Unsupported(evidence: "the anti-amplification limit binds servers; the server-role cell tests Quiver's", applies: false)
        case (.connectionmigration, .ngtcp2): serverFlags = ["--preferred-ipv4-addr=127.0.0.2:\(try DemoTests.freePorts(1))"]
        case (.connectionmigration, .aioquic):
            throw Unsupported(evidence: "aioquic 1.7.2's server never offers a preferred address: QuicConfiguration has no setting for one, "
                + "and QuicConnection._serialize_transport_parameters leaves preferred_address unset (its client does follow one: the server-role cell)")
        default: break
        }
        let (server, port) = try startPeerServer(peer, fixture, flags: serverFlags, host: testCase == .ipv6 ? "::1" : "127.0.0.1")
        defer { server.kill() }

        switch testCase {
        case .handshake:
            let paths = try fixture.makeFiles([1000])
            return try expectQuiverDownloads(try runQuiverGet(port: port, paths: paths, fixture: fixture), paths, fixture, server: server)
        case .transfer:
            let paths = try fixture.makeFiles([1 << 20, 5 << 20])
            try expectQuiverDownloads(try runQuiverGet(port: port, paths: paths, fixture: fixture), paths, fixture, server: server)
            return "1 MiB + 5 MiB files, identical (SHA-256) on one connection"
        case .multiplexing:
            let paths = try fixture.makeFiles((0..<200).map { 1000 + $0 * 17 })
            let summary = try expectQuiverDownloads(try runQuiverGet(port: port, paths: paths, fixture: fixture), paths, fixture, server: server)
            let tables = peer == .aioquic
                ? try Self.dynamicTableEvidence(server.waitForLine(startingWith: "CLOSED", timeout: 10), quiverInserts: true)
                : try Self.quiverTableEvidence(summary)
            return "200 files requested concurrently on one connection; " + tables
        case .chacha20:
            let paths = try fixture.makeFiles([100_000])
            let summary = try expectQuiverDownloads(try runQuiverGet(port: port, paths: paths, fixture: fixture, flags: ["--chacha20"]), paths, fixture, server: server)
            return "offered and served with TLS_CHACHA20_POLY1305_SHA256 only (the server allows only it): \(summary)"
        case .retry:
            let relay = try relayed(port)
            let paths = try fixture.makeFiles([5000])
            try expectQuiverDownloads(try runQuiverGet(port: relay.port, paths: paths, fixture: fixture), paths, fixture, server: server)
            guard relay.counts.retries >= 1 else { throw InteropCellFailure("the server sent no Retry\n\(server.transcript)") }
            return "the relay saw \(relay.counts.retries) Retry packet(s); Quiver followed"
        case .resumption, .zerortt:
            let paths = try fixture.makeFiles([3000])
            let ticket = fixture.directory.path + "/ticket"
            try expectQuiverDownloads(try runQuiverGet(port: port, paths: paths, fixture: fixture, flags: ["--resume", ticket]), paths, fixture, server: server)
            try fixture.clearDownloads()
            let flags = ["--resume", ticket] + (testCase == .zerortt ? ["--zero-rtt"] : [])
            let summary = try expectQuiverDownloads(try runQuiverGet(port: port, paths: paths, fixture: fixture, flags: flags), paths, fixture, server: server)
            guard summary.contains("resumed true") else { throw InteropCellFailure("not resumed: \(summary)") }
            if testCase == .zerortt, !summary.contains("0-RTT accepted") { throw InteropCellFailure("0-RTT not accepted: \(summary)") }
            return summary
        case .keyupdate:
            let paths = try fixture.makeFiles([1 << 20])
            let summary = try expectQuiverDownloads(try runQuiverGet(port: port, paths: paths, fixture: fixture, flags: ["--key-update"]), paths, fixture, server: server)
            guard summary.contains("keys updated") else { throw InteropCellFailure(summary) }
            return "key update after confirmation, then 1 MiB: \(summary)"
        case .v2:
            let paths = try fixture.makeFiles([5000])
            let summary = try expectQuiverDownloads(try runQuiverGet(port: port, paths: paths, fixture: fixture, flags: ["--v2"]), paths, fixture, server: server)
            guard summary.contains("QUICv2") else { throw InteropCellFailure("not v2: \(summary)") }
            return summary
        case .transferloss:
            let relay = try relayed(port, UDPRelay.Configuration(lossToServer: 0.02, lossToClient: 0.02, seed: 7))
            let paths = try fixture.makeFiles([2 << 20])
            try expectQuiverDownloads(try runQuiverGet(port: relay.port, paths: paths, fixture: fixture, timeout: 90), paths, fixture, server: server)
            return "2 MiB through 2 % loss each way (\(relay.counts.dropped) datagrams dropped)"
        case .handshakeloss:
            let relay = try relayed(port, UDPRelay.Configuration(lossToServer: 0.3, lossToClient: 0.3, seed: 11))
            for round in 0..<5 {
                let paths = try fixture.makeFiles([1000], prefix: "h\(round)-")
                try expectQuiverDownloads(try runQuiverGet(port: relay.port, paths: paths, fixture: fixture), paths, fixture, server: server)
            }
            return "5 connections through 30 % loss each way (\(relay.counts.dropped) datagrams dropped)"
        case .hqinterop:
            let paths = try fixture.makeFiles([1 << 20, 5 << 20])
            let get = try runQuiverGet(port: port, paths: paths, fixture: fixture, flags: ["--hq"])
            if peer == .ngtcp2 {
                // 0x178: CRYPTO_ERROR carrying TLS alert 120, no_application_protocol.
                guard get.waitForExit(timeout: 1) != 0, get.standardErrorText.contains("transport code 376") else {
                    throw InteropCellFailure("gtlsserver was expected to refuse ALPN hq-interop\n\(get.transcript)")
                }
                throw Unsupported(evidence: "gtlsserver refuses ALPN hq-interop with TLS alert no_application_protocol (QUIC error 0x178): Debian's example server speaks HTTP/3 only")
            }
            try expectQuiverDownloads(get, paths, fixture, server: server)
            return "1 MiB + 5 MiB files over hq-interop, identical (SHA-256)"
        case .rebindport, .rebindaddr:
            // The NAT rebinding of Quiver's datagrams: the peer validates the new path, Quiver
            // answers its PATH_CHALLENGE and the transfer goes on.
            let relay = try relayed(port, UDPRelay.Configuration(rebindAfterClientDatagrams: 40, rebindAddress: testCase == .rebindaddr))
            let paths = try fixture.makeFiles([2 << 20])
            try expectQuiverDownloads(try runQuiverGet(port: relay.port, paths: paths, fixture: fixture), paths, fixture, server: server)
            guard relay.reboundDatagrams > 0 else { throw InteropCellFailure("the relay never rebound: \(relay.counts)") }
            return "2 MiB; Quiver's datagrams reached the \(peer) server from a new \(testCase == .rebindaddr ? "address (127.0.0.2)" : "port") "
                + "after 40 (\(relay.reboundDatagrams) on the new path), and the transfer completed"
        case .connectionmigration:
            let paths = try fixture.makeFiles([4 << 20])
            let summary = try expectQuiverDownloads(try runQuiverGet(port: port, paths: paths, fixture: fixture), paths, fixture, server: server)
            guard let moved = summary.firstMatch(of: /moved to the server's preferred address 127\.0\.0\.2:\d+/) else {
                throw InteropCellFailure("quiver get did not move to the \(peer) server's preferred address: \(summary)\n\(server.transcript)")
            }
            return "4 MiB; quiver get moved to the preferred address gtlsserver offered once the handshake was confirmed, "
                + "with the connection ID that came with it, and the server answered there: \(moved.0)"
        case .migration:
            let paths = try fixture.makeFiles([4 << 20])
            let summary = try expectQuiverDownloads(try runQuiverGet(port: port, paths: paths, fixture: fixture, flags: ["--migrate"]),
                                                    paths, fixture, server: server)
            guard let moved = summary.firstMatch(of: /moved to \S+ \(the server proved the new path\)/) else {
                throw InteropCellFailure("quiver get did not move, or the \(peer) server did not answer on the new path: \(summary)")
            }
            return "4 MiB; quiver get moved to a new port after its first body bytes (new connection ID, PATH_CHALLENGE): \(moved.0)"
        case .ipv6:
            let paths = try fixture.makeFiles([1 << 20])
            return "1 MiB from [::1]: " + (try expectQuiverDownloads(try runQuiverGet(port: port, paths: paths, fixture: fixture, host: "::1"),
                                                                     paths, fixture, server: server))
        case .blackhole:
            let relay = try relayed(port, UDPRelay.Configuration(blackhole: (afterClientDatagrams: 40, duration: .seconds(2))))
            let paths = try fixture.makeFiles([2 << 20])
            try expectQuiverDownloads(try runQuiverGet(port: relay.port, paths: paths, fixture: fixture, timeout: 90), paths, fixture, server: server)
            guard relay.counts.blackholed > 0 else { throw InteropCellFailure("the blackhole dropped nothing: \(relay.counts)") }
            return "2 MiB through a 2 s blackhole both ways mid-transfer (\(relay.counts.blackholed) datagrams dropped)"
        case .longrtt:
            let relay = try relayed(port, UDPRelay.Configuration(oneWayDelay: .milliseconds(500)))
            let paths = try fixture.makeFiles([200_000])
            try expectQuiverDownloads(try runQuiverGet(port: relay.port, paths: paths, fixture: fixture, timeout: 90), paths, fixture, server: server)
            return "200 kB with a 1 s round trip (the handshake's RTT is three times the initial estimate)"
        case .ecn:
            let paths = try fixture.makeFiles([1 << 20])
            return try Self.ecnEvidence(try expectQuiverDownloads(try runQuiverGet(port: port, paths: paths, fixture: fixture), paths, fixture, server: server),
                                        peer: peer)
        case .amplificationlimit:
            preconditionFailure("handled above")
        }
    }
}
