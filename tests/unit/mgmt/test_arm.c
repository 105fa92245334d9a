/* Unit tests of the control plane's request grammar and resource bodies: ARM paths and
 * names, api-version, JSON intake, the route table's deny-by-default check, and the
 * exact JSON shapes of errors, accounts and deployments. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "mgmt/arm.h"
#include "mgmt/internal.h"
#include "mgmt/mgmt.h"
#include "mgmt/resource.h"
#include "mgmt/mgmt_route.h"

#define ACCT_PATH                                                                                  \
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/default/providers/"        \
    "Microsoft.CognitiveServices/accounts/demo"

static char *dumps(const json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    assert_non_null(s);
    return s;
}

static json_t *parse(const char *text)
{
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    return j;
}

/* ------------------------------------------------------------------ paths */

static void test_match_account_path(void **state)
{
    (void)state;
    kl_arm_match m;
    assert_true(kl_arm_match_path(KL_ARM_ACCOUNT, ACCT_PATH, &m));
    assert_int_equal(m.n, 3);
    assert_int_equal(m.p[0].key_len, strlen("subscription"));
    assert_memory_equal(m.p[0].key, "subscription", m.p[0].key_len);
    assert_int_equal(m.p[0].val_len, 36);
    assert_int_equal(m.p[2].val_len, 4);
    assert_memory_equal(m.p[2].val, "demo", 4);

    kl_arm_names n;
    kl_arm_error e;
    assert_int_equal(kl_arm_resolve_names(&m, &n, &e), 0);
    assert_string_equal(n.subscription, "00000000-0000-0000-0000-000000000000");
    assert_string_equal(n.resource_group, "default");
    assert_string_equal(n.account, "demo");
    assert_string_equal(n.deployment, "");

    /* Literal segments are case-insensitive, as in ARM. */
    assert_true(kl_arm_match_path(KL_ARM_ACCOUNT,
                                  "/SUBSCRIPTIONS/s/RESOURCEGROUPS/rg/PROVIDERS/"
                                  "microsoft.cognitiveservices/ACCOUNTS/Demo",
                                  &m));
    assert_true(kl_arm_match_path(KL_ARM_DEPLOYMENT, ACCT_PATH "/Deployments/gpt-4o", &m));
    assert_int_equal(m.n, 4);
    assert_true(kl_arm_match_path(KL_ARM_LIST_KEYS, ACCT_PATH "/listkeys", NULL));
    assert_true(kl_arm_match_path(KL_ARM_ACCOUNTS_IN_SUB,
                                  "/subscriptions/s/providers/Microsoft.CognitiveServices/accounts",
                                  NULL));
}

