/* Unit tests of the store's directory and role tables against real databases (SQLite
 * files in fresh temporary directories, or PostgreSQL: see engine.h): migration 2 on a
 * new store and on a file that has only migration 1 (with data), the first-start rows, applications
 * with their service principals, role assignment uniqueness, the scope cascades of account and
 * deployment deletion, the root owner rule and hostile names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/util.h"
#include "store/migrations.h"
#include "store/store.h"
#include "engine.h"

#define OWNER KL_STORE_OWNER_ROLE_ID
#define READER "acdd72a7-3385-48ef-bd42-f606fba81ae7"
#define CUSTOM "0b0c0d0e-0000-4000-8000-000000000001"
#define SUB "/subscriptions/00000000-0000-0000-0000-000000000000"
#define RG SUB "/resourceGroups/rg"
#define ACCT RG "/providers/Microsoft.CognitiveServices/accounts/"

typedef struct fixture {
    char dir[64];
    char path[128];
    kl_store *st;
    char admin[KL_UUID_LEN + 1];
    unsigned seq;
} fixture;

static void load_admin(fixture *f)
{
    kl_store_tenant *t = NULL;
    assert_int_equal(kl_store_get_tenant(f->st, &t), 0);
    snprintf(f->admin, sizeof(f->admin), "%s", t->admin_object_id);
    kl_store_tenant_free(t);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(
        test_store_dir_open("dir", f->dir, sizeof(f->dir), f->path, sizeof(f->path), &f->st), 0);
    load_admin(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    test_store_dir_close(f->st, f->dir);
    free(f);
    return 0;
}

static void reopen(fixture *f)
{
    kl_store_close(f->st);
    f->st = NULL;
    assert_int_equal(test_store_open(f->path, &f->st), 0);
}

static int put_assignment(fixture *f, const char *name, const char *scope, const char *principal,
                          const char *role, bool builtin, bool *created)
{
    kl_store_role_assignment ra = {.name = (char *)name,
                                   .scope = (char *)scope,
                                   .principal_id = (char *)principal,
                                   .role_id = (char *)role,
                                   .created_at = 10,
                                   .updated_at = 10,
                                   .created_by = f->admin,
                                   .updated_by = f->admin};
    return kl_store_put_role_assignment(f->st, &ra, builtin, created);
}

/* Puts an assignment under a fresh name and returns that name in out. */
static void assign(fixture *f, const char *scope, const char *principal, const char *role,
                   char out[KL_UUID_LEN + 1])
{
    bool created = false;
    test_next_guid(&f->seq, out);
    assert_int_equal(put_assignment(f, out, scope, principal, role, true, &created), 0);
    assert_true(created);
}

static bool assignment_exists(fixture *f, const char *name)
{
    kl_store_role_assignment *ra = NULL;
    int err = kl_store_get_role_assignment(f->st, name, &ra);
    kl_store_role_assignment_free(ra);
    assert_true(err == 0 || err == KL_ENOTFOUND);
    return err == 0;
}

static void create_app(fixture *f, const char *name, kl_store_application *out_ids,
                       char oid[KL_UUID_LEN + 1], char app[KL_UUID_LEN + 1],
                       char sp[KL_UUID_LEN + 1])
{
    test_next_guid(&f->seq, oid);
    test_next_guid(&f->seq, app);
    test_next_guid(&f->seq, sp);
    kl_store_application a = {.object_id = oid,
                              .app_id = app,
                              .display_name = (char *)name,
                              .sp_object_id = sp,
                              .enabled = true,
                              .created_at = 5};
    assert_int_equal(kl_store_create_application(f->st, &a), 0);
    if (out_ids)
        *out_ids = a;
}

static void put_account(fixture *f, const char *rg, const char *name)
{
    char id[512];
    snprintf(id, sizeof(id),
             SUB "/resourceGroups/%s/providers/Microsoft.CognitiveServices/accounts/%s", rg, name);
    kl_store_account a = {.id = id,
                          .subscription = "00000000-0000-0000-0000-000000000000",
                          .resource_group = (char *)rg,
                          .name = (char *)name,
                          .location = "local",
                          .kind = "OpenAI",
                          .etag = "e",
                          .created_at = 1,
                          .modified_at = 1};
    assert_int_equal(kl_store_put_account(f->st, &a, NULL, 0, NULL), 0);
}

/* ------------------------------------------------------------------ migrations */

