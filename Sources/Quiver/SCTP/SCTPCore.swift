#if canImport(Glibc)
import Glibc
#endif
import QuiverCore
import QuiverSCTP
import QuiverUDP
import Synchronization

/// The I/O side of an SCTP listener or client (``Transport/sctp``): one ``SCTPEndpoint`` on its
/// attachments (SCTP packets as UDP payloads — UDP encapsulation, RFC 6951 — or on datagram
/// pairs), its sessions and the accept queue, under one lock that the loop holds while it
/// handles events, as ``DTLSCore``. A round: the inbox (commands, pair arrivals) → every
/// datagram to the endpoint → its timers → associations set up by a COOKIE ECHO become
/// sessions for accept → the associations that were active absorb their events into their
/// sessions, and closed ones are forgotten → the endpoint's packets to the attachments, until
/// a UDP socket is full (the packet in hand waits and output readiness is watched).
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
    private let acceptQueue: AcceptQueue?
    private var endpoint: SCTPEndpoint?
    var handshakeLog: HandshakeFailureLog?
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

    init(driver: Driver, acceptQueue: AcceptQueue?, endpoint: SCTPEndpoint) {
        self.driver = driver
        self.acceptQueue = acceptQueue
        self.endpoint = endpoint
    }

    /// A client's association with `port` at `remote` (before the driver starts).
    func connect(to remote: SocketAddress, port: UInt16) -> SCTPSession {
        let session = SCTPSession(engine: endpoint!.connect(to: remote, port: port, now: .now()), core: self)
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
            return [endpoint.nextDeadline, heapTrimmer.deadline].compactMap { $0 }.min()
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
            endpoint.receive(bytes, from: source, now: now)
        }
        if let deadline = endpoint.nextDeadline, deadline <= now {
            endpoint.handleTimeout(now: now)
            roundProgressed = true
        }
        while let association = endpoint.accept() {
            let session = SCTPSession(engine: association, core: self)
            sessions[ObjectIdentifier(association)] = session
            touched[ObjectIdentifier(session)] = session
        }
        for association in endpoint.takeActiveAssociations() {
            if let session = sessions[ObjectIdentifier(association)] { touched[ObjectIdentifier(session)] = session }
        }
        transmit(endpoint, at: now)
        settleTouched(at: now)
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
            let queue = !session.isQueuedForAccept && session.isReadyLocked && acceptQueue != nil
            if queue { session.isQueuedForAccept = true }
            let finished = session.isFinishedLocked
            session.monitor.unlock()
            if queue { acceptQueue?.append(session) }
            if finished, session !== client {
                sessions[ObjectIdentifier(session.engineForCore())] = nil
                heapTrimmer.connectionsRemaining(sessions.count, at: now)
            }
        }
        touched.removeAll(keepingCapacity: true)
    }

    // MARK: - Output

    /// The endpoint's packets to the attachments, until a UDP socket is full.
    private func transmit(_ endpoint: SCTPEndpoint, at now: Instant) {
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
        }
        ports.flushAll(peerErrors: handlePeerErrors)
        // Sessions whose associations just sent (a SHUTDOWN's end among them) look again.
        for association in endpoint.takeActiveAssociations() {
            if let session = sessions[ObjectIdentifier(association)] { touched[ObjectIdentifier(session)] = session }
        }
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
            isClosed = true
            sessions.removeAll()
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
