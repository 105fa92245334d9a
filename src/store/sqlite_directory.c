/* The directory tables of the SQLite store (see store.h): the tenant and the first-start
 * step, principals, and application registrations with their service principals. Each
 * change is one transaction; the root owner rule is checked inside it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "store/sqlite_internal.h"
#include "store/store.h"

/* ---------------------------------------------------------------- helpers */

static bool valid_guid(const char *s)
{
    return s && kl_uuid_valid(s, strlen(s));
}

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
    return t && (strcmp(t, "ServicePrincipal") == 0 || strcmp(t, "ManagedIdentity") == 0 ||
                 strcmp(t, "User") == 0 || strcmp(t, "Group") == 0);
}

static bool type_has_app_id(const char *t)
{
    return strcmp(t, "ServicePrincipal") == 0 || strcmp(t, "ManagedIdentity") == 0;
}

/* Runs a one-row, one-integer query with up to two text parameters. KL_ENOTFOUND when
 * it returns no row. */
static int query_int(kl_store *st, const char *sql, const char *p1, const char *p2, int64_t *out)
{
    sqlite3_stmt *s = NULL;
    int err = kl_sq_prepare(st, sql, &s);
    if (!err && p1)
        err = kl_sq_bind_text(s, 1, p1);
    if (!err && p2)
        err = kl_sq_bind_text(s, 2, p2);
    if (!err) {
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW)
            *out = sqlite3_column_int64(s, 0);
        else if (rc == SQLITE_DONE)
            err = KL_ENOTFOUND;
        else
            err = kl_sq_map_rc(st->db, rc, "query");
    }
    sqlite3_finalize(s);
    return err;
}

int kl_sq_root_owner_count(kl_store *st, int64_t *n)
{
    return query_int(st,
                     "SELECT count(*) FROM role_assignments ra JOIN principals p "
                     "ON p.pk = ra.principal_pk WHERE ra.scope_lower = '/' AND ra.role_id = "
                     "'" KL_STORE_OWNER_ROLE_ID "' AND p.account_enabled = 1",
                     NULL, NULL, n);
}

int kl_sq_check_root_owner(kl_store *st, int64_t before)
{
    int64_t after = 0;
    int err = kl_sq_root_owner_count(st, &after);
    if (err)
        return err;
    return (before > 0 && after == 0) ? KL_EPERM : 0;
}

/* ---------------------------------------------------------------- tenant */

int kl_sq_seed_directory(kl_store *st)
{
    char tenant[KL_UUID_LEN + 1], admin[KL_UUID_LEN + 1], asg[KL_UUID_LEN + 1];
    sqlite3_stmt *s = NULL;
    int64_t n = 0, now = kl_now_unix();
    int err = kl_sq_begin(st, true);
    if (err)
        return err;
    if ((err = query_int(st, "SELECT count(*) FROM tenant", NULL, NULL, &n)) || n > 0)
        goto out;
    if ((err = kl_uuid_v4(tenant)) || (err = kl_uuid_v4(admin)) || (err = kl_uuid_v4(asg)))
        goto out;
    if ((err = kl_sq_prepare(st,
                             "INSERT INTO tenant (id, tenant_id, display_name, admin_object_id, "
                             "created_at) VALUES (1, ?1, ?2, ?3, ?4)",
                             &s)) ||
        (err = kl_sq_bind_text(s, 1, tenant)) ||
        (err = kl_sq_bind_text(s, 2, KL_STORE_TENANT_DISPLAY_NAME)) ||
        (err = kl_sq_bind_text(s, 3, admin)) || (err = kl_sq_bind_int(s, 4, now)) ||
        (err = kl_sq_step_done(st, s, "seed_tenant")))
        goto out;
    sqlite3_finalize(s);
    s = NULL;
    if ((err = kl_sq_prepare(st,
                             "INSERT INTO principals (object_id, type, display_name, app_id, "
                             "application_pk, account_enabled, created_at) "
                             "VALUES (?1, 'User', ?2, NULL, NULL, 1, ?3)",
                             &s)) ||
        (err = kl_sq_bind_text(s, 1, admin)) ||
        (err = kl_sq_bind_text(s, 2, KL_STORE_ADMIN_DISPLAY_NAME)) ||
        (err = kl_sq_bind_int(s, 3, now)) || (err = kl_sq_step_done(st, s, "seed_admin")))
        goto out;
    int64_t admin_pk = sqlite3_last_insert_rowid(st->db);
    sqlite3_finalize(s);
    s = NULL;
    if ((err = kl_sq_prepare(st,
                             "INSERT INTO role_assignments (name, scope, scope_lower, "
                             "principal_pk, role_id, description, created_at, updated_at, "
                             "created_by, updated_by) VALUES (?1, '/', '/', ?2, "
                             "'" KL_STORE_OWNER_ROLE_ID "', NULL, ?3, ?3, NULL, NULL)",
                             &s)) ||
        (err = kl_sq_bind_text(s, 1, asg)) || (err = kl_sq_bind_int(s, 2, admin_pk)) ||
        (err = kl_sq_bind_int(s, 3, now)))
        goto out;
    err = kl_sq_step_done(st, s, "seed_owner");
out:
    sqlite3_finalize(s);
    return kl_sq_end(st, err);
}

