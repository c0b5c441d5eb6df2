// The README's listener example, compiled with `import Quiver` as the only Quiver module
// (issue 17, item 17): if a type it names stops coming with `import Quiver`, this file stops
// compiling. Foundation is imported for `Thread`, as in the README. Keep the two in step.
import Foundation
import Quiver
import Testing

/// The README's example, verbatim between the markers. It serves forever, so it is compiled,
/// not run; `namesInScope` runs the same names.
private func readmeExample() throws -> Never {
    // README: begin
    let (chain, key) = try SelfSignedCertificate.generate(names: ["localhost"])
    let tls = try TLSConfiguration.server(chain: chain, key: key, alpn: ["echo"])
    let listener = try Listener(.quic, tls: tls, bind: "[::]:4433")      // or .tcp: the only change
    while true {
        let connection = try listener.accept()              // blocking; the handshake has completed
        Thread {                                             // thread per connection, blocking echo
            while let bytes = try? connection.read(), !bytes.isEmpty { try? connection.write(bytes) }
            try? connection.shutdown()                       // FIN / close_notify, wait for delivery, close
        }.start()
    }
    // README: end
}

@Suite("The README's example compiles with import Quiver alone")
struct ReadmeExampleTests {
    @Test("The names a server needs come with import Quiver")
    func namesInScope() throws {
        let (chain, key): (CertificateChain, PrivateKey) = try SelfSignedCertificate.generate(names: ["localhost"])
        var tls: TLSConfiguration = try .server(chain: chain, key: key, alpn: ["echo"])
        tls.clientAuthentication = ClientAuthentication.none
        let verifier: CertificateVerifier = .insecureNoVerification(.iUnderstandThisDisablesPeerAuthentication)
        _ = TLSConfiguration.client(alpn: ["echo"], verifier: verifier)
        let address: SocketAddress? = SocketAddress(host: "127.0.0.1", port: 0)
        #expect(address != nil)
        let error = QuiverError(.configuration, "example")
        #expect(error.code == .configuration)
        let listener = try Listener(.tcp, tls: tls, bind: "127.0.0.1:0")
        #expect(listener.localAddresses.first?.port != 0)
        listener.close()
    }

    /// The QUIC settings a server or client sets, and what it reads back, need no engine
    /// import: `import QuiverQUIC` is for tests, benchmarks and the engine's own users.
    @Test("The QUIC options, counters and tickets come with import Quiver")
    func quicNamesInScope() throws {
        var options = Listener.Options()
        options.quicVersions = [QUICVersion.v2, .v1]
        options.retryPolicy = Listener.RetryPolicy.whenPendingExceeds(64)
        options.issueNewTokens = false
        options.maxDatagramSize = 1350
        options.pathMTUDiscovery = false
        options.congestionControl = Listener.CongestionControl.newReno
        options.maxIncomingBidirectionalStreams = 10
        options.maxIncomingUnidirectionalStreams = 3
        options.maxDatagramFrameSize = 1200
        options.disableActiveMigration = true
        options.workerID = 7
        options.statelessResetKey = [UInt8](repeating: 1, count: 32)
        let (chain, key) = try SelfSignedCertificate.generate(names: ["localhost"])
        let listener = try Listener(.quic, tls: try .server(chain: chain, key: key, alpn: ["echo"]), bind: "127.0.0.1:0", options: options)
        let counters: Listener.Statistics.QUIC? = listener.statistics.quic
        #expect(counters?.retriesSent == 0)
        listener.close()
        var client = ClientOptions()
        client.quicVersions = [.v1, .v2]
        client.maxDatagramFrameSize = 1200
        let view: KeyPath<Connection, Connection.QUIC?> = \.quic
        _ = view
        #expect(throws: QuiverError.self) { client.resumption = try ResumptionTicket(serialized: [0]) }
    }

    @Test("The README shows this file's example, line for line")
    func readmeMatches() throws {
        let here = URL(fileURLWithPath: #filePath)
        let source = try String(contentsOf: here, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        let begin = try #require(source.firstIndex { $0.hasSuffix("// README: begin") })
        let end = try #require(source.firstIndex { $0.hasSuffix("// README: end") })
        let example = source[(begin + 1)..<end].map { String($0.dropFirst(4)) }
        let readme = here.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("README.md")
        let text = try String(contentsOf: readme, encoding: .utf8)
        #expect(text.contains("```swift\nimport Foundation\nimport Quiver\n\n" + example.joined(separator: "\n") + "\n```"),
                "README.md's listener example differs from ReadmeExampleTests.swift's")
    }
}
