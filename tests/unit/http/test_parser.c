/* The request parser on its own (src/http/parser.h): bytes in, a checked head, a whole
 * request or one of the server's refusals out, the same however the bytes are cut, with
 * every byte charged to the request budget given back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "http/parser.h"
#include "http/req.h"

static atomic_size_t budget;

static kl_http_req *new_req(void *arg)
{
    kl_http_req **slot = arg;
    if (!*slot)
        *slot = kl_http_req_new(&budget);
    return *slot;
}

/* Feeds s in pieces of at most step bytes, as a connection would, until a request is
 * complete or refused. Returns the last result; *out gets the request (caller frees). */
static kl_http_parse feed(kl_http_parser *p, const char *s, size_t step, kl_http_req **out)
{
    size_t len = strlen(s), pos = 0;
    kl_http_parse st = KL_HTTP_PARSE_MORE;
    while (pos < len) {
        size_t n = len - pos < step ? len - pos : step, used = 0;
        st = kl_http_parser_feed(p, s + pos, n, &used);
        if (st == KL_HTTP_PARSE_REFUSED || st == KL_HTTP_PARSE_DONE)
            break;
        assert_true(used <= n);
        pos += used;
        if (st == KL_HTTP_PARSE_HEAD) {
            assert_non_null(*out);
            size_t blen;
            kl_http_req_body(*out, &blen);
            assert_int_equal(blen, 0); /* the body is not read before the head is vetted */
            if (kl_http_parser_reserve_body(p) != 0)
                return KL_HTTP_PARSE_REFUSED;
        }
    }
    return st;
}

static void test_request_whole_or_byte_by_byte(void **state)
{
    (void)state;
    static const char req[] = "POST //a//b/?x=1&y=%41#frag HTTP/1.1\r\nHost: h\r\n"
                              "Content-Length: 5\r\nX-Key: secret\r\n\r\nhello";
    size_t steps[] = {sizeof(req), 1, 7};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        kl_http_req *r = NULL;
        kl_http_parser p;
        kl_http_parser_init(&p, new_req, &r);
        assert_int_equal(feed(&p, req, steps[i], &r), KL_HTTP_PARSE_DONE);
        assert_string_equal(kl_http_req_method(r), "POST");
        assert_string_equal(kl_http_req_path(r), "/a/b");
        assert_string_equal(kl_http_req_query(r), "x=1&y=%41");
        assert_string_equal(kl_http_req_query_param(r, "y"), "A");
        assert_string_equal(kl_http_req_header(r, "x-key"), "secret");
        size_t blen;
        const unsigned char *b = kl_http_req_body(r, &blen);
        assert_int_equal(blen, 5);
        assert_memory_equal(b, "hello", 5);
        assert_true(p.keep_alive);
        assert_true(atomic_load(&budget) > 0);
        kl_http_req_free(r);
        assert_int_equal(atomic_load(&budget), 0);
    }
}

static void test_pipelined_after_reset(void **state)
{
    (void)state;
    static const char two[] =
        "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n";
    kl_http_req *r = NULL;
    kl_http_parser p;
    kl_http_parser_init(&p, new_req, &r);
    size_t pos = 0, used = 0;
    const char *paths[] = {"/a", "/b"};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(kl_http_parser_feed(&p, two + pos, strlen(two) - pos, &used),
                         KL_HTTP_PARSE_HEAD);
        pos += used;
        assert_int_equal(kl_http_parser_reserve_body(&p), 0);
        assert_int_equal(kl_http_parser_feed(&p, two + pos, strlen(two) - pos, &used),
                         KL_HTTP_PARSE_DONE);
        pos += used;
        assert_string_equal(kl_http_req_path(r), paths[i]);
        kl_http_req_free(r);
        r = NULL;
        kl_http_parser_reset(&p);
    }
    assert_int_equal(pos, strlen(two));
}

static void test_trailers_add_no_header(void **state)
{
    (void)state;
    kl_http_req *r = NULL;
    kl_http_parser p;
    kl_http_parser_init(&p, new_req, &r);
    assert_int_equal(feed(&p,
                          "POST /t HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "3\r\nabc\r\n0\r\nHost: evil\r\nX-Late: 1\r\n\r\n",
                          4096, &r),
                     KL_HTTP_PARSE_DONE);
    assert_int_equal(kl_http_req_header_count(r, "host"), 1);
    assert_null(kl_http_req_header(r, "x-late"));
    kl_http_req_free(r);
}

