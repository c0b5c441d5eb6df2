import Logging
import QuiverCore
import QuiverQUIC

/// Logs handshakes that failed or were abandoned, with the peer and the reason — rate-limited,
/// because a flood of bad handshakes must not turn into a flood of log lines: at most
/// ``burst`` lines at once and ``perSecond`` on average; lines left out are counted and the
/// count goes with the next line written (metadata `suppressed`). Every line carries the
/// connection's metadata as ``Connection/loggerMetadata`` does: `transport`, `peer` and, for
/// QUIC, `quic.connection_id`.
struct HandshakeFailureLog {
    let logger: Logger
    /// Lines per second on average.
    static let perSecond = 10
    /// Lines at once after a quiet period.
    static let burst = 20

    private var tokens = Double(Self.burst)
    private var refilledAt: Instant?
    private var suppressed = 0

    init(logger: Logger) { self.logger = logger }

    /// Logs (or counts) one failed handshake of `transport` with `peer` (for QUIC, the
    /// connection's original destination connection ID too).
    mutating func record(_ transport: Transport, peer: SocketAddress?, connectionID: ConnectionID? = nil, reason: String, at now: Instant) {
        if let last = refilledAt, now > last {
            let seconds = Double((now - last).nanosecondsClamped) / 1e9
            tokens = min(Double(Self.burst), tokens + seconds * Double(Self.perSecond))
        }
        refilledAt = now
        guard tokens >= 1 else {
            suppressed += 1
            return
        }
        tokens -= 1
        var metadata = Connection.loggerMetadata(transport: transport, peer: peer, connectionID: connectionID)
        if suppressed > 0 {
            metadata["suppressed"] = "\(suppressed)"
            suppressed = 0
        }
        logger.info("handshake failed: \(reason)", metadata: metadata)
    }
}
