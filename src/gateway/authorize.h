/* The authorization-code flow: the authorize endpoint and the token endpoint's
 * authorization_code grant (kl_authorize_redeem, declared in sts_internal.h). This file
 * holds the grant's stub until the sign-in page lands. */
#ifndef KL_GATEWAY_AUTHORIZE_H
#define KL_GATEWAY_AUTHORIZE_H

#include "gateway/sts_internal.h"

#endif
