/* Structured logging: one JSON object per line on stderr. Never pass a secret as a
 * value; log kl_util_hash_prefix() of it instead when correlation is needed. */
#ifndef KL_COMMON_LOG_H
#define KL_COMMON_LOG_H

#include <jansson.h>

typedef enum kl_log_level { KL_LOG_DEBUG = 0, KL_LOG_INFO, KL_LOG_WARN, KL_LOG_ERROR } kl_log_level;

/* Sets the minimum level written; called once at start-up, before threads exist. */
void kl_log_set_level(kl_log_level lvl);
int kl_log_enabled(kl_log_level lvl);
/* Writes {"ts":..,"level":..,"event":event, k1:v1, ...}. Arguments after event are
 * pairs of const char * (key, value), terminated by a NULL key. NULL values are skipped;
 * values are escaped as kl_log_string does. */
void kl_log(kl_log_level lvl, const char *event, ...);
/* Same, with extra fields from a JSON object; takes ownership of fields (may be NULL). */
void kl_log_json(kl_log_level lvl, const char *event, json_t *fields);

/* A JSON string for a log field made of n bytes that may come from the network. Valid
 * UTF-8 is kept as is, except that a backslash becomes two; every byte that is not part
 * of valid UTF-8 (and NUL) becomes the four characters \xNN, so a field is never dropped
 * and the escaping cannot be confused with the data. Control characters need nothing
 * here: the JSON writer escapes them as \u00XX. s may be NULL when n is 0. Returns a new
 * reference (the caller owns it), or NULL only when memory runs out. */
json_t *kl_log_string(const char *s, size_t n);

#endif
