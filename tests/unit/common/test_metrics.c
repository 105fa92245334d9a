/* Metrics: recorded events appear as exact Prometheus lines, histograms are cumulative,
 * and the exposition stays well-formed under concurrent recording. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/metrics.h"

static char *render(kl_metrics *m)
{
    kl_buf b;
    kl_buf_init(&b, 1 << 20);
    assert_int_equal(kl_metrics_render(m, &b), 0);
    assert_non_null(b.data);
    return kl_buf_steal(&b);
}

/* True if text has line as a whole line. */
static bool has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++) {
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return true;
    }
    return false;
}

static void assert_line(const char *text, const char *line)
{
    if (!has_line(text, line))
        fail_msg("missing line: %s\n--- rendered ---\n%s", line, text);
}

static unsigned long long value_of(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; (p = strstr(p, series)) != NULL; p++) {
        if ((p == text || p[-1] == '\n') && p[n] == ' ')
            return strtoull(p + n + 1, NULL, 10);
    }
    fail_msg("missing series: %s", series);
    return 0;
}

static void test_requests(void **state)
{
    (void)state;
    kl_metrics *m = kl_metrics_new();
    assert_non_null(m);
    kl_metrics_request(m, KL_ROUTE_CHAT, 200, 1200);
    kl_metrics_request(m, KL_ROUTE_CHAT, 200, 300);
    kl_metrics_request(m, KL_ROUTE_CHAT, 401, 100);
    kl_metrics_request(m, KL_ROUTE_EMBEDDINGS, 404, 100);
    kl_metrics_request(m, KL_ROUTE_MGMT, 201, 100);
    kl_metrics_request(m, KL_ROUTE_HEALTH, 418, 100);
    kl_metrics_request(m, KL_ROUTE_HEALTH, 299, 100);
    kl_metrics_request(m, (kl_route)99, 200, 100);
    char *t = render(m);
    assert_line(t, "# TYPE keyless_http_requests_total counter");
    assert_line(t, "keyless_http_requests_total{route=\"chat\",status=\"200\"} 2");
    assert_line(t, "keyless_http_requests_total{route=\"chat\",status=\"401\"} 1");
    assert_line(t, "keyless_http_requests_total{route=\"embeddings\",status=\"404\"} 1");
    assert_line(t, "keyless_http_requests_total{route=\"mgmt\",status=\"201\"} 1");
    assert_line(t, "keyless_http_requests_total{route=\"health\",status=\"other\"} 2");
    /* An out-of-range route is counted as "other", not dropped or out of bounds. */
    assert_line(t, "keyless_http_requests_total{route=\"other\",status=\"200\"} 1");
    /* Only series with counts. */
    assert_null(strstr(t, "route=\"completions\""));
    assert_null(strstr(t, "status=\"500\""));
    assert_null(strstr(t, "keyless_http_requests_total{route=\"chat\",status=\"404\"}"));
    free(t);
    kl_metrics_free(m);
}

