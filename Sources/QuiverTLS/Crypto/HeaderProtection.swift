import CQuiverCrypto

/// Header protection (RFC 9001 §5.4): a 5-byte mask from a 16-byte ciphertext sample, with
/// AES (one block, ECB) or ChaCha20 (counter and nonce taken from the sample). DTLS 1.3
/// masks record sequence numbers the same way (RFC 9147 §4.2.3). The AES key
/// schedule is expanded once, at creation.
public struct HeaderProtectionKey: Sendable {
    enum Backing: Sendable {
        case aes(AESBlockKey)
        case chacha([UInt8])
    }

    let backing: Backing

    /// Creates a header-protection key for `suite`.
    public init(suite: CipherSuite, key: [UInt8]) {
        backing = suite == .chacha20Poly1305SHA256 ? .chacha(key) : .aes(AESBlockKey(key))
    }

    /// The 5-byte mask for `sample` (exactly 16 bytes), computed in stack memory.
    public func mask(sample: ArraySlice<UInt8>) -> HeaderProtectionMask {
        precondition(sample.count == 16, "header protection sample must be 16 bytes")
        return sample.withUnsafeBytes { mask(sample: $0.baseAddress!) }
    }

    /// The 5-byte mask for the 16 bytes at `sample`.
    public func mask(sample: UnsafeRawPointer) -> HeaderProtectionMask {
        var block: (UInt64, UInt64) = (0, 0)
        withUnsafeMutableBytes(of: &block) { out in
            let output = out.baseAddress!.assumingMemoryBound(to: UInt8.self)
            let input = sample.assumingMemoryBound(to: UInt8.self)
            switch backing {
            case .aes(let key):
                quiver_aes_block_encrypt(key.pointer, input, output)
            case .chacha(let key):
                // RFC 9001 §5.4.4: the counter is the sample's first 4 bytes, little-endian; the
                // nonce the other 12; the mask is ChaCha20 applied to five zero bytes.
                let counter = UInt32(littleEndian: sample.loadUnaligned(as: UInt32.self))
                let zeros: (UInt64, UInt64) = (0, 0)
                withUnsafeBytes(of: zeros) { zero in
                    quiver_chacha20(key, counter, input + 4, zero.baseAddress!.assumingMemoryBound(to: UInt8.self), output, 5)
                }
            }
        }
        return withUnsafeBytes(of: block) { HeaderProtectionMask($0[0], $0[1], $0[2], $0[3], $0[4]) }
    }
}

/// One expanded AES key for single-block (ECB) encryption or decryption — QUIC header
/// protection, QUIC-LB connection IDs; read-only after creation.
package final class AESBlockKey: @unchecked Sendable {
    let pointer: OpaquePointer
    private let decrypting: Bool

    /// - Precondition: `key` has 16 or 32 bytes.
    package init(_ key: [UInt8], decrypting: Bool = false) {
        let made = decrypting ? quiver_aes_block_new_decrypting(key, key.count) : quiver_aes_block_new(key, key.count)
        guard let pointer = made else { preconditionFailure("AES key of \(key.count) bytes") }
        self.pointer = pointer
        self.decrypting = decrypting
    }

    deinit { quiver_aes_block_free(pointer) }

    /// Encrypts (or, for a decrypting key, decrypts) one block.
    /// - Precondition: `block` has 16 bytes.
    package func apply(_ block: [UInt8]) -> [UInt8] {
        precondition(block.count == 16, "AES blocks have 16 bytes")
        var output = [UInt8](repeating: 0, count: 16)
        block.withUnsafeBufferPointer { input in
            output.withUnsafeMutableBufferPointer { out in
                if decrypting {
                    quiver_aes_block_decrypt(pointer, input.baseAddress!, out.baseAddress!)
                } else {
                    quiver_aes_block_encrypt(pointer, input.baseAddress!, out.baseAddress!)
                }
            }
        }
        return output
    }
}

/// Five mask bytes: the first masks the header's low bits, the rest the packet number.
public struct HeaderProtectionMask: Sendable, Hashable {
    public var bytes: (UInt8, UInt8, UInt8, UInt8, UInt8)

    init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8, _ e: UInt8) { bytes = (a, b, c, d, e) }

    /// Byte `i` (0–4).
    public subscript(_ i: Int) -> UInt8 {
        switch i {
        case 0: return bytes.0
        case 1: return bytes.1
        case 2: return bytes.2
        case 3: return bytes.3
        default: return bytes.4
        }
    }

    public static func == (a: Self, b: Self) -> Bool { a.bytes == b.bytes }
    public func hash(into h: inout Hasher) { h.combine(bytes.0); h.combine(bytes.1); h.combine(bytes.2); h.combine(bytes.3); h.combine(bytes.4) }
}
