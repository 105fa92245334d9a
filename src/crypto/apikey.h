/* API key format, generation and the keyed-hash index.
 *
 * Format (documented in docs/api-keys.md): "kl" + "k1" + 40 base62 characters of random
 * (≈238 bits) + 6 base62 characters of a CRC-32 checksum over everything before it;
 * 50 characters in all, e.g. klk1Xy...Q3. The fixed prefix lets secret scanners find
 * leaked keys; the checksum lets them (and us) reject typos without a lookup. */
#ifndef KL_CRYPTO_APIKEY_H
#define KL_CRYPTO_APIKEY_H

#include <stdbool.h>
#include <stddef.h>

#include "crypto/keys.h"

#define KL_APIKEY_PREFIX "klk1"
#define KL_APIKEY_LEN 50

/* Fills out[KL_APIKEY_LEN + 1] with a fresh key from the CSPRNG. 0 or KL_ECRYPTO. */
int kl_apikey_generate(char out[KL_APIKEY_LEN + 1]);
/* True if s[0..n) has the prefix, length, alphabet and a correct checksum. */
bool kl_apikey_wellformed(const char *s, size_t n);
/* The index under which a key is stored and looked up: HMAC-SHA-256(pepper, "apikey",
 * key[0..n)) into out. Returns 0; KL_EINVAL (NULL k, key or out); KL_ECRYPTO (the MAC
 * failed). */
int kl_apikey_index(const kl_keys *k, const char *key, size_t n, unsigned char out[32]);

#endif
