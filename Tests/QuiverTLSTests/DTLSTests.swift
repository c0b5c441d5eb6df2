import QuiverCore
import Testing

@testable import QuiverTLS

/// A DTLS client and server in memory, with the server behind a ``DTLSCookieGate``, a virtual
/// clock and datagrams that can be dropped by index in each direction. DTLS 1.2 unless
/// `version` is `.tls13` (the client's configuration is capped at it).
final class DTLSPair {
    let client: DTLSConnection
    var server: DTLSConnection?
    let serverConfiguration: TLSConfiguration
    var gate = DTLSCookieGate()
    let clientAddress = SocketAddress(host: "192.0.2.1", port: 5000)!
    var now = Instant(nanoseconds: 1_000_000_000)
    /// Indexes (0-based, counting every datagram sent that way) of datagrams to lose.
    var dropFromClient: Set<Int> = []
    var dropFromServer: Set<Int> = []
    private(set) var sentByClient = 0
    private(set) var sentByServer = 0
    private(set) var helloVerifyRequests = 0
    private(set) var helloRetryRequests = 0
    /// The server's datagram size (the client's by default).
    var serverMTU: Int?
    private(set) var clientError: TLSError?
    private(set) var serverError: TLSError?

    init(client: TLSConfiguration, server: TLSConfiguration, mtu: Int = 1200, version: TLSVersion = .tls12) {
        var client = client
        client.maximumVersion = version
        self.client = DTLSConnection(client: client, serverName: "localhost")
        self.client.mtu = mtu
        serverConfiguration = server
    }

    var isEstablished: Bool { client.isHandshakeComplete && server?.isHandshakeComplete == true && clientError == nil && serverError == nil }

    /// Moves datagrams until quiet, then fires the earliest timer; stops when both are quiet
    /// with no timer, or after `rounds`.
    @discardableResult
    func run(rounds: Int = 200) -> Self {
        if sentByClient == 0 && clientError == nil {
            do { try client.start(now: now) } catch { clientError = error }
        }
        for _ in 0..<rounds {
            var moved = false
            for datagram in client.takeDatagrams() {
                defer { sentByClient += 1 }
                guard !dropFromClient.contains(sentByClient) else { continue }
                moved = true
                deliverToServer(datagram)
            }
            for datagram in server?.takeDatagrams() ?? [] {
                defer { sentByServer += 1 }
                guard !dropFromServer.contains(sentByServer) else { continue }
                moved = true
                guard clientError == nil else { continue }
                do { try client.receive(datagram, now: now) } catch { clientError = error }
            }
            if moved { continue }
            let deadlines = [client.nextTimeout, server?.nextTimeout].compactMap { $0 }
            guard let next = deadlines.min() else { break }
            now = next
            if clientError == nil { do { try client.handleTimeout(now: now) } catch { clientError = error } }
            if let server, serverError == nil { do { try server.handleTimeout(now: now) } catch { serverError = error } }
        }
        return self
    }

    private func deliverToServer(_ datagram: [UInt8]) {
        if server == nil {
            switch gate.check(datagram, from: clientAddress, tls: serverConfiguration) {
            case .drop:
                return
            case .helloVerifyRequest(let reply):
                helloVerifyRequests += 1
                do { try client.receive(reply, now: now) } catch { clientError = error }
                return
            case .helloRetryRequest(let reply):
                helloRetryRequests += 1
                do { try client.receive(reply, now: now) } catch { clientError = error }
                return
            case .refuse(let reply):
                do { try client.receive(reply, now: now) } catch { clientError = error }
                return
            case .accept(let retry):
                let connection = retry.map { DTLSConnection(server: serverConfiguration, after: $0) } ?? DTLSConnection(server: serverConfiguration)
                connection.mtu = serverMTU ?? client.mtu
                server = connection
            }
        }
        guard let server, serverError == nil else { return }
        do { try server.receive(datagram, now: now) } catch { serverError = error }
    }

    /// Sends `message` each way and returns what arrived.
    func exchange(_ message: [UInt8]) throws -> (atServer: [UInt8]?, atClient: [UInt8]?) {
        try client.write(message)
        run()
        let atServer = server?.read()
        try server?.write(message)
        run()
        return (atServer, client.read())
    }
}

