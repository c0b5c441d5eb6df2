import QuiverCore

/// Explicit Congestion Notification (RFC 9000 §13.4, RFC 9002 §7.1): the connection's side of
/// ``ECNValidation``. Datagrams on the current path are marked as validation allows (one
/// codepoint per datagram and per train), marked packets are counted as they are sent,
/// acknowledged and lost, the peer's counts are validated, and a validated ECN-CE increase
/// is a congestion event. The receive side only counts: ``AckTracker`` reports the marks of
/// each packet number space in its ACK frames, ``Statistics/ecn`` the datagrams'.
extension QUICConnection {
    /// The codepoint for the next datagram on the current path.
    func ecnCodepoint() -> ECNCodepoint {
        let codepoint = ecn.codepoint(at: now)
        noteECNState()
        return codepoint
    }

    /// A packet of `space` went out in a marked datagram.
    func onMarkedPacketSent(space: PacketNumberSpace) {
        statistics.ecn.packetsSentECT0 += 1
        ecn.onPacketSent(space: space, now: now, testingPeriod: recovery.probeTimeout(for: .applicationData) * 3)
        noteECNState()
    }

    /// Validates an ACK frame's ECN counts (or their absence) and, when they hold, reacts to an
    /// ECN-CE increase as to congestion (RFC 9002 §7.1, Appendix B.7).
    func processECN(_ counts: ECNCounts?, space: PacketNumberSpace, newlyAckedMarked: Int, largestAckedIncreased: Bool,
                    largestNewlyAckedSentTime: Instant?) {
        guard counts != nil || newlyAckedMarked > 0 else { return }
        let ceIncrease = ecn.onAckReceived(space: space, counts: counts, newlyAckedMarked: newlyAckedMarked,
                                           largestAckedIncreased: largestAckedIncreased)
        noteECNState()
        if ceIncrease > 0, let sent = largestNewlyAckedSentTime {
            statistics.ecn.congestionEvents += 1
            congestion.onECNCongestion(sentTime: sent, now: now)
        }
    }

    /// Counts the marked packets among lost ones (path MTU probes aside: their loss is their
    /// size's, not their mark's).
    func onMarkedPacketsLost(_ loss: LossEvent) {
        var marked = 0
        for index in loss.packets.indices where loss.packets[index].ecn != .notECT && !loss.packets[index].isPMTUProbe {
            marked += 1
        }
        guard marked > 0 else { return }
        ecn.onMarkedPacketsLost(marked)
        noteECNState()
    }

    /// Takes in the validation's state: into the statistics, and into qlog's
    /// `ecn_state_updated` when it changed.
    private func noteECNState() {
        let old = statistics.ecn.state
        guard ecn.state != old else { return }
        statistics.ecn.state = ecn.state
        qlog?.ecnStateUpdated(old: old, new: ecn.state)
    }

    /// A new path (or the return to an old one) is validated afresh (RFC 9000 §13.4.2).
    func restartECNValidation() {
        ecn.restart()
        noteECNState()
    }
}
