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
    int code = kl_cli_get_list(c, SIGNING_KEYS, 0, &root, &value);
    if (code != KL_CLI_EXIT_OK)
        return code;
    static const kl_cli_column cols[] = {
        {"KID", {"kid"}, NULL},
        {"ALG", {"alg"}, NULL},
        {"STATUS", {"status"}, NULL},
        {"CREATED", {"createdDateTime"}, NULL},
        {"ACTIVE", {"activeDateTime"}, NULL},
        {"RETIRES", {"retireDateTime"}, NULL},
    };
    code = kl_cli_print_list(c, NULL, root, value, cols, sizeof(cols) / sizeof(cols[0]));
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

static const char *error_code_cell(const json_t *s, const void *data, char *buf, size_t buflen)
{
    (void)data;
    snprintf(buf, buflen, "%lld", (long long)json_integer_value(json_object_get(s, "errorCode")));
    return buf;
}

/* keyless signin list: GET /keyless/signIns with the filters as query parameters. */
static int signin_list(kl_cli_ctx *c)
{
    json_t *root = NULL, *value = NULL;
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
    static const kl_cli_column cols[] = {
        {"TIME", {"createdDateTime"}, NULL},
        {"CLIENT-ID", {"appId"}, NULL},
        {"CREDENTIAL", {"credentialType"}, NULL},
        {"FROM", {"ipAddress"}, NULL},
        {"STATUS", {"status"}, NULL},
        {"CODE", {NULL}, error_code_cell},
        {"REASON", {"failureReason"}, NULL},
    };
    code = kl_cli_print_list(c, NULL, root, value, cols, sizeof(cols) / sizeof(cols[0]));
    goto out;
nomem:
    code = kl_cli_out_of_memory(c);
out:
    kl_buf_free(&target);
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
