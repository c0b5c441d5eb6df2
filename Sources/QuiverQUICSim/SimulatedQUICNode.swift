public import QuiverCore
public import QuiverNetSim
public import QuiverQUIC

/// What an application does with a connection's events, after every input the node feeds it.
public protocol ConnectionApp: AnyObject {
    /// Takes the connection's events and issues commands (reads, writes, …).
    func pump(_ connection: QUICConnection)
}

/// A ``QUICConnection`` attached to a ``NetworkSimulator``, driven exactly as an endpoint
/// drives one: deliver, pump the application, transmit until nothing is left, fire timers.
/// A server node creates its connection from the first datagram it accepts.
public final class SimulatedQUICNode: SimulatedNode {
    /// The node's current address: datagrams leave from it.
    public private(set) var address: SocketAddress
    private var previousAddresses: [SocketAddress] = []
    /// More addresses the node receives at, as a server receives at its preferred addresses
    /// (RFC 9000 §9.6). With any, the connection is told which address each datagram came to
    /// (``localAddress(of:)``) and its datagrams leave from the address it chose.
    public var extraAddresses: [SocketAddress] = []
    /// The connection, once there is one.
    public private(set) var connection: QUICConnection?
    /// The application.
    public let app: any ConnectionApp
    private let makeServer: ((SimulatedQUICNode, SimulatedDatagram, Instant) -> QUICConnection?)?
    /// Datagrams to send before the connection's (a stub server's Retry or Version Negotiation).
    public var outbox: [SimulatedDatagram] = []
    /// Called with every datagram delivered to the node, before the connection sees it.
    public var onReceive: ((SimulatedDatagram) -> Void)?
    /// Replaces each datagram delivered to the node before the connection sees it (`nil` drops
    /// it): a misbehaving peer stack or middlebox, for tests.
    public var rewrite: ((SimulatedDatagram) -> SimulatedDatagram?)?

    /// A client node around an existing connection.
    public init(client connection: QUICConnection, address: SocketAddress, app: any ConnectionApp) {
        self.connection = connection
        self.address = address
        self.app = app
        self.makeServer = nil
    }

    /// A server node; `make` returns the connection for a datagram (or `nil` to ignore it,
    /// possibly after queueing a reply in ``outbox``).
    public init(serverAt address: SocketAddress, app: any ConnectionApp,
                make: @escaping (SimulatedQUICNode, SimulatedDatagram, Instant) -> QUICConnection?) {
        self.address = address
        self.app = app
        self.makeServer = make
    }

    /// Moves to a new address, as after a NAT rebinding: later datagrams leave from it, and
    /// datagrams to the old one are still delivered.
    public func rebind(to newAddress: SocketAddress) {
        previousAddresses.append(address)
        address = newAddress
    }

    public var addresses: [SocketAddress] { [address] + previousAddresses + extraAddresses }

    /// The address of ours `datagram` came to, for the connection: `nil` for a node with one
    /// address (the connection need not know it then).
    public func localAddress(of datagram: SimulatedDatagram) -> SocketAddress? {
        extraAddresses.isEmpty ? nil : datagram.destination
    }

    public func receive(_ datagram: SimulatedDatagram, at now: Instant) {
        var datagram = datagram
        if let rewrite {
            guard let rewritten = rewrite(datagram) else { return }
            datagram = rewritten
        }
        onReceive?(datagram)
        if let connection {
            connection.receive(datagram.bytes, from: datagram.source, to: localAddress(of: datagram), ecn: datagram.ecn, at: now)
        } else if let makeServer, let created = makeServer(self, datagram, now) {
            connection = created
        }
        if let connection { app.pump(connection) }
    }

    public func nextTransmit(at now: Instant) -> SimulatedDatagram? {
        if !outbox.isEmpty { return outbox.removeFirst() }
        guard let connection, let out = connection.transmit(at: now) else { return nil }
        return SimulatedDatagram(bytes: out.bytes, source: out.source ?? address, destination: out.destination, ecn: out.ecn)
    }

    public var nextDeadline: Instant? { connection?.nextDeadline }

    public func handleTimeout(at now: Instant) {
        guard let connection else { return }
        connection.handleTimeout(at: now)
        app.pump(connection)
    }
}
