/* The managed-identity token cache (see mitoken.h). */
#include "imds/mitoken.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "token/claims.h"
#include "token/mint.h"

/* Everything that went into a token but time, as one string: a token is reused only
 * for an identical one. */
#define MAX_KEY (6 * (KL_MAX_CLAIM_STRING + 1))

typedef struct slot {
    char *key; /* NULL: empty */
    char *token;
    int64_t nbf, exp;
} slot;

struct kl_mitoken {
    pthread_mutex_t mu;
    int64_t lifetime;
    uint64_t hits, mints;
    slot slots[KL_MI_TOKEN_CACHE_SLOTS];
};

static void slot_clear(slot *s)
{
    if (s->token) {
        OPENSSL_cleanse(s->token, strlen(s->token));
        free(s->token);
    }
    free(s->key);
    memset(s, 0, sizeof(*s));
}

int kl_mitoken_new(int64_t lifetime_s, kl_mitoken **out)
{
    *out = NULL;
    if (lifetime_s < KL_MI_TOKEN_MIN_LIFETIME_S || lifetime_s > KL_MI_TOKEN_MAX_LIFETIME_S)
        return KL_EINVAL;
    kl_mitoken *c = calloc(1, sizeof(*c));
    if (!c)
        return KL_ENOMEM;
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c);
        return KL_ENOMEM;
    }
    c->lifetime = lifetime_s;
    *out = c;
    return 0;
}

void kl_mitoken_free(kl_mitoken *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < KL_MI_TOKEN_CACHE_SLOTS; i++)
        slot_clear(&c->slots[i]);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

void kl_mitoken_out_clear(kl_mitoken_out *o)
{
    if (o->access_token) {
        OPENSSL_cleanse(o->access_token, strlen(o->access_token));
        free(o->access_token);
    }
    memset(o, 0, sizeof(*o));
}

void kl_mitoken_stats(kl_mitoken *c, uint64_t *hits, uint64_t *mints)
{
    pthread_mutex_lock(&c->mu);
    *hits = c->hits;
    *mints = c->mints;
    pthread_mutex_unlock(&c->mu);
}

/* FNV-1a: the key is ours (ids of the snapshot and a known resource), not a caller's
 * choice of arbitrary bytes, so a keyed hash buys nothing here. */
static size_t slot_of(const char *key, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)key[i];
        h *= 1099511628211ULL;
    }
    return (size_t)(h % KL_MI_TOKEN_CACHE_SLOTS);
}

static bool set(const char *s)
{
    return s && *s && strlen(s) <= KL_MAX_CLAIM_STRING;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d)
        memcpy(d, s, n + 1);
    return d;
}

int kl_mitoken_get(kl_mitoken *c, const kl_mitoken_req *req, int64_t now, kl_mitoken_out *out)
{
    memset(out, 0, sizeof(*out));
    if (!req->key || !set(req->tid) || !set(req->object_id) || !set(req->client_id) ||
        !set(req->mirid) || !set(req->resource) || now <= 0)
        return KL_EINVAL;
    const char *kid = kl_jws_key_kid(req->key);
    char key[MAX_KEY];
    int kn = snprintf(key, sizeof(key), "%s\n%s\n%s\n%s\n%s\n%s", kid ? kid : "", req->tid,
                      req->object_id, req->client_id, req->mirid, req->resource);
    if (kn < 0 || (size_t)kn >= sizeof(key))
        return KL_EINVAL;
    int64_t margin = c->lifetime / 4;
    if (margin > KL_MI_TOKEN_RENEW_MARGIN_S)
        margin = KL_MI_TOKEN_RENEW_MARGIN_S;
    slot *s = &c->slots[slot_of(key, (size_t)kn)];

    pthread_mutex_lock(&c->mu);
    if (s->key && !strcmp(s->key, key) && now < s->exp - margin && now >= s->nbf) {
        out->access_token = dup_str(s->token);
        out->not_before = s->nbf;
        out->expires_on = s->exp;
        out->lifetime = s->exp - s->nbf;
        out->cached = true;
        c->hits++;
        pthread_mutex_unlock(&c->mu);
        return out->access_token ? 0 : KL_ENOMEM;
    }
    pthread_mutex_unlock(&c->mu);

    /* Minted outside the lock (an RSA signature takes a while); two requests racing
     * for the same pair may both mint, and the later one is kept. */
    char iss[160];
    int err = kl_claims_issuer_v1(req->tid, iss, sizeof(iss));
    kl_claims_access in = {.aud = req->resource,
                           .iss = iss,
                           .tid = req->tid,
                           .appid = req->client_id,
                           .oid = req->object_id,
                           .appidacr = 2, /* as Azure's managed-identity tokens */
                           .now = now,
                           .lifetime = c->lifetime,
                           .xms_mirid = req->mirid};
    char *tok = NULL;
    if (!err)
        err = kl_mint_access(req->key, &in, &tok);
    if (err)
        return err;
    slot fresh = {.key = dup_str(key), .token = dup_str(tok), .nbf = now, .exp = now + c->lifetime};
    out->access_token = tok;
    out->not_before = fresh.nbf;
    out->expires_on = fresh.exp;
    out->lifetime = c->lifetime;
    pthread_mutex_lock(&c->mu);
    c->mints++;
    if (fresh.key && fresh.token) {
        slot_clear(s);
        *s = fresh;
        fresh = (slot){0};
    }
    pthread_mutex_unlock(&c->mu);
    slot_clear(&fresh);
    return 0;
}
