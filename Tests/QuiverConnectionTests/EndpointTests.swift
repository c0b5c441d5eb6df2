import QuiverCore
import QuiverNetSim
@_spi(Wire) @testable import QuiverQUIC
import QuiverQUICSim
import QuiverTLS
import Testing

extension TransferClient {
    /// The first NEW_TOKEN token the connection received.
    var newToken: [UInt8]? {
        events.lazy.compactMap { event -> [UInt8]? in
            if case .newToken(let token) = event { return token } else { return nil }
        }.first
    }
}

/// Many clients against one ``QUICEndpoint`` on the simulated network.
final class EndpointScenario {
    let net: NetworkSimulator
    let server: SimulatedEndpointNode
    var clients: [(node: SimulatedQUICNode, app: TransferClient)] = []
    let clientConfiguration: QUICConfiguration

    init(seed: UInt64, link: LinkConfiguration = LinkConfiguration(), edit: (inout QUICEndpoint.Configuration) -> Void = { _ in }) {
        net = NetworkSimulator(seed: seed)
        net.defaultLink = link
        var configuration = QUICEndpoint.Configuration(connection: QUICConfiguration(tls: TestIdentity.serverTLS()))
        edit(&configuration)
        server = SimulatedEndpointNode(endpoint: QUICEndpoint(configuration: configuration), address: Addresses.server) { EchoServer() }
        net.attach(server)
        clientConfiguration = QUICConfiguration(tls: TestIdentity.clientTLS())
    }

    @discardableResult
    func addClient(sizes: [UInt64], port: UInt16, token: [UInt8] = [], configuration: QUICConfiguration? = nil) throws -> TransferClient {
        let app = TransferClient(mode: .echo, sizes: sizes)
        let connection = try QUICConnection(client: configuration ?? clientConfiguration, serverName: "localhost",
                                            remoteAddress: Addresses.server, token: token, now: net.now)
        let node = SimulatedQUICNode(client: connection, address: SocketAddress(host: "10.0.1.\(port % 250 + 1)", port: port)!, app: app)
        net.attach(node)
        app.pump(connection)
        clients.append((node, app))
        return app
    }

    /// Real client first flights from `count` distinct addresses in `subnet`, never followed up.
    func flood(_ count: Int, subnet: Int) throws {
        for i in 0..<count {
            let client = try QUICConnection(client: clientConfiguration, serverName: "localhost",
                                            remoteAddress: Addresses.server, now: net.now)
            let first = try #require(client.transmit(at: net.now))
            server.endpoint.receive(first.bytes, from: SocketAddress(host: "10.\(subnet).\(i / 250).\(i % 250 + 1)", port: 9000)!,
                                    at: net.now)
        }
    }

    /// Runs the endpoint's timers alone (no network) until none is left: pending handshakes
    /// time out.
    func runEndpointTimersOut() {
        while let _ = server.endpoint.transmit(at: net.now) {}
        var now = net.now
        for _ in 0..<1000 {
            guard let deadline = server.endpoint.nextDeadline else { break }
            now = max(now, deadline)
            server.endpoint.handleTimeout(at: now)
            while let _ = server.endpoint.transmit(at: now) {}
        }
    }

    func run(timeLimit: Duration = .seconds(60)) throws {
        try net.run(until: { [clients] in clients.allSatisfy { $0.app.isDone || $0.app.closeInfo != nil } }, timeLimit: timeLimit)
    }
}

@Suite("Endpoint: demultiplexing, Retry, Version Negotiation, stateless reset, limits")
struct EndpointTests {
    @Test("50 clients echo through one endpoint")
    func manyClients() throws {
        let scenario = EndpointScenario(seed: 50)
        for i in 0..<50 { try scenario.addClient(sizes: [UInt64(i * 1000), 5000], port: UInt16(5000 + i)) }
        try scenario.run()
        #expect(scenario.clients.allSatisfy { $0.app.allCorrect })
        #expect(scenario.server.endpoint.statistics.connectionsCreated == 50)
        #expect(scenario.server.accepted.count == 50)
        #expect(scenario.server.endpoint.pendingConnectionCount == 0)
    }

