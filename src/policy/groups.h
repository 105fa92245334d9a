/* Internal to policy/: group memberships collected while a snapshot is built, and the
 * transitive closure computed once at the end, so that a request checks a principal and
 * all its groups without walking anything (kl_snapshot_rbac_check). */
#ifndef KL_POLICY_GROUPS_H
#define KL_POLICY_GROUPS_H

#include <stddef.h>

#include "policy/snapshot.h"

typedef struct kl_groups_builder kl_groups_builder;

/* Records that member is a direct member of group (object ids, copied lower-cased);
 * *gb is created on the first call. KL_EINVAL, KL_ENOMEM. */
int kl_groups_builder_add(kl_groups_builder **gb, const char *group, const char *member);
void kl_groups_builder_free(kl_groups_builder *gb);

/* Sets principals[i].groups / n_groups for every principal: those of its transitive
 * groups that hold role assignments in ix (kl_rbac_index_holds: a group without any can
 * grant nothing, so checks need not carry it), nearest first (breadth first), each once.
 * The walk stops at KL_MAX_GROUP_MEMBERSHIPS groups (a principal in more keeps the
 * nearest and the rest are left out, which only ever grants less; logged). find maps an
 * object id to its principal in principals (NULL: unknown, that membership is skipped).
 * Because of the filter, a snapshot whose index changes a group's assignments must be
 * built in full (policy/build.c derives only for principals that are no group). The pointers go
 * into *ids, a new array owned by the caller (free) that must outlive principals' use. Memberships
 * are consumed; gb may be NULL (no groups: *ids NULL). KL_ENOMEM. */
int kl_groups_finish(kl_groups_builder *gb, kl_principal *principals, size_t n,
                     const kl_rbac_index *ix,
                     const kl_principal *(*find)(const void *ctx, const char *oid), const void *ctx,
                     const char ***ids);

#endif
