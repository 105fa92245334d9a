/* External OIDC issuers' signing keys, for federated identity credentials: fetched from
 * the issuer's discovery document (issuer + "/.well-known/openid-configuration", whose
 * "issuer" must be the issuer exactly and whose "jwks_uri" must be https) and cached per
 * issuer. A token naming a kid the cached set lacks refetches, at most once per
 * KL_JWKS_MIN_REFRESH_S per issuer, so a flood of made-up kids cannot make us hammer an
 * issuer; a set older than KL_JWKS_MAX_AGE_S is refetched on use. The transport is a
 * callback: kl_jwks_https_fetch is the real one (libcurl, https only, no redirects,
 * size and time bounded, every resolved address judged by the egress policy at connect
 * time). Thread-safe: fetches are serialised under the cache's lock; key sets are
 * reference-counted so a refresh never frees a key a caller still holds. */
#ifndef KL_POLICY_JWKS_H
#define KL_POLICY_JWKS_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/jws.h"
#include "policy/egress.h"

/* Fetches url; on 0 *body (malloc'd, NUL-terminated) holds at most KL_MAX_JWKS_BYTES.
 * KL_EIO (unreachable, HTTP status not 200, refused by the egress policy), KL_ETOOBIG,
 * KL_ENOMEM. */
typedef int (*kl_jwks_fetch_fn)(void *ctx, const char *url, char **body, size_t *len);

typedef struct kl_jwks kl_jwks;
typedef struct kl_jwks_set kl_jwks_set;

/* A cache using fetch(ctx, ...). *out owned by the caller (kl_jwks_free). */
int kl_jwks_new(kl_jwks_fetch_fn fetch, void *ctx, kl_jwks **out);
void kl_jwks_free(kl_jwks *j);

/* The key of issuer with kid at now, fetching as described above. On 0, *key is valid
 * until kl_jwks_set_release(*hold). KL_ENOTFOUND (no such kid, or not refetched yet),
 * KL_EIO / KL_EINVAL (the issuer's documents could not be fetched or are malformed; not
 * retried before KL_JWKS_MIN_REFRESH_S), KL_EINVAL (issuer not https). */
int kl_jwks_key(kl_jwks *j, const char *issuer, const char *kid, int64_t now, kl_jwks_set **hold,
                const kl_jws_key **key);
void kl_jwks_set_release(kl_jwks_set *s);

/* Prepares the transport's library (libcurl's global state): once, at start-up, before
 * any thread is started. 0 or KL_EINTERNAL. */
int kl_jwks_global_init(void);

/* The real transport's context (borrowed pointers). */
typedef struct kl_jwks_https {
    const kl_egress *egress; /* every resolved address is judged by it */
    const char *ca_file;     /* PEM CAs for issuers with a private CA; NULL: the system's */
} kl_jwks_https;

/* The real transport: ctx is a kl_jwks_https. HTTPS only, the server certificate
 * verified (system CAs, or ca_file), no redirects, no proxy, at most
 * KL_JWKS_FETCH_TIMEOUT_MS and KL_MAX_JWKS_BYTES; a resolved address the egress policy
 * refuses is never connected to. */
int kl_jwks_https_fetch(void *ctx, const char *url, char **body, size_t *len);

#endif
