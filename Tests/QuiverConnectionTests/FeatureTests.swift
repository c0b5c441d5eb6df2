import QuiverCore
import QuiverNetSim
@_spi(Wire) @testable import QuiverQUIC
import QuiverQUICSim
import QuiverTLS
import Testing

@Suite("Connection: features")
struct FeatureTests {
    static func configurations(_ edit: (inout QUICConfiguration) -> Void = { _ in }) -> (client: QUICConfiguration, server: QUICConfiguration) {
        var client = QUICConfiguration(tls: TestIdentity.clientTLS())
        var server = QUICConfiguration(tls: TestIdentity.serverTLS())
        edit(&client)
        edit(&server)
        return (client, server)
    }

    @Test("ChaCha20-Poly1305 only")
    func chacha20() throws {
        let (clientConfig, serverConfig) = Self.configurations { $0.tls.cipherSuites = [.chacha20Poly1305SHA256] }
        let client = TransferClient(mode: .echo, sizes: [100_000])
        let scenario = try Scenario(seed: 11, clientConfiguration: clientConfig, serverConfiguration: serverConfig, app: client)
        try scenario.run()
        #expect(client.allCorrect)
        #expect(scenario.clientConnection.tls.cipherSuite == .chacha20Poly1305SHA256)
    }

    @Test("QUIC v2 from the first packet")
    func version2() throws {
        var (clientConfig, serverConfig) = Self.configurations()
        clientConfig.version = .v2
        clientConfig.supportedVersions = [.v2]
        let client = TransferClient(mode: .echo, sizes: [50_000])
        let scenario = try Scenario(seed: 12, clientConfiguration: clientConfig, serverConfiguration: serverConfig, app: client)
        var longHeaderVersions: Set<UInt32> = []
        scenario.net.observers.append { datagram, event, _ in
            guard event == .sent, datagram.bytes[0] & 0x80 != 0 else { return }
            longHeaderVersions.insert(datagram.bytes[1..<5].reduce(0) { $0 << 8 | UInt32($1) })
        }
        try scenario.run()
        #expect(client.allCorrect)
        #expect(scenario.clientConnection.version == .v2)
        #expect(scenario.serverConnection?.version == .v2)
        #expect(longHeaderVersions == [QUICVersion.v2.rawValue])
    }

    @Test("Compatible version negotiation: a v1 client is switched to v2 (RFC 9368)")
    func compatibleVersionNegotiation() throws {
        var (clientConfig, serverConfig) = Self.configurations()
        clientConfig.version = .v1
        clientConfig.supportedVersions = [.v1, .v2]
        serverConfig.supportedVersions = [.v2, .v1]
        let client = TransferClient(mode: .echo, sizes: [50_000])
        let scenario = try Scenario(seed: 13, clientConfiguration: clientConfig, serverConfiguration: serverConfig, app: client)
        try scenario.run()
        #expect(client.allCorrect)
        #expect(scenario.clientConnection.version == .v2)
        #expect(scenario.serverConnection?.version == .v2)
    }

    /// Seen with an independent client: it acknowledged the server's first v2 Initial but did
    /// not take the ServerHello in it, and sent its ClientHello again. The server must repeat
    /// its Initial CRYPTO data (RFC 9002 §6.2.3) — a PTO never comes for acknowledged data.
    @Test("Compatible version negotiation completes when the client ignores the CRYPTO frames of the first v2 Initial")
    func repeatedClientHelloAfterUpgrade() throws {
        var (clientConfig, serverConfig) = Self.configurations()
        clientConfig.version = .v1
        clientConfig.supportedVersions = [.v1, .v2]
        serverConfig.supportedVersions = [.v2, .v1]
        let client = TransferClient(mode: .echo, sizes: [1000])
        let scenario = try Scenario(seed: 16, clientConfiguration: clientConfig, serverConfiguration: serverConfig, app: client)
        let serverInitialKey = PacketKey.initial(version: .v2, destinationConnectionID: scenario.clientConnection.originalDestinationConnectionID.bytes).server
        var stripped = 0
        scenario.clientNode.rewrite = { datagram in
            guard stripped == 0, let bytes = Self.strippingCrypto(datagram.bytes, key: serverInitialKey) else { return datagram }
            stripped += 1
            var copy = datagram
            copy.bytes = bytes
            return copy
        }
        try scenario.run(timeLimit: .seconds(10))
        #expect(stripped == 1)
        #expect(client.allCorrect)
        #expect(scenario.clientConnection.version == .v2)
        // Repaired within a few round trips, not by a timer.
        #expect(scenario.clientConnection.statistics.datagramsSent < 12)
    }

