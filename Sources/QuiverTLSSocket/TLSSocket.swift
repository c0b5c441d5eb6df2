#if canImport(Glibc)
import Glibc
#endif
public import QuiverCore
public import QuiverTLS
import Synchronization

/// TLS 1.3 over a blocking ``TCPSocket``: a ``TLSStream`` driven by blocking reads and writes.
///
/// One thread may read while another writes: the TLS state is guarded by a lock that is never
/// held across the blocking `recv`. For tests, the `quiver` tool and thread-per-connection
/// servers.
public final class TLSSocket: Sendable {
    /// The underlying TCP socket.
    public let socket: TCPSocket
    private let state: Mutex<StreamBox>

    private final class StreamBox: @unchecked Sendable {
        // Only touched under the mutex.
        let stream: TLSStream
        init(_ stream: TLSStream) { self.stream = stream }
    }

    /// Wraps a connected socket with a TLS stream (client or server).
    public init(socket: TCPSocket, stream: TLSStream) {
        self.socket = socket
        self.state = Mutex(StreamBox(stream))
    }

    /// Runs `body` with the stream under the lock.
    public func withStream<T>(_ body: (TLSStream) throws -> T) rethrows -> T {
        try state.withLock { try body($0.stream) }
    }

    private func flush(_ stream: TLSStream) throws(QuiverError) {
        if stream.hasOutgoing { try socket.write(stream.takeOutgoing()) }
    }

    /// Runs a stream operation; on a TLS failure sends the queued alert and converts the error.
    private func run<T>(_ stream: TLSStream, _ body: () throws(TLSError) -> T) throws(QuiverError) -> T {
        let value: T
        do throws(TLSError) {
            value = try body()
        } catch {
            try? flush(stream)
            throw error.quiverError
        }
        try flush(stream)
        return value
    }

    /// Performs the handshake (blocking). Throws on failure after sending the alert.
    public func handshake() throws(QuiverError) {
        try state.withLock { box throws(QuiverError) in
            try run(box.stream) { () throws(TLSError) in try box.stream.start() }
        }
        while !state.withLock({ $0.stream.isHandshakeComplete }) {
            guard try pump() else { throw QuiverError(.closed, "connection closed during the handshake") }
        }
    }

    /// Reads once from the socket and feeds the stream; `false` at a clean end.
    private func pump() throws(QuiverError) -> Bool {
        let bytes = try socket.read()
        return try state.withLock { box throws(QuiverError) in
            try run(box.stream) { () throws(TLSError) -> Bool in
                if bytes.isEmpty {
                    try box.stream.receiveEOF()
                    return false
                }
                try box.stream.receive(bytes)
                return !box.stream.isPeerClosed || box.stream.readableBytes > 0
            }
        }
    }

    /// Reads application data (blocking); an empty result means the peer closed cleanly.
    public func read(max: Int = 1 << 16) throws(QuiverError) -> [UInt8] {
        while true {
            let (data, closed) = state.withLock { box in
                (box.stream.read(maxBytes: max), box.stream.isPeerClosed)
            }
            if !data.isEmpty || closed { return data }
            if try !pump() {
                return state.withLock { $0.stream.read(maxBytes: max) }
            }
        }
    }

    /// Writes application data.
    public func write(_ bytes: [UInt8]) throws(QuiverError) {
        try state.withLock { box throws(QuiverError) in
            try run(box.stream) { () throws(TLSError) in try box.stream.write(bytes) }
        }
    }

    /// Sends a KeyUpdate.
    public func updateKeys(requestPeerUpdate: Bool) throws(QuiverError) {
        try state.withLock { box throws(QuiverError) in
            try run(box.stream) { () throws(TLSError) in try box.stream.updateKeys(requestPeerUpdate: requestPeerUpdate) }
        }
    }

    /// Sends `close_notify` and shuts down our sending direction.
    public func close() {
        state.withLock { box in
            box.stream.close()
            try? flush(box.stream)
        }
        socket.shutdownWrite()
    }

    /// Drains pending events (tickets, early-data outcome) from the stream.
    public func events() -> [TLSEvent] {
        state.withLock { box in
            var out: [TLSEvent] = []
            while let e = box.stream.nextEvent() { out.append(e) }
            return out
        }
    }
}

/// Writes NSS key-log lines (`SSLKEYLOGFILE` format) to a file, for Wireshark.
public enum KeyLogFile {
    /// A key-log callback appending to `path`, or `nil` when the file cannot be opened.
    public static func callback(path: String) -> (@Sendable (String) -> Void)? {
        guard let file = fopen(path, "a") else { return nil }
        let handle = Mutex(FileBox(file))
        return { line in
            handle.withLock { box in
                fputs(line + "\n", box.file)
                fflush(box.file)
            }
        }
    }

    /// The callback for the `SSLKEYLOGFILE` environment variable, if it is set.
    public static func fromEnvironment() -> (@Sendable (String) -> Void)? {
        guard let path = getenv("SSLKEYLOGFILE") else { return nil }
        return callback(path: String(cString: path))
    }

    private final class FileBox: @unchecked Sendable {
        let file: UnsafeMutablePointer<FILE>
        init(_ file: UnsafeMutablePointer<FILE>) { self.file = file }
    }
}
