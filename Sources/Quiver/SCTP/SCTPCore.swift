#if canImport(Glibc)
import Glibc
#endif
import QuiverCore
import QuiverSCTP
import QuiverTLS
import QuiverUDP
import Synchronization

/// The I/O side of an SCTP listener or client: one ``SCTPDatagramEndpoint`` on its attachments,
/// its sessions and the accept queue, under one lock that the loop holds while it handles
/// events, as ``DTLSCore``. The endpoint is an ``SCTPEndpoint`` (SCTP packets as UDP payloads —
/// UDP encapsulation, RFC 6951 — or on datagram pairs) for ``Transport/sctp`` and
/// ``Transport/dtlsOverSCTP`` (whose sessions run DTLS on their association), or an
/// ``SCTPOverDTLSEndpoint`` for ``Transport/sctpOverDTLS``. A round: the inbox (commands, pair
/// arrivals) → every datagram to the endpoint → its timers → associations set up by a COOKIE
/// ECHO become sessions → the endpoint's packets to the attachments, until a UDP socket is full
/// (the packet in hand waits and output readiness is watched) → the associations that were
/// active absorb their events into their sessions (DTLS over SCTP runs its DTLS there), new
/// ones are filed for accept and closed ones forgotten → once more, what that made is sent and
/// absorbed.
///
/// Not built yet: several event loops (a steering program by verification tag), the fork
/// hand-off, the idle timeout (SCTP's HEARTBEAT finds a peer that vanished).
final class SCTPCore: DriverCore, @unchecked Sendable {
    // @unchecked: mutable state is guarded by `lock` (or is the Mutex `inbox`); the endpoint
    // and its associations belong to the driver's owner.
    struct Inbox {
        var sessions: [SCTPSession] = []
        var arrivals: Set<Int> = []
    }

    let driver: Driver
    let lock = Monitor()
    let transport: Transport
    /// DTLS over SCTP: the TLS settings of every session's DTLS (`nil` for the other transports).
    let security: TLSConfiguration?
    /// A DTLS handshake (DTLS over SCTP, SCTP over DTLS) must be done within this.
    let handshakeTimeout: Duration
    private let acceptQueue: AcceptQueue?
    private var endpoint: (any SCTPDatagramEndpoint)?
    /// DTLS over SCTP: sessions whose DTLS handshake runs, with when they must run next.
    private var securing: [ObjectIdentifier: (session: SCTPSession, deadline: Instant)] = [:]
    var handshakeLog: HandshakeFailureLog?
    /// A listener's metrics (set before the driver starts; `nil` without a backend). An
    /// association counts as a handshake that succeeded once it is ready for accept (for DTLS
    /// over SCTP, once its DTLS handshake completed); failures are DTLS's.
    var metrics: ListenerMetrics?
    /// SCTP over DTLS: the DTLS endpoint's failed handshakes already counted in ``metrics``.
    private var failuresCounted = 0
    /// Bytes the attachments moved since the metrics last took them in (once a round).
    private var transportBytes = (received: 0, sent: 0)
    private let ports = DatagramAttachments()
    private var sessions: [ObjectIdentifier: SCTPSession] = [:]
    /// A client's one session.
    private var client: SCTPSession?
    private let inbox = Mutex(Inbox())
    private var touched: [ObjectIdentifier: SCTPSession] = [:]
    private var roundProgressed = false
    /// A packet the endpoint made that a full UDP socket did not take yet.
    private var parked: (bytes: [UInt8], to: SocketAddress)?
    private var stalledAttachment: Int?
    private var heapTrimmer = HeapTrimmer()
    private(set) var isClosed = false
    private var isLingering = false

    init(driver: Driver, acceptQueue: AcceptQueue?, transport: Transport, endpoint: any SCTPDatagramEndpoint,
         security: TLSConfiguration? = nil, handshakeTimeout: Duration = .seconds(10)) {
        self.driver = driver
        self.acceptQueue = acceptQueue
        self.transport = transport
        self.endpoint = endpoint
        self.security = security
        self.handshakeTimeout = handshakeTimeout
    }

    /// A client's association, made by the endpoint (before the driver starts); `dtls`: the
    /// client connection of DTLS over SCTP.
    func connect(_ association: SCTPAssociation, dtls: DTLSConnection? = nil) -> SCTPSession {
        let carrier = (endpoint as? SCTPOverDTLSEndpoint)?.dtlsConnection(for: association.peerAddress)
        let session = SCTPSession(engine: association, core: self, security: dtls, carrier: carrier)
        client = session
        sessions[ObjectIdentifier(session.engineForCore())] = session
        inbox.withLock { $0.sessions.append(session) }
        return session
    }

    func addAttachment(_ attachment: Attachment) throws(QuiverError) {
        try ports.add(attachment, driver: driver, transport: "SCTP") { [weak self] index in self?.arrived(on: index) }
    }

    private func arrived(on index: Int) {
        inbox.withLock { _ = $0.arrivals.insert(index) }
        driver.wake()
    }

