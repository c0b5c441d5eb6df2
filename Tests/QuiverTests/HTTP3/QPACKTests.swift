import QuiverCore
@testable import QuiverHTTP3
import Testing

@Suite("QPACK and the Huffman code (RFC 9204, RFC 7541 vectors)")
struct QPACKTests {
    @Test("Huffman: RFC 7541 Appendix C.4 strings encode and decode")
    func huffmanVectors() {
        let vectors = [("www.example.com", "f1e3 c2e5 f23a 6ba0 ab90 f4ff"), ("no-cache", "a8eb 1064 9cbf"),
                       ("custom-key", "25a8 49e9 5ba9 7d7f"), ("custom-value", "25a8 49e9 5bb8 e8b4 bf")]
        for (text, encoded) in vectors {
            var output: [UInt8] = []
            Huffman.encode(Array(text.utf8), into: &output)
            #expect(output == hex(encoded), "\(text)")
            #expect(Huffman.decode(hex(encoded)) == Array(text.utf8))
            #expect(Huffman.encodedCount(Array(text.utf8)) == hex(encoded).count)
        }
    }

    @Test("Huffman: every byte value round-trips; bad padding and EOS are refused")
    func huffmanRoundTripAndErrors() {
        var rng = SplitMix64(seed: 9204)
        for length in [0, 1, 2, 7, 31, 255, 1000] {
            let bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            var output: [UInt8] = []
            Huffman.encode(bytes, into: &output)
            #expect(Huffman.decode(output) == bytes)
        }
        #expect(Huffman.decode([0x00]) == nil, "padding of zeros")  // '0' (5 bits 00000) then 000: not EOS's prefix
        #expect(Huffman.decode([0xff, 0xff]) == nil, "padding longer than 7 bits")
        #expect(Huffman.decode([0xff, 0xff, 0xff, 0xff]) == nil, "EOS in the data")
    }

    @Test("Prefixed integers: RFC 7541 Appendix C.1")
    func integers() throws {
        var output: [UInt8] = []
        QPACK.encodeInteger(10, prefixBits: 5, flags: 0, into: &output)
        QPACK.encodeInteger(1337, prefixBits: 5, flags: 0, into: &output)
        QPACK.encodeInteger(42, prefixBits: 8, flags: 0, into: &output)
        #expect(output == [0x0a, 0x1f, 0x9a, 0x0a, 0x2a])
        var position = 0
        #expect(try QPACK.decodeInteger(output, at: &position, prefixBits: 5) == 10)
        #expect(try QPACK.decodeInteger(output, at: &position, prefixBits: 5) == 1337)
        #expect(try QPACK.decodeInteger(output, at: &position, prefixBits: 8) == 42)
        position = 0
        #expect(throws: HTTP3Error.self) { try QPACK.decodeInteger([0x1f, 0xff], at: &position, prefixBits: 5) }
        position = 0
        #expect(throws: HTTP3Error.self) { try QPACK.decodeInteger([0x1f] + [UInt8](repeating: 0xff, count: 12), at: &position, prefixBits: 5) }
    }

    @Test("Field sections: RFC 9204 Appendix B.1 decodes; ours round-trip through static, name-reference and literal forms")
    func fieldSections() throws {
        #expect(try QPACK.decode(hex("0000 510b 2f69 6e64 6578 2e68 746d 6c")) == [FieldLine(":path", "/index.html")])
        let fields = [FieldLine(":method", "GET"), FieldLine(":scheme", "https"), FieldLine(":authority", "example.com"),
                      FieldLine(":path", "/a/b?c=d"), FieldLine("user-agent", "quiver"), FieldLine("x-custom", "Value With Spaces"),
                      FieldLine("accept", "*/*"), FieldLine("content-type", "text/plain;charset=utf-8"), FieldLine("x-empty", "")]
        let encoded = QPACK.encode(fields)
        #expect(encoded.starts(with: [0, 0]))
        #expect(encoded[2] == 0xc0 | 17, ":method GET is static entry 17")
        #expect(try QPACK.decode(encoded) == fields)
    }

