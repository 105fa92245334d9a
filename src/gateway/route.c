/* Data-plane URL parsing: the classic Azure OpenAI paths, the v1 paths (flat, with the
 * deployment taken from the body, and with /deployments/{d}), and the two ways to name
 * the account (path prefix or Host). */
#include "gateway/route.h"

#include <string.h>

#include "common/err.h"
#include "common/util.h"

#define MAX_SEGMENTS 12

typedef struct seg {
    const char *p;
    size_t n;
} seg;

static bool seg_is(const seg *s, const char *lit)
{
    return kl_str_ieqn(s->p, s->n, lit, strlen(lit));
}

/* Splits "/a/b/c" into segments. Returns the count, or MAX_SEGMENTS + 1 if there are
 * more (the caller treats that as an unknown operation). */
static size_t split_path(const char *path, seg *out)
{
    size_t n = 0;
    const char *p = path;
    if (!p || *p != '/')
        return 0;
    while (*p == '/') {
        p++;
        if (*p == '\0')
            break;
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (n == MAX_SEGMENTS)
            return MAX_SEGMENTS + 1;
        out[n].p = p;
        out[n].n = len;
        n++;
        p += len;
    }
    return n;
}

bool kl_gateway_host_account(const char *host, const char *account_domain, const char **name,
                             size_t *len)
{
    if (!host || !account_domain || !*host || host[0] == '[')
        return false;
    size_t hl = strlen(host);
    /* Drop a port: everything after the last ':' when it is all digits. */
    const char *colon = strrchr(host, ':');
    if (colon) {
        const char *d = colon + 1;
        if (*d == '\0')
            return false;
        for (; *d; d++)
            if (*d < '0' || *d > '9')
                return false;
        hl = (size_t)(colon - host);
    }
    if (hl && host[hl - 1] == '.')
        hl--;
    const char *dom = account_domain;
    while (*dom == '.')
        dom++;
    size_t dl = strlen(dom);
    if (dl && dom[dl - 1] == '.')
        dl--;
    if (dl == 0 || hl < dl + 2)
        return false;
    if (host[hl - dl - 1] != '.' || !kl_str_ieqn(host + hl - dl, dl, dom, dl))
        return false;
    size_t nl = hl - dl - 1;
    if (memchr(host, '.', nl))
        return false; /* exactly one label in front of the domain */
    *name = host;
    *len = nl;
    return true;
}

/* The value of the first non-empty api-version query parameter (as sent, not decoded:
 * versions need no escaping), or NULL. */
static const char *query_api_version(const char *q, size_t *len)
{
    static const char key[] = "api-version=";
    const size_t kl = sizeof(key) - 1;
    if (!q)
        return NULL;
    const char *p = q;
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t n = amp ? (size_t)(amp - p) : strlen(p);
        if (n > kl && memcmp(p, key, kl) == 0) {
            *len = n - kl;
            return p + kl;
        }
        if (!amp)
            break;
        p = amp + 1;
    }
    return NULL;
}

/* Azure OpenAI's data-plane versions, from the inference specs (stable/ and preview/
 * in azure-rest-api-specs, specification/cognitiveservices/data-plane/AzureOpenAI). The
 * routes keyless serves have the same shape in all of them. */
static const char *const DATA_PLANE_VERSIONS[] = {
    "2022-12-01",         "2023-05-15",         "2024-02-01",         "2024-06-01",
    "2024-10-21",         "2022-03-01-preview", "2022-06-01-preview", "2023-03-15-preview",
    "2023-06-01-preview", "2023-07-01-preview", "2023-08-01-preview", "2023-09-01-preview",
    "2023-10-01-preview", "2023-11-01-preview", "2023-12-01-preview", "2024-02-15-preview",
    "2024-03-01-preview", "2024-04-01-preview", "2024-05-01-preview", "2024-07-01-preview",
    "2024-08-01-preview", "2024-09-01-preview", "2024-10-01-preview", "2024-12-01-preview",
    "2025-01-01-preview", "2025-02-01-preview", "2025-03-01-preview", "2025-04-01-preview",
};

bool kl_gateway_api_version_supported(const char *v, size_t n, bool v1)
{
    if (!v)
        return false;
    if (v1)
        return n == strlen("preview") && memcmp(v, "preview", n) == 0;
    for (size_t i = 0; i < sizeof(DATA_PLANE_VERSIONS) / sizeof(DATA_PLANE_VERSIONS[0]); i++)
        if (strlen(DATA_PLANE_VERSIONS[i]) == n && memcmp(DATA_PLANE_VERSIONS[i], v, n) == 0)
            return true;
    return false;
}

/* The operation named by the segments after "deployments/{d}" (or after "v1"). */
static kl_gateway_route_kind op_kind(const seg *s, size_t n)
{
    if (n == 2 && seg_is(&s[0], "chat") && seg_is(&s[1], "completions"))
        return KL_GW_ROUTE_CHAT;
    if (n == 1 && seg_is(&s[0], "completions"))
        return KL_GW_ROUTE_COMPLETIONS;
    if (n == 1 && seg_is(&s[0], "embeddings"))
        return KL_GW_ROUTE_EMBEDDINGS;
    return KL_GW_ROUTE_NONE;
}

/* Index of the "openai" segment if the path is a data-plane path, else -1; sets the
 * account slice for the "/accounts/{name}/openai" form. */
static int openai_index(const seg *s, size_t n, const char **acct, size_t *acct_len)
{
    if (n >= 1 && seg_is(&s[0], "openai"))
        return 0;
    if (n >= 3 && n <= MAX_SEGMENTS && seg_is(&s[0], "accounts") && s[1].n > 0 &&
        seg_is(&s[2], "openai")) {
        *acct = s[1].p;
        *acct_len = s[1].n;
        return 2;
    }
    return -1;
}

