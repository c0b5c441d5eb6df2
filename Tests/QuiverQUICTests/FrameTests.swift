import QuiverCore
import Testing

@_spi(Wire) @testable import QuiverQUIC

// MARK: - Helpers

private func encoded(_ frame: Frame, lastInPacket: Bool = false) -> [UInt8] {
    var writer = ByteWriter()
    frame.encode(into: &writer, lastInPacket: lastInPacket)
    return writer.bytes
}

private func encoded(_ frames: [Frame]) -> [UInt8] {
    var writer = ByteWriter()
    for frame in frames { frame.encode(into: &writer) }
    return writer.bytes
}

/// The error `decodeAll` throws for `bytes`, or nil when it succeeds.
private func decodeAllError(_ bytes: [UInt8], in packetType: PacketType = .oneRTT) -> QUICError? {
    do {
        _ = try Frame.decodeAll(bytes, packetType: packetType)
        return nil
    } catch {
        return error
    }
}

/// The error `decode(from:)` throws for `bytes`, or nil when it succeeds.
private func decodeOneError(_ bytes: [UInt8]) -> QUICError? {
    var reader = ByteReader(bytes)
    do {
        _ = try Frame.decode(from: &reader)
        return nil
    } catch {
        return error
    }
}

private func expectFailure(_ bytes: [UInt8], _ code: TransportErrorCode, frameType: UInt64?, in packetType: PacketType = .oneRTT,
                           sourceLocation: SourceLocation = #_sourceLocation) {
    let error = decodeAllError(bytes, in: packetType)
    #expect(error?.code == code, "got \(String(describing: error))", sourceLocation: sourceLocation)
    #expect(error?.frameType == frameType, "got \(String(describing: error))", sourceLocation: sourceLocation)
}

