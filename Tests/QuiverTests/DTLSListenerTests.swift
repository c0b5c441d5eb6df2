import Foundation
import Quiver
import QuiverCore
import QuiverTLS
import QuiverUDP
import Synchronization
import Testing

/// `Transport.dtls` on the listener: message semantics, closes, limits and the cookie gate,
/// over UDP sockets and datagram pairs. DTLS delivers messages without retransmission after
/// the handshake, so the echo tests go in lockstep (write one, read it back) and never lose
/// one on loopback or a pair.
@Suite("DTLS listener")
struct DTLSListenerTests {
    /// The message sizes every echo test walks: one byte to one full record.
    static let sizes = [1, 2, 100, 1199, 1200, 1201, 4096, 9000, 16_384]

    /// A DTLS listener on loopback UDP, serving `serve` for each connection on its own thread.
    static func udpListener(options: Listener.Options = Listener.Options(),
                            serve: @escaping @Sendable (Connection) throws -> Void = serveEcho) throws -> (Listener, UInt16) {
        try QuiverTests.udpListener(.dtls, options: options, serve: serve)
    }

    static func connect(port: UInt16, options: ClientOptions = ClientOptions()) throws -> Connection {
        try Connection.connect(.dtls, to: "127.0.0.1", port: port, tls: Identity.client(), serverName: "localhost", options: options)
    }

    /// Writes each message and reads it back whole.
    static func lockstep(_ connection: Connection, sizes: [Int] = sizes) throws {
        for (index, size) in sizes.enumerated() {
            let message = payload(seed: UInt64(index), count: size)
            try connection.write(message)
            #expect(try connection.read() == message, "message \(index) of \(size) bytes")
        }
    }

    @Test("echo over UDP keeps message boundaries; the flushing shutdown ends it cleanly")
    func echoOverUDP() throws {
        let (listener, port) = try Self.udpListener()
        defer { listener.close() }
        let connection = try Self.connect(port: port)
        #expect(connection.transport == .dtls)
        #expect(connection.tlsVersion == .tls13)
        #expect(connection.alpn == "echo")
        #expect(connection.peerCertificates.count == 1)
        try Self.lockstep(connection)
        try connection.finish()
        #expect(try connection.read() == [])  // the server's close_notify after ours
        try connection.shutdown()
        #expect(connection.closeInfo?.isClean == true)
        let statistics = listener.statistics
        #expect(statistics.dtls?.helloRetryRequestsSent == 1 && statistics.dtls?.helloVerifyRequestsSent == 0)
        #expect(statistics.dtls?.connectionsCreated == 1)
    }

    @Test("two event loops: a client that moves to another port reaches its connection's loop by Connection ID (the steering program)",
          arguments: [TLSVersion.tls12, .tls13])
    func rebindingAcrossLoops(_ version: TLSVersion) throws {
        var options = Listener.Options()
        options.eventLoops = 2
        let (listener, port) = try Self.udpListener(options: options)
        defer { listener.close() }
        let server = SocketAddress(host: "127.0.0.1", port: port)!
        // Several clients, so that some start on each loop's socket and move to a port the
        // kernel's hash alone would give the other loop.
        for index in 0..<6 {
            var configuration = Identity.client()
            configuration.maximumVersion = version
            let client = DTLSConnection(client: configuration, serverName: "localhost")
            try client.start(now: .now())
            let before = try UDPSocket(bindingTo: SocketAddress(host: "127.0.0.1", port: 0)!)
            defer { before.close() }
            try Self.drive(client, over: before, to: server) { $0.isHandshakeComplete }
            let after = try UDPSocket(bindingTo: SocketAddress(host: "127.0.0.1", port: 0)!)
            defer { after.close() }
            let message = Array("client \(index) from a new port".utf8)
            try client.write(message)
            try Self.drive(client, over: after, to: server) { $0.read() == message }
        }
        #expect(listener.statistics.dtls?.peersMigrated == 6)
    }