    /// The datagram with its first v2 Initial packet's CRYPTO frames turned into PADDING (the
    /// packet still decrypts and is acknowledged); `nil` when it has no such packet.
    static func strippingCrypto(_ datagram: [UInt8], key: PacketKey) -> [UInt8]? {
        guard case .long(let header)? = try? PacketHeader.parse(datagram, shortHeaderConnectionIDLength: 8),
              header.version == .v2, header.type == .initial,
              let packet = key.unprotect(Array(datagram[..<header.packetLength]), packetNumberOffset: header.packetNumberOffset, largestReceived: nil)
        else { return nil }
        var payload = packet.payload
        var reader = ByteReader(payload)
        var found = false
        while !reader.isAtEnd {
            let start = reader.offset
            guard let frame = try? Frame.decode(from: &reader) else { return nil }
            if case .crypto = frame {
                for i in start..<reader.offset { payload[i] = 0 }
                found = true
            }
        }
        guard found else { return nil }
        var rebuilt = packet.header + payload
        key.protect(&rebuilt, packetNumberOffset: header.packetNumberOffset, packetNumber: packet.packetNumber)
        return rebuilt + datagram[header.packetLength...]
    }

    @Test("A server without v2 keeps v1")
    func noCommonUpgrade() throws {
        var (clientConfig, serverConfig) = Self.configurations()
        clientConfig.supportedVersions = [.v1, .v2]
        serverConfig.supportedVersions = [.v1]
        let client = TransferClient(mode: .echo, sizes: [1000])
        let scenario = try Scenario(seed: 14, clientConfiguration: clientConfig, serverConfiguration: serverConfig, app: client)
        try scenario.run()
        #expect(client.allCorrect)
        #expect(scenario.clientConnection.version == .v1)
    }

    @Test("Version Negotiation: the client reports the server's versions")
    func versionNegotiation() throws {
        var (clientConfig, serverConfig) = Self.configurations()
        clientConfig.version = .v2
        clientConfig.supportedVersions = [.v2]
        let client = TransferClient(mode: .echo, sizes: [1])
        let scenario = try Scenario(seed: 15, clientConfiguration: clientConfig, serverConfiguration: serverConfig, app: client) { _, node, datagram, _ in
            guard case .long(let header)? = try? PacketHeader.parse(datagram.bytes, shortHeaderConnectionIDLength: 0) else { return nil }
            let vn = VersionNegotiationPacket(destinationConnectionID: header.sourceConnectionID.bytes,
                                              sourceConnectionID: header.destinationConnectionID.bytes, supportedVersions: [.v1])
            node.outbox.append(SimulatedDatagram(bytes: vn.encoded(unusedBits: 0x2a), source: Addresses.server, destination: datagram.source))
            return nil
        }
        try scenario.run(timeLimit: .seconds(5))
        guard case .versionNegotiation(let versions)? = client.closeInfo?.origin else {
            Issue.record("expected a version negotiation close, got \(String(describing: client.closeInfo))")
            return
        }
        #expect(versions == [.v1])
        #expect(scenario.clientConnection.state == .closed)
    }

    @Test("Retry: the client follows it and the server's parameters prove it (RFC 9000 §8.1.2, §7.3)")
    func retry() throws {
        let (clientConfig, serverConfig) = Self.configurations()
        let client = TransferClient(mode: .echo, sizes: [20_000])
        let retrySCID = ConnectionID([9, 9, 9, 9, 9, 9, 9, 9])!
        var retries = 0
        let scenario = try Scenario(seed: 16, clientConfiguration: clientConfig, serverConfiguration: serverConfig, app: client) { config, node, datagram, now in
            guard case .long(let header)? = try? PacketHeader.parse(datagram.bytes, shortHeaderConnectionIDLength: 0),
                  header.type == .initial, datagram.bytes.count >= 1200 else { return nil }
            if header.token.isEmpty {
                retries += 1
                // The token carries the original DCID (a real endpoint seals it).
                let retry = RetryPacket.make(version: header.version, destinationConnectionID: header.sourceConnectionID,
                                             sourceConnectionID: retrySCID, token: [0x01] + header.destinationConnectionID.bytes,
                                             originalDestinationConnectionID: header.destinationConnectionID.bytes)
                node.outbox.append(SimulatedDatagram(bytes: retry, source: Addresses.server, destination: datagram.source))
                return nil
            }
            #expect(header.destinationConnectionID == retrySCID)
            return try? QUICConnection(server: config, datagram: datagram.bytes, remoteAddress: datagram.source,
                                       originalDestinationConnectionID: ConnectionID(Array(header.token.dropFirst())),
                                       retrySourceConnectionID: retrySCID, addressValidated: true, now: now)
        }
        try scenario.run()
        #expect(retries == 1)
        #expect(client.allCorrect)
    }

