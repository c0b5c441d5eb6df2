public import QuiverCore

/// A QUIC packet header as read before any keys are applied (quinn's `PartialDecode`):
/// enough to route the datagram, find the keys and locate the packet number.
///
/// Parsing follows the version-independent invariants (RFC 8999) first, then the v1/v2
/// long-header layouts (RFC 9000 §17.2, RFC 9369 §3.2). Nothing here traps on input.
@_spi(Wire) public enum PacketHeader: Sendable, Hashable {
    /// A long-header packet with a payload: Initial, 0-RTT or Handshake.
    case long(LongHeader)
    /// A short-header (1-RTT) packet.
    case short(ShortHeader)
    /// A Retry packet (RFC 9000 §17.2.5).
    case retry(RetryPacket)
    /// A Version Negotiation packet (RFC 9000 §17.2.1).
    case versionNegotiation(VersionNegotiationPacket)
    /// A long header of a version Quiver does not implement: only the invariant fields are
    /// known (a server answers with Version Negotiation).
    case unsupportedVersion(version: QUICVersion, destinationConnectionID: [UInt8], sourceConnectionID: [UInt8])

    /// The Destination Connection ID, for routing.
    public var destinationConnectionID: [UInt8] {
        switch self {
        case .long(let h): return h.destinationConnectionID.bytes
        case .short(let h): return h.destinationConnectionID.bytes
        case .retry(let r): return r.destinationConnectionID.bytes
        case .versionNegotiation(let v): return v.destinationConnectionID
        case .unsupportedVersion(_, let d, _): return d
        }
    }

    /// The Destination Connection ID as a routing key (no allocation for the packets of
    /// supported versions); `nil` when longer than 20 bytes, which only a version Quiver does
    /// not implement allows.
    public var routingConnectionID: ConnectionID? {
        switch self {
        case .long(let h): return h.destinationConnectionID
        case .short(let h): return h.destinationConnectionID
        case .retry(let r): return r.destinationConnectionID
        case .versionNegotiation(let v): return ConnectionID(v.destinationConnectionID)
        case .unsupportedVersion(_, let d, _): return ConnectionID(d)
        }
    }
}

/// Initial, 0-RTT or Handshake header fields.
@_spi(Wire) public struct LongHeader: Sendable, Hashable {
    public var type: PacketType
    public var version: QUICVersion
    public var destinationConnectionID: ConnectionID
    public var sourceConnectionID: ConnectionID
    /// The token (Initial packets only).
    public var token: [UInt8]
    /// Offset of the (protected) packet-number field from the start of this packet.
    public var packetNumberOffset: Int
    /// Total length of this packet (header, packet number and payload), from its Length field.
    public var packetLength: Int

    public init(type: PacketType, version: QUICVersion, destinationConnectionID: ConnectionID, sourceConnectionID: ConnectionID,
                token: [UInt8] = [], packetNumberOffset: Int = 0, packetLength: Int = 0) {
        self.type = type
        self.version = version
        self.destinationConnectionID = destinationConnectionID
        self.sourceConnectionID = sourceConnectionID
        self.token = token
        self.packetNumberOffset = packetNumberOffset
        self.packetLength = packetLength
    }

    /// Writes the header up to and including the packet number, unprotected, and returns the
    /// packet-number offset. `payloadLength` counts the bytes after the packet number,
    /// authentication tag included; the Length field always uses 2 bytes when it fits, so
    /// builders can fill it in once the payload is known.
    public func encode(into w: inout ByteWriter, packetNumber: UInt64, packetNumberLength: Int, payloadLength: Int) -> Int {
        precondition((1...4).contains(packetNumberLength), "packet number length must be 1–4")
        let bits = version.longHeaderTypeBits(type) ?? 0
        w.writeUInt8(0xc0 | bits << 4 | UInt8(packetNumberLength - 1))
        w.writeUInt32(version.rawValue)
        w.writeLengthPrefixedBytes(1, destinationConnectionID.bytes)
        w.writeLengthPrefixedBytes(1, sourceConnectionID.bytes)
        if type == .initial {
            w.writeVarInt(UInt64(token.count))
            w.writeBytes(token)
        }
        let length = UInt64(packetNumberLength + payloadLength)
        var lengthBytes: [UInt8] = []
        VarInt.write(length, length: length < 16384 ? 2 : 4, into: &lengthBytes)
        w.writeBytes(lengthBytes)
        let offset = w.count
        w.writeUInt(packetNumber, byteCount: packetNumberLength)
        return offset
    }
}

/// 1-RTT header fields known before removing protection.
@_spi(Wire) public struct ShortHeader: Sendable, Hashable {
    public var destinationConnectionID: ConnectionID
    /// The latency spin bit (RFC 9000 §17.4), not protected.
    public var spinBit: Bool
    /// Offset of the packet-number field (1 + DCID length).
    public var packetNumberOffset: Int { 1 + destinationConnectionID.count }

