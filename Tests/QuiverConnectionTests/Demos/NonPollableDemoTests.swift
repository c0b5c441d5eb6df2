#if canImport(Glibc)
import Glibc
#endif
import Foundation
import NIOCore
import NIOPosix
import Quiver
import QuiverCore
import QuiverNIO
import QuiverTestSupport
import QuiverUDP
import Synchronization
import Testing

// ddd-05-async-nonpollable as a process, in the serialized demo suite (the same harness: 20
// concurrent clients, ours and Python ssl / aioquic, 0 B–1 MiB in random chunks over 3 ports,
// exact echo, spread over workers, SIGINT → status 0 within 5 s).
extension DemoTests {
    @Test("ddd-05-async-nonpollable: 20 concurrent clients on 3 ports, 3 SwiftNIO event loops owning SO_REUSEPORT sockets, listeners on addressed memory pairs, SIGINT",
          arguments: [Transport.tcp, .quic])
    func nonpollable(transport: Transport) throws {
        let log = try runDemo("ddd-05-async-nonpollable", transport: transport)
        // Addressed pairs: the listener sees the clients' real addresses.
        #expect(log.components(separatedBy: ": connection from 127.0.0.1:").count - 1 == 20, "\(log)")
    }

    @Test("ddd-05-async-nonpollable --unaddressed (demo 06): the same over unaddressed pairs, QUIC routed per remote address by the bridge",
          arguments: [Transport.tcp, .quic])
    func nonpollableUnaddressed(transport: Transport) throws {
        let log = try runDemo("ddd-05-async-nonpollable", transport: transport, extraArguments: ["--unaddressed"])
        // Unaddressed pairs: QUIC peers are named by their pair's synthetic address, TLS peers
        // by none.
        let marker = transport == .quic ? ": connection from [fd71:7569:7665:7200:" : ": connection from an unaddressed peer"
        #expect(log.components(separatedBy: marker).count - 1 == 20, "\(log)")
    }
}

/// The QuiverNIO bridge in process: a listener on one NIO event loop behind a loopback channel,
/// a Quiver client through it.
@Suite("QuiverNIO bridge", .serialized)
struct NIOBridgeTests {
    /// Echoes the default stream of every connection on the loop, without blocking.
    final class LoopEcho {
        private var connections: [(connection: Connection, pending: [UInt8], ended: Bool)] = []
        private(set) var peers: [QuiverCore.SocketAddress?] = []

        func serve(_ listener: Listener) {
            while let connection = try? listener.tryAccept() {
                peers.append(connection.peerAddress)
                connections.append((connection, [], false))
            }
            for i in connections.indices.reversed() {
                let stream = connections[i].connection.defaultStream
                var done = false
                while true {
                    var progressed = false
                    if connections[i].pending.isEmpty, !connections[i].ended, let bytes = try? stream.tryRead() {
                        if bytes.isEmpty { connections[i].ended = true } else { connections[i].pending = bytes }
                        progressed = true
                    }
                    if !connections[i].pending.isEmpty {
                        guard let written = try? stream.tryWrite(connections[i].pending) else {
                            done = true
                            break
                        }
                        connections[i].pending.removeFirst(written)
                        progressed = progressed || written > 0
                    }
                    if connections[i].ended, connections[i].pending.isEmpty {
                        try? stream.finish()
                        done = true
                        break
                    }
                    if !progressed { break }
                }
                if done || connections[i].connection.closeInfo != nil, connections[i].connection.tryShutdown() {
                    connections.remove(at: i)
                }
            }
        }
    }

    /// A listener on one event loop behind a channel bound to 127.0.0.1.
    struct Server {
        let group: MultiThreadedEventLoopGroup
        let loop: ListenerLoop
        let channel: any Channel
        let echo: NIOLoopBound<LoopEcho>

        init(_ transport: Transport, addressed: Bool, routing: DatagramBridge.Routing = DatagramBridge.Routing(),
             retryPolicy: Listener.RetryPolicy? = nil) throws {
            group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            let eventLoop = group.next()
            var options = Listener.Options()
            options.driver = .applicationDriven
            if let retryPolicy { options.retryPolicy = retryPolicy }
            let listener = try Listener(transport, tls: TestIdentity.serverTLS(), attachments: [], options: options)
            let loop = ListenerLoop(listener: listener, eventLoop: eventLoop)
            self.loop = loop
            echo = try eventLoop.submit {
                let echo = LoopEcho()
                loop.setRoundHandler { echo.serve($0) }
                return NIOLoopBound(echo, eventLoop: eventLoop)
            }.wait()
            channel = try loop.bind(to: try NIOCore.SocketAddress(ipAddress: "127.0.0.1", port: 0), addressed: addressed, routing: routing).wait()
        }

