/* The HTTP server over real loopback sockets: framing, keep-alive, pipelining, limits,
 * streaming and the JSON shape of every refusal the server makes itself. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/limits.h"
#include "http/server.h"

typedef struct fixture {
    kl_http_server *srv;
    int port;
    char sock[96];
} fixture;

static void handler(kl_http_req *r, void *arg)
{
    (void)arg;
    const char *path = kl_http_req_path(r);
    if (!strcmp(path, "/echo")) {
        size_t n;
        const unsigned char *b = kl_http_req_body(r, &n);
        kl_http_respond(r, 200, "application/octet-stream", b, n);
    } else if (!strcmp(path, "/stream")) {
        kl_http_stream_begin(r, 200, "text/event-stream");
        kl_http_stream_write(r, "data: 1\n\n", 9);
        kl_http_stream_write(r, "data: 2\n\n", 9);
        kl_http_stream_end(r);
    } else if (!strcmp(path, "/stream-big") || !strcmp(path, "/stream-over")) {
        /* One write far larger than the response header budget (a single loop turn's
         * worth of a big answer); /stream-over then writes past the output buffer. */
        size_t n = KL_MAX_OUTPUT_BUFFER * 6 / 10;
        char *big = malloc(n);
        memset(big, 'x', n);
        kl_http_stream_begin(r, 200, "text/event-stream");
        int rc = kl_http_stream_write(r, big, n);
        if (!strcmp(path, "/stream-over") && rc == 0)
            rc = kl_http_stream_write(r, big, n);
        free(big);
        /* The handler ends as usual; a failed write must still not look complete. */
        kl_http_stream_end(r);
        (void)rc;
    } else if (!strcmp(path, "/stream-abort")) {
        kl_http_stream_begin(r, 200, "text/event-stream");
        kl_http_stream_write(r, "data: 1\n\n", 9);
        kl_http_stream_abort(r);
    } else if (!strcmp(path, "/q")) {
        const char *v = kl_http_req_query_param(r, "api-version");
        const char *h = kl_http_req_header(r, "X-Thing");
        char out[256];
        snprintf(out, sizeof(out), "%s|%s|%s", v ? v : "-", h ? h : "-",
                 kl_http_req_is_admin(r) ? "admin" : "tcp");
        kl_http_respond(r, 200, "text/plain", out, strlen(out));
    } else if (!strcmp(path, "/peer")) {
        char addr[64];
        kl_http_req_peer_addr(r, addr, sizeof(addr));
        char out[96];
        snprintf(out, sizeof(out), "peer=%s|%zu", addr, strlen(addr));
        kl_http_respond(r, 200, "text/plain", out, strlen(out));
    } else {
        kl_http_respond_error(r, 404, "NotFound", "nope");
    }
}

/* The headers hook: /deny is refused from its head alone (as a wrong api-key is). */
static kl_http_verdict on_headers(kl_http_req *r, void *arg)
{
    (void)arg;
    if (strcmp(kl_http_req_path(r), "/deny") != 0)
        return KL_HTTP_CONTINUE;
    kl_http_respond_error(r, 401, "Denied", "no");
    return KL_HTTP_ANSWERED;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    kl_http_server_cfg cfg = {.workers = 2, .handler = handler, .on_headers = on_headers};
    f->srv = kl_http_server_new(&cfg);
    assert_non_null(f->srv);
    assert_int_equal(
        kl_http_server_listen_tcp(f->srv, "127.0.0.1:0", NULL, KL_FACE_PUBLIC, &f->port), 0);
    snprintf(f->sock, sizeof(f->sock), "/tmp/kl-test-%d.sock", (int)getpid());
    assert_int_equal(kl_http_server_listen_unix(f->srv, f->sock, KL_FACE_ADMIN), 0);
    assert_int_equal(kl_http_server_start(f->srv), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    kl_http_server_stop(f->srv, 1000);
    kl_http_server_free(f->srv);
    free(f);
    return 0;
}

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return; /* the server may close early on purpose */
        p += w;
        n -= (size_t)w;
    }
}

