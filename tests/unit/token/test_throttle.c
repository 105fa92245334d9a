/* Failed-authentication throttle, with explicit clocks: backoff after 5 failures,
 * refusal at 20 per client id and 100 per address until the window ends, familiar
 * (client, address) pairs judged by their own failures only, and counters close to their
 * limit surviving a flood of new names in a full table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "token/throttle.h"

#define T0 1800000000000LL /* ms */
#define S(x) (x), strlen(x)

static const char *CLIENT = "6f1f3c3e-6c1b-4b7e-9d55-0a0d2a4c9e11";
static const char *OTHER = "0b7d2f6e-4a6f-4b1e-8f0d-5c3b7a9e2d44";

static int check(kl_throttle *t, const char *c, const char *a, int64_t now, int64_t *retry)
{
    int64_t r = -1;
    int err = kl_throttle_check(t, S(c), S(a), now, &r);
    if (retry)
        *retry = r;
    return err;
}

static void fail_n(kl_throttle *t, const char *c, const char *a, int n, int64_t now)
{
    for (int i = 0; i < n; i++)
        kl_throttle_failed(t, S(c), S(a), now);
}

static void test_new_arguments(void **state)
{
    (void)state;
    kl_throttle *t = NULL;
    assert_int_equal(kl_throttle_new(0, &t), KL_EINVAL);
    assert_int_equal(kl_throttle_new(KL_MAX_THROTTLE_ENTRIES + 1, &t), KL_EINVAL);
    assert_null(t);
    assert_int_equal(kl_throttle_new(16, &t), 0);
    int64_t r = -1;
    assert_int_equal(kl_throttle_check(t, S(CLIENT), S("10.0.0.1"), T0, &r), 0);
    assert_int_equal(r, 0);
    kl_throttle_free(t);
    kl_throttle_free(NULL);
}

static void test_backoff_after_five(void **state)
{
    (void)state;
    kl_throttle *t = NULL;
    assert_int_equal(kl_throttle_new(64, &t), 0);
    int64_t r;
    fail_n(t, CLIENT, "10.0.0.1", KL_THROTTLE_BACKOFF_AFTER - 1, T0);
    assert_int_equal(check(t, CLIENT, "10.0.0.1", T0, &r), 0);
    kl_throttle_failed(t, S(CLIENT), S("10.0.0.1"), T0);
    /* 5 failures: the next attempt waits 1 s, from any address. */
    assert_int_equal(check(t, CLIENT, "10.0.0.1", T0, &r), KL_EPERM);
    assert_int_equal(r, 1);
    assert_int_equal(check(t, CLIENT, "10.9.9.9", T0 + 999, &r), KL_EPERM);
    assert_int_equal(r, 1);
    assert_int_equal(check(t, CLIENT, "10.0.0.1", T0 + 1000, &r), 0);
    /* Another client is not slowed. */
    assert_int_equal(check(t, OTHER, "10.9.9.9", T0, &r), 0);
    /* The sixth waits 2 s, the seventh 4 s. */
    kl_throttle_failed(t, S(CLIENT), S("10.0.0.1"), T0 + 1000);
    assert_int_equal(check(t, CLIENT, "10.0.0.1", T0 + 1001, &r), KL_EPERM);
    assert_int_equal(r, 2);
    assert_int_equal(check(t, CLIENT, "10.0.0.1", T0 + 3000, &r), 0);
    kl_throttle_failed(t, S(CLIENT), S("10.0.0.1"), T0 + 3000);
    assert_int_equal(check(t, CLIENT, "10.0.0.1", T0 + 3000, &r), KL_EPERM);
    assert_int_equal(r, 4);
    /* The backoff never exceeds its cap. */
    fail_n(t, CLIENT, "10.0.0.1", 7, T0 + 4000);
    assert_int_equal(check(t, CLIENT, "10.0.0.1", T0 + 4000, &r), KL_EPERM);
    assert_int_equal(r, KL_THROTTLE_MAX_BACKOFF_MS / 1000);
    kl_throttle_free(t);
}

static void test_client_limit_until_window_ends(void **state)
{
    (void)state;
    kl_throttle *t = NULL;
    assert_int_equal(kl_throttle_new(64, &t), 0);
    int64_t r;
    fail_n(t, CLIENT, "10.0.0.1", KL_THROTTLE_CLIENT_LIMIT, T0);
    int64_t late = T0 + 2 * KL_THROTTLE_MAX_BACKOFF_MS; /* well past any backoff */
    assert_int_equal(check(t, CLIENT, "10.0.0.2", late, &r), KL_EPERM);
    assert_int_equal(r, (KL_THROTTLE_WINDOW_MS - 2 * KL_THROTTLE_MAX_BACKOFF_MS) / 1000);
    assert_int_equal(check(t, CLIENT, "10.0.0.2", T0 + KL_THROTTLE_WINDOW_MS - 1, &r), KL_EPERM);
    assert_int_equal(r, 1);
    assert_int_equal(check(t, CLIENT, "10.0.0.2", T0 + KL_THROTTLE_WINDOW_MS, &r), 0);
    /* The new window counts from zero. */
    kl_throttle_failed(t, S(CLIENT), S("10.0.0.1"), T0 + KL_THROTTLE_WINDOW_MS);
    assert_int_equal(check(t, CLIENT, "10.0.0.2", T0 + KL_THROTTLE_WINDOW_MS, &r), 0);
    kl_throttle_free(t);
}

