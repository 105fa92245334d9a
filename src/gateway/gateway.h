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
#include "policy/egress.h"
#include "policy/netrules.h"
#include "policy/snapshot.h"

typedef struct kl_gateway kl_gateway;

typedef struct kl_gateway_cfg {
    kl_snapshot_holder *holder; /* borrowed */
    const kl_keys *keys;        /* borrowed; the pepper for the API key index */
    kl_metrics *metrics;        /* borrowed; may be NULL */
    /* Accounts are reached by Host "{account}.{account_domain}" (port ignored) when this
     * is non-NULL, and always by the path prefix "/accounts/{account}". */
    const char *account_domain;
    /* Milliseconds an upstream may stay silent (no connection, no byte) before the client
     * gets 504; 0 means KL_UPSTREAM_TIMEOUT_MS. */
    int upstream_timeout_ms;
    /* The operator's egress policy (borrowed, required): checked on every address an
     * upstream connection is about to be made to. */
    const kl_egress *egress;
    /* --trusted-proxy: when the TCP peer is in this set, the caller is the right-most
     * X-Forwarded-For address outside it (borrowed; NULL: X-Forwarded-For is ignored). */
    const kl_netrules *trusted_proxies;
} kl_gateway_cfg;

/* Creates the gateway (cfg is copied; the pointers in it stay borrowed and must outlive
 * it). 0, KL_EINVAL (no holder, keys or egress), KL_ENOMEM or KL_ECRYPTO (TLS client context). */
int kl_gateway_new(const kl_gateway_cfg *cfg, kl_gateway **out);
/* Frees the gateway; every worker state must have been finished first. NULL is fine. */
void kl_gateway_free(kl_gateway *g);
/* Per-worker state (cached snapshot reference, upstream connection pools, resolver)
 * built on that worker's event base and used only on that thread. NULL on failure. */
void *kl_gateway_thread_init(kl_gateway *g, struct event_base *base);
/* Releases a worker state on its own thread. Requests still in flight there lose their
 * upstream exchange (their abort/drain callbacks are unregistered); the server should
 * abort or finish them before calling this. */
void kl_gateway_thread_fini(kl_gateway *g, void *state);
/* True if this request is for the data plane (by Host or by path). */
bool kl_gateway_matches(kl_gateway *g, kl_http_req *r);
/* The headers hook of the data plane (see kl_http_headers_fn): decides from the head
 * alone, before the body is read, whether the request is for a known operation and
 * account and whether its credential is valid and allowed; answers refusals exactly as
 * kl_gateway_handle would (e.g. the 401 of a wrong api-key) and returns
 * KL_HTTP_ANSWERED, else KL_HTTP_CONTINUE without answering. */
kl_http_verdict kl_gateway_vet(kl_gateway *g, void *thread_state, kl_http_req *r);
/* Serves one data-plane request on a worker thread; answers now or asynchronously. */
void kl_gateway_handle(kl_gateway *g, void *thread_state, kl_http_req *r);

#endif
