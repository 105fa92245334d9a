/* Failed-authentication throttle (see throttle.h): two fixed-size open-addressed tables,
 * one of failure counters (client ids and addresses, told apart by a tag in the hashed
 * key) and one of familiar (client, address) pairs with their own counters. */
#include "token/throttle.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"

#define PROBES 8   /* slots looked at for one key */
#define KEY_LEN 16 /* bytes of the salted SHA-256 kept per entry */

enum { TAG_CLIENT = 1, TAG_ADDR = 2, TAG_PAIR = 3 };

typedef struct counter {
    unsigned char key[KEY_LEN];
    int64_t window_start;   /* ms; the window is [window_start, window_start + WINDOW) */
    int64_t last_fail;      /* ms of the latest failure */
    int64_t familiar_until; /* pairs only: ms until which the pair is familiar */
    uint32_t failures;      /* in the current window */
    bool used;
} counter;

struct kl_throttle {
    pthread_mutex_t mu;
    unsigned char salt[32];
    EVP_MD *sha256; /* fetched once: an implicit fetch per digest costs more than the digest */
    size_t mask;    /* capacity - 1 of each table */
    counter *counters;
    counter *pairs;
};

static size_t round_pow2(size_t n)
{
    size_t p = PROBES;
    while (p < n)
        p <<= 1;
    return p;
}

int kl_throttle_new(size_t cap, kl_throttle **out)
{
    if (!out || cap == 0 || cap > KL_MAX_THROTTLE_ENTRIES)
        return KL_EINVAL;
    *out = NULL;
    kl_throttle *t = calloc(1, sizeof(*t));
    if (!t)
        return KL_ENOMEM;
    size_t n = round_pow2(cap);
    t->mask = n - 1;
    t->counters = calloc(n, sizeof(counter));
    t->pairs = calloc(n, sizeof(counter));
    if (!t->counters || !t->pairs) {
        kl_throttle_free(t);
        return KL_ENOMEM;
    }
    if (RAND_bytes(t->salt, sizeof(t->salt)) != 1 ||
        !(t->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL))) {
        kl_throttle_free(t);
        return KL_ECRYPTO;
    }
    pthread_mutex_init(&t->mu, NULL);
    *out = t;
    return 0;
}

void kl_throttle_free(kl_throttle *t)
{
    if (!t)
        return;
    if (t->counters && t->pairs)
        pthread_mutex_destroy(&t->mu);
    free(t->counters);
    free(t->pairs);
    EVP_MD_free(t->sha256);
    OPENSSL_cleanse(t->salt, sizeof(t->salt));
    free(t);
}

/* Salted SHA-256 of (tag, a, b) with lengths, so ("ab","c") and ("a","bc") differ; ctx
 * is the caller's (NULL after a failed allocation). */
static void hash_key(const kl_throttle *t, EVP_MD_CTX *ctx, int tag, const char *a, size_t al,
                     const char *b, size_t bl, unsigned char out[KEY_LEN])
{
    unsigned char md[32];
    unsigned char hdr[1 + 2 * sizeof(uint64_t)];
    uint64_t la = al, lb = bl;
    hdr[0] = (unsigned char)tag;
    memcpy(hdr + 1, &la, sizeof(la));
    memcpy(hdr + 1 + sizeof(la), &lb, sizeof(lb));
    unsigned int mdl = 0;
    if (!ctx || EVP_DigestInit_ex2(ctx, t->sha256, NULL) != 1 ||
        EVP_DigestUpdate(ctx, t->salt, sizeof(t->salt)) != 1 ||
        EVP_DigestUpdate(ctx, hdr, sizeof(hdr)) != 1 || (al && EVP_DigestUpdate(ctx, a, al) != 1) ||
        (bl && EVP_DigestUpdate(ctx, b, bl) != 1) || EVP_DigestFinal_ex(ctx, md, &mdl) != 1) {
        /* Only an allocation failure gets here: everything then shares one counter,
         * which throttles more, never less. */
        memset(md, 0, sizeof(md));
    }
    memcpy(out, md, KEY_LEN);
}

static bool window_live(const counter *c, int64_t now)
{
    return c->used && now - c->window_start < KL_THROTTLE_WINDOW_MS && now >= c->window_start;
}

static bool slot_live(const counter *c, bool pair, int64_t now)
{
    return pair ? c->used && c->familiar_until > now : window_live(c, now);
}

/* The entry for key in table (live or not), or NULL; with create, a slot is claimed for
 * it: a dead one if any among the probes, else the one with the fewest failures (the
 * oldest last failure on a tie). A pair table never reuses a live familiar pair for an
 * unfamiliar one unless every probe is live. */
