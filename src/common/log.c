/* JSON-lines logger. Each line goes out in a single write() so lines from several
 * threads never interleave. */
#include "common/log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The logger's whole state; set once before threads start, read-only afterwards. */
static struct {
    atomic_int min_level;
} log_ctx = {KL_LOG_INFO};

static const char *level_name(kl_log_level l)
{
    switch (l) {
    case KL_LOG_DEBUG: return "debug";
    case KL_LOG_INFO: return "info";
    case KL_LOG_WARN: return "warn";
    case KL_LOG_ERROR: return "error";
    }
    return "info";
}

void kl_log_set_level(kl_log_level lvl)
{
    atomic_store(&log_ctx.min_level, (int)lvl);
}

int kl_log_enabled(kl_log_level lvl)
{
    return (int)lvl >= atomic_load_explicit(&log_ctx.min_level, memory_order_relaxed);
}

static void emit(kl_log_level lvl, const char *event, json_t *obj)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[40];
    size_t n = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + n, sizeof(when) - n, ".%03ldZ", ts.tv_nsec / 1000000);
    json_object_set_new(obj, "ts", json_string(when));
    json_object_set_new(obj, "level", json_string(level_name(lvl)));
    json_object_set_new(obj, "event", json_string(event ? event : "log"));
    char *line = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    if (line) {
        size_t len = strlen(line);
        char *out = malloc(len + 2);
        if (out) {
            memcpy(out, line, len);
            out[len] = '\n';
            ssize_t w = write(STDERR_FILENO, out, len + 1);
            (void)w;
            free(out);
        }
        free(line);
    }
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 if the bytes there
 * are not one: overlong forms, surrogates and code points above U+10FFFF are invalid,
 * as in RFC 3629. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (c >= 0x01 && c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else {
        return 0; /* NUL, a continuation byte, 0xc0, 0xc1 or 0xf5..0xff */
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return len;
}

json_t *kl_log_string(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    bool plain = true;
    for (size_t i = 0; i < n && plain;) {
        size_t l = utf8_seq(u + i, n - i);
        if (l == 0 || u[i] == '\\')
            plain = false;
        i += l;
    }
    if (plain)
        return json_stringn(n ? s : "", n);
    static const char hex[] = "0123456789abcdef";
    /* Worst case every byte becomes \xNN. */
    char *out = malloc(n * 4 + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t l = utf8_seq(u + i, n - i);
        if (l == 0) {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[u[i] >> 4];
            out[o++] = hex[u[i] & 15];
            i++;
        } else if (u[i] == '\\') {
            out[o++] = '\\';
            out[o++] = '\\';
            i++;
        } else {
            memcpy(out + o, u + i, l);
            o += l;
            i += l;
        }
    }
    json_t *j = json_stringn(out, o);
    free(out);
    return j;
}

void kl_log(kl_log_level lvl, const char *event, ...)
{
    if (!kl_log_enabled(lvl))
        return;
    json_t *obj = json_object();
    if (!obj)
        return;
    va_list ap;
    va_start(ap, event);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (!k)
            break;
        const char *v = va_arg(ap, const char *);
        if (v)
            json_object_set_new(obj, k, kl_log_string(v, strlen(v)));
    }
    va_end(ap);
    /* The fixed fields go first in the line for readability. */
    json_t *line = json_object();
    if (line) {
        json_object_set_new(line, "ts", json_null());
        json_object_set_new(line, "level", json_null());
        json_object_set_new(line, "event", json_null());
        json_object_update(line, obj);
        emit(lvl, event, line);
        json_decref(line);
    }
    json_decref(obj);
}

void kl_log_json(kl_log_level lvl, const char *event, json_t *fields)
{
    if (!kl_log_enabled(lvl)) {
        json_decref(fields);
        return;
    }
    json_t *line = json_object();
    if (line) {
        json_object_set_new(line, "ts", json_null());
        json_object_set_new(line, "level", json_null());
        json_object_set_new(line, "event", json_null());
        if (fields)
            json_object_update(line, fields);
        emit(lvl, event, line);
        json_decref(line);
    }
    json_decref(fields);
}
