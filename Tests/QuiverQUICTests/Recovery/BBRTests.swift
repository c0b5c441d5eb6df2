import QuiverCore
import Testing

@_spi(Wire) @testable import QuiverQUIC

// MARK: - A deterministic bottleneck on a virtual clock

/// One BBR sender over a single FIFO bottleneck: packets are paced at BBR's rate within its
/// window, serialized at `rate` bytes per second behind a drop-tail queue of `queueLimit`
/// bytes, and acknowledged one by one `rtt` after they leave the bottleneck. A packet dropped
/// at the queue (or by `lossRate`, at random) is declared lost when the packet after it is
/// acknowledged. No clock is read: every step is the next event in virtual time.
private struct BottleneckPath {
    struct Flight {
        var info: AckedPacketInfo
        var arrival: UInt64  // when its ACK (or, for a lost packet, its loss) is seen
        var lost: Bool
    }

    var bbr = BBR()
    var rate: Int
    var rtt: Int64
    var queueLimit: Int
    var lossRate = 0.0
    /// The application's data rate in bytes per second; `nil` is a bulk sender.
    var appRate: Int?
    var now: UInt64 = 1_000_000_000
    private(set) var inflight = 0
    private(set) var minRTTSeen: Int64 = .max
    private(set) var delivered = 0
    private var bottleneckFree: UInt64 = 0
    private var nextSend: UInt64 = 0
    private var flights: [Flight] = []
    private var head = 0
    private var pn: UInt64 = 0
    private var appBytes = 0
    private var appCredited: UInt64 = 0
    private var rng = SeededGenerator(seed: 0xBB2)
    let size = 1200

    init(rate: Int, rtt: Duration, queueLimit: Int? = nil) {
        self.rate = rate
        self.rtt = rtt.nanosecondsClamped
        self.queueLimit = queueLimit ?? max(CongestionControl.mulDiv(rate, Int(self.rtt), 1_000_000_000), 4 * 1200)  // 1 BDP
    }

    /// The path's bandwidth-delay product in bytes.
    var bdp: Int { CongestionControl.mulDiv(rate, Int(rtt), 1_000_000_000) }

    /// The smallest RTT a packet can see: the propagation delay plus its serialization.
    var baseRTT: Int64 { rtt + Int64(CongestionControl.mulDiv(size, 1_000_000_000, rate)) }

    /// Runs until `duration` of virtual time has passed, calling `observe` after every ACK
    /// (the model is bounded at the end of ACK processing, §5.6.4.7).
    mutating func run(for duration: Duration, observe: (inout BottleneckPath) -> Void = { _ in }) {
        let end = now + UInt64(duration.nanosecondsClamped)
        while now < end {
            creditApplication()
            let canSend = inflight + size <= bbr.congestionWindow && (appRate == nil || appBytes >= size)
            let sendTime = canSend ? max(now, nextSend) : UInt64.max
            let eventTime = head < flights.count ? flights[head].arrival : UInt64.max
            let next = min(sendTime, eventTime, end)
            if next == UInt64.max { break }
            if appRate != nil, !canSend, next > now + 1_000_000 {  // app-limited: wake up for new data
                now = min(next, now + 1_000_000)
                continue
            }
            now = max(now, next)
            if next == eventTime, eventTime <= sendTime {
                if receive() { observe(&self) }
            } else if next == sendTime {
                send()
            }
        }
    }

    private mutating func creditApplication() {
        guard let appRate else { return }
        if appCredited == 0 { appCredited = now }
        let credit = CongestionControl.mulDiv(appRate, Int(now - appCredited), 1_000_000_000)
        if credit > 0 {
            appBytes = min(appBytes + credit, 64 * size)
            appCredited = now
        }
    }

