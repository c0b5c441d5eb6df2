import QuiverCore
import Testing

@_spi(Wire) @testable import QuiverQUIC

// MARK: - Helpers

private func varint(_ value: UInt64, length: Int? = nil) -> [UInt8] {
    var bytes: [UInt8] = []
    VarInt.write(value, length: length ?? VarInt.encodedLength(value), into: &bytes)
    return bytes
}

/// One encoded parameter: ID, length, value.
private func param(_ id: UInt64, _ value: [UInt8]) -> [UInt8] { varint(id) + varint(UInt64(value.count)) + value }

/// One encoded integer parameter.
private func intParam(_ id: UInt64, _ value: UInt64) -> [UInt8] { param(id, varint(value)) }

private func decodeError(_ bytes: [UInt8], sentBy sender: Role) -> QUICError? {
    do {
        _ = try TransportParameters(decoding: bytes, sentBy: sender)
        return nil
    } catch {
        return error
    }
}

private func cid(_ count: Int, _ byte: UInt8 = 0xc1) -> ConnectionID {
    ConnectionID([UInt8](repeating: byte, count: count)) ?? .empty
}

private let token16 = [UInt8](repeating: 0x7e, count: 16)

/// A valid preferred_address value with a `cidLength`-byte connection ID.
private func preferredAddressValue(cidLength: Int) -> [UInt8] {
    [192, 0, 2, 1, 0x11, 0x51] + [UInt8](repeating: 0x20, count: 16) + [0x11, 0x51] + [UInt8(cidLength)]
        + [UInt8](repeating: 0xcd, count: cidLength) + token16
}

enum TransportParameterSamples {
    static func random(_ rng: inout SeededGenerator, sentBy sender: Role) -> TransportParameters {
        var p = TransportParameters()
        func maybe() -> Bool { Bool.random(using: &rng) }
        func randomCID() -> ConnectionID { ConnectionID(rng.bytes(Int.random(in: 0...20, using: &rng))) ?? .empty }
        if maybe() { p.maxIdleTimeout = rng.varInt() }
        if maybe() { p.maxUDPPayloadSize = UInt64.random(in: 1200...VarInt.max, using: &rng) }
        if maybe() { p.initialMaxData = rng.varInt() }
        if maybe() { p.initialMaxStreamDataBidiLocal = rng.varInt() }
        if maybe() { p.initialMaxStreamDataBidiRemote = rng.varInt() }
        if maybe() { p.initialMaxStreamDataUni = rng.varInt() }
        if maybe() { p.initialMaxStreamsBidi = rng.varInt(max: 1 << 60) }
        if maybe() { p.initialMaxStreamsUni = rng.varInt(max: 1 << 60) }
        if maybe() { p.ackDelayExponent = UInt64.random(in: 0...20, using: &rng) }
        if maybe() { p.maxAckDelay = UInt64.random(in: 0..<(1 << 14), using: &rng) }
        if maybe() { p.disableActiveMigration = true }
        if maybe() { p.activeConnectionIDLimit = UInt64.random(in: 2...VarInt.max, using: &rng) }
        if maybe() { p.initialSourceConnectionID = randomCID() }
        if maybe() { p.maxDatagramFrameSize = rng.varInt() }
        if maybe() { p.greaseQUICBit = true }
        if maybe() {
            let chosen = UInt32.random(in: 1...UInt32.max, using: &rng)
            var available = (0..<Int.random(in: 0...5, using: &rng)).map { _ in UInt32.random(in: 1...UInt32.max, using: &rng) }
            if sender == .client { available.insert(chosen, at: Int.random(in: 0...available.count, using: &rng)) }
            p.versionInformation = .init(chosenVersion: chosen, availableVersions: available)
        }
        if sender == .server {
            if maybe() { p.originalDestinationConnectionID = randomCID() }
            if maybe() { p.statelessResetToken = rng.bytes(16) }
            if maybe() { p.retrySourceConnectionID = randomCID() }
            if maybe(), p.initialSourceConnectionID?.count != 0 {
                p.preferredAddress = .init(ipv4Address: rng.bytes(4), ipv4Port: UInt16.random(in: 0...UInt16.max, using: &rng),
                                           ipv6Address: rng.bytes(16), ipv6Port: UInt16.random(in: 0...UInt16.max, using: &rng),
                                           connectionID: ConnectionID(rng.bytes(Int.random(in: 1...20, using: &rng))) ?? .empty,
                                           statelessResetToken: rng.bytes(16))
            }
        }
        return p
    }
}

// MARK: - Tests