    /// The datagram-pair stall of issue 15: compacting the timer heap inside a
    /// connection's bookkeeping compared against its deadline as stored *before* the update,
    /// so the entry just pushed for its new deadline was dropped as stale. That connection was
    /// never timed out again: no pacing, ACK, PTO or idle timer — under load, one connection of
    /// a hundred stalled for good. The invariant is checked after every simulator step.
    @Test("Every connection's deadline stays in the timer heap through compactions")
    func timerHeapKeepsEveryDeadline() throws {
        let scenario = EndpointScenario(seed: 58)
        for i in 0..<2 { try scenario.addClient(sizes: [2_000_000], port: UInt16(7000 + i)) }
        var steps = 0
        var violation: Int?
        while scenario.net.step() {
            steps += 1
            if violation == nil, !scenario.server.endpoint.isEveryDeadlineScheduled { violation = steps }
            if scenario.clients.allSatisfy({ $0.app.isDone || $0.app.closeInfo != nil }) || steps > 2_000_000 { break }
        }
        #expect(violation == nil, "a connection's deadline left the timer heap at step \(violation ?? 0)")
        #expect(scenario.clients.allSatisfy { $0.app.allCorrect })
    }

    @Test("Retry always: every client proves its address first, then completes")
    func retryAlways() throws {
        let scenario = EndpointScenario(seed: 51) { $0.retryPolicy = .always }
        for i in 0..<5 { try scenario.addClient(sizes: [2000], port: UInt16(6000 + i)) }
        try scenario.run()
        #expect(scenario.clients.allSatisfy { $0.app.allCorrect })
        #expect(scenario.server.endpoint.statistics.retriesSent == 5)
        #expect(scenario.server.accepted.allSatisfy { $0.paths.current.isValidated })
    }

    @Test("A NEW_TOKEN token skips the Retry of the next connection")
    func newTokenSkipsRetry() throws {
        let scenario = EndpointScenario(seed: 52) { $0.retryPolicy = .always }
        let first = try scenario.addClient(sizes: [100], port: 6100)
        try scenario.run()
        scenario.net.runToIdle(timeLimit: .milliseconds(300))
        let token = try #require(first.newToken)
        let retries = scenario.server.endpoint.statistics.retriesSent
        // Same host, another port: NEW_TOKEN tokens are bound to the IP address only.
        try scenario.addClient(sizes: [100], port: 6350, token: token)
        try scenario.run()
        #expect(scenario.clients.allSatisfy { $0.app.allCorrect })
        #expect(scenario.server.endpoint.statistics.retriesSent == retries)
    }

    /// RFC 9369 §5: a token belongs to the version of the connection that got it, and the
    /// server validates that. The first client speaks v1, so its NEW_TOKEN is a v1 token; the
    /// same token in a v2 Initial proves nothing and gets a Retry, in a v1 Initial it skips it.
    @Test("A NEW_TOKEN token is good only for Initials in the version of the connection that got it (RFC 9369 §5)")
    func newTokenBoundToVersion() throws {
        let scenario = EndpointScenario(seed: 55) { $0.retryPolicy = .always }
        var v1 = scenario.clientConfiguration
        v1.version = .v1
        v1.supportedVersions = [.v1]
        let first = try scenario.addClient(sizes: [100], port: 6400, configuration: v1)
        try scenario.run()
        scenario.net.runToIdle(timeLimit: .milliseconds(300))
        let token = try #require(first.newToken)
        let retries = scenario.server.endpoint.statistics.retriesSent
        var v2 = scenario.clientConfiguration
        v2.version = .v2
        v2.supportedVersions = [.v2]
        // Other ports, the same host (10.0.1.151): NEW_TOKEN tokens are bound to the IP address.
        try scenario.addClient(sizes: [100], port: 6650, token: token, configuration: v2)
        try scenario.run()
        #expect(scenario.server.endpoint.statistics.retriesSent == retries + 1, "the v1 token did not validate a v2 Initial")
        try scenario.addClient(sizes: [100], port: 6900, token: token, configuration: v1)
        try scenario.run()
        #expect(scenario.server.endpoint.statistics.retriesSent == retries + 1, "in a v1 Initial it did")
        #expect(scenario.clients.allSatisfy { $0.app.allCorrect })
    }

    @Test("A forged or foreign token is ignored (and leads to a Retry under that policy)")
    func forgedToken() throws {
        let scenario = EndpointScenario(seed: 53) { $0.retryPolicy = .always }
        try scenario.addClient(sizes: [100], port: 6200, token: [UInt8](repeating: 0xAB, count: 60))
        try scenario.run()
        #expect(scenario.clients[0].app.allCorrect)
        #expect(scenario.server.endpoint.statistics.retriesSent == 1)
    }