/* Reads until the peer closes or `until` appears `times` times or timeout_ms passes. */
static size_t recv_until(int fd, char *buf, size_t cap, const char *until, int times,
                         int timeout_ms)
{
    size_t len = 0;
    buf[0] = '\0';
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, timeout_ms) <= 0)
            break;
        ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
        if (until) {
            int seen = 0;
            for (const char *s = buf; (s = strstr(s, until)); s++)
                seen++;
            if (seen >= times)
                break;
        }
    }
    return len;
}

/* Reads until the peer closes (true) or timeout_ms passes with nothing read (false). */
static bool recv_to_close(int fd, char *buf, size_t cap, size_t *len, int timeout_ms)
{
    *len = 0;
    buf[0] = '\0';
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, timeout_ms) <= 0)
            return false;
        ssize_t n = recv(fd, buf + *len, cap - 1 - *len, 0);
        if (n < 0)
            return true; /* a reset after the answer: closed as well */
        if (n == 0)
            return true;
        *len += (size_t)n;
        buf[*len] = '\0';
        if (*len == cap - 1)
            return false;
    }
}

/* out must hold exactly one response, status_line (e.g. "HTTP/1.1 400 Bad Request")
 * with a JSON error body whose code is code, and nothing after it: a second response
 * (say, the 400 of a smuggled request) fails the check. */
static void assert_one_json_error(const char *out, size_t len, const char *status_line,
                                  const char *code)
{
    char want[160];
    snprintf(want, sizeof(want), "%s\r\n", status_line);
    if (strncmp(out, want, strlen(want)) != 0)
        fail_msg("expected %s, got: %.300s", status_line, out);
    const char *end = strstr(out, "\r\n\r\n");
    assert_non_null(end);
    const char *cl = strstr(out, "Content-Length: ");
    assert_true(cl && cl < end);
    size_t body = strtoul(cl + 16, NULL, 10);
    size_t total = (size_t)(end + 4 - out) + body;
    if (total != len)
        fail_msg("expected one response of %zu bytes, got %zu: %.600s", total, len, out);
    assert_non_null(strstr(out, "Content-Type: application/json\r\n"));
    snprintf(want, sizeof(want), "\r\n\r\n{\"error\":{\"code\":\"%s\",\"message\":", code);
    if (!strstr(out, want))
        fail_msg("expected code %s, got: %.300s", code, out);
}

static void roundtrip(int port, const char *req, char *out, size_t cap)
{
    int fd = dial(port);
    send_all(fd, req, strlen(req));
    recv_until(fd, out, cap, NULL, 0, 3000);
    close(fd);
}