@Suite("Transport parameters (RFC 9000 §18)")
struct TransportParametersTests {
    @Test("Defaults (RFC 9000 §18.2) encode to nothing and decode from nothing")
    func defaults() throws {
        let p = TransportParameters()
        #expect(p.maxUDPPayloadSize == 65527)
        #expect(p.ackDelayExponent == 3)
        #expect(p.maxAckDelay == 25)
        #expect(p.activeConnectionIDLimit == 2)
        #expect(p.maxIdleTimeout == 0 && p.initialMaxData == 0 && p.initialMaxStreamsBidi == 0)
        #expect(p.originalDestinationConnectionID == nil && p.initialSourceConnectionID == nil && p.statelessResetToken == nil)
        #expect(p.maxDatagramFrameSize == nil && !p.greaseQUICBit && p.versionInformation == nil && !p.disableActiveMigration)
        #expect(p.encode().isEmpty)
        #expect(try TransportParameters(decoding: [], sentBy: .client) == p)
        #expect(try TransportParameters(decoding: [], sentBy: .server) == p)
    }

    @Test("Parameters equal to their defaults are omitted")
    func defaultsOmitted() {
        var p = TransportParameters()
        p.maxUDPPayloadSize = 65527
        p.ackDelayExponent = 3
        p.maxAckDelay = 25
        p.activeConnectionIDLimit = 2
        p.maxIdleTimeout = 0
        p.initialMaxData = 0
        p.disableActiveMigration = false
        p.greaseQUICBit = false
        #expect(p.encode().isEmpty)
        // Explicit defaults from the peer decode to the same value.
        let explicit = intParam(0x03, 65527) + intParam(0x0a, 3) + intParam(0x0b, 25) + intParam(0x0e, 2) + intParam(0x01, 0)
        #expect((try? TransportParameters(decoding: explicit, sentBy: .client)) == TransportParameters())
    }

    @Test("Known encoding, byte for byte")
    func knownEncoding() throws {
        var p = TransportParameters()
        p.initialMaxData = 0x4000
        p.maxIdleTimeout = 30_000
        p.initialSourceConnectionID = .empty
        p.disableActiveMigration = true
        p.greaseQUICBit = true
        p.maxDatagramFrameSize = 0
        p.versionInformation = .init(chosenVersion: 1, availableVersions: [1, 0x6b33_43cf])
        let expected = [0x01, 0x04, 0x80, 0x00, 0x75, 0x30] as [UInt8]
            + [0x04, 0x04, 0x80, 0x00, 0x40, 0x00]
            + [0x0c, 0x00]
            + [0x0f, 0x00]
            + [0x11, 0x0c, 0, 0, 0, 1, 0, 0, 0, 1, 0x6b, 0x33, 0x43, 0xcf]
            + [0x20, 0x01, 0x00]
            + [0x6a, 0xb2, 0x00]
        #expect(p.encode() == expected)
        #expect(try TransportParameters(decoding: expected, sentBy: .client) == p)
    }

    @Test("Random parameters round-trip", arguments: [Role.client, .server])
    func randomRoundTrip(sender: Role) throws {
        var rng = SeededGenerator(seed: sender == .client ? 0xC11E : 0x5E4E)
        for _ in 0..<300 {
            let p = TransportParameterSamples.random(&rng, sentBy: sender)
            #expect(try TransportParameters(decoding: p.encode(), sentBy: sender) == p)
            let grease = TransportParameters.GreaseParameter(entropy: rng.bytes(20))
            let greased = p.encode(includeGrease: grease)
            #expect(greased.count > p.encode().count)
            #expect(try TransportParameters(decoding: greased, sentBy: sender) == p)
        }
    }

    @Test("Boundary values are accepted")
    func boundaries() throws {
        let bytes = intParam(0x03, 1200) + intParam(0x0a, 20) + intParam(0x0b, (1 << 14) - 1) + intParam(0x0e, 2)
            + intParam(0x08, 1 << 60) + intParam(0x09, 1 << 60) + intParam(0x04, VarInt.max) + param(0x0f, [UInt8](repeating: 1, count: 20))
            + param(0x0d, preferredAddressValue(cidLength: 20))
        let p = try TransportParameters(decoding: bytes, sentBy: .server)
        #expect(p.maxUDPPayloadSize == 1200 && p.ackDelayExponent == 20 && p.maxAckDelay == 16383)
        #expect(p.initialMaxStreamsBidi == 1 << 60 && p.initialMaxStreamsUni == 1 << 60 && p.initialMaxData == VarInt.max)
        #expect(p.initialSourceConnectionID?.count == 20)
        #expect(p.preferredAddress?.connectionID.count == 20 && p.preferredAddress?.ipv4Address == [192, 0, 2, 1])
        #expect(p.preferredAddress?.ipv4Port == 0x1151 && p.preferredAddress?.statelessResetToken == token16)
        #expect(try TransportParameters(decoding: p.encode(), sentBy: .server) == p)
        // Integers need not use the shortest encoding, as long as they fill the value exactly.
        #expect(try TransportParameters(decoding: param(0x01, varint(5, length: 8)), sentBy: .client).maxIdleTimeout == 5)
    }

