/* Upstream wire format: the exact bytes of a built request (credential only when set,
 * header injection refused, bodies larger than the size hint), and response framing
 * (content-length, chunked and close-delimited bodies, 1xx skipped, captured headers,
 * keep-alive, limits), fed whole and one byte at a time. */
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
#include "gateway/upstream_wire.h"

/* ------------------------------------------------------------------ requests */

static void build(const char *url, const char *accept, const char *cred, const char *json,
                  size_t hint, int want_rc, const char *want)
{
    kl_upstream_target t;
    assert_int_equal(kl_upstream_target_parse(url, KL_GW_ROUTE_CHAT, &t), 0);
    json_t *body = json_loads(json, JSON_DECODE_ANY, NULL);
    assert_non_null(body);
    char *out = (char *)1;
    size_t len = 99;
    assert_int_equal(kl_upstream_request_build(&t, accept, cred, body, hint, &out, &len), want_rc);
    if (want_rc == 0) {
        assert_int_equal(len, strlen(want));
        assert_memory_equal(out, want, len);
    } else {
        assert_null(out);
        assert_int_equal(len, 0);
    }
    free(out);
    json_decref(body);
    free(t.uri);
}

static void test_request_bytes(void **state)
{
    (void)state;
    build("http://127.0.0.1:8000/v1", "application/json", NULL,
          "{\"model\":\"M\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", 512, 0,
          "POST /v1/chat/completions HTTP/1.1\r\n"
          "Host: 127.0.0.1:8000\r\n"
          "Content-Type: application/json\r\n"
          "Accept: application/json\r\n"
          "Content-Length: 57\r\n"
          "\r\n"
          "{\"model\":\"M\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    /* With a credential, insertion order kept, compact; an empty credential is none. */
    build("https://models.example/openai?api-version=1", "text/event-stream", "sk-1",
          "{ \"stream\" : true, \"a\" : [1, 2] }", 512, 0,
          "POST /openai/chat/completions?api-version=1 HTTP/1.1\r\n"
          "Host: models.example\r\n"
          "Content-Type: application/json\r\n"
          "Accept: text/event-stream\r\n"
          "Content-Length: 25\r\n"
          "Authorization: Bearer sk-1\r\n"
          "\r\n"
          "{\"stream\":true,\"a\":[1,2]}");
    build("http://[::1]:9/v1", "application/json", "", "{}", 512, 0,
          "POST /v1/chat/completions HTTP/1.1\r\n"
          "Host: [::1]:9\r\n"
          "Content-Type: application/json\r\n"
          "Accept: application/json\r\n"
          "Content-Length: 2\r\n"
          "\r\n"
          "{}");
    /* Header injection through the credential is refused. */
    build("http://h/v1", "application/json", "sk\r\nX-Evil: 1", "{}", 512, KL_EINVAL, NULL);
    build("http://h/v1", "application/json", "sk\n", "{}", 512, KL_EINVAL, NULL);
}

static void test_request_large_body(void **state)
{
    (void)state;
    /* A body far beyond the size hint is serialised again into a larger buffer. */
    size_t n = 100000;
    char *text = malloc(n + 1);
    memset(text, 'x', n);
    text[n] = '\0';
    json_t *body = json_pack("{s:s,s:s}", "model", "M", "prompt", text);
    kl_upstream_target t;
    assert_int_equal(kl_upstream_target_parse("http://h/v1", KL_GW_ROUTE_COMPLETIONS, &t), 0);
    for (size_t hint = 1; hint <= 200000; hint *= 447) {
        char *out = NULL;
        size_t len = 0;
        assert_int_equal(
            kl_upstream_request_build(&t, "application/json", "c", body, hint, &out, &len), 0);
        char *dumped = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
        char head[256];
        int hl = snprintf(head, sizeof(head),
                          "POST /v1/completions HTTP/1.1\r\nHost: h\r\nContent-Type: "
                          "application/json\r\nAccept: application/json\r\nContent-Length: "
                          "%zu\r\nAuthorization: Bearer c\r\n\r\n",
                          strlen(dumped));
        assert_int_equal(len, (size_t)hl + strlen(dumped));
        assert_memory_equal(out, head, (size_t)hl);
        assert_memory_equal(out + hl, dumped, strlen(dumped));
        free(dumped);
        free(out);
    }
    free(t.uri);
    json_decref(body);
    free(text);
}

/* ------------------------------------------------------------------ responses */

typedef struct sink {
    int heads;
    int status_at_head;
    char body[4096];
    size_t body_len;
    int fail_body; /* returned from the body callback when nonzero */
} sink;

static int sink_head(void *arg, const kl_upstream_resp *rp)
{
    sink *s = arg;
    s->heads++;
    s->status_at_head = rp->status;
    return 0;
}

static int sink_body(void *arg, const char *data, size_t len)
{
    sink *s = arg;
    if (s->fail_body)
        return s->fail_body;
    assert_true(s->body_len + len <= sizeof(s->body));
    memcpy(s->body + s->body_len, data, len);
    s->body_len += len;
    return 0;
}

static const kl_upstream_resp_cb sink_cb = {.head = sink_head, .body = sink_body};

/* Feeds msg whole (step 0) or step bytes at a time, then EOF if eof; returns the last
 * feed's result and the bytes consumed in total. */
static int feed(kl_upstream_resp *rp, sink *s, const char *msg, size_t step, bool eof,
                size_t *total)
{
    memset(s, 0, sizeof(*s));
    kl_upstream_resp_init(rp, &sink_cb, s);
    size_t len = strlen(msg), off = 0;
    *total = 0;
    int rc = 0;
    while (off < len) {
        size_t n = step ? step : len;
        if (n > len - off)
            n = len - off;
        size_t used = 0;
        rc = kl_upstream_resp_feed(rp, msg + off, n, &used);
        assert_true(used <= n);
        *total += used;
        if (rc != 0)
            return rc;
        assert_int_equal(used, n);
        off += n;
    }
    if (eof) {
        size_t used = 0;
        rc = kl_upstream_resp_feed(rp, NULL, 0, &used);
        assert_int_equal(used, 0);
    }
    return rc;
}

static void expect_answer(const char *msg, size_t tail, bool eof, int status, const char *body,
                          bool keep_alive)
{
    static const size_t steps[] = {0, 1, 2, 7};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        kl_upstream_resp rp;
        sink s;
        size_t total;
        assert_int_equal(feed(&rp, &s, msg, steps[i], eof, &total), 1);
        assert_int_equal(total, strlen(msg) - tail);
        assert_true(rp.complete);
        assert_int_equal(rp.status, status);
        assert_int_equal(s.heads, 1);
        assert_int_equal(s.status_at_head, status);
        assert_int_equal(s.body_len, strlen(body));
        assert_memory_equal(s.body, body, s.body_len);
        assert_int_equal(rp.keep_alive, keep_alive);
        /* Once complete, nothing more is taken. */
        size_t used = 9;
        assert_int_equal(kl_upstream_resp_feed(&rp, "HTTP/1.1 200 OK\r\n", 17, &used), 1);
        assert_int_equal(used, 0);
    }
}