static void test_basic_and_headers(void **state)
{
    fixture *f = *state;
    char out[4096];
    roundtrip(f->port,
              "GET //q/?api-version=2024-10-01&x=%20y HTTP/1.1\r\nHost: a\r\nx-thing: hello\r\n"
              "Connection: close\r\n\r\n",
              out, sizeof(out));
    assert_non_null(strstr(out, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(out, "Content-Length: 20\r\n"));
    assert_non_null(strstr(out, "x-ms-request-id: "));
    assert_non_null(strstr(out, "\r\n\r\n2024-10-01|hello|tcp"));
}

static void test_keepalive_and_pipelining(void **state)
{
    fixture *f = *state;
    int fd = dial(f->port);
    const char *two = "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
                      "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "2\r\nde\r\n1\r\nf\r\n0\r\n\r\n";
    send_all(fd, two, strlen(two));
    char out[4096];
    recv_until(fd, out, sizeof(out), "HTTP/1.1 200", 2, 3000);
    char *first = strstr(out, "\r\n\r\nabc");
    assert_non_null(first);
    assert_non_null(strstr(first, "\r\n\r\ndef"));
    assert_non_null(strstr(out, "Connection: keep-alive"));
    close(fd);
}

static void test_streaming(void **state)
{
    fixture *f = *state;
    char out[4096];
    roundtrip(f->port, "GET /stream HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", out,
              sizeof(out));
    assert_non_null(strstr(out, "Transfer-Encoding: chunked\r\n"));
    assert_non_null(strstr(out, "\r\n9\r\ndata: 1\n\n\r\n9\r\ndata: 2\n\n\r\n0\r\n\r\n"));
}

/* Reads everything until the server closes. Returns the bytes (caller frees), *len set. */
static char *read_to_close(int port, const char *req, size_t *len)
{
    int fd = dial(port);
    send_all(fd, req, strlen(req));
    size_t cap = 2 * KL_MAX_OUTPUT_BUFFER;
    char *out = malloc(cap);
    *len = recv_until(fd, out, cap, NULL, 0, 5000);
    close(fd);
    return out;
}

/* A write of hundreds of KB in one loop turn arrives whole, with its terminating chunk
 * (it used to fail past the header budget and end the stream cleanly, truncated). */
static void test_stream_big_write(void **state)
{
    fixture *f = *state;
    size_t len, n = KL_MAX_OUTPUT_BUFFER * 6 / 10;
    char *out = read_to_close(
        f->port, "GET /stream-big HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", &len);
    char *body = strstr(out, "\r\n\r\n");
    assert_non_null(body);
    body += 4;
    char head[32];
    int hn = snprintf(head, sizeof(head), "%zx\r\n", n);
    assert_int_equal((size_t)(out + len - body), (size_t)hn + n + 2 + 5);
    assert_memory_equal(body, head, (size_t)hn);
    for (size_t i = 0; i < n; i++)
        if (body[hn + i] != 'x')
            fail_msg("byte %zu differs", i);
    assert_memory_equal(body + hn + n, "\r\n0\r\n\r\n", 7);
    free(out);
}

/* Bytes that cannot be queued (past the output buffer's bound) or a handler's abort
 * end the connection without the terminating chunk: the client can tell. */
static void test_stream_failure_is_visible(void **state)
{
    fixture *f = *state;
    const char *paths[] = {"/stream-over", "/stream-abort"};
    for (size_t i = 0; i < 2; i++) {
        char req[128];
        size_t len;
        snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
                 paths[i]);
        char *out = read_to_close(f->port, req, &len);
        out[len] = '\0';
        if (len >= 5 && !memcmp(out + len - 5, "0\r\n\r\n", 5))
            fail_msg("%s ended with a terminating chunk", paths[i]);
        assert_true(len < 2 * (KL_MAX_OUTPUT_BUFFER * 6 / 10));
        free(out);
        /* The server goes on serving. */
        char ok[4096];
        roundtrip(f->port, "GET /stream HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", ok,
                  sizeof(ok));
        assert_non_null(strstr(ok, "\r\n0\r\n\r\n"));
    }
}

/* Sends req and reads until the server closes: exactly one refusal, then a closed
 * connection (a smuggled second request would add a response or keep it open). */
static void expect_refusal(int port, const char *req, size_t reqlen, const char *status,
                           const char *code)
{
    int fd = dial(port);
    send_all(fd, req, reqlen);
    char out[8192];
    size_t len;
    bool closed = recv_to_close(fd, out, sizeof(out), &len, 10000);
    close(fd);
    if (!closed)
        fail_msg("the connection stayed open after: %.300s", out);
    assert_one_json_error(out, len, status, code);
}

