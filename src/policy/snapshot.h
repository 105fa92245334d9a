/* The immutable snapshot the hot path reads: everything a request needs to be
 * authenticated and served, built from the store after each committed change and
 * published by an atomic pointer swap. Readers never touch the store.
 *
 * Lifetime: kl_snapshot_acquire() returns a counted reference that stays valid (and
 * unchanged) until kl_snapshot_release(), however many newer snapshots are published
 * meanwhile. Every pointer obtained from a snapshot lives as long as that reference. */
#ifndef KL_POLICY_SNAPSHOT_H
#define KL_POLICY_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "directory/directory.h"
#include "policy/appcreds.h"
#include "policy/keyusage.h"
#include "policy/netrules.h"
#include "rbac/rbac.h"

typedef struct kl_snapshot kl_snapshot;
typedef struct kl_snapshot_holder kl_snapshot_holder;
typedef struct kl_fence kl_fence;
typedef struct kl_sts kl_sts; /* policy/sts.h */

typedef struct kl_account {
    const char *id;   /* full ARM id, as created (case preserved) */
    const char *name; /* account name; unique across the daemon (case-insensitive) */
    const char *subscription;
    const char *resource_group;
    const char *location;
    bool disable_local_auth; /* true: API keys get 403 AuthenticationTypeDisabled */
    /* Network rules, checked before authentication (see kl_snapshot_network_check). */
    bool public_access_disabled; /* publicNetworkAccess: Disabled (private listeners only) */
    bool default_deny;           /* networkAcls.defaultAction: Deny */
    const kl_netrules *ip_rules; /* networkAcls.ipRules compiled; NULL = none */
    /* Per key slot (index slot - 1): its usage cell (NULL without a key or a registry)
     * and when the key was created (unix seconds, 0 = no key). */
    kl_keyusage_cell *usage[2];
    int64_t key_created[2];
} kl_account;

/* What the network rules say about a caller (see kl_snapshot_network_check). */
typedef enum kl_network_verdict {
    KL_NETWORK_ALLOWED = 0,
    KL_NETWORK_PUBLIC_DISABLED, /* publicNetworkAccess Disabled, not a private listener */
    KL_NETWORK_DENIED           /* defaultAction Deny and no ipRule matches */
} kl_network_verdict;

/* Judges a caller of account a: on a private listener (private_listener) the account is
 * always reachable (its rules are for the public network, as private endpoints are on
 * Azure); elsewhere publicNetworkAccess Disabled refuses, and defaultAction Deny refuses
 * a caller whose address (caller, NULL when unknown: matches no rule) is in no ipRule.
 * No allocation. */
kl_network_verdict kl_snapshot_network_check(const kl_account *a, bool private_listener,
                                             const kl_netaddr *caller);

/* KL_BACKEND_UNAVAILABLE: a deployment the snapshot knows but cannot serve (its sealed
 * upstream credential did not open); the data plane answers it 503 and never forwards. */
typedef enum kl_backend_kind {
    KL_BACKEND_ECHO = 0,
    KL_BACKEND_UPSTREAM,
    KL_BACKEND_UNAVAILABLE
} kl_backend_kind;

typedef struct kl_deployment {
    const kl_account *account;
    const char *name;       /* deployment name (the OpenAI "model" on v1 routes) */
    const char *model_name; /* properties.model.name as given (may be "") */
    kl_backend_kind backend;
    /* Upstream only (NULL for echo and unavailable): base URL such as "http://127.0.0.1:8000/v1"
     * (the OpenAI route, e.g. "/chat/completions", is appended), the model name sent upstream, and
     * the unsealed credential sent as "Authorization: Bearer" (or NULL). */
    const char *upstream_url;
    const char *upstream_model;
    const char *upstream_credential;
} kl_deployment;

/* A principal of the directory. A disabled principal is granted nothing: its role
 * assignments are left out of the snapshot's RBAC index. */
