import QuiverCore
import Testing

@_spi(Wire) @testable import QuiverQUIC

extension RecoveryTests {
    @Suite("RTT estimator (RFC 9002 §5)")
    struct RTTEstimatorTests {
        let now = RecoveryTests.at(0)

        @Test("Before any sample: kInitialRtt, rttvar = kInitialRtt / 2 (§5.3, §6.2.2)")
        func initialState() {
            let rtt = RTTEstimator()
            #expect(rtt.smoothedRTT == .milliseconds(333))
            #expect(rtt.rttVariance == .microseconds(166_500))
            #expect(rtt.latestRTT == .zero)
            #expect(rtt.minRTT == .zero)
            #expect(rtt.firstSampleTime == nil)
            #expect(!rtt.hasSample)
            // PTO = 333 + 4 * 166.5 = 999 ms: "handshakes starting with a PTO of 1 second".
            #expect(rtt.ptoBase == .milliseconds(999))

            let custom = RTTEstimator(initialRTT: .milliseconds(100))
            #expect(custom.smoothedRTT == .milliseconds(100))
            #expect(custom.rttVariance == .milliseconds(50))
        }

        @Test("First sample resets the estimator and ignores the ACK delay (§5.3)")
        func firstSample() {
            var rtt = RTTEstimator()
            rtt.update(latestRTT: .milliseconds(100), ackDelay: .milliseconds(50), handshakeConfirmed: true,
                       maxAckDelay: .milliseconds(25), now: now)
            #expect(rtt.latestRTT == .milliseconds(100))
            #expect(rtt.minRTT == .milliseconds(100))
            #expect(rtt.smoothedRTT == .milliseconds(100))
            #expect(rtt.rttVariance == .milliseconds(50))
            #expect(rtt.firstSampleTime == now)
        }

        @Test("Subsequent samples: EWMA values computed by hand (§5.3)")
        func ewma() {
            var rtt = RTTEstimator()
            rtt.update(latestRTT: .milliseconds(100), ackDelay: .zero, handshakeConfirmed: true,
                       maxAckDelay: .milliseconds(25), now: now)
            // rttvar = 3/4 * 50 + 1/4 * |100 - 200| = 62.5; smoothed = 7/8 * 100 + 1/8 * 200 = 112.5
            rtt.update(latestRTT: .milliseconds(200), ackDelay: .zero, handshakeConfirmed: true,
                       maxAckDelay: .milliseconds(25), now: now + .milliseconds(200))
            #expect(rtt.rttVariance == .microseconds(62_500))
            #expect(rtt.smoothedRTT == .microseconds(112_500))
            #expect(rtt.minRTT == .milliseconds(100))
            // rttvar = 3/4 * 62.5 + 1/4 * |112.5 - 50| = 62.5; smoothed = 7/8 * 112.5 + 1/8 * 50 = 104.6875
            rtt.update(latestRTT: .milliseconds(50), ackDelay: .zero, handshakeConfirmed: true,
                       maxAckDelay: .milliseconds(25), now: now + .milliseconds(300))
            #expect(rtt.rttVariance == .microseconds(62_500))
            #expect(rtt.smoothedRTT == .nanoseconds(104_687_500))
            #expect(rtt.minRTT == .milliseconds(50))
            #expect(rtt.latestRTT == .milliseconds(50))
            #expect(rtt.firstSampleTime == now)
        }

        @Test("min_rtt takes the lesser sample and ignores the ACK delay (§5.2)")
        func minRTTIgnoresAckDelay() {
            var rtt = RTTEstimator()
            rtt.update(latestRTT: .milliseconds(100), ackDelay: .zero, handshakeConfirmed: true,
                       maxAckDelay: .milliseconds(25), now: now)
            rtt.update(latestRTT: .milliseconds(80), ackDelay: .milliseconds(10), handshakeConfirmed: true,
                       maxAckDelay: .milliseconds(25), now: now)
            #expect(rtt.minRTT == .milliseconds(80))
            rtt.update(latestRTT: .milliseconds(300), ackDelay: .zero, handshakeConfirmed: true,
                       maxAckDelay: .milliseconds(25), now: now)
            #expect(rtt.minRTT == .milliseconds(80))
            rtt.resetMinRTT()
            #expect(rtt.minRTT == .milliseconds(300))
        }

