// The server's preferred address (RFC 9000 §9.6), on the simulated network.
import QuiverCore
import QuiverNetSim
@_spi(Wire) @testable import QuiverQUIC
import QuiverQUICSim
import Testing

@Suite("Connection: the server's preferred address")
struct PreferredAddressTests {
    static let preferred = SocketAddress("10.0.0.3:443")!

    /// A download from a server announcing ``preferred``, where its node receives too.
    static func download(seed: UInt64, follows: Bool = true,
                         edit: (inout QUICConfiguration) -> Void = { _ in }) throws -> Scenario {
        let (clientConfig, serverConfig) = FeatureTests.configurations {
            $0.preferredAddresses = [preferred, SocketAddress("[2001:db8::3]:443")!]
            $0.followsPreferredAddress = follows
            edit(&$0)
        }
        let scenario = try Scenario(seed: seed, clientConfiguration: clientConfig, serverConfiguration: serverConfig,
                                    app: TransferClient(mode: .download, sizes: [2_000_000]), server: SourceServer())
        scenario.serverNode.extraAddresses = [preferred]
        return scenario
    }

    @Test("The client moves to the preferred address with its connection ID; the server probes from there and sends non-probing packets from there only once the client answered (§9.6.2)")
    func move() throws {
        let scenario = try Self.download(seed: 61)
        let client = scenario.clientConnection
        // The packets the client receives, with the address they came from.
        var source = Addresses.server
        var received: [(from: SocketAddress, frames: String)] = []
        scenario.clientNode.onReceive = { source = $0.source }
        client.traceHandler = { line in
            if line.contains(" received ") { received.append((source, String(line[line.firstIndex(of: "[")!...]))) }
        }
        try scenario.run()
        let server = try #require(scenario.serverConnection)
        #expect(scenario.client.allCorrect)
        #expect(client.statistics.preferredAddressMigrations == 1)
        #expect(client.remoteAddress == Self.preferred)
        #expect(server.statistics.preferredAddressMigrations == 1)
        #expect(server.localAddress == Self.preferred)
        #expect(server.remoteAddress == Addresses.client)
        #expect(server.statistics.peerMigrations == 0)  // the client's address did not change
        #expect(client.statistics.packetsDropped == 0)  // late packets from the original address are taken too
        // The client used the connection ID that came with the address (sequence 1, §5.1.1).
        let offered = try #require(client.peerTransportParameters?.preferredAddress)
        #expect(offered.address(family: Addresses.server) == Self.preferred)
        #expect(server.statistics.pathsValidated == 1 && client.statistics.pathsValidated == 1)
        // From the preferred address, probing packets only (PATH_CHALLENGE, PATH_RESPONSE,
        // PADDING) until the server's challenge, which the client had to answer before the
        // server's first non-probing packet there; meanwhile those came from the original one.
        func probing(_ frames: String) -> Bool {
            frames.split(separator: ",").allSatisfy { $0.contains("PATH_CHALLENGE") || $0.contains("PATH_RESPONSE") || $0.contains("PADDING") }
        }
        let atPreferred = received.indices.filter { received[$0].from == Self.preferred }
        let challenge = try #require(atPreferred.first { received[$0].frames.contains("PATH_CHALLENGE") })
        let firstNonProbing = try #require(atPreferred.first { !probing(received[$0].frames) })
        #expect(challenge < firstNonProbing)
        #expect(received[..<firstNonProbing].contains { $0.from == Addresses.server && !probing($0.frames) })
        #expect(!received[firstNonProbing...].contains { $0.from == Addresses.server && !probing($0.frames) && $0.frames.contains("STREAM") })
    }

    @Test("Once the server moved to its preferred address, the client's packets that still reach the original address do not move it back (§9.6.2)")
    func noMoveBack() throws {
        let scenario = try Self.download(seed: 66)
        try scenario.net.run(until: { scenario.serverConnection?.statistics.preferredAddressMigrations == 1 }, timeLimit: .seconds(5))
        let server = try #require(scenario.serverConnection)
        // From now on the network delivers the client's datagrams at the original address.
        var redirected = 0
        scenario.serverNode.rewrite = { datagram in
            guard datagram.destination == Self.preferred, redirected < 20 else { return datagram }
            redirected += 1
            var moved = datagram
            moved.destination = Addresses.server
            return moved
        }
        try scenario.run()
        #expect(redirected == 20)
        #expect(scenario.client.allCorrect)
        #expect(server.localAddress == Self.preferred)
        #expect(server.statistics.preferredAddressMigrations == 1 && server.statistics.peerMigrations == 0)
    }

    @Test("A preferred address that does not answer: the client goes back to the server's original address and the download completes")
    func unreachable() throws {
        let scenario = try Self.download(seed: 62)
        scenario.serverNode.rewrite = { $0.destination == Self.preferred ? nil : $0 }
        try scenario.run()
        let client = scenario.clientConnection
        let server = try #require(scenario.serverConnection)
        #expect(scenario.client.allCorrect)
        #expect(client.statistics.preferredAddressMigrations == 0)
        #expect(client.remoteAddress == Addresses.server)
        #expect(server.statistics.preferredAddressMigrations == 0)
        #expect(server.localAddress == Addresses.server)
    }

    @Test("A client told not to follow stays on the original address; a server with zero-length connection IDs offers no preferred address (§18.2)")
    func notFollowed() throws {
        let scenario = try Self.download(seed: 63, follows: false)
        try scenario.run()
        #expect(scenario.client.allCorrect)
        #expect(scenario.clientConnection.peerTransportParameters?.preferredAddress != nil)
        #expect(scenario.clientConnection.remoteAddress == Addresses.server)
        #expect(scenario.serverConnection?.statistics.preferredAddressMigrations == 0)

        let zeroLength = try Self.download(seed: 64) { $0.connectionIDLength = 0 }
        try zeroLength.run()
        #expect(zeroLength.client.allCorrect)
        #expect(zeroLength.clientConnection.peerTransportParameters?.preferredAddress == nil)
        #expect(zeroLength.clientConnection.remoteAddress == Addresses.server)
    }

    @Test("The client moves to the preferred address from a new address of its own (§9.6.3): the server validates the new client address from the preferred one")
    func moveWithRebinding() throws {
        let scenario = try Self.download(seed: 65)
        // The client's NAT gives the flow to the preferred address a new binding.
        let rebound = SocketAddress("10.0.0.1:6001")!
        scenario.serverNode.rewrite = { datagram in
            guard datagram.destination == Self.preferred else { return datagram }
            var moved = datagram
            moved.source = rebound
            return moved
        }
        scenario.clientNode.rewrite = { datagram in
            guard datagram.destination == rebound else { return datagram }
            var moved = datagram
            moved.destination = Addresses.client
            return moved
        }
        scenario.clientNode.extraAddresses = [rebound]
        try scenario.run()
        let server = try #require(scenario.serverConnection)
        #expect(scenario.client.allCorrect)
        #expect(server.localAddress == Self.preferred && server.remoteAddress == rebound)
        #expect(server.paths.current.isValidated)
        #expect(server.statistics.preferredAddressMigrations == 1 && server.statistics.peerMigrations == 1)
        #expect(scenario.clientConnection.statistics.preferredAddressMigrations == 1)
    }
}
