public import QuiverCore
import QuiverTLS
public import X509

/// One QUIC connection, client or server (RFC 9000, 9001, 9002), as a sans-I/O state machine.
///
/// The connection owns no socket, thread or clock. Its driver (an endpoint, a test, the
/// network simulator) feeds it datagrams with ``receive(_:from:to:ecn:at:)``, collects datagrams
/// to send with ``transmit(at:)`` until it returns `nil`, calls ``handleTimeout(at:)`` once
/// ``nextDeadline`` passes, and takes application events from ``nextEvent()``. Every input
/// carries the current time, which must never go backwards.
///
/// ```swift
/// let client = try QUICConnection(client: config, serverName: "example.com",
///                                 remoteAddress: server, now: now)
/// while let datagram = client.transmit(at: now) { socket.send(datagram) }
/// ```
///
/// Streams: ``openStream(_:)``, ``write(_:to:)``, ``finish(_:)``, ``read(from:maxBytes:)``,
/// ``reset(_:errorCode:)``, ``stopSending(_:errorCode:)``; the peer's streams are announced by
/// ``QUICConnectionEvent/streamOpened(_:)``.
///
/// Thread safety: none. A connection is driven by one thread (or serial executor) at a time;
/// the listener layer adds locking.
///
/// Its stored state is marked `@exclusivity(unchecked)`: with one owner at a time, the run-time
/// exclusivity checks on every property access (an access set kept in thread-local storage)
/// guard against nothing the compiler's static checks miss here, and they cost about a tenth of
/// the engine's CPU time per packet.
public final class QUICConnection {
    /// Our role.
    public let role: Role
    /// The configuration.
    public var configuration: QUICConfiguration { _read { yield settings.value } }
    /// The configuration, shared by every connection an endpoint makes (one copy, not one per
    /// connection).
    private let settings: SharedConfiguration
    /// Where the connection is in its life cycle.
    @exclusivity(unchecked) public internal(set) var state: QUICConnectionState = .handshaking
    /// The QUIC version in use (it may change once, by compatible version negotiation).
    @exclusivity(unchecked) public internal(set) var version: QUICVersion
    /// How the connection ended, once it has.
    @exclusivity(unchecked) public internal(set) var closeInfo: ConnectionCloseInfo?
    /// The peer's transport parameters, once received and validated.
    @exclusivity(unchecked) public internal(set) var peerTransportParameters: TransportParameters? {
        didSet { peerMaxUDPPayloadSize = Int(min(peerTransportParameters?.maxUDPPayloadSize ?? 65527, 65527)) }
    }
    /// The peer's max_udp_payload_size (65 527 until its parameters arrive), kept apart from
    /// ``peerTransportParameters`` because every datagram sent reads it (through
    /// ``datagramSizeCeiling``), and reading a field through the optional parameters copies
    /// them whole.
    @exclusivity(unchecked) private(set) var peerMaxUDPPayloadSize = 65527
    /// Whether the handshake is confirmed (RFC 9001 §4.1.2).
    @exclusivity(unchecked) public internal(set) var isHandshakeConfirmed = false
    /// Whether an endpoint listed this connection in its activity already
    /// (``QUICEndpoint/takeActivity(into:)``).
    @exclusivity(unchecked) var isListedAsActivity = false
    /// The peer's address on the current path.
    public var remoteAddress: SocketAddress { paths.current.remote }
    /// A server's: the address of ours the connection's current path uses — where the client's
    /// datagrams came to (``receive(_:from:to:ecn:at:)``), its preferred address once the
    /// client moved there; `nil` when not told, and for a client.
    public var localAddress: SocketAddress? { paths.current.local }
    /// Whether the current path's peer address is validated (RFC 9000 §8): by the handshake or
    /// a token, or — after the peer moved — by its PATH_RESPONSE. Until then the address may be
    /// a spoofed one (§9.3.1), and nothing but the connection's own replies should follow it.
    public var isPathValidated: Bool { paths.current.isValidated }

