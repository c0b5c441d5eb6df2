// Context-reusing AEAD and header-protection primitives for packet and record protection.
//
// swift-crypto's public API rebuilds the AES key schedule and the cipher context on every
// seal/open (about 1.4 µs of a 1.5 µs AES-128-GCM seal of a 1200-byte packet, see
// shared/design/TOOLCHAIN-NOTES.md). These wrappers keep one BoringSSL context per key instead.
// They call the BoringSSL that swift-crypto already links into every Quiver binary (its
// internal CCryptoBoringSSL target, whose symbols carry the `CCryptoBoringSSL_` prefix), so no
// other C library is involved; the exact swift-crypto version in Package.swift pins the ABI, and
// the tests check these wrappers against swift-crypto's public API and the RFC 9001 vectors.
#ifndef CQUIVER_CRYPTO_H
#define CQUIVER_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

/// The AEADs of TLS 1.3 and QUIC.
enum quiver_aead_algorithm {
    QUIVER_AEAD_AES_128_GCM = 1,
    QUIVER_AEAD_AES_256_GCM = 2,
    QUIVER_AEAD_CHACHA20_POLY1305 = 3,
};

/// An AEAD key with its expanded schedule (an `EVP_AEAD_CTX`); read-only after creation, so
/// safe to use from several threads at once.
typedef struct quiver_aead quiver_aead;

/// Creates a context for `key` (16 or 32 bytes) with a 16-byte tag; NULL on a wrong key length.
quiver_aead *_Nullable quiver_aead_new(enum quiver_aead_algorithm algorithm, const uint8_t *_Nonnull key, size_t key_length);
void quiver_aead_free(quiver_aead *_Nullable aead);

/// Seals `length` bytes at `data` in place and writes the 16-byte tag right after them, so
/// `data` must have room for `length + 16` bytes. The 12-byte nonce; `ad` is authenticated.
/// Returns 1 on success.
int quiver_aead_seal(const quiver_aead *_Nonnull aead, const uint8_t *_Nonnull nonce,
                     uint8_t *_Nonnull data, size_t length, const uint8_t *_Nullable ad, size_t ad_length);

/// Opens `length` bytes (ciphertext then the 16-byte tag) from `input` into `output`, which
/// may equal `input` and needs `length - 16` bytes. Returns 1 when authentic, 0 otherwise
/// (and then the output is unspecified).
int quiver_aead_open(const quiver_aead *_Nonnull aead, const uint8_t *_Nonnull nonce,
                     const uint8_t *_Nonnull input, size_t length, uint8_t *_Nonnull output,
                     const uint8_t *_Nullable ad, size_t ad_length);

/// An expanded AES key for single-block encryption (QUIC header protection, RFC 9001 §5.4.3).
typedef struct quiver_aes_block quiver_aes_block;

/// Expands a 16- or 32-byte key; NULL on a wrong length.
quiver_aes_block *_Nullable quiver_aes_block_new(const uint8_t *_Nonnull key, size_t key_length);
void quiver_aes_block_free(quiver_aes_block *_Nullable key);
/// Encrypts one 16-byte block (`input` and `output` may be equal).
void quiver_aes_block_encrypt(const quiver_aes_block *_Nonnull key, const uint8_t *_Nonnull input, uint8_t *_Nonnull output);
/// Expands a 16- or 32-byte key for decryption (QUIC-LB's single-pass connection IDs); NULL on
/// a wrong length.
quiver_aes_block *_Nullable quiver_aes_block_new_decrypting(const uint8_t *_Nonnull key, size_t key_length);
/// Decrypts one 16-byte block with a key from `quiver_aes_block_new_decrypting`.
void quiver_aes_block_decrypt(const quiver_aes_block *_Nonnull key, const uint8_t *_Nonnull input, uint8_t *_Nonnull output);

/// ChaCha20 keystream XOR (RFC 8439) with a 32-bit block counter: QUIC's ChaCha20 header
/// protection (RFC 9001 §5.4.4) takes the counter and nonce from the sample.
void quiver_chacha20(const uint8_t *_Nonnull key, uint32_t counter, const uint8_t *_Nonnull nonce,
                     const uint8_t *_Nonnull input, uint8_t *_Nonnull output, size_t length);

/// HMAC-SHA-256 (`sha384` 0) or HMAC-SHA-384 (1) of `length` bytes at `data` with `key`, into
/// `out` (32 or 48 bytes), in one call: no key object built per computation, as the TLS key
/// schedule's many HKDF steps would otherwise. Returns 1 on success.
int quiver_hmac(int sha384, const uint8_t *_Nullable key, size_t key_length, const uint8_t *_Nullable data, size_t length,
                uint8_t *_Nonnull out);

#endif
