/* The evaluator: inheritance down the scope tree, siblings and prefix-sharing names,
 * Not* only inside its own role, control vs data planes, principal lists, case, refusal
 * of bad input, and a 100,000-assignment index checked against a brute-force reference. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/limits.h"
#include "rbac/builtin.h"
#include "rbac/match.h"
#include "rbac/rbac.h"
#include "rbac/scope.h"

#define SUB "/subscriptions/sub1"
#define RG SUB "/resourceGroups/rg"
#define RG2 SUB "/resourceGroups/rg2"
#define ACCT_A RG "/providers/Microsoft.CognitiveServices/accounts/a"
#define ACCT_AB RG "/providers/Microsoft.CognitiveServices/accounts/ab"
#define ACCT_B RG "/providers/Microsoft.CognitiveServices/accounts/b"
#define DEP_A ACCT_A "/deployments/d"
#define DEP_AB ACCT_AB "/deployments/d"
#define DEP_RG2 RG2 "/providers/Microsoft.CognitiveServices/accounts/a/deployments/d"

#define CHAT "Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/completions/action"
#define LIST_KEYS "Microsoft.CognitiveServices/accounts/listKeys/action"
#define ACCT_READ "Microsoft.CognitiveServices/accounts/read"
#define FILES_READ "Microsoft.CognitiveServices/accounts/OpenAI/files/read"

static kl_rbac_index *build(const kl_rbac_role_def *roles, size_t nr, const kl_rbac_assignment *as,
                            size_t na)
{
    kl_rbac_index *ix = NULL;
    char err[256];
    int rc = kl_rbac_index_build(roles, nr, as, na, &ix, err, sizeof(err));
    if (rc)
        fail_msg("build failed: %d %s", rc, err);
    return ix;
}

static bool allowed(const kl_rbac_index *ix, const char *p, const char *action, bool data,
                    const char *scope)
{
    kl_rbac_decision d;
    assert_int_equal(kl_rbac_check(ix, p, action, data, scope, &d), 0);
    kl_rbac_grant g;
    if (!d.allowed) {
        assert_null(d.grant);
        assert_false(kl_rbac_decision_grant(&d, &g));
    } else {
        assert_true(kl_rbac_decision_grant(&d, &g));
        assert_non_null(g.assignment_id);
    }
    return d.allowed;
}

static void test_inheritance(void **state)
{
    (void)state;
    kl_rbac_assignment as[] = {
        {"a1", "p-sub", KL_ROLE_OPENAI_USER, SUB},     {"a2", "p-rg", KL_ROLE_OPENAI_USER, RG},
        {"a3", "p-acct", KL_ROLE_OPENAI_USER, ACCT_A}, {"a4", "p-dep", KL_ROLE_OPENAI_USER, DEP_A},
        {"a5", "p-root", KL_ROLE_READER, "/"},
    };
    kl_rbac_index *ix = build(NULL, 0, as, 5);
    /* Down the tree: each covers the deployment. */
    assert_true(allowed(ix, "p-sub", CHAT, true, DEP_A));
    assert_true(allowed(ix, "p-rg", CHAT, true, DEP_A));
    assert_true(allowed(ix, "p-acct", CHAT, true, DEP_A));
    assert_true(allowed(ix, "p-dep", CHAT, true, DEP_A));
    assert_true(allowed(ix, "p-root", ACCT_READ, false, DEP_A));
    assert_true(allowed(ix, "p-root", ACCT_READ, false, "/"));
    /* Never up the tree. */
    assert_false(allowed(ix, "p-dep", CHAT, true, ACCT_A));
    assert_false(allowed(ix, "p-acct", ACCT_READ, false, RG));
    assert_false(allowed(ix, "p-rg", ACCT_READ, false, SUB));
    assert_false(allowed(ix, "p-sub", ACCT_READ, false, "/"));
    /* Unknown principals get nothing. */
    assert_false(allowed(ix, "nobody", ACCT_READ, false, DEP_A));
    kl_rbac_index_free(ix);
}

