/* Azure-style role-based access control: role definitions, role assignments, and an
 * immutable compiled index that answers "may this principal perform this action at this
 * scope?" in time independent of how many assignments exist. The index never touches
 * the store; it is built from rows the caller read and then only read, from any thread.
 *
 * Evaluation rules (Azure's):
 *  - additive: access is allowed if any assignment of the principal (or of one of the
 *    principals passed together, e.g. its groups) grants it; nothing denies;
 *  - a role grants a control action if one of its actions matches and none of its
 *    notActions does; data actions likewise with dataActions and notDataActions. A Not*
 *    list only subtracts inside its own role: another role granting the action wins;
 *  - control and data planes are separate: actions never grant data actions, so Owner's
 *    "*" does not allow inference;
 *  - an assignment at a scope covers that scope and everything below it, on whole path
 *    segments only (see scope.h). */
#ifndef KL_RBAC_RBAC_H
#define KL_RBAC_RBAC_H

#include <stdbool.h>
#include <stddef.h>

/* A role definition. For built-ins the data is static; custom roles are copied into the
 * index at build time, so the caller's strings need only live through the build. */
typedef struct kl_rbac_role_def {
    const char *id;          /* the role's GUID (the ARM "name"), e.g. Owner's 8e3af657-... */
    const char *name;        /* roleName, unique case-insensitively */
    const char *description; /* may be NULL or "" */
    bool builtin;            /* roleType BuiltInRole; custom roles pass false */
    const char *const *actions;
    size_t n_actions;
    const char *const *not_actions;
    size_t n_not_actions;
    const char *const *data_actions;
    size_t n_data_actions;
    const char *const *not_data_actions;
    size_t n_not_data_actions;
    const char *const *assignable_scopes; /* built-ins: just "/" */
    size_t n_assignable_scopes;
} kl_rbac_role_def;

/* A role assignment as the store keeps it. */
typedef struct kl_rbac_assignment {
    const char *id;                 /* its ARM id or GUID name; unique (case-insensitive) */
    const char *principal_id;       /* object id of a user, group or service principal */
    const char *role_definition_id; /* the role GUID, or any ARM id ending in
                                       "/roleDefinitions/{guid}" */
    const char *scope;              /* any form kl_scope_parse accepts */
} kl_rbac_assignment;

typedef struct kl_rbac_index kl_rbac_index;

/* The answer to a check. action and scope point at the caller's strings as passed; on
 * allow, grant identifies the assignment that granted it (see kl_rbac_decision_grant),
 * on deny it is NULL. Resolving the grant is left to callers that want it, so the check
 * itself never touches the assignment's record. */
typedef struct kl_rbac_decision {
    bool allowed;
    bool data_action;
    const char *action;
    const char *scope;
    const void *grant; /* opaque, inside the index */
} kl_rbac_decision;

/* The assignment behind an allow; every pointer lives as long as the index. */
typedef struct kl_rbac_grant {
    const char *assignment_id;
    const char *principal_id;     /* the principal (of those checked) it is assigned to */
    const char *assignment_scope; /* canonical form */
    const char *role_id;          /* role GUID */
    const char *role_name;
} kl_rbac_grant;

/* Validates a custom role definition: id a GUID that no built-in uses, name 1..
 * KL_MAX_ROLE_NAME bytes and not a built-in's name, description at most
 * KL_MAX_ROLE_DESCRIPTION, every pattern valid (kl_rbac_pattern_check), 1..
 * KL_MAX_ASSIGNABLE_SCOPES valid assignable scopes, builtin false.
 * 0, KL_EINVAL, KL_ETOOBIG or KL_ECONFLICT (clashes with a built-in); a short reason goes
 * to err[errlen] when err is not NULL. */
int kl_rbac_role_validate(const kl_rbac_role_def *role, char *err, size_t errlen);

/* True if scope lies at or below one of role's assignable scopes (false if it does not
 * parse). The control plane refuses assignments elsewhere. */
bool kl_rbac_role_assignable_at(const kl_rbac_role_def *role, const char *scope);

/* Builds an index from the custom roles and the assignments; the built-in roles are
 * always included and cannot be replaced. Inputs are copied; the caller keeps them.
 * Errors (with a short reason in err[errlen] if err is not NULL; *out stays NULL):
 *   KL_EINVAL   a role or assignment is malformed (bad scope, principal, ids, pattern)
 *   KL_ETOOBIG  something exceeds a limit in common/limits.h
 *   KL_ECONFLICT a custom role clashes with a built-in, or an assignment lies outside
 *               its role's assignable scopes
 *   KL_EEXIST   two roles share an id or name, or two assignments an id
 *   KL_ENOTFOUND an assignment names a role that is not defined
 *   KL_ENOMEM
 * The store keeps those invariants, so an error here means it failed to. */
