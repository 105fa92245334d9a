/* Proxying to OpenAI-compatible model servers over libevent's HTTP client, with
 * per-worker pools of kept-alive connections and streaming pass-through.
 *
 * How libevent 2.1 reports failures decides the design here:
 *  - a refused connection and evhttp's own connect timeout both arrive as the request
 *    callback with a request whose status is 0 and no error callback, so they cannot
 *    be told apart afterwards. The timeouts that matter are therefore our own timer:
 *    first a connect check (is the socket connected?) after connect_timeout_ms, then
 *    "no byte for timeout_ms", re-armed on every chunk. evhttp's timeout is set a second
 *    longer, as a backstop only; EVREQ_HTTP_TIMEOUT still maps to 504 if it ever wins.
 *  - other failures (EOF, reset, unreachable, TLS) come as the error callback, then the
 *    request callback with NULL: 502 before any byte was sent, a truncated stream after.
 *  - evhttp_cancel_request runs the error callback (EVREQ_HTTP_REQUEST_CANCEL) and not
 *    the request callback; it may be called from the chunk callback.
 *  - the request callback may run inside evhttp_make_request (immediate failures), so
 *    nothing touches an exchange after starting it.
 *  - the chunk callback runs for chunked, Content-Length and close-delimited bodies
 *    alike (never for an empty body), so one path serves them all.
 * Connections are only ever freed from the reaper event, never inside an evhttp
 * callback, because evhttp keeps using the connection after calling us. */
#include "gateway/upstream.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/util.h"
#include "gateway/reply.h"

/* evhttp's own timeouts trail ours by this much so that ours always decide. */
#define BACKSTOP_MS 1000

typedef struct up_pool up_pool;

typedef struct up_conn {
    kl_upstream *u;
    up_pool *pool;
    struct evhttp_connection *evcon;
    bool dead; /* closed or failed: never reused, freed by the reaper */
    bool idle; /* on the pool's idle list */
    struct up_conn *next, *prev;
} up_conn;

struct up_pool {
    bool tls;
    uint16_t port;
    char host[256];
    up_conn *idle; /* most recently used first */
    size_t n_idle;
    up_pool *next;
};

typedef enum phase { PH_CONNECTING = 0, PH_WAITING } phase;

typedef struct exchange {
    kl_upstream *u;
    kl_http_req *r;    /* NULL once the client is gone */
    kl_snapshot *snap; /* our reference: keeps d alive */
    const kl_deployment *d;
    kl_upstream_target t;
    up_pool *pool;
    char *body; /* serialised request, kept for one retry */
    size_t body_len;
    char *auth; /* "Bearer <credential>" or NULL; wiped before free */
    const char *accept;
    up_conn *conn;
    struct evhttp_request *ureq; /* while evhttp holds it */
    struct event *timer;
    phase ph;
    bool reused;      /* the connection carried an earlier request */
    bool retried;     /* a failed reused connection gets one fresh attempt */
    bool got_headers; /* the upstream's response head has arrived */
    bool started;     /* the client response has begun */
    bool paused;      /* reading upstream stopped until the client drains */
    int uperr;        /* last evhttp_request_error, or -1 */
    struct exchange *next, *prev;
} exchange;

struct kl_upstream {
    struct event_base *base;
    struct evdns_base *dns;
    SSL_CTX *tls;
    kl_metrics *metrics;
    int timeout_ms;
    int connect_timeout_ms;
    up_pool *pools;
    up_conn *reap; /* connections waiting to be freed */
    struct event *reap_ev;
    exchange *active;
};

/* Response headers worth passing back: rate limits and retry hints. */
static const char *const passthrough_headers[] = {
    "retry-after",
    "retry-after-ms",
    "x-ratelimit-limit-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-requests",
    "x-ratelimit-reset-tokens",
};

/* ------------------------------------------------------------------ target URL */

static const char *op_path(kl_gateway_route_kind kind)
{
    switch (kind) {
    case KL_GW_ROUTE_CHAT: return "/chat/completions";
    case KL_GW_ROUTE_COMPLETIONS: return "/completions";
    case KL_GW_ROUTE_EMBEDDINGS: return "/embeddings";
    default: return NULL;
    }
}

