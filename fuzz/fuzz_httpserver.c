/* Fuzz target for the whole HTTP server (http/server.h), driven over a real socket: one
 * server with one worker runs for the whole process; each input is sent as the raw bytes of
 * one connection, and what comes back must be well-formed HTTP/1.1 responses in which every
 * refusal is a JSON {"error":{"code","message"}} body. The handler uses every request
 * accessor, answers synchronously, asynchronously and streamed, and checks the promises
 * the server makes about the requests it hands over. A sanitizer report on the server's
 * threads aborts the process like one on the fuzzing thread. fuzz_http.c fuzzes the
 * request parser alone, in process (much faster); this one covers the connection and the
 * answers around it. */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <http_parser.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/metrics.h"
#include "http/server.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_httpserver: check failed at line %d: %s\n", __LINE__, #cond);    \
            __builtin_trap();                                                                      \
        }                                                                                          \
    } while (0)

#define READ_IDLE_MS 200                /* the server closes at once after a refusal */
#define MAX_RESPONSE (16 * 1024 * 1024) /* more than any input can make the server send */
#define MAX_TRACKED 4096                /* requests per input whose method we remember */
#define ERROR_PREFIX "{\"error\":{\"code\":"

/* libFuzzer gives the target no context argument, so the one server lives here. */
static struct {
    kl_http_server *server;
    kl_metrics *metrics;
    int port;
    bool dump; /* KL_FUZZ_HTTPSERVER_DUMP set: print each exchange (for reading a reproducer) */
} fz;

/* ------------------------------------------------------------------ the handler */

typedef struct async_op {
    kl_http_req *req;
    struct event *ev;
    int chunks_left; /* streaming: chunks still to write */
    bool stream;
} async_op;

static void op_free(async_op *op)
{
    event_free(op->ev);
    free(op);
}

static void op_abort(void *arg)
{
    op_free(arg);
}

static void op_drain(void *arg)
{
    (void)arg;
}

static void op_step(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    async_op *op = arg;
    kl_http_req *r = op->req;
    if (op->stream && op->chunks_left > 0) {
        op->chunks_left--;
        CHECK(kl_http_stream_write(r, "data: {\"n\":1}\n\n", 15) == 0);
        (void)kl_http_stream_pending(r);
        event_active(op->ev, EV_TIMEOUT, 1);
        return;
    }
    bool stream = op->stream;
    kl_http_req_on_abort(r, NULL, NULL);
    op_free(op);
    if (stream) {
        kl_http_stream_end(r);
        return;
    }
    size_t len;
    const unsigned char *body = kl_http_req_body(r, &len);
    kl_http_respond(r, 202, "application/octet-stream", body, len);
}

/* Answers later from the worker's event loop: at once (next loop pass) or after delay_ms,
 * which lets the client's close usually win and exercises the abort path. */
static void answer_async(kl_http_req *r, bool stream, int chunks, int delay_ms)
{
    async_op *op = calloc(1, sizeof(*op));
    if (!op) {
        kl_http_respond_error(r, 500, "InternalServerError", "Out of memory.");
        return;
    }
    op->req = r;
    op->stream = stream;
    op->chunks_left = chunks;
    op->ev = event_new(kl_http_req_base(r), -1, 0, op_step, op);
    if (!op->ev) {
        free(op);
        kl_http_respond_error(r, 500, "InternalServerError", "Out of memory.");
        return;
    }
    kl_http_req_on_abort(r, op_abort, op);
    if (stream) {
        CHECK(kl_http_stream_begin(r, 200, "text/event-stream") == 0);
        CHECK(kl_http_stream_begin(r, 200, "text/event-stream") != 0); /* only once */
        kl_http_req_on_drain(r, op_drain, op);
    }
    if (delay_ms > 0) {
        struct timeval tv = {0, delay_ms * 1000};
        evtimer_add(op->ev, &tv);
    } else {
        event_active(op->ev, EV_TIMEOUT, 1);
    }
}

