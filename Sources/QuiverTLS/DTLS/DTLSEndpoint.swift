public import QuiverCore

/// A DTLS 1.2 server's many peers on one socket, with no I/O — what a listener's I/O loop
/// drives, as it drives a `QUICEndpoint`: datagrams in with their source address, datagrams
/// out with their destination, one timer, handshakes that completed to accept.
///
/// Contract: ``receive(_:from:at:)`` every datagram; send every datagram of
/// ``takeDatagrams()``; call ``handleTimeout(at:)`` at ``nextDeadline``; ``accept()``
/// connections whose handshake completed and use them (their reads, writes and close);
/// ``release(_:at:)`` a connection the application is done with.
///
/// Routing is by the peer's address and port (DTLS 1.2 without Connection IDs). A datagram from
/// an address without a connection goes through the ``DTLSCookieGate``: nothing is kept until
/// the client returns a valid cookie (a ClientHello flood leaves memory flat). A ClientHello
/// with a valid cookie and a new random from the address of an established connection — the
/// client restarted on the same port — replaces that connection (RFC 6347 §4.2.8: only after the
/// new client proved its address); the connection's own ClientHello arriving again (a late
/// retransmission) does not. Bounds: ``Configuration/maxPendingConnections`` handshakes in progress and
/// ``Configuration/maxConnections`` in all — a client beyond them is refused with a fatal
/// `internal_error` alert in epoch 0, keeping nothing, so it fails at once rather than at its
/// timeout (its cookie proved its address: the reply amplifies nothing); a handshake not
/// done within ``Configuration/handshakeTimeout`` is abandoned. ``nextDeadline`` and
/// ``handleTimeout(at:)`` scan the handshakes in progress only: an established server connection
/// has no timer (its final flight is repeated only when the peer repeats its own). Not
/// thread-safe.
public final class DTLSEndpoint {
    /// What the endpoint needs.
    public struct Configuration: Sendable {
        /// The TLS settings of every connection (certificates, suites, ALPN, tickets…).
        public var tls: TLSConfiguration
        /// The cookie check in front of the connections (share its secret between processes
        /// serving one port).
        public var gate = DTLSCookieGate()
        /// Handshakes in progress at most; ClientHellos beyond are dropped.
        public var maxPendingConnections = 1024
        /// Connections at most (in progress and established).
        public var maxConnections = 10_000
        /// A count shared with other endpoints (a listener's event loops), each connection
        /// taking a place in it while it lives; `nil`: only ``maxConnections`` bounds.
        public var connectionBudget: ConnectionBudget?
        /// A handshake must complete within this, or it is abandoned.
        public var handshakeTimeout: Duration = .seconds(10)
        /// The largest datagram sent (each connection's ``DTLSConnection/mtu``).
        public var mtu = 1200

        /// A configuration serving with `tls`.
        public init(tls: TLSConfiguration) { self.tls = tls }
    }

    /// Counters.
    public struct Statistics: Sendable, Equatable {
        public var helloVerifyRequestsSent = 0
        public var connectionsCreated = 0
        public var connectionsRefused = 0
        public var handshakesFailed = 0
        public var datagramsDropped = 0
        public var connectionsReplaced = 0
    }

    /// A handshake that failed, for the listener's log.
    public struct FailedHandshake: Sendable {
        public var peer: SocketAddress
        public var error: TLSError
    }

    private struct Entry {
        let connection: DTLSConnection
        let handshakeDeadline: Instant
        /// The random of the ClientHello that started the association: a copy of that
        /// ClientHello arriving late (a retransmission) is not a new handshake.
        let clientRandom: ArraySlice<UInt8>?
        var accepted = false
    }

    public let configuration: Configuration
    public private(set) var statistics = Statistics()
    private var entries: [SocketAddress: Entry] = [:]
    /// The peers whose handshake is in progress.
    private var handshaking: Set<SocketAddress> = []
    private var acceptable: [SocketAddress] = []
    private var failed: [FailedHandshake] = []
    private var outgoing: [(SocketAddress, [UInt8])] = []

    /// An endpoint with `configuration`.
    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// Connections held: in progress and established.
    public var connectionCount: Int { entries.count }
    /// Handshakes in progress.
    public var pendingConnectionCount: Int { handshaking.count }

    /// The connection with `peer`, if any.
    public func connection(for peer: SocketAddress) -> DTLSConnection? { entries[peer]?.connection }

    /// The next connection whose handshake completed, with its peer's address.
    public func accept() -> (peer: SocketAddress, connection: DTLSConnection)? {
        while !acceptable.isEmpty {
            let peer = acceptable.removeFirst()
            if let entry = entries[peer], entry.connection.isHandshakeComplete { return (peer, entry.connection) }
        }
        return nil
    }

    /// The next failed handshake (at most 64 are kept).
    public func nextFailedHandshake() -> FailedHandshake? { failed.isEmpty ? nil : failed.removeFirst() }

    /// Datagrams to send, with their destinations; empties the queue.
    public func takeDatagrams() -> [(SocketAddress, [UInt8])] {
        defer { outgoing = [] }
        return outgoing
    }

