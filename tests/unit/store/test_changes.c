/* Unit tests of the store's change log (store_changes) and kl_store_load_since: a role
 * assignment written or deleted is reported as its principal's change with the
 * principal's current assignments; any other write, a generation the log no longer
 * holds, or more than KL_STORE_MAX_CHANGED principals mean a full build; the log keeps
 * the last KL_STORE_CHANGES_KEPT generations. Runs on SQLite and PostgreSQL (engine.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/util.h"
#include "engine.h"
#include "store/store.h"

#define SUB "/subscriptions/00000000-0000-0000-0000-000000000001"

typedef test_store_fixture fixture;

static int setup(void **state)
{
    return test_store_fixture_setup(state, "chg");
}

static void make_user(fixture *f, char out[KL_UUID_LEN + 1])
{
    test_next_guid(&f->seq, out);
    kl_store_principal p = {.object_id = out, .type = "User", .display_name = "u", .enabled = true};
    assert_int_equal(kl_store_create_principal(f->st, &p), 0);
}

static void assign(fixture *f, const char *principal, const char *scope, char name[KL_UUID_LEN + 1])
{
    test_next_guid(&f->seq, name);
    kl_store_role_assignment ra = {.name = name,
                                   .scope = (char *)scope,
                                   .principal_id = (char *)principal,
                                   .role_id = KL_STORE_OWNER_ROLE_ID,
                                   .created_at = 1,
                                   .updated_at = 1};
    assert_int_equal(kl_store_put_role_assignment(f->st, &ra, true, NULL), 0);
}

static int64_t generation(fixture *f)
{
    int64_t g = 0;
    assert_int_equal(kl_store_generation(f->st, &g), 0);
    return g;
}

static kl_store_changes *since(fixture *f, int64_t g)
{
    kl_store_changes *c = NULL;
    assert_int_equal(kl_store_load_since(f->st, g, &c), 0);
    assert_non_null(c);
    return c;
}

/* What a node does after a full build: read everything. */
static void reload(fixture *f)
{
    kl_store_visitor v = {0};
    assert_int_equal(kl_store_load_all(f->st, &v), 0);
}

/* Nothing committed since: the same generation, nothing to apply. */
static void test_nothing_changed(void **state)
{
    fixture *f = *state;
    int64_t g = generation(f);
    kl_store_changes *c = since(f, g);
    assert_int_equal(c->generation, g);
    assert_false(c->full);
    assert_int_equal(c->n_principals, 0);
    kl_store_changes_free(c);
}

/* A created, re-put and deleted assignment each name its principal only, with the
 * principal's assignments as they are after the change. */
static void test_assignment_changes_name_their_principal(void **state)
{
    fixture *f = *state;
    char user[37], other[37], a1[37], a2[37], a3[37];
    make_user(f, user);
    make_user(f, other);
    assign(f, other, SUB, a3);
    int64_t g = generation(f);
    assign(f, user, SUB, a1);
    assign(f, user, SUB "/resourceGroups/rg", a2);
    kl_store_changes *c = since(f, g);
    assert_int_equal(c->generation, g + 2);
    assert_false(c->full);
    assert_int_equal(c->n_principals, 1);
    assert_string_equal(c->principals[0], user);
    assert_int_equal(c->n_assignments, 2);
    assert_string_equal(c->assignments[0]->principal_id, user);
    assert_string_equal(c->assignments[1]->principal_id, user);
    kl_store_changes_free(c);

    g = generation(f);
    assert_int_equal(kl_store_delete_role_assignment(f->st, a1), 0);
    c = since(f, g);
    assert_false(c->full);
    assert_int_equal(c->n_principals, 1);
    assert_string_equal(c->principals[0], user);
    assert_int_equal(c->n_assignments, 1);
    assert_string_equal(c->assignments[0]->name, a2);
    kl_store_changes_free(c);

    g = generation(f);
    assert_int_equal(kl_store_delete_role_assignment(f->st, a2), 0);
    c = since(f, g);
    assert_false(c->full);
    assert_int_equal(c->n_principals, 1);
    assert_int_equal(c->n_assignments, 0);
    kl_store_changes_free(c);
}

