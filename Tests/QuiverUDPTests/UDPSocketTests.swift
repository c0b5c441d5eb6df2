import QuiverCore
import QuiverUDP
import Testing

@Suite("UDPSocket: binding, round trips, batches, packet info")
struct UDPSocketTests {
    @Test("IPv4 round trip: bytes, source, destination, no ECN mark, no segment size")
    func ipv4RoundTrip() throws {
        let a = try UDPSocket(host: "127.0.0.1", port: 0)
        let b = try UDPSocket(host: "127.0.0.1", port: 0)
        #expect(a.localAddress.port != 0)
        #expect(!a.isDualStack)

        #expect(a.enqueue(Array("hello".utf8), to: b.localAddress))
        #expect(try a.flush() == UDPSendResult(sent: 1, failed: 0, remaining: 0))
        let got = try receive(1, on: b)
        try #require(got.count == 1)
        #expect(got[0].bytes == Array("hello".utf8))
        #expect(got[0].source == a.localAddress)
        if b.supportsPacketInfo { #expect(got[0].destination == b.localAddress) }
        #expect(got[0].ecn == .notECT)
        #expect(got[0].segmentSize == nil)
        #expect(!got[0].isTruncated)

        b.enqueue(Array("world".utf8), to: got[0].source)
        _ = try flushAll(b)
        #expect(try receive(1, on: a).map(\.bytes) == [Array("world".utf8)])
    }

    @Test("IPv6 round trip on ::1", .enabled(if: Kernel.hasIPv6, "no IPv6 loopback here"))
    func ipv6RoundTrip() throws {
        let a = try UDPSocket(host: "::1", port: 0)
        let b = try UDPSocket(host: "::1", port: 0)
        #expect(a.localAddress == (try address("[::1]:\(a.localAddress.port)")))
        #expect(a.enqueue([1, 2, 3], to: b.localAddress))
        _ = try flushAll(a)
        let got = try receive(1, on: b)
        #expect(got.map(\.bytes) == [[1, 2, 3]])
        #expect(got.first?.source == a.localAddress)
        if b.supportsPacketInfo { #expect(got.first?.destination == b.localAddress) }

        b.enqueue([4, 5], to: a.localAddress)
        _ = try flushAll(b)
        #expect(try receive(1, on: a).map(\.bytes) == [[4, 5]])
    }

    @Test("Dual-stack [::] socket: an IPv4 peer is reported as IPv4 and answered over IPv4",
          .enabled(if: Kernel.hasIPv6, "no IPv6 here"))
    func dualStack() throws {
        let server = try UDPSocket(host: "::", port: 0)
        #expect(server.isDualStack)
        let port = server.localAddress.port
        let v4Client = try UDPSocket(host: "127.0.0.1", port: 0)
        let v6Client = try UDPSocket(host: "::1", port: 0)

        v4Client.enqueue(Array("via v4".utf8), to: try address("127.0.0.1:\(port)"), ecn: .ect0)
        _ = try flushAll(v4Client)
        let fromV4 = try receive(1, on: server)
        try #require(fromV4.count == 1)
        #expect(fromV4[0].source == v4Client.localAddress)  // not ::ffff:127.0.0.1
        if server.supportsPacketInfo { #expect(fromV4[0].destination == (try address("127.0.0.1:\(port)"))) }
        if server.supportsECN { #expect(fromV4[0].ecn == .ect0) }

        // Reply from the address the datagram was sent to, with an ECN mark.
        server.enqueue(Array("back".utf8), to: fromV4[0].source, ecn: .ect1, source: fromV4[0].destination)
        #expect(try flushAll(server).sent == 1)
        let reply = try receive(1, on: v4Client)
        #expect(reply.map(\.bytes) == [Array("back".utf8)])
        #expect(reply.first?.source == (try address("127.0.0.1:\(port)")))
        if server.supportsECN { #expect(reply.first?.ecn == .ect1) }

        v6Client.enqueue(Array("via v6".utf8), to: try address("[::1]:\(port)"))
        _ = try flushAll(v6Client)
        let fromV6 = try receive(1, on: server)
        #expect(fromV6.first?.source == v6Client.localAddress)
        if server.supportsPacketInfo { #expect(fromV6.first?.destination == (try address("[::1]:\(port)"))) }
    }

    @Test("An IPv6-only socket does not take IPv4", .enabled(if: Kernel.hasIPv6, "no IPv6 here"))
    func ipv6Only() throws {
        let socket = try UDPSocket(host: "::", port: 0, configuration: .init(ipv6Only: true))
        #expect(!socket.isDualStack)
        // The same port is still free for IPv4, which a dual-stack socket would have taken.
        let v4 = try UDPSocket(host: "0.0.0.0", port: socket.localAddress.port)
        #expect(v4.localAddress.port == socket.localAddress.port)
    }

    @Test("Batches of 64 datagrams both ways: exact contents, order and sources",
          arguments: ["127.0.0.1", "::1"])
    func batches(host: String) throws {
        guard host == "127.0.0.1" || Kernel.hasIPv6 else { return }
        let configuration = UDPSocket.Configuration(batchSize: 64, receiveBufferSize: 1 << 20)
        let a = try UDPSocket(host: host, port: 0, configuration: configuration)
        let b = try UDPSocket(host: host, port: 0, configuration: configuration)
        for (sender, receiver) in [(a, b), (b, a)] {
            let sent = (0..<64).map { datagram($0, size: 2 + ($0 * 37) % 1200) }
            for bytes in sent { #expect(sender.enqueue(bytes, to: receiver.localAddress)) }
            #expect(sender.queuedDatagramCount == 64)
            #expect(!sender.enqueue([0], to: receiver.localAddress), "the queue holds batchSize messages")
            #expect(try flushAll(sender) == UDPSendResult(sent: 64, failed: 0, remaining: 0))
            #expect(sender.queuedDatagramCount == 0)
            let got = try receive(64, on: receiver)
            #expect(got.map(\.bytes) == sent)
            #expect(got.allSatisfy { $0.source == sender.localAddress })
        }
    }

    @Test("A batch larger than the receive batch arrives over several receive calls")
    func receiveInSeveralBatches() throws {
        let a = try UDPSocket(host: "127.0.0.1", port: 0)
        let b = try UDPSocket(host: "127.0.0.1", port: 0, configuration: .init(batchSize: 8))
        for i in 0..<20 { a.enqueue(datagram(i, size: 100), to: b.localAddress) }
        _ = try flushAll(a)
        #expect(try b.waitReadable(timeout: .seconds(5)))
        #expect(try b.receive() == 8)
        #expect(b.receivedCount == 8)
        let rest = try receive(12, on: b)
        #expect(rest.map(\.bytes) == (8..<20).map { datagram($0, size: 100) })
    }

    @Test("Packet info: the local address a datagram was sent to, and replies from it (IPv4 wildcard)")
    func packetInfoIPv4() throws {
        let server = try UDPSocket(host: "0.0.0.0", port: 0)
        try #require(server.supportsPacketInfo, "IP_PKTINFO refused")
        let port = server.localAddress.port
        let client = try UDPSocket(host: "127.0.0.1", port: 0)
        for host in ["127.0.0.1", "127.0.0.2"] {
            client.enqueue(Array(host.utf8), to: try address("\(host):\(port)"))
            _ = try flushAll(client)
            let got = try receive(1, on: server)
            #expect(got.first?.destination == (try address("\(host):\(port)")))

            let reply = try #require(got.first)
            server.enqueue(reply.bytes, to: reply.source, source: reply.destination)
            _ = try flushAll(server)
            let back = try receive(1, on: client)
            #expect(back.first?.source == (try address("\(host):\(port)")), "the reply leaves from the address the request was sent to")
        }
    }

    @Test("Packet info on an IPv6 wildcard socket", .enabled(if: Kernel.hasIPv6, "no IPv6 here"))
    func packetInfoIPv6() throws {
        let server = try UDPSocket(host: "::", port: 0, configuration: .init(ipv6Only: true))
        try #require(server.supportsPacketInfo, "IPV6_RECVPKTINFO refused")
        let port = server.localAddress.port
        let client = try UDPSocket(host: "::1", port: 0)
        client.enqueue([6], to: try address("[::1]:\(port)"))
        _ = try flushAll(client)
        let got = try #require(try receive(1, on: server).first)
        #expect(got.destination == (try address("[::1]:\(port)")))
        server.enqueue([7], to: got.source, source: got.destination)
        _ = try flushAll(server)
        #expect(try receive(1, on: client).first?.source == (try address("[::1]:\(port)")))
    }

    @Test("The echo loop of the UDPSocket documentation", .enabled(if: Kernel.hasIPv6, "no IPv6 here"))
    func documentedEchoLoop() throws {
        let socket = try UDPSocket(host: "::", port: 0)
        let clients = [try UDPSocket(host: "127.0.0.1", port: 0), try UDPSocket(host: "::1", port: 0)]
        for (i, client) in clients.enumerated() {
            let server = try address(i == 0 ? "127.0.0.1:\(socket.localAddress.port)" : "[::1]:\(socket.localAddress.port)")
            client.enqueue([UInt8(i)], to: server, ecn: .ect0)
            _ = try flushAll(client)
        }
        var echoed = 0
        while echoed < clients.count, try socket.waitReadable(timeout: .seconds(5)) {
            let n = try socket.receive()
            for i in 0..<n {
                let datagram = socket.received(i)
                socket.withReceivedBytes(i) { bytes in
                    _ = socket.enqueue(bytes, to: datagram.source, ecn: datagram.ecn, source: datagram.destination)
                }
            }
            echoed += try socket.flush().sent
        }
        for (i, client) in clients.enumerated() {
            let got = try receive(1, on: client)
            #expect(got.map(\.bytes) == [[UInt8(i)]])
            if socket.supportsECN { #expect(got.first?.ecn == .ect0) }
        }
    }

    @Test("Nothing waiting: receive returns 0 without throwing, and waitReadable times out")
    func wouldBlock() throws {
        let socket = try UDPSocket(host: "127.0.0.1", port: 0)
        #expect(try socket.receive() == 0)
        #expect(socket.receivedCount == 0)
        #expect(try socket.waitReadable(timeout: .milliseconds(20)) == false)
        #expect(try socket.flush() == UDPSendResult(sent: 0, failed: 0, remaining: 0))
        #expect(try socket.waitWritable(timeout: .zero))
    }

    @Test("A datagram longer than the receive buffer is cut and marked")
    func truncation() throws {
        let a = try UDPSocket(host: "127.0.0.1", port: 0)
        let b = try UDPSocket(host: "127.0.0.1", port: 0, configuration: .init(receiveMessageCapacity: 100))
        a.enqueue(datagram(1, size: 300), to: b.localAddress)
        a.enqueue(datagram(2, size: 100), to: b.localAddress)
        _ = try flushAll(a)
        let got = try receive(2, on: b)
        #expect(got.map(\.bytes) == [Array(datagram(1, size: 300).prefix(100)), datagram(2, size: 100)])
        #expect(got.map(\.isTruncated) == [true, false])
    }

    @Test("Datagrams written in place into the send queue")
    func enqueueInPlace() throws {
        let a = try UDPSocket(host: "127.0.0.1", port: 0)
        let b = try UDPSocket(host: "127.0.0.1", port: 0)
        let queued = a.enqueue(to: b.localAddress, capacity: 1500) { buffer in
            for i in 0..<10 { buffer[i] = UInt8(i) }
            return 10
        }
        #expect(queued)
        // A zero-length datagram is a datagram too.
        #expect(a.enqueue(to: b.localAddress, capacity: 0) { _ in 0 })
        #expect(try flushAll(a).sent == 2)
        #expect(try receive(2, on: b).map(\.bytes) == [Array(0..<10), []])
    }

    @Test("A full send queue refuses more until flushed")
    func queueCapacity() throws {
        let a = try UDPSocket(host: "127.0.0.1", port: 0, configuration: .init(sendQueueCapacity: 1000))
        let b = try UDPSocket(host: "127.0.0.1", port: 0)
        #expect(a.enqueue([UInt8](repeating: 1, count: 600), to: b.localAddress))
        #expect(!a.enqueue([UInt8](repeating: 2, count: 600), to: b.localAddress))
        #expect(a.enqueue([UInt8](repeating: 3, count: 400), to: b.localAddress))
        #expect(try flushAll(a).sent == 2)
        #expect(a.enqueue([UInt8](repeating: 2, count: 600), to: b.localAddress))
        #expect(try flushAll(a).sent == 1)
        #expect(try receive(3, on: b).map(\.bytes.first) == [1, 3, 2])
    }

    @Test("SO_REUSEPORT: two sockets bind one port and the kernel spreads peers over both")
    func reusePort() throws {
        let configuration = UDPSocket.Configuration(reusePort: true)
        let first = try UDPSocket(host: "127.0.0.1", port: 0, configuration: configuration)
        let second = try UDPSocket(host: "127.0.0.1", port: first.localAddress.port, configuration: configuration)
        #expect(second.localAddress == first.localAddress)

        // The group hashes each peer's address and port to one socket: 32 peers all landing on
        // the same one would happen with probability 2^-31.
        var clients: [UDPSocket] = []
        for i in 0..<32 {
            let client = try UDPSocket(host: "127.0.0.1", port: 0)
            client.enqueue(datagram(i, size: 10), to: first.localAddress)
            _ = try flushAll(client)
            clients.append(client)
        }
        var arrived = [0, 0]
        let deadline = Instant.now() + .seconds(5)
        while arrived[0] + arrived[1] < 32, Instant.now() < deadline {
            for (k, socket) in [first, second].enumerated() where try socket.waitReadable(timeout: .milliseconds(10)) {
                arrived[k] += try socket.receive()
            }
        }
        #expect(arrived[0] + arrived[1] == 32)
        #expect(arrived[0] > 0 && arrived[1] > 0, "spread: \(arrived)")
    }

    @Test("Unusable configurations and hosts are configuration errors")
    func configurationErrors() {
        #expect(throws: QuiverError(.configuration, "")) { try UDPSocket(host: "localhost", port: 0) }
        #expect(throws: QuiverError(.configuration, "")) {
            try UDPSocket(host: "127.0.0.1", port: 0, configuration: .init(batchSize: 0))
        }
        #expect(throws: QuiverError(.configuration, "")) {
            try UDPSocket(host: "127.0.0.1", port: 0, configuration: .init(batchSize: 2000))
        }
    }

    @Test("A closed socket throws instead of touching another descriptor")
    func closed() throws {
        let socket = try UDPSocket(host: "127.0.0.1", port: 0)
        socket.close()
        socket.close()
        #expect(socket.fileDescriptor == -1)
        #expect(throws: QuiverError.self) { try socket.receive() }
        #expect(throws: QuiverError.self) { try socket.waitReadable(timeout: .zero) }
        socket.enqueue([1], to: socket.localAddress)
        #expect(throws: QuiverError.self) { try socket.flush() }
        #expect(socket.queuedDatagramCount == 1, "unsent datagrams stay queued")
    }
}
