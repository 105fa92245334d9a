/* The immutable snapshot (see snapshot.h); its holder is in snapshot_holder.c. Lookup
 * tables are open-addressing hash tables built once, at finish, and only read
 * afterwards; a snapshot is freed when its last reference goes. */
#include "policy/snapshot.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/util.h"
#include "policy/idheaders.h"
#include "policy/mi.h"
#include "policy/groups.h"
#include "policy/snapshot_builder.h"
#include "policy/sts.h"
#include "policy/tables.h"

typedef struct acct_rec {
    kl_account pub;   /* first: a kl_account pointer from this snapshot maps back to its record */
    size_t dep_first; /* its deployments are dep_list[dep_first .. dep_first + dep_count) */
    size_t dep_count;
} acct_rec;

typedef struct key_rec {
    unsigned char index[32];
    uint32_t acct;
    int slot;
} key_rec;

struct kl_snapshot {
    atomic_long refs;
    uint64_t generation; /* set by publish before the snapshot becomes visible */

    acct_rec *accts;
    size_t n_accts;
    uint32_t *acct_tab; /* index + 1, 0 = empty; size acct_mask + 1 */
    size_t acct_mask;

    kl_deployment *deps;            /* grouped by account, each group in name order */
    const kl_deployment **dep_list; /* &deps[i], what kl_snapshot_deployments hands out */
    size_t n_deps;
    uint32_t *dep_tab;
    size_t dep_mask;

    key_rec *keys;
    size_t n_keys;
    uint32_t *key_tab;
    size_t key_mask;

    kl_principal *principals;
    size_t n_principals;
    uint32_t *principal_tab; /* by object id */
    uint32_t *app_tab;       /* by app id (principals that have one) */
    size_t principal_mask;   /* both tables have this size */
    const char **group_ids;  /* what kl_principal.groups point into; NULL when none */

    kl_rbac_index *rbac; /* never NULL once finished */
    /* A derived snapshot (kl_snapshot_derive) borrows every table above but rbac, and
     * every string, from owner, which it holds a reference to; NULL when it owns them. */
    kl_snapshot *owner;
    char *tenant_id; /* "" when none */
    char *admin_object_id;
    kl_appcreds *appcreds;   /* registered certificates; NULL when there are none */
    kl_sts *sts;             /* signing keys and client secrets; never NULL once finished */
    kl_mi_set *mis;          /* managed identities, sites and VMs; NULL when there are none */
    kl_idheaders *idheaders; /* launch secrets of sites; NULL when there are none */
};

/* ---------------------------------------------------------------- hashing */

static uint64_t fnv_exact(const char *s, size_t n, uint64_t h)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t dep_hash(size_t acct, const char *name, size_t n)
{
    return fnv_exact(name, n, KL_FNV_BASIS ^ ((uint64_t)acct * 0x9e3779b97f4a7c15ULL));
}

static uint64_t key_hash(const unsigned char index[32])
{
    uint64_t h;
    memcpy(&h, index, sizeof(h)); /* an HMAC output: already uniform */
    return h;
}

/* ---------------------------------------------------------------- lookups */

static const acct_rec *find_account(const kl_snapshot *s, const char *name, size_t len, size_t *idx)
{
    if (!s || !name || len == 0 || len > KL_MAX_NAME || !s->acct_tab)
        return NULL;
    for (size_t i = kl_fnv_lower(name, len, KL_FNV_BASIS) & s->acct_mask;;
         i = (i + 1) & s->acct_mask) {
        uint32_t v = s->acct_tab[i];
        if (v == 0)
            return NULL;
        const acct_rec *r = &s->accts[v - 1];
        if (kl_str_ieqn(r->pub.name, strlen(r->pub.name), name, len)) {
            if (idx)
                *idx = v - 1;
            return r;
        }
    }
}

/* Maps a kl_account pointer back to its index, refusing pointers from elsewhere (for
 * example from an older snapshot). */
static bool account_index(const kl_snapshot *s, const kl_account *a, size_t *idx)
{
    if (!s || !a || s->n_accts == 0)
        return false;
    uintptr_t base = (uintptr_t)s->accts;
    uintptr_t p = (uintptr_t)a;
    if (p < base || p >= base + s->n_accts * sizeof(acct_rec))
        return false;
    if ((p - base) % sizeof(acct_rec) != 0)
        return false;
    *idx = (p - base) / sizeof(acct_rec);
    return true;
}

