public import QuiverCore

/// One server of a QUIC-LB deployment (draft-ietf-quic-load-balancers): the configuration
/// that the load balancer and every server behind it share, and this server's ID in it. The
/// balancer routes a packet to the server whose ID its Destination Connection ID carries.
///
/// A server that runs several workers behind one address — event loops, prefork processes, in
/// a SO_REUSEPORT steering group — keeps the balancer's view: the server ID names the host,
/// and the worker id, two octets, opens the nonce, which QUIC-LB leaves to the server. The
/// connection ID is then the first octet, the server ID, the worker id and at least four
/// random octets (the draft's minimum nonce), and the steering program reads the worker id at
/// ``workerIDOffset`` of the connection ID. That needs plaintext IDs: encrypted ones hide the
/// worker id from the kernel, so a configuration with a key serves one worker per server ID.
public struct QUICLBServer: Sendable, Hashable {
    /// The configuration shared with the balancer and the other servers.
    public let configuration: QUICLBConfiguration
    /// This server's ID (``QUICLBConfiguration/serverIDLength`` octets).
    public let serverID: [UInt8]

    /// - Throws: ``QUICLBConfigurationError`` when `serverID` is not of the configured length.
    public init(configuration: QUICLBConfiguration, serverID: [UInt8]) throws(QUICLBConfigurationError) {
        guard serverID.count == configuration.serverIDLength else {
            throw QUICLBConfigurationError(
                description: "the QUIC-LB server ID has \(configuration.serverIDLength) octet(s) in this configuration, not \(serverID.count)")
        }
        self.configuration = configuration
        self.serverID = serverID
    }

    /// Where the worker id starts in a connection ID: after the first octet and the server ID.
    public var workerIDOffset: Int { 1 + configuration.serverIDLength }

    /// Octets of a worker id at the start of the nonce.
    public static let workerIDLength = 2

    /// Why this server cannot run `workers` workers (event loops or prefork processes) under
    /// one address, or `nil` when it can: several need plaintext IDs whose nonce holds the
    /// worker id and still four random octets.
    public func refusal(workers: Int) -> QUICLBConfigurationError? {
        guard workers > 1 else { return nil }
        if configuration.key != nil {
            return QUICLBConfigurationError(
                description: "a QUIC-LB configuration with a key encrypts the connection IDs, so nothing can steer them to one of \(workers) workers: serve one worker (event loop) per server ID")
        }
        if configuration.nonceLength < Self.workerIDLength + 4 {
            return QUICLBConfigurationError(
                description: "\(workers) workers need a QUIC-LB nonce of at least \(Self.workerIDLength + 4) octets (the worker id and 4 random ones), not \(configuration.nonceLength)")
        }
        return nil
    }

    /// A generator for ``QUICConfiguration/connectionIDGenerator``: this server's IDs, with
    /// `worker` opening the nonce when given (see ``refusal(workers:)``: plaintext only).
    /// - Precondition: no `worker` with a key, or with a nonce under 6 octets.
    public func generator(worker: UInt16? = nil, random: RandomSource = .system) -> @Sendable () -> ConnectionID {
        let ids = QUICLBConnectionIDs(configuration)
        guard let worker else { return ids.generator(serverID: serverID, random: random) }
        precondition(refusal(workers: 2) == nil, "a worker id needs a plaintext QUIC-LB configuration with a nonce of 6 octets or more")
        let prefix = [UInt8(worker >> 8), UInt8(worker & 0xff)]
        let serverID = serverID, randomLength = configuration.nonceLength - Self.workerIDLength
        return {
            let bits = random.bytes(1)[0]
            return ids.connectionID(serverID: serverID, nonce: prefix + random.bytes(randomLength), randomBits: bits)
        }
    }
}
