/* Who is calling, by network address: the one owner of the rule that decides it, used by
 * the data plane's network rules and by the token service's per-address throttles and
 * device-code cap. The TCP peer is the caller, unless it is one of the daemon's trusted
 * proxies (--trusted-proxy), in which case X-Forwarded-For names the caller. */
#ifndef KL_GATEWAY_CLIENTADDR_H
#define KL_GATEWAY_CLIENTADDR_H

#include <stdbool.h>
#include <stddef.h>

#include "common/limits.h"
#include "http/server.h"
#include "policy/netrules.h"

/* The caller's address: the TCP peer, or, when the peer is in trusted (NULL: none is),
 * the right-most X-Forwarded-For hop that is not in trusted (a client can write anything
 * to the left of what its first proxy appends, so nothing left of an untrusted hop
 * counts). A trusted proxy's request without X-Forwarded-For is the proxy's own.
 * False when the address cannot be known: no TCP peer (a Unix socket), two
 * X-Forwarded-For headers, an entry that is not a plain address, or more hops than
 * KL_MAX_XFF_HOPS; *out is then unspecified. Never allocates. */
bool kl_clientaddr_get(const kl_netrules *trusted, const kl_http_req *r, kl_netaddr *out);

/* The caller's address as text in out (outlen >= KL_MAX_NETRULE_TEXT + 1: an address is
 * never longer than a network rule's text): the key of every per-address rule of the
 * token service (throttles, the device-code cap) and the source the sign-in log records.
 * kl_clientaddr_get's address in kl_netaddr_format's form (IPv4 dotted, also for
 * IPv4-mapped peers). When that address cannot be known, the TCP peer's ("unix" on the
 * admin socket): everyone whose address is unknown through one proxy shares that proxy's
 * bucket, so a malformed X-Forwarded-For never buys a fresh one. True when out is the
 * known caller's address, false when it fell back to the peer's. */
bool kl_clientaddr_text(const kl_netrules *trusted, const kl_http_req *r, char *out, size_t outlen);

#endif
