// quiver-bench relay: a UDP relay standing for a lossy, slow, long path between one client and
// one server (this kernel has no netem), for Benchmarks/run.py's lossy section.
#if canImport(Glibc)
import Glibc
#endif
import CPrecisePoll
import QuiverCore
import QuiverUDP
import Synchronization

/// One direction of the relay's emulated path, modelled as the network simulator models a link
/// (QuiverNetSim's `NetworkSimulator.inject`), in this order: a datagram over
/// ``Configuration/maxDatagramSize`` is dropped (a 1500-byte link); then one in
/// ``Configuration/lossRate`` at random (a seeded generator, so the n-th datagram of a direction
/// meets the same fate in every run with the same seed); then, with a rate, it waits behind the
/// bottleneck in a drop-tail queue of ``Configuration/queueLimit`` bytes and is serialised at
/// ``Configuration/bitsPerSecond``; it arrives ``Configuration/oneWayDelay`` after it left the
/// bottleneck.
///
/// Datagrams leave the bottleneck in arrival order and the delay is the same for all, so their
/// due times ascend: a FIFO is the whole timer queue. What the link holds is bounded: the queue
/// limit plus a rate × delay of datagrams in propagation (without a rate, the queue limit bounds
/// the datagrams in propagation). Buffers of delivered datagrams are reused, so a steady flow
/// does not allocate.
struct RelayLink {
    /// The path's properties in this direction.
    struct Configuration {
        /// Probability of losing each datagram, independently.
        var lossRate = 0.0
        /// Nanoseconds from leaving the bottleneck to arriving (half the round trip the relay adds).
        var oneWayDelay: UInt64 = 0
        /// The bottleneck's rate, or `nil` for none (no serialisation, no queue).
        var bitsPerSecond: UInt64?
        /// Bytes the bottleneck queue holds before dropping arrivals (drop-tail); without a rate,
        /// the bytes the link may hold in propagation.
        var queueLimit = 16 << 20
        /// Larger datagrams are dropped: 1472 is the UDP payload of a 1500-byte IPv4 link.
        var maxDatagramSize = 1472
    }

    /// What the direction saw, printed when the relay exits.
    struct Counters {
        var received = 0
        var forwarded = 0
        var forwardedBytes = 0
        var droppedByLoss = 0
        var droppedBySize = 0
        var droppedByQueue = 0
        /// Datagrams the relay's own socket could not send (its queue full, or the kernel refused).
        var sendFailed = 0
        /// How late datagrams were handed to the kernel after they were due, in total and at
        /// most (nanoseconds): the relay's own imprecision.
        var totalLateness: UInt64 = 0
        var maxLateness: UInt64 = 0
    }

    /// A datagram on its way, due at `due` (monotonic nanoseconds).
    private struct Pending {
        var due: UInt64
        var ecn: ECNCodepoint
        var bytes: [UInt8]
    }

    let configuration: Configuration
    private(set) var counters = Counters()
    private var random: SplitMix64
    /// When the bottleneck has serialised everything admitted so far.
    private var busyUntil: UInt64 = 0
    /// Bytes admitted and not yet delivered.
    private var heldBytes = 0
    private var pending: [Pending] = []
    private var head = 0
    private var spareBuffers: [[UInt8]] = []

    init(_ configuration: Configuration, seed: UInt64) {
        self.configuration = configuration
        random = SplitMix64(seed: seed)
    }

    /// When the next datagram is due, if one is on its way.
    var nextDue: UInt64? { head < pending.count ? pending[head].due : nil }

    /// Takes a datagram that arrived at `now` onto the path, or drops it.
    mutating func admit(_ bytes: UnsafeRawBufferPointer, ecn: ECNCodepoint, at now: UInt64) {
        counters.received += 1
        guard bytes.count <= configuration.maxDatagramSize else {
            counters.droppedBySize += 1
            return
        }
        if configuration.lossRate > 0, random.nextDouble() < configuration.lossRate {
            counters.droppedByLoss += 1
            return
        }
        var departure = now
        if let rate = configuration.bitsPerSecond {
            // Bytes still waiting to be serialised (the one on the wire counts for what is left of it).
            let backlog = busyUntil > now ? Double(busyUntil - now) * Double(rate) / 8e9 : 0
            guard backlog + Double(bytes.count) <= Double(configuration.queueLimit) else {
                counters.droppedByQueue += 1
                return
            }
            departure = max(now, busyUntil) + UInt64(bytes.count) * 8_000_000_000 / rate
            busyUntil = departure
        } else if heldBytes + bytes.count > configuration.queueLimit {
            counters.droppedByQueue += 1
            return
        }
        var copy = spareBuffers.popLast() ?? []
        copy.removeAll(keepingCapacity: true)
        copy.append(contentsOf: bytes)
        heldBytes += bytes.count
        pending.append(Pending(due: departure + configuration.oneWayDelay, ecn: ecn, bytes: copy))
    }