kl_network_verdict kl_snapshot_network_check(const kl_account *a, bool private_listener,
                                             const kl_netaddr *caller)
{
    if (!a || private_listener)
        return KL_NETWORK_ALLOWED;
    if (a->public_access_disabled)
        return KL_NETWORK_PUBLIC_DISABLED;
    if (a->default_deny && !(caller && kl_netrules_match(a->ip_rules, caller)))
        return KL_NETWORK_DENIED;
    return KL_NETWORK_ALLOWED;
}

size_t kl_snapshot_account_count(const kl_snapshot *s)
{
    return s ? s->n_accts : 0;
}

const kl_account *kl_snapshot_account_at(const kl_snapshot *s, size_t i)
{
    return s && i < s->n_accts ? &s->accts[i].pub : NULL;
}

const kl_account *kl_snapshot_account(const kl_snapshot *s, const char *name, size_t len)
{
    const acct_rec *r = find_account(s, name, len, NULL);
    return r ? &r->pub : NULL;
}

const kl_deployment *kl_snapshot_deployment(const kl_snapshot *s, const kl_account *a,
                                            const char *name, size_t len)
{
    size_t ai;
    if (!name || len == 0 || len > KL_MAX_NAME || !account_index(s, a, &ai) || !s->dep_tab)
        return NULL;
    for (size_t i = dep_hash(ai, name, len) & s->dep_mask;; i = (i + 1) & s->dep_mask) {
        uint32_t v = s->dep_tab[i];
        if (v == 0)
            return NULL;
        const kl_deployment *d = &s->deps[v - 1];
        if (d->account == a && strlen(d->name) == len && memcmp(d->name, name, len) == 0)
            return d;
    }
}

size_t kl_snapshot_deployments(const kl_snapshot *s, const kl_account *a,
                               const kl_deployment *const **out)
{
    size_t ai;
    if (out)
        *out = NULL;
    if (!out || !account_index(s, a, &ai) || s->accts[ai].dep_count == 0)
        return 0;
    *out = &s->dep_list[s->accts[ai].dep_first];
    return s->accts[ai].dep_count;
}

bool kl_snapshot_key_lookup(const kl_snapshot *s, const unsigned char index[32],
                            const kl_account **account, int *slot)
{
    if (!s || !index || !s->key_tab)
        return false;
    for (size_t i = key_hash(index) & s->key_mask;; i = (i + 1) & s->key_mask) {
        uint32_t v = s->key_tab[i];
        if (v == 0)
            return false;
        const key_rec *k = &s->keys[v - 1];
        /* The prefix only picks candidates; the decision is the full constant-time
         * comparison. */
        if (memcmp(k->index, index, 8) == 0 && CRYPTO_memcmp(k->index, index, 32) == 0) {
            if (account)
                *account = &s->accts[k->acct].pub;
            if (slot)
                *slot = k->slot;
            return true;
        }
    }
}

/* Probes tab (principal indexes + 1) for a principal whose id (by_app: app id) equals
 * key, case-insensitively. */
static const kl_principal *find_principal(const kl_snapshot *s, const uint32_t *tab,
                                          const char *key, bool by_app)
{
    if (!s || !key || !tab)
        return NULL;
    size_t len = strnlen(key, KL_MAX_PRINCIPAL_ID + 1);
    if (len == 0 || len > KL_MAX_PRINCIPAL_ID)
        return NULL;
    for (size_t i = kl_fnv_lower(key, len, KL_FNV_BASIS) & s->principal_mask;;
         i = (i + 1) & s->principal_mask) {
        uint32_t v = tab[i];
        if (v == 0)
            return NULL;
        const kl_principal *p = &s->principals[v - 1];
        const char *have = by_app ? p->app_id : p->object_id;
        if (have && kl_str_ieqn(have, strlen(have), key, len))
            return p;
    }
}

const kl_principal *kl_snapshot_principal(const kl_snapshot *s, const char *object_id)
{
    return find_principal(s, s ? s->principal_tab : NULL, object_id, false);
}

