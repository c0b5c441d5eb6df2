package import QuiverCore

/// The round-trip time estimate of one path (RFC 9002 §5), with the RFC's variable names.
///
/// A fresh estimator holds the initial RTT (RFC 9002 §6.2.2): `smoothedRTT = initialRTT`,
/// `rttVariance = initialRTT / 2`, and `latestRTT` and `minRTT` are zero. The first sample
/// resets it (§5.3); later samples update the moving averages. Samples are taken by
/// ``LossDetection`` when an ACK newly acknowledges its largest packet and at least one
/// ack-eliciting packet (§5.1); this type only does the arithmetic.
package struct RTTEstimator: Hashable, Sendable {
    /// `kInitialRtt`, the RTT assumed before any sample: 333 ms (RFC 9002 §6.2.2, Appendix A.2).
    public static let defaultInitialRTT: Duration = .milliseconds(333)

    /// `kGranularity`, the timer granularity: 1 ms (RFC 9002 §6.1.2, Appendix A.2).
    public static let granularity: Duration = .milliseconds(1)

    /// The initial RTT this estimator started from (`kInitialRtt`, RFC 9002 §6.2.2).
    public private(set) var initialRTT: Duration

    /// The most recent RTT sample, `latest_rtt` (RFC 9002 §5.1); zero before the first sample.
    public private(set) var latestRTT: Duration = .zero

    /// The minimum RTT observed, `min_rtt`, not adjusted for ACK delay (RFC 9002 §5.2); zero
    /// before the first sample.
    public private(set) var minRTT: Duration = .zero

    /// The smoothed RTT, `smoothed_rtt` (RFC 9002 §5.3).
    public private(set) var smoothedRTT: Duration {
        didSet { smoothedRTTNanoseconds = smoothedRTT.nanosecondsClamped }
    }

    /// ``smoothedRTT`` in nanoseconds, kept with it: the pacer and CUBIC read it for every
    /// packet or ACK, and converting a `Duration` takes 128-bit arithmetic (`components`).
    public private(set) var smoothedRTTNanoseconds: Int64

    /// The RTT variation, `rttvar` (RFC 9002 §5.3).
    public private(set) var rttVariance: Duration

    /// When the first RTT sample was taken, `first_rtt_sample` (RFC 9002 Appendix A.3); `nil`
    /// until then.
    public private(set) var firstSampleTime: Instant?

    /// Creates an estimator holding the initial RTT (RFC 9002 §5.3, §6.2.2).
    ///
    /// - Parameter initialRTT: `kInitialRtt`; 333 ms unless a previous connection or a
    ///   PATH_CHALLENGE round trip suggests better (§6.2.2).
    /// - Precondition: `initialRTT` is positive.
    public init(initialRTT: Duration = RTTEstimator.defaultInitialRTT) {
        precondition(initialRTT > .zero, "the initial RTT must be positive")
        self.initialRTT = initialRTT
        self.smoothedRTT = initialRTT
        self.smoothedRTTNanoseconds = initialRTT.nanosecondsClamped
        self.rttVariance = initialRTT / 2
    }

    /// Whether at least one RTT sample has been taken.
    public var hasSample: Bool { firstSampleTime != nil }

    /// Adds an RTT sample (RFC 9002 §5.2, §5.3, Appendix A.7 `UpdateRtt`).
    ///
    /// On the first sample: `min_rtt = smoothed_rtt = latest_rtt`, `rttvar = latest_rtt / 2`,
    /// and the ACK delay is not used. On later samples `min_rtt` takes the lesser value
    /// (never adjusted for ACK delay); the ACK delay is limited to `max_ack_delay` only once the
    /// handshake is confirmed, and it is subtracted only if the result is not below `min_rtt`;
    /// then `rttvar = 3/4 rttvar + 1/4 |smoothed_rtt − adjusted_rtt|` and
    /// `smoothed_rtt = 7/8 smoothed_rtt + 1/8 adjusted_rtt`. As in Appendix A.7 and RFC 6298
    /// §2.3, `rttvar` is updated first, from the previous `smoothed_rtt`.
    ///
    /// - Parameters:
    ///   - latestRTT: The sample: ACK receipt time minus the send time of the largest
    ///     acknowledged packet (§5.1). Negative values count as zero.
    ///   - ackDelay: The peer's decoded ACK Delay (RFC 9000 §19.3), or zero to ignore it.
    ///   - handshakeConfirmed: Whether the handshake is confirmed (RFC 9001 §4.1.2).
    ///   - maxAckDelay: The peer's `max_ack_delay` transport parameter (RFC 9000 §18.2).
    ///   - now: The current time, recorded as ``firstSampleTime`` on the first sample.
    public mutating func update(
        latestRTT: Duration, ackDelay: Duration, handshakeConfirmed: Bool, maxAckDelay: Duration, now: Instant
    ) {
        let sample = max(latestRTT, .zero)
        self.latestRTT = sample
        guard firstSampleTime != nil else {
            minRTT = sample
            smoothedRTT = sample
            rttVariance = sample.divided(by: 2)
            firstSampleTime = now
            return
        }
        minRTT = min(minRTT, sample)
        var ackDelay = max(ackDelay, .zero)
        if handshakeConfirmed {
            ackDelay = min(ackDelay, max(maxAckDelay, .zero))
        }
        var adjusted = sample
        if sample >= minRTT + ackDelay {
            adjusted = sample - ackDelay
        }
        let deviation = smoothedRTT > adjusted ? smoothedRTT - adjusted : adjusted - smoothedRTT
        rttVariance = (rttVariance.scaled(by: 3) + deviation).divided(by: 4)
        smoothedRTT = (smoothedRTT.scaled(by: 7) + adjusted).divided(by: 8)
    }

    /// `smoothed_rtt + max(4 * rttvar, kGranularity)`: the PTO period without
    /// `max_ack_delay` and without backoff (RFC 9002 §6.2.1). Always at least `kGranularity`.
    public var ptoBase: Duration {
        smoothedRTT + max(rttVariance.scaled(by: 4), Self.granularity)
    }

    /// The PTO period `smoothed_rtt + max(4 * rttvar, kGranularity) + max_ack_delay`, without
    /// backoff (RFC 9002 §6.2.1).
    ///
    /// - Parameter maxAckDelay: The peer's `max_ack_delay` for the Application Data space;
    ///   zero for the Initial and Handshake spaces, whose ACKs are not delayed on purpose.
    public func probeTimeout(maxAckDelay: Duration) -> Duration {
        ptoBase + max(maxAckDelay, .zero)
    }

    /// The persistent congestion duration,
    /// `(smoothed_rtt + max(4 * rttvar, kGranularity) + max_ack_delay) * kPersistentCongestionThreshold`
    /// (RFC 9002 §7.6.1). It includes `max_ack_delay` whatever the packet number space.
    ///
    /// - Parameters:
    ///   - maxAckDelay: The peer's `max_ack_delay`.
    ///   - threshold: `kPersistentCongestionThreshold`, 3 by default.
    public func persistentCongestionDuration(maxAckDelay: Duration, threshold: Int = 3) -> Duration {
        probeTimeout(maxAckDelay: maxAckDelay).scaled(by: threshold)
    }

    /// The estimate as the congestion controller reads it.
    public var snapshot: RTTSnapshot {
        RTTSnapshot(smoothedRTT: smoothedRTT, smoothedRTTNanoseconds: smoothedRTTNanoseconds, minRTT: minRTT, latestRTT: latestRTT)
    }

    /// Sets `min_rtt` to the newest sample, as endpoints SHOULD after persistent congestion is
    /// established (RFC 9002 §5.2), so that a lasting RTT increase does not keep declaring it.
    public mutating func resetMinRTT() {
        if hasSample { minRTT = latestRTT }
    }

    /// Forgets every sample and starts again from `initialRTT`: for a new path (RFC 9000 §9.4)
    /// or after a Retry (RFC 9002 §6.3).
    ///
    /// - Precondition: `initialRTT` is positive.
    public mutating func reset(initialRTT: Duration) {
        self = RTTEstimator(initialRTT: initialRTT)
    }
}
