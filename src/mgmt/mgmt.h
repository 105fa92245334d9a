/* The ARM-shaped control plane: Microsoft.CognitiveServices accounts, deployments and
 * keys (and, later, identities and roles). Handlers run on the control thread, where
 * blocking store writes are allowed; each change is one transaction followed by a
 * snapshot rebuild and publish, so the next data-plane request sees it. */
#ifndef KL_MGMT_MGMT_H
#define KL_MGMT_MGMT_H

#include "crypto/keys.h"
#include "http/server.h"
#include "policy/snapshot.h"
#include "store/store.h"

typedef struct kl_mgmt kl_mgmt;

typedef struct kl_mgmt_cfg {
    kl_store *store;            /* borrowed */
    kl_snapshot_holder *holder; /* borrowed; republished after every change */
    const kl_keys *keys;        /* borrowed */
    /* Base of the data-plane URL given back as properties.endpoint, e.g.
     * "https://127.0.0.1:8443"; the account is reached at {base}/accounts/{name}/. */
    const char *public_base_url;
} kl_mgmt_cfg;

int kl_mgmt_new(const kl_mgmt_cfg *cfg, kl_mgmt **out);
void kl_mgmt_free(kl_mgmt *m);
/* True if the path belongs to the control plane (/subscriptions/..., /providers/...). */
bool kl_mgmt_matches(const char *path);
/* Serves one control-plane request. The caller has already authenticated it (admin
 * socket = owner of "/"). Always answers. */
void kl_mgmt_handle(kl_mgmt *m, kl_http_req *r);

#endif
