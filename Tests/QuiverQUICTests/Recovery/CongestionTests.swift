import QuiverCore
import Testing

@_spi(Wire) @testable import QuiverQUIC

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Virtual-time helpers

private let origin = Instant(nanoseconds: 1_000_000_000)

private func ms(_ value: Int) -> Duration { .milliseconds(value) }

/// The instant `d` earlier.
private func - (instant: Instant, d: Duration) -> Instant { instant + (.zero - d) }

private func snapshot(_ rtt: Duration) -> RTTSnapshot {
    RTTSnapshot(smoothedRTT: rtt, minRTT: rtt, latestRTT: rtt)
}

private func packet(_ pn: UInt64, sent: Instant, bytes: Int = 1200) -> AckedPacketInfo {
    AckedPacketInfo(packetNumber: pn, sentTime: sent, bytes: bytes)
}

/// One round trip: sends a window of `maxDatagramSize` packets spread evenly over `rtt` from
/// `start`, then acknowledges each one `rtt` after it was sent, one ACK per packet.
/// Returns the start of the next round (`start + rtt`).
@discardableResult
private func roundTrip<C: CongestionController>(
    _ cc: inout C, start: Instant, rtt: Duration, pn: inout UInt64, appLimited: Bool = false
) -> Instant {
    let size = cc.maxDatagramSize
    let count = max(cc.congestionWindow / size, 1)
    let step = rtt / count
    var sent: [AckedPacketInfo] = []
    sent.reserveCapacity(count)
    for i in 0..<count {
        let time = start + step * i
        cc.onPacketSent(bytes: size, now: time, bytesInFlight: (i + 1) * size)
        sent.append(packet(pn, sent: time, bytes: size))
        pn += 1
    }
    for (i, p) in sent.enumerated() {
        cc.onPacketsAcknowledged(
            [p], now: p.sentTime + rtt, rtt: snapshot(rtt), bytesInFlight: (count - i - 1) * size,
            isAppLimited: appLimited)
    }
    return start + rtt
}

// MARK: - Constants

@Suite("Congestion constants (RFC 9002 §7.2)")
struct CongestionConstantsTests {
    @Test("initial window = min(10 * mds, max(14720, 2 * mds))", arguments: [
        (1200, 12000), (1500, 14720), (9000, 18000), (1472, 14720), (65527, 131054),
    ])
    func initialWindow(size: Int, expected: Int) {
        #expect(CongestionControl.initialWindow(maxDatagramSize: size) == expected)
        #expect(NewReno(maxDatagramSize: size).congestionWindow == expected)
        #expect(Cubic(maxDatagramSize: size).congestionWindow == expected)
        #expect(Congestion(algorithm: .cubic, maxDatagramSize: size).congestionWindow == expected)
    }

    @Test("minimum window = 2 * mds; sizes clamp to 1200 ... 65527")
    func minimumWindow() {
        #expect(CongestionControl.minimumWindow(maxDatagramSize: 1200) == 2400)
        #expect(CongestionControl.minimumWindow(maxDatagramSize: 9000) == 18000)
        #expect(NewReno(maxDatagramSize: 100).maxDatagramSize == 1200)
        #expect(NewReno(maxDatagramSize: -1).congestionWindow == 12000)
        #expect(Cubic(maxDatagramSize: Int.max).maxDatagramSize == 65527)
        #expect(CongestionControl.lossReductionFactor == 0.5)
    }
}

// MARK: - NewReno

@Suite("NewReno (RFC 9002 §7, Appendix B)")
struct CongestionNewRenoTests {
    @Test("slow start doubles the window every round trip, byte for byte")
    func slowStartDoubling() {
        var cc = NewReno()
        var pn: UInt64 = 0
        var start = origin
        #expect(cc.inSlowStart && cc.ssthresh == nil)
        for r in 1...6 {
            start = roundTrip(&cc, start: start, rtt: ms(100), pn: &pn)
            #expect(cc.congestionWindow == 12000 << r)
        }
        #expect(cc.inSlowStart)
    }