@Suite("DTLS 1.2")
struct DTLSTests {
    @Test("handshake after a HelloVerifyRequest, messages both ways, the same exporter output", arguments: CipherSuite.supportedTLS12)
    func handshake(_ suite: CipherSuite) throws {
        let identity = suite.isECDSA ? TestPKI.p256 : TestPKI.rsa2048
        var client = Configs.client(trusting: identity)
        client.tls12CipherSuites = [suite]
        let pair = DTLSPair(client: client, server: Configs.server(identity)).run()
        #expect(pair.isEstablished, "\(String(describing: pair.clientError)) \(String(describing: pair.serverError))")
        #expect(pair.helloVerifyRequests == 1)
        #expect(pair.client.handshake.cipherSuite == suite && pair.client.handshake.negotiatedALPN == "echo")
        #expect(pair.client.nextTimeout == nil)
        let message = Array("one datagram".utf8)
        let (atServer, atClient) = try pair.exchange(message)
        #expect(atServer == message && atClient == message)
        let a = pair.client.handshake.exportKeyingMaterial(label: "EXTRACTOR-dtls_srtp", context: [], length: 60)
        #expect(a != nil && a == pair.server?.handshake.exportKeyingMaterial(label: "EXTRACTOR-dtls_srtp", context: [], length: 60))
    }

    @Test("every message is fragmented at a 300-byte MTU (an RSA certificate) and reassembled")
    func fragmentation() throws {
        let pair = DTLSPair(client: Configs.client(trusting: TestPKI.rsa2048), server: Configs.server(TestPKI.rsa2048), mtu: 300).run()
        #expect(pair.isEstablished, "\(String(describing: pair.clientError)) \(String(describing: pair.serverError))")
        #expect(pair.sentByServer > 4)
    }

    @Test("a lost datagram in any flight is recovered by retransmission", arguments: 0..<6)
    func loss(_ index: Int) throws {
        // Client datagrams: 0 ClientHello, 1 ClientHello with cookie, 2 its final flight…;
        // server datagrams: 0 its first flight, 1 its final flight.
        for direction in 0..<2 {
            let pair = DTLSPair(client: Configs.client(), server: Configs.server())
            if direction == 0 { pair.dropFromClient = [index] } else { pair.dropFromServer = [index] }
            pair.run()
            #expect(pair.isEstablished, "drop \(direction == 0 ? "client" : "server") #\(index): \(String(describing: pair.clientError)) \(String(describing: pair.serverError))")
            pair.dropFromClient = []
            pair.dropFromServer = []  // (a lost message after the handshake stays lost)
            #expect(try pair.exchange([1, 2, 3]).atClient == [1, 2, 3])
        }
    }

    @Test("a server that never answers: the client gives up after its retransmissions, with a timeout")
    func timeout() throws {
        let pair = DTLSPair(client: Configs.client(), server: Configs.server())
        pair.dropFromClient = Set(0..<100)
        pair.run()
        #expect(pair.clientError?.origin == .transport)
        #expect(pair.sentByClient == 1 + DTLSConnection.maxRetransmissions)
    }

    @Test("cookies: another address, another ClientHello, or a stale cookie get a new HelloVerifyRequest")
    func cookies() throws {
        let gate = DTLSCookieGate(secret: [UInt8](repeating: 7, count: 32))
        var configuration = Configs.client()
        configuration.maximumVersion = .tls12
        let client = DTLSConnection(client: configuration, serverName: "localhost")
        try client.start(now: Instant(nanoseconds: 0))
        let first = try #require(client.takeDatagrams().first)
        let address = SocketAddress(host: "192.0.2.1", port: 5000)!
        guard case .helloVerifyRequest(let hvr) = gate.check(first, from: address, tls: Configs.server()) else { Issue.record("no HelloVerifyRequest"); return }
        try client.receive(hvr, now: Instant(nanoseconds: 0))
        let second = try #require(client.takeDatagrams().first)
        #expect(gate.check(second, from: address, tls: Configs.server()) == .accept(nil))
        #expect(DTLSCookieGate(secret: [UInt8](repeating: 7, count: 32)).check(second, from: address, tls: Configs.server()) == .accept(nil))  // another process, same secret
        #expect(gate.check(second, from: SocketAddress(host: "192.0.2.1", port: 5001)!, tls: Configs.server()) != .accept(nil))
        #expect(DTLSCookieGate().check(second, from: address, tls: Configs.server()) != .accept(nil))
        var tampered = second
        tampered[tampered.count - 1] ^= 1  // the ClientHello changed under the cookie
        #expect(gate.check(tampered, from: address, tls: Configs.server()) != .accept(nil))
        var later = gate
        later.clock = .fixed(millisecondsSinceEpoch: WallClock.system.millisecondsSinceEpoch() + 120_000)
        #expect(later.check(second, from: address, tls: Configs.server()) != .accept(nil))
        #expect(gate.check([22, 0xFE, 0xFD, 0, 0], from: address, tls: Configs.server()) == .drop)
        #expect(gate.check(Array(repeating: 0, count: 100), from: address, tls: Configs.server()) == .drop)
    }

