/* HTTP/1.1 server for every face of keylessd: connection handling, TLS, framing with
 * http_parser, limits and timeouts, responses (whole or streamed) and graceful stop.
 * Threads: N workers serve the TCP listeners (one event base each, SO_REUSEPORT), one
 * control thread serves the Unix-socket listeners (the control plane may block there). */
#include "http/server.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <event2/util.h>
#include <http_parser.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/util.h"

#define MAX_LISTENERS KL_MAX_HTTP_LISTENERS
#define MAX_WORKERS 64
#define LINGER_MS 2000                      /* how long a refused client may keep sending */
#define LINGER_MAX_BYTES (16 * 1024 * 1024) /* ...and how much of it we read and drop */
#define STREAM_FLUSH_BYTES 65536 /* streamed bytes handed to the socket at once, not per turn */
#define STREAM_END "0\r\n\r\n"   /* the terminating chunk of a streamed answer */

typedef struct listener_spec {
    bool is_unix;
    bool is_private; /* --private-listen: the account's public network rules do not apply */
    kl_face face;
    SSL_CTX *tls;         /* referenced; NULL for plain */
    int fds[MAX_WORKERS]; /* TCP: one bound socket per worker; Unix: fds[0] */
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
} listener_spec;

typedef struct thread_ctx {
    kl_http_server *server;
    int index; /* worker index, or -1 for the control thread */
    struct event_base *base;
    pthread_t thread;
    bool started;
    struct evconnlistener *listeners[MAX_LISTENERS];
    struct accept_arg {
        struct thread_ctx *t;
        struct listener_spec *ls;
    } accept_args[MAX_LISTENERS];
    void *state;            /* from cfg.thread_init */
    struct event *stop_ev;  /* fired by kl_http_server_stop */
    struct event *grace_ev; /* hard deadline for in-flight requests */
    bool draining;
    int nconns;
    struct conn *conns;        /* intrusive list, for draining */
    char date[64];             /* cached Date header value */
    unsigned char id_seed[16]; /* random per thread; request ids count up from it */
    uint64_t id_count;
    int64_t date_second;
} thread_ctx;

struct kl_http_server {
    kl_http_server_cfg cfg;
    listener_spec listeners[MAX_LISTENERS];
    int nlisteners;
    thread_ctx *workers;
    thread_ctx control;
    int grace_ms;
    atomic_bool stopping;
    /* Bytes of request heads and bodies held by all workers together, as charged by
     * budget_take (bounded by KL_MAX_BUFFERED_REQUEST_BYTES). */
    atomic_size_t buffered;
};

typedef enum conn_state {
    ST_IDLE = 0, /* waiting for the first byte of a request */
    ST_READING,  /* parsing a request */
    ST_HANDLING, /* the handler owns the request */
    ST_CLOSING,  /* flushing the last response, then close */
    ST_LINGER    /* response sent after a refusal: discard input briefly, then close */
} conn_state;

typedef struct header {
    size_t name_off, name_len, val_off, val_len;
} header;

struct kl_http_req {
    struct conn *conn;
    char method[16];
    kl_buf raw; /* url, then header names and values, back to back (secret: api-key) */
    size_t url_len;
    header headers[KL_MAX_HEADER_COUNT];
    int nheaders;
    bool last_was_value;
    bool headers_done;         /* after this, header callbacks carry trailers: ignored */
    char *path;                /* normalised, owned */
    char *query;               /* owned, "" if none */
    struct evkeyvalq *qparams; /* lazily parsed */
    kl_buf body;
    /* Bytes taken from the server's request budget for raw and for body; given back
     * when the request is freed. */
    size_t raw_charged, body_charged;
    char id[KL_UUID_LEN + 1];
    uint64_t start_us; /* monotonic, for latency */
    kl_route route;
    bool responded; /* status line has been written */
    bool streaming;
    bool finished;
    /* A streamed byte could not be queued: the answer is incomplete, so it can only end
     * by closing the connection without the terminating chunk (never a clean end). */
    bool stream_failed;
    int status;
    json_t *log_fields;
    /* response headers queued by kl_http_set_header */
    kl_buf resp_headers;
    /* Streamed output not yet handed to the bufferevent: what a handler streams within
     * one loop iteration goes out as one piece (one TLS record, one write). Together with
     * the bufferevent's output it never holds more than KL_MAX_OUTPUT_BUFFER (plus the
     * terminating chunk): see kl_http_stream_write. */
    kl_buf pend;
    void (*drain_cb)(void *);
    void *drain_arg;
    void (*abort_cb)(void *);
    void *abort_arg;
    int auth_fail; /* -1 or kl_auth_fail */
};

typedef struct conn {
    thread_ctx *t;
    listener_spec *ls;
    struct bufferevent *bev;
    http_parser parser;
    conn_state state;
    kl_http_req *req;
    struct event *timer;
    struct event *resume; /* resumes parsing of pipelined input, without recursion */
    struct event *flush;  /* moves a streaming answer's pending bytes to the socket */
    long peer_uid;
    struct sockaddr_storage peer; /* TCP: the client's address (ss_family 0 when unknown) */
    bool admin_ok;
    bool keep_alive;
    bool linger;      /* refused with input unread: close lingeringly */
    bool peer_eof;    /* the client half-closed: answer what is buffered, then close */
    bool head_done;   /* the parser paused after a request's headers: vet them */
    bool expect_100;  /* the client waits for "100 Continue" before sending its body */
    size_t lingered;  /* bytes discarded while lingering */
    int error_status; /* set by parser callbacks to refuse a request */
    const char *error_code;
    const char *error_msg;
    struct conn *next, *prev;
} conn;

static http_parser_settings parser_settings;

static void access_log(kl_http_req *r, bool aborted);

/* ------------------------------------------------------------------------ helpers */

static const char *reason_phrase(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    }
    return "Unknown";
}

