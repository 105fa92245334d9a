/* Access-token minting (see mint.h). */
#include "token/mint.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"

int kl_mint_access(const kl_jws_key *key, const kl_claims_access *in, char **tok)
{
    json_t *claims = NULL;
    char *payload = NULL;
    kl_jws_signer signer;
    *tok = NULL;
    if (!key)
        return KL_EINVAL;
    unsigned algs = kl_jws_key_algs(key);
    kl_jws_alg alg = (algs & KL_JWS_RS256) ? KL_JWS_RS256 : KL_JWS_ES256;
    int err = kl_claims_build_access(in, &claims);
    if (!err && !(payload = json_dumps(claims, JSON_COMPACT)))
        err = KL_ENOMEM;
    if (!err)
        err = kl_jws_key_signer(key, alg, &signer);
    if (!err)
        err = kl_jws_sign_compact(&signer, payload, strlen(payload), tok);
    json_decref(claims);
    free(payload);
    return err;
}