    @Test("Resumption and 0-RTT accepted, then refused without losing data")
    func zeroRTT() throws {
        var (clientConfig, serverConfig) = Self.configurations()
        serverConfig.tls.sessionTicketKeys = SessionTicketKeys(secret: Array(repeating: 7, count: 32))
        serverConfig.tls.maxEarlyDataSize = 0xffff_ffff
        serverConfig.tls.antiReplay = AntiReplay()
        clientConfig.tls.clock = serverConfig.tls.clock

        // First connection: collect a ticket.
        let first = TransferClient(mode: .echo, sizes: [1000])
        let scenario = try Scenario(seed: 17, clientConfiguration: clientConfig, serverConfiguration: serverConfig, app: first)
        try scenario.run()
        try scenario.net.run(until: { first.events.contains { if case .resumptionTicket = $0 { return true } else { return false } } },
                             timeLimit: .seconds(5))
        let ticket = first.events.compactMap { event -> QUICResumptionTicket? in
            if case .resumptionTicket(let ticket) = event { return ticket } else { return nil }
        }.first
        let resumption = try #require(ticket)

        for accept in [true, false] {
            var server = serverConfig
            if !accept { server.tls.maxEarlyDataSize = 0 }
            let second = TransferClient(mode: .echo, sizes: [3000, 40_000])
            second.openEarly = true
            let resumed = try Scenario(seed: accept ? 18 : 19, clientConfiguration: clientConfig, serverConfiguration: server,
                                       app: second, resumption: resumption, earlyData: true)
            var zeroRTTPackets = 0
            resumed.net.observers.append { datagram, event, _ in
                // 0-RTT long headers: type bits 01 in v1.
                if event == .sent, datagram.source == Addresses.client, datagram.bytes.count > 0,
                   datagram.bytes[0] & 0xf0 == 0xd0 { zeroRTTPackets += 1 }
            }
            try resumed.run()
            #expect(second.allCorrect)
            #expect(resumed.clientConnection.isResumed)
            #expect(resumed.clientConnection.isEarlyDataAccepted == accept)
            #expect(zeroRTTPackets > 0)
        }
    }

    @Test("Key updates, initiated by both sides, under loss")
    func keyUpdate() throws {
        let (clientConfig, serverConfig) = Self.configurations { $0.keyUpdateInterval = 40 }
        let client = TransferClient(mode: .echo, sizes: [1_000_000])
        var link = LinkConfiguration()
        link.lossRate = 0.05
        link.reorderRate = 0.05
        let scenario = try Scenario(seed: 20, link: link, clientConfiguration: clientConfig, serverConfiguration: serverConfig, app: client)
        try scenario.run()
        #expect(client.allCorrect)
        #expect(scenario.clientConnection.keyUpdateCount >= 5)
        #expect(scenario.serverConnection?.keyUpdateCount == scenario.clientConnection.keyUpdateCount)
    }

    @Test("Idle timeout closes both sides silently (RFC 9000 §10.1)")
    func idleTimeout() throws {
        var (clientConfig, serverConfig) = Self.configurations()
        clientConfig.idleTimeout = .seconds(2)
        serverConfig.idleTimeout = .seconds(5)
        let client = TransferClient(mode: .echo, sizes: [100])
        let scenario = try Scenario(seed: 21, clientConfiguration: clientConfig, serverConfiguration: serverConfig, app: client)
        try scenario.run()
        let done = scenario.net.now
        scenario.net.runToIdle(timeLimit: .seconds(60))
        #expect(scenario.clientConnection.state == .closed)
        #expect(scenario.serverConnection?.state == .closed)
        #expect(scenario.clientConnection.closeInfo?.origin == .idleTimeout)
        #expect(scenario.serverConnection?.closeInfo?.origin == .idleTimeout)
        #expect(scenario.net.now - done < .seconds(3))
    }

