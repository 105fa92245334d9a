/* The role tables of the store (see store.h): custom role definitions and role
 * assignments, the scope cascade used when a resource is deleted, and their part of
 * load_all. Scope semantics (what covers what) live in src/rbac; here a scope is text,
 * compared in lower case, and "below" means "starts with it and a '/'". */
#include <jansson.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "store/query.h"
#include "store/store.h"

static bool json_array_text(const char *s)
{
    if (!s)
        return false;
    json_t *j = json_loads(s, JSON_REJECT_DUPLICATES, NULL);
    bool ok = j && json_is_array(j);
    json_decref(j);
    return ok;
}

/* ---------------------------------------------------------------- role definitions */

#define ROLE_COLS                                                                                  \
    "SELECT role_id, role_name, description, assignable_scopes, permissions, created_at, "         \
    "updated_at FROM role_definitions "

int kl_store_put_role_definition(kl_store *st, const kl_store_role_definition *rd, bool *created)
{
    if (!st || !rd || !kl_uuid_valid_str(rd->role_id) || !rd->role_name || !*rd->role_name ||
        !json_array_text(rd->assignable_scopes) || !json_array_text(rd->permissions))
        return KL_EINVAL;
    char *id = kl_q_lower(rd->role_id);
    char *lname = kl_q_lower(rd->role_name);
    int64_t pk = 0, other = 0;
    bool exists = false;
    int err = (id && lname) ? 0 : KL_ENOMEM;
    if (err || (err = kl_q_begin(st, true)))
        goto out;
    err =
        kl_q_int(st, "SELECT pk FROM role_definitions WHERE role_id = ?1", KL_ARGS(kl_vt(id)), &pk);
    exists = err == 0;
    if (err && err != KL_ENOTFOUND)
        goto out_txn;
    err = kl_q_int(st, "SELECT pk FROM role_definitions WHERE role_name_lower = ?1",
                   KL_ARGS(kl_vt(lname)), &other);
    if (err == 0 && (!exists || other != pk))
        err = KL_ECONFLICT;
    else if (err == 0 || err == KL_ENOTFOUND)
        err = kl_q_exec(
            st,
            "INSERT INTO role_definitions (role_id, role_name, role_name_lower, description, "
            "assignable_scopes, permissions, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, "
            "?6, ?7, ?8) ON CONFLICT (role_id) DO UPDATE SET role_name = excluded.role_name, "
            "role_name_lower = excluded.role_name_lower, description = excluded.description, "
            "assignable_scopes = excluded.assignable_scopes, permissions = excluded.permissions, "
            "updated_at = excluded.updated_at",
            KL_ARGS(kl_vt(id), kl_vt(rd->role_name), kl_vt(lname),
                    kl_vt(rd->description ? rd->description : ""), kl_vt(rd->assignable_scopes),
                    kl_vt(rd->permissions), kl_vi(rd->created_at), kl_vi(rd->updated_at)),
            NULL);
out_txn:
    err = kl_q_end(st, err);
out:
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
    return kl_q_one_by_lower(st, ROLE_COLS "WHERE role_id = ?1", role_id, &kl_map_role_definition,
                             (void **)out);
}

int kl_store_list_role_definitions(kl_store *st, kl_store_role_definition ***out, size_t *n)
{
    if (!st || !out || !n)
        return KL_EINVAL;
    return kl_q_list_locked(st, ROLE_COLS "ORDER BY role_name_lower", KL_NOARGS,
                            &kl_map_role_definition, (void ***)out, n);
}

int kl_store_delete_role_definition(kl_store *st, const char *role_id)
{
    if (!st || !role_id)
        return KL_EINVAL;
    char *id = kl_q_lower(role_id);
    if (!id)
        return KL_ENOMEM;
    int64_t pk = 0;
    int err = kl_q_begin(st, true);
    if (err)
        goto out;
    if ((err = kl_q_int(st, "SELECT pk FROM role_definitions WHERE role_id = ?1",
                        KL_ARGS(kl_vt(id)), &pk)))
        goto out_txn;
    err = kl_q_int(st, "SELECT pk FROM role_assignments WHERE role_id = ?1 LIMIT 1",
                   KL_ARGS(kl_vt(id)), &pk);
    if (err == 0)
        err = KL_ECONFLICT;
    else if (err == KL_ENOTFOUND)
        err = kl_q_exec(st, "DELETE FROM role_definitions WHERE role_id = ?1", KL_ARGS(kl_vt(id)),
                        NULL);
out_txn:
    err = kl_q_end(st, err);
out:
    free(id);
    return err;
}