static void test_siblings_and_prefixes(void **state)
{
    (void)state;
    kl_rbac_assignment as[] = {
        {"a1", "p1", KL_ROLE_OPENAI_USER, ACCT_A},
        {"a2", "p2", KL_ROLE_OPENAI_USER, RG},
    };
    kl_rbac_index *ix = build(NULL, 0, as, 2);
    /* Account a never covers account b, nor account "ab" whose name starts with "a". */
    assert_true(allowed(ix, "p1", CHAT, true, DEP_A));
    assert_false(allowed(ix, "p1", CHAT, true, ACCT_B));
    assert_false(allowed(ix, "p1", CHAT, true, ACCT_AB));
    assert_false(allowed(ix, "p1", CHAT, true, DEP_AB));
    /* Resource group rg never covers rg2, nor the same account name inside rg2. */
    assert_true(allowed(ix, "p2", CHAT, true, DEP_A));
    assert_false(allowed(ix, "p2", CHAT, true, RG2));
    assert_false(allowed(ix, "p2", CHAT, true, DEP_RG2));
    assert_false(allowed(ix, "p2", CHAT, true, "/subscriptions/sub2/resourceGroups/rg"));
    assert_false(allowed(ix, "p2", CHAT, true, "/subscriptions/sub10/resourceGroups/rg"));
    kl_rbac_index_free(ix);
}

static const char *const cs_all[] = {"Microsoft.CognitiveServices/*"};
static const char *const no_listkeys[] = {LIST_KEYS};
static const char *const listkeys_only[] = {LIST_KEYS};
static const char *const oai_all[] = {"Microsoft.CognitiveServices/accounts/OpenAI/*"};
static const char *const oai_no_files[] = {"Microsoft.CognitiveServices/accounts/OpenAI/files/*"};
static const char *const everything[] = {"*"};
static const char *const root_only[] = {"/"};
static const char *const rg_only[] = {RG};

#define ROLE_A "aaaaaaaa-0000-0000-0000-000000000001"
#define ROLE_B "aaaaaaaa-0000-0000-0000-000000000002"
#define ROLE_C "aaaaaaaa-0000-0000-0000-000000000003"
#define ROLE_ALL_CTL "aaaaaaaa-0000-0000-0000-000000000004"
#define ROLE_ALL_DATA "aaaaaaaa-0000-0000-0000-000000000005"
#define ROLE_RG "aaaaaaaa-0000-0000-0000-000000000006"

static const kl_rbac_role_def custom[] = {
    /* A: all of Cognitive Services except listKeys. */
    {ROLE_A, "Role A", "all but keys", false, cs_all, 1, no_listkeys, 1, NULL, 0, NULL, 0,
     root_only, 1},
    /* B: listKeys only. */
    {ROLE_B, "Role B", NULL, false, listkeys_only, 1, NULL, 0, NULL, 0, NULL, 0, root_only, 1},
    /* C: OpenAI data actions except files. */
    {ROLE_C, "Role C", "", false, NULL, 0, NULL, 0, oai_all, 1, oai_no_files, 1, root_only, 1},
    /* Every control action; every data action. */
    {ROLE_ALL_CTL, "All control", "", false, everything, 1, NULL, 0, NULL, 0, NULL, 0, root_only,
     1},
    {ROLE_ALL_DATA, "All data", "", false, NULL, 0, NULL, 0, everything, 1, NULL, 0, root_only, 1},
    /* Assignable only inside resource group rg. */
    {ROLE_RG, "RG role", "", false, cs_all, 1, NULL, 0, NULL, 0, NULL, 0, rg_only, 1},
};
#define NCUSTOM (sizeof(custom) / sizeof(custom[0]))

