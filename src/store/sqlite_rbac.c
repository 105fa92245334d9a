/* The role tables of the SQLite store (see store.h): custom role definitions and role
 * assignments, the scope cascade used when a resource is deleted, and their part of
 * load_all. Scope semantics (what covers what) live in src/rbac; here a scope is text,
 * compared in lower case, and "below" means "starts with it and a '/'". */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "store/sqlite_internal.h"
#include "store/store.h"

static bool valid_guid(const char *s)
{
    return s && kl_uuid_valid(s, strlen(s));
}

static bool json_array_text(const char *s)
{
    if (!s)
        return false;
    json_t *j = json_loads(s, JSON_REJECT_DUPLICATES, NULL);
    bool ok = j && json_is_array(j);
    json_decref(j);
    return ok;
}

/* Looks up one integer for a text key; KL_ENOTFOUND when there is no row. */
static int lookup_pk(kl_store *st, const char *sql, const char *key, int64_t *pk)
{
    sqlite3_stmt *s = NULL;
    int err = kl_sq_prepare(st, sql, &s);
    if (!err && !(err = kl_sq_bind_text(s, 1, key))) {
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW)
            *pk = sqlite3_column_int64(s, 0);
        else
            err = rc == SQLITE_DONE ? KL_ENOTFOUND : kl_sq_map_rc(st->db, rc, "lookup");
    }
    sqlite3_finalize(s);
    return err;
}

/* ---------------------------------------------------------------- role definitions */

#define ROLE_COLS                                                                                  \
    "role_id, role_name, description, assignable_scopes, permissions, created_at, updated_at "     \
    "FROM role_definitions"

static int read_role(sqlite3_stmt *s, kl_store_role_definition **out)
{
    kl_store_role_definition *r = calloc(1, sizeof(*r));
    if (!r)
        return KL_ENOMEM;
    int err;
    if ((err = kl_sq_col_dup(s, 0, &r->role_id)) || (err = kl_sq_col_dup(s, 1, &r->role_name)) ||
        (err = kl_sq_col_dup(s, 2, &r->description)) ||
        (err = kl_sq_col_dup(s, 3, &r->assignable_scopes)) ||
        (err = kl_sq_col_dup(s, 4, &r->permissions))) {
        kl_store_role_definition_free(r);
        return err;
    }
    r->created_at = sqlite3_column_int64(s, 5);
    r->updated_at = sqlite3_column_int64(s, 6);
    *out = r;
    return 0;
}

