import QuiverCore
import Testing

@testable import QuiverTLS

/// A short, deterministic mutation fuzzer over every parser and both handshake roles: hostile
/// bytes must produce a typed error (or be accepted), never a crash, a hang or a trap. CI runs
/// these seeds; `QUIVER_FUZZ_ITERATIONS` raises the count for a soak.
@Suite("Fuzzing (mutation, deterministic)")
struct FuzzTests {
    static let iterations: Int = {
        if let text = getenvString("QUIVER_FUZZ_ITERATIONS"), let n = Int(text) { return n }
        return 400
    }()

    static func mutate(_ input: [UInt8], _ rng: inout SeededGenerator) -> [UInt8] {
        var bytes = input
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            switch Int.random(in: 0..<6, using: &rng) {
            case 0 where !bytes.isEmpty:
                bytes[Int.random(in: 0..<bytes.count, using: &rng)] ^= UInt8(1) << UInt8.random(in: 0..<8, using: &rng)
            case 1 where !bytes.isEmpty:
                bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            case 2 where !bytes.isEmpty:
                bytes.removeLast(Int.random(in: 0...min(bytes.count, 16), using: &rng))
            case 3:
                bytes.insert(contentsOf: (0..<Int.random(in: 1...8, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) },
                             at: Int.random(in: 0...bytes.count, using: &rng))
            case 4 where bytes.count > 8:
                // Set a length-looking byte pair to a large value.
                let i = Int.random(in: 0..<(bytes.count - 1), using: &rng)
                bytes[i] = 0xff
                bytes[i + 1] = UInt8.random(in: 0...255, using: &rng)
            default:
                if !bytes.isEmpty { bytes.remove(at: Int.random(in: 0..<bytes.count, using: &rng)) }
            }
        }
        return bytes
    }

    @Test("server handshake survives mutated ClientHellos")
    func serverClientHello() throws {
        let ch = try NegativeTests.clientHello()
        var rng = SeededGenerator(seed: 0xC11E)
        var accepted = 0
        for _ in 0..<Self.iterations {
            let server = TLSHandshake(server: Configs.server())
            do {
                try server.receive(Self.mutate(ch, &rng), at: .initial)
                accepted += 1
            } catch {
                #expect(error.origin == .local)
            }
        }
        #expect(accepted < Self.iterations)
    }

    @Test("client handshake survives a mutated server flight")
    func clientServerFlight() {
        var rng = SeededGenerator(seed: 0x5E4F)
        for _ in 0..<(Self.iterations / 4) {
            let pair = HandshakePair(client: Configs.client(), server: Configs.server())
            var r = SeededGenerator(seed: rng.next())
            pair.tamperServer = { _, bytes in Self.mutate(bytes, &r) }
            pair.run()
            #expect(pair.clientError != nil || pair.client.isHandshakeComplete == false || pair.client.isHandshakeComplete)
        }
    }

    @Test("record layer survives random and mutated records")
    func records() throws {
        var rng = SeededGenerator(seed: 0x4EC0)
        let pair = StreamPair(client: Configs.client(), server: Configs.server()).run()
        try pair.client.write(Array(repeating: 7, count: 100))
        let valid = pair.client.takeOutgoing()
        for i in 0..<Self.iterations {
            let server = TLSStream(server: Configs.server())
            let input = i % 2 == 0 ? Self.mutate(valid, &rng) : (0..<Int.random(in: 0..<300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            try? server.receive(input)
            try? server.receiveEOF()
            _ = server.takeOutgoing()
        }
    }

    @Test("every message parser rejects garbage with a typed error")
    func parsers() {
        var rng = SeededGenerator(seed: 0x9A45)
        let parsers: [([UInt8]) throws -> Void] = [
            { _ = try ClientHello(body: $0) },
            { _ = try ServerHello(body: $0) },
            { _ = try MessageCodec.encryptedExtensions($0) },
            { _ = try MessageCodec.certificateRequest($0) },
            { _ = try MessageCodec.certificate($0) },
            { _ = try MessageCodec.certificateVerify($0) },
            { _ = try MessageCodec.newSessionTicket($0) },
            { _ = try MessageCodec.keyUpdate($0) },
            { _ = try SessionTicket(serialized: $0) },
            { var r = ByteReader($0); _ = try Extensions(reading: &r) },
            { var r = ByteReader($0); _ = try ExtensionCodec.readOfferedPSKs(&r) },
            { var r = ByteReader($0); _ = try ExtensionCodec.readServerName(&r) },
            { var r = ByteReader($0); _ = try ExtensionCodec.readALPN(&r) },
            { var r = ByteReader($0); _ = try ExtensionCodec.readClientKeyShares(&r) },
        ]
        for parse in parsers {
            for _ in 0..<Self.iterations {
                let input = (0..<Int.random(in: 0..<200, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                do { try parse(input) } catch {
                    #expect(error is TLSError || error is DecodeError)
                }
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif

func getenvString(_ name: String) -> String? {
    guard let value = getenv(name) else { return nil }
    return String(cString: value)
}
