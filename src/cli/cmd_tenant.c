/* keyless tenant show: the directory tenant keylessd created on its first start (its id
 * is the "tenant" of every token and of the Entra-style endpoints); keyless tenant set:
 * the tenant's settings (/keyless/tenantSettings). */
#include "cli/commands.h"
#include "cli/lookup.h"
#include "cli/output.h"

static int tenant_show(kl_cli_ctx *c)
{
    json_t *root = NULL, *value = NULL;
    int code = kl_cli_get_list(c, KL_CLI_GRAPH_ORGANIZATION, 0, &root, &value);
    if (code != KL_CLI_EXIT_OK)
        return code;
    json_t *org = json_array_get(value, 0);
    if (!json_is_object(org)) {
        kl_cli_errorf(c, "keylessd answered without a tenant");
        code = KL_CLI_EXIT_REFUSED;
        goto out;
    }
    if (c->args->output == KL_CLI_OUTPUT_JSON) {
        if (kl_cli_print_json(c->out, org) < 0)
            code = kl_cli_output_failed(c);
        goto out;
    }
    const kl_cli_field fields[] = {
        {"TENANT-ID", kl_cli_json_str(org, "id", NULL)},
        {"NAME", kl_cli_json_str(org, "displayName", NULL)},
        {"CREATED", kl_cli_json_str(org, "createdDateTime", NULL)},
    };
    if (kl_cli_print_fields(c->out, fields, sizeof(fields) / sizeof(fields[0])) < 0)
        code = kl_cli_output_failed(c);
out:
    json_decref(root);
    return code;
}

#define TENANT_SETTINGS "/keyless/tenantSettings"

/* PATCH /keyless/tenantSettings, then prints the settings as they now are. */
static int tenant_set(kl_cli_ctx *c)
{
    json_t *body = json_pack("{s:b}", "passwordGrantEnabled", c->args->password_grant);
    json_t *settings = NULL;
    long status;
    int code = body ? kl_cli_call(c, "PATCH", TENANT_SETTINGS, body, 0, &status, &settings)
                    : KL_CLI_EXIT_REFUSED;
    if (code != KL_CLI_EXIT_OK)
        goto out;
    if (!json_is_object(settings)) {
        json_decref(settings);
        settings = NULL;
        if ((code = kl_cli_call_object(c, "GET", TENANT_SETTINGS, NULL, "tenant settings", NULL,
                                       &settings)) != KL_CLI_EXIT_OK)
            goto out;
    }
    if (c->args->output == KL_CLI_OUTPUT_JSON) {
        if (kl_cli_print_json(c->out, settings) < 0)
            code = kl_cli_output_failed(c);
        goto out;
    }
    json_t *pg = json_object_get(settings, "passwordGrantEnabled");
    const kl_cli_field fields[] = {
        {"PASSWORD-GRANT", json_is_true(pg)    ? "on"
                           : json_is_false(pg) ? "off"
                                               : NULL},
    };
    if (kl_cli_print_fields(c->out, fields, sizeof(fields) / sizeof(fields[0])) < 0)
        code = kl_cli_output_failed(c);
out:
    json_decref(body);
    json_decref(settings);
    return code;
}

int kl_cli_cmd_tenant(kl_cli_ctx *c)
{
    return c->args->cmd == KL_CLI_CMD_TENANT_SET ? tenant_set(c) : tenant_show(c);
}
