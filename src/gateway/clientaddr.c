/* The caller's address behind the daemon's trusted proxies (see clientaddr.h), parsed
 * from X-Forwarded-For right to left without allocating. */
#include "gateway/clientaddr.h"

#include <string.h>

bool kl_clientaddr_get(const kl_netrules *trusted, const kl_http_req *r, kl_netaddr *out)
{
    const struct sockaddr *peer = kl_http_req_peer(r);
    if (!peer || kl_netaddr_from_sockaddr(peer, out) != 0)
        return false;
    if (!trusted || !kl_netrules_match(trusted, out))
        return true;
    int nx = kl_http_req_header_count(r, "x-forwarded-for");
    if (nx == 0)
        return true; /* the proxy's own request */
    const char *x = kl_http_req_header(r, "x-forwarded-for");
    if (nx > 1 || !x)
        return false;
    size_t end = strlen(x);
    for (int hops = 0; hops < KL_MAX_XFF_HOPS; hops++) {
        size_t start = end;
        while (start > 0 && x[start - 1] != ',')
            start--;
        size_t a = start, b = end;
        while (a < b && (x[a] == ' ' || x[a] == '\t'))
            a++;
        while (b > a && (x[b - 1] == ' ' || x[b - 1] == '\t'))
            b--;
        if (kl_netaddr_parse(x + a, b - a, out) != 0)
            return false;
        if (!kl_netrules_match(trusted, out) || start == 0)
            return true; /* the first untrusted hop, or the left-most of trusted ones */
        end = start - 1;
    }
    return false;
}

bool kl_clientaddr_text(const kl_netrules *trusted, const kl_http_req *r, char *out, size_t outlen)
{
    kl_netaddr a;
    if (kl_clientaddr_get(trusted, r, &a)) {
        kl_netaddr_format(&a, out, outlen);
        return true;
    }
    /* Unknown behind a trusted proxy (or no TCP peer at all): the throttles key on the
     * peer, exactly as they do without --trusted-proxy. The alternatives are worse for a
     * security product: a bucket per malformed header would let a caller who can shape
     * the header (a misbehaving proxy, a client one hop behind a trusted one) pick a new
     * bucket per request, and refusing outright would turn one proxy's bug into an
     * outage. Sharing the proxy's bucket fails closed: such callers can only slow each
     * other down, never escape the throttle. */
    const struct sockaddr *peer = kl_http_req_peer(r);
    if (peer && kl_netaddr_from_sockaddr(peer, &a) == 0)
        kl_netaddr_format(&a, out, outlen);
    else
        kl_http_req_peer_addr(r, out, outlen);
    return false;
}