static void test_not_actions_stay_in_their_role(void **state)
{
    (void)state;
    kl_rbac_assignment as[] = {
        {"x1", "pa", ROLE_A, ACCT_A},
        {"x2", "pab", ROLE_A, ACCT_A},
        {"x3", "pab", ROLE_B, SUB}, /* granted higher up, still wins */
        {"x4", "pc", ROLE_C, ACCT_A},
        {"x5", "pcu", ROLE_C, ACCT_A},
        {"x6", "pcu", KL_ROLE_OPENAI_USER, ACCT_A},
    };
    kl_rbac_index *ix = build(custom, NCUSTOM, as, 6);
    assert_true(allowed(ix, "pa", ACCT_READ, false, ACCT_A));
    assert_false(allowed(ix, "pa", LIST_KEYS, false, ACCT_A));
    assert_true(allowed(ix, "pab", LIST_KEYS, false, ACCT_A));
    kl_rbac_decision d;
    assert_int_equal(kl_rbac_check(ix, "pab", LIST_KEYS, false, ACCT_A, &d), 0);
    kl_rbac_grant g;
    assert_true(kl_rbac_decision_grant(&d, &g));
    assert_string_equal(g.assignment_id, "x3");
    assert_string_equal(g.role_name, "Role B");
    assert_string_equal(g.role_id, ROLE_B);
    /* notDataActions the same way. */
    assert_true(allowed(ix, "pc", CHAT, true, DEP_A));
    assert_false(allowed(ix, "pc", FILES_READ, true, ACCT_A));
    assert_true(allowed(ix, "pcu", FILES_READ, true, ACCT_A)); /* via OpenAI User's */
    /* A Not* list never subtracts from the other plane. */
    assert_false(allowed(ix, "pc", LIST_KEYS, false, ACCT_A));
    kl_rbac_index_free(ix);
}

static void test_planes_are_separate(void **state)
{
    (void)state;
    kl_rbac_assignment as[] = {
        {"o", "owner", KL_ROLE_OWNER, "/"},
        {"c", "allctl", ROLE_ALL_CTL, SUB},
        {"d", "alldata", ROLE_ALL_DATA, SUB},
    };
    kl_rbac_index *ix = build(custom, NCUSTOM, as, 3);
    assert_true(allowed(ix, "owner", LIST_KEYS, false, ACCT_A));
    assert_false(allowed(ix, "owner", CHAT, true, DEP_A));
    assert_true(allowed(ix, "allctl", "Microsoft.Compute/virtualMachines/write", false, SUB));
    assert_false(allowed(ix, "allctl", CHAT, true, DEP_A));
    assert_true(allowed(ix, "alldata", CHAT, true, DEP_A));
    assert_false(allowed(ix, "alldata", ACCT_READ, false, ACCT_A));
    assert_false(allowed(ix, "alldata", LIST_KEYS, false, ACCT_A));
    kl_rbac_index_free(ix);
}

static void test_principal_lists(void **state)
{
    (void)state;
    kl_rbac_assignment as[] = {
        {"g1", "group-1", KL_ROLE_OPENAI_USER, ACCT_A},
        {"g2", "group-2", KL_ROLE_CS_CONTRIBUTOR, RG},
    };
    kl_rbac_index *ix = build(NULL, 0, as, 2);
    const char *ids[] = {"user-1", "group-0", "group-2", "group-1"};
    kl_rbac_decision d;
    kl_rbac_grant g;
    assert_int_equal(kl_rbac_check_principals(ix, ids, 4, CHAT, true, DEP_A, &d), 0);
    assert_true(kl_rbac_decision_grant(&d, &g));
    assert_string_equal(g.principal_id, "group-1");
    assert_int_equal(kl_rbac_check_principals(ix, ids, 4, LIST_KEYS, false, ACCT_A, &d), 0);
    assert_true(kl_rbac_decision_grant(&d, &g));
    assert_string_equal(g.principal_id, "group-2");
    /* Only the principals passed count. */
    assert_int_equal(kl_rbac_check_principals(ix, ids, 2, CHAT, true, DEP_A, &d), 0);
    assert_false(d.allowed);
    assert_int_equal(kl_rbac_check_principals(ix, ids, 0, CHAT, true, DEP_A, &d), KL_EINVAL);
    assert_false(d.allowed);
    const char *many[KL_MAX_CHECK_PRINCIPALS + 1];
    for (size_t i = 0; i <= KL_MAX_CHECK_PRINCIPALS; i++)
        many[i] = "group-1";
    assert_int_equal(
        kl_rbac_check_principals(ix, many, KL_MAX_CHECK_PRINCIPALS + 1, CHAT, true, DEP_A, &d),
        KL_ETOOBIG);
    assert_false(d.allowed);
    assert_int_equal(
        kl_rbac_check_principals(ix, many, KL_MAX_CHECK_PRINCIPALS, CHAT, true, DEP_A, &d), 0);
    assert_true(d.allowed);
    kl_rbac_index_free(ix);
}

