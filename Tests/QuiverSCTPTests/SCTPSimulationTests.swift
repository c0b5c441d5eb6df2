import QuiverCore
import QuiverNetSim
import Synchronization
@testable import QuiverSCTP
import Testing

/// An ``SCTPEndpoint`` attached to the simulated network.
final class SCTPNode: SimulatedNode {
    let endpoint: SCTPEndpoint
    let address: SocketAddress
    /// Every datagram it sent, parsed (for tests that look at the wire).
    var sent: [SCTPPacket] = []
    /// Chunks the network loses on the way out (on every transmission): removed from the
    /// packet, which is resealed, or dropped when nothing is left.
    var losesChunk: ((SCTPChunk) -> Bool)?

    init(_ address: String, port: UInt16 = 5000, configure: (inout SCTPEndpoint.Configuration) -> Void = { _ in }) {
        self.address = SocketAddress(host: address, port: 9899)!
        var configuration = SCTPEndpoint.Configuration(port: port)
        configuration.association.random = SCTPNode.seededRandom(address)
        configure(&configuration)
        endpoint = SCTPEndpoint(configuration: configuration)
    }

    /// Deterministic randomness per node, so a seed reproduces a run.
    static func seededRandom(_ label: String) -> RandomSource {
        let generator = Mutex(SplitMix64(seed: label.utf8.reduce(7) { $0 &* 31 &+ UInt64($1) }))
        return RandomSource { buffer in
            generator.withLock { generator in
                for index in buffer.indices { buffer[index] = UInt8(truncatingIfNeeded: generator.next()) }
            }
        }
    }

    var addresses: [SocketAddress] { [address] }
    func receive(_ datagram: SimulatedDatagram, at now: Instant) { endpoint.receive(datagram.bytes, from: datagram.source, now: now) }
    func nextTransmit(at now: Instant) -> SimulatedDatagram? {
        guard case (var bytes, let destination)? = endpoint.nextDatagram(now: now) else { return nil }
        if var packet = try? SCTPPacket.parse(bytes) {
            sent.append(packet)
            if let losesChunk, packet.chunks.contains(where: losesChunk) {
                packet.chunks.removeAll(where: losesChunk)
                // An empty packet stands for the lost one (the network delivers it, we ignore it).
                bytes = packet.chunks.isEmpty ? [] : packet.encoded()
            }
        }
        return SimulatedDatagram(bytes: bytes, source: address, destination: destination)
    }
    var nextDeadline: Instant? { endpoint.nextDeadline }
    func handleTimeout(at now: Instant) { endpoint.handleTimeout(now: now) }
}

/// A client and a server endpoint on a simulated link.
struct SCTPPair {
    let network: NetworkSimulator
    let client: SCTPNode
    let server: SCTPNode

    init(seed: UInt64 = 1, link: LinkConfiguration = LinkConfiguration(),
         configure: (inout SCTPEndpoint.Configuration) -> Void = { _ in }) {
        network = NetworkSimulator(seed: seed)
        client = SCTPNode("10.0.0.1", port: 5001) {
            $0.acceptsAssociations = false
            configure(&$0)
        }
        server = SCTPNode("10.0.0.2", port: 5000, configure: configure)
        network.attach(client)
        network.attach(server)
        network.setLinks(between: client.address, and: server.address, link)
    }

    /// Connects and runs until the server accepted the association.
    func connect() throws -> (client: SCTPAssociation, server: SCTPAssociation) {
        let association = client.endpoint.connect(to: server.address, port: 5000, now: network.now)
        var accepted: SCTPAssociation?
        try network.run(until: {
            accepted = accepted ?? server.endpoint.accept()
            return accepted != nil && association.state == .established
        }, timeLimit: .seconds(120))
        return (association, accepted!)
    }
}

/// Reads every message an association has.
func readAll(_ association: SCTPAssociation) -> [SCTPMessage] {
    var messages: [SCTPMessage] = []
    while let message = association.read() { messages.append(message) }
    return messages
}

