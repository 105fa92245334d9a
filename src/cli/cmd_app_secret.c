/* keyless app secret add|list|remove: an application's client secrets through Graph's
 * addPassword / removePassword and the application's passwordCredentials. The secret
 * is printed by add, once; keylessd never shows it again. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/lookup.h"
#include "cli/output.h"

#define TARGET_MAX 256

/* /v1.0/applications/{object id}[suffix] of the application c->args->pos[0] names. */
static int secret_target(kl_cli_ctx *c, const char *suffix, json_t **app, kl_buf *t)
{
    int code = kl_cli_find_app(c, c->args->pos[0], false, app);
    if (code != KL_CLI_EXIT_OK)
        return code;
    const char *id = kl_cli_json_str(*app, "id", NULL);
    kl_buf_init(t, TARGET_MAX);
    if (!id || !kl_uuid_valid(id, strlen(id)) ||
        kl_buf_appendf(t, "%s/%s%s", KL_CLI_GRAPH_APPLICATIONS, id, suffix) < 0) {
        kl_cli_errorf(c, "keylessd listed the application without a valid object id");
        return KL_CLI_EXIT_REFUSED;
    }
    return KL_CLI_EXIT_OK;
}

static int secret_add(kl_cli_ctx *c)
{
    json_t *app = NULL, *answer = NULL, *body = NULL, *pc = NULL;
    kl_buf t = {0};
    long status;
    int code = secret_target(c, "/addPassword", &app, &t);
    if (code != KL_CLI_EXIT_OK)
        goto out;
    pc = json_object();
    if (!pc)
        goto nomem;
    if (c->args->display_name &&
        json_object_set_new(pc, "displayName", json_string(c->args->display_name)) != 0) {
        kl_cli_errorf(c, "--display-name must be valid UTF-8");
        code = KL_CLI_EXIT_USAGE;
        goto out;
    }
    if (c->args->days) {
        char *end = NULL;
        errno = 0;
        long days = strtol(c->args->days, &end, 10);
        if (errno || !end || *end || days < 1 || days > 730) {
            kl_cli_errorf(c, "--days must be a whole number from 1 to 730");
            code = KL_CLI_EXIT_USAGE;
            goto out;
        }
        char iso[32];
        kl_time_iso8601(kl_now_unix() + (int64_t)days * 86400, iso, sizeof(iso));
        if (json_object_set_new(pc, "endDateTime", json_string(iso)) != 0)
            goto nomem;
    }
    if (!(body = json_pack("{s:O}", "passwordCredential", pc)))
        goto nomem;
    code = kl_cli_call(c, "POST", t.data, body, 0, &status, &answer);
    if (code != KL_CLI_EXIT_OK)
        goto out;
    if (c->args->output == KL_CLI_OUTPUT_JSON) {
        if (kl_cli_print_json(c->out, answer) < 0)
            code = kl_cli_output_failed(c);
        goto out;
    }
    const kl_cli_field fields[] = {
        {"CLIENT-ID", kl_cli_json_str(app, "appId", NULL)},
        {"KEY-ID", kl_cli_json_str(answer, "keyId", NULL)},
        {"SECRET", kl_cli_json_str(answer, "secretText", NULL)},
        {"EXPIRES", kl_cli_json_str(answer, "endDateTime", NULL)},
    };
    if (kl_cli_print_fields(c->out, fields, sizeof(fields) / sizeof(fields[0])) < 0)
        code = kl_cli_output_failed(c);
    else
        fprintf(c->out, "(the secret is shown this once only)\n");
    goto out;
nomem:
    code = kl_cli_out_of_memory(c);
out:
    kl_buf_free(&t);
    json_decref(pc);
    json_decref(body);
    json_decref(app);
    json_decref(answer);
    return code;
}

static int secret_list(kl_cli_ctx *c)
{
    json_t *app = NULL, *answer = NULL;
    kl_buf t = {0};
    long status;
    int code = secret_target(c, "", &app, &t);
    if (code != KL_CLI_EXIT_OK)
        goto out;
    code = kl_cli_call(c, "GET", t.data, NULL, 0, &status, &answer);
    if (code != KL_CLI_EXIT_OK)
        goto out;
    json_t *creds = json_object_get(answer, "passwordCredentials");
    if (!json_is_array(creds)) {
        kl_cli_errorf(c, "keylessd answered without passwordCredentials");
        code = KL_CLI_EXIT_REFUSED;
        goto out;
    }
    static const kl_cli_column cols[] = {
        {"KEY-ID", {"keyId"}, NULL},     {"HINT", {"hint"}, NULL},
        {"NAME", {"displayName"}, NULL}, {"START", {"startDateTime"}, NULL},
        {"END", {"endDateTime"}, NULL},
    };
    code = kl_cli_print_list(c, NULL, creds, creds, cols, sizeof(cols) / sizeof(cols[0]));
out:

    kl_buf_free(&t);
    json_decref(app);
    json_decref(answer);
    return code;
}

static int secret_remove(kl_cli_ctx *c)
{
    json_t *app = NULL, *answer = NULL, *body = NULL;
    kl_buf t = {0};
    long status;
    const char *key_id = c->args->pos[1];
    if (!kl_uuid_valid(key_id, strlen(key_id))) {
        kl_cli_errorf(c, "KEY-ID must be a GUID (see 'keyless app secret list')");
        return KL_CLI_EXIT_USAGE;
    }
    int code = secret_target(c, "/removePassword", &app, &t);
    if (code != KL_CLI_EXIT_OK)
        goto out;
    if (!(body = json_pack("{s:s}", "keyId", key_id))) {
        code = kl_cli_out_of_memory(c);
        goto out;
    }
    code = kl_cli_call(c, "POST", t.data, body, 0, &status, &answer);
    if (code == KL_CLI_EXIT_OK && c->args->output != KL_CLI_OUTPUT_JSON)
        fprintf(c->out, "removed secret %s\n", key_id);
out:
    kl_buf_free(&t);
    json_decref(body);
    json_decref(app);
    json_decref(answer);
    return code;
}

int kl_cli_cmd_app_secret(kl_cli_ctx *c)
{
    switch (c->args->cmd) {
    case KL_CLI_CMD_APP_SECRET_ADD: return secret_add(c);
    case KL_CLI_CMD_APP_SECRET_LIST: return secret_list(c);
    case KL_CLI_CMD_APP_SECRET_REMOVE: return secret_remove(c);
    default:
        kl_cli_errorf(c, "internal error: not an app secret command");
        return KL_CLI_EXIT_USAGE;
    }
}