    public init(destinationConnectionID: ConnectionID, spinBit: Bool = false) {
        self.destinationConnectionID = destinationConnectionID
        self.spinBit = spinBit
    }

    /// Writes the header with the packet number, unprotected; returns the packet-number offset.
    public func encode(into w: inout ByteWriter, packetNumber: UInt64, packetNumberLength: Int, keyPhase: Bool) -> Int {
        precondition((1...4).contains(packetNumberLength), "packet number length must be 1–4")
        w.writeUInt8(0x40 | (spinBit ? 0x20 : 0) | (keyPhase ? 0x04 : 0) | UInt8(packetNumberLength - 1))
        destinationConnectionID.withUnsafeBytes { w.writeBytes($0) }
        let offset = w.count
        w.writeUInt(packetNumber, byteCount: packetNumberLength)
        return offset
    }
}

/// A Retry packet (RFC 9000 §17.2.5).
@_spi(Wire) public struct RetryPacket: Sendable, Hashable {
    public var version: QUICVersion
    public var destinationConnectionID: ConnectionID
    public var sourceConnectionID: ConnectionID
    public var token: [UInt8]
    public var integrityTag: [UInt8]

    public init(version: QUICVersion, destinationConnectionID: ConnectionID, sourceConnectionID: ConnectionID, token: [UInt8], integrityTag: [UInt8] = []) {
        self.version = version
        self.destinationConnectionID = destinationConnectionID
        self.sourceConnectionID = sourceConnectionID
        self.token = token
        self.integrityTag = integrityTag
    }

    /// The packet without its tag (the Retry pseudo-packet's tail).
    public func encodedWithoutTag(unusedBits: UInt8 = 0) -> [UInt8] {
        var w = ByteWriter()
        w.writeUInt8(0xc0 | (version.longHeaderTypeBits(.retry) ?? 3) << 4 | (unusedBits & 0x0f))
        w.writeUInt32(version.rawValue)
        w.writeLengthPrefixedBytes(1, destinationConnectionID.bytes)
        w.writeLengthPrefixedBytes(1, sourceConnectionID.bytes)
        w.writeBytes(token)
        return w.bytes
    }

    /// Builds a complete Retry packet with its integrity tag for `originalDestinationConnectionID`.
    public static func make(version: QUICVersion, destinationConnectionID: ConnectionID, sourceConnectionID: ConnectionID,
                            token: [UInt8], originalDestinationConnectionID: [UInt8], unusedBits: UInt8 = 0) -> [UInt8] {
        let body = RetryPacket(version: version, destinationConnectionID: destinationConnectionID, sourceConnectionID: sourceConnectionID, token: token)
            .encodedWithoutTag(unusedBits: unusedBits)
        return body + RetryIntegrity.tag(retryWithoutTag: body, originalDestinationConnectionID: originalDestinationConnectionID, version: version)
    }
}

/// A Version Negotiation packet (RFC 9000 §17.2.1).
@_spi(Wire) public struct VersionNegotiationPacket: Sendable, Hashable {
    public var destinationConnectionID: [UInt8]
    public var sourceConnectionID: [UInt8]
    public var supportedVersions: [QUICVersion]

    public init(destinationConnectionID: [UInt8], sourceConnectionID: [UInt8], supportedVersions: [QUICVersion]) {
        self.destinationConnectionID = destinationConnectionID
        self.sourceConnectionID = sourceConnectionID
        self.supportedVersions = supportedVersions
    }

    /// Encodes the packet; `unusedBits` fills the 7 free bits of the first byte (send random).
    public func encoded(unusedBits: UInt8) -> [UInt8] {
        var w = ByteWriter()
        w.writeUInt8(0x80 | (unusedBits & 0x7f))
        w.writeUInt32(0)
        w.writeLengthPrefixedBytes(1, destinationConnectionID)
        w.writeLengthPrefixedBytes(1, sourceConnectionID)
        for v in supportedVersions { w.writeUInt32(v.rawValue) }
        return w.bytes
    }

    /// Answers a client's long-header packet: connection IDs swapped (RFC 9000 §6.1).
    public static func response(to header: PacketHeader, supportedVersions: [QUICVersion]) -> VersionNegotiationPacket? {
        guard case .unsupportedVersion(_, let dcid, let scid) = header else { return nil }
        return VersionNegotiationPacket(destinationConnectionID: scid, sourceConnectionID: dcid, supportedVersions: supportedVersions)
    }
}

