// See CQuiverCrypto.h. The prototypes below are BoringSSL's (aead.h, aes.h, chacha.h, err.h),
// under the symbol prefix of swift-crypto's vendored copy.
#include "CQuiverCrypto.h"

#include <stdlib.h>

typedef struct evp_aead_st EVP_AEAD;
typedef struct evp_aead_ctx_st EVP_AEAD_CTX;

/// BoringSSL's `AES_KEY` (aes.h): the round keys for up to 14 rounds, and the round count.
struct quiver_aes_block {
    uint32_t rd_key[4 * (14 + 1)];
    unsigned rounds;
};

extern const EVP_AEAD *CCryptoBoringSSL_EVP_aead_aes_128_gcm(void);
extern const EVP_AEAD *CCryptoBoringSSL_EVP_aead_aes_256_gcm(void);
extern const EVP_AEAD *CCryptoBoringSSL_EVP_aead_chacha20_poly1305(void);
extern EVP_AEAD_CTX *CCryptoBoringSSL_EVP_AEAD_CTX_new(const EVP_AEAD *aead, const uint8_t *key, size_t key_len, size_t tag_len);
extern void CCryptoBoringSSL_EVP_AEAD_CTX_free(EVP_AEAD_CTX *ctx);
extern int CCryptoBoringSSL_EVP_AEAD_CTX_seal_scatter(
    const EVP_AEAD_CTX *ctx, uint8_t *out, uint8_t *out_tag, size_t *out_tag_len, size_t max_out_tag_len,
    const uint8_t *nonce, size_t nonce_len, const uint8_t *in, size_t in_len,
    const uint8_t *extra_in, size_t extra_in_len, const uint8_t *ad, size_t ad_len);
extern int CCryptoBoringSSL_EVP_AEAD_CTX_open_gather(
    const EVP_AEAD_CTX *ctx, uint8_t *out, const uint8_t *nonce, size_t nonce_len,
    const uint8_t *in, size_t in_len, const uint8_t *in_tag, size_t in_tag_len,
    const uint8_t *ad, size_t ad_len);
extern int CCryptoBoringSSL_AES_set_encrypt_key(const uint8_t *key, unsigned bits, struct quiver_aes_block *aeskey);
extern void CCryptoBoringSSL_AES_encrypt(const uint8_t *in, uint8_t *out, const struct quiver_aes_block *key);
extern int CCryptoBoringSSL_AES_set_decrypt_key(const uint8_t *key, unsigned bits, struct quiver_aes_block *aeskey);
extern void CCryptoBoringSSL_AES_decrypt(const uint8_t *in, uint8_t *out, const struct quiver_aes_block *key);
extern void CCryptoBoringSSL_CRYPTO_chacha_20(uint8_t *out, const uint8_t *in, size_t in_len,
                                              const uint8_t key[32], const uint8_t nonce[12], uint32_t counter);
extern void CCryptoBoringSSL_ERR_clear_error(void);
typedef struct env_md_st EVP_MD;
extern const EVP_MD *CCryptoBoringSSL_EVP_sha256(void);
extern const EVP_MD *CCryptoBoringSSL_EVP_sha384(void);
extern uint8_t *CCryptoBoringSSL_HMAC(const EVP_MD *evp_md, const void *key, size_t key_len, const uint8_t *data, size_t data_len,
                                      uint8_t *out, unsigned int *out_len);

enum { TAG_LENGTH = 16, NONCE_LENGTH = 12 };

quiver_aead *quiver_aead_new(enum quiver_aead_algorithm algorithm, const uint8_t *key, size_t key_length) {
    const EVP_AEAD *aead;
    switch (algorithm) {
    case QUIVER_AEAD_AES_128_GCM: aead = CCryptoBoringSSL_EVP_aead_aes_128_gcm(); break;
    case QUIVER_AEAD_AES_256_GCM: aead = CCryptoBoringSSL_EVP_aead_aes_256_gcm(); break;
    case QUIVER_AEAD_CHACHA20_POLY1305: aead = CCryptoBoringSSL_EVP_aead_chacha20_poly1305(); break;
    default: return NULL;
    }
    EVP_AEAD_CTX *ctx = CCryptoBoringSSL_EVP_AEAD_CTX_new(aead, key, key_length, TAG_LENGTH);
    if (ctx == NULL) CCryptoBoringSSL_ERR_clear_error();
    return (quiver_aead *)ctx;
}

