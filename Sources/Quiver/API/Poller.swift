import QuiverCore
import Synchronization

/// Waits on many listeners, connections and streams at once — the `SSL_poll` equivalent.
///
/// Readiness is tracked by notification: an object signals its pollers when its state
/// changes, and ``wait(timeout:)`` re-examines only signalled objects (and those that were
/// ready last time), so a wait costs in proportion to the objects that changed, not to all
/// registered ones. Results are level-triggered: an object stays reported while it is ready.
///
/// Pollers need objects whose I/O runs on its own (thread-assisted drivers); for
/// application-driven listeners, call their `handleEvents()` first and use `wait(timeout: .zero)`.
///
/// **Thread safety.** Any thread may register and wait; one waiter at a time is typical.
public final class Poller: Sendable {
    /// Something a poller can watch.
    public enum Item: Sendable {
        case listener(Listener)
        case connection(Connection)
        case stream(Stream)
    }

    /// A registered item that is ready.
    public struct Ready: Sendable {
        /// The item.
        public let item: Item
        /// What is ready (within the interest it was registered with, plus `.error`).
        public let events: PollEvents
        /// The key returned by ``add(_:interest:)``.
        public let key: Int
    }

    private struct Registration {
        let item: Item
        let interest: PollEvents
    }

    private struct State {
        var registrations: [Int: Registration] = [:]
        var candidates: Set<Int> = []
        var nextKey = 0
    }

    private let state = Mutex(State())
    private let monitor = Monitor()

    public init() {}

    /// Watches `item` for `interest` (`.error` is always reported). Returns a key for
    /// ``remove(_:)``.
    @discardableResult
    public func add(_ item: Item, interest: PollEvents) -> Int {
        let key = state.withLock { state in
            let key = state.nextKey
            state.nextKey += 1
            state.registrations[key] = Registration(item: item, interest: interest)
            return key
        }
        link(item, key: key, add: true)
        signal(key)
        return key
    }

    /// Stops watching the item registered under `key`.
    public func remove(_ key: Int) {
        guard let registration = state.withLock({ state -> Registration? in
            state.candidates.remove(key)
            return state.registrations.removeValue(forKey: key)
        }) else { return }
        link(registration.item, key: key, add: false)
    }

    private func link(_ item: Item, key: Int, add: Bool) {
        switch item {
        case .listener(let listener):
            listener.link(self, key: key, add: add)
        case .connection(let connection):
            connection.session.monitor.withLock {
                add ? connection.session.pollLinks.add(self, key: key) : connection.session.pollLinks.remove(self, key: key)
            }
        case .stream(let stream):
            stream.connection.session.monitor.withLock {
                add ? stream.connection.session.pollLinks.add(self, key: key) : stream.connection.session.pollLinks.remove(self, key: key)
            }
        }
    }

    /// Called by objects (with their lock held) when their state changed.
    func signal(_ key: Int) {
        state.withLock { _ = $0.candidates.insert(key) }
        monitor.withLock { monitor.broadcast() }
    }

    /// The ready items; waits up to `timeout` (`nil`: forever) for one.
    public func wait(timeout: Duration? = nil) -> [Ready] {
        let deadline = timeout.map { Instant.now() + $0 }
        while true {
            // Readiness is examined without the monitor: objects signal (taking the monitor)
            // while holding their own locks, so holding it here could deadlock.
            let ready = collect()
            if !ready.isEmpty { return ready }
            if let deadline, Instant.now() >= deadline { return [] }
            monitor.lock()
            // A signal after `collect` either left a candidate (checked here) or waits for
            // this monitor, which `wait` releases atomically: no wake-up is lost.
            if state.withLock({ $0.candidates.isEmpty }) { monitor.wait(until: deadline) }
            monitor.unlock()
        }
    }

    /// The ready items now, without waiting.
    public func poll() -> [Ready] { wait(timeout: .zero) }

    /// Examines the signalled items; keeps the ready ones as candidates (level-triggered).
    private func collect() -> [Ready] {
        let candidates = state.withLock { state -> [(Int, Registration)] in
            let list = state.candidates.compactMap { key in state.registrations[key].map { (key, $0) } }
            state.candidates.removeAll(keepingCapacity: true)
            return list
        }
        var ready: [Ready] = []
        for (key, registration) in candidates {
            let events = readiness(of: registration.item).intersection(registration.interest.union(.error))
            guard !events.isEmpty else { continue }
            ready.append(Ready(item: registration.item, events: events, key: key))
        }
        if !ready.isEmpty {
            state.withLock { state in for item in ready where state.registrations[item.key] != nil { state.candidates.insert(item.key) } }
        }
        return ready
    }

    private func readiness(of item: Item) -> PollEvents {
        switch item {
        case .listener(let listener): listener.readiness()
        case .connection(let connection): connection.defaultStream.readiness()
        case .stream(let stream): stream.readiness()
        }
    }
}
