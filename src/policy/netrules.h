/* Network rules of an account (publicNetworkAccess and networkAcls.ipRules) and the
 * daemon's trusted proxies, compiled for the hot path: IPv4 and IPv6 addresses as one
 * 128-bit space (IPv4 as ::ffff:a.b.c.d), every rule a range, the ranges sorted and
 * merged, a lookup a binary search that never allocates. Compiled on the control thread
 * into the snapshot; immutable afterwards, so any thread reads it without locks. */
#ifndef KL_POLICY_NETRULES_H
#define KL_POLICY_NETRULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* An address in the 128-bit space, most significant half first (host byte order). */
typedef struct kl_netaddr {
    uint64_t hi, lo;
} kl_netaddr;

/* Every address from first to last, both included. */
typedef struct kl_netrange {
    kl_netaddr first, last;
} kl_netrange;

typedef struct kl_netrules kl_netrules;

/* Parses one rule of n bytes (not NUL-terminated): an IPv4 or IPv6 address ("a host"),
 * or a CIDR "addr/len" (len 0-32 for IPv4, 0-128 for IPv6, decimal without sign or
 * leading zeros). Bits below the prefix are ignored ("10.1.2.3/8" is 10.0.0.0/8).
 * IPv4-mapped IPv6 rules cover the IPv4 addresses they map. 0, or KL_EINVAL for
 * anything else (zone ids, spaces, more than KL_MAX_NETRULE_TEXT bytes). */
int kl_netrules_parse(const char *s, size_t n, kl_netrange *out);
/* Parses a plain address of n bytes (no prefix), as in X-Forwarded-For. 0 or KL_EINVAL. */
int kl_netaddr_parse(const char *s, size_t n, kl_netaddr *out);
/* The address of an AF_INET or AF_INET6 socket address (port ignored). 0 or KL_EINVAL. */
int kl_netaddr_from_sockaddr(const struct sockaddr *sa, kl_netaddr *out);
/* The address as text (IPv4 dotted for mapped addresses) into out (>= 46 bytes). */
void kl_netaddr_format(const kl_netaddr *a, char *out, size_t outlen);

/* Compiles n ranges (n <= KL_MAX_NETWORK_RULES; r may be NULL when n is 0) into a set:
 * sorted, overlapping and adjacent ranges merged. *out is owned by the caller
 * (kl_netrules_free). KL_EINVAL (a range with first > last), KL_ETOOBIG, KL_ENOMEM. */
int kl_netrules_compile(const kl_netrange *r, size_t n, kl_netrules **out);
/* True if a lies in any range of nr (NULL: false). No allocation, O(log n). */
bool kl_netrules_match(const kl_netrules *nr, const kl_netaddr *a);
/* The ranges left after merging (for tests and logs). */
size_t kl_netrules_ranges(const kl_netrules *nr);
/* NULL is fine. */
void kl_netrules_free(kl_netrules *nr);

#endif
