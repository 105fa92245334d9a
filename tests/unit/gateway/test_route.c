/* Data-plane routing: every URL form the clients use (classic, v1, v1 with deployments,
 * /accounts prefix, Host form), what is not a data-plane route, the api-version rule
 * and the data action of each operation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "gateway/route.h"

#define DOMAIN "openai.localhost"

static kl_gateway_route parse_ok(const char *host, const char *path, const char *query)
{
    kl_gateway_route rt;
    assert_int_equal(kl_gateway_route_parse(host, path, query, DOMAIN, &rt), 0);
    return rt;
}

static void assert_slice(const char *p, size_t n, const char *want)
{
    assert_int_equal(n, strlen(want));
    assert_memory_equal(p, want, n);
}

static void test_classic_forms(void **state)
{
    (void)state;
    kl_gateway_route rt =
        parse_ok("127.0.0.1:8443", "/accounts/demo/openai/deployments/gpt-4o/chat/completions",
                 "api-version=2024-10-21");
    assert_int_equal(rt.kind, KL_GW_ROUTE_CHAT);
    assert_string_equal(rt.method, "POST");
    assert_false(rt.v1);
    assert_true(rt.api_version);
    assert_true(rt.api_version_needed);
    assert_false(rt.deployment_from_body);
    assert_int_equal(rt.account_src, KL_GW_ACCOUNT_PATH);
    assert_slice(rt.account, rt.account_len, "demo");
    assert_slice(rt.deployment, rt.deployment_len, "gpt-4o");

    rt = parse_ok("127.0.0.1", "/accounts/demo/openai/deployments/d1/completions",
                  "api-version=2024-10-21");
    assert_int_equal(rt.kind, KL_GW_ROUTE_COMPLETIONS);
    assert_slice(rt.deployment, rt.deployment_len, "d1");

    rt = parse_ok("127.0.0.1", "/accounts/demo/openai/deployments/emb.v3_x/embeddings",
                  "foo=bar&api-version=2023-05-15");
    assert_int_equal(rt.kind, KL_GW_ROUTE_EMBEDDINGS);
    assert_true(rt.api_version);
    assert_slice(rt.deployment, rt.deployment_len, "emb.v3_x");

    rt = parse_ok("127.0.0.1", "/accounts/demo/openai/deployments", "api-version=2022-12-01");
    assert_int_equal(rt.kind, KL_GW_ROUTE_DEPLOYMENTS);
    assert_string_equal(rt.method, "GET");
    assert_true(rt.api_version_needed);
}

static void test_api_version_rule(void **state)
{
    (void)state;
    const char *path = "/accounts/demo/openai/deployments/d/chat/completions";
    kl_gateway_route rt = parse_ok("h", path, "");
    assert_int_equal(rt.kind, KL_GW_ROUTE_CHAT);
    assert_true(rt.api_version_needed);
    assert_false(rt.api_version);
    assert_false(parse_ok("h", path, NULL).api_version);
    assert_false(parse_ok("h", path, "api-version=").api_version);
    assert_false(parse_ok("h", path, "x=1&api-version=&y=2").api_version);
    assert_false(parse_ok("h", path, "xapi-version=1").api_version);
    assert_false(parse_ok("h", path, "api-versions=1").api_version);
    assert_true(parse_ok("h", path, "x=1&api-version=2024-10-21").api_version);
    assert_true(parse_ok("h", path, "api-version=preview&x=1").api_version);

    /* v1 routes need none. */
    rt = parse_ok("h", "/accounts/demo/openai/v1/chat/completions", "");
    assert_false(rt.api_version_needed);
    assert_false(rt.api_version_unsupported);
    rt = parse_ok("h", "/accounts/demo/openai/v1/deployments/d/chat/completions", "");
    assert_false(rt.api_version_needed);
}

