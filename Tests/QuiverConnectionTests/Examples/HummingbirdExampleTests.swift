import Crypto
import Foundation
import Quiver
import QuiverCore
import QuiverHTTP3
import QuiverTestSupport
import Synchronization
import Testing

/// `Examples/hummingbird-http3`, the example package built against this checkout (`.ci/run`
/// builds it): its routes over HTTP/3 to aioquic and over HTTP/1.1 to curl (with Alt-Svc), and
/// its graceful shutdown under load.
@Suite("The Hummingbird HTTP/3 example", .serialized)
struct HummingbirdExampleTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Examples/hummingbird-http3").path
    static let executable = directory + "/.build/debug/hummingbird-http3"
    static let requestScript = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("aioquic_h3_request.py").path

    static var requirement: ConditionTrait {
        .enabled(if: access(executable, X_OK) == 0 || AioquicPeer.required,
                 "the example is not built: (cd Examples/hummingbird-http3 && swift build); set QUIVER_REQUIRE_PEERS=1 to fail instead of skipping")
    }

    /// Starts the example on free ports; returns it with its HTTP/3 (UDP) and HTTP/1.1 (TCP) ports.
    private func start() throws -> (ChildProcess, h3: UInt16, http: UInt16) {
        try #require(access(Self.executable, X_OK) == 0, "the example is not built: (cd Examples/hummingbird-http3 && swift build)")
        let h3 = try QuiverToolInteropTests.freePort()
        var http = try QuiverToolInteropTests.freePort()
        while http == h3 { http = try QuiverToolInteropTests.freePort() }
        // Our test certificate, which the Quiver clients trust (aioquic and curl do not check).
        let directory = try TemporaryDirectory()
        let cert = try directory.write("cert.pem", TestIdentity.p256.chain.pemRepresentation)
        let key = try directory.write("key.pem", TestIdentity.p256.key.pemRepresentation)
        let example = try ChildProcess(Self.executable, ["--host", "127.0.0.1", "--h3-port", "\(h3)", "--http-port", "\(http)",
                                                         "--cert", cert, "--key", key])
        try #require(example.waitForErrorLine(containing: "serving HTTP/1.1", timeout: 30) != nil, "\(example.transcript)")
        return (example, h3, http)
    }

    private func aioquic(_ port: UInt16, _ method: String, _ path: String, bodySize: Int = 0) throws -> [String] {
        let client = try ChildProcess(try AioquicPeer.python3(), [Self.requestScript, "\(port)", method, path, "--body-size", "\(bodySize)"])
        #expect(client.waitForExit(timeout: 30) == 0, "\(client.transcript)")
        return client.lines
    }

    private static func sha256(_ bytes: [UInt8]) -> String { SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined() }

    @Test("aioquic over HTTP/3: GET /hello and a 200 KB POST /echo; curl over HTTP/1.1 sees Alt-Svc; SIGTERM exits 0",
          requirement, AioquicPeer.requirement)
    func routesOverBothProtocols() throws {
        let (example, h3, http) = try start()
        defer { example.kill() }
        let hello = try aioquic(h3, "GET", "/hello")
        #expect(hello.first == "STATUS 200", "\(hello)")
        #expect(hello.contains("BODY 13 \(Self.sha256(Array("Hello, HTTP/3".utf8)))"), "\(hello)")
        let echo = try aioquic(h3, "POST", "/echo", bodySize: 200_000)
        let sent = echo.first { $0.hasPrefix("SENT ") }?.dropFirst(5)
        #expect(echo.first == "STATUS 200" && sent != nil && echo.contains("BODY 200000 \(sent ?? "")"), "\(echo)")

        let curl = try ChildProcess("/usr/bin/curl", ["-si", "http://127.0.0.1:\(http)/hello"])
        #expect(curl.waitForExit(timeout: 20) == 0, "\(curl.transcript)")
        let response = String(decoding: curl.standardOutput, as: UTF8.self)
        #expect(response.hasPrefix("HTTP/1.1 200"), "\(response)")
        #expect(response.lowercased().contains("alt-svc: h3=\":\(h3)\"; ma=86400"), "\(response)")
        #expect(response.hasSuffix("Hello, HTTP/3"), "\(response)")
        let upload = try ChildProcess("/usr/bin/curl", ["-s", "--data-binary", "abc\u{1}xyz", "http://127.0.0.1:\(http)/echo"])
        #expect(upload.waitForExit(timeout: 20) == 0 && upload.standardOutput == Array("abc\u{1}xyz".utf8), "\(upload.transcript)")

        example.send(signal: SIGTERM)
        #expect(example.waitForExit(timeout: 15) == 0, "\(example.transcript)")
        #expect(example.standardErrorText.contains("stopped"), "\(example.transcript)")
    }

    /// What the clients of ``gracefulShutdownUnderLoad()`` saw.
    final class Tally: Sendable {
        let signalled = Atomic<Bool>(false)
        let outcomes = Mutex<(completed: Int, refused: Int, lost: [String])>((0, 0, []))
    }

    @Test("SIGTERM under load: every request begun before it completes byte-exact; later ones are refused cleanly; exit 0",
          requirement)
    func gracefulShutdownUnderLoad() async throws {
        let (example, h3, _) = try start()
        defer { example.kill() }
        let tally = Tally()
        let (progress, progressMade) = AsyncStream.makeStream(of: Int.self)
        try await withThrowingTaskGroup { group in
            for client in 0..<6 {
                let connection = try await Connection.connect(.quic, to: "127.0.0.1", port: h3,
                                                              tls: TestIdentity.clientTLS(alpn: ["h3"]), serverName: "localhost")
                let h3Client = try HTTP3Client(connection)
                group.addTask {
                    var round = 0
                    while true {
                        let beganBeforeSignal = !tally.signalled.load(ordering: .acquiring)
                        let body = (0..<(20_000 + 997 * round)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ client) }
                        round += 1
                        do {
                            let post = HTTPRequest(method: .post, scheme: "https", authority: "localhost", path: "/echo")
                            let response = try await h3Client.send(post, body: body)
                            if response.status == .ok, response.body == body {
                                progressMade.yield(tally.outcomes.withLock { $0.completed += 1; return $0.completed })
                            } else {
                                tally.outcomes.withLock { $0.lost.append("client \(client): \(response.status), \(response.body.count) of \(body.count) bytes") }
                            }
                        } catch let error as HTTP3Error where error.code == .requestRejected {
                            tally.outcomes.withLock { $0.refused += 1 }  // not processed: the client may retry it
                            return
                        } catch {
                            // A connection closed after its drain is fine for a request begun after
                            // the signal; one begun before it was in flight and must have completed.
                            if beganBeforeSignal { tally.outcomes.withLock { $0.lost.append("client \(client): \(error)") } }
                            return
                        }
                    }
                }
            }
            // Load first, then the signal in the middle of it.
            for await completed in progress where completed >= 30 { break }
            tally.signalled.store(true, ordering: .releasing)
            example.send(signal: SIGTERM)
            try await group.waitForAll()
        }
        let result = tally.outcomes.withLock { $0 }
        #expect(result.lost.isEmpty, "\(result.lost.prefix(5))\n\(example.transcript)")
        #expect(result.completed >= 30)
        let exited = example.waitForExit(timeout: 15)
        #expect(exited == 0, "\(example.transcript)")
    }
}