static void test_refusals(void **state)
{
    fixture *f = *state;
    const char *nocolon = "GET /q HTTP/1.1\r\nHost: a\r\nthis is not a header\r\n\r\n";
    expect_refusal(f->port, nocolon, strlen(nocolon), "HTTP/1.1 400 Bad Request", "BadRequest");
    const char *clte = "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    expect_refusal(f->port, clte, strlen(clte), "HTTP/1.1 400 Bad Request", "BadRequest");
    const char *twocl = "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                        "Content-Length: 4\r\n\r\nabcd";
    expect_refusal(f->port, twocl, strlen(twocl), "HTTP/1.1 400 Bad Request", "BadRequest");
    /* RFC 9112: a transfer coding the server does not understand is a 501. */
    const char *te = "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n";
    expect_refusal(f->port, te, strlen(te), "HTTP/1.1 501 Not Implemented", "NotImplemented");
    const char *te2 = "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                      "1\r\nx\r\n0\r\n\r\n";
    expect_refusal(f->port, te2, strlen(te2), "HTTP/1.1 501 Not Implemented", "NotImplemented");
    /* Whitespace before the colon (a smuggling shape lenient parsers accept). */
    const char *sp = "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n"
                     "5\r\nhello\r\n0\r\n\r\n";
    expect_refusal(f->port, sp, strlen(sp), "HTTP/1.1 400 Bad Request", "BadRequest");
    /* An HTTP/0.9 request line (no version): http_parser reads it as version 0.9. */
    const char *h09 = "GET /q\r\n\r\n";
    expect_refusal(f->port, h09, strlen(h09), "HTTP/1.1 505 HTTP Version Not Supported",
                   "HTTPVersionNotSupported");
    char big[256];
    snprintf(big, sizeof(big), "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n",
             KL_MAX_BODY_BYTES + 1);
    expect_refusal(f->port, big, strlen(big), "HTTP/1.1 413 Payload Too Large",
                   "RequestEntityTooLarge");

    /* 100 KB of headers. */
    size_t hl = 100 * 1024;
    char *hdr = malloc(hl + 256);
    int n = snprintf(hdr, 256, "GET /q HTTP/1.1\r\nHost: a\r\nX-Big: ");
    memset(hdr + n, 'a', hl);
    memcpy(hdr + n + hl, "\r\n\r\n", 5);
    expect_refusal(f->port, hdr, strlen(hdr), "HTTP/1.1 431 Request Header Fields Too Large",
                   "RequestHeaderFieldsTooLarge");
    free(hdr);

    /* A 10 KB request target. */
    char *uri = malloc(12000);
    n = snprintf(uri, 64, "GET /");
    memset(uri + n, 'a', 10000);
    memcpy(uri + n + 10000, " HTTP/1.1\r\nHost: a\r\n\r\n", 23);
    expect_refusal(f->port, uri, strlen(uri), "HTTP/1.1 414 URI Too Long", "RequestUriTooLong");
    free(uri);

    /* A chunked body that grows past the limit. */
    int fd = dial(f->port);
    const char *head = "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    send_all(fd, head, strlen(head));
    char *chunk = malloc(1024 * 1024 + 32);
    n = snprintf(chunk, 32, "100000\r\n");
    memset(chunk + n, 'z', 1024 * 1024);
    memcpy(chunk + n + 1024 * 1024, "\r\n", 2);
    char out[4096];
    for (int i = 0; i < 6; i++)
        send_all(fd, chunk, (size_t)n + 1024 * 1024 + 2);
    size_t len;
    assert_true(recv_to_close(fd, out, sizeof(out), &len, 10000));
    assert_one_json_error(out, len, "HTTP/1.1 413 Payload Too Large", "RequestEntityTooLarge");
    free(chunk);
    close(fd);

    /* The server still answers normally afterwards. */
    roundtrip(f->port, "GET /q HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", out, sizeof(out));
    assert_non_null(strstr(out, "HTTP/1.1 200 OK"));
}

/* A target with a form feed (http_parser lets it through): refused, and (under ASan)
 * nothing reads the path that was being built when the byte was found. */
static void test_control_byte_in_target(void **state)
{
    (void)state;
    /* Its own server, with the access log on: the log line is what read the path. */
    kl_http_server_cfg cfg = {.workers = 1, .handler = handler, .access_log = true};
    kl_http_server *srv = kl_http_server_new(&cfg);
    assert_non_null(srv);
    int port = 0;
    assert_int_equal(kl_http_server_listen_tcp(srv, "127.0.0.1:0", NULL, KL_FACE_PUBLIC, &port), 0);
    assert_int_equal(kl_http_server_start(srv), 0);
    for (int i = 0; i < 2; i++) {
        const char *req =
            i ? "GET /x\tyz HTTP/1.1\r\nHost: a\r\n\r\n" : "GET /x\fyz HTTP/1.1\r\nHost: a\r\n\r\n";
        expect_refusal(port, req, strlen(req), "HTTP/1.1 400 Bad Request", "BadRequest");
    }
    kl_http_server_stop(srv, 1000);
    kl_http_server_free(srv);
}

/* The headers hook answers before the body is read: with Content-Length 4 MiB and no
 * body sent, the refusal arrives and the connection closes. */
