import QuiverCore
import Testing

@testable import QuiverTLS

/// Records crafted by a hostile or broken client against a ``TLSStream`` server (issue 17, from
/// a TLS conformance suite run against the TCP server).
@Suite("Hostile records against the server")
struct HostileRecordTests {
    /// Splits a record stream into (content type, body) pairs.
    static func records(_ bytes: [UInt8]) -> [(type: UInt8, body: [UInt8])] {
        var out: [(type: UInt8, body: [UInt8])] = []
        var i = 0
        while i + 5 <= bytes.count {
            let length = Int(bytes[i + 3]) << 8 | Int(bytes[i + 4])
            out.append((bytes[i], Array(bytes[(i + 5)..<min(bytes.count, i + 5 + length)])))
            i += 5 + length
        }
        return out
    }

    static func record(_ type: UInt8, _ body: [UInt8]) -> [UInt8] {
        [type, 3, 3, UInt8(body.count >> 8), UInt8(truncatingIfNeeded: body.count)] + body
    }

    /// A server that has answered a client's first flight, and what it logged.
    struct AnsweredServer {
        let server: TLSStream
        let client: TLSStream
        let keyLog: LineCollector
        let clientFlight: [UInt8]

        init(client clientConfig: TLSConfiguration = Configs.client()) throws {
            let log = LineCollector()
            var config = Configs.server()
            config.keyLog = { log.append($0) }
            keyLog = log
            server = TLSStream(server: config)
            client = TLSStream(client: clientConfig, serverName: "localhost")
            try client.start()
            clientFlight = client.takeOutgoing()
            try server.receive(clientFlight)
        }

        /// A record protected with the client's handshake traffic key (as the client would send).
        func clientHandshakeRecord(content: [UInt8], type: UInt8, sequence: UInt64 = 0) throws -> [UInt8] {
            let line = try #require(keyLog.lines.first { $0.hasPrefix("CLIENT_HANDSHAKE_TRAFFIC_SECRET ") })
            let hex = Array(line.split(separator: " ")[2].utf8)
            let secret = stride(from: 0, to: hex.count, by: 2).map { i -> UInt8 in
                UInt8(String(decoding: hex[i..<(i + 2)], as: UTF8.self), radix: 16) ?? 0
            }
            let suite = try #require(server.handshake.cipherSuite)
            let key = AEADKey(TrafficSecret(suite: suite, secret: secret))
            let inner = content + [type]
            let header: [UInt8] = [23, 3, 3, UInt8((inner.count + AEADKey.tagLength) >> 8), UInt8(truncatingIfNeeded: inner.count + AEADKey.tagLength)]
            return header + key.seal(inner, sequence: sequence, additionalData: header)
        }
    }

    // MARK: 1. change_cipher_spec after HelloRetryRequest

    @Test("compatibility mode: change_cipher_spec right after a HelloRetryRequest, not again after the ServerHello")
    func changeCipherSpecAfterHelloRetry() throws {
        var clientConfig = Configs.client()
        clientConfig.keyShareGroups = [.x25519]
        var serverConfig = Configs.server()
        serverConfig.groups = [.secp384r1]
        let client = TLSStream(client: clientConfig, serverName: "localhost")
        let server = TLSStream(server: serverConfig)
        try client.start()
        let hello = client.takeOutgoing()
        #expect(try ClientHello(body: Array(Self.records(hello)[0].body.dropFirst(4))).legacySessionID.count == 32)
        try server.receive(hello)
        let retry = server.takeOutgoing()
        let retryRecords = Self.records(retry)
        #expect(retryRecords.map(\.type) == [22, 20], "HelloRetryRequest then change_cipher_spec")
        #expect(server.handshake.didHelloRetry)
        #expect(retryRecords.last?.body == [1])

        try client.receive(retry)
        try server.receive(client.takeOutgoing())
        let flight = Self.records(server.takeOutgoing())
        #expect(flight.first?.type == 22, "the ServerHello")
        #expect(!flight.contains { $0.type == 20 }, "only one change_cipher_spec per connection")
    }

    @Test("compatibility mode without a retry: change_cipher_spec right after the ServerHello")
    func changeCipherSpecAfterServerHello() throws {
        let answered = try AnsweredServer()
        let types = Self.records(answered.server.takeOutgoing()).map(\.type)
        #expect(Array(types.prefix(2)) == [22, 20])
        #expect(types.dropFirst(2).allSatisfy { $0 == 23 })
    }

    // MARK: 2. Application data under the handshake keys

    @Test("application data under the handshake keys before the client's Finished → unexpected_message", arguments: [0, 1, 18])
    func applicationDataBeforeFinished(length: Int) throws {
        let answered = try AnsweredServer()
        _ = answered.server.takeOutgoing()
        let record = try answered.clientHandshakeRecord(content: Array(repeating: 0x61, count: length), type: 23)
        #expect(throws: TLSError.self) { try answered.server.receive(record) }
        #expect(answered.server.error?.alert == .unexpectedMessage)
        #expect(answered.server.error?.origin == .local)
        #expect(!answered.server.isHandshakeComplete)
    }

    // MARK: 3. Unprotected application data around the ClientHello

    @Test("unprotected application data before the ClientHello → unexpected_message", arguments: [0, 1, 100, 16_384])
    func applicationDataBeforeClientHello(length: Int) {
        let server = TLSStream(server: Configs.server())
        #expect(throws: TLSError.self) { try server.receive(Self.record(23, Array(repeating: 0x41, count: length))) }
        #expect(server.error?.alert == .unexpectedMessage)
        #expect(Self.records(server.takeOutgoing()).map(\.body) == [[2, 10]], "a plaintext unexpected_message alert")
    }

