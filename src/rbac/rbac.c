/* The compiled RBAC index. Three open-addressing tables:
 *  - scopes: the distinct scopes that hold assignments (usually far fewer than the
 *    assignments), so a check maps each level of its target scope to a small id;
 *  - principals: one 192-byte record per principal: which levels it has assignments at
 *    and, for up to INLINE_PAIRS scopes, the assignments themselves;
 *  - pairs: (principal, scope) -> assignments for principals with more scopes than that.
 * A check therefore costs one probe per level of its scope, whatever the number of
 * assignments. It starts fetching the principal's record before it parses the scope, so
 * by the time it looks, a large (cache-cold) index costs little more than a small one. */
#include "rbac/rbac.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/random.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/util.h"
#include "rbac/ascii.h"
#include "rbac/builtin.h"
#include "rbac/match.h"
#include "rbac/scope.h"
#include "rbac/scope_priv.h"
#include "rbac/index_priv.h"

/* --- memory --- */

static void *arena_alloc(kl_rbac_index *ix, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    chunk *c = ix->arena;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > CHUNK_MIN ? n : CHUNK_MIN;
        c = malloc(CHUNK_HDR + cap);
        if (!c)
            return NULL;
        c->next = ix->arena;
        c->used = 0;
        c->cap = cap;
        ix->arena = c;
    }
    void *p = (char *)c + CHUNK_HDR + c->used;
    c->used += n;
    return p;
}

