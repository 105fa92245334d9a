/* The snapshot holder (see snapshot.h): the current snapshot and the fences that keep
 * readers off scopes whose changes are saved but not yet built. The pointer is guarded
 * by a mutex held for a handful of instructions, so acquire is race-free without hazard
 * pointers. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "policy/snapshot.h"
#include "policy/snapshot_builder.h"

struct kl_fence {
    atomic_long refs;
    bool all;      /* everything is fenced */
    size_t n;      /* scopes[0..n) */
    char **scopes; /* lower-case, without a trailing '/' */
};

struct kl_snapshot_holder {
    pthread_mutex_t mu;
    kl_snapshot *cur;         /* guarded by mu */
    atomic_uint_fast64_t gen; /* generation of cur; 0 before the first publish */
    kl_fence *fence;          /* guarded by mu; NULL when nothing is fenced */
    /* Made in advance so that fencing everything never needs an allocation; the holder
     * keeps one reference to it for its whole life. */
    kl_fence *fence_all;
    atomic_uint_fast64_t fence_gen; /* bumped whenever fence changes */
};

kl_snapshot_holder *kl_snapshot_holder_new(void)
{
    kl_snapshot_holder *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    if (pthread_mutex_init(&h->mu, NULL) != 0) {
        free(h);
        return NULL;
    }
    atomic_init(&h->gen, 0);
    atomic_init(&h->fence_gen, 0);
    h->fence_all = calloc(1, sizeof(*h->fence_all));
    if (!h->fence_all) {
        pthread_mutex_destroy(&h->mu);
        free(h);
        return NULL;
    }
    atomic_init(&h->fence_all->refs, 1);
    h->fence_all->all = true;
    return h;
}

void kl_snapshot_holder_free(kl_snapshot_holder *h)
{
    if (!h)
        return;
    kl_snapshot_release(h->cur);
    kl_snapshot_fence_release(h->fence);
    kl_snapshot_fence_release(h->fence_all);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

void kl_snapshot_publish(kl_snapshot_holder *h, kl_snapshot *s)
{
    if (!h || !s)
        return;
    pthread_mutex_lock(&h->mu);
    kl_snapshot *old = h->cur;
    uint64_t g = atomic_load_explicit(&h->gen, memory_order_relaxed) + 1;
    kl_snapshot_set_generation(s, g); /* not yet visible to any reader */
    h->cur = s;
    atomic_store_explicit(&h->gen, g, memory_order_release);
    /* s was built after every saved change, fenced ones included: the fences go with
     * the same lock, so no reader pairs the old snapshot with no fence. */
    kl_fence *old_fence = h->fence;
    h->fence = NULL;
    if (old_fence)
        atomic_fetch_add_explicit(&h->fence_gen, 1, memory_order_release);
    pthread_mutex_unlock(&h->mu);
    /* Readers holding old keep it alive; the holder's own reference goes now. */
    kl_snapshot_release(old);
    kl_snapshot_fence_release(old_fence);
}

/* ---------------------------------------------------------------- fences */

void kl_snapshot_fence_release(kl_fence *f)
{
    if (!f || atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < f->n; i++)
        free(f->scopes[i]);
    free(f->scopes);
    free(f);
}

/* The scope as stored in a fence: lower-case, no trailing '/' ("" for the root). */
static char *fence_scope(const char *scope)
{
    size_t n = strnlen(scope, KL_MAX_SCOPE + 1);
    while (n > 0 && scope[n - 1] == '/')
        n--;
    char *c = malloc(n + 1);
    if (!c)
        return NULL;
    kl_ascii_lower_copy(c, scope, n);
    return c;
}

/* A new set: old's scopes (if any) plus scope. NULL when out of memory. */
static kl_fence *fence_with(const kl_fence *old, const char *scope)
{
    size_t n = old ? old->n : 0;
    kl_fence *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    atomic_init(&f->refs, 1);
    f->scopes = calloc(n + 1, sizeof(char *));
    bool oom = !f->scopes;
    for (size_t i = 0; !oom && i < n; i++)
        oom = !(f->scopes[f->n++] = strdup(old->scopes[i]));
    if (!oom)
        oom = !(f->scopes[f->n++] = fence_scope(scope));
    if (oom) {
        kl_snapshot_fence_release(f);
        return NULL;
    }
    return f;
}

void kl_snapshot_fence(kl_snapshot_holder *h, const char *scope)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->mu);
    kl_fence *old = h->fence;
    kl_fence *f = NULL;
    if (old && old->all)
        f = NULL; /* already everything */
    else if (!scope || strnlen(scope, KL_MAX_SCOPE + 1) > KL_MAX_SCOPE ||
             (old && old->n >= KL_MAX_FENCED_SCOPES) || !(f = fence_with(old, scope))) {
        /* Unrepresentable, too many to check per request, or no memory: all of it. */
        f = h->fence_all;
        atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    }
    if (f) {
        h->fence = f;
        atomic_fetch_add_explicit(&h->fence_gen, 1, memory_order_release);
    }
    pthread_mutex_unlock(&h->mu);
    if (f)
        kl_snapshot_fence_release(old);
}

bool kl_snapshot_fenced(kl_snapshot_holder *h)
{
    if (!h)
        return false;
    pthread_mutex_lock(&h->mu);
    bool fenced = h->fence != NULL;
    pthread_mutex_unlock(&h->mu);
    return fenced;
}

kl_snapshot *kl_snapshot_acquire_fenced(kl_snapshot_holder *h, kl_fence **fence,
                                        uint64_t *fence_gen)
{
    *fence = NULL;
    *fence_gen = 0;
    if (!h)
        return NULL;
    pthread_mutex_lock(&h->mu);
    kl_snapshot *s = h->cur;
    kl_snapshot_retain(s);
    if (h->fence) {
        *fence = h->fence;
        atomic_fetch_add_explicit(&h->fence->refs, 1, memory_order_relaxed);
    }
    *fence_gen = atomic_load_explicit(&h->fence_gen, memory_order_relaxed);
    pthread_mutex_unlock(&h->mu);
    return s;
}

uint64_t kl_snapshot_fence_generation(const kl_snapshot_holder *h)
{
    return h ? atomic_load_explicit(&((kl_snapshot_holder *)h)->fence_gen, memory_order_acquire)
             : 0;
}

bool kl_snapshot_fence_covers(const kl_fence *f, const char *scope)
{
    if (!f)
        return false;
    if (f->all)
        return true;
    size_t sn = scope ? strlen(scope) : 0;
    while (sn > 0 && scope[sn - 1] == '/')
        sn--;
    for (size_t i = 0; i < f->n; i++) {
        const char *g = f->scopes[i];
        size_t gn = strlen(g);
        size_t m = gn < sn ? gn : sn;
        /* Overlap: the shorter is a prefix of the longer, ending at a segment. */
        if (!kl_str_ieqn(g, m, scope, m))
            continue;
        if (gn == sn || (gn < sn && scope[gn] == '/') || (sn < gn && g[sn] == '/'))
            return true;
    }
    return false;
}

kl_snapshot *kl_snapshot_acquire(kl_snapshot_holder *h)
{
    if (!h)
        return NULL;
    pthread_mutex_lock(&h->mu);
    kl_snapshot *s = h->cur;
    kl_snapshot_retain(s);
    pthread_mutex_unlock(&h->mu);
    return s;
}

uint64_t kl_snapshot_holder_generation(const kl_snapshot_holder *h)
{
    return h ? atomic_load_explicit(&((kl_snapshot_holder *)h)->gen, memory_order_acquire) : 0;
}
