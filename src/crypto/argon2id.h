/* Password hashing with Argon2id (Debian's libargon2): a fresh salt per hash from the OS
 * CSPRNG, the parameters recorded beside each hash so they can be raised without
 * invalidating what is stored, and a verification that costs the same whatever the
 * outcome and compares in constant time. Passwords are never copied, logged or kept. */
#ifndef KL_CRYPTO_ARGON2ID_H
#define KL_CRYPTO_ARGON2ID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/limits.h"

/* A stored password: Argon2id over the password with salt, under t passes, m KiB and
 * p lanes. Not secret in itself, but never shown. */
typedef struct kl_argon2id {
    unsigned char hash[KL_ARGON2_HASH_LEN];
    unsigned char salt[KL_ARGON2_SALT_LEN];
    uint32_t t, m, p;
} kl_argon2id;

/* Hashes pw[0..n) (1..KL_MAX_PASSWORD bytes) with a fresh salt and the parameters of
 * common/limits.h into *out. 0, KL_EINVAL (bad length), KL_ECRYPTO (no randomness, or
 * the library failed). */
int kl_argon2id_hash(const char *pw, size_t n, kl_argon2id *out);

/* True if pw[0..n) is the password of *stored: the hash is computed again with the
 * stored salt and parameters and compared with CRYPTO_memcmp. Parameters outside
 * 1..KL_ARGON2_MAX_T_COST passes, 8..KL_ARGON2_MAX_M_COST KiB or 1..16 lanes are refused
 * (false) without hashing: a damaged row must not make a sign-in allocate gigabytes.
 * A NULL stored (no such user, or no password) hashes against a fixed dummy with the
 * current parameters and returns false, so the caller spends the same time either way. */
bool kl_argon2id_verify(const char *pw, size_t n, const kl_argon2id *stored);

/* Standard-base64 text of the hash and salt, for the store. out needs
 * KL_ARGON2ID_B64_HASH and KL_ARGON2ID_B64_SALT bytes. */
#define KL_ARGON2ID_B64_HASH (4 * ((KL_ARGON2_HASH_LEN + 2) / 3) + 1)
#define KL_ARGON2ID_B64_SALT (4 * ((KL_ARGON2_SALT_LEN + 2) / 3) + 1)
/* Fills *out from the stored texts and parameters; KL_EINVAL if they do not decode to
 * the right lengths. */
int kl_argon2id_decode(const char *hash_b64, const char *salt_b64, int64_t t, int64_t m, int64_t p,
                       kl_argon2id *out);

#endif
