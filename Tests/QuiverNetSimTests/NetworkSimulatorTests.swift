import QuiverCore
import QuiverNetSim
import Testing

/// A node that sends a scripted burst and records arrivals.
final class ProbeNode: SimulatedNode {
    let address: SocketAddress
    var addresses: [SocketAddress] { [address] }
    var outbox: [SimulatedDatagram] = []
    var received: [(bytes: [UInt8], at: Instant)] = []
    /// The ECN codepoint of each datagram in ``received``.
    var receivedECN: [ECNCodepoint] = []
    var timers: [Instant] = []
    var fired: [Instant] = []

    init(_ text: String) { address = SocketAddress(text)! }

    func receive(_ datagram: SimulatedDatagram, at now: Instant) {
        received.append((datagram.bytes, now))
        receivedECN.append(datagram.ecn)
    }
    func nextTransmit(at now: Instant) -> SimulatedDatagram? { outbox.isEmpty ? nil : outbox.removeFirst() }
    var nextDeadline: Instant? { timers.min() }
    func handleTimeout(at now: Instant) {
        fired.append(contentsOf: timers.filter { $0 <= now })
        timers.removeAll { $0 <= now }
    }

    func send(_ count: Int, size: Int = 1000, to peer: ProbeNode, ecn: ECNCodepoint = .notECT) {
        for i in 0..<count {
            var bytes = [UInt8](repeating: 0, count: size)
            bytes[0] = UInt8(truncatingIfNeeded: i)
            bytes[1] = UInt8(truncatingIfNeeded: i >> 8)
            outbox.append(SimulatedDatagram(bytes: bytes, source: address, destination: peer.address, ecn: ecn))
        }
    }
}

@Suite("Network simulator")
struct NetworkSimulatorTests {
    static func pair(_ config: LinkConfiguration, seed: UInt64 = 1) -> (NetworkSimulator, ProbeNode, ProbeNode) {
        let net = NetworkSimulator(seed: seed)
        let a = ProbeNode("10.0.0.1:1000")
        let b = ProbeNode("10.0.0.2:2000")
        net.attach(a)
        net.attach(b)
        net.setLinks(between: a.address, and: b.address, config)
        return (net, a, b)
    }

    @Test("latency and bandwidth: arrivals spaced by serialisation time")
    func latencyAndBandwidth() {
        var c = LinkConfiguration()
        c.latency = .milliseconds(20)
        c.bandwidth = 8_000_000  // 1 byte per µs
        let (net, a, b) = Self.pair(c)
        let start = net.now
        a.send(5, size: 1000, to: b)
        net.runToIdle()
        #expect(b.received.count == 5)
        for (i, r) in b.received.enumerated() {
            #expect(r.at - start == .milliseconds(20) + .microseconds(Int64(1000 * (i + 1))))
        }
    }

    @Test("queue limit tail-drops, MTU drops, blackholes drop")
    func drops() {
        var c = LinkConfiguration()
        c.bandwidth = 1_000_000
        c.queueLimit = 5000
        c.mtu = 1200
        let (net, a, b) = Self.pair(c)
        a.send(20, size: 1000, to: b)
        a.outbox.append(SimulatedDatagram(bytes: Array(repeating: 0, count: 1300), source: a.address, destination: b.address))
        net.runToIdle()
        #expect(b.received.count == 5)
        #expect(net.counts[.dropped(.queueFull)] == 15)
        #expect(net.counts[.dropped(.tooLarge)] == 1)

        var hole = LinkConfiguration()
        let (net2, a2, b2) = Self.pair(hole)
        hole.blackholes = [net2.now..<(net2.now + .seconds(1))]
        net2.setLink(from: a2.address, to: b2.address, hole)
        a2.send(3, to: b2)
        net2.runToIdle()
        #expect(b2.received.isEmpty && net2.counts[.dropped(.blackhole)] == 3)
    }

    @Test("random loss, duplication, corruption and reordering at their rates")
    func faults() {
        var c = LinkConfiguration()
        c.lossRate = 0.2
        c.duplicateRate = 0.1
        c.corruptRate = 0.1
        c.reorderRate = 0.1
        c.reorderDelay = .milliseconds(50)
        let (net, a, b) = Self.pair(c, seed: 99)
        a.send(5000, size: 100, to: b)
        net.runToIdle()
        let lost = Double(net.counts[.dropped(.loss)] ?? 0) / 5000
        #expect(abs(lost - 0.2) < 0.03)
        let dup = Double(net.counts[.duplicated] ?? 0) / Double(5000 - (net.counts[.dropped(.loss)] ?? 0))
        #expect(abs(dup - 0.1) < 0.03)
        #expect((net.counts[.corrupted] ?? 0) > 250)
        let order = b.received.map { Int($0.bytes[0]) | Int($0.bytes[1]) << 8 }
        #expect(zip(order, order.dropFirst()).contains { $0 > $1 })
        #expect(b.received.count == 5000 - (net.counts[.dropped(.loss)] ?? 0) + (net.counts[.duplicated] ?? 0))
    }

