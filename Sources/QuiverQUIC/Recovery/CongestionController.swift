package import QuiverCore

/// A sender-side congestion controller (RFC 9002 §7), driven by loss detection.
///
/// Controllers are sans-I/O values: every input carries the current ``Instant`` and nothing
/// reads a clock. The connection stores the closed enum ``Congestion`` rather than an
/// existential, so no per-packet call goes through a witness table.
///
/// Call order, per path:
/// - ``onPacketSent(bytes:now:bytesInFlight:)`` for every sent packet that counts toward
///   bytes in flight (ack-eliciting or padded; RFC 9002 §7, Appendix B.4);
/// - ``onPacketsAcknowledged(_:now:rtt:bytesInFlight:isAppLimited:)`` with the newly
///   acknowledged in-flight packets of one ACK frame (Appendix B.5);
/// - ``onCongestionEvent(sentTime:now:lostBytes:)`` with the send time of the newest lost
///   packet (Appendix B.8), then ``onPersistentCongestion()`` if loss detection established
///   persistent congestion (§7.6);
/// - ``onECNCongestion(sentTime:now:)`` when the peer's ECN-CE count increased (Appendix B.7);
/// - ``onSpuriousCongestion()`` when a packet declared lost is later acknowledged.
///
/// All windows are in bytes. Arithmetic saturates: no input, however extreme, traps, and the
/// window always stays within ``minimumWindow`` ... ``CongestionControl/maximumWindow``.
package protocol CongestionController: Sendable {
    /// The congestion window in bytes: the most bytes allowed in flight (RFC 9002 Appendix B.2).
    var congestionWindow: Int { get }

    /// The slow start threshold in bytes, or `nil` while it is still infinite (RFC 9002 §7.3.1).
    var ssthresh: Int? { get }

    /// Whether the window is below the slow start threshold (RFC 9002 §7.3.1).
    var inSlowStart: Bool { get }

    /// When the current recovery period started, or `nil` if none has (RFC 9002 §7.3.2).
    ///
    /// A packet sent at or before this instant belongs to the recovery period; the period ends
    /// once a later packet is acknowledged.
    var recoveryStartTime: Instant? { get }

    /// The maximum datagram size used for window arithmetic (RFC 9002 Appendix B.2).
    var maxDatagramSize: Int { get }

    /// The minimum congestion window, `2 * maxDatagramSize` (RFC 9002 §7.2).
    var minimumWindow: Int { get }

    /// Changes the maximum datagram size, for example after path MTU discovery.
    ///
    /// Values are clamped to `1200 ... 65527`. An untouched initial window is recalculated
    /// with the new size and the window never drops below the new minimum (RFC 9002 §7.2).
    mutating func setMaxDatagramSize(_ size: Int)

    /// Records a sent packet that counts toward bytes in flight (RFC 9002 Appendix B.4).
    ///
    /// - Parameters:
    ///   - bytes: The packet's size, including QUIC header and AEAD overhead.
    ///   - now: The send time.
    ///   - bytesInFlight: Bytes in flight after counting this packet; a value not above
    ///     `bytes` means the sender was idle before it.
    mutating func onPacketSent(bytes: Int, now: Instant, bytesInFlight: Int)

    /// Grows the window for newly acknowledged in-flight packets (RFC 9002 §7.3, Appendix B.5).
    ///
    /// - Parameters:
    ///   - packets: The newly acknowledged packets that were in flight.
    ///   - now: When the ACK was processed.
    ///   - rtt: The RTT estimate after this ACK's sample.
    ///   - bytesInFlight: Bytes in flight after removing `packets`.
    ///   - isAppLimited: Whether the window was underutilised because of the application or
    ///     flow control (not pacing); the window then does not grow (RFC 9002 §7.8).
    mutating func onPacketsAcknowledged(
        _ packets: some Sequence<AckedPacketInfo>, now: Instant, rtt: RTTSnapshot, bytesInFlight: Int, isAppLimited: Bool)

    /// Reacts to lost packets (RFC 9002 §7.3.2, Appendix B.6).
    ///
    /// Enters a recovery period and reduces the window, unless `sentTime` is not after the
    /// start of the current recovery period: the window is reduced at most once per round trip.
    ///
    /// - Parameters:
    ///   - sentTime: The send time of the most recently sent lost packet.
    ///   - now: When the loss was detected; becomes the recovery start time.
    ///   - lostBytes: Bytes declared lost (informational for window-based controllers).
    mutating func onCongestionEvent(sentTime: Instant, now: Instant, lostBytes: Int)

    /// Reacts to an increase of the peer-reported ECN-CE count (RFC 9002 §7.1, Appendix B.7).
    ///
    /// - Parameters:
    ///   - sentTime: The send time of the largest packet acknowledged by the ACK frame.
    ///   - now: When the ACK was processed.
    mutating func onECNCongestion(sentTime: Instant, now: Instant)

    /// Collapses the window to ``minimumWindow`` after persistent congestion (RFC 9002 §7.6.2)
    /// and ends the recovery period (Appendix B.8), so the sender slow-starts again.
    mutating func onPersistentCongestion()

    /// Undoes the most recent congestion event once it proved spurious (a packet declared
    /// lost was acknowledged after all; RFC 9438 §4.9). Does nothing when there is nothing
    /// to undo.
    mutating func onSpuriousCongestion()
}

