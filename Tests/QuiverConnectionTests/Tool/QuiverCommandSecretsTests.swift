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
}
