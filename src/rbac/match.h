/* Action patterns of Azure role definitions (such as "Microsoft.Support" followed by "/" and
 * "*"), compiled once into a matcher that a check runs without allocating. Matching is
 * ASCII case-insensitive; '*' matches any run of characters, '/' included. */
#ifndef KL_RBAC_MATCH_H
#define KL_RBAC_MATCH_H

#include <stdbool.h>
#include <stddef.h>

typedef struct kl_rbac_matcher kl_rbac_matcher;

/* Semantics (Azure's, as documented for role definitions):
 *  - a pattern without '*' matches exactly that action, ignoring ASCII case;
 *  - '*' matches any run of characters, including none and including '/';
 *  - a '*' that is a whole path segment (a slash on each side) may also vanish together
 *    with one of its slashes: Managed Identity Operator's ".../userAssignedIdentities/
 *    STAR/assign/action" covers ".../userAssignedIdentities/assign/action", which is what
 *    that role grants in Azure.
 * A pattern is 1..KL_MAX_ACTION bytes of printable ASCII without spaces. */

/* Checks one pattern. 0, KL_EINVAL (empty, bad character) or KL_ETOOBIG (too long). */
int kl_rbac_pattern_check(const char *pattern);

/* Compiles n patterns (n may be 0: matches nothing; at most KL_MAX_ROLE_PATTERNS). The
 * matcher copies what it needs; the caller keeps ownership of patterns. On success
 * *out is set and must be released with kl_rbac_matcher_free. Errors: KL_EINVAL (a bad
 * pattern), KL_ETOOBIG, KL_ENOMEM; *out is then NULL. */
int kl_rbac_matcher_new(const char *const *patterns, size_t n, kl_rbac_matcher **out);
void kl_rbac_matcher_free(kl_rbac_matcher *m);

/* Lower-cases and validates an action to check (1..KL_MAX_ACTION bytes of printable ASCII,
 * no spaces, no '*'). out must hold KL_MAX_ACTION + 1 bytes; *len gets the length.
 * 0, KL_EINVAL or KL_ETOOBIG. */
int kl_rbac_action_normalize(const char *action, char *out, size_t *len);

/* True if any pattern of m matches the action. action_lc[0..len) must come from
 * kl_rbac_action_normalize. Never allocates; a NULL matcher matches nothing. */
bool kl_rbac_matcher_match(const kl_rbac_matcher *m, const char *action_lc, size_t len);

/* Number of patterns compiled into m (0 for NULL). */
size_t kl_rbac_matcher_count(const kl_rbac_matcher *m);

#endif
