/* The device-code flow (RFC 8628 as Entra speaks it, protocols.md §4.3): the devicecode
 * endpoint that hands a client a device_code and a user_code, the verification page where
 * a person enters the user code and signs in (or declines), and the token endpoint's
 * device_code grant (kl_devicecode_redeem, declared in sts_internal.h) that the client
 * polls until then.
 *
 * Codes live in the store (store_devicecodes.c), so any node answers any step and a code
 * is approved once and redeemed once however the steps are spread over nodes. What is
 * kept per node: the last poll of each code (the too-fast rule: such a poll is answered
 * authorization_pending without touching the store, never slow_down, which MSAL treats as
 * fatal) and the wrong user codes per source address (security.md T9).
 *
 * The daemon's router reaches the page through this header; the endpoint and the grant
 * are the token service's (gateway_sts.c), which holds the state (kl_gateway_sts.devicecode). */
#ifndef KL_GATEWAY_DEVICECODE_H
#define KL_GATEWAY_DEVICECODE_H

#include <stdbool.h>
#include <stdint.h>

#include "gateway/gateway_sts.h"
#include "http/server.h"
#include "policy/snapshot.h"

typedef struct kl_devicecode kl_devicecode;

/* The flow's per-node state; codes live lifetime_s (0: KL_DEVICE_CODE_LIFETIME_S; else
 * within KL_DEVICE_CODE_MIN_LIFETIME_S..KL_DEVICE_CODE_MAX_LIFETIME_S). *out owned by the
 * caller (kl_devicecode_free). KL_EINVAL (lifetime out of bounds), KL_ENOMEM, KL_ECRYPTO. */
int kl_devicecode_new(int64_t lifetime_s, kl_devicecode **out);
void kl_devicecode_free(kl_devicecode *d);

/* POST /{tenant}/oauth2/v2.0/devicecode (v1: /{tenant}/oauth2/devicecode, which also
 * takes "resource" instead of "scope"): client_id (an enabled public client, presenting
 * no credential) and scope (kl_sts_scope_parse). Answers 200 with device_code, user_code,
 * verification_uri ({base}/devicelogin), expires_in, interval and message, or Entra's
 * error (invalid_request 900144, unauthorized_client 700016, invalid_client 7000218 for a
 * confidential client, 700025 for a credential sent by a public one, 7000112 disabled,
 * invalid_scope 70011, temporarily_unavailable 503 when the store cannot be written). */
void kl_devicecode_issue(kl_gateway_sts *s, kl_http_req *r, const kl_snapshot *snap, bool v1);

/* True for the verification page's path (/devicelogin, any case). */
bool kl_devicecode_page_matches(const char *path);

/* GET/POST /devicelogin: step 1 asks for the user code; step 2 names the app and what
 * it asks for and takes the user's name and password (Continue) or declines (Cancel).
 * Every POST carries the CSRF double-submit token (webpage.h) or is refused 403. Wrong
 * user codes are counted per source address and refused 429 past the throttle's limit;
 * a wrong password is answered after lockout.h's delay, by a timer. Approval records
 * the user's object id, a new sign-in session id and the time of sign-in. */
void kl_devicecode_page(kl_gateway_sts *s, kl_http_req *r);

#endif