    @Test("fragments announcing more than 128 KiB of messages in all are not buffered")
    func reassemblyBound() throws {
        let client = DTLSConnection(client: Configs.client(), serverName: "localhost")
        try client.start(now: Instant(nanoseconds: 0))
        // Server handshake fragments, epoch 0, message_seq 0…7, each announcing 100 KiB and
        // carrying its first byte: only the first may be held.
        for seq in 0..<8 {
            let length = 100 * 1024
            var fragment: [UInt8] = [HandshakeType.certificate.rawValue, UInt8(length >> 16), UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length)]
            fragment += [0, UInt8(seq), 0, 0, 0, 0, 0, 1, 0xAA]
            var record: [UInt8] = [22, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, UInt8(seq)]
            record += [UInt8(fragment.count >> 8), UInt8(truncatingIfNeeded: fragment.count)]
            try client.receive(record + fragment, now: Instant(nanoseconds: 0))
        }
        #expect(client.error == nil)
        #expect(client.reassemblyBytes == 100 * 1024)
    }

    @Test("the replay window: new, old, duplicate and far-behind sequence numbers")
    func replayWindow() {
        var window = ReplayWindow()
        #expect(!window.isReplay(5))
        window.mark(5)
        #expect(window.isReplay(5))
        #expect(!window.isReplay(4) && !window.isReplay(6))
        window.mark(100)
        #expect(window.isReplay(5))  // more than 64 behind
        #expect(!window.isReplay(99) && !window.isReplay(37))
        window.mark(37)
        #expect(window.isReplay(37) && window.isReplay(100))
    }

    @Test("records that do not authenticate, replayed records and application data in the handshake are dropped, not fatal")
    func dropsSilently() throws {
        let pair = DTLSPair(client: Configs.client(), server: Configs.server()).run()
        #expect(pair.isEstablished)
        let server = try #require(pair.server)
        try pair.client.write([7, 7, 7])
        let record = try #require(pair.client.takeDatagrams().first)
        try server.receive(record, now: pair.now)
        try server.receive(record, now: pair.now)  // replayed
        var flipped = record
        flipped[flipped.count - 1] ^= 1
        try server.receive(flipped, now: pair.now)
        #expect(server.read() == [7, 7, 7])
        #expect(server.read() == nil)
        #expect(server.error == nil)
    }

    @Test("abort: the peer sees a fatal user_canceled, not a clean close; unread messages are counted")
    func abort() throws {
        let pair = DTLSPair(client: Configs.client(), server: Configs.server()).run()
        let server = try #require(pair.server)
        try pair.client.write([1])
        try pair.client.write([2])
        pair.run()
        #expect(server.queuedMessageCount == 2)
        _ = server.read()
        #expect(server.queuedMessageCount == 1)
        pair.client.abort()
        pair.run()
        #expect(pair.serverError?.alert == .userCanceled && pair.serverError?.origin == .peer)
        #expect(server.isPeerClosed == false)
    }

    @Test("close_notify ends the peer's reading; a write over one record is refused")
    func close() throws {
        let pair = DTLSPair(client: Configs.client(), server: Configs.server()).run()
        #expect(throws: TLSError.self) { try pair.client.write([UInt8](repeating: 0, count: DTLSConnection.maxMessageSize + 1)) }
        pair.client.close()
        pair.run()
        #expect(pair.server?.isPeerClosed == true)
    }
}

