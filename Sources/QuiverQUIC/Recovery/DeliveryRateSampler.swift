package import QuiverCore

/// A delivery rate sample: what one ACK says about how fast the path delivered data
/// (draft-ietf-ccwg-bbr §4.1.2.1.3, "Rate Sample (rs) Output").
package struct RateSample: Hashable, Sendable {
    /// `RS.delivery_rate` in bytes per second; 0 when the ACK gave no reliable sample.
    public var deliveryRate = 0
    /// `RS.is_app_limited`: the newest acknowledged packet was sent while application-limited.
    public var isAppLimited = false
    /// `RS.interval` in nanoseconds: the longer of the send and ACK intervals.
    public var interval: Int64 = 0
    /// `RS.delivered`: bytes delivered over the sampling interval.
    public var delivered = 0
    /// `RS.prior_delivered`: `P.delivered` of the newest acknowledged packet.
    public var priorDelivered = 0
    /// `RS.prior_time`: `P.delivered_time` of the newest acknowledged packet; `nil` when the
    /// ACK acknowledged nothing.
    public var priorTime: Instant?
    /// `RS.tx_in_flight`: bytes in flight when the newest acknowledged packet was sent.
    public var txInFlight = 0
    /// `RS.lost`: bytes declared lost between that packet's send and its acknowledgment.
    public var lost = 0
    /// `RS.newly_acked`: bytes newly acknowledged by this ACK.
    public var newlyAcked = 0
    /// `RS.rtt` in nanoseconds, from the newest acknowledged packet; -1 without one.
    public var rtt: Int64 = -1
    /// `RS.last_acked_packet_id`: the newest acknowledged packet's number.
    public var lastAckedPacket: UInt64 = 0

    /// An empty sample (`InitRateSample()`).
    public init() {}

    /// Whether the ACK acknowledged data (`RS.has_data`).
    public var hasData: Bool { priorTime != nil }
}

