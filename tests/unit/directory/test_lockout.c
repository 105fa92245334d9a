/* Unit tests of password sign-in with lockout (directory/lockout.h) and of the user
 * rules (directory/users.h), on a real store (engine.h: SQLite, or PostgreSQL): the
 * right password, a wrong one, a name that does not exist answering exactly as an
 * existing one does, the slowdown, the lock (the right password refused during it)
 * and its expiry, a disabled user, an administrator's reset, and the password policy.
 * Time is passed in, never waited for. */
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
#include "crypto/argon2id.h"
#include "directory/lockout.h"
#include "directory/users.h"
#include "../store/engine.h"

#define PW "correct horse battery"
#define NOW 1800000000LL

typedef struct fixture {
    char dir[64];
    char path[128];
    kl_store *st;
    char oid[40];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(
        test_store_dir_open("lockout", f->dir, sizeof(f->dir), f->path, sizeof(f->path), &f->st),
        0);
    kl_store_user *u = NULL;
    char why[128];
    assert_int_equal(kl_users_create(f->st, "Ann@Example.com", "Ann", PW, strlen(PW), false, &u,
                                     why, sizeof(why)),
                     0);
    snprintf(f->oid, sizeof(f->oid), "%s", u->object_id);
    kl_store_user_free(u);
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

static kl_lockout_result verify(fixture *f, const char *upn, const char *pw, int64_t now,
                                uint32_t *delay)
{
    kl_lockout_result r = KL_LOCKOUT_OK;
    uint32_t d = 0;
    assert_int_equal(kl_lockout_verify_password(f->st, upn, pw, strlen(pw), now, &r, &d, NULL), 0);
    if (delay)
        *delay = d;
    return r;
}

static void test_right_and_wrong(void **state)
{
    fixture *f = *state;
    kl_lockout_result r;
    kl_lockout_user u = {0};
    assert_int_equal(
        kl_lockout_verify_password(f->st, "ann@example.COM", PW, strlen(PW), NOW, &r, NULL, &u), 0);
    assert_int_equal(r, KL_LOCKOUT_OK);
    assert_string_equal(u.object_id, f->oid);
    assert_int_equal(verify(f, "ann@example.com", "correct horse batterY", NOW, NULL),
                     KL_LOCKOUT_WRONG);
    /* The password is stored only as its hash. */
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM users WHERE pw_hash LIKE '%horse%'"),
                     0);
}

/* The same answers, slowdowns and lock for a name that exists and one that does not. */
static void test_lock_looks_alike(void **state)
{
    fixture *f = *state;
    const char *names[2] = {"ann@example.com", "nobody@example.com"};
    kl_lockout_result seen[2][KL_SIGNIN_LOCKOUT_THRESHOLD];
    uint32_t delays[2][KL_SIGNIN_LOCKOUT_THRESHOLD];
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < KL_SIGNIN_LOCKOUT_THRESHOLD; i++)
            seen[k][i] = verify(f, names[k], "wrong password!", NOW + i, &delays[k][i]);
    assert_memory_equal(seen[0], seen[1], sizeof(seen[0]));
    assert_memory_equal(delays[0], delays[1], sizeof(delays[0]));
    assert_int_equal(seen[0][0], KL_LOCKOUT_WRONG);
    assert_int_equal(delays[0][0], 0);
    assert_int_equal(delays[0][KL_SIGNIN_SLOWDOWN_AFTER], KL_SIGNIN_SLOWDOWN_MS);
    assert_int_equal(seen[0][KL_SIGNIN_LOCKOUT_THRESHOLD - 1], KL_LOCKOUT_LOCKED);
}

/* During the lock the right password is refused; once it ends it works again. */
static void test_lock_and_expiry(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < KL_SIGNIN_LOCKOUT_THRESHOLD; i++)
        verify(f, "ann@example.com", "wrong password!", NOW, NULL);
    assert_int_equal(verify(f, "ann@example.com", PW, NOW + KL_SIGNIN_LOCKOUT_S - 1, NULL),
                     KL_LOCKOUT_LOCKED);
    assert_int_equal(verify(f, "ann@example.com", PW, NOW + KL_SIGNIN_LOCKOUT_S, NULL),
                     KL_LOCKOUT_OK);
    /* The success cleared the count: one failure is no lock. */
    assert_int_equal(
        verify(f, "ann@example.com", "wrong password!", NOW + KL_SIGNIN_LOCKOUT_S, NULL),
        KL_LOCKOUT_WRONG);
}

