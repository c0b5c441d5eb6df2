@testable import QuiverSCTP
import Testing

@Suite struct SCTPWireTests {
    static let chunks: [SCTPChunk] = [
        .data(SCTPDataChunk(tsn: 0xFFFF_FFFF, stream: 3, ssn: 9, ppid: 51, unordered: true, beginning: true, ending: false,
                            immediate: true, payload: [1, 2, 3, 4, 5])),
        .initiation(SCTPInitChunk(initiateTag: 7, advertisedWindow: 65536, outboundStreams: 10, inboundStreams: 2048,
                                  initialTSN: 1, parameters: [SCTPParameter(type: 0xC000, value: []), SCTPParameter(type: 12, value: [0, 5])])),
        .initiationAck(SCTPInitChunk(initiateTag: 8, advertisedWindow: 1, outboundStreams: 1, inboundStreams: 1,
                                     initialTSN: 2, parameters: [SCTPParameter(type: 7, value: [9, 9, 9])])),
        .sack(SCTPSackChunk(cumulativeTSN: 100, advertisedWindow: 5000, gapBlocks: [2...3, 5...9], duplicates: [99, 98])),
        .heartbeat(info: [1, 2, 3]), .heartbeatAck(info: Array(0..<16)),
        .abort(tagReflected: true, causes: [SCTPErrorCause(code: 12, info: Array("bye".utf8))]),
        .shutdown(cumulativeTSN: 42), .shutdownAck,
        .error(causes: [SCTPErrorCause(code: 1, info: [0, 5, 0, 0]), SCTPErrorCause(code: 3, info: [0, 0, 1, 0])]),
        .cookieEcho(cookie: [7, 7, 7, 7, 7, 7]), .cookieAck, .shutdownComplete(tagReflected: false),
        .unrecognized(type: 0xC1, flags: 0x5A, value: [1, 2]),
    ]

    @Test func everyChunkRoundTrips() throws {
        let packet = SCTPPacket(sourcePort: 5000, destinationPort: 5001, verificationTag: 0xDEAD_BEEF, chunks: Self.chunks)
        let bytes = packet.encoded()
        #expect(bytes.count % 4 == 0)
        #expect(SCTPPacket.checksumIsValid(bytes))
        #expect(try SCTPPacket.parse(bytes) == packet)
        var corrupted = bytes
        corrupted[20] ^= 0x10
        #expect(!SCTPPacket.checksumIsValid(corrupted))
    }

    /// RFC 9260 §3.2: a chunk's length excludes its final padding; the next chunk starts at a
    /// multiple of four.
    @Test func lengthsExcludePadding() throws {
        let bytes = SCTPPacket(sourcePort: 1, destinationPort: 2, verificationTag: 3,
                               chunks: [.cookieEcho(cookie: [1, 2, 3, 4, 5]), .cookieAck]).encoded()
        #expect(bytes[12...15] == [10, 0, 0, 9])
        #expect(bytes[21...23] == [0, 0, 0])
        #expect(bytes[24...27] == [11, 0, 0, 4])
        #expect(bytes.count == 28)
    }

    /// A packet usrsctp's ekr_client sent (its INIT, with AUTH and extension parameters),
    /// checksum included: our CRC32c and parser agree with it.
    @Test func usrsctpInitParses() throws {
        let hex = "faf6138900000000999769e801000056d7475ddb00020000000a08003fefebb7c000000480080009c00fc180820000008002002" +
            "4dadcc2cca04e865860e21f447bc8185549f8064a2bcc673307d598384799ea2f800400060001000080030006" + "80c10000"
        let bytes = stride(from: 0, to: hex.count, by: 2).map { offset -> UInt8 in
            let start = hex.index(hex.startIndex, offsetBy: offset)
            return UInt8(hex[start..<hex.index(start, offsetBy: 2)], radix: 16)!
        }
        #expect(SCTPPacket.checksumIsValid(bytes))
        let packet = try SCTPPacket.parse(bytes)
        #expect(packet.sourcePort == 0xFAF6 && packet.destinationPort == 5001 && packet.verificationTag == 0)
        guard case .initiation(let initiation) = packet.chunks.first else {
            Issue.record("not an INIT: \(packet.chunks)")
            return
        }
        #expect(initiation.initiateTag == 0xD747_5DDB && initiation.outboundStreams == 10 && initiation.inboundStreams == 2048)
        #expect(initiation.parameters.map(\.type) == [0xC000, 0x8008, 0x8002, 0x8004, 0x8003])
    }

    @Test func truncatedAndOverlongChunksAreRejected() {
        var bytes = SCTPPacket(sourcePort: 1, destinationPort: 2, verificationTag: 3, chunks: [.shutdown(cumulativeTSN: 1)]).encoded()
        bytes[15] = 12  // longer than the packet
        #expect(throws: SCTPWireError.self) { try SCTPPacket.parse(bytes) }
        bytes[15] = 4  // SHUTDOWN without its TSN
        #expect(throws: SCTPWireError.self) { try SCTPPacket.parse(Array(bytes.prefix(16))) }
        bytes[15] = 2  // shorter than a chunk header
        #expect(throws: SCTPWireError.self) { try SCTPPacket.parse(bytes) }
    }
}