static void test_first_start(void **state)
{
    fixture *f = *state;
    int v = 0;
    assert_int_equal(kl_store_schema_version(f->st, &v), 0);
    assert_int_equal(v, test_migration_last_version());

    kl_store_tenant *t = NULL;
    assert_int_equal(kl_store_get_tenant(f->st, &t), 0);
    assert_true(kl_uuid_valid(t->tenant_id, strlen(t->tenant_id)));
    assert_true(kl_uuid_valid(t->admin_object_id, strlen(t->admin_object_id)));
    assert_string_equal(t->display_name, "keyless");
    assert_string_not_equal(t->tenant_id, t->admin_object_id);
    char tenant[KL_UUID_LEN + 1];
    snprintf(tenant, sizeof(tenant), "%s", t->tenant_id);
    kl_store_tenant_free(t);

    kl_store_principal *p = NULL;
    assert_int_equal(kl_store_get_principal(f->st, f->admin, &p), 0);
    assert_string_equal(p->type, "User");
    assert_string_equal(p->display_name, "keyless local administrator");
    assert_null(p->app_id);
    assert_true(p->enabled);
    kl_store_principal_free(p);

    kl_store_role_assignment **list = NULL;
    size_t n = 0;
    assert_int_equal(kl_store_list_role_assignments(f->st, NULL, &list, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(list[0]->scope, "/");
    assert_string_equal(list[0]->role_id, OWNER);
    assert_string_equal(list[0]->principal_id, f->admin);
    assert_string_equal(list[0]->principal_type, "User");
    assert_true(kl_uuid_valid(list[0]->name, strlen(list[0]->name)));
    kl_store_role_assignments_free(list, n);

    /* The first-start step runs once: a restart keeps the same tenant and rows. */
    reopen(f);
    reopen(f);
    assert_int_equal(kl_store_get_tenant(f->st, &t), 0);
    assert_string_equal(t->tenant_id, tenant);
    kl_store_tenant_free(t);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM principals"), 1);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM role_assignments"), 1);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM schema_version"),
                     test_migration_count());
}

/* A database written by the previous release (migration 1 only, with an account) is
 * brought forward: its data stays, the directory appears. */
static void test_migration_from_v1(void **state)
{
    SQLITE_ONLY();
    fixture *f = *state;
    char path[160];
    snprintf(path, sizeof(path), "%s/old.db", f->dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    size_t n = 0;
    const kl_store_migration *m = kl_store_migrations(&n);
    assert_true(n >= 2);
    assert_int_equal(m[0].version, 1);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, "
                                  "applied_at INTEGER NOT NULL);"
                                  "INSERT INTO schema_version VALUES (1, 0);",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, m[0].sql, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db,
                     "INSERT INTO accounts (id, id_lower, subscription, resource_group, name, "
                     "name_lower, location, kind, sku, tags, properties, disable_local_auth, "
                     "etag, created_at, modified_at) VALUES ('/subscriptions/s/resourceGroups/"
                     "rg/providers/Microsoft.CognitiveServices/accounts/Old', '/subscriptions/s/"
                     "resourcegroups/rg/providers/microsoft.cognitiveservices/accounts/old', 's', "
                     "'rg', 'Old', 'old', 'local', 'OpenAI', '{}', '{}', '{}', 0, 'e', 1, 1);"
                     "INSERT INTO deployments (account_pk, name, backend, created_at, "
                     "modified_at) VALUES (1, 'chat', 'echo', 1, 1);",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);

    kl_store *st = NULL;
    assert_int_equal(kl_store_open_sqlite(path, &st), 0);
    int v = 0;
    assert_int_equal(kl_store_schema_version(st, &v), 0);
    assert_int_equal(v, test_migration_last_version());
    kl_store_account *a = NULL;
    assert_int_equal(kl_store_get_account(st, "old", &a), 0);
    assert_string_equal(a->name, "Old");
    kl_store_account_free(a);
    kl_store_deployment *d = NULL;
    assert_int_equal(kl_store_get_deployment(st, "old", "chat", &d), 0);
    kl_store_deployment_free(d);
    kl_store_tenant *t = NULL;
    assert_int_equal(kl_store_get_tenant(st, &t), 0);
    kl_store_role_assignment **list = NULL;
    assert_int_equal(kl_store_list_role_assignments(st, t->admin_object_id, &list, &n), 0);
    assert_int_equal(n, 1);
    kl_store_role_assignments_free(list, n);
    kl_store_tenant_free(t);
    kl_store_close(st);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM schema_version"), test_migration_count());
}

