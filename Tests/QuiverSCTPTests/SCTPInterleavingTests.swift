import QuiverCore
import QuiverNetSim
@testable import QuiverSCTP
import Testing

/// User message interleaving (I-DATA, RFC 8260): negotiation, messages of different streams
/// interleaved by the sender and put together by Message Identifier and FSN by the receiver.
@Suite struct SCTPInterleavingTests {
    private static func bytes(_ count: Int, seed: Int) -> [UInt8] { SCTPPartialReliabilityTests.bytes(count, seed: seed) }

    @Test func bothSidesNegotiateItByDefault() throws {
        let pair = SCTPPair()
        let (client, server) = try pair.connect()
        #expect(client.peerSupportsMessageInterleaving && server.peerSupportsMessageInterleaving)
        // With PR-SCTP, I-FORWARD-TSN is listed too (§2.3.1), and PR-SCTP is on.
        #expect(client.peerSupportsPartialReliability && server.peerSupportsPartialReliability)
        guard case .initiation(let initiation) = pair.client.sent.first?.chunks.first else {
            Issue.record("no INIT")
            return
        }
        #expect(SCTPAssociation.listsMessageInterleaving(initiation.parameters) && SCTPAssociation.listsIForwardTSN(initiation.parameters))
    }

    @Test(arguments: [true, false])
    func eitherSideWithoutItMeansDATA(clientOffers: Bool) throws {
        let pair = SCTPPair { $0.association.messageInterleaving = ($0.port == 5001) == clientOffers }
        let (client, server) = try pair.connect()
        #expect(!client.peerSupportsMessageInterleaving && !server.peerSupportsMessageInterleaving)
        #expect(client.peerSupportsPartialReliability)  // FORWARD TSN, then
        try client.send(Self.bytes(3000, seed: 1), stream: 1)
        var received: [SCTPMessage] = []
        try pair.network.run(until: {
            received += readAll(server)
            return !received.isEmpty
        })
        #expect(received.map(\.bytes) == [Self.bytes(3000, seed: 1)])
        #expect(!pair.client.sent.flatMap(\.chunks).contains { if case .iData = $0 { true } else { false } })
    }

    /// Not offered when SCTP-AUTH is to cover DATA but not I-DATA: user data would go
    /// unauthenticated.
    @Test func notOfferedWhenAuthWouldNotCoverIt() {
        var configuration = SCTPConfiguration()
        #expect(SCTPAssociation.offersMessageInterleaving(configuration, auth: nil))
        #expect(!SCTPAssociation.offersMessageInterleaving(configuration, auth: SCTPAuthentication(chunks: [SCTPChunkType.data])))
        #expect(SCTPAssociation.offersMessageInterleaving(configuration, auth: SCTPAuthentication(chunks: [SCTPChunkType.data, SCTPChunkType.iData])))
        #expect(SCTPAssociation.offersMessageInterleaving(configuration, auth: SCTPAuthentication(chunks: [SCTPChunkType.sack])))
        configuration.messageInterleaving = false
        #expect(!SCTPAssociation.offersMessageInterleaving(configuration, auth: nil))
    }

