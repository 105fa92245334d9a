/* Strict application/x-www-form-urlencoded parsing for the token endpoint. Everything
 * is decoded into one buffer (decoding never grows a string), so a form is two
 * allocations whatever its size. */
#include "token/form.h"

#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "common/util.h"

typedef struct param {
    const char *name;
    const char *value;
    size_t name_len;
    size_t value_len;
} param;

struct kl_form {
    size_t count;
    param params[KL_MAX_FORM_PARAMS];
    char *buf; /* decoded names and values, each NUL-terminated */
    size_t buf_len;
};

static const char *const reason_names[KL_FORM_REASON_COUNT] = {
    [KL_FORM_OK] = "ok",
    [KL_FORM_TOO_BIG] = "too_big",
    [KL_FORM_TOO_MANY] = "too_many",
    [KL_FORM_BAD_ENCODING] = "bad_encoding",
    [KL_FORM_EMPTY_NAME] = "empty_name",
    [KL_FORM_DUPLICATE] = "duplicate",
    [KL_FORM_NOMEM] = "nomem",
};

const char *kl_form_reason_str(kl_form_reason r)
{
    if ((unsigned)r >= KL_FORM_REASON_COUNT)
        return "unknown";
    return reason_names[r];
}

/* Well-formed UTF-8 (RFC 3629): no overlong forms, surrogates or values above U+10FFFF. */
static bool utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t len;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            len = 2, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

/* Decodes in[0..n) into out (room for n bytes), returning the decoded length or -1. Raw
 * bytes must be visible ASCII; anything else arrives percent-encoded. */
static long decode(const char *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '+') {
            out[o++] = ' ';
        } else if (c == '%') {
            if (n - i < 3)
                return -1;
            int hi = kl_hex_digit((unsigned char)in[i + 1]);
            int lo = kl_hex_digit((unsigned char)in[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            unsigned char b = (unsigned char)(hi << 4 | lo);
            if (b == 0)
                return -1; /* values become C strings */
            out[o++] = (char)b;
            i += 2;
        } else if (c > 0x20 && c < 0x7f) {
            out[o++] = (char)c;
        } else {
            return -1;
        }
    }
    if (!utf8_valid((const unsigned char *)out, o))
        return -1;
    return (long)o;
}

static void set_dup(char *dup_name, size_t dup_cap, const param *p)
{
    if (!dup_name || dup_cap == 0)
        return;
    size_t k = p->name_len < dup_cap - 1 ? p->name_len : dup_cap - 1;
    memcpy(dup_name, p->name, k);
    dup_name[k] = '\0';
}

kl_form_reason kl_form_parse(const char *body, size_t n, kl_form **out, char *dup_name,
                             size_t dup_cap)
{
    kl_form *f = NULL;
    kl_form_reason r = KL_FORM_TOO_BIG;
    *out = NULL;
    if (dup_name && dup_cap)
        dup_name[0] = '\0';
    if (n > KL_MAX_FORM_BYTES)
        goto out;
    r = KL_FORM_NOMEM;
    if (!(f = calloc(1, sizeof(*f))))
        goto out;
    /* Every decoded byte comes from at least one input byte; plus a NUL per string. */
    f->buf_len = n + 2 * (KL_MAX_FORM_PARAMS + 1);
    if (!(f->buf = malloc(f->buf_len)))
        goto out;
    size_t used = 0, start = 0;
    for (size_t i = 0; n > 0 && i <= n; i++) {
        if (i < n && body[i] != '&')
            continue;
        const char *pair = body + start;
        size_t plen = i - start;
        start = i + 1;
        r = KL_FORM_EMPTY_NAME;
        if (plen == 0 || pair[0] == '=')
            goto out;
        r = KL_FORM_TOO_MANY;
        if (f->count == KL_MAX_FORM_PARAMS)
            goto out;
        const char *eq = memchr(pair, '=', plen);
        size_t nlen = eq ? (size_t)(eq - pair) : plen;
        const char *val = eq ? eq + 1 : pair + plen;
        size_t vlen = eq ? plen - nlen - 1 : 0;
        param *p = &f->params[f->count];
        r = KL_FORM_BAD_ENCODING;
        long dn = decode(pair, nlen, f->buf + used);
        if (dn < 0)
            goto out;
        r = KL_FORM_TOO_BIG;
        if ((size_t)dn > KL_MAX_FORM_NAME)
            goto out;
        p->name = f->buf + used;
        p->name_len = (size_t)dn;
        used += (size_t)dn;
        f->buf[used++] = '\0';
        r = KL_FORM_BAD_ENCODING;
        long dv = decode(val, vlen, f->buf + used);
        if (dv < 0)
            goto out;
        r = KL_FORM_TOO_BIG;
        if ((size_t)dv > KL_MAX_FORM_VALUE)
            goto out;
        p->value = f->buf + used;
        p->value_len = (size_t)dv;
        used += (size_t)dv;
        f->buf[used++] = '\0';
        for (size_t k = 0; k < f->count; k++) {
            if (f->params[k].name_len == p->name_len &&
                memcmp(f->params[k].name, p->name, p->name_len) == 0) {
                set_dup(dup_name, dup_cap, p);
                r = KL_FORM_DUPLICATE;
                goto out;
            }
        }
        f->count++;
    }
    *out = f;
    f = NULL;
    r = KL_FORM_OK;
out:
    kl_form_free(f);
    return r;
}

const char *kl_form_get(const kl_form *f, const char *name, size_t *len)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < f->count; i++) {
        const param *p = &f->params[i];
        if (p->name_len == n && memcmp(p->name, name, n) == 0) {
            if (len)
                *len = p->value_len;
            return p->value;
        }
    }
    return NULL;
}

size_t kl_form_count(const kl_form *f)
{
    return f->count;
}

const char *kl_form_name(const kl_form *f, size_t i)
{
    return i < f->count ? f->params[i].name : NULL;
}

const char *kl_form_value(const kl_form *f, size_t i)
{
    return i < f->count ? f->params[i].value : NULL;
}

void kl_form_free(kl_form *f)
{
    if (!f)
        return;
    if (f->buf) {
        OPENSSL_cleanse(f->buf, f->buf_len);
        free(f->buf);
    }
    free(f);
}
