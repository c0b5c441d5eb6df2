// libFuzzer target: TransportParameters(decoding:sentBy:) on arbitrary extension bodies.
//
// Decoding must never trap, for either sender role. Parameters that decode must encode to
// bytes that decode, as the same role, to equal parameters — also with a reserved (grease)
// parameter added, which decoders ignore (RFC 9000 §18.1).
import FuzzDriver
@_spi(Wire) import QuiverQUIC

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    for role in [Role.client, .server] {
        guard let parameters = try? TransportParameters(decoding: bytes, sentBy: role) else { continue }
        let grease = TransportParameters.GreaseParameter(n: UInt64(size % 64), value: Array(bytes.prefix(size % 17)))
        for encoded in [parameters.encode(), parameters.encode(includeGrease: grease)] {
            let again: TransportParameters
            do {
                again = try TransportParameters(decoding: encoded, sentBy: role)
            } catch {
                fatalError("re-encoded transport parameters do not decode (sent by \(role)): \(error)\n  \(parameters)\n  bytes: \(hex(encoded))")
            }
            require(again == parameters, "transport parameters round trip differs (sent by \(role)):\n  \(parameters)\n  \(again)")
        }
    }
    return 0
}

private func hex(_ bytes: [UInt8]) -> String {
    bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
}

/// A precondition whose message survives -O (precondition's does not): prints and traps.
private func require(_ condition: Bool, _ message: @autoclosure () -> String = "", file: StaticString = #fileID, line: UInt = #line) {
    if !condition { fatalError(message(), file: file, line: line) }
}

@_cdecl("FuzzTransportParameters_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv, fuzzOneInput)
}
