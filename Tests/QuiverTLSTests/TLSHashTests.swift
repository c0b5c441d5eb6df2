import Crypto
import Testing

@testable import QuiverTLS

@Suite("TLSHash: HMAC and HKDF")
struct TLSHashTests {
    /// Keys around the block sizes (64 bytes for SHA-256, 128 for SHA-384: longer keys are
    /// hashed first), the empty key and empty data.
    static let keyLengths = [0, 1, 32, 48, 63, 64, 65, 127, 128, 129, 300]

    @Test("HMAC agrees with swift-crypto's for every key length, SHA-256 and SHA-384", arguments: [TLSHash.sha256, .sha384])
    func hmacAgrees(_ hash: TLSHash) {
        for keyLength in Self.keyLengths {
            for dataLength in [0, 1, 100, 1000] {
                let key = (0..<keyLength).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
                let data = (0..<dataLength).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 1) }
                let expected: [UInt8] = hash == .sha256
                    ? Array(HMAC<SHA256>.authenticationCode(for: data, using: SymmetricKey(data: key)))
                    : Array(HMAC<SHA384>.authenticationCode(for: data, using: SymmetricKey(data: key)))
                #expect(hash.hmac(key: key, data) == expected, "key \(keyLength) bytes, data \(dataLength) bytes")
            }
        }
    }

    @Test("RFC 4231 test case 2: HMAC-SHA-256 and HMAC-SHA-384 with the key \"Jefe\"")
    func rfc4231() {
        let key = Array("Jefe".utf8)
        let data = Array("what do ya want for nothing?".utf8)
        #expect(TLSHash.sha256.hmac(key: key, data) == hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"))
        #expect(TLSHash.sha384.hmac(key: key, data)
            == hex("af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649"))
    }
}
