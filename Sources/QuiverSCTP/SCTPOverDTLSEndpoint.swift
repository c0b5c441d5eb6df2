public import QuiverCore
public import QuiverTLS

/// SCTP over DTLS (RFC 8261) for many peers on one socket, sans-I/O: a `DTLSEndpoint` admits
/// DTLS clients (stateless cookies, bounded handshakes) and each DTLS connection carries an
/// ``SCTPOverDTLS`` with its own SCTP endpoint — or, for a client, one DTLS connection to a
/// server. Its associations are handed out as ``SCTPEndpoint``'s are
/// (``SCTPDatagramEndpoint``), so a driver runs either the same way.
///
/// **Lifetimes.** A DTLS connection that set up no association within
/// ``idleDTLSTimeout`` of its handshake is closed, and so is one whose associations all
/// ended (its `close_notify` goes out). A DTLS connection that fails or that the peer closes
/// takes its associations with it (closed locally, ``SCTPCloseReason/carrierClosed(_:)``:
/// nothing carries an ABORT any more); so
/// does a client restarting on the same address (the DTLS endpoint replaces the connection).
/// DTLS Connection IDs are not offered: SCTP over DTLS follows no address change.
public final class SCTPOverDTLSEndpoint: SCTPDatagramEndpoint {
    private struct Carrier {
        let stack: SCTPOverDTLS
        /// Until the first association: after it, a carrier without one is done.
        var idleDeadline: Instant?
        var hadAssociation = false
    }

    private let server: DTLSEndpoint?
    private var carriers: [SocketAddress: Carrier] = [:]
    /// Peers in turn for sending.
    private var order: [SocketAddress] = []
    private var turn = 0
    private var accepted: [SCTPAssociation] = []
    private var active: [ObjectIdentifier: SCTPAssociation] = [:]
    private var outgoing: [(bytes: [UInt8], to: SocketAddress)] = []
    private let sctpConfiguration: SCTPEndpoint.Configuration
    private var retiredStatistics = SCTPEndpoint.Statistics()
    /// DTLS handshakes that failed, for the driver's log.
    private var failures: [DTLSEndpoint.FailedHandshake] = []

    /// How long a DTLS connection may carry no association after its handshake.
    public var idleDTLSTimeout: Duration = .seconds(10)

    /// A server: DTLS clients admitted by `dtls` (its Connection IDs are turned off), SCTP
    /// associations as `sctp` says.
    public init(server dtls: DTLSEndpoint.Configuration, sctp: SCTPEndpoint.Configuration) {
        var dtls = dtls
        dtls.connectionIDLength = 0
        server = DTLSEndpoint(configuration: dtls)
        sctpConfiguration = sctp
    }

    /// A client: `dtls` (started) to the server at `peer`; ``connect(port:now:)`` starts the
    /// association.
    public init(client dtls: DTLSConnection, peer: SocketAddress, sctp: SCTPEndpoint.Configuration) {
        server = nil
        sctpConfiguration = sctp
        carriers[peer] = Carrier(stack: SCTPOverDTLS(dtls: dtls, configuration: sctp, peer: peer))
        order = [peer]
    }

    /// A client's association with the server's SCTP `port` (its INIT waits for the DTLS
    /// handshake).
    public func connect(port: UInt16, now: Instant) -> SCTPAssociation? {
        guard server == nil, let peer = order.first, var carrier = carriers[peer] else { return nil }
        carrier.hadAssociation = true
        carriers[peer] = carrier
        return carrier.stack.connect(port: port, now: now)
    }

    /// The DTLS connection with `peer`, if any.
    public func dtlsConnection(for peer: SocketAddress) -> DTLSConnection? { carriers[peer]?.stack.dtls }

    /// The next failed DTLS handshake of a server.
    public func nextFailedHandshake() -> DTLSEndpoint.FailedHandshake? {
        if let failure = server?.nextFailedHandshake() { return failure }
        return failures.isEmpty ? nil : failures.removeFirst()
    }

    // MARK: SCTPDatagramEndpoint

    public func receive(_ datagram: [UInt8], from address: SocketAddress, now: Instant) {
        guard let server else {
            guard let carrier = carriers[address] else { return }
            do throws(TLSError) { try carrier.stack.receive(datagram, now: now) } catch {
                fail(address, error, now: now)
                return
            }
            collect(address)
            if carrier.stack.dtls.isPeerClosed { end(address, reason: "the peer closed DTLS", now: now, release: true) }
            return
        }
        server.receive(datagram, from: address, at: now)
        while let (peer, connection) = server.accept() {
            if let old = carriers[peer], old.stack.dtls !== connection {
                // The client restarted on this address: the old connection's associations end.
                end(peer, reason: "the DTLS client restarted", now: now, release: false)
            }
            if carriers[peer] == nil {
                carriers[peer] = Carrier(stack: SCTPOverDTLS(dtls: connection, configuration: sctpConfiguration, peer: peer),
                                         idleDeadline: now + idleDTLSTimeout)
                order.append(peer)
            }
        }
        for (peer, bytes) in server.takeDatagrams() { outgoing.append((bytes, peer)) }
        guard let carrier = carriers[address] else { return }
        if let error = carrier.stack.dtls.error {
            fail(address, error, now: now)
            return
        }
        carrier.stack.deliverRecords(now: now)
        collect(address)
        if carrier.stack.dtls.isPeerClosed { end(address, reason: "the peer closed DTLS", now: now, release: true) }
    }

