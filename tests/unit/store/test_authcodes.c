/* Unit tests of browser sign-in's tables (migration 19) on both engines (engine.h): an
 * authorization code is redeemed at most once, and a sign-in session opens nothing once
 * it is expired or revoked. */
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
    return test_store_fixture_setup(state, "authcodes");
}

static void fill(unsigned char h[32], unsigned char v)
{
    memset(h, v, 32);
}

/* A code is redeemed once: the second redemption is refused as already redeemed, an
 * unknown one as unknown, an expired one as expired (and stays unused). */
static void test_code_once(void **state)
{
    fixture *f = *state;
    unsigned char h[32], other[32];
    fill(h, 1);
    fill(other, 2);
    kl_store_authcode c = {.client_id = "11111111-1111-1111-1111-111111111111",
                           .user_oid = "22222222-2222-2222-2222-222222222222",
                           .redirect_uri = "http://localhost:5000/cb",
                           .scope = "https://cognitiveservices.azure.com/.default openid",
                           .code_challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                           .session_id = "33333333-3333-3333-3333-333333333333",
                           .auth_time = 1000,
                           .created_at = 1000,
                           .expires_at = 1300};
    assert_int_equal(kl_store_put_authcode(f->st, h, &c, 1000), 0);
    assert_int_equal(kl_store_put_authcode(f->st, h, &c, 1000), KL_EEXIST);
    kl_store_authcode *got = NULL;
    assert_int_equal(kl_store_redeem_authcode(f->st, other, 1001, &got), KL_ENOTFOUND);
    assert_int_equal(kl_store_redeem_authcode(f->st, h, 1001, &got), 0);
    assert_non_null(got);
    assert_string_equal(got->redirect_uri, c.redirect_uri);
    assert_string_equal(got->code_challenge, c.code_challenge);
    assert_string_equal(got->session_id, c.session_id);
    assert_null(got->nonce);
    assert_int_equal(got->expires_at, 1300);
    kl_store_authcode_free(got);
    got = NULL;
    assert_int_equal(kl_store_redeem_authcode(f->st, h, 1002, &got), KL_ECONFLICT);
    assert_null(got);
    assert_int_equal(kl_store_put_authcode(f->st, other, &c, 1000), 0);
    assert_int_equal(kl_store_redeem_authcode(f->st, other, 1300, &got), KL_EPERM);
    assert_null(got);
}

/* A session is found by its cookie's hash until it expires or is revoked. */
static void test_sessions(void **state)
{
    fixture *f = *state;
    unsigned char h[32], other[32];
    fill(h, 7);
    fill(other, 8);
    kl_store_session s = {.id = "44444444-4444-4444-4444-444444444444",
                          .user_oid = "22222222-2222-2222-2222-222222222222",
                          .auth_time = 1000,
                          .created_at = 1000,
                          .expires_at = 2000};
    assert_int_equal(kl_store_put_session(f->st, h, &s, 1000), 0);
    kl_store_session *got = NULL;
    assert_int_equal(kl_store_get_session(f->st, other, 1001, &got), KL_ENOTFOUND);
    assert_int_equal(kl_store_get_session(f->st, h, 1001, &got), 0);
    assert_string_equal(got->id, s.id);
    assert_string_equal(got->user_oid, s.user_oid);
    kl_store_session_free(got);
    got = NULL;
    assert_int_equal(kl_store_get_session(f->st, h, 2000, &got), KL_ENOTFOUND);
    bool live = false;
    assert_int_equal(kl_store_session_live(f->st, s.id, 1001, &live), 0);
    assert_true(live);
    assert_int_equal(kl_store_revoke_session(f->st, s.id, 1002), 0);
    assert_int_equal(kl_store_revoke_session(f->st, s.id, 1003), 0);
    assert_int_equal(kl_store_get_session(f->st, h, 1003, &got), KL_ENOTFOUND);
    assert_int_equal(kl_store_session_live(f->st, s.id, 1003, &live), 0);
    assert_false(live);
    assert_int_equal(kl_store_revoke_session(f->st, "55555555-5555-5555-5555-555555555555", 1),
                     KL_ENOTFOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_code_once, setup, test_store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_sessions, setup, test_store_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
