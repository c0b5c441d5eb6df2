import Quiver
import QuiverCore
import Synchronization

/// The limits of our QPACK decoder (RFC 9204 §5), announced in SETTINGS; our encoder uses at
/// most ``maxTableCapacity`` of the peer's table too.
public struct QPACKSettings: Sendable, Hashable {
    /// SETTINGS_QPACK_MAX_TABLE_CAPACITY: the largest dynamic table the peer may build in us,
    /// in bytes as RFC 9204 §3.2.1 counts them. 0 turns the dynamic table off.
    public var maxTableCapacity: Int
    /// SETTINGS_QPACK_BLOCKED_STREAMS: how many streams may wait for inserts at once.
    public var blockedStreams: Int

    public init(maxTableCapacity: Int = 4096, blockedStreams: Int = 16) {
        self.maxTableCapacity = maxTableCapacity
        self.blockedStreams = blockedStreams
    }
}

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
        /// Our QPACK encoder (the peer's table) and decoder (our table).
        var encoder: QPACKEncoder
        var decoder: QPACKDecoder
        /// Streams whose field section waits for inserts (§2.1.2 of RFC 9204): the Required
        /// Insert Count it needs and the task to resume.
        var blocked: [UInt64: (requiredInsertCount: Int, resume: CheckedContinuation<Unblocked, Never>)] = [:]
        /// Set once the session ended: blocked sections resume at once.
        var ended = false
        /// Requests handed to the server's handler and not finished.
        var requestsInFlight = 0
        /// The highest request stream handed to the handler.
        var lastRequestID: UInt64?
        /// Server draining: the GOAWAY identifier sent; requests from it on are refused.
        var drainingFrom: UInt64?
    }

    /// How a blocked field section's wait ended.
    enum Unblocked {
        case ready, cancelled, ended
    }

    let connection: Connection
    let isServer: Bool
    /// The largest field section we accept (announced as SETTINGS_MAX_FIELD_SECTION_SIZE).
    let maxFieldSectionSize: Int
    /// Our decoder's limits, announced in SETTINGS.
    let qpack: QPACKSettings
    private let control: Quiver.Stream
    /// Our encoder and decoder streams, written in order by tasks of their own.
    private let encoderStream: InstructionWriter
    private let decoderStream: InstructionWriter
    private let state: Mutex<State>

    /// Opens our control stream with SETTINGS (our QPACK decoder's limits included) and our
    /// QPACK streams.
    init(connection: Connection, isServer: Bool, maxFieldSectionSize: Int = 1 << 16, qpack: QPACKSettings = QPACKSettings()) throws(QuiverError) {
        self.connection = connection
        self.isServer = isServer
        self.maxFieldSectionSize = maxFieldSectionSize
        self.qpack = qpack
        state = Mutex(State(encoder: QPACKEncoder(capacityLimit: qpack.maxTableCapacity),
                            decoder: QPACKDecoder(maxTableCapacity: qpack.maxTableCapacity, maxBlockedStreams: qpack.blockedStreams)))
        control = try connection.openStream(bidirectional: false)
        let settings = HTTP3Frame.settings([HTTP3Setting(HTTP3Setting.maxFieldSectionSize, UInt64(maxFieldSectionSize)),
                                            HTTP3Setting(HTTP3Setting.qpackMaxTableCapacity, UInt64(qpack.maxTableCapacity)),
                                            HTTP3Setting(HTTP3Setting.qpackBlockedStreams, UInt64(qpack.blockedStreams))])
        try control.write([UInt8(StreamType.control)] + settings.encoded)
        let encoder = try connection.openStream(bidirectional: false)
        try encoder.write([UInt8(StreamType.encoder)])
        let decoder = try connection.openStream(bidirectional: false)
        try decoder.write([UInt8(StreamType.decoder)])
        encoderStream = InstructionWriter(encoder)
        decoderStream = InstructionWriter(decoder)
    }

    /// The peer's GOAWAY identifier, once received.
    var goaway: UInt64? { state.withLock { $0.goaway } }

    /// What the QPACK encoder and decoder counted so far.
    var statistics: QPACKStatistics {
        state.withLock { state in
            var statistics = state.encoder.statistics
            statistics.insertsReceived = state.decoder.statistics.insertsReceived
            statistics.sectionsDecodedWithTable = state.decoder.statistics.sectionsDecodedWithTable
            statistics.sectionsBlocked = state.decoder.statistics.sectionsBlocked
            return statistics
        }
    }

    /// Closes the connection with `error` (once).
    func fail(_ error: HTTP3Error) {
        guard markClosing() else { return }
        try? connection.shutdown(.rapid(code: error.code.rawValue, reason: error.reason))
        end()
    }

    /// Ends the connection cleanly: GOAWAY (server: no request beyond those seen), then
    /// CONNECTION_CLOSE with H3_NO_ERROR.
    func close(lastStreamID: UInt64 = 0) {
        _ = try? control.write(HTTP3Frame.goaway(lastStreamID).encoded)
        guard markClosing() else { return }
        try? connection.shutdown(.rapid(code: HTTP3Error.Code.noError.rawValue, reason: ""))
        end()
    }

    /// Marks the connection as closing; `false` when it already was.
    private func markClosing() -> Bool {
        !state.withLock { state in
            defer { state.failed = true }
            return state.failed
        }
    }

    /// The connection ended: blocked field sections give up, the QPACK writers stop.
    private func end() {
        let blocked = state.withLock { state in
            state.ended = true
            defer { state.blocked = [:] }
            return state.blocked.values.map(\.resume)
        }
        for task in blocked { task.resume(returning: .ended) }
        encoderStream.finish()
        decoderStream.finish()
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
        Task(executorPreference: connection.taskExecutor) { [self] in
            try? await connection.shutdown(.flushThenClose(code: HTTP3Error.Code.noError.rawValue, reason: ""))
            end()
        }
    }

    // MARK: - QPACK

    /// Encodes a field section for `stream` with the peer's dynamic table when its SETTINGS
    /// allow one; returns once the encoder instructions it depends on were written to our
    /// encoder stream (so they go out before the section).
    func encode(_ fields: [FieldLine], on stream: Quiver.Stream) async -> [UInt8] {
        let (section, written) = state.withLock { state in
            let section = state.encoder.encode(fields, streamID: stream.id ?? 0)
            // Queued under the lock: the encoder stream carries instructions in the order
            // the encoder's state changed, whichever task encodes.
            return (section, encoderStream.enqueue(state.encoder.takeInstructions()))
        }
        if let written { await encoderStream.flushed(through: written) }
        return section
    }

    /// Decodes a field section received on `stream`, waiting (suspended) while it refers to
    /// inserts that have not arrived (RFC 9204 §2.2.1).
    /// - Throws: a connection error for malformed QPACK, a stream error (H3_MESSAGE_ERROR)
    ///   for a section over SETTINGS_MAX_FIELD_SECTION_SIZE, `.cancelled` when the task is
    ///   cancelled while blocked (the encoder is told: Stream Cancellation), `.transport`
    ///   when the connection ended first.
    func decode(_ section: [UInt8], on stream: Quiver.Stream) async throws(MessageReader.Failure) -> [FieldLine] {
        let streamID = stream.id ?? 0
        while true {
            let result: QPACKDecoder.Section
            let written: Int?
            do throws(HTTP3Error) {
                (result, written) = try state.withLock { state throws(HTTP3Error) in
                    let result = try state.decoder.decode(section, streamID: streamID, maxSize: maxFieldSectionSize)
                    return (result, decoderStream.enqueue(state.decoder.takeInstructions()))
                }
            } catch {
                // A field section too large is a stream error; malformed QPACK is a connection error.
                throw error.code == .excessiveLoad ? .stream(HTTP3Error(.messageError, error.reason)) : .connection(error)
            }
            let required: Int
            switch result {
            case .decoded(let fields):
                // The Section Acknowledgment goes out before whatever answers this section.
                if let written { await decoderStream.flushed(through: written) }
                return fields
            case .blocked(let count):
                required = count
            }
            switch await waitForInserts(required, streamID: streamID) {
            case .ready: continue
            case .cancelled:
                abandon(stream)
                throw .cancelled
            case .ended: throw .transport(QuiverError(.closed, "the connection ended while a field section waited for inserts"))
            }
        }
    }

    /// Suspends until the decoder's Insert Count reaches `required`, the task is cancelled or
    /// the session ends.
    private func waitForInserts(_ required: Int, streamID: UInt64) async -> Unblocked {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (task: CheckedContinuation<Unblocked, Never>) in
                let now: Unblocked? = state.withLock { state in
                    if state.ended { return .ended }
                    if Task.isCancelled { return .cancelled }
                    if state.decoder.insertCount >= required { return .ready }
                    state.blocked[streamID] = (required, task)
                    return nil
                }
                if let now { task.resume(returning: now) }
            }
        } onCancel: {
            state.withLock { $0.blocked.removeValue(forKey: streamID) }?.resume.resume(returning: .cancelled)
        }
    }

    /// We stop reading `stream` before its end (reset by the peer, cancelled, answered early):
    /// the peer's encoder may forget its references there (Stream Cancellation, §4.4.2).
    func abandon(_ stream: Quiver.Stream) {
        guard let id = stream.id else { return }
        state.withLock { state in
            state.blocked.removeValue(forKey: id)?.resume.resume(returning: .cancelled)
            state.decoder.cancelStream(id)
            _ = decoderStream.enqueue(state.decoder.takeInstructions())
        }
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
            // Blocked sections of the request tasks give up before the group waits for them.
            end()
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
                        let value = { (id: UInt64) in settings.first { $0.identifier == id }?.value ?? 0 }
                        state.withLock { state in
                            state.peerSettings = settings
                            state.encoder.applyPeerSettings(maxTableCapacity: value(HTTP3Setting.qpackMaxTableCapacity),
                                                            blockedStreams: value(HTTP3Setting.qpackBlockedStreams))
                            _ = encoderStream.enqueue(state.encoder.takeInstructions())
                        }
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

    /// Reads the peer's encoder stream (into our decoder, unblocking sections) or decoder
    /// stream (into our encoder) until the connection ends.
    private func readQPACK(_ stream: Quiver.Stream, _ initial: [UInt8], encoder: Bool) async {
        var bytes = initial
        while true {
            do throws(HTTP3Error) {
                if encoder { try receiveEncoderInstructions(bytes) } else {
                    try state.withLock { state throws(HTTP3Error) in try state.encoder.receiveDecoderInstructions(bytes) }
                }
            } catch {
                return fail(error)
            }
            guard let next = try? await stream.read() else { return }
            if next.isEmpty { return fail(HTTP3Error(.closedCriticalStream, "the peer closed a QPACK stream")) }
            bytes = next
        }
    }

    /// Applies the peer's encoder instructions and resumes the sections they unblock.
    private func receiveEncoderInstructions(_ bytes: [UInt8]) throws(HTTP3Error) {
        guard !bytes.isEmpty else { return }
        let ready = try state.withLock { state throws(HTTP3Error) in
            try state.decoder.receiveEncoderInstructions(bytes)
            let insertCount = state.decoder.insertCount
            let ready = state.blocked.filter { $0.value.requiredInsertCount <= insertCount }
            for id in ready.keys { state.blocked[id] = nil }
            _ = decoderStream.enqueue(state.decoder.takeInstructions())
            return ready.values.map(\.resume)
        }
        for task in ready { task.resume(returning: .ready) }
    }
}

