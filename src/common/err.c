/* Names for kl_err values, for logs and error messages. */
#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>

const char *kl_err_str(int err)
{
    switch (err) {
    case KL_OK: return "ok";
    case KL_ENOMEM: return "out of memory";
    case KL_EINVAL: return "invalid input";
    case KL_ENOTFOUND: return "not found";
    case KL_EEXIST: return "already exists";
    case KL_EIO: return "I/O error";
    case KL_ECRYPTO: return "cryptographic failure";
    case KL_ETOOBIG: return "too large";
    case KL_EPERM: return "not permitted";
    case KL_ECONFLICT: return "conflict";
    case KL_EINTERNAL: return "internal error";
    case KL_EUNAVAIL: return "unavailable";
    }
    return "unknown error";
}

int kl_err_say(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}