    /// Two 100 KB messages on streams 1 and 2 and then a small one on stream 3: their
    /// fragments interleave (round-robin a packet at a time), the small one is not held up
    /// behind them, and all arrive byte-exact through loss.
    @Test(arguments: [0.0, 0.1, 0.3])
    func largeMessagesOnTwoStreamsInterleave(loss: Double) throws {
        var link = LinkConfiguration()
        link.lossRate = loss
        link.bandwidth = 20_000_000
        let pair = SCTPPair(seed: 3, link: link)
        let (client, server) = try pair.connect()
        let sent = [
            SCTPMessage(stream: 1, ppid: 1, bytes: Self.bytes(100_000, seed: 1)),
            SCTPMessage(stream: 2, ppid: 2, bytes: Self.bytes(100_000, seed: 2)),
            SCTPMessage(stream: 3, ppid: 3, unordered: true, bytes: Self.bytes(300, seed: 3)),
        ]
        for message in sent { try client.send(message.bytes, stream: message.stream, ppid: message.ppid, unordered: message.unordered) }
        var received: [SCTPMessage] = []
        try pair.network.run(until: {
            received += readAll(server)
            return received.count == sent.count && client.isIdle
        }, timeLimit: .seconds(3600))
        #expect(received.count == sent.count)
        for message in sent { #expect(received.first { $0.stream == message.stream } == message, "stream \(message.stream)") }
        if loss == 0 { #expect(received.first?.stream == 3) }
        // On the wire: stream 2's first fragment went before stream 1's last, and stream 3's
        // message before either ended.
        let first = pair.client.sent.flatMap(\.chunks).compactMap { chunk -> SCTPIDataChunk? in
            if case .iData(let data) = chunk { data } else { nil }
        }
        func tsn(_ stream: UInt16, _ which: (SCTPIDataChunk) -> Bool) -> UInt32? { first.first { $0.stream == stream && which($0) }?.tsn }
        let streamOneEnds = try #require(tsn(1) { $0.ending })
        #expect(try #require(tsn(2) { $0.beginning }) < streamOneEnds)
        #expect(try #require(tsn(3) { $0.beginning }) < min(streamOneEnds, try #require(tsn(2) { $0.ending })))
        #expect(server.heldForTests.fragments == 0 && server.heldForTests.waiting == 0)
    }

    // MARK: The receiver, by hand

    private func iData(_ tsn: UInt32, stream: UInt16, mid: UInt32, fsn: UInt32 = 0, unordered: Bool = false,
                       beginning: Bool = true, ending: Bool = true, _ bytes: [UInt8]) -> SCTPChunk {
        .iData(SCTPIDataChunk(tsn: tsn, stream: stream, messageID: mid, ppid: 7, fsn: fsn, unordered: unordered,
                              beginning: beginning, ending: ending, payload: bytes[...]))
    }

    /// §2.2.3: fragments found by stream, U bit and MID and ordered by FSN, whatever their TSNs;
    /// I-FORWARD-TSN (§2.3.1) skips an ordered MID and drops a partial unordered message.
    @Test func messagesAreReassembledByFSNAndSkippedByMID() throws {
        let pair = SCTPPair()
        let (_, server) = try pair.connect()
        pair.network.runToIdle(timeLimit: .seconds(1))
        let base = server.receivedTSNForTests
        // Stream 4 MID 0 in three fragments, TSNs out of FSN order, with stream 5's unordered
        // message between them.
        _ = try deliver([iData(base &+ 1, stream: 4, mid: 0, fsn: 2, beginning: false, [3]),
                         iData(base &+ 2, stream: 5, mid: 0, unordered: true, [9]),
                         iData(base &+ 3, stream: 4, mid: 0, fsn: 1, beginning: false, ending: false, [2]),
                         iData(base &+ 4, stream: 4, mid: 0, ending: false, [1])], to: pair, server)
        #expect(readAll(server) == [SCTPMessage(stream: 5, ppid: 7, unordered: true, bytes: [9]), SCTPMessage(stream: 4, ppid: 7, bytes: [1, 2, 3])])
        // MID 1 lost (TSN 5), MID 2 waits; an unordered message's first fragment (TSN 7).
        _ = try deliver([iData(base &+ 6, stream: 4, mid: 2, [5]), iData(base &+ 7, stream: 5, mid: 1, unordered: true, ending: false, [8])],
                        to: pair, server)
        #expect(readAll(server).isEmpty)
        let replies = try deliver([.iForwardTSN(newCumulativeTSN: base &+ 5, streams: [SCTPIForwardTSNStream(stream: 4, unordered: false, messageID: 1)])],
                                  to: pair, server)
        #expect(sackCumulative(replies) == base &+ 7)
        #expect(readAll(server) == [SCTPMessage(stream: 4, ppid: 7, bytes: [5])])
        #expect(server.heldForTests.fragments == 1)
        _ = try deliver([.iForwardTSN(newCumulativeTSN: base &+ 8, streams: [SCTPIForwardTSNStream(stream: 5, unordered: true, messageID: 1)])],
                        to: pair, server)
        #expect(server.heldForTests.fragments == 0 && server.heldForTests.waiting == 0)
        // A late fragment of the skipped unordered message under a TSN above the cumulative one
        // (with I-DATA a skipped message's TSNs need not be below it): dropped, not held.
        _ = try deliver([iData(base &+ 11, stream: 5, mid: 1, fsn: 1, unordered: true, beginning: false, [7])], to: pair, server)
        #expect(server.heldForTests.fragments == 0)
        // A late copy of the skipped MID 1 (a new TSN): behind the stream, dropped, not held.
        _ = try deliver([iData(base &+ 9, stream: 4, mid: 1, [4]), iData(base &+ 10, stream: 4, mid: 3, [6])], to: pair, server)
        #expect(readAll(server) == [SCTPMessage(stream: 4, ppid: 7, bytes: [6])])
        #expect(server.heldForTests.waiting == 0)
    }

    /// §2.2.3, §2.3.1: DATA on an association that uses I-DATA ends it, as does FORWARD TSN.
    @Test(arguments: [false, true])
    func theOtherChunkKindAborts(forward: Bool) throws {
        let pair = SCTPPair()
        let (_, server) = try pair.connect()
        pair.network.runToIdle(timeLimit: .seconds(1))
        let chunk: SCTPChunk = forward ? .forwardTSN(newCumulativeTSN: server.receivedTSNForTests &+ 1, streams: [])
            : .data(SCTPDataChunk(tsn: server.receivedTSNForTests &+ 1, stream: 0, ssn: 0, ppid: 0, payload: [1]))
        let replies = try deliver([chunk], to: pair, server)
        #expect(server.state == .closed)
        #expect(replies.contains { if case .abort(_, let causes) = $0 { causes.first?.code == SCTPErrorCause.protocolViolation } else { false } })
    }

    /// A far I-FORWARD-TSN with a packet full of streams costs what the state held costs.
    @Test func aFarIForwardTSNIsCheap() throws {
        let pair = SCTPPair()
        let (_, server) = try pair.connect()
        pair.network.runToIdle(timeLimit: .seconds(1))
        _ = try deliver([iData(server.receivedTSNForTests &+ 2, stream: 1, mid: 0, ending: false, [1])], to: pair, server)
        let far = server.receivedTSNForTests &+ 0x7FFF_FFF0
        let streams = (0..<145).map { (index: Int) -> SCTPIForwardTSNStream in
            SCTPIForwardTSNStream(stream: UInt16(index * 331), unordered: index % 2 == 0, messageID: UInt32(index) &* 0x0101_0101)
        }
        let start = ContinuousClock.now
        let replies = try deliver([.iForwardTSN(newCumulativeTSN: far, streams: streams)], to: pair, server)
        #expect(ContinuousClock.now - start < .seconds(1))
        #expect(sackCumulative(replies) == far)
        #expect(server.state == .established)
    }
}
