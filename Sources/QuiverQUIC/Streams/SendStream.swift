import QuiverCore

/// The sending part of a stream: the state machine of RFC 9000 §3.1 over a ``SendBuffer`` and
/// the stream-level send credit (§4.1).
///
/// ```
///        write/finish, send STREAM           send FIN             all data + FIN acked
///  Ready ──────────────────────────▶ Send ───────────▶ Data Sent ─────────────────────▶ Data Recvd
///    │                                 │                   │
///    │ reset / STOP_SENDING received   │                   │
///    └─────────────────────────────────┴───────────────────┴──▶ Reset Sent ──(RESET_STREAM acked)──▶ Reset Recvd
/// ```
///
/// Inputs are application commands (``write(_:)``, ``finish()``, ``reset(errorCode:)``), peer
/// frames (``onStopSending(errorCode:)``, ``onMaxStreamData(_:)``) and the fate of frames sent
/// (``onAcked(offset:length:fin:)``, ``onLost(offset:length:fin:)``, ``onResetAcked()``,
/// ``onResetLost()``); outputs are ``nextFrame(maxLength:connectionCredit:)`` and
/// ``takeControlFrames(into:)``.
package struct SendStream: Sendable {
    /// The states of the sending part of a stream (RFC 9000 §3.1, Figure 2).
    public enum State: Hashable, Sendable {
        /// Created; nothing sent yet.
        case ready
        /// Sending data.
        case send
        /// All data and the FIN sent; waiting for acknowledgements (lost data is re-sent).
        case dataSent
        /// All data and the FIN acknowledged (terminal).
        case dataRecvd
        /// RESET_STREAM sent, not yet acknowledged.
        case resetSent
        /// RESET_STREAM acknowledged (terminal).
        case resetRecvd
    }

    /// Whether data can still be sent: the output of ``sendability(connectionCredit:)``.
    public enum Sendability: Hashable, Sendable {
        /// A frame can be produced now.
        case ready
        /// New data waits for stream credit (MAX_STREAM_DATA).
        case blockedByStream
        /// New data waits for connection credit (MAX_DATA).
        case blockedByConnection
        /// Nothing to send.
        case idle
    }

    /// The stream.
    public let id: StreamID
    /// The current state (RFC 9000 §3.1).
    public private(set) var state: State = .ready
    /// The data queued, in flight and awaiting acknowledgement.
    public private(set) var buffer = SendBuffer()
    /// The peer's stream-level limit (RFC 9000 §4.1) and the STREAM_DATA_BLOCKED signal.
    public private(set) var flow: SendFlowController
    /// The error code of the RESET_STREAM we sent, once reset.
    public private(set) var resetErrorCode: UInt64?
    /// The error code of the peer's STOP_SENDING, if one arrived (RFC 9000 §3.5).
    public private(set) var stopSendingErrorCode: UInt64?
    /// The final size announced in RESET_STREAM (RFC 9000 §4.5), once reset.
    public private(set) var resetFinalSize: UInt64?
    /// Whether RESET_STREAM waits to be (re)sent.
    public private(set) var isResetPending = false

    /// Creates the sending part of `id` in the Ready state.
    ///
    /// - Parameters:
    ///   - id: the stream.
    ///   - maxStreamData: the peer's initial stream limit (RFC 9000 §18.2).
    public init(id: StreamID, maxStreamData: UInt64) {
        self.id = id
        self.flow = SendFlowController(limit: maxStreamData)
    }

    /// Whether the state is terminal (Data Recvd or Reset Recvd).
    public var isTerminal: Bool { state == .dataRecvd || state == .resetRecvd }

    /// Whether the application may still write (Ready or Send, not finished).
    public var isWritable: Bool { (state == .ready || state == .send) && !buffer.isFinished }

    /// Whether RESET_STREAM or STREAM_DATA_BLOCKED waits to be sent.
    public var hasPendingControlFrames: Bool { isResetPending || flow.isBlockedFramePending }

    // MARK: - Application commands

    /// Queues data to send.
    ///
    /// - Throws: ``StreamError/stopped(errorCode:)`` after the peer's STOP_SENDING,
    ///   ``StreamError/reset(errorCode:)`` after a local reset, ``StreamError/finished`` after
    ///   ``finish()``, ``StreamError/tooMuchData`` past 2^62 − 1 bytes.
    public mutating func write(_ bytes: [UInt8]) throws(StreamError) { try write(bytes[...]) }

    /// Queues a slice of data to send, kept (sharing its storage) until acknowledged; throws as
    /// ``write(_:)-([UInt8])``.
    public mutating func write(_ bytes: ArraySlice<UInt8>) throws(StreamError) {
        try checkWritable()
        guard UInt64(bytes.count) <= VarInt.max - buffer.writeOffset else { throw StreamError.tooMuchData }
        buffer.write(bytes)
    }

    /// Ends the stream after the data written so far; idempotent.
    ///
    /// - Throws: as ``write(_:)`` when the stream was reset.
    public mutating func finish() throws(StreamError) {
        if buffer.isFinished, state != .resetSent, state != .resetRecvd { return }
        try checkWritable()
        buffer.finish()
    }

    private func checkWritable() throws(StreamError) {
        if let code = stopSendingErrorCode, state == .resetSent || state == .resetRecvd {
            throw StreamError.stopped(errorCode: code)
        }
        if let code = resetErrorCode { throw StreamError.reset(errorCode: code) }
        if buffer.isFinished || state == .dataSent || state == .dataRecvd { throw StreamError.finished }
    }

    /// Abandons the stream: enters Reset Sent and queues RESET_STREAM carrying the final size
    /// (RFC 9000 §3.1, §19.4). No effect from a terminal state or once reset.
    ///
    /// - Returns: whether the stream was reset by this call.
    @discardableResult
    public mutating func reset(errorCode: UInt64) -> Bool {
        switch state {
        case .ready, .send, .dataSent:
            state = .resetSent
            resetErrorCode = errorCode
            resetFinalSize = buffer.unsentOffset
            isResetPending = true
            buffer = SendBuffer()
            return true
        case .dataRecvd, .resetSent, .resetRecvd:
            return false
        }
    }

    // MARK: - Peer frames

    /// Handles STOP_SENDING (RFC 9000 §3.5, §19.5): records the code for the application and
    /// resets the stream with it, unless already terminal or reset.
    ///
    /// - Returns: whether the stream was reset.
    @discardableResult
    public mutating func onStopSending(errorCode: UInt64) -> Bool {
        if stopSendingErrorCode == nil, !isTerminal, state != .resetSent { stopSendingErrorCode = errorCode }
        return reset(errorCode: errorCode)
    }

    /// Handles MAX_STREAM_DATA (RFC 9000 §19.10); limits that do not grow are ignored.
    ///
    /// - Returns: whether the credit grew.
    @discardableResult
    public mutating func onMaxStreamData(_ maximum: UInt64) -> Bool {
        flow.raiseLimit(to: maximum)
    }

    // MARK: - Sending

    /// What can be sent with `connectionCredit` bytes of connection-level credit.
    public func sendability(connectionCredit: UInt64) -> Sendability {
        switch state {
        case .ready, .send, .dataSent: break
        case .dataRecvd, .resetSent, .resetRecvd: return .idle
        }
        if buffer.hasDataToSend(newDataLimit: newDataLimit(connectionCredit: connectionCredit)) { return .ready }
        guard buffer.unsentBytes > 0 else { return .idle }
        return flow.available == 0 ? .blockedByStream : .blockedByConnection
    }

    private func newDataLimit(connectionCredit: UInt64) -> UInt64 {
        let (byConnection, overflow) = buffer.unsentOffset.addingReportingOverflow(connectionCredit)
        return Swift.min(flow.limit, overflow ? .max : byConnection)
    }

    /// Builds the next STREAM frame (RFC 9000 §19.8) no longer than `maxLength` encoded bytes:
    /// lost data first, then new data within the stream limit and `connectionCredit`, then a
    /// FIN-only frame. Sending moves Ready → Send, and the FIN moves Send → Data Sent.
    ///
    /// - Parameters:
    ///   - maxLength: the room left in the packet for this frame, header included.
    ///   - connectionCredit: the connection-level credit available for new data; the caller
    ///     charges the connection with the growth of ``SendBuffer/unsentOffset``.
    /// - Returns: the frame, or nil when nothing can be sent or nothing fits.
    public mutating func nextFrame(maxLength: Int, connectionCredit: UInt64) -> Frame? {
        guard let span = takeNextSpan(maxLength: maxLength, connectionCredit: connectionCredit) else { return nil }
        var data = ByteWriter(capacity: span.length)
        buffer.copy(span.offset..<(span.offset + UInt64(span.length)), into: &data)
        return .stream(id: id, offset: span.offset, data: data.bytes[...], fin: span.fin)
    }

    /// ``nextFrame(maxLength:connectionCredit:)`` encoded straight into `writer` (with its
    /// Length field), the data copied once, from the send buffer into the packet.
    ///
    /// - Returns: what the frame carried, or nil when nothing can be sent or nothing fits.
    mutating func encodeNextFrame(into writer: inout ByteWriter, maxLength: Int, connectionCredit: UInt64) -> SentFrameInfo? {
        guard let span = takeNextSpan(maxLength: maxLength, connectionCredit: connectionCredit) else { return nil }
        let type = FrameType.stream(hasOffset: span.offset > 0, hasLength: true, fin: span.fin).rawValue
        if span.offset > 0 {
            writer.writeVarInts(type, id.rawValue, span.offset, UInt64(span.length))
        } else {
            writer.writeVarInts(type, id.rawValue, UInt64(span.length))
        }
        buffer.copy(span.offset..<(span.offset + UInt64(span.length)), into: &writer)
        return .stream(id: id, offset: span.offset, length: span.length, fin: span.fin)
    }

    /// The range the next STREAM frame carries, taken from the buffer, with the state changes
    /// and flow-control accounting of sending it.
    private mutating func takeNextSpan(maxLength: Int, connectionCredit: UInt64) -> (offset: UInt64, length: Int, fin: Bool)? {
        switch state {
        case .ready, .send, .dataSent: break
        case .dataRecvd, .resetSent, .resetRecvd: return nil
        }
        let limit = newDataLimit(connectionCredit: connectionCredit)
        guard let offset = buffer.nextOffset(newDataLimit: limit) else { return nil }
        let header = 1 + VarInt.encodedLength(id.rawValue) + (offset > 0 ? VarInt.encodedLength(offset) : 0)
        guard let dataLength = Self.maxDataLength(room: maxLength - header) else { return nil }
        let before = buffer.unsentOffset
        guard let span = buffer.nextSpan(maxLength: dataLength, newDataLimit: limit) else { return nil }
        flow.consume(buffer.unsentOffset - before)
        if state == .ready { state = .send }
        if span.fin { state = .dataSent }
        return span
    }

    /// The largest data length `n` with `n + varint length of n <= room`, or nil when even an
    /// empty frame does not fit.
    static func maxDataLength(room: Int) -> Int? {
        // A Length field takes 1, 2, 4 or 8 bytes for values up to 63, 16383, 2^30 - 1, 2^62 - 1.
        guard room >= 1 else { return nil }
        if room <= 64 { return room - 1 }
        if room <= 16385 { return room - 2 }
        if room <= 1_073_741_827 { return max(16383, room - 4) }
        return max(1_073_741_823, room - 8)
    }

    /// Appends RESET_STREAM and STREAM_DATA_BLOCKED frames that are due, and clears them.
    /// Sending STREAM_DATA_BLOCKED moves Ready → Send (RFC 9000 §3.1).
    public mutating func takeControlFrames(into frames: inout [Frame]) {
        if isResetPending, let code = resetErrorCode, let size = resetFinalSize {
            isResetPending = false
            frames.append(.resetStream(id: id, errorCode: code, finalSize: size))
        }
        if let limit = flow.takeBlockedFrame() {
            switch state {
            case .ready:
                state = .send
                frames.append(.streamDataBlocked(id: id, limit: limit))
            case .send:
                frames.append(.streamDataBlocked(id: id, limit: limit))
            case .dataSent, .dataRecvd, .resetSent, .resetRecvd:
                break
            }
        }
    }

    /// Queues STREAM_DATA_BLOCKED when new data waits for stream credit (once per limit).
    public mutating func markBlockedIfNeeded() {
        if (state == .ready || state == .send), buffer.unsentBytes > 0 { flow.markBlocked() }
    }

    // MARK: - Fate of frames sent

    /// A STREAM frame sent earlier was acknowledged; all data and the FIN acknowledged moves
    /// Data Sent → Data Recvd.
    public mutating func onAcked(offset: UInt64, length: Int, fin: Bool) {
        switch state {
        case .send, .dataSent:
            buffer.onAcked(offset: offset, length: length, fin: fin)
            if state == .dataSent, buffer.isFullyAcknowledged { state = .dataRecvd }
        case .ready, .dataRecvd, .resetSent, .resetRecvd:
            break
        }
    }

    /// A STREAM frame sent earlier was lost: its unacknowledged data will be sent again.
    public mutating func onLost(offset: UInt64, length: Int, fin: Bool) {
        switch state {
        case .send, .dataSent:
            buffer.onLost(offset: offset, length: length, fin: fin)
        case .ready, .dataRecvd, .resetSent, .resetRecvd:
            break
        }
    }

    /// The RESET_STREAM was acknowledged: Reset Sent → Reset Recvd.
    public mutating func onResetAcked() {
        if state == .resetSent {
            state = .resetRecvd
            isResetPending = false
        }
    }

    /// The RESET_STREAM was lost: queue it again while in Reset Sent.
    public mutating func onResetLost() {
        if state == .resetSent { isResetPending = true }
    }

    /// A STREAM_DATA_BLOCKED frame was lost: queue it again if still blocked at that limit.
    public mutating func onBlockedLost(limit: UInt64) {
        if state == .send { flow.onBlockedFrameLost(limit: limit) }
    }
}
