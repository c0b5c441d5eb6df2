public import QuiverCore

/// A datagram in flight between simulated nodes.
public struct SimulatedDatagram: Sendable, Hashable {
    public var bytes: [UInt8]
    public var source: SocketAddress
    public var destination: SocketAddress
    public var ecn: ECNCodepoint

    public init(bytes: [UInt8], source: SocketAddress, destination: SocketAddress, ecn: ECNCodepoint = .notECT) {
        self.bytes = bytes
        self.source = source
        self.destination = destination
        self.ecn = ecn
    }
}

/// Something attached to the simulated network: a QUIC connection engine, a whole endpoint,
/// or a test stub. The simulator drives it exactly as a real driver would: deliver, poll
/// for output, fire timers — always with the virtual time.
public protocol SimulatedNode: AnyObject {
    /// The addresses this node receives on.
    var addresses: [SocketAddress] { get }
    /// A datagram arrived.
    func receive(_ datagram: SimulatedDatagram, at now: Instant)
    /// The next datagram the node wants to send now, or `nil`.
    func nextTransmit(at now: Instant) -> SimulatedDatagram?
    /// When the node next needs ``handleTimeout(at:)``.
    var nextDeadline: Instant? { get }
    /// Its deadline passed.
    func handleTimeout(at now: Instant)
}

/// One direction of a link: delay, capacity and faults. All randomness comes from the
/// simulator's seeded generator, so a seed reproduces a run exactly.
public struct LinkConfiguration: Sendable {
    /// One-way propagation delay.
    public var latency: Duration = .milliseconds(10)
    /// Bottleneck rate in bits per second (`nil`: infinite).
    public var bandwidth: UInt64?
    /// Bytes the bottleneck queue holds before tail-dropping.
    public var queueLimit: Int = 256 * 1024
    /// Larger datagrams are dropped.
    public var mtu: Int = 1500
    /// Independent loss probability per datagram.
    public var lossRate: Double = 0
    /// Gilbert–Elliott burst loss: probability of entering / leaving the lossy state per
    /// datagram; in the lossy state every datagram is lost.
    public var burstLoss: (enter: Double, exit: Double)?
    /// Probability that a datagram is held back by ``reorderDelay`` (arrives after later ones).
    public var reorderRate: Double = 0
    public var reorderDelay: Duration = .milliseconds(5)
    /// Probability that a datagram is delivered twice.
    public var duplicateRate: Double = 0
    /// Probability that one random bit of a datagram is flipped.
    public var corruptRate: Double = 0
    /// Periods during which everything is dropped (virtual time).
    public var blackholes: [Range<Instant>] = []
    /// Probability that an ECN-capable datagram (ECT(0) or ECT(1)) arrives marked ECN-CE
    /// instead (RFC 3168): a router signalling congestion without dropping.
    public var ceMarkRate: Double = 0
    /// With a ``bandwidth``: ECN-capable datagrams that find at least this many bytes queued
    /// at the bottleneck are marked ECN-CE (an AQM's step marking, as L4S and DCTCP use).
    public var ceMarkQueueThreshold: Int?
    /// Clears the ECN field of every datagram (a middlebox that bleaches it).
    public var bleachECN = false
    /// Drops every datagram whose ECN field is not not-ECT (a faulty middlebox, RFC 9000 §13.4.2).
    public var dropECNCapable = false

    public init() {}
}

/// What happened to a datagram, reported to observers (for invariants and traces).
public enum NetworkEvent: Sendable, Hashable {
    case sent
    case delivered
    case dropped(DropReason)
    case duplicated
    case corrupted
    case reordered
    /// The datagram's ECN field was set to ECN-CE (``LinkConfiguration/ceMarkRate``,
    /// ``LinkConfiguration/ceMarkQueueThreshold``).
    case markedCE
    /// The datagram's ECN field was cleared (``LinkConfiguration/bleachECN``).
    case bleached
}

/// Why the network dropped a datagram.
public enum DropReason: Sendable, Hashable {
    case loss, burstLoss, blackhole, queueFull, tooLarge, noRoute
    /// The datagram was ECN-capable (``LinkConfiguration/dropECNCapable``).
    case ecnCapable
}

