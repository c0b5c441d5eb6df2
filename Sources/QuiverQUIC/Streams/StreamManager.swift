package import QuiverCore

/// All the streams of one connection (RFC 9000 §2–§4): opening and accepting streams under
/// the stream-count limits (§4.6), connection-level flow control on both sides (§4.1), the
/// control frames streams need, and fair scheduling of stream data.
///
/// Sans-I/O and a value type: the connection owns one and drives it with four kinds of call.
///
/// - **Peer frames**: ``handle(_:)`` for STREAM, RESET_STREAM, STOP_SENDING, MAX_DATA,
///   MAX_STREAM_DATA, MAX_STREAMS, DATA_BLOCKED, STREAM_DATA_BLOCKED and STREAMS_BLOCKED.
///   A thrown ``QUICError`` closes the connection with its code.
/// - **Application commands**: ``openStream(_:)``, ``acceptStream()``, ``write(_:to:)``,
///   ``finish(_:)``, ``reset(_:errorCode:)``, ``read(from:maxBytes:at:)``,
///   ``stopSending(_:errorCode:)``.
/// - **Output**, pulled when building a packet: first ``pendingFrames()`` (MAX_DATA,
///   MAX_STREAM_DATA, MAX_STREAMS, the BLOCKED frames, RESET_STREAM, STOP_SENDING), then
///   ``nextStreamFrame(maxLength:)`` until it returns nil or the packet is full.
/// - **Fate of frames sent**: ``onFrameAcked(_:)`` and ``onFrameLost(_:)`` (or, for STREAM
///   frames recorded without their data, ``onStreamDataAcked(_:offset:length:fin:)`` and
///   ``onStreamDataLost(_:offset:length:fin:)``). Data stays in the send buffers until
///   acknowledged, so a loss is repaired by re-framing (RFC 9000 §13.3).
///
/// Streams close — and are forgotten — once both parts are terminal; closing a peer-opened
/// stream gives the peer credit for a new one (MAX_STREAMS), keeping the number it may have
/// open at the configured incoming limit (the local `initial_max_streams_*`).
/// Limits on the receive windows' auto-tuning, which are not transport parameters
/// (``QUICConfiguration/streamWindows``).
public struct StreamWindowLimits: Hashable, Sendable {
    /// The largest a stream's receive window may auto-tune to.
    public var maxStreamWindow: UInt64
    /// The largest the connection's receive window may auto-tune to.
    public var maxConnectionWindow: UInt64

    /// Creates limits; the defaults are quiche's (16 MiB per stream, 24 MiB per connection).
    public init(maxStreamWindow: UInt64 = 16 << 20, maxConnectionWindow: UInt64 = 24 << 20) {
        self.maxStreamWindow = maxStreamWindow
        self.maxConnectionWindow = maxConnectionWindow
    }
}

