import QuiverCore
import QuiverNetSim
@_spi(Wire) @testable import QuiverQUIC
import QuiverQUICSim
import Testing

/// Explicit Congestion Notification end to end in the simulator (RFC 9000 §13.4, RFC 9002
/// §7.1): marking, validation from the peer's ACK frame counts, fallback when a path or a peer
/// breaks it, and ECN-CE as a congestion signal.
@Suite("Connection: ECN")
struct ECNTests {
    /// What the network saw: the codepoints of the datagrams each side sent, in order, and of
    /// those it delivered.
    final class Wire {
        var fromClient: [ECNCodepoint] = []
        var fromServer: [ECNCodepoint] = []
        var deliveredToClient: [ECNCodepoint] = []
        var deliveredToServer: [ECNCodepoint] = []

        /// Records into this wire from `net`'s events.
        func observe(_ net: NetworkSimulator) {
            net.observers.append { [self] datagram, event, _ in
                let fromServer = datagram.source == Addresses.server
                switch event {
                case .sent where fromServer: self.fromServer.append(datagram.ecn)
                case .sent: fromClient.append(datagram.ecn)
                case .delivered where fromServer: deliveredToClient.append(datagram.ecn)
                case .delivered: deliveredToServer.append(datagram.ecn)
                default: break
                }
            }
        }
    }

    /// A download of `size` bytes over `link` (both directions unless `toClient` is given for
    /// the server → client direction).
    static func download(size: UInt64 = 300_000, seed: UInt64, link: LinkConfiguration = LinkConfiguration(),
                         toClient: LinkConfiguration? = nil, edit: (inout QUICConfiguration, Role) -> Void = { _, _ in })
        throws -> (scenario: Scenario, client: TransferClient, wire: Wire) {
        var clientConfig = QUICConfiguration(tls: TestIdentity.clientTLS())
        var serverConfig = QUICConfiguration(tls: TestIdentity.serverTLS())
        edit(&clientConfig, .client)
        edit(&serverConfig, .server)
        let client = TransferClient(mode: .download, sizes: [size])
        let scenario = try Scenario(seed: seed, link: link, clientConfiguration: clientConfig, serverConfiguration: serverConfig,
                                    app: client, server: SourceServer())
        if let toClient { scenario.net.setLink(from: Addresses.server, to: Addresses.client, toClient) }
        let wire = Wire()
        wire.observe(scenario.net)
        try scenario.run(timeLimit: .seconds(300))
        return (scenario, client, wire)
    }

    @Test("A clean path: both sides validate ECN and keep marking; every mark is counted at the other end")
    func validated() throws {
        let (scenario, client, wire) = try Self.download(seed: 71)
        #expect(client.allCorrect)
        let server = try #require(scenario.serverConnection)
        let clientConnection = scenario.clientConnection
        #expect(server.statistics.ecn.state == .capable)
        #expect(clientConnection.statistics.ecn.state == .capable)
        // Marked from the first datagram on, and again (after the testing period's ten packets)
        // once an acknowledgment validated the marks: the bulk of the transfer goes marked.
        #expect(wire.fromClient.first == .ect0 && wire.fromServer.first == .ect0)
        #expect(wire.fromServer.suffix(100).allSatisfy { $0 == .ect0 })
        #expect(wire.fromServer.filter { $0 == .ect0 }.count > wire.fromServer.count * 9 / 10)
        // Every marked datagram delivered is counted as such.
        #expect(clientConnection.statistics.ecn.datagramsReceivedECT0 == wire.deliveredToClient.filter { $0 == .ect0 }.count)
        #expect(server.statistics.ecn.datagramsReceivedECT0 == wire.deliveredToServer.filter { $0 == .ect0 }.count)
        #expect(server.statistics.ecn.packetsSentECT0 >= wire.fromServer.filter { $0 == .ect0 }.count)
        #expect(server.statistics.ecn.congestionEvents == 0 && server.statistics.ecn.datagramsReceivedCE == 0)
    }

    @Test("A path that bleaches the ECN field: validation fails on both sides, marking stops, the transfer completes")
    func bleachingPath() throws {
        var link = LinkConfiguration()
        link.bleachECN = true
        let (scenario, client, wire) = try Self.download(seed: 72, link: link)
        #expect(client.allCorrect)
        let server = try #require(scenario.serverConnection)
        #expect(server.statistics.ecn.state == .failed)
        #expect(scenario.clientConnection.statistics.ecn.state == .failed)
        // At most the testing period's packets were marked.
        #expect(wire.fromServer.filter { $0 == .ect0 }.count <= ECNValidation.testingPacketCount)
        #expect(wire.fromServer.suffix(100).allSatisfy { $0 == .notECT })
        #expect(server.statistics.ecn.datagramsReceivedECT0 == 0)
        #expect(server.statistics.packetsLost == 0)
    }