/// The connection-wide side of delivery rate sampling (draft-ietf-ccwg-bbr §4.1.2): stamps each
/// sent packet with a ``DeliveryState`` and turns the acknowledged packets of an ACK into a
/// ``RateSample``.
///
/// A sans-I/O value of integers: every input carries its instant. The byte counters only
/// grow, with wrapping additions that never trap: a 64-bit count wraps after 9.2 × 10^18
/// bytes, 23 years at 100 Gbit/s (capping them, as the window arithmetic does, would freeze
/// them after 2^48 bytes — hours at such rates — and every sample after it would be 0).
package struct DeliveryRateSampler: Hashable, Sendable {
    /// `C.delivered`: bytes delivered (acknowledged) so far.
    public private(set) var delivered = 0
    /// `C.delivered_time`: when ``delivered`` last changed.
    public private(set) var deliveredTime = Instant(nanoseconds: 0)
    /// `C.first_send_time`.
    public private(set) var firstSendTime = Instant(nanoseconds: 0)
    /// `C.app_limited`: the value of ``delivered`` that ends the current application-limited
    /// phase, or 0 when not application-limited.
    public private(set) var appLimited = 0
    /// `C.lost`: bytes declared lost so far.
    public private(set) var lost = 0

    /// A sampler for a new connection.
    public init() {}

    /// Whether the connection is in an application-limited phase.
    public var isAppLimited: Bool { appLimited != 0 }

    /// `OnPacketSent(P)` (§4.1.2.2): the state to record in a packet sent at `now`.
    ///
    /// - Parameters:
    ///   - now: The send time.
    ///   - bytesInFlight: Bytes in flight with the packet counted (`C.inflight` after it).
    ///   - bytes: The packet's size; `bytesInFlight` not above it means nothing else was in flight.
    public mutating func onPacketSent(bytes: Int, now: Instant, bytesInFlight: Int) -> DeliveryState {
        if bytesInFlight <= bytes {  // C.inflight was 0 before this packet
            firstSendTime = now
            deliveredTime = now
        }
        return DeliveryState(
            delivered: delivered, deliveredTime: deliveredTime, firstSendTime: firstSendTime, sendTime: now, lost: lost,
            txInFlight: CongestionControl.clampedBytes(bytesInFlight), isAppLimited: appLimited != 0)
    }

    /// `UpdateRateSample(P)` (§4.1.2.3) for one newly acknowledged packet; call for each packet
    /// of an ACK, then ``generate(_:minRTT:)``.
    public mutating func onPacketAcknowledged(_ packet: AckedPacketInfo, now: Instant, into rs: inout RateSample) {
        let bytes = CongestionControl.clampedBytes(packet.bytes)
        delivered &+= bytes
        deliveredTime = now
        rs.newlyAcked = CongestionControl.add(rs.newlyAcked, bytes)
        // IsNewestPacket(P): the sample is taken from the most recently sent packet acknowledged.
        let newest = packet.sentTime > firstSendTime
            || (packet.sentTime == firstSendTime && packet.packetNumber > rs.lastAckedPacket)
        guard !rs.hasData || newest else { return }
        rs.priorDelivered = packet.delivery.delivered
        let priorTime = packet.delivery.deliveredTime(sentAt: packet.sentTime)
        rs.priorTime = priorTime
        rs.isAppLimited = packet.delivery.isAppLimited
        rs.txInFlight = packet.delivery.txInFlight
        rs.lost = max(lost - packet.delivery.lost, 0)
        rs.lastAckedPacket = packet.packetNumber
        rs.rtt = now > packet.sentTime ? Int64(clamping: now.nanoseconds - packet.sentTime.nanoseconds) : 0
        sendElapsed = Self.nanoseconds(from: packet.delivery.firstSendTime(sentAt: packet.sentTime), to: packet.sentTime)
        ackElapsed = Self.nanoseconds(from: priorTime, to: now)
        firstSendTime = packet.sentTime
    }

    /// `GenerateRateSample()` (§4.1.2.3): completes `rs` once the ACK's packets are counted.
    ///
    /// - Parameter minRTT: `C.min_rtt` in nanoseconds; an interval shorter than it gives no rate.
    public mutating func generate(_ rs: inout RateSample, minRTT: Int64) {
        // Clear the app-limited phase once its bubble is acknowledged and gone.
        if appLimited != 0, delivered > appLimited { appLimited = 0 }
        guard rs.hasData else { return }
        // The longer of the send and ACK intervals: neither compressed ACKs nor a send burst
        // can make the path look faster than it is (§4.1.1.2).
        rs.interval = max(sendElapsed, ackElapsed)
        rs.delivered = max(delivered - rs.priorDelivered, 0)
        guard rs.interval >= max(minRTT, 0), rs.interval > 0 else { return }  // no reliable sample
        rs.deliveryRate = CongestionControl.mulDiv(rs.delivered, 1_000_000_000, Int(rs.interval))
    }

    /// `MarkConnectionAppLimited()` (§4.1.2.4): packets sent from now on are application-limited
    /// until everything in flight now has been delivered.
    public mutating func markAppLimited(bytesInFlight: Int) {
        appLimited = max(delivered &+ max(bytesInFlight, 0), 1)
    }

    /// The sampler on a new path (its controller starts over, RFC 9000 §9.4): the counters go
    /// on — packets sent on the old path are still acknowledged or lost, with their
    /// `P.delivered` and `P.lost` taken from them — and the sampling interval starts now.
    public mutating func startOver(at now: Instant) {
        deliveredTime = now
        firstSendTime = now
        appLimited = 0
    }

    /// Counts bytes declared lost (`C.lost`).
    public mutating func onPacketLost(bytes: Int) {
        lost &+= max(bytes, 0)
    }

    /// `RS.send_elapsed` and `RS.ack_elapsed` of the sample being built, in nanoseconds.
    private var sendElapsed: Int64 = 0
    private var ackElapsed: Int64 = 0

    private static func nanoseconds(from start: Instant, to end: Instant) -> Int64 {
        end > start ? Int64(clamping: end.nanoseconds - start.nanoseconds) : 0
    }
}
