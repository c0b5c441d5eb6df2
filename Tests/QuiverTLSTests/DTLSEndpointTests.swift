import QuiverCore
import Testing

@testable import QuiverTLS

/// Clients talking to one ``DTLSEndpoint`` in memory, on a virtual clock.
final class DTLSEndpointHarness {
    let endpoint: DTLSEndpoint
    var clients: [SocketAddress: DTLSConnection] = [:]
    var now = Instant(nanoseconds: 1_000_000_000)
    /// Clients whose datagrams are lost from now on.
    var silenced: Set<SocketAddress> = []
    /// Every datagram each client sent, in order.
    var sent: [SocketAddress: [[UInt8]]] = [:]

    init(_ configuration: DTLSEndpoint.Configuration) {
        endpoint = DTLSEndpoint(configuration: configuration)
    }

    static func address(_ port: UInt16) -> SocketAddress { SocketAddress(host: "192.0.2.7", port: port)! }

    @discardableResult
    /// A client at `port`; DTLS 1.2 unless `version` is `.tls13`.
    func addClient(port: UInt16, _ configuration: TLSConfiguration = Configs.client(), version: TLSVersion = .tls12, mtu: Int = 1200) throws -> DTLSConnection {
        var configuration = configuration
        configuration.maximumVersion = version
        let client = DTLSConnection(client: configuration, serverName: "localhost")
        client.mtu = mtu
        try client.start(now: now)
        clients[Self.address(port)] = client
        return client
    }

    /// Moves datagrams until quiet, firing timers when nothing moves (at most `rounds`).
    func run(rounds: Int = 200) {
        for _ in 0..<rounds {
            var moved = false
            for (address, client) in clients {
                for datagram in client.takeDatagrams() where !silenced.contains(address) {
                    moved = true
                    sent[address, default: []].append(datagram)
                    endpoint.receive(datagram, from: address, at: now)
                }
            }
            for (address, datagram) in endpoint.takeDatagrams() {
                guard let client = clients[address], !silenced.contains(address) else { continue }
                moved = true
                try? client.receive(datagram, now: now)
            }
            if moved { continue }
            let deadlines = clients.values.compactMap(\.nextTimeout) + [endpoint.nextDeadline].compactMap { $0 }
            guard let next = deadlines.min() else { return }
            now = next
            for client in clients.values { try? client.handleTimeout(now: now) }
            endpoint.handleTimeout(at: now)
        }
    }
}

@Suite("DTLS endpoint: many peers on one socket")
struct DTLSEndpointTests {
    @Test("three clients at once: each gets a cookie, completes, is accepted, and talks to its own connection")
    func manyClients() throws {
        let harness = DTLSEndpointHarness(DTLSEndpoint.Configuration(tls: Configs.server()))
        for port: UInt16 in 5000..<5003 { try harness.addClient(port: port) }
        harness.run()
        var accepted: [SocketAddress: DTLSConnection] = [:]
        while let (peer, connection) = harness.endpoint.accept() { accepted[peer] = connection }
        #expect(accepted.count == 3)
        #expect(harness.endpoint.statistics.helloVerifyRequestsSent == 3 && harness.endpoint.statistics.connectionsCreated == 3)
        for (address, client) in harness.clients {
            #expect(client.isHandshakeComplete)
            try client.write(Array("from \(address)".utf8))
        }
        harness.run()
        for (peer, connection) in accepted {
            #expect(connection.read() == Array("from \(peer)".utf8))
        }
    }

    @Test("a flood of ClientHellos without cookies: HelloVerifyRequests only, no connection, no state")
    func flood() throws {
        let harness = DTLSEndpointHarness(DTLSEndpoint.Configuration(tls: Configs.server()))
        let client = DTLSConnection(client: Configs.client(), serverName: "localhost")
        try client.start(now: harness.now)
        let hello = try #require(client.takeDatagrams().first)
        for port in 0..<2_000 {
            harness.endpoint.receive(hello, from: DTLSEndpointHarness.address(UInt16(10_000 + port)), at: harness.now)
        }
        #expect(harness.endpoint.connectionCount == 0)
        #expect(harness.endpoint.takeDatagrams().count == 2_000)
        #expect(harness.endpoint.nextDeadline == nil)
    }

