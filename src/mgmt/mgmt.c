/* The control plane's front: the route table, dispatch (route, method, api-version,
 * names, authorisation, body, handler — in that order, each refusing in ARM's own
 * error shape) and the helpers the handlers share. */
#include "mgmt/mgmt.h"

#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/util.h"
#include "mgmt/identity.h"
#include "mgmt/internal.h"
#include "policy/build.h"

#define CS "Microsoft.CognitiveServices/accounts"
#define AUTHZ "Microsoft.Authorization"
#define ENTRA "microsoft.directory"
#define NONE KL_MGMT_BODY_NONE
#define OPTIONAL KL_MGMT_BODY_OPTIONAL
#define REQUIRED KL_MGMT_BODY_REQUIRED
#define CHECKED KL_MGMT_BODY_CHECKED
#define ARM KL_MGMT_ARM
#define GRAPH KL_MGMT_GRAPH
#define SCOPE KL_MGMT_AUTHZ_SCOPE
#define LIST KL_MGMT_AUTHZ_LIST
#define SELF KL_MGMT_AUTHZ_SELF
#define HANDLER KL_MGMT_AUTHZ_HANDLER
#define V_ACCOUNTS kl_arm_versions_accounts
#define V_DEPLOYMENTS kl_arm_versions_deployments
#define V_ROLE_ASSIGNMENTS kl_arm_versions_role_assignments
#define V_ROLE_DEFINITIONS kl_arm_versions_role_definitions
#define WEB "Microsoft.Web/sites"
#define VMS "Microsoft.Compute/virtualMachines"
#define MI "Microsoft.ManagedIdentity"
#define V_SITES kl_arm_versions_sites
#define V_VMS kl_arm_versions_vms
#define V_MI kl_arm_versions_identities

