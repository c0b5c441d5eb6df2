public import HTTPTypes
public import Quiver
public import QuiverCore

/// An HTTP/3 client over one QUIC `Connection` (ALPN `h3`): any number of tasks may send
/// requests at once, each on its own stream.
public final class HTTP3Client: Sendable {
    private let session: HTTP3Session
    /// Reads the server's control and QPACK streams until the connection ends.
    private let peerStreams: Task<Void, Never>

    /// Starts HTTP/3 on `connection`: opens the control and QPACK streams and reads the
    /// server's in a task. `qpack` sets the limits of our QPACK decoder (and caps the table
    /// our encoder uses in the server).
    public init(_ connection: Connection, qpack: QPACKSettings = QPACKSettings()) throws(QuiverError) {
        session = try HTTP3Session(connection: connection, isServer: false, qpack: qpack)
        let session = session
        // On the connection's event loop, like the requests of a client that prefers it.
        peerStreams = Task(executorPreference: connection.taskExecutor) { await session.acceptStreams(request: nil) }
    }

    deinit { peerStreams.cancel() }

    /// The connection.
    public var connection: Connection { session.connection }

    /// What QPACK's dynamic tables did on this connection so far, both ways.
    public var qpackStatistics: QPACKStatistics { session.statistics }

    /// Sends `request` with `body` and waits for the response. With `onBody`, the response
    /// body is handed over in pieces as it arrives (and not kept in the response); otherwise it
    /// is collected. Informational (1xx) responses are skipped.
    ///
    /// - Throws: ``HTTP3Error`` for a malformed response (the stream is reset; a connection
    ///   error also closes the connection), `H3_REQUEST_REJECTED` for a request the server did
    ///   not process (after its GOAWAY: it may be sent again), `QuiverError` when the stream or
    ///   connection fails.
    public func send(_ request: HTTPRequest, body: [UInt8] = [], onBody: (([UInt8]) async -> Void)? = nil) async throws -> HTTP3Response {
        let stream = try await open(request, firstData: body)
        do {
            try stream.finish()
        } catch {
            guard case .stoppedByPeer = stream.state.sending else { throw notProcessed(error, stream: stream) }
        }
        return try await response(on: stream, onBody: onBody)
    }