    static let invalid: [(String, [UInt8], Role)] = [
        ("duplicate known parameter", intParam(0x01, 5) + intParam(0x04, 1) + intParam(0x01, 5), .client),
        ("duplicate flag parameter", param(0x0c, []) + param(0x0c, []), .server),
        ("duplicate unknown parameter", param(0x1234, [1]) + param(0x1234, [1]), .client),
        ("duplicate reserved parameter", param(27, []) + param(27, [9]), .client),
        ("truncated ID", [0x40], .client),
        ("missing length", [0x01], .client),
        ("length beyond input", [0x01, 0x04, 0x80, 0x00], .client),
        ("huge length", [0x01] + varint(VarInt.max) + [0], .client),
        ("integer shorter than its length", [0x01, 0x02, 0x05, 0x00], .client),
        ("integer longer than its length", [0x01, 0x01, 0x40, 0x05], .client),
        ("empty integer", [0x04, 0x00], .client),
        ("max_udp_payload_size below 1200", intParam(0x03, 1199), .client),
        ("max_udp_payload_size 0", intParam(0x03, 0), .server),
        ("ack_delay_exponent above 20", intParam(0x0a, 21), .client),
        ("max_ack_delay 2^14", intParam(0x0b, 1 << 14), .server),
        ("active_connection_id_limit 1", intParam(0x0e, 1), .client),
        ("active_connection_id_limit 0", intParam(0x0e, 0), .server),
        ("initial_max_streams_bidi above 2^60", intParam(0x08, (1 << 60) + 1), .client),
        ("initial_max_streams_uni above 2^60", intParam(0x09, (1 << 60) + 1), .server),
        ("disable_active_migration with a value", param(0x0c, [0]), .client),
        ("grease_quic_bit with a value (RFC 9287 §3)", param(0x2ab2, [1]), .client),
        ("stateless_reset_token of 15 bytes", param(0x02, Array(token16.dropLast())), .server),
        ("stateless_reset_token of 17 bytes", param(0x02, token16 + [0]), .server),
        ("initial_source_connection_id of 21 bytes", param(0x0f, [UInt8](repeating: 1, count: 21)), .client),
        ("original_destination_connection_id of 21 bytes", param(0x00, [UInt8](repeating: 1, count: 21)), .server),
        ("retry_source_connection_id of 21 bytes", param(0x10, [UInt8](repeating: 1, count: 21)), .server),
        ("preferred_address with a zero-length connection ID", param(0x0d, preferredAddressValue(cidLength: 0)), .server),
        ("preferred_address with a 21-byte connection ID", param(0x0d, preferredAddressValue(cidLength: 21)), .server),
        ("preferred_address truncated", param(0x0d, preferredAddressValue(cidLength: 8).dropLast()), .server),
        ("preferred_address with trailing bytes", param(0x0d, preferredAddressValue(cidLength: 8) + [0]), .server),
        ("preferred_address from a server with an empty connection ID",
         param(0x0d, preferredAddressValue(cidLength: 8)) + param(0x0f, []), .server),
        ("version_information chosen version 0 (RFC 9368 §4)", param(0x11, [0, 0, 0, 0, 0, 0, 0, 1]), .server),
        ("version_information available version 0", param(0x11, [0, 0, 0, 1, 0, 0, 0, 0]), .server),
        ("version_information empty", param(0x11, []), .server),
        ("version_information not a multiple of 4", param(0x11, [0, 0, 0, 1, 0, 0]), .server),
        ("version_information of 3 bytes", param(0x11, [0, 0, 1]), .client),
        ("client version_information without its chosen version", param(0x11, [0, 0, 0, 1, 0x6b, 0x33, 0x43, 0xcf]), .client),
        ("client version_information with no available versions", param(0x11, [0, 0, 0, 1]), .client),
    ]

    @Test("Invalid parameters are a TRANSPORT_PARAMETER_ERROR", arguments: invalid)
    func invalidParameters(name: String, bytes: [UInt8], sender: Role) {
        let error = decodeError(bytes, sentBy: sender)
        #expect(error?.code == .transportParameterError, "\(name): \(String(describing: error))")
        #expect(error?.frameType == nil)
    }

    static let serverOnly: [(String, [UInt8])] = [
        ("original_destination_connection_id", param(0x00, [1, 2, 3, 4])),
        ("stateless_reset_token", param(0x02, token16)),
        ("preferred_address", param(0x0d, preferredAddressValue(cidLength: 4))),
        ("retry_source_connection_id", param(0x10, [5, 6, 7, 8])),
    ]