    /// The negotiated application protocol.
    public var alpn: String? { tls.negotiatedALPN }
    /// The server name the client asked for (SNI).
    public var serverName: String? { tls.serverName }
    /// The peer's certificate chain, leaf first (when it sent one).
    public var peerCertificates: [Certificate] { tls.peerCertificates }
    /// Whether the handshake resumed a session.
    public var isResumed: Bool { tls.isResumed }
    /// Whether 0-RTT data was accepted (`nil` when none was offered).
    public var isEarlyDataAccepted: Bool? { tls.earlyDataAccepted }
    /// The number of 1-RTT key updates so far (either side's).
    public var keyUpdateCount: Int { appKeys?.updates ?? 0 }
    /// Our connection IDs in use: datagrams addressed to any of them belong here.
    public var localConnectionIDs: [ConnectionID] { cids.local.map(\.id) }
    /// The smoothed RTT estimate.
    public var smoothedRTT: Duration { recovery.rtt.smoothedRTT }
    /// The congestion window in bytes.
    public var congestionWindow: Int { congestion.congestionWindow }
    /// Bytes sent and not yet acknowledged or declared lost.
    public var bytesInFlight: Int { recovery.bytesInFlight }
    /// Diagnostics: called with a one-line description of every packet sent and received
    /// (type, packet number, frames). `nil` (the default) costs nothing.
    @exclusivity(unchecked) public var traceHandler: ((String) -> Void)?

    /// Counters for tests and diagnostics.
    @exclusivity(unchecked) public internal(set) var statistics = Statistics()
    /// The qlog trace, when ``QUICConfiguration/qlog`` is set: each event site is one `nil`
    /// check of this.
    @exclusivity(unchecked) var qlog: QLogWriter?
    /// The latency spin bit of the current path.
    @exclusivity(unchecked) var spin: SpinBit

    /// What a connection has done so far.
    public struct Statistics: Sendable, Hashable {
        public var datagramsSent = 0
        public var datagramsReceived = 0
        public var bytesSent = 0
        public var bytesReceived = 0
        public var packetsSent = 0
        public var packetsReceived = 0
        /// Packets declared lost (RFC 9002 §6), path MTU probes apart.
        public var packetsLost = 0
        /// Path MTU probes declared lost: three per size a path does not carry (RFC 8899
        /// §5.1.2); on an Ethernet path, the jumbo-frame probes. Not congestion, nor counted
        /// in ``packetsLost``.
        public var mtuProbesLost = 0
        /// Packets dropped undecryptable, duplicated or for another connection.
        public var packetsDropped = 0
        public var ptoCount = 0
        /// Explicit Congestion Notification: the path's validation state, the packets marked
        /// and the marks received (RFC 9000 §13.4).
        public var ecn = ECNStatistics(state: .testing)
        /// Times the peer's packets came from a new address (a NAT rebinding, a migration) and
        /// the connection moved to that path (RFC 9000 §9.3).
        public var peerMigrations = 0
        /// New paths the peer proved by answering our PATH_CHALLENGE (RFC 9000 §8.2).
        public var pathsValidated = 0
        /// Times this client moved to a new local address
        /// (``QUICConnection/migrateLocalAddress(newAddress:)``, RFC 9000 §9.2).
        public var localMigrations = 0
        /// Moves to the server's preferred address (RFC 9000 §9.6). A client counts one once
        /// the server answered its PATH_CHALLENGE there (until then it may go back); a server
        /// counts one when it starts sending from there — after the client answered its own
        /// challenge from there (§9.6.2), or at once when the client arrived there from a new
        /// address too (§9.6.3, validated like any migration).
        public var preferredAddressMigrations = 0
    }

    // MARK: - Internal state