static void test_match_rejects_shapes(void **state)
{
    (void)state;
    /* Other segment counts. */
    assert_false(kl_arm_match_path(KL_ARM_ACCOUNT, ACCT_PATH "/extra", NULL));
    assert_false(kl_arm_match_path(KL_ARM_DEPLOYMENT, ACCT_PATH, NULL));
    /* Other literals. */
    assert_false(kl_arm_match_path(
        KL_ARM_ACCOUNT,
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/accounts/demo", NULL));
    /* Empty segments and a trailing slash never match (the server collapses them first). */
    assert_false(kl_arm_match_path(
        KL_ARM_ACCOUNT,
        "/subscriptions//resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/demo",
        NULL));
    assert_false(kl_arm_match_path(KL_ARM_ACCOUNT, ACCT_PATH "/", NULL));
    assert_false(kl_arm_match_path(KL_ARM_ACCOUNT, "", NULL));
    assert_false(kl_arm_match_path(KL_ARM_ACCOUNT, "/", NULL));
    assert_false(kl_arm_match_path(KL_ARM_ACCOUNT, "subscriptions/s", NULL));
    assert_false(kl_arm_match_path(KL_ARM_ACCOUNT, NULL, NULL));
    /* A literal is not a prefix match. */
    assert_false(kl_arm_match_path("/subscriptions/{subscription}", "/subscriptionsX/s", NULL));
    assert_false(kl_arm_match_path("/subscriptions/{subscription}", "/subscription/s", NULL));
}

static int resolve(const char *pattern, const char *path, kl_arm_names *n, kl_arm_error *e)
{
    kl_arm_match m;
    assert_true(kl_arm_match_path(pattern, path, &m));
    return kl_arm_resolve_names(&m, n, e);
}

static void expect_invalid(const char *pattern, const char *path, const char *code)
{
    kl_arm_names n;
    kl_arm_error e = {0};
    assert_int_equal(resolve(pattern, path, &n, &e), KL_EINVAL);
    assert_int_equal(e.status, 400);
    assert_string_equal(e.code, code);
    assert_true(strlen(e.message) > 0);
}

static void test_name_rules(void **state)
{
    (void)state;
    char path[12000];
    static const char *const bad_accounts[] = {
        "a",      "-demo", "demo-", "de_mo",    "de.mo", "de..mo",
        "d%41mo", "de mo", "dém",   "de\x01mo", "..",
    };
    for (size_t i = 0; i < sizeof(bad_accounts) / sizeof(bad_accounts[0]); i++) {
        snprintf(path, sizeof(path),
                 "/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/"
                 "accounts/%s",
                 bad_accounts[i]);
        expect_invalid(KL_ARM_ACCOUNT, path, "InvalidResourceName");
    }
    char long_name[10 * 1024 + 1];
    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    snprintf(path, sizeof(path),
             "/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/"
             "accounts/%s",
             long_name);
    expect_invalid(KL_ARM_ACCOUNT, path, "InvalidResourceName");
    /* 64 is the most an account name may have; 65 is refused. */
    char n64[65], n65[66];
    memset(n64, 'b', 64);
    n64[64] = '\0';
    memset(n65, 'b', 65);
    n65[65] = '\0';
    assert_true(kl_arm_valid_account_name(n64, 64));
    assert_false(kl_arm_valid_account_name(n65, 65));
    assert_true(kl_arm_valid_account_name("a1", 2));
    assert_true(kl_arm_valid_account_name("My-Account-9", 12));

    /* Resource groups have their own code. */
    static const char *const bad_groups[] = {"rg.", "r..g", "r/g", "r g", "r\tg", "r:g"};
    for (size_t i = 0; i < sizeof(bad_groups) / sizeof(bad_groups[0]); i++) {
        if (strchr(bad_groups[i], '/'))
            continue; /* would be two segments: no match at all */
        snprintf(path, sizeof(path),
                 "/subscriptions/s/resourceGroups/%s/providers/Microsoft.CognitiveServices/"
                 "accounts/demo",
                 bad_groups[i]);
        expect_invalid(KL_ARM_ACCOUNT, path, "InvalidResourceGroupName");
    }
    snprintf(path, sizeof(path),
             "/subscriptions/s/resourceGroups/%s/providers/Microsoft.CognitiveServices/"
             "accounts/demo",
             long_name);
    expect_invalid(KL_ARM_ACCOUNT, path, "InvalidResourceGroupName");
    assert_true(kl_arm_valid_resource_group("My_Group-(1).x", 14));
    char g90[91];
    memset(g90, 'g', 90);
    assert_true(kl_arm_valid_resource_group(g90, 90));
    assert_false(kl_arm_valid_resource_group(g90, 0));

    /* Subscriptions. */
    expect_invalid(KL_ARM_ACCOUNTS_IN_SUB,
                   "/subscriptions/s..x/providers/Microsoft.CognitiveServices/accounts",
                   "InvalidResourceName");
    expect_invalid(KL_ARM_ACCOUNTS_IN_SUB,
                   "/subscriptions/a'b/providers/Microsoft.CognitiveServices/accounts",
                   "InvalidResourceName");
    assert_true(kl_arm_valid_subscription("00000000-0000-0000-0000-000000000000", 36));

    /* Deployments allow '.' and '_' but not "..". */
    assert_true(kl_arm_valid_deployment_name("gpt-4o_mini.v1", 14));
    assert_false(kl_arm_valid_deployment_name("gpt..4", 6));
    assert_false(kl_arm_valid_deployment_name("x", 1));
    assert_false(kl_arm_valid_deployment_name("a:b", 3));
    expect_invalid(KL_ARM_DEPLOYMENT, ACCT_PATH "/deployments/..", "InvalidResourceName");
    expect_invalid(KL_ARM_DEPLOYMENT, ACCT_PATH "/deployments/a%2e%2e", "InvalidResourceName");
}

static void test_names_not_echoed(void **state)
{
    (void)state;
    kl_arm_names n;
    kl_arm_error e = {0};
    assert_int_equal(resolve(KL_ARM_ACCOUNT,
                             "/subscriptions/s/resourceGroups/rg/providers/"
                             "Microsoft.CognitiveServices/accounts/<script>x",
                             &n, &e),
                     KL_EINVAL);
    assert_null(strstr(e.message, "<script>"));
}

/* ------------------------------------------------------------------ api-version */

static void test_api_version(void **state)
{
    (void)state;
    kl_arm_error e = {0};
    assert_int_equal(kl_arm_check_api_version("2024-10-01", kl_arm_versions_accounts, &e), 0);
    assert_int_equal(kl_arm_check_api_version("2023-10-01-preview", kl_arm_versions_accounts, &e),
                     0);
    /* ARM compares versions case-insensitively. */
    assert_int_equal(
        kl_arm_check_api_version("2023-10-01-PREVIEW", kl_arm_versions_deployments, &e), 0);
    assert_int_equal(kl_arm_check_api_version("2022-04-01", kl_arm_versions_role_assignments, &e),
                     0);
    assert_int_equal(
        kl_arm_check_api_version("2022-05-01-preview", kl_arm_versions_role_definitions, &e), 0);

    assert_int_equal(kl_arm_check_api_version(NULL, kl_arm_versions_accounts, &e), KL_EINVAL);
    assert_int_equal(e.status, 400);
    assert_string_equal(e.code, "MissingApiVersionParameter");
    assert_string_equal(e.message, "The api-version query parameter (?api-version=) is required "
                                   "for all requests.");
    assert_int_equal(kl_arm_check_api_version("", kl_arm_versions_accounts, &e), KL_EINVAL);
    assert_string_equal(e.code, "MissingApiVersionParameter");

    /* Deployments did not exist before 2021-10-01; role assignments take no 2024 date. */
    memset(&e, 0, sizeof(e));
    assert_int_equal(kl_arm_check_api_version("2017-04-18", kl_arm_versions_deployments, &e),
                     KL_EINVAL);
    assert_string_equal(e.code, "InvalidApiVersionParameter");
    assert_string_equal(e.message,
                        "The api-version '2017-04-18' is invalid. The supported versions are "
                        "'2025-12-01,2025-10-01-preview,2025-09-01,2025-07-01-preview,2025-06-01,"
                        "2025-04-01-preview,2024-10-01,2024-06-01-preview,2024-04-01-preview,"
                        "2023-10-01-preview,2023-05-01,2022-12-01,2022-10-01,2022-03-01,"
                        "2021-10-01'.");
    assert_int_equal(kl_arm_check_api_version("2024-10-01", kl_arm_versions_role_assignments, &e),
                     KL_EINVAL);
    assert_string_equal(e.message,
                        "The api-version '2024-10-01' is invalid. The supported versions are "
                        "'2022-04-01,2020-10-01-preview,2020-08-01-preview,2020-04-01-preview,"
                        "2018-09-01-preview'.");

    static const char *const bad[] = {
        "latest",          "2024-1-01",      "2024-13-01",          "2024-10-00", "2024-10-32",
        "2024-10-01-beta", "2024-10-01x",    "2024-10-01-preview2", "20241001",   "2024/10/01",
        "2024-10-01 ",     "２０２４-10-01", "2099-01-01"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&e, 0, sizeof(e));
        assert_int_equal(kl_arm_check_api_version(bad[i], kl_arm_versions_accounts, &e), KL_EINVAL);
        assert_int_equal(e.status, 400);
        assert_string_equal(e.code, "InvalidApiVersionParameter");
    }
    /* What does not look like a version is not echoed. */
    assert_int_equal(kl_arm_check_api_version("<script>", kl_arm_versions_role_definitions, &e),
                     KL_EINVAL);
    assert_string_equal(e.message, "The api-version is invalid. The supported versions are "
                                   "'2022-05-01-preview,2022-04-01,2018-01-01-preview,"
                                   "2015-07-01'.");
}

static void test_unknown_type(void **state)
{
    (void)state;
    kl_arm_error e = {0};
    const char *acct = "/subscriptions/s/resourceGroups/rg/providers/"
                       "Microsoft.CognitiveServices/accounts/demo";
    char path[512];
    snprintf(path, sizeof(path), "%s/nothing", acct);
    assert_int_equal(kl_arm_unknown_type(path, "2024-10-01", &e), KL_EINVAL);
    assert_int_equal(e.status, 404);
    assert_string_equal(e.code, "InvalidResourceType");
    assert_string_equal(e.message, "The resource type 'accounts/nothing' could not be found in "
                                   "the namespace 'Microsoft.CognitiveServices' for api version "
                                   "'2024-10-01'.");
    assert_int_equal(kl_arm_unknown_type("/subscriptions/s/resourceGroups/rg/providers/"
                                         "Microsoft.Storage/storageAccounts/x",
                                         "2023-01-01", &e),
                     KL_EINVAL);
    assert_string_equal(e.message, "The resource type 'storageAccounts' could not be found in "
                                   "the namespace 'Microsoft.Storage' for api version "
                                   "'2023-01-01'.");
    /* The last providers segment names the namespace (an extension resource). */
    snprintf(path, sizeof(path), "%s/providers/Microsoft.Authorization/denyAssignments", acct);
    assert_int_equal(kl_arm_unknown_type(path, "2022-04-01", &e), KL_EINVAL);
    assert_string_equal(e.message, "The resource type 'denyAssignments' could not be found in "
                                   "the namespace 'Microsoft.Authorization' for api version "
                                   "'2022-04-01'.");
    /* Without an api-version, that comes first; an odd one is not echoed. */
    assert_int_equal(kl_arm_unknown_type(path, NULL, &e), KL_EINVAL);
    assert_string_equal(e.code, "MissingApiVersionParameter");
    assert_int_equal(kl_arm_unknown_type(path, "<x>", &e), KL_EINVAL);
    assert_string_equal(e.message, "The resource type 'denyAssignments' could not be found in "
                                   "the namespace 'Microsoft.Authorization'.");
    /* Not resource-shaped, or a segment that is no plain name: plain NotFound. */
    assert_int_equal(kl_arm_unknown_type("/subscriptions/s/foo", "2024-10-01", &e), KL_ENOTFOUND);
    assert_int_equal(kl_arm_unknown_type("/nothing", "2024-10-01", &e), KL_ENOTFOUND);
    assert_int_equal(kl_arm_unknown_type("/subscriptions/s/providers", "2024-10-01", &e),
                     KL_ENOTFOUND);
    assert_int_equal(
        kl_arm_unknown_type("/subscriptions/s/providers/Microsoft.X/<b>", "2024-10-01", &e),
        KL_ENOTFOUND);
}

/* ------------------------------------------------------------------ errors and bodies */

static void test_error_body_shape(void **state)
{
    (void)state;
    json_t *b = kl_arm_error_body("ResourceNotFound", "The Resource 'x' was not found.");
    char *s = json_dumps(b, JSON_COMPACT | JSON_PRESERVE_ORDER);
    assert_string_equal(s, "{\"error\":{\"code\":\"ResourceNotFound\",\"message\":\"The Resource "
                           "'x' was not found.\"}}");
    free(s);
    json_decref(b);
    /* Messages with quotes and control characters stay valid JSON. */
    b = kl_arm_error_body("BadRequest", "a \"b\"\n");
    s = json_dumps(b, JSON_COMPACT);
    json_t *back = parse(s);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(back, "error"), "message")), "a \"b\"\n");
    assert_int_equal(json_object_size(back), 1);
    assert_int_equal(json_object_size(json_object_get(back, "error")), 2);
    json_decref(back);
    free(s);
    json_decref(b);
}

