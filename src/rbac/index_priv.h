/* The compiled RBAC index's layout and the lookups that both its build (rbac.c) and
 * its checks (check.c) use. Private to src/rbac: the lookups are static inline so the
 * check path compiles exactly as it did when both lived in one file. */
#ifndef KL_RBAC_INDEX_PRIV_H
#define KL_RBAC_INDEX_PRIV_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/util.h"
#include "rbac/ascii.h"
#include "rbac/match.h"
#include "rbac/rbac.h"

enum { M_ACTIONS, M_NOT_ACTIONS, M_DATA, M_NOT_DATA, M_COUNT };

#define NONE UINT32_MAX

/* Bump allocator for the index's strings and copies: freed all at once. */
typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
} chunk;
#define CHUNK_HDR ((sizeof(chunk) + 15) & ~(size_t)15)
#define CHUNK_MIN (64 * 1024)

typedef struct role {
    const kl_rbac_role_def *def; /* static built-in, or the index's own copy */
    kl_rbac_matcher *m[M_COUNT];
    char guid[KL_UUID_LEN + 1]; /* lower case */
    const char **assignable_lc; /* canonical, lower case */
    size_t n_assignable;
} role;

/* An assignment as a decision's grant points at it; a check never reads it. */
typedef struct asg {
    const char *id;
    const char *principal; /* as given */
    const char *scope;     /* canonical */
    const kl_rbac_role_def *role;
} asg;

/* What the build needs besides, freed when it is done. */
typedef struct bld {
    const char *principal_lc;
    uint32_t plen;
    uint32_t role;
    uint32_t scope_id;
    uint32_t level; /* index of the scope's own level (0 = "/") */
    uint32_t pidx;  /* principal slot */
    uint32_t ord;   /* position in the caller's array */
    uint64_t phash;
} bld;

typedef struct sentry {
    uint64_t hash;     /* the chained level hash of the full scope (see scope_hashes) */
    const char *lc;    /* canonical, lower case */
    const char *canon; /* canonical as first seen, shared by assignments spelling it so */
    uint32_t len;
} sentry;

#define INLINE_ID 36    /* a GUID */
#define INLINE_PAIRS 10 /* scopes whose assignments live in the principal's record */
#define SPILLED 0xffff  /* pslot.npairs: the principal's pairs are in the pair table */

/* The assignments of one principal at one scope. multi == 0: a is the role and b the
 * assignment of its only assignment; else a is the first of b entries in refs. */
typedef struct pentry {
    uint32_t scope;
    uint32_t a;
    uint32_t b : 31;
    uint32_t multi : 1;
} pentry;

/* A principal: three cache lines, the first with its identity. */
typedef struct pslot {
    uint64_t hash;
    const char *p; /* canonical lower-case id; NULL marks an empty slot */
    uint16_t len;
    uint16_t levels; /* bit i: it has assignments at scope level i */
    uint16_t npairs; /* entries in pairs[], or SPILLED */
    uint16_t pad;
    char inl[INLINE_ID]; /* the id again when it fits, to compare without another fetch */
    pentry pairs[INLINE_PAIRS];
    uint64_t filter; /* SPILLED: bit (scope id % 64) set for each scope it has pairs at */
} pslot;

/* A pair of a principal with more than INLINE_PAIRS scopes. */
typedef struct pair {
    uint32_t principal; /* slot index + 1; 0 marks an empty slot */
    pentry e;
} pair;

typedef struct ref {
    uint32_t role, asg;
} ref;

_Static_assert(sizeof(pentry) == 12, "pentry packs into 12 bytes");
_Static_assert(sizeof(pslot) == 192, "a principal record is three cache lines");
_Static_assert(sizeof(pair) == 16, "four pairs per cache line");
_Static_assert(KL_MAX_SCOPE_DEPTH <= 16, "levels are a 16-bit mask");
_Static_assert(KL_MAX_PRINCIPAL_ID <= UINT16_MAX, "principal lengths are 16-bit");

