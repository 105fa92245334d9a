/* Sealing: round trips, tamper detection on every byte, aad binding, wrong keys and
 * malformed sealed strings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "crypto/keys.h"
#include "crypto/seal.h"

static kl_keys *make_keys(unsigned char fill)
{
    unsigned char raw[32];
    memset(raw, fill, sizeof(raw));
    kl_keys *k = NULL;
    assert_int_equal(kl_keys_from_bytes(raw, sizeof(raw), &k), 0);
    return k;
}

static int setup(void **state)
{
    *state = make_keys(0x11);
    return 0;
}

static int teardown(void **state)
{
    kl_keys_free(*state);
    return 0;
}

static void round_trip(const kl_keys *k, const unsigned char *pt, size_t n)
{
    char *sealed = NULL;
    unsigned char *out = NULL;
    size_t outn = 99;
    assert_int_equal(kl_seal(k, "apikey:acct:1", pt, n, &sealed), 0);
    assert_non_null(sealed);
    assert_memory_equal(sealed, "v1.", 3);
    /* Only base64url characters after the prefix. */
    for (const char *p = sealed + 3; *p; p++)
        assert_non_null(
            strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", *p));
    /* nonce + ciphertext + tag */
    assert_int_equal(strlen(sealed) - 3, (4 * (12 + n + 16) + 2) / 3);
    assert_int_equal(kl_unseal(k, "apikey:acct:1", sealed, &out, &outn), 0);
    assert_int_equal(outn, n);
    assert_non_null(out);
    if (n)
        assert_memory_equal(out, pt, n);
    assert_int_equal(out[n], 0);
    free(out);
    free(sealed);
}

static void test_round_trip(void **state)
{
    const kl_keys *k = *state;
    size_t big = 64 * 1024;
    unsigned char *pt = malloc(big);
    assert_non_null(pt);
    assert_int_equal(RAND_bytes(pt, (int)big), 1);
    round_trip(k, pt, 0);
    round_trip(k, NULL, 0);
    round_trip(k, pt, 1);
    round_trip(k, pt, 15);
    round_trip(k, pt, 16);
    round_trip(k, pt, 17);
    round_trip(k, pt, big);
    round_trip(k, (const unsigned char *)"sk-upstream-credential", 22);
    free(pt);
}

static void test_too_big(void **state)
{
    const kl_keys *k = *state;
    size_t n = 64 * 1024 + 1;
    unsigned char *pt = calloc(1, n);
    char *sealed = (char *)0x1;
    assert_int_equal(kl_seal(k, "a", pt, n, &sealed), KL_ETOOBIG);
    assert_null(sealed);
    free(pt);
}

static void test_seals_differ(void **state)
{
    const kl_keys *k = *state;
    char *a = NULL, *b = NULL;
    assert_int_equal(kl_seal(k, "x", "same text", 9, &a), 0);
    assert_int_equal(kl_seal(k, "x", "same text", 9, &b), 0);
    assert_string_not_equal(a, b);
    /* Different nonces (the first 12 decoded bytes). */
    unsigned char ra[64], rb[64];
    assert_int_equal(kl_b64url_decode(a + 3, strlen(a) - 3, ra, sizeof(ra)), 12 + 9 + 16);
    assert_int_equal(kl_b64url_decode(b + 3, strlen(b) - 3, rb, sizeof(rb)), 12 + 9 + 16);
    assert_memory_not_equal(ra, rb, 12);
    free(a);
    free(b);
}

/* Flips one bit in every byte of the decoded payload in turn (nonce, ciphertext, tag):
 * each must fail to open. */