/* Adding a resource is adding rows here (and, for new path names, a rule in arm.c). */
static const kl_mgmt_route routes[] = {
    /* Microsoft.CognitiveServices, checked at the resource the path names. */
    {"GET", KL_ARM_ACCOUNTS_IN_SUB, CS "/read", NONE, kl_mgmt_accounts_list, ARM, LIST, V_ACCOUNTS},
    {"GET", KL_ARM_ACCOUNTS_IN_RG, CS "/read", NONE, kl_mgmt_accounts_list, ARM, LIST, V_ACCOUNTS},
    {"PUT", KL_ARM_ACCOUNT, CS "/write", REQUIRED, kl_mgmt_account_put, ARM, SCOPE, V_ACCOUNTS},
    {"PATCH", KL_ARM_ACCOUNT, CS "/write", REQUIRED, kl_mgmt_account_patch, ARM, SCOPE, V_ACCOUNTS},
    {"GET", KL_ARM_ACCOUNT, CS "/read", NONE, kl_mgmt_account_get, ARM, SCOPE, V_ACCOUNTS},
    {"DELETE", KL_ARM_ACCOUNT, CS "/delete", NONE, kl_mgmt_account_delete, ARM, SCOPE, V_ACCOUNTS},
    {"POST", KL_ARM_LIST_KEYS, CS "/listKeys/action", NONE, kl_mgmt_account_list_keys, ARM, SCOPE,
     V_ACCOUNTS},
    {"POST", KL_ARM_REGENERATE_KEY, CS "/regenerateKey/action", REQUIRED,
     kl_mgmt_account_regenerate_key, ARM, SCOPE, V_ACCOUNTS},
    /* Dates only, no secret: whoever may read the account may read them. */
    {"GET", KL_ARM_LIST_KEY_USAGE, CS "/read", NONE, kl_mgmt_account_list_key_usage, ARM, SCOPE,
     V_ACCOUNTS},
    {"GET", KL_ARM_DEPLOYMENTS, CS "/deployments/read", NONE, kl_mgmt_deployments_list, ARM, LIST,
     V_DEPLOYMENTS},
    {"PUT", KL_ARM_DEPLOYMENT, CS "/deployments/write", OPTIONAL, kl_mgmt_deployment_put, ARM,
     SCOPE, V_DEPLOYMENTS},
    {"GET", KL_ARM_DEPLOYMENT, CS "/deployments/read", NONE, kl_mgmt_deployment_get, ARM, SCOPE,
     V_DEPLOYMENTS},
    {"DELETE", KL_ARM_DEPLOYMENT, CS "/deployments/delete", NONE, kl_mgmt_deployment_delete, ARM,
     SCOPE, V_DEPLOYMENTS},

    /* Resources that carry managed identities, and user-assigned identities. Naming a
     * user-assigned identity in a write also needs its assign/action (checked by the
     * handler, as Azure's linked authorization). */
    {"GET", KL_ARM_SITES_IN_SUB, WEB "/read", NONE, kl_mgmt_sites_list, ARM, LIST, V_SITES},
    {"GET", KL_ARM_SITES_IN_RG, WEB "/read", NONE, kl_mgmt_sites_list, ARM, LIST, V_SITES},
    {"PUT", KL_ARM_SITE, WEB "/write", REQUIRED, kl_mgmt_site_put, ARM, SCOPE, V_SITES},
    {"PATCH", KL_ARM_SITE, WEB "/write", REQUIRED, kl_mgmt_site_patch, ARM, SCOPE, V_SITES},
    {"GET", KL_ARM_SITE, WEB "/read", NONE, kl_mgmt_site_get, ARM, SCOPE, V_SITES},
    {"DELETE", KL_ARM_SITE, WEB "/delete", NONE, kl_mgmt_site_delete, ARM, SCOPE, V_SITES},
    /* Launch secrets (keyless run): made and renewed by PUT, revoked by DELETE. */
    {"PUT", KL_ARM_IDENTITY_HEADER, WEB "/identityHeaders/write", OPTIONAL,
     kl_mgmt_identity_header_put, ARM, SCOPE, V_SITES},
    {"DELETE", KL_ARM_IDENTITY_HEADER, WEB "/identityHeaders/delete", NONE,
     kl_mgmt_identity_header_delete, ARM, SCOPE, V_SITES},
    {"GET", KL_ARM_VMS_IN_SUB, VMS "/read", NONE, kl_mgmt_vms_list, ARM, LIST, V_VMS},
    {"GET", KL_ARM_VMS_IN_RG, VMS "/read", NONE, kl_mgmt_vms_list, ARM, LIST, V_VMS},
    {"PUT", KL_ARM_VM, VMS "/write", REQUIRED, kl_mgmt_vm_put, ARM, SCOPE, V_VMS},
    {"PATCH", KL_ARM_VM, VMS "/write", REQUIRED, kl_mgmt_vm_patch, ARM, SCOPE, V_VMS},
    {"GET", KL_ARM_VM, VMS "/read", NONE, kl_mgmt_vm_get, ARM, SCOPE, V_VMS},
    {"DELETE", KL_ARM_VM, VMS "/delete", NONE, kl_mgmt_vm_delete, ARM, SCOPE, V_VMS},
    {"GET", KL_ARM_UAMIS_IN_SUB, MI "/userAssignedIdentities/read", NONE, kl_mgmt_uamis_list, ARM,
     LIST, V_MI},
    {"GET", KL_ARM_UAMIS_IN_RG, MI "/userAssignedIdentities/read", NONE, kl_mgmt_uamis_list, ARM,
     LIST, V_MI},
    {"PUT", KL_ARM_UAMI, MI "/userAssignedIdentities/write", REQUIRED, kl_mgmt_uami_put, ARM, SCOPE,
     V_MI},
    {"PATCH", KL_ARM_UAMI, MI "/userAssignedIdentities/write", REQUIRED, kl_mgmt_uami_patch, ARM,
     SCOPE, V_MI},
    {"GET", KL_ARM_UAMI, MI "/userAssignedIdentities/read", NONE, kl_mgmt_uami_get, ARM, SCOPE,
     V_MI},
    {"DELETE", KL_ARM_UAMI, MI "/userAssignedIdentities/delete", NONE, kl_mgmt_uami_delete, ARM,
     SCOPE, V_MI},
    {"GET", KL_ARM_SYSTEM_IDENTITY, MI "/identities/read", NONE, kl_mgmt_system_identity_get, ARM,
     SCOPE, V_MI},

    /* Microsoft.Authorization, at any scope. An assignment is checked at its own scope,
     * so nobody grants above the scope they hold roleAssignments/write at. */
    {"GET", KL_ARM_ROLE_DEFINITIONS, AUTHZ "/roleDefinitions/read", NONE,
     kl_mgmt_role_definitions_list, ARM, SCOPE, V_ROLE_DEFINITIONS},
    {"GET", KL_ARM_ROLE_DEFINITION, AUTHZ "/roleDefinitions/read", NONE,
     kl_mgmt_role_definition_get, ARM, SCOPE, V_ROLE_DEFINITIONS},
    {"PUT", KL_ARM_ROLE_DEFINITION, AUTHZ "/roleDefinitions/write", CHECKED,
     kl_mgmt_role_definition_put, ARM, SCOPE, V_ROLE_DEFINITIONS},
    {"DELETE", KL_ARM_ROLE_DEFINITION, AUTHZ "/roleDefinitions/delete", NONE,
     kl_mgmt_role_definition_delete, ARM, SCOPE, V_ROLE_DEFINITIONS},
    {"GET", KL_ARM_ROLE_ASSIGNMENTS, AUTHZ "/roleAssignments/read", NONE,
     kl_mgmt_role_assignments_list, ARM, SCOPE, V_ROLE_ASSIGNMENTS},
    {"GET", KL_ARM_ROLE_ASSIGNMENT, AUTHZ "/roleAssignments/read", NONE,
     kl_mgmt_role_assignment_get, ARM, SCOPE, V_ROLE_ASSIGNMENTS},
    {"PUT", KL_ARM_ROLE_ASSIGNMENT, AUTHZ "/roleAssignments/write", CHECKED,
     kl_mgmt_role_assignment_put, ARM, SCOPE, V_ROLE_ASSIGNMENTS},
    {"DELETE", KL_ARM_ROLE_ASSIGNMENT, AUTHZ "/roleAssignments/delete", NONE,
     kl_mgmt_role_assignment_delete, ARM, SCOPE, V_ROLE_ASSIGNMENTS},
    /* Only the caller's own permissions: there is nothing of anyone else's to protect. */
    {"GET", KL_ARM_PERMISSIONS, AUTHZ "/permissions/read", NONE, kl_mgmt_permissions_list, ARM,
     SELF, V_ROLE_DEFINITIONS},
    /* Asking about another principal needs roleAssignments/read at the scope asked
     * about (in the body); asking about oneself needs nothing. */
    {"POST", KL_ARM_CHECK_ACCESS, AUTHZ "/roleAssignments/read", CHECKED, kl_mgmt_check_access, ARM,
     HANDLER, V_ROLE_ASSIGNMENTS},

    /* The directory (Graph v1.0 shapes), checked at "/" with Entra's permission names. */
    {"GET", KL_GRAPH_ORGANIZATION, ENTRA "/organization/standard/read", NONE,
     kl_mgmt_organization_get, GRAPH, SCOPE, NULL},
    {"GET", KL_GRAPH_APPLICATIONS, ENTRA "/applications/standard/read", NONE,
     kl_mgmt_applications_list, GRAPH, SCOPE, NULL},
    {"POST", KL_GRAPH_APPLICATIONS, ENTRA "/applications/create", CHECKED,
     kl_mgmt_application_create, GRAPH, SCOPE, NULL},
    {"GET", KL_GRAPH_APPLICATION, ENTRA "/applications/standard/read", NONE,
     kl_mgmt_application_get, GRAPH, SCOPE, NULL},
    {"PATCH", KL_GRAPH_APPLICATION, ENTRA "/applications/basic/update", CHECKED,
     kl_mgmt_application_patch, GRAPH, SCOPE, NULL},
    {"DELETE", KL_GRAPH_APPLICATION, ENTRA "/applications/delete", NONE, kl_mgmt_application_delete,
     GRAPH, SCOPE, NULL},
    {"POST", KL_GRAPH_ADD_PASSWORD, ENTRA "/applications/credentials/update", OPTIONAL,
     kl_mgmt_application_add_password, GRAPH, SCOPE, NULL},
    {"POST", KL_GRAPH_REMOVE_PASSWORD, ENTRA "/applications/credentials/update", REQUIRED,
     kl_mgmt_application_remove_password, GRAPH, SCOPE, NULL},
    {"GET", KL_GRAPH_SERVICE_PRINCIPALS, ENTRA "/servicePrincipals/standard/read", NONE,
     kl_mgmt_service_principals_list, GRAPH, SCOPE, NULL},
    {"GET", KL_GRAPH_SERVICE_PRINCIPAL, ENTRA "/servicePrincipals/standard/read", NONE,
     kl_mgmt_service_principal_get, GRAPH, SCOPE, NULL},
    {"POST", KL_GRAPH_SERVICE_PRINCIPALS, ENTRA "/servicePrincipals/create", CHECKED,
     kl_mgmt_service_principal_create, GRAPH, SCOPE, NULL},
    {"PATCH", KL_GRAPH_SERVICE_PRINCIPAL, ENTRA "/servicePrincipals/basic/update", CHECKED,
     kl_mgmt_service_principal_patch, GRAPH, SCOPE, NULL},
    /* Federated credentials: Entra's credentials/update to change, read like the app. */
    {"GET", KL_GRAPH_FEDERATED_CREDENTIALS, ENTRA "/applications/standard/read", NONE,
     kl_mgmt_federated_list, GRAPH, SCOPE, NULL},
    {"POST", KL_GRAPH_FEDERATED_CREDENTIALS, ENTRA "/applications/credentials/update", CHECKED,
     kl_mgmt_federated_create, GRAPH, SCOPE, NULL},
    {"GET", KL_GRAPH_FEDERATED_CREDENTIAL, ENTRA "/applications/standard/read", NONE,
     kl_mgmt_federated_get, GRAPH, SCOPE, NULL},
    {"PATCH", KL_GRAPH_FEDERATED_CREDENTIAL, ENTRA "/applications/credentials/update", CHECKED,
     kl_mgmt_federated_patch, GRAPH, SCOPE, NULL},
    {"DELETE", KL_GRAPH_FEDERATED_CREDENTIAL, ENTRA "/applications/credentials/update", NONE,
     kl_mgmt_federated_delete, GRAPH, SCOPE, NULL},

    /* Users and security groups (Entra's permission names; a password reset also needs
     * users/password/update, checked by the handler). */
    {"GET", KL_GRAPH_USERS, ENTRA "/users/standard/read", NONE, kl_mgmt_users_list, GRAPH, SCOPE,
     NULL},
    {"POST", KL_GRAPH_USERS, ENTRA "/users/create", CHECKED, kl_mgmt_user_create, GRAPH, SCOPE,
     NULL},
    {"GET", KL_GRAPH_USER, ENTRA "/users/standard/read", NONE, kl_mgmt_user_get, GRAPH, SCOPE,
     NULL},
    {"PATCH", KL_GRAPH_USER, ENTRA "/users/basic/update", CHECKED, kl_mgmt_user_patch, GRAPH, SCOPE,
     NULL},
    {"DELETE", KL_GRAPH_USER, ENTRA "/users/delete", NONE, kl_mgmt_user_delete, GRAPH, SCOPE, NULL},
    {"GET", KL_GRAPH_GROUPS, ENTRA "/groups/standard/read", NONE, kl_mgmt_groups_list, GRAPH, SCOPE,
     NULL},
    {"POST", KL_GRAPH_GROUPS, ENTRA "/groups/create", CHECKED, kl_mgmt_group_create, GRAPH, SCOPE,
     NULL},
    {"GET", KL_GRAPH_GROUP, ENTRA "/groups/standard/read", NONE, kl_mgmt_group_get, GRAPH, SCOPE,
     NULL},
    {"DELETE", KL_GRAPH_GROUP, ENTRA "/groups/delete", NONE, kl_mgmt_group_delete, GRAPH, SCOPE,
     NULL},
    {"GET", KL_GRAPH_GROUP_MEMBERS, ENTRA "/groups/members/read", NONE, kl_mgmt_group_members_list,
     GRAPH, SCOPE, NULL},
    {"POST", KL_GRAPH_GROUP_MEMBERS_REF, ENTRA "/groups/members/update", CHECKED,
     kl_mgmt_group_member_add, GRAPH, SCOPE, NULL},
    {"DELETE", KL_GRAPH_GROUP_MEMBER_REF, ENTRA "/groups/members/update", NONE,
     kl_mgmt_group_member_remove, GRAPH, SCOPE, NULL},

    /* keyless's own: the token service's signing keys, checked at "/". */
    {"GET", KL_KEYLESS_SIGNING_KEYS, "Keyless/signingKeys/read", NONE, kl_mgmt_signing_keys_list,
     GRAPH, SCOPE, NULL},
    {"POST", KL_KEYLESS_SIGNING_KEYS_ROTATE, "Keyless/signingKeys/rotate/action", OPTIONAL,
     kl_mgmt_signing_key_rotate, GRAPH, SCOPE, NULL},
    {"GET", KL_KEYLESS_SIGNINS, "Keyless/signIns/read", NONE, kl_mgmt_signins_list, GRAPH, SCOPE,
     NULL},
    /* PATCH also needs roleAssignments/write at "/" (checked by the handler). */
    {"GET", KL_KEYLESS_TENANT_SETTINGS, "Keyless/tenantSettings/read", NONE,
     kl_mgmt_tenant_settings_get, GRAPH, SCOPE, NULL},
    {"PATCH", KL_KEYLESS_TENANT_SETTINGS, "Keyless/tenantSettings/write", REQUIRED,
     kl_mgmt_tenant_settings_patch, GRAPH, SCOPE, NULL},
};