static char *arena_strndup(kl_rbac_index *ix, const char *s, size_t n)
{
    char *d = arena_alloc(ix, n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static char *arena_strdup(kl_rbac_index *ix, const char *s)
{
    return arena_strndup(ix, s ? s : "", s ? strlen(s) : 0);
}

/* Zeroed, cache-line aligned; tables of 2 MiB or more ask for huge pages, which spare a
 * cold probe its TLB misses. */
static void *table_alloc(size_t n, size_t size)
{
    const size_t huge = (size_t)2 << 20;
    size_t bytes = n * size;
    size_t align = bytes >= huge ? huge : 64;
    bytes = (bytes + align - 1) & ~(align - 1);
    void *p = aligned_alloc(align, bytes);
    if (!p)
        return NULL;
#ifdef MADV_HUGEPAGE
    if (align == huge)
        (void)madvise(p, bytes, MADV_HUGEPAGE); /* advice only */
#endif
    memset(p, 0, bytes);
    return p;
}

/* --- table sizes --- */

/* Power-of-two capacity for n entries at load at most num/den. */
static size_t table_cap_load(size_t n, size_t num, size_t den)
{
    size_t cap = 16;
    while (cap * num < n * den)
        cap <<= 1;
    return cap;
}

static size_t table_cap(size_t n)
{
    return table_cap_load(n, 1, 2);
}

/* --- roles --- */

static const char **copy_list(kl_rbac_index *ix, const char *const *in, size_t n)
{
    const char **out = arena_alloc(ix, (n ? n : 1) * sizeof(*out));
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (!(out[i] = arena_strdup(ix, in[i])))
            return NULL;
    return out;
}

static kl_rbac_role_def *copy_def(kl_rbac_index *ix, const kl_rbac_role_def *in)
{
    kl_rbac_role_def *d = arena_alloc(ix, sizeof(*d));
    if (!d)
        return NULL;
    *d = *in;
    const char **a, **na, **da, **nda, **as;
    if (!(d->id = arena_strdup(ix, in->id)) || !(d->name = arena_strdup(ix, in->name)) ||
        !(d->description = arena_strdup(ix, in->description)) ||
        !(a = copy_list(ix, in->actions, in->n_actions)) ||
        !(na = copy_list(ix, in->not_actions, in->n_not_actions)) ||
        !(da = copy_list(ix, in->data_actions, in->n_data_actions)) ||
        !(nda = copy_list(ix, in->not_data_actions, in->n_not_data_actions)) ||
        !(as = copy_list(ix, in->assignable_scopes, in->n_assignable_scopes)))
        return NULL;
    d->actions = a;
    d->not_actions = na;
    d->data_actions = da;
    d->not_data_actions = nda;
    d->assignable_scopes = as;
    return d;
}

static int role_compile(kl_rbac_index *ix, role *r, const kl_rbac_role_def *def)
{
    int rc;
    r->def = def;
    kl_ascii_lower_copy(r->guid, def->id, KL_UUID_LEN);
    if ((rc = kl_rbac_matcher_new(def->actions, def->n_actions, &r->m[M_ACTIONS])) ||
        (rc = kl_rbac_matcher_new(def->not_actions, def->n_not_actions, &r->m[M_NOT_ACTIONS])) ||
        (rc = kl_rbac_matcher_new(def->data_actions, def->n_data_actions, &r->m[M_DATA])) ||
        (rc = kl_rbac_matcher_new(def->not_data_actions, def->n_not_data_actions,
                                  &r->m[M_NOT_DATA])))
        return rc;
    r->n_assignable = def->n_assignable_scopes;
    r->assignable_lc = arena_alloc(ix, (r->n_assignable ? r->n_assignable : 1) * sizeof(char *));
    if (!r->assignable_lc)
        return KL_ENOMEM;
    for (size_t i = 0; i < r->n_assignable; i++) {
        char buf[KL_MAX_SCOPE + 1];
        uint16_t lv[KL_MAX_SCOPE_DEPTH];
        size_t len, nl;
        const char *s = def->assignable_scopes[i];
        if (!s)
            return KL_EINVAL;
        if ((rc = kl_scope_parse_lower(s, strlen(s), buf, &len, lv, &nl)))
            return rc;
        if (!(r->assignable_lc[i] = arena_strndup(ix, buf, len)))
            return KL_ENOMEM;
    }
    return 0;
}

/* Adds role r to the id table; KL_EEXIST if its GUID is taken. */
static int role_insert(kl_rbac_index *ix, uint32_t r)
{
    uint64_t h = hash_bytes(ix->roles[r].guid, KL_UUID_LEN, ix->seed);
    for (size_t i = h & (ix->rcap - 1);; i = (i + 1) & (ix->rcap - 1)) {
        uint32_t v = ix->rtab[i];
        if (!v) {
            ix->rtab[i] = r + 1;
            return 0;
        }
        if (memcmp(ix->roles[v - 1].guid, ix->roles[r].guid, KL_UUID_LEN) == 0)
            return KL_EEXIST;
    }
}

static int cmp_role_name(const void *a, const void *b)
{
    const role *x = *(const role *const *)a, *y = *(const role *const *)b;
    return strcasecmp(x->def->name, y->def->name);
}

static int build_roles(kl_rbac_index *ix, const kl_rbac_role_def *custom, size_t n, char *err,
                       size_t errlen)
{
    size_t nb;
    const kl_rbac_role_def *b = kl_rbac_builtin_roles(&nb);
    int rc;
    if (n && !custom)
        return kl_err_say(err, errlen, KL_EINVAL, "custom roles missing");
    if (n > UINT32_MAX / 4)
        return kl_err_say(err, errlen, KL_ETOOBIG, "too many roles");
    ix->nroles = nb + n;
    ix->roles = calloc(ix->nroles, sizeof(role));
    ix->rcap = table_cap(ix->nroles);
    ix->rtab = calloc(ix->rcap, sizeof(uint32_t));
    if (!ix->roles || !ix->rtab)
        return KL_ENOMEM;
    for (size_t i = 0; i < ix->nroles; i++) {
        const kl_rbac_role_def *def = i < nb ? &b[i] : &custom[i - nb];
        if (i >= nb) {
            if ((rc = kl_rbac_role_validate(def, err, errlen)))
                return rc;
            if (!(def = copy_def(ix, def)))
                return KL_ENOMEM;
        }
        if ((rc = role_compile(ix, &ix->roles[i], def)))
            return kl_err_say(err, errlen, rc, "cannot compile role %s", def->id);
        if ((rc = role_insert(ix, (uint32_t)i)))
            return kl_err_say(err, errlen, rc, "duplicate role id %s", def->id);
    }
    /* Custom role names are unique too (kl_rbac_role_validate kept them off built-ins'). */
    if (n > 1) {
        const role **byname = malloc(n * sizeof(*byname));
        if (!byname)
            return KL_ENOMEM;
        for (size_t i = 0; i < n; i++)
            byname[i] = &ix->roles[nb + i];
        qsort(byname, n, sizeof(*byname), cmp_role_name);
        rc = 0;
        for (size_t i = 1; i < n && !rc; i++)
            if (strcasecmp(byname[i - 1]->def->name, byname[i]->def->name) == 0)
                rc = kl_err_say(err, errlen, KL_EEXIST, "duplicate role name '%s'",
                                byname[i]->def->name);
        free(byname);
        if (rc)
            return rc;
    }
    return 0;
}

/* --- scopes --- */

static int stab_grow(kl_rbac_index *ix)
{
    size_t cap = ix->scap ? ix->scap * 2 : 64;
    uint32_t *tab = calloc(cap, sizeof(uint32_t));
    if (!tab)
        return KL_ENOMEM;
    for (size_t id = 0; id < ix->nscopes; id++) {
        size_t i = ix->scopes[id].hash & (cap - 1);
        while (tab[i])
            i = (i + 1) & (cap - 1);
        tab[i] = (uint32_t)id + 1;
    }
    free(ix->stab);
    ix->stab = tab;
    ix->scap = cap;
    return 0;
}

/* The id of scope lc[0..len) with hash h, added if new with canon as its spelling. */
static int scope_intern(kl_rbac_index *ix, uint64_t h, const char *lc, const char *canon,
                        size_t len, uint32_t *id)
{
    if (ix->scap && (*id = scope_find(ix, h, lc, len)) != NONE)
        return 0;
    if (2 * (ix->nscopes + 1) > ix->scap && stab_grow(ix))
        return KL_ENOMEM;
    if (ix->nscopes == ix->scopes_cap) {
        size_t cap = ix->scopes_cap ? 2 * ix->scopes_cap : 64;
        sentry *s = realloc(ix->scopes, cap * sizeof(*s));
        if (!s)
            return KL_ENOMEM;
        ix->scopes = s;
        ix->scopes_cap = cap;
    }
    char *copy = arena_strndup(ix, lc, len), *ccopy = arena_strndup(ix, canon, len);
    if (!copy || !ccopy)
        return KL_ENOMEM;
    *id = (uint32_t)ix->nscopes;
    ix->scopes[ix->nscopes++] = (sentry){h, copy, ccopy, (uint32_t)len};
    size_t i = h & (ix->scap - 1);
    while (ix->stab[i])
        i = (i + 1) & (ix->scap - 1);
    ix->stab[i] = *id + 1;
    return 0;
}

/* Gathers the scope texts into one block, in id order, so the few a check compares
 * against sit together in cache. */
static int scopes_pack(kl_rbac_index *ix)
{
    size_t total = 0;
    for (size_t i = 0; i < ix->nscopes; i++)
        total += ix->scopes[i].len + 1;
    char *block = arena_alloc(ix, total ? total : 1);
    if (!block)
        return KL_ENOMEM;
    for (size_t i = 0; i < ix->nscopes; i++) {
        memcpy(block, ix->scopes[i].lc, ix->scopes[i].len + 1);
        ix->scopes[i].lc = block;
        block += ix->scopes[i].len + 1;
    }
    return 0;
}

/* --- assignments --- */

static bool lc_covers(const char *above, size_t alen, const char *below, size_t blen)
{
    if (alen == 1) /* "/" */
        return true;
    return blen >= alen && memcmp(above, below, alen) == 0 && (blen == alen || below[alen] == '/');
}

static bool id_ok(const char *id)
{
    if (!id || !id[0])
        return false;
    size_t n = strnlen(id, KL_MAX_URL + 1);
    if (n > KL_MAX_URL)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!kl_rbac_lc_name[(unsigned char)id[i]])
            return false;
    return true;
}

static int add_assignment(kl_rbac_index *ix, const kl_rbac_assignment *in, uint32_t ord, char *err,
                          size_t errlen)
{
    int rc;
    asg *a = &ix->asgs[ord];
    bld *b = &ix->bld[ord];
    char plc[KL_MAX_PRINCIPAL_ID + 1];
    size_t plen;
    if (!id_ok(in->id))
        return kl_err_say(err, errlen, KL_EINVAL, "assignment %u: invalid id", ord);
    if ((rc = principal_lower(in->principal_id, plc, &plen)))
        return kl_err_say(err, errlen, rc, "assignment %s: invalid principal id", in->id);
    const char *g;
    if (kl_rbac_role_guid(in->role_definition_id, &g))
        return kl_err_say(err, errlen, KL_EINVAL, "assignment %s: invalid role definition id",
                          in->id);
    const role *r = role_find(ix, g);
    if (!r)
        return kl_err_say(err, errlen, KL_ENOTFOUND, "assignment %s: role %.36s is not defined",
                          in->id, g);
    kl_scope sc;
    if (!in->scope)
        return kl_err_say(err, errlen, KL_EINVAL, "assignment %s: invalid scope", in->id);
    if ((rc = kl_scope_parse(in->scope, strlen(in->scope), &sc)))
        return kl_err_say(err, errlen, rc, "assignment %s: invalid scope", in->id);
    char slc[KL_MAX_SCOPE + 1];
    kl_ascii_lower_copy(slc, sc.text, sc.len);
    bool ok = false;
    for (size_t i = 0; i < r->n_assignable && !ok; i++)
        ok = lc_covers(r->assignable_lc[i], strlen(r->assignable_lc[i]), slc, sc.len);
    if (!ok)
        return kl_err_say(err, errlen, KL_ECONFLICT,
                          "assignment %s: scope is outside the assignable scopes of role %s",
                          in->id, r->def->name);
    uint64_t sh[KL_MAX_SCOPE_DEPTH];
    scope_hashes(ix->seed, slc, sc.level_len, sc.nlevels, sh);
    if ((rc = scope_intern(ix, sh[sc.nlevels - 1], slc, sc.text, sc.len, &b->scope_id)))
        return rc;
    const sentry *se = &ix->scopes[b->scope_id];
    a->scope =
        memcmp(se->canon, sc.text, sc.len) == 0 ? se->canon : arena_strndup(ix, sc.text, sc.len);
    if (!a->scope || !(a->id = arena_strdup(ix, in->id)) ||
        !(a->principal = arena_strdup(ix, in->principal_id)) ||
        !(b->principal_lc = arena_strndup(ix, plc, plen)))
        return KL_ENOMEM;
    a->role = r->def;
    b->role = (uint32_t)(r - ix->roles);
    b->plen = (uint32_t)plen;
    b->level = (uint32_t)(sc.nlevels - 1);
    b->ord = ord;
    b->phash = hash_bytes(plc, plen, ix->seed);
    return 0;
}

/* Assignment ids are unique, compared case-insensitively like every ARM id. */
static int check_ids(kl_rbac_index *ix, char *err, size_t errlen)
{
    size_t cap = table_cap(ix->nasgs);
    uint32_t *tab = calloc(cap, sizeof(uint32_t));
    if (!tab)
        return KL_ENOMEM;
    int rc = 0;
    char buf[KL_MAX_URL + 1];
    for (size_t i = 0; i < ix->nasgs && !rc; i++) {
        size_t n = strlen(ix->asgs[i].id);
        kl_ascii_lower_copy(buf, ix->asgs[i].id, n);
        uint64_t h = hash_bytes(buf, n, ix->seed);
        for (size_t s = h & (cap - 1);; s = (s + 1) & (cap - 1)) {
            if (!tab[s]) {
                tab[s] = (uint32_t)i + 1;
                break;
            }
            if (strcasecmp(ix->asgs[tab[s] - 1].id, ix->asgs[i].id) == 0) {
                rc = kl_err_say(err, errlen, KL_EEXIST, "duplicate assignment id %s",
                                ix->asgs[i].id);
                break;
            }
        }
    }
    free(tab);
    return rc;
}

/* --- principals and pairs --- */

static int cmp_principal(const void *x, const void *y)
{
    const bld *a = *(const bld *const *)x, *b = *(const bld *const *)y;
    return strcmp(a->principal_lc, b->principal_lc);
}

/* Orders by pair, then by the caller's order within a pair. */
static int cmp_pair(const void *x, const void *y)
{
    const bld *a = *(const bld *const *)x, *b = *(const bld *const *)y;
    if (a->pidx != b->pidx)
        return a->pidx < b->pidx ? -1 : 1;
    if (a->scope_id != b->scope_id)
        return a->scope_id < b->scope_id ? -1 : 1;
    return (a->ord > b->ord) - (a->ord < b->ord);
}

/* Records principal p (lower case, arena-owned) with no assignments unless present. */
static void principal_record(kl_rbac_index *ix, const char *p)
{
    size_t len = strlen(p);
    uint64_t h = hash_bytes(p, len, ix->seed);
    pslot *ps = principal_slot(ix, h, p, len);
    if (ps->p)
        return;
    ps->p = p;
    ps->hash = h;
    ps->len = (uint16_t)len;
    if (len <= INLINE_ID)
        memcpy(ps->inl, p, len);
}

static int build_principals(kl_rbac_index *ix, bld **sorted)
{
    size_t n = ix->nasgs, distinct = ix->n_extra;
    qsort(sorted, n, sizeof(*sorted), cmp_principal);
    for (size_t i = 0; i < n; i++)
        distinct += i == 0 || strcmp(sorted[i - 1]->principal_lc, sorted[i]->principal_lc) != 0;
    ix->pcap = table_cap_load(distinct, 2, 3); /* big slots: keep the table small */
    if (!(ix->ptab = table_alloc(ix->pcap, sizeof(pslot))))
        return KL_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        bld *a = sorted[i];
        pslot *ps = principal_slot(ix, a->phash, a->principal_lc, a->plen);
        if (!ps->p) {
            ps->p = a->principal_lc;
            ps->hash = a->phash;
            ps->len = (uint16_t)a->plen;
            if (a->plen <= INLINE_ID)
                memcpy(ps->inl, a->principal_lc, a->plen);
        }
        ps->levels |= (uint16_t)(1u << a->level);
        a->pidx = (uint32_t)(ps - ix->ptab);
    }
    /* An overridden principal left without assignments still hides the base's. */
    for (size_t i = 0; i < ix->n_extra; i++)
        principal_record(ix, ix->extra[i]);
    return 0;
}

