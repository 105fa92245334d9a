/* The operator's egress policy (see egress.h): parsing the allowlist and judging one
 * socket address. Addresses are compared in one normalised form, so that an IPv4
 * address cannot slip past the IPv4 rules by being written as an IPv6 one. */
#include "policy/egress.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/util.h"

/* An address in normalised form: IPv4 (also when it came inside an IPv4-mapped or NAT64
 * IPv6 address) keeps its 4 bytes in b[0..3]; IPv6 uses all 16. */
typedef struct ipaddr {
    int family; /* AF_INET or AF_INET6 */
    uint8_t b[16];
} ipaddr;

typedef struct cidr {
    ipaddr net;    /* bits past the prefix are zero */
    unsigned bits; /* prefix length: 0..32 for IPv4, 0..128 for IPv6 */
} cidr;

typedef struct own_listener {
    ipaddr addr;
    bool wildcard; /* bound to 0.0.0.0 or ::: the port on every local address */
    uint16_t port; /* host byte order */
} own_listener;

struct kl_egress {
    cidr allow[KL_MAX_EGRESS_RULES];
    size_t n_allow;
    char names[KL_MAX_EGRESS_RULES][KL_MAX_HOSTNAME + 1]; /* lower case */
    size_t n_names;
    own_listener listeners[KL_MAX_EGRESS_LISTENERS];
    size_t n_listeners;
    ipaddr local[KL_MAX_EGRESS_LOCAL_ADDRS];
    size_t n_local;
};

static const uint8_t v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
/* RFC 6052's well-known NAT64 prefix 64:ff9b::/96: a NAT64 gateway forwards these to the
 * IPv4 address in the last four bytes. */
static const uint8_t nat64_prefix[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};

/* IPv6 bytes to the normalised form (IPv4 inside mapped and NAT64 addresses). */
static void from_v6(const uint8_t b[16], ipaddr *out)
{
    memset(out, 0, sizeof(*out));
    if (!memcmp(b, v4mapped_prefix, 12) || !memcmp(b, nat64_prefix, 12)) {
        out->family = AF_INET;
        memcpy(out->b, b + 12, 4);
        return;
    }
    out->family = AF_INET6;
    memcpy(out->b, b, 16);
}

/* A socket address to the normalised form and its port. KL_EINVAL for other families. */
static int from_sockaddr(const struct sockaddr *sa, ipaddr *out, uint16_t *port)
{
    memset(out, 0, sizeof(*out));
    if (!sa)
        return KL_EINVAL;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;
        out->family = AF_INET;
        memcpy(out->b, &s4->sin_addr, 4);
        *port = ntohs(s4->sin_port);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;
        from_v6(s6->sin6_addr.s6_addr, out);
        *port = ntohs(s6->sin6_port);
        return 0;
    }
    return KL_EINVAL;
}