    @Test("Version Negotiation for an unknown version, only for 1200-byte datagrams")
    func versionNegotiation() throws {
        let scenario = EndpointScenario(seed: 54)
        var datagram = [UInt8](repeating: 0, count: 1200)
        datagram[0] = 0xc0
        datagram[1...4] = [0x1a, 0x2a, 0x3a, 0x4a]
        datagram[5] = 8
        datagram[6..<14] = [1, 2, 3, 4, 5, 6, 7, 8]
        datagram[14] = 4
        datagram[15..<19] = [9, 9, 9, 9]
        let client = SocketAddress("10.0.9.9:7000")!
        scenario.server.endpoint.receive(datagram, from: client, at: scenario.net.now)
        scenario.server.endpoint.receive(Array(datagram.prefix(600)), from: client, at: scenario.net.now)
        let answer = try #require(scenario.server.endpoint.transmit(at: scenario.net.now))
        #expect(scenario.server.endpoint.transmit(at: scenario.net.now) == nil)
        guard case .versionNegotiation(let vn)? = try? PacketHeader.parse(answer.bytes, shortHeaderConnectionIDLength: 0) else {
            Issue.record("not a Version Negotiation packet")
            return
        }
        #expect(vn.destinationConnectionID == [9, 9, 9, 9])
        #expect(vn.sourceConnectionID == [1, 2, 3, 4, 5, 6, 7, 8])
        #expect(vn.supportedVersions.contains(.v1))
        #expect(answer.destination == client)
    }

    @Test("After a server restart, a stateless reset ends the old connection (RFC 9000 §10.3)")
    func statelessResetAfterRestart() throws {
        let scenario = EndpointScenario(seed: 55)
        let app = try scenario.addClient(sizes: [1000], port: 6300)
        try scenario.run()
        // Restart: a fresh endpoint with the same configuration (same reset key), no connections.
        scenario.server.endpoint = QUICEndpoint(configuration: scenario.server.endpoint.configuration)
        let connection = try #require(scenario.clients[0].node.connection)
        let id = try #require(connection.openStream())
        try connection.write([1, 2, 3], to: id)
        try scenario.net.run(until: { app.closeInfo != nil }, timeLimit: .seconds(10))
        #expect(app.closeInfo?.origin == .statelessReset)
        #expect(scenario.server.endpoint.statistics.statelessResetsSent >= 1)
    }

    @Test("A released (handed-off) connection's datagrams are dropped silently, not answered with a stateless reset")
    func releasedConnection() throws {
        let scenario = EndpointScenario(seed: 57)
        let app = try scenario.addClient(sizes: [1000], port: 6400)
        try scenario.run()
        let served = try #require(scenario.server.accepted.first)
        #expect(scenario.server.endpoint.release(served, at: scenario.net.now))
        #expect(!scenario.server.endpoint.release(served, at: scenario.net.now), "released once")
        #expect(scenario.server.endpoint.connectionCount == 0)
        let dropped = scenario.server.endpoint.statistics.datagramsDropped
        let connection = try #require(scenario.clients[0].node.connection)
        let id = try #require(connection.openStream())
        try connection.write([1, 2, 3], to: id)
        scenario.net.runToIdle(timeLimit: .seconds(2))
        #expect(app.closeInfo == nil, "the client was not reset: \(String(describing: app.closeInfo))")
        #expect(scenario.server.endpoint.statistics.statelessResetsSent == 0)
        #expect(scenario.server.endpoint.statistics.datagramsDropped > dropped)
    }

    @Test("An Initial flood stays within the pending-connection cap")
    func initialFlood() throws {
        let scenario = EndpointScenario(seed: 56) {
            $0.maxPendingConnections = 20
            $0.retryPolicy = .never
        }
        // 300 real client first flights from distinct addresses, never followed up.
        try scenario.flood(300, subnet: 1)
        #expect(scenario.server.endpoint.pendingConnectionCount == 20)
        #expect(scenario.server.endpoint.connectionCount == 20)
        #expect(scenario.server.endpoint.statistics.initialsDropped == 280)
        // The pending handshakes time out and free their slots.
        scenario.runEndpointTimersOut()
        #expect(scenario.server.endpoint.connectionCount == 0)
        #expect(scenario.server.endpoint.pendingConnectionCount == 0)
    }

