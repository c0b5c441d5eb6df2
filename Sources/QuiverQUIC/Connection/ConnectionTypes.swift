public import QuiverCore
public import QuiverTLS

/// A UDP datagram a connection wants sent.
public struct OutgoingDatagram: Sendable, Hashable {
    /// The UDP payload: one or more coalesced QUIC packets (RFC 9000 §12.2).
    public var bytes: [UInt8]
    /// Where to send it.
    public var destination: SocketAddress
    /// The local address to send it from: the address the peer's datagrams on this path came
    /// to (``QUICConnection/receive(_:from:to:ecn:at:)``), which differs from the first one
    /// once a client moved to the server's preferred address (RFC 9000 §9.6); `nil` when the
    /// engine was not told (any local address of the caller's).
    public var source: SocketAddress?
    /// The ECN codepoint to mark it with.
    public var ecn: ECNCodepoint

    public init(bytes: [UInt8], destination: SocketAddress, source: SocketAddress? = nil, ecn: ECNCodepoint = .notECT) {
        self.bytes = bytes
        self.destination = destination
        self.source = source
        self.ecn = ecn
    }
}

/// Datagrams for one destination (from one local address) written back to back into one buffer, every one of
/// ``segmentSize`` bytes but the last, which may be shorter: what one `sendmsg` with UDP GSO
/// sends as a train (or one `sendmsg` per datagram without GSO).
///
/// Connections and the endpoint write their packets straight into it
/// (``QUICConnection/transmit(at:into:)``, ``QUICEndpoint/transmit(at:into:)``): a caller keeps
/// one train and reuses it, so that sending allocates nothing per datagram.
public struct DatagramTrain: Sendable {
    /// The datagrams, back to back.
    public var bytes: [UInt8] { writer.bytes }
    /// Where the datagrams go; `nil` while the train is empty.
    public private(set) var destination: SocketAddress?
    /// The local address they leave from (``OutgoingDatagram/source``); `nil` when any will do.
    public private(set) var source: SocketAddress?
    /// The ECN codepoint to mark them with.
    public private(set) var ecn: ECNCodepoint = .notECT
    /// The size of every datagram but the last: the first datagram's size (0 while empty).
    public private(set) var segmentSize = 0
    /// How many datagrams the train holds.
    public private(set) var count = 0
    /// The most datagrams one train holds.
    public let maxDatagrams: Int
    /// The most bytes one train holds (a GSO train is one UDP datagram to the kernel, whose
    /// length field, with the UDP and IP headers, must fit 16 bits).
    public let maxBytes: Int
    /// Whether a datagram shorter than the room it was given ended the train: a train goes on
    /// only while its datagrams are full, so that a short one (an ACK, the end of the data)
    /// does not cut the size of those after it.
    private var ended = false
    /// The buffer packets are encoded and sealed in.
    var writer = ByteWriter()
    /// The records of the frames of the packets being planned, by packet-number space (a
    /// datagram holds one packet per space at most): scratch space of the connection writing a
    /// datagram, kept here, apart from the plans, so that a plan is a few plain words that copy
    /// for free, and so that an idle connection does not hold it.
    var plannedFrames = InlineArray<3, SentFrameInfos>(repeating: SentFrameInfos())

    /// Creates an empty train that holds at most `maxDatagrams` datagrams of `maxBytes` bytes
    /// in all.
    public init(maxDatagrams: Int = 32, maxBytes: Int = 65_000) {
        precondition(maxDatagrams > 0 && maxBytes >= 1200, "a train holds at least one 1200-byte datagram")
        self.maxDatagrams = maxDatagrams
        self.maxBytes = maxBytes
    }

    /// Whether the train holds no datagram.
    public var isEmpty: Bool { count == 0 }

    /// Datagram `index` (`0..<count`).
    public func datagram(_ index: Int) -> ArraySlice<UInt8> {
        precondition(index >= 0 && index < count, "datagram \(index) of \(count)")
        let start = index * segmentSize
        return writer.bytes[start..<min(start + segmentSize, writer.count)]
    }

    /// Empties the train, keeping its memory.
    public mutating func removeAll() {
        writer.bytes.removeAll(keepingCapacity: true)
        clearDatagrams()
    }

    /// Empties the train and lets go of its memory, to go on in `storage` (emptied, its
    /// capacity kept): for a caller that handed ``bytes`` on without copying them (a UDP
    /// socket's send queue holds them until they are sent) and got spare memory back.
    public mutating func removeAll(continuingIn storage: consuming [UInt8]) {
        writer.bytes = consume storage  // moved: emptying a second reference would allocate anew
        writer.bytes.removeAll(keepingCapacity: true)
        clearDatagrams()
    }

