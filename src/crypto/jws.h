/* JWS compact serialization (RFC 7515) for the tokens we issue and the client assertions
 * we accept: RS256, PS256 and ES256 only. The algorithm always comes from the key, never
 * from the token header; the header's "alg" must merely agree. Every refusal has its own
 * reason so callers can answer with the right AADSTS error or data-plane 401 body.
 * Built on OpenSSL 3 EVP and jansson directly (docs/interop-notes.md says why not cjose).
 * No other module touches the signature code. */
#ifndef KL_CRYPTO_JWS_H
#define KL_CRYPTO_JWS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/limits.h"

/* Signature algorithms, as a bit set so a key can allow more than one (a client's RSA
 * certificate may sign its assertion with RS256 or PS256). */
typedef enum kl_jws_alg {
    KL_JWS_RS256 = 1 << 0, /* RSASSA-PKCS1-v1_5 with SHA-256 */
    KL_JWS_PS256 = 1 << 1, /* RSASSA-PSS with SHA-256, MGF1-SHA-256, 32-byte salt */
    KL_JWS_ES256 = 1 << 2, /* ECDSA P-256 with SHA-256, signature as raw r || s */
} kl_jws_alg;

/* Why a token was refused. Checked in this order, so a token carrying several faults
 * reports the first one. */
typedef enum kl_jws_reason {
    KL_JWS_OK = 0,
    KL_JWS_EMPTY,            /* zero bytes */
    KL_JWS_TOO_BIG,          /* more than KL_MAX_TOKEN_BYTES */
    KL_JWS_NOT_COMPACT,      /* not three non-empty segments separated by two dots */
    KL_JWS_BAD_BASE64,       /* a segment is not strict base64url (no padding) */
    KL_JWS_BAD_JSON,         /* header or payload is not a JSON object */
    KL_JWS_DUPLICATE_MEMBER, /* a member name appears twice in header or payload */
    KL_JWS_ALG_MISSING,      /* no "alg" string in the header */
    KL_JWS_ALG_NONE,         /* "alg": "none" (any case) */
    KL_JWS_ALG_HMAC,         /* "alg": HS256/HS384/HS512 */
    KL_JWS_ALG_UNSUPPORTED,  /* any other algorithm name */
    KL_JWS_CRIT,             /* a "crit" header: we understand no extensions */
    KL_JWS_KID_MISSING,      /* no "kid" string (key-ring verification only) */
    KL_JWS_KID_BAD,          /* kid empty, longer than KL_MAX_JWS_KID or outside [A-Za-z0-9_-] */
    KL_JWS_KID_UNKNOWN,      /* no key with this kid in the ring */
    KL_JWS_ALG_MISMATCH,     /* header alg is not one the key allows */
    KL_JWS_BAD_SIGNATURE,    /* signature does not verify (or has the wrong length) */
    KL_JWS_REASON_COUNT
} kl_jws_reason;

/* A static, stable name for r ("alg_none", "bad_signature", ...), for logs and tests. */
const char *kl_jws_reason_str(kl_jws_reason r);

/* The JWS name of one algorithm ("RS256"), or NULL if alg is not exactly one of them. */
const char *kl_jws_alg_name(kl_jws_alg alg);

/* ---- Keys ---------------------------------------------------------------------------- */

/* A signing or verification key with its kid and the algorithms it may be used with.
 * Immutable once made, so one key may be shared by threads. */
typedef struct kl_jws_key kl_jws_key;

/* Generates a key: RSA-2048 for KL_JWS_RS256 or KL_JWS_PS256, P-256 for KL_JWS_ES256.
 * Its kid is the RFC 7638 JWK thumbprint (SHA-256, base64url, 43 characters).
 * *out is owned by the caller (kl_jws_key_free). KL_EINVAL for any other alg,
 * KL_ECRYPTO if OpenSSL fails. */
int kl_jws_key_generate(kl_jws_alg alg, kl_jws_key **out);

/* Loads a PEM key (PKCS#8 private key, or SubjectPublicKeyInfo public key) of pem[0..n)
 * for algs (a set of kl_jws_alg that must fit the key type: RSA for RS256/PS256, P-256
 * for ES256). The kid is the RFC 7638 thumbprint. KL_EINVAL for unparsable PEM, a key
 * type that does not fit algs, or RSA outside KL_MIN_RSA_BITS..KL_MAX_RSA_BITS. */
int kl_jws_key_from_pem(const char *pem, size_t n, unsigned algs, kl_jws_key **out);

/* Loads the public key of a DER X.509 certificate (a client's registered certificate).
 * algs as above. The kid is the certificate's "x5t" (base64url SHA-1 of der), and
 * kl_jws_key_x5t_s256 gives its "x5t#S256", so a caller can find the certificate by
 * either header. Validity dates are not checked here. */
int kl_jws_key_from_cert_der(const unsigned char *der, size_t n, unsigned algs, kl_jws_key **out);

/* Loads a public JWK object ({"kty":"RSA","n","e"} or {"kty":"EC","crv":"P-256","x","y"})
 * for algs; kid from its "kid" member if present (it must then be well-formed), else the
 * RFC 7638 thumbprint. Private members are ignored. KL_EINVAL if malformed. */
int kl_jws_key_from_jwk(const json_t *jwk, unsigned algs, kl_jws_key **out);

/* Writes the private key as PKCS#8 PEM into *pem (malloc'd, NUL-terminated, *n excludes
 * the NUL) so the caller can seal it under the KEK; the caller cleanses and frees it.
 * KL_EINVAL if k holds only a public key. */
