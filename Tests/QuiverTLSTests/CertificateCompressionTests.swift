import QuiverCore
import Testing

@testable import QuiverTLS

/// Certificate compression (RFC 8879) with zlib and Brotli.
@Suite("Certificate compression")
struct CertificateCompressionTests {
    /// The handshake message types a side sent at the handshake level.
    final class Log {
        var server: [HandshakeType] = []
        var client: [HandshakeType] = []
    }

    static func logged(_ pair: HandshakePair) -> Log {
        let log = Log()
        let tamperServer = pair.tamperServer
        let tamperClient = pair.tamperClient
        pair.tamperServer = { level, bytes in
            let out = tamperServer(level, bytes)
            if level == .handshake { log.server += NegativeTests.messages(out).map(\.0) }
            return out
        }
        pair.tamperClient = { level, bytes in
            let out = tamperClient(level, bytes)
            if level == .handshake { log.client += NegativeTests.messages(out).map(\.0) }
            return out
        }
        return log
    }

    @Test("the server compresses its Certificate for a client offering zlib; the client decompresses it")
    func serverCompresses() throws {
        let matched = HandshakePair(client: Configs.client(trusting: TestPKI.rsa2048), server: Configs.server(TestPKI.rsa2048))
        let log = Self.logged(matched)
        matched.run()
        #expect(matched.client.isHandshakeComplete && matched.server.isHandshakeComplete)
        #expect(log.server.contains(.compressedCertificate) && !log.server.contains(.certificate))
        #expect(matched.server.sentCertificateCompression == .zlib)
        #expect(matched.client.receivedCertificateCompression == .zlib)
        #expect(matched.client.peerCertificates.first == TestPKI.rsa2048.certificate)
    }

    @Test("a configuration compresses its chain once for all handshakes")
    func cached() throws {
        let server = Configs.server()
        var messages: [[UInt8]] = []
        for _ in 0..<3 {
            let pair = HandshakePair(client: Configs.client(), server: server)
            pair.tamperServer = { level, bytes in
                if level == .handshake { messages += NegativeTests.messages(bytes).filter { $0.0 == .compressedCertificate }.map(\.1) }
                return bytes
            }
            pair.run()
            #expect(pair.client.isHandshakeComplete && pair.client.receivedCertificateCompression == .zlib)
        }
        #expect(messages.count == 3 && Set(messages).count == 1)
        #expect(server.certificateCompressionCache.count == 1)
        let cache = CertificateCompressionCache()
        for i in 0..<(CertificateCompressionCache.capacity + 5) {
            _ = cache.compressed([UInt8(truncatingIfNeeded: i)], algorithm: .zlib) { CertificateCompression.zlibCompress([UInt8(truncatingIfNeeded: i)]) }
        }
        #expect(cache.count <= CertificateCompressionCache.capacity)
    }

    @Test("the CompressedCertificate is shorter than the Certificate it replaces, and is the zlib of its body")
    func wireFormat() throws {
        let chain = TestPKI.rsa2048.chain.derEncoded
        let certificate = MessageCodec.encodeCertificate(context: [], chain: chain)
        let (message, algorithm) = CertificateCompression.message(certificate, configured: [.zlib], peer: [.brotli, .zlib])
        #expect(algorithm == .zlib)
        #expect(message[0] == 25)
        #expect(message.count < certificate.count)
        let body = Array(message[4...])
        #expect(Array(body[0..<2]) == [0, 1])
        #expect(Int(body[2]) << 16 | Int(body[3]) << 8 | Int(body[4]) == certificate.count - 4)
        #expect(try CertificateCompression.decompress(body, offered: [.zlib], limit: 1 << 17) == Array(certificate[4...]))
        // Nothing in common: the Certificate as it was.
        #expect(CertificateCompression.message(certificate, configured: [.zlib], peer: [.brotli]).message == certificate)
        #expect(CertificateCompression.message(certificate, configured: [.zlib], peer: nil).message == certificate)
    }

    @Test("a client that offers no compression, or only algorithms we lack, gets a plain Certificate")
    func notOffered() throws {
        var client = Configs.client()
        client.certificateCompressionAlgorithms = []
        let plain = HandshakePair(client: client, server: Configs.server())
        let log = Self.logged(plain)
        plain.run()
        #expect(plain.client.isHandshakeComplete)
        #expect(log.server.contains(.certificate) && !log.server.contains(.compressedCertificate))
        #expect(plain.server.sentCertificateCompression == nil)

        // zstd only (our client cannot offer it; rewrite the ClientHello's extension).
        let zstd = HandshakePair(client: Configs.client(), server: Configs.server())
        zstd.tamperClient = { level, bytes in
            guard level == .initial, var hello = try? ClientHello(body: Array(bytes[4...])) else { return bytes }
            if let index = hello.extensions.items.firstIndex(where: { $0.type == .compressCertificate }) {
                hello.extensions.items[index].data = [2, 0, 3]
            }
            return hello.encoded
        }
        let zstdLog = Self.logged(zstd)
        zstd.run()
        #expect(zstdLog.server.contains(.certificate) && !zstdLog.server.contains(.compressedCertificate))
    }

