public import QuiverCore
import QuiverTLS

/// A QUIC server endpoint, sans-I/O: it demultiplexes datagrams to connections by
/// Destination Connection ID, creates connections from valid client Initials, and answers
/// statelessly — Version Negotiation, Retry, stateless reset — when no connection applies
/// (RFC 9000 §5.2, §6, §8.1, §10.3).
///
/// Driving it is the same loop as for one connection: ``receive(_:from:to:ecn:at:)``,
/// ``handleTimeout(at:)`` when ``nextDeadline`` passes, ``transmit(at:)`` until `nil`, and
/// ``accept()`` for connections whose handshake completed. The application reads each
/// connection's events itself.
///
/// Memory is bounded: at most ``Configuration/maxPendingConnections`` handshakes at once
/// (further Initials are dropped, counted in ``Statistics/initialsDropped``) and at most 256
/// queued stateless answers.
///
/// Thread safety: none; one driver at a time.
public final class QUICEndpoint {
    /// When to ask clients to prove their address with a Retry round trip (RFC 9000 §8.1.2).
    public enum RetryPolicy: Sendable, Hashable {
        /// Never: the anti-amplification limit alone protects against reflection.
        case never
        /// For every Initial without a valid token.
        case always
        /// Once this many handshakes are pending (a sign of a flood).
        case whenPendingExceeds(Int)
    }

    /// Endpoint settings.
    public struct Configuration: Sendable {
        /// The settings of each connection (server side).
        public var connection: QUICConfiguration
        /// When to send Retry.
        public var retryPolicy: RetryPolicy = .whenPendingExceeds(128)
        /// The secret address tokens are sealed with; share it between processes of one server.
        public var tokenSecret: [UInt8]
        /// How long a Retry token is accepted.
        public var retryTokenLifetime: Duration = .seconds(10)
        /// How long a NEW_TOKEN token is accepted.
        public var newTokenLifetime: Duration = .seconds(24 * 3600)
        /// Whether established connections receive a NEW_TOKEN for their next connection.
        public var issueNewTokens = true
        /// The most handshakes in progress at once; Initials beyond it are dropped (the client
        /// retries them).
        public var maxPendingConnections = 1024
        /// The most connections held at once, handshaking or established (closing ones count
        /// until they are gone). A client beyond it is refused with an Initial packet carrying
        /// CONNECTION_CLOSE with CONNECTION_REFUSED (RFC 9000 §5.2.2), at once and without
        /// keeping any state for it.
        public var maxConnections = 10_000
        /// A count of connections shared with other endpoints (a listener's event loops), so
        /// that ``maxConnections`` holds for all of them together; `nil` (the default): this
        /// endpoint's own count. Its limit must be ``maxConnections``.
        public var connectionBudget: ConnectionBudget?
        /// The wall clock tokens are dated with.
        public var clock: WallClock = .system

        /// A configuration with a random token secret.
        public init(connection: QUICConfiguration) {
            self.connection = connection
            self.tokenSecret = connection.random.bytes(32)
        }
    }

    /// Counters for tests and diagnostics.
    public struct Statistics: Sendable, Hashable {
        public var connectionsCreated = 0
        public var retriesSent = 0
        public var versionNegotiationsSent = 0
        public var statelessResetsSent = 0
        /// Initials dropped: too small, over the pending cap, or with an invalid Retry token.
        public var initialsDropped = 0
        /// Clients refused with CONNECTION_REFUSED because ``Configuration/maxConnections``
        /// connections were held.
        public var connectionsRefused = 0
        /// Datagrams for no connection that got no answer.
        public var datagramsDropped = 0
        /// Connections that closed before their handshake completed (a TLS alert, a protocol
        /// error, the client going silent), as reported by ``QUICEndpoint/nextFailedHandshake()``.
        public var handshakesFailed = 0
    }

    /// A connection that closed before its handshake completed: who and why.
    public struct FailedHandshake: Sendable, Hashable {
        /// The client's address.
        public var remote: SocketAddress
        /// How the connection ended (``ConnectionCloseInfo/Origin/idleTimeout`` for a client
        /// that went silent).
        public var closeInfo: ConnectionCloseInfo
        /// The first Destination Connection ID the client chose: the connection's name in logs.
        public var originalDestinationConnectionID: ConnectionID
    }

