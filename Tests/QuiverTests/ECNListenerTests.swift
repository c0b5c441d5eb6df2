import Foundation
import Quiver
import QuiverCore
import QuiverUDP
import Synchronization
import Testing

/// ECN through the listener API (RFC 9000 §13.4): codepoints carried by datagram pairs and
/// by the kernel on loopback, and what each side's ``Connection/QUIC/ecn`` reports.
@Suite("QUIC listener: ECN")
struct ECNListenerTests {
    static let kernelSupportsECN: Bool = (try? UDPSocket(host: "127.0.0.1", port: 0))?.supportsECN ?? false

    @Test("A datagram pair carries each datagram's ECN codepoint, addressed or not", arguments: [true, false])
    func pairCarriesCodepoints(addressed: Bool) {
        let pair = DatagramPair(addressed: addressed)
        let marks: [ECNCodepoint] = [.ect0, .ect1, .ce, .notECT]
        let address = SocketAddress("192.0.2.1:443")!
        for (index, mark) in marks.enumerated() { pair.first.send([UInt8(index)], to: address, ecn: mark) }
        pair.second.send([9], to: address)  // unmarked by default
        var got: [ECNCodepoint] = []
        while let datagram = pair.second.receive() { got.append(datagram.ecn) }
        #expect(got == marks)
        #expect(pair.first.receive()?.ecn == .notECT)
    }

    /// The ECN statistics of both ends after echoing `size` bytes between a client and a
    /// listener on datagram pairs, through a "network" that forwards each datagram with its
    /// codepoint, or with `.notECT` when it `bleaches`.
    static func echoOverPairs(size: Int, bleaches: Bool) throws -> (client: ECNStatistics, server: ECNStatistics) {
        let serverAddress = SocketAddress("192.0.2.1:443")!, clientAddress = SocketAddress("198.51.100.7:5000")!
        let serverPair = DatagramPair(addressed: true), clientPair = DatagramPair(addressed: true)
        let listener = try Listener(.quic, tls: Identity.server(), attachments: [.datagrams(serverPair.first, localAddress: serverAddress)])
        defer { listener.close() }
        let clientSide = clientPair.second, serverSide = serverPair.second
        clientSide.setArrivalHandler {
            while let d = clientSide.receive() { serverSide.send(d.bytes, from: d.source, to: d.destination, ecn: bleaches ? .notECT : d.ecn) }
        }
        serverSide.setArrivalHandler {
            while let d = serverSide.receive() { clientSide.send(d.bytes, from: d.source, to: d.destination, ecn: bleaches ? .notECT : d.ecn) }
        }
        let served = Mutex<ECNStatistics?>(nil)
        let done = DispatchSemaphore(value: 0)
        Thread {
            defer { done.signal() }
            guard let connection = try? listener.accept() else { return }
            while let bytes = try? connection.read(maxBytes: 1 << 16), !bytes.isEmpty { try? connection.write(bytes) }
            served.withLock { $0 = connection.quic?.ecn }
            try? connection.shutdown(.flush)
        }.start()
        let connection = try Connection.connect(over: .datagrams(clientPair.first, localAddress: clientAddress), remote: serverAddress,
                                                tls: Identity.client(), serverName: "localhost")
        let data = payload(seed: 5, count: size)
        #expect(try echoRoundTrip(connection, data) == data)
        done.wait()
        let client = try #require(connection.quic).ecn
        try connection.shutdown(.rapid(code: 0, reason: ""))
        return (client, try #require(served.withLock { $0 }))
    }

    @Test("Over datagram pairs that carry the marks, both sides validate ECN")
    func validatedOverPairs() throws {
        let (client, server) = try Self.echoOverPairs(size: 200_000, bleaches: false)
        #expect(client.state == .capable && server.state == .capable, "client: \(client); server: \(server)")
        #expect(client.packetsSentECT0 > 0 && server.packetsSentECT0 > 0)
        #expect(client.datagramsReceivedECT0 > 0 && server.datagramsReceivedECT0 > 0)
    }

    @Test("Over datagram pairs whose application drops the marks, ECN fails on both sides and the echo is intact")
    func bleachedOverPairs() throws {
        let (client, server) = try Self.echoOverPairs(size: 200_000, bleaches: true)
        #expect(client.state == .failed && server.state == .failed, "client: \(client); server: \(server)")
        #expect(client.datagramsReceivedECT0 == 0 && server.datagramsReceivedECT0 == 0)
    }

    static let hasIPv6: Bool = (try? UDPSocket(host: "::1", port: 0)) != nil

    /// Where the listener binds and where the client connects: IPv4, IPv6 (`IPV6_TCLASS`), and
    /// a dual-stack listener with an IPv4 client (the IPv6 socket marks with `IP_TOS` for an
    /// IPv4-mapped peer, and reads its marks with `IP_RECVTOS`).
    static let loopbacks: [(bind: String, connect: String)] = [("127.0.0.1:0", "127.0.0.1")]
        + (hasIPv6 ? [("[::1]:0", "::1"), ("[::]:0", "127.0.0.1")] : [])

    @Test("Over UDP on loopback the kernel carries our ECT(0) marks: both sides read them and validate",
          .enabled(if: kernelSupportsECN, "the kernel refused IP_RECVTOS"), arguments: loopbacks)
    func loopbackSockets(bind: String, connect: String) throws {
        let listener = try Listener(.quic, tls: Identity.server(), bind: bind)
        defer { listener.close() }
        let served = Mutex<ECNStatistics?>(nil)
        let done = DispatchSemaphore(value: 0)
        Thread {
            defer { done.signal() }
            guard let connection = try? listener.accept() else { return }
            while let bytes = try? connection.read(maxBytes: 1 << 16), !bytes.isEmpty { try? connection.write(bytes) }
            served.withLock { $0 = connection.quic?.ecn }
            try? connection.shutdown(.flush)
        }.start()
        let connection = try Connection.connect(.quic, to: connect, port: listener.localAddresses[0].port, tls: Identity.client(),
                                                serverName: "localhost")
        let data = payload(seed: 6, count: 300_000)
        #expect(try echoRoundTrip(connection, data) == data)
        done.wait()
        let client = try #require(connection.quic).ecn
        let server = try #require(served.withLock { $0 })
        #expect(client.state == .capable && server.state == .capable, "client: \(client); server: \(server)")
        #expect(client.datagramsReceivedECT0 > 0 && server.datagramsReceivedECT0 > 0)
        #expect(client.datagramsReceivedCE == 0 && client.congestionEvents == 0)
        try connection.shutdown(.rapid(code: 0, reason: ""))
    }
}
