public import Quiver
import Synchronization

/// The demos' echo (``Echo``) written with Swift concurrency (ddd-04b, ddd-07): a connection's
/// streams are child tasks of its task, and no thread waits for any of them.
public enum AsyncEcho {
    /// Serves `connection` to its end and returns the bytes echoed: each client-opened
    /// bidirectional stream is echoed (on TLS, the one stream; on DTLS, each message as one
    /// message; on SCTP, each SCTP stream, message by message), its end echoed as its end.
    /// When the client ends the default stream, ours is finished and the connection closed
    /// after delivery.
    public static func serve(_ connection: Connection) async -> Int {
        let total = Total()
        await withDiscardingTaskGroup { group in
            if connection.transport == .quic || connection.transport.isSCTP {
                group.addTask {
                    // Until the connection ends (the sequence finishes, or throws).
                    try? await withThrowingDiscardingTaskGroup { streams in
                        for try await stream in connection.inboundStreams {
                            streams.addTask { total.add(await echo(stream)) }
                        }
                    }
                }
            }
            total.add(await echo(connection.defaultStream))
            try? await connection.shutdown()
        }
        return total.value
    }

    /// Echoes one stream until its end; returns the bytes echoed.
    public static func echo(_ stream: Quiver.Stream) async -> Int {
        var total = 0
        do {
            for try await chunk in stream.inbound {
                try await stream.write(chunk)
                total += chunk.count
            }
            try stream.finish()
        } catch {}  // the stream or connection ended: nothing more to echo
        return total
    }

    private final class Total: Sendable {
        private let count = Mutex(0)
        func add(_ bytes: Int) { count.withLock { $0 += bytes } }
        var value: Int { count.withLock { $0 } }
    }
}
