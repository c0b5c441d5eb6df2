import QuiverCore
public import QuiverTLS

// Swift concurrency for listeners, connections and streams. Every blocking call has an
// `async` overload (Swift picks it in async code) that suspends the task instead of the
// thread — the session's ``Monitor`` resumes it exactly where it would wake a blocked
// thread — and incoming connections, streams, bytes and datagrams are `AsyncSequence`s.
// Cancelling a task ends its wait with `CancellationError`; ``Connection/executeThenClose(errorCode:_:)``
// ties a connection's lifetime to a scope, as SwiftNIO's `NIOAsyncChannel` does.
//
// These calls need the thread-assisted driver (the default): an application-driven listener
// or connection is driven by its caller's `try…` calls and has no thread to resume a task.

// MARK: - Listener

extension Listener {
    /// The next connection whose handshake completed; suspends until one arrives.
    /// - Throws: `QuiverError` `.closed` once the listener is closed; `CancellationError`.
    public func accept() async throws -> Connection {
        guard driver.isThreadAssisted else {
            throw QuiverError(.configuration, "async calls need the thread-assisted driver; an application-driven listener is driven by its caller's try… calls")
        }
        return try await lock.awaiting(wake: .progress) { () throws(QuiverError) -> (Connection?, Bool) in
            (try acceptLocked(), false)
        } afterAttempt: { _ in }
    }

    /// The connections as they complete their handshakes; the sequence ends when the listener
    /// closes.
    ///
    /// ```swift
    /// try await withThrowingDiscardingTaskGroup { group in
    ///     for try await connection in listener.connections {
    ///         group.addTask { try await echo(connection) }
    ///     }
    /// }
    /// ```
    public var connections: IncomingConnections { IncomingConnections(listener: self) }

    /// The listener's event loop as a task executor (`nil` for an application-driven listener).
    /// Tasks that prefer it run on the listener's I/O thread between rounds of event handling:
    /// a connection's engine, its sockets and the code reading and writing it share one
    /// thread, so resuming a task after input or after room to write crosses no thread.
    /// Prefer it for the tasks that serve the listener's connections (child tasks inherit the
    /// preference):
    ///
    /// ```swift
    /// await withTaskExecutorPreference(listener.taskExecutor) {
    ///     await withDiscardingTaskGroup { group in
    ///         for try await connection in listener.connections {
    ///             group.addTask { await serve(connection) }
    ///         }
    ///     }
    /// }
    /// ```
    ///
    /// All of the listener's connections then share one core. Code on this executor must not
    /// block: a blocking Quiver call that would wait throws `.configuration` there, and any
    /// other long computation delays every connection of the loop.
    ///
    /// With several ``Options/eventLoops`` this is the first loop; put each connection's tasks
    /// on its own loop instead, ``Connection/taskExecutor``:
    ///
    /// ```swift
    /// for try await connection in listener.connections {
    ///     group.addTask(executorPreference: connection.taskExecutor) { await serve(connection) }
    /// }
    /// ```
    public var taskExecutor: (any TaskExecutor)? { driver.isThreadAssisted ? driver : nil }
}

/// A listener's connections, in the order their handshakes completed (``Listener/connections``).
public struct IncomingConnections: AsyncSequence, Sendable {
    public typealias Element = Connection
    let listener: Listener

    public struct AsyncIterator: AsyncIteratorProtocol {
        let listener: Listener

        /// The next connection; `nil` once the listener is closed.
        public mutating func next() async throws -> Connection? {
            do {
                return try await listener.accept()
            } catch let error as QuiverError where error.code == .closed {
                return nil
            }
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(listener: listener) }
}

// MARK: - Connection

extension Connection {
    /// The event loop that drives this connection as a task executor (its listener's, or a
    /// client connection's own; `nil` when application-driven) — see ``Listener/taskExecutor``.
    public var taskExecutor: (any TaskExecutor)? { session.driver.isThreadAssisted ? session.driver : nil }