static int body(const char *text, json_t **out, kl_arm_error *e)
{
    return kl_arm_parse_body((const unsigned char *)text, text ? strlen(text) : 0, out, e);
}

static void test_parse_body(void **state)
{
    (void)state;
    json_t *j = NULL;
    kl_arm_error e = {0};
    assert_int_equal(body("{\"a\":1}", &j, &e), 0);
    assert_true(json_is_object(j));
    json_decref(j);

    static const char *const bad[] = {"",         "[]",
                                      "\"x\"",    "1",
                                      "null",     "{",
                                      "{\"a\":}", "{\"a\":1,\"a\":2}",
                                      "{} {}",    "{\"a\":\"\\u0000\"}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        j = NULL;
        memset(&e, 0, sizeof(e));
        assert_int_equal(body(bad[i], &j, &e), KL_EINVAL);
        assert_null(j);
        assert_int_equal(e.status, 400);
        assert_string_equal(e.code, "InvalidRequestContent");
    }
    /* A NUL inside the body is refused, not truncated. */
    const unsigned char nul[] = {'{', '}', 0, 'x'};
    assert_int_equal(kl_arm_parse_body(nul, sizeof(nul), &j, &e), KL_EINVAL);

    /* The malformed-JSON message gives the position, not the text (which may be a secret). */
    assert_int_equal(body("{\"credential\": sk-SECRETVALUE}", &j, &e), KL_EINVAL);
    assert_null(strstr(e.message, "SECRET"));

    /* Depth: KL_MAX_JSON_DEPTH levels parse, one more is refused before parsing. */
    char text[4 * KL_MAX_JSON_DEPTH + 32];
    snprintf(text, sizeof(text), "{\"a\":");
    size_t t = strlen(text);
    for (int i = 1; i < KL_MAX_JSON_DEPTH; i++)
        text[t++] = '[';
    for (int i = 1; i < KL_MAX_JSON_DEPTH; i++)
        text[t++] = ']';
    text[t++] = '}';
    text[t] = '\0';
    assert_int_equal(body(text, &j, &e), 0);
    json_decref(j);
    snprintf(text, sizeof(text), "{\"a\":");
    t = strlen(text);
    for (int i = 0; i < KL_MAX_JSON_DEPTH; i++)
        text[t++] = '[';
    for (int i = 0; i < KL_MAX_JSON_DEPTH; i++)
        text[t++] = ']';
    text[t++] = '}';
    text[t] = '\0';
    assert_int_equal(body(text, &j, &e), KL_EINVAL);
    assert_string_equal(e.code, "InvalidRequestContent");
    /* Brackets inside strings (escaped quotes too) do not count. */
    assert_true(kl_arm_json_depth_ok((const unsigned char *)"{\"a\":\"[[[[\\\"[[[\"}", 16, 1));
    assert_false(kl_arm_json_depth_ok((const unsigned char *)"{\"a\":[1]}", 9, 1));
}

/* ------------------------------------------------------------------ route table */

static void dummy(struct kl_mgmt_call *c)
{
    (void)c;
}

/* The scope of a route comes from its pattern alone: each kind of route below acts where
 * Azure checks it (the resource, its collection's parent, the {scope}, or "/"). */
