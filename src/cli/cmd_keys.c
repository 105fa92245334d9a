/* keyless keys list|regenerate: the two API keys of an account. Printing them is the
 * purpose of these commands; nothing else in the CLI prints a key. */
#include <string.h>

#include "cli/commands.h"
#include "cli/output.h"
#include "common/util.h"

static int print_keys(kl_cli_ctx *c, const json_t *keys)
{
    if (c->args->output == KL_CLI_OUTPUT_JSON)
        return kl_cli_print_json(c->out, keys) == 0 ? KL_CLI_EXIT_OK : kl_cli_output_failed(c);
    const char *k1 = kl_cli_json_str(keys, "key1", NULL);
    const char *k2 = kl_cli_json_str(keys, "key2", NULL);
    if (!k1 || !k2) {
        kl_cli_errorf(c, "keylessd answered without key1 and key2");
        return KL_CLI_EXIT_REFUSED;
    }
    kl_cli_table t;
    static const char *const headers[] = {"KEY", "VALUE"};
    const char *row1[] = {"key1", k1};
    const char *row2[] = {"key2", k2};
    int rc = kl_cli_table_init(&t, 2, headers);
    if (rc == 0)
        rc = kl_cli_table_add_row(&t, row1);
    if (rc == 0)
        rc = kl_cli_table_add_row(&t, row2);
    if (rc == 0)
        rc = kl_cli_table_print(&t, c->out);
    kl_cli_table_free(&t);
    return rc == 0 ? KL_CLI_EXIT_OK : kl_cli_output_failed(c);
}

int kl_cli_cmd_keys(kl_cli_ctx *c)
{
    const kl_cli_args *a = c->args;
    bool regen = a->cmd == KL_CLI_CMD_KEYS_REGENERATE;
    json_t *body = NULL, *keys = NULL;
    kl_buf target;
    long status;

    int code = kl_cli_target(c, &target, a->pos[0], regen ? "regenerateKey" : "listKeys", NULL);
    if (code != KL_CLI_EXIT_OK)
        return code;
    if (regen) {
        /* ARM spells the key names Key1 and Key2. */
        body = json_pack("{s:s}", "keyName", kl_str_ieq(a->pos[1], "key1") ? "Key1" : "Key2");
        if (!body) {
            kl_cli_errorf(c, "out of memory");
            code = KL_CLI_EXIT_REFUSED;
            goto out;
        }
    }
    code = kl_cli_call(c, "POST", target.data, body, 0, &status, &keys);
    if (code != KL_CLI_EXIT_OK)
        goto out;
    if (!json_is_object(keys)) {
        kl_cli_errorf(c, "keylessd answered HTTP %ld without the keys", status);
        code = KL_CLI_EXIT_REFUSED;
        goto out;
    }
    code = print_keys(c, keys);
out:
    json_decref(body);
    json_decref(keys);
    kl_buf_free(&target);
    return code;
}
