public import QuiverCore
public import QuiverNetSim
public import QuiverQUIC

/// A ``QUICEndpoint`` (a QUIC server) on the simulated network. Each connection gets its own
/// application from `makeApp`, pumped after every input, as a listener would.
public final class SimulatedEndpointNode: SimulatedNode {
    /// The endpoint; replace it to simulate a server restart (same address, fresh state).
    public var endpoint: QUICEndpoint
    public let address: SocketAddress
    private let makeApp: () -> any ConnectionApp
    private var apps: [ObjectIdentifier: (connection: QUICConnection, app: any ConnectionApp)] = [:]
    /// Connections accepted so far (handshake completed), in order.
    public private(set) var accepted: [QUICConnection] = []
    /// The endpoint's activity list, taken after each input (every app is pumped anyway).
    private var activity: [QUICConnection] = []

    public init(endpoint: QUICEndpoint, address: SocketAddress, makeApp: @escaping () -> any ConnectionApp) {
        self.endpoint = endpoint
        self.address = address
        self.makeApp = makeApp
    }

    public var addresses: [SocketAddress] { [address] }

    public func receive(_ datagram: SimulatedDatagram, at now: Instant) {
        endpoint.receive(datagram.bytes, from: datagram.source, ecn: datagram.ecn, at: now)
        pumpAll(now)
    }

    public func nextTransmit(at now: Instant) -> SimulatedDatagram? {
        guard let out = endpoint.transmit(at: now) else { return nil }
        return SimulatedDatagram(bytes: out.bytes, source: address, destination: out.destination, ecn: out.ecn)
    }

    public var nextDeadline: Instant? { endpoint.nextDeadline }

    public func handleTimeout(at now: Instant) {
        endpoint.handleTimeout(at: now)
        pumpAll(now)
    }

    private func pumpAll(_ now: Instant) {
        while let connection = endpoint.accept() {
            accepted.append(connection)
            apps[ObjectIdentifier(connection)] = (connection, makeApp())
        }
        for (key, entry) in apps {
            entry.app.pump(entry.connection)
            endpoint.connectionDidChange(entry.connection, at: now)
            if entry.connection.state == .closed { apps[key] = nil }
        }
        endpoint.takeActivity(into: &activity)
        activity.removeAll(keepingCapacity: true)
    }
}
