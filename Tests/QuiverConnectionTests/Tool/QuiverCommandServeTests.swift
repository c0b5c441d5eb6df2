// quiver serve: a missing --root (issue 17, item 18), --max-early-data with --http3 (item 9),
// one QUIC version policy for echo and --http3 (item 10).
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Quiver
import QuiverTestSupport
import Testing

extension QuiverCommandTests {
    // MARK: - Item 18: a missing --root

    @Test("serve --http3 refuses a --root that does not exist or is not a directory")
    func missingRoot() throws {
        let fixture = try InteropFixture()
        expectOneLineError(try run(["serve", "--http3", "--root", fixture.root + "/missing", "--port", "0"]), containing: "no such directory")
        expectOneLineError(try run(["serve", "--http3", "--root", fixture.cert, "--port", "0"]), containing: "not a directory")
    }

    // MARK: - Item 9: --max-early-data in --http3 mode

    @Test("serve --http3 accepts 0-RTT by default and refuses it with --max-early-data 0", arguments: [false, true])
    func http3EarlyData(disabled: Bool) throws {
        let fixture = try InteropFixture()
        let (server, port) = try serve(["--http3", "--root", fixture.root] + (disabled ? ["--max-early-data", "0"] : []), fixture: fixture)
        defer { server.kill() }
        let ticket = fixture.directory.path + "/ticket"
        let arguments = ["get", "--ca", fixture.cert, "--server-name", "localhost", "--out", fixture.out, "--resume", ticket]
        let first = try run(arguments + ["https://127.0.0.1:\(port)/100"])
        #expect(first.waitForExit(timeout: 1) == 0, "\(first.transcript)")
        let second = try run(arguments + ["--zero-rtt", "https://127.0.0.1:\(port)/200"])
        #expect(second.waitForExit(timeout: 1) == 0, "\(second.transcript)\n\(server.transcript)")
        let summary = second.waitForErrorLine(containing: "fetched", timeout: 1) ?? ""
        #expect(summary.contains("resumed true"), "\(second.transcript)")
        if disabled {
            #expect(!summary.contains("0-RTT accepted"), "\(second.transcript)")
            #expect(!server.standardErrorText.contains("0-RTT accepted"), "\(server.transcript)")
        } else {
            #expect(summary.contains("0-RTT accepted"), "\(second.transcript)")
        }
    }

    // MARK: - Item 10: one QUIC version policy

    @Test("The echo server upgrades a client offering v2 to QUIC v2, as --http3 does, and says so in --help")
    func echoUpgradesToV2() throws {
        let fixture = try InteropFixture()
        let (server, port) = try serve(["--quic"], fixture: fixture)
        defer { server.kill() }
        let client = try run(["connect", "--quic", "--ca", fixture.cert, "--server-name", "localhost", "127.0.0.1:\(port)"],
                             input: Array("hello v2\n".utf8))
        #expect(client.waitForExit(timeout: 1) == 0, "\(client.transcript)")
        #expect(client.standardOutput == Array("hello v2\n".utf8), "\(client.transcript)")
        #expect(server.waitForErrorLine(containing: "handshake complete", timeout: 5)?.contains("QUICv2") == true, "\(server.transcript)")
        let help = try run(["serve", "--help"])
        #expect(String(decoding: help.standardOutput, as: UTF8.self).contains("upgraded"), "\(help.transcript)")
    }

    // MARK: - Datagram size (issue 16)

    @Test("serve --http3: path MTU discovery reaches 16 383-byte datagrams on loopback, --max-datagram-size 1452 holds them to Ethernet's size",
          arguments: [nil, 1452])
    func datagramSize(limit: Int?) throws {
        let fixture = try InteropFixture()
        let (server, port) = try serve(["--http3", "--root", fixture.root] + (limit.map { ["--max-datagram-size", "\($0)"] } ?? []),
                                       fixture: fixture)
        defer { server.kill() }
        let get = try run(["get", "--ca", fixture.cert, "--server-name", "localhost", "--out", fixture.out, "https://127.0.0.1:\(port)/2000000"])
        #expect(get.waitForExit(timeout: 5) == 0, "\(get.transcript)")
        let closed = server.waitForErrorLine(containing: "sent datagrams of up to", timeout: 5) ?? server.transcript
        #expect(closed.contains("sent datagrams of up to \(limit ?? 16_383) bytes"), "\(closed)")
        if limit == nil {
            for bad in ["1199", "16384"] {
                expectOneLineError(try run(["serve", "--max-datagram-size", bad, "--port", "0"]), containing: "--max-datagram-size")
            }
        }
    }