    /// Connects to `host:port` and completes the handshake, suspending the task while it runs
    /// (name resolution and the TCP connect itself still block briefly).
    public static func connect(_ transport: Transport, to host: String, port: UInt16, tls: TLSConfiguration,
                               serverName: String? = nil, options: ClientOptions = ClientOptions()) async throws -> Connection {
        var immediate = options
        immediate.waitForHandshake = false
        let connection = try open(transport, to: host, port: port, tls: tls, serverName: serverName, options: immediate)
        if options.waitForHandshake { try await connection.waitForHandshake() }
        return connection
    }

    /// Suspends until the handshake completes.
    /// - Throws: `.closed` when it failed (`.io` "Connection refused" for an unreachable server).
    public func waitForHandshake() async throws {
        _ = try await session.awaiting(wake: .events) { () throws(QuiverError) in try handshakeOutcomeLocked() }
    }

    /// Reads up to `maxBytes` from the default stream; suspends until data arrives. An empty
    /// result is the end of the stream.
    public func read(maxBytes: Int = 1 << 16) async throws -> [UInt8] { try await defaultStream.read(maxBytes: maxBytes) }

    /// Writes all of `bytes` to the default stream, suspending while its send buffer is full
    /// (backpressure).
    public func write(_ bytes: some Collection<UInt8>) async throws { try await defaultStream.write(bytes) }

    /// The default stream's bytes as they arrive, until the peer finishes it.
    public var inbound: InboundBytes { defaultStream.inbound }

    /// The next stream the peer opened; suspends until one arrives.
    /// - Throws: `.closed` when the connection ends.
    public func acceptStream() async throws -> Stream {
        let id = try await session.awaiting(wake: .events) { () throws(QuiverError) in try session.acceptStreamLocked() }
        return Stream(connection: self, key: id)
    }

    /// The streams the peer opens (QUIC), until the connection ends: cleanly — the sequence
    /// finishes — or with an error, which it throws.
    public var inboundStreams: IncomingStreams { IncomingStreams(connection: self) }

    /// Opens a stream, suspending while the peer's stream limit is reached (QUIC only).
    public func openStream(bidirectional: Bool = true) async throws -> Stream {
        let id = try await session.awaiting { () throws(QuiverError) in try session.openStreamLocked(bidirectional: bidirectional) }
        return Stream(connection: self, key: id)
    }

    /// Ends the connection; a flushing mode suspends until everything written was delivered.
    public func shutdown(_ mode: ShutdownMode = .flush) async throws {
        if mode.waitsForDelivery {
            _ = try? session.once { () throws(QuiverError) in try session.finishLocked(nil) }
            _ = try await session.awaiting { () -> Bool? in isFlushedOrClosedLocked }
        }
        close(mode)
    }

    /// Suspends until the connection has ended completely (see the blocking
    /// ``waitUntilClosed()``).
    public func waitUntilClosed() async {
        _ = try? await session.awaiting { () -> Bool? in session.isTerminatedLocked ? true : nil }
    }

    /// Suspends until our close has been handed to the transport (see the blocking
    /// ``waitUntilCloseSent()``).
    public func waitUntilCloseSent() async {
        _ = try? await session.awaiting { () -> Bool? in session.isCloseSentLocked ? true : nil }
    }

    /// Runs `body` with the connection, then ends it: a flushing shutdown when `body`
    /// returns, a rapid close with `errorCode` when it throws (its task was cancelled, say) —
    /// so nothing outlives the scope, as with SwiftNIO's `NIOAsyncChannel.executeThenClose`.
    /// Tasks `body` starts in a task group end with it (structured concurrency).
    ///
    /// - Parameters:
    ///   - errorCode: the application error code of the close when `body` throws (QUIC; on TLS
    ///     any non-zero code resets the TCP connection).
    ///   - body: what to do with the connection.
    /// - Returns: what `body` returned.
    public func executeThenClose<Result>(errorCode: UInt64 = 1, _ body: (Connection) async throws -> Result) async throws -> Result {
        let result: Result
        do {
            result = try await body(self)
        } catch {
            close(.rapid(code: errorCode, reason: error is CancellationError ? "cancelled" : "\(error)"))
            throw error
        }
        try await shutdown(.flush)
        return result
    }
}

/// The streams a peer opens (``Connection/inboundStreams``).
public struct IncomingStreams: AsyncSequence, Sendable {
    public typealias Element = Stream
    let connection: Connection