/* What the server promises about every request it hands to a handler. */
static void check_request(kl_http_req *r)
{
    const char *path = kl_http_req_path(r);
    size_t plen = strlen(path);
    CHECK(plen >= 1 && path[0] == '/');
    CHECK(strstr(path, "//") == NULL);
    CHECK(plen == 1 || path[plen - 1] != '/');
    for (size_t i = 0; i < plen; i++)
        CHECK((unsigned char)path[i] > 0x20 && (unsigned char)path[i] != 0x7f);
    CHECK(strchr(path, '?') == NULL);
    CHECK(strchr(kl_http_req_query(r), '#') == NULL);
    CHECK(kl_http_req_method(r)[0] != '\0');
    CHECK(strlen(kl_http_req_id(r)) == 36);
    CHECK(kl_http_req_face(r) == KL_FACE_PUBLIC);
    CHECK(!kl_http_req_is_admin(r));
    CHECK(kl_http_req_peer_uid(r) == -1);
    CHECK(kl_http_req_thread_state(r) == NULL);
    CHECK(kl_http_req_base(r) != NULL);
    CHECK(kl_http_req_header_count(r, "host") <= 1);
    CHECK(kl_http_req_header_count(r, "content-length") <= 1);
    CHECK(kl_http_req_header_count(r, "transfer-encoding") <= 1);
    /* Whitespace between a field name and its colon must be refused (RFC 9112, 5.1):
     * http_parser still reads such a name as the framing header it resembles. */
    CHECK(kl_http_req_header(r, "transfer-encoding ") == NULL);
    CHECK(kl_http_req_header(r, "content-length ") == NULL);
    CHECK(kl_http_req_header(r, "host ") == NULL);

    size_t blen;
    const unsigned char *body = kl_http_req_body(r, &blen);
    CHECK(body != NULL);
    const char *cl = kl_http_req_header(r, "content-length");
    if (cl && kl_http_req_header(r, "transfer-encoding") == NULL) {
        char *end = NULL;
        unsigned long long v = strtoull(cl, &end, 10);
        if (end != cl && *end == '\0' && cl[0] >= '0' && cl[0] <= '9')
            CHECK(v == blen);
    }
}

/* The headers hook, as the gateway's: paths under /deny are refused from the head
 * (bodies unread, like a wrong api-key); the rest go on to the handler. */
static kl_http_verdict on_headers(kl_http_req *r, void *arg)
{
    (void)arg;
    const char *path = kl_http_req_path(r);
    CHECK(path[0] == '/');
    size_t blen;
    kl_http_req_body(r, &blen);
    CHECK(blen == 0); /* nothing of the body is read yet */
    if (strncmp(path, "/deny", 5) != 0)
        return KL_HTTP_CONTINUE;
    kl_http_respond_error(r, 401, "401", "Access denied.");
    return KL_HTTP_ANSWERED;
}

static void handler(kl_http_req *r, void *arg)
{
    (void)arg;
    check_request(r);
    const char *path = kl_http_req_path(r);
    const char *x = kl_http_req_query_param(r, "x");
    const char *n = kl_http_req_query_param(r, "n");
    const char *ua = kl_http_req_header(r, "user-agent");
    const char *auth = kl_http_req_header(r, "authorization");
    kl_http_req_set_route(r, (kl_route)(strlen(path) % KL_ROUTE__COUNT));
    if (auth)
        kl_http_req_auth_failed(r, (kl_auth_fail)(strlen(auth) % KL_AUTHFAIL__COUNT));
    kl_http_req_log_field(r, "x", x);
    /* Decoded query values and header values may hold CR/LF; the server must drop them. */
    if (x)
        kl_http_set_header(r, "x-echo-x", x);
    if (ua)
        kl_http_set_header(r, "x-echo-ua", ua);
    kl_http_set_header(r, "Content-Length", "1"); /* the server's own: ignored */
    char count[16];
    snprintf(count, sizeof(count), "%d", kl_http_req_header_count(r, "x-dup"));
    kl_http_set_header(r, "x-dup-count", count);

    size_t blen;
    const unsigned char *body = kl_http_req_body(r, &blen);
    int chunks = n ? (int)(strtol(n, NULL, 10) & 7) : 2;
    if (strcmp(path, "/error") == 0) {
        kl_http_respond_error(r, 404, "NotFound", "No such thing.");
    } else if (strcmp(path, "/json") == 0) {
        /* Not valid UTF-8 makes json_stringn fail: the server answers its own 500. */
        kl_http_respond_json(r, 200, json_pack("{s:s%}", "body", (const char *)body, blen));
    } else if (strcmp(path, "/metrics") == 0) {
        kl_buf out;
        kl_buf_init(&out, 1024 * 1024);
        if (kl_metrics_render(fz.metrics, &out) == 0)
            kl_http_respond(r, 200, "text/plain", out.data ? out.data : "", out.len);
        else
            kl_http_respond_error(r, 500, "InternalServerError", "Metrics failed.");
        kl_buf_free(&out);
    } else if (strcmp(path, "/async") == 0) {
        answer_async(r, false, 0, 0);
    } else if (strcmp(path, "/slow") == 0) {
        answer_async(r, false, 0, 2);
    } else if (strcmp(path, "/stream") == 0) {
        answer_async(r, true, chunks, 0);
    } else if (strcmp(path, "/stream/slow") == 0) {
        answer_async(r, true, chunks, 2);
    } else {
        kl_http_respond(r, 200, "application/octet-stream", body, blen);
    }
}

