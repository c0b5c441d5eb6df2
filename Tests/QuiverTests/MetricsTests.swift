import CoreMetrics
import Dispatch
import MetricsTestKit
@testable import Quiver
import QuiverCore
import QuiverTLS
import Synchronization
import Testing

/// swift-metrics' `TestMetrics`, whose updates can be waited for: every handler passes the
/// update on and then signals, so a test waits for a value without sleeping. Given to each
/// listener through ``Listener/Options/metricsFactory``: no process-wide bootstrap, so suites
/// running in parallel do not share metrics.
final class ObservedMetrics: MetricsFactory {
    let recorded = TestMetrics()
    private let updated = DispatchSemaphore(value: 0)

    /// Waits until `condition` holds, re-checked after every update (`false` after `timeout` s).
    func wait(timeout: Double = 10, until condition: () -> Bool) -> Bool {
        let deadline = DispatchTime.now() + timeout
        while !condition() {
            if updated.wait(timeout: deadline) == .timedOut { return condition() }
        }
        return true
    }

    /// The total of the counter `label` with these dimensions (any order), 0 if it was never made.
    func counter(_ label: String, _ dimensions: [(String, String)]) -> Int64 {
        (try? recorded.expectCounter(label, dimensions).totalValue) ?? 0
    }

    /// The gauge (meter) `label`'s last value, `nil` if it was never set.
    func meter(_ label: String, _ dimensions: [(String, String)]) -> Double? {
        try? recorded.expectMeter(label, dimensions).lastValue
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        Counter(inner: recorded.makeCounter(label: label, dimensions: dimensions), updated: updated)
    }
    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        recorded.makeFloatingPointCounter(label: label, dimensions: dimensions)
    }
    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        Meter(inner: recorded.makeMeter(label: label, dimensions: dimensions), updated: updated)
    }
    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        recorded.makeRecorder(label: label, dimensions: dimensions, aggregate: aggregate)
    }
    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        Timer(inner: recorded.makeTimer(label: label, dimensions: dimensions), updated: updated)
    }
    func destroyCounter(_ handler: any CounterHandler) {}
    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {}
    func destroyMeter(_ handler: any MeterHandler) {}
    func destroyRecorder(_ handler: any RecorderHandler) {}
    func destroyTimer(_ handler: any TimerHandler) {}

    private final class Counter: CounterHandler {
        let inner: any CounterHandler, updated: DispatchSemaphore
        init(inner: any CounterHandler, updated: DispatchSemaphore) { (self.inner, self.updated) = (inner, updated) }
        func increment(by amount: Int64) { inner.increment(by: amount); updated.signal() }
        func reset() { inner.reset(); updated.signal() }
    }

    private final class Meter: MeterHandler {
        let inner: any MeterHandler, updated: DispatchSemaphore
        init(inner: any MeterHandler, updated: DispatchSemaphore) { (self.inner, self.updated) = (inner, updated) }
        func set(_ value: Int64) { inner.set(value); updated.signal() }
        func set(_ value: Double) { inner.set(value); updated.signal() }
        func increment(by amount: Double) { inner.increment(by: amount); updated.signal() }
        func decrement(by amount: Double) { inner.decrement(by: amount); updated.signal() }
    }

    private final class Timer: TimerHandler {
        let inner: any TimerHandler, updated: DispatchSemaphore
        init(inner: any TimerHandler, updated: DispatchSemaphore) { (self.inner, self.updated) = (inner, updated) }
        func recordNanoseconds(_ duration: Int64) { inner.recordNanoseconds(duration); updated.signal() }
    }
}

@Suite("Listener metrics (swift-metrics)")
struct MetricsTests {
    static let handshakes = "quiver_handshakes_total"
    static let open = "quiver_connections_open"