int kl_store_get_tenant(kl_store *st, kl_store_tenant **out)
{
    if (!st || !out)
        return KL_EINVAL;
    *out = NULL;
    sqlite3_stmt *s = NULL;
    kl_store_tenant *t = NULL;
    kl_sq_lock(st);
    int err = kl_sq_prepare(
        st, "SELECT tenant_id, display_name, admin_object_id, created_at FROM tenant", &s);
    if (!err) {
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            t = calloc(1, sizeof(*t));
            if (!t)
                err = KL_ENOMEM;
            else if (!(err = kl_sq_col_dup(s, 0, &t->tenant_id)) &&
                     !(err = kl_sq_col_dup(s, 1, &t->display_name)) &&
                     !(err = kl_sq_col_dup(s, 2, &t->admin_object_id)))
                t->created_at = sqlite3_column_int64(s, 3);
        } else {
            err = rc == SQLITE_DONE ? KL_ENOTFOUND : kl_sq_map_rc(st->db, rc, "get_tenant");
        }
    }
    sqlite3_finalize(s);
    kl_sq_unlock(st);
    if (err) {
        kl_store_tenant_free(t);
        return err;
    }
    *out = t;
    return 0;
}

/* ---------------------------------------------------------------- principals */

#define PRINCIPAL_COLS                                                                             \
    "p.object_id, p.type, p.display_name, p.app_id, a.object_id, p.account_enabled, "              \
    "p.created_at FROM principals p LEFT JOIN applications a ON a.pk = p.application_pk"

static int read_principal(sqlite3_stmt *s, kl_store_principal **out)
{
    kl_store_principal *p = calloc(1, sizeof(*p));
    if (!p)
        return KL_ENOMEM;
    int err;
    if ((err = kl_sq_col_dup(s, 0, &p->object_id)) || (err = kl_sq_col_dup(s, 1, &p->type)) ||
        (err = kl_sq_col_dup(s, 2, &p->display_name)) || (err = kl_sq_col_dup(s, 3, &p->app_id)) ||
        (err = kl_sq_col_dup(s, 4, &p->application_id))) {
        kl_store_principal_free(p);
        return err;
    }
    p->enabled = sqlite3_column_int(s, 5) != 0;
    p->created_at = sqlite3_column_int64(s, 6);
    *out = p;
    return 0;
}

/* Inserts a principal row inside the caller's transaction. application_pk 0 = none. */
static int insert_principal(kl_store *st, const char *oid, const char *type, const char *name,
                            const char *app_id, int64_t application_pk, bool enabled,
                            int64_t created_at)
{
    sqlite3_stmt *s = NULL;
    int err = kl_sq_prepare(st,
                            "INSERT INTO principals (object_id, type, display_name, app_id, "
                            "application_pk, account_enabled, created_at) "
                            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                            &s);
    if (!err && !(err = kl_sq_bind_text(s, 1, oid)) && !(err = kl_sq_bind_text(s, 2, type)) &&
        !(err = kl_sq_bind_text(s, 3, name)) && !(err = kl_sq_bind_text(s, 4, app_id)) &&
        !(err = application_pk ? kl_sq_bind_int(s, 5, application_pk)
                               : (sqlite3_bind_null(s, 5) == SQLITE_OK ? 0 : KL_ENOMEM)) &&
        !(err = kl_sq_bind_int(s, 6, enabled)) && !(err = kl_sq_bind_int(s, 7, created_at)))
        err = kl_sq_step_done(st, s, "insert_principal");
    sqlite3_finalize(s);
    return err == KL_ECONFLICT ? KL_EEXIST : err;
}