    private mutating func clearDatagrams() {
        destination = nil
        source = nil
        ecn = .notECT
        segmentSize = 0
        count = 0
        ended = false
    }

    /// The most bytes the next datagram to `destination` from `source` may have, or `nil` when
    /// it cannot join the train (another destination or source, or the train is full or ended).
    mutating func room(for destination: SocketAddress, from source: SocketAddress?, ecn: ECNCodepoint, limit: Int) -> Int? {
        guard count > 0 else {
            let wanted = min(maxBytes, limit * maxDatagrams)
            if writer.bytes.capacity < wanted { writer.bytes.reserveCapacity(wanted) }
            return min(limit, maxBytes)
        }
        guard !ended, count < maxDatagrams, destination == self.destination, source == self.source, ecn == self.ecn,
              writer.count + segmentSize <= maxBytes else { return nil }
        return min(limit, segmentSize)
    }

    /// Records the datagram of `length` bytes just written at the end of ``writer``, given
    /// `room` bytes (``room(for:from:ecn:limit:)``).
    mutating func commit(length: Int, room: Int, destination: SocketAddress, source: SocketAddress?, ecn: ECNCodepoint) {
        precondition(length > 0 && length <= room && writer.count == count * segmentSize + length, "datagram not at the end of the train")
        if count == 0 {
            self.destination = destination
            self.source = source
            self.ecn = ecn
            segmentSize = length
        }
        ended = length < room || length < segmentSize
        count += 1
    }

    /// Appends a datagram written elsewhere (a stateless answer); the train must be empty.
    mutating func append(_ datagram: OutgoingDatagram) {
        precondition(isEmpty, "a copied datagram starts a train")
        writer.writeBytes(datagram.bytes)
        ended = true
        count = 1
        destination = datagram.destination
        source = datagram.source
        ecn = datagram.ecn
        segmentSize = datagram.bytes.count
    }
}

/// Why and how a connection ended.
public struct ConnectionCloseInfo: Sendable, Hashable, CustomStringConvertible {
    /// Who ended it.
    public enum Origin: Sendable, Hashable {
        /// We closed it (``QUICConnection/close(errorCode:reason:)`` or a protocol error we found).
        case local
        /// The peer sent CONNECTION_CLOSE.
        case peer
        /// Nothing was heard for the idle timeout (RFC 9000 §10.1).
        case idleTimeout
        /// The peer sent a stateless reset (RFC 9000 §10.3).
        case statelessReset
        /// The server answered with Version Negotiation listing these versions; the client
        /// may try again with one of them (RFC 9000 §6.2).
        case versionNegotiation([QUICVersion])
        /// Client: the network reported the server unreachable (an ICMP port or host
        /// unreachable) before anything was heard from it; see
        /// ``QUICConnection/peerUnreachable(_:reason:at:)``.
        case unreachable
    }

    /// Who ended it.
    public var origin: Origin
    /// The CONNECTION_CLOSE content (for idle timeouts and resets: NO_ERROR, empty reason).
    public var frame: ConnectionClose

    /// The reason phrase as text.
    public var reason: String { String(decoding: frame.reason, as: UTF8.self) }

    /// Whether this was an orderly close: NO_ERROR (transport) or application code 0, from
    /// either side.
    public var isClean: Bool { frame.errorCode == 0 && (origin == .local || origin == .peer) }

    public var description: String {
        let code = frame.isApplication ? "application error \(frame.errorCode)" : "\(TransportErrorCode(rawValue: frame.errorCode))"
        return "\(origin): \(code)\(frame.reason.isEmpty ? "" : " (\(reason))")"
    }
}

/// What a client keeps from a connection to resume a later one with 0-RTT (RFC 9000 §7.4.1):
/// the TLS ticket and the server's transport parameters that limit 0-RTT data.
public struct QUICResumptionTicket: Sendable {
    /// The TLS session ticket.
    public var ticket: SessionTicket
    /// The server's transport parameters from the connection that issued the ticket.
    public var transportParameters: TransportParameters
    /// The QUIC version of that connection: 0-RTT is attempted only in the same version
    /// (RFC 9369 §5).
    public var version: QUICVersion

    public init(ticket: SessionTicket, transportParameters: TransportParameters, version: QUICVersion) {
        self.ticket = ticket
        self.transportParameters = transportParameters
        self.version = version
    }