private func decodeSingle(_ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) -> Frame? {
    do {
        let frames = try Frame.decodeAll(bytes, packetType: .oneRTT)
        #expect(frames.count == 1, sourceLocation: sourceLocation)
        return frames.first
    } catch {
        Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// A varint encoded in exactly `length` bytes (for hand-made malformed inputs).
private func varint(_ value: UInt64, length: Int? = nil) -> [UInt8] {
    var bytes: [UInt8] = []
    VarInt.write(value, length: length ?? VarInt.encodedLength(value), into: &bytes)
    return bytes
}

private let maxVarInt = VarInt.max

// MARK: - Random frames

enum FrameSamples {
    static let kinds = [
        "padding", "ping", "ack", "ackECN", "resetStream", "stopSending", "crypto", "newToken", "stream",
        "maxData", "maxStreamData", "maxStreams", "dataBlocked", "streamDataBlocked", "streamsBlocked",
        "newConnectionID", "retireConnectionID", "pathChallenge", "pathResponse", "connectionCloseTransport",
        "connectionCloseApplication", "handshakeDone", "datagram",
    ]

    /// A stable per-kind seed (FNV-1a of the name), so each kind's sequence is reproducible.
    static func seed(_ kind: String) -> UInt64 {
        kind.utf8.reduce(0xcbf2_9ce4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
    }

    static func data(_ rng: inout SeededGenerator) -> [UInt8] {
        switch Int.random(in: 0..<6, using: &rng) {
        case 0: return []
        case 1: return rng.bytes(1)
        case 2: return rng.bytes(Int.random(in: 0...2000, using: &rng))
        default: return rng.bytes(Int.random(in: 0...64, using: &rng))
        }
    }

    static func ackRanges(_ rng: inout SeededGenerator) -> [ClosedRange<UInt64>] {
        let count = [1, 2, Int.random(in: 1...8, using: &rng), Int.random(in: 1...300, using: &rng)][Int.random(in: 0..<4, using: &rng)]
        var current = rng.varInt()
        var ranges: [ClosedRange<UInt64>] = []
        let smallSteps = Bool.random(using: &rng)
        for _ in 0..<count {
            let length = smallSteps ? UInt64.random(in: 0...min(current, 20), using: &rng) : UInt64.random(in: 0...current / 4, using: &rng)
            let smallest = current - length
            ranges.append(smallest...current)
            guard smallest >= 2 else { break }
            let gap = smallSteps ? UInt64.random(in: 0...min(smallest - 2, 20), using: &rng) : UInt64.random(in: 0...(smallest - 2) / 4, using: &rng)
            current = smallest - gap - 2
        }
        return ranges
    }

    static func random(_ kind: String, using rng: inout SeededGenerator) -> Frame {
        func id() -> StreamID { StreamID(rawValue: rng.varInt()) }
        switch kind {
        case "padding": return .padding(count: Int.random(in: 1...1500, using: &rng))
        case "ping": return .ping
        case "ack": return .ack(AckFrame(ranges: AckRanges(ackRanges(&rng)), ackDelay: rng.varInt()))
        case "ackECN":
            return .ack(AckFrame(ranges: AckRanges(ackRanges(&rng)), ackDelay: rng.varInt(),
                                 ecn: ECNCounts(ect0: rng.varInt(), ect1: rng.varInt(), ce: rng.varInt())))
        case "resetStream": return .resetStream(id: id(), errorCode: rng.varInt(), finalSize: rng.varInt())
        case "stopSending": return .stopSending(id: id(), errorCode: rng.varInt())
        case "crypto":
            let bytes = data(&rng)
            return .crypto(offset: rng.varInt(max: maxVarInt - UInt64(bytes.count)), data: bytes)
        case "newToken": return .newToken(rng.bytes(Int.random(in: 1...200, using: &rng)))
        case "stream":
            let bytes = data(&rng)
            return .stream(id: id(), offset: rng.varInt(max: maxVarInt - UInt64(bytes.count)), data: bytes[...], fin: Bool.random(using: &rng))
        case "maxData": return .maxData(rng.varInt())
        case "maxStreamData": return .maxStreamData(id: id(), max: rng.varInt())
        case "maxStreams": return .maxStreams(bidirectional: Bool.random(using: &rng), max: rng.varInt(max: 1 << 60))
        case "dataBlocked": return .dataBlocked(rng.varInt())
        case "streamDataBlocked": return .streamDataBlocked(id: id(), limit: rng.varInt())
        case "streamsBlocked": return .streamsBlocked(bidirectional: Bool.random(using: &rng), limit: rng.varInt(max: 1 << 60))
        case "newConnectionID":
            let sequence = rng.varInt()
            return .newConnectionID(sequence: sequence, retirePriorTo: UInt64.random(in: 0...sequence, using: &rng),
                                    connectionID: rng.bytes(Int.random(in: 1...20, using: &rng)), resetToken: rng.bytes(16))
        case "retireConnectionID": return .retireConnectionID(sequence: rng.varInt())
        case "pathChallenge": return .pathChallenge(rng.bytes(8))
        case "pathResponse": return .pathResponse(rng.bytes(8))
        case "connectionCloseTransport":
            return .connectionClose(ConnectionClose(isApplication: false, errorCode: rng.varInt(), frameType: rng.varInt(),
                                                    reason: rng.bytes(Int.random(in: 0...100, using: &rng))))
        case "connectionCloseApplication":
            return .connectionClose(ConnectionClose(isApplication: true, errorCode: rng.varInt(),
                                                    reason: rng.bytes(Int.random(in: 0...100, using: &rng))))
        case "handshakeDone": return .handshakeDone
        case "datagram": return .datagram(data: data(&rng))
        default: preconditionFailure("unknown kind \(kind)")
        }
    }

    /// One encoded frame of each known frame type, keyed by type value; STREAM in all eight forms.
    static func encodedSample(ofType raw: UInt64) -> [UInt8] {
        let frame: Frame
        var lastInPacket = false
        switch raw {
        case 0x00: frame = .padding(count: 1)
        case 0x01: frame = .ping
        case 0x02: frame = .ack(AckFrame(ranges: [3...7], ackDelay: 10))
        case 0x03: frame = .ack(AckFrame(ranges: [3...7], ackDelay: 10, ecn: ECNCounts(ect0: 1, ect1: 2, ce: 3)))
        case 0x04: frame = .resetStream(id: StreamID(rawValue: 4), errorCode: 1, finalSize: 100)
        case 0x05: frame = .stopSending(id: StreamID(rawValue: 4), errorCode: 1)
        case 0x06: frame = .crypto(offset: 0, data: [1, 2, 3])
        case 0x07: frame = .newToken([1, 2, 3])
        case 0x08...0x0f:
            frame = .stream(id: StreamID(rawValue: 4), offset: raw & 0x04 != 0 ? 10 : 0, data: [1, 2, 3], fin: raw & 0x01 != 0)
            lastInPacket = raw & 0x02 == 0
        case 0x10: frame = .maxData(1000)
        case 0x11: frame = .maxStreamData(id: StreamID(rawValue: 4), max: 1000)
        case 0x12, 0x13: frame = .maxStreams(bidirectional: raw == 0x12, max: 10)
        case 0x14: frame = .dataBlocked(1000)
        case 0x15: frame = .streamDataBlocked(id: StreamID(rawValue: 4), limit: 1000)
        case 0x16, 0x17: frame = .streamsBlocked(bidirectional: raw == 0x16, limit: 10)
        case 0x18: frame = .newConnectionID(sequence: 2, retirePriorTo: 1, connectionID: [1, 2, 3, 4], resetToken: Array(repeating: 7, count: 16))
        case 0x19: frame = .retireConnectionID(sequence: 1)
        case 0x1a: frame = .pathChallenge([1, 2, 3, 4, 5, 6, 7, 8])
        case 0x1b: frame = .pathResponse([1, 2, 3, 4, 5, 6, 7, 8])
        case 0x1c: frame = .connectionClose(.transport(.protocolViolation, frameType: 0x08, reason: "bad"))
        case 0x1d: frame = .connectionClose(.application(7, reason: "bye"))
        case 0x1e: frame = .handshakeDone
        case 0x30: frame = .datagram(data: [9, 9]); lastInPacket = true
        case 0x31: frame = .datagram(data: [9, 9])
        default: preconditionFailure("no sample for 0x\(String(raw, radix: 16))")
        }
        return encoded(frame, lastInPacket: lastInPacket)
    }

    static let knownTypes: [UInt64] = Array(0x00...0x1e) + [0x30, 0x31]
}

// MARK: - Round trips

@Suite("Frames: round trips (RFC 9000 §19, RFC 9221 §4)")
struct FrameRoundTripTests {
    @Test("Random frames round-trip; encodedLength matches", arguments: FrameSamples.kinds)
    func randomRoundTrip(kind: String) throws {
        var rng = SeededGenerator(seed: FrameSamples.seed(kind))
        for _ in 0..<300 {
            let frame = FrameSamples.random(kind, using: &rng)
            for lastInPacket in [false, true] {
                let bytes = encoded(frame, lastInPacket: lastInPacket)
                #expect(bytes.count == frame.encodedLength(lastInPacket: lastInPacket))
                if case .padding = frame {} else {
                    #expect(UInt64(bytes[0]) == frame.type(lastInPacket: lastInPacket).rawValue)
                }
                var reader = ByteReader(bytes)
                let decoded = try Frame.decode(from: &reader)
                #expect(decoded == frame)
                #expect(reader.isAtEnd)
                #expect(try Frame.decodeAll(bytes, packetType: .oneRTT) == [frame])
            }
            #expect(frame.encodedLength == encoded(frame).count)
        }
    }

    @Test("Random packets of many frames round-trip through decodeAll")
    func randomPackets() throws {
        var rng = SeededGenerator(seed: 9000)
        for _ in 0..<200 {
            var frames: [Frame] = []
            for _ in 0..<Int.random(in: 1...12, using: &rng) {
                let frame = FrameSamples.random(FrameSamples.kinds.randomElement(using: &rng) ?? "ping", using: &rng)
                // Two PADDING runs in a row decode as one run.
                if case .padding = frame, case .padding = frames.last { continue }
                frames.append(frame)
            }
            var writer = ByteWriter()
            for (i, frame) in frames.enumerated() { frame.encode(into: &writer, lastInPacket: i == frames.count - 1) }
            let expectedLength = frames.enumerated().reduce(0) { $0 + $1.element.encodedLength(lastInPacket: $1.offset == frames.count - 1) }
            #expect(writer.count == expectedLength)
            #expect(try Frame.decodeAll(writer.bytes, packetType: .oneRTT) == frames)
        }
    }

    @Test("ACK ranges: two inline, more in overflow, equal and hashed as their elements")
    func ackRangesStorage() {
        let all: [ClosedRange<UInt64>] = [90...99, 70...80, 50...60, 10...20, 0...5]
        for count in 0...all.count {
            let ranges = AckRanges(all.prefix(count))
            #expect(Array(ranges) == Array(all.prefix(count)))
            var built = AckRanges()
            for range in all.prefix(count) { built.append(range) }
            #expect(built == ranges)
            #expect(built.hashValue == ranges.hashValue)
        }
        #expect(AckRanges([1...2]) != AckRanges([1...2, 0...0]))
        #expect(AckRanges([]) == AckRanges())
    }

    @Test("Consecutive PADDING bytes decode as one frame")
    func paddingRuns() throws {
        #expect(try Frame.decodeAll([0, 0, 0, 1, 0, 0], packetType: .initial) == [.padding(count: 3), .ping, .padding(count: 2)])
        #expect(try Frame.decodeAll([0], packetType: .handshake) == [.padding(count: 1)])
        let big = [UInt8](repeating: 0, count: 1400)
        #expect(try Frame.decodeAll(big, packetType: .initial) == [.padding(count: 1400)])
        #expect(encoded(.padding(count: 5)) == [0, 0, 0, 0, 0])
        #expect(Frame.padding(count: 5).encodedLength == 5)
    }

    @Test("Known encodings byte for byte")
    func knownEncodings() {
        #expect(encoded(.ping) == [0x01])
        #expect(encoded(.handshakeDone) == [0x1e])
        // STREAM: LEN always set, OFF only when offset > 0.
        #expect(encoded(.stream(id: StreamID(rawValue: 4), offset: 0, data: [0xaa], fin: false)) == [0x0a, 0x04, 0x01, 0xaa])
        #expect(encoded(.stream(id: StreamID(rawValue: 4), offset: 0, data: [], fin: true)) == [0x0b, 0x04, 0x00])
        #expect(encoded(.stream(id: StreamID(rawValue: 4), offset: 64, data: [0xaa], fin: true)) == [0x0f, 0x04, 0x40, 0x40, 0x01, 0xaa])
        #expect(encoded(.stream(id: StreamID(rawValue: 4), offset: 1, data: [0xaa], fin: false), lastInPacket: true) == [0x0c, 0x04, 0x01, 0xaa])
        #expect(encoded(.datagram(data: [1, 2])) == [0x31, 0x02, 1, 2])
        #expect(encoded(.datagram(data: [1, 2]), lastInPacket: true) == [0x30, 1, 2])
        // ACK: largest 10, delay 3, one extra range: 10...8, gap → 5...4.
        #expect(encoded(.ack(AckFrame(ranges: [8...10, 4...5], ackDelay: 3))) == [0x02, 10, 3, 1, 2, 1, 1])
        #expect(encoded(.ack(AckFrame(ranges: [0...0], ackDelay: 0, ecn: ECNCounts(ect0: 1, ect1: 2, ce: 3)))) == [0x03, 0, 0, 0, 0, 1, 2, 3])
        #expect(encoded(.connectionClose(.application(0x0102, reason: "x"))) == [0x1d, 0x41, 0x02, 0x01, 0x78])
        #expect(encoded(.connectionClose(.transport(.frameEncodingError, frameType: 0x1e))) == [0x1c, 0x07, 0x1e, 0x00])
        #expect(encoded(.maxStreams(bidirectional: false, max: 3)) == [0x13, 3])
        #expect(encoded(.streamsBlocked(bidirectional: true, limit: 3)) == [0x16, 3])
    }
}

// MARK: - Boundaries

@Suite("Frames: boundaries")
struct FrameBoundaryTests {
    static let maxFrames: [Frame] = [
        .ack(AckFrame(ranges: [0...maxVarInt], ackDelay: maxVarInt, ecn: ECNCounts(ect0: maxVarInt, ect1: maxVarInt, ce: maxVarInt))),
        .resetStream(id: StreamID(rawValue: maxVarInt), errorCode: maxVarInt, finalSize: maxVarInt),
        .stopSending(id: StreamID(rawValue: maxVarInt), errorCode: maxVarInt),
        .crypto(offset: maxVarInt, data: []),
        .crypto(offset: maxVarInt - 3, data: [1, 2, 3]),
        .stream(id: StreamID(rawValue: maxVarInt), offset: maxVarInt, data: [], fin: true),
        .stream(id: StreamID(rawValue: maxVarInt), offset: maxVarInt - 1, data: [1], fin: false),
        .maxData(maxVarInt),
        .maxStreamData(id: StreamID(rawValue: maxVarInt), max: maxVarInt),
        .maxStreams(bidirectional: true, max: 1 << 60),
        .maxStreams(bidirectional: false, max: 1 << 60),
        .dataBlocked(maxVarInt),
        .streamDataBlocked(id: StreamID(rawValue: maxVarInt), limit: maxVarInt),
        .streamsBlocked(bidirectional: true, limit: 1 << 60),
        .streamsBlocked(bidirectional: false, limit: 1 << 60),
        .newConnectionID(sequence: maxVarInt, retirePriorTo: maxVarInt, connectionID: [UInt8](repeating: 0xcc, count: 20), resetToken: [UInt8](repeating: 1, count: 16)),
        .newConnectionID(sequence: 0, retirePriorTo: 0, connectionID: [0xcc], resetToken: [UInt8](repeating: 1, count: 16)),
        .retireConnectionID(sequence: maxVarInt),
        .connectionClose(ConnectionClose(isApplication: false, errorCode: maxVarInt, frameType: maxVarInt, reason: [])),
        .connectionClose(ConnectionClose(isApplication: true, errorCode: maxVarInt, reason: [])),
        .crypto(offset: 0, data: []),
        .stream(id: StreamID(rawValue: 0), offset: 0, data: [], fin: false),
        .datagram(data: []),
        .crypto(offset: 0, data: [UInt8](repeating: 0xab, count: 70_000)),
        .stream(id: StreamID(rawValue: 3), offset: 5, data: ArraySlice<UInt8>(repeating: 0xab, count: 70_000), fin: true),
        .datagram(data: [UInt8](repeating: 0xab, count: 70_000)),
        .newToken([UInt8](repeating: 0xab, count: 20_000)),
        .connectionClose(ConnectionClose(isApplication: false, errorCode: 0, frameType: 0, reason: [UInt8](repeating: 0x41, count: 16_384))),
    ]

    @Test("Extreme field values round-trip", arguments: maxFrames)
    func extremes(frame: Frame) throws {
        for lastInPacket in [false, true] {
            let bytes = encoded(frame, lastInPacket: lastInPacket)
            #expect(bytes.count == frame.encodedLength(lastInPacket: lastInPacket))
            #expect(try Frame.decodeAll(bytes, packetType: .oneRTT) == [frame])
        }
    }

    @Test("ACK with a single packet, packet 0, and many ranges")
    func ackRanges() throws {
        for ranges: [ClosedRange<UInt64>] in [[0...0], [5...5], [0...100], [10...10, 0...0]] {
            let frame = Frame.ack(AckFrame(ranges: AckRanges(ranges), ackDelay: 0))
            #expect(try Frame.decodeAll(encoded(frame), packetType: .initial) == [frame])
        }
        // 2000 ranges: every other packet number down to 0.
        let many = stride(from: UInt64(3998), through: 0, by: -2).map { $0...$0 }
        let ack = AckFrame(ranges: AckRanges(many), ackDelay: 1 << 20)
        #expect(ack.largestAcknowledged == 3998)
        #expect(ack.contains(0) && ack.contains(3998) && !ack.contains(3997))
        let bytes = encoded(.ack(ack))
        #expect(bytes.count == Frame.ack(ack).encodedLength)
        #expect(try Frame.decodeAll(bytes, packetType: .handshake) == [.ack(ack)])
    }

    @Test("Integer fields accept any varint encoding length (only the frame type must be minimal)")
    func nonMinimalFields() throws {
        let bytes: [UInt8] = [0x10] + varint(5, length: 8)
        #expect(decodeSingle(bytes) == .maxData(5))
    }
}

// MARK: - Malformed input

@Suite("Frames: malformed input")
struct FrameMalformedTests {
    @Test("An empty payload is a PROTOCOL_VIOLATION (RFC 9000 §12.4)", arguments: PacketType.allCases)
    func emptyPayload(packetType: PacketType) {
        expectFailure([], .protocolViolation, frameType: nil, in: packetType)
    }

    @Test("Unknown frame types are a FRAME_ENCODING_ERROR (RFC 9000 §12.4)",
          arguments: [UInt64(0x1f), 0x20, 0x21, 0x2f, 0x32, 0x3f, 0x40, 0x3fff, 0x4000, 0x2ab2, 0xff_ffff])
    func unknownType(raw: UInt64) {
        expectFailure(varint(raw) + [0, 0, 0, 0], .frameEncodingError, frameType: raw)
        #expect(decodeOneError(varint(raw))?.code == .frameEncodingError)
        #expect(!FrameType(rawValue: raw).isKnown)
    }

    @Test("Frame types in a longer encoding than necessary are a PROTOCOL_VIOLATION (RFC 9000 §12.4)",
          arguments: [(UInt64(0x01), 2), (0x01, 4), (0x01, 8), (0x06, 2), (0x1e, 8), (0x00, 2), (0x30, 2), (0x1f, 2)])
    func nonMinimalType(raw: UInt64, length: Int) {
        expectFailure(varint(raw, length: length) + FrameSamples.encodedSampleIfKnown(raw).dropFirst(), .protocolViolation, frameType: raw)
        #expect(decodeOneError(varint(raw, length: length))?.code == .protocolViolation)
    }

    @Test("A truncated frame type is a FRAME_ENCODING_ERROR")
    func truncatedType() {
        expectFailure([0x40], .frameEncodingError, frameType: nil)
        expectFailure([0x01, 0x80, 0x00], .frameEncodingError, frameType: nil)
    }

    @Test("Every strict prefix of a frame is a FRAME_ENCODING_ERROR naming the frame type", arguments: FrameSamples.kinds)
    func truncation(kind: String) {
        var rng = SeededGenerator(seed: FrameSamples.seed(kind) ^ 0x7A11)
        for _ in 0..<40 {
            let frame = FrameSamples.random(kind, using: &rng)
            let bytes = encoded(frame)
            guard bytes.count > 1, !(frame == .padding(count: bytes.count)) else { continue }
            // Check every prefix of short frames, a sample of long ones.
            let cuts = bytes.count <= 64 ? Array(1..<bytes.count) : (0..<64).map { _ in Int.random(in: 1..<bytes.count, using: &rng) }
            for cut in cuts {
                let prefix = Array(bytes[..<cut])
                let error = decodeAllError(prefix)
                #expect(error?.code == .frameEncodingError, "\(kind) cut at \(cut) of \(bytes.count)")
                #expect(error?.frameType == frame.type.rawValue)
            }
        }
    }

    @Test("ACK ranges may not go below packet number 0 (RFC 9000 §19.3.1)")
    func ackUnderflow() {
        // First ACK Range larger than Largest Acknowledged.
        expectFailure([0x02, 5, 0, 0, 6], .frameEncodingError, frameType: 0x02)
        expectFailure([0x03, 5, 0, 0, 6, 0, 0, 0], .frameEncodingError, frameType: 0x03)
        // Gap: smallest 3, gap 2 → largest 3 − 2 − 2 = −1.
        expectFailure([0x02, 5, 0, 1, 2, 2, 0], .frameEncodingError, frameType: 0x02)
        // Gap: smallest 3, gap 1 → largest 0: fine.
        #expect(decodeSingle([0x02, 5, 0, 1, 2, 1, 0]) == .ack(AckFrame(ranges: [3...5, 0...0], ackDelay: 0)))
        // ACK Range Length: smallest 10, gap 0 → largest 8, length 9 → −1.
        expectFailure([0x02, 10, 0, 1, 0, 0, 9], .frameEncodingError, frameType: 0x02)
        #expect(decodeSingle([0x02, 10, 0, 1, 0, 0, 8]) == .ack(AckFrame(ranges: [10...10, 0...8], ackDelay: 0)))
        // Gap at the top of the varint range cannot overflow the check.
        expectFailure([0x02, 10, 0, 1, 0] + varint(maxVarInt) + [0], .frameEncodingError, frameType: 0x02)
    }

    @Test("ACK with an absurd range count or missing ECN counts")
    func ackTruncated() {
        expectFailure([0x02, 5, 0] + varint(maxVarInt) + [0], .frameEncodingError, frameType: 0x02)
        expectFailure([0x02, 5, 0, 3, 0, 0, 0], .frameEncodingError, frameType: 0x02)
        expectFailure([0x03, 5, 0, 0, 0, 1, 1], .frameEncodingError, frameType: 0x03)
    }

    @Test("STREAM and CRYPTO may not extend past 2^62 − 1 (RFC 9000 §19.6, §19.8)")
    func offsetOverflow() {
        expectFailure([0x0e, 0x04] + varint(maxVarInt) + [0x01, 0xaa], .frameEncodingError, frameType: 0x0e)
        expectFailure([0x0f, 0x04] + varint(maxVarInt - 1) + [0x02, 0xaa, 0xbb], .frameEncodingError, frameType: 0x0f)
        expectFailure([0x0c, 0x04] + varint(maxVarInt) + [0xaa], .frameEncodingError, frameType: 0x0c)
        expectFailure([0x06] + varint(maxVarInt) + [0x01, 0xaa], .frameEncodingError, frameType: 0x06)
        #expect(decodeSingle([0x06] + varint(maxVarInt - 1) + [0x01, 0xaa]) == .crypto(offset: maxVarInt - 1, data: [0xaa]))
        #expect(decodeSingle([0x0e, 0x04] + varint(maxVarInt) + [0x00]) == .stream(id: StreamID(rawValue: 4), offset: maxVarInt, data: [], fin: false))
    }

    @Test("Length fields beyond the packet are a FRAME_ENCODING_ERROR")
    func lengthsBeyondPacket() {
        expectFailure([0x0a, 0x04, 0x05, 1, 2, 3], .frameEncodingError, frameType: 0x0a)
        expectFailure([0x0a, 0x04] + varint(maxVarInt), .frameEncodingError, frameType: 0x0a)
        expectFailure([0x06, 0x00, 0x04, 1, 2, 3], .frameEncodingError, frameType: 0x06)
        expectFailure([0x07, 0x04, 1, 2, 3], .frameEncodingError, frameType: 0x07)
        expectFailure([0x31, 0x04, 1, 2, 3], .frameEncodingError, frameType: 0x31)
        expectFailure([0x31] + varint(maxVarInt) + [1], .frameEncodingError, frameType: 0x31)
        expectFailure([0x1c, 0x01, 0x00, 0x05, 0x41], .frameEncodingError, frameType: 0x1c)
        expectFailure([0x1d, 0x01, 0x05, 0x41], .frameEncodingError, frameType: 0x1d)
    }

    @Test("MAX_STREAMS and STREAMS_BLOCKED above 2^60 (RFC 9000 §19.11, §19.14)", arguments: [UInt64(0x12), 0x13, 0x16, 0x17])
    func streamLimits(raw: UInt64) throws {
        expectFailure([UInt8(raw)] + varint((1 << 60) + 1), .frameEncodingError, frameType: raw)
        expectFailure([UInt8(raw)] + varint(maxVarInt), .frameEncodingError, frameType: raw)
        let frames = try Frame.decodeAll([UInt8(raw)] + varint(1 << 60), packetType: .oneRTT)
        #expect(frames.first?.type.rawValue == raw)
    }

    @Test("NEW_CONNECTION_ID length 0 or above 20, Retire Prior To above Sequence Number (RFC 9000 §19.15)")
    func newConnectionID() {
        let token = [UInt8](repeating: 0x11, count: 16)
        expectFailure([0x18, 1, 0, 0] + token, .frameEncodingError, frameType: 0x18)
        expectFailure([0x18, 1, 0, 21] + [UInt8](repeating: 0xcc, count: 21) + token, .frameEncodingError, frameType: 0x18)
        expectFailure([0x18, 1, 0, 0xff] + [UInt8](repeating: 0xcc, count: 255) + token, .frameEncodingError, frameType: 0x18)
        expectFailure([0x18, 1, 2, 4, 1, 2, 3, 4] + token, .frameEncodingError, frameType: 0x18)
        expectFailure([0x18, 1, 0, 4, 1, 2, 3, 4] + token.dropLast(), .frameEncodingError, frameType: 0x18)
        #expect(decodeSingle([0x18, 2, 2, 4, 1, 2, 3, 4] + token)
            == .newConnectionID(sequence: 2, retirePriorTo: 2, connectionID: [1, 2, 3, 4], resetToken: token))
        #expect(decodeSingle([0x18, 0, 0, 20] + [UInt8](repeating: 0xcc, count: 20) + token)
            == .newConnectionID(sequence: 0, retirePriorTo: 0, connectionID: [UInt8](repeating: 0xcc, count: 20), resetToken: token))
    }

    @Test("An empty NEW_TOKEN is a FRAME_ENCODING_ERROR (RFC 9000 §19.7)")
    func emptyToken() {
        expectFailure([0x07, 0x00], .frameEncodingError, frameType: 0x07)
        #expect(decodeSingle([0x07, 0x01, 0xab]) == .newToken([0xab]))
    }

    @Test("PATH_CHALLENGE and PATH_RESPONSE carry exactly 8 bytes (RFC 9000 §19.17)")
    func pathData() throws {
        expectFailure([0x1a, 1, 2, 3, 4, 5, 6, 7], .frameEncodingError, frameType: 0x1a)
        expectFailure([0x1b, 1, 2, 3, 4, 5, 6, 7], .frameEncodingError, frameType: 0x1b)
        // Nine bytes: the ninth is a PING.
        #expect(try Frame.decodeAll([0x1a, 1, 2, 3, 4, 5, 6, 7, 8, 0x01], packetType: .oneRTT) == [.pathChallenge([1, 2, 3, 4, 5, 6, 7, 8]), .ping])
    }

    @Test("A frame after a length-less STREAM or DATAGRAM frame is swallowed as data")
    func lengthlessConsumesRest() throws {
        #expect(try Frame.decodeAll([0x08, 0x00, 0x01, 0x01], packetType: .oneRTT) == [.stream(id: StreamID(rawValue: 0), offset: 0, data: [1, 1], fin: false)])
        #expect(try Frame.decodeAll([0x30, 0x01], packetType: .zeroRTT) == [.datagram(data: [1])])
    }

    @Test("Decoding the first frame leaves the reader after it")
    func decodeOne() throws {
        var reader = ByteReader([0x01, 0x10, 0x05, 0x1e])
        #expect(try Frame.decode(from: &reader) == .ping)
        #expect(try Frame.decode(from: &reader) == .maxData(5))
        #expect(try Frame.decode(from: &reader) == .handshakeDone)
        #expect(reader.isAtEnd)
    }
}

extension FrameSamples {
    /// A sample encoding when `raw` is known; a few filler bytes otherwise.
    static func encodedSampleIfKnown(_ raw: UInt64) -> [UInt8] {
        FrameType(rawValue: raw).isKnown ? encodedSample(ofType: raw) : [0, 0, 0]
    }
}

// MARK: - Permissions and properties

@Suite("Frames: packet type permissions (RFC 9000 §12.4 Table 3) and properties")
struct FramePermissionTests {
    /// The "Pkts" column of Table 3 (I, H, 0, 1), with "ih" resolved: 0x1c is allowed in Initial
    /// and Handshake, 0x1d is not. DATAGRAM per RFC 9221 §4.
    static func expectedPkts(_ raw: UInt64) -> String {
        switch raw {
        case 0x00, 0x01: return "IH01"
        case 0x02, 0x03: return "IH_1"
        case 0x04, 0x05: return "__01"
        case 0x06: return "IH_1"
        case 0x07: return "___1"
        case 0x08...0x0f: return "__01"
        case 0x10...0x1a: return "__01"
        case 0x1b: return "___1"
        case 0x1c: return "IH01"
        case 0x1d: return "__01"
        case 0x1e: return "___1"
        case 0x30, 0x31: return "__01"
        default: return "____"
        }
    }

    static func expectedAllowed(_ raw: UInt64, _ packetType: PacketType) -> Bool {
        let pkts = Array(expectedPkts(raw))
        switch packetType {
        case .initial: return pkts[0] == "I"
        case .handshake: return pkts[1] == "H"
        case .zeroRTT: return pkts[2] == "0"
        case .oneRTT: return pkts[3] == "1"
        case .retry, .versionNegotiation: return false
        }
    }

    @Test("Every frame type × packet type", arguments: FrameSamples.knownTypes)
    func table(raw: UInt64) throws {
        let bytes = FrameSamples.encodedSample(ofType: raw)
        #expect(UInt64(bytes[0]) == raw)
        var reader = ByteReader(bytes)
        let frame = try Frame.decode(from: &reader)
        #expect(frame.type(lastInPacket: raw == 0x30 || (FrameType(rawValue: raw).isStream && raw & 0x02 == 0)).rawValue == raw)
        for packetType in PacketType.allCases {
            let allowed = Self.expectedAllowed(raw, packetType)
            #expect(FrameType(rawValue: raw).isAllowed(in: packetType) == allowed, "\(FrameType(rawValue: raw)) in \(packetType)")
            #expect(frame.isAllowed(in: packetType) == allowed || FrameType(rawValue: raw).isStream || raw == 0x30)
            if allowed {
                #expect(try Frame.decodeAll(bytes, packetType: packetType) == [frame])
            } else {
                expectFailure(bytes, .protocolViolation, frameType: raw, in: packetType)
                // Also when preceded by an allowed frame.
                if Self.expectedAllowed(0x01, packetType) { expectFailure([0x01, 0x01] + bytes, .protocolViolation, frameType: raw, in: packetType) }
            }
        }
    }

    @Test("Unknown frame types are allowed nowhere")
    func unknownNowhere() {
        for packetType in PacketType.allCases {
            #expect(!FrameType(rawValue: 0x1f).isAllowed(in: packetType))
            #expect(!FrameType(rawValue: 0x2ab2).isAllowed(in: packetType))
        }
    }

    @Test("Ack-eliciting frames are all but PADDING, ACK and CONNECTION_CLOSE (RFC 9002 §2)", arguments: FrameSamples.knownTypes)
    func ackEliciting(raw: UInt64) throws {
        var reader = ByteReader(FrameSamples.encodedSample(ofType: raw))
        let frame = try Frame.decode(from: &reader)
        let expected = ![0x00, 0x02, 0x03, 0x1c, 0x1d].contains(raw)
        #expect(frame.isAckEliciting == expected)
        #expect(frame.isProbing == [0x00, 0x18, 0x1a, 0x1b].contains(raw))
    }

    @Test("Frame types and names")
    func typesAndNames() {
        #expect(FrameType.stream(hasOffset: true, hasLength: true, fin: true).rawValue == 0x0f)
        #expect(FrameType.stream(hasOffset: false, hasLength: false, fin: false) == .stream)
        #expect((0x08...0x0f).allSatisfy { FrameType(rawValue: $0).isStream })
        #expect(!FrameType(rawValue: 0x10).isStream && !FrameType(rawValue: 0x07).isStream && !FrameType(rawValue: 0x18).isStream)
        #expect(FrameType.connectionCloseTransport.rawValue == 0x1c && FrameType.connectionCloseApplication.rawValue == 0x1d)
        #expect(FrameType.datagram.rawValue == 0x30 && FrameType.datagramWithLength.rawValue == 0x31)
        #expect(FrameType.ackECN.name == "ACK" && FrameType(rawValue: 0x0d).name == "STREAM" && FrameType(rawValue: 0x99).name == "UNKNOWN")
        #expect(FrameType.pathChallenge.description == "PATH_CHALLENGE(0x1a)")
        #expect(Frame.stream(id: StreamID(rawValue: 0), offset: 0, data: [], fin: false).type.rawValue == 0x0a)
        #expect(Frame.stream(id: StreamID(rawValue: 0), offset: 9, data: [], fin: true).type(lastInPacket: true).rawValue == 0x0d)
        #expect(Frame.datagram(data: []).type == .datagramWithLength)
        #expect(Frame.maxStreams(bidirectional: true, max: 1).type == .maxStreamsBidi)
        #expect(Frame.streamsBlocked(bidirectional: false, limit: 1).type == .streamsBlockedUni)
    }

    @Test("CONNECTION_CLOSE from a QUICError")
    func connectionCloseFromError() throws {
        let close = ConnectionClose(QUICError(.frameEncodingError, "bad ack", frameType: 0x02))
        #expect(close == .transport(.frameEncodingError, frameType: 0x02, reason: "bad ack"))
        #expect(close.transportErrorCode == .frameEncodingError)
        #expect(ConnectionClose.application(5).transportErrorCode == nil)
        #expect(ConnectionClose(isApplication: true, errorCode: 1, frameType: 7).frameType == nil)
        #expect(decodeSingle(encoded(.connectionClose(close))) == .connectionClose(close))
    }
}

// MARK: - Stream IDs

@Suite("Stream IDs (RFC 9000 §2.1)")
struct StreamIDTests {
    @Test("The two low bits give initiator and direction")
    func lowBits() {
        let expected: [(Role, StreamID.Direction)] = [(.client, .bidirectional), (.server, .bidirectional), (.client, .unidirectional), (.server, .unidirectional)]
        for raw in UInt64(0)..<16 {
            let id = StreamID(rawValue: raw)
            #expect(id.initiator == expected[Int(raw % 4)].0)
            #expect(id.direction == expected[Int(raw % 4)].1)
            #expect(id.index == raw / 4)
            #expect(StreamID(index: raw / 4, initiator: id.initiator, direction: id.direction) == id)
        }
    }

    @Test("Index round trip at the limits")
    func limits() {
        var rng = SeededGenerator(seed: 21)
        for _ in 0..<1000 {
            let index = UInt64.random(in: 0...StreamID.maxIndex, using: &rng)
            let initiator: Role = Bool.random(using: &rng) ? .client : .server
            let direction: StreamID.Direction = Bool.random(using: &rng) ? .bidirectional : .unidirectional
            let id = StreamID(index: index, initiator: initiator, direction: direction)
            #expect(id.index == index && id.initiator == initiator && id.direction == direction)
            #expect(id.rawValue <= VarInt.max)
        }
        #expect(StreamID(index: StreamID.maxIndex, initiator: .server, direction: .unidirectional).rawValue == VarInt.max)
    }

    @Test("Ordering, send/receive permissions and roles")
    func ordering() {
        #expect(StreamID(rawValue: 3) < StreamID(rawValue: 4))
        #expect([StreamID(rawValue: 8), StreamID(rawValue: 1)].sorted() == [StreamID(rawValue: 1), StreamID(rawValue: 8)])
        let clientUni = StreamID(rawValue: 2)
        #expect(clientUni.canSend(as: .client) && !clientUni.canSend(as: .server))
        #expect(clientUni.canReceive(as: .server) && !clientUni.canReceive(as: .client))
        let serverBidi = StreamID(rawValue: 1)
        #expect(serverBidi.canSend(as: .client) && serverBidi.canReceive(as: .client))
        #expect(Role.client.peer == .server && Role.server.peer == .client)
    }
}
