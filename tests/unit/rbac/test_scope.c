/* Scope grammar, canonical form and coverage on segment boundaries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/limits.h"
#include "rbac/scope.h"

static int parse(const char *s, kl_scope *out)
{
    return kl_scope_parse(s, strlen(s), out);
}

static void expect_canonical(const char *in, const char *want, size_t levels)
{
    kl_scope sc;
    assert_int_equal(parse(in, &sc), 0);
    assert_string_equal(sc.text, want);
    assert_int_equal(sc.len, strlen(want));
    assert_int_equal(sc.nlevels, levels);
}

static void test_valid_forms(void **state)
{
    (void)state;
    expect_canonical("/", "/", 1);
    expect_canonical("/subscriptions/s1", "/subscriptions/s1", 2);
    expect_canonical("/subscriptions/s1/resourceGroups/rg-A",
                     "/subscriptions/s1/resourceGroups/rg-A", 3);
    expect_canonical(
        "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/Acct",
        "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/Acct",
        4);
    expect_canonical("/subscriptions/s1/resourceGroups/rg/providers/Microsoft.CognitiveServices/"
                     "accounts/a/deployments/gpt-4o",
                     "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.CognitiveServices/"
                     "accounts/a/deployments/gpt-4o",
                     5);
    /* Subscription-level and tenant-level resources, management groups, extensions. */
    expect_canonical("/subscriptions/s1/providers/Microsoft.Authorization/roleDefinitions/x",
                     "/subscriptions/s1/providers/Microsoft.Authorization/roleDefinitions/x", 3);
    expect_canonical("/providers/Microsoft.Management/managementGroups/mg1",
                     "/providers/Microsoft.Management/managementGroups/mg1", 2);
    expect_canonical("/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/"
                     "accounts/a/providers/Microsoft.Authorization/roleAssignments/r1",
                     "/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/"
                     "accounts/a/providers/Microsoft.Authorization/roleAssignments/r1",
                     5);
}

static void test_canonical_case_and_slash(void **state)
{
    (void)state;
    /* Fixed words get their canonical spelling; names keep their case. */
    expect_canonical("/SUBSCRIPTIONS/S1/resourcegroups/MyRG/PROVIDERS/microsoft.cognitiveservices/"
                     "Accounts/Acct",
                     "/subscriptions/S1/resourceGroups/MyRG/providers/microsoft.cognitiveservices/"
                     "Accounts/Acct",
                     4);
    /* One trailing slash is dropped. */
    expect_canonical("/subscriptions/s1/", "/subscriptions/s1", 2);
    expect_canonical("/subscriptions/s1/resourceGroups/rg/", "/subscriptions/s1/resourceGroups/rg",
                     3);
}

static void test_levels(void **state)
{
    (void)state;
    kl_scope sc;
    const char *s = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/"
                    "accounts/a/deployments/d";
    assert_int_equal(parse(s, &sc), 0);
    assert_int_equal(sc.nlevels, 5);
    const char *want[] = {"/", "/subscriptions/s", "/subscriptions/s/resourceGroups/rg",
                          "/subscriptions/s/resourceGroups/rg/providers/"
                          "Microsoft.CognitiveServices/accounts/a",
                          s};
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(sc.level_len[i], strlen(want[i]));
        assert_memory_equal(sc.text, want[i], strlen(want[i]));
    }
}

static void test_invalid(void **state)
{
    (void)state;
    kl_scope sc;
    const char *bad[] = {
        "",
        "subscriptions/s",
        "//",
        "/subscriptions//x",
        "/subscriptions/s//",
        "/subscriptions",
        "/subscriptions/",
        "/subscriptions/s/resourceGroups",
        "/subscriptions/s/resourceGroups/",
        "/subscriptions/s/rg/x",
        "/subscriptions/../x",
        "/subscriptions/s/resourceGroups/..",
        "/subscriptions/./resourceGroups/rg",
        "/subscriptions/s/resourceGroups/rg/providers",
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices",
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts",
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/a/"
        "deployments",
        "/subscriptions/s/resourceGroups/rg/providers/ns/providers/x",
        "/subscriptions/s p",
        "/subscriptions/s\tp",
        "/subscriptions/s\x01",
        "/subscriptions/s?x=1",
        "/subscriptions/s#f",
        "/subscriptions/s%2f",
        "/subscriptions/s\\x",
        "/subscriptions/s*",
        "/subscriptions/\xc3\xa9",
        "/resourceGroups/rg",
        "/foo",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse(bad[i], &sc) == 0)
            fail_msg("accepted invalid scope \"%s\"", bad[i]);
    }
    /* An embedded NUL within the given length is refused too. */
    assert_int_equal(kl_scope_parse("/subscriptions/s\0x", 18, &sc), KL_EINVAL);
}

