package import QuiverCore

/// ECN validation of a connection's path (RFC 9000 §13.4.2, the algorithm of Appendix A.4), and
/// the peer's ECN-CE counts as congestion signals (RFC 9002 §7.1, Appendix B.7).
///
/// A sans-I/O value the connection drives:
/// - ``codepoint(at:)`` before each datagram: ECT(0) while ``ECNValidationState/testing`` or
///   ``ECNValidationState/capable``, else not-ECT. The testing period ends after
///   ``testingPacketCount`` marked packets or three PTOs, whichever comes first; the path is
///   then ``ECNValidationState/unknown`` (unmarked) until an acknowledgment validates.
/// - ``onPacketSent(space:now:testingPeriod:)`` for every packet sent in a marked datagram.
/// - ``onAckReceived(space:counts:newlyAckedMarked:largestAckedIncreased:)`` for every ACK
///   frame, with how many marked packets it newly acknowledged; it returns the ECN-CE increase
///   to treat as a congestion event (zero unless the counts validated).
/// - ``onMarkedPacketsLost(_:)`` for marked packets declared lost: if every marked packet of
///   the testing period is lost, the marks are taken to be what is dropped (failed).
/// - ``restart()`` on a new path: validation starts over, the counts so far kept as the
///   baseline (Appendix A.4).
///
/// Validation of an ACK frame (§13.4.2.1) compares its counts with those of the last one that
/// validated, in the same packet number space: it fails when marked packets are newly
/// acknowledged without counts (a peer that does not report, or a path that bleaches the
/// field), when a count decreases, when the ECT(0) and ECN-CE increases together fall short
/// of the newly acknowledged ECT(0) packets (remarking), when ECT(1) is counted (never sent),
/// or when ECT(0) and ECN-CE together exceed the ECT(0) packets sent. Only ACK frames that
/// raise the largest acknowledged packet number are judged (reordered ones could fail).
/// A failure is final for the path: marking stops, and ECN-CE counts are no longer trusted.
package struct ECNValidation: Sendable {
    /// Marked packets in a testing period (RFC 9000 §13.4.2 suggests ten).
    package static let testingPacketCount = 10

    /// Where validation stands.
    package private(set) var state: ECNValidationState

    /// Marked packets of this path's validation (since the last ``restart()``) sent,
    /// acknowledged and declared lost.
    private var markedSent = 0
    private var markedAcknowledged = 0
    private var markedLost = 0
    /// When the testing period ends (three PTOs after its first marked packet).
    private var testingDeadline: Instant?
    /// Per packet number space: ECT(0) packets sent (all paths), and the counts of the last
    /// ACK frame that validated.
    private var sentECT0 = PerSpace<UInt64>(0)
    private var validatedCounts = PerSpace(ECNCounts.zero)

    /// Starts testing (or, with `enabled` false, never marks).
    package init(enabled: Bool) {
        state = enabled ? .testing : .disabled
    }

    /// The codepoint to mark the next datagram with; ends the testing period once its three
    /// PTOs have passed.
    package mutating func codepoint(at now: Instant) -> ECNCodepoint {
        switch state {
        case .testing:
            if let testingDeadline, now >= testingDeadline {
                endTesting()
                return .notECT
            }
            return .ect0
        case .capable:
            return .ect0
        case .unknown, .failed, .disabled:
            return .notECT
        }
    }

    /// A packet went out marked ECT(0) in `space`.
    ///
    /// - Parameter testingPeriod: Three PTOs: asked for at the first marked packet of a
    ///   testing period, whose end it sets.
    package mutating func onPacketSent(space: PacketNumberSpace, now: Instant, testingPeriod: @autoclosure () -> Duration) {
        sentECT0[space] += 1
        markedSent += 1
        guard state == .testing else { return }
        if testingDeadline == nil { testingDeadline = now + testingPeriod() }
        if markedSent >= Self.testingPacketCount { endTesting() }
    }

    /// Processes the ECN counts of an ACK frame (or their absence) received in `space`.
    ///
    /// - Parameters:
    ///   - counts: The frame's ECN counts; `nil` for an ACK frame of type 0x02.
    ///   - newlyAckedMarked: How many packets the frame newly acknowledged that were sent
    ///     marked ECT(0).
    ///   - largestAckedIncreased: Whether the frame raised the largest acknowledged packet
    ///     number of `space`; other frames may be reordered and are not judged.
    /// - Returns: The increase of the peer's ECN-CE count to treat as a congestion event, zero
    ///   when there is none or the counts did not validate.
    package mutating func onAckReceived(
        space: PacketNumberSpace, counts: ECNCounts?, newlyAckedMarked: Int, largestAckedIncreased: Bool
    ) -> UInt64 {
        markedAcknowledged += newlyAckedMarked
        switch state {
        case .failed, .disabled: return 0
        case .testing, .unknown, .capable: break
        }
        guard largestAckedIncreased else { return 0 }
        guard let counts else {
            // Marked packets acknowledged without counts: the peer does not report them, or
            // the path cleared the field (§13.4.2.1).
            if newlyAckedMarked > 0 { state = .failed }
            return 0
        }
        let previous = validatedCounts[space]
        let sent = sentECT0[space]
        guard counts.ect0 >= previous.ect0, counts.ect1 >= previous.ect1, counts.ce >= previous.ce,  // no decrease
              counts.ect1 == 0,  // never sent
              (counts.ect0 - previous.ect0) + (counts.ce - previous.ce) >= UInt64(newlyAckedMarked),  // all marked ones counted
              counts.ect0 <= sent, counts.ce <= sent - counts.ect0  // no more than were sent
        else {
            state = .failed
            return 0
        }
        validatedCounts[space] = counts
        if newlyAckedMarked > 0, state == .testing || state == .unknown { state = .capable }
        return counts.ce - previous.ce
    }

    /// `count` packets sent marked were declared lost. Once the testing period is over with
    /// every marked packet lost and none acknowledged, the marks are what the path drops: the
    /// path fails (RFC 9000 §13.4.2).
    package mutating func onMarkedPacketsLost(_ count: Int) {
        markedLost += count
        failIfAllLost()
    }

    /// Starts validation over for a new path (RFC 9000 §13.4.2: "for each new path"); the
    /// counts so far stay the baseline the peer's next counts are compared with.
    package mutating func restart() {
        guard state != .disabled else { return }
        state = .testing
        markedSent = 0
        markedAcknowledged = 0
        markedLost = 0
        testingDeadline = nil
    }

    // MARK: - Private

    private mutating func endTesting() {
        state = .unknown
        failIfAllLost()
    }

    private mutating func failIfAllLost() {
        if state == .unknown, markedAcknowledged == 0, markedSent > 0, markedLost >= markedSent { state = .failed }
    }
}

/// One value per packet number space, held inline (no array to allocate).
struct PerSpace<Value: Sendable>: Sendable {
    private var initial: Value
    private var handshake: Value
    private var applicationData: Value

    init(_ value: Value) {
        (initial, handshake, applicationData) = (value, value, value)
    }

    subscript(space: PacketNumberSpace) -> Value {
        get {
            switch space {
            case .initial: initial
            case .handshake: handshake
            case .applicationData: applicationData
            }
        }
        set {
            switch space {
            case .initial: initial = newValue
            case .handshake: handshake = newValue
            case .applicationData: applicationData = newValue
            }
        }
    }
}

extension ECNCounts {
    /// No packets counted.
    static let zero = ECNCounts(ect0: 0, ect1: 0, ce: 0)
}
