/* Snapshot builder: walks the store once and feeds the rows to the snapshot builder,
 * unsealing upstream credentials on the way. */
#include "policy/build.h"

#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/util.h"
#include "crypto/crc32.h"
#include "crypto/seal.h"
#include "policy/idheaders.h"
#include "policy/mi.h"
#include "policy/policy_role.h"
#include "policy/snapshot_builder.h"
#include "policy/sts.h"
#include "policy/tables.h"
#include "rbac/builtin.h"

/* A custom role kept until the index is built: the store row owns the strings the
 * decoded definition points to. */
typedef struct role_row {
    kl_store_role_definition *row; /* owned copy of the strings */
    kl_policy_role role;
} role_row;

/* An assignment kept until the index is built. */
typedef struct asg_row {
    char *name, *principal, *role, *scope;
} asg_row;

typedef struct build_ctx {
    kl_snapshot_builder *b;
    const kl_keys *keys;
    role_row *roles;
    size_t n_roles, cap_roles;
    asg_row *asgs;
    size_t n_asgs, cap_asgs;
    char **enabled; /* object ids of enabled principals, lower-case (sorted before use) */
    size_t n_enabled, cap_enabled;
    /* Rows built as unavailable, by row and version (see broken_key); with a memo, a
     * row already in it is not logged again. */
    const kl_policy *memo;         /* may be NULL: log every broken row */
    bool quiet;                    /* log no broken row (the compactor: the last build did) */
    int64_t gen;                   /* the store generation the rows were read at */
    kl_appcreds_builder *appcreds; /* created at the first certificate */
    char **broken;
    size_t n_broken, cap_broken;
    kl_sts *sts;             /* signing keys and client secrets, handed to the builder at the end */
    kl_mi_builder *mis;      /* created at the first site, VM or managed identity */
    kl_idheaders *idheaders; /* created at the first launch secret */
} build_ctx;

struct kl_policy {
    /* kl_policy_apply runs on the control thread and on the store's watcher thread:
     * one build and publish (or fence) at a time, so a snapshot built before a change
     * can never be published after a fence that change caused. */
    pthread_mutex_t mu;
    kl_store *st;
    const kl_keys *keys;
    kl_snapshot_holder *h;
    kl_keyusage *usage; /* borrowed, may be NULL: where snapshots get key usage cells */
    char **reported;    /* broken rows of the last build, already logged */
    size_t n_reported;
    /* What this context published last (a reference of its own) and the store
     * generation it holds: the base the next change is derived from. last is NULL and
     * gen -1 until the first build. */
    kl_snapshot *last;
    int64_t gen;
    /* The compactor: a thread, started on first need, that rebuilds in full once a
     * derived index passes half its limits, so chains of derives stay short. Guarded
     * by mu. */
    pthread_t compactor;
    pthread_cond_t wake;
    bool compactor_started, compact_wanted, stopping;
};

static bool reported(const kl_policy *p, const char *key)
{
    for (size_t i = 0; p && i < p->n_reported; i++)
        if (strcmp(p->reported[i], key) == 0)
            return true;
    return false;
}

int kl_policy_credential_aad(const char *account_name, const char *deployment, const char *url,
                             char *out, size_t outlen)
{
    if (!account_name || !deployment || !url || !out || outlen == 0)
        return KL_EINVAL;
    int n = snprintf(out, outlen, "upstream-credential:%s:%s:%s", account_name, deployment, url);
    if (n < 0 || (size_t)n >= outlen)
        return KL_ETOOBIG;
    /* Only the account name is folded: account names are case-insensitive, deployment
     * names and URLs are not. */
    size_t start = strlen("upstream-credential:");
    for (size_t i = start; i < start + strlen(account_name); i++)
        out[i] = kl_ascii_lower(out[i]);
    return 0;
}

/* Compiles networkAcls.ipRules of the stored text. A row that does not parse (it was
 * validated when written, so only a hand-edited row) fails closed: Deny with no rules. */
static int compile_acls(const char *text, const char *account, bool *deny, kl_netrules **out)
{
    *out = NULL;
    *deny = false;
    if (!text)
        return 0;
    json_t *j = json_loads(text, 0, NULL);
    const json_t *rules = json_object_get(j, "ipRules");
    const char *da = json_string_value(json_object_get(j, "defaultAction"));
    size_t n = json_array_size(rules);
    kl_netrange *r = n ? calloc(n, sizeof(*r)) : NULL;
    bool ok = j && da && (n == 0 || r) && n <= KL_MAX_NETWORK_RULES;
    for (size_t i = 0; ok && i < n; i++) {
        const json_t *v = json_object_get(json_array_get(rules, i), "value");
        ok = json_is_string(v) &&
             kl_netrules_parse(json_string_value(v), json_string_length(v), &r[i]) == 0;
    }
    int err = 0;
    if (ok) {
        *deny = kl_str_ieq(da, "Deny");
        err = kl_netrules_compile(r, n, out);
    } else {
        kl_log(KL_LOG_ERROR, "snapshot_network_rules_unreadable", "account", account, "detail",
               "the account refuses every public caller until its networkAcls are written again",
               NULL);
        *deny = true;
    }
    free(r);
    json_decref(j);
    return err == KL_ENOMEM ? err : 0;
}

