import QuiverCore
import QuiverNetSim
@_spi(Wire) @testable import QuiverQUIC
import QuiverQUICSim
import Testing

/// Datagram packetization layer path MTU discovery (RFC 9000 §14.3, RFC 8899) over links with
/// different MTUs in the simulator.
@Suite("Connection: path MTU discovery")
struct PathMTUTests {
    /// Runs a 1 MB download over a link with `mtu` and returns the scenario and the sizes of
    /// the datagrams the server sent.
    static func download(mtu: Int, seed: UInt64, edit: (inout QUICConfiguration) -> Void = { _ in })
        throws -> (scenario: Scenario, client: TransferClient, sent: [Int]) {
        var (clientConfig, serverConfig) = FeatureTests.configurations(edit)
        clientConfig.idleTimeout = .seconds(30)
        serverConfig.idleTimeout = .seconds(30)
        var link = LinkConfiguration()
        link.mtu = mtu
        let client = TransferClient(mode: .download, sizes: [1_000_000])
        let scenario = try Scenario(seed: seed, link: link, clientConfiguration: clientConfig, serverConfiguration: serverConfig,
                                    app: client, server: SourceServer())
        var sent: [Int] = []
        scenario.net.observers.append { datagram, event, _ in
            if event == .sent, datagram.source == Addresses.server { sent.append(datagram.bytes.count) }
        }
        try scenario.run()
        return (scenario, client, sent)
    }

    @Test("A 1500-byte MTU: the server proves 1452 bytes and sends full-sized datagrams")
    func standardMTU() throws {
        let (scenario, client, sent) = try Self.download(mtu: 1500, seed: 61)
        #expect(client.allCorrect)
        let server = try #require(scenario.serverConnection)
        #expect(server.datagramSizeLimit == 1452)
        #expect(server.path.mtuFailed == nil)
        #expect(sent.filter { $0 == 1452 }.count > 500)  // most of 1 MB went in 1452-byte datagrams
        #expect(sent.allSatisfy { $0 <= 1452 })
        #expect(server.statistics.packetsLost == 0)
    }

    @Test("A 1300-byte MTU: lost probes narrow the search to a size the link carries, and are not congestion")
    func smallerMTU() throws {
        let (scenario, client, sent) = try Self.download(mtu: 1300, seed: 62)
        #expect(client.allCorrect)
        let server = try #require(scenario.serverConnection)
        let limit = server.datagramSizeLimit
        #expect(limit <= 1300 && limit > 1300 - 40, "settled at \(limit)")
        #expect(server.path.mtuFailed.map { $0 > 1300 } == true)
        #expect(sent.filter { $0 > 1300 }.count >= 3)  // the probes that failed
        // Only probes were lost, and they did not cut the window to its minimum.
        #expect(server.statistics.packetsLost == sent.filter { $0 > 1300 }.count)
        #expect(server.congestion.congestionWindow > 2 * 1452)
    }

    @Test("Without discovery, datagrams keep the configured size")
    func disabled() throws {
        let (scenario, client, sent) = try Self.download(mtu: 1500, seed: 63) {
            $0.pathMTUDiscovery = false
            $0.maxDatagramSize = 1200
        }
        #expect(client.allCorrect)
        #expect(scenario.serverConnection?.datagramSizeLimit == 1200)
        #expect(sent.allSatisfy { $0 <= 1200 })
    }
}
