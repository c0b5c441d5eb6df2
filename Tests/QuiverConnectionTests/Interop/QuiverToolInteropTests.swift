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
