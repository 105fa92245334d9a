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

/* Who a control-plane request acts as: a principal of the directory, authorised by RBAC
 * against the current snapshot on every request. */
typedef struct kl_mgmt_caller {
    const char *object_id; /* the principal's object id (GUID); borrowed for the call */
} kl_mgmt_caller;

/* Serves one request arriving on the admin socket (kl_http_req_is_admin): it acts as the
 * local administrator (Owner of "/" from first start), or as the principal named by an
 * "x-keyless-principal: <object id>" header (the socket is root-equivalent, so it may
 * ask what any principal could do). Any other request is refused (401). Always answers. */
void kl_mgmt_handle(kl_mgmt *m, kl_http_req *r);
/* Serves one request as caller, e.g. the principal of a verified bearer token (the
 * caller has authenticated it). A caller unknown to the directory is refused. Always
 * answers. */
void kl_mgmt_handle_as(kl_mgmt *m, kl_http_req *r, const kl_mgmt_caller *caller);

#endif
