/* The KEK check value (see kek_check.h). */
#include "daemon/kek_check.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "crypto/seal.h"

/* What is sealed, and the AAD it is bound to: neither is secret; what matters is
 * whether this KEK opens what another node's KEK sealed. */
#define KEK_CHECK_AAD "kek-check"
#define KEK_CHECK_TEXT "keyless kek check v1"

int kl_kek_check(kl_store *st, const kl_keys *keys)
{
    char *sealed = NULL;
    unsigned char *pt = NULL;
    size_t n = 0;
    int err = kl_store_get_kek_check(st, &sealed);
    if (err == KL_ENOTFOUND) {
        char *fresh = NULL;
        err = kl_seal(keys, KEK_CHECK_AAD, KEK_CHECK_TEXT, strlen(KEK_CHECK_TEXT), &fresh);
        if (!err)
            err = kl_store_put_kek_check(st, fresh);
        free(fresh);
        /* Read back: another node starting at the same time may have stored its own. */
        if (!err)
            err = kl_store_get_kek_check(st, &sealed);
    }
    if (err)
        goto out;
    err = sealed ? kl_unseal(keys, KEK_CHECK_AAD, sealed, &pt, &n) : KL_EINTERNAL;
    if (!err && (n != strlen(KEK_CHECK_TEXT) || memcmp(pt, KEK_CHECK_TEXT, n) != 0))
        err = KL_ECRYPTO;
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
