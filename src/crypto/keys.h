/* The key-encryption key (KEK) and the subkeys derived from it. The KEK comes from
 * KEYLESS_KEK (base64 of 32 bytes) or from DIR/kek (32 raw bytes, created 0600 on first
 * start). Subkeys are derived with HKDF-SHA-256 so one secret file protects everything:
 * the sealing key (AES-256-GCM) and the pepper for keyed hashes of secrets. */
#ifndef KL_CRYPTO_KEYS_H
#define KL_CRYPTO_KEYS_H

#include <stddef.h>

typedef struct kl_keys kl_keys;

/* Loads the KEK: from env_b64 if non-NULL (KEYLESS_KEK's value), else from the file
 * "kek" in the directory dir_fd, creating it (0600, O_EXCL) when absent. Refuses
 * (KL_EPERM) a kek that is a symbolic link, is owned by another uid than the effective
 * one, or that group or others may read; KL_EINVAL for one of the wrong size (or
 * KEYLESS_KEK not base64 of 32 bytes). On success *out is owned by the caller. The caller
 * keeps dir_fd.
 * Returns 0; KL_EPERM, KL_EINVAL as above; KL_EIO (reading or creating the file);
 * KL_EEXIST never (a file created concurrently by another process is read instead);
 * KL_ECRYPTO (the CSPRNG for a new KEK, or key derivation); KL_ENOMEM. */
int kl_keys_load(int dir_fd, const char *env_b64, kl_keys **out);
/* Loads the KEK from an existing file given by the operator (--kek-file: 32 raw bytes).
 * The same checks as for DIR/kek: the last component must not be a symbolic link
 * (O_NOFOLLOW), the file must be regular, owned by the effective uid and carry no group
 * or other permission bits (KL_EPERM). Never creates it: every node of a cluster must be
 * given the same one. KL_ENOTFOUND, KL_EPERM, KL_EINVAL (size), KL_EIO. On success *out
 * is owned by the caller. */
int kl_keys_load_file(const char *path, kl_keys **out);
/* Builds keys from raw KEK bytes (tests). */
int kl_keys_from_bytes(const unsigned char *kek, size_t len, kl_keys **out);
/* Wipes and frees. NULL is fine. */
void kl_keys_free(kl_keys *k);

/* HMAC-SHA-256 under the pepper subkey, with a domain label so one pepper serves several
 * kinds of secret ("apikey", "client-secret", ...). out receives 32 bytes. */
int kl_keys_hmac(const kl_keys *k, const char *label, const void *msg, size_t n,
                 unsigned char out[32]);

/* Internal to crypto/: the 32-byte sealing key. */
const unsigned char *kl_keys_seal_key(const kl_keys *k);

#endif