static void test_route_scope(void **state)
{
    (void)state;
    kl_arm_names n;
    memset(&n, 0, sizeof(n));
    snprintf(n.subscription, sizeof(n.subscription), "sub1");
    snprintf(n.resource_group, sizeof(n.resource_group), "rg1");
    snprintf(n.account, sizeof(n.account), "acct");
    snprintf(n.deployment, sizeof(n.deployment), "dep");
    snprintf(n.site, sizeof(n.site), "web");
    snprintf(n.launch, sizeof(n.launch), "11111111-1111-1111-1111-111111111111");
    snprintf(n.user, sizeof(n.user), "u@example.com");
    snprintf(n.scope, sizeof(n.scope), "/subscriptions/sub1");
    n.has_scope = true;
    static const struct {
        const char *pattern, *want;
    } cases[] = {
        {"/subscriptions/{subscription}/resourceGroups/{resourceGroup}/providers/"
         "Microsoft.CognitiveServices/accounts/{account}/deployments/{deployment}",
         "/subscriptions/sub1/resourceGroups/rg1/providers/Microsoft.CognitiveServices/"
         "accounts/acct/deployments/dep"},
        {"/subscriptions/{subscription}/resourceGroups/{resourceGroup}/providers/"
         "Microsoft.CognitiveServices/accounts/{account}/listKeys",
         "/subscriptions/sub1/resourceGroups/rg1/providers/Microsoft.CognitiveServices/"
         "accounts/acct"},
        {"/subscriptions/{subscription}/resourceGroups/{resourceGroup}/providers/"
         "Microsoft.CognitiveServices/accounts",
         "/subscriptions/sub1/resourceGroups/rg1"},
        {"/subscriptions/{subscription}/providers/Microsoft.Web/sites", "/subscriptions/sub1"},
        {"/subscriptions/{subscription}/resourceGroups/{resourceGroup}/providers/Microsoft.Web/"
         "sites/{site}/identityHeaders/{launch}",
         "/subscriptions/sub1/resourceGroups/rg1/providers/Microsoft.Web/sites/web"},
        {"/{scope}/providers/Microsoft.Authorization/roleAssignments", "/subscriptions/sub1"},
        {"/providers/Microsoft.Authorization/checkAccess", "/"},
        {"/keyless/signingKeys", "/"},
        {"/v1.0/users/{user}", "/"},
    };
    char out[KL_MAX_SCOPE + 1];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(kl_arm_route_scope(cases[i].pattern, &n, out, sizeof(out)), 0);
        assert_string_equal(out, cases[i].want);
    }
    /* A capture left empty is refused rather than skipped; a short buffer too. */
    memset(n.account, 0, sizeof(n.account));
    assert_int_equal(kl_arm_route_scope(cases[1].pattern, &n, out, sizeof(out)), KL_EINVAL);
    snprintf(n.account, sizeof(n.account), "acct");
    assert_int_equal(kl_arm_route_scope(cases[0].pattern, &n, out, 8), KL_ETOOBIG);
}

static void test_route_table(void **state)
{
    (void)state;
    size_t n = 0;
    const kl_mgmt_route *r = kl_mgmt_routes(&n);
    assert_true(n >= 12);
    assert_int_equal(kl_mgmt_routes_check(r, n), 0);
    for (size_t i = 0; i < n; i++) {
        assert_non_null(r[i].action);
        /* Each route's action belongs to the API it serves. */
        if (strncmp(r[i].pattern, "/keyless/", 9) == 0)
            assert_true(strncmp(r[i].action, "Keyless/", 8) == 0);
        else if (r[i].api == KL_MGMT_GRAPH)
            assert_true(strncmp(r[i].action, "microsoft.directory/", 20) == 0);
        else if (strstr(r[i].pattern, "Microsoft.Authorization"))
            assert_true(strncmp(r[i].action, "Microsoft.Authorization/", 24) == 0);
        else {
            /* An ARM action names the provider and type of the path it serves:
             * "Microsoft.Web/sites/..." for ".../providers/Microsoft.Web/sites...". */
            const char *slash = strchr(r[i].action, '/');
            assert_non_null(slash);
            slash = strchr(slash + 1, '/');
            assert_non_null(slash);
            char want[128];
            snprintf(want, sizeof(want), "/providers/%.*s", (int)(slash - r[i].action),
                     r[i].action);
            assert_non_null(strstr(r[i].pattern, want));
        }
    }

    kl_mgmt_route t[2] = {
        {"GET", KL_ARM_ACCOUNT, "Microsoft.CognitiveServices/accounts/read", KL_MGMT_BODY_NONE,
         dummy, KL_MGMT_ARM, KL_MGMT_AUTHZ_SCOPE, kl_arm_versions_accounts},
        {"PUT", KL_ARM_ACCOUNT, "Microsoft.CognitiveServices/accounts/write", KL_MGMT_BODY_NONE,
         dummy, KL_MGMT_ARM, KL_MGMT_AUTHZ_SCOPE, kl_arm_versions_accounts},
    };
    assert_int_equal(kl_mgmt_routes_check(t, 2), 0);
    t[1].versions = NULL; /* an ARM route that accepts no api-version */
    assert_int_equal(kl_mgmt_routes_check(t, 2), KL_EINVAL);
    t[1].versions = kl_arm_versions_accounts;
    t[1].action = NULL; /* a route that forgot its action */
    assert_int_equal(kl_mgmt_routes_check(t, 2), KL_EINVAL);
    t[1].action = "";
    assert_int_equal(kl_mgmt_routes_check(t, 2), KL_EINVAL);
    t[1].action = "Microsoft.CognitiveServices/accounts/writ";
    assert_int_equal(kl_mgmt_routes_check(t, 2), KL_EINVAL);
    t[1].action = "Microsoft.CognitiveServices/accounts/write";
    t[1].pattern = "/subscriptions/{nosuchname}";
    assert_int_equal(kl_mgmt_routes_check(t, 2), KL_EINVAL);
    t[1].pattern = KL_ARM_ACCOUNT;
    t[1].method = "GET"; /* duplicate of t[0] */
    assert_int_equal(kl_mgmt_routes_check(t, 2), KL_EINVAL);
    t[1].method = "PUT";
    t[1].handler = NULL;
    assert_int_equal(kl_mgmt_routes_check(t, 2), KL_EINVAL);
    assert_int_equal(kl_mgmt_routes_check(NULL, 0), KL_EINVAL);
}

/* tests/lib/control-plane-routes.txt lists every route, and nothing else: the Node
 * suite sends each one over the public listener, so a new route is tested there. */
static void test_route_list_file(void **state)
{
    (void)state;
    FILE *f = fopen(KL_SOURCE_DIR "/tests/lib/control-plane-routes.txt", "r");
    assert_non_null(f);
    size_t n = 0;
    const kl_mgmt_route *r = kl_mgmt_routes(&n);
    bool seen[128] = {false};
    assert_true(n <= sizeof(seen) / sizeof(seen[0]));
    char line[512];
    size_t listed = 0;
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '#' || line[0] == '\0')
            continue;
        char *sp = strchr(line, ' ');
        assert_non_null(sp);
        *sp = '\0';
        bool found = false;
        for (size_t i = 0; i < n && !found; i++) {
            if (strcmp(r[i].method, line) == 0 && strcmp(r[i].pattern, sp + 1) == 0) {
                assert_false(seen[i]);
                seen[i] = found = true;
            }
        }
        if (!found)
            fail_msg("listed but not a route: %s %s", line, sp + 1);
        listed++;
    }
    fclose(f);
    for (size_t i = 0; i < n; i++)
        if (!seen[i])
            fail_msg("route not in tests/lib/control-plane-routes.txt: %s %s", r[i].method,
                     r[i].pattern);
    assert_int_equal(listed, n);
}

