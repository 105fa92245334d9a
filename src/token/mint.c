/* Access-token minting (see mint.h). */
#include "token/mint.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"

int kl_mint_access(const kl_jws_key *key, const kl_claims_access *in, char **tok)
{
    char payload[KL_MAX_ACCESS_CLAIMS];
    size_t n = 0;
    kl_jws_signer signer;
    *tok = NULL;
    if (!key)
        return KL_EINVAL;
    unsigned algs = kl_jws_key_algs(key);
    kl_jws_alg alg = (algs & KL_JWS_RS256) ? KL_JWS_RS256 : KL_JWS_ES256;
    int err = kl_claims_write_access(in, payload, sizeof(payload), &n);
    if (!err)
        err = kl_jws_key_signer(key, alg, &signer);
    if (!err)
        err = kl_jws_sign_compact(&signer, payload, n, tok);
    return err;
}

int kl_mint_json(const kl_jws_key *key, const json_t *claims, char **tok)
{
    kl_jws_signer signer;
    *tok = NULL;
    if (!key || !json_is_object(claims))
        return KL_EINVAL;
    unsigned algs = kl_jws_key_algs(key);
    kl_jws_alg alg = (algs & KL_JWS_RS256) ? KL_JWS_RS256 : KL_JWS_ES256;
    char *payload = json_dumps(claims, JSON_COMPACT);
    if (!payload)
        return KL_ENOMEM;
    int err = kl_jws_key_signer(key, alg, &signer);
    if (!err)
        err = kl_jws_sign_compact(&signer, payload, strlen(payload), tok);
    free(payload);
    return err;
}