    /// RFC 9000 §10.1: the idle period is at least three *current* PTOs, not three backed-off
    /// ones. Were the backoff counted, each unanswered probe would push the deadline out
    /// further than it waited, and a vanished peer would hold the connection forever.
    @Test("A peer that vanishes mid-transfer is declared gone at the idle timeout, in both roles",
          arguments: [Addresses.server, Addresses.client])
    func vanishedPeer(silent: SocketAddress) throws {
        let (clientConfig, serverConfig) = Self.configurations { $0.idleTimeout = .seconds(5) }
        let client = TransferClient(mode: .download, sizes: [1 << 30])
        let scenario = try Scenario(seed: 31, clientConfiguration: clientConfig, serverConfiguration: serverConfig,
                                    app: client, server: SourceServer())
        try scenario.net.run(until: { client.transfers.values.contains { $0.received > 1_000_000 } }, timeLimit: .seconds(30))
        // From now on nothing `silent` sends arrives: data is in flight both ways and the
        // other side keeps probing into the void.
        let vanished = scenario.net.now
        var link = LinkConfiguration()
        link.blackholes = [vanished..<(vanished + .seconds(3600))]
        let other = silent == Addresses.server ? Addresses.client : Addresses.server
        scenario.net.setLink(from: silent, to: other, link)
        let survivor = silent == Addresses.server ? scenario.clientConnection : scenario.serverConnection!
        try scenario.net.run(until: { survivor.state == .closed }, timeLimit: .seconds(60))
        #expect(survivor.closeInfo?.origin == .idleTimeout)
        #expect(scenario.net.now - vanished <= .seconds(6))
    }

    @Test("Application close: code and reason reach the peer, both sides end")
    func applicationClose() throws {
        let client = TransferClient(mode: .echo, sizes: [100])
        let server = EchoServer()
        let scenario = try Scenario(seed: 22, app: client, server: server)
        try scenario.run()
        scenario.clientConnection.close(errorCode: 42, reason: "bye")
        scenario.net.runToIdle(timeLimit: .seconds(10))
        let info = server.events.compactMap { event -> ConnectionCloseInfo? in
            if case .closed(let info) = event { return info } else { return nil }
        }.first
        #expect(info?.origin == .peer)
        #expect(info?.frame.errorCode == 42)
        #expect(info?.frame.isApplication == true)
        #expect(info?.reason == "bye")
        #expect(scenario.clientConnection.state == .closed)
        #expect(scenario.serverConnection?.state == .closed)
    }

    @Test("Close during the handshake uses APPLICATION_ERROR in Handshake packets (RFC 9000 §10.2.3)")
    func closeDuringHandshake() throws {
        let client = TransferClient(mode: .echo, sizes: [])
        let server = EchoServer()
        let scenario = try Scenario(seed: 23, app: client, server: server)
        // Let the server's first flight arrive, then close before completing.
        try scenario.net.run(until: { scenario.clientConnection.spaces[1].readKey != nil }, timeLimit: .seconds(5))
        scenario.clientConnection.close(errorCode: 7, reason: "early")
        scenario.net.runToIdle(timeLimit: .seconds(10))
        let info = server.events.compactMap { event -> ConnectionCloseInfo? in
            if case .closed(let info) = event { return info } else { return nil }
        }.first
        #expect(info?.origin == .peer)
        #expect(info?.frame.transportErrorCode == .applicationError || info?.frame.errorCode == 7)
    }

    /// A 3 MB download over a 20 Mbit/s link, run for its first 300 ms.
    static func downloadUnderWay(seed: UInt64) throws -> (scenario: Scenario, app: TransferClient) {
        let app = TransferClient(mode: .download, sizes: [3_000_000])
        var link = LinkConfiguration()
        link.bandwidth = 20_000_000
        let scenario = try Scenario(seed: seed, link: link, app: app, server: SourceServer())
        let start = scenario.net.now
        try scenario.net.run(until: { scenario.net.now > start + .milliseconds(300) }, timeLimit: .seconds(5))
        #expect(!app.isDone)
        return (scenario, app)
    }

    @Test("NAT rebinding in the middle of a transfer")
    func natRebinding() throws {
        let (scenario, client) = try Self.downloadUnderWay(seed: 24)
        let newAddress = SocketAddress("10.0.0.1:6000")!
        scenario.clientNode.rebind(to: newAddress)
        try scenario.run()
        #expect(client.allCorrect)
        #expect(scenario.serverConnection?.remoteAddress == newAddress)
        #expect(scenario.serverConnection?.paths.current.isValidated == true)
    }

