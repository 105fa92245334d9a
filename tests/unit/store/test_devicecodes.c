/* Unit tests of the device-code table (migration 20) on both engines (engine.h): a code
 * is polled no faster than the gap, decided once and redeemed once; declined and expired
 * codes go nowhere; long-expired ones are pruned. */
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
    return test_store_fixture_setup(state, "devcodes");
}

static void fill(unsigned char h[32], unsigned char v)
{
    memset(h, v, 32);
}

/* The life of one code: found by its user code, polled no faster than the gap, approved
 * once, redeemed once; an unknown code is unknown everywhere. */
static void test_code_life(void **state)
{
    fixture *f = *state;
    unsigned char h[32], other[32];
    fill(h, 1);
    fill(other, 2);
    kl_store_devicecode d = {.user_code = "BCDFGHJK",
                             .client_id = "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
                             .scope = "https://cognitiveservices.azure.com/.default openid",
                             .created_at = 1000,
                             .expires_at = 1900};
    assert_int_equal(kl_store_devicecode_create(f->st, h, &d, 86400), 0);
    /* The same user code (or hash) again is a collision the caller redraws for. */
    assert_int_equal(kl_store_devicecode_create(f->st, other, &d, 86400), KL_ECONFLICT);
    kl_store_devicecode *got = NULL;
    assert_int_equal(kl_store_devicecode_by_user_code(f->st, "BCDFGHJL", &got), KL_ENOTFOUND);
    assert_int_equal(kl_store_devicecode_by_user_code(f->st, "BCDFGHJK", &got), 0);
    assert_string_equal(got->client_id, d.client_id);
    assert_string_equal(got->scope, d.scope);
    assert_int_equal(kl_store_dc_status_of(got), KL_STORE_DC_PENDING);
    assert_null(got->user_oid);
    kl_store_devicecode_free(got);
    got = NULL;

    /* Polls: the first passes and is stamped; one 3 s later is too fast (min gap 4). */
    assert_int_equal(kl_store_devicecode_poll(f->st, other, 1001, 4, &got), KL_ENOTFOUND);
    assert_int_equal(kl_store_devicecode_poll(f->st, h, 1001, 4, &got), 0);
    assert_int_equal(got->last_poll, 1001);
    kl_store_devicecode_free(got);
    got = NULL;
    assert_int_equal(kl_store_devicecode_poll(f->st, h, 1004, 4, &got), KL_EPERM);
    assert_null(got);
    /* Not approved yet: nothing to redeem. */
    assert_int_equal(kl_store_devicecode_redeem(f->st, h, 1004), KL_ECONFLICT);

    /* Approved once; a second decision (another tab, another node) loses. */
    assert_int_equal(kl_store_devicecode_decide(f->st, "BCDFGHJK",
                                                "22222222-2222-2222-2222-222222222222",
                                                "33333333-3333-3333-3333-333333333333", 1005, 1005),
                     0);
    assert_int_equal(kl_store_devicecode_decide(f->st, "BCDFGHJK", NULL, NULL, 0, 1006),
                     KL_ECONFLICT);
    assert_int_equal(kl_store_devicecode_decide(f->st, "ZZZZZZZZ", NULL, NULL, 0, 1006),
                     KL_ENOTFOUND);
    assert_int_equal(kl_store_devicecode_poll(f->st, h, 1006, 4, &got), 0);
    assert_int_equal(kl_store_dc_status_of(got), KL_STORE_DC_APPROVED);
    assert_string_equal(got->user_oid, "22222222-2222-2222-2222-222222222222");
    assert_string_equal(got->session_id, "33333333-3333-3333-3333-333333333333");
    assert_int_equal(got->auth_time, 1005);
    assert_int_equal(got->redeemed_at, 0);
    kl_store_devicecode_free(got);
    got = NULL;

    /* Redeemed once: the second redemption loses, whoever asks. */
    assert_int_equal(kl_store_devicecode_redeem(f->st, h, 1007), 0);
    assert_int_equal(kl_store_devicecode_redeem(f->st, h, 1008), KL_ECONFLICT);
    assert_int_equal(kl_store_devicecode_poll(f->st, h, 1020, 4, &got), 0);
    assert_int_equal(got->redeemed_at, 1007);
    kl_store_devicecode_free(got);
}

/* Declined codes and expired codes cannot be approved or redeemed; codes long expired
 * are pruned when a new one is made. */
static void test_declined_expired_pruned(void **state)
{
    fixture *f = *state;
    unsigned char a[32], b[32], c[32];
    fill(a, 3);
    fill(b, 4);
    fill(c, 5);
    kl_store_devicecode d = {.user_code = "CCCCCCCC",
                             .client_id = "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
                             .scope = "https://cognitiveservices.azure.com/.default",
                             .created_at = 1000,
                             .expires_at = 1900};
    assert_int_equal(kl_store_devicecode_create(f->st, a, &d, 100), 0);
    assert_int_equal(kl_store_devicecode_decide(f->st, "CCCCCCCC", NULL, NULL, 0, 1001), 0);
    assert_int_equal(kl_store_devicecode_decide(f->st, "CCCCCCCC",
                                                "22222222-2222-2222-2222-222222222222",
                                                "33333333-3333-3333-3333-333333333333", 1002, 1002),
                     KL_ECONFLICT);
    assert_int_equal(kl_store_devicecode_redeem(f->st, a, 1003), KL_ECONFLICT);

    d.user_code = "DDDDDDDD";
    assert_int_equal(kl_store_devicecode_create(f->st, b, &d, 100), 0);
    assert_int_equal(kl_store_devicecode_decide(f->st, "DDDDDDDD",
                                                "22222222-2222-2222-2222-222222222222",
                                                "33333333-3333-3333-3333-333333333333", 1900, 1900),
                     KL_ECONFLICT);

    /* Made at 2100 with keep 100: codes that expired before 2000 go. */
    d.user_code = "FFFFFFFF";
    d.created_at = 2100;
    d.expires_at = 3000;
    assert_int_equal(kl_store_devicecode_create(f->st, c, &d, 100), 0);
    kl_store_devicecode *got = NULL;
    assert_int_equal(kl_store_devicecode_by_user_code(f->st, "CCCCCCCC", &got), KL_ENOTFOUND);
    assert_int_equal(kl_store_devicecode_by_user_code(f->st, "DDDDDDDD", &got), KL_ENOTFOUND);
    assert_int_equal(kl_store_devicecode_by_user_code(f->st, "FFFFFFFF", &got), 0);
    kl_store_devicecode_free(got);
    /* Bad input is refused before the store is asked. */
    assert_int_equal(kl_store_devicecode_by_user_code(f->st, "bcdfghjk", &got), KL_EINVAL);
    d.user_code = "SHORT";
    assert_int_equal(kl_store_devicecode_create(f->st, a, &d, 100), KL_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_code_life, setup, test_store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_declined_expired_pruned, setup,
                                        test_store_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