    @Test("client certificates are compressed when the server's CertificateRequest offers zlib")
    func clientCertificateCompressed() throws {
        var server = Configs.server()
        server.clientAuthentication = .required
        server.certificateVerifier = CertificateVerifier(trustRoots: [TestPKI.clientP256.certificate])
        var client = Configs.client()
        client.certificateChain = TestPKI.clientP256.chain
        client.privateKey = TestPKI.clientP256.key
        let pair = HandshakePair(client: client, server: server)
        let log = Self.logged(pair)
        pair.run()
        #expect(pair.server.isHandshakeComplete, "\(String(describing: pair.serverError ?? pair.clientError))")
        #expect(log.client.contains(.compressedCertificate))
        #expect(pair.client.sentCertificateCompression == .zlib && pair.server.receivedCertificateCompression == .zlib)
        #expect(pair.server.peerCertificates.first == TestPKI.clientP256.certificate)
    }

    // MARK: Hostile CompressedCertificate messages

    /// Replaces the server's CompressedCertificate body and returns the client's error.
    static func clientError(_ rewrite: @escaping ([UInt8]) -> [UInt8], client: TLSConfiguration = Configs.client()) -> TLSError? {
        let pair = HandshakePair(client: client, server: Configs.server())
        pair.tamperServer = { level, bytes in
            guard level == .handshake else { return bytes }
            return NegativeTests.rewrite(bytes, .compressedCertificate) { message in
                message = HandshakeMessage(type: .compressedCertificate, body: rewrite(Array(message[4...]))).encoded
            }
        }
        pair.run()
        #expect(!pair.client.isHandshakeComplete)
        return pair.clientError
    }

    static func body(algorithm: UInt16 = 1, length: Int, data: [UInt8]) -> [UInt8] {
        var w = ByteWriter()
        w.writeUInt16(algorithm)
        w.writeUInt24(UInt32(length))
        w.writeLengthPrefixedBytes(3, data)
        return w.bytes
    }

    /// The real body's fields: (uncompressed length, compressed data).
    static func fields(_ body: [UInt8]) -> (Int, [UInt8]) {
        (Int(body[2]) << 16 | Int(body[3]) << 8 | Int(body[4]), Array(body[8...]))
    }

    @Test("uncompressed_length that does not match the data → bad_certificate", arguments: [-1, 1, -100, 1000])
    func lengthMismatch(delta: Int) {
        let error = Self.clientError { body in
            let (length, data) = Self.fields(body)
            return Self.body(length: length + delta, data: data)
        }
        #expect(error?.alert == .badCertificate, "\(String(describing: error))")
    }

    @Test("a decompression bomb: memory bounded by uncompressed_length, bad_certificate")
    func bomb() throws {
        let bomb = try #require(CertificateCompression.zlibCompress([UInt8](repeating: 0, count: 16 << 20)))
        #expect(bomb.count < 64 * 1024)
        let error = Self.clientError { _ in Self.body(length: 1000, data: bomb) }
        #expect(error?.alert == .badCertificate)
        #expect(CertificateCompression.zlibDecompress(bomb, exactLength: 1000) == nil)
    }

    @Test("uncompressed_length over the message limit → bad_certificate before decompressing", arguments: [(1 << 17) + 1, (1 << 24) - 1])
    func overLimit(length: Int) {
        let error = Self.clientError { body in Self.body(length: length, data: Self.fields(body).1) }
        #expect(error?.alert == .badCertificate)
        #expect(error?.reason.contains("announces") == true)
    }

    @Test("corrupt or trailing data → bad_certificate")
    func corrupt() {
        let flipped = Self.clientError { body in
            let (length, data) = Self.fields(body)
            var bad = data
            bad[bad.count / 2] ^= 0x55
            return Self.body(length: length, data: bad)
        }
        #expect(flipped?.alert == .badCertificate)
        let trailing = Self.clientError { body in
            let (length, data) = Self.fields(body)
            return Self.body(length: length, data: data + [0, 0, 0])
        }
        #expect(trailing?.alert == .badCertificate)
        let truncated = Self.clientError { body in
            let (length, data) = Self.fields(body)
            return Self.body(length: length, data: Array(data.dropLast(4)))
        }
        #expect(truncated?.alert == .badCertificate)
    }

    @Test("an algorithm we did not offer → illegal_parameter; malformed → decode_error")
    func badFields() {
        var zlibOnly = Configs.client()
        zlibOnly.certificateCompressionAlgorithms = [.zlib]
        #expect(Self.clientError({ body in Self.body(algorithm: 2, length: Self.fields(body).0, data: Self.fields(body).1) }, client: zlibOnly)?.alert == .illegalParameter)
        #expect(Self.clientError { body in Self.body(algorithm: 3, length: Self.fields(body).0, data: Self.fields(body).1) }?.alert == .illegalParameter)
        #expect(Self.clientError { _ in Self.body(length: 100, data: []) }?.alert == .decodeError)
        #expect(Self.clientError { body in body + [0] }?.alert == .decodeError)
        #expect(Self.clientError { body in Array(body.prefix(6)) }?.alert == .decodeError)
    }

