/* Proxying to OpenAI-compatible model servers: a lean HTTP/1.1 client on bufferevents
 * with per-worker pools of kept-alive connections and streaming pass-through.
 *
 * The per-request path is kept short because it is the gateway's hot path:
 *  - the request is built as one contiguous buffer (upstream_wire.c). On a kept-alive
 *    plain-HTTP connection it is sent with one send() while EV_WRITE stays disabled, so
 *    writing costs no epoll_ctl; only a partial write queues the rest in the
 *    bufferevent and enables EV_WRITE until it drains. TLS connections use the
 *    bufferevent normally.
 *  - EV_READ stays enabled for a connection's whole life (an idle one notices a close or
 *    stray bytes and is dropped); it is disabled only while the client is slower than
 *    the model server (backpressure) and re-enabled from the client's drain callback.
 *  - the response is framed by http_parser, one parser per exchange, and passed through
 *    as it arrives; the client response begins with the first body byte, an empty body
 *    is answered in one piece when the answer completes.
 * Timers are ours: a connect check at min(connect_timeout_ms, timeout_ms) (is the
 * socket connected?), then "no byte for timeout_ms", re-armed on every read and paused
 * while the client is slow. Before any byte reached the client a failure is a 502
 * (refused, reset, EOF, TLS, garbage) or a 504 (timeout); after that the client's
 * connection is closed without the terminating chunk, so the answer is visibly cut. A
 * kept-alive connection that fails before any byte of the answer is retried once on a
 * fresh connection (the server may have closed it just as it was reused).
 *
 * Freeing: bufferevent_free() may be called from the bufferevent's own callbacks.
 * libevent 2.1 holds a reference on the bufferevent while it runs a callback
 * (bufferevent_readcb/writecb and the deferred-callback runner incref before and decref
 * after), and bufferevent_free() clears the callbacks first, so the memory and the
 * socket go only once libevent is done with them and we are never called again. Our
 * own structures are freed as soon as nothing of ours refers to them; every path that
 * ends an exchange returns straight out of the callback afterwards.
 * Connecting: the name is resolved by evdns (IP literals and /etc/hosts answer at once),
 * every address of the answer is judged by the operator's egress policy
 * (policy/egress.h) and only then is the first one connected to. One refused address
 * refuses the whole name (502, no connection attempted), so a name that resolves
 * somewhere new on each lookup (DNS rebinding) is judged on what it resolves to now;
 * kept-alive connections were judged when they were made.
 * Callbacks that can run synchronously inside a call we make (the lookup's answer, the
 * event callback of a connect that fails at once) are recorded while in_connect is set
 * and handled once that call has returned. */
#include "gateway/upstream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event_struct.h>
#include <event2/http.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/util.h"
#include "gateway/reply.h"
#include "gateway/upstream_wire.h"

typedef struct up_pool up_pool;
typedef struct exchange exchange;
typedef struct up_resolve up_resolve;

