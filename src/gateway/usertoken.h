/* Tokens for users: the one place a signed-in user becomes an access token, an id_token,
 * client_info and a refresh token (kl_sts_issue_user), the scope grammar of user flows
 * (kl_sts_scope_parse), and the password and refresh_token grants. Declarations are in
 * sts_internal.h, shared with the other user grants. */
#ifndef KL_GATEWAY_USERTOKEN_H
#define KL_GATEWAY_USERTOKEN_H

#include "gateway/sts_internal.h"

#endif
