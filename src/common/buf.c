/* Growable, bounded byte buffer. */
#include "common/buf.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

void kl_buf_init(kl_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
    b->secret = 0;
}

void kl_buf_init_secret(kl_buf *b, size_t max)
{
    kl_buf_init(b, max);
    b->secret = 1;
}

/* Makes room for extra more bytes (and the NUL): the capacity doubles, or becomes
 * exactly what is needed when exact is set. */
static int grow(kl_buf *b, size_t extra, int exact)
{
    if (extra > b->max || b->len > b->max - extra)
        return KL_ETOOBIG;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = exact ? need : (b->cap ? b->cap : 64);
    while (cap < need)
        cap *= 2;
    char *p;
    if (b->secret) {
        /* realloc may move the data and free the old block unwiped: copy by hand. */
        p = malloc(cap);
        if (!p)
            return KL_ENOMEM;
        if (b->data) {
            memcpy(p, b->data, b->len + 1);
            OPENSSL_cleanse(b->data, b->len + 1);
            free(b->data);
        }
    } else {
        p = realloc(b->data, cap);
        if (!p)
            return KL_ENOMEM;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

static int reserve(kl_buf *b, size_t extra)
{
    return grow(b, extra, 0);
}

int kl_buf_reserve(kl_buf *b, size_t extra)
{
    return grow(b, extra, 1);
}

int kl_buf_append(kl_buf *b, const void *p, size_t n)
{
    int rc = reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int kl_buf_append_str(kl_buf *b, const char *s)
{
    return kl_buf_append(b, s, strlen(s));
}

int kl_buf_appendf(kl_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    int rc = KL_EINVAL;
    if (n < 0)
        goto out;
    rc = reserve(b, (size_t)n);
    if (rc)
        goto out;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
    b->len += (size_t)n;
out:
    va_end(ap2);
    return rc;
}

void kl_buf_reset(kl_buf *b)
{
    /* A secret buffer's bytes are wiped now: only [0, len] is ever wiped later. */
    if (b->secret && b->data)
        OPENSSL_cleanse(b->data, b->len);
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

char *kl_buf_steal(kl_buf *b)
{
    char *p = b->data;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

void kl_buf_free(kl_buf *b)
{
    /* Only the bytes ever written: a large reservation (a body's Content-Length) that
     * was never filled is not touched, so its pages are never faulted in. */
    if (b->secret && b->data)
        OPENSSL_cleanse(b->data, b->len + 1);
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void kl_buf_cleanse_free(kl_buf *b)
{
    if (b->data)
        OPENSSL_cleanse(b->data, b->cap);
    kl_buf_free(b);
}