int kl_upstream_target_parse(const char *base_url, kl_gateway_route_kind kind,
                             kl_upstream_target *out)
{
    int rc = KL_EINVAL;
    struct evhttp_uri *uri = NULL;
    const char *op = op_path(kind);
    memset(out, 0, sizeof(*out));
    if (!base_url || !op || strlen(base_url) > KL_MAX_URL)
        goto out;
    uri = evhttp_uri_parse(base_url);
    if (!uri)
        goto out;
    const char *scheme = evhttp_uri_get_scheme(uri);
    const char *host = evhttp_uri_get_host(uri);
    const char *path = evhttp_uri_get_path(uri);
    const char *query = evhttp_uri_get_query(uri);
    int port = evhttp_uri_get_port(uri);
    if (!scheme || (!kl_str_ieq(scheme, "http") && !kl_str_ieq(scheme, "https")))
        goto out;
    if (evhttp_uri_get_userinfo(uri) || !host || !*host)
        goto out;
    out->tls = kl_str_ieq(scheme, "https");
    if (port == 0 || port > 65535)
        goto out;
    out->port = (uint16_t)(port < 0 ? (out->tls ? 443 : 80) : port);

    size_t hl = strlen(host);
    bool v6 = host[0] == '[';
    if (v6) {
        if (hl < 3 || host[hl - 1] != ']')
            goto out;
        host++;
        hl -= 2;
    }
    if (hl >= sizeof(out->host))
        goto out;
    memcpy(out->host, host, hl);
    out->host[hl] = '\0';
    bool default_port = out->port == (out->tls ? 443 : 80);
    int n = snprintf(out->host_header, sizeof(out->host_header), "%s%s%s", v6 ? "[" : "", out->host,
                     v6 ? "]" : "");
    if (n < 0 || (size_t)n >= sizeof(out->host_header))
        goto out;
    if (!default_port) {
        size_t used = (size_t)n;
        n = snprintf(out->host_header + used, sizeof(out->host_header) - used, ":%u",
                     (unsigned)out->port);
        if (n < 0 || (size_t)n >= sizeof(out->host_header) - used)
            goto out;
    }

    size_t pl = path ? strlen(path) : 0;
    while (pl > 0 && path[pl - 1] == '/')
        pl--;
    size_t ql = query ? strlen(query) : 0;
    size_t need = pl + strlen(op) + (ql ? ql + 1 : 0) + 1;
    out->uri = malloc(need);
    if (!out->uri) {
        rc = KL_ENOMEM;
        goto out;
    }
    memcpy(out->uri, path ? path : "", pl);
    snprintf(out->uri + pl, need - pl, "%s%s%s", op, ql ? "?" : "", ql ? query : "");
    rc = 0;
out:
    if (uri)
        evhttp_uri_free(uri);
    if (rc) {
        free(out->uri);
        memset(out, 0, sizeof(*out));
    }
    return rc;
}

/* ------------------------------------------------------------------ connections */

static void reap_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    kl_upstream *u = arg;
    while (u->reap) {
        up_conn *c = u->reap;
        u->reap = c->next;
        evhttp_connection_set_closecb(c->evcon, NULL, NULL);
        evhttp_connection_free(c->evcon);
        free(c);
    }
}

static void idle_unlink(up_conn *c)
{
    up_pool *p = c->pool;
    if (!c->idle)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        p->idle = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->next = c->prev = NULL;
    c->idle = false;
    p->n_idle--;
}

/* Schedules c to be freed outside of any evhttp callback. */
static void reap_push(up_conn *c)
{
    kl_upstream *u = c->u;
    idle_unlink(c);
    c->dead = true;
    c->prev = NULL;
    c->next = u->reap;
    u->reap = c;
    if (u->reap_ev)
        event_active(u->reap_ev, EV_TIMEOUT, 0);
}

static void on_conn_closed(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    up_conn *c = arg;
    c->dead = true;
    if (c->idle)
        reap_push(c); /* a busy one is released by its exchange */
}