/* ------------------------------------------------------- checking the responses */

static const char *const allowed_headers[] = {
    "date",           "content-type",      "x-ms-request-id", "apim-request-id",
    "content-length", "transfer-encoding", "connection",      "x-echo-x",
    "x-echo-ua",      "x-dup-count",
};

static bool name_is(const char *p, size_t n, const char *name)
{
    return strlen(name) == n && strncasecmp(p, name, n) == 0;
}

static bool token_char(unsigned char ch)
{
    return ch > 0x20 && ch < 0x7f && !strchr("()<>@,;:\\\"/[]?={}", ch);
}

typedef struct resp_head {
    int status;
    long long content_length; /* -1 if absent */
    bool chunked, close, json;
} resp_head;

/* Parses the header block p[0..n) (status line included, final CRLFCRLF excluded). */
static void parse_head(const char *p, size_t n, resp_head *h)
{
    memset(h, 0, sizeof(*h));
    h->content_length = -1;
    CHECK(n >= 12 && memcmp(p, "HTTP/1.1 ", 9) == 0);
    for (int i = 9; i < 12; i++)
        CHECK(p[i] >= '0' && p[i] <= '9');
    h->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    CHECK(h->status >= 100 && h->status <= 599);
    const char *line = memchr(p, '\n', n);
    CHECK(n == 12 || p[12] == ' ' || p[12] == '\r');
    while (line && (size_t)(line + 1 - p) < n) {
        line++;
        const char *end = memmem(line, n - (size_t)(line - p), "\r\n", 2);
        size_t len = end ? (size_t)(end - line) : n - (size_t)(line - p);
        CHECK(memchr(line, '\n', len) == NULL && memchr(line, '\r', len) == NULL);
        const char *colon = memchr(line, ':', len);
        CHECK(colon && colon > line);
        size_t nl = (size_t)(colon - line);
        for (size_t i = 0; i < nl; i++)
            CHECK(token_char((unsigned char)line[i]));
        bool known = false;
        for (size_t i = 0; i < sizeof(allowed_headers) / sizeof(allowed_headers[0]); i++)
            known = known || name_is(line, nl, allowed_headers[i]);
        CHECK(known); /* anything else was smuggled in through a handler's value */
        const char *v = colon + 1;
        size_t vl = len - nl - 1;
        while (vl && *v == ' ') {
            v++;
            vl--;
        }
        if (name_is(line, nl, "content-length")) {
            CHECK(h->content_length < 0 && vl > 0 && vl < 12);
            long long cl = 0;
            for (size_t i = 0; i < vl; i++) {
                CHECK(v[i] >= '0' && v[i] <= '9');
                cl = cl * 10 + (v[i] - '0');
            }
            h->content_length = cl;
        } else if (name_is(line, nl, "transfer-encoding")) {
            CHECK(!h->chunked && vl == 7 && strncasecmp(v, "chunked", 7) == 0);
            h->chunked = true;
        } else if (name_is(line, nl, "connection")) {
            h->close = vl == 5 && strncasecmp(v, "close", 5) == 0;
        } else if (name_is(line, nl, "content-type")) {
            h->json = vl >= 16 && strncasecmp(v, "application/json", 16) == 0;
        }
        line = end ? end + 1 : NULL;
    }
}

