/* The directory over the control plane, in Microsoft Graph v1.0 shapes: the organization
 * (tenant), application registrations and service principals. As in Graph, an
 * application's service principal is created by its own POST /servicePrincipals
 * {"appId"} and enabled or disabled there; deleting the application removes both and
 * every role assignment of the service principal. */
#include <stdlib.h>
#include <string.h>

#include "common/ids.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/util.h"
#include "directory/directory.h"
#include "policy/appcreds.h"
#include "mgmt/internal.h"

/* ---------------------------------------------------------------- shapes */

/* {"redirectUris": list} from a stored JSON array (NULL or unreadable: empty). */
static json_t *redirect_json(const char *list)
{
    json_t *a = list ? json_loads(list, 0, NULL) : NULL;
    if (!json_is_array(a)) {
        json_decref(a);
        a = json_array();
    }
    return a ? json_pack("{s:o}", "redirectUris", a) : NULL;
}

/* kc, pc: its keyCredentials and passwordCredentials (taken; NULL shows an empty
 * list), as Graph always shows both. */
static json_t *application_json(const kl_store_application *a, json_t *kc, json_t *pc)
{
    json_t *o = json_object();
    if (!kc)
        kc = json_array();
    if (!pc)
        pc = json_array();
    if (!o || kl_arm_json_set(o, "id", json_string(a->object_id)) ||
        kl_arm_json_set(o, "appId", json_string(a->app_id)) ||
        kl_arm_json_set(o, "displayName", json_string(a->display_name)) ||
        kl_arm_json_set(o, "createdDateTime", kl_arm_json_time(a->created_at)) ||
        kl_arm_json_set(o, "keyCredentials", kc) || kl_arm_json_set(o, "passwordCredentials", pc) ||
        kl_arm_json_set(o, "isFallbackPublicClient", json_boolean(a->public_client)) ||
        kl_arm_json_set(o, "publicClient", redirect_json(a->public_redirect_uris)) ||
        kl_arm_json_set(o, "web", redirect_json(a->web_redirect_uris))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* The user sign-in settings of a POST or PATCH body: isFallbackPublicClient,
 * web.redirectUris, publicClient.redirectUris. Each absent (or null) one stays NULL;
 * *web and *pub are JSON array texts the caller frees. Answers 400 and returns false
 * for a value of the wrong type or a redirect URI that may not be registered (https, or
 * http on a loopback host; no fragment; at most KL_MAX_REDIRECT_URI bytes, at most
 * KL_MAX_REDIRECT_URIS per list). */
typedef struct app_client {
    bool public_client, has_public;
    char *web, *pub;
} app_client;

/* holder: "web" or "publicClient"; prop names the list in the refusal. */
static bool uri_list(kl_mgmt_call *c, const char *holder_name, const char *prop, char **out)
{
    const json_t *holder = json_object_get(c->body, holder_name);
    if (!holder || json_is_null(holder))
        return true;
    const json_t *list = json_is_object(holder) ? json_object_get(holder, "redirectUris") : NULL;
    if (json_is_object(holder) && (!list || json_is_null(list)))
        return true;
    bool ok = json_is_array(list) && json_array_size(list) <= KL_MAX_REDIRECT_URIS;
    for (size_t i = 0; ok && i < json_array_size(list); i++) {
        const json_t *v = json_array_get(list, i);
        ok = json_is_string(v) &&
             kl_appcreds_redirect_uri_check(json_string_value(v), json_string_length(v)) == 0;
    }
    if (!ok) {
        kl_mgmt_fail(c, 400, "Request_BadRequest",
                     "Invalid value specified for property '%s' of resource 'Application': at "
                     "most %d URIs, each https (or http on localhost, 127.0.0.1 or [::1]), "
                     "without a fragment, at most %d characters.",
                     prop, KL_MAX_REDIRECT_URIS, KL_MAX_REDIRECT_URI);
        return false;
    }
    if (!(*out = json_dumps(list, JSON_COMPACT))) {
        kl_mgmt_fail_internal(c, KL_ENOMEM, "redirect_uris");
        return false;
    }
    return true;
}

static bool read_app_client(kl_mgmt_call *c, app_client *ac)
{
    memset(ac, 0, sizeof(*ac));
    const json_t *pc = json_object_get(c->body, "isFallbackPublicClient");
    if (pc && !json_is_null(pc)) {
        if (!json_is_boolean(pc)) {
            kl_mgmt_fail(c, 400, "Request_BadRequest",
                         "Invalid value specified for property 'isFallbackPublicClient' of "
                         "resource 'Application'.");
            return false;
        }
        ac->has_public = true;
        ac->public_client = json_is_true(pc);
    }
    if (!uri_list(c, "web", "web.redirectUris", &ac->web) ||
        !uri_list(c, "publicClient", "publicClient.redirectUris", &ac->pub)) {
        free(ac->web);
        ac->web = NULL;
        return false;
    }
    return true;
}

static bool app_client_given(const app_client *ac)
{
    return ac->has_public || ac->web || ac->pub;
}

/* Stores ac for the application object_id; the error of kl_store_set_application_client. */
static int app_client_store(kl_mgmt_call *c, const char *object_id, const app_client *ac)
{
    if (!app_client_given(ac))
        return 0;
    return kl_store_set_application_client(
        c->m->store, object_id, ac->has_public ? &ac->public_client : NULL, ac->web, ac->pub);
}

static void app_client_free(app_client *ac)
{
    free(ac->web);
    free(ac->pub);
}

/* The application with its credentials, or NULL after answering 500/503. */
static json_t *application_full_json(kl_mgmt_call *c, const kl_store_application *a)
{
    json_t *kc = NULL;
    int err = kl_mgmt_key_credentials_json(c, a->object_id, &kc);
    if (err) {
        kl_mgmt_fail_internal(c, err, "list_key_credentials");
        return NULL;
    }
    json_t *pc = kl_mgmt_password_credentials(c, a->object_id);
    if (!pc) {
        json_decref(kc);
        kl_mgmt_fail_internal(c, KL_EIO, "list_password_credentials");
        return NULL;
    }
    json_t *o = application_json(a, kc, pc);
    if (!o)
        kl_mgmt_fail_internal(c, KL_ENOMEM, "application_json");
    return o;
}

static json_t *service_principal_json(kl_mgmt_call *c, const kl_store_principal *p)
{
    json_t *o = json_object();
    bool mi = strcmp(p->type, KL_PRINCIPAL_TYPE_MI) == 0;
    if (!o || kl_arm_json_set(o, "id", json_string(p->object_id)) ||
        kl_arm_json_set(o, "appId", json_string(p->app_id ? p->app_id : "")) ||
        kl_arm_json_set(o, "displayName", json_string(p->display_name)) ||
        kl_arm_json_set(o, "accountEnabled", json_boolean(p->enabled)) ||
        kl_arm_json_set(o, "servicePrincipalType",
                        json_string(mi ? "ManagedIdentity" : "Application"))) {
        json_decref(o);
        return NULL;
    }
    /* As Entra shows a managed identity: whether it is user-assigned ("explicit") and the
     * ARM id it stands for (the identity's own, or its resource's). */
    const kl_mi *m = mi && p->app_id ? kl_snapshot_mi_by_client_id(c->snap, p->app_id) : NULL;
    if (m && kl_arm_json_set(o, "alternativeNames",
                             json_pack("[s,s]",
                                       m->user_assigned ? "isExplicit=True" : "isExplicit=False",
                                       m->resource_id))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* {"value": items} (items taken); NULL if items is NULL. */
static json_t *collection(json_t *items)
{
    if (!items)
        return NULL;
    json_t *o = json_object();
    if (!o || json_object_set_new(o, "value", items)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ---------------------------------------------------------------- $filter */

/* Supports "appId eq '<guid>'" and "displayName eq '<name>'" (one or both, with "and").
 * Answers 400 and returns false for anything else. want[0] gets the appId, want[1] the
 * displayName (NULL: any). */
static bool parse_graph_filter(kl_mgmt_call *c, kl_arm_filter_term *terms, const char *want[2])
{
    static const char *const props[] = {"appId", "displayName"};
    return kl_mgmt_graph_eq_filter(c, terms, props, 2, "appId eq '{id}' or displayName eq '{name}'",
                                   want);
}

/* want: parse_graph_filter's; the display name is compared case-insensitively. */
static bool filter_keeps(const char *const want[2], const char *app_id, const char *display_name)
{
    if (want[0] && (!app_id || !kl_str_ieq(want[0], app_id)))
        return false;
    if (want[1] && !kl_str_ieq(want[1], display_name))
        return false;
    return true;
}

/* ---------------------------------------------------------------- organization */

void kl_mgmt_organization_get(kl_mgmt_call *c)
{
    kl_store_tenant *t = NULL;
    int err = kl_store_get_tenant(c->m->store, &t);
    if (err) {
        kl_mgmt_fail_internal(c, err, "get_tenant");
        return;
    }
    json_t *org = json_object();
    json_t *items = json_array();
    bool ok = org && items && !kl_arm_json_set(org, "id", json_string(t->tenant_id)) &&
              !kl_arm_json_set(org, "displayName", json_string(t->display_name)) &&
              !kl_arm_json_set(org, "createdDateTime", kl_arm_json_time(t->created_at));
    if (ok)
        ok = json_array_append_new(items, org) == 0; /* takes org either way */
    else
        json_decref(org);
    if (!ok) {
        json_decref(items);
        items = NULL;
    }
    kl_store_tenant_free(t);
    kl_mgmt_reply_json(c, 200, collection(items));
}

/* ---------------------------------------------------------------- applications */

void kl_mgmt_applications_list(kl_mgmt_call *c)
{
    kl_arm_filter_term terms[KL_ARM_MAX_FILTER_TERMS];
    const char *want[2];
    if (!parse_graph_filter(c, terms, want))
        return;
    kl_store_application **list = NULL;
    size_t n = 0;
    int err = kl_store_list_applications(c->m->store, &list, &n);
    if (err) {
        kl_mgmt_fail_internal(c, err, "list_applications");
        return;
    }
    json_t *items = json_array();
    for (size_t i = 0; items && i < n; i++) {
        if (!filter_keeps(want, list[i]->app_id, list[i]->display_name))
            continue;
        json_t *o = application_full_json(c, list[i]);
        if (!o) {
            json_decref(items);
            kl_store_applications_free(list, n);
            return; /* answered */
        }
        if (json_array_append_new(items, o)) {
            json_decref(items);
            items = NULL;
        }
    }
    kl_store_applications_free(list, n);
    kl_mgmt_reply_json(c, 200, collection(items));
}

void kl_mgmt_application_create(kl_mgmt_call *c)
{
    const json_t *dn = json_object_get(c->body, "displayName");
    const char *name = json_string_value(dn);
    if (!name || !kl_directory_valid_app_name(name, json_string_length(dn)) ||
        strlen(name) != json_string_length(dn)) {
        kl_mgmt_fail(c, 400, "Request_BadRequest",
                     "displayName is required: 1-%d characters without control characters.",
                     KL_DIRECTORY_MAX_APP_NAME);
        return;
    }
    app_client ac;
    if (!read_app_client(c, &ac))
        return;
    kl_store_application *a = NULL;
    int err = kl_directory_register_application(c->m->store, name, &a);
    if (!err && app_client_given(&ac)) {
        /* A second transaction: the body was checked first, so only the store can
         * fail here, and then the app exists without them (answered 500). */
        err = app_client_store(c, a->object_id, &ac);
        if (!err) {
            kl_store_application *b = NULL;
            err = kl_store_get_application(c->m->store, a->object_id, &b);
            kl_store_application_free(a);
            a = b;
        }
    }
    app_client_free(&ac);
    if (err == KL_ECONFLICT) {
        kl_mgmt_fail(c, 409, "Request_MultipleObjectsWithSameKeyValue",
                     "Another application with the same value for property displayName "
                     "already exists.");
        return;
    }
    if (err) {
        kl_mgmt_fail_internal(c, err, "create_application");
        return;
    }
    kl_mgmt_log_change(c, "application_created", a->object_id);
    kl_mgmt_applied(c);
    kl_mgmt_reply_json(c, 201, application_json(a, NULL, NULL));
    kl_store_application_free(a);
}

/* The application the path names (object id or app id); answers 404 when none. */
static kl_store_application *find_application(kl_mgmt_call *c)
{
    kl_store_application *a = NULL;
    int err = kl_store_get_application(c->m->store, c->names.object, &a);
    if (err == KL_ENOTFOUND)
        kl_mgmt_graph_not_found(c, c->names.object);
    else if (err)
        kl_mgmt_fail_internal(c, err, "get_application");
    return a;
}

void kl_mgmt_application_get(kl_mgmt_call *c)
{
    kl_store_application *a = find_application(c);
    if (!a)
        return;
    json_t *o = application_full_json(c, a);
    if (o)
        kl_mgmt_reply_json(c, 200, o);
    kl_store_application_free(a);
}

void kl_mgmt_application_patch(kl_mgmt_call *c)
{
    const json_t *dn = json_object_get(c->body, "displayName");
    const char *name = NULL;
    if (json_object_get(c->body, "accountEnabled")) {
        /* Graph's application has no such property: enabling is the service
         * principal's (PATCH /servicePrincipals/{id}). */
        kl_mgmt_fail(c, 400, "Request_BadRequest",
                     "Property 'accountEnabled' does not exist on type "
                     "'microsoft.graph.application'.");
        return;
    }
    if (dn && !json_is_null(dn)) {
        name = json_string_value(dn);
        if (!name || !kl_directory_valid_app_name(name, json_string_length(dn)) ||
            strlen(name) != json_string_length(dn)) {
            kl_mgmt_fail(c, 400, "Request_BadRequest",
                         "displayName must be 1-%d characters without control characters.",
                         KL_DIRECTORY_MAX_APP_NAME);
            return;
        }
    }
    const json_t *kc = json_object_get(c->body, "keyCredentials");
    if (kc && !json_is_null(kc) && kl_mgmt_mi_credential_refused(c))
        return;
    app_client ac;
    if (!read_app_client(c, &ac))
        return;
    kl_store_application *a = find_application(c);
    if (!a) {
        app_client_free(&ac);
        return;
    }
    if (kc && !json_is_null(kc) && !kl_mgmt_key_credentials_set(c, a, kc)) {
        kl_store_application_free(a);
        app_client_free(&ac);
        return;
    }
    int err = name ? kl_store_update_application(c->m->store, a->object_id, name, NULL) : 0;
    if (!err)
        err = app_client_store(c, a->object_id, &ac);
    app_client_free(&ac);
    if (err == KL_ENOTFOUND)
        kl_mgmt_graph_not_found(c, c->names.object);
    else if (err == KL_ECONFLICT)
        kl_mgmt_fail(c, 409, "Request_MultipleObjectsWithSameKeyValue",
                     "Another application with the same value for property displayName "
                     "already exists.");
    else if (err)
        kl_mgmt_fail_internal(c, err, "update_application");
    else {
        kl_mgmt_log_change(c, "application_updated", a->object_id);
        kl_mgmt_applied(c);
        kl_mgmt_reply_empty(c, 204);
    }
    kl_store_application_free(a);
}

void kl_mgmt_application_delete(kl_mgmt_call *c)
{
    kl_store_application *a = find_application(c);
    if (!a)
        return;
    int err = kl_store_delete_application(c->m->store, a->object_id);
    if (err == KL_ENOTFOUND)
        kl_mgmt_graph_not_found(c, c->names.object);
    else if (err == KL_EPERM)
        kl_mgmt_graph_last_owner(c);
    else if (err)
        kl_mgmt_fail_internal(c, err, "delete_application");
    else {
        kl_mgmt_log_change(c, "application_deleted", a->object_id);
        kl_mgmt_applied(c);
        kl_mgmt_reply_empty(c, 204);
    }
    kl_store_application_free(a);
}

/* ---------------------------------------------------------------- service principals */

static bool is_service_principal(const kl_store_principal *p)
{
    return strcmp(p->type, KL_PRINCIPAL_TYPE_SP) == 0 || strcmp(p->type, KL_PRINCIPAL_TYPE_MI) == 0;
}

void kl_mgmt_service_principals_list(kl_mgmt_call *c)
{
    kl_arm_filter_term terms[KL_ARM_MAX_FILTER_TERMS];
    const char *want[2];
    if (!parse_graph_filter(c, terms, want))
        return;
    kl_store_principal **list = NULL;
    size_t n = 0;
    int err = kl_store_list_principals(c->m->store, NULL, &list, &n);
    if (err) {
        kl_mgmt_fail_internal(c, err, "list_principals");
        return;
    }
    json_t *items = json_array();
    for (size_t i = 0; items && i < n; i++) {
        if (!is_service_principal(list[i]) ||
            !filter_keeps(want, list[i]->app_id, list[i]->display_name))
            continue;
        if (json_array_append_new(items, service_principal_json(c, list[i]))) {
            json_decref(items);
            items = NULL;
        }
    }
    kl_store_principals_free(list, n);
    kl_mgmt_reply_json(c, 200, collection(items));
}

/* The service principal the path names (object id, or its app id); answers 404 or 500
 * and returns NULL when there is none. */
static kl_store_principal *find_service_principal(kl_mgmt_call *c)
{
    kl_store_principal *p = NULL;
    int err = kl_store_get_principal(c->m->store, c->names.object, &p);
    if (err == 0 && !is_service_principal(p))
        err = KL_ENOTFOUND;
    if (err == KL_ENOTFOUND) {
        /* Graph also finds a service principal by its app id at this path's sibling
         * (servicePrincipals(appId='..')); accepting the app id here is the same. */
        const kl_principal *sp = kl_snapshot_principal_by_app_id(c->snap, c->names.object);
        kl_store_principal_free(p);
        p = NULL;
        err = sp ? kl_store_get_principal(c->m->store, sp->object_id, &p) : KL_ENOTFOUND;
    }
    if (err == KL_ENOTFOUND)
        kl_mgmt_graph_not_found(c, c->names.object);
    else if (err)
        kl_mgmt_fail_internal(c, err, "get_principal");
    if (err) {
        kl_store_principal_free(p);
        p = NULL;
    }
    return p;
}

void kl_mgmt_service_principal_get(kl_mgmt_call *c)
{
    kl_store_principal *p = find_service_principal(c);
    if (p)
        kl_mgmt_reply_json(c, 200, service_principal_json(c, p));
    kl_store_principal_free(p);
}

void kl_mgmt_service_principal_create(kl_mgmt_call *c)
{
    const json_t *aid = json_object_get(c->body, "appId");
    const char *app_id = json_string_value(aid);
    if (!app_id || strlen(app_id) != json_string_length(aid) ||
        !kl_uuid_valid(app_id, strlen(app_id))) {
        kl_mgmt_fail(c, 400, "Request_BadRequest",
                     "appId is required: the application's client id.");
        return;
    }
    /* Only the app id names the application here (Graph's contract), never its object
     * id: look it up first so that an object id is refused as unknown. */
    kl_store_application *a = NULL;
    kl_store_principal *p = NULL;
    int err = kl_store_get_application(c->m->store, app_id, &a);
    if (!err && !kl_str_ieq(a->app_id, app_id))
        err = KL_ENOTFOUND;
    if (!err)
        err = kl_directory_create_service_principal(c->m->store, a->app_id, &p);
    if (err == KL_ENOTFOUND)
        kl_mgmt_fail(c, 400, "Request_BadRequest",
                     "The appId '%s' of the service principal does not reference a valid "
                     "application object.",
                     app_id);
    else if (err == KL_ECONFLICT)
        kl_mgmt_fail(c, 409, "Request_MultipleObjectsWithSameKeyValue",
                     "The service principal cannot be created: the application already has "
                     "one.");
    else if (err)
        kl_mgmt_fail_internal(c, err, "create_service_principal");
    else {
        kl_mgmt_log_change(c, "service_principal_created", p->object_id);
        kl_mgmt_applied(c);
        kl_mgmt_reply_json(c, 201, service_principal_json(c, p));
    }
    kl_store_principal_free(p);
    kl_store_application_free(a);
}

void kl_mgmt_service_principal_patch(kl_mgmt_call *c)
{
    const json_t *en = json_object_get(c->body, "accountEnabled");
    if (!en || json_is_null(en)) {
        /* Nothing else of a service principal can be changed here yet. */
        kl_mgmt_reply_empty(c, 204);
        return;
    }
    if (!json_is_boolean(en)) {
        kl_mgmt_fail(c, 400, "Request_BadRequest", "accountEnabled must be a boolean.");
        return;
    }
    kl_store_principal *p = find_service_principal(c);
    if (!p)
        return;
    int err = kl_store_set_principal_enabled(c->m->store, p->object_id, json_is_true(en));
    if (err == KL_ENOTFOUND)
        kl_mgmt_graph_not_found(c, c->names.object);
    else if (err == KL_EPERM)
        kl_mgmt_graph_last_owner(c);
    else if (err)
        kl_mgmt_fail_internal(c, err, "set_principal_enabled");
    else {
        kl_mgmt_log_change(c, "service_principal_updated", p->object_id);
        kl_mgmt_applied(c);
        kl_mgmt_reply_empty(c, 204);
    }
    kl_store_principal_free(p);
}
