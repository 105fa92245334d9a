/* OpenID Connect discovery documents of the token service: the tenant's (v1 and v2.0,
 * as Entra publishes them, plus RFC 8414's revocation_endpoint) and the ADFS-style one
 * (MS-OIDCE) of the default tenant. Pure functions of the public base URL and the
 * tenant id; the caller has routed and checked the tenant. */
#ifndef KL_GATEWAY_DISCOVERY_H
#define KL_GATEWAY_DISCOVERY_H

#include <stdbool.h>

#include "http/server.h"

/* Answers 200 with the tenant tid's document under base ("https://host:port", no
 * trailing '/'): the v2.0 one when v2, else v1. */
void kl_discovery_tenant(const char *base, kl_http_req *r, const char *tid, bool v2);

/* Answers 200 with the ADFS-style document of tenant tid, every endpoint under
 * base/segment (segment is "adfs"). */
void kl_discovery_adfs(const char *base, const char *segment, kl_http_req *r, const char *tid);

#endif
