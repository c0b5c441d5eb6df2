import QuiverCore
import QuiverNetSim
@_spi(Wire) import QuiverQUIC
import QuiverTLS
import Testing

@Suite("Connection: transfers")
struct TransferTests {
    @Test("Echo on one stream, exact bytes", arguments: [0, 1, 1199, 1200, 65_536, 1_000_000] as [UInt64])
    func echoSizes(size: UInt64) throws {
        let client = TransferClient(mode: .echo, sizes: [size])
        let scenario = try Scenario(seed: size, app: client)
        try scenario.run(timeLimit: .seconds(60))
        #expect(client.errors.isEmpty)
        #expect(client.allCorrect)
    }

    @Test("100 concurrent streams echo")
    func concurrentStreams() throws {
        let client = TransferClient(mode: .echo, sizes: (0..<100).map { UInt64($0 * 997 % 20_000) })
        let scenario = try Scenario(seed: 7, app: client)
        try scenario.run(timeLimit: .seconds(60))
        #expect(client.errors.isEmpty)
        #expect(client.allCorrect)
        #expect(client.transfers.count == 100)
    }

    @Test("Download of 50 MB on one stream and on 100 streams")
    func download() throws {
        for sizes in [[UInt64(50_000_000)], Array(repeating: UInt64(500_000), count: 100)] {
            let client = TransferClient(mode: .download, sizes: sizes)
            var link = LinkConfiguration()
            link.bandwidth = 1_000_000_000
            link.queueLimit = 1 << 20
            let scenario = try Scenario(seed: 3, link: link, app: client, server: SourceServer())
            try scenario.run(timeLimit: .seconds(120))
            #expect(client.errors.isEmpty)
            #expect(client.allCorrect)
        }
    }

    @Test("Downloads with BBR selected complete, byte for byte, over lossy and clean bottlenecks",
          arguments: [(0.0, 100), (0.01, 50), (0.05, 20), (0.15, 10)])
    func bbrDownload(lossRate: Double, megabitsPerSecond: UInt64) throws {
        var configuration = QUICConfiguration(tls: TestIdentity.serverTLS())
        configuration.congestionAlgorithm = .bbr
        var clientConfiguration = QUICConfiguration(tls: TestIdentity.clientTLS())
        clientConfiguration.congestionAlgorithm = .bbr
        let client = TransferClient(mode: .download, sizes: [2_000_000, 300_000])
        var link = LinkConfiguration()
        link.latency = .milliseconds(20)
        link.bandwidth = megabitsPerSecond * 1_000_000
        link.queueLimit = Int(megabitsPerSecond * 1_000_000 / 8 * 40 / 1000)  // one BDP
        link.lossRate = lossRate
        let scenario = try Scenario(seed: 20, link: link, clientConfiguration: clientConfiguration,
                                    serverConfiguration: configuration, app: client, server: SourceServer())
        try scenario.run(timeLimit: .seconds(300))
        #expect(client.errors.isEmpty)
        #expect(client.allCorrect)
        let server = try #require(scenario.serverConnection)
        #expect(server.configuration.congestionAlgorithm == .bbr)
        if lossRate > 0 { #expect(server.statistics.packetsLost > 0) }
    }
}
