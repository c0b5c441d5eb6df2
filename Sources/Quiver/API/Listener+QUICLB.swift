import QuiverQUIC

extension Listener {
    /// This server's place in a QUIC-LB deployment (draft-ietf-quic-load-balancers §5.3): the
    /// configuration that the load balancer and every server behind it share, and the server ID
    /// of this one. Every connection ID the listener issues is the first octet (the config
    /// rotation codepoint), the server ID and a nonce, encrypted when there is a key; the
    /// balancer routes each packet by the server ID its Destination Connection ID carries, so
    /// a connection stays with its host when the client's address changes.
    ///
    /// With several event loops the loop's worker id, two octets, opens the nonce, which
    /// QUIC-LB leaves to the server, and the listener's steering group reads it there, after
    /// the server ID: the balancer sees only the server ID. That needs plaintext connection IDs
    /// (a key hides the worker id from the kernel) and a nonce of at least 6 octets (the worker
    /// id and 4 random ones); a listener refuses other combinations.
    public struct QUICLB: Sendable, Hashable {
        let server: QUICLBServer

        /// - Parameters:
        ///   - configID: the config rotation codepoint, 0–6.
        ///   - serverID: this server's ID, 1 octet or more.
        ///   - nonceLength: octets of nonce, 4 or more; server ID and nonce at most 19 together.
        ///   - key: a 16-octet AES-128 key, or `nil` for plaintext server IDs (which any
        ///     observer can read, and which simple balancers such as nftables match on).
        ///   - encodesLength: whether the first octet's low 5 bits give the length of the rest.
        /// - Throws: `QuiverError` `.configuration`, one line, for lengths or a key the draft
        ///   does not allow.
        public init(configID: UInt8, serverID: [UInt8], nonceLength: Int, key: [UInt8]? = nil, encodesLength: Bool = true) throws(QuiverError) {
            do {
                let configuration = try QUICLBConfiguration(configID: configID, serverIDLength: serverID.count, nonceLength: nonceLength, key: key,
                                                            encodesLength: encodesLength)
                server = try QUICLBServer(configuration: configuration, serverID: serverID)
            } catch {
                throw QuiverError(.configuration, error.description)
            }
        }

        /// The config rotation codepoint.
        public var configID: UInt8 { server.configuration.configID }
        /// This server's ID.
        public var serverID: [UInt8] { server.serverID }
        /// Octets of nonce.
        public var nonceLength: Int { server.configuration.nonceLength }
        /// Whether the connection IDs are encrypted.
        public var isEncrypted: Bool { server.configuration.key != nil }
        /// The length of the connection IDs.
        public var connectionIDLength: Int { server.configuration.connectionIDLength }
        /// Where the worker id of a loop starts in a connection ID (after the first octet and the
        /// server ID): the `workerIDOffset` of a `UDPSocket.steeringGroup` made for a listener
        /// with several loops, or for prefork workers (``Options/workerID``).
        public var workerIDOffset: Int { server.workerIDOffset }

        /// Why a listener with `workers` event loops (or prefork workers) cannot use this
        /// configuration, in one line, or `nil` when it can.
        public func refusal(workers: Int) -> String? { server.refusal(workers: workers)?.description }
    }
}
