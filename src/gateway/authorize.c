/* The authorization_code grant, not offered yet: the token endpoint dispatches it here
 * and it answers as Entra does for a grant an app may not use. */
#include "gateway/authorize.h"

void kl_authorize_redeem(kl_sts_grant *g)
{
    kl_sts_error(g->a, g->r, 400, "unsupported_grant_type", 70003,
                 "The app requested an unsupported grant type 'authorization_code'.");
}
