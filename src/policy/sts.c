/* The token service's part of the snapshot (see sts.h): signing keys by time, the
 * verification ring, the JWKS document and the client secrets' keyed hashes. */
#include "policy/sts.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "common/limits.h"
#include "crypto/seal.h"

typedef struct sts_key {
    kl_jws_key *key; /* owned; holds the private key */
    int64_t created_at, active_at, retire_at;
} sts_key;

typedef struct sts_secret {
    char *app_id; /* lower case */
    char key_id[KL_UUID_LEN + 1];
    unsigned char hash[32];
    int64_t start_at, end_at;
} sts_secret;

struct kl_sts {
    sts_key keys[KL_MAX_KEYRING_KEYS];
    size_t n_keys;
    kl_jws_keyring *ring; /* the public halves, built by finish */
    sts_secret *secrets;  /* sorted by app_id after finish */
    size_t n_secrets, cap_secrets;
    bool finished;
};

int kl_sts_key_aad(const char *kid, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "signing-key:%s", kid ? kid : "");
    return (n < 0 || (size_t)n >= outlen) ? KL_ETOOBIG : 0;
}

int kl_sts_new(kl_sts **out)
{
    *out = calloc(1, sizeof(**out));
    return *out ? 0 : KL_ENOMEM;
}

void kl_sts_free(kl_sts *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_keys; i++)
        kl_jws_key_free(s->keys[i].key);
    kl_jws_keyring_free(s->ring);
    for (size_t i = 0; i < s->n_secrets; i++) {
        free(s->secrets[i].app_id);
        OPENSSL_cleanse(s->secrets[i].hash, sizeof(s->secrets[i].hash));
    }
    free(s->secrets);
    free(s);
}

static bool published(const sts_key *k, int64_t now)
{
    return k->retire_at == 0 || now < k->retire_at;
}

int kl_sts_add_key(kl_sts *s, const kl_keys *keys, const kl_store_signing_key *row)
{
    if (!s || !keys || !row || !row->kid || !row->sealed || !row->alg || s->finished)
        return KL_EINVAL;
    if (row->revoked_at != 0)
        return 0;
    if (s->n_keys >= KL_MAX_KEYRING_KEYS)
        return KL_ETOOBIG;
    unsigned algs = strcmp(row->alg, "ES256") == 0   ? KL_JWS_ES256
                    : strcmp(row->alg, "RS256") == 0 ? KL_JWS_RS256
                                                     : 0;
    if (!algs)
        return KL_EINVAL;
    char aad[KL_MAX_JWS_KID + 32];
    unsigned char *pem = NULL;
    size_t pem_len = 0;
    kl_jws_key *k = NULL;
    int err = kl_sts_key_aad(row->kid, aad, sizeof(aad));
    if (!err)
        err = kl_unseal(keys, aad, row->sealed, &pem, &pem_len);
    if (!err)
        err = kl_jws_key_from_pem((const char *)pem, pem_len, algs, &k);
    if (pem) {
        OPENSSL_cleanse(pem, pem_len);
        free(pem);
    }
    if (err)
        return err == KL_ENOMEM ? err : KL_ECRYPTO;
    /* The kid is the key's own thumbprint: a row whose kid was changed behind our back
     * does not open (aad) or does not match. */
    if (strcmp(kl_jws_key_kid(k), row->kid) != 0) {
        kl_jws_key_free(k);
        return KL_ECRYPTO;
    }
    s->keys[s->n_keys++] = (sts_key){.key = k,
                                     .created_at = row->created_at,
                                     .active_at = row->active_at,
                                     .retire_at = row->retire_at};
    return 0;
}

int kl_sts_add_secret(kl_sts *s, const kl_store_app_secret *row)
{
    if (!s || !row || !row->app_id || !row->key_id || s->finished ||
        strlen(row->key_id) > KL_UUID_LEN)
        return KL_EINVAL;
    if (s->n_secrets == s->cap_secrets) {
        size_t cap = s->cap_secrets ? 2 * s->cap_secrets : 16;
        sts_secret *p = realloc(s->secrets, cap * sizeof(*p));
        if (!p)
            return KL_ENOMEM;
        s->secrets = p;
        s->cap_secrets = cap;
    }
    sts_secret *e = &s->secrets[s->n_secrets];
    memset(e, 0, sizeof(*e));
    if (!(e->app_id = strdup(row->app_id)))
        return KL_ENOMEM;
    kl_ascii_lower_inplace(e->app_id);
    snprintf(e->key_id, sizeof(e->key_id), "%s", row->key_id);
    memcpy(e->hash, row->hash, 32);
    e->start_at = row->start_at;
    e->end_at = row->end_at;
    s->n_secrets++;
    return 0;
}

static int cmp_secret(const void *a, const void *b)
{
    return strcmp(((const sts_secret *)a)->app_id, ((const sts_secret *)b)->app_id);
}

