/* Claim sets of the tokens we issue (Entra v1 access tokens, protocols.md 5) and the
 * checks on claims of tokens that already passed signature verification: our access
 * tokens at the gateway, and client assertions (private_key_jwt) at the token endpoint.
 * Pure functions of their inputs and "now"; no store, no clock of their own. */
#ifndef KL_TOKEN_CLAIMS_H
#define KL_TOKEN_CLAIMS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/limits.h"

/* Why a verified token's claims were refused; the first failing check wins. */
typedef enum kl_claims_reason {
    KL_CLAIMS_OK = 0,
    KL_CLAIMS_MISSING,       /* a required claim is absent */
    KL_CLAIMS_BAD_TYPE,      /* a claim has the wrong JSON type (times must be integers) */
    KL_CLAIMS_BAD_VALUE,     /* a claim is malformed (too long, empty, ver not "1.0", ...) */
    KL_CLAIMS_AUDIENCE,      /* aud is not one we accept */
    KL_CLAIMS_ISSUER,        /* iss is not this tenant's issuer */
    KL_CLAIMS_TENANT,        /* tid is not this tenant */
    KL_CLAIMS_EXPIRED,       /* now >= exp + KL_TOKEN_CLOCK_SKEW_S */
    KL_CLAIMS_NOT_YET_VALID, /* now + KL_TOKEN_CLOCK_SKEW_S < nbf */
    KL_CLAIMS_IAT_FUTURE,    /* issued after now + KL_TOKEN_CLOCK_SKEW_S */
    KL_CLAIMS_LIFETIME,      /* exp - nbf (or iat) above the limit for this kind of token */
    KL_CLAIMS_SUBJECT,       /* assertion: iss or sub is not the client id */
    KL_CLAIMS_REASON_COUNT
} kl_claims_reason;

/* A static name for r ("expired", "audience", ...). */
const char *kl_claims_reason_str(kl_claims_reason r);

/* What goes into an access token we issue. Strings are borrowed for the call. */
typedef struct kl_claims_access {
    const char *aud;   /* the resource as requested, e.g. https://cognitiveservices.azure.com */
    const char *iss;   /* e.g. https://sts.windows.net/<tid>/ (also written as idp) */
    const char *tid;   /* tenant GUID */
    const char *appid; /* the client's application id */
    const char *oid;   /* object id of the service principal (also written as sub) */
    int appidacr;      /* 0 public client, 1 client secret, 2 certificate / managed identity */
    int64_t now;       /* issue time, seconds since the epoch: iat and nbf */
    int64_t lifetime;  /* seconds until exp; 0 means KL_TOKEN_DEFAULT_LIFETIME_S */
    /* Managed identities only (NULL otherwise): the ARM id Azure writes as xms_mirid, the
     * user-assigned identity's own id or the resource carrying a system-assigned one. */
    const char *xms_mirid;
    /* Users only (upn NULL for applications and managed identities): the token is then
     * a user's (idtyp "user") and carries scp, name (UTF-8, may be NULL), upn (also
     * written as unique_name) and amr (one method, e.g. "pwd", written as a list). */
    const char *upn;
    const char *name;
    const char *scp;
    const char *amr;
} kl_claims_access;

/* The v1 issuer of our access tokens for tenant tid, "https://sts.windows.net/<tid>/", as
 * Entra's v1 tokens carry it: it names the tenant, not a node, so every node of a cluster
 * accepts every node's tokens. KL_ETOOBIG if it does not fit out. */
int kl_claims_issuer_v1(const char *tid, char *out, size_t outlen);

/* Builds the v1 claim set {aud, iss, iat, nbf, exp, appid, appidacr, idp, idtyp "app",
 * oid, sub, tid, uti, ver "1.0"}, then xms_mirid when given, with a fresh random uti; for
 * a user (upn set) {aud, iss, iat, nbf, exp, amr, appid, appidacr, idp, idtyp "user",
 * name, oid, scp, sub, tid, unique_name, upn, uti, ver "1.0"}.
 * *out is a new object the
 * caller decrefs. KL_EINVAL for a missing or over-long string, appidacr outside 0..2 or
 * a lifetime outside 1..KL_TOKEN_MAX_LIFETIME_S, a user without scp or amr, or a name
 * that is not UTF-8. */
int kl_claims_build_access(const kl_claims_access *in, json_t **out);

/* The same claim set as compact JSON text in out[0..*len) (not terminated), written
 * directly: the token endpoint's path, where building a JSON tree and dumping it cost
 * more than the ECDSA signature. kl_claims_build_access parses this text, so the two
 * never differ. The same refusals, plus KL_EINVAL for a value that is not printable ASCII
 * and KL_ETOOBIG when cap is too small (KL_MAX_ACCESS_CLAIMS always suffices for values
 * within KL_MAX_CLAIM_STRING). */
int kl_claims_write_access(const kl_claims_access *in, char *out, size_t cap, size_t *len);

/* What the gateway expects of an access token. */
typedef struct kl_claims_expect {
    const char *const
        *audiences; /* accepted aud values; a trailing slash is ignored on both sides */
    size_t n_audiences;
    const char *issuer; /* exact iss */
    const char *tid;    /* exact tid, or NULL to skip (iss already names the tenant) */
    int64_t now;        /* seconds since the epoch */
} kl_claims_expect;

/* What a cached, validated access token says about its caller. */
typedef struct kl_claims_principal {
    char oid[KL_MAX_PRINCIPAL_ID + 1];
    char tid[KL_MAX_PRINCIPAL_ID + 1];
    char appid[KL_MAX_PRINCIPAL_ID + 1];
    char upn[KL_MAX_UPN + 1]; /* a user's token's upn; "" for the others */
    int64_t exp;
} kl_claims_principal;

/* Validates an access token's verified payload: required claims and their types (aud,
 * iss, tid, oid, appid strings; exp, nbf, iat integers; ver "1.0"; upn, when present, a
 * string of at most KL_MAX_UPN bytes), audience, issuer,
 * tenant, times with KL_TOKEN_CLOCK_SKEW_S and lifetime. On KL_CLAIMS_OK fills *who
 * (if not NULL). */
kl_claims_reason kl_claims_check_access(const json_t *payload, const kl_claims_expect *e,
                                        kl_claims_principal *who);

/* What a valid client assertion yields for the replay check. */
typedef struct kl_claims_assertion {
    char jti[KL_MAX_JTI + 1];
    int64_t exp; /* remember jti until this time */
} kl_claims_assertion;

/* Validates a client assertion's verified payload (RFC 7523, Entra certificate
 * credentials): iss and sub equal client_id, aud equals token_endpoint (a string, or an
 * array containing it), exp and nbf (or iat, when nbf is absent) integers with
 * exp - start <= KL_ASSERTION_MAX_LIFETIME_S, not expired and not yet valid with
 * KL_TOKEN_CLOCK_SKEW_S, jti a string of 1..KL_MAX_JTI bytes. On KL_CLAIMS_OK fills *out
 * (if not NULL) for the replay store. */
kl_claims_reason kl_claims_check_assertion(const json_t *payload, const char *client_id,
                                           const char *token_endpoint, int64_t now,
                                           kl_claims_assertion *out);

#endif
