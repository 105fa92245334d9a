/* keyless keys list|regenerate: the two API keys of an account, with when each was
 * created and last used (listKeyUsage). Printing keys is the purpose of these commands;
 * nothing else in the CLI prints a key. */
#include <string.h>
#include <time.h>

#include "cli/commands.h"
#include "cli/output.h"
#include "common/util.h"

/* "2026-12-05T05:20:42.000Z" (or without fraction) -> unix seconds; -1 if not that. */
static int64_t parse_time(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *end = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
    if (!end)
        return -1;
    return (int64_t)timegm(&tm);
}

/* An age as its largest whole unit: "12d", "5h", "3m", "40s". */
static void format_age(int64_t s, char *out, size_t outlen)
{
    if (s < 0)
        s = 0;
    if (s >= 86400)
        snprintf(out, outlen, "%lldd", (long long)(s / 86400));
    else if (s >= 3600)
        snprintf(out, outlen, "%lldh", (long long)(s / 3600));
    else if (s >= 60)
        snprintf(out, outlen, "%lldm", (long long)(s / 60));
    else
        snprintf(out, outlen, "%llds", (long long)s);
}

/* The usage entry of key name ("Key1"/"Key2") in the listKeyUsage answer, or NULL. */
static json_t *usage_of(const json_t *usage, const char *name)
{
    size_t i;
    json_t *u;
    json_array_foreach(json_object_get(usage, "value"), i, u)
    {
        const char *k = kl_cli_json_str(u, "keyName", NULL);
        if (k && kl_str_ieq(k, name))
            return u;
    }
    return NULL;
}

static int print_keys(kl_cli_ctx *c, const json_t *keys, const json_t *usage)
{
    const int64_t now = (int64_t)time(NULL);
    const int64_t older = c->args->older_than_s;
    static const char *const names[2] = {"key1", "key2"};
    static const char *const arm_names[2] = {"Key1", "Key2"};
    const char *values[2] = {kl_cli_json_str(keys, "key1", NULL),
                             kl_cli_json_str(keys, "key2", NULL)};
    if (!values[0] || !values[1]) {
        kl_cli_errorf(c, "keylessd answered without key1 and key2");
        return KL_CLI_EXIT_REFUSED;
    }
    bool shown[2];
    int64_t created[2];
    for (int i = 0; i < 2; i++) {
        created[i] = parse_time(kl_cli_json_str(usage_of(usage, arm_names[i]), "createdAt", NULL));
        /* --older-than: only keys known to be at least that old. */
        shown[i] = !older || (created[i] >= 0 && now - created[i] >= older);
    }
    if (c->args->output == KL_CLI_OUTPUT_JSON) {
        /* The server's listKeys answer, without the keys --older-than leaves out (the
         * dates are listKeyUsage's, shown in the table). */
        json_t *o = json_object();
        int rc = o ? 0 : -1;
        for (int i = 0; rc == 0 && i < 2; i++)
            if (shown[i])
                rc = json_object_set_new(o, names[i], json_string(values[i]));
        if (rc == 0)
            rc = kl_cli_print_json(c->out, o);
        json_decref(o);
        return rc == 0 ? KL_CLI_EXIT_OK : kl_cli_output_failed(c);
    }
    kl_cli_table t;
    static const char *const headers[] = {"KEY", "VALUE", "AGE", "LAST-USED"};
    int rc = kl_cli_table_init(&t, 4, headers);
    for (int i = 0; rc == 0 && i < 2; i++) {
        if (!shown[i])
            continue;
        char age[32] = "-", last[16] = "never";
        if (created[i] >= 0)
            format_age(now - created[i], age, sizeof(age));
        const char *lu = kl_cli_json_str(usage_of(usage, arm_names[i]), "lastUsed", NULL);
        if (lu)
            snprintf(last, sizeof(last), "%.10s", lu); /* the day: that is all we know */
        const char *row[] = {names[i], values[i], age, last};
        rc = kl_cli_table_add_row(&t, row);
    }
    if (rc == 0)
        rc = kl_cli_table_print(&t, c->out);
    kl_cli_table_free(&t);
    return rc == 0 ? KL_CLI_EXIT_OK : kl_cli_output_failed(c);
}

int kl_cli_cmd_keys(kl_cli_ctx *c)
{
    const kl_cli_args *a = c->args;
    bool regen = a->cmd == KL_CLI_CMD_KEYS_REGENERATE;
    json_t *body = NULL, *keys = NULL, *usage = NULL;
    kl_buf target, utarget;
    long status;

    kl_buf_init(&utarget, 16);
    int code = kl_cli_target(c, &target, a->pos[0], regen ? "regenerateKey" : "listKeys", NULL);
    if (code != KL_CLI_EXIT_OK)
        return code;
    if (regen) {
        /* ARM spells the key names Key1 and Key2. */
        body = json_pack("{s:s}", "keyName", kl_str_ieq(a->pos[1], "key1") ? "Key1" : "Key2");
        if (!body) {
            code = kl_cli_out_of_memory(c);
            goto out;
        }
    }
    code = kl_cli_call_object(c, "POST", target.data, body, "keys", &status, &keys);
    if (code != KL_CLI_EXIT_OK)
        goto out;
    kl_buf_free(&utarget);
    if ((code = kl_cli_target(c, &utarget, a->pos[0], "listKeyUsage", NULL)) != KL_CLI_EXIT_OK)
        goto out;
    code = kl_cli_call(c, "GET", utarget.data, NULL, 0, &status, &usage);
    if (code != KL_CLI_EXIT_OK)
        goto out;
    code = print_keys(c, keys, usage);
out:
    json_decref(body);
    json_decref(keys);
    json_decref(usage);
    kl_buf_free(&target);
    kl_buf_free(&utarget);
    return code;
}
