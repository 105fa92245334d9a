/* The managed-identity tables of the store (see store.h): sites and VMs, managed
 * identities (a ManagedIdentity principal and what ties it to ARM) and the attachments of
 * user-assigned identities to hosts. Each change is one transaction; an identity's
 * principal, role assignments and attachments go together (ON DELETE CASCADE from the
 * principal), and the root owner rule is checked inside every transaction that can
 * delete a principal. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/ids.h"
#include "common/err.h"
#include "common/util.h"
#include "store/query.h"
#include "store/store.h"

/* ---------------------------------------------------------------- helpers */

static bool json_object_text(const char *s)
{
    json_t *j = s ? json_loads(s, JSON_REJECT_DUPLICATES, NULL) : NULL;
    bool ok = j && json_is_object(j);
    json_decref(j);
    return ok;
}

static bool valid_kind(const char *k)
{
    return k && (strcmp(k, KL_STORE_COMPUTE_SITE) == 0 || strcmp(k, KL_STORE_COMPUTE_VM) == 0);
}

/* NULL (nothing to set) is valid. */
static bool spec_valid(const kl_store_identity_spec *spec)
{
    if (!spec)
        return true;
    if (spec->system &&
        (!kl_uuid_valid_str(spec->system_object_id) || !kl_uuid_valid_str(spec->system_client_id)))
        return false;
    if (spec->n_user > 0 && !spec->user)
        return false;
    for (size_t i = 0; i < spec->n_user; i++) {
        if (!spec->user[i] || !*spec->user[i])
            return false;
        for (size_t j = 0; j < i; j++)
            if (kl_str_ieq(spec->user[i], spec->user[j]))
                return false;
    }
    return true;
}

#define IDENTITY_COLS                                                                              \
    "SELECT m.resource_id, m.user_assigned, m.subscription, m.resource_group, m.name, "            \
    "m.location, m.tags, p.object_id, p.app_id, m.created_at, m.modified_at "                      \
    "FROM managed_identities m JOIN principals p ON p.pk = m.principal_pk "

/* Inserts a managed identity (its principal, then its row) inside the caller's
 * transaction. */
static int insert_identity(kl_store *st, const kl_store_identity *i, const char *rid_lower)
{
    char *oid = kl_q_lower(i->object_id);
    char *cid = kl_q_lower(i->client_id);
    int64_t ppk = 0;
    int err = (oid && cid) ? 0 : KL_ENOMEM;
    if (!err)
        err = kl_store_insert_principal(st, oid, KL_PRINCIPAL_TYPE_MI, i->name, cid, 0, true,
                                        i->created_at, &ppk);
    if (!err)
        err = kl_q_exec(st,
                        "INSERT INTO managed_identities (principal_pk, user_assigned, resource_id, "
                        "resource_id_lower, subscription, resource_group, name, location, tags, "
                        "created_at, modified_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
                        "?11)",
                        KL_ARGS(kl_vi(ppk), kl_vi(i->user_assigned), kl_vt(i->resource_id),
                                kl_vt(rid_lower), kl_vt(i->subscription), kl_vt(i->resource_group),
                                kl_vt(i->name), kl_vt(i->location), kl_vt(i->tags),
                                kl_vi(i->created_at), kl_vi(i->modified_at)),
                        NULL);
    /* The principal was new, so a unique violation here is a resource id in use. */
    if (err == KL_ECONFLICT)
        err = KL_EEXIST;
    free(oid);
    free(cid);
    return err;
}

int kl_store_drop_host_identities(kl_store *st, const char *host_lower)
{
    int err = kl_q_exec(st,
                        "DELETE FROM principals WHERE pk IN (SELECT principal_pk FROM "
                        "managed_identities WHERE resource_id_lower = ?1 AND user_assigned = 0)",
                        KL_ARGS(kl_vt(host_lower)), NULL);
    if (!err)
        err = kl_q_exec(st, "DELETE FROM identity_attachments WHERE host_id_lower = ?1",
                        KL_ARGS(kl_vt(host_lower)), NULL);
    return err;
}