/// A deterministic discrete-event network with a virtual clock.
///
/// ```swift
/// let net = NetworkSimulator(seed: 1)
/// net.attach(client); net.attach(server)
/// net.setLink(from: clientAddress, to: serverAddress, LinkConfiguration())
/// try net.run(until: { server.isDone }, timeLimit: .seconds(30))
/// ```
public final class NetworkSimulator {
    /// The virtual time.
    public private(set) var now: Instant
    private var rng: SplitMix64
    private var nodes: [any SimulatedNode] = []
    private var links: [LinkKey: Link] = [:]
    /// The link used for pairs without their own configuration.
    public var defaultLink = LinkConfiguration()
    private var queue = MinHeap<ScheduledDelivery>()
    private var sequence: UInt64 = 0
    /// Called for every datagram event; use it to assert invariants (amplification limits…).
    public var observers: [(SimulatedDatagram, NetworkEvent, Instant) -> Void] = []
    /// Counts per event, for tests.
    public private(set) var counts: [NetworkEvent: Int] = [:]

    private struct LinkKey: Hashable {
        let from: SocketAddress
        let to: SocketAddress
    }

    private struct Link {
        var configuration: LinkConfiguration
        var busyUntil: Instant
        var inQueue: [(departure: Instant, bytes: Int)] = []
        var burstLossState = false
    }

    /// Creates a simulator whose randomness derives from `seed`, starting at `start`.
    public init(seed: UInt64, start: Instant = Instant(nanoseconds: 1_000_000_000)) {
        rng = SplitMix64(seed: seed)
        now = start
    }

    /// Attaches a node.
    public func attach(_ node: any SimulatedNode) { nodes.append(node) }

    /// Configures the direction `from` → `to`.
    public func setLink(from: SocketAddress, to: SocketAddress, _ configuration: LinkConfiguration) {
        links[LinkKey(from: from, to: to)] = Link(configuration: configuration, busyUntil: now)
    }

    /// Configures both directions between two addresses alike.
    public func setLinks(between a: SocketAddress, and b: SocketAddress, _ configuration: LinkConfiguration) {
        setLink(from: a, to: b, configuration)
        setLink(from: b, to: a, configuration)
    }

    /// A uniformly random value from the simulator's generator (for tests that need one).
    public func random() -> Double { rng.nextDouble() }

    private func record(_ d: SimulatedDatagram, _ event: NetworkEvent) {
        counts[event, default: 0] += 1
        for observer in observers { observer(d, event, now) }
    }

    /// Sends a datagram into the network from outside a node (tests, NAT rebinding tricks).
    public func inject(_ datagram: SimulatedDatagram) {
        record(datagram, .sent)
        let key = LinkKey(from: datagram.source, to: datagram.destination)
        var link = links[key] ?? Link(configuration: defaultLink, busyUntil: now)
        defer { links[key] = link }
        let c = link.configuration
        if c.blackholes.contains(where: { $0.contains(now) }) { return record(datagram, .dropped(.blackhole)) }
        if datagram.bytes.count > c.mtu { return record(datagram, .dropped(.tooLarge)) }
        if c.dropECNCapable, datagram.ecn != .notECT { return record(datagram, .dropped(.ecnCapable)) }
        if let burst = c.burstLoss {
            link.burstLossState = link.burstLossState ? rng.nextDouble() >= burst.exit : rng.nextDouble() < burst.enter
            if link.burstLossState { return record(datagram, .dropped(.burstLoss)) }
        }
        if c.lossRate > 0 && rng.nextDouble() < c.lossRate { return record(datagram, .dropped(.loss)) }
        // Bottleneck: serialisation and a byte-limited queue.
        link.inQueue.removeAll { $0.departure <= now }
        var departure = now
        var congested = false
        if let bandwidth = c.bandwidth, bandwidth > 0 {
            let queued = link.inQueue.reduce(0) { $0 + $1.bytes }
            if let threshold = c.ceMarkQueueThreshold, queued >= threshold { congested = true }
            if queued + datagram.bytes.count > c.queueLimit { return record(datagram, .dropped(.queueFull)) }
            let serialization = Duration.nanoseconds(Int64(datagram.bytes.count) * 8 * 1_000_000_000 / Int64(bandwidth))
            departure = max(now, link.busyUntil) + serialization
            link.busyUntil = departure
            link.inQueue.append((departure, datagram.bytes.count))
        }
        var arrival = departure + c.latency
        var delivered = datagram
        if c.bleachECN, delivered.ecn != .notECT {
            delivered.ecn = .notECT
            record(datagram, .bleached)
        }
        if delivered.ecn == .ect0 || delivered.ecn == .ect1, congested || (c.ceMarkRate > 0 && rng.nextDouble() < c.ceMarkRate) {
            delivered.ecn = .ce
            record(datagram, .markedCE)
        }
        if c.reorderRate > 0 && rng.nextDouble() < c.reorderRate {
            arrival = arrival + c.reorderDelay
            record(datagram, .reordered)
        }
        if c.corruptRate > 0 && rng.nextDouble() < c.corruptRate && !delivered.bytes.isEmpty {
            let bit = Int(rng.next() % UInt64(delivered.bytes.count * 8))
            delivered.bytes[bit / 8] ^= UInt8(1) << UInt8(bit % 8)
            record(datagram, .corrupted)
        }
        schedule(delivered, at: arrival)
        if c.duplicateRate > 0 && rng.nextDouble() < c.duplicateRate {
            record(datagram, .duplicated)
            schedule(delivered, at: arrival + .microseconds(Int64(rng.next() % 2000)))
        }
    }