static const char *date_header(thread_ctx *t)
{
    int64_t now = kl_now_unix();
    if (now != t->date_second) {
        time_t tt = (time_t)now;
        struct tm tm;
        gmtime_r(&tt, &tm);
        strftime(t->date, sizeof(t->date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        t->date_second = now;
    }
    return t->date;
}

static void free_ref(const void *data, size_t len, void *arg)
{
    (void)len;
    (void)arg;
    free((void *)data);
}

static void timer_set(conn *c, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(c->timer, &tv);
}

/* Drops n bytes from the front of a connection's input after wiping them: they are a
 * request's head (api-key headers) or body, and libevent frees its chunks unwiped. */
static void drain_wipe(struct evbuffer *in, size_t n)
{
    struct evbuffer_ptr pos;
    struct evbuffer_iovec v[8];
    size_t left = n;
    evbuffer_ptr_set(in, &pos, 0, EVBUFFER_PTR_SET);
    while (left > 0) {
        int got = evbuffer_peek(in, (ev_ssize_t)left, &pos, v, 8);
        if (got <= 0)
            break;
        size_t done = 0;
        for (int i = 0; i < got && i < 8 && done < left; i++) {
            size_t k = v[i].iov_len < left - done ? v[i].iov_len : left - done;
            OPENSSL_cleanse(v[i].iov_base, k);
            done += k;
        }
        left -= done;
        if (left && evbuffer_ptr_set(in, &pos, done, EVBUFFER_PTR_ADD) != 0)
            break;
    }
    evbuffer_drain(in, n);
}

/* Takes n more bytes from the daemon-wide request budget, in steps of
 * KL_REQUEST_BUDGET_STEP so that a request touches the shared counter a few times, not
 * once per header. *charged grows to cover need; false if the budget is spent. */
static bool budget_take(conn *c, size_t *charged, size_t need)
{
    if (need <= *charged)
        return true;
    size_t add = need - *charged;
    add = (add + KL_REQUEST_BUDGET_STEP - 1) / KL_REQUEST_BUDGET_STEP * KL_REQUEST_BUDGET_STEP;
    atomic_size_t *b = &c->t->server->buffered;
    size_t before = atomic_fetch_add(b, add);
    if (before > KL_MAX_BUFFERED_REQUEST_BYTES || add > KL_MAX_BUFFERED_REQUEST_BYTES - before) {
        atomic_fetch_sub(b, add);
        return false;
    }
    *charged += add;
    return true;
}

static int server_busy(conn *c)
{
    c->error_status = 503;
    c->error_code = "ServerBusy";
    c->error_msg = "The server is receiving too many requests at once; retry shortly.";
    return -1;
}

/* ------------------------------------------------------------------- request life */

/* Request ids only need to be unique (they correlate logs with answers), not secret:
 * a random per-thread GUID with a counter added to its low half, formatted without
 * printf. Cheaper than the CSPRNG and vfprintf on every request. */
static void request_id(thread_ctx *t, char out[KL_UUID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    memcpy(b, t->id_seed, sizeof(b));
    uint64_t n = ++t->id_count;
    unsigned carry = 0;
    for (int i = 15; i >= 8; i--) {
        unsigned sum = (unsigned)b[i] + (unsigned)(n & 0xff) + carry;
        b[i] = (unsigned char)sum;
        carry = sum >> 8;
        n >>= 8;
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}

static kl_http_req *req_new(conn *c)
{
    kl_http_req *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->conn = c;
    kl_buf_init_secret(&r->raw, KL_MAX_REQUEST_LINE + KL_MAX_HEADER_BYTES);
    kl_buf_init_secret(&r->body, KL_MAX_BODY_BYTES); /* bodies may hold secrets (forms) */
    kl_buf_init(&r->resp_headers, KL_MAX_HEADER_BYTES);
    kl_buf_init(&r->pend, KL_MAX_OUTPUT_BUFFER + sizeof(STREAM_END) - 1);
    r->start_us = kl_now_mono_us();
    r->route = KL_ROUTE_OTHER;
    r->auth_fail = -1;
    request_id(c->t, r->id);
    return r;
}

static void req_free(kl_http_req *r)
{
    if (!r)
        return;
    kl_buf_free(&r->raw); /* secret buffers: wiped, then freed */
    kl_buf_free(&r->body);
    if (r->raw_charged + r->body_charged)
        atomic_fetch_sub(&r->conn->t->server->buffered, r->raw_charged + r->body_charged);
    kl_buf_free(&r->resp_headers);
    kl_buf_free(&r->pend);
    free(r->path);
    free(r->query);
    if (r->qparams) {
        evhttp_clear_headers(r->qparams);
        free(r->qparams);
    }
    json_decref(r->log_fields);
    free(r);
}

static void conn_free(conn *c)
{
    thread_ctx *t = c->t;
    if (c->req) {
        kl_http_req *r = c->req;
        c->req = NULL;
        /* An unfinished request whose handler went asynchronous learns of the abort. */
        if (!r->finished && r->abort_cb)
            r->abort_cb(r->abort_arg);
        /* A request that reached a handler but never finished still gets its log line. */
        if (!r->finished && r->path && r->method[0] && c->t->server->cfg.access_log)
            access_log(r, true);
        req_free(r);
    }
    if (c->timer)
        event_free(c->timer);
    if (c->resume)
        event_free(c->resume);
    if (c->flush)
        event_free(c->flush);
    if (c->bev)
        bufferevent_free(c->bev);
    if (c->prev)
        c->prev->next = c->next;
    else
        t->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    t->nconns--;
    kl_metrics_connection(t->server->cfg.metrics, 0);
    free(c);
    if (t->draining && t->nconns == 0)
        event_base_loopbreak(t->base);
}

static const char *route_name(kl_route r)
{
    static const char *const names[KL_ROUTE__COUNT] = {
        "other", "chat",     "completions", "embeddings", "models",
        "mgmt",  "identity", "sts",         "health",     "metrics"};
    return (unsigned)r < KL_ROUTE__COUNT ? names[r] : "other";
}

/* After a refusal the client may still be sending the request we refused. Closing at
 * once with unread bytes makes the kernel send a reset, which can destroy the response
 * before the client reads it; so half-close, discard input for a bounded time, then
 * close (the "lingering close" every HTTP server needs). */
static void close_or_linger(conn *c)
{
    if (!c->linger) {
        conn_free(c);
        return;
    }
    c->state = ST_LINGER;
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    if (fd >= 0)
        shutdown(fd, SHUT_WR);
    struct evbuffer *in = bufferevent_get_input(c->bev);
    drain_wipe(in, evbuffer_get_length(in));
    bufferevent_setwatermark(c->bev, EV_READ, 0, 0);
    bufferevent_enable(c->bev, EV_READ);
    timer_set(c, LINGER_MS);
}

/* Closes once the queued output is written (no lingering: nothing more comes in). */
static void close_after_flush(conn *c)
{
    c->state = ST_CLOSING;
    c->linger = false;
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
        conn_free(c);
}

static void access_log(kl_http_req *r, bool aborted)
{
    if (!kl_log_enabled(KL_LOG_INFO))
        return;
    json_t *f = r->log_fields ? r->log_fields : json_object();
    r->log_fields = NULL;
    if (!f)
        return;
    /* The path is whatever the client sent (any byte but controls and space): escaped,
     * never dropped. */
    json_object_set_new(f, "method", kl_log_string(r->method, strlen(r->method)));
    json_object_set_new(f, "path", kl_log_string(r->path, r->path ? strlen(r->path) : 0));
    json_object_set_new(f, "status", json_integer(r->status));
    json_object_set_new(f, "route", json_string(route_name(r->route)));
    if (aborted)
        json_object_set_new(f, "aborted", json_true());
    json_object_set_new(f, "duration_ms",
                        json_real((double)(kl_now_mono_us() - r->start_us) / 1000.0));
    json_object_set_new(f, "request_id", json_string(r->id));
    kl_log_json(KL_LOG_INFO, "request", f);
}

/* Called when the last byte of a response has been queued. */
static void process_input(conn *c);

static void req_finished(kl_http_req *r)
{
    conn *c = r->conn;
    r->finished = true;
    uint64_t us = kl_now_mono_us() - r->start_us;
    kl_metrics_request(c->t->server->cfg.metrics, r->route, r->status, us);
    if (r->auth_fail >= 0)
        kl_metrics_auth_failure(c->t->server->cfg.metrics, (kl_auth_fail)r->auth_fail);
    if (c->t->server->cfg.access_log)
        access_log(r, false);
    c->req = NULL;
    req_free(r);
    if (!c->keep_alive || c->t->draining) {
        c->state = ST_CLOSING;
        bufferevent_disable(c->bev, EV_READ);
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
            close_or_linger(c);
        return;
    }
    c->state = ST_IDLE;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    timer_set(c, KL_IDLE_TIMEOUT_MS);
    /* Pipelined bytes may already be waiting. They are parsed from the event loop, not
     * from here (a synchronous handler would otherwise recurse once per request), and
     * not before the writer has caught up, so a flood cannot outrun it. */
    if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0) {
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) < KL_MAX_OUTPUT_BUFFER)
            event_active(c->resume, EV_TIMEOUT, 1);
    } else if (c->peer_eof) {
        close_after_flush(c);
    }
}

/* Writes status line, headers and the first body bytes (may be NULL/0) as one
 * contiguous piece, so that over TLS a small response is one record and one write().
 * defer: the piece goes into r->pend, to leave with the first streamed bytes. 0, or
 * KL_ENOMEM (nothing was queued; the connection will close). */
static int write_head(kl_http_req *r, int status, const char *content_type, const char *framing,
                      const void *body, size_t len, bool defer)
{
    conn *c = r->conn;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    r->status = status;
    r->responded = true;
    kl_buf h;
    kl_buf_init(&h, KL_MAX_HEADER_BYTES + 1024 + len);
    char line[64];
    int ln = snprintf(line, sizeof(line), "HTTP/1.1 %d ", status);
    const char *ka = c->keep_alive && !c->t->draining ? "keep-alive" : "close";
    /* Plain appends: this runs for every response, and printf is the costly part. */
    int rc = kl_buf_append(&h, line, (size_t)ln);
    const char *parts[] = {reason_phrase(status), "\r\nDate: ", date_header(c->t), "\r\n"};
    for (size_t i = 0; !rc && i < sizeof(parts) / sizeof(parts[0]); i++)
        rc = kl_buf_append_str(&h, parts[i]);
    if (!rc && content_type) {
        const char *ct[] = {"Content-Type: ", content_type, "\r\n"};
        for (size_t i = 0; !rc && i < sizeof(ct) / sizeof(ct[0]); i++)
            rc = kl_buf_append_str(&h, ct[i]);
    }
    if (!rc && r->id[0]) {
        const char *idp[] = {"x-ms-request-id: ", r->id, "\r\napim-request-id: ", r->id, "\r\n"};
        for (size_t i = 0; !rc && i < sizeof(idp) / sizeof(idp[0]); i++)
            rc = kl_buf_append_str(&h, idp[i]);
    }
    if (!rc && r->resp_headers.len)
        rc = kl_buf_append(&h, r->resp_headers.data, r->resp_headers.len);
    const char *tail[] = {framing, "\r\nConnection: ", ka, "\r\n\r\n"};
    for (size_t i = 0; !rc && i < sizeof(tail) / sizeof(tail[0]); i++)
        rc = kl_buf_append_str(&h, tail[i]);
    if (!rc && len)
        rc = kl_buf_append(&h, body, len);
    if (!rc && defer) {
        /* Appended, not swapped in: r->pend keeps its own maximum for what follows. */
        rc = kl_buf_append(&r->pend, h.data, h.len);
        kl_buf_free(&h);
        if (rc)
            c->keep_alive = false;
        return rc ? KL_ENOMEM : 0;
    }
    size_t n = h.len;
    char *data = kl_buf_steal(&h);
    if (rc || !data || evbuffer_add_reference(out, data, n, free_ref, NULL) != 0) {
        /* Out of memory: the connection cannot be answered properly; close it. */
        c->keep_alive = false;
        kl_buf_free(&h);
        free(data);
        return KL_ENOMEM;
    }
    return 0;
}

/* Hands a streaming answer's pending bytes to the bufferevent as one piece. 0, or
 * KL_ENOMEM: the bytes are lost and r->stream_failed is set. */
static int flush_pending(kl_http_req *r)
{
    if (!r->pend.len)
        return 0;
    size_t n = r->pend.len;
    char *data = kl_buf_steal(&r->pend);
    if (!data || evbuffer_add_reference(bufferevent_get_output(r->conn->bev), data, n, free_ref,
                                        NULL) != 0) {
        free(data);
        r->stream_failed = true;
        return KL_ENOMEM;
    }
    return 0;
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn *c = arg;
    /* No handler is on the stack here: a stream that cannot go on is cut off at once, and
     * its handler learns of it through its abort callback. */
    if (c->req && !c->req->finished && flush_pending(c->req) != 0)
        conn_free(c);
}

/* A refusal made by the server itself, before any handler ran. Always closes. */
static void refuse(conn *c, int status, const char *code, const char *msg)
{
    kl_http_req *r = c->req;
    if (!r) {
        r = req_new(c);
        if (!r) {
            conn_free(c);
            return;
        }
        c->req = r;
    }
    c->keep_alive = false;
    c->linger = true;
    if (!r->path)
        r->path = strdup("");
    if (status == 503)
        kl_http_set_header(r, "Retry-After", KL_BUSY_RETRY_AFTER_S);
    if (c->ls->face == KL_FACE_IMDS) {
        /* The identity endpoints speak OAuth's error shape, as Azure's do, down to the
         * refusals the server makes before any handler runs. */
        json_t *e = json_pack("{s:s,s:s}", "error",
                              status >= 500 ? "temporarily_unavailable" : "invalid_request",
                              "error_description", msg);
        kl_http_respond_json(r, status, e);
        return;
    }
    kl_http_respond_error(r, status, code, msg);
}

/* ------------------------------------------------------------- parser callbacks */

static int on_message_begin(http_parser *p)
{
    conn *c = p->data;
    if (!c->req) {
        c->req = req_new(c);
        if (!c->req)
            return -1;
    }
    return 0;
}

static int header_too_large(conn *c)
{
    c->error_status = 431;
    c->error_code = "RequestHeaderFieldsTooLarge";
    c->error_msg = "The request headers are too large.";
    return -1;
}

/* Appends request-head bytes to r->raw, charged to the daemon-wide budget. 0, or -1
 * with the refusal set (431 too large, 503 budget spent). */
static int raw_append(conn *c, const char *at, size_t len)
{
    kl_http_req *r = c->req;
    if (r->raw.len + len > r->raw.max)
        return header_too_large(c);
    if (!budget_take(c, &r->raw_charged, r->raw.len + len + 1))
        return server_busy(c);
    if (kl_buf_append(&r->raw, at, len) != 0)
        return header_too_large(c);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    kl_http_req *r = c->req;
    if (r->url_len + len > KL_MAX_REQUEST_LINE) {
        c->error_status = 414;
        c->error_code = "RequestUriTooLong";
        c->error_msg = "The request URI is too long.";
        return -1;
    }
    if (raw_append(c, at, len) != 0)
        return -1;
    r->url_len += len;
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    kl_http_req *r = c->req;
    /* Trailer fields after a chunked body come through the same callbacks; they are
     * dropped, so nothing can add a header after the checks in on_headers_complete. */
    if (r->headers_done)
        return 0;
    if (r->last_was_value || r->nheaders == 0) {
        if (r->nheaders >= KL_MAX_HEADER_COUNT)
            return header_too_large(c);
        /* A NUL ends the URL (first header) or the previous value, so values can be
         * handed out as C strings in place. */
        if (raw_append(c, "", 1) != 0)
            return -1;
        header *h = &r->headers[r->nheaders++];
        h->name_off = r->raw.len;
        h->name_len = 0;
        h->val_off = 0;
        h->val_len = 0;
        r->last_was_value = false;
    }
    header *h = &r->headers[r->nheaders - 1];
    if (raw_append(c, at, len) != 0)
        return -1;
    h->name_len += len;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    kl_http_req *r = c->req;
    if (r->headers_done)
        return 0;
    if (r->nheaders == 0)
        return -1;
    header *h = &r->headers[r->nheaders - 1];
    if (!r->last_was_value) {
        h->val_off = r->raw.len;
        h->val_len = 0;
        r->last_was_value = true;
    }
    if (raw_append(c, at, len) != 0)
        return -1;
    h->val_len += len;
    return 0;
}

/* Splits the raw target into a normalised path and the query. On any failure neither
 * r->path nor r->query is set (nothing half-built is left for the refusal or the access
 * log to read). 0, KL_EINVAL (malformed target) or KL_ENOMEM. */
static int split_target(kl_http_req *r)
{
    const char *u = r->raw.data;
    size_t n = r->url_len;
    char *path = NULL, *query = NULL;
    int rc = KL_EINVAL;
    if (n == 0 || u[0] != '/')
        goto out;
    const char *q = memchr(u, '?', n);
    size_t plen = q ? (size_t)(q - u) : n;
    const char *hash = memchr(u, '#', n);
    if (hash && (!q || hash < q))
        plen = (size_t)(hash - u);
    rc = KL_ENOMEM;
    path = malloc(plen + 1);
    if (!path)
        goto out;
    size_t o = 0;
    rc = KL_EINVAL;
    for (size_t i = 0; i < plen; i++) {
        unsigned char ch = (unsigned char)u[i];
        /* http_parser lets TAB and form feed through in a target; nothing below 0x21
         * (or DEL) belongs in one. */
        if (ch < 0x21 || ch == 0x7f)
            goto out;
        if (ch == '/' && o > 0 && path[o - 1] == '/')
            continue;
        path[o++] = (char)ch;
    }
    if (o > 1 && path[o - 1] == '/')
        o--;
    path[o] = '\0';
    if (q) {
        size_t qlen = n - (size_t)(q - u) - 1;
        const char *qh = memchr(q + 1, '#', qlen);
        if (qh)
            qlen = (size_t)(qh - q - 1);
        query = kl_strndup(q + 1, qlen);
    } else {
        query = strdup("");
    }
    rc = KL_ENOMEM;
    if (!query)
        goto out;
    r->path = path;
    r->query = query;
    path = query = NULL;
    rc = 0;
out:
    free(path);
    free(query);
    return rc;
}

/* RFC 9110 token characters. */
static bool valid_token(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
            continue;
        if (!strchr("!#$%&'*+-.^_`|~", ch) || ch == '\0')
            return false;
    }
    return true;
}