/* Every refusal the parser makes, each from a request that provokes it. */
static void test_refusals(void **state)
{
    (void)state;
    char longurl[KL_MAX_REQUEST_LINE + 64];
    snprintf(longurl, sizeof(longurl), "GET /%0*d HTTP/1.1\r\n\r\n", KL_MAX_REQUEST_LINE, 0);
    char manyheaders[(KL_MAX_HEADER_COUNT + 2) * 8 + 64];
    size_t o = (size_t)snprintf(manyheaders, sizeof(manyheaders), "GET / HTTP/1.1\r\n");
    for (int i = 0; i <= KL_MAX_HEADER_COUNT; i++)
        o += (size_t)snprintf(manyheaders + o, sizeof(manyheaders) - o, "H%d: v\r\n", i % 10);
    snprintf(manyheaders + o, sizeof(manyheaders) - o, "\r\n");
    char bigcl[128];
    snprintf(bigcl, sizeof(bigcl), "POST / HTTP/1.1\r\nContent-Length: %d\r\n\r\n",
             KL_MAX_BODY_BYTES + 1);
    const struct {
        const char *req;
        int status;
        const char *code;
    } cases[] = {
        {"GET / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n", 400, "BadRequest"},
        {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "BadRequest"},
        {"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400, "BadRequest"},
        {"GET x HTTP/1.1\r\n\r\n", 400, "BadRequest"},
        {"G@T / HTTP/1.1\r\n\r\n", 400, "BadRequest"},
        {"BREW / HTTP/1.1\r\n\r\n", 501, "NotImplemented"},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "NotImplemented"},
        {"POST / HTTP/1.1\r\nExpect: later\r\n\r\n", 417, "ExpectationFailed"},
        {"GET / HTTP/2.0\r\n\r\n", 505, "HTTPVersionNotSupported"},
        {bigcl, 413, "RequestEntityTooLarge"},
        {longurl, 414, "RequestUriTooLong"},
        {manyheaders, 431, "RequestHeaderFieldsTooLarge"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        kl_http_req *r = NULL;
        kl_http_parser p;
        kl_http_parser_init(&p, new_req, &r);
        kl_http_parse st = feed(&p, cases[i].req, 1 << 20, &r);
        if (st != KL_HTTP_PARSE_REFUSED || p.status != cases[i].status)
            fail_msg("case %zu: result %d, status %d", i, (int)st, p.status);
        assert_string_equal(p.code, cases[i].code);
        assert_true(p.msg && p.msg[0]);
        kl_http_req_free(r);
        assert_int_equal(atomic_load(&budget), 0);
    }
}

/* The outcome of one request fed in pieces of every size from 1 byte to all of it:
 * the same whatever the cut (a parser that reads a connection two ways is a smuggling
 * vector), and the one named. status 0 means complete, with body as its body. Prints
 * the first cut that differs and returns false. */
static bool every_cut(const char *req, size_t len, int status, const char *body)
{
    for (size_t step = 1; step <= len; step++) {
        kl_http_req *r = NULL;
        kl_http_parser p;
        kl_http_parser_init(&p, new_req, &r);
        size_t pos = 0;
        kl_http_parse st = KL_HTTP_PARSE_MORE;
        while (pos < len) {
            size_t n = len - pos < step ? len - pos : step, used = 0;
            st = kl_http_parser_feed(&p, req + pos, n, &used);
            if (st == KL_HTTP_PARSE_REFUSED || st == KL_HTTP_PARSE_DONE)
                break;
            pos += used;
            if (st == KL_HTTP_PARSE_HEAD && kl_http_parser_reserve_body(&p) != 0) {
                st = KL_HTTP_PARSE_REFUSED;
                break;
            }
        }
        int got = st == KL_HTTP_PARSE_REFUSED ? p.status : st == KL_HTTP_PARSE_DONE ? 0 : -1;
        if (got != status) {
            print_error("%.40s...: pieces of %zu bytes: got %d, want %d (%s)\n", req, step, got,
                        status, p.msg ? p.msg : "");
            kl_http_req_free(r);
            return false;
        }
        if (status == 0) {
            size_t blen;
            const unsigned char *b = kl_http_req_body(r, &blen);
            assert_int_equal(blen, strlen(body));
            assert_memory_equal(b, body, blen);
        }
        kl_http_req_free(r);
        assert_int_equal(atomic_load(&budget), 0);
    }
    return true;
}

#define CHUNKED "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"

static void test_same_outcome_however_cut(void **state)
{
    (void)state;
    const struct {
        const char *req;
        int status;
        const char *body;
    } cases[] = {
        /* The method: a token it does not know is 501, anything else 400. */
        {"BREW / HTTP/1.1\r\n\r\n", 501, NULL},
        {"GETX / HTTP/1.1\r\n\r\n", 501, NULL},
        {"BR@W / HTTP/1.1\r\n\r\n", 400, NULL},
        {"GE\tT / HTTP/1.1\r\n\r\n", 400, NULL},
        {" / HTTP/1.1\r\n\r\n", 400, NULL},
        {"\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 0, ""},
        /* The head ends with LF (bare LF line ends are still read, RFC 9112 2.2). */
        {"GET / HTTP/1.1\r\nHost: h\r\n\rHEAD / HTTP/1.1\r\n\r\n", 400, NULL},
        {"GET / HTTP/1.1\nHost: h\n\n", 0, ""},
        /* Chunked framing: CRLF where the grammar puts it, whatever http_parser takes. */
        {CHUNKED "5;a=b\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n", 0, "hello world"},
        {CHUNKED "5\r\nhelloXY0\r\n\r\n", 400, NULL},
        {CHUNKED "5\rXhello\r\n0\r\n\r\n", 400, NULL},
        {CHUNKED "5;a\nb\r\nhello\r\n0\r\n\r\n", 400, NULL},
        {CHUNKED "5\r\nhello\r\n0\r\n\rX", 400, NULL},
        {CHUNKED "5\r\nhello\r\n0\r\n\n", 400, NULL},
        {CHUNKED "5\r\nhello\r\n0\r\nX-T: 1\n\r\n", 400, NULL},
    };
    size_t failed = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        failed += !every_cut(cases[i].req, strlen(cases[i].req), cases[i].status, cases[i].body);
    assert_int_equal(failed, 0);
}

/* Limits hold at a byte: an over-long target or too many headers get their refusal
 * however the reads cut them, even when a malformed byte follows the limit. */
static void test_limits_hold_at_a_byte(void **state)
{
    (void)state;
    size_t cap = KL_MAX_REQUEST_LINE + 2 * KL_MAX_HEADER_BYTES;
    char *req = malloc(cap);
    assert_non_null(req);
    /* A target one byte over, then a byte http_parser refuses in a target. */
    int n = snprintf(req, cap, "GET /%0*d\x01 HTTP/1.1\r\n\r\n", KL_MAX_REQUEST_LINE, 0);
    bool target_ok = every_cut(req, (size_t)n, 414, NULL);
    /* One header too many, whose name holds a byte http_parser refuses in a name. */
    size_t o = (size_t)snprintf(req, cap, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < KL_MAX_HEADER_COUNT; i++)
        o += (size_t)snprintf(req + o, cap - o, "H%d: v\r\n", i % 10);
    o += (size_t)snprintf(req + o, cap - o, "Late\x01: v\r\n\r\n");
    bool headers_ok = every_cut(req, o, 400, NULL);
    free(req);
    assert_true(target_ok);
    assert_true(headers_ok);
}

/* With the daemon-wide budget spent, a request is refused with 503, and what it had
 * charged is given back. */
static void test_budget_spent(void **state)
{
    (void)state;
    atomic_store(&budget, KL_MAX_BUFFERED_REQUEST_BYTES);
    kl_http_req *r = NULL;
    kl_http_parser p;
    kl_http_parser_init(&p, new_req, &r);
    assert_int_equal(feed(&p, "GET / HTTP/1.1\r\nHost: h\r\n\r\n", 4096, &r),
                     KL_HTTP_PARSE_REFUSED);
    assert_int_equal(p.status, 503);
    assert_string_equal(p.code, "ServerBusy");
    kl_http_req_free(r);
    assert_int_equal(atomic_load(&budget), KL_MAX_BUFFERED_REQUEST_BYTES);
    atomic_store(&budget, 0);
}

int main(void)
{
    kl_http_parser_setup();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_whole_or_byte_by_byte),
        cmocka_unit_test(test_pipelined_after_reset),
        cmocka_unit_test(test_trailers_add_no_header),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_same_outcome_however_cut),
        cmocka_unit_test(test_limits_hold_at_a_byte),
        cmocka_unit_test(test_budget_spent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
