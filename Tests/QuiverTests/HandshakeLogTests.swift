import Dispatch
import Logging
@testable import Quiver
import QuiverCore
import Synchronization
import Testing

/// A log handler that keeps what it is given.
final class CapturingLog: Sendable {
    struct Line: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: [String: String]
    }

    let lines = Mutex<[Line]>([])
    private let arrived = DispatchSemaphore(value: 0)

    /// Waits until a line is logged (`false` after `timeout` seconds without one).
    func waitForLine(timeout: Double) -> Bool {
        arrived.wait(timeout: .now() + timeout) == .success
    }

    var logger: Logger {
        Logger(label: "test") { _ in Handler(sink: self) }
    }

    struct Handler: LogHandler {
        let sink: CapturingLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            // The logger's own metadata (`logger[metadataKey:]`) under the line's, as swift-log's handlers merge them.
            let flattened = metadata.merging(event.metadata ?? [:]) { $1 }.mapValues { "\($0)" }
            sink.lines.withLock { $0.append(Line(level: event.level, message: "\(event.message)", metadata: flattened)) }
            sink.arrived.signal()
        }
    }
}

@Suite("Failed handshakes are logged")
struct HandshakeLogTests {
    @Test("a failed handshake is logged with the peer and the reason", arguments: [Transport.quic, .tcp, .dtls])
    func logged(transport: Transport) throws {
        let log = CapturingLog()
        var options = Listener.Options()
        options.logger = log.logger
        let listener = try Listener(transport, tls: Identity.server(alpn: ["echo"]), bind: "127.0.0.1:0", options: options)
        defer { listener.close() }
        #expect(throws: QuiverError.self) {
            _ = try Connection.connect(transport, to: "127.0.0.1", port: listener.localAddresses[0].port,
                                       tls: Identity.client(alpn: ["other"]), serverName: "localhost")
        }
        // The client has its answer; the server logs once its side of the handshake has ended.
        #expect(log.waitForLine(timeout: 10))
        let line = try #require(log.lines.withLock { $0.first })
        #expect(line.message.hasPrefix("handshake failed:"))
        #expect(line.message.contains("ALPN"))
        #expect(line.metadata["peer"]?.hasPrefix("127.0.0.1:") == true)
        #expect(line.metadata["transport"] == "\(transport)")
        // Counted as well (the log line is written where the count is taken).
        let statistics = listener.statistics
        let failed = statistics.quic?.handshakesFailed ?? statistics.tls?.handshakesFailed ?? statistics.dtls?.handshakesFailed
        #expect(failed == 1)
    }

    @Test("a flood of failures is rate-limited, and what was left out is counted")
    func rateLimited() {
        let log = CapturingLog()
        var failures = HandshakeFailureLog(logger: log.logger)
        let start = Instant(nanoseconds: 1_000_000_000)
        for _ in 0..<1000 { failures.record(.quic, peer: nil, reason: "x", at: start) }
        #expect(log.lines.withLock { $0.count } == HandshakeFailureLog.burst)
        // One second later: perSecond more lines; the first says how many were left out.
        for _ in 0..<1000 { failures.record(.quic, peer: nil, reason: "x", at: start + .seconds(1)) }
        let lines = log.lines.withLock { $0 }
        #expect(lines.count == HandshakeFailureLog.burst + HandshakeFailureLog.perSecond)
        #expect(lines[HandshakeFailureLog.burst].metadata["suppressed"] == "\(1000 - HandshakeFailureLog.burst)")
    }
}

/// When the heap is given back: a few times per flood of ended connections, never per connection.
@Suite("Heap trimming after connections end")
struct HeapTrimmerTests {
    @Test("2000 connections ending over two seconds trim a second after the last ended, and once more ten seconds later; small counts never")
    func flood() {
        var trims: [Int] = []
        var count = 2000
        var trimmer = HeapTrimmer(trim: { trims.append(count) })
        var now = Instant(nanoseconds: 1_000_000_000)
        trimmer.connectionsRemaining(2000, at: now)
        while count > 0 {
            count -= 1
            now = now + .milliseconds(1)
            trimmer.connectionsRemaining(count, at: now)
            trimmer.trimIfDue(at: now)
        }
        // Due at 1000 left, then at every halving and at zero: each moved the trim a second on.
        #expect(trims.isEmpty)
        #expect(trimmer.deadline == now + HeapTrimmer.delay)
        trimmer.trimIfDue(at: now + .milliseconds(999))
        #expect(trims.isEmpty)
        now = now + HeapTrimmer.delay
        trimmer.trimIfDue(at: now)
        #expect(trims == [0])
        #expect(trimmer.deadline == now + HeapTrimmer.settleDelay)  // the settling trim
        now = now + HeapTrimmer.settleDelay
        trimmer.trimIfDue(at: now)
        #expect(trims == [0, 0])
        #expect(trimmer.deadline == nil)

        trims.removeAll()
        var small = HeapTrimmer(trim: { trims.append(count) })
        for open in [10, 5, 0, 3, 0] {
            count = open
            now = now + .seconds(2)
            small.connectionsRemaining(open, at: now)
            small.trimIfDue(at: now)
        }
        #expect(trims.isEmpty)
        #expect(small.deadline == nil)
    }

    @Test("connections coming and going around a steady count do not trim")
    func steady() {
        var trims = 0
        var trimmer = HeapTrimmer(trim: { trims += 1 })
        var now = Instant(nanoseconds: 1)
        for round in 0..<10_000 {
            now = now + .milliseconds(10)
            trimmer.connectionsRemaining(500 + round % 50, at: now)
            trimmer.trimIfDue(at: now)
        }
        #expect(trims == 0)
    }
}
