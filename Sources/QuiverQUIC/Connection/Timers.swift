public import QuiverCore

extension QUICConnection {
    /// The connection's timers, each named, in the order ``handleTimeout(at:)`` serves them
    /// (a timer table, as quinn-proto's): a timer's deadline is read from the state it guards
    /// (``deadline(of:)``), so nothing is armed or cancelled apart from that state.
    enum Timer: CaseIterable {
        /// No packet from the peer for the idle timeout (RFC 9000 §10.1): the connection ends.
        case idle
        /// The previous key phase's read key is dropped (RFC 9001 §6.1).
        case keyDiscard
        /// A server drops the 0-RTT read key (RFC 9001 §4.9.3).
        case earlyDataDiscard
        /// Pacing lets the next datagram out (RFC 9002 §7.7).
        case pacing
        /// A keep-alive PING is due (RFC 9000 §10.1.2).
        case keepAlive
        /// The path to the client from our preferred address did not answer (§9.6.2).
        case probeValidation
        /// The current path did not answer its PATH_CHALLENGE (RFC 9000 §8.2.4).
        case pathValidation
        /// Loss detection's time threshold or a probe timeout (RFC 9002 §6).
        case lossDetection
        /// An acknowledgment is due (RFC 9000 §13.2.1); served by ``transmit(at:into:)``.
        case ack
    }

    func advanceClock(_ time: Instant) {
        if time > now { now = time }
    }

    /// When `timer` is due; `nil` while it is not armed.
    func deadline(of timer: Timer) -> Instant? {
        switch timer {
        case .idle: idleDeadline
        case .keyDiscard: appKeys?.previousReadExpiry
        case .earlyDataDiscard: early.readExpiry
        case .pacing: pacingDeadline
        case .keepAlive: keepAliveDeadline
        case .probeValidation: paths.probe?.challengeDeadline
        case .pathValidation: paths.current.challenge != nil ? paths.current.challengeDeadline : nil
        case .lossDetection: recovery.lossDetectionDeadline()  // in place: a plain read copies the state
        case .ack: ackDeadline
        }
    }

    /// When ``handleTimeout(at:)`` is next due; `nil` once the connection is closed.
    public var nextDeadline: Instant? {
        switch state {
        case .closed:
            return nil
        case .closing, .draining:
            return closing.deadline
        case .handshaking, .established:
            break
        }
        var earliest: Instant?
        for timer in Timer.allCases {
            if let time = deadline(of: timer), earliest.map({ time < $0 }) ?? true { earliest = time }
        }
        return earliest
    }

    /// The earliest ACK deadline where an ACK can be sent now: 0-RTT packets are acknowledged
    /// in 1-RTT packets, which a server sends once it has both 1-RTT keys. Nothing at all can
    /// be sent with less than 64 bytes of amplification budget: the next datagram from the
    /// peer, not a timer, unblocks us.
    private var ackDeadline: Instant? {
        guard paths.current.amplificationBudget >= 64 else { return nil }
        var earliest: Instant?
        func consider(_ time: Instant?) {
            if let time, earliest.map({ time < $0 }) ?? true { earliest = time }
        }
        // By index: iterating `spaces` would copy each space's state.
        for index in spaces.indices where spaces[index].canSend { consider(spaces[index].ack.ackDeadline) }
        if appKeys.isInstalled() { consider(spaces[PacketNumberSpace.applicationData.rawValue].ack.ackDeadline) }
        return earliest
    }

    /// When a keep-alive PING is due (established connections only).
    var keepAliveDeadline: Instant? {
        guard let interval = configuration.keepAliveInterval, state == .established, interval > .zero else { return nil }
        return lastAckElicitingSent + interval
    }

    /// When the connection idles out: the negotiated idle timeout after the last packet
    /// received (or the first ack-eliciting one sent since), but at least three current PTOs
    /// (RFC 9000 §10.1). The PTO here is the period without backoff: with the backoff, every
    /// unanswered probe would move the deadline further out than it had waited, and a peer
    /// that vanished would never be declared gone (quinn and ngtcp2 count it the same way).
    var idleDeadline: Instant? {
        guard let idleTimeout else {
            // Before the peer's parameters, our own timeout bounds the handshake.
            return configuration.idleTimeout > .zero ? idleDeadlineBase + configuration.idleTimeout : nil
        }
        let probePeriod = recovery.rtt.probeTimeout(maxAckDelay: recovery.maxAckDelay)
        return idleDeadlineBase + max(idleTimeout, probePeriod.scaled(by: 3))
    }

    /// Handles the timers due at `now` (``Timer``, in order): loss detection and PTO, idle
    /// timeout, the end of the closing or draining period, key discards, path validation.
    /// ACK deadlines are served by ``transmit(at:)``.
    public func handleTimeout(at now: Instant) {
        advanceClock(now)
        defer { qlog?.checkpoint() }
        switch state {
        case .closed:
            return
        case .closing, .draining:
            if let deadline = closing.deadline, deadline <= now { state = .closed }
            return
        case .handshaking, .established:
            break
        }
        for timer in Timer.allCases where timer != .ack {
            guard let deadline = deadline(of: timer), deadline <= now else { continue }
            fire(timer)
            if state == .closed { return }
        }
    }

    /// What a due timer does.
    private func fire(_ timer: Timer) {
        switch timer {
        case .idle:
            let info = ConnectionCloseInfo(origin: .idleTimeout, frame: .transport(.noError, reason: "idle timeout"))
            closeInfo = info
            state = .closed
            emit(.closed(info))
        case .keyDiscard:
            appKeys?.previousRead = nil
            appKeys?.previousReadExpiry = nil
        case .earlyDataDiscard:
            early.read = nil
            early.readExpiry = nil
        case .pacing:
            pacingDeadline = nil
        case .keepAlive:
            // A PING (RFC 9000 §10.1.2); the probe machinery sends it even when the window is full.
            let index = PacketNumberSpace.applicationData.rawValue
            spaces[index].probesDue = max(spaces[index].probesDue, 1)
            lastAckElicitingSent = now
        case .probeValidation:
            paths.probe = nil  // the preferred address's path did not answer: stay where we are
        case .pathValidation:
            // The new path did not answer (RFC 9000 §9.3.2, a client's move to the preferred
            // address §9.6.1): return to the last validated one, or, without one, end silently
            // (nothing may be sent to an unvalidated address).
            if let previous = paths.previous {
                paths.current = previous
                paths.previous = nil
                restartECNValidation()
                datagramSizeChanged()
            } else {
                let info = ConnectionCloseInfo(origin: .local, frame: .transport(.noViablePath, reason: "path validation failed"))
                closeInfo = info
                state = .closed
                emit(.closed(info))
            }
        case .lossDetection:
            switch recovery.onLossDetectionTimeout(now: now) {
            case .none:
                break
            case .lost(let loss):
                onPacketsLost(loss)
            case .probe(let space, let count, let antiDeadlock):
                statistics.ptoCount += 1
                onProbeTimeout(space: space, count: count, antiDeadlock: antiDeadlock)
            }
        case .ack:
            break  // not fired: transmit(at:) sends the ACK
        }
    }
}