static int on_headers_complete(http_parser *p)
{
    conn *c = p->data;
    kl_http_req *r = c->req;
    if (raw_append(c, "", 1) != 0)
        return -1;
    r->headers_done = true;
    const char *m = http_method_str((enum http_method)p->method);
    snprintf(r->method, sizeof(r->method), "%s", m);
    if (p->http_major != 1) {
        c->error_status = 505;
        c->error_code = "HTTPVersionNotSupported";
        c->error_msg = "Only HTTP/1.0 and HTTP/1.1 are supported.";
        return -1;
    }
    /* Debian's http_parser is built lenient: it takes "Name : value". RFC 9112 wants a
     * 400 for whitespace (or anything but a token) in a field name, and a name that a
     * proxy in front reads differently is a smuggling vector. */
    for (int i = 0; i < r->nheaders; i++) {
        const header *h = &r->headers[i];
        if (!valid_token(r->raw.data + h->name_off, h->name_len)) {
            c->error_status = 400;
            c->error_code = "BadRequest";
            c->error_msg = "Malformed header field name.";
            return -1;
        }
    }
    if (split_target(r) != 0) {
        c->error_status = 400;
        c->error_code = "BadRequest";
        c->error_msg = "The request target is malformed.";
        return -1;
    }
    /* http_parser already refuses Content-Length together with chunked encoding and
     * conflicting Content-Length values; a second Transfer-Encoding or a Transfer-Encoding
     * other than chunked is refused here so no front proxy can read the body differently. */
    const char *te = kl_http_req_header(r, "transfer-encoding");
    if (te && !kl_str_ieq(te, "chunked")) {
        c->error_status = 501;
        c->error_code = "NotImplemented";
        c->error_msg = "Only 'Transfer-Encoding: chunked' is supported.";
        return -1;
    }
    if (kl_http_req_header_count(r, "transfer-encoding") > 1 || (te && !(p->flags & F_CHUNKED)) ||
        kl_http_req_header_count(r, "content-length") > 1 ||
        kl_http_req_header_count(r, "host") > 1) {
        c->error_status = 400;
        c->error_code = "BadRequest";
        c->error_msg = "Conflicting or duplicate framing headers.";
        return -1;
    }
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > KL_MAX_BODY_BYTES) {
        c->error_status = 413;
        c->error_code = "RequestEntityTooLarge";
        c->error_msg = "The request body is too large.";
        return -1;
    }
    c->keep_alive = http_should_keep_alive(p) != 0;
    const char *expect = kl_http_req_header(r, "expect");
    c->expect_100 = false;
    if (expect) {
        if (!kl_str_ieq(expect, "100-continue")) {
            c->error_status = 417;
            c->error_code = "ExpectationFailed";
            c->error_msg = "Only 'Expect: 100-continue' is supported.";
            return -1;
        }
        c->expect_100 = p->http_major == 1 && p->http_minor >= 1;
    }
    /* Stop here, before any body byte: process_input vets the head (head_accepted),
     * outside the parser's callbacks, where answering and closing are safe. */
    c->head_done = true;
    http_parser_pause(p, 1);
    return 0;
}

