import QuiverCore
@testable import QuiverQUIC
import Testing

/// QUIC-LB connection IDs (draft-ietf-quic-load-balancers-21): the draft's vectors, the
/// round trip of every length, and the server-side generator.
@Suite("QUIC-LB connection IDs")
struct QUICLBConnectionIDTests {
    static let key = hex("8f95f09245765f80256934e50c66207f")

    static func codec(_ configID: UInt8, _ serverID: [UInt8], _ nonce: [UInt8], key: [UInt8]?) throws -> QUICLBConnectionIDs {
        QUICLBConnectionIDs(try QUICLBConfiguration(configID: configID, serverIDLength: serverID.count, nonceLength: nonce.count, key: key))
    }

    @Test("Appendix B.1: plaintext connection IDs")
    func plaintextVector() throws {
        let codec = try Self.codec(0, hex("c4605e"), hex("4504cc4f"), key: nil)
        #expect(codec.connectionID(serverID: hex("c4605e"), nonce: hex("4504cc4f")).bytes == hex("07c4605e4504cc4f"))
        #expect(codec.serverID(in: hex("07c4605e4504cc4f")) == hex("c4605e"))
    }

    @Test("Appendix B.2: encrypted, four passes (odd and even lengths, server ID longer than the nonce) and one pass",
          arguments: [
              (UInt8(0), "ed793a", "ee080dbf", "0720b1d07b359d3c"),
              (1, "ed793a51d49b8f5fab65", "ee080dbf48", "2fcc381bc74cb4fbad2823a3d1f8fed2"),
              (2, "ed793a51d49b8f5f", "ee080dbf48c0d1e5", "504dd2d05a7b0de9b2b9907afb5ecf8cc3"),
              (3, "ed793a51d49b8f5fab", "ee080dbf48c0d1e55d", "125779c9cc86beb3a3a4a3ca96fce4bfe0cdbc"),
          ])
    func encryptedVectors(configID: UInt8, serverID: String, nonce: String, expected: String) throws {
        let codec = try Self.codec(configID, hex(serverID), hex(nonce), key: Self.key)
        let id = codec.connectionID(serverID: hex(serverID), nonce: hex(nonce)).bytes
        // The last vector's first octet, 0x12, says config 0 and length 18, which contradicts its
        // own cr_bits of 3: §3.1 and §3.3 make it 0x72. The encrypted octets match.
        #expect(id[0] == configID << 5 | UInt8(id.count - 1))
        #expect(id.dropFirst() == hex(expected).dropFirst())
        let decoded = try #require(codec.decode(id))
        #expect(decoded.serverID == hex(serverID) && decoded.nonce == hex(nonce))
    }

    @Test("§5.4.2.4's worked example: a 7-octet plaintext through the four passes")
    func workedExample() throws {
        let codec = try Self.codec(0, hex("31441a"), hex("9c69c275"), key: hex("fdf726a9893ec05c0632d3956680baf0"))
        #expect(codec.connectionID(serverID: hex("31441a"), nonce: hex("9c69c275")).bytes == hex("0767947d29be054a"))
    }

