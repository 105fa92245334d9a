/* keyless signing-key list|rotate: the token service's signing keys, over the admin
 * route /keyless/signingKeys. */
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

int kl_cli_cmd_signing_key(kl_cli_ctx *c)
{
    switch (c->args->cmd) {
    case KL_CLI_CMD_SIGNING_KEY_LIST: return sk_list(c);
    case KL_CLI_CMD_SIGNING_KEY_ROTATE: return sk_rotate(c);
    default:
        kl_cli_errorf(c, "internal error: not a signing-key command");
        return KL_CLI_EXIT_USAGE;
    }
}