        var port: UInt16 { UInt16(channel.localAddress?.port ?? 0) }

        func statistics() throws -> DatagramBridge.Statistics {
            try channel.eventLoop.submit { [channel] in
                try channel.pipeline.syncOperations.handler(type: DatagramBridge.self).statistics
            }.wait()
        }

        func peers() throws -> [QuiverCore.SocketAddress?] {
            try loop.eventLoop.submit { [echo] in echo.value.peers }.wait()
        }

        func stop() throws {
            try loop.eventLoop.submit { [loop] in loop.close() }.wait()
            try channel.close().wait()
            try group.syncShutdownGracefully()
        }
    }

    /// Connects a Quiver client and checks the exact echo of `size` bytes; returns what ECN
    /// did on a QUIC connection.
    @discardableResult
    static func echo(_ transport: Transport, port: UInt16, size: Int, seed: UInt64) throws -> ECNStatistics? {
        let connection = try Connection.connect(transport, to: "127.0.0.1", port: port, tls: TestIdentity.clientTLS(), serverName: "localhost")
        var rng = SplitMix64(seed: seed)
        let data = (0..<size).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let writer = Thread {
            var offset = 0
            var chunks = SplitMix64(seed: seed + 1)
            while offset < data.count {
                let end = min(data.count, offset + 1 + Int(chunks.next() % 40_000))
                try? connection.write(data[offset..<end])
                offset = end
            }
            try? connection.finish()
        }
        writer.start()
        // Bounded: a stall fails the read instead of hanging the test.
        DispatchQueue.global().asyncAfter(deadline: .now() + 30) { try? connection.shutdown(.rapid(code: 1, reason: "test timeout")) }
        var echoed: [UInt8] = []
        while case let bytes = try connection.read(), !bytes.isEmpty { echoed += bytes }
        #expect(echoed.count == data.count)
        #expect(echoed == data)
        let ecn = connection.quic?.ecn
        try connection.shutdown()
        return ecn
    }

    @Test("a Quiver client's 300 KiB echo through the bridge: TLS and QUIC, addressed and unaddressed",
          arguments: [Transport.tcp, .quic], [true, false])
    func echoThroughBridge(transport: Transport, addressed: Bool) throws {
        let server = try Server(transport, addressed: addressed)
        defer { try? server.stop() }
        try Self.echo(transport, port: server.port, size: 300 << 10, seed: 7)
        try Self.echo(transport, port: server.port, size: 0, seed: 8)
        let peers = try server.peers()
        #expect(peers.count == 2)
        for peer in peers {
            switch (transport, addressed) {
            case (_, true):
                #expect(peer?.host == "127.0.0.1", "\(String(describing: peer))")
            case (.tcp, false):
                #expect(peer == nil)
            case (_, false):
                // The synthetic address naming the pair: fd71:7569:7665:7200::<index>, port 0.
                #expect(peer?.addressBytes.prefix(8).elementsEqual([0xfd, 0x71, 0x75, 0x69, 0x76, 0x65, 0x72, 0]) == true, "\(String(describing: peer))")
                #expect(peer?.port == 0)
            }
        }
        if transport == .quic {
            let statistics = try server.statistics()
            #expect(statistics.datagramsReceived > 0 && statistics.datagramsSent > 0)
            if !addressed {
                #expect(statistics.routes == 2 && statistics.pairs == 2, "\(statistics)")  // two client sockets
            }
        }
    }

    /// The client's path validates only if the bridge handed its marks to the listener (which
    /// counted them in its ACK frames), and it reads ECT(0) only if the bridge wrote the
    /// listener's marks into the envelopes' metadata.
    @Test("QUIC through the bridge carries ECN both ways: the client's path validates and the server's marks arrive",
          .enabled(if: (try? UDPSocket(host: "127.0.0.1", port: 0))?.supportsECN ?? false, "the kernel refused IP_RECVTOS"),
          arguments: [true, false])
    func ecnThroughBridge(addressed: Bool) throws {
        let server = try Server(.quic, addressed: addressed)
        defer { try? server.stop() }
        let ecn = try #require(try Self.echo(.quic, port: server.port, size: 200 << 10, seed: 9))
        #expect(ecn.state == .capable, "\(ecn)")
        #expect(ecn.datagramsReceivedECT0 > 0, "\(ecn)")
    }

    @Test("unaddressed QUIC: a Retry round trip validates through the route (the token names the pair)")
    func unaddressedRetry() throws {
        let server = try Server(.quic, addressed: false, retryPolicy: .always)
        defer { try? server.stop() }
        try Self.echo(.quic, port: server.port, size: 50_000, seed: 11)
        #expect(server.loop.listener.statistics.quic?.retriesSent == 1)
        let statistics = try server.statistics()
        #expect(statistics.routes == 1 && statistics.pairs == 1, "\(statistics)")
    }