/* Attaches the user-assigned identity user (an ARM id, any case) to host_lower. */
static int attach(kl_store *st, const char *host_lower, const char *user)
{
    char *ul = kl_q_lower(user);
    if (!ul)
        return KL_ENOMEM;
    int64_t pk = 0;
    int err = kl_q_int(st,
                       "SELECT pk FROM managed_identities WHERE resource_id_lower = ?1 AND "
                       "user_assigned = 1",
                       KL_ARGS(kl_vt(ul)), &pk);
    if (!err)
        err = kl_q_exec(st,
                        "INSERT INTO identity_attachments (host_id_lower, identity_pk) "
                        "VALUES (?1, ?2)",
                        KL_ARGS(kl_vt(host_lower), kl_vi(pk)), NULL);
    free(ul);
    return err == KL_ECONFLICT ? KL_EINVAL : err;
}

int kl_store_set_host_identities(kl_store *st, const char *host_id, const char *subscription,
                                 const char *resource_group, const char *name,
                                 const kl_store_identity_spec *spec, int64_t now)
{
    if (!spec_valid(spec))
        return KL_EINVAL;
    char *hl = kl_q_lower(host_id);
    if (!hl)
        return KL_ENOMEM;
    int64_t ppk = 0;
    int err = kl_q_int(st,
                       "SELECT principal_pk FROM managed_identities WHERE resource_id_lower = ?1 "
                       "AND user_assigned = 0",
                       KL_ARGS(kl_vt(hl)), &ppk);
    bool have = err == 0;
    if (err == KL_ENOTFOUND)
        err = 0;
    if (!err && spec->system && !have) {
        kl_store_identity i = {.resource_id = (char *)host_id,
                               .user_assigned = false,
                               .subscription = (char *)subscription,
                               .resource_group = (char *)resource_group,
                               .name = (char *)name,
                               .location = "",
                               .tags = "{}",
                               .object_id = (char *)spec->system_object_id,
                               .client_id = (char *)spec->system_client_id,
                               .created_at = now,
                               .modified_at = now};
        err = insert_identity(st, &i, hl);
    } else if (!err && !spec->system && have) {
        /* Its role assignments and its row go through the principal's cascade. */
        err = kl_q_exec(st, "DELETE FROM principals WHERE pk = ?1", KL_ARGS(kl_vi(ppk)), NULL);
    }
    if (!err)
        err = kl_q_exec(st, "DELETE FROM identity_attachments WHERE host_id_lower = ?1",
                        KL_ARGS(kl_vt(hl)), NULL);
    for (size_t i = 0; !err && i < spec->n_user; i++)
        err = attach(st, hl, spec->user[i]);
    free(hl);
    return err;
}

/* ---------------------------------------------------------------- sites and VMs */

#define COMPUTE_COLS                                                                               \
    "SELECT kind, id, subscription, resource_group, name, location, tags, properties, etag, "      \
    "created_at, modified_at FROM compute_resources "

