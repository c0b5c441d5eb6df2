public import QuiverCore

/// A QUIC frame (RFC 9000 §19) or DATAGRAM frame (RFC 9221 §4).
///
/// Decode a packet payload with ``decodeAll(_:packetType:)`` (which also enforces the packet
/// type permissions of RFC 9000 §12.4) or one frame with ``decode(from:)``; encode with
/// ``encode(into:)``. Every peer-supplied field is validated by the decoder; encoders trust their
/// caller, and trap only on API misuse (a value above 2^62 − 1, a wrong-sized token).
@_spi(Wire) public enum Frame: Hashable, Sendable {
    /// A run of `count` consecutive PADDING bytes (RFC 9000 §19.1), decoded as one frame.
    case padding(count: Int)
    /// PING (RFC 9000 §19.2).
    case ping
    /// ACK, with or without ECN counts (RFC 9000 §19.3).
    case ack(AckFrame)
    /// RESET_STREAM (RFC 9000 §19.4): abrupt end of the sending part of a stream.
    case resetStream(id: StreamID, errorCode: UInt64, finalSize: UInt64)
    /// STOP_SENDING (RFC 9000 §19.5): the peer asks us to stop sending on a stream.
    case stopSending(id: StreamID, errorCode: UInt64)
    /// CRYPTO (RFC 9000 §19.6): handshake bytes at `offset` of the level's crypto stream.
    case crypto(offset: UInt64, data: [UInt8])
    /// NEW_TOKEN (RFC 9000 §19.7): an address validation token for a future connection; never empty.
    case newToken([UInt8])
    /// STREAM (RFC 9000 §19.8): stream data at `offset`; `fin` marks the end of the stream.
    /// A decoded frame's data is a slice of the decrypted packet (no copy).
    case stream(id: StreamID, offset: UInt64, data: ArraySlice<UInt8>, fin: Bool)
    /// MAX_DATA (RFC 9000 §19.9): the connection-level flow control limit.
    case maxData(UInt64)
    /// MAX_STREAM_DATA (RFC 9000 §19.10): a stream-level flow control limit.
    case maxStreamData(id: StreamID, max: UInt64)
    /// MAX_STREAMS (RFC 9000 §19.11): the cumulative stream limit, at most 2^60.
    case maxStreams(bidirectional: Bool, max: UInt64)
    /// DATA_BLOCKED (RFC 9000 §19.12): blocked at this connection-level limit.
    case dataBlocked(UInt64)
    /// STREAM_DATA_BLOCKED (RFC 9000 §19.13): blocked at this stream-level limit.
    case streamDataBlocked(id: StreamID, limit: UInt64)
    /// STREAMS_BLOCKED (RFC 9000 §19.14): blocked at this stream limit, at most 2^60.
    case streamsBlocked(bidirectional: Bool, limit: UInt64)
    /// NEW_CONNECTION_ID (RFC 9000 §19.15): a 1–20 byte connection ID and its 16-byte stateless
    /// reset token; `retirePriorTo` ≤ `sequence`.
    case newConnectionID(sequence: UInt64, retirePriorTo: UInt64, connectionID: [UInt8], resetToken: [UInt8])
    /// RETIRE_CONNECTION_ID (RFC 9000 §19.16).
    case retireConnectionID(sequence: UInt64)
    /// PATH_CHALLENGE (RFC 9000 §19.17) with 8 bytes of data.
    case pathChallenge([UInt8])
    /// PATH_RESPONSE (RFC 9000 §19.18) echoing 8 bytes of PATH_CHALLENGE data.
    case pathResponse([UInt8])
    /// CONNECTION_CLOSE, transport (0x1c) or application (0x1d) variant (RFC 9000 §19.19).
    case connectionClose(ConnectionClose)
    /// HANDSHAKE_DONE (RFC 9000 §19.20), sent only by servers.
    case handshakeDone
    /// DATAGRAM (RFC 9221 §4): unreliable application data; may be empty.
    case datagram(data: [UInt8])

    /// The length of a stateless reset token (RFC 9000 §10.3).
    public static let resetTokenLength = 16
    /// The length of PATH_CHALLENGE / PATH_RESPONSE data (RFC 9000 §19.17).
    public static let pathDataLength = 8
    /// The largest stream limit MAX_STREAMS and STREAMS_BLOCKED may carry (RFC 9000 §19.11).
    public static let maxStreamLimit: UInt64 = 1 << 60

    // MARK: - Properties

    /// The frame type this frame encodes with by ``encode(into:)``: STREAM always has the LEN bit
    /// and has the OFF bit only when `offset > 0`; DATAGRAM is 0x31 (with length).
    public var type: FrameType { type(lastInPacket: false) }