package struct StreamManager: Sendable {
    package typealias Configuration = StreamWindowLimits

    /// The initial_max_stream_data_* transport parameters of one side (RFC 9000 §18.2).
    struct StreamWindows: Sendable {
        var bidiLocal: UInt64
        var bidiRemote: UInt64
        var uni: UInt64

        init(_ parameters: TransportParameters) {
            bidiLocal = parameters.initialMaxStreamDataBidiLocal
            bidiRemote = parameters.initialMaxStreamDataBidiRemote
            uni = parameters.initialMaxStreamDataUni
        }
    }

    /// Streams we open, limited by the peer's MAX_STREAMS.
    struct OutgoingLimit: Sendable {
        var limit: UInt64
        var opened: UInt64 = 0
        var blockedSignalled: UInt64?
        var isBlockedPending = false
    }

    /// Streams the peer opens, limited by our MAX_STREAMS.
    struct IncomingLimit: Sendable {
        var concurrency: UInt64
        var advertised: UInt64
        var opened: UInt64 = 0
        var closed: UInt64 = 0
        var isUpdatePending = false

        /// The limit that keeps `concurrency` streams available to the peer.
        var target: UInt64 { Swift.min(closed + concurrency, Frame.maxStreamLimit) }
    }

    /// A pair of values, one per stream direction.
    struct PerDirection<Value: Sendable>: Sendable {
        var bidirectional: Value
        var unidirectional: Value

        subscript(_ direction: StreamID.Direction) -> Value {
            get { direction == .bidirectional ? bidirectional : unidirectional }
            set {
                if direction == .bidirectional { bidirectional = newValue } else { unidirectional = newValue }
            }
        }
    }

    /// An array used as a FIFO queue with O(1) amortised removal from the front, plus a
    /// membership set so an ID is queued at most once.
    struct IDQueue: Sendable {
        private var items: [StreamID] = []
        private var head = 0
        private var members: Set<StreamID> = []

        var isEmpty: Bool { head == items.count }
        var count: Int { items.count - head }

        func contains(_ id: StreamID) -> Bool { members.contains(id) }

        mutating func append(_ id: StreamID) {
            guard members.insert(id).inserted else { return }
            items.append(id)
        }

        var first: StreamID? { head < items.count ? items[head] : nil }

        mutating func popFirst() -> StreamID? {
            guard head < items.count else { return nil }
            let id = items[head]
            advance()
            members.remove(id)
            return id
        }

        /// Moves the first ID to the back (its turn taken, it stays queued): no set work.
        mutating func rotateFirst() {
            guard head < items.count else { return }
            items.append(items[head])
            advance()
        }

        private mutating func advance() {
            head += 1
            if head == items.count {
                items.removeAll(keepingCapacity: true)
                head = 0
            } else if head >= 64, head * 2 >= items.count {
                items.removeFirst(head)
                head = 0
            }
        }

        /// Puts IDs back at the front, in the given order.
        mutating func prepend(_ ids: [StreamID]) {
            guard !ids.isEmpty else { return }  // the common case, once per STREAM frame: no array work
            let fresh = ids.filter { members.insert($0).inserted }
            items.insert(contentsOf: fresh, at: head)
        }

        mutating func removeAll() -> [StreamID] {
            let all = Array(items[head...])
            items = []
            head = 0
            members = []
            return all
        }
    }

    /// Our role: decides which stream IDs are ours (RFC 9000 §2.1).
    public let role: Role
    /// The window limits.
    public let configuration: Configuration
    /// The smoothed round-trip time used for window auto-tuning; the connection keeps it
    /// current (RFC 9002 §5.3). Starts at the initial RTT of RFC 9002 §6.2.2.
    public var roundTripTime: Duration = .milliseconds(333)
    /// The streams forgotten (all parts terminal) since the connection last took them, for qlog's
    /// stream_state_updated; `nil` (without qlog) records nothing.
    var closedStreams: [StreamID]?

    /// The initial stream windows of our transport parameters and of the peer's: all that
    /// streams opened later need of them (not the whole parameters, a few hundred bytes each).
    private var localWindows: StreamWindows
    private var peerWindows: StreamWindows
    /// The sending parts of the open streams, and their receiving parts (RFC 9000 §3): a
    /// bidirectional stream is in both tables, a unidirectional one only in the table of its
    /// half, so it does not pay for the other half's room (a table entry holding both was 392
    /// bytes).
    private var sends = StreamTable<SendStream>()
    private var receives = StreamTable<ReceiveStream>()
    private var outgoing: PerDirection<OutgoingLimit>
    private var incoming: PerDirection<IncomingLimit>
    /// Connection-level receive window (MAX_DATA we send).
    public private(set) var connectionReceive: ReceiveFlowController
    /// Connection-level send credit (MAX_DATA the peer sends).
    public private(set) var connectionSend: SendFlowController
    private var isMaxDataPending = false
    private var acceptQueue = IDQueue()
    private var sendQueue = IDQueue()
    private var connectionBlocked = IDQueue()
    private var controlQueue = IDQueue()

    /// Creates the stream state of a connection.
    ///
    /// - Parameters:
    ///   - role: our role.
    ///   - localParameters: the transport parameters we sent: our receive windows and the
    ///     number of concurrent streams the peer may open (RFC 9000 §18.2).
    ///   - peerParameters: the peer's transport parameters: our send credit and how many
    ///     streams we may open. Use ``updatePeerParameters(_:)`` if they arrive later.
    ///   - configuration: auto-tuning limits.
    public init(role: Role, localParameters: TransportParameters, peerParameters: TransportParameters,
                configuration: Configuration = Configuration()) {
        self.role = role
        self.configuration = configuration
        self.localWindows = StreamWindows(localParameters)
        self.peerWindows = StreamWindows(peerParameters)
        let cap = Frame.maxStreamLimit
        self.outgoing = PerDirection(
            bidirectional: OutgoingLimit(limit: Swift.min(peerParameters.initialMaxStreamsBidi, cap)),
            unidirectional: OutgoingLimit(limit: Swift.min(peerParameters.initialMaxStreamsUni, cap)))
        let bidi = Swift.min(localParameters.initialMaxStreamsBidi, cap)
        let uni = Swift.min(localParameters.initialMaxStreamsUni, cap)
        self.incoming = PerDirection(
            bidirectional: IncomingLimit(concurrency: bidi, advertised: bidi),
            unidirectional: IncomingLimit(concurrency: uni, advertised: uni))
        self.connectionReceive = ReceiveFlowController(window: localParameters.initialMaxData,
                                                       maxWindow: configuration.maxConnectionWindow)
        self.connectionSend = SendFlowController(limit: peerParameters.initialMaxData)
    }

    /// Applies the peer's transport parameters learnt after ``init(role:localParameters:peerParameters:configuration:)``
    /// (a client before the handshake completes). Limits only grow (RFC 9000 §7.4.1).
    public mutating func updatePeerParameters(_ parameters: TransportParameters) {
        peerWindows = StreamWindows(parameters)
        connectionSend.raiseLimit(to: parameters.initialMaxData)
        for direction in [StreamID.Direction.bidirectional, .unidirectional] {
            let limit = Swift.min(direction == .bidirectional ? parameters.initialMaxStreamsBidi : parameters.initialMaxStreamsUni,
                                  Frame.maxStreamLimit)
            if limit > outgoing[direction].limit {
                outgoing[direction].limit = limit
                outgoing[direction].isBlockedPending = false
            }
        }
        for id in sends.keys.sorted() {
            let window = sendWindow(for: id)
            withSendStream(id) { $0.onMaxStreamData(window) }
            scheduleSend(id)
        }
    }

    // MARK: - Queries

    /// The number of streams not yet closed.
    public var streamCount: Int { sends.count + receives.keys.count { $0.direction == .unidirectional } }

    /// The IDs of the streams not yet closed, in ascending order.
    public var streamIDs: [StreamID] { Set(sends.keys).union(receives.keys).sorted() }

    /// Whether `id` is open (not yet closed and forgotten).
    public func contains(_ id: StreamID) -> Bool { sends.contains(id) || receives.contains(id) }

    /// Whether everything written on every stream was acknowledged (the FIN too, where one was
    /// written); a reset stream has nothing left to deliver.
    public var isAllSentDataAcknowledged: Bool {
        sends.allSatisfy { stream in
            switch stream.state {
            case .resetSent, .resetRecvd, .dataRecvd: true
            case .ready, .send, .dataSent: stream.buffer.isAllDataAcknowledged && (!stream.buffer.isFinished || stream.buffer.isFinAcknowledged)
            }
        }
    }

    /// The sending part of `id`, if it has one and is open.
    public func sendStream(_ id: StreamID) -> SendStream? { sends[id] }

    /// The receiving part of `id`, if it has one and is open.
    public func receiveStream(_ id: StreamID) -> ReceiveStream? { receives[id] }

    /// The number of streams of `direction` we may still open under the peer's limit.
    public func availableOutgoingStreams(_ direction: StreamID.Direction) -> UInt64 {
        outgoing[direction].limit - outgoing[direction].opened
    }

    /// The stream limit we last advertised to the peer for `direction` (RFC 9000 §4.6).
    public func advertisedIncomingLimit(_ direction: StreamID.Direction) -> UInt64 {
        incoming[direction].advertised
    }

    /// Whether ``pendingFrames()`` has something to return.
    public var hasPendingFrames: Bool {
        !controlQueue.isEmpty || isMaxDataPending || connectionSend.isBlockedFramePending
            || incoming.bidirectional.isUpdatePending || incoming.unidirectional.isUpdatePending
            || outgoing.bidirectional.isBlockedPending || outgoing.unidirectional.isBlockedPending
    }

    /// Whether some stream may have data ready for ``nextStreamFrame(maxLength:)``.
    public var hasStreamDataToSend: Bool { !sendQueue.isEmpty }

    // MARK: - Application commands

    /// Opens a stream under the peer's limit (RFC 9000 §4.6).
    ///
    /// - Returns: the new stream's ID, or nil when the peer's limit is reached; then a
    ///   STREAMS_BLOCKED frame (RFC 9000 §19.14) is queued, once per limit.
    public mutating func openStream(_ direction: StreamID.Direction) -> StreamID? {
        var limits = outgoing[direction]
        defer { outgoing[direction] = limits }
        guard limits.opened < limits.limit else {
            if limits.blockedSignalled != limits.limit {
                limits.blockedSignalled = limits.limit
                limits.isBlockedPending = true
            }
            return nil
        }
        let id = StreamID(index: limits.opened, initiator: role, direction: direction)
        limits.opened += 1
        open(id)
        return id
    }

    /// Takes the next stream the peer opened (in order of stream ID within each type, and of
    /// arrival across types), or nil.
    public mutating func acceptStream() -> StreamID? {
        while let id = acceptQueue.popFirst() {
            if contains(id) { return id }
        }
        return nil
    }

    /// Queues data on a stream.
    ///
    /// - Throws: ``StreamError`` when the stream is unknown, receive-only, finished or reset.
    public mutating func write(_ bytes: [UInt8], to id: StreamID) throws(StreamError) { try write(bytes[...], to: id) }

    /// Queues a slice on a stream, kept (sharing its storage) until acknowledged.
    public mutating func write(_ bytes: ArraySlice<UInt8>, to id: StreamID) throws(StreamError) {
        try requireSend(id)
        try withSendStream(id) { (send: inout SendStream) throws(StreamError) in try send.write(bytes) }
        scheduleSend(id)
    }

    /// Ends a stream after the data written so far (the FIN, RFC 9000 §19.8).
    ///
    /// - Throws: ``StreamError`` when the stream is unknown, receive-only or reset.
    public mutating func finish(_ id: StreamID) throws(StreamError) {
        try requireSend(id)
        try withSendStream(id) { (send: inout SendStream) throws(StreamError) in try send.finish() }
        scheduleSend(id)
    }

    /// Abandons the sending part of a stream with RESET_STREAM (RFC 9000 §3.1, §19.4).
    ///
    /// - Throws: ``StreamError`` when the stream is unknown or receive-only.
    public mutating func reset(_ id: StreamID, errorCode: UInt64) throws(StreamError) {
        try requireSend(id)
        if withSendStream(id, { $0.reset(errorCode: errorCode) }) == true { controlQueue.append(id) }
    }

    /// Abandons the receiving part of a stream with STOP_SENDING (RFC 9000 §3.5, §19.5).
    ///
    /// - Throws: ``StreamError`` when the stream is unknown or send-only.
    public mutating func stopSending(_ id: StreamID, errorCode: UInt64) throws(StreamError) {
        try requireReceive(id)
        let released = withReceiveStream(id, { $0.releasedOffset }) ?? 0
        if withReceiveStream(id, { $0.stopSending(errorCode: errorCode) }) == true { controlQueue.append(id) }
        releaseConnectionCredit(id, releasedBefore: released, now: nil)
        closeIfDone(id)
    }

    /// Reads up to `maxBytes` in-order bytes from a stream, updating flow control (and queuing
    /// MAX_STREAM_DATA / MAX_DATA when more than half a window was consumed).
    ///
    /// - Parameters:
    ///   - id: the stream.
    ///   - maxBytes: the most bytes to return.
    ///   - now: the current time, for window auto-tuning.
    /// - Returns: the bytes (empty when none are ready) and whether the end of the stream was
    ///   reached; a stream whose end was read closes once its sending part is done too.
    /// - Throws: ``StreamError/resetByPeer(errorCode:)`` when the peer reset the stream;
    ///   ``StreamError`` when it is unknown, send-only or stopped.
    public mutating func read(from id: StreamID, maxBytes: Int, at now: Instant) throws(StreamError) -> (bytes: [UInt8], fin: Bool) {
        try requireReceive(id)
        let released = withReceiveStream(id, { $0.releasedOffset }) ?? 0
        let window = withReceiveStream(id, { $0.flow.window }) ?? 0
        defer { closeIfDone(id) }
        let rtt = roundTripTime
        guard let result = try withReceiveStream(id, { (receive: inout ReceiveStream) throws(StreamError) in
            try receive.read(maxBytes: maxBytes, now: now, rtt: rtt)
        }) else {
            throw StreamError.unknownStream(id)
        }
        if let (hasPendingControlFrames, newWindow) = withReceiveStream(id, { ($0.hasPendingControlFrames, $0.flow.window) }) {
            if hasPendingControlFrames { controlQueue.append(id) }
            if newWindow > window {
                // Keep the connection window ahead of an auto-tuned stream (quiche: × 1.5).
                connectionReceive.ensureWindow(atLeast: newWindow + newWindow / 2)
            }
        }
        releaseConnectionCredit(id, releasedBefore: released, now: now)
        return result
    }

    private func requireSend(_ id: StreamID) throws(StreamError) {
        guard contains(id) else {
            throw id.canSend(as: role) ? StreamError.unknownStream(id) : StreamError.notSendable(id)
        }
        guard sends.contains(id) else { throw StreamError.notSendable(id) }
    }

    private func requireReceive(_ id: StreamID) throws(StreamError) {
        guard contains(id) else {
            throw id.canReceive(as: role) ? StreamError.unknownStream(id) : StreamError.notReceivable(id)
        }
        guard receives.contains(id) else { throw StreamError.notReceivable(id) }
    }

    // MARK: - Peer frames

    /// Handles a stream-related frame from the peer (RFC 9000 §19.4–§19.14).
    ///
    /// - Throws: STREAM_STATE_ERROR for a frame on a part of a stream that cannot exist (data
    ///   on a send-only stream, MAX_STREAM_DATA or STOP_SENDING on a receive-only stream, any
    ///   frame on a locally-initiated stream not yet opened); STREAM_LIMIT_ERROR for a stream
    ///   beyond our limit (§4.6); FLOW_CONTROL_ERROR beyond a stream or connection limit
    ///   (§4.1); FINAL_SIZE_ERROR (§4.5); FRAME_ENCODING_ERROR for a stream limit above 2^60
    ///   (§19.11, §19.14); INTERNAL_ERROR for a frame that is not stream-related.
    public mutating func handle(_ frame: Frame) throws(QUICError) {
        do {
            try dispatch(frame)
        } catch var error {
            if error.frameType == nil { error.frameType = frame.type.rawValue }
            throw error
        }
    }

    private mutating func dispatch(_ frame: Frame) throws(QUICError) {
        switch frame {
        case .stream(let id, let offset, let data, let fin):
            guard try resolvePeerFrame(on: id, receivingPart: true) else { return }
            let (received, released) = try receive(on: id) { (receive: inout ReceiveStream) throws(QUICError) in
                try receive.handleStream(offset: offset, data: data, fin: fin)
            }
            try connectionReceive.addReceived(received)
            releaseConnectionCredit(id, releasedBefore: released, now: nil)
            closeIfDone(id)

        case .resetStream(let id, let errorCode, let finalSize):
            guard try resolvePeerFrame(on: id, receivingPart: true) else { return }
            let (received, released) = try receive(on: id) { (receive: inout ReceiveStream) throws(QUICError) in
                try receive.handleReset(errorCode: errorCode, finalSize: finalSize)
            }
            try connectionReceive.addReceived(received)
            releaseConnectionCredit(id, releasedBefore: released, now: nil)
            closeIfDone(id)

        case .stopSending(let id, let errorCode):
            guard try resolvePeerFrame(on: id, receivingPart: false) else { return }
            if withSendStream(id, { $0.onStopSending(errorCode: errorCode) }) == true { controlQueue.append(id) }

        case .maxData(let maximum):
            if connectionSend.raiseLimit(to: maximum) {
                for id in connectionBlocked.removeAll() { scheduleSend(id) }
            }

        case .maxStreamData(let id, let maximum):
            guard try resolvePeerFrame(on: id, receivingPart: false) else { return }
            if withSendStream(id, { $0.onMaxStreamData(maximum) }) == true { scheduleSend(id) }

        case .maxStreams(let bidirectional, let maximum):
            guard maximum <= Frame.maxStreamLimit else {
                throw QUICError(.frameEncodingError, "MAX_STREAMS \(maximum) exceeds 2^60")
            }
            let direction: StreamID.Direction = bidirectional ? .bidirectional : .unidirectional
            if maximum > outgoing[direction].limit {
                outgoing[direction].limit = maximum
                outgoing[direction].isBlockedPending = false
            }

        case .dataBlocked:
            // Informational (RFC 9000 §19.12): credit is granted as the application reads.
            break

        case .streamDataBlocked(let id, _):
            _ = try resolvePeerFrame(on: id, receivingPart: true)

        case .streamsBlocked(_, let limit):
            guard limit <= Frame.maxStreamLimit else {
                throw QUICError(.frameEncodingError, "STREAMS_BLOCKED \(limit) exceeds 2^60")
            }

        default:
            throw QUICError(.internalError, "\(frame.type) is not a stream frame")
        }
    }

    /// Checks that a peer frame may refer to `id` and opens peer streams it implies
    /// (RFC 9000 §3.2: opening stream N opens every lower-numbered stream of its type).
    ///
    /// - Parameter receivingPart: whether the frame concerns our receiving part (STREAM,
    ///   RESET_STREAM, STREAM_DATA_BLOCKED) or our sending part (MAX_STREAM_DATA, STOP_SENDING).
    /// - Returns: whether the stream is open; false when it was closed already (the frame is
    ///   then ignored).
    private mutating func resolvePeerFrame(on id: StreamID, receivingPart: Bool) throws(QUICError) -> Bool {
        if receivingPart, !id.canReceive(as: role) {
            throw QUICError(.streamStateError, "\(id) is send-only")
        }
        if !receivingPart, !id.canSend(as: role) {
            throw QUICError(.streamStateError, "\(id) is receive-only")
        }
        let direction = id.direction
        if id.initiator == role {
            guard id.index < outgoing[direction].opened else {
                throw QUICError(.streamStateError, "\(id) has not been opened")
            }
        } else {
            guard id.index < incoming[direction].advertised else {
                throw QUICError(.streamLimitError, "\(id) exceeds the stream limit \(incoming[direction].advertised)")
            }
            while incoming[direction].opened <= id.index {
                let opened = StreamID(index: incoming[direction].opened, initiator: role.peer, direction: direction)
                incoming[direction].opened += 1
                open(opened)
                acceptQueue.append(opened)
            }
        }
        return contains(id)
    }

    // MARK: - Output

    /// Takes the control frames due: RESET_STREAM, STOP_SENDING, MAX_STREAM_DATA and
    /// STREAM_DATA_BLOCKED per stream, then MAX_DATA, DATA_BLOCKED, MAX_STREAMS and
    /// STREAMS_BLOCKED. Each is returned once; report losses with ``onFrameLost(_:)``.
    public mutating func pendingFrames() -> [Frame] {
        var frames: [Frame] = []
        while let id = controlQueue.popFirst() {
            withSendStream(id) { $0.takeControlFrames(into: &frames) }
            withReceiveStream(id) { $0.takeControlFrames(into: &frames) }
        }
        if isMaxDataPending {
            isMaxDataPending = false
            frames.append(.maxData(connectionReceive.limit))
        }
        if let limit = connectionSend.takeBlockedFrame() { frames.append(.dataBlocked(limit)) }
        for direction in [StreamID.Direction.bidirectional, .unidirectional] {
            let bidirectional = direction == .bidirectional
            if incoming[direction].isUpdatePending {
                incoming[direction].isUpdatePending = false
                let target = incoming[direction].target
                if target > incoming[direction].advertised { incoming[direction].advertised = target }
                frames.append(.maxStreams(bidirectional: bidirectional, max: incoming[direction].advertised))
            }
            if outgoing[direction].isBlockedPending {
                outgoing[direction].isBlockedPending = false
                frames.append(.streamsBlocked(bidirectional: bidirectional, limit: outgoing[direction].limit))
            }
        }
        return frames
    }

    /// Builds the next STREAM frame, at most `maxLength` bytes encoded, taking streams in
    /// round-robin order (each stream with data sends one frame per turn) within stream and
    /// connection credit. Retransmissions of lost data come before new data on each stream and
    /// need no credit. Streams that run out of credit queue STREAM_DATA_BLOCKED /
    /// DATA_BLOCKED (once per limit) for ``pendingFrames()``.
    ///
    /// - Returns: the frame, or nil when no stream can send or nothing fits in `maxLength`.
    public mutating func nextStreamFrame(maxLength: Int) -> Frame? {
        takeFromNextStream { $0.nextFrame(maxLength: maxLength, connectionCredit: $1) }
    }

    /// ``nextStreamFrame(maxLength:)`` encoded straight into `writer`; returns what the frame
    /// carried.
    mutating func encodeNextStreamFrame(into writer: inout ByteWriter, maxLength: Int) -> SentFrameInfo? {
        takeFromNextStream { $0.encodeNextFrame(into: &writer, maxLength: maxLength, connectionCredit: $1) }
    }

    /// The round-robin turn of ``nextStreamFrame(maxLength:)``: `take` builds the frame from
    /// the stream whose turn it is (given the connection credit), in place.
    ///
    /// A stream that sent and is still ready goes to the back of the queue without leaving it,
    /// and its sendability after the frame is taken in the same in-place access: per STREAM
    /// frame no dictionary lookup, set update or copy of the stream beyond the one access.
    private mutating func takeFromNextStream<Result>(_ take: (inout SendStream, UInt64) -> Result?) -> Result? {
        var skipped: [StreamID] = []
        var attempts = sendQueue.count
        while attempts > 0, let id = sendQueue.first {
            attempts -= 1
            let credit = connectionSend.available
            let attempt: (before: SendStream.Sendability, Result?, consumed: UInt64, after: SendStream.Sendability)?
            attempt = withSendStream(id) { send in
                let sendability = send.sendability(connectionCredit: credit)
                guard sendability == .ready else { return (sendability, nil, 0, sendability) }
                let before = send.buffer.unsentOffset
                guard let result = take(&send, credit) else { return (sendability, nil, 0, sendability) }
                let consumed = send.buffer.unsentOffset - before
                return (sendability, result, consumed, send.sendability(connectionCredit: credit - consumed))
            }
            guard let (sendability, result, consumed, after) = attempt else {
                _ = sendQueue.popFirst()  // the stream is gone
                continue
            }
            guard sendability == .ready else {
                _ = sendQueue.popFirst()
                classify(id, sendability)
                continue
            }
            guard let result else {
                _ = sendQueue.popFirst()
                skipped.append(id)  // does not fit: keeps its turn
                continue
            }
            connectionSend.consume(consumed)
            if after == .ready {
                sendQueue.rotateFirst()
            } else {
                _ = sendQueue.popFirst()
                classify(id, after)
            }
            sendQueue.prepend(skipped)
            return result
        }
        sendQueue.prepend(skipped)
        return nil
    }

    /// Runs `body` on the sending part of stream `id` in place, if the stream has one. Every
    /// change to a stream goes through here or ``withReceiveStream(_:_:)``, in place
    /// (`sends[id]?.onAcked(…)` would copy the stream out and back).
    @discardableResult
    private mutating func withSendStream<Result, Failure: Error>(
        _ id: StreamID, _ body: (inout SendStream) throws(Failure) -> Result
    ) throws(Failure) -> Result? {
        try sends.withValue(id, body)
    }

    /// ``withSendStream(_:_:)`` for the receiving part.
    @discardableResult
    private mutating func withReceiveStream<Result, Failure: Error>(
        _ id: StreamID, _ body: (inout ReceiveStream) throws(Failure) -> Result
    ) throws(Failure) -> Result? {
        try receives.withValue(id, body)
    }

    /// Applies a peer frame to the receiving part of stream `id`, in one lookup.
    ///
    /// - Returns: how many new bytes of flow-control credit the frame consumed, and the
    ///   stream's released offset before it (for ``releaseConnectionCredit(_:releasedBefore:now:)``).
    private mutating func receive(
        on id: StreamID, _ body: (inout ReceiveStream) throws(QUICError) -> Void
    ) throws(QUICError) -> (received: UInt64, releasedBefore: UInt64) {
        try withReceiveStream(id) { (receive: inout ReceiveStream) throws(QUICError) in
            let received = receive.receivedOffset
            let released = receive.releasedOffset
            try body(&receive)
            return (receive.receivedOffset - received, released)
        } ?? (0, 0)
    }

    /// Puts a stream where its sendability says: the round-robin queue, or waiting for
    /// stream credit (STREAM_DATA_BLOCKED) or connection credit (DATA_BLOCKED).
    private mutating func scheduleSend(_ id: StreamID) {
        let credit = connectionSend.available
        guard let sendability = withSendStream(id, { $0.sendability(connectionCredit: credit) }) else { return }
        classify(id, sendability)
    }

    private mutating func classify(_ id: StreamID, _ sendability: SendStream.Sendability) {
        switch sendability {
        case .ready:
            sendQueue.append(id)
        case .blockedByStream:
            withSendStream(id) { $0.markBlockedIfNeeded() }
            if withSendStream(id, { $0.hasPendingControlFrames }) == true { controlQueue.append(id) }
        case .blockedByConnection:
            connectionBlocked.append(id)
            connectionSend.markBlocked()
        case .idle:
            break
        }
    }

    // MARK: - Fate of frames sent

    /// A frame returned by ``pendingFrames()`` or ``nextStreamFrame(maxLength:)`` was
    /// acknowledged. Only STREAM and RESET_STREAM acknowledgements change state.
    public mutating func onFrameAcked(_ frame: Frame) {
        switch frame {
        case .stream(let id, let offset, let data, let fin):
            onStreamDataAcked(id, offset: offset, length: data.count, fin: fin)
        case .resetStream(let id, _, _):
            withSendStream(id) { $0.onResetAcked() }
            closeIfDone(id)
        default:
            break
        }
    }

    /// A frame returned by ``pendingFrames()`` or ``nextStreamFrame(maxLength:)`` was declared
    /// lost: its information is queued again if still current (RFC 9000 §13.3).
    public mutating func onFrameLost(_ frame: Frame) {
        switch frame {
        case .stream(let id, let offset, let data, let fin):
            onStreamDataLost(id, offset: offset, length: data.count, fin: fin)
        case .resetStream(let id, _, _):
            withSendStream(id) { $0.onResetLost() }
            if withSendStream(id, { $0.hasPendingControlFrames }) == true { controlQueue.append(id) }
        case .stopSending(let id, _):
            withReceiveStream(id) { $0.onStopSendingLost() }
            if withReceiveStream(id, { $0.hasPendingControlFrames }) == true { controlQueue.append(id) }
        case .maxStreamData(let id, let maximum):
            withReceiveStream(id) { $0.onMaxStreamDataLost(maximum) }
            if withReceiveStream(id, { $0.hasPendingControlFrames }) == true { controlQueue.append(id) }
        case .streamDataBlocked(let id, let limit):
            withSendStream(id) { $0.onBlockedLost(limit: limit) }
            if withSendStream(id, { $0.hasPendingControlFrames }) == true { controlQueue.append(id) }
        case .maxData(let maximum):
            if maximum == connectionReceive.limit { isMaxDataPending = true }
        case .dataBlocked(let limit):
            connectionSend.onBlockedFrameLost(limit: limit)
        case .maxStreams(let bidirectional, let maximum):
            let direction: StreamID.Direction = bidirectional ? .bidirectional : .unidirectional
            if maximum == incoming[direction].advertised { incoming[direction].isUpdatePending = true }
        case .streamsBlocked(let bidirectional, let limit):
            let direction: StreamID.Direction = bidirectional ? .bidirectional : .unidirectional
            if limit == outgoing[direction].limit, outgoing[direction].opened == limit {
                outgoing[direction].isBlockedPending = true
            }
        default:
            break
        }
    }

    /// STREAM data sent earlier was acknowledged (retransmit intent: the caller may record
    /// just the range).
    public mutating func onStreamDataAcked(_ id: StreamID, offset: UInt64, length: Int, fin: Bool) {
        let terminal = withSendStream(id) { (send: inout SendStream) in
            send.onAcked(offset: offset, length: length, fin: fin)
            return send.isTerminal
        }
        // Only an acknowledgment that ends the sending part can end the stream.
        if terminal == true { closeIfDone(id) }
    }

    /// STREAM data sent earlier was lost: the unacknowledged bytes will be sent again.
    public mutating func onStreamDataLost(_ id: StreamID, offset: UInt64, length: Int, fin: Bool) {
        withSendStream(id) { $0.onLost(offset: offset, length: length, fin: fin) }
        scheduleSend(id)
    }

    // MARK: - Internals

    private func sendWindow(for id: StreamID) -> UInt64 {
        if id.direction == .unidirectional { return peerWindows.uni }
        // The peer's parameters name streams from its own point of view.
        return id.initiator == role ? peerWindows.bidiRemote : peerWindows.bidiLocal
    }

    private func receiveWindow(for id: StreamID) -> UInt64 {
        if id.direction == .unidirectional { return localWindows.uni }
        return id.initiator == role ? localWindows.bidiLocal : localWindows.bidiRemote
    }

    /// Adds the parts of a new stream `id`.
    private mutating func open(_ id: StreamID) {
        if id.canSend(as: role) { sends[id] = SendStream(id: id, maxStreamData: sendWindow(for: id)) }
        if id.canReceive(as: role) {
            receives[id] = ReceiveStream(id: id, window: receiveWindow(for: id), maxWindow: configuration.maxStreamWindow)
        }
    }

    /// Gives the connection window the credit a stream released since `releasedBefore`, and
    /// queues MAX_DATA when more than half the window is consumed.
    private mutating func releaseConnectionCredit(_ id: StreamID, releasedBefore: UInt64, now: Instant?) {
        let released = withReceiveStream(id, { $0.releasedOffset }) ?? releasedBefore
        if released > releasedBefore { connectionReceive.addConsumed(released - releasedBefore) }
        if connectionReceive.shouldSendUpdate {
            connectionReceive.update(now: now, rtt: roundTripTime)
            isMaxDataPending = true
        }
    }

    /// Forgets a stream whose parts are all terminal; a peer-opened one gives the peer credit
    /// for another stream (MAX_STREAMS, RFC 9000 §4.6).
    private mutating func closeIfDone(_ id: StreamID) {
        guard contains(id), withSendStream(id, { $0.isTerminal }) ?? true, withReceiveStream(id, { $0.isTerminal }) ?? true else { return }
        sends[id] = nil
        receives[id] = nil
        closedStreams?.append(id)
        if id.initiator != role {
            incoming[id.direction].closed += 1
            if incoming[id.direction].target > incoming[id.direction].advertised {
                incoming[id.direction].isUpdatePending = true
            }
        }
    }
}
