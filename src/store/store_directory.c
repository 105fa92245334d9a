/* The directory tables of the store (see store.h): the tenant and the first-start step,
 * principals, and application registrations with their service principals. Each
 * change is one transaction; the root owner rule is checked inside it. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ids.h"
#include "common/limits.h"
#include "common/err.h"
#include "common/util.h"
#include "store/query.h"
#include "store/store.h"

/* ---------------------------------------------------------------- helpers */

/* 1..KL_STORE_MAX_DISPLAY_NAME bytes without control characters. */
static bool valid_display_name(const char *s)
{
    size_t n = s ? strnlen(s, KL_STORE_MAX_DISPLAY_NAME + 1) : 0;
    if (n == 0 || n > KL_STORE_MAX_DISPLAY_NAME)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

static bool valid_type(const char *t)
{
    return t && (strcmp(t, KL_PRINCIPAL_TYPE_SP) == 0 || strcmp(t, KL_PRINCIPAL_TYPE_MI) == 0 ||
                 strcmp(t, KL_PRINCIPAL_TYPE_USER) == 0 || strcmp(t, KL_PRINCIPAL_TYPE_GROUP) == 0);
}

static bool type_has_app_id(const char *t)
{
    return strcmp(t, KL_PRINCIPAL_TYPE_SP) == 0 || strcmp(t, KL_PRINCIPAL_TYPE_MI) == 0;
}

int kl_store_root_owner_count(kl_store *st, int64_t *n)
{
    return kl_q_int(st,
                    "SELECT count(*) FROM role_assignments ra JOIN principals p "
                    "ON p.pk = ra.principal_pk WHERE ra.scope_lower = '/' AND ra.role_id = "
                    "'" KL_STORE_OWNER_ROLE_ID "' AND p.account_enabled = 1",
                    KL_NOARGS, n);
}

int kl_store_check_root_owner(kl_store *st, int64_t before)
{
    int64_t after = 0;
    int err = kl_store_root_owner_count(st, &after);
    if (err)
        return err;
    return (before > 0 && after == 0) ? KL_EPERM : 0;
}

/* ---------------------------------------------------------------- tenant */

/* Inserts a principal row inside the caller's transaction (application_pk 0 = none);
 * *pk (may be NULL) receives its surrogate key. */
static int insert_principal(kl_store *st, const char *oid, const char *type, const char *name,
                            const char *app_id, int64_t application_pk, bool enabled,
                            int64_t created_at, int64_t *pk)
{
    int64_t dummy = 0;
    int err = kl_q_int(st,
                       "INSERT INTO principals (object_id, type, display_name, app_id, "
                       "application_pk, account_enabled, created_at) "
                       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING pk",
                       KL_ARGS(kl_vt(oid), kl_vt(type), kl_vt(name), kl_vt(app_id),
                               application_pk ? kl_vi(application_pk) : kl_vnull_int(),
                               kl_vi(enabled), kl_vi(created_at)),
                       pk ? pk : &dummy);
    return err == KL_ECONFLICT ? KL_EEXIST : err;
}

int kl_store_insert_principal(kl_store *st, const char *oid, const char *type, const char *name,
                              const char *app_id, int64_t application_pk, bool enabled,
                              int64_t created_at, int64_t *pk)
{
    return insert_principal(st, oid, type, name, app_id, application_pk, enabled, created_at, pk);
}

int kl_store_seed_directory(kl_store *st)
{
    char tenant[KL_UUID_LEN + 1], admin[KL_UUID_LEN + 1], asg[KL_UUID_LEN + 1];
    int64_t n = 0, now = kl_now_unix(), admin_pk = 0;
    int err = kl_q_begin(st, true);
    if (err)
        return err;
    if ((err = kl_q_int(st, "SELECT count(*) FROM tenant", KL_NOARGS, &n)))
        goto out;
    if (n > 0) {
        /* Nothing to write: roll back rather than commit, so that a node starting does
         * not move the generation and make every other node rebuild. */
        (void)kl_q_end(st, KL_EEXIST);
        return 0;
    }
    if ((err = kl_uuid_v4(tenant)) || (err = kl_uuid_v4(admin)) || (err = kl_uuid_v4(asg)))
        goto out;
    if ((err = kl_q_exec(
             st,
             "INSERT INTO tenant (id, tenant_id, display_name, admin_object_id, "
             "created_at) VALUES (1, ?1, ?2, ?3, ?4)",
             KL_ARGS(kl_vt(tenant), kl_vt(KL_STORE_TENANT_DISPLAY_NAME), kl_vt(admin), kl_vi(now)),
             NULL)) ||
        (err = insert_principal(st, admin, KL_PRINCIPAL_TYPE_USER, KL_STORE_ADMIN_DISPLAY_NAME,
                                NULL, 0, true, now, &admin_pk)))
        goto out;
    err = kl_q_exec(st,
                    "INSERT INTO role_assignments (name, scope, scope_lower, principal_pk, "
                    "role_id, description, created_at, updated_at, created_by, updated_by) "
                    "VALUES (?1, '/', '/', ?2, '" KL_STORE_OWNER_ROLE_ID "', NULL, ?3, ?3, NULL, "
                    "NULL)",
                    KL_ARGS(kl_vt(asg), kl_vi(admin_pk), kl_vi(now)), NULL);
out:
    return kl_q_end(st, err);
}

#define TENANT_COLS                                                                                \
    "SELECT tenant_id, display_name, admin_object_id, created_at, password_grant FROM tenant"

int kl_store_get_tenant(kl_store *st, kl_store_tenant **out)
{
    if (!st || !out)
        return KL_EINVAL;
    return kl_q_one_locked(st, TENANT_COLS, KL_NOARGS, &kl_map_tenant, (void **)out);
}

/* ---------------------------------------------------------------- principals */

#define PRINCIPAL_COLS                                                                             \
    "SELECT p.object_id, p.type, p.display_name, p.app_id, a.object_id, p.account_enabled, "       \
    "p.created_at FROM principals p LEFT JOIN applications a ON a.pk = p.application_pk "

int kl_store_create_principal(kl_store *st, const kl_store_principal *p)
{
    if (!st || !p || !kl_uuid_valid_str(p->object_id) || !valid_type(p->type) ||
        !valid_display_name(p->display_name))
        return KL_EINVAL;
    if (type_has_app_id(p->type) != (p->app_id != NULL) ||
        (p->app_id && !kl_uuid_valid_str(p->app_id)))
        return KL_EINVAL;
    char *oid = kl_q_lower(p->object_id);
    char *app = p->app_id ? kl_q_lower(p->app_id) : NULL;
    int err = (oid && (app || !p->app_id)) ? 0 : KL_ENOMEM;
    if (!err && !(err = kl_q_begin(st, true)))
        err = kl_q_end(st, insert_principal(st, oid, p->type, p->display_name, app, 0, p->enabled,
                                            p->created_at, NULL));
    free(oid);
    free(app);
    return err;
}

/* Reads the principal with this object id (lower-cased), the caller holding the lock. */
static int get_principal(kl_store *st, const char *object_id, kl_store_principal **out)
{
    char *lk = kl_q_lower(object_id);
    if (!lk)
        return KL_ENOMEM;
    int err = kl_q_one(st, PRINCIPAL_COLS "WHERE p.object_id = ?1", KL_ARGS(kl_vt(lk)),
                       &kl_map_principal, (void **)out);
    free(lk);
    return err;
}

int kl_store_get_principal(kl_store *st, const char *object_id, kl_store_principal **out)
{
    if (!st || !object_id || !out)
        return KL_EINVAL;
    *out = NULL;
    kl_q_lock(st);
    int err = get_principal(st, object_id, out);
    kl_q_unlock(st);
    return err;
}

int kl_store_list_principals(kl_store *st, const char *type, kl_store_principal ***out, size_t *n)
{
    if (!st || !out || !n)
        return KL_EINVAL;
    return kl_q_list_locked(st,
                            PRINCIPAL_COLS "WHERE (?1 IS NULL OR p.type = ?1) "
                                           "ORDER BY p.object_id",
                            KL_ARGS(kl_vt(type)), &kl_map_principal, (void ***)out, n);
}

/* Runs a change keyed by one lower-cased id (?1, and ?2 = flag when use_flag) inside a
 * write transaction guarded by the root owner rule; KL_ENOTFOUND when it changed
 * nothing. */
static int guarded_change(kl_store *st, const char *sql, const char *key, int64_t flag,
                          bool use_flag)
{
    char *lk = kl_q_lower(key);
    if (!lk)
        return KL_ENOMEM;
    int64_t before = 0, changed = 0;
    kl_val args[2] = {kl_vt(lk), kl_vi(flag)};
    int err = kl_q_begin(st, true);
    if (err)
        goto out;
    if (!(err = kl_store_root_owner_count(st, &before)) &&
        !(err = kl_q_exec(st, sql, args, use_flag ? 2 : 1, &changed)) && changed == 0)
        err = KL_ENOTFOUND;
    if (!err)
        err = kl_store_check_root_owner(st, before);
    err = kl_q_end(st, err);
out:
    free(lk);
    return err;
}

int kl_store_set_principal_enabled(kl_store *st, const char *object_id, bool enabled)
{
    if (!st || !object_id)
        return KL_EINVAL;
    return guarded_change(st, "UPDATE principals SET account_enabled = ?2 WHERE object_id = ?1",
                          object_id, enabled, true);
}

int kl_store_delete_principal(kl_store *st, const char *object_id)
{
    if (!st || !object_id)
        return KL_EINVAL;
    kl_store_principal *p = NULL;
    int err = kl_store_get_principal(st, object_id, &p);
    if (err)
        return err;
    bool owned = p->application_id != NULL;
    kl_store_principal_free(p);
    if (owned)
        return KL_ECONFLICT;
    /* Its role assignments go through ON DELETE CASCADE. A managed identity's principal
     * goes only with its identity (its resource, or its host), so it is left here and the
     * caller told so. */
    err = guarded_change(st,
                         "DELETE FROM principals WHERE object_id = ?1 AND application_pk IS NULL "
                         "AND pk NOT IN (SELECT principal_pk FROM managed_identities)",
                         object_id, 0, false);
    return err == KL_ENOTFOUND ? KL_ECONFLICT : err;
}

/* ---------------------------------------------------------------- applications */

#define APPLICATION_COLS                                                                           \
    "SELECT a.object_id, a.app_id, a.display_name, p.object_id, "                                  \
    "COALESCE(p.account_enabled, 0), a.created_at, a.public_client, a.web_redirect_uris, "         \
    "a.public_redirect_uris FROM applications a "                                                  \
    "LEFT JOIN principals p ON p.application_pk = a.pk "

int kl_store_create_application(kl_store *st, const kl_store_application *a)
{
    if (!st || !a || !kl_uuid_valid_str(a->object_id) || !kl_uuid_valid_str(a->app_id) ||
        (a->sp_object_id && !kl_uuid_valid_str(a->sp_object_id)) ||
        !valid_display_name(a->display_name))
        return KL_EINVAL;
    char *oid = kl_q_lower(a->object_id);
    char *app = kl_q_lower(a->app_id);
    char *sp = a->sp_object_id ? kl_q_lower(a->sp_object_id) : NULL;
    char *lname = kl_q_lower(a->display_name);
    int64_t dummy = 0, pk = 0;
    int err = (oid && app && (sp || !a->sp_object_id) && lname) ? 0 : KL_ENOMEM;
    if (err || (err = kl_q_begin(st, true)))
        goto out;
    err = kl_q_int(st, "SELECT 1 FROM applications WHERE display_name_lower = ?1",
                   KL_ARGS(kl_vt(lname)), &dummy);
    if (err == 0)
        err = KL_ECONFLICT;
    else if (err == KL_ENOTFOUND) {
        err = kl_q_int(st,
                       "INSERT INTO applications (object_id, app_id, display_name, "
                       "display_name_lower, created_at) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING pk",
                       KL_ARGS(kl_vt(oid), kl_vt(app), kl_vt(a->display_name), kl_vt(lname),
                               kl_vi(a->created_at)),
                       &pk);
        /* The name was free, so a unique violation here is an id already in use. */
        if (err == KL_ECONFLICT)
            err = KL_EEXIST;
        if (!err && sp)
            err = insert_principal(st, sp, KL_PRINCIPAL_TYPE_SP, a->display_name, app, pk,
                                   a->enabled, a->created_at, NULL);
    }
    err = kl_q_end(st, err);
out:
    free(oid);
    free(app);
    free(sp);
    free(lname);
    return err;
}

int kl_store_create_service_principal(kl_store *st, const char *id_or_app_id,
                                      const char *sp_object_id, bool enabled, int64_t created_at)
{
    if (!st || !id_or_app_id || !kl_uuid_valid_str(sp_object_id))
        return KL_EINVAL;
    char *key = kl_q_lower(id_or_app_id);
    char *sp = kl_q_lower(sp_object_id);
    kl_store_application *a = NULL;
    int64_t pk = 0, dummy = 0;
    int err = (key && sp) ? 0 : KL_ENOMEM;
    if (err || (err = kl_q_begin(st, true)))
        goto out;
    err = kl_q_one(st, APPLICATION_COLS "WHERE a.object_id = ?1 OR a.app_id = ?1",
                   KL_ARGS(kl_vt(key)), &kl_map_application, (void **)&a);
    if (!err && a->sp_object_id)
        err = KL_ECONFLICT;
    if (!err)
        err = kl_q_int(st, "SELECT pk FROM applications WHERE object_id = ?1",
                       KL_ARGS(kl_vt(a->object_id)), &pk);
    /* An app id is unique among principals too (a managed identity may not share it). */
    if (!err) {
        err = kl_q_int(st, "SELECT 1 FROM principals WHERE app_id = ?1", KL_ARGS(kl_vt(a->app_id)),
                       &dummy);
        err = err == 0 ? KL_ECONFLICT : err == KL_ENOTFOUND ? 0 : err;
    }
    if (!err)
        err = insert_principal(st, sp, KL_PRINCIPAL_TYPE_SP, a->display_name, a->app_id, pk,
                               enabled, created_at, NULL);
    err = kl_q_end(st, err);
out:
    kl_store_application_free(a);
    free(key);
    free(sp);
    return err;
}

static int get_application_by(kl_store *st, const char *sql, const char *key,
                              kl_store_application **out)
{
    if (!st || !key || !out)
        return KL_EINVAL;
    return kl_q_one_by_lower(st, sql, key, &kl_map_application, (void **)out);
}

int kl_store_get_application(kl_store *st, const char *id_or_app_id, kl_store_application **out)
{
    return get_application_by(st, APPLICATION_COLS "WHERE a.object_id = ?1 OR a.app_id = ?1",
                              id_or_app_id, out);
}

int kl_store_get_application_by_name(kl_store *st, const char *display_name,
                                     kl_store_application **out)
{
    return get_application_by(st, APPLICATION_COLS "WHERE a.display_name_lower = ?1", display_name,
                              out);
}

int kl_store_list_applications(kl_store *st, kl_store_application ***out, size_t *n)
{
    if (!st || !out || !n)
        return KL_EINVAL;
    return kl_q_list_locked(st, APPLICATION_COLS "ORDER BY a.display_name_lower", KL_NOARGS,
                            &kl_map_application, (void ***)out, n);
}

/* Renames application pk and its service principal, inside the caller's transaction. */
static int rename_application(kl_store *st, int64_t pk, const char *display_name, const char *lname)
{
    int64_t other = 0;
    int err = kl_q_int(st, "SELECT pk FROM applications WHERE display_name_lower = ?1",
                       KL_ARGS(kl_vt(lname)), &other);
    if (err == 0 && other != pk)
        return KL_ECONFLICT;
    if (err && err != KL_ENOTFOUND)
        return err;
    if ((err = kl_q_exec(st,
                         "UPDATE applications SET display_name = ?1, display_name_lower = ?2 "
                         "WHERE pk = ?3",
                         KL_ARGS(kl_vt(display_name), kl_vt(lname), kl_vi(pk)), NULL)))
        return err;
    return kl_q_exec(st, "UPDATE principals SET display_name = ?1 WHERE application_pk = ?2",
                     KL_ARGS(kl_vt(display_name), kl_vi(pk)), NULL);
}

int kl_store_update_application(kl_store *st, const char *object_id, const char *display_name,
                                const bool *enabled)
{
    if (!st || !object_id || (display_name && !valid_display_name(display_name)))
        return KL_EINVAL;
    char *oid = kl_q_lower(object_id);
    char *lname = display_name ? kl_q_lower(display_name) : NULL;
    int64_t pk = 0, before = 0;
    int err = (oid && (lname || !display_name)) ? 0 : KL_ENOMEM;
    if (err || (err = kl_q_begin(st, true)))
        goto out;
    if (!(err = kl_q_int(st, "SELECT pk FROM applications WHERE object_id = ?1",
                         KL_ARGS(kl_vt(oid)), &pk)) &&
        !(err = kl_store_root_owner_count(st, &before)) &&
        !(err = display_name ? rename_application(st, pk, display_name, lname) : 0) &&
        !(err = enabled ? kl_q_exec(st,
                                    "UPDATE principals SET account_enabled = ?1 "
                                    "WHERE application_pk = ?2",
                                    KL_ARGS(kl_vi(*enabled), kl_vi(pk)), NULL)
                        : 0))
        err = kl_store_check_root_owner(st, before);
    err = kl_q_end(st, err);
out:
    free(oid);
    free(lname);
    return err;
}

int kl_store_delete_application(kl_store *st, const char *object_id)
{
    if (!st || !object_id)
        return KL_EINVAL;
    /* The service principal goes through its application_pk cascade, and its role
     * assignments through theirs. */
    return guarded_change(st, "DELETE FROM applications WHERE object_id = ?1", object_id, 0, false);
}

/* ---------------------------------------------------------------- loading */

static int visit_tenant(void *arg, void *obj, bool *kept)
{
    const kl_store_visitor *v = arg;
    (void)kept;
    return v->tenant(v->arg, obj);
}

static int visit_principal(void *arg, void *obj, bool *kept)
{
    const kl_store_visitor *v = arg;
    (void)kept;
    return v->principal(v->arg, obj);
}

static int visit_application(void *arg, void *obj, bool *kept)
{
    const kl_store_visitor *v = arg;
    (void)kept;
    return v->application(v->arg, obj);
}

int kl_store_load_directory(kl_store *st, const kl_store_visitor *v)
{
    int err = 0;
    if (v->tenant)
        err = kl_q_each(st, TENANT_COLS, KL_NOARGS, &kl_map_tenant, visit_tenant, (void *)v);
    if (!err && v->principal)
        err = kl_q_each(st, PRINCIPAL_COLS "ORDER BY p.object_id", KL_NOARGS, &kl_map_principal,
                        visit_principal, (void *)v);
    /* Only the applications user sign-in needs something of. */
    if (!err && v->application)
        err = kl_q_each(st,
                        APPLICATION_COLS "WHERE a.public_client = 1 OR a.web_redirect_uris <> '[]' "
                                         "OR a.public_redirect_uris <> '[]' ORDER BY a.app_id",
                        KL_NOARGS, &kl_map_application, visit_application, (void *)v);
    return err;
}

/* A JSON array of at most KL_MAX_REDIRECT_URIS strings. */
static bool valid_uri_list(const char *json)
{
    json_t *a = json_loads(json, 0, NULL);
    bool ok = json_is_array(a) && json_array_size(a) <= KL_MAX_REDIRECT_URIS;
    for (size_t i = 0; ok && i < json_array_size(a); i++)
        ok = json_is_string(json_array_get(a, i));
    json_decref(a);
    return ok;
}

int kl_store_set_application_client(kl_store *st, const char *object_id, const bool *public_client,
                                    const char *web_redirect_uris, const char *public_redirect_uris)
{
    if (!st || !object_id || (web_redirect_uris && !valid_uri_list(web_redirect_uris)) ||
        (public_redirect_uris && !valid_uri_list(public_redirect_uris)))
        return KL_EINVAL;
    char *oid = kl_q_lower(object_id);
    if (!oid)
        return KL_ENOMEM;
    int64_t pk = 0;
    int err = kl_q_begin(st, true);
    if (err)
        goto out;
    err =
        kl_q_int(st, "SELECT pk FROM applications WHERE object_id = ?1", KL_ARGS(kl_vt(oid)), &pk);
    if (!err && public_client)
        err = kl_q_exec(st, "UPDATE applications SET public_client = ?1 WHERE pk = ?2",
                        KL_ARGS(kl_vi(*public_client), kl_vi(pk)), NULL);
    if (!err && web_redirect_uris)
        err = kl_q_exec(st, "UPDATE applications SET web_redirect_uris = ?1 WHERE pk = ?2",
                        KL_ARGS(kl_vt(web_redirect_uris), kl_vi(pk)), NULL);
    if (!err && public_redirect_uris)
        err = kl_q_exec(st, "UPDATE applications SET public_redirect_uris = ?1 WHERE pk = ?2",
                        KL_ARGS(kl_vt(public_redirect_uris), kl_vi(pk)), NULL);
    err = kl_q_end(st, err);
out:
    free(oid);
    return err;
}

int kl_store_set_password_grant(kl_store *st, bool enabled)
{
    if (!st)
        return KL_EINVAL;
    int err = kl_q_begin(st, true);
    if (err)
        return err;
    int64_t changed = 0;
    err = kl_q_exec(st, "UPDATE tenant SET password_grant = ?1 WHERE id = 1",
                    KL_ARGS(kl_vi(enabled)), &changed);
    if (!err && changed == 0)
        err = KL_ENOTFOUND;
    return kl_q_end(st, err);
}