static bool is_ip_literal(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

static up_conn *conn_new(kl_upstream *u, up_pool *p)
{
    struct bufferevent *bev = NULL;
    up_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->u = u;
    c->pool = p;
    if (p->tls) {
        SSL *ssl = u->tls ? SSL_new(u->tls) : NULL;
        if (!ssl)
            goto fail;
        int ok;
        if (is_ip_literal(p->host)) {
            ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), p->host) == 1;
        } else {
            /* SNI and the name the certificate must carry. */
            ok = SSL_set_tlsext_host_name(ssl, p->host) == 1 && SSL_set1_host(ssl, p->host) == 1;
        }
        if (ok)
            bev = bufferevent_openssl_socket_new(u->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                 BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
        if (!bev) {
            SSL_free(ssl);
            goto fail;
        }
        /* Many servers close without close_notify once the response is complete. */
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    }
    c->evcon = evhttp_connection_base_bufferevent_new(u->base, u->dns, bev, p->host, p->port);
    if (!c->evcon) {
        if (bev)
            bufferevent_free(bev);
        goto fail;
    }
    int backstop = u->timeout_ms + BACKSTOP_MS;
    struct timeval tv = {backstop / 1000, (backstop % 1000) * 1000};
    evhttp_connection_set_timeout_tv(c->evcon, &tv);
    evhttp_connection_set_retries(c->evcon, 0);
    evhttp_connection_set_max_headers_size(c->evcon, KL_MAX_HEADER_BYTES);
    evhttp_connection_set_max_body_size(c->evcon, KL_MAX_UPSTREAM_RESPONSE);
    evhttp_connection_set_closecb(c->evcon, on_conn_closed, c);
    return c;
fail:
    free(c);
    return NULL;
}

static up_pool *pool_get(kl_upstream *u, const kl_upstream_target *t)
{
    for (up_pool *p = u->pools; p; p = p->next)
        if (p->tls == t->tls && p->port == t->port && kl_str_ieq(p->host, t->host))
            return p;
    up_pool *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->tls = t->tls;
    p->port = t->port;
    memcpy(p->host, t->host, sizeof(p->host));
    p->next = u->pools;
    u->pools = p;
    return p;
}

static up_conn *conn_acquire(kl_upstream *u, up_pool *p, bool fresh, bool *reused)
{
    while (!fresh && p->idle) {
        up_conn *c = p->idle;
        idle_unlink(c);
        if (!c->dead) {
            *reused = true;
            return c;
        }
        reap_push(c);
    }
    *reused = false;
    return conn_new(u, p);
}

static void conn_release(exchange *ex, bool reusable)
{
    up_conn *c = ex->conn;
    ex->conn = NULL;
    if (!c)
        return;
    up_pool *p = c->pool;
    if (reusable && !c->dead && p->n_idle < KL_UPSTREAM_MAX_IDLE_CONNS) {
        c->idle = true;
        c->prev = NULL;
        c->next = p->idle;
        if (p->idle)
            p->idle->prev = c;
        p->idle = c;
        p->n_idle++;
        return;
    }
    reap_push(c);
}

/* True once the TCP connection is established (the TLS handshake may still run). */
static bool conn_connected(const up_conn *c)
{
    struct bufferevent *bev = evhttp_connection_get_bufferevent(c->evcon);
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    return fd >= 0 && getpeername(fd, (struct sockaddr *)&ss, &len) == 0;
}

/* Describes why a TLS connection failed (certificate verification first), for the
 * log; false if TLS reported nothing. Clears the connection's OpenSSL errors. */
static bool conn_tls_error(const up_conn *c, char *out, size_t outlen)
{
    struct bufferevent *bev = evhttp_connection_get_bufferevent(c->evcon);
    SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
    unsigned long e, first = 0;
    /* The list also holds bare SSL_get_error() codes (library 0), e.g. for a refused
     * connection; only real OpenSSL errors say something about TLS. */
    while (bev && (e = bufferevent_get_openssl_error(bev)) != 0)
        if (!first && ERR_GET_LIB(e) != 0)
            first = e;
    long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    if (v != X509_V_OK) {
        snprintf(out, outlen, "tls: certificate not trusted: %s", X509_verify_cert_error_string(v));
        return true;
    }
    if (first) {
        char reason[120];
        ERR_error_string_n(first, reason, sizeof(reason));
        snprintf(out, outlen, "tls: %s", reason);
        return true;
    }
    return false;
}

