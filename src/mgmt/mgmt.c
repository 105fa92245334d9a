/* The control plane's front: the route table, dispatch (route, method, api-version,
 * names, authorisation, body, handler — in that order, each refusing in ARM's own
 * error shape) and the helpers the handlers share. */
#include "mgmt/mgmt.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "mgmt/internal.h"
#include "policy/build.h"

#define CS "Microsoft.CognitiveServices/accounts"

/* Adding a resource is adding rows here (and, for new path names, a rule in arm.c). */
static const kl_mgmt_route routes[] = {
    {"GET", KL_ARM_ACCOUNTS_IN_SUB, CS "/read", KL_MGMT_BODY_NONE, kl_mgmt_accounts_list},
    {"GET", KL_ARM_ACCOUNTS_IN_RG, CS "/read", KL_MGMT_BODY_NONE, kl_mgmt_accounts_list},
    {"PUT", KL_ARM_ACCOUNT, CS "/write", KL_MGMT_BODY_REQUIRED, kl_mgmt_account_put},
    {"PATCH", KL_ARM_ACCOUNT, CS "/write", KL_MGMT_BODY_REQUIRED, kl_mgmt_account_patch},
    {"GET", KL_ARM_ACCOUNT, CS "/read", KL_MGMT_BODY_NONE, kl_mgmt_account_get},
    {"DELETE", KL_ARM_ACCOUNT, CS "/delete", KL_MGMT_BODY_NONE, kl_mgmt_account_delete},
    {"POST", KL_ARM_LIST_KEYS, CS "/listKeys/action", KL_MGMT_BODY_NONE, kl_mgmt_account_list_keys},
    {"POST", KL_ARM_REGENERATE_KEY, CS "/regenerateKey/action", KL_MGMT_BODY_REQUIRED,
     kl_mgmt_account_regenerate_key},
    {"GET", KL_ARM_DEPLOYMENTS, CS "/deployments/read", KL_MGMT_BODY_NONE,
     kl_mgmt_deployments_list},
    {"PUT", KL_ARM_DEPLOYMENT, CS "/deployments/write", KL_MGMT_BODY_OPTIONAL,
     kl_mgmt_deployment_put},
    {"GET", KL_ARM_DEPLOYMENT, CS "/deployments/read", KL_MGMT_BODY_NONE, kl_mgmt_deployment_get},
    {"DELETE", KL_ARM_DEPLOYMENT, CS "/deployments/delete", KL_MGMT_BODY_NONE,
     kl_mgmt_deployment_delete},
};

const kl_mgmt_route *kl_mgmt_routes(size_t *n)
{
    *n = sizeof(routes) / sizeof(routes[0]);
    return routes;
}

/* ---------------------------------------------------------------- lifetime */

