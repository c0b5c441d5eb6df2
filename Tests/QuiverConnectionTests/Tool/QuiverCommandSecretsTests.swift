// quiver secrets and serve --secrets: the keys the servers of one service share (issue 22).
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Quiver
import QuiverTestSupport
import Testing

extension QuiverCommandTests {
    @Test("serve --secrets: a session ticket from one server resumes at another given the same file, not at one without it")
    func sharedSecretsResume() throws {
        let fixture = try InteropFixture()
        let secrets = fixture.directory.path + "/secrets.json"
        let written = try run(["secrets", "--out", secrets])
        #expect(written.waitForExit(timeout: 1) == 0, "\(written.transcript)")
        let mode = try #require(try FileManager.default.attributesOfItem(atPath: secrets)[.posixPermissions] as? Int)
        #expect(mode == 0o600)

        let (first, firstPort) = try serve(["--http3", "--root", fixture.root, "--secrets", secrets], fixture: fixture)
        defer { first.kill() }
        let (second, secondPort) = try serve(["--http3", "--root", fixture.root, "--secrets", secrets], fixture: fixture)
        defer { second.kill() }
        let (stranger, strangerPort) = try serve(["--http3", "--root", fixture.root], fixture: fixture)
        defer { stranger.kill() }
        func get(_ port: UInt16, ticket: String) throws -> String {
            let get = try run(["get", "--ca", fixture.cert, "--server-name", "localhost", "--out", fixture.out, "--resume", ticket,
                               "https://127.0.0.1:\(port)/100"])
            #expect(get.waitForExit(timeout: 1) == 0, "\(get.transcript)")
            return get.waitForErrorLine(containing: "fetched", timeout: 1) ?? get.transcript
        }
        let ticket = fixture.directory.path + "/ticket"
        #expect(try get(firstPort, ticket: ticket).contains("resumed false"))
        let copy = fixture.directory.path + "/ticket-copy"
        try FileManager.default.copyItem(atPath: ticket, toPath: copy)
        #expect(try get(secondPort, ticket: ticket).contains("resumed true"))  // the other server's ticket
        #expect(try get(strangerPort, ticket: copy).contains("resumed false"))  // a server with its own key
    }