    @Test("a congestion event halves the window once per recovery period")
    func recoveryPeriod() {
        var cc = NewReno()
        cc.onPacketsAcknowledged([packet(0, sent: origin, bytes: 36000)], now: origin + ms(100), rtt: snapshot(ms(100)),
                                 bytesInFlight: 0, isAppLimited: false)
        #expect(cc.congestionWindow == 48000)
        let loss = origin + ms(200)
        cc.onCongestionEvent(sentTime: origin + ms(150), now: loss, lostBytes: 1200)
        #expect(cc.congestionWindow == 24000 && cc.ssthresh == 24000)
        #expect(cc.recoveryStartTime == loss && !cc.inSlowStart)
        // Losses of packets sent before (or at) the recovery start do not reduce again.
        cc.onCongestionEvent(sentTime: origin + ms(190), now: loss + ms(5), lostBytes: 1200)
        cc.onCongestionEvent(sentTime: loss, now: loss + ms(10), lostBytes: 1200)
        cc.onECNCongestion(sentTime: origin + ms(199), now: loss + ms(20))
        #expect(cc.congestionWindow == 24000 && cc.recoveryStartTime == loss)
        // Packets sent before the recovery start do not grow the window.
        for i in 0..<40 {
            cc.onPacketsAcknowledged([packet(UInt64(i + 1), sent: origin + ms(160))], now: loss + ms(30),
                                     rtt: snapshot(ms(100)), bytesInFlight: 0, isAppLimited: false)
        }
        #expect(cc.congestionWindow == 24000)
        // A loss of a packet sent after the recovery start is a new congestion event.
        cc.onCongestionEvent(sentTime: loss + ms(1), now: loss + ms(300), lostBytes: 1200)
        #expect(cc.congestionWindow == 12000 && cc.ssthresh == 12000 && cc.recoveryStartTime == loss + ms(300))
        // The window never drops below the minimum; ssthresh follows Appendix B.6 literally.
        for i in 1...10 {
            let now = loss + ms(300 + 100 * i)
            cc.onCongestionEvent(sentTime: now - ms(1), now: now, lostBytes: 1200)
        }
        #expect(cc.congestionWindow == 2400 && cc.ssthresh == 1200)
    }

    @Test("congestion avoidance grows exactly one datagram per window acknowledged")
    func congestionAvoidance() {
        var cc = NewReno()
        cc.onPacketsAcknowledged([packet(0, sent: origin, bytes: 36000)], now: origin + ms(100), rtt: snapshot(ms(100)),
                                 bytesInFlight: 0, isAppLimited: false)
        cc.onCongestionEvent(sentTime: origin, now: origin + ms(101), lostBytes: 1200)
        #expect(cc.congestionWindow == 24000)
        var pn: UInt64 = 1
        var start = origin + ms(102)
        for r in 1...20 {
            start = roundTrip(&cc, start: start, rtt: ms(100), pn: &pn)
            #expect(cc.congestionWindow == 24000 + 1200 * r)
        }
        // Half a window acknowledged: no growth yet; the other half: one datagram.
        let window = cc.congestionWindow
        for i in 0..<(window / 2400) {
            cc.onPacketsAcknowledged([packet(pn + UInt64(i), sent: start)], now: start + ms(100),
                                     rtt: snapshot(ms(100)), bytesInFlight: 0, isAppLimited: false)
        }
        #expect(cc.congestionWindow == window)
        cc.onPacketsAcknowledged([packet(pn + 100, sent: start, bytes: window / 2)], now: start + ms(100),
                                 rtt: snapshot(ms(100)), bytesInFlight: 0, isAppLimited: false)
        #expect(cc.congestionWindow == window + 1200)
    }

    @Test("no growth while application limited (§7.8), in slow start and congestion avoidance")
    func appLimited() {
        var cc = NewReno()
        var pn: UInt64 = 0
        var start = roundTrip(&cc, start: origin, rtt: ms(100), pn: &pn, appLimited: true)
        #expect(cc.congestionWindow == 12000)
        start = roundTrip(&cc, start: start, rtt: ms(100), pn: &pn)
        #expect(cc.congestionWindow == 24000)
        cc.onCongestionEvent(sentTime: start - ms(1), now: start, lostBytes: 1200)
        start = start + ms(1)
        for _ in 0..<5 { start = roundTrip(&cc, start: start, rtt: ms(100), pn: &pn, appLimited: true) }
        #expect(cc.congestionWindow == 12000)
        start = roundTrip(&cc, start: start, rtt: ms(100), pn: &pn)
        #expect(cc.congestionWindow == 13200)
    }

    @Test("persistent congestion collapses to the minimum window and slow-starts again")
    func persistentCongestion() {
        var cc = NewReno()
        var pn: UInt64 = 0
        var start = origin
        for _ in 0..<3 { start = roundTrip(&cc, start: start, rtt: ms(100), pn: &pn) }
        #expect(cc.congestionWindow == 96000)
        cc.onCongestionEvent(sentTime: start - ms(50), now: start, lostBytes: 12000)
        cc.onPersistentCongestion()
        #expect(cc.congestionWindow == 2400 && cc.ssthresh == 48000)
        #expect(cc.recoveryStartTime == nil && cc.inSlowStart)
        // Even packets sent before the old recovery start now grow the window again.
        cc.onPacketsAcknowledged([packet(pn, sent: start - ms(60))], now: start + ms(10), rtt: snapshot(ms(100)),
                                 bytesInFlight: 0, isAppLimited: false)
        #expect(cc.congestionWindow == 3600)
    }

