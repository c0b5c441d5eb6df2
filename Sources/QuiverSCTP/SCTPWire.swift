import QuiverCore

/// Why a packet was not a well-formed SCTP packet. A receiver drops such packets silently
/// (RFC 9260 §6.8 for the checksum; a chunk that overruns its packet cannot be processed).
public struct SCTPWireError: Error, Hashable, Sendable, CustomStringConvertible {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { "malformed SCTP packet: \(reason)" }
}

/// Serial-number arithmetic on TSNs and SSNs (RFC 9260 §1.6, RFC 1982 with `SERIAL_BITS` 32).
@usableFromInline enum Serial {
    @inlinable static func less(_ a: UInt32, _ b: UInt32) -> Bool { Int32(bitPattern: a &- b) < 0 }
    @inlinable static func lessOrEqual(_ a: UInt32, _ b: UInt32) -> Bool { Int32(bitPattern: a &- b) <= 0 }
}

/// Chunk types of RFC 9260 §3.2 (and the extensions this module recognises).
public enum SCTPChunkType {
    public static let data: UInt8 = 0
    public static let initiation: UInt8 = 1
    public static let initiationAck: UInt8 = 2
    public static let sack: UInt8 = 3
    public static let heartbeat: UInt8 = 4
    public static let heartbeatAck: UInt8 = 5
    public static let abort: UInt8 = 6
    public static let shutdown: UInt8 = 7
    public static let shutdownAck: UInt8 = 8
    public static let error: UInt8 = 9
    public static let cookieEcho: UInt8 = 10
    public static let cookieAck: UInt8 = 11
    public static let shutdownComplete: UInt8 = 14
    /// AUTH (RFC 4895 §5.1).
    public static let auth: UInt8 = 15
    /// RE-CONFIG (RFC 6525 §3.1).
    public static let reconfig: UInt8 = 130
    /// FORWARD TSN (RFC 3758 §3.2).
    public static let forwardTSN: UInt8 = 192
    /// I-DATA and I-FORWARD-TSN (RFC 8260 §2.1, §2.3.1).
    public static let iData: UInt8 = 64
    public static let iForwardTSN: UInt8 = 194
}

/// A TLV parameter of INIT and INIT ACK (RFC 9260 §3.2.1), or of HEARTBEAT.
public struct SCTPParameter: Hashable, Sendable {
    public var type: UInt16
    public var value: [UInt8]
    public init(type: UInt16, value: [UInt8]) {
        self.type = type
        self.value = value
    }

    public static let heartbeatInfo: UInt16 = 1
    public static let ipv4Address: UInt16 = 5
    public static let ipv6Address: UInt16 = 6
    public static let stateCookie: UInt16 = 7
    public static let unrecognizedParameter: UInt16 = 8
    public static let cookiePreservative: UInt16 = 9
    public static let supportedAddressTypes: UInt16 = 12
    /// Supported Extensions (RFC 5061 §4.2.7): the chunk types of extensions the sender speaks.
    public static let supportedExtensions: UInt16 = 0x8008
    /// Forward-TSN-Supported (RFC 3758 §3.1): the sender speaks PR-SCTP. No value.
    public static let forwardTSNSupported: UInt16 = 0xC000
    /// SCTP-AUTH's parameters (RFC 4895 §3).
    public static let random: UInt16 = 0x8002
    public static let chunkList: UInt16 = 0x8003
    public static let hmacAlgorithms: UInt16 = 0x8004
    /// RE-CONFIG's parameters (RFC 6525 §4).
    public static let outgoingSSNResetRequest: UInt16 = 13
    public static let incomingSSNResetRequest: UInt16 = 14
    public static let ssnTSNResetRequest: UInt16 = 15
    public static let reconfigurationResponse: UInt16 = 16
    public static let addOutgoingStreamsRequest: UInt16 = 17
    public static let addIncomingStreamsRequest: UInt16 = 18

    /// What a receiver does with a parameter it does not recognise: the two high bits of
    /// its type (RFC 9260 §3.2.1). `skip` continues with the next parameter; `report` adds it
    /// to an Unrecognized Parameter (INIT ACK) or an ERROR chunk.
    var unrecognizedAction: (skip: Bool, report: Bool) { (type & 0x8000 != 0, type & 0x4000 != 0) }