static void test_tamper_every_byte(void **state)
{
    const kl_keys *k = *state;
    char *sealed = NULL;
    const char *msg = "the quick brown fox";
    assert_int_equal(kl_seal(k, "aad", msg, strlen(msg), &sealed), 0);
    unsigned char raw[128];
    int n = kl_b64url_decode(sealed + 3, strlen(sealed) - 3, raw, sizeof(raw));
    assert_int_equal(n, 12 + (int)strlen(msg) + 16);
    for (int i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit += 7) {
            unsigned char copy[128];
            memcpy(copy, raw, (size_t)n);
            copy[i] ^= (unsigned char)(1u << bit);
            char text[256] = "v1.";
            assert_true(kl_b64url_encode(copy, (size_t)n, text + 3, sizeof(text) - 3) > 0);
            unsigned char *out = (unsigned char *)0x1;
            size_t outn = 5;
            assert_int_equal(kl_unseal(k, "aad", text, &out, &outn), KL_ECRYPTO);
            assert_null(out);
            assert_int_equal(outn, 0);
        }
    }
    /* Truncating the tag or appending a byte fails too. */
    for (int delta = -1; delta <= 1; delta += 2) {
        char text[256] = "v1.";
        assert_true(kl_b64url_encode(raw, (size_t)(n + delta), text + 3, sizeof(text) - 3) > 0);
        unsigned char *out = NULL;
        size_t outn = 0;
        assert_int_equal(kl_unseal(k, "aad", text, &out, &outn), KL_ECRYPTO);
        assert_null(out);
    }
    free(sealed);
}

static void test_wrong_aad_and_key(void **state)
{
    const kl_keys *k = *state;
    kl_keys *other = make_keys(0x22);
    char *sealed = NULL;
    unsigned char *out = NULL;
    size_t outn = 0;
    assert_int_equal(kl_seal(k, "apikey:acct-a:1", "secret", 6, &sealed), 0);
    assert_int_equal(kl_unseal(k, "apikey:acct-a:2", sealed, &out, &outn), KL_ECRYPTO);
    assert_int_equal(kl_unseal(k, "apikey:acct-b:1", sealed, &out, &outn), KL_ECRYPTO);
    assert_int_equal(kl_unseal(k, "", sealed, &out, &outn), KL_ECRYPTO);
    assert_int_equal(kl_unseal(other, "apikey:acct-a:1", sealed, &out, &outn), KL_ECRYPTO);
    assert_null(out);
    /* And the right one still opens. */
    assert_int_equal(kl_unseal(k, "apikey:acct-a:1", sealed, &out, &outn), 0);
    assert_int_equal(outn, 6);
    assert_memory_equal(out, "secret", 6);
    free(out);
    free(sealed);

    /* A NULL aad is the empty aad. */
    assert_int_equal(kl_seal(k, NULL, "x", 1, &sealed), 0);
    assert_int_equal(kl_unseal(k, "", sealed, &out, &outn), 0);
    free(out);
    assert_int_equal(kl_unseal(k, "y", sealed, &out, &outn), KL_ECRYPTO);
    free(sealed);
    kl_keys_free(other);
}

static void test_malformed(void **state)
{
    const kl_keys *k = *state;
    static const char *const bad[] = {
        "",
        "v1",
        "v1.",
        "v2.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "V1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "v1.AAAA",                                      /* too short for nonce + tag */
        "v1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",      /* 27 bytes */
        "v1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA!AA",    /* bad character */
        "v1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+/",    /* standard alphabet */
        "v1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", /* length % 4 == 1 */
        "v1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB",    /* non-canonical trailing bits */
        "v1. AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        unsigned char *out = NULL;
        size_t outn = 0;
        int rc = kl_unseal(k, "a", bad[i], &out, &outn);
        assert_true(rc == KL_EINVAL || rc == KL_ECRYPTO);
        assert_null(out);
    }
    /* 28 zero bytes is well-formed but does not authenticate. */
    unsigned char *out = NULL;
    size_t outn = 0;
    assert_int_equal(kl_unseal(k, "a", "v1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &out, &outn),
                     KL_ECRYPTO);
    assert_int_equal(kl_unseal(k, "a", "v1.AAAA", &out, &outn), KL_EINVAL);
    assert_int_equal(kl_unseal(k, "a", "nope", &out, &outn), KL_EINVAL);
    assert_int_equal(kl_unseal(k, "a", NULL, &out, &outn), KL_EINVAL);

    /* A huge string is refused without decoding it. */
    size_t huge = 200 * 1024;
    char *h = malloc(huge + 1);
    memcpy(h, "v1.", 3);
    memset(h + 3, 'A', huge - 3);
    h[huge] = '\0';
    assert_int_equal(kl_unseal(k, "a", h, &out, &outn), KL_EINVAL);
    assert_null(out);
    free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),        cmocka_unit_test(test_too_big),
        cmocka_unit_test(test_seals_differ),      cmocka_unit_test(test_tamper_every_byte),
        cmocka_unit_test(test_wrong_aad_and_key), cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