    @Test("ECN-CE is a congestion event; a spurious event is undone once")
    func ecnAndSpurious() {
        var cc = NewReno()
        cc.onECNCongestion(sentTime: origin, now: origin + ms(100))
        #expect(cc.congestionWindow == 6000 && cc.ssthresh == 6000)
        cc.onSpuriousCongestion()
        #expect(cc.congestionWindow == 12000 && cc.ssthresh == nil && cc.recoveryStartTime == nil)
        cc.onSpuriousCongestion()
        #expect(cc.congestionWindow == 12000)
    }

    @Test("a larger datagram size recalculates an untouched initial window (§7.2)")
    func maxDatagramSizeChange() {
        var cc = NewReno()
        cc.setMaxDatagramSize(1500)
        #expect(cc.congestionWindow == 14720 && cc.minimumWindow == 3000)
        cc.setMaxDatagramSize(1200)
        #expect(cc.congestionWindow == 12000)
        cc.onCongestionEvent(sentTime: origin, now: origin + ms(1), lostBytes: 0)
        cc.onPersistentCongestion()
        #expect(cc.congestionWindow == 2400)
        cc.setMaxDatagramSize(9000)
        #expect(cc.congestionWindow == 18000 && cc.maxDatagramSize == 9000)
    }
}

// MARK: - CUBIC

@Suite("CUBIC (RFC 9438)")
struct CongestionCubicTests {
    /// A CUBIC controller grown to `window` in slow start, after one loss at `lossTime`.
    private func afterLoss(window: Int = 120_000, lossTime: Instant = origin + ms(1), fastConvergence: Bool = true) -> Cubic {
        var cc = Cubic(fastConvergence: fastConvergence)
        cc.onPacketsAcknowledged([packet(0, sent: origin, bytes: window - 12000)], now: origin, rtt: snapshot(ms(100)),
                                 bytesInFlight: 0, isAppLimited: false)
        cc.onCongestionEvent(sentTime: origin, now: lossTime, lostBytes: 1200)
        return cc
    }

    @Test("a loss reduces the window to β_cubic * W_max (§4.6)")
    func multiplicativeDecrease() {
        let cc = afterLoss()
        #expect(cc.maximumWindowBeforeReduction == 120_000)
        #expect(cc.congestionWindow == 84000 && cc.ssthresh == 84000 && !cc.inSlowStart)
        var other = afterLoss(window: 1_000_000)
        #expect(other.congestionWindow == 700_000)
        // Once per recovery period.
        other.onCongestionEvent(sentTime: origin + ms(1), now: origin + ms(50), lostBytes: 1200)
        #expect(other.congestionWindow == 700_000)
    }

    @Test("K and W_cubic(t) follow the formula (§4.2)")
    func cubicFunction() {
        var cc = afterLoss()
        // The congestion avoidance stage starts with the first ACK after recovery.
        let start = origin + ms(150)
        cc.onPacketsAcknowledged([packet(1, sent: origin + ms(50))], now: start, rtt: snapshot(ms(100)),
                                 bytesInFlight: 0, isAppLimited: false)
        #expect(cc.congestionAvoidanceStart == start)
        // K = cbrt((W_max - cwnd_epoch) / (C * mds)) = cbrt(36000 / 480) = cbrt(75) s.
        let k = cbrt(75.0)
        let kNanoseconds = Int64(k * 1e9)
        #expect(abs(cc.timeToMaximumWindow.nanosecondsClamped - kNanoseconds) <= 1)
        func formula(_ t: Double) -> Double { 0.4 * 1200 * pow(t - k, 3) + 120_000 }
        let expectations: [(Duration, Int)] = [
            (.zero, 84000), (.nanoseconds(kNanoseconds / 2), 115_500), (.nanoseconds(kNanoseconds), 120_000),
            (.nanoseconds(2 * kNanoseconds), 156_000),
        ]
        for (t, expected) in expectations {
            #expect(abs(cc.cubicWindow(at: t) - expected) <= 1)
        }
        for seconds in [0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0] {
            let value = cc.cubicWindow(at: .nanoseconds(Int64(seconds * 1e9)))
            #expect(abs(Double(value) - formula(seconds)) <= 1)
        }
    }

