/* The request parser: http_parser's callbacks fill a kl_http_req, and the checks http_parser
 * does not make (limits from limits.h, the daemon-wide budget, token field names, framing
 * headers, the request target) turn a request into a refusal. See parser.h. */
#include "http/parser.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/util.h"
#include "http/req.h"

/* ------------------------------------------------------------------ refusals */

static int refusal(kl_http_parser *p, int status, const char *code, const char *msg)
{
    p->status = status;
    p->code = code;
    p->msg = msg;
    return -1;
}

static int server_busy(kl_http_parser *p)
{
    return refusal(p, 503, "ServerBusy",
                   "The server is receiving too many requests at once; retry shortly.");
}

static int header_too_large(kl_http_parser *p)
{
    return refusal(p, 431, "RequestHeaderFieldsTooLarge", "The request headers are too large.");
}

static int body_too_large(kl_http_parser *p)
{
    return refusal(p, 413, "RequestEntityTooLarge", "The request body is too large.");
}

static int bad_request(kl_http_parser *p, const char *msg)
{
    return refusal(p, 400, "BadRequest", msg);
}

/* Takes n more bytes from the daemon-wide request budget, in steps of
 * KL_REQUEST_BUDGET_STEP so that a request touches the shared counter a few times, not
 * once per header. *charged grows to cover need; false if the budget is spent. */
static bool budget_take(kl_http_req *r, size_t *charged, size_t need)
{
    if (need <= *charged)
        return true;
    size_t add = need - *charged;
    add = (add + KL_REQUEST_BUDGET_STEP - 1) / KL_REQUEST_BUDGET_STEP * KL_REQUEST_BUDGET_STEP;
    atomic_size_t *b = r->budget;
    size_t before = atomic_fetch_add(b, add);
    if (before > KL_MAX_BUFFERED_REQUEST_BYTES || add > KL_MAX_BUFFERED_REQUEST_BYTES - before) {
        atomic_fetch_sub(b, add);
        return false;
    }
    *charged += add;
    return true;
}

/* ------------------------------------------------------------------ the head */

/* Appends request-head bytes to r->raw, charged to the daemon-wide budget. 0, or -1
 * with the refusal set (431 too large, 503 budget spent). */
static int raw_append(kl_http_parser *p, const char *at, size_t len)
{
    kl_http_req *r = p->req;
    if (r->raw.len + len > r->raw.max)
        return header_too_large(p);
    if (!budget_take(r, &r->raw_charged, r->raw.len + len + 1))
        return server_busy(p);
    if (kl_buf_append(&r->raw, at, len) != 0)
        return header_too_large(p);
    return 0;
}

static int on_message_begin(http_parser *hp)
{
    kl_http_parser *p = hp->data;
    if (!p->req) {
        p->req = p->new_req(p->new_req_arg);
        if (!p->req)
            return -1;
    }
    return 0;
}

static int on_url(http_parser *hp, const char *at, size_t len)
{
    kl_http_parser *p = hp->data;
    kl_http_req *r = p->req;
    /* The target's limit is the line scan's (kl_http_parser_feed): it holds at a byte,
     * where this callback sees the target in as many pieces as it arrived in. */
    if (raw_append(p, at, len) != 0)
        return -1;
    r->url_len += len;
    return 0;
}

static int on_header_field(http_parser *hp, const char *at, size_t len)
{
    kl_http_parser *p = hp->data;
    kl_http_req *r = p->req;
    /* Trailer fields after a chunked body come through the same callbacks; they are
     * dropped, so nothing can add a header after the checks in on_headers_complete. */
    if (r->headers_done || p->too_many_headers)
        return 0;
    if (r->last_was_value || r->nheaders == 0) {
        /* Refused at the head's end, not here: this callback runs wherever a read cut a
         * name, and http_parser may yet refuse the same bytes for a reason of its own. */
        if (r->nheaders >= KL_MAX_HEADER_COUNT) {
            p->too_many_headers = true;
            return 0;
        }
        /* A NUL ends the URL (first header) or the previous value, so values can be
         * handed out as C strings in place. */
        if (raw_append(p, "", 1) != 0)
            return -1;
        kl_http_header *h = &r->headers[r->nheaders++];
        h->name_off = r->raw.len;
        h->name_len = 0;
        h->val_off = 0;
        h->val_len = 0;
        r->last_was_value = false;
    }
    kl_http_header *h = &r->headers[r->nheaders - 1];
    if (raw_append(p, at, len) != 0)
        return -1;
    h->name_len += len;
    return 0;
}