    @Test("CompressedCertificate to a client that offered no compression → unexpected_message")
    func unsolicited() {
        // The server compresses for a client whose ClientHello offered zlib, but this client
        // (configured without compression) did not: rewrite its ClientHello to offer it.
        var client = Configs.client()
        client.certificateCompressionAlgorithms = []
        let pair = HandshakePair(client: client, server: Configs.server())
        pair.tamperClient = { level, bytes in
            guard level == .initial, var hello = try? ClientHello(body: Array(bytes[4...])) else { return bytes }
            hello.extensions.items.insert(Extension(type: .compressCertificate, data: [2, 0, 1]), at: 0)
            return hello.encoded
        }
        pair.run()
        #expect(pair.clientError?.alert == .unexpectedMessage)
    }

    @Test("a malformed compress_certificate extension → decode_error", arguments: [[UInt8](), [0], [1, 0], [3, 0, 1, 0], [2, 0]])
    func malformedExtension(data: [UInt8]) throws {
        let ch = try NegativeTests.clientHello()
        var hello = try ClientHello(body: Array(ch[4...]))
        hello.extensions.items.removeAll { $0.type == .compressCertificate }
        hello.extensions.items.insert(Extension(type: .compressCertificate, data: data), at: 0)
        #expect(NegativeTests.serverError(for: hello.encoded)?.alert == .decodeError)
    }

    // MARK: - Brotli (RFC 7932)

    @Test("a server preferring Brotli compresses with it for a client offering it; the client decompresses it")
    func brotliHandshake() throws {
        var server = Configs.server(TestPKI.rsa2048)
        server.certificateCompressionAlgorithms = [.brotli, .zlib]
        let pair = HandshakePair(client: Configs.client(trusting: TestPKI.rsa2048), server: server)
        let log = Self.logged(pair)
        pair.run()
        #expect(pair.client.isHandshakeComplete && pair.server.isHandshakeComplete)
        #expect(log.server.contains(.compressedCertificate) && !log.server.contains(.certificate))
        #expect(pair.server.sentCertificateCompression == .brotli)
        #expect(pair.client.receivedCertificateCompression == .brotli)
        #expect(pair.client.peerCertificates.first == TestPKI.rsa2048.certificate)
    }

    @Test("Brotli decoding takes exactly the announced length: more, less, truncated, corrupt, trailing → nil")
    func brotliExactLength() throws {
        let body = MessageCodec.encodeCertificate(context: [], chain: TestPKI.rsa2048.chain.derEncoded).dropFirst(4).map { $0 }
        let compressed = try #require(CertificateCompression.brotliCompress(body))
        #expect(compressed.count < body.count)
        #expect(CertificateCompression.brotliDecompress(compressed, exactLength: body.count) == body)
        #expect(CertificateCompression.brotliDecompress(compressed, exactLength: body.count - 1) == nil)
        #expect(CertificateCompression.brotliDecompress(compressed, exactLength: body.count + 1) == nil)
        #expect(CertificateCompression.brotliDecompress(Array(compressed.dropLast(3)), exactLength: body.count) == nil)
        #expect(CertificateCompression.brotliDecompress(compressed + [0, 0, 0], exactLength: body.count) == nil)
        var flipped = compressed
        flipped[flipped.count / 2] ^= 0x55
        #expect(CertificateCompression.brotliDecompress(flipped, exactLength: body.count) != body)
        // A bomb: 16 MiB of zeros in a few bytes; decoding stops at the announced length.
        let bomb = try #require(CertificateCompression.brotliCompress([UInt8](repeating: 0, count: 16 << 20)))
        #expect(bomb.count < 1024)
        #expect(CertificateCompression.brotliDecompress(bomb, exactLength: 1000) == nil)
    }

    @Test("a Brotli CompressedCertificate whose length or data is wrong → bad_certificate")
    func brotliBadCertificate() throws {
        var server = Configs.server()
        server.certificateCompressionAlgorithms = [.brotli]
        for delta in [-1, 1] {
            let pair = HandshakePair(client: Configs.client(), server: server)
            pair.tamperServer = { level, bytes in
                guard level == .handshake else { return bytes }
                return NegativeTests.rewrite(bytes, .compressedCertificate) { message in
                    let (length, data) = Self.fields(Array(message[4...]))
                    message = HandshakeMessage(type: .compressedCertificate, body: Self.body(algorithm: 2, length: length + delta, data: data)).encoded
                }
            }
            pair.run()
            #expect(!pair.client.isHandshakeComplete)
            #expect(pair.clientError?.alert == .badCertificate, "\(String(describing: pair.clientError))")
        }
    }
}
