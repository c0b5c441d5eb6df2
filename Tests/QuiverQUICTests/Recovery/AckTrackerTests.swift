import QuiverCore
import Testing

@_spi(Wire) @testable import QuiverQUIC

extension RecoveryTests {
    @Suite("ACK generation (RFC 9000 §13.2)")
    struct AckTrackerTests {
        @Test("Ranges are kept merged and reported largest first; duplicates are detected")
        func rangesAndDuplicates() throws {
            var tracker = AckTracker(space: .applicationData)
            for number: UInt64 in [0, 1, 2, 5, 6, 9] {
                let accepted = tracker.onPacketReceived(number, ackEliciting: false, now: at(0))
                #expect(accepted)
            }
            #expect(tracker.receivedRanges == [9...9, 5...6, 0...2])
            #expect(tracker.isDuplicate(1))
            #expect(tracker.isDuplicate(6))
            #expect(!tracker.isDuplicate(3))
            #expect(!tracker.isDuplicate(7))
            #expect(!tracker.isDuplicate(10))
            let duplicate = tracker.onPacketReceived(5, ackEliciting: true, ecn: .ce, now: at(1))
            #expect(!duplicate)
            #expect(tracker.ecnCounts.ce == 0)  // duplicates are not counted (RFC 9000 §13.4.1)
            #expect(tracker.ackDeadline == nil)

            tracker.onPacketReceived(3, ackEliciting: false, now: at(2))
            tracker.onPacketReceived(4, ackEliciting: false, now: at(2))
            tracker.onPacketReceived(8, ackEliciting: false, now: at(2))
            #expect(tracker.receivedRanges == [8...9, 0...6])
            tracker.onPacketReceived(7, ackEliciting: false, now: at(2))
            #expect(tracker.receivedRanges == [0...9])
            #expect(tracker.largestReceived == 9)
            #expect(tracker.largestReceivedTime == at(0))
            let frame = try #require(tracker.makeAckFrame(now: at(2)))
            #expect(frame.ranges == [0...9])
            #expect(frame.ecn == nil)
        }

        @Test("At most maxRanges ranges; older packet numbers then count as duplicates")
        func boundedRanges() {
            var tracker = AckTracker(space: .applicationData, maxRanges: 4)
            for number: UInt64 in [0, 2, 4, 6, 8, 10] {
                tracker.onPacketReceived(number, ackEliciting: false, now: at(0))
            }
            #expect(tracker.receivedRanges == [10...10, 8...8, 6...6, 4...4])
            #expect(tracker.minimumTracked == 3)
            #expect(tracker.isDuplicate(0))
            #expect(tracker.isDuplicate(1))  // never received, but too old to tell
            #expect(!tracker.isDuplicate(3))
            #expect(!tracker.isDuplicate(5))
            // An old packet filling the oldest gap is accepted, then its range is the oldest.
            let accepted = tracker.onPacketReceived(3, ackEliciting: false, now: at(1))
            #expect(accepted)
            #expect(tracker.receivedRanges == [10...10, 8...8, 6...6, 3...4])
        }

        @Test("Initial and Handshake ack-eliciting packets are acknowledged immediately (§13.2.1)")
        func handshakeSpacesImmediate() {
            for space in [PacketNumberSpace.initial, .handshake] {
                var tracker = AckTracker(space: space)
                tracker.onPacketReceived(0, ackEliciting: false, now: at(0))
                #expect(tracker.ackDeadline == nil)
                tracker.onPacketReceived(1, ackEliciting: true, now: at(5))
                #expect(tracker.ackDeadline == at(5))
                #expect(tracker.isAckDue(at: at(5)))
            }
        }

        @Test("Delayed ACK within max_ack_delay; every second ack-eliciting packet is acknowledged at once (§13.2.1, §13.2.2)")
        func delayedAck() throws {
            var tracker = AckTracker(space: .applicationData, maxAckDelay: .milliseconds(25))
            tracker.onPacketReceived(0, ackEliciting: true, now: at(0))
            #expect(tracker.ackDeadline == at(25))
            #expect(!tracker.isAckDue(at: at(24)))
            #expect(tracker.isAckDue(at: at(25)))
            tracker.onPacketReceived(1, ackEliciting: true, now: at(3))
            #expect(tracker.ackDeadline == at(3))
            #expect(tracker.ackElicitingSinceLastAck == 2)

            // ACK Delay: time since the largest was received, in µs >> exponent (§13.2.5).
            let frame = try #require(tracker.makeAckFrame(now: at(13), ackDelayExponent: 3))
            #expect(frame.ranges == [0...1])
            #expect(frame.ackDelay == 10_000 >> 3)
            tracker.onAckSent()
            #expect(tracker.ackDeadline == nil)
            #expect(tracker.ackElicitingSinceLastAck == 0)
            #expect(!tracker.hasNewPackets)

            // A non-ack-eliciting packet never arms the deadline, but is new to report.
            tracker.onPacketReceived(2, ackEliciting: false, now: at(20))
            #expect(tracker.ackDeadline == nil)
            #expect(tracker.hasNewPackets)

            var lenient = AckTracker(space: .applicationData, ackElicitingThreshold: 3)
            lenient.onPacketReceived(0, ackEliciting: true, now: at(0))
            lenient.onPacketReceived(1, ackEliciting: true, now: at(1))
            #expect(lenient.ackDeadline == at(25))
            lenient.onPacketReceived(2, ackEliciting: true, now: at(2))
            #expect(lenient.ackDeadline == at(2))
        }