int kl_sts_finish(kl_sts *s)
{
    if (!s || s->finished)
        return KL_EINVAL;
    int err = kl_jws_keyring_new(0, &s->ring);
    for (size_t i = 0; !err && i < s->n_keys; i++)
        err = kl_jws_keyring_add(s->ring, s->keys[i].key);
    if (err)
        return err;
    if (s->n_secrets > 1)
        qsort(s->secrets, s->n_secrets, sizeof(*s->secrets), cmp_secret);
    s->finished = true;
    return 0;
}

const kl_jws_key *kl_sts_signing_key(const kl_sts *s, int64_t now)
{
    const sts_key *best = NULL;
    for (size_t i = 0; s && i < s->n_keys; i++) {
        const sts_key *k = &s->keys[i];
        if (k->active_at > now || !published(k, now))
            continue;
        if (!best || k->active_at > best->active_at ||
            (k->active_at == best->active_at && k->created_at > best->created_at))
            best = k;
    }
    return best ? best->key : NULL;
}

static const sts_key *find_key(const kl_sts *s, const char *kid)
{
    for (size_t i = 0; i < s->n_keys; i++)
        if (strcmp(kl_jws_key_kid(s->keys[i].key), kid) == 0)
            return &s->keys[i];
    return NULL;
}

kl_jws_reason kl_sts_verify(const kl_sts *s, const char *tok, size_t n, int64_t now,
                            kl_jws_verified *v)
{
    memset(v, 0, sizeof(*v));
    if (!s || !s->ring)
        return KL_JWS_KID_UNKNOWN;
    kl_jws_reason r = kl_jws_verify(s->ring, tok, n, v);
    if (r != KL_JWS_OK)
        return r;
    const sts_key *k = find_key(s, v->kid);
    if (!k || !published(k, now)) {
        kl_jws_verified_clear(v);
        return KL_JWS_KID_UNKNOWN;
    }
    return KL_JWS_OK;
}

size_t kl_sts_published(const kl_sts *s, int64_t now)
{
    size_t n = 0;
    for (size_t i = 0; s && i < s->n_keys; i++)
        n += published(&s->keys[i], now);
    return n;
}

json_t *kl_sts_jwks(const kl_sts *s, int64_t now, const char *issuer)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && s && i < s->n_keys; i++) {
        if (!published(&s->keys[i], now))
            continue;
        json_t *jwk = kl_jws_key_public_jwk(s->keys[i].key);
        if (!jwk || (issuer && json_object_set_new(jwk, "issuer", json_string(issuer)) != 0) ||
            json_array_append_new(arr, jwk) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr ? json_pack("{s:o}", "keys", arr) : NULL;
}

int kl_sts_secret_hash(const kl_keys *keys, const char *secret, size_t n, unsigned char out[32])
{
    return kl_keys_hmac(keys, "client-secret", secret, n, out);
}

kl_sts_secret kl_sts_check_secret(const kl_sts *s, const kl_keys *keys, const char *app_id,
                                  const char *secret, size_t n, int64_t now,
                                  char key_id[KL_UUID_LEN + 1])
{
    if (key_id)
        key_id[0] = '\0';
    if (!s || !keys || !app_id || !secret || n == 0 || n > KL_MAX_TOKEN_BYTES)
        return KL_STS_SECRET_WRONG;
    char lower[KL_MAX_PRINCIPAL_ID + 1];
    size_t al = strnlen(app_id, sizeof(lower));
    if (al >= sizeof(lower))
        return KL_STS_SECRET_WRONG;
    kl_ascii_lower_copy(lower, app_id, al);
    unsigned char h[32];
    if (kl_sts_secret_hash(keys, secret, n, h) != 0)
        return KL_STS_SECRET_WRONG;
    /* The secrets of one application are adjacent (sorted); find the first. */
    size_t lo = 0, hi = s->n_secrets;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(s->secrets[mid].app_id, lower) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    kl_sts_secret res = KL_STS_SECRET_WRONG;
    /* Every secret of the application is compared, whichever matches, so the time taken
     * says nothing about which one did. */
    for (size_t i = lo; i < s->n_secrets && strcmp(s->secrets[i].app_id, lower) == 0; i++) {
        const sts_secret *e = &s->secrets[i];
        if (CRYPTO_memcmp(e->hash, h, 32) != 0 || res == KL_STS_SECRET_OK)
            continue;
        if (now < e->start_at)
            continue;
        res = now >= e->end_at ? KL_STS_SECRET_EXPIRED : KL_STS_SECRET_OK;
        if (key_id)
            snprintf(key_id, KL_UUID_LEN + 1, "%s", e->key_id);
    }
    OPENSSL_cleanse(h, sizeof(h));
    return res;
}
