public import HTTPTypes
public import Quiver
import QuiverCore
public import ServiceLifecycle
import Synchronization

/// Writes one HTTP/3 response on a request stream: HEADERS (informational ones first, if
/// any), DATA frames, the end. Writes suspend while the stream's send buffer is full
/// (backpressure).
public final class HTTP3ResponseWriter {
    private let stream: Quiver.Stream
    private let session: HTTP3Session
    private(set) var headWritten = false
    private(set) var finished = false

    init(stream: Quiver.Stream, session: HTTP3Session) {
        self.stream = stream
        self.session = session
    }

    /// Sends a response head: informational (1xx) ones any number of times, then the final one
    /// once, before any body.
    public func writeHead(_ head: HTTPResponse) async throws {
        precondition(!headWritten, "the final response head was written already")
        if head.status.kind != .informational { headWritten = true }
        try await stream.write(HTTP3Frame.headers(await session.encode(FieldRules.lines(head), on: stream)).encoded)
    }

    /// Sends body bytes as one DATA frame (after an empty `200 OK` head if none was written).
    public func write(_ bytes: [UInt8]) async throws {
        if !headWritten { try await writeHead(HTTPResponse(status: .ok)) }
        guard !bytes.isEmpty else { return }
        // The frame header and the body go as two writes: joining them would copy the body.
        try await stream.write(HTTP3Frame.header(HTTP3Frame.Kind.data, bytes.count))
        try await stream.write(bytes)
    }

    /// Ends the response, with trailer fields if any.
    public func finish(trailers: HTTPFields = [:]) async throws {
        guard !finished else { return }
        if !headWritten { try await writeHead(HTTPResponse(status: .ok)) }
        finished = true
        if !trailers.isEmpty { try await stream.write(HTTP3Frame.headers(await session.encode(FieldRules.lines(trailers), on: stream)).encoded) }
        try stream.finish()
    }
}

/// A request's body as it arrives: the payloads of its DATA frames in order, read from the
/// stream only as they are asked for — until then QUIC's flow control holds the client back —
/// and the ``trailers`` after the last piece.
///
/// Iterating throws ``HTTP3Error`` for a malformed body (the server then resets the stream, or
/// closes the connection for a connection error) or one over the server's `maxRequestBody`
/// (`H3_EXCESSIVE_LOAD`), and `QuiverError` when the stream fails. A handler that answers
/// without reading the whole body is allowed (RFC 9114 §4.1.1): the server then asks the client
/// to stop sending it (`STOP_SENDING` with `H3_NO_ERROR`).
///
/// One task reads it at a time (it may be handed to another, as a framework's body type does):
/// a read while another is in progress throws ``HTTP3Error`` `H3_INTERNAL_ERROR` and changes
/// nothing.
public final class HTTP3RequestBody: AsyncSequence, @unchecked Sendable {
    // @unchecked: `reader` and `received` are touched only by the one read holding `reading`;
    // what others may look at is in the `outcome` mutex.
    public typealias Element = [UInt8]

    private let reading = Atomic<Bool>(false)

    private var reader: MessageReader
    private let limit: Int
    private var received = 0
    private struct Outcome {
        var finished = false
        var failure: MessageReader.Failure?
        var trailers: HTTPFields = [:]
    }
    /// What reading found so far, readable from any task.
    private let outcome = Mutex(Outcome())

    /// The body was read to its end.
    var isFinished: Bool { outcome.withLock { $0.finished } }
    /// Why reading failed, for the server to answer.
    var failure: MessageReader.Failure? { outcome.withLock { $0.failure } }
    /// The trailer fields, once the body was read to its end (empty before, or without any).
    public var trailers: HTTPFields { outcome.withLock { $0.trailers } }

    init(reader: MessageReader, limit: Int) {
        self.reader = reader
        self.limit = limit
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        fileprivate let body: HTTP3RequestBody
        public mutating func next() async throws -> [UInt8]? { try await body.next() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(body: self) }

    /// The handler answered before the body ended: unless the stream's end already arrived,
    /// the client is asked to stop sending it (STOP_SENDING with H3_NO_ERROR, RFC 9114
    /// §4.1.1) and our QPACK decoder abandons the stream.
    /// Skipped while a read is in progress elsewhere (a body handed to a task that outlived the
    /// handler): that read owns the reader.
    func stopReading(_ stream: Quiver.Stream) {
        guard reading.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return }
        defer { reading.store(false, ordering: .releasing) }
        guard !isFinished, !reader.reachedEnd() else { return }
        try? stream.stopSending(code: HTTP3Error.Code.noError.rawValue)
        reader.abandon()
    }

