/* The account tables of the store (see store.h): accounts, their API key slots and
 * their deployments, each change one transaction, on either engine. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "store/query.h"
#include "store/store.h"

/* True if s is NULL (when allowed) or the text of a JSON object. */
static bool json_object_text(const char *s, bool null_ok)
{
    if (!s)
        return null_ok;
    json_t *j = json_loads(s, JSON_REJECT_DUPLICATES, NULL);
    bool ok = j && json_is_object(j);
    json_decref(j);
    return ok;
}

/* Looks up an account's surrogate key by name; KL_ENOTFOUND if none. */
static int account_pk(kl_store *st, const char *name, int64_t *pk)
{
    char *lname = kl_q_lower(name);
    if (!lname)
        return KL_ENOMEM;
    int err =
        kl_q_int(st, "SELECT pk FROM accounts WHERE name_lower = ?1", KL_ARGS(kl_vt(lname)), pk);
    free(lname);
    return err;
}

/* ---------------------------------------------------------------- accounts */

#define ACCOUNT_COLS                                                                               \
    "SELECT id, subscription, resource_group, name, location, kind, sku, tags, properties, "       \
    "disable_local_auth, etag, created_at, modified_at, network_acls FROM accounts "

static int check_keys(const kl_store_key *keys, size_t n)
{
    if (n > 2 || (n > 0 && !keys))
        return KL_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if ((keys[i].slot != 1 && keys[i].slot != 2) || !keys[i].sealed)
            return KL_EINVAL;
        if (i == 1 && keys[0].slot == keys[1].slot)
            return KL_EINVAL;
    }
    return 0;
}

/* Writes key slots (insert or replace) inside the caller's transaction. */
static int write_keys(kl_store *st, int64_t pk, const kl_store_key *keys, size_t n)
{
    int err = 0;
    for (size_t i = 0; !err && i < n; i++)
        err = kl_q_exec(st,
                        "INSERT INTO account_keys (account_pk, slot, sealed, key_index, "
                        "created_at) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (account_pk, slot) "
                        "DO UPDATE SET sealed = excluded.sealed, key_index = excluded.key_index, "
                        "created_at = excluded.created_at, last_used = NULL",
                        KL_ARGS(kl_vi(pk), kl_vi(keys[i].slot), kl_vt(keys[i].sealed),
                                kl_vb(keys[i].index, 32), kl_vi(keys[i].created_at)),
                        NULL);
    return err;
}

/* Inserts a new account with its keys inside the caller's transaction. */
static int insert_account(kl_store *st, const kl_store_account *a, const char *lid,
                          const char *lname, const char *const json[3], const kl_store_key *keys,
                          size_t n_keys)
{
    int64_t pk = 0;
    int err = kl_q_int(st,
                       "INSERT INTO accounts (id, id_lower, subscription, resource_group, name, "
                       "name_lower, location, kind, sku, tags, properties, disable_local_auth, "
                       "etag, created_at, modified_at, network_acls) VALUES (?1, ?2, ?3, ?4, ?5, "
                       "?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16) RETURNING pk",
                       KL_ARGS(kl_vt(a->id), kl_vt(lid), kl_vt(a->subscription),
                               kl_vt(a->resource_group), kl_vt(a->name), kl_vt(lname),
                               kl_vt(a->location), kl_vt(a->kind), kl_vt(json[0]), kl_vt(json[1]),
                               kl_vt(json[2]), kl_vi(a->disable_local_auth), kl_vt(a->etag),
                               kl_vi(a->created_at), kl_vi(a->modified_at), kl_vt(a->network_acls)),
                       &pk);
    return err ? err : write_keys(st, pk, keys, n_keys);
}

int kl_store_put_account(kl_store *st, const kl_store_account *a, const kl_store_key *keys,
                         size_t n_keys, bool *created)
{
    return kl_store_put_account_ex(st, a, keys, n_keys, NULL, created);
}

