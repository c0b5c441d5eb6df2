import CoreMetrics
import QuiverCore

/// A listener's swift-metrics handles (``Listener/Options/metricsFactory``), made once when the
/// listener is created and shared by its event loops (the handles are thread-safe).
///
/// None exists when the factory is swift-metrics' no-op one (`NOOPMetricsHandler`, the default
/// until an application bootstraps a backend): the cores then hold `nil` and every update is a
/// `nil` check — no handle is made, no call goes through an existential, nothing is allocated
/// per connection.
///
/// Updates never happen per packet: a handshake's outcome when the core learns it, a
/// connection's end when the core forgets it, and the byte and loss counters as the difference
/// from what was last added (``Account``), at a connection's end and at most every
/// ``refreshInterval`` while the loop runs rounds — so long-lived connections show up too.
final class ListenerMetrics: Sendable {
    /// Counter: handshakes by `transport`, `outcome` (`success`, `failure`) and `reason`
    /// (`none` for a success, else a ``HandshakeFailureReason``).
    static let handshakes = "quiver_handshakes_total"
    /// Gauge (a swift-metrics `Meter`): connections whose handshake completed and that the
    /// listener has not forgotten yet, by `transport`.
    static let connectionsOpen = "quiver_connections_open"
    /// Counter: bytes received on the transport: TCP bytes for TLS, UDP payloads for QUIC (a
    /// connection's), DTLS and SCTP (every datagram of the listener's attachments).
    static let bytesReceived = "quiver_bytes_received_total"
    /// Counter: bytes sent on the transport.
    static let bytesSent = "quiver_bytes_sent_total"
    /// Counter: QUIC packets declared lost (RFC 9002 §6).
    static let packetsLost = "quiver_quic_packets_lost_total"
    /// Timer: a QUIC connection's smoothed RTT (RFC 9002 §5.3) when it ends, one sample per
    /// established connection.
    static let smoothedRTT = "quiver_quic_smoothed_rtt_seconds"

    /// How often the byte and loss counters take in what live connections did (the loop's
    /// rounds check it; a connection's end adds the rest at once).
    static let refreshInterval: Duration = .seconds(5)

    /// What a connection did, as its core reads it for the metrics: transport bytes both ways,
    /// and for QUIC the packets lost and the smoothed RTT.
    struct Sample {
        var bytesReceived = 0
        var bytesSent = 0
        var packetsLost = 0
        var smoothedRTT: Duration?
    }

    /// One connection's standing in the metrics: whether the gauge counts it open, and what of
    /// its ``Sample`` the counters have. Kept by its session, touched by its core only.
    struct Account {
        fileprivate(set) var isOpen = false
        fileprivate var reported = Sample()
    }

    /// When a core next adds what its live connections did (every ``refreshInterval``).
    struct RefreshSchedule {
        private var next: Instant?

        /// Whether a refresh is due at `now`; if so, the next is scheduled.
        mutating func isDue(at now: Instant) -> Bool {
            if let next, now < next { return false }
            next = now + ListenerMetrics.refreshInterval
            return true
        }
    }

    private let succeeded: Counter
    private let failed: [HandshakeFailureReason: Counter]
    private let open: Meter
    private let received: Counter
    private let sent: Counter
    /// QUIC's only.
    private let lost: Counter?
    private let rtt: Timer?

    /// The handles for a listener of `transport`, or `nil` when `factory` (by default
    /// `MetricsSystem.factory`) is the no-op one.
    static func make(transport: Transport, factory: (any MetricsFactory)?, dimensions: [(String, String)]) -> ListenerMetrics? {
        let factory = factory ?? MetricsSystem.factory
        if factory is NOOPMetricsHandler { return nil }
        return ListenerMetrics(transport: transport, factory: factory, dimensions: dimensions)
    }

    private init(transport: Transport, factory: any MetricsFactory, dimensions: [(String, String)]) {
        let base = [("transport", transport.metricsLabel)] + dimensions
        func handshakes(_ outcome: String, _ reason: String) -> Counter {
            Counter(label: Self.handshakes, dimensions: base + [("outcome", outcome), ("reason", reason)], factory: factory)
        }
        succeeded = handshakes("success", "none")
        failed = Dictionary(uniqueKeysWithValues: HandshakeFailureReason.allCases.map { ($0, handshakes("failure", $0.rawValue)) })
        open = Meter(label: Self.connectionsOpen, dimensions: base, factory: factory)
        received = Counter(label: Self.bytesReceived, dimensions: base, factory: factory)
        sent = Counter(label: Self.bytesSent, dimensions: base, factory: factory)
        if transport == .quic {
            lost = Counter(label: Self.packetsLost, dimensions: base, factory: factory)
            rtt = Timer(label: Self.smoothedRTT, dimensions: base, factory: factory)
        } else {
            lost = nil
            rtt = nil
        }
    }

    /// A connection's handshake completed: from now on it counts as open, until ``ended(_:_:)``.
    func opened(_ account: inout Account) {
        succeeded.increment()
        guard !account.isOpen else { return }
        account.isOpen = true
        open.increment()
    }

    /// `count` handshakes failed for `reason`.
    func handshakeFailed(_ reason: HandshakeFailureReason, count: Int = 1) {
        guard count > 0 else { return }
        failed[reason]?.increment(by: count)
    }

    /// Counts as `other` the failed handshakes an engine only counted, beyond its bounded queue of
    /// failures, so the metric agrees with the engine's statistics: `total` is the engine's
    /// count now, `drained` the failures taken from its queue (and counted) since the last call,
    /// `counted` the engine's count at the last call.
    func handshakesFailedBeyondQueue(total: Int, drained: Int, counted: inout Int) {
        handshakeFailed(.other, count: total - counted - drained)
        counted = total
    }