    /// Feeds one datagram from `peer`.
    public func receive(_ datagram: [UInt8], from peer: SocketAddress, at now: Instant) {
        if let entry = entries[peer] {
            if entry.connection.isHandshakeComplete, Self.startsHandshake(datagram),
               Self.clientRandom(datagram) != entry.clientRandom {
                // A new ClientHello (another random) on an established association: the client
                // restarted. The same ClientHello again is a late retransmission of this
                // association's, which the connection ignores.
                admit(datagram, from: peer, at: now, replacing: true)
                return
            }
            deliver(datagram, to: peer, at: now)
            return
        }
        admit(datagram, from: peer, at: now, replacing: false)
    }

    /// When ``handleTimeout(at:)`` must next run.
    public var nextDeadline: Instant? {
        var earliest: Instant?
        for peer in handshaking {
            guard let entry = entries[peer] else { continue }
            for deadline in [entry.connection.nextTimeout, entry.handshakeDeadline].compactMap({ $0 }) {
                if earliest.map({ deadline < $0 }) ?? true { earliest = deadline }
            }
        }
        return earliest
    }

    /// Retransmits flights that are due and abandons handshakes past their deadline.
    public func handleTimeout(at now: Instant) {
        for peer in handshaking {
            guard let entry = entries[peer] else { continue }
            if !entry.connection.isHandshakeComplete, !(now < entry.handshakeDeadline) {
                fail(peer, TLSError.timedOut("DTLS handshake not done within \(configuration.handshakeTimeout)"))
                continue
            }
            do {
                try entry.connection.handleTimeout(now: now)
            } catch {
                if !entry.connection.isHandshakeComplete { fail(peer, error) }
            }
            collect(peer)
        }
    }

    /// Forgets the connection with `peer` (the application closed it, or it failed): its
    /// last datagrams (close_notify) are queued first.
    public func release(_ peer: SocketAddress) {
        guard let entry = entries.removeValue(forKey: peer) else { return }
        handshaking.remove(peer)
        configuration.connectionBudget?.giveBack()
        for datagram in entry.connection.takeDatagrams() { outgoing.append((peer, datagram)) }
    }

    // MARK: Internals

    /// Whether `datagram` starts with a ClientHello at epoch 0.
    static func startsHandshake(_ datagram: [UInt8]) -> Bool {
        let h = DTLSConnection.headerLength
        return datagram.count >= h + 12 && datagram[0] == 22 && datagram[3] == 0 && datagram[4] == 0
            && datagram[h] == HandshakeType.clientHello.rawValue
    }

    /// The random of the ClientHello whose whole first fragment starts `datagram`, if it is one.
    static func clientRandom(_ datagram: [UInt8]) -> ArraySlice<UInt8>? {
        let body = DTLSConnection.headerLength + 12
        guard startsHandshake(datagram), datagram.count >= body + 34 else { return nil }
        return datagram[(body + 2)..<(body + 34)]
    }

    private func admit(_ datagram: [UInt8], from peer: SocketAddress, at now: Instant, replacing: Bool) {
        switch configuration.gate.check(datagram, from: peer) {
        case .drop:
            statistics.datagramsDropped += 1
        case .helloVerifyRequest(let reply):
            statistics.helloVerifyRequestsSent += 1
            outgoing.append((peer, reply))
        case .accept:
            if replacing {
                statistics.connectionsReplaced += 1
                release(peer)
            }
            guard handshaking.count < configuration.maxPendingConnections, entries.count < configuration.maxConnections,
                  configuration.connectionBudget?.take() ?? true
            else {
                statistics.connectionsRefused += 1
                outgoing.append((peer, Self.refusal(answering: datagram)))
                return
            }
            let connection = DTLSConnection(server: configuration.tls)
            connection.mtu = configuration.mtu
            entries[peer] = Entry(connection: connection, handshakeDeadline: now + configuration.handshakeTimeout,
                                  clientRandom: Self.clientRandom(datagram))
            handshaking.insert(peer)
            statistics.connectionsCreated += 1
            deliver(datagram, to: peer, at: now)
        }
    }

    /// A fatal `internal_error` alert in epoch 0 answering a ClientHello refused at a limit,
    /// with the ClientHello's record sequence number (as a HelloVerifyRequest has, RFC 6347
    /// §4.2.1): TLS has no "server busy" alert, and internal_error is the one "unrelated to the
    /// peer or the correctness of the protocol" (RFC 5246 §7.2.2).
    static func refusal(answering datagram: [UInt8]) -> [UInt8] {
        [21, 0xFE, 0xFD] + datagram[3..<11] + [0, 2, 2, AlertDescription.internalError.rawValue]
    }

    private func deliver(_ datagram: [UInt8], to peer: SocketAddress, at now: Instant) {
        guard let entry = entries[peer] else { return }
        do {
            try entry.connection.receive(datagram, now: now)
        } catch {
            if !entry.connection.isHandshakeComplete {
                fail(peer, error)
                return
            }
            // An established connection's failure is for its application to read.
        }
        collect(peer)
    }

    /// Moves the connection's datagrams out, and queues it for accept once its handshake completed.
    private func collect(_ peer: SocketAddress) {
        guard var entry = entries[peer] else { return }
        for datagram in entry.connection.takeDatagrams() { outgoing.append((peer, datagram)) }
        if !entry.accepted && entry.connection.isHandshakeComplete {
            entry.accepted = true
            entries[peer] = entry
            handshaking.remove(peer)
            acceptable.append(peer)
        }
    }

    private func fail(_ peer: SocketAddress, _ error: TLSError) {
        statistics.handshakesFailed += 1
        if failed.count < 64 { failed.append(FailedHandshake(peer: peer, error: error)) }
        release(peer)
    }
}