    @Test("Field sections: dynamic-table references, bad Huffman, truncation and oversize fail cleanly")
    func fieldSectionErrors() {
        let failures: [[UInt8]] = [
            [0x01, 0x00, 0xd1],        // Required Insert Count 1
            [0x00, 0x00, 0x80],        // indexed, dynamic
            [0x00, 0x00, 0x41, 0x00],  // literal with dynamic name reference
            [0x00, 0x00, 0x10],        // post-base indexed
            [0x00, 0x00, 0x00, 0x00],  // post-base name reference
            [0x00, 0x00, 0xff, 0x7f],  // static index beyond the table
            [0x00, 0x00, 0x51, 0x85, 0x00],  // value: Huffman data of zeros
            [0x00, 0x00, 0x51, 0x0b, 0x2f],  // truncated value
            [0x00],                    // truncated prefix
        ]
        for bytes in failures {
            #expect(throws: HTTP3Error.self, "\(bytes)") { try QPACK.decode(bytes) }
        }
        let big = QPACK.encode([FieldLine("x-big", String(repeating: "a", count: 5000))])
        #expect(throws: HTTP3Error(.excessiveLoad, "")) { try QPACK.decode(big, maxSize: 1000) }
        var rng = SplitMix64(seed: 7)
        for _ in 0..<2000 {  // random input never crashes
            let bytes = (0..<Int(rng.next() % 40)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            _ = try? QPACK.decode(bytes)
        }
    }

    @Test("Encoder-stream instructions for a decoder that announced capacity 0")
    func instructionsWithoutTable() throws {
        var decoder = QPACKDecoder(maxTableCapacity: 0, maxBlockedStreams: 0)
        try decoder.receiveEncoderInstructions([0x20, 0x20])  // Set Dynamic Table Capacity 0, twice
        try decoder.receiveEncoderInstructions([0x3f])  // incomplete: waits
        #expect(throws: HTTP3Error(.qpackEncoderStreamError, "")) { try decoder.receiveEncoderInstructions([0xe1, 0x1f]) }  // capacity 4096
        decoder = QPACKDecoder(maxTableCapacity: 0, maxBlockedStreams: 0)
        #expect(throws: HTTP3Error(.qpackEncoderStreamError, "")) { try decoder.receiveEncoderInstructions([0xc0, 0x00]) }  // insert
        decoder.cancelStream(4)
        #expect(decoder.takeInstructions().isEmpty, "no Stream Cancellation without a table (§2.2.2.2)")
        var encoder = QPACKEncoder()
        #expect(encoder.encode([FieldLine(":authority", "example.com")], streamID: 0) == QPACK.encode([FieldLine(":authority", "example.com")]))
        #expect(encoder.takeInstructions().isEmpty, "no table before the peer's SETTINGS")
        #expect(throws: HTTP3Error(.qpackDecoderStreamError, "")) { try encoder.receiveDecoderInstructions([0x81]) }
    }
}

@Suite("HTTP/3 frames (RFC 9114 §7)")
struct HTTP3FrameTests {
    @Test("Frames round-trip; DATA arrives in pieces across appends; unknown frames are skipped")
    func roundTrip() throws {
        let frames: [HTTP3Frame] = [.settings([HTTP3Setting(HTTP3Setting.maxFieldSectionSize, 65536), HTTP3Setting(0x21, 7)]),
                                    .headers([0, 0, 0xd1]), .goaway(8), .maxPushID(3), .cancelPush(1)]
        var bytes = frames.flatMap(\.encoded)
        bytes += HTTP3Frame.header(0x21, 3) + [9, 9, 9]  // a reserved type
        bytes += HTTP3Frame.data(Array(repeating: 7, count: 5000)).encoded
        var reader = HTTP3FrameReader()
        var parsed: [HTTP3Frame] = []
        var data: [UInt8] = []
        for start in stride(from: 0, to: bytes.count, by: 333) {
            reader.append(Array(bytes[start..<min(bytes.count, start + 333)]))
            while let frame = try reader.next() {
                if case .data(let piece) = frame { data += piece } else { parsed.append(frame) }
            }
        }
        #expect(parsed == frames + [.unknown(type: 0x21)] || parsed == frames, "\(parsed)")
        #expect(data == Array(repeating: 7, count: 5000))
        #expect(reader.isAtFrameBoundary)
    }

    @Test("Malformed frames: HTTP/2 types, repeated or HTTP/2 settings, oversize, trailing bytes, a cut-off frame")
    func malformed() throws {
        func first(_ bytes: [UInt8], maxFrameSize: Int = 1 << 16) throws(HTTP3Error) -> HTTP3Frame? {
            var reader = HTTP3FrameReader(maxFrameSize: maxFrameSize)
            reader.append(bytes)
            return try reader.next()
        }
        #expect(throws: HTTP3Error(.frameUnexpected, "")) { try first([0x02, 0x00]) }
        #expect(throws: HTTP3Error(.settingsError, "")) { try first([0x04, 0x04, 0x06, 0x01, 0x06, 0x02]) }
        #expect(throws: HTTP3Error(.settingsError, "")) { try first([0x04, 0x02, 0x02, 0x01]) }
        #expect(throws: HTTP3Error(.excessiveLoad, "")) { try first([0x01, 0x44, 0x00], maxFrameSize: 100) }
        #expect(throws: HTTP3Error(.frameError, "")) { try first([0x07, 0x02, 0x01, 0x01]) }
        var reader = HTTP3FrameReader()
        reader.append([0x01, 0x05, 0x00])
        #expect(try reader.next() == nil)
        #expect(!reader.isAtFrameBoundary)
    }
}