const kl_principal *kl_snapshot_principal_by_app_id(const kl_snapshot *s, const char *app_id)
{
    return find_principal(s, s ? s->app_tab : NULL, app_id, true);
}

const kl_appcreds *kl_snapshot_appcreds(const kl_snapshot *s)
{
    return s ? s->appcreds : NULL;
}

const kl_rbac_index *kl_snapshot_rbac(const kl_snapshot *s)
{
    return s ? s->rbac : NULL;
}

const char *kl_snapshot_tenant_id(const kl_snapshot *s)
{
    return (s && s->tenant_id) ? s->tenant_id : "";
}

const char *kl_snapshot_admin_principal(const kl_snapshot *s)
{
    return s ? s->admin_object_id : NULL;
}

/* ---------------------------------------------------------------- lifetime */

static void free_account_strings(kl_account *a)
{
    kl_netrules_free((kl_netrules *)a->ip_rules);
    a->ip_rules = NULL;
    for (int i = 0; i < 2; i++) {
        kl_keyusage_cell_release(a->usage[i]);
        a->usage[i] = NULL;
    }
    free((char *)a->id);
    free((char *)a->name);
    free((char *)a->subscription);
    free((char *)a->resource_group);
    free((char *)a->location);
}

static void free_secret(const char *c)
{
    if (c) {
        OPENSSL_cleanse((char *)c, strlen(c));
        free((char *)c);
    }
}

static void free_deployment_strings(kl_deployment *d)
{
    free((char *)d->name);
    free((char *)d->model_name);
    free((char *)d->upstream_url);
    free((char *)d->upstream_model);
    free_secret(d->upstream_credential);
}

static void free_principal_strings(kl_principal *p)
{
    free((char *)p->object_id);
    free((char *)p->app_id);
    free((char *)p->display_name);
}

static void snapshot_free(kl_snapshot *s)
{
    if (s->owner) {
        kl_rbac_index_free(s->rbac);
        kl_snapshot_release(s->owner);
        free(s);
        return;
    }
    for (size_t i = 0; i < s->n_principals; i++)
        free_principal_strings(&s->principals[i]);
    free(s->principals);
    free(s->group_ids);
    free(s->principal_tab);
    free(s->app_tab);
    kl_rbac_index_free(s->rbac);
    kl_sts_free(s->sts);
    free(s->tenant_id);
    free(s->admin_object_id);
    kl_appcreds_free(s->appcreds);
    kl_mi_set_free(s->mis);
    kl_idheaders_free(s->idheaders);
    for (size_t i = 0; i < s->n_accts; i++)
        free_account_strings(&s->accts[i].pub);
    for (size_t i = 0; i < s->n_deps; i++)
        free_deployment_strings(&s->deps[i]);
    free(s->accts);
    free(s->acct_tab);
    free(s->deps);
    free(s->dep_list);
    free(s->dep_tab);
    if (s->keys)
        OPENSSL_cleanse(s->keys, s->n_keys * sizeof(key_rec));
    free(s->keys);
    free(s->key_tab);
    free(s);
}

