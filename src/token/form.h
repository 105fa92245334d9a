/* application/x-www-form-urlencoded bodies of token requests (RFC 6749 appendix B):
 * strict percent-decoding, '+' as space, every parameter at most once (RFC 6749 3.2:
 * "Request and response parameters MUST NOT be included more than once"), and bounded
 * sizes and counts (KL_MAX_FORM_*). */
#ifndef KL_TOKEN_FORM_H
#define KL_TOKEN_FORM_H

#include <stddef.h>

/* Why a body was refused. */
typedef enum kl_form_reason {
    KL_FORM_OK = 0,
    KL_FORM_TOO_BIG,      /* body above KL_MAX_FORM_BYTES, or a name/value above its limit */
    KL_FORM_TOO_MANY,     /* more than KL_MAX_FORM_PARAMS parameters */
    KL_FORM_BAD_ENCODING, /* bad %XX, a decoded NUL or invalid UTF-8, a raw control byte */
    KL_FORM_EMPTY_NAME,   /* "=x", "a=1&&b=2", a trailing '&' */
    KL_FORM_DUPLICATE,    /* a parameter name appears twice */
    KL_FORM_NOMEM,        /* allocation failed */
    KL_FORM_REASON_COUNT
} kl_form_reason;

const char *kl_form_reason_str(kl_form_reason r);

/* A parsed body: decoded, NUL-terminated names and values. Immutable once parsed. */
typedef struct kl_form kl_form;

/* Parses body[0..n) (need not be NUL-terminated). On KL_FORM_OK *out is owned by the
 * caller (kl_form_free); otherwise *out is NULL and, for KL_FORM_DUPLICATE, dup_name
 * (if not NULL) receives the repeated name, truncated to dup_cap - 1 bytes, for the
 * error description. An empty body is a form without parameters. */
kl_form_reason kl_form_parse(const char *body, size_t n, kl_form **out, char *dup_name,
                             size_t dup_cap);

/* The decoded value of name, or NULL if absent; *len (if not NULL) gets its length.
 * Borrowed from f. Names compare exactly (case matters, as in OAuth). */
const char *kl_form_get(const kl_form *f, const char *name, size_t *len);

/* Number of parameters, and the i-th name and value in body order (borrowed). */
size_t kl_form_count(const kl_form *f);
const char *kl_form_name(const kl_form *f, size_t i);
const char *kl_form_value(const kl_form *f, size_t i);

/* Wipes (values may be secrets: client_secret, password) and frees. NULL is fine. */
void kl_form_free(kl_form *f);

#endif