@Suite struct SCTPSimulationTests {
    @Test func handshakeEchoAndShutdown() throws {
        let pair = SCTPPair()
        let (client, server) = try pair.connect()
        #expect(client.nextEvent() == .established)
        #expect(server.nextEvent() == .established)
        #expect(client.outboundStreams == 16 && server.inboundStreams == 16)

        try client.send(Array("hello".utf8), stream: 3, ppid: 51)
        var received: [SCTPMessage] = []
        try pair.network.run(until: {
            received += readAll(server)
            return !received.isEmpty
        })
        #expect(received == [SCTPMessage(stream: 3, ppid: 51, bytes: Array("hello".utf8))])
        try server.send(received[0].bytes, stream: received[0].stream, ppid: received[0].ppid)
        var echoed: [SCTPMessage] = []
        try pair.network.run(until: {
            echoed += readAll(client)
            return !echoed.isEmpty
        })
        #expect(echoed == received)

        client.shutdown(now: pair.network.now)
        try pair.network.run(until: { client.state == .closed && server.state == .closed })
        #expect(client.closeReason == .shutdown)
        #expect(server.closeReason == .shutdown)
        pair.network.runToIdle()
        #expect(pair.client.endpoint.associationCount == 0 && pair.server.endpoint.associationCount == 0)
    }

    /// RFC 9260 §5.1.3: nothing is kept for an INIT; only a valid COOKIE ECHO creates state.
    @Test func serverKeepsNothingBeforeTheCookieEcho() throws {
        let pair = SCTPPair()
        _ = pair.client.endpoint.connect(to: pair.server.address, port: 5000, now: pair.network.now)
        // Deliver the INIT, hold back the COOKIE ECHO.
        var cookieEchoes = 0
        pair.network.setLink(from: pair.client.address, to: pair.server.address, {
            var link = LinkConfiguration()
            link.blackholes = [pair.network.now + .milliseconds(15)..<pair.network.now + .seconds(1000)]
            return link
        }())
        pair.network.observers.append { datagram, event, _ in
            if event == .sent, let packet = try? SCTPPacket.parse(datagram.bytes), case .cookieEcho = packet.chunks.first { cookieEchoes += 1 }
        }
        try pair.network.run(until: { cookieEchoes > 0 })
        #expect(pair.server.endpoint.associationCount == 0)
        #expect(pair.server.sent.count == 1)
        guard case .initiationAck = pair.server.sent.first?.chunks.first else {
            Issue.record("the server did not answer the INIT with an INIT ACK")
            return
        }
    }

    /// RFC 9260 §5.2.1 and §5.2.4 B: both sides send INIT at once (WebRTC peers do); each
    /// answers the other's with its own tag, and one association results on each side.
    @Test func simultaneousOpen() throws {
        let pair = SCTPPair { $0.acceptsAssociations = true }
        let fromClient = pair.client.endpoint.connect(to: pair.server.address, port: 5000, now: pair.network.now)
        let fromServer = pair.server.endpoint.connect(to: pair.client.address, port: 5001, now: pair.network.now)
        try pair.network.run(until: { fromClient.state == .established && fromServer.state == .established })
        pair.network.runToIdle(timeLimit: .seconds(5))
        #expect(pair.client.endpoint.associationCount == 1 && pair.server.endpoint.associationCount == 1)
        #expect(pair.client.endpoint.accept() == nil && pair.server.endpoint.accept() == nil)
        try fromClient.send([1, 2, 3], stream: 2)
        var received: [SCTPMessage] = []
        try pair.network.run(until: {
            received += readAll(fromServer)
            return !received.isEmpty
        })
        #expect(received == [SCTPMessage(stream: 2, bytes: [1, 2, 3])])
    }

