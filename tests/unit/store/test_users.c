/* Unit tests of the store's users, failed sign-ins and groups (migrations 16 and 17) on
 * both engines (engine.h): user principal names unique without regard to case, the
 * password columns, failure counting with its window and lock, and group membership
 * with its nesting rules (cycles, depth) and cascades. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/util.h"
#include "store/store.h"
#include "engine.h"

typedef test_store_fixture fixture;

static int setup(void **state)
{
    return test_store_fixture_setup(state, "users");
}

static int add_user(fixture *f, const char *upn, char oid[KL_UUID_LEN + 1], bool with_pw)
{
    test_next_guid(&f->seq, oid);
    kl_store_user u = {.object_id = oid,
                       .upn = (char *)upn,
                       .display_name = "Some One",
                       .enabled = true,
                       .created_at = 100};
    kl_store_password pw = {.hash = "aGFzaA==", .salt = "c2FsdA==", .t = 2, .m = 19456, .p = 1};
    return kl_store_create_user(f->st, &u, with_pw ? &pw : NULL);
}

static void add_group(fixture *f, char oid[KL_UUID_LEN + 1])
{
    test_next_guid(&f->seq, oid);
    kl_store_group g = {.object_id = oid, .display_name = "g", .mail_nickname = "g"};
    assert_int_equal(kl_store_create_group(f->st, &g), 0);
}

static void test_schema(void **state)
{
    fixture *f = *state;
    int v = 0;
    assert_int_equal(kl_store_schema_version(f->st, &v), 0);
    assert_int_equal(v, test_migration_last_version());
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM schema_version"),
                     test_migration_count());
}

/* A user principal name is unique without regard to case, and finds its user either
 * way; the principal row is a User. */
static void test_user_names(void **state)
{
    fixture *f = *state;
    char a[KL_UUID_LEN + 1], b[KL_UUID_LEN + 1];
    assert_int_equal(add_user(f, "Alice@Example.com", a, true), 0);
    assert_int_equal(add_user(f, "alice@example.COM", b, false), KL_ECONFLICT);
    kl_store_user *u = NULL;
    assert_int_equal(kl_store_get_user(f->st, "ALICE@example.com", &u), 0);
    assert_string_equal(u->object_id, a);
    assert_string_equal(u->upn, "Alice@Example.com");
    assert_true(u->has_password);
    assert_true(u->enabled);
    kl_store_user_free(u);
    u = NULL;
    assert_int_equal(kl_store_get_user(f->st, a, &u), 0);
    kl_store_user_free(u);
    kl_store_principal *p = NULL;
    assert_int_equal(kl_store_get_principal(f->st, a, &p), 0);
    assert_string_equal(p->type, "User");
    kl_store_principal_free(p);
    /* The conflicting attempt left nothing behind. */
    assert_int_equal(kl_store_get_principal(f->st, b, &p), KL_ENOTFOUND);
    assert_int_equal(kl_store_get_user(f->st, "nobody@example.com", &u), KL_ENOTFOUND);
}

/* The sign-in view has the hash; an update replaces it and the flags; listing is by
 * name; deleting the principal deletes the user. */
static void test_user_update(void **state)
{
    fixture *f = *state;
    char a[KL_UUID_LEN + 1], b[KL_UUID_LEN + 1];
    assert_int_equal(add_user(f, "b@example.com", b, false), 0);
    assert_int_equal(add_user(f, "a@example.com", a, false), 0);
    kl_store_user_secret *s = NULL;
    assert_int_equal(kl_store_get_user_secret(f->st, "A@example.com", &s), 0);
    assert_null(s->pw.hash);
    kl_store_user_secret_free(s);
    kl_store_password pw = {.hash = "bmV3", .salt = "c2FsdDI=", .t = 3, .m = 1024, .p = 1};
    bool off = false, force = true;
    assert_int_equal(kl_store_update_user(f->st, a, "Renamed", &off, &pw, &force, 500), 0);
    assert_int_equal(kl_store_get_user_secret(f->st, "a@example.com", &s), 0);
    assert_string_equal(s->pw.hash, "bmV3");
    assert_string_equal(s->pw.salt, "c2FsdDI=");
    assert_int_equal(s->pw.t, 3);
    assert_false(s->enabled);
    assert_true(s->force_change);
    kl_store_user_secret_free(s);
    kl_store_user **list = NULL;
    size_t n = 0;
    assert_int_equal(kl_store_list_users(f->st, &list, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0]->upn, "a@example.com");
    assert_string_equal(list[0]->display_name, "Renamed");
    assert_int_equal(list[0]->password_changed_at, 500);
    kl_store_users_free(list, n);
    assert_int_equal(kl_store_update_user(f->st, "00000000-0000-4000-8000-999999999999", "x", NULL,
                                          NULL, NULL, 1),
                     KL_ENOTFOUND);
    assert_int_equal(kl_store_delete_principal(f->st, a), 0);
    kl_store_user *u = NULL;
    assert_int_equal(kl_store_get_user(f->st, "a@example.com", &u), KL_ENOTFOUND);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM users"), 1);
}

