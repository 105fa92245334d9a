/* Shared helpers: base64 and base64url against RFC 4648 vectors and hostile input, GUIDs,
 * constant-time equality and the bounded buffer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/util.h"

/* RFC 4648 section 10. */
static const struct {
    const char *plain;
    const char *b64;
    const char *b64url; /* unpadded */
} rfc4648[] = {
    {"", "", ""},
    {"f", "Zg==", "Zg"},
    {"fo", "Zm8=", "Zm8"},
    {"foo", "Zm9v", "Zm9v"},
    {"foob", "Zm9vYg==", "Zm9vYg"},
    {"fooba", "Zm9vYmE=", "Zm9vYmE"},
    {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
};
#define N_RFC (sizeof(rfc4648) / sizeof(rfc4648[0]))

static void test_b64_known_answers(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_RFC; i++) {
        const char *p = rfc4648[i].plain;
        size_t n = strlen(p);
        char enc[32];
        unsigned char dec[32];

        memset(enc, 'x', sizeof(enc));
        assert_int_equal(kl_b64_encode(p, n, enc, sizeof(enc)), (int)strlen(rfc4648[i].b64));
        assert_string_equal(enc, rfc4648[i].b64);
        memset(enc, 'x', sizeof(enc));
        assert_int_equal(kl_b64url_encode(p, n, enc, sizeof(enc)), (int)strlen(rfc4648[i].b64url));
        assert_string_equal(enc, rfc4648[i].b64url);

        assert_int_equal(kl_b64_decode(rfc4648[i].b64, strlen(rfc4648[i].b64), dec, sizeof(dec)),
                         (int)n);
        assert_memory_equal(dec, p, n);
        assert_int_equal(
            kl_b64url_decode(rfc4648[i].b64url, strlen(rfc4648[i].b64url), dec, sizeof(dec)),
            (int)n);
        assert_memory_equal(dec, p, n);
        /* Padding is optional on input. */
        assert_int_equal(kl_b64url_decode(rfc4648[i].b64, strlen(rfc4648[i].b64), dec, sizeof(dec)),
                         (int)n);
        assert_int_equal(
            kl_b64_decode(rfc4648[i].b64url, strlen(rfc4648[i].b64url), dec, sizeof(dec)), (int)n);
    }
}

static void test_b64_alphabets(void **state)
{
    (void)state;
    /* 0xfb 0xff 0xbf encodes to the two alphabet-specific characters. */
    static const unsigned char raw[] = {0xfb, 0xff, 0xbf};
    char enc[8];
    unsigned char dec[8];
    assert_int_equal(kl_b64_encode(raw, 3, enc, sizeof(enc)), 4);
    assert_string_equal(enc, "+/+/");
    assert_int_equal(kl_b64url_encode(raw, 3, enc, sizeof(enc)), 4);
    assert_string_equal(enc, "-_-_");
    assert_int_equal(kl_b64url_decode("-_-_", 4, dec, sizeof(dec)), 3);
    assert_memory_equal(dec, raw, 3);
    assert_int_equal(kl_b64_decode("+/+/", 4, dec, sizeof(dec)), 3);
    assert_memory_equal(dec, raw, 3);
    /* Each decoder refuses the other's alphabet. */
    assert_int_equal(kl_b64url_decode("+/+/", 4, dec, sizeof(dec)), KL_EINVAL);
    assert_int_equal(kl_b64_decode("-_-_", 4, dec, sizeof(dec)), KL_EINVAL);
}

