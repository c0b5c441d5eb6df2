import QuiverCore
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
        .forwardTSN(newCumulativeTSN: 0x8000_0001, streams: [SCTPForwardTSNStream(stream: 2, ssn: 0xFFFF), SCTPForwardTSNStream(stream: 9, ssn: 4)]),
        .forwardTSN(newCumulativeTSN: 7, streams: []),
        .iData(SCTPIDataChunk(tsn: 9, stream: 2, messageID: 0xFFFF_FFFE, ppid: 51, unordered: true, ending: false, payload: [1, 2, 3])),
        .iData(SCTPIDataChunk(tsn: 10, stream: 2, messageID: 0xFFFF_FFFE, fsn: 1, beginning: false, immediate: true, payload: [4])),
        .iForwardTSN(newCumulativeTSN: 11, streams: [SCTPIForwardTSNStream(stream: 2, unordered: true, messageID: 0xFFFF_FFFE),
                                                     SCTPIForwardTSNStream(stream: 3, unordered: false, messageID: 5)]),
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

    /// RFC 3758 §3.2: the FORWARD TSN's layout; bytes after the last whole stream entry are
    /// ignored.
    @Test func forwardTSNLayout() throws {
        var writer = ByteWriter()
        SCTPChunk.forwardTSN(newCumulativeTSN: 0x0102_0304, streams: [SCTPForwardTSNStream(stream: 5, ssn: 6)]).encode(into: &writer)
        #expect(writer.bytes == [192, 0, 0, 12, 1, 2, 3, 4, 0, 5, 0, 6])
        var bytes: [UInt8] = [0x13, 0x88, 0x13, 0x89, 0, 0, 0, 1, 0, 0, 0, 0, 192, 0, 0, 14, 1, 2, 3, 4, 0, 5, 0, 6, 9, 9, 0, 0]
        SCTPPacket.seal(&bytes)
        #expect(try SCTPPacket.parse(bytes).chunks == [.forwardTSN(newCumulativeTSN: 0x0102_0304, streams: [SCTPForwardTSNStream(stream: 5, ssn: 6)])])
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

/// Hostile inputs found by the FuzzSCTP target's author: reports of unrecognized chunks and
/// parameters once grew without bound (a 32 KB INIT crashed a listener), and the last TLV's
/// padding was counted in its chunk's length.
@Suite struct SCTPReportBoundTests {
    @Test func lastParameterPaddingIsNotCounted() throws {
        let chunk = SCTPChunk.initiation(SCTPInitChunk(initiateTag: 1, advertisedWindow: 1, outboundStreams: 1, inboundStreams: 1,
                                                       initialTSN: 1, parameters: [SCTPParameter(type: 0x8001, value: [1])]))
        let bytes = SCTPPacket(sourcePort: 1, destinationPort: 2, verificationTag: 0, chunks: [chunk]).encoded()
        #expect(bytes[14...15] == [0, 20 + 5])  // 20 fixed + a 5-byte parameter, not 8
        #expect(bytes.count == 12 + 28)
        #expect(try SCTPPacket.parse(bytes).chunks == [chunk])
    }

    @Test func anInitFullOfParametersToReportGetsABoundedInitAck() throws {
        let endpoint = SCTPEndpoint(configuration: .init(port: 5000))
        let parameters = Array(repeating: SCTPParameter(type: 0xC0FF, value: []), count: 8180)
        let initiation = SCTPInitChunk(initiateTag: 7, advertisedWindow: 65536, outboundStreams: 10, inboundStreams: 10,
                                       initialTSN: 1, parameters: parameters)
        let packet = SCTPPacket(sourcePort: 5001, destinationPort: 5000, verificationTag: 0, chunks: [.initiation(initiation)])
        endpoint.receive(packet.encoded(), from: SocketAddress(host: "192.0.2.1", port: 9)!, now: .now())
        let reply = try #require(endpoint.nextDatagram(now: .now()))
        #expect(reply.bytes.count < 12 + 20 + 100 + SCTPAssociation.maxReportBytes)
        guard case .initiationAck(let ack) = try SCTPPacket.parse(reply.bytes).chunks.first else {
            Issue.record("no INIT ACK")
            return
        }
        #expect(ack.parameters.filter { $0.type == SCTPParameter.unrecognizedParameter }.count == SCTPAssociation.maxReportBytes / 8)
    }

    /// §3.2.1: a parameter whose type says "stop" ends the processing of the chunk's parameters.
    @Test func aStopParameterEndsProcessing() throws {
        let endpoint = SCTPEndpoint(configuration: .init(port: 5000))
        let initiation = SCTPInitChunk(initiateTag: 7, advertisedWindow: 65536, outboundStreams: 10, inboundStreams: 10, initialTSN: 1,
                                       parameters: [SCTPParameter(type: 0x4001, value: []), SCTPParameter(type: 0xC001, value: [])])
        let packet = SCTPPacket(sourcePort: 5001, destinationPort: 5000, verificationTag: 0, chunks: [.initiation(initiation)])
        endpoint.receive(packet.encoded(), from: SocketAddress(host: "192.0.2.1", port: 9)!, now: .now())
        guard case .initiationAck(let ack) = try SCTPPacket.parse(try #require(endpoint.nextDatagram(now: .now())).bytes).chunks.first else {
            Issue.record("no INIT ACK")
            return
        }
        // 0x4001 (stop, report) is reported; 0xC001 after it is not looked at.
        #expect(ack.parameters.filter { $0.type == SCTPParameter.unrecognizedParameter }.map(\.value)
            == [SCTPParameter(type: 0x4001, value: []).encoded])
    }

    @Test func anAssociationReportsABoundedNumberOfUnknownChunks() throws {
        let pair = SCTPPair()
        let (client, server) = try pair.connect()
        _ = client
        let unknown = Array(repeating: SCTPChunk.unrecognized(type: 0xC1, flags: 0, value: []), count: 8192)
        let packet = SCTPPacket(sourcePort: 5001, destinationPort: 5000, verificationTag: server.localTag, chunks: unknown)
        pair.server.endpoint.receive(packet.encoded(), from: pair.client.address, now: pair.network.now)
        let reply = try #require(pair.server.endpoint.nextDatagram(now: pair.network.now))
        guard case .error(let causes) = try SCTPPacket.parse(reply.bytes).chunks.first else {
            Issue.record("no ERROR")
            return
        }
        #expect(causes.count == SCTPAssociation.maxReportBytes / 8)
    }
}
