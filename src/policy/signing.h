/* The life of the token service's signing keys: the first key (several nodes may start
 * at once: the store decides inside one transaction, so one key results), scheduled
 * rotation (a new key is published lead_s before it starts signing, and the one it
 * replaces stays published until the last token it may have signed has expired) and an
 * operator's rotation, optionally revoking every earlier key at once. Runs on the
 * control thread and at start-up (it generates keys and writes the store). */
#ifndef KL_POLICY_SIGNING_H
#define KL_POLICY_SIGNING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/limits.h"
#include "crypto/jws.h"
#include "crypto/keys.h"
#include "store/store.h"

#define KL_SIGNING_DEFAULT_ROTATION_DAYS 30
/* Retired and revoked keys are kept (for `signing-key list`) this long, then deleted. */
#define KL_SIGNING_KEEP_S (30 * 86400)
#define KL_SIGNING_CHECK_S 60 /* how often the control thread checks whether a key is due */

typedef struct kl_signing_cfg {
    int64_t rotation_s;       /* a key signs for this long before its successor takes over */
    int64_t lead_s;           /* publish-before-signing lead; KL_SIGNING_PUBLISH_LEAD_S */
    int64_t token_lifetime_s; /* the longest token a key may have signed */
    kl_jws_alg alg;           /* KL_JWS_RS256 (default) or KL_JWS_ES256 */
} kl_signing_cfg;

/* What kl_signing_tick should do, decided from the keys alone (a pure function). */
typedef enum kl_signing_action {
    KL_SIGNING_NOTHING = 0,
    KL_SIGNING_FIRST,     /* no key signs now: add one that signs at once */
    KL_SIGNING_SCHEDULED, /* the signer is due for rotation: add one that signs in lead_s */
} kl_signing_action;

/* Decides from keys[0..n) (store rows, revoked ones included) at now. */
kl_signing_action kl_signing_plan(kl_store_signing_key *const *keys, size_t n, int64_t now,
                                  const kl_signing_cfg *cfg);

/* Reads the keys and does what kl_signing_plan says: generates a key, seals it under
 * keys and adds it (KL_STORE_SK_FIRST or _SCHEDULED, so concurrent nodes add one
 * between them). *added (may be NULL) tells whether this call added one. */
int kl_signing_tick(kl_store *st, const kl_keys *keys, const kl_signing_cfg *cfg, int64_t now,
                    bool *added);

/* An operator's rotation: a new key that signs from now on; the earlier keys stay
 * published until their last token expires, or with revoke are refused at once.
 * kid (if not NULL) receives the new key's kid. */
int kl_signing_rotate(kl_store *st, const kl_keys *keys, const kl_signing_cfg *cfg, int64_t now,
                      bool revoke, char kid[KL_MAX_JWS_KID + 1]);

#endif
