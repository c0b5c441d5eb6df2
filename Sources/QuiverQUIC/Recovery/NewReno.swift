package import QuiverCore

/// The NewReno congestion controller of RFC 9002 §7 and Appendix B.
///
/// - Slow start (§7.3.1): the window grows by the bytes of each acknowledged packet while
///   below the slow start threshold (as Appendix B.5, the last packet may overshoot it).
/// - Recovery (§7.3.2): on loss or ECN-CE the slow start threshold and window are halved
///   (`kLossReductionFactor`), at most once per recovery period; packets sent before the
///   recovery start neither grow nor reduce the window again.
/// - Congestion avoidance (§7.3.3): byte counting after RFC 3465 §2.1, as Appendix B.5
///   suggests for integer windows — one `max_datagram_size` per full window acknowledged.
/// - No growth while application or flow-control limited (§7.8).
/// - Persistent congestion collapses the window to `kMinimumWindow` (§7.6.2).
package struct NewReno: CongestionController, Hashable {
    /// The congestion window in bytes (RFC 9002 Appendix B.2).
    public private(set) var congestionWindow: Int
    /// The slow start threshold in bytes; `nil` is infinite (RFC 9002 Appendix B.3).
    public private(set) var ssthresh: Int?
    /// The start of the current recovery period (`congestion_recovery_start_time`).
    public private(set) var recoveryStartTime: Instant?
    /// The maximum datagram size used for window arithmetic (RFC 9002 Appendix B.2).
    public private(set) var maxDatagramSize: Int
    /// Bytes acknowledged in congestion avoidance not yet turned into window growth
    /// (RFC 3465 §2.1 `bytes_acked`).
    private var bytesAcked: Int = 0
    /// State saved by the last congestion event, for ``onSpuriousCongestion()``.
    private var prior: Prior?

    private struct Prior: Hashable, Sendable {
        var congestionWindow: Int
        var ssthresh: Int?
        var recoveryStartTime: Instant?
        var bytesAcked: Int
    }

    /// Creates a controller in slow start with the initial window of RFC 9002 §7.2.
    ///
    /// - Parameter maxDatagramSize: The maximum datagram size, clamped to `1200 ... 65527`.
    public init(maxDatagramSize: Int = CongestionControl.defaultMaxDatagramSize) {
        self.maxDatagramSize = CongestionControl.clampedDatagramSize(maxDatagramSize)
        self.congestionWindow = CongestionControl.initialWindow(maxDatagramSize: self.maxDatagramSize)
    }

    /// `2 * maxDatagramSize` (RFC 9002 §7.2).
    public var minimumWindow: Int { CongestionControl.minimumWindow(maxDatagramSize: maxDatagramSize) }

    /// Whether the window is below the slow start threshold (RFC 9002 §7.3.1).
    public var inSlowStart: Bool { ssthresh.map { congestionWindow < $0 } ?? true }

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
    }

    /// Nothing to do: NewReno tracks no send-side state (RFC 9002 Appendix B.4).
    public mutating func onPacketSent(bytes: Int, now: Instant, bytesInFlight: Int) {}

    /// Slow start or congestion-avoidance growth per acknowledged packet (RFC 9002 Appendix B.5).
    public mutating func onPacketsAcknowledged(
        _ packets: some Sequence<AckedPacketInfo>, now: Instant, rtt: RTTSnapshot, bytesInFlight: Int, isAppLimited: Bool
    ) {
        // §7.8: do not increase the window while application or flow-control limited.
        if isAppLimited { return }
        for packet in packets {
            // §7.3.2: no increase for packets sent during the recovery period.
            if let start = recoveryStartTime, packet.sentTime <= start { continue }
            let acked = CongestionControl.clampedBytes(packet.bytes)
            if inSlowStart {
                // §7.3.1: slow start.
                congestionWindow = CongestionControl.add(congestionWindow, acked)
            } else {
                // §7.3.3: congestion avoidance, one max_datagram_size per window acknowledged.
                bytesAcked = CongestionControl.add(bytesAcked, acked)
                if bytesAcked >= congestionWindow {
                    bytesAcked -= congestionWindow
                    congestionWindow = CongestionControl.add(congestionWindow, maxDatagramSize)
                }
                // Only an oversized packet could leave more than a window; drop the excess.
                bytesAcked = min(bytesAcked, congestionWindow)
            }
        }
    }

    /// Enters recovery and halves the window unless already recovering (RFC 9002 Appendix B.6).
    public mutating func onCongestionEvent(sentTime: Instant, now: Instant, lostBytes: Int) {
        if let start = recoveryStartTime, sentTime <= start { return }
        prior = Prior(
            congestionWindow: congestionWindow, ssthresh: ssthresh,
            recoveryStartTime: recoveryStartTime, bytesAcked: bytesAcked)
        recoveryStartTime = now
        let threshold = congestionWindow / 2  // kLossReductionFactor = 0.5
        ssthresh = threshold
        congestionWindow = max(threshold, minimumWindow)
        bytesAcked = 0
    }

    /// An ECN-CE increase is a congestion event (RFC 9002 Appendix B.7).
    public mutating func onECNCongestion(sentTime: Instant, now: Instant) {
        onCongestionEvent(sentTime: sentTime, now: now, lostBytes: 0)
    }

    /// Collapses the window to `kMinimumWindow` and ends recovery (RFC 9002 §7.6.2, Appendix B.8).
    public mutating func onPersistentCongestion() {
        congestionWindow = minimumWindow
        recoveryStartTime = nil
        bytesAcked = 0
    }

    /// Restores the window, threshold and recovery state saved by the last congestion event.
    public mutating func onSpuriousCongestion() {
        guard let saved = prior else { return }
        prior = nil
        congestionWindow = max(congestionWindow, saved.congestionWindow)
        ssthresh = saved.ssthresh
        recoveryStartTime = saved.recoveryStartTime
        bytesAcked = saved.bytesAcked
    }
}
