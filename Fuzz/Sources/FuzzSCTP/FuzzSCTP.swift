// libFuzzer target: the SCTP engine (QuiverSCTP) on arbitrary packets.
//
// The wire format: `SCTPPacket.parse` must never trap, and a packet that parses must re-encode
// (`encoded()`, which writes a fresh checksum) to bytes with a valid checksum that parse back
// to an equal packet. Parsing is lossy only where nothing is lost that the value holds
// (padding bytes, bytes after a chunk's fixed fields or the Heartbeat Info, TLVs of a
// HEARTBEAT besides the first Heartbeat Info), so parse(encode(parse(x))) == parse(x) holds.
//
// The engine: the input is one datagram, its CRC32c fixed up (bytes 8..<12, little-endian) so
// it gets past the checksum check to the chunk logic, from a peer to a fresh `SCTPEndpoint` on
// the input's destination port. Nothing is kept between inputs. Before the input, the endpoint
// (1) completed a handshake with that peer (an endpoint on the input's source port), which
// leaves an established association with 2 200 bytes of DATA outstanding (three messages,
// one of them in two fragments, all lost), and (2) started one of its own towards another
// address with the same port, which stays in COOKIE-WAIT. Both endpoints draw their
// randomness from counters and share a fixed cookie secret, so the tags and TSNs are the
// same for every input and the seeds can name them:
//
//   the established association: our tag 0xE0000003, our TSNs 0xE0000004...0xE0000007
//     outstanding; the peer's tag 0x50000001, its first TSN 0x50000002;
//   the COOKIE-WAIT one: our tag 0xE0000001 (an INIT ACK to it carries that tag).
//
// After the input, the endpoint's timers fire up to eight times, and its datagrams are
// drained after every step.
//
// Every input runs against three or four such setups:
//
//   without AUTH: neither endpoint has `authentication` (the setup before SCTP-AUTH), nor
//     `messageInterleaving`: the association uses DATA;
//   without AUTH, with I-DATA: both offer I-DATA (RFC 8260), so the association uses I-DATA
//     and I-FORWARD-TSN (checked), its 2 200 bytes outstanding too; DATA and FORWARD TSN in
//     the input abort it;
//   with AUTH, the input as is: both offer SCTP-AUTH (RFC 4895), so both associations have
//     `isAuthenticating` (checked). The endpoint wants DATA and SACK authenticated and prefers
//     HMAC-SHA-256; the peer wants DATA, SACK and HEARTBEAT ACK, SHA-1 first. After the
//     handshake the established association gets shared key 1 (16 × 0x4B) and sends with it
//     (`useSharedKey`; key 2, never set, is refused). Unauthenticated DATA and SACK in the
//     input are dropped; a wrong HMAC drops the rest of the packet; an unknown HMAC id gets
//     an ERROR;
//   with AUTH, sealed: only when the input has an AUTH chunk with key id 0 or 1, HMAC id 1 or
//     3 and an HMAC of that length. The harness computes those HMACs itself (last first, with
//     the key derivation below) before fixing the checksum, so whatever the fuzzer put after
//     an AUTH chunk reaches the association authenticated.
//
// The RANDOM parameters (the only 32-byte draws) count from their own words, so tags and TSNs
// are the same with AUTH: the endpoint's established association sends RANDOM 0xE1000009...
// 0xE1000010, the peer 0x51000001...0x51000008. The key vectors (RFC 4895 §6.1; the harness
// takes them from the INIT and INIT ACK it passes on) are then 50 bytes (the endpoint's:
// RANDOM, CHUNKS 0 3, HMAC-ALGO 3 1) and 51 bytes (the peer's: CHUNKS 0 3 5, HMAC-ALGO 1 3),
// so the endpoint's comes first: association key 0 is endpoint vector ‖ peer vector, key 1
// is 16 × 0x4B ‖ the same.
//
// Seeds for AUTH: an AUTH with a wrong SHA-1 HMAC under key 1 before DATA (dropped as is,
// accepted sealed); an AUTH with HMAC id 2 before DATA (Unsupported HMAC Identifier); an AUTH
// with a valid SHA-256 HMAC under key 0 over a SACK and DATA (both accepted as is). Without
// AUTH the AUTH chunks are ignored and the chunks after them processed.
//
// (Values of this engine's call order; if it changes, the seeds only reach less deep. So does
// the COOKIE ECHO seed, an HMAC under `cookieSecret` at `start`, if either or the cookie
// format changes, and the valid-HMAC seed if the RANDOMs or key vectors change: the sealed
// run still reaches what it covers.)
//
// Traps when: parsing, the endpoint or an association traps; the round trip above fails; the
// handshake between the two endpoints fails or leaves `isAuthenticating` other than set up;
// the endpoint sends a datagram with a bad checksum, that does not parse or that is not from
// its port; `nextDatagram` does not run dry; more than 1 MiB of output. With AUTH also: an
// AUTH chunk first in the endpoint's datagram under key 1 does not verify under the harness's
// key or does not use SHA-1 (the peer's first choice); a datagram to the peer's tag with a
// DATA, SACK or HEARTBEAT ACK does not start with such an AUTH chunk (checked while the
// COOKIE-WAIT association cannot be the sender: in COOKIE-WAIT or closed).
import Crypto
import FuzzDriver
import QuiverCore
import QuiverSCTP

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let input = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    roundTrip(input)
    guard input.count >= 12 else { return 0 }  // the endpoint drops it before any parsing
    feed(input, setup: .plain)
    feed(input, setup: .interleaved)
    feed(input, setup: .authenticated)
    if hasSealableAuth(input) { feed(input, setup: .sealed) }
    return 0
}