int kl_store_put_role_definition(kl_store *st, const kl_store_role_definition *rd, bool *created)
{
    if (!st || !rd || !valid_guid(rd->role_id) || !rd->role_name || !*rd->role_name ||
        !json_array_text(rd->assignable_scopes) || !json_array_text(rd->permissions))
        return KL_EINVAL;
    char *id = kl_sq_lower_dup(rd->role_id);
    char *lname = kl_sq_lower_dup(rd->role_name);
    sqlite3_stmt *s = NULL;
    int64_t pk = 0, other = 0;
    bool exists = false;
    int err = (id && lname) ? 0 : KL_ENOMEM;
    if (err)
        goto out_free;
    kl_sq_lock(st);
    if ((err = kl_sq_begin(st, true)))
        goto out_unlock;
    err = lookup_pk(st, "SELECT pk FROM role_definitions WHERE role_id = ?1", id, &pk);
    if (err && err != KL_ENOTFOUND)
        goto out_txn;
    exists = err == 0;
    err =
        lookup_pk(st, "SELECT pk FROM role_definitions WHERE role_name_lower = ?1", lname, &other);
    if (err == 0 && (!exists || other != pk)) {
        err = KL_ECONFLICT;
        goto out_txn;
    }
    if (err && err != KL_ENOTFOUND)
        goto out_txn;
    if ((err = kl_sq_prepare(st,
                             "INSERT INTO role_definitions (role_id, role_name, role_name_lower, "
                             "description, assignable_scopes, permissions, created_at, "
                             "updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
                             "ON CONFLICT (role_id) DO UPDATE SET role_name = excluded.role_name, "
                             "role_name_lower = excluded.role_name_lower, "
                             "description = excluded.description, "
                             "assignable_scopes = excluded.assignable_scopes, "
                             "permissions = excluded.permissions, "
                             "updated_at = excluded.updated_at",
                             &s)) ||
        (err = kl_sq_bind_text(s, 1, id)) || (err = kl_sq_bind_text(s, 2, rd->role_name)) ||
        (err = kl_sq_bind_text(s, 3, lname)) ||
        (err = kl_sq_bind_text(s, 4, rd->description ? rd->description : "")) ||
        (err = kl_sq_bind_text(s, 5, rd->assignable_scopes)) ||
        (err = kl_sq_bind_text(s, 6, rd->permissions)) ||
        (err = kl_sq_bind_int(s, 7, rd->created_at)) ||
        (err = kl_sq_bind_int(s, 8, rd->updated_at)))
        goto out_txn;
    err = kl_sq_step_done(st, s, "put_role_definition");
out_txn:
    sqlite3_finalize(s);
    err = kl_sq_end(st, err);
out_unlock:
    kl_sq_unlock(st);
out_free:
    free(id);
    free(lname);
    if (!err && created)
        *created = !exists;
    return err;
}

int kl_store_get_role_definition(kl_store *st, const char *role_id, kl_store_role_definition **out)
{
    if (!st || !role_id || !out)
        return KL_EINVAL;
    *out = NULL;
    char *id = kl_sq_lower_dup(role_id);
    if (!id)
        return KL_ENOMEM;
    sqlite3_stmt *s = NULL;
    kl_sq_lock(st);
    int err = kl_sq_prepare(st, "SELECT " ROLE_COLS " WHERE role_id = ?1", &s);
    if (!err && !(err = kl_sq_bind_text(s, 1, id))) {
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW)
            err = read_role(s, out);
        else
            err = rc == SQLITE_DONE ? KL_ENOTFOUND : kl_sq_map_rc(st->db, rc, "get_role");
    }
    sqlite3_finalize(s);
    kl_sq_unlock(st);
    free(id);
    return err;
}

/* Walks the custom roles in name order, calling each(arg, role, &kept); the role is
 * freed after the call unless each set kept (it took ownership). A non-zero result
 * stops the walk and is returned. */
static int walk_roles(kl_store *st, int (*each)(void *, kl_store_role_definition *, bool *),
                      void *arg)
{
    sqlite3_stmt *s = NULL;
    int err = kl_sq_prepare(st, "SELECT " ROLE_COLS " ORDER BY role_name_lower", &s);
    int rc = SQLITE_DONE;
    while (!err && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        kl_store_role_definition *r = NULL;
        bool kept = false;
        if ((err = read_role(s, &r)))
            break;
        err = each(arg, r, &kept);
        if (!kept)
            kl_store_role_definition_free(r);
    }
    if (!err && rc != SQLITE_DONE)
        err = kl_sq_map_rc(st->db, rc, "walk_roles");
    sqlite3_finalize(s);
    return err;
}

typedef struct collect {
    void **arr;
    size_t n, cap;
} collect;

static int collect_role(void *arg, kl_store_role_definition *r, bool *kept)
{
    collect *c = arg;
    int err = kl_sq_push(&c->arr, &c->n, &c->cap, r);
    *kept = err == 0;
    return err;
}

int kl_store_list_role_definitions(kl_store *st, kl_store_role_definition ***out, size_t *n)
{
    if (!st || !out || !n)
        return KL_EINVAL;
    *out = NULL;
    *n = 0;
    collect c = {0};
    kl_sq_lock(st);
    int err = walk_roles(st, collect_role, &c);
    kl_sq_unlock(st);
    if (err) {
        kl_store_role_definitions_free((kl_store_role_definition **)c.arr, c.n);
        return err;
    }
    *out = (kl_store_role_definition **)c.arr;
    *n = c.n;
    return 0;
}

