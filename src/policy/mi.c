/* The managed identities of a snapshot (see mi.h). Everything is resolved at finish:
 * each compute's system-assigned identity and its attached user-assigned identities
 * become pointers into the set's own identity array, which never moves afterwards. */
#include "policy/mi.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/util.h"
#include "policy/tables.h"

typedef struct staged_attach {
    char *host_lower;
    char *object_id; /* lower case */
} staged_attach;

struct kl_mi_builder {
    kl_mi *mis; /* owned strings */
    size_t n_mis, cap_mis;
    kl_compute *computes; /* owned id and name; identities resolved at finish */
    size_t n_computes, cap_computes;
    staged_attach *att;
    size_t n_att, cap_att;
};

struct kl_mi_set {
    kl_mi *mis; /* sorted by object id */
    size_t n_mis;
    kl_compute *computes;
    size_t n_computes;
    const kl_mi **user_ptrs; /* every compute's user array lies in here */
    uint32_t *compute_tab;   /* index + 1, 0 = empty; by kind and lower-case name */
    size_t compute_mask;
    uint32_t *client_tab; /* by lower-case client id */
    size_t client_mask;
};

/* ---------------------------------------------------------------- helpers */

static void free_mi(kl_mi *m)
{
    free((char *)m->object_id);
    free((char *)m->client_id);
    free((char *)m->resource_id);
}

static void free_compute(kl_compute *c)
{
    free((char *)c->id);
    free((char *)c->name);
}

/* ---------------------------------------------------------------- builder */

kl_mi_builder *kl_mi_builder_new(void)
{
    return calloc(1, sizeof(kl_mi_builder));
}

static void builder_clear(kl_mi_builder *b)
{
    for (size_t i = 0; i < b->n_mis; i++)
        free_mi(&b->mis[i]);
    for (size_t i = 0; i < b->n_computes; i++)
        free_compute(&b->computes[i]);
    for (size_t i = 0; i < b->n_att; i++) {
        free(b->att[i].host_lower);
        free(b->att[i].object_id);
    }
    free(b->mis);
    free(b->computes);
    free(b->att);
    memset(b, 0, sizeof(*b));
}

void kl_mi_builder_free(kl_mi_builder *b)
{
    if (!b)
        return;
    builder_clear(b);
    free(b);
}

static bool ok_str(const char *s, size_t max)
{
    return s && *s && strnlen(s, max + 1) <= max;
}

int kl_mi_builder_identity(kl_mi_builder *b, const char *object_id, const char *client_id,
                           const char *resource_id, bool user_assigned)
{
    if (!b || !ok_str(object_id, KL_MAX_PRINCIPAL_ID) || !ok_str(client_id, KL_MAX_PRINCIPAL_ID) ||
        !ok_str(resource_id, KL_MAX_SCOPE))
        return KL_EINVAL;
    int err = kl_tables_grow((void **)&b->mis, &b->cap_mis, b->n_mis, sizeof(kl_mi));
    if (err)
        return err;
    kl_mi m = {.object_id = kl_ascii_lower_dup(object_id),
               .client_id = kl_ascii_lower_dup(client_id),
               .resource_id = strdup(resource_id),
               .user_assigned = user_assigned};
    if (!m.object_id || !m.client_id || !m.resource_id) {
        free_mi(&m);
        return KL_ENOMEM;
    }
    b->mis[b->n_mis++] = m;
    return 0;
}

int kl_mi_builder_compute(kl_mi_builder *b, kl_compute_kind kind, const char *id, const char *name)
{
    if (!b || (kind != KL_COMPUTE_SITE && kind != KL_COMPUTE_VM) || !ok_str(id, KL_MAX_SCOPE) ||
        !ok_str(name, KL_MAX_NAME))
        return KL_EINVAL;
    int err =
        kl_tables_grow((void **)&b->computes, &b->cap_computes, b->n_computes, sizeof(kl_compute));
    if (err)
        return err;
    kl_compute c = {.kind = kind, .id = strdup(id), .name = strdup(name)};
    if (!c.id || !c.name) {
        free_compute(&c);
        return KL_ENOMEM;
    }
    b->computes[b->n_computes++] = c;
    return 0;
}

