/* Action pattern matching: exact patterns, wildcards, case, the folding of a whole-segment
 * star, and refusal of malformed patterns and actions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/limits.h"
#include "rbac/match.h"

/* True if the single pattern p matches action a (both as a user would write them). */
static bool m1(const char *p, const char *a)
{
    kl_rbac_matcher *m = NULL;
    const char *ps[1] = {p};
    assert_int_equal(kl_rbac_matcher_new(ps, 1, &m), 0);
    char lc[KL_MAX_ACTION + 1];
    size_t len;
    assert_int_equal(kl_rbac_action_normalize(a, lc, &len), 0);
    bool r = kl_rbac_matcher_match(m, lc, len);
    kl_rbac_matcher_free(m);
    return r;
}

static void test_exact(void **state)
{
    (void)state;
    assert_true(m1("Microsoft.CognitiveServices/accounts/listKeys/action",
                   "Microsoft.CognitiveServices/accounts/listKeys/action"));
    assert_false(m1("Microsoft.CognitiveServices/accounts/listKeys/action",
                    "Microsoft.CognitiveServices/accounts/listKeys/actio"));
    assert_false(m1("Microsoft.CognitiveServices/accounts/listKeys/action",
                    "Microsoft.CognitiveServices/accounts/listKeys/actions"));
    assert_false(m1("Microsoft.CognitiveServices/accounts/read",
                    "Microsoft.CognitiveServices/accounts/deployments/read"));
}

static void test_case_insensitive(void **state)
{
    (void)state;
    assert_true(m1("Microsoft.CognitiveServices/accounts/listkeys/action",
                   "MICROSOFT.COGNITIVESERVICES/ACCOUNTS/LISTKEYS/ACTION"));
    assert_true(m1("microsoft.web/sites/restart/Action", "Microsoft.Web/sites/restart/action"));
    assert_true(
        m1("Microsoft.Authorization/*/Write", "microsoft.authorization/roleassignments/write"));
}

static void test_star(void **state)
{
    (void)state;
    /* "*" alone: everything. */
    assert_true(m1("*", "Microsoft.Anything/at/all"));
    assert_true(m1("*", "x"));
    /* Leading star covers any provider and any depth, '/' included. */
    assert_true(m1("*/read", "Microsoft.Compute/virtualMachines/read"));
    assert_true(m1("*/read", "Microsoft.CognitiveServices/accounts/deployments/read"));
    assert_false(m1("*/read", "Microsoft.Compute/virtualMachines/write"));
    assert_false(m1("*/read", "Microsoft.Compute/virtualMachines/readiness"));
    /* Trailing star: anything under the prefix. */
    assert_true(m1("Microsoft.CognitiveServices/*", "Microsoft.CognitiveServices/accounts/write"));
    assert_true(m1("Microsoft.CognitiveServices/*",
                   "Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/completions/"
                   "action"));
    assert_false(
        m1("Microsoft.CognitiveServices/*", "Microsoft.CognitiveServicesX/accounts/write"));
    assert_false(m1("Microsoft.CognitiveServices/*", "Microsoft.Compute/accounts/write"));
    /* Middle star spans several segments. */
    assert_true(
        m1("Microsoft.CognitiveServices/*/read", "Microsoft.CognitiveServices/accounts/read"));
    assert_true(m1("Microsoft.CognitiveServices/*/read",
                   "Microsoft.CognitiveServices/accounts/deployments/read"));
    assert_false(m1("Microsoft.CognitiveServices/*/read",
                    "Microsoft.CognitiveServices/accounts/deployments/write"));
    assert_false(m1("Microsoft.Network/*/read", "Microsoft.Compute/virtualMachines/read"));
    /* Several stars. */
    assert_true(m1("Microsoft.*/*/read", "Microsoft.Compute/disks/read"));
    assert_true(m1("a*b*c", "abc"));
    assert_true(m1("a*b*c", "axxbyyc"));
    assert_false(m1("a*b*c", "axxcyyb"));
    assert_true(m1("a**c", "ac"));
    /* A star inside a segment. */
    assert_true(m1("Microsoft.Insights/metric*/read", "Microsoft.Insights/metricdefinitions/read"));
    assert_false(m1("Microsoft.Insights/metric*/read", "Microsoft.Insights/logs/read"));
    /* Pieces may not overlap: "ab*ba" needs at least "abba". */
    assert_false(m1("ab*ba", "aba"));
    assert_true(m1("ab*ba", "abba"));
}