int kl_store_create_principal(kl_store *st, const kl_store_principal *p)
{
    if (!st || !p || !valid_guid(p->object_id) || !valid_type(p->type) ||
        !valid_display_name(p->display_name))
        return KL_EINVAL;
    if (type_has_app_id(p->type) != (p->app_id != NULL) || (p->app_id && !valid_guid(p->app_id)))
        return KL_EINVAL;
    char *oid = kl_sq_lower_dup(p->object_id);
    char *app = p->app_id ? kl_sq_lower_dup(p->app_id) : NULL;
    int err = (oid && (app || !p->app_id)) ? 0 : KL_ENOMEM;
    if (err)
        goto out_free;
    kl_sq_lock(st);
    if (!(err = kl_sq_begin(st, true)))
        err = kl_sq_end(st, insert_principal(st, oid, p->type, p->display_name, app, 0, p->enabled,
                                             p->created_at));
    kl_sq_unlock(st);
out_free:
    free(oid);
    free(app);
    return err;
}

/* Reads the one principal sql (with ?1) selects for key, lower-cased. */
static int get_principal_by(kl_store *st, const char *sql, const char *key,
                            kl_store_principal **out)
{
    *out = NULL;
    char *lk = kl_sq_lower_dup(key);
    if (!lk)
        return KL_ENOMEM;
    sqlite3_stmt *s = NULL;
    int err = kl_sq_prepare(st, sql, &s);
    if (!err && !(err = kl_sq_bind_text(s, 1, lk))) {
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW)
            err = read_principal(s, out);
        else
            err = rc == SQLITE_DONE ? KL_ENOTFOUND : kl_sq_map_rc(st->db, rc, "get_principal");
    }
    sqlite3_finalize(s);
    free(lk);
    return err;
}

int kl_store_get_principal(kl_store *st, const char *object_id, kl_store_principal **out)
{
    if (!st || !object_id || !out)
        return KL_EINVAL;
    kl_sq_lock(st);
    int err =
        get_principal_by(st, "SELECT " PRINCIPAL_COLS " WHERE p.object_id = ?1", object_id, out);
    kl_sq_unlock(st);
    return err;
}

int kl_store_list_principals(kl_store *st, const char *type, kl_store_principal ***out, size_t *n)
{
    if (!st || !out || !n)
        return KL_EINVAL;
    *out = NULL;
    *n = 0;
    void **arr = NULL;
    size_t cnt = 0, cap = 0;
    sqlite3_stmt *s = NULL;
    kl_sq_lock(st);
    int err = kl_sq_prepare(st,
                            "SELECT " PRINCIPAL_COLS " WHERE (?1 IS NULL OR p.type = ?1) "
                            "ORDER BY p.object_id",
                            &s);
    if (!err)
        err = kl_sq_bind_text(s, 1, type);
    int rc = SQLITE_DONE;
    while (!err && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        kl_store_principal *p = NULL;
        if ((err = read_principal(s, &p)))
            break;
        if ((err = kl_sq_push(&arr, &cnt, &cap, p)))
            kl_store_principal_free(p);
    }
    if (!err && rc != SQLITE_DONE)
        err = kl_sq_map_rc(st->db, rc, "list_principals");
    sqlite3_finalize(s);
    kl_sq_unlock(st);
    if (err) {
        kl_store_principals_free((kl_store_principal **)arr, cnt);
        return err;
    }
    *out = (kl_store_principal **)arr;
    *n = cnt;
    return 0;
}

/* Runs a one-parameter change inside a write transaction guarded by the root owner rule;
 * KL_ENOTFOUND when it changed nothing. */