static int on_account(void *arg, const kl_store_account *a)
{
    build_ctx *c = arg;
    int err = kl_snapshot_builder_account(c->b, a->id, a->name, a->subscription, a->resource_group,
                                          a->location, a->disable_local_auth);
    if (err)
        return err;
    json_t *props = a->properties ? json_loads(a->properties, 0, NULL) : NULL;
    const char *pna = json_string_value(json_object_get(props, "publicNetworkAccess"));
    bool disabled = pna && kl_str_ieq(pna, "Disabled");
    json_decref(props);
    bool deny = false;
    kl_netrules *rules = NULL;
    if ((err = compile_acls(a->network_acls, a->name, &deny, &rules)))
        return err;
    if (!disabled && !deny && !rules)
        return 0;
    return kl_snapshot_builder_account_network(c->b, a->name, disabled, deny, rules);
}

static int on_key(void *arg, const char *account_name, const kl_store_key *k)
{
    build_ctx *c = arg;
    return kl_snapshot_builder_key_ex(c->b, account_name, k->slot, k->index, k->created_at,
                                      k->last_used);
}

/* properties.model.name from the stored model object, or NULL. *owner must be
 * json_decref'd by the caller. */
static const char *model_name(const char *model_json, json_t **owner)
{
    *owner = NULL;
    if (!model_json)
        return NULL;
    *owner = json_loads(model_json, 0, NULL);
    const char *n = json_string_value(json_object_get(*owner, "name"));
    return n;
}

/* Identifies one version of a deployment row: the account and deployment names, the
 * modification time and a checksum of the sealed value (which changes when the row is
 * rewritten behind our back too). */
static char *broken_key(const kl_store_deployment *d)
{
    const char *sealed = d->credential_sealed ? d->credential_sealed : "";
    char *acct = kl_ascii_lower_dup(d->account_name);
    if (!acct)
        return NULL;
    size_t n = strlen(acct) + strlen(d->name) + 64;
    char *k = malloc(n);
    if (k)
        snprintf(k, n, "%s/%s@%lld#%08x", acct, d->name, (long long)d->modified_at,
                 (unsigned)kl_crc32(sealed, strlen(sealed)));
    free(acct);
    return k;
}

/* Records a deployment that cannot be served and logs it unless the memo has this row
 * version already. */
static int note_broken(build_ctx *c, const kl_store_deployment *d, const char *reason)
{
    int err = kl_tables_grow((void **)&c->broken, &c->cap_broken, c->n_broken, sizeof(char *));
    if (err)
        return err;
    char *k = broken_key(d);
    if (!k)
        return KL_ENOMEM;
    c->broken[c->n_broken++] = k;
    if (!c->quiet && !reported(c->memo, k))
        kl_log(KL_LOG_ERROR, "snapshot_deployment_unavailable", "account", d->account_name,
               "deployment", d->name, "reason", reason, NULL);
    return 0;
}

static int on_deployment(void *arg, const kl_store_deployment *d)
{
    build_ctx *c = arg;
    json_t *mj = NULL;
    const char *mname = model_name(d->model, &mj);
    unsigned char *cred = NULL;
    size_t cred_len = 0;
    int err = 0;
    kl_backend_kind kind = KL_BACKEND_ECHO;
    if (d->backend && strcmp(d->backend, "upstream") == 0)
        kind = KL_BACKEND_UPSTREAM;
    else if (!d->backend || strcmp(d->backend, "echo") != 0)
        err = KL_EINTERNAL;

    if (!err && kind == KL_BACKEND_UPSTREAM && d->credential_sealed) {
        char aad[KL_POLICY_AAD_MAX];
        err = kl_policy_credential_aad(d->account_name, d->name, d->upstream_url, aad, sizeof(aad));
        if (!err)
            err = kl_unseal(c->keys, aad, d->credential_sealed, &cred, &cred_len);
        if (!err && memchr(cred, '\0', cred_len))
            err = KL_ECRYPTO; /* a credential is text; refuse an embedded NUL */
        if (err == KL_ECRYPTO || err == KL_EINVAL || err == KL_ETOOBIG) {
            /* This row alone is unusable (wrong KEK, tampered or malformed sealed value):
             * it stays known but unservable, and the rest of the store is built. */
            err = note_broken(c, d, "upstream credential does not open");
            if (!err)
                err = kl_snapshot_builder_deployment_unavailable(c->b, d->account_name, d->name,
                                                                 mname);
            goto out;
        }
    }
    if (!err)
        err = kl_snapshot_builder_deployment(c->b, d->account_name, d->name, mname, kind,
                                             kind == KL_BACKEND_UPSTREAM ? d->upstream_url : NULL,
                                             kind == KL_BACKEND_UPSTREAM ? d->upstream_model : NULL,
                                             (const char *)cred);
out:
    if (cred) {
        OPENSSL_cleanse(cred, cred_len);
        free(cred);
    }
    json_decref(mj);
    return err;
}

