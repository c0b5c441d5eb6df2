package import QuiverCore

/// Which loss detection timer is armed (RFC 9002 §6.1.2, §6.2).
package enum TimerKind: Hashable, Sendable {
    /// Time threshold loss detection for a packet of this space (RFC 9002 §6.1.2).
    case lossTime(PacketNumberSpace)
    /// A probe timeout for this space (RFC 9002 §6.2), including the client's anti-deadlock
    /// timeout (§6.2.2.1).
    case probeTimeout(PacketNumberSpace)
}

/// Packets newly declared lost in one packet number space (RFC 9002 §6.1), with what the
/// congestion controller needs to react (RFC 9002 §7.3.2, §7.6).
package struct LossEvent: Hashable, Sendable {
    /// The packet number space of the packets.
    public var space: PacketNumberSpace
    /// The lost packets, in ascending packet-number order; their ``SentPacket/frames`` say what
    /// to send again (RFC 9000 §13.3).
    public var packets: [SentPacket]
    /// Whether persistent congestion was established (RFC 9002 §7.6.2): the congestion
    /// controller then collapses its window (`onPersistentCongestion()`).
    public var persistentCongestion: Bool

    /// Creates a loss event.
    public init(space: PacketNumberSpace, packets: [SentPacket] = [], persistentCongestion: Bool = false) {
        self.space = space
        self.packets = packets
        self.persistentCongestion = persistentCongestion
    }

    /// Whether no packet was lost.
    public var isEmpty: Bool { packets.isEmpty }

    /// The bytes of the lost packets that were in flight (RFC 9002 Appendix B.9).
    public var lostBytes: Int {
        packets.reduce(0) { $1.inFlight ? $0 + $1.size : $0 }
    }

    /// The send time of the most recently sent lost in-flight packet: the `sentTime` for the
    /// congestion controller's congestion event (RFC 9002 Appendix B.9), or `nil` if no
    /// in-flight packet was lost.
    public var newestLostSentTime: Instant? {
        packets.last { $0.inFlight }?.timeSent
    }
}

/// What processing an ACK frame found (RFC 9002 Appendix A.7).
package struct AckOutcome: Hashable, Sendable {
    /// The packets this ACK acknowledged for the first time, ascending. Their frames are
    /// delivered: stream and crypto data can be released, and an ``SentFrameInfo/ack(largest:)``
    /// frame among them lets the receiver side forget ranges (RFC 9000 §13.2.4).
    public var newlyAcked: [SentPacket]
    /// Packets declared lost as a consequence of this ACK (RFC 9002 §6.1).
    public var loss: LossEvent
    /// Packets acknowledged after having been declared lost, ascending: the loss was spurious.
    /// Their frames were already handed over for re-framing; a caller may ignore them or undo
    /// a congestion event (`onSpuriousCongestion()`).
    public var ackedLate: [AckedPacketInfo]
    /// The RTT sample taken from this ACK (`latest_rtt`, RFC 9002 §5.1), if one was.
    public var rttSample: Duration?
    /// The send time of the largest newly acknowledged packet: the `sentTime` for an ECN
    /// congestion event (RFC 9002 Appendix B.7; the counts are ``ECNValidation``'s to judge).
    public var largestNewlyAckedSentTime: Instant? { newlyAcked.last?.timeSent }

    /// Creates an empty outcome for `space`.
    public init(space: PacketNumberSpace) {
        newlyAcked = []
        loss = LossEvent(space: space)
        ackedLate = []
        rttSample = nil
    }

    /// Whether an RTT sample was taken.
    public var rttSampleTaken: Bool { rttSample != nil }

    /// Whether persistent congestion was established (RFC 9002 §7.6.2).
    public var persistentCongestion: Bool { loss.persistentCongestion }

    /// The newly acknowledged in-flight packets, as the congestion controller takes them
    /// (RFC 9002 Appendix B.5).
    /// A view: no array per ACK frame, and no copy of a packet's record (a lazy filter and
    /// map would copy each, frame list included).
    public var ackedInFlight: AckedInFlight { AckedInFlight(packets: newlyAcked) }
}