static void test_matches(void **state)
{
    (void)state;
    assert_true(kl_mgmt_matches("/subscriptions"));
    assert_true(kl_mgmt_matches("/subscriptions/x"));
    assert_true(kl_mgmt_matches("/SUBSCRIPTIONS/x"));
    assert_true(kl_mgmt_matches("/providers/Microsoft.CognitiveServices/operations"));
    assert_false(kl_mgmt_matches("/subscriptionsx"));
    assert_false(kl_mgmt_matches("/openai/deployments/x"));
    assert_true(kl_mgmt_matches("/v1.0/applications"));
    assert_false(kl_mgmt_matches("/v1.00/applications"));
    assert_false(kl_mgmt_matches("/"));
    assert_false(kl_mgmt_matches(NULL));
}

/* ------------------------------------------------------------------ accounts */

static kl_arm_error perr;

static int account(const char *text, const kl_store_account *base, kl_account_input *in)
{
    json_t *j = parse(text);
    memset(&perr, 0, sizeof(perr));
    int err = kl_resource_parse_account(j, "demo", base, in, &perr);
    json_decref(j);
    return err;
}

static void test_account_body(void **state)
{
    (void)state;
    kl_account_input in;
    assert_int_equal(account("{}", NULL, &in), 0);
    assert_string_equal(in.location, "local");
    assert_string_equal(in.kind, "OpenAI");
    assert_string_equal(in.sku, "{\"name\":\"S0\"}");
    assert_string_equal(in.tags, "{}");
    assert_string_equal(in.properties, "{}");
    assert_false(in.disable_local_auth);
    kl_resource_account_input_free(&in);

    assert_int_equal(
        account("{\"location\":\"westeurope\",\"kind\":\"aiservices\","
                "\"sku\":{\"name\":\"S0\",\"extra\":1},\"tags\":{\"env\":\"dev\"},"
                "\"identity\":{\"type\":\"None\"},"
                "\"properties\":{\"disableLocalAuth\":true,"
                "\"customSubDomainName\":\"DEMO\",\"publicNetworkAccess\":\"disabled\","
                "\"endpoint\":\"https://evil\",\"unknown\":1}}",
                NULL, &in),
        0);
    assert_string_equal(in.location, "westeurope");
    assert_string_equal(in.kind, "AIServices");
    assert_string_equal(in.sku, "{\"name\":\"S0\"}");
    assert_string_equal(in.tags, "{\"env\":\"dev\"}");
    assert_true(in.disable_local_auth);
    /* Only properties we keep are stored; computed ones are never taken from clients. */
    assert_string_equal(in.properties, "{\"publicNetworkAccess\":\"Disabled\"}");
    kl_resource_account_input_free(&in);

    struct {
        const char *body;
        const char *code;
    } bad[] = {
        {"{\"kind\":\"Storage\"}", "InvalidApiSetId"},
        {"{\"kind\":1}", "InvalidApiSetId"},
        {"{\"location\":5}", "InvalidRequestContent"},
        {"{\"location\":\"\"}", "InvalidRequestContent"},
        {"{\"location\":\"a\\nb\"}", "InvalidRequestContent"},
        {"{\"sku\":\"S0\"}", "InvalidRequestContent"},
        {"{\"sku\":{}}", "InvalidRequestContent"},
        {"{\"sku\":{\"name\":\"S0\",\"capacity\":-1}}", "InvalidRequestContent"},
        {"{\"tags\":[]}", "InvalidRequestContent"},
        {"{\"tags\":{\"a\":1}}", "InvalidRequestContent"},
        {"{\"properties\":[]}", "InvalidRequestContent"},
        {"{\"properties\":{\"disableLocalAuth\":\"true\"}}", "InvalidRequestContent"},
        {"{\"properties\":{\"customSubDomainName\":\"other\"}}", "BadRequest"},
        {"{\"properties\":{\"publicNetworkAccess\":\"Sometimes\"}}", "InvalidRequestContent"},
        {"{\"properties\":{\"networkAcls\":\"open\"}}", "InvalidRequestContent"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&in, 0x5a, sizeof(in));
        assert_int_equal(account(bad[i].body, NULL, &in), KL_EINVAL);
        assert_int_equal(perr.status, 400);
        assert_string_equal(perr.code, bad[i].code);
        assert_null(in.location); /* emptied on failure */
    }

    /* 51 tags are too many. */
    char many[4096];
    size_t off = (size_t)snprintf(many, sizeof(many), "{\"tags\":{");
    for (int i = 0; i < 51; i++)
        off += (size_t)snprintf(many + off, sizeof(many) - off, "%s\"t%d\":\"v\"", i ? "," : "", i);
    snprintf(many + off, sizeof(many) - off, "}}");
    assert_int_equal(account(many, NULL, &in), KL_EINVAL);
    assert_string_equal(perr.code, "InvalidTagCount");
}

static void test_account_patch_merges(void **state)
{
    (void)state;
    kl_store_account base = {.location = "local",
                             .kind = "OpenAI",
                             .sku = "{\"name\":\"S0\"}",
                             .tags = "{\"a\":\"b\"}",
                             .properties = "{\"publicNetworkAccess\":\"Disabled\"}",
                             .disable_local_auth = true};
    kl_account_input in;
    assert_int_equal(account("{\"tags\":{\"c\":\"d\"}}", &base, &in), 0);
    assert_string_equal(in.tags, "{\"c\":\"d\"}");
    assert_string_equal(in.location, "local");
    assert_true(in.disable_local_auth);
    assert_string_equal(in.properties, "{\"publicNetworkAccess\":\"Disabled\"}");
    kl_resource_account_input_free(&in);
    assert_int_equal(account("{\"properties\":{\"disableLocalAuth\":false,"
                             "\"publicNetworkAccess\":null,\"dynamicThrottlingEnabled\":true}}",
                             &base, &in),
                     0);
    assert_false(in.disable_local_auth);
    assert_string_equal(in.tags, "{\"a\":\"b\"}");
    assert_string_equal(in.properties, "{\"dynamicThrottlingEnabled\":true}");
    kl_resource_account_input_free(&in);
}

/* properties.networkAcls: validated at write time (every ipRule through the rule
 * parser the snapshot uses), stored apart in canonical form, kept or removed by PATCH. */
