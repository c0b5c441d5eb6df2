#if canImport(Glibc)
import Glibc
#endif
@testable import Quiver
import QuiverCore
import QuiverQUIC
import Testing

/// The parent's side of a fork hand-off's channel (`ForkForwarder`) and the channel's records
/// (`ForkChannel`), in process: the test holds the child's end. (A real child runs in the
/// `ddd-01-fork` demo tests: forking this multi-threaded test runner would be unsafe.)
@Suite("Fork hand-off forwarding: the parent passes a moved client's datagrams to its child")
struct ForkForwarderTests {
    private static let length = 8

    private func id(_ byte: UInt8, length: Int = ForkForwarderTests.length) -> ConnectionID {
        ConnectionID([UInt8](repeating: byte, count: length))!
    }

    private func shortHeader(_ id: ConnectionID, size: Int = 60) -> [UInt8] {
        [0x41] + id.bytes + [UInt8](repeating: 0xaa, count: size - 1 - id.count)
    }

    private func longHeader(_ id: ConnectionID) -> [UInt8] {
        [0xe3, 0, 0, 0, 1, UInt8(id.count)] + id.bytes + [0] + [UInt8](repeating: 0x55, count: 40)
    }

    private func forwarder() throws -> (ForkForwarder, EventPoll) {
        let poll = try EventPoll()
        return (try ForkForwarder(poll: poll, shortHeaderConnectionIDLength: Self.length, logger: nil), poll)
    }

    /// The next record waiting at `channel` (the test's end), parsed.
    private func next(_ channel: ForkChannel) -> (ForkChannel.Record, [UInt8])? {
        var buffer = [UInt8](repeating: 0, count: ForkChannel.maxRecordSize)
        guard case .record(let count, false) = channel.receive(into: &buffer),
              let record = ForkChannel.parse(buffer, count: count) else { return nil }
        return (record, buffer)
    }

    private let local: (ConnectionID) -> Bool = { _ in true }
    private let unknown: (ConnectionID) -> Bool = { _ in false }

    @Test("records: a datagram with its IPv4 or IPv6 source and ECN mark, and a connection-ID list, arrive as sent")
    func records() throws {
        let (parent, child) = try ForkChannel.pair()
        let datagram = (0..<1300).map { UInt8(truncatingIfNeeded: $0) }
        let sources = [SocketAddress("192.0.2.7:4433")!, SocketAddress("[fe80::1%3]:61000")!]
        for source in sources {
            #expect(parent.sendDatagram(datagram, from: source, ecn: .ect0) == .sent)
            let (record, buffer) = try #require(next(child))
            guard case .datagram(let from, let ecn, let payload) = record else {
                Issue.record("\(record)")
                continue
            }
            #expect(from == source && ecn == .ect0 && Array(buffer[payload]) == datagram)
        }
        let ids = [id(1), id(2, length: 20), id(3, length: 1)]
        #expect(child.sendConnectionIDs(ids) == .sent)
        let (record, _) = try #require(next(parent))
        #expect(record == .connectionIDs(ids))
        #expect(next(parent) == nil, "nothing more waits")
    }

