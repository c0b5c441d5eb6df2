import QuiverCore
import Testing

@testable import QuiverTLS

/// `record_size_limit` (RFC 8449) over TLS 1.3: the limit counts the content type byte.
@Suite("record_size_limit")
struct RecordSizeLimitTests {
    /// The lengths of the protected records (ciphertext) in a chunk of wire bytes.
    static func protectedLengths(_ wire: [UInt8]) -> [Int] {
        HostileRecordTests.records(wire).filter { $0.type == 23 }.map(\.body.count)
    }

    /// A pair whose server-to-client bytes are recorded.
    final class Recorder {
        var serverBytes: [UInt8] = []
        var clientBytes: [UInt8] = []
    }

    static func pair(clientLimit: Int, serverLimit: Int = RecordSizeLimit.maximum, padding: Int = 0) -> (StreamPair, Recorder) {
        var client = Configs.client()
        client.recordSizeLimit = clientLimit
        var server = Configs.server()
        server.recordSizeLimit = serverLimit
        let pair = StreamPair(client: client, server: server)
        pair.server.paddingBlockSize = padding
        pair.client.paddingBlockSize = padding
        let recorder = Recorder()
        pair.serverToClient = { recorder.serverBytes += $0; return $0 }
        pair.clientToServer = { recorder.clientBytes += $0; return $0 }
        return (pair, recorder)
    }

    @Test("the server honours the client's limit: protected plaintext ≤ limit, type byte included", arguments: [64, 100, 1000, 4096])
    func serverHonoursClientLimit(limit: Int) throws {
        let (pair, recorder) = Self.pair(clientLimit: limit)
        pair.run()
        #expect(pair.isEstablished, "\(String(describing: pair.clientError ?? pair.serverError))")
        #expect(pair.server.handshake.peerRecordSizeLimit == limit)
        let data = (0..<20_000).map { UInt8(truncatingIfNeeded: $0) }
        #expect(try pair.echo(data) == data)
        let lengths = Self.protectedLengths(recorder.serverBytes)
        #expect(lengths.count > 20_000 / limit)
        #expect(lengths.allSatisfy { $0 - AEADKey.tagLength <= limit }, "\(lengths.max() ?? 0)")
        #expect(lengths.contains { $0 - AEADKey.tagLength == limit }, "full records use the whole limit")
    }

    @Test("padding stays within the client's limit")
    func paddingWithinLimit() throws {
        let (pair, recorder) = Self.pair(clientLimit: 100, padding: 256)
        pair.run()
        #expect(pair.isEstablished)
        #expect(try pair.echo([1, 2, 3]) == [1, 2, 3])
        #expect(Self.protectedLengths(recorder.serverBytes).allSatisfy { $0 - AEADKey.tagLength <= 100 })
    }

    @Test("the server announces its own limit and the client honours it")
    func serverAnnouncesLimit() throws {
        let (pair, recorder) = Self.pair(clientLimit: 1000, serverLimit: 300)
        pair.run()
        #expect(pair.isEstablished)
        #expect(pair.client.handshake.peerRecordSizeLimit == 300)
        #expect(pair.server.handshake.localRecordSizeLimit == 300)
        let data = (0..<5000).map { UInt8(truncatingIfNeeded: $0) }
        #expect(try pair.echo(data) == data)
        #expect(Self.protectedLengths(recorder.clientBytes).allSatisfy { $0 - AEADKey.tagLength <= 300 })
    }

    @Test("a default client sends no record_size_limit and the server announces none")
    func notOffered() throws {
        let hello = try NegativeTests.clientHello()
        #expect(try !ClientHello(body: Array(hello[4...])).extensions.contains(.recordSizeLimit))
        let pair = StreamPair(client: Configs.client(), server: Configs.server()).run()
        #expect(pair.isEstablished)
        #expect(pair.server.handshake.peerRecordSizeLimit == nil && pair.server.handshake.localRecordSizeLimit == nil)
        #expect(pair.client.handshake.peerRecordSizeLimit == nil)
    }

    @Test("a peer's record over our announced limit → record_overflow")
    func overLimitRefused() throws {
        let (pair, _) = Self.pair(clientLimit: 1000, serverLimit: 300)
        pair.run()
        #expect(pair.isEstablished)
        // Sent without the limit the client would honour (as a peer that ignores it would).
        pair.client.handshake.peerRecordSizeLimit = nil
        try pair.client.write(Array(repeating: 7, count: 1000))
        #expect(throws: TLSError.self) { try pair.server.receive(pair.client.takeOutgoing()) }
        #expect(pair.server.error?.alert == .recordOverflow)
    }

    /// A ClientHello carrying a record_size_limit extension with `body`.
    static func helloWithLimit(_ body: [UInt8]) throws -> [UInt8] {
        let ch = try NegativeTests.clientHello()
        var hello = try ClientHello(body: Array(ch[4...]))
        hello.extensions.items.insert(Extension(type: .recordSizeLimit, data: body), at: 0)
        return hello.encoded
    }

    @Test("record_size_limit below 64 → illegal_parameter; 64 and values above 2^14 + 1 are accepted",
          arguments: [(0, false), (1, false), (63, false), (64, true), (16_385, true), (65_535, true)])
    func values(value: Int, accepted: Bool) throws {
        let hello = try Self.helloWithLimit([UInt8(value >> 8), UInt8(truncatingIfNeeded: value)])
        let server = TLSHandshake(server: Configs.server())
        let error: TLSError?
        do { try server.receive(hello, at: .initial); error = nil } catch let e { error = e }
        if accepted {
            #expect(error == nil)
            #expect(server.peerRecordSizeLimit == min(value, 16_385))
        } else {
            #expect(error?.alert == .illegalParameter)
        }
    }

    @Test("a malformed record_size_limit → decode_error", arguments: [[UInt8](), [1], [1, 0, 0]])
    func malformed(body: [UInt8]) throws {
        #expect(NegativeTests.serverError(for: try Self.helloWithLimit(body))?.alert == .decodeError)
    }
}