    /// At most this many failed handshakes wait for ``nextFailedHandshake()``; more are only
    /// counted, so a flood of bad handshakes keeps memory bounded.
    public static let failedHandshakeQueueLimit = 64

    /// A timer heap entry: valid while `deadline` is still the connection's cached deadline.
    private struct Timer: Comparable {
        let deadline: Instant
        let key: ObjectIdentifier
        static func < (a: Timer, b: Timer) -> Bool { (a.deadline, a.key) < (b.deadline, b.key) }
    }

    private struct Entry {
        let connection: QUICConnection
        let initialRoute: ConnectionID
        var routes: [ConnectionID] = []
        var isPending = true
        var accepted = false
        var tokenSent = false
        /// The connection's deadline when last looked at (the one the timer heap knows).
        var deadline: Instant?
        /// Whether the connection is in ``active`` (it may have something to send).
        var isActive = false

        /// Whether ``routes`` are `connection`'s connection IDs (then, while pending, the
        /// client's chosen DCID), compared in place: this runs after every packet.
        func hasRoutes(for connection: QUICConnection) -> Bool {
            let issued = connection.cids.local
            guard routes.count == issued.count + (isPending ? 1 : 0) else { return false }
            for (route, id) in zip(routes, issued) where route != id.id { return false }
            return !isPending || routes.last == initialRoute
        }
    }

    // Stored state is `@exclusivity(unchecked)`, as in ``QUICConnection``: one owner at a time.

    /// The configuration.
    public let configuration: Configuration
    /// `configuration.connection`, shared by every connection made here.
    private let connectionSettings: SharedConfiguration
    /// Counters.
    @exclusivity(unchecked) public private(set) var statistics = Statistics()
    private let tokens: AddressTokenSealer
    private let connectionIDLength: Int
    /// The connections held, against ``Configuration/maxConnections`` (shared with other
    /// endpoints when ``Configuration/connectionBudget`` is set).
    private let budget: ConnectionBudget
    @exclusivity(unchecked) private var entries: [ObjectIdentifier: Entry] = [:]
    @exclusivity(unchecked) private var routes: [ConnectionID: QUICConnection] = [:]
    /// Connections that may have something to send, in round-robin order: those that received,
    /// timed out or got an application command since ``transmit(at:)`` last found them idle.
    /// Sending therefore costs in proportion to busy connections, not to all of them.
    @exclusivity(unchecked) private var active: [QUICConnection] = []
    @exclusivity(unchecked) private var activeHead = 0
    /// Every connection's deadline, so timers cost O(log n) (stale entries are skipped).
    @exclusivity(unchecked) private var timers = MinHeap<Timer>()
    @exclusivity(unchecked) private var statelessQueue: [OutgoingDatagram] = []
    @exclusivity(unchecked) private var acceptQueue: [QUICConnection] = []
    @exclusivity(unchecked) private var pendingCount = 0
    @exclusivity(unchecked) private var failedHandshakes: [FailedHandshake] = []
    /// 0-RTT datagrams that arrived before their connection's Initial (reordering), by DCID:
    /// at most 256 in all, kept for one second.
    @exclusivity(unchecked) private var earlyDatagrams: [ConnectionID: [(bytes: [UInt8], source: SocketAddress, local: SocketAddress?, ecn: ECNCodepoint, arrived: Instant)]] = [:]
    @exclusivity(unchecked) private var earlyDatagramCount = 0
    /// Connection IDs of connections handed over to another endpoint (``release(_:at:)``),
    /// with when to forget them: datagrams for them are dropped, not answered with a stateless
    /// reset that would kill the connection in its new home.
    @exclusivity(unchecked) private var releasedRoutes: [ConnectionID: Instant] = [:]

    /// The connections the endpoint operated on since ``takeActivity(into:)`` last ran, each
    /// once.
    @exclusivity(unchecked) private var activity: [QUICConnection] = []

    /// Creates an endpoint.
    public init(configuration: Configuration) {
        self.configuration = configuration
        connectionSettings = SharedConfiguration(configuration.connection)
        tokens = AddressTokenSealer(secret: configuration.tokenSecret, clock: configuration.clock, random: configuration.connection.random)
        connectionIDLength = configuration.connection.localConnectionIDLength
        budget = configuration.connectionBudget ?? ConnectionBudget(limit: configuration.maxConnections)
    }

