import Foundation
import Logging
import Quiver
import QuiverCore
import Synchronization

/// The echo service of `quiver serve` on the `Quiver` async API, a task per connection and
/// per stream — the same code for TLS, QUIC and DTLS. Every bidirectional stream's bytes come back on
/// it and its end is echoed as its end; on QUIC, DATAGRAMs are echoed too. A TLS connection
/// closes after its stream ends; a QUIC connection stays open for more streams until the client
/// closes it (unlike the demos' echo, which closes after the default stream).
enum EchoServer {
    /// Serves `connection` until it ends (each connection's lines go to its
    /// ``Connection/logger``, the listener's logger with the connection's metadata): the default
    /// stream in this task; on QUIC, each stream
    /// the client opens and the DATAGRAMs in child tasks, which end with the connection.
    ///
    /// An idle connection's task keeps every async frame of its waiting call chain, so the
    /// logging is done by synchronous helpers and TLS, which has one stream, needs no task
    /// group: a few hundred bytes less per idle connection.
    static func serve(_ connection: Connection) async {
        logStart(connection)
        let echoed: Int
        if connection.quic != nil || connection.transport == .sctp {
            // Until the client ends the connection (QUIC's CONNECTION_CLOSE, SCTP's SHUTDOWN).
            echoed = await serveStreams(connection, quic: connection.quic)
        } else {
            echoed = await echo(connection.defaultStream)
            try? await connection.shutdown()  // TLS and DTLS have no other stream
        }
        logEnd(connection, echoed: echoed)
    }

    /// QUIC and SCTP: the default stream here, every other stream (and QUIC's DATAGRAMs) in
    /// child tasks.
    private static func serveStreams(_ connection: Connection, quic: Connection.QUIC?) async -> Int {
        let echoed = ByteCount()
        await withDiscardingTaskGroup { group in
            group.addTask {
                // Until the connection ends (the sequence finishes, or throws).
                try? await withThrowingDiscardingTaskGroup { streams in
                    for try await stream in connection.inboundStreams {
                        streams.addTask { echoed.add(await echo(stream)) }
                    }
                }
            }
            if let quic {
                group.addTask {
                    do {
                        for try await datagram in quic.datagrams { try? quic.sendDatagram(datagram) }
                    } catch {}  // the connection failed: nothing more to echo
                }
            }
            echoed.add(await echo(connection.defaultStream))
        }
        return echoed.value
    }

    private static func logStart(_ connection: Connection) {
        let transport = connection.quic.map { "\($0.version)" } ?? (connection.transport == .dtls ? "DTLS" : connection.transport == .sctp ? "SCTP" : "TLS")
        connection.logger.info("\(transport) handshake complete: \(connection.tlsVersion.map { "\($0)" } ?? "-") alpn=\(connection.alpn ?? "-") sni=\(connection.serverName ?? "-")")
    }

    private static func logEnd(_ connection: Connection, echoed: Int) {
        connection.logger.info("\(connection.closeInfo.map { "\($0)" } ?? "closed") after echoing \(echoed) bytes\(connection.quic?.movesDescription ?? "")")
    }

    /// Echoes one stream until its end (or the connection's); returns the bytes echoed.
    private static func echo(_ stream: Quiver.Stream) async -> Int {
        var count = 0
        do {
            for try await chunk in stream.inbound {
                try await stream.write(chunk)
                count += chunk.count
            }
            try stream.finish()
        } catch {}  // the stream was reset or the connection ended
        return count
    }

    /// The bytes echoed on one connection, added to by its streams' tasks.
    private final class ByteCount: Sendable {
        private let total = Atomic<Int>(0)
        func add(_ bytes: Int) { total.add(bytes, ordering: .relaxed) }
        var value: Int { total.load(ordering: .relaxed) }
    }
}

/// `quiver connect`: stdin to the connection's default stream, the server's bytes to stdout.
/// EOF on stdin finishes our side; when the server has finished its side the connection is
/// shut down and the exit status says whether everything closed cleanly.
enum EchoClient {
    static func run(_ connection: Connection) -> Int32 {
        Thread {
            let input = FileHandle.standardInput
            // DTLS: one message per write, at most one record. SCTP: one message per write.
            let maxWrite = connection.transport == .dtls ? 1 << 14 : connection.transport == .sctp ? 64 << 10 : Int.max
            while true {
                let data = input.availableData
                if data.isEmpty { break }
                var offset = 0
                while offset < data.count {
                    let end = min(data.count, offset + maxWrite)
                    guard (try? connection.write(data[offset..<end])) != nil else { return }
                    offset = end
                }
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
