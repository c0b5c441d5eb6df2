import QuiverCore
import Testing

@_spi(Wire) @testable import QuiverQUIC

extension RecoveryTests {
    @Suite("Loss detection and PTO (RFC 9002 §6, §7.6, Appendix A)")
    struct LossDetectionTests {
        /// A server (peer address validated) with the handshake confirmed.
        static func confirmedServer() -> LossDetection {
            var detection = LossDetection(role: .server)
            detection.confirmHandshake()
            return detection
        }

        /// Fires the loss detection timer at `now` and checks the outcome.
        func expectTimeout(
            _ detection: inout LossDetection, at now: Instant, _ expected: TimeoutOutcome,
            sourceLocation: SourceLocation = #_sourceLocation
        ) {
            let outcome = detection.onLossDetectionTimeout(now: now)
            #expect(outcome == expected, sourceLocation: sourceLocation)
        }

        @Test("Bytes in flight count only in-flight packets (Appendix A.5, B.2)")
        func bytesInFlight() throws {
            var detection = Self.confirmedServer()
            detection.send(0...1, at: at(0))
            detection.onPacketSent(packet(2, size: 50, ackEliciting: false), space: .applicationData, now: at(0))
            #expect(detection.bytesInFlight == 2400)
            #expect(detection.sentPackets(in: .applicationData).count == 3)
            let outcome = try detection.ack(ack(0...0), at: at(10))
            #expect(outcome.newlyAcked.map(\.packetNumber) == [0])
            #expect(Array(outcome.ackedInFlight) == [AckedPacketInfo(packetNumber: 0, sentTime: at(0), bytes: 1200)])
            #expect(outcome.rttSample == .milliseconds(10))
            #expect(detection.bytesInFlight == 1200)
            #expect(detection.largestAcked(in: .applicationData) == 0)
        }

        @Test("Packet threshold: kPacketThreshold = 3 (§6.1.1); the rest waits for the loss timer")
        func packetThreshold() throws {
            var detection = Self.confirmedServer()
            detection.send(0...4, at: at(0))
            let outcome = try detection.ack(ack(4...4), at: at(100))
            // 4 - 0 >= 3 and 4 - 1 >= 3: lost. 2 and 3 are within the threshold.
            #expect(outcome.loss.packets.map(\.packetNumber) == [0, 1])
            #expect(outcome.loss.lostBytes == 2400)
            #expect(outcome.loss.newestLostSentTime == at(0))
            #expect(!outcome.persistentCongestion)
            #expect(detection.bytesInFlight == 2400)
            // loss_delay = 9/8 * 100 ms: the timer is set for the remaining time (§6.1.2).
            #expect(detection.lossDelay == .microseconds(112_500))
            #expect(detection.lossDetectionTimer?.deadline == at(112.5))
            #expect(detection.lossDetectionTimer?.kind == .lossTime(.applicationData))
        }

        @Test("Time threshold: 9/8 * max(smoothed_rtt, latest_rtt), timer fires at the deadline (§6.1.2)")
        func timeThreshold() throws {
            var detection = Self.confirmedServer()
            detection.send(0...0, at: at(0))
            detection.send(1...1, at: at(10))
            let outcome = try detection.ack(ack(1...1), at: at(100))
            #expect(outcome.loss.isEmpty)
            // latest_rtt = smoothed_rtt = 90 ms, loss_delay = 101.25 ms.
            #expect(detection.lossDetectionTimer?.deadline == at(101.25))
            expectTimeout(&detection, at: at(101), .none)
            let timeout = detection.onLossDetectionTimeout(now: at(101.25))
            guard case .lost(let event) = timeout else {
                Issue.record("expected a time threshold loss, got \(timeout)")
                return
            }
            #expect(event.space == .applicationData)
            #expect(event.packets.map(\.packetNumber) == [0])
            #expect(detection.ptoCount == 0)
            #expect(detection.bytesInFlight == 0)
            #expect(detection.lossDetectionTimer == nil)
        }