const kl_mgmt_route *kl_mgmt_routes(size_t *n)
{
    *n = sizeof(routes) / sizeof(routes[0]);
    return routes;
}

/* ---------------------------------------------------------------- lifetime */

int kl_mgmt_new(const kl_mgmt_cfg *cfg, kl_mgmt **out)
{
    if (!cfg || !out || !cfg->store || !cfg->holder || !cfg->keys || !cfg->egress || !cfg->policy)
        return KL_EINVAL;
    *out = NULL;
    size_t n = 0;
    const kl_mgmt_route *r = kl_mgmt_routes(&n);
    if (kl_mgmt_routes_check(r, n) != 0) {
        kl_log(KL_LOG_ERROR, "mgmt_route_table_invalid", NULL);
        return KL_EINTERNAL;
    }
    kl_mgmt *m = calloc(1, sizeof(*m));
    if (!m)
        return KL_ENOMEM;
    m->store = cfg->store;
    m->holder = cfg->holder;
    m->keys = cfg->keys;
    m->egress = cfg->egress;
    m->policy = cfg->policy;
    if (cfg->signing)
        m->signing = *cfg->signing;
    else
        m->signing = (kl_signing_cfg){.rotation_s = KL_SIGNING_DEFAULT_ROTATION_DAYS * 86400LL,
                                      .lead_s = KL_SIGNING_PUBLISH_LEAD_S,
                                      .token_lifetime_s = KL_TOKEN_DEFAULT_LIFETIME_S,
                                      .alg = KL_JWS_RS256};
    m->usage = cfg->usage;
    if (pthread_mutex_init(&m->mu, NULL) != 0) {
        free(m);
        return KL_ENOMEM;
    }
    const char *base = cfg->public_base_url ? cfg->public_base_url : "https://127.0.0.1:8443";
    size_t len = strlen(base);
    while (len > 0 && base[len - 1] == '/')
        len--;
    m->public_base_url = kl_strndup(base, len);
    const char *ie = cfg->identity_endpoint ? cfg->identity_endpoint : "";
    m->identity_endpoint = kl_strndup(ie, strlen(ie));
    if (!m->public_base_url || !m->identity_endpoint) {
        pthread_mutex_destroy(&m->mu);
        free(m->public_base_url);
        free(m->identity_endpoint);
        free(m);
        return KL_ENOMEM;
    }
    *out = m;
    return 0;
}