void kl_snapshot_retain(kl_snapshot *s)
{
    if (s)
        atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void kl_snapshot_release(kl_snapshot *s)
{
    if (!s)
        return;
    /* acq_rel: our reads of s happen before the drop, and the last dropper sees every
     * other reader's reads as done before it frees. */
    if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
        snapshot_free(s);
}

int kl_snapshot_derive(kl_snapshot *old, kl_rbac_index *ix, kl_snapshot **out)
{
    if (!out) {
        kl_rbac_index_free(ix);
        return KL_EINVAL;
    }
    *out = NULL;
    if (!old || !ix) {
        kl_rbac_index_free(ix);
        return KL_EINVAL;
    }
    kl_snapshot *s = malloc(sizeof(*s));
    if (!s) {
        kl_rbac_index_free(ix);
        return KL_ENOMEM;
    }
    /* A copy of old's table pointers: the tables stay old's owner's, which s holds. */
    memcpy(s, old, sizeof(*s));
    atomic_init(&s->refs, 1);
    s->generation = 0;
    s->owner = old->owner ? old->owner : old;
    kl_snapshot_retain(s->owner);
    s->rbac = ix;
    *out = s;
    return 0;
}

uint64_t kl_snapshot_generation(const kl_snapshot *s)
{
    return s ? s->generation : 0;
}

void kl_snapshot_set_generation(kl_snapshot *s, uint64_t g)
{
    s->generation = g;
}

/* ---------------------------------------------------------------- builder */

typedef struct staged_key {
    char *account_name;
    int slot;
    unsigned char index[32];
    int64_t created_at, last_used;
} staged_key;

typedef struct staged_dep {
    char *account_name;
    size_t acct;     /* resolved at finish */
    kl_deployment d; /* owned strings; account set at finish */
} staged_dep;

struct kl_snapshot_builder {
    acct_rec *accts;
    size_t n_accts, cap_accts;
    staged_key *keys;
    size_t n_keys, cap_keys;
    staged_dep *deps;
    size_t n_deps, cap_deps;
    kl_principal *principals;
    size_t n_principals, cap_principals;
    kl_rbac_index *rbac;
    char *tenant_id;
    char *admin_object_id;
    kl_appcreds *appcreds;
    kl_sts *sts;
    kl_mi_set *mis;
    kl_idheaders *idheaders;
    kl_keyusage *usage;        /* borrowed; kept across builder_clear */
    kl_groups_builder *groups; /* memberships, NULL until the first */
};

static char *dup_or_null(const char *s, bool *oom)
{
    if (!s)
        return NULL;
    char *c = strdup(s);
    if (!c)
        *oom = true;
    return c;
}

kl_snapshot_builder *kl_snapshot_builder_new(void)
{
    return calloc(1, sizeof(kl_snapshot_builder));
}

static void builder_clear(kl_snapshot_builder *b)
{
    for (size_t i = 0; i < b->n_accts; i++)
        free_account_strings(&b->accts[i].pub);
    for (size_t i = 0; i < b->n_keys; i++)
        free(b->keys[i].account_name);
    for (size_t i = 0; i < b->n_deps; i++) {
        free(b->deps[i].account_name);
        free_deployment_strings(&b->deps[i].d);
    }
    for (size_t i = 0; i < b->n_principals; i++)
        free_principal_strings(&b->principals[i]);
    free(b->accts);
    if (b->keys)
        OPENSSL_cleanse(b->keys, b->cap_keys * sizeof(staged_key));
    free(b->keys);
    free(b->deps);
    free(b->principals);
    kl_rbac_index_free(b->rbac);
    kl_sts_free(b->sts);
    free(b->tenant_id);
    free(b->admin_object_id);
    kl_appcreds_free(b->appcreds);
    kl_mi_set_free(b->mis);
    kl_idheaders_free(b->idheaders);
    kl_groups_builder_free(b->groups);
    kl_keyusage *u = b->usage;
    memset(b, 0, sizeof(*b));
    b->usage = u;
}

void kl_snapshot_builder_free(kl_snapshot_builder *b)
{
    if (!b)
        return;
    builder_clear(b);
    free(b);
}

int kl_snapshot_builder_account(kl_snapshot_builder *b, const char *id, const char *name,
                                const char *subscription, const char *resource_group,
                                const char *location, bool disable_local_auth)
{
    if (!b || !id || !name || !*name || !subscription || !resource_group || !location)
        return KL_EINVAL;
    int err = kl_tables_grow((void **)&b->accts, &b->cap_accts, b->n_accts, sizeof(acct_rec));
    if (err)
        return err;
    bool oom = false;
    acct_rec r = {0};
    r.pub.id = dup_or_null(id, &oom);
    r.pub.name = dup_or_null(name, &oom);
    r.pub.subscription = dup_or_null(subscription, &oom);
    r.pub.resource_group = dup_or_null(resource_group, &oom);
    r.pub.location = dup_or_null(location, &oom);
    r.pub.disable_local_auth = disable_local_auth;
    if (oom) {
        free_account_strings(&r.pub);
        return KL_ENOMEM;
    }
    b->accts[b->n_accts++] = r;
    return 0;
}

int kl_snapshot_builder_account_network(kl_snapshot_builder *b, const char *account_name,
                                        bool public_access_disabled, bool default_deny,
                                        kl_netrules *rules)
{
    for (size_t i = b && account_name ? b->n_accts : 0; i > 0; i--) {
        kl_account *a = &b->accts[i - 1].pub;
        if (kl_str_ieq(a->name, account_name)) {
            kl_netrules_free((kl_netrules *)a->ip_rules);
            a->ip_rules = rules;
            a->public_access_disabled = public_access_disabled;
            a->default_deny = default_deny;
            return 0;
        }
    }
    kl_netrules_free(rules);
    return KL_EINVAL;
}

void kl_snapshot_builder_keyusage(kl_snapshot_builder *b, kl_keyusage *u)
{
    if (b)
        b->usage = u;
}

int kl_snapshot_builder_key(kl_snapshot_builder *b, const char *account_name, int slot,
                            const unsigned char index[32])
{
    return kl_snapshot_builder_key_ex(b, account_name, slot, index, 0, 0);
}

int kl_snapshot_builder_key_ex(kl_snapshot_builder *b, const char *account_name, int slot,
                               const unsigned char index[32], int64_t created_at, int64_t last_used)
{
    if (!b || !account_name || !index || (slot != 1 && slot != 2))
        return KL_EINVAL;
    int err = kl_tables_grow((void **)&b->keys, &b->cap_keys, b->n_keys, sizeof(staged_key));
    if (err)
        return err;
    staged_key *k = &b->keys[b->n_keys];
    k->account_name = strdup(account_name);
    if (!k->account_name)
        return KL_ENOMEM;
    k->slot = slot;
    memcpy(k->index, index, 32);
    k->created_at = created_at;
    k->last_used = last_used;
    b->n_keys++;
    return 0;
}

/* Stages one deployment whose arguments the caller has checked (NULLs are kept NULL). */
static int stage_deployment(kl_snapshot_builder *b, const char *account_name, const char *name,
                            const char *model_name, kl_backend_kind backend, const char *url,
                            const char *upstream_model, const char *credential)
{
    int err = kl_tables_grow((void **)&b->deps, &b->cap_deps, b->n_deps, sizeof(staged_dep));
    if (err)
        return err;
    bool oom = false;
    staged_dep sd = {0};
    sd.account_name = dup_or_null(account_name, &oom);
    sd.d.name = dup_or_null(name, &oom);
    sd.d.model_name = dup_or_null(model_name ? model_name : "", &oom);
    sd.d.backend = backend;
    sd.d.upstream_url = dup_or_null(url, &oom);
    sd.d.upstream_model = dup_or_null(upstream_model, &oom);
    sd.d.upstream_credential = dup_or_null(credential, &oom);
    if (oom) {
        free(sd.account_name);
        free_deployment_strings(&sd.d);
        return KL_ENOMEM;
    }
    b->deps[b->n_deps++] = sd;
    return 0;
}

int kl_snapshot_builder_deployment(kl_snapshot_builder *b, const char *account_name,
                                   const char *name, const char *model_name,
                                   kl_backend_kind backend, const char *url,
                                   const char *upstream_model, const char *credential)
{
    if (!b || !account_name || !name || !*name)
        return KL_EINVAL;
    if (backend == KL_BACKEND_ECHO && (url || upstream_model || credential))
        return KL_EINVAL;
    if (backend == KL_BACKEND_UPSTREAM && (!url || !upstream_model))
        return KL_EINVAL;
    if (backend != KL_BACKEND_ECHO && backend != KL_BACKEND_UPSTREAM)
        return KL_EINVAL;
    return stage_deployment(b, account_name, name, model_name, backend, url, upstream_model,
                            credential);
}

int kl_snapshot_builder_deployment_unavailable(kl_snapshot_builder *b, const char *account_name,
                                               const char *name, const char *model_name)
{
    if (!b || !account_name || !name || !*name)
        return KL_EINVAL;
    return stage_deployment(b, account_name, name, model_name, KL_BACKEND_UNAVAILABLE, NULL, NULL,
                            NULL);
}

static char *lower_dup(const char *s, bool *oom)
{
    char *c = dup_or_null(s, oom);
    kl_ascii_lower_inplace(c);
    return c;
}

int kl_snapshot_builder_tenant(kl_snapshot_builder *b, const char *tenant_id,
                               const char *admin_object_id)
{
    if (!b || !tenant_id || !admin_object_id)
        return KL_EINVAL;
    bool oom = false;
    char *t = lower_dup(tenant_id, &oom);
    char *a = lower_dup(admin_object_id, &oom);
    if (oom) {
        free(t);
        free(a);
        return KL_ENOMEM;
    }
    free(b->tenant_id);
    free(b->admin_object_id);
    b->tenant_id = t;
    b->admin_object_id = a;
    return 0;
}

int kl_snapshot_builder_principal(kl_snapshot_builder *b, const char *object_id, const char *app_id,
                                  kl_principal_type type, const char *display_name, bool enabled)
{
    if (!b || !object_id || !*object_id || strlen(object_id) > KL_MAX_PRINCIPAL_ID ||
        (app_id && (!*app_id || strlen(app_id) > KL_MAX_PRINCIPAL_ID)) || !display_name)
        return KL_EINVAL;
    int err = kl_tables_grow((void **)&b->principals, &b->cap_principals, b->n_principals,
                             sizeof(kl_principal));
    if (err)
        return err;
    bool oom = false;
    kl_principal p = {.object_id = lower_dup(object_id, &oom),
                      .app_id = lower_dup(app_id, &oom),
                      .type = type,
                      .display_name = dup_or_null(display_name, &oom),
                      .enabled = enabled};
    if (oom) {
        free_principal_strings(&p);
        return KL_ENOMEM;
    }
    b->principals[b->n_principals++] = p;
    return 0;
}

int kl_snapshot_builder_group_member(kl_snapshot_builder *b, const char *group, const char *member)
{
    if (!b)
        return KL_EINVAL;
    return kl_groups_builder_add(&b->groups, group, member);
}

static const kl_principal *principal_of(const void *ctx, const char *oid)
{
    return kl_snapshot_principal(ctx, oid);
}

int kl_snapshot_rbac_check(const kl_snapshot *s, const kl_principal *p, const char *action,
                           bool data_action, const char *scope, kl_rbac_decision *out)
{
    const char *ids[KL_MAX_CHECK_PRINCIPALS];
    size_t n = p ? p->n_groups : 0;
    if (n > KL_MAX_CHECK_PRINCIPALS - 1)
        n = KL_MAX_CHECK_PRINCIPALS - 1;
    ids[0] = p ? p->object_id : NULL;
    if (!p)
        return kl_rbac_check_principals(kl_snapshot_rbac(s), ids, 0, action, data_action, scope,
                                        out);
    if (n)
        memcpy(ids + 1, p->groups, n * sizeof(*ids));
    return kl_rbac_check_principals(kl_snapshot_rbac(s), ids, n + 1, action, data_action, scope,
                                    out);
}

int kl_snapshot_builder_appcreds(kl_snapshot_builder *b, kl_appcreds *ac)
{
    if (!b || !ac) {
        kl_appcreds_free(ac);
        return KL_EINVAL;
    }
    kl_appcreds_free(b->appcreds);
    b->appcreds = ac;
    return 0;
}

int kl_snapshot_builder_rbac(kl_snapshot_builder *b, kl_rbac_index *ix)
{
    if (!b || !ix) {
        kl_rbac_index_free(ix);
        return KL_EINVAL;
    }
    kl_rbac_index_free(b->rbac);
    b->rbac = ix;
    return 0;
}

static int cmp_staged_dep(const void *x, const void *y)
{
    const staged_dep *a = x, *b = y;
    if (a->acct != b->acct)
        return a->acct < b->acct ? -1 : 1;
    return strcmp(a->d.name, b->d.name);
}

static int finish_accounts(kl_snapshot *s)
{
    int err = kl_tables_new(s->n_accts, &s->acct_tab, &s->acct_mask);
    for (size_t a = 0; !err && a < s->n_accts; a++) {
        const char *name = s->accts[a].pub.name;
        size_t len = strlen(name);
        if (find_account(s, name, len, NULL))
            return KL_EEXIST;
        size_t i = kl_fnv_lower(name, len, KL_FNV_BASIS) & s->acct_mask;
        while (s->acct_tab[i] != 0)
            i = (i + 1) & s->acct_mask;
        s->acct_tab[i] = (uint32_t)(a + 1);
    }
    return err;
}

static int finish_deployments(kl_snapshot *s, kl_snapshot_builder *b)
{
    for (size_t i = 0; i < b->n_deps; i++) {
        const char *an = b->deps[i].account_name;
        if (!find_account(s, an, strlen(an), &b->deps[i].acct))
            return KL_EINTERNAL;
    }
    if (b->n_deps > 1)
        qsort(b->deps, b->n_deps, sizeof(staged_dep), cmp_staged_dep);
    int err = kl_tables_new(b->n_deps, &s->dep_tab, &s->dep_mask);
    if (err)
        return err;
    if (b->n_deps > 0) {
        s->deps = calloc(b->n_deps, sizeof(kl_deployment));
        s->dep_list = calloc(b->n_deps, sizeof(kl_deployment *));
        if (!s->deps || !s->dep_list)
            return KL_ENOMEM;
    }
    for (size_t i = 0; i < b->n_deps; i++) {
        staged_dep *sd = &b->deps[i];
        /* Sorted, so a duplicate is the previous one (already moved into s->deps). */
        if (i > 0 && b->deps[i - 1].acct == sd->acct &&
            strcmp(s->deps[i - 1].name, sd->d.name) == 0)
            return KL_EEXIST;
        /* Ownership of the strings moves into the snapshot. */
        s->deps[i] = sd->d;
        memset(&sd->d, 0, sizeof(sd->d));
        s->n_deps = i + 1;
        acct_rec *ar = &s->accts[sd->acct];
        s->deps[i].account = &ar->pub;
        s->dep_list[i] = &s->deps[i];
        if (ar->dep_count == 0)
            ar->dep_first = i;
        ar->dep_count++;
        size_t h = dep_hash(sd->acct, s->deps[i].name, strlen(s->deps[i].name)) & s->dep_mask;
        while (s->dep_tab[h] != 0)
            h = (h + 1) & s->dep_mask;
        s->dep_tab[h] = (uint32_t)(i + 1);
    }
    return 0;
}

static int finish_keys(kl_snapshot *s, kl_snapshot_builder *b)
{
    int err = kl_tables_new(b->n_keys, &s->key_tab, &s->key_mask);
    if (err)
        return err;
    if (b->n_keys > 0) {
        s->keys = calloc(b->n_keys, sizeof(key_rec));
        if (!s->keys)
            return KL_ENOMEM;
    }
    for (size_t i = 0; i < b->n_keys; i++) {
        staged_key *k = &b->keys[i];
        size_t ai;
        if (!find_account(s, k->account_name, strlen(k->account_name), &ai))
            return KL_EINTERNAL;
        if (kl_snapshot_key_lookup(s, k->index, NULL, NULL))
            return KL_EEXIST;
        key_rec *r = &s->keys[i];
        memcpy(r->index, k->index, 32);
        r->acct = (uint32_t)ai;
        r->slot = k->slot;
        s->n_keys = i + 1;
        kl_account *a = &s->accts[ai].pub;
        a->key_created[k->slot - 1] = k->created_at;
        if (b->usage) {
            kl_keyusage_cell_release(a->usage[k->slot - 1]);
            a->usage[k->slot - 1] = kl_keyusage_cell_get(b->usage, k->index, k->last_used);
            if (!a->usage[k->slot - 1])
                return KL_ENOMEM;
        }
        size_t h = key_hash(r->index) & s->key_mask;
        while (s->key_tab[h] != 0)
            h = (h + 1) & s->key_mask;
        s->key_tab[h] = (uint32_t)(i + 1);
    }
    return 0;
}

/* Inserts principal i into tab under key, refusing a duplicate. */
static int principal_insert(kl_snapshot *s, uint32_t *tab, const char *key, size_t i, bool by_app)
{
    if (find_principal(s, tab, key, by_app))
        return KL_EEXIST;
    size_t h = kl_fnv_lower(key, strlen(key), KL_FNV_BASIS) & s->principal_mask;
    while (tab[h] != 0)
        h = (h + 1) & s->principal_mask;
    tab[h] = (uint32_t)(i + 1);
    return 0;
}

static int finish_directory(kl_snapshot *s, kl_snapshot_builder *b)
{
    /* The principal array moves as a whole, so kl_principal pointers stay put. */
    s->principals = b->principals;
    s->n_principals = b->n_principals;
    b->principals = NULL;
    b->n_principals = b->cap_principals = 0;
    s->tenant_id = b->tenant_id ? b->tenant_id : strdup("");
    s->admin_object_id = b->admin_object_id;
    b->tenant_id = b->admin_object_id = NULL;
    s->rbac = b->rbac;
    b->rbac = NULL;
    if (!s->tenant_id)
        return KL_ENOMEM;
    int err = kl_tables_new(s->n_principals, &s->principal_tab, &s->principal_mask);
    if (!err) {
        size_t mask = s->principal_mask;
        err = kl_tables_new(s->n_principals, &s->app_tab, &mask);
    }
    for (size_t i = 0; !err && i < s->n_principals; i++) {
        const kl_principal *p = &s->principals[i];
        err = principal_insert(s, s->principal_tab, p->object_id, i, false);
        if (!err && p->app_id)
            err = principal_insert(s, s->app_tab, p->app_id, i, true);
    }
    if (!err && !s->rbac) {
        char why[128];
        err = kl_rbac_index_build(NULL, 0, NULL, 0, &s->rbac, why, sizeof(why));
    }
    s->sts = b->sts;
    b->sts = NULL;
    if (!err && !s->sts && !(err = kl_sts_new(&s->sts)))
        err = kl_sts_finish(s->sts);
    return err;
}

int kl_snapshot_builder_sts(kl_snapshot_builder *b, kl_sts *sts)
{
    if (!b) {
        kl_sts_free(sts);
        return KL_EINVAL;
    }
    kl_sts_free(b->sts);
    b->sts = sts;
    return 0;
}

const kl_sts *kl_snapshot_sts(const kl_snapshot *s)
{
    return s ? s->sts : NULL;
}

int kl_snapshot_builder_mis(kl_snapshot_builder *b, kl_mi_set *m)
{
    if (!b || !m) {
        kl_mi_set_free(m);
        return KL_EINVAL;
    }
    kl_mi_set_free(b->mis);
    b->mis = m;
    return 0;
}

int kl_snapshot_builder_idheaders(kl_snapshot_builder *b, kl_idheaders *h)
{
    if (!b || !h) {
        kl_idheaders_free(h);
        return KL_EINVAL;
    }
    kl_idheaders_free(b->idheaders);
    b->idheaders = h;
    return 0;
}

const kl_idheaders *kl_snapshot_idheaders(const kl_snapshot *s)
{
    return s ? s->idheaders : NULL;
}

const kl_compute *kl_snapshot_compute(const kl_snapshot *s, kl_compute_kind kind, const char *name)
{
    return s ? kl_mi_set_compute(s->mis, kind, name) : NULL;
}

const kl_mi *kl_snapshot_mi_by_client_id(const kl_snapshot *s, const char *client_id)
{
    return s ? kl_mi_set_by_client_id(s->mis, client_id) : NULL;
}

int kl_snapshot_builder_finish(kl_snapshot_builder *b, kl_snapshot **out)
{
    if (!b || !out)
        return KL_EINVAL;
    *out = NULL;
    kl_snapshot *s = calloc(1, sizeof(*s));
    if (!s) {
        builder_clear(b);
        return KL_ENOMEM;
    }
    atomic_init(&s->refs, 1);
    /* The account array moves as a whole: from here on its records do not move, so
     * kl_account pointers into it are stable for the snapshot's life. */
    s->accts = b->accts;
    s->n_accts = b->n_accts;
    b->accts = NULL;
    b->n_accts = b->cap_accts = 0;

    int err = finish_accounts(s);
    if (!err)
        err = finish_deployments(s, b);
    if (!err)
        err = finish_keys(s, b);
    if (!err)
        err = finish_directory(s, b);
    if (!err)
        err = kl_groups_finish(b->groups, s->principals, s->n_principals, s->rbac, principal_of, s,
                               &s->group_ids);
    if (!err) {
        s->appcreds = b->appcreds;
        b->appcreds = NULL;
        s->mis = b->mis;
        b->mis = NULL;
        s->idheaders = b->idheaders;
        b->idheaders = NULL;
    }
    builder_clear(b);
    if (err) {
        snapshot_free(s);
        return err;
    }
    *out = s;
    return 0;
}