    /// Sends every datagram due by `now` through `socket` to `destination` (with the ECN
    /// codepoint it came with).
    mutating func deliver(at now: UInt64, through socket: UDPSocket, to destination: SocketAddress?) {
        guard nextDue.map({ $0 <= now }) == true else { return }
        while head < pending.count, pending[head].due <= now {
            var bytes: [UInt8] = []
            swap(&bytes, &pending[head].bytes)
            let ecn = pending[head].ecn
            counters.totalLateness += now - pending[head].due
            counters.maxLateness = max(counters.maxLateness, now - pending[head].due)
            head += 1
            heldBytes -= bytes.count
            if let destination,
               socket.enqueue(bytes, to: destination, ecn: ecn)
               || ((try? socket.flush()) != nil && socket.enqueue(bytes, to: destination, ecn: ecn)) {
                counters.forwarded += 1
                counters.forwardedBytes += bytes.count
            } else {
                counters.sendFailed += 1
            }
            spareBuffers.append(bytes)
        }
        if head == pending.count {
            pending.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 1024, head * 2 >= pending.count {
            pending.removeFirst(head)
            head = 0
        }
        if let result = try? socket.flush() { counters.sendFailed += result.failed }
    }
}

/// Set by SIGTERM and SIGINT: the relay prints its counters and exits.
private let relayStopRequested = Atomic<Bool>(false)

/// Monotonic nanoseconds (`CLOCK_MONOTONIC`).
private func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

/// `quiver-bench relay`: forwards datagrams between the client that last sent to `listen` and
/// `server`, each direction through its own ``RelayLink`` (seeded from `seed`), until SIGTERM or
/// SIGINT; then prints one `RESULT relay` line per direction.
///
/// One thread: it reads a batch from each socket (stamping arrivals with the clock), delivers
/// what is due, and sleeps in `ppoll` until the next datagram is due or one arrives, so delivery
/// is as precise as the kernel's timer (tens of microseconds), not a millisecond.
func runRelay(listen: SocketAddress, server: SocketAddress, link: RelayLink.Configuration, seed: UInt64) {
    var socketConfiguration = UDPSocket.Configuration()
    socketConfiguration.gso = false  // datagrams are forwarded one by one, as the link carries them
    socketConfiguration.gro = false
    socketConfiguration.receiveBufferSize = 8 << 20  // the relay must not drop what it is handed
    socketConfiguration.sendBufferSize = 8 << 20
    let front: UDPSocket
    let back: UDPSocket
    do {
        front = try UDPSocket(bindingTo: listen, configuration: socketConfiguration)
        back = try UDPSocket(bindingTo: listen.withPort(0), configuration: socketConfiguration)
    } catch {
        fail("relay: \(error)")
    }
    signal(SIGTERM) { _ in relayStopRequested.store(true, ordering: .relaxed) }
    signal(SIGINT) { _ in relayStopRequested.store(true, ordering: .relaxed) }
    var seeds = SplitMix64(seed: seed)
    var toServer = RelayLink(link, seed: seeds.next())
    var toClient = RelayLink(link, seed: seeds.next())
    var client: SocketAddress?
    let rate = link.bitsPerSecond.map { "\(Double($0) / 1e6) Mbit/s, queue \(link.queueLimit) bytes" } ?? "no rate limit"
    say("READY relay \(front.localAddress) -> \(server) (loss \(link.lossRate), one-way delay \(Double(link.oneWayDelay) / 1e6) ms, "
        + "\(rate), datagrams up to \(link.maxDatagramSize) bytes, seed \(seed))")
    var descriptors = [pollfd(fd: front.pollDescriptor, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: back.pollDescriptor, events: Int16(POLLIN), revents: 0)]
    while !relayStopRequested.load(ordering: .relaxed) {
        // One batch per socket per turn, so a busy direction cannot hold the other's deliveries back.
        if (try? front.receive()) ?? 0 > 0 {
            let now = monotonicNanoseconds()
            for index in 0..<front.receivedCount {
                let datagram = front.received(index)
                client = datagram.source
                front.withReceivedBytes(index) { toServer.admit($0, ecn: datagram.ecn, at: now) }
            }
        }
        if (try? back.receive()) ?? 0 > 0 {
            let now = monotonicNanoseconds()
            for index in 0..<back.receivedCount where back.received(index).source == server {
                back.withReceivedBytes(index) { toClient.admit($0, ecn: back.received(index).ecn, at: now) }
            }
        }
        let now = monotonicNanoseconds()
        toServer.deliver(at: now, through: back, to: server)
        toClient.deliver(at: now, through: front, to: client)
        // Sleep until the next delivery, at most 100 ms (to see the stop flag: a signal may land
        // on another thread than this one, and then does not interrupt ppoll).
        let wake = [toServer.nextDue, toClient.nextDue].compactMap { $0 }.min()
        let later = monotonicNanoseconds()
        let timeout = min(wake.map { $0 > later ? $0 - later : 0 } ?? 100_000_000, 100_000_000)
        _ = descriptors.withUnsafeMutableBufferPointer { quiver_precise_poll($0.baseAddress, 2, Int64(timeout)) }
    }
    for (name, direction) in [("to_server", toServer), ("to_client", toClient)] {
        let c = direction.counters
        say("RESULT relay \(name) received=\(c.received) forwarded=\(c.forwarded) bytes=\(c.forwardedBytes) "
            + "dropped_loss=\(c.droppedByLoss) dropped_size=\(c.droppedBySize) dropped_queue=\(c.droppedByQueue) "
            + "send_failed=\(c.sendFailed) late_us_mean=\(c.totalLateness / UInt64(max(1, c.forwarded + c.sendFailed)) / 1000) "
            + "late_us_max=\(c.maxLateness / 1000)")
    }
}