static void test_account_network_acls(void **state)
{
    (void)state;
    kl_account_input in;
    assert_int_equal(
        account("{\"properties\":{\"publicNetworkAccess\":\"Enabled\","
                "\"networkAcls\":{\"defaultAction\":\"deny\",\"bypass\":\"azureservices\","
                "\"ipRules\":[{\"value\":\"10.0.0.0/8\",\"x\":1},{\"value\":\"2001:db8::1\"}],"
                "\"virtualNetworkRules\":[{\"id\":\"/subscriptions/s/vnet\","
                "\"ignoreMissingVnetServiceEndpoint\":true}],\"other\":1}}}",
                NULL, &in),
        0);
    assert_string_equal(in.network_acls,
                        "{\"bypass\":\"AzureServices\",\"defaultAction\":\"Deny\",\"ipRules\":[{"
                        "\"value\":\"10.0.0.0/8\"},{\"value\":\"2001:db8::1\"}],"
                        "\"virtualNetworkRules\":[{\"id\":\"/subscriptions/s/vnet\","
                        "\"ignoreMissingVnetServiceEndpoint\":true}]}");
    /* Not in the other properties: it has its own column. */
    assert_string_equal(in.properties, "{\"publicNetworkAccess\":\"Enabled\"}");

    /* PATCH without networkAcls keeps them; null removes them. */
    kl_store_account base = {.location = "local",
                             .kind = "OpenAI",
                             .sku = "{}",
                             .tags = "{}",
                             .properties = "{}",
                             .network_acls = in.network_acls};
    kl_account_input p2;
    assert_int_equal(account("{\"tags\":{}}", &base, &p2), 0);
    assert_string_equal(p2.network_acls, in.network_acls);
    kl_resource_account_input_free(&p2);
    assert_int_equal(account("{\"properties\":{\"networkAcls\":null}}", &base, &p2), 0);
    assert_null(p2.network_acls);
    kl_resource_account_input_free(&p2);
    /* PUT without them has none. */
    kl_resource_account_input_free(&in);
    assert_int_equal(account("{}", NULL, &in), 0);
    assert_null(in.network_acls);
    kl_resource_account_input_free(&in);

    static const char *const bad[] = {
        "{\"properties\":{\"networkAcls\":{\"defaultAction\":\"Maybe\"}}}",
        "{\"properties\":{\"networkAcls\":{\"ipRules\":[{\"value\":\"10.0.0.0/33\"}]}}}",
        "{\"properties\":{\"networkAcls\":{\"ipRules\":[{\"value\":\"10.0.0\"}]}}}",
        "{\"properties\":{\"networkAcls\":{\"ipRules\":[{\"value\":\"fe80::1%eth0\"}]}}}",
        "{\"properties\":{\"networkAcls\":{\"ipRules\":[{\"value\":10}]}}}",
        "{\"properties\":{\"networkAcls\":{\"ipRules\":[\"10.0.0.0/8\"]}}}",
        "{\"properties\":{\"networkAcls\":{\"ipRules\":{}}}}",
        "{\"properties\":{\"networkAcls\":{\"bypass\":\"Everything\"}}}",
        "{\"properties\":{\"networkAcls\":{\"virtualNetworkRules\":[{\"id\":1}]}}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (account(bad[i], NULL, &in) != KL_EINVAL)
            fail_msg("accepted: %s", bad[i]);
        assert_int_equal(perr.status, 400);
        assert_string_equal(perr.code, "InvalidValuesForRequestParameters");
        assert_null(in.network_acls);
    }
    assert_int_equal(account(bad[1], NULL, &in), KL_EINVAL);
    assert_string_equal(perr.message, "Values for request parameters are invalid: "
                                      "properties.networkAcls.ipRules[0].value '10.0.0.0/33' "
                                      "must be an IPv4 or IPv6 address or CIDR range.");

    /* 4,096 rules are fine, one more is not. */
    size_t cap = 40 * (KL_MAX_NETWORK_RULES + 2);
    char *big = malloc(cap);
    assert_non_null(big);
    for (int n = KL_MAX_NETWORK_RULES; n <= KL_MAX_NETWORK_RULES + 1; n++) {
        size_t off = (size_t)snprintf(big, cap, "{\"properties\":{\"networkAcls\":{\"ipRules\":[");
        for (int i = 0; i < n; i++)
            off += (size_t)snprintf(big + off, cap - off, "%s{\"value\":\"10.%d.%d.0/24\"}",
                                    i ? "," : "", i / 256, i % 256);
        snprintf(big + off, cap - off, "]}}}");
        int rc = account(big, NULL, &in);
        assert_int_equal(rc, n == KL_MAX_NETWORK_RULES ? 0 : KL_EINVAL);
        kl_resource_account_input_free(&in);
    }
    free(big);
}

static void test_account_json(void **state)
{
    (void)state;
    kl_store_account a = {.id = "/subscriptions/s/resourceGroups/rg/providers/"
                                "Microsoft.CognitiveServices/accounts/Demo",
                          .subscription = "s",
                          .resource_group = "rg",
                          .name = "Demo",
                          .location = "local",
                          .kind = "OpenAI",
                          .sku = "{\"name\":\"S0\"}",
                          .tags = "{\"env\":\"dev\"}",
                          .properties = "{\"publicNetworkAccess\":\"Disabled\","
                                        "\"endpoint\":\"https://stored-is-ignored\","
                                        "\"endpoints\":{\"x\":\"https://stored-is-ignored\"}}",
                          .disable_local_auth = true,
                          .etag = "0f8fad5b-d9cb-469f-a165-70867728950e",
                          .created_at = 1764324253,
                          .modified_at = 1764324300};
    json_t *j = kl_resource_account_json(&a, "https://127.0.0.1:8443/");
    assert_non_null(j);
    char *s = dumps(j);
    assert_string_equal(
        s, "{\"etag\":\"\\\"0f8fad5b-d9cb-469f-a165-70867728950e\\\"\","
           "\"id\":\"/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/"
           "accounts/Demo\",\"kind\":\"OpenAI\",\"location\":\"local\",\"name\":\"Demo\","
           "\"properties\":{\"customSubDomainName\":\"Demo\",\"dateCreated\":"
           "\"2025-11-28T10:04:13.000Z\",\"disableLocalAuth\":true,"
           "\"endpoint\":\"https://127.0.0.1:8443/accounts/Demo/\",\"endpoints\":{"
           "\"Azure OpenAI Legacy API - Latest moniker\":\"https://127.0.0.1:8443/accounts/Demo/\","
           "\"OpenAI Dall-E API\":\"https://127.0.0.1:8443/accounts/Demo/\","
           "\"OpenAI Language Model Instance API\":\"https://127.0.0.1:8443/accounts/Demo/\","
           "\"OpenAI Model Scaleset API\":\"https://127.0.0.1:8443/accounts/Demo/\","
           "\"OpenAI Moderations API\":\"https://127.0.0.1:8443/accounts/Demo/\","
           "\"OpenAI Realtime API\":\"https://127.0.0.1:8443/accounts/Demo/\","
           "\"OpenAI Sora API\":\"https://127.0.0.1:8443/accounts/Demo/\","
           "\"OpenAI Whisper API\":\"https://127.0.0.1:8443/accounts/Demo/\","
           "\"Token Service API\":\"https://127.0.0.1:8443/accounts/Demo/\"},"
           "\"provisioningState\":"
           "\"Succeeded\",\"publicNetworkAccess\":\"Disabled\"},\"sku\":{\"name\":\"S0\"},"
           "\"systemData\":{\"createdAt\":\"2025-11-28T10:04:13.000Z\",\"lastModifiedAt\":"
           "\"2025-11-28T10:05:00.000Z\"},\"tags\":{\"env\":\"dev\"},"
           "\"type\":\"Microsoft.CognitiveServices/accounts\"}");
    free(s);
    json_decref(j);

    a.properties = "{}";
    a.disable_local_auth = false;
    a.network_acls = "{\"defaultAction\":\"Deny\",\"ipRules\":[],\"virtualNetworkRules\":[]}";
    j = kl_resource_account_json(&a, "https://h:1");
    json_t *p = json_object_get(j, "properties");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(p, "networkAcls"), "defaultAction")),
        "Deny");
    assert_string_equal(json_string_value(json_object_get(p, "publicNetworkAccess")), "Enabled");
    assert_string_equal(json_string_value(json_object_get(p, "endpoint")),
                        "https://h:1/accounts/Demo/");
    assert_true(json_is_false(json_object_get(p, "disableLocalAuth")));
    json_decref(j);
}

