public import QuiverCore

extension Frame {
    /// Decodes the frames of a decrypted packet payload and checks that each may appear in a
    /// packet of type `packetType`.
    ///
    /// - Parameters:
    ///   - payload: the packet payload after removing packet protection.
    ///   - packetType: the type of the packet it came in.
    /// - Returns: the frames in order; consecutive PADDING bytes become one ``padding(count:)``.
    /// - Throws: `PROTOCOL_VIOLATION` for an empty payload (RFC 9000 §12.4), a frame type that
    ///   is not permitted in `packetType` (§12.4 Table 3, RFC 9221 §4) or a frame type in a
    ///   longer encoding than necessary; `FRAME_ENCODING_ERROR` for unknown or malformed frames.
    ///   The error's `frameType` names the offending frame when known.
    public static func decodeAll(_ payload: [UInt8], packetType: PacketType) throws(QUICError) -> [Frame] {
        guard !payload.isEmpty else {
            throw QUICError(.protocolViolation, "packet contains no frames")
        }
        var reader = ByteReader(payload)
        var frames: [Frame] = []
        frames.reserveCapacity(4)
        while !reader.isAtEnd {
            frames.append(try decodeNext(from: &reader, in: packetType))
        }
        return frames
    }

    /// Decodes the next frame of a packet payload and checks that it may appear in a packet of
    /// type `packetType`: ``decodeAll(_:packetType:)`` one frame at a time, for a receiver
    /// that handles each frame as it is decoded. A STREAM frame's data is a slice of the
    /// reader's bytes.
    ///
    /// - Throws: as ``decodeAll(_:packetType:)``, except for the empty payload, which the
    ///   caller checks.
    public static func decodeNext(from reader: inout ByteReader, in packetType: PacketType) throws(QUICError) -> Frame {
        let type = try readType(from: &reader)
        guard type.isAllowed(in: packetType) else {
            throw QUICError(.protocolViolation, "\(type.name) frame not allowed in \(packetType) packet", frameType: type.rawValue)
        }
        return try decodeBody(type: type, from: &reader)
    }

    /// Decodes one frame from `reader`, without checking packet type permissions.
    ///
    /// A STREAM frame without the LEN bit and a DATAGRAM frame of type 0x30 extend to the end of
    /// the reader, which must therefore end where the packet ends. A PADDING byte is decoded
    /// together with all PADDING bytes that follow it.
    ///
    /// - Throws: `FRAME_ENCODING_ERROR` for an unknown frame type (RFC 9000 §12.4) or a malformed
    ///   or truncated frame; `PROTOCOL_VIOLATION` for a frame type not in its shortest encoding.
    public static func decode(from reader: inout ByteReader) throws(QUICError) -> Frame {
        let type = try readType(from: &reader)
        return try decodeBody(type: type, from: &reader)
    }

    /// Reads a frame type, which must be known and in its shortest encoding (RFC 9000 §12.4).
    static func readType(from reader: inout ByteReader) throws(QUICError) -> FrameType {
        let start = reader.offset
        let raw: UInt64
        do {
            raw = try reader.readVarInt()
        } catch {
            throw QUICError.frameEncoding(error)
        }
        guard reader.offset - start == VarInt.encodedLength(raw) else {
            throw QUICError(.protocolViolation, "frame type 0x\(String(raw, radix: 16)) not in its shortest encoding", frameType: raw)
        }
        let type = FrameType(rawValue: raw)
        guard type.isKnown else {
            throw QUICError(.frameEncodingError, "unknown frame type 0x\(String(raw, radix: 16))", frameType: raw)
        }
        return type
    }

    /// Decodes the fields of a frame whose (known) type has been read.
    static func decodeBody(type: FrameType, from reader: inout ByteReader) throws(QUICError) -> Frame {
        do {
            return try decodeFields(type: type, from: &reader)
        } catch {
            throw QUICError(.frameEncodingError, "\(type.name): \(error.reason)", frameType: type.rawValue)
        }
    }

