import Logging
import Quiver
import QuiverCore
import Testing

/// Log lines about a connection name it in their metadata: `peer`, `transport` and, for QUIC,
/// `quic.connection_id` — the listener's failed-handshake lines and the application's own lines
/// through ``Connection/logger``.
@Suite("Connection log metadata")
struct ConnectionLogTests {
    @Test("a failed QUIC handshake's line carries the peer and the connection ID as metadata")
    func failedHandshake() throws {
        let log = CapturingLog()
        var options = Listener.Options()
        options.logger = log.logger
        let listener = try Listener(.quic, tls: Identity.server(alpn: ["echo"]), bind: "127.0.0.1:0", options: options)
        defer { listener.close() }
        #expect(throws: QuiverError.self) {
            _ = try Connection.connect(.quic, to: "127.0.0.1", port: listener.localAddresses[0].port,
                                       tls: Identity.client(alpn: ["other"]), serverName: "localhost")
        }
        #expect(log.waitForLine(timeout: 10))
        let line = try #require(log.lines.withLock { $0.first })
        #expect(line.message.hasPrefix("handshake failed:"))
        #expect(line.metadata["peer"]?.hasPrefix("127.0.0.1:") == true)
        #expect(line.metadata["transport"] == "quic")
        let id = try #require(line.metadata["quic.connection_id"], "\(line.metadata)")
        #expect(id.count >= 16 && id.allSatisfy(\.isHexDigit), "\(id)")  // a client's first DCID has at least 8 bytes
        #expect(!line.message.contains(id))  // metadata, not text
    }

    @Test("an accepted connection's logger adds its peer (and QUIC connection ID) to the listener's logger", arguments: [Transport.quic, .tcp])
    func connectionLogger(transport: Transport) throws {
        let log = CapturingLog()
        var options = Listener.Options()
        options.logger = log.logger
        let listener = try Listener(transport, tls: Identity.server(), bind: "127.0.0.1:0", options: options)
        defer { listener.close() }
        let client = try Connection.connect(transport, to: "127.0.0.1", port: listener.localAddresses[0].port, tls: Identity.client(),
                                            serverName: "localhost")
        defer { try? client.shutdown(.rapid(code: 0, reason: "")) }
        let server = try listener.accept()
        server.logger.info("served", metadata: ["bytes": "0"])
        let line = try #require(log.lines.withLock { $0.last })
        #expect(line.message == "served")
        #expect(line.metadata["bytes"] == "0")
        #expect(line.metadata["transport"] == "\(transport)")
        #expect(line.metadata["peer"] == server.peerAddress.map { "\($0)" }, "\(line.metadata)")
        #expect(line.metadata["peer"]?.hasPrefix("127.0.0.1:") == true, "\(line.metadata)")
        if transport == .quic {
            // Both ends name the connection alike: the client's first Destination Connection ID.
            let id = try #require(line.metadata["quic.connection_id"])
            #expect(client.loggerMetadata["quic.connection_id"] == .string(id))
        } else {
            #expect(line.metadata["quic.connection_id"] == nil)
        }
    }
}
