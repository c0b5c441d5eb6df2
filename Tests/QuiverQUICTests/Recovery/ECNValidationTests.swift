import QuiverCore
import Testing

@_spi(Wire) @testable import QuiverQUIC

extension RecoveryTests {
    /// ECN validation as a value (RFC 9000 §13.4.2, Appendix A.4); the connection-level tests
    /// are in `QuiverConnectionTests/ECNTests.swift`.
    @Suite("ECN validation (RFC 9000 §13.4.2, Appendix A.4)")
    struct ECNValidationTests {
        static let start = Instant(nanoseconds: 1_000_000_000)
        static func at(_ ms: Int64) -> Instant { start + .milliseconds(ms) }
        static func counts(_ ect0: UInt64, ce: UInt64 = 0, ect1: UInt64 = 0) -> ECNCounts { ECNCounts(ect0: ect0, ect1: ect1, ce: ce) }

        /// A validation that sent `count` marked packets in the Application Data space at 0 ms.
        static func sent(_ count: Int, space: PacketNumberSpace = .applicationData) -> ECNValidation {
            var validation = ECNValidation(enabled: true)
            for _ in 0..<count {
                #expect(validation.codepoint(at: at(0)) == .ect0)
                validation.onPacketSent(space: space, now: at(0), testingPeriod: .seconds(1))
            }
            return validation
        }

        @Test("Ten marked packets, then unmarked until an ACK validates; then capable and marked again")
        func testingThenCapable() {
            var validation = Self.sent(ECNValidation.testingPacketCount)
            #expect(validation.state == .unknown)
            #expect(validation.codepoint(at: Self.at(1)) == .notECT)
            let ce = validation.onAckReceived(space: .applicationData, counts: Self.counts(4), newlyAckedMarked: 4, largestAckedIncreased: true)
            #expect(ce == 0)
            #expect(validation.state == .capable)
            #expect(validation.codepoint(at: Self.at(2)) == .ect0)
        }

        @Test("A validating ACK during the testing period makes the path capable at once")
        func capableWhileTesting() {
            var validation = Self.sent(3)
            #expect(validation.state == .testing)
            _ = validation.onAckReceived(space: .applicationData, counts: Self.counts(3), newlyAckedMarked: 3, largestAckedIncreased: true)
            #expect(validation.state == .capable)
        }

        @Test("Counts that acknowledge no marked packet do not make the path capable (Appendix A.4)")
        func countsWithoutMarkedPackets() {
            var validation = Self.sent(ECNValidation.testingPacketCount)
            _ = validation.onAckReceived(space: .applicationData, counts: Self.counts(0), newlyAckedMarked: 0, largestAckedIncreased: true)
            #expect(validation.state == .unknown)
        }

        @Test("The testing period also ends three PTOs after its first marked packet")
        func testingPeriodByTime() {
            var validation = ECNValidation(enabled: true)
            #expect(validation.codepoint(at: Self.at(0)) == .ect0)
            validation.onPacketSent(space: .initial, now: Self.at(0), testingPeriod: .milliseconds(900))
            #expect(validation.codepoint(at: Self.at(899)) == .ect0)
            #expect(validation.codepoint(at: Self.at(900)) == .notECT)
            #expect(validation.state == .unknown)
        }

        @Test("Marked packets acknowledged without ECN counts fail validation: a peer that does not report, or bleaching")
        func missingCounts() {
            var validation = Self.sent(5)
            // An ACK without counts that acknowledges no marked packet says nothing.
            _ = validation.onAckReceived(space: .applicationData, counts: nil, newlyAckedMarked: 0, largestAckedIncreased: true)
            #expect(validation.state == .testing)
            _ = validation.onAckReceived(space: .applicationData, counts: nil, newlyAckedMarked: 2, largestAckedIncreased: true)
            #expect(validation.state == .failed)
            #expect(validation.codepoint(at: Self.at(1)) == .notECT)
        }

        @Test("Increases of ECT(0) and CE short of the newly acknowledged marked packets fail validation (remarking)")
        func countsShort() {
            var validation = Self.sent(6)
            _ = validation.onAckReceived(space: .applicationData, counts: Self.counts(2), newlyAckedMarked: 2, largestAckedIncreased: true)
            #expect(validation.state == .capable)
            // Three more marked packets acknowledged, the counts grew by two.
            _ = validation.onAckReceived(space: .applicationData, counts: Self.counts(3, ce: 1), newlyAckedMarked: 3, largestAckedIncreased: true)
            #expect(validation.state == .failed)
        }

        @Test("Increases larger than the newly acknowledged packets are fine (lost ACK frames)")
        func countsAhead() {
            var validation = Self.sent(6)
            _ = validation.onAckReceived(space: .applicationData, counts: Self.counts(5), newlyAckedMarked: 2, largestAckedIncreased: true)
            #expect(validation.state == .capable)
        }

        @Test("A decreasing count fails validation")
        func decrease() {
            var validation = Self.sent(6)
            _ = validation.onAckReceived(space: .applicationData, counts: Self.counts(3, ce: 1), newlyAckedMarked: 4, largestAckedIncreased: true)
            _ = validation.onAckReceived(space: .applicationData, counts: Self.counts(5, ce: 0), newlyAckedMarked: 1, largestAckedIncreased: true)
            #expect(validation.state == .failed)
        }