    // MARK: - DTLS (issue 18)

    @Test("serve --dtls echoes each message whole to quiver connect --dtls (40 KB of stdin; DTLS 1.3, and 1.2 with --dtls-version) and to openssl s_client -dtls1_2")
    func dtls() throws {
        let fixture = try InteropFixture()
        let (server, port) = try serve(["--dtls", "--loops", "2"], fixture: fixture)
        defer { server.kill() }
        #expect(server.standardErrorText.contains("DTLS 1.3/1.2 echo on udp"), "\(server.transcript)")
        let input = (0..<40_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        for version in [[], ["--dtls-version", "1.2"]] {
            let client = try run(["connect", "--dtls", "--ca", fixture.cert, "--server-name", "localhost", "127.0.0.1:\(port)"] + version, input: input)
            #expect(client.waitForExit(timeout: 10) == 0, "\(client.transcript)")
            #expect(client.standardOutput == input, "\(client.standardOutput.count) of \(input.count) bytes\n\(client.transcript)")
            let negotiated = version.isEmpty ? "DTLS handshake complete: TLS 1.3" : "DTLS handshake complete: TLS 1.2"
            #expect(server.waitForErrorLine(containing: negotiated, timeout: 5) != nil, "\(server.transcript)")
        }
        let candidates: [String] = ["/usr/bin/openssl", "/usr/local/bin/openssl"]
        let openssl = try #require(candidates.first { access($0, X_OK) == 0 }, "openssl is needed (apt-get install openssl)")
        let peer = try ChildProcess(openssl, ["s_client", "-dtls1_2", "-connect", "127.0.0.1:\(port)", "-CAfile", fixture.cert,
                                              "-verify_return_error", "-verify_hostname", "localhost", "-quiet", "-no_ign_eof"])
        defer { peer.kill() }
        peer.write(Array("hello from openssl\n".utf8))
        #expect(peer.waitForLine(startingWith: "hello from openssl", timeout: 10) != nil, "\(peer.transcript)\n\(server.transcript)")
        #expect(server.waitForErrorLine(containing: "DTLS handshake complete", timeout: 5) != nil, "\(server.transcript)")
    }

    // MARK: - Event loops (issue 15)

    @Test("serve --loops 2 serves TLS and QUIC clients on two event loops; --loops 0 is refused")
    func twoLoops() throws {
        let fixture = try InteropFixture()
        let (server, port) = try serve(["--loops", "2"], fixture: fixture)
        defer { server.kill() }
        #expect(server.standardErrorText.contains("2 event loops"), "\(server.transcript)")
        for index in 0..<6 {
            let transport = index % 2 == 0 ? "--quic" : "--tls"
            let line = Array("client \(index)\n".utf8)
            let client = try run(["connect", transport, "--ca", fixture.cert, "--server-name", "localhost", "127.0.0.1:\(port)"], input: line)
            #expect(client.waitForExit(timeout: 5) == 0, "\(client.transcript)")
            #expect(client.standardOutput == line, "\(client.transcript)")
        }
        expectOneLineError(try run(["serve", "--loops", "0", "--port", "0"]), containing: "--loops")
        expectOneLineError(try run(["serve", "--drain-timeout=-1", "--port", "0"]), containing: "--drain-timeout")
    }
}

/// A peer program of the DTLS tool tests, found in PATH, with the skip rule of ``AioquicPeer``:
/// missing, its tests are skipped with a message saying what to install, unless
/// `QUIVER_REQUIRE_PEERS=1` (`.ci/run`), which makes them run and fail.
struct PathPeer: Sendable {
    let name: String
    let install: String

    static let pionecho = PathPeer(name: "pionecho", install: "built by .ci/run from the shared peers' pionecho (Go, pion/dtls)")
    static let gnutlsCLI = PathPeer(name: "gnutls-cli", install: "apt-get install gnutls-bin")

    var path: String? {
        let directories = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":")
        return directories.map { String($0) + "/" + name }.first { access($0, X_OK) == 0 }
    }

