package import QuiverCore

/// What a sent frame carried, kept so that the connection can re-frame it if the packet is
/// lost (RFC 9000 §13.3) or act on its acknowledgment — retransmit intent, not a copy of the
/// bytes: stream and crypto data stay in their send buffers and are found again by offset.
package enum SentFrameInfo: Hashable, Sendable {
    /// CRYPTO data at `offset ..< offset + length` of the packet's encryption level (§19.6).
    case crypto(offset: UInt64, length: Int)
    /// STREAM data at `offset ..< offset + length` of stream `id`, with the FIN bit (§19.8).
    case stream(id: StreamID, offset: UInt64, length: Int, fin: Bool)
    /// An ACK frame whose largest acknowledged packet was `largest`; when the packet carrying
    /// it is acknowledged, the receiver may forget ranges up to it (§13.2.4).
    case ack(largest: UInt64)
    /// A MAX_DATA frame (§19.9) with this limit; resent only while it is still the current one.
    case maxData(UInt64)
    /// A MAX_STREAM_DATA frame (§19.10); resent only while the limit is current.
    case maxStreamData(StreamID, max: UInt64)
    /// A MAX_STREAMS frame (§19.11); resent only while the limit is current.
    case maxStreams(bidirectional: Bool, max: UInt64)
    /// A RESET_STREAM frame (§19.4).
    case resetStream(StreamID, errorCode: UInt64, finalSize: UInt64)
    /// A STOP_SENDING frame (§19.5).
    case stopSending(StreamID, errorCode: UInt64)
    /// A NEW_CONNECTION_ID frame with this sequence number (§19.15).
    case newConnectionID(sequence: UInt64)
    /// A RETIRE_CONNECTION_ID frame with this sequence number (§19.16).
    case retireConnectionID(sequence: UInt64)
    /// A HANDSHAKE_DONE frame (§19.20).
    case handshakeDone
    /// A PING frame (§19.2); never retransmitted.
    case ping
    /// A NEW_TOKEN frame (§19.7).
    case newToken
    /// A DATAGRAM frame (RFC 9221 §5); never retransmitted.
    case datagram
    /// A PATH_CHALLENGE frame (§19.17); not retransmitted as is (§13.3).
    case pathChallenge
    /// A PATH_RESPONSE frame (§19.18); never retransmitted (§13.3).
    case pathResponse
    /// A DATA_BLOCKED frame (§19.12) at this limit.
    case dataBlocked(UInt64)
    /// A STREAM_DATA_BLOCKED frame (§19.13) at this limit.
    case streamDataBlocked(StreamID, limit: UInt64)
    /// A STREAMS_BLOCKED frame (§19.14) at this limit.
    case streamsBlocked(bidirectional: Bool, limit: UInt64)
    /// A path MTU probe of this datagram size (PING and PADDING, §14.4); never retransmitted,
    /// and its loss is not a congestion signal.
    case pmtuProbe(size: Int)

    /// The record of a stream-layer frame, as produced by ``StreamManager``: STREAM,
    /// RESET_STREAM, STOP_SENDING, MAX_DATA, MAX_STREAM_DATA, MAX_STREAMS and the *_BLOCKED
    /// frames. `nil` for other frames.
    public init?(streamFrame frame: Frame) {
        switch frame {
        case .stream(let id, let offset, let data, let fin): self = .stream(id: id, offset: offset, length: data.count, fin: fin)
        case .resetStream(let id, let code, let size): self = .resetStream(id, errorCode: code, finalSize: size)
        case .stopSending(let id, let code): self = .stopSending(id, errorCode: code)
        case .maxData(let max): self = .maxData(max)
        case .maxStreamData(let id, let max): self = .maxStreamData(id, max: max)
        case .maxStreams(let bidirectional, let max): self = .maxStreams(bidirectional: bidirectional, max: max)
        case .dataBlocked(let limit): self = .dataBlocked(limit)
        case .streamDataBlocked(let id, let limit): self = .streamDataBlocked(id, limit: limit)
        case .streamsBlocked(let bidirectional, let limit): self = .streamsBlocked(bidirectional: bidirectional, limit: limit)
        default: return nil
        }
    }

    /// The stream-layer control frame this records (everything ``init(streamFrame:)`` accepts
    /// except STREAM, whose data stays in the send buffer), for ``StreamManager/onFrameLost(_:)``
    /// and ``StreamManager/onFrameAcked(_:)``.
    public var streamControlFrame: Frame? {
        switch self {
        case .resetStream(let id, let code, let size): return .resetStream(id: id, errorCode: code, finalSize: size)
        case .stopSending(let id, let code): return .stopSending(id: id, errorCode: code)
        case .maxData(let max): return .maxData(max)
        case .maxStreamData(let id, let max): return .maxStreamData(id: id, max: max)
        case .maxStreams(let bidirectional, let max): return .maxStreams(bidirectional: bidirectional, max: max)
        case .dataBlocked(let limit): return .dataBlocked(limit)
        case .streamDataBlocked(let id, let limit): return .streamDataBlocked(id: id, limit: limit)
        case .streamsBlocked(let bidirectional, let limit): return .streamsBlocked(bidirectional: bidirectional, limit: limit)
        default: return nil
        }
    }
}