/// parse → encoded() → parse gives the same packet.
private func roundTrip(_ bytes: [UInt8]) {
    guard let packet = try? SCTPPacket.parse(bytes) else { return }
    let encoded = packet.encoded()
    require(SCTPPacket.checksumIsValid(encoded), "encoded() wrote a bad checksum: \(hex(encoded))")
    let again: SCTPPacket
    do {
        again = try SCTPPacket.parse(encoded)
    } catch {
        fatalError("re-encoded packet does not parse: \(error)\n  packet: \(packet)\n  bytes: \(hex(encoded))")
    }
    require(again == packet, "packet round trip differs:\n  \(packet)\n  \(again)\n  input: \(hex(bytes))\n  encoded: \(hex(encoded))")
}

/// What the input is fed to (see the header comment).
private enum Setup: CustomStringConvertible {
    case plain, interleaved, authenticated, sealed

    var authenticates: Bool { self == .authenticated || self == .sealed }

    var description: String {
        switch self {
        case .plain: "without AUTH"
        case .interleaved: "without AUTH, with I-DATA"
        case .authenticated: "with AUTH, input as is"
        case .sealed: "with AUTH, input's HMACs sealed"
        }
    }
}

private let endpointAddress = SocketAddress(host: "192.0.2.1", port: 9899)!
private let peerAddress = SocketAddress(host: "192.0.2.2", port: 9899)!
private let otherAddress = SocketAddress(host: "192.0.2.3", port: 9899)!
private let cookieSecret = [UInt8](repeating: 0x5C, count: 32)
private let start = Instant(nanoseconds: 1_000_000_000_000)

/// The chunks the endpoint under test wants authenticated (it prefers HMAC-SHA-256).
private let endpointAuthentication = SCTPAuthentication(chunks: [SCTPChunkType.data, SCTPChunkType.sack])
/// The chunks the peer wants authenticated, and HMAC-SHA-1 first: so the endpoint seals its
/// DATA, SACK and HEARTBEAT ACK with SHA-1 and the two key vectors differ in length.
private let peerAuthentication: SCTPAuthentication = {
    var settings = SCTPAuthentication(chunks: [SCTPChunkType.data, SCTPChunkType.sack, SCTPChunkType.heartbeatAck])
    settings.hmacs = [SCTPAuthentication.sha1, SCTPAuthentication.sha256]
    return settings
}()
/// Endpoint pair shared key 1, set on the established association, which then sends with it.
private let sharedKey1 = [UInt8](repeating: 0x4B, count: 16)