static void test_disabled_and_reset(void **state)
{
    fixture *f = *state;
    bool off = false;
    char why[128];
    assert_int_equal(kl_store_update_user(f->st, f->oid, NULL, &off, NULL, NULL, NOW), 0);
    assert_int_equal(verify(f, "ann@example.com", PW, NOW, NULL), KL_LOCKOUT_DISABLED);
    assert_int_equal(verify(f, "ann@example.com", "wrong password!", NOW, NULL), KL_LOCKOUT_WRONG);
    off = true;
    assert_int_equal(kl_store_update_user(f->st, f->oid, NULL, &off, NULL, NULL, NOW), 0);
    assert_int_equal(
        kl_users_set_password(f->st, f->oid, "a new long secret", 17, true, why, sizeof(why)), 0);
    assert_int_equal(verify(f, "ann@example.com", PW, NOW, NULL), KL_LOCKOUT_WRONG);
    kl_lockout_result r;
    kl_lockout_user u = {0};
    assert_int_equal(kl_lockout_verify_password(f->st, "ann@example.com", "a new long secret", 17,
                                                NOW, &r, NULL, &u),
                     0);
    assert_int_equal(r, KL_LOCKOUT_OK);
    assert_true(u.force_change);
}

static void test_policy(void **state)
{
    (void)state;
    char why[128];
    assert_int_equal(kl_users_password_policy("short", 5, NULL, NULL, why, sizeof(why)), KL_EINVAL);
    assert_int_equal(
        kl_users_password_policy("Ann@Example.com", 15, "ann@example.com", NULL, why, sizeof(why)),
        KL_EINVAL);
    assert_int_equal(kl_users_password_policy("annannannann", 12, "annannannann@example.com", NULL,
                                              why, sizeof(why)),
                     KL_EINVAL);
    assert_int_equal(kl_users_password_policy("Display Name Here", 17, "a@b.cd",
                                              "display name here", why, sizeof(why)),
                     KL_EINVAL);
    char big[KL_MAX_PASSWORD + 2];
    memset(big, 'x', sizeof(big));
    assert_int_equal(
        kl_users_password_policy(big, KL_MAX_PASSWORD + 1, NULL, NULL, why, sizeof(why)),
        KL_EINVAL);
    assert_int_equal(kl_users_password_policy(big, KL_MAX_PASSWORD, NULL, NULL, why, sizeof(why)),
                     0);
    assert_int_equal(kl_users_password_policy("twelve bytes", 12, "a@b.cd", "A", why, sizeof(why)),
                     0);
    assert_true(kl_users_valid_upn("a.b-c_d@example.co", 18));
    assert_false(kl_users_valid_upn("a@example", 9));
    assert_false(kl_users_valid_upn("a..b@example.com", 16));
    assert_false(kl_users_valid_upn(".a@example.com", 14));
    assert_false(kl_users_valid_upn("a@b@example.com", 15));
    assert_false(kl_users_valid_upn("a b@example.com", 15));
    assert_false(kl_users_valid_upn("a@-x.com", 8));
}

/* The hash: a fresh salt each time; verification refuses absurd stored parameters. */
static void test_argon2id(void **state)
{
    (void)state;
    kl_argon2id a, b;
    assert_int_equal(kl_argon2id_hash(PW, strlen(PW), &a), 0);
    assert_int_equal(kl_argon2id_hash(PW, strlen(PW), &b), 0);
    assert_memory_not_equal(a.salt, b.salt, sizeof(a.salt));
    assert_true(kl_argon2id_verify(PW, strlen(PW), &a));
    assert_false(kl_argon2id_verify(PW, strlen(PW) - 1, &a));
    assert_false(kl_argon2id_verify(PW, strlen(PW), NULL));
    a.m = KL_ARGON2_MAX_M_COST + 1;
    assert_false(kl_argon2id_verify(PW, strlen(PW), &a));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_right_and_wrong, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_looks_alike, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_and_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disabled_and_reset, setup, teardown),
        cmocka_unit_test(test_policy),
        cmocka_unit_test(test_argon2id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
