public import QuiverCore

/// A DTLS server's many peers on one socket (DTLS 1.2 and 1.3), with no I/O — what a listener's I/O loop
/// drives, as it drives a `QUICEndpoint`: datagrams in with their source address, datagrams
/// out with their destination, one timer, handshakes that completed to accept.
///
/// Contract: ``receive(_:from:at:)`` every datagram; send every datagram of
/// ``takeDatagrams()``; call ``handleTimeout(at:)`` at ``nextDeadline``; ``accept()``
/// connections whose handshake completed and use them (their reads, writes and close);
/// ``release(_:at:)`` a connection the application is done with.
///
/// Routing is by the peer's address and port (no Connection IDs). A datagram from an address
/// without a connection goes through the ``DTLSCookieGate``: nothing is kept until the client
/// returns a valid cookie (a ClientHello flood leaves memory flat) — except the fragments of a
/// ClientHello too large for one datagram (BoringSSL's with a post-quantum key share at a small
/// MTU), reassembled for the gate in a table of ``maxPartialClientHellos`` of at most 16 KiB
/// each, the oldest evicted, each dropped after a second. A ClientHello
/// with a valid cookie and a new random from the address of an established connection — the
/// client restarted on the same port — replaces that connection (RFC 6347 §4.2.8: only after the
/// new client proved its address); the connection's own ClientHello arriving again (a late
/// retransmission) does not. Bounds: ``Configuration/maxPendingConnections`` handshakes in progress and
/// ``Configuration/maxConnections`` in all — a client beyond them is refused with a fatal
/// `internal_error` alert in epoch 0, keeping nothing, so it fails at once rather than at its
/// timeout (its cookie proved its address: the reply amplifies nothing); a handshake not
/// done within ``Configuration/handshakeTimeout`` is abandoned. ``nextDeadline`` and
/// ``handleTimeout(at:)`` scan the handshakes in progress and the established connections
/// retransmitting (a DTLS 1.3 KeyUpdate of ours until it is ACKed); a DTLS 1.2 connection's
/// final flight is repeated only when the peer repeats its own. Not thread-safe.
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
        /// The length of the Connection IDs given to clients that offer them (RFC 9146, RFC
        /// 9147 §9): their protected records carry it, so a client whose address changes (NAT
        /// rebinding) keeps its connection. 0: none given.
        public var connectionIDLength = 8
        /// Put this worker id in bytes 1–2 of every Connection ID (at least 4 bytes long), so
        /// that the program of a DTLS `UDPSocket.steeringGroup` sends the connection's records
        /// to this worker's socket wherever the client's address moves — prefork servers and
        /// a listener's event loops. `nil`: random IDs.
        public var workerID: UInt16?

        /// A configuration serving with `tls`.
        public init(tls: TLSConfiguration) { self.tls = tls }
    }

    /// Counters.
    public struct Statistics: Sendable, Equatable {
        public var helloVerifyRequestsSent = 0
        /// DTLS 1.3's stateless cookie exchange (RFC 9147 §5.1).
        public var helloRetryRequestsSent = 0
        public var connectionsCreated = 0
        public var connectionsRefused = 0
        public var handshakesFailed = 0
        public var datagramsDropped = 0
        public var connectionsReplaced = 0
        /// Connections that followed their client to a new address (by Connection ID).
        public var peersMigrated = 0
    }

    /// A handshake that failed, for the listener's log.
    public struct FailedHandshake: Sendable {
        public var peer: SocketAddress
        public var error: TLSError

        public init(peer: SocketAddress, error: TLSError) {
            self.peer = peer
            self.error = error
        }
    }

    private struct Entry {
        let connection: DTLSConnection
        let handshakeDeadline: Instant
        /// The random of the ClientHello that started the association: a copy of that
        /// ClientHello arriving late (a retransmission) is not a new handshake.
        let clientRandom: ArraySlice<UInt8>?
        /// The Connection ID we gave it (`nil`: none).
        let connectionID: [UInt8]?
        var accepted = false
    }

    public let configuration: Configuration
    public private(set) var statistics = Statistics()
    private var entries: [SocketAddress: Entry] = [:]
    /// The peers whose handshake is in progress.
    private var handshaking: Set<SocketAddress> = []
    /// Established connections with a retransmission timer.
    private var retransmitting: Set<SocketAddress> = []
    /// The connections by the Connection ID we gave them.
    private var connectionIDs: [[UInt8]: SocketAddress] = [:]
    /// Connections that moved to another address, for ``nextMigration()``.
    private var migrations: [(from: SocketAddress, to: SocketAddress)] = []
    /// ClientHellos arriving in fragments, by peer (bounded; see the type's notes).
    private var partialHellos: [SocketAddress: PartialClientHello] = [:]
    /// Fragmented ClientHellos reassembled at most at once.
    public static let maxPartialClientHellos = 256

    private struct PartialClientHello {
        var message: MessageReassembly
        var messageSeq: UInt16
        var recordSequence: UInt64
        let deadline: Instant
    }
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
        if let cid = Self.connectionID(in: datagram, length: configuration.connectionIDLength), let owner = connectionIDs[cid], owner != peer {
            // A record with one of our Connection IDs from another address: its connection
            // reads it, and follows the peer there once it authenticated a record newer than
            // all before (RFC 9146 §6) — unless another association holds that address.
            guard let entry = entries[owner] else { return }
            deliver(datagram, to: owner, at: now, collecting: false)
            if entry.connection.receivedNewestRecord, entries[peer] == nil {
                migrate(from: owner, to: peer)
                collect(peer)
            } else {
                collect(owner)
            }
            return
        }
        if let entry = entries[peer] {
            guard entry.connection.isHandshakeComplete, Self.startsHandshake(datagram) else {
                deliver(datagram, to: peer, at: now)
                return
            }
            // A ClientHello on an established association: the client restarted, or a late
            // copy of the association's own (see `admit`).
            admit(datagram, from: peer, at: now, replacing: entry)
            return
        }
        admit(datagram, from: peer, at: now, replacing: nil)
    }

    /// When ``handleTimeout(at:)`` must next run.
    public var nextDeadline: Instant? {
        var earliest: Instant?
        for peer in handshaking.union(retransmitting) {
            guard let entry = entries[peer] else { continue }
            for deadline in [entry.connection.nextTimeout, entry.handshakeDeadline].compactMap({ $0 }) {
                if earliest.map({ deadline < $0 }) ?? true { earliest = deadline }
            }
        }
        return earliest
    }

    /// Retransmits flights that are due and abandons handshakes past their deadline.
    public func handleTimeout(at now: Instant) {
        partialHellos = partialHellos.filter { now < $0.value.deadline }
        for peer in handshaking.union(retransmitting) {
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
        if let cid = entry.connectionID { connectionIDs[cid] = nil }
        handshaking.remove(peer)
        retransmitting.remove(peer)
        configuration.connectionBudget?.giveBack()
        for datagram in entry.connection.takeDatagrams() { outgoing.append((peer, datagram)) }
    }

    /// Takes note of a change in `peer`'s connection made outside the endpoint (a write that
    /// started a DTLS 1.3 KeyUpdate): its retransmission timer joins ``nextDeadline``.
    public func updateTimer(for peer: SocketAddress) {
        guard let entry = entries[peer], entry.accepted else { return }
        if entry.connection.isRetransmittingAfterHandshake {
            retransmitting.insert(peer)
        } else {
            retransmitting.remove(peer)
        }
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

    private func admit(_ datagram: [UInt8], from peer: SocketAddress, at now: Instant, replacing: Entry?) {
        var datagram = datagram
        if let fragment = ClientHelloFragment(datagram), !fragment.isWhole {
            guard let whole = reassemble(fragment, from: peer, at: now) else { return }
            datagram = whole
        }
        if let replacing, Self.clientRandom(datagram) == replacing.clientRandom {
            // The ClientHello that started this association, again (a late retransmission):
            // the connection ignores it. Only another random is a new handshake.
            deliver(datagram, to: peer, at: now)
            return
        }
        switch configuration.gate.check(datagram, from: peer, tls: configuration.tls) {
        case .drop:
            statistics.datagramsDropped += 1
        case .helloVerifyRequest(let reply):
            statistics.helloVerifyRequestsSent += 1
            outgoing.append((peer, reply))
        case .helloRetryRequest(let reply):
            statistics.helloRetryRequestsSent += 1
            outgoing.append((peer, reply))
        case .refuse(let reply):
            statistics.connectionsRefused += 1
            outgoing.append((peer, reply))
        case .accept(let retry):
            if replacing != nil {
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
            let connection = retry.map { DTLSConnection(server: configuration.tls, after: $0) } ?? DTLSConnection(server: configuration.tls)
            connection.mtu = configuration.mtu
            var cid: [UInt8]?
            if configuration.connectionIDLength > 0 {
                repeat {
                    cid = RandomSource.system.bytes(configuration.connectionIDLength)
                    if let worker = configuration.workerID, configuration.connectionIDLength >= 4 {
                        cid![1] = UInt8(worker >> 8)
                        cid![2] = UInt8(truncatingIfNeeded: worker)
                    }
                } while connectionIDs[cid!] != nil
                connectionIDs[cid!] = peer
                connection.localConnectionID = cid
            }
            entries[peer] = Entry(connection: connection, handshakeDeadline: now + configuration.handshakeTimeout,
                                  clientRandom: Self.clientRandom(datagram), connectionID: cid)
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
        DTLSCookieGate.alert(.internalError, recordSequence: datagram[5..<11].reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
    }

    /// Adds a ClientHello fragment from `peer`; once the message is whole, a datagram holding it
    /// in one record (with the last fragment's record sequence number), as the gate reads it.
    private func reassemble(_ fragment: ClientHelloFragment, from peer: SocketAddress, at now: Instant) -> [UInt8]? {
        if var partial = partialHellos[peer], partial.messageSeq == fragment.messageSeq, partial.message.length == fragment.length {
            partial.message.add(offset: fragment.offset, fragment.bytes)
            partial.recordSequence = fragment.recordSequence
            partialHellos[peer] = partial
        } else {
            if partialHellos[peer] == nil, partialHellos.count >= Self.maxPartialClientHellos,
               let oldest = partialHellos.min(by: { $0.value.deadline < $1.value.deadline })?.key {
                partialHellos[oldest] = nil
            }
            var message = MessageReassembly(type: HandshakeType.clientHello.rawValue, length: fragment.length, epoch: 0)
            message.add(offset: fragment.offset, fragment.bytes)
            partialHellos[peer] = PartialClientHello(message: message, messageSeq: fragment.messageSeq, recordSequence: fragment.recordSequence,
                                                     deadline: now + .seconds(1))
        }
        guard let partial = partialHellos[peer], partial.message.isComplete else { return nil }
        partialHellos[peer] = nil
        return DTLSCookieGate.handshakeRecord(HandshakeMessage(type: .clientHello, body: partial.message.body).encoded,
                                              messageSeq: partial.messageSeq, recordSequence: partial.recordSequence)
    }

    private func deliver(_ datagram: [UInt8], to peer: SocketAddress, at now: Instant, collecting: Bool = true) {
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
        if collecting { collect(peer) }
    }

    /// The Connection ID (of `length` bytes) in the first record of `datagram`, if it has one:
    /// a DTLS 1.2 `tls12_cid` record (RFC 9146 §4) or a DTLS 1.3 unified header with C set.
    static func connectionID(in datagram: [UInt8], length: Int) -> [UInt8]? {
        guard length > 0, let first = datagram.first else { return nil }
        if first == 25, datagram.count >= DTLSConnection.headerLength + length { return Array(datagram[11..<(11 + length)]) }
        if first & 0xF0 == 0x30, datagram.count > 1 + length { return Array(datagram[1..<(1 + length)]) }
        return nil
    }

    /// The next connection that moved to its client's new address (by Connection ID), for
    /// whoever keeps its own table by address (a listener's sessions).
    public func nextMigration() -> (from: SocketAddress, to: SocketAddress)? {
        migrations.isEmpty ? nil : migrations.removeFirst()
    }

    private func migrate(from old: SocketAddress, to new: SocketAddress) {
        guard let entry = entries.removeValue(forKey: old) else { return }
        entries[new] = entry
        if handshaking.remove(old) != nil { handshaking.insert(new) }
        if retransmitting.remove(old) != nil { retransmitting.insert(new) }
        acceptable = acceptable.map { $0 == old ? new : $0 }
        if let cid = entry.connectionID { connectionIDs[cid] = new }
        if migrations.count >= 1024 { migrations.removeFirst() }  // nobody reads them: keep the newest
        migrations.append((old, new))
        statistics.peersMigrated += 1
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
        if entry.connection.isRetransmittingAfterHandshake {
            retransmitting.insert(peer)
        } else {
            retransmitting.remove(peer)
        }
    }

    private func fail(_ peer: SocketAddress, _ error: TLSError) {
        statistics.handshakesFailed += 1
        if failed.count < 64 { failed.append(FailedHandshake(peer: peer, error: error)) }
        release(peer)
    }
}