    /// The parameter as it appears on the wire, without padding.
    var encoded: [UInt8] {
        var writer = ByteWriter(capacity: 4 + value.count)
        writer.writeUInt16(type)
        writer.writeUInt16(UInt16(4 + value.count))
        writer.writeBytes(value)
        return writer.bytes
    }
}

/// An error cause of ERROR and ABORT chunks (RFC 9260 §3.3.10).
public struct SCTPErrorCause: Hashable, Sendable, CustomStringConvertible {
    public var code: UInt16
    public var info: [UInt8]
    public init(code: UInt16, info: [UInt8] = []) {
        self.code = code
        self.info = info
    }

    public static let invalidStreamIdentifier: UInt16 = 1
    public static let missingMandatoryParameter: UInt16 = 2
    public static let staleCookie: UInt16 = 3
    public static let outOfResource: UInt16 = 4
    public static let unrecognizedChunkType: UInt16 = 6
    public static let invalidMandatoryParameter: UInt16 = 7
    public static let unrecognizedParameters: UInt16 = 8
    public static let noUserData: UInt16 = 9
    public static let cookieWhileShuttingDown: UInt16 = 10
    public static let userInitiatedAbort: UInt16 = 12
    public static let protocolViolation: UInt16 = 13
    /// RFC 4895 §4.1.
    public static let unsupportedHMACIdentifier: UInt16 = 0x0105

    public var description: String {
        let names: [UInt16: String] = [
            1: "invalid stream identifier", 2: "missing mandatory parameter", 3: "stale cookie",
            4: "out of resource", 5: "unresolvable address", 6: "unrecognized chunk type",
            7: "invalid mandatory parameter", 8: "unrecognized parameters", 9: "no user data",
            10: "cookie received while shutting down", 11: "restart with new addresses",
            12: "user-initiated abort", 13: "protocol violation",
        ]
        let name = names[code] ?? "cause \(code)"
        if code == Self.userInitiatedAbort || code == Self.protocolViolation,
           let text = String(validating: info, as: UTF8.self), !text.isEmpty {
            return "\(name): \(text)"
        }
        return name
    }
}

/// A DATA chunk (RFC 9260 §3.3.1). The payload shares the received packet's storage.
public struct SCTPDataChunk: Hashable, Sendable {
    public var tsn: UInt32
    public var stream: UInt16
    public var ssn: UInt16
    public var ppid: UInt32
    public var unordered: Bool
    public var beginning: Bool
    public var ending: Bool
    /// The I bit (RFC 7053): the sender asks for a SACK without delay.
    public var immediate: Bool
    public var payload: ArraySlice<UInt8>

    public init(tsn: UInt32, stream: UInt16, ssn: UInt16, ppid: UInt32, unordered: Bool = false,
                beginning: Bool = true, ending: Bool = true, immediate: Bool = false, payload: ArraySlice<UInt8>) {
        self.tsn = tsn
        self.stream = stream
        self.ssn = ssn
        self.ppid = ppid
        self.unordered = unordered
        self.beginning = beginning
        self.ending = ending
        self.immediate = immediate
        self.payload = payload
    }

    static let headerSize = 16
    var flags: UInt8 {
        (immediate ? 8 : 0) | (unordered ? 4 : 0) | (beginning ? 2 : 0) | (ending ? 1 : 0)
    }
}

/// An I-DATA chunk (RFC 8260 §2.1): DATA with a Message Identifier and a Fragment Sequence
/// Number instead of the SSN, so messages of different streams may interleave. On the wire the
/// first fragment carries the PPID and the others their FSN in the same field: `ppid` is 0
/// unless `beginning`, `fsn` 0 when it is.
public struct SCTPIDataChunk: Hashable, Sendable {
    public var tsn: UInt32
    public var stream: UInt16
    public var messageID: UInt32
    public var ppid: UInt32
    public var fsn: UInt32
    public var unordered: Bool
    public var beginning: Bool
    public var ending: Bool
    public var immediate: Bool
    public var payload: ArraySlice<UInt8>