static int guarded_change(kl_store *st, const char *sql, const char *key, int64_t flag,
                          bool use_flag)
{
    char *lk = kl_sq_lower_dup(key);
    if (!lk)
        return KL_ENOMEM;
    sqlite3_stmt *s = NULL;
    int64_t before = 0;
    kl_sq_lock(st);
    int err = kl_sq_begin(st, true);
    if (err)
        goto out;
    if (!(err = kl_sq_root_owner_count(st, &before)) && !(err = kl_sq_prepare(st, sql, &s)) &&
        !(err = kl_sq_bind_text(s, 1, lk)) && !(err = use_flag ? kl_sq_bind_int(s, 2, flag) : 0) &&
        !(err = kl_sq_step_done(st, s, "change")) && sqlite3_changes(st->db) == 0)
        err = KL_ENOTFOUND;
    sqlite3_finalize(s);
    if (!err)
        err = kl_sq_check_root_owner(st, before);
    err = kl_sq_end(st, err);
out:
    kl_sq_unlock(st);
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
    kl_sq_lock(st);
    int err =
        get_principal_by(st, "SELECT " PRINCIPAL_COLS " WHERE p.object_id = ?1", object_id, &p);
    kl_sq_unlock(st);
    if (err)
        return err;
    bool owned = p->application_id != NULL;
    kl_store_principal_free(p);
    if (owned)
        return KL_ECONFLICT;
    /* Its role assignments go through ON DELETE CASCADE. The application check is
     * repeated in the statement so the deletion cannot race a re-parenting. */
    return guarded_change(st,
                          "DELETE FROM principals WHERE object_id = ?1 AND application_pk IS NULL",
                          object_id, 0, false);
}

/* ---------------------------------------------------------------- applications */

#define APPLICATION_COLS                                                                           \
    "a.object_id, a.app_id, a.display_name, p.object_id, p.account_enabled, a.created_at "         \
    "FROM applications a JOIN principals p ON p.application_pk = a.pk"

static int read_application(sqlite3_stmt *s, kl_store_application **out)
{
    kl_store_application *a = calloc(1, sizeof(*a));
    if (!a)
        return KL_ENOMEM;
    int err;
    if ((err = kl_sq_col_dup(s, 0, &a->object_id)) || (err = kl_sq_col_dup(s, 1, &a->app_id)) ||
        (err = kl_sq_col_dup(s, 2, &a->display_name)) ||
        (err = kl_sq_col_dup(s, 3, &a->sp_object_id))) {
        kl_store_application_free(a);
        return err;
    }
    a->enabled = sqlite3_column_int(s, 4) != 0;
    a->created_at = sqlite3_column_int64(s, 5);
    *out = a;
    return 0;
}