/* The well-known public clients (appcreds.h) are in every tenant without being stored:
 * their service principals and user sign-in settings are added with the tenant. */
static int add_well_known(build_ctx *c, const char *tid)
{
    size_t n = 0;
    const kl_appcreds_client_info *wk = kl_appcreds_well_known(&n);
    if (!c->appcreds && !(c->appcreds = kl_appcreds_builder_new()))
        return KL_ENOMEM;
    int err = 0;
    for (size_t i = 0; !err && i < n; i++) {
        char oid[37];
        if (!(err = kl_appcreds_well_known_oid(tid, wk[i].app_id, oid)) &&
            !(err = kl_snapshot_builder_principal(c->b, oid, wk[i].app_id,
                                                  KL_PRINCIPAL_SERVICE_PRINCIPAL,
                                                  wk[i].display_name, true)))
            err = kl_appcreds_builder_client(c->appcreds, wk[i].app_id, true, NULL,
                                             KL_APPCREDS_WELL_KNOWN_URIS);
    }
    return err;
}

static int on_tenant(void *arg, const kl_store_tenant *t)
{
    build_ctx *c = arg;
    int err = kl_snapshot_builder_tenant(c->b, t->tenant_id, t->admin_object_id);
    return err ? err : add_well_known(c, t->tenant_id);
}

static int on_principal(void *arg, const kl_store_principal *p)
{
    build_ctx *c = arg;
    kl_principal_type type;
    if (kl_directory_principal_type_parse(p->type, &type))
        return KL_EINTERNAL;
    int err = kl_snapshot_builder_principal(c->b, p->object_id, p->app_id, type, p->display_name,
                                            p->enabled);
    if (err || !p->enabled)
        return err;
    if ((err = kl_tables_grow((void **)&c->enabled, &c->cap_enabled, c->n_enabled, sizeof(char *))))
        return err;
    if (!(c->enabled[c->n_enabled] = kl_ascii_lower_dup(p->object_id)))
        return KL_ENOMEM;
    c->n_enabled++;
    return 0;
}

/* A signing key whose private key does not open (wrong KEK, a damaged row) is left out:
 * tokens it signed are refused and another key signs (the rotation timer adds one when
 * none is usable). Logged once per row, like a deployment's credential. */
static int on_signing_key(void *arg, const kl_store_signing_key *k)
{
    build_ctx *c = arg;
    int err = kl_sts_add_key(c->sts, c->keys, k);
    if (err != KL_ECRYPTO && err != KL_ETOOBIG)
        return err;
    if ((err = kl_tables_grow((void **)&c->broken, &c->cap_broken, c->n_broken, sizeof(char *))))
        return err;
    size_t n = strlen(k->kid) + 32;
    char *key = malloc(n);
    if (!key)
        return KL_ENOMEM;
    snprintf(key, n, "signing-key:%s", k->kid);
    c->broken[c->n_broken++] = key;
    if (!reported(c->memo, key))
        kl_log(KL_LOG_ERROR, "snapshot_signing_key_unusable", "kid", k->kid, "reason",
               "the private key does not open, or the ring is full", NULL);
    return 0;
}

static int on_app_secret(void *arg, const kl_store_app_secret *sec)
{
    build_ctx *c = arg;
    return kl_sts_add_secret(c->sts, sec);
}

static void free_role_row(role_row *r)
{
    kl_policy_role_clear(&r->role);
    kl_store_role_definition_free(r->row);
}

/* A custom role that does not decode or validate is left out (and so are its
 * assignments): the store checks roles before keeping them, so this only guards against
 * a row changed behind our back, and leaving it out grants less, never more. */