/// The input, its checksum fixed up (and with `.sealed` its HMACs), from `peerAddress` to an
/// endpoint set up as the header comment says.
private func feed(_ input: [UInt8], setup: Setup) {
    let sourcePort = UInt16(input[0]) << 8 | UInt16(input[1])
    let destinationPort = UInt16(input[2]) << 8 | UInt16(input[3])
    var now = start
    var output = 0
    let endpoint = makeEndpoint(port: destinationPort, firstWord: 0xE000_0001, randomWord: 0xE100_0001,
                                authentication: setup.authenticates ? endpointAuthentication : nil, interleaving: setup == .interleaved)
    let peer = makeEndpoint(port: sourcePort, firstWord: 0x5000_0001, randomWord: 0x5100_0001,
                            authentication: setup.authenticates ? peerAuthentication : nil, interleaving: setup == .interleaved)
    let other = endpoint.connect(to: otherAddress, port: sourcePort, now: now)
    let peerAssociation = peer.connect(to: endpointAddress, port: destinationPort, now: now)
    // The peer's INIT and the endpoint's INIT ACK, for the tag and the AUTH key vectors.
    var peerInit: SCTPInitChunk?
    var endpointInitAck: SCTPInitChunk?
    var moved = true
    var rounds = 0
    while moved {
        rounds += 1
        require(rounds <= 16, "the handshake (ports \(sourcePort) → \(destinationPort), \(setup)) does not settle")
        moved = false
        while let (bytes, _) = peer.nextDatagram(now: now) {
            if case .initiation(let chunk)? = (try? SCTPPacket.parse(bytes))?.chunks.first { peerInit = chunk }
            endpoint.receive(bytes, from: peerAddress, now: now)
            moved = true
        }
        while let (bytes, to) = endpoint.nextDatagram(now: now) {
            // The INIT to otherAddress goes nowhere.
            if to == peerAddress {
                if case .initiationAck(let chunk)? = (try? SCTPPacket.parse(bytes))?.chunks.first { endpointInitAck = chunk }
                peer.receive(bytes, from: endpointAddress, now: now)
                moved = true
            }
        }
    }
    guard let association = endpoint.accept(), association.state == .established, let peerInit, let endpointInitAck else {
        fatalError("the handshake (ports \(sourcePort) → \(destinationPort), \(setup)) failed: \(endpoint.statistics), \(peer.statistics)")
    }
    require(association.isAuthenticating == setup.authenticates && peerAssociation.isAuthenticating == setup.authenticates,
            "\(setup): isAuthenticating is \(association.isAuthenticating) (peer: \(peerAssociation.isAuthenticating))")
    require(association.peerSupportsMessageInterleaving == (setup == .interleaved),
            "\(setup): peerSupportsMessageInterleaving is \(association.peerSupportsMessageInterleaving)")
    var check: AuthCheck?
    if setup.authenticates {
        association.setSharedKey(sharedKey1, id: 1)
        require(!association.useSharedKey(id: 2), "useSharedKey accepts key 2, which was never set")
        require(association.useSharedKey(id: 1), "useSharedKey refuses key 1, which was just set")
        check = AuthCheck(
            keys: AuthKeys(endpointVector: keyVector(endpointInitAck.parameters), peerVector: keyVector(peerInit.parameters)),
            peerTag: peerInit.initiateTag, other: other)
    }
    do {
        try association.send([UInt8](repeating: 0x61, count: 100), stream: 0, ppid: 51)
        try association.send([UInt8](repeating: 0x62, count: 2000), stream: 1, ppid: 53)
        try association.send([UInt8](repeating: 0x63, count: 100), stream: 2, ppid: 51, unordered: true)
    } catch {
        fatalError("send on a new association failed: \(error)")
    }
    drain(endpoint, now: now, output: &output, check: check)  // lost on the way

    var datagram = input
    if setup == .sealed, let check { seal(&datagram, keys: check.keys) }
    for index in 8..<12 { datagram[index] = 0 }
    let crc = CRC32c.checksum(datagram)
    for index in 0..<4 { datagram[8 + index] = UInt8(truncatingIfNeeded: crc >> (8 * index)) }
    require(SCTPPacket.checksumIsValid(datagram), "checksumIsValid rejects CRC32c.checksum's value: \(hex(datagram))")

    endpoint.receive(datagram, from: peerAddress, now: now)
    settle(endpoint, association, now: now, output: &output, check: check)
    for _ in 0..<8 {
        guard let deadline = endpoint.nextDeadline else { break }
        now = max(now, deadline)
        endpoint.handleTimeout(now: now)
        settle(endpoint, association, now: now, output: &output, check: check)
    }
    require(output <= 1 << 20, "\(output) bytes of output for a \(datagram.count)-byte datagram (\(setup))")
}

