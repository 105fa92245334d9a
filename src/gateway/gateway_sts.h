/* The Entra-compatible token service on the public TLS listener: per-tenant OIDC
 * discovery (v2 and v1), the JWKS of our signing keys, the token endpoint
 * (client_credentials with a client secret, by client_secret_post or
 * client_secret_basic, or with a client assertion: signed by a registered certificate,
 * or an external issuer's token for a federated credential; and the user grants:
 * password, refresh_token, authorization_code, device_code, see sts_internal.h) and
 * the revocation endpoint of refresh tokens, answering with Entra's success and error
 * bodies. Failed client authentication is throttled per client id and
 * per source address (token/throttle.h). Everything it reads comes from the snapshot (the
 * tenant, service principals, client secrets' keyed hashes, certificates, federated
 * credentials, the signing key ring); the store is touched only to spend an assertion's
 * jti, and the network only to fetch a federated issuer's keys (policy/jwks.h). */
#ifndef KL_GATEWAY_STS_H
#define KL_GATEWAY_STS_H

#include <stdbool.h>
#include <stdint.h>

#include "crypto/keys.h"
#include "http/server.h"
#include "policy/egress.h"
#include "policy/netrules.h"
#include "policy/snapshot.h"
#include "store/store.h"

typedef struct kl_gateway_sts kl_gateway_sts;

typedef struct kl_gateway_sts_cfg {
    kl_snapshot_holder *holder; /* borrowed */
    const kl_keys *keys;        /* borrowed: the pepper of client secrets' keyed hashes */
    /* The authority the discovery documents name, e.g. "https://127.0.0.1:8443". */
    const char *public_base_url;
    int64_t token_lifetime_s; /* 0: KL_TOKEN_DEFAULT_LIFETIME_S */
    kl_store *store;          /* borrowed: spent assertion jtis; NULL refuses assertions (503) */
    /* borrowed: a connection of its own for the group commit of refresh-token
     * rotations (gateway/refreshq.h); NULL: store */
    kl_store *refresh_store;
    const kl_egress *egress;        /* borrowed: federated issuers' keys are fetched through it;
                                       NULL refuses federated assertions */
    const char *federation_ca_file; /* CAs of federated issuers; NULL: the system's */
    /* The sign-in log (borrowed; NULL: none): every token issued or refused. */
    struct kl_signins *signins;
    /* How long a device code lives (s; 0: KL_DEVICE_CODE_LIFETIME_S; else within
     * KL_DEVICE_CODE_MIN_LIFETIME_S..KL_DEVICE_CODE_MAX_LIFETIME_S). */
    int64_t device_code_lifetime_s;
    /* --trusted-proxy (borrowed; NULL: X-Forwarded-For is ignored): the per-address
     * throttles, the device-code cap and the sign-in log's source take the caller's
     * address behind these proxies (gateway/clientaddr.h), as the data plane does. */
    const kl_netrules *trusted_proxies;
} kl_gateway_sts_cfg;

/* cfg is copied (its pointers stay borrowed). KL_EINVAL, KL_ENOMEM. */
int kl_gateway_sts_new(const kl_gateway_sts_cfg *cfg, kl_gateway_sts **out);
void kl_gateway_sts_free(kl_gateway_sts *s);

/* On a server thread whose loop has stopped for good (kl_http_thread_fini_fn): settles
 * what the token service still has due on base (refresh-token rotations waiting for
 * their group commit, gateway/refreshq.h); their clients are gone by then, and each
 * rotation is either committed whole or never written. NULL s is fine. */
void kl_gateway_sts_thread_fini(kl_gateway_sts *s, struct event_base *base);

/* True if path (normalised by the server) is one of the token service's:
 * /{tenant}/v2.0/.well-known/openid-configuration, /{tenant}/.well-known/openid-configuration,
 * /{tenant}/discovery/v2.0/keys, /{tenant}/discovery/keys, /{tenant}/oauth2/v2.0/token,
 * /{tenant}/oauth2/token, /{tenant}/oauth2/v2.0/revoke. {tenant} is a GUID or a name of
 * [A-Za-z0-9.-]. */
bool kl_gateway_sts_matches(const char *path);

/* Serves one token-service request (any thread); always answers. */
void kl_gateway_sts_handle(kl_gateway_sts *s, kl_http_req *r);

/* The v1 issuer of our access tokens for tenant tid: "https://sts.windows.net/<tid>/",
 * as Entra's v1 tokens for these resources carry it; it names the tenant, not a node,
 * so every node of a cluster accepts every node's tokens. */
int kl_gateway_sts_issuer(const char *tid, char *out, size_t outlen);

#endif