/* A refusal's body (possibly cut short by the connection closing) must be the JSON error
 * shape; when it is all there it must parse, with string code and message. */
static void check_error_body(const resp_head *h, const char *body, size_t len, bool complete)
{
    CHECK(h->json);
    size_t pl = strlen(ERROR_PREFIX);
    CHECK(memcmp(body, ERROR_PREFIX, len < pl ? len : pl) == 0);
    if (!complete)
        return;
    json_error_t jerr;
    json_t *j = json_loadb(body, len, 0, &jerr);
    CHECK(j != NULL);
    json_t *e = json_object_get(j, "error");
    CHECK(json_is_string(json_object_get(e, "code")));
    CHECK(json_is_string(json_object_get(e, "message")));
    json_decref(j);
}

/* Decodes a chunked body in place of *pos; returns false if the data ends first. */
static bool read_chunked(const char *b, size_t n, size_t *pos, kl_buf *out)
{
    for (;;) {
        const char *p = b + *pos;
        const char *eol = memmem(p, n - *pos, "\r\n", 2);
        if (!eol)
            return false;
        size_t sz = 0;
        CHECK(eol > p && eol - p <= 8);
        for (const char *q = p; q < eol; q++) {
            int d = (*q >= '0' && *q <= '9')   ? *q - '0'
                    : (*q >= 'a' && *q <= 'f') ? *q - 'a' + 10
                                               : -1;
            CHECK(d >= 0);
            sz = sz * 16 + (size_t)d;
        }
        *pos = (size_t)(eol - b) + 2;
        if (n - *pos < sz + 2)
            return false;
        CHECK(kl_buf_append(out, b + *pos, sz) == 0);
        CHECK(memcmp(b + *pos + sz, "\r\n", 2) == 0);
        *pos += sz + 2;
        if (sz == 0)
            return true;
    }
}

/* Walks the responses in b[0..n). methods[i] is the method of the i-th request the input
 * holds (as http_parser reads it), needed to know which responses carry no body. The
 * server may close early (refusal, client gone), so the last response may be cut short. */
static void check_responses(const char *b, size_t n, const unsigned char *methods, size_t nmethods)
{
    size_t pos = 0, idx = 0;
    bool closed = false;
    while (pos < n) {
        CHECK(!closed); /* nothing may follow a "Connection: close" response */
        size_t rem = n - pos;
        const char *p = b + pos;
        if (rem < 9) {
            CHECK(memcmp(p, "HTTP/1.1 ", rem) == 0);
            return;
        }
        CHECK(memcmp(p, "HTTP/1.1 ", 9) == 0);
        const char *eoh = memmem(p, rem, "\r\n\r\n", 4);
        if (!eoh)
            return;
        resp_head h;
        parse_head(p, (size_t)(eoh - p), &h);
        pos = (size_t)(eoh - b) + 4;
        if (h.status < 200) {
            CHECK(h.status == 100 && h.content_length < 0 && !h.chunked);
            continue;
        }
        CHECK((h.content_length >= 0) != h.chunked);
        closed = h.close;
        bool head = idx < nmethods && methods[idx] == HTTP_HEAD;
        idx++;
        if (head && (!h.close || pos == n)) {
            /* A HEAD answer carries the length of the body it leaves out. */
            continue;
        }
        bool ok = h.status < 300;
        if (h.chunked) {
            kl_buf body;
            kl_buf_init(&body, MAX_RESPONSE);
            bool complete = read_chunked(b, n, &pos, &body);
            if (!ok)
                check_error_body(&h, body.data ? body.data : "", body.len, complete);
            kl_buf_free(&body);
            if (!complete)
                return;
            continue;
        }
        size_t want = (size_t)h.content_length;
        size_t have = n - pos < want ? n - pos : want;
        if (!ok)
            check_error_body(&h, b + pos, have, have == want);
        if (have < want)
            return;
        pos += want;
    }
}

/* ------------------------------------------------------------------ the client */

