/* Prometheus counters and histograms in fixed arrays of relaxed atomics, and their text
 * exposition (format 0.0.4). Recording is a handful of atomic adds; rendering reads each
 * counter once, so a scrape never blocks a request. */
#include "common/metrics.h"

#include <stdatomic.h>
#include <stdlib.h>

#include "common/err.h"

/* Status codes with their own series; everything else is counted as "other". */
static const int status_codes[] = {200, 201, 202, 204, 400, 401, 403, 404, 405, 408,
                                   409, 413, 415, 429, 431, 500, 502, 503, 504};
#define N_STATUS (sizeof(status_codes) / sizeof(status_codes[0]))
#define STATUS_OTHER N_STATUS
#define N_STATUS_BUCKETS (N_STATUS + 1)

/* Histogram upper bounds in microseconds, and the same bounds as Prometheus writes them. */
static const uint64_t latency_bounds_us[] = {500,     1000,    2500,    5000,    10000,
                                             25000,   50000,   100000,  250000,  500000,
                                             1000000, 2500000, 5000000, 10000000};
static const char *const latency_le[] = {"0.0005", "0.001", "0.0025", "0.005", "0.01",
                                         "0.025",  "0.05",  "0.1",    "0.25",  "0.5",
                                         "1",      "2.5",   "5",      "10",    "+Inf"};
#define N_BOUNDS (sizeof(latency_bounds_us) / sizeof(latency_bounds_us[0]))
#define N_LAT_BUCKETS (N_BOUNDS + 1) /* the last one is +Inf */

_Static_assert(sizeof(latency_le) / sizeof(latency_le[0]) == N_LAT_BUCKETS, "le labels");

static const char *const route_names[KL_ROUTE__COUNT] = {
    [KL_ROUTE_OTHER] = "other",
    [KL_ROUTE_CHAT] = "chat",
    [KL_ROUTE_COMPLETIONS] = "completions",
    [KL_ROUTE_EMBEDDINGS] = "embeddings",
    [KL_ROUTE_MODELS] = "models",
    [KL_ROUTE_MGMT] = "mgmt",
    [KL_ROUTE_IDENTITY] = "identity",
    [KL_ROUTE_STS] = "sts",
    [KL_ROUTE_HEALTH] = "health",
    [KL_ROUTE_METRICS] = "metrics",
};

static const char *const auth_names[KL_AUTHFAIL__COUNT] = {
    [KL_AUTHFAIL_MISSING] = "missing",           [KL_AUTHFAIL_INVALID_KEY] = "invalid_key",
    [KL_AUTHFAIL_KEY_DISABLED] = "key_disabled", [KL_AUTHFAIL_INVALID_TOKEN] = "invalid_token",
    [KL_AUTHFAIL_FORBIDDEN] = "forbidden",       [KL_AUTHFAIL_PEER] = "peer",
    [KL_AUTHFAIL_NETWORK] = "network",
};

static const char *const upstream_names[KL_UPERR__COUNT] = {
    [KL_UPERR_CONNECT] = "connect",
    [KL_UPERR_TIMEOUT] = "timeout",
    [KL_UPERR_PROTOCOL] = "protocol",
    [KL_UPERR_STATUS5XX] = "status_5xx",
};

struct kl_metrics {
    atomic_uint_fast64_t requests[KL_ROUTE__COUNT][N_STATUS_BUCKETS];
    /* Per-bucket (not cumulative) counts; the exposition accumulates them. */
    atomic_uint_fast64_t latency[KL_ROUTE__COUNT][N_LAT_BUCKETS];
    atomic_uint_fast64_t latency_sum_us[KL_ROUTE__COUNT];
    atomic_uint_fast64_t auth_failures[KL_AUTHFAIL__COUNT];
    atomic_uint_fast64_t upstream_errors[KL_UPERR__COUNT];
    atomic_int_fast64_t connections_open;
    atomic_uint_fast64_t connections_total;
};

kl_metrics *kl_metrics_new(void)
{
    kl_metrics *m = malloc(sizeof(*m));
    if (!m)
        return NULL;
    for (size_t r = 0; r < KL_ROUTE__COUNT; r++) {
        for (size_t s = 0; s < N_STATUS_BUCKETS; s++)
            atomic_init(&m->requests[r][s], 0);
        for (size_t b = 0; b < N_LAT_BUCKETS; b++)
            atomic_init(&m->latency[r][b], 0);
        atomic_init(&m->latency_sum_us[r], 0);
    }
    for (size_t i = 0; i < KL_AUTHFAIL__COUNT; i++)
        atomic_init(&m->auth_failures[i], 0);
    for (size_t i = 0; i < KL_UPERR__COUNT; i++)
        atomic_init(&m->upstream_errors[i], 0);
    atomic_init(&m->connections_open, 0);
    atomic_init(&m->connections_total, 0);
    return m;
}

void kl_metrics_free(kl_metrics *m)
{
    free(m);
}

static size_t status_bucket(int status)
{
    for (size_t i = 0; i < N_STATUS; i++) {
        if (status_codes[i] == status)
            return i;
    }
    return STATUS_OTHER;
}

static size_t latency_bucket(uint64_t us)
{
    for (size_t i = 0; i < N_BOUNDS; i++) {
        if (us <= latency_bounds_us[i])
            return i;
    }
    return N_BOUNDS;
}

static void add(atomic_uint_fast64_t *c, uint64_t v)
{
    atomic_fetch_add_explicit(c, v, memory_order_relaxed);
}