int kl_mgmt_new(const kl_mgmt_cfg *cfg, kl_mgmt **out)
{
    if (!cfg || !out || !cfg->store || !cfg->holder || !cfg->keys)
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
    const char *base = cfg->public_base_url ? cfg->public_base_url : "https://127.0.0.1:8443";
    size_t len = strlen(base);
    while (len > 0 && base[len - 1] == '/')
        len--;
    m->public_base_url = kl_strndup(base, len);
    if (!m->public_base_url) {
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
    free(m->public_base_url);
    free(m);
}

static bool under(const char *path, const char *root)
{
    size_t n = strlen(root);
    return kl_str_istarts(path, root) && (path[n] == '\0' || path[n] == '/');
}

bool kl_mgmt_matches(const char *path)
{
    return path && (under(path, "/subscriptions") || under(path, "/providers"));
}

/* ---------------------------------------------------------------- replies */

void kl_mgmt_reply_json(kl_mgmt_call *c, int status, json_t *body)
{
    kl_http_respond_json(c->r, status, body);
}

void kl_mgmt_reply_error(kl_mgmt_call *c, const kl_arm_error *e)
{
    kl_http_respond_json(c->r, e->status, kl_arm_error_body(e->code, e->message));
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
    kl_log(KL_LOG_ERROR, "mgmt_internal_error", "op", what, "error", kl_err_str(err), "request_id",
           kl_http_req_id(c->r), NULL);
    kl_mgmt_fail(c, 500, "InternalServerError",
                 "The server could not complete the request (request id %s).",
                 kl_http_req_id(c->r) ? kl_http_req_id(c->r) : "-");
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
                         "was not found.",
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

int kl_mgmt_applied(kl_mgmt_call *c)
{
    int err = kl_policy_rebuild(c->m->store, c->m->keys, c->m->holder);
    if (err) {
        kl_log(KL_LOG_ERROR, "mgmt_snapshot_not_applied", "error", kl_err_str(err), "request_id",
               kl_http_req_id(c->r), NULL);
        kl_mgmt_fail(c, 500, "InternalServerError",
                     "The change was saved but could not be applied yet; it takes effect with "
                     "the next change or restart.");
    }
    return err;
}

void kl_mgmt_log_change(kl_mgmt_call *c, const char *what, const char *id)
{
    kl_log(KL_LOG_INFO, "mgmt_change", "change", what, "resource", id, "action", c->route->action,
           "request_id", kl_http_req_id(c->r), NULL);
}

/* ---------------------------------------------------------------- dispatch */

/* The scope a route's action is checked at: the deepest resource the path names. */
static void call_scope(const kl_mgmt_call *c, char *out, size_t outlen)
{
    const kl_arm_names *n = &c->names;
    if (n->account[0] && n->deployment[0])
        snprintf(out, outlen,
                 "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.CognitiveServices/"
                 "accounts/%s/deployments/%s",
                 n->subscription, n->resource_group, n->account, n->deployment);
    else if (n->account[0])
        (void)kl_arm_account_id(n->subscription, n->resource_group, n->account, out, outlen);
    else if (n->resource_group[0])
        snprintf(out, outlen, "/subscriptions/%s/resourceGroups/%s", n->subscription,
                 n->resource_group);
    else if (n->subscription[0])
        snprintf(out, outlen, "/subscriptions/%s", n->subscription);
    else
        snprintf(out, outlen, "/");
}

/* Deny by default: the admin socket's peer (uid-checked by the server) is the owner of
 * "/"; every other caller is refused until bearer tokens and role assignments exist. */
static bool authorize(kl_mgmt_call *c)
{
    char scope[KL_ARM_MAX_ID + 32 + KL_MAX_NAME];
    call_scope(c, scope, sizeof(scope));
    kl_http_req_log_field(c->r, "action", c->route->action);
    if (kl_http_req_is_admin(c->r))
        return true;
    kl_http_req_auth_failed(c->r, KL_AUTHFAIL_FORBIDDEN);
    kl_mgmt_fail(c, 403, "AuthorizationFailed",
                 "The client does not have authorization to perform action '%s' over scope "
                 "'%s' or the scope is invalid.",
                 c->route->action, scope);
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

void kl_mgmt_handle(kl_mgmt *m, kl_http_req *r)
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
    if (kl_arm_check_api_version(kl_http_req_query_param(r, "api-version"), &e) ||
        kl_arm_resolve_names(&match, &c.names, &e)) {
        kl_mgmt_reply_error(&c, &e);
        return;
    }
    if (c.names.account[0])
        kl_http_req_log_field(r, "account", c.names.account);
    if (!authorize(&c))
        return;

    if (c.route->body != KL_MGMT_BODY_NONE) {
        size_t len = 0;
        const unsigned char *b = kl_http_req_body(r, &len);
        if (len > 0 || c.route->body == KL_MGMT_BODY_REQUIRED) {
            if (kl_arm_parse_body(b, len, &c.body, &e)) {
                kl_mgmt_reply_error(&c, &e);
                return;
            }
        }
    }
    c.route->handler(&c);
    json_decref(c.body);
}