    /// Moves `client`'s datagrams over `socket` to `server` and back until `done` or 10 s.
    static func drive(_ client: DTLSConnection, over socket: UDPSocket, to server: SocketAddress,
                      until done: (DTLSConnection) -> Bool) throws {
        let end = Instant.now() + .seconds(10)
        while Instant.now() < end {
            for datagram in client.takeDatagrams() { _ = socket.enqueue(datagram, to: server) }
            _ = try socket.flush()
            if done(client) { return }
            _ = try socket.waitReadable(timeout: .milliseconds(50))
            let count = try socket.receive()
            for i in 0..<count { try client.receive(socket.withReceivedBytes(i) { Array($0) }, now: .now()) }
            try client.handleTimeout(now: .now())
        }
        Issue.record("the DTLS exchange did not finish: \(String(describing: client.error))")
    }

    @Test("echo over datagram pairs", arguments: [true, false])
    func echoOverPairs(addressed: Bool) throws {
        let pair = DatagramPair(addressed: addressed)
        let serverAddress = SocketAddress("192.0.2.1:4433")!
        let listener = try Listener(.dtls, tls: Identity.server(), attachments: [.datagrams(pair.first, localAddress: addressed ? serverAddress : nil)])
        defer { listener.close() }
        Thread { if let connection = try? listener.accept() { try? serveEcho(connection) } }.start()
        let connection = try Connection.connect(.dtls, over: .datagrams(pair.second, localAddress: SocketAddress("192.0.2.2:5555")),
                                                remote: serverAddress, tls: Identity.client(), serverName: "localhost")
        try Self.lockstep(connection)
        try connection.shutdown()
    }

    @Test("a read cuts a long message to maxBytes, as recv does, and the next read gets the next message")
    func truncation() throws {
        let (listener, port) = try Self.udpListener()
        defer { listener.close() }
        let connection = try Self.connect(port: port)
        try connection.write([UInt8](repeating: 7, count: 1000))
        #expect(try connection.read(maxBytes: 10) == [UInt8](repeating: 7, count: 10))
        try connection.write([1, 2, 3])
        #expect(try connection.read(maxBytes: 10) == [1, 2, 3])
        try connection.shutdown()
    }

    @Test("a write over one record and a second stream are clear errors; the connection goes on")
    func misuse() throws {
        let (listener, port) = try Self.udpListener()
        defer { listener.close() }
        let connection = try Self.connect(port: port)
        #expect(throws: QuiverError.self) { try connection.write([UInt8](repeating: 0, count: 16_385)) }
        do {
            try connection.write([UInt8](repeating: 0, count: 16_385))
        } catch {
            #expect(error.code == .configuration)
        }
        do {
            _ = try connection.openStream()
            Issue.record("openStream succeeded")
        } catch {
            #expect(error.code == .configuration)
        }
        try Self.lockstep(connection, sizes: [5])
        try connection.shutdown()
    }

    @Test("a close with an error code reaches the peer as a fatal alert")
    func closeWithCode() throws {
        let seen = Mutex<CloseInfo?>(nil)
        let done = DispatchSemaphore(value: 0)
        let (listener, port) = try Self.udpListener { connection in
            defer { done.signal() }
            do {
                while try !connection.read().isEmpty {}
            } catch {
                seen.withLock { $0 = connection.closeInfo }
            }
        }
        defer { listener.close() }
        let connection = try Self.connect(port: port)
        try connection.write([1])
        try connection.shutdown(.rapid(code: 42, reason: "bye"))
        #expect(done.wait(timeout: .now() + 10) == .success)
        let info = seen.withLock { $0 }
        #expect(info?.origin == .peer)
        #expect(info?.code == UInt64(AlertDescription.userCanceled.rawValue))
        #expect(info?.isClean == false)
    }

