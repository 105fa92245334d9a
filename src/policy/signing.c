/* Signing key life cycle (see signing.h). */
#include "policy/signing.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "crypto/seal.h"
#include "policy/sts.h"

kl_signing_action kl_signing_plan(kl_store_signing_key *const *keys, size_t n, int64_t now,
                                  const kl_signing_cfg *cfg)
{
    const kl_store_signing_key *signer = NULL;
    bool pending = false;
    for (size_t i = 0; i < n; i++) {
        const kl_store_signing_key *k = keys[i];
        if (k->revoked_at != 0 || (k->retire_at != 0 && k->retire_at <= now))
            continue;
        if (k->active_at > now)
            pending = true;
        else if (!signer || k->active_at > signer->active_at)
            signer = k;
    }
    if (!signer)
        return KL_SIGNING_FIRST;
    if (pending)
        return KL_SIGNING_NOTHING;
    return now >= signer->active_at + cfg->rotation_s - cfg->lead_s ? KL_SIGNING_SCHEDULED
                                                                    : KL_SIGNING_NOTHING;
}

/* Generates a key and fills *row (kid, alg, sealed; times by the caller). The caller
 * frees row->kid, row->sealed (kl_store_signing_key strings are heap copies here). */
static int make_key(const kl_keys *keys, kl_jws_alg alg, kl_store_signing_key *row)
{
    kl_jws_key *k = NULL;
    char *pem = NULL, aad[KL_MAX_JWS_KID + 32];
    size_t pem_len = 0;
    memset(row, 0, sizeof(*row));
    int err = kl_jws_key_generate(alg, &k);
    if (!err)
        err = kl_jws_key_private_pem(k, &pem, &pem_len);
    if (!err)
        err = kl_sts_key_aad(kl_jws_key_kid(k), aad, sizeof(aad));
    if (!err)
        err = kl_seal(keys, aad, pem, pem_len, &row->sealed);
    if (!err && !(row->kid = strdup(kl_jws_key_kid(k))))
        err = KL_ENOMEM;
    row->alg = (char *)kl_jws_alg_name(alg);
    if (pem) {
        OPENSSL_cleanse(pem, pem_len);
        free(pem);
    }
    kl_jws_key_free(k);
    if (err) {
        free(row->kid);
        free(row->sealed);
        memset(row, 0, sizeof(*row));
    }
    return err;
}

static void row_clear(kl_store_signing_key *row)
{
    free(row->kid);
    free(row->sealed);
    memset(row, 0, sizeof(*row));
}

/* When the keys a new key replaces (signing from active_at) stop being published. */
static int64_t retire_after(const kl_signing_cfg *cfg, int64_t active_at)
{
    return active_at + cfg->token_lifetime_s + KL_TOKEN_CLOCK_SKEW_S;
}

int kl_signing_tick(kl_store *st, const kl_keys *keys, const kl_signing_cfg *cfg, int64_t now,
                    bool *added)
{
    kl_store_signing_key **rows = NULL, row;
    size_t n = 0;
    if (added)
        *added = false;
    int err = kl_store_list_signing_keys(st, &rows, &n);
    if (err)
        return err;
    kl_signing_action a = kl_signing_plan(rows, n, now, cfg);
    kl_store_signing_keys_free(rows, n);
    if (a == KL_SIGNING_NOTHING)
        return 0;
    if ((err = make_key(keys, cfg->alg, &row)))
        return err;
    row.created_at = now;
    row.active_at = a == KL_SIGNING_FIRST ? now : now + cfg->lead_s;
    err = kl_store_add_signing_key(
        st, &row, a == KL_SIGNING_FIRST ? KL_STORE_SK_FIRST : KL_STORE_SK_SCHEDULED, now,
        retire_after(cfg, row.active_at), now - KL_SIGNING_KEEP_S);
    if (!err) {
        if (added)
            *added = true;
        kl_log(KL_LOG_INFO, "signing_key_added", "kid", row.kid, "reason",
               a == KL_SIGNING_FIRST ? "first" : "scheduled", NULL);
    } else if (err == KL_EEXIST) {
        err = 0; /* another node (or an earlier start) got there first */
    }
    row_clear(&row);
    return err;
}

int kl_signing_rotate(kl_store *st, const kl_keys *keys, const kl_signing_cfg *cfg, int64_t now,
                      bool revoke, char kid[KL_MAX_JWS_KID + 1])
{
    kl_store_signing_key row;
    int err = make_key(keys, cfg->alg, &row);
    if (err)
        return err;
    row.created_at = row.active_at = now;
    err = kl_store_add_signing_key(st, &row, revoke ? KL_STORE_SK_REVOKE : KL_STORE_SK_NOW, now,
                                   revoke ? 0 : retire_after(cfg, now), now - KL_SIGNING_KEEP_S);
    if (!err) {
        if (kid)
            snprintf(kid, KL_MAX_JWS_KID + 1, "%s", row.kid);
        kl_log(KL_LOG_INFO, "signing_key_rotated", "kid", row.kid, "previous",
               revoke ? "revoked" : "retiring", NULL);
    }
    row_clear(&row);
    return err;
}