    /// Reads the rest of the body whole.
    /// - Throws: ``HTTP3Error`` `H3_EXCESSIVE_LOAD` over `limit` bytes (the rest is not read), or
    ///   what iterating throws.
    public func collect(upTo limit: Int = .max) async throws -> [UInt8] {
        var bytes: [UInt8] = []
        for try await piece in self {
            guard bytes.count + piece.count <= limit else { throw HTTP3Error(.excessiveLoad, "request body over \(limit) bytes") }
            bytes += piece
        }
        return bytes
    }

    private func next() async throws -> [UInt8]? {
        guard reading.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            throw HTTP3Error(.internalError, "a request body read while another read of it is in progress")
        }
        defer { reading.store(false, ordering: .releasing) }
        let (finished, failure) = outcome.withLock { ($0.finished, $0.failure) }
        if let failure { throw Self.error(failure) }
        guard !finished else { return nil }
        do throws(MessageReader.Failure) {
            if let bytes = try await reader.nextData() {
                received += bytes.count
                guard received <= limit else { throw .stream(HTTP3Error(.excessiveLoad, "request body over \(limit) bytes")) }
                return bytes
            }
            var trailers = HTTPFields()
            if let lines = reader.trailers {
                do throws(HTTP3Error) { trailers = try FieldRules.trailers(lines) } catch { throw .stream(error) }
            }
            outcome.withLock {
                $0.trailers = trailers
                $0.finished = true
            }
            return nil
        } catch {
            outcome.withLock { $0.failure = error }
            throw Self.error(error)
        }
    }

    private static func error(_ failure: MessageReader.Failure) -> any Error {
        switch failure {
        case .connection(let error), .stream(let error): error
        case .transport(let error): error
        case .cancelled: CancellationError()
        }
    }
}

/// An HTTP/3 server for one connection (RFC 9114): each request is read and answered by the
/// handler in a child task of ``serve(_:maxRequestBody:qpack:handler:)``'s task — no thread per
/// request or per connection.
public enum HTTP3Server {
    /// Answers a request: read its body (as much as needed) and write the response with the
    /// writer. A handler that writes nothing sends an empty 200; one that throws resets the
    /// stream with H3_INTERNAL_ERROR (or answers the body's own error, see ``HTTP3RequestBody``).
    public typealias Handler = @Sendable (HTTPRequest, HTTP3RequestBody, HTTP3ResponseWriter) async throws -> Void

    /// The largest request body read by default (16 MiB).
    public static let defaultMaxRequestBody = 16 << 20

    /// Serves `connection` (ALPN `h3`) until it ends. Each request's handler runs once its head
    /// arrived; its body streams as the handler reads it (at most `maxRequestBody` bytes, else
    /// the stream is reset with H3_EXCESSIVE_LOAD). `qpack` sets the limits of our QPACK
    /// decoder (and caps the table our encoder uses in the client).
    ///
    /// **Ending.** In a `ServiceGroup` (swift-service-lifecycle), its graceful shutdown drains the
    /// connection (RFC 9114 §5.2): a GOAWAY names the first request not taken — later ones are
    /// refused with H3_REQUEST_REJECTED, so the client retries them elsewhere — the requests in
    /// progress finish, and the connection closes with H3_NO_ERROR once their responses were
    /// delivered. Cancelling the calling task (the group's deadline) cancels the requests in
    /// progress (their streams reset with H3_REQUEST_CANCELLED) and closes the connection.
    ///
    /// - Returns: what QPACK's dynamic tables did on the connection, both ways (for a log line
    ///   or metrics at its end).
    @discardableResult
    public static func serve(_ connection: Connection, maxRequestBody: Int = defaultMaxRequestBody, qpack: QPACKSettings = QPACKSettings(),
                             handler: @escaping Handler) async -> QPACKStatistics {
        guard let session = start(connection, qpack: qpack) else { return QPACKStatistics() }
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await session.acceptStreams { stream in
                    await respond(on: stream, session: session, maxRequestBody: maxRequestBody, handler: handler)
                }
            } onGracefulShutdown: {
                // Handlers run under the shutdown's own lock, which a request task finishing
                // takes too: they must not wait for the connection's loop. A task on that loop
                // does the work (not the global pool, which a busy process may keep waiting).
                Task(executorPreference: connection.taskExecutor) { await session.drain() }
            }
        } onCancel: {
            // Likewise: a cancellation handler must not block.
            Task(executorPreference: connection.taskExecutor) { session.close() }
        }
        return session.statistics
    }

    /// The connection's HTTP/3 session, our control and QPACK streams opened; `nil` when the
    /// connection is not QUIC or already ended. (Synchronous: its temporaries stay out of the
    /// frame an idle connection's task keeps.)
    private static func start(_ connection: Connection, qpack: QPACKSettings) -> HTTP3Session? {
        do throws(QuiverError) {
            // Every request stream, the first one included, comes from acceptStream: an idle
            // connection keeps no task waiting on a stream 0 that may never come.
            guard let quic = connection.quic else { return nil }
            try quic.disableDefaultStream()
            return try HTTP3Session(connection: connection, isServer: true, qpack: qpack)
        } catch {
            return nil
        }
    }

    private static func respond(on stream: Quiver.Stream, session: HTTP3Session, maxRequestBody: Int, handler: Handler) async {
        var reader = MessageReader(stream: stream, session: session)
        let request: HTTPRequest
        do throws(MessageReader.Failure) {
            guard let fields = try await reader.fieldSection() else {
                return resetStream(stream, HTTP3Error(.requestIncomplete, "the request stream ended without a request"))
            }
            do throws(HTTP3Error) { request = try FieldRules.request(fields) } catch { throw .stream(error) }
        } catch {
            return answer(error, on: stream, session: session)
        }
        let body = HTTP3RequestBody(reader: reader, limit: maxRequestBody)
        let writer = HTTP3ResponseWriter(stream: stream, session: session)
        do {
            try await handler(request, body, writer)
            if let failure = body.failure { return answer(failure, on: stream, session: session) }
            try await writer.finish()
            body.stopReading(stream)
        } catch {
            if let failure = body.failure { return answer(failure, on: stream, session: session) }
            resetStream(stream, error is CancellationError ? HTTP3Error(.requestCancelled, "cancelled") : HTTP3Error(.internalError, "\(error)"))
        }
    }

    /// Answers a failure to read a request: a connection error closes the connection, a
    /// stream error resets the stream.
    private static func answer(_ failure: MessageReader.Failure, on stream: Quiver.Stream, session: HTTP3Session) {
        switch failure {
        case .connection(let error): session.fail(error)
        case .stream(let error): resetStream(stream, error)
        case .cancelled: resetStream(stream, HTTP3Error(.requestCancelled, "cancelled"))
        // The client reset the request (H3_REQUEST_CANCELLED, RFC 9114 §4.1.1): its response is
        // abandoned too. (On a connection that is gone this sends nothing.)
        case .transport: resetStream(stream, HTTP3Error(.requestCancelled, "the request stream failed"))
        }
    }

    /// A stream error: RESET_STREAM and STOP_SENDING with the code (RFC 9114 §8).
    static func resetStream(_ stream: Quiver.Stream, _ error: HTTP3Error) {
        try? stream.stopSending(code: error.code.rawValue)
        try? stream.reset(code: error.code.rawValue)
    }
}