    let tls: TLSHandshake
    @exclusivity(unchecked) var spaces: [PacketSpaceState]
    @exclusivity(unchecked) var appKeys: ApplicationKeys?
    @exclusivity(unchecked) var appReadSecret: TrafficSecret?
    @exclusivity(unchecked) var appWriteSecret: TrafficSecret?
    /// Initial keys per version (a server keeps the client's original version's keys after
    /// switching by compatible version negotiation, RFC 9368 §6).
    @exclusivity(unchecked) var initialKeys: [QUICVersion: (read: PacketKey, write: PacketKey)] = [:]
    @exclusivity(unchecked) var recovery: LossDetection
    @exclusivity(unchecked) var congestion: Congestion
    @exclusivity(unchecked) var pacer: Pacer
    @exclusivity(unchecked) var streams: StreamManager
    @exclusivity(unchecked) var cids = ConnectionIDs()
    /// The paths: the current one, and those being checked or kept to return to (`Paths`).
    @exclusivity(unchecked) var paths: Paths
    /// 0-RTT's keys and what a client keeps while its early data may yet be refused.
    @exclusivity(unchecked) var early = EarlyData()
    /// The closing and draining periods (RFC 9000 §10.2).
    @exclusivity(unchecked) var closing = Closing()
    /// ECN validation of the current path (`QUICConnection+ECN`).
    @exclusivity(unchecked) var ecn: ECNValidation
    let localConnectionIDLength: Int
    let localParameters: TransportParameters

    /// The first Destination Connection ID the client chose (RFC 9000 §7.3).
    @exclusivity(unchecked) public internal(set) var originalDestinationConnectionID: ConnectionID
    /// The connection ID the Initial keys derive from: the original one, or the Retry's.
    @exclusivity(unchecked) var initialSecretConnectionID: ConnectionID
    /// The Source Connection ID of the peer's first Initial packet (checked against its
    /// initial_source_connection_id).
    @exclusivity(unchecked) var peerInitialSourceConnectionID: ConnectionID?
    /// The Retry's Source Connection ID, when the handshake went through a Retry.
    @exclusivity(unchecked) var retrySourceConnectionID: ConnectionID?
    /// Client: the token sent in Initial packets (from a Retry or NEW_TOKEN).
    @exclusivity(unchecked) var initialToken: [UInt8]
    /// The version of the client's first Initial.
    let originalVersion: QUICVersion
    @exclusivity(unchecked) var hasReceivedPacket = false
    @exclusivity(unchecked) var handshakeCompleteReported = false
    @exclusivity(unchecked) var handshakeDonePending = false
    @exclusivity(unchecked) var pendingNewToken: [UInt8]?
    @exclusivity(unchecked) var lastNewToken: [UInt8]?
    @exclusivity(unchecked) var pendingControl: [Frame] = []
    /// The datagram being processed: its source, the local address it came to, and its size.
    @exclusivity(unchecked) var currentDatagram: (source: SocketAddress, local: SocketAddress?, size: Int)?
    @exclusivity(unchecked) var pendingDatagrams: [[UInt8]] = []
    @exclusivity(unchecked) var readableNotified: Set<StreamID> = []
    @exclusivity(unchecked) var transportParameterError: QUICError?
    @OutOfLine var resumption: QUICResumptionTicket?
    /// Client: the server's transport parameters were received and validated.
    @exclusivity(unchecked) var serverParametersValidated = false

    @exclusivity(unchecked) var events: [QUICConnectionEvent] = []
    @exclusivity(unchecked) var queuedDatagramEvents = 0
    @exclusivity(unchecked) var eventIndex = 0
    @exclusivity(unchecked) var now: Instant

    /// Server: the CRYPTO bytes sent at the Initial level (the ServerHello), kept after they
    /// are acknowledged so that they can be repeated when the client's Initial CRYPTO data
    /// arrives again (RFC 9002 §6.2.3), and what is left of such a repeat to send.
    @exclusivity(unchecked) var initialCryptoSent: [UInt8] = []
    @exclusivity(unchecked) var initialCryptoRepeat: Range<Int>?
    @exclusivity(unchecked) var initialCryptoRepeats = 0

    @exclusivity(unchecked) var idleTimeout: Duration?
    @exclusivity(unchecked) var idleDeadlineBase: Instant
    @exclusivity(unchecked) var ackElicitingSentSinceReceive = false
    /// When we last sent an ack-eliciting packet (for keep-alive PINGs).
    @exclusivity(unchecked) var lastAckElicitingSent: Instant

