/* API key format: generation, the checksum (against values computed independently with
 * zlib's crc32), rejection of typos and malformed keys, and the keyed-hash index. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "crypto/apikey.h"
#include "crypto/crc32.h"
#include "crypto/keys.h"

static const char b62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/* Both computed with Python: zlib.crc32 of the first 44 characters, written as six
 * big-endian base62 digits over the alphabet above. */
static const char *const known_keys[] = {
    "klk100000000000000000000000000000000000000001F2DX2",
    "klk1abcdefghijABCDEFGHIJ0123456789zyxwvutsrq0oUEIH",
};

static void test_crc32_known_answers(void **state)
{
    (void)state;
    assert_int_equal(kl_crc32("123456789", 9), 0xCBF43926u);
    assert_int_equal(kl_crc32(NULL, 0), 0);
    assert_int_equal(kl_crc32("a", 1), 0xE8B7BE43u);
    assert_int_equal(kl_crc32(known_keys[0], 44), 0x43d92df4u);
    assert_int_equal(kl_crc32(known_keys[1], 44), 0x2c7762d5u);
}

static void test_known_keys(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(known_keys) / sizeof(known_keys[0]); i++)
        assert_true(kl_apikey_wellformed(known_keys[i], strlen(known_keys[i])));
}

static void test_generate(void **state)
{
    (void)state;
    char key[KL_APIKEY_LEN + 1];
    for (int i = 0; i < 200; i++) {
        memset(key, 'x', sizeof(key));
        assert_int_equal(kl_apikey_generate(key), 0);
        assert_int_equal(strlen(key), 50);
        assert_int_equal(KL_APIKEY_LEN, 50);
        assert_memory_equal(key, "klk1", 4);
        for (size_t j = 4; j < 50; j++)
            assert_non_null(strchr(b62, key[j]));
        assert_true(kl_apikey_wellformed(key, 50));
    }
}

static int cmp_keys(const void *a, const void *b)
{
    return memcmp(a, b, KL_APIKEY_LEN + 1);
}

static void test_distinct_and_spread(void **state)
{
    (void)state;
    enum { N = 5000 };
    char(*keys)[KL_APIKEY_LEN + 1] = calloc(N, sizeof(*keys));
    assert_non_null(keys);
    size_t freq[62] = {0};
    for (int i = 0; i < N; i++) {
        assert_int_equal(kl_apikey_generate(keys[i]), 0);
        for (size_t j = 4; j < 44; j++)
            freq[strchr(b62, keys[i][j]) - b62]++;
    }
    qsort(keys, N, sizeof(*keys), cmp_keys);
    for (int i = 1; i < N; i++)
        assert_memory_not_equal(keys[i - 1], keys[i], KL_APIKEY_LEN);
    /* 200,000 random characters: each of the 62 is expected 3226 times (sigma ~56). The
     * bounds are six sigma wide; taking bytes modulo 62 without rejection would put the
     * first seven characters near 3922, far above them. */
    for (size_t c = 0; c < 62; c++) {
        if (freq[c] < 2890 || freq[c] > 3560)
            fail_msg("character %c appeared %zu times", b62[c], freq[c]);
    }
    free(keys);
}

/* Every single-character substitution after the prefix, in the random body or in the
 * checksum itself, is caught. */
static void test_every_substitution_rejected(void **state)
{
    (void)state;
    char key[KL_APIKEY_LEN + 1];
    for (int round = 0; round < 3; round++) {
        if (round < 2)
            memcpy(key, known_keys[round], sizeof(key));
        else
            assert_int_equal(kl_apikey_generate(key), 0);
        assert_true(kl_apikey_wellformed(key, 50));
        for (size_t pos = 4; pos < 50; pos++) {
            char orig = key[pos];
            for (size_t c = 0; c < 62; c++) {
                if (b62[c] == orig)
                    continue;
                key[pos] = b62[c];
                assert_false(kl_apikey_wellformed(key, 50));
            }
            key[pos] = orig;
        }
        assert_true(kl_apikey_wellformed(key, 50));
    }
}