/* The head of c's request is complete: the headers hook may refuse it, then the body
 * (if its length is known) is charged to the budget in one piece and given its buffer
 * at once. Returns false if the request was answered; c may then be gone. */
static bool head_accepted(conn *c)
{
    kl_http_req *r = c->req;
    kl_http_server *s = c->t->server;
    if (s->cfg.on_headers) {
        /* A refusal leaves the body unread, so the connection cannot carry another
         * request: it is answered with "Connection: close" and closed lingeringly (the
         * client may still be sending the body; an unread close would reset the answer
         * away). The body is never buffered: lingering discards what arrives. */
        bool ka = c->keep_alive;
        /* A request without a body leaves nothing unread: its refusal keeps the
         * connection (the parser, re-initialised, skips the head's last LF). */
        bool body = (c->parser.flags & F_CHUNKED) ||
                    ((c->parser.flags & F_CONTENTLENGTH) && c->parser.content_length > 0);
        if (body) {
            c->keep_alive = false;
            c->linger = true;
        }
        kl_http_verdict v = s->cfg.on_headers(r, s->cfg.handler_arg);
        if (c->req != r) /* answered (and freed), whatever the hook returned */
            return false;
        if (v == KL_HTTP_ANSWERED) {
            /* Broken contract (nothing was sent): the client still gets an answer. */
            kl_http_respond_error(r, 500, "InternalServerError", "Internal error.");
            return false;
        }
        c->keep_alive = ka;
        c->linger = false;
    }
    if ((c->parser.flags & F_CONTENTLENGTH) && c->parser.content_length > 0) {
        size_t n = (size_t)c->parser.content_length; /* <= KL_MAX_BODY_BYTES: checked */
        if (!budget_take(c, &r->body_charged, n + 1)) {
            server_busy(c);
            refuse(c, c->error_status, c->error_code, c->error_msg);
            return false;
        }
        if (kl_buf_reserve(&r->body, n) != 0) {
            refuse(c, 500, "InternalServerError", "Internal error.");
            return false;
        }
    }
    if (c->expect_100)
        evbuffer_add_printf(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n");
    c->state = ST_READING;
    timer_set(c, c->t->server->cfg.body_timeout_ms);
    return true;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    kl_http_req *r = c->req;
    /* Chunked bodies are charged as they grow (a known length was charged up front). */
    if (r->body.len + len <= KL_MAX_BODY_BYTES &&
        !budget_take(c, &r->body_charged, r->body.len + len + 1))
        return server_busy(c);
    if (kl_buf_append(&r->body, at, len) != 0) {
        c->error_status = 413;
        c->error_code = "RequestEntityTooLarge";
        c->error_msg = "The request body is too large.";
        return -1;
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    conn *c = p->data;
    c->state = ST_HANDLING;
    http_parser_pause(p, 1);
    return 0;
}

/* ----------------------------------------------------------- connection events */

static void dispatch(conn *c)
{
    kl_http_req *r = c->req;
    evtimer_del(c->timer);
    if (!r->body.data)
        kl_buf_append(&r->body, "", 0);
    c->t->server->cfg.handler(r, c->t->server->cfg.handler_arg);
}

/* True if the request line in p (n bytes, possibly cut short) starts with a token
 * followed by a space or the end of what arrived. */
static bool method_is_token(const char *p, size_t n)
{
    size_t m = 0;
    while (m < n && p[m] != ' ')
        m++;
    return valid_token(p, m);
}

static void parse_error(conn *c)
{
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (c->error_status) {
        refuse(c, c->error_status, c->error_code, c->error_msg);
        return;
    }
    switch (e) {
    case HPE_HEADER_OVERFLOW:
        refuse(c, 431, "RequestHeaderFieldsTooLarge", "The request headers are too large.");
        break;
    case HPE_INVALID_METHOD:
        refuse(c, 501, "NotImplemented", "The request method is not supported.");
        break;
    case HPE_UNEXPECTED_CONTENT_LENGTH:
    case HPE_INVALID_CONTENT_LENGTH:
        refuse(c, 400, "BadRequest", "Conflicting or invalid Content-Length.");
        break;
    default: {
        char msg[160];
        snprintf(msg, sizeof(msg), "Malformed HTTP request (%s).", http_errno_name(e));
        /* msg is a stack buffer: refuse() copies it into the response body at once. */
        refuse(c, 400, "BadRequest", msg);
    }
    }
}

/* Callers must not touch c after this returns: it may have been freed. */
static void process_input(conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    while (c->state == ST_IDLE || c->state == ST_READING) {
        size_t avail = evbuffer_get_length(in);
        if (avail == 0) {
            /* A client that half-closed gets answers to every complete request it sent;
             * an incomplete one can never complete. */
            if (c->peer_eof)
                close_after_flush(c);
            return;
        }
        if (c->state == ST_IDLE) {
            c->state = ST_READING;
            timer_set(c, KL_HEADER_TIMEOUT_MS);
        }
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            return;
        size_t n = http_parser_execute(&c->parser, &parser_settings, v.iov_base, v.iov_len);
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (e == HPE_PAUSED) {
            drain_wipe(in, n);
            http_parser_pause(&c->parser, 0);
            if (c->head_done) {
                c->head_done = false;
                if (!head_accepted(c))
                    return;
                continue;
            }
            dispatch(c);
            return;
        }
        if (e != HPE_OK) {
            /* http_parser says "invalid method" for any method it does not know; one
             * that is not even a token makes the request line malformed (RFC 9112
             * section 3: 400), a well-formed unknown one is not implemented (501). */
            if (e == HPE_INVALID_METHOD && !c->error_status &&
                !method_is_token(v.iov_base, v.iov_len)) {
                c->error_status = 400;
                c->error_code = "BadRequest";
                c->error_msg = "Malformed request line.";
            }
            drain_wipe(in, evbuffer_get_length(in));
            parse_error(c);
            return;
        }
        drain_wipe(in, n);
    }
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    conn *c = arg;
    if (c->state == ST_LINGER) {
        struct evbuffer *in = bufferevent_get_input(bev);
        c->lingered += evbuffer_get_length(in);
        drain_wipe(in, evbuffer_get_length(in));
        if (c->lingered > LINGER_MAX_BYTES)
            conn_free(c);
        return;
    }
    if (c->state == ST_HANDLING || c->state == ST_CLOSING) {
        /* Bytes of a pipelined request wait; a flood is bounded by the read watermark. */
        return;
    }
    process_input(c);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
    conn *c = arg;
    size_t left = evbuffer_get_length(bufferevent_get_output(bev));
    if (c->state == ST_CLOSING) {
        if (left == 0)
            close_or_linger(c);
        return;
    }
    if (c->req && c->req->drain_cb && left <= KL_MAX_OUTPUT_BUFFER / 2) {
        void (*cb)(void *) = c->req->drain_cb;
        c->req->drain_cb = NULL;
        cb(c->req->drain_arg);
        return;
    }
    if (c->state == ST_IDLE && evbuffer_get_length(bufferevent_get_input(bev)) > 0)
        process_input(c);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    conn *c = arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
        if (what & BEV_EVENT_ERROR) {
            /* TLS handshake failures land here: drain OpenSSL's error queue so it does not
             * leak into the next connection on this thread. */
            ERR_clear_error();
        }
        /* Half-close with complete requests still buffered (pipelining, or a client that
         * shuts down its side after sending): answer them before closing. A client gone
         * while a handler works is an abort, as in most proxies. */
        if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR)) {
            if (c->state == ST_IDLE || c->state == ST_READING) {
                c->peer_eof = true;
                if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
                    process_input(c);
                else
                    close_after_flush(c);
                return;
            }
            if (c->state == ST_CLOSING)
                return; /* still flushing the last answer; write_cb closes */
        }
        conn_free(c);
    }
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn *c = arg;
    if (c->state == ST_IDLE || c->state == ST_READING)
        process_input(c);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn *c = arg;
    if (c->state == ST_READING) {
        bufferevent_disable(c->bev, EV_READ);
        refuse(c, 408, "RequestTimeout", "The request was not received in time.");
        return;
    }
    conn_free(c);
}

