/* The Azure-OpenAI-compatible data plane: authenticates each request (API key now,
 * bearer tokens later), picks the account and deployment from the snapshot, and serves
 * it with the built-in echo model or by proxying to an OpenAI-compatible upstream,
 * streaming SSE through as it arrives. */
#ifndef KL_GATEWAY_GATEWAY_H
#define KL_GATEWAY_GATEWAY_H

#include <event2/event.h>
#include <stdbool.h>

#include "crypto/keys.h"
#include "http/server.h"
#include "policy/snapshot.h"

typedef struct kl_gateway kl_gateway;

typedef struct kl_gateway_cfg {
    kl_snapshot_holder *holder; /* borrowed */
    const kl_keys *keys;        /* borrowed; the pepper for the API key index */
    kl_metrics *metrics;        /* borrowed; may be NULL */
    /* Accounts are reached by Host "{account}.{account_domain}" (port ignored) when this
     * is non-NULL, and always by the path prefix "/accounts/{account}". */
    const char *account_domain;
} kl_gateway_cfg;

int kl_gateway_new(const kl_gateway_cfg *cfg, kl_gateway **out);
void kl_gateway_free(kl_gateway *g);
/* Per-worker state (upstream connection pools) built on that worker's event base. */
void *kl_gateway_thread_init(kl_gateway *g, struct event_base *base);
void kl_gateway_thread_fini(kl_gateway *g, void *state);
/* True if this request is for the data plane (by Host or by path). */
bool kl_gateway_matches(kl_gateway *g, kl_http_req *r);
/* Serves one data-plane request on a worker thread; answers now or asynchronously. */
void kl_gateway_handle(kl_gateway *g, void *thread_state, kl_http_req *r);

#endif
