/* Whole answers: the status line and headers the server writes itself, the headers a
 * handler adds, and kl_http_respond and its JSON forms (http/server.h). */
#include "http/respond.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/util.h"
#include "http/req.h"
#include "http/server_impl.h"

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

/* The Date header's value, formatted once a second per thread. */
static const char *date_header(kl_http_thread *t)
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

int kl_http_respond_queue(kl_http_conn *c, kl_buf *b)
{
    size_t n = b->len;
    char *data = kl_buf_steal(b);
    if (!data ||
        evbuffer_add_reference(bufferevent_get_output(c->bev), data, n, free_ref, NULL) != 0) {
        free(data);
        return KL_ENOMEM;
    }
    return 0;
}

int kl_http_respond_head(kl_http_req *r, int status, const char *content_type, const char *framing,
                         const void *body, size_t len, bool defer)
{
    kl_http_conn *c = r->conn;
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
    if (rc || kl_http_respond_queue(c, &h) != 0) {
        /* Out of memory: the connection cannot be answered properly; close it. */
        c->keep_alive = false;
        kl_buf_free(&h);
        return KL_ENOMEM;
    }
    return 0;
}

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
    kl_http_respond_head(r, status, no_body ? NULL : content_type, framing, head ? NULL : body,
                         head ? 0 : len, false);
    kl_http_conn_finish(r);
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
