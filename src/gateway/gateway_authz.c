/* Data-plane authorization of signed-in principals against the snapshot's RBAC index. */
#include "gateway/gateway_authz.h"

#include <stdio.h>

#include "rbac/rbac.h"

const char *kl_gateway_operation(kl_gateway_route_kind kind, bool v1)
{
    switch (kind) {
    case KL_GW_ROUTE_CHAT:
        return v1 ? "POST /openai/v1/chat/completions"
                  : "POST /openai/deployments/{deployment-id}/chat/completions";
    case KL_GW_ROUTE_COMPLETIONS:
        return v1 ? "POST /openai/v1/completions"
                  : "POST /openai/deployments/{deployment-id}/completions";
    case KL_GW_ROUTE_EMBEDDINGS:
        return v1 ? "POST /openai/v1/embeddings"
                  : "POST /openai/deployments/{deployment-id}/embeddings";
    case KL_GW_ROUTE_MODELS: return "GET /openai/v1/models";
    case KL_GW_ROUTE_MODEL: return "GET /openai/v1/models/{model-id}";
    case KL_GW_ROUTE_DEPLOYMENTS: return "GET /openai/deployments";
    case KL_GW_ROUTE_NONE: break;
    }
    return "unknown";
}

kl_gateway_authz kl_gateway_authorize(const kl_snapshot *s, const char *oid,
                                      kl_gateway_route_kind kind, bool v1, const kl_account *acct,
                                      char *msg, size_t msglen)
{
    const char *action = kl_gateway_data_action(kind);
    const kl_principal *p = oid ? kl_snapshot_principal(s, oid) : NULL;
    /* A principal deleted or disabled since its token was issued loses access at once,
     * whatever the token still says. */
    if (!p || !p->enabled)
        return KL_GW_AUTHZ_NO_PRINCIPAL;
    kl_rbac_decision d;
    if (action && acct && kl_snapshot_rbac_check(s, p, action, true, acct->id, &d) == 0 &&
        d.allowed)
        return KL_GW_AUTHZ_ALLOW;
    if (msg && msglen)
        snprintf(msg, msglen,
                 "The principal `%s` lacks the required data action `%s` to perform `%s` "
                 "operation.",
                 p->object_id, action ? action : "(none)", kl_gateway_operation(kind, v1));
    return KL_GW_AUTHZ_DENY;
}