    @Test("every length from 5 to 19 octets, keyed or not, round-trips; another config's or a short ID is unroutable")
    func roundTrips() throws {
        var random = SeededGenerator(seed: 7)
        for total in 5...19 {
            for serverIDLength in 1...(total - 4) {
                for key in [nil, Self.key] {
                    let configID = UInt8.random(in: 0...6, using: &random)
                    let codec = try Self.codec(configID, [UInt8](repeating: 0, count: serverIDLength), [UInt8](repeating: 0, count: total - serverIDLength), key: key)
                    let serverID = random.bytes(serverIDLength)
                    let nonce = random.bytes(total - serverIDLength)
                    let id = codec.connectionID(serverID: serverID, nonce: nonce).bytes
                    #expect(id.count == total + 1)
                    let decoded = try #require(codec.decode(id + [9, 9]))  // a server's own octets after it are ignored
                    #expect(decoded.serverID == serverID && decoded.nonce == nonce, "\(total) octets, server ID \(serverIDLength)")
                    if key != nil, total != 16 { #expect(Array(id[1...serverIDLength]) != serverID) }  // hidden (almost surely)
                    #expect(codec.serverID(in: [((configID + 1) % 7) << 5] + id.dropFirst()) == nil)
                    #expect(codec.serverID(in: id.dropLast()) == nil)
                }
            }
        }
    }

    @Test("configurations the draft forbids are refused")
    func invalidConfigurations() {
        #expect(throws: QUICLBConfigurationError.self) { try QUICLBConfiguration(configID: 7, serverIDLength: 2, nonceLength: 5) }
        #expect(throws: QUICLBConfigurationError.self) { try QUICLBConfiguration(configID: 0, serverIDLength: 0, nonceLength: 5) }
        #expect(throws: QUICLBConfigurationError.self) { try QUICLBConfiguration(configID: 0, serverIDLength: 2, nonceLength: 3) }
        #expect(throws: QUICLBConfigurationError.self) { try QUICLBConfiguration(configID: 0, serverIDLength: 10, nonceLength: 10) }
        #expect(throws: QUICLBConfigurationError.self) { try QUICLBConfiguration(configID: 0, serverIDLength: 2, nonceLength: 5, key: [1, 2, 3]) }
    }

    @Test("the nonce counter wraps through every value once from its start, then ends")
    func nonceCounter() {
        let counter = NonceCounter(start: [0x00, 0xfe]) { [0x00, 0xfe] }
        var seen: [[UInt8]] = []
        while let nonce = counter.next() { seen.append(nonce) }
        #expect(seen.count == 1 << 16)
        #expect(seen.prefix(3) == [[0x00, 0xfe], [0x00, 0xff], [0x01, 0x00]])
        #expect(seen.last == [0x00, 0xfd])
        #expect(counter.next() == nil)
    }

    @Test("the generator: keyed IDs count their nonce and never repeat it; plaintext nonces are random")
    func generator() throws {
        // A 4-octet nonce would take 2^32 IDs to come round; the counter is checked on the IDs
        // it makes: consecutive nonces, one server ID.
        let keyed = QUICLBConnectionIDs(try QUICLBConfiguration(configID: 2, serverIDLength: 2, nonceLength: 4, key: Self.key))
        let make = keyed.generator(serverID: [0x12, 0x34])
        let nonces = try (0..<1000).map { _ -> UInt32 in
            let decoded = try #require(keyed.decode(make().bytes))
            #expect(decoded.serverID == [0x12, 0x34])
            return decoded.nonce.reduce(0) { $0 << 8 | UInt32($1) }
        }
        #expect(zip(nonces, nonces.dropFirst()).allSatisfy { $1 == $0 &+ 1 })
        #expect(Set(nonces).count == 1000)

        let plain = QUICLBConnectionIDs(try QUICLBConfiguration(configID: 1, serverIDLength: 3, nonceLength: 5, encodesLength: false))
        let makePlain = plain.generator(serverID: [1, 2, 3])
        let ids = (0..<200).map { _ in makePlain().bytes }
        #expect(ids.allSatisfy { $0[0] >> 5 == 1 && plain.serverID(in: $0) == [1, 2, 3] })
        #expect(Set(ids.map { $0.suffix(5) }).count == 200)
        #expect(Set(ids.map { $0[0] & 0x1f }).count > 1)  // random low bits, not the length
    }
}

/// One host of a QUIC-LB deployment with several workers: the server ID names the host, the
/// worker id opens the nonce.
@Suite("QUIC-LB server with workers")
struct QUICLBServerTests {
    @Test("a worker's IDs carry the host's server ID for the balancer and the worker id after it, then 4 random octets")
    func workerIDs() throws {
        let configuration = try QUICLBConfiguration(configID: 1, serverIDLength: 1, nonceLength: 6)
        let server = try QUICLBServer(configuration: configuration, serverID: [0x2a])
        #expect(server.workerIDOffset == 2)
        let decoder = QUICLBConnectionIDs(configuration)
        let ids = (0..<100).map { _ in server.generator(worker: 0x0103)().bytes }
        #expect(ids.allSatisfy { $0.count == 8 && $0[0] == 1 << 5 | 7 && decoder.serverID(in: $0) == [0x2a] })
        #expect(ids.allSatisfy { $0[server.workerIDOffset] == 0x01 && $0[server.workerIDOffset + 1] == 0x03 })
        #expect(Set(ids.map { $0.suffix(4) }).count == 100)
        // Without a worker: the configuration's own generator, random nonce.
        let single = (0..<50).map { _ in server.generator()().bytes }
        #expect(single.allSatisfy { decoder.serverID(in: $0) == [0x2a] })
        #expect(Set(single.map { $0.suffix(6) }).count == 50)
    }

    @Test("a server ID of another length, and workers under a key or with a nonce too short for the worker id, are refused")
    func refusals() throws {
        let plain = try QUICLBConfiguration(configID: 0, serverIDLength: 2, nonceLength: 5)
        #expect(throws: QUICLBConfigurationError.self) { try QUICLBServer(configuration: plain, serverID: [1]) }
        let short = try QUICLBServer(configuration: plain, serverID: [1, 2])
        #expect(short.refusal(workers: 1) == nil)
        #expect(short.refusal(workers: 2)?.description.contains("nonce of at least 6 octets") == true)
        let keyed = try QUICLBServer(configuration: try QUICLBConfiguration(configID: 0, serverIDLength: 2, nonceLength: 8,
                                                                             key: QUICLBConnectionIDTests.key), serverID: [1, 2])
        #expect(keyed.refusal(workers: 1) == nil)
        #expect(keyed.refusal(workers: 3)?.description.contains("with a key") == true)
    }
}