int kl_store_delete_role_definition(kl_store *st, const char *role_id)
{
    if (!st || !role_id)
        return KL_EINVAL;
    char *id = kl_sq_lower_dup(role_id);
    if (!id)
        return KL_ENOMEM;
    sqlite3_stmt *s = NULL;
    int64_t pk = 0;
    kl_sq_lock(st);
    int err = kl_sq_begin(st, true);
    if (err)
        goto out;
    if ((err = lookup_pk(st, "SELECT pk FROM role_definitions WHERE role_id = ?1", id, &pk)))
        goto out_txn;
    err = lookup_pk(st, "SELECT pk FROM role_assignments WHERE role_id = ?1 LIMIT 1", id, &pk);
    if (err == 0) {
        err = KL_ECONFLICT;
        goto out_txn;
    }
    if (err != KL_ENOTFOUND)
        goto out_txn;
    if (!(err = kl_sq_prepare(st, "DELETE FROM role_definitions WHERE role_id = ?1", &s)) &&
        !(err = kl_sq_bind_text(s, 1, id)))
        err = kl_sq_step_done(st, s, "delete_role_definition");
out_txn:
    sqlite3_finalize(s);
    err = kl_sq_end(st, err);
out:
    kl_sq_unlock(st);
    free(id);
    return err;
}

/* ---------------------------------------------------------------- role assignments */

#define ASSIGNMENT_COLS                                                                            \
    "ra.name, ra.scope, p.object_id, p.type, ra.role_id, ra.description, ra.created_at, "          \
    "ra.updated_at, ra.created_by, ra.updated_by FROM role_assignments ra "                        \
    "JOIN principals p ON p.pk = ra.principal_pk"

static int read_assignment(sqlite3_stmt *s, kl_store_role_assignment **out)
{
    kl_store_role_assignment *a = calloc(1, sizeof(*a));
    if (!a)
        return KL_ENOMEM;
    int err;
    if ((err = kl_sq_col_dup(s, 0, &a->name)) || (err = kl_sq_col_dup(s, 1, &a->scope)) ||
        (err = kl_sq_col_dup(s, 2, &a->principal_id)) ||
        (err = kl_sq_col_dup(s, 3, &a->principal_type)) ||
        (err = kl_sq_col_dup(s, 4, &a->role_id)) || (err = kl_sq_col_dup(s, 5, &a->description)) ||
        (err = kl_sq_col_dup(s, 8, &a->created_by)) ||
        (err = kl_sq_col_dup(s, 9, &a->updated_by))) {
        kl_store_role_assignment_free(a);
        return err;
    }
    a->created_at = sqlite3_column_int64(s, 6);
    a->updated_at = sqlite3_column_int64(s, 7);
    *out = a;
    return 0;
}

/* The existing row called name: compares it with (scope_lower, principal_pk, role) and,
 * when equal, refreshes its description and update stamps. 1 = equal and updated,
 * KL_ENOTFOUND = no such name, KL_ECONFLICT = different. */
