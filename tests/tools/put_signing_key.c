/* A test tool, never part of keyless: puts a signing key the test knows into a store, so
 * hostile-token tests can present correctly signed tokens with bad claims. The key is
 * sealed under the KEK (KEYLESS_KEK, base64) exactly as keylessd seals its own, and is
 * published (accepted) but never signs: it becomes active only in ten years.
 * Usage: kl-put-signing-key STORE-URL PRIVATE-KEY.pem; prints the kid. Run it while
 * keylessd is stopped (SQLite), or let the store watcher pick it up (PostgreSQL). */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "crypto/jws.h"
#include "crypto/keys.h"
#include "crypto/seal.h"
#include "policy/sts.h"
#include "store/store.h"

int main(int argc, char **argv)
{
    const char *kek_b64 = getenv("KEYLESS_KEK");
    unsigned char kek[64];
    char pem[16384], aad[256], *priv = NULL;
    size_t priv_len = 0;
    kl_keys *keys = NULL;
    kl_store *st = NULL;
    kl_jws_key *k = NULL;
    kl_store_signing_key row = {0};
    int rc = 1;
    if (argc != 3 || !kek_b64) {
        fprintf(stderr, "usage: KEYLESS_KEK=... kl-put-signing-key STORE-URL KEY.pem\n");
        return 2;
    }
    FILE *f = fopen(argv[2], "r");
    size_t n = f ? fread(pem, 1, sizeof(pem) - 1, f) : 0;
    if (f)
        fclose(f);
    pem[n] = '\0';
    int kl = kl_b64_decode(kek_b64, strlen(kek_b64), kek, sizeof(kek));
    if (n == 0 || kl != 32 || kl_keys_from_bytes(kek, 32, &keys) != 0 ||
        kl_jws_key_from_pem(pem, n, KL_JWS_RS256, &k) != 0 ||
        kl_jws_key_private_pem(k, &priv, &priv_len) != 0 ||
        kl_sts_key_aad(kl_jws_key_kid(k), aad, sizeof(aad)) != 0 ||
        kl_seal(keys, aad, priv, priv_len, &row.sealed) != 0 || kl_store_open(argv[1], &st) != 0) {
        fprintf(stderr, "kl-put-signing-key: cannot prepare the key or open the store\n");
        goto out;
    }
    int64_t now = kl_now_unix();
    row.kid = (char *)kl_jws_key_kid(k);
    row.alg = "RS256";
    row.created_at = now;
    row.active_at = now + 10LL * 365 * 86400;
    if (kl_store_add_signing_key(st, &row, KL_STORE_SK_SCHEDULED, now, 0, 0) != 0) {
        fprintf(stderr, "kl-put-signing-key: the store refused the key\n");
        goto out;
    }
    printf("%s\n", row.kid);
    rc = 0;
out:
    if (priv) {
        OPENSSL_cleanse(priv, priv_len);
        free(priv);
    }
    free(row.sealed);
    kl_jws_key_free(k);
    kl_store_close(st);
    kl_keys_free(keys);
    OPENSSL_cleanse(kek, sizeof(kek));
    return rc;
}