static uint64_t get(atomic_uint_fast64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

void kl_metrics_request(kl_metrics *m, kl_route route, int status, uint64_t latency_us)
{
    if (!m)
        return;
    if ((unsigned)route >= KL_ROUTE__COUNT)
        route = KL_ROUTE_OTHER;
    add(&m->requests[route][status_bucket(status)], 1);
    add(&m->latency[route][latency_bucket(latency_us)], 1);
    add(&m->latency_sum_us[route], latency_us);
}

void kl_metrics_auth_failure(kl_metrics *m, kl_auth_fail kind)
{
    if (!m || (unsigned)kind >= KL_AUTHFAIL__COUNT)
        return;
    add(&m->auth_failures[kind], 1);
}

void kl_metrics_upstream_error(kl_metrics *m, kl_upstream_err kind)
{
    if (!m || (unsigned)kind >= KL_UPERR__COUNT)
        return;
    add(&m->upstream_errors[kind], 1);
}

void kl_metrics_connection(kl_metrics *m, int opened)
{
    if (!m)
        return;
    if (opened) {
        atomic_fetch_add_explicit(&m->connections_open, 1, memory_order_relaxed);
        add(&m->connections_total, 1);
    } else {
        atomic_fetch_sub_explicit(&m->connections_open, 1, memory_order_relaxed);
    }
}

static int render_requests(kl_metrics *m, kl_buf *out)
{
    int rc = kl_buf_append_str(out, "# HELP keyless_http_requests_total HTTP requests served, "
                                    "by route and status code.\n"
                                    "# TYPE keyless_http_requests_total counter\n");
    for (size_t r = 0; r < KL_ROUTE__COUNT && !rc; r++) {
        for (size_t s = 0; s < N_STATUS_BUCKETS && !rc; s++) {
            uint64_t v = get(&m->requests[r][s]);
            if (!v)
                continue;
            if (s == STATUS_OTHER)
                rc = kl_buf_appendf(out,
                                    "keyless_http_requests_total{route=\"%s\",status=\"other\"} "
                                    "%llu\n",
                                    route_names[r], (unsigned long long)v);
            else
                rc = kl_buf_appendf(out,
                                    "keyless_http_requests_total{route=\"%s\",status=\"%d\"} "
                                    "%llu\n",
                                    route_names[r], status_codes[s], (unsigned long long)v);
        }
    }
    return rc;
}

static int render_latency(kl_metrics *m, kl_buf *out)
{
    int rc = kl_buf_append_str(out, "# HELP keyless_http_request_duration_seconds Time from the "
                                    "request's first byte to its response, by route.\n"
                                    "# TYPE keyless_http_request_duration_seconds histogram\n");
    for (size_t r = 0; r < KL_ROUTE__COUNT && !rc; r++) {
        uint64_t counts[N_LAT_BUCKETS];
        uint64_t total = 0;
        for (size_t b = 0; b < N_LAT_BUCKETS; b++) {
            counts[b] = get(&m->latency[r][b]);
            total += counts[b];
        }
        if (!total)
            continue;
        /* _count is the sum of the buckets read here, so +Inf always equals _count even
         * while requests are being recorded. */
        uint64_t cum = 0;
        for (size_t b = 0; b < N_LAT_BUCKETS && !rc; b++) {
            cum += counts[b];
            rc = kl_buf_appendf(out,
                                "keyless_http_request_duration_seconds_bucket{route=\"%s\","
                                "le=\"%s\"} %llu\n",
                                route_names[r], latency_le[b], (unsigned long long)cum);
        }
        uint64_t sum_us = get(&m->latency_sum_us[r]);
        if (!rc)
            rc = kl_buf_appendf(out,
                                "keyless_http_request_duration_seconds_sum{route=\"%s\"} "
                                "%llu.%06llu\n"
                                "keyless_http_request_duration_seconds_count{route=\"%s\"} "
                                "%llu\n",
                                route_names[r], (unsigned long long)(sum_us / 1000000u),
                                (unsigned long long)(sum_us % 1000000u), route_names[r],
                                (unsigned long long)total);
    }
    return rc;
}

int kl_metrics_render(kl_metrics *m, kl_buf *out)
{
    if (!m || !out)
        return KL_EINVAL;
    int rc = render_requests(m, out);
    if (!rc)
        rc = render_latency(m, out);
    if (!rc)
        rc = kl_buf_append_str(out, "# HELP keyless_auth_failures_total Requests refused "
                                    "for authentication or authorisation, by kind.\n"
                                    "# TYPE keyless_auth_failures_total counter\n");
    for (size_t i = 0; i < KL_AUTHFAIL__COUNT && !rc; i++)
        rc = kl_buf_appendf(out, "keyless_auth_failures_total{kind=\"%s\"} %llu\n", auth_names[i],
                            (unsigned long long)get(&m->auth_failures[i]));
    if (!rc)
        rc = kl_buf_append_str(out, "# HELP keyless_upstream_errors_total Failed calls to "
                                    "model servers, by kind.\n"
                                    "# TYPE keyless_upstream_errors_total counter\n");
    for (size_t i = 0; i < KL_UPERR__COUNT && !rc; i++)
        rc = kl_buf_appendf(out, "keyless_upstream_errors_total{kind=\"%s\"} %llu\n",
                            upstream_names[i], (unsigned long long)get(&m->upstream_errors[i]));
    if (!rc) {
        int64_t open = atomic_load_explicit(&m->connections_open, memory_order_relaxed);
        rc = kl_buf_appendf(out,
                            "# HELP keyless_connections_open Client connections open now.\n"
                            "# TYPE keyless_connections_open gauge\n"
                            "keyless_connections_open %lld\n"
                            "# HELP keyless_connections_total Client connections accepted.\n"
                            "# TYPE keyless_connections_total counter\n"
                            "keyless_connections_total %llu\n",
                            (long long)(open < 0 ? 0 : open),
                            (unsigned long long)get(&m->connections_total));
    }
    return rc;
}