    @Test("Beyond maxConnections a client is refused at once with CONNECTION_REFUSED, and the server keeps no state for it")
    func connectionLimit() throws {
        let scenario = EndpointScenario(seed: 58) {
            $0.maxConnections = 3
            $0.retryPolicy = .never
        }
        // Three clients fill the server; they stay connected (long idle timeout).
        let admitted = try (0..<3).map { try scenario.addClient(sizes: [1000], port: UInt16(6500 + $0)) }
        try scenario.run()
        #expect(admitted.allSatisfy { $0.allCorrect })
        #expect(scenario.server.endpoint.connectionCount == 3)
        // The fourth gets an Initial CONNECTION_CLOSE (transport error 0x02) from the server
        // in its first round trip — not silence until its handshake times out.
        let refused = try scenario.addClient(sizes: [1000], port: 6600)
        let started = scenario.net.now
        try scenario.net.run(until: { refused.closeInfo != nil }, timeLimit: .seconds(5))
        let close = try #require(refused.closeInfo)
        #expect(close.origin == .peer)
        #expect(!close.frame.isApplication)
        #expect(close.frame.errorCode == TransportErrorCode.connectionRefused.rawValue)
        #expect(scenario.net.now - started < .seconds(1))
        #expect(scenario.server.endpoint.connectionCount == 3)
        #expect(scenario.server.endpoint.statistics.connectionsRefused == 1)
        #expect(scenario.server.endpoint.statistics.connectionsCreated == 3)
    }