    var localAddresses: [SocketAddress] { lock.withLock { ports.localAddresses } }

    /// Called by sessions after an application command (without their lock).
    func sessionNeedsService(_ session: SCTPSession) {
        guard !driver.isAbandoned else { return }
        inbox.withLock { $0.sessions.append(session) }
        driver.wake()
    }

    // MARK: - DriverCore

    var nextDeadline: Instant? {
        lock.withLock {
            guard !isClosed, let endpoint else { return nil }
            return ([endpoint.nextDeadline, heapTrimmer.deadline] + securing.values.map { Optional($0.deadline) }).compactMap { $0 }.min()
        }
    }

    func handleEvents(_ ready: [EventPoll.Ready]) {
        lock.lock()
        defer { lock.unlock() }
        guard !isClosed, let endpoint else { return }
        let work = inbox.withLock { inbox -> Inbox in
            defer { inbox = Inbox() }
            return inbox
        }
        roundProgressed = false
        let now = Instant.now()
        for session in work.sessions { touched[ObjectIdentifier(session)] = session }
        ports.receive(arrivals: work.arrivals, driver: driver, routes: 4 * sessions.count + 4, again: arrived(on:),
                      peerErrors: handlePeerErrors) { bytes, source, _, _ in
            roundProgressed = true
            transportBytes.received += bytes.count
            endpoint.receive(bytes, from: source, now: now)
        }
        if let deadline = endpoint.nextDeadline, deadline <= now {
            endpoint.handleTimeout(now: now)
            roundProgressed = true
        }
        if let overDTLS = endpoint as? SCTPOverDTLSEndpoint {
            var failures = 0
            while let failure = overDTLS.nextFailedHandshake() {
                failures += 1
                metrics?.handshakeFailed(HandshakeFailureReason(CloseInfo(failure.error), transport: .dtls))
                handshakeLog?.record(transport, peer: failure.peer, reason: "\(failure.error)", at: now)
            }
            if let total = overDTLS.dtlsStatistics?.handshakesFailed {
                metrics?.handshakesFailedBeyondQueue(total: total, drained: failures, counted: &failuresCounted)
            }
        }
        for (id, entry) in securing where entry.deadline <= now { touched[id] = entry.session }
        while let association = endpoint.accept() {
            let carrier = (endpoint as? SCTPOverDTLSEndpoint)?.dtlsConnection(for: association.peerAddress)
            let session = SCTPSession(engine: association, core: self, security: security.map { DTLSConnection(server: $0) }, carrier: carrier)
            sessions[ObjectIdentifier(association)] = session
            touched[ObjectIdentifier(session)] = session
        }
        for association in endpoint.takeActiveAssociations() {
            if let session = sessions[ObjectIdentifier(association)] { touched[ObjectIdentifier(session)] = session }
        }
        transmit(endpoint, at: now)
        settleTouched(at: now)
        // What the sessions made as they settled (DTLS over SCTP's handshake flights, a failed
        // handshake's alert) leaves in this round, before a waiter woken by it can close the core.
        transmit(endpoint, at: now)
        settleTouched(at: now)
        metrics?.add(transportBytes: &transportBytes)
        if isLingering, let client, client.monitor.withLock({ client.isFinishedLocked }) {
            isClosed = true
            sessions.removeAll()
            self.client = nil  // the session holds this core: break the cycle
            driver.stop()
            return
        }
        if roundProgressed || acceptQueue?.isEmpty == false, !driver.isThreadAssisted { driver.wake() }
        heapTrimmer.trimIfDue(at: now)
    }

    /// The sessions worked on this round absorb what changed and are filed: new ones for
    /// accept, finished ones forgotten.
    private func settleTouched(at now: Instant) {
        for session in touched.values {
            session.monitor.lock()
            session.absorbEventsLocked()
            // Only associations that came up: one whose DTLS handshake failed is not handed out.
            let queue = !session.isQueuedForAccept && session.isEstablishedLocked && acceptQueue != nil
            if queue { session.isQueuedForAccept = true }
            let finished = session.isFinishedLocked
            let deadline = session.securityDeadlineLocked
            session.monitor.unlock()
            if let deadline {
                securing[ObjectIdentifier(session)] = (session, deadline)
            } else {
                securing[ObjectIdentifier(session)] = nil
            }
            if queue {
                metrics?.opened(&session.metricsAccount)
                acceptQueue?.append(session)
            }
            if finished, session !== client {
                metrics?.ended(&session.metricsAccount)
                sessions[ObjectIdentifier(session.engineForCore())] = nil
                heapTrimmer.connectionsRemaining(sessions.count, at: now)
            }
        }
        touched.removeAll(keepingCapacity: true)
    }

    // MARK: - Output