static conn *accept_common(thread_ctx *t, listener_spec *ls, evutil_socket_t fd, long peer_uid,
                           bool admin_ok)
{
    conn *c = NULL;
    if (t->draining || t->nconns >= KL_MAX_CONNECTIONS) {
        evutil_closesocket(fd);
        return NULL;
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        evutil_closesocket(fd);
        return NULL;
    }
    c->t = t;
    c->ls = ls;
    c->peer_uid = peer_uid;
    c->admin_ok = admin_ok;
    evutil_make_socket_nonblocking(fd);
    if (ls->tls) {
        SSL *ssl = SSL_new(ls->tls);
        if (!ssl) {
            evutil_closesocket(fd);
            free(c);
            return NULL;
        }
        c->bev = bufferevent_openssl_socket_new(t->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                BEV_OPT_CLOSE_ON_FREE);
        if (c->bev)
            bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
    } else {
        c->bev = bufferevent_socket_new(t->base, fd, BEV_OPT_CLOSE_ON_FREE);
    }
    if (!c->bev) {
        evutil_closesocket(fd);
        free(c);
        return NULL;
    }
    c->timer = evtimer_new(t->base, timer_cb, c);
    c->resume = event_new(t->base, -1, 0, resume_cb, c);
    c->flush = event_new(t->base, -1, 0, flush_cb, c);
    if (!c->timer || !c->resume || !c->flush) {
        if (c->timer)
            event_free(c->timer);
        if (c->resume)
            event_free(c->resume);
        if (c->flush)
            event_free(c->flush);
        bufferevent_free(c->bev);
        free(c);
        return NULL;
    }
    c->next = t->conns;
    if (t->conns)
        t->conns->prev = c;
    t->conns = c;
    t->nconns++;
    kl_metrics_connection(t->server->cfg.metrics, 1);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->state = ST_IDLE;
    bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
    /* Stop reading once this much is queued while a request is being handled. */
    bufferevent_setwatermark(c->bev, EV_READ, 0, KL_MAX_REQUEST_LINE + KL_MAX_HEADER_BYTES + 65536);
    int wms = t->server->cfg.write_timeout_ms;
    struct timeval wto = {wms / 1000, (wms % 1000) * 1000};
    bufferevent_set_timeouts(c->bev, NULL, &wto);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    /* The first request's headers (and the TLS handshake) must arrive within this. */
    timer_set(c, KL_HEADER_TIMEOUT_MS);
    if (ls->is_unix && !admin_ok) {
        c->req = req_new(c);
        if (!c->req) {
            conn_free(c);
            return NULL;
        }
        c->req->path = strdup("");
        c->keep_alive = false;
        c->req->auth_fail = KL_AUTHFAIL_PEER;
        c->state = ST_HANDLING;
        kl_http_respond_error(c->req, 403, "Forbidden",
                              "Only root or the daemon's own user may use the admin socket.");
    }
    return c;
}

typedef struct accept_arg accept_arg;

static void accept_tcp_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                          int socklen, void *arg)
{
    (void)l;
    (void)sa;
    (void)socklen;
    accept_arg *a = arg;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    conn *c = accept_common(a->t, a->ls, fd, -1, false);
    if (c && sa && socklen > 0 && (size_t)socklen <= sizeof(c->peer))
        memcpy(&c->peer, sa, (size_t)socklen);
}

