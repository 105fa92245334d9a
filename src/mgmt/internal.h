/* Internal to mgmt/: the control plane's context, the per-request call, the route table
 * and the helpers the resource handlers share. */
#ifndef KL_MGMT_INTERNAL_H
#define KL_MGMT_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>

#include "mgmt/arm.h"
#include "mgmt/mgmt.h"
#include "mgmt/mgmt_route.h"
#include "policy/signing.h"
#include "policy/snapshot.h"
#include "store/store.h"

struct kl_mgmt {
    kl_store *store;            /* borrowed */
    kl_snapshot_holder *holder; /* borrowed */
    const kl_keys *keys;        /* borrowed */
    kl_policy *policy;          /* borrowed */
    char *public_base_url;      /* owned, without trailing '/' */
    char *identity_endpoint;    /* owned: the App-Service-style endpoint's URL ("" if none) */
    const kl_egress *egress;    /* borrowed; read-only once the daemon runs */
    struct event *retry;        /* control thread: retries a failed build (NULL before init) */
    int retry_ms;               /* the next retry's delay; 0 when none is pending */
    /* Signing key rotation, and its timer on the control thread (NULL before init). */
    kl_signing_cfg signing;
    struct event *signing_timer;
    kl_keyusage *usage;        /* borrowed, may be NULL */
    struct event *usage_timer; /* control thread: flushes key usage (NULL before init) */
    /* Serialises every control-plane call and timer: calls come from the control thread
     * (admin socket) and from the workers (bearer tokens on the public listener), and
     * the handlers were written for one thread at a time. */
    pthread_mutex_t mu;
};

/* Who a control-plane request acts as when it did not come through the admin socket:
 * the principal of a verified bearer token. Borrowed for the call. */
typedef struct kl_mgmt_caller {
    const char *object_id; /* the principal's object id (GUID) */
    /* Who 403 texts name, as ARM does: a user's UPN, else the token's appid; NULL: the
     * object id. */
    const char *client;
} kl_mgmt_caller;

/* Routes, authorises and serves one request as caller (NULL: the admin socket's rules,
 * see kl_mgmt_handle). Takes m->mu for the call. Always answers. */
void kl_mgmt_dispatch(kl_mgmt *m, kl_http_req *r, const kl_mgmt_caller *caller);

/* One request on its way through a route. */
typedef struct kl_mgmt_call {
    kl_mgmt *m;
    kl_http_req *r;
    const kl_mgmt_route *route;
    kl_arm_names names; /* validated path names */
    json_t *body;       /* the parsed body (a JSON object) or NULL; owned by the dispatcher */
    /* The snapshot authorisation was decided on (a reference owned by the dispatcher).
     * A handler's own change republishes a newer one; this one stays as it was. */
    kl_snapshot *snap;
    char caller[KL_MAX_PRINCIPAL_ID + 1]; /* object id the request acts as, lower case */
    /* Who 403 texts name (kl_mgmt_caller's client); "" = caller. */
    char client[(KL_MAX_UPN > KL_MAX_PRINCIPAL_ID ? KL_MAX_UPN : KL_MAX_PRINCIPAL_ID) + 1];
    /* KL_MGMT_AUTHZ_LIST routes: true when the caller may not read the whole collection,
     * so the handler lists only items kl_mgmt_allowed grants. */
    bool list_filtered;
} kl_mgmt_call;

/* The route table (static data). */
const kl_mgmt_route *kl_mgmt_routes(size_t *n);

