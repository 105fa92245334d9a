/* keyless app federated add|list|remove: an application's federated identity
 * credentials (/v1.0/applications/{id}/federatedIdentityCredentials). */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/lookup.h"
#include "cli/output.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/util.h"

#define TARGET_MAX 512
#define DEFAULT_AUDIENCE "api://AzureADTokenExchange"

/* The collection path of the application APP names into *t. */
static int collection(kl_cli_ctx *c, kl_buf *t)
{
    json_t *app = NULL;
    int code = kl_cli_find_app(c, c->args->pos[0], false, &app);
    if (code != KL_CLI_EXIT_OK)
        return code;
    const char *id = json_string_value(json_object_get(app, "id"));
    kl_buf_init(t, TARGET_MAX);
    if (!id || !kl_uuid_valid(id, strlen(id)) ||
        kl_buf_appendf(t, "%s/%s/federatedIdentityCredentials", KL_CLI_GRAPH_APPLICATIONS, id) <
            0) {
        kl_cli_errorf(c, "keylessd listed the application without a valid object id");
        code = KL_CLI_EXIT_REFUSED;
    }
    json_decref(app);
    return code;
}

static int print_one(kl_cli_ctx *c, const json_t *f)
{
    if (c->args->output == KL_CLI_OUTPUT_JSON)
        return kl_cli_print_json(c->out, f) == 0 ? KL_CLI_EXIT_OK : kl_cli_output_failed(c);
    const kl_cli_field fields[] = {
        {"NAME", kl_cli_json_str(f, "name", NULL)},
        {"ID", kl_cli_json_str(f, "id", NULL)},
        {"ISSUER", kl_cli_json_str(f, "issuer", NULL)},
        {"SUBJECT", kl_cli_json_str(f, "subject", NULL)},
        {"AUDIENCE", json_string_value(json_array_get(json_object_get(f, "audiences"), 0))},
    };
    if (kl_cli_print_fields(c->out, fields, sizeof(fields) / sizeof(fields[0])) < 0)
        return kl_cli_output_failed(c);
    return KL_CLI_EXIT_OK;
}

static int fed_add(kl_cli_ctx *c)
{
    kl_buf t = {0};
    json_t *body = NULL, *answer = NULL;
    long status;
    int code = collection(c, &t);
    if (code != KL_CLI_EXIT_OK)
        goto out;
    body = json_pack("{s:s, s:s, s:s, s:[s]}", "name", c->args->pos[1], "issuer", c->args->pos[2],
                     "subject", c->args->pos[3], "audiences", DEFAULT_AUDIENCE);
    if (!body) {
        kl_cli_errorf(c, "cannot build the request (are the arguments valid UTF-8?)");
        code = KL_CLI_EXIT_USAGE;
        goto out;
    }
    if ((code = kl_cli_call(c, "POST", t.data, body, 0, &status, &answer)) == KL_CLI_EXIT_OK)
        code = print_one(c, answer);
out:
    kl_buf_free(&t);
    json_decref(body);
    json_decref(answer);
    return code;
}

static int fed_list(kl_cli_ctx *c, json_t **root_out, json_t **value_out, kl_buf *t)
{
    int code = collection(c, t);
    if (code != KL_CLI_EXIT_OK)
        return code;
    return kl_cli_get_list(c, t->data, 0, root_out, value_out);
}

static int fed_list_cmd(kl_cli_ctx *c)
{
    kl_buf t = {0};
    json_t *root = NULL, *value = NULL;
    int code = fed_list(c, &root, &value, &t);
    if (code != KL_CLI_EXIT_OK)
        goto out;
    static const kl_cli_column cols[] = {
        {"NAME", {"name"}, NULL},
        {"ID", {"id"}, NULL},
        {"ISSUER", {"issuer"}, NULL},
        {"SUBJECT", {"subject"}, NULL},
    };
    code = kl_cli_print_list(c, NULL, root, value, cols, sizeof(cols) / sizeof(cols[0]));
out:
    kl_buf_free(&t);
    json_decref(root);
    return code;
}

static int fed_remove(kl_cli_ctx *c)
{
    kl_buf t = {0}, item = {0};
    json_t *root = NULL, *value = NULL, *answer = NULL;
    long status;
    const char *key = c->args->pos[1];
    int code = fed_list(c, &root, &value, &t);
    if (code != KL_CLI_EXIT_OK)
        goto out;
    const char *id = NULL;
    size_t i;
    json_t *f;
    json_array_foreach(value, i, f)
    {
        const char *fid = json_string_value(json_object_get(f, "id"));
        const char *name = json_string_value(json_object_get(f, "name"));
        if ((fid && kl_str_ieq(fid, key)) || (name && kl_str_ieq(name, key)))
            id = fid;
    }
    if (!id) {
        if (c->args->output != KL_CLI_OUTPUT_JSON)
            fprintf(c->out, "the application has no federated credential '%s'; nothing to remove\n",
                    key);
        goto out;
    }
    kl_buf_init(&item, TARGET_MAX);
    if (!kl_uuid_valid(id, strlen(id)) || kl_buf_appendf(&item, "%s/%s", t.data, id) < 0) {
        kl_cli_errorf(c, "keylessd listed a federated credential without a valid id");
        code = KL_CLI_EXIT_REFUSED;
        goto out;
    }
    code = kl_cli_call(c, "DELETE", item.data, NULL, KL_CLI_CALL_QUIET_404, &status, &answer);
    if (code == KL_CLI_EXIT_NOTFOUND)
        code = KL_CLI_EXIT_OK; /* removed in the meantime */
    if (code == KL_CLI_EXIT_OK && c->args->output != KL_CLI_OUTPUT_JSON)
        fprintf(c->out, "removed federated credential %s\n", id);
out:
    kl_buf_free(&t);
    kl_buf_free(&item);
    json_decref(root);
    json_decref(answer);
    return code;
}

int kl_cli_cmd_app_federated(kl_cli_ctx *c)
{
    switch (c->args->cmd) {
    case KL_CLI_CMD_APP_FEDERATED_ADD: return fed_add(c);
    case KL_CLI_CMD_APP_FEDERATED_LIST: return fed_list_cmd(c);
    case KL_CLI_CMD_APP_FEDERATED_REMOVE: return fed_remove(c);
    default:
        kl_cli_errorf(c, "internal error: not an app federated command");
        return KL_CLI_EXIT_USAGE;
    }
}