    /// The connections alive (handshaking, established, closing or draining).
    public var connectionCount: Int { entries.count }

    /// The connections whose handshake is in progress.
    public var pendingConnectionCount: Int { pendingCount }

    /// The oldest connection that closed before its handshake completed and was not yet
    /// reported, for logging; `nil` when there is none. Up to ``failedHandshakeQueueLimit``
    /// wait; every one is counted in ``Statistics/handshakesFailed``.
    public func nextFailedHandshake() -> FailedHandshake? {
        failedHandshakes.isEmpty ? nil : failedHandshakes.removeFirst()
    }

    /// The next connection whose handshake completed, once each.
    public func accept() -> QUICConnection? {
        acceptQueue.isEmpty ? nil : acceptQueue.removeFirst()
    }

    // MARK: - Input

    /// Processes a datagram from `remote` that came to our address `local` — pass it when the
    /// endpoint receives on several addresses, such as the preferred ones
    /// (``QUICConfiguration/preferredAddresses``): replies leave from where the datagram came
    /// (``OutgoingDatagram/source``). A connection's packets are decrypted where they lie
    /// (``QUICConnection/receive(_:from:to:ecn:at:)``): pass a datagram nothing else holds.
    public func receive(_ datagram: consuming [UInt8], from remote: SocketAddress, to local: SocketAddress? = nil,
                        ecn: ECNCodepoint = .notECT, at now: Instant) {
        var datagram = datagram
        receive(&datagram, from: remote, to: local, ecn: ecn, at: now)
    }

    /// Processes a datagram from `remote` (to our address `local`, see
    /// ``receive(_:from:to:ecn:at:)``) held in a buffer the caller reuses: a connection's
    /// packets are decrypted in it (afterwards its contents are unspecified), and the endpoint
    /// keeps a copy only of what it must hold (early 0-RTT datagrams).
    public func receive(_ datagram: inout [UInt8], from remote: SocketAddress, to local: SocketAddress? = nil,
                        ecn: ECNCodepoint = .notECT, at now: Instant) {
        guard let header = try? PacketHeader.parse(datagram, shortHeaderConnectionIDLength: connectionIDLength) else {
            statistics.datagramsDropped += 1
            return
        }
        // nil: a DCID longer than 20 bytes (an unsupported version's), which routes nowhere.
        let route = header.routingConnectionID
        if let route, let connection = routes[route] {
            listAsActivity(connection)
            // Its header is not parsed again.
            connection.receive(&datagram, firstHeader: header, from: remote, to: local, ecn: ecn, at: now)
            synchronizeWithAccess(connection)
            return
        }
        if let route, let until = releasedRoutes[route] {
            if until > now { return drop() }
            releasedRoutes[route] = nil
        }
        switch header {
        case .unsupportedVersion:
            // RFC 9000 §6.1: only for datagrams that could be a client's first (≥ 1200 bytes).
            guard datagram.count >= 1200, let vn = VersionNegotiationPacket.response(to: header, supportedVersions: supportedVersions)
            else { return drop() }
            let unused = configuration.connection.random.bytes(1)[0] & 0x7f
            enqueueStateless(vn.encoded(unusedBits: unused), to: remote, from: local)
            statistics.versionNegotiationsSent += 1
        case .long(let long) where long.type == .initial:
            acceptInitial(datagram, header: long, from: remote, to: local, ecn: ecn, at: now)
        case .long(let long) where long.type == .zeroRTT:
            bufferEarly(datagram, header: long, from: remote, to: local, ecn: ecn, at: now)
        case .short(let short):
            sendStatelessReset(for: short.destinationConnectionID, triggeredBy: datagram.count, to: remote, from: local)
        default:
            drop()
        }
    }

    private var supportedVersions: [QUICVersion] { configuration.connection.supportedVersions.filter(\.isSupported) }

    private func drop() { statistics.datagramsDropped += 1 }

    /// Runs `body` on `connection`, listing it in ``activity``.
    private func access<Result>(_ connection: QUICConnection, _ body: (QUICConnection) -> Result) -> Result {
        listAsActivity(connection)
        return body(connection)
    }