/* ------------------------------------------------------------------ applications */

static void test_applications(void **state)
{
    fixture *f = *state;
    char oid[37], app[37], sp[37];
    create_app(f, "My-App", NULL, oid, app, sp);

    kl_store_application *a = NULL;
    assert_int_equal(kl_store_get_application(f->st, oid, &a), 0);
    assert_string_equal(a->app_id, app);
    assert_string_equal(a->sp_object_id, sp);
    assert_string_equal(a->display_name, "My-App");
    assert_true(a->enabled);
    kl_store_application_free(a);
    /* By client id and by name (any case). */
    assert_int_equal(kl_store_get_application(f->st, app, &a), 0);
    assert_string_equal(a->object_id, oid);
    kl_store_application_free(a);
    assert_int_equal(kl_store_get_application_by_name(f->st, "my-app", &a), 0);
    assert_string_equal(a->object_id, oid);
    kl_store_application_free(a);
    assert_int_equal(kl_store_get_application(f->st, sp, &a), KL_ENOTFOUND);

    /* Its service principal is a principal of its own, with the same client id. */
    kl_store_principal *p = NULL;
    assert_int_equal(kl_store_get_principal(f->st, sp, &p), 0);
    assert_string_equal(p->type, "ServicePrincipal");
    assert_string_equal(p->app_id, app);
    assert_string_equal(p->application_id, oid);
    kl_store_principal_free(p);

    /* Names are unique case-insensitively; the refused create wrote nothing. */
    char oid2[37], app2[37], sp2[37];
    test_next_guid(&f->seq, oid2);
    test_next_guid(&f->seq, app2);
    test_next_guid(&f->seq, sp2);
    kl_store_application dup = {.object_id = oid2,
                                .app_id = app2,
                                .display_name = "MY-APP",
                                .sp_object_id = sp2,
                                .enabled = true};
    assert_int_equal(kl_store_create_application(f->st, &dup), KL_ECONFLICT);
    assert_int_equal(kl_store_get_principal(f->st, sp2, &p), KL_ENOTFOUND);
    /* Reusing an id under a free name is refused too. */
    dup.display_name = "other";
    dup.app_id = app;
    assert_int_equal(kl_store_create_application(f->st, &dup), KL_EEXIST);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM applications"), 1);

    /* Rename and disable; both apply to the service principal. */
    dup.app_id = app2;
    assert_int_equal(kl_store_create_application(f->st, &dup), 0);
    assert_int_equal(kl_store_update_application(f->st, oid, "OTHER", NULL), KL_ECONFLICT);
    bool off = false;
    assert_int_equal(kl_store_update_application(f->st, oid, "renamed", &off), 0);
    assert_int_equal(kl_store_get_principal(f->st, sp, &p), 0);
    assert_string_equal(p->display_name, "renamed");
    assert_false(p->enabled);
    kl_store_principal_free(p);

    kl_store_application **list = NULL;
    size_t n = 0;
    assert_int_equal(kl_store_list_applications(f->st, &list, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0]->display_name, "other");
    assert_string_equal(list[1]->display_name, "renamed");
    assert_false(list[1]->enabled);
    kl_store_applications_free(list, n);

    /* The service principal goes only with its application. */
    assert_int_equal(kl_store_delete_principal(f->st, sp), KL_ECONFLICT);
    char ra[37];
    assign(f, "/subscriptions/x", sp, READER, ra);
    assert_int_equal(kl_store_delete_application(f->st, oid), 0);
    assert_int_equal(kl_store_get_principal(f->st, sp, &p), KL_ENOTFOUND);
    assert_false(assignment_exists(f, ra));
    assert_int_equal(kl_store_delete_application(f->st, oid), KL_ENOTFOUND);
    assert_int_equal(kl_store_update_application(f->st, oid, NULL, &off), KL_ENOTFOUND);
}

/* Graph's two steps: an application without a service principal, then its principal
 * by app id; a second one, an unknown application and a taken object id are refused. */
