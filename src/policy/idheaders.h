/* The launch secrets of App-Service-style identity endpoints (X-IDENTITY-HEADER): each
 * belongs to one site and one launch (keyless run), is stored only as a keyed hash, and
 * lives until revoked or until its lease ends. The snapshot holds them as a sorted,
 * immutable index, so every node honours every launch without touching the store. */
#ifndef KL_POLICY_IDHEADERS_H
#define KL_POLICY_IDHEADERS_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/keys.h"

typedef struct kl_idheaders kl_idheaders;

/* The keyed hash a launch secret is stored and looked up as (HMAC-SHA-256 under the
 * pepper, label "identity-header"). 0 or a kl_err. */
int kl_idheaders_hash(const kl_keys *keys, const char *secret, size_t n, unsigned char out[32]);

/* An empty index; *out owned by the caller (kl_idheaders_free). */
int kl_idheaders_new(kl_idheaders **out);
void kl_idheaders_free(kl_idheaders *h);
/* Adds a secret's hash for the site named site (copied), valid until expires_at (epoch
 * seconds, exclusive). KL_ETOOBIG beyond KL_MAX_IDENTITY_HEADERS. */
int kl_idheaders_add(kl_idheaders *h, const unsigned char hash[32], const char *site,
                     int64_t expires_at);
/* Sorts for lookups; nothing can be added afterwards. */
int kl_idheaders_finish(kl_idheaders *h);
/* The site whose launch secret hashes to hash and is still valid at now, or NULL. The
 * hash found is compared in constant time over all 32 bytes. Borrowed from h. */
const char *kl_idheaders_lookup(const kl_idheaders *h, const unsigned char hash[32], int64_t now);
/* Number of secrets held. */
size_t kl_idheaders_count(const kl_idheaders *h);

#endif
