// quiver serve logs failed handshakes (issue 17, item 13); quiver connect --quic to a closed
// port fails at once like TLS (item 20).
import Foundation
import Quiver
import QuiverTestSupport
import Testing

extension QuiverCommandTests {
    @Test("serve logs a failed handshake with the peer and the reason, TLS and QUIC", arguments: ["--tls", "--quic"])
    func logsFailedHandshakes(transport: String) throws {
        let fixture = try InteropFixture()
        let (server, port) = try serve([transport], fixture: fixture)
        defer { server.kill() }
        let client = try run(["connect", transport, "--ca", fixture.cert, "--server-name", "localhost", "--alpn", "not-echo", "127.0.0.1:\(port)"])
        #expect(client.waitForExit(timeout: 1).map { $0 != 0 } == true, "\(client.transcript)")
        let line = server.waitForErrorLine(containing: "handshake failed", timeout: 10) ?? ""
        #expect(line.contains("ALPN"), "\(server.transcript)")
        #expect(line.contains("peer=127.0.0.1:"), "\(server.transcript)")
    }

    @Test("connect --quic to a closed port says the connection was refused at once, as TLS does", arguments: ["--tls", "--quic"])
    func refusedAtOnce(transport: String) throws {
        let port = try DemoTests.freePorts(1)  // nothing listens there
        // Far below QUIC's 30 s idle timeout, which used to be what ended the attempt.
        let client = try run(["connect", transport, "--insecure", "127.0.0.1:\(port)"], timeout: 10)
        expectOneLineError(client, containing: "Connection refused")
    }
}
