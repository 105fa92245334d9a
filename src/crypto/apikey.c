/* API keys: "klk1" + 40 random base62 characters + 6 base62 characters of CRC-32 over the
 * first 44. The checksum is for typo and scanner checks only; the secret part is the
 * random body, and keys are looked up by their keyed hash. */
#include "crypto/apikey.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdint.h>
#include <string.h>

#include "common/err.h"
#include "crypto/crc32.h"

#define PREFIX_LEN 4
#define BODY_LEN 40
#define CHECK_LEN 6
#define CHECKED_LEN (PREFIX_LEN + BODY_LEN)

_Static_assert(PREFIX_LEN + BODY_LEN + CHECK_LEN == KL_APIKEY_LEN, "API key length");
_Static_assert(sizeof(KL_APIKEY_PREFIX) - 1 == PREFIX_LEN, "API key prefix length");

static const char b62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static bool is_b62(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* Big-endian base62 with leading zeros; 62^6 > 2^32, so six digits hold any CRC. */
static void checksum_chars(const char *s, char out[CHECK_LEN])
{
    uint32_t v = kl_crc32(s, CHECKED_LEN);
    for (int i = CHECK_LEN - 1; i >= 0; i--) {
        out[i] = b62[v % 62];
        v /= 62;
    }
}

int kl_apikey_generate(char out[KL_APIKEY_LEN + 1])
{
    /* Bytes >= 248 are dropped so every character is equally likely (248 = 4 * 62). */
    unsigned char rnd[64];
    size_t filled = PREFIX_LEN;
    int rc = KL_ECRYPTO;
    memcpy(out, KL_APIKEY_PREFIX, PREFIX_LEN);
    while (filled < CHECKED_LEN) {
        if (RAND_bytes(rnd, sizeof(rnd)) != 1)
            goto out;
        for (size_t i = 0; i < sizeof(rnd) && filled < CHECKED_LEN; i++) {
            if (rnd[i] < 248)
                out[filled++] = b62[rnd[i] % 62];
        }
    }
    checksum_chars(out, out + CHECKED_LEN);
    out[KL_APIKEY_LEN] = '\0';
    rc = 0;
out:
    OPENSSL_cleanse(rnd, sizeof(rnd));
    if (rc)
        OPENSSL_cleanse(out, KL_APIKEY_LEN + 1);
    return rc;
}

bool kl_apikey_wellformed(const char *s, size_t n)
{
    if (!s || n != KL_APIKEY_LEN || memcmp(s, KL_APIKEY_PREFIX, PREFIX_LEN) != 0)
        return false;
    for (size_t i = PREFIX_LEN; i < n; i++) {
        if (!is_b62(s[i]))
            return false;
    }
    char check[CHECK_LEN];
    checksum_chars(s, check);
    return memcmp(check, s + CHECKED_LEN, CHECK_LEN) == 0;
}

int kl_apikey_index(const kl_keys *k, const char *key, size_t n, unsigned char out[32])
{
    return kl_keys_hmac(k, "apikey", key, n, out);
}
