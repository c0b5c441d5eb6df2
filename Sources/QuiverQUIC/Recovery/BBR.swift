package import QuiverCore

/// The BBR congestion controller (draft-ietf-ccwg-bbr, "BBRv3"), on the QUIC signals of
/// RFC 9002.
///
/// BBR models the path by its bottleneck bandwidth (`BBR.max_bw`, a windowed maximum of
/// delivery rate samples, ``DeliveryRateSampler``) and its round-trip propagation time
/// (`BBR.min_rtt`), and sends at a paced rate (``pacingRate``) near `max_bw` with a window
/// (``congestionWindow``) near the bandwidth-delay product. Its state machine (§5.3):
/// Startup doubles the rate every round until the bandwidth stops growing (or loss is high),
/// Drain empties the queue Startup built, ProbeBW cycles DOWN, CRUISE, REFILL and UP to
/// track the bandwidth, and ProbeRTT briefly shrinks the window every 5 s to re-measure
/// `min_rtt`. Loss bounds the model (§5.5.10): `inflight_longterm` when a bandwidth probe
/// loses more than 2 % (`BBR.LossThresh`), `bw_shortterm`/`inflight_shortterm` cut by
/// `BBR.Beta = 0.7` per lossy round when not probing.
///
/// All rates are bytes per second, volumes bytes, gains percent; arithmetic saturates, so no
/// input traps. Not implemented: ACK-frequency tuning (§4.1.3.3) and offload budgets beyond
/// `C.send_quantum` (§5.5.8.2). An ECN-CE increase counts as a loss in the round (§3.7 asks
/// only that CE be treated as congestion).
package struct BBR: CongestionController, Hashable {
    /// The states of the BBR state machine (§5.1).
    public enum State: Hashable, Sendable {
        case startup, drain, probeBWDown, probeBWCruise, probeBWRefill, probeBWUp, probeRTT

        /// `IsInAProbeBWState()`.
        public var isProbeBW: Bool {
            switch self {
            case .probeBWDown, .probeBWCruise, .probeBWRefill, .probeBWUp: true
            default: false
            }
        }
    }

    /// `BBR.ack_phase` (§2.14).
    enum AckPhase: Hashable, Sendable { case initial, refilling, probeStarting, probeFeedback, probeStopping }

    // MARK: Constants (§2)

    /// `BBR.StartupPacingGain`, 4 ln 2 ≈ 2.77, in percent.
    public static let startupPacingGain = 277
    /// `BBR.DrainPacingGain`, 0.5.
    public static let drainPacingGain = 50
    /// `BBR.DefaultCwndGain`, 2.
    public static let defaultCwndGain = 200
    /// The ProbeBW_UP cwnd gain, 2.25 (§5.6.1).
    public static let probeUpCwndGain = 225
    /// `BBR.ProbeRTTCwndGain`, 0.5.
    public static let probeRTTCwndGain = 50
    /// `BBR.PacingMarginPercent`, 1 %.
    public static let pacingMarginPercent = 1
    /// `BBR.LossThresh`, 2 %.
    public static let lossThresholdPercent = 2
    /// `BBR.Beta`, 0.7.
    public static let betaPercent = 70
    /// `BBR.Headroom`, 0.15.
    public static let headroomPercent = 15
    /// `BBR.MinRTTFilterLen`, 10 s.
    public static let minRTTFilterLength: Int64 = 10_000_000_000
    /// `BBR.ProbeRTTInterval`, 5 s.
    public static let probeRTTInterval: Int64 = 5_000_000_000
    /// `BBR.ProbeRTTDuration`, 200 ms.
    public static let probeRTTDuration: Int64 = 200_000_000
    /// `BBR.ExtraAckedFilterLen`, 10 rounds.
    public static let extraAckedFilterLength: UInt64 = 10
    /// `BBRStartupFullLossCnt`: discontiguous lost ranges in a round for Startup's loss exit.
    public static let startupFullLossCount = 6
    /// "Infinity" for volumes and rates.
    static let infinite = Int.max
    static let noRTT = Int64.max

    // MARK: Output

    /// `C.cwnd` in bytes.
    public private(set) var congestionWindow: Int
    /// `C.pacing_rate` in bytes per second.
    public private(set) var pacingRate: Int
    /// `C.send_quantum` in bytes (§5.6.3).
    public private(set) var sendQuantum: Int
    /// The maximum datagram size, `C.SMSS`.
    public private(set) var maxDatagramSize: Int
    /// The start of the current loss recovery period (RFC 9002 §7.3.2); BBR reduces no window
    /// at its start, but saves the state a spurious loss restores (§5.6.4.4).
    public private(set) var recoveryStartTime: Instant?
    /// BBR has no slow start threshold.
    public var ssthresh: Int? { nil }
    /// Startup is BBR's slow start.
    public var inSlowStart: Bool { state == .startup }

    // MARK: Model and state

    /// `BBR.state`.
    public private(set) var state: State = .startup
    /// `BBR.pacing_gain` in percent.
    public private(set) var pacingGain = BBR.startupPacingGain
    /// `BBR.cwnd_gain` in percent.
    public private(set) var cwndGain = BBR.defaultCwndGain
    /// `BBR.max_bw` in bytes per second.
    public var maxBandwidth: Int { max(maxBwCurrent, maxBwPrevious) }
    /// `BBR.bw`: `min(max_bw, bw_shortterm)`.
    public private(set) var bandwidth = 0
    /// `BBR.min_rtt` in nanoseconds; `Int64.max` before the first sample.
    public private(set) var minRTT = BBR.noRTT
    /// `BBR.bdp` in bytes.
    public private(set) var bdp = 0
    /// `BBR.full_bw_reached`.
    public private(set) var fullBandwidthReached = false
    /// `BBR.inflight_longterm`; `Int.max` while unset.
    public private(set) var inflightLongterm = BBR.infinite
    /// `BBR.inflight_shortterm`; `Int.max` while unset.
    public private(set) var inflightShortterm = BBR.infinite
    /// `BBR.bw_shortterm`; `Int.max` while unset.
    public private(set) var bandwidthShortterm = BBR.infinite
    /// `BBR.round_count`.
    public private(set) var roundCount: UInt64 = 0
    /// `BBR.max_inflight` in bytes.
    public private(set) var maxInflight = 0
    /// `BBR.extra_acked` in bytes.
    public private(set) var extraAcked = 0
    /// The delivery rate sampler (`C.delivered`, `C.lost`, `C.app_limited`, …).
    public private(set) var sampler = DeliveryRateSampler()
    /// The rate sample of the latest ACK.
    public private(set) var latestSample = RateSample()

    private let initialCongestionWindow: Int
    private var roundStart = false
    private var nextRoundDelivered = 0
    private var idleRestart = false
    private var drainStartRound: UInt64 = 0
    /// The two slots of the `BBR.max_bw` filter (§5.5.3): this ProbeBW cycle's maximum and
    /// the previous one's; `BBR.MaxBwFilterLen = 2` cycles.
    private var maxBwCurrent = 0
    private var maxBwPrevious = 0
    /// `BBR.min_rtt_stamp`; `nil` before the first RTT sample (QUIC has none at `OnInit()`).
    private var minRTTStamp: Instant?
    private var probeRTTMinDelay = BBR.noRTT
    /// `BBR.probe_rtt_min_stamp`; `nil` before the first RTT sample.
    private var probeRTTMinStamp: Instant?
    private var probeRTTExpired = false
    private var probeRTTDoneStamp: Instant?
    private var probeRTTRoundDone = false
    private var priorCwnd = 0
    private var extraAckedFilter = WindowedMaxFilter()
    private var extraAckedIntervalStart = Instant(nanoseconds: 0)
    private var extraAckedDelivered = 0
    private var bwLatest = 0
    private var inflightLatest = 0
    private var lossRoundDelivered = 0
    private var lossRoundStart = false
    private var isLossInRound = false
    private var fullBandwidthNow = false
    private var fullBandwidth = 0
    private var fullBandwidthCount = 0
    private var ackPhase = AckPhase.initial
    private var isBwProbeSample = false
    private var bwProbeUpAcked = 0
    private var probeUpAckedPerIncrement = BBR.infinite
    private var bwProbeUpRounds = 0
    private var roundsSinceProbeUp = 0
    private var bwProbeWait: Int64 = 0
    private var cycleStamp = Instant(nanoseconds: 0)
    private var previousProbeTooHigh = false
    private var previousProbePrecautionary = false
    private var undoState: State?
    private var undoBandwidthShortterm = 0
    private var undoInflightShortterm = 0
    private var undoInflightLongterm = 0
    /// `C.inflight` as of the latest input.
    private var inflight = 0
    /// `C.is_cwnd_limited`: the window was full at some point of the last round (§2.2).
    private var isCwndLimited = false
    private var cwndLimitedInRound = false
    /// Startup's loss exit (§5.3.1.3): bytes lost and discontiguous lost ranges this round.
    private var roundLost = 0
    private var roundLossRanges = 0
    private var roundDeliveredStart = 0
    private var lastLostPacket: UInt64?
    /// The round count when the current recovery period began.
    private var recoveryRound: UInt64?
    /// The seed of `PickProbeWait()`'s pseudo-random choices: deterministic runs.
    private var random: UInt64

    /// Creates a controller in Startup (`OnInit()`, §5.2.1).
    ///
    /// - Parameters:
    ///   - maxDatagramSize: The maximum datagram size, clamped to `1200 ... 65527`.
    ///   - seed: Seeds the randomized wait before bandwidth probes (§5.3.3.8).
    public init(maxDatagramSize: Int = CongestionControl.defaultMaxDatagramSize, seed: UInt64 = 0x6262_7276_3300_0001) {
        self.maxDatagramSize = CongestionControl.clampedDatagramSize(maxDatagramSize)
        initialCongestionWindow = CongestionControl.initialWindow(maxDatagramSize: self.maxDatagramSize)
        congestionWindow = initialCongestionWindow
        random = seed | 1
        // InitPacingRate() without an RTT sample: C.InitialCwnd per 1 ms, times the Startup gain
        // (§5.6.2). The first RTT sample sets it again (see `initPacingRate(srtt:)`).
        pacingRate = CongestionControl.mulDiv(initialCongestionWindow * 1000, Self.startupPacingGain, 100)
        sendQuantum = 2 * self.maxDatagramSize
    }

    /// A controller in Startup for a new path (RFC 9000 §9.4: congestion state starts over),
    /// whose delivery rate sampler goes on from this one's (``DeliveryRateSampler/startOver(at:)``):
    /// packets still in flight from the old path keep consistent samples.
    public func startingOver(at now: Instant) -> BBR {
        var fresh = BBR(maxDatagramSize: maxDatagramSize, seed: random)
        fresh.sampler = sampler
        fresh.sampler.startOver(at: now)
        return fresh
    }

    /// `2 * maxDatagramSize` (RFC 9002 §7.2).
    public var minimumWindow: Int { CongestionControl.minimumWindow(maxDatagramSize: maxDatagramSize) }
    /// `BBR.MinPipeCwnd`: `4 * C.SMSS` (§2.8).
    var minPipeCwnd: Int { 4 * maxDatagramSize }

    /// Changes `C.SMSS`; an untouched initial window follows it (RFC 9002 §7.2).
    public mutating func setMaxDatagramSize(_ size: Int) {
        let newSize = CongestionControl.clampedDatagramSize(size)
        if sampler.delivered == 0, congestionWindow == CongestionControl.initialWindow(maxDatagramSize: maxDatagramSize) {
            congestionWindow = CongestionControl.initialWindow(maxDatagramSize: newSize)
        }
        maxDatagramSize = newSize
        congestionWindow = max(congestionWindow, minimumWindow)
    }

    // MARK: - Per-transmit steps (§5.2.2)

    /// `OnTransmit()`: handles a restart from idle (§5.4) and notes a full window.
    public mutating func onPacketSent(bytes: Int, now: Instant, bytesInFlight: Int) {
        let bytes = CongestionControl.clampedBytes(bytes)
        if bytesInFlight <= bytes, sampler.isAppLimited { handleRestartFromIdle(now: now) }
        inflight = CongestionControl.clampedBytes(bytesInFlight)
        if CongestionControl.add(inflight, maxDatagramSize) > congestionWindow { cwndLimitedInRound = true }
    }

    /// Stamps a packet about to be sent with the delivery state (§4.1.2.2); then call
    /// ``onPacketSent(bytes:now:bytesInFlight:)``.
    public mutating func deliveryState(sending bytes: Int, now: Instant, bytesInFlight: Int) -> DeliveryState {
        sampler.onPacketSent(bytes: CongestionControl.clampedBytes(bytes), now: now, bytesInFlight: bytesInFlight)
    }

    /// `HandleRestartFromIdle()` (§5.4.1).
    private mutating func handleRestartFromIdle(now: Instant) {
        idleRestart = true
        extraAckedIntervalStart = now
        if state.isProbeBW {
            setPacingRate(gain: 100)
        } else if state == .probeRTT {
            checkProbeRTTDone(now: now)
        }
    }

    // MARK: - Per-ACK steps (§5.2.3)

    /// `UpdateOnACK()`: builds the rate sample of the ACK's packets, updates the model and
    /// state machine, then the pacing rate and window.
    public mutating func onPacketsAcknowledged(
        _ packets: some Sequence<AckedPacketInfo>, now: Instant, rtt: RTTSnapshot, bytesInFlight: Int, isAppLimited: Bool
    ) {
        var rs = RateSample()
        var endsRecovery = false
        for packet in packets {
            sampler.onPacketAcknowledged(packet, now: now, into: &rs)
            if let start = recoveryStartTime, packet.sentTime > start { endsRecovery = true }
        }
        inflight = CongestionControl.clampedBytes(bytesInFlight)
        // CheckIfApplicationLimited() at the start of ACK processing (§4.1.2.4), with the
        // connection's judgment of RFC 9002 §7.8.
        if isAppLimited { sampler.markAppLimited(bytesInFlight: inflight) }
        sampler.generate(&rs, minRTT: max(rtt.minRTT.nanosecondsClamped, 0))
        latestSample = rs
        if pacingRateFromInitialWindow, rtt.smoothedRTT > .zero, maxBandwidth == 0 {
            initPacingRate(srttNanoseconds: rtt.smoothedRTTNanoseconds)
        }
        // The model first, while the recovery period this ACK ends is still known: Startup's
        // high-loss exit looks at it (§5.3.1.3), and the ACK that ends recovery is usually
        // the one that ends its loss round.
        updateModelAndState(rs, now: now)
        if endsRecovery {
            // Leaving recovery restores the last known good window (§5.6.4.4); the model's
            // bounds then apply below.
            recoveryStartTime = nil
            recoveryRound = nil
            restoreCwnd()
        }
        updateControlParameters(rs)
    }

    /// Whether the pacing rate still comes from the initial window (no RTT known when BBR was
    /// initialized, §5.6.2).
    private var pacingRateFromInitialWindow = true

    /// `InitPacingRate()` once the first smoothed RTT is known: QUIC has none at `OnInit()`.
    private mutating func initPacingRate(srttNanoseconds: Int64) {
        pacingRateFromInitialWindow = false
        let nominal = CongestionControl.mulDiv(initialCongestionWindow, 1_000_000_000, Int(max(srttNanoseconds, 1)))
        pacingRate = CongestionControl.mulDiv(nominal, Self.startupPacingGain, 100)
    }

    private mutating func updateModelAndState(_ rs: RateSample, now: Instant) {
        updateLatestDeliverySignals(rs)
        updateCongestionSignals(rs)
        updateAckAggregation(rs, now: now)
        checkFullBandwidthReached(rs)
        checkStartupDone()
        checkDrainDone(now: now)
        updateProbeBWCyclePhase(rs, now: now)
        updateMinRTT(rs, now: now)
        checkProbeRTT(rs, now: now)
        advanceLatestDeliverySignals(rs)
        bandwidth = min(maxBandwidth, bandwidthShortterm)  // BoundBWForModel()
    }

    private mutating func updateControlParameters(_ rs: RateSample) {
        setPacingRate(gain: pacingGain)
        // SetSendQuantum() (§5.6.3): 1 ms at the pacing rate, within 2 * SMSS ... 64 KB.
        sendQuantum = min(max(pacingRate / 1000, 2 * maxDatagramSize), 64 * 1024)
        setCwnd(rs)
    }

    // MARK: - Round counting (§5.5.1)

    private mutating func updateRound(_ rs: RateSample) {
        roundStart = false
        guard rs.hasData, rs.priorDelivered >= nextRoundDelivered else { return }
        startRound()
        roundCount &+= 1
        if roundsSinceProbeUp < .max { roundsSinceProbeUp += 1 }
        roundStart = true
        isCwndLimited = cwndLimitedInRound
        cwndLimitedInRound = false
    }

    private mutating func startRound() { nextRoundDelivered = sampler.delivered }

    // MARK: - Bandwidth (§5.5.2 – §5.5.6)

    private mutating func updateMaxBandwidth(_ rs: RateSample) {
        updateRound(rs)
        // §5.5.4: an application-limited sample counts only if it is no lower than max_bw.
        if rs.deliveryRate > 0, rs.deliveryRate >= maxBandwidth || !rs.isAppLimited {
            maxBwCurrent = max(maxBwCurrent, rs.deliveryRate)
        }
    }

    /// `AdvanceMaxBwFilter()`: a new ProbeBW cycle; samples older than two cycles expire.
    private mutating func advanceMaxBwFilter() {
        maxBwPrevious = maxBwCurrent
        maxBwCurrent = 0
    }

    // MARK: - Congestion signals (§5.5.10.3)

    private mutating func updateLatestDeliverySignals(_ rs: RateSample) {
        lossRoundStart = false
        bwLatest = max(bwLatest, rs.deliveryRate)
        inflightLatest = max(inflightLatest, rs.delivered)
        if rs.hasData, rs.priorDelivered >= lossRoundDelivered {
            lossRoundDelivered = sampler.delivered
            lossRoundStart = true
        }
    }

    private mutating func advanceLatestDeliverySignals(_ rs: RateSample) {
        guard lossRoundStart else { return }
        bwLatest = rs.deliveryRate
        inflightLatest = rs.delivered
        roundLost = 0
        roundLossRanges = 0
        roundDeliveredStart = sampler.delivered
    }

    private mutating func resetCongestionSignals() {
        isLossInRound = false
        bwLatest = 0
        inflightLatest = 0
    }

    private mutating func updateCongestionSignals(_ rs: RateSample) {
        updateMaxBandwidth(rs)
        guard lossRoundStart else { return }  // once per round trip
        if !isProbingBandwidth, isLossInRound {
            // InitLowerBounds() and LossLowerBounds(): cut the short-term model by Beta, but not
            // below what the last round delivered.
            if bandwidthShortterm == Self.infinite { bandwidthShortterm = maxBandwidth }
            if inflightShortterm == Self.infinite { inflightShortterm = congestionWindow }
            bandwidthShortterm = max(bwLatest, CongestionControl.mulDiv(bandwidthShortterm, Self.betaPercent, 100))
            inflightShortterm = max(inflightLatest, CongestionControl.mulDiv(inflightShortterm, Self.betaPercent, 100))
        }
        isLossInRound = false
    }

    private mutating func resetShortTermModel() {
        bandwidthShortterm = Self.infinite
        inflightShortterm = Self.infinite
    }

    private var isProbingBandwidth: Bool { state == .startup || state == .probeBWRefill || state == .probeBWUp }

    // MARK: - ACK aggregation (§5.5.9)

    private mutating func updateAckAggregation(_ rs: RateSample, now: Instant) {
        let interval = CongestionControl.seconds(from: extraAckedIntervalStart, to: now)
        var expected = CongestionControl.bytes(Double(bandwidth) * interval)
        if extraAckedDelivered <= expected {
            extraAckedDelivered = 0
            extraAckedIntervalStart = now
            expected = 0
        }
        extraAckedDelivered = CongestionControl.add(extraAckedDelivered, rs.newlyAcked)
        let extra = min(max(extraAckedDelivered - expected, 0), congestionWindow)
        let window = fullBandwidthReached ? Self.extraAckedFilterLength : 1  // Startup: one round
        extraAcked = extraAckedFilter.update(extra, time: roundCount, window: window)
    }

    // MARK: - Startup (§5.3.1)

    private mutating func resetFullBandwidth() {
        fullBandwidth = 0
        fullBandwidthCount = 0
        fullBandwidthNow = false
    }

    /// `CheckFullBWReached()` (§5.3.1.2): three non-app-limited rounds without 25 % growth.
    private mutating func checkFullBandwidthReached(_ rs: RateSample) {
        guard !fullBandwidthNow, roundStart, !rs.isAppLimited else { return }
        if rs.deliveryRate >= CongestionControl.mulDiv(fullBandwidth, 125, 100) {
            resetFullBandwidth()
            fullBandwidth = rs.deliveryRate
            return
        }
        fullBandwidthCount += 1
        fullBandwidthNow = fullBandwidthCount >= 3
        if fullBandwidthNow { fullBandwidthReached = true }
    }

    private mutating func checkStartupDone() {
        checkStartupHighLoss()
        if state == .startup, fullBandwidthReached { enterDrain() }
    }

    /// `CheckStartupHighLoss()` (§5.3.1.3), at the end of a round: in recovery for a full
    /// round, a loss rate above `BBR.LossThresh` over the round, and at least
    /// `BBRStartupFullLossCnt` discontiguous lost ranges in it.
    private mutating func checkStartupHighLoss() {
        guard state == .startup, !fullBandwidthReached, lossRoundStart, let start = recoveryRound, roundCount > start
        else { return }
        let delivered = max(sampler.delivered - roundDeliveredStart, 0)
        let total = CongestionControl.add(delivered, roundLost)
        guard roundLossRanges >= Self.startupFullLossCount,
              roundLost > CongestionControl.mulDiv(total, Self.lossThresholdPercent, 100)
        else { return }
        undoState = .startup
        fullBandwidthReached = true
        inflightLongterm = max(bdp, inflightLatest)
    }

    private mutating func enterStartup() {
        state = .startup
        pacingGain = Self.startupPacingGain
        cwndGain = Self.defaultCwndGain
    }

    // MARK: - Drain (§5.3.2)

    private mutating func enterDrain() {
        state = .drain
        pacingGain = Self.drainPacingGain
        cwndGain = Self.defaultCwndGain
        drainStartRound = roundCount
    }

    private mutating func checkDrainDone(now: Instant) {
        guard state == .drain, inflight <= inflight(gain: 100) || roundCount > drainStartRound &+ 3 else { return }
        // EnterProbeBW()
        cwndGain = Self.defaultCwndGain
        startProbeBWDown(now: now)
    }

    // MARK: - ProbeBW (§5.3.3)

    private mutating func startProbeBWDown(now: Instant) {
        resetCongestionSignals()
        probeUpAckedPerIncrement = Self.infinite
        pickProbeWait()
        cycleStamp = now
        ackPhase = .probeStopping
        startRound()
        state = .probeBWDown
        pacingGain = 90
        cwndGain = Self.defaultCwndGain
    }

    private mutating func startProbeBWCruise() {
        state = .probeBWCruise
        pacingGain = 100
        cwndGain = Self.defaultCwndGain
    }

    private mutating func startProbeBWRefill() {
        resetShortTermModel()
        bwProbeUpRounds = 0
        bwProbeUpAcked = 0
        previousProbePrecautionary = false
        ackPhase = .refilling
        startRound()
        state = .probeBWRefill
        pacingGain = 100
        cwndGain = Self.defaultCwndGain
    }

    private mutating func startProbeBWUp(_ rs: RateSample) {
        ackPhase = .probeStarting
        startRound()
        resetFullBandwidth()
        fullBandwidth = rs.deliveryRate
        state = .probeBWUp
        pacingGain = 125
        cwndGain = Self.probeUpCwndGain
        raiseInflightLongtermSlope()
    }

    /// `PickProbeWait()`: 0 or 1 rounds, and 2 to 3 s of wall clock, at random.
    private mutating func pickProbeWait() {
        roundsSinceProbeUp = Int(nextRandom() % 2)
        bwProbeWait = 2_000_000_000 + Int64(nextRandom() % 1_000_000_001)
    }

    private mutating func nextRandom() -> UInt64 {
        // xorshift64: a fixed, reproducible sequence from the seed.
        random ^= random << 13
        random ^= random >> 7
        random ^= random << 17
        return random
    }

    private mutating func updateProbeBWCyclePhase(_ rs: RateSample, now: Instant) {
        guard fullBandwidthReached else { return }
        if adaptLongTermModel(rs, now: now) { return }
        guard state.isProbeBW else { return }
        switch state {
        case .probeBWDown:
            if isTimeToProbeBandwidth(now: now) { return }
            if isTimeToCruise { startProbeBWCruise() }
        case .probeBWCruise:
            _ = isTimeToProbeBandwidth(now: now)
        case .probeBWRefill:
            if roundStart {  // after one round of REFILL, start UP
                isBwProbeSample = true
                startProbeBWUp(rs)
            }
        case .probeBWUp:
            if isTimeToGoDown(rs) {
                previousProbeTooHigh = false
                startProbeBWDown(now: now)
            }
        default:
            break
        }
    }

    private mutating func isTimeToProbeBandwidth(now: Instant) -> Bool {
        let waited = now.nanoseconds > cycleStamp.nanoseconds
            && Int64(clamping: now.nanoseconds - cycleStamp.nanoseconds) > bwProbeWait
        // IsRenoCoexistenceProbeTime(): TargetInflight() in packets, at most 63 rounds.
        let renoRounds = min(min(bdp, congestionWindow) / maxDatagramSize, 63)
        guard waited || roundsSinceProbeUp >= renoRounds else { return false }
        startProbeBWRefill()
        return true
    }

    private var isTimeToCruise: Bool {
        if inflight > inflightWithHeadroom { return false }
        return inflight <= inflight(gain: 100, bandwidth: maxBandwidth)
    }

    private mutating func isTimeToGoDown(_ rs: RateSample) -> Bool {
        // Precautionary bandwidth probing: deceleration (§5.3.3.6).
        if previousProbeTooHigh, inflight >= inflightLongterm {
            previousProbePrecautionary = true
            return true
        }
        if isCwndLimited, congestionWindow >= inflightLongterm {
            resetFullBandwidth()  // bandwidth is limited by inflight_longterm
            fullBandwidth = rs.deliveryRate
        } else if fullBandwidthNow {
            return true
        }
        return false
    }

    /// `InflightWithHeadroom()`: `inflight_longterm` less 15 % headroom for other flows.
    private var inflightWithHeadroom: Int {
        guard inflightLongterm != Self.infinite else { return Self.infinite }
        let headroom = max(maxDatagramSize, CongestionControl.mulDiv(inflightLongterm, Self.headroomPercent, 100))
        return max(inflightLongterm - headroom, minPipeCwnd)
    }

    private mutating func raiseInflightLongtermSlope() {
        let growth = 1 << bwProbeUpRounds
        bwProbeUpRounds = min(bwProbeUpRounds + 1, 30)
        probeUpAckedPerIncrement = max(congestionWindow / growth, maxDatagramSize)
    }

    private mutating func probeInflightLongtermUpward(_ rs: RateSample) {
        guard isCwndLimited, congestionWindow >= inflightLongterm else { return }
        bwProbeUpAcked = CongestionControl.add(bwProbeUpAcked, rs.newlyAcked)
        if bwProbeUpAcked >= probeUpAckedPerIncrement {
            let delta = bwProbeUpAcked / probeUpAckedPerIncrement
            bwProbeUpAcked -= delta * probeUpAckedPerIncrement
            inflightLongterm = CongestionControl.add(inflightLongterm, CongestionControl.mulDiv(delta, maxDatagramSize, 1))
        }
        if roundStart { raiseInflightLongtermSlope() }
    }

    /// `AdaptLongTermModel()`: tracks the ACK phase, advances the `max_bw` filter once per
    /// cycle and raises `inflight_longterm` while the loss rate is safe. Returns whether it
    /// decided a state transition.
    private mutating func adaptLongTermModel(_ rs: RateSample, now: Instant) -> Bool {
        if ackPhase == .probeStarting, roundStart { ackPhase = .probeFeedback }
        if ackPhase == .probeStopping, roundStart {
            isBwProbeSample = false
            ackPhase = .initial
            if state.isProbeBW, !rs.isAppLimited { advanceMaxBwFilter() }
            // Precautionary bandwidth probing: acceleration (§5.3.3.6).
            if state.isProbeBW, previousProbePrecautionary, !previousProbeTooHigh {
                startProbeBWRefill()
                return true
            }
        }
        if isInflightTooHigh(rs) { return false }
        // The loss rate is safe: adjust upper bounds upward.
        if inflightLongterm == Self.infinite { return false }
        if rs.txInFlight > inflightLongterm { inflightLongterm = rs.txInFlight }
        if state == .probeBWUp { probeInflightLongtermUpward(rs) }
        return false
    }

    /// `IsInflightTooHigh()` (§5.5.10.2): more than `BBR.LossThresh` of the data in flight at
    /// the send was lost (QUIC always has selective acknowledgments).
    private func isInflightTooHigh(_ rs: RateSample) -> Bool {
        rs.lost > CongestionControl.mulDiv(rs.txInFlight, Self.lossThresholdPercent, 100)
    }

    /// `TargetInflight()`: the BDP, unless congestion cut the window.
    private var targetInflight: Int { min(bdp, congestionWindow) }

    private mutating func handleInflightTooHigh(_ rs: RateSample, now: Instant) {
        previousProbeTooHigh = true
        isBwProbeSample = false  // react once per bandwidth probe
        if !rs.isAppLimited {
            inflightLongterm = max(rs.txInFlight, CongestionControl.mulDiv(targetInflight, Self.betaPercent, 100))
        }
        if state == .probeBWUp {
            undoState = .probeBWUp
            startProbeBWDown(now: now)
        }
    }

    // MARK: - min_rtt and ProbeRTT (§5.3.4, §5.5.7)

    private mutating func updateMinRTT(_ rs: RateSample, now: Instant) {
        probeRTTExpired = probeRTTMinStamp.map { Self.elapsed(from: $0, to: now) > Self.probeRTTInterval } ?? false
        if rs.rtt >= 0, rs.rtt < probeRTTMinDelay || probeRTTExpired {
            probeRTTMinDelay = rs.rtt
            probeRTTMinStamp = now
        }
        let minRTTExpired = minRTTStamp.map { Self.elapsed(from: $0, to: now) > Self.minRTTFilterLength } ?? false
        if probeRTTMinDelay < minRTT || minRTTExpired {
            minRTT = probeRTTMinDelay
            minRTTStamp = probeRTTMinStamp
        }
    }

    private mutating func checkProbeRTT(_ rs: RateSample, now: Instant) {
        if state != .probeRTT, probeRTTExpired, !idleRestart {
            // EnterProbeRTT()
            state = .probeRTT
            pacingGain = 100
            cwndGain = Self.probeRTTCwndGain
            saveCwnd()
            probeRTTDoneStamp = nil
            ackPhase = .probeStopping
            startRound()
        }
        if state == .probeRTT { handleProbeRTT(now: now) }
        if rs.delivered > 0 { idleRestart = false }
    }

    private mutating func handleProbeRTT(now: Instant) {
        sampler.markAppLimited(bytesInFlight: inflight)  // ignore low rate samples during ProbeRTT
        if probeRTTDoneStamp == nil, inflight <= probeRTTCwnd {
            // Hold for at least ProbeRTTDuration and one round.
            probeRTTDoneStamp = now + .nanoseconds(Self.probeRTTDuration)
            probeRTTRoundDone = false
            startRound()
        } else if probeRTTDoneStamp != nil {
            if roundStart { probeRTTRoundDone = true }
            if probeRTTRoundDone { checkProbeRTTDone(now: now) }
        }
    }

    private mutating func checkProbeRTTDone(now: Instant) {
        guard let done = probeRTTDoneStamp, now > done else { return }
        probeRTTMinStamp = now  // schedule the next ProbeRTT
        restoreCwnd()
        // ExitProbeRTT() (§5.3.4.4)
        resetShortTermModel()
        if fullBandwidthReached {
            startProbeBWDown(now: now)
            startProbeBWCruise()
        } else {
            enterStartup()
        }
    }

    private var probeRTTCwnd: Int { max(bdpMultiple(gain: Self.probeRTTCwndGain), minPipeCwnd) }

    // MARK: - Loss (§5.2.4, §5.5.10, §5.6.4.4)

    /// `HandleLostPacket(P)` (§5.5.10.2) for each lost in-flight packet, before
    /// ``onCongestionEvent(sentTime:now:lostBytes:)``.
    public mutating func onPacketLost(_ packet: AckedPacketInfo, now: Instant, bytesInFlight: Int) {
        let bytes = CongestionControl.clampedBytes(packet.bytes)
        sampler.onPacketLost(bytes: bytes)
        inflight = CongestionControl.clampedBytes(bytesInFlight)
        roundLost = CongestionControl.add(roundLost, bytes)
        if lastLostPacket.map({ $0 &+ 1 != packet.packetNumber }) ?? true { roundLossRanges += 1 }
        lastLostPacket = packet.packetNumber
        noteLoss()
        guard isBwProbeSample else { return }  // not sent while probing bandwidth
        var rs = latestSample
        rs.txInFlight = packet.delivery.txInFlight
        rs.lost = max(sampler.lost - packet.delivery.lost, 0)
        rs.isAppLimited = packet.delivery.isAppLimited
        guard isInflightTooHigh(rs) else { return }
        rs.txInFlight = inflightAtLoss(rs, size: bytes)
        handleInflightTooHigh(rs, now: now)
    }

    /// `InflightAtLoss(P)`: the in-flight volume at which the losses crossed `BBR.LossThresh`.
    private func inflightAtLoss(_ rs: RateSample, size: Int) -> Int {
        let inflightPrevious = max(rs.txInFlight - size, 0)
        let lostPrevious = max(rs.lost - size, 0)
        // lost_prefix = (LossThresh * inflight_prev - lost_prev) / (1 - LossThresh)
        let threshold = CongestionControl.mulDiv(inflightPrevious, Self.lossThresholdPercent, 100)
        let prefix = CongestionControl.mulDiv(max(threshold - lostPrevious, 0), 100, 100 - Self.lossThresholdPercent)
        return CongestionControl.add(inflightPrevious, prefix)
    }

    private mutating func noteLoss() {
        if !isLossInRound {  // the first loss of this round
            lossRoundDelivered = sampler.delivered
            saveStateUponLoss()
        }
        isLossInRound = true
    }

    /// `OnEnterFastRecovery()`, once per recovery period (RFC 9002 §7.3.2): BBR cuts no window
    /// here; ``onPacketLost(_:now:bytesInFlight:)`` adapted the model.
    ///
    /// The model's state was saved for an undo at the round's first loss (`noteLoss`), before
    /// ``onPacketLost(_:now:bytesInFlight:)`` may have reacted to it: saving it again here
    /// would save the reaction instead (§5.5.11.2).
    public mutating func onCongestionEvent(sentTime: Instant, now: Instant, lostBytes: Int) {
        if let start = recoveryStartTime, sentTime <= start { return }
        saveCwnd()
        recoveryStartTime = now
        recoveryRound = roundCount
    }

    /// ECN-CE is congestion (§3.7): noted as a loss in the round, without a lost packet.
    public mutating func onECNCongestion(sentTime: Instant, now: Instant) {
        noteLoss()
        onCongestionEvent(sentTime: sentTime, now: now, lostBytes: 0)
    }

    /// `OnEnterRTO()` (§5.6.4.4) for persistent congestion (RFC 9002 §7.6.2): the window falls
    /// to what is in flight plus one datagram, at least the minimum window, and grows again
    /// from there.
    public mutating func onPersistentCongestion() {
        saveCwnd()
        saveStateUponLoss()
        congestionWindow = max(CongestionControl.add(inflight, maxDatagramSize), minimumWindow)
        recoveryStartTime = nil
        recoveryRound = nil
    }

    /// `HandleSpuriousLossDetection()` (§5.5.11.2).
    public mutating func onSpuriousCongestion() {
        restoreCwnd()
        isLossInRound = false
        resetFullBandwidth()
        bandwidthShortterm = max(bandwidthShortterm, undoBandwidthShortterm)
        inflightShortterm = max(inflightShortterm, undoInflightShortterm)
        inflightLongterm = max(inflightLongterm, undoInflightLongterm)
        if undoState == .startup, state != .startup {
            fullBandwidthReached = false
            if state != .probeRTT { enterStartup() }
        } else if undoState == .probeBWUp, state != .probeBWUp {
            if state != .probeRTT { startProbeBWRefill() }
        }
        undoState = nil
        bandwidth = min(maxBandwidth, bandwidthShortterm)
    }

    private mutating func saveStateUponLoss() {
        saveCwnd()
        undoState = nil
        undoBandwidthShortterm = bandwidthShortterm
        undoInflightShortterm = inflightShortterm
        undoInflightLongterm = inflightLongterm
    }

    private mutating func saveCwnd() {
        if recoveryStartTime == nil, state != .probeRTT {
            priorCwnd = congestionWindow
        } else {
            priorCwnd = max(priorCwnd, congestionWindow)
        }
    }

    private mutating func restoreCwnd() { congestionWindow = max(congestionWindow, priorCwnd) }

    // MARK: - Control parameters (§5.6)

    /// `SetPacingRateWithGain()`: `gain * bw`, less the 1 % margin; in Startup only upward.
    private mutating func setPacingRate(gain: Int) {
        let rate = CongestionControl.mulDiv(
            CongestionControl.mulDiv(bandwidth, gain, 100), 100 - Self.pacingMarginPercent, 100)
        if fullBandwidthReached || rate > pacingRate { pacingRate = rate }
    }

    /// `BDPMultiple(gain)` of `BBR.bw` or another bandwidth; the initial window while
    /// `min_rtt` is unknown.
    private func bdpMultiple(gain: Int, bandwidth other: Int? = nil) -> Int {
        guard minRTT != Self.noRTT else { return initialCongestionWindow }
        let bdp = CongestionControl.mulDiv(other ?? bandwidth, Int(minRTT), 1_000_000_000)
        return CongestionControl.mulDiv(bdp, gain, 100)
    }

    private func quantizationBudget(_ cap: Int) -> Int {
        var cap = max(cap, sendQuantum, minPipeCwnd)  // the offload budget is C.send_quantum (§5.5.8.2)
        if state == .probeBWUp { cap = CongestionControl.add(cap, 2 * maxDatagramSize) }
        return cap
    }

    /// `Inflight(gain)`, or `Inflight(bw, gain)` of another bandwidth: the BDP multiple with
    /// the quantization budget.
    private func inflight(gain: Int, bandwidth other: Int? = nil) -> Int {
        quantizationBudget(bdpMultiple(gain: gain, bandwidth: other))
    }

    /// `SetCwnd()` (§5.6.4.6).
    private mutating func setCwnd(_ rs: RateSample) {
        let newlyAcked = rs.newlyAcked
        bdp = minRTT == Self.noRTT ? 0 : CongestionControl.mulDiv(bandwidth, Int(minRTT), 1_000_000_000)
        // UpdateMaxInflight()
        maxInflight = quantizationBudget(CongestionControl.add(bdpMultiple(gain: cwndGain), extraAcked))
        if fullBandwidthReached {
            congestionWindow = min(CongestionControl.add(congestionWindow, newlyAcked), maxInflight)
        } else if congestionWindow < maxInflight || sampler.delivered < initialCongestionWindow {
            congestionWindow = CongestionControl.add(congestionWindow, newlyAcked)
        }
        congestionWindow = max(congestionWindow, minPipeCwnd)
        if state == .probeRTT { congestionWindow = min(congestionWindow, probeRTTCwnd) }  // BoundCwndForProbeRTT()
        // BoundCwndForModel() (§5.6.4.7)
        var cap = Self.infinite
        if state.isProbeBW, state != .probeBWCruise {
            cap = inflightLongterm
        } else if state == .probeRTT || state == .probeBWCruise {
            cap = inflightWithHeadroom
        }
        cap = max(min(cap, inflightShortterm), minPipeCwnd)
        congestionWindow = min(congestionWindow, cap, CongestionControl.maximumWindow)
    }

    private static func elapsed(from start: Instant, to end: Instant) -> Int64 {
        end > start ? Int64(clamping: end.nanoseconds - start.nanoseconds) : 0
    }
}