    /// The frame type as encoded by ``encode(into:lastInPacket:)``.
    public func type(lastInPacket: Bool) -> FrameType {
        switch self {
        case .padding: return .padding
        case .ping: return .ping
        case .ack(let ack): return ack.type
        case .resetStream: return .resetStream
        case .stopSending: return .stopSending
        case .crypto: return .crypto
        case .newToken: return .newToken
        case .stream(_, let offset, _, let fin): return .stream(hasOffset: offset > 0, hasLength: !lastInPacket, fin: fin)
        case .maxData: return .maxData
        case .maxStreamData: return .maxStreamData
        case .maxStreams(let bidirectional, _): return bidirectional ? .maxStreamsBidi : .maxStreamsUni
        case .dataBlocked: return .dataBlocked
        case .streamDataBlocked: return .streamDataBlocked
        case .streamsBlocked(let bidirectional, _): return bidirectional ? .streamsBlockedBidi : .streamsBlockedUni
        case .newConnectionID: return .newConnectionID
        case .retireConnectionID: return .retireConnectionID
        case .pathChallenge: return .pathChallenge
        case .pathResponse: return .pathResponse
        case .connectionClose(let close): return close.type
        case .handshakeDone: return .handshakeDone
        case .datagram: return lastInPacket ? .datagram : .datagramWithLength
        }
    }

    /// Whether a packet carrying this frame must be acknowledged: every frame except PADDING,
    /// ACK and CONNECTION_CLOSE (RFC 9002 §2; RFC 9000 §13.2). DATAGRAM is ack-eliciting
    /// (RFC 9221 §5.2).
    public var isAckEliciting: Bool {
        switch self {
        case .padding, .ack, .connectionClose: return false
        default: return true
        }
    }

    /// Whether this is a probing frame (RFC 9000 §9.1, the "P" of Table 3): PADDING,
    /// NEW_CONNECTION_ID, PATH_CHALLENGE or PATH_RESPONSE.
    public var isProbing: Bool {
        switch self {
        case .padding, .newConnectionID, .pathChallenge, .pathResponse: return true
        default: return false
        }
    }

    /// Whether this frame may appear in a packet of type `packetType` (RFC 9000 §12.4 Table 3;
    /// RFC 9221 §4). See ``FrameType/isAllowed(in:)``.
    public func isAllowed(in packetType: PacketType) -> Bool { type.isAllowed(in: packetType) }

    // MARK: - Encoding

    /// Appends the frame. STREAM and DATAGRAM frames carry an explicit length.
    public func encode(into writer: inout ByteWriter) {
        encode(into: &writer, lastInPacket: false)
    }

