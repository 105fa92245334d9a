/* The KEK check value (see kek_check.h). */
#include "daemon/kek_check.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "crypto/seal.h"
#include "mgmt/arm.h"

/* What is sealed, and the AAD it is bound to: neither is secret; what matters is
 * whether this KEK opens what another node's KEK sealed. */
#define KEK_CHECK_AAD "kek-check"
#define KEK_CHECK_TEXT "keyless kek check v1"

/* A store made before the check value existed (or emptied of it) has none, but may hold
 * API keys sealed with the cluster's KEK: the first account's first key must open with
 * this one before a check value is sealed with it. 0 when it opens or there is no key,
 * KL_ECRYPTO when it does not, a store error otherwise. */
static int check_legacy(kl_store *st, const kl_keys *keys)
{
    kl_store_account **accts = NULL;
    kl_store_key *ks = NULL;
    size_t na = 0, nk = 0;
    int err = kl_store_list_accounts(st, NULL, NULL, &accts, &na);
    for (size_t i = 0; !err && nk == 0 && i < na; i++) {
        kl_store_keys_free(ks, nk);
        ks = NULL;
        nk = 0;
        err = kl_store_get_account_keys(st, accts[i]->name, &ks, &nk);
        if (err || nk == 0)
            continue;
        char aad[64 + KL_MAX_URL];
        unsigned char *pt = NULL;
        size_t n = 0;
        if ((err = kl_arm_apikey_aad(accts[i]->id, ks[0].slot, aad, sizeof(aad))))
            break;
        err = kl_unseal(keys, aad, ks[0].sealed, &pt, &n);
        if (err == KL_EINVAL)
            err = KL_ECRYPTO;
        if (pt) {
            OPENSSL_cleanse(pt, n);
            free(pt);
        }
    }
    kl_store_keys_free(ks, nk);
    kl_store_accounts_free(accts, na);
    return err;
}

int kl_kek_check(kl_store *st, const kl_keys *keys)
{
    char *sealed = NULL;
    unsigned char *pt = NULL;
    size_t n = 0;
    int err = kl_store_get_kek_check(st, &sealed);
    if (err == KL_ENOTFOUND)
        err = check_legacy(st, keys);
    else if (err == 0 && !sealed)
        err = KL_EINTERNAL;
    if (err == 0 && !sealed) {
        char *fresh = NULL;
        err = kl_seal(keys, KEK_CHECK_AAD, KEK_CHECK_TEXT, strlen(KEK_CHECK_TEXT), &fresh);
        if (!err)
            err = kl_store_put_kek_check(st, fresh);
        free(fresh);
        /* Read back: another node starting at the same time may have stored its own. */
        if (!err)
            err = kl_store_get_kek_check(st, &sealed);
    }
    if (err == KL_ECRYPTO)
        goto mismatch; /* the legacy key did not open: nothing was sealed */
    if (err)
        goto out;
    err = sealed ? kl_unseal(keys, KEK_CHECK_AAD, sealed, &pt, &n) : KL_EINTERNAL;
    if (!err && (n != strlen(KEK_CHECK_TEXT) || memcmp(pt, KEK_CHECK_TEXT, n) != 0))
        err = KL_ECRYPTO;
mismatch:
    if (err == KL_ECRYPTO || err == KL_EINVAL) {
        err = KL_ECRYPTO;
        kl_log(KL_LOG_ERROR, "kek_mismatch", "reason",
               "this key-encryption key does not open the store's sealed values: give every "
               "node the cluster's KEK (--kek-file or KEYLESS_KEK)",
               NULL);
    }
out:
    if (pt) {
        OPENSSL_cleanse(pt, n);
        free(pt);
    }
    free(sealed);
    return err;
}