extension PacketHeader {
    /// Parses the header of the packet starting at `offset` in `datagram`.
    ///
    /// - Parameters:
    ///   - shortHeaderConnectionIDLength: the length of this endpoint's connection IDs (short
    ///     headers do not carry it).
    ///   - allowGreasedFixedBit: accept a zero fixed bit (the peer sent grease_quic_bit,
    ///     RFC 9287); otherwise such packets are invalid.
    /// - Throws: ``QUICError`` with PROTOCOL_VIOLATION for malformed packets; callers drop
    ///   the datagram (RFC 9000 §12.2: errors before keys are not connection errors).
    public static func parse(_ datagram: [UInt8], at offset: Int = 0, shortHeaderConnectionIDLength: Int,
                             allowGreasedFixedBit: Bool = false) throws(QUICError) -> PacketHeader {
        var r = ByteReader(datagram, from: offset)
        let start = r.offset
        do {
            let first = try r.readUInt8()
            if first & 0x80 == 0 {
                guard first & 0x40 != 0 || allowGreasedFixedBit else { throw QUICError(.protocolViolation, "fixed bit is zero") }
                guard shortHeaderConnectionIDLength <= ConnectionID.maxLength else {
                    throw QUICError(.protocolViolation, "connection ID longer than 20 bytes")
                }
                let dcid = try r.readSlice(shortHeaderConnectionIDLength)
                return .short(ShortHeader(destinationConnectionID: ConnectionID(unchecked: dcid), spinBit: first & 0x20 != 0))
            }
            let version = QUICVersion(rawValue: try r.readUInt32())
            let dcid = try r.readLengthPrefixedBytes(1)
            let scid = try r.readLengthPrefixedBytes(1)
            if version == .negotiation {
                var versions: [QUICVersion] = []
                while r.remaining >= 4 { versions.append(QUICVersion(rawValue: try r.readUInt32())) }
                guard r.isAtEnd, !versions.isEmpty else { throw QUICError(.protocolViolation, "malformed Version Negotiation packet") }
                return .versionNegotiation(VersionNegotiationPacket(destinationConnectionID: dcid, sourceConnectionID: scid, supportedVersions: versions))
            }
            guard version.isSupported else {
                return .unsupportedVersion(version: version, destinationConnectionID: dcid, sourceConnectionID: scid)
            }
            guard let d = ConnectionID(dcid), let s = ConnectionID(scid) else {
                throw QUICError(.protocolViolation, "connection ID longer than 20 bytes")
            }
            guard first & 0x40 != 0 || allowGreasedFixedBit else { throw QUICError(.protocolViolation, "fixed bit is zero") }
            let type = version.packetType(longHeaderBits: (first >> 4) & 0x03)
            if type == .retry {
                guard r.remaining >= 16 else { throw QUICError(.protocolViolation, "Retry packet without an integrity tag") }
                let token = try r.readBytes(r.remaining - 16)
                guard !token.isEmpty else { throw QUICError(.protocolViolation, "Retry packet with an empty token") }
                return .retry(RetryPacket(version: version, destinationConnectionID: d, sourceConnectionID: s, token: token, integrityTag: try r.readBytes(16)))
            }
            var token: [UInt8] = []
            if type == .initial {
                let length = try r.readVarInt()
                guard length <= UInt64(r.remaining) else { throw QUICError(.protocolViolation, "token longer than the packet") }
                token = try r.readBytes(Int(length))
            }
            let length = try r.readVarInt()
            let pnOffset = r.offset - start
            guard length <= UInt64(r.remaining) else { throw QUICError(.protocolViolation, "Length field exceeds the datagram") }
            guard length >= 1 else { throw QUICError(.protocolViolation, "Length field too small") }
            return .long(LongHeader(
                type: type, version: version, destinationConnectionID: d, sourceConnectionID: s, token: token,
                packetNumberOffset: pnOffset, packetLength: pnOffset + Int(length)))
        } catch let error as DecodeError {
            throw QUICError(.protocolViolation, "truncated packet header: \(error.reason)")
        } catch let error as QUICError {
            throw error
        } catch {
            throw QUICError(.internalError, "\(error)")
        }
    }

    /// Splits a datagram into its coalesced packets (RFC 9000 §12.2): each long-header packet
    /// ends where its Length says; a short-header packet, Retry or Version Negotiation runs to
    /// the end. Returns the byte ranges with their parsed headers; parsing stops at the first
    /// packet that does not parse (the rest of the datagram is dropped).
    public static func split(_ datagram: [UInt8], shortHeaderConnectionIDLength: Int,
                             allowGreasedFixedBit: Bool = false) -> [(range: Range<Int>, header: PacketHeader)] {
        var out: [(range: Range<Int>, header: PacketHeader)] = []
        var offset = 0
        while offset < datagram.count {
            guard let header = try? parse(datagram, at: offset, shortHeaderConnectionIDLength: shortHeaderConnectionIDLength,
                                          allowGreasedFixedBit: allowGreasedFixedBit)
            else { break }
            let end = header.packetEnd(from: offset, datagramSize: datagram.count)
            out.append((offset..<end, header))
            offset = end
        }
        return out
    }

    /// Where the packet with this header, starting at `offset`, ends in its datagram (RFC 9000
    /// §12.2): a long-header packet where its Length says; a short-header packet, Retry or
    /// Version Negotiation at the datagram's end — so nothing can follow it.
    public func packetEnd(from offset: Int, datagramSize: Int) -> Int {
        if case .long(let long) = self { return offset + long.packetLength }
        return datagramSize
    }
}
