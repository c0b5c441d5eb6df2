import Foundation
import Quiver
import QuiverCore
import QuiverTestSupport
import QuiverUDP
import Synchronization
import Testing

/// `Transport.sctp` on the listener: SCTP over UDP (or datagram pairs), messages on many
/// streams, a finished stream's end (RFC 6525), SHUTDOWN and ABORT as the connection's ends.
@Suite("SCTP listener")
struct SCTPListenerTests {
    /// Sizes from one byte to many fragments (serveEcho reads at most 64 KiB, a message at a time).
    static let sizes = [1, 2, 100, 1172, 1173, 4096, 65_536]

    static func udpListener(options: Listener.Options = Listener.Options(),
                            serve: @escaping @Sendable (Connection) throws -> Void = serveEcho) throws -> (Listener, UInt16) {
        try QuiverTests.udpListener(.sctp, options: options, serve: serve)
    }

    static func connect(port: UInt16, options: ClientOptions = ClientOptions()) throws -> Connection {
        try Connection.connect(.sctp, to: "127.0.0.1", port: port, tls: Identity.client(), serverName: nil, options: options)
    }

    static func lockstep(_ connection: Connection, sizes: [Int] = sizes) throws {
        for (index, size) in sizes.enumerated() {
            let message = payload(seed: UInt64(index), count: size)
            try connection.write(message)
            #expect(try connection.read(maxBytes: 1 << 20) == message, "message \(index) of \(size) bytes")
        }
    }

    /// Echoes `count` streams the client opens, each on a thread of its own with its end, then
    /// the default stream.
    static func serveStreams(_ count: Int, _ connection: Connection) throws {
        let group = DispatchGroup()
        for _ in 0..<count {
            let stream = try connection.acceptStream()
            group.enter()
            Thread {
                defer { group.leave() }
                while let bytes = try? stream.read(), !bytes.isEmpty { try? stream.write(bytes) }
                try? stream.finish()
            }.start()
        }
        group.wait()
        try serveEcho(connection)
    }

    @Test("echo over UDP keeps message boundaries; finish, the server's end, and the SHUTDOWN")
    func echoOverUDP() throws {
        let (listener, port) = try Self.udpListener()
        defer { listener.close() }
        let connection = try Self.connect(port: port)
        #expect(connection.transport == .sctp)
        #expect(connection.tlsVersion == nil && connection.peerCertificates.isEmpty)
        try Self.lockstep(connection)
        try connection.finish()
        #expect(try connection.read() == [])  // the server finished its side after ours
        try connection.shutdown()
        #expect(connection.closeInfo?.isClean == true)
        let statistics = listener.statistics
        #expect(statistics.sctp != nil && statistics.sctp?.invalidCookies == 0)
    }

    @Test("echo over datagram pairs", arguments: [true, false])
    func echoOverPairs(addressed: Bool) throws {
        let pair = DatagramPair(addressed: addressed)
        let serverAddress = SocketAddress("192.0.2.1:9899")!
        let listener = try Listener(.sctp, tls: Identity.server(), attachments: [.datagrams(pair.first, localAddress: addressed ? serverAddress : nil)])
        defer { listener.close() }
        Thread { if let connection = try? listener.accept() { try? serveEcho(connection) } }.start()
        let connection = try Connection.connect(.sctp, over: .datagrams(pair.second, localAddress: SocketAddress("192.0.2.2:9899")),
                                                remote: serverAddress, tls: Identity.client(), serverName: nil)
        try Self.lockstep(connection)
        try connection.shutdown()
        #expect(connection.closeInfo?.isClean == true)
    }

    @Test("streams beyond the default one: opened by the client, accepted by the server, each echoed and ended on its own")
    func manyStreams() throws {
        let (listener, port) = try Self.udpListener { try Self.serveStreams(3, $0) }
        defer { listener.close() }
        let connection = try Self.connect(port: port)
        let streams = try (0..<3).map { _ in try connection.openStream() }
        #expect(Set(streams.compactMap(\.id)).count == 3)
        for (index, stream) in streams.enumerated() {
            for round in 0..<3 {
                let message = payload(seed: UInt64(index * 10 + round), count: 500 * (index + 1))
                try stream.write(message)
                #expect(try stream.read() == message)
            }
            try stream.finish()
            #expect(try stream.read() == [])
            #expect(stream.state.receiving == .finished)
        }
        try connection.finish()
        #expect(try connection.read() == [])
        try connection.shutdown()
    }

    @Test("a server that does not read stops the client: backpressure from the receive window, nothing unbounded")
    func backpressure() throws {
        let startReading = DispatchSemaphore(value: 0)
        let (listener, port) = try Self.udpListener { connection in
            startReading.wait()
            try serveEcho(connection)
        }
        defer { listener.close() }
        let connection = try Self.connect(port: port)
        let poller = Poller()
        _ = poller.add(.stream(connection.defaultStream), interest: .writable)
        let message = [UInt8](repeating: 0x42, count: 16_384)
        var written = 0
        // Write while writes are taken; the connection stops being writable once the send
        // buffer, the network and the peer's windows are full, and stays so (500 ms).
        while written < 8 << 20 {
            if try connection.tryWrite(message) > 0 {
                written += message.count
            } else if poller.wait(timeout: .milliseconds(500)).isEmpty {
                break
            }
        }
        // The send buffer (1 MiB), the server's receive buffer (256 KiB) and its queue (as much).
        #expect(written <= (1 << 20) + 4 * (256 << 10) + message.count, "\(written) bytes taken by a peer that does not read")
        startReading.signal()
        var echoed = 0
        while echoed < written { echoed += try connection.read(maxBytes: 1 << 20).count }
        #expect(echoed == written)
        try connection.shutdown()
    }

    @Test("a close with an error code is an ABORT: the peer sees a User-Initiated Abort with the reason")
    func closeWithCode() throws {
        let (listener, port) = try Self.udpListener { connection in
            _ = try connection.read()
            try connection.shutdown(.rapid(code: 42, reason: "bye now"))
        }
        defer { listener.close() }
        let connection = try Self.connect(port: port)
        try connection.write([1])
        #expect(throws: QuiverError.self) { _ = try connection.read() }
        let info = try #require(connection.closeInfo)
        #expect(info.origin == .peer && info.code == 12 && !info.isClean)
        #expect(info.reason.contains("bye now"))
    }

    @Test("several event loops are a clear configuration error (SCTP packets are not steered between loops yet)")
    func notBuiltYet() throws {
        var options = Listener.Options()
        options.eventLoops = 2
        #expect(throws: QuiverError.self) { _ = try Listener(.sctp, tls: Identity.server(), bind: "127.0.0.1:0", options: options) }
    }

    @Test("usrsctp's client → Quiver's SCTP listener on SCTP port 7: lines echoed, then its SHUTDOWN", Peer.requires(.usrsctpClient))
    func usrsctpClient() throws {
        var options = Listener.Options()
        options.sctpPort = 7
        let (listener, port) = try Self.udpListener(options: options)
        defer { listener.close() }
        let localPort = try UDPSocket(bindingTo: SocketAddress(host: "127.0.0.1", port: 0)!).localAddress.port
        let client = try PeerProcess(try Peer.usrsctpClient.executable(), ["127.0.0.1", "7", "0", "\(localPort)", "\(port)"])
        defer { client.kill() }
        client.write("one line\n")
        try client.waitForStdout(containing: "one line", timeout: 10)
        client.write("another line\n")
        try client.waitForStdout(containing: "another line", timeout: 10)
    }
}