    /// The per-type decoders. Every RFC 9000 §19 rule whose violation is a FRAME_ENCODING_ERROR is
    /// checked here.
    private static func decodeFields(type: FrameType, from reader: inout ByteReader) throws(DecodeError) -> Frame {
        switch type.rawValue {
        case 0x00:
            var count = 1
            while reader.peekUInt8() == 0 {
                _ = try reader.readUInt8()
                count += 1
            }
            return .padding(count: count)
        case 0x01:
            return .ping
        case 0x02, 0x03:
            return .ack(try AckFrame.decodeBody(from: &reader, withECN: type.rawValue == 0x03))
        case 0x04:
            return .resetStream(id: StreamID(rawValue: try reader.readVarInt()), errorCode: try reader.readVarInt(),
                                finalSize: try reader.readVarInt())
        case 0x05:
            return .stopSending(id: StreamID(rawValue: try reader.readVarInt()), errorCode: try reader.readVarInt())
        case 0x06:
            let offset = try reader.readVarInt()
            let data = try readVarIntPrefixedBytes(from: &reader)
            try checkStreamEnd(offset: offset, length: data.count)
            return .crypto(offset: offset, data: data)
        case 0x07:
            let token = try readVarIntPrefixedBytes(from: &reader)
            // RFC 9000 §19.7: an empty token is a FRAME_ENCODING_ERROR.
            guard !token.isEmpty else { throw DecodeError(.invalidValue, "empty token") }
            return .newToken(token)
        case 0x08...0x0f:
            let id = StreamID(rawValue: try reader.readVarInt())
            let offset = type.rawValue & FrameType.streamOffsetBit != 0 ? try reader.readVarInt() : 0
            let data: ArraySlice<UInt8>
            if type.rawValue & FrameType.streamLengthBit != 0 {
                data = try reader.readSlice(try readLength(from: &reader))
            } else {
                data = try reader.readSlice(reader.remaining)
            }
            // RFC 9000 §19.8: offset + length must not exceed 2^62 − 1.
            try checkStreamEnd(offset: offset, length: data.count)
            return .stream(id: id, offset: offset, data: data, fin: type.rawValue & FrameType.streamFinBit != 0)
        case 0x10:
            return .maxData(try reader.readVarInt())
        case 0x11:
            return .maxStreamData(id: StreamID(rawValue: try reader.readVarInt()), max: try reader.readVarInt())
        case 0x12, 0x13:
            // RFC 9000 §19.11: a limit above 2^60 is a FRAME_ENCODING_ERROR.
            return .maxStreams(bidirectional: type.rawValue == 0x12, max: try readStreamLimit(from: &reader))
        case 0x14:
            return .dataBlocked(try reader.readVarInt())
        case 0x15:
            return .streamDataBlocked(id: StreamID(rawValue: try reader.readVarInt()), limit: try reader.readVarInt())
        case 0x16, 0x17:
            // RFC 9000 §19.14: above 2^60 is STREAM_LIMIT_ERROR or FRAME_ENCODING_ERROR; we use the latter.
            return .streamsBlocked(bidirectional: type.rawValue == 0x16, limit: try readStreamLimit(from: &reader))
        case 0x18:
            let sequence = try reader.readVarInt()
            let retirePriorTo = try reader.readVarInt()
            let length = Int(try reader.readUInt8())
            // RFC 9000 §19.15: lengths below 1 or above 20 are a FRAME_ENCODING_ERROR.
            guard (1...ConnectionID.maxLength).contains(length) else {
                throw DecodeError(.invalidValue, "connection ID length \(length) outside 1...20")
            }
            let connectionID = try reader.readBytes(length)
            let resetToken = try reader.readBytes(resetTokenLength)
            // RFC 9000 §19.15: Retire Prior To greater than Sequence Number is a FRAME_ENCODING_ERROR.
            guard retirePriorTo <= sequence else {
                throw DecodeError(.invalidValue, "retire prior to \(retirePriorTo) exceeds sequence number \(sequence)")
            }
            return .newConnectionID(sequence: sequence, retirePriorTo: retirePriorTo, connectionID: connectionID, resetToken: resetToken)
        case 0x19:
            return .retireConnectionID(sequence: try reader.readVarInt())
        case 0x1a:
            return .pathChallenge(try reader.readBytes(pathDataLength))
        case 0x1b:
            return .pathResponse(try reader.readBytes(pathDataLength))
        case 0x1c, 0x1d:
            let isApplication = type.rawValue == 0x1d
            let errorCode = try reader.readVarInt()
            let frameType = isApplication ? nil : try reader.readVarInt()
            let reason = try readVarIntPrefixedBytes(from: &reader)
            return .connectionClose(ConnectionClose(isApplication: isApplication, errorCode: errorCode, frameType: frameType, reason: reason))
        case 0x1e:
            return .handshakeDone
        case 0x30:
            return .datagram(data: try reader.readBytes(reader.remaining))
        case 0x31:
            return .datagram(data: try readVarIntPrefixedBytes(from: &reader))
        default:
            throw DecodeError(.invalidValue, "unknown frame type")
        }
    }

    /// Reads a varint length and that many bytes, refusing lengths beyond the input.
    private static func readVarIntPrefixedBytes(from reader: inout ByteReader) throws(DecodeError) -> [UInt8] {
        try reader.readBytes(try readLength(from: &reader))
    }

    /// Reads a varint length, refusing lengths beyond the input.
    private static func readLength(from reader: inout ByteReader) throws(DecodeError) -> Int {
        let length = try reader.readVarInt()
        guard length <= UInt64(reader.remaining) else {
            throw DecodeError(.truncated, "length \(length) exceeds the \(reader.remaining) bytes left")
        }
        return Int(length)
    }

    /// The largest offset of a STREAM or CRYPTO frame, offset + length, must be ≤ 2^62 − 1
    /// (RFC 9000 §19.6, §19.8).
    private static func checkStreamEnd(offset: UInt64, length: Int) throws(DecodeError) {
        // offset ≤ 2^62 − 1 and length < 2^62, so the sum cannot overflow.
        guard offset + UInt64(length) <= VarInt.max else {
            throw DecodeError(.invalidValue, "offset \(offset) + length \(length) exceeds 2^62 - 1")
        }
    }

    private static func readStreamLimit(from reader: inout ByteReader) throws(DecodeError) -> UInt64 {
        let limit = try reader.readVarInt()
        guard limit <= maxStreamLimit else { throw DecodeError(.invalidValue, "stream limit \(limit) exceeds 2^60") }
        return limit
    }
}