/* --- answering (each answers the request; the call must not answer again) --- */
void kl_mgmt_reply_error(kl_mgmt_call *c, const kl_arm_error *e);
void kl_mgmt_fail(kl_mgmt_call *c, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* 500 for a store or allocation failure (logged, no detail to the client). */
void kl_mgmt_fail_internal(kl_mgmt_call *c, int err, const char *what);
/* Sends body (ownership taken; NULL becomes a 500). */
void kl_mgmt_reply_json(kl_mgmt_call *c, int status, json_t *body);
/* Sends an empty response (200 after a delete, 204 when there was nothing). */
void kl_mgmt_reply_empty(kl_mgmt_call *c, int status);
/* Answers 200 with a collection, {"value": items}, the shape ARM and Graph list in
 * (items taken); NULL items (an allocation that failed while building it) answers 500. */
void kl_mgmt_reply_value(kl_mgmt_call *c, json_t *items);
/* ARM's answer to a DELETE whose store call returned err: 200 once deleted (logging
 * event for id and publishing the change), 204 when there was nothing to delete
 * (KL_ENOTFOUND), 500 for any other error (logged as what). */
void kl_mgmt_reply_deleted(kl_mgmt_call *c, int err, const char *what, const char *event,
                           const char *id);
/* The request's $filter parsed into terms[0..*n) (at most KL_ARM_MAX_FILTER_TERMS);
 * *n = 0 when there is none. Answers the grammar's 400 with code and returns false
 * when the text does not parse; true otherwise (nothing answered). */
bool kl_mgmt_filter_terms(kl_mgmt_call *c, const char *code, kl_arm_filter_term *terms, size_t *n);

/* Reads the account named in the path and checks it lives in the path's subscription
 * and resource group (case-insensitively). 0 with *out owned by the caller;
 * KL_ENOTFOUND when it does not exist there. On KL_ENOTFOUND with reply true, answers
 * 404 ResourceNotFound; on any other error always answers 500. */
int kl_mgmt_find_account(kl_mgmt_call *c, bool reply, kl_store_account **out);
/* Rebuilds and publishes the snapshot after a committed change, so the next request
 * sees it. When the snapshot cannot be built, the change's scope is fenced (every
 * request under or above it answers 503 until a snapshot is built) and a retry is
 * scheduled: either way the change is in force when this returns, and the handler
 * answers as for success. Answers nothing. */
void kl_mgmt_applied(kl_mgmt_call *c);
/* Logs a committed change (never a secret). */
void kl_mgmt_log_change(kl_mgmt_call *c, const char *what, const char *id);

/* --- authorisation (mgmt.c) --- */
/* True if the caller may perform action (a control-plane action) at scope, on the
 * call's snapshot. Answers nothing. */
bool kl_mgmt_allowed(kl_mgmt_call *c, const char *action, const char *scope);
/* The same, answering 403 AuthorizationFailed (Azure's text) when denied. */
bool kl_mgmt_authorize(kl_mgmt_call *c, const char *action, const char *scope);
/* Answers the 401 for a token that verified but whose principal is gone or disabled:
 * ARM's InvalidAuthenticationToken with its challenge, or Graph's (token_auth.c). */
void kl_mgmt_refuse_token(kl_mgmt_call *c);
/* Answers 403 AuthorizationFailed for action at scope. */
void kl_mgmt_deny(kl_mgmt_call *c, const char *action, const char *scope);
/* Answers 400 PrincipalNotFound with Azure's whole text for object_id (a GUID: only an
 * id that passed kl_uuid_valid is echoed) in the call's tenant. */
void kl_mgmt_principal_not_found(kl_mgmt_call *c, const char *object_id);
/* The scope a route's action is checked at (see route.h) into out. */
void kl_mgmt_call_scope(const kl_mgmt_call *c, char *out, size_t outlen);
/* The tenant id of the call's snapshot ("" if none). */
const char *kl_mgmt_tenant(const kl_mgmt_call *c);

/* --- handlers (accounts.c, deployments.c) --- */
void kl_mgmt_account_put(kl_mgmt_call *c);
void kl_mgmt_account_patch(kl_mgmt_call *c);
void kl_mgmt_account_get(kl_mgmt_call *c);
void kl_mgmt_account_delete(kl_mgmt_call *c);
void kl_mgmt_accounts_list(kl_mgmt_call *c);
void kl_mgmt_account_list_keys(kl_mgmt_call *c);
void kl_mgmt_account_regenerate_key(kl_mgmt_call *c);
void kl_mgmt_account_list_key_usage(kl_mgmt_call *c);
void kl_mgmt_deployment_put(kl_mgmt_call *c);
void kl_mgmt_deployment_get(kl_mgmt_call *c);
void kl_mgmt_deployment_delete(kl_mgmt_call *c);
void kl_mgmt_deployments_list(kl_mgmt_call *c);

/* --- managed identities (identity.c) and the resources that carry them (compute.c) --- */
void kl_mgmt_site_put(kl_mgmt_call *c);
void kl_mgmt_site_patch(kl_mgmt_call *c);
void kl_mgmt_site_get(kl_mgmt_call *c);
void kl_mgmt_site_delete(kl_mgmt_call *c);
/* --- launch secrets of sites (identity_headers.c) --- */
void kl_mgmt_identity_header_put(kl_mgmt_call *c);
void kl_mgmt_identity_header_delete(kl_mgmt_call *c);
void kl_mgmt_sites_list(kl_mgmt_call *c);
void kl_mgmt_vm_put(kl_mgmt_call *c);
void kl_mgmt_vm_patch(kl_mgmt_call *c);
void kl_mgmt_vm_get(kl_mgmt_call *c);
void kl_mgmt_vm_delete(kl_mgmt_call *c);
void kl_mgmt_vms_list(kl_mgmt_call *c);
void kl_mgmt_uami_put(kl_mgmt_call *c);
void kl_mgmt_uami_patch(kl_mgmt_call *c);
void kl_mgmt_uami_get(kl_mgmt_call *c);
void kl_mgmt_uami_delete(kl_mgmt_call *c);
void kl_mgmt_uamis_list(kl_mgmt_call *c);
void kl_mgmt_system_identity_get(kl_mgmt_call *c);
/* Answers a collection: items[i] (ownership taken; NULL = allocation failure) is shown
 * unless the call is list_filtered and the caller may not read ids[i]; 403 when it may
 * read none. */
void kl_mgmt_reply_filtered_list(kl_mgmt_call *c, json_t **items, char *const *ids, size_t n);
/* When the path's {object} (an object id or client id) is a managed identity, answers 400
 * (a managed identity takes no credential of any kind) and returns true. */
bool kl_mgmt_mi_credential_refused(kl_mgmt_call *c);

/* --- directory (directory.c): Graph v1.0 shapes --- */
void kl_mgmt_organization_get(kl_mgmt_call *c);
void kl_mgmt_applications_list(kl_mgmt_call *c);
void kl_mgmt_application_create(kl_mgmt_call *c);
void kl_mgmt_application_get(kl_mgmt_call *c);
void kl_mgmt_application_patch(kl_mgmt_call *c);
void kl_mgmt_application_delete(kl_mgmt_call *c);
void kl_mgmt_service_principals_list(kl_mgmt_call *c);
void kl_mgmt_service_principal_get(kl_mgmt_call *c);
void kl_mgmt_service_principal_create(kl_mgmt_call *c);
void kl_mgmt_service_principal_patch(kl_mgmt_call *c);

/* --- what the Graph handlers share (graph.c) --- */
/* $filter of the Graph listings: "prop eq 'value'" terms joined by "and", each of
 * props[0..nprops) at most once; values[i] receives props[i]'s value (pointing into
 * terms) or NULL. Answers 400 Request_UnsupportedQuery ("Unsupported filter: use
 * <usage>.") and returns false for anything else, or the grammar's own 400 for text it
 * cannot parse. */
bool kl_mgmt_graph_eq_filter(kl_mgmt_call *c, kl_arm_filter_term *terms, const char *const *props,
                             size_t nprops, const char *usage, const char **values);
/* Answers Graph's 404 Request_ResourceNotFound naming id. */
void kl_mgmt_graph_not_found(kl_mgmt_call *c, const char *id);
/* Answers 409 LastOwnerCannotBeRemoved: the change would leave no enabled Owner at '/'. */
void kl_mgmt_graph_last_owner(kl_mgmt_call *c);
/* A string member of o without NUL bytes; NULL when absent or not such a string (the
 * string is o's). *present (may be NULL) says whether the member was there at all (null
 * counts as absent). */
const char *kl_mgmt_graph_body_string(const json_t *o, const char *key, bool *present);
/* The displayName a user or group is created with: true when name (NULL: absent) is
 * 1-KL_USERS_MAX_DISPLAY_NAME characters without control characters; otherwise answers
 * 400 Request_BadRequest and returns false. */
bool kl_mgmt_graph_display_name(kl_mgmt_call *c, const char *name);
/* Deletes the principal object_id (a user or a group) and answers 204, logging event
 * for object_id; or answers 404 naming named (the id as the path gave it) when it is
 * gone, 409 LastOwnerCannotBeRemoved when it holds the last enabled Owner at '/'
 * (KL_EPERM), or 500 for any other store failure (logged as what). */
void kl_mgmt_graph_delete_principal(kl_mgmt_call *c, const char *object_id, const char *named,
                                    const char *what, const char *event);

/* --- users and groups (graph_users.c, graph_groups.c): Graph v1.0 shapes --- */
void kl_mgmt_users_list(kl_mgmt_call *c);
void kl_mgmt_user_create(kl_mgmt_call *c);
void kl_mgmt_user_get(kl_mgmt_call *c);
void kl_mgmt_user_patch(kl_mgmt_call *c);
void kl_mgmt_user_delete(kl_mgmt_call *c);
void kl_mgmt_groups_list(kl_mgmt_call *c);
void kl_mgmt_group_create(kl_mgmt_call *c);
void kl_mgmt_group_get(kl_mgmt_call *c);
void kl_mgmt_group_delete(kl_mgmt_call *c);
void kl_mgmt_group_members_list(kl_mgmt_call *c);
void kl_mgmt_group_member_add(kl_mgmt_call *c);
void kl_mgmt_group_member_remove(kl_mgmt_call *c);

/* --- application certificates (app_certs.c) --- */
/* The keyCredentials of the application app (object id or app id) as Graph shows them:
 * *out a new array. A store error otherwise (nothing answered). */
int kl_mgmt_key_credentials_json(kl_mgmt_call *c, const char *app, json_t **out);
/* Makes kc (the body's keyCredentials) a's whole set of certificates, then republishes
 * the snapshot. false when it answered an error (400, 404, 500, 503). */
bool kl_mgmt_key_credentials_set(kl_mgmt_call *c, const kl_store_application *a, const json_t *kc);

/* --- federated identity credentials (app_federated.c) --- */
void kl_mgmt_federated_list(kl_mgmt_call *c);
void kl_mgmt_federated_create(kl_mgmt_call *c);
void kl_mgmt_federated_get(kl_mgmt_call *c);
void kl_mgmt_federated_patch(kl_mgmt_call *c);
void kl_mgmt_federated_delete(kl_mgmt_call *c);

/* --- client secrets (app_secrets.c): Graph addPassword / removePassword --- */
void kl_mgmt_application_add_password(kl_mgmt_call *c);
void kl_mgmt_application_remove_password(kl_mgmt_call *c);
/* The passwordCredentials of an application (never a secret); NULL on failure. */
json_t *kl_mgmt_password_credentials(kl_mgmt_call *c, const char *app_object_id);

/* --- the token service's signing keys (signing_keys.c) --- */
void kl_mgmt_signing_keys_list(kl_mgmt_call *c);
void kl_mgmt_signing_key_rotate(kl_mgmt_call *c);
/* GET /keyless/signIns[?client=ID][&failed=true][&top=N]: the sign-in log, newest first. */
void kl_mgmt_signins_list(kl_mgmt_call *c);
/* GET and PATCH /keyless/tenantSettings {"passwordGrantEnabled": bool}
 * (tenant_settings.c). */
void kl_mgmt_tenant_settings_get(kl_mgmt_call *c);
void kl_mgmt_tenant_settings_patch(kl_mgmt_call *c);
/* Starts / stops the rotation timer on the control thread. */
int kl_mgmt_signing_start(kl_mgmt *m, struct event_base *base);
void kl_mgmt_signing_stop(kl_mgmt *m);

/* --- Microsoft.Authorization (role_definitions.c, role_assignments.c, access.c) --- */
void kl_mgmt_role_definitions_list(kl_mgmt_call *c);
void kl_mgmt_role_definition_get(kl_mgmt_call *c);
void kl_mgmt_role_definition_put(kl_mgmt_call *c);
void kl_mgmt_role_definition_delete(kl_mgmt_call *c);
void kl_mgmt_role_assignments_list(kl_mgmt_call *c);
void kl_mgmt_role_assignment_get(kl_mgmt_call *c);
void kl_mgmt_role_assignment_put(kl_mgmt_call *c);
void kl_mgmt_role_assignment_delete(kl_mgmt_call *c);
void kl_mgmt_permissions_list(kl_mgmt_call *c);
/* True if object_id is p or one of p's groups (transitively): whose role assignments
 * count for p. */
bool kl_mgmt_principal_or_group(const kl_principal *p, const char *object_id);
void kl_mgmt_check_access(kl_mgmt_call *c);

#endif
