/* The authorization-code flow (security.md T14): the authorize endpoint with its sign-in
 * page, the token endpoint's authorization_code grant (kl_authorize_redeem, declared in
 * sts_internal.h), and sign-out.
 *
 * Until client_id and redirect_uri are both known good, every refusal is a page shown
 * here and never a redirect, so that the endpoint cannot be used to send a browser
 * anywhere (no open redirect). After that, refusals go back to the redirect URI as
 * ?error=..&error_description=..&state=.., as Entra does. */
#ifndef KL_GATEWAY_AUTHORIZE_H
#define KL_GATEWAY_AUTHORIZE_H

#include <stdbool.h>

#include "gateway/sts_internal.h"

/* GET or POST /{tenant}/oauth2/v2.0/authorize (v1, told by its path: /oauth2/authorize,
 * where resource= may stand in for the scope) for the tenant of snap. GET validates the request and
 * shows the sign-in page (or, with a live kl_session cookie and no prompt=login, signs the user in
 * at once); POST is the page's form: CSRF first, then the password (directory/lockout.h), then a
 * session and a code, answered as 302 to the redirect URI. Every answer is a page (webpage.h) or a
 * redirect; r is answered (possibly later, by a timer: a failed password's slowdown). snap is only
 * read before this returns. */
void kl_authorize_handle(kl_gateway_sts *s, kl_http_req *r, const kl_snapshot *snap);

/* GET /{tenant}/oauth2/v2.0/logout (v1: /oauth2/logout): revokes the kl_session cookie's
 * session and its refresh tokens, clears the cookie, and redirects to
 * post_logout_redirect_uri only when it is a registered redirect URI of some
 * application (else a "signed out" page). */
void kl_authorize_logout(kl_gateway_sts *s, kl_http_req *r, const kl_snapshot *snap);

#endif
