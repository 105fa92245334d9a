/* A bounded cache of verified access tokens, so a token seen again costs one SHA-256 and
 * a lookup instead of an RSA verification and claim checks. One cache per worker thread
 * (not thread-safe, no locks). An entry records the key-ring and snapshot generations it
 * was validated under; a lookup under any other generation is a miss, so a revoked key,
 * a disabled principal or a removed role applies to cached tokens on the next request. */
#ifndef KL_TOKEN_TOKCACHE_H
#define KL_TOKEN_TOKCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "token/claims.h"

typedef struct kl_tokcache kl_tokcache;

/* A cache of at least `capacity` entries (rounded up to a power of two, at most
 * KL_MAX_TOKCACHE_ENTRIES). *out is owned by the caller. KL_EINVAL for capacity 0 or
 * above the limit. */
int kl_tokcache_new(size_t capacity, kl_tokcache **out);
void kl_tokcache_free(kl_tokcache *c);

/* Looks tok[0..n) up. Hit (0, *who filled) only if the entry's exp + KL_TOKEN_CLOCK_SKEW_S
 * is after now and both generations equal the entry's; otherwise KL_ENOTFOUND (a stale
 * entry is dropped). */
int kl_tokcache_get(kl_tokcache *c, const char *tok, size_t n, int64_t now, uint64_t key_gen,
                    uint64_t snap_gen, kl_claims_principal *who);

/* Records that tok[0..n) verified and validated under these generations, with what it
 * says about its caller. Evicts the least recently used entry of its set when full. */
void kl_tokcache_put(kl_tokcache *c, const char *tok, size_t n, uint64_t key_gen, uint64_t snap_gen,
                     const kl_claims_principal *who);

/* Counters for metrics. */
typedef struct kl_tokcache_stats {
    uint64_t hits, misses, evictions;
} kl_tokcache_stats;
void kl_tokcache_stats_get(const kl_tokcache *c, kl_tokcache_stats *out);

#endif