    public init(tsn: UInt32, stream: UInt16, messageID: UInt32, ppid: UInt32 = 0, fsn: UInt32 = 0, unordered: Bool = false,
                beginning: Bool = true, ending: Bool = true, immediate: Bool = false, payload: ArraySlice<UInt8>) {
        self.tsn = tsn
        self.stream = stream
        self.messageID = messageID
        self.ppid = beginning ? ppid : 0
        self.fsn = beginning ? 0 : fsn
        self.unordered = unordered
        self.beginning = beginning
        self.ending = ending
        self.immediate = immediate
        self.payload = payload
    }

    static let headerSize = 20
    var flags: UInt8 {
        (immediate ? 8 : 0) | (unordered ? 4 : 0) | (beginning ? 2 : 0) | (ending ? 1 : 0)
    }
}

/// A stream of an I-FORWARD-TSN (RFC 8260 §2.3.1): the highest Message Identifier skipped on
/// it, of its ordered or its unordered messages.
public struct SCTPIForwardTSNStream: Hashable, Sendable {
    public var stream: UInt16
    public var unordered: Bool
    public var messageID: UInt32
    public init(stream: UInt16, unordered: Bool, messageID: UInt32) {
        self.stream = stream
        self.unordered = unordered
        self.messageID = messageID
    }
}

/// INIT and INIT ACK (RFC 9260 §3.3.2, §3.3.3).
public struct SCTPInitChunk: Hashable, Sendable {
    public var initiateTag: UInt32
    public var advertisedWindow: UInt32
    public var outboundStreams: UInt16
    public var inboundStreams: UInt16
    public var initialTSN: UInt32
    public var parameters: [SCTPParameter]

    public init(initiateTag: UInt32, advertisedWindow: UInt32, outboundStreams: UInt16, inboundStreams: UInt16,
                initialTSN: UInt32, parameters: [SCTPParameter] = []) {
        self.initiateTag = initiateTag
        self.advertisedWindow = advertisedWindow
        self.outboundStreams = outboundStreams
        self.inboundStreams = inboundStreams
        self.initialTSN = initialTSN
        self.parameters = parameters
    }
}

/// SACK (RFC 9260 §3.3.4). Gap blocks are offsets from the cumulative TSN.
public struct SCTPSackChunk: Hashable, Sendable {
    public var cumulativeTSN: UInt32
    public var advertisedWindow: UInt32
    public var gapBlocks: [ClosedRange<UInt16>]
    public var duplicates: [UInt32]

    public init(cumulativeTSN: UInt32, advertisedWindow: UInt32, gapBlocks: [ClosedRange<UInt16>] = [],
                duplicates: [UInt32] = []) {
        self.cumulativeTSN = cumulativeTSN
        self.advertisedWindow = advertisedWindow
        self.gapBlocks = gapBlocks
        self.duplicates = duplicates
    }
}

/// A stream of a FORWARD TSN (RFC 3758 §3.2): the highest SSN of the ordered messages
/// skipped on it.
public struct SCTPForwardTSNStream: Hashable, Sendable {
    public var stream: UInt16
    public var ssn: UInt16
    public init(stream: UInt16, ssn: UInt16) {
        self.stream = stream
        self.ssn = ssn
    }
}

/// One chunk of an SCTP packet.
public enum SCTPChunk: Hashable, Sendable {
    case data(SCTPDataChunk)
    case initiation(SCTPInitChunk)
    case initiationAck(SCTPInitChunk)
    case sack(SCTPSackChunk)
    /// The Heartbeat Info parameter's value, echoed by the HEARTBEAT ACK.
    case heartbeat(info: [UInt8])
    case heartbeatAck(info: [UInt8])
    /// `tagReflected`: the T bit (the packet carries the receiver's own tag, §8.5.1).
    case abort(tagReflected: Bool, causes: [SCTPErrorCause])
    case shutdown(cumulativeTSN: UInt32)
    case shutdownAck
    case error(causes: [SCTPErrorCause])
    case cookieEcho(cookie: [UInt8])
    case cookieAck
    case shutdownComplete(tagReflected: Bool)
    /// RE-CONFIG (RFC 6525): one or two request or response parameters.
    case reconfig(parameters: [SCTPParameter])
    /// FORWARD TSN (RFC 3758 §3.2): the receiver takes every TSN up to `newCumulativeTSN` as
    /// received, and the ordered `streams` as past the SSNs listed.
    case forwardTSN(newCumulativeTSN: UInt32, streams: [SCTPForwardTSNStream])
    /// I-DATA (RFC 8260).
    case iData(SCTPIDataChunk)
    /// I-FORWARD-TSN (RFC 8260 §2.3.1): FORWARD TSN for associations that use I-DATA.
    case iForwardTSN(newCumulativeTSN: UInt32, streams: [SCTPIForwardTSNStream])
    /// AUTH (RFC 4895): the chunks after it in the packet are covered by `hmac`.
    case auth(keyID: UInt16, hmacID: UInt16, hmac: [UInt8])
    /// A chunk type this module does not implement, kept whole for the §3.2 rules.
    case unrecognized(type: UInt8, flags: UInt8, value: [UInt8])

