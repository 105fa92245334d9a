/* The Authorization header's Bearer scheme (RFC 6750 2.1), one parser for every face
 * that takes tokens: the gateway and the control plane on the public listener. */
#ifndef KL_TOKEN_BEARER_H
#define KL_TOKEN_BEARER_H

#include <stdbool.h>
#include <stddef.h>

/* Splits "Bearer <value>" (scheme case-insensitive, then at least one space or tab;
 * surrounding blanks trimmed). True with *v pointing into h and *n its length; false when
 * h is another scheme or carries no value. Nothing is checked about the value itself. */
bool kl_bearer_split(const char *h, const char **v, size_t *n);

#endif