    /// Adds the bytes a listener's attachments moved, counted by its core since the last call,
    /// and zeroes them (DTLS and SCTP count at the attachments: every datagram, handshakes and
    /// refusals included).
    func add(transportBytes: inout (received: Int, sent: Int)) {
        if transportBytes.received > 0 { received.increment(by: transportBytes.received) }
        if transportBytes.sent > 0 { sent.increment(by: transportBytes.sent) }
        transportBytes = (0, 0)
    }

    /// Adds what a connection's counters gained since they were last added.
    func add(_ sample: Sample, to account: inout Account) {
        let reported = account.reported
        if sample.bytesReceived > reported.bytesReceived { received.increment(by: sample.bytesReceived - reported.bytesReceived) }
        if sample.bytesSent > reported.bytesSent { sent.increment(by: sample.bytesSent - reported.bytesSent) }
        if let lost, sample.packetsLost > reported.packetsLost { lost.increment(by: sample.packetsLost - reported.packetsLost) }
        account.reported = sample
    }

    /// A connection its core forgets (it ended, was handed to a forked child, or the listener
    /// closed): the rest of its counts, its smoothed RTT (QUIC), and its end if it was open. The
    /// gauge moves last, so whoever sees it drop sees the connection's other metrics.
    func ended(_ account: inout Account, _ sample: Sample = Sample()) {
        add(sample, to: &account)
        guard account.isOpen else { return }
        account.isOpen = false
        if let rtt, let smoothedRTT = sample.smoothedRTT { rtt.recordNanoseconds(smoothedRTT.nanosecondsClamped) }
        open.decrement()
    }

    /// ``ended(_:_:)`` for a session, sampled by its core.
    func ended(_ session: some MeteredSession) {
        ended(&session.metricsAccount, session.metricsSample)
    }

    /// Adds what `sessions` did since the last refresh, when `schedule` says one is due.
    func refresh(_ sessions: some Sequence<some MeteredSession>, at now: Instant, schedule: inout RefreshSchedule) {
        guard schedule.isDue(at: now) else { return }
        for session in sessions { add(session.metricsSample, to: &session.metricsAccount) }
    }
}

/// A listener's connection, as its core accounts for it in the ``ListenerMetrics``: both
/// members are the core's, used on its loop with its lock held.
protocol MeteredSession: AnyObject {
    var metricsAccount: ListenerMetrics.Account { get set }
    /// What the connection did so far (the session's own lock is taken if it needs one).
    var metricsSample: ListenerMetrics.Sample { get }
}

/// Why a handshake failed, as the `reason` label of `quiver_handshakes_total`: a small, fixed
/// set (never the peer or the error text, which would make a label without bounds).
enum HandshakeFailureReason: String, CaseIterable, Sendable {
    /// The handshake took too long, or the peer went silent.
    case timeout
    /// A certificate was refused, by either side (bad_certificate, unknown_ca, certificate_expired,
    /// certificate_required …).
    case certificate
    /// No application protocol in common (no_application_protocol).
    case alpn
    /// No TLS version in common (protocol_version).
    case version
    /// No parameters in common: suites, groups, signature schemes (handshake_failure,
    /// insufficient_security).
    case negotiation
    /// A protocol violation: malformed or unexpected messages, failed verification, a QUIC
    /// transport error.
    case `protocol`
    /// The peer closed or reset the connection without an error (or the transport ended).
    case closed
    /// Anything else, and failures the engine only counted (its queue of failures was full).
    case other

    /// The reason for a connection that ended as `info` describes before its handshake completed.
    /// A TLS alert is read from ``CloseInfo/code`` (TLS, DTLS) or QUIC's CRYPTO_ERROR range
    /// (0x100 + alert, RFC 9001 §4.8).
    init(_ info: CloseInfo, transport: Transport) {
        switch info.origin {
        case .timeout: self = .timeout
        case .transport, .unreachable: self = .closed
        case .local, .peer:
            guard !info.isApplicationCode else {
                self = .other
                return
            }
            if transport == .quic {
                if info.code == 0 {
                    self = .closed
                } else if (0x100...0x1ff).contains(info.code) {
                    self = Self(alert: UInt8(info.code - 0x100))
                } else {
                    self = .protocol
                }
            } else {
                self = info.code <= 0xff ? Self(alert: UInt8(info.code)) : .other
            }
        }
    }

    /// The reason a TLS alert (RFC 8446 §6) gives.
    init(alert: UInt8) {
        switch alert {
        case 0, 90: self = .closed  // close_notify, user_canceled
        case 42, 43, 44, 45, 46, 48, 49, 111, 113, 116: self = .certificate
        case 120: self = .alpn
        case 70: self = .version
        case 40, 71, 86, 109: self = .negotiation  // handshake_failure, insufficient_security, inappropriate_fallback, missing_extension
        case 80: self = .other  // internal_error
        default: self = .protocol
        }
    }
}

extension Transport {
    /// The `transport` label of the metrics: `tcp`, `quic`, `dtls`, `sctp`, `dtls_over_sctp`,
    /// `sctp_over_dtls`.
    var metricsLabel: String {
        switch self {
        case .tcp: "tcp"
        case .quic: "quic"
        case .dtls: "dtls"
        case .sctp: "sctp"
        case .dtlsOverSCTP: "dtls_over_sctp"
        case .sctpOverDTLS: "sctp_over_dtls"
        }
    }
}