int kl_store_put_compute(kl_store *st, const kl_store_compute *c,
                         const kl_store_identity_spec *spec, bool *created)
{
    if (!st || !c || !valid_kind(c->kind) || !c->id || !c->subscription || !c->resource_group ||
        !c->name || !*c->name || !c->location || !c->etag || !spec_valid(spec))
        return KL_EINVAL;
    const char *tags = c->tags ? c->tags : "{}";
    const char *props = c->properties ? c->properties : "{}";
    if (!json_object_text(tags) || !json_object_text(props))
        return KL_EINVAL;
    char *lname = kl_q_lower(c->name);
    char *lid = kl_q_lower(c->id);
    char *have = NULL;
    bool was_created = false;
    int64_t before = 0;
    int err = (lname && lid) ? 0 : KL_ENOMEM;
    if (err || (err = kl_q_begin(st, true)))
        goto out;
    if ((err = kl_store_root_owner_count(st, &before)))
        goto end;
    err =
        kl_q_text(st, "SELECT id_lower FROM compute_resources WHERE kind = ?1 AND name_lower = ?2",
                  KL_ARGS(kl_vt(c->kind), kl_vt(lname)), &have);
    if (err == KL_ENOTFOUND) {
        was_created = true;
        err = kl_q_exec(st,
                        "INSERT INTO compute_resources (kind, id, id_lower, subscription, "
                        "resource_group, name, name_lower, location, tags, properties, etag, "
                        "created_at, modified_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
                        "?11, ?12, ?13)",
                        KL_ARGS(kl_vt(c->kind), kl_vt(c->id), kl_vt(lid), kl_vt(c->subscription),
                                kl_vt(c->resource_group), kl_vt(c->name), kl_vt(lname),
                                kl_vt(c->location), kl_vt(tags), kl_vt(props), kl_vt(c->etag),
                                kl_vi(c->created_at), kl_vi(c->modified_at)),
                        NULL);
    } else if (!err && (!have || strcmp(have, lid) != 0)) {
        err = KL_ECONFLICT;
    } else if (!err) {
        err = kl_q_exec(st,
                        "UPDATE compute_resources SET location = ?1, tags = ?2, properties = ?3, "
                        "etag = ?4, modified_at = ?5 WHERE id_lower = ?6",
                        KL_ARGS(kl_vt(c->location), kl_vt(tags), kl_vt(props), kl_vt(c->etag),
                                kl_vi(c->modified_at), kl_vt(lid)),
                        NULL);
    }
    if (!err && spec)
        err = kl_store_set_host_identities(st, c->id, c->subscription, c->resource_group, c->name,
                                           spec, c->modified_at);
    if (!err)
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

int kl_store_get_compute(kl_store *st, const char *kind, const char *name, kl_store_compute **out)
{
    if (!st || !valid_kind(kind) || !name || !out)
        return KL_EINVAL;
    *out = NULL;
    char *lname = kl_q_lower(name);
    if (!lname)
        return KL_ENOMEM;
    int err = kl_q_one_locked(st, COMPUTE_COLS "WHERE kind = ?1 AND name_lower = ?2",
                              KL_ARGS(kl_vt(kind), kl_vt(lname)), &kl_map_compute, (void **)out);
    free(lname);
    return err;
}

int kl_store_list_computes(kl_store *st, const char *kind, const char *subscription,
                           const char *resource_group, kl_store_compute ***out, size_t *n)
{
    if (!st || !valid_kind(kind) || !out || !n)
        return KL_EINVAL;
    return kl_q_list_locked(st,
                            COMPUTE_COLS "WHERE kind = ?1 AND "
                                         "(?2 IS NULL OR lower(subscription) = lower(?2)) "
                                         "AND (?3 IS NULL OR lower(resource_group) = lower(?3)) "
                                         "ORDER BY name_lower",
                            KL_ARGS(kl_vt(kind), kl_vt(subscription), kl_vt(resource_group)),
                            &kl_map_compute, (void ***)out, n);
}

int kl_store_delete_compute(kl_store *st, const char *kind, const char *name)
{
    if (!st || !valid_kind(kind) || !name)
        return KL_EINVAL;
    char *lname = kl_q_lower(name);
    if (!lname)
        return KL_ENOMEM;
    char *lid = NULL;
    int64_t before = 0;
    int err = kl_q_begin(st, true);
    if (err)
        goto out;
    if (!(err = kl_store_root_owner_count(st, &before)) &&
        !(err = kl_q_text(st,
                          "SELECT id_lower FROM compute_resources WHERE kind = ?1 AND "
                          "name_lower = ?2",
                          KL_ARGS(kl_vt(kind), kl_vt(lname)), &lid)) &&
        !(err = lid ? 0 : KL_EINTERNAL) && !(err = kl_store_drop_host_identities(st, lid)) &&
        !(err = kl_store_delete_assignments_under(st, lid)) &&
        !(err = kl_q_exec(st, "DELETE FROM compute_resources WHERE id_lower = ?1",
                          KL_ARGS(kl_vt(lid)), NULL)))
        err = kl_store_check_root_owner(st, before);
    err = kl_q_end(st, err);
out:
    free(lid);
    free(lname);
    return err;
}

/* ---------------------------------------------------------------- identities */

int kl_store_host_identities(kl_store *st, const char *host_id, kl_store_identity ***out, size_t *n)
{
    if (!st || !host_id || !out || !n)
        return KL_EINVAL;
    *out = NULL;
    *n = 0;
    char *hl = kl_q_lower(host_id);
    if (!hl)
        return KL_ENOMEM;
    kl_store_identity *sys = NULL, **users = NULL, **all = NULL;
    size_t nu = 0;
    int err = kl_q_begin(st, false);
    if (err)
        goto out;
    err = kl_q_one(st, IDENTITY_COLS "WHERE m.resource_id_lower = ?1 AND m.user_assigned = 0",
                   KL_ARGS(kl_vt(hl)), &kl_map_identity, (void **)&sys);
    if (err == KL_ENOTFOUND)
        err = 0;
    if (!err)
        err = kl_q_list(st,
                        IDENTITY_COLS "JOIN identity_attachments a ON a.identity_pk = m.pk "
                                      "WHERE a.host_id_lower = ?1 ORDER BY m.resource_id_lower",
                        KL_ARGS(kl_vt(hl)), &kl_map_identity, (void ***)&users, &nu);
    err = kl_q_end(st, err);
    if (err)
        goto out;
    size_t total = nu + (sys ? 1 : 0);
    if (total == 0)
        goto out;
    if (!(all = calloc(total, sizeof(*all)))) {
        err = KL_ENOMEM;
        goto out;
    }
    size_t k = 0;
    if (sys)
        all[k++] = sys;
    sys = NULL;
    for (size_t i = 0; i < nu; i++)
        all[k++] = users[i];
    free(users);
    users = NULL;
    nu = 0;
    *out = all;
    *n = total;
out:
    kl_store_identity_free(sys);
    kl_store_identities_free(users, nu);
    free(hl);
    return err;
}

int kl_store_put_user_identity(kl_store *st, const kl_store_identity *i, bool *created)
{
    if (!st || !i || !i->resource_id || !i->subscription || !i->resource_group || !i->name ||
        !*i->name || !i->location || !kl_uuid_valid_str(i->object_id) ||
        !kl_uuid_valid_str(i->client_id))
        return KL_EINVAL;
    kl_store_identity row = *i;
    row.user_assigned = true;
    row.tags = i->tags ? i->tags : "{}";
    if (!json_object_text(row.tags))
        return KL_EINVAL;
    char *lid = kl_q_lower(i->resource_id);
    int64_t ua = 0;
    bool was_created = false;
    int err = lid ? 0 : KL_ENOMEM;
    if (err || (err = kl_q_begin(st, true)))
        goto out;
    err = kl_q_int(st, "SELECT user_assigned FROM managed_identities WHERE resource_id_lower = ?1",
                   KL_ARGS(kl_vt(lid)), &ua);
    if (err == KL_ENOTFOUND) {
        was_created = true;
        err = insert_identity(st, &row, lid);
    } else if (!err && ua != 1) {
        err = KL_ECONFLICT;
    } else if (!err) {
        err = kl_q_exec(
            st,
            "UPDATE managed_identities SET location = ?1, tags = ?2, modified_at = ?3 "
            "WHERE resource_id_lower = ?4",
            KL_ARGS(kl_vt(row.location), kl_vt(row.tags), kl_vi(row.modified_at), kl_vt(lid)),
            NULL);
    }
    err = kl_q_end(st, err);
out:
    free(lid);
    if (!err && created)
        *created = was_created;
    return err;
}

int kl_store_get_identity(kl_store *st, const char *resource_id, kl_store_identity **out)
{
    if (!st || !resource_id || !out)
        return KL_EINVAL;
    return kl_q_one_by_lower(st, IDENTITY_COLS "WHERE m.resource_id_lower = ?1", resource_id,
                             &kl_map_identity, (void **)out);
}

int kl_store_list_user_identities(kl_store *st, const char *subscription,
                                  const char *resource_group, kl_store_identity ***out, size_t *n)
{
    if (!st || !out || !n)
        return KL_EINVAL;
    return kl_q_list_locked(st,
                            IDENTITY_COLS "WHERE m.user_assigned = 1 AND "
                                          "(?1 IS NULL OR lower(m.subscription) = lower(?1)) AND "
                                          "(?2 IS NULL OR lower(m.resource_group) = lower(?2)) "
                                          "ORDER BY m.resource_id_lower",
                            KL_ARGS(kl_vt(subscription), kl_vt(resource_group)), &kl_map_identity,
                            (void ***)out, n);
}

int kl_store_delete_user_identity(kl_store *st, const char *resource_id)
{
    if (!st || !resource_id)
        return KL_EINVAL;
    char *lid = kl_q_lower(resource_id);
    if (!lid)
        return KL_ENOMEM;
    int64_t before = 0, changed = 0;
    int err = kl_q_begin(st, true);
    if (err)
        goto out;
    /* The principal's cascade takes its role assignments, its row and every attachment;
     * assignments at the identity's own scope (who may assign it) go with the resource. */
    if (!(err = kl_store_root_owner_count(st, &before)) &&
        !(err = kl_q_exec(st,
                          "DELETE FROM principals WHERE pk IN (SELECT principal_pk FROM "
                          "managed_identities WHERE resource_id_lower = ?1 AND user_assigned = 1)",
                          KL_ARGS(kl_vt(lid)), &changed)) &&
        !(err = changed == 0 ? KL_ENOTFOUND : 0) &&
        !(err = kl_store_delete_assignments_under(st, lid)))
        err = kl_store_check_root_owner(st, before);
    err = kl_q_end(st, err);
out:
    free(lid);
    return err;
}

/* ---------------------------------------------------------------- loading */

typedef struct attachment_row {
    char *host_id_lower;
    char *object_id;
} attachment_row;

static const kl_col attachment_cols[] = {
    {KL_COL_TEXT, offsetof(attachment_row, host_id_lower)},
    {KL_COL_TEXT, offsetof(attachment_row, object_id)},
};
static const kl_rowmap attachment_map = KL_ROWMAP(attachment_row, attachment_cols);

static int visit_compute(void *arg, void *obj, bool *kept)
{
    const kl_store_visitor *v = arg;
    (void)kept;
    return v->compute(v->arg, obj);
}

static int visit_identity(void *arg, void *obj, bool *kept)
{
    const kl_store_visitor *v = arg;
    (void)kept;
    return v->identity(v->arg, obj);
}

static int visit_attachment(void *arg, void *obj, bool *kept)
{
    const kl_store_visitor *v = arg;
    const attachment_row *r = obj;
    (void)kept;
    return v->identity_attachment(v->arg, r->host_id_lower, r->object_id);
}

int kl_store_load_identities(kl_store *st, const kl_store_visitor *v)
{
    int err = 0;
    void *arg = (void *)v;
    if (v->compute)
        err = kl_q_each(st, COMPUTE_COLS "ORDER BY kind, name_lower", KL_NOARGS, &kl_map_compute,
                        visit_compute, arg);
    if (!err && v->identity)
        err = kl_q_each(st, IDENTITY_COLS "ORDER BY m.resource_id_lower", KL_NOARGS,
                        &kl_map_identity, visit_identity, arg);
    if (!err && v->identity_attachment)
        err = kl_q_each(st,
                        "SELECT a.host_id_lower, p.object_id FROM identity_attachments a "
                        "JOIN managed_identities m ON m.pk = a.identity_pk "
                        "JOIN principals p ON p.pk = m.principal_pk "
                        "ORDER BY a.host_id_lower, p.object_id",
                        KL_NOARGS, &attachment_map, visit_attachment, arg);
    return err;
}

/* ---------------------------------------------------------------- freeing */

void kl_store_compute_free(kl_store_compute *c)
{
    kl_map_free(&kl_map_compute, c);
}

void kl_store_computes_free(kl_store_compute **c, size_t n)
{
    kl_map_free_all(&kl_map_compute, (void **)c, n);
}

void kl_store_identity_free(kl_store_identity *i)
{
    kl_map_free(&kl_map_identity, i);
}

void kl_store_identities_free(kl_store_identity **i, size_t n)
{
    kl_map_free_all(&kl_map_identity, (void **)i, n);
}
