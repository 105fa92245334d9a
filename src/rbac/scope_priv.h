/* Parts of the scope module shared only inside src/rbac: the check path wants the
 * lower-cased form and the level ends without the canonical copy. */
#ifndef KL_RBAC_SCOPE_PRIV_H
#define KL_RBAC_SCOPE_PRIV_H

#include <stddef.h>
#include <stdint.h>

/* Like kl_scope_parse, but writes the canonical form lower-cased into
 * out[KL_MAX_SCOPE + 1] and the level ends into level_len[KL_MAX_SCOPE_DEPTH]. */
int kl_scope_parse_lower(const char *in, size_t len, char *out, size_t *outlen, uint16_t *level_len,
                         size_t *nlevels);

#endif