/* ---------------------------------------------------------------- role assignments */

#define ASSIGNMENT_COLS                                                                            \
    "SELECT ra.name, ra.scope, p.object_id, p.type, ra.role_id, ra.description, ra.created_at, "   \
    "ra.updated_at, ra.created_by, ra.updated_by FROM role_assignments ra "                        \
    "JOIN principals p ON p.pk = ra.principal_pk "

/* The existing row called name: compares it with (scope_lower, principal_pk, role) and,
 * when equal, refreshes its description and update stamps. 1 = equal and updated,
 * KL_ENOTFOUND = no such name, KL_ECONFLICT = different. */
static int reput_existing(kl_store *st, const char *name, const char *scope_lower,
                          int64_t principal_pk, const char *role,
                          const kl_store_role_assignment *ra)
{
    int64_t same = 0;
    int err =
        kl_q_int(st,
                 "SELECT CASE WHEN scope_lower = ?2 AND principal_pk = ?3 AND role_id = ?4 "
                 "THEN 1 ELSE 0 END FROM role_assignments WHERE name = ?1",
                 KL_ARGS(kl_vt(name), kl_vt(scope_lower), kl_vi(principal_pk), kl_vt(role)), &same);
    if (err)
        return err;
    if (!same)
        return KL_ECONFLICT;
    err = kl_q_exec(
        st,
        "UPDATE role_assignments SET description = coalesce(?2, description), "
        "updated_at = ?3, updated_by = ?4 WHERE name = ?1",
        KL_ARGS(kl_vt(name), kl_vt(ra->description), kl_vi(ra->updated_at), kl_vt(ra->updated_by)),
        NULL);
    return err ? err : 1;
}

/* Inserts a new assignment inside the caller's transaction: KL_EEXIST when the same
 * (scope, principal, role) exists under another name. */
static int insert_assignment(kl_store *st, const kl_store_role_assignment *ra, const char *name,
                             const char *scope_lower, int64_t ppk, const char *role)
{
    int64_t dummy = 0;
    int err = kl_q_int(st,
                       "SELECT pk FROM role_assignments WHERE scope_lower = ?1 AND "
                       "principal_pk = ?2 AND role_id = ?3",
                       KL_ARGS(kl_vt(scope_lower), kl_vi(ppk), kl_vt(role)), &dummy);
    if (err == 0)
        return KL_EEXIST;
    if (err != KL_ENOTFOUND)
        return err;
    return kl_q_exec(st,
                     "INSERT INTO role_assignments (name, scope, scope_lower, principal_pk, "
                     "role_id, description, created_at, updated_at, created_by, updated_by) "
                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                     KL_ARGS(kl_vt(name), kl_vt(ra->scope), kl_vt(scope_lower), kl_vi(ppk),
                             kl_vt(role), kl_vt(ra->description), kl_vi(ra->created_at),
                             kl_vi(ra->updated_at), kl_vt(ra->created_by), kl_vt(ra->updated_by)),
                     NULL);
}

int kl_store_put_role_assignment(kl_store *st, const kl_store_role_assignment *ra,
                                 bool builtin_role, bool *created)
{
    if (!st || !ra || !kl_uuid_valid_str(ra->name) || !ra->scope || ra->scope[0] != '/' ||
        !ra->principal_id || !kl_uuid_valid_str(ra->role_id))
        return KL_EINVAL;
    char *name = kl_q_lower(ra->name);
    char *scope_lower = kl_q_lower(ra->scope);
    char *principal = kl_q_lower(ra->principal_id);
    char *role = kl_q_lower(ra->role_id);
    int64_t ppk = 0, dummy = 0;
    bool was_created = false;
    int err = (name && scope_lower && principal && role) ? 0 : KL_ENOMEM;
    if (err || (err = kl_q_begin(st, true)))
        goto out;
    if ((err = kl_q_int(st, "SELECT pk FROM principals WHERE object_id = ?1",
                        KL_ARGS(kl_vt(principal)), &ppk)))
        goto out_txn;
    if (!builtin_role) {
        err = kl_q_int(st, "SELECT pk FROM role_definitions WHERE role_id = ?1",
                       KL_ARGS(kl_vt(role)), &dummy);
        if (err == KL_ENOTFOUND)
            err = KL_EINVAL;
        if (err)
            goto out_txn;
    }
    kl_q_changed(st, KL_STORE_CHANGE_PRINCIPAL_GRANTS, principal);
    err = reput_existing(st, name, scope_lower, ppk, role, ra);
    if (err == 1)
        err = 0;
    else if (err == KL_ENOTFOUND) {
        err = insert_assignment(st, ra, name, scope_lower, ppk, role);
        was_created = err == 0;
    }
out_txn:
    err = kl_q_end(st, err);
out:
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
    return kl_q_one_by_lower(st, ASSIGNMENT_COLS "WHERE ra.name = ?1", name,
                             &kl_map_role_assignment, (void **)out);
}