    /// The endpoint's packets to the attachments, until a UDP socket is full.
    private func transmit(_ endpoint: any SCTPDatagramEndpoint, at now: Instant) {
        if let index = stalledAttachment {
            guard ports.resume(index, driver: driver, peerErrors: handlePeerErrors) else { return }
            stalledAttachment = nil
        }
        while let next = parked ?? endpoint.nextDatagram(now: now) {
            parked = nil
            if let full = ports.send(next.bytes, to: next.to, driver: driver, peerErrors: handlePeerErrors) {
                parked = next
                stalledAttachment = full
                return
            }
            transportBytes.sent += next.bytes.count
        }
        ports.flushAll(peerErrors: handlePeerErrors)
        // Sessions whose associations just sent (a SHUTDOWN's end among them) look again.
        for association in endpoint.takeActiveAssociations() {
            if let session = sessions[ObjectIdentifier(association)] { touched[ObjectIdentifier(session)] = session }
        }
    }

    /// A DTLS handshake that failed (a session's, on the loop with the lock held).
    func handshakeFailed(peer: SocketAddress?, reason: String, cause: HandshakeFailureReason, at now: Instant) {
        metrics?.handshakeFailed(cause)
        handshakeLog?.record(transport, peer: peer, reason: reason, at: now)
    }

    /// ICMP reports (counted already): a client whose server is unreachable before the
    /// association is up fails as a refused TCP connection does.
    private func handlePeerErrors(_ reports: [UDPPeerError]) {
        guard let client else { return }
        for report in reports where report.peer == client.peerAddress {
            let code = report.error.code
            guard code == .connectionRefused || code == .hostUnreachable || code == .networkUnreachable else { continue }
            let association = client.engineForCore()
            guard association.state == .cookieWait || association.state == .cookieEchoed else { continue }
            association.abort(reason: "connect \(report.peer) failed: \(String(cString: strerror(report.error.errno)))", now: .now())
            touched[ObjectIdentifier(client)] = client
            roundProgressed = true
        }
    }

    // MARK: - Diagnostics

    var statistics: Listener.Statistics {
        lock.withLock {
            var statistics = ports.statistics
            if let endpoint {
                statistics.connections = endpoint.associationCount
                statistics.sctp = Listener.Statistics.SCTP(endpoint.statistics)
                if let overDTLS = endpoint as? SCTPOverDTLSEndpoint, let dtls = overDTLS.dtlsStatistics {
                    statistics.dtls = Listener.Statistics.DTLS(dtls)
                }
            }
            return statistics
        }
    }

    var debugDescription: String {
        lock.withLock { "sctp sessions=\(sessions.count) parked=\(parked != nil) udp=\(ports.counters) \(statistics)" }
    }

    // MARK: - Closing

    /// Closes every association with an ABORT carrying the reason (the loop stops now, so a
    /// SHUTDOWN could not complete; a connection's own close with code 0 is a SHUTDOWN), sends
    /// what that produced, wakes the waiters and stops the driver.
    func close(code: UInt64, reason: String) {
        var all: [SCTPSession] = []
        driver.perform(locksCore: false) {
            lock.lock()
            defer { lock.unlock() }
            guard !isClosed, let endpoint else {
                isClosed = true
                return
            }
            all = Array(sessions.values)
            for session in all {
                // The listener goes away: its associations end at once (an ABORT; a SHUTDOWN
                // would need the loop that stops now).
                session.monitor.withLock { session.closeLocked(code: code == 0 ? 1 : code, reason: reason.isEmpty ? "closed" : reason) }
                touched[ObjectIdentifier(session)] = session
            }
            transmit(endpoint, at: .now())
            settleTouched(at: .now())
            metrics?.add(transportBytes: &transportBytes)
            if let metrics { for session in sessions.values { metrics.ended(&session.metricsAccount) } }
            isClosed = true
            sessions.removeAll()
            securing.removeAll()
            client = nil
            self.endpoint = nil
        }
        driver.stop()
        for session in all { session.monitor.withLock { session.changedLocked() } }
        ports.detachPairs()
    }
}

extension SCTPCore: TransportCore {
    func attachLocked(_ attachment: Attachment) throws(QuiverError) { try addAttachment(attachment) }

    func fork(handingOff session: any Session) throws(QuiverError) -> Listener.ForkResult {
        throw QuiverError(.configuration, "handing an SCTP association to a forked child is not built yet")
    }

    /// A client's shutdown: the loop runs until the SHUTDOWN sequence ended (thread-assisted),
    /// or the core closes at once.
    func lingerThenClose() {
        let linger = lock.withLock { () -> Bool in
            guard !isClosed, driver.isThreadAssisted, client != nil else { return false }
            isLingering = true
            return true
        }
        if linger { driver.wake() } else { close(code: 0, reason: "") }
    }

    func closeUnlessLingering() {
        if !lock.withLock({ isLingering }) { close(code: 0, reason: "") }
    }
}

extension Listener.Statistics.SCTP {
    init(_ endpoint: SCTPEndpoint.Statistics) {
        self.init(badChecksums: endpoint.badChecksum, malformedPackets: endpoint.malformed, outOfTheBluePackets: endpoint.outOfTheBlue,
                  invalidCookies: endpoint.invalidCookies, staleCookies: endpoint.staleCookies, associationsRefused: endpoint.refused)
    }
}