    private mutating func send() {
        let time = Instant(nanoseconds: now)
        let delivery = bbr.deliveryState(sending: size, now: time, bytesInFlight: inflight + size)
        inflight += size
        bbr.onPacketSent(bytes: size, now: time, bytesInFlight: inflight)
        if appRate != nil { appBytes -= size }
        // Pacing as the draft's model (§5.6.2): the next departure one packet-time later.
        let pace = UInt64(CongestionControl.mulDiv(size, 1_000_000_000, max(bbr.pacingRate, 1)))
        nextSend = max(now, nextSend) + pace
        let info = AckedPacketInfo(packetNumber: pn, sentTime: time, bytes: size, delivery: delivery)
        pn += 1
        let queued = bottleneckFree > now ? CongestionControl.mulDiv(rate, Int(bottleneckFree - now), 1_000_000_000) : 0
        let serialization = UInt64(CongestionControl.mulDiv(size, 1_000_000_000, rate))
        let dropped = queued + size > queueLimit || (lossRate > 0 && Double.random(in: 0..<1, using: &rng) < lossRate)
        if dropped {
            // Seen lost once the next packet's ACK arrives.
            flights.append(Flight(info: info, arrival: max(bottleneckFree, now) + serialization + UInt64(rtt), lost: true))
        } else {
            bottleneckFree = max(bottleneckFree, now) + serialization
            flights.append(Flight(info: info, arrival: bottleneckFree + UInt64(rtt), lost: false))
        }
    }

    /// Handles the next ACK or loss; returns whether it was an ACK.
    private mutating func receive() -> Bool {
        let flight = flights[head]
        head += 1
        if head > 4096 {
            flights.removeFirst(head)
            head = 0
        }
        let time = Instant(nanoseconds: now)
        inflight -= size
        if flight.lost {
            bbr.onPacketLost(flight.info, now: time, bytesInFlight: inflight)
            bbr.onCongestionEvent(sentTime: flight.info.sentTime, now: time, lostBytes: size)
            return false
        }
        delivered += size
        let sample = Int64(now - flight.info.sentTime.nanoseconds)
        minRTTSeen = min(minRTTSeen, sample)
        let snapshot = RTTSnapshot(smoothedRTT: .nanoseconds(sample), minRTT: .nanoseconds(minRTTSeen), latestRTT: .nanoseconds(sample))
        let appLimited = appRate != nil && appBytes < size && inflight + 2 * size < bbr.congestionWindow
        bbr.onPacketsAcknowledged([flight.info], now: time, rtt: snapshot, bytesInFlight: inflight, isAppLimited: appLimited)
        return true
    }
}

private func within(_ value: Int, _ target: Int, percent: Int) -> Bool {
    abs(value - target) <= target * percent / 100
}

// MARK: - Tests