static void test_limits(void **state)
{
    (void)state;
    kl_scope sc;
    char buf[KL_MAX_SCOPE + 64];
    /* Exactly KL_MAX_SCOPE bytes is fine, one more is not. */
    size_t pre = strlen("/subscriptions/");
    memcpy(buf, "/subscriptions/", pre);
    memset(buf + pre, 'a', KL_MAX_SCOPE - pre);
    buf[KL_MAX_SCOPE] = '\0';
    assert_int_equal(parse(buf, &sc), 0);
    assert_int_equal(sc.len, KL_MAX_SCOPE);
    buf[KL_MAX_SCOPE] = '/'; /* a trailing slash is dropped before the length check */
    buf[KL_MAX_SCOPE + 1] = '\0';
    assert_int_equal(parse(buf, &sc), 0);
    buf[KL_MAX_SCOPE] = 'a';
    assert_int_equal(parse(buf, &sc), KL_ETOOBIG);

    /* Depth: each /t/n pair adds a level. */
    size_t len =
        (size_t)snprintf(buf, sizeof(buf), "/subscriptions/s/resourceGroups/g/providers/n/t/x");
    size_t levels = 4;
    while (levels < KL_MAX_SCOPE_DEPTH) {
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, "/t/x");
        levels++;
    }
    assert_int_equal(parse(buf, &sc), 0);
    assert_int_equal(sc.nlevels, KL_MAX_SCOPE_DEPTH);
    snprintf(buf + len, sizeof(buf) - len, "/t/x");
    assert_int_equal(parse(buf, &sc), KL_ETOOBIG);
}

static bool covers(const char *a, const char *b)
{
    bool c = true;
    assert_int_equal(kl_scope_covers_str(a, b, &c), 0);
    return c;
}

static void test_covers(void **state)
{
    (void)state;
    const char *acct = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/"
                       "accounts/a";
    const char *dep = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/"
                      "accounts/a/deployments/d";
    assert_true(covers("/", dep));
    assert_true(covers("/subscriptions/s", dep));
    assert_true(covers("/subscriptions/s/resourceGroups/rg", dep));
    assert_true(covers(acct, dep));
    assert_true(covers(dep, dep));
    assert_false(covers(dep, acct));
    assert_false(covers("/subscriptions/s/resourceGroups/rg", "/subscriptions/s"));
    /* Case-insensitive, like ARM. */
    assert_true(covers("/SUBSCRIPTIONS/S/RESOURCEGROUPS/RG", dep));
    assert_true(covers(acct, "/subscriptions/S/resourcegroups/RG/providers/"
                             "microsoft.cognitiveservices/ACCOUNTS/A/deployments/d"));
    /* Siblings and shared prefixes never cover each other. */
    assert_false(
        covers("/subscriptions/s/resourceGroups/rg", "/subscriptions/s/resourceGroups/rg2"));
    assert_false(
        covers("/subscriptions/s/resourceGroups/rg2", "/subscriptions/s/resourceGroups/rg"));
    assert_false(covers("/subscriptions/s", "/subscriptions/s2/resourceGroups/rg"));
    assert_false(covers(acct, "/subscriptions/s/resourceGroups/rg/providers/"
                              "Microsoft.CognitiveServices/accounts/ab"));
    assert_false(covers(acct, "/subscriptions/s/resourceGroups/rg/providers/"
                              "Microsoft.CognitiveServices/accounts/b/deployments/d"));
    /* A management group covers only its own path. */
    assert_false(covers("/providers/Microsoft.Management/managementGroups/mg", dep));

    bool c = true;
    assert_int_equal(kl_scope_covers_str("/x", dep, &c), KL_EINVAL);
    assert_false(c);

    kl_scope a, b;
    assert_int_equal(parse("/subscriptions/S/resourceGroups/RG", &a), 0);
    assert_int_equal(parse("/subscriptions/s/resourcegroups/rg/", &b), 0);
    assert_true(kl_scope_equal(&a, &b));
    assert_true(kl_scope_covers(&a, &b));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_forms), cmocka_unit_test(test_canonical_case_and_slash),
        cmocka_unit_test(test_levels),      cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_limits),      cmocka_unit_test(test_covers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