static void test_b64_rejects(void **state)
{
    (void)state;
    unsigned char dec[64];
    static const char *const bad[] = {
        "Z",        /* length % 4 == 1 */
        "Zm9vY",    /* length % 4 == 1 */
        "Zh",       /* trailing bits not zero ("f" is "Zg") */
        "Zm9",      /* "fo" is "Zm8" */
        "Zm9vYh",   /* "foob" is "Zm9vYg" */
        "Zm 9v",    /* space */
        "Zm9v\n",   /* newline */
        "Zm=9v",    /* padding in the middle */
        "Zg=",      /* padding that does not complete the quantum */
        "Zm9v=",    /* padding after a complete quantum */
        "Zg===",    /* too much padding */
        "Zm9v!",    /* bad character */
        "Zm9v\x80", /* high byte */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_true(kl_b64url_decode(bad[i], strlen(bad[i]), dec, sizeof(dec)) < 0);
        assert_true(kl_b64_decode(bad[i], strlen(bad[i]), dec, sizeof(dec)) < 0);
    }
    /* An embedded NUL counts as a character. */
    assert_true(kl_b64url_decode("Zm\0v", 4, dec, sizeof(dec)) < 0);
    /* Output too small. */
    assert_true(kl_b64url_decode("Zm9vYmFy", 8, dec, 5) < 0);
    assert_int_equal(kl_b64url_decode("Zm9vYmFy", 8, dec, 6), 6);
    char enc[8];
    assert_true(kl_b64url_encode("foobar", 6, enc, 8) < 0);
    assert_int_equal(kl_b64url_encode("foobar", 6, enc, 9), 8);
}

static void test_b64_round_trip_all_lengths(void **state)
{
    (void)state;
    unsigned char raw[70], dec[70];
    char enc[100];
    for (size_t i = 0; i < sizeof(raw); i++)
        raw[i] = (unsigned char)(i * 37 + 11);
    for (size_t n = 0; n <= sizeof(raw); n++) {
        int len = kl_b64url_encode(raw, n, enc, sizeof(enc));
        assert_int_equal(len, (int)((n * 4 + 2) / 3));
        assert_null(strchr(enc, '='));
        assert_int_equal(kl_b64url_decode(enc, (size_t)len, dec, sizeof(dec)), (int)n);
        assert_memory_equal(dec, raw, n);
    }
}

/* Identifiers from the per-thread pool: distinct across refills, and a forked child
 * never repeats what its parent draws next. */
static void test_random_id(void **state)
{
    (void)state;
    enum { N = 200 }; /* several refills of the pool */
    static char ids[N][KL_UUID_LEN + 1];
    for (int i = 0; i < N; i++) {
        assert_int_equal(kl_uuid_v4(ids[i]), 0);
        assert_true(kl_uuid_valid(ids[i], strlen(ids[i])));
        for (int j = 0; j < i; j++)
            assert_string_not_equal(ids[i], ids[j]);
    }
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char c[KL_UUID_LEN + 1];
        int ok = kl_uuid_v4(c) == 0 && write(fds[1], c, KL_UUID_LEN) == KL_UUID_LEN;
        _exit(ok ? 0 : 1);
    }
    char parent[KL_UUID_LEN + 1], child[KL_UUID_LEN + 1] = {0};
    assert_int_equal(kl_uuid_v4(parent), 0);
    assert_int_equal(read(fds[0], child, KL_UUID_LEN), KL_UUID_LEN);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_string_not_equal(parent, child);
    close(fds[0]);
    close(fds[1]);
}

static void test_uuid(void **state)
{
    (void)state;
    char a[KL_UUID_LEN + 1], b[KL_UUID_LEN + 1];
    assert_int_equal(kl_uuid_v4(a), 0);
    assert_int_equal(kl_uuid_v4(b), 0);
    assert_int_equal(strlen(a), 36);
    assert_string_not_equal(a, b);
    assert_true(kl_uuid_valid(a, strlen(a)));
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            assert_int_equal(a[i], '-');
        else
            assert_non_null(strchr("0123456789abcdef", a[i]));
    }
    assert_int_equal(a[14], '4');           /* version 4 */
    assert_non_null(strchr("89ab", a[19])); /* RFC 4122 variant */

    assert_true(kl_uuid_valid("00000000-0000-0000-0000-000000000000", 36));
    assert_true(kl_uuid_valid("ABCDEF01-2345-6789-abcd-ef0123456789", 36));
    assert_false(kl_uuid_valid("00000000-0000-0000-0000-00000000000", 35));
    assert_false(kl_uuid_valid("00000000-0000-0000-0000-0000000000000", 37));
    assert_false(kl_uuid_valid("00000000x0000-0000-0000-000000000000", 36));
    assert_false(kl_uuid_valid("0000000g-0000-0000-0000-000000000000", 36));
    assert_false(kl_uuid_valid("{0000000-0000-0000-0000-000000000000", 36));
    assert_false(kl_uuid_valid("000000000000-0000-0000-0000-00000000", 36));
    assert_false(kl_uuid_valid(NULL, 36));
    assert_false(kl_uuid_valid("", 0));
}