    /// A byte form for keeping the ticket across processes (`quiver get --resume FILE`); it
    /// contains the resumption secret: store it like a key.
    public var serialized: [UInt8] {
        var writer = ByteWriter()
        writer.writeUInt8(1)
        writer.writeUInt32(version.rawValue)
        writer.writeLengthPrefixedBytes(2, ticket.serialized)
        writer.writeLengthPrefixedBytes(2, transportParameters.encode())
        return writer.bytes
    }

    /// Restores a ticket from ``serialized``.
    public init(serialized bytes: [UInt8]) throws(QUICError) {
        do {
            var reader = ByteReader(bytes)
            guard try reader.readUInt8() == 1 else { throw DecodeError(.invalidValue, "unknown resumption ticket format") }
            version = QUICVersion(rawValue: try reader.readUInt32())
            ticket = try SessionTicket(serialized: try reader.readLengthPrefixedBytes(2))
            let parameters = try reader.readLengthPrefixedBytes(2)
            try reader.expectEnd("resumption ticket")
            transportParameters = try TransportParameters(decoding: parameters, sentBy: .server)
        } catch let error as QUICError {
            throw error
        } catch {
            throw QUICError(.internalError, "not a resumption ticket: \(error)")
        }
    }
}

/// Something the application should know, from ``QUICConnection/nextEvent()``.
public enum QUICConnectionEvent: Sendable {
    /// The handshake completed: streams and datagrams flow in 1-RTT packets.
    case handshakeCompleted
    /// The peer opened a stream.
    case streamOpened(StreamID)
    /// A stream has data, its end, or a reset to read. Reported again only after a read.
    case streamReadable(StreamID)
    /// The peer asked us to stop sending on a stream (STOP_SENDING): writes now fail.
    case streamStopped(StreamID, errorCode: UInt64)
    /// A DATAGRAM frame arrived (RFC 9221).
    case datagramReceived([UInt8])
    /// Client: a ticket for resuming (and 0-RTT). (Indirect: a ticket carries the server's
    /// transport parameters, and every event queued would otherwise be that large.)
    indirect case resumptionTicket(QUICResumptionTicket)
    /// Client: the server sent an address validation token for a future connection (NEW_TOKEN).
    case newToken([UInt8])
    /// A connection ID of ours became valid: datagrams addressed to it belong here.
    case connectionIDIssued(ConnectionID, resetToken: [UInt8])
    /// A connection ID of ours was retired: forget its routing.
    case connectionIDRetired(ConnectionID)
    /// Client: whether the server accepted our 0-RTT data; refused data is sent again in
    /// 1-RTT packets, nothing is lost.
    case earlyDataAccepted(Bool)
    /// The connection ended; ``QUICConnection/state`` is now closing, draining or closed.
    indirect case closed(ConnectionCloseInfo)
}

/// The life cycle of a connection (RFC 9000 §10).
public enum QUICConnectionState: Sendable, Hashable {
    /// Handshake in progress.
    case handshaking
    /// Handshake complete.
    case established
    /// We sent CONNECTION_CLOSE; we answer further packets with it until the closing period
    /// ends (RFC 9000 §10.2.1).
    case closing
    /// The peer closed; we send nothing until the draining period ends (§10.2.2).
    case draining
    /// Nothing more will happen; the connection can be discarded.
    case closed
}

/// Why a client may not move to a new local address now
/// (``QUICConnection/migrateLocalAddress(newAddress:)``).
public enum MigrationRefusal: Error, Hashable, Sendable, CustomStringConvertible {
    /// Only clients migrate (RFC 9000 §9: a server's address is fixed; preferred_address aside).
    case notClient
    /// Not before the handshake is confirmed (RFC 9000 §9), nor once the connection closes.
    case handshakeNotConfirmed
    /// The server sent disable_active_migration (RFC 9000 §18.2).
    case disabledByPeer
    /// The server has given no connection ID beyond the one in use, and one must not be used
    /// from two addresses (RFC 9000 §9.5).
    case noSpareConnectionID

    public var description: String {
        switch self {
        case .notClient: "only a client moves to a new local address"
        case .handshakeNotConfirmed: "not before the handshake is confirmed, nor after the connection ended (RFC 9000 §9)"
        case .disabledByPeer: "the server sent disable_active_migration (RFC 9000 §18.2)"
        case .noSpareConnectionID: "the server has issued no spare connection ID (RFC 9000 §9.5)"
        }
    }
}
