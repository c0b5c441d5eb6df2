import QuiverCore
import X509

/// A stream of a session: `nil` is the connection's default stream.
typealias StreamKey = UInt64?

/// The transport-specific half of a ``Connection`` (QUIC or TLS). Every `…Locked` member is
/// called with ``monitor`` held; "would block" is `nil` (or 0 bytes written), never an error.
protocol Session: AnyObject, Sendable {
    var monitor: Monitor { get }
    var driver: Driver { get }
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
    func readinessLocked(_ stream: StreamKey) -> PollEvents
    func stateLocked(_ stream: StreamKey) -> Stream.State
    /// Called after a command, outside the lock: lets the driver send what it produced.
    func commandIssued()
    /// Whether a command since the last call changed what the driver must send (and resets it).
    func takeServiceRequestLocked() -> Bool

    var peerAddress: SocketAddress? { get }
    var alpn: String? { get }
    var serverName: String? { get }
    var peerCertificates: [Certificate] { get }
    /// The QUIC session, for QUIC-only features (``Connection/quic``); `nil` on TLS.
    var quic: QUICSession? { get }
}

extension Session {
    /// Runs `attempt` under the lock until it produces a value: blocking. A thread-assisted
    /// driver wakes the waiter; with an application-driven driver the waiting thread drives
    /// the event loop itself. The driver is told only when the attempt changed something it
    /// must send (``takeServiceRequestLocked()``), so polling loops do not keep it busy.
    ///
    /// `wake` says what can make the attempt succeed (``Monitor/Wake``): `.events` for reads,
    /// accepts and datagrams, which only engine events change; `.room` for writes waiting for
    /// acknowledged space; `.progress` (the default) for the rest — stream limits, delivery, the
    /// closing period.
    func blocking<Value>(wake: Monitor.Wake = .progress, _ attempt: () throws(QuiverError) -> Value?) throws(QuiverError) -> Value {
        while true {
            monitor.lock()
            var value: Value?
            var failure: QuiverError?
            do throws(QuiverError) { value = try attempt() } catch { failure = error }
            let service = takeServiceRequestLocked()
            if value == nil, failure == nil, driver.isThreadAssisted, !service {
                if driver.isOnLoopThread {
                    monitor.unlock()
                    throw Driver.wouldBlockLoop
                }
                monitor.wait(for: wake)
                monitor.unlock()
                continue
            }
            monitor.unlock()
            if service { commandIssued() }
            if let failure { throw failure }
            if let value { return value }
            if !driver.isThreadAssisted { driver.driveOnce() }
        }
    }

    /// ``blocking(wake:_:)`` for tasks: the task is suspended, not the thread, and resumed by
    /// the broadcast that would wake a blocked thread. Cancelling the task ends the wait with
    /// `CancellationError` (the connection itself is untouched).
    ///
    /// - Throws: `CancellationError`, or the attempt's ``QuiverError``; `.configuration` on an
    ///   application-driven connection (its caller drives it; there is no thread to wake a task).
    @inline(__always)
    func awaiting<Value>(wake: Monitor.Wake = .progress, _ attempt: () throws(QuiverError) -> Value?) async throws -> Value {
        guard driver.isThreadAssisted else {
            throw QuiverError(.configuration, "async calls need the thread-assisted driver; an application-driven connection is driven by its caller's try… calls")
        }
        return try await monitor.awaiting(wake: wake) { () throws(QuiverError) -> (Value?, Bool) in
            let value = try attempt()
            return (value, takeServiceRequestLocked())
        } afterAttempt: { service in
            if service { commandIssued() }
        }
    }

    /// Runs `attempt` once under the lock: non-blocking.
    func once<Value>(_ attempt: () throws(QuiverError) -> Value) throws(QuiverError) -> Value {
        monitor.lock()
        var value: Value?
        var failure: QuiverError?
        do throws(QuiverError) { value = try attempt() } catch { failure = error }
        let service = takeServiceRequestLocked()
        monitor.unlock()
        if service { commandIssued() }
        if let failure { throw failure }
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
