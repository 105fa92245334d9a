/* Minting our access tokens: the one place a claim set becomes a signed JWS, shared by
 * the token service (client credentials) and the managed-identity endpoints, so both
 * sign the same way with the same key choice. */
#ifndef KL_TOKEN_MINT_H
#define KL_TOKEN_MINT_H

#include "crypto/jws.h"
#include "token/claims.h"

/* Writes the v1 claim set of in (kl_claims_write_access) and signs it with key (RS256
 * when the key has it, else ES256). *tok is a malloc'd compact JWS the caller wipes
 * (it is a bearer credential) and frees. KL_EINVAL for a public-only key or claims
 * kl_claims_write_access refuses; KL_ENOMEM; KL_ECRYPTO. */
int kl_mint_access(const kl_jws_key *key, const kl_claims_access *in, char **tok);

/* Signs the claim set claims (a JSON object, written compact) with key as kl_mint_access
 * does: the id_token of user sign-in, whose claims are the OpenID Connect ones rather
 * than an access token's. *tok as for kl_mint_access. KL_EINVAL (not an object, or a
 * public-only key), KL_ENOMEM, KL_ETOOBIG, KL_ECRYPTO. */
int kl_mint_json(const kl_jws_key *key, const json_t *claims, char **tok);

#endif
