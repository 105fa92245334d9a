/* Upstream request bytes and response framing (see upstream_wire.h). The request is
 * assembled with plain copies into one allocation: the body is serialised straight into
 * it, the head is written in front once the body's length is known. */
#include "gateway/upstream_wire.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/util.h"

const char *const kl_upstream_resp_names[KL_UPSTREAM_RESP_NHEADERS] = {
    "content-type",
    "retry-after",
    "retry-after-ms",
    "x-ratelimit-limit-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-requests",
    "x-ratelimit-reset-tokens",
};

/* ------------------------------------------------------------------ request */

static bool header_safe(const char *s)
{
    return strpbrk(s, "\r\n") == NULL;
}

static char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

#define PUT_LIT(p, lit) put((p), (lit), sizeof(lit) - 1)

int kl_upstream_request_build(const kl_upstream_target *t, const char *accept,
                              const char *credential, const json_t *body, size_t size_hint,
                              char **out, size_t *out_len)
{
    static const char l_post[] = "POST ";
    static const char l_host[] = " HTTP/1.1\r\nHost: ";
    static const char l_ct[] = "\r\nContent-Type: application/json\r\nAccept: ";
    static const char l_cl[] = "\r\nContent-Length: ";
    static const char l_auth[] = "\r\nAuthorization: Bearer ";
    static const char l_end[] = "\r\n\r\n";
    const size_t flags = JSON_COMPACT | JSON_PRESERVE_ORDER;
    char *buf = NULL;
    *out = NULL;
    *out_len = 0;
    if (!t || !t->uri || !accept || !body)
        return KL_EINVAL;
    if (credential && !*credential)
        credential = NULL;
    if (!header_safe(t->uri) || strchr(t->uri, ' ') || !header_safe(t->host_header) ||
        !header_safe(accept) || (credential && !header_safe(credential)))
        return KL_EINVAL;
    size_t ul = strlen(t->uri), hl = strlen(t->host_header), al = strlen(accept);
    size_t cl = credential ? strlen(credential) : 0;
    /* The head's size with the longest possible Content-Length value. */
    size_t head_max = sizeof(l_post) - 1 + ul + sizeof(l_host) - 1 + hl + sizeof(l_ct) - 1 + al +
                      sizeof(l_cl) - 1 + 20 + (credential ? sizeof(l_auth) - 1 + cl : 0) +
                      sizeof(l_end) - 1;
    size_t room = size_hint ? size_hint : 512;
    buf = malloc(head_max + room);
    if (!buf)
        return KL_ENOMEM;
    size_t blen = json_dumpb(body, buf + head_max, room, flags);
    if (blen == 0)
        goto inval;
    if (blen > room) {
        char *nb = realloc(buf, head_max + blen);
        if (!nb) {
            free(buf);
            return KL_ENOMEM;
        }
        buf = nb;
        if (json_dumpb(body, buf + head_max, blen, flags) != blen)
            goto inval;
    }
    char num[24];
    int nl = snprintf(num, sizeof(num), "%zu", blen);
    if (nl <= 0 || (size_t)nl >= sizeof(num))
        goto inval;
    size_t head_len = head_max - 20 + (size_t)nl;
    memmove(buf + head_len, buf + head_max, blen);
    char *p = buf;
    p = PUT_LIT(p, l_post);
    p = put(p, t->uri, ul);
    p = PUT_LIT(p, l_host);
    p = put(p, t->host_header, hl);
    p = PUT_LIT(p, l_ct);
    p = put(p, accept, al);
    p = PUT_LIT(p, l_cl);
    p = put(p, num, (size_t)nl);
    if (credential) {
        p = PUT_LIT(p, l_auth);
        p = put(p, credential, cl);
    }
    p = PUT_LIT(p, l_end);
    (void)p;
    *out = buf;
    *out_len = head_len + blen;
    return 0;
inval:
    free(buf);
    return KL_EINVAL;
}

/* ------------------------------------------------------------------ response */

static int fail(kl_upstream_resp *rp, int err)
{
    if (!rp->err)
        rp->err = err;
    return -1;
}

static void reset_head(kl_upstream_resp *rp)
{
    rp->status = 0;
    rp->header_bytes = 0;
    rp->header_count = 0;
    rp->in_value = false;
    rp->cur = -1;
    rp->name_len = 0;
    rp->cap_len = 0;
    memset(rp->have, 0, sizeof(rp->have));
}

/* Ends the value being read: trims trailing blanks and NUL-terminates it. */
static void end_value(kl_upstream_resp *rp)
{
    int i = rp->cur;
    rp->cur = -1;
    if (i < 0)
        return;
    size_t off = rp->off[i];
    while (rp->cap_len > off &&
           (rp->cap[rp->cap_len - 1] == ' ' || rp->cap[rp->cap_len - 1] == '\t'))
        rp->cap_len--;
    if (rp->cap_len >= sizeof(rp->cap)) {
        rp->cap_len = off; /* no room for the terminator: dropped */
        return;
    }
    rp->cap[rp->cap_len++] = '\0';
    rp->have[i] = true;
}

