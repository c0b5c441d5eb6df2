import QuiverCore
@_spi(Wire) @testable import QuiverQUIC
import Testing

/// The GSO trains connections write their datagrams into (`DatagramTrain`): every datagram of
/// a train but the last has the train's segment size, the limits hold, a train is for one
/// destination, and a short datagram ends it.
@Suite("Datagram trains")
struct DatagramTrainTests {
    @Test("a bulk sender fills trains of full datagrams within the limits, each one a datagram the peer takes")
    func bulkTrains() throws {
        let pair = try AllocationTests.Pair()
        for _ in 0..<50 where pair.server?.state != .established { try pair.round() }
        let server = try #require(pair.server)
        let stream = try #require(server.openStream(.unidirectional))
        try server.write([UInt8](repeating: 0x5a, count: 2 << 20), to: stream)
        try server.finish(stream)
        var train = DatagramTrain(maxDatagrams: 8, maxBytes: 12_000)
        var trains = 0
        var longest = 0
        for _ in 0..<5_000 where !server.isSendComplete(on: stream) {
            train.removeAll()
            let more = server.transmit(at: pair.now, into: &train)
            if !train.isEmpty {
                trains += 1
                longest = max(longest, train.count)
                #expect(train.destination == Addresses.client)
                #expect(train.count <= 8 && train.bytes.count <= 12_000)
                for index in 0..<train.count {
                    let datagram = train.datagram(index)
                    if index < train.count - 1 {
                        #expect(datagram.count == train.segmentSize)
                    } else {
                        #expect(datagram.count <= train.segmentSize)
                    }
                    pair.client.receive(Array(datagram), from: Addresses.server, at: pair.now)
                }
            }
            if !more { try exchange(pair, server) }
        }
        #expect(server.isSendComplete(on: stream))
        #expect(pair.client.statistics.packetsDropped == 0)
        #expect(trains > 100 && longest == 8, "\(trains) trains, the longest of \(longest) datagrams")
    }

    /// The client's acknowledgments to the server, its reads, the timers; time moves 1 ms.
    private func exchange(_ pair: AllocationTests.Pair, _ server: QUICConnection) throws {
        while let datagram = pair.client.transmit(at: pair.now) { server.receive(datagram.bytes, from: Addresses.client, at: pair.now) }
        while let event = pair.client.nextEvent() {
            if case .streamReadable(let id) = event { try pair.drain(id) }
        }
        while server.nextEvent() != nil {}
        pair.now = pair.now + .milliseconds(1)
        for connection in [pair.client, server] {
            if let deadline = connection.nextDeadline, deadline <= pair.now { connection.handleTimeout(at: pair.now) }
        }
    }

    @Test("a train takes one destination from one source, ends at a short datagram, and offers an empty train any size")
    func trainRules() {
        let first = SocketAddress("10.0.0.1:1")!
        let second = SocketAddress("10.0.0.1:2")!
        let preferred = SocketAddress("10.0.0.2:443")!
        var train = DatagramTrain(maxDatagrams: 3, maxBytes: 4_000)
        #expect(train.room(for: first, from: nil, ecn: .notECT, limit: 1_400) == 1_400)
        train.writer.writeZeros(1_400)
        train.commit(length: 1_400, room: 1_400, destination: first, source: nil, ecn: .notECT)
        #expect(train.room(for: second, from: nil, ecn: .notECT, limit: 1_400) == nil)
        #expect(train.room(for: first, from: nil, ecn: .ce, limit: 1_400) == nil)
        #expect(train.room(for: first, from: preferred, ecn: .notECT, limit: 1_400) == nil)  // another local address
        #expect(train.room(for: first, from: nil, ecn: .notECT, limit: 1_500) == 1_400)
        train.writer.writeZeros(600)
        train.commit(length: 600, room: 1_400, destination: first, source: nil, ecn: .notECT)
        #expect(train.room(for: first, from: nil, ecn: .notECT, limit: 1_400) == nil)  // the short one was the last
        #expect(train.count == 2 && train.datagram(1).count == 600)
        train.removeAll()
        #expect(train.isEmpty && train.destination == nil && train.source == nil)
        #expect(train.room(for: second, from: preferred, ecn: .notECT, limit: 1_200) == 1_200)
        train.writer.writeZeros(1_200)
        train.commit(length: 1_200, room: 1_200, destination: second, source: preferred, ecn: .notECT)
        #expect(train.source == preferred)
    }
}