    @Test("The refusal is an Initial the client's keys open: CONNECTION_CLOSE (CONNECTION_REFUSED), far smaller than the Initial")
    func refusalPacket() throws {
        for version in [QUICVersion.v1, .v2] {
            var configuration = QUICConfiguration(tls: TestIdentity.clientTLS())
            configuration.version = version
            let start = Instant(nanoseconds: 0)
            let client = try QUICConnection(client: configuration, serverName: "localhost", remoteAddress: Addresses.server, now: start)
            let first = try #require(client.transmit(at: start)).bytes
            guard case .long(let header) = try PacketHeader.parse(first, shortHeaderConnectionIDLength: 8) else {
                Issue.record("a client's first packet has a long header")
                return
            }
            let refusal = QUICEndpoint.refusal(answering: header, sourceConnectionID: try #require(ConnectionID([9, 9, 9, 9, 9, 9, 9, 9])))
            #expect(refusal.count < first.count / 10)
            client.receive(refusal, from: Addresses.server, at: start + .milliseconds(1))
            let close = try #require(client.closeInfo)
            #expect(close.origin == .peer)
            #expect(close.frame.errorCode == TransportErrorCode.connectionRefused.rawValue)
        }
    }

    @Test("After a flood has timed out, the connection and routing tables give their room back")
    func tablesShrinkAfterFlood() throws {
        let scenario = EndpointScenario(seed: 59) {
            $0.maxPendingConnections = 2000
            $0.retryPolicy = .never
        }
        try scenario.flood(600, subnet: 2)
        #expect(scenario.server.endpoint.connectionCount == 600)
        let flooded = scenario.server.endpoint.tableCapacities
        #expect(flooded.entries >= 600)
        scenario.runEndpointTimersOut()
        #expect(scenario.server.endpoint.connectionCount == 0)
        let after = scenario.server.endpoint.tableCapacities
        #expect(after.entries < flooded.entries / 4)
        #expect(after.routes < flooded.routes / 4)
    }

    @Test("The endpoint reports the connections it worked on as values, each once per take, closed ones included")
    func activity() throws {
        let scenario = EndpointScenario(seed: 61) {
            $0.retryPolicy = .never
            $0.connection.idleTimeout = .seconds(3)
        }
        try scenario.flood(3, subnet: 3)
        var touched: [QUICConnection] = []
        scenario.server.endpoint.takeActivity(into: &touched)
        #expect(touched.count == 3)  // one per client Initial, each listed once
        #expect(Set(touched.map(ObjectIdentifier.init)).count == 3)
        let first = touched[0]
        touched.removeAll()
        scenario.server.endpoint.takeActivity(into: &touched)
        #expect(touched.isEmpty)  // taken: nothing new happened
        // Sending the handshake touches each connection again, however many datagrams it takes.
        while let _ = scenario.server.endpoint.transmit(at: scenario.net.now) {}
        scenario.server.endpoint.takeActivity(into: &touched)
        #expect(touched.count == 3)
        touched.removeAll()
        // A connection handed over elsewhere is no longer reported.
        scenario.server.endpoint.connectionDidChange(first, at: scenario.net.now)
        #expect(scenario.server.endpoint.release(first, at: scenario.net.now))
        scenario.server.endpoint.takeActivity(into: &touched)
        #expect(touched.isEmpty)
        // The others time out: they are reported once more, closed, after the endpoint forgot them.
        scenario.runEndpointTimersOut()
        scenario.server.endpoint.takeActivity(into: &touched)
        #expect(touched.count == 2)
        #expect(touched.allSatisfy { $0.state == .closed })
        #expect(scenario.server.endpoint.connectionCount == 0)
    }

    @Test("Idle connections are forgotten; close codes reach the client")
    func idleAndClose() throws {
        let scenario = EndpointScenario(seed: 57) { $0.connection.idleTimeout = .seconds(3) }
        let app = try scenario.addClient(sizes: [10], port: 6400)
        try scenario.run()
        let serverConnection = try #require(scenario.server.accepted.first)
        serverConnection.close(errorCode: 77, reason: "maintenance")
        scenario.server.endpoint.connectionDidChange(serverConnection, at: scenario.net.now)
        scenario.net.runToIdle(timeLimit: .seconds(30))
        #expect(app.closeInfo?.origin == .peer)
        #expect(app.closeInfo?.frame.errorCode == 77)
        #expect(app.closeInfo?.reason == "maintenance")
        #expect(scenario.server.endpoint.connectionCount == 0)
    }
}

@Suite("Worker connection IDs")
struct WorkerConnectionIDTests {
    @Test("Every connection ID a server issues carries its worker id, as a plaintext QUIC-LB server ID")
    func workerIDs() throws {
        let scenario = EndpointScenario(seed: 58) {
            $0.connection.connectionIDGenerator = WorkerConnectionIDs(workerID: 0x0102).generator()
        }
        try scenario.addClient(sizes: [1000], port: 6500)
        try scenario.run()
        let server = try #require(scenario.server.accepted.first)
        #expect(server.localConnectionIDs.count > 1)
        #expect(server.localConnectionIDs.allSatisfy { WorkerConnectionIDs.workerID(in: $0.bytes) == 0x0102 && $0.count == 8 })
        // The same IDs are QUIC-LB's (config 0, plaintext): a QUIC-LB balancer reads the worker id.
        let quicLB = QUICLBConnectionIDs(WorkerConnectionIDs(workerID: 0x0102).quicLB)
        #expect(server.localConnectionIDs.allSatisfy { quicLB.serverID(in: $0.bytes) == [0x01, 0x02] })
    }
}

@Suite("Endpoint: 0-RTT before its Initial")
struct EarlyDatagramTests {
    @Test("0-RTT datagrams that overtake the Initial are kept and used")
    func reorderedZeroRTT() throws {
        let scenario = EndpointScenario(seed: 59) {
            $0.connection.tls.sessionTicketKeys = SessionTicketKeys(secret: Array(repeating: 3, count: 32))
            $0.connection.tls.maxEarlyDataSize = 0xffff_ffff
            $0.connection.tls.antiReplay = AntiReplay()
        }
        var clientConfig = scenario.clientConfiguration
        clientConfig.tls.clock = scenario.server.endpoint.configuration.connection.tls.clock
        let first = try scenario.addClient(sizes: [100], port: 6600, configuration: clientConfig)
        try scenario.run()
        try scenario.net.run(until: { first.events.contains { if case .resumptionTicket = $0 { return true } else { return false } } },
                             timeLimit: .seconds(5))
        let ticket = try #require(first.events.compactMap { event -> QUICResumptionTicket? in
            if case .resumptionTicket(let ticket) = event { return ticket } else { return nil }
        }.first)

        let app = TransferClient(mode: .echo, sizes: [6000])
        app.openEarly = true
        let connection = try QUICConnection(client: clientConfig, serverName: "localhost", remoteAddress: Addresses.server,
                                            resumption: ticket, attemptEarlyData: true, now: scenario.net.now)
        app.pump(connection)
        var flight: [OutgoingDatagram] = []
        while let datagram = connection.transmit(at: scenario.net.now) { flight.append(datagram) }
        #expect(flight.count >= 3)
        let address = SocketAddress("10.0.1.200:6601")!
        for datagram in flight.reversed() {  // the 0-RTT datagrams arrive before the Initial
            scenario.server.endpoint.receive(datagram.bytes, from: address, at: scenario.net.now)
        }
        let node = SimulatedQUICNode(client: connection, address: address, app: app)
        scenario.net.attach(node)
        try scenario.net.run(until: { app.isDone }, timeLimit: .seconds(10))
        #expect(app.allCorrect)
        #expect(connection.isEarlyDataAccepted == true)
        #expect(connection.statistics.packetsLost == 0)
    }
}