static void test_case_insensitive(void **state)
{
    (void)state;
    kl_rbac_assignment as[] = {
        {"a1", "0A1B2C3D-0000-0000-0000-00000000ABCD", KL_ROLE_OPENAI_USER,
         "/SUBSCRIPTIONS/Sub1/resourcegroups/RG/providers/microsoft.cognitiveservices/"
         "ACCOUNTS/A"},
        {"a2", "other", KL_ROLE_OPENAI_USER, ACCT_A}, /* same scope, other spelling */
    };
    kl_rbac_index *ix = build(NULL, 0, as, 2);
    assert_true(allowed(ix, "0a1b2c3d-0000-0000-0000-00000000abcd",
                        "MICROSOFT.COGNITIVESERVICES/ACCOUNTS/OPENAI/DEPLOYMENTS/CHAT/COMPLETIONS/"
                        "ACTION",
                        true, DEP_A));
    assert_true(allowed(ix, "0A1B2C3D-0000-0000-0000-00000000ABCD", CHAT, true,
                        "/subscriptions/SUB1/resourceGroups/rg/providers/"
                        "Microsoft.CognitiveServices/accounts/a/deployments/D/"));
    /* The decision reports the canonical scope of the assignment. */
    kl_rbac_decision d;
    assert_int_equal(
        kl_rbac_check(ix, "0a1b2c3d-0000-0000-0000-00000000abcd", CHAT, true, DEP_A, &d), 0);
    kl_rbac_grant g;
    assert_true(kl_rbac_decision_grant(&d, &g));
    assert_string_equal(g.assignment_scope, "/subscriptions/Sub1/resourceGroups/RG/providers/"
                                            "microsoft.cognitiveservices/ACCOUNTS/A");
    assert_string_equal(g.principal_id, "0A1B2C3D-0000-0000-0000-00000000ABCD");
    assert_int_equal(kl_rbac_check(ix, "OTHER", CHAT, true, DEP_A, &d), 0);
    assert_true(kl_rbac_decision_grant(&d, &g));
    assert_string_equal(g.assignment_scope, ACCT_A);
    kl_rbac_index_free(ix);
}

static void test_reasons(void **state)
{
    (void)state;
    kl_rbac_assignment as[] = {{"ra-1", "p1", KL_ROLE_OPENAI_USER, ACCT_A}};
    kl_rbac_index *ix = build(NULL, 0, as, 1);
    kl_rbac_decision d;
    char buf[1024];
    assert_int_equal(kl_rbac_check(ix, "p1", CHAT, true, DEP_A, &d), 0);
    assert_true(d.allowed);
    kl_rbac_decision_reason(&d, buf, sizeof(buf));
    assert_non_null(strstr(buf, "ra-1"));
    assert_non_null(strstr(buf, "Cognitive Services OpenAI User"));
    assert_non_null(strstr(buf, KL_ROLE_OPENAI_USER));
    assert_non_null(strstr(buf, CHAT));
    assert_int_equal(kl_rbac_check(ix, "p1", LIST_KEYS, false, ACCT_A, &d), 0);
    assert_false(d.allowed);
    kl_rbac_decision_reason(&d, buf, sizeof(buf));
    assert_string_equal(buf, "no role assignment grants " LIST_KEYS " at " ACCT_A);
    kl_rbac_index_free(ix);
}

