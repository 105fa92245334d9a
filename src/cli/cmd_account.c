/* keyless account create|update|show|list|delete: Microsoft.CognitiveServices accounts,
 * through the ARM control plane on the admin socket. */
#include <string.h>

#include "cli/commands.h"
#include "cli/lookup.h"
#include "cli/output.h"
#include "common/err.h"
#include "common/util.h"

/* Properties the server computes; sending them back in a PUT would ask to change them. */
static const char *const READ_ONLY_PROPERTIES[] = {
    "provisioningState", "endpoint",     "endpoints",          "dateCreated",
    "internalId",        "capabilities", "callRateLimit",      "quotaLimit",
    "deletionDate",      "abusePenalty", "scheduledPurgeDate", "skuChangeDate",
};

static const char *local_auth(const json_t *acct)
{
    json_t *v = kl_cli_json_at(acct, "properties", "disableLocalAuth", NULL);
    if (json_is_true(v))
        return "disabled";
    if (!v || json_is_false(v))
        return "enabled";
    return "?";
}

static int print_account(kl_cli_ctx *c, const json_t *acct)
{
    if (c->args->output == KL_CLI_OUTPUT_JSON)
        return kl_cli_print_json(c->out, acct) == 0 ? KL_CLI_EXIT_OK : kl_cli_output_failed(c);
    const char *id = kl_cli_json_str(acct, "id", NULL);
    char rg[256];
    if (!id || kl_cli_id_segment(id, "resourceGroups", rg, sizeof(rg)) < 0)
        memcpy(rg, "-", 2);
    const kl_cli_field fields[] = {
        {"NAME", kl_cli_json_str(acct, "name", NULL)},
        {"RESOURCE-GROUP", rg},
        {"KIND", kl_cli_json_str(acct, "kind", NULL)},
        {"LOCATION", kl_cli_json_str(acct, "location", NULL)},
        {"SKU", kl_cli_json_str(acct, "sku", "name", NULL)},
        {"LOCAL-AUTH", local_auth(acct)},
        {"PUBLIC-ACCESS", kl_cli_json_str(acct, "properties", "publicNetworkAccess", NULL)},
        {"DEFAULT-ACTION",
         kl_cli_json_str(acct, "properties", "networkAcls", "defaultAction", NULL)},
        {"ENDPOINT", kl_cli_json_str(acct, "properties", "endpoint", NULL)},
        {"STATE", kl_cli_json_str(acct, "properties", "provisioningState", NULL)},
        {"CREATED", kl_cli_json_str(acct, "properties", "dateCreated", NULL)},
        {"ID", id},
    };
    if (kl_cli_print_fields(c->out, fields, sizeof(fields) / sizeof(fields[0])) < 0)
        return kl_cli_output_failed(c);
    return KL_CLI_EXIT_OK;
}

/* GET the account; prints it (show) or hands it back (update). */
static int get_account(kl_cli_ctx *c, const char *target, json_t **acct)
{
    long status;
    int code = kl_cli_call(c, "GET", target, NULL, 0, &status, acct);
    if (code == KL_CLI_EXIT_OK && !json_is_object(*acct)) {
        kl_cli_errorf(c, "keylessd answered with something that is not an account");
        json_decref(*acct);
        *acct = NULL;
        code = KL_CLI_EXIT_REFUSED;
    }
    return code;
}

static int put_and_print(kl_cli_ctx *c, const char *target, const json_t *body)
{
    json_t *acct = NULL;
    long status;
    int code = kl_cli_call_object(c, "PUT", target, body, "account", &status, &acct);
    if (code != KL_CLI_EXIT_OK)
        goto out;
    code = print_account(c, acct);
out:
    json_decref(acct);
    return code;
}

