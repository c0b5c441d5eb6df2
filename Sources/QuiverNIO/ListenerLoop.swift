#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
public import NIOCore
public import Quiver
import QuiverCore
import Synchronization

/// Drives one application-driven ``Quiver/Listener`` on one NIO event loop: every call of
/// `handleEvents()` happens on that loop, and after each round one scheduled task on the loop
/// is armed for the listener's `nextDeadline` (replacing the previous one). No Quiver thread
/// runs.
///
/// The listener's attachments are in-memory pairs fed by ``DatagramBridge`` (QUIC) or
/// ``StreamBridge`` (TLS) handlers on NIO channels of the same loop; they run a round after
/// moving input into a pair. The application's own work — accepting, reading and writing
/// connections without blocking — belongs in the handler set with ``setRoundHandler(_:)``,
/// which runs on the loop after the listener handled its events; the round then calls
/// `handleEvents()` once more so that what the handler wrote is sent.
///
/// Application-driven listeners are edge-style: a round reports only what arrived since the
/// last one, so the round handler must service connections until their `try…` calls would
/// block. The bridge never waits on the listener's `pollDescriptor`, but after each round it
/// checks it without blocking: readable means the listener asks to be called again (input
/// taken in during the round's last `handleEvents()`, a per-round limit reached), and another
/// round is queued (at most ``maxFollowUpRounds`` in a row, so a handler that never accepts
/// cannot make the loop spin). Commands given to the listener's connections from *other*
/// threads are noticed at the next round; call ``requestRound()`` after them.
///
/// ```swift
/// var options = Listener.Options()
/// options.driver = .applicationDriven
/// let listener = try Listener(.quic, tls: tls, attachments: [], options: options)
/// let loop = ListenerLoop(listener: listener, eventLoop: eventLoop)
/// try eventLoop.submit { loop.setRoundHandler { listener in /* tryAccept, tryRead, tryWrite */ } }.wait()
/// let channel = try loop.bind(to: address, reusePort: true).wait()   // a UDP channel with a DatagramBridge
/// // or by hand: DatagramBootstrap(group: eventLoop)
/// //     .channelInitializer { DatagramBridge.install(on: $0, loop: loop) }.bind(to: address)
/// ```
public final class ListenerLoop: Sendable {
    /// The listener; its driver mode must be `.applicationDriven`.
    public let listener: Listener
    /// The loop every round runs on.
    public let eventLoop: any EventLoop

    private struct State {
        var roundHandler: ((Listener) -> Void)?
        var timer: Scheduled<Void>?
        var armedDeadline: Instant?
        var inRound = false
        var roundAgain = false
        var closed = false
        var followUps = 0
    }

    /// The most rounds queued in a row because the listener's descriptor was still readable.
    public static let maxFollowUpRounds = 16

    private let state: NIOLoopBoundBox<State>
    /// A round is already queued on the loop (coalesces ``requestRound()``).
    private let roundQueued = Atomic<Bool>(false)

    /// Drives `listener` on `eventLoop`. May be called from any thread.
    public init(listener: Listener, eventLoop: any EventLoop) {
        precondition(listener.pollDescriptor != nil, "ListenerLoop needs a listener in .applicationDriven mode")
        self.listener = listener
        self.eventLoop = eventLoop
        state = NIOLoopBoundBox.makeBoxSendingValue(State(), eventLoop: eventLoop)
    }

    /// Sets the application's work, run on the loop after every round's event handling
    /// (`nil` removes it). Call on the loop.
    public func setRoundHandler(_ handler: ((Listener) -> Void)?) {
        state.value.roundHandler = handler
    }

    /// Whether ``close(code:reason:)`` was called. Call on the loop.
    public var isClosed: Bool { state.value.closed }

    /// One round, now: the listener handles its events (input moved into its pairs, due
    /// timers, output), the round handler runs, the listener sends what the handler produced,
    /// and the deadline task is re-armed. Call on the loop. A call made while a round is
    /// running (from a channel callback the round caused) runs another round right after it.
    public func runRound() {
        eventLoop.preconditionInEventLoop()
        guard !state.value.closed else { return }
        guard !state.value.inRound else {
            state.value.roundAgain = true
            return
        }
        state.value.inRound = true
        repeat {
            state.value.roundAgain = false
            listener.handleEvents()
            if let handler = state.value.roundHandler {
                handler(listener)
                listener.handleEvents()
            }
        } while state.value.roundAgain && !state.value.closed
        state.value.inRound = false
        armTimer()
        if !state.value.closed, state.value.followUps < Self.maxFollowUpRounds, listenerAsksForService {
            state.value.followUps += 1
            requestRound()
        } else {
            state.value.followUps = 0
        }
    }

    /// Whether the listener's descriptor is readable now (checked without waiting).
    private var listenerAsksForService: Bool {
        guard let descriptor = listener.pollDescriptor else { return false }
        var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, 0) > 0 && entry.revents & Int16(POLLIN) != 0
    }

    /// Asks for a round on the loop soon; from any thread. Requests made before the round
    /// starts share it.
    public func requestRound() {
        guard !roundQueued.exchange(true, ordering: .acquiringAndReleasing) else { return }
        eventLoop.execute { [self] in
            roundQueued.store(false, ordering: .releasing)
            runRound()
        }
    }

    /// Closes the listener (QUIC CONNECTION_CLOSE / TLS close_notify to every connection for
    /// code 0), sends what that produced into the pairs and cancels the deadline task. Call on
    /// the loop; the bridges then move the final bytes into their channels.
    public func close(code: UInt64 = 0, reason: String = "") {
        eventLoop.preconditionInEventLoop()
        guard !state.value.closed else { return }
        state.value.closed = true
        state.value.roundHandler = nil
        state.value.timer?.cancel()
        state.value.timer = nil
        listener.close(code: code, reason: reason)
    }

    /// Schedules the deadline task for the listener's next deadline, unless one is already
    /// armed for that instant.
    private func armTimer() {
        let deadline = state.value.closed ? nil : listener.nextDeadline
        guard deadline != state.value.armedDeadline || (deadline != nil && state.value.timer == nil) else { return }
        state.value.timer?.cancel()
        state.value.timer = nil
        state.value.armedDeadline = deadline
        guard let deadline else { return }
        let delay = max(0, (deadline - Instant.now()).nanosecondsClamped)
        state.value.timer = eventLoop.scheduleTask(in: .nanoseconds(delay)) { [self] in
            state.value.timer = nil
            state.value.armedDeadline = nil
            runRound()
        }
    }
}