int kl_store_put_account_ex(kl_store *st, const kl_store_account *a, const kl_store_key *keys,
                            size_t n_keys, const kl_store_identity_spec *spec, bool *created)
{
    if (!st || !a || !a->id || !a->subscription || !a->resource_group || !a->name || !a->location ||
        !a->kind || !a->etag || check_keys(keys, n_keys))
        return KL_EINVAL;
    const char *json[3] = {a->sku ? a->sku : "{}", a->tags ? a->tags : "{}",
                           a->properties ? a->properties : "{}"};
    for (size_t i = 0; i < 3; i++)
        if (!json_object_text(json[i], false))
            return KL_EINVAL;
    if (!json_object_text(a->network_acls, true))
        return KL_EINVAL;
    char *lname = kl_q_lower(a->name);
    char *lid = kl_q_lower(a->id);
    char *have = NULL;
    bool was_created = false;
    int64_t before = 0;
    int err = (lname && lid) ? 0 : KL_ENOMEM;
    if (err || (err = kl_q_begin(st, true)))
        goto out;
    if (spec && (err = kl_store_root_owner_count(st, &before)))
        goto end;
    err = kl_q_text(st, "SELECT id_lower FROM accounts WHERE name_lower = ?1",
                    KL_ARGS(kl_vt(lname)), &have);
    if (err == KL_ENOTFOUND) {
        err = insert_account(st, a, lid, lname, json, keys, n_keys);
        was_created = true;
    } else if (!err && (!have || strcmp(have, lid) != 0)) {
        err = KL_ECONFLICT;
    } else if (!err) {
        err = kl_q_exec(st,
                        "UPDATE accounts SET location = ?1, kind = ?2, sku = ?3, tags = ?4, "
                        "properties = ?5, disable_local_auth = ?6, etag = ?7, modified_at = ?8, "
                        "network_acls = ?10 WHERE name_lower = ?9",
                        KL_ARGS(kl_vt(a->location), kl_vt(a->kind), kl_vt(json[0]), kl_vt(json[1]),
                                kl_vt(json[2]), kl_vi(a->disable_local_auth), kl_vt(a->etag),
                                kl_vi(a->modified_at), kl_vt(lname), kl_vt(a->network_acls)),
                        NULL);
    }
    if (!err && spec &&
        !(err = kl_store_set_host_identities(st, a->id, a->subscription, a->resource_group, a->name,
                                             spec, a->modified_at)))
        err = kl_store_check_root_owner(st, before);
end:
    err = kl_q_end(st, err);
out:
    free(lname);
    free(lid);
    free(have);
    if (!err && created)
        *created = was_created;
    return err;
}

int kl_store_get_account(kl_store *st, const char *name, kl_store_account **out)
{
    if (!st || !name || !out)
        return KL_EINVAL;
    return kl_q_one_by_lower(st, ACCOUNT_COLS "WHERE name_lower = ?1", name, &kl_map_account,
                             (void **)out);
}

int kl_store_list_accounts(kl_store *st, const char *subscription, const char *resource_group,
                           kl_store_account ***out, size_t *n)
{
    if (!st || !out || !n)
        return KL_EINVAL;
    return kl_q_list_locked(st,
                            ACCOUNT_COLS "WHERE (?1 IS NULL OR lower(subscription) = lower(?1)) "
                                         "AND (?2 IS NULL OR lower(resource_group) = lower(?2)) "
                                         "ORDER BY name_lower",
                            KL_ARGS(kl_vt(subscription), kl_vt(resource_group)), &kl_map_account,
                            (void ***)out, n);
}

