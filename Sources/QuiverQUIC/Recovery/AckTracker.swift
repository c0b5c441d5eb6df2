package import QuiverCore

/// The receiver side of acknowledgments for one packet number space (RFC 9000 §13.2): which
/// packet numbers arrived, whether one is a duplicate, when an ACK frame is due, and the ACK
/// frame itself.
///
/// Received packet numbers are kept as at most ``maxRanges`` ranges; when there are more, the
/// oldest are dropped, and so are ranges the peer has seen acknowledged (§13.2.4). Everything
/// below the lowest range still remembered counts as a duplicate (§13.2.3: "a minimum packet
/// number that increases as ranges are discarded"), so no packet is processed twice (§12.3).
///
/// Call order: ``isDuplicate(_:)`` before processing a decrypted packet, then
/// ``onPacketReceived(_:ackEliciting:ecn:now:)``; ``ackDeadline`` after every input; when
/// sending a packet of this space, ``makeAckFrame(now:ackDelayExponent:)`` and, if it went
/// out, ``onAckSent()``; ``onAckOfAck(largest:)`` when a packet carrying one of our ACK
/// frames is acknowledged.
package struct AckTracker: Sendable {
    /// Our default `max_ack_delay`: 25 ms (RFC 9000 §18.2).
    public static let defaultMaxAckDelay: Duration = .milliseconds(25)

    /// The packet number space this tracker acknowledges.
    public let space: PacketNumberSpace

    /// The most ranges remembered; the oldest are dropped beyond it.
    public let maxRanges: Int

    /// Our `max_ack_delay` transport parameter: the longest an ack-eliciting 0-RTT or 1-RTT
    /// packet waits for its acknowledgment (RFC 9000 §13.2.1, §18.2).
    public var maxAckDelay: Duration

    /// After how many ack-eliciting packets an ACK is sent at once (RFC 9000 §13.2.2: two).
    public var ackElicitingThreshold: Int

    /// The received packet numbers still tracked, ascending.
    private var ranges: [ClosedRange<UInt64>] = []

    /// Packet numbers below this count as duplicates: their ranges were dropped.
    public private(set) var minimumTracked: UInt64 = 0

    /// The largest packet number received (kept even when its range is dropped, RFC 9000
    /// §13.2.3, for packet number decoding, §17.1).
    public private(set) var largestReceived: UInt64?

    /// When the packet numbered ``largestReceived`` was received.
    public private(set) var largestReceivedTime: Instant?

    /// The largest ack-eliciting packet number received.
    public private(set) var largestAckElicitingReceived: UInt64?

    /// Ack-eliciting packets received since the last ACK frame was sent.
    public private(set) var ackElicitingSinceLastAck = 0

    /// Whether a packet (ack-eliciting or not) arrived since the last ACK frame was sent: an
    /// ACK frame has something new to say and should ride along other frames (§13.2).
    public private(set) var hasNewPackets = false

    /// When an ACK frame must be sent, or `nil` if no ack-eliciting packet awaits one. A
    /// deadline at a packet's receive time means "immediately" (RFC 9000 §13.2.1).
    public private(set) var ackDeadline: Instant?

    /// The ECN counts of packets received in this space (RFC 9000 §13.4.1); duplicates are
    /// not counted.
    public private(set) var ecnCounts = ECNCounts(ect0: 0, ect1: 0, ce: 0)

    /// Creates a tracker.
    ///
    /// - Parameters:
    ///   - space: The packet number space. Ack-eliciting Initial and Handshake packets are
    ///     always acknowledged immediately (RFC 9000 §13.2.1).
    ///   - maxAckDelay: Our `max_ack_delay`; 25 ms by default.
    ///   - ackElicitingThreshold: Ack-eliciting packets that trigger an immediate ACK; 2.
    ///   - maxRanges: The most ranges kept; 32.
    /// - Precondition: `ackElicitingThreshold >= 1`, `maxRanges >= 1`.
    public init(
        space: PacketNumberSpace, maxAckDelay: Duration = AckTracker.defaultMaxAckDelay,
        ackElicitingThreshold: Int = 2, maxRanges: Int = 32
    ) {
        precondition(ackElicitingThreshold >= 1, "the ACK threshold must be at least 1")
        precondition(maxRanges >= 1, "at least one range must be kept")
        self.space = space
        self.maxAckDelay = maxAckDelay
        self.ackElicitingThreshold = ackElicitingThreshold
        self.maxRanges = maxRanges
    }

    /// The tracked ranges of received packet numbers, largest first.
    public var receivedRanges: [ClosedRange<UInt64>] { ranges.reversed() }

    /// Whether the ACK frame is due at `now`.
    public func isAckDue(at now: Instant) -> Bool {
        ackDeadline.map { $0 <= now } ?? false
    }

    /// Whether `packetNumber` was already received, or is too old to tell (below
    /// ``minimumTracked``): such a packet must be discarded (RFC 9000 §12.3).
    public func isDuplicate(_ packetNumber: UInt64) -> Bool {
        if packetNumber < minimumTracked { return true }
        guard let last = ranges.last else { return false }
        if packetNumber > last.upperBound { return false }
        if packetNumber >= last.lowerBound { return true }
        let index = firstRange(endingAtOrAfter: packetNumber)
        return index < ranges.count && ranges[index].contains(packetNumber)
    }

    /// Records a received and successfully processed packet (RFC 9000 §13.2.1).
    ///
    /// An ack-eliciting packet makes an ACK due within ``maxAckDelay``, or immediately when it
    /// is an Initial or Handshake packet, when it is the ``ackElicitingThreshold``-th since the
    /// last ACK, when it arrives out of order (below the largest ack-eliciting packet number,
    /// or above it with packets missing in between), or when it carries ECN-CE.
    ///
    /// - Parameters:
    ///   - packetNumber: The decoded packet number.
    ///   - ackEliciting: Whether the packet contained an ack-eliciting frame.
    ///   - ecn: The ECN codepoint of its IP packet.
    ///   - now: When it was received.
    /// - Returns: `false` (and nothing changes) if the packet is a duplicate.
    @discardableResult
    public mutating func onPacketReceived(
        _ packetNumber: UInt64, ackEliciting: Bool, ecn: ECNCodepoint = .notECT, now: Instant
    ) -> Bool {
        guard !isDuplicate(packetNumber) else { return false }
        let rangeLowerBound = insert(packetNumber)
        hasNewPackets = true
        switch ecn {
        case .notECT: break
        case .ect0: ecnCounts.ect0 += 1
        case .ect1: ecnCounts.ect1 += 1
        case .ce: ecnCounts.ce += 1
        }
        if largestReceived.map({ packetNumber > $0 }) ?? true {
            largestReceived = packetNumber
            largestReceivedTime = now
        }
        guard ackEliciting else { return true }

        ackElicitingSinceLastAck += 1
        var immediate = space != .applicationData || ackElicitingSinceLastAck >= ackElicitingThreshold || ecn == .ce
        if let largest = largestAckElicitingReceived {
            if packetNumber < largest {
                immediate = true
            } else if rangeLowerBound > largest + 1 {
                // Packets between the largest ack-eliciting one and this one are missing.
                immediate = true
            }
        }
        largestAckElicitingReceived = max(largestAckElicitingReceived ?? packetNumber, packetNumber)
        let deadline = immediate ? now : now + maxAckDelay
        ackDeadline = min(ackDeadline ?? deadline, deadline)
        return true
    }

    /// The ACK frame to send now, or `nil` if no packet number is tracked (RFC 9000 §19.3).
    ///
    /// Ranges come largest first. The ACK Delay is the time since the largest packet was
    /// received, in microseconds divided by 2^`ackDelayExponent` (§13.2.5, §19.3). ECN counts are
    /// included once any is non-zero (§19.3.2).
    ///
    /// - Parameters:
    ///   - now: The send time.
    ///   - ackDelayExponent: Our `ack_delay_exponent` transport parameter (§18.2); 3 by
    ///     default.
    public func makeAckFrame(now: Instant, ackDelayExponent: UInt64 = 3) -> AckFrame? {
        guard !ranges.isEmpty else { return nil }
        var delay: UInt64 = 0
        if let received = largestReceivedTime, now > received {
            let microseconds = (now.nanoseconds - received.nanoseconds) / 1000
            delay = microseconds >> min(ackDelayExponent, 63)
        }
        let anyECN = ecnCounts.ect0 != 0 || ecnCounts.ect1 != 0 || ecnCounts.ce != 0
        return AckFrame(ranges: AckRanges(ranges.reversed()), ackDelay: delay, ecn: anyECN ? ecnCounts : nil)
    }

    /// Records that an ACK frame was sent: the counters and the deadline restart.
    public mutating func onAckSent() {
        ackElicitingSinceLastAck = 0
        ackDeadline = nil
        hasNewPackets = false
    }

    /// Forgets the packet numbers up to `largest`, the Largest Acknowledged of one of our ACK
    /// frames whose packet the peer acknowledged (RFC 9000 §13.2.4). They count as duplicates
    /// from now on.
    public mutating func onAckOfAck(largest: UInt64) {
        guard let largestReceived else { return }
        let limit = min(largest, largestReceived)
        guard limit >= minimumTracked else { return }
        minimumTracked = limit + 1
        var dropped = 0
        while dropped < ranges.count && ranges[dropped].upperBound <= limit { dropped += 1 }
        ranges.removeFirst(dropped)
        if let first = ranges.first, first.lowerBound <= limit {
            ranges[0] = (limit + 1)...first.upperBound
        }
    }

    // MARK: - Private

    /// The index of the first range whose upper bound is at least `packetNumber - 1`, i.e. that
    /// contains or touches `packetNumber` from below or lies above it.
    private func firstRange(endingAtOrAfter packetNumber: UInt64) -> Int {
        var low = 0
        var high = ranges.count
        while low < high {
            let middle = low + (high - low) / 2
            if ranges[middle].upperBound + 1 < packetNumber { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// Adds a packet number known not to be tracked; returns the lower bound of the range that
    /// now holds it. Drops the oldest ranges beyond ``maxRanges``.
    private mutating func insert(_ packetNumber: UInt64) -> UInt64 {
        var lowerBound = packetNumber
        let index = firstRange(endingAtOrAfter: packetNumber)
        if index == ranges.count {
            ranges.append(packetNumber...packetNumber)
        } else {
            let range = ranges[index]
            if range.upperBound + 1 == packetNumber {
                // Extends `range` upwards; may join the next one.
                if index + 1 < ranges.count && ranges[index + 1].lowerBound == packetNumber + 1 {
                    ranges[index] = range.lowerBound...ranges[index + 1].upperBound
                    ranges.remove(at: index + 1)
                } else {
                    ranges[index] = range.lowerBound...packetNumber
                }
                lowerBound = range.lowerBound
            } else if packetNumber + 1 == range.lowerBound {
                ranges[index] = packetNumber...range.upperBound
            } else {
                ranges.insertInPlace(packetNumber...packetNumber, at: index)
            }
        }
        if ranges.count > maxRanges {
            let excess = ranges.count - maxRanges
            minimumTracked = max(minimumTracked, ranges[excess - 1].upperBound + 1)
            ranges.removeFirst(excess)
        }
        return lowerBound
    }
}