static int on_role(void *arg, const kl_store_role_definition *rd)
{
    build_ctx *c = arg;
    int err = kl_tables_grow((void **)&c->roles, &c->cap_roles, c->n_roles, sizeof(role_row));
    if (err)
        return err;
    role_row r = {0};
    r.row = calloc(1, sizeof(*r.row));
    if (!r.row)
        return KL_ENOMEM;
    r.row->role_id = kl_ascii_lower_dup(rd->role_id);
    r.row->role_name = strdup(rd->role_name ? rd->role_name : "");
    r.row->description = strdup(rd->description ? rd->description : "");
    r.row->assignable_scopes = strdup(rd->assignable_scopes ? rd->assignable_scopes : "");
    r.row->permissions = strdup(rd->permissions ? rd->permissions : "");
    if (!r.row->role_id || !r.row->role_name || !r.row->description || !r.row->assignable_scopes ||
        !r.row->permissions) {
        free_role_row(&r);
        return KL_ENOMEM;
    }
    char why[160];
    err = kl_policy_role_from_store(r.row, &r.role, why, sizeof(why));
    if (!err)
        err = kl_rbac_role_validate(&r.role.def, why, sizeof(why));
    if (err == KL_ENOMEM) {
        free_role_row(&r);
        return err;
    }
    if (err) {
        kl_log(KL_LOG_ERROR, "snapshot_role_skipped", "role", r.row->role_id, "reason", why, NULL);
        free_role_row(&r);
        return 0;
    }
    c->roles[c->n_roles++] = r;
    return 0;
}

static int on_assignment(void *arg, const kl_store_role_assignment *ra)
{
    build_ctx *c = arg;
    int err = kl_tables_grow((void **)&c->asgs, &c->cap_asgs, c->n_asgs, sizeof(asg_row));
    if (err)
        return err;
    asg_row a = {.name = kl_ascii_lower_dup(ra->name),
                 .principal = kl_ascii_lower_dup(ra->principal_id),
                 .role = kl_ascii_lower_dup(ra->role_id),
                 .scope = strdup(ra->scope ? ra->scope : "")};
    if (!a.name || !a.principal || !a.role || !a.scope) {
        free(a.name);
        free(a.principal);
        free(a.role);
        free(a.scope);
        return KL_ENOMEM;
    }
    c->asgs[c->n_asgs++] = a;
    return 0;
}