/// The frames of one sent packet: two kept inline, more in an array. A packet of a bulk
/// transfer carries one STREAM frame and sometimes an ACK, so recording it allocates nothing.
package struct SentFrameInfos: RandomAccessCollection, ExpressibleByArrayLiteral, Hashable, Sendable {
    private var inline: InlineArray<2, SentFrameInfo> = .init(repeating: .ping)
    private var inlineCount = 0
    private var overflow: [SentFrameInfo] = []

    /// No frames.
    package init() {}

    package init(arrayLiteral elements: SentFrameInfo...) {
        for frame in elements { append(frame) }
    }

    package var startIndex: Int { 0 }
    package var endIndex: Int { inlineCount + overflow.count }

    package subscript(position: Int) -> SentFrameInfo {
        precondition(position >= 0 && position < endIndex, "frame \(position) of \(endIndex)")
        return position < inlineCount ? inline[position] : overflow[position - inlineCount]
    }

    /// Adds a frame after the others.
    package mutating func append(_ frame: SentFrameInfo) {
        if overflow.isEmpty, inlineCount < inline.count {
            inline[inlineCount] = frame
            inlineCount += 1
        } else {
            overflow.append(frame)
        }
    }

    package static func == (lhs: SentFrameInfos, rhs: SentFrameInfos) -> Bool { lhs.elementsEqual(rhs) }

    package func hash(into hasher: inout Hasher) {
        hasher.combine(count)
        for frame in self { hasher.combine(frame) }
    }
}

/// A sent packet as loss recovery tracks it (RFC 9002 Appendix A.1.1), plus the frames it
/// carried (``SentFrameInfo``).
package struct SentPacket: Hashable, Sendable {
    /// The packet number, `packet_number`.
    public var packetNumber: UInt64
    /// When the packet was sent, `time_sent`.
    public var timeSent: Instant
    /// The bytes sent, `sent_bytes`: QUIC header, payload and AEAD tag, without UDP or IP
    /// overhead.
    public var size: Int
    /// Whether the packet is ack-eliciting, `ack_eliciting`: it contains a frame other than
    /// ACK, PADDING and CONNECTION_CLOSE (RFC 9002 §2).
    public var ackEliciting: Bool
    /// Whether the packet counts toward bytes in flight, `in_flight`: it is ack-eliciting or
    /// contains PADDING (RFC 9002 §2).
    public var inFlight: Bool
    /// The ECN codepoint of the datagram that carried it (RFC 9000 §13.4.2: validation counts
    /// the marked packets acknowledged and lost).
    public var ecn: ECNCodepoint
    /// What the packet carried, for re-framing on loss and for acting on its acknowledgment.
    public var frames: SentFrameInfos
    /// The delivery-rate sampling state recorded when it was sent (draft-ietf-ccwg-bbr
    /// §4.1.2.2); all zero unless the congestion controller samples delivery rates (BBR).
    public var delivery: DeliveryState

    /// Whether this is a path MTU probe (its loss says nothing about congestion).
    public var isPMTUProbe: Bool {
        if case .pmtuProbe = frames.first { return true }
        return false
    }

    /// Creates a sent-packet record.
    ///
    /// - Parameters:
    ///   - packetNumber: The full packet number.
    ///   - size: The packet's size in bytes (non-negative).
    ///   - ackEliciting: Whether the packet is ack-eliciting.
    ///   - inFlight: Whether the packet counts toward bytes in flight; defaults to
    ///     `ackEliciting`.
    ///   - frames: What the packet carried.
    ///   - ecn: The ECN codepoint its datagram was sent with.
    ///   - timeSent: The send time; ``LossDetection/onPacketSent(_:space:now:)`` sets it to
    ///     its `now`, so only direct users of ``SentPacketLog`` need to pass it.
    ///   - delivery: The delivery-rate sampling state at the send (``Congestion/deliveryState(sending:now:bytesInFlight:)``).
    /// - Precondition: `size >= 0`, and an ack-eliciting packet is in flight (RFC 9002 §2).
    public init(
        packetNumber: UInt64, size: Int, ackEliciting: Bool, inFlight: Bool? = nil,
        frames: SentFrameInfos = [], ecn: ECNCodepoint = .notECT, timeSent: Instant = Instant(nanoseconds: 0),
        delivery: DeliveryState = DeliveryState()
    ) {
        let inFlight = inFlight ?? ackEliciting
        precondition(size >= 0, "a packet's size cannot be negative")
        precondition(!ackEliciting || inFlight, "ack-eliciting packets are always in flight (RFC 9002 §2)")
        self.packetNumber = packetNumber
        self.timeSent = timeSent
        self.size = size
        self.ackEliciting = ackEliciting
        self.inFlight = inFlight
        self.frames = frames
        self.ecn = ecn
        self.delivery = delivery
    }

    /// The packet as the congestion controller sees it (RFC 9002 Appendix B.5).
    public var ackedInfo: AckedPacketInfo {
        AckedPacketInfo(packetNumber: packetNumber, sentTime: timeSent, bytes: size, delivery: delivery)
    }
}

