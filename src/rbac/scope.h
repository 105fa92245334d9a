/* ARM scopes: validation, the canonical form and the "is at or above" test that role
 * assignment inheritance rests on. ARM compares ids case-insensitively, so do we; the
 * canonical form keeps the case of names and fixes the case of the fixed words. */
#ifndef KL_RBAC_SCOPE_H
#define KL_RBAC_SCOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/limits.h"

/* Accepted forms (each name one non-empty segment):
 *   /
 *   /subscriptions/{s}
 *   /subscriptions/{s}/resourceGroups/{rg}
 *   {any of the above}/providers/{namespace}/{type}/{name}[/{type}/{name}...]
 * and, after a resource name, again /providers/... (extension resources). A management
 * group is the tenant-level resource /providers/Microsoft.Management/managementGroups/{g};
 * keyless does not model which subscriptions sit under a group, so an assignment there
 * covers only the group's own id and what lies below it in the path.
 * Refused: a missing leading '/', "//" and other empty segments, "." and "..", control
 * and non-ASCII bytes, spaces and any of  \ ? # % " < > | * &, more than
 * KL_MAX_SCOPE bytes or KL_MAX_SCOPE_DEPTH levels. One trailing '/' is dropped. */

#define KL_SCOPE_STR_(x) #x
#define KL_SCOPE_STR(x) KL_SCOPE_STR_(x)
/* Why a scope was refused, in words, for every caller that refuses one (the control
 * plane's InvalidScope, the CLI): one text, so they all say the same. */
#define KL_SCOPE_RULE                                                                              \
    "The scope is invalid: use '/', /subscriptions/{id}, "                                         \
    "/subscriptions/{id}/resourceGroups/{name} or a resource id, without empty segments, "         \
    "'.' or '..', control characters or spaces, at most " KL_SCOPE_STR(                            \
        KL_MAX_SCOPE) " characters."
/* Added to KL_SCOPE_RULE when the scope has more levels than KL_MAX_SCOPE_DEPTH. */
#define KL_SCOPE_DEPTH_RULE "A scope has at most " KL_SCOPE_STR(KL_MAX_SCOPE_DEPTH) " levels."

typedef struct kl_scope {
    char text[KL_MAX_SCOPE + 1]; /* canonical form, NUL-terminated */
    size_t len;
    /* The levels an assignment can sit at, outermost first: text[0..level_len[i]) is the
     * i-th ancestor-or-self ("/" is level 0, so level_len[0] == 1). */
    size_t nlevels;
    uint16_t level_len[KL_MAX_SCOPE_DEPTH];
} kl_scope;

/* Validates in[0..len) and writes its canonical form. 0, KL_EINVAL or KL_ETOOBIG. */
int kl_scope_parse(const char *in, size_t len, kl_scope *out);

/* True if a and b name the same scope (case-insensitive). */
bool kl_scope_equal(const kl_scope *a, const kl_scope *b);

/* True if 'above' is 'below' or one of its ancestors: the comparison stops on level
 * boundaries, so /subscriptions/s/resourceGroups/rg never covers .../resourceGroups/rg2. */
bool kl_scope_covers(const kl_scope *above, const kl_scope *below);

/* The same for strings; *covers is false unless both parse. 0 or the parse error. */
int kl_scope_covers_str(const char *above, const char *below, bool *covers);

#endif
