// Protect (AEAD seal + header protection) and unprotect of a 1200-byte 1-RTT packet, next to
// the raw swift-crypto AES-128-GCM seal of the same payload, in one run: ns per packet and
// heap allocations per packet. Medians of several rounds; the ratio is the result.
import CMallocCounter
import Crypto
import Foundation
import Glibc
import QuiverCore
@_spi(Wire) import QuiverQUIC
import QuiverTLS

@inline(never) func blackHole<T>(_ value: T) { withExtendedLifetime(value) {} }

func now() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

struct Result {
    var nsPerOp: Double
    var allocationsPerOp: Double
}

func measure(_ name: String, iterations: Int = 20_000, rounds: Int = 7, _ body: (Int) -> Void) -> Result {
    for i in 0..<1000 { body(i) }  // warm up
    var times: [Double] = []
    var allocations: [Double] = []
    for _ in 0..<rounds {
        let a0 = quiver_malloc_count()
        let t0 = now()
        for i in 0..<iterations { body(i) }
        let t1 = now()
        let a1 = quiver_malloc_count()
        times.append(Double(t1 - t0) / Double(iterations))
        allocations.append(Double(a1 - a0) / Double(iterations))
    }
    times.sort()
    allocations.sort()
    return Result(nsPerOp: times[rounds / 2], allocationsPerOp: allocations[rounds / 2])
}

let dcid = ConnectionID(Array(repeating: 0xab, count: 8))!
let suites: [(String, CipherSuite)] = [("AES-128-GCM", .aes128GCMSHA256), ("ChaCha20-Poly1305", .chacha20Poly1305SHA256)]
var rows: [(String, Result)] = []

let payload = [UInt8](repeating: 0x42, count: 1200 - 1 - 8 - 2 - 16)
for (name, suite) in suites {
    let key = PacketKey(secret: TrafficSecret(suite: suite, secret: Array(repeating: 7, count: 32)), version: .v1)
    var header = ByteWriter()
    let pnOffset = ShortHeader(destinationConnectionID: dcid).encode(into: &header, packetNumber: 0x1234, packetNumberLength: 2, keyPhase: false)
    let plain = header.bytes + payload
    var sealed = plain
    key.protect(&sealed, packetNumberOffset: pnOffset, packetNumber: 0x1234)
    precondition(sealed.count == 1200)
    rows.append(("protect 1-RTT 1200 B, \(name)", measure("protect") { i in
        var packet = plain
        key.protect(&packet, packetNumberOffset: pnOffset, packetNumber: UInt64(i))
        blackHole(packet)
    }))
    rows.append(("unprotect 1-RTT 1200 B, \(name)", measure("unprotect") { _ in
        blackHole(key.unprotect(sealed, packetNumberOffset: pnOffset, largestReceived: 0x1233))
    }))
}

let rawKey = SymmetricKey(size: .bits128)
let rawNonce = try AES.GCM.Nonce(data: [UInt8](repeating: 1, count: 12))
let rawPayload = [UInt8](repeating: 0x42, count: 1200 - 16)
let raw = measure("raw") { _ in
    blackHole(try? AES.GCM.seal(rawPayload, using: rawKey, nonce: rawNonce, authenticating: [UInt8](repeating: 0, count: 11)))
}
rows.append(("swift-crypto AES.GCM.seal, 1184 B (reference)", raw))
let rawChaCha = try ChaChaPoly.Nonce(data: [UInt8](repeating: 1, count: 12))
let rawChaChaKey = SymmetricKey(size: .bits256)
rows.append(("swift-crypto ChaChaPoly.seal, 1184 B (reference)", measure("rawc") { _ in
    blackHole(try? ChaChaPoly.seal(rawPayload, using: rawChaChaKey, nonce: rawChaCha, authenticating: [UInt8](repeating: 0, count: 11)))
}))

print("| operation | ns/packet | heap allocations/packet | × raw AES-GCM seal |")
print("|---|---|---|---|")
for (name, r) in rows {
    let ratio = r.nsPerOp / raw.nsPerOp
    print("| \(name) | \(Int(r.nsPerOp)) | \(String(format: "%.1f", r.allocationsPerOp)) | \(String(format: "%.2f", ratio)) |")
}
