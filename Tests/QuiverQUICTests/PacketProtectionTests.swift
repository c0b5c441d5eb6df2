import QuiverCore
import QuiverTLS
import Testing

@_spi(Wire) @testable import QuiverQUIC

/// RFC 9001 Appendix A (QUIC v1) and RFC 9369 Appendix A (QUIC v2), byte for byte, both
/// directions.
@Suite("Packet protection vectors")
struct PacketProtectionTests {
    struct Vectors: Sendable, CustomStringConvertible {
        let version: QUICVersion
        let clientInitialSecret, clientKey, clientIV, clientHP: String
        let serverInitialSecret, serverKey, serverIV, serverHP: String
        let clientInitialPayload, clientInitialHeader, clientInitialPacket: String
        let serverInitialPayload, serverInitialHeader, serverInitialPacket: String
        let retryPacket: String
        let chachaSecret, chachaKey, chachaIV, chachaHP, chachaKU, chachaPacket: String
        let chachaPacketNumber: UInt64
        var description: String { "\(version)" }
    }

    static let all: [Vectors] = [
        Vectors(
            version: .v1, clientInitialSecret: RFC9001.clientInitialSecret, clientKey: RFC9001.clientKey, clientIV: RFC9001.clientIV,
            clientHP: RFC9001.clientHP, serverInitialSecret: RFC9001.serverInitialSecret, serverKey: RFC9001.serverKey,
            serverIV: RFC9001.serverIV, serverHP: RFC9001.serverHP, clientInitialPayload: RFC9001.clientInitialPayload,
            clientInitialHeader: RFC9001.clientInitialHeader, clientInitialPacket: RFC9001.clientInitialPacket,
            serverInitialPayload: RFC9001.serverInitialPayload, serverInitialHeader: RFC9001.serverInitialHeader,
            serverInitialPacket: RFC9001.serverInitialPacket, retryPacket: RFC9001.retryPacket, chachaSecret: RFC9001.chachaSecret,
            chachaKey: RFC9001.chachaKey, chachaIV: RFC9001.chachaIV, chachaHP: RFC9001.chachaHP, chachaKU: RFC9001.chachaKU,
            chachaPacket: RFC9001.chachaPacket, chachaPacketNumber: RFC9001.chachaPacketNumber),
        Vectors(
            version: .v2, clientInitialSecret: RFC9369.clientInitialSecret, clientKey: RFC9369.clientKey, clientIV: RFC9369.clientIV,
            clientHP: RFC9369.clientHP, serverInitialSecret: RFC9369.serverInitialSecret, serverKey: RFC9369.serverKey,
            serverIV: RFC9369.serverIV, serverHP: RFC9369.serverHP, clientInitialPayload: RFC9369.clientInitialPayload,
            clientInitialHeader: RFC9369.clientInitialHeader, clientInitialPacket: RFC9369.clientInitialPacket,
            serverInitialPayload: RFC9369.serverInitialPayload, serverInitialHeader: RFC9369.serverInitialHeader,
            serverInitialPacket: RFC9369.serverInitialPacket, retryPacket: RFC9369.retryPacket, chachaSecret: RFC9369.chachaSecret,
            chachaKey: RFC9369.chachaKey, chachaIV: RFC9369.chachaIV, chachaHP: RFC9369.chachaHP, chachaKU: RFC9369.chachaKU,
            chachaPacket: RFC9369.chachaPacket, chachaPacketNumber: RFC9369.chachaPacketNumber),
    ]

    static let dcid = hex("8394c8f03e515708")

    @Test("A.1 Initial secrets and keys", arguments: all)
    func initialKeys(_ v: Vectors) {
        let (client, server) = PacketKey.initial(version: v.version, destinationConnectionID: Self.dcid)
        #expect(client.secret.secret == hex(v.clientInitialSecret))
        #expect(server.secret.secret == hex(v.serverInitialSecret))
        let h = TLSHash.sha256
        let p = v.version == .v2 ? "quicv2 " : "quic "
        #expect(h.expandLabel(secret: client.secret.secret, label: p + "key", context: [], length: 16) == hex(v.clientKey))
        #expect(h.expandLabel(secret: client.secret.secret, label: p + "iv", context: [], length: 12) == hex(v.clientIV))
        #expect(h.expandLabel(secret: client.secret.secret, label: p + "hp", context: [], length: 16) == hex(v.clientHP))
        #expect(h.expandLabel(secret: server.secret.secret, label: p + "key", context: [], length: 16) == hex(v.serverKey))
        #expect(h.expandLabel(secret: server.secret.secret, label: p + "iv", context: [], length: 12) == hex(v.serverIV))
        #expect(h.expandLabel(secret: server.secret.secret, label: p + "hp", context: [], length: 16) == hex(v.serverHP))
    }