        @Test("kGranularity is the smallest loss delay (§6.1.2)")
        func granularityFloor() throws {
            var detection = Self.confirmedServer()
            detection.send(0...1, at: at(0))
            _ = try detection.ack(ack(1...1), at: at(0.1))
            #expect(detection.lossDelay == .milliseconds(1))
            #expect(detection.lossDetectionTimer?.deadline == at(1))
        }

        @Test("PTO = smoothed_rtt + max(4 rttvar, kGranularity) + max_ack_delay, doubled per PTO, reset on ACK (§6.2.1)")
        func probeTimeoutBackoff() throws {
            var detection = Self.confirmedServer()
            detection.send(0...0, at: at(0))
            // 333 + 4 * 166.5 + 25 = 1024 ms.
            #expect(detection.probeTimeout(for: .applicationData) == .milliseconds(1024))
            #expect(detection.lossDetectionTimer?.deadline == at(1024))
            #expect(detection.lossDetectionTimer?.kind == .probeTimeout(.applicationData))
            expectTimeout(&detection, at: at(1000), .none)
            #expect(detection.ptoCount == 0)

            expectTimeout(&detection, at: at(1024), .probe(space: .applicationData, count: 2, antiDeadlock: false))
            #expect(detection.ptoCount == 1)
            // A PTO declares nothing lost (§6.2).
            #expect(detection.bytesInFlight == 1200)
            #expect(detection.lossDetectionTimer?.deadline == at(2048))

            detection.send(1...2, at: at(1024))
            #expect(detection.lossDetectionTimer?.deadline == at(3072))
            expectTimeout(&detection, at: at(3072), .probe(space: .applicationData, count: 2, antiDeadlock: false))
            #expect(detection.ptoCount == 2)
            #expect(detection.probeTimeout(for: .applicationData) == .milliseconds(4096))
            #expect(detection.lossDetectionTimer?.deadline == at(1024 + 4096))

            let outcome = try detection.ack(ack(0...2), at: at(3100))
            #expect(outcome.newlyAcked.count == 3)
            #expect(outcome.rttSample == .milliseconds(2076))
            #expect(detection.ptoCount == 0)
            #expect(detection.lossDetectionTimer == nil)
            detection.send(3...3, at: at(3200))
            #expect(detection.lossDetectionTimer?.deadline == at(3200) + detection.rtt.ptoBase + .milliseconds(25))
        }

        @Test("No PTO without ack-eliciting packets in flight once the peer validated the address (Appendix A.8)")
        func noProbeTimeoutWithoutAckElicitingInFlight() throws {
            var server = Self.confirmedServer()
            server.onPacketSent(packet(0, size: 40, ackEliciting: false), space: .applicationData, now: at(0))
            #expect(server.lossDetectionTimer == nil)
            expectTimeout(&server, at: at(10_000), .none)

            var client = LossDetection(role: .client)
            #expect(client.lossDetectionTimer == nil)  // nothing sent yet
            client.confirmHandshake()
            client.onPacketSent(packet(0, size: 40, ackEliciting: false), space: .applicationData, now: at(0))
            #expect(client.lossDetectionTimer == nil)
        }

