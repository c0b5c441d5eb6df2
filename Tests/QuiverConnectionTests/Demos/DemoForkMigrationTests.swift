#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Quiver
import QuiverCore
import QuiverTestSupport
import Testing

/// How a `ddd-01-fork` client moves mid-transfer.
enum ForkedClientMove: String, CustomStringConvertible, Sendable {
    /// The client moves itself to a new port (`Connection.QUIC.migrate(to:)`, RFC 9000 §9.2),
    /// with a new connection ID.
    case activeMigration
    /// A NAT between client and server gives the client a new source port (a relay).
    case natRebinding

    var description: String { rawValue }
}

extension DemoTests {
    @Test("ddd-01-fork over QUIC: a client that moves mid-transfer is followed by its child through the parent — the echo is byte for byte, the parent forwarded datagrams, the channel closes when the connection ends",
          arguments: [ForkedClientMove.activeMigration, .natRebinding])
    func forkFollowsMovingClient(move: ForkedClientMove) throws {
        try withForkDemo { port, _ in
            var rng = SplitMix64(seed: move == .activeMigration ? 101 : 202)
            let data = (0..<(1 << 20)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let echoed: [UInt8]
            switch move {
            case .natRebinding:
                let relay = try UDPRelay(server: SocketAddress(host: "127.0.0.1", port: port)!)
                let connection = try Connection.connect(.quic, to: "127.0.0.1", port: relay.port, tls: TestIdentity.clientTLS(),
                                                        serverName: "localhost")
                echoed = try relay.echoRebindingOnce(data, over: connection)
                try connection.shutdown()
                relay.stop()
                #expect(relay.reboundDatagrams > 0, "the rebinding happened")
            case .activeMigration:
                let connection = try Connection.connect(.quic, to: "127.0.0.1", port: port, tls: TestIdentity.clientTLS(),
                                                        serverName: "localhost")
                let quic = try #require(connection.quic)
                var moved: SocketAddress?
                echoed = try Self.echo(data, over: connection) { moved = try quic.migrate() }
                #expect(moved != nil, "the client moved")
                #expect(quic.pathsValidated >= 1, "the new path was proved")
                try connection.shutdown()
            }
            #expect(echoed.count == data.count && echoed == data, "\(echoed.count) of \(data.count) bytes echoed")
        }
    }

    @Test("ddd-01-fork over QUIC with aioquic as the client: it moves to a new port and connection ID mid-transfer, leaving the path validation to the server; the child follows through the parent",
          AioquicPeer.requirement)
    func forkFollowsAioquicMigration() throws {
        try withForkDemo { port, cert in
            let client = try AioquicPeer.start(["client", "--port", "\(port)", "--ca", cert, "--sizes", "\(1 << 20)",
                                                "--migrate-after", "\(1 << 18)", "--timeout", "60"])
            defer { client.kill() }
            let result = client.waitForLine(startingWith: "RESULT", timeout: 70)
            #expect(result?.hasPrefix("RESULT PASS") == true && result?.contains("migrated-to-port=") == true, "\(client.transcript)")
            #expect(client.waitForExit(timeout: 10) == 0, "\(client.transcript)")
        }
    }

    /// Runs `ddd-01-fork --quic` around `body` (given its port and certificate file), then
    /// checks that the one child's channel closed with datagrams forwarded to it — the client
    /// moved, its datagrams reached the parent — that SIGINT ends the demo, and that the
    /// listener's statistics (logged at SIGINT) count those datagrams and no channel or route
    /// left.
    private func withForkDemo(_ body: (_ port: UInt16, _ certificate: String) throws -> Void) throws {
        try Self.withQUICForkDemo { demo, port, cert in
            try body(port, cert)
            try checkFollowed(demo)
        }
    }

    /// After the client moved: the child's channel closed with datagrams forwarded to it, SIGINT
    /// ends the demo, and the listener's statistics agree.
    private func checkFollowed(_ demo: ChildProcess) throws {
        // The child closes its end of the channel once its connection ended (at the latest, as
        // it exits); the parent sees the channel end and drops it with its routes.
        let line = try #require(demo.waitForErrorLine(containing: "datagrams forwarded to it: ", timeout: 15), "\(demo.transcript)")
        let forwarded = line.components(separatedBy: "forwarded to it: ").last.flatMap { Int($0.prefix { $0.isNumber }) }
        #expect((forwarded ?? 0) > 0, "the parent passed the moved client's datagrams on: \(line)")
        let children = Self.servingChildren(demo)
        #expect(children.count == 1 && line.contains("process \(children.first ?? -1)'s channel"), "\(demo.transcript)")
        demo.send(signal: SIGINT)
        #expect(demo.waitForExit(timeout: 5) == 0, "\(demo.transcript)")
        // The listener's statistics, read before it closed: the same count, nothing left routed.
        let totals = demo.standardErrorText.split(separator: "\n").first { $0.contains("datagrams forwarded to children") }
        #expect(totals?.hasSuffix(": \(forwarded ?? -1) datagrams forwarded to children, 0 channels and 0 connection IDs still routed to them") == true,
                "\(demo.transcript)")
    }

    /// Echoes `data` over `connection`, writing on a thread of its own while reading, and calls
    /// `move` once when a third has come back; returns what came back. A connection whose
    /// datagrams stop reaching its server stalls rather than fails, so after 60 s it is closed.
    static func echo(_ data: [UInt8], over connection: Connection, movingOnce move: () throws -> Void) throws -> [UInt8] {
        let writer = Thread {
            var offset = 0
            while offset < data.count {
                let end = min(data.count, offset + 16_384)
                try? connection.write(data[offset..<end])
                offset = end
            }
            try? connection.finish()
        }
        writer.start()
        DispatchQueue.global().asyncAfter(deadline: .now() + 60) { try? connection.shutdown(.rapid(code: 1, reason: "test timeout")) }
        var echoed: [UInt8] = []
        var moved = false
        while case let bytes = try connection.read(), !bytes.isEmpty {
            echoed += bytes
            if !moved, echoed.count > data.count / 3 {
                moved = true
                try move()
            }
        }
        return echoed
    }
}
