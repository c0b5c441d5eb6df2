import QuiverCore
import QuiverNetSim
@testable import QuiverSCTP
import Testing

/// Hands `chunks` to the server's association from the client, as one packet; returns the
/// server's answer.
func deliver(_ chunks: [SCTPChunk], to pair: SCTPPair, _ server: SCTPAssociation) throws -> [SCTPChunk] {
    let packet = SCTPPacket(sourcePort: 5001, destinationPort: 5000, verificationTag: server.localTag, chunks: chunks)
    pair.server.endpoint.receive(packet.encoded(), from: pair.client.address, now: pair.network.now)
    var replies: [SCTPChunk] = []
    while let (bytes, _) = pair.server.endpoint.nextDatagram(now: pair.network.now) { replies += try SCTPPacket.parse(bytes).chunks }
    return replies
}

func sackCumulative(_ chunks: [SCTPChunk]) -> UInt32? {
    for chunk in chunks { if case .sack(let sack) = chunk { return sack.cumulativeTSN } }
    return nil
}

/// Partial reliability (PR-SCTP, RFC 3758): messages abandoned by their ``SCTPSendPolicy``,
/// the FORWARD TSN that makes the peer skip them, and the peer's side of it.
@Suite struct SCTPPartialReliabilityTests {
    /// A DATA chunk of the message with this PPID (of I-DATA, its first: the others carry no PPID).
    private static func isData(_ chunk: SCTPChunk, ppid: UInt32) -> Bool {
        switch chunk {
        case .data(let data): data.ppid == ppid
        case .iData(let data): data.beginning && data.ppid == ppid
        default: false
        }
    }