    private func listAsActivity(_ connection: QUICConnection) {
        if !connection.isListedAsActivity {
            connection.isListedAsActivity = true
            activity.append(connection)
        }
    }

    /// Moves into `connections` (which the caller passes empty) the connections the endpoint
    /// operated on since the last call, each once: it received or sent packets for them, fired
    /// their timers, or synchronized with them after a command (``connectionDidChange(_:at:)``).
    /// Their events (``QUICConnection/nextEvent()``) and state may have changed — including
    /// connections that closed and that the endpoint forgot.
    ///
    /// The endpoint never calls out: a caller that keeps its own state per connection (the
    /// listener does: what the application has not read yet, and who waits for it) takes it
    /// in from this list after each call into the endpoint. Call it regularly even without such
    /// state: the list holds each connection (closed ones too) until taken. Swapping arrays
    /// keeps both allocations in use.
    public func takeActivity(into connections: inout [QUICConnection]) {
        swap(&connections, &activity)
        for connection in connections { connection.isListedAsActivity = false }
    }

    private func acceptInitial(_ datagram: [UInt8], header: LongHeader, from remote: SocketAddress, to local: SocketAddress?,
                               ecn: ECNCodepoint, at now: Instant) {
        // RFC 9000 §14.1: a client's first datagram has at least 1200 bytes.
        guard datagram.count >= 1200, supportedVersions.contains(header.version) else {
            statistics.initialsDropped += 1
            return
        }
        guard budget.hasRoom else { return refuse(header, from: remote, to: local) }
        var validated = false
        var original: ConnectionID?
        var retrySource: ConnectionID?
        if !header.token.isEmpty {
            switch tokens.open(header.token, from: remote, version: header.version, retryLifetime: configuration.retryTokenLifetime,
                               newTokenLifetime: configuration.newTokenLifetime) {
            case .retry(let odcid, let rscid)?:
                guard rscid == header.destinationConnectionID else {
                    statistics.initialsDropped += 1
                    return
                }
                validated = true
                original = odcid
                retrySource = rscid
            case .newToken?:
                validated = true
            case nil:
                break  // treated as no token (RFC 9000 §8.1.3)
            }
        }
        if !validated, shouldRetry {
            let scid = configuration.connection.makeConnectionID()
            let token = tokens.retryToken(for: remote, version: header.version, originalDestinationConnectionID: header.destinationConnectionID,
                                          retrySourceConnectionID: scid)
            let retry = RetryPacket.make(version: header.version, destinationConnectionID: header.sourceConnectionID,
                                         sourceConnectionID: scid, token: token,
                                         originalDestinationConnectionID: header.destinationConnectionID.bytes)
            enqueueStateless(retry, to: remote, from: local)
            statistics.retriesSent += 1
            return
        }
        guard pendingCount < configuration.maxPendingConnections else {
            statistics.initialsDropped += 1
            return
        }
        guard budget.take() else { return refuse(header, from: remote, to: local) }  // another loop took the last place
        guard let connection = try? QUICConnection(
            server: connectionSettings, datagram: datagram, remoteAddress: remote, localAddress: local, ecn: ecn,
            originalDestinationConnectionID: original, retrySourceConnectionID: retrySource,
            addressValidated: validated, now: now)
        else {
            budget.giveBack()
            statistics.initialsDropped += 1
            return
        }
        statistics.connectionsCreated += 1
        pendingCount += 1
        // The client keeps using its chosen DCID until it hears from us.
        entries[ObjectIdentifier(connection)] = Entry(connection: connection, initialRoute: header.destinationConnectionID)
        if let early = earlyDatagrams.removeValue(forKey: header.destinationConnectionID) {
            earlyDatagramCount -= early.count
            access(connection) { connection in
                for item in early where item.source == remote && item.local == local {
                    connection.receive(item.bytes, from: item.source, to: item.local, ecn: item.ecn, at: now)
                }
            }
        }
        synchronize(connection, now: now)
    }

    /// Answers a client's Initial at the connection limit with a refusal, keeping no state.
    private func refuse(_ header: LongHeader, from remote: SocketAddress, to local: SocketAddress?) {
        enqueueStateless(Self.refusal(answering: header, sourceConnectionID: configuration.connection.makeConnectionID()), to: remote, from: local)
        statistics.connectionsRefused += 1
    }