    @Test("Client active migration mid-transfer: new connection IDs both ways, the new path validated both ways (RFC 9000 §9.2, §9.5)")
    func activeMigration() throws {
        let (scenario, app) = try Self.downloadUnderWay(seed: 28)
        let client = scenario.clientConnection
        let server = try #require(scenario.serverConnection)
        let (clientUsed, serverUsed) = (client.cids.activePeer, server.cids.activePeer)
        let newAddress = SocketAddress("10.0.0.2:7000")!
        scenario.clientNode.rebind(to: newAddress)
        try client.migrateLocalAddress(newAddress: true)
        #expect(client.cids.activePeer != clientUsed)
        #expect(client.smoothedRTT == QUICConfiguration(tls: TestIdentity.clientTLS()).initialRTT)  // a new network: RTT anew
        try scenario.run()
        #expect(app.allCorrect)
        #expect(server.remoteAddress == newAddress && server.paths.current.isValidated)
        #expect(server.statistics.peerMigrations == 1 && server.statistics.pathsValidated == 1)
        #expect(server.cids.activePeer != serverUsed)  // the server does not use one ID towards two addresses either
        #expect(client.statistics.localMigrations == 1 && client.statistics.pathsValidated == 1)
    }

    @Test("Client migration is refused before the handshake is confirmed, by a server, after disable_active_migration, and without a spare connection ID")
    func migrationRefusals() throws {
        let early = try Scenario(seed: 29, app: TransferClient(mode: .echo, sizes: [10]))
        #expect(throws: MigrationRefusal.handshakeNotConfirmed) { try early.clientConnection.migrateLocalAddress(newAddress: false) }
        try early.run()
        let server = try #require(early.serverConnection)
        #expect(throws: MigrationRefusal.notClient) { try server.migrateLocalAddress(newAddress: false) }
        // The server gave three spare IDs (our active_connection_id_limit is 4): moving at once
        // again and again, the fourth move finds none (the retired ones' successors have not come).
        var moves = 0
        while moves < 10, (try? early.clientConnection.migrateLocalAddress(newAddress: false)) != nil { moves += 1 }
        #expect(moves == 3)
        #expect(throws: MigrationRefusal.noSpareConnectionID) { try early.clientConnection.migrateLocalAddress(newAddress: false) }

        let (clientConfig, serverConfig) = Self.configurations { $0.disableActiveMigration = true }
        let pinned = try Scenario(seed: 30, clientConfiguration: clientConfig, serverConfiguration: serverConfig,
                                  app: TransferClient(mode: .echo, sizes: [10]))
        try pinned.run()
        #expect(throws: MigrationRefusal.disabledByPeer) { try pinned.clientConnection.migrateLocalAddress(newAddress: false) }
    }

    @Test("DATAGRAM frames both ways (RFC 9221)")
    func datagrams() throws {
        let (clientConfig, serverConfig) = Self.configurations { $0.maxDatagramFrameSize = 1200 }
        let client = TransferClient(mode: .echo, sizes: [10])
        let scenario = try Scenario(seed: 25, clientConfiguration: clientConfig, serverConfiguration: serverConfig, app: client)
        try scenario.run()
        let connection = scenario.clientConnection
        #expect(connection.maxDatagramPayloadSize ?? 0 > 1000)
        for i in 0..<5 { try connection.sendDatagram([UInt8](repeating: UInt8(i), count: 100 + i)) }
        scenario.net.runToIdle(timeLimit: .seconds(1))
        let echoed = client.events.compactMap { event -> [UInt8]? in
            if case .datagramReceived(let data) = event { return data } else { return nil }
        }
        #expect(echoed.count == 5)
        #expect(echoed.map(\.count).sorted() == [100, 101, 102, 103, 104])
    }

    @Test("A stateless reset ends the client's connection (RFC 9000 §10.3)")
    func statelessReset() throws {
        let client = TransferClient(mode: .echo, sizes: [10])
        let scenario = try Scenario(seed: 26, app: client)
        try scenario.run()
        let server = try #require(scenario.serverConnection)
        let cid = try #require(server.localConnectionIDs.first)
        let token = StatelessReset.token(key: scenario.serverConfiguration.statelessResetKey, connectionID: cid.bytes)
        let reset = StatelessReset.packet(token: token, length: 60, random: .system)
        scenario.clientConnection.receive(reset, from: Addresses.server, at: scenario.net.now)
        #expect(scenario.clientConnection.closeInfo?.origin == .statelessReset)
        #expect(scenario.clientConnection.state == .closed)
    }

