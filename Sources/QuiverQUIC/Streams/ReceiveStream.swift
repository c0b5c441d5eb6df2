package import QuiverCore

/// The receiving part of a stream: the state machine of RFC 9000 §3.2 over a
/// ``ReceiveBuffer`` and the stream-level receive window (§4.1).
///
/// ```
///       STREAM + FIN          all data received        app read all data
///  Recv ─────────────▶ Size Known ───────────────▶ Data Recvd ─────────────▶ Data Read
///    │                     │
///    │  RESET_STREAM       │                                app read the reset
///    └─────────────────────┴──────────────────▶ Reset Recvd ─────────────────▶ Reset Read
/// ```
///
/// Peer frames (``handleStream(offset:data:fin:)``, ``handleReset(errorCode:finalSize:)``) are
/// checked against the flow-control limit (FLOW_CONTROL_ERROR, §4.1) and the final size
/// (FINAL_SIZE_ERROR, §4.5). A RESET_STREAM that arrives in Data Recvd is ignored (all data is
/// already here, §3.2 lets the implementation choose). After ``stopSending(errorCode:)``
/// incoming data is discarded and the stream ends as soon as the peer's reset or FIN arrives.
package struct ReceiveStream: Sendable {
    /// The states of the receiving part of a stream (RFC 9000 §3.2, Figure 3).
    public enum State: Hashable, Sendable {
        /// Receiving data; the final size is unknown.
        case recv
        /// A FIN arrived; the final size is known, some data is still missing.
        case sizeKnown
        /// All data up to the final size received, not all read.
        case dataRecvd
        /// All data read by the application (terminal).
        case dataRead
        /// RESET_STREAM received; the application has not seen it yet.
        case resetRecvd
        /// The application has seen the reset (terminal).
        case resetRead
    }

    /// The stream.
    public let id: StreamID
    /// The current state (RFC 9000 §3.2).
    public private(set) var state: State = .recv
    /// The reassembly buffer.
    public private(set) var buffer: ReceiveBuffer
    /// The stream-level receive window (RFC 9000 §4.1).
    public private(set) var flow: ReceiveFlowController
    /// The error code of the peer's RESET_STREAM, once received.
    public private(set) var resetErrorCode: UInt64?
    /// The error code of our STOP_SENDING, once the application stopped reading.
    public private(set) var stopSendingErrorCode: UInt64?
    /// Whether STOP_SENDING waits to be (re)sent.
    public private(set) var isStopSendingPending = false
    /// Whether MAX_STREAM_DATA waits to be (re)sent.
    public private(set) var isMaxStreamDataPending = false
    /// The credit given back to the connection window: bytes read or discarded, and after a
    /// reset the whole final size (RFC 9000 §4.5).
    public private(set) var releasedOffset: UInt64 = 0

    /// Creates the receiving part of `id` in the Recv state.
    ///
    /// - Parameters:
    ///   - id: the stream.
    ///   - window: our initial stream limit (the transport parameter, RFC 9000 §18.2).
    ///   - maxWindow: the largest window auto-tuning may reach.
    public init(id: StreamID, window: UInt64, maxWindow: UInt64) {
        self.id = id
        self.flow = ReceiveFlowController(window: window, maxWindow: maxWindow)
        self.buffer = ReceiveBuffer(maxOffset: window)
    }

    /// The flow-control credit the peer consumed: the highest offset received, or the final size.
    public var receivedOffset: UInt64 { buffer.highestReceived }

    /// Whether the state is terminal (Data Read or Reset Read).
    public var isTerminal: Bool { state == .dataRead || state == .resetRead }

    /// Contiguous bytes ready to read.
    public var readableBytes: Int { buffer.readableBytes }

    /// Whether ``read(maxBytes:now:rtt:)`` would return data, the end of the stream or the reset.
    public var isReadable: Bool {
        switch state {
        case .recv, .sizeKnown, .dataRecvd: return stopSendingErrorCode == nil && (buffer.readableBytes > 0 || buffer.isFinished)
        case .resetRecvd: return true
        case .dataRead, .resetRead: return false
        }
    }

    /// Whether STOP_SENDING or MAX_STREAM_DATA waits to be sent.
    public var hasPendingControlFrames: Bool { isStopSendingPending || isMaxStreamDataPending }

    // MARK: - Peer frames

    /// Handles STREAM data (RFC 9000 §19.8). Recv → Size Known on FIN; → Data Recvd once all
    /// data is here. In later states only the final size is checked.
    ///
    /// - Throws: FLOW_CONTROL_ERROR beyond the advertised limit (§4.1); FINAL_SIZE_ERROR per
    ///   §4.5.
    public mutating func handleStream(offset: UInt64, data: ArraySlice<UInt8>, fin: Bool) throws(QUICError) {
        let (end, overflow) = offset.addingReportingOverflow(UInt64(data.count))
        guard !overflow, end <= VarInt.max else {
            throw QUICError(.frameEncodingError, "stream data ends beyond 2^62 - 1")
        }
        switch state {
        case .recv, .sizeKnown:
            try buffer.checkFinalSize(end: end, fin: fin)
            try flow.receive(upTo: end)
            try buffer.insert(offset: offset, data: data, fin: fin)
            if state == .recv, buffer.finalSize != nil {
                state = .sizeKnown
                isMaxStreamDataPending = false
            }
            if stopSendingErrorCode != nil {
                buffer.skip(maxBytes: buffer.readableBytes)
                releasedOffset = buffer.readOffset
            }
            if buffer.isComplete { state = stopSendingErrorCode == nil ? .dataRecvd : .dataRead }
        case .dataRecvd, .dataRead, .resetRecvd, .resetRead:
            try buffer.checkFinalSize(end: end, fin: fin)
        }
    }

    /// Handles RESET_STREAM (RFC 9000 §19.4): Recv / Size Known → Reset Recvd (or straight to
    /// Reset Read when we had sent STOP_SENDING), dropping buffered data and releasing the
    /// whole final size to the connection window (§4.5).
    ///
    /// - Throws: FLOW_CONTROL_ERROR when the final size exceeds the limit; FINAL_SIZE_ERROR
    ///   when it contradicts the known final size or data received.
    public mutating func handleReset(errorCode: UInt64, finalSize: UInt64) throws(QUICError) {
        switch state {
        case .recv, .sizeKnown:
            try buffer.checkFinalSize(end: finalSize, fin: true)
            try flow.receive(upTo: finalSize)
            try buffer.setFinalSize(finalSize)
            buffer.removeAll()
            releasedOffset = finalSize
            resetErrorCode = errorCode
            isStopSendingPending = false
            isMaxStreamDataPending = false
            state = stopSendingErrorCode == nil ? .resetRecvd : .resetRead
        case .dataRecvd, .dataRead, .resetRecvd, .resetRead:
            try buffer.checkFinalSize(end: finalSize, fin: true)
        }
    }

    // MARK: - Application commands

    /// Reads up to `maxBytes` contiguous bytes. Reading the last byte moves Data Recvd →
    /// Data Read; a window more than half consumed queues MAX_STREAM_DATA (only in Recv:
    /// once the final size is known no more credit is needed, §3.2).
    ///
    /// - Parameters:
    ///   - maxBytes: the most bytes to return.
    ///   - now: the current time, for window auto-tuning.
    ///   - rtt: the smoothed round-trip time, for window auto-tuning.
    /// - Returns: the bytes (possibly empty) and whether the stream's end has been reached.
    /// - Throws: ``StreamError/resetByPeer(errorCode:)`` after RESET_STREAM (moving Reset
    ///   Recvd → Reset Read); ``StreamError/readStopped(errorCode:)`` after ``stopSending(errorCode:)``.
    public mutating func read(maxBytes: Int, now: Instant, rtt: Duration) throws(StreamError) -> (bytes: [UInt8], fin: Bool) {
        switch state {
        case .resetRecvd, .resetRead:
            state = .resetRead
            throw StreamError.resetByPeer(errorCode: resetErrorCode ?? 0)
        case .dataRead:
            if let code = stopSendingErrorCode { throw StreamError.readStopped(errorCode: code) }
            return ([], true)
        case .recv, .sizeKnown, .dataRecvd:
            if let code = stopSendingErrorCode { throw StreamError.readStopped(errorCode: code) }
            let bytes = buffer.readChunk(maxBytes: maxBytes)
            releasedOffset = buffer.readOffset
            flow.addConsumed(UInt64(bytes.count))
            if state == .recv, flow.shouldSendUpdate {
                flow.update(now: now, rtt: rtt)
                buffer.maxOffset = flow.limit
                isMaxStreamDataPending = true
            }
            if buffer.isFinished { state = .dataRead }
            return (bytes, buffer.isFinished)
        }
    }

    /// Abandons reading (RFC 9000 §3.5): queues STOP_SENDING in Recv / Size Known and discards
    /// buffered and future data; in Data Recvd the data is discarded and the stream moves to
    /// Data Read. No effect later, or when already stopped.
    ///
    /// - Returns: whether a STOP_SENDING frame was queued.
    @discardableResult
    public mutating func stopSending(errorCode: UInt64) -> Bool {
        guard stopSendingErrorCode == nil else { return false }
        switch state {
        case .recv, .sizeKnown:
            stopSendingErrorCode = errorCode
            isStopSendingPending = true
            isMaxStreamDataPending = false
            buffer.skip(maxBytes: buffer.readableBytes)
            releasedOffset = buffer.readOffset
            return true
        case .dataRecvd:
            stopSendingErrorCode = errorCode
            buffer.skip(maxBytes: buffer.readableBytes)
            releasedOffset = buffer.readOffset
            state = .dataRead
            return false
        case .dataRead, .resetRecvd, .resetRead:
            return false
        }
    }

    // MARK: - Output

    /// Appends STOP_SENDING and MAX_STREAM_DATA frames that are due, and clears them.
    public mutating func takeControlFrames(into frames: inout [Frame]) {
        if isStopSendingPending, let code = stopSendingErrorCode, state == .recv || state == .sizeKnown {
            frames.append(.stopSending(id: id, errorCode: code))
        }
        isStopSendingPending = false
        if isMaxStreamDataPending, state == .recv {
            frames.append(.maxStreamData(id: id, max: flow.limit))
        }
        isMaxStreamDataPending = false
    }

    /// A STOP_SENDING frame was lost: queue it again while the peer may still be sending.
    public mutating func onStopSendingLost() {
        if stopSendingErrorCode != nil, state == .recv || state == .sizeKnown { isStopSendingPending = true }
    }

    /// A MAX_STREAM_DATA frame carrying `maximum` was lost: queue the current limit again if
    /// no larger one was sent since and more credit is still useful (Recv state).
    public mutating func onMaxStreamDataLost(_ maximum: UInt64) {
        if state == .recv, stopSendingErrorCode == nil, maximum == flow.limit { isMaxStreamDataPending = true }
    }
}
