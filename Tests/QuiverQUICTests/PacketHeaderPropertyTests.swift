import QuiverCore
import Testing

@_spi(Wire) @testable import QuiverQUIC

/// Random headers of every kind survive encode → parse with every field intact.
@Suite("Packet header round trips")
struct PacketHeaderPropertyTests {
    static func randomBytes(_ count: Int, _ rng: inout SeededGenerator) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
    }

    @Test("long headers (Initial, 0-RTT, Handshake), v1 and v2, with payloads")
    func longHeaders() throws {
        var rng = SeededGenerator(seed: 7)
        for _ in 0..<2000 {
            let version: QUICVersion = Bool.random(using: &rng) ? .v1 : .v2
            let type = [PacketType.initial, .zeroRTT, .handshake].randomElement(using: &rng)!
            let dcid = ConnectionID(Self.randomBytes(Int.random(in: 0...20, using: &rng), &rng))!
            let scid = ConnectionID(Self.randomBytes(Int.random(in: 0...20, using: &rng), &rng))!
            let token = type == .initial ? Self.randomBytes([0, 1, 63, 64, 300].randomElement(using: &rng)!, &rng) : []
            let pnLength = Int.random(in: 1...4, using: &rng)
            let pn = UInt64.random(in: 0..<(1 << UInt64(8 * pnLength)), using: &rng)
            let payloadLength = [1, 20, 100, 1200, 17000].randomElement(using: &rng)!
            var w = ByteWriter()
            let header = LongHeader(type: type, version: version, destinationConnectionID: dcid, sourceConnectionID: scid, token: token)
            let pnOffset = header.encode(into: &w, packetNumber: pn, packetNumberLength: pnLength, payloadLength: payloadLength)
            let packet = w.bytes + Self.randomBytes(payloadLength, &rng)
            let trailing = Self.randomBytes(Int.random(in: 0...30, using: &rng), &rng)
            let parsed = try PacketHeader.parse(packet + trailing, shortHeaderConnectionIDLength: 8)
            guard case .long(let h) = parsed else { Issue.record("not long: \(parsed)"); return }
            #expect(h.type == type && h.version == version && h.destinationConnectionID == dcid && h.sourceConnectionID == scid)
            #expect(h.token == token && h.packetNumberOffset == pnOffset && h.packetLength == packet.count)
            var r = ByteReader(Array(packet[pnOffset..<(pnOffset + pnLength)]))
            #expect(try r.readUInt(byteCount: pnLength) == pn)
            #expect(Int(packet[0] & 0x03) + 1 == pnLength)
        }
    }

    @Test("short headers with every CID length, spin and key-phase bits")
    func shortHeaders() throws {
        var rng = SeededGenerator(seed: 8)
        for _ in 0..<2000 {
            let dcid = ConnectionID(Self.randomBytes(Int.random(in: 0...20, using: &rng), &rng))!
            let spin = Bool.random(using: &rng)
            let keyPhase = Bool.random(using: &rng)
            let pnLength = Int.random(in: 1...4, using: &rng)
            var w = ByteWriter()
            let header = ShortHeader(destinationConnectionID: dcid, spinBit: spin)
            let pnOffset = header.encode(into: &w, packetNumber: 0, packetNumberLength: pnLength, keyPhase: keyPhase)
            #expect(pnOffset == header.packetNumberOffset)
            let parsed = try PacketHeader.parse(w.bytes + Self.randomBytes(20, &rng), shortHeaderConnectionIDLength: dcid.count)
            #expect(parsed == .short(header))
            #expect((w.bytes[0] & 0x04 != 0) == keyPhase)
        }
    }

    @Test("Retry and Version Negotiation round trips")
    func retryAndVN() throws {
        var rng = SeededGenerator(seed: 9)
        for _ in 0..<500 {
            let version: QUICVersion = Bool.random(using: &rng) ? .v1 : .v2
            let dcid = ConnectionID(Self.randomBytes(Int.random(in: 0...20, using: &rng), &rng))!
            let scid = ConnectionID(Self.randomBytes(Int.random(in: 0...20, using: &rng), &rng))!
            let odcid = Self.randomBytes(Int.random(in: 8...20, using: &rng), &rng)
            let token = Self.randomBytes(Int.random(in: 1...100, using: &rng), &rng)
            let packet = RetryPacket.make(version: version, destinationConnectionID: dcid, sourceConnectionID: scid, token: token, originalDestinationConnectionID: odcid)
            guard case .retry(let r) = try PacketHeader.parse(packet, shortHeaderConnectionIDLength: 0) else { Issue.record("not Retry"); return }
            #expect(r.destinationConnectionID == dcid && r.sourceConnectionID == scid && r.token == token && r.version == version)
            #expect(RetryIntegrity.isValid(retryPacket: packet, originalDestinationConnectionID: odcid, version: version))
            let versions = (0..<Int.random(in: 1...10, using: &rng)).map { _ in QUICVersion(rawValue: UInt32.random(in: 1...UInt32.max, using: &rng)) }
            let vn = VersionNegotiationPacket(destinationConnectionID: dcid.bytes, sourceConnectionID: scid.bytes, supportedVersions: versions)
            #expect(try PacketHeader.parse(vn.encoded(unusedBits: UInt8.random(in: 0...255, using: &rng)), shortHeaderConnectionIDLength: 0) == .versionNegotiation(vn))
        }
    }

    @Test("coalesced datagrams split exactly at Length boundaries")
    func coalesced() throws {
        var rng = SeededGenerator(seed: 10)
        for _ in 0..<300 {
            var datagram: [UInt8] = []
            var expected: [Range<Int>] = []
            for type in [PacketType.initial, .zeroRTT, .handshake].shuffled(using: &rng).prefix(Int.random(in: 1...3, using: &rng)) {
                var w = ByteWriter()
                let header = LongHeader(type: type, version: .v1, destinationConnectionID: ConnectionID([1, 2, 3, 4])!, sourceConnectionID: .empty)
                let length = Int.random(in: 1...300, using: &rng)
                _ = header.encode(into: &w, packetNumber: 1, packetNumberLength: 2, payloadLength: length)
                let packet = w.bytes + Self.randomBytes(length, &rng)
                expected.append(datagram.count..<(datagram.count + packet.count))
                datagram += packet
            }
            if Bool.random(using: &rng) {
                expected.append(datagram.count..<(datagram.count + 30))
                datagram += [0x40, 1, 2, 3, 4] + Self.randomBytes(25, &rng)
            }
            #expect(PacketHeader.split(datagram, shortHeaderConnectionIDLength: 4).map(\.range) == expected)
        }
    }
}
