/* Upstream targets: a deployment's base URL plus the operation gives the connection
 * (scheme, host, port), the Host header and the request URI; anything unusable
 * (other schemes, user info, bad ports, operations without an upstream path) is
 * refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "gateway/upstream.h"

static void expect_target(const char *url, kl_gateway_route_kind kind, bool tls, const char *host,
                          unsigned port, const char *host_header, const char *uri)
{
    kl_upstream_target t;
    assert_int_equal(kl_upstream_target_parse(url, kind, &t), 0);
    assert_int_equal(t.tls, tls);
    assert_string_equal(t.host, host);
    assert_int_equal(t.port, port);
    assert_string_equal(t.host_header, host_header);
    assert_string_equal(t.uri, uri);
    free(t.uri);
}

static void test_targets(void **state)
{
    (void)state;
    expect_target("http://127.0.0.1:8000/v1", KL_GW_ROUTE_CHAT, false, "127.0.0.1", 8000,
                  "127.0.0.1:8000", "/v1/chat/completions");
    expect_target("https://api.example.com/v1/", KL_GW_ROUTE_EMBEDDINGS, true, "api.example.com",
                  443, "api.example.com", "/v1/embeddings");
    expect_target("http://localhost", KL_GW_ROUTE_COMPLETIONS, false, "localhost", 80, "localhost",
                  "/completions");
    expect_target("HTTP://Models.Local:80/", KL_GW_ROUTE_CHAT, false, "Models.Local", 80,
                  "Models.Local", "/chat/completions");
    expect_target("http://[::1]:9000/openai/v1?api-version=2024-10-21", KL_GW_ROUTE_CHAT, false,
                  "::1", 9000, "[::1]:9000", "/openai/v1/chat/completions?api-version=2024-10-21");
    expect_target("https://h:443/x", KL_GW_ROUTE_CHAT, true, "h", 443, "h", "/x/chat/completions");
    expect_target("http://h:443", KL_GW_ROUTE_CHAT, false, "h", 443, "h:443", "/chat/completions");
    expect_target("https://h:8443/a//", KL_GW_ROUTE_COMPLETIONS, true, "h", 8443, "h:8443",
                  "/a/completions");
}

static void test_refused(void **state)
{
    (void)state;
    kl_upstream_target t;
    const char *bad[] = {"",
                         "ftp://h/v1",
                         "file:///etc/passwd",
                         "http://user:pw@h/v1",
                         "http://",
                         "h/v1",
                         "/v1",
                         "http://h:0/v1",
                         "http://h:99999/v1",
                         "http://h:12ab/v1",
                         "http://h o/v1",
                         "http://h/v1\r\nX: y"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(kl_upstream_target_parse(bad[i], KL_GW_ROUTE_CHAT, &t), KL_EINVAL);
        assert_null(t.uri);
    }
    assert_int_equal(kl_upstream_target_parse(NULL, KL_GW_ROUTE_CHAT, &t), KL_EINVAL);
    assert_int_equal(kl_upstream_target_parse("http://h/v1", KL_GW_ROUTE_MODELS, &t), KL_EINVAL);
    assert_int_equal(kl_upstream_target_parse("http://h/v1", KL_GW_ROUTE_NONE, &t), KL_EINVAL);

    char *longurl = malloc(KL_MAX_URL + 32);
    memcpy(longurl, "http://h/", 9);
    memset(longurl + 9, 'a', KL_MAX_URL);
    longurl[KL_MAX_URL + 9] = '\0';
    assert_int_equal(kl_upstream_target_parse(longurl, KL_GW_ROUTE_CHAT, &t), KL_EINVAL);
    free(longurl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_targets),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