/// Drains the endpoint's datagrams and what the application would read.
private func settle(_ endpoint: SCTPEndpoint, _ association: SCTPAssociation, now: Instant, output: inout Int, check: AuthCheck?) {
    drain(endpoint, now: now, output: &output, check: check)
    while endpoint.accept() != nil {}
    while association.read() != nil {}
    while association.nextEvent() != nil {}
}

/// Takes every datagram due; each must be a well-formed SCTP packet from the endpoint's port
/// (and with AUTH, authenticated as `check` says).
private func drain(_ endpoint: SCTPEndpoint, now: Instant, output: inout Int, check: AuthCheck?) {
    var count = 0
    while let (bytes, _) = endpoint.nextDatagram(now: now) {
        count += 1
        require(count <= 10_000, "nextDatagram does not run dry")
        output += bytes.count
        require(SCTPPacket.checksumIsValid(bytes), "the endpoint sent a datagram with a bad checksum: \(hex(bytes))")
        let packet: SCTPPacket
        do {
            packet = try SCTPPacket.parse(bytes)
        } catch {
            fatalError("the endpoint sent a datagram that does not parse: \(error)\n  bytes: \(hex(bytes))")
        }
        require(packet.sourcePort == endpoint.configuration.port && !packet.chunks.isEmpty,
                "the endpoint (port \(endpoint.configuration.port)) sent \(packet)")
        check?.verify(bytes, packet)
    }
}

private func makeEndpoint(port: UInt16, firstWord: UInt32, randomWord: UInt32, authentication: SCTPAuthentication?,
                          interleaving: Bool) -> SCTPEndpoint {
    var configuration = SCTPEndpoint.Configuration(port: port)
    configuration.association.random = counting(from: firstWord, random: randomWord)
    configuration.association.authentication = authentication
    // I-DATA (RFC 8260) only in its own setup: with it DATA aborts the association, and most
    // seeds are DATA.
    configuration.association.messageInterleaving = interleaving
    configuration.cookies = SCTPCookieJar(secret: cookieSecret)
    return SCTPEndpoint(configuration: configuration)
}

/// "Random" bytes: the words `first`, `first + 1`, … big-endian, one per four bytes, so tags
/// and initial TSNs are the same for every input (and never repeat, as tags must not). The
/// 32-byte draws (AUTH's RANDOM parameters, nothing else) count from `random` instead, so the
/// tags and TSNs are the same with AUTH and without.
private func counting(from first: UInt32, random: UInt32) -> RandomSource {
    let counter = Counter(first)
    let randomCounter = Counter(random)
    return RandomSource { buffer in
        let source = buffer.count == 32 ? randomCounter : counter
        var index = 0
        while index < buffer.count {
            let word = source.next()
            for byte in 0..<min(4, buffer.count - index) {
                buffer[index + byte] = UInt8(truncatingIfNeeded: word >> (24 - 8 * byte))
            }
            index += 4
        }
    }
}

