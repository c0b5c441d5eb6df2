package import QuiverCore

/// A token-bucket pacer (RFC 9002 §7.7).
///
/// The bucket fills at `rate = N * congestion_window / smoothed_rtt` with `N = 1.25`, up to a
/// burst capacity of `congestion_window * 2 ms / smoothed_rtt`, never below the initial window
/// (RFC 9002 §7.7: "limit bursts to the initial congestion window") nor above
/// 256 datagrams. Arithmetic is integral (bytes and nanoseconds), so a schedule is exactly
/// reproducible.
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
    /// The window of the current rate, in bytes.
    private var congestionWindow = 0
    /// The smoothed RTT of the current rate, in nanoseconds.
    private var smoothedRTTNanoseconds: Int64 = 0

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
        updateRate(congestionWindow: congestionWindow, smoothedRTTNanoseconds: smoothedRTTNanoseconds, force: true)
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
        updateRate(congestionWindow: cwnd, smoothedRTTNanoseconds: smoothedRTTNanoseconds)
        guard congestionWindow > 0, smoothedRTTNanoseconds > 0 else {
            lastRefill = now
            tokens = capacity
            return nil
        }
        refill(now: now)
        let needed = min(max(bytes, 0), capacity)
        if tokens >= needed { return nil }
        // interval = smoothed_rtt * deficit / (N * cwnd), rounded up so the bucket holds
        // `needed` bytes at the returned instant.
        let numerator = Int128(needed - tokens) * Int128(Self.rateDenominator) * Int128(smoothedRTTNanoseconds)
        let denominator = Int128(Self.rateNumerator) * Int128(congestionWindow)
        let wait = (numerator + denominator - 1) / denominator
        return now + .nanoseconds(Int64(min(wait, Int128(Int64.max))))
    }

    /// Takes `bytes` from the bucket for a packet sent at `now`.
    public mutating func onSent(bytes: Int, now: Instant) {
        if congestionWindow > 0, smoothedRTTNanoseconds > 0 { refill(now: now) }
        tokens = max(tokens - min(max(bytes, 0), tokens), 0)
    }

    private mutating func updateRate(congestionWindow cwnd: Int, smoothedRTTNanoseconds rtt: Int64, force: Bool = false) {
        let window = CongestionControl.clampedBytes(cwnd)
        let rtt = max(rtt, 0)
        guard force || window != congestionWindow || rtt != smoothedRTTNanoseconds else { return }
        congestionWindow = window
        smoothedRTTNanoseconds = rtt
        capacity = Self.capacity(
            congestionWindow: window, smoothedRTT: .nanoseconds(smoothedRTTNanoseconds), maxDatagramSize: maxDatagramSize)
        tokens = min(tokens, capacity)
    }

    private mutating func refill(now: Instant) {
        guard let last = lastRefill else {
            lastRefill = now
            return
        }
        guard now > last else { return }
        let elapsed = (now - last).nanosecondsClamped
        let added = Int128(elapsed) * Int128(congestionWindow) * Int128(Self.rateNumerator)
            / (Int128(Self.rateDenominator) * Int128(smoothedRTTNanoseconds))
        tokens = Int(min(Int128(tokens) + added, Int128(capacity)))
        lastRefill = now
    }
}