    @Test("a client whose server never answers gives up at its handshake timeout")
    func clientHandshakeTimeout() throws {
        let silent = try UDPSocket(bindingTo: SocketAddress("127.0.0.1:0")!)  // bound, never read
        defer { silent.close() }
        var options = ClientOptions()
        options.handshakeTimeout = .milliseconds(300)
        let started = Instant.now()
        do {
            _ = try Self.connect(port: silent.localAddress.port, options: options)
            Issue.record("connected to a silent socket")
        } catch let error as QuiverError {
            #expect(error.code == .closed && "\(error)".contains("handshake timed out"), "\(error)")
        }
        #expect(Instant.now() - started < .seconds(5))
    }

    @Test("an idle connection is closed with close_notify after the idle timeout")
    func idleTimeout() throws {
        var options = Listener.Options()
        options.idleTimeout = .milliseconds(200)
        let serverInfo = Mutex<CloseInfo?>(nil)
        let done = DispatchSemaphore(value: 0)
        let (listener, port) = try Self.udpListener(options: options) { connection in
            defer { done.signal() }
            _ = try? connection.read()
            serverInfo.withLock { $0 = connection.closeInfo }
        }
        defer { listener.close() }
        let connection = try Self.connect(port: port)
        #expect(try connection.read() == [])  // the server's close_notify
        #expect(done.wait(timeout: .now() + 10) == .success)
        #expect(serverInfo.withLock { $0 }?.origin == .timeout)
        #expect(listener.statistics.connections == 0)
    }
}

/// The endpoint behind the listener, driven deterministically: an application-driven listener
/// on an addressed pair, with sans-I/O clients on the other end.
@Suite("DTLS listener (driven)")
struct DTLSDrivenListenerTests {
    let pair = DatagramPair(addressed: true)
    let serverAddress = SocketAddress("192.0.2.1:4433")!
    let listener: Listener

    init() throws {
        var options = Listener.Options()
        options.driver = .applicationDriven
        listener = try Listener(.dtls, tls: Identity.server(), attachments: [.datagrams(pair.first, localAddress: serverAddress)], options: options)
    }

    /// Moves datagrams both ways until neither side has more: `client`'s to the listener as
    /// from `address`, the listener's back to the client addressed to it.
    func pump(_ client: DTLSConnection, from address: SocketAddress) throws {
        for _ in 0..<20 {
            var moved = false
            for datagram in client.takeDatagrams() {
                pair.second.send(datagram, from: address, to: serverAddress)
                moved = true
            }
            listener.handleEvents()
            while let datagram = pair.second.receive() {
                #expect(datagram.destination == address)
                try client.receive(datagram.bytes, now: .now())
                moved = true
            }
            if !moved { return }
        }
    }

    func handshake(from address: SocketAddress) throws -> DTLSConnection {
        let client = DTLSConnection(client: Identity.client(), serverName: "localhost")
        try client.start(now: .now())
        try pump(client, from: address)
        #expect(client.isHandshakeComplete)
        return client
    }

    @Test("a client restarting from the same address replaces its association; the old connection ends")
    func restartReplaces() throws {
        defer { listener.close() }
        let address = SocketAddress("198.51.100.7:40000")!
        let first = try handshake(from: address)
        let old = try #require(try listener.tryAccept())
        try first.write([1, 2, 3])
        try pump(first, from: address)
        #expect(try old.tryRead() == [1, 2, 3])

        let second = try handshake(from: address)
        let new = try #require(try listener.tryAccept())
        #expect(listener.statistics.dtls?.connectionsReplaced == 1)
        #expect(listener.statistics.connections == 1)
        do {
            _ = try old.tryRead()
            Issue.record("the replaced connection still reads")
        } catch {
            #expect(error.code == .closed)
        }
        try second.write([4])
        try pump(second, from: address)
        #expect(try new.tryRead() == [4])
        try new.write([5])
        listener.handleEvents()
        try pump(second, from: address)
        #expect(second.read() == [5])
    }