/// What a sent packet records of the connection's delivery process, so that its acknowledgment
/// yields a delivery rate sample (draft-ietf-ccwg-bbr §4.1.2.1.2, "Per-packet (P) state").
///
/// Inline values only, 32 bytes: recording a packet allocates nothing. The two instants are
/// kept as microseconds before the send (the packet's own `time_sent`), saturating at about
/// 71 minutes.
package struct DeliveryState: Hashable, Sendable {
    /// `P.delivered`: bytes delivered over the connection when the packet was sent.
    public var delivered: Int
    /// `P.lost`: bytes declared lost over the connection when the packet was sent.
    public var lost: Int
    /// `P.tx_in_flight`, saturating at `UInt32.max`: bytes in flight just after the packet
    /// was sent, itself included.
    private var inFlight: UInt32
    /// `P.delivered_time` and `P.first_send_time`, in microseconds before the send.
    private var deliveredTimeOffset: UInt32
    private var firstSendTimeOffset: UInt32
    /// `P.is_app_limited`: whether the sender was application-limited at the send.
    public var isAppLimited: Bool

    /// A state of zeros: nothing delivered, nothing lost, both instants at the send.
    public init() {
        delivered = 0
        lost = 0
        inFlight = 0
        deliveredTimeOffset = 0
        firstSendTimeOffset = 0
        isAppLimited = false
    }

    /// The state of a packet sent at `sendTime`.
    ///
    /// - Parameters:
    ///   - delivered: `C.delivered` at the send.
    ///   - deliveredTime: `C.delivered_time` at the send (not after it).
    ///   - firstSendTime: `C.first_send_time` at the send (not after it).
    ///   - sendTime: The send time.
    ///   - lost: `C.lost` at the send.
    ///   - txInFlight: Bytes in flight with the packet counted.
    ///   - isAppLimited: Whether the sender is application-limited.
    public init(
        delivered: Int = 0, deliveredTime: Instant? = nil, firstSendTime: Instant? = nil, sendTime: Instant = Instant(nanoseconds: 0),
        lost: Int = 0, txInFlight: Int = 0, isAppLimited: Bool = false
    ) {
        self.delivered = delivered
        self.lost = lost
        inFlight = UInt32(clamping: txInFlight)
        deliveredTimeOffset = Self.offset(of: deliveredTime ?? sendTime, before: sendTime)
        firstSendTimeOffset = Self.offset(of: firstSendTime ?? sendTime, before: sendTime)
        self.isAppLimited = isAppLimited
    }

    /// `P.tx_in_flight` in bytes.
    public var txInFlight: Int { Int(inFlight) }

    /// `P.delivered_time`, for a packet sent at `sendTime`.
    public func deliveredTime(sentAt sendTime: Instant) -> Instant { sendTime + .microseconds(-Int64(deliveredTimeOffset)) }

    /// `P.first_send_time`, for a packet sent at `sendTime`.
    public func firstSendTime(sentAt sendTime: Instant) -> Instant { sendTime + .microseconds(-Int64(firstSendTimeOffset)) }

    private static func offset(of time: Instant, before sendTime: Instant) -> UInt32 {
        sendTime > time ? UInt32(clamping: (sendTime.nanoseconds - time.nanoseconds) / 1000) : 0
    }
}
