/* Network rules compiled into sorted, merged 128-bit ranges (see netrules.h). Parsing
 * uses inet_pton, which takes only the canonical dotted quad for IPv4 (no octal, hex
 * or shortened forms a rule's author would not mean) and no zone ids for IPv6. */
#include "policy/netrules.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"

struct kl_netrules {
    size_t n;
    /* Range i is first[i] .. last[i]: sorted by first, disjoint and not adjacent. The
     * starts are an array of their own so the search touches only them (16 bytes a
     * range) until the one range it ends on. */
    kl_netaddr *first;
    kl_netaddr *last;
    kl_netrange r[]; /* the merged ranges, built here, then split into first and last */
};

static int cmp_addr(const kl_netaddr *a, const kl_netaddr *b)
{
    if (a->hi != b->hi)
        return a->hi < b->hi ? -1 : 1;
    if (a->lo != b->lo)
        return a->lo < b->lo ? -1 : 1;
    return 0;
}

static kl_netaddr from_bytes(const unsigned char b[16])
{
    kl_netaddr a = {0, 0};
    for (int i = 0; i < 8; i++) {
        a.hi = (a.hi << 8) | b[i];
        a.lo = (a.lo << 8) | b[8 + i];
    }
    return a;
}

static kl_netaddr mapped_v4(const unsigned char b[4])
{
    kl_netaddr a = {0, 0xffff00000000ULL};
    a.lo |= ((uint64_t)b[0] << 24) | ((uint64_t)b[1] << 16) | ((uint64_t)b[2] << 8) | b[3];
    return a;
}

/* Parses the address text in buf (NUL-terminated); *bits is 32 for IPv4, 128 for IPv6. */
static int parse_host(const char *buf, kl_netaddr *out, int *bits)
{
    unsigned char b[16];
    if (inet_pton(AF_INET, buf, b) == 1) {
        *out = mapped_v4(b);
        *bits = 32;
        return 0;
    }
    if (inet_pton(AF_INET6, buf, b) == 1) {
        *out = from_bytes(b);
        *bits = 128;
        return 0;
    }
    return KL_EINVAL;
}

/* Copies n bytes into a NUL-terminated buffer, refusing what cannot be an address. */
static int copy_text(const char *s, size_t n, char *buf, size_t buflen)
{
    if (!s || n == 0 || n >= buflen || n > KL_MAX_NETRULE_TEXT)
        return KL_EINVAL;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return strlen(buf) == n ? 0 : KL_EINVAL; /* no NUL inside */
}

int kl_netaddr_parse(const char *s, size_t n, kl_netaddr *out)
{
    char buf[KL_MAX_NETRULE_TEXT + 1];
    int bits;
    if (copy_text(s, n, buf, sizeof(buf)))
        return KL_EINVAL;
    return parse_host(buf, out, &bits);
}

/* The mask of the low (128 - prefix) bits as a range end. */
static void apply_prefix(kl_netaddr a, int prefix, kl_netrange *out)
{
    kl_netaddr host = {0, 0}; /* the bits below the prefix, all ones */
    if (prefix < 64) {
        host.hi = prefix == 0 ? UINT64_MAX : (UINT64_MAX >> prefix);
        host.lo = UINT64_MAX;
    } else if (prefix < 128) {
        host.lo = UINT64_MAX >> (prefix - 64);
    }
    out->first.hi = a.hi & ~host.hi;
    out->first.lo = a.lo & ~host.lo;
    out->last.hi = a.hi | host.hi;
    out->last.lo = a.lo | host.lo;
}

int kl_netrules_parse(const char *s, size_t n, kl_netrange *out)
{
    char buf[KL_MAX_NETRULE_TEXT + 1];
    if (!out || copy_text(s, n, buf, sizeof(buf)))
        return KL_EINVAL;
    char *slash = strchr(buf, '/');
    int prefix = -1;
    if (slash) {
        const char *p = slash + 1;
        size_t len = strlen(p);
        /* 1-3 digits, no sign, no leading zero (a "/08" is a typo, not a prefix). */
        if (len == 0 || len > 3 || (len > 1 && p[0] == '0'))
            return KL_EINVAL;
        prefix = 0;
        for (size_t i = 0; i < len; i++) {
            if (p[i] < '0' || p[i] > '9')
                return KL_EINVAL;
            prefix = prefix * 10 + (p[i] - '0');
        }
        *slash = '\0';
    }
    kl_netaddr a;
    int bits;
    if (parse_host(buf, &a, &bits))
        return KL_EINVAL;
    if (prefix < 0)
        prefix = bits;
    if (prefix > bits)
        return KL_EINVAL;
    apply_prefix(a, prefix + (128 - bits), out);
    return 0;
}