/// Only ever used from the fuzzing thread.
private final class Counter: @unchecked Sendable {
    private var value: UInt32
    init(_ value: UInt32) { self.value = value }
    func next() -> UInt32 {
        defer { value &+= 1 }
        return value
    }
}

// MARK: SCTP-AUTH, computed here independently of QuiverSCTP

/// RFC 4895 §6.1's key vector of an INIT or INIT ACK: its RANDOM, CHUNKS and HMAC-ALGO
/// parameters with their headers, without padding.
private func keyVector(_ parameters: [SCTPParameter]) -> [UInt8] {
    [SCTPParameter.random, SCTPParameter.chunkList, SCTPParameter.hmacAlgorithms].flatMap { type -> [UInt8] in
        guard let parameter = parameters.first(where: { $0.type == type }) else { return [] }
        let length = 4 + parameter.value.count
        return [UInt8(type >> 8), UInt8(type & 0xFF), UInt8(length >> 8), UInt8(length & 0xFF)] + parameter.value
    }
}

/// The established association's keys: shared key 0 (empty) and `sharedKey1`, each followed by
/// the key vectors, the smaller one (as an unsigned big-endian number) first. Keyed HMAC
/// states are made once per setup and copied per packet.
private struct AuthKeys {
    let vectors: [UInt8]
    private let sha1: [UInt16: HMAC<Insecure.SHA1>]
    private let sha256: [UInt16: HMAC<SHA256>]

    init(endpointVector: [UInt8], peerVector: [UInt8]) {
        func magnitude(_ vector: [UInt8]) -> ArraySlice<UInt8> { vector.drop { $0 == 0 } }
        let (a, b) = (magnitude(endpointVector), magnitude(peerVector))
        let endpointFirst = a.count != b.count ? a.count < b.count
            : a.elementsEqual(b) ? endpointVector.count <= peerVector.count : a.lexicographicallyPrecedes(b)
        let vectors = endpointFirst ? endpointVector + peerVector : peerVector + endpointVector
        let keys: [UInt16: SymmetricKey] = [0: SymmetricKey(data: vectors), 1: SymmetricKey(data: sharedKey1 + vectors)]
        self.vectors = vectors
        sha1 = keys.mapValues { HMAC<Insecure.SHA1>(key: $0) }
        sha256 = keys.mapValues { HMAC<SHA256>(key: $0) }
    }

    /// The HMAC of an AUTH chunk at `offset` of `packet` (its HMAC field zeroed, RFC 4895
    /// §6.2), `nil` for an HMAC identifier or key identifier we do not know or the wrong length.
    func hmac(_ packet: [UInt8], authAt offset: Int, length: Int) -> [UInt8]? {
        let keyID = UInt16(packet[offset + 4]) << 8 | UInt16(packet[offset + 5])
        let hmacID = UInt16(packet[offset + 6]) << 8 | UInt16(packet[offset + 7])
        guard let size = hmacSize(hmacID), length == 8 + size else { return nil }
        var covered = Array(packet[offset...])
        for index in 8..<length { covered[index] = 0 }
        if hmacID == SCTPAuthentication.sha1 {
            guard var mac = sha1[keyID] else { return nil }
            mac.update(data: covered)
            return Array(mac.finalize())
        } else {
            guard var mac = sha256[keyID] else { return nil }
            mac.update(data: covered)
            return Array(mac.finalize())
        }
    }
}

private func hmacSize(_ id: UInt16) -> Int? {
    switch id {
    case SCTPAuthentication.sha1: 20
    case SCTPAuthentication.sha256: 32
    default: nil
    }
}