int kl_store_delete_account(kl_store *st, const char *name)
{
    if (!st || !name)
        return KL_EINVAL;
    char *lname = kl_q_lower(name);
    if (!lname)
        return KL_ENOMEM;
    char *id_lower = NULL;
    int64_t changed = 0, before = 0;
    int err = kl_q_begin(st, true);
    if (err)
        goto out;
    /* Role assignments at the account or below go first (they name it only by scope),
     * with its system-assigned identity and its attachments; keys and deployments go
     * with it through ON DELETE CASCADE. */
    if (!(err = kl_store_root_owner_count(st, &before)) &&
        !(err = kl_q_text(st, "SELECT id_lower FROM accounts WHERE name_lower = ?1",
                          KL_ARGS(kl_vt(lname)), &id_lower)) &&
        !(err = id_lower ? 0 : KL_EINTERNAL) &&
        !(err = kl_store_drop_host_identities(st, id_lower)) &&
        !(err = kl_store_delete_assignments_under(st, id_lower)) &&
        !(err = kl_q_exec(st, "DELETE FROM accounts WHERE name_lower = ?1", KL_ARGS(kl_vt(lname)),
                          &changed)))
        err = changed == 0 ? KL_ENOTFOUND : kl_store_check_root_owner(st, before);
    err = kl_q_end(st, err);
out:
    free(id_lower);
    free(lname);
    return err;
}

/* ---------------------------------------------------------------- keys */

int kl_store_set_account_keys(kl_store *st, const char *name, const kl_store_key *keys, size_t n)
{
    if (!st || !name || n == 0 || check_keys(keys, n))
        return KL_EINVAL;
    int64_t pk = 0;
    int err = kl_q_begin(st, true);
    if (err)
        return err;
    if (!(err = account_pk(st, name, &pk)))
        err = write_keys(st, pk, keys, n);
    return kl_q_end(st, err);
}

int kl_store_regenerate_account_key(kl_store *st, const char *name, const kl_store_key *k)
{
    return kl_store_set_account_keys(st, name, k, 1);
}

int kl_store_record_key_usage(kl_store *st, const kl_store_key_usage *u, size_t n)
{
    if (!st || (n && !u))
        return KL_EINVAL;
    if (n == 0)
        return 0;
    int err = kl_q_begin_unannounced(st);
    if (err)
        return err;
    for (size_t i = 0; !err && i < n; i++)
        err = kl_q_exec(st,
                        "UPDATE account_keys SET last_used = ?2 WHERE key_index = ?1 AND "
                        "(last_used IS NULL OR last_used < ?2)",
                        KL_ARGS(kl_vb(u[i].index, 32), kl_vi(u[i].day)), NULL);
    return kl_q_end(st, err);
}

typedef struct key_array {
    kl_store_key *keys;
    size_t n;
} key_array;

/* Moves a mapped key into the array (at most two slots exist). */
static int take_key(void *arg, void *obj, bool *kept)
{
    key_array *ka = arg;
    if (ka->n == 2)
        return KL_EINTERNAL;
    ka->keys[ka->n++] = *(kl_store_key *)obj;
    free(obj);
    *kept = true;
    return 0;
}

int kl_store_get_account_keys(kl_store *st, const char *name, kl_store_key **out, size_t *n)
{
    if (!st || !name || !out || !n)
        return KL_EINVAL;
    *out = NULL;
    *n = 0;
    key_array ka = {calloc(2, sizeof(kl_store_key)), 0};
    if (!ka.keys)
        return KL_ENOMEM;
    int64_t pk = 0;
    int err = kl_q_begin(st, false);
    if (err)
        goto out;
    if (!(err = account_pk(st, name, &pk)))
        err = kl_q_each(st,
                        "SELECT slot, sealed, key_index, created_at, coalesce(last_used, 0) "
                        "FROM account_keys "
                        "WHERE account_pk = ?1 ORDER BY slot",
                        KL_ARGS(kl_vi(pk)), &kl_map_key, take_key, &ka);
    err = kl_q_end(st, err);
out:
    if (err) {
        kl_store_keys_free(ka.keys, 2);
        return err;
    }
    *out = ka.keys;
    *n = ka.n;
    return 0;
}

/* ---------------------------------------------------------------- deployments */