    @Test("burst loss drops runs of datagrams")
    func burstLoss() {
        var c = LinkConfiguration()
        c.burstLoss = (enter: 0.02, exit: 0.2)
        let (net, a, b) = Self.pair(c, seed: 5)
        a.send(5000, size: 100, to: b)
        net.runToIdle()
        let dropped = net.counts[.dropped(.burstLoss)] ?? 0
        #expect(dropped > 200 && dropped < 1500)
        #expect(b.received.count == 5000 - dropped)
    }

    @Test("ECN: CE marking at random and above a queue threshold, bleaching, dropping marked datagrams")
    func ecnImpairments() {
        var random = LinkConfiguration()
        random.ceMarkRate = 0.5
        var (net, a, b) = Self.pair(random, seed: 3)
        a.send(200, size: 100, to: b, ecn: .ect0)
        a.send(100, size: 100, to: b)
        net.runToIdle()
        let marked = b.receivedECN.prefix(200).filter { $0 == .ce }.count
        #expect(marked > 60 && marked < 140)
        #expect(b.receivedECN.prefix(200).allSatisfy { $0 == .ce || $0 == .ect0 })
        #expect(b.receivedECN.suffix(100).allSatisfy { $0 == .notECT })  // only ECN-capable datagrams are marked
        #expect(net.counts[.markedCE] == marked)

        var aqm = LinkConfiguration()
        aqm.bandwidth = 8_000_000
        aqm.ceMarkQueueThreshold = 3000
        (net, a, b) = Self.pair(aqm)
        a.send(10, size: 1000, to: b, ecn: .ect0)
        net.runToIdle()
        #expect(b.receivedECN == Array(repeating: .ect0, count: 3) + Array(repeating: .ce, count: 7))

        var bleaching = LinkConfiguration()
        bleaching.bleachECN = true
        (net, a, b) = Self.pair(bleaching)
        a.send(5, size: 100, to: b, ecn: .ect0)
        net.runToIdle()
        #expect(b.receivedECN == Array(repeating: .notECT, count: 5))
        #expect(net.counts[.bleached] == 5)

        var dropping = LinkConfiguration()
        dropping.dropECNCapable = true
        (net, a, b) = Self.pair(dropping)
        a.send(5, size: 100, to: b, ecn: .ect0)
        a.send(2, size: 100, to: b)
        net.runToIdle()
        #expect(b.receivedECN == [.notECT, .notECT])
        #expect(net.counts[.dropped(.ecnCapable)] == 5)
    }

    @Test("the same seed replays the same run; timers fire at their deadlines")
    func determinism() {
        func trace(seed: UInt64) -> [Int] {
            var c = LinkConfiguration()
            c.lossRate = 0.3
            c.reorderRate = 0.3
            let (net, a, b) = Self.pair(c, seed: seed)
            a.send(300, size: 50, to: b)
            net.runToIdle()
            return b.received.map { Int($0.bytes[0]) | Int($0.bytes[1]) << 8 }
        }
        #expect(trace(seed: 7) == trace(seed: 7))
        #expect(trace(seed: 7) != trace(seed: 8))
        let (net, a, _) = Self.pair(LinkConfiguration())
        let t = net.now + .milliseconds(250)
        a.timers = [t]
        net.runToIdle()
        #expect(a.fired == [t] && net.now == t)
    }

    @Test("run(until:) reports idleness and limits instead of hanging")
    func limits() {
        let (net, _, _) = Self.pair(LinkConfiguration())
        #expect(throws: SimulationError.self) { try net.run(until: { false }) }
        final class Spinner: SimulatedNode {
            var addresses: [SocketAddress] { [SocketAddress("10.0.0.9:9")!] }
            var t = Instant(nanoseconds: 0)
            func receive(_ d: SimulatedDatagram, at now: Instant) {}
            func nextTransmit(at now: Instant) -> SimulatedDatagram? { nil }
            var nextDeadline: Instant? { t }
            func handleTimeout(at now: Instant) { t = now + .milliseconds(1) }
        }
        net.attach(Spinner())
        #expect(throws: SimulationError.self) { try net.run(until: { false }, timeLimit: .seconds(2)) }
    }

    @Test("observers see every datagram (for invariants)")
    func observers() {
        let (net, a, b) = Self.pair(LinkConfiguration())
        var sentBytes = 0
        net.observers.append { d, event, _ in if event == .sent { sentBytes += d.bytes.count } }
        a.send(10, size: 123, to: b)
        net.runToIdle()
        #expect(sentBytes == 1230)
    }
}
