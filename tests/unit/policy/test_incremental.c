/* Unit tests of kl_policy_apply's incremental path, on a real store: a role assignment
 * written or deleted is applied by deriving the published snapshot (its RBAC index
 * overrides the principal) and answers as a full build of the same store does; any
 * other change builds in full; past half the overlay limits the compactor replaces the
 * derived snapshot with a full build without losing a change. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/util.h"
#include "crypto/keys.h"
#include "policy/build.h"
#include "policy/snapshot.h"
#include "rbac/builtin.h"
#include "store/store.h"
#include "fixture.h"

#define SUB "/subscriptions/00000000-0000-0000-0000-000000000000"
#define RG SUB "/resourceGroups/rg"
#define LIST_KEYS "Microsoft.CognitiveServices/accounts/listKeys/action"

typedef struct fixture {
    char dir[64];
    char path[128];
    kl_store *st;
    kl_keys *keys;
    kl_snapshot_holder *h;
    kl_policy *p;
    unsigned seq;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    test_store_open(f->dir, f->path, "/tmp/kl-incr-XXXXXX", &f->st);
    f->keys = test_keys_with(0x17);
    f->h = kl_snapshot_holder_new();
    assert_non_null(f->h);
    assert_int_equal(kl_policy_new(f->st, f->keys, f->h, &f->p), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    kl_policy_free(f->p); /* stops the compactor before the store closes */
    kl_snapshot_holder_free(f->h);
    kl_store_close(f->st);
    kl_keys_free(f->keys);
    test_store_remove(f->dir);
    free(f);
    return 0;
}

static void make_user(fixture *f, char out[KL_UUID_LEN + 1])
{
    snprintf(out, KL_UUID_LEN + 1, "00000000-0000-4000-8000-%012u", ++f->seq);
    kl_store_principal p = {.object_id = out, .type = "User", .display_name = "u", .enabled = true};
    assert_int_equal(kl_store_create_principal(f->st, &p), 0);
}

static void assign(fixture *f, const char *principal, const char *scope, const char *role,
                   char name[KL_UUID_LEN + 1])
{
    snprintf(name, KL_UUID_LEN + 1, "00000000-0000-4000-9000-%012u", ++f->seq);
    kl_store_role_assignment ra = {.name = name,
                                   .scope = (char *)scope,
                                   .principal_id = (char *)principal,
                                   .role_id = (char *)role,
                                   .created_at = 1,
                                   .updated_at = 1};
    assert_int_equal(kl_store_put_role_assignment(f->st, &ra, true, NULL), 0);
}

static bool allowed(const kl_snapshot *s, const char *principal, const char *scope)
{
    kl_rbac_decision d;
    assert_int_equal(kl_rbac_check(kl_snapshot_rbac(s), principal, LIST_KEYS, false, scope, &d), 0);
    return d.allowed;
}

static size_t overlay(fixture *f)
{
    kl_snapshot *s = kl_snapshot_acquire(f->h);
    size_t n = kl_rbac_index_overlay(kl_snapshot_rbac(s), NULL);
    kl_snapshot_release(s);
    return n;
}

/* The published snapshot and a full build of the store agree for these principals. */
static void assert_like_full(fixture *f, char (*users)[KL_UUID_LEN + 1], size_t n)
{
    kl_snapshot *cur = kl_snapshot_acquire(f->h), *full = NULL;
    assert_int_equal(kl_policy_build(f->st, f->keys, &full), 0);
    const char *scopes[] = {SUB, RG, RG "/providers/Microsoft.CognitiveServices/accounts/a"};
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < 3; k++)
            assert_int_equal(allowed(cur, users[i], scopes[k]), allowed(full, users[i], scopes[k]));
    assert_int_equal(kl_rbac_index_assignment_count(kl_snapshot_rbac(cur)),
                     kl_rbac_index_assignment_count(kl_snapshot_rbac(full)));
    kl_snapshot_release(full);
    kl_snapshot_release(cur);
}

