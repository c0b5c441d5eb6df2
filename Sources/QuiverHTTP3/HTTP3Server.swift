public import Quiver
import QuiverCore

/// Writes one HTTP/3 response on a request stream: HEADERS, DATA frames, the end. Writes
/// suspend while the stream's send buffer is full (backpressure).
public final class HTTP3ResponseWriter {
    private let stream: Quiver.Stream
    private(set) var headWritten = false
    private(set) var finished = false

    init(stream: Quiver.Stream) { self.stream = stream }

    /// Sends the status and header fields (once, before any body).
    public func writeHead(status: Int, headers: [HTTPField] = []) async throws {
        precondition(!headWritten, "the response head was written already")
        headWritten = true
        try await stream.write(HTTP3Frame.headers(QPACK.encode([HTTPField(":status", String(status))] + headers)).encoded)
    }

    /// Sends body bytes as one DATA frame.
    public func write(_ bytes: [UInt8]) async throws {
        if !headWritten { try await writeHead(status: 200) }
        guard !bytes.isEmpty else { return }
        // The frame header and the body go as two writes: joining them would copy the body.
        try await stream.write(HTTP3Frame.header(HTTP3Frame.Kind.data, bytes.count))
        try await stream.write(bytes)
    }

    /// Ends the response, with trailer fields if any.
    public func finish(trailers: [HTTPField] = []) async throws {
        guard !finished else { return }
        if !headWritten { try await writeHead(status: 200) }
        finished = true
        if !trailers.isEmpty { try await stream.write(HTTP3Frame.headers(QPACK.encode(trailers)).encoded) }
        try stream.finish()
    }
}

/// An HTTP/3 server for one connection (RFC 9114): each request is read and answered by the
/// handler in a child task of ``serve(_:maxRequestBody:handler:)``'s task — no thread per
/// request or per connection.
public enum HTTP3Server {
    /// Answers a request: write the response with the writer (a handler that writes nothing
    /// sends an empty 200; one that throws resets the stream with H3_INTERNAL_ERROR).
    public typealias Handler = @Sendable (HTTP3Request, HTTP3ResponseWriter) async throws -> Void

    /// Settings of ``serve(_:maxRequestBody:handler:)``.
    public static let defaultMaxRequestBody = 16 << 20

    /// Serves `connection` (ALPN `h3`) until it ends. Each request's body is read whole (at
    /// most `maxRequestBody` bytes, else the stream is reset with H3_EXCESSIVE_LOAD) before the
    /// handler runs. Cancelling the calling task cancels the requests in progress (their
    /// streams are reset with H3_REQUEST_CANCELLED).
    public static func serve(_ connection: Connection, maxRequestBody: Int = defaultMaxRequestBody, handler: @escaping Handler) async {
        guard let session = start(connection) else { return }
        await session.acceptStreams { stream in
            await respond(on: stream, session: session, maxRequestBody: maxRequestBody, handler: handler)
        }
    }

    /// The connection's HTTP/3 session, our control and QPACK streams opened; `nil` when the
    /// connection is not QUIC or already ended. (Synchronous: its temporaries stay out of the
    /// frame an idle connection's task keeps.)
    private static func start(_ connection: Connection) -> HTTP3Session? {
        do throws(QuiverError) {
            // Every request stream, the first one included, comes from acceptStream: an idle
            // connection keeps no task waiting on a stream 0 that may never come.
            guard let quic = connection.quic else { return nil }
            try quic.disableDefaultStream()
            return try HTTP3Session(connection: connection, isServer: true)
        } catch {
            return nil
        }
    }

    private static func respond(on stream: Quiver.Stream, session: HTTP3Session, maxRequestBody: Int, handler: Handler) async {
        var reader = MessageReader(stream: stream, maxFieldSectionSize: session.maxFieldSectionSize)
        do throws(MessageReader.Failure) {
            guard let fields = try await reader.fieldSection() else {
                return resetStream(stream, HTTP3Error(.requestIncomplete, "the request stream ended without a request"))
            }
            var request: HTTP3Request
            do throws(HTTP3Error) { request = try FieldRules.request(fields) } catch { throw .stream(error) }
            var body: [UInt8] = []
            _ = try await reader.body { (bytes: [UInt8]) throws(MessageReader.Failure) in
                guard body.count + bytes.count <= maxRequestBody else {
                    throw .stream(HTTP3Error(.excessiveLoad, "request body over \(maxRequestBody) bytes"))
                }
                body += bytes
            }
            request.body = body
            let writer = HTTP3ResponseWriter(stream: stream)
            do {
                try await handler(request, writer)
                try await writer.finish()
            } catch is CancellationError {
                resetStream(stream, HTTP3Error(.requestCancelled, "cancelled"))
            } catch {
                resetStream(stream, HTTP3Error(.internalError, "\(error)"))
            }
        } catch {
            switch error {
            case .connection(let failure): session.fail(failure)
            case .stream(let failure): resetStream(stream, failure)
            case .cancelled: resetStream(stream, HTTP3Error(.requestCancelled, "cancelled"))
            case .transport: break  // the stream or connection is gone
            }
        }
    }

    /// A stream error: RESET_STREAM and STOP_SENDING with the code (RFC 9114 §8).
    static func resetStream(_ stream: Quiver.Stream, _ error: HTTP3Error) {
        try? stream.stopSending(code: error.code.rawValue)
        try? stream.reset(code: error.code.rawValue)
    }
}
