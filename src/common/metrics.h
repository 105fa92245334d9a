/* Prometheus metrics, lock-free on the hot path (relaxed atomics in fixed arrays).
 * Route and status labels come from small fixed sets so the series count is bounded. */
#ifndef KL_COMMON_METRICS_H
#define KL_COMMON_METRICS_H

#include <stdint.h>

#include "common/buf.h"

typedef enum kl_route {
    KL_ROUTE_OTHER = 0,
    KL_ROUTE_CHAT,        /* chat/completions */
    KL_ROUTE_COMPLETIONS, /* completions */
    KL_ROUTE_EMBEDDINGS,  /* embeddings */
    KL_ROUTE_MODELS,      /* GET models */
    KL_ROUTE_MGMT,        /* ARM control plane */
    KL_ROUTE_IDENTITY,    /* managed identity endpoint */
    KL_ROUTE_STS,         /* token service */
    KL_ROUTE_HEALTH,
    KL_ROUTE_METRICS,
    KL_ROUTE__COUNT
} kl_route;

typedef enum kl_auth_fail {
    KL_AUTHFAIL_MISSING = 0,  /* no credential sent */
    KL_AUTHFAIL_INVALID_KEY,  /* api key unknown or malformed */
    KL_AUTHFAIL_KEY_DISABLED, /* disableLocalAuth */
    KL_AUTHFAIL_INVALID_TOKEN,
    KL_AUTHFAIL_FORBIDDEN, /* authenticated, lacks permission */
    KL_AUTHFAIL_PEER,      /* admin socket peer not allowed */
    KL_AUTHFAIL_NETWORK,   /* refused by the account's network rules, before authentication */
    KL_AUTHFAIL__COUNT
} kl_auth_fail;

typedef enum kl_upstream_err {
    KL_UPERR_CONNECT = 0,
    KL_UPERR_TIMEOUT,
    KL_UPERR_PROTOCOL,
    KL_UPERR_STATUS5XX,
    KL_UPERR__COUNT
} kl_upstream_err;

typedef struct kl_metrics kl_metrics;

/* Allocates zeroed metrics; NULL on failure. Freed with kl_metrics_free. */
kl_metrics *kl_metrics_new(void);
void kl_metrics_free(kl_metrics *m);

/* Hot-path recorders; thread-safe, never block. m may be NULL (no-op). */
void kl_metrics_request(kl_metrics *m, kl_route route, int status, uint64_t latency_us);
void kl_metrics_auth_failure(kl_metrics *m, kl_auth_fail kind);
void kl_metrics_upstream_error(kl_metrics *m, kl_upstream_err kind);
void kl_metrics_connection(kl_metrics *m, int opened); /* opened: 1 on accept, 0 on close */

/* Appends the Prometheus text exposition to out. 0 or a kl_err. */
int kl_metrics_render(kl_metrics *m, kl_buf *out);

#endif