    @Test("Every client datagram with an Initial packet has at least 1200 bytes")
    func initialPadding() throws {
        let client = TransferClient(mode: .echo, sizes: [10])
        var link = LinkConfiguration()
        link.lossRate = 0.2
        let scenario = try Scenario(seed: 27, link: link, app: client)
        var small: [Int] = []
        scenario.net.observers.append { datagram, event, _ in
            guard event == .sent, datagram.source == Addresses.client, datagram.bytes[0] & 0xb0 == 0x80 else { return }
            if datagram.bytes.count < 1200 { small.append(datagram.bytes.count) }
        }
        try scenario.run()
        #expect(client.allCorrect)
        #expect(small.isEmpty)
    }

    /// Sends a NEW_TOKEN once the handshake completes, then echoes.
    final class TokenServer: ConnectionApp {
        let echo = EchoServer()
        func pump(_ connection: QUICConnection) {
            if connection.isHandshakeConfirmed, !sent {
                sent = true
                connection.sendNewToken([0x51, 0x55, 0x49])
            }
            echo.pump(connection)
        }
        private var sent = false
    }

    @Test("NEW_TOKEN: the server issues one, the client's next Initial carries it (RFC 9000 §8.1.3)")
    func newToken() throws {
        let client = TransferClient(mode: .echo, sizes: [100])
        let scenario = try Scenario(seed: 28, app: client, server: TokenServer())
        try scenario.run()
        scenario.net.runToIdle(timeLimit: .milliseconds(200))
        let token = client.events.compactMap { event -> [UInt8]? in
            if case .newToken(let token) = event { return token } else { return nil }
        }.first
        #expect(token == [0x51, 0x55, 0x49])

        let second = TransferClient(mode: .echo, sizes: [100])
        let next = try Scenario(seed: 29, app: second, token: token ?? [])
        var tokens: [[UInt8]] = []
        next.serverNode.onReceive = { datagram in
            if case .long(let header)? = try? PacketHeader.parse(datagram.bytes, shortHeaderConnectionIDLength: 8),
               header.type == .initial { tokens.append(header.token) }
        }
        try next.run()
        #expect(second.allCorrect)
        #expect(!tokens.isEmpty && tokens.allSatisfy { $0 == [0x51, 0x55, 0x49] })
    }

    @Test("A client facing a silent server gives up at its idle timeout, with bounded retransmissions")
    func unreachableServer() throws {
        var (clientConfig, _) = Self.configurations()
        clientConfig.idleTimeout = .seconds(10)
        let client = TransferClient(mode: .echo, sizes: [1])
        var link = LinkConfiguration()
        link.lossRate = 1
        let scenario = try Scenario(seed: 30, link: link, clientConfiguration: clientConfig, app: client)
        let start = scenario.net.now
        try scenario.run(timeLimit: .seconds(60))
        #expect(client.closeInfo?.origin == .idleTimeout)
        #expect(scenario.net.now - start <= .seconds(11))
        #expect(scenario.clientConnection.statistics.datagramsSent < 20)
    }