#define DEPLOYMENT_COLS                                                                            \
    "SELECT a.name, d.name, d.sku, d.model, d.backend, d.upstream_url, d.upstream_model, "         \
    "d.credential_sealed, d.created_at, d.modified_at FROM deployments d JOIN accounts a "         \
    "ON a.pk = d.account_pk "

static bool deployment_valid(const kl_store_deployment *d)
{
    if (!d->name || !d->backend || !json_object_text(d->sku, true) ||
        !json_object_text(d->model, true))
        return false;
    if (strcmp(d->backend, "echo") == 0)
        return !d->upstream_url && !d->upstream_model && !d->credential_sealed;
    if (strcmp(d->backend, "upstream") == 0)
        return d->upstream_url && d->upstream_model;
    return false;
}

int kl_store_put_deployment(kl_store *st, const char *account_name, const kl_store_deployment *d,
                            bool keep_credential, bool *created)
{
    if (!st || !account_name || !d || !deployment_valid(d))
        return KL_EINVAL;
    int64_t pk = 0, one = 0;
    bool exists = false;
    int err = kl_q_begin(st, true);
    if (err)
        return err;
    if ((err = account_pk(st, account_name, &pk)))
        goto out;
    err = kl_q_int(st, "SELECT 1 FROM deployments WHERE account_pk = ?1 AND name = ?2",
                   KL_ARGS(kl_vi(pk), kl_vt(d->name)), &one);
    exists = err == 0;
    if (err && err != KL_ENOTFOUND)
        goto out;
    /* The stored credential is kept only for the same upstream URL, so that changing
     * where requests go never sends the old credential to the new place. */
    err = kl_q_exec(
        st,
        "INSERT INTO deployments (account_pk, name, sku, model, backend, upstream_url, "
        "upstream_model, credential_sealed, created_at, modified_at) VALUES (?1, ?2, ?3, ?4, ?5, "
        "?6, ?7, ?8, ?9, ?10) ON CONFLICT (account_pk, name) DO UPDATE SET sku = excluded.sku, "
        "model = excluded.model, backend = excluded.backend, "
        "upstream_url = excluded.upstream_url, upstream_model = excluded.upstream_model, "
        "credential_sealed = CASE WHEN ?11 = 1 AND excluded.credential_sealed IS NULL "
        "AND excluded.backend = 'upstream' AND deployments.backend = 'upstream' "
        "AND deployments.upstream_url = excluded.upstream_url "
        "THEN deployments.credential_sealed ELSE excluded.credential_sealed END, "
        "modified_at = excluded.modified_at",
        KL_ARGS(kl_vi(pk), kl_vt(d->name), kl_vt(d->sku), kl_vt(d->model), kl_vt(d->backend),
                kl_vt(d->upstream_url), kl_vt(d->upstream_model), kl_vt(d->credential_sealed),
                kl_vi(d->created_at), kl_vi(d->modified_at), kl_vi(keep_credential)),
        NULL);
out:
    err = kl_q_end(st, err);
    if (!err && created)
        *created = !exists;
    return err;
}

int kl_store_get_deployment(kl_store *st, const char *account_name, const char *name,
                            kl_store_deployment **out)
{
    if (!st || !account_name || !name || !out)
        return KL_EINVAL;
    *out = NULL;
    char *lname = kl_q_lower(account_name);
    if (!lname)
        return KL_ENOMEM;
    int err = kl_q_one_locked(st, DEPLOYMENT_COLS "WHERE a.name_lower = ?1 AND d.name = ?2",
                              KL_ARGS(kl_vt(lname), kl_vt(name)), &kl_map_deployment, (void **)out);
    free(lname);
    return err;
}

int kl_store_list_deployments(kl_store *st, const char *account_name, kl_store_deployment ***out,
                              size_t *n)
{
    if (!st || !account_name || !out || !n)
        return KL_EINVAL;
    *out = NULL;
    *n = 0;
    int64_t pk = 0;
    int err = kl_q_begin(st, false);
    if (err)
        return err;
    if (!(err = account_pk(st, account_name, &pk)))
        err = kl_q_list(st, DEPLOYMENT_COLS "WHERE d.account_pk = ?1 ORDER BY d.name",
                        KL_ARGS(kl_vi(pk)), &kl_map_deployment, (void ***)out, n);
    return kl_q_end(st, err);
}

