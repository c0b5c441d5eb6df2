import QuiverCore
import QuiverTLS
import X509

/// A stream of a session: `nil` is the connection's default stream.
typealias StreamKey = UInt64?

/// The transport-specific half of a ``Connection`` (QUIC, TLS or DTLS). Every `…Locked` member is
/// called with ``monitor`` held; "would block" is `nil` (or 0 bytes written), never an error.
protocol Session: AnyObject, Sendable {
    var monitor: Monitor { get }
    var driver: Driver { get }
    /// The transport the session speaks.
    var transport: Transport { get }
    /// Registered pollers, guarded by ``monitor``.
    var pollLinks: PollLinks { get }

    func readLocked(_ stream: StreamKey, maxBytes: Int) throws(QuiverError) -> [UInt8]?
    /// Writes what fits; when nothing does, a `blocking` writer is woken by
    /// ``Monitor/broadcastRoom()`` once there is space.
    func writeLocked(_ stream: StreamKey, _ bytes: ArraySlice<UInt8>, blocking: Bool) throws(QuiverError) -> Int
    func finishLocked(_ stream: StreamKey) throws(QuiverError)
    func resetLocked(_ stream: StreamKey, code: UInt64) throws(QuiverError)
    func stopSendingLocked(_ stream: StreamKey, code: UInt64) throws(QuiverError)
    func acceptStreamLocked() throws(QuiverError) -> UInt64?
    func openStreamLocked(bidirectional: Bool) throws(QuiverError) -> UInt64?
    func closeLocked(code: UInt64, reason: String)
    /// Whether everything written has been delivered (for a flushing shutdown).
    var isFlushedLocked: Bool { get }
    var closeInfoLocked: CloseInfo? { get }
    /// Whether the handshake completed (or the connection failed: then reads report it).
    var isReadyLocked: Bool { get }
    /// Whether the connection has ended completely — QUIC's closing or draining period is over,
    /// TLS's transport is closed — or its driver stopped (nothing will run it any more).
    var isTerminatedLocked: Bool { get }
    /// Whether our close has been handed to the transport (QUIC: the CONNECTION_CLOSE was
    /// written into a datagram for the socket; TLS: as ``isTerminatedLocked``), or the
    /// connection ended otherwise.
    var isCloseSentLocked: Bool { get }
    func readinessLocked(_ stream: StreamKey) -> PollEvents
    func stateLocked(_ stream: StreamKey) -> Stream.State
    /// Called after a command, outside the lock: lets the driver send what it produced.
    func commandIssued()
    /// Whether a command since the last call changed what the driver must send (and resets it).
    func takeServiceRequestLocked() -> Bool

    var peerAddress: SocketAddress? { get }
    var alpn: String? { get }
    /// The TLS version, once negotiated (QUIC: always TLS 1.3).
    var tlsVersion: TLSVersion? { get }
    var serverName: String? { get }
    var peerCertificates: [Certificate] { get }
    /// The QUIC session, for QUIC-only features (``Connection/quic``); `nil` on TLS.
    var quic: QUICSession? { get }
}

extension Session {
    /// Runs `attempt` once as the owner of the connection's engine (``Driver/perform(_:)``: on
    /// its loop; from another thread the loop runs it and the caller waits), under the
    /// session's lock, and tells the driver when the attempt left it something to send
    /// (``takeServiceRequestLocked()``). Returns the outcome, whether the driver was told, and
    /// the ``Monitor/generation(for:)`` of `wake` in the same lock hold — a caller that must
    /// wait waits for a later broadcast, so none falls between the attempt and the wait.
    @inline(__always)
    func owned<Value>(wake: Monitor.Wake = .progress, _ attempt: () throws(QuiverError) -> Value) -> Owned<Value> {
        var owned: Owned<Value>?
        driver.perform {
            monitor.lock()
            let outcome: Result<Value, QuiverError>
            do throws(QuiverError) { outcome = .success(try attempt()) } catch { outcome = .failure(error) }
            let service = takeServiceRequestLocked()
            owned = Owned(outcome: outcome, service: service, seen: monitor.generation(for: wake))
            monitor.unlock()
            if service { commandIssued() }
        }
        return owned!
    }

    /// Runs `attempt` as the engine's owner until it produces a value: blocking. A
    /// thread-assisted driver's loop runs each attempt and wakes the waiter; with an
    /// application-driven driver the waiting thread drives the event loop itself.
    ///
    /// `wake` says what can make the attempt succeed (``Monitor/Wake``): `.events` for reads,
    /// accepts and datagrams, which only engine events change; `.room` for writes waiting for
    /// acknowledged space; `.progress` (the default) for the rest — stream limits, delivery, the
    /// closing period.
    ///
    /// - Throws: the attempt's error; `.configuration` when it would wait on a loop's thread (a
    ///   task on a listener's `taskExecutor`): a waiting loop serves none of its connections.
    func blocking<Value>(wake: Monitor.Wake = .progress, _ attempt: () throws(QuiverError) -> Value?) throws(QuiverError) -> Value {
        while true {
            let owned = owned(wake: wake, attempt)
            if let value = try owned.outcome.get() { return value }
            guard driver.isThreadAssisted else {
                driver.driveOnce()
                continue
            }
            if Driver.current != nil { throw Driver.wouldBlockLoop }
            // A command went to the loop: its answer may be what the attempt waits for, and the
            // next attempt runs after the loop handled it.
            if owned.service { continue }
            monitor.lock()
            monitor.wait(for: wake, since: owned.seen)
            monitor.unlock()
        }
    }