@Suite("BBR (draft-ietf-ccwg-bbr)")
struct BBRTests {
    @Test("Startup finds the bottleneck bandwidth within a few percent and exits on a plateau (§5.3.1.2)",
          arguments: [(1_250_000, 50), (12_500_000, 10), (12_500_000, 200)])
    func startupFindsBandwidth(rate: Int, rttMilliseconds: Int) {
        var path = BottleneckPath(rate: rate, rtt: .milliseconds(rttMilliseconds))
        var exitedAt: UInt64?
        path.run(for: .seconds(20)) { path in
            if exitedAt == nil, path.bbr.state != .startup { exitedAt = path.now }
        }
        #expect(exitedAt != nil, "Startup must end")
        #expect(path.bbr.fullBandwidthReached)
        #expect(within(path.bbr.maxBandwidth, rate, percent: 3), "max_bw \(path.bbr.maxBandwidth) vs \(rate)")
        // The exponential search takes O(log2(BDP)) rounds plus three rounds on the plateau.
        if let exitedAt { #expect(exitedAt - 1_000_000_000 < UInt64(rttMilliseconds) * 1_000_000 * 20) }
        #expect(path.bbr.minRTT == path.baseRTT)
    }

    @Test("Drain brings the data in flight down to about one BDP, then ProbeBW starts (§5.3.2)")
    func drainEmptiesTheQueue() {
        var path = BottleneckPath(rate: 1_250_000, rtt: .milliseconds(50))
        var sawDrain = false
        var inflightLeavingDrain: Int?
        path.run(for: .seconds(5)) { path in
            if path.bbr.state == .drain { sawDrain = true }
            if sawDrain, inflightLeavingDrain == nil, path.bbr.state.isProbeBW { inflightLeavingDrain = path.inflight }
        }
        #expect(sawDrain)
        let inflight = try! #require(inflightLeavingDrain)
        // Inflight(1.0): the BDP, or the quantization budget (at least 4 packets) above it.
        #expect(inflight <= path.bdp + 4 * 1200, "inflight \(inflight), BDP \(path.bdp)")
    }

    @Test("ProbeBW cycles DOWN, CRUISE, REFILL and UP, and the bandwidth estimate holds (§5.3.3)")
    func probeBandwidthCycles() {
        var path = BottleneckPath(rate: 1_250_000, rtt: .milliseconds(20))
        var transitions: [BBR.State] = []
        path.run(for: .seconds(4.5)) { path in
            if transitions.last != path.bbr.state { transitions.append(path.bbr.state) }
        }
        let cycle: [BBR.State] = [.probeBWDown, .probeBWCruise, .probeBWRefill, .probeBWUp]
        let ups = transitions.filter { $0 == .probeBWUp }.count
        #expect(ups >= 1, "\(transitions)")
        for state in cycle { #expect(transitions.contains(state), "\(transitions)") }
        // Every UP is preceded by REFILL, every REFILL by DOWN or CRUISE.
        for (previous, next) in zip(transitions, transitions.dropFirst()) {
            if next == .probeBWUp { #expect(previous == .probeBWRefill) }
            if next == .probeBWRefill { #expect(previous == .probeBWDown || previous == .probeBWCruise) }
        }
        #expect(within(path.bbr.maxBandwidth, 1_250_000, percent: 3))
        // The bottleneck stays busy: goodput near the link rate after Startup.
        #expect(path.delivered > 1_250_000 * 4 * 85 / 100)
    }

    @Test("ProbeRTT follows 5 s without a lower RTT, holds the window at half a BDP for 200 ms, then returns (§5.3.4)")
    func probeRTT() {
        var path = BottleneckPath(rate: 1_250_000, rtt: .milliseconds(20))
        var entered: UInt64?
        var left: UInt64?
        var largestWindowInProbeRTT = 0
        path.run(for: .seconds(8)) { path in
            if path.bbr.state == .probeRTT {
                if entered == nil { entered = path.now }
                largestWindowInProbeRTT = max(largestWindowInProbeRTT, path.bbr.congestionWindow)
            } else if entered != nil, left == nil {
                left = path.now
                #expect(path.bbr.state == .probeBWCruise)
            }
        }
        let start = try! #require(entered)
        let end = try! #require(left)
        // The min_rtt sample is the propagation delay, seen in Startup's first round.
        #expect(start >= 1_000_000_000 + 5_000_000_000 && start < 1_000_000_000 + 6_000_000_000)
        #expect(end - start >= 200_000_000 && end - start < 400_000_000)
        // ProbeRTTCwnd(): 0.5 * BDP, at least BBR.MinPipeCwnd (4 packets).
        #expect(largestWindowInProbeRTT <= max(path.bdp / 2, 4 * 1200) + 1200)
    }

    @Test("losses in a bandwidth probe set inflight_longterm; losses while cruising cut bw_ and inflight_shortterm by Beta (§5.5.10)")
    func lossBounds() {
        // A shallow queue (a quarter BDP): ProbeBW_UP overflows it.
        var path = BottleneckPath(rate: 1_250_000, rtt: .milliseconds(40), queueLimit: 12_000)
        var longtermSetInUp = false
        var shorttermSet = false
        path.run(for: .seconds(10)) { path in
            let bbr = path.bbr
            if bbr.inflightLongterm != BBR.infinite { longtermSetInUp = true }
            if bbr.inflightShortterm != BBR.infinite {
                shorttermSet = true
                #expect(bbr.congestionWindow <= max(bbr.inflightShortterm, 4 * 1200))
            }
            if bbr.state.isProbeBW, bbr.state != .probeBWCruise, bbr.inflightLongterm != BBR.infinite {
                #expect(bbr.congestionWindow <= max(bbr.inflightLongterm, 4 * 1200))
            }
        }
        #expect(longtermSetInUp)
        #expect(path.bbr.inflightLongterm < 4 * path.bdp)
        // Random loss of 3 % while cruising lowers the short-term model.
        var lossy = BottleneckPath(rate: 1_250_000, rtt: .milliseconds(40))
        lossy.run(for: .seconds(3))
        lossy.lossRate = 0.03
        lossy.run(for: .seconds(3)) { path in
            if path.bbr.inflightShortterm != BBR.infinite || path.bbr.bandwidthShortterm != BBR.infinite { shorttermSet = true }
        }
        #expect(shorttermSet)
        // And it still moves data: a loss rate of 3 % costs far less than the 70 % a halving would.
        #expect(lossy.delivered > 1_250_000 * 4 / 2)
    }

    @Test("ECN-CE is congestion (§3.7): CE marks while cruising lower the short-term model like losses")
    func ecnIsCongestion() {
        // A deep queue (4 BDP): Startup's overshoot loses nothing, so only CE marks are signals.
        var path = BottleneckPath(rate: 1_250_000, rtt: .milliseconds(20), queueLimit: 100_000)
        path.run(for: .seconds(3))
        #expect(path.bbr.inflightShortterm == BBR.infinite && path.bbr.bandwidthShortterm == BBR.infinite)
        #expect(path.bbr.sampler.lost == 0)
        var acks = 0
        var window = Int.max
        path.run(for: .seconds(1)) { path in
            acks += 1
            if acks % 10 == 0 {
                let now = Instant(nanoseconds: path.now)
                path.bbr.onECNCongestion(sentTime: now, now: now)
            }
            if path.bbr.inflightShortterm != BBR.infinite { window = min(window, path.bbr.congestionWindow) }
        }
        #expect(path.bbr.inflightShortterm != BBR.infinite || path.bbr.state == .probeBWRefill || path.bbr.state == .probeBWUp)
        #expect(window <= max(path.bdp, 4 * 1200), "CE marks must bring the window to the BDP or below")
    }

    @Test("application-limited samples do not lower the bandwidth estimate (§5.5.4)")
    func appLimitedSamples() {
        var path = BottleneckPath(rate: 1_250_000, rtt: .milliseconds(20))
        path.run(for: .seconds(3))
        let before = path.bbr.maxBandwidth
        #expect(within(before, 1_250_000, percent: 3))
        path.appRate = 125_000  // a tenth of the bottleneck
        path.run(for: .seconds(3))
        #expect(path.bbr.latestSample.isAppLimited)
        #expect(path.bbr.maxBandwidth >= before * 97 / 100, "\(path.bbr.maxBandwidth) < \(before)")
    }

    @Test("the sampler's rate is delivered bytes over the longer of the send and ACK intervals (§4.1.2)")
    func deliveryRateSample() {
        var sampler = DeliveryRateSampler()
        let t0 = Instant(nanoseconds: 1_000_000_000)
        var sent: [AckedPacketInfo] = []
        for i in 0..<10 {  // ten packets 1 ms apart
            let time = t0 + .milliseconds(i)
            let state = sampler.onPacketSent(bytes: 1000, now: time, bytesInFlight: (i + 1) * 1000)
            sent.append(AckedPacketInfo(packetNumber: UInt64(i), sentTime: time, bytes: 1000, delivery: state))
        }
        // All acknowledged together 100 ms after the first send: 10 kB over 100 ms.
        var rs = RateSample()
        for packet in sent { sampler.onPacketAcknowledged(packet, now: t0 + .milliseconds(100), into: &rs) }
        sampler.generate(&rs, minRTT: 90_000_000)
        #expect(rs.delivered == 10_000 && rs.interval == 100_000_000 && rs.deliveryRate == 100_000)
        #expect(rs.txInFlight == 10_000 && rs.lastAckedPacket == 9 && rs.newlyAcked == 10_000)
        // An interval shorter than min_rtt gives no rate.
        var short = RateSample()
        let next = sampler.onPacketSent(bytes: 1000, now: t0 + .milliseconds(100), bytesInFlight: 1000)
        sampler.onPacketAcknowledged(AckedPacketInfo(packetNumber: 10, sentTime: t0 + .milliseconds(100), bytes: 1000, delivery: next),
                                     now: t0 + .milliseconds(150), into: &short)
        sampler.generate(&short, minRTT: 90_000_000)
        #expect(short.delivered == 1000 && short.deliveryRate == 0)
        // Application-limited marking lasts until the data in flight then is delivered.
        sampler.markAppLimited(bytesInFlight: 0)
        let limited = sampler.onPacketSent(bytes: 1000, now: t0 + .milliseconds(200), bytesInFlight: 1000)
        #expect(limited.isAppLimited)
        var last = RateSample()
        sampler.onPacketAcknowledged(AckedPacketInfo(packetNumber: 11, sentTime: t0 + .milliseconds(200), bytes: 1000, delivery: limited),
                                     now: t0 + .milliseconds(300), into: &last)
        sampler.generate(&last, minRTT: 90_000_000)
        #expect(last.isAppLimited && !sampler.isAppLimited)
    }

    @Test("the sampler's byte counters go on past 2^48 bytes (the window arithmetic's cap): samples after it stay right")
    func samplerPastWindowCap() {
        var sampler = DeliveryRateSampler()
        let t0 = Instant(nanoseconds: 1_000_000_000)
        // Two acknowledgments of the largest size the arithmetic takes (2^48 bytes each).
        for i in 0..<2 {
            let state = sampler.onPacketSent(bytes: 1 << 48, now: t0, bytesInFlight: 1 << 48)
            var rs = RateSample()
            sampler.onPacketAcknowledged(AckedPacketInfo(packetNumber: UInt64(i), sentTime: t0, bytes: 1 << 48, delivery: state),
                                         now: t0 + .milliseconds(1), into: &rs)
            sampler.generate(&rs, minRTT: 0)
        }
        #expect(sampler.delivered == 1 << 49)
        var sent: [AckedPacketInfo] = []
        for i in 0..<10 {  // ten packets 1 ms apart, acknowledged together 100 ms after the first
            let time = t0 + .milliseconds(10 + i)
            let state = sampler.onPacketSent(bytes: 1000, now: time, bytesInFlight: (i + 1) * 1000)
            sent.append(AckedPacketInfo(packetNumber: UInt64(2 + i), sentTime: time, bytes: 1000, delivery: state))
        }
        var rs = RateSample()
        for packet in sent { sampler.onPacketAcknowledged(packet, now: t0 + .milliseconds(110), into: &rs) }
        sampler.generate(&rs, minRTT: 90_000_000)
        #expect(rs.delivered == 10_000 && rs.deliveryRate == 100_000)
    }

    @Test("Startup ends on high loss (§5.3.1.3) also when the ACK that ends the loss round is the one that ends recovery")
    func startupHighLoss() {
        var bbr = BBR()
        let t0 = Instant(nanoseconds: 1_000_000_000)
        let rtt = RTTSnapshot(smoothedRTT: .milliseconds(20), minRTT: .milliseconds(20), latestRTT: .milliseconds(20))
        var inflight = 0
        var sent: [AckedPacketInfo] = []
        func send(_ count: Int, at time: Instant) {
            for _ in 0..<count {
                inflight += 1200
                let delivery = bbr.deliveryState(sending: 1200, now: time, bytesInFlight: inflight)
                bbr.onPacketSent(bytes: 1200, now: time, bytesInFlight: inflight)
                sent.append(AckedPacketInfo(packetNumber: UInt64(sent.count), sentTime: time, bytes: 1200, delivery: delivery))
            }
        }
        func ack(_ numbers: [Int], at time: Instant) {
            inflight -= 1200 * numbers.count
            bbr.onPacketsAcknowledged(numbers.map { sent[$0] }, now: time, rtt: rtt, bytesInFlight: inflight, isAppLimited: false)
        }
        send(10, at: t0)
        ack(Array(0..<10), at: t0 + .milliseconds(20))  // a round
        send(30, at: t0 + .milliseconds(20))
        // The ACK of the others, then six separate packets of the thirty declared lost (20 %),
        // as the connection reports them: the ACK's packets, then its losses, then the event.
        let lossTime = t0 + .milliseconds(40)
        ack([10, 12, 13, 15, 16, 18, 19, 21, 22, 24, 25, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39], at: lossTime)
        for number in [11, 14, 17, 20, 23, 26] {
            inflight -= 1200
            bbr.onPacketLost(sent[number], now: lossTime, bytesInFlight: inflight)
        }
        bbr.onCongestionEvent(sentTime: sent[26].sentTime, now: lossTime, lostBytes: 6 * 1200)
        #expect(bbr.state == .startup && bbr.recoveryStartTime == lossTime)
        // A packet sent after the recovery began: its ACK ends recovery and the loss round at once.
        send(1, at: lossTime + .milliseconds(1))
        ack([40], at: lossTime + .milliseconds(21))
        #expect(bbr.recoveryStartTime == nil)
        #expect(bbr.state != .startup, "Startup did not end on 20 % loss in six ranges")
        #expect(bbr.inflightLongterm != BBR.infinite)  // set by the loss exit
    }

    @Test("a new path: BBR starts over in Startup, its delivery sampling going on, so the old path's packets give sane samples")
    func startingOver() {
        var path = BottleneckPath(rate: 1_250_000, rtt: .milliseconds(20))
        path.run(for: .seconds(2))
        let old = path.bbr
        let now = Instant(nanoseconds: path.now)
        var fresh = old.startingOver(at: now)
        #expect(fresh.state == .startup && fresh.sampler.delivered == old.sampler.delivered && fresh.sampler.lost == old.sampler.lost)
        // A packet sent on the old path before the move, acknowledged after it.
        let before = DeliveryState(delivered: old.sampler.delivered - 12_000, deliveredTime: now + .milliseconds(-30),
                                   firstSendTime: now + .milliseconds(-30), sendTime: now + .milliseconds(-25), txInFlight: 12_000)
        let rtt = RTTSnapshot(smoothedRTT: .milliseconds(20), minRTT: .milliseconds(20), latestRTT: .milliseconds(20))
        fresh.onPacketsAcknowledged([AckedPacketInfo(packetNumber: 1 << 20, sentTime: now + .milliseconds(-25), bytes: 1200, delivery: before)],
                                    now: now + .milliseconds(5), rtt: rtt, bytesInFlight: 0, isAppLimited: false)
        let sample = fresh.latestSample
        #expect(sample.delivered == 13_200 && sample.deliveryRate < 1_250_000 * 2, "\(sample)")
        #expect(fresh.state == .startup)
    }

    @Test("a spurious loss restores the window and the model saved before it (§5.5.11)")
    func spuriousLoss() {
        var path = BottleneckPath(rate: 1_250_000, rtt: .milliseconds(20))
        path.run(for: .seconds(3))
        var bbr = path.bbr
        let window = bbr.congestionWindow
        let (bandwidth, inflight, longterm) = (bbr.bandwidthShortterm, bbr.inflightShortterm, bbr.inflightLongterm)
        let now = Instant(nanoseconds: path.now)
        // In the connection's order: the lost packet, then the congestion event.
        let lost = DeliveryState(delivered: bbr.sampler.delivered, lost: bbr.sampler.lost, txInFlight: 12_000)
        bbr.onPacketLost(AckedPacketInfo(packetNumber: 1_000_000, sentTime: now, bytes: 1200, delivery: lost), now: now, bytesInFlight: 0)
        bbr.onCongestionEvent(sentTime: now, now: now, lostBytes: 1200)
        #expect(bbr.recoveryStartTime == now)
        bbr.onSpuriousCongestion()
        #expect(bbr.congestionWindow >= window)
        #expect(bbr.bandwidthShortterm >= bandwidth && bbr.inflightShortterm >= inflight && bbr.inflightLongterm >= longterm)
        // Undoing a loss-induced exit from ProbeBW_UP returns to probing (REFILL).
        var probing = BottleneckPath(rate: 1_250_000, rtt: .milliseconds(40), queueLimit: 12_000)
        var undone = false
        probing.run(for: .seconds(10)) { path in
            guard !undone, path.bbr.state == .probeBWUp else { return }
            var copy = path.bbr
            let time = Instant(nanoseconds: path.now)
            // A loss in this probe of more than 2 % of what was in flight when the packet was
            // sent, in the connection's order: the lost packet, then the congestion event.
            let delivery = DeliveryState(delivered: copy.sampler.delivered, lost: copy.sampler.lost, txInFlight: 12_000)
            copy.onPacketLost(AckedPacketInfo(packetNumber: 1_000_000, sentTime: time, bytes: 1200, delivery: delivery),
                              now: time, bytesInFlight: path.inflight)
            copy.onCongestionEvent(sentTime: time, now: time, lostBytes: 1200)
            #expect(copy.inflightLongterm != BBR.infinite)
            guard copy.state == .probeBWDown else { return }
            copy.onSpuriousCongestion()
            #expect(copy.state == .probeBWRefill)
            undone = true
        }
        #expect(undone)
    }

    @Test("the wrapper paces at BBR's rate and stamps packets only for BBR")
    func wrapper() {
        var bbr = Congestion(algorithm: .bbr)
        var cubic = Congestion(algorithm: .cubic)
        let now = Instant(nanoseconds: 1_000_000_000)
        #expect(bbr.pacingRate != nil && cubic.pacingRate == nil)
        #expect(cubic.deliveryState(sending: 1200, now: now, bytesInFlight: 1200) == DeliveryState())
        let state = bbr.deliveryState(sending: 1200, now: now, bytesInFlight: 1200)
        #expect(state.txInFlight == 1200 && state.firstSendTime(sentAt: now) == now)
        // Copies do not share BBR's state.
        let copy = bbr
        bbr.onPacketSent(bytes: 1200, now: now, bytesInFlight: 1200)
        bbr.onPacketsAcknowledged([AckedPacketInfo(packetNumber: 0, sentTime: now, bytes: 1200, delivery: state)],
                                  now: now + .milliseconds(50), rtt: RTTSnapshot(smoothedRTT: .milliseconds(50), minRTT: .milliseconds(50), latestRTT: .milliseconds(50)),
                                  bytesInFlight: 0, isAppLimited: false)
        #expect(bbr.bbr?.sampler.delivered == 1200 && copy.bbr?.sampler.delivered == 0)
        #expect(bbr != copy)
        // A rate of 1.2 MB/s paces 1200-byte packets 1 ms apart once the burst is spent.
        var pacer = Pacer()
        var time = now
        var sent = 0
        while pacer.delay(until: time, bytes: 1200, rate: 1_200_000) == nil, sent < 100 {
            pacer.onSent(bytes: 1200, now: time)
            sent += 1
        }
        #expect(sent == pacer.capacity / 1200)
        let wait = pacer.delay(until: time, bytes: 1200, rate: 1_200_000)
        #expect(wait == time + .milliseconds(1))
        time = time + .milliseconds(1)
        #expect(pacer.delay(until: time, bytes: 1200, rate: 1_200_000) == nil)
        #expect(pacer.delay(until: time, bytes: 1200, rate: 0) == nil)  // no rate: no pacing
    }
}