static int reput_existing(kl_store *st, const char *name, const char *scope_lower,
                          int64_t principal_pk, const char *role,
                          const kl_store_role_assignment *ra)
{
    sqlite3_stmt *s = NULL;
    int err = kl_sq_prepare(st,
                            "SELECT scope_lower = ?2 AND principal_pk = ?3 AND role_id = ?4 "
                            "FROM role_assignments WHERE name = ?1",
                            &s);
    if (!err && !(err = kl_sq_bind_text(s, 1, name)) &&
        !(err = kl_sq_bind_text(s, 2, scope_lower)) &&
        !(err = kl_sq_bind_int(s, 3, principal_pk)) && !(err = kl_sq_bind_text(s, 4, role))) {
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW)
            err = sqlite3_column_int(s, 0) ? 1 : KL_ECONFLICT;
        else
            err = rc == SQLITE_DONE ? KL_ENOTFOUND : kl_sq_map_rc(st->db, rc, "put_assignment");
    }
    sqlite3_finalize(s);
    s = NULL;
    if (err != 1)
        return err;
    err = kl_sq_prepare(st,
                        "UPDATE role_assignments SET description = coalesce(?2, description), "
                        "updated_at = ?3, updated_by = ?4 WHERE name = ?1",
                        &s);
    if (!err && !(err = kl_sq_bind_text(s, 1, name)) &&
        !(err = kl_sq_bind_text(s, 2, ra->description)) &&
        !(err = kl_sq_bind_int(s, 3, ra->updated_at)) &&
        !(err = kl_sq_bind_text(s, 4, ra->updated_by)))
        err = kl_sq_step_done(st, s, "reput_assignment");
    sqlite3_finalize(s);
    return err ? err : 1;
}

int kl_store_put_role_assignment(kl_store *st, const kl_store_role_assignment *ra,
                                 bool builtin_role, bool *created)
{
    if (!st || !ra || !valid_guid(ra->name) || !ra->scope || ra->scope[0] != '/' ||
        !ra->principal_id || !valid_guid(ra->role_id))
        return KL_EINVAL;
    char *name = kl_sq_lower_dup(ra->name);
    char *scope_lower = kl_sq_lower_dup(ra->scope);
    char *principal = kl_sq_lower_dup(ra->principal_id);
    char *role = kl_sq_lower_dup(ra->role_id);
    sqlite3_stmt *s = NULL;
    int64_t ppk = 0, dummy = 0;
    bool was_created = false;
    int err = (name && scope_lower && principal && role) ? 0 : KL_ENOMEM;
    if (err)
        goto out_free;
    kl_sq_lock(st);
    if ((err = kl_sq_begin(st, true)))
        goto out_unlock;
    if ((err = lookup_pk(st, "SELECT pk FROM principals WHERE object_id = ?1", principal, &ppk)))
        goto out_txn;
    if (!builtin_role) {
        err = lookup_pk(st, "SELECT pk FROM role_definitions WHERE role_id = ?1", role, &dummy);
        if (err == KL_ENOTFOUND)
            err = KL_EINVAL;
        if (err)
            goto out_txn;
    }
    err = reput_existing(st, name, scope_lower, ppk, role, ra);
    if (err == 1) {
        err = 0;
        goto out_txn;
    }
    if (err != KL_ENOTFOUND)
        goto out_txn;
    if ((err = kl_sq_prepare(st,
                             "SELECT pk FROM role_assignments WHERE scope_lower = ?1 AND "
                             "principal_pk = ?2 AND role_id = ?3",
                             &s)) ||
        (err = kl_sq_bind_text(s, 1, scope_lower)) || (err = kl_sq_bind_int(s, 2, ppk)) ||
        (err = kl_sq_bind_text(s, 3, role)))
        goto out_txn;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        err = KL_EEXIST;
        goto out_txn;
    }
    if (rc != SQLITE_DONE) {
        err = kl_sq_map_rc(st->db, rc, "put_assignment");
        goto out_txn;
    }
    sqlite3_finalize(s);
    s = NULL;
    if ((err = kl_sq_prepare(st,
                             "INSERT INTO role_assignments (name, scope, scope_lower, "
                             "principal_pk, role_id, description, created_at, updated_at, "
                             "created_by, updated_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
                             "?9, ?10)",
                             &s)) ||
        (err = kl_sq_bind_text(s, 1, name)) || (err = kl_sq_bind_text(s, 2, ra->scope)) ||
        (err = kl_sq_bind_text(s, 3, scope_lower)) || (err = kl_sq_bind_int(s, 4, ppk)) ||
        (err = kl_sq_bind_text(s, 5, role)) || (err = kl_sq_bind_text(s, 6, ra->description)) ||
        (err = kl_sq_bind_int(s, 7, ra->created_at)) ||
        (err = kl_sq_bind_int(s, 8, ra->updated_at)) ||
        (err = kl_sq_bind_text(s, 9, ra->created_by)) ||
        (err = kl_sq_bind_text(s, 10, ra->updated_by)))
        goto out_txn;
    err = kl_sq_step_done(st, s, "insert_assignment");
    was_created = true;