/* Failures count per name (existing or not), lock at the threshold, start again after
 * the window or the lock, are forgotten on clear, and never move the generation. */
static void test_signin_failures(void **state)
{
    fixture *f = *state;
    const kl_store_lockout_rule rule = {.window_s = 100, .threshold = 3, .lock_s = 50};
    kl_store_signin_failures got;
    int64_t gen0 = 0, gen1 = 0;
    assert_int_equal(kl_store_generation(f->st, &gen0), 0);
    assert_int_equal(kl_store_record_signin_failure(f->st, "Ghost@x.io", 1000, &rule, &got), 0);
    assert_int_equal(got.failures, 1);
    assert_int_equal(got.locked_until, 0);
    assert_int_equal(kl_store_record_signin_failure(f->st, "ghost@X.io", 1010, &rule, &got), 0);
    assert_int_equal(kl_store_record_signin_failure(f->st, "ghost@x.io", 1020, &rule, &got), 0);
    assert_int_equal(got.failures, 3);
    assert_int_equal(got.locked_until, 1070);
    assert_int_equal(kl_store_get_signin_failures(f->st, "GHOST@x.io", &got), 0);
    assert_int_equal(got.locked_until, 1070);
    /* After the lock, the next failure starts a new count. */
    assert_int_equal(kl_store_record_signin_failure(f->st, "ghost@x.io", 1070, &rule, &got), 0);
    assert_int_equal(got.failures, 1);
    assert_int_equal(got.locked_until, 0);
    /* Past the window, too. */
    assert_int_equal(kl_store_record_signin_failure(f->st, "ghost@x.io", 1080, &rule, &got), 0);
    assert_int_equal(got.failures, 2);
    assert_int_equal(kl_store_record_signin_failure(f->st, "ghost@x.io", 1170, &rule, &got), 0);
    assert_int_equal(got.failures, 1);
    assert_int_equal(kl_store_clear_signin_failures(f->st, "ghost@x.io"), 0);
    assert_int_equal(kl_store_get_signin_failures(f->st, "ghost@x.io", &got), 0);
    assert_int_equal(got.failures, 0);
    assert_int_equal(kl_store_generation(f->st, &gen1), 0);
    assert_int_equal(gen1, gen0);
}

typedef struct visited {
    char pairs[16][80];
    size_t n;
} visited;

static int on_member(void *arg, const char *g, const char *m)
{
    visited *v = arg;
    if (v->n < 16)
        snprintf(v->pairs[v->n++], 80, "%s>%s", m, g);
    return 0;
}

/* Members of any type; a member once; the walk visits every membership; deleting a
 * member or the group takes the rows with it. */