/* A kept-alive connection is reusable after a complete, self-delimited response. */
static bool response_reusable(struct evhttp_request *q)
{
    struct evkeyvalq *h = evhttp_request_get_input_headers(q);
    const char *conn = evhttp_find_header(h, "Connection");
    int status = evhttp_request_get_response_code(q);
    if (conn && kl_str_ieq(conn, "close"))
        return false;
    if (status < 200 || status == 204 || status == 304)
        return true;
    return evhttp_find_header(h, "Transfer-Encoding") || evhttp_find_header(h, "Content-Length");
}

/* ------------------------------------------------------------------ exchanges */

static void timer_arm(exchange *ex, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(ex->timer, &tv);
}

static void ex_free(exchange *ex)
{
    kl_upstream *u = ex->u;
    if (ex->prev)
        ex->prev->next = ex->next;
    else if (u->active == ex)
        u->active = ex->next;
    if (ex->next)
        ex->next->prev = ex->prev;
    if (ex->timer)
        event_free(ex->timer);
    if (ex->ureq) {
        struct evhttp_request *q = ex->ureq;
        ex->ureq = NULL;
        evhttp_cancel_request(q);
    }
    conn_release(ex, false);
    if (ex->snap)
        kl_snapshot_release(ex->snap);
    if (ex->auth) {
        OPENSSL_cleanse(ex->auth, strlen(ex->auth));
        free(ex->auth);
    }
    free(ex->body);
    free(ex->t.uri);
    free(ex);
}

/* Stops the upstream side: cancels the request in flight and drops its connection. */
static void ex_cancel_upstream(exchange *ex)
{
    evtimer_del(ex->timer);
    if (ex->ureq) {
        struct evhttp_request *q = ex->ureq;
        ex->ureq = NULL;
        evhttp_cancel_request(q); /* runs on_error(CANCEL) only */
    }
    conn_release(ex, false);
}

static const char *uperr_name(kl_upstream_err e)
{
    switch (e) {
    case KL_UPERR_CONNECT: return "connect";
    case KL_UPERR_TIMEOUT: return "timeout";
    case KL_UPERR_PROTOCOL: return "protocol";
    default: return "status5xx";
    }
}

static void log_failure(exchange *ex, kl_upstream_err kind, const char *detail)
{
    kl_log(KL_LOG_WARN, "upstream_error", "kind", uperr_name(kind), "upstream", ex->t.host_header,
           "deployment", ex->d ? ex->d->name : NULL, "request_id",
           ex->r ? kl_http_req_id(ex->r) : NULL, "detail", detail, NULL);
}

/* Ends the exchange after a failure: 502/504 if nothing was sent yet, else the stream
 * ends where it is. */
static void ex_fail(exchange *ex, kl_upstream_err kind, const char *detail)
{
    kl_http_req *r = ex->r;
    bool started = ex->started;
    kl_metrics_upstream_error(ex->u->metrics, kind);
    log_failure(ex, kind, detail);
    ex_cancel_upstream(ex);
    ex_free(ex);
    if (!r)
        return;
    kl_http_req_on_abort(r, NULL, NULL);
    if (started)
        kl_http_stream_end(r);
    else if (kind == KL_UPERR_TIMEOUT)
        kl_gateway_reply_gateway_timeout(r);
    else
        kl_gateway_reply_bad_gateway(r);
}

static void copy_passthrough_headers(kl_http_req *r, struct evhttp_request *q)
{
    struct evkeyvalq *h = evhttp_request_get_input_headers(q);
    for (size_t i = 0; i < sizeof(passthrough_headers) / sizeof(passthrough_headers[0]); i++) {
        const char *v = evhttp_find_header(h, passthrough_headers[i]);
        if (v)
            kl_http_set_header(r, passthrough_headers[i], v);
    }
}

