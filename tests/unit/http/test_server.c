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
    } else if (!strcmp(path, "/q")) {
        const char *v = kl_http_req_query_param(r, "api-version");
        const char *h = kl_http_req_header(r, "X-Thing");
        char out[256];
        snprintf(out, sizeof(out), "%s|%s|%s", v ? v : "-", h ? h : "-",
                 kl_http_req_is_admin(r) ? "admin" : "tcp");
        kl_http_respond(r, 200, "text/plain", out, strlen(out));
    } else {
        kl_http_respond_error(r, 404, "NotFound", "nope");
    }
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    kl_http_server_cfg cfg = {.workers = 2, .handler = handler};
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

static void expect_refusal(int port, const char *req, size_t reqlen, const char *status,
                           const char *code)
{
    int fd = dial(port);
    send_all(fd, req, reqlen);
    char out[8192];
    recv_until(fd, out, sizeof(out), NULL, 0, 3000);
    close(fd);
    if (!strstr(out, status) || !strstr(out, code) ||
        !strstr(out, "Content-Type: application/json") || !strstr(out, "{\"error\":{\"code\":"))
        fail_msg("expected %s %s, got: %.300s", status, code, out);
}

static void test_refusals(void **state)
{
    fixture *f = *state;
    const char *nocolon = "GET /q HTTP/1.1\r\nHost: a\r\nthis is not a header\r\n\r\n";
    expect_refusal(f->port, nocolon, strlen(nocolon), "HTTP/1.1 400", "BadRequest");
    const char *clte = "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    expect_refusal(f->port, clte, strlen(clte), "HTTP/1.1 400", "BadRequest");
    const char *twocl = "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                        "Content-Length: 4\r\n\r\nabcd";
    expect_refusal(f->port, twocl, strlen(twocl), "HTTP/1.1 400", "BadRequest");
    /* RFC 9112: a transfer coding the server does not understand is a 501. */
    const char *te = "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n";
    expect_refusal(f->port, te, strlen(te), "HTTP/1.1 501", "NotImplemented");
    const char *te2 = "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                      "1\r\nx\r\n0\r\n\r\n";
    expect_refusal(f->port, te2, strlen(te2), "HTTP/1.1 501", "NotImplemented");
    /* Whitespace before the colon (a smuggling shape lenient parsers accept). */
    const char *sp = "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n"
                     "5\r\nhello\r\n0\r\n\r\n";
    expect_refusal(f->port, sp, strlen(sp), "HTTP/1.1 400", "BadRequest");
    const char *h09 = "GET /q\r\n\r\n";
    int fd09 = dial(f->port);
    send_all(fd09, h09, strlen(h09));
    char out09[1024];
    recv_until(fd09, out09, sizeof(out09), NULL, 0, 2000);
    close(fd09);
    assert_null(strstr(out09, "200 OK"));
    char big[256];
    snprintf(big, sizeof(big), "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n",
             KL_MAX_BODY_BYTES + 1);
    expect_refusal(f->port, big, strlen(big), "HTTP/1.1 413", "RequestEntityTooLarge");

    /* 100 KB of headers. */
    size_t hl = 100 * 1024;
    char *hdr = malloc(hl + 256);
    int n = snprintf(hdr, 256, "GET /q HTTP/1.1\r\nHost: a\r\nX-Big: ");
    memset(hdr + n, 'a', hl);
    memcpy(hdr + n + hl, "\r\n\r\n", 5);
    expect_refusal(f->port, hdr, strlen(hdr), "HTTP/1.1 431", "RequestHeaderFieldsTooLarge");
    free(hdr);

    /* A 10 KB request target. */
    char *uri = malloc(12000);
    n = snprintf(uri, 64, "GET /");
    memset(uri + n, 'a', 10000);
    memcpy(uri + n + 10000, " HTTP/1.1\r\nHost: a\r\n\r\n", 23);
    expect_refusal(f->port, uri, strlen(uri), "HTTP/1.1 414", "RequestUriTooLong");
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
    recv_until(fd, out, sizeof(out), NULL, 0, 3000);
    assert_non_null(strstr(out, "HTTP/1.1 413"));
    free(chunk);
    close(fd);

    /* The server still answers normally afterwards. */
    roundtrip(f->port, "GET /q HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", out, sizeof(out));
    assert_non_null(strstr(out, "HTTP/1.1 200 OK"));
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
    assert_non_null(strstr(out, "HTTP/1.1 200 OK"));
    assert_non_null(strstr(out, "|-|tcp"));
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_and_headers),
        cmocka_unit_test(test_keepalive_and_pipelining),
        cmocka_unit_test(test_streaming),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_trailers_are_not_headers),
        cmocka_unit_test(test_head_stream_has_no_body),
        cmocka_unit_test(test_half_close_answers_pipelined),
        cmocka_unit_test(test_unix_admin),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