/// ``AckOutcome/ackedInFlight``: the in-flight packets of a list of sent packets, each read in
/// place as an ``AckedPacketInfo``.
package struct AckedInFlight: Sequence, IteratorProtocol {
    private let packets: [SentPacket]
    private var index = 0

    init(packets: [SentPacket]) { self.packets = packets }

    package mutating func next() -> AckedPacketInfo? {
        while index < packets.count {
            index += 1
            if packets[index - 1].inFlight { return packets[index - 1].ackedInfo }
        }
        return nil
    }
}

/// What a loss detection timeout asks for (RFC 9002 Appendix A.9).
package enum TimeoutOutcome: Hashable, Sendable {
    /// The timer was not due (it is later than `now`, or none is armed).
    case none
    /// Packets were declared lost by the time threshold (RFC 9002 §6.1.2).
    case lost(LossEvent)
    /// A probe timeout: send `count` (1 or 2) ack-eliciting packets in `space` (RFC 9002
    /// §6.2.4), preferring new data, else retransmitted data, else a PING. With `antiDeadlock`
    /// the client has nothing in flight and must unblock a server limited by anti-amplification
    /// (§6.2.2.1): a Handshake packet if it has Handshake keys, else an Initial packet in a
    /// datagram of at least 1200 bytes.
    case probe(space: PacketNumberSpace, count: Int, antiDeadlock: Bool)
}