    /// ``blocking(wake:_:)`` for tasks: the task is suspended, not the thread, and resumed by
    /// the broadcast that would wake a blocked thread. A task not on the connection's loop
    /// hops to it (its executor) for the call, so the attempts run there. Cancelling the task
    /// ends the wait with `CancellationError` (the connection itself is untouched).
    ///
    /// - Throws: `CancellationError`, or the attempt's ``QuiverError``; `.configuration` on an
    ///   application-driven connection (its caller drives it; there is no thread to wake a task).
    @inline(__always)
    func awaiting<Value>(wake: Monitor.Wake = .progress, _ attempt: () throws(QuiverError) -> Value?) async throws -> Value {
        guard driver.isThreadAssisted else {
            throw QuiverError(.configuration, "async calls need the thread-assisted driver; an application-driven connection is driven by its caller's try… calls")
        }
        if driver.isOnLoopThread { return try await awaitingOnLoop(wake: wake, attempt) }
        return try await hopToLoop(wake: wake, attempt)
    }

    /// ``awaiting(wake:_:)`` for a task off the loop: it runs on the loop (its executor) for
    /// the call. Not inlined: the frame a task waiting on the loop keeps stays small (it holds
    /// nothing of this path; inlined, every idle connection's waiting task grew by a 1 KiB
    /// task-allocator slab).
    @inline(never)
    private func hopToLoop<Value>(wake: Monitor.Wake, _ attempt: () throws(QuiverError) -> Value?) async throws -> Value {
        try await withTaskExecutorPreference(driver) {
            try await awaitingOffLoop(wake: wake, attempt)
        }
    }

    /// ``awaiting(wake:_:)`` on the loop's thread: each attempt runs in place.
    @inline(__always)
    private func awaitingOnLoop<Value>(wake: Monitor.Wake, _ attempt: () throws(QuiverError) -> Value?) async throws -> Value {
        try await monitor.awaiting(wake: wake) { () throws(QuiverError) -> (Value?, Bool) in
            let value = try attempt()
            return (value, takeServiceRequestLocked())
        } afterAttempt: { service in
            if service { commandIssued() }
        }
    }

    /// ``awaiting(wake:_:)`` after the hop to the loop's executor: on the loop's thread as a
    /// rule; when the loop has ended (its executor hands jobs to the global one), each attempt
    /// runs as ``Driver/perform(_:)`` says.
    private func awaitingOffLoop<Value>(wake: Monitor.Wake, _ attempt: () throws(QuiverError) -> Value?) async throws -> Value {
        if driver.isOnLoopThread { return try await awaitingOnLoop(wake: wake, attempt) }
        while true {
            try Task.checkCancellation()
            let owned = owned(wake: wake, attempt)
            if let value = try owned.outcome.get() { return value }
            if owned.service {
                await Task.yield()
            } else {
                await monitor.suspend(for: wake, since: owned.seen)
            }
        }
    }

    /// Runs `attempt` once as the engine's owner: non-blocking.
    func once<Value>(_ attempt: () throws(QuiverError) -> Value) throws(QuiverError) -> Value {
        try owned(attempt).outcome.get()
    }

    /// Runs `body` once as the engine's owner, under the session's lock, and tells the driver
    /// when it left something to send: for what cannot fail — reading connection properties
    /// and stream state, closing.
    @discardableResult
    func withEngine<Value>(_ body: () -> Value) -> Value {
        var value: Value?
        driver.perform {
            monitor.lock()
            value = body()
            let service = takeServiceRequestLocked()
            monitor.unlock()
            if service { commandIssued() }
        }
        return value!
    }

    /// Wakes blocked callers and pollers after the session changed (lock held).
    func changedLocked() {
        monitor.broadcast()
        pollLinks.signal()
    }

    /// Wakes the callers waiting for progress, and the pollers, after an engine operation that
    /// produced no event (lock held).
    func progressedLocked() {
        monitor.broadcastProgress()
        pollLinks.signal()
    }
}

/// What ``Session/owned(wake:_:)`` reports.
struct Owned<Value> {
    var outcome: Result<Value, QuiverError>
    /// Whether the attempt left the driver something to send (the driver was told).
    var service: Bool
    /// The generation of the waited-for broadcasts at the attempt.
    var seen: UInt64
}