int kl_netaddr_from_sockaddr(const struct sockaddr *sa, kl_netaddr *out)
{
    if (!sa || !out)
        return KL_EINVAL;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;
        *out = mapped_v4((const unsigned char *)&s4->sin_addr);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;
        *out = from_bytes(s6->sin6_addr.s6_addr);
        return 0;
    }
    return KL_EINVAL;
}

void kl_netaddr_format(const kl_netaddr *a, char *out, size_t outlen)
{
    unsigned char b[16];
    for (int i = 0; i < 8; i++) {
        b[i] = (unsigned char)(a->hi >> (56 - 8 * i));
        b[8 + i] = (unsigned char)(a->lo >> (56 - 8 * i));
    }
    if (outlen == 0)
        return;
    out[0] = '\0';
    if (a->hi == 0 && (a->lo >> 32) == 0xffff)
        inet_ntop(AF_INET, b + 12, out, (socklen_t)outlen);
    else
        inet_ntop(AF_INET6, b, out, (socklen_t)outlen);
}

static int cmp_range(const void *x, const void *y)
{
    return cmp_addr(&((const kl_netrange *)x)->first, &((const kl_netrange *)y)->first);
}

/* a + 1, saturating at the top of the space (which nothing can follow). */
static bool next_addr(kl_netaddr a, kl_netaddr *out)
{
    if (a.hi == UINT64_MAX && a.lo == UINT64_MAX)
        return false;
    out->lo = a.lo + 1;
    out->hi = a.hi + (out->lo == 0);
    return true;
}

int kl_netrules_compile(const kl_netrange *r, size_t n, kl_netrules **out)
{
    if (!out || (n && !r))
        return KL_EINVAL;
    *out = NULL;
    if (n > KL_MAX_NETWORK_RULES)
        return KL_ETOOBIG;
    for (size_t i = 0; i < n; i++)
        if (cmp_addr(&r[i].first, &r[i].last) > 0)
            return KL_EINVAL;
    size_t cap = n ? n : 1;
    kl_netrules *nr =
        malloc(sizeof(*nr) + cap * sizeof(kl_netrange) + 2 * cap * sizeof(kl_netaddr));
    if (!nr)
        return KL_ENOMEM;
    nr->first = (kl_netaddr *)(void *)(nr->r + cap);
    nr->last = nr->first + cap;
    if (n)
        memcpy(nr->r, r, n * sizeof(*r));
    qsort(nr->r, n, sizeof(kl_netrange), cmp_range);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        kl_netaddr after;
        /* Merge into the previous range when it overlaps or touches it. */
        if (k > 0 &&
            (!next_addr(nr->r[k - 1].last, &after) || cmp_addr(&nr->r[i].first, &after) <= 0)) {
            if (cmp_addr(&nr->r[i].last, &nr->r[k - 1].last) > 0)
                nr->r[k - 1].last = nr->r[i].last;
            continue;
        }
        nr->r[k++] = nr->r[i];
    }
    nr->n = k;
    for (size_t i = 0; i < k; i++) {
        nr->first[i] = nr->r[i].first;
        nr->last[i] = nr->r[i].last;
    }
    *out = nr;
    return 0;
}

bool kl_netrules_match(const kl_netrules *nr, const kl_netaddr *a)
{
    if (!nr || !a || nr->n == 0)
        return false;
    /* The last range starting at or below a is the only one that can hold it. A
     * branch-free search: the halving never depends on the comparison, only the base
     * does, so the compiler turns it into conditional moves. */
    const kl_netaddr *base = nr->first;
    size_t len = nr->n;
    if (cmp_addr(&base[0], a) > 0)
        return false;
    while (len > 1) {
        size_t half = len / 2;
        const kl_netaddr *m = base + half;
        bool le = m->hi < a->hi || (m->hi == a->hi && m->lo <= a->lo);
        base = le ? m : base;
        len -= half;
    }
    return cmp_addr(a, &nr->last[base - nr->first]) <= 0;
}

size_t kl_netrules_ranges(const kl_netrules *nr)
{
    return nr ? nr->n : 0;
}

void kl_netrules_free(kl_netrules *nr)
{
    free(nr);
}