    @Test("unprotected application data between ClientHello fragments → unexpected_message", arguments: [0, 5, 16_384])
    func applicationDataInsideClientHello(length: Int) throws {
        let hello = try NegativeTests.clientHello()
        let server = TLSStream(server: Configs.server())
        try server.receive(Self.record(22, Array(hello[..<40])))
        #expect(throws: TLSError.self) {
            try server.receive(Self.record(23, Array(repeating: 0x41, count: length)))
            try server.receive(Self.record(22, Array(hello[40...])))
        }
        #expect(server.error?.alert == .unexpectedMessage)
        #expect(server.handshake.cipherSuite == nil, "the ClientHello was never processed")
    }

    @Test("unprotected application data after a HelloRetryRequest, with no 0-RTT offered → unexpected_message")
    func applicationDataAfterRetryWithoutEarlyData() throws {
        var clientConfig = Configs.client()
        clientConfig.keyShareGroups = [.x25519]
        var serverConfig = Configs.server()
        serverConfig.groups = [.secp384r1]
        let client = TLSStream(client: clientConfig, serverName: "localhost")
        let server = TLSStream(server: serverConfig)
        try client.start()
        try server.receive(client.takeOutgoing())
        #expect(server.handshake.didHelloRetry)
        #expect(throws: TLSError.self) { try server.receive(Self.record(23, Array(repeating: 0x41, count: 64))) }
        #expect(server.error?.alert == .unexpectedMessage)
    }

    @Test("0-RTT refused by a HelloRetryRequest: early records before the second ClientHello are skipped, undecryptable ones after it are bad_record_mac")
    func undecryptableAfterRetry() throws {
        let server = HandshakeMatrixTests.earlyDataServer()
        let first = StreamPair(client: Configs.client(), server: server).run()
        let ticket = try #require(first.tickets.first)
        var retrying = server
        retrying.groups = [.secp256r1]
        let pair = StreamPair(client: Configs.client(), server: retrying, resumption: ticket, earlyData: true)
        try pair.start()
        try pair.client.write(Array("zero".utf8))
        try pair.server.receive(pair.client.takeOutgoing())  // ClientHello, 0-RTT record: skipped
        #expect(pair.server.handshake.didHelloRetry && pair.server.error == nil)
        try pair.client.receive(pair.server.takeOutgoing())
        try pair.server.receive(pair.client.takeOutgoing())  // second ClientHello
        #expect(pair.server.handshake.cipherSuite != nil && pair.server.error == nil)
        #expect(throws: TLSError.self) { try pair.server.receive(Self.record(23, Array(repeating: 0x5a, count: 40))) }
        #expect(pair.server.error?.alert == .badRecordMAC)
    }

    // MARK: 4. Finished of the wrong length

    @Test("client Finished of the wrong length → decode_error", arguments: [0, 1, 31, 33, 48, 64, 65, 1000, 70_000, 200_000])
    func finishedLength(length: Int) {
        let pair = HandshakePair(client: Configs.client(), server: Configs.server())
        pair.tamperClient = { level, bytes in
            guard level == .handshake else { return bytes }
            return NegativeTests.rewrite(bytes, .finished) { message in
                let body = Array(message.dropFirst(4))
                let resized = length <= body.count ? Array(body.prefix(length)) : body + Array(repeating: 0, count: length - body.count)
                message = HandshakeMessage(type: .finished, body: resized).encoded
            }
        }
        pair.run()
        #expect(pair.serverError?.alert == .decodeError, "\(length)-byte Finished: \(String(describing: pair.serverError))")
        #expect(!pair.server.isHandshakeComplete)
    }

    @Test("server Finished of the wrong length → decode_error at the client", arguments: [0, 31, 33, 100])
    func serverFinishedLength(length: Int) {
        let pair = HandshakePair(client: Configs.client(), server: Configs.server())
        pair.tamperServer = { level, bytes in
            guard level == .handshake else { return bytes }
            return NegativeTests.rewrite(bytes, .finished) { message in
                let body = Array(message.dropFirst(4))
                let resized = length <= body.count ? Array(body.prefix(length)) : body + Array(repeating: 0, count: length - body.count)
                message = HandshakeMessage(type: .finished, body: resized).encoded
            }
        }
        pair.run()
        #expect(pair.clientError?.alert == .decodeError, "\(length)-byte Finished: \(String(describing: pair.clientError))")
    }

    // MARK: 5. The client's unprotected alert after our flight

    @Test("an unprotected fatal alert after the server's flight ends the stream without an alert of ours",
          arguments: [AlertDescription.handshakeFailure, .decodeError, .illegalParameter])
    func unprotectedAlertAfterFlight(alert: AlertDescription) throws {
        let answered = try AnsweredServer()
        _ = answered.server.takeOutgoing()
        #expect(throws: TLSError.self) { try answered.server.receive(Self.record(21, [2, alert.rawValue])) }
        #expect(answered.server.error?.alert == alert)
        #expect(answered.server.error?.origin == .peer)
        #expect(!answered.server.hasOutgoing, "no alert in answer to an alert")
    }

    @Test("an unprotected malformed alert after the server's flight → decode_error")
    func unprotectedMalformedAlert() throws {
        let answered = try AnsweredServer()
        #expect(throws: TLSError.self) { try answered.server.receive(Self.record(21, [2, 40, 0])) }
        #expect(answered.server.error?.alert == .decodeError)
    }

    @Test("after the handshake an unprotected alert is still unexpected_message")
    func unprotectedAlertAfterHandshake() {
        let pair = StreamPair(client: Configs.client(), server: Configs.server()).run()
        #expect(pair.isEstablished)
        #expect(throws: TLSError.self) { try pair.server.receive(Self.record(21, [2, 40])) }
        #expect(pair.server.error?.alert == .unexpectedMessage)
    }
}
