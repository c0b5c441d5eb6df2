import QuiverCore

/// A fragment of a message we send: queued, then (with a TSN) outstanding.
struct SCTPOutboundFragment {
    var stream: UInt16
    /// The SSN (DATA: its low 16 bits) or the Message Identifier (I-DATA), given with the TSN
    /// (RFC 3758 §4.1 TR3: a message abandoned before then takes neither).
    var sequence: UInt32 = 0
    /// Its place in the message: I-DATA's Fragment Sequence Number.
    var fsn: UInt32
    var ppid: UInt32
    var unordered: Bool
    var beginning: Bool
    var ending: Bool
    var payload: ArraySlice<UInt8>
    /// Which message it belongs to: the fragments of one are abandoned together (RFC 3758
    /// §3.5 A3).
    var message: UInt32
    /// The message's ``SCTPSendPolicy``: when it expires (`lifetime` until the association
    /// learns the time the message was sent), how many retransmissions it may have.
    var lifetime: Duration?
    var deadline: Instant?
    var maxRetransmissions: Int?
}

/// The fragments not yet given a TSN.
///
/// With DATA, one queue in send order: the fragments of a message must take consecutive TSNs
/// (the receiver reassembles by TSN). With I-DATA (RFC 8260 §2.2.2), one queue per stream,
/// served round-robin a packet at a time, so a large message on one stream does not hold up
/// the others; a stream's messages still go one after the other (one in progress per stream).
struct SCTPSendQueue {
    private struct Queue {
        var items: [SCTPOutboundFragment] = []
        var head = 0
        var isEmpty: Bool { head == items.count }
        var first: SCTPOutboundFragment? { isEmpty ? nil : items[head] }
        mutating func removeFirst() -> SCTPOutboundFragment {
            let item = items[head]
            head += 1
            if head == items.count {
                items.removeAll(keepingCapacity: items.count < 256)
                head = 0
            } else if head > 1024 {
                items.removeFirst(head)
                head = 0
            }
            return item
        }
    }

    /// Whether messages of different streams interleave (I-DATA negotiated).
    private(set) var interleaving = false
    /// DATA: everything, in send order.
    private var fifo = Queue()
    /// I-DATA: each stream's fragments, and the streams that have some in round-robin order.
    private var streams: [UInt16: Queue] = [:]
    private var order: [UInt16] = []
    private var current = 0

    var isEmpty: Bool { interleaving ? order.isEmpty : fifo.isEmpty }

    /// The fragment to give a TSN next.
    var first: SCTPOutboundFragment? {
        guard interleaving else { return fifo.first }
        return order.isEmpty ? nil : streams[order[current]]!.first
    }

    mutating func removeFirst() -> SCTPOutboundFragment {
        guard interleaving else { return fifo.removeFirst() }
        let stream = order[current]
        let fragment = streams[stream]!.removeFirst()
        if streams[stream]!.isEmpty { removeStream(at: current) }
        return fragment
    }

    mutating func append(_ fragment: SCTPOutboundFragment) {
        guard interleaving else { return fifo.items.append(fragment) }
        // A stream's queue exists while it holds fragments.
        if streams[fragment.stream] == nil { order.append(fragment.stream) }
        streams[fragment.stream, default: Queue()].items.append(fragment)
    }

    /// A packet was filled: the next one starts with the next stream.
    mutating func packetDone() {
        guard interleaving, !order.isEmpty else { return }
        current = (current + 1) % order.count
    }

    /// The streams with fragments waiting.
    var streamsWaiting: Set<UInt16> { interleaving ? Set(order) : Set(fifo.items[fifo.head...].map(\.stream)) }

    /// Removes the fragments of `message` at the head of its stream's queue (or of the queue):
    /// the rest of a message in progress, or all of one not started.
    mutating func removeMessage(_ message: UInt32, stream: UInt16) -> [SCTPOutboundFragment] {
        var removed: [SCTPOutboundFragment] = []
        if !interleaving {
            while fifo.first?.message == message { removed.append(fifo.removeFirst()) }
            return removed
        }
        guard let index = order.firstIndex(of: stream) else { return [] }
        while streams[stream]!.first?.message == message { removed.append(streams[stream]!.removeFirst()) }
        if streams[stream]!.isEmpty { removeStream(at: index) }
        return removed
    }

    /// Changes every queued fragment.
    mutating func updateAll(_ body: (inout SCTPOutboundFragment) -> Void) {
        for index in fifo.items.indices[fifo.head...] { body(&fifo.items[index]) }
        for stream in order {
            for index in streams[stream]!.items.indices[streams[stream]!.head...] { body(&streams[stream]!.items[index]) }
        }
    }

    /// Drops the fragments of streams from `count` on; returns their bytes.
    mutating func removeStreams(from count: UInt16) -> Int {
        if interleaving {
            var dropped = 0
            for stream in order where stream >= count {
                dropped += streams[stream]!.items[streams[stream]!.head...].reduce(0) { $0 + $1.payload.count }
            }
            for index in order.indices.reversed() where order[index] >= count { removeStream(at: index) }
            return dropped
        }
        let kept = fifo.items[fifo.head...].filter { $0.stream < count }
        let dropped = fifo.items[fifo.head...].reduce(0) { $0 + ($1.stream < count ? 0 : $1.payload.count) }
        fifo = Queue(items: Array(kept), head: 0)
        return dropped
    }

    /// From now on, one queue per stream (what was queued keeps its order within each stream).
    mutating func startInterleaving() {
        guard !interleaving else { return }
        interleaving = true
        let queued = fifo.items[fifo.head...]
        fifo = Queue()
        for fragment in queued { append(fragment) }
    }

    mutating func removeAll() {
        fifo = Queue()
        streams.removeAll()
        order.removeAll()
        current = 0
    }

    private mutating func removeStream(at index: Int) {
        streams[order[index]] = nil
        order.remove(at: index)
        if index < current { current -= 1 }
        if current >= order.count { current = 0 }
    }
}