    @Test("A peer that reads no ECN field reports no counts: the sender stops marking; the peer's own marks still validate")
    func peerWithoutECNCounts() throws {
        // A client whose stack cannot read the field (as aioquic's) reports no ECN counts.
        let blind = try Self.blindClientDownload(seed: 73)
        #expect(blind.client.allCorrect)
        let server = try #require(blind.scenario.serverConnection)
        #expect(server.statistics.ecn.state == .failed)
        #expect(blind.wire.fromServer.suffix(100).allSatisfy { $0 == .notECT })
        // The server reads the client's marks and reports them: the client's path validates.
        #expect(blind.scenario.clientConnection.statistics.ecn.state == .capable)
        #expect(blind.scenario.clientConnection.statistics.ecn.datagramsReceivedECT0 == 0)
    }

    /// ``download(size:seed:link:toClient:edit:)`` with a client node that hands its connection
    /// every datagram as not-ECT.
    static func blindClientDownload(seed: UInt64) throws -> (scenario: Scenario, client: TransferClient, wire: Wire) {
        let client = TransferClient(mode: .download, sizes: [300_000])
        let scenario = try Scenario(seed: seed, app: client, server: SourceServer())
        scenario.clientNode.rewrite = { datagram in
            var blind = datagram
            blind.ecn = .notECT
            return blind
        }
        let wire = Wire()
        wire.observe(scenario.net)
        try scenario.run(timeLimit: .seconds(300))
        return (scenario, client, wire)
    }

    @Test("A path that drops ECN-capable datagrams: the marked packets are all lost, validation fails, unmarked ones get through")
    func pathDroppingMarkedDatagrams() throws {
        var link = LinkConfiguration()
        link.dropECNCapable = true
        let (scenario, client, wire) = try Self.download(size: 50_000, seed: 74, link: link)
        #expect(client.allCorrect)
        let server = try #require(scenario.serverConnection)
        #expect(server.statistics.ecn.state == .failed)
        #expect(scenario.clientConnection.statistics.ecn.state == .failed)
        #expect(wire.fromClient.suffix(10).allSatisfy { $0 == .notECT })
        #expect(wire.fromServer.suffix(10).allSatisfy { $0 == .notECT })
        #expect(scenario.net.counts[.dropped(.ecnCapable)] ?? 0 > 0)
    }

    @Test("ECN-CE marks are congestion: the window shrinks with no packet lost")
    func congestionExperienced() throws {
        let clean = try Self.download(size: 1_000_000, seed: 75)
        var marking = LinkConfiguration()
        marking.ceMarkRate = 0.01
        let marked = try Self.download(size: 1_000_000, seed: 75, toClient: marking)
        #expect(clean.client.allCorrect && marked.client.allCorrect)
        let cleanServer = try #require(clean.scenario.serverConnection)
        let server = try #require(marked.scenario.serverConnection)
        #expect(server.statistics.ecn.state == .capable)
        #expect(marked.scenario.clientConnection.statistics.ecn.datagramsReceivedCE > 0)
        #expect(server.statistics.ecn.congestionEvents > 0)
        #expect(server.statistics.packetsLost == 0 && cleanServer.statistics.packetsLost == 0)
        #expect(cleanServer.statistics.ecn.congestionEvents == 0)
        #expect(server.congestionWindow < cleanServer.congestionWindow * 3 / 4,
                "window \(server.congestionWindow) with CE marks, \(cleanServer.congestionWindow) without")
    }

    @Test("An AQM marking above a queue threshold keeps a bottleneck lossless where a tail-drop queue loses packets")
    func aqmMarking() throws {
        var dropTail = LinkConfiguration()
        dropTail.bandwidth = 20_000_000
        dropTail.queueLimit = 150_000
        var aqm = dropTail
        aqm.ceMarkQueueThreshold = 10_000
        let lossy = try Self.download(size: 2_000_000, seed: 76, toClient: dropTail)
        let marked = try Self.download(size: 2_000_000, seed: 76, toClient: aqm)
        #expect(lossy.client.allCorrect && marked.client.allCorrect)
        let lossyServer = try #require(lossy.scenario.serverConnection)
        let server = try #require(marked.scenario.serverConnection)
        #expect(lossyServer.statistics.packetsLost > 0)
        #expect(server.statistics.ecn.congestionEvents > 0)
        #expect(server.statistics.packetsLost == 0, "\(server.statistics)")
    }

    @Test("ECN off by configuration: nothing marked, the peer's marks still counted and reported")
    func disabledByConfiguration() throws {
        let (scenario, client, wire) = try Self.download(seed: 77) { configuration, role in
            if role == .server { configuration.ecn = false }
        }
        #expect(client.allCorrect)
        let server = try #require(scenario.serverConnection)
        #expect(server.statistics.ecn.state == .disabled)
        #expect(server.statistics.ecn.packetsSentECT0 == 0)
        #expect(wire.fromServer.allSatisfy { $0 == .notECT })
        #expect(server.statistics.ecn.datagramsReceivedECT0 > 0)
        #expect(scenario.clientConnection.statistics.ecn.state == .capable)  // the server reported the client's marks
    }
}