    var type: UInt8 {
        switch self {
        case .data: SCTPChunkType.data
        case .initiation: SCTPChunkType.initiation
        case .initiationAck: SCTPChunkType.initiationAck
        case .sack: SCTPChunkType.sack
        case .heartbeat: SCTPChunkType.heartbeat
        case .heartbeatAck: SCTPChunkType.heartbeatAck
        case .abort: SCTPChunkType.abort
        case .shutdown: SCTPChunkType.shutdown
        case .shutdownAck: SCTPChunkType.shutdownAck
        case .error: SCTPChunkType.error
        case .cookieEcho: SCTPChunkType.cookieEcho
        case .cookieAck: SCTPChunkType.cookieAck
        case .shutdownComplete: SCTPChunkType.shutdownComplete
        case .reconfig: SCTPChunkType.reconfig
        case .forwardTSN: SCTPChunkType.forwardTSN
        case .iData: SCTPChunkType.iData
        case .iForwardTSN: SCTPChunkType.iForwardTSN
        case .auth: SCTPChunkType.auth
        case .unrecognized(let type, _, _): type
        }
    }

    /// Appends the chunk, padded to four bytes. Its length counts the padding of every TLV but
    /// the last (RFC 9260 §3.2).
    func encode(into writer: inout ByteWriter) {
        let start = writer.count
        var lastPadding = 0
        writer.writeUInt8(type)
        var flags: UInt8 = 0
        writer.writeUInt8(0)
        writer.writeUInt16(0)  // length, patched below
        switch self {
        case .data(let chunk):
            flags = chunk.flags
            writer.writeUInt32(chunk.tsn)
            writer.writeUInt16(chunk.stream)
            writer.writeUInt16(chunk.ssn)
            writer.writeUInt32(chunk.ppid)
            writer.writeBytes(chunk.payload)
        case .initiation(let chunk), .initiationAck(let chunk):
            writer.writeUInt32(chunk.initiateTag)
            writer.writeUInt32(chunk.advertisedWindow)
            writer.writeUInt16(chunk.outboundStreams)
            writer.writeUInt16(chunk.inboundStreams)
            writer.writeUInt32(chunk.initialTSN)
            for parameter in chunk.parameters { lastPadding = Self.writeTLV(parameter.type, parameter.value, into: &writer) }
        case .sack(let chunk):
            writer.writeUInt32(chunk.cumulativeTSN)
            writer.writeUInt32(chunk.advertisedWindow)
            writer.writeUInt16(UInt16(chunk.gapBlocks.count))
            writer.writeUInt16(UInt16(chunk.duplicates.count))
            for block in chunk.gapBlocks {
                writer.writeUInt16(block.lowerBound)
                writer.writeUInt16(block.upperBound)
            }
            for tsn in chunk.duplicates { writer.writeUInt32(tsn) }
        case .heartbeat(let info), .heartbeatAck(let info):
            lastPadding = Self.writeTLV(SCTPParameter.heartbeatInfo, info, into: &writer)
        case .abort(let reflected, let causes):
            flags = reflected ? 1 : 0
            for cause in causes { lastPadding = Self.writeTLV(cause.code, cause.info, into: &writer) }
        case .shutdown(let tsn):
            writer.writeUInt32(tsn)
        case .error(let causes):
            for cause in causes { lastPadding = Self.writeTLV(cause.code, cause.info, into: &writer) }
        case .cookieEcho(let cookie):
            writer.writeBytes(cookie)
        case .shutdownComplete(let reflected):
            flags = reflected ? 1 : 0
        case .reconfig(let parameters):
            for parameter in parameters { lastPadding = Self.writeTLV(parameter.type, parameter.value, into: &writer) }
        case .forwardTSN(let cumulative, let streams):
            writer.writeUInt32(cumulative)
            for entry in streams {
                writer.writeUInt16(entry.stream)
                writer.writeUInt16(entry.ssn)
            }
        case .iData(let chunk):
            flags = chunk.flags
            writer.writeUInt32(chunk.tsn)
            writer.writeUInt16(chunk.stream)
            writer.writeUInt16(0)
            writer.writeUInt32(chunk.messageID)
            writer.writeUInt32(chunk.beginning ? chunk.ppid : chunk.fsn)
            writer.writeBytes(chunk.payload)
        case .iForwardTSN(let cumulative, let streams):
            writer.writeUInt32(cumulative)
            for entry in streams {
                writer.writeUInt16(entry.stream)
                writer.writeUInt16(entry.unordered ? 1 : 0)
                writer.writeUInt32(entry.messageID)
            }
        case .auth(let keyID, let hmacID, let hmac):
            writer.writeUInt16(keyID)
            writer.writeUInt16(hmacID)
            writer.writeBytes(hmac)
        case .unrecognized(_, let chunkFlags, let value):
            flags = chunkFlags
            writer.writeBytes(value)
        case .shutdownAck, .cookieAck:
            break
        }
        let length = writer.count - start - lastPadding
        assert(length <= 0xFFFF, "an SCTP chunk of \(length) bytes")
        writer.bytes[start + 1] = flags
        writer.bytes[start + 2] = UInt8(truncatingIfNeeded: length >> 8)
        writer.bytes[start + 3] = UInt8(truncatingIfNeeded: length)
        writer.writeZeros((4 - (writer.count - start) % 4) % 4)
    }