    @Test("serve --secrets refuses, in one line, a file others may read, one that is not JSON, an unknown key and a short key")
    func sharedSecretsRefused() throws {
        let fixture = try InteropFixture()
        let path = fixture.directory.path + "/secrets.json"
        func refused(_ contents: String, mode: Int = 0o600, _ text: String) throws {
            try contents.write(toFile: path, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
            expectOneLineError(try run(["serve", "--quic", "--port", "0", "--secrets", path]), containing: text)
        }
        let key = String(repeating: "ab", count: 32)
        try refused("{\"token\": \"\(key)\"}", mode: 0o644, "readable by others")
        try refused("token = 1", "not a JSON object")
        try refused("{\"tokn\": \"\(key)\"}", "unknown key \"tokn\"")
        try refused("{\"token\": \"abcd\"}", "\"token\" must be 32 bytes in hex")
        try refused("{\"sessionTicket\": \"\(String(repeating: "zz", count: 32))\"}", "\"sessionTicket\" must be 32 bytes in hex")
        expectOneLineError(try run(["serve", "--quic", "--port", "0", "--secrets", path + ".missing"]), containing: "No such file")
    }

    @Test("serve --secrets with a QUIC-LB configuration and --server-id: two loops behind the host's server ID serve HTTP/3")
    func quicLBServerID() throws {
        let fixture = try InteropFixture()
        let secrets = fixture.directory.path + "/secrets.json"
        try PrivateFileForTests.write("{\"quicLB\": {\"configID\": 1, \"serverIDLength\": 1, \"nonceLength\": 6}}", to: secrets)
        let (server, port) = try serve(["--http3", "--root", fixture.root, "--secrets", secrets, "--server-id", "2a", "--loops", "2"],
                                       fixture: fixture)
        defer { server.kill() }
        #expect(server.standardErrorText.contains("QUIC-LB config 1, server ID 2a, 8-byte connection IDs, plaintext"), "\(server.transcript)")
        for _ in 0..<4 {
            let get = try run(["get", "--ca", fixture.cert, "--server-name", "localhost", "--out", fixture.out, "https://127.0.0.1:\(port)/5000"])
            #expect(get.waitForExit(timeout: 1) == 0, "\(get.transcript)")
        }
    }

    @Test("secrets --quic-lb-server-id-length writes a QUIC-LB configuration that serve --server-id takes; bad lengths are one-line errors")
    func secretsWritesQUICLB() throws {
        let fixture = try InteropFixture()
        let secrets = fixture.directory.path + "/secrets.json"
        let written = try run(["secrets", "--out", secrets, "--quic-lb-server-id-length", "2", "--quic-lb-config-id", "3", "--quic-lb-encrypted"])
        #expect(written.waitForExit(timeout: 5) == 0, "\(written.transcript)")
        #expect(written.standardErrorText.contains("quicLB"), "\(written.transcript)")
        let (server, port) = try serve(["--http3", "--root", fixture.root, "--secrets", secrets, "--server-id", "0a0b", "--loops", "1"],
                                       fixture: fixture)
        defer { server.kill() }
        #expect(server.standardErrorText.contains("QUIC-LB config 3, server ID 0a0b"), "\(server.transcript)")
        #expect(server.standardErrorText.contains("encrypted"), "\(server.transcript)")
        let get = try run(["get", "--ca", fixture.cert, "--server-name", "localhost", "--out", fixture.out, "https://127.0.0.1:\(port)/5000"])
        #expect(get.waitForExit(timeout: 5) == 0, "\(get.transcript)")
        let other = fixture.directory.path + "/other.json"
        expectOneLineError(try run(["secrets", "--out", other, "--quic-lb-server-id-length", "10", "--quic-lb-nonce-length", "10"]),
                           containing: "sum to at most 19 octets")
        expectOneLineError(try run(["secrets", "--out", other, "--quic-lb-encrypted"]), containing: "go with --quic-lb-server-id-length")
        expectOneLineError(try run(["secrets", "--out", other, "--quic-lb-server-id-length", "1", "--quic-lb-config-id", "7"]),
                           containing: "--quic-lb-config-id must be 0 to 6")
    }

    @Test("serve refuses, in one line, a QUIC-LB configuration the draft forbids and a --server-id that does not fit it")
    func quicLBRefused() throws {
        let fixture = try InteropFixture()
        let path = fixture.directory.path + "/secrets.json"
        func refused(_ quicLB: String, _ arguments: [String], _ text: String) throws {
            try PrivateFileForTests.write("{\"quicLB\": \(quicLB)}", to: path)
            expectOneLineError(try run(["serve", "--quic", "--port", "0", "--secrets", path] + arguments), containing: text)
        }
        let plain = "{\"configID\": 0, \"serverIDLength\": 2, \"nonceLength\": 6}"
        try refused("{\"configID\": 7, \"serverIDLength\": 1, \"nonceLength\": 6}", ["--server-id", "01"], "\"configID\" must be 0 to 6")
        try refused("{\"configID\": 0, \"serverIDLength\": 10, \"nonceLength\": 10}", ["--server-id", "01"], "sum to at most 19 octets")
        try refused("{\"configID\": 0, \"serverIDLength\": 1, \"nonceLength\": 3}", ["--server-id", "01"], "at least 4 octets")
        try refused("{\"configID\": 0, \"serverIDLength\": 1, \"nonceLength\": 6, \"key\": \"abcd\"}", ["--server-id", "01"],
                    "\"key\" must be 16 bytes in hex")
        try refused("{\"configID\": 0, \"serverIDLength\": 1, \"nonceLenght\": 6}", ["--server-id", "01"], "unknown key \"nonceLenght\"")
        try refused(plain, [], "give this host's --server-id (2 byte(s) in hex)")
        try refused(plain, ["--server-id", "01"], "--server-id 01: 1 byte(s), but the QUIC-LB configuration")
        try refused(plain, ["--server-id", "0x01"], "--server-id 0x01: not hex")
        try refused("{\"configID\": 0, \"serverIDLength\": 2, \"nonceLength\": 8, \"key\": \"\(String(repeating: "5a", count: 16))\"}",
                    ["--server-id", "0102", "--loops", "2"], "--loops 2: a QUIC-LB configuration with a key")
        try refused(plain.replacingOccurrences(of: "6}", with: "5}"), ["--server-id", "0102", "--loops", "2"], "nonce of at least 6 octets")
        try PrivateFileForTests.write("{}", to: path)
        expectOneLineError(try run(["serve", "--quic", "--port", "0", "--secrets", path, "--server-id", "01"]), containing: "add \"quicLB\"")
        expectOneLineError(try run(["serve", "--quic", "--port", "0", "--server-id", "01"]), containing: "--server-id names this host")
    }
}

/// Writes test files readable by their owner only, as `--secrets` requires.
enum PrivateFileForTests {
    static func write(_ contents: String, to path: String) throws {
        try contents.write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
    }
}