    @Test("the window climbs concavely back to W_max near t = K, then convexly beyond")
    func concaveThenConvex() {
        var cc = afterLoss()
        var pn: UInt64 = 1
        var start = origin + ms(2)
        let rtt = ms(100)
        var samples: [(t: Double, cwnd: Int)] = []
        var epoch: Instant?
        for _ in 0..<80 {
            start = roundTrip(&cc, start: start, rtt: rtt, pn: &pn)
            epoch = epoch ?? cc.congestionAvoidanceStart
            guard let epoch else { continue }
            samples.append((CongestionControl.seconds(start + rtt - epoch), cc.congestionWindow))
        }
        #expect(epoch == origin + ms(102))
        let k = cbrt(75.0)
        func cwnd(near t: Double) -> Int {
            samples.min(by: { abs($0.t - t) < abs($1.t - t) }).map(\.cwnd) ?? 0
        }
        func growth(near t: Double) -> Int {
            guard let i = samples.indices.min(by: { abs(samples[$0].t - t) < abs(samples[$1].t - t) }), i > 0
            else { return 0 }
            return samples[i].cwnd - samples[i - 1].cwnd
        }
        // Below W_max before K, close to it at K, above it after.
        for t in [0.5, 1.5, 2.5, 3.5] { #expect(cwnd(near: t) < 120_000) }
        #expect(abs(cwnd(near: k) - 120_000) <= 2400)
        for t in [5.5, 6.5, 7.5] { #expect(cwnd(near: t) > 120_000) }
        // Concave: growth slows down approaching K; convex: it speeds up after.
        #expect(growth(near: 0.5) > growth(near: 2.0))
        #expect(growth(near: 2.0) > growth(near: 3.5))
        #expect(growth(near: 5.5) < growth(near: 6.5))
        #expect(growth(near: 6.5) < growth(near: 7.5))
        // The window tracks W_cubic(t + RTT) within a few percent.
        for sample in samples where sample.t > 0.5 {
            let expected = 0.4 * 1200 * pow(sample.t + 0.1 - k, 3) + 120_000
            #expect(abs(Double(sample.cwnd) - expected) / expected < 0.03, "t = \(sample.t)")
        }
    }

    @Test("the Reno-friendly estimate dominates at small RTTs (§4.3)")
    func renoFriendly() {
        var cc = afterLoss()
        var pn: UInt64 = 1
        var start = origin + ms(2)
        let rtt = ms(1)
        for _ in 0..<20 { start = roundTrip(&cc, start: start, rtt: rtt, pn: &pn) }
        guard let epoch = cc.congestionAvoidanceStart else {
            Issue.record("congestion avoidance did not start")
            return
        }
        // W_est grows by α_cubic = 0.9 / 1.7 datagrams per window acknowledged; 19 full
        // windows were acknowledged after the stage began.
        #expect(cc.congestionWindow == cc.renoFriendlyWindow)
        #expect(cc.congestionWindow > cc.cubicWindow(at: start - epoch))
        let expected = 84000 + 20 * Cubic.alpha * 1200
        #expect(abs(Double(cc.congestionWindow) - expected) < 1200)
        // Once W_est passes cwnd_prior (120000), α becomes 1: one datagram per window.
        for _ in 0..<60 { start = roundTrip(&cc, start: start, rtt: rtt, pn: &pn) }
        let before = cc.congestionWindow
        #expect(before > 120_000)
        start = roundTrip(&cc, start: start, rtt: rtt, pn: &pn)
        #expect(abs(cc.congestionWindow - before - 1200) <= 60)
        #expect(cc.congestionWindow == cc.renoFriendlyWindow)
    }

    @Test("fast convergence lowers W_max when a loss happens below the previous W_max (§4.7)")
    func fastConvergence() {
        var cc = afterLoss()
        cc.onCongestionEvent(sentTime: origin + ms(2), now: origin + ms(200), lostBytes: 1200)
        #expect(cc.maximumWindowBeforeReduction == 71400)  // 84000 * (1 + 0.7) / 2
        #expect(cc.congestionWindow == 58800)
        var plain = afterLoss(fastConvergence: false)
        plain.onCongestionEvent(sentTime: origin + ms(2), now: origin + ms(200), lostBytes: 1200)
        #expect(plain.maximumWindowBeforeReduction == 84000 && plain.congestionWindow == 58800)
        // A loss above the previous W_max sets W_max to the window.
        var above = afterLoss()
        above.onPacketsAcknowledged([packet(5, sent: origin + ms(2))], now: origin + ms(100),
                                    rtt: snapshot(ms(100)), bytesInFlight: 0, isAppLimited: false)
        // 7.9 s into congestion avoidance, W_cubic(t + RTT) > 1.5 cwnd: the target is clamped.
        above.onPacketsAcknowledged([packet(6, sent: origin + ms(3), bytes: 100_000)], now: origin + ms(8000),
                                    rtt: snapshot(ms(100)), bytesInFlight: 0, isAppLimited: false)
        let window = above.congestionWindow
        #expect(window > 120_000)
        above.onCongestionEvent(sentTime: origin + ms(3), now: origin + ms(300), lostBytes: 1200)
        #expect(above.maximumWindowBeforeReduction == window)
    }

    @Test("persistent congestion: minimum window, then K = 0 and W_max = cwnd_epoch (§4.8)")
    func persistentCongestion() {
        var cc = afterLoss()
        cc.onPersistentCongestion()
        #expect(cc.congestionWindow == 2400 && cc.inSlowStart && cc.recoveryStartTime == nil)
        cc.onPacketsAcknowledged([packet(1, sent: origin, bytes: 81600)], now: origin + ms(200), rtt: snapshot(ms(100)),
                                 bytesInFlight: 0, isAppLimited: false)
        #expect(cc.congestionWindow == 84000 && !cc.inSlowStart)
        cc.onPacketsAcknowledged([packet(2, sent: origin + ms(100))], now: origin + ms(300), rtt: snapshot(ms(100)),
                                 bytesInFlight: 0, isAppLimited: false)
        #expect(cc.timeToMaximumWindow == .zero)
        #expect(cc.maximumWindowBeforeReduction == 84000)
    }

    @Test("application-limited and idle time do not count toward t (§5.8)")
    func appLimitedAndIdle() {
        var cc = afterLoss()
        let start = origin + ms(150)
        cc.onPacketsAcknowledged([packet(1, sent: origin + ms(50))], now: start, rtt: snapshot(ms(100)),
                                 bytesInFlight: 0, isAppLimited: false)
        let window = cc.congestionWindow
        #expect(cc.congestionAvoidanceStart == start)
        for i in 1...10 {
            cc.onPacketsAcknowledged([packet(UInt64(1 + i), sent: origin + ms(60))], now: start + ms(100 * i),
                                     rtt: snapshot(ms(100)), bytesInFlight: 0, isAppLimited: true)
        }
        #expect(cc.congestionWindow == window)
        #expect(cc.congestionAvoidanceStart == start + .seconds(1))
        // Idle for 5 s after the last ACK; sending resumes with nothing in flight.
        cc.onPacketSent(bytes: 1200, now: start + .seconds(6), bytesInFlight: 1200)
        #expect(cc.congestionAvoidanceStart == start + .seconds(6))
        // Not idle: nothing moves.
        cc.onPacketSent(bytes: 1200, now: start + .seconds(7), bytesInFlight: 2400)
        #expect(cc.congestionAvoidanceStart == start + .seconds(6))
    }

    @Test("a spurious congestion event restores the previous state (§4.9)")
    func spurious() {
        let before = afterLoss()
        var cc = before
        cc.onCongestionEvent(sentTime: origin + ms(5), now: origin + ms(200), lostBytes: 1200)
        #expect(cc.congestionWindow == 58800)
        cc.onSpuriousCongestion()
        #expect(cc.congestionWindow == 84000 && cc.ssthresh == 84000)
        #expect(cc.maximumWindowBeforeReduction == 120_000 && cc.recoveryStartTime == origin + ms(1))
        cc.onSpuriousCongestion()
        #expect(cc.congestionWindow == 84000)
    }
}

// MARK: - Dispatch

@Suite("Congestion dispatch")
struct CongestionDispatchTests {
    @Test("the wrapper behaves exactly as the controller it runs, its stored window and datagram size included", arguments: CongestionAlgorithm.allCases)
    func dispatch(algorithm: CongestionAlgorithm) {
        var wrapped = Congestion(algorithm: algorithm)
        #expect(wrapped.algorithm == algorithm)
        var reno = NewReno()
        var cubic = Cubic()
        var bbr = BBR()
        func apply<C: CongestionController>(_ cc: inout C) {
            cc.onPacketSent(bytes: 1200, now: origin, bytesInFlight: 1200)
            cc.onPacketsAcknowledged([packet(0, sent: origin, bytes: 60000)], now: origin + ms(100), rtt: snapshot(ms(100)),
                                     bytesInFlight: 0, isAppLimited: false)
            cc.onCongestionEvent(sentTime: origin + ms(10), now: origin + ms(110), lostBytes: 1200)
            cc.onPacketsAcknowledged([packet(1, sent: origin + ms(120), bytes: 12000)], now: origin + ms(220),
                                     rtt: snapshot(ms(100)), bytesInFlight: 0, isAppLimited: false)
            cc.onECNCongestion(sentTime: origin + ms(200), now: origin + ms(300))
            cc.onSpuriousCongestion()
            cc.setMaxDatagramSize(1500)
            cc.onPersistentCongestion()
        }
        apply(&wrapped)
        func expectSameState(_ reference: some CongestionController) {
            #expect(wrapped.congestionWindow == reference.congestionWindow)
            #expect(wrapped.ssthresh == reference.ssthresh)
            #expect(wrapped.recoveryStartTime == reference.recoveryStartTime)
            #expect(wrapped.inSlowStart == reference.inSlowStart)
            #expect(wrapped.maxDatagramSize == reference.maxDatagramSize)
            #expect(wrapped.minimumWindow == reference.minimumWindow)
        }
        switch algorithm {
        case .newReno:
            apply(&reno)
            expectSameState(reno)
        case .cubic:
            apply(&cubic)
            expectSameState(cubic)
        case .bbr:
            apply(&bbr)
            expectSameState(bbr)
            #expect(wrapped.bbr == bbr)
        }
        #expect(wrapped.congestionWindow == 3000 && wrapped.minimumWindow == 3000)
        #expect(wrapped.maxDatagramSize == 1500 && wrapped.inSlowStart && wrapped.recoveryStartTime == nil)
        #expect((wrapped.ssthresh != nil) == (algorithm != .bbr))  // BBR has no slow start threshold
    }
    @Test("sends while others are in flight reach CUBIC only with the next idle restart, which then moves its epoch as if each had")
    func idleRestartAfterUnreportedSends() {
        // Congestion avoidance from a loss, acknowledged data, sends at 230 and 250 ms while
        // others are in flight, idle until 400 ms, then growth: the epoch moves by the idle
        // time since the last send (RFC 9438 §5.8), 150 ms, not since the last ACK (180 ms).
        func run<C: CongestionController>(_ cc: inout C, sendsInFlight: Bool) -> Int {
            cc.onPacketsAcknowledged([packet(0, sent: origin, bytes: 60000)], now: origin + ms(100), rtt: snapshot(ms(100)),
                                     bytesInFlight: 0, isAppLimited: false)
            cc.onCongestionEvent(sentTime: origin + ms(10), now: origin + ms(110), lostBytes: 1200)
            cc.onPacketsAcknowledged([packet(1, sent: origin + ms(120), bytes: 12000)], now: origin + ms(220),
                                     rtt: snapshot(ms(100)), bytesInFlight: 0, isAppLimited: false)
            if sendsInFlight {
                cc.onPacketSent(bytes: 1200, now: origin + ms(230), bytesInFlight: 2400)
                cc.onPacketSent(bytes: 1200, now: origin + ms(250), bytesInFlight: 3600)
            }
            cc.onPacketSent(bytes: 1200, now: origin + ms(400), bytesInFlight: 1200)
            cc.onPacketsAcknowledged([packet(2, sent: origin + ms(400), bytes: 30000)], now: origin + ms(900),
                                     rtt: snapshot(ms(100)), bytesInFlight: 0, isAppLimited: false)
            return cc.congestionWindow
        }
        var wrapped = Congestion(algorithm: .cubic)
        var cubic = Cubic()
        var withoutSends = Cubic()
        let window = run(&wrapped, sendsInFlight: true)
        #expect(window == run(&cubic, sendsInFlight: true))
        #expect(window != run(&withoutSends, sendsInFlight: false), "the scenario must depend on the sends")
    }
}

// MARK: - Robustness

@Suite("Congestion control robustness")
struct CongestionRobustnessTests {
    @Test("extreme inputs never trap and keep the window in bounds", arguments: CongestionAlgorithm.allCases)
    func extremeInputs(algorithm: CongestionAlgorithm) {
        var cc = Congestion(algorithm: algorithm)
        let extremes: [Instant] = [Instant(nanoseconds: 0), origin, Instant(nanoseconds: .max)]
        let sizes = [Int.min, -1, 0, 1, Int.max]
        let rtts: [Duration] = [.zero, .nanoseconds(-5), .nanoseconds(1), .seconds(Int64.max)]
        for now in extremes {
            for bytes in sizes {
                for rtt in rtts {
                    cc.onPacketSent(bytes: bytes, now: now, bytesInFlight: bytes)
                    cc.onPacketsAcknowledged([packet(.max, sent: now, bytes: bytes)], now: now,
                                             rtt: RTTSnapshot(smoothedRTT: rtt, minRTT: rtt, latestRTT: rtt),
                                             bytesInFlight: bytes, isAppLimited: false)
                    #expect(cc.congestionWindow >= cc.minimumWindow)
                    #expect(cc.congestionWindow <= CongestionControl.maximumWindow)
                }
                cc.onCongestionEvent(sentTime: now, now: now, lostBytes: bytes)
                cc.setMaxDatagramSize(bytes)
                #expect(cc.congestionWindow >= cc.minimumWindow)
            }
        }
        // Saturation: a huge acknowledged packet pins the window at the maximum.
        var big = Congestion(algorithm: algorithm)
        for i in 0..<4 {
            big.onPacketsAcknowledged([packet(UInt64(i), sent: origin, bytes: .max)], now: origin + .seconds(Int64(i)),
                                      rtt: snapshot(ms(100)), bytesInFlight: 0, isAppLimited: false)
        }
        #expect(big.congestionWindow == CongestionControl.maximumWindow)
        big.onCongestionEvent(sentTime: origin + .seconds(10), now: origin + .seconds(11), lostBytes: .max)
        big.onPacketsAcknowledged([packet(9, sent: origin + .seconds(12), bytes: .max)], now: .init(nanoseconds: .max),
                                  rtt: snapshot(.seconds(Int64.max)), bytesInFlight: .max, isAppLimited: false)
        #expect(big.congestionWindow <= CongestionControl.maximumWindow)
    }

    @Test("10,000 round trips with periodic losses stay within bounds", arguments: CongestionAlgorithm.allCases)
    func longTransfer(algorithm: CongestionAlgorithm) {
        var cc = Congestion(algorithm: algorithm)
        var rng = SeededGenerator(seed: 0x9002_9438)
        var now = origin
        var pn: UInt64 = 0
        var losses = 0
        var largest = 0
        // These rounds deliver all they send, faster every round: a path without a bottleneck.
        // BBR stays in Startup there (one lost packet a round is no high-loss exit, §5.3.1.3),
        // so only the absolute bound applies to it.
        let bound = algorithm == .bbr ? CongestionControl.maximumWindow : 1 << 34
        for roundIndex in 0..<10_000 {
            let rtt = Duration.milliseconds(Int.random(in: 10...200, using: &rng))
            let size = cc.maxDatagramSize
            let chunks = min(max(cc.congestionWindow / size, 1), 32)
            let chunkBytes = cc.congestionWindow / chunks
            let appLimited = Int.random(in: 0..<20, using: &rng) == 0
            let lossAt: Int? = roundIndex == 5 || roundIndex % 41 == 40 || Int.random(in: 0..<30, using: &rng) == 0
                ? Int.random(in: 0..<chunks, using: &rng) : nil
            var sent: [AckedPacketInfo] = []
            for i in 0..<chunks {
                let time = now + rtt / chunks * i
                cc.onPacketSent(bytes: chunkBytes, now: time, bytesInFlight: (i + 1) * chunkBytes)
                sent.append(packet(pn, sent: time, bytes: chunkBytes))
                pn += 1
            }
            for (i, p) in sent.enumerated() {
                let ackTime = p.sentTime + rtt
                if i == lossAt {
                    losses += 1
                    cc.onCongestionEvent(sentTime: p.sentTime, now: ackTime, lostBytes: p.bytes)
                    switch Int.random(in: 0..<40, using: &rng) {
                    case 0: cc.onPersistentCongestion()
                    case 1: cc.onSpuriousCongestion()
                    default: break
                    }
                    continue
                }
                if Int.random(in: 0..<2000, using: &rng) == 0 {
                    cc.onECNCongestion(sentTime: p.sentTime, now: ackTime)
                }
                cc.onPacketsAcknowledged([p], now: ackTime, rtt: snapshot(rtt),
                                         bytesInFlight: (chunks - i - 1) * chunkBytes, isAppLimited: appLimited)
            }
            if Int.random(in: 0..<1000, using: &rng) == 0 {
                cc.setMaxDatagramSize([1200, 1350, 1500, 9000].randomElement(using: &rng) ?? 1200)
            }
            now = now + rtt
            largest = max(largest, cc.congestionWindow)
            #expect(cc.congestionWindow >= cc.minimumWindow)
            #expect(cc.congestionWindow <= bound)
            if cc.congestionWindow < cc.minimumWindow || cc.congestionWindow > bound { break }
        }
        #expect(losses > 300)
        #expect(largest > 12000)
    }
}

// MARK: - Pacer

@Suite("Pacer (RFC 9002 §7.7)")
struct CongestionPacerTests {
    @Test("rate = 1.25 * cwnd / smoothed_rtt; burst capacity bounds")
    func rateAndCapacity() {
        #expect(Pacer.rate(congestionWindow: 120_000, smoothedRTT: ms(100)) == 1_500_000)
        #expect(Pacer.rate(congestionWindow: 12000, smoothedRTT: ms(10)) == 1_500_000)
        #expect(Pacer.rate(congestionWindow: 0, smoothedRTT: ms(10)) == 0)
        #expect(Pacer.rate(congestionWindow: Int.max, smoothedRTT: .nanoseconds(1)) == Int.max)
        // Lower bound: the initial window.
        #expect(Pacer.capacity(congestionWindow: 120_000, smoothedRTT: ms(100), maxDatagramSize: 1200) == 12000)
        #expect(Pacer.capacity(congestionWindow: 120_000, smoothedRTT: ms(100), maxDatagramSize: 9000) == 18000)
        // cwnd * 2 ms / srtt in between.
        #expect(Pacer.capacity(congestionWindow: 1_200_000, smoothedRTT: ms(50), maxDatagramSize: 1200) == 48000)
        // Upper bound: 256 datagrams.
        #expect(Pacer.capacity(congestionWindow: 12_000_000, smoothedRTT: ms(10), maxDatagramSize: 1200) == 307_200)
        #expect(Pacer.capacity(congestionWindow: Int.max, smoothedRTT: .zero, maxDatagramSize: 1200) == 12000)
    }

    @Test("a burst of the capacity, then one datagram every 800 µs, exactly")
    func exactSchedule() {
        var pacer = Pacer()
        let cwnd = 120_000
        let rtt = ms(100)
        for _ in 0..<10 {
            #expect(pacer.delay(until: origin, bytes: 1200, cwnd: cwnd, smoothedRTT: rtt) == nil)
            pacer.onSent(bytes: 1200, now: origin)
        }
        #expect(pacer.tokens == 0 && pacer.capacity == 12000)
        // interval = srtt * 1200 / (1.25 * cwnd) = 800 µs.
        #expect(pacer.delay(until: origin, bytes: 1200, cwnd: cwnd, smoothedRTT: rtt) == origin + .microseconds(800))
        #expect(pacer.delay(until: origin + .microseconds(400), bytes: 1200, cwnd: cwnd, smoothedRTT: rtt)
                == origin + .microseconds(800))
        #expect(pacer.tokens == 600)
        // A 600-byte packet fits now.
        #expect(pacer.delay(until: origin + .microseconds(400), bytes: 600, cwnd: cwnd, smoothedRTT: rtt) == nil)
        pacer.onSent(bytes: 600, now: origin + .microseconds(400))
        #expect(pacer.delay(until: origin + .microseconds(400), bytes: 1200, cwnd: cwnd, smoothedRTT: rtt)
                == origin + .microseconds(1200))
        // Sending at each returned instant gives 1250 datagrams per second: the paced rate.
        var now = origin + .microseconds(1200)
        var sends = 0
        while now < origin + .microseconds(1200) + .seconds(1) {
            if let next = pacer.delay(until: now, bytes: 1200, cwnd: cwnd, smoothedRTT: rtt) {
                #expect(next == now + .microseconds(800) || sends == 0)
                now = next
                continue
            }
            pacer.onSent(bytes: 1200, now: now)
            sends += 1
        }
        #expect(sends == 1250)
    }

