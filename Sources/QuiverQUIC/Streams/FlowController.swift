package import QuiverCore

/// The receive side of QUIC flow control (RFC 9000 §4.1–§4.2) for one stream or for the whole
/// connection: the limit advertised to the peer, the credit it has consumed, and when to send a
/// larger limit (MAX_STREAM_DATA, RFC 9000 §19.10; MAX_DATA, §19.9).
///
/// A new limit is due once the application has consumed more than half the window
/// (``shouldSendUpdate``); it is `consumed + window`. The window auto-tunes as in quiche and
/// quinn: when the previous update is less than two round trips old, the peer is consuming the
/// window faster than the round trip lets credit flow, so the window doubles, up to
/// ``maxWindow``.
package struct ReceiveFlowController: Hashable, Sendable {
    /// The current window: how far past the consumed data the limit is set.
    public private(set) var window: UInt64
    /// The largest the window may grow to by auto-tuning.
    public let maxWindow: UInt64
    /// The limit advertised to the peer (RFC 9000 §4.1): the peer may send up to this offset
    /// (stream) or this many bytes in total (connection).
    public private(set) var limit: UInt64
    /// The credit the peer has consumed: the highest offset received on a stream, or the sum
    /// of those over all streams (RFC 9000 §4.1), final sizes included (§4.5).
    public private(set) var received: UInt64 = 0
    /// The credit released by the application: bytes read, or discarded after a reset.
    public private(set) var consumed: UInt64 = 0
    /// When the limit was last raised (nil before the first update).
    public private(set) var lastUpdate: Instant?

    /// Creates a flow controller whose initial limit is `window` (the transport parameter,
    /// RFC 9000 §18.2).
    ///
    /// - Parameters:
    ///   - window: the initial window and limit.
    ///   - maxWindow: the largest window auto-tuning may reach; at least `window`.
    public init(window: UInt64, maxWindow: UInt64) {
        self.window = window
        self.maxWindow = Swift.max(window, maxWindow)
        self.limit = window
    }

    /// Records that the peer's consumed credit reached `offset` (a stream's highest received
    /// offset); lower values change nothing.
    ///
    /// - Throws: FLOW_CONTROL_ERROR when `offset` exceeds ``limit`` (RFC 9000 §4.1).
    public mutating func receive(upTo offset: UInt64) throws(QUICError) {
        guard offset <= limit else {
            throw QUICError(.flowControlError, "peer sent up to \(offset), beyond the limit \(limit)")
        }
        if offset > received { received = offset }
    }

    /// Records `count` more bytes of consumed credit (connection level: the growth of one
    /// stream's highest received offset).
    ///
    /// - Throws: FLOW_CONTROL_ERROR when the total exceeds ``limit`` (RFC 9000 §4.1).
    public mutating func addReceived(_ count: UInt64) throws(QUICError) {
        let (total, overflow) = received.addingReportingOverflow(count)
        guard !overflow else { throw QUICError(.flowControlError, "received byte count overflows") }
        try receive(upTo: total)
    }

    /// Records that the application consumed `count` more bytes (read or discarded).
    public mutating func addConsumed(_ count: UInt64) {
        consumed = Swift.min(consumed + count, received)
    }

    /// The credit the peer still has: `limit - received`.
    public var available: UInt64 { limit - received }

    /// Whether a new limit should be advertised: less than half the window remains beyond
    /// the consumed data.
    public var shouldSendUpdate: Bool { limit - consumed < window / 2 }

    /// Raises the limit to `consumed + window`, first doubling the window (up to
    /// ``maxWindow``) when the last update is less than two round trips old.
    ///
    /// - Parameters:
    ///   - now: the current time; nil skips auto-tuning and leaves ``lastUpdate`` alone (a
    ///     limit raised because a reset released credit says nothing about the peer's rate).
    ///   - rtt: the smoothed round-trip time (RFC 9002 §5.3).
    /// - Returns: the new limit, to send in MAX_DATA / MAX_STREAM_DATA.
    @discardableResult
    public mutating func update(now: Instant?, rtt: Duration) -> UInt64 {
        if let now {
            if let lastUpdate, now - lastUpdate < rtt * 2 {
                window = Swift.min(window.multipliedReportingOverflow(by: 2).overflow ? .max : window * 2, maxWindow)
            }
            lastUpdate = now
        }
        let (next, overflow) = consumed.addingReportingOverflow(window)
        limit = Swift.max(limit, Swift.min(overflow ? VarInt.max : next, VarInt.max))
        return limit
    }

    /// Grows the window to at least `size` (capped by ``maxWindow``): the connection window
    /// follows its streams' windows so that one auto-tuned stream is not held back.
    public mutating func ensureWindow(atLeast size: UInt64) {
        if size > window { window = Swift.min(size, maxWindow) }
    }
}

/// The send side of QUIC flow control (RFC 9000 §4.1) for one stream or the connection: the
/// peer's limit, the credit used, and the DATA_BLOCKED / STREAM_DATA_BLOCKED signal
/// (RFC 9000 §19.12, §19.13), sent once per limit.
package struct SendFlowController: Hashable, Sendable {
    /// The peer's limit (initial transport parameter, then MAX_DATA / MAX_STREAM_DATA).
    public private(set) var limit: UInt64
    /// The credit used: the highest stream offset sent, or its sum over streams.
    public private(set) var used: UInt64 = 0
    /// The limit for which a BLOCKED frame was last queued.
    private var blockedSignalled: UInt64?
    /// Whether a BLOCKED frame waits to be sent.
    public private(set) var isBlockedFramePending = false

    /// Creates a controller with the peer's initial limit.
    public init(limit: UInt64) {
        self.limit = limit
    }

    /// The credit left.
    public var available: UInt64 { limit - used }

    /// Applies a limit from the peer; smaller limits are ignored (RFC 9000 §4.1).
    ///
    /// - Returns: whether the limit grew.
    @discardableResult
    public mutating func raiseLimit(to newLimit: UInt64) -> Bool {
        guard newLimit > limit else { return false }
        limit = newLimit
        isBlockedFramePending = false
        return true
    }

    /// Uses `count` bytes of credit.
    ///
    /// - Precondition: `count <= available`.
    public mutating func consume(_ count: UInt64) {
        precondition(count <= available, "flow control credit exceeded")
        used += count
    }

    /// Notes that data waits for credit: when the credit is exhausted and no BLOCKED frame was
    /// queued for this limit yet, queues one (RFC 9000 §4.1: "sent once per limit").
    public mutating func markBlocked() {
        guard available == 0, blockedSignalled != limit else { return }
        blockedSignalled = limit
        isBlockedFramePending = true
    }

    /// Takes the pending BLOCKED frame's limit, if one is due.
    public mutating func takeBlockedFrame() -> UInt64? {
        guard isBlockedFramePending else { return nil }
        isBlockedFramePending = false
        return limit
    }

    /// A BLOCKED frame for `lostLimit` was lost: queue it again if still blocked at that limit.
    public mutating func onBlockedFrameLost(limit lostLimit: UInt64) {
        if lostLimit == limit, available == 0 { isBlockedFramePending = true }
    }
}