int kl_mi_builder_attach(kl_mi_builder *b, const char *host_id, const char *object_id)
{
    if (!b || !ok_str(host_id, KL_MAX_SCOPE) || !ok_str(object_id, KL_MAX_PRINCIPAL_ID))
        return KL_EINVAL;
    int err = kl_tables_grow((void **)&b->att, &b->cap_att, b->n_att, sizeof(staged_attach));
    if (err)
        return err;
    staged_attach a = {.host_lower = kl_ascii_lower_dup(host_id),
                       .object_id = kl_ascii_lower_dup(object_id)};
    if (!a.host_lower || !a.object_id) {
        free(a.host_lower);
        free(a.object_id);
        return KL_ENOMEM;
    }
    b->att[b->n_att++] = a;
    return 0;
}

/* ---------------------------------------------------------------- finish */

static int cmp_mi_oid(const void *x, const void *y)
{
    return strcmp(((const kl_mi *)x)->object_id, ((const kl_mi *)y)->object_id);
}

static int cmp_att(const void *x, const void *y)
{
    const staged_attach *a = x, *b = y;
    int c = strcmp(a->host_lower, b->host_lower);
    return c ? c : strcmp(a->object_id, b->object_id);
}

static int cmp_mi_ptr_rid(const void *x, const void *y)
{
    return kl_ascii_icmp((*(const kl_mi *const *)x)->resource_id,
                         (*(const kl_mi *const *)y)->resource_id);
}

static const kl_mi *find_by_oid(const kl_mi_set *m, const char *oid)
{
    kl_mi key = {.object_id = oid};
    return bsearch(&key, m->mis, m->n_mis, sizeof(kl_mi), cmp_mi_oid);
}

static uint64_t compute_hash(kl_compute_kind kind, const char *name, size_t n)
{
    return kl_fnv_lower(name, n, KL_FNV_BASIS ^ ((uint64_t)kind * 0x9e3779b97f4a7c15ULL));
}

const kl_compute *kl_mi_set_compute(const kl_mi_set *m, kl_compute_kind kind, const char *name)
{
    if (!m || !name || !m->compute_tab)
        return NULL;
    size_t len = strnlen(name, KL_MAX_NAME + 1);
    if (len == 0 || len > KL_MAX_NAME)
        return NULL;
    for (size_t i = compute_hash(kind, name, len) & m->compute_mask;;
         i = (i + 1) & m->compute_mask) {
        uint32_t v = m->compute_tab[i];
        if (v == 0)
            return NULL;
        const kl_compute *c = &m->computes[v - 1];
        if (c->kind == kind && kl_str_ieqn(c->name, strlen(c->name), name, len))
            return c;
    }
}

const kl_mi *kl_mi_set_by_client_id(const kl_mi_set *m, const char *client_id)
{
    if (!m || !client_id || !m->client_tab)
        return NULL;
    size_t len = strnlen(client_id, KL_MAX_PRINCIPAL_ID + 1);
    if (len == 0 || len > KL_MAX_PRINCIPAL_ID)
        return NULL;
    for (size_t i = kl_fnv_lower(client_id, len, KL_FNV_BASIS) & m->client_mask;;
         i = (i + 1) & m->client_mask) {
        uint32_t v = m->client_tab[i];
        if (v == 0)
            return NULL;
        const kl_mi *mi = &m->mis[v - 1];
        if (kl_str_ieqn(mi->client_id, strlen(mi->client_id), client_id, len))
            return mi;
    }
}

static int index_identities(kl_mi_set *m)
{
    if (m->n_mis > 1)
        qsort(m->mis, m->n_mis, sizeof(kl_mi), cmp_mi_oid);
    for (size_t i = 1; i < m->n_mis; i++)
        if (strcmp(m->mis[i - 1].object_id, m->mis[i].object_id) == 0)
            return KL_EEXIST;
    int err = kl_tables_new(m->n_mis, &m->client_tab, &m->client_mask);
    for (size_t i = 0; !err && i < m->n_mis; i++) {
        const char *cid = m->mis[i].client_id;
        if (kl_mi_set_by_client_id(m, cid))
            return KL_EEXIST;
        size_t h = kl_fnv_lower(cid, strlen(cid), KL_FNV_BASIS) & m->client_mask;
        while (m->client_tab[h] != 0)
            h = (h + 1) & m->client_mask;
        m->client_tab[h] = (uint32_t)(i + 1);
    }
    return err;
}