    /// An Initial packet that refuses the connection a client's Initial (`header`) asked for:
    /// CONNECTION_CLOSE with CONNECTION_REFUSED (RFC 9000 §5.2.2), protected with the Initial
    /// keys the client's Destination Connection ID derives (RFC 9001 §5.2), addressed to the
    /// client's Source Connection ID. Much smaller than the 1200-byte Initial it answers, so
    /// it amplifies nothing.
    static func refusal(answering header: LongHeader, sourceConnectionID: ConnectionID) -> [UInt8] {
        let keys = PacketKey.initial(version: header.version, destinationConnectionID: header.destinationConnectionID.bytes)
        var payload = ByteWriter()
        Frame.connectionClose(.transport(.connectionRefused, reason: "server at its connection limit")).encode(into: &payload)
        let reply = LongHeader(type: .initial, version: header.version, destinationConnectionID: header.sourceConnectionID,
                               sourceConnectionID: sourceConnectionID)
        var writer = ByteWriter()
        let packetNumberOffset = reply.encode(into: &writer, packetNumber: 0, packetNumberLength: 1,
                                              payloadLength: payload.bytes.count + AEADKey.tagLength)
        writer.writeBytes(payload.bytes)
        var packet = writer.bytes
        keys.server.protect(&packet, packetNumberOffset: packetNumberOffset, packetNumber: 0)
        return packet
    }

    /// Keeps a 0-RTT datagram that overtook its Initial (RFC 9001 §4.6.1 allows servers to
    /// buffer them), within a small global budget.
    private func bufferEarly(_ datagram: [UInt8], header: LongHeader, from remote: SocketAddress, to local: SocketAddress?,
                             ecn: ECNCodepoint, at now: Instant) {
        let key = header.destinationConnectionID
        for (id, items) in earlyDatagrams {
            let kept = items.filter { now - $0.arrived < .seconds(1) }
            earlyDatagramCount -= items.count - kept.count
            earlyDatagrams[id] = kept.isEmpty ? nil : kept
        }
        guard earlyDatagramCount < 256, earlyDatagrams[key, default: []].count < 16 else { return drop() }
        earlyDatagrams[key, default: []].append((datagram, remote, local, ecn, now))
        earlyDatagramCount += 1
    }

    private var shouldRetry: Bool {
        switch configuration.retryPolicy {
        case .never: false
        case .always: true
        case .whenPendingExceeds(let limit): pendingCount >= limit
        }
    }

    /// RFC 9000 §10.3: a short-header packet for no connection gets a stateless reset, smaller
    /// than the packet (so two endpoints cannot loop) and at least 21 bytes.
    private func sendStatelessReset(for id: ConnectionID, triggeredBy size: Int, to remote: SocketAddress, from local: SocketAddress?) {
        guard size > 21, id.count > 0 else { return drop() }
        let token = StatelessReset.token(key: configuration.connection.statelessResetKey, connectionID: id.bytes)
        let length = min(size - 1, 43)
        enqueueStateless(StatelessReset.packet(token: token, length: length, random: configuration.connection.random), to: remote, from: local)
        statistics.statelessResetsSent += 1
    }

    private func enqueueStateless(_ bytes: [UInt8], to remote: SocketAddress, from local: SocketAddress?) {
        guard statelessQueue.count < 256 else { return drop() }
        statelessQueue.append(OutgoingDatagram(bytes: bytes, destination: remote, source: local))
    }

    // MARK: - Bookkeeping

    /// Updates routes, the pending count, the accept queue and NEW_TOKEN after a connection
    /// changed; forgets it once closed.
    private func synchronize(_ connection: QUICConnection, now: Instant) {
        guard entries[ObjectIdentifier(connection)] != nil else { return }
        access(connection) { synchronizeWithAccess($0) }
    }

    /// The capacities of the connection and routing tables (for tests).
    var tableCapacities: (entries: Int, routes: Int) { (entries.capacity, routes.capacity) }

    /// A dictionary keeps its capacity when entries go: after a flood has ended, the tables are
    /// copied into ones sized for what is left, so their memory is given back too.
    private func shrinkTablesIfSparse() {
        if entries.capacity > 256, entries.count * 8 < entries.capacity {
            entries = Dictionary(uniqueKeysWithValues: entries.map { ($0.key, $0.value) })
        }
        if routes.capacity > 1024, routes.count * 8 < routes.capacity {
            routes = Dictionary(uniqueKeysWithValues: routes.map { ($0.key, $0.value) })
        }
    }