static void test_malformed_rejected(void **state)
{
    (void)state;
    char key[KL_APIKEY_LEN + 2];
    memcpy(key, known_keys[1], KL_APIKEY_LEN + 1);

    assert_false(kl_apikey_wellformed(NULL, 50));
    assert_false(kl_apikey_wellformed("", 0));
    assert_false(kl_apikey_wellformed(key, 49));
    assert_false(kl_apikey_wellformed(key, 4));
    /* One more valid character appended. */
    key[50] = 'a';
    key[51] = '\0';
    assert_false(kl_apikey_wellformed(key, 51));
    key[50] = '\0';
    assert_true(kl_apikey_wellformed(key, 50));

    /* Prefix: each of the four characters changed, and a different case. */
    static const char *const prefixes[] = {"KLK1", "klk2", "xlk1", "kkk1", "klz1", "klk0"};
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        char copy[KL_APIKEY_LEN + 1];
        memcpy(copy, key, sizeof(copy));
        memcpy(copy, prefixes[i], 4);
        assert_false(kl_apikey_wellformed(copy, 50));
    }
    /* Characters outside the alphabet, anywhere after the prefix. */
    static const char outside[] = "-_+/=. \t\n\x7f\x80\xff";
    for (size_t pos = 4; pos < 50; pos++) {
        for (size_t c = 0; c < sizeof(outside) - 1; c++) {
            char copy[KL_APIKEY_LEN + 1];
            memcpy(copy, key, sizeof(copy));
            copy[pos] = outside[c];
            assert_false(kl_apikey_wellformed(copy, 50));
        }
    }
    /* An embedded NUL is a character outside the alphabet, not an end. */
    char nul[KL_APIKEY_LEN + 1];
    memcpy(nul, key, sizeof(nul));
    nul[20] = '\0';
    assert_false(kl_apikey_wellformed(nul, 50));
}

static void test_index(void **state)
{
    (void)state;
    unsigned char r1[32], r2[32];
    memset(r1, 1, sizeof(r1));
    memset(r2, 2, sizeof(r2));
    kl_keys *k1 = NULL, *k1b = NULL, *k2 = NULL;
    assert_int_equal(kl_keys_from_bytes(r1, 32, &k1), 0);
    assert_int_equal(kl_keys_from_bytes(r1, 32, &k1b), 0);
    assert_int_equal(kl_keys_from_bytes(r2, 32, &k2), 0);

    const char *a = known_keys[0], *b = known_keys[1];
    unsigned char i1[32], i1b[32], i2[32], ib[32], h[32];
    assert_int_equal(kl_apikey_index(k1, a, 50, i1), 0);
    assert_int_equal(kl_apikey_index(k1b, a, 50, i1b), 0);
    assert_int_equal(kl_apikey_index(k2, a, 50, i2), 0);
    assert_int_equal(kl_apikey_index(k1, b, 50, ib), 0);
    assert_memory_equal(i1, i1b, 32);
    assert_memory_not_equal(i1, i2, 32);
    assert_memory_not_equal(i1, ib, 32);
    /* It is the "apikey"-labelled keyed hash, not some other label's. */
    assert_int_equal(kl_keys_hmac(k1, "apikey", a, 50, h), 0);
    assert_memory_equal(h, i1, 32);
    assert_int_equal(kl_keys_hmac(k1, "client-secret", a, 50, h), 0);
    assert_memory_not_equal(h, i1, 32);

    kl_keys_free(k1);
    kl_keys_free(k1b);
    kl_keys_free(k2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32_known_answers),
        cmocka_unit_test(test_known_keys),
        cmocka_unit_test(test_generate),
        cmocka_unit_test(test_distinct_and_spread),
        cmocka_unit_test(test_every_substitution_rejected),
        cmocka_unit_test(test_malformed_rejected),
        cmocka_unit_test(test_index),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