    @Test("A.2 client Initial: protect and unprotect", arguments: all)
    func clientInitial(_ v: Vectors) throws {
        let (client, _) = PacketKey.initial(version: v.version, destinationConnectionID: Self.dcid)
        var payload = hex(v.clientInitialPayload)
        payload += [UInt8](repeating: 0, count: 1162 - payload.count)
        let header = hex(v.clientInitialHeader)
        // Our header encoder produces the same unprotected header.
        var w = ByteWriter()
        let long = LongHeader(type: .initial, version: v.version, destinationConnectionID: ConnectionID(Self.dcid)!, sourceConnectionID: .empty)
        let pnOffset = long.encode(into: &w, packetNumber: 2, packetNumberLength: 4, payloadLength: 1162 + 16)
        #expect(w.bytes == header)
        var packet = header + payload
        client.protect(&packet, packetNumberOffset: pnOffset, packetNumber: 2)
        #expect(packet == hex(v.clientInitialPacket))

        let parsed = try PacketHeader.parse(hex(v.clientInitialPacket), shortHeaderConnectionIDLength: 8)
        guard case .long(let h) = parsed else { Issue.record("not a long header"); return }
        #expect(h.type == .initial && h.version == v.version && h.destinationConnectionID.bytes == Self.dcid)
        #expect(h.packetLength == 1200 && h.packetNumberOffset == pnOffset)
        let opened = try #require(client.unprotect(hex(v.clientInitialPacket), packetNumberOffset: h.packetNumberOffset, largestReceived: nil))
        #expect(opened.packetNumber == 2)
        #expect(opened.header == header)
        #expect(opened.payload == payload)
        #expect(opened.reservedBits == 0)
    }

    @Test("A.3 server Initial: protect and unprotect", arguments: all)
    func serverInitial(_ v: Vectors) throws {
        let (_, server) = PacketKey.initial(version: v.version, destinationConnectionID: Self.dcid)
        let header = hex(v.serverInitialHeader)
        let payload = hex(v.serverInitialPayload)
        var w = ByteWriter()
        let long = LongHeader(type: .initial, version: v.version, destinationConnectionID: .empty, sourceConnectionID: ConnectionID(hex("f067a5502a4262b5"))!)
        let pnOffset = long.encode(into: &w, packetNumber: 1, packetNumberLength: 2, payloadLength: payload.count + 16)
        #expect(w.bytes == header)
        var packet = header + payload
        server.protect(&packet, packetNumberOffset: pnOffset, packetNumber: 1)
        #expect(packet == hex(v.serverInitialPacket))
        let opened = try #require(server.unprotect(packet, packetNumberOffset: pnOffset, largestReceived: 0))
        #expect(opened.packetNumber == 1 && opened.payload == payload)
        // A flipped bit anywhere in the protected payload fails authentication.
        var tampered = packet
        tampered[tampered.count - 20] ^= 0x10
        #expect(server.unprotect(tampered, packetNumberOffset: pnOffset, largestReceived: 0) == nil)
        // The other direction's key cannot open it.
        let (client, _) = PacketKey.initial(version: v.version, destinationConnectionID: Self.dcid)
        #expect(client.unprotect(packet, packetNumberOffset: pnOffset, largestReceived: 0) == nil)
    }

    @Test("A.4 Retry: integrity tag, parse and build", arguments: all)
    func retry(_ v: Vectors) throws {
        let packet = hex(v.retryPacket)
        #expect(RetryIntegrity.isValid(retryPacket: packet, originalDestinationConnectionID: Self.dcid, version: v.version))
        #expect(!RetryIntegrity.isValid(retryPacket: packet, originalDestinationConnectionID: hex("0001020304050607"), version: v.version))
        let other: QUICVersion = v.version == .v1 ? .v2 : .v1
        #expect(!RetryIntegrity.isValid(retryPacket: packet, originalDestinationConnectionID: Self.dcid, version: other))
        let parsed = try PacketHeader.parse(packet, shortHeaderConnectionIDLength: 0)
        guard case .retry(let r) = parsed else { Issue.record("not a Retry"); return }
        #expect(r.version == v.version && r.token == Array("token".utf8) && r.sourceConnectionID.bytes == hex("f067a5502a4262b5"))
        let rebuilt = RetryPacket.make(
            version: v.version, destinationConnectionID: .empty, sourceConnectionID: r.sourceConnectionID, token: r.token,
            originalDestinationConnectionID: Self.dcid, unusedBits: packet[0] & 0x0f)
        #expect(rebuilt == packet)
    }

