import QuiverCore
@testable import QuiverHTTP3
import Testing

@Suite("QPACK dynamic table (RFC 9204): Appendix B, encoder ⇄ decoder, blocking, hostile input")
struct QPACKDynamicTableTests {
    private func fields(_ section: QPACKDecoder.Section) -> [FieldLine]? {
        if case .decoded(let fields) = section { return fields }
        return nil
    }

    @Test("Appendix B.2–B.5: encoder stream, field sections and decoder stream bytes")
    func appendixB() throws {
        var decoder = QPACKDecoder(maxTableCapacity: 220, maxBlockedStreams: 4)
        // B.2: capacity 220, two inserts with static name references, a section with post-base indexes.
        try decoder.receiveEncoderInstructions(hex("3fbd01 c00f 7777 772e 6578 616d 706c 652e 636f 6d c10c 2f73 616d 706c 652f 7061 7468"))
        #expect(decoder.insertCount == 2 && decoder.size == 106 && decoder.capacity == 220)
        let b2 = try decoder.decode(hex("0381 10 11"), streamID: 4, maxSize: 1 << 16)
        #expect(fields(b2) == [FieldLine(":authority", "www.example.com"), FieldLine(":path", "/sample/path")])
        #expect(decoder.takeInstructions() == hex("84"), "Section Acknowledgment (stream 4)")
        // B.3: a speculative insert with a literal name, acknowledged by an Insert Count Increment.
        try decoder.receiveEncoderInstructions(hex("4a63 7573 746f 6d2d 6b65 790c 6375 7374 6f6d 2d76 616c 7565"))
        #expect(decoder.size == 160)
        #expect(decoder.takeInstructions() == hex("01"), "Insert Count Increment (1)")
        // B.4: the section on stream 8 arrives before the Duplicate it needs: blocked, then cancelled.
        let section8 = hex("0500 80 c1 81")
        #expect(try decoder.decode(section8, streamID: 8, maxSize: 1 << 16) == .blocked(requiredInsertCount: 4))
        #expect(decoder.blockedStreams == [8])
        decoder.cancelStream(8)
        #expect(decoder.blockedStreams.isEmpty)
        #expect(decoder.takeInstructions() == hex("48"), "Stream Cancellation (stream 8)")
        try decoder.receiveEncoderInstructions(hex("02"))
        #expect(decoder.size == 217)
        #expect(fields(try decoder.decode(section8, streamID: 8, maxSize: 1 << 16))
                == [FieldLine(":authority", "www.example.com"), FieldLine(":path", "/"), FieldLine("custom-key", "custom-value")])
        #expect(decoder.takeInstructions() == hex("88"), "the Duplicate is acknowledged with the section")
        // B.5: an insert with a dynamic name reference evicts the oldest entry.
        try decoder.receiveEncoderInstructions(hex("810d 6375 7374 6f6d 2d76 616c 7565 32"))
        #expect(decoder.size == 215 && decoder.entryCount == 4 && decoder.insertCount == 5)
        #expect(decoder.takeInstructions() == hex("01"))
        // Absolute index 0 (:authority) is gone: RIC 5 = encoded 6, Base 5, relative index 4.
        #expect(throws: HTTP3Error(.qpackDecompressionFailed, "")) { try decoder.decode(hex("0600 84"), streamID: 12, maxSize: 1 << 16) }
        #expect(fields(try decoder.decode(hex("0600 80"), streamID: 12, maxSize: 1 << 16)) == [FieldLine("custom-key", "custom-value2")])
    }

    /// Runs our encoder into our decoder: sections decoded after the encoder stream's bytes
    /// arrived, the decoder's instructions fed back.
    private struct Pair {
        var encoder = QPACKEncoder()
        var decoder = QPACKDecoder(maxTableCapacity: 4096, maxBlockedStreams: 16)

        init(capacity: Int = 4096, blocked: Int = 16) {
            encoder = QPACKEncoder(capacityLimit: 4096)
            decoder = QPACKDecoder(maxTableCapacity: capacity, maxBlockedStreams: blocked)
            encoder.applyPeerSettings(maxTableCapacity: UInt64(capacity), blockedStreams: UInt64(blocked))
        }

        mutating func deliverInserts() throws { try decoder.receiveEncoderInstructions(encoder.takeInstructions()) }
        mutating func deliverAcknowledgments() throws { try encoder.receiveDecoderInstructions(decoder.takeInstructions()) }

        mutating func roundTrip(_ lines: [FieldLine], stream: UInt64) throws -> (size: Int, decoded: [FieldLine]?) {
            let section = encoder.encode(lines, streamID: stream)
            try deliverInserts()
            let decoded = try decoder.decode(section, streamID: stream, maxSize: 1 << 16)
            try deliverAcknowledgments()
            if case .decoded(let fields) = decoded { return (section.count, fields) }
            return (section.count, nil)
        }
    }

    @Test("Our encoder uses the table: the second request's section is much smaller; never-indexed fields stay literal")
    func encoderRoundTrip() throws {
        var pair = Pair()
        let request = [FieldLine(":method", "GET"), FieldLine(":scheme", "https"), FieldLine(":authority", "quiver.example.com:4433"),
                       FieldLine(":path", "/index.html"), FieldLine("user-agent", "quiver-test/1.0 (a long user agent string)"),
                       FieldLine("x-trace", "abcdef0123456789"), FieldLine("authorization", "Bearer secret-token"),
                       FieldLine("x-secret", "do-not-index", neverIndexed: true)]
        let first = try pair.roundTrip(request, stream: 0)
        #expect(first.decoded == request)
        let second = try pair.roundTrip(request, stream: 4)
        #expect(second.decoded == request)
        let third = try pair.roundTrip(request, stream: 8)
        #expect(third.decoded == request)
        // Besides the two fields that stay literal, the third section is its prefix and one byte a field.
        let literals = QPACK.encode(Array(request.suffix(2))).count - 2
        #expect(third.size - literals == 2 + 6 && first.size - literals >= 3 * 8, "first \(first.size) bytes, third \(third.size)")
        #expect(pair.encoder.statistics.insertsSent >= 3 && pair.decoder.statistics.sectionsDecodedWithTable >= 2)
        // Credentials and never-indexed values never reach the encoder stream.
        var probe = Pair()
        _ = probe.encoder.encode(request, streamID: 0)
        _ = probe.encoder.encode(request, streamID: 4)
        let instructions = probe.encoder.takeInstructions()
        var decoder = QPACKDecoder(maxTableCapacity: 4096, maxBlockedStreams: 16)
        try decoder.receiveEncoderInstructions(instructions)
        #expect(decoder.insertCount == probe.encoder.insertCount)
        for secret in ["do-not-index", "Bearer secret-token"] {
            var encoded: [UInt8] = []
            QPACK.encodeString(Array(secret.utf8), prefixBits: 7, flags: 0, into: &encoded)
            #expect(instructions.firstRange(of: encoded.dropFirst()) == nil, "\(secret)")
        }
        #expect(third.decoded?.last?.neverIndexed == true)
    }

    @Test("A blocked section decodes once its inserts arrive; the (N+1)-th blocked stream is QPACK_DECOMPRESSION_FAILED")
    func blockedStreams() throws {
        var pair = Pair(blocked: 2)
        let lines = [FieldLine(":authority", "a.example"), FieldLine("user-agent", "ua")]
        let section = pair.encoder.encode(lines, streamID: 0)
        let inserts = pair.encoder.takeInstructions()
        #expect(try pair.decoder.decode(section, streamID: 0, maxSize: 1 << 16) == .blocked(requiredInsertCount: 2))
        try pair.decoder.receiveEncoderInstructions(inserts)
        #expect(fields(try pair.decoder.decode(section, streamID: 0, maxSize: 1 << 16)) == lines)
        #expect(pair.decoder.statistics.sectionsBlocked == 1)

        // Our encoder keeps within the peer's limit: a third stream gets no unacknowledged references.
        var limited = Pair(blocked: 2)
        let s0 = limited.encoder.encode([FieldLine(":authority", "one")], streamID: 0)
        let s4 = limited.encoder.encode([FieldLine(":authority", "two")], streamID: 4)
        let s8 = limited.encoder.encode([FieldLine(":authority", "three")], streamID: 8)
        #expect(s0[0] != 0 && s4[0] != 0 && s8[0] == 0, "the third section refers to nothing unacknowledged")
        #expect(limited.encoder.blockingStreamCount == 2)

        // A decoder facing a third blocked stream with a limit of 2 fails.
        var decoder = QPACKDecoder(maxTableCapacity: 4096, maxBlockedStreams: 2)
        #expect(try decoder.decode(s0, streamID: 0, maxSize: 1 << 16) == .blocked(requiredInsertCount: 1))
        #expect(try decoder.decode(s4, streamID: 4, maxSize: 1 << 16) == .blocked(requiredInsertCount: 2))
        let extra = [UInt8]([0x03, 0x00, 0x81])  // RIC 2, Base 2, relative index 1
        #expect(throws: HTTP3Error(.qpackDecompressionFailed, "")) { try decoder.decode(extra, streamID: 12, maxSize: 1 << 16) }
    }

    @Test("An entry referenced by an unacknowledged section is never evicted; capacity changes evict")
    func evictionAndCapacity() throws {
        // A 256-byte table: entries up to 64 bytes, at most a few of them.
        var pair = Pair(capacity: 256)
        let pinned = pair.encoder.encode([FieldLine(":authority", "pinned.example")], streamID: 0)  // not acknowledged
        var later: [(UInt64, [UInt8], [FieldLine])] = []
        for index in 0..<12 {
            let lines = [FieldLine("content-type", "type/\(index)")]
            later.append((UInt64(4 + 4 * index), pair.encoder.encode(lines, streamID: UInt64(4 + 4 * index)), lines))
        }
        try pair.deliverInserts()
        #expect(fields(try pair.decoder.decode(pinned, streamID: 0, maxSize: 1 << 16)) == [FieldLine(":authority", "pinned.example")])
        for (stream, section, lines) in later {
            #expect(fields(try pair.decoder.decode(section, streamID: stream, maxSize: 1 << 16)) == lines)
        }
        try pair.deliverAcknowledgments()
        // Now everything is acknowledged: new inserts evict, and the round trip still holds.
        for index in 0..<40 {
            let lines = [FieldLine("content-type", "type/\(index % 7)"), FieldLine(":authority", "host\(index % 5)")]
            #expect(try pair.roundTrip(lines, stream: UInt64(100 + 4 * index)).decoded == lines)
        }
        #expect(pair.decoder.size <= 256 && pair.decoder.insertCount > 8)

        var decoder = QPACKDecoder(maxTableCapacity: 220, maxBlockedStreams: 4)
        try decoder.receiveEncoderInstructions(hex("3fbd01 c00f 7777 772e 6578 616d 706c 652e 636f 6d c10c 2f73 616d 706c 652f 7061 7468"))
        try decoder.receiveEncoderInstructions([0x3f, 0x34])  // capacity 83: only the newest entry (49 bytes) stays
        #expect(decoder.entryCount == 1 && decoder.size == 49)
        try decoder.receiveEncoderInstructions([0x20])  // capacity 0 clears the table
        #expect(decoder.entryCount == 0 && decoder.size == 0)
        #expect(throws: HTTP3Error(.qpackEncoderStreamError, "")) { try decoder.receiveEncoderInstructions([0x3f, 0xbe, 0x01]) }  // 221 > 220
    }

    @Test("Invalid decoder-stream instructions are QPACK_DECODER_STREAM_ERROR (§4.4)")
    func invalidDecoderInstructions() throws {
        func encoderWithOneSection() -> QPACKEncoder {
            var encoder = QPACKEncoder()
            encoder.applyPeerSettings(maxTableCapacity: 4096, blockedStreams: 16)
            _ = encoder.encode([FieldLine(":authority", "x.example")], streamID: 4)
            return encoder
        }
        var encoder = encoderWithOneSection()
        try encoder.receiveDecoderInstructions([0x84])  // acknowledges stream 4
        #expect(encoder.knownReceivedCount == 1)
        #expect(throws: HTTP3Error(.qpackDecoderStreamError, "")) { try encoder.receiveDecoderInstructions([0x84]) }  // nothing left on 4
        encoder = encoderWithOneSection()
        #expect(throws: HTTP3Error(.qpackDecoderStreamError, "")) { try encoder.receiveDecoderInstructions([0x88]) }  // stream 8: nothing
        encoder = encoderWithOneSection()
        #expect(throws: HTTP3Error(.qpackDecoderStreamError, "")) { try encoder.receiveDecoderInstructions([0x00]) }  // increment 0
        encoder = encoderWithOneSection()
        #expect(throws: HTTP3Error(.qpackDecoderStreamError, "")) { try encoder.receiveDecoderInstructions([0x02]) }  // beyond 1 insert
        encoder = encoderWithOneSection()
        try encoder.receiveDecoderInstructions([0x48, 0x44, 0x3f])  // cancellations (one of an unknown stream); an unfinished increment waits
        #expect(encoder.blockingStreamCount == 0)
        #expect(throws: HTTP3Error(.qpackDecoderStreamError, "")) { try encoder.receiveDecoderInstructions([0x01]) }  // 63 + 1 > 1
        encoder = encoderWithOneSection()
        #expect(throws: HTTP3Error(.qpackDecoderStreamError, "")) {
            try encoder.receiveDecoderInstructions([0xff] + [UInt8](repeating: 0xff, count: 12))  // an endless integer
        }
    }

    @Test("A hostile encoder stream: oversized inserts, a capacity above ours, bad references, truncation, random bytes")
    func hostileEncoderStream() throws {
        func fresh() throws -> QPACKDecoder {
            var decoder = QPACKDecoder(maxTableCapacity: 4096, maxBlockedStreams: 16)
            try decoder.receiveEncoderInstructions(hex("3fe11f"))  // capacity 4096
            return decoder
        }
        var decoder = try fresh()
        // A value of 5000 bytes announced: refused from its length, before the bytes come.
        var oversized: [UInt8] = [0xc0]
        QPACK.encodeInteger(5000, prefixBits: 7, flags: 0, into: &oversized)
        #expect(throws: HTTP3Error(.qpackEncoderStreamError, "")) { try decoder.receiveEncoderInstructions(oversized) }
        // An entry of 4065 bytes (> 4096 with the 32 of overhead), sent whole.
        decoder = try fresh()
        var big: [UInt8] = [0x40 | 0x01, 0x61]  // literal name "a"
        QPACK.encodeInteger(4064, prefixBits: 7, flags: 0, into: &big)
        big += [UInt8](repeating: 0x62, count: 4064)
        #expect(throws: HTTP3Error(.qpackEncoderStreamError, "")) { try decoder.receiveEncoderInstructions(big) }
        decoder = try fresh()
        #expect(throws: HTTP3Error(.qpackEncoderStreamError, "")) { try decoder.receiveEncoderInstructions(hex("3fe21f")) }  // 4097
        decoder = try fresh()
        #expect(throws: HTTP3Error(.qpackEncoderStreamError, "")) { try decoder.receiveEncoderInstructions([0x80, 0x00]) }  // no entry 0
        decoder = try fresh()
        #expect(throws: HTTP3Error(.qpackEncoderStreamError, "")) { try decoder.receiveEncoderInstructions([0x00]) }  // duplicate of nothing
        decoder = try fresh()
        #expect(throws: HTTP3Error(.qpackEncoderStreamError, "")) { try decoder.receiveEncoderInstructions([0xff, 0x7f, 0x00]) }  // static 126
        // Truncated instructions wait, byte by byte, and then apply.
        decoder = try fresh()
        for byte in hex("c00f 7777 772e 6578 616d 706c 652e 636f 6d 3f") { try decoder.receiveEncoderInstructions([byte]) }
        #expect(decoder.insertCount == 1)
        // Random encoder streams and sections never crash, and memory stays bounded.
        var rng = SplitMix64(seed: 9204)
        for _ in 0..<300 {
            var random = QPACKDecoder(maxTableCapacity: 256, maxBlockedStreams: 2)
            for _ in 0..<8 {
                let bytes = (0..<Int(rng.next() % 24)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                do { try random.receiveEncoderInstructions(bytes) } catch { break }
                #expect(random.size <= 256)
                let section = (0..<Int(rng.next() % 12)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                _ = try? random.decode(section, streamID: rng.next() % 64 * 4, maxSize: 1 << 12)
            }
        }
    }

    @Test("Encoder ⇄ decoder over many sections: wrapped Required Insert Counts, late inserts, random acknowledgment order")
    func longRandomRun() throws {
        var pair = Pair(capacity: 320, blocked: 3)
        var rng = SplitMix64(seed: 42)
        var waiting: [(stream: UInt64, section: [UInt8], lines: [FieldLine])] = []
        var pendingInserts: [UInt8] = []
        for index in 0..<600 {
            let lines = [FieldLine(":method", "GET"), FieldLine(":authority", "host\(rng.next() % 6)"),
                         FieldLine("content-type", "t\(rng.next() % 9)"), FieldLine("x-n", "\(rng.next() % 4)")]
            waiting.append((UInt64(4 * index), pair.encoder.encode(lines, streamID: UInt64(4 * index)), lines))
            pendingInserts += pair.encoder.takeInstructions()
            if rng.next() % 3 == 0 {  // the encoder stream catches up
                try pair.decoder.receiveEncoderInstructions(pendingInserts)
                pendingInserts = []
            }
            // Decode whatever can be, in a random order; the rest stays blocked.
            waiting.shuffle(using: &rng)
            var still: [(stream: UInt64, section: [UInt8], lines: [FieldLine])] = []
            for item in waiting {
                switch try pair.decoder.decode(item.section, streamID: item.stream, maxSize: 1 << 16) {
                case .decoded(let fields): #expect(fields == item.lines)
                case .blocked: still.append(item)
                }
            }
            waiting = still
            try pair.deliverAcknowledgments()
        }
        try pair.decoder.receiveEncoderInstructions(pendingInserts)
        for item in waiting { #expect(fields(try pair.decoder.decode(item.section, streamID: item.stream, maxSize: 1 << 16)) == item.lines) }
        #expect(pair.encoder.insertCount > 2 * (320 / 32), "the Required Insert Count wrapped")
    }
}
