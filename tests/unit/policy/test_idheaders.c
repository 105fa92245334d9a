/* Launch secrets' index: a secret finds its site only by its keyed hash (another pepper,
 * another label or another secret finds nothing), only before its lease ends, and an
 * index of many secrets finds each. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "fixture.h"
#include "policy/idheaders.h"
#include "policy/sts.h"

#define NOW 1800000000

static void hash(const kl_keys *k, const char *secret, unsigned char out[32])
{
    assert_int_equal(kl_idheaders_hash(k, secret, strlen(secret), out), 0);
}

static void test_lookup(void **state)
{
    (void)state;
    kl_keys *k = test_keys_with(1), *other = test_keys_with(2);
    kl_idheaders *h = NULL;
    assert_int_equal(kl_idheaders_new(&h), 0);
    unsigned char a[32], b[32], x[32];
    hash(k, "secret-a", a);
    hash(k, "secret-b", b);
    assert_int_equal(kl_idheaders_add(h, a, "site-a", NOW + 60), 0);
    assert_int_equal(kl_idheaders_add(h, b, "site-b", NOW + 60), 0);
    assert_int_equal(kl_idheaders_finish(h), 0);
    assert_string_equal(kl_idheaders_lookup(h, a, NOW), "site-a");
    assert_string_equal(kl_idheaders_lookup(h, b, NOW + 59), "site-b");
    /* The lease ends at expires_at. */
    assert_null(kl_idheaders_lookup(h, b, NOW + 60));
    hash(k, "secret-c", x);
    assert_null(kl_idheaders_lookup(h, x, NOW));
    /* The same secret under another pepper, or hashed as a client secret, is not it. */
    hash(other, "secret-a", x);
    assert_null(kl_idheaders_lookup(h, x, NOW));
    assert_int_equal(kl_sts_secret_hash(k, "secret-a", 8, x), 0);
    assert_null(kl_idheaders_lookup(h, x, NOW));
    kl_idheaders_free(h);
    kl_keys_free(k);
    kl_keys_free(other);
}

static void test_many(void **state)
{
    (void)state;
    kl_keys *k = test_keys_with(3);
    kl_idheaders *h = NULL;
    assert_int_equal(kl_idheaders_new(&h), 0);
    unsigned char v[200][32];
    char name[32];
    for (int i = 0; i < 200; i++) {
        snprintf(name, sizeof(name), "secret-%d", i);
        hash(k, name, v[i]);
        snprintf(name, sizeof(name), "site-%d", i);
        assert_int_equal(kl_idheaders_add(h, v[i], name, NOW + 1), 0);
    }
    assert_int_equal(kl_idheaders_finish(h), 0);
    assert_int_equal(kl_idheaders_count(h), 200);
    for (int i = 0; i < 200; i++) {
        snprintf(name, sizeof(name), "site-%d", i);
        assert_string_equal(kl_idheaders_lookup(h, v[i], NOW), name);
    }
    /* Nothing is added after finishing; an empty or NULL index finds nothing. */
    assert_int_equal(kl_idheaders_add(h, v[0], "x", NOW + 1), KL_EINVAL);
    kl_idheaders_free(h);
    assert_null(kl_idheaders_lookup(NULL, v[0], NOW));
    assert_int_equal(kl_idheaders_new(&h), 0);
    assert_int_equal(kl_idheaders_finish(h), 0);
    assert_null(kl_idheaders_lookup(h, v[0], NOW));
    kl_idheaders_free(h);
    kl_keys_free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