static void test_api_version_supported(void **state)
{
    (void)state;
    const char *path = "/accounts/demo/openai/deployments/d/chat/completions";
    /* Every published version the clients send is served, GA and preview. */
    static const char *const good[] = {
        "2022-12-01", "2023-05-15",         "2024-02-01",         "2024-06-01",
        "2024-10-21", "2023-03-15-preview", "2025-04-01-preview", "2024-02-15-preview"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        char q[64];
        snprintf(q, sizeof(q), "api-version=%s", good[i]);
        assert_false(parse_ok("h", path, q).api_version_unsupported);
    }
    static const char *const bad[] = {
        "2024-10-22",         "preview", "latest",       "2024-10-21x",
        "2024-10-21-preview", "v1",      "2024-10-21%20"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char q[64];
        snprintf(q, sizeof(q), "x=1&api-version=%s", bad[i]);
        kl_gateway_route rt = parse_ok("h", path, q);
        assert_true(rt.api_version);
        assert_true(rt.api_version_unsupported);
    }
    /* Absent is the 404 rule, not this one. */
    assert_false(parse_ok("h", path, "api-version=").api_version_unsupported);
    /* The first non-empty value decides. */
    assert_true(parse_ok("h", path, "api-version=&api-version=2024-10-21").api_version);
    assert_false(
        parse_ok("h", path, "api-version=&api-version=2024-10-21").api_version_unsupported);
    assert_true(parse_ok("h", path, "api-version=&api-version=bad").api_version_unsupported);

    /* v1: none, or "preview" (AzureOpenAI with a v1 baseURL); a dated version is not v1. */
    const char *v1 = "/accounts/demo/openai/v1/chat/completions";
    assert_false(parse_ok("h", v1, "api-version=preview").api_version_unsupported);
    assert_true(parse_ok("h", v1, "api-version=2024-10-21").api_version_unsupported);
    assert_true(parse_ok("h", "/accounts/demo/openai/v1/models", "api-version=latest")
                    .api_version_unsupported);
    /* Unknown operations are 404 whatever the version. */
    assert_false(
        parse_ok("h", "/accounts/demo/openai/nothing", "api-version=bad").api_version_unsupported);
}

static void test_v1_forms(void **state)
{
    (void)state;
    kl_gateway_route rt = parse_ok("demo.openai.localhost:8443", "/openai/v1/chat/completions", "");
    assert_int_equal(rt.kind, KL_GW_ROUTE_CHAT);
    assert_true(rt.v1);
    assert_true(rt.deployment_from_body);
    assert_int_equal(rt.deployment_len, 0);
    assert_int_equal(rt.account_src, KL_GW_ACCOUNT_HOST);
    assert_slice(rt.account, rt.account_len, "demo");

    rt = parse_ok("demo.openai.localhost", "/openai/v1/completions", "");
    assert_int_equal(rt.kind, KL_GW_ROUTE_COMPLETIONS);
    assert_true(rt.deployment_from_body);
    rt = parse_ok("demo.openai.localhost", "/openai/v1/embeddings", "");
    assert_int_equal(rt.kind, KL_GW_ROUTE_EMBEDDINGS);
    assert_true(rt.deployment_from_body);

    /* AzureOpenAI with a v1 baseURL. */
    rt = parse_ok("127.0.0.1:8443", "/accounts/demo/openai/v1/deployments/gpt/chat/completions",
                  "api-version=preview");
    assert_int_equal(rt.kind, KL_GW_ROUTE_CHAT);
    assert_true(rt.v1);
    assert_false(rt.deployment_from_body);
    assert_slice(rt.deployment, rt.deployment_len, "gpt");
    rt = parse_ok("h", "/accounts/demo/openai/v1/deployments/e/embeddings", "");
    assert_int_equal(rt.kind, KL_GW_ROUTE_EMBEDDINGS);
    assert_slice(rt.deployment, rt.deployment_len, "e");

    rt = parse_ok("demo.openai.localhost", "/openai/v1/models", "");
    assert_int_equal(rt.kind, KL_GW_ROUTE_MODELS);
    assert_string_equal(rt.method, "GET");
    assert_true(rt.v1);
    rt = parse_ok("demo.openai.localhost", "/openai/v1/models/gpt", "");
    assert_int_equal(rt.kind, KL_GW_ROUTE_MODEL);
    assert_slice(rt.deployment, rt.deployment_len, "gpt");
}

