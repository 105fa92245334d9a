/* Growable byte buffer with a hard maximum, so nothing fed from the network can grow
 * without bound. Always NUL-terminated for convenience; len excludes the NUL. */
#ifndef KL_COMMON_BUF_H
#define KL_COMMON_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct kl_buf {
    char *data; /* owned; NULL until the first append */
    size_t len; /* bytes used, excluding the terminating NUL */
    size_t cap; /* bytes allocated */
    size_t max; /* appends that would exceed this fail with KL_ETOOBIG */
    int secret; /* nonzero: every copy is wiped before it is freed (growth and free) */
} kl_buf;

/* Initialises an empty buffer that may grow to max bytes. Allocates nothing. */
void kl_buf_init(kl_buf *b, size_t max);
/* Same, for bytes that may hold secrets (request headers with keys, form bodies): when
 * the buffer grows, the old storage is wiped before it is freed (no realloc leaves a
 * copy behind), and kl_buf_reset and kl_buf_free wipe it too. Only the bytes written
 * (up to len) are wiped, so such a buffer must only be filled through these functions
 * (kl_buf_steal hands the duty over to the caller). */
void kl_buf_init_secret(kl_buf *b, size_t max);
/* Makes room for extra more bytes in one allocation of exactly that size (when a final
 * size is known, e.g. from Content-Length), so later appends up to it do not move the
 * data. 0, KL_ETOOBIG (beyond max) or KL_ENOMEM. */
int kl_buf_reserve(kl_buf *b, size_t extra);
/* Appends n bytes. Returns 0, KL_ETOOBIG (buffer unchanged) or KL_ENOMEM. */
int kl_buf_append(kl_buf *b, const void *p, size_t n);
int kl_buf_append_str(kl_buf *b, const char *s);
int kl_buf_appendf(kl_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Empties the buffer, keeping its allocation. */
void kl_buf_reset(kl_buf *b);
/* Hands the data to the caller (who frees it) and leaves b empty. May return NULL. */
char *kl_buf_steal(kl_buf *b);
/* Frees the storage (wiping it first for a secret buffer). kl_buf_cleanse_free always
 * wipes it first. */
void kl_buf_free(kl_buf *b);
void kl_buf_cleanse_free(kl_buf *b);

#endif