    /// Sends `request` with a body that streams: each piece `body` yields goes out as it comes,
    /// as QUIC's flow control lets it, while the response is read — so a server may answer as
    /// the body arrives (an echo), and neither side holds the whole body.
    ///
    /// A server may answer before the body ended (RFC 9114 §4.1.1): if it asks for no more
    /// (STOP_SENDING with H3_NO_ERROR) the sending ends quietly; once its response is complete,
    /// the rest of the body is not sent (the stream is reset with H3_REQUEST_CANCELLED) and the
    /// response is returned. If `body` throws, the request's sending part is reset with
    /// H3_REQUEST_CANCELLED, and once the server abandons the response in turn (or ends it),
    /// `send` throws that error. `body` is read in a child task, cancelled when the response
    /// ends first: a body that waits must end (or throw) when its task is cancelled, as
    /// `AsyncStream` does.
    ///
    /// - Throws: what ``send(_:body:onBody:)`` throws, or the error of `body`.
    public func send<Body: AsyncSequence & Sendable>(_ request: HTTPRequest, streaming body: Body,
                                                     onBody: (([UInt8]) async -> Void)? = nil) async throws -> HTTP3Response
    where Body.Element == [UInt8] {
        let stream = try await open(request, firstData: [])
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await Self.write(body, on: stream) }
            let response: HTTP3Response
            do {
                response = try await self.response(on: stream, onBody: onBody)
            } catch {
                // The body's own failure reset the stream, which ended the response: it is the cause.
                group.cancelAll()
                do { try await group.next() } catch let failure where !(failure is CancellationError) { throw failure }
                throw error
            }
            // The response is complete: a body still being sent is not needed (§4.1.1), and one
            // still waited for (a server that stopped it early) is not waited for.
            if case .open = stream.state.sending {
                HTTP3Server.resetStream(stream, HTTP3Error(.requestCancelled, "the response is complete"))
            }
            group.cancelAll()
            do { try await group.next() } catch let failure where !(failure is CancellationError) { throw failure }
            return response
        }
    }

    /// Opens a request stream and writes the request's HEADERS, and `firstData` in a DATA frame
    /// with them.
    private func open(_ request: HTTPRequest, firstData: [UInt8]) async throws -> Quiver.Stream {
        if let goaway = session.goaway { throw HTTP3Error(.requestRejected, "the server sent GOAWAY(\(goaway))") }
        let stream: Quiver.Stream
        do { stream = try await connection.openStream() } catch let error as QuiverError {
            throw notProcessed(error, stream: nil)
        }
        var head = HTTP3Frame.headers(await session.encode(FieldRules.lines(request), on: stream)).encoded
        if !firstData.isEmpty { head += HTTP3Frame.data(firstData).encoded }
        do {
            try await stream.write(head)
        } catch let error as QuiverError {
            // A server that needs no more of the request asks us to stop sending it and answers
            // anyway (RFC 9114 §4.1.1): the response is read as usual.
            guard case .stoppedByPeer = stream.state.sending else { throw notProcessed(error, stream: stream) }
        }
        return stream
    }

    /// Writes a streamed request body in DATA frames and finishes the stream. A stream the
    /// server stopped is a success (RFC 9114 §4.1.1), and so is one that fails (the response's
    /// reader sees that failure too); a failure of `body` resets the sending part with
    /// H3_REQUEST_CANCELLED and is thrown.
    private static func write<Body: AsyncSequence>(_ body: Body, on stream: Quiver.Stream) async throws where Body.Element == [UInt8] {
        var pieces = body.makeAsyncIterator()
        while true {
            let piece: [UInt8]?
            do { piece = try await pieces.next() } catch {
                // Only the sending part: the server answers the reset by resetting the response,
                // which ends the reading (a read after our own STOP_SENDING would look like a
                // clean end of the response instead).
                try? stream.reset(code: HTTP3Error.Code.requestCancelled.rawValue)
                throw error
            }
            guard let piece else { break }
            do {
                if !piece.isEmpty { try await stream.write(HTTP3Frame.data(piece).encoded) }
            } catch {
                return
            }
        }
        try? stream.finish()
    }

    /// Reads the response of the request on `stream`.
    private func response(on stream: Quiver.Stream, onBody: (([UInt8]) async -> Void)?) async throws -> HTTP3Response {
        var reader = MessageReader(stream: stream, session: session)
        do throws(MessageReader.Failure) {
            var head: HTTPResponse
            repeat {  // informational (1xx) responses precede the final one (RFC 9114 §4.1)
                guard let fields = try await reader.fieldSection() else {
                    throw .stream(HTTP3Error(.requestIncomplete, "the response stream ended without a response"))
                }
                do throws(HTTP3Error) { head = try FieldRules.response(fields) } catch { throw .stream(error) }
            } while head.status.kind == .informational
            var collected: [UInt8] = []
            while let bytes = try await reader.nextData() {
                if let onBody { await onBody(bytes) } else { collected += bytes }
            }
            var trailers = HTTPFields()
            if let lines = reader.trailers {
                do throws(HTTP3Error) { trailers = try FieldRules.trailers(lines) } catch { throw .stream(error) }
            }
            return HTTP3Response(head: head, body: collected, trailers: trailers)
        } catch {
            switch error {
            case .connection(let failure):
                session.fail(failure)
                throw failure
            case .stream(let failure):
                HTTP3Server.resetStream(stream, failure)
                throw failure
            case .transport(let failure):
                throw notProcessed(failure, stream: stream)
            case .cancelled:
                HTTP3Server.resetStream(stream, HTTP3Error(.requestCancelled, "cancelled"))
                throw CancellationError()
            }
        }
    }

    /// `error` as H3_REQUEST_REJECTED when it says the server did not process the request, so
    /// that it may be sent again (RFC 9114 §5.2): the server refused the stream with that code,
    /// or the connection ended after a GOAWAY that the stream was not below (or before it was
    /// opened at all).
    private func notProcessed(_ error: QuiverError, stream: Quiver.Stream?) -> any Error {
        if error.code == .streamReset, error.applicationErrorCode == HTTP3Error.Code.requestRejected.rawValue {
            return HTTP3Error(.requestRejected, "the server refused the request (H3_REQUEST_REJECTED): it is going away")
        }
        if error.code == .closed, let goaway = session.goaway, (stream?.id).map({ $0 >= goaway }) ?? true {
            return HTTP3Error(.requestRejected, "the connection closed after GOAWAY(\(goaway)), before this request")
        }
        return error
    }

    /// A GET for `path` on `authority` (scheme `https`).
    public func get(_ path: String, authority: String, onBody: (([UInt8]) async -> Void)? = nil) async throws -> HTTP3Response {
        try await send(HTTPRequest(method: .get, scheme: "https", authority: authority, path: path), onBody: onBody)
    }

    /// Closes the connection with H3_NO_ERROR after a GOAWAY; the task reading the server's
    /// streams ends with it.
    public func close() { session.close() }
}