    @Test("A.5 ChaCha20-Poly1305 short header", arguments: all)
    func chacha(_ v: Vectors) throws {
        let key = PacketKey(secret: TrafficSecret(suite: .chacha20Poly1305SHA256, secret: hex(v.chachaSecret)), version: v.version)
        let h = TLSHash.sha256
        let p = v.version == .v2 ? "quicv2 " : "quic "
        #expect(h.expandLabel(secret: key.secret.secret, label: p + "key", context: [], length: 32) == hex(v.chachaKey))
        #expect(h.expandLabel(secret: key.secret.secret, label: p + "iv", context: [], length: 12) == hex(v.chachaIV))
        #expect(h.expandLabel(secret: key.secret.secret, label: p + "hp", context: [], length: 32) == hex(v.chachaHP))
        #expect(key.nextPhase().secret.secret == hex(v.chachaKU))
        var w = ByteWriter()
        let pnOffset = ShortHeader(destinationConnectionID: .empty).encode(into: &w, packetNumber: v.chachaPacketNumber & 0xffffff, packetNumberLength: 3, keyPhase: false)
        #expect(w.bytes == hex("4200bff4"))
        var packet = w.bytes + [0x01]
        key.protect(&packet, packetNumberOffset: pnOffset, packetNumber: v.chachaPacketNumber)
        #expect(packet == hex(v.chachaPacket))
        let opened = try #require(key.unprotect(packet, packetNumberOffset: 1, largestReceived: v.chachaPacketNumber - 1))
        #expect(opened.packetNumber == v.chachaPacketNumber && opened.payload == [0x01] && !opened.keyPhase)
    }

    @Test("key update: the next phase keeps the header-protection key and changes the AEAD key")
    func keyPhase() throws {
        let key = PacketKey(secret: TrafficSecret(suite: .aes128GCMSHA256, secret: Array(repeating: 1, count: 32)), version: .v1)
        let next = key.nextPhase()
        var w = ByteWriter()
        let pnOffset = ShortHeader(destinationConnectionID: ConnectionID([1, 2, 3, 4])!).encode(into: &w, packetNumber: 7, packetNumberLength: 2, keyPhase: true)
        var packet = w.bytes + Array(repeating: 0, count: 20)
        next.protect(&packet, packetNumberOffset: pnOffset, packetNumber: 7)
        #expect(key.unprotect(packet, packetNumberOffset: pnOffset, largestReceived: 6) == nil)
        let opened = try #require(next.unprotect(packet, packetNumberOffset: pnOffset, largestReceived: 6))
        #expect(opened.keyPhase && opened.packetNumber == 7)
    }

    @Test("packet numbers: RFC 9000 A.2/A.3 examples, wrap and truncation")
    func packetNumbers() {
        // A.3: expected 0xa82f30eb, truncated 0x9b32 (16 bits) → 0xa82f9b32.
        #expect(PacketNumber.decode(truncated: 0x9b32, length: 2, largestReceived: 0xa82f30ea) == 0xa82f9b32)
        // A.2: largest acked 0xabe8b3, sending 0xac5c02 → 16 bits; sending 0xace8fe → 24 bits.
        #expect(PacketNumber.encodingLength(0xac5c02, largestAcknowledged: 0xabe8b3) == 2)
        #expect(PacketNumber.encodingLength(0xace8fe, largestAcknowledged: 0xabe8b3) == 3)
        #expect(PacketNumber.encodingLength(0, largestAcknowledged: nil) == 1)
        #expect(PacketNumber.encodingLength(1 << 40, largestAcknowledged: nil) == 4)
        // Round trip across byte boundaries and wraps of the truncated field.
        for largest: UInt64 in [0, 0xfe, 0xff, 0xffff, 0x1_0000_00ff, (1 << 62) - 300] {
            for delta: UInt64 in [1, 2, 127, 128, 255, 256, 1000] where largest + delta < 1 << 62 {
                let pn = largest + delta
                let length = PacketNumber.encodingLength(pn, largestAcknowledged: largest)
                let truncated = pn & ((1 << UInt64(length * 8)) - 1)
                #expect(PacketNumber.decode(truncated: truncated, length: length, largestReceived: largest) == pn)
            }
        }
        #expect(PacketNumber.decode(truncated: 0, length: 1, largestReceived: nil) == 0)
    }