        @Test("Client anti-deadlock PTO before address validation; backoff kept on Initial ACKs (§6.2.1, §6.2.2.1)")
        func clientAntiDeadlock() throws {
            var client = LossDetection(role: .client)
            #expect(!client.peerCompletedAddressValidation)
            client.send(0...0, space: .initial, at: at(0))
            #expect(client.lossDetectionTimer?.deadline == at(999))
            #expect(client.lossDetectionTimer?.kind == .probeTimeout(.initial))
            expectTimeout(&client, at: at(999), .probe(space: .initial, count: 2, antiDeadlock: false))
            #expect(client.ptoCount == 1)
            client.send(1...1, space: .initial, at: at(999))

            // The server acknowledges the probe; packet 0 is lost. The client is not sure the
            // server validated its address: pto_count is not reset.
            let outcome = try client.ack(ack(1...1), space: .initial, at: at(1049), confirmed: false)
            #expect(outcome.loss.packets.map(\.packetNumber) == [0])
            #expect(client.ptoCount == 1)
            #expect(!client.hasAckElicitingInFlight)
            // Nothing in flight, yet the timer is armed from the ACK's time: 2 * (50 + 4 * 25) ms.
            #expect(client.lossDetectionTimer?.deadline == at(1349))
            #expect(client.lossDetectionTimer?.kind == .probeTimeout(.initial))
            client.hasHandshakeKeys = true
            #expect(client.lossDetectionTimer?.kind == .probeTimeout(.handshake))
            expectTimeout(&client, at: at(1349), .probe(space: .handshake, count: 1, antiDeadlock: true))
            #expect(client.ptoCount == 2)
            #expect(client.lossDetectionTimer?.deadline == at(1349 + 600))

            client.send(0...0, space: .handshake, at: at(1360))
            #expect(client.lossDetectionTimer?.deadline == at(1360 + 600))
            // A Handshake ACK proves the server validated the address (Appendix A.8).
            _ = try client.ack(ack(0...0), space: .handshake, at: at(1410), confirmed: false)
            #expect(client.peerCompletedAddressValidation)
            #expect(client.ptoCount == 0)
            #expect(client.lossDetectionTimer == nil)
        }

        @Test("A server at its anti-amplification limit arms no PTO (§6.2.2.1, Appendix A.6)")
        func serverAntiAmplificationLimit() {
            var server = LossDetection(role: .server)
            server.send(0...0, space: .initial, at: at(0))
            #expect(server.lossDetectionTimer?.deadline == at(999))
            server.isAtAntiAmplificationLimit = true
            #expect(server.lossDetectionTimer == nil)
            expectTimeout(&server, at: at(5000), .none)
            // A datagram arrives: the limit lifts and the overdue PTO runs at once.
            server.isAtAntiAmplificationLimit = false
            #expect(server.lossDetectionTimer?.deadline == at(999))
            expectTimeout(&server, at: at(5000), .probe(space: .initial, count: 2, antiDeadlock: false))
        }

        @Test("Initial and Handshake PTOs ignore max_ack_delay; no Application Data PTO before confirmation (§6.2.1)")
        func probeTimeoutPerSpace() {
            var server = LossDetection(role: .server)
            server.maxAckDelay = .milliseconds(100)
            server.send(0...0, space: .applicationData, at: at(0))
            #expect(server.lossDetectionTimer == nil)
            server.send(0...0, space: .initial, at: at(10))
            server.send(0...0, space: .handshake, at: at(20))
            #expect(server.probeTimeout(for: .initial) == .milliseconds(999))
            #expect(server.probeTimeout(for: .handshake) == .milliseconds(999))
            #expect(server.probeTimeout(for: .applicationData) == .milliseconds(1099))
            #expect(server.lossDetectionTimer?.deadline == at(1009))
            #expect(server.lossDetectionTimer?.kind == .probeTimeout(.initial))
            server.discard(space: .initial)
            #expect(server.lossDetectionTimer?.deadline == at(1019))
            #expect(server.lossDetectionTimer?.kind == .probeTimeout(.handshake))
            server.confirmHandshake()
            server.discard(space: .handshake)
            #expect(server.lossDetectionTimer?.deadline == at(1099))
            #expect(server.lossDetectionTimer?.kind == .probeTimeout(.applicationData))
        }

