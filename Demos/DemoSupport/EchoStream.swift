public import Quiver

/// One stream being echoed without blocking, for the event-loop demos (ddd-04, ddd-05): call
/// ``step()`` whenever the stream may have made progress.
public struct EchoStream {
    public let stream: Quiver.Stream
    var pending: [UInt8] = []
    var ended = false
    /// Bytes echoed so far.
    public private(set) var echoed = 0

    public init(stream: Quiver.Stream) { self.stream = stream }

    /// Moves what it can until it would block; returns whether the stream is done (its end
    /// echoed). Application-driven I/O is edge-style: what is ready must be consumed now, since
    /// the descriptor reports only what arrives later.
    public mutating func step() -> Bool {
        do {
            while true {
                var progressed = false
                if pending.isEmpty, !ended, let bytes = try stream.tryRead() {  // backpressure: read only when flushed
                    if bytes.isEmpty { ended = true } else { pending = bytes }
                    progressed = true
                }
                if !pending.isEmpty {
                    let written = try stream.tryWrite(pending)
                    pending.removeFirst(written)
                    echoed += written
                    progressed = progressed || written > 0
                }
                if ended, pending.isEmpty {
                    try? stream.finish()
                    return true
                }
                if !progressed { return false }
            }
        } catch {
            return true
        }
    }
}