static int cmp_str(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

static const kl_rbac_role_def *find_role(const build_ctx *c, const char *id)
{
    const kl_rbac_role_def *r = kl_rbac_builtin_find(id);
    for (size_t i = 0; !r && i < c->n_roles; i++)
        if (strcmp(c->roles[i].row->role_id, id) == 0)
            r = &c->roles[i].role.def;
    return r;
}

/* Compiles the custom roles and the assignments that can grant anything: those of
 * enabled principals, naming a defined role at a scope it is assignable at. Anything
 * else is left out, which only ever grants less (disabled principals are meant to be
 * left out; the rest would be a store inconsistency, logged). */
static int build_rbac(build_ctx *c)
{
    kl_rbac_role_def *defs = calloc(c->n_roles ? c->n_roles : 1, sizeof(*defs));
    kl_rbac_assignment *asgs = calloc(c->n_asgs ? c->n_asgs : 1, sizeof(*asgs));
    kl_rbac_index *ix = NULL;
    int err = (defs && asgs) ? 0 : KL_ENOMEM;
    if (err)
        goto out;
    for (size_t i = 0; i < c->n_roles; i++)
        defs[i] = c->roles[i].role.def;
    if (c->n_enabled > 1)
        qsort(c->enabled, c->n_enabled, sizeof(char *), cmp_str);
    size_t n = 0;
    for (size_t i = 0; i < c->n_asgs; i++) {
        const asg_row *a = &c->asgs[i];
        if (!c->n_enabled ||
            !bsearch(&a->principal, c->enabled, c->n_enabled, sizeof(char *), cmp_str))
            continue;
        const kl_rbac_role_def *role = find_role(c, a->role);
        if (!role || !kl_rbac_role_assignable_at(role, a->scope)) {
            kl_log(KL_LOG_ERROR, "snapshot_assignment_skipped", "assignment", a->name, "reason",
                   role ? "scope not assignable" : "unknown role", NULL);
            continue;
        }
        asgs[n++] = (kl_rbac_assignment){.id = a->name,
                                         .principal_id = a->principal,
                                         .role_definition_id = a->role,
                                         .scope = a->scope};
    }
    char why[256];
    err = kl_rbac_index_build(defs, c->n_roles, asgs, n, &ix, why, sizeof(why));
    if (err) {
        kl_log(KL_LOG_ERROR, "snapshot_rbac_failed", "reason", why, NULL);
        goto out;
    }
    err = kl_snapshot_builder_rbac(c->b, ix);
out:
    free(defs);
    free(asgs);
    return err;
}

static void ctx_free(build_ctx *c)
{
    for (size_t i = 0; i < c->n_roles; i++)
        free_role_row(&c->roles[i]);
    free(c->roles);
    for (size_t i = 0; i < c->n_asgs; i++) {
        free(c->asgs[i].name);
        free(c->asgs[i].principal);
        free(c->asgs[i].role);
        free(c->asgs[i].scope);
    }
    free(c->asgs);
    for (size_t i = 0; i < c->n_enabled; i++)
        free(c->enabled[i]);
    free(c->enabled);
    for (size_t i = 0; i < c->n_broken; i++)
        free(c->broken[i]);
    free(c->broken);
    kl_sts_free(c->sts);
    kl_mi_builder_free(c->mis);
    kl_idheaders_free(c->idheaders);
    kl_snapshot_builder_free(c->b);
    kl_appcreds_builder_free(c->appcreds);
}

/* The registered credentials' builder, made on the first one (most snapshots have none). */
static int need_appcreds(build_ctx *c)
{
    return (c->appcreds || (c->appcreds = kl_appcreds_builder_new())) ? 0 : KL_ENOMEM;
}

/* A certificate that does not parse is left out (logged), never fatal: its client's
 * assertions are refused, everyone else is served. */
static int on_federated_credential(void *arg, const kl_store_federated_credential *f)
{
    build_ctx *c = arg;
    int err = need_appcreds(c);
    if (err)
        return err;
    err = kl_appcreds_builder_federated(c->appcreds, f->app_id, f->id, f->issuer, f->subject,
                                        f->audiences);
    if (err == KL_EINVAL) {
        kl_log(KL_LOG_ERROR, "snapshot_federated_credential_unusable", "app_id", f->app_id, "id",
               f->id, NULL);
        err = 0;
    }
    return err;
}

/* An application's user sign-in settings; unusable lists are left out (logged), as a
 * certificate is: that app's redirects are refused, everyone else is served. */
static int on_application(void *arg, const kl_store_application *a)
{
    build_ctx *c = arg;
    int err = need_appcreds(c);
    if (err)
        return err;
    err = kl_appcreds_builder_client(c->appcreds, a->app_id, a->public_client, a->web_redirect_uris,
                                     a->public_redirect_uris);
    if (err == KL_EINVAL) {
        kl_log(KL_LOG_ERROR, "snapshot_redirect_uris_unusable", "app_id", a->app_id, NULL);
        err = kl_appcreds_builder_client(c->appcreds, a->app_id, a->public_client, NULL, NULL);
    }
    return err;
}

static int on_group_member(void *arg, const char *group, const char *member)
{
    return kl_snapshot_builder_group_member(((build_ctx *)arg)->b, group, member);
}

static int on_key_credential(void *arg, const kl_store_key_credential *k)
{
    build_ctx *c = arg;
    int err = need_appcreds(c);
    if (err)
        return err;
    err = kl_appcreds_builder_cert(c->appcreds, k->app_id, k->key_id, k->cert, k->start_at,
                                   k->end_at);
    if (err == KL_EINVAL) {
        kl_log(KL_LOG_ERROR, "snapshot_certificate_unusable", "app_id", k->app_id, "key_id",
               k->key_id, NULL);
        err = 0;
    }
    return err;
}

static int need_mis(build_ctx *c)
{
    return (c->mis || (c->mis = kl_mi_builder_new())) ? 0 : KL_ENOMEM;
}

static int on_compute(void *arg, const kl_store_compute *sc)
{
    build_ctx *c = arg;
    kl_compute_kind kind = KL_COMPUTE_SITE;
    if (strcmp(sc->kind, KL_STORE_COMPUTE_VM) == 0)
        kind = KL_COMPUTE_VM;
    else if (strcmp(sc->kind, KL_STORE_COMPUTE_SITE) != 0)
        return KL_EINTERNAL;
    int err = need_mis(c);
    return err ? err : kl_mi_builder_compute(c->mis, kind, sc->id, sc->name);
}

static int on_identity(void *arg, const kl_store_identity *i)
{
    build_ctx *c = arg;
    int err = need_mis(c);
    return err ? err
               : kl_mi_builder_identity(c->mis, i->object_id, i->client_id, i->resource_id,
                                        i->user_assigned);
}

static int on_identity_attachment(void *arg, const char *host_id_lower, const char *object_id)
{
    build_ctx *c = arg;
    int err = need_mis(c);
    return err ? err : kl_mi_builder_attach(c->mis, host_id_lower, object_id);
}

static int on_identity_header(void *arg, const kl_store_identity_header *h)
{
    build_ctx *c = arg;
    if (!c->idheaders && kl_idheaders_new(&c->idheaders) != 0)
        return KL_ENOMEM;
    return kl_idheaders_add(c->idheaders, h->hash, h->site_name, h->expires_at);
}

static int on_generation(void *arg, int64_t gen)
{
    ((build_ctx *)arg)->gen = gen;
    return 0;
}

/* Builds with c prepared by the caller (keys, memo); c is freed by the caller. */
static int build(kl_store *st, build_ctx *c, kl_snapshot **out)
{
    kl_store_visitor v = {.arg = c,
                          .generation = on_generation,
                          .account = on_account,
                          .key = on_key,
                          .deployment = on_deployment,
                          .tenant = on_tenant,
                          .principal = on_principal,
                          .role_definition = on_role,
                          .role_assignment = on_assignment,
                          .key_credential = on_key_credential,
                          .federated_credential = on_federated_credential,
                          .application = on_application,
                          .signing_key = on_signing_key,
                          .app_secret = on_app_secret,
                          .compute = on_compute,
                          .identity = on_identity,
                          .identity_attachment = on_identity_attachment,
                          .identity_header = on_identity_header,
                          .group_member = on_group_member};
    int err = kl_sts_new(&c->sts);
    if (!err)
        err = kl_store_load_all(st, &v);
    if (!err)
        err = build_rbac(c);
    if (!err && !(err = kl_sts_finish(c->sts))) {
        err = kl_snapshot_builder_sts(c->b, c->sts);
        c->sts = NULL;
    }
    if (!err && c->appcreds) {
        kl_appcreds *ac = NULL;
        err = kl_appcreds_builder_finish(c->appcreds, &ac);
        if (!err)
            err = kl_snapshot_builder_appcreds(c->b, ac);
    }
    if (!err && c->mis) {
        kl_mi_set *m = NULL;
        err = kl_mi_builder_finish(c->mis, &m);
        if (!err)
            err = kl_snapshot_builder_mis(c->b, m);
    }
    if (!err && c->idheaders && !(err = kl_idheaders_finish(c->idheaders))) {
        err = kl_snapshot_builder_idheaders(c->b, c->idheaders);
        c->idheaders = NULL;
    }
    if (!err)
        err = kl_snapshot_builder_finish(c->b, out);
    return err;
}

int kl_policy_build(kl_store *st, const kl_keys *keys, kl_snapshot **out)
{
    if (!st || !keys || !out)
        return KL_EINVAL;
    *out = NULL;
    build_ctx c = {.b = kl_snapshot_builder_new(), .keys = keys};
    if (!c.b)
        return KL_ENOMEM;
    int err = build(st, &c, out);
    ctx_free(&c);
    return err;
}

int kl_policy_rebuild(kl_store *st, const kl_keys *keys, kl_snapshot_holder *h)
{
    if (!h)
        return KL_EINVAL;
    kl_snapshot *s = NULL;
    int err = kl_policy_build(st, keys, &s);
    if (err) {
        kl_log(KL_LOG_ERROR, "snapshot_build_failed", "error", kl_err_str(err), NULL);
        return err;
    }
    kl_snapshot_publish(h, s);
    if (kl_log_enabled(KL_LOG_DEBUG)) {
        char g[24];
        snprintf(g, sizeof(g), "%llu", (unsigned long long)kl_snapshot_holder_generation(h));
        kl_log(KL_LOG_DEBUG, "snapshot_published", "generation", g, NULL);
    }
    return 0;
}

int kl_policy_new(kl_store *st, const kl_keys *keys, kl_snapshot_holder *h, kl_policy **out)
{
    if (!out)
        return KL_EINVAL;
    *out = NULL;
    if (!st || !keys || !h)
        return KL_EINVAL;
    kl_policy *p = calloc(1, sizeof(*p));
    if (!p)
        return KL_ENOMEM;
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        free(p);
        return KL_ENOMEM;
    }
    if (pthread_cond_init(&p->wake, NULL) != 0) {
        pthread_mutex_destroy(&p->mu);
        free(p);
        return KL_ENOMEM;
    }
    p->st = st;
    p->keys = keys;
    p->h = h;
    p->gen = -1;
    *out = p;
    return 0;
}

