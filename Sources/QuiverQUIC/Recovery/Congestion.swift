package import QuiverCore

/// The built-in congestion control algorithms (RFC 9002 §7, RFC 9438).
public enum CongestionAlgorithm: Hashable, Sendable, CaseIterable {
    /// NewReno, as specified by RFC 9002 §7 and Appendix B.
    case newReno
    /// CUBIC, as specified by RFC 9438.
    case cubic
}

/// The congestion controller a connection stores: a closed enum over the built-in
/// controllers, so per-packet calls dispatch with a `switch` rather than through an
/// existential (RFC 9002 §7 allows any controller that follows RFC 8085 §3.1), with the
/// window and datagram size kept beside it.
///
/// A call on an enum's payload copies the payload out (257 bytes for CUBIC), and a mutating
/// one copies it back: reading the window that way, several times per packet sent, showed in
/// a bulk sender's profile. The two values read per packet are stored here, refreshed after
/// every change. Storing both controllers side by side would avoid the mutating calls' copies
/// too but makes every connection 112 bytes larger, and measurably so: RSS 60 s after a flood
/// of 2 000 connections rose from 7–8 % over the RSS before it to 12–17 % (the target is
/// 10 %), so the enum stays.
package struct Congestion: CongestionController, Hashable {
    private enum Controller: Hashable {
        case newReno(NewReno)
        case cubic(Cubic)
    }

    private var controller: Controller
    /// The congestion window in bytes (RFC 9002 Appendix B.2).
    public private(set) var congestionWindow: Int
    /// The maximum datagram size used for window arithmetic (RFC 9002 Appendix B.2).
    public private(set) var maxDatagramSize: Int
    /// The latest send the controller has not been told of (``onPacketSent(bytes:now:bytesInFlight:)``).
    private var unreportedSendTime: Instant?

    /// Creates a controller of the given algorithm with its RFC 9002 §7.2 initial window.
    ///
    /// - Parameters:
    ///   - algorithm: The algorithm to run.
    ///   - maxDatagramSize: The maximum datagram size, clamped to `1200 ... 65527`.
    public init(algorithm: CongestionAlgorithm, maxDatagramSize: Int = CongestionControl.defaultMaxDatagramSize) {
        switch algorithm {
        case .newReno: controller = .newReno(NewReno(maxDatagramSize: maxDatagramSize))
        case .cubic: controller = .cubic(Cubic(maxDatagramSize: maxDatagramSize))
        }
        congestionWindow = 0
        self.maxDatagramSize = 0
        switch controller {
        case .newReno(let c): note(c)
        case .cubic(let c): note(c)
        }
    }

    /// The algorithm this controller runs.
    public var algorithm: CongestionAlgorithm {
        switch controller {
        case .newReno: .newReno
        case .cubic: .cubic
        }
    }

    /// The slow start threshold in bytes; `nil` is infinite (RFC 9002 §7.3.1).
    public var ssthresh: Int? {
        switch controller {
        case .newReno(let c): c.ssthresh
        case .cubic(let c): c.ssthresh
        }
    }

    /// Whether the window is below the slow start threshold (RFC 9002 §7.3.1).
    public var inSlowStart: Bool {
        switch controller {
        case .newReno(let c): c.inSlowStart
        case .cubic(let c): c.inSlowStart
        }
    }

    /// The start of the current recovery period (RFC 9002 §7.3.2).
    public var recoveryStartTime: Instant? {
        switch controller {
        case .newReno(let c): c.recoveryStartTime
        case .cubic(let c): c.recoveryStartTime
        }
    }

    /// `2 * maxDatagramSize` (RFC 9002 §7.2).
    public var minimumWindow: Int { CongestionControl.minimumWindow(maxDatagramSize: maxDatagramSize) }

    /// Changes the maximum datagram size (RFC 9002 §7.2).
    public mutating func setMaxDatagramSize(_ size: Int) {
        switch controller {
        case .newReno(var c): c.setMaxDatagramSize(size); note(c); controller = .newReno(c)
        case .cubic(var c): c.setMaxDatagramSize(size); note(c); controller = .cubic(c)
        }
    }

    /// Records a sent in-flight packet (RFC 9002 Appendix B.4).
    ///
    /// Called for every packet, it reaches the controller only when the packet ends an idle
    /// period (nothing else in flight): that is the one case where a controller reads send
    /// times (CUBIC moves its epoch, RFC 9438 §5.8), and it hears of the send before it, noted
    /// here, first. No call changes the window.
    public mutating func onPacketSent(bytes: Int, now: Instant, bytesInFlight: Int) {
        guard bytesInFlight <= bytes else {
            unreportedSendTime = max(unreportedSendTime ?? now, now)
            return
        }
        switch controller {
        case .newReno(var c):
            c.onPacketSent(bytes: bytes, now: now, bytesInFlight: bytesInFlight)
            controller = .newReno(c)
        case .cubic(var c):
            if let last = unreportedSendTime { c.onPacketSent(bytes: 0, now: last, bytesInFlight: 1) }  // in flight: just the time
            c.onPacketSent(bytes: bytes, now: now, bytesInFlight: bytesInFlight)
            controller = .cubic(c)
        }
        unreportedSendTime = nil
    }

    /// Grows the window for newly acknowledged packets (RFC 9002 Appendix B.5).
    public mutating func onPacketsAcknowledged(
        _ packets: some Sequence<AckedPacketInfo>, now: Instant, rtt: RTTSnapshot, bytesInFlight: Int, isAppLimited: Bool
    ) {
        switch controller {
        case .newReno(var c): c.onPacketsAcknowledged(packets, now: now, rtt: rtt, bytesInFlight: bytesInFlight, isAppLimited: isAppLimited); note(c); controller = .newReno(c)
        case .cubic(var c): c.onPacketsAcknowledged(packets, now: now, rtt: rtt, bytesInFlight: bytesInFlight, isAppLimited: isAppLimited); note(c); controller = .cubic(c)
        }
    }

    /// Reacts to lost packets, once per recovery period (RFC 9002 §7.3.2, Appendix B.6).
    public mutating func onCongestionEvent(sentTime: Instant, now: Instant, lostBytes: Int) {
        switch controller {
        case .newReno(var c): c.onCongestionEvent(sentTime: sentTime, now: now, lostBytes: lostBytes); note(c); controller = .newReno(c)
        case .cubic(var c): c.onCongestionEvent(sentTime: sentTime, now: now, lostBytes: lostBytes); note(c); controller = .cubic(c)
        }
    }

    /// Reacts to an ECN-CE increase (RFC 9002 §7.1, Appendix B.7).
    public mutating func onECNCongestion(sentTime: Instant, now: Instant) {
        switch controller {
        case .newReno(var c): c.onECNCongestion(sentTime: sentTime, now: now); note(c); controller = .newReno(c)
        case .cubic(var c): c.onECNCongestion(sentTime: sentTime, now: now); note(c); controller = .cubic(c)
        }
    }

    /// Collapses the window to `kMinimumWindow` (RFC 9002 §7.6.2).
    public mutating func onPersistentCongestion() {
        switch controller {
        case .newReno(var c): c.onPersistentCongestion(); note(c); controller = .newReno(c)
        case .cubic(var c): c.onPersistentCongestion(); note(c); controller = .cubic(c)
        }
    }

    /// Undoes the last congestion event once it proved spurious (RFC 9438 §4.9).
    public mutating func onSpuriousCongestion() {
        switch controller {
        case .newReno(var c): c.onSpuriousCongestion(); note(c); controller = .newReno(c)
        case .cubic(var c): c.onSpuriousCongestion(); note(c); controller = .cubic(c)
        }
    }

    /// Keeps the values read per packet, from the controller just changed.
    private mutating func note(_ controller: borrowing some CongestionController) {
        congestionWindow = controller.congestionWindow
        maxDatagramSize = controller.maxDatagramSize
    }
}
