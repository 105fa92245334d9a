/* Key usage cells and their batched flush (see keyusage.h). The registry is a chained
 * hash table by key index under one mutex, taken by the snapshot builder and by flushes
 * on the control thread, never by the request path: that only reads and raises a cell's
 * atomic day. */
#include "policy/keyusage.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"

#define DAY 86400

struct kl_keyusage_cell {
    unsigned char index[32];
    _Atomic int64_t day; /* start of the last day used (unix seconds), 0 = never */
    atomic_long refs;    /* snapshots holding the cell */
    int64_t written;     /* the day the store has (under the registry's lock) */
    kl_keyusage_cell *next;
};

struct kl_keyusage {
    pthread_mutex_t mu;
    kl_keyusage_cell **buckets;
    size_t mask; /* buckets - 1, a power of two minus one */
    size_t n;
};

static size_t bucket(const kl_keyusage *u, const unsigned char index[32])
{
    uint64_t h;
    memcpy(&h, index, sizeof(h)); /* an HMAC output: already uniform */
    return (size_t)h & u->mask;
}

int kl_keyusage_new(kl_keyusage **out)
{
    *out = NULL;
    kl_keyusage *u = calloc(1, sizeof(*u));
    if (!u)
        return KL_ENOMEM;
    u->mask = 255;
    u->buckets = calloc(u->mask + 1, sizeof(*u->buckets));
    if (!u->buckets || pthread_mutex_init(&u->mu, NULL) != 0) {
        free(u->buckets);
        free(u);
        return KL_ENOMEM;
    }
    *out = u;
    return 0;
}

void kl_keyusage_free(kl_keyusage *u)
{
    if (!u)
        return;
    for (size_t i = 0; i <= u->mask; i++) {
        kl_keyusage_cell *c = u->buckets[i];
        while (c) {
            kl_keyusage_cell *next = c->next;
            free(c);
            c = next;
        }
    }
    free(u->buckets);
    pthread_mutex_destroy(&u->mu);
    free(u);
}

/* Doubles the table when it is fuller than one cell per bucket (under mu). */
static void maybe_grow(kl_keyusage *u)
{
    if (u->n <= u->mask + 1)
        return;
    size_t nmask = u->mask * 2 + 1;
    kl_keyusage_cell **nb = calloc(nmask + 1, sizeof(*nb));
    if (!nb)
        return; /* longer chains, still correct */
    size_t old = u->mask;
    u->mask = nmask;
    for (size_t i = 0; i <= old; i++) {
        kl_keyusage_cell *c = u->buckets[i];
        while (c) {
            kl_keyusage_cell *next = c->next;
            size_t b = bucket(u, c->index);
            c->next = nb[b];
            nb[b] = c;
            c = next;
        }
    }
    free(u->buckets);
    u->buckets = nb;
}

static kl_keyusage_cell *find(const kl_keyusage *u, const unsigned char index[32])
{
    for (kl_keyusage_cell *c = u->buckets[bucket(u, index)]; c; c = c->next)
        if (memcmp(c->index, index, 32) == 0)
            return c;
    return NULL;
}

kl_keyusage_cell *kl_keyusage_cell_get(kl_keyusage *u, const unsigned char index[32],
                                       int64_t stored_day)
{
    if (!u || !index)
        return NULL;
    pthread_mutex_lock(&u->mu);
    kl_keyusage_cell *c = find(u, index);
    if (!c && (c = calloc(1, sizeof(*c))) != NULL) {
        memcpy(c->index, index, 32);
        atomic_init(&c->day, 0);
        atomic_init(&c->refs, 0);
        size_t b = bucket(u, index);
        c->next = u->buckets[b];
        u->buckets[b] = c;
        u->n++;
        maybe_grow(u);
    }
    if (c) {
        atomic_fetch_add(&c->refs, 1);
        if (stored_day > c->written)
            c->written = stored_day;
        kl_keyusage_touch(c, stored_day);
    }
    pthread_mutex_unlock(&u->mu);
    return c;
}

void kl_keyusage_cell_release(kl_keyusage_cell *c)
{
    if (c)
        atomic_fetch_sub(&c->refs, 1);
}

void kl_keyusage_touch(kl_keyusage_cell *c, int64_t now)
{
    if (!c || now <= 0)
        return;
    int64_t day = now - now % DAY;
    int64_t have = atomic_load_explicit(&c->day, memory_order_relaxed);
    /* Once per key and day a write; every other request only reads a shared line. */
    while (have < day && !atomic_compare_exchange_weak_explicit(
                             &c->day, &have, day, memory_order_relaxed, memory_order_relaxed))
        ;
}

int64_t kl_keyusage_day(const kl_keyusage_cell *c)
{
    return c ? atomic_load_explicit(&((kl_keyusage_cell *)c)->day, memory_order_relaxed) : 0;
}

int64_t kl_keyusage_day_of(kl_keyusage *u, const unsigned char index[32])
{
    if (!u || !index)
        return 0;
    pthread_mutex_lock(&u->mu);
    int64_t d = kl_keyusage_day(find(u, index));
    pthread_mutex_unlock(&u->mu);
    return d;
}

int kl_keyusage_flush(kl_keyusage *u, kl_store *st, size_t *written)
{
    if (written)
        *written = 0;
    if (!u || !st)
        return KL_EINVAL;
    pthread_mutex_lock(&u->mu);
    size_t n = 0, cap = 0;
    kl_store_key_usage *batch = NULL;
    int err = 0;
    for (size_t i = 0; !err && i <= u->mask; i++) {
        for (kl_keyusage_cell *c = u->buckets[i]; c; c = c->next) {
            if (kl_keyusage_day(c) <= c->written)
                continue;
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 64;
                kl_store_key_usage *nb = realloc(batch, ncap * sizeof(*nb));
                if (!nb) {
                    err = KL_ENOMEM;
                    break;
                }
                batch = nb;
                cap = ncap;
            }
            memcpy(batch[n].index, c->index, 32);
            batch[n].day = kl_keyusage_day(c);
            n++;
        }
    }
    /* Under the lock, so a rebuild cannot make a cell meanwhile; batches are small (two
     * keys per account at most) and come once a minute. */
    if (!err && n)
        err = kl_store_record_key_usage(st, batch, n);
    if (!err) {
        size_t k = 0;
        for (size_t i = 0; i <= u->mask; i++) {
            kl_keyusage_cell **pp = &u->buckets[i];
            while (*pp) {
                kl_keyusage_cell *c = *pp;
                if (k < n && memcmp(c->index, batch[k].index, 32) == 0)
                    c->written = batch[k++].day;
                /* Nothing holds it and the store has its day: it can go. */
                if (atomic_load(&c->refs) == 0 && kl_keyusage_day(c) <= c->written) {
                    *pp = c->next;
                    free(c);
                    u->n--;
                    continue;
                }
                pp = &c->next;
            }
        }
        if (written)
            *written = n;
    }
    pthread_mutex_unlock(&u->mu);
    free(batch);
    return err;
}
