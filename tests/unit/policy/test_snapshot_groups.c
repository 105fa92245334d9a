/* Unit tests of role assignments through groups in the snapshot, built from a real
 * SQLite store through kl_policy_apply as the control plane builds it: a user five
 * groups deep gets what the top group is assigned, the closure carries the groups that
 * hold assignments once each, a group's new assignment reaches its members in the next
 * snapshot (an assignment change that is otherwise applied incrementally), and taking
 * the user out of a group is in force in the very next snapshot. */
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
#include "common/util.h"
#include "crypto/keys.h"
#include "directory/users.h"
#include "policy/build.h"
#include "policy/snapshot.h"
#include "store/store.h"
#include "fixture.h"

#define ACCT                                                                                       \
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/"             \
    "Microsoft.CognitiveServices/accounts/demo"
#define CHAT "Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/completions/action"
#define OPENAI_USER "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd"
#define ACCT2                                                                                      \
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/"             \
    "Microsoft.CognitiveServices/accounts/other"
#define DEPTH 5

typedef struct fixture {
    char dir[64];
    char path[128];
    kl_store *st;
    kl_keys *keys;
    kl_snapshot_holder *h;
    kl_policy *pol;
    char g[DEPTH][40]; /* g[0] holds the user; g[i] is in g[i+1] */
    char user[40];
    char other[40];
} fixture;

static void make_group(fixture *f, char out[40])
{
    kl_store_group *g = NULL;
    assert_int_equal(kl_users_create_group(f->st, "team", "team", NULL, &g), 0);
    snprintf(out, 40, "%s", g->object_id);
    kl_store_group_free(g);
}

static void make_user(fixture *f, const char *upn, char out[40])
{
    kl_store_user *u = NULL;
    assert_int_equal(kl_users_create(f->st, upn, "someone", NULL, 0, false, &u, NULL, 0), 0);
    snprintf(out, 40, "%s", u->object_id);
    kl_store_user_free(u);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    test_store_open(f->dir, f->path, "/tmp/kl-snapgroups-XXXXXX", &f->st);
    f->keys = test_keys_with(0x17);
    f->h = kl_snapshot_holder_new();
    assert_non_null(f->h);
    assert_int_equal(kl_policy_new(f->st, f->keys, f->h, &f->pol), 0);
    make_user(f, "deep@example.com", f->user);
    make_user(f, "other@example.com", f->other);
    for (int i = 0; i < DEPTH; i++)
        make_group(f, f->g[i]);
    assert_int_equal(kl_store_add_group_member(f->st, f->g[0], f->user, 1), 0);
    for (int i = 0; i + 1 < DEPTH; i++)
        assert_int_equal(kl_store_add_group_member(f->st, f->g[i + 1], f->g[i], 1), 0);
    kl_store_role_assignment ra = {.name = "00000000-0000-4000-8000-0000000000aa",
                                   .scope = ACCT,
                                   .principal_id = f->g[DEPTH - 1],
                                   .role_id = OPENAI_USER,
                                   .created_at = 1,
                                   .updated_at = 1};
    assert_int_equal(kl_store_put_role_assignment(f->st, &ra, true, NULL), 0);
    assert_int_equal(kl_policy_apply(f->pol, "/"), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    kl_policy_free(f->pol);
    kl_snapshot_holder_free(f->h);
    kl_store_close(f->st);
    kl_keys_free(f->keys);
    test_store_remove(f->dir);
    free(f);
    return 0;
}

static bool allowed_at(fixture *f, const char *oid, const char *scope)
{
    kl_snapshot *s = kl_snapshot_acquire(f->h);
    const kl_principal *p = kl_snapshot_principal(s, oid);
    kl_rbac_decision d = {0};
    bool ok = p && kl_snapshot_rbac_check(s, p, CHAT, true, scope, &d) == 0 && d.allowed;
    kl_snapshot_release(s);
    return ok;
}

static bool allowed(fixture *f, const char *oid)
{
    return allowed_at(f, oid, ACCT "/deployments/chat");
}

static void test_deep_member_allowed(void **state)
{
    fixture *f = *state;
    assert_true(allowed(f, f->user));
    assert_false(allowed(f, f->other));
    kl_snapshot *s = kl_snapshot_acquire(f->h);
    const kl_principal *p = kl_snapshot_principal(s, f->user);
    /* Only the top group holds an assignment: the check carries just that one. */
    assert_int_equal(p->n_groups, 1);
    assert_string_equal(p->groups[0], f->g[DEPTH - 1]);
    assert_int_equal(kl_snapshot_principal(s, f->g[DEPTH - 1])->n_groups, 0);
    assert_int_equal(kl_snapshot_principal(s, f->g[0])->n_groups, 1);
    kl_snapshot_release(s);
}

/* A diamond (the user also directly in the top group) lists the top group once; a
 * middle group given a role is then carried too, nearest first. */
static void test_diamond_once(void **state)
{
    fixture *f = *state;
    assert_int_equal(kl_store_add_group_member(f->st, f->g[DEPTH - 1], f->user, 1), 0);
    kl_store_role_assignment ra = {.name = "00000000-0000-4000-8000-0000000000bb",
                                   .scope = ACCT2,
                                   .principal_id = f->g[1],
                                   .role_id = OPENAI_USER,
                                   .created_at = 1,
                                   .updated_at = 1};
    assert_int_equal(kl_store_put_role_assignment(f->st, &ra, true, NULL), 0);
    assert_int_equal(kl_policy_apply(f->pol, "/"), 0);
    kl_snapshot *s = kl_snapshot_acquire(f->h);
    const kl_principal *p = kl_snapshot_principal(s, f->user);
    assert_int_equal(p->n_groups, 2);
    assert_string_equal(p->groups[0], f->g[DEPTH - 1]);
    assert_string_equal(p->groups[1], f->g[1]);
    kl_snapshot_release(s);
}

/* A role given to a group that held none is an assignment change, which the policy
 * otherwise applies incrementally: its members must have it in the next snapshot. */
static void test_group_grant_next_snapshot(void **state)
{
    fixture *f = *state;
    assert_false(allowed_at(f, f->user, ACCT2 "/deployments/chat"));
    kl_store_role_assignment ra = {.name = "00000000-0000-4000-8000-0000000000cc",
                                   .scope = ACCT2,
                                   .principal_id = f->g[2],
                                   .role_id = OPENAI_USER,
                                   .created_at = 1,
                                   .updated_at = 1};
    assert_int_equal(kl_store_put_role_assignment(f->st, &ra, true, NULL), 0);
    assert_int_equal(kl_policy_apply(f->pol, ACCT2), 0);
    assert_true(allowed_at(f, f->user, ACCT2 "/deployments/chat"));
}

/* Out of the bottom group: refused in the next snapshot; another user put in: allowed. */
static void test_removal_next_snapshot(void **state)
{
    fixture *f = *state;
    assert_int_equal(kl_store_remove_group_member(f->st, f->g[0], f->user), 0);
    assert_int_equal(kl_store_add_group_member(f->st, f->g[2], f->other, 1), 0);
    assert_int_equal(kl_policy_apply(f->pol, "/"), 0);
    assert_false(allowed(f, f->user));
    assert_true(allowed(f, f->other));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_deep_member_allowed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_diamond_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_grant_next_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_removal_next_snapshot, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