int kl_store_create_application(kl_store *st, const kl_store_application *a)
{
    if (!st || !a || !valid_guid(a->object_id) || !valid_guid(a->app_id) ||
        !valid_guid(a->sp_object_id) || !valid_display_name(a->display_name))
        return KL_EINVAL;
    char *oid = kl_sq_lower_dup(a->object_id);
    char *app = kl_sq_lower_dup(a->app_id);
    char *sp = kl_sq_lower_dup(a->sp_object_id);
    char *lname = kl_sq_lower_dup(a->display_name);
    sqlite3_stmt *s = NULL;
    int err = (oid && app && sp && lname) ? 0 : KL_ENOMEM;
    if (err)
        goto out_free;
    kl_sq_lock(st);
    if ((err = kl_sq_begin(st, true)))
        goto out_unlock;
    int64_t dummy = 0;
    err = query_int(st, "SELECT 1 FROM applications WHERE display_name_lower = ?1", lname, NULL,
                    &dummy);
    if (err == 0) {
        err = KL_ECONFLICT;
        goto out_txn;
    }
    if (err != KL_ENOTFOUND)
        goto out_txn;
    if ((err = kl_sq_prepare(st,
                             "INSERT INTO applications (object_id, app_id, display_name, "
                             "display_name_lower, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                             &s)) ||
        (err = kl_sq_bind_text(s, 1, oid)) || (err = kl_sq_bind_text(s, 2, app)) ||
        (err = kl_sq_bind_text(s, 3, a->display_name)) || (err = kl_sq_bind_text(s, 4, lname)) ||
        (err = kl_sq_bind_int(s, 5, a->created_at)))
        goto out_txn;
    /* The name was free, so a unique violation here is an id already in use. */
    if ((err = kl_sq_step_done(st, s, "insert_application"))) {
        if (err == KL_ECONFLICT)
            err = KL_EEXIST;
        goto out_txn;
    }
    err = insert_principal(st, sp, "ServicePrincipal", a->display_name, app,
                           sqlite3_last_insert_rowid(st->db), a->enabled, a->created_at);
out_txn:
    sqlite3_finalize(s);
    err = kl_sq_end(st, err);
out_unlock:
    kl_sq_unlock(st);
out_free:
    free(oid);
    free(app);
    free(sp);
    free(lname);
    return err;
}

static int get_application_by(kl_store *st, const char *where, const char *key,
                              kl_store_application **out)
{
    if (!st || !key || !out)
        return KL_EINVAL;
    *out = NULL;
    char sql[512];
    snprintf(sql, sizeof(sql), "SELECT " APPLICATION_COLS " WHERE %s", where);
    char *lk = kl_sq_lower_dup(key);
    if (!lk)
        return KL_ENOMEM;
    sqlite3_stmt *s = NULL;
    kl_sq_lock(st);
    int err = kl_sq_prepare(st, sql, &s);
    if (!err && !(err = kl_sq_bind_text(s, 1, lk))) {
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW)
            err = read_application(s, out);
        else
            err = rc == SQLITE_DONE ? KL_ENOTFOUND : kl_sq_map_rc(st->db, rc, "get_application");
    }
    sqlite3_finalize(s);
    kl_sq_unlock(st);
    free(lk);
    return err;
}

int kl_store_get_application(kl_store *st, const char *id_or_app_id, kl_store_application **out)
{
    return get_application_by(st, "a.object_id = ?1 OR a.app_id = ?1", id_or_app_id, out);
}

int kl_store_get_application_by_name(kl_store *st, const char *display_name,
                                     kl_store_application **out)
{
    return get_application_by(st, "a.display_name_lower = ?1", display_name, out);
}

int kl_store_list_applications(kl_store *st, kl_store_application ***out, size_t *n)
{
    if (!st || !out || !n)
        return KL_EINVAL;
    *out = NULL;
    *n = 0;
    void **arr = NULL;
    size_t cnt = 0, cap = 0;
    sqlite3_stmt *s = NULL;
    kl_sq_lock(st);
    int err = kl_sq_prepare(st, "SELECT " APPLICATION_COLS " ORDER BY a.display_name_lower", &s);
    int rc = SQLITE_DONE;
    while (!err && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        kl_store_application *a = NULL;
        if ((err = read_application(s, &a)))
            break;
        if ((err = kl_sq_push(&arr, &cnt, &cap, a)))
            kl_store_application_free(a);
    }
    if (!err && rc != SQLITE_DONE)
        err = kl_sq_map_rc(st->db, rc, "list_applications");
    sqlite3_finalize(s);
    kl_sq_unlock(st);
    if (err) {
        kl_store_applications_free((kl_store_application **)arr, cnt);
        return err;
    }
    *out = (kl_store_application **)arr;
    *n = cnt;
    return 0;
}

int kl_store_update_application(kl_store *st, const char *object_id, const char *display_name,
                                const bool *enabled)
{
    if (!st || !object_id || (display_name && !valid_display_name(display_name)))
        return KL_EINVAL;
    char *oid = kl_sq_lower_dup(object_id);
    char *lname = display_name ? kl_sq_lower_dup(display_name) : NULL;
    sqlite3_stmt *s = NULL;
    int64_t pk = 0, before = 0, other = 0;
    int err = (oid && (lname || !display_name)) ? 0 : KL_ENOMEM;
    if (err)
        goto out_free;
    kl_sq_lock(st);
    if ((err = kl_sq_begin(st, true)))
        goto out_unlock;
    if ((err = query_int(st, "SELECT pk FROM applications WHERE object_id = ?1", oid, NULL, &pk)) ||
        (err = kl_sq_root_owner_count(st, &before)))
        goto out_txn;
    if (display_name) {
        err = query_int(st, "SELECT pk FROM applications WHERE display_name_lower = ?1", lname,
                        NULL, &other);
        if (err == 0 && other != pk) {
            err = KL_ECONFLICT;
            goto out_txn;
        }
        if (err && err != KL_ENOTFOUND)
            goto out_txn;
        if ((err = kl_sq_prepare(st,
                                 "UPDATE applications SET display_name = ?1, "
                                 "display_name_lower = ?2 WHERE pk = ?3",
                                 &s)) ||
            (err = kl_sq_bind_text(s, 1, display_name)) || (err = kl_sq_bind_text(s, 2, lname)) ||
            (err = kl_sq_bind_int(s, 3, pk)) || (err = kl_sq_step_done(st, s, "update_app")))
            goto out_txn;
        sqlite3_finalize(s);
        s = NULL;
        if ((err = kl_sq_prepare(
                 st, "UPDATE principals SET display_name = ?1 WHERE application_pk = ?2", &s)) ||
            (err = kl_sq_bind_text(s, 1, display_name)) || (err = kl_sq_bind_int(s, 2, pk)) ||
            (err = kl_sq_step_done(st, s, "update_app_sp")))
            goto out_txn;
        sqlite3_finalize(s);
        s = NULL;
    }
    if (enabled) {
        if ((err = kl_sq_prepare(st,
                                 "UPDATE principals SET account_enabled = ?1 "
                                 "WHERE application_pk = ?2",
                                 &s)) ||
            (err = kl_sq_bind_int(s, 1, *enabled)) || (err = kl_sq_bind_int(s, 2, pk)) ||
            (err = kl_sq_step_done(st, s, "update_app_enabled")))
            goto out_txn;
    }
    err = kl_sq_check_root_owner(st, before);
out_txn:
    sqlite3_finalize(s);
    err = kl_sq_end(st, err);
out_unlock:
    kl_sq_unlock(st);
out_free:
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

int kl_sq_load_directory(kl_store *st, const kl_store_visitor *v)
{
    int err = 0;
    sqlite3_stmt *s = NULL;
    int rc = SQLITE_DONE;
    if (v->tenant) {
        err = kl_sq_prepare(
            st, "SELECT tenant_id, display_name, admin_object_id, created_at FROM tenant", &s);
        while (!err && (rc = sqlite3_step(s)) == SQLITE_ROW) {
            kl_store_tenant t = {0};
            if (!(err = kl_sq_col_dup(s, 0, &t.tenant_id)) &&
                !(err = kl_sq_col_dup(s, 1, &t.display_name)) &&
                !(err = kl_sq_col_dup(s, 2, &t.admin_object_id))) {
                t.created_at = sqlite3_column_int64(s, 3);
                err = v->tenant(v->arg, &t);
            }
            free(t.tenant_id);
            free(t.display_name);
            free(t.admin_object_id);
        }
        if (!err && rc != SQLITE_DONE)
            err = kl_sq_map_rc(st->db, rc, "load_tenant");
        sqlite3_finalize(s);
        s = NULL;
    }
    if (!err && v->principal) {
        rc = SQLITE_DONE;
        err = kl_sq_prepare(st, "SELECT " PRINCIPAL_COLS " ORDER BY p.object_id", &s);
        while (!err && (rc = sqlite3_step(s)) == SQLITE_ROW) {
            kl_store_principal *p = NULL;
            if ((err = read_principal(s, &p)))
                break;
            err = v->principal(v->arg, p);
            kl_store_principal_free(p);
        }
        if (!err && rc != SQLITE_DONE)
            err = kl_sq_map_rc(st->db, rc, "load_principals");
        sqlite3_finalize(s);
    }
    return err;
}

/* ---------------------------------------------------------------- freeing */

void kl_store_tenant_free(kl_store_tenant *t)
{
    if (!t)
        return;
    free(t->tenant_id);
    free(t->display_name);
    free(t->admin_object_id);
    free(t);
}

void kl_store_principal_free(kl_store_principal *p)
{
    if (!p)
        return;
    free(p->object_id);
    free(p->type);
    free(p->display_name);
    free(p->app_id);
    free(p->application_id);
    free(p);
}

void kl_store_principals_free(kl_store_principal **p, size_t n)
{
    if (!p)
        return;
    for (size_t i = 0; i < n; i++)
        kl_store_principal_free(p[i]);
    free(p);
}

void kl_store_application_free(kl_store_application *a)
{
    if (!a)
        return;
    free(a->object_id);
    free(a->app_id);
    free(a->display_name);
    free(a->sp_object_id);
    free(a);
}

void kl_store_applications_free(kl_store_application **a, size_t n)
{
    if (!a)
        return;
    for (size_t i = 0; i < n; i++)
        kl_store_application_free(a[i]);
    free(a);
}