        /// RFC 9002 §7.6.3 with one time unit = 1 s: packets 1 … 9 at t = 0, 1, 2, 3, 4, 5, 6, 8,
        /// 12; #1 acknowledged at 1.2, #9 at 12.2. An earlier RTT sample (400 ms, at t = −1.6)
        /// stands for the handshake the example assumes.
        func persistentCongestionExample(
            finalAck: AckFrame, priorSample: Bool = true
        ) throws -> (AckOutcome, LossDetection) {
            var detection = Self.confirmedServer()
            if priorSample {
                detection.send(0...0, at: at(-2000))
                _ = try detection.ack(ack(0...0), at: at(-1600))
            }
            detection.send(1...1, at: at(0))
            detection.send(2...2, at: at(1000))
            if priorSample {
                let first = try detection.ack(ack(1...1), at: at(1200))
                #expect(first.loss.isEmpty)
            }
            for (number, time) in [(3, 2000.0), (4, 3000), (5, 4000), (6, 5000), (7, 6000), (8, 8000), (9, 12000)] {
                detection.send(UInt64(number)...UInt64(number), at: at(time))
            }
            return (try detection.ack(finalAck, at: at(12200)), detection)
        }

        @Test("Persistent congestion: the RFC 9002 §7.6.3 example (§7.6.2)")
        func persistentCongestion() throws {
            let (outcome, detection) = try persistentCongestionExample(finalAck: ack(9...9))
            #expect(outcome.loss.packets.map(\.packetNumber) == Array(2...8))
            // smoothed_rtt 462.5 ms, rttvar 337.5 ms: (462.5 + 1350 + 25) * 3 = 5.5125 s < 8 - 1 = 7 s.
            #expect(detection.rtt.smoothedRTT == .microseconds(462_500))
            #expect(detection.rtt.persistentCongestionDuration(maxAckDelay: .milliseconds(25)) == .microseconds(5_512_500))
            #expect(outcome.persistentCongestion)
            // min_rtt is reset to the latest sample (§5.2).
            #expect(detection.rtt.minRTT == .milliseconds(200))
        }

        @Test("No persistent congestion when a packet in the period was acknowledged (§7.6.2)")
        func persistentCongestionBrokenByAck() throws {
            let (outcome, _) = try persistentCongestionExample(finalAck: ack(9...9, 5...5))
            #expect(outcome.loss.packets.map(\.packetNumber) == [2, 3, 4, 6, 7, 8])
            #expect(!outcome.persistentCongestion)
        }

        @Test("No persistent congestion without an RTT sample before the lost packets were sent (§7.6.2)")
        func persistentCongestionNeedsPriorSample() throws {
            let (outcome, _) = try persistentCongestionExample(finalAck: ack(9...9), priorSample: false)
            #expect(outcome.loss.packets.map(\.packetNumber) == Array(1...8))
            #expect(!outcome.persistentCongestion)
        }

        @Test("Discarding a space removes its packets from bytes in flight and resets its timers (§6.4, A.11)")
        func discardSpace() throws {
            var server = LossDetection(role: .server)
            server.send(0...2, space: .initial, at: at(0))
            server.send(0...0, space: .handshake, at: at(10))
            #expect(server.bytesInFlight == 4800)
            _ = try server.ack(ack(2...2), space: .initial, at: at(100), confirmed: false)
            #expect(server.lossDetectionTimer?.kind == .lossTime(.initial))
            let removed = server.discard(space: .initial)
            #expect(removed.map(\.packetNumber) == [0, 1])
            #expect(server.bytesInFlight == 1200)
            #expect(server.sentPackets(in: .initial).isEmpty)
            #expect(server.lossDetectionTimer?.kind == .probeTimeout(.handshake))

            let deadline = try #require(server.lossDetectionTimer?.deadline)
            expectTimeout(&server, at: deadline, .probe(space: .handshake, count: 2, antiDeadlock: false))
            #expect(server.ptoCount == 1)
            server.discard(space: .handshake)
            #expect(server.ptoCount == 0)
            #expect(server.bytesInFlight == 0)
            #expect(server.lossDetectionTimer == nil)
            // Numbering continues after a discard (e.g. Initial packets after a Retry).
            server.send(3...3, space: .initial, at: at(200))
            #expect(server.sentPackets(in: .initial).largestSent == 3)
        }