#define ASSIGNMENTS_BY_PRINCIPAL                                                                   \
    ASSIGNMENT_COLS "WHERE (?1 IS NULL OR p.object_id = ?1) ORDER BY ra.created_at, ra.name"

int kl_store_list_role_assignments(kl_store *st, const char *principal_id,
                                   kl_store_role_assignment ***out, size_t *n)
{
    if (!st || !out || !n)
        return KL_EINVAL;
    *out = NULL;
    *n = 0;
    char *lp = principal_id ? kl_q_lower(principal_id) : NULL;
    if (principal_id && !lp)
        return KL_ENOMEM;
    int err = kl_q_list_locked(st, ASSIGNMENTS_BY_PRINCIPAL, KL_ARGS(kl_vt(lp)),
                               &kl_map_role_assignment, (void ***)out, n);
    free(lp);
    return err;
}

int kl_store_delete_role_assignment(kl_store *st, const char *name)
{
    if (!st || !name)
        return KL_EINVAL;
    char *ln = kl_q_lower(name);
    if (!ln)
        return KL_ENOMEM;
    int64_t before = 0, changed = 0;
    char *principal = NULL;
    int err = kl_q_begin(st, true);
    if (err)
        goto out;
    err = kl_q_text(st,
                    "SELECT p.object_id FROM role_assignments ra JOIN principals p ON "
                    "p.pk = ra.principal_pk WHERE ra.name = ?1",
                    KL_ARGS(kl_vt(ln)), &principal);
    if (err == 0 && principal)
        kl_q_changed(st, KL_STORE_CHANGE_PRINCIPAL_GRANTS, principal);
    if ((err == 0 || err == KL_ENOTFOUND) && !(err = kl_store_root_owner_count(st, &before)) &&
        !(err = kl_q_exec(st, "DELETE FROM role_assignments WHERE name = ?1", KL_ARGS(kl_vt(ln)),
                          &changed)) &&
        changed == 0)
        err = KL_ENOTFOUND;
    if (!err)
        err = kl_store_check_root_owner(st, before);
    err = kl_q_end(st, err);
out:
    free(principal);
    free(ln);
    return err;
}

int kl_store_delete_assignments_under(kl_store *st, const char *scope_lower)
{
    /* Below = the id, a '/', then anything: exactly the strings between id + "/" and
     * id + "0" ('0' follows '/'), which the (scope_lower, ...) index serves. Text
     * compares byte-wise on both engines (PostgreSQL columns use the "C" collation).
     * No LIKE: ids may contain '_' and '%'. */
    return kl_q_exec(st,
                     "DELETE FROM role_assignments WHERE scope_lower = ?1 OR "
                     "(scope_lower >= ?1 || '/' AND scope_lower < ?1 || '0')",
                     KL_ARGS(kl_vt(scope_lower)), NULL);
}

/* ---------------------------------------------------------------- loading */

static int visit_role(void *arg, void *obj, bool *kept)
{
    const kl_store_visitor *v = arg;
    (void)kept;
    return v->role_definition(v->arg, obj);
}

static int visit_assignment(void *arg, void *obj, bool *kept)
{
    const kl_store_visitor *v = arg;
    (void)kept;
    return v->role_assignment(v->arg, obj);
}

int kl_store_load_rbac(kl_store *st, const kl_store_visitor *v)
{
    int err = 0;
    if (v->role_definition)
        err = kl_q_each(st, ROLE_COLS "ORDER BY role_name_lower", KL_NOARGS,
                        &kl_map_role_definition, visit_role, (void *)v);
    if (!err && v->role_assignment)
        err = kl_q_each(st, ASSIGNMENTS_BY_PRINCIPAL, KL_ARGS(kl_vt(NULL)), &kl_map_role_assignment,
                        visit_assignment, (void *)v);
    return err;
}

/* ---------------------------------------------------------------- what changed */

typedef struct change_row {
    int64_t generation;
    char *kind, *key;
} change_row;

static const kl_col change_cols[] = {{KL_COL_I64, offsetof(change_row, generation)},
                                     {KL_COL_TEXT, offsetof(change_row, kind)},
                                     {KL_COL_TEXT, offsetof(change_row, key)}};
