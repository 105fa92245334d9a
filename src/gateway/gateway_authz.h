/* Data-plane authorization for principals that sign in (bearer tokens): the route's data
 * action, checked against the snapshot's RBAC index at the account's scope. API keys are
 * account-wide by design and never come here. */
#ifndef KL_GATEWAY_AUTHZ_H
#define KL_GATEWAY_AUTHZ_H

#include <stdbool.h>
#include <stddef.h>

#include "gateway/route.h"
#include "policy/snapshot.h"

typedef enum kl_gateway_authz {
    KL_GW_AUTHZ_ALLOW = 0,
    KL_GW_AUTHZ_NO_PRINCIPAL, /* unknown or disabled principal: the token is no good */
    KL_GW_AUTHZ_DENY          /* known principal without the data action: PermissionDenied */
} kl_gateway_authz;

/* May the principal with object id oid perform route kind on account acct? Reads only
 * the snapshot. On KL_GW_AUTHZ_DENY, msg[msglen] receives Azure's PermissionDenied text
 * ("The principal `oid` lacks the required data action `A` to perform `OP` operation.").
 * An operation with no data action is denied. */
kl_gateway_authz kl_gateway_authorize(const kl_snapshot *s, const char *oid,
                                      kl_gateway_route_kind kind, bool v1, const kl_account *acct,
                                      char *msg, size_t msglen);

/* The operation as Azure names it in PermissionDenied messages, a literal template such
 * as "POST /openai/deployments/{deployment-id}/chat/completions". Static string. */
const char *kl_gateway_operation(kl_gateway_route_kind kind, bool v1);

#endif
