package import QuiverCore

/// The built-in congestion control algorithms (RFC 9002 §7, RFC 9438, draft-ietf-ccwg-bbr).
public enum CongestionAlgorithm: Hashable, Sendable, CaseIterable {
    /// NewReno, as specified by RFC 9002 §7 and Appendix B.
    case newReno
    /// CUBIC, as specified by RFC 9438.
    case cubic
    /// BBR (version 3), as specified by draft-ietf-ccwg-bbr: a model of the path's bottleneck
    /// bandwidth and round-trip time sets a pacing rate and window, rather than loss alone.
    /// Experimental, as the draft is.
    case bbr
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
///
/// BBR's state is larger still (its model, state machine and delivery rate sampler), so it
/// lives in a box allocated with the connection (copied on write, so the wrapper keeps value
/// semantics): connections running NewReno or CUBIC pay one reference for it, and BBR's
/// per-packet calls change its state in place without copying it.
package struct Congestion: CongestionController, Hashable {
    private enum Controller: Hashable {
        case newReno(NewReno)
        case cubic(Cubic)
        case bbr
    }

    /// BBR's state, boxed; `nil` unless the algorithm is BBR.
    private final class BBRBox: Hashable, @unchecked Sendable {  // mutated only when uniquely referenced
        /// No dynamic exclusivity check: reached twice per packet sent, and only ever through
        /// ``modifyBBR(_:)`` on a uniquely referenced box or read.
        @exclusivity(unchecked) var state: BBR
        init(_ state: BBR) { self.state = state }
        static func == (a: BBRBox, b: BBRBox) -> Bool { a.state == b.state }
        func hash(into hasher: inout Hasher) { hasher.combine(state) }
    }

    private var controller: Controller
    private var bbrBox: BBRBox?
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
        case .bbr:
            controller = .bbr
            bbrBox = BBRBox(BBR(maxDatagramSize: maxDatagramSize))
        }
        congestionWindow = 0
        self.maxDatagramSize = 0
        switch controller {
        case .newReno(let c): note(c)
        case .cubic(let c): note(c)
        case .bbr: note(bbrBox!.state)
        }
    }

    /// A controller of the same algorithm and datagram size for a new path (RFC 9000 §9.4:
    /// congestion state starts over); BBR's delivery rate sampling goes on from this one
    /// (``BBR/startingOver(at:)``), so that the old path's packets still in flight give
    /// consistent samples.
    public func startingOver(at now: Instant) -> Congestion {
        var fresh = Congestion(algorithm: algorithm, maxDatagramSize: maxDatagramSize)
        if let box = bbrBox {
            fresh.bbrBox = BBRBox(box.state.startingOver(at: now))
            fresh.note(fresh.bbrBox!.state)
        }
        return fresh
    }

    /// Runs `body` on BBR's state in place, copying the box first if it is shared.
    private mutating func modifyBBR<R>(_ body: (inout BBR) -> R) -> R {
        if !isKnownUniquelyReferenced(&bbrBox) { bbrBox = BBRBox(bbrBox!.state) }
        let result = body(&bbrBox!.state)
        note(bbrBox!.state)
        return result
    }

    /// BBR's state, when it is the algorithm.
    package var bbr: BBR? { bbrBox?.state }

    /// The pacing rate in bytes per second when the controller sets its own (BBR's
    /// `C.pacing_rate`, draft-ietf-ccwg-bbr §5.6.2); `nil` for the window-based controllers,
    /// whose rate the ``Pacer`` derives from the window and RTT (RFC 9002 §7.7).
    public var pacingRate: Int? { bbrBox?.state.pacingRate }

    /// The delivery-rate sampling state to record in an in-flight packet about to be sent
    /// (draft-ietf-ccwg-bbr §4.1.2.2): zeros unless the algorithm samples delivery rates.
    ///
    /// - Parameters:
    ///   - bytes: The packet's size.
    ///   - now: The send time.
    ///   - bytesInFlight: Bytes in flight once the packet is counted.
    public mutating func deliveryState(sending bytes: Int, now: Instant, bytesInFlight: Int) -> DeliveryState {
        guard case .bbr = controller else { return DeliveryState() }
        return modifyBBR { $0.deliveryState(sending: bytes, now: now, bytesInFlight: bytesInFlight) }
    }

    /// Reports in-flight packets declared lost, before ``onCongestionEvent(sentTime:now:lostBytes:)``:
    /// BBR adapts its model to each (draft-ietf-ccwg-bbr §5.5.10.2); the window-based
    /// controllers react to the congestion event alone.
    ///
    /// - Parameters:
    ///   - packets: The lost in-flight packets.
    ///   - now: When the loss was detected.
    ///   - bytesInFlight: Bytes in flight without the lost packets.
    public mutating func onPacketsLost(_ packets: some Sequence<AckedPacketInfo>, now: Instant, bytesInFlight: Int) {
        guard case .bbr = controller else { return }
        modifyBBR { bbr in
            for packet in packets { bbr.onPacketLost(packet, now: now, bytesInFlight: bytesInFlight) }
        }
    }

    /// The algorithm this controller runs.
    public var algorithm: CongestionAlgorithm {
        switch controller {
        case .newReno: .newReno
        case .cubic: .cubic
        case .bbr: .bbr
        }
    }

    /// The slow start threshold in bytes; `nil` is infinite (RFC 9002 §7.3.1).
    public var ssthresh: Int? {
        switch controller {
        case .newReno(let c): c.ssthresh
        case .cubic(let c): c.ssthresh
        case .bbr: nil
        }
    }

    /// Whether the window is below the slow start threshold (RFC 9002 §7.3.1).
    public var inSlowStart: Bool {
        switch controller {
        case .newReno(let c): c.inSlowStart
        case .cubic(let c): c.inSlowStart
        case .bbr: bbrBox!.state.inSlowStart
        }
    }

    /// The start of the current recovery period (RFC 9002 §7.3.2).
    public var recoveryStartTime: Instant? {
        switch controller {
        case .newReno(let c): c.recoveryStartTime
        case .cubic(let c): c.recoveryStartTime
        case .bbr: bbrBox!.state.recoveryStartTime
        }
    }

    /// `2 * maxDatagramSize` (RFC 9002 §7.2).
    public var minimumWindow: Int { CongestionControl.minimumWindow(maxDatagramSize: maxDatagramSize) }

    /// Changes the maximum datagram size (RFC 9002 §7.2).
    public mutating func setMaxDatagramSize(_ size: Int) {
        switch controller {
        case .newReno(var c): c.setMaxDatagramSize(size); note(c); controller = .newReno(c)
        case .cubic(var c): c.setMaxDatagramSize(size); note(c); controller = .cubic(c)
        case .bbr: modifyBBR { $0.setMaxDatagramSize(size) }
        }
    }

    /// Records a sent in-flight packet (RFC 9002 Appendix B.4).
    ///
    /// Called for every packet, it reaches the controller only when the packet ends an idle
    /// period (nothing else in flight): that is the one case where a controller reads send
    /// times (CUBIC moves its epoch, RFC 9438 §5.8), and it hears of the send before it, noted
    /// here, first. No call changes the window. BBR hears of every send (it notes whether the
    /// window was full, draft-ietf-ccwg-bbr §2.2 `C.is_cwnd_limited`).
    public mutating func onPacketSent(bytes: Int, now: Instant, bytesInFlight: Int) {
        if case .bbr = controller {
            modifyBBR { $0.onPacketSent(bytes: bytes, now: now, bytesInFlight: bytesInFlight) }
            return
        }
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
        case .bbr:
            break
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
        case .bbr: modifyBBR { $0.onPacketsAcknowledged(packets, now: now, rtt: rtt, bytesInFlight: bytesInFlight, isAppLimited: isAppLimited) }
        }
    }

    /// Reacts to lost packets, once per recovery period (RFC 9002 §7.3.2, Appendix B.6).
    public mutating func onCongestionEvent(sentTime: Instant, now: Instant, lostBytes: Int) {
        switch controller {
        case .newReno(var c): c.onCongestionEvent(sentTime: sentTime, now: now, lostBytes: lostBytes); note(c); controller = .newReno(c)
        case .cubic(var c): c.onCongestionEvent(sentTime: sentTime, now: now, lostBytes: lostBytes); note(c); controller = .cubic(c)
        case .bbr: modifyBBR { $0.onCongestionEvent(sentTime: sentTime, now: now, lostBytes: lostBytes) }
        }
    }

    /// Reacts to an ECN-CE increase (RFC 9002 §7.1, Appendix B.7).
    public mutating func onECNCongestion(sentTime: Instant, now: Instant) {
        switch controller {
        case .newReno(var c): c.onECNCongestion(sentTime: sentTime, now: now); note(c); controller = .newReno(c)
        case .cubic(var c): c.onECNCongestion(sentTime: sentTime, now: now); note(c); controller = .cubic(c)
        case .bbr: modifyBBR { $0.onECNCongestion(sentTime: sentTime, now: now) }
        }
    }

    /// Collapses the window to `kMinimumWindow` (RFC 9002 §7.6.2).
    public mutating func onPersistentCongestion() {
        switch controller {
        case .newReno(var c): c.onPersistentCongestion(); note(c); controller = .newReno(c)
        case .cubic(var c): c.onPersistentCongestion(); note(c); controller = .cubic(c)
        case .bbr: modifyBBR { $0.onPersistentCongestion() }
        }
    }

    /// Undoes the last congestion event once it proved spurious (RFC 9438 §4.9).
    public mutating func onSpuriousCongestion() {
        switch controller {
        case .newReno(var c): c.onSpuriousCongestion(); note(c); controller = .newReno(c)
        case .cubic(var c): c.onSpuriousCongestion(); note(c); controller = .cubic(c)
        case .bbr: modifyBBR { $0.onSpuriousCongestion() }
        }
    }

    /// Keeps the values read per packet, from the controller just changed.
    private mutating func note(_ controller: borrowing some CongestionController) {
        congestionWindow = controller.congestionWindow
        maxDatagramSize = controller.maxDatagramSize
    }
}
