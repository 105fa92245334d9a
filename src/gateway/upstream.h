/* The upstream backend: proxies a data-plane request to an OpenAI-compatible model
 * server over its own HTTP/1.1 client (bufferevents, http_parser), streaming the answer
 * through to the client as it arrives (SSE included, never re-framed). One kl_upstream per worker
 * thread holds that thread's kept-alive connections, per (scheme, host, port), and its DNS
 * resolver.
 *
 * Sent upstream: POST <url><route>, Host, Content-Type: application/json, Accept, and
 * "Authorization: Bearer <credential>" only when the deployment has a credential. No
 * client header is ever forwarded (not api-key, not Authorization, nothing else). */
#ifndef KL_GATEWAY_UPSTREAM_H
#define KL_GATEWAY_UPSTREAM_H

#include <event2/event.h>
#include <jansson.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/metrics.h"
#include "gateway/route.h"
#include "http/server.h"
#include "policy/egress.h"
#include "policy/snapshot.h"

typedef struct kl_upstream kl_upstream;

typedef struct kl_upstream_cfg {
    struct event_base *base; /* the worker's; borrowed */
    SSL_CTX *tls;            /* client context for https upstreams; borrowed, may be NULL */
    kl_metrics *metrics;     /* borrowed; may be NULL */
    const kl_egress *egress; /* borrowed, required: judges every address before connecting */
    int timeout_ms;          /* silence (no connection, no byte) before 504 */
    int connect_timeout_ms;  /* a TCP connection not made within this: 504 */
} kl_upstream_cfg;

/* Creates the per-worker upstream client. 0, KL_EINVAL or KL_ENOMEM. */
int kl_upstream_new(const kl_upstream_cfg *cfg, kl_upstream **out);
/* Frees it on its own thread: cancels exchanges still in flight (unregistering their
 * request callbacks) and closes every connection. NULL is fine. */
void kl_upstream_free(kl_upstream *u);

/* Forwards one request and answers it (now, on an early failure, or asynchronously).
 * body is the client's validated JSON object; its "model" is replaced by the
 * deployment's upstream model before it is serialised (the object is modified). Takes
 * its own reference to snap, which keeps d alive for the exchange. Errors before any
 * byte reached the client: 502 BadGateway (no connection, bad answer) or 504
 * GatewayTimeout; after that the stream just ends. */
void kl_upstream_forward(kl_upstream *u, kl_http_req *r, kl_snapshot *snap, const kl_deployment *d,
                         kl_gateway_route_kind kind, json_t *body);

/* Where a request goes: parsed from a deployment's base URL plus the operation. */
typedef struct kl_upstream_target {
    bool tls;
    char host[256];        /* for connecting: no brackets around an IPv6 literal */
    char host_header[272]; /* Host header value: host, bracketed if IPv6, ":port" if not default */
    uint16_t port;
    char *uri; /* path + operation [+ "?" query]; owned, free() it */
} kl_upstream_target;

/* Parses base_url ("http[s]://host[:port][/path][?query]", no user info) and appends
 * the operation's path ("/chat/completions", "/completions", "/embeddings"). 0,
 * KL_EINVAL (bad URL or operation) or KL_ENOMEM. */
int kl_upstream_target_parse(const char *base_url, kl_gateway_route_kind kind,
                             kl_upstream_target *out);

#endif
