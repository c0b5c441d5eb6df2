public import QuiverCore

/// One stream of a ``Connection``: the default stream, or (QUIC) one opened or accepted.
///
/// Blocking calls wait; `try…` calls return `nil` / 0 instead. Thread-safe like its connection.
public final class Stream: Sendable {
    /// The connection this stream belongs to.
    public let connection: Connection
    let key: StreamKey

    init(connection: Connection, key: StreamKey) {
        self.connection = connection
        self.key = key
    }

    var session: any Session { connection.session }

    /// The QUIC stream ID (`nil` for the default stream until it exists, and on TLS).
    public var id: UInt64? { key }

    /// Where a stream's two directions are (RFC 9000 §3, simplified; TLS maps close_notify to
    /// `finished`).
    public struct State: Sendable, Hashable {
        /// Our sending direction.
        public enum Sending: Sendable, Hashable {
            /// Writes are accepted.
            case open
            /// Finished (FIN / close_notify queued); not all delivered yet.
            case finished
            /// Finished and everything acknowledged (QUIC) or handed to the kernel (TLS).
            case delivered
            /// We reset it with this application error code.
            case reset(code: UInt64)
            /// The peer asked us to stop (STOP_SENDING) with this code; writes fail.
            case stoppedByPeer(code: UInt64)
            /// The stream or connection is closed and forgotten.
            case closed
            /// This stream has no sending direction (a peer's unidirectional stream).
            case none
        }

        /// The peer's sending direction, as we receive it.
        public enum Receiving: Sendable, Hashable {
            /// Data may still arrive.
            case open
            /// The end of the stream was read.
            case finished
            /// The peer reset it with this application error code.
            case resetByPeer(code: UInt64)
            /// We asked the peer to stop (STOP_SENDING) with this code.
            case stopped(code: UInt64)
            /// The stream or connection is closed and forgotten.
            case closed
            /// This stream has no receiving direction (our unidirectional stream).
            case none
        }

        public var sending: Sending
        public var receiving: Receiving
    }

    /// The stream's state now.
    public var state: State { session.withEngine { session.stateLocked(key) } }

    /// Reads up to `maxBytes`; waits for data. An empty result is the end of the stream.
    /// - Throws: `.streamReset` when the peer reset the stream, `.closed` when the connection
    ///   ended first.
    public func read(maxBytes: Int = 1 << 16) throws(QuiverError) -> [UInt8] {
        try session.blocking(wake: .events) { () throws(QuiverError) in try session.readLocked(key, maxBytes: maxBytes) }
    }

    /// Reads into `buffer` (up to its count); waits for data. Returns the count, 0 at the end.
    public func read(into buffer: inout [UInt8]) throws(QuiverError) -> Int {
        let bytes = try read(maxBytes: buffer.count)
        buffer.replaceSubrange(0..<bytes.count, with: bytes)
        return bytes.count
    }

    /// Reads if data is waiting: `nil` would block; empty is the end of the stream.
    public func tryRead(maxBytes: Int = 1 << 16) throws(QuiverError) -> [UInt8]? {
        try session.once { () throws(QuiverError) in try session.readLocked(key, maxBytes: maxBytes) }
    }

    /// Writes all of `bytes`, waiting while the send buffer is full.
    public func write(_ bytes: some Collection<UInt8>) throws(QuiverError) {
        var remaining = ArraySlice(bytes)
        while !remaining.isEmpty {
            let count = try session.blocking(wake: .room) { () throws(QuiverError) -> Int? in
                let count = try session.writeLocked(key, remaining, blocking: true)
                return count > 0 ? count : nil
            }
            remaining = remaining.dropFirst(count)
        }
    }

    /// Writes what fits now and returns the count (0: would block).
    public func tryWrite(_ bytes: some Collection<UInt8>) throws(QuiverError) -> Int {
        let slice = ArraySlice(bytes)
        return try session.once { () throws(QuiverError) in try session.writeLocked(key, slice, blocking: false) }
    }

    /// Ends our sending side after the bytes written (QUIC FIN; TLS close_notify).
    public func finish() throws(QuiverError) {
        try session.once { () throws(QuiverError) in try session.finishLocked(key) }
    }

    /// Abandons our sending side with an application error code (QUIC RESET_STREAM; on TLS
    /// the connection is reset).
    public func reset(code: UInt64) throws(QuiverError) {
        try session.once { () throws(QuiverError) in try session.resetLocked(key, code: code) }
    }

    /// Asks the peer to stop sending, with an application error code (QUIC STOP_SENDING).
    /// Reads return the end of the stream from then on — a read blocked at the time too — and
    /// what arrived unread is dropped. Where the transport has no such message, the bytes stop
    /// instead: TLS over TCP no longer reads the socket (TCP's window holds the peer back), DTLS
    /// and SCTP drop the stream's later messages.
    public func stopSending(code: UInt64) throws(QuiverError) {
        try session.once { () throws(QuiverError) in try session.stopSendingLocked(key, code: code) }
    }

    func readiness() -> PollEvents { session.withEngine { session.readinessLocked(key) } }
}