void kl_mgmt_free(kl_mgmt *m)
{
    if (!m)
        return;
    if (m->retry)
        event_free(m->retry);
    kl_mgmt_signing_stop(m);
    if (m->usage_timer)
        event_free(m->usage_timer);
    free(m->public_base_url);
    pthread_mutex_destroy(&m->mu);
    free(m->identity_endpoint);
    free(m);
}

/* Builds again while a fence stands; doubles the delay after each failure up to the
 * cap, so a store that stays broken costs one build attempt per KL_SNAPSHOT_RETRY_MAX_MS. */
static void retry_build(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    kl_mgmt *m = arg;
    pthread_mutex_lock(&m->mu);
    if (!kl_snapshot_fenced(m->holder) || kl_policy_apply(m->policy, NULL) == 0) {
        if (m->retry_ms)
            kl_log(KL_LOG_INFO, "snapshot_fence_lifted", NULL);
        m->retry_ms = 0;
        goto out;
    }
    m->retry_ms =
        m->retry_ms * 2 > KL_SNAPSHOT_RETRY_MAX_MS ? KL_SNAPSHOT_RETRY_MAX_MS : m->retry_ms * 2;
    struct timeval tv = {.tv_sec = m->retry_ms / 1000, .tv_usec = (m->retry_ms % 1000) * 1000};
    evtimer_add(m->retry, &tv);
out:
    pthread_mutex_unlock(&m->mu);
}

/* Schedules the first retry unless one is pending. */
static void schedule_retry(kl_mgmt *m)
{
    if (!m->retry || m->retry_ms)
        return;
    m->retry_ms = KL_SNAPSHOT_RETRY_FIRST_MS;
    struct timeval tv = {.tv_sec = m->retry_ms / 1000, .tv_usec = (m->retry_ms % 1000) * 1000};
    evtimer_add(m->retry, &tv);
}

