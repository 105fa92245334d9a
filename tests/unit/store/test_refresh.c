/* Unit tests of the store's refresh tokens (migration 18) on both engines (engine.h):
 * stored by hash, rotation within the family, a second redemption revoking the family,
 * a batch with its own result per rotation, revocation by family, user (a password
 * reset too) and session, and pruning of expired tokens. */
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
    return test_store_fixture_setup(state, "refresh");
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

static void hash_of(unsigned char h[KL_STORE_REFRESH_HASH_LEN], int n)
{
    memset(h, 0, KL_STORE_REFRESH_HASH_LEN);
    h[0] = (unsigned char)n;
    h[31] = 0x5a;
}

static kl_store_refresh rec(const char *family, const char *session, int64_t exp)
{
    return (kl_store_refresh){.family_id = (char *)family,
                              .user_oid = "00000000-0000-4000-8000-000000000001",
                              .client_id = "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
                              .scope = "https://cognitiveservices.azure.com/.default openid",
                              .session_id = (char *)session,
                              .created_at = 100,
                              .expires_at = exp};
}

static int get(fixture *f, int n, kl_store_refresh **out)
{
    unsigned char h[KL_STORE_REFRESH_HASH_LEN];
    hash_of(h, n);
    return kl_store_refresh_get(f->st, h, out);
}

static int rotate(fixture *f, int from, int to, int64_t now)
{
    unsigned char a[KL_STORE_REFRESH_HASH_LEN], b[KL_STORE_REFRESH_HASH_LEN];
    hash_of(a, from);
    hash_of(b, to);
    kl_store_refresh next = rec(NULL, NULL, now + 1000);
    return kl_store_refresh_rotate(f->st, a, b, &next, now);
}

static void create(fixture *f, int n, const char *family, const char *session, int64_t exp)
{
    unsigned char h[KL_STORE_REFRESH_HASH_LEN];
    hash_of(h, n);
    kl_store_refresh r = rec(family, session, exp);
    assert_int_equal(kl_store_refresh_create(f->st, h, &r), 0);
}

static bool revoked(fixture *f, int n)
{
    kl_store_refresh *r = NULL;
    assert_int_equal(get(f, n, &r), 0);
    bool v = r->revoked;
    kl_store_refresh_free(r);
    return v;
}

#define FAM1 "00000000-0000-4000-8000-0000000000f1"
#define FAM2 "00000000-0000-4000-8000-0000000000f2"

static void test_rotation_and_reuse(void **state)
{
    fixture *f = *state;
    create(f, 1, FAM1, "sess-A", 5000);
    kl_store_refresh *r = NULL;
    assert_int_equal(get(f, 1, &r), 0);
    assert_string_equal(r->family_id, FAM1);
    assert_string_equal(r->session_id, "sess-A");
    assert_int_equal(r->used_at, 0);
    assert_false(r->revoked);
    assert_null(r->upn); /* no such user row */
    kl_store_refresh_free(r);
    assert_int_equal(get(f, 9, &r), KL_ENOTFOUND);
    /* Rotation: 1 spent, 2 in the same family. */
    assert_int_equal(rotate(f, 1, 2, 200), 0);
    assert_int_equal(get(f, 2, &r), 0);
    assert_string_equal(r->family_id, FAM1);
    assert_int_equal(r->expires_at, 1200);
    kl_store_refresh_free(r);
    assert_int_equal(get(f, 1, &r), 0);
    assert_int_equal(r->used_at, 200);
    kl_store_refresh_free(r);
    assert_int_equal(rotate(f, 2, 3, 300), 0);
    /* 1 again: reuse; the family goes, 3 (never used) with it. */
    assert_int_equal(rotate(f, 1, 4, 400), KL_EEXIST);
    assert_true(revoked(f, 3));
    assert_int_equal(get(f, 4, &r), KL_ENOTFOUND); /* nothing stored for the reuse */
    assert_int_equal(rotate(f, 3, 5, 500), KL_EPERM);
    assert_int_equal(rotate(f, 77, 78, 500), KL_ENOTFOUND);
}

static void test_batch(void **state)
{
    fixture *f = *state;
    create(f, 10, FAM1, NULL, 5000);
    create(f, 20, FAM2, NULL, 5000);
    kl_store_refresh_rotation b[4] = {0};
    int from[4] = {10, 20, 10, 99}, to[4] = {11, 21, 12, 98};
    for (int i = 0; i < 4; i++) {
        hash_of(b[i].old, from[i]);
        hash_of(b[i].next_hash, to[i]);
        b[i].next = rec(NULL, NULL, 9000);
    }
    assert_int_equal(kl_store_refresh_rotate_batch(f->st, b, 4, 600), 0);
    assert_int_equal(b[0].result, 0);
    assert_int_equal(b[1].result, 0);
    assert_int_equal(b[2].result, KL_EEXIST); /* 10 twice in one batch: the second is reuse */
    assert_int_equal(b[3].result, KL_ENOTFOUND);
    assert_true(revoked(f, 11));  /* family 1 revoked by the reuse */
    assert_false(revoked(f, 21)); /* family 2 untouched */
}

static void test_revocations_and_prune(void **state)
{
    fixture *f = *state;
    char oid[KL_UUID_LEN + 1];
    assert_int_equal(add_user(f, "ann@example.com", oid, true), 0);
    unsigned char h[KL_STORE_REFRESH_HASH_LEN];
    kl_store_refresh r1 = rec(FAM1, "sess-A", 5000), r2 = rec(FAM2, "sess-B", 50);
    r1.user_oid = oid;
    r2.user_oid = oid;
    hash_of(h, 1);
    assert_int_equal(kl_store_refresh_create(f->st, h, &r1), 0);
    hash_of(h, 2);
    assert_int_equal(kl_store_refresh_create(f->st, h, &r2), 0);
    kl_store_refresh *r = NULL;
    assert_int_equal(get(f, 1, &r), 0);
    assert_string_equal(r->upn, "ann@example.com");
    kl_store_refresh_free(r);
    /* Sign-out of session B revokes family 2 only. */
    assert_int_equal(kl_store_refresh_revoke_session(f->st, "sess-B"), 0);
    assert_true(revoked(f, 2));
    assert_false(revoked(f, 1));
    assert_int_equal(kl_store_refresh_revoke_session(f->st, "no-such-session"), 0);
    assert_int_equal(kl_store_refresh_revoke_session(f->st, ""), KL_EINVAL);
    /* A password reset revokes every family of the user. */
    kl_store_password pw = {.hash = "bmV3", .salt = "c2FsdA==", .t = 2, .m = 19456, .p = 1};
    assert_int_equal(kl_store_update_user(f->st, oid, NULL, NULL, &pw, NULL, 700), 0);
    assert_true(revoked(f, 1));
    /* Expired tokens go, and their families with them. */
    assert_int_equal(kl_store_refresh_prune(f->st, 100), 0);
    assert_int_equal(get(f, 2, &r), KL_ENOTFOUND);
    assert_int_equal(get(f, 1, &r), 0);
    kl_store_refresh_free(r);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM refresh_families"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rotation_and_reuse, setup,
                                        test_store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_batch, setup, test_store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_revocations_and_prune, setup,
                                        test_store_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
