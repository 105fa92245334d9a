/* The operator's egress policy: which addresses the gateway may connect to for a
 * deployment's backend. Set only from the daemon's own configuration (--egress-allow /
 * KEYLESS_EGRESS_ALLOW), never from the control plane, and immutable once the daemon
 * runs, so worker threads read it without locks.
 *
 * Always refused, whatever the allowlist says: unspecified addresses (0.0.0.0/8, ::),
 * link-local (169.254.0.0/16, fe80::/10; cloud metadata lives there), multicast
 * (224.0.0.0/4, ff00::/8), the IPv4 broadcast address, and keylessd's own listeners
 * (address and port; a listener on a wildcard address owns its port on every local
 * address). IPv4-mapped (::ffff:a.b.c.d) and NAT64 (64:ff9b::a.b.c.d) IPv6 addresses are
 * judged by the IPv4 address inside them.
 * Everything else is allowed by default (loopback and private ranges are where model
 * servers usually live). With an allowlist, an address must also fall in one of its
 * CIDRs, or the backend's host name must be one of its names. */
#ifndef KL_POLICY_EGRESS_H
#define KL_POLICY_EGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct kl_egress kl_egress;

typedef enum kl_egress_verdict {
    KL_EGRESS_ALLOWED = 0,
    KL_EGRESS_UNSPECIFIED,  /* 0.0.0.0/8, :: */
    KL_EGRESS_LINK_LOCAL,   /* 169.254.0.0/16, fe80::/10 */
    KL_EGRESS_MULTICAST,    /* 224.0.0.0/4, ff00::/8 */
    KL_EGRESS_BROADCAST,    /* 255.255.255.255 */
    KL_EGRESS_OWN_LISTENER, /* one of keylessd's own listeners */
    KL_EGRESS_NOT_ALLOWED,  /* outside the operator's allowlist */
    KL_EGRESS_UNSUPPORTED   /* not an IPv4 or IPv6 socket address */
} kl_egress_verdict;

/* A policy that refuses only the always-refused classes. 0 or KL_ENOMEM; free with
 * kl_egress_free. */
int kl_egress_new(kl_egress **out);
void kl_egress_free(kl_egress *e);

/* Narrows e to an allowlist: entries separated by commas and/or spaces, each an IPv4 or
 * IPv6 CIDR ("10.0.0.0/8", "fd00::/8"), a bare address (a /32 or /128) or a host name
 * (matched case-insensitively and exactly against the backend URL's host). An empty or
 * blank list leaves e unchanged (default mode). Returns 0, or KL_EINVAL with a one-line
 * reason in err (naming the bad entry), or KL_ETOOBIG beyond KL_MAX_EGRESS_RULES entries;
 * e is unchanged on error. Call before the daemon starts serving. */
int kl_egress_allow(kl_egress *e, const char *list, char *err, size_t errlen);

/* Records one of keylessd's own listeners (address and port, AF_INET or AF_INET6). A
 * wildcard address (0.0.0.0 or ::) means that port on every local address: loopback and
 * whatever kl_egress_add_local recorded. 0, KL_EINVAL or KL_ETOOBIG. */
int kl_egress_add_listener(kl_egress *e, const struct sockaddr *sa);
/* Records an address of this host (the port is ignored), for wildcard listeners. 0,
 * KL_EINVAL or KL_ETOOBIG (beyond KL_MAX_EGRESS_LOCAL_ADDRS). */
int kl_egress_add_local(kl_egress *e, const struct sockaddr *sa);
/* Records every address of this host's interfaces (getifaddrs) with kl_egress_add_local.
 * Addresses added to the host later are not known (loopback always is). 0 or KL_EIO;
 * addresses beyond the limit are skipped. */
int kl_egress_add_interfaces(kl_egress *e);

/* True once kl_egress_allow installed a non-empty allowlist. */
bool kl_egress_has_allowlist(const kl_egress *e);

/* Judges one address about to be connected to (port included). host is the backend
 * URL's host as written (a name or a literal, no brackets), for the allowlist's names;
 * may be NULL. Pure: no I/O, no allocation. */
kl_egress_verdict kl_egress_check(const kl_egress *e, const char *host, const struct sockaddr *sa);

/* Judges a backend at write time from its host (no brackets) and port: an IP literal is
 * judged like kl_egress_check (an IPv6 zone, "%eth0", is ignored); a host name cannot be
 * judged before it is resolved and is KL_EGRESS_ALLOWED here (the connect-time check
 * decides). */
kl_egress_verdict kl_egress_check_literal(const kl_egress *e, const char *host, uint16_t port);

/* A short English phrase for a refusal ("a link-local address", ...), for error
 * messages and logs; static storage. */
const char *kl_egress_reason(kl_egress_verdict v);

#endif