    @Test("handshakes in progress are bounded; the one beyond is refused")
    func pendingBound() throws {
        var configuration = DTLSEndpoint.Configuration(tls: Configs.server())
        configuration.maxPendingConnections = 2
        let harness = DTLSEndpointHarness(configuration)
        for port: UInt16 in 6000..<6003 { try harness.addClient(port: port) }
        // Stop each client after its cookie round: the server holds handshakes in progress.
        for _ in 0..<2 {
            for (address, client) in harness.clients { for datagram in client.takeDatagrams() { harness.endpoint.receive(datagram, from: address, at: harness.now) } }
            for (address, datagram) in harness.endpoint.takeDatagrams() where datagram[13] == HandshakeType.helloVerifyRequest.rawValue {
                try harness.clients[address]?.receive(datagram, now: harness.now)
            }
        }
        #expect(harness.endpoint.connectionCount == 2)
        #expect(harness.endpoint.statistics.connectionsRefused == 1)
    }

    @Test("a client that goes silent mid-handshake is abandoned at the handshake timeout, and logged")
    func handshakeTimeout() throws {
        var configuration = DTLSEndpoint.Configuration(tls: Configs.server())
        configuration.handshakeTimeout = .seconds(3)
        let harness = DTLSEndpointHarness(configuration)
        try harness.addClient(port: 7000)
        // The cookie round and the ClientHello with the cookie, then silence.
        for _ in 0..<2 {
            for (address, client) in harness.clients { for datagram in client.takeDatagrams() { harness.endpoint.receive(datagram, from: address, at: harness.now) } }
            for (address, datagram) in harness.endpoint.takeDatagrams() where datagram[13] == HandshakeType.helloVerifyRequest.rawValue {
                try harness.clients[address]?.receive(datagram, now: harness.now)
            }
        }
        #expect(harness.endpoint.connectionCount == 1)
        harness.silenced = [DTLSEndpointHarness.address(7000)]
        harness.run()
        #expect(harness.endpoint.connectionCount == 0)
        let failure = try #require(harness.endpoint.nextFailedHandshake())
        #expect(failure.peer == DTLSEndpointHarness.address(7000) && failure.error.origin == .transport)
        #expect(harness.endpoint.nextDeadline == nil)
    }

    @Test("a connection budget shared by two endpoints bounds them together (the client beyond is refused with an alert), and a released connection gives its place back")
    func sharedBudget() throws {
        let budget = ConnectionBudget(limit: 1)
        var configuration = DTLSEndpoint.Configuration(tls: Configs.server())
        configuration.connectionBudget = budget
        let first = DTLSEndpointHarness(configuration)
        let second = DTLSEndpointHarness(configuration)
        try first.addClient(port: 9000)
        try second.addClient(port: 9001)
        first.run()
        second.run()
        #expect(first.endpoint.connectionCount == 1 && second.endpoint.connectionCount == 0)
        #expect(second.endpoint.statistics.connectionsRefused >= 1)
        // Refused with a fatal alert, so the client fails at once instead of at its timeout.
        let refused = second.clients[DTLSEndpointHarness.address(9001)]?.error
        #expect(refused?.origin == .peer && refused?.alert == .internalError, "\(String(describing: refused))")
        first.endpoint.release(DTLSEndpointHarness.address(9000))
        try second.addClient(port: 9002)
        second.run()
        #expect(second.endpoint.accept() != nil)
    }

    @Test("pendingConnectionCount counts handshakes in progress only")
    func pendingCount() throws {
        let harness = DTLSEndpointHarness(DTLSEndpoint.Configuration(tls: Configs.server()))
        try harness.addClient(port: 9100)
        harness.run()
        #expect(harness.endpoint.pendingConnectionCount == 0 && harness.endpoint.connectionCount == 1)
        #expect(harness.endpoint.nextDeadline == nil)
    }

    @Test("a client restarting on the same address replaces its connection after proving the address")
    func restart() throws {
        let harness = DTLSEndpointHarness(DTLSEndpoint.Configuration(tls: Configs.server()))
        try harness.addClient(port: 8000)
        harness.run()
        let first = try #require(harness.endpoint.accept()?.connection)
        try harness.addClient(port: 8000)  // a new client process, same port
        harness.run()
        let second = try #require(harness.endpoint.accept()?.connection)
        #expect(first !== second && second.isHandshakeComplete)
        #expect(harness.endpoint.connectionCount == 1 && harness.endpoint.statistics.connectionsReplaced == 1)
        #expect(harness.endpoint.connection(for: DTLSEndpointHarness.address(8000)) === second)
    }
}