    @Test("unaddressed QUIC: a flood of source addresses gets at most maxPeers pairs; the established connection goes on")
    func unaddressedFlood() throws {
        var routing = DatagramBridge.Routing()
        routing.maxPeers = 8
        let server = try Server(.quic, addressed: false, routing: routing)
        defer { try? server.stop() }
        try Self.echo(.quic, port: server.port, size: 20_000, seed: 21)  // one route, idle for less than 15 s

        let connection = try Connection.connect(.quic, to: "127.0.0.1", port: server.port, tls: TestIdentity.clientTLS(), serverName: "localhost")
        try connection.write([1, 2, 3])
        var first: [UInt8] = []
        while first.count < 3, case let bytes = try connection.read(), !bytes.isEmpty { first += bytes }
        #expect(first == [1, 2, 3])

        // 60 other sources, each one 1200-byte datagram of junk.
        var sockets: [UDPSocket] = []
        for _ in 0..<60 { sockets.append(try UDPSocket(host: "127.0.0.1", port: 0)) }
        defer { for socket in sockets { socket.close() } }
        let destination = QuiverCore.SocketAddress(host: "127.0.0.1", port: server.port)!
        var rng = SplitMix64(seed: 99)
        for socket in sockets {
            _ = socket.enqueue((0..<1200).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, to: destination, ecn: .notECT)
            _ = try socket.flush()
        }
        // Bounded polling until the bridge has seen them all: 2 routes (the clients) + 6 new
        // pairs, 54 refused.
        let deadline = Date().addingTimeInterval(10)
        var statistics = try server.statistics()
        while statistics.peersRefused + statistics.routes < 62, Date() < deadline {
            Thread.sleep(forTimeInterval: 0.02)
            statistics = try server.statistics()
        }
        #expect(statistics.pairs == 8 && statistics.routes == 8, "\(statistics)")
        #expect(statistics.peersRefused == 54, "\(statistics)")

        // The established connection still echoes.
        try connection.write([4, 5, 6])
        try connection.finish()
        var rest: [UInt8] = []
        while case let bytes = try connection.read(), !bytes.isEmpty { rest += bytes }
        #expect(rest == [4, 5, 6])
        try connection.shutdown()
    }

    @Test("unaddressed QUIC: a pair serves a new remote address only after it was idle for reuseAfter")
    func unaddressedReuse() throws {
        var routing = DatagramBridge.Routing()
        routing.maxPeers = 2
        routing.reuseAfter = .milliseconds(300)
        let server = try Server(.quic, addressed: false, routing: routing)
        defer { try? server.stop() }
        let destination = QuiverCore.SocketAddress(host: "127.0.0.1", port: server.port)!
        let sockets = try (0..<3).map { _ in try UDPSocket(host: "127.0.0.1", port: 0) }
        defer { for socket in sockets { socket.close() } }
        func send(from index: Int) throws {
            _ = sockets[index].enqueue([UInt8](repeating: 0x40, count: 100), to: destination, ecn: .notECT)
            _ = try sockets[index].flush()
        }
        func waitFor(seconds: Double = 5, _ condition: (DatagramBridge.Statistics) -> Bool) throws -> DatagramBridge.Statistics {
            let deadline = Date().addingTimeInterval(seconds)
            var statistics = try server.statistics()
            while !condition(statistics), Date() < deadline {
                Thread.sleep(forTimeInterval: 0.01)
                statistics = try server.statistics()
            }
            return statistics
        }
        let start = Date()
        try send(from: 0)
        try send(from: 1)
        var statistics = try waitFor { $0.routes == 2 }
        #expect(statistics.pairs == 2)
        try send(from: 2)
        statistics = try waitFor { $0.peersRefused == 1 || $0.routesReused == 1 }
        if Date().timeIntervalSince(start) < 0.3 {
            #expect(statistics.peersRefused == 1 && statistics.routesReused == 0, "\(statistics)")
        }
        // Polling with a deadline: the third address is taken once the oldest route is idle.
        let deadline = Date().addingTimeInterval(5)
        repeat {
            try send(from: 2)
            statistics = try waitFor(seconds: 0.05) { $0.routesReused == 1 }
        } while statistics.routesReused == 0 && Date() < deadline
        #expect(statistics.routesReused == 1 && statistics.pairs == 2 && statistics.routes == 2, "\(statistics)")
        #expect(Date().timeIntervalSince(start) >= 0.3)
    }
}
