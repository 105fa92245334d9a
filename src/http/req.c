/* Requests: making and freeing them, the accessors handlers read them with (http/server.h),
 * the callbacks a handler registers on one, and its access-log line. */
#include "http/req.h"

#include <arpa/inet.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include "common/log.h"
#include "http/conn.h"
#include "http/server_impl.h"

/* ------------------------------------------------------------------- request life */

kl_http_req *kl_http_req_new(atomic_size_t *budget)
{
    kl_http_req *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->budget = budget;
    kl_buf_init_secret(&r->raw, KL_MAX_REQUEST_LINE + KL_MAX_HEADER_BYTES);
    kl_buf_init_secret(&r->body, KL_MAX_BODY_BYTES); /* bodies may hold secrets (forms) */
    kl_buf_init(&r->resp_headers, KL_MAX_HEADER_BYTES);
    kl_buf_init(&r->pend, KL_MAX_OUTPUT_BUFFER + sizeof(KL_HTTP_STREAM_END) - 1);
    r->start_us = kl_now_mono_us();
    r->route = KL_ROUTE_OTHER;
    r->auth_fail = -1;
    return r;
}

void kl_http_req_free(kl_http_req *r)
{
    if (!r)
        return;
    kl_buf_free(&r->raw); /* secret buffers: wiped, then freed */
    kl_buf_free(&r->body);
    if (r->raw_charged + r->body_charged)
        atomic_fetch_sub(r->budget, r->raw_charged + r->body_charged);
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

static const char *route_name(kl_route r)
{
    static const char *const names[KL_ROUTE__COUNT] = {
        "other", "chat",     "completions", "embeddings", "models",
        "mgmt",  "identity", "sts",         "health",     "metrics"};
    return (unsigned)r < KL_ROUTE__COUNT ? names[r] : "other";
}

void kl_http_req_log_access(kl_http_req *r, bool aborted)
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
static const char *header_value(const kl_http_req *r, const kl_http_header *h)
{
    char *v = r->raw.data + h->val_off;
    if (h->val_len == 0)
        return "";
    return v;
}

static bool header_is(const kl_http_req *r, const kl_http_header *h, const char *name)
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

/* ------------------------------------------------------------------ callbacks */

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