    /// Whether the connection is closing and its CONNECTION_CLOSE has been written into a
    /// datagram (``transmit(at:into:)``), or it is draining or closed: nothing it still has to
    /// say is unsent, though it would repeat the close to a peer that keeps sending
    /// (RFC 9000 §10.2.1) until the closing period ends.
    package var isCloseSent: Bool {
        switch state {
        case .closing: closing.sendsPending == 0
        case .draining, .closed: true
        case .handshaking, .established: false
        }
    }
    @exclusivity(unchecked) var pacingDeadline: Instant?

    // MARK: - Creation

    /// Creates a client connection and queues its first Initial packet.
    ///
    /// - Parameters:
    ///   - configuration: settings; its TLS configuration must list ALPN protocols.
    ///   - serverName: the name for SNI and certificate verification.
    ///   - remoteAddress: the server's address.
    ///   - token: a NEW_TOKEN token from an earlier connection to this server, if any.
    ///   - resumption: a ticket from an earlier connection; with `attemptEarlyData`, streams
    ///     written before the handshake completes go out as 0-RTT. The connection starts in the
    ///     ticket's QUIC version if it is one of `configuration.supportedVersions`; a ticket of
    ///     another version is not used (RFC 9369 §5).
    ///   - now: the current time.
    /// - Throws: ``QUICError`` when TLS cannot start (for example no ALPN configured).
    public init(client configuration: QUICConfiguration, serverName: String?, remoteAddress: SocketAddress,
                token: [UInt8] = [], resumption: QUICResumptionTicket? = nil, attemptEarlyData: Bool = false,
                now: Instant) throws(QUICError) {
        // A ticket belongs to the version of the connection that issued it, which after
        // compatible version negotiation is the negotiated one (RFC 9369 §5): a client
        // resuming starts in that version when it supports it (so a v1 client upgraded to v2
        // resumes, and sends 0-RTT, in v2), and otherwise does not use the ticket at all.
        var resumption = resumption
        var startVersion = configuration.version
        if let ticketVersion = resumption?.version, ticketVersion != startVersion {
            if configuration.supportedVersions.contains(ticketVersion) { startVersion = ticketVersion } else { resumption = nil }
        }
        let attemptEarlyData = attemptEarlyData && resumption != nil
        role = .client
        settings = SharedConfiguration(configuration)
        self.now = now
        version = startVersion
        originalVersion = startVersion
        let localLength = configuration.localConnectionIDLength
        localConnectionIDLength = localLength
        let dcid = ConnectionID(unchecked: configuration.random.bytes(max(8, localLength)))
        originalDestinationConnectionID = dcid
        initialSecretConnectionID = dcid
        // A token that would not fit an Initial packet is ignored (no server issues those).
        initialToken = token.count <= 512 ? token : []
        self.resumption = resumption
        paths = Paths(current: Path(remote: remoteAddress, isValidated: true))
        spaces = PacketNumberSpace.allCases.map { PacketSpaceState(space: $0, maxAckDelay: configuration.maxAckDelay) }
        recovery = LossDetection(role: .client, configuration: .init(initialRTT: configuration.initialRTT))
        congestion = Congestion(algorithm: configuration.congestionAlgorithm, maxDatagramSize: configuration.initialDatagramSize)
        pacer = Pacer(maxDatagramSize: configuration.initialDatagramSize)
        ecn = ECNValidation(enabled: configuration.ecn)
        idleDeadlineBase = now
        lastAckElicitingSent = now

        let scid = configuration.makeConnectionID()
        cids.issueLocal(scid, resetKey: configuration.statelessResetKey, announce: false)
        cids.setInitialPeer(dcid)
        var parameters = configuration.baseTransportParameters
        parameters.initialSourceConnectionID = scid
        if configuration.supportedVersions.count > 1 || configuration.supportedVersions.first != startVersion {
            let available = [startVersion] + configuration.supportedVersions.filter { $0 != startVersion }
            parameters.versionInformation = .init(chosenVersion: startVersion.rawValue, availableVersions: available.map(\.rawValue))
        }
        localParameters = parameters
        spin = SpinBit(allowed: configuration.spinBit, random: configuration.random)
        // 0-RTT is limited by the parameters the server sent last time (RFC 9000 §7.4.1).
        let remembered = resumption?.transportParameters ?? TransportParameters()
        streams = StreamManager(role: .client, localParameters: parameters,
                                peerParameters: attemptEarlyData ? remembered : TransportParameters(),
                                configuration: configuration.streamWindows)
        tls = TLSHandshake(client: configuration.tls, serverName: serverName, quicTransportParameters: parameters.encode(),
                           resumption: resumption?.ticket, attemptEarlyData: attemptEarlyData)
        if let destination = configuration.qlog { qlog = QLogWriter(destination: destination, connection: self) }
        installInitialKeys(version: version)
        statistics.ecn.state = ecn.state
        do {
            try tls.start()
            try pumpTLS()
            if early.write == nil, attemptEarlyData {
                // TLS did not offer early data (the ticket does not allow it): no remembered limits.
                streams = StreamManager(role: .client, localParameters: parameters, peerParameters: TransportParameters(),
                                        configuration: configuration.streamWindows)
            }
        } catch let error as TLSError {
            throw QUICError(error)
        } catch {
            throw error as? QUICError ?? QUICError(.internalError, "\(error)")
        }
    }

