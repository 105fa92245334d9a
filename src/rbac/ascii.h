/* Lookup tables shared inside src/rbac for validating and lower-casing names, actions and
 * scopes in one pass (constant data, not state). */
#ifndef KL_RBAC_ASCII_H
#define KL_RBAC_ASCII_H

#include <stddef.h>
#include <string.h>

#include "common/err.h"

/* Action, pattern-free name or principal byte: its lower case, or 0 if not allowed
 * (control, space, DEL, non-ASCII, '*'). */
extern const unsigned char kl_rbac_lc_name[256];
/* Scope byte: its lower case, '/' for '/', or 0 if a scope may not contain it. */
extern const unsigned char kl_rbac_lc_scope[256];

/* Lower-cases the 1..max bytes of s into out (room for max + 1; NUL-terminated) and sets
 * *len. KL_EINVAL for NULL, empty or a byte kl_rbac_lc_name refuses; KL_ETOOBIG over max.
 * Inline because it runs on the check path (principal ids and actions). */
static inline int kl_rbac_lc_name_copy(const char *s, size_t max, char *out, size_t *len)
{
    if (!s || !s[0])
        return KL_EINVAL;
    size_t n = strnlen(s, max + 1);
    if (n > max)
        return KL_ETOOBIG;
    unsigned char bad = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char v = kl_rbac_lc_name[(unsigned char)s[i]];
        out[i] = (char)v;
        bad |= (unsigned char)(v == 0);
    }
    out[n] = '\0';
    if (bad)
        return KL_EINVAL;
    *len = n;
    return 0;
}

#endif
