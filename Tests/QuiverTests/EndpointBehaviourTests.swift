import Foundation
@_spi(QUICEngine) import Quiver
import QuiverCore
@_spi(Wire) import QuiverQUIC
import QuiverUDP
import Synchronization
import Testing

/// Waits (polling the listener's counters, at most `seconds`) until `condition` holds.
func eventually(_ seconds: Double = 10, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while !condition() {
        guard Date() < deadline else { return false }
        usleep(2_000)
    }
    return true
}

@Suite("QUIC listener: endpoint behaviour through the listener API")
struct EndpointBehaviourTests {
    /// The listener's QUIC counters are Quiver's own type, copied from the engine's: a counter
    /// the engine gains must be added to `Listener.Statistics.QUIC` (and its mapping) too. The
    /// listener adds its own only for what the engine does not do: forwarding to forked children.
    @Test("Listener.Statistics.QUIC has every counter of QUICEndpoint.Statistics")
    func statisticsMirrorTheEngine() throws {
        let endpoint = QUICEndpoint(configuration: QUICEndpoint.Configuration(connection: QUICConfiguration(tls: Identity.server())))
        let quicListener = try Listener(.quic, tls: Identity.server(), bind: "127.0.0.1:0")
        defer { quicListener.close() }
        let engine = Mirror(reflecting: endpoint.statistics).children.compactMap(\.label)
        let listener = Mirror(reflecting: try #require(quicListener.statistics.quic)).children.compactMap(\.label)
        #expect(!engine.isEmpty)
        let listenerOnly: Set = ["datagramsForwarded", "forwardsDropped", "forkRecordsRejected", "forkChannels", "forkRoutes"]
        #expect(Set(engine) == Set(listener).subtracting(listenerOnly),
                "engine counters missing from Listener.Statistics.QUIC: \(Set(engine).subtracting(listener).sorted())")
        #expect(listenerOnly.isSubset(of: listener))
    }

