import Foundation
import Logging
import Quiver
import QuiverCore
import QuiverHTTP3
import QuiverTLS

/// `quiver serve --http3`: files over HTTP/3 (ALPN `h3`) and hq-interop, a task per
/// connection and per request.
enum FileServer {
    /// Serves `root` on a QUIC listener with `options` (those of the command line) until the
    /// listener ends.
    static func run(tls: TLSConfiguration, host: String, port: UInt16, root: String, retry: Bool, loops: Int, limit: Int?,
                    drainTimeout: Double, handover: String?, options: Listener.Options, log: Logger) async throws {
        var options = options
        options.eventLoops = loops
        if retry { options.retryPolicy = .always }
        options.quicVersions = QUICVersions.server  // the interop runner's "v2" case: a client offering v2 is moved to it
        let listener = try Serve.listenQUIC(tls: tls, host: host, port: port, options: options, handover: handover, drainTimeout: drainTimeout, log: log)
        log.notice("serving \(root) over HTTP/3 and hq-interop on udp \(listener.localAddresses.map { "\($0)" }.joined(separator: ", "))\(Serve.describe(preferred: listener.preferredAddresses))\(retry ? " (Retry for every client)" : ""), \(Serve.describe(loops: loops))")
        // Each connection's tasks run on its event loop: no thread hand-off per read, write or
        // wake-up.
        let handler: @Sendable (Connection) async -> Void = { await serve($0, root: root) }
        try await Serve.run([(listener, handler)], limit: limit, drainTimeout: drainTimeout, log: log)
    }

    /// Serves one connection. A connection's task keeps the frames of its waiting call chain
    /// while it is idle, so this async function holds only what it needs across the wait;
    /// the log lines and the request handlers are built by synchronous helpers.
    static func serve(_ connection: Connection, root: String) async {
        connected(connection)
        if connection.alpn == "hq-interop" {
            await HQInterop.serve(connection, body: hqHandler(root: root, log: connection.logger))
            closed(connection)
        } else {
            closed(connection, qpack: await HTTP3Server.serve(connection, handler: h3Handler(root: root, log: connection.logger)))
        }
    }

    /// Logs the new connection (the peer and connection ID are the logger's metadata).
    private static func connected(_ connection: Connection) {
        let quic = connection.quic
        connection.logger.info("connected, \(quic.map { "\($0.version)" } ?? "-"), alpn \(connection.alpn ?? "-"), resumed \(quic?.isResumed ?? false), 0-RTT \(quic?.earlyDataAccepted.map { $0 ? "accepted" : "refused" } ?? "none")")
    }

    /// Logs the connection's end, with the datagram size path MTU discovery reached, what ECN
    /// did on it (RFC 9000 §13.4), the peer's moves to new addresses if any (§9) and, for
    /// HTTP/3, what QPACK's dynamic tables did.
    private static func closed(_ connection: Connection, qpack: QPACKStatistics? = nil) {
        let quic = connection.quic
        let paths = quic?.movesDescription ?? ""
        connection.logger.info("\(connection.closeInfo.map { "\($0)" } ?? "closed")\(quic.map { "; sent datagrams of up to \($0.datagramSize) bytes; \($0.ecn)" } ?? "")\(paths)\(qpack.map { ", \($0)" } ?? "")")
    }

    /// `log`: the connection's logger.
    private static func hqHandler(root: String, log: Logger) -> @Sendable (String) -> ResponseBody? {
        { path in
            let body = ResponseBody.file(root: root, path: path)
            log.info("GET \(path) → \(body.map { "\($0.count) bytes" } ?? "not found")")
            return body
        }
    }

    /// `log`: the connection's logger.
    private static func h3Handler(root: String, log: Logger) -> HTTP3Server.Handler {
        { request, _, response in
            let path = request.path ?? "/"
            let readable = request.method == .get || request.method == .head
            guard readable, let body = ResponseBody.file(root: root, path: path) else {
                let status: HTTPResponse.Status = readable ? .notFound : .methodNotAllowed
                log.info("\(request.method) \(path) → \(status.code)")
                try await response.writeHead(HTTPResponse(status: status))
                return
            }
            log.info("\(request.method) \(path) → 200, \(body.count) bytes")
            try await response.writeHead(HTTPResponse(status: .ok, headerFields: [.contentLength: "\(body.count)"]))
            if request.method == .get {
                try await body.write { piece in try await response.write(piece) }
            }
        }
    }
}

extension Connection.QUIC {
    /// "; the peer moved 1 time(s), paths validated 1; moved to the preferred address
    /// 127.0.0.1:4434" — the parts that happened (RFC 9000 §9, §9.6), for a close line.
    var movesDescription: String {
        var text = peerMigrations > 0 ? "; the peer moved \(peerMigrations) time(s), paths validated \(pathsValidated)" : ""
        if preferredAddressMigrations > 0 { text += "; moved to the preferred address \(serverAddress.map { "\($0)" } ?? "-")" }
        return text
    }
}
