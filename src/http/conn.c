/* Connections of the HTTP server: accept, the bufferevent callbacks, timeouts, feeding the
 * input to the parser and the head to the headers hook, one request at a time, and the
 * close (lingering after a refusal, so the answer is not lost to a reset). See conn.h. */
#include "http/conn.h"

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/limits.h"
#include "common/util.h"
#include "http/req.h"
#include "http/stream.h"

#define LINGER_MS 2000                      /* how long a refused client may keep sending */
#define LINGER_MAX_BYTES (16 * 1024 * 1024) /* ...and how much of it we read and drop */

static void process_input(kl_http_conn *c);

static void timer_set(kl_http_conn *c, int ms)
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

/* ------------------------------------------------------------------- request life */

/* Request ids only need to be unique (they correlate logs with answers), not secret:
 * a random per-thread GUID with a counter added to its low half, formatted without
 * printf. Cheaper than the CSPRNG and vfprintf on every request. */
static void request_id(kl_http_thread *t, char out[KL_UUID_LEN + 1])
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

/* The connection's request, made when its first byte arrives (the parser's new_req) or
 * for a refusal made before any byte did. NULL if out of memory. */
static kl_http_req *conn_req(void *arg)
{
    kl_http_conn *c = arg;
    if (c->req)
        return c->req;
    kl_http_req *r = kl_http_req_new(&c->t->server->buffered);
    if (!r)
        return NULL;
    r->conn = c;
    request_id(c->t, r->id);
    c->req = r;
    return r;
}

/* Frees the connection's own events, those that were made (any may be NULL). */
static void free_events(kl_http_conn *c)
{
    if (c->timer)
        event_free(c->timer);
    if (c->resume)
        event_free(c->resume);
    if (c->flush)
        event_free(c->flush);
}