/* ------------------------------------------------------------------ deployments */

static int deployment(const char *text, kl_deployment_input *in)
{
    json_t *j = text ? parse(text) : NULL;
    memset(&perr, 0, sizeof(perr));
    int err = kl_resource_parse_deployment(j, "dep1", in, &perr);
    json_decref(j);
    return err;
}

static void test_deployment_body(void **state)
{
    (void)state;
    kl_deployment_input in;
    assert_int_equal(deployment(NULL, &in), 0);
    assert_string_equal(in.backend, "echo");
    assert_null(in.url);
    assert_null(in.model);
    assert_string_equal(in.sku, "{\"capacity\":1,\"name\":\"Standard\"}");
    kl_resource_deployment_input_free(&in);

    assert_int_equal(deployment("{\"sku\":{\"name\":\"Standard\",\"capacity\":10},"
                                "\"properties\":{\"model\":{\"format\":\"OpenAI\","
                                "\"name\":\"gpt-4o-mini\",\"version\":\"1\"},"
                                "\"backend\":{\"type\":\"upstream\","
                                "\"url\":\"http://127.0.0.1:8000/v1//\","
                                "\"credential\":\"sk-abc\"}}}",
                                &in),
                     0);
    assert_string_equal(in.backend, "upstream");
    assert_string_equal(in.url, "http://127.0.0.1:8000/v1");
    assert_string_equal(in.upstream_model, "gpt-4o-mini");
    assert_string_equal(in.credential, "sk-abc");
    assert_true(in.credential_given);
    assert_string_equal(in.model,
                        "{\"format\":\"OpenAI\",\"name\":\"gpt-4o-mini\",\"version\":\"1\"}");
    assert_string_equal(in.sku, "{\"capacity\":10,\"name\":\"Standard\"}");
    kl_resource_deployment_input_free(&in);

    /* Model defaults to the deployment name; explicit model wins; null credential is
     * "given" (remove), absent is not (keep). */
    assert_int_equal(deployment("{\"properties\":{\"backend\":{\"type\":\"Upstream\","
                                "\"url\":\"https://models.example/v1\"}}}",
                                &in),
                     0);
    assert_string_equal(in.upstream_model, "dep1");
    assert_false(in.credential_given);
    assert_null(in.credential);
    kl_resource_deployment_input_free(&in);
    assert_int_equal(deployment("{\"properties\":{\"backend\":{\"type\":\"upstream\","
                                "\"url\":\"https://models.example/v1\",\"model\":\"llama3\","
                                "\"credential\":null}}}",
                                &in),
                     0);
    assert_string_equal(in.upstream_model, "llama3");
    assert_true(in.credential_given);
    assert_null(in.credential);
    kl_resource_deployment_input_free(&in);

    static const char *const bad[] = {
        "{\"properties\":[]}",
        "{\"properties\":{\"backend\":{\"type\":\"magic\"}}}",
        "{\"properties\":{\"backend\":{\"type\":\"upstream\"}}}",
        "{\"properties\":{\"backend\":{\"type\":\"echo\",\"url\":\"http://x\"}}}",
        "{\"properties\":{\"backend\":{\"type\":\"upstream\",\"url\":\"ftp://x/v1\"}}}",
        "{\"properties\":{\"backend\":{\"type\":\"upstream\",\"url\":\"http://\"}}}",
        "{\"properties\":{\"backend\":{\"type\":\"upstream\",\"url\":\"http:///v1\"}}}",
        "{\"properties\":{\"backend\":{\"type\":\"upstream\",\"url\":\"http://u:p@h/v1\"}}}",
        "{\"properties\":{\"backend\":{\"type\":\"upstream\",\"url\":\"http://h/v1?x=1\"}}}",
        "{\"properties\":{\"backend\":{\"type\":\"upstream\",\"url\":\"http://h/v 1\"}}}",
        "{\"properties\":{\"backend\":{\"type\":\"upstream\",\"url\":\"http://h\\r\\nX: y\"}}}",
        "{\"properties\":{\"backend\":{\"type\":\"upstream\",\"url\":\"http://h\","
        "\"credential\":\"a\\r\\nX-Injected: 1\"}}}",
        "{\"properties\":{\"backend\":{\"type\":\"upstream\",\"url\":\"http://h\","
        "\"credential\":\"has space\"}}}",
        "{\"properties\":{\"backend\":{\"type\":\"upstream\",\"url\":\"http://h\","
        "\"credential\":5}}}",
        "{\"properties\":{\"model\":{\"name\":7}}}",
        "{\"sku\":{\"capacity\":1}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(deployment(bad[i], &in), KL_EINVAL);
        assert_int_equal(perr.status, 400);
        assert_string_equal(perr.code, "InvalidRequestContent");
        /* A refused credential is never echoed. */
        assert_null(strstr(perr.message, "Injected"));
    }

    /* URL length limit. */
    char body[KL_MAX_URL + 256];
    char url[KL_MAX_URL + 2];
    memcpy(url, "http://h/", 9);
    memset(url + 9, 'a', sizeof(url) - 10);
    url[sizeof(url) - 1] = '\0';
    snprintf(body, sizeof(body),
             "{\"properties\":{\"backend\":{\"type\":\"upstream\",\"url\":\"%s\"}}}", url);
    assert_int_equal(deployment(body, &in), KL_EINVAL);
    url[KL_MAX_URL] = '\0';
    snprintf(body, sizeof(body),
             "{\"properties\":{\"backend\":{\"type\":\"upstream\",\"url\":\"%s\"}}}", url);
    assert_int_equal(deployment(body, &in), 0);
    kl_resource_deployment_input_free(&in);
}

