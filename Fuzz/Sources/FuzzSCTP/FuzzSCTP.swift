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
// (Values of this engine's call order; if it changes, the seeds only reach less deep. So does
// the COOKIE ECHO seed, an HMAC under `cookieSecret` at `start`, if either or the cookie
// format changes.)
// After the input, the endpoint's timers fire up to eight times, and its datagrams are
// drained after every step.
//
// Traps when: parsing, the endpoint or an association traps; the round trip above fails; the
// handshake between the two endpoints fails; the endpoint sends a datagram with a bad
// checksum, that does not parse or that is not from its port; `nextDatagram` does not run dry;
// more than 1 MiB of output.
import FuzzDriver
import QuiverCore
import QuiverSCTP

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let input = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    roundTrip(input)
    guard input.count >= 12 else { return 0 }  // the endpoint drops it before any parsing
    var datagram = input
    for index in 8..<12 { datagram[index] = 0 }
    let crc = CRC32c.checksum(datagram)
    for index in 0..<4 { datagram[8 + index] = UInt8(truncatingIfNeeded: crc >> (8 * index)) }
    require(SCTPPacket.checksumIsValid(datagram), "checksumIsValid rejects CRC32c.checksum's value: \(hex(datagram))")
    feed(datagram, sourcePort: UInt16(input[0]) << 8 | UInt16(input[1]), destinationPort: UInt16(input[2]) << 8 | UInt16(input[3]))
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

private let endpointAddress = SocketAddress(host: "192.0.2.1", port: 9899)!
private let peerAddress = SocketAddress(host: "192.0.2.2", port: 9899)!
private let otherAddress = SocketAddress(host: "192.0.2.3", port: 9899)!
private let cookieSecret = [UInt8](repeating: 0x5C, count: 32)
private let start = Instant(nanoseconds: 1_000_000_000_000)

/// The datagram from `peerAddress` to an endpoint set up as the header comment says.
private func feed(_ datagram: [UInt8], sourcePort: UInt16, destinationPort: UInt16) {
    var now = start
    var output = 0
    let endpoint = makeEndpoint(port: destinationPort, firstWord: 0xE000_0001)
    let peer = makeEndpoint(port: sourcePort, firstWord: 0x5000_0001)
    _ = endpoint.connect(to: otherAddress, port: sourcePort, now: now)
    _ = peer.connect(to: endpointAddress, port: destinationPort, now: now)
    var moved = true
    var rounds = 0
    while moved {
        rounds += 1
        require(rounds <= 16, "the handshake (ports \(sourcePort) → \(destinationPort)) does not settle")
        moved = false
        while let (bytes, _) = peer.nextDatagram(now: now) {
            endpoint.receive(bytes, from: peerAddress, now: now)
            moved = true
        }
        while let (bytes, to) = endpoint.nextDatagram(now: now) {
            // The INIT to otherAddress goes nowhere.
            if to == peerAddress {
                peer.receive(bytes, from: endpointAddress, now: now)
                moved = true
            }
        }
    }
    guard let association = endpoint.accept(), association.state == .established else {
        fatalError("the handshake (ports \(sourcePort) → \(destinationPort)) failed: \(endpoint.statistics), \(peer.statistics)")
    }
    do {
        try association.send([UInt8](repeating: 0x61, count: 100), stream: 0, ppid: 51)
        try association.send([UInt8](repeating: 0x62, count: 2000), stream: 1, ppid: 53)
        try association.send([UInt8](repeating: 0x63, count: 100), stream: 2, ppid: 51, unordered: true)
    } catch {
        fatalError("send on a new association failed: \(error)")
    }
    drain(endpoint, now: now, output: &output)  // lost on the way

    endpoint.receive(datagram, from: peerAddress, now: now)
    settle(endpoint, association, now: now, output: &output)
    for _ in 0..<8 {
        guard let deadline = endpoint.nextDeadline else { break }
        now = max(now, deadline)
        endpoint.handleTimeout(now: now)
        settle(endpoint, association, now: now, output: &output)
    }
    require(output <= 1 << 20, "\(output) bytes of output for a \(datagram.count)-byte datagram")
}

/// Drains the endpoint's datagrams and what the application would read.
private func settle(_ endpoint: SCTPEndpoint, _ association: SCTPAssociation, now: Instant, output: inout Int) {
    drain(endpoint, now: now, output: &output)
    while endpoint.accept() != nil {}
    while association.read() != nil {}
    while association.nextEvent() != nil {}
}

/// Takes every datagram due; each must be a well-formed SCTP packet from the endpoint's port.
private func drain(_ endpoint: SCTPEndpoint, now: Instant, output: inout Int) {
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
    }
}

private func makeEndpoint(port: UInt16, firstWord: UInt32) -> SCTPEndpoint {
    var configuration = SCTPEndpoint.Configuration(port: port)
    configuration.association.random = counting(from: firstWord)
    configuration.cookies = SCTPCookieJar(secret: cookieSecret)
    return SCTPEndpoint(configuration: configuration)
}

/// "Random" bytes: the words `first`, `first + 1`, … big-endian, one per four bytes, so tags
/// and initial TSNs are the same for every input (and never repeat, as tags must not).
private func counting(from first: UInt32) -> RandomSource {
    let counter = Counter(first)
    return RandomSource { buffer in
        var index = 0
        while index < buffer.count {
            let word = counter.next()
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