static void test_bad_input(void **state)
{
    (void)state;
    kl_rbac_assignment as[] = {{"a1", "p1", KL_ROLE_OWNER, "/"}};
    kl_rbac_index *ix = build(NULL, 0, as, 1);
    kl_rbac_decision d;
    /* Owner at "/" allows anything well-formed; malformed input is refused and denied. */
    assert_int_equal(kl_rbac_check(ix, "p1", ACCT_READ, false, SUB "/../sub2", &d), KL_EINVAL);
    assert_false(d.allowed);
    assert_int_equal(kl_rbac_check(ix, "p1", ACCT_READ, false, SUB "//x", &d), KL_EINVAL);
    assert_false(d.allowed);
    assert_int_equal(kl_rbac_check(ix, "p1", ACCT_READ, false, "", &d), KL_EINVAL);
    assert_int_equal(kl_rbac_check(ix, "p1", "Microsoft.Foo/*", false, SUB, &d), KL_EINVAL);
    assert_false(d.allowed);
    assert_int_equal(kl_rbac_check(ix, "p1", "", false, SUB, &d), KL_EINVAL);
    assert_int_equal(kl_rbac_check(ix, "", ACCT_READ, false, SUB, &d), KL_EINVAL);
    assert_int_equal(kl_rbac_check(ix, "p 1", ACCT_READ, false, SUB, &d), KL_EINVAL);
    assert_int_equal(kl_rbac_check(ix, NULL, ACCT_READ, false, SUB, &d), KL_EINVAL);
    assert_int_equal(kl_rbac_check(NULL, "p1", ACCT_READ, false, SUB, &d), KL_EINVAL);
    assert_false(d.allowed);
    char big[KL_MAX_SCOPE + 16];
    memset(big, 'a', sizeof(big) - 1);
    memcpy(big, "/subscriptions/", 15);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(kl_rbac_check(ix, "p1", ACCT_READ, false, big, &d), KL_ETOOBIG);
    assert_false(d.allowed);
    assert_true(allowed(ix, "p1", ACCT_READ, false, SUB));
    kl_rbac_index_free(ix);
}

static void expect_build_error(const kl_rbac_role_def *roles, size_t nr,
                               const kl_rbac_assignment *as, size_t na, int want)
{
    kl_rbac_index *ix = (kl_rbac_index *)&ix;
    char err[256] = "";
    int rc = kl_rbac_index_build(roles, nr, as, na, &ix, err, sizeof(err));
    if (rc != want)
        fail_msg("expected %d, got %d (%s)", want, rc, err);
    assert_null(ix);
    assert_true(err[0] != '\0');
}

static void test_build_errors(void **state)
{
    (void)state;
    kl_rbac_assignment unknown_role[] = {{"a1", "p1", "99999999-9999-9999-9999-999999999999", SUB}};
    expect_build_error(NULL, 0, unknown_role, 1, KL_ENOTFOUND);
    kl_rbac_assignment bad_role_id[] = {{"a1", "p1", "Owner", SUB}};
    expect_build_error(NULL, 0, bad_role_id, 1, KL_EINVAL);
    kl_rbac_assignment bad_scope[] = {{"a1", "p1", KL_ROLE_OWNER, SUB "/resourceGroups"}};
    expect_build_error(NULL, 0, bad_scope, 1, KL_EINVAL);
    kl_rbac_assignment bad_principal[] = {{"a1", "p 1", KL_ROLE_OWNER, SUB}};
    expect_build_error(NULL, 0, bad_principal, 1, KL_EINVAL);
    kl_rbac_assignment dup[] = {{"a1", "p1", KL_ROLE_OWNER, SUB}, {"A1", "p2", KL_ROLE_READER, RG}};
    expect_build_error(NULL, 0, dup, 2, KL_EEXIST);
    /* Outside the role's assignable scopes. */
    kl_rbac_assignment outside[] = {{"a1", "p1", ROLE_RG, SUB}};
    expect_build_error(custom, NCUSTOM, outside, 1, KL_ECONFLICT);
    kl_rbac_assignment outside2[] = {{"a1", "p1", ROLE_RG, RG2}};
    expect_build_error(custom, NCUSTOM, outside2, 1, KL_ECONFLICT);
    /* Duplicate custom roles. */
    kl_rbac_role_def two[2] = {custom[0], custom[0]};
    expect_build_error(two, 2, NULL, 0, KL_EEXIST);
    two[1].id = "bbbbbbbb-0000-0000-0000-000000000001";
    two[1].name = "ROLE a";
    expect_build_error(two, 2, NULL, 0, KL_EEXIST);
    /* Malformed custom roles. */
    kl_rbac_role_def r = custom[0];
    r.id = "not-a-guid";
    expect_build_error(&r, 1, NULL, 0, KL_EINVAL);
    r = custom[0];
    static const char *const bad_pat[] = {"Microsoft.Foo/ bar"};
    r.not_actions = bad_pat;
    expect_build_error(&r, 1, NULL, 0, KL_EINVAL);
    r = custom[0];
    r.n_assignable_scopes = 0;
    expect_build_error(&r, 1, NULL, 0, KL_EINVAL);
    static const char *const bad_scope_list[] = {"/subscriptions/../x"};
    r = custom[0];
    r.assignable_scopes = bad_scope_list;
    expect_build_error(&r, 1, NULL, 0, KL_EINVAL);
    r = custom[0];
    r.name = "";
    expect_build_error(&r, 1, NULL, 0, KL_EINVAL);

    /* Inside its assignable scopes is fine, and kl_rbac_role_assignable_at agrees. */
    kl_rbac_assignment inside[] = {{"a1", "p1", ROLE_RG, ACCT_A}};
    kl_rbac_index *ix = build(custom, NCUSTOM, inside, 1);
    assert_true(allowed(ix, "p1", LIST_KEYS, false, ACCT_A));
    kl_rbac_index_free(ix);
    assert_true(kl_rbac_role_assignable_at(&custom[5], ACCT_A));
    assert_true(kl_rbac_role_assignable_at(&custom[5], RG));
    assert_false(kl_rbac_role_assignable_at(&custom[5], SUB));
    assert_false(kl_rbac_role_assignable_at(&custom[5], RG2));
    assert_false(kl_rbac_role_assignable_at(&custom[5], "bad"));
    assert_true(kl_rbac_role_assignable_at(kl_rbac_builtin_find(KL_ROLE_OWNER), "/"));
}