int kl_rbac_index_build(const kl_rbac_role_def *custom_roles, size_t n_roles,
                        const kl_rbac_assignment *assignments, size_t n_assignments,
                        kl_rbac_index **out, char *err, size_t errlen);
/* Indexes are reference counted: free releases one reference (NULL is fine) and frees
 * the index with the last one; retain adds one. Safe from any thread. */
void kl_rbac_index_free(kl_rbac_index *ix);
void kl_rbac_index_retain(kl_rbac_index *ix);

/* A new index that answers as old would with the assignments of principals[0..
 * n_principals) replaced by assignments[0..n_assignments) (their complete new set:
 * each must be of one of those principals; none means they now have none). Costs what
 * the overridden principals hold, not what old holds: the result shares old's base
 * (old itself, or what old was derived from) by reference and keeps its own tables for
 * every principal overridden since that base was built, old's overrides included.
 * Roles are the base's: a change of roles needs kl_rbac_index_build. *out owned by the
 * caller. Errors as kl_rbac_index_build, and KL_ETOOBIG once the overrides would pass
 * KL_RBAC_MAX_OVERLAY_PRINCIPALS or KL_RBAC_MAX_OVERLAY_ASSIGNMENTS (build in full). */
int kl_rbac_index_derive(const kl_rbac_index *old, const char *const *principals,
                         size_t n_principals, const kl_rbac_assignment *assignments,
                         size_t n_assignments, kl_rbac_index **out, char *err, size_t errlen);
/* For a derived index: how many principals it overrides (and, in *n_assignments when
 * not NULL, how many assignments it holds for them); 0 for a full build. */
size_t kl_rbac_index_overlay(const kl_rbac_index *ix, size_t *n_assignments);

/* May principal_id perform action at scope? data_action selects the plane: false checks
 * actions/notActions, true checks dataActions/notDataActions. Returns 0 with the answer
 * in *out, or KL_EINVAL / KL_ETOOBIG for a malformed principal, action or scope, in
 * which case *out is a deny as well (callers may treat any non-allow as 403).
 * Cost: one principal lookup, and per level of the scope (at most KL_MAX_SCOPE_DEPTH)
 * one lookup in the small table of scopes that hold assignments; a principal with more
 * than ten such scopes adds one probe per level it uses. Never allocates (about 10 KiB
 * of stack); safe from any number of threads; the decision's grant points into ix. */
int kl_rbac_check(const kl_rbac_index *ix, const char *principal_id, const char *action,
                  bool data_action, const char *scope, kl_rbac_decision *out);

/* The same for a principal and its groups: allowed if any of principal_ids[0..n) is
 * (1 <= n <= KL_MAX_CHECK_PRINCIPALS). */
int kl_rbac_check_principals(const kl_rbac_index *ix, const char *const *principal_ids, size_t n,
                             const char *action, bool data_action, const char *scope,
                             kl_rbac_decision *out);

/* Fills *g from an allowed decision and returns true; false (g untouched) on deny. */
bool kl_rbac_decision_grant(const kl_rbac_decision *d, kl_rbac_grant *g);

/* Writes a one-line reason, e.g. "role assignment X (role 'Owner', 8e3af657-...) at
 * /subscriptions/s grants Microsoft.Foo/bar/read to P" or "no role assignment grants
 * Microsoft.Foo/bar/read at /subscriptions/s". Formatting is kept out of the check so
 * denials in the hot path cost nothing extra. Returns what snprintf returns. */
int kl_rbac_decision_reason(const kl_rbac_decision *d, char *buf, size_t len);

/* A role of the index by GUID or full role definition id (case-insensitive), built-in
 * or custom; NULL if none. The pointer lives as long as the index. */
const kl_rbac_role_def *kl_rbac_index_role(const kl_rbac_index *ix, const char *role_definition_id);

/* True if principal_id (either case) holds at least one assignment in ix: only such a
 * principal can ever be granted anything by a check. One lookup; never allocates. */
bool kl_rbac_index_holds(const kl_rbac_index *ix, const char *principal_id);

/* Counts, for metrics and tests. */
size_t kl_rbac_index_role_count(const kl_rbac_index *ix);
size_t kl_rbac_index_assignment_count(const kl_rbac_index *ix);

#endif
