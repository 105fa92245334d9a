/* The token service's part of the snapshot: the signing key ring (private keys unsealed
 * into the snapshot's memory, the public keys as a JWS key ring) and the keyed hashes of
 * the applications' client secrets. Immutable once finished, so every worker reads it
 * without locks; the STS and the gateway never touch the store. Time decides which key
 * signs and which keys are published (a rotation scheduled ahead takes effect without a
 * rebuild), so every lookup takes "now". */
#ifndef KL_POLICY_STS_H
#define KL_POLICY_STS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "crypto/jws.h"
#include "crypto/keys.h"
#include "store/store.h"

typedef struct kl_sts kl_sts;

/* The additional data a signing key's private key is sealed with: "signing-key:<kid>".
 * KL_ETOOBIG if it does not fit out. */
int kl_sts_key_aad(const char *kid, char *out, size_t outlen);

/* An empty state; *out owned by the caller (kl_sts_free). */
int kl_sts_new(kl_sts **out);
/* Wipes (the private keys are freed through OpenSSL, which clears them) and frees. */
void kl_sts_free(kl_sts *s);

/* Adds a signing key row. A revoked row is left out (its tokens are refused at once).
 * Its sealed private key is opened under keys: KL_ECRYPTO when it does not open (the
 * caller leaves the key out and logs it). KL_ETOOBIG beyond KL_MAX_KEYRING_KEYS. */
int kl_sts_add_key(kl_sts *s, const kl_keys *keys, const kl_store_signing_key *row);
/* Adds a client secret's hash for its application (row->app_id). Strings are copied. */
int kl_sts_add_secret(kl_sts *s, const kl_store_app_secret *row);
/* Builds the lookup structures; nothing can be added afterwards. */
int kl_sts_finish(kl_sts *s);

/* The key that signs at now (the newest unrevoked key whose active_at has come), or NULL
 * when there is none. Borrowed from s. */
const kl_jws_key *kl_sts_signing_key(const kl_sts *s, int64_t now);
/* Verifies tok against the keys published at now (see kl_jws_verify): a key that is
 * retired by now is as unknown as one never seen (KL_JWS_KID_UNKNOWN). */
kl_jws_reason kl_sts_verify(const kl_sts *s, const char *tok, size_t n, int64_t now,
                            kl_jws_verified *v);
/* The JWKS document {"keys":[...]} of the keys published at now, each with "issuer"
 * when issuer is not NULL. A new reference; NULL on allocation failure. */
json_t *kl_sts_jwks(const kl_sts *s, int64_t now, const char *issuer);
/* Number of keys published at now. */
size_t kl_sts_published(const kl_sts *s, int64_t now);

/* What a presented client secret is, for an application. */
typedef enum kl_sts_secret {
    KL_STS_SECRET_OK = 0,  /* matches a secret valid at now */
    KL_STS_SECRET_WRONG,   /* matches none (or one not yet valid) */
    KL_STS_SECRET_EXPIRED, /* matches a secret whose end date has passed */
} kl_sts_secret;

/* Checks secret[0..n) against the application's secrets: its keyed hash (pepper from
 * keys) is compared in constant time with each. key_id (if not NULL) receives the id of
 * the secret it matched ("" otherwise). */
kl_sts_secret kl_sts_check_secret(const kl_sts *s, const kl_keys *keys, const char *app_id,
                                  const char *secret, size_t n, int64_t now,
                                  char key_id[KL_UUID_LEN + 1]);

/* The keyed hash a client secret is stored as (HMAC-SHA-256, label "client-secret"). */
int kl_sts_secret_hash(const kl_keys *keys, const char *secret, size_t n, unsigned char out[32]);

#endif