static void pair_insert(kl_rbac_index *ix, uint32_t pidx, const pentry *e)
{
    size_t i = pair_key(ix->ptab[pidx].hash, ix->scopes[e->scope].hash) & (ix->paircap - 1);
    while (ix->pairs[i].principal)
        i = (i + 1) & (ix->paircap - 1);
    ix->pairs[i].principal = pidx + 1;
    ix->pairs[i].e = *e;
}

/* Runs of equal (principal, scope) in sorted[] are pairs; each principal's pairs go into
 * its record if they fit, else into the pair table. */
static int build_pairs(kl_rbac_index *ix)
{
    size_t n = ix->nasgs;
    int rc;
    bld **sorted = malloc((n ? n : 1) * sizeof(*sorted));
    uint32_t *npairs = NULL;
    ix->refs = malloc((n ? n : 1) * sizeof(ref));
    if (!sorted || !ix->refs) {
        rc = KL_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        sorted[i] = &ix->bld[i];
    if ((rc = build_principals(ix, sorted)))
        goto out;
    qsort(sorted, n, sizeof(*sorted), cmp_pair);
    if (!(npairs = calloc(ix->pcap, sizeof(uint32_t)))) {
        rc = KL_ENOMEM;
        goto out;
    }
    size_t spilled = 0;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || sorted[i - 1]->pidx != sorted[i]->pidx ||
            sorted[i - 1]->scope_id != sorted[i]->scope_id)
            npairs[sorted[i]->pidx]++;
    for (size_t p = 0; p < ix->pcap; p++)
        if (npairs[p] > INLINE_PAIRS)
            spilled += npairs[p];
    ix->paircap = table_cap(spilled);
    if (!(ix->pairs = table_alloc(ix->paircap, sizeof(pair)))) {
        rc = KL_ENOMEM;
        goto out;
    }
    size_t nrefs = 0;
    for (size_t i = 0, j; i < n; i = j) {
        const bld *a = sorted[i];
        for (j = i + 1; j < n && sorted[j]->pidx == a->pidx && sorted[j]->scope_id == a->scope_id;
             j++)
            ;
        pentry e = {.scope = a->scope_id};
        if (j - i == 1) {
            e.a = a->role;
            e.b = a->ord;
        } else {
            e.multi = 1;
            e.a = (uint32_t)nrefs;
            e.b = (uint32_t)(j - i);
            for (size_t k = i; k < j; k++)
                ix->refs[nrefs++] = (ref){sorted[k]->role, sorted[k]->ord};
        }
        pslot *ps = &ix->ptab[a->pidx];
        if (npairs[a->pidx] <= INLINE_PAIRS) {
            ps->pairs[ps->npairs++] = e;
        } else {
            ps->npairs = SPILLED;
            ps->filter |= filter_bit(a->scope_id);
            pair_insert(ix, a->pidx, &e);
        }
    }
    rc = 0;
out:
    free(npairs);
    free(sorted);
    return rc;
}

