/* Listings and name resolution for the directory and RBAC commands; see lookup.h. */
#include "cli/lookup.h"

#include <string.h>

#include "cli/authz.h"
#include "cli/output.h"
#include "common/err.h"

int kl_cli_get_list(kl_cli_ctx *c, const char *target, unsigned flags, json_t **root,
                    json_t **value)
{
    long status;
    *root = NULL;
    *value = NULL;
    int code = kl_cli_call(c, "GET", target, NULL, flags, &status, root);
    if (code != KL_CLI_EXIT_OK)
        return code;
    json_t *v = json_object_get(*root, "value");
    if (!json_is_array(v)) {
        if (!(flags & KL_CLI_CALL_QUIET_ERRORS))
            kl_cli_errorf(c, "keylessd answered without a \"value\" list");
        json_decref(*root);
        *root = NULL;
        return KL_CLI_EXIT_REFUSED;
    }
    *value = v;
    return KL_CLI_EXIT_OK;
}

int kl_cli_find_app(kl_cli_ctx *c, const char *x, bool quiet_missing, json_t **app)
{
    json_t *root = NULL, *value = NULL, *found = NULL;
    *app = NULL;
    int code = kl_cli_get_list(c, KL_CLI_GRAPH_APPLICATIONS, 0, &root, &value);
    if (code != KL_CLI_EXIT_OK)
        return code;
    size_t n = kl_cli_directory_match(value, x, &found);
    if (n == 0) {
        if (!quiet_missing)
            kl_cli_errorf(c, "no application is named '%s' or has it as object id or client id", x);
        code = KL_CLI_EXIT_NOTFOUND;
    } else if (n > 1) {
        kl_cli_errorf(c, "%zu applications are named '%s'; give the client id instead", n, x);
        code = KL_CLI_EXIT_REFUSED;
    } else {
        *app = json_incref(found);
    }
    json_decref(root);
    return code;
}

int kl_cli_authz(kl_cli_ctx *c, kl_buf *t, const char *scope, const char *collection,
                 const char *name, const char *filter)
{
    kl_buf_init(t, KL_CLI_TARGET_MAX);
    if (kl_cli_authz_target(t, scope, collection, name, filter) < 0) {
        kl_buf_free(t);
        kl_cli_errorf(c, "the request path is too long");
        return KL_CLI_EXIT_USAGE;
    }
    return KL_CLI_EXIT_OK;
}

int kl_cli_command_scope(kl_cli_ctx *c, const char *dflt, kl_buf *scope)
{
    char why[512];
    kl_buf_init(scope, KL_MAX_SCOPE + 1);
    int rc = kl_cli_scope_resolve(c->args->scope, c->args->account, c->subscription,
                                  c->resource_group, dflt, scope, why, sizeof(why));
    if (rc < 0) {
        kl_buf_free(scope);
        if (rc == KL_EINVAL)
            kl_cli_errorf(c, "%s", why);
        else
            kl_cli_errorf(c, "the scope is longer than %d characters", KL_MAX_SCOPE);
        return KL_CLI_EXIT_USAGE;
    }
    return KL_CLI_EXIT_OK;
}

int kl_cli_role_definitions(kl_cli_ctx *c, unsigned flags, json_t **root, json_t **value)
{
    kl_buf t;
    *root = NULL;
    *value = NULL;
    int code = kl_cli_authz(c, &t, "/", "roleDefinitions", NULL, NULL);
    if (code != KL_CLI_EXIT_OK)
        return code;
    code = kl_cli_get_list(c, t.data, flags, root, value);
    kl_buf_free(&t);
    return code;
}