    private func schedule(_ d: SimulatedDatagram, at time: Instant) {
        sequence += 1
        queue.push(ScheduledDelivery(time: time, sequence: sequence, datagram: d))
    }

    /// Collects every datagram the nodes want to send now.
    private func pollTransmits() {
        var progress = true
        var rounds = 0
        while progress && rounds < 100_000 {
            progress = false
            rounds += 1
            for node in nodes {
                while let d = node.nextTransmit(at: now) {
                    progress = true
                    inject(d)
                }
            }
        }
    }

    /// Processes the next instant with anything to do. Returns `false` when the network is idle
    /// (nothing in flight and no node deadline).
    @discardableResult
    public func step() -> Bool {
        pollTransmits()
        let nextDelivery = queue.first?.time
        let nextDeadline = nodes.compactMap(\.nextDeadline).min()
        guard let next = [nextDelivery, nextDeadline].compactMap({ $0 }).min() else { return false }
        if next > now { now = next }
        while let top = queue.first, top.time <= now {
            queue.popFirst()
            if let node = nodes.first(where: { $0.addresses.contains(top.datagram.destination) }) {
                record(top.datagram, .delivered)
                node.receive(top.datagram, at: now)
            } else {
                record(top.datagram, .dropped(.noRoute))
            }
        }
        for node in nodes {
            if let deadline = node.nextDeadline, deadline <= now { node.handleTimeout(at: now) }
        }
        pollTransmits()
        return true
    }

    /// Steps until `done()` holds. Throws when the network goes idle first, or when the time or
    /// step limit is exceeded (a hang or livelock in the code under test).
    public func run(until done: () -> Bool, timeLimit: Duration = .seconds(600), stepLimit: Int = 10_000_000) throws(SimulationError) {
        let deadline = now + timeLimit
        var steps = 0
        while !done() {
            guard now < deadline else { throw SimulationError(reason: "virtual time limit reached at \(now)") }
            guard steps < stepLimit else { throw SimulationError(reason: "step limit reached (livelock?)") }
            guard step() else { throw SimulationError(reason: "network went idle before completion at \(now)") }
            steps += 1
        }
    }

    /// Steps until nothing is in flight and no node has a deadline within `timeLimit`; the
    /// clock never passes `now + timeLimit`.
    public func runToIdle(timeLimit: Duration = .seconds(600)) {
        let deadline = now + timeLimit
        while let next = nextEventTime, next <= deadline, step() {}
    }

    /// Processes every event up to `time`, then sets the clock to `time` (a quiet period).
    public func advance(to time: Instant) {
        while let next = nextEventTime, next <= time, step() {}
        if time > now { now = time }
    }

    /// The time of the next delivery or node deadline, after collecting pending transmissions.
    private var nextEventTime: Instant? {
        pollTransmits()
        return [queue.first?.time, nodes.compactMap(\.nextDeadline).min()].compactMap { $0 }.min()
    }
}

/// The simulation could not reach its goal.
public struct SimulationError: Error, Sendable, CustomStringConvertible {
    public let reason: String
    public var description: String { "simulation failed: \(reason)" }
}

struct ScheduledDelivery: Comparable {
    let time: Instant
    let sequence: UInt64
    let datagram: SimulatedDatagram

    /// Ordered by (time, sequence): deterministic ties.
    static func < (a: ScheduledDelivery, b: ScheduledDelivery) -> Bool {
        a.time < b.time || (a.time == b.time && a.sequence < b.sequence)
    }

    static func == (a: ScheduledDelivery, b: ScheduledDelivery) -> Bool { a.time == b.time && a.sequence == b.sequence }
}