    public func nextDatagram(now: Instant) -> (bytes: [UInt8], to: SocketAddress)? {
        if !outgoing.isEmpty { return outgoing.removeFirst() }
        var checked = 0
        while checked < order.count {
            if turn >= order.count { turn = 0 }
            let peer = order[turn]
            if let stack = carriers[peer]?.stack, let datagram = stack.nextDatagram(now: now) {
                turn += 1
                return (datagram, peer)
            }
            if retireIfDone(peer, now: now) { continue }
            turn += 1
            checked += 1
        }
        return outgoing.isEmpty ? nil : outgoing.removeFirst()
    }

    public var nextDeadline: Instant? {
        var earliest = server?.nextDeadline
        for carrier in carriers.values {
            for deadline in [carrier.stack.nextDeadline, carrier.idleDeadline].compactMap({ $0 }) where earliest.map({ deadline < $0 }) ?? true {
                earliest = deadline
            }
        }
        return earliest
    }

    public func handleTimeout(now: Instant) {
        if let server, let deadline = server.nextDeadline, deadline <= now {
            server.handleTimeout(at: now)
            for (peer, bytes) in server.takeDatagrams() { outgoing.append((bytes, peer)) }
        }
        for (peer, carrier) in carriers {
            if let idle = carrier.idleDeadline, idle <= now, carrier.stack.sctp.associationCount == 0 {
                end(peer, reason: "no SCTP association within \(idleDTLSTimeout)", now: now, release: true)
                continue
            }
            do throws(TLSError) {
                // A server's DTLS timers are its DTLS endpoint's; only SCTP's run here.
                if server == nil {
                    try carrier.stack.handleTimeout(now: now)
                } else if let deadline = carrier.stack.sctp.nextDeadline, deadline <= now {
                    carrier.stack.sctp.handleTimeout(now: now)
                }
            } catch {
                fail(peer, error, now: now)
                continue
            }
            collect(peer)
        }
    }

    public func accept() -> SCTPAssociation? { accepted.isEmpty ? nil : accepted.removeFirst() }

    public func takeActiveAssociations() -> [SCTPAssociation] {
        defer { active.removeAll(keepingCapacity: true) }
        return Array(active.values)
    }

    public var associationCount: Int { carriers.values.reduce(0) { $0 + $1.stack.sctp.associationCount } }

    public var statistics: SCTPEndpoint.Statistics {
        carriers.values.reduce(into: retiredStatistics) { $0.add($1.stack.sctp.statistics) }
    }

    /// DTLS connections held (handshakes in progress and established).
    public var dtlsConnectionCount: Int { server?.connectionCount ?? carriers.count }

    /// The DTLS endpoint's counters (a server's).
    public var dtlsStatistics: DTLSEndpoint.Statistics? { server?.statistics }

    // MARK: Internals

    /// Takes what a carrier's SCTP endpoint accepted and changed.
    private func collect(_ peer: SocketAddress) {
        guard var carrier = carriers[peer] else { return }
        while let association = carrier.stack.sctp.accept() {
            accepted.append(association)
            carrier.hadAssociation = true
            carrier.idleDeadline = nil
        }
        if carrier.stack.sctp.associationCount > 0, carrier.idleDeadline != nil {
            carrier.hadAssociation = true
            carrier.idleDeadline = nil
        }
        carriers[peer] = carrier
        for association in carrier.stack.sctp.takeActiveAssociations() { active[ObjectIdentifier(association)] = association }
    }

    /// A carrier whose associations all ended after it had one: its DTLS connection closes.
    private func retireIfDone(_ peer: SocketAddress, now: Instant) -> Bool {
        guard let carrier = carriers[peer], carrier.hadAssociation, carrier.stack.sctp.associationCount == 0 else { return false }
        end(peer, reason: "", now: now, release: true)
        return true
    }

    private func fail(_ peer: SocketAddress, _ error: TLSError, now: Instant) {
        if server == nil { failures.append(DTLSEndpoint.FailedHandshake(peer: peer, error: error)) }
        end(peer, reason: "DTLS: \(error)", now: now, release: true)
    }

    /// Ends the carrier of `peer`: its associations are closed locally (nothing carries their
    /// packets once DTLS closed), its DTLS connection closed and released.
    private func end(_ peer: SocketAddress, reason: String, now: Instant, release: Bool) {
        guard let carrier = carriers.removeValue(forKey: peer) else { return }
        if let index = order.firstIndex(of: peer) {
            order.remove(at: index)
            if turn > index { turn -= 1 }
        }
        let stack = carrier.stack
        if release {
            // Send the close_notify (a failed connection has none; a replaced one's would reach
            // the new client): the associations' last packets are dropped with DTLS closed.
            stack.dtls.close()
            for datagram in stack.dtls.takeDatagrams() { outgoing.append((datagram, peer)) }
        }
        for association in stack.sctp.associations where association.state != .closed {
            association.carrierClosed(reason.isEmpty ? "DTLS closed" : reason)
            active[ObjectIdentifier(association)] = association
        }
        retiredStatistics.add(stack.sctp.statistics)
        if release, let server {
            server.release(peer)
            for (peer, bytes) in server.takeDatagrams() { outgoing.append((bytes, peer)) }
        }
    }
}