typedef struct up_conn {
    kl_upstream *u;
    up_pool *pool;
    struct bufferevent *bev;
    exchange *ex; /* the exchange using it; NULL while idle */
    bool tls;
    bool idle;                 /* on the pool's idle list */
    bool connected;            /* the transport (TCP, and TLS if any) was established */
    bool in_connect;           /* inside evdns_getaddrinfo() or bufferevent_socket_connect() */
    short sync_events;         /* events reported during it, handled after it returns */
    up_resolve *rs;            /* the name lookup in flight, or NULL */
    int dns_err;               /* the lookup failed (EVUTIL_EAI_*), 0 if not */
    kl_egress_verdict refused; /* the egress policy refused an address */
    char refused_addr[INET6_ADDRSTRLEN]; /* which one, for the log */
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

/* A name lookup in flight for a connection. evdns calls back exactly once, cancelled or
 * not, possibly after the connection is gone: c is NULL then and the callback only
 * frees this. */
struct up_resolve {
    up_conn *c;
    struct evdns_getaddrinfo_request *req; /* set once evdns_getaddrinfo() returned */
};

typedef enum phase { PH_CONNECTING = 0, PH_WAITING } phase;

/* Answer bytes parsed (and so streamed to the client) between two looks at how much
 * the client has queued: keeps the client's output within KL_MAX_OUTPUT_BUFFER. */
#define FEED_SLICE 16384

struct exchange {
    kl_upstream *u;
    kl_http_req *r;    /* the client request; valid while the exchange exists */
    kl_snapshot *snap; /* our reference: keeps d alive */
    const kl_deployment *d;
    kl_upstream_target t;
    up_pool *pool;
    char *req; /* the whole request, kept for one retry; may hold the credential */
    size_t req_len;
    up_conn *conn;
    struct event timer;
    phase ph;
    bool reused;           /* the connection carried an earlier request */
    bool retried;          /* a failed reused connection gets one fresh attempt */
    bool got_bytes;        /* some of the answer has arrived */
    bool started;          /* the client response has begun */
    bool paused;           /* reading upstream stopped until the client drains */
    bool eof_pending;      /* the server closed; bytes before the close still to pass on */
    const char *cb_detail; /* why a parser callback stopped the exchange */
    kl_upstream_resp resp;
    struct exchange *next, *prev;
};

struct kl_upstream {
    struct event_base *base;
    struct evdns_base *dns;
    SSL_CTX *tls;
    kl_metrics *metrics;
    const kl_egress *egress;
    int timeout_ms;
    int connect_timeout_ms;
    up_pool *pools;
    exchange *active;
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

static void conn_read_cb(struct bufferevent *bev, void *arg);
static void conn_write_cb(struct bufferevent *bev, void *arg);
static void conn_event_cb(struct bufferevent *bev, short what, void *arg);
static void conn_event(up_conn *c, short what);

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

/* Closes c for good (see the file comment on freeing from a callback). */
static void conn_close(up_conn *c)
{
    idle_unlink(c);
    if (c->rs) {
        up_resolve *rs = c->rs;
        c->rs = NULL;
        rs->c = NULL; /* its callback (now or later) only frees it */
        if (rs->req)
            evdns_getaddrinfo_cancel(rs->req);
    }
    if (c->bev)
        bufferevent_free(c->bev);
    free(c);
}

static bool is_ip_literal(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* A new connection object with its bufferevent; not connected yet. */
static up_conn *conn_new(kl_upstream *u, up_pool *p)
{
    up_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->u = u;
    c->pool = p;
    c->tls = p->tls;
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
            c->bev =
                bufferevent_openssl_socket_new(u->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                               BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
        if (!c->bev) {
            SSL_free(ssl);
            goto fail;
        }
        /* Many servers close without close_notify once the response is complete. */
        bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
    } else {
        c->bev = bufferevent_socket_new(u->base, -1, BEV_OPT_CLOSE_ON_FREE);
        if (!c->bev)
            goto fail;
    }
    bufferevent_setcb(c->bev, conn_read_cb, c->tls ? NULL : conn_write_cb, conn_event_cb, c);
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

/* Puts c back on its pool's idle list (most recent first), or closes it. */
static void conn_park(up_conn *c)
{
    up_pool *p = c->pool;
    c->ex = NULL;
    if (p->n_idle >= KL_UPSTREAM_MAX_IDLE_CONNS ||
        evbuffer_get_length(bufferevent_get_output(c->bev)) > 0) {
        conn_close(c);
        return;
    }
    c->idle = true;
    c->prev = NULL;
    c->next = p->idle;
    if (p->idle)
        p->idle->prev = c;
    p->idle = c;
    p->n_idle++;
}

/* True once the TCP connection is established (the TLS handshake may still run). */
static bool conn_tcp_up(const up_conn *c)
{
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    return fd >= 0 && getpeername(fd, (struct sockaddr *)&ss, &len) == 0;
}

/* Describes why a TLS connection failed (certificate verification first), for the
 * log; false if TLS reported nothing. Clears the connection's OpenSSL errors. */
static bool conn_tls_error(const up_conn *c, char *out, size_t outlen)
{
    SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
    unsigned long e, first = 0;
    /* The list also holds bare SSL_get_error() codes (library 0), e.g. for a refused
     * connection; only real OpenSSL errors say something about TLS. */
    while ((e = bufferevent_get_openssl_error(c->bev)) != 0)
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

/* The lookup answered: judges every address, then connects to the first. Returns
 * BEV_EVENT_ERROR when the lookup failed, an address was refused or the connect failed
 * at once (c->dns_err / c->refused say which), else 0. */
static short conn_connect_resolved(up_conn *c, int result, const struct evutil_addrinfo *res)
{
    if (result != 0 || !res) {
        c->dns_err = result ? result : EVUTIL_EAI_FAIL;
        return BEV_EVENT_ERROR;
    }
    for (const struct evutil_addrinfo *ai = res; ai; ai = ai->ai_next) {
        kl_egress_verdict v = kl_egress_check(c->u->egress, c->pool->host, ai->ai_addr);
        if (v == KL_EGRESS_ALLOWED)
            continue;
        c->refused = v;
        const void *ip =
            ai->ai_family == AF_INET6
                ? (const void *)&((const struct sockaddr_in6 *)(const void *)ai->ai_addr)->sin6_addr
                : (const void *)&((const struct sockaddr_in *)(const void *)ai->ai_addr)->sin_addr;
        if (!evutil_inet_ntop(ai->ai_family, ip, c->refused_addr, sizeof(c->refused_addr)))
            snprintf(c->refused_addr, sizeof(c->refused_addr), "?");
        return BEV_EVENT_ERROR;
    }
    if (bufferevent_socket_connect(c->bev, res->ai_addr, (int)res->ai_addrlen) != 0)
        return BEV_EVENT_ERROR;
    return 0;
}

static void conn_resolved_cb(int result, struct evutil_addrinfo *res, void *arg)
{
    up_resolve *rs = arg;
    up_conn *c = rs->c;
    free(rs);
    if (!c) { /* the connection is gone (cancelled) */
        if (res)
            evutil_freeaddrinfo(res);
        return;
    }
    c->rs = NULL;
    bool outer = c->in_connect; /* answered inside conn_connect()'s evdns_getaddrinfo() */
    c->in_connect = true;
    short ev = conn_connect_resolved(c, result, res);
    if (res)
        evutil_freeaddrinfo(res);
    c->in_connect = outer;
    c->sync_events |= ev;
    if (outer)
        return; /* conn_connect() hands the events on */
    ev = c->sync_events;
    c->sync_events = 0;
    if (ev)
        conn_event(c, ev);
}

/* Starts connecting c with the request already queued in its output: resolve, judge,
 * connect. Returns the events reported synchronously (a failed lookup, a refused address,
 * a failed connect), or 0. */
static short conn_connect(up_conn *c)
{
    up_pool *p = c->pool;
    char port[8];
    snprintf(port, sizeof(port), "%u", (unsigned)p->port);
    struct evutil_addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = EVUTIL_AI_ADDRCONFIG;
    up_resolve *rs = calloc(1, sizeof(*rs));
    c->sync_events = 0;
    if (!rs)
        return BEV_EVENT_ERROR;
    rs->c = c;
    c->rs = rs;
    c->in_connect = true;
    struct evdns_getaddrinfo_request *req =
        evdns_getaddrinfo(c->u->dns, p->host, port, &hints, conn_resolved_cb, rs);
    /* NULL: the callback has run (and freed rs); else it is still to come. */
    if (req)
        rs->req = req;
    c->in_connect = false;
    return c->sync_events;
}

/* Sends data on c. Plain HTTP: straight to the socket, the bufferevent only holds what
 * the socket did not take (EV_WRITE enabled until it drains). 0, KL_EIO or KL_ENOMEM. */
static int conn_send(up_conn *c, const char *data, size_t len)
{
    if (c->tls)
        return bufferevent_write(c->bev, data, len) == 0 ? 0 : KL_ENOMEM;
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return KL_EIO;
        n = 0;
    }
    if ((size_t)n == len)
        return 0;
    if (evbuffer_add(bufferevent_get_output(c->bev), data + n, len - (size_t)n) != 0)
        return KL_ENOMEM;
    return bufferevent_enable(c->bev, EV_WRITE) == 0 ? 0 : KL_EIO;
}

/* ------------------------------------------------------------------ exchanges */

static void timer_arm(exchange *ex, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(&ex->timer, &tv);
}

/* Closes the exchange's connection (never back to the pool). */
static void ex_drop_conn(exchange *ex)
{
    up_conn *c = ex->conn;
    ex->conn = NULL;
    if (c) {
        c->ex = NULL;
        conn_close(c);
    }
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
    event_del(&ex->timer);
    ex_drop_conn(ex);
    if (ex->snap)
        kl_snapshot_release(ex->snap);
    if (ex->req) {
        OPENSSL_cleanse(ex->req, ex->req_len);
        free(ex->req);
    }
    free(ex->t.uri);
    free(ex);
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
 * ends where it is. The answer goes last, after everything of ours is released. */
static void ex_fail(exchange *ex, kl_upstream_err kind, const char *detail)
{
    kl_http_req *r = ex->r;
    bool started = ex->started;
    kl_metrics_upstream_error(ex->u->metrics, kind);
    log_failure(ex, kind, detail);
    ex_free(ex);
    if (!r)
        return;
    kl_http_req_on_abort(r, NULL, NULL);
    if (started)
        kl_http_stream_abort(r); /* cut short: the client must see it is incomplete */
    else if (kind == KL_UPERR_TIMEOUT)
        kl_gateway_reply_gateway_timeout(r);
    else
        kl_gateway_reply_bad_gateway(r);
}

/* Ends the exchange when the egress policy refused the backend's address: nothing was
 * sent anywhere. The log says what was refused and why (for the operator); the client
 * gets only that the policy refused it. */
static void ex_refuse(exchange *ex, kl_egress_verdict v, const char *addr)
{
    kl_http_req *r = ex->r;
    kl_metrics_upstream_error(ex->u->metrics, KL_UPERR_CONNECT);
    kl_log(KL_LOG_WARN, "upstream_refused", "reason", kl_egress_reason(v), "address", addr,
           "upstream", ex->t.host_header, "deployment", ex->d ? ex->d->name : NULL, "request_id",
           r ? kl_http_req_id(r) : NULL, NULL);
    ex_free(ex);
    if (!r)
        return;
    kl_http_req_on_abort(r, NULL, NULL);
    kl_gateway_reply_egress_refused(r);
}

static void copy_passthrough_headers(exchange *ex)
{
    for (size_t i = 1; i < KL_UPSTREAM_RESP_NHEADERS; i++) {
        const char *v = kl_upstream_resp_value(&ex->resp, i);
        if (v)
            kl_http_set_header(ex->r, kl_upstream_resp_names[i], v);
    }
}

static const char *response_type(const exchange *ex)
{
    const char *ct = kl_upstream_resp_value(&ex->resp, 0);
    return ct ? ct : "application/octet-stream";
}

static void note_status(exchange *ex, int status)
{
    char s[16];
    snprintf(s, sizeof(s), "%d", status);
    kl_http_req_log_field(ex->r, "upstream_status", s);
    if (status >= 500)
        kl_metrics_upstream_error(ex->u->metrics, KL_UPERR_STATUS5XX);
}

static int on_resp_head(void *arg, const kl_upstream_resp *rp)
{
    (void)rp;
    exchange *ex = arg;
    ex->ph = PH_WAITING;
    return 0;
}

static int on_resp_body(void *arg, const char *data, size_t len)
{
    exchange *ex = arg;
    if (len == 0)
        return 0;
    if (!ex->started) {
        copy_passthrough_headers(ex);
        note_status(ex, ex->resp.status);
        if (kl_http_stream_begin(ex->r, ex->resp.status, response_type(ex)) != 0) {
            ex->cb_detail = "client response could not start";
            return KL_EIO;
        }
        ex->started = true;
    }
    if (kl_http_stream_write(ex->r, data, len) != 0) {
        ex->cb_detail = "client stream failed";
        return KL_EIO;
    }
    return 0;
}

static const kl_upstream_resp_cb resp_cb = {.head = on_resp_head, .body = on_resp_body};

/* The answer is complete: the connection goes back to the pool if it can carry another
 * request (clean is false if bytes followed the answer), the client's answer ends. */
static void ex_complete(exchange *ex, bool clean)
{
    up_conn *c = ex->conn;
    ex->conn = NULL;
    event_del(&ex->timer);
    if (c) {
        if (clean && ex->resp.keep_alive)
            conn_park(c);
        else {
            c->ex = NULL;
            conn_close(c);
        }
    }
    kl_http_req *r = ex->r;
    kl_http_req_on_abort(r, NULL, NULL);
    if (ex->started) {
        ex_free(ex);
        kl_http_stream_end(r);
        return;
    }
    /* No body bytes at all: answered in one piece. */
    int status = ex->resp.status;
    char ct[KL_UPSTREAM_RESP_CAPTURE];
    snprintf(ct, sizeof(ct), "%s", response_type(ex));
    copy_passthrough_headers(ex);
    note_status(ex, status);
    ex_free(ex);
    kl_http_respond(r, status, ct, "", 0);
}

static void on_drain(void *arg);

static void pause_reading(exchange *ex)
{
    bufferevent_disable(ex->conn->bev, EV_READ);
    ex->paused = true;
    evtimer_del(&ex->timer); /* the client is slow, not the upstream */
    kl_http_req_on_drain(ex->r, on_drain, ex);
}

static void on_drain(void *arg)
{
    exchange *ex = arg;
    if (!ex->paused || !ex->conn)
        return;
    ex->paused = false;
    struct bufferevent *bev = ex->conn->bev;
    bufferevent_enable(bev, EV_READ);
    timer_arm(ex, ex->u->timeout_ms);
    /* Bytes read before the pause wait in the input buffer; no socket event would
     * announce them again. Deferred: this runs inside the server's write callback. */
    if (evbuffer_get_length(bufferevent_get_input(bev)) > 0)
        bufferevent_trigger(bev, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

/* Parses what the connection has read. Returns false if the exchange ended (it is
 * freed then). */
static bool ex_process(exchange *ex)
{
    struct evbuffer *in = bufferevent_get_input(ex->conn->bev);
    if (evbuffer_get_length(in) == 0)
        return true;
    ex->got_bytes = true;
    ex->ph = PH_WAITING;
    int rc = 0;
    bool lagging = false;
    while (rc == 0 && !lagging && evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        /* At most FEED_SLICE at a time, checking the client between slices: what was
         * read may be more than the client's output buffer can take, and the rest waits
         * here (on_drain picks it up) rather than overflowing it. */
        size_t used = 0;
        rc = kl_upstream_resp_feed(&ex->resp, v.iov_base,
                                   v.iov_len < FEED_SLICE ? v.iov_len : FEED_SLICE, &used);
        evbuffer_drain(in, used);
        lagging = ex->started && kl_http_stream_pending(ex->r) > KL_MAX_OUTPUT_BUFFER / 2;
    }
    if (rc == 1) {
        ex_complete(ex, evbuffer_get_length(in) == 0);
        return false;
    }
    if (rc < 0) {
        const char *detail = ex->cb_detail      ? ex->cb_detail
                             : rc == KL_ETOOBIG ? "answer too large"
                                                : "malformed answer";
        ex_fail(ex, KL_UPERR_PROTOCOL, detail);
        return false;
    }
    timer_arm(ex, ex->u->timeout_ms);
    if (lagging)
        pause_reading(ex);
    return true;
}

static void ex_send(exchange *ex, bool fresh);

/* The connection failed or closed, or its address was refused. */
static void ex_conn_failed(exchange *ex)
{
    up_conn *c = ex->conn;
    char tls_detail[160];
    bool tls_failed = c && c->tls && conn_tls_error(c, tls_detail, sizeof(tls_detail));
    bool was_connected = c && c->connected;
    int dns_err = c ? c->dns_err : 0;
    kl_egress_verdict refused = c ? c->refused : KL_EGRESS_ALLOWED;
    char refused_addr[INET6_ADDRSTRLEN] = "";
    if (refused != KL_EGRESS_ALLOWED)
        memcpy(refused_addr, c->refused_addr, sizeof(refused_addr));
    ex_drop_conn(ex);
    if (refused != KL_EGRESS_ALLOWED) {
        ex_refuse(ex, refused, refused_addr);
        return;
    }
    /* A kept-alive connection the server closed just as we reused it: try once on a
     * fresh one, since nothing of the answer can have been produced. */
    if (ex->reused && !ex->retried && !ex->got_bytes) {
        ex->retried = true;
        ex_send(ex, true);
        return;
    }
    if (ex->resp.head_done)
        ex_fail(ex, KL_UPERR_PROTOCOL, "malformed or truncated answer");
    else if (tls_failed)
        ex_fail(ex, KL_UPERR_CONNECT, tls_detail);
    else if (dns_err)
        ex_fail(ex, KL_UPERR_CONNECT, "name resolution failed");
    else
        ex_fail(ex, KL_UPERR_CONNECT,
                was_connected ? "connection closed or failed" : "connection refused or not made");
}

static void ex_eof(exchange *ex);

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
    up_conn *c = arg;
    if (!c->ex) {
        conn_close(c); /* stray bytes on an idle connection */
        return;
    }
    c->connected = true;
    exchange *ex = c->ex;
    if (ex_process(ex) && ex->eof_pending && evbuffer_get_length(bufferevent_get_input(bev)) == 0)
        ex_eof(ex);
}

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
    (void)arg;
    /* The queued part of a request has gone: back to writing straight to the socket. */
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        bufferevent_disable(bev, EV_WRITE);
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    up_conn *c = arg;
    if (c->in_connect) {
        c->sync_events |= what;
        return;
    }
    conn_event(c, what);
}

static void conn_event(up_conn *c, short what)
{
    if (what & BEV_EVENT_CONNECTED) {
        c->connected = true;
        return;
    }
    exchange *ex = c->ex;
    if (!ex) {
        conn_close(c); /* an idle connection closed by the server */
        return;
    }
    if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR)) {
        if (!ex_process(ex))
            return;
        if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0) {
            /* The client lags: the rest of the answer is passed on as it drains, and the
             * close is looked at once nothing of it is left (conn_read_cb). */
            ex->eof_pending = true;
            return;
        }
        ex_eof(ex);
        return;
    }
    ex_conn_failed(ex);
}

/* The server closed and every byte it sent has been parsed. */
static void ex_eof(exchange *ex)
{
    /* A close-delimited answer ends here; any other is cut short. */
    size_t used;
    int rc = kl_upstream_resp_feed(&ex->resp, NULL, 0, &used);
    if (rc == 1) {
        ex_complete(ex, false);
        return;
    }
    if (rc != KL_EIO) {
        ex_fail(ex, KL_UPERR_PROTOCOL, "malformed answer");
        return;
    }
    ex_conn_failed(ex);
}

static void ex_send(exchange *ex, bool fresh)
{
    kl_upstream *u = ex->u;
    up_pool *p = ex->pool;
    up_conn *c = NULL;
    ex->reused = false;
    if (!fresh && p->idle) {
        c = p->idle;
        idle_unlink(c);
        ex->reused = true;
    } else {
        c = conn_new(u, p);
        if (!c) {
            ex_fail(ex, KL_UPERR_CONNECT, "no connection object");
            return;
        }
    }
    ex->conn = c;
    c->ex = ex;
    ex->got_bytes = false;
    ex->cb_detail = NULL;
    kl_upstream_resp_init(&ex->resp, &resp_cb, ex);
    ex->ph = ex->reused ? PH_WAITING : PH_CONNECTING;
    int first = u->timeout_ms;
    if (!ex->reused && u->connect_timeout_ms < first)
        first = u->connect_timeout_ms;
    timer_arm(ex, first);

    if (ex->reused) {
        int rc = conn_send(c, ex->req, ex->req_len);
        if (rc == KL_EIO)
            ex_conn_failed(ex);
        else if (rc)
            ex_fail(ex, KL_UPERR_CONNECT, "out of memory");
        return;
    }
    /* A new connection: the request waits in the output and goes once connected. */
    if (bufferevent_write(c->bev, ex->req, ex->req_len) != 0 ||
        bufferevent_enable(c->bev, EV_READ | EV_WRITE) != 0) {
        ex_fail(ex, KL_UPERR_CONNECT, "out of memory");
        return;
    }
    short sync = conn_connect(c);
    if (sync)
        conn_event(c, sync);
    /* ex may be gone here. */
}

static void on_abort(void *arg)
{
    exchange *ex = arg;
    ex->r = NULL; /* gone once we return */
    ex_free(ex);  /* the connection is closed, never reused mid-answer */
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    exchange *ex = arg;
    if (ex->ph == PH_CONNECTING && ex->conn && conn_tcp_up(ex->conn)) {
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
    if (!d->upstream_url || kl_upstream_target_parse(d->upstream_url, kind, &ex->t) != 0 ||
        (ex->t.tls && !u->tls)) {
        kl_log(KL_LOG_WARN, "upstream_error", "kind", "config", "deployment", d->name, "request_id",
               kl_http_req_id(r), "detail", "unusable upstream url", NULL);
        free(ex->t.uri);
        free(ex);
        kl_gateway_reply_bad_gateway(r);
        return;
    }
    event_assign(&ex->timer, u->base, -1, 0, on_timer, ex);
    ex->next = u->active;
    if (u->active)
        u->active->prev = ex;
    u->active = ex;
    ex->snap = snap;
    kl_snapshot_retain(snap);

    const char *model = d->upstream_model && *d->upstream_model ? d->upstream_model : d->name;
    const char *accept = NULL;
    int rc = KL_ENOMEM;
    if (json_object_set_new(body, "model", json_string(model)) == 0) {
        accept = json_is_true(json_object_get(body, "stream")) ? "text/event-stream"
                                                               : "application/json";
        size_t in_len = 0;
        kl_http_req_body(r, &in_len);
        rc = kl_upstream_request_build(&ex->t, accept, d->upstream_credential, body,
                                       in_len + strlen(model) + 64, &ex->req, &ex->req_len);
    }
    ex->pool = rc ? NULL : pool_get(u, &ex->t);
    if (rc == KL_EINVAL && d->upstream_credential && strpbrk(d->upstream_credential, "\r\n")) {
        ex_fail(ex, KL_UPERR_PROTOCOL, "request could not be built");
        return;
    }
    if (!ex->pool) {
        ex_free(ex);
        kl_gateway_reply_internal(r);
        return;
    }
    kl_http_req_on_abort(r, on_abort, ex);
    ex_send(ex, false);
}

/* ------------------------------------------------------------------ lifecycle */

int kl_upstream_new(const kl_upstream_cfg *cfg, kl_upstream **out)
{
    *out = NULL;
    if (!cfg || !cfg->base || !cfg->egress)
        return KL_EINVAL;
    kl_upstream *u = calloc(1, sizeof(*u));
    if (!u)
        return KL_ENOMEM;
    u->base = cfg->base;
    u->tls = cfg->tls;
    u->metrics = cfg->metrics;
    u->egress = cfg->egress;
    u->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : KL_UPSTREAM_TIMEOUT_MS;
    u->connect_timeout_ms =
        cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : KL_UPSTREAM_CONNECT_TIMEOUT_MS;
    /* Non-blocking name resolution (resolv.conf and /etc/hosts): a worker never blocks. */
    u->dns = evdns_base_new(u->base,
                            EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (!u->dns) {
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
            if (ex->paused)
                kl_http_req_on_drain(ex->r, NULL, NULL);
            ex->r = NULL;
        }
        ex_free(ex);
    }
    /* Closing a connection cancels its lookup; the cancelled callbacks are deferred and
     * are dropped with the resolver below (a few bytes each, only at shutdown). */
    while (u->pools) {
        up_pool *p = u->pools;
        u->pools = p->next;
        while (p->idle)
            conn_close(p->idle);
        free(p);
    }
    if (u->dns)
        evdns_base_free(u->dns, 0);
    free(u);
}