void quiver_aead_free(quiver_aead *aead) {
    CCryptoBoringSSL_EVP_AEAD_CTX_free((EVP_AEAD_CTX *)aead);
}

int quiver_aead_seal(const quiver_aead *aead, const uint8_t *nonce, uint8_t *data, size_t length,
                     const uint8_t *ad, size_t ad_length) {
    size_t tag_length = 0;
    int ok = CCryptoBoringSSL_EVP_AEAD_CTX_seal_scatter(
        (const EVP_AEAD_CTX *)aead, data, data + length, &tag_length, TAG_LENGTH, nonce, NONCE_LENGTH,
        data, length, NULL, 0, ad, ad_length);
    if (!ok || tag_length != TAG_LENGTH) {
        CCryptoBoringSSL_ERR_clear_error();
        return 0;
    }
    return 1;
}

int quiver_aead_open(const quiver_aead *aead, const uint8_t *nonce, const uint8_t *input, size_t length,
                     uint8_t *output, const uint8_t *ad, size_t ad_length) {
    if (length < TAG_LENGTH) return 0;
    size_t body = length - TAG_LENGTH;
    int ok = CCryptoBoringSSL_EVP_AEAD_CTX_open_gather(
        (const EVP_AEAD_CTX *)aead, output, nonce, NONCE_LENGTH, input, body, input + body, TAG_LENGTH, ad, ad_length);
    if (!ok) CCryptoBoringSSL_ERR_clear_error();
    return ok;
}

quiver_aes_block *quiver_aes_block_new(const uint8_t *key, size_t key_length) {
    if (key_length != 16 && key_length != 32) return NULL;
    quiver_aes_block *block = malloc(sizeof(quiver_aes_block));
    if (block == NULL) return NULL;
    if (CCryptoBoringSSL_AES_set_encrypt_key(key, (unsigned)(key_length * 8), block) != 0) {
        free(block);
        return NULL;
    }
    return block;
}

quiver_aes_block *quiver_aes_block_new_decrypting(const uint8_t *key, size_t key_length) {
    if (key_length != 16 && key_length != 32) return NULL;
    quiver_aes_block *block = malloc(sizeof(quiver_aes_block));
    if (block == NULL) return NULL;
    if (CCryptoBoringSSL_AES_set_decrypt_key(key, (unsigned)(key_length * 8), block) != 0) {
        free(block);
        return NULL;
    }
    return block;
}

void quiver_aes_block_decrypt(const quiver_aes_block *key, const uint8_t *input, uint8_t *output) {
    CCryptoBoringSSL_AES_decrypt(input, output, key);
}

void quiver_aes_block_free(quiver_aes_block *key) {
    free(key);
}

void quiver_aes_block_encrypt(const quiver_aes_block *key, const uint8_t *input, uint8_t *output) {
    CCryptoBoringSSL_AES_encrypt(input, output, key);
}

void quiver_chacha20(const uint8_t *key, uint32_t counter, const uint8_t *nonce, const uint8_t *input,
                     uint8_t *output, size_t length) {
    CCryptoBoringSSL_CRYPTO_chacha_20(output, input, length, key, nonce, counter);
}

int quiver_hmac(int sha384, const uint8_t *key, size_t key_length, const uint8_t *data, size_t length, uint8_t *out) {
    static const uint8_t nothing = 0;  // BoringSSL's HMAC takes a NULL key to mean "the previous one"
    unsigned int out_length = 0;
    const EVP_MD *md = sha384 ? CCryptoBoringSSL_EVP_sha384() : CCryptoBoringSSL_EVP_sha256();
    return CCryptoBoringSSL_HMAC(md, key ? key : &nothing, key_length, data ? data : &nothing, length, out, &out_length) != NULL;
}
