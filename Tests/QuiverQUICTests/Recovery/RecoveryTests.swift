import QuiverCore
import Testing

@_spi(Wire) @testable import QuiverQUIC

/// RFC 9002 behaviour unit tests: RTT estimation, loss detection and PTO, ACK generation.
@Suite("RFC 9002 behaviour unit tests")
enum RecoveryTests {
    /// An arbitrary origin for virtual time, far from zero.
    static let origin = Instant(nanoseconds: 100_000_000_000)

    /// `origin + milliseconds`.
    static func at(_ milliseconds: Double) -> Instant {
        Instant(nanoseconds: UInt64(Int64(origin.nanoseconds) + Int64((milliseconds * 1_000_000).rounded())))
    }

    static func ms(_ value: Double) -> Duration { .nanoseconds(Int64((value * 1_000_000).rounded())) }

    static func packet(_ number: UInt64, size: Int = 1200, ackEliciting: Bool = true, frames: SentFrameInfos = [])
        -> SentPacket
    {
        SentPacket(packetNumber: number, size: size, ackEliciting: ackEliciting, inFlight: ackEliciting ? true : size > 100,
                   frames: frames)
    }

    static func ack(_ ranges: ClosedRange<UInt64>..., delay: UInt64 = 0, ecn: ECNCounts? = nil) -> AckFrame {
        AckFrame(ranges: AckRanges(ranges), ackDelay: delay, ecn: ecn)
    }
}

extension LossDetection {
    /// Test shorthand: processes an ACK with exponent 3, handshake confirmed, max_ack_delay 25 ms.
    mutating func ack(
        _ frame: AckFrame, space: PacketNumberSpace = .applicationData, at now: Instant, confirmed: Bool = true,
        maxAckDelay: Duration = .milliseconds(25)
    ) throws(QUICError) -> AckOutcome {
        try onAckReceived(
            frame, ackDelayExponent: 3, space: space, now: now, handshakeConfirmed: confirmed, maxAckDelay: maxAckDelay)
    }

    mutating func send(_ numbers: ClosedRange<UInt64>, space: PacketNumberSpace = .applicationData, at now: Instant) {
        for number in numbers { onPacketSent(RecoveryTests.packet(number), space: space, now: now) }
    }
}