static void test_empty_index(void **state)
{
    (void)state;
    kl_rbac_index *ix = build(NULL, 0, NULL, 0);
    assert_false(allowed(ix, "p1", ACCT_READ, false, "/"));
    assert_int_equal(kl_rbac_index_assignment_count(ix), 0);
    assert_non_null(kl_rbac_index_role(ix, KL_ROLE_OWNER));
    assert_null(kl_rbac_index_role(ix, "99999999-9999-9999-9999-999999999999"));
    kl_rbac_index_free(ix);
    kl_rbac_index_free(NULL);
}

/* --- 100,000 assignments over 10,000 principals, against a brute-force reference --- */

#define NPRINC 10000
#define NASG 100000

static uint64_t rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

typedef struct big {
    char (*principal)[24];
    char (*scope)[160];
    char (*id)[24];
    const char **role;
    kl_rbac_assignment *as;
} big;

static void random_scope(uint64_t *s, char *out, size_t n)
{
    unsigned sub = (unsigned)(rng(s) % 10), rg = (unsigned)(rng(s) % 10),
             acct = (unsigned)(rng(s) % 10);
    switch (rng(s) % 4) {
    case 0: snprintf(out, n, "/subscriptions/s%u", sub); break;
    case 1: snprintf(out, n, "/subscriptions/s%u/resourceGroups/rg%u", sub, rg); break;
    default:
        snprintf(out, n,
                 "/subscriptions/s%u/resourceGroups/rg%u/providers/Microsoft.CognitiveServices/"
                 "accounts/acct%u",
                 sub, rg, acct);
    }
}

static const char *const big_roles[] = {KL_ROLE_OPENAI_USER, KL_ROLE_CS_CONTRIBUTOR, KL_ROLE_READER,
                                        KL_ROLE_CONTRIBUTOR, KL_ROLE_CS_USER};
static const struct {
    const char *action;
    bool data;
} big_actions[] = {
    {CHAT, true},
    {FILES_READ, true},
    {LIST_KEYS, false},
    {ACCT_READ, false},
    {"Microsoft.Authorization/roleAssignments/write", false},
};

static bool reference(const big *b, size_t pidx, const char *action, bool data, const char *scope)
{
    char lc[KL_MAX_ACTION + 1];
    size_t len;
    assert_int_equal(kl_rbac_action_normalize(action, lc, &len), 0);
    /* Assignment i belongs to principal i % NPRINC. */
    for (size_t i = pidx; i < NASG; i += NPRINC) {
        bool cov;
        assert_int_equal(kl_scope_covers_str(b->scope[i], scope, &cov), 0);
        if (!cov)
            continue;
        const kl_rbac_role_def *r = kl_rbac_builtin_find(b->role[i]);
        kl_rbac_matcher *allow = NULL, *deny = NULL;
        assert_int_equal(kl_rbac_matcher_new(data ? r->data_actions : r->actions,
                                             data ? r->n_data_actions : r->n_actions, &allow),
                         0);
        assert_int_equal(kl_rbac_matcher_new(data ? r->not_data_actions : r->not_actions,
                                             data ? r->n_not_data_actions : r->n_not_actions,
                                             &deny),
                         0);
        bool ok = kl_rbac_matcher_match(allow, lc, len) && !kl_rbac_matcher_match(deny, lc, len);
        kl_rbac_matcher_free(allow);
        kl_rbac_matcher_free(deny);
        if (ok)
            return true;
    }
    return false;
}