/// The chunks of a packet that parsed: type, offset, length field.
private func chunkSpans(_ bytes: [UInt8]) -> [(type: UInt8, offset: Int, length: Int)] {
    var spans: [(type: UInt8, offset: Int, length: Int)] = []
    var offset = 12
    while offset + 4 <= bytes.count {
        let length = Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
        guard length >= 4, offset + length <= bytes.count else { break }
        spans.append((bytes[offset], offset, length))
        offset += (length + 3) & ~3
    }
    return spans
}

/// Whether the input parses and has an AUTH chunk `seal` would fill in.
private func hasSealableAuth(_ input: [UInt8]) -> Bool {
    guard (try? SCTPPacket.parse(input)) != nil else { return false }
    return chunkSpans(input).contains { span in
        guard span.type == SCTPChunkType.auth, span.length >= 8 else { return false }
        let keyID = UInt16(input[span.offset + 4]) << 8 | UInt16(input[span.offset + 5])
        let hmacID = UInt16(input[span.offset + 6]) << 8 | UInt16(input[span.offset + 7])
        return keyID <= 1 && hmacSize(hmacID).map { span.length == 8 + $0 } == true
    }
}

/// Fills in the HMAC of every AUTH chunk with a key and HMAC we know, the last first (an AUTH
/// chunk covers those after it), so that the chunks they cover reach the association.
/// Only for inputs `hasSealableAuth` accepted (they parse).
private func seal(_ datagram: inout [UInt8], keys: AuthKeys) {
    for span in chunkSpans(datagram).reversed() where span.type == SCTPChunkType.auth && span.length >= 8 {
        guard let code = keys.hmac(datagram, authAt: span.offset, length: span.length) else { continue }
        datagram.replaceSubrange(span.offset + 8..<span.offset + span.length, with: code)
    }
}

/// With AUTH, what the endpoint sends: an AUTH chunk first under shared key 1 (the one the
/// established association uses) must verify and name the peer's preferred HMAC, SHA-1; and a
/// packet to the peer's tag with a chunk the peer wants authenticated must start with one.
/// The second check holds only while the COOKIE-WAIT association cannot send DATA or SACK
/// (an INIT ACK and COOKIE ACK in the input could give it the peer's tag).
private struct AuthCheck {
    let keys: AuthKeys
    let peerTag: UInt32
    let other: SCTPAssociation

    func verify(_ bytes: [UInt8], _ packet: SCTPPacket) {
        let spans = chunkSpans(bytes)
        let sealedWithKey1 = spans.first.map { first in
            first.type == SCTPChunkType.auth && first.length >= 8 && bytes[first.offset + 4] == 0 && bytes[first.offset + 5] == 1
        } ?? false
        if sealedWithKey1, let first = spans.first {
            let hmacID = UInt16(bytes[first.offset + 6]) << 8 | UInt16(bytes[first.offset + 7])
            require(hmacID == SCTPAuthentication.sha1, "the endpoint sent HMAC \(hmacID), not the peer's first choice (SHA-1): \(hex(bytes))")
            let expected = keys.hmac(bytes, authAt: first.offset, length: first.length)
            require(expected != nil && expected! == Array(bytes[first.offset + 8..<first.offset + first.length]),
                    "the endpoint's AUTH chunk does not verify under shared key 1: \(hex(bytes))")
        }
        let required = spans.contains { peerAuthentication.chunks.contains($0.type) }
        if required, packet.verificationTag == peerTag, other.state == .cookieWait || other.state == .closed {
            require(sealedWithKey1, "the endpoint sent \(packet) without an AUTH chunk under key 1 first: \(hex(bytes))")
        }
    }
}

private func hex(_ bytes: [UInt8]) -> String {
    bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
}

/// A precondition whose message survives -O (precondition's does not): prints and traps.
private func require(_ condition: Bool, _ message: @autoclosure () -> String = "", file: StaticString = #fileID, line: UInt = #line) {
    if !condition { fatalError(message(), file: file, line: line) }
}

@_cdecl("FuzzSCTP_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv, fuzzOneInput)
}