    /// A TLV (parameter or error cause), its value padded to four bytes; returns the padding.
    @discardableResult
    private static func writeTLV(_ type: UInt16, _ value: [UInt8], into writer: inout ByteWriter) -> Int {
        writer.writeUInt16(type)
        writer.writeUInt16(UInt16(4 + value.count))
        writer.writeBytes(value)
        let padding = (4 - value.count % 4) % 4
        writer.writeZeros(padding)
        return padding
    }
}

/// An SCTP packet: the common header (RFC 9260 §3.1) and its chunks.
public struct SCTPPacket: Hashable, Sendable {
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    public var verificationTag: UInt32
    public var chunks: [SCTPChunk]

    public init(sourcePort: UInt16, destinationPort: UInt16, verificationTag: UInt32, chunks: [SCTPChunk]) {
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.verificationTag = verificationTag
        self.chunks = chunks
    }

    static let headerSize = 12

    /// The packet with its CRC32c filled in.
    public func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: 1500)
        writer.writeUInt16(sourcePort)
        writer.writeUInt16(destinationPort)
        writer.writeUInt32(verificationTag)
        writer.writeUInt32(0)
        for chunk in chunks { chunk.encode(into: &writer) }
        var bytes = writer.bytes
        Self.seal(&bytes)
        return bytes
    }

    /// Writes the CRC32c of a packet whose checksum field is zero, least significant byte
    /// first (RFC 9260 Appendix A, as every implementation does).
    static func seal(_ bytes: inout [UInt8]) {
        let crc = CRC32c.checksum(bytes)
        bytes[8] = UInt8(crc & 0xFF)
        bytes[9] = UInt8((crc >> 8) & 0xFF)
        bytes[10] = UInt8((crc >> 16) & 0xFF)
        bytes[11] = UInt8(crc >> 24)
    }

    /// Whether the packet's checksum is right (RFC 9260 §6.8).
    public static func checksumIsValid(_ bytes: [UInt8]) -> Bool {
        guard bytes.count >= headerSize else { return false }
        let stored = UInt32(bytes[8]) | UInt32(bytes[9]) << 8 | UInt32(bytes[10]) << 16 | UInt32(bytes[11]) << 24
        let crc = bytes.withUnsafeBufferPointer { buffer in
            var crc = CRC32c.update(0xFFFF_FFFF, UnsafeBufferPointer(rebasing: buffer[0..<8]))
            let zeros: [UInt8] = [0, 0, 0, 0]
            crc = zeros.withUnsafeBufferPointer { CRC32c.update(crc, $0) }
            return ~CRC32c.update(crc, UnsafeBufferPointer(rebasing: buffer[12...]))
        }
        return crc == stored
    }

    /// Where chunk `index` of a well-formed packet starts (the packet parsed with ``parse(_:)``).
    static func chunkOffset(_ bytes: [UInt8], index: Int) -> Int {
        var offset = headerSize
        for _ in 0..<index {
            let length = Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
            offset += (length + 3) & ~3
        }
        return offset
    }

    /// Parses a packet whose checksum the caller verified. Every chunk must fit its packet and
    /// be at least as long as its fixed fields; unknown chunk types are kept as
    /// ``SCTPChunk/unrecognized(type:flags:value:)``.
    public static func parse(_ bytes: [UInt8]) throws(SCTPWireError) -> SCTPPacket {
        guard bytes.count >= headerSize else { throw SCTPWireError("\(bytes.count) bytes, shorter than the common header") }
        var packet = SCTPPacket(
            sourcePort: UInt16(bytes[0]) << 8 | UInt16(bytes[1]),
            destinationPort: UInt16(bytes[2]) << 8 | UInt16(bytes[3]),
            verificationTag: UInt32(bytes[4]) << 24 | UInt32(bytes[5]) << 16 | UInt32(bytes[6]) << 8 | UInt32(bytes[7]),
            chunks: [])
        var offset = headerSize
        while offset < bytes.count {
            guard bytes.count - offset >= 4 else { throw SCTPWireError("a truncated chunk header") }
            let length = Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
            guard length >= 4, offset + length <= bytes.count else {
                throw SCTPWireError("chunk type \(bytes[offset]) of length \(length) at \(offset) in \(bytes.count) bytes")
            }
            do {
                packet.chunks.append(try parseChunk(bytes, offset: offset, length: length))
            } catch {
                throw SCTPWireError("chunk type \(bytes[offset]): \(error.reason)")
            }
            offset += (length + 3) & ~3
        }
        return packet
    }

    private static func parseChunk(_ bytes: [UInt8], offset: Int, length: Int) throws(DecodeError) -> SCTPChunk {
        let type = bytes[offset]
        let flags = bytes[offset + 1]
        var reader = ByteReader(bytes, in: offset + 4..<offset + length)
        switch type {
        case SCTPChunkType.data:
            let tsn = try reader.readUInt32()
            let stream = try reader.readUInt16()
            let ssn = try reader.readUInt16()
            let ppid = try reader.readUInt32()
            return .data(SCTPDataChunk(
                tsn: tsn, stream: stream, ssn: ssn, ppid: ppid, unordered: flags & 4 != 0,
                beginning: flags & 2 != 0, ending: flags & 1 != 0, immediate: flags & 8 != 0,
                payload: try reader.readSlice(reader.remaining)))
        case SCTPChunkType.initiation, SCTPChunkType.initiationAck:
            let chunk = SCTPInitChunk(
                initiateTag: try reader.readUInt32(), advertisedWindow: try reader.readUInt32(),
                outboundStreams: try reader.readUInt16(), inboundStreams: try reader.readUInt16(),
                initialTSN: try reader.readUInt32(), parameters: try parseTLVs(&reader).map { SCTPParameter(type: $0, value: $1) })
            return type == SCTPChunkType.initiation ? .initiation(chunk) : .initiationAck(chunk)
        case SCTPChunkType.sack:
            let cumulative = try reader.readUInt32()
            let window = try reader.readUInt32()
            let gapCount = Int(try reader.readUInt16())
            let duplicateCount = Int(try reader.readUInt16())
            guard reader.remaining >= 4 * (gapCount + duplicateCount) else {
                throw DecodeError(.truncated, "\(gapCount) gap blocks and \(duplicateCount) duplicates")
            }
            var gaps: [ClosedRange<UInt16>] = []
            gaps.reserveCapacity(gapCount)
            for _ in 0..<gapCount {
                let start = try reader.readUInt16()
                let end = try reader.readUInt16()
                guard start <= end else { throw DecodeError(.invalidValue, "gap block \(start)–\(end)") }
                gaps.append(start...end)
            }
            var duplicates: [UInt32] = []
            duplicates.reserveCapacity(duplicateCount)
            for _ in 0..<duplicateCount { duplicates.append(try reader.readUInt32()) }
            return .sack(SCTPSackChunk(cumulativeTSN: cumulative, advertisedWindow: window, gapBlocks: gaps, duplicates: duplicates))
        case SCTPChunkType.heartbeat, SCTPChunkType.heartbeatAck:
            let tlvs = try parseTLVs(&reader)
            guard let info = tlvs.first(where: { $0.0 == SCTPParameter.heartbeatInfo }) else {
                throw DecodeError(.invalidValue, "no Heartbeat Info parameter")
            }
            return type == SCTPChunkType.heartbeat ? .heartbeat(info: info.1) : .heartbeatAck(info: info.1)
        case SCTPChunkType.abort:
            return .abort(tagReflected: flags & 1 != 0, causes: try parseTLVs(&reader).map { SCTPErrorCause(code: $0, info: $1) })
        case SCTPChunkType.shutdown:
            return .shutdown(cumulativeTSN: try reader.readUInt32())
        case SCTPChunkType.shutdownAck:
            return .shutdownAck
        case SCTPChunkType.error:
            return .error(causes: try parseTLVs(&reader).map { SCTPErrorCause(code: $0, info: $1) })
        case SCTPChunkType.cookieEcho:
            return .cookieEcho(cookie: try reader.readBytes(reader.remaining))
        case SCTPChunkType.cookieAck:
            return .cookieAck
        case SCTPChunkType.shutdownComplete:
            return .shutdownComplete(tagReflected: flags & 1 != 0)
        case SCTPChunkType.reconfig:
            return .reconfig(parameters: try parseTLVs(&reader).map { SCTPParameter(type: $0, value: $1) })
        case SCTPChunkType.forwardTSN:
            let cumulative = try reader.readUInt32()
            // Bytes after the last whole stream entry are ignored, as after other fixed fields.
            var streams: [SCTPForwardTSNStream] = []
            streams.reserveCapacity(reader.remaining / 4)
            while reader.remaining >= 4 {
                streams.append(SCTPForwardTSNStream(stream: try reader.readUInt16(), ssn: try reader.readUInt16()))
            }
            return .forwardTSN(newCumulativeTSN: cumulative, streams: streams)
        case SCTPChunkType.iData:
            let tsn = try reader.readUInt32()
            let stream = try reader.readUInt16()
            _ = try reader.readUInt16()
            let messageID = try reader.readUInt32()
            let field = try reader.readUInt32()
            return .iData(SCTPIDataChunk(
                tsn: tsn, stream: stream, messageID: messageID, ppid: field, fsn: field, unordered: flags & 4 != 0,
                beginning: flags & 2 != 0, ending: flags & 1 != 0, immediate: flags & 8 != 0,
                payload: try reader.readSlice(reader.remaining)))
        case SCTPChunkType.iForwardTSN:
            let cumulative = try reader.readUInt32()
            var streams: [SCTPIForwardTSNStream] = []
            streams.reserveCapacity(reader.remaining / 8)
            while reader.remaining >= 8 {
                let stream = try reader.readUInt16()
                let unordered = try reader.readUInt16() & 1 != 0
                streams.append(SCTPIForwardTSNStream(stream: stream, unordered: unordered, messageID: try reader.readUInt32()))
            }
            return .iForwardTSN(newCumulativeTSN: cumulative, streams: streams)
        case SCTPChunkType.auth:
            return .auth(keyID: try reader.readUInt16(), hmacID: try reader.readUInt16(), hmac: try reader.readBytes(reader.remaining))
        default:
            return .unrecognized(type: type, flags: flags, value: try reader.readBytes(reader.remaining))
        }
    }

    /// TLVs (parameters or error causes) to the end of the chunk; the last one's padding may
    /// be absent (it is the chunk's, excluded from the chunk length).
    private static func parseTLVs(_ reader: inout ByteReader) throws(DecodeError) -> [(UInt16, [UInt8])] {
        var result: [(UInt16, [UInt8])] = []
        while !reader.isAtEnd {
            let type = try reader.readUInt16()
            let length = Int(try reader.readUInt16())
            guard length >= 4 else { throw DecodeError(.invalidValue, "a parameter of length \(length)") }
            result.append((type, try reader.readBytes(length - 4)))
            let padding = min((4 - length % 4) % 4, reader.remaining)
            _ = try reader.readSlice(padding)
        }
        return result
    }
}