    static func bytes(_ count: Int, seed: Int) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ seed) } }

    @Test func bothSidesNegotiateItByDefault() throws {
        let pair = SCTPPair()
        let (client, server) = try pair.connect()
        #expect(client.peerSupportsPartialReliability && server.peerSupportsPartialReliability)
        guard case .initiation(let initiation) = pair.client.sent.first?.chunks.first else {
            Issue.record("no INIT")
            return
        }
        // §3.1's parameter, and FORWARD TSN in Supported Extensions for peers that look there.
        #expect(initiation.parameters.contains(SCTPParameter(type: SCTPParameter.forwardTSNSupported, value: [])))
        #expect(SCTPAssociation.offersPartialReliability([SCTPParameter(type: SCTPParameter.supportedExtensions, value: [192])]))
    }

    @Test(arguments: [true, false])
    func eitherSideWithoutItMeansNeither(clientOffers: Bool) throws {
        let pair = SCTPPair { $0.association.partialReliability = ($0.port == 5001) == clientOffers }
        let (client, server) = try pair.connect()
        #expect(!client.peerSupportsPartialReliability && !server.peerSupportsPartialReliability)
    }

    /// The message with PPID 99 (the second on stream 1) loses its middle fragment on every
    /// transmission; its policy abandons it. The peer skips it after our FORWARD TSN (with
    /// I-DATA, I-FORWARD-TSN): the messages after it on its stream arrive, nothing is left held
    /// on either side, and the reliable messages on the other stream (through 10 % loss)
    /// arrive byte-exact.
    @Test(arguments: [
        (SCTPSendPolicy.maxRetransmissions(0), false, false), (.maxRetransmissions(2), false, false),
        (.lifetime(.milliseconds(300)), false, false), (.maxRetransmissions(0), true, false),
        (.maxRetransmissions(0), false, true), (.lifetime(.milliseconds(300)), false, true), (.maxRetransmissions(1), true, true),
    ])
    func anAbandonedMessageIsSkipped(policy: SCTPSendPolicy, unordered: Bool, interleaving: Bool) throws {
        var link = LinkConfiguration()
        link.lossRate = 0.1
        let pair = SCTPPair(seed: 5, link: link) { $0.association.messageInterleaving = interleaving }
        let (client, server) = try pair.connect()
        #expect(client.peerSupportsMessageInterleaving == interleaving)
        pair.client.losesChunk = { chunk in
            switch chunk {
            case .data(let data): data.ppid == 99 && !data.beginning && !data.ending
            // I-DATA names the PPID in the first fragment only: the message by its MID.
            case .iData(let data): data.stream == 1 && data.unordered == unordered && data.messageID == (unordered ? 0 : 1)
                && !data.beginning && !data.ending
            default: false
            }
        }
        let lost = Self.bytes(4000, seed: 99)
        try client.send(Self.bytes(500, seed: 1), stream: 1, ppid: 1)
        try client.send(lost, stream: 1, ppid: 99, unordered: unordered, policy: policy, now: pair.network.now)
        try client.send(Self.bytes(700, seed: 2), stream: 1, ppid: 2)
        try client.send(Self.bytes(3000, seed: 3), stream: 1, ppid: 3, policy: .maxRetransmissions(50))
        let reliable = (0..<30).map { Self.bytes(100 + 211 * $0, seed: 100 + $0) }
        for message in reliable { try client.send(message, stream: 2, ppid: 7) }
        var received: [SCTPMessage] = []
        try pair.network.run(until: {
            received += readAll(server)
            return received.count == 33 && client.isIdle
        }, timeLimit: .seconds(600))
        pair.network.runToIdle(timeLimit: .seconds(5))
        received += readAll(server)
        #expect(received.filter { $0.stream == 1 }.map(\.ppid) == [1, 2, 3])
        #expect(received.filter { $0.stream == 1 }.map(\.bytes) == [Self.bytes(500, seed: 1), Self.bytes(700, seed: 2), Self.bytes(3000, seed: 3)])
        #expect(received.filter { $0.stream == 2 }.map(\.bytes) == reliable)
        #expect(client.abandonedMessages == 1)
        // Idle: the peer's cumulative TSN passed every TSN, the abandoned ones too (the FORWARD
        // TSN moved it), and nothing is left in the send buffer.
        #expect(client.isIdle)
        #expect(client.bufferedBytesForTests == 0 && client.writableBytes == client.configuration.sendBufferSize)
        #expect(server.heldForTests.fragments == 0 && server.heldForTests.waiting == 0)
        // The FORWARD TSN named stream 1 (ordered) or no stream (unordered); the I-FORWARD-TSN
        // names the kind and the message.
        let forwards = pair.client.sent.flatMap(\.chunks).compactMap { chunk -> [SCTPIForwardTSNStream]? in
            switch chunk {
            case .forwardTSN(_, let streams): streams.map { SCTPIForwardTSNStream(stream: $0.stream, unordered: false, messageID: UInt32($0.ssn)) }
            case .iForwardTSN(_, let streams): streams
            default: nil
            }
        }
        #expect(!forwards.isEmpty)
        let skipped = SCTPIForwardTSNStream(stream: 1, unordered: unordered, messageID: unordered ? 0 : 1)
        #expect(forwards.allSatisfy { unordered && !interleaving ? $0.isEmpty : $0 == [skipped] })
        #expect(pair.client.sent.flatMap(\.chunks).allSatisfy { chunk in
            switch chunk {
            case .data, .forwardTSN: !interleaving
            case .iData, .iForwardTSN: interleaving
            default: true
            }
        })
    }

    /// TR3: a message whose lifetime is over before it gets a TSN is dropped without one (and
    /// without an SSN, so no FORWARD TSN is needed).
    @Test func aMessageExpiredBeforeItsTSNTakesNone() throws {
        let pair = SCTPPair()
        let (client, server) = try pair.connect()
        try client.send([1], stream: 0, policy: .lifetime(.milliseconds(10)), now: Instant(nanoseconds: pair.network.now.nanoseconds - 1_000_000_000))
        try client.send([2], stream: 0)
        var received: [SCTPMessage] = []
        try pair.network.run(until: {
            received += readAll(server)
            return !received.isEmpty && client.isIdle
        })
        #expect(received.map(\.bytes) == [[2]])
        #expect(client.abandonedMessages == 1 && client.bufferedBytesForTests == 0)
        #expect(!pair.client.sent.flatMap(\.chunks).contains { if case .forwardTSN = $0 { true } else { false } })
    }

    /// A peer without PR-SCTP gets every message, whatever its policy.
    @Test func withoutThePeersSupportEveryMessageIsReliable() throws {
        let pair = SCTPPair { $0.association.partialReliability = $0.port == 5001 }
        let (client, server) = try pair.connect()
        var losses = 0
        pair.client.losesChunk = { chunk in
            guard Self.isData(chunk, ppid: 99), losses < 4 else { return false }
            losses += 1
            return true
        }
        let messages = (0..<5).map { Self.bytes(2000, seed: $0) }
        for (index, message) in messages.enumerated() {
            try client.send(message, stream: 1, ppid: index == 1 ? 99 : 1, policy: .maxRetransmissions(0), now: pair.network.now)
        }
        var received: [SCTPMessage] = []
        try pair.network.run(until: {
            received += readAll(server)
            return received.count == messages.count
        }, timeLimit: .seconds(600))
        #expect(received.map(\.bytes) == messages)
        #expect(client.abandonedMessages == 0)
        #expect(!pair.client.sent.flatMap(\.chunks).contains { if case .forwardTSN = $0 { true } else { false } })
    }

    /// Loss, reordering and duplication with a mix of policies: every reliable message arrives
    /// byte-exact, a limited one byte-exact or not at all, ordered streams in order, and
    /// nothing is left held when all is done.
    @Test(arguments: [0.1, 0.3], [false, true])
    func mixedPoliciesUnderLoss(loss: Double, interleaving: Bool) throws {
        var link = LinkConfiguration()
        link.lossRate = loss
        link.reorderRate = 0.1
        link.duplicateRate = 0.05
        link.bandwidth = 20_000_000
        let pair = SCTPPair(seed: 9, link: link) { $0.association.messageInterleaving = interleaving }
        let (client, server) = try pair.connect()
        var sent: [(message: SCTPMessage, policy: SCTPSendPolicy)] = []
        var generator = SplitMix64(seed: 17)
        for index in 0..<300 {
            let policy: SCTPSendPolicy = switch index % 4 {
            case 0: .maxRetransmissions(0)
            case 1: .lifetime(.milliseconds(1500))
            default: .reliable
            }
            let message = SCTPMessage(stream: UInt16(index % 3), ppid: UInt32(index), unordered: index % 7 == 0,
                                      bytes: Self.bytes(1 + Int(generator.next() % 5000), seed: index))
            sent.append((message, policy))
        }
        var queued = 0
        var received: [SCTPMessage] = []
        try pair.network.run(until: {
            while queued < sent.count, client.writableBytes >= sent[queued].message.bytes.count {
                let message = sent[queued].message
                try? client.send(message.bytes, stream: message.stream, ppid: message.ppid, unordered: message.unordered,
                                 policy: sent[queued].policy, now: pair.network.now)
                queued += 1
            }
            received += readAll(server)
            return queued == sent.count && client.isIdle
        }, timeLimit: .seconds(3600))
        received += readAll(server)
        let byID = Dictionary(received.map { ($0.ppid, [$0]) }, uniquingKeysWith: +)
        var missing = 0
        for (message, policy) in sent {
            let copies = byID[message.ppid] ?? []
            if copies.isEmpty { missing += 1 }
            // By PPID: a failure does not print kilobytes.
            #expect(copies.count == (policy == .reliable ? 1 : copies.isEmpty ? 0 : 1), "message \(message.ppid)")
            #expect(copies.allSatisfy { $0 == message }, "message \(message.ppid)")
            if policy == .reliable { #expect(!copies.isEmpty, "reliable message \(message.ppid)") }
        }
        // An abandoned message may have arrived all the same (its SACK was lost).
        #expect(missing <= client.abandonedMessages)
        if loss > 0 { #expect(client.abandonedMessages > 0) }
        for stream: UInt16 in 0..<3 {
            let order = received.filter { $0.stream == stream && !$0.unordered }.map(\.ppid)
            #expect(order == order.sorted())
        }
        #expect(client.bufferedBytesForTests == 0)
        #expect(server.heldForTests.fragments == 0 && server.heldForTests.waiting == 0)
        client.shutdown(now: pair.network.now)
        try pair.network.run(until: { client.state == .closed && server.state == .closed }, timeLimit: .seconds(3600))
        #expect(client.closeReason == .shutdown && server.closeReason == .shutdown)
    }

    // MARK: The receiver

    /// §3.6 by hand: fragments at or below the new cumulative TSN are dropped, what arrived
    /// beyond it moves the cumulative TSN on, and the ordered stream listed delivers what
    /// waited behind the skipped SSN.
    @Test func aForwardTSNSkipsAndDeliversWhatWaited() throws {
        let pair = SCTPPair { $0.association.messageInterleaving = false }
        let (_, server) = try pair.connect()
        pair.network.runToIdle(timeLimit: .seconds(1))
        let base = server.receivedTSNForTests
        func data(_ offset: UInt32, ssn: UInt16, beginning: Bool, ending: Bool, _ byte: UInt8) -> SCTPChunk {
            .data(SCTPDataChunk(tsn: base &+ offset, stream: 4, ssn: ssn, ppid: 0, beginning: beginning, ending: ending, payload: [byte]))
        }
        // SSN 0 in TSNs 1–3 (2 lost), SSN 1 whole in 4, SSN 2 starting in 5 (6 still to come).
        _ = try deliver([data(1, ssn: 0, beginning: true, ending: false, 1), data(3, ssn: 0, beginning: false, ending: true, 3),
                         data(4, ssn: 1, beginning: true, ending: true, 4), data(5, ssn: 2, beginning: true, ending: false, 5)],
                        to: pair, server)
        #expect(readAll(server).isEmpty)
        let replies = try deliver([.forwardTSN(newCumulativeTSN: base &+ 2, streams: [SCTPForwardTSNStream(stream: 4, ssn: 0)])], to: pair, server)
        #expect(sackCumulative(replies) == base &+ 5)
        #expect(readAll(server) == [SCTPMessage(stream: 4, bytes: [4])])
        #expect(server.heldForTests.fragments == 1)  // SSN 2's first fragment, still whole-able
        _ = try deliver([data(6, ssn: 2, beginning: false, ending: true, 6)], to: pair, server)
        #expect(readAll(server) == [SCTPMessage(stream: 4, bytes: [5, 6])])
        // Out of date: only a SACK.
        #expect(sackCumulative(try deliver([.forwardTSN(newCumulativeTSN: base &+ 3, streams: [])], to: pair, server)) == base &+ 6)
    }

    /// A hostile FORWARD TSN: a cumulative TSN 2³¹ − 16 ahead and a packet full of streams,
    /// most of them not open. It costs what the state held costs, not the distance.
    @Test func aFarForwardTSNIsCheap() throws {
        let pair = SCTPPair { $0.association.messageInterleaving = false }
        let (_, server) = try pair.connect()
        pair.network.runToIdle(timeLimit: .seconds(1))
        let far = server.receivedTSNForTests &+ 0x7FFF_FFF0
        let streams = (0..<290).map { SCTPForwardTSNStream(stream: UInt16($0 * 211), ssn: UInt16(truncatingIfNeeded: $0 * 7919)) }
        let start = ContinuousClock.now
        let replies = try deliver([.forwardTSN(newCumulativeTSN: far, streams: streams)], to: pair, server)
        #expect(ContinuousClock.now - start < .seconds(1))
        #expect(sackCumulative(replies) == far)
        #expect(server.state == .established)
        #expect(server.heldForTests.fragments == 0 && server.heldForTests.waiting == 0)
    }

    /// RFC 3758 §3.3.3 with RFC 9260 §3.2: from a peer that did not offer PR-SCTP, FORWARD TSN
    /// is an unrecognized chunk (type 192: skipped and reported); the cumulative TSN stays.
    @Test func aForwardTSNWithoutNegotiationIsReportedUnrecognized() throws {
        let pair = SCTPPair { $0.association.partialReliability = false }
        let (_, server) = try pair.connect()
        pair.network.runToIdle(timeLimit: .seconds(1))
        let before = server.receivedTSNForTests
        let replies = try deliver([.forwardTSN(newCumulativeTSN: before &+ 5, streams: []), .heartbeat(info: [1])], to: pair, server)
        #expect(server.receivedTSNForTests == before)
        #expect(replies.contains { if case .error(let causes) = $0 { causes.first?.code == SCTPErrorCause.unrecognizedChunkType } else { false } })
        #expect(replies.contains(.heartbeatAck(info: [1])))  // the chunk after it was processed
    }
}
