/* The ARM-shaped control plane: Microsoft.CognitiveServices accounts, deployments and
 * keys, Microsoft.Authorization role definitions and assignments, and the Graph-shaped
 * directory (applications, service principals). Handlers run on the control thread, where
 * blocking store writes are allowed; each change is one transaction followed by a
 * snapshot rebuild and publish, so the next data-plane request sees it. A change whose
 * snapshot cannot be built is fenced (its scope answers 503 everywhere) and the build is
 * retried from the control thread until it succeeds: a saved revocation always takes
 * effect. */
#ifndef KL_MGMT_MGMT_H
#define KL_MGMT_MGMT_H

#include <event2/event.h>

#include "crypto/keys.h"
#include "http/server.h"
#include "policy/egress.h"
#include "policy/signing.h"
#include "policy/build.h"
#include "policy/snapshot.h"
#include "store/store.h"

typedef struct kl_mgmt kl_mgmt;

typedef struct kl_mgmt_cfg {
    kl_store *store;            /* borrowed */
    kl_snapshot_holder *holder; /* borrowed; republished after every change */
    const kl_keys *keys;        /* borrowed */
    kl_policy *policy;          /* borrowed; builds and publishes to holder, fences */
    /* Base of the data-plane URL given back as properties.endpoint, e.g.
     * "https://127.0.0.1:8443"; the account is reached at {base}/accounts/{name}/. */
    const char *public_base_url;
    /* The operator's egress policy (borrowed, required): a deployment whose backend is a
     * literal address it refuses is refused at write time. */
    const kl_egress *egress;
    /* Signing key rotation (copied); NULL: the defaults (30 days, RS256, 60-minute
     * tokens). */
    const kl_signing_cfg *signing;
    /* Key usage cells (borrowed, may be NULL): flushed to the store every
     * KL_KEYUSAGE_FLUSH_MS from the control thread, read by listKeyUsage. */
    kl_keyusage *usage;
    /* The URL of the App-Service-style identity endpoint handed to keyless run as
     * IDENTITY_ENDPOINT, e.g. "http://127.0.0.1:50342/msi/token"; NULL: none. */
    const char *identity_endpoint;
} kl_mgmt_cfg;

/* Makes the control plane over cfg's store, snapshot holder, keys, egress policy and
 * policy (all required and borrowed; they must outlive it) after checking the route
 * table once. The public base URL (default https://127.0.0.1:8443) and the identity
 * endpoint are copied; cfg->signing is copied when given. Its timers start later, on the
 * control thread (kl_mgmt_thread_init). On success *out is the new object (free with
 * kl_mgmt_free); on failure *out is NULL and nothing is kept.
 * Returns 0; KL_EINVAL for a NULL cfg, out or required member; KL_EINTERNAL when the
 * route table is inconsistent (a build defect, logged as mgmt_route_table_invalid);
 * KL_ENOMEM. */
int kl_mgmt_new(const kl_mgmt_cfg *cfg, kl_mgmt **out);
void kl_mgmt_free(kl_mgmt *m);
/* On the control thread, once its event base exists: prepares the timer that retries a
 * failed snapshot build and the one that flushes key usage. 0 or KL_ENOMEM. kl_mgmt_thread_fini
 * undoes it on the same thread before the base goes. */
int kl_mgmt_thread_init(kl_mgmt *m, struct event_base *base);
void kl_mgmt_thread_fini(kl_mgmt *m);
/* True if the path belongs to the control plane (/subscriptions/..., /providers/...,
 * the Graph-shaped directory under /v1.0/... and keyless's own /keyless/...). */
bool kl_mgmt_matches(const char *path);

/* Serves one request arriving on the admin socket (kl_http_req_is_admin): it acts as the
 * local administrator (Owner of "/" from first start), or as the principal named by an
 * "x-keyless-principal: <object id>" header (the socket is root-equivalent, so it may
 * ask what any principal could do). Any other request is refused (401). Always answers. */
void kl_mgmt_handle(kl_mgmt *m, kl_http_req *r);

/* The control plane on the public TLS listener answers bearer tokens only: our own v1
 * access tokens, verified against the snapshot's key ring, with the ARM audience
 * (https://management.azure.com/ or https://management.core.windows.net/, with or
 * without the slash) for ARM's and keyless's own paths, or https://graph.microsoft.com
 * for the Graph-shaped directory (/v1.0/...); issuer and tenant this tenant's; the
 * principal present and enabled in the current snapshot. A refusal is ARM's 401
 * (AuthenticationFailed, InvalidAuthenticationToken, ExpiredAuthenticationToken,
 * InvalidAuthenticationTokenAudience, InvalidAuthenticationTokenTenant) with its
 * "WWW-Authenticate: Bearer authorization_uri=..." challenge, or Graph's 401
 * InvalidAuthenticationToken with innerError. x-keyless-principal means nothing here.
 *
 * kl_mgmt_vet_bearer runs on the worker thread once the head is in: it answers a
 * refusal from the head alone (KL_HTTP_ANSWERED; the body is never read) or returns
 * KL_HTTP_CONTINUE. kl_mgmt_handle_bearer serves the complete request: it checks the
 * token again (the snapshot may have changed while the body arrived), then every call is
 * authorised by RBAC as the token's principal. Control-plane calls are serialised with
 * the admin socket's and the control thread's timers (one mutex), so a write over TLS
 * holds its worker thread for the length of its transaction. Always answers. */
kl_http_verdict kl_mgmt_vet_bearer(kl_mgmt *m, kl_http_req *r);
void kl_mgmt_handle_bearer(kl_mgmt *m, kl_http_req *r);

#endif