    /// A forged or altered cookie creates nothing; a replayed one maps to the same association.
    @Test func alteredCookiesAreDropped() throws {
        let pair = SCTPPair()
        let (_, _) = try pair.connect()
        let echo = try #require(pair.client.sent.first { if case .cookieEcho = $0.chunks.first { true } else { false } })
        guard case .cookieEcho(var cookie) = echo.chunks[0] else { return }
        cookie[5] ^= 1
        let forged = SCTPPacket(sourcePort: echo.sourcePort, destinationPort: echo.destinationPort,
                                verificationTag: echo.verificationTag, chunks: [.cookieEcho(cookie: cookie)])
        pair.server.endpoint.receive(forged.encoded(), from: pair.client.address, now: pair.network.now)
        #expect(pair.server.endpoint.statistics.invalidCookies == 1)
        #expect(pair.server.endpoint.associationCount == 1)
        // The genuine one again (its COOKIE ACK lost): answered by the same association.
        pair.server.endpoint.receive(echo.encoded(), from: pair.client.address, now: pair.network.now)
        #expect(pair.server.endpoint.associationCount == 1)
        let reply = try #require(pair.server.endpoint.nextDatagram(now: pair.network.now))
        #expect(try SCTPPacket.parse(reply.bytes).chunks.first == .cookieAck)
    }

    /// §5.1.5 step 3 and §5.2.6: a cookie past its lifetime gets a Stale Cookie error, and the
    /// client starts over with a new INIT.
    @Test func staleCookieRestartsTheHandshake() throws {
        let pair = SCTPPair(link: {
            var link = LinkConfiguration()
            link.latency = .seconds(2)
            return link
        }()) { $0.cookies.lifetime = .seconds(3) }
        // 4 s from INIT ACK to COOKIE ECHO: stale. Then the path gets fast and the new INIT works.
        let association = pair.client.endpoint.connect(to: pair.server.address, port: 5000, now: pair.network.now)
        try pair.network.run(until: { pair.server.endpoint.statistics.staleCookies == 1 }, timeLimit: .seconds(300))
        pair.network.setLinks(between: pair.client.address, and: pair.server.address, LinkConfiguration())
        try pair.network.run(until: { association.state == .established }, timeLimit: .seconds(300))
        #expect(pair.client.sent.filter { if case .initiation = $0.chunks.first { true } else { false } }.count >= 2)
    }

