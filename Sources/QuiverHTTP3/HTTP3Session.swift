import Quiver
import QuiverCore
import Synchronization

/// What both roles of an HTTP/3 connection share (RFC 9114 §6.2): our control stream (with
/// SETTINGS), our QPACK encoder and decoder streams, and the reading of the peer's
/// unidirectional streams, each in a task of its own (suspended, not holding a thread, while
/// it waits). Connection errors close the connection with their HTTP/3 error code.
final class HTTP3Session: Sendable {
    /// Unidirectional stream types (§6.2, RFC 9204 §4.2).
    enum StreamType {
        static let control: UInt64 = 0x00
        static let push: UInt64 = 0x01
        static let encoder: UInt64 = 0x02
        static let decoder: UInt64 = 0x03
    }

    private struct State {
        var peerStreams: Set<UInt64> = []  // critical stream types seen
        var peerSettings: [HTTP3Setting]?
        var goaway: UInt64?
        var failed = false
        /// Requests handed to the server's handler and not finished.
        var requestsInFlight = 0
        /// The highest request stream handed to the handler.
        var lastRequestID: UInt64?
        /// Server draining: the GOAWAY identifier sent; requests from it on are refused.
        var drainingFrom: UInt64?
    }

    let connection: Connection
    let isServer: Bool
    /// The largest field section we accept (announced as SETTINGS_MAX_FIELD_SECTION_SIZE).
    let maxFieldSectionSize: Int
    private let control: Quiver.Stream
    private let state = Mutex(State())

    /// Opens our control stream with SETTINGS and our QPACK streams.
    init(connection: Connection, isServer: Bool, maxFieldSectionSize: Int = 1 << 16) throws(QuiverError) {
        self.connection = connection
        self.isServer = isServer
        self.maxFieldSectionSize = maxFieldSectionSize
        control = try connection.openStream(bidirectional: false)
        // QPACK_MAX_TABLE_CAPACITY and QPACK_BLOCKED_STREAMS stay at their default, 0.
        let settings = HTTP3Frame.settings([HTTP3Setting(HTTP3Setting.maxFieldSectionSize, UInt64(maxFieldSectionSize))])
        try control.write([UInt8(StreamType.control)] + settings.encoded)
        for type in [StreamType.encoder, StreamType.decoder] {
            try connection.openStream(bidirectional: false).write([UInt8(type)])
        }
    }

    /// The peer's GOAWAY identifier, once received.
    var goaway: UInt64? { state.withLock { $0.goaway } }

    /// Closes the connection with `error` (once).
    func fail(_ error: HTTP3Error) {
        guard markClosing() else { return }
        try? connection.shutdown(.rapid(code: error.code.rawValue, reason: error.reason))
    }

    /// Ends the connection cleanly: GOAWAY (server: no request beyond those seen), then
    /// CONNECTION_CLOSE with H3_NO_ERROR.
    func close(lastStreamID: UInt64 = 0) {
        _ = try? control.write(HTTP3Frame.goaway(lastStreamID).encoded)
        guard markClosing() else { return }
        try? connection.shutdown(.rapid(code: HTTP3Error.Code.noError.rawValue, reason: ""))
    }

    /// Marks the connection as closing; `false` when it already was.
    private func markClosing() -> Bool {
        !state.withLock { state in
            defer { state.failed = true }
            return state.failed
        }
    }

    // MARK: - Draining (server)

    /// Whether a request stream is taken: not once a GOAWAY told the client it would not be.
    private func admit(_ stream: Quiver.Stream) -> Bool {
        let id = stream.id ?? 0
        return state.withLock { state in
            if let from = state.drainingFrom, id >= from { return false }
            state.requestsInFlight += 1
            state.lastRequestID = max(state.lastRequestID ?? 0, id)
            return true
        }
    }

    private func requestEnded() {
        let drained = state.withLock { state in
            state.requestsInFlight -= 1
            return state.requestsInFlight == 0 ? state.drainingFrom : nil
        }
        if drained != nil { closeDrained() }
    }

    /// A server's graceful shutdown (RFC 9114 §5.2): GOAWAY with the first request stream not
    /// taken, so the client retries later requests elsewhere; the requests in progress finish,
    /// then the connection closes with H3_NO_ERROR (at once when none is in progress).
    func drain() async {
        guard isServer else { return close() }
        let started = state.withLock { state -> (from: UInt64, idle: Bool)? in
            guard state.drainingFrom == nil, !state.failed else { return nil }
            let from = state.lastRequestID.map { $0 + 4 } ?? 0
            state.drainingFrom = from
            return (from, state.requestsInFlight == 0)
        }
        guard let started else { return }
        _ = try? await control.write(HTTP3Frame.goaway(started.from).encoded)
        if started.idle { closeDrained() }
    }

    /// The last request of a draining connection ended: the connection closes with H3_NO_ERROR
    /// once everything written was delivered (the last responses included).
    private func closeDrained() {
        guard markClosing() else { return }
        let connection = connection
        Task { try? await connection.shutdown(.flushThenClose(code: HTTP3Error.Code.noError.rawValue, reason: "")) }
    }