static void test_address_limit(void **state)
{
    (void)state;
    kl_throttle *t = NULL;
    assert_int_equal(kl_throttle_new(1024, &t), 0);
    int64_t r;
    char id[64];
    /* Spread over many client ids (each below its own backoff): the address is what
     * adds up. */
    for (int i = 0; i < KL_THROTTLE_ADDR_LIMIT; i++) {
        snprintf(id, sizeof(id), "client-%d", i);
        assert_int_equal(check(t, id, "192.0.2.7", T0, &r), 0);
        kl_throttle_failed(t, S(id), S("192.0.2.7"), T0);
    }
    assert_int_equal(check(t, "fresh-client", "192.0.2.7", T0 + 1000, &r), KL_EPERM);
    assert_int_equal(r, (KL_THROTTLE_WINDOW_MS - 1000) / 1000);
    assert_int_equal(check(t, "fresh-client", "192.0.2.8", T0 + 1000, &r), 0);
    assert_int_equal(check(t, "fresh-client", "192.0.2.7", T0 + KL_THROTTLE_WINDOW_MS, &r), 0);
    kl_throttle_free(t);
}

static void test_familiar_pair_not_locked_out_by_others(void **state)
{
    (void)state;
    kl_throttle *t = NULL;
    assert_int_equal(kl_throttle_new(64, &t), 0);
    int64_t r;
    kl_throttle_succeeded(t, S(CLIENT), S("10.1.1.1"), T0);
    /* Someone else fails for this client id from elsewhere, past the limit, again and
     * again. */
    for (int64_t now = T0 + 1000; now < T0 + 3 * KL_THROTTLE_WINDOW_MS; now += 10000) {
        fail_n(t, CLIENT, "203.0.113.9", 3, now);
        assert_int_equal(check(t, CLIENT, "10.1.1.1", now, &r), 0);
    }
    /* An unfamiliar address is refused meanwhile. */
    assert_int_equal(check(t, CLIENT, "10.2.2.2", T0 + 3 * KL_THROTTLE_WINDOW_MS - 1, &r),
                     KL_EPERM);
    /* The same address for another client is not familiar. */
    fail_n(t, OTHER, "203.0.113.9", KL_THROTTLE_CLIENT_LIMIT, T0);
    assert_int_equal(check(t, OTHER, "10.1.1.1", T0 + 1, &r), KL_EPERM);
    kl_throttle_free(t);
}

static void test_familiar_pair_own_failures(void **state)
{
    (void)state;
    kl_throttle *t = NULL;
    assert_int_equal(kl_throttle_new(64, &t), 0);
    int64_t r;
    kl_throttle_succeeded(t, S(CLIENT), S("10.1.1.1"), T0);
    fail_n(t, CLIENT, "10.1.1.1", KL_THROTTLE_BACKOFF_AFTER, T0 + 10);
    assert_int_equal(check(t, CLIENT, "10.1.1.1", T0 + 10, &r), KL_EPERM);
    assert_int_equal(r, 1);
    fail_n(t, CLIENT, "10.1.1.1", KL_THROTTLE_CLIENT_LIMIT - KL_THROTTLE_BACKOFF_AFTER, T0 + 10);
    assert_int_equal(check(t, CLIENT, "10.1.1.1", T0 + KL_THROTTLE_MAX_BACKOFF_MS + 10, &r),
                     KL_EPERM);
    /* A success starts its count again. */
    kl_throttle_succeeded(t, S(CLIENT), S("10.1.1.1"), T0 + 20);
    assert_int_equal(check(t, CLIENT, "10.1.1.1", T0 + 20, &r), 0);
    kl_throttle_free(t);
}

static void test_familiarity_expires(void **state)
{
    (void)state;
    kl_throttle *t = NULL;
    assert_int_equal(kl_throttle_new(64, &t), 0);
    int64_t r;
    kl_throttle_succeeded(t, S(CLIENT), S("10.1.1.1"), T0);
    int64_t later = T0 + KL_THROTTLE_FAMILIAR_MS;
    fail_n(t, CLIENT, "203.0.113.9", KL_THROTTLE_CLIENT_LIMIT, later);
    assert_int_equal(check(t, CLIENT, "10.1.1.1", later, &r), KL_EPERM);
    kl_throttle_free(t);
}

static void test_flood_keeps_counter_near_limit(void **state)
{
    (void)state;
    kl_throttle *t = NULL;
    assert_int_equal(kl_throttle_new(8, &t), 0); /* one probe window: the whole table */
    int64_t r;
    fail_n(t, CLIENT, "198.51.100.1", KL_THROTTLE_CLIENT_LIMIT - 1, T0);
    char id[64], addr[64];
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof(id), "flood-%d", i);
        snprintf(addr, sizeof(addr), "198.18.%d.%d", i / 250, i % 250);
        kl_throttle_failed(t, S(id), S(addr), T0 + 1);
    }
    kl_throttle_failed(t, S(CLIENT), S("198.51.100.1"), T0 + 2);
    assert_int_equal(check(t, CLIENT, "198.51.100.2", T0 + 2 * KL_THROTTLE_MAX_BACKOFF_MS, &r),
                     KL_EPERM);
    kl_throttle_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_arguments),
        cmocka_unit_test(test_backoff_after_five),
        cmocka_unit_test(test_client_limit_until_window_ends),
        cmocka_unit_test(test_address_limit),
        cmocka_unit_test(test_familiar_pair_not_locked_out_by_others),
        cmocka_unit_test(test_familiar_pair_own_failures),
        cmocka_unit_test(test_familiarity_expires),
        cmocka_unit_test(test_flood_keeps_counter_near_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