static void accept_unix_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                           int socklen, void *arg)
{
    (void)l;
    (void)sa;
    (void)socklen;
    accept_arg *a = arg;
    struct ucred cred;
    socklen_t len = sizeof(cred);
    long uid = -1;
    bool ok = false;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
        uid = (long)cred.uid;
        ok = cred.uid == 0 || cred.uid == geteuid();
    }
    accept_common(a->t, a->ls, fd, uid, ok);
}

/* ------------------------------------------------------------------ accessors */

const char *kl_http_req_method(const kl_http_req *r)
{
    return r->method;
}

const char *kl_http_req_raw_path(const kl_http_req *r, size_t *len)
{
    const char *u = r->raw.data;
    size_t n = u ? r->url_len : 0;
    size_t plen = 0;
    while (plen < n && u[plen] != '?' && u[plen] != '#')
        plen++;
    *len = plen;
    return u ? u : "";
}

const char *kl_http_req_path(const kl_http_req *r)
{
    return r->path ? r->path : "";
}

const char *kl_http_req_query(const kl_http_req *r)
{
    return r->query ? r->query : "";
}

const char *kl_http_req_query_param(kl_http_req *r, const char *name)
{
    if (!r->qparams) {
        r->qparams = calloc(1, sizeof(*r->qparams));
        if (!r->qparams)
            return NULL;
        TAILQ_INIT(r->qparams);
        if (r->query && r->query[0] && evhttp_parse_query_str(r->query, r->qparams) != 0) {
            /* A malformed query yields no parameters rather than a partial set. */
            evhttp_clear_headers(r->qparams);
        }
    }
    struct evkeyval *kv;
    TAILQ_FOREACH(kv, r->qparams, next)
    {
        if (strcmp(kv->key, name) == 0)
            return kv->value;
    }
    return NULL;
}

/* Values live in r->raw, each followed by a NUL the parser callbacks put there. */
static const char *header_value(const kl_http_req *r, const header *h)
{
    char *v = r->raw.data + h->val_off;
    if (h->val_len == 0)
        return "";
    return v;
}

static bool header_is(const kl_http_req *r, const header *h, const char *name)
{
    return kl_str_ieqn(r->raw.data + h->name_off, h->name_len, name, strlen(name));
}

const char *kl_http_req_header(const kl_http_req *r, const char *name)
{
    for (int i = 0; i < r->nheaders; i++) {
        if (header_is(r, &r->headers[i], name))
            return header_value(r, &r->headers[i]);
    }
    return NULL;
}

int kl_http_req_header_count(const kl_http_req *r, const char *name)
{
    int n = 0;
    for (int i = 0; i < r->nheaders; i++)
        if (header_is(r, &r->headers[i], name))
            n++;
    return n;
}

const unsigned char *kl_http_req_body(const kl_http_req *r, size_t *len)
{
    *len = r->body.len;
    return (const unsigned char *)(r->body.data ? r->body.data : "");
}

kl_face kl_http_req_face(const kl_http_req *r)
{
    return r->conn->ls->face;
}

bool kl_http_req_is_admin(const kl_http_req *r)
{
    return r->conn->ls->is_unix && r->conn->admin_ok;
}

const struct sockaddr *kl_http_req_peer(const kl_http_req *r)
{
    const struct sockaddr_storage *p = &r->conn->peer;
    return p->ss_family == AF_INET || p->ss_family == AF_INET6 ? (const struct sockaddr *)p : NULL;
}

bool kl_http_req_private(const kl_http_req *r)
{
    return r->conn->ls && r->conn->ls->is_private;
}

long kl_http_req_peer_uid(const kl_http_req *r)
{
    return r->conn->peer_uid;
}

void kl_http_req_peer_addr(const kl_http_req *r, char *out, size_t outlen)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (outlen)
        out[0] = '\0';
    if (r->conn->ls->is_unix) {
        snprintf(out, outlen, "unix");
        return;
    }
    /* The address recorded at accept, as kl_http_req_peer gives it; asking the kernel
     * again (getpeername) is a system call per use on the token endpoint's path. */
    if (r->conn->peer.ss_family == AF_INET || r->conn->peer.ss_family == AF_INET6) {
        ss = r->conn->peer;
    } else {
        evutil_socket_t fd = bufferevent_getfd(r->conn->bev);
        if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
            return;
    }
    const void *a = ss.ss_family == AF_INET6
                        ? (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr
                        : (const void *)&((struct sockaddr_in *)&ss)->sin_addr;
    if (!inet_ntop(ss.ss_family, a, out, (socklen_t)outlen) && outlen)
        out[0] = '\0';
}

const char *kl_http_req_id(const kl_http_req *r)
{
    return r->id;
}

struct event_base *kl_http_req_base(const kl_http_req *r)
{
    return r->conn->t->base;
}

void *kl_http_req_thread_state(const kl_http_req *r)
{
    return r->conn->t->state;
}

void kl_http_req_set_route(kl_http_req *r, kl_route route)
{
    r->route = route;
}

void kl_http_req_auth_failed(kl_http_req *r, kl_auth_fail kind)
{
    r->auth_fail = (int)kind;
}

void kl_http_req_log_field(kl_http_req *r, const char *key, const char *value)
{
    if (!value || !r->conn->t->server->cfg.access_log)
        return;
    if (!r->log_fields)
        r->log_fields = json_object();
    if (r->log_fields)
        json_object_set_new(r->log_fields, key, kl_log_string(value, strlen(value)));
}

/* ------------------------------------------------------------------ answering */

static bool reserved_header(const char *name)
{
    return kl_str_ieq(name, "content-length") || kl_str_ieq(name, "transfer-encoding") ||
           kl_str_ieq(name, "connection") || kl_str_ieq(name, "date");
}

void kl_http_set_header(kl_http_req *r, const char *name, const char *value)
{
    if (r->responded || reserved_header(name))
        return;
    /* Refuse CR/LF so no caller can split the response. */
    if (strpbrk(name, "\r\n:") || strpbrk(value, "\r\n"))
        return;
    kl_buf_appendf(&r->resp_headers, "%s: %s\r\n", name, value);
}

void kl_http_respond(kl_http_req *r, int status, const char *content_type, const void *body,
                     size_t len)
{
    if (r->responded)
        return;
    char framing[48];
    /* A 204 carries no body and, per RFC 9110, no Content-Length. */
    bool no_body = status == 204 || status == 304;
    if (no_body)
        len = 0;
    snprintf(framing, sizeof(framing), no_body ? "Cache-Control: no-store" : "Content-Length: %zu",
             len);
    bool head = strcmp(r->method, "HEAD") == 0;
    write_head(r, status, no_body ? NULL : content_type, framing, head ? NULL : body,
               head ? 0 : len, false);
    req_finished(r);
}

void kl_http_respond_json(kl_http_req *r, int status, json_t *body)
{
    char *s = body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(body);
    if (!s) {
        static const char fallback[] =
            "{\"error\":{\"code\":\"InternalServerError\",\"message\":\"Internal error.\"}}";
        kl_http_respond(r, 500, "application/json", fallback, sizeof(fallback) - 1);
        return;
    }
    kl_http_respond(r, status, "application/json", s, strlen(s));
    free(s);
}

void kl_http_respond_error(kl_http_req *r, int status, const char *code, const char *message)
{
    json_t *e = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message);
    kl_http_respond_json(r, status, e);
}

int kl_http_stream_begin(kl_http_req *r, int status, const char *content_type)
{
    if (r->responded)
        return KL_EINVAL;
    r->streaming = true;
    if (write_head(r, status, content_type, "Transfer-Encoding: chunked", NULL, 0, true) != 0)
        r->stream_failed = true; /* the handler's writes fail, its end aborts */
    event_active(r->conn->flush, EV_TIMEOUT, 1);
    return 0;
}