        @Test("Acknowledging a packet never sent is a PROTOCOL_VIOLATION (RFC 9000 §13.1)")
        func ackOfUnsentPacket() throws {
            var detection = Self.confirmedServer()
            var error = #expect(throws: QUICError.self) { try detection.ack(ack(0...0), at: at(0)) }
            #expect(error?.code == .protocolViolation)

            detection.send(0...1, at: at(0))
            detection.send(3...3, at: at(0))  // 2 is skipped (RFC 9000 §21.4)
            error = #expect(throws: QUICError.self) { try detection.ack(ack(5...5), at: at(10)) }
            #expect(error?.code == .protocolViolation)
            #expect(error?.frameType == FrameType.ack.rawValue)
            error = #expect(throws: QUICError.self) { try detection.ack(ack(0...3), at: at(10)) }
            #expect(error?.code == .protocolViolation)
            // Nothing changed.
            #expect(detection.bytesInFlight == 3600)
            #expect(detection.largestAcked(in: .applicationData) == nil)

            let outcome = try detection.ack(ack(3...3, 0...1), at: at(10))
            #expect(outcome.newlyAcked.map(\.packetNumber) == [0, 1, 3])
            #expect(detection.bytesInFlight == 0)
        }

        @Test("A packet declared lost and later acknowledged is reported once as acked late")
        func spuriousLoss() throws {
            var detection = Self.confirmedServer()
            detection.send(0...4, at: at(0))
            let first = try detection.ack(ack(4...4), at: at(100))
            #expect(first.loss.packets.map(\.packetNumber) == [0, 1])
            let late = try detection.ack(ack(0...4), at: at(110))
            #expect(late.ackedLate.map(\.packetNumber) == [0, 1])
            #expect(late.newlyAcked.map(\.packetNumber) == [2, 3])
            #expect(late.rttSample == nil)  // the largest acknowledged is not newly acknowledged
            #expect(late.loss.isEmpty)
            let again = try detection.ack(ack(0...4), at: at(120))
            #expect(again.ackedLate.isEmpty && again.newlyAcked.isEmpty)
        }

        @Test("The send time of the largest newly acknowledged packet, for an ECN congestion event (Appendix B.7)")
        func largestNewlyAckedSentTime() throws {
            var detection = Self.confirmedServer()
            detection.send(0...2, at: at(0))
            let outcome = try detection.ack(ack(0...0, ecn: ECNCounts(ect0: 1, ect1: 0, ce: 2)), at: at(10))
            #expect(outcome.largestNewlyAckedSentTime == at(0))
            let none = try detection.ack(ack(0...0), at: at(11))
            #expect(none.largestNewlyAckedSentTime == nil)
        }

        @Test("RTT samples: only for a newly acked largest with an ack-eliciting packet; ACK delay per space (§5.1, §5.3)")
        func rttSampleRules() throws {
            var detection = Self.confirmedServer()
            detection.onPacketSent(packet(0, size: 40, ackEliciting: false), space: .applicationData, now: at(0))
            let nonEliciting = try detection.ack(ack(0...0, delay: 100_000), at: at(50))
            #expect(nonEliciting.rttSample == nil)
            #expect(!detection.rtt.hasSample)

            for space in [PacketNumberSpace.applicationData, .initial] {
                var detection = LossDetection(role: .server)
                detection.send(0...0, space: space, at: at(0))
                _ = try detection.ack(ack(0...0), space: space, at: at(100))
                detection.send(1...1, space: space, at: at(100))
                // ACK Delay field 2500 << 3 = 20 ms.
                let outcome = try detection.ack(ack(0...1, delay: 2500), space: space, at: at(230))
                #expect(outcome.rttSample == .milliseconds(130))
                // Application Data: adjusted 110 ms; Initial: the ACK delay is ignored (130 ms).
                let expected: Duration = space == .initial ? .microseconds(103_750) : .microseconds(101_250)
                #expect(detection.rtt.smoothedRTT == expected)
            }
            // The field decodes with saturation, whatever the peer sends.
            #expect(LossDetection.decodeAckDelay(1 << 62 - 1, exponent: 20) == .microseconds(Int64.max))
            #expect(LossDetection.decodeAckDelay(3, exponent: 3) == .microseconds(24))
        }