static void test_hook_refuses_before_the_body(void **state)
{
    fixture *f = *state;
    char head[160];
    snprintf(head, sizeof(head), "POST /deny HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n",
             KL_MAX_BODY_BYTES);
    int fd = dial(f->port);
    send_all(fd, head, strlen(head));
    char out[4096];
    size_t len;
    bool closed = recv_to_close(fd, out, sizeof(out), &len, 5000);
    close(fd);
    assert_true(closed);
    assert_one_json_error(out, len, "HTTP/1.1 401 Unauthorized", "Denied");
    assert_non_null(strstr(out, "Connection: close\r\n"));

    /* Expect: 100-continue gets the refusal instead of "100 Continue". */
    const char *exp = "POST /deny HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                      "Expect: 100-continue\r\n\r\n";
    fd = dial(f->port);
    send_all(fd, exp, strlen(exp));
    closed = recv_to_close(fd, out, sizeof(out), &len, 5000);
    close(fd);
    assert_true(closed);
    assert_one_json_error(out, len, "HTTP/1.1 401 Unauthorized", "Denied");

    /* Without a body nothing is left unread: the connection serves the next request. */
    fd = dial(f->port);
    const char *two = "GET /deny HTTP/1.1\r\nHost: a\r\n\r\n"
                      "GET /q HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    send_all(fd, two, strlen(two));
    closed = recv_to_close(fd, out, sizeof(out), &len, 5000);
    close(fd);
    assert_true(closed);
    assert_true(strncmp(out, "HTTP/1.1 401 Unauthorized\r\n", 27) == 0);
    const char *second = strstr(out, "}HTTP/1.1 200 OK\r\n");
    assert_non_null(second);
    assert_non_null(strstr(second, "\r\n\r\n-|-|tcp"));
}

/* Heads announcing a full-size body are charged to the daemon-wide budget as soon as
 * they are accepted; the request that would pass it gets 503 ServerBusy with
 * Retry-After, and the budget comes back when those requests go. */
static void test_buffered_bytes_budget(void **state)
{
    fixture *f = *state;
    enum { HOLD = KL_MAX_BUFFERED_REQUEST_BYTES / (KL_MAX_BODY_BYTES + KL_REQUEST_BUDGET_STEP) };
    int fds[HOLD];
    char head[160];
    snprintf(head, sizeof(head),
             "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n"
             "Expect: 100-continue\r\n\r\n",
             KL_MAX_BODY_BYTES);
    char out[4096];
    for (int i = 0; i < HOLD; i++) {
        fds[i] = dial(f->port);
        send_all(fds[i], head, strlen(head));
        /* "100 Continue" means the head was accepted and its body charged. */
        recv_until(fds[i], out, sizeof(out), "\r\n\r\n", 1, 5000);
        if (strcmp(out, "HTTP/1.1 100 Continue\r\n\r\n") != 0)
            fail_msg("request %d of %d: %.300s", i, HOLD, out);
    }
    int fd = dial(f->port);
    send_all(fd, head, strlen(head));
    size_t len;
    assert_true(recv_to_close(fd, out, sizeof(out), &len, 5000));
    close(fd);
    assert_one_json_error(out, len, "HTTP/1.1 503 Service Unavailable", "ServerBusy");
    assert_non_null(strstr(out, "\r\nRetry-After: 1\r\n"));
    /* A request without a body needs little of the budget and is still served. */
    roundtrip(f->port, "GET /q HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", out, sizeof(out));
    assert_non_null(strstr(out, "HTTP/1.1 200 OK"));
    /* Finish one held request: its charge is given back when it is freed, after its
     * answer is written, so the answer is the event to wait for. */
    char *body = calloc(1, KL_MAX_BODY_BYTES);
    send_all(fds[0], body, KL_MAX_BODY_BYTES);
    free(body);
    char *big = malloc(KL_MAX_BODY_BYTES + 4096);
    recv_until(fds[0], big, KL_MAX_BODY_BYTES + 4096, "\r\n\r\n", 1, 10000);
    assert_true(strncmp(big, "HTTP/1.1 200 OK\r\n", 17) == 0);
    free(big);
    close(fds[0]);
    /* The request was freed (its charge given back) before its answer was written, so
     * one new full-size request fits now while the others are still held. */
    fd = dial(f->port);
    send_all(fd, head, strlen(head));
    recv_until(fd, out, sizeof(out), "\r\n\r\n", 1, 5000);
    close(fd);
    assert_string_equal(out, "HTTP/1.1 100 Continue\r\n\r\n");
    for (int i = 1; i < HOLD; i++)
        close(fds[i]);
}

