/* Launch secrets' index (see idheaders.h). */
#include "policy/idheaders.h"

#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"

typedef struct entry {
    unsigned char hash[32];
    char *site;
    int64_t expires_at;
} entry;

struct kl_idheaders {
    entry *v;
    size_t n, cap;
    bool finished;
};

int kl_idheaders_hash(const kl_keys *keys, const char *secret, size_t n, unsigned char out[32])
{
    return kl_keys_hmac(keys, "identity-header", secret, n, out);
}

int kl_idheaders_new(kl_idheaders **out)
{
    *out = calloc(1, sizeof(**out));
    return *out ? 0 : KL_ENOMEM;
}

void kl_idheaders_free(kl_idheaders *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n; i++)
        free(h->v[i].site);
    OPENSSL_cleanse(h->v, h->cap * sizeof(entry));
    free(h->v);
    free(h);
}

int kl_idheaders_add(kl_idheaders *h, const unsigned char hash[32], const char *site,
                     int64_t expires_at)
{
    if (h->finished || !site)
        return KL_EINVAL;
    if (h->n >= KL_MAX_IDENTITY_HEADERS)
        return KL_ETOOBIG;
    if (h->n == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 16;
        entry *v = realloc(h->v, cap * sizeof(entry));
        if (!v)
            return KL_ENOMEM;
        h->v = v;
        h->cap = cap;
    }
    size_t sn = strlen(site);
    char *copy = malloc(sn + 1);
    if (!copy)
        return KL_ENOMEM;
    memcpy(copy, site, sn + 1);
    entry *e = &h->v[h->n++];
    memcpy(e->hash, hash, 32);
    e->site = copy;
    e->expires_at = expires_at;
    return 0;
}

static int by_hash(const void *a, const void *b)
{
    return memcmp(((const entry *)a)->hash, ((const entry *)b)->hash, 32);
}

int kl_idheaders_finish(kl_idheaders *h)
{
    if (h->n > 1)
        qsort(h->v, h->n, sizeof(entry), by_hash);
    h->finished = true;
    return 0;
}

size_t kl_idheaders_count(const kl_idheaders *h)
{
    return h ? h->n : 0;
}

const char *kl_idheaders_lookup(const kl_idheaders *h, const unsigned char hash[32], int64_t now)
{
    if (!h || !h->finished || h->n == 0)
        return NULL;
    /* The search compares keyed hashes, which a caller cannot steer without the pepper;
     * the final comparison is constant-time all the same (design T10). */
    size_t lo = 0, hi = h->n;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (memcmp(h->v[mid].hash, hash, 32) <= 0)
            lo = mid;
        else
            hi = mid;
    }
    const entry *e = &h->v[lo];
    if (CRYPTO_memcmp(e->hash, hash, 32) != 0 || now >= e->expires_at)
        return NULL;
    return e->site;
}