    public struct AsyncIterator: AsyncIteratorProtocol {
        let connection: Connection

        /// The next stream; `nil` once the connection ended cleanly.
        public mutating func next() async throws -> Stream? {
            do {
                return try await connection.acceptStream()
            } catch let error as QuiverError where error.code == .closed && connection.closeInfo?.isClean == true {
                return nil
            }
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(connection: connection) }
}

// MARK: - QUIC datagrams

extension Connection.QUIC {
    /// The next datagram received (RFC 9221); suspends until one arrives.
    /// - Throws: `.closed` when the connection ends; `CancellationError`.
    public func receiveDatagram() async throws -> [UInt8] {
        try await session.awaiting(wake: .events) { () throws(QuiverError) in try session.nextDatagramLocked() }
    }

    /// The datagrams received, until the connection ends (then the sequence finishes).
    public var datagrams: IncomingDatagrams { IncomingDatagrams(quic: self) }
}

/// The datagrams a QUIC connection receives (``Connection/QUIC/datagrams``).
public struct IncomingDatagrams: AsyncSequence, Sendable {
    public typealias Element = [UInt8]
    let quic: Connection.QUIC

    public struct AsyncIterator: AsyncIteratorProtocol {
        let quic: Connection.QUIC

        /// The next datagram; `nil` once the connection ended.
        public mutating func next() async throws -> [UInt8]? {
            do {
                return try await quic.receiveDatagram()
            } catch let error as QuiverError where error.code == .closed {
                return nil
            }
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(quic: quic) }
}

// MARK: - Stream

extension Stream {
    /// Reads up to `maxBytes`; suspends until data arrives. An empty result is the end of the
    /// stream.
    /// - Throws: `.streamReset` when the peer reset the stream, `.closed` when the connection
    ///   ended first, `CancellationError`.
    public func read(maxBytes: Int = 1 << 16) async throws -> [UInt8] {
        try await session.awaiting(wake: .events) { () throws(QuiverError) in try session.readLocked(key, maxBytes: maxBytes) }
    }

    /// Writes all of `bytes`, suspending while the send buffer is full (backpressure). When
    /// cancelled part-way, what was accepted before stays written.
    public func write(_ bytes: some Collection<UInt8>) async throws {
        var remaining = ArraySlice(bytes)
        while !remaining.isEmpty {
            let count = try await session.awaiting(wake: .room) { () throws(QuiverError) -> Int? in
                let count = try session.writeLocked(key, remaining, blocking: true)
                return count > 0 ? count : nil
            }
            remaining = remaining.dropFirst(count)
        }
    }

    /// The stream's bytes as they arrive, in chunks, until the peer finishes it.
    public var inbound: InboundBytes { InboundBytes(stream: self) }
}

/// A stream's bytes as they arrive (``Stream/inbound``): chunks of up to 64 KiB; the sequence
/// ends with the stream.
public struct InboundBytes: AsyncSequence, Sendable {
    public typealias Element = [UInt8]
    let stream: Stream

    public struct AsyncIterator: AsyncIteratorProtocol {
        let stream: Stream
        var finished = false

        /// The next chunk; `nil` at the end of the stream.
        public mutating func next() async throws -> [UInt8]? {
            guard !finished else { return nil }
            let bytes = try await stream.read()
            if bytes.isEmpty {
                finished = true
                return nil
            }
            return bytes
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(stream: stream) }
}
