/* Routes each request to its face's component: gateway, control plane, health, metrics. */
#ifndef KL_DAEMON_ROUTER_H
#define KL_DAEMON_ROUTER_H

#include <event2/event.h>

#include "common/metrics.h"
#include "gateway/gateway.h"
#include "gateway/gateway_sts.h"
#include "http/server.h"
#include "imds/imds.h"
#include "mgmt/mgmt.h"
#include "policy/snapshot.h"
#include "store/store.h"

typedef struct kl_router {
    kl_mgmt *mgmt;              /* borrowed */
    kl_gateway *gateway;        /* borrowed */
    kl_gateway_sts *sts;        /* borrowed: the token service (discovery, JWKS, token) */
    kl_imds *imds;              /* borrowed, may be NULL: the managed-identity endpoints */
    kl_metrics *metrics;        /* borrowed */
    kl_store *store;            /* borrowed: /healthz reports not ready while it is unreachable */
    kl_snapshot_holder *holder; /* borrowed, may be NULL: key ages on /metrics */
} kl_router;

/* The server's handler (kl_http_handler_fn): answers r, now or asynchronously, and
 * returns nothing: every outcome, refusals included, is an HTTP answer in the shape of
 * the API the path belongs to. arg is the kl_router. /healthz on every face; on the admin
 * face /metrics and the control plane as the local administrator; on the metrics face
 * /metrics; on the identity face the managed-identity endpoints; on the public face the
 * token service's paths first, then the data plane, then the control plane with bearer
 * tokens; anything else is 404. Runs on the worker thread that owns r's connection. */
void kl_router_handle(kl_http_req *r, void *arg);
/* The server's headers hook (kl_http_headers_fn): refuses public requests whose head
 * already decides a refusal (bad credential, unknown route) before their body is read. */
kl_http_verdict kl_router_vet(kl_http_req *r, void *arg);
void *kl_router_thread_init(int index, struct event_base *base, void *arg);
void kl_router_thread_fini(void *state, struct event_base *base, void *arg);

#endif