    /// Creates a server connection for a client's first Initial packet, then processes it.
    ///
    /// The endpoint has already checked that the datagram is at least 1200 bytes and that its
    /// version is supported; address validation (Retry, tokens) is the endpoint's decision too.
    ///
    /// - Parameters:
    ///   - configuration: settings; its TLS configuration needs a certificate and key.
    ///   - datagram: the datagram with the client's Initial.
    ///   - remoteAddress: where it came from.
    ///   - localAddress: the address of ours it came to, which the connection sends from (see
    ///     ``receive(_:from:to:ecn:at:)``); `nil` when the caller has one address.
    ///   - ecn: the ECN codepoint of its IP packet.
    ///   - originalDestinationConnectionID: after a Retry, the DCID of the client's very first
    ///     Initial, recovered from the token; otherwise `nil` (this Initial's DCID is the original).
    ///   - retrySourceConnectionID: after a Retry, the SCID of our Retry packet (this Initial's DCID).
    ///   - addressValidated: whether the client's address is already validated (a valid token).
    ///   - now: the current time.
    /// - Throws: ``QUICError`` when the datagram does not start with a usable Initial packet;
    ///   drop the datagram then.
    public convenience init(server configuration: QUICConfiguration, datagram: [UInt8], remoteAddress: SocketAddress,
                            localAddress: SocketAddress? = nil, ecn: ECNCodepoint = .notECT,
                            originalDestinationConnectionID: ConnectionID? = nil, retrySourceConnectionID: ConnectionID? = nil,
                            addressValidated: Bool = false, now: Instant) throws(QUICError) {
        try self.init(server: SharedConfiguration(configuration), datagram: datagram, remoteAddress: remoteAddress,
                      localAddress: localAddress, ecn: ecn,
                      originalDestinationConnectionID: originalDestinationConnectionID, retrySourceConnectionID: retrySourceConnectionID,
                      addressValidated: addressValidated, now: now)
    }

