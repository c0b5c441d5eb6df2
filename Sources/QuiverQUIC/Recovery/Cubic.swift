package import QuiverCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The CUBIC congestion controller of RFC 9438, in bytes, on the QUIC signals of RFC 9002.
///
/// Segment-based quantities of RFC 9438 are converted with `maxDatagramSize` as the segment
/// size: `W_cubic(t) = C * maxDatagramSize * (t - K)^3 + W_max` with `W_max` in bytes and `t`,
/// `K` in seconds.
///
/// - Slow start as in RFC 9002 §7.3.1 (RFC 9438 §4.10; HyStart++ is not implemented).
/// - Multiplicative decrease by `β_cubic = 0.7` once per recovery period (RFC 9438 §4.6,
///   RFC 9002 §7.3.2), with fast convergence (§4.7).
/// - Congestion avoidance (§4.2–§4.5): `t` runs from the first acknowledgment after recovery,
///   the target `W_cubic(t + RTT)` (smoothed RTT) is clamped to `cwnd ... 1.5 * cwnd`, and the
///   window grows by `(target - cwnd) / cwnd` per acknowledged segment — unless the
///   Reno-friendly estimate `W_est` (§4.3) is larger.
/// - Application-limited time and idle periods are excluded from `t`, and the window does
///   not grow while application limited (RFC 9438 §5.8, RFC 9002 §7.8).
/// - Persistent congestion collapses the window to `kMinimumWindow`; the next congestion
///   avoidance stage starts with `K = 0` and `W_max` = the window at its start (§4.8).
/// - A spurious congestion event restores the state saved before it (§4.9).
package struct Cubic: CongestionController, Hashable {
    /// The cubic constant `C`, in segments per second cubed (RFC 9438 §5.1).
    public static let c = 0.4
    /// The multiplicative decrease factor `β_cubic` (RFC 9438 §4.6).
    public static let beta = 0.7
    /// The Reno-friendly additive increase factor `α_cubic = 3 (1 - β) / (1 + β)` (RFC 9438 §4.3).
    public static let alpha = 3 * (1 - beta) / (1 + beta)

    /// The congestion window in bytes.
    public private(set) var congestionWindow: Int
    /// The slow start threshold in bytes; `nil` is infinite.
    public private(set) var ssthresh: Int?
    /// The start of the current recovery period (RFC 9002 §7.3.2).
    public private(set) var recoveryStartTime: Instant?
    /// The maximum datagram size, used as the segment size.
    public private(set) var maxDatagramSize: Int
    /// The start of the current congestion avoidance stage (`t = 0`), shifted forward by
    /// application-limited and idle time; `nil` outside congestion avoidance.
    public private(set) var congestionAvoidanceStart: Instant?
    /// Whether fast convergence is enabled (RFC 9438 §4.7).
    public let fastConvergence: Bool

    /// `W_max` in bytes (RFC 9438 §4.2): the window just before the last reduction, or less
    /// with fast convergence. 0 before the first congestion event.
    private var wMax: Double = 0
    /// `K` in seconds (RFC 9438 §4.2).
    private var k: Double = 0
    /// `cwnd_epoch` in bytes: the window at the start of congestion avoidance (RFC 9438 §4.2).
    private var cwndEpoch: Double = 0
    /// `W_est` in bytes, the Reno-friendly estimate (RFC 9438 §4.3).
    private var wEst: Double = 0
    /// `cwnd_prior` in bytes: the window before the last reduction (RFC 9438 §4.3, §4.6).
    private var cwndPrior: Double = 0
    /// The fractional bytes of congestion-avoidance growth not yet added to the window.
    private var growthCarry: Double = 0
    /// Whether persistent congestion happened since the last congestion avoidance stage.
    private var afterPersistentCongestion = false
    /// The last time an ACK was processed.
    private var lastAckTime: Instant?
    /// The last time a packet was sent.
    private var lastSentTime: Instant?
    /// State saved by the last congestion event, for ``onSpuriousCongestion()``.
    private var prior: Prior?

    private struct Prior: Hashable, Sendable {
        var congestionWindow: Int
        var ssthresh: Int?
        var recoveryStartTime: Instant?
        var congestionAvoidanceStart: Instant?
        var wMax: Double
        var k: Double
        var cwndEpoch: Double
        var wEst: Double
        var cwndPrior: Double
        var growthCarry: Double
    }

    /// Creates a controller in slow start with the initial window of RFC 9002 §7.2.
    ///
    /// - Parameters:
    ///   - maxDatagramSize: The maximum datagram size, clamped to `1200 ... 65527`.
    ///   - fastConvergence: Whether to release bandwidth faster to new flows (RFC 9438 §4.7).
    public init(maxDatagramSize: Int = CongestionControl.defaultMaxDatagramSize, fastConvergence: Bool = true) {
        self.maxDatagramSize = CongestionControl.clampedDatagramSize(maxDatagramSize)
        self.congestionWindow = CongestionControl.initialWindow(maxDatagramSize: self.maxDatagramSize)
        self.fastConvergence = fastConvergence
    }

    /// `2 * maxDatagramSize` (RFC 9002 §7.2).
    public var minimumWindow: Int { CongestionControl.minimumWindow(maxDatagramSize: maxDatagramSize) }

    /// Whether the window is below the slow start threshold.
    public var inSlowStart: Bool { ssthresh.map { congestionWindow < $0 } ?? true }

    /// `W_max` in bytes (RFC 9438 §4.2); 0 before the first congestion event.
    public var maximumWindowBeforeReduction: Int { CongestionControl.bytes(wMax) }

    /// `K`, the time the cubic function takes to climb back to `W_max` (RFC 9438 §4.2).
    public var timeToMaximumWindow: Duration { .nanoseconds(Int64(clamping: CongestionControl.bytes(k * 1e9))) }

    /// `W_est` in bytes, the Reno-friendly window estimate (RFC 9438 §4.3).
    public var renoFriendlyWindow: Int { CongestionControl.bytes(wEst) }

    /// `W_cubic(t) = C * (t - K)^3 + W_max` in bytes for the current `K` and `W_max`
    /// (RFC 9438 §4.2), clamped to `0 ... CongestionControl.maximumWindow`.
    ///
    /// - Parameter elapsed: `t`, the time since the start of congestion avoidance.
    public func cubicWindow(at elapsed: Duration) -> Int {
        CongestionControl.bytes(wCubic(CongestionControl.seconds(elapsed)))
    }

    private func wCubic(_ t: Double) -> Double {
        let d = t - k
        return Self.c * Double(maxDatagramSize) * d * d * d + wMax
    }

    /// Changes the maximum datagram size (RFC 9002 §7.2): an untouched initial window is
    /// recalculated, and the window never falls below the new minimum window.
    public mutating func setMaxDatagramSize(_ size: Int) {
        let newSize = CongestionControl.clampedDatagramSize(size)
        let oldInitial = CongestionControl.initialWindow(maxDatagramSize: maxDatagramSize)
        maxDatagramSize = newSize
        if ssthresh == nil, recoveryStartTime == nil, congestionWindow == oldInitial {
            congestionWindow = CongestionControl.initialWindow(maxDatagramSize: newSize)
        }
        congestionWindow = max(congestionWindow, minimumWindow)
        if congestionAvoidanceStart != nil {
            k = Self.k(wMax: wMax, cwndEpoch: cwndEpoch, segment: Double(newSize))
        }
    }

    /// Excludes an idle period from `t` when sending resumes (RFC 9438 §5.8).
    public mutating func onPacketSent(bytes: Int, now: Instant, bytesInFlight: Int) {
        defer { lastSentTime = max(lastSentTime ?? now, now) }
        guard bytesInFlight <= bytes, let start = congestionAvoidanceStart else { return }
        let idleSince: Instant? = switch (lastSentTime, lastAckTime) {
        case let (sent?, ack?): max(sent, ack)
        case let (sent, ack): sent ?? ack
        }
        if let idleSince, now > idleSince {
            congestionAvoidanceStart = start + (now - idleSince)
        }
    }

    /// Slow start, or CUBIC / Reno-friendly growth in congestion avoidance (RFC 9438 §4.2–§4.5).
    public mutating func onPacketsAcknowledged(
        _ packets: some Sequence<AckedPacketInfo>, now: Instant, rtt: RTTSnapshot, bytesInFlight: Int, isAppLimited: Bool
    ) {
        let previousAck = lastAckTime
        lastAckTime = max(previousAck ?? now, now)
        if isAppLimited {
            // RFC 9438 §5.8: application-limited time does not count toward t; RFC 9002 §7.8:
            // no growth.
            if let start = congestionAvoidanceStart, let previousAck, now > previousAck {
                congestionAvoidanceStart = start + (now - previousAck)
            }
            return
        }
        for packet in packets {
            if let start = recoveryStartTime, packet.sentTime <= start { continue }
            let acked = CongestionControl.clampedBytes(packet.bytes)
            if inSlowStart {
                congestionWindow = CongestionControl.add(congestionWindow, acked)
            } else {
                congestionAvoidance(acked: acked, now: now, rtt: rtt)
            }
        }
    }

    private mutating func congestionAvoidance(acked: Int, now: Instant, rtt: RTTSnapshot) {
        let start: Instant
        if let existing = congestionAvoidanceStart {
            start = existing
        } else {
            start = now
            startCongestionAvoidance(at: now)
        }
        let cwnd = Double(congestionWindow)
        let segment = Double(maxDatagramSize)
        let ackedBytes = Double(acked)
        let t = CongestionControl.seconds(from: start, to: now)

        // §4.3: the Reno-friendly estimate, α_cubic until it reaches cwnd_prior, then 1.
        let alpha = wEst >= cwndPrior ? 1.0 : Self.alpha
        wEst = min(wEst + alpha * segment * ackedBytes / cwnd, Double(CongestionControl.maximumWindow))

        if wCubic(t) < wEst {
            // §4.3: Reno-friendly region.
            congestionWindow = max(congestionWindow, CongestionControl.bytes(wEst))
            growthCarry = 0
        } else {
            // §4.4, §4.5: concave and convex regions, target clamped to cwnd ... 1.5 cwnd.
            let target = min(max(wCubic(t + CongestionControl.seconds(nanoseconds: rtt.smoothedRTTNanoseconds)), cwnd), 1.5 * cwnd)
            let growth = (target - cwnd) * ackedBytes / cwnd + growthCarry
            let whole = growth.rounded(.down)
            growthCarry = growth - whole
            congestionWindow = CongestionControl.add(congestionWindow, CongestionControl.bytes(whole))
        }
    }

    private mutating func startCongestionAvoidance(at now: Instant) {
        congestionAvoidanceStart = now
        cwndEpoch = Double(congestionWindow)
        if afterPersistentCongestion {
            // §4.8: after a timeout, K = 0 and W_max is the window at the stage's start.
            afterPersistentCongestion = false
            wMax = cwndEpoch
        }
        k = Self.k(wMax: wMax, cwndEpoch: cwndEpoch, segment: Double(maxDatagramSize))
        wEst = cwndEpoch
        growthCarry = 0
    }

    /// `K = cubic_root((W_max - cwnd_epoch) / C)` in seconds, 0 when `cwnd_epoch >= W_max`
    /// (RFC 9438 §4.2).
    private static func k(wMax: Double, cwndEpoch: Double, segment: Double) -> Double {
        guard wMax > cwndEpoch, segment > 0 else { return 0 }
        return cbrt((wMax - cwndEpoch) / (c * segment))
    }

    /// Enters recovery and reduces the window by `β_cubic`, with fast convergence, unless
    /// already recovering (RFC 9438 §4.6, §4.7; RFC 9002 §7.3.2).
    public mutating func onCongestionEvent(sentTime: Instant, now: Instant, lostBytes: Int) {
        if let start = recoveryStartTime, sentTime <= start { return }
        prior = Prior(
            congestionWindow: congestionWindow, ssthresh: ssthresh, recoveryStartTime: recoveryStartTime,
            congestionAvoidanceStart: congestionAvoidanceStart, wMax: wMax, k: k, cwndEpoch: cwndEpoch, wEst: wEst,
            cwndPrior: cwndPrior, growthCarry: growthCarry)
        recoveryStartTime = now
        let cwnd = Double(congestionWindow)
        wMax = fastConvergence && cwnd < wMax ? cwnd * (1 + Self.beta) / 2 : cwnd
        cwndPrior = cwnd
        let threshold = max(congestionWindow * 7 / 10, minimumWindow)  // β_cubic = 0.7
        ssthresh = threshold
        congestionWindow = threshold
        congestionAvoidanceStart = nil
        growthCarry = 0
    }

    /// An ECN-CE increase is a congestion event (RFC 9002 §7.1, RFC 9438 §4.6).
    public mutating func onECNCongestion(sentTime: Instant, now: Instant) {
        onCongestionEvent(sentTime: sentTime, now: now, lostBytes: 0)
    }

    /// Collapses the window to `kMinimumWindow` and ends recovery (RFC 9002 §7.6.2,
    /// RFC 9438 §4.8).
    public mutating func onPersistentCongestion() {
        congestionWindow = minimumWindow
        recoveryStartTime = nil
        congestionAvoidanceStart = nil
        afterPersistentCongestion = true
        growthCarry = 0
    }

    /// Restores the state saved by the last congestion event (RFC 9438 §4.9).
    public mutating func onSpuriousCongestion() {
        guard let saved = prior else { return }
        prior = nil
        congestionWindow = max(congestionWindow, saved.congestionWindow)
        ssthresh = saved.ssthresh
        recoveryStartTime = saved.recoveryStartTime
        congestionAvoidanceStart = saved.congestionAvoidanceStart
        wMax = saved.wMax
        k = saved.k
        cwndEpoch = saved.cwndEpoch
        wEst = saved.wEst
        cwndPrior = saved.cwndPrior
        growthCarry = saved.growthCarry
        afterPersistentCongestion = false
    }
}