static void test_service_principal_later(void **state)
{
    fixture *f = *state;
    char oid[37], app[37], sp[37], other[37];
    test_next_guid(&f->seq, oid);
    test_next_guid(&f->seq, app);
    test_next_guid(&f->seq, sp);
    test_next_guid(&f->seq, other);
    kl_store_application a = {
        .object_id = oid, .app_id = app, .display_name = "later", .enabled = true, .created_at = 5};
    assert_int_equal(kl_store_create_application(f->st, &a), 0);
    kl_store_application *got = NULL;
    assert_int_equal(kl_store_get_application(f->st, app, &got), 0);
    assert_null(got->sp_object_id);
    assert_false(got->enabled);
    kl_store_application_free(got);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM principals WHERE app_id IS NOT NULL"),
                     0);

    assert_int_equal(kl_store_create_service_principal(f->st, other, sp, true, 6), KL_ENOTFOUND);
    assert_int_equal(kl_store_create_service_principal(f->st, app, sp, true, 6), 0);
    assert_int_equal(kl_store_create_service_principal(f->st, oid, other, true, 6), KL_ECONFLICT);
    assert_int_equal(kl_store_get_application(f->st, oid, &got), 0);
    assert_string_equal(got->sp_object_id, sp);
    assert_true(got->enabled);
    kl_store_application_free(got);
    kl_store_principal *p = NULL;
    assert_int_equal(kl_store_get_principal(f->st, sp, &p), 0);
    assert_string_equal(p->app_id, app);
    assert_string_equal(p->application_id, oid);
    assert_string_equal(p->display_name, "later");
    kl_store_principal_free(p);
    /* It goes with its application. */
    assert_int_equal(kl_store_delete_application(f->st, oid), 0);
    assert_int_equal(kl_store_get_principal(f->st, sp, &p), KL_ENOTFOUND);
}