    @Test("A server connection refuses a datagram without a decryptable Initial")
    func serverRejectsGarbageInitial() throws {
        let config = QUICConfiguration(tls: TestIdentity.serverTLS())
        var datagram = [UInt8](repeating: 0, count: 1200)
        datagram[0] = 0xc0
        datagram[1...4] = [0, 0, 0, 1]
        datagram[5] = 8
        #expect(throws: QUICError.self) {
            _ = try QUICConnection(server: config, datagram: datagram, remoteAddress: Addresses.client, now: Instant(nanoseconds: 1))
        }
    }

    static func ticket(client clientConfig: QUICConfiguration, server serverConfig: QUICConfiguration, seed: UInt64) throws -> QUICResumptionTicket {
        let first = TransferClient(mode: .echo, sizes: [1000])
        let scenario = try Scenario(seed: seed, clientConfiguration: clientConfig, serverConfiguration: serverConfig, app: first)
        try scenario.run()
        try scenario.net.run(until: { first.events.contains { if case .resumptionTicket = $0 { return true } else { return false } } },
                             timeLimit: .seconds(5))
        let ticket = first.events.compactMap { event -> QUICResumptionTicket? in
            if case .resumptionTicket(let ticket) = event { return ticket } else { return nil }
        }.first
        return try #require(ticket)
    }

    static func zeroRTTConfigurations() -> (client: QUICConfiguration, server: QUICConfiguration) {
        var (clientConfig, serverConfig) = configurations()
        serverConfig.tls.sessionTicketKeys = SessionTicketKeys(secret: Array(repeating: 9, count: 32))
        serverConfig.tls.maxEarlyDataSize = 0xffff_ffff
        serverConfig.tls.antiReplay = AntiReplay()
        clientConfig.tls.clock = serverConfig.tls.clock
        return (clientConfig, serverConfig)
    }

    @Test("0-RTT under compatible version negotiation: sent and accepted in the original version (RFC 9369 §4)")
    func zeroRTTWithVersionUpgrade() throws {
        var (clientConfig, serverConfig) = Self.zeroRTTConfigurations()
        clientConfig.supportedVersions = [.v1, .v2]
        serverConfig.supportedVersions = [.v1]
        let ticket = try Self.ticket(client: clientConfig, server: serverConfig, seed: 31)
        #expect(ticket.version == .v1)
        serverConfig.supportedVersions = [.v2, .v1]
        let client = TransferClient(mode: .echo, sizes: [2000])
        client.openEarly = true
        let scenario = try Scenario(seed: 32, clientConfiguration: clientConfig, serverConfiguration: serverConfig, app: client,
                                    resumption: ticket, earlyData: true)
        try scenario.run()
        #expect(client.allCorrect)
        #expect(scenario.clientConnection.version == .v2)
        #expect(scenario.clientConnection.isEarlyDataAccepted == true)
        // Every 0-RTT packet was decrypted: none was lost and repaired.
        #expect(scenario.clientConnection.statistics.packetsLost == 0)
        // Timers keep moving after the 0-RTT key is dropped: the connection idles out.
        try scenario.net.run(until: { scenario.serverConnection?.state == .closed }, timeLimit: .seconds(120), stepLimit: 100_000)
    }

    /// The README's flow against our own server: a v1 client is upgraded to v2, so its ticket is
    /// a v2 ticket; the next connection must start in v2 to resume and send 0-RTT with it.
    @Test("A ticket from an upgraded connection resumes with 0-RTT in its own version (RFC 9369 §5)")
    func zeroRTTAfterVersionUpgrade() throws {
        var (clientConfig, serverConfig) = Self.zeroRTTConfigurations()
        clientConfig.version = .v1
        clientConfig.supportedVersions = [.v1, .v2]
        serverConfig.supportedVersions = [.v2, .v1]
        let ticket = try Self.ticket(client: clientConfig, server: serverConfig, seed: 33)
        #expect(ticket.version == .v2)
        let client = TransferClient(mode: .echo, sizes: [2000])
        client.openEarly = true
        let scenario = try Scenario(seed: 34, clientConfiguration: clientConfig, serverConfiguration: serverConfig, app: client,
                                    resumption: ticket, earlyData: true)
        var firstVersion: UInt32?
        scenario.serverNode.onReceive = { datagram in
            if firstVersion == nil, case .long(let header)? = try? PacketHeader.parse(datagram.bytes, shortHeaderConnectionIDLength: 8) {
                firstVersion = header.version.rawValue
            }
        }
        try scenario.run()
        #expect(client.allCorrect)
        #expect(firstVersion == QUICVersion.v2.rawValue)
        #expect(scenario.clientConnection.isResumed)
        #expect(scenario.clientConnection.isEarlyDataAccepted == true)

        // A client that no longer supports the ticket's version does not use the ticket.
        clientConfig.supportedVersions = [.v1]
        let fresh = TransferClient(mode: .echo, sizes: [100])
        let full = try Scenario(seed: 35, clientConfiguration: clientConfig, serverConfiguration: serverConfig, app: fresh,
                                resumption: ticket, earlyData: true)
        try full.run()
        #expect(fresh.allCorrect)
        #expect(full.clientConnection.version == .v1)
        #expect(!full.clientConnection.isResumed)
    }

    /// RFC 9369 §5: "Servers MUST validate the originating version of any session ticket […]
    /// and not accept one issued from a different version. A rejected ticket results in
    /// falling back to a full TLS handshake, without 0-RTT." A client that (against the RFC)
    /// starts a v2 connection with a v1 ticket gets a full handshake, and 0-RTT is refused.
    @Test("A session ticket from a v1 connection does not resume a connection started in v2 (RFC 9369 §5)")
    func ticketBoundToVersion() throws {
        var (clientConfig, serverConfig) = Self.zeroRTTConfigurations()
        clientConfig.version = .v1
        clientConfig.supportedVersions = [.v1, .v2]
        serverConfig.supportedVersions = [.v1, .v2]  // v1 preferred: no upgrade
        let ticket = try Self.ticket(client: clientConfig, server: serverConfig, seed: 36)
        #expect(ticket.version == .v1)
        // The same ticket, claimed to be a v2 one: a v2-only client starts (and stays) in v2.
        let mislabelled = QUICResumptionTicket(ticket: ticket.ticket, transportParameters: ticket.transportParameters, version: .v2)
        var v2Client = clientConfig
        v2Client.version = .v2
        v2Client.supportedVersions = [.v2]
        let client = TransferClient(mode: .echo, sizes: [2000])
        client.openEarly = true
        let scenario = try Scenario(seed: 37, clientConfiguration: v2Client, serverConfiguration: serverConfig, app: client,
                                    resumption: mislabelled, earlyData: true)
        try scenario.run()
        #expect(client.allCorrect, "the early data is sent again after the full handshake")
        #expect(scenario.clientConnection.version == .v2)
        #expect(!scenario.clientConnection.isResumed)
        #expect(scenario.clientConnection.isEarlyDataAccepted == false)

        // Labelled truly, it resumes in v1.
        let honest = TransferClient(mode: .echo, sizes: [100])
        let resumed = try Scenario(seed: 38, clientConfiguration: clientConfig, serverConfiguration: serverConfig, app: honest,
                                   resumption: ticket)
        try resumed.run()
        #expect(honest.allCorrect)
        #expect(resumed.clientConnection.isResumed)
    }

    @Test("A key update on an idle connection keeps later packets decryptable (RFC 9001 §6.5)")
    func idleKeyUpdate() throws {
        let client = TransferClient(mode: .echo, sizes: [100])
        let server = EchoServer()
        let scenario = try Scenario(seed: 33, app: client, server: server)
        try scenario.run()
        scenario.net.runToIdle(timeLimit: .milliseconds(500))
        #expect(scenario.serverConnection?.updateKeys() == true)
        // Nothing is sent for a while: the old keys must outlive this silence.
        scenario.net.advance(to: scenario.net.now + .seconds(10))
        let connection = scenario.clientConnection
        let id = try #require(connection.openStream())
        try connection.write([1, 2, 3], to: id)
        try connection.finish(id)
        try scenario.net.run(until: { server.events.contains { if case .streamOpened(let s) = $0 { return s == id } else { return false } } },
                             timeLimit: .seconds(5))
        #expect(connection.state == .established)
    }

    @Test("Keep-alive PINGs hold an idle connection open past its idle timeout")
    func keepAlive() throws {
        var (clientConfig, serverConfig) = Self.configurations { $0.idleTimeout = .seconds(2) }
        clientConfig.keepAliveInterval = .milliseconds(700)
        let client = TransferClient(mode: .echo, sizes: [10])
        let scenario = try Scenario(seed: 34, clientConfiguration: clientConfig, serverConfiguration: serverConfig, app: client)
        try scenario.run()
        scenario.net.advance(to: scenario.net.now + .seconds(20))
        #expect(scenario.clientConnection.state == .established)
        #expect(scenario.serverConnection?.state == .established)
    }
}