static void test_segment_star_folds(void **state)
{
    (void)state;
    /* Managed Identity Operator's patterns must grant the plain actions. */
    const char *assign = "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action";
    assert_true(m1(assign, "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action"));
    assert_true(m1(assign, "Microsoft.ManagedIdentity/userAssignedIdentities/x/assign/action"));
    assert_false(m1(assign, "Microsoft.ManagedIdentity/userAssignedIdentities/assign/actions"));
    assert_false(m1(assign, "Microsoft.ManagedIdentity/userAssignedIdentitiesassign/action"));
    const char *read = "Microsoft.ManagedIdentity/userAssignedIdentities/*/read";
    assert_true(m1(read, "Microsoft.ManagedIdentity/userAssignedIdentities/read"));
    assert_true(m1(read,
                   "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/"
                   "read"));
    assert_false(m1(read, "Microsoft.ManagedIdentity/userAssignedIdentities/write"));
    /* Two folding stars. */
    assert_true(m1("a/*/b/*/c", "a/b/c"));
    assert_true(m1("a/*/b/*/c", "a/x/b/y/c"));
    assert_true(m1("a/*/b/*/c", "a/b/y/c"));
    assert_false(m1("a/*/b/*/c", "a/bc"));
    /* A star that is not a whole segment does not fold. */
    assert_false(m1("a/x*/b", "a/b"));
    assert_true(m1("a/x*/b", "a/x/b"));
}

static void test_list(void **state)
{
    (void)state;
    const char *ps[] = {"Microsoft.Insights/alertRules/*", "Microsoft.Support/*",
                        "Microsoft.Resources/subscriptions/resourceGroups/read"};
    kl_rbac_matcher *m = NULL;
    assert_int_equal(kl_rbac_matcher_new(ps, 3, &m), 0);
    assert_int_equal(kl_rbac_matcher_count(m), 3);
    char lc[KL_MAX_ACTION + 1];
    size_t n;
    assert_int_equal(kl_rbac_action_normalize("Microsoft.Support/supportTickets/write", lc, &n), 0);
    assert_true(kl_rbac_matcher_match(m, lc, n));
    assert_int_equal(
        kl_rbac_action_normalize("Microsoft.Resources/subscriptions/resourceGroups/read", lc, &n),
        0);
    assert_true(kl_rbac_matcher_match(m, lc, n));
    assert_int_equal(
        kl_rbac_action_normalize("Microsoft.Resources/subscriptions/resourceGroups/write", lc, &n),
        0);
    assert_false(kl_rbac_matcher_match(m, lc, n));
    kl_rbac_matcher_free(m);

    /* An empty list (and a NULL matcher) matches nothing. */
    assert_int_equal(kl_rbac_matcher_new(NULL, 0, &m), 0);
    assert_false(kl_rbac_matcher_match(m, lc, n));
    kl_rbac_matcher_free(m);
    assert_false(kl_rbac_matcher_match(NULL, lc, n));
}

static void test_invalid(void **state)
{
    (void)state;
    kl_rbac_matcher *m = (kl_rbac_matcher *)1;
    const char *bad[] = {"Microsoft.Foo/ bar"};
    assert_int_equal(kl_rbac_matcher_new(bad, 1, &m), KL_EINVAL);
    assert_null(m);
    const char *empty[] = {""};
    assert_int_equal(kl_rbac_matcher_new(empty, 1, &m), KL_EINVAL);
    const char *ctl[] = {"Microsoft.Foo/\x01"};
    assert_int_equal(kl_rbac_matcher_new(ctl, 1, &m), KL_EINVAL);
    const char *nul[] = {NULL};
    assert_int_equal(kl_rbac_matcher_new(nul, 1, &m), KL_EINVAL);
    char longp[KL_MAX_ACTION + 2];
    memset(longp, 'a', sizeof(longp) - 1);
    longp[sizeof(longp) - 1] = '\0';
    const char *lp[] = {longp};
    assert_int_equal(kl_rbac_matcher_new(lp, 1, &m), KL_ETOOBIG);

    char lc[KL_MAX_ACTION + 1];
    size_t n;
    assert_int_equal(kl_rbac_action_normalize("", lc, &n), KL_EINVAL);
    assert_int_equal(kl_rbac_action_normalize("Microsoft.Foo/*", lc, &n), KL_EINVAL);
    assert_int_equal(kl_rbac_action_normalize("Microsoft.Foo/a b", lc, &n), KL_EINVAL);
    assert_int_equal(kl_rbac_action_normalize("Microsoft.Foo/\xc3\xa9", lc, &n), KL_EINVAL);
    assert_int_equal(kl_rbac_action_normalize(longp, lc, &n), KL_ETOOBIG);
    longp[KL_MAX_ACTION] = '\0';
    assert_int_equal(kl_rbac_action_normalize(longp, lc, &n), 0);
    assert_int_equal(n, KL_MAX_ACTION);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact), cmocka_unit_test(test_case_insensitive),
        cmocka_unit_test(test_star),  cmocka_unit_test(test_segment_star_folds),
        cmocka_unit_test(test_list),  cmocka_unit_test(test_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