static void test_framing(void **state)
{
    (void)state;
    expect_answer("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n"
                  "{\"a\":1}",
                  0, false, 200, "{\"a\":1}", true);
    /* Bytes after the answer are not consumed. */
    expect_answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA", 5, false, 200, "ok", true);
    expect_answer("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "5\r\ndata:\r\n3;ext=1\r\n ab\r\n0\r\nX-Trailer: t\r\n\r\n",
                  0, false, 200, "data: ab", true);
    /* Close-delimited: complete only at EOF, and never kept alive. */
    expect_answer("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end", 0, true, 200,
                  "until the end", false);
    expect_answer("HTTP/1.1 503 Busy\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx", 0, false,
                  503, "x", false);
    expect_answer("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", 0, false, 200, "x", false);
    expect_answer("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx", 0,
                  false, 200, "x", true);
    expect_answer("HTTP/1.1 204 No Content\r\n\r\n", 0, false, 204, "", true);
    /* Interim answers are skipped, the final one is reported once. */
    expect_answer("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
                  "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nfin",
                  0, false, 200, "fin", true);
}

static void test_headers(void **state)
{
    (void)state;
    const char *msg = "HTTP/1.1 429 Too Many Requests\r\n"
                      "content-TYPE:   application/json; charset=utf-8  \r\n"
                      "Retry-After: 3\r\n"
                      "retry-after: 99\r\n"
                      "X-RateLimit-Remaining-Tokens: 0\r\n"
                      "x-ratelimit-reset-requests:\r\n"
                      "X-Other: no\r\n"
                      "Set-Cookie: s=1\r\n"
                      "Content-Length: 2\r\n\r\n{}";
    for (size_t step = 0; step < 4; step++) {
        kl_upstream_resp rp;
        sink s;
        size_t total;
        assert_int_equal(feed(&rp, &s, msg, step, false, &total), 1);
        assert_int_equal(rp.status, 429);
        assert_string_equal(kl_upstream_resp_value(&rp, 0), "application/json; charset=utf-8");
        for (size_t i = 1; i < KL_UPSTREAM_RESP_NHEADERS; i++) {
            const char *v = kl_upstream_resp_value(&rp, i);
            const char *name = kl_upstream_resp_names[i];
            if (strcmp(name, "retry-after") == 0)
                assert_string_equal(v, "3"); /* the first one */
            else if (strcmp(name, "x-ratelimit-remaining-tokens") == 0)
                assert_string_equal(v, "0");
            else if (strcmp(name, "x-ratelimit-reset-requests") == 0)
                assert_string_equal(v, "");
            else
                assert_null(v);
        }
        assert_null(kl_upstream_resp_value(&rp, KL_UPSTREAM_RESP_NHEADERS));
    }
    /* No Content-Type at all; an interim answer's headers are not kept. */
    kl_upstream_resp rp;
    sink s;
    size_t total;
    assert_int_equal(feed(&rp, &s,
                          "HTTP/1.1 100 Continue\r\nRetry-After: 5\r\n\r\n"
                          "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                          0, false, &total),
                     1);
    assert_null(kl_upstream_resp_value(&rp, 0));
    assert_null(kl_upstream_resp_value(&rp, 1));
    /* A value too long for the capture is dropped, the others kept. */
    char big[2048];
    int n = snprintf(big, sizeof(big),
                     "HTTP/1.1 200 OK\r\nContent-Type: %01500d\r\nRetry-After: 1\r\n"
                     "Content-Length: 0\r\n\r\n",
                     0);
    assert_true(n > 0 && (size_t)n < sizeof(big));
    assert_int_equal(feed(&rp, &s, big, 3, false, &total), 1);
    assert_null(kl_upstream_resp_value(&rp, 0));
    assert_string_equal(kl_upstream_resp_value(&rp, 1), "1");
}

static void test_refused(void **state)
{
    (void)state;
    kl_upstream_resp rp;
    sink s;
    size_t total;
    assert_int_equal(feed(&rp, &s, "garbage\r\n\r\n", 0, false, &total), KL_EINVAL);
    assert_int_equal(feed(&rp, &s, "HTTP/1.1 099 Low\r\n\r\n", 0, false, &total), KL_EINVAL);
    assert_int_equal(feed(&rp, &s,
                          "HTTP/1.1 101 Switching\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\n", 0,
                          false, &total),
                     KL_EINVAL);
    assert_int_equal(s.heads, 0);
    assert_int_equal(feed(&rp, &s,
                          "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 0,
                          false, &total),
                     KL_EINVAL);
    /* Cut short: EOF inside the head, inside a Content-Length or chunked body, or before
     * anything at all. */
    assert_int_equal(feed(&rp, &s, "HTTP/1.1 200 OK\r\nContent-Le", 0, true, &total), KL_EIO);
    assert_int_equal(
        feed(&rp, &s, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", 0, true, &total), KL_EIO);
    assert_int_equal(s.body_len, 2);
    assert_int_equal(feed(&rp, &s, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab",
                          0, true, &total),
                     KL_EIO);
    assert_int_equal(feed(&rp, &s, "", 0, true, &total), KL_EIO);
    /* A callback's error stops parsing and comes back. */
    memset(&s, 0, sizeof(s));
    kl_upstream_resp_init(&rp, &sink_cb, &s);
    s.fail_body = KL_EIO;
    const char *m = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody";
    size_t used;
    assert_int_equal(kl_upstream_resp_feed(&rp, m, strlen(m), &used), KL_EIO);
    assert_int_equal(kl_upstream_resp_feed(&rp, m, strlen(m), &used), KL_EIO);
}

static void test_limits(void **state)
{
    (void)state;
    kl_upstream_resp rp;
    sink s;
    size_t total;
    char cl[128];
    snprintf(cl, sizeof(cl), "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n",
             KL_MAX_UPSTREAM_RESPONSE + 1);
    assert_int_equal(feed(&rp, &s, cl, 0, false, &total), KL_ETOOBIG);
    assert_int_equal(s.heads, 0);
    snprintf(cl, sizeof(cl), "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n",
             KL_MAX_UPSTREAM_RESPONSE);
    assert_int_equal(feed(&rp, &s, cl, 0, false, &total), 0);

    /* Header count and header bytes. */
    size_t cap = 200 * 1024;
    char *m = malloc(cap);
    size_t len = (size_t)snprintf(m, cap, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < KL_MAX_HEADER_COUNT; i++)
        len += (size_t)snprintf(m + len, cap - len, "X-H%d: v\r\n", i);
    memcpy(m + len, "Content-Length: 0\r\n\r\n", 22);
    assert_int_equal(feed(&rp, &s, m, 0, false, &total), KL_ETOOBIG);
    len = (size_t)snprintf(m, cap, "HTTP/1.1 200 OK\r\nX-Big: ");
    memset(m + len, 'v', KL_MAX_HEADER_BYTES);
    len += KL_MAX_HEADER_BYTES;
    memcpy(m + len, "\r\nContent-Length: 0\r\n\r\n", 24);
    assert_int_equal(feed(&rp, &s, m, 4096, false, &total), KL_ETOOBIG);
    free(m);

    /* A chunked body may not grow past the limit either. */
    memset(&s, 0, sizeof(s));
    s.fail_body = 0;
    kl_upstream_resp_init(&rp, NULL, NULL);
    const char *h = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    size_t used;
    assert_int_equal(kl_upstream_resp_feed(&rp, h, strlen(h), &used), 0);
    char *chunk = malloc(1024 * 1024 + 32);
    int hn = snprintf(chunk, 32, "100000\r\n");
    memset(chunk + hn, 'z', 1024 * 1024);
    memcpy(chunk + hn + 1024 * 1024, "\r\n", 2);
    size_t clen = (size_t)hn + 1024 * 1024 + 2;
    int rc = 0;
    int rounds = 0;
    while (rc == 0 && rounds < 100) {
        rc = kl_upstream_resp_feed(&rp, chunk, clen, &used);
        rounds++;
    }
    assert_int_equal(rc, KL_ETOOBIG);
    assert_int_equal(rounds, KL_MAX_UPSTREAM_RESPONSE / (1024 * 1024) + 1);
    free(chunk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_bytes), cmocka_unit_test(test_request_large_body),
        cmocka_unit_test(test_framing),       cmocka_unit_test(test_headers),
        cmocka_unit_test(test_refused),       cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