out_txn:
    sqlite3_finalize(s);
    err = kl_sq_end(st, err);
out_unlock:
    kl_sq_unlock(st);
out_free:
    free(name);
    free(scope_lower);
    free(principal);
    free(role);
    if (!err && created)
        *created = was_created;
    return err;
}

int kl_store_get_role_assignment(kl_store *st, const char *name, kl_store_role_assignment **out)
{
    if (!st || !name || !out)
        return KL_EINVAL;
    *out = NULL;
    char *ln = kl_sq_lower_dup(name);
    if (!ln)
        return KL_ENOMEM;
    sqlite3_stmt *s = NULL;
    kl_sq_lock(st);
    int err = kl_sq_prepare(st, "SELECT " ASSIGNMENT_COLS " WHERE ra.name = ?1", &s);
    if (!err && !(err = kl_sq_bind_text(s, 1, ln))) {
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW)
            err = read_assignment(s, out);
        else
            err = rc == SQLITE_DONE ? KL_ENOTFOUND : kl_sq_map_rc(st->db, rc, "get_assignment");
    }
    sqlite3_finalize(s);
    kl_sq_unlock(st);
    free(ln);
    return err;
}

/* Walks assignments (principal filter when non-NULL, already lower-case) in creation
 * order; each as for walk_roles. */
static int walk_assignments(kl_store *st, const char *principal,
                            int (*each)(void *, kl_store_role_assignment *, bool *), void *arg)
{
    sqlite3_stmt *s = NULL;
    int err = kl_sq_prepare(st,
                            "SELECT " ASSIGNMENT_COLS " WHERE (?1 IS NULL OR p.object_id = ?1) "
                            "ORDER BY ra.created_at, ra.name",
                            &s);
    if (!err)
        err = kl_sq_bind_text(s, 1, principal);
    int rc = SQLITE_DONE;
    while (!err && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        kl_store_role_assignment *a = NULL;
        bool kept = false;
        if ((err = read_assignment(s, &a)))
            break;
        err = each(arg, a, &kept);
        if (!kept)
            kl_store_role_assignment_free(a);
    }
    if (!err && rc != SQLITE_DONE)
        err = kl_sq_map_rc(st->db, rc, "walk_assignments");
    sqlite3_finalize(s);
    return err;
}

static int collect_assignment(void *arg, kl_store_role_assignment *a, bool *kept)
{
    collect *c = arg;
    int err = kl_sq_push(&c->arr, &c->n, &c->cap, a);
    *kept = err == 0;
    return err;
}

int kl_store_list_role_assignments(kl_store *st, const char *principal_id,
                                   kl_store_role_assignment ***out, size_t *n)
{
    if (!st || !out || !n)
        return KL_EINVAL;
    *out = NULL;
    *n = 0;
    char *lp = principal_id ? kl_sq_lower_dup(principal_id) : NULL;
    if (principal_id && !lp)
        return KL_ENOMEM;
    collect c = {0};
    kl_sq_lock(st);
    int err = walk_assignments(st, lp, collect_assignment, &c);
    kl_sq_unlock(st);
    free(lp);
    if (err) {
        kl_store_role_assignments_free((kl_store_role_assignment **)c.arr, c.n);
        return err;
    }
    *out = (kl_store_role_assignment **)c.arr;
    *n = c.n;
    return 0;
}

