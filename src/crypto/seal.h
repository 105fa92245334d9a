/* Sealing of secrets that must be recoverable (API keys for listKeys, upstream
 * credentials, private signing keys): AES-256-GCM under the KEK's sealing subkey.
 * The sealed form is text: "v1." + base64url(nonce(12) || ciphertext || tag(16)).
 * aad binds a sealed value to its place (e.g. "apikey:<account-id>:1"), so a value
 * copied to another row fails to open. */
#ifndef KL_CRYPTO_SEAL_H
#define KL_CRYPTO_SEAL_H

#include <stddef.h>

#include "crypto/keys.h"

/* Seals pt[0..n) bound to aad. *out is a malloc'd NUL-terminated string the caller
 * frees; NULL on failure.
 * Returns 0; KL_EINVAL (NULL k or out, or NULL pt with n > 0; a NULL aad is ""); KL_ETOOBIG (n
 * above what one sealed value holds); KL_ECRYPTO (the nonce or the cipher failed); KL_ENOMEM. */
int kl_seal(const kl_keys *k, const char *aad, const void *pt, size_t n, char **out);
/* Opens a sealed string. *pt is malloc'd (NUL-terminated for convenience, *n excludes
 * it); the caller cleanses and frees it. Returns KL_ECRYPTO on any tampering or wrong
 * aad, KL_EINVAL on a malformed string. */
int kl_unseal(const kl_keys *k, const char *aad, const char *sealed, unsigned char **pt, size_t *n);

#endif
