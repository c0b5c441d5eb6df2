package import QuiverCore

/// The sent packets of one packet number space awaiting acknowledgment (RFC 9002 Appendix
/// A.1), with the per-space counters loss detection needs.
///
/// Packet numbers only increase (RFC 9000 §12.3), so the log is a window of slots indexed by
/// `packetNumber − firstPacketNumber`: appending, finding a packet and removing one are O(1),
/// and an ACK range costs only the slots it covers inside the window. The window starts at the
/// oldest outstanding packet, and the slots of acknowledged, lost and skipped packets in front
/// of it are dropped as it advances. Packet numbers the sender skipped (RFC 9000 §21.4) are
/// remembered so that an acknowledgment of one can be refused.
///
/// Packets declared lost leave the window but are remembered for a while (RFC 9002 Appendix
/// A.1, RFC 9000 §13.3) so that a late acknowledgment of one can be reported as spurious.
///
/// ``LossDetection`` drives three of these; the type is public so that a connection can
/// inspect what is outstanding.
package struct SentPacketLog: Sendable {
    enum Slot: Sendable {
        case outstanding(SentPacket)
        case acknowledged
        case lost
        case skipped
    }

    struct LostRecord: Sendable {
        var packetNumber: UInt64
        var timeSent: Instant
        var size: Int
        var declaredLostAt: Instant
        var ackedLate: Bool
    }

    /// Ranges of skipped packet numbers remembered for ACK validation.
    static let maxSkippedRanges = 64
    /// The most lost packets remembered for spurious-loss detection.
    static let maxLostRecords = 8192

    var slots: [Slot] = []
    /// Index in `slots` of the window's first slot.
    var head = 0
    /// Packet number of `slots[head]` (or of the next packet when the window is empty).
    var headPacketNumber: UInt64 = 0
    var firstSent: UInt64?
    var skippedRanges: [ClosedRange<UInt64>] = []
    var lostRecords: [LostRecord] = []
    var lostHead = 0

    /// The time at which the next packet can be declared lost by the time threshold,
    /// `loss_time` (RFC 9002 Appendix A.3).
    var lossTime: Instant?

    /// The largest packet number sent in this space, or `nil` if none was.
    public private(set) var largestSent: UInt64?

    /// The largest packet number acknowledged in this space, `largest_acked_packet`
    /// (RFC 9002 Appendix A.3), or `nil` before the first ACK.
    public internal(set) var largestAcked: UInt64?

    /// The number of packets neither acknowledged nor declared lost.
    public private(set) var count = 0

    /// The bytes of the outstanding packets that are in flight (RFC 9002 Appendix B.2).
    public private(set) var bytesInFlight = 0

    /// The number of outstanding ack-eliciting packets (all of them in flight).
    public private(set) var ackElicitingInFlight = 0

    /// When the most recent ack-eliciting packet was sent,
    /// `time_of_last_ack_eliciting_packet` (RFC 9002 Appendix A.3).
    public private(set) var timeOfLastAckElicitingPacket: Instant?

    /// Creates an empty log.
    public init() {}

    /// Whether no packet is outstanding.
    public var isEmpty: Bool { count == 0 }

    /// The outstanding packets, oldest first (allocates; meant for inspection and tests).
    public var outstandingPackets: [SentPacket] {
        var result: [SentPacket] = []
        result.reserveCapacity(count)
        for index in head..<slots.count {
            if case .outstanding(let packet) = slots[index] { result.append(packet) }
        }
        return result
    }

    /// The outstanding packet numbered `packetNumber`, if any.
    public func packet(number packetNumber: UInt64) -> SentPacket? {
        guard let index = index(of: packetNumber), case .outstanding(let packet) = slots[index] else { return nil }
        return packet
    }

    /// Records a sent packet (RFC 9002 Appendix A.5).
    ///
    /// Packet numbers between the previous packet and this one count as skipped: an ACK that
    /// covers one is refused by ``LossDetection``.
    /// Send times must not decrease from one packet to the next: loss detection relies on it
    /// (``LossDetection`` guarantees it).
    ///
    /// - Precondition: `packet.packetNumber` exceeds every packet number appended before, by
    ///   less than 2^20 while packets are outstanding.
    public mutating func append(_ packet: consuming SentPacket) {
        let number = packet.packetNumber
        if let largestSent {
            precondition(number > largestSent, "packet numbers must increase (RFC 9000 §12.3)")
            if number > largestSent + 1 { recordSkipped((largestSent + 1)...(number - 1)) }
        } else {
            firstSent = number
        }
        if head == slots.count {
            slots.removeAll(keepingCapacity: true)
            head = 0
            headPacketNumber = number
        } else {
            let next = headPacketNumber + UInt64(slots.count - head)
            precondition(number - next < 1 << 20, "packet number gap too large")
            for _ in next..<number { slots.append(.skipped) }
        }
        largestSent = number
        count += 1
        if packet.inFlight { bytesInFlight += packet.size }
        if packet.ackEliciting {
            ackElicitingInFlight += 1
            timeOfLastAckElicitingPacket = packet.timeSent
        }
        slots.append(.outstanding(packet))  // its last use: moved, not copied
    }

    /// Removes every outstanding packet and forgets lost ones, as when the space's keys are
    /// discarded (RFC 9002 §6.4, Appendix A.11).
    ///
    /// The largest packet numbers sent and acknowledged are kept: numbering continues.
    ///
    /// - Returns: The packets that were outstanding, oldest first.
    @discardableResult
    public mutating func removeAll() -> [SentPacket] {
        let removed = outstandingPackets
        headPacketNumber += UInt64(slots.count - head)
        slots.removeAll(keepingCapacity: false)
        head = 0
        lostRecords.removeAll(keepingCapacity: false)
        lostHead = 0
        count = 0
        bytesInFlight = 0
        ackElicitingInFlight = 0
        timeOfLastAckElicitingPacket = nil
        lossTime = nil
        return removed
    }

    // MARK: - Loss detection primitives

    /// A packet number in `ranges` that was never sent in this space, if any (RFC 9000 §13.1):
    /// above the largest sent, below the first sent, or skipped.
    func firstUnsentPacketNumber(in ranges: AckRanges) -> UInt64? {
        guard let first = ranges.first, let last = ranges.last else { return nil }
        guard let largestSent, let firstSent else { return first.upperBound }
        if first.upperBound > largestSent { return first.upperBound }
        if last.lowerBound < firstSent { return last.lowerBound }
        // Both lists are sorted: walk the ACK ranges downwards with the skipped ranges.
        var skippedIndex = skippedRanges.count - 1
        for range in ranges {
            while skippedIndex >= 0 && skippedRanges[skippedIndex].lowerBound > range.upperBound {
                skippedIndex -= 1
            }
            guard skippedIndex >= 0 else { return nil }
            let skipped = skippedRanges[skippedIndex]
            if skipped.upperBound >= range.lowerBound { return max(skipped.lowerBound, range.lowerBound) }
        }
        return nil
    }

    /// Marks the packets in `ranges` acknowledged (RFC 9002 Appendix A.7,
    /// `DetectAndRemoveAckedPackets`) and raises ``largestAcked``.
    ///
    /// - Parameters:
    ///   - ranges: Descending, non-overlapping ranges, already checked against unsent numbers.
    ///   - newlyAcked: Receives the newly acknowledged packets in ascending order.
    ///   - ackedLate: Receives packets that had been declared lost, in ascending order.
    mutating func acknowledge(
        _ ranges: AckRanges, newlyAcked: inout [SentPacket], ackedLate: inout [AckedPacketInfo]
    ) {
        guard let largest = ranges.first?.upperBound else { return }
        largestAcked = max(largestAcked ?? largest, largest)
        // One allocation for the list rather than one per doubling: at most the packets the
        // ranges cover within the window.
        let windowCount = UInt64(slots.count - head)
        var covered: UInt64 = 0
        for range in ranges where covered < windowCount {
            covered += min(range.upperBound - range.lowerBound, windowCount) + 1  // no overflow on any range
        }
        newlyAcked.reserveCapacity(newlyAcked.count + Int(min(covered, windowCount)))
        var foundLate = false
        for range in ranges.reversed() {
            let windowCount = slots.count - head
            if windowCount > 0 {
                let windowLast = headPacketNumber + UInt64(windowCount - 1)
                let low = max(range.lowerBound, headPacketNumber)
                let high = min(range.upperBound, windowLast)
                if low <= high {
                    let end = head + Int(high - headPacketNumber)
                    var index = head + Int(low - headPacketNumber)
                    while index <= end {
                        // The record is moved out of its slot, not copied (a copy retains its
                        // frame list and the overwritten slot releases it again).
                        var slot = Slot.acknowledged
                        swap(&slot, &slots[index])
                        switch consume slot {
                        case .outstanding(let packet):
                            removeFromCounters(packet)
                            newlyAcked.append(packet)
                        case .lost, .acknowledged:
                            break
                        case .skipped:
                            slots[index] = .skipped
                        }
                        index += 1
                    }
                }
            }
            if lostHead < lostRecords.count {
                var index = firstLostRecord(atLeast: range.lowerBound)
                while index < lostRecords.count && lostRecords[index].packetNumber <= range.upperBound {
                    if !lostRecords[index].ackedLate {
                        lostRecords[index].ackedLate = true
                        let record = lostRecords[index]
                        ackedLate.append(
                            AckedPacketInfo(packetNumber: record.packetNumber, sentTime: record.timeSent, bytes: record.size))
                        foundLate = true
                    }
                    index += 1
                }
            }
        }
        if foundLate {
            lostRecords = lostRecords[lostHead...].filter { !$0.ackedLate }
            lostHead = 0
        }
        advanceHead()
    }

    /// Declares packets lost by the packet or time threshold and sets ``lossTime`` for the
    /// next candidate (RFC 9002 §6.1, Appendix A.10 `DetectAndRemoveLostPackets`), and checks
    /// the newly lost packets for persistent congestion (RFC 9002 §7.6.2).
    ///
    /// Send times never decrease with the packet number, so the first packet that is not lost
    /// ends the scan: no later one can be lost, and its deadline is the earliest.
    ///
    /// - Parameters:
    ///   - now: The current time.
    ///   - lossDelay: `max(kTimeThreshold * max(smoothed_rtt, latest_rtt), kGranularity)`.
    ///   - packetThreshold: `kPacketThreshold`.
    ///   - persistentCongestion: The persistent congestion duration and the time of the first
    ///     RTT sample, or `nil` before any sample.
    ///   - lost: Receives the newly lost packets in ascending order.
    /// - Returns: Whether two newly lost ack-eliciting packets, both sent after the first RTT
    ///   sample and with no acknowledged packet between them, were sent more than the
    ///   persistent congestion duration apart.
    mutating func detectLostPackets(
        now: Instant, lossDelay: Duration, packetThreshold: UInt64,
        persistentCongestion: (duration: Duration, firstSampleTime: Instant)?,
        into lost: inout [SentPacket]
    ) -> Bool {
        lossTime = nil
        guard let largestAcked else { return false }
        var established = false
        var periodStart: Instant?
        var index = head
        scan: while index < slots.count {
            let number = headPacketNumber + UInt64(index - head)
            if number > largestAcked { break }
            switch slots[index] {
            case .outstanding(let packet):
                let deadline = packet.timeSent + lossDelay
                guard deadline <= now || largestAcked - number >= packetThreshold else {
                    lossTime = deadline
                    break scan
                }
                slots[index] = .lost
                removeFromCounters(packet)
                recordLost(packet, now: now)
                lost.append(packet)
                if let persistentCongestion, packet.ackEliciting, packet.timeSent > persistentCongestion.firstSampleTime {
                    if let start = periodStart {
                        if packet.timeSent - start > persistentCongestion.duration { established = true }
                    } else {
                        periodStart = packet.timeSent
                    }
                }
            case .acknowledged:
                periodStart = nil
            case .lost, .skipped:
                break
            }
            index += 1
        }
        advanceHead()
        return established
    }

    /// Forgets lost packets declared lost at least `retention` before `now`.
    mutating func forgetLostPackets(now: Instant, retention: Duration) {
        while lostHead < lostRecords.count && lostRecords[lostHead].declaredLostAt + retention <= now {
            lostHead += 1
        }
        compactLostRecords()
    }

    // MARK: - Private

    private func index(of packetNumber: UInt64) -> Int? {
        guard packetNumber >= headPacketNumber else { return nil }
        let offset = packetNumber - headPacketNumber
        guard offset < UInt64(slots.count - head) else { return nil }
        return head + Int(offset)
    }

    private mutating func removeFromCounters(_ packet: SentPacket) {
        count -= 1
        if packet.inFlight { bytesInFlight -= packet.size }
        if packet.ackEliciting { ackElicitingInFlight -= 1 }
    }

    private mutating func recordSkipped(_ range: ClosedRange<UInt64>) {
        skippedRanges.append(range)
        if skippedRanges.count > Self.maxSkippedRanges { skippedRanges.removeFirst() }
    }

    private mutating func recordLost(_ packet: SentPacket, now: Instant) {
        lostRecords.append(
            LostRecord(
                packetNumber: packet.packetNumber, timeSent: packet.timeSent, size: packet.size,
                declaredLostAt: now, ackedLate: false))
        if lostRecords.count - lostHead > Self.maxLostRecords { lostHead += 1 }
    }

    /// The index of the first remembered lost packet numbered at least `packetNumber`.
    private func firstLostRecord(atLeast packetNumber: UInt64) -> Int {
        var low = lostHead
        var high = lostRecords.count
        while low < high {
            let middle = low + (high - low) / 2
            if lostRecords[middle].packetNumber < packetNumber { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// Drops the slots in front of the oldest outstanding packet.
    private mutating func advanceHead() {
        while head < slots.count {
            if case .outstanding = slots[head] { break }
            head += 1
            headPacketNumber += 1
        }
        if head == slots.count {
            // Nothing outstanding. A small window's memory goes, so that a connection idle
            // after its handshake or a short exchange holds none; a large one (a transfer's,
            // whose window empties whenever the application falls behind) is kept, so that
            // the next flight does not grow it again from nothing.
            slots.removeAll(keepingCapacity: slots.capacity > 16)
            head = 0
        } else if head >= 64 && head * 2 >= slots.count {
            slots.removeFirst(head)
            head = 0
        }
    }

    private mutating func compactLostRecords() {
        if lostHead == lostRecords.count {
            lostRecords.removeAll(keepingCapacity: true)
            lostHead = 0
        } else if lostHead >= 64 && lostHead * 2 >= lostRecords.count {
            lostRecords.removeFirst(lostHead)
            lostHead = 0
        }
    }
}