struct kl_rbac_index {
    atomic_long nref;
    /* A derived index (kl_rbac_index_derive): base holds everything but the overridden
     * principals, whose assignments (possibly none) are in this index's own tables;
     * roles, rtab and seed are base's (borrowed). NULL for a full build. */
    kl_rbac_index *base;
    size_t base_hidden; /* base's assignments that belong to overridden principals */
    const char **extra; /* during the build: principals to record even without assignments */
    size_t n_extra;
    uint64_t seed;
    chunk *arena;
    role *roles;
    size_t nroles;
    uint32_t *rtab; /* role + 1 by guid hash */
    size_t rcap;
    asg *asgs;
    size_t nasgs;
    bld *bld;       /* during the build only */
    sentry *scopes; /* distinct assignment scopes */
    size_t nscopes, scopes_cap;
    uint32_t *stab; /* scope id + 1 by hash */
    size_t scap;
    pslot *ptab;
    size_t pcap;
    pair *pairs;
    size_t paircap;
    ref *refs;
};

/* --- hashing: not cryptographic; seeded per index so names cannot be chosen to
 * collide --- */

static inline uint64_t mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static inline uint64_t hash_bytes(const char *p, size_t n, uint64_t h)
{
    const uint64_t k = 0x9e3779b97f4a7c15ULL;
    while (n >= 8) { /* each step is a bijection of the state; mix() spreads at the end */
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * k;
        p += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, p, n);
    h = (h ^ w ^ ((uint64_t)n << 59)) * k;
    return mix(h);
}

/* h[i] identifies lc[0..lv[i]); each level's hash continues the previous one, so a scope
 * hashes the same as the matching level of any scope below it. */
static inline void scope_hashes(uint64_t seed, const char *lc, const uint16_t *lv, size_t nl,
                                uint64_t *h)
{
    uint64_t acc = seed;
    size_t prev = 0;
    for (size_t i = 0; i < nl; i++) {
        acc = hash_bytes(lc + prev, lv[i] - prev, acc);
        h[i] = acc;
        prev = lv[i];
    }
}

/* From the principal's and the scope's hashes rather than their slots, so a check can
 * start fetching pair slots before it has looked either up. */
static inline uint64_t pair_key(uint64_t phash, uint64_t shash)
{
    return mix(phash ^ (shash * 0xff51afd7ed558ccdULL));
}

static inline uint64_t filter_bit(uint32_t sid)
{
    return 1ull << (sid & 63);
}

/* A principal id: 1..KL_MAX_PRINCIPAL_ID printable bytes without spaces or '*',
 * lower-cased. */
static inline int principal_lower(const char *p, char *out, size_t *len)
{
    return kl_rbac_lc_name_copy(p, KL_MAX_PRINCIPAL_ID, out, len);
}

static inline const role *role_find(const kl_rbac_index *ix, const char *guid36)
{
    char g[KL_UUID_LEN + 1];
    kl_ascii_lower_copy(g, guid36, KL_UUID_LEN);
    uint64_t h = hash_bytes(g, KL_UUID_LEN, ix->seed);
    for (size_t i = h & (ix->rcap - 1);; i = (i + 1) & (ix->rcap - 1)) {
        uint32_t v = ix->rtab[i];
        if (!v)
            return NULL;
        if (memcmp(ix->roles[v - 1].guid, g, KL_UUID_LEN) == 0)
            return &ix->roles[v - 1];
    }
}

static inline uint32_t scope_find(const kl_rbac_index *ix, uint64_t h, const char *lc, size_t len)
{
    for (size_t i = h & (ix->scap - 1);; i = (i + 1) & (ix->scap - 1)) {
        uint32_t v = ix->stab[i];
        if (!v)
            return NONE;
        const sentry *e = &ix->scopes[v - 1];
        if (e->hash == h && e->len == len && memcmp(e->lc, lc, len) == 0)
            return v - 1;
    }
}

static inline bool principal_eq(const pslot *s, uint64_t h, const char *p, size_t len)
{
    return s->hash == h && s->len == len && memcmp(len <= INLINE_ID ? s->inl : s->p, p, len) == 0;
}

/* The slot of principal p, or the empty slot where it would go. */
static inline pslot *principal_slot(const kl_rbac_index *ix, uint64_t h, const char *p, size_t len)
{
    for (size_t i = h & (ix->pcap - 1);; i = (i + 1) & (ix->pcap - 1)) {
        pslot *s = &ix->ptab[i];
        if (!s->p || principal_eq(s, h, p, len))
            return s;
    }
}

#endif