        @Test("An ECT(1) count (never sent) fails validation")
        func ect1() {
            var validation = Self.sent(3)
            _ = validation.onAckReceived(space: .applicationData, counts: Self.counts(2, ect1: 1), newlyAckedMarked: 3, largestAckedIncreased: true)
            #expect(validation.state == .failed)
        }

        @Test("Counts beyond the ECT(0) packets sent in the space fail validation")
        func beyondSent() {
            var validation = Self.sent(3, space: .handshake)
            _ = validation.onAckReceived(space: .handshake, counts: Self.counts(3, ce: 1), newlyAckedMarked: 3, largestAckedIncreased: true)
            #expect(validation.state == .failed)
        }

        @Test("Spaces are counted apart: Initial counts are not compared with Application Data ones")
        func perSpace() {
            var validation = Self.sent(2, space: .initial)
            for _ in 0..<2 { validation.onPacketSent(space: .applicationData, now: Self.at(0), testingPeriod: .seconds(1)) }
            _ = validation.onAckReceived(space: .initial, counts: Self.counts(2), newlyAckedMarked: 2, largestAckedIncreased: true)
            _ = validation.onAckReceived(space: .applicationData, counts: Self.counts(1, ce: 1), newlyAckedMarked: 2, largestAckedIncreased: true)
            #expect(validation.state == .capable)
        }

        @Test("An ACK that does not raise the largest acknowledged is not judged (reordering, §13.4.2.1)")
        func reorderedAck() {
            var validation = Self.sent(6)
            _ = validation.onAckReceived(space: .applicationData, counts: Self.counts(4), newlyAckedMarked: 4, largestAckedIncreased: true)
            // An older ACK frame arriving late, with smaller counts.
            let ce = validation.onAckReceived(space: .applicationData, counts: Self.counts(2), newlyAckedMarked: 1, largestAckedIncreased: false)
            #expect(ce == 0)
            #expect(validation.state == .capable)
        }

        @Test("A valid ECN-CE increase is reported for the congestion controller; an invalid one is not")
        func congestionExperienced() {
            var validation = Self.sent(8)
            #expect(validation.onAckReceived(space: .applicationData, counts: Self.counts(2, ce: 1), newlyAckedMarked: 3, largestAckedIncreased: true) == 1)
            #expect(validation.onAckReceived(space: .applicationData, counts: Self.counts(3, ce: 1), newlyAckedMarked: 1, largestAckedIncreased: true) == 0)
            #expect(validation.onAckReceived(space: .applicationData, counts: Self.counts(3, ce: 4), newlyAckedMarked: 3, largestAckedIncreased: true) == 3)
            // Remarked: more CE than packets marked; no congestion signal from counts that fail.
            #expect(validation.onAckReceived(space: .applicationData, counts: Self.counts(3, ce: 9), newlyAckedMarked: 1, largestAckedIncreased: true) == 0)
            #expect(validation.state == .failed)
            #expect(validation.onAckReceived(space: .applicationData, counts: Self.counts(3, ce: 9), newlyAckedMarked: 0, largestAckedIncreased: true) == 0)
        }

        @Test("Every marked packet of the testing period lost fails the path; one acknowledged does not")
        func allMarkedLost() {
            var lost = Self.sent(ECNValidation.testingPacketCount)
            lost.onMarkedPacketsLost(9)
            #expect(lost.state == .unknown)
            lost.onMarkedPacketsLost(1)
            #expect(lost.state == .failed)

            var someArrived = Self.sent(ECNValidation.testingPacketCount)
            someArrived.onMarkedPacketsLost(9)
            _ = someArrived.onAckReceived(space: .applicationData, counts: Self.counts(1), newlyAckedMarked: 1, largestAckedIncreased: true)
            #expect(someArrived.state == .capable)

            // Losses during the testing period count once it ends by time.
            var early = ECNValidation(enabled: true)
            early.onPacketSent(space: .initial, now: Self.at(0), testingPeriod: .milliseconds(100))
            early.onMarkedPacketsLost(1)
            #expect(early.state == .testing)
            #expect(early.codepoint(at: Self.at(100)) == .notECT)
            #expect(early.state == .failed)
        }

        @Test("A new path is tested again, against the counts validated so far")
        func restart() {
            var validation = Self.sent(4)
            _ = validation.onAckReceived(space: .applicationData, counts: Self.counts(4), newlyAckedMarked: 4, largestAckedIncreased: true)
            validation.restart()
            #expect(validation.state == .testing)
            validation.onPacketSent(space: .applicationData, now: Self.at(10), testingPeriod: .seconds(1))
            // The count continues from 4: 5 covers the one new marked packet.
            _ = validation.onAckReceived(space: .applicationData, counts: Self.counts(5), newlyAckedMarked: 1, largestAckedIncreased: true)
            #expect(validation.state == .capable)
        }

        @Test("Disabled: nothing is marked, and nothing changes that")
        func disabled() {
            var validation = ECNValidation(enabled: false)
            #expect(validation.state == .disabled)
            #expect(validation.codepoint(at: Self.at(0)) == .notECT)
            validation.restart()
            #expect(validation.onAckReceived(space: .applicationData, counts: Self.counts(0, ce: 2), newlyAckedMarked: 0, largestAckedIncreased: true) == 0)
            #expect(validation.state == .disabled)
        }
    }
}
