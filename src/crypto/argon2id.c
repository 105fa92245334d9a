/* Argon2id password hashes (see argon2id.h). The raw hash is computed and compared here,
 * rather than through libargon2's encoded-string verifier, so that the parameters we
 * accept and the constant-time comparison are ours to see. */
#include "crypto/argon2id.h"

#include <argon2.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"

static bool params_ok(uint32_t t, uint32_t m, uint32_t p)
{
    return t >= 1 && t <= KL_ARGON2_MAX_T_COST && m >= 8 && m <= KL_ARGON2_MAX_M_COST && p >= 1 &&
           p <= 16 && m >= 8 * p;
}

static int raw(const char *pw, size_t n, const unsigned char *salt, uint32_t t, uint32_t m,
               uint32_t p, unsigned char out[KL_ARGON2_HASH_LEN])
{
    int rc = argon2id_hash_raw(t, m, p, pw, n, salt, KL_ARGON2_SALT_LEN, out, KL_ARGON2_HASH_LEN);
    return rc == ARGON2_OK ? 0 : KL_ECRYPTO;
}

int kl_argon2id_hash(const char *pw, size_t n, kl_argon2id *out)
{
    if (!pw || !out || n == 0 || n > KL_MAX_PASSWORD)
        return KL_EINVAL;
    memset(out, 0, sizeof(*out));
    if (RAND_bytes(out->salt, KL_ARGON2_SALT_LEN) != 1)
        return KL_ECRYPTO;
    out->t = KL_ARGON2_T_COST;
    out->m = KL_ARGON2_M_COST;
    out->p = KL_ARGON2_PARALLELISM;
    return raw(pw, n, out->salt, out->t, out->m, out->p, out->hash);
}

bool kl_argon2id_verify(const char *pw, size_t n, const kl_argon2id *stored)
{
    /* The dummy: a fixed salt and hash no password produces in practice; hashing
     * against it costs what a real verification costs. */
    static const kl_argon2id dummy = {
        .t = KL_ARGON2_T_COST, .m = KL_ARGON2_M_COST, .p = KL_ARGON2_PARALLELISM};
    const kl_argon2id *h = stored ? stored : &dummy;
    unsigned char got[KL_ARGON2_HASH_LEN];
    if (!pw || n > KL_MAX_PASSWORD || !params_ok(h->t, h->m, h->p))
        return false;
    bool ok = raw(pw, n, h->salt, h->t, h->m, h->p, got) == 0 &&
              CRYPTO_memcmp(got, h->hash, KL_ARGON2_HASH_LEN) == 0;
    OPENSSL_cleanse(got, sizeof(got));
    return ok && stored != NULL;
}

int kl_argon2id_decode(const char *hash_b64, const char *salt_b64, int64_t t, int64_t m, int64_t p,
                       kl_argon2id *out)
{
    if (!hash_b64 || !salt_b64 || !out || t < 1 || t > UINT32_MAX || m < 1 || m > UINT32_MAX ||
        p < 1 || p > UINT32_MAX)
        return KL_EINVAL;
    memset(out, 0, sizeof(*out));
    if (kl_b64_decode(hash_b64, strlen(hash_b64), out->hash, sizeof(out->hash)) !=
            KL_ARGON2_HASH_LEN ||
        kl_b64_decode(salt_b64, strlen(salt_b64), out->salt, sizeof(out->salt)) !=
            KL_ARGON2_SALT_LEN)
        return KL_EINVAL;
    out->t = (uint32_t)t;
    out->m = (uint32_t)m;
    out->p = (uint32_t)p;
    return 0;
}
