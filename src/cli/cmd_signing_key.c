/* keyless signing-key list|rotate and signin list: the token service's signing keys
 * (/keyless/signingKeys) and its sign-in log (/keyless/signIns), over the admin socket. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/lookup.h"
#include "cli/output.h"

#define SIGNING_KEYS "/keyless/signingKeys"

static int sk_list(kl_cli_ctx *c)
{
    json_t *root = NULL, *value = NULL;
    kl_cli_table t = {0};
    int code = kl_cli_get_list(c, SIGNING_KEYS, 0, &root, &value);
    if (code != KL_CLI_EXIT_OK)
        return code;
    if (c->args->output == KL_CLI_OUTPUT_JSON) {
        if (kl_cli_print_json(c->out, root) < 0)
            code = kl_cli_output_failed(c);
        goto out;
    }
    static const char *const headers[] = {"KID", "ALG", "STATUS", "CREATED", "ACTIVE", "RETIRES"};
    if (kl_cli_table_init(&t, 6, headers) < 0)
        goto nomem;
    size_t i;
    json_t *k;
    json_array_foreach(value, i, k)
    {
        const char *row[] = {kl_cli_json_str(k, "kid", NULL),
                             kl_cli_json_str(k, "alg", NULL),
                             kl_cli_json_str(k, "status", NULL),
                             kl_cli_json_str(k, "createdDateTime", NULL),
                             kl_cli_json_str(k, "activeDateTime", NULL),
                             kl_cli_json_str(k, "retireDateTime", NULL)};
        if (kl_cli_table_add_row(&t, row) < 0)
            goto nomem;
    }
    if (kl_cli_table_print(&t, c->out) < 0)
        code = kl_cli_output_failed(c);
    goto out;
nomem:
    kl_cli_errorf(c, "out of memory");
    code = KL_CLI_EXIT_REFUSED;
out:
    kl_cli_table_free(&t);
    json_decref(root);
    return code;
}

static int sk_rotate(kl_cli_ctx *c)
{
    json_t *body = json_pack("{s:b}", "revokePrevious", c->args->revoke_previous);
    json_t *answer = NULL;
    long status;
    int code = kl_cli_call(c, "POST", SIGNING_KEYS "/rotate", body, 0, &status, &answer);
    if (code != KL_CLI_EXIT_OK)
        goto out;
    if (c->args->output == KL_CLI_OUTPUT_JSON) {
        if (kl_cli_print_json(c->out, answer) < 0)
            code = kl_cli_output_failed(c);
        goto out;
    }
    const char *kid = kl_cli_json_str(answer, "kid", NULL);
    fprintf(c->out, "new signing key %s signs from now on; %s\n", kid ? kid : "-",
            c->args->revoke_previous ? "every earlier key is revoked"
                                     : "earlier keys stay valid until their tokens expire");
out:
    json_decref(body);
    json_decref(answer);
    return code;
}

/* keyless signin list: GET /keyless/signIns with the filters as query parameters. */
static int signin_list(kl_cli_ctx *c)
{
    json_t *root = NULL, *value = NULL;
    kl_cli_table t = {0};
    kl_buf target;
    kl_buf_init(&target, 512);
    int code = KL_CLI_EXIT_OK;
    if (c->args->client && !kl_uuid_valid(c->args->client, strlen(c->args->client))) {
        kl_cli_errorf(c, "--client must be a client id (GUID)");
        code = KL_CLI_EXIT_USAGE;
        goto out;
    }
    if (kl_buf_appendf(&target, "/keyless/signIns?failed=%s%s%s",
                       c->args->failed ? "true" : "false", c->args->client ? "&client=" : "",
                       c->args->client ? c->args->client : "") < 0)
        goto nomem;
    code = kl_cli_get_list(c, target.data, 0, &root, &value);
    if (code != KL_CLI_EXIT_OK)
        goto out;
    if (c->args->output == KL_CLI_OUTPUT_JSON) {
        if (kl_cli_print_json(c->out, root) < 0)
            code = kl_cli_output_failed(c);
        goto out;
    }
    static const char *const headers[] = {"TIME",   "CLIENT-ID", "CREDENTIAL", "FROM",
                                          "STATUS", "CODE",      "REASON"};
    if (kl_cli_table_init(&t, 7, headers) < 0)
        goto nomem;
    size_t i;
    json_t *s;
    json_array_foreach(value, i, s)
    {
        char codebuf[16];
        snprintf(codebuf, sizeof(codebuf), "%lld",
                 (long long)json_integer_value(json_object_get(s, "errorCode")));
        const char *row[] = {
            kl_cli_json_str(s, "createdDateTime", NULL), kl_cli_json_str(s, "appId", NULL),
            kl_cli_json_str(s, "credentialType", NULL),  kl_cli_json_str(s, "ipAddress", NULL),
            kl_cli_json_str(s, "status", NULL),          codebuf,
            kl_cli_json_str(s, "failureReason", NULL)};
        if (kl_cli_table_add_row(&t, row) < 0)
            goto nomem;
    }
    if (kl_cli_table_print(&t, c->out) < 0)
        code = kl_cli_output_failed(c);
    goto out;
nomem:
    kl_cli_errorf(c, "out of memory");
    code = KL_CLI_EXIT_REFUSED;
out:
    kl_buf_free(&target);
    kl_cli_table_free(&t);
    json_decref(root);
    return code;
}

int kl_cli_cmd_signing_key(kl_cli_ctx *c)
{
    switch (c->args->cmd) {
    case KL_CLI_CMD_SIGNING_KEY_LIST: return sk_list(c);
    case KL_CLI_CMD_SIGNING_KEY_ROTATE: return sk_rotate(c);
    case KL_CLI_CMD_SIGNIN_LIST: return signin_list(c);
    default:
        kl_cli_errorf(c, "internal error: not a signing-key command");
        return KL_CLI_EXIT_USAGE;
    }
}