/* Writes the key usage of the last minute in one batch (a failure keeps it for the
 * next one). */
static void flush_usage(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    kl_mgmt *m = arg;
    size_t n = 0;
    pthread_mutex_lock(&m->mu);
    int err = kl_keyusage_flush(m->usage, m->store, &n);
    pthread_mutex_unlock(&m->mu);
    if (err) {
        kl_log(KL_LOG_WARN, "key_usage_flush_failed", "error", kl_err_str(err), NULL);
    } else if (n && kl_log_enabled(KL_LOG_DEBUG)) {
        char c[24];
        snprintf(c, sizeof(c), "%zu", n);
        kl_log(KL_LOG_DEBUG, "key_usage_flushed", "keys", c, NULL);
    }
}

int kl_mgmt_thread_init(kl_mgmt *m, struct event_base *base)
{
    if (!m || !base)
        return KL_EINVAL;
    m->retry = evtimer_new(base, retry_build, m);
    if (!m->retry)
        return KL_ENOMEM;
    if (m->usage) {
        m->usage_timer = event_new(base, -1, EV_PERSIST, flush_usage, m);
        struct timeval tv = {.tv_sec = KL_KEYUSAGE_FLUSH_MS / 1000,
                             .tv_usec = (KL_KEYUSAGE_FLUSH_MS % 1000) * 1000};
        if (!m->usage_timer || event_add(m->usage_timer, &tv) != 0)
            return KL_ENOMEM;
    }
    return kl_mgmt_signing_start(m, base);
}

void kl_mgmt_thread_fini(kl_mgmt *m)
{
    if (!m)
        return;
    kl_mgmt_signing_stop(m);
    if (m->usage_timer) {
        event_free(m->usage_timer);
        m->usage_timer = NULL;
    }
    if (!m->retry)
        return;
    event_free(m->retry);
    m->retry = NULL;
    m->retry_ms = 0;
}

static bool under(const char *path, const char *root)
{
    size_t n = strlen(root);
    return kl_str_istarts(path, root) && (path[n] == '\0' || path[n] == '/');
}

bool kl_mgmt_matches(const char *path)
{
    return path && (under(path, "/subscriptions") || under(path, "/providers") ||
                    under(path, "/v1.0") || under(path, "/keyless"));
}

/* ---------------------------------------------------------------- replies */

void kl_mgmt_reply_json(kl_mgmt_call *c, int status, json_t *body)
{
    kl_http_respond_json(c->r, status, body);
}

/* Graph's error bodies carry error.innerError {date, request-id, client-request-id}; the
 * client's id is echoed only when it is a GUID (it is repeated into a response), else
 * ours stands in, as Graph generates one when the client sent none. */
static json_t *graph_inner_error(kl_mgmt_call *c)
{
    char date[32];
    const char *rid = kl_http_req_id(c->r) ? kl_http_req_id(c->r) : "";
    const char *cid = kl_http_req_header(c->r, "client-request-id");
    if (!cid || !kl_uuid_valid(cid, strlen(cid)))
        cid = rid;
    kl_time_iso8601(kl_now_unix(), date, sizeof(date));
    return json_pack("{s:s, s:s, s:s}", "date", date, "request-id", rid, "client-request-id", cid);
}

static bool is_graph_call(const kl_mgmt_call *c)
{
    if (c->route)
        return c->route->api == KL_MGMT_GRAPH;
    const char *path = kl_http_req_path(c->r);
    return path && under(path, "/v1.0");
}

void kl_mgmt_reply_error(kl_mgmt_call *c, const kl_arm_error *e)
{
    json_t *body = kl_arm_error_body(e->code, e->message);
    if (body && is_graph_call(c)) {
        json_t *inner = graph_inner_error(c);
        if (!inner || json_object_set_new(json_object_get(body, "error"), "innerError", inner)) {
            json_decref(body);
            body = NULL;
        }
    }
    kl_http_respond_json(c->r, e->status, body);
}

void kl_mgmt_fail(kl_mgmt_call *c, int status, const char *code, const char *fmt, ...)
{
    kl_arm_error e = {.status = status, .code = code};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.message, sizeof(e.message), fmt, ap);
    va_end(ap);
    kl_mgmt_reply_error(c, &e);
}

void kl_mgmt_fail_internal(kl_mgmt_call *c, int err, const char *what)
{
    if (err == KL_EUNAVAIL) {
        /* The database cannot be reached, or stayed busy past its bound (another
         * writer held its lock, KL_STORE_LOCK_TIMEOUT_MS): ARM's answer for a dependency
         * that is down, which clients retry. Data-plane requests keep being served from the
         * snapshot meanwhile. */
        kl_log(KL_LOG_WARN, "mgmt_store_unavailable", "op", what, "request_id",
               kl_http_req_id(c->r), NULL);
        kl_http_set_header(c->r, "Retry-After", KL_MGMT_RETRY_AFTER_S);
        kl_mgmt_fail(c, 503, "ServiceUnavailable",
                     "The service is temporarily unavailable: its database cannot be reached. "
                     "Retry the request later.");
        return;
    }
    kl_log(KL_LOG_ERROR, "mgmt_internal_error", "op", what, "error", kl_err_str(err), "request_id",
           kl_http_req_id(c->r), NULL);
    kl_mgmt_fail(c, 500, "InternalServerError",
                 "The server could not complete the request (request id %s).",
                 kl_http_req_id(c->r) ? kl_http_req_id(c->r) : "-");
}

void kl_mgmt_reply_value(kl_mgmt_call *c, json_t *items)
{
    kl_mgmt_reply_json(c, 200, items ? json_pack("{s:o}", "value", items) : NULL);
}

