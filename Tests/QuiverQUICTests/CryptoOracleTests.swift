import Crypto
import CryptoExtras
import QuiverCore
import QuiverTLS
import Testing

@_spi(Wire) @testable import QuiverQUIC

/// The context-reusing AEAD and header-protection primitives (`CQuiverCrypto`, over the
/// BoringSSL inside swift-crypto) against swift-crypto's public one-shot API as the oracle:
/// random keys, nonces, lengths and associated data, every suite.
@Suite("Packet crypto against swift-crypto")
struct CryptoOracleTests {
    static let suites: [CipherSuite] = [.aes128GCMSHA256, .aes256GCMSHA384, .chacha20Poly1305SHA256]

    static func keyLength(_ suite: CipherSuite) -> Int { suite == .aes128GCMSHA256 ? 16 : 32 }

    @Test("AEAD seal and open match swift-crypto", arguments: suites)
    func aead(suite: CipherSuite) throws {
        var rng = SeededGenerator(seed: UInt64(suite.rawValue))
        for round in 0..<200 {
            let key = (0..<Self.keyLength(suite)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let iv = (0..<12).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let plaintext = (0..<Int.random(in: 0...1500, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let ad = (0..<(round % 3 == 0 ? 0 : Int.random(in: 1...60, using: &rng))).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let sequence = round % 5 == 0 ? UInt64.max - UInt64(round) : UInt64.random(in: 0...(1 << 62), using: &rng)

            var nonce = iv
            for i in 0..<8 { nonce[11 - i] ^= UInt8(truncatingIfNeeded: sequence >> (8 * UInt64(i))) }
            let expected: [UInt8]
            if suite == .chacha20Poly1305SHA256 {
                let box = try ChaChaPoly.seal(plaintext, using: SymmetricKey(data: key), nonce: ChaChaPoly.Nonce(data: nonce), authenticating: ad)
                expected = Array(box.ciphertext) + Array(box.tag)
            } else {
                let box = try AES.GCM.seal(plaintext, using: SymmetricKey(data: key), nonce: AES.GCM.Nonce(data: nonce), authenticating: ad)
                expected = Array(box.ciphertext) + Array(box.tag)
            }

            let aead = AEADKey(suite: suite, key: key, iv: iv)
            let sealed = aead.seal(plaintext, sequence: sequence, additionalData: ad)
            #expect(sealed == expected)
            #expect(aead.open(sealed, sequence: sequence, additionalData: ad) == plaintext)
            // Any flipped bit, a wrong sequence number or wrong associated data fails.
            var tampered = sealed
            let bit = Int.random(in: 0..<(tampered.count * 8), using: &rng)
            tampered[bit / 8] ^= 1 << UInt8(bit % 8)
            #expect(aead.open(tampered, sequence: sequence, additionalData: ad) == nil)
            #expect(aead.open(sealed, sequence: sequence &+ 1, additionalData: ad) == nil)
            #expect(aead.open(sealed, sequence: sequence, additionalData: ad + [0]) == nil)
        }
        #expect(AEADKey(suite: suite, key: [UInt8](repeating: 1, count: Self.keyLength(suite)), iv: [UInt8](repeating: 2, count: 12))
            .open([UInt8](repeating: 0, count: 15), sequence: 0, additionalData: []) == nil)
    }

    @Test("Header protection masks match swift-crypto", arguments: suites)
    func headerProtection(suite: CipherSuite) throws {
        var rng = SeededGenerator(seed: 7 + UInt64(suite.rawValue))
        for _ in 0..<200 {
            let key = (0..<Self.keyLength(suite)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let sample = (0..<16).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let expected: [UInt8]
            if suite == .chacha20Poly1305SHA256 {
                let out = try Insecure.ChaCha20CTR.encrypt(
                    [UInt8](repeating: 0, count: 5), using: SymmetricKey(data: key),
                    counter: Insecure.ChaCha20CTR.Counter(data: sample[0..<4]), nonce: Insecure.ChaCha20CTR.Nonce(data: sample[4..<16]))
                expected = Array(out)
            } else {
                var block = sample
                try AES.permute(&block, key: SymmetricKey(data: key))
                expected = Array(block[0..<5])
            }
            let mask = HeaderProtectionKey(suite: suite, key: key).mask(sample: sample[...])
            #expect((0..<5).map { mask[$0] } == expected)
        }
    }
}