int kl_http_stream_write(kl_http_req *r, const void *data, size_t len)
{
    if (!r->streaming || r->finished || r->stream_failed)
        return KL_EIO;
    /* A HEAD answer has headers only; what a handler streams is not sent. */
    if (len == 0 || strcmp(r->method, "HEAD") == 0)
        return 0;
    char head[24];
    int hn = snprintf(head, sizeof(head), "%zx\r\n", len);
    /* The output buffer's bound, on purpose: producers stop at half of it (the drain
     * callback resumes them), so only a producer that ignores backpressure, or a single
     * piece that could never fit, gets here. Its answer cannot be delivered whole. */
    size_t queued = kl_http_stream_pending(r);
    size_t need = (size_t)hn + len + 2;
    if (queued > KL_MAX_OUTPUT_BUFFER || need > KL_MAX_OUTPUT_BUFFER - queued) {
        r->stream_failed = true;
        return KL_ETOOBIG;
    }
    int rc = kl_buf_append(&r->pend, head, (size_t)hn);
    if (!rc)
        rc = kl_buf_append(&r->pend, data, len);
    if (!rc)
        rc = kl_buf_append(&r->pend, "\r\n", 2);
    if (rc) {
        r->stream_failed = true;
        return rc;
    }
    /* Sent at the end of this loop iteration, together with whatever else the handler
     * streams meanwhile; large bursts go at once. */
    if (r->pend.len >= STREAM_FLUSH_BYTES)
        return flush_pending(r);
    event_active(r->conn->flush, EV_TIMEOUT, 1);
    return 0;
}

void kl_http_stream_end(kl_http_req *r)
{
    if (!r->streaming || r->finished)
        return;
    if (!r->stream_failed && strcmp(r->method, "HEAD") != 0 &&
        kl_buf_append(&r->pend, STREAM_END, sizeof(STREAM_END) - 1) != 0)
        r->stream_failed = true;
    if (!r->stream_failed)
        flush_pending(r);
    if (r->stream_failed) {
        kl_http_stream_abort(r);
        return;
    }
    req_finished(r);
}

void kl_http_stream_abort(kl_http_req *r)
{
    if (r->finished)
        return;
    /* The handler asked for this: it is not called back. What was queued but not yet
     * written is dropped with the connection; the client sees a body without its end. */
    r->abort_cb = NULL;
    r->drain_cb = NULL;
    conn_free(r->conn);
}

size_t kl_http_stream_pending(const kl_http_req *r)
{
    return evbuffer_get_length(bufferevent_get_output(r->conn->bev)) + r->pend.len;
}

void kl_http_req_on_drain(kl_http_req *r, void (*cb)(void *arg), void *arg)
{
    r->drain_cb = cb;
    r->drain_arg = arg;
    bufferevent_setwatermark(r->conn->bev, EV_WRITE, KL_MAX_OUTPUT_BUFFER / 2, 0);
}

void kl_http_req_on_abort(kl_http_req *r, void (*cb)(void *arg), void *arg)
{
    r->abort_cb = cb;
    r->abort_arg = arg;
}

/* --------------------------------------------------------------- server setup */

kl_http_server *kl_http_server_new(const kl_http_server_cfg *cfg)
{
    if (!cfg || !cfg->handler || cfg->workers < 1 || cfg->workers > MAX_WORKERS)
        return NULL;
    kl_http_server *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->cfg = *cfg;
    if (s->cfg.write_timeout_ms <= 0)
        s->cfg.write_timeout_ms = KL_WRITE_TIMEOUT_MS;
    if (s->cfg.body_timeout_ms <= 0)
        s->cfg.body_timeout_ms = KL_BODY_TIMEOUT_MS;
    s->workers = calloc((size_t)cfg->workers, sizeof(thread_ctx));
    if (!s->workers) {
        free(s);
        return NULL;
    }
    for (int i = 0; i < MAX_LISTENERS; i++)
        for (int w = 0; w < MAX_WORKERS; w++)
            s->listeners[i].fds[w] = -1;
    /* Process-wide, idempotent set-up of the libraries the server relies on. */
    evthread_use_pthreads();
    http_parser_set_max_header_size(KL_MAX_REQUEST_LINE + KL_MAX_HEADER_BYTES);
    memset(&parser_settings, 0, sizeof(parser_settings));
    parser_settings.on_message_begin = on_message_begin;
    parser_settings.on_url = on_url;
    parser_settings.on_header_field = on_header_field;
    parser_settings.on_header_value = on_header_value;
    parser_settings.on_headers_complete = on_headers_complete;
    parser_settings.on_body = on_body;
    parser_settings.on_message_complete = on_message_complete;
    return s;
}

/* Parses "a.b.c.d:port", "[v6]:port" or "localhost:port" (port 0 allowed). */
static int parse_hostport(const char *hp, struct sockaddr_storage *ss, socklen_t *sslen)
{
    memset(ss, 0, sizeof(*ss));
    const char *colon = strrchr(hp, ':');
    if (!colon || colon == hp)
        return KL_EINVAL;
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    if (!end || *end || end == colon + 1 || port < 0 || port > 65535)
        return KL_EINVAL;
    char host[64];
    size_t hl = (size_t)(colon - hp);
    if (hp[0] == '[') {
        if (hl < 3 || hp[hl - 1] != ']' || hl - 2 >= sizeof(host))
            return KL_EINVAL;
        memcpy(host, hp + 1, hl - 2);
        host[hl - 2] = '\0';
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
            return KL_EINVAL;
        *sslen = sizeof(*s6);
        return 0;
    }
    if (hl >= sizeof(host))
        return KL_EINVAL;
    memcpy(host, hp, hl);
    host[hl] = '\0';
    if (!strcmp(host, "localhost"))
        memcpy(host, "127.0.0.1", 10);
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
        return KL_EINVAL;
    *sslen = sizeof(*s4);
    return 0;
}

static int bind_tcp(const struct sockaddr_storage *ss, socklen_t sslen)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (ss->ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)ss, sslen) != 0 || listen(fd, 1024) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int listen_tcp(kl_http_server *s, const char *hostport, SSL_CTX *tls, kl_face face,
                      bool is_private, int *bound_port);

int kl_http_server_listen_tcp(kl_http_server *s, const char *hostport, SSL_CTX *tls, kl_face face,
                              int *bound_port)
{
    return listen_tcp(s, hostport, tls, face, false, bound_port);
}

int kl_http_server_listen_private(kl_http_server *s, const char *hostport, SSL_CTX *tls,
                                  int *bound_port)
{
    return listen_tcp(s, hostport, tls, KL_FACE_PUBLIC, true, bound_port);
}

static int listen_tcp(kl_http_server *s, const char *hostport, SSL_CTX *tls, kl_face face,
                      bool is_private, int *bound_port)
{
    if (s->nlisteners >= MAX_LISTENERS)
        return KL_ETOOBIG;
    struct sockaddr_storage ss;
    socklen_t sslen;
    if (parse_hostport(hostport, &ss, &sslen) != 0)
        return KL_EINVAL;
    listener_spec *ls = &s->listeners[s->nlisteners];
    for (int w = 0; w < s->cfg.workers; w++) {
        int fd = bind_tcp(&ss, sslen);
        if (fd < 0) {
            int err = errno;
            for (int j = 0; j < w; j++) {
                close(ls->fds[j]);
                ls->fds[j] = -1;
            }
            kl_log(KL_LOG_ERROR, "listen_failed", "address", hostport, "reason", strerror(err),
                   NULL);
            return KL_EIO;
        }
        ls->fds[w] = fd;
        if (w == 0) {
            /* Port 0: every other worker binds the port the kernel chose. */
            struct sockaddr_storage got;
            socklen_t gl = sizeof(got);
            getsockname(fd, (struct sockaddr *)&got, &gl);
            int port = got.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&got)->sin6_port)
                                                 : ntohs(((struct sockaddr_in *)&got)->sin_port);
            if (ss.ss_family == AF_INET6)
                ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
            else
                ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
            if (bound_port)
                *bound_port = port;
        }
    }
    ls->is_unix = false;
    ls->is_private = is_private;
    ls->face = face;
    if (tls) {
        SSL_CTX_up_ref(tls);
        ls->tls = tls;
    }
    s->nlisteners++;
    return 0;
}