static int account_create(kl_cli_ctx *c, const char *target)
{
    const kl_cli_args *a = c->args;
    json_t *existing = NULL, *body = NULL;
    long status;

    /* PUT would silently replace an existing account (and could turn keys back on), so
     * create refuses a name that is taken; "account update" changes an account. */
    int code = kl_cli_call(c, "GET", target, NULL, KL_CLI_CALL_QUIET_404, &status, &existing);
    if (code == KL_CLI_EXIT_OK) {
        kl_cli_errorf(c,
                      "account '%s' already exists in resource group '%s' (change it with "
                      "'keyless account update')",
                      a->pos[0], c->resource_group);
        code = KL_CLI_EXIT_REFUSED;
        goto out;
    }
    if (code != KL_CLI_EXIT_NOTFOUND)
        goto out;

    body = json_pack("{s:{s:b}, s:{}}", "properties", "disableLocalAuth", a->disable_local_auth,
                     "tags");
    if (!body ||
        (a->location && json_object_set_new(body, "location", json_string(a->location)) < 0) ||
        (a->kind && json_object_set_new(body, "kind", json_string(a->kind)) < 0)) {
        kl_cli_errorf(c, "cannot build the request (is every value valid UTF-8?)");
        code = KL_CLI_EXIT_USAGE;
        goto out;
    }
    code = put_and_print(c, target, body);
out:
    json_decref(existing);
    json_decref(body);
    return code;
}

/* Applies --default-action and --allow-ip to properties.networkAcls (made if absent):
 * rules are added to those the account has, each once; the server checks them. */
static int update_network_acls(const kl_cli_args *a, json_t *props)
{
    if (!a->default_action && a->n_allow_ip == 0)
        return 0;
    json_t *acls = json_object_get(props, "networkAcls");
    if (!json_is_object(acls)) {
        acls = json_pack("{s:s,s:[]}", "defaultAction", "Allow", "ipRules");
        if (!acls || json_object_set_new(props, "networkAcls", acls) < 0)
            return -1;
    }
    if (a->default_action &&
        json_object_set_new(acls, "defaultAction",
                            json_string(kl_str_ieq(a->default_action, "Deny") ? "Deny" : "Allow")) <
            0)
        return -1;
    json_t *rules = json_object_get(acls, "ipRules");
    if (!json_is_array(rules)) {
        rules = json_array();
        if (!rules || json_object_set_new(acls, "ipRules", rules) < 0)
            return -1;
    }
    for (size_t i = 0; i < a->n_allow_ip; i++) {
        bool have = false;
        size_t j;
        json_t *r;
        json_array_foreach(rules, j, r)
        {
            const char *v = kl_cli_json_str(r, "value", NULL);
            have = have || (v && strcmp(v, a->allow_ip[i]) == 0);
        }
        if (!have && json_array_append_new(rules, json_pack("{s:s}", "value", a->allow_ip[i])) < 0)
            return -1;
    }
    return 0;
}

static int account_update(kl_cli_ctx *c, const char *target)
{
    json_t *acct = NULL, *body = NULL, *props = NULL;
    int code = get_account(c, target, &acct);
    if (code != KL_CLI_EXIT_OK)
        goto out;

    /* A PUT replaces the whole resource: send back what the account has, with the one
     * property changed, and without what only the server may set. */
    body = json_object();
    json_t *old_props = kl_cli_json_at(acct, "properties", NULL);
    props = json_is_object(old_props) ? json_deep_copy(old_props) : json_object();
    if (!body || !props)
        goto nomem;
    for (size_t i = 0; i < sizeof(READ_ONLY_PROPERTIES) / sizeof(READ_ONLY_PROPERTIES[0]); i++)
        json_object_del(props, READ_ONLY_PROPERTIES[i]);
    const kl_cli_args *a = c->args;
    if (a->disable_local_auth_valued &&
        json_object_set_new(props, "disableLocalAuth", json_boolean(a->disable_local_auth)) < 0)
        goto nomem;
    if (a->public_network_access &&
        json_object_set_new(props, "publicNetworkAccess",
                            json_string(kl_str_ieq(a->public_network_access, "Disabled")
                                            ? "Disabled"
                                            : "Enabled")) < 0)
        goto nomem;
    if (update_network_acls(a, props) < 0)
        goto nomem;
    static const char *const kept[] = {"location", "kind", "sku", "tags"};
    for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
        json_t *v = json_object_get(acct, kept[i]);
        if (v && json_object_set(body, kept[i], v) < 0)
            goto nomem;
    }
    if (json_object_set(body, "properties", props) < 0)
        goto nomem;
    code = put_and_print(c, target, body);
    goto out;