static void test_host_forms(void **state)
{
    (void)state;
    const char *name;
    size_t n;
    assert_true(kl_gateway_host_account("demo.openai.localhost", DOMAIN, &name, &n));
    assert_slice(name, n, "demo");
    assert_true(kl_gateway_host_account("demo.openai.localhost:8443", DOMAIN, &name, &n));
    assert_slice(name, n, "demo");
    assert_true(kl_gateway_host_account("Demo.OpenAI.LocalHost:1", DOMAIN, &name, &n));
    assert_slice(name, n, "Demo");
    assert_true(kl_gateway_host_account("demo.openai.localhost.", DOMAIN, &name, &n));
    assert_slice(name, n, "demo");
    assert_true(kl_gateway_host_account("demo.openai.localhost.:443", DOMAIN, &name, &n));
    assert_true(kl_gateway_host_account("demo.openai.localhost", ".openai.localhost.", &name, &n));
    assert_slice(name, n, "demo");

    assert_false(kl_gateway_host_account("openai.localhost", DOMAIN, &name, &n));
    assert_false(kl_gateway_host_account(".openai.localhost", DOMAIN, &name, &n));
    assert_false(kl_gateway_host_account("a.b.openai.localhost", DOMAIN, &name, &n));
    assert_false(kl_gateway_host_account("demoopenai.localhost", DOMAIN, &name, &n));
    assert_false(kl_gateway_host_account("demo.openai.localhost.evil", DOMAIN, &name, &n));
    assert_false(kl_gateway_host_account("demo.openai.localhost:", DOMAIN, &name, &n));
    assert_false(kl_gateway_host_account("demo.openai.localhost:84a3", DOMAIN, &name, &n));
    assert_false(kl_gateway_host_account("[::1]:8443", DOMAIN, &name, &n));
    assert_false(kl_gateway_host_account("127.0.0.1:8443", DOMAIN, &name, &n));
    assert_false(kl_gateway_host_account("", DOMAIN, &name, &n));
    assert_false(kl_gateway_host_account(NULL, DOMAIN, &name, &n));
    assert_false(kl_gateway_host_account("demo.openai.localhost", NULL, &name, &n));

    /* The path prefix wins over Host. */
    kl_gateway_route rt =
        parse_ok("demo.openai.localhost", "/accounts/other/openai/deployments/d/embeddings",
                 "api-version=1");
    assert_int_equal(rt.account_src, KL_GW_ACCOUNT_PATH);
    assert_slice(rt.account, rt.account_len, "other");

    /* No account at all: still a data-plane route, the gateway answers 404. */
    rt = parse_ok("127.0.0.1:8443", "/openai/deployments/d/chat/completions", "api-version=1");
    assert_int_equal(rt.kind, KL_GW_ROUTE_CHAT);
    assert_int_equal(rt.account_src, KL_GW_ACCOUNT_NONE);
    assert_int_equal(rt.account_len, 0);
}

static void test_case_insensitive_literals(void **state)
{
    (void)state;
    kl_gateway_route rt =
        parse_ok("h", "/Accounts/Demo/OpenAI/Deployments/GPT-4o/Chat/Completions", "api-version=1");
    assert_int_equal(rt.kind, KL_GW_ROUTE_CHAT);
    assert_slice(rt.account, rt.account_len, "Demo");
    assert_slice(rt.deployment, rt.deployment_len, "GPT-4o"); /* names keep their case */
    rt = parse_ok("demo.openai.localhost", "/OPENAI/V1/EMBEDDINGS", "");
    assert_int_equal(rt.kind, KL_GW_ROUTE_EMBEDDINGS);
}

static void test_unknown_operations(void **state)
{
    (void)state;
    const char *unknown[] = {
        "/accounts/demo/openai",
        "/accounts/demo/openai/deployments/d",
        "/accounts/demo/openai/deployments/d/chat",
        "/accounts/demo/openai/deployments/d/images/generations",
        "/accounts/demo/openai/deployments/d/chat/completions/extra",
        "/accounts/demo/openai/v1",
        "/accounts/demo/openai/v1/responses",
        "/accounts/demo/openai/v1/deployments",
        "/accounts/demo/openai/v1/deployments/d",
        "/accounts/demo/openai/v1/models/a/b",
        "/accounts/demo/openai/models",
        "/accounts/demo/openai/a/b/c/d/e/f/g/h/i/j/k/l/m",
    };
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        kl_gateway_route rt = parse_ok("h", unknown[i], "api-version=1");
        assert_int_equal(rt.kind, KL_GW_ROUTE_NONE);
        assert_null(rt.method);
        assert_int_equal(rt.deployment_len, 0);
        assert_true(kl_gateway_route_matches("h", unknown[i], DOMAIN));
    }
    /* Host form: any path is the data plane's to refuse. */
    kl_gateway_route rt = parse_ok("demo.openai.localhost", "/whatever", "");
    assert_int_equal(rt.kind, KL_GW_ROUTE_NONE);
    assert_int_equal(rt.account_src, KL_GW_ACCOUNT_HOST);
    assert_true(kl_gateway_route_matches("demo.openai.localhost:8443", "/", DOMAIN));
}

