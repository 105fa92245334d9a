/* Internal to policy/: assembling a snapshot. The builder collects rows (in any order),
 * then kl_snapshot_builder_finish() resolves references, sorts, builds the lookup
 * tables and hands out an immutable snapshot with one reference. */
#ifndef KL_POLICY_SNAPSHOT_BUILDER_H
#define KL_POLICY_SNAPSHOT_BUILDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/snapshot.h"

typedef struct kl_snapshot_builder kl_snapshot_builder;

/* NULL on allocation failure. */
kl_snapshot_builder *kl_snapshot_builder_new(void);
/* Frees everything collected (cleansing credentials). NULL is fine. */
void kl_snapshot_builder_free(kl_snapshot_builder *b);

/* Adds an account; strings are copied. KL_EINVAL on NULL fields. (Two accounts with
 * the same name, case-insensitively, make finish fail with KL_EEXIST.) */
int kl_snapshot_builder_account(kl_snapshot_builder *b, const char *id, const char *name,
                                const char *subscription, const char *resource_group,
                                const char *location, bool disable_local_auth);
/* Sets the network rules of the account called account_name, added before (it is
 * normally the last one). rules may be NULL (no ipRules); ownership of rules is taken,
 * also on error. KL_EINVAL if no such account was added. */
int kl_snapshot_builder_account_network(kl_snapshot_builder *b, const char *account_name,
                                        bool public_access_disabled, bool default_deny,
                                        kl_netrules *rules);
/* The registry key usage cells come from (borrowed; must outlive every snapshot built).
 * Without one, accounts have no usage cells. */
void kl_snapshot_builder_keyusage(kl_snapshot_builder *b, kl_keyusage *u);
/* kl_snapshot_builder_key with the key's creation time and the stored start of the last
 * day it was used (0 = never), for its usage cell. */
int kl_snapshot_builder_key_ex(kl_snapshot_builder *b, const char *account_name, int slot,
                               const unsigned char index[32], int64_t created_at,
                               int64_t last_used);
/* Adds an API key index (slot 1 or 2) for the account called account_name (resolved at
 * finish). */
int kl_snapshot_builder_key(kl_snapshot_builder *b, const char *account_name, int slot,
                            const unsigned char index[32]);
/* Adds a deployment. For KL_BACKEND_ECHO the upstream fields must be NULL; for
 * KL_BACKEND_UPSTREAM url and upstream_model are required and credential may be NULL.
 * model_name NULL means "". All strings are copied (credential cleansed on free). */
int kl_snapshot_builder_deployment(kl_snapshot_builder *b, const char *account_name,
                                   const char *name, const char *model_name,
                                   kl_backend_kind backend, const char *url,
                                   const char *upstream_model, const char *credential);
/* Adds a deployment that exists but cannot be served (KL_BACKEND_UNAVAILABLE: no
 * upstream fields, no credential); model_name NULL means "". Strings are copied. */
int kl_snapshot_builder_deployment_unavailable(kl_snapshot_builder *b, const char *account_name,
                                               const char *name, const char *model_name);
/* Sets the tenant id and the local administrator's object id (strings copied). */
int kl_snapshot_builder_tenant(kl_snapshot_builder *b, const char *tenant_id,
                               const char *admin_object_id);
/* Adds a principal; strings are copied, ids lower-cased. app_id may be NULL. (Two
 * principals with the same object id or app id make finish fail with KL_EEXIST.) */
int kl_snapshot_builder_principal(kl_snapshot_builder *b, const char *object_id, const char *app_id,
                                  kl_principal_type type, const char *display_name, bool enabled);
/* Records that member is a direct member of group (object ids; copied). Memberships
 * naming no principal added are ignored at finish; closures are computed there. */
int kl_snapshot_builder_group_member(kl_snapshot_builder *b, const char *group, const char *member);
/* Hands the builder a compiled RBAC index (ownership taken, also on error; a second
 * call replaces the first). Without one, finish builds an index of the built-in roles
 * alone. */
int kl_snapshot_builder_rbac(kl_snapshot_builder *b, kl_rbac_index *ix);
/* Hands the builder the application certificates (ownership taken, also on error). */
int kl_snapshot_builder_appcreds(kl_snapshot_builder *b, kl_appcreds *ac);
/* Hands the builder the finished token-service state (ownership taken, also on error;
 * a second call replaces the first). Without one, finish makes an empty one. */
int kl_snapshot_builder_sts(kl_snapshot_builder *b, kl_sts *sts);
/* Hands the builder the managed identities and the sites and VMs that carry them
 * (policy/mi.h; ownership taken, also on error). Without it the snapshot has none. */
int kl_snapshot_builder_mis(kl_snapshot_builder *b, kl_mi_set *m);
/* Hands the builder the finished index of launch secrets (policy/idheaders.h; ownership
 * taken, also on error). Without it the snapshot has none. */
int kl_snapshot_builder_idheaders(kl_snapshot_builder *b, kl_idheaders *h);
/* Builds the snapshot (generation 0 until published) and empties the builder.
 * KL_EINTERNAL if a key or deployment names an unknown account, KL_EEXIST on a
 * duplicate account name, key index or deployment, KL_ENOMEM. *out holds one
 * reference. On failure the builder is emptied too (free it). */
int kl_snapshot_builder_finish(kl_snapshot_builder *b, kl_snapshot **out);

/* A snapshot that is old with its RBAC index replaced by ix (ownership taken, also on
 * error), sharing every other table and string with old by reference (old may be
 * released at once). For a change that touched role assignments only: see
 * kl_rbac_index_derive. *out holds one reference, generation 0. KL_EINVAL, KL_ENOMEM. */
int kl_snapshot_derive(kl_snapshot *old, kl_rbac_index *ix, kl_snapshot **out);

/* Sets the generation of s, which no reader sees yet: the holder numbers a snapshot as it
 * publishes it (snapshot_holder.c). */
void kl_snapshot_set_generation(kl_snapshot *s, uint64_t g);

#endif