    @Test("a late copy of the association's own ClientHello (a retransmission) does not replace it")
    func lateClientHelloRetransmission() throws {
        defer { listener.close() }
        let address = SocketAddress("198.51.100.9:40000")!
        let client = DTLSConnection(client: Identity.client(), serverName: "localhost")
        try client.start(now: .now())
        // The cookie round by hand, keeping the ClientHello that carries the cookie.
        for datagram in client.takeDatagrams() { pair.second.send(datagram, from: address, to: serverAddress) }
        listener.handleEvents()
        while let reply = pair.second.receive() { try client.receive(reply.bytes, now: .now()) }
        let helloWithCookie = try #require(client.takeDatagrams().first)
        pair.second.send(helloWithCookie, from: address, to: serverAddress)
        try pump(client, from: address)
        #expect(client.isHandshakeComplete)
        let connection = try #require(try listener.tryAccept())

        pair.second.send(helloWithCookie, from: address, to: serverAddress)  // delayed in the network
        try client.write([7])
        try pump(client, from: address)
        #expect(listener.statistics.dtls?.connectionsReplaced == 0)
        #expect(try connection.tryRead() == [7])
        #expect(connection.closeInfo == nil)
    }

    @Test("a client whose address changes (NAT rebinding) keeps its connection: the listener follows its Connection ID",
          arguments: [TLSVersion.tls12, .tls13])
    func rebinding(_ version: TLSVersion) throws {
        defer { listener.close() }
        let before = SocketAddress("198.51.100.20:40000")!
        let after = SocketAddress("198.51.100.21:41000")!
        var configuration = Identity.client()
        configuration.maximumVersion = version
        let client = DTLSConnection(client: configuration, serverName: "localhost")
        try client.start(now: .now())
        try pump(client, from: before)
        let connection = try #require(try listener.tryAccept())
        #expect(client.peerConnectionID?.count == 8 && connection.tlsVersion == version)
        try client.write([1])
        try pump(client, from: after)  // the replies must go to the new address (pump checks)
        #expect(try connection.tryRead() == [1])
        #expect(connection.peerAddress == after && listener.statistics.dtls?.peersMigrated == 1)
        try connection.write([2])
        listener.handleEvents()
        try pump(client, from: after)
        #expect(client.read() == [2])
    }

    @Test("a flood of ClientHellos without cookies keeps no state")
    func cookieFlood() throws {
        defer { listener.close() }
        let client = DTLSConnection(client: Identity.client(), serverName: "localhost")
        try client.start(now: .now())
        let hello = try #require(client.takeDatagrams().first)
        for index in 0..<1000 {
            pair.second.send(hello, from: SocketAddress("198.51.100.\(index % 250):\(1000 + index)")!, to: serverAddress)
            if index % 100 == 99 { listener.handleEvents() }
        }
        listener.handleEvents()
        var replies = 0
        while pair.second.receive() != nil { replies += 1 }
        let statistics = listener.statistics
        #expect(replies == 1000)
        #expect(statistics.dtls?.helloRetryRequestsSent == 1000)
        #expect(statistics.connections == 0)
        #expect(statistics.pendingConnections == 0)
        #expect(listener.nextDeadline == nil)
    }

    @Test("messages from the peer wait whole, one per read, and the peer's close_notify ends reads")
    func messagesAndClose() throws {
        defer { listener.close() }
        let address = SocketAddress("198.51.100.8:40000")!
        let client = try handshake(from: address)
        let connection = try #require(try listener.tryAccept())
        for size in [1, 0, 300, 16_384] { try client.write([UInt8](repeating: UInt8(size & 0xff), count: size)) }
        client.close()
        try pump(client, from: address)
        #expect(try connection.tryRead()?.count == 1)
        #expect(try connection.tryRead()?.count == 300)  // the empty message is skipped
        #expect(try connection.tryRead()?.count == 16_384)
        #expect(try connection.tryRead() == [])
        #expect(connection.closeInfo == nil)  // half-closed: we may still write
        try connection.write([9])
        try connection.shutdown()
        try pump(client, from: address)
        #expect(client.read() == [9])
        #expect(client.isPeerClosed)
        #expect(connection.closeInfo?.isClean == true)
        #expect(listener.statistics.connections == 0)
    }
}