    @Test("an unknown version gets Version Negotiation listing v1 and v2")
    func versionNegotiation() throws {
        let listener = try Listener(.quic, tls: Identity.server(), bind: "127.0.0.1:0")
        let socket = try UDPSocket(bindingTo: SocketAddress("127.0.0.1:0")!)
        let dcid: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8]
        let scid: [UInt8] = [9, 10, 11, 12]
        var datagram: [UInt8] = [0xc3, 0x1a, 0x2a, 0x3a, 0x4a, UInt8(dcid.count)] + dcid + [UInt8(scid.count)] + scid
        datagram += [UInt8](repeating: 0, count: 1200 - datagram.count)
        socket.enqueue(datagram, to: listener.localAddresses[0])
        _ = try socket.flush()
        var response: [UInt8]?
        #expect(eventually {
            if (try? socket.receive()) ?? 0 > 0 { response = socket.withReceivedBytes(0) { Array($0) } }
            return response != nil
        })
        let bytes = try #require(response)
        #expect(bytes[0] & 0x80 != 0 && bytes[1..<5].elementsEqual([0, 0, 0, 0]), "version 0 marks Version Negotiation")
        #expect(bytes[5] == UInt8(scid.count) && Array(bytes[6..<10]) == scid, "echoes our SCID as its DCID")
        var versions: [UInt32] = []
        for offset in stride(from: 11 + dcid.count, to: bytes.count - 3, by: 4) {
            let high = UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16
            versions.append(high | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3]))
        }
        #expect(versions.contains(QUICVersion.v1.rawValue) && versions.contains(QUICVersion.v2.rawValue), "\(versions)")
        #expect(listener.statistics.quic?.versionNegotiationsSent == 1)
        listener.close()
    }

    /// The network between a client's pair and two servers' pairs (their far ends): each of the
    /// client's datagrams goes to the first server while `toFirst()` says so, else to the
    /// second; the second's datagrams always reach the client, the first's while
    /// `firstHeard()` says so.
    private static func route(client: DatagramPair, first: DatagramPair, second: DatagramPair, toFirst: @escaping @Sendable () -> Bool,
                              firstHeard: @escaping @Sendable () -> Bool = { true }) {
        let clientSide = client.second, firstSide = first.second, secondSide = second.second
        clientSide.setArrivalHandler {
            while let d = clientSide.receive() { (toFirst() ? firstSide : secondSide).send(d.bytes, from: d.source, to: d.destination) }
        }
        firstSide.setArrivalHandler {
            while let d = firstSide.receive() { if firstHeard() { clientSide.send(d.bytes, from: d.source, to: d.destination) } }
        }
        secondSide.setArrivalHandler {
            while let d = secondSide.receive() { clientSide.send(d.bytes, from: d.source, to: d.destination) }
        }
    }

    @Test("after a server restart (same stateless-reset key) the client gets a stateless reset")
    func statelessResetAfterRestart() throws {
        let serverAddress = SocketAddress("192.0.2.1:443")!, clientAddress = SocketAddress("198.51.100.7:5000")!
        var options = Listener.Options()
        let key = [UInt8](repeating: 7, count: 32)
        options.statelessResetKey = key
        let before = DatagramPair(addressed: true), after = DatagramPair(addressed: true), client = DatagramPair(addressed: true)
        let first = try Listener(.quic, tls: Identity.server(), attachments: [.datagrams(before.first, localAddress: serverAddress)], options: options)
        let second = try Listener(.quic, tls: Identity.server(), attachments: [.datagrams(after.first, localAddress: serverAddress)], options: options)
        // The network: the client's datagrams go to the first server until it "restarts".
        let restarted = Atomic<Bool>(false)
        Self.route(client: client, first: before, second: after, toFirst: { !restarted.load(ordering: .acquiring) },
                   firstHeard: { !restarted.load(ordering: .acquiring) })
        let connection = try Connection.connect(over: .datagrams(client.first, localAddress: clientAddress), remote: serverAddress,
                                                tls: Identity.client(), serverName: "localhost")
        try connection.write([1])
        let served = try first.accept()
        #expect(try served.read(maxBytes: 1) == [1])
        restarted.store(true, ordering: .releasing)
        try connection.write([2])
        #expect(throws: QuiverError.self) { _ = try connection.read() }
        #expect(connection.closeInfo?.origin == .transport, "\(String(describing: connection.closeInfo))")
        #expect(connection.closeInfo?.reason == "stateless reset")
        #expect(second.statistics.quic?.statelessResetsSent ?? 0 >= 1)
        first.close()
        second.close()
    }

    @Test("a client with a keep-alive learns of its server's restart by a stateless reset without writing anything")
    func keepAliveMeetsStatelessReset() throws {
        let serverAddress = SocketAddress("192.0.2.1:443")!, clientAddress = SocketAddress("198.51.100.7:5000")!
        var options = Listener.Options()
        options.statelessResetKey = [UInt8](repeating: 9, count: 32)
        let before = DatagramPair(addressed: true), after = DatagramPair(addressed: true), client = DatagramPair(addressed: true)
        let first = try Listener(.quic, tls: Identity.server(), attachments: [.datagrams(before.first, localAddress: serverAddress)], options: options)
        defer { first.close() }
        let second = try Listener(.quic, tls: Identity.server(), attachments: [.datagrams(after.first, localAddress: serverAddress)], options: options)
        defer { second.close() }
        let restarted = Atomic<Bool>(false)
        Self.route(client: client, first: before, second: after, toFirst: { !restarted.load(ordering: .acquiring) },
                   firstHeard: { !restarted.load(ordering: .acquiring) })
        var clientOptions = ClientOptions()
        clientOptions.keepAliveInterval = .milliseconds(100)
        let connection = try Connection.connect(over: .datagrams(client.first, localAddress: clientAddress), remote: serverAddress,
                                                tls: Identity.client(), serverName: "localhost", options: clientOptions)
        try connection.write([1])
        let served = try first.accept()
        #expect(try served.read(maxBytes: 1) == [1])
        restarted.store(true, ordering: .releasing)
        // The client only waits: its next keep-alive PING reaches the second server.
        let deadline = ContinuousClock.now + .seconds(5)
        while connection.closeInfo == nil, ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.01) }
        #expect(connection.closeInfo?.origin == .transport, "\(String(describing: connection.closeInfo))")
        #expect(connection.closeInfo?.reason == "stateless reset")
    }

    @Test("a Retry token one listener issued validates at another given the same token secret")
    func sharedTokenSecret() throws {
        let serverAddress = SocketAddress("192.0.2.1:443")!, clientAddress = SocketAddress("198.51.100.7:5000")!
        var options = Listener.Options()
        options.retryPolicy = .always
        options.tokenSecret = [UInt8](repeating: 9, count: 32)
        let issuing = DatagramPair(addressed: true), validating = DatagramPair(addressed: true), client = DatagramPair(addressed: true)
        let first = try Listener(.quic, tls: Identity.server(), attachments: [.datagrams(issuing.first, localAddress: serverAddress)], options: options)
        let second = try Listener(.quic, tls: Identity.server(), attachments: [.datagrams(validating.first, localAddress: serverAddress)],
                                  options: options)
        defer {
            first.close()
            second.close()
        }
        // The network (a balancer that moved the client): its first datagram reaches the first
        // listener, which answers with a Retry; everything after, the token-bearing Initial
        // included, reaches the second, which must accept the token or Retry again (a second
        // Retry the client would discard, RFC 9000 §17.2.5.2).
        let forwarded = Atomic<Int>(0)
        Self.route(client: client, first: issuing, second: validating, toFirst: { forwarded.add(1, ordering: .relaxed).oldValue == 0 })
        let connection = try Connection.connect(over: .datagrams(client.first, localAddress: clientAddress), remote: serverAddress,
                                                tls: Identity.client(), serverName: "localhost")
        try connection.write([1])
        let served = try second.accept()
        #expect(try served.read(maxBytes: 1) == [1])
        #expect(first.statistics.quic?.retriesSent == 1)
        #expect(second.statistics.quic?.retriesSent == 0)
        try connection.shutdown(.rapid(code: 0, reason: ""))
    }

    @Test("an Initial flood beyond the pending-connection cap is dropped; memory stays bounded")
    func initialFlood() throws {
        var options = Listener.Options()
        options.retryPolicy = .never
        options.configureQUIC = { $0.maxPendingConnections = 20 }  // an engine limit: through the SPI
        let listener = try Listener(.quic, tls: Identity.server(), bind: "127.0.0.1:0", options: options)
        let socket = try UDPSocket(bindingTo: SocketAddress("127.0.0.1:0")!)
        let configuration = QUICConfiguration(tls: Identity.client())
        for _ in 0..<100 {  // 100 clients' first Initials, none of which ever answers
            let client = try QUICConnection(client: configuration, serverName: "localhost", remoteAddress: listener.localAddresses[0], now: .now())
            while let datagram = client.transmit(at: .now()) {
                if !socket.enqueue(datagram.bytes, to: datagram.destination) {
                    _ = try socket.flush()
                    socket.enqueue(datagram.bytes, to: datagram.destination)
                }
            }
        }
        _ = try socket.flush()
        #expect(eventually { (listener.statistics.quic?.connectionsCreated ?? 0) + (listener.statistics.quic?.initialsDropped ?? 0) >= 100 },
                "\(listener.statistics)")
        let statistics = listener.statistics
        #expect(statistics.quic?.connectionsCreated == 20 && statistics.pendingConnections <= 20, "\(statistics)")
        #expect(statistics.quic?.initialsDropped == 80, "\(statistics)")
        listener.close()
    }

    @Test("idle connections time out on both sides")
    func idleTimeout() throws {
        var options = Listener.Options()
        options.idleTimeout = .milliseconds(300)
        let listener = try Listener(.quic, tls: Identity.server(), bind: "127.0.0.1:0", options: options)
        let client = try Connection.connect(.quic, to: "127.0.0.1", port: listener.localAddresses[0].port, tls: Identity.client(), serverName: "localhost")
        try client.write([42])
        let served = try listener.accept()
        #expect(try served.read(maxBytes: 1) == [42])
        #expect(throws: QuiverError.self) { _ = try served.read() }  // nothing more: the idle timeout ends it
        #expect(served.closeInfo?.origin == .timeout, "\(String(describing: served.closeInfo))")
        #expect(throws: QuiverError.self) { _ = try client.read() }
        #expect(client.closeInfo?.origin == .timeout, "\(String(describing: client.closeInfo))")
        #expect(eventually { listener.statistics.connections == 0 })
        listener.close()
    }
}