int kl_http_server_tcp_addr(const kl_http_server *s, int i, struct sockaddr_storage *out)
{
    for (int j = 0; j < s->nlisteners; j++) {
        const listener_spec *ls = &s->listeners[j];
        if (ls->is_unix || i-- > 0)
            continue;
        socklen_t len = sizeof(*out);
        memset(out, 0, sizeof(*out));
        if (ls->fds[0] < 0)
            return KL_EIO;
        return getsockname(ls->fds[0], (struct sockaddr *)out, &len) == 0 ? 0 : KL_EIO;
    }
    return KL_ENOTFOUND;
}

int kl_http_server_listen_unix(kl_http_server *s, const char *path, kl_face face)
{
    if (s->nlisteners >= MAX_LISTENERS)
        return KL_ETOOBIG;
    listener_spec *ls = &s->listeners[s->nlisteners];
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun.sun_path))
        return KL_ETOOBIG;
    memcpy(sun.sun_path, path, strlen(path) + 1);
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return KL_EEXIST;
        unlink(path); /* a stale socket from an earlier run */
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return KL_EIO;
    /* The socket file is created 0600 from the start: no window where others can connect. */
    mode_t old = umask(0177);
    int rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
    umask(old);
    if (rc != 0 || listen(fd, 128) != 0) {
        close(fd);
        return KL_EIO;
    }
    ls->is_unix = true;
    ls->face = face;
    ls->fds[0] = fd;
    snprintf(ls->path, sizeof(ls->path), "%s", path);
    s->nlisteners++;
    return 0;
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    thread_ctx *t = arg;
    t->draining = true;
    for (int i = 0; i < MAX_LISTENERS; i++) {
        if (t->listeners[i]) {
            evconnlistener_free(t->listeners[i]);
            t->listeners[i] = NULL;
        }
    }
    /* Idle keep-alive connections go now; busy ones close after their response. */
    conn *c = t->conns;
    while (c) {
        conn *next = c->next;
        if (c->state == ST_IDLE)
            conn_free(c);
        c = next;
        if (!t->conns)
            break;
    }
    if (t->nconns == 0) {
        event_base_loopbreak(t->base);
        return;
    }
    struct timeval tv = {t->server->grace_ms / 1000, (t->server->grace_ms % 1000) * 1000};
    evtimer_add(t->grace_ev, &tv);
}

static void grace_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    thread_ctx *t = arg;
    event_base_loopbreak(t->base);
}

static void *thread_main(void *arg)
{
    thread_ctx *t = arg;
    kl_http_server *s = t->server;
    if (s->cfg.thread_init)
        t->state = s->cfg.thread_init(t->index, t->base, s->cfg.thread_arg);
    event_base_loop(t->base, EVLOOP_NO_EXIT_ON_EMPTY);
    /* Whatever is still open after the grace period is cut off. */
    while (t->conns)
        conn_free(t->conns);
    if (s->cfg.thread_fini)
        s->cfg.thread_fini(t->state, s->cfg.thread_arg);
    return NULL;
}

static int thread_setup(kl_http_server *s, thread_ctx *t, int index)
{
    t->server = s;
    t->index = index;
    if (RAND_bytes(t->id_seed, sizeof(t->id_seed)) != 1)
        return KL_ECRYPTO;
    /* The changelist folds the enable/disable churn of a request (read off while
     * handling, write on while flushing, the upstream connection's own toggles) into at
     * most one epoll_ctl per descriptor per loop iteration. */
    struct event_config *ec = event_config_new();
    if (!ec)
        return KL_ENOMEM;
    event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    t->base = event_base_new_with_config(ec);
    event_config_free(ec);
    if (!t->base)
        return KL_ENOMEM;
    t->stop_ev = event_new(t->base, -1, 0, stop_cb, t);
    t->grace_ev = evtimer_new(t->base, grace_cb, t);
    if (!t->stop_ev || !t->grace_ev)
        return KL_ENOMEM;
    for (int i = 0; i < s->nlisteners; i++) {
        listener_spec *ls = &s->listeners[i];
        bool mine = ls->is_unix ? index < 0 : index >= 0;
        if (!mine)
            continue;
        int fd = ls->is_unix ? ls->fds[0] : ls->fds[index];
        t->accept_args[i].t = t;
        t->accept_args[i].ls = ls;
        t->listeners[i] = evconnlistener_new(t->base, ls->is_unix ? accept_unix_cb : accept_tcp_cb,
                                             &t->accept_args[i], LEV_OPT_CLOSE_ON_FREE, -1, fd);
        if (!t->listeners[i])
            return KL_EIO;
        if (ls->is_unix)
            ls->fds[0] = -1;
        else
            ls->fds[index] = -1;
    }
    return 0;
}

int kl_http_server_start(kl_http_server *s)
{
    int rc = thread_setup(s, &s->control, -1);
    if (rc)
        return rc;
    for (int w = 0; w < s->cfg.workers; w++) {
        rc = thread_setup(s, &s->workers[w], w);
        if (rc)
            return rc;
    }
    if (pthread_create(&s->control.thread, NULL, thread_main, &s->control) != 0)
        return KL_EIO;
    s->control.started = true;
    for (int w = 0; w < s->cfg.workers; w++) {
        if (pthread_create(&s->workers[w].thread, NULL, thread_main, &s->workers[w]) != 0)
            return KL_EIO;
        s->workers[w].started = true;
    }
    return 0;
}

void kl_http_server_stop(kl_http_server *s, int grace_ms)
{
    if (atomic_exchange(&s->stopping, true))
        return;
    s->grace_ms = grace_ms;
    for (int w = 0; w < s->cfg.workers; w++)
        if (s->workers[w].started)
            event_active(s->workers[w].stop_ev, EV_TIMEOUT, 1);
    if (s->control.started)
        event_active(s->control.stop_ev, EV_TIMEOUT, 1);
    for (int w = 0; w < s->cfg.workers; w++)
        if (s->workers[w].started) {
            pthread_join(s->workers[w].thread, NULL);
            s->workers[w].started = false;
        }
    if (s->control.started) {
        pthread_join(s->control.thread, NULL);
        s->control.started = false;
    }
}

static void thread_free(thread_ctx *t)
{
    for (int i = 0; i < MAX_LISTENERS; i++)
        if (t->listeners[i])
            evconnlistener_free(t->listeners[i]);
    if (t->stop_ev)
        event_free(t->stop_ev);
    if (t->grace_ev)
        event_free(t->grace_ev);
    if (t->base)
        event_base_free(t->base);
}

void kl_http_server_free(kl_http_server *s)
{
    if (!s)
        return;
    kl_http_server_stop(s, 0);
    for (int w = 0; w < s->cfg.workers; w++)
        thread_free(&s->workers[w]);
    thread_free(&s->control);
    for (int i = 0; i < s->nlisteners; i++) {
        listener_spec *ls = &s->listeners[i];
        for (int w = 0; w < MAX_WORKERS; w++)
            if (ls->fds[w] >= 0)
                close(ls->fds[w]);
        if (ls->is_unix && ls->path[0])
            unlink(ls->path);
        if (ls->tls)
            SSL_CTX_free(ls->tls);
    }
    free(s->workers);
    free(s);
}