    /// ``init(server:datagram:remoteAddress:localAddress:ecn:originalDestinationConnectionID:retrySourceConnectionID:addressValidated:now:)``
    /// with a configuration its endpoint shares among its connections.
    init(server settings: SharedConfiguration, datagram: [UInt8], remoteAddress: SocketAddress, localAddress: SocketAddress?,
         ecn codepoint: ECNCodepoint,
         originalDestinationConnectionID: ConnectionID?, retrySourceConnectionID: ConnectionID?,
         addressValidated: Bool, now: Instant) throws(QUICError) {
        let configuration = settings.value
        role = .server
        self.settings = settings
        self.now = now
        let header = try PacketHeader.parse(datagram, shortHeaderConnectionIDLength: 0)
        guard case .long(let initial) = header, initial.type == .initial else {
            throw QUICError(.protocolViolation, "a server connection starts with an Initial packet")
        }
        guard initial.destinationConnectionID.count >= 8 || retrySourceConnectionID != nil else {
            throw QUICError(.protocolViolation, "the client's first Destination Connection ID is shorter than 8 bytes")
        }
        version = initial.version
        originalVersion = initial.version
        localConnectionIDLength = configuration.localConnectionIDLength
        self.originalDestinationConnectionID = originalDestinationConnectionID ?? initial.destinationConnectionID
        initialSecretConnectionID = initial.destinationConnectionID
        self.retrySourceConnectionID = retrySourceConnectionID
        peerInitialSourceConnectionID = initial.sourceConnectionID
        initialToken = []
        paths = Paths(current: Path(remote: remoteAddress, local: localAddress, isValidated: addressValidated))
        spaces = PacketNumberSpace.allCases.map { PacketSpaceState(space: $0, maxAckDelay: configuration.maxAckDelay) }
        recovery = LossDetection(role: .server, configuration: .init(initialRTT: configuration.initialRTT))
        congestion = Congestion(algorithm: configuration.congestionAlgorithm, maxDatagramSize: configuration.initialDatagramSize)
        pacer = Pacer(maxDatagramSize: configuration.initialDatagramSize)
        ecn = ECNValidation(enabled: configuration.ecn)
        idleDeadlineBase = now
        lastAckElicitingSent = now

        let scid = configuration.makeConnectionID()
        let issued = cids.issueLocal(scid, resetKey: configuration.statelessResetKey, announce: false)
        cids.setInitialPeer(initial.sourceConnectionID)
        var parameters = configuration.baseTransportParameters
        parameters.initialSourceConnectionID = scid
        parameters.originalDestinationConnectionID = self.originalDestinationConnectionID
        parameters.retrySourceConnectionID = retrySourceConnectionID
        parameters.statelessResetToken = issued.resetToken
        localParameters = parameters
        spin = SpinBit(allowed: configuration.spinBit, random: configuration.random)
        streams = StreamManager(role: .server, localParameters: parameters, peerParameters: TransportParameters(),
                                configuration: configuration.streamWindows)
        tls = TLSHandshake(server: configuration.tls, quicTransportParameters: parameters.encode())
        // Tickets belong to the version of the connection that got them (RFC 9369 §5): one is
        // accepted only from a client that started in its version, and ours carry the version
        // this connection ends up in (``acceptClientTransportParameters(_:)``).
        tls.acceptedTicketContext = version.rawValue
        tls.issuedTicketContext = version.rawValue
        tls.transportParametersProvider = { [unowned self] (client: [UInt8]) throws(TLSError) -> [UInt8] in
            do throws(QUICError) {
                return try self.acceptClientTransportParameters(client)
            } catch {
                self.transportParameterError = error
                throw TLSError(.illegalParameter, error.reason)
            }
        }
        if let destination = configuration.qlog { qlog = QLogWriter(destination: destination, connection: self) }
        installInitialKeys(version: version)
        statistics.ecn.state = ecn.state
        emit(.connectionIDIssued(scid, resetToken: issued.resetToken))
        receive(datagram, from: remoteAddress, to: localAddress, ecn: codepoint, at: now)
        guard hasReceivedPacket else {
            qlog?.discard()
            throw QUICError(.protocolViolation, "the datagram holds no Initial packet that decrypts")
        }
    }

    // MARK: - Events

    /// The next event for the application, or `nil`.
    public func nextEvent() -> QUICConnectionEvent? {
        guard eventIndex < events.count else {
            // A busy connection reuses its queue; one that queued a burst (its handshake) gives
            // the room back, so an idle connection keeps none.
            if !events.isEmpty { events.removeAll(keepingCapacity: events.capacity <= 4); eventIndex = 0 }
            return nil
        }
        defer { eventIndex += 1 }
        if case .datagramReceived = events[eventIndex] { queuedDatagramEvents -= 1 }
        return events[eventIndex]
    }

    func emit(_ event: QUICConnectionEvent) {
        events.append(event)
        qlog?.connectionEvent(event)
    }

    // MARK: - Streams

    /// Opens a stream; `nil` when the peer's stream limit is reached (a STREAMS_BLOCKED frame
    /// is then sent) or the connection is closing.
    public func openStream(_ direction: StreamID.Direction = .bidirectional) -> StreamID? {
        guard state == .handshaking || state == .established, let id = streams.openStream(direction) else { return nil }
        qlog?.streamOpened(id, locally: true)
        return id
    }