int kl_store_delete_deployment(kl_store *st, const char *account_name, const char *name)
{
    if (!st || !account_name || !name)
        return KL_EINVAL;
    char *lname = kl_q_lower(name);
    if (!lname)
        return KL_ENOMEM;
    char *dep_scope = NULL;
    int64_t pk = 0, changed = 0;
    int err = kl_q_begin(st, true);
    if (err)
        goto out;
    if (!(err = account_pk(st, account_name, &pk)) &&
        !(err = kl_q_exec(st, "DELETE FROM deployments WHERE account_pk = ?1 AND name = ?2",
                          KL_ARGS(kl_vi(pk), kl_vt(name)), &changed)) &&
        changed == 0)
        err = KL_ENOTFOUND;
    /* The deployment's ARM id, lower-cased, is the scope its assignments sit at. */
    if (!err) {
        err = kl_q_text(st, "SELECT id_lower || '/deployments/' || ?2 FROM accounts WHERE pk = ?1",
                        KL_ARGS(kl_vi(pk), kl_vt(lname)), &dep_scope);
        if (!err)
            err = dep_scope ? kl_store_delete_assignments_under(st, dep_scope) : KL_EINTERNAL;
        else if (err == KL_ENOTFOUND)
            err = KL_EINTERNAL;
    }
    err = kl_q_end(st, err);
out:
    free(dep_scope);
    free(lname);
    return err;
}

/* ---------------------------------------------------------------- loading */

/* A key row of load_all: the owning account's name, then the key. */
typedef struct key_row {
    char *account_name;
    kl_store_key key;
} key_row;

static const kl_col key_row_cols[] = {
    {KL_COL_TEXT, offsetof(key_row, account_name)},  {KL_COL_INT, offsetof(key_row, key.slot)},
    {KL_COL_SECRET, offsetof(key_row, key.sealed)},  {KL_COL_KEY32, offsetof(key_row, key.index)},
    {KL_COL_I64, offsetof(key_row, key.created_at)}, {KL_COL_I64, offsetof(key_row, key.last_used)},
};
static const kl_rowmap key_row_map = KL_ROWMAP(key_row, key_row_cols);

static int visit_account(void *arg, void *obj, bool *kept)
{
    const kl_store_visitor *v = arg;
    (void)kept;
    return v->account(v->arg, obj);
}

static int visit_key(void *arg, void *obj, bool *kept)
{
    const kl_store_visitor *v = arg;
    const key_row *r = obj;
    (void)kept;
    return v->key(v->arg, r->account_name, &r->key);
}

static int visit_deployment(void *arg, void *obj, bool *kept)
{
    const kl_store_visitor *v = arg;
    (void)kept;
    return v->deployment(v->arg, obj);
}

int kl_store_load_accounts(kl_store *st, const kl_store_visitor *v)
{
    int err = 0;
    void *arg = (void *)v;
    if (v->account)
        err = kl_q_each(st, ACCOUNT_COLS "ORDER BY name_lower", KL_NOARGS, &kl_map_account,
                        visit_account, arg);
    if (!err && v->key)
        err = kl_q_each(st,
                        "SELECT a.name, k.slot, k.sealed, k.key_index, k.created_at, "
                        "coalesce(k.last_used, 0) "
                        "FROM account_keys k JOIN accounts a ON a.pk = k.account_pk "
                        "ORDER BY a.name_lower, k.slot",
                        KL_NOARGS, &key_row_map, visit_key, arg);
    if (!err && v->deployment)
        err = kl_q_each(st, DEPLOYMENT_COLS "ORDER BY a.name_lower, d.name", KL_NOARGS,
                        &kl_map_deployment, visit_deployment, arg);
    return err;
}