static bool all_zero(const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

/* The classes refused whatever the operator allows. */
static kl_egress_verdict always_refused(const ipaddr *a)
{
    const uint8_t *b = a->b;
    if (a->family == AF_INET) {
        /* 0.0.0.0/8 is "this network"; a connect to 0.0.0.0 reaches this host. */
        if (b[0] == 0)
            return KL_EGRESS_UNSPECIFIED;
        if (b[0] == 169 && b[1] == 254)
            return KL_EGRESS_LINK_LOCAL;
        if ((b[0] & 0xf0) == 224)
            return KL_EGRESS_MULTICAST;
        if (b[0] == 255 && b[1] == 255 && b[2] == 255 && b[3] == 255)
            return KL_EGRESS_BROADCAST;
        return KL_EGRESS_ALLOWED;
    }
    if (all_zero(b, 16))
        return KL_EGRESS_UNSPECIFIED;
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
        return KL_EGRESS_LINK_LOCAL;
    if (b[0] == 0xff)
        return KL_EGRESS_MULTICAST;
    return KL_EGRESS_ALLOWED;
}

static bool same_addr(const ipaddr *x, const ipaddr *y)
{
    return x->family == y->family && !memcmp(x->b, y->b, x->family == AF_INET ? 4 : 16);
}

static bool is_loopback(const ipaddr *a)
{
    if (a->family == AF_INET)
        return a->b[0] == 127;
    return all_zero(a->b, 15) && a->b[15] == 1;
}

static bool is_wildcard(const ipaddr *a)
{
    return all_zero(a->b, a->family == AF_INET ? 4 : 16);
}

static bool in_cidr(const cidr *c, const ipaddr *a)
{
    if (c->net.family != a->family)
        return false;
    unsigned full = c->bits / 8, rest = c->bits % 8;
    if (memcmp(c->net.b, a->b, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a->b[full] & mask) == c->net.b[full];
}

static bool own_listener_addr(const kl_egress *e, const ipaddr *a, uint16_t port)
{
    for (size_t i = 0; i < e->n_listeners; i++) {
        const own_listener *l = &e->listeners[i];
        if (l->port != port)
            continue;
        if (!l->wildcard) {
            if (same_addr(&l->addr, a))
                return true;
            continue;
        }
        /* A wildcard listener (either family: an IPv6 one may take IPv4 too) answers on
         * every address of this host. */
        if (is_loopback(a))
            return true;
        for (size_t j = 0; j < e->n_local; j++)
            if (same_addr(&e->local[j], a))
                return true;
    }
    return false;
}

static bool name_allowed(const kl_egress *e, const char *host)
{
    if (!host)
        return false;
    size_t n = strlen(host);
    if (n > 0 && host[n - 1] == '.') /* "example.com." is "example.com" */
        n--;
    if (n == 0 || n > KL_MAX_HOSTNAME)
        return false;
    for (size_t i = 0; i < e->n_names; i++)
        if (kl_str_ieqn(e->names[i], strlen(e->names[i]), host, n))
            return true;
    return false;
}

kl_egress_verdict kl_egress_check(const kl_egress *e, const char *host, const struct sockaddr *sa)
{
    ipaddr a;
    uint16_t port = 0;
    if (!e || from_sockaddr(sa, &a, &port) != 0)
        return KL_EGRESS_UNSUPPORTED;
    kl_egress_verdict v = always_refused(&a);
    if (v != KL_EGRESS_ALLOWED)
        return v;
    if (own_listener_addr(e, &a, port))
        return KL_EGRESS_OWN_LISTENER;
    if (!kl_egress_has_allowlist(e))
        return KL_EGRESS_ALLOWED;
    if (name_allowed(e, host))
        return KL_EGRESS_ALLOWED;
    for (size_t i = 0; i < e->n_allow; i++)
        if (in_cidr(&e->allow[i], &a))
            return KL_EGRESS_ALLOWED;
    return KL_EGRESS_NOT_ALLOWED;
}

kl_egress_verdict kl_egress_check_literal(const kl_egress *e, const char *host, uint16_t port)
{
    struct sockaddr_in s4;
    struct sockaddr_in6 s6;
    char addr[INET6_ADDRSTRLEN + 1];
    memset(&s4, 0, sizeof(s4));
    memset(&s6, 0, sizeof(s6));
    /* An IPv6 literal with a zone ("fe80::1%eth0", "%25" in a URL) is judged by its
     * address. */
    const char *zone = host && strchr(host, ':') ? strchr(host, '%') : NULL;
    if (zone && (size_t)(zone - host) < sizeof(addr)) {
        memcpy(addr, host, (size_t)(zone - host));
        addr[zone - host] = '\0';
        if (inet_pton(AF_INET6, addr, &s6.sin6_addr) == 1) {
            s6.sin6_family = AF_INET6;
            s6.sin6_port = htons(port);
            return kl_egress_check(e, host, (const struct sockaddr *)&s6);
        }
    }
    if (host && inet_pton(AF_INET, host, &s4.sin_addr) == 1) {
        s4.sin_family = AF_INET;
        s4.sin_port = htons(port);
        return kl_egress_check(e, host, (const struct sockaddr *)&s4);
    }
    if (host && inet_pton(AF_INET6, host, &s6.sin6_addr) == 1) {
        s6.sin6_family = AF_INET6;
        s6.sin6_port = htons(port);
        return kl_egress_check(e, host, (const struct sockaddr *)&s6);
    }
    return KL_EGRESS_ALLOWED;
}

const char *kl_egress_reason(kl_egress_verdict v)
{
    switch (v) {
    case KL_EGRESS_ALLOWED: return "allowed";
    case KL_EGRESS_UNSPECIFIED: return "an unspecified address";
    case KL_EGRESS_LINK_LOCAL: return "a link-local address";
    case KL_EGRESS_MULTICAST: return "a multicast address";
    case KL_EGRESS_BROADCAST: return "a broadcast address";
    case KL_EGRESS_OWN_LISTENER: return "one of this service's own listeners";
    case KL_EGRESS_NOT_ALLOWED: return "an address outside the egress allowlist";
    case KL_EGRESS_UNSUPPORTED: break;
    }
    return "an unsupported address";
}

/* ------------------------------------------------------------------ set-up */

int kl_egress_new(kl_egress **out)
{
    *out = calloc(1, sizeof(**out));
    return *out ? 0 : KL_ENOMEM;
}

void kl_egress_free(kl_egress *e)
{
    free(e);
}

bool kl_egress_has_allowlist(const kl_egress *e)
{
    return e && (e->n_allow > 0 || e->n_names > 0);
}

int kl_egress_add_listener(kl_egress *e, const struct sockaddr *sa)
{
    own_listener l;
    memset(&l, 0, sizeof(l));
    if (from_sockaddr(sa, &l.addr, &l.port) != 0)
        return KL_EINVAL;
    if (e->n_listeners >= KL_MAX_EGRESS_LISTENERS)
        return KL_ETOOBIG;
    l.wildcard = is_wildcard(&l.addr);
    e->listeners[e->n_listeners++] = l;
    return 0;
}

int kl_egress_add_local(kl_egress *e, const struct sockaddr *sa)
{
    ipaddr a;
    uint16_t port;
    if (from_sockaddr(sa, &a, &port) != 0)
        return KL_EINVAL;
    for (size_t i = 0; i < e->n_local; i++)
        if (same_addr(&e->local[i], &a))
            return 0;
    if (e->n_local >= KL_MAX_EGRESS_LOCAL_ADDRS)
        return KL_ETOOBIG;
    e->local[e->n_local++] = a;
    return 0;
}

int kl_egress_add_interfaces(kl_egress *e)
{
    struct ifaddrs *list = NULL;
    if (getifaddrs(&list) != 0)
        return KL_EIO;
    for (struct ifaddrs *i = list; i; i = i->ifa_next)
        if (i->ifa_addr &&
            (i->ifa_addr->sa_family == AF_INET || i->ifa_addr->sa_family == AF_INET6))
            (void)kl_egress_add_local(e, i->ifa_addr); /* past the limit: skipped */
    freeifaddrs(list);
    return 0;
}

/* ------------------------------------------------------------------ the allowlist */

/* A host name as DNS spells it: labels of letters, digits, '-' and '_' (which some
 * internal names carry), separated by single dots; one trailing dot allowed. */
static bool valid_hostname(const char *s, size_t n)
{
    if (n > 0 && s[n - 1] == '.')
        n--;
    if (n == 0 || n > KL_MAX_HOSTNAME || s[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || (c == '.' && s[i - 1] != '.');
        if (!ok)
            return false;
    }
    return true;
}

/* Parses "ADDR" or "ADDR/BITS" into c. False if it is neither. */
static bool parse_cidr(const char *tok, cidr *c, bool *host_bits)
{
    char addr[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(tok, '/');
    size_t al = slash ? (size_t)(slash - tok) : strlen(tok);
    *host_bits = false;
    if (al == 0 || al >= sizeof(addr))
        return false;
    memcpy(addr, tok, al);
    addr[al] = '\0';
    memset(c, 0, sizeof(*c));
    uint8_t raw[16];
    unsigned max;
    if (inet_pton(AF_INET, addr, raw) == 1) {
        c->net.family = AF_INET;
        memcpy(c->net.b, raw, 4);
        max = 32;
    } else if (inet_pton(AF_INET6, addr, raw) == 1) {
        c->net.family = AF_INET6;
        memcpy(c->net.b, raw, 16);
        max = 128;
    } else {
        return false;
    }
    unsigned bits = max;
    if (slash) {
        const char *p = slash + 1;
        if (!*p || strlen(p) > 3)
            return false;
        bits = 0;
        for (; *p; p++) {
            if (*p < '0' || *p > '9')
                return false;
            bits = bits * 10 + (unsigned)(*p - '0');
        }
        if (bits > max)
            return false;
    }
    /* ::ffff:a.b.c.d/104 is the IPv4 network a.b.c.d/8: judge it as IPv4, like the
     * addresses it has to match. */
    if (c->net.family == AF_INET6 && bits >= 96 &&
        (!memcmp(raw, v4mapped_prefix, 12) || !memcmp(raw, nat64_prefix, 12))) {
        c->net.family = AF_INET;
        memmove(c->net.b, raw + 12, 4);
        memset(c->net.b + 4, 0, 12);
        bits -= 96;
    }
    c->bits = bits;
    size_t len = c->net.family == AF_INET ? 4 : 16;
    for (size_t i = 0; i < len; i++) {
        unsigned keep = bits >= 8 * (i + 1) ? 8 : (bits > 8 * i ? bits - 8 * i : 0);
        uint8_t mask = keep == 0 ? 0 : (uint8_t)(0xff << (8 - keep));
        if (c->net.b[i] & (uint8_t)~mask)
            *host_bits = true;
    }
    return true;
}

int kl_egress_allow(kl_egress *e, const char *list, char *err, size_t errlen)
{
    cidr allow[KL_MAX_EGRESS_RULES];
    char names[KL_MAX_EGRESS_RULES][KL_MAX_HOSTNAME + 1];
    size_t n_allow = 0, n_names = 0;
    const char *p = list ? list : "";
    static const char seps[] = ", \t";
    while (*p) {
        p += strspn(p, seps);
        size_t n = strcspn(p, seps);
        if (n == 0)
            break;
        char tok[KL_MAX_HOSTNAME + 2];
        if (n >= sizeof(tok)) {
            snprintf(err, errlen, "egress allowlist entry \"%.40s...\" is too long", p);
            return KL_EINVAL;
        }
        memcpy(tok, p, n);
        tok[n] = '\0';
        p += n;
        if (n_allow + n_names >= KL_MAX_EGRESS_RULES) {
            snprintf(err, errlen, "egress allowlist has more than %d entries", KL_MAX_EGRESS_RULES);
            return KL_ETOOBIG;
        }
        bool host_bits = false;
        if (parse_cidr(tok, &allow[n_allow], &host_bits)) {
            if (host_bits) {
                snprintf(err, errlen,
                         "egress allowlist entry \"%s\" has bits set past its prefix length", tok);
                return KL_EINVAL;
            }
            n_allow++;
            continue;
        }
        if (strchr(tok, '/') || strchr(tok, ':') || !valid_hostname(tok, n)) {
            snprintf(err, errlen,
                     "egress allowlist entry \"%s\" is neither an address, a CIDR nor a host "
                     "name",
                     tok);
            return KL_EINVAL;
        }
        if (tok[n - 1] == '.')
            tok[--n] = '\0';
        kl_ascii_lower_copy(names[n_names], tok, n);
        n_names++;
    }
    if (n_allow + n_names == 0)
        return 0;
    memcpy(e->allow, allow, n_allow * sizeof(allow[0]));
    e->n_allow = n_allow;
    memcpy(e->names, names, n_names * sizeof(names[0]));
    e->n_names = n_names;
    return 0;
}
