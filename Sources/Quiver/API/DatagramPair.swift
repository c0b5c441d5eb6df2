public import QuiverCore
import Synchronization

/// Two connected in-memory datagram ends: what one end sends, the other receives. The network
/// attachment for applications that own their sockets themselves (an event loop such as
/// SwiftNIO): the listener takes one end, the application moves datagrams between its sockets
/// and the other end.
///
/// - **Not pollable**: there is no descriptor. A listener attached to an end is woken by the
///   end's readability handler; an application-driven listener is driven by calling
///   ``Listener/handleEvents()`` after moving datagrams in.
/// - **Addressed** (`addressed: true`): every datagram carries its source and destination, so
///   one end can carry many peers. **Unaddressed**: datagrams carry no addresses; the
///   application routes by end (typically one pair per remote peer, each attached to the same
///   listener), and the listener names each end's peer with a synthetic address.
/// - **Bounded**: each direction holds at most `capacity` datagrams; sending into a full
///   direction drops the datagram, returns `false` and counts it in ``End/droppedCount``
///   (UDP semantics: QUIC recovers losses).
/// - **ECN**: each datagram carries the ECN codepoint of its IP header, addressed or not —
///   what a listener sent it with, or what the application's socket received it with — so that
///   QUIC can mark, validate and count (RFC 9000 §13.4). An application whose socket cannot
///   read or set the field passes `.notECT`; QUIC then finds the path not ECN-capable.
public final class DatagramPair: Sendable {
    /// One datagram with its addresses (`nil` on an unaddressed pair) and ECN codepoint.
    public struct Datagram: Sendable {
        /// The UDP payload.
        public var bytes: [UInt8]
        /// Where it comes from (addressed pairs).
        public var source: SocketAddress?
        /// Where it goes (addressed pairs).
        public var destination: SocketAddress?
        /// The ECN field of its IP header: the mark to send it with, or the one it arrived with.
        public var ecn: ECNCodepoint

        /// Creates a datagram.
        public init(bytes: [UInt8], source: SocketAddress? = nil, destination: SocketAddress? = nil, ecn: ECNCodepoint = .notECT) {
            self.bytes = bytes
            self.source = source
            self.destination = destination
            self.ecn = ecn
        }
    }

    /// One end of the pair.
    public final class End: Sendable {
        /// Whether datagrams carry source and destination addresses.
        public let isAddressed: Bool
        /// Always `false`: an in-memory end has no descriptor to poll.
        public var isPollable: Bool { false }
        let inbound: Queue
        let outbound: Queue

        init(addressed: Bool, inbound: Queue, outbound: Queue) {
            isAddressed = addressed
            self.inbound = inbound
            self.outbound = outbound
        }

        /// Sends a datagram to the other end. Returns `false` (and the other end counts a drop)
        /// when the other end's queue is full. Addresses are ignored on an unaddressed pair.
        ///
        /// - Parameters:
        ///   - bytes: The UDP payload.
        ///   - source: Where it comes from (addressed pairs only).
        ///   - destination: Where it goes (addressed pairs only).
        ///   - ecn: The ECN codepoint of its IP header.
        @discardableResult
        public func send(_ bytes: [UInt8], from source: SocketAddress? = nil, to destination: SocketAddress? = nil,
                         ecn: ECNCodepoint = .notECT) -> Bool {
            let datagram = isAddressed ? Datagram(bytes: bytes, source: source, destination: destination, ecn: ecn)
                : Datagram(bytes: bytes, ecn: ecn)
            return outbound.push(datagram)
        }

        /// The next datagram the other end sent, or `nil` when none is waiting.
        public func receive() -> Datagram? { inbound.pop() }

        /// Datagrams waiting to be received at this end.
        public var pendingCount: Int { inbound.count }

        /// Datagrams dropped because this end's queue was full.
        public var droppedCount: Int { inbound.dropped }

        /// Called (on the sending thread, without locks held) whenever a datagram arrives at
        /// this end. A listener attached to this end installs its own handler; the application
        /// sets it on the end it drives (for example to schedule work on its event loop).
        public func setArrivalHandler(_ handler: (@Sendable () -> Void)?) { inbound.setHandler(handler) }
    }

    /// A bounded FIFO of datagrams with a drop counter and an arrival handler.
    final class Queue: Sendable {
        private struct State {
            var items: [Datagram] = []
            var head = 0
            var dropped = 0
            var handler: (@Sendable () -> Void)?
        }
        private let state = Mutex(State())
        let capacity: Int

        init(capacity: Int) { self.capacity = capacity }

        func push(_ datagram: Datagram) -> Bool {
            let (accepted, handler) = state.withLock { state -> (Bool, (@Sendable () -> Void)?) in
                guard state.items.count - state.head < capacity else {
                    state.dropped += 1
                    return (false, nil)
                }
                state.items.append(datagram)
                return (true, state.handler)
            }
            handler?()
            return accepted
        }

        func pop() -> Datagram? {
            state.withLock { state in
                guard state.head < state.items.count else { return nil }
                let datagram = state.items[state.head]
                state.head += 1
                if state.head == state.items.count {
                    state.items.removeAll(keepingCapacity: true)
                    state.head = 0
                } else if state.head >= 64, state.head * 2 >= state.items.count {
                    state.items.removeFirst(state.head)
                    state.head = 0
                }
                return datagram
            }
        }

        var count: Int { state.withLock { $0.items.count - $0.head } }
        var dropped: Int { state.withLock { $0.dropped } }
        func setHandler(_ handler: (@Sendable () -> Void)?) { state.withLock { $0.handler = handler } }
    }

    /// The two ends; symmetric.
    public let first: End
    public let second: End

    /// Creates a pair whose directions each hold up to `capacity` datagrams.
    public init(addressed: Bool, capacity: Int = 1024) {
        let forward = Queue(capacity: capacity)
        let backward = Queue(capacity: capacity)
        first = End(addressed: addressed, inbound: backward, outbound: forward)
        second = End(addressed: addressed, inbound: forward, outbound: backward)
    }
}