        @Test("Out-of-order arrival and gaps trigger an immediate ACK (§13.2.1)")
        func outOfOrder() {
            // Below the largest ack-eliciting packet.
            var tracker = AckTracker(space: .applicationData, ackElicitingThreshold: 10)
            tracker.onPacketReceived(5, ackEliciting: true, now: at(0))
            #expect(tracker.ackDeadline == at(25))
            tracker.onPacketReceived(3, ackEliciting: true, now: at(1))
            #expect(tracker.ackDeadline == at(1))

            // Above it with a gap.
            var gap = AckTracker(space: .applicationData, ackElicitingThreshold: 10)
            gap.onPacketReceived(0, ackEliciting: true, now: at(0))
            gap.onPacketReceived(2, ackEliciting: true, now: at(1))
            #expect(gap.ackDeadline == at(1))

            // No gap if the packets in between arrived, even non-ack-eliciting ones.
            var filled = AckTracker(space: .applicationData, ackElicitingThreshold: 10)
            filled.onPacketReceived(0, ackEliciting: true, now: at(0))
            filled.onPacketReceived(1, ackEliciting: false, now: at(1))
            filled.onPacketReceived(2, ackEliciting: true, now: at(2))
            #expect(filled.ackDeadline == at(25))
        }

        @Test("ECN: counts per space, included when non-zero; CE triggers an immediate ACK (§13.2.1, §13.4.1)")
        func ecn() throws {
            var tracker = AckTracker(space: .applicationData, ackElicitingThreshold: 10)
            tracker.onPacketReceived(0, ackEliciting: true, ecn: .ect0, now: at(0))
            #expect(tracker.ackDeadline == at(25))
            tracker.onPacketReceived(1, ackEliciting: false, ecn: .ect1, now: at(1))
            tracker.onPacketReceived(2, ackEliciting: true, ecn: .ce, now: at(2))
            #expect(tracker.ackDeadline == at(2))
            let frame = try #require(tracker.makeAckFrame(now: at(2)))
            #expect(frame.ecn == ECNCounts(ect0: 1, ect1: 1, ce: 1))
            #expect(frame.type == .ackECN)
        }

        @Test("ACK of ACK: ranges up to its Largest Acknowledged are forgotten (§13.2.4)")
        func ackOfAck() throws {
            var tracker = AckTracker(space: .applicationData)
            for number in Array(UInt64(0)...9) + Array(UInt64(20)...25) {
                tracker.onPacketReceived(number, ackEliciting: false, now: at(0))
            }
            tracker.onAckOfAck(largest: 22)
            #expect(tracker.receivedRanges == [23...25])
            #expect(tracker.isDuplicate(21))
            #expect(tracker.isDuplicate(15))  // a gap below the forgotten ranges: too old
            #expect(!tracker.isDuplicate(26))
            #expect(try #require(tracker.makeAckFrame(now: at(0))).ranges == [23...25])
            tracker.onAckOfAck(largest: 10)  // older: nothing to do
            #expect(tracker.receivedRanges == [23...25])
            tracker.onAckOfAck(largest: 25)
            #expect(tracker.makeAckFrame(now: at(0)) == nil)
            #expect(tracker.largestReceived == 25)  // kept for packet number decoding (§13.2.3)
            let accepted = tracker.onPacketReceived(26, ackEliciting: true, now: at(1))
            #expect(accepted)
            #expect(tracker.receivedRanges == [26...26])
        }

        @Test("100 000 packets with gaps and reordering are tracked quickly")
        func manyPackets() {
            var tracker = AckTracker(space: .applicationData)
            var acksSent = 0
            let elapsed = ContinuousClock().measure {
                var number: UInt64 = 0
                while number < 100_000 {
                    let now = at(Double(number) / 100)
                    // Every 50th packet arrives three packets late.
                    if number % 50 != 0 { tracker.onPacketReceived(number, ackEliciting: true, now: now) }
                    if number % 50 == 3 { tracker.onPacketReceived(number - 3, ackEliciting: true, now: now) }
                    if tracker.isAckDue(at: now), let frame = tracker.makeAckFrame(now: now) {
                        tracker.onAckSent()
                        acksSent += 1
                        if acksSent % 16 == 0 { tracker.onAckOfAck(largest: frame.largestAcknowledged &- 64) }
                    }
                    number += 1
                }
            }
            #expect(acksSent > 10_000)
            #expect(tracker.receivedRanges.count <= tracker.maxRanges)
            #expect(elapsed < .seconds(15), "took \(elapsed) — quadratic behaviour?")
        }
    }
}