    @Test("Server-only parameters from a client are a TRANSPORT_PARAMETER_ERROR (RFC 9000 §18.2)", arguments: serverOnly)
    func serverOnlyParameters(name: String, bytes: [UInt8]) throws {
        #expect(decodeError(bytes, sentBy: .client)?.code == .transportParameterError, "\(name)")
        let p = try TransportParameters(decoding: bytes, sentBy: .server)
        #expect(p != TransportParameters())
        #expect(p.encode() == bytes)
    }

    @Test("Server-sent version_information may omit the chosen version or list none (RFC 9368 §3)")
    func serverVersionInformation() throws {
        let p = try TransportParameters(decoding: param(0x11, [0, 0, 0, 1]), sentBy: .server)
        #expect(p.versionInformation == .init(chosenVersion: 1, availableVersions: []))
        let q = try TransportParameters(decoding: param(0x11, [0, 0, 0, 1, 0x6b, 0x33, 0x43, 0xcf]), sentBy: .server)
        #expect(q.versionInformation == .init(chosenVersion: 1, availableVersions: [0x6b33_43cf]))
        let r = try TransportParameters(decoding: param(0x11, [0, 0, 0, 1, 0x0a, 0x0a, 0x0a, 0x0a, 0, 0, 0, 1]), sentBy: .client)
        #expect(r.versionInformation == .init(chosenVersion: 1, availableVersions: [0x0a0a_0a0a, 1]))
    }

    @Test("Unknown and reserved parameters are skipped (RFC 9000 §18.1)")
    func unknownSkipped() throws {
        let bytes = param(27, [1, 2, 3]) + intParam(0x04, 77) + param(58, []) + param(0x1234, [UInt8](repeating: 9, count: 300))
            + param(TransportParameters.greaseParameterID(1_000_000), [0xff]) + param(0x21, [0xff, 0xff]) + param(0x3fff, [])
            + intParam(0x01, 10)
        var expected = TransportParameters()
        expected.initialMaxData = 77
        expected.maxIdleTimeout = 10
        #expect(try TransportParameters(decoding: bytes, sentBy: .client) == expected)
        #expect(try TransportParameters(decoding: bytes, sentBy: .server) == expected)
    }

    @Test("Reserved parameter IDs are 31 * N + 27")
    func greaseIDs() {
        #expect(TransportParameters.greaseParameterID(0) == 27)
        #expect(TransportParameters.greaseParameterID(1) == 58)
        #expect(TransportParameters.greaseParameterID(2) == 89)
        #expect(TransportParameters.greaseParameterID(65535) == 31 * 65535 + 27)
        #expect(TransportParameters.isReservedParameterID(27) && TransportParameters.isReservedParameterID(58))
        #expect(!TransportParameters.isReservedParameterID(0) && !TransportParameters.isReservedParameterID(26))
        #expect(!TransportParameters.isReservedParameterID(28) && !TransportParameters.isReservedParameterID(0x2ab2))
        for id: UInt64 in [0x00, 0x0f, 0x10, 0x11, 0x20] { #expect(!TransportParameters.isReservedParameterID(id)) }
    }

    @Test("Grease parameters are appended deterministically")
    func greaseEncoding() throws {
        let grease = TransportParameters.GreaseParameter(entropy: [0x00, 0x01, 0x05, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff])
        #expect(grease.n == 1 && grease.id == 58 && grease.value == [0xaa, 0xbb, 0xcc, 0xdd, 0xee])
        #expect(TransportParameters.GreaseParameter(entropy: [0x00, 0x01, 0x05, 0xaa]).value == [0xaa])
        #expect(TransportParameters.GreaseParameter(entropy: []).id == 27)
        var p = TransportParameters()
        p.initialMaxData = 1
        #expect(p.encode(includeGrease: grease) == [0x04, 0x01, 0x01, 58, 5, 0xaa, 0xbb, 0xcc, 0xdd, 0xee])
        #expect(p.encode(includeGrease: grease) == p.encode(includeGrease: grease))
        #expect(TransportParameters().encode(includeGrease: .init(n: 0, value: [])) == [27, 0])
        #expect(try TransportParameters(decoding: p.encode(includeGrease: grease), sentBy: .client) == p)
    }

    @Test("Empty connection IDs are present, not absent (RFC 9000 §7.3)")
    func emptyConnectionIDs() throws {
        var p = TransportParameters()
        p.initialSourceConnectionID = .empty
        p.originalDestinationConnectionID = cid(8)
        p.retrySourceConnectionID = .empty
        #expect(p.encode() == param(0x00, [UInt8](repeating: 0xc1, count: 8)) + param(0x0f, []) + param(0x10, []))
        let decoded = try TransportParameters(decoding: p.encode(), sentBy: .server)
        #expect(decoded.initialSourceConnectionID == .empty)
        #expect(decoded.retrySourceConnectionID == .empty)
        #expect(decoded == p)
    }
}