/* A write that does not say what it changed (here: an account) is logged as 'all'. */
static void test_other_writes_mean_full(void **state)
{
    fixture *f = *state;
    char user[37], a1[37];
    make_user(f, user);
    int64_t g = generation(f);
    assign(f, user, SUB, a1);
    kl_store_principal p = {.object_id = "00000000-0000-4000-8000-999999999999",
                            .type = "Group",
                            .display_name = "g",
                            .enabled = true};
    assert_int_equal(kl_store_create_principal(f->st, &p), 0);
    kl_store_changes *c = since(f, g);
    assert_true(c->full);
    assert_int_equal(c->generation, g + 2);
    assert_int_equal(c->n_principals, 0);
    assert_int_equal(c->n_assignments, 0);
    kl_store_changes_free(c);
    char sql[160];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM store_changes WHERE generation = %lld AND kind = 'all'",
             (long long)(g + 2));
    assert_int_equal(raw_int(f->path, sql), 1);
}

/* More principals than a load returns: a full build instead. */
static void test_too_many_principals_mean_full(void **state)
{
    fixture *f = *state;
    char users[KL_STORE_MAX_CHANGED + 1][37], name[37];
    for (size_t i = 0; i <= KL_STORE_MAX_CHANGED; i++)
        make_user(f, users[i]);
    int64_t g = generation(f);
    for (size_t i = 0; i < KL_STORE_MAX_CHANGED; i++)
        assign(f, users[i], SUB, name);
    kl_store_changes *c = since(f, g);
    assert_false(c->full);
    assert_int_equal(c->n_principals, KL_STORE_MAX_CHANGED);
    kl_store_changes_free(c);
    assign(f, users[KL_STORE_MAX_CHANGED], SUB, name);
    c = since(f, g);
    assert_true(c->full);
    assert_int_equal(c->n_principals, 0);
    kl_store_changes_free(c);
}

/* The log keeps the last KL_STORE_CHANGES_KEPT generations; asking from before them
 * (or from a generation the store never had) means a full build. */
static void test_log_is_pruned_and_gap_means_full(void **state)
{
    fixture *f = *state;
    char user[37], name[37];
    make_user(f, user);
    int64_t g = generation(f);
    assign(f, user, SUB, name);
    assert_true(raw_int(f->path, "SELECT count(*) FROM store_changes") > 0);
    /* Jump the generation as if KL_STORE_CHANGES_KEPT commits had happened. */
    char sql[160];
    snprintf(sql, sizeof(sql), "UPDATE store_generation SET generation = %lld",
             (long long)(g + KL_STORE_CHANGES_KEPT));
    assert_int_equal(raw_exec(f->path, sql), 0);
    reload(f); /* that write went around the store: the node rebuilds in full */
    assign(f, user, SUB "/resourceGroups/rg", name);
    /* Generation g + 1 + KL_STORE_CHANGES_KEPT: everything at or before g + 1 is gone. */
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM store_changes WHERE generation <= %lld",
             (long long)(g + 1));
    assert_int_equal(raw_int(f->path, sql), 0);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM store_changes"), 1);
    kl_store_changes *c = since(f, g);
    assert_true(c->full);
    kl_store_changes_free(c);
    c = since(f, generation(f) + 5);
    assert_true(c->full);
    kl_store_changes_free(c);
    c = since(f, generation(f) - 1);
    assert_false(c->full);
    assert_int_equal(c->n_principals, 1);
    kl_store_changes_free(c);
}

/* On SQLite, a write around the store (it logged nothing) means a full build until the
 * next full read. */
static void test_write_around_the_store_means_full(void **state)
{
    fixture *f = *state;
    SQLITE_ONLY();
    char user[37], name[37];
    make_user(f, user);
    int64_t g = generation(f);
    assert_int_equal(raw_exec(f->path, "UPDATE principals SET display_name = 'x'"), 0);
    assign(f, user, SUB, name);
    kl_store_changes *c = since(f, g);
    assert_true(c->full);
    kl_store_changes_free(c);
    reload(f);
    c = since(f, g);
    assert_false(c->full);
    assert_int_equal(c->n_principals, 1);
    kl_store_changes_free(c);
}

/* A refused write logs nothing and moves nothing. */
static void test_refused_write_logs_nothing(void **state)
{
    fixture *f = *state;
    long long before = raw_int(f->path, "SELECT count(*) FROM store_changes");
    int64_t g = generation(f);
    assert_int_equal(kl_store_delete_role_assignment(f->st, "00000000-0000-4000-8000-777777777777"),
                     KL_ENOTFOUND);
    assert_int_equal(generation(f), g);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM store_changes"), before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_nothing_changed, setup, test_store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_assignment_changes_name_their_principal, setup,
                                        test_store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_other_writes_mean_full, setup,
                                        test_store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_too_many_principals_mean_full, setup,
                                        test_store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_log_is_pruned_and_gap_means_full, setup,
                                        test_store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_write_around_the_store_means_full, setup,
                                        test_store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_refused_write_logs_nothing, setup,
                                        test_store_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