        @Test("Sent packet log: lookup, skipped numbers, outstanding packets")
        func sentPacketLog() {
            var log = SentPacketLog()
            log.append(SentPacket(packetNumber: 5, size: 100, ackEliciting: true, frames: [.ping], timeSent: at(0)))
            log.append(SentPacket(packetNumber: 8, size: 100, ackEliciting: false, timeSent: at(1)))
            #expect(log.count == 2)
            #expect(log.packet(number: 5)?.frames == [.ping])
            #expect(log.packet(number: 6) == nil)
            #expect(log.firstUnsentPacketNumber(in: [7...7]) == 7)
            #expect(log.firstUnsentPacketNumber(in: [4...5]) == 4)
            #expect(log.firstUnsentPacketNumber(in: [8...8, 5...5]) == nil)
            #expect(log.outstandingPackets.map(\.packetNumber) == [5, 8])
            #expect(log.ackElicitingInFlight == 1)
            #expect(log.bytesInFlight == 100)
            #expect(log.timeOfLastAckElicitingPacket == at(0))
        }

        @Test("Hot values stay small")
        func memoryLayout() {
            #expect(MemoryLayout<SentFrameInfo>.size <= 32)
            // Two frame records inline (a bulk packet's STREAM frame and an ACK): recording a
            // packet allocates nothing, where a 48-byte record used to point at a heap array.
            #expect(MemoryLayout<SentFrameInfos>.stride <= 80)
            // 32 bytes more for BBR's delivery rate sampling state (draft-ietf-ccwg-bbr §4.1.2.1.2).
            #expect(MemoryLayout<DeliveryState>.stride <= 32)
            #expect(MemoryLayout<SentPacket>.stride <= 144)
        }

        @Test("100 000 packets with periodic loss are processed quickly")
        func manyPackets() throws {
            var detection = Self.confirmedServer()
            let total: UInt64 = 100_000
            let lag: UInt64 = 3000  // 30 ms at 10 µs per packet
            var acked = 0
            var lost = 0
            var timers = 0
            let elapsed = try ContinuousClock().measure {
                for index in 0..<(total + lag) {
                    let now = at(Double(index) / 100)
                    if index < total {
                        detection.onPacketSent(packet(index), space: .applicationData, now: now)
                    }
                    if index >= lag && (index - lag) % 2 == 1 {
                        let high = index - lag
                        // `high` is odd: the pair is (high - 1, high), and high - 1 may be a multiple of 100.
                        let ranges: [ClosedRange<UInt64>] = (high - 1) % 100 == 0 ? [high...high] : [(high - 1)...high]
                        let outcome = try detection.onAckReceived(
                            AckFrame(ranges: AckRanges(ranges), ackDelay: 0), ackDelayExponent: 3, space: .applicationData, now: now,
                            handshakeConfirmed: true, maxAckDelay: .milliseconds(25))
                        acked += outcome.newlyAcked.count
                        lost += outcome.loss.packets.count
                    }
                    if detection.lossDetectionTimer != nil { timers += 1 }
                }
            }
            // Every 100th packet is never acknowledged and is declared lost by the packet threshold.
            #expect(lost == 1000)
            #expect(acked == Int(total) - 1000)
            #expect(detection.bytesInFlight == 0)
            #expect(timers > 0)
            #expect(elapsed < .seconds(15), "took \(elapsed) — quadratic behaviour?")
        }
    }
}