int kl_store_delete_role_assignment(kl_store *st, const char *name)
{
    if (!st || !name)
        return KL_EINVAL;
    char *ln = kl_sq_lower_dup(name);
    if (!ln)
        return KL_ENOMEM;
    sqlite3_stmt *s = NULL;
    int64_t before = 0;
    kl_sq_lock(st);
    int err = kl_sq_begin(st, true);
    if (err)
        goto out;
    if (!(err = kl_sq_root_owner_count(st, &before)) &&
        !(err = kl_sq_prepare(st, "DELETE FROM role_assignments WHERE name = ?1", &s)) &&
        !(err = kl_sq_bind_text(s, 1, ln)) &&
        !(err = kl_sq_step_done(st, s, "delete_assignment")) && sqlite3_changes(st->db) == 0)
        err = KL_ENOTFOUND;
    sqlite3_finalize(s);
    if (!err)
        err = kl_sq_check_root_owner(st, before);
    err = kl_sq_end(st, err);
out:
    kl_sq_unlock(st);
    free(ln);
    return err;
}

int kl_sq_delete_assignments_under(kl_store *st, const char *scope_lower)
{
    /* Below = the id, a '/', then anything: exactly the strings between id + "/" and
     * id + "0" ('0' follows '/'), which the (scope_lower, ...) index serves. No LIKE:
     * ids may contain '_' and '%'. */
    sqlite3_stmt *s = NULL;
    int err = kl_sq_prepare(st,
                            "DELETE FROM role_assignments WHERE scope_lower = ?1 OR "
                            "(scope_lower >= ?1 || '/' AND scope_lower < ?1 || '0')",
                            &s);
    if (!err && !(err = kl_sq_bind_text(s, 1, scope_lower)))
        err = kl_sq_step_done(st, s, "delete_assignments_under");
    sqlite3_finalize(s);
    return err;
}

/* ---------------------------------------------------------------- loading */

typedef struct visit {
    const kl_store_visitor *v;
} visit;

static int visit_role(void *arg, kl_store_role_definition *r, bool *kept)
{
    const visit *vi = arg;
    *kept = false;
    return vi->v->role_definition(vi->v->arg, r);
}

static int visit_assignment(void *arg, kl_store_role_assignment *a, bool *kept)
{
    const visit *vi = arg;
    *kept = false;
    return vi->v->role_assignment(vi->v->arg, a);
}

int kl_sq_load_rbac(kl_store *st, const kl_store_visitor *v)
{
    visit vi = {v};
    int err = 0;
    if (v->role_definition)
        err = walk_roles(st, visit_role, &vi);
    if (!err && v->role_assignment)
        err = walk_assignments(st, NULL, visit_assignment, &vi);
    return err;
}

/* ---------------------------------------------------------------- freeing */

void kl_store_role_definition_free(kl_store_role_definition *rd)
{
    if (!rd)
        return;
    free(rd->role_id);
    free(rd->role_name);
    free(rd->description);
    free(rd->assignable_scopes);
    free(rd->permissions);
    free(rd);
}

void kl_store_role_definitions_free(kl_store_role_definition **rd, size_t n)
{
    if (!rd)
        return;
    for (size_t i = 0; i < n; i++)
        kl_store_role_definition_free(rd[i]);
    free(rd);
}

void kl_store_role_assignment_free(kl_store_role_assignment *ra)
{
    if (!ra)
        return;
    free(ra->name);
    free(ra->scope);
    free(ra->principal_id);
    free(ra->principal_type);
    free(ra->role_id);
    free(ra->description);
    free(ra->created_by);
    free(ra->updated_by);
    free(ra);
}

void kl_store_role_assignments_free(kl_store_role_assignment **ra, size_t n)
{
    if (!ra)
        return;
    for (size_t i = 0; i < n; i++)
        kl_store_role_assignment_free(ra[i]);
    free(ra);
}