/* The first attachment of host (lower case) in the sorted array, or n. */
static size_t first_att(const staged_attach *att, size_t n, const char *host)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(att[mid].host_lower, host) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Resolves each compute's identities. att is sorted by host. */
static int resolve_computes(kl_mi_set *m, const staged_attach *att, size_t n_att)
{
    if (n_att > 0 && !(m->user_ptrs = calloc(n_att, sizeof(kl_mi *))))
        return KL_ENOMEM;
    /* The system-assigned identities by lower-case resource id (their host's id). */
    const kl_mi **sys = calloc(m->n_mis ? m->n_mis : 1, sizeof(kl_mi *));
    if (!sys)
        return KL_ENOMEM;
    size_t n_sys = 0;
    for (size_t i = 0; i < m->n_mis; i++)
        if (!m->mis[i].user_assigned)
            sys[n_sys++] = &m->mis[i];
    if (n_sys > 1)
        qsort(sys, n_sys, sizeof(kl_mi *), cmp_mi_ptr_rid);
    size_t used = 0;
    int err = 0;
    for (size_t c = 0; !err && c < m->n_computes; c++) {
        kl_compute *cp = &m->computes[c];
        kl_mi key = {.resource_id = cp->id};
        const kl_mi *kp = &key;
        const kl_mi **hit = bsearch(&kp, sys, n_sys, sizeof(kl_mi *), cmp_mi_ptr_rid);
        cp->system = hit ? *hit : NULL;
        char *lid = kl_ascii_lower_dup(cp->id);
        if (!lid) {
            err = KL_ENOMEM;
            break;
        }
        const kl_mi **first = m->user_ptrs ? &m->user_ptrs[used] : NULL;
        size_t k = 0;
        for (size_t a = first_att(att, n_att, lid);
             a < n_att && strcmp(att[a].host_lower, lid) == 0; a++) {
            const kl_mi *mi = find_by_oid(m, att[a].object_id);
            if (mi && mi->user_assigned)
                first[k++] = mi;
        }
        free(lid);
        if (k > 1)
            qsort(first, k, sizeof(kl_mi *), cmp_mi_ptr_rid);
        cp->user = k ? (const kl_mi *const *)first : NULL;
        cp->n_user = k;
        used += k;
    }
    free(sys);
    return err;
}

static int index_computes(kl_mi_set *m)
{
    int err = kl_tables_new(m->n_computes, &m->compute_tab, &m->compute_mask);
    for (size_t i = 0; !err && i < m->n_computes; i++) {
        const kl_compute *c = &m->computes[i];
        if (kl_mi_set_compute(m, c->kind, c->name))
            return KL_EEXIST;
        size_t h = compute_hash(c->kind, c->name, strlen(c->name)) & m->compute_mask;
        while (m->compute_tab[h] != 0)
            h = (h + 1) & m->compute_mask;
        m->compute_tab[h] = (uint32_t)(i + 1);
    }
    return err;
}

int kl_mi_builder_finish(kl_mi_builder *b, kl_mi_set **out)
{
    if (!b || !out)
        return KL_EINVAL;
    *out = NULL;
    kl_mi_set *m = calloc(1, sizeof(*m));
    if (!m) {
        builder_clear(b);
        return KL_ENOMEM;
    }
    /* The arrays move as a whole, so pointers into them stay put from here on. */
    m->mis = b->mis;
    m->n_mis = b->n_mis;
    m->computes = b->computes;
    m->n_computes = b->n_computes;
    b->mis = NULL;
    b->computes = NULL;
    b->n_mis = b->cap_mis = b->n_computes = b->cap_computes = 0;
    if (b->n_att > 1)
        qsort(b->att, b->n_att, sizeof(staged_attach), cmp_att);
    int err = index_identities(m);
    if (!err)
        err = index_computes(m);
    if (!err)
        err = resolve_computes(m, b->att, b->n_att);
    builder_clear(b);
    if (err) {
        kl_mi_set_free(m);
        return err;
    }
    *out = m;
    return 0;
}

void kl_mi_set_free(kl_mi_set *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_mis; i++)
        free_mi(&m->mis[i]);
    for (size_t i = 0; i < m->n_computes; i++)
        free_compute(&m->computes[i]);
    free(m->mis);
    free(m->computes);
    free(m->user_ptrs);
    free(m->compute_tab);
    free(m->client_tab);
    free(m);
}
