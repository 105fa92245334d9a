/* Unit tests of the network rules: the rule grammar (what is refused at write time),
 * IPv4 inside the IPv6 space, merging, the binary search at range edges, and a random
 * cross-check of the compiled set against a plain scan of the rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "policy/netrules.h"

static kl_netrange range(const char *s)
{
    kl_netrange r;
    if (kl_netrules_parse(s, strlen(s), &r) != 0)
        fail_msg("rule %s refused", s);
    return r;
}

static kl_netaddr addr(const char *s)
{
    kl_netaddr a;
    if (kl_netaddr_parse(s, strlen(s), &a) != 0)
        fail_msg("address %s refused", s);
    return a;
}

static kl_netrules *compile(const char *const *rules, size_t n)
{
    kl_netrange r[16];
    assert_true(n <= 16);
    for (size_t i = 0; i < n; i++)
        r[i] = range(rules[i]);
    kl_netrules *nr = NULL;
    assert_int_equal(kl_netrules_compile(r, n, &nr), 0);
    return nr;
}

static void test_grammar(void **state)
{
    (void)state;
    static const char *const good[] = {"1.2.3.4",        "1.2.3.4/32",
                                       "10.0.0.0/8",     "0.0.0.0/0",
                                       "10.1.2.3/8",     "::1",
                                       "::/0",           "2001:db8::/32",
                                       "fe80::1/128",    "::ffff:1.2.3.0/120",
                                       "2001:db8::1/64", "255.255.255.255"};
    static const char *const bad[] = {"",           "1.2.3",       "1.2.3.4/33",  "1.2.3.4/",
                                      "1.2.3.4/-1", "1.2.3.4/08",  "01.2.3.4",    "1.2.3.4 ",
                                      " 1.2.3.4",   "1.2.3.4/8/8", "::1/129",     "fe80::1%eth0",
                                      "0x01020304", "1.2.3.4/1a",  "example.com", "1.2.3.256",
                                      "/8",         "1.2.3.4/+8",  "1.2.3.4/0008"};
    kl_netrange r;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (kl_netrules_parse(good[i], strlen(good[i]), &r) != 0)
            fail_msg("%s refused", good[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (kl_netrules_parse(bad[i], strlen(bad[i]), &r) == 0)
            fail_msg("'%s' accepted", bad[i]);
    /* A NUL inside, and more than the limit. */
    assert_int_equal(kl_netrules_parse("1.2.3.4\0/8", 10, &r), KL_EINVAL);
    char longtext[KL_MAX_NETRULE_TEXT + 8];
    memset(longtext, '1', sizeof(longtext));
    assert_int_equal(kl_netrules_parse(longtext, sizeof(longtext), &r), KL_EINVAL);
    /* A plain address takes no prefix. */
    kl_netaddr a;
    assert_int_equal(kl_netaddr_parse("1.2.3.4/32", 10, &a), KL_EINVAL);
}

static void test_ipv4_prefixes(void **state)
{
    (void)state;
    static const char *const rules[] = {"10.0.0.0/8", "192.168.1.7"};
    kl_netrules *nr = compile(rules, 2);
    kl_netaddr in[] = {addr("10.0.0.0"), addr("10.255.255.255"), addr("192.168.1.7"),
                       addr("::ffff:10.1.1.1")};
    kl_netaddr out[] = {addr("9.255.255.255"), addr("11.0.0.0"),  addr("192.168.1.6"),
                        addr("192.168.1.8"),   addr("::a01:101"), addr("2001:db8::1")};
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++)
        assert_true(kl_netrules_match(nr, &in[i]));
    for (size_t i = 0; i < sizeof(out) / sizeof(out[0]); i++)
        assert_false(kl_netrules_match(nr, &out[i]));
    kl_netrules_free(nr);
}

static void test_ipv6_and_everything(void **state)
{
    (void)state;
    static const char *const v6[] = {"2001:db8::/32"};
    kl_netrules *nr = compile(v6, 1);
    kl_netaddr a = addr("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff");
    assert_true(kl_netrules_match(nr, &a));
    a = addr("2001:db9::");
    assert_false(kl_netrules_match(nr, &a));
    a = addr("1.2.3.4");
    assert_false(kl_netrules_match(nr, &a));
    kl_netrules_free(nr);

    /* 0.0.0.0/0 is every IPv4 address and no IPv6 one; ::/0 is everything. */
    static const char *const all4[] = {"0.0.0.0/0"};
    nr = compile(all4, 1);
    a = addr("255.255.255.255");
    assert_true(kl_netrules_match(nr, &a));
    a = addr("::1");
    assert_false(kl_netrules_match(nr, &a));
    kl_netrules_free(nr);
    static const char *const all[] = {"::/0"};
    nr = compile(all, 1);
    a = addr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
    assert_true(kl_netrules_match(nr, &a));
    a = addr("0.0.0.0");
    assert_true(kl_netrules_match(nr, &a));
    kl_netrules_free(nr);
}

