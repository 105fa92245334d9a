/* keyless tenant show: the directory tenant keylessd created on its first start (its id
 * is the "tenant" of every token and of the Entra-style endpoints). */
#include "cli/commands.h"
#include "cli/lookup.h"
#include "cli/output.h"

int kl_cli_cmd_tenant(kl_cli_ctx *c)
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
