/* Client assertions signed by a registered certificate (private_key_jwt, Entra's
 * certificate credentials): the token endpoint's check of client_assertion. The
 * certificate is found by the header's x5t (RS256) or x5t#S256 (PS256, what
 * ClientCertificateCredential sends); an optional x5c must be a registered certificate;
 * the claims are checked by kl_claims_check_assertion; the jti is spent through a
 * callback (the store's kl_store_use_jti) so it is never accepted twice, on any node.
 * No store, no clock of its own. */
#ifndef KL_TOKEN_ASSERTION_H
#define KL_TOKEN_ASSERTION_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/jws.h"
#include "token/claims.h"

/* A certificate registered for a client (built into the snapshot by policy/appcreds). */
typedef struct kl_client_cert {
    const kl_jws_key *key;    /* RS256|PS256; kid = its x5t, kl_jws_key_x5t_s256 = x5t#S256 */
    const unsigned char *der; /* the certificate, for matching an x5c header */
    size_t der_len;
    int64_t not_before, not_after; /* seconds: outside them the certificate signs nothing */
    const char *key_id;            /* its keyCredential keyId (for the sign-in log) */
} kl_client_cert;

/* Why an assertion was refused, with the AADSTS code the token endpoint answers. */
typedef enum kl_assertion_reason {
    KL_ASSERTION_OK = 0,
    KL_ASSERTION_MALFORMED,     /* 50027: not a JWS we can read, or bad claims' types */
    KL_ASSERTION_NO_CERT,       /* 700027: no x5t/x5t#S256 or x5c naming a registered cert */
    KL_ASSERTION_BAD_SIGNATURE, /* 700027: the signature does not verify with it */
    KL_ASSERTION_CERT_EXPIRED,  /* 700027: the certificate is outside its validity dates */
    KL_ASSERTION_AUDIENCE,      /* 700021: aud is not our token endpoint */
    KL_ASSERTION_SUBJECT,       /* 700023: iss or sub is not the client id */
    KL_ASSERTION_LIFETIME,      /* 700024: expired, not yet valid, or valid over 10 minutes */
    KL_ASSERTION_REPLAYED,      /* 50013: this jti was accepted before */
    KL_ASSERTION_UNAVAILABLE,   /* the jti store cannot be reached: 503, never accepted */
    /* Federated credentials (an external issuer's token): */
    KL_ASSERTION_FED_ISSUER,   /* 700211: no federated credential of the client has this iss */
    KL_ASSERTION_FED_AUDIENCE, /* 700212: ... with this iss and an aud it accepts */
    KL_ASSERTION_FED_SUBJECT,  /* 700213: ... with this iss, aud and sub */
    KL_ASSERTION_KEY_UNKNOWN,  /* 700027: the issuer has no key with the header's kid */
    KL_ASSERTION_REASON_COUNT
} kl_assertion_reason;

/* Static name ("replayed", ...) and AADSTS number (0 for OK / UNAVAILABLE) of r. */
const char *kl_assertion_reason_str(kl_assertion_reason r);
int kl_assertion_reason_aadsts(kl_assertion_reason r);

/* Spends jti for client_id, to be remembered until exp (seconds; the assertion's exp plus
 * KL_TOKEN_CLOCK_SKEW_S, the last moment it could be accepted): 0 if it was unused and is
 * now recorded, KL_EEXIST if it was used already, KL_EUNAVAIL (or another error) if that
 * cannot be known. */
typedef int (*kl_assertion_use_jti_fn)(void *ctx, const char *client_id, const char *jti,
                                       int64_t exp);

/* Checks tok[0..len) as client_id's assertion for token_endpoint_url against certs[0..n)
 * at now_s, in this order: header (strict JWS, alg RS256 or PS256), the certificate
 * (x5t#S256 or x5t, and any x5c, naming one of certs; within its dates), the signature
 * (the algorithm must be one the key allows), the claims (kl_claims_check_assertion),
 * and last, only for an otherwise valid assertion, the jti through use_jti. Returns
 * KL_ASSERTION_OK, or the first reason; *used_cert (may be NULL) names the certificate
 * on OK. */
kl_assertion_reason kl_assertion_check_cert(const char *client_id, const char *tok, size_t len,
                                            const char *token_endpoint_url,
                                            const kl_client_cert *certs, size_t n, int64_t now_s,
                                            kl_assertion_use_jti_fn use_jti, void *ctx,
                                            const kl_client_cert **used_cert);

/* A federated identity credential of a client (from the snapshot, policy/appcreds). */
typedef struct kl_federated_cred {
    const char *id;
    const char *issuer;  /* exact iss */
    const char *subject; /* exact sub */
    const char *const *audiences;
    size_t n_audiences;
} kl_federated_cred;

/* The issuer's verification key with this kid (from its JWKS, fetched through the egress
 * policy and cached by the caller), or NULL when it has none; the algorithm comes from
 * that key. The key must stay valid until the check returns. */
typedef const kl_jws_key *(*kl_assertion_issuer_key_fn)(void *ctx, const char *issuer,
                                                        const char *kid);

/* Checks tok[0..len) (an external issuer's JWT, e.g. a Kubernetes service-account or CI
 * token) as client_id's assertion against its federated credentials fics[0..n) at now_s:
 * strict JWS header with a kid; the (unverified) iss picks the credentials to try; the
 * signature is verified with key_fn(iss, kid); then, on the verified claims: a credential
 * with that iss, one of its audiences in aud, its subject as sub (each failing step its
 * own reason), exp/nbf with KL_TOKEN_CLOCK_SKEW_S and a lifetime of at most
 * KL_TOKEN_MAX_LIFETIME_S. No jti check: the same projected token is presented again and
 * again until it expires (WorkloadIdentityCredential re-reads one file). *used (may be
 * NULL) names the credential on OK. */
kl_assertion_reason kl_assertion_check_federated(const char *client_id, const char *tok, size_t len,
                                                 const kl_federated_cred *fics, size_t n,
                                                 int64_t now_s, kl_assertion_issuer_key_fn key_fn,
                                                 void *key_ctx, const kl_federated_cred **used);

#endif