static int on_header_value(http_parser *hp, const char *at, size_t len)
{
    kl_http_parser *p = hp->data;
    kl_http_req *r = p->req;
    if (r->headers_done || p->too_many_headers)
        return 0;
    if (r->nheaders == 0)
        return -1;
    kl_http_header *h = &r->headers[r->nheaders - 1];
    if (!r->last_was_value) {
        h->val_off = r->raw.len;
        h->val_len = 0;
        r->last_was_value = true;
    }
    if (raw_append(p, at, len) != 0)
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

static int on_headers_complete(http_parser *hp)
{
    kl_http_parser *p = hp->data;
    kl_http_req *r = p->req;
    if (raw_append(p, "", 1) != 0)
        return -1;
    r->headers_done = true;
    if (p->too_many_headers)
        return header_too_large(p);
    const char *m = http_method_str((enum http_method)hp->method);
    snprintf(r->method, sizeof(r->method), "%s", m);
    if (hp->http_major != 1)
        return refusal(p, 505, "HTTPVersionNotSupported",
                       "Only HTTP/1.0 and HTTP/1.1 are supported.");
    /* Debian's http_parser is built lenient: it takes "Name : value". RFC 9112 wants a
     * 400 for whitespace (or anything but a token) in a field name, and a name that a
     * proxy in front reads differently is a smuggling vector. */
    for (int i = 0; i < r->nheaders; i++) {
        const kl_http_header *h = &r->headers[i];
        if (!valid_token(r->raw.data + h->name_off, h->name_len))
            return bad_request(p, "Malformed header field name.");
    }
    if (split_target(r) != 0)
        return bad_request(p, "The request target is malformed.");
    /* http_parser already refuses Content-Length together with chunked encoding and
     * conflicting Content-Length values; a second Transfer-Encoding or a Transfer-Encoding
     * other than chunked is refused here so no front proxy can read the body differently. */
    const char *te = kl_http_req_header(r, "transfer-encoding");
    if (te && !kl_str_ieq(te, "chunked"))
        return refusal(p, 501, "NotImplemented", "Only 'Transfer-Encoding: chunked' is supported.");
    if (kl_http_req_header_count(r, "transfer-encoding") > 1 || (te && !(hp->flags & F_CHUNKED)) ||
        kl_http_req_header_count(r, "content-length") > 1 ||
        kl_http_req_header_count(r, "host") > 1)
        return bad_request(p, "Conflicting or duplicate framing headers.");
    if ((hp->flags & F_CONTENTLENGTH) && hp->content_length > KL_MAX_BODY_BYTES)
        return body_too_large(p);
    p->keep_alive = http_should_keep_alive(hp) != 0;
    const char *expect = kl_http_req_header(r, "expect");
    p->expect_100 = false;
    if (expect) {
        if (!kl_str_ieq(expect, "100-continue"))
            return refusal(p, 417, "ExpectationFailed",
                           "Only 'Expect: 100-continue' is supported.");
        p->expect_100 = hp->http_major == 1 && hp->http_minor >= 1;
    }
    /* Stop here, before any body byte: the caller vets the head outside the callbacks,
     * where answering and closing are safe. */
    p->head_done = true;
    http_parser_pause(hp, 1);
    return 0;
}

/* ------------------------------------------------------------------ the body */

static int on_body(http_parser *hp, const char *at, size_t len)
{
    kl_http_parser *p = hp->data;
    kl_http_req *r = p->req;
    /* Chunked bodies are charged as they grow (a known length was charged up front). */
    if (r->body.len + len <= KL_MAX_BODY_BYTES &&
        !budget_take(r, &r->body_charged, r->body.len + len + 1))
        return server_busy(p);
    if (kl_buf_append(&r->body, at, len) != 0)
        return body_too_large(p);
    return 0;
}

static int on_message_complete(http_parser *hp)
{
    http_parser_pause(hp, 1);
    return 0;
}

/* Constant: every connection of every server shares it. */
static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ------------------------------------------------------------ the request line */

static int method_not_supported(kl_http_parser *p)
{
    return refusal(p, 501, "NotImplemented", "The request method is not supported.");
}

enum { LS_METHOD = 0, LS_SPACES, LS_TARGET, LS_DONE };

/* What the line scan found at the byte it stopped on. */
typedef enum line_verdict {
    LINE_OK = 0,
    LINE_MALFORMED, /* an empty method, or a byte in it that is not a token character */
    LINE_METHOD_TOO_LONG,
    LINE_TARGET_TOO_LONG
} line_verdict;

static size_t line_stop(line_verdict *why, line_verdict v, size_t at)
{
    *why = v;
    return at;
}

/* Reads the request line's method and target as their bytes arrive (data: the next len
 * bytes of the request), as http_parser reads them: empty lines before the request are
 * skipped, spaces before the target too. Returns how many bytes are fine to parse: len,
 * or the offset of the byte *why is about (RFC 9112 section 3: a method that is not a
 * token is a 400; a token longer than any request line may be is a 501 rather than an
 * unknown method read for ever). */
static size_t line_scan(kl_http_parser *p, const char *data, size_t len, line_verdict *why)
{
    *why = LINE_OK;
    for (size_t i = 0; i < len && p->line_state != LS_DONE; i++) {
        char ch = data[i];
        switch (p->line_state) {
        case LS_METHOD:
            if (p->method_len == 0 && (ch == '\r' || ch == '\n'))
                break;
            if (ch == ' ') {
                if (p->method_len == 0)
                    return line_stop(why, LINE_MALFORMED, i);
                p->line_state = LS_SPACES;
            } else if (!valid_token(&ch, 1)) {
                return line_stop(why, LINE_MALFORMED, i);
            } else if (++p->method_len > KL_MAX_REQUEST_LINE) {
                return line_stop(why, LINE_METHOD_TOO_LONG, i);
            }
            break;
        default: /* LS_SPACES, LS_TARGET */
            if (p->line_state == LS_SPACES && ch == ' ')
                break;
            p->line_state = LS_TARGET;
            if (ch == ' ' || ch == '\r' || ch == '\n')
                p->line_state = LS_DONE;
            else if (++p->target_len > KL_MAX_REQUEST_LINE)
                return line_stop(why, LINE_TARGET_TOO_LONG, i);
        }
    }
    return len;
}

/* The refusal for what line_scan found. */
static void line_refusal(kl_http_parser *p, line_verdict why)
{
    switch (why) {
    case LINE_MALFORMED: bad_request(p, "Malformed request line."); break;
    case LINE_METHOD_TOO_LONG: method_not_supported(p); break;
    case LINE_TARGET_TOO_LONG:
        refusal(p, 414, "RequestUriTooLong", "The request URI is too long.");
        break;
    case LINE_OK: break;
    }
}

/* ------------------------------------------------------------ chunked framing */

enum {
    CH_OFF = 0, /* not a chunked body */
    CH_HEAD_LF, /* the head's last LF, fed again after KL_HTTP_PARSE_HEAD */
    CH_SIZE0,   /* a chunk size's first hex digit */
    CH_SIZE,    /* more hex digits, an extension, or CR */
    CH_EXT,     /* an extension, up to CR */
    CH_SIZE_LF, /* the LF after a chunk size line */
    CH_DATA,    /* chunk_left bytes of data */
    CH_DATA_CR, /* the CR after a chunk's data */
    CH_DATA_LF, /* the LF after it */
    CH_TRAILER, /* the start of a trailer line, or the CR of the empty last line */
    CH_TRAILER_LINE,
    CH_TRAILER_LF,
    CH_END_LF, /* the body's last LF */
    CH_END     /* the body is complete */
};

/* Follows the chunked framing over the next len bytes of a body (http_parser decides the
 * sizes and the data; this insists on CRLF wherever the grammar puts one, and on no bare
 * LF in an extension or a trailer). Returns how many bytes are fine to parse: up to the
 * body's last byte, or to the first byte that breaks the framing (*bad set). */
static size_t chunk_scan(kl_http_parser *p, const char *data, size_t len, bool *bad)
{
    *bad = true;
    size_t i = 0;
    for (; i < len && p->chunk_state != CH_END; i++) {
        char ch = data[i];
        int v;
        switch (p->chunk_state) {
        case CH_HEAD_LF:
            if (ch != '\n')
                return i;
            p->chunk_state = CH_SIZE0;
            break;
        case CH_SIZE0:
            if ((v = kl_hex_digit((unsigned char)ch)) < 0)
                return i;
            p->chunk_left = (uint64_t)v;
            p->chunk_state = CH_SIZE;
            break;
        case CH_SIZE:
            if ((v = kl_hex_digit((unsigned char)ch)) >= 0) {
                /* http_parser refuses a size that overflows; this count only needs to
                 * stay meaningful until it does. */
                if (p->chunk_left > UINT64_MAX / 16)
                    return i;
                p->chunk_left = p->chunk_left * 16 + (uint64_t)v;
            } else if (ch == ';' || ch == ' ') {
                p->chunk_state = CH_EXT;
            } else if (ch == '\r') {
                p->chunk_state = CH_SIZE_LF;
            } else {
                return i;
            }
            break;
        case CH_EXT:
            if (ch == '\n')
                return i;
            if (ch == '\r')
                p->chunk_state = CH_SIZE_LF;
            break;
        case CH_SIZE_LF:
            if (ch != '\n')
                return i;
            p->chunk_state = p->chunk_left == 0 ? CH_TRAILER : CH_DATA;
            break;
        case CH_DATA: {
            uint64_t take = len - i < p->chunk_left ? len - i : p->chunk_left;
            p->chunk_left -= take;
            i += take - 1;
            if (p->chunk_left == 0)
                p->chunk_state = CH_DATA_CR;
            break;
        }
        case CH_DATA_CR:
            if (ch != '\r')
                return i;
            p->chunk_state = CH_DATA_LF;
            break;
        case CH_DATA_LF:
            if (ch != '\n')
                return i;
            p->chunk_state = CH_SIZE0;
            break;
        case CH_TRAILER:
            if (ch == '\n')
                return i;
            p->chunk_state = ch == '\r' ? CH_END_LF : CH_TRAILER_LINE;
            break;
        case CH_TRAILER_LINE:
            if (ch == '\n')
                return i;
            if (ch == '\r')
                p->chunk_state = CH_TRAILER_LF;
            break;
        case CH_TRAILER_LF:
            if (ch != '\n')
                return i;
            p->chunk_state = CH_TRAILER;
            break;
        case CH_END_LF:
            if (ch != '\n')
                return i;
            p->chunk_state = CH_END;
            break;
        }
    }
    *bad = false;
    return i;
}

/* ------------------------------------------------------------------ interface */

void kl_http_parser_setup(void)
{
    http_parser_set_max_header_size(KL_MAX_REQUEST_LINE + KL_MAX_HEADER_BYTES);
}

void kl_http_parser_init(kl_http_parser *p, kl_http_parser_new_req_fn new_req, void *arg)
{
    memset(p, 0, sizeof(*p));
    p->new_req = new_req;
    p->new_req_arg = arg;
    kl_http_parser_reset(p);
}

void kl_http_parser_reset(kl_http_parser *p)
{
    http_parser_init(&p->hp, HTTP_REQUEST);
    p->hp.data = p;
    p->req = NULL;
    p->head_done = false;
    p->line_state = 0;
    p->method_len = 0;
    p->target_len = 0;
    p->method_unknown = false;
    p->too_many_headers = false;
    p->chunk_state = 0;
    p->chunk_left = 0;
}

/* Turns an error http_parser stopped with into the refusal, unless a callback already
 * chose one. */
static void parse_error(kl_http_parser *p, enum http_errno e)
{
    if (p->status)
        return;
    switch (e) {
    case HPE_HEADER_OVERFLOW: header_too_large(p); break;
    case HPE_INVALID_METHOD:
        /* Only reached once method_scan saw the whole method: a well-formed token that
         * http_parser does not know (one that is not a token was refused already). */
        method_not_supported(p);
        break;
    case HPE_UNEXPECTED_CONTENT_LENGTH:
    case HPE_INVALID_CONTENT_LENGTH:
        bad_request(p, "Conflicting or invalid Content-Length.");
        break;
    default:
        snprintf(p->msgbuf, sizeof(p->msgbuf), "Malformed HTTP request (%s).", http_errno_name(e));
        bad_request(p, p->msgbuf);
    }
}

kl_http_parse kl_http_parser_feed(kl_http_parser *p, const char *data, size_t len, size_t *used)
{
    *used = 0;
    /* What the parser's own scans allow http_parser to see: up to the byte where a rule
     * of the server's holds, so that http_parser refuses what comes before that byte
     * first, and nothing after it decides anything, however the bytes were cut. */
    size_t lim = len;
    line_verdict why = LINE_OK;
    bool chunk_bad = false;
    if (p->line_state != LS_DONE) {
        lim = line_scan(p, data, len, &why);
        if (p->method_unknown) {
            /* http_parser gave up on this method already: its end decides. */
            if (why == LINE_OK && p->line_state == LS_METHOD) {
                *used = len;
                return KL_HTTP_PARSE_MORE;
            }
            if (why == LINE_MALFORMED)
                line_refusal(p, why);
            else
                method_not_supported(p);
            return KL_HTTP_PARSE_REFUSED;
        }
    }
    bool in_chunks = p->chunk_state != CH_OFF;
    if (in_chunks)
        lim = chunk_scan(p, data, len, &chunk_bad);
    /* http_parser reads a call with no bytes as the end of the stream. */
    if (lim > 0)
        *used = http_parser_execute(&p->hp, &settings, data, lim);
    enum http_errno e = HTTP_PARSER_ERRNO(&p->hp);
    if (e != HPE_OK && e != HPE_PAUSED) {
        if (e == HPE_INVALID_METHOD && !p->status && p->line_state == LS_METHOD) {
            /* Unknown before its end: whether it is a token decides, here or later. */
            if (why != LINE_OK) {
                line_refusal(p, why);
                return KL_HTTP_PARSE_REFUSED;
            }
            p->method_unknown = true;
            *used = len;
            return KL_HTTP_PARSE_MORE;
        }
        parse_error(p, e);
        return KL_HTTP_PARSE_REFUSED;
    }
    if (why != LINE_OK) {
        line_refusal(p, why);
        return KL_HTTP_PARSE_REFUSED;
    }
    if (e == HPE_OK) {
        if (chunk_bad) {
            bad_request(p, "Malformed chunked body.");
            return KL_HTTP_PARSE_REFUSED;
        }
        return KL_HTTP_PARSE_MORE;
    }
    http_parser_pause(&p->hp, 0);
    if (p->head_done) {
        p->head_done = false;
        /* Paused on the byte that ends the head, which http_parser (built lenient)
         * takes as the LF whatever it is, and reads again when resumed. Anything but an
         * LF there would start the next request one byte apart depending on whether the
         * parser is resumed or reset. */
        if (*used >= lim || data[*used] != '\n') {
            bad_request(p, "Malformed request head: a CR must be followed by LF.");
            return KL_HTTP_PARSE_REFUSED;
        }
        if (p->hp.flags & F_CHUNKED)
            p->chunk_state = CH_HEAD_LF;
        return KL_HTTP_PARSE_HEAD;
    }
    /* The request is complete: a chunked one exactly where its framing ends. */
    if (in_chunks && (p->chunk_state != CH_END || *used != lim)) {
        bad_request(p, "Malformed chunked body.");
        return KL_HTTP_PARSE_REFUSED;
    }
    return KL_HTTP_PARSE_DONE;
}

bool kl_http_parser_has_body(const kl_http_parser *p)
{
    return (p->hp.flags & F_CHUNKED) ||
           ((p->hp.flags & F_CONTENTLENGTH) && p->hp.content_length > 0);
}

int kl_http_parser_reserve_body(kl_http_parser *p)
{
    kl_http_req *r = p->req;
    if ((p->hp.flags & F_CONTENTLENGTH) && p->hp.content_length > 0) {
        size_t n = (size_t)p->hp.content_length; /* <= KL_MAX_BODY_BYTES: checked */
        if (!budget_take(r, &r->body_charged, n + 1))
            return server_busy(p);
        if (kl_buf_reserve(&r->body, n) != 0)
            return refusal(p, 500, "InternalServerError", "Internal error.");
    }
    return 0;
}