void kl_mgmt_reply_deleted(kl_mgmt_call *c, int err, const char *what, const char *event,
                           const char *id)
{
    if (err == KL_ENOTFOUND)
        kl_mgmt_reply_empty(c, 204);
    else if (err)
        kl_mgmt_fail_internal(c, err, what);
    else {
        kl_mgmt_log_change(c, event, id);
        kl_mgmt_applied(c);
        kl_mgmt_reply_empty(c, 200);
    }
}

bool kl_mgmt_filter_terms(kl_mgmt_call *c, const char *code, kl_arm_filter_term *terms, size_t *n)
{
    *n = 0;
    const char *text = kl_http_req_query_param(c->r, "$filter");
    if (!text)
        return true;
    kl_arm_error e = {0};
    if (kl_arm_parse_filter(text, terms, n, code, &e)) {
        kl_mgmt_reply_error(c, &e);
        return false;
    }
    return true;
}

void kl_mgmt_reply_empty(kl_mgmt_call *c, int status)
{
    kl_http_respond(c->r, status, NULL, NULL, 0);
}

int kl_mgmt_find_account(kl_mgmt_call *c, bool reply, kl_store_account **out)
{
    *out = NULL;
    kl_store_account *a = NULL;
    int err = kl_store_get_account(c->m->store, c->names.account, &a);
    if (err == 0 && (!kl_str_ieq(a->subscription, c->names.subscription) ||
                     !kl_str_ieq(a->resource_group, c->names.resource_group))) {
        /* The name is taken elsewhere: from here, it does not exist. */
        kl_store_account_free(a);
        a = NULL;
        err = KL_ENOTFOUND;
    }
    if (err == KL_ENOTFOUND) {
        if (reply)
            kl_mgmt_fail(c, 404, "ResourceNotFound",
                         "The Resource '" KL_ARM_ACCOUNT_TYPE "/%s' under resource group '%s' "
                         "was not found. For more details please go to "
                         "https://aka.ms/ARMResourceNotFoundFix",
                         c->names.account, c->names.resource_group);
        return err;
    }
    if (err) {
        kl_mgmt_fail_internal(c, err, "get_account");
        return err;
    }
    *out = a;
    return 0;
}

void kl_mgmt_applied(kl_mgmt_call *c)
{
    char scope[KL_MAX_SCOPE + 1];
    kl_mgmt_call_scope(c, scope, sizeof(scope));
    /* A role definition is used wherever it is assigned: its change covers everything. */
    if (kl_str_istarts(c->route->action, AUTHZ "/roleDefinitions/"))
        snprintf(scope, sizeof(scope), "/");
    if (kl_policy_apply(c->m->policy, scope) == 0)
        return;
    /* Saved, not built: the scope is fenced, so nothing it covers is served from the
     * stale snapshot; the change is in force, and the retry lifts the fence. */
    kl_log(KL_LOG_ERROR, "mgmt_change_fenced", "scope", scope, "request_id", kl_http_req_id(c->r),
           NULL);
    schedule_retry(c->m);
}

void kl_mgmt_log_change(kl_mgmt_call *c, const char *what, const char *id)
{
    kl_log(KL_LOG_INFO, "mgmt_change", "change", what, "resource", id, "action", c->route->action,
           "request_id", kl_http_req_id(c->r), NULL);
}

/* ---------------------------------------------------------------- authorisation */

void kl_mgmt_call_scope(const kl_mgmt_call *c, char *out, size_t outlen)
{
    /* Graph routes act on the directory, which is tenant-wide. */
    if (!c->route || c->route->api == KL_MGMT_GRAPH ||
        kl_arm_route_scope(c->route->pattern, &c->names, out, outlen) != 0)
        snprintf(out, outlen, "/");
}

const char *kl_mgmt_tenant(const kl_mgmt_call *c)
{
    return kl_snapshot_tenant_id(c->snap);
}

bool kl_mgmt_allowed(kl_mgmt_call *c, const char *action, const char *scope)
{
    /* A principal that is gone or disabled holds nothing; the index leaves a disabled
     * principal's assignments out as well, this keeps the rule visible here. */
    const kl_principal *p = kl_snapshot_principal(c->snap, c->caller);
    if (!p || !p->enabled)
        return false;
    kl_rbac_decision d;
    /* Its groups' assignments count as its own (kl_snapshot_rbac_check). */
    return kl_snapshot_rbac_check(c->snap, p, action, false, scope, &d) == 0 && d.allowed;
}

void kl_mgmt_principal_not_found(kl_mgmt_call *c, const char *object_id)
{
    kl_mgmt_fail(c, 400, "PrincipalNotFound",
                 "Principal %s does not exist in the directory %s. Check that you have the "
                 "correct principal ID. If you are creating this principal and then immediately "
                 "assigning a role, this error might be related to a replication delay. In this "
                 "case, set the role assignment principalType property to a value, such as "
                 "ServicePrincipal, User, or Group.  See https://aka.ms/docs-principaltype",
                 object_id, kl_mgmt_tenant(c));
}

void kl_mgmt_deny(kl_mgmt_call *c, const char *action, const char *scope)
{
    kl_http_req_auth_failed(c->r, KL_AUTHFAIL_FORBIDDEN);
    kl_http_req_log_field(c->r, "denied_action", action);
    kl_mgmt_fail(c, 403, "AuthorizationFailed",
                 "The client '%s' with object id '%s' does not have authorization to perform "
                 "action '%s' over scope '%s' or the scope is invalid. If access was recently "
                 "granted, please refresh your credentials.",
                 c->client[0] ? c->client : c->caller, c->caller, action, scope);
}

