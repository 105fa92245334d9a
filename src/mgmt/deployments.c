/* Microsoft.CognitiveServices/accounts/deployments: create/update, read, list, delete.
 * An upstream credential is sealed to its account, deployment and URL and never
 * returned; GET shows only whether one is set. */
#include <event2/http.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/util.h"
#include "crypto/seal.h"
#include "mgmt/internal.h"
#include "mgmt/resource.h"
#include "policy/build.h"
#include "policy/egress.h"

/* What the Cognitive Services resource provider answers for a missing deployment. */
static void reply_deployment_missing(kl_mgmt_call *c)
{
    char id[KL_MAX_SCOPE + 1];
    kl_mgmt_call_scope(c, id, sizeof(id));
    kl_mgmt_fail(c, 404, "NotFound", "Specified resource '%s' cannot be found.", id);
}

/* The egress policy at write time: a backend whose host is a literal address the policy
 * refuses is answered 400 now. A host name is judged once it is resolved, on every
 * connection (the gateway's 502), since what it resolves to may change. Host and port
 * are read with the same URL parser the gateway connects with. True if refused (the call
 * is answered). */
static bool backend_refused(kl_mgmt_call *c, const char *url)
{
    struct evhttp_uri *u = evhttp_uri_parse(url);
    if (!u)
        return false; /* unusable anyway: the gateway answers 502 without connecting */
    const char *scheme = evhttp_uri_get_scheme(u);
    const char *host = evhttp_uri_get_host(u);
    int port = evhttp_uri_get_port(u);
    char literal[KL_MAX_HOSTNAME + 1];
    kl_egress_verdict v = KL_EGRESS_ALLOWED;
    size_t hl = host ? strlen(host) : 0;
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        host++;
        hl -= 2;
    }
    if (hl > 0 && hl < sizeof(literal) && port <= 65535) {
        memcpy(literal, host, hl);
        literal[hl] = '\0';
        if (port < 0)
            port = scheme && kl_str_ieq(scheme, "https") ? 443 : 80;
        v = kl_egress_check_literal(c->m->egress, literal, (uint16_t)port);
    }
    evhttp_uri_free(u);
    if (v == KL_EGRESS_ALLOWED)
        return false;
    kl_mgmt_fail(c, 400, "BackendAddressNotAllowed",
                 "properties.backend.url is refused by this service's egress policy: it names "
                 "%s.",
                 kl_egress_reason(v));
    return true;
}

void kl_mgmt_deployment_put(kl_mgmt_call *c)
{
    kl_store_account *a = NULL;
    kl_deployment_input in = {0};
    kl_arm_error e = {0};
    char *sealed = NULL;
    int err = kl_mgmt_find_account(c, false, &a);
    if (err == KL_ENOTFOUND) {
        kl_mgmt_fail(c, 404, "ParentResourceNotFound",
                     "Can not perform requested operation on nested resource. Parent resource "
                     "'%s' not found.",
                     c->names.account);
        return;
    }
    if (err)
        return;
    err = kl_resource_parse_deployment(c->body, c->names.deployment, &in, &e);
    if (err == KL_EINVAL) {
        kl_mgmt_reply_error(c, &e);
        goto out;
    }
    if (!err && in.url && backend_refused(c, in.url))
        goto out;
    if (!err && in.credential) {
        char aad[KL_POLICY_AAD_MAX];
        err = kl_policy_credential_aad(a->name, c->names.deployment, in.url, aad, sizeof(aad));
        if (!err)
            err = kl_seal(c->m->keys, aad, in.credential, strlen(in.credential), &sealed);
    }
    if (err) {
        kl_mgmt_fail_internal(c, err, "deployment_put");
        goto out;
    }
    int64_t now = kl_now_unix();
    kl_store_deployment d = {.name = c->names.deployment,
                             .sku = in.sku,
                             .model = in.model,
                             .backend = in.backend,
                             .upstream_url = in.url,
                             .upstream_model = in.upstream_model,
                             .credential_sealed = sealed,
                             .created_at = now,
                             .modified_at = now};
    bool created = false;
    /* No "credential" member: keep the stored one (the store keeps it only for the same
     * URL). An explicit null or "" removes it. */
    err = kl_store_put_deployment(c->m->store, a->name, &d, !in.credential_given, &created);
    if (err == KL_ENOTFOUND) {
        kl_mgmt_fail(c, 404, "ParentResourceNotFound",
                     "Can not perform requested operation on nested resource. Parent resource "
                     "'%s' not found.",
                     c->names.account);
        goto out;
    }
    if (err) {
        kl_mgmt_fail_internal(c, err, "put_deployment");
        goto out;
    }
    kl_store_deployment *got = NULL;
    kl_mgmt_applied(c);
    err = kl_store_get_deployment(c->m->store, a->name, c->names.deployment, &got);
    if (err) {
        kl_mgmt_fail_internal(c, err, "get_deployment");
        goto out;
    }
    json_t *body = kl_resource_deployment_json(got, a->id);
    kl_mgmt_log_change(c, created ? "deployment_created" : "deployment_updated",
                       json_string_value(json_object_get(body, "id")));
    kl_mgmt_reply_json(c, created ? 201 : 200, body);
    kl_store_deployment_free(got);
out:
    if (sealed) {
        OPENSSL_cleanse(sealed, strlen(sealed));
        free(sealed);
    }
    kl_resource_deployment_input_free(&in);
    kl_store_account_free(a);
}