void kl_http_conn_free(kl_http_conn *c)
{
    kl_http_thread *t = c->t;
    if (c->req) {
        kl_http_req *r = c->req;
        c->req = NULL;
        /* An unfinished request whose handler went asynchronous learns of the abort. */
        if (!r->finished && r->abort_cb)
            r->abort_cb(r->abort_arg);
        /* A request that reached a handler but never finished still gets its log line. */
        if (!r->finished && r->path && r->method[0] && c->t->server->cfg.access_log)
            kl_http_req_log_access(r, true);
        kl_http_req_free(r);
    }
    free_events(c);
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

/* After a refusal the client may still be sending the request we refused. Closing at
 * once with unread bytes makes the kernel send a reset, which can destroy the response
 * before the client reads it; so half-close, discard input for a bounded time, then
 * close (the "lingering close" every HTTP server needs). */
static void close_or_linger(kl_http_conn *c)
{
    if (!c->linger) {
        kl_http_conn_free(c);
        return;
    }
    c->state = KL_CONN_LINGER;
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
static void close_after_flush(kl_http_conn *c)
{
    c->state = KL_CONN_CLOSING;
    c->linger = false;
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
        kl_http_conn_free(c);
}

void kl_http_conn_finish(kl_http_req *r)
{
    kl_http_conn *c = r->conn;
    r->finished = true;
    uint64_t us = kl_now_mono_us() - r->start_us;
    kl_metrics_request(c->t->server->cfg.metrics, r->route, r->status, us);
    if (r->auth_fail >= 0)
        kl_metrics_auth_failure(c->t->server->cfg.metrics, (kl_auth_fail)r->auth_fail);
    if (c->t->server->cfg.access_log)
        kl_http_req_log_access(r, false);
    c->req = NULL;
    kl_http_req_free(r);
    if (!c->keep_alive || c->t->draining) {
        c->state = KL_CONN_CLOSING;
        bufferevent_disable(c->bev, EV_READ);
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
            close_or_linger(c);
        return;
    }
    c->state = KL_CONN_IDLE;
    kl_http_parser_reset(&c->parser);
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

/* A refusal made by the server itself, before any handler ran. Always closes. */
static void refuse(kl_http_conn *c, int status, const char *code, const char *msg)
{
    kl_http_req *r = conn_req(c);
    if (!r) {
        kl_http_conn_free(c);
        return;
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

/* The parser's refusal, answered. The message may live in the parser: refuse copies it
 * into the response at once. */
static void refuse_parsed(kl_http_conn *c)
{
    refuse(c, c->parser.status, c->parser.code, c->parser.msg);
}

/* The head of c's request is complete: the headers hook may refuse it, then the body
 * (if its length is known) is charged to the budget in one piece and given its buffer
 * at once. Returns false if the request was answered; c may then be gone. */
static bool head_accepted(kl_http_conn *c)
{
    kl_http_req *r = c->req;
    kl_http_server *s = c->t->server;
    c->keep_alive = c->parser.keep_alive;
    if (s->cfg.on_headers) {
        /* A refusal leaves the body unread, so the connection cannot carry another
         * request: it is answered with "Connection: close" and closed lingeringly (the
         * client may still be sending the body; an unread close would reset the answer
         * away). The body is never buffered: lingering discards what arrives. */
        bool ka = c->keep_alive;
        /* A request without a body leaves nothing unread: its refusal keeps the
         * connection (the parser, re-initialised, skips the head's last LF). */
        if (kl_http_parser_has_body(&c->parser)) {
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
    if (kl_http_parser_reserve_body(&c->parser) != 0) {
        refuse_parsed(c);
        return false;
    }
    if (c->parser.expect_100)
        evbuffer_add_printf(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n");
    c->state = KL_CONN_READING;
    timer_set(c, c->t->server->cfg.body_timeout_ms);
    return true;
}

static void dispatch(kl_http_conn *c)
{
    kl_http_req *r = c->req;
    c->state = KL_CONN_HANDLING;
    evtimer_del(c->timer);
    if (!r->body.data)
        kl_buf_append(&r->body, "", 0);
    c->t->server->cfg.handler(r, c->t->server->cfg.handler_arg);
}

/* ------------------------------------------------------------ connection events */

/* Callers must not touch c after this returns: it may have been freed. */
static void process_input(kl_http_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    while (c->state == KL_CONN_IDLE || c->state == KL_CONN_READING) {
        size_t avail = evbuffer_get_length(in);
        if (avail == 0) {
            /* A client that half-closed gets answers to every complete request it sent;
             * an incomplete one can never complete. */
            if (c->peer_eof)
                close_after_flush(c);
            return;
        }
        if (c->state == KL_CONN_IDLE) {
            c->state = KL_CONN_READING;
            timer_set(c, KL_HEADER_TIMEOUT_MS);
        }
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            return;
        size_t n = 0;
        switch (kl_http_parser_feed(&c->parser, v.iov_base, v.iov_len, &n)) {
        case KL_HTTP_PARSE_MORE: drain_wipe(in, n); break;
        case KL_HTTP_PARSE_HEAD:
            drain_wipe(in, n);
            if (!head_accepted(c))
                return;
            break;
        case KL_HTTP_PARSE_DONE:
            drain_wipe(in, n);
            dispatch(c);
            return;
        case KL_HTTP_PARSE_REFUSED:
            drain_wipe(in, evbuffer_get_length(in));
            refuse_parsed(c);
            return;
        }
    }
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    kl_http_conn *c = arg;
    if (c->state == KL_CONN_LINGER) {
        struct evbuffer *in = bufferevent_get_input(bev);
        c->lingered += evbuffer_get_length(in);
        drain_wipe(in, evbuffer_get_length(in));
        if (c->lingered > LINGER_MAX_BYTES)
            kl_http_conn_free(c);
        return;
    }
    if (c->state == KL_CONN_HANDLING || c->state == KL_CONN_CLOSING) {
        /* Bytes of a pipelined request wait; a flood is bounded by the read watermark. */
        return;
    }
    process_input(c);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
    kl_http_conn *c = arg;
    size_t left = evbuffer_get_length(bufferevent_get_output(bev));
    if (c->state == KL_CONN_CLOSING) {
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
    if (c->state == KL_CONN_IDLE && evbuffer_get_length(bufferevent_get_input(bev)) > 0)
        process_input(c);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    kl_http_conn *c = arg;
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
            if (c->state == KL_CONN_IDLE || c->state == KL_CONN_READING) {
                c->peer_eof = true;
                if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
                    process_input(c);
                else
                    close_after_flush(c);
                return;
            }
            if (c->state == KL_CONN_CLOSING)
                return; /* still flushing the last answer; write_cb closes */
        }
        kl_http_conn_free(c);
    }
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    kl_http_conn *c = arg;
    if (c->state == KL_CONN_IDLE || c->state == KL_CONN_READING)
        process_input(c);
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    kl_http_conn *c = arg;
    /* No handler is on the stack here: a stream that cannot go on is cut off at once, and
     * its handler learns of it through its abort callback. */
    if (c->req && !c->req->finished && kl_http_stream_flush(c->req) != 0)
        kl_http_conn_free(c);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    kl_http_conn *c = arg;
    if (c->state == KL_CONN_READING) {
        bufferevent_disable(c->bev, EV_READ);
        refuse(c, 408, "RequestTimeout", "The request was not received in time.");
        return;
    }
    kl_http_conn_free(c);
}

/* ------------------------------------------------------------------- accepting */

static kl_http_conn *accept_common(kl_http_thread *t, kl_http_listener *ls, evutil_socket_t fd,
                                   long peer_uid, bool admin_ok)
{
    kl_http_conn *c = NULL;
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
        free_events(c);
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
    kl_http_parser_init(&c->parser, conn_req, c);
    c->state = KL_CONN_IDLE;
    bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
    /* Stop reading once this much is queued while a request is being handled. */
    bufferevent_setwatermark(c->bev, EV_READ, 0,
                             KL_MAX_REQUEST_LINE + KL_MAX_HEADER_BYTES + KL_READ_AHEAD_BYTES);
    int wms = t->server->cfg.write_timeout_ms;
    struct timeval wto = {wms / 1000, (wms % 1000) * 1000};
    bufferevent_set_timeouts(c->bev, NULL, &wto);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    /* The first request's headers (and the TLS handshake) must arrive within this. */
    timer_set(c, KL_HEADER_TIMEOUT_MS);
    if (ls->is_unix && !admin_ok) {
        if (!conn_req(c)) {
            kl_http_conn_free(c);
            return NULL;
        }
        c->req->path = strdup("");
        c->keep_alive = false;
        c->req->auth_fail = KL_AUTHFAIL_PEER;
        c->state = KL_CONN_HANDLING;
        kl_http_respond_error(c->req, 403, "Forbidden",
                              "Only root or the daemon's own user may use the admin socket.");
    }
    return c;
}

void kl_http_conn_accept_tcp(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                             int socklen, void *arg)
{
    (void)l;
    kl_http_accept_arg *a = arg;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    kl_http_conn *c = accept_common(a->t, a->ls, fd, -1, false);
    if (c && sa && socklen > 0 && (size_t)socklen <= sizeof(c->peer))
        memcpy(&c->peer, sa, (size_t)socklen);
}

void kl_http_conn_accept_unix(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                              int socklen, void *arg)
{
    (void)l;
    (void)sa;
    (void)socklen;
    kl_http_accept_arg *a = arg;
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