    /// Appends the frame; when `lastInPacket` is true, STREAM and DATAGRAM frames omit their
    /// Length field and extend to the end of the packet (RFC 9000 §19.8, RFC 9221 §4).
    ///
    /// - Precondition: integers ≤ 2^62 − 1; NEW_CONNECTION_ID has a 1–20 byte connection ID and a
    ///   16-byte token; PATH_CHALLENGE/PATH_RESPONSE carry 8 bytes; ACK ranges as ``AckFrame`` requires.
    public func encode(into writer: inout ByteWriter, lastInPacket: Bool) {
        switch self {
        case .padding(let count):
            if count > 0 { writer.writeBytes(repeatElement(0 as UInt8, count: count)) }
        case .ping, .handshakeDone:
            writer.writeVarInt(type.rawValue)
        case .ack(let ack):
            ack.encode(into: &writer)
        case .resetStream(let id, let errorCode, let finalSize):
            writer.writeVarInt(FrameType.resetStream.rawValue)
            writer.writeVarInt(id.rawValue)
            writer.writeVarInt(errorCode)
            writer.writeVarInt(finalSize)
        case .stopSending(let id, let errorCode):
            writer.writeVarInt(FrameType.stopSending.rawValue)
            writer.writeVarInt(id.rawValue)
            writer.writeVarInt(errorCode)
        case .crypto(let offset, let data):
            writer.writeVarInt(FrameType.crypto.rawValue)
            writer.writeVarInt(offset)
            writer.writeVarInt(UInt64(data.count))
            writer.writeBytes(data)
        case .newToken(let token):
            writer.writeVarInt(FrameType.newToken.rawValue)
            writer.writeVarInt(UInt64(token.count))
            writer.writeBytes(token)
        case .stream(let id, let offset, let data, let fin):
            writer.writeVarInt(FrameType.stream(hasOffset: offset > 0, hasLength: !lastInPacket, fin: fin).rawValue)
            writer.writeVarInt(id.rawValue)
            if offset > 0 { writer.writeVarInt(offset) }
            if !lastInPacket { writer.writeVarInt(UInt64(data.count)) }
            writer.writeBytes(data)
        case .maxData(let max), .dataBlocked(let max), .retireConnectionID(let max),
             .maxStreams(_, let max), .streamsBlocked(_, let max):
            writer.writeVarInt(type.rawValue)
            writer.writeVarInt(max)
        case .maxStreamData(let id, let value), .streamDataBlocked(let id, let value):
            writer.writeVarInt(type.rawValue)
            writer.writeVarInt(id.rawValue)
            writer.writeVarInt(value)
        case .newConnectionID(let sequence, let retirePriorTo, let connectionID, let resetToken):
            precondition((1...ConnectionID.maxLength).contains(connectionID.count), "NEW_CONNECTION_ID needs a 1-20 byte connection ID")
            precondition(resetToken.count == Self.resetTokenLength, "stateless reset token must be 16 bytes")
            writer.writeVarInt(FrameType.newConnectionID.rawValue)
            writer.writeVarInt(sequence)
            writer.writeVarInt(retirePriorTo)
            writer.writeUInt8(UInt8(connectionID.count))
            writer.writeBytes(connectionID)
            writer.writeBytes(resetToken)
        case .pathChallenge(let data), .pathResponse(let data):
            precondition(data.count == Self.pathDataLength, "path challenge data must be 8 bytes")
            writer.writeVarInt(type.rawValue)
            writer.writeBytes(data)
        case .connectionClose(let close):
            writer.writeVarInt(close.type.rawValue)
            writer.writeVarInt(close.errorCode)
            if !close.isApplication { writer.writeVarInt(close.frameType ?? 0) }
            writer.writeVarInt(UInt64(close.reason.count))
            writer.writeBytes(close.reason)
        case .datagram(let data):
            writer.writeVarInt(lastInPacket ? FrameType.datagram.rawValue : FrameType.datagramWithLength.rawValue)
            if !lastInPacket { writer.writeVarInt(UInt64(data.count)) }
            writer.writeBytes(data)
        }
    }

    /// The exact number of bytes ``encode(into:)`` appends.
    public var encodedLength: Int { encodedLength(lastInPacket: false) }

    /// The exact number of bytes ``encode(into:lastInPacket:)`` appends.
    public func encodedLength(lastInPacket: Bool) -> Int {
        // Every frame type defined so far encodes in one byte.
        switch self {
        case .padding(let count):
            return Swift.max(count, 0)
        case .ping, .handshakeDone:
            return 1
        case .ack(let ack):
            return ack.encodedLength
        case .resetStream(let id, let errorCode, let finalSize):
            return 1 + VarInt.encodedLength(id.rawValue) + VarInt.encodedLength(errorCode) + VarInt.encodedLength(finalSize)
        case .stopSending(let id, let errorCode):
            return 1 + VarInt.encodedLength(id.rawValue) + VarInt.encodedLength(errorCode)
        case .crypto(let offset, let data):
            return 1 + VarInt.encodedLength(offset) + Self.lengthPrefixed(data.count)
        case .newToken(let token):
            return 1 + Self.lengthPrefixed(token.count)
        case .stream(let id, let offset, let data, _):
            return 1 + VarInt.encodedLength(id.rawValue) + (offset > 0 ? VarInt.encodedLength(offset) : 0)
                + (lastInPacket ? data.count : Self.lengthPrefixed(data.count))
        case .maxData(let value), .dataBlocked(let value), .retireConnectionID(let value),
             .maxStreams(_, let value), .streamsBlocked(_, let value):
            return 1 + VarInt.encodedLength(value)
        case .maxStreamData(let id, let value), .streamDataBlocked(let id, let value):
            return 1 + VarInt.encodedLength(id.rawValue) + VarInt.encodedLength(value)
        case .newConnectionID(let sequence, let retirePriorTo, let connectionID, let resetToken):
            return 1 + VarInt.encodedLength(sequence) + VarInt.encodedLength(retirePriorTo) + 1 + connectionID.count + resetToken.count
        case .pathChallenge(let data), .pathResponse(let data):
            return 1 + data.count
        case .connectionClose(let close):
            return 1 + VarInt.encodedLength(close.errorCode) + (close.isApplication ? 0 : VarInt.encodedLength(close.frameType ?? 0))
                + Self.lengthPrefixed(close.reason.count)
        case .datagram(let data):
            return 1 + (lastInPacket ? data.count : Self.lengthPrefixed(data.count))
        }
    }

    /// Bytes taken by a varint length followed by `count` bytes.
    static func lengthPrefixed(_ count: Int) -> Int { VarInt.encodedLength(UInt64(count)) + count }
}
