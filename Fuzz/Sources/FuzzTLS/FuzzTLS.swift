// libFuzzer target: the TLS record layer and handshakes (TLS 1.3 and TLS 1.2) through the
// public `TLSStream`, fed bytes as if they came from the network.
//
// The first input byte chooses the role: 0 — a server (default configuration: TLS 1.3 and
// 1.2, an ECDSA P-256 certificate); 1 — a TLS 1.2-only client after its ClientHello; 2 — a
// default client (TLS 1.3 and 1.2) after its ClientHello. The rest is fed to `receive` in
// chunks whose sizes come from the input, so record and message boundaries fall anywhere.
//
// Traps when: the stream traps; a failed stream does not report its error (`error`), or
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
    let stream: TLSStream
    switch bytes[0] % 3 {
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
