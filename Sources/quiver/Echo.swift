import Foundation
import Logging
import Quiver
import QuiverCore
import Synchronization

/// The echo service of `quiver serve`, thread per connection on the `Quiver` listener API —
/// the same code for TLS and QUIC. Every bidirectional stream's bytes come back on it and its
/// end is echoed as its end; on QUIC, DATAGRAMs are echoed too. A TLS connection closes after
/// its stream ends; a QUIC connection stays open for more streams until the client closes it.
enum EchoServer {
    /// Accepts on `listener` until it closes (or `limit` connections were served), serving each
    /// connection on its own threads.
    static func run(_ listener: Listener, log: Logger, limit: Int?, group: DispatchGroup) {
        var served = 0
        while limit.map({ served < $0 }) ?? true {
            guard let connection = try? listener.accept() else { return }
            served += 1
            group.enter()
            Thread {
                defer { group.leave() }
                serve(connection, log: log)
            }.start()
        }
    }

    static func serve(_ connection: Connection, log: Logger) {
        let who = connection.peerAddress.map { "\($0)" } ?? "?"
        log.info("\(who): \(connection.transport == .quic ? "QUIC" : "TLS") handshake complete: alpn=\(connection.alpn ?? "-") sni=\(connection.serverName ?? "-")")
        let total = Atomic<Int>(0)
        let streams = DispatchGroup()
        if connection.transport == .quic {
            // More streams, and datagrams, while the connection lives.
            streams.enter()
            Thread {
                defer { streams.leave() }
                while let stream = try? connection.acceptStream() {
                    streams.enter()
                    Thread {
                        defer { streams.leave() }
                        total.add(echo(stream), ordering: .relaxed)
                    }.start()
                }
            }.start()
            Thread {
                while let datagram = try? connection.receiveDatagram() { try? connection.sendDatagram(datagram) }
            }.start()
        }
        total.add(echo(connection.defaultStream), ordering: .relaxed)
        if connection.transport == .tcp {
            try? connection.shutdown()
        }
        streams.wait()  // QUIC: until the client closes (or the idle timeout)
        let info = connection.closeInfo.map { "\($0)" } ?? "closed"
        log.info("\(who): \(info) after echoing \(total.load(ordering: .relaxed)) bytes")
    }

    /// Echoes one stream until its end; returns the bytes echoed.
    static func echo(_ stream: Quiver.Stream) -> Int {
        var total = 0
        while let bytes = try? stream.read(), !bytes.isEmpty {
            guard (try? stream.write(bytes)) != nil else { return total }
            total += bytes.count
        }
        try? stream.finish()
        return total
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
