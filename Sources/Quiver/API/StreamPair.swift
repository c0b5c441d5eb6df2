import Synchronization

/// Two connected in-memory byte streams — the TLS counterpart of ``DatagramPair``: the
/// listener takes one end as one TCP-like connection; the application moves bytes between its
/// own socket and the other end. Not pollable; each direction buffers at most `capacity`
/// bytes, and ``End/write(_:)`` accepts only what fits (backpressure, never drops).
public final class StreamPair: Sendable {
    /// One end of the pair.
    public final class End: Sendable {
        let inbound: Pipe
        let outbound: Pipe

        init(inbound: Pipe, outbound: Pipe) {
            self.inbound = inbound
            self.outbound = outbound
        }

        /// Always `false`: an in-memory end has no descriptor to poll.
        public var isPollable: Bool { false }

        /// Writes as many of `bytes` as fit and returns that count (0: full, try after the
        /// other end reads). Throws nothing: writing after ``finish()`` or after the other end
        /// closed returns 0 and is dropped.
        @discardableResult
        public func write(_ bytes: some Collection<UInt8>) -> Int { outbound.write(bytes) }

        /// Up to `maxBytes` bytes, `[]` at the end of the stream, or `nil` when nothing is
        /// waiting yet.
        public func read(maxBytes: Int = 1 << 16) -> [UInt8]? { inbound.read(maxBytes: maxBytes) }

        /// Ends this end's direction (the other end reads the end of stream after the data).
        public func finish() { outbound.finish() }

        /// Closes both directions: the other end sees the end of stream and its writes fail.
        public func close() {
            outbound.finish()
            inbound.abandon()
        }

        /// Bytes buffered towards this end.
        public var readableBytes: Int { inbound.count }

        /// Called (without locks held) when bytes or the end of stream arrive at this end, or
        /// room opens up for this end's writes.
        public func setActivityHandler(_ handler: (@Sendable () -> Void)?) {
            inbound.setReaderHandler(handler)
            outbound.setWriterHandler(handler)
        }
    }

    final class Pipe: Sendable {
        private struct State {
            var bytes: [UInt8] = []
            var head = 0
            var finished = false
            var abandoned = false
            var readerHandler: (@Sendable () -> Void)?
            var writerHandler: (@Sendable () -> Void)?
        }
        private let state = Mutex(State())
        let capacity: Int

        init(capacity: Int) { self.capacity = capacity }

        func write(_ bytes: some Collection<UInt8>) -> Int {
            let (count, handler) = state.withLock { state -> (Int, (@Sendable () -> Void)?) in
                guard !state.finished, !state.abandoned else { return (0, nil) }
                let room = capacity - (state.bytes.count - state.head)
                let count = min(room, bytes.count)
                guard count > 0 else { return (0, nil) }
                state.bytes.append(contentsOf: bytes.prefix(count))
                return (count, state.readerHandler)
            }
            handler?()
            return count
        }

        func read(maxBytes: Int) -> [UInt8]? {
            let (result, handler) = state.withLock { state -> ([UInt8]?, (@Sendable () -> Void)?) in
                let available = state.bytes.count - state.head
                guard available > 0 else { return (state.finished ? [] : nil, nil) }
                let count = min(available, maxBytes)
                let chunk = Array(state.bytes[state.head..<state.head + count])
                state.head += count
                if state.head == state.bytes.count {
                    state.bytes.removeAll(keepingCapacity: true)
                    state.head = 0
                } else if state.head >= 1 << 16 {
                    state.bytes.removeFirst(state.head)
                    state.head = 0
                }
                return (chunk, state.writerHandler)
            }
            handler?()
            return result
        }

        func finish() {
            let handler = state.withLock { state -> (@Sendable () -> Void)? in
                state.finished = true
                return state.readerHandler
            }
            handler?()
        }

        func abandon() {
            let handler = state.withLock { state -> (@Sendable () -> Void)? in
                state.abandoned = true
                state.bytes.removeAll()
                state.head = 0
                return state.writerHandler
            }
            handler?()
        }

        var count: Int { state.withLock { $0.bytes.count - $0.head } }
        func setReaderHandler(_ handler: (@Sendable () -> Void)?) { state.withLock { $0.readerHandler = handler } }
        func setWriterHandler(_ handler: (@Sendable () -> Void)?) { state.withLock { $0.writerHandler = handler } }
    }

    /// The two ends; symmetric.
    public let first: End
    public let second: End

    /// Creates a pair whose directions each buffer up to `capacity` bytes.
    public init(capacity: Int = 1 << 20) {
        let forward = Pipe(capacity: capacity)
        let backward = Pipe(capacity: capacity)
        first = End(inbound: backward, outbound: forward)
        second = End(inbound: forward, outbound: backward)
    }
}
