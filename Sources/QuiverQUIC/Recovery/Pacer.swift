package import QuiverCore

/// A token-bucket pacer (RFC 9002 §7.7).
///
/// The bucket fills at `rate = N * congestion_window / smoothed_rtt` with `N = 1.25`, up to a
/// burst capacity of `congestion_window * 2 ms / smoothed_rtt`, never below the initial window
/// (RFC 9002 §7.7: "limit bursts to the initial congestion window") nor above
/// 256 datagrams. Arithmetic is integral (bytes and nanoseconds), so a schedule is exactly
/// reproducible.
///
/// A controller that computes its own pacing rate (BBR, draft-ietf-ccwg-bbr §5.6.2) uses
/// ``delay(until:bytes:rate:)`` instead: the bucket then fills at that rate, with a burst
/// capacity of `rate * 2 ms` under the same bounds.
///
/// Use: before sending a paced packet call ``delay(until:bytes:cwnd:smoothedRTT:)``; if it
/// returns an instant, arm a timer for it and try again then; otherwise send and call
/// ``onSent(bytes:now:)``. Packets carrying only ACK frames should not be paced (§7.7).
package struct Pacer: Hashable, Sendable {
    /// The numerator of `N = 5/4` (RFC 9002 §7.7).
    public static let rateNumerator = 5
    /// The denominator of `N = 5/4` (RFC 9002 §7.7).
    public static let rateDenominator = 4
    /// The sending time a burst may cover at the paced rate's base (`cwnd / smoothed_rtt`).
    public static let burstInterval: Duration = .milliseconds(2)
    /// The most datagrams one burst may hold.
    public static let maximumBurstDatagrams = 256

    /// The maximum datagram size, which bounds the burst capacity.
    public private(set) var maxDatagramSize: Int
    /// The bucket's capacity in bytes: the largest burst.
    public private(set) var capacity: Int
    /// The bytes that may be sent now without waiting.
    public private(set) var tokens: Int
    /// When the bucket was last refilled; `nil` before the first use.
    private var lastRefill: Instant?
    /// The current rate is `rateBytes` per `rateInterval` nanoseconds: `N * cwnd` per
    /// `smoothed_rtt`, or an explicit rate per second. Pacing is off while either is 0.
    private var rateBytes = 0
    private var rateInterval: Int64 = 0
    /// Whether the rate is an explicit one (``delay(until:bytes:rate:)``) rather than `N * cwnd`
    /// per `smoothed_rtt`.
    private var explicitRate = false

    /// Creates a pacer with a full bucket of one initial window (RFC 9002 §7.2).
    ///
    /// - Parameter maxDatagramSize: The maximum datagram size, clamped to `1200 ... 65527`.
    public init(maxDatagramSize: Int = CongestionControl.defaultMaxDatagramSize) {
        self.maxDatagramSize = CongestionControl.clampedDatagramSize(maxDatagramSize)
        self.capacity = CongestionControl.initialWindow(maxDatagramSize: self.maxDatagramSize)
        self.tokens = capacity
    }

    /// The pacing rate `N * congestion_window / smoothed_rtt` in bytes per second
    /// (RFC 9002 §7.7); 0 when either input is not positive.
    public static func rate(congestionWindow: Int, smoothedRTT: Duration) -> Int {
        let rtt = smoothedRTT.nanosecondsClamped
        guard congestionWindow > 0, rtt > 0 else { return 0 }
        let r = Int128(congestionWindow) * Int128(rateNumerator) * 1_000_000_000 / (Int128(rateDenominator) * Int128(rtt))
        return Int(min(r, Int128(Int.max)))
    }

    /// The burst capacity for a window and RTT: `cwnd * burstInterval / smoothed_rtt`, clamped to
    /// `initialWindow ... max(initialWindow, 256 * maxDatagramSize)`.
    public static func capacity(congestionWindow: Int, smoothedRTT: Duration, maxDatagramSize: Int) -> Int {
        let size = CongestionControl.clampedDatagramSize(maxDatagramSize)
        let lower = CongestionControl.initialWindow(maxDatagramSize: size)
        let upper = max(lower, maximumBurstDatagrams * size)
        let rtt = Int(smoothedRTT.nanosecondsClamped)
        let burst = CongestionControl.mulDiv(congestionWindow, Int(burstInterval.nanosecondsClamped), rtt)
        return min(max(burst, lower), upper)
    }

    /// Changes the maximum datagram size (after path MTU discovery).
    public mutating func setMaxDatagramSize(_ size: Int) {
        maxDatagramSize = CongestionControl.clampedDatagramSize(size)
        updateRate(bytes: rateBytes, interval: rateInterval, explicit: explicitRate, force: true)
    }

    /// When a packet of `bytes` may be sent (RFC 9002 §7.7).
    ///
    /// Refills the bucket up to `now` at the rate for `cwnd` and `smoothedRTT`. Pacing is off
    /// (the answer is `nil`) while either is not positive.
    ///
    /// - Parameters:
    ///   - now: The current time.
    ///   - bytes: The size of the next packet; at most ``capacity`` bytes are waited for.
    ///   - cwnd: The congestion window in bytes.
    ///   - smoothedRTT: The smoothed RTT.
    /// - Returns: `nil` if the packet may be sent now, otherwise the earliest instant it may.
    public mutating func delay(until now: Instant, bytes: Int, cwnd: Int, smoothedRTT: Duration) -> Instant? {
        delay(until: now, bytes: bytes, cwnd: cwnd, smoothedRTTNanoseconds: smoothedRTT.nanosecondsClamped)
    }

    /// ``delay(until:bytes:cwnd:smoothedRTT:)`` with the smoothed RTT in nanoseconds
    /// (``RTTEstimator/smoothedRTTNanoseconds``), as the connection calls it for every packet.
    public mutating func delay(until now: Instant, bytes: Int, cwnd: Int, smoothedRTTNanoseconds: Int64) -> Instant? {
        // N * cwnd per smoothed_rtt, as bytes per nanoseconds (cwnd <= 2^48 keeps 5 * cwnd exact).
        let window = CongestionControl.clampedBytes(cwnd)
        let rtt = min(max(smoothedRTTNanoseconds, 0), Int64.max / Int64(Self.rateDenominator))
        updateRate(bytes: window * Self.rateNumerator, interval: rtt * Int64(Self.rateDenominator), explicit: false)
        return delay(until: now, bytes: bytes)
    }

    /// When a packet of `bytes` may be sent at an explicit pacing rate (a controller's own,
    /// such as BBR's `C.pacing_rate`, draft-ietf-ccwg-bbr §5.6.2).
    ///
    /// - Parameters:
    ///   - now: The current time.
    ///   - bytes: The size of the next packet; at most ``capacity`` bytes are waited for.
    ///   - rate: The rate in bytes per second; pacing is off while it is not positive.
    /// - Returns: `nil` if the packet may be sent now, otherwise the earliest instant it may.
    public mutating func delay(until now: Instant, bytes: Int, rate: Int) -> Instant? {
        let rate = CongestionControl.clampedBytes(rate)
        updateRate(bytes: rate, interval: 1_000_000_000, explicit: true)
        return delay(until: now, bytes: bytes)
    }

    private mutating func delay(until now: Instant, bytes: Int) -> Instant? {
        guard rateBytes > 0, rateInterval > 0 else {
            lastRefill = now
            tokens = capacity
            return nil
        }
        refill(now: now)
        let needed = min(max(bytes, 0), capacity)
        if tokens >= needed { return nil }
        // wait = deficit * interval / bytes, rounded up so the bucket holds `needed` bytes at
        // the returned instant.
        let numerator = Int128(needed - tokens) * Int128(rateInterval)
        let denominator = Int128(rateBytes)
        let wait = (numerator + denominator - 1) / denominator
        return now + .nanoseconds(Int64(min(wait, Int128(Int64.max))))
    }

    /// Takes `bytes` from the bucket for a packet sent at `now`.
    public mutating func onSent(bytes: Int, now: Instant) {
        if rateBytes > 0, rateInterval > 0 { refill(now: now) }
        tokens = max(tokens - min(max(bytes, 0), tokens), 0)
    }

    /// Sets the rate to `bytes` per `interval` nanoseconds, and the burst capacity to
    /// ``burstInterval`` at the base rate — without `N` for a window-derived rate (`cwnd` per
    /// `smoothed_rtt`) — within the capacity's bounds.
    private mutating func updateRate(bytes: Int, interval: Int64, explicit: Bool, force: Bool = false) {
        guard force || bytes != rateBytes || interval != rateInterval || explicit != explicitRate else { return }
        rateBytes = bytes
        rateInterval = interval
        explicitRate = explicit
        let base = explicit ? bytes : bytes / Self.rateNumerator  // exact: bytes = N numerator * cwnd
        let baseInterval = explicit ? interval : interval / Int64(Self.rateDenominator)
        capacity = Self.capacity(congestionWindow: base, smoothedRTT: .nanoseconds(baseInterval), maxDatagramSize: maxDatagramSize)
        tokens = min(tokens, capacity)
    }

    private mutating func refill(now: Instant) {
        guard let last = lastRefill else {
            lastRefill = now
            return
        }
        guard now > last else { return }
        let elapsed = (now - last).nanosecondsClamped
        let added = Int128(elapsed) * Int128(rateBytes) / Int128(rateInterval)
        tokens = Int(min(Int128(tokens) + added, Int128(capacity)))
        lastRefill = now
    }
}
