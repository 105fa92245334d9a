/* One error enum for the whole project: functions return 0 or a negative kl_err,
 * results travel through out-parameters. */
#ifndef KL_COMMON_ERR_H
#define KL_COMMON_ERR_H

#include <stddef.h>

typedef enum kl_err {
    KL_OK = 0,
    KL_ENOMEM = -1,     /* allocation failed */
    KL_EINVAL = -2,     /* caller-supplied input is malformed */
    KL_ENOTFOUND = -3,  /* the thing asked for does not exist */
    KL_EEXIST = -4,     /* the thing to create already exists */
    KL_EIO = -5,        /* file, socket or database I/O failed */
    KL_ECRYPTO = -6,    /* a cryptographic operation failed or a MAC did not verify */
    KL_ETOOBIG = -7,    /* input exceeds a documented limit */
    KL_EPERM = -8,      /* not allowed */
    KL_ECONFLICT = -9,  /* the change conflicts with current state */
    KL_EINTERNAL = -10, /* a broken invariant */
    KL_EUNAVAIL = -11   /* a dependency (the database) is unreachable, or busy past its bound */
} kl_err;

/* Returns a static, human-readable name for err; never NULL. */
const char *kl_err_str(int err);

/* Formats a message for the caller into err (NUL-terminated, truncated to errlen; nothing
 * is written when err is NULL or errlen is 0) and returns rc, so that a refusal reads
 * `return kl_err_say(err, errlen, KL_EINVAL, "...", ...)`. */
int kl_err_say(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
