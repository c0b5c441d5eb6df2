/// Where ECN validation of a path stands (RFC 9000 §13.4.2, the states of Appendix A.4).
///
/// A sender marks its packets ECT(0) while ``testing`` and once ``capable``; ``unknown`` and
/// ``failed`` paths get unmarked packets.
public enum ECNValidationState: String, Hashable, Sendable, CustomStringConvertible {
    /// The first packets on the path are marked ECT(0) (ten, or for three PTOs) to learn how
    /// the path and the peer treat them.
    case testing
    /// The testing period ended before an acknowledgment validated the marks: packets go
    /// unmarked until one does.
    case unknown
    /// The peer's ECN counts matched what was marked: packets are marked ECT(0), and ECN-CE
    /// counts are congestion signals.
    case capable
    /// The counts went missing, decreased or did not cover the marked packets, or every marked
    /// packet was lost: ECN is off for the path.
    case failed
    /// ECN marking is turned off by configuration (received marks are still reported).
    case disabled

    public var description: String { rawValue }
}

/// What a connection did with Explicit Congestion Notification (RFC 9000 §13.4, RFC 9002 §7.1):
/// the path's validation state, the packets it marked and the marks it received.
public struct ECNStatistics: Hashable, Sendable, CustomStringConvertible {
    /// The ECN validation state of the current path.
    public var state: ECNValidationState
    /// Packets sent marked ECT(0) (coalesced packets count one each).
    public var packetsSentECT0 = 0
    /// Datagrams received whose IP header carried ECT(0) (only those with a packet processed).
    public var datagramsReceivedECT0 = 0
    /// Datagrams received whose IP header carried ECT(1).
    public var datagramsReceivedECT1 = 0
    /// Datagrams received whose IP header carried ECN-CE: the path toward us is congested.
    public var datagramsReceivedCE = 0
    /// Increases of the peer's ECN-CE counts taken as congestion events (RFC 9002 §7.1): the
    /// path toward the peer marked our packets.
    public var congestionEvents = 0

    /// Statistics of a connection that has done nothing yet, in `state`.
    public init(state: ECNValidationState) {
        self.state = state
    }

    public var description: String {
        "ecn \(state), sent ECT(0) \(packetsSentECT0), received ECT(0) \(datagramsReceivedECT0) ECT(1) \(datagramsReceivedECT1) CE \(datagramsReceivedCE), CE congestion events \(congestionEvents)"
    }

    /// Counts a received datagram's codepoint.
    public mutating func noteReceived(_ codepoint: ECNCodepoint) {
        switch codepoint {
        case .notECT: break
        case .ect0: datagramsReceivedECT0 += 1
        case .ect1: datagramsReceivedECT1 += 1
        case .ce: datagramsReceivedCE += 1
        }
    }
}