nomem:
    code = kl_cli_out_of_memory(c);
out:
    json_decref(acct);
    json_decref(body);
    json_decref(props);
    return code;
}

static int account_show(kl_cli_ctx *c, const char *target)
{
    json_t *acct = NULL;
    int code = get_account(c, target, &acct);
    if (code == KL_CLI_EXIT_OK)
        code = print_account(c, acct);
    json_decref(acct);
    return code;
}

static int account_delete(kl_cli_ctx *c, const char *target)
{
    char what[512];
    snprintf(what, sizeof(what), "account '%s'", c->args->pos[0]);
    return kl_cli_delete(c, target, what, " (with its deployments and keys)");
}

static const char *rg_cell(const json_t *acct, const void *data, char *buf, size_t buflen)
{
    (void)data;
    const char *id = kl_cli_json_str(acct, "id", NULL);
    if (!id || kl_cli_id_segment(id, "resourceGroups", buf, buflen) < 0)
        return NULL;
    return buf;
}

static const char *local_auth_cell(const json_t *acct, const void *data, char *buf, size_t buflen)
{
    (void)data;
    (void)buf;
    (void)buflen;
    return local_auth(acct);
}

static int account_list(kl_cli_ctx *c)
{
    json_t *list = NULL, *value = NULL;
    kl_buf target;
    int code;

    /* Without an explicit resource group the whole subscription is listed, which is
     * what the RESOURCE-GROUP column is for. */
    kl_buf_init(&target, KL_CLI_TARGET_MAX);
    if (kl_cli_arm_target(&target, c->subscription,
                          c->resource_group_given ? c->resource_group : NULL, NULL, NULL,
                          NULL) < 0) {
        kl_cli_errorf(c, "the request path is too long");
        code = KL_CLI_EXIT_USAGE;
        goto out;
    }
    code = kl_cli_get_list(c, target.data, 0, &list, &value);
    if (code != KL_CLI_EXIT_OK)
        goto out;
    static const kl_cli_column cols[] = {
        {"NAME", {"name"}, NULL},
        {"RESOURCE-GROUP", {NULL}, rg_cell},
        {"KIND", {"kind"}, NULL},
        {"LOCAL-AUTH", {NULL}, local_auth_cell},
        {"ENDPOINT", {"properties", "endpoint"}, NULL},
    };
    code = kl_cli_print_list(c, NULL, list, value, cols, sizeof(cols) / sizeof(cols[0]));
out:
    kl_buf_free(&target);
    json_decref(list);
    return code;
}

int kl_cli_cmd_account(kl_cli_ctx *c)
{
    kl_buf target;
    int code;

    if (c->args->cmd == KL_CLI_CMD_ACCOUNT_LIST)
        return account_list(c);
    if ((code = kl_cli_target(c, &target, c->args->pos[0], NULL, NULL)) != KL_CLI_EXIT_OK)
        return code;
    switch (c->args->cmd) {
    case KL_CLI_CMD_ACCOUNT_CREATE: code = account_create(c, target.data); break;
    case KL_CLI_CMD_ACCOUNT_UPDATE: code = account_update(c, target.data); break;
    case KL_CLI_CMD_ACCOUNT_SHOW: code = account_show(c, target.data); break;
    case KL_CLI_CMD_ACCOUNT_DELETE: code = account_delete(c, target.data); break;
    default:
        kl_cli_errorf(c, "internal error: not an account command");
        code = KL_CLI_EXIT_USAGE;
        break;
    }
    kl_buf_free(&target);
    return code;
}