static counter *find(kl_throttle *t, counter *table, bool pair, const unsigned char key[KEY_LEN],
                     int64_t now, bool create)
{
    uint64_t h;
    memcpy(&h, key, sizeof(h));
    counter *victim = NULL;
    for (size_t i = 0; i < PROBES; i++) {
        counter *c = &table[(h + i) & t->mask];
        if (c->used && CRYPTO_memcmp(c->key, key, KEY_LEN) == 0)
            return c;
        if (!slot_live(c, pair, now)) {
            if (!victim || slot_live(victim, pair, now))
                victim = c;
        } else if (!victim ||
                   (slot_live(victim, pair, now) &&
                    (c->failures < victim->failures ||
                     (c->failures == victim->failures && c->last_fail < victim->last_fail)))) {
            victim = c;
        }
    }
    if (!create)
        return NULL;
    memset(victim, 0, sizeof(*victim));
    memcpy(victim->key, key, KEY_LEN);
    victim->used = true;
    victim->window_start = now;
    return victim;
}

/* How long (ms) c's failures make the next attempt wait against limit, 0 if none;
 * backoff applies only with slow. */
static int64_t wait_ms(const counter *c, uint32_t limit, bool slow, int64_t now)
{
    if (!c || !window_live(c, now))
        return 0;
    if (c->failures >= limit)
        return c->window_start + KL_THROTTLE_WINDOW_MS - now;
    if (slow && c->failures >= KL_THROTTLE_BACKOFF_AFTER) {
        uint32_t k = c->failures - KL_THROTTLE_BACKOFF_AFTER;
        int64_t delay = k >= 15 ? KL_THROTTLE_MAX_BACKOFF_MS : (int64_t)1000 << k;
        if (delay > KL_THROTTLE_MAX_BACKOFF_MS)
            delay = KL_THROTTLE_MAX_BACKOFF_MS;
        if (now < c->last_fail + delay)
            return c->last_fail + delay - now;
    }
    return 0;
}

static void count_failure(counter *c, int64_t now)
{
    if (!window_live(c, now)) {
        c->window_start = now;
        c->failures = 0;
    }
    if (c->failures < UINT32_MAX)
        c->failures++;
    c->last_fail = now;
}

typedef struct keys {
    unsigned char client[KEY_LEN], addr[KEY_LEN], pair[KEY_LEN];
} keys;

static void make_keys(const kl_throttle *t, const char *client_id, size_t cl, const char *addr,
                      size_t al, keys *k)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    hash_key(t, ctx, TAG_CLIENT, client_id, cl, NULL, 0, k->client);
    hash_key(t, ctx, TAG_ADDR, addr, al, NULL, 0, k->addr);
    hash_key(t, ctx, TAG_PAIR, client_id, cl, addr, al, k->pair);
    EVP_MD_CTX_free(ctx);
}

/* The familiar pair entry for k, or NULL. Caller holds the lock. */
static counter *familiar(kl_throttle *t, const keys *k, int64_t now)
{
    counter *p = find(t, t->pairs, true, k->pair, now, false);
    return (p && p->familiar_until > now) ? p : NULL;
}

int kl_throttle_check(kl_throttle *t, const char *client_id, size_t cl, const char *addr, size_t al,
                      int64_t now_ms, int64_t *retry_after_s)
{
    if (retry_after_s)
        *retry_after_s = 0;
    if (!t || (!client_id && cl) || (!addr && al))
        return KL_EINVAL;
    keys k;
    make_keys(t, client_id, cl, addr, al, &k);
    pthread_mutex_lock(&t->mu);
    counter *pair = familiar(t, &k, now_ms);
    /* A familiar pair answers for its own failures only; anyone else for the client
     * id's. The address's count applies to everyone from it. */
    counter *who = pair ? pair : find(t, t->counters, false, k.client, now_ms, false);
    int64_t w = wait_ms(who, KL_THROTTLE_CLIENT_LIMIT, true, now_ms);
    int64_t wa = wait_ms(find(t, t->counters, false, k.addr, now_ms, false), KL_THROTTLE_ADDR_LIMIT,
                         false, now_ms);
    pthread_mutex_unlock(&t->mu);
    if (wa > w)
        w = wa;
    if (w <= 0)
        return 0;
    if (retry_after_s)
        *retry_after_s = (w + 999) / 1000;
    return KL_EPERM;
}

void kl_throttle_failed(kl_throttle *t, const char *client_id, size_t cl, const char *addr,
                        size_t al, int64_t now_ms)
{
    if (!t || (!client_id && cl) || (!addr && al))
        return;
    keys k;
    make_keys(t, client_id, cl, addr, al, &k);
    pthread_mutex_lock(&t->mu);
    count_failure(find(t, t->counters, false, k.client, now_ms, true), now_ms);
    count_failure(find(t, t->counters, false, k.addr, now_ms, true), now_ms);
    counter *pair = familiar(t, &k, now_ms);
    if (pair)
        count_failure(pair, now_ms);
    pthread_mutex_unlock(&t->mu);
}

void kl_throttle_succeeded(kl_throttle *t, const char *client_id, size_t cl, const char *addr,
                           size_t al, int64_t now_ms)
{
    if (!t || (!client_id && cl) || (!addr && al))
        return;
    keys k;
    make_keys(t, client_id, cl, addr, al, &k);
    pthread_mutex_lock(&t->mu);
    counter *pair = find(t, t->pairs, true, k.pair, now_ms, true);
    pair->familiar_until = now_ms + KL_THROTTLE_FAMILIAR_MS;
    pair->failures = 0;
    pair->window_start = now_ms;
    pthread_mutex_unlock(&t->mu);
}