int kl_rbac_index_build(const kl_rbac_role_def *custom_roles, size_t n_roles,
                        const kl_rbac_assignment *assignments, size_t n_assignments,
                        kl_rbac_index **out, char *err, size_t errlen)
{
    int rc;
    kl_rbac_index *ix = NULL;
    if (err && errlen)
        err[0] = '\0';
    if (!out)
        return KL_EINVAL;
    *out = NULL;
    if (n_assignments && !assignments)
        return kl_err_say(err, errlen, KL_EINVAL, "assignments missing");
    if (n_assignments >= INT32_MAX / 2) /* pair.b holds counts and indexes in 31 bits */
        return kl_err_say(err, errlen, KL_ETOOBIG, "too many assignments");
    if (!(ix = calloc(1, sizeof(*ix))))
        return KL_ENOMEM;
    atomic_init(&ix->nref, 1);
    /* A seed the outside cannot predict; without one the tables still work, only
     * without protection against chosen collisions. */
    if (getrandom(&ix->seed, sizeof(ix->seed), GRND_NONBLOCK) != sizeof(ix->seed))
        ix->seed = 0x6b65796c65737321ULL;
    if ((rc = build_roles(ix, custom_roles, n_roles, err, errlen)))
        goto out;
    ix->nasgs = n_assignments;
    ix->asgs = table_alloc(n_assignments ? n_assignments : 1, sizeof(asg));
    ix->bld = calloc(n_assignments ? n_assignments : 1, sizeof(bld));
    if (!ix->asgs || !ix->bld) {
        rc = KL_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n_assignments; i++)
        if ((rc = add_assignment(ix, &assignments[i], (uint32_t)i, err, errlen)))
            goto out;
    if (!ix->scap && (rc = stab_grow(ix)))
        goto out;
    if ((rc = check_ids(ix, err, errlen)) || (rc = scopes_pack(ix)) || (rc = build_pairs(ix)))
        goto out;
    free(ix->bld);
    ix->bld = NULL;
    *out = ix;
    ix = NULL;
out:
    if (rc == KL_ENOMEM)
        kl_err_say(err, errlen, rc, "out of memory");
    kl_rbac_index_free(ix);
    return rc;
}