static void test_principals(void **state)
{
    fixture *f = *state;
    char user[37], group[37], mi[37], mi_app[37];
    test_next_guid(&f->seq, user);
    test_next_guid(&f->seq, group);
    test_next_guid(&f->seq, mi);
    test_next_guid(&f->seq, mi_app);
    kl_store_principal p = {
        .object_id = user, .type = "User", .display_name = "u", .enabled = true};
    assert_int_equal(kl_store_create_principal(f->st, &p), 0);
    assert_int_equal(kl_store_create_principal(f->st, &p), KL_EEXIST);
    p.object_id = group;
    p.type = "Group";
    assert_int_equal(kl_store_create_principal(f->st, &p), 0);
    /* A managed identity needs a client id; users and groups have none. */
    p.object_id = mi;
    p.type = "ManagedIdentity";
    assert_int_equal(kl_store_create_principal(f->st, &p), KL_EINVAL);
    p.app_id = mi_app;
    assert_int_equal(kl_store_create_principal(f->st, &p), 0);
    p.type = "User";
    assert_int_equal(kl_store_create_principal(f->st, &p), KL_EINVAL);
    p.type = "Robot";
    p.app_id = NULL;
    assert_int_equal(kl_store_create_principal(f->st, &p), KL_EINVAL);
    p.type = "User";
    p.object_id = "not-a-guid";
    assert_int_equal(kl_store_create_principal(f->st, &p), KL_EINVAL);

    kl_store_principal **list = NULL;
    size_t n = 0;
    assert_int_equal(kl_store_list_principals(f->st, "ManagedIdentity", &list, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(list[0]->app_id, mi_app);
    kl_store_principals_free(list, n);
    assert_int_equal(kl_store_list_principals(f->st, NULL, &list, &n), 0);
    assert_int_equal(n, 4); /* with the administrator */
    kl_store_principals_free(list, n);

    /* Deleting a principal deletes its assignments, and only its. */
    char a1[37], a2[37], a3[37];
    assign(f, "/", user, READER, a1);
    assign(f, RG, user, OWNER, a2);
    assign(f, RG, group, READER, a3);
    assert_int_equal(kl_store_delete_principal(f->st, user), 0);
    assert_false(assignment_exists(f, a1));
    assert_false(assignment_exists(f, a2));
    assert_true(assignment_exists(f, a3));
    assert_int_equal(kl_store_delete_principal(f->st, user), KL_ENOTFOUND);

    assert_int_equal(kl_store_set_principal_enabled(f->st, group, false), 0);
    kl_store_principal *got = NULL;
    assert_int_equal(kl_store_get_principal(f->st, group, &got), 0);
    assert_false(got->enabled);
    kl_store_principal_free(got);
    assert_int_equal(kl_store_set_principal_enabled(f->st, user, false), KL_ENOTFOUND);
}

/* ------------------------------------------------------------------ assignments */

static void test_assignment_uniqueness(void **state)
{
    fixture *f = *state;
    char oid[37], app[37], sp[37], name[37], other[37];
    create_app(f, "svc", NULL, oid, app, sp);
    bool created = false;
    test_next_guid(&f->seq, name);
    assert_int_equal(put_assignment(f, name, RG, sp, READER, true, &created), 0);
    assert_true(created);

    /* The same (scope, principal, role) under another name: 409 territory. The scope
     * is compared case-insensitively, as ARM ids are. */
    test_next_guid(&f->seq, other);
    assert_int_equal(put_assignment(f, other, RG, sp, READER, true, &created), KL_EEXIST);
    assert_int_equal(put_assignment(f, other, SUB "/RESOURCEGROUPS/RG", sp, READER, true, &created),
                     KL_EEXIST);
    assert_false(assignment_exists(f, other));
    /* Another role, scope or principal is another assignment. */
    assert_int_equal(put_assignment(f, other, RG, sp, OWNER, true, &created), 0);

    /* Re-putting the same name and content is idempotent; other content is refused. */
    created = true;
    assert_int_equal(put_assignment(f, name, RG, sp, READER, true, &created), 0);
    assert_false(created);
    assert_int_equal(put_assignment(f, name, SUB, sp, READER, true, &created), KL_ECONFLICT);
    assert_int_equal(put_assignment(f, name, RG, f->admin, READER, true, &created), KL_ECONFLICT);
    assert_int_equal(put_assignment(f, name, RG, sp, OWNER, true, &created), KL_ECONFLICT);

    /* Unknown principal; custom role that does not exist. */
    char ghost[37], n3[37];
    test_next_guid(&f->seq, ghost);
    test_next_guid(&f->seq, n3);
    assert_int_equal(put_assignment(f, n3, RG, ghost, READER, true, &created), KL_ENOTFOUND);
    assert_int_equal(put_assignment(f, n3, RG, sp, CUSTOM, false, &created), KL_EINVAL);

    /* A custom role is kept; while assigned it cannot be deleted. */
    kl_store_role_definition rd = {.role_id = CUSTOM,
                                   .role_name = "Key Reader",
                                   .description = "reads keys",
                                   .assignable_scopes = "[\"" SUB "\"]",
                                   .permissions = "[{\"actions\":[\"a/b/read\"]}]",
                                   .created_at = 1,
                                   .updated_at = 1};
    assert_int_equal(kl_store_put_role_definition(f->st, &rd, &created), 0);
    assert_true(created);
    assert_int_equal(kl_store_put_role_definition(f->st, &rd, &created), 0);
    assert_false(created);
    kl_store_role_definition dup = rd;
    dup.role_id = "0b0c0d0e-0000-4000-8000-000000000002";
    dup.role_name = "KEY READER";
    assert_int_equal(kl_store_put_role_definition(f->st, &dup, &created), KL_ECONFLICT);
    dup.permissions = "{}";
    assert_int_equal(kl_store_put_role_definition(f->st, &dup, &created), KL_EINVAL);
    assert_int_equal(put_assignment(f, n3, RG, sp, CUSTOM, false, &created), 0);
    assert_int_equal(kl_store_delete_role_definition(f->st, CUSTOM), KL_ECONFLICT);
    assert_int_equal(kl_store_delete_role_assignment(f->st, n3), 0);
    assert_int_equal(kl_store_delete_role_assignment(f->st, n3), KL_ENOTFOUND);
    assert_int_equal(kl_store_delete_role_definition(f->st, CUSTOM), 0);
    assert_int_equal(kl_store_delete_role_definition(f->st, CUSTOM), KL_ENOTFOUND);

    kl_store_role_assignment **list = NULL;
    size_t n = 0;
    assert_int_equal(kl_store_list_role_assignments(f->st, sp, &list, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0]->principal_type, "ServicePrincipal");
    assert_string_equal(list[0]->created_by, f->admin);
    kl_store_role_assignments_free(list, n);
}

/* Deleting an account deletes the assignments at its id and below it, whatever their
 * case, but not those of a sibling whose name merely starts the same way, nor those of
 * ids that would match if '_' were a wildcard. */
static void test_account_cascade(void **state)
{
    fixture *f = *state;
    put_account(f, "rg", "demo");
    put_account(f, "rg", "demo2");
    put_account(f, "a_b", "acc");
    char at[37], dep[37], mixed[37], sibling[37], group[37], lookalike[37], below_other[37];
    assign(f, ACCT "demo", f->admin, READER, at);
    assign(f, ACCT "demo/deployments/chat", f->admin, READER, dep);
    assign(f, SUB "/RESOURCEGROUPS/RG/providers/microsoft.cognitiveservices/ACCOUNTS/DEMO",
           f->admin, OWNER, mixed);
    assign(f, ACCT "demo2", f->admin, READER, sibling);
    assign(f, RG, f->admin, READER, group);
    assign(f, SUB "/resourceGroups/axb/providers/Microsoft.CognitiveServices/accounts/acc",
           f->admin, READER, lookalike);
    assign(f, ACCT "demo2/deployments/demo", f->admin, OWNER, below_other);

    assert_int_equal(kl_store_delete_account(f->st, "DEMO"), 0);
    assert_false(assignment_exists(f, at));
    assert_false(assignment_exists(f, dep));
    assert_false(assignment_exists(f, mixed));
    assert_true(assignment_exists(f, sibling));
    assert_true(assignment_exists(f, group));
    assert_true(assignment_exists(f, below_other));

    assert_int_equal(kl_store_delete_account(f->st, "acc"), 0);
    assert_true(assignment_exists(f, lookalike));

    /* A deployment deletion takes the assignments at and below the deployment only. */
    kl_store_deployment d = {.name = "chat", .backend = "echo", .created_at = 1, .modified_at = 1};
    assert_int_equal(kl_store_put_deployment(f->st, "demo2", &d, false, NULL), 0);
    d.name = "chat2";
    assert_int_equal(kl_store_put_deployment(f->st, "demo2", &d, false, NULL), 0);
    char on_dep[37], on_dep2[37];
    assign(f, ACCT "demo2/deployments/chat", f->admin, READER, on_dep);
    assign(f, ACCT "demo2/deployments/chat2", f->admin, READER, on_dep2);
    assert_int_equal(kl_store_delete_deployment(f->st, "demo2", "chat"), 0);
    assert_false(assignment_exists(f, on_dep));
    assert_true(assignment_exists(f, on_dep2));
    assert_true(assignment_exists(f, sibling));

    /* The cascade is part of the account's transaction: it survives a restart. */
    reopen(f);
    assert_false(assignment_exists(f, at));
    assert_true(assignment_exists(f, sibling));
}

/* The directory can never lose its last enabled Owner of "/". */
static void test_root_owner_rule(void **state)
{
    fixture *f = *state;
    kl_store_role_assignment **list = NULL;
    size_t n = 0;
    assert_int_equal(kl_store_list_role_assignments(f->st, f->admin, &list, &n), 0);
    assert_int_equal(n, 1);
    char admin_owner[37];
    snprintf(admin_owner, sizeof(admin_owner), "%s", list[0]->name);
    kl_store_role_assignments_free(list, n);

    assert_int_equal(kl_store_delete_role_assignment(f->st, admin_owner), KL_EPERM);
    assert_int_equal(kl_store_set_principal_enabled(f->st, f->admin, false), KL_EPERM);
    assert_true(assignment_exists(f, admin_owner));

    /* An app's service principal becomes Owner of "/" too; now the administrator's may
     * go, and then the app is the last one. */
    char oid[37], app[37], sp[37], sp_owner[37];
    create_app(f, "root-app", NULL, oid, app, sp);
    assign(f, "/", sp, OWNER, sp_owner);
    assert_int_equal(kl_store_delete_role_assignment(f->st, admin_owner), 0);
    assert_int_equal(kl_store_delete_application(f->st, oid), KL_EPERM);
    bool off = false;
    assert_int_equal(kl_store_update_application(f->st, oid, NULL, &off), KL_EPERM);
    assert_int_equal(kl_store_delete_role_assignment(f->st, sp_owner), KL_EPERM);
    /* Renaming is fine: it removes nothing. */
    assert_int_equal(kl_store_update_application(f->st, oid, "still-root", NULL), 0);

    char back[37];
    assign(f, "/", f->admin, OWNER, back);
    assert_int_equal(kl_store_update_application(f->st, oid, NULL, &off), 0);
    assert_int_equal(kl_store_delete_application(f->st, oid), 0);
    assert_false(assignment_exists(f, sp_owner));
}

/* ------------------------------------------------------------------ loading, hostile */

typedef struct counts {
    int tenants, principals, roles, assignments;
    char tenant[KL_UUID_LEN + 1];
} counts;

static int count_tenant(void *arg, const kl_store_tenant *t)
{
    counts *c = arg;
    c->tenants++;
    snprintf(c->tenant, sizeof(c->tenant), "%s", t->tenant_id);
    return 0;
}
static int count_principal(void *arg, const kl_store_principal *p)
{
    (void)p;
    ((counts *)arg)->principals++;
    return 0;
}
static int count_role(void *arg, const kl_store_role_definition *rd)
{
    (void)rd;
    ((counts *)arg)->roles++;
    return 0;
}
static int count_assignment(void *arg, const kl_store_role_assignment *ra)
{
    counts *c = arg;
    if (++c->assignments == 2)
        return KL_ECONFLICT; /* a callback's error stops the walk */
    (void)ra;
    return 0;
}

static void test_load_all(void **state)
{
    fixture *f = *state;
    char oid[37], app[37], sp[37], a1[37];
    create_app(f, "visible", NULL, oid, app, sp);
    assign(f, RG, sp, READER, a1);
    kl_store_role_definition rd = {.role_id = CUSTOM,
                                   .role_name = "r",
                                   .assignable_scopes = "[\"/\"]",
                                   .permissions = "[{\"actions\":[\"*/read\"]}]"};
    assert_int_equal(kl_store_put_role_definition(f->st, &rd, NULL), 0);
    counts c = {0};
    kl_store_visitor v = {.arg = &c,
                          .tenant = count_tenant,
                          .principal = count_principal,
                          .role_definition = count_role,
                          .role_assignment = count_assignment};
    assert_int_equal(kl_store_load_all(f->st, &v), KL_ECONFLICT);
    assert_int_equal(c.tenants, 1);
    assert_int_equal(c.principals, 2);
    assert_int_equal(c.roles, 1);
    assert_int_equal(c.assignments, 2);
    assert_true(kl_uuid_valid(c.tenant, strlen(c.tenant)));
}

static void test_hostile_names(void **state)
{
    fixture *f = *state;
    /* SQL metacharacters are data. */
    const char *evil = "x'); DROP TABLE principals; --\"%_";
    char oid[37], app[37], sp[37];
    create_app(f, evil, NULL, oid, app, sp);
    kl_store_application *a = NULL;
    assert_int_equal(kl_store_get_application_by_name(f->st, evil, &a), 0);
    assert_string_equal(a->display_name, evil);
    kl_store_application_free(a);
    assert_int_equal(kl_store_get_application_by_name(f->st, "x'%", &a), KL_ENOTFOUND);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM principals"), 2);

    /* Too long, empty or with control characters: refused, nothing stored. */
    char *big = malloc(10 * 1024 + 1);
    assert_non_null(big);
    memset(big, 'a', 10 * 1024);
    big[10 * 1024] = '\0';
    char o2[37], a2[37], s2[37];
    test_next_guid(&f->seq, o2);
    test_next_guid(&f->seq, a2);
    test_next_guid(&f->seq, s2);
    kl_store_application bad = {.object_id = o2, .app_id = a2, .sp_object_id = s2};
    bad.display_name = big;
    assert_int_equal(kl_store_create_application(f->st, &bad), KL_EINVAL);
    bad.display_name = "";
    assert_int_equal(kl_store_create_application(f->st, &bad), KL_EINVAL);
    bad.display_name = "line\nbreak";
    assert_int_equal(kl_store_create_application(f->st, &bad), KL_EINVAL);
    bad.display_name = "fine";
    bad.object_id = "../../etc";
    assert_int_equal(kl_store_create_application(f->st, &bad), KL_EINVAL);
    free(big);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM applications"), 1);

    /* Ids are looked up case-insensitively (stored lower-case). */
    char upper[37];
    snprintf(upper, sizeof(upper), "%s", oid);
    for (char *p = upper; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 32);
    assert_int_equal(kl_store_get_application(f->st, upper, &a), 0);
    kl_store_application_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_first_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration_from_v1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_applications, setup, teardown),
        cmocka_unit_test_setup_teardown(test_service_principal_later, setup, teardown),
        cmocka_unit_test_setup_teardown(test_principals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_assignment_uniqueness, setup, teardown),
        cmocka_unit_test_setup_teardown(test_account_cascade, setup, teardown),
        cmocka_unit_test_setup_teardown(test_root_owner_rule, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_names, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
