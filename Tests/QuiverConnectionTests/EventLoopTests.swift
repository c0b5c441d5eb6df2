import Foundation
import Quiver
import QuiverCore
import QuiverUDP
import Synchronization
import Testing

/// A listener with several event loops (`Listener.Options.eventLoops`): each loop owns its
/// share of the connections, and every datagram of a connection reaches its loop.
@Suite("Several event loops per listener")
struct EventLoopTests {
    static func options(loops: Int) -> Listener.Options {
        var options = Listener.Options()
        options.eventLoops = loops
        return options
    }

    /// Echoes every connection on a thread of its own until the listener closes.
    static func serveEcho(_ listener: Listener) {
        Thread {
            while let connection = try? listener.accept() {
                Thread {
                    while let bytes = try? connection.read(), !bytes.isEmpty { try? connection.write(bytes) }
                    try? connection.shutdown()
                }.start()
            }
        }.start()
    }

    @Test("each datagram pair is one loop's: the connections run on different loops, accepted from one queue")
    func pairsPerLoop() throws {
        let pairs = [DatagramPair(addressed: false), DatagramPair(addressed: false)]
        let listener = try Listener(.quic, tls: TestIdentity.serverTLS(), attachments: pairs.map { .datagrams($0.first) },
                                    options: Self.options(loops: 2))
        defer { listener.close() }
        #expect(listener.eventLoopCount == 2)
        var executors: [ObjectIdentifier] = []
        for pair in pairs {
            let client = try Connection.connect(over: .datagrams(pair.second), tls: TestIdentity.clientTLS(), serverName: "localhost")
            try client.write([7])
            let server = try listener.accept()
            #expect(try server.read() == [7])
            executors.append(ObjectIdentifier(try #require(server.taskExecutor) as AnyObject))
            try client.shutdown()
        }
        #expect(executors[0] != executors[1], "the second pair's connection runs on the second loop")
        #expect(ObjectIdentifier(try #require(listener.taskExecutor) as AnyObject) == executors[0], "the listener's executor is the first loop")
        #expect(listener.statistics.quic?.connectionsCreated == 2, "the loops' counters are summed")
    }

    /// The clients' addresses change mid-transfer, as after a NAT rebinding: the kernel's hash
    /// would send a new 4-tuple to either loop, so only the steering program — which reads the
    /// loop out of the connection ID — keeps each connection's datagrams on its loop. (With
    /// steering broken, each client would land on the wrong loop with odds of ½ and stall.)
    @Test("connections stay on their loops across NAT rebindings (connection-ID steering)")
    func rebindingClients() throws {
        let listener = try Listener(.quic, tls: TestIdentity.serverTLS(), bind: "127.0.0.1:0", options: Self.options(loops: 2))
        defer { listener.close() }
        Self.serveEcho(listener)
        let server = SocketAddress(host: "127.0.0.1", port: listener.localAddresses[0].port)!
        let failures = Mutex<[String]>([])
        let clients = DispatchGroup()
        for index in 0..<6 {
            clients.enter()
            Thread {
                defer { clients.leave() }
                do { try Self.echoThroughRebindingRelay(to: server, seed: UInt64(index + 1)) } catch {
                    failures.withLock { $0.append("client \(index): \(error)") }
                }
            }.start()
        }
        clients.wait()
        #expect(failures.withLock { $0.isEmpty }, "\(failures.withLock { $0 })\n\(listener.statisticsDescription)")
        #expect(listener.statistics.quic?.connectionsCreated == 6)
        #expect(listener.statistics.quic?.statelessResetsSent == 0, "no datagram reached a loop that does not know its connection")
    }

    /// Echoes 256 KiB through a relay that rebinds a third of the way through.
    static func echoThroughRebindingRelay(to server: SocketAddress, seed: UInt64) throws {
        let relay = try UDPRelay(server: server)
        defer { relay.stop() }
        let connection = try Connection.connect(.quic, to: "127.0.0.1", port: relay.port, tls: TestIdentity.clientTLS(), serverName: "localhost")
        var rng = SplitMix64(seed: seed)
        let data = (0..<(256 << 10)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let echoed = try relay.echoRebindingOnce(data, over: connection)
        guard echoed == data, relay.reboundDatagrams > 0 else {
            throw QuiverError(.protocolViolation, "\(echoed.count) of \(data.count) bytes echoed, \(relay.reboundDatagrams) datagrams after the rebinding")
        }
        try connection.shutdown()
    }

    /// A Retry's connection ID names the loop that sent it, so the client's second Initial
    /// returns there; the token is sealed with the listener's one secret, good at every loop.
    @Test("Retry for every client with two loops: each client's second Initial is validated and served")
    func retry() throws {
        var options = Self.options(loops: 2)
        options.retryPolicy = .always
        let listener = try Listener(.quic, tls: TestIdentity.serverTLS(), bind: "127.0.0.1:0", options: options)
        defer { listener.close() }
        Self.serveEcho(listener)
        let port = listener.localAddresses[0].port
        for index in 0..<8 {
            let client = try Connection.connect(.quic, to: "127.0.0.1", port: port, tls: TestIdentity.clientTLS(), serverName: "localhost")
            try client.write([UInt8(index)])
            try client.finish()
            #expect(try client.read() == [UInt8(index)])
            try client.shutdown()
        }
        #expect(listener.statistics.quic?.retriesSent == 8)
        #expect(listener.statistics.quic?.connectionsCreated == 8)
    }

    /// One count for the listener: with the limit divided among the loops instead, four
    /// clients spread 3 + 1 (odds 5 in 8) would have met a refusal.
    @Test("maxConnections holds for all loops together, however the connections spread", arguments: [Transport.quic, .tcp, .dtls])
    func sharedLimit(transport: Transport) throws {
        var options = Self.options(loops: 2)
        options.maxConnections = 4
        let listener = try Listener(transport, tls: TestIdentity.serverTLS(), bind: "127.0.0.1:0", options: options)
        defer { listener.close() }
        let port = listener.localAddresses[0].port
        func connect() throws -> Connection {
            let client = try Connection.connect(transport, to: "127.0.0.1", port: port, tls: TestIdentity.clientTLS(), serverName: "localhost")
            try client.write([1])
            return client
        }
        var clients: [Connection] = []
        var accepted: [Connection] = []  // held: a connection whose last reference goes is closed
        for _ in 0..<4 {
            clients.append(try connect())
            accepted.append(try listener.accept())
            #expect(try accepted.last?.read() == [1])
        }
        #expect(throws: QuiverError.self, "the fifth is refused") { _ = try connect().read() }
        for client in clients { try client.shutdown(.rapid(code: 0, reason: "")) }
    }

    @Test("several loops refuse what they cannot do: the application-driven driver, a wrong number of attachments, workerID, fork")
    func refusals() throws {
        let tls = TestIdentity.serverTLS()
        var applicationDriven = Self.options(loops: 2)
        applicationDriven.driver = .applicationDriven
        #expect(throws: QuiverError.self) { _ = try Listener(.quic, tls: tls, bind: "127.0.0.1:0", options: applicationDriven) }
        #expect(throws: QuiverError.self) { _ = try Listener(.tcp, tls: tls, bind: "127.0.0.1:0", options: Self.options(loops: 0)) }
        let pair = DatagramPair(addressed: false)
        #expect(throws: QuiverError.self) {
            _ = try Listener(.quic, tls: tls, attachments: [.datagrams(pair.first)], options: Self.options(loops: 2))
        }
        var worker = Self.options(loops: 2)
        worker.workerID = 1
        #expect(throws: QuiverError.self) { _ = try Listener(.quic, tls: tls, bind: "127.0.0.1:0", options: worker) }

        // A forked child would inherit the other loops' sockets with no thread to serve them.
        for transport in [Transport.quic, .tcp] {
            var options = Self.options(loops: 2)
            options.disableActiveMigration = true
            let listener = try Listener(transport, tls: tls, bind: "127.0.0.1:0", options: options)
            defer { listener.close() }
            let client = try Connection.connect(transport, to: "127.0.0.1", port: listener.localAddresses[0].port,
                                                tls: TestIdentity.clientTLS(), serverName: "localhost")
            try client.write([1])
            let connection = try listener.accept()
            let error = #expect(throws: QuiverError.self) { _ = try listener.fork(handingOff: connection) }
            #expect(error?.code == .configuration)
            #expect(try connection.read() == [1], "the refused connection keeps working")
            try client.shutdown()
        }
    }
}