/// Writes QPACK instructions to our encoder or decoder stream in the order they were queued,
/// from a task of its own: no stream write under a lock, and a request task that is cancelled
/// cannot cut an instruction in half.
final class InstructionWriter: Sendable {
    private struct State {
        var queued = 0
        var written = 0
        var ended = false
        var waiting: [(through: Int, resume: CheckedContinuation<Void, Never>)] = []
    }

    private let state = Mutex(State())
    private let input: AsyncStream<[UInt8]>.Continuation

    init(_ stream: Quiver.Stream) {
        let (bytes, input) = AsyncStream<[UInt8]>.makeStream()
        self.input = input
        // The task holds the writer until the stream ends or ``finish()``.
        Task(executorPreference: stream.connection.taskExecutor) {
            for await piece in bytes {
                do { try await stream.write(piece) } catch { break }
                let done = self.state.withLock { state in
                    state.written += piece.count
                    let written = state.written
                    defer { state.waiting.removeAll { $0.through <= written } }
                    return state.waiting.filter { $0.through <= written }.map(\.resume)
                }
                for task in done { task.resume() }
            }
            self.end()
        }
    }

    /// Queues `bytes`; returns the stream offset that marks them written, `nil` when empty.
    func enqueue(_ bytes: [UInt8]) -> Int? {
        guard !bytes.isEmpty else { return nil }
        return state.withLock { state in
            state.queued += bytes.count
            input.yield(bytes)  // under the lock: offsets and order agree
            return state.queued
        }
    }

    /// Returns once the bytes up to `offset` were written (or the stream ended).
    func flushed(through offset: Int) async {
        await withCheckedContinuation { (task: CheckedContinuation<Void, Never>) in
            let now = state.withLock { state in
                if state.ended || state.written >= offset { return true }
                state.waiting.append((offset, task))
                return false
            }
            if now { task.resume() }
        }
    }

    /// No more instructions: the writing task ends, waiters resume.
    func finish() {
        input.finish()
        end()
    }

    private func end() {
        let waiting = state.withLock { state in
            state.ended = true
            defer { state.waiting = [] }
            return state.waiting.map(\.resume)
        }
        for task in waiting { task.resume() }
    }
}
