/* Managed-identity tokens: minted with the snapshot's signing key and cached per
 * (identity, resource), so repeated requests get the same token with a decreasing
 * expires_in, as IMDS does, until too little of its life is left. An entry is used only
 * when everything that went into the token is unchanged: the identity's object id,
 * client id and xms_mirid, the tenant, the resource as requested and the kid of the key
 * that signs now. A deleted or detached identity never reaches the cache (the caller
 * resolves the identity in the current snapshot first); a revoked or rotated key changes
 * the signing kid, so the next request mints anew. Thread-safe (one mutex); bounded
 * (KL_MI_TOKEN_CACHE_SLOTS direct-mapped slots: a collision only costs a mint). */
#ifndef KL_IMDS_MITOKEN_H
#define KL_IMDS_MITOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/jws.h"

typedef struct kl_mitoken kl_mitoken;

/* What a token is minted for. Strings are borrowed for the call. */
typedef struct kl_mitoken_req {
    const kl_jws_key *key; /* the key that signs now (kl_sts_signing_key) */
    const char *tid;       /* tenant */
    const char *object_id; /* the identity's principal id: oid and sub */
    const char *client_id; /* its client id: appid */
    const char *mirid;     /* xms_mirid */
    const char *resource;  /* aud, as requested */
} kl_mitoken_req;

/* A token handed out. access_token is malloc'd; kl_mitoken_out_clear wipes and frees it. */
typedef struct kl_mitoken_out {
    char *access_token;
    int64_t not_before; /* nbf, epoch seconds */
    int64_t expires_on; /* exp, epoch seconds */
    int64_t lifetime;   /* exp - nbf: ext_expires_in's basis */
    bool cached;        /* handed out before */
} kl_mitoken_out;

/* lifetime_s: seconds from minting to exp (KL_MI_TOKEN_MIN_LIFETIME_S..
 * KL_MI_TOKEN_MAX_LIFETIME_S, else KL_EINVAL). *out owned by the caller. */
int kl_mitoken_new(int64_t lifetime_s, kl_mitoken **out);
/* Wipes every cached token and frees. NULL is fine. */
void kl_mitoken_free(kl_mitoken *c);

/* The token for req at now: the cached one while more than the renewal margin
 * (min(KL_MI_TOKEN_RENEW_MARGIN_S, lifetime / 4)) of its life is left, else a new one
 * (which replaces it). 0, or KL_EINVAL (bad req), KL_ENOMEM, KL_ECRYPTO. */
int kl_mitoken_get(kl_mitoken *c, const kl_mitoken_req *req, int64_t now, kl_mitoken_out *out);
void kl_mitoken_out_clear(kl_mitoken_out *o);

/* How many requests were answered from the cache and how many minted (for tests of the
 * cache's contract and for metrics). */
void kl_mitoken_stats(kl_mitoken *c, uint64_t *hits, uint64_t *mints);

#endif