static void test_trailers_are_not_headers(void **state)
{
    fixture *f = *state;
    char out[4096];
    /* A trailer must not add a header after the duplicate checks ran. */
    roundtrip(f->port,
              "POST /q HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n"
              "\r\n1\r\nx\r\n0\r\nX-Thing: smuggled\r\n\r\n",
              out, sizeof(out));
    /* Exactly one answer, the request's own (a trailer read as a new request would add
     * a second). */
    if (strncmp(out, "HTTP/1.1 200 OK\r\n", 17) != 0)
        fail_msg("got: %.400s", out);
    assert_null(strstr(out + 1, "HTTP/1.1 "));
    assert_non_null(strstr(out, "\r\n\r\n-|-|tcp"));
    assert_null(strstr(out, "smuggled"));
}

static void test_head_stream_has_no_body(void **state)
{
    fixture *f = *state;
    int fd = dial(f->port);
    const char *two = "HEAD /stream HTTP/1.1\r\nHost: a\r\n\r\n"
                      "GET /q HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    send_all(fd, two, strlen(two));
    char out[4096];
    recv_until(fd, out, sizeof(out), NULL, 0, 3000);
    close(fd);
    /* The second response starts right after the first one's headers. */
    char *second = strstr(out, "\r\n\r\nHTTP/1.1 200 OK");
    assert_non_null(second);
    assert_null(strstr(out, "data: 1"));
}

static void test_half_close_answers_pipelined(void **state)
{
    fixture *f = *state;
    /* Enough requests that their answers exceed the server's output budget, so some are
     * still unread in its input buffer when the half-close arrives. */
    enum { N = 6000 };
    int fd = dial(f->port);
    size_t cap = (size_t)N * 64, n = 0;
    char *req = malloc(cap);
    for (int i = 0; i < N; i++)
        n += (size_t)snprintf(req + n, cap - n, "GET /q?api-version=%d HTTP/1.1\r\nHost: a\r\n\r\n",
                              i);
    send_all(fd, req, n);
    free(req);
    shutdown(fd, SHUT_WR);
    size_t outcap = 4u << 20;
    char *out = malloc(outcap);
    recv_until(fd, out, outcap, "5999|-|tcp", 1, 5000);
    close(fd);
    int answers = 0;
    for (const char *p = out; (p = strstr(p, "HTTP/1.1 200 OK")); p++)
        answers++;
    free(out);
    assert_int_equal(answers, N);
}

static void test_unix_admin(void **state)
{
    fixture *f = *state;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", f->sock);
    assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    const char *req = "GET /q HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    send_all(fd, req, strlen(req));
    char out[4096];
    recv_until(fd, out, sizeof(out), NULL, 0, 3000);
    close(fd);
    /* The test runs as the same uid as the server, which the admin socket serves. */
    assert_non_null(strstr(out, "|admin"));
}

/* The client's address is the socket's peer, never a header. */
static void test_peer_addr(void **state)
{
    fixture *f = *state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in src = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.2", &src.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&src, sizeof(src)), 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    const char *req = "GET /peer HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 10.9.9.9\r\n"
                      "Connection: close\r\n\r\n";
    send_all(fd, req, strlen(req));
    char out[4096];
    recv_until(fd, out, sizeof(out), NULL, 0, 3000);
    close(fd);
    assert_non_null(strstr(out, "\r\n\r\npeer=127.0.0.2|9"));

    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", f->sock);
    assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    req = "GET /peer HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    send_all(fd, req, strlen(req));
    recv_until(fd, out, sizeof(out), NULL, 0, 3000);
    close(fd);
    assert_non_null(strstr(out, "\r\n\r\npeer=unix|4"));
}

int main(void)
{
    /* As in keylessd: a client that closes early must not kill the server. */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_and_headers),
        cmocka_unit_test(test_peer_addr),
        cmocka_unit_test(test_keepalive_and_pipelining),
        cmocka_unit_test(test_streaming),
        cmocka_unit_test(test_stream_big_write),
        cmocka_unit_test(test_stream_failure_is_visible),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_control_byte_in_target),
        cmocka_unit_test(test_hook_refuses_before_the_body),
        cmocka_unit_test(test_buffered_bytes_budget),
        cmocka_unit_test(test_trailers_are_not_headers),
        cmocka_unit_test(test_head_stream_has_no_body),
        cmocka_unit_test(test_half_close_answers_pipelined),
        cmocka_unit_test(test_unix_admin),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