void kl_rbac_index_retain(kl_rbac_index *ix)
{
    if (ix)
        atomic_fetch_add_explicit(&ix->nref, 1, memory_order_relaxed);
}

void kl_rbac_index_free(kl_rbac_index *ix)
{
    if (!ix || atomic_fetch_sub_explicit(&ix->nref, 1, memory_order_acq_rel) != 1)
        return;
    if (ix->base) {
        kl_rbac_index_free(ix->base); /* its roles and role table were borrowed */
    } else {
        for (size_t i = 0; ix->roles && i < ix->nroles; i++)
            for (int m = 0; m < M_COUNT; m++)
                kl_rbac_matcher_free(ix->roles[i].m[m]);
        free(ix->roles);
        free(ix->rtab);
    }
    free(ix->extra);
    free(ix->asgs);
    free(ix->bld);
    free(ix->scopes);
    free(ix->stab);
    free(ix->ptab);
    free(ix->pairs);
    free(ix->refs);
    while (ix->arena) {
        chunk *next = ix->arena->next;
        free(ix->arena);
        ix->arena = next;
    }
    free(ix);
}

/* --- derived indexes --- */

/* How many of ix's assignments belong to principal slot ps. */
static size_t principal_assignments(const kl_rbac_index *ix, const pslot *ps)
{
    size_t n = 0;
    if (ps->npairs != SPILLED) {
        for (uint16_t k = 0; k < ps->npairs; k++)
            n += ps->pairs[k].multi ? ps->pairs[k].b : 1;
        return n;
    }
    uint32_t me = (uint32_t)(ps - ix->ptab) + 1;
    for (size_t i = 0; i < ix->paircap; i++)
        if (ix->pairs[i].principal == me)
            n += ix->pairs[i].e.multi ? ix->pairs[i].e.b : 1;
    return n;
}

