/* Internal to policy/: the managed identities of a snapshot and the sites and VMs that
 * carry them, with the lookups the identity endpoints make on every request (a compute
 * by kind and name, an identity by client id), as hash tables built once and only read
 * afterwards. The public view is kl_snapshot_compute / kl_snapshot_mi_by_client_id. */
#ifndef KL_POLICY_MI_H
#define KL_POLICY_MI_H

#include <stdbool.h>
#include <stddef.h>

#include "policy/snapshot.h"

typedef struct kl_mi_builder kl_mi_builder;

/* NULL on allocation failure. */
kl_mi_builder *kl_mi_builder_new(void);
/* NULL is fine. */
void kl_mi_builder_free(kl_mi_builder *b);
/* Adds a managed identity; strings are copied, the ids lower-cased. KL_EINVAL on a
 * NULL or empty field. (An object id or client id twice makes finish fail, KL_EEXIST.) */
int kl_mi_builder_identity(kl_mi_builder *b, const char *object_id, const char *client_id,
                           const char *resource_id, bool user_assigned);
/* Adds a site or VM by its ARM id and name (copied). Its system-assigned identity is
 * the one whose resource id is this id (case-insensitive). (A name twice per kind, or
 * an id twice, makes finish fail, KL_EEXIST.) */
int kl_mi_builder_compute(kl_mi_builder *b, kl_compute_kind kind, const char *id, const char *name);
/* Attaches the identity with object id object_id to the host whose ARM id is host_id
 * (any case). Hosts that are not a site or VM added here (accounts) and identities not
 * added (or system-assigned ones) are ignored at finish. */
int kl_mi_builder_attach(kl_mi_builder *b, const char *host_id, const char *object_id);
/* Builds the immutable set and empties the builder (also on failure). *out is owned by
 * the caller (kl_mi_set_free). KL_EEXIST (duplicates, see above), KL_ENOMEM,
 * KL_ETOOBIG. */
int kl_mi_builder_finish(kl_mi_builder *b, kl_mi_set **out);

/* NULL is fine. */
void kl_mi_set_free(kl_mi_set *m);
/* The site or VM called name (case-insensitive), or NULL (also for m == NULL). */
const kl_compute *kl_mi_set_compute(const kl_mi_set *m, kl_compute_kind kind, const char *name);
/* The identity whose client id is client_id (any case), or NULL. */
const kl_mi *kl_mi_set_by_client_id(const kl_mi_set *m, const char *client_id);

#endif