void kl_mgmt_deployment_get(kl_mgmt_call *c)
{
    kl_store_account *a = NULL;
    kl_store_deployment *d = NULL;
    if (kl_mgmt_find_account(c, true, &a))
        return;
    int err = kl_store_get_deployment(c->m->store, a->name, c->names.deployment, &d);
    if (err == KL_ENOTFOUND)
        reply_deployment_missing(c);
    else if (err)
        kl_mgmt_fail_internal(c, err, "get_deployment");
    else
        kl_mgmt_reply_json(c, 200, kl_resource_deployment_json(d, a->id));
    kl_store_deployment_free(d);
    kl_store_account_free(a);
}

void kl_mgmt_deployment_delete(kl_mgmt_call *c)
{
    kl_store_account *a = NULL;
    int err = kl_mgmt_find_account(c, false, &a);
    if (!err)
        kl_mgmt_reply_deleted(c,
                              kl_store_delete_deployment(c->m->store, a->name, c->names.deployment),
                              "delete_deployment", "deployment_deleted", c->names.deployment);
    else if (err == KL_ENOTFOUND)
        kl_mgmt_reply_empty(c, 204);
    kl_store_account_free(a);
}

void kl_mgmt_deployments_list(kl_mgmt_call *c)
{
    kl_store_account *a = NULL;
    kl_store_deployment **list = NULL;
    size_t n = 0, shown = 0;
    char scope[KL_MAX_SCOPE + 1];
    kl_mgmt_call_scope(c, scope, sizeof(scope));
    /* A caller who may not read the collection learns nothing from a 404 either. */
    int err = kl_mgmt_find_account(c, !c->list_filtered, &a);
    if (err == KL_ENOTFOUND && c->list_filtered)
        kl_mgmt_deny(c, c->route->action, scope);
    if (err)
        return;
    err = kl_store_list_deployments(c->m->store, a->name, &list, &n);
    if (err) {
        kl_mgmt_fail_internal(c, err, "list_deployments");
        kl_store_account_free(a);
        return;
    }
    json_t *value = json_array();
    json_t *body = json_object();
    bool ok = value && body;
    for (size_t i = 0; ok && i < n; i++) {
        if (c->list_filtered) {
            char id[KL_MAX_SCOPE + 1];
            snprintf(id, sizeof(id), "%s/deployments/%s", a->id, list[i]->name);
            if (!kl_mgmt_allowed(c, c->route->action, id))
                continue;
        }
        ok = json_array_append_new(value, kl_resource_deployment_json(list[i], a->id)) == 0;
        shown++;
    }
    if (ok)
        ok = json_object_set(body, "value", value) == 0;
    json_decref(value);
    if (!ok) {
        json_decref(body);
        body = NULL;
    }
    if (c->list_filtered && shown == 0) {
        json_decref(body);
        kl_mgmt_deny(c, c->route->action, scope);
    } else {
        kl_mgmt_reply_json(c, 200, body);
    }
    kl_store_deployments_free(list, n);
    kl_store_account_free(a);
}