    /// ``synchronize(_:now:)`` for a caller already inside ``access(_:_:)``.
    private func synchronizeWithAccess(_ connection: QUICConnection) {
        let key = ObjectIdentifier(connection)
        guard var entry = entries[key] else { return }
        if connection.state == .closed {
            for route in entry.routes where routes[route] === connection { routes[route] = nil }
            if entry.isPending {
                pendingCount -= 1
                recordFailedHandshake(connection)
            }
            entries[key] = nil  // its timer and active-queue entries are skipped from now on
            budget.giveBack()
            shrinkTablesIfSparse()
            return
        }
        if entry.isPending, connection.state != .handshaking {
            entry.isPending = false
            pendingCount -= 1
            // Closing or draining before the handshake completed: it failed.
            if connection.state != .established { recordFailedHandshake(connection) }
        }
        // Our connection IDs route here, and during the handshake also the client's chosen
        // DCID, which it uses until it hears from us.
        if !entry.hasRoutes(for: connection) {
            var desired = connection.localConnectionIDs
            if entry.isPending { desired.append(entry.initialRoute) }
            for route in entry.routes where !desired.contains(route) && routes[route] === connection { routes[route] = nil }
            for route in desired { routes[route] = connection }
            entry.routes = desired
        }
        if connection.state == .established, !entry.accepted {
            entry.accepted = true
            acceptQueue.append(connection)
        }
        if configuration.issueNewTokens, connection.isHandshakeConfirmed, !entry.tokenSent {
            entry.tokenSent = true
            connection.sendNewToken(tokens.newToken(for: connection.remoteAddress, version: connection.version))
        }
        let deadline = connection.nextDeadline
        if deadline != entry.deadline {
            entry.deadline = deadline
            if let deadline { timers.push(Timer(deadline: deadline, key: key)) }
        }
        if !entry.isActive {
            entry.isActive = true
            active.append(connection)
        }
        entries[key] = entry
        // Only now: compaction keeps the entries that match the *stored* deadlines, and before
        // the line above this connection's was still the old one — its new timer would go.
        if timers.count > 64 + 4 * entries.count { compactTimers() }
    }

    /// Whether every connection's remembered deadline has its entry in the timer heap: the
    /// invariant the heap's lazy deletion relies on (a connection without one is never timed
    /// out again). For tests.
    var isEveryDeadlineScheduled: Bool {
        let scheduled = timers.unorderedElements
        return entries.allSatisfy { key, entry in
            entry.deadline.map { deadline in scheduled.contains { $0.key == key && $0.deadline == deadline } } ?? true
        }
    }

    /// Drops timer entries that no longer match their connection's deadline.
    private func compactTimers() {
        timers.filter { entries[$0.key]?.deadline == $0.deadline }
    }

    // MARK: - Output and timers

    /// The next datagram to send: stateless answers first, then the active connections in
    /// turn (a connection that sends stays in the rotation; one with nothing to send leaves it
    /// until something happens to it). ``transmit(at:into:)`` does the same without
    /// allocating per datagram.
    public func transmit(at now: Instant) -> OutgoingDatagram? {
        var train = DatagramTrain(maxDatagrams: 1)
        transmit(at: now, into: &train)
        guard let destination = train.destination else { return nil }
        return OutgoingDatagram(bytes: train.bytes, destination: destination, source: train.source, ecn: train.ecn)
    }

