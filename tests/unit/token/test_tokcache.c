/* Verified-token cache: hits, expiry, generation changes (key revoked, principal or role
 * changed) and bounded eviction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "token/tokcache.h"

#define NOW 1800000000

static kl_claims_principal who_for(const char *oid, int64_t exp)
{
    kl_claims_principal w;
    memset(&w, 0, sizeof(w));
    snprintf(w.oid, sizeof(w.oid), "%s", oid);
    snprintf(w.tid, sizeof(w.tid), "tenant");
    snprintf(w.appid, sizeof(w.appid), "app");
    w.exp = exp;
    return w;
}

static void test_hit_and_miss(void **state)
{
    (void)state;
    kl_tokcache *c = NULL;
    assert_int_equal(kl_tokcache_new(16, &c), 0);
    const char *tok = "eyJ.header.sig";
    kl_claims_principal w = who_for("oid-1", NOW + 3600), got;
    assert_int_equal(kl_tokcache_get(c, tok, strlen(tok), NOW, 1, 1, &got), KL_ENOTFOUND);
    kl_tokcache_put(c, tok, strlen(tok), 1, 1, &w);
    assert_int_equal(kl_tokcache_get(c, tok, strlen(tok), NOW, 1, 1, &got), 0);
    assert_string_equal(got.oid, "oid-1");
    assert_int_equal(got.exp, NOW + 3600);
    /* One byte different (or shorter) is another token. */
    assert_int_equal(kl_tokcache_get(c, tok, strlen(tok) - 1, NOW, 1, 1, &got), KL_ENOTFOUND);
    kl_tokcache_stats st;
    kl_tokcache_stats_get(c, &st);
    assert_int_equal(st.hits, 1);
    assert_int_equal(st.misses, 2);
    kl_tokcache_free(c);
}

static void test_expiry(void **state)
{
    (void)state;
    kl_tokcache *c = NULL;
    assert_int_equal(kl_tokcache_new(16, &c), 0);
    const char *tok = "t1";
    kl_claims_principal w = who_for("oid", NOW + 60), got;
    kl_tokcache_put(c, tok, 2, 1, 1, &w);
    assert_int_equal(kl_tokcache_get(c, tok, 2, NOW + 60 + KL_TOKEN_CLOCK_SKEW_S - 1, 1, 1, &got),
                     0);
    assert_int_equal(kl_tokcache_get(c, tok, 2, NOW + 60 + KL_TOKEN_CLOCK_SKEW_S, 1, 1, &got),
                     KL_ENOTFOUND);
    /* The stale entry is gone, not merely skipped. */
    assert_int_equal(kl_tokcache_get(c, tok, 2, NOW, 1, 1, &got), KL_ENOTFOUND);
    kl_tokcache_free(c);
}

static void test_generations(void **state)
{
    (void)state;
    kl_tokcache *c = NULL;
    assert_int_equal(kl_tokcache_new(16, &c), 0);
    kl_claims_principal w = who_for("oid", NOW + 3600), got;
    kl_tokcache_put(c, "a", 1, 5, 9, &w);
    /* A new key ring (a key revoked) misses, and so does a new snapshot (principal
     * disabled, role removed); returning to the old numbers does not revive the entry. */
    assert_int_equal(kl_tokcache_get(c, "a", 1, NOW, 6, 9, &got), KL_ENOTFOUND);
    assert_int_equal(kl_tokcache_get(c, "a", 1, NOW, 5, 9, &got), KL_ENOTFOUND);
    kl_tokcache_put(c, "a", 1, 5, 9, &w);
    assert_int_equal(kl_tokcache_get(c, "a", 1, NOW, 5, 10, &got), KL_ENOTFOUND);
    assert_int_equal(kl_tokcache_get(c, "a", 1, NOW, 5, 9, &got), KL_ENOTFOUND);
    kl_tokcache_free(c);
}

static void test_bounded(void **state)
{
    (void)state;
    kl_tokcache *c = NULL;
    assert_int_equal(kl_tokcache_new(0, &c), KL_EINVAL);
    assert_int_equal(kl_tokcache_new((size_t)KL_MAX_TOKCACHE_ENTRIES + 1, &c), KL_EINVAL);
    assert_int_equal(kl_tokcache_new(8, &c), 0);
    kl_claims_principal w = who_for("oid", NOW + 3600), got;
    char tok[32];
    /* Far more tokens than entries: the cache evicts, never grows. */
    for (int i = 0; i < 1000; i++) {
        int n = snprintf(tok, sizeof(tok), "token-%d", i);
        kl_tokcache_put(c, tok, (size_t)n, 1, 1, &w);
    }
    int hits = 0;
    for (int i = 0; i < 1000; i++) {
        int n = snprintf(tok, sizeof(tok), "token-%d", i);
        hits += kl_tokcache_get(c, tok, (size_t)n, NOW, 1, 1, &got) == 0;
    }
    assert_true(hits <= 8);
    assert_true(hits > 0);
    kl_tokcache_stats st;
    kl_tokcache_stats_get(c, &st);
    assert_true(st.evictions >= 1000 - 8);
    /* The most recently used token of a full set survives a newcomer. */
    kl_tokcache_free(c);
    assert_int_equal(kl_tokcache_new(4, &c), 0); /* one set of 4 */
    for (int i = 0; i < 4; i++) {
        int n = snprintf(tok, sizeof(tok), "t%d", i);
        kl_tokcache_put(c, tok, (size_t)n, 1, 1, &w);
    }
    assert_int_equal(kl_tokcache_get(c, "t0", 2, NOW, 1, 1, &got), 0); /* t1 is now oldest */
    kl_tokcache_put(c, "t4", 2, 1, 1, &w);
    assert_int_equal(kl_tokcache_get(c, "t0", 2, NOW, 1, 1, &got), 0);
    assert_int_equal(kl_tokcache_get(c, "t1", 2, NOW, 1, 1, &got), KL_ENOTFOUND);
    assert_int_equal(kl_tokcache_get(c, "t4", 2, NOW, 1, 1, &got), 0);
    kl_tokcache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_and_miss),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_generations),
        cmocka_unit_test(test_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