static int count_bytes(kl_upstream_resp *rp, size_t len)
{
    rp->header_bytes += len;
    return rp->header_bytes > KL_MAX_HEADER_BYTES ? fail(rp, KL_ETOOBIG) : 0;
}

static int on_message_begin(http_parser *p)
{
    reset_head(p->data);
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    kl_upstream_resp *rp = p->data;
    if (rp->in_value || rp->header_count == 0) {
        end_value(rp);
        rp->in_value = false;
        rp->name_len = 0;
        if (++rp->header_count > KL_MAX_HEADER_COUNT)
            return fail(rp, KL_ETOOBIG);
    }
    if (count_bytes(rp, len))
        return -1;
    /* Longer names are never captured; remember only that they are too long. */
    if (rp->name_len + len < sizeof(rp->name))
        memcpy(rp->name + rp->name_len, at, len);
    rp->name_len += len;
    return 0;
}

static int lookup(const kl_upstream_resp *rp)
{
    if (rp->name_len >= sizeof(rp->name))
        return -1;
    for (int i = 0; i < KL_UPSTREAM_RESP_NHEADERS; i++)
        if (!rp->have[i] && kl_str_ieqn(rp->name, rp->name_len, kl_upstream_resp_names[i],
                                        strlen(kl_upstream_resp_names[i])))
            return i;
    return -1;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    kl_upstream_resp *rp = p->data;
    if (!rp->in_value) {
        rp->in_value = true;
        rp->cur = lookup(rp);
        if (rp->cur >= 0)
            rp->off[rp->cur] = (uint16_t)rp->cap_len;
    }
    if (count_bytes(rp, len))
        return -1;
    if (rp->cur < 0)
        return 0;
    if (rp->cap_len + len >= sizeof(rp->cap) || memchr(at, '\0', len)) {
        rp->cap_len = rp->off[rp->cur]; /* too long for the capture: dropped */
        rp->cur = -1;
        return 0;
    }
    memcpy(rp->cap + rp->cap_len, at, len);
    rp->cap_len += len;
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    kl_upstream_resp *rp = p->data;
    end_value(rp);
    int status = (int)p->status_code;
    /* 101 would switch protocols; below 100 is not a status. */
    if (status < 100 || status == 101)
        return fail(rp, KL_EINVAL);
    if (status < 200)
        return 0; /* interim: skipped, the final answer follows */
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > KL_MAX_UPSTREAM_RESPONSE)
        return fail(rp, KL_ETOOBIG);
    rp->status = status;
    rp->head_done = true;
    if (rp->cb && rp->cb->head) {
        int rc = rp->cb->head(rp->arg, rp);
        if (rc)
            return fail(rp, rc);
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    kl_upstream_resp *rp = p->data;
    rp->body_bytes += len;
    if (rp->body_bytes > KL_MAX_UPSTREAM_RESPONSE)
        return fail(rp, KL_ETOOBIG);
    if (rp->cb && rp->cb->body) {
        int rc = rp->cb->body(rp->arg, at, len);
        if (rc)
            return fail(rp, rc);
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    kl_upstream_resp *rp = p->data;
    if (!rp->head_done)
        return 0; /* the end of an interim answer */
    rp->complete = true;
    rp->keep_alive = http_should_keep_alive(p) != 0;
    /* Stop right after the answer: anything behind it is not ours to parse. */
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings resp_settings = {
    .on_message_begin = on_message_begin,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void kl_upstream_resp_init(kl_upstream_resp *rp, const kl_upstream_resp_cb *cb, void *arg)
{
    http_parser_init(&rp->parser, HTTP_RESPONSE);
    rp->parser.data = rp;
    rp->cb = cb;
    rp->arg = arg;
    rp->head_done = false;
    rp->complete = false;
    rp->keep_alive = false;
    rp->err = 0;
    rp->body_bytes = 0;
    reset_head(rp);
}

int kl_upstream_resp_feed(kl_upstream_resp *rp, const char *data, size_t len, size_t *consumed)
{
    *consumed = 0;
    if (rp->complete)
        return 1;
    if (rp->err)
        return rp->err;
    size_t n = http_parser_execute(&rp->parser, &resp_settings, data, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&rp->parser);
    *consumed = n > len ? len : n;
    if (rp->complete)
        return 1;
    if (rp->err)
        return rp->err;
    if (e != HPE_OK) {
        rp->err = e == HPE_INVALID_EOF_STATE ? KL_EIO : KL_EINVAL;
        return rp->err;
    }
    if (len == 0) {
        rp->err = KL_EIO; /* closed before (or between) answers */
        return rp->err;
    }
    return 0;
}

const char *kl_upstream_resp_value(const kl_upstream_resp *rp, size_t i)
{
    if (i >= KL_UPSTREAM_RESP_NHEADERS || !rp->have[i])
        return NULL;
    return rp->cap + rp->off[i];
}