bool kl_gateway_route_matches(const char *host, const char *path, const char *account_domain)
{
    seg s[MAX_SEGMENTS];
    size_t n = split_path(path, s);
    const char *a = NULL, *h = NULL;
    size_t al = 0, hl = 0;
    if (n <= MAX_SEGMENTS && openai_index(s, n, &a, &al) >= 0)
        return true;
    /* Longer paths still belong to the data plane when they start like one. */
    if (n > MAX_SEGMENTS &&
        (seg_is(&s[0], "openai") || (seg_is(&s[0], "accounts") && seg_is(&s[2], "openai"))))
        return true;
    return kl_gateway_host_account(host, account_domain, &h, &hl);
}

int kl_gateway_route_parse(const char *host, const char *path, const char *query,
                           const char *account_domain, kl_gateway_route *out)
{
    seg s[MAX_SEGMENTS];
    memset(out, 0, sizeof(*out));
    size_t n = split_path(path, s);
    const char *pa = NULL, *ha = NULL;
    size_t pal = 0, hal = 0;
    bool by_host = kl_gateway_host_account(host, account_domain, &ha, &hal);
    int oi = n <= MAX_SEGMENTS ? openai_index(s, n, &pa, &pal) : -1;

    if (oi < 0 && n > MAX_SEGMENTS &&
        (seg_is(&s[0], "openai") || (seg_is(&s[0], "accounts") && seg_is(&s[2], "openai"))))
        oi = -2; /* data plane, but too long for any operation */
    if (oi == -1 && !by_host)
        return KL_ENOTFOUND;

    if (pal) {
        out->account_src = KL_GW_ACCOUNT_PATH;
        out->account = pa;
        out->account_len = pal;
    } else if (by_host) {
        out->account_src = KL_GW_ACCOUNT_HOST;
        out->account = ha;
        out->account_len = hal;
    }
    size_t vlen = 0;
    const char *version = query_api_version(query, &vlen);
    out->api_version = version && vlen > 0;
    if (oi < 0)
        return 0; /* kind NONE */

    const seg *r = s + oi + 1;
    size_t rn = n - (size_t)oi - 1;
    kl_gateway_route_kind k = KL_GW_ROUTE_NONE;

    if (rn >= 1 && seg_is(&r[0], "deployments")) {
        out->api_version_needed = true;
        if (rn == 1) {
            k = KL_GW_ROUTE_DEPLOYMENTS;
        } else if (r[1].n > 0) {
            k = op_kind(r + 2, rn - 2);
            out->deployment = r[1].p;
            out->deployment_len = r[1].n;
        }
    } else if (rn >= 1 && seg_is(&r[0], "v1")) {
        out->v1 = true;
        if (rn >= 3 && seg_is(&r[1], "deployments") && r[2].n > 0) {
            k = op_kind(r + 3, rn - 3);
            out->deployment = r[2].p;
            out->deployment_len = r[2].n;
        } else if (rn == 2 && seg_is(&r[1], "models")) {
            k = KL_GW_ROUTE_MODELS;
        } else if (rn == 3 && seg_is(&r[1], "models") && r[2].n > 0) {
            k = KL_GW_ROUTE_MODEL;
            out->deployment = r[2].p;
            out->deployment_len = r[2].n;
        } else {
            k = op_kind(r + 1, rn - 1);
            out->deployment_from_body = k != KL_GW_ROUTE_NONE;
        }
    }
    if (k == KL_GW_ROUTE_NONE) {
        out->deployment = NULL;
        out->deployment_len = 0;
        out->deployment_from_body = false;
        out->api_version_needed = false;
        return 0;
    }
    out->kind = k;
    /* An empty value counts as absent (404 on classic routes, fine on v1). */
    out->api_version_unsupported =
        out->api_version && !kl_gateway_api_version_supported(version, vlen, out->v1);
    out->method =
        (k == KL_GW_ROUTE_MODELS || k == KL_GW_ROUTE_MODEL || k == KL_GW_ROUTE_DEPLOYMENTS)
            ? "GET"
            : "POST";
    return 0;
}

const char *kl_gateway_data_action(kl_gateway_route_kind kind)
{
    switch (kind) {
    case KL_GW_ROUTE_CHAT:
        return "Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/completions/action";
    case KL_GW_ROUTE_COMPLETIONS:
        return "Microsoft.CognitiveServices/accounts/OpenAI/deployments/completions/action";
    case KL_GW_ROUTE_EMBEDDINGS:
        return "Microsoft.CognitiveServices/accounts/OpenAI/deployments/embeddings/action";
    case KL_GW_ROUTE_MODELS:
    case KL_GW_ROUTE_MODEL: return "Microsoft.CognitiveServices/accounts/OpenAI/models/read";
    case KL_GW_ROUTE_DEPLOYMENTS:
        return "Microsoft.CognitiveServices/accounts/OpenAI/deployments/read";
    case KL_GW_ROUTE_NONE: break;
    }
    return NULL;
}

kl_route kl_gateway_metrics_route(kl_gateway_route_kind kind)
{
    switch (kind) {
    case KL_GW_ROUTE_CHAT: return KL_ROUTE_CHAT;
    case KL_GW_ROUTE_COMPLETIONS: return KL_ROUTE_COMPLETIONS;
    case KL_GW_ROUTE_EMBEDDINGS: return KL_ROUTE_EMBEDDINGS;
    case KL_GW_ROUTE_MODELS:
    case KL_GW_ROUTE_MODEL:
    case KL_GW_ROUTE_DEPLOYMENTS: return KL_ROUTE_MODELS;
    case KL_GW_ROUTE_NONE: break;
    }
    return KL_ROUTE_OTHER;
}