    @Test("idle time refills only up to the burst capacity")
    func idleRefill() {
        var pacer = Pacer()
        let cwnd = 1_200_000
        let rtt = ms(50)  // capacity 48000 = 40 datagrams
        var sent = 0
        while pacer.delay(until: origin, bytes: 1200, cwnd: cwnd, smoothedRTT: rtt) == nil, sent < 1000 {
            pacer.onSent(bytes: 1200, now: origin)
            sent += 1
        }
        // The bucket starts with the initial window (12000) and can hold 40 datagrams.
        #expect(sent == 10)
        let later = origin + .seconds(10)
        sent = 0
        while pacer.delay(until: later, bytes: 1200, cwnd: cwnd, smoothedRTT: rtt) == nil, sent < 1000 {
            pacer.onSent(bytes: 1200, now: later)
            sent += 1
        }
        #expect(sent == 40)
        // rate = 30 MB/s: 1200 bytes take 40 µs.
        #expect(pacer.delay(until: later, bytes: 1200, cwnd: cwnd, smoothedRTT: rtt) == later + .microseconds(40))
    }

    @Test("no pacing without an RTT; oversized packets wait only for a full bucket; deterministic")
    func edges() {
        var pacer = Pacer()
        for _ in 0..<100 {
            #expect(pacer.delay(until: origin, bytes: 1200, cwnd: 12000, smoothedRTT: .zero) == nil)
            pacer.onSent(bytes: 1200, now: origin)
        }
        var empty = Pacer()
        empty.onSent(bytes: .max, now: origin)
        #expect(empty.tokens == 0)
        // 12000-byte capacity at 150 kB/s (cwnd 12000, srtt 100 ms): a huge packet waits 80 ms.
        #expect(empty.delay(until: origin, bytes: .max, cwnd: 12000, smoothedRTT: ms(100)) == origin + ms(80))
        #expect(empty.delay(until: origin + ms(80), bytes: .max, cwnd: 12000, smoothedRTT: ms(100)) == nil)
        // Extreme inputs do not trap.
        var wild = Pacer(maxDatagramSize: .max)
        for cwnd in [Int.min, -1, 0, 1, Int.max] {
            for rtt: Duration in [.nanoseconds(-1), .nanoseconds(1), .seconds(Int64.max)] {
                _ = wild.delay(until: Instant(nanoseconds: .max), bytes: Int.max, cwnd: cwnd, smoothedRTT: rtt)
                wild.onSent(bytes: Int.min, now: Instant(nanoseconds: 0))
                #expect(wild.tokens >= 0 && wild.tokens <= wild.capacity)
            }
        }
        // The same inputs give the same schedule.
        func schedule() -> [Instant?] {
            var p = Pacer()
            var out: [Instant?] = []
            for i in 0..<50 {
                let now = origin + .microseconds(137 * i)
                let d = p.delay(until: now, bytes: 1000 + i, cwnd: 30000 + 100 * i, smoothedRTT: ms(20 + i % 7))
                out.append(d)
                if d == nil { p.onSent(bytes: 1000 + i, now: now) }
            }
            return out
        }
        #expect(schedule() == schedule())
    }
}