static void test_assignment_change_is_derived(void **state)
{
    fixture *f = *state;
    char users[3][KL_UUID_LEN + 1], a1[37], a2[37];
    for (size_t i = 0; i < 3; i++)
        make_user(f, users[i]);
    assign(f, users[2], SUB, KL_ROLE_OWNER, a2);
    assert_int_equal(kl_policy_apply(f->p, NULL), 0);
    assert_int_equal(overlay(f), 0);

    assign(f, users[0], RG, KL_ROLE_CS_CONTRIBUTOR, a1);
    assert_int_equal(kl_policy_apply(f->p, RG), 0);
    assert_int_equal(overlay(f), 1); /* derived, not rebuilt */
    kl_snapshot *s = kl_snapshot_acquire(f->h);
    assert_true(allowed(s, users[0], RG));
    assert_false(allowed(s, users[0], SUB));
    kl_snapshot_release(s);
    assert_like_full(f, users, 3);

    assert_int_equal(kl_store_delete_role_assignment(f->st, a2), 0);
    assert_int_equal(kl_policy_apply(f->p, SUB), 0);
    assert_int_equal(overlay(f), 2);
    s = kl_snapshot_acquire(f->h);
    assert_false(allowed(s, users[2], SUB));
    kl_snapshot_release(s);
    assert_like_full(f, users, 3);

    /* Nothing new: nothing published. */
    uint64_t g = kl_snapshot_holder_generation(f->h);
    assert_int_equal(kl_policy_apply(f->p, NULL), 0);
    assert_int_equal(kl_snapshot_holder_generation(f->h), g);
}

/* A change of another kind (a principal disabled) is built in full: its grants go. */
static void test_other_change_builds_in_full(void **state)
{
    fixture *f = *state;
    char users[1][KL_UUID_LEN + 1], a1[37];
    make_user(f, users[0]);
    assert_int_equal(kl_policy_apply(f->p, NULL), 0);
    assign(f, users[0], RG, KL_ROLE_OWNER, a1);
    assert_int_equal(kl_policy_apply(f->p, RG), 0);
    assert_int_equal(overlay(f), 1);
    assert_int_equal(kl_store_set_principal_enabled(f->st, users[0], false), 0);
    assert_int_equal(kl_policy_apply(f->p, NULL), 0);
    assert_int_equal(overlay(f), 0);
    kl_snapshot *s = kl_snapshot_acquire(f->h);
    assert_false(allowed(s, users[0], RG));
    kl_snapshot_release(s);
    /* Assigned again while disabled: derived, and still grants nothing. */
    char a2[37];
    assign(f, users[0], SUB, KL_ROLE_OWNER, a2);
    assert_int_equal(kl_policy_apply(f->p, SUB), 0);
    assert_int_equal(overlay(f), 1);
    assert_like_full(f, users, 1);
}

/* Past half the overlay limit the compactor rebuilds in full; every change made
 * before and while it ran is in what it publishes. */
static void test_compactor_bounds_the_overlay(void **state)
{
    fixture *f = *state;
    enum { N = KL_RBAC_MAX_OVERLAY_PRINCIPALS / 2 + 8 };
    static char users[N][KL_UUID_LEN + 1];
    char name[37];
    for (size_t i = 0; i < N; i++)
        make_user(f, users[i]);
    assert_int_equal(kl_policy_apply(f->p, NULL), 0);
    for (size_t i = 0; i < N; i++) {
        assign(f, users[i], RG, KL_ROLE_CS_CONTRIBUTOR, name);
        assert_int_equal(kl_policy_apply(f->p, RG), 0);
    }
    /* Waits (bounded) for the compactor's publish. */
    for (int i = 0; i < 2000 && overlay(f) > N / 2; i++)
        nanosleep(&(struct timespec){.tv_nsec = 5 * 1000 * 1000}, NULL);
    assert_true(overlay(f) <= N / 2);
    kl_policy_stop(f->p);
    assert_like_full(f, users, N);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_assignment_change_is_derived, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_change_builds_in_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compactor_bounds_the_overlay, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