static const char *response_type(struct evhttp_request *q)
{
    const char *ct = evhttp_find_header(evhttp_request_get_input_headers(q), "Content-Type");
    return ct && !strpbrk(ct, "\r\n") ? ct : "application/octet-stream";
}

static void note_status(exchange *ex, int status)
{
    char s[16];
    snprintf(s, sizeof(s), "%d", status);
    kl_http_req_log_field(ex->r, "upstream_status", s);
    if (status >= 500)
        kl_metrics_upstream_error(ex->u->metrics, KL_UPERR_STATUS5XX);
}

static void on_drain(void *arg);

static void pause_reading(exchange *ex)
{
    struct bufferevent *bev = evhttp_connection_get_bufferevent(ex->conn->evcon);
    bufferevent_disable(bev, EV_READ);
    ex->paused = true;
    evtimer_del(ex->timer); /* the client is slow, not the upstream */
    kl_http_req_on_drain(ex->r, on_drain, ex);
}

static void on_drain(void *arg)
{
    exchange *ex = arg;
    if (!ex->paused || !ex->ureq || !ex->conn)
        return;
    ex->paused = false;
    struct bufferevent *bev = evhttp_connection_get_bufferevent(ex->conn->evcon);
    bufferevent_enable(bev, EV_READ);
    timer_arm(ex, ex->u->timeout_ms);
    /* Bytes read before the pause wait in the input buffer; no socket event would
     * announce them again. */
    if (evbuffer_get_length(bufferevent_get_input(bev)) > 0)
        bufferevent_trigger(bev, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

static void on_abort(void *arg)
{
    exchange *ex = arg;
    ex->r = NULL; /* gone once we return */
    ex_cancel_upstream(ex);
    ex_free(ex);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    exchange *ex = arg;
    if (ex->ph == PH_CONNECTING && ex->conn && conn_connected(ex->conn)) {
        ex->ph = PH_WAITING;
        int rest = ex->u->timeout_ms - ex->u->connect_timeout_ms;
        if (rest > 0) {
            timer_arm(ex, rest);
            return;
        }
    }
    ex_fail(ex, KL_UPERR_TIMEOUT,
            ex->ph == PH_CONNECTING ? "no connection within the connect timeout"
                                    : "no answer within the timeout");
}

static void on_error(enum evhttp_request_error err, void *arg)
{
    exchange *ex = arg;
    if (err != EVREQ_HTTP_REQUEST_CANCEL)
        ex->uperr = (int)err;
}

static int on_headers(struct evhttp_request *q, void *arg)
{
    (void)q;
    exchange *ex = arg;
    ex->got_headers = true;
    ex->ph = PH_WAITING;
    timer_arm(ex, ex->u->timeout_ms);
    return 0;
}

static void on_chunk(struct evhttp_request *q, void *arg)
{
    exchange *ex = arg;
    struct evbuffer *in = evhttp_request_get_input_buffer(q);
    size_t n = evbuffer_get_length(in);
    if (!ex->r || n == 0)
        return;
    if (!ex->started) {
        int status = evhttp_request_get_response_code(q);
        copy_passthrough_headers(ex->r, q);
        note_status(ex, status);
        if (kl_http_stream_begin(ex->r, status, response_type(q)) != 0) {
            ex_fail(ex, KL_UPERR_PROTOCOL, "client response could not start");
            return;
        }
        ex->started = true;
    }
    unsigned char *p = evbuffer_pullup(in, -1);
    if (!p || kl_http_stream_write(ex->r, p, n) != 0) {
        ex_fail(ex, KL_UPERR_PROTOCOL, "client stream failed");
        return;
    }
    evbuffer_drain(in, n);
    timer_arm(ex, ex->u->timeout_ms);
    if (kl_http_stream_pending(ex->r) > KL_MAX_OUTPUT_BUFFER / 2)
        pause_reading(ex);
}

static void ex_send(exchange *ex, bool fresh);

static void on_done(struct evhttp_request *q, void *arg)
{
    exchange *ex = arg;
    int status = q ? evhttp_request_get_response_code(q) : 0;
    ex->ureq = NULL; /* evhttp frees it after we return */
    evtimer_del(ex->timer);

    if (status == 0) {
        int err = ex->uperr;
        char tls_detail[160];
        bool tls_failed =
            ex->conn && ex->pool->tls && conn_tls_error(ex->conn, tls_detail, sizeof(tls_detail));
        conn_release(ex, false);
        /* A kept-alive connection the server closed just as we reused it: try once on
         * a fresh one, since nothing of the answer can have been produced. */
        if (ex->reused && !ex->retried && !ex->got_headers && err != EVREQ_HTTP_TIMEOUT) {
            ex->retried = true;
            ex_send(ex, true);
            return;
        }
        if (err == EVREQ_HTTP_TIMEOUT)
            ex_fail(ex, KL_UPERR_TIMEOUT, "no answer within the timeout");
        else if (tls_failed && !ex->got_headers)
            ex_fail(ex, KL_UPERR_CONNECT, tls_detail);
        else if (!ex->got_headers &&
                 (err < 0 || err == EVREQ_HTTP_EOF || err == EVREQ_HTTP_BUFFER_ERROR))
            ex_fail(ex, KL_UPERR_CONNECT,
                    err < 0 ? "connection refused or not made" : "connection closed or failed");
        else
            ex_fail(ex, KL_UPERR_PROTOCOL,
                    err == EVREQ_HTTP_DATA_TOO_LONG ? "answer too large or malformed"
                                                    : "malformed or truncated answer");
        return;
    }

    conn_release(ex, response_reusable(q));
    kl_http_req *r = ex->r;
    if (!r) {
        ex_free(ex);
        return;
    }
    kl_http_req_on_abort(r, NULL, NULL);
    if (ex->started) {
        ex_free(ex);
        kl_http_stream_end(r);
        return;
    }
    /* No body bytes at all (or none left): answer in one piece. */
    copy_passthrough_headers(r, q);
    note_status(ex, status);
    struct evbuffer *in = evhttp_request_get_input_buffer(q);
    size_t n = evbuffer_get_length(in);
    unsigned char *p = n ? evbuffer_pullup(in, -1) : NULL;
    const char *ct = response_type(q);
    ex_free(ex);
    kl_http_respond(r, status, ct, p ? (const void *)p : "", p ? n : 0);
}

static void ex_send(exchange *ex, bool fresh)
{
    kl_upstream *u = ex->u;
    struct evhttp_request *q = NULL;
    ex->conn = conn_acquire(u, ex->pool, fresh, &ex->reused);
    if (!ex->conn) {
        ex_fail(ex, KL_UPERR_CONNECT, "no connection object");
        return;
    }
    q = evhttp_request_new(on_done, ex);
    if (!q) {
        ex_fail(ex, KL_UPERR_CONNECT, "out of memory");
        return;
    }
    evhttp_request_set_chunked_cb(q, on_chunk);
    evhttp_request_set_header_cb(q, on_headers);
    evhttp_request_set_error_cb(q, on_error);
    struct evkeyvalq *h = evhttp_request_get_output_headers(q);
    if (evhttp_add_header(h, "Host", ex->t.host_header) != 0 ||
        evhttp_add_header(h, "Content-Type", "application/json") != 0 ||
        evhttp_add_header(h, "Accept", ex->accept) != 0 ||
        (ex->auth && evhttp_add_header(h, "Authorization", ex->auth) != 0) ||
        evbuffer_add(evhttp_request_get_output_buffer(q), ex->body, ex->body_len) != 0) {
        evhttp_request_free(q);
        ex_fail(ex, KL_UPERR_PROTOCOL, "request could not be built");
        return;
    }
    ex->ureq = q;
    ex->uperr = -1;
    ex->got_headers = false;
    ex->ph = ex->reused ? PH_WAITING : PH_CONNECTING;
    int first = ex->u->timeout_ms;
    if (!ex->reused && ex->u->connect_timeout_ms < first)
        first = ex->u->connect_timeout_ms;
    timer_arm(ex, first);
    if (evhttp_make_request(ex->conn->evcon, q, EVHTTP_REQ_POST, ex->t.uri) != 0) {
        ex->ureq = NULL; /* freed by evhttp */
        ex_fail(ex, KL_UPERR_CONNECT, "request could not be started");
    }
    /* ex may be gone here: the request callback can run inside evhttp_make_request. */
}

void kl_upstream_forward(kl_upstream *u, kl_http_req *r, kl_snapshot *snap, const kl_deployment *d,
                         kl_gateway_route_kind kind, json_t *body)
{
    exchange *ex = calloc(1, sizeof(*ex));
    if (!ex) {
        kl_gateway_reply_internal(r);
        return;
    }
    ex->u = u;
    ex->r = r;
    ex->d = d;
    ex->uperr = -1;
    if (!d->upstream_url || kl_upstream_target_parse(d->upstream_url, kind, &ex->t) != 0 ||
        (ex->t.tls && !u->tls)) {
        kl_log(KL_LOG_WARN, "upstream_error", "kind", "config", "deployment", d->name, "request_id",
               kl_http_req_id(r), "detail", "unusable upstream url", NULL);
        free(ex->t.uri);
        free(ex);
        kl_gateway_reply_bad_gateway(r);
        return;
    }
    const char *model = d->upstream_model && *d->upstream_model ? d->upstream_model : d->name;
    if (json_object_set_new(body, "model", json_string(model)) == 0)
        ex->body = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    ex->accept =
        json_is_true(json_object_get(body, "stream")) ? "text/event-stream" : "application/json";
    if (d->upstream_credential && *d->upstream_credential) {
        size_t cl = strlen(d->upstream_credential);
        ex->auth = malloc(cl + 8);
        if (ex->auth) {
            memcpy(ex->auth, "Bearer ", 7);
            memcpy(ex->auth + 7, d->upstream_credential, cl + 1);
        }
    }
    ex->timer = evtimer_new(u->base, on_timer, ex);
    ex->pool = pool_get(u, &ex->t);
    if (!ex->body || !ex->timer || !ex->pool ||
        (d->upstream_credential && *d->upstream_credential && !ex->auth)) {
        ex_free(ex);
        kl_gateway_reply_internal(r);
        return;
    }
    ex->body_len = strlen(ex->body);
    ex->snap = snap;
    kl_snapshot_retain(snap);
    ex->next = u->active;
    if (u->active)
        u->active->prev = ex;
    u->active = ex;
    kl_http_req_on_abort(r, on_abort, ex);
    ex_send(ex, false);
}

/* ------------------------------------------------------------------ lifecycle */

int kl_upstream_new(const kl_upstream_cfg *cfg, kl_upstream **out)
{
    *out = NULL;
    if (!cfg || !cfg->base)
        return KL_EINVAL;
    kl_upstream *u = calloc(1, sizeof(*u));
    if (!u)
        return KL_ENOMEM;
    u->base = cfg->base;
    u->tls = cfg->tls;
    u->metrics = cfg->metrics;
    u->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : KL_UPSTREAM_TIMEOUT_MS;
    u->connect_timeout_ms =
        cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : KL_UPSTREAM_CONNECT_TIMEOUT_MS;
    /* Non-blocking name resolution (resolv.conf and /etc/hosts): a worker never blocks. */
    u->dns = evdns_base_new(u->base,
                            EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    u->reap_ev = event_new(u->base, -1, 0, reap_cb, u);
    if (!u->dns || !u->reap_ev) {
        kl_upstream_free(u);
        return KL_ENOMEM;
    }
    *out = u;
    return 0;
}

void kl_upstream_free(kl_upstream *u)
{
    if (!u)
        return;
    while (u->active) {
        exchange *ex = u->active;
        if (ex->r) {
            kl_http_req_on_abort(ex->r, NULL, NULL);
            kl_http_req_on_drain(ex->r, NULL, NULL);
            ex->r = NULL;
        }
        ex_cancel_upstream(ex);
        ex_free(ex);
    }
    while (u->pools) {
        up_pool *p = u->pools;
        u->pools = p->next;
        while (p->idle)
            reap_push(p->idle);
        free(p);
    }
    reap_cb(-1, 0, u);
    if (u->reap_ev)
        event_free(u->reap_ev);
    if (u->dns)
        evdns_base_free(u->dns, 0);
    free(u);
}
