// libFuzzer target: the TLS record layer and handshakes (TLS 1.3 and TLS 1.2) through the
// public `TLSStream`, and DTLS 1.3 and 1.2 through `DTLSCookieGate` and `DTLSConnection`, fed
// bytes as if they came from the network.
//
// The first input byte chooses the role: 0 — a TLS server (default configuration: TLS 1.3
// and 1.2, an ECDSA P-256 certificate); 1 — a TLS 1.2-only client after its ClientHello; 2 —
// a default TLS client (1.3 and 1.2) after its ClientHello; 3 — a DTLS server: the cookie
// gate, then a connection for what it accepts; 4 — a DTLS client after its ClientHello (DTLS 1.3
// and 1.2 when the first byte's quotient by 5 is even, 1.2 only when odd). TLS:
// the rest is fed to `receive` in chunks whose sizes come from the second byte, so record and
// message boundaries fall anywhere. DTLS: the rest is a sequence of datagrams, each prefixed
// by a 2-byte length; timers fire between datagrams.
//
// Traps when: a stream or connection traps; a failed one does not report its error, or
// accepts more input; output is produced without bound (more than 1 MiB for a few KiB in).
import FuzzDriver
import QuiverCore
import QuiverTLS

private let identity = try! SelfSignedCertificate.generate(names: ["localhost"], algorithm: .ecdsaP256)
private let serverConfiguration = try! TLSConfiguration.server(chain: identity.chain, key: identity.key, alpn: ["echo"])
private let clientConfigurations: [TLSConfiguration] = [false, true].map { tls12Only in
    var configuration = TLSConfiguration.client(alpn: ["echo"], verifier: .insecureNoVerification(.iUnderstandThisDisablesPeerAuthentication))
    if tls12Only { configuration.maximumVersion = .tls12 }
    return configuration
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard size >= 1, let data else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if bytes[0] % 5 >= 3 {
        fuzzDTLS(server: bytes[0] % 5 == 3, dtls12Only: bytes[0] / 5 % 2 == 1, Array(bytes[1...]))
        return 0
    }
    let stream: TLSStream
    switch bytes[0] % 5 {
    case 0:
        stream = TLSStream(server: serverConfiguration)
    case 1:
        stream = TLSStream(client: clientConfigurations[1], serverName: "localhost")
    default:
        stream = TLSStream(client: clientConfigurations[0], serverName: "localhost")
    }
    do { try stream.start() } catch { fatalError("start failed: \(error)") }
    var output = stream.takeOutgoing().count
    // Chunk sizes from the input's second byte: 1…256 bytes, or all at once for 0.
    let chunk = bytes.count > 1 && bytes[1] != 0 ? Int(bytes[1]) : Int.max
    var offset = 1
    var failed = false
    while offset < bytes.count {
        let end = min(bytes.count, offset + min(chunk, bytes.count))
        do {
            try stream.receive(Array(bytes[offset..<end]))
        } catch {
            require(stream.error != nil, "a failed stream reports no error")
            failed = true
        }
        output += stream.takeOutgoing().count
        _ = stream.read()
        if failed { break }
        offset = end
    }
    if failed {
        // A failed stream stays failed.
        var again = false
        do { try stream.receive([22, 3, 3, 0, 0]) } catch { again = true }
        require(again, "a failed stream accepted more input")
    }
    require(output <= 1 << 20, "\(output) bytes of output for \(size) bytes of input")
    return 0
}

private let gate = DTLSCookieGate(secret: [UInt8](repeating: 1, count: 32))
private let peer = SocketAddress(host: "127.0.0.1", port: 4433)!

/// DTLS: datagrams (2-byte length, then the bytes) to a server behind the cookie gate or to a
/// client that sent its ClientHello; timers fire between them, a second apart.
private func fuzzDTLS(server: Bool, dtls12Only: Bool, _ input: [UInt8]) {
    var now = Instant(nanoseconds: 1_000_000_000)
    var connection: DTLSConnection?
    if !server {
        let client = DTLSConnection(client: clientConfigurations[dtls12Only ? 1 : 0], serverName: "localhost")
        do { try client.start(now: now) } catch { fatalError("start failed: \(error)") }
        connection = client
    }
    var output = 0
    var offset = 0
    while input.count - offset >= 2 {
        let length = min(Int(input[offset]) << 8 | Int(input[offset + 1]), input.count - offset - 2)
        let datagram = Array(input[(offset + 2)..<(offset + 2 + length)])
        offset += 2 + length
        if connection == nil {
            switch gate.check(datagram, from: peer, tls: serverConfiguration) {
            case .drop: continue
            case .helloVerifyRequest(let reply), .helloRetryRequest(let reply), .refuse(let reply): output += reply.count; continue
            case .accept(let retry):
                connection = retry.map { DTLSConnection(server: serverConfiguration, after: $0) } ?? DTLSConnection(server: serverConfiguration)
            }
        }
        guard let connection else { continue }
        do {
            try connection.receive(datagram, now: now)
            now = now + .seconds(1)
            try connection.handleTimeout(now: now)
        } catch {
            require(connection.error != nil, "a failed DTLS connection reports no error")
            var again = false
            do { try connection.receive(datagram, now: now) } catch { again = true }
            require(again, "a failed DTLS connection accepted more input")
            break
        }
        output += connection.takeDatagrams().reduce(0) { $0 + $1.count }
        while connection.read() != nil {}
    }
    require(output <= 1 << 20, "\(output) bytes of DTLS output for \(input.count) bytes of input")
}

/// A precondition whose message survives -O (precondition's does not): prints and traps.
private func require(_ condition: Bool, _ message: @autoclosure () -> String = "", file: StaticString = #fileID, line: UInt = #line) {
    if !condition { fatalError(message(), file: file, line: line) }
}

@_cdecl("FuzzTLS_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv, fuzzOneInput)
}