static const kl_rowmap change_map = KL_ROWMAP(change_row, change_cols);

typedef struct change_walk {
    kl_store_changes *c;
    int64_t since;
    bool first_seen; /* a row of generation since + 1 */
} change_walk;

/* Adds row's principal to c unless there; sets c->full for anything that is not one. */
static int note_change(void *arg, void *obj, bool *kept)
{
    change_walk *w = arg;
    kl_store_changes *c = w->c;
    const change_row *r = obj;
    (void)kept;
    w->first_seen |= r->generation == w->since + 1;
    if (c->full)
        return 0;
    if (strcmp(r->kind, KL_STORE_CHANGE_PRINCIPAL_GRANTS) != 0 || !r->key) {
        c->full = true;
        return 0;
    }
    for (size_t i = 0; i < c->n_principals; i++)
        if (strcmp(c->principals[i], r->key) == 0)
            return 0;
    if (c->n_principals == KL_STORE_MAX_CHANGED) {
        c->full = true; /* a full build is as cheap by then */
        return 0;
    }
    if (!(c->principals[c->n_principals] = strdup(r->key)))
        return KL_ENOMEM;
    c->n_principals++;
    return 0;
}

/* The assignments of c's principals, appended to c->assignments. */
static int load_changed_assignments(kl_store *st, kl_store_changes *c)
{
    for (size_t i = 0; i < c->n_principals; i++) {
        kl_store_role_assignment **got = NULL;
        size_t n = 0;
        int err = kl_q_list(st, ASSIGNMENTS_BY_PRINCIPAL, KL_ARGS(kl_vt(c->principals[i])),
                            &kl_map_role_assignment, (void ***)&got, &n);
        if (err)
            return err;
        kl_store_role_assignment **all =
            n ? realloc(c->assignments, (c->n_assignments + n) * sizeof(*all)) : c->assignments;
        if (n && !all) {
            kl_store_role_assignments_free(got, n);
            return KL_ENOMEM;
        }
        c->assignments = all;
        if (n)
            memcpy(all + c->n_assignments, got, n * sizeof(*got));
        c->n_assignments += n;
        free(got);
    }
    return 0;
}

/* Empties c down to "rebuild everything". */
static void changes_full(kl_store_changes *c)
{
    for (size_t i = 0; i < c->n_principals; i++)
        free(c->principals[i]);
    c->n_principals = 0;
    kl_store_role_assignments_free(c->assignments, c->n_assignments);
    c->assignments = NULL;
    c->n_assignments = 0;
    c->full = true;
}

int kl_store_load_since(kl_store *st, int64_t since, kl_store_changes **out)
{
    if (!st || !out)
        return KL_EINVAL;
    *out = NULL;
    kl_store_changes *c = calloc(1, sizeof(*c));
    if (!c || !(c->principals = calloc(KL_STORE_MAX_CHANGED, sizeof(char *)))) {
        free(c);
        return KL_ENOMEM;
    }
    change_walk w = {.c = c, .since = since};
    int err = kl_q_begin(st, false);
    if (err)
        goto out;
    err = kl_q_int(st, "SELECT generation FROM store_generation WHERE id = 1", KL_NOARGS,
                   &c->generation);
    if (err || c->generation == since)
        goto out_txn;
    /* A write around the store (it logged nothing) since the last full read. */
    int64_t version = -1;
    if (st->drv->data_version &&
        (st->drv->data_version(st->db, &version) != 0 || version != st->loaded_version)) {
        c->full = true;
        goto out_txn;
    }
    if (since < 0 || since > c->generation) {
        c->full = true;
        goto out_txn;
    }
    err = kl_q_each(st,
                    "SELECT generation, kind, key FROM store_changes WHERE generation > ?1 AND "
                    "generation <= ?2",
                    KL_ARGS(kl_vi(since), kl_vi(c->generation)), &change_map, note_change, &w);
    /* Every commit logs at least one row, so a generation without rows is one the log
     * no longer (or never) held: the changes since cannot be told. */
    if (!err && !w.first_seen)
        c->full = true;
    if (!err && !c->full)
        err = load_changed_assignments(st, c);
out_txn:
    err = kl_q_end(st, err);
out:
    if (!err && c->full)
        changes_full(c);
    if (err) {
        kl_store_changes_free(c);
        return err;
    }
    *out = c;
    return 0;
}

void kl_store_changes_free(kl_store_changes *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_principals; i++)
        free(c->principals[i]);
    free(c->principals);
    kl_store_role_assignments_free(c->assignments, c->n_assignments);
    free(c);
}
