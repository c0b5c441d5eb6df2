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

/// One connection echoed without blocking, for the event-loop demos: each client-opened stream
/// (the default stream first) is an ``EchoStream``; the default stream's end — or a failure —
/// closes the connection once everything was delivered.
public struct EchoConnection {
    public let connection: Connection
    /// The peer, as logged.
    public let peer: String
    private var streams: [EchoStream]

    public init(_ connection: Connection, peer: String) {
        self.connection = connection
        self.peer = peer
        streams = [EchoStream(stream: connection.defaultStream)]
    }

    /// Bytes echoed on all streams so far.
    public var echoed: Int { streams.reduce(0) { $0 + $1.echoed } }

    /// Accepts new streams and moves what it can until everything would block; returns whether
    /// the connection is done (shut down).
    public mutating func step() -> Bool {
        while let stream = try? connection.tryAcceptStream() { streams.append(EchoStream(stream: stream)) }
        var defaultDone = false
        for index in streams.indices.reversed() where streams[index].step() {
            if index == 0 { defaultDone = true } else { streams.remove(at: index) }
        }
        return (defaultDone || connection.closeInfo != nil) && connection.tryShutdown()
    }
}