/// Loss detection and probe timeouts for one path, exactly as RFC 9002 §6 and Appendix A.
///
/// A sans-I/O value: every input carries `now`, which must never go backwards; the engine never
/// reads a clock. It owns the ``RTTEstimator`` (RFC 9002 §5) and one ``SentPacketLog`` per
/// packet number space; congestion control is separate and driven by the outcomes.
///
/// Call order:
/// - ``onPacketSent(_:space:now:)`` for every packet sent (ACK-only packets included), then
///   give in-flight ones to the congestion controller with ``bytesInFlight``;
/// - ``onAckReceived(_:ackDelayExponent:space:now:handshakeConfirmed:maxAckDelay:)`` for every
///   ACK frame; it throws a PROTOCOL_VIOLATION ``QUICError`` if the frame acknowledges a packet
///   number never sent (RFC 9000 §13.1). Feed the ``AckOutcome`` to the congestion controller:
///   `onPacketsAcknowledged` with ``AckOutcome/ackedInFlight``, `onCongestionEvent` for a
///   non-empty ``LossEvent``, `onPersistentCongestion` if established, `onECNCongestion` for an
///   ECN-CE increase that ``ECNValidation`` found valid; re-frame the lost packets' frames;
/// - ``lossDetectionTimer`` after every input, and ``onLossDetectionTimeout(now:)`` once its
///   deadline has passed;
/// - ``discard(space:)`` when Initial or Handshake keys are discarded (RFC 9002 §6.4);
/// - ``confirmHandshake()``, ``hasHandshakeKeys`` and ``isAtAntiAmplificationLimit`` as the
///   connection learns them. A server that receives a datagram while at its anti-amplification
///   limit clears the flag and, if ``lossDetectionTimer`` is then in the past, calls
///   ``onLossDetectionTimeout(now:)`` at once (RFC 9002 Appendix A.6).
package struct LossDetection: Sendable {
    /// Tunable constants of RFC 9002 Appendix A.2.
    public struct Configuration: Hashable, Sendable {
        /// `kInitialRtt` (RFC 9002 §6.2.2): 333 ms by default.
        public var initialRTT: Duration
        /// `kPacketThreshold` (RFC 9002 §6.1.1): 3; values below 3 are raised to 3.
        public var packetThreshold: UInt64
        /// `kTimeThreshold` as a fraction (RFC 9002 §6.1.2): 9/8.
        public var timeThresholdNumerator: Int
        /// The denominator of `kTimeThreshold`.
        public var timeThresholdDenominator: Int
        /// `kPersistentCongestionThreshold` (RFC 9002 §7.6.1): 3.
        public var persistentCongestionThreshold: Int
        /// Probe packets to send on a PTO, 1 or 2 (RFC 9002 §6.2.4): 2.
        public var probePacketCount: Int

        /// Creates a configuration; the defaults are RFC 9002's recommendations.
        ///
        /// - Precondition: `initialRTT` is positive, the time threshold is at least 1 and
        ///   `probePacketCount` is 1 or 2.
        public init(
            initialRTT: Duration = RTTEstimator.defaultInitialRTT, packetThreshold: UInt64 = 3,
            timeThresholdNumerator: Int = 9, timeThresholdDenominator: Int = 8,
            persistentCongestionThreshold: Int = 3, probePacketCount: Int = 2
        ) {
            precondition(initialRTT > .zero, "the initial RTT must be positive")
            precondition(
                timeThresholdDenominator > 0 && timeThresholdNumerator >= timeThresholdDenominator,
                "the time threshold must be at least 1")
            precondition(persistentCongestionThreshold > 0, "the persistent congestion threshold must be positive")
            precondition((1...2).contains(probePacketCount), "a PTO sends one or two probes")
            self.initialRTT = initialRTT
            self.packetThreshold = max(packetThreshold, 3)
            self.timeThresholdNumerator = timeThresholdNumerator
            self.timeThresholdDenominator = timeThresholdDenominator
            self.persistentCongestionThreshold = persistentCongestionThreshold
            self.probePacketCount = probePacketCount
        }
    }

    /// The default `max_ack_delay` when the peer sends none: 25 ms (RFC 9000 §18.2).
    public static let defaultMaxAckDelay: Duration = .milliseconds(25)

    /// This endpoint's role: a server always counts its peer's address as validated
    /// (RFC 9002 Appendix A.8 `PeerCompletedAddressValidation`).
    public let role: Role

    /// The configuration.
    public let configuration: Configuration

    /// The path's RTT estimate (RFC 9002 §5).
    public private(set) var rtt: RTTEstimator

    /// The number of PTOs since the last acknowledgment reset it, `pto_count` (RFC 9002
    /// §6.2.1); each doubles the PTO period.
    public private(set) var ptoCount = 0

    /// Whether the handshake is confirmed (RFC 9001 §4.1.2). Until then the Application Data
    /// PTO is not armed and `max_ack_delay` does not limit ACK delays (RFC 9002 §5.3, §6.2.1).
    public private(set) var handshakeConfirmed = false

    /// Whether the peer has completed address validation, `PeerCompletedAddressValidation()`
    /// (RFC 9002 Appendix A.8): always for a server; for a client once a Handshake packet was
    /// acknowledged or the handshake is confirmed, or when the connection says so.
    public var peerCompletedAddressValidation: Bool

    /// Whether the client has Handshake keys: its anti-deadlock probe is then a Handshake
    /// packet, else an Initial one (RFC 9002 §6.2.2.1).
    public var hasHandshakeKeys = false

    /// Whether this server can send nothing more before the client's address is validated
    /// (RFC 9000 §8.1): the PTO is then not armed (RFC 9002 §6.2.2.1, Appendix A.8).
    public var isAtAntiAmplificationLimit = false

    /// The peer's `max_ack_delay` (RFC 9000 §18.2), used for the Application Data PTO and the
    /// persistent congestion duration; each ACK's value replaces it.
    public var maxAckDelay: Duration = LossDetection.defaultMaxAckDelay

    /// The sent packets of each packet number space (stored properties: no array indirection
    /// or copy-on-write check per packet).
    private var initialLog = SentPacketLog()
    private var handshakeLog = SentPacketLog()
    private var applicationLog = SentPacketLog()
    /// The last time the pseudocode would have called `SetLossDetectionTimer()`: the start of
    /// the client's anti-deadlock PTO.
    private var timerAnchor: Instant?
    /// The storage of the last ``AckOutcome/newlyAcked`` given back by ``recycle(_:)``,
    /// emptied: the next ACK's outcome reuses it instead of allocating one per ACK frame.
    private var newlyAckedStorage: [SentPacket] = []
    private var lastSendTime = Instant(nanoseconds: 0)

    /// Creates loss detection for a new connection (RFC 9002 Appendix A.4).
    ///
    /// - Parameters:
    ///   - role: Whether this endpoint is the client or the server.
    ///   - configuration: The constants; RFC 9002's recommendations by default.
    public init(role: Role, configuration: Configuration = Configuration()) {
        self.role = role
        self.configuration = configuration
        self.rtt = RTTEstimator(initialRTT: configuration.initialRTT)
        self.peerCompletedAddressValidation = role == .server
    }

    // MARK: - State

    /// The sent packets of `space`.
    public func sentPackets(in space: PacketNumberSpace) -> SentPacketLog { read(space) { $0 } }

    /// The bytes in flight across all spaces (RFC 9002 Appendix B.2): in-flight packets neither
    /// acknowledged, declared lost nor discarded.
    public var bytesInFlight: Int {
        initialLog.bytesInFlight + handshakeLog.bytesInFlight + applicationLog.bytesInFlight
    }

    /// Whether `space` has ack-eliciting packets in flight.
    public func hasAckElicitingInFlight(in space: PacketNumberSpace) -> Bool {
        read(space) { $0.ackElicitingInFlight > 0 }
    }

    /// Whether any space has ack-eliciting packets in flight.
    public var hasAckElicitingInFlight: Bool {
        initialLog.ackElicitingInFlight > 0 || handshakeLog.ackElicitingInFlight > 0 || applicationLog.ackElicitingInFlight > 0
    }

    /// The largest packet number acknowledged in `space`, `largest_acked_packet`.
    public func largestAcked(in space: PacketNumberSpace) -> UInt64? { read(space) { $0.largestAcked } }

    /// `max(kTimeThreshold * max(smoothed_rtt, latest_rtt), kGranularity)`: how long after a
    /// later packet was acknowledged an earlier one is declared lost (RFC 9002 §6.1.2).
    public var lossDelay: Duration {
        let delay = max(rtt.latestRTT, rtt.smoothedRTT).scaled(by: configuration.timeThresholdNumerator)
            .divided(by: configuration.timeThresholdDenominator)
        return max(delay, RTTEstimator.granularity)
    }

    /// The PTO period of `space` including backoff: `(smoothed_rtt + max(4 * rttvar,
    /// kGranularity) + max_ack_delay) * 2^pto_count`, where `max_ack_delay` counts only for
    /// Application Data (RFC 9002 §6.2.1).
    public func probeTimeout(for space: PacketNumberSpace) -> Duration {
        let base = space == .applicationData ? rtt.probeTimeout(maxAckDelay: maxAckDelay) : rtt.ptoBase
        return base.scaled(by: backoff)
    }

    /// Confirms the handshake (RFC 9001 §4.1.2): arms the Application Data PTO, limits ACK
    /// delays to `max_ack_delay` and ends the client's anti-deadlock timer.
    public mutating func confirmHandshake() {
        handshakeConfirmed = true
        peerCompletedAddressValidation = true
    }

    // MARK: - Inputs

    /// Records a sent packet (RFC 9002 Appendix A.5 `OnPacketSent`).
    ///
    /// - Parameters:
    ///   - packet: The packet; its ``SentPacket/timeSent`` is set to `now`.
    ///   - space: Its packet number space.
    ///   - now: The send time. Should an earlier time than a previous send arrive, the previous
    ///     one is used: send times never decrease.
    /// - Precondition: packet numbers increase within `space`.
    public mutating func onPacketSent(_ packet: consuming SentPacket, space: PacketNumberSpace, now: Instant) {
        let time = max(now, lastSendTime)
        lastSendTime = time
        packet.timeSent = time
        if packet.inFlight { timerAnchor = now }
        // Moved into the log, not copied (a copy retains the frame list).
        switch space {
        case .initial: initialLog.append(packet)
        case .handshake: handshakeLog.append(packet)
        case .applicationData: applicationLog.append(packet)
        }
    }

    /// Processes an ACK frame (RFC 9002 Appendix A.7 `OnAckReceived`).
    ///
    /// Newly acknowledged packets leave the log; if the largest acknowledged is among them and
    /// one of them is ack-eliciting, an RTT sample is taken (§5.1), with the ACK delay ignored
    /// in the Initial space (§5.3); earlier packets are
    /// declared lost by the packet and time thresholds (§6.1) and checked for persistent
    /// congestion (§7.6.2, using this space's packets only, as §7.6.2 allows); `pto_count`
    /// is reset unless a client is unsure the server validated its address (§6.2.1).
    /// Acknowledgments of packets already declared lost are reported in
    /// ``AckOutcome/ackedLate``.
    ///
    /// - Parameters:
    ///   - ack: The decoded frame.
    ///   - ackDelayExponent: The peer's `ack_delay_exponent` transport parameter (RFC 9000
    ///     §18.2), to decode the ACK Delay field.
    ///   - space: The packet number space the frame arrived in.
    ///   - now: When the frame was received.
    ///   - handshakeConfirmed: Whether the handshake is confirmed; `true` also confirms it
    ///     here (``confirmHandshake()``).
    ///   - maxAckDelay: The peer's `max_ack_delay`; recorded in ``maxAckDelay``.
    /// - Returns: What the frame acknowledged and what is now lost.
    /// - Throws: A ``QUICError`` with PROTOCOL_VIOLATION if the frame acknowledges a packet
    ///   number that was never sent in `space` (RFC 9000 §13.1); nothing is changed then.
    public mutating func onAckReceived(
        _ ack: AckFrame, ackDelayExponent: UInt64, space: PacketNumberSpace, now: Instant,
        handshakeConfirmed: Bool, maxAckDelay: Duration
    ) throws(QUICError) -> AckOutcome {
        if let unsent = read(space, { $0.firstUnsentPacketNumber(in: ack.ranges) }) {
            throw QUICError(
                .protocolViolation, "ACK of packet \(unsent) never sent in the \(space) space",
                frameType: ack.type.rawValue)
        }
        if handshakeConfirmed { confirmHandshake() }
        self.maxAckDelay = max(maxAckDelay, .zero)
        // A client whose Handshake packet is acknowledged knows the server validated its
        // address (Appendix A.8 `PeerCompletedAddressValidation`).
        if space == .handshake { peerCompletedAddressValidation = true }

        var outcome = AckOutcome(space: space)
        swap(&outcome.newlyAcked, &newlyAckedStorage)
        let retention = lostPacketRetention
        modify(space) { log in
            log.forgetLostPackets(now: now, retention: retention)
            log.acknowledge(ack.ranges, newlyAcked: &outcome.newlyAcked, ackedLate: &outcome.ackedLate)
        }
        guard let largestNewlyAcked = outcome.newlyAcked.last else { return outcome }

        // RTT sample (§5.1): the largest acknowledged is newly acknowledged and at least one
        // newly acknowledged packet is ack-eliciting.
        if largestNewlyAcked.packetNumber == ack.largestAcknowledged,
            outcome.newlyAcked.contains(where: { $0.ackEliciting })
        {
            let latest = now - largestNewlyAcked.timeSent
            let ackDelay = space == .initial ? .zero : Self.decodeAckDelay(ack.ackDelay, exponent: ackDelayExponent)
            rtt.update(
                latestRTT: latest, ackDelay: ackDelay, handshakeConfirmed: self.handshakeConfirmed,
                maxAckDelay: self.maxAckDelay, now: now)
            outcome.rttSample = rtt.latestRTT
        }

        outcome.loss = detectLostPackets(in: space, now: now)

        if peerCompletedAddressValidation { ptoCount = 0 }
        timerAnchor = now
        return outcome
    }

    /// Takes back an outcome of ``onAckReceived(_:ackDelayExponent:space:now:handshakeConfirmed:maxAckDelay:)``
    /// once the caller is done with it: its ``AckOutcome/newlyAcked`` storage serves the next
    /// ACK frame.
    ///
    /// The storage is kept only while packets are in flight: a connection that has nothing
    /// outstanding (idle after its handshake, say) keeps no room for the next ACK's packets.
    public mutating func recycle(_ outcome: consuming AckOutcome) {
        guard bytesInFlight > 0 else {
            newlyAckedStorage = []
            return
        }
        swap(&newlyAckedStorage, &outcome.newlyAcked)  // moved, not copied: still unique
        newlyAckedStorage.removeAll(keepingCapacity: true)
    }

    /// Discards the state of a packet number space whose keys were discarded (RFC 9002 §6.4,
    /// Appendix A.11): its packets leave bytes in flight, its loss time and last ack-eliciting
    /// send time are cleared and `pto_count` is reset. Also usable for the Initial space after
    /// a Retry (§6.3), whose packets must then be sent again.
    ///
    /// - Parameter space: The space; normally Initial or Handshake.
    /// - Returns: The packets that were outstanding, oldest first.
    @discardableResult
    public mutating func discard(space: PacketNumberSpace) -> [SentPacket] {
        let removed = modify(space) { $0.removeAll() }
        ptoCount = 0
        return removed
    }

    /// Starts the RTT estimate over, for a new path (RFC 9000 §9.4).
    public mutating func resetRTT(initialRTT: Duration) {
        rtt.reset(initialRTT: initialRTT)
    }

    // MARK: - Timer

    /// The loss detection timer, `loss_detection_timer` (RFC 9002 Appendix A.8
    /// `SetLossDetectionTimer`): the earliest time threshold loss time if any, else the PTO
    /// deadline; `nil` when nothing is to be detected, or a server is at its
    /// anti-amplification limit. The deadline may be in the past: the timer is then due.
    public var lossDetectionTimer: (deadline: Instant, kind: TimerKind)? {
        if let (time, space) = earliestLossTime { return (time, .lossTime(space)) }
        if isAtAntiAmplificationLimit { return nil }
        if !hasAckElicitingInFlight && peerCompletedAddressValidation { return nil }
        guard let (time, space) = probeTimeoutAndSpace else { return nil }
        return (time, .probeTimeout(space))
    }

    /// ``lossDetectionTimer``'s deadline, read through an exclusive access: for a connection,
    /// whose loss detection state is a class property, asking for its next deadline after every
    /// datagram. A non-mutating read there copies the whole state first (its packet logs
    /// retained and released).
    public mutating func lossDetectionDeadline() -> Instant? { lossDetectionTimer?.deadline }

    /// Handles the loss detection timer (RFC 9002 Appendix A.9 `OnLossDetectionTimeout`).
    ///
    /// Returns ``TimeoutOutcome/none`` if the timer is not armed or not due at `now`.
    /// Otherwise either declares packets lost by the time threshold, or reports a PTO and
    /// doubles the PTO period (`pto_count += 1`).
    ///
    /// - Parameter now: The current time.
    public mutating func onLossDetectionTimeout(now: Instant) -> TimeoutOutcome {
        guard let (deadline, kind) = lossDetectionTimer, deadline <= now else { return .none }
        timerAnchor = now
        switch kind {
        case .lossTime(let space):
            let retention = lostPacketRetention
            modify(space) { $0.forgetLostPackets(now: now, retention: retention) }
            return .lost(detectLostPackets(in: space, now: now))
        case .probeTimeout(let space):
            ptoCount += 1
            if hasAckElicitingInFlight {
                return .probe(space: space, count: configuration.probePacketCount, antiDeadlock: false)
            }
            return .probe(space: space, count: 1, antiDeadlock: true)
        }
    }

    // MARK: - Private

    /// `2^pto_count`, capped so that durations stay finite.
    private var backoff: Int { 1 << min(ptoCount, 30) }

    /// How long lost packets are remembered for spurious-loss detection: the persistent
    /// congestion duration.
    private var lostPacketRetention: Duration {
        rtt.persistentCongestionDuration(
            maxAckDelay: maxAckDelay, threshold: configuration.persistentCongestionThreshold)
    }

    /// `GetLossTimeAndSpace()` (RFC 9002 Appendix A.8).
    private var earliestLossTime: (Instant, PacketNumberSpace)? {
        var result: (Instant, PacketNumberSpace)?
        if let time = initialLog.lossTime { result = (time, .initial) }
        if let time = handshakeLog.lossTime, result.map({ time < $0.0 }) ?? true { result = (time, .handshake) }
        if let time = applicationLog.lossTime, result.map({ time < $0.0 }) ?? true { result = (time, .applicationData) }
        return result
    }

    /// `GetPtoTimeAndSpace()` (RFC 9002 Appendix A.8).
    private var probeTimeoutAndSpace: (Instant, PacketNumberSpace)? {
        let backoff = self.backoff
        var duration = rtt.ptoBase.scaled(by: backoff)
        guard hasAckElicitingInFlight else {
            // Anti-deadlock PTO (§6.2.2.1): counts from the last time the timer was set.
            guard let anchor = timerAnchor else { return nil }
            return (anchor + duration, hasHandshakeKeys ? .handshake : .initial)
        }
        var result: (Instant, PacketNumberSpace)?
        if initialLog.ackElicitingInFlight > 0, let lastSent = initialLog.timeOfLastAckElicitingPacket {
            result = (lastSent + duration, .initial)
        }
        if handshakeLog.ackElicitingInFlight > 0, let lastSent = handshakeLog.timeOfLastAckElicitingPacket {
            let time = lastSent + duration
            if result.map({ time < $0.0 }) ?? true { result = (time, .handshake) }
        }
        if applicationLog.ackElicitingInFlight > 0, let lastSent = applicationLog.timeOfLastAckElicitingPacket {
            // Not armed for Application Data until the handshake is confirmed (§6.2.1).
            guard handshakeConfirmed else { return result }
            duration += maxAckDelay.scaled(by: backoff)
            let time = lastSent + duration
            if result.map({ time < $0.0 }) ?? true { result = (time, .applicationData) }
        }
        return result
    }

    /// `DetectAndRemoveLostPackets()` (RFC 9002 Appendix A.10) plus the persistent congestion
    /// check (§7.6.2); sets `min_rtt` to the latest sample when it is established (§5.2).
    private mutating func detectLostPackets(in space: PacketNumberSpace, now: Instant) -> LossEvent {
        var event = LossEvent(space: space)
        var check: (duration: Duration, firstSampleTime: Instant)?
        if let firstSampleTime = rtt.firstSampleTime {
            check = (
                rtt.persistentCongestionDuration(
                    maxAckDelay: maxAckDelay, threshold: configuration.persistentCongestionThreshold),
                firstSampleTime
            )
        }
        let lossDelay = self.lossDelay
        let packetThreshold = configuration.packetThreshold
        event.persistentCongestion = modify(space) { log in
            log.detectLostPackets(
                now: now, lossDelay: lossDelay, packetThreshold: packetThreshold,
                persistentCongestion: check, into: &event.packets)
        }
        if event.persistentCongestion { rtt.resetMinRTT() }
        return event
    }

    /// Runs `body` on the log of `space`.
    private func read<R>(_ space: PacketNumberSpace, _ body: (SentPacketLog) -> R) -> R {
        switch space {
        case .initial: body(initialLog)
        case .handshake: body(handshakeLog)
        case .applicationData: body(applicationLog)
        }
    }

    /// Runs `body` on the log of `space`, in place.
    private mutating func modify<R>(_ space: PacketNumberSpace, _ body: (inout SentPacketLog) -> R) -> R {
        switch space {
        case .initial: body(&initialLog)
        case .handshake: body(&handshakeLog)
        case .applicationData: body(&applicationLog)
        }
    }

    /// The ACK Delay field in microseconds times 2^exponent (RFC 9000 §19.3), saturating.
    static func decodeAckDelay(_ field: UInt64, exponent: UInt64) -> Duration {
        let shift = min(exponent, 63)
        let microseconds = field > (UInt64.max >> shift) ? UInt64.max : field << shift
        return .microseconds(Int64(clamping: microseconds))
    }
}
