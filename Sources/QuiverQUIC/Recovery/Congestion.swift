package import QuiverCore

/// The built-in congestion control algorithms (RFC 9002 §7, RFC 9438).
public enum CongestionAlgorithm: Hashable, Sendable, CaseIterable {
    /// NewReno, as specified by RFC 9002 §7 and Appendix B.
    case newReno
    /// CUBIC, as specified by RFC 9438.
    case cubic
}

/// The congestion controller a connection stores: one of the built-in controllers, chosen
/// when the connection is made, so per-packet calls dispatch with a branch rather than through
/// an existential (RFC 9002 §7 allows any controller that follows RFC 8085 §3.1).
///
/// Both controllers are stored and ``algorithm`` says which one runs, rather than one as an
/// enum payload or an optional: a mutating call on either of those copies the controller out
/// and back (257 bytes for CUBIC, on every packet sent and acknowledged), while a stored
/// property is mutated in place.
package struct Congestion: CongestionController, Hashable {
    /// The algorithm this controller runs.
    public let algorithm: CongestionAlgorithm
    private var newRenoController: NewReno
    private var cubicController: Cubic

    /// A NewReno controller (RFC 9002 §7).
    package static func newReno(_ controller: NewReno) -> Congestion {
        Congestion(algorithm: .newReno, newReno: controller, cubic: Cubic(maxDatagramSize: controller.maxDatagramSize))
    }

    /// A CUBIC controller (RFC 9438).
    package static func cubic(_ controller: Cubic) -> Congestion {
        Congestion(algorithm: .cubic, newReno: NewReno(maxDatagramSize: controller.maxDatagramSize), cubic: controller)
    }

    private init(algorithm: CongestionAlgorithm, newReno: NewReno, cubic: Cubic) {
        self.algorithm = algorithm
        newRenoController = newReno
        cubicController = cubic
    }

    package static func == (lhs: Congestion, rhs: Congestion) -> Bool {
        guard lhs.algorithm == rhs.algorithm else { return false }
        switch lhs.algorithm {
        case .newReno: return lhs.newRenoController == rhs.newRenoController
        case .cubic: return lhs.cubicController == rhs.cubicController
        }
    }

    package func hash(into hasher: inout Hasher) {
        hasher.combine(algorithm)
        switch algorithm {
        case .newReno: hasher.combine(newRenoController)
        case .cubic: hasher.combine(cubicController)
        }
    }

    /// Creates a controller of the given algorithm with its RFC 9002 §7.2 initial window.
    ///
    /// - Parameters:
    ///   - algorithm: The algorithm to run.
    ///   - maxDatagramSize: The maximum datagram size, clamped to `1200 ... 65527`.
    public init(algorithm: CongestionAlgorithm, maxDatagramSize: Int = CongestionControl.defaultMaxDatagramSize) {
        switch algorithm {
        case .newReno: self = .newReno(NewReno(maxDatagramSize: maxDatagramSize))
        case .cubic: self = .cubic(Cubic(maxDatagramSize: maxDatagramSize))
        }
    }

    /// The congestion window in bytes (RFC 9002 Appendix B.2).
    public var congestionWindow: Int { algorithm == .cubic ? cubicController.congestionWindow : newRenoController.congestionWindow }

    /// The slow start threshold in bytes; `nil` is infinite (RFC 9002 §7.3.1).
    public var ssthresh: Int? { algorithm == .cubic ? cubicController.ssthresh : newRenoController.ssthresh }

    /// Whether the window is below the slow start threshold (RFC 9002 §7.3.1).
    public var inSlowStart: Bool { algorithm == .cubic ? cubicController.inSlowStart : newRenoController.inSlowStart }

    /// The start of the current recovery period (RFC 9002 §7.3.2).
    public var recoveryStartTime: Instant? {
        algorithm == .cubic ? cubicController.recoveryStartTime : newRenoController.recoveryStartTime
    }

    /// The maximum datagram size used for window arithmetic (RFC 9002 Appendix B.2).
    public var maxDatagramSize: Int { algorithm == .cubic ? cubicController.maxDatagramSize : newRenoController.maxDatagramSize }

    /// `2 * maxDatagramSize` (RFC 9002 §7.2).
    public var minimumWindow: Int { algorithm == .cubic ? cubicController.minimumWindow : newRenoController.minimumWindow }

    /// Changes the maximum datagram size (RFC 9002 §7.2).
    public mutating func setMaxDatagramSize(_ size: Int) {
        if algorithm == .cubic { cubicController.setMaxDatagramSize(size) } else { newRenoController.setMaxDatagramSize(size) }
    }

    /// Records a sent in-flight packet (RFC 9002 Appendix B.4).
    public mutating func onPacketSent(bytes: Int, now: Instant, bytesInFlight: Int) {
        if algorithm == .cubic {
            cubicController.onPacketSent(bytes: bytes, now: now, bytesInFlight: bytesInFlight)
        } else {
            newRenoController.onPacketSent(bytes: bytes, now: now, bytesInFlight: bytesInFlight)
        }
    }

    /// Grows the window for newly acknowledged packets (RFC 9002 Appendix B.5).
    public mutating func onPacketsAcknowledged(
        _ packets: some Sequence<AckedPacketInfo>, now: Instant, rtt: RTTSnapshot, bytesInFlight: Int, isAppLimited: Bool
    ) {
        if algorithm == .cubic {
            cubicController.onPacketsAcknowledged(packets, now: now, rtt: rtt, bytesInFlight: bytesInFlight, isAppLimited: isAppLimited)
        } else {
            newRenoController.onPacketsAcknowledged(packets, now: now, rtt: rtt, bytesInFlight: bytesInFlight, isAppLimited: isAppLimited)
        }
    }

    /// Reacts to lost packets, once per recovery period (RFC 9002 §7.3.2, Appendix B.6).
    public mutating func onCongestionEvent(sentTime: Instant, now: Instant, lostBytes: Int) {
        if algorithm == .cubic {
            cubicController.onCongestionEvent(sentTime: sentTime, now: now, lostBytes: lostBytes)
        } else {
            newRenoController.onCongestionEvent(sentTime: sentTime, now: now, lostBytes: lostBytes)
        }
    }

    /// Reacts to an ECN-CE increase (RFC 9002 §7.1, Appendix B.7).
    public mutating func onECNCongestion(sentTime: Instant, now: Instant) {
        if algorithm == .cubic {
            cubicController.onECNCongestion(sentTime: sentTime, now: now)
        } else {
            newRenoController.onECNCongestion(sentTime: sentTime, now: now)
        }
    }

    /// Collapses the window to `kMinimumWindow` (RFC 9002 §7.6.2).
    public mutating func onPersistentCongestion() {
        if algorithm == .cubic { cubicController.onPersistentCongestion() } else { newRenoController.onPersistentCongestion() }
    }

    /// Undoes the last congestion event once it proved spurious (RFC 9438 §4.9).
    public mutating func onSpuriousCongestion() {
        if algorithm == .cubic { cubicController.onSpuriousCongestion() } else { newRenoController.onSpuriousCongestion() }
    }
}