static void test_histogram(void **state)
{
    (void)state;
    kl_metrics *m = kl_metrics_new();
    /* 0.4 ms, 0.5 ms (on the bound), 0.7 ms, 3 ms, 2 s, 20 s */
    static const uint64_t lat[] = {400, 500, 700, 3000, 2000000, 20000000};
    for (size_t i = 0; i < sizeof(lat) / sizeof(lat[0]); i++)
        kl_metrics_request(m, KL_ROUTE_COMPLETIONS, 200, lat[i]);
    char *t = render(m);
    assert_line(t, "# TYPE keyless_http_request_duration_seconds histogram");
#define B(le, n)                                                                                   \
    assert_line(t, "keyless_http_request_duration_seconds_bucket{route=\"completions\",le=\"" le   \
                   "\"} " #n)
    B("0.0005", 2);
    B("0.001", 3);
    B("0.0025", 3);
    B("0.005", 4);
    B("0.01", 4);
    B("0.025", 4);
    B("0.05", 4);
    B("0.1", 4);
    B("0.25", 4);
    B("0.5", 4);
    B("1", 4);
    B("2.5", 5);
    B("5", 5);
    B("10", 5);
    B("+Inf", 6);
#undef B
    assert_line(t, "keyless_http_request_duration_seconds_count{route=\"completions\"} 6");
    assert_line(t, "keyless_http_request_duration_seconds_sum{route=\"completions\"} 22.004600");
    /* No histogram for routes without requests. */
    assert_null(strstr(t, "duration_seconds_bucket{route=\"chat\""));
    assert_null(strstr(t, "duration_seconds_count{route=\"chat\""));
    free(t);
    kl_metrics_free(m);
}

static void test_auth_upstream_connections(void **state)
{
    (void)state;
    kl_metrics *m = kl_metrics_new();
    kl_metrics_auth_failure(m, KL_AUTHFAIL_INVALID_KEY);
    kl_metrics_auth_failure(m, KL_AUTHFAIL_INVALID_KEY);
    kl_metrics_auth_failure(m, KL_AUTHFAIL_KEY_DISABLED);
    kl_metrics_auth_failure(m, KL_AUTHFAIL_PEER);
    kl_metrics_auth_failure(m, (kl_auth_fail)42);
    kl_metrics_upstream_error(m, KL_UPERR_CONNECT);
    kl_metrics_upstream_error(m, KL_UPERR_STATUS5XX);
    kl_metrics_upstream_error(m, KL_UPERR_STATUS5XX);
    kl_metrics_upstream_error(m, (kl_upstream_err)-1);
    kl_metrics_connection(m, 1);
    kl_metrics_connection(m, 1);
    kl_metrics_connection(m, 1);
    kl_metrics_connection(m, 0);
    char *t = render(m);
    assert_line(t, "# TYPE keyless_auth_failures_total counter");
    assert_line(t, "keyless_auth_failures_total{kind=\"missing\"} 0");
    assert_line(t, "keyless_auth_failures_total{kind=\"invalid_key\"} 2");
    assert_line(t, "keyless_auth_failures_total{kind=\"key_disabled\"} 1");
    assert_line(t, "keyless_auth_failures_total{kind=\"invalid_token\"} 0");
    assert_line(t, "keyless_auth_failures_total{kind=\"forbidden\"} 0");
    assert_line(t, "keyless_auth_failures_total{kind=\"peer\"} 1");
    assert_line(t, "# TYPE keyless_upstream_errors_total counter");
    assert_line(t, "keyless_upstream_errors_total{kind=\"connect\"} 1");
    assert_line(t, "keyless_upstream_errors_total{kind=\"timeout\"} 0");
    assert_line(t, "keyless_upstream_errors_total{kind=\"protocol\"} 0");
    assert_line(t, "keyless_upstream_errors_total{kind=\"status_5xx\"} 2");
    assert_line(t, "# TYPE keyless_connections_open gauge");
    assert_line(t, "keyless_connections_open 2");
    assert_line(t, "# TYPE keyless_connections_total counter");
    assert_line(t, "keyless_connections_total 3");
    free(t);

    /* NULL metrics are a no-op for recorders. */
    kl_metrics_request(NULL, KL_ROUTE_CHAT, 200, 1);
    kl_metrics_auth_failure(NULL, KL_AUTHFAIL_MISSING);
    kl_metrics_upstream_error(NULL, KL_UPERR_TIMEOUT);
    kl_metrics_connection(NULL, 1);
    kl_buf b;
    kl_buf_init(&b, 1024);
    assert_int_equal(kl_metrics_render(NULL, &b), KL_EINVAL);
    /* A buffer too small for the exposition reports it instead of truncating silently. */
    kl_buf_init(&b, 64);
    assert_int_equal(kl_metrics_render(m, &b), KL_ETOOBIG);
    kl_buf_free(&b);
    kl_metrics_free(m);
    kl_metrics_free(NULL);
}

/* Every line is a comment or "name{labels} value" / "name value"; each family has HELP and
 * TYPE before its samples. */
static void test_format(void **state)
{
    (void)state;
    kl_metrics *m = kl_metrics_new();
    for (int r = 0; r < KL_ROUTE__COUNT; r++)
        kl_metrics_request(m, (kl_route)r, 200 + r, (uint64_t)r * 1000);
    char *body = render(m);
    size_t len = strlen(body);
    assert_true(len > 0);
    assert_int_equal(body[len - 1], '\n');
    /* A leading newline so every line, the first included, starts after a '\n'. */
    char *t = malloc(len + 2);
    assert_non_null(t);
    t[0] = '\n';
    memcpy(t + 1, body, len + 1);
    free(body);

    static const char *const families[] = {
        "keyless_http_requests_total", "keyless_http_request_duration_seconds",
        "keyless_auth_failures_total", "keyless_upstream_errors_total",
        "keyless_connections_open",    "keyless_connections_total"};
    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
        char help[128], type[128], sample[128];
        snprintf(help, sizeof(help), "\n# HELP %s ", families[i]);
        snprintf(type, sizeof(type), "\n# TYPE %s ", families[i]);
        snprintf(sample, sizeof(sample), "\n%s", families[i]);
        const char *h = strstr(t, help), *ty = strstr(t, type), *sa = strstr(t, sample);
        assert_non_null(h);
        assert_non_null(ty);
        assert_non_null(sa);
        assert_true(h < ty);
        assert_true(ty < sa);
    }
    for (const char *line = t + 1; *line;) {
        const char *nl = strchr(line, '\n');
        assert_non_null(nl);
        if (line[0] != '#') {
            const char *sp = line;
            for (const char *q = line; q < nl; q++)
                if (*q == ' ')
                    sp = q;
            assert_true(sp > line);
            char *end = NULL;
            strtod(sp + 1, &end);
            assert_true(end == nl && end != sp + 1);
            assert_memory_equal(line, "keyless_", 8);
        }
        line = nl + 1;
    }
    free(t);
    kl_metrics_free(m);
}