    @Test("headers: Version Negotiation, unsupported versions, short headers, coalescing")
    func headers() throws {
        let vn = VersionNegotiationPacket(destinationConnectionID: [1, 2], sourceConnectionID: [3], supportedVersions: [.v1, .v2])
        let bytes = vn.encoded(unusedBits: 0x35)
        #expect(try PacketHeader.parse(bytes, shortHeaderConnectionIDLength: 0) == .versionNegotiation(vn))
        // An unknown version: only invariants; a VN response swaps the CIDs.
        let unknown: [UInt8] = [0xc0, 0x1a, 0x2a, 0x3a, 0x4a, 2, 9, 9, 1, 7] + Array(repeating: 0, count: 20)
        let header = try PacketHeader.parse(unknown, shortHeaderConnectionIDLength: 0)
        #expect(header == .unsupportedVersion(version: QUICVersion(rawValue: 0x1a2a3a4a), destinationConnectionID: [9, 9], sourceConnectionID: [7]))
        #expect(QUICVersion(rawValue: 0x1a2a3a4a).isReserved)
        #expect(VersionNegotiationPacket.response(to: header, supportedVersions: [.v1])?.destinationConnectionID == [7])
        // Short header with the endpoint's CID length.
        let short = try PacketHeader.parse([0x61, 1, 2, 3, 4, 5, 6, 7, 8] + Array(repeating: 0, count: 20), shortHeaderConnectionIDLength: 8)
        #expect(short == .short(ShortHeader(destinationConnectionID: ConnectionID([1, 2, 3, 4, 5, 6, 7, 8])!, spinBit: true)))
        // Fixed bit zero is refused unless grease_quic_bit was negotiated.
        #expect(throws: QUICError.self) { try PacketHeader.parse([0x01, 1, 2, 3, 4], shortHeaderConnectionIDLength: 4) }
        #expect((try? PacketHeader.parse([0x01, 1, 2, 3, 4], shortHeaderConnectionIDLength: 4, allowGreasedFixedBit: true)) != nil)
        // Coalesced: the server Initial followed by a short-header packet.
        let initial = hex(RFC9001.serverInitialPacket)
        let datagram = initial + [0x41] + Array(repeating: 0xaa, count: 30)
        let parts = PacketHeader.split(datagram, shortHeaderConnectionIDLength: 0)
        #expect(parts.count == 2)
        #expect(parts.first?.range == 0..<initial.count)
        #expect(parts.last?.range == initial.count..<datagram.count)
    }

    @Test("headers: malformed input gives PROTOCOL_VIOLATION, never a trap")
    func malformedHeaders() {
        let cases: [[UInt8]] = [
            [], [0xc0], [0xc0, 0, 0, 0, 1], [0xc0, 0, 0, 0, 1, 21] + Array(repeating: 0, count: 21) + [0],  // 21-byte CID
            [0xc0, 0, 0, 0, 1, 0, 0, 0x44, 0x00],  // token length beyond the datagram
            [0xc0, 0, 0, 0, 1, 0, 0, 0, 0x40, 0x50, 1],  // Length beyond the datagram
            [0xc0, 0, 0, 0, 1, 0, 0, 0, 0],  // Length zero
            [0xf0, 0, 0, 0, 1, 0, 0, 1, 2, 3],  // Retry without a tag
            [0x80, 0, 0, 0, 0, 0, 0],  // VN without versions
            [0x80, 0, 0, 0, 0, 0, 0, 1, 2],  // VN with a partial version
            [0x40, 1],  // short header shorter than the CID
        ]
        for bytes in cases {
            #expect(throws: QUICError.self, "\(bytes)") { try PacketHeader.parse(bytes, shortHeaderConnectionIDLength: 8) }
        }
        var rng = SeededGenerator(seed: 42)
        for _ in 0..<5000 {
            let bytes = (0..<Int.random(in: 0..<80, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            _ = try? PacketHeader.parse(bytes, shortHeaderConnectionIDLength: Int.random(in: 0...20, using: &rng))
            _ = PacketHeader.split(bytes, shortHeaderConnectionIDLength: 8)
        }
    }

    @Test("unprotect refuses packets too short to sample")
    func tooShort() {
        let (client, _) = PacketKey.initial(version: .v1, destinationConnectionID: Self.dcid)
        #expect(client.unprotect([0xc0, 1, 2, 3], packetNumberOffset: 1, largestReceived: nil) == nil)
        #expect(client.unprotect(Array(repeating: 0, count: 20), packetNumberOffset: 0, largestReceived: nil) == nil)
    }

    @Test("stateless reset: token derivation, detection, packet shape")
    func statelessReset() {
        let key = Array(repeating: UInt8(9), count: 32)
        let token = StatelessReset.token(key: key, connectionID: [1, 2, 3])
        #expect(token.count == 16)
        #expect(token == StatelessReset.token(key: key, connectionID: [1, 2, 3]))
        #expect(token != StatelessReset.token(key: key, connectionID: [1, 2, 4]))
        let packet = StatelessReset.packet(token: token, length: 40, random: .system)
        #expect(packet.count == 40 && packet[0] & 0xc0 == 0x40)
        #expect(StatelessReset.matches(datagram: packet, tokens: [Array(repeating: 0, count: 16), token]))
        #expect(!StatelessReset.matches(datagram: Array(packet.dropLast()) + [0], tokens: [token]))
        #expect(!StatelessReset.matches(datagram: Array(token), tokens: [token]))
    }
}