static void test_merging(void **state)
{
    (void)state;
    /* Overlapping, contained, adjacent and duplicate rules become one range each. */
    static const char *const rules[] = {"10.0.0.0/24", "10.0.1.0/24", "10.0.0.128/25",
                                        "10.0.0.0/24", "10.0.3.0/24", "::/0"};
    kl_netrules *nr = compile(rules, 5);
    assert_int_equal(kl_netrules_ranges(nr), 2); /* 10.0.0.0-10.0.1.255, 10.0.3.0/24 */
    kl_netaddr a = addr("10.0.2.0");
    assert_false(kl_netrules_match(nr, &a));
    a = addr("10.0.1.255");
    assert_true(kl_netrules_match(nr, &a));
    kl_netrules_free(nr);
    /* The top of the space merges without wrapping around. */
    nr = compile(rules + 5, 1);
    assert_int_equal(kl_netrules_ranges(nr), 1);
    kl_netrules_free(nr);
    /* Empty: nothing matches; NULL: nothing matches. */
    assert_int_equal(kl_netrules_compile(NULL, 0, &nr), 0);
    a = addr("1.1.1.1");
    assert_false(kl_netrules_match(nr, &a));
    assert_false(kl_netrules_match(NULL, &a));
    kl_netrules_free(nr);
}

static void test_limits(void **state)
{
    (void)state;
    kl_netrange *r = calloc(KL_MAX_NETWORK_RULES + 1, sizeof(*r));
    assert_non_null(r);
    kl_netrules *nr = NULL;
    assert_int_equal(kl_netrules_compile(r, KL_MAX_NETWORK_RULES + 1, &nr), KL_ETOOBIG);
    assert_int_equal(kl_netrules_compile(r, KL_MAX_NETWORK_RULES, &nr), 0);
    kl_netrules_free(nr);
    r[0].first.lo = 2; /* first > last */
    assert_int_equal(kl_netrules_compile(r, 1, &nr), KL_EINVAL);
    free(r);
}

static uint64_t rnd_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

static int cmp(kl_netaddr a, kl_netaddr b)
{
    return a.hi != b.hi ? (a.hi < b.hi ? -1 : 1) : (a.lo != b.lo ? (a.lo < b.lo ? -1 : 1) : 0);
}

/* The compiled set agrees with a linear scan of the rules it came from, on random
 * addresses and on every rule's edges and their neighbours. */
static void test_against_scan(void **state)
{
    (void)state;
    enum { N = 1000 };
    kl_netrange r[N];
    char text[64];
    for (int i = 0; i < N; i++) {
        unsigned v = (unsigned)rnd();
        int len = 8 + (int)(rnd() % 25);
        snprintf(text, sizeof(text), "%u.%u.%u.%u/%d", (v >> 24) & 255, (v >> 16) & 255,
                 (v >> 8) & 255, v & 255, len);
        r[i] = range(text);
    }
    kl_netrules *nr = NULL;
    assert_int_equal(kl_netrules_compile(r, N, &nr), 0);
    for (int i = 0; i < 200000; i++) {
        kl_netaddr a;
        if (i < 4 * N) {
            const kl_netrange *e = &r[i / 4];
            a = (i % 4 < 2) ? e->first : e->last;
            if (i % 4 == 1)
                a.lo--;
            if (i % 4 == 3)
                a.lo++;
        } else {
            a.hi = 0;
            a.lo = 0xffff00000000ULL | (rnd() & 0xffffffffULL);
        }
        bool want = false;
        for (int j = 0; j < N && !want; j++)
            want = cmp(r[j].first, a) <= 0 && cmp(a, r[j].last) <= 0;
        if (kl_netrules_match(nr, &a) != want) {
            char s[64];
            kl_netaddr_format(&a, s, sizeof(s));
            fail_msg("%s: match %d, scan %d", s, !want, want);
        }
    }
    kl_netrules_free(nr);
}

static void test_sockaddr(void **state)
{
    (void)state;
    struct sockaddr_in s4 = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.2", &s4.sin_addr);
    kl_netaddr a, b = addr("127.0.0.2");
    assert_int_equal(kl_netaddr_from_sockaddr((struct sockaddr *)&s4, &a), 0);
    assert_true(a.hi == b.hi && a.lo == b.lo);
    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "::ffff:127.0.0.2", &s6.sin6_addr);
    assert_int_equal(kl_netaddr_from_sockaddr((struct sockaddr *)&s6, &a), 0);
    assert_true(a.hi == b.hi && a.lo == b.lo);
    char s[64];
    kl_netaddr_format(&a, s, sizeof(s));
    assert_string_equal(s, "127.0.0.2");
    struct sockaddr un = {.sa_family = AF_UNIX};
    assert_int_equal(kl_netaddr_from_sockaddr(&un, &a), KL_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grammar),
        cmocka_unit_test(test_ipv4_prefixes),
        cmocka_unit_test(test_ipv6_and_everything),
        cmocka_unit_test(test_merging),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_against_scan),
        cmocka_unit_test(test_sockaddr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