    /// Queues bytes on a stream. The stream keeps `bytes` (sharing their storage) until they
    /// are acknowledged.
    public func write(_ bytes: [UInt8], to id: StreamID) throws(StreamError) {
        try streams.write(bytes, to: id)
    }

    /// Queues a slice of bytes on a stream, kept (sharing its storage) until acknowledged:
    /// writing part of an array copies nothing.
    public func write(_ bytes: ArraySlice<UInt8>, to id: StreamID) throws(StreamError) {
        try streams.write(bytes, to: id)
    }

    /// Ends the sending part of a stream after the bytes written so far.
    public func finish(_ id: StreamID) throws(StreamError) {
        try streams.finish(id)
    }

    /// Abandons the sending part of a stream (RESET_STREAM).
    public func reset(_ id: StreamID, errorCode: UInt64) throws(StreamError) {
        try streams.reset(id, errorCode: errorCode)
    }

    /// Abandons the receiving part of a stream (STOP_SENDING).
    public func stopSending(_ id: StreamID, errorCode: UInt64) throws(StreamError) {
        try streams.stopSending(id, errorCode: errorCode)
        readableNotified.remove(id)
    }

    /// Reads up to `maxBytes` in-order bytes of a stream. Read until the result is empty:
    /// ``QUICConnectionEvent/streamReadable(_:)`` is reported again only for data that
    /// arrives after a read.
    ///
    /// - Returns: the bytes and whether the end of the stream was reached.
    /// - Throws: ``StreamError/resetByPeer(errorCode:)`` when the peer reset the stream, or
    ///   another ``StreamError`` for an unknown or send-only stream.
    public func read(from id: StreamID, maxBytes: Int = .max) throws(StreamError) -> (bytes: [UInt8], fin: Bool) {
        readableNotified.remove(id)
        return try streams.read(from: id, maxBytes: maxBytes, at: now)
    }

    /// The bytes written to a stream and not yet acknowledged, for applications that bound
    /// their buffering (write more when it falls).
    public func bufferedBytes(on id: StreamID) -> UInt64 {
        streams.sendStream(id)?.buffer.bufferedBytes ?? 0
    }

    /// Whether everything sent on a stream — the data and the FIN, or a reset — has reached the
    /// peer: its sending part is in a terminal state (RFC 9000 §3.1) or gone. Applications
    /// that close after writing wait for this, so the CONNECTION_CLOSE does not overtake data.
    public func isSendComplete(on id: StreamID) -> Bool {
        guard let stream = streams.sendStream(id) else { return true }
        switch stream.state {
        case .dataRecvd, .resetRecvd: return true
        case .ready, .send, .dataSent, .resetSent: return false
        }
    }

    /// Whether everything written on every stream was acknowledged by the peer: what a
    /// flushing close waits for.
    public var isAllStreamDataDelivered: Bool { streams.isAllSentDataAcknowledged }

    /// The sending part of a stream as it is now (`nil` when there is none, or the stream is
    /// closed and forgotten).
    package func sendStream(_ id: StreamID) -> SendStream? { streams.sendStream(id) }

    /// The receiving part of a stream as it is now (`nil` when there is none, or the stream is
    /// closed and forgotten).
    package func receiveStream(_ id: StreamID) -> ReceiveStream? { streams.receiveStream(id) }

    /// Whether a stream is still open (not closed and forgotten).
    public func isStreamOpen(_ id: StreamID) -> Bool { streams.contains(id) }

    // MARK: - Datagrams (RFC 9221)

    /// The largest DATAGRAM payload the peer accepts now; `nil` when it does not accept them.
    public var maxDatagramPayloadSize: Int? {
        guard let limit = peerTransportParameters?.maxDatagramFrameSize, limit > 0 else { return nil }
        let frameLimit = Int(min(limit, UInt64(Int.max))) - 1 - 8
        return max(0, min(frameLimit, maxPayloadForShortPacket - 1 - 8))
    }