        @Test("ACK delay is limited to max_ack_delay only after handshake confirmation (§5.3)")
        func ackDelayClampedAfterConfirmation() {
            var unconfirmed = RTTEstimator()
            unconfirmed.update(latestRTT: .milliseconds(100), ackDelay: .zero, handshakeConfirmed: false,
                               maxAckDelay: .milliseconds(25), now: now)
            var confirmed = unconfirmed
            // Not confirmed: the full 100 ms delay is subtracted, adjusted = 200 ms.
            unconfirmed.update(latestRTT: .milliseconds(300), ackDelay: .milliseconds(100), handshakeConfirmed: false,
                               maxAckDelay: .milliseconds(25), now: now)
            #expect(unconfirmed.rttVariance == .microseconds(62_500))  // 3/4 * 50 + 1/4 * 100
            #expect(unconfirmed.smoothedRTT == .microseconds(112_500))  // 7/8 * 100 + 1/8 * 200
            // Confirmed: delay limited to 25 ms, adjusted = 275 ms.
            confirmed.update(latestRTT: .milliseconds(300), ackDelay: .milliseconds(100), handshakeConfirmed: true,
                             maxAckDelay: .milliseconds(25), now: now)
            #expect(confirmed.rttVariance == .microseconds(81_250))  // 3/4 * 50 + 1/4 * 175
            #expect(confirmed.smoothedRTT == .microseconds(121_875))  // 7/8 * 100 + 1/8 * 275
        }

        @Test("ACK delay is not subtracted when the result would be below min_rtt (§5.3)")
        func ackDelayNotBelowMinRTT() {
            var rtt = RTTEstimator()
            rtt.update(latestRTT: .milliseconds(100), ackDelay: .zero, handshakeConfirmed: true,
                       maxAckDelay: .milliseconds(50), now: now)
            // 120 - 30 = 90 < min_rtt 100: the sample is used unadjusted.
            rtt.update(latestRTT: .milliseconds(120), ackDelay: .milliseconds(30), handshakeConfirmed: true,
                       maxAckDelay: .milliseconds(50), now: now)
            #expect(rtt.smoothedRTT == .microseconds(102_500))  // 7/8 * 100 + 1/8 * 120
            #expect(rtt.rttVariance == .microseconds(42_500))  // 3/4 * 50 + 1/4 * 20
            // 150 - 50 = 100 = min_rtt: allowed (latest_rtt >= min_rtt + ack_delay).
            var other = RTTEstimator()
            other.update(latestRTT: .milliseconds(100), ackDelay: .zero, handshakeConfirmed: true,
                         maxAckDelay: .milliseconds(50), now: now)
            other.update(latestRTT: .milliseconds(150), ackDelay: .milliseconds(50), handshakeConfirmed: true,
                         maxAckDelay: .milliseconds(50), now: now)
            #expect(other.smoothedRTT == .milliseconds(100))
        }

        @Test("PTO base, PTO with max_ack_delay, kGranularity floor, persistent congestion duration (§6.2.1, §7.6.1)")
        func ptoHelpers() {
            var rtt = RTTEstimator()
            rtt.update(latestRTT: .milliseconds(100), ackDelay: .zero, handshakeConfirmed: true,
                       maxAckDelay: .zero, now: now)
            #expect(rtt.ptoBase == .milliseconds(300))
            #expect(rtt.probeTimeout(maxAckDelay: .milliseconds(25)) == .milliseconds(325))
            #expect(rtt.persistentCongestionDuration(maxAckDelay: .milliseconds(25)) == .milliseconds(975))

            var tiny = RTTEstimator()
            tiny.update(latestRTT: .microseconds(100), ackDelay: .zero, handshakeConfirmed: true,
                        maxAckDelay: .zero, now: now)
            #expect(tiny.ptoBase == .microseconds(1_100))  // 4 * rttvar = 0.2 ms < kGranularity

            #expect(rtt.snapshot == RTTSnapshot(smoothedRTT: .milliseconds(100), minRTT: .milliseconds(100),
                                                latestRTT: .milliseconds(100)))
            rtt.reset(initialRTT: .milliseconds(200))
            #expect(!rtt.hasSample && rtt.smoothedRTT == .milliseconds(200))
        }

        @Test("Scaling a duration by adding agrees with Duration's own multiplication")
        func scaled() {
            let durations: [Duration] = [.zero, .nanoseconds(1), .microseconds(166_500), .milliseconds(333),
                                         .seconds(7) + .nanoseconds(123_456_789), .seconds(1 << 30)]
            for duration in durations {
                for factor in [0, 1, 2, 3, 4, 7, 8, 1 << 10, (1 << 30) - 1, 1 << 30] {
                    #expect(duration.scaled(by: factor) == duration * factor, "\(duration) × \(factor)")
                }
            }
        }
    }
}
