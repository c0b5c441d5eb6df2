import QuiverCore

/// A listener's connections whose handshake completed, waiting for `accept`: filled by the
/// cores of all its event loops, read by ``Listener/accept()``, ``Listener/tryAccept()``, the
/// async sequence and pollers.
///
/// Its own ``monitor`` is taken inside a core's lock (a core queues a session while it handles
/// events), never the other way round: `accept` takes no core's lock, so loops never wait for
/// an accepting thread and an accepting thread waits for no loop.
final class AcceptQueue: @unchecked Sendable {
    // @unchecked: `sessions` and `isClosed` are guarded by `monitor`.
    let monitor = Monitor()
    /// The pollers registered on the listener, signalled under ``monitor``.
    let links = PollLinks()
    private var sessions: [any Session] = []
    private var head = 0
    private(set) var isClosedLocked = false
    /// Accepting stopped (a graceful shutdown): the queue still fills, nothing is taken out.
    private(set) var isStoppedLocked = false

    /// Queues `session` and wakes the waiters.
    func append(_ session: any Session) {
        monitor.withLock {
            guard !isClosedLocked else { return }
            sessions.append(session)
            monitor.broadcast()
            links.signal()
        }
    }

    /// The oldest queued session (lock held).
    func nextLocked() -> (any Session)? {
        guard head < sessions.count else { return nil }
        let session = sessions[head]
        head += 1
        if head == sessions.count || head >= 64 && head * 2 >= sessions.count {  // compact now and then
            sessions.removeFirst(head)
            head = 0
        }
        return session
    }

    var isEmptyLocked: Bool { head == sessions.count }
    var isEmpty: Bool { monitor.withLock { isEmptyLocked } }

    /// Takes `session` out of the queue (lock held): it was handed to another process.
    func removeLocked(_ session: any Session) {
        guard let index = sessions[head...].firstIndex(where: { $0 === session }) else { return }
        sessions.remove(at: index)
    }

    /// Ends the queue (lock held): queued sessions are dropped, waiters woken, and every later
    /// attempt to accept throws `.closed`.
    func closeLocked() {
        isClosedLocked = true
        sessions.removeAll()
        head = 0
        monitor.broadcast()
        links.signal()
    }

    /// Stops accepting: waiters are woken, and every later attempt to accept throws `.closed`;
    /// the connections that complete their handshakes stay queued until the listener closes.
    func stopAccepting() {
        monitor.withLock {
            isStoppedLocked = true
            monitor.broadcast()
            links.signal()
        }
    }

    /// ``closeLocked()`` under the lock.
    func close() { monitor.withLock { closeLocked() } }
}