typedef struct kl_principal {
    const char *object_id; /* lower-case GUID */
    const char *app_id;    /* lower-case client id; NULL for users and groups */
    kl_principal_type type;
    const char *display_name;
    bool enabled; /* accountEnabled */
    /* Its groups that hold role assignments, transitively (a member of G1 in G2 has
     * both), nearest first, each once: object ids pointing into the snapshot; NULL when
     * none. Computed when the snapshot is built, so checks never walk memberships. */
    const char *const *groups;
    size_t n_groups;
} kl_principal;

/* A managed identity (see store.h): a principal of type ManagedIdentity and what ties
 * it to ARM. Strings are borrowed from the snapshot. */
typedef struct kl_mi {
    const char *object_id;   /* the identity's principal id (GUID, lower case) */
    const char *client_id;   /* its client id (GUID, lower case) */
    const char *resource_id; /* user-assigned: the identity's own ARM id; system-assigned: the
                                ARM id of the resource that carries it (as created) */
    bool user_assigned;
} kl_mi;

typedef enum kl_compute_kind { KL_COMPUTE_SITE = 0, KL_COMPUTE_VM } kl_compute_kind;

/* A site (Microsoft.Web/sites) or VM (Microsoft.Compute/virtualMachines) with the
 * identities it carries. Borrowed from the snapshot. */
typedef struct kl_compute {
    kl_compute_kind kind;
    const char *id; /* ARM id as created */
    const char *name;
    const kl_mi *system;      /* NULL when it has none */
    const kl_mi *const *user; /* attached user-assigned identities, ordered by lower-case ARM id */
    size_t n_user;
} kl_compute;

typedef struct kl_mi_set kl_mi_set;       /* policy/mi.h */
typedef struct kl_idheaders kl_idheaders; /* policy/idheaders.h */

/* --- publishing (control thread) and reading (any thread) --- */
kl_snapshot_holder *kl_snapshot_holder_new(void);
/* Frees the holder and releases its current snapshot. */
void kl_snapshot_holder_free(kl_snapshot_holder *h);
/* Makes s current; takes ownership of the caller's reference to s. */
void kl_snapshot_publish(kl_snapshot_holder *h, kl_snapshot *s);
/* Returns a new reference to the current snapshot, or NULL before the first publish. */
kl_snapshot *kl_snapshot_acquire(kl_snapshot_holder *h);
/* Cheap check for readers that cache a reference: the generation of the current one. */
uint64_t kl_snapshot_holder_generation(const kl_snapshot_holder *h);
void kl_snapshot_retain(kl_snapshot *s);

/* --- fencing: what the published snapshot must not be trusted for ---
 * A change saved to the store that could not be built into a snapshot leaves the
 * current snapshot stale for that change's scope. kl_policy_apply fences the scope (on
 * the control thread for this node's changes, on the store's watcher thread, fencing
 * everything, for another node's);
 * readers refuse (503) every request touching a fenced scope until a snapshot built
 * after the change is published, which lifts every fence at once. The fence set is an
 * immutable, counted object swapped under the holder's lock, like the snapshot. */

/* Fences scope (an ARM scope such as "/subscriptions/x/resourceGroups/g", compared
 * case-insensitively; "/" or "" fences everything). Callers serialise fencing with
 * building and publishing (kl_policy_apply does), so a snapshot built before the change
 * cannot lift the fence. Never fails:
 * if the new set cannot be allocated, or would hold more than KL_MAX_FENCED_SCOPES,
 * everything is fenced (a set made in advance). */
void kl_snapshot_fence(kl_snapshot_holder *h, const char *scope);
/* True if any scope is fenced now. */
bool kl_snapshot_fenced(kl_snapshot_holder *h);
/* The current snapshot (a new reference, NULL before the first publish) and, in *fence,
 * a new reference to the current fence set (NULL when nothing is fenced), read together
 * under the holder's lock so a reader never pairs a stale snapshot with a lifted fence.
 * *fence_gen receives the fence generation the pair belongs to. */
kl_snapshot *kl_snapshot_acquire_fenced(kl_snapshot_holder *h, kl_fence **fence,
                                        uint64_t *fence_gen);
/* Cheap check for readers that cache a fence: changes whenever the fence set does
 * (read it before kl_snapshot_holder_generation). */
