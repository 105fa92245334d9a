/* Verified-token cache: 4-way set-associative, keyed by the SHA-256 of the token bytes
 * (only tokens that verified are ever inserted, so an attacker cannot choose digests to
 * crowd a set), least-recently-used replacement within a set. */
#include "token/tokcache.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"

#define WAYS 4

typedef struct entry {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    bool used;
    uint64_t key_gen, snap_gen;
    uint64_t stamp; /* last use, from the cache's clock; smallest is evicted */
    kl_claims_principal who;
} entry;

struct kl_tokcache {
    size_t sets; /* power of two */
    uint64_t clock;
    kl_tokcache_stats stats;
    entry *entries; /* sets * WAYS */
};

int kl_tokcache_new(size_t capacity, kl_tokcache **out)
{
    if (capacity == 0 || capacity > KL_MAX_TOKCACHE_ENTRIES)
        return KL_EINVAL;
    size_t sets = 1;
    while (sets * WAYS < capacity)
        sets <<= 1;
    kl_tokcache *c = calloc(1, sizeof(*c));
    if (!c)
        return KL_ENOMEM;
    c->sets = sets;
    c->entries = calloc(sets * WAYS, sizeof(entry));
    if (!c->entries) {
        free(c);
        return KL_ENOMEM;
    }
    *out = c;
    return 0;
}

void kl_tokcache_free(kl_tokcache *c)
{
    if (!c)
        return;
    /* Entries hold no secrets (digests of tokens, ids), but tokens are bearer secrets
     * and their digests identify them in memory dumps: wipe anyway. */
    OPENSSL_cleanse(c->entries, c->sets * WAYS * sizeof(entry));
    free(c->entries);
    free(c);
}

static entry *set_of(kl_tokcache *c, const unsigned char *d)
{
    uint64_t h;
    memcpy(&h, d, sizeof(h));
    return &c->entries[(h & (c->sets - 1)) * WAYS];
}

int kl_tokcache_get(kl_tokcache *c, const char *tok, size_t n, int64_t now, uint64_t key_gen,
                    uint64_t snap_gen, kl_claims_principal *who)
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)tok, n, d);
    entry *set = set_of(c, d);
    for (int i = 0; i < WAYS; i++) {
        entry *e = &set[i];
        if (!e->used || CRYPTO_memcmp(e->digest, d, sizeof(d)) != 0)
            continue;
        if (e->key_gen != key_gen || e->snap_gen != snap_gen ||
            now >= e->who.exp + KL_TOKEN_CLOCK_SKEW_S) {
            memset(e, 0, sizeof(*e));
            break;
        }
        e->stamp = ++c->clock;
        *who = e->who;
        c->stats.hits++;
        return 0;
    }
    c->stats.misses++;
    return KL_ENOTFOUND;
}

void kl_tokcache_put(kl_tokcache *c, const char *tok, size_t n, uint64_t key_gen, uint64_t snap_gen,
                     const kl_claims_principal *who)
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)tok, n, d);
    entry *set = set_of(c, d);
    entry *victim = NULL;
    for (int i = 0; i < WAYS && !victim; i++) {
        if (set[i].used && CRYPTO_memcmp(set[i].digest, d, sizeof(d)) == 0)
            victim = &set[i]; /* the same token again: refresh in place */
    }
    for (int i = 0; i < WAYS && !victim; i++) {
        if (!set[i].used)
            victim = &set[i];
    }
    if (!victim) {
        victim = &set[0];
        for (int i = 1; i < WAYS; i++) {
            if (set[i].stamp < victim->stamp)
                victim = &set[i];
        }
        c->stats.evictions++;
    }
    memcpy(victim->digest, d, sizeof(d));
    victim->used = true;
    victim->key_gen = key_gen;
    victim->snap_gen = snap_gen;
    victim->stamp = ++c->clock;
    victim->who = *who;
}

void kl_tokcache_stats_get(const kl_tokcache *c, kl_tokcache_stats *out)
{
    *out = c->stats;
}