/// A windowed maximum over a monotonic time (round counts here), tracking the best, second
/// and third best samples so that the maximum is exact without storing every sample
/// (Kathleen Nichols' algorithm, as the draft's `UpdateWindowedMaxFilter()` assumes).
struct WindowedMaxFilter: Hashable, Sendable {
    private struct Sample: Hashable, Sendable {
        var value = 0
        var time: UInt64 = 0
    }

    private var best = Sample()
    private var second = Sample()
    private var third = Sample()

    /// Adds `value` at `time` and returns the maximum of the samples of the last `window`
    /// time units (the current one included).
    mutating func update(_ value: Int, time: UInt64, window: UInt64) -> Int {
        let sample = Sample(value: value, time: time)
        let window = max(window, 1)
        if value >= best.value || time &- best.time >= window {
            best = sample
            second = sample
            third = sample
            return value
        }
        if value >= second.value {
            second = sample
            third = sample
        } else if value >= third.value {
            third = sample
        }
        // Expire the best and promote the others; refresh stale runners-up.
        if time &- best.time >= window {
            best = second
            second = third
            third = sample
            if time &- best.time >= window {
                best = second
                second = third
            }
        } else if second.time == best.time, time &- best.time > window / 4 {
            second = sample
            third = sample
        } else if third.time == second.time, time &- second.time > window / 2 {
            third = sample
        }
        return best.value
    }
}