static void test_deployment_json(void **state)
{
    (void)state;
    kl_store_deployment d = {.account_name = "Demo",
                             .name = "up",
                             .sku = "{\"capacity\":1,\"name\":\"Standard\"}",
                             .model = "{\"format\":\"OpenAI\",\"name\":\"gpt-4o-mini\"}",
                             .backend = "upstream",
                             .upstream_url = "http://127.0.0.1:8000/v1",
                             .upstream_model = "llama3",
                             .credential_sealed = "v1.SEALED-NEVER-SHOWN",
                             .created_at = 1764324253,
                             .modified_at = 1764324253};
    json_t *j = kl_resource_deployment_json(&d, "/subscriptions/s/resourceGroups/rg/providers/"
                                                "Microsoft.CognitiveServices/accounts/Demo");
    char *s = dumps(j);
    assert_string_equal(
        s, "{\"id\":\"/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/"
           "accounts/Demo/deployments/up\",\"name\":\"up\",\"properties\":{\"backend\":"
           "{\"hasCredential\":true,\"model\":\"llama3\",\"type\":\"upstream\",\"url\":"
           "\"http://127.0.0.1:8000/v1\"},\"model\":{\"format\":\"OpenAI\",\"name\":"
           "\"gpt-4o-mini\"},\"provisioningState\":\"Succeeded\"},\"sku\":{\"capacity\":1,"
           "\"name\":\"Standard\"},\"systemData\":{\"createdAt\":\"2025-11-28T10:04:13.000Z\","
           "\"lastModifiedAt\":\"2025-11-28T10:04:13.000Z\"},\"type\":"
           "\"Microsoft.CognitiveServices/accounts/deployments\"}");
    assert_null(strstr(s, "SEALED"));
    free(s);
    json_decref(j);

    kl_store_deployment e = {.name = "chat", .backend = "echo", .created_at = 1, .modified_at = 1};
    j = kl_resource_deployment_json(&e, "/x");
    s = dumps(j);
    assert_non_null(strstr(s, "\"backend\":{\"type\":\"echo\"}"));
    assert_null(strstr(s, "\"model\""));
    free(s);
    json_decref(j);
}

static void test_key_name_and_aad(void **state)
{
    (void)state;
    int slot = 0;
    kl_arm_error e = {0};
    json_t *j = parse("{\"keyName\":\"key2\"}");
    assert_int_equal(kl_resource_parse_key_name(j, &slot, &e), 0);
    assert_int_equal(slot, 2);
    json_decref(j);
    j = parse("{\"keyName\":\"KEY1\"}");
    assert_int_equal(kl_resource_parse_key_name(j, &slot, &e), 0);
    assert_int_equal(slot, 1);
    json_decref(j);
    static const char *const bad[] = {"{}", "{\"keyName\":\"Key3\"}", "{\"keyName\":1}",
                                      "{\"keyname\":\"Key1\"}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        j = parse(bad[i]);
        assert_int_equal(kl_resource_parse_key_name(j, &slot, &e), KL_EINVAL);
        assert_int_equal(e.status, 400);
        json_decref(j);
    }

    char aad[KL_ARM_MAX_ID + 32];
    assert_int_equal(kl_arm_apikey_aad("/subscriptions/S/resourceGroups/RG/providers/"
                                       "Microsoft.CognitiveServices/accounts/Demo",
                                       2, aad, sizeof(aad)),
                     0);
    assert_string_equal(aad, "apikey:/subscriptions/s/resourcegroups/rg/providers/"
                             "microsoft.cognitiveservices/accounts/demo:2");
    assert_int_equal(kl_arm_apikey_aad("x", 1, aad, 5), KL_ETOOBIG);
    char id[KL_ARM_MAX_ID];
    assert_int_equal(kl_arm_account_id("s", "rg", "a", id, sizeof(id)), 0);
    assert_string_equal(id, "/subscriptions/s/resourceGroups/rg/providers/"
                            "Microsoft.CognitiveServices/accounts/a");
}

/* The body builders every shape uses: a failed allocation (NULL value) stops a chain of
 * sets instead of leaving a member out silently. */
static void test_json_builders(void **state)
{
    (void)state;
    json_t *o = json_object();
    assert_int_equal(kl_arm_json_set(o, "a", json_string("x")), 0);
    assert_int_equal(kl_arm_json_set(o, "b", NULL), -1);
    assert_null(json_object_get(o, "b"));
    assert_int_equal(kl_arm_json_set(o, "t", kl_arm_json_time(0)), 0);
    assert_string_equal(json_string_value(json_object_get(o, "t")), "1970-01-01T00:00:00.000Z");
    assert_int_equal(kl_arm_json_set(o, "n", kl_arm_json_string_or_null(NULL)), 0);
    assert_true(json_is_null(json_object_get(o, "n")));
    assert_int_equal(kl_arm_json_set(o, "s", kl_arm_json_string_or_null("v")), 0);
    assert_string_equal(json_string_value(json_object_get(o, "s")), "v");
    assert_int_equal(json_object_size(o), 4);
    json_decref(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_account_path),
        cmocka_unit_test(test_match_rejects_shapes),
        cmocka_unit_test(test_name_rules),
        cmocka_unit_test(test_names_not_echoed),
        cmocka_unit_test(test_api_version),
        cmocka_unit_test(test_unknown_type),
        cmocka_unit_test(test_error_body_shape),
        cmocka_unit_test(test_parse_body),
        cmocka_unit_test(test_route_table),
        cmocka_unit_test(test_route_scope),
        cmocka_unit_test(test_matches),
        cmocka_unit_test(test_route_list_file),
        cmocka_unit_test(test_account_body),
        cmocka_unit_test(test_account_patch_merges),
        cmocka_unit_test(test_account_json),
        cmocka_unit_test(test_account_network_acls),
        cmocka_unit_test(test_deployment_body),
        cmocka_unit_test(test_deployment_json),
        cmocka_unit_test(test_key_name_and_aad),
        cmocka_unit_test(test_json_builders),
    };
    return cmocka_run_group_tests_name("mgmt_arm", tests, NULL, NULL);
}