static int on_req_headers(http_parser *p)
{
    kl_buf *methods = p->data;
    if (methods->len < MAX_TRACKED) {
        unsigned char m = (unsigned char)p->method;
        kl_buf_append(methods, &m, 1);
    }
    return 0;
}

/* Reads as http_parser (the server's own framing library) would: the method of each
 * request in the input, in order. */
static void request_methods(const uint8_t *data, size_t size, kl_buf *methods)
{
    http_parser_settings s;
    memset(&s, 0, sizeof(s));
    s.on_headers_complete = on_req_headers;
    http_parser p;
    http_parser_init(&p, HTTP_REQUEST);
    p.data = methods;
    http_parser_execute(&p, &s, (const char *)data, size);
}

static int connect_server(void)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)fz.port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* Thousands of connections a second: a port still held by the kernel is retried. */
    for (int attempt = 0; attempt < 200; attempt++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -1;
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
            return fd;
        }
        int err = errno;
        close(fd);
        if (err != EADDRNOTAVAIL && err != EAGAIN && err != ECONNREFUSED && err != EINTR) {
            fprintf(stderr, "fuzz_httpserver: connect: %s\n", strerror(err));
            return -1;
        }
        usleep(10000);
    }
    fprintf(stderr, "fuzz_httpserver: connect: no local port free\n");
    return -1;
}

/* Closes with a reset, so neither side keeps the connection in TIME_WAIT. */
static void close_reset(int fd)
{
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
}

/* Reads what is available into out; returns false once the peer has closed. */
static bool drain_socket(int fd, kl_buf *out)
{
    char tmp[65536];
    for (;;) {
        ssize_t k = recv(fd, tmp, sizeof(tmp), 0);
        if (k > 0) {
            CHECK(kl_buf_append(out, tmp, (size_t)k) == 0);
            continue;
        }
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        if (k < 0 && errno == EINTR)
            continue;
        return false; /* EOF, or reset after the server closed with input unread */
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    signal(SIGPIPE, SIG_IGN);
    fz.dump = getenv("KL_FUZZ_HTTPSERVER_DUMP") != NULL;
    kl_log_set_level(KL_LOG_ERROR);
    fz.metrics = kl_metrics_new();
    kl_http_server_cfg cfg = {
        .workers = 1,
        .handler = handler,
        .on_headers = on_headers,
        .metrics = fz.metrics,
        .access_log = true,
    };
    fz.server = kl_http_server_new(&cfg);
    CHECK(fz.server != NULL);
    CHECK(kl_http_server_listen_tcp(fz.server, "127.0.0.1:0", NULL, KL_FACE_PUBLIC, &fz.port) == 0);
    CHECK(kl_http_server_start(fz.server) == 0);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kl_buf resp, methods;
    kl_buf_init(&resp, MAX_RESPONSE);
    kl_buf_init(&methods, MAX_TRACKED);
    int fd = connect_server();
    CHECK(fd >= 0);

    /* Send everything while reading, so neither side can stall on full buffers. */
    size_t sent = 0;
    bool open = true;
    while (sent < size && open) {
        struct pollfd pfd = {fd, POLLIN | POLLOUT, 0};
        if (poll(&pfd, 1, READ_IDLE_MS) <= 0)
            break;
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR))
            open = drain_socket(fd, &resp);
        if (open && (pfd.revents & POLLOUT)) {
            ssize_t k = send(fd, data + sent, size - sent, MSG_NOSIGNAL);
            if (k > 0)
                sent += (size_t)k;
            else if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                break; /* the server refused and closed before taking it all */
        }
    }
    shutdown(fd, SHUT_WR);
    while (open) {
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, READ_IDLE_MS) <= 0)
            break;
        open = drain_socket(fd, &resp);
    }
    close_reset(fd);

    if (fz.dump)
        fprintf(stderr, "--- request (%zu bytes, %zu sent)\n%.*s\n--- response (%zu bytes)\n%.*s\n",
                size, sent, (int)size, (const char *)data, resp.len, (int)resp.len,
                resp.data ? resp.data : "");
    request_methods(data, size, &methods);
    check_responses(resp.data ? resp.data : "", resp.len, (const unsigned char *)methods.data,
                    methods.len);
    kl_buf_free(&methods);
    kl_buf_free(&resp);
    return 0;
}
