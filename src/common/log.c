/* JSON-lines logger. Each line goes out in a single write() so lines from several
 * threads never interleave. */
#include "common/log.h"

#include <stdarg.h>
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
            json_object_set_new(obj, k, json_string(v));
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
