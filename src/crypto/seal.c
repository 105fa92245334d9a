/* AES-256-GCM sealing of recoverable secrets into a text form that fits a database
 * column: "v1." + base64url(nonce || ciphertext || tag). The aad ties a sealed value to
 * the row it belongs to. */
#include "crypto/seal.h"

#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"

#define SEAL_PREFIX "v1."
#define SEAL_PREFIX_LEN 3
#define NONCE_LEN 12
#define TAG_LEN 16
#define MAX_PLAINTEXT (64 * 1024)
#define MAX_RAW (NONCE_LEN + MAX_PLAINTEXT + TAG_LEN)
/* base64url length of MAX_RAW bytes, without padding. */
#define MAX_B64 ((MAX_RAW * 4 + 2) / 3)

/* Starts AES-256-GCM in *ctx (enc 1 seals, 0 unseals; the caller frees *ctx, set even on
 * failure) under the seal key and nonce, and feeds it aad. KL_EINVAL for an aad longer
 * than OpenSSL takes, KL_ECRYPTO when OpenSSL fails. */
static int gcm_begin(EVP_CIPHER_CTX **ctx, const kl_keys *k, const unsigned char *nonce,
                     const char *aad, int enc)
{
    int len = 0;
    *ctx = EVP_CIPHER_CTX_new();
    if (!*ctx || EVP_CipherInit_ex(*ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) != 1 ||
        EVP_CIPHER_CTX_ctrl(*ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
        EVP_CipherInit_ex(*ctx, NULL, NULL, kl_keys_seal_key(k), nonce, enc) != 1)
        return KL_ECRYPTO;
    size_t aad_len = strlen(aad);
    if (aad_len > INT_MAX)
        return KL_EINVAL;
    if (aad_len &&
        EVP_CipherUpdate(*ctx, NULL, &len, (const unsigned char *)aad, (int)aad_len) != 1)
        return KL_ECRYPTO;
    return 0;
}

int kl_seal(const kl_keys *k, const char *aad, const void *pt, size_t n, char **out)
{
    int rc = KL_EINVAL;
    EVP_CIPHER_CTX *ctx = NULL;
    unsigned char *raw = NULL;
    char *text = NULL;
    size_t raw_len = NONCE_LEN + n + TAG_LEN;
    size_t text_cap = 0;
    int len = 0;

    if (!out)
        return KL_EINVAL;
    *out = NULL;
    if (!k || (!pt && n))
        goto out;
    rc = KL_ETOOBIG;
    if (n > MAX_PLAINTEXT)
        goto out;
    if (!aad)
        aad = "";
    rc = KL_ENOMEM;
    raw = malloc(raw_len);
    text_cap = SEAL_PREFIX_LEN + 4 * ((raw_len + 2) / 3) + 1;
    text = malloc(text_cap);
    if (!raw || !text)
        goto out;

    rc = KL_ECRYPTO;
    unsigned char *nonce = raw;
    unsigned char *ct = raw + NONCE_LEN;
    unsigned char *tag = raw + NONCE_LEN + n;
    if (RAND_bytes(nonce, NONCE_LEN) != 1)
        goto out;
    if ((rc = gcm_begin(&ctx, k, nonce, aad, 1)) != 0)
        goto out;
    rc = KL_ECRYPTO;
    if (n && EVP_EncryptUpdate(ctx, ct, &len, pt, (int)n) != 1)
        goto out;
    if (EVP_EncryptFinal_ex(ctx, ct + (n ? (size_t)len : 0), &len) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) != 1)
        goto out;

    memcpy(text, SEAL_PREFIX, SEAL_PREFIX_LEN);
    if (kl_b64url_encode(raw, raw_len, text + SEAL_PREFIX_LEN, text_cap - SEAL_PREFIX_LEN) < 0)
        goto out;
    *out = text;
    text = NULL;
    rc = 0;
out:
    EVP_CIPHER_CTX_free(ctx);
    if (raw) {
        OPENSSL_cleanse(raw, raw_len);
        free(raw);
    }
    free(text);
    return rc;
}

int kl_unseal(const kl_keys *k, const char *aad, const char *sealed, unsigned char **pt, size_t *n)
{
    int rc = KL_EINVAL;
    EVP_CIPHER_CTX *ctx = NULL;
    unsigned char *raw = NULL;
    unsigned char *plain = NULL;
    size_t raw_cap = 0;
    size_t plain_len = 0;
    int len = 0;

    if (!pt || !n)
        return KL_EINVAL;
    *pt = NULL;
    *n = 0;
    if (!k || !sealed)
        goto out;
    if (!aad)
        aad = "";
    size_t slen = strnlen(sealed, SEAL_PREFIX_LEN + MAX_B64 + 1);
    if (slen < SEAL_PREFIX_LEN || memcmp(sealed, SEAL_PREFIX, SEAL_PREFIX_LEN) != 0)
        goto out;
    size_t b64_len = slen - SEAL_PREFIX_LEN;
    if (b64_len > MAX_B64)
        goto out;
    raw_cap = b64_len / 4 * 3 + 3;
    rc = KL_ENOMEM;
    raw = malloc(raw_cap);
    if (!raw)
        goto out;
    int raw_len = kl_b64url_decode(sealed + SEAL_PREFIX_LEN, b64_len, raw, raw_cap);
    rc = KL_EINVAL;
    if (raw_len < NONCE_LEN + TAG_LEN || raw_len > MAX_RAW)
        goto out;
    plain_len = (size_t)raw_len - NONCE_LEN - TAG_LEN;
    rc = KL_ENOMEM;
    plain = malloc(plain_len + 1);
    if (!plain)
        goto out;

    rc = KL_ECRYPTO;
    const unsigned char *nonce = raw;
    const unsigned char *ct = raw + NONCE_LEN;
    unsigned char *tag = raw + NONCE_LEN + plain_len;
    if ((rc = gcm_begin(&ctx, k, nonce, aad, 0)) != 0)
        goto out;
    rc = KL_ECRYPTO;
    if (plain_len && EVP_DecryptUpdate(ctx, plain, &len, ct, (int)plain_len) != 1)
        goto out;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) != 1)
        goto out;
    /* The tag is checked here; nothing decrypted is handed out unless it verifies. */
    if (EVP_DecryptFinal_ex(ctx, plain + (plain_len ? (size_t)len : 0), &len) != 1)
        goto out;
    plain[plain_len] = '\0';
    *pt = plain;
    *n = plain_len;
    plain = NULL;
    rc = 0;
out:
    EVP_CIPHER_CTX_free(ctx);
    if (plain) {
        OPENSSL_cleanse(plain, plain_len + 1);
        free(plain);
    }
    if (raw) {
        OPENSSL_cleanse(raw, raw_cap);
        free(raw);
    }
    return rc;
}
