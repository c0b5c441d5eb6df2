public import Quiver
import QuiverCore

/// hq-interop: HTTP/0.9 over QUIC, the QUIC interop runner's file transfer protocol (ALPN
/// `hq-interop`). A request is `GET /path\r\n` on a client bidirectional stream, ended with FIN;
/// the response is the file's bytes, ended with FIN (a missing file: the stream is reset).
public enum HQInterop {
    /// The longest request line accepted.
    public static let maxRequestLine = 8192
    /// The application error code of a stream reset for a failed request.
    public static let requestFailed: UInt64 = 0x1

    /// Serves `connection` until it ends, each request in a child task: `body(path)` gives the
    /// response's source, or `nil` for "not found".
    public static func serve(_ connection: Connection, body: @escaping @Sendable (String) -> ResponseBody?) async {
        let respond: @Sendable (Quiver.Stream) async -> Void = { stream in
            var request: [UInt8] = []
            while request.count <= maxRequestLine {
                guard let bytes = try? await stream.read() else { return }
                if bytes.isEmpty { break }
                request += bytes
            }
            guard request.count <= maxRequestLine, let path = path(of: request), let source = body(path) else {
                try? stream.reset(code: requestFailed)
                return
            }
            do {
                try await source.write { piece in try await stream.write(piece) }
                try stream.finish()
            } catch {
                try? stream.reset(code: requestFailed)
            }
        }
        // Every request stream, the first one included, comes from acceptStream.
        guard (try? connection.quic?.disableDefaultStream()) != nil else { return }
        await withDiscardingTaskGroup { group in
            while let stream = try? await connection.acceptStream() {
                guard (stream.id ?? 0) & 0x2 == 0 else {  // hq-interop has no unidirectional streams
                    try? stream.stopSending(code: requestFailed)
                    continue
                }
                group.addTask { await respond(stream) }
            }
        }
    }

    /// The path of `GET /path` (with or without CRLF).
    static func path(of request: [UInt8]) -> String? {
        let end = request.firstIndex { $0 == 0x0d || $0 == 0x0a } ?? request.endIndex  // bytes: "\r\n" is one Character
        let line = String(decoding: request[..<end], as: UTF8.self)
        let parts = line.split(separator: " ")
        guard parts.count == 2, parts[0] == "GET", parts[1].hasPrefix("/") else { return nil }
        return String(parts[1])
    }

    /// Fetches `path`: sends the request on a new stream and reads the response to its end,
    /// handing it over in pieces.
    /// - Throws: `QuiverError` (`.streamReset` when the server refused the request).
    public static func get(_ path: String, on connection: Connection, onBody: ([UInt8]) async -> Void) async throws {
        let stream = try await connection.openStream()
        try await stream.write(Array("GET \(path)\r\n".utf8))
        try stream.finish()
        for try await chunk in stream.inbound { await onBody(chunk) }
    }
}