static void test_100k(void **state)
{
    (void)state;
    big b;
    b.principal = calloc(NPRINC, sizeof(*b.principal));
    b.scope = calloc(NASG, sizeof(*b.scope));
    b.id = calloc(NASG, sizeof(*b.id));
    b.role = calloc(NASG, sizeof(*b.role));
    b.as = calloc(NASG, sizeof(*b.as));
    assert_non_null(b.principal);
    assert_non_null(b.scope);
    assert_non_null(b.id);
    assert_non_null(b.role);
    assert_non_null(b.as);
    uint64_t s = 0x1234567887654321ULL;
    for (size_t p = 0; p < NPRINC; p++)
        snprintf(b.principal[p], sizeof(b.principal[p]), "principal-%05zu", p);
    for (size_t i = 0; i < NASG; i++) {
        snprintf(b.id[i], sizeof(b.id[i]), "ra-%06zu", i);
        random_scope(&s, b.scope[i], sizeof(b.scope[i]));
        b.role[i] = big_roles[rng(&s) % (sizeof(big_roles) / sizeof(big_roles[0]))];
        b.as[i] = (kl_rbac_assignment){b.id[i], b.principal[i % NPRINC], b.role[i], b.scope[i]};
    }
    kl_rbac_index *ix = build(NULL, 0, b.as, NASG);
    assert_int_equal(kl_rbac_index_assignment_count(ix), NASG);
    size_t allows = 0, denies = 0;
    for (int t = 0; t < 3000; t++) {
        size_t p = (size_t)(rng(&s) % NPRINC);
        char scope[200];
        char acct[160];
        random_scope(&s, acct, sizeof(acct));
        if (rng(&s) % 2 && strstr(acct, "accounts"))
            snprintf(scope, sizeof(scope), "%s/deployments/d%u", acct, (unsigned)(rng(&s) % 3));
        else
            snprintf(scope, sizeof(scope), "%s", acct);
        size_t ai = (size_t)(rng(&s) % (sizeof(big_actions) / sizeof(big_actions[0])));
        kl_rbac_decision d;
        assert_int_equal(kl_rbac_check(ix, b.principal[p], big_actions[ai].action,
                                       big_actions[ai].data, scope, &d),
                         0);
        bool want = reference(&b, p, big_actions[ai].action, big_actions[ai].data, scope);
        if (d.allowed != want)
            fail_msg("principal %zu %s at %s: index %d reference %d", p, big_actions[ai].action,
                     scope, d.allowed, want);
        if (d.allowed) {
            allows++;
            bool cov;
            kl_rbac_grant g;
            assert_true(kl_rbac_decision_grant(&d, &g));
            assert_int_equal(kl_scope_covers_str(g.assignment_scope, scope, &cov), 0);
            assert_true(cov);
            assert_string_equal(g.principal_id, b.principal[p]);
        } else {
            denies++;
        }
    }
    /* The workload exercises both answers. */
    assert_true(allows > 300);
    assert_true(denies > 300);
    kl_rbac_index_free(ix);
    free(b.principal);
    free(b.scope);
    free(b.id);
    free(b.role);
    free(b.as);
}

/* Principals with many scopes (their pairs leave the principal's record) and with several
 * assignments at one scope, against a brute-force reference over every assignment. */
#define HEAVY_P 6
#define HEAVY_N 1500