    /// §8.4 (8): a packet of no association is answered by ABORT with the T bit and its tag.
    @Test func outOfTheBluePacketsGetAnAbort() throws {
        let pair = SCTPPair()
        let stray = SCTPPacket(sourcePort: 5001, destinationPort: 5000, verificationTag: 0x1234_5678,
                               chunks: [.data(SCTPDataChunk(tsn: 1, stream: 0, ssn: 0, ppid: 0, payload: [1, 2, 3]))])
        pair.server.endpoint.receive(stray.encoded(), from: pair.client.address, now: pair.network.now)
        let reply = try #require(pair.server.endpoint.nextDatagram(now: pair.network.now))
        let packet = try SCTPPacket.parse(reply.bytes)
        #expect(packet.verificationTag == 0x1234_5678)
        #expect(packet.chunks == [.abort(tagReflected: true, causes: [])])
        // Never an answer to an ABORT, a SHUTDOWN COMPLETE or a COOKIE ACK.
        for chunk: SCTPChunk in [.abort(tagReflected: false, causes: []), .shutdownComplete(tagReflected: false), .cookieAck] {
            let packet = SCTPPacket(sourcePort: 5001, destinationPort: 5000, verificationTag: 9, chunks: [chunk])
            pair.server.endpoint.receive(packet.encoded(), from: pair.client.address, now: pair.network.now)
            #expect(pair.server.endpoint.nextDatagram(now: pair.network.now) == nil)
        }
        // A SHUTDOWN ACK gets a SHUTDOWN COMPLETE with the T bit (§8.4 (5)).
        let shutdownAck = SCTPPacket(sourcePort: 5001, destinationPort: 5000, verificationTag: 77, chunks: [.shutdownAck])
        pair.server.endpoint.receive(shutdownAck.encoded(), from: pair.client.address, now: pair.network.now)
        let complete = try SCTPPacket.parse(try #require(pair.server.endpoint.nextDatagram(now: pair.network.now)).bytes)
        #expect(complete.verificationTag == 77 && complete.chunks == [.shutdownComplete(tagReflected: true)])
    }

    @Test func userAbortReachesThePeer() throws {
        let pair = SCTPPair()
        let (client, server) = try pair.connect()
        server.abort(reason: "going away", now: pair.network.now)
        try pair.network.run(until: { client.state == .closed })
        guard case .abortedByPeer(let causes) = client.closeReason else {
            Issue.record("closed with \(String(describing: client.closeReason))")
            return
        }
        #expect(causes == [SCTPErrorCause(code: SCTPErrorCause.userInitiatedAbort, info: Array("going away".utf8))])
        #expect("\(causes[0])" == "user-initiated abort: going away")
    }

    /// A peer that vanishes: Association.Max.Retrans timeouts, then the association closes.
    @Test func vanishedPeerTimesOut() throws {
        let pair = SCTPPair()
        let (client, _) = try pair.connect()
        var link = LinkConfiguration()
        link.blackholes = [pair.network.now..<pair.network.now + .seconds(100_000)]
        pair.network.setLinks(between: pair.client.address, and: pair.server.address, link)
        try client.send([1, 2, 3], stream: 0)
        try pair.network.run(until: { client.state == .closed }, timeLimit: .seconds(3600))
        #expect(client.closeReason == .timedOut)
        #expect(client.timeouts == 11)
    }

    /// An idle association's heartbeat keeps it open, and detects a peer that went away.
    @Test func heartbeatsDetectADeadPeerOfAnIdleAssociation() throws {
        let pair = SCTPPair()
        let (client, server) = try pair.connect()
        pair.network.advance(to: pair.network.now + .seconds(300))
        #expect(client.state == .established && server.state == .established)
        #expect(pair.client.sent.contains { $0.chunks.contains { if case .heartbeat = $0 { true } else { false } } })
        var link = LinkConfiguration()
        link.blackholes = [pair.network.now..<pair.network.now + .seconds(100_000)]
        pair.network.setLinks(between: pair.client.address, and: pair.server.address, link)
        try pair.network.run(until: { client.state == .closed && server.state == .closed }, timeLimit: .seconds(7200))
        #expect(client.closeReason == .timedOut && server.closeReason == .timedOut)
    }

    /// The fault matrix: loss up to 30 %, reordering, duplication and corruption; every
    /// message on every stream arrives exactly once, ordered streams in order; with DATA and
    /// with I-DATA.
    @Test(arguments: [
        (0.0, 0.0, 0.0, 0.0), (0.05, 0.0, 0.0, 0.0), (0.3, 0.0, 0.0, 0.0), (0.0, 0.3, 0.0, 0.0),
        (0.0, 0.0, 0.2, 0.0), (0.0, 0.0, 0.0, 0.1), (0.1, 0.1, 0.1, 0.05),
    ], [false, true])
    func faultMatrix(faults: (loss: Double, reorder: Double, duplicate: Double, corrupt: Double), interleaving: Bool) throws {
        let (loss, reorder, duplicate, corrupt) = faults
        var link = LinkConfiguration()
        link.lossRate = loss
        link.reorderRate = reorder
        link.duplicateRate = duplicate
        link.corruptRate = corrupt
        link.bandwidth = 20_000_000
        // DATA, and I-DATA (RFC 8260) when both offer it.
        let pair = SCTPPair(seed: 7, link: link) { $0.association.messageInterleaving = interleaving }
        let (client, server) = try pair.connect()
        #expect(client.peerSupportsMessageInterleaving == interleaving)
        // 4 ordered streams and unordered messages, sizes from 1 byte to 5 fragments.
        var sent: [SCTPMessage] = []
        var generator = SplitMix64(seed: 42)
        for index in 0..<300 {
            let size = 1 + Int(generator.next() % 6000)
            let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ index) }
            let message = SCTPMessage(stream: UInt16(index % 4), ppid: UInt32(index), unordered: index % 5 == 0, bytes: bytes)
            sent.append(message)
        }
        var queued = 0
        var received: [SCTPMessage] = []
        try pair.network.run(until: {
            while queued < sent.count, client.writableBytes >= sent[queued].bytes.count {
                let message = sent[queued]
                try? client.send(message.bytes, stream: message.stream, ppid: message.ppid, unordered: message.unordered)
                queued += 1
            }
            received += readAll(server)
            return received.count == sent.count
        }, timeLimit: .seconds(3600))
        if loss > 0 { #expect(client.retransmittedChunks > 0) }
        // Exactly once each, by ppid (unique).
        #expect(received.map(\.ppid).sorted() == sent.map(\.ppid))
        let byID = Dictionary(uniqueKeysWithValues: received.map { ($0.ppid, $0) })
        for message in sent { #expect(byID[message.ppid] == message) }
        // Ordered messages in send order within their stream.
        for stream: UInt16 in 0..<4 {
            let order = received.filter { $0.stream == stream && !$0.unordered }.map(\.ppid)
            #expect(order == order.sorted())
        }
        client.shutdown(now: pair.network.now)
        try pair.network.run(until: { client.state == .closed && server.state == .closed }, timeLimit: .seconds(3600))
        #expect(client.closeReason == .shutdown && server.closeReason == .shutdown)
    }

    /// The receiver window: a reader that stops reading stops the sender, which resumes when
    /// it reads again; nothing beyond the receive buffer is held.
    @Test func receiveWindowStopsAndResumesTheSender() throws {
        let pair = SCTPPair { $0.association.receiveBufferSize = 64 * 1024 }
        let (client, server) = try pair.connect()
        let message = [UInt8](repeating: 0xAB, count: 8 * 1024)
        var queued = 0
        try pair.network.run(until: {
            while queued < 40, client.writableBytes >= message.count {
                try? client.send(message, stream: 0)
                queued += 1
            }
            return queued == 40
        })
        pair.network.advance(to: pair.network.now + .seconds(30))
        #expect(!client.isIdle)  // the window stopped it
        var received = 0
        try pair.network.run(until: {
            received += readAll(server).count
            return received == 40
        }, timeLimit: .seconds(600))
        #expect(client.retransmittedChunks < 20)
    }

    /// Garbage, truncations and bit flips of real packets: dropped, no crash, no state.
    @Test func malformedDatagramsAreDropped() throws {
        let pair = SCTPPair()
        let (_, _) = try pair.connect()
        var generator = SplitMix64(seed: 3)
        let samples = pair.client.sent.map { $0.encoded() }
        for round in 0..<2000 {
            var bytes = samples[round % samples.count]
            switch round % 3 {
            case 0: bytes = Array(bytes.prefix(Int(generator.next() % UInt64(bytes.count + 1))))
            case 1: bytes[Int(generator.next() % UInt64(bytes.count))] ^= UInt8(truncatingIfNeeded: generator.next() | 1)
            default: bytes = (0..<Int(generator.next() % 200)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            }
            pair.server.endpoint.receive(bytes, from: pair.client.address, now: pair.network.now)
        }
        // Resealed garbage chunks too (valid checksum, nonsense inside).
        for _ in 0..<2000 {
            var bytes: [UInt8] = [0x13, 0x89, 0x13, 0x88, 0, 0, 0, 0, 0, 0, 0, 0]
            bytes += (0..<Int(generator.next() % 64)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            SCTPPacket.seal(&bytes)
            pair.server.endpoint.receive(bytes, from: pair.client.address, now: pair.network.now)
        }
        #expect(pair.server.endpoint.associationCount == 1)
    }
}