    @Test("handshakes, open connections, bytes — and QUIC's RTT and losses — are counted; a refused certificate is a failure with reason certificate",
          arguments: [Transport.quic, .tcp])
    func listenerMetrics(transport: Transport) throws {
        let metrics = ObservedMetrics()
        var options = Listener.Options()
        options.metricsFactory = metrics
        options.metricsDimensions = [("listener", "test")]
        let listener = try Listener(transport, tls: Identity.server(), bind: "127.0.0.1:0", options: options)
        defer { listener.close() }
        let port = listener.localAddresses[0].port
        let labels = [("transport", transport == .quic ? "quic" : "tcp"), ("listener", "test")]
        let success = labels + [("outcome", "success"), ("reason", "none")]
        let refused = labels + [("outcome", "failure"), ("reason", "certificate")]
        // Made when the listener was: a scrape shows them at 0 before any connection.
        #expect(metrics.counter(Self.handshakes, success) == 0)
        #expect(metrics.counter(Self.handshakes, refused) == 0)

        let client = try Connection.connect(transport, to: "127.0.0.1", port: port, tls: Identity.client(), serverName: "localhost")
        let server = try listener.accept()  // counted before it is queued for accept
        #expect(metrics.counter(Self.handshakes, success) == 1)
        #expect(metrics.meter(Self.open, labels) == 1)
        let data = payload(seed: 1, count: 50_000)
        try client.write(data)
        try client.finish()
        var received: [UInt8] = []
        while case let bytes = try server.read(), !bytes.isEmpty { received += bytes }
        #expect(received == data)
        try server.shutdown()
        try client.shutdown(.rapid(code: 0, reason: ""))
        // The connection's end (QUIC: after its draining period) brings the gauge back to 0
        // and adds what it sent and received.
        #expect(metrics.wait { metrics.meter(Self.open, labels) == 0 }, "open: \(metrics.meter(Self.open, labels) ?? -1)")
        #expect(metrics.counter("quiver_bytes_received_total", labels) > Int64(data.count))
        #expect(metrics.counter("quiver_bytes_sent_total", labels) > 0)
        if transport == .quic {
            let rtt = try metrics.recorded.expectTimer("quiver_quic_smoothed_rtt_seconds", labels)
            #expect(rtt.values.count == 1)
            #expect(rtt.values.allSatisfy { $0 > 0 })
            #expect(metrics.recorded.counters(label: "quiver_quic_packets_lost_total").count == 1)
        } else {
            #expect(metrics.recorded.timers.isEmpty)
        }

        // A client that trusts another certificate refuses the server's: the server hears its alert.
        let (other, _) = try SelfSignedCertificate.generate(names: ["localhost"])
        let distrusting = TLSConfiguration.client(alpn: ["echo"], verifier: CertificateVerifier(trustRoots: other.certificates))
        #expect(throws: QuiverError.self) {
            _ = try Connection.connect(transport, to: "127.0.0.1", port: port, tls: distrusting, serverName: "localhost")
        }
        #expect(metrics.wait { metrics.counter(Self.handshakes, refused) == 1 }, "\(metrics.recorded.counters.map { "\($0.dimensions) \($0.totalValue)" })")
        #expect(metrics.counter(Self.handshakes, success) == 1)
        #expect(metrics.meter(Self.open, labels) == 0)
        #expect(metrics.recorded.counters(label: Self.handshakes).map(\.totalValue).reduce(0, +) == 2)  // nothing else counted
    }

    @Test("DTLS and the SCTP transports count handshakes, open connections and their datagrams' bytes; a refused certificate is a failure with reason certificate",
          arguments: [Transport.dtls, .sctp, .dtlsOverSCTP, .sctpOverDTLS])
    func datagramListenerMetrics(transport: Transport) throws {
        let metrics = ObservedMetrics()
        var options = Listener.Options()
        options.metricsFactory = metrics
        let (listener, port) = try udpListener(transport, options: options)
        defer { listener.close() }
        let labels = [("transport", transport.metricsLabel)]
        let success = labels + [("outcome", "success"), ("reason", "none")]
        let received = { metrics.counter("quiver_bytes_received_total", labels) }
        let sent = { metrics.counter("quiver_bytes_sent_total", labels) }

        let client = try Connection.connect(transport, to: "127.0.0.1", port: port, tls: Identity.client(), serverName: "localhost")
        // Counted as the server queues it for accept, which may follow the client's end of the
        // handshake.
        #expect(metrics.wait { metrics.meter(Self.open, labels) == 1 })
        #expect(metrics.counter(Self.handshakes, success) == 1)
        let sizes = [100, 1200, 5000]
        try SCTPListenerTests.lockstep(client, sizes: sizes)
        try client.finish()
        #expect(try client.read() == [])
        try client.shutdown()
        #expect(metrics.wait { metrics.meter(Self.open, labels) == 0 }, "open: \(metrics.meter(Self.open, labels) ?? -1)")
        // Every datagram both ways: the messages, their headers, the handshake.
        let messages = Int64(sizes.reduce(0, +))
        #expect(metrics.wait { received() > messages && sent() > messages }, "received \(received()), sent \(sent())")
        #expect(metrics.recorded.timers.isEmpty)
        #expect(metrics.recorded.counters(label: "quiver_quic_packets_lost_total").isEmpty)
        guard transport != .sctp else { return }  // no certificate to refuse

        let (other, _) = try SelfSignedCertificate.generate(names: ["localhost"])
        let distrusting = TLSConfiguration.client(alpn: ["echo"], verifier: CertificateVerifier(trustRoots: other.certificates))
        #expect(throws: QuiverError.self) {
            _ = try Connection.connect(transport, to: "127.0.0.1", port: port, tls: distrusting, serverName: "localhost")
        }
        let refused = labels + [("outcome", "failure"), ("reason", "certificate")]
        #expect(metrics.wait { metrics.counter(Self.handshakes, refused) == 1 }, "\(metrics.recorded.counters.map { "\($0.dimensions) \($0.totalValue)" })")
        #expect(metrics.counter(Self.handshakes, success) == 1)
        #expect(metrics.meter(Self.open, labels) == 0)
        #expect(metrics.recorded.counters(label: Self.handshakes).map(\.totalValue).reduce(0, +) == 2)  // nothing else counted
    }

    @Test("a connection still open when the listener closes is counted as ended")
    func openAtClose() throws {
        let metrics = ObservedMetrics()
        var options = Listener.Options()
        options.metricsFactory = metrics
        let listener = try Listener(.quic, tls: Identity.server(), bind: "127.0.0.1:0", options: options)
        let client = try Connection.connect(.quic, to: "127.0.0.1", port: listener.localAddresses[0].port, tls: Identity.client(),
                                            serverName: "localhost")
        _ = try listener.accept()
        #expect(metrics.meter(Self.open, [("transport", "quic")]) == 1)
        listener.close()  // on the loop, before it returns
        #expect(metrics.meter(Self.open, [("transport", "quic")]) == 0)
        #expect(try metrics.recorded.expectTimer("quiver_quic_smoothed_rtt_seconds", [("transport", "quic")]).values.count == 1)
        try client.shutdown(.rapid(code: 0, reason: ""))
    }

    @Test("without a metrics backend a listener makes no metric handles")
    func noBackend() {
        // This test process never bootstraps MetricsSystem: its factory is the no-op one.
        #expect(ListenerMetrics.make(transport: .quic, factory: nil, dimensions: []) == nil)
        #expect(ListenerMetrics.make(transport: .tcp, factory: NOOPMetricsHandler.instance, dimensions: []) == nil)
        #expect(ListenerMetrics.make(transport: .tcp, factory: ObservedMetrics(), dimensions: []) != nil)
    }

    @Test("failure reasons are a small fixed set read from the close: alerts, QUIC CRYPTO_ERRORs, timeouts")
    func failureReasons() {
        func reason(_ origin: CloseInfo.Origin, _ code: UInt64, _ transport: Transport = .tcp) -> HandshakeFailureReason {
            HandshakeFailureReason(CloseInfo(origin: origin, code: code, isApplicationCode: false, reason: "text"), transport: transport)
        }
        #expect(reason(.peer, 48) == .certificate)  // unknown_ca
        #expect(reason(.local, 42) == .certificate)  // bad_certificate
        #expect(reason(.peer, 0x100 + 48, .quic) == .certificate)
        #expect(reason(.local, 0x100 + 120, .quic) == .alpn)
        #expect(reason(.local, 120) == .alpn)
        #expect(reason(.local, 70) == .version)
        #expect(reason(.local, 40) == .negotiation)
        #expect(reason(.local, 50) == .protocol)  // decode_error
        #expect(reason(.local, 0x0a, .quic) == .protocol)  // PROTOCOL_VIOLATION
        #expect(reason(.peer, 0, .quic) == .closed)
        #expect(reason(.transport, 0) == .closed)
        #expect(reason(.timeout, 0) == .timeout)
        #expect(Set(HandshakeFailureReason.allCases.map(\.rawValue)).count == HandshakeFailureReason.allCases.count)
    }
}