static void copy_lower_guid(const char *in, char out[KL_UUID_LEN + 1])
{
    for (size_t i = 0; i < KL_UUID_LEN; i++) {
        char ch = in[i];
        out[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
    }
    out[KL_UUID_LEN] = '\0';
}

int kl_cli_resolve_role(kl_cli_ctx *c, const char *x, char guid[KL_UUID_LEN + 1], json_t **def)
{
    json_t *root = NULL, *value = NULL, *found = NULL;
    if (def)
        *def = NULL;
    if (kl_uuid_valid(x, strlen(x))) {
        copy_lower_guid(x, guid);
        return KL_CLI_EXIT_OK;
    }
    int code = kl_cli_role_definitions(c, 0, &root, &value);
    if (code != KL_CLI_EXIT_OK)
        return code;
    size_t n = kl_cli_role_match(value, x, &found);
    const char *g = json_string_value(json_object_get(found, "name"));
    if (n == 0) {
        kl_cli_errorf(c, "no role is named '%s' (see 'keyless role definition list')", x);
        code = KL_CLI_EXIT_NOTFOUND;
    } else if (n > 1) {
        kl_cli_errorf(c, "%zu roles are named '%s'; give the role's GUID instead", n, x);
        code = KL_CLI_EXIT_REFUSED;
    } else if (!g || !kl_uuid_valid(g, strlen(g))) {
        kl_cli_errorf(c, "keylessd listed role '%s' without a GUID", x);
        code = KL_CLI_EXIT_REFUSED;
    } else {
        copy_lower_guid(g, guid);
        if (def)
            *def = json_incref(found);
    }
    json_decref(root);
    return code;
}

static void set_name(kl_cli_principal *p, const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n >= sizeof(p->name))
        n = sizeof(p->name) - 1;
    if (n)
        memcpy(p->name, name, n);
    p->name[n] = '\0';
}

/* The service principal of an application: its servicePrincipalId, else the one whose
 * appId is the application's. */
static int app_principal(kl_cli_ctx *c, const json_t *app, kl_cli_principal *p)
{
    const char *sp = json_string_value(json_object_get(app, "servicePrincipalId"));
    const char *app_id = json_string_value(json_object_get(app, "appId"));
    const char *name = json_string_value(json_object_get(app, "displayName"));
    json_t *root = NULL, *value = NULL, *found = NULL;
    int code = KL_CLI_EXIT_OK;

    if (!sp) {
        if (!app_id) {
            kl_cli_errorf(c, "keylessd listed application '%s' without a client id",
                          name ? name : "?");
            return KL_CLI_EXIT_REFUSED;
        }
        if ((code = kl_cli_get_list(c, KL_CLI_GRAPH_SERVICE_PRINCIPALS, 0, &root, &value)) !=
            KL_CLI_EXIT_OK)
            return code;
        size_t i;
        json_t *e;
        json_array_foreach(value, i, e)
        {
            const char *a = json_string_value(json_object_get(e, "appId"));
            if (a && kl_str_ieq(a, app_id)) {
                found = e;
                break;
            }
        }
        sp = json_string_value(json_object_get(found, "id"));
    }
    if (!sp || !kl_uuid_valid(sp, strlen(sp))) {
        kl_cli_errorf(c, "application '%s' has no service principal", name ? name : "?");
        code = KL_CLI_EXIT_REFUSED;
    } else {
        copy_lower_guid(sp, p->id);
        p->service_principal = true;
        set_name(p, name);
    }
    json_decref(root);
    return code;
}

int kl_cli_resolve_assignee(kl_cli_ctx *c, const char *x, kl_cli_principal *p)
{
    json_t *root = NULL, *value = NULL, *found = NULL;
    int code;

    memset(p, 0, sizeof(*p));
    if (!kl_uuid_valid(x, strlen(x))) {
        json_t *app = NULL;
        if ((code = kl_cli_find_app(c, x, true, &app)) == KL_CLI_EXIT_NOTFOUND)
            kl_cli_errorf(c,
                          "no application is named '%s' (--assignee takes an object id, a "
                          "client id or an application name)",
                          x);
        if (code == KL_CLI_EXIT_OK)
            code = app_principal(c, app, p);
        json_decref(app);
        return code;
    }
    /* A GUID: the object id or client id of a service principal, or some other
     * principal's object id. One listing answers both and gives the name. */
    code = kl_cli_get_list(c, KL_CLI_GRAPH_SERVICE_PRINCIPALS, 0, &root, &value);
    if (code != KL_CLI_EXIT_OK)
        return code;
    size_t i;
    json_t *e;
    json_array_foreach(value, i, e)
    {
        const char *id = json_string_value(json_object_get(e, "id"));
        const char *a = json_string_value(json_object_get(e, "appId"));
        if ((id && kl_str_ieq(id, x)) || (a && kl_str_ieq(a, x))) {
            found = e;
            break;
        }
    }
    const char *id = json_string_value(json_object_get(found, "id"));
    if (id && kl_uuid_valid(id, strlen(id))) {
        copy_lower_guid(id, p->id);
        p->service_principal = true;
        set_name(p, json_string_value(json_object_get(found, "displayName")));
    } else {
        copy_lower_guid(x, p->id);
    }
    json_decref(root);
    return KL_CLI_EXIT_OK;
}