int kl_jws_key_private_pem(const kl_jws_key *k, char **pem, size_t *n);

/* Frees k (the private key is wiped by OpenSSL). NULL is fine. */
void kl_jws_key_free(kl_jws_key *k);

/* Accessors; the strings live as long as k. */
const char *kl_jws_key_kid(const kl_jws_key *k);
const char *kl_jws_key_x5t_s256(const kl_jws_key *k); /* "" unless from a certificate */
unsigned kl_jws_key_algs(const kl_jws_key *k);

/* The public JWK for a JWKS document: kty, use "sig", kid, x5t (= kid, as Entra's v1
 * keys), alg (when the key allows exactly one), and n/e or crv/x/y. A new reference the
 * caller decrefs. NULL on allocation failure. */
json_t *kl_jws_key_public_jwk(const kl_jws_key *k);

/* Writes the RFC 7638 thumbprint of k's public key (base64url SHA-256, 43 characters and
 * a NUL) into out. */
int kl_jws_key_thumbprint(const kl_jws_key *k, char out[44]);

/* ---- Signing ------------------------------------------------------------------------- */

/* The narrow signing interface: token code only ever calls sign(), so the key can later
 * move into a separate process without changing the callers. sign writes at most
 * KL_MAX_JWS_SIG bytes of JWS-form signature (raw r || s for ES256) over msg[0..n) into
 * sig and its length into *siglen; returns 0 or a negative kl_err. */
typedef struct kl_jws_signer {
    int (*sign)(void *ctx, const void *msg, size_t n, unsigned char *sig, size_t *siglen);
    void *ctx;       /* passed to sign; not owned */
    kl_jws_alg alg;  /* exactly one algorithm */
    const char *kid; /* written as both "kid" and "x5t" (v1 token header) */
} kl_jws_signer;

/* Fills *s with a signer for a key holding a private key, using alg (one of the key's
 * algorithms). s borrows k: k must outlive it. KL_EINVAL if k is public-only or alg is
 * not one of its algorithms. */
int kl_jws_key_signer(const kl_jws_key *k, kl_jws_alg alg, kl_jws_signer *s);

/* Signs payload[0..n) (the bytes are used as given; callers pass compact JSON) under the
 * header {"typ":"JWT","alg":...,"kid":...,"x5t":...}. *out is a malloc'd NUL-terminated
 * compact JWS the caller frees. KL_EINVAL for an empty payload, KL_ETOOBIG if the result
 * would exceed KL_MAX_TOKEN_BYTES. */
int kl_jws_sign_compact(const kl_jws_signer *s, const void *payload, size_t n, char **out);

/* ---- Verification -------------------------------------------------------------------- */

/* A set of trusted public keys by kid, immutable once built, shared read-only by
 * workers; a new ring (with a new generation) replaces it when keys change. */
typedef struct kl_jws_keyring kl_jws_keyring;

/* An empty ring carrying the caller's generation number (e.g. the key table version):
 * cached verifications record it and are dropped when it changes. */
int kl_jws_keyring_new(uint64_t generation, kl_jws_keyring **out);
/* Adds (a reference to the public part of) k. KL_EEXIST for a kid already present,
 * KL_ETOOBIG beyond KL_MAX_KEYRING_KEYS. k may be freed afterwards. */
int kl_jws_keyring_add(kl_jws_keyring *r, const kl_jws_key *k);
uint64_t kl_jws_keyring_generation(const kl_jws_keyring *r);
/* Number of keys, and the i-th key (for the JWKS document); borrowed from r. */
size_t kl_jws_keyring_count(const kl_jws_keyring *r);
const kl_jws_key *kl_jws_keyring_key(const kl_jws_keyring *r, size_t i);
void kl_jws_keyring_free(kl_jws_keyring *r);

/* What a successful verification yields. */
typedef struct kl_jws_verified {
    json_t *header;               /* owned; freed by kl_jws_verified_clear */
    json_t *payload;              /* owned; a JSON object, duplicate-free */
    kl_jws_alg alg;               /* the algorithm that verified */
    char kid[KL_MAX_JWS_KID + 1]; /* the key's kid */
} kl_jws_verified;

/* Verifies tok[0..n) against the ring: header parsed (strictly), kid looked up, header
 * alg checked against the key's algorithms, signature verified, and only then the
 * payload decoded and parsed. Returns KL_JWS_OK and fills *v (the caller clears it), or
 * a reason with *v left empty. tok need not be NUL-terminated. */
kl_jws_reason kl_jws_verify(const kl_jws_keyring *r, const char *tok, size_t n, kl_jws_verified *v);

/* The same against one given key (a client's certificate); the header needs no kid. */
kl_jws_reason kl_jws_verify_with_key(const kl_jws_key *k, const char *tok, size_t n,
                                     kl_jws_verified *v);

/* Parses only the header of tok[0..n) with the same strict checks (size, shape,
 * base64url, JSON, duplicates, alg), so a caller can pick the key to verify with (a
 * client assertion's x5t / x5t#S256). Nothing in it is trusted yet. *header is a new
 * reference on KL_JWS_OK, NULL otherwise. */
kl_jws_reason kl_jws_peek_header(const char *tok, size_t n, json_t **header);

/* Releases what v holds and empties it. */
void kl_jws_verified_clear(kl_jws_verified *v);

#endif
