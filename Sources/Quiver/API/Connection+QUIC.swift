import QuiverCore

extension Connection {
    /// The QUIC-only features of this connection — DATAGRAMs (RFC 9221), the version,
    /// resumption, 0-RTT, key updates; `nil` on TLS.
    ///
    /// ```swift
    /// if let quic = connection.quic {
    ///     try quic.sendDatagram(Array("ping".utf8))
    ///     print("\(quic.version), resumed: \(quic.isResumed)")
    /// }
    /// ```
    public var quic: QUIC? { session.quic.map { QUIC(connection: self, session: $0) } }

    /// A view of a QUIC ``Connection`` for the features TLS does not have (``Connection/quic``).
    /// It keeps the connection alive; its calls are safe from any thread, as the connection's.
    public struct QUIC: Sendable {
        /// The connection this is a view of.
        public let connection: Connection
        let session: QUICSession

        // MARK: - Streams

        /// Makes every stream an ordinary one, for protocols that have no default stream
        /// (HTTP/3, hq-interop): a server's peer-opened stream 0 is offered to
        /// ``Connection/acceptStream()-pn1a`` like the others (at once, if it has arrived already),
        /// a client opens all its streams with ``Connection/openStream(bidirectional:)-23t6a``, and
        /// the default stream's calls (``Connection/read(maxBytes:)-1wftc``, ``Connection/write(_:)-f5w0``,
        /// ``Connection/defaultStream`` …) throw `.configuration`. A server that waits for
        /// requests this way needs no task parked on a stream the client may never open. Call
        /// it before using the default stream.
        /// - Throws: `.configuration` on a client whose default stream is in use already.
        public func disableDefaultStream() throws(QuiverError) {
            try session.once { () throws(QuiverError) in try session.disableDefaultStreamLocked() }
        }

        // MARK: - Datagrams (RFC 9221)

        /// Sends an unreliable datagram. The peer must have announced DATAGRAM support (a
        /// listener's ``Listener/Options/maxDatagramFrameSize``), and it must fit one packet.
        /// - Throws: `.closed` once the connection ended, `.protocolViolation` when the peer
        ///   does not take datagrams or this one is too large.
        public func sendDatagram(_ bytes: [UInt8]) throws(QuiverError) {
            try session.once { () throws(QuiverError) in try session.sendDatagramLocked(bytes) }
        }

        /// The next datagram received; waits for one. Throws `.closed` when the connection ends.
        public func receiveDatagram() throws(QuiverError) -> [UInt8] {
            try session.blocking(wake: .events) { () throws(QuiverError) in try session.nextDatagramLocked() }
        }

        /// The next datagram received, or `nil` (would block).
        public func tryReceiveDatagram() -> [UInt8]? {
            session.monitor.withLock { session.receiveDatagramLocked() }
        }

        // MARK: - Version, resumption, 0-RTT, key update

        /// The QUIC version in use (after compatible version negotiation, RFC 9368).
        public var version: QUICVersion { session.version }

        /// Client: the newest ticket the server issued for resuming a later connection (and
        /// sending 0-RTT data there); pass it as ``ClientOptions/resumption``. `nil` until one
        /// arrives (after the handshake).
        public var resumptionTicket: ResumptionTicket? {
            session.monitor.withLock { session.resumptionTicketLocked.map(ResumptionTicket.init) }
        }

        /// Whether the handshake resumed an earlier session (a PSK from a ticket).
        public var isResumed: Bool { session.isResumed }

        /// Whether 0-RTT data was accepted — a client's by the server, or on a server the
        /// client's; `nil` until decided, or when none was offered. A client's refused data is
        /// sent again after the handshake: nothing is lost.
        public var earlyDataAccepted: Bool? { session.isEarlyDataAccepted }

        /// Explicit Congestion Notification so far (RFC 9000 §13.4): whether the path proved
        /// ECN-capable (the peer's acknowledgments counted the ECT(0) marks on our packets),
        /// how many packets were marked, and the marks our peer's datagrams arrived with. Marks
        /// need an attachment that carries them: a UDP socket where the kernel allows
        /// (`UDPSocket.supportsECN`), or a ``DatagramPair`` whose application passes them on.
        public var ecn: ECNStatistics { session.ecnStatistics }

        /// How often the peer's packets came from a new address — a NAT rebinding, a
        /// migration — and the connection moved to that path (RFC 9000 §9.3; a server follows,
        /// a client only sees its own rebindings as nothing).
        public var peerMigrations: Int { session.pathStatistics.migrations }

        /// New paths the peer proved by answering our PATH_CHALLENGE (RFC 9000 §8.2).
        public var pathsValidated: Int { session.pathStatistics.validated }

        /// The largest datagram the connection sends now, in bytes: what path MTU discovery
        /// proved on the current path (1200 until a probe passes; 1452 on Ethernet, 16 383 on
        /// loopback), within ``Listener/Options/maxDatagramSize`` and the peer's
        /// max_udp_payload_size.
        public var datagramSize: Int { session.datagramSize }

        /// Client: moves the connection to a new local address, as a device does when it changes
        /// networks (active migration, RFC 9000 §9.2): its datagrams leave from a new UDP
        /// socket, bound to `local` or, by default, to a new port, and the old socket is
        /// closed. The connection uses a new connection ID there, checks the new path with
        /// PATH_CHALLENGE, and the server follows (``pathsValidated`` counts the path proved).
        ///
        /// - Parameter local: The address to bind (its port 0 for any), e.g. another
        ///   interface's; `nil` for a new port on the same one, like a NAT rebinding would give.
        /// - Returns: The new socket's local address.
        /// - Throws: `.configuration` when the protocol does not allow a move now — before the
        ///   handshake is confirmed, after the server's disable_active_migration, without a
        ///   spare connection ID of the server's (a moment after a move, it sends new ones) —
        ///   and for a server's connection or one not on its own UDP socket (the connection is
        ///   then unchanged); `.io` when the socket cannot be bound; `.closed` once it ended.
        public func migrate(to local: SocketAddress? = nil) throws(QuiverError) -> SocketAddress {
            try session.once { () throws(QuiverError) in try session.migrateLocked(to: local) }
        }

        /// Times this client moved to a new local address (``migrate(to:)``).
        public var localMigrations: Int { session.localMigrations }

        /// Moves to the server's preferred address (RFC 9000 §9.6,
        /// ``Listener/Options/preferredAddresses``). A client moves once the handshake is
        /// confirmed (``ClientOptions/followsPreferredAddress``) and counts the move when the
        /// server answered its PATH_CHALLENGE there; a server counts it when it starts sending
        /// from there, once the client answered its own challenge from there.
        public var preferredAddressMigrations: Int { session.preferredAddressMigrations }

        /// The server's address the connection uses now: for a client, where it sends (the
        /// preferred address after a move); for a server, its own address on the connection's
        /// path (`nil` when the listener has one address and did not say).
        public var serverAddress: SocketAddress? { session.serverAddress }

        /// Starts a key update (RFC 9001 §6). Returns `false` when one cannot start yet: before
        /// the handshake is confirmed or while the previous update is unacknowledged.
        /// - Throws: `.closed` once the connection ended.
        public func updateKeys() throws(QuiverError) -> Bool {
            try session.once { () throws(QuiverError) in try session.updateKeysLocked() }
        }
    }
}