/// An HTTP/3 server on a QUIC listener as a `Service` (swift-service-lifecycle): each
/// connection is served by ``HTTP3Server/serve(_:maxRequestBody:qpack:handler:)`` in a task on its
/// event loop.
///
/// ```swift
/// let listener = try Listener(.quic, tls: .server(chain: chain, key: key, alpn: ["h3"]), bind: "[::]:4433")
/// let server = HTTP3Service(listener: listener) { request, body, response in
///     try await response.writeHead(HTTPResponse(status: .ok))
///     try await response.write(Array("Hello, HTTP/3".utf8))
/// }
/// try await ServiceGroup(services: [server], gracefulShutdownSignals: [.sigterm], logger: logger).run()
/// ```
///
/// At the group's graceful shutdown it stops taking connections and drains the ones it has
/// (GOAWAY; the requests in progress finish; see ``HTTP3Server/serve(_:maxRequestBody:qpack:handler:)``),
/// waits out their closing periods, then closes the listener (connections that completed a
/// handshake meanwhile are closed unserved) and returns: `Listener.serve(maxConnections:_:)`. The group's deadline (`maximumGracefulShutdownDuration`) cancels
/// what is left.
public struct HTTP3Service: Service {
    public let listener: Listener
    private let maxRequestBody: Int
    private let handlerFor: @Sendable (Connection) -> HTTP3Server.Handler

    /// Serves every request of every connection with `handler`.
    public init(listener: Listener, maxRequestBody: Int = HTTP3Server.defaultMaxRequestBody, handler: @escaping HTTP3Server.Handler) {
        self.init(listener: listener, maxRequestBody: maxRequestBody) { _ in handler }
    }

    /// Serves each connection's requests with the handler `handlerFor` makes for it (when the
    /// handler needs the connection: its peer, certificates, a framework's request context).
    public init(listener: Listener, maxRequestBody: Int = HTTP3Server.defaultMaxRequestBody,
                handlerFor: @escaping @Sendable (Connection) -> HTTP3Server.Handler) {
        self.listener = listener
        self.maxRequestBody = maxRequestBody
        self.handlerFor = handlerFor
    }

    public func run() async throws {
        let (maxRequestBody, handlerFor) = (maxRequestBody, handlerFor)
        await listener.serve { connection in
            await HTTP3Server.serve(connection, maxRequestBody: maxRequestBody, handler: handlerFor(connection))
        }
    }
}