    /// Fills the empty `train` with the next datagrams to send, for one destination:
    /// a stateless answer first, one per train; otherwise what the next connection in turn
    /// has, as many datagrams as the train holds (one GSO train for the caller). Rotation is
    /// as in ``transmit(at:)``, a train per turn. Leaves the train empty when nothing is left
    /// to send.
    public func transmit(at now: Instant, into train: inout DatagramTrain) {
        precondition(train.isEmpty, "a train is filled from empty")
        if !statelessQueue.isEmpty { return train.append(statelessQueue.removeFirst()) }
        while activeHead < active.count {
            let connection = active[activeHead]
            activeHead += 1
            let key = ObjectIdentifier(connection)
            guard entries[key] != nil else { continue }  // closed and forgotten
            access(connection) { connection in
                let exhausted = !connection.transmit(at: now, into: &train)
                entries.withValue(forKey: key) { $0.isActive = false }
                synchronizeWithAccess(connection)  // re-queues it (at the back) while it is alive
                if exhausted, entries[key]?.isActive == true {
                    entries.withValue(forKey: key) { $0.isActive = false }  // nothing more to send: idle until touched again
                    active.removeLast()
                }
            }
            if activeHead > 1024, activeHead * 2 > active.count {
                active.removeFirst(activeHead)
                activeHead = 0
            }
            if !train.isEmpty { return }
        }
        active.removeAll(keepingCapacity: true)
        activeHead = 0
    }

    /// The earliest deadline of any connection (the top of the timer heap).
    public var nextDeadline: Instant? {
        while let top = timers.first {
            if entries[top.key]?.deadline == top.deadline { return top.deadline }
            timers.popFirst()  // stale: the connection's deadline moved or it is gone
        }
        return nil
    }

    /// Fires the timers due at `now` and forgets closed connections.
    public func handleTimeout(at now: Instant) {
        var due: [ObjectIdentifier] = []
        while let top = timers.first, top.deadline <= now {
            timers.popFirst()
            if entries[top.key]?.deadline == top.deadline { due.append(top.key) }
        }
        for key in due {
            guard let connection = entries[key]?.connection else { continue }
            access(connection) { connection in
                if let deadline = connection.nextDeadline, deadline <= now { connection.handleTimeout(at: now) }
                entries.withValue(forKey: key) { $0.deadline = nil }  // its entry was popped: record the new deadline
                synchronizeWithAccess(connection)
            }
        }
    }

    private func recordFailedHandshake(_ connection: QUICConnection) {
        statistics.handshakesFailed += 1
        if failedHandshakes.count < Self.failedHandshakeQueueLimit, let info = connection.closeInfo {
            failedHandshakes.append(FailedHandshake(remote: connection.remoteAddress, closeInfo: info,
                                                    originalDestinationConnectionID: connection.originalDestinationConnectionID))
        }
    }

    /// Hands `connection` over to another endpoint (in practice: a forked child process that
    /// continues it on its own socket). The endpoint forgets it without closing it; datagrams
    /// that still arrive for its connection IDs are dropped silently for one idle timeout rather
    /// than answered with a stateless reset. Returns `false` for a connection it does not hold.
    ///
    /// Connection IDs the new home issues later are unknown here: a peer that migrates to an
    /// address whose packets reach this endpoint would get a stateless reset, unless the caller
    /// routes them to the new home before they reach ``receive(_:from:to:ecn:at:)`` (the listener's
    /// fork hand-off does, see ``hasConnection(for:)``), or the server announces
    /// `disable_active_migration`.
    @discardableResult
    public func release(_ connection: QUICConnection, at now: Instant) -> Bool {
        let key = ObjectIdentifier(connection)
        guard let entry = entries.removeValue(forKey: key) else { return false }
        budget.giveBack()
        if entry.isPending { pendingCount -= 1 }
        acceptQueue.removeAll { $0 === connection }
        if connection.isListedAsActivity {
            activity.removeAll { $0 === connection }
            connection.isListedAsActivity = false
        }
        let until = now + configuration.connection.idleTimeout
        if releasedRoutes.count >= 4096 { releasedRoutes = releasedRoutes.filter { $0.value > now } }
        for route in entry.routes + connection.localConnectionIDs {
            if routes[route] === connection { routes[route] = nil }
            if releasedRoutes.count < 4096 { releasedRoutes[route] = until }
        }
        return true  // its timer and active-queue entries are skipped from now on
    }

    /// Whether a datagram whose Destination Connection ID is `id` reaches one of this
    /// endpoint's connections: for a caller that routes some connection IDs elsewhere and must
    /// not let the endpoint answer theirs with a stateless reset.
    public func hasConnection(for id: ConnectionID) -> Bool { routes[id] != nil }

    /// Call after the application issued commands on a connection (writes, close…), so that
    /// the endpoint notices state changes (closing) promptly.
    public func connectionDidChange(_ connection: QUICConnection, at now: Instant) {
        synchronize(connection, now: now)
    }
}