uint64_t kl_snapshot_fence_generation(const kl_snapshot_holder *h);
void kl_snapshot_fence_release(kl_fence *f);
/* True if f (may be NULL: false) covers anything of scope: a fenced scope equal to,
 * above or below it (segment-wise, case-insensitive). */
bool kl_snapshot_fence_covers(const kl_fence *f, const char *scope);
void kl_snapshot_release(kl_snapshot *s);
uint64_t kl_snapshot_generation(const kl_snapshot *s);

/* --- lookups (O(1) hash lookups; never NULL-dereference on NULL input) --- */
/* Account by name, case-insensitive. NULL if none. */
const kl_account *kl_snapshot_account(const kl_snapshot *s, const char *name, size_t len);
/* Deployment of an account by name (case-sensitive as in Azure). NULL if none. */
const kl_deployment *kl_snapshot_deployment(const kl_snapshot *s, const kl_account *a,
                                            const char *name, size_t len);
/* The deployments of an account, in name order; *out points into the snapshot. */
size_t kl_snapshot_deployments(const kl_snapshot *s, const kl_account *a,
                               const kl_deployment *const **out);
/* API key lookup by its index (kl_apikey_index). On a match (compared in constant time
 * over all 32 bytes) sets *account and *slot (1 or 2) and returns true. */
bool kl_snapshot_key_lookup(const kl_snapshot *s, const unsigned char index[32],
                            const kl_account **account, int *slot);

/* The accounts in name order (for metrics): the number, and the i-th (NULL past it). */
size_t kl_snapshot_account_count(const kl_snapshot *s);
const kl_account *kl_snapshot_account_at(const kl_snapshot *s, size_t i);

/* --- directory and RBAC --- */
/* Principal by object id (a GUID, either case). NULL if none. */
const kl_principal *kl_snapshot_principal(const kl_snapshot *s, const char *object_id);
/* Service principal or managed identity by client (app) id, either case. NULL if none. */
const kl_principal *kl_snapshot_principal_by_app_id(const kl_snapshot *s, const char *app_id);
/* The compiled RBAC index: built-in roles, custom roles and the role assignments of
 * enabled principals. Never NULL for a snapshot that was built (an empty index when the
 * store holds no assignments); NULL only for s == NULL. Check with kl_rbac_check. */
const kl_rbac_index *kl_snapshot_rbac(const kl_snapshot *s);
/* May p (a principal of s, enabled: the caller checks) perform action at scope, through
 * its own role assignments or those of any of its groups? kl_rbac_check_principals with
 * p and p->groups; the same errors and *out. The one check every face uses. */
int kl_snapshot_rbac_check(const kl_snapshot *s, const kl_principal *p, const char *action,
                           bool data_action, const char *scope, kl_rbac_decision *out);
/* The registered application certificates (policy/appcreds.h); NULL when there are none
 * (kl_appcreds_certs answers nothing for NULL). Borrowed from s. */
const kl_appcreds *kl_snapshot_appcreds(const kl_snapshot *s);
/* The tenant id (GUID), or "" if the store has no tenant. */
const char *kl_snapshot_tenant_id(const kl_snapshot *s);
/* Object id of the local administrator, the principal the admin socket acts as; NULL if
 * the store has no tenant. */
const char *kl_snapshot_admin_principal(const kl_snapshot *s);
/* The token service's state (policy/sts.h): signing keys and client secrets. Never NULL
 * for a built snapshot (empty when the store has none); NULL only for s == NULL. */
const kl_sts *kl_snapshot_sts(const kl_snapshot *s);

/* --- managed identities --- */
/* The site or VM called name (case-insensitive), or NULL. Borrowed from s. */
const kl_compute *kl_snapshot_compute(const kl_snapshot *s, kl_compute_kind kind, const char *name);
/* The managed identity whose client id is client_id (any case), or NULL. Borrowed from s. */
const kl_mi *kl_snapshot_mi_by_client_id(const kl_snapshot *s, const char *client_id);
/* The launch secrets of sites (kl_idheaders_lookup); NULL when there are none (which
 * finds nothing). Borrowed from s. */
const kl_idheaders *kl_snapshot_idheaders(const kl_snapshot *s);

#endif
