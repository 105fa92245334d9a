/* Building the snapshot from the store: the only place the hot path's view of the
 * world is made. Runs on the control thread (it reads the whole store), after each
 * committed change and at start. */
#ifndef KL_POLICY_BUILD_H
#define KL_POLICY_BUILD_H

#include <stddef.h>

#include "common/limits.h"
#include "crypto/keys.h"
#include "policy/snapshot.h"
#include "store/store.h"

/* Reads everything from st in one read transaction and builds a snapshot: accounts,
 * the API key index, deployments with their upstream credentials unsealed into the
 * snapshot's memory (cleansed when it is freed), the tenant, the principals and the
 * RBAC index compiled from the custom roles and the enabled principals' assignments. *out holds one
 * reference and is not yet published (generation 0). A deployment whose sealed
 * credential does not open (wrong KEK, a tampered row) is built as
 * KL_BACKEND_UNAVAILABLE, so one bad row costs that deployment and nothing else (logged
 * on every build here; kl_policy_apply logs it once). Errors: KL_EINVAL, a store error,
 * KL_EINTERNAL or KL_EEXIST (rows that contradict each other), KL_ENOMEM. */
int kl_policy_build(kl_store *st, const kl_keys *keys, kl_snapshot **out);

/* kl_policy_build followed by kl_snapshot_publish(h, ...). On failure the current
 * snapshot stays published and the error is returned (and logged). */
int kl_policy_rebuild(kl_store *st, const kl_keys *keys, kl_snapshot_holder *h);

/* The control thread's builder: the store, the keys and the holder it publishes to,
 * and the memory of the broken rows already reported (keyed by row and version), so a
 * deployment whose credential does not open is logged once, not on every rebuild. */
typedef struct kl_policy kl_policy;

/* st, keys and h are borrowed and must outlive the context. KL_EINVAL, KL_ENOMEM. */
int kl_policy_new(kl_store *st, const kl_keys *keys, kl_snapshot_holder *h, kl_policy **out);
/* Stops the compactor thread (see kl_policy_apply) and waits for it; call before the
 * store closes. Idempotent; kl_policy_free calls it too. NULL is fine. */
void kl_policy_stop(kl_policy *p);
/* NULL is fine. */
void kl_policy_free(kl_policy *p);
/* Snapshots built from now on take their keys' usage cells from u (borrowed; it must
 * outlive every snapshot built, the published one included). Before the first apply. */
void kl_policy_set_keyusage(kl_policy *p, kl_keyusage *u);
/* Brings the published snapshot up to the store and publishes it. When only role
 * assignments changed since the last build (kl_store_load_since) and nothing is fenced,
 * that costs what the change touched: the new snapshot derives its RBAC index from the
 * last one (kl_snapshot_derive), and once a chain of derives passes half the overlay
 * limits a background compactor rebuilds in full. Otherwise it builds a snapshot from
 * the whole store, which lifts every fence (the new snapshot holds every saved change). When it
 * cannot be built, the current snapshot stays published, scope (the saved change's ARM scope; "/"
 * for a change of unknown scope, such as another node's; NULL when there is no change to cover) is
 * fenced so that nothing under or above it is served stale, and the error is returned (logged).
 * Safe from any thread: calls on one context are serialised. */
int kl_policy_apply(kl_policy *p, const char *scope);

/* The additional data a deployment's upstream credential is sealed with, binding it to
 * its account, deployment and upstream URL (so a sealed value copied to another row, or
 * a row whose URL was changed behind our back, does not open):
 * "upstream-credential:<lower-case account name>:<deployment name>:<url>".
 * Writes a NUL-terminated string into out; KL_ETOOBIG if it does not fit. */
#define KL_POLICY_AAD_MAX (64 + 2 * KL_MAX_NAME + KL_MAX_URL)
int kl_policy_credential_aad(const char *account_name, const char *deployment, const char *url,
                             char *out, size_t outlen);

#endif