    /// Queues an unreliable datagram. At most 64 wait; older ones are dropped first.
    ///
    /// - Throws: ``QUICError`` (PROTOCOL_VIOLATION) when the peer does not accept DATAGRAM
    ///   frames or the payload is too large.
    public func sendDatagram(_ bytes: [UInt8]) throws(QUICError) {
        guard let max = maxDatagramPayloadSize else { throw QUICError(.protocolViolation, "the peer does not accept DATAGRAM frames") }
        guard bytes.count <= max else { throw QUICError(.protocolViolation, "datagram of \(bytes.count) bytes exceeds \(max)") }
        if pendingDatagrams.count >= 64 { pendingDatagrams.removeFirst() }
        pendingDatagrams.append(bytes)
        qlog?.datagramMoved(length: bytes.count, toApplication: false)
    }

    // MARK: - Commands

    /// Server: sends a NEW_TOKEN frame with this address validation token (RFC 9000 §8.1.3),
    /// once the handshake is confirmed.
    public func sendNewToken(_ token: [UInt8]) {
        guard role == .server, !token.isEmpty else { return }
        pendingNewToken = token
    }

    /// Client: the connection's datagrams leave from a new local address from now on — the
    /// application moved it (active migration, RFC 9000 §9.2). The connection switches to a
    /// connection ID of the server's it has not used (§9.5), so that an observer cannot link
    /// the two paths, and checks the new path with PATH_CHALLENGE (§8.2); on a new address
    /// (not just a new port) congestion control and the RTT estimate start over (§9.4). Path
    /// MTU discovery, ECN validation and the spin bit start over on the new path either way.
    ///
    /// - Parameter newAddress: Whether the local IP address changed, not only the port.
    /// - Throws: ``MigrationRefusal`` when the protocol forbids migrating now; the connection
    ///   is unchanged and the application should keep the old address.
    public func migrateLocalAddress(newAddress: Bool) throws(MigrationRefusal) {
        guard role == .client else { throw .notClient }
        guard state == .established, isHandshakeConfirmed else { throw .handshakeNotConfirmed }  // §9
        guard peerTransportParameters?.disableActiveMigration != true else { throw .disabledByPeer }  // §18.2
        if cids.activePeer.count > 0 {
            guard cids.rotatePeer() else { throw .noSpareConnectionID }  // §9.5
        }
        // The server's address was validated by the handshake (and a client has no
        // amplification limit): the challenge only confirms the new path works.
        paths.current = Path(remote: paths.current.remote, isValidated: true, challenge: newChallenge(), challengePending: true)
        paths.previous = nil
        startingOnNewPath(newNetwork: newAddress)
        statistics.localMigrations += 1
    }

    /// Initiates a key update now if the rules allow it (RFC 9001 §6.1): handshake confirmed
    /// and a packet of the current phase acknowledged. Returns whether it did.
    @discardableResult
    public func updateKeys() -> Bool { initiateKeyUpdate() }

    /// Closes the connection with an application error code (0 for an orderly close) and
    /// reason (RFC 9000 §10.2). Streams stop at once; CONNECTION_CLOSE is sent by
    /// ``transmit(at:)``.
    /// Client: the network reports that datagrams to `address` cannot be delivered (the
    /// kernel's `ECONNREFUSED` for an ICMP port unreachable, or a host or network
    /// unreachable). ICMP is unauthenticated (RFC 9000 §14.2.1, §21.1), so it is believed only
    /// for the server's address and only before any packet from the server was processed: then
    /// it can only cut short a handshake that would otherwise wait for the idle timeout, the
    /// way TCP reports a refused connection at once. Otherwise the report is ignored.
    ///
    /// - Returns: whether the connection closed (with origin ``ConnectionCloseInfo/Origin/unreachable``).
    @discardableResult
    public func peerUnreachable(_ address: SocketAddress, reason: String, at now: Instant) -> Bool {
        advanceClock(now)
        guard role == .client, state == .handshaking, !hasReceivedPacket, address == paths.current.remote else { return false }
        let info = ConnectionCloseInfo(origin: .unreachable, frame: .transport(.noError, reason: reason))
        closeInfo = info
        state = .closed
        emit(.closed(info))
        return true
    }

    public func close(errorCode: UInt64 = 0, reason: String = "") {
        enterClosing(ConnectionClose.application(errorCode, reason: reason), origin: .local)
    }
}