static bool in_sorted(const char *const *set, size_t n, const char *p)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(set[mid], p);
        if (c == 0)
            return true;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

static int cmp_cstr(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

int kl_rbac_index_derive(const kl_rbac_index *old, const char *const *principals,
                         size_t n_principals, const kl_rbac_assignment *assignments,
                         size_t n_assignments, kl_rbac_index **out, char *err, size_t errlen)
{
    int rc;
    kl_rbac_index *ix = NULL;
    kl_rbac_assignment *all = NULL;
    if (err && errlen)
        err[0] = '\0';
    if (!out)
        return KL_EINVAL;
    *out = NULL;
    if (!old || (n_principals && !principals) || (n_assignments && !assignments))
        return kl_err_say(err, errlen, KL_EINVAL, "derive: missing input");
    /* Retaining changes only the count, which is not part of what an index answers. */
    kl_rbac_index *root = (kl_rbac_index *)(old->base ? old->base : old);
    size_t carried_p = old->base ? old->pcap : 0; /* upper bound on old's overridden */
    if (!(ix = calloc(1, sizeof(*ix))))
        return KL_ENOMEM;
    atomic_init(&ix->nref, 1);
    ix->seed = root->seed;
    ix->roles = root->roles;
    ix->nroles = root->nroles;
    ix->rtab = root->rtab;
    ix->rcap = root->rcap;
    ix->base = root;
    kl_rbac_index_retain(root);
    /* The principals this index overrides: the new ones, lower-cased and sorted, then
     * those old already overrode. */
    ix->extra = malloc((n_principals + carried_p + 1) * sizeof(char *));
    if (!ix->extra) {
        rc = KL_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n_principals; i++) {
        char plc[KL_MAX_PRINCIPAL_ID + 1];
        size_t plen;
        if ((rc = principal_lower(principals[i], plc, &plen))) {
            kl_err_say(err, errlen, rc, "derive: invalid principal id");
            goto out;
        }
        if (!(ix->extra[ix->n_extra++] = arena_strndup(ix, plc, plen))) {
            rc = KL_ENOMEM;
            goto out;
        }
    }
    qsort(ix->extra, ix->n_extra, sizeof(char *), cmp_cstr);
    const size_t n_new = ix->n_extra;
    for (size_t i = 0; i < carried_p; i++) {
        const char *p = old->ptab[i].p;
        if (p && !in_sorted(ix->extra, n_new, p) &&
            !(ix->extra[ix->n_extra++] = arena_strdup(ix, p))) {
            rc = KL_ENOMEM;
            goto out;
        }
    }
    /* Old's own assignments of principals not overridden again stay; the rest are
     * replaced by the caller's. */
    size_t n_old = old->base ? old->nasgs : 0;
    if (!(all = malloc((n_old + n_assignments + 1) * sizeof(*all)))) {
        rc = KL_ENOMEM;
        goto out;
    }
    size_t n = 0;
    for (size_t i = 0; i < n_old; i++) {
        const asg *a = &old->asgs[i];
        char plc[KL_MAX_PRINCIPAL_ID + 1];
        size_t plen;
        if (principal_lower(a->principal, plc, &plen) == 0 && in_sorted(ix->extra, n_new, plc))
            continue;
        all[n++] = (kl_rbac_assignment){.id = a->id,
                                        .principal_id = a->principal,
                                        .role_definition_id = a->role->id,
                                        .scope = a->scope};
    }
    for (size_t i = 0; i < n_assignments; i++) {
        char plc[KL_MAX_PRINCIPAL_ID + 1];
        size_t plen;
        if (principal_lower(assignments[i].principal_id, plc, &plen) ||
            !in_sorted(ix->extra, n_new, plc)) {
            rc = kl_err_say(err, errlen, KL_EINVAL,
                            "derive: assignment %s is not of a principal being replaced",
                            assignments[i].id ? assignments[i].id : "(none)");
            goto out;
        }
        all[n++] = assignments[i];
    }
    if (ix->n_extra > KL_RBAC_MAX_OVERLAY_PRINCIPALS || n > KL_RBAC_MAX_OVERLAY_ASSIGNMENTS) {
        rc = kl_err_say(err, errlen, KL_ETOOBIG, "derive: overlay full; build in full");
        goto out;
    }
    ix->nasgs = n;
    ix->asgs = table_alloc(n ? n : 1, sizeof(asg));
    ix->bld = calloc(n ? n : 1, sizeof(bld));
    if (!ix->asgs || !ix->bld) {
        rc = KL_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if ((rc = add_assignment(ix, &all[i], (uint32_t)i, err, errlen)))
            goto out;
    if (!ix->scap && (rc = stab_grow(ix)))
        goto out;
    if ((rc = check_ids(ix, err, errlen)) || (rc = scopes_pack(ix)) || (rc = build_pairs(ix)))
        goto out;
    for (size_t i = 0; i < ix->n_extra; i++) {
        const char *p = ix->extra[i];
        size_t len = strlen(p);
        const pslot *ps = principal_slot(root, hash_bytes(p, len, root->seed), p, len);
        if (ps->p)
            ix->base_hidden += principal_assignments(root, ps);
    }
    free(ix->bld);
    ix->bld = NULL;
    free(ix->extra);
    ix->extra = NULL;
    *out = ix;
    ix = NULL;
out:
    if (rc == KL_ENOMEM)
        kl_err_say(err, errlen, rc, "out of memory");
    free(all);
    kl_rbac_index_free(ix);
    return rc;
}

size_t kl_rbac_index_overlay(const kl_rbac_index *ix, size_t *n_assignments)
{
    size_t np = 0;
    if (n_assignments)
        *n_assignments = ix && ix->base ? ix->nasgs : 0;
    if (!ix || !ix->base)
        return 0;
    for (size_t i = 0; i < ix->pcap; i++)
        np += ix->ptab[i].p != NULL;
    return np;
}