/// An acknowledged in-flight packet, as loss detection hands it to the congestion controller
/// (RFC 9002 Appendix B.5).
package struct AckedPacketInfo: Hashable, Sendable {
    /// The packet number.
    public var packetNumber: UInt64
    /// When the packet was sent (`time_sent`).
    public var sentTime: Instant
    /// The packet's size in bytes (`sent_bytes`).
    public var bytes: Int
    /// The delivery-rate sampling state recorded when it was sent (draft-ietf-ccwg-bbr §4.1.2.2).
    public var delivery: DeliveryState

    /// Creates the description of an acknowledged (or lost) packet.
    public init(packetNumber: UInt64, sentTime: Instant, bytes: Int, delivery: DeliveryState = DeliveryState()) {
        self.packetNumber = packetNumber
        self.sentTime = sentTime
        self.bytes = bytes
        self.delivery = delivery
    }
}

/// The RTT estimate a congestion controller reads (RFC 9002 §5).
package struct RTTSnapshot: Hashable, Sendable {
    /// The smoothed RTT (`smoothed_rtt`, RFC 9002 §5.3).
    public var smoothedRTT: Duration
    /// ``smoothedRTT`` in nanoseconds (clamped to `Int64`).
    public var smoothedRTTNanoseconds: Int64
    /// The minimum RTT observed (`min_rtt`, RFC 9002 §5.2).
    public var minRTT: Duration
    /// The most recent RTT sample (`latest_rtt`, RFC 9002 §5.1).
    public var latestRTT: Duration

    /// Creates an RTT snapshot.
    public init(smoothedRTT: Duration, minRTT: Duration, latestRTT: Duration) {
        self.init(smoothedRTT: smoothedRTT, smoothedRTTNanoseconds: smoothedRTT.nanosecondsClamped, minRTT: minRTT, latestRTT: latestRTT)
    }

    /// An RTT snapshot whose smoothed RTT the caller already has in nanoseconds.
    init(smoothedRTT: Duration, smoothedRTTNanoseconds: Int64, minRTT: Duration, latestRTT: Duration) {
        self.smoothedRTT = smoothedRTT
        self.smoothedRTTNanoseconds = smoothedRTTNanoseconds
        self.minRTT = minRTT
        self.latestRTT = latestRTT
    }
}

/// Constants of RFC 9002 Appendix B.1 and window limits shared by the controllers.
package enum CongestionControl {
    /// The smallest maximum datagram size QUIC allows, and the default (RFC 9000 §14).
    public static let defaultMaxDatagramSize = 1200

    /// The largest maximum datagram size accepted: the largest UDP payload over IPv4/IPv6.
    public static let largestMaxDatagramSize = 65527

    /// The NewReno loss reduction factor, `kLossReductionFactor` (RFC 9002 §7.3.2, Appendix B.1).
    public static let lossReductionFactor = 0.5

    /// The persistent congestion threshold, `kPersistentCongestionThreshold` (RFC 9002 §7.6.1).
    public static let persistentCongestionThreshold = 3

    /// An upper bound on every congestion window (2^48 bytes), far above any real path; it
    /// keeps all window arithmetic clear of overflow.
    public static let maximumWindow = 1 << 48

    /// The initial window, `kInitialWindow`:
    /// `min(10 * max_datagram_size, max(14720, 2 * max_datagram_size))` (RFC 9002 §7.2).
    public static func initialWindow(maxDatagramSize: Int) -> Int {
        let size = clampedDatagramSize(maxDatagramSize)
        return min(10 * size, max(14720, 2 * size))
    }

    /// The minimum window, `kMinimumWindow`: `2 * max_datagram_size` (RFC 9002 §7.2).
    public static func minimumWindow(maxDatagramSize: Int) -> Int {
        2 * clampedDatagramSize(maxDatagramSize)
    }

    /// `size` clamped to ``defaultMaxDatagramSize`` ... ``largestMaxDatagramSize``.
    static func clampedDatagramSize(_ size: Int) -> Int {
        min(max(size, defaultMaxDatagramSize), largestMaxDatagramSize)
    }

    /// `value` clamped to `0 ... maximumWindow`.
    static func clampedBytes(_ value: Int) -> Int {
        min(max(value, 0), maximumWindow)
    }

    /// `a + b` for non-negative byte counts, saturating at ``maximumWindow``.
    static func add(_ a: Int, _ b: Int) -> Int {
        clampedBytes(clampedBytes(a) + clampedBytes(b))
    }

    /// `a * b / c` computed without intermediate overflow, clamped to `0 ... maximumWindow`;
    /// 0 when `c` is not positive.
    static func mulDiv(_ a: Int, _ b: Int, _ c: Int) -> Int {
        guard c > 0 else { return 0 }
        let q = Int128(a) * Int128(b) / Int128(c)
        return Int(min(max(q, 0), Int128(maximumWindow)))
    }

    /// A finite `Double` of bytes rounded down and clamped to `0 ... maximumWindow`
    /// (NaN gives 0).
    static func bytes(_ value: Double) -> Int {
        guard value > 0 else { return 0 }
        guard value < Double(maximumWindow) else { return maximumWindow }
        return Int(value)
    }

    /// A duration in seconds as a `Double` (negative durations give 0).
    static func seconds(_ d: Duration) -> Double {
        seconds(nanoseconds: d.nanosecondsClamped)
    }

    /// `nanoseconds` in seconds, 0 when negative.
    static func seconds(nanoseconds ns: Int64) -> Double {
        ns > 0 ? Double(ns) / 1e9 : 0
    }

    /// The seconds from `start` to `end`, 0 when `end` is earlier: instants subtract in
    /// integers, without a `Duration`.
    static func seconds(from start: Instant, to end: Instant) -> Double {
        end.nanoseconds > start.nanoseconds ? Double(end.nanoseconds - start.nanoseconds) / 1e9 : 0
    }
}
