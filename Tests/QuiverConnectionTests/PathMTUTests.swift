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

    @Test("A 1500-byte MTU: the server proves 1452 bytes, tries a jumbo frame three times, and stays at 1452")
    func standardMTU() throws {
        let (scenario, client, sent) = try Self.download(mtu: 1500, seed: 61)
        #expect(client.allCorrect)
        let server = try #require(scenario.serverConnection)
        #expect(server.datagramSizeLimit == 1452)
        #expect(server.paths.current.mtuFailed == 8952)
        #expect(server.paths.current.nextMTUProbe(ceiling: server.datagramSizeCeiling) == nil)  // the search is over
        #expect(sent.filter { $0 == 1452 }.count > 500)  // most of 1 MB went in 1452-byte datagrams
        #expect(sent.filter { $0 > 1452 } == [8952, 8952, 8952])  // the jumbo probes, and nothing else larger
        // Only the probes were lost, and they were not taken as congestion.
        #expect(server.statistics.packetsLost == 0)
        #expect(server.statistics.mtuProbesLost == 3)
        #expect(server.congestion.congestionWindow > 10 * 1452)
    }

    @Test("A 9000-byte jumbo-frame MTU: the server climbs 1452, 8952 and stops below the 16 383-byte ceiling")
    func jumboMTU() throws {
        let (scenario, client, sent) = try Self.download(mtu: 9000, seed: 64)
        #expect(client.allCorrect)
        let server = try #require(scenario.serverConnection)
        #expect(server.datagramSizeLimit == 8952)
        #expect(server.paths.current.mtuFailed == 16_383)
        #expect(sent.filter { $0 == 8952 }.count > 50)
        #expect(sent.filter { $0 > 8952 }.count == 3)
    }

    @Test("A link as wide as loopback's: the server reaches the 16 383-byte ceiling, or a lower configured one")
    func loopbackMTU() throws {
        let (scenario, client, sent) = try Self.download(mtu: 65_536, seed: 65)
        #expect(client.allCorrect)
        let server = try #require(scenario.serverConnection)
        #expect(server.datagramSizeLimit == 16_383)
        #expect(server.paths.current.mtuFailed == nil)
        #expect(server.statistics.packetsLost == 0)
        #expect(sent.filter { $0 == 16_383 }.count > 30)
        // A smaller maxDatagramSize caps the search: our own, and the one the peer announces.
        let (capped, cappedClient, cappedSent) = try Self.download(mtu: 65_536, seed: 66) { $0.maxDatagramSize = 4000 }
        #expect(cappedClient.allCorrect)
        #expect(capped.serverConnection?.datagramSizeLimit == 4000)
        #expect(cappedSent.allSatisfy { $0 <= 4000 })
    }

    @Test("A ceiling below Ethernet's size is probed directly, in one probe")
    func lowCeiling() throws {
        let (scenario, client, sent) = try Self.download(mtu: 1500, seed: 67) { $0.maxDatagramSize = 1350 }
        #expect(client.allCorrect)
        let server = try #require(scenario.serverConnection)
        #expect(server.datagramSizeLimit == 1350)
        #expect(server.paths.current.mtuFailed == nil)
        #expect(sent.allSatisfy { $0 <= 1350 })
        #expect(server.statistics.packetsLost == 0)
    }

    @Test("A 1300-byte MTU: lost probes narrow the search to a size the link carries, and are not congestion")
    func smallerMTU() throws {
        let (scenario, client, sent) = try Self.download(mtu: 1300, seed: 62)
        #expect(client.allCorrect)
        let server = try #require(scenario.serverConnection)
        let limit = server.datagramSizeLimit
        #expect(limit <= 1300 && limit > 1300 - 40, "settled at \(limit)")
        #expect(server.paths.current.mtuFailed.map { $0 > 1300 } == true)
        #expect(sent.filter { $0 > 1300 }.count >= 3)  // the probes that failed
        // Only probes were lost, and they did not cut the window to its minimum.
        #expect(server.statistics.packetsLost == 0)
        #expect(server.statistics.mtuProbesLost == sent.filter { $0 > 1300 }.count)
        #expect(server.congestion.congestionWindow > 2 * 1452)
    }

    @Test("Only the probe in flight on the path counts: a late acknowledgment of another (from before a migration) proves nothing")
    func lateProbeAcknowledgment() {
        var path = QUICConnection.Path(remote: Addresses.client, isValidated: true)
        path.mtuProbe = 1452
        path.mtuProbeAcknowledged(8952)  // sent on the previous path
        #expect(path.mtu == 1200 && path.mtuProbe == 1452)
        path.mtuProbeAcknowledged(1452)
        #expect(path.mtu == 1452 && path.mtuProbe == nil)
        #expect(path.nextMTUProbe(ceiling: 16_383) == 8952)
    }

    @Test("Without discovery and without a configured size, datagrams keep Ethernet's 1452 bytes")
    func disabledDefault() throws {
        let (scenario, client, sent) = try Self.download(mtu: 1500, seed: 68) { $0.pathMTUDiscovery = false }
        #expect(client.allCorrect)
        #expect(scenario.serverConnection?.datagramSizeLimit == 1452)
        #expect(sent.allSatisfy { $0 <= 1452 })
        #expect(scenario.serverConnection?.statistics.packetsLost == 0)
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