static bool reference_all(const kl_rbac_assignment *as, size_t n, const char *principal,
                          const char *action, bool data, const char *scope)
{
    char lc[KL_MAX_ACTION + 1];
    size_t len;
    assert_int_equal(kl_rbac_action_normalize(action, lc, &len), 0);
    for (size_t i = 0; i < n; i++) {
        bool cov;
        if (strcasecmp(as[i].principal_id, principal) != 0)
            continue;
        assert_int_equal(kl_scope_covers_str(as[i].scope, scope, &cov), 0);
        if (!cov)
            continue;
        const kl_rbac_role_def *r = kl_rbac_builtin_find(as[i].role_definition_id);
        kl_rbac_matcher *allow = NULL, *deny = NULL;
        assert_int_equal(kl_rbac_matcher_new(data ? r->data_actions : r->actions,
                                             data ? r->n_data_actions : r->n_actions, &allow),
                         0);
        assert_int_equal(kl_rbac_matcher_new(data ? r->not_data_actions : r->not_actions,
                                             data ? r->n_not_data_actions : r->n_not_actions,
                                             &deny),
                         0);
        bool ok = kl_rbac_matcher_match(allow, lc, len) && !kl_rbac_matcher_match(deny, lc, len);
        kl_rbac_matcher_free(allow);
        kl_rbac_matcher_free(deny);
        if (ok)
            return true;
    }
    return false;
}

static void heavy_scope(uint64_t *s, char *out, size_t n)
{
    unsigned rg = (unsigned)(rng(s) % 8), acct = (unsigned)(rng(s) % 40);
    switch (rng(s) % 6) {
    case 0: snprintf(out, n, "/subscriptions/s%u", (unsigned)(rng(s) % 3)); break;
    case 1: snprintf(out, n, "/subscriptions/s0/resourceGroups/rg%u", rg); break;
    default:
        snprintf(out, n,
                 "/subscriptions/s0/resourceGroups/rg%u/providers/Microsoft.CognitiveServices/"
                 "accounts/acct%u",
                 rg, acct);
    }
}

static void test_heavy_principals(void **state)
{
    (void)state;
    static char principal[HEAVY_P][16], scope[HEAVY_N][160], id[HEAVY_N][16];
    static kl_rbac_assignment as[HEAVY_N];
    uint64_t s = 0xfeedfacecafebeefULL;
    for (size_t p = 0; p < HEAVY_P; p++)
        snprintf(principal[p], sizeof(principal[p]), "heavy-%zu", p);
    for (size_t i = 0; i < HEAVY_N; i++) {
        snprintf(id[i], sizeof(id[i]), "h-%zu", i);
        heavy_scope(&s, scope[i], sizeof(scope[i]));
        /* Principal 0 gets few assignments (its pairs fit its record), the rest many. */
        size_t p = i % 200 == 0 ? 0 : 1 + i % (HEAVY_P - 1);
        as[i] = (kl_rbac_assignment){
            id[i], principal[p], big_roles[rng(&s) % (sizeof(big_roles) / sizeof(big_roles[0]))],
            scope[i]};
    }
    kl_rbac_index *ix = build(NULL, 0, as, HEAVY_N);
    size_t allows = 0;
    for (int t = 0; t < 4000; t++) {
        size_t p = (size_t)(rng(&s) % HEAVY_P);
        char target[200], base[160];
        heavy_scope(&s, base, sizeof(base));
        snprintf(target, sizeof(target), "%s%s", base,
                 strstr(base, "accounts") && rng(&s) % 2 ? "/deployments/d" : "");
        size_t ai = (size_t)(rng(&s) % (sizeof(big_actions) / sizeof(big_actions[0])));
        kl_rbac_decision d;
        assert_int_equal(kl_rbac_check(ix, principal[p], big_actions[ai].action,
                                       big_actions[ai].data, target, &d),
                         0);
        bool want = reference_all(as, HEAVY_N, principal[p], big_actions[ai].action,
                                  big_actions[ai].data, target);
        if (d.allowed != want)
            fail_msg("%s %s at %s: index %d reference %d", principal[p], big_actions[ai].action,
                     target, d.allowed, want);
        allows += d.allowed;
    }
    assert_true(allows > 400);
    assert_true(allows < 3600);
    kl_rbac_index_free(ix);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inheritance),
        cmocka_unit_test(test_siblings_and_prefixes),
        cmocka_unit_test(test_not_actions_stay_in_their_role),
        cmocka_unit_test(test_planes_are_separate),
        cmocka_unit_test(test_principal_lists),
        cmocka_unit_test(test_case_insensitive),
        cmocka_unit_test(test_reasons),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_build_errors),
        cmocka_unit_test(test_empty_index),
        cmocka_unit_test(test_100k),
        cmocka_unit_test(test_heavy_principals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