static void test_group_members(void **state)
{
    fixture *f = *state;
    char g[KL_UUID_LEN + 1], h[KL_UUID_LEN + 1], u[KL_UUID_LEN + 1];
    add_group(f, g);
    add_group(f, h);
    assert_int_equal(add_user(f, "u@example.com", u, false), 0);
    assert_int_equal(kl_store_add_group_member(f->st, g, u, 1), 0);
    assert_int_equal(kl_store_add_group_member(f->st, g, u, 1), KL_EEXIST);
    assert_int_equal(kl_store_add_group_member(f->st, h, g, 1), 0);
    assert_int_equal(kl_store_add_group_member(f->st, u, g, 1), KL_ENOTFOUND); /* u no group */
    assert_int_equal(kl_store_add_group_member(f->st, g, "00000000-0000-4000-8000-999999999999", 1),
                     KL_EINVAL);
    kl_store_principal **list = NULL;
    size_t n = 0;
    assert_int_equal(kl_store_list_group_members(f->st, g, &list, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(list[0]->object_id, u);
    assert_string_equal(list[0]->type, "User");
    kl_store_principals_free(list, n);
    visited v = {0};
    kl_store_visitor vis = {.arg = &v, .group_member = on_member};
    assert_int_equal(kl_store_load_all(f->st, &vis), 0);
    assert_int_equal(v.n, 2);
    kl_store_group **gl = NULL;
    assert_int_equal(kl_store_list_groups(f->st, &gl, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(gl[0]->mail_nickname, "g");
    kl_store_groups_free(gl, n);
    assert_int_equal(kl_store_remove_group_member(f->st, h, u), KL_ENOTFOUND);
    assert_int_equal(kl_store_delete_principal(f->st, u), 0);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM group_members"), 1);
    assert_int_equal(kl_store_delete_principal(f->st, h), 0);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM group_members"), 0);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM security_groups"), 1);
    assert_int_equal(kl_store_list_group_members(f->st, h, &list, &n), KL_ENOTFOUND);
}

/* A group cannot contain itself, directly or through others; nothing is written. */
static void test_group_cycles(void **state)
{
    fixture *f = *state;
    char a[KL_UUID_LEN + 1], b[KL_UUID_LEN + 1], c[KL_UUID_LEN + 1];
    add_group(f, a);
    add_group(f, b);
    add_group(f, c);
    assert_int_equal(kl_store_add_group_member(f->st, a, a, 1), KL_ECONFLICT);
    assert_int_equal(kl_store_add_group_member(f->st, b, a, 1), 0); /* a in b */
    assert_int_equal(kl_store_add_group_member(f->st, a, b, 1), KL_ECONFLICT);
    assert_int_equal(kl_store_add_group_member(f->st, c, b, 1), 0); /* b in c */
    assert_int_equal(kl_store_add_group_member(f->st, a, c, 1), KL_ECONFLICT);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM group_members"), 2);
    /* A diamond is no cycle. */
    assert_int_equal(kl_store_add_group_member(f->st, c, a, 1), 0);
}

/* Chains of groups stop at KL_MAX_GROUP_NESTING, counted from either end. */
static void test_group_nesting(void **state)
{
    fixture *f = *state;
    char g[KL_MAX_GROUP_NESTING + 1][KL_UUID_LEN + 1], u[KL_UUID_LEN + 1];
    for (int i = 0; i <= KL_MAX_GROUP_NESTING; i++)
        add_group(f, g[i]);
    assert_int_equal(add_user(f, "deep@example.com", u, false), 0);
    assert_int_equal(kl_store_add_group_member(f->st, g[0], u, 1), 0);
    /* g[0] in g[1] in ... g[MAX-1]: MAX groups deep. */
    for (int i = 1; i < KL_MAX_GROUP_NESTING; i++)
        assert_int_equal(kl_store_add_group_member(f->st, g[i], g[i - 1], 1), 0);
    assert_int_equal(
        kl_store_add_group_member(f->st, g[KL_MAX_GROUP_NESTING], g[KL_MAX_GROUP_NESTING - 1], 1),
        KL_ETOOBIG);
    /* From the other end: a group put into the chain's bottom is one too many as well. */
    assert_int_equal(kl_store_add_group_member(f->st, g[0], g[KL_MAX_GROUP_NESTING], 1),
                     KL_ETOOBIG);
    /* A user may still join the top group directly. */
    assert_int_equal(kl_store_add_group_member(f->st, g[KL_MAX_GROUP_NESTING - 1], u, 1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_schema, setup, test_store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_user_names, setup, test_store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_user_update, setup, test_store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_signin_failures, setup, test_store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_group_members, setup, test_store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_group_cycles, setup, test_store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_group_nesting, setup, test_store_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