bool kl_mgmt_authorize(kl_mgmt_call *c, const char *action, const char *scope)
{
    if (kl_mgmt_allowed(c, action, scope))
        return true;
    kl_mgmt_deny(c, action, scope);
    return false;
}

/* Sets c->caller: the given principal, or on the admin socket the x-keyless-principal
 * one or the local administrator. Answers and returns false when it cannot. */
static bool resolve_caller(kl_mgmt_call *c, const kl_mgmt_caller *as)
{
    c->snap = kl_snapshot_acquire(c->m->holder);
    if (!c->snap) {
        kl_mgmt_fail_internal(c, KL_EINTERNAL, "no_snapshot");
        return false;
    }
    const char *oid = NULL;
    if (as) {
        oid = as->object_id;
        const kl_principal *p = kl_uuid_valid(oid, strnlen(oid, KL_UUID_LEN + 1))
                                    ? kl_snapshot_principal(c->snap, oid)
                                    : NULL;
        if (!p || !p->enabled) {
            /* Deleted or disabled since the token was issued: its tokens end now. */
            kl_http_req_auth_failed(c->r, KL_AUTHFAIL_INVALID_TOKEN);
            kl_http_req_log_field(c->r, "token_refused",
                                  p ? "principal_disabled" : "principal_unknown");
            kl_mgmt_refuse_token(c);
            return false;
        }
        if (as->client && strlen(as->client) < sizeof(c->client))
            snprintf(c->client, sizeof(c->client), "%s", as->client);
    } else {
        int count = kl_http_req_header_count(c->r, "x-keyless-principal");
        const char *h = kl_http_req_header(c->r, "x-keyless-principal");
        if (count > 1 || (count == 1 && (!h || !kl_uuid_valid(h, strlen(h))))) {
            /* Not echoed: it is not an id. */
            kl_mgmt_fail(c, 400, "PrincipalNotFound",
                         "The x-keyless-principal header must be one principal object id "
                         "(a GUID) of the directory %s.",
                         kl_mgmt_tenant(c));
            return false;
        }
        if (count == 1 && !kl_snapshot_principal(c->snap, h)) {
            kl_mgmt_principal_not_found(c, h);
            return false;
        }
        oid = count == 1 ? h : kl_snapshot_admin_principal(c->snap);
        kl_http_req_log_field(c->r, "auth", count == 1 ? "admin-socket-as" : "admin-socket");
    }
    if (!oid || strlen(oid) > KL_MAX_PRINCIPAL_ID) {
        kl_mgmt_fail_internal(c, KL_EINTERNAL, "no_principal");
        return false;
    }
    snprintf(c->caller, sizeof(c->caller), "%s", oid);
    kl_arm_lower(c->caller);
    kl_http_req_log_field(c->r, "principal", c->caller);
    return true;
}

/* Room for a scope and the "/providers/Microsoft.Authorization/{kind}/{name}" after it
 * (the longer kind's text counts the terminating NUL). */
#define DENIED_SCOPE_MAX                                                                           \
    (KL_MAX_SCOPE + sizeof("/providers/Microsoft.Authorization/roleAssignments/") + KL_MAX_NAME)

/* The scope a refusal names: as Azure, for one role assignment or role definition its
 * full id (the check itself is at the scope it lies in), else the scope itself. */
static void denied_scope(const kl_mgmt_call *c, const char *scope, char out[DENIED_SCOPE_MAX])
{
    const char *kind = c->names.role_assignment[0]   ? "roleAssignments"
                       : c->names.role_definition[0] ? "roleDefinitions"
                                                     : NULL;
    if (!kind) {
        snprintf(out, DENIED_SCOPE_MAX, "%s", scope);
        return;
    }
    const char *name =
        c->names.role_assignment[0] ? c->names.role_assignment : c->names.role_definition;
    snprintf(out, DENIED_SCOPE_MAX, "%s/providers/Microsoft.Authorization/%s/%s",
             strcmp(scope, "/") == 0 ? "" : scope, kind, name);
}

/* Deny by default: every route's action is checked for the caller before its handler
 * runs, except where the route says the handler checks (body scope) or there is
 * nothing to protect (the caller's own permissions). */
static bool authorize(kl_mgmt_call *c)
{
    char scope[KL_MAX_SCOPE + 1];
    char shown[DENIED_SCOPE_MAX];
    kl_mgmt_call_scope(c, scope, sizeof(scope));
    kl_http_req_log_field(c->r, "action", c->route->action);
    switch (c->route->authz) {
    case KL_MGMT_AUTHZ_SCOPE:
        if (kl_mgmt_allowed(c, c->route->action, scope))
            return true;
        denied_scope(c, scope, shown);
        kl_mgmt_deny(c, c->route->action, shown);
        return false;
    case KL_MGMT_AUTHZ_LIST:
        c->list_filtered = !kl_mgmt_allowed(c, c->route->action, scope);
        return true;
    case KL_MGMT_AUTHZ_SELF:
    case KL_MGMT_AUTHZ_HANDLER: return true;
    }
    kl_mgmt_deny(c, c->route->action, scope);
    return false;
}

/* ---------------------------------------------------------------- dispatch */

/* While a saved change is fenced, the snapshot authorisation would be decided on is
 * stale for its scope: build again first (the store may have recovered), and refuse
 * with 503 what the fence still covers. Answers and returns false when refused. */