    var requirement: ConditionTrait {
        .enabled(if: AioquicPeer.required || path != nil,
                 "interop peer not installed: \(name) (\(install)); set QUIVER_REQUIRE_PEERS=1 to fail instead of skipping")
    }

    func executable() throws -> String {
        guard let path else { throw InteropFailure("\(name) not found in PATH (\(install))") }
        return path
    }
}

extension QuiverCommandTests {
    @Test("pion/dtls client (pionecho) → quiver serve --dtls: cookie exchange, handshake, a message echoed", PathPeer.pionecho.requirement)
    func pionClient() throws {
        let fixture = try InteropFixture()
        let (server, port) = try serve(["--dtls"], fixture: fixture)
        defer { server.kill() }
        let message = "pion-\(UInt64.random(in: 0...UInt64.max))"
        let client = try ChildProcess(try PathPeer.pionecho.executable(), ["-mode", "client", "-addr", "127.0.0.1:\(port)", "-msg", message])
        defer { client.kill() }
        #expect(client.waitForExit(timeout: 15) == 0, "\(client.transcript)\n\(server.transcript)")
        #expect(String(decoding: client.standardOutput, as: UTF8.self).contains("got echo: \"\(message)\""), "\(client.transcript)")
    }

    @Test("gnutls-cli --udp → quiver serve --dtls: handshake, a line echoed", PathPeer.gnutlsCLI.requirement)
    func gnutlsClient() throws {
        let fixture = try InteropFixture()
        let (server, port) = try serve(["--dtls"], fixture: fixture)
        defer { server.kill() }
        let client = try ChildProcess(try PathPeer.gnutlsCLI.executable(), ["--udp", "-p", "\(port)", "--x509cafile", fixture.cert,
                                                                             "--verify-hostname", "localhost", "127.0.0.1"])
        defer { client.kill() }
        let line = "gnutls-\(UInt64.random(in: 0...UInt64.max))"
        client.write(Array((line + "\n").utf8))
        #expect(client.waitForLine(startingWith: line, timeout: 15) != nil, "\(client.transcript)\n\(server.transcript)")
    }
}

extension QuiverCommandTests {
    // MARK: - Graceful shutdown (issue 21): quiver serve runs in a ServiceGroup

    @Test("serve: SIGTERM stops accepting, gives an open TLS connection --drain-timeout, then closes it and exits 0")
    func sigtermClosesAfterDrainTimeout() throws {
        let fixture = try InteropFixture()
        let (server, port) = try serve(["--tls", "--drain-timeout", "0.5"], fixture: fixture)
        defer { server.kill() }
        let client = try Connection.connect(.tcp, to: "127.0.0.1", port: port, tls: TestIdentity.clientTLS(), serverName: "localhost")
        try client.write(Array("before\n".utf8))
        #expect(try client.read() == Array("before\n".utf8))
        server.send(signal: SIGTERM)
        #expect(server.waitForExit(timeout: 10) == 0, "\(server.transcript)")
        // The connection was closed by the server, not left to time out.
        let end = try? client.read()
        #expect(end == nil || end == [], "\(String(describing: end))")
    }

    @Test("serve --http3: SIGTERM during a 30 MB download lets it finish byte-exact, then exits 0")
    func sigtermDrainsHTTP3() throws {
        let fixture = try InteropFixture()
        let (server, port) = try serve(["--http3", "--root", fixture.root, "--drain-timeout", "120"], fixture: fixture)
        defer { server.kill() }
        let size = 30_000_000
        let get = try ChildProcess(try Self.quiver, ["get", "--ca", fixture.cert, "--server-name", "localhost", "--out", fixture.out,
                                                     "https://127.0.0.1:\(port)/\(size)"])
        defer { get.kill() }
        // The response has begun (the server logs each request as it answers it).
        #expect(server.waitForErrorLine(containing: "/\(size) → 200", timeout: 30) != nil, "\(server.transcript)")
        server.send(signal: SIGTERM)
        #expect(get.waitForExit(timeout: 120) == 0, "\(get.transcript)\n\(server.transcript)")
        let attributes = try FileManager.default.attributesOfItem(atPath: fixture.out + "/\(size)")
        #expect((attributes[.size] as? Int) == size)
        #expect(server.waitForExit(timeout: 15) == 0, "\(server.transcript)")
    }
}
