import Foundation
import Logging
import Quiver
import QuiverCore
import DemoSupport

/// The echo service of `quiver serve` on the `Quiver` async API, a task per connection and
/// per stream — the same code for TLS and QUIC (the demos' `AsyncEcho`). Every bidirectional
/// stream's bytes come back on it and its end is echoed as its end; on QUIC, DATAGRAMs are
/// echoed too. A TLS connection closes after its stream ends; a QUIC connection stays open for
/// more streams until the client closes it.
enum EchoServer {
    /// Accepts on `listener` until it closes (or `limit` connections were served), serving each
    /// connection in a child task; returns when they have all ended.
    static func run(_ listener: Listener, log: Logger, limit: Int?) async {
        var served = 0
        await withDiscardingTaskGroup { group in
            while limit.map({ served < $0 }) ?? true {
                guard let connection = try? await listener.accept() else { return }
                served += 1
                group.addTask { await serve(connection, log: log) }
            }
        }
    }

    static func serve(_ connection: Connection, log: Logger) async {
        let who = connection.peerAddress.map { "\($0)" } ?? "?"
        let transport = connection.transport == .quic ? connection.quicVersion.map { "\($0)" } ?? "QUIC" : "TLS"
        log.info("\(who): \(transport) handshake complete: alpn=\(connection.alpn ?? "-") sni=\(connection.serverName ?? "-")")
        let total = await AsyncEcho.serve(connection, closingAfterDefaultStream: false, echoingDatagrams: true)
        log.info("\(who): \(connection.closeInfo.map { "\($0)" } ?? "closed") after echoing \(total) bytes")
    }
}

/// `quiver connect`: stdin to the connection's default stream, the server's bytes to stdout.
/// EOF on stdin finishes our side; when the server has finished its side the connection is
/// shut down and the exit status says whether everything closed cleanly.
enum EchoClient {
    static func run(_ connection: Connection) -> Int32 {
        Thread {
            let input = FileHandle.standardInput
            while true {
                let data = input.availableData
                if data.isEmpty { break }
                guard (try? connection.write(Array(data))) != nil else { return }
            }
            try? connection.finish()
        }.start()
        do {
            while true {
                let bytes = try connection.read()
                if bytes.isEmpty { break }
                FileHandle.standardOutput.write(Data(bytes))
            }
            try connection.shutdown()
        } catch {
            FileHandle.standardError.write(Data("quiver: \(error)\n".utf8))
            return 1
        }
        if let info = connection.closeInfo, !info.isClean {
            FileHandle.standardError.write(Data("quiver: connection closed: \(info)\n".utf8))
            return 1
        }
        return 0
    }
}