static bool fence_check(kl_mgmt_call *c)
{
    if (!kl_snapshot_fenced(c->m->holder))
        return true;
    if (kl_policy_apply(c->m->policy, NULL) == 0)
        return true;
    char scope[KL_MAX_SCOPE + 1];
    kl_mgmt_call_scope(c, scope, sizeof(scope));
    uint64_t gen = 0;
    kl_fence *f = NULL;
    kl_snapshot_release(kl_snapshot_acquire_fenced(c->m->holder, &f, &gen));
    bool covered = kl_snapshot_fence_covers(f, scope);
    kl_snapshot_fence_release(f);
    if (!covered)
        return true;
    schedule_retry(c->m);
    kl_http_set_header(c->r, "Retry-After", KL_SNAPSHOT_RETRY_AFTER);
    kl_mgmt_fail(c, 503, "ServiceUnavailable",
                 "A saved change to this scope has not been applied yet; requests to it are "
                 "refused until it is. Try again shortly.");
    return false;
}

/* A method token we may repeat in a message: short upper-case letters only. */
static const char *safe_method(const char *m)
{
    size_t n = m ? strlen(m) : 0;
    if (n == 0 || n > 16)
        return "?";
    for (size_t i = 0; i < n; i++)
        if (m[i] < 'A' || m[i] > 'Z')
            return "?";
    return m;
}

static void dispatch_locked(kl_mgmt *m, kl_http_req *r, const kl_mgmt_caller *as)
{
    kl_http_req_set_route(r, KL_ROUTE_MGMT);
    kl_mgmt_call c = {.m = m, .r = r};
    const char *path = kl_http_req_path(r);
    const char *method = kl_http_req_method(r);
    size_t n = 0;
    const kl_mgmt_route *table = kl_mgmt_routes(&n);
    kl_arm_match match = {0};
    bool known_path = false;
    char allow[64] = "";

    for (size_t i = 0; i < n; i++) {
        kl_arm_match mm;
        if (!kl_arm_match_path(table[i].pattern, path, &mm))
            continue;
        known_path = true;
        size_t al = strlen(allow);
        snprintf(allow + al, sizeof(allow) - al, "%s%s", al ? ", " : "", table[i].method);
        if (!c.route && method && strcmp(method, table[i].method) == 0) {
            c.route = &table[i];
            match = mm;
        }
    }
    if (!known_path) {
        kl_arm_error e = {0};
        if (kl_arm_unknown_type(path, kl_http_req_query_param(r, "api-version"), &e) == KL_EINVAL)
            kl_mgmt_reply_error(&c, &e);
        else
            kl_mgmt_fail(&c, 404, "NotFound", "No control-plane resource matches the path.");
        return;
    }
    if (!c.route) {
        kl_http_set_header(r, "Allow", allow);
        kl_mgmt_fail(&c, 405, "MethodNotAllowed",
                     "The requested resource does not support http method '%s'.",
                     safe_method(method));
        return;
    }

    kl_arm_error e = {0};
    size_t raw_len = 0;
    const char *raw = kl_http_req_raw_path(r, &raw_len);
    if ((kl_arm_pattern_has_scope(c.route->pattern) &&
         kl_arm_check_raw_scope_path(raw, raw_len, &e)) ||
        (c.route->api == KL_MGMT_ARM &&
         kl_arm_check_api_version(kl_http_req_query_param(r, "api-version"), c.route->versions,
                                  &e)) ||
        kl_arm_resolve_names(&match, &c.names, &e)) {
        kl_mgmt_reply_error(&c, &e);
        return;
    }
    if (c.names.account[0])
        kl_http_req_log_field(r, "account", c.names.account);
    if (!fence_check(&c))
        return;
    /* While the database cannot be reached, reads are refused as writes are, reads
     * answered from the snapshot included: the control plane is the store's view, and a
     * client told 503 retries instead of acting on what may be stale. (The data plane
     * keeps serving from the snapshot.) */
    if (m->store && !kl_store_reachable(m->store)) {
        kl_mgmt_fail_internal(&c, KL_EUNAVAIL, c.route->action);
        return;
    }
    if (!resolve_caller(&c, as) || !authorize(&c))
        goto out;

    if (c.route->body != KL_MGMT_BODY_NONE) {
        size_t len = 0;
        const unsigned char *b = kl_http_req_body(r, &len);
        bool checked = c.route->body == KL_MGMT_BODY_CHECKED;
        if (len > 0 || c.route->body == KL_MGMT_BODY_REQUIRED || checked) {
            if ((checked ? kl_arm_parse_body_nul : kl_arm_parse_body)(b, len, &c.body, &e)) {
                if (c.route->api == KL_MGMT_GRAPH)
                    e.code = "Request_BadRequest";
                kl_mgmt_reply_error(&c, &e);
                goto out;
            }
        }
    }
    c.route->handler(&c);
out:
    json_decref(c.body);
    kl_snapshot_release(c.snap);
}

void kl_mgmt_dispatch(kl_mgmt *m, kl_http_req *r, const kl_mgmt_caller *caller)
{
    pthread_mutex_lock(&m->mu);
    dispatch_locked(m, r, caller);
    pthread_mutex_unlock(&m->mu);
}

void kl_mgmt_handle(kl_mgmt *m, kl_http_req *r)
{
    if (!kl_http_req_is_admin(r)) {
        kl_http_req_set_route(r, KL_ROUTE_MGMT);
        kl_http_req_auth_failed(r, KL_AUTHFAIL_MISSING);
        kl_http_respond_error(r, 401, "AuthenticationFailed",
                              "Authentication failed. The 'Authorization' header is missing.");
        return;
    }
    kl_mgmt_dispatch(m, r, NULL);
}