typedef struct worker_arg {
    kl_metrics *m;
    int n;
} worker_arg;

static void *worker(void *p)
{
    worker_arg *a = p;
    for (int i = 0; i < a->n; i++) {
        kl_metrics_request(a->m, KL_ROUTE_CHAT, 200, (uint64_t)(i % 20000));
        kl_metrics_connection(a->m, 1);
        kl_metrics_connection(a->m, 0);
    }
    return NULL;
}

static void test_concurrent(void **state)
{
    (void)state;
    enum { THREADS = 4, PER = 50000 };
    kl_metrics *m = kl_metrics_new();
    pthread_t th[THREADS];
    worker_arg arg = {m, PER};
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, worker, &arg), 0);
    /* Scrapes while recording: +Inf always equals _count. */
    for (int s = 0; s < 20; s++) {
        char *t = render(m);
        if (strstr(t, "_count{route=\"chat\"}"))
            assert_int_equal(
                value_of(
                    t, "keyless_http_request_duration_seconds_bucket{route=\"chat\",le=\"+Inf\"}"),
                value_of(t, "keyless_http_request_duration_seconds_count{route=\"chat\"}"));
        free(t);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    char *t = render(m);
    assert_int_equal(value_of(t, "keyless_http_requests_total{route=\"chat\",status=\"200\"}"),
                     THREADS * PER);
    assert_int_equal(value_of(t, "keyless_http_request_duration_seconds_count{route=\"chat\"}"),
                     THREADS * PER);
    assert_line(t, "keyless_connections_open 0");
    assert_int_equal(value_of(t, "keyless_connections_total"), THREADS * PER);
    free(t);
    kl_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requests),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_auth_upstream_connections),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_concurrent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