@Suite("Connection: one fault kind at a time")
struct FaultKindTests {
    static let kinds: [(String, @Sendable (inout LinkConfiguration, Instant) -> Void)] = [
        ("20 % loss", { link, _ in link.lossRate = 0.2 }),
        ("burst loss", { link, _ in link.burstLoss = (0.05, 0.3) }),
        ("reordering", { link, _ in link.reorderRate = 0.3; link.reorderDelay = .milliseconds(15) }),
        ("duplication", { link, _ in link.duplicateRate = 0.3 }),
        ("corruption", { link, _ in link.corruptRate = 0.1 }),
        ("2 s blackhole mid-transfer", { link, start in link.blackholes = [(start + .milliseconds(150))..<(start + .milliseconds(2150))] }),
        ("5 Mbit/s bottleneck, 30 kB queue", { link, _ in link.bandwidth = 5_000_000; link.queueLimit = 30_000 }),
        ("200 ms one-way latency", { link, _ in link.latency = .milliseconds(200) }),
    ]

    @Test("Exact data under each fault", arguments: 0..<8)
    func fault(index: Int) throws {
        let (name, apply) = Self.kinds[index]
        var link = LinkConfiguration()
        apply(&link, Instant(nanoseconds: 1_000_000_000))
        let client = TransferClient(mode: .echo, sizes: [300_000, 1000, 0])
        let scenario = try Scenario(seed: UInt64(100 + index), link: link, app: client)
        try scenario.run(timeLimit: .seconds(120))
        #expect(client.allCorrect, "\(name)")
        #expect(client.errors.isEmpty, "\(name)")
    }
}
