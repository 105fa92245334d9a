/* The tenant's settings over the control plane: GET/PATCH /keyless/tenantSettings,
 * {"passwordGrantEnabled": bool}. The password grant (ROPC) hands a user's password to
 * the client, so turning it on is reserved to those who could grant themselves any role
 * at "/" anyway (Owner, User Access Administrator): besides the route's action, PATCH
 * needs Microsoft.Authorization/roleAssignments/write at "/". */
#include <string.h>

#include "common/err.h"
#include "mgmt/internal.h"

static void reply_settings(kl_mgmt_call *c, int status)
{
    kl_store_tenant *t = NULL;
    int err = kl_store_get_tenant(c->m->store, &t);
    if (err) {
        kl_mgmt_fail_internal(c, err, "get_tenant");
        return;
    }
    kl_mgmt_reply_json(c, status, json_pack("{s:b}", "passwordGrantEnabled", t->password_grant));
    kl_store_tenant_free(t);
}

void kl_mgmt_tenant_settings_get(kl_mgmt_call *c)
{
    reply_settings(c, 200);
}

void kl_mgmt_tenant_settings_patch(kl_mgmt_call *c)
{
    const json_t *pg = json_object_get(c->body, "passwordGrantEnabled");
    const char *k = NULL;
    const json_t *v = NULL;
    json_object_foreach((json_t *)c->body, k, v)
    {
        if (strcmp(k, "passwordGrantEnabled") != 0) {
            kl_mgmt_fail(c, 400, "Request_BadRequest",
                         "Property '%.64s' does not exist on the tenant settings; the only one "
                         "is 'passwordGrantEnabled'.",
                         k);
            return;
        }
    }
    if (pg && !json_is_boolean(pg)) {
        kl_mgmt_fail(c, 400, "Request_BadRequest", "passwordGrantEnabled must be true or false.");
        return;
    }
    if (!kl_mgmt_authorize(c, "Microsoft.Authorization/roleAssignments/write", "/"))
        return;
    if (pg) {
        int err = kl_store_set_password_grant(c->m->store, json_is_true(pg));
        if (err) {
            kl_mgmt_fail_internal(c, err, "set_password_grant");
            return;
        }
        kl_mgmt_log_change(
            c, json_is_true(pg) ? "password_grant_enabled" : "password_grant_disabled", "tenant");
        kl_mgmt_applied(c);
    }
    reply_settings(c, 200);
}