static void test_ct_equal(void **state)
{
    (void)state;
    assert_true(kl_ct_equal("abc", 3, "abc", 3));
    assert_true(kl_ct_equal("", 0, "", 0));
    assert_false(kl_ct_equal("abc", 3, "abd", 3));
    assert_false(kl_ct_equal("abc", 3, "bbc", 3));
    assert_false(kl_ct_equal("abc", 3, "abcd", 4));
    assert_false(kl_ct_equal("abcd", 4, "abc", 3));
    assert_true(kl_ct_equal("a\0b", 3, "a\0b", 3));
    assert_false(kl_ct_equal("a\0b", 3, "a\0c", 3));
}

static void test_buf_max(void **state)
{
    (void)state;
    kl_buf b;
    kl_buf_init(&b, 8);
    assert_int_equal(kl_buf_append(&b, "12345", 5), 0);
    assert_int_equal(kl_buf_append(&b, "6789", 4), KL_ETOOBIG);
    assert_int_equal(b.len, 5);
    assert_string_equal(b.data, "12345");
    assert_int_equal(kl_buf_appendf(&b, "%d", 1234), KL_ETOOBIG);
    assert_int_equal(b.len, 5);
    assert_string_equal(b.data, "12345");
    assert_int_equal(kl_buf_append_str(&b, "678"), 0);
    assert_int_equal(b.len, 8);
    assert_string_equal(b.data, "12345678");
    assert_int_equal(kl_buf_append(&b, "9", 1), KL_ETOOBIG);
    assert_int_equal(kl_buf_append(&b, "", 0), 0);
    assert_string_equal(b.data, "12345678");
    /* A length that would overflow size_t arithmetic. */
    assert_int_equal(kl_buf_append(&b, "x", SIZE_MAX), KL_ETOOBIG);
    assert_int_equal(b.len, 8);

    kl_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    assert_int_equal(kl_buf_append_str(&b, "abcdefgh"), 0);
    char *s = kl_buf_steal(&b);
    assert_string_equal(s, "abcdefgh");
    free(s);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    kl_buf_free(&b);
}

static void test_buf_appendf(void **state)
{
    (void)state;
    kl_buf b;
    kl_buf_init(&b, 1 << 20);
    assert_int_equal(kl_buf_appendf(&b, "%s=%d;", "a", 1), 0);
    assert_int_equal(kl_buf_appendf(&b, "%s=%d;", "bb", -22), 0);
    assert_int_equal(kl_buf_appendf(&b, "%s", ""), 0);
    assert_string_equal(b.data, "a=1;bb=-22;");
    assert_int_equal(b.len, strlen("a=1;bb=-22;"));
    /* Growth across several reallocations. */
    for (int i = 0; i < 1000; i++)
        assert_int_equal(kl_buf_appendf(&b, "%04d", i), 0);
    assert_int_equal(b.len, 11 + 4000);
    assert_memory_equal(b.data + 11, "000000010002", 12);
    assert_memory_equal(b.data + b.len - 4, "0999", 4);
    assert_int_equal(b.data[b.len], '\0');
    kl_buf_cleanse_free(&b);
    assert_null(b.data);
}

/* Every byte: the 22 hex digits have their values, nothing else is a digit. */
static void test_hex_digit(void **state)
{
    (void)state;
    static const char digits[] = "0123456789abcdef";
    int found = 0;
    for (int c = 0; c < 256; c++) {
        int v = kl_hex_digit((unsigned char)c);
        const char *d = c ? strchr(digits, c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c) : NULL;
        if (d) {
            assert_int_equal(v, d - digits);
            found++;
        } else {
            assert_int_equal(v, -1);
        }
    }
    assert_int_equal(found, 22);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64_known_answers), cmocka_unit_test(test_b64_alphabets),
        cmocka_unit_test(test_b64_rejects),       cmocka_unit_test(test_b64_round_trip_all_lengths),
        cmocka_unit_test(test_hex_digit),         cmocka_unit_test(test_uuid),
        cmocka_unit_test(test_random_id),         cmocka_unit_test(test_ct_equal),
        cmocka_unit_test(test_buf_max),           cmocka_unit_test(test_buf_appendf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