    /// Accepts the peer's streams until the connection ends: unidirectional ones are read here,
    /// bidirectional ones handed to `request` (server) or refused (client), each in a child
    /// task, all of which end before this returns.
    func acceptStreams(request: (@Sendable (Quiver.Stream) async -> Void)?) async {
        // The first stream is awaited before the task group exists: a connection that opens
        // none keeps no group storage and no group body frame while it waits.
        guard let first = try? await connection.acceptStream() else { return }
        await acceptStreams(first: first, request: request)
    }

    /// ``acceptStreams(request:)`` from the first stream on, in a function of its own: the task
    /// group's set-up does not enlarge the frame of the wait for the first stream.
    @inline(never)
    private func acceptStreams(first: Quiver.Stream, request: (@Sendable (Quiver.Stream) async -> Void)?) async {
        await withDiscardingTaskGroup { group in
            var next: Quiver.Stream? = first
            while let stream = next {
                if (stream.id ?? 0) & 0x2 != 0 {
                    group.addTask { await self.readPeerStream(stream) }
                } else if let request {
                    guard admit(stream) else {
                        // At or after our GOAWAY: not processed, so the client may retry it (RFC 9114 §5.2).
                        HTTP3Server.resetStream(stream, HTTP3Error(.requestRejected, "the server is going away"))
                        next = try? await connection.acceptStream()
                        continue
                    }
                    group.addTask {
                        await request(stream)
                        self.requestEnded()
                    }
                } else {
                    fail(HTTP3Error(.streamCreationError, "server-initiated bidirectional stream \(stream.id ?? 0)"))
                }
                next = try? await connection.acceptStream()
            }
        }
    }

    /// Reads one of the peer's unidirectional streams to its end.
    private func readPeerStream(_ stream: Quiver.Stream) async {
        var buffer: [UInt8] = []
        var type: UInt64?
        var consumed = 0
        while type == nil {
            guard let bytes = try? await stream.read(), !bytes.isEmpty else { return }  // ended before its type: ignore
            buffer += bytes
            var reader = ByteReader(buffer)
            if let value = try? reader.readVarInt() {
                type = value
                consumed = reader.offset
            }
        }
        let rest = Array(buffer[consumed...])
        switch type! {
        case StreamType.control:
            guard claim(StreamType.control) else { return fail(HTTP3Error(.streamCreationError, "a second control stream")) }
            await readControl(stream, rest)
        case StreamType.encoder, StreamType.decoder:
            guard claim(type!) else { return fail(HTTP3Error(.streamCreationError, "a second QPACK stream of type \(type!)")) }
            await readQPACK(stream, rest, encoder: type == StreamType.encoder)
        case StreamType.push:
            // A client never sends push streams; a server may push only after MAX_PUSH_ID, which we never send.
            fail(isServer ? HTTP3Error(.streamCreationError, "a push stream from a client")
                          : HTTP3Error(.idError, "a push stream, but no MAX_PUSH_ID was sent"))
        default:
            // Reserved or unknown stream types are ignored (§6.2, §9).
            try? stream.stopSending(code: HTTP3Error.Code.streamCreationError.rawValue)
        }
    }

    private func claim(_ type: UInt64) -> Bool { state.withLock { $0.peerStreams.insert(type).inserted } }

    private func readControl(_ stream: Quiver.Stream, _ initial: [UInt8]) async {
        var frames = HTTP3FrameReader()
        frames.append(initial)
        var first = true
        while true {
            do throws(HTTP3Error) {
                while let frame = try frames.next() {
                    if first, case .settings = frame {} else if first {
                        throw HTTP3Error(.missingSettings, "the control stream began with \(frame)")
                    }
                    switch frame {
                    case .settings(let settings):
                        guard first else { throw HTTP3Error(.frameUnexpected, "a second SETTINGS frame") }
                        state.withLock { $0.peerSettings = settings }
                    case .goaway(let id):
                        if !isServer, id % 4 != 0 { throw HTTP3Error(.idError, "GOAWAY with stream ID \(id)") }
                        let previous = state.withLock { state in
                            defer { state.goaway = id }
                            return state.goaway
                        }
                        if let previous, id > previous { throw HTTP3Error(.idError, "GOAWAY identifier grew from \(previous) to \(id)") }
                    case .maxPushID:
                        if !isServer { throw HTTP3Error(.frameUnexpected, "MAX_PUSH_ID from a server") }
                    case .cancelPush, .unknown:
                        break
                    case .data, .headers, .pushPromise:
                        throw HTTP3Error(.frameUnexpected, "\(frame) on the control stream")
                    }
                    first = false
                }
            } catch {
                return fail(error)
            }
            guard let bytes = try? await stream.read() else { return }  // the connection ended
            if bytes.isEmpty { return fail(HTTP3Error(.closedCriticalStream, "the peer closed its control stream")) }
            frames.append(bytes)
        }
    }

    private func readQPACK(_ stream: Quiver.Stream, _ initial: [UInt8], encoder: Bool) async {
        var pending = initial
        while true {
            do throws(HTTP3Error) {
                let used = encoder ? try QPACK.checkEncoderInstructions(pending) : try QPACK.checkDecoderInstructions(pending)
                pending.removeFirst(used)
            } catch {
                return fail(error)
            }
            guard pending.count < 64 else { return fail(HTTP3Error(.excessiveLoad, "an unfinished QPACK instruction")) }
            guard let bytes = try? await stream.read() else { return }
            if bytes.isEmpty { return fail(HTTP3Error(.closedCriticalStream, "the peer closed a QPACK stream")) }
            pending += bytes
        }
    }
}