void kl_policy_set_keyusage(kl_policy *p, kl_keyusage *u)
{
    if (p) {
        pthread_mutex_lock(&p->mu);
        p->usage = u;
        pthread_mutex_unlock(&p->mu);
    }
}

static void forget_reported(kl_policy *p)
{
    for (size_t i = 0; i < p->n_reported; i++)
        free(p->reported[i]);
    free(p->reported);
    p->reported = NULL;
    p->n_reported = 0;
}

void kl_policy_stop(kl_policy *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    bool join = p->compactor_started;
    p->stopping = true;
    p->compactor_started = false;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->mu);
    if (join)
        pthread_join(p->compactor, NULL);
}

void kl_policy_free(kl_policy *p)
{
    if (!p)
        return;
    kl_policy_stop(p);
    forget_reported(p);
    kl_snapshot_release(p->last);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* Publishes s (taking the caller's reference) as what the store held at gen. */
static void publish_locked(kl_policy *p, kl_snapshot *s, int64_t gen)
{
    kl_snapshot_retain(s);
    kl_snapshot_release(p->last);
    p->last = s;
    p->gen = gen;
    kl_snapshot_publish(p->h, s);
    if (kl_log_enabled(KL_LOG_DEBUG)) {
        char g[24], sg[24];
        snprintf(g, sizeof(g), "%llu", (unsigned long long)kl_snapshot_holder_generation(p->h));
        snprintf(sg, sizeof(sg), "%lld", (long long)gen);
        kl_log(KL_LOG_DEBUG, "snapshot_published", "generation", g, "store_generation", sg, NULL);
    }
}

/* old with the RBAC index of the changed principals replaced by what the store holds
 * for them now. The assignments that can grant anything are kept exactly as a full
 * build keeps them (build_rbac): an enabled principal's, naming a role the index knows,
 * at a scope that role is assignable at. Principals and roles are as in old: a change
 * to either is logged as 'all' and never comes here. */
static int derive(kl_snapshot *old, const kl_store_changes *ch, kl_snapshot **out)
{
    const kl_rbac_index *ix = kl_snapshot_rbac(old);
    /* Members carry only the groups that held assignments when the snapshot was built
     * (policy/groups.h): a group's assignments changing means a full build. */
    for (size_t i = 0; i < ch->n_principals; i++) {
        const kl_principal *pr = kl_snapshot_principal(old, ch->principals[i]);
        if (pr && pr->type == KL_PRINCIPAL_GROUP)
            return KL_ECONFLICT;
    }
    kl_rbac_assignment *asgs = calloc(ch->n_assignments ? ch->n_assignments : 1, sizeof(*asgs));
    if (!asgs)
        return KL_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < ch->n_assignments; i++) {
        const kl_store_role_assignment *a = ch->assignments[i];
        const kl_principal *pr = kl_snapshot_principal(old, a->principal_id);
        if (!pr || !pr->enabled)
            continue;
        const kl_rbac_role_def *role = kl_rbac_index_role(ix, a->role_id);
        if (!role || !kl_rbac_role_assignable_at(role, a->scope)) {
            kl_log(KL_LOG_ERROR, "snapshot_assignment_skipped", "assignment", a->name, "reason",
                   role ? "scope not assignable" : "unknown role", NULL);
            continue;
        }
        asgs[n++] = (kl_rbac_assignment){.id = a->name,
                                         .principal_id = a->principal_id,
                                         .role_definition_id = a->role_id,
                                         .scope = a->scope};
    }
    kl_rbac_index *nix = NULL;
    char why[256];
    int err = kl_rbac_index_derive(ix, (const char *const *)ch->principals, ch->n_principals, asgs,
                                   n, &nix, why, sizeof(why));
    free(asgs);
    if (err) {
        if (err != KL_ETOOBIG)
            kl_log(KL_LOG_WARN, "snapshot_derive_failed", "reason", why, NULL);
        return err;
    }
    return kl_snapshot_derive(old, nix, out);
}

/* True once the derived index of s passes half its limits. */
static bool wants_compaction(const kl_snapshot *s)
{
    size_t na = 0, np = kl_rbac_index_overlay(kl_snapshot_rbac(s), &na);
    return 2 * np > KL_RBAC_MAX_OVERLAY_PRINCIPALS || 2 * na > KL_RBAC_MAX_OVERLAY_ASSIGNMENTS;
}

static void *compactor_main(void *arg);

/* Asks the compactor for a full rebuild, starting it if needed (mu held). When it
 * cannot start, the next derive past the limits builds in full on the caller's thread. */
static void want_compaction(kl_policy *p)
{
    if (p->stopping)
        return;
    p->compact_wanted = true;
    if (!p->compactor_started) {
        /* With every signal blocked, so a daemon's signals go to the thread that waits
         * for them, whichever thread starts this one. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        p->compactor_started = pthread_create(&p->compactor, NULL, compactor_main, p) == 0;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    pthread_cond_signal(&p->wake);
}

/* The changes since p->gen applied to p->last: 0 and *done when published (or when
 * nothing changed), 0 and !*done when a full build is needed, else an error (the store
 * could not be read). */
static int apply_changes(kl_policy *p, bool *done)
{
    *done = false;
    kl_store_changes *ch = NULL;
    int err = kl_store_load_since(p->st, p->gen, &ch);
    if (err)
        return err;
    if (ch->full)
        goto out;
    if (ch->generation == p->gen) {
        *done = true;
        goto out;
    }
    kl_snapshot *s = NULL;
    if (derive(p->last, ch, &s) == 0) {
        publish_locked(p, s, ch->generation);
        if (wants_compaction(s))
            want_compaction(p);
        *done = true;
    }
out:
    kl_store_changes_free(ch);
    return 0;
}

static void *compactor_main(void *arg)
{
    kl_policy *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->compact_wanted && !p->stopping)
            pthread_cond_wait(&p->wake, &p->mu);
        if (p->stopping)
            break;
        p->compact_wanted = false;
        pthread_mutex_unlock(&p->mu);
        /* The full build runs outside mu, so changes keep being applied meanwhile;
         * what they changed is then derived onto the fresh build before it replaces
         * them. */
        kl_snapshot *s = NULL, *d = NULL;
        build_ctx c = {.b = kl_snapshot_builder_new(), .keys = p->keys, .quiet = true};
        int err = c.b ? build(p->st, &c, &s) : KL_ENOMEM;
        int64_t gen = c.gen;
        ctx_free(&c);
        pthread_mutex_lock(&p->mu);
        if (p->stopping) {
            kl_snapshot_release(s);
            break;
        }
        kl_store_changes *ch = NULL;
        if (err || kl_snapshot_fenced(p->h) || !p->last ||
            (gen != p->gen && (kl_store_load_since(p->st, gen, &ch) != 0 || ch->full ||
                               (ch->generation != gen && derive(s, ch, &d) != 0)))) {
            /* Dropped (a fence is lifted by kl_policy_apply alone). Its full read may
             * have taken in a write made around the store that the next load_since
             * would then miss: the next apply builds in full. */
            kl_store_changes_free(ch);
            kl_snapshot_release(s);
            p->gen = -1;
            continue;
        }
        if (ch) {
            if (d) {
                kl_snapshot_release(s);
                s = d;
            }
            gen = ch->generation;
            kl_store_changes_free(ch);
        }
        publish_locked(p, s, gen);
        p->compact_wanted = false; /* asked for by derives this build already covers */
        kl_log(KL_LOG_INFO, "snapshot_compacted", NULL);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static int apply_locked(kl_policy *p, const char *scope);

int kl_policy_apply(kl_policy *p, const char *scope)
{
    if (!p)
        return KL_EINVAL;
    pthread_mutex_lock(&p->mu);
    int err = apply_locked(p, scope);
    pthread_mutex_unlock(&p->mu);
    return err;
}

static int apply_locked(kl_policy *p, const char *scope)
{
    /* Only what changed since the last build, when that can be told and nothing is
     * fenced (a fence is lifted by a full build). */
    if (p->last && p->gen >= 0 && !kl_snapshot_fenced(p->h)) {
        bool done = false;
        int err = apply_changes(p, &done);
        if (err) {
            if (scope)
                kl_snapshot_fence(p->h, scope);
            kl_log(KL_LOG_ERROR, "snapshot_build_failed", "error", kl_err_str(err), "fenced",
                   scope ? (*scope ? scope : "/") : NULL, NULL);
            return err;
        }
        if (done)
            return 0;
    }
    kl_snapshot *s = NULL;
    build_ctx c = {.b = kl_snapshot_builder_new(), .keys = p->keys, .memo = p};
    kl_snapshot_builder_keyusage(c.b, p->usage);
    int err = c.b ? build(p->st, &c, &s) : KL_ENOMEM;
    if (!err) {
        /* The memo becomes this build's broken rows: a row that was repaired and breaks
         * again (a new version) is reported again; the memory never outgrows the store. */
        forget_reported(p);
        p->reported = c.broken;
        p->n_reported = c.n_broken;
        c.broken = NULL;
        c.n_broken = 0;
    } else {
        /* What this failed build logged stays reported, so retries do not log it again. */
        for (size_t i = 0; i < c.n_broken; i++) {
            if (reported(p, c.broken[i]))
                continue;
            char **r = realloc(p->reported, (p->n_reported + 1) * sizeof(char *));
            if (!r)
                break;
            p->reported = r;
            p->reported[p->n_reported++] = c.broken[i];
            c.broken[i] = NULL;
        }
    }
    ctx_free(&c);
    if (err) {
        if (scope)
            kl_snapshot_fence(p->h, scope);
        kl_log(KL_LOG_ERROR, "snapshot_build_failed", "error", kl_err_str(err), "fenced",
               scope ? (*scope ? scope : "/") : NULL, NULL);
        return err;
    }
    publish_locked(p, s, c.gen);
    return 0;
}
