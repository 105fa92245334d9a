/* Data-plane routing as a pure function of (Host, path, query): which account, which
 * operation, which deployment. No I/O and no snapshot access, so every URL form the
 * clients use can be unit-tested, and the data action each operation needs is decided
 * in one table. */
#ifndef KL_GATEWAY_ROUTE_H
#define KL_GATEWAY_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/metrics.h"

typedef enum kl_gateway_route_kind {
    KL_GW_ROUTE_NONE = 0,    /* under the data plane, but no such operation */
    KL_GW_ROUTE_CHAT,        /* POST .../chat/completions */
    KL_GW_ROUTE_COMPLETIONS, /* POST .../completions */
    KL_GW_ROUTE_EMBEDDINGS,  /* POST .../embeddings */
    KL_GW_ROUTE_MODELS,      /* GET /openai/v1/models */
    KL_GW_ROUTE_MODEL,       /* GET /openai/v1/models/{id} */
    KL_GW_ROUTE_DEPLOYMENTS  /* GET /openai/deployments?api-version= */
} kl_gateway_route_kind;

/* Where the account name came from. */
typedef enum kl_gateway_account_src {
    KL_GW_ACCOUNT_NONE = 0,
    KL_GW_ACCOUNT_PATH, /* "/accounts/{name}" prefix (wins over Host) */
    KL_GW_ACCOUNT_HOST  /* Host "{name}.{account_domain}" */
} kl_gateway_account_src;

typedef struct kl_gateway_route {
    kl_gateway_route_kind kind;
    const char *method;      /* method the operation needs ("POST"/"GET"); NULL for NONE */
    bool v1;                 /* under /openai/v1 */
    bool api_version;        /* a non-empty api-version query parameter is present */
    bool api_version_needed; /* classic routes: without it the answer is 404 */
    /* A present api-version that this route does not speak (classic routes: not one of
     * Azure OpenAI's published inference versions; v1 routes: anything but "preview"):
     * 400 "API version not supported". */
    bool api_version_unsupported;
    bool deployment_from_body; /* v1 flat routes: deployment = body "model" */
    kl_gateway_account_src account_src;
    /* Slices of the inputs (not NUL-terminated); length 0 when absent. */
    const char *account;
    size_t account_len;
    const char *deployment; /* deployment name, or model id for KL_GW_ROUTE_MODEL */
    size_t deployment_len;
} kl_gateway_route;

/* True if the request belongs to the data plane: path "/openai" or "/openai/..." (any
 * Host), "/accounts/{name}/openai[/...]", or any path when Host is
 * "{name}.{account_domain}" (account_domain may be NULL: no Host form). host may be
 * NULL. Literal segments compare case-insensitively. */
bool kl_gateway_route_matches(const char *host, const char *path, const char *account_domain);

/* Parses a data-plane request. path is normalised by the server (no "//", no trailing
 * "/"); query is the raw query without '?' ("" or NULL if none). Slices in *out point
 * into host and path, which must outlive them. Returns 0 and fills *out (kind NONE for
 * an unknown operation), or KL_ENOTFOUND if the request is not for the data plane. */
int kl_gateway_route_parse(const char *host, const char *path, const char *query,
                           const char *account_domain, kl_gateway_route *out);

/* True if the api-version value v[0..n) is served: on classic routes one of Azure
 * OpenAI's published data-plane (inference) versions, on v1 routes only "preview" (the
 * v1 API takes none; AzureOpenAI with a v1 baseURL sends "preview"). Exact match. */
bool kl_gateway_api_version_supported(const char *v, size_t n, bool v1);

/* The account name carried by Host "{name}.{account_domain}" (port and one trailing dot
 * ignored, case-insensitive domain). Returns true and sets the slice on a match. */
bool kl_gateway_host_account(const char *host, const char *account_domain, const char **name,
                             size_t *len);

/* The RBAC data action an operation needs, e.g.
 * "Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/completions/action";
 * NULL for KL_GW_ROUTE_NONE (deny by default). Static string. */
const char *kl_gateway_data_action(kl_gateway_route_kind kind);

/* The metrics label for an operation. */
kl_route kl_gateway_metrics_route(kl_gateway_route_kind kind);

#endif