    @Test("malformed records parse to nothing, never a trap")
    func malformedRecords() {
        let malformed: [[UInt8]] = [
            [0x01], [0x01, 9, 4, 1, 2, 3, 4, 0, 80, 0xff], [0x01, 0, 5, 1, 2, 3, 4, 0, 80, 0xff],
            [0x01, 0, 4, 1, 2, 3, 4, 0, 80],  // no datagram
            [0x01, 0, 6] + [UInt8](repeating: 0, count: 21),  // IPv6, no datagram
            [0x02], [0x02, 17] + [UInt8](repeating: 1, count: 17 * 2), [0x02, 1, 0], [0x02, 1, 21] + [UInt8](repeating: 1, count: 21),
            [0x02, 1, 2, 1], [0x02, 1, 1, 1, 9], [0x02, 2, 1, 1], [0x03, 1, 2], [0xff],
        ]
        for record in malformed { #expect(ForkChannel.parse(record, count: record.count) == nil, "\(record)") }
        #expect(ForkChannel.parse([0x02, 0, 0], count: 4) == nil, "a count beyond the buffer")
        var rng = SplitMix64(seed: 2026)
        for _ in 0..<20_000 {
            let record = (0..<Int(rng.next() % 48)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            _ = ForkChannel.parse(record, count: record.count)
            if !record.isEmpty { _ = ForkChannel.parse([0x01 + UInt8(rng.next() % 2)] + record, count: record.count + 1) }
        }
    }

    @Test("a datagram whose connection ID is a child's goes to that child, short or long header; the child's announcement replaces its routes")
    func routing() throws {
        let (forwarder, _) = try forwarder()
        let (parentEnd, child) = try ForkChannel.pair()
        let route = try forwarder.add(parentEnd, connectionIDs: [id(1), id(2)])
        forwarder.setProcess(4242, for: route)
        let source = SocketAddress("198.51.100.9:5000")!
        #expect(forwarder.forward(shortHeader(id(1)), from: source, ecn: .ce, isLocal: local))
        #expect(forwarder.forward(longHeader(id(2)), from: source, ecn: .notECT, isLocal: local))
        #expect(!forwarder.forward(shortHeader(id(3)), from: source, ecn: .notECT, isLocal: local), "the endpoint's")
        #expect(!forwarder.forward([], from: source, ecn: .notECT, isLocal: local))
        #expect(!forwarder.forward([0x41, 1, 1], from: source, ecn: .notECT, isLocal: local), "too short for a connection ID")
        let first = try #require(next(child))
        #expect(first.0 == .datagram(source: source, ecn: .ce, payload: 9..<69))
        #expect(Array(first.1[9..<69]) == shortHeader(id(1)))
        #expect(try #require(next(child)).1[9] == 0xe3)

        #expect(child.sendConnectionIDs([id(2), id(3)]) == .sent)
        #expect(forwarder.serviceChannels(isLocal: unknown) == 1)
        #expect(forwarder.routeCount == 2)
        #expect(!forwarder.forward(shortHeader(id(1)), from: source, ecn: .notECT, isLocal: local), "retired")
        #expect(forwarder.forward(shortHeader(id(3)), from: source, ecn: .notECT, isLocal: local))
        #expect(forwarder.statistics == ForkForwarder.Statistics(datagramsForwarded: 3))
    }

    @Test("a short header for an ID announced but not yet read is not left to the endpoint's stateless reset, and the channels are read for that once per round")
    func announcementRace() throws {
        let (forwarder, _) = try forwarder()
        let (parentEnd, child) = try ForkChannel.pair()
        _ = try forwarder.add(parentEnd, connectionIDs: [id(1)])
        #expect(child.sendConnectionIDs([id(1), id(7)]) == .sent)  // then the NEW_CONNECTION_ID leaves
        let source = SocketAddress("198.51.100.9:5001")!
        #expect(!forwarder.forward(longHeader(id(7)), from: source, ecn: .notECT, isLocal: unknown), "long headers are never reset")
        #expect(!forwarder.forward(shortHeader(id(7)), from: source, ecn: .notECT, isLocal: local), "an ID the endpoint routes")
        #expect(forwarder.forward(shortHeader(id(7)), from: source, ecn: .notECT, isLocal: unknown))
        #expect(forwarder.routeCount == 2)
        // The channels are read for that once per round: a flood of unknown IDs costs no more.
        #expect(child.sendConnectionIDs([id(1), id(7), id(8)]) == .sent)
        #expect(!forwarder.forward(shortHeader(id(8)), from: source, ecn: .notECT, isLocal: unknown), "read once this round already")
        forwarder.newRound()
        #expect(forwarder.forward(shortHeader(id(8)), from: source, ecn: .notECT, isLocal: unknown))
    }

    @Test("garbage from a child is counted and ignored, a bounded number per round, and so is a claim on the listener's own connection IDs; its channel and the others go on working")
    func garbage() throws {
        let (forwarder, _) = try forwarder()
        let (parentEnd, child) = try ForkChannel.pair()
        let (otherEnd, other) = try ForkChannel.pair()
        _ = try forwarder.add(parentEnd, connectionIDs: [id(1)])
        _ = try forwarder.add(otherEnd, connectionIDs: [id(9)])
        var rng = SplitMix64(seed: 99)
        // Random records of no kind a child sends (a datagram record goes the other way).
        var garbage: [[UInt8]] = (0..<80).map { index in
            [index % 2 == 0 ? 0x01 : 0x03 + UInt8(rng.next() % 200)] + (0..<Int(rng.next() % 40)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        }
        garbage += [
            [0x01, 0, 4, 127, 0, 0, 1, 0, 80, 0x41, 1, 2],  // a datagram record: the wrong way
            [0x02, 1] + [UInt8](repeating: 7, count: 600),  // longer than any announcement
            [0x02, 1, 4, 1, 2, 3, 4],  // an ID of the wrong length
            [0x02, 2, 8] + id(1).bytes + [8] + id(9).bytes,  // another child's ID
        ]
        for record in garbage { #expect(child.sendRecord(record) == .sent) }
        #expect(forwarder.serviceChannels(isLocal: unknown) == 0)
        #expect(forwarder.statistics.badRecords == min(garbage.count, ForkForwarder.recordsPerRound), "at most one round's worth")
        #expect(forwarder.serviceChannels(isLocal: unknown) == 0)
        #expect(forwarder.statistics.badRecords == garbage.count)
        #expect(forwarder.channelCount == 2 && forwarder.routeCount == 2)
        let source = SocketAddress("198.51.100.9:5002")!
        #expect(forwarder.forward(shortHeader(id(1)), from: source, ecn: .notECT, isLocal: local))
        #expect(forwarder.forward(shortHeader(id(9)), from: source, ecn: .notECT, isLocal: local), "still the other child's")
        #expect(next(child) != nil && next(other) != nil)
        // A child has a copy of its parent's connection IDs: it may not claim one the listener's
        // own connections use.
        #expect(child.sendConnectionIDs([id(1), id(5)]) == .sent)
        #expect(forwarder.serviceChannels(isLocal: { $0 == id(5) }) == 0)
        #expect(forwarder.statistics.badRecords == garbage.count + 1 && forwarder.routeCount == 2)
    }

    @Test("when a child's end closes, its channel and routes go; a full channel drops without blocking")
    func lifetime() throws {
        let (forwarder, _) = try forwarder()
        let (firstEnd, first) = try ForkChannel.pair()
        let (secondEnd, second) = try ForkChannel.pair()
        _ = try forwarder.add(firstEnd, connectionIDs: [id(1), id(2)])
        _ = try forwarder.add(secondEnd, connectionIDs: [id(3)])
        let source = SocketAddress("198.51.100.9:5003")!
        // Nobody reads the first child's end: the channel fills and drops, the caller never waits.
        let datagram = shortHeader(id(1), size: 1200)
        for _ in 0..<5_000 { #expect(forwarder.forward(datagram, from: source, ecn: .notECT, isLocal: local)) }
        #expect(forwarder.statistics.datagramsForwarded + forwarder.statistics.datagramsDropped == 5_000)
        #expect(forwarder.statistics.datagramsDropped > 0)

        first.close()  // the child exited
        forwarder.serviceChannels(isLocal: unknown)
        #expect(forwarder.channelCount == 1 && forwarder.routeCount == 1)
        #expect(!forwarder.forward(datagram, from: source, ecn: .notECT, isLocal: local))
        // A send on a channel whose child ended before it was read closes it at once.
        second.close()
        #expect(forwarder.forward(shortHeader(id(3)), from: source, ecn: .notECT, isLocal: local))
        #expect(forwarder.channelCount == 0 && forwarder.routeCount == 0)
        #expect(forwarder.isEmpty)
    }

    @Test("the child reads what its parent passed on, and closes its end when the parent's closes")
    func childSide() throws {
        let poll = try EventPoll()
        let (parent, child) = try ForkChannel.pair()
        let link = ForkLink(channel: child, connectionIDs: [id(1)], peer: SocketAddress("192.0.2.1:1000")!)
        try link.register(with: poll)
        let moved = SocketAddress("192.0.2.1:2000")!
        for size in [1200, 1350] { #expect(parent.sendDatagram([UInt8](repeating: 7, count: size), from: moved, ecn: .ect0) == .sent) }
        #expect(parent.sendRecord([0x02, 0]) == .sent)  // not a record a child takes: skipped
        #expect(link.isReported(in: poll.wait(timeoutMilliseconds: 0)))
        var delivered: [(Int, SocketAddress, ECNCodepoint)] = []
        link.receive(poll: poll) { bytes, source, ecn in delivered.append((bytes.count, source, ecn)) }
        #expect(delivered.map(\.0) == [1200, 1350] && delivered.allSatisfy { $0.1 == moved && $0.2 == .ect0 })
        parent.close()
        link.receive(poll: poll) { _, _, _ in Issue.record("nothing more") }
        #expect(!link.isReported(in: [EventPoll.Ready(tag: ForkLink.pollTag, readable: true, writable: false, failed: false)]))
    }
}