static void test_not_data_plane(void **state)
{
    (void)state;
    const char *other[] = {"/",
                           "/healthz",
                           "/metrics",
                           "/accounts/demo",
                           "/accounts/demo/x",
                           "/accounts//openai",
                           "/subscriptions/s/resourceGroups/g",
                           "/openaix/v1",
                           "relative/openai"};
    kl_gateway_route rt;
    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
        assert_int_equal(kl_gateway_route_parse("127.0.0.1:8443", other[i], "", DOMAIN, &rt),
                         KL_ENOTFOUND);
        assert_false(kl_gateway_route_matches("127.0.0.1:8443", other[i], DOMAIN));
        assert_false(kl_gateway_route_matches(NULL, other[i], NULL));
    }
    assert_true(kl_gateway_route_matches(NULL, "/openai", NULL));
    assert_true(kl_gateway_route_matches(NULL, "/openai/v1/chat/completions", NULL));
    assert_true(kl_gateway_route_matches(NULL, "/accounts/a/openai/v1/models", NULL));
    /* Without an account domain the Host form does not exist. */
    assert_int_equal(kl_gateway_route_parse("demo.openai.localhost", "/x", "", NULL, &rt),
                     KL_ENOTFOUND);
}

static void test_data_actions(void **state)
{
    (void)state;
    assert_string_equal(
        kl_gateway_data_action(KL_GW_ROUTE_CHAT),
        "Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/completions/action");
    assert_string_equal(
        kl_gateway_data_action(KL_GW_ROUTE_COMPLETIONS),
        "Microsoft.CognitiveServices/accounts/OpenAI/deployments/completions/action");
    assert_string_equal(
        kl_gateway_data_action(KL_GW_ROUTE_EMBEDDINGS),
        "Microsoft.CognitiveServices/accounts/OpenAI/deployments/embeddings/action");
    assert_string_equal(kl_gateway_data_action(KL_GW_ROUTE_MODELS),
                        "Microsoft.CognitiveServices/accounts/OpenAI/models/read");
    assert_string_equal(kl_gateway_data_action(KL_GW_ROUTE_MODEL),
                        "Microsoft.CognitiveServices/accounts/OpenAI/models/read");
    assert_string_equal(kl_gateway_data_action(KL_GW_ROUTE_DEPLOYMENTS),
                        "Microsoft.CognitiveServices/accounts/OpenAI/deployments/read");
    assert_null(kl_gateway_data_action(KL_GW_ROUTE_NONE));

    assert_int_equal(kl_gateway_metrics_route(KL_GW_ROUTE_CHAT), KL_ROUTE_CHAT);
    assert_int_equal(kl_gateway_metrics_route(KL_GW_ROUTE_COMPLETIONS), KL_ROUTE_COMPLETIONS);
    assert_int_equal(kl_gateway_metrics_route(KL_GW_ROUTE_EMBEDDINGS), KL_ROUTE_EMBEDDINGS);
    assert_int_equal(kl_gateway_metrics_route(KL_GW_ROUTE_MODELS), KL_ROUTE_MODELS);
    assert_int_equal(kl_gateway_metrics_route(KL_GW_ROUTE_NONE), KL_ROUTE_OTHER);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classic_forms),
        cmocka_unit_test(test_api_version_rule),
        cmocka_unit_test(test_api_version_supported),
        cmocka_unit_test(test_v1_forms),
        cmocka_unit_test(test_host_forms),
        cmocka_unit_test(test_case_insensitive_literals),
        cmocka_unit_test(test_unknown_operations),
        cmocka_unit_test(test_not_data_plane),
        cmocka_unit_test(test_data_actions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
