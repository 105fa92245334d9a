/* keyless app cert add|list|remove: an application's certificates, through Graph's
 * keyCredentials (PATCH /v1.0/applications/{id} with the whole set: kept entries by
 * keyId, a new one with its key). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/lookup.h"
#include "cli/output.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/util.h"

#define CERT_FILE_MAX (32 * 1024) /* a PEM or DER certificate file */
#define TARGET_MAX 256

static const char *str_or_empty(const json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "";
}

static int read_cert_file(kl_cli_ctx *c, const char *path, kl_buf *data)
{
    char chunk[4096];
    FILE *f = fopen(path, "rb");
    kl_buf_init(data, CERT_FILE_MAX);
    if (!f) {
        kl_cli_errorf(c, "cannot open %s: %s", path, strerror(errno));
        return KL_CLI_EXIT_USAGE;
    }
    size_t n;
    int code = KL_CLI_EXIT_OK;
    while (code == KL_CLI_EXIT_OK && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if (kl_buf_append(data, chunk, n) < 0) {
            kl_cli_errorf(c, "%s is larger than %d bytes", path, CERT_FILE_MAX);
            code = KL_CLI_EXIT_USAGE;
        }
    if (code == KL_CLI_EXIT_OK && (ferror(f) || data->len == 0)) {
        kl_cli_errorf(c, "cannot read %s", path);
        code = KL_CLI_EXIT_USAGE;
    }
    fclose(f);
    return code;
}

/* GETs the application APP names; *app is a new reference, *target its Graph path. */
static int find(kl_cli_ctx *c, json_t **app, kl_buf *target)
{
    int code = kl_cli_find_app(c, c->args->pos[0], false, app);
    if (code != KL_CLI_EXIT_OK)
        return code;
    const char *id = kl_cli_json_str(*app, "id", NULL);
    kl_buf_init(target, TARGET_MAX);
    if (!id || !kl_uuid_valid(id, strlen(id)) ||
        kl_buf_appendf(target, "%s/%s", KL_CLI_GRAPH_APPLICATIONS, id) < 0) {
        kl_cli_errorf(c, "keylessd listed the application without a valid object id");
        return KL_CLI_EXIT_REFUSED;
    }
    /* kl_cli_find_app reads the list, which has keyCredentials too; read the one
     * application again so the set is current. */
    json_t *fresh = NULL;
    long status;
    code = kl_cli_call(c, "GET", target->data, NULL, 0, &status, &fresh);
    if (code == KL_CLI_EXIT_OK && json_is_object(fresh)) {
        json_decref(*app);
        *app = fresh;
    } else {
        json_decref(fresh);
    }
    return code;
}

static int print_certs(kl_cli_ctx *c, const json_t *list, const char *only_key_id)
{
    if (c->args->output == KL_CLI_OUTPUT_JSON) {
        json_t *sel = only_key_id ? NULL : json_incref((json_t *)list);
        size_t i;
        json_t *k;
        json_array_foreach(list, i,
                           k) if (only_key_id && kl_str_ieq(str_or_empty(k, "keyId"), only_key_id))
            sel = json_incref(k);
        int rc = kl_cli_print_json(c->out, sel ? sel : json_null());
        json_decref(sel);
        return rc == 0 ? KL_CLI_EXIT_OK : kl_cli_output_failed(c);
    }
    static const char *const headers[] = {"KEY-ID", "THUMBPRINT", "NAME", "START", "END"};
    kl_cli_table t = {0};
    int code = KL_CLI_EXIT_OK;
    if (kl_cli_table_init(&t, 5, headers) < 0)
        goto nomem;
    size_t i;
    json_t *k;
    json_array_foreach(list, i, k)
    {
        if (only_key_id && !kl_str_ieq(str_or_empty(k, "keyId"), only_key_id))
            continue;
        const char *row[] = {
            kl_cli_json_str(k, "keyId", NULL), kl_cli_json_str(k, "customKeyIdentifier", NULL),
            kl_cli_json_str(k, "displayName", NULL), kl_cli_json_str(k, "startDateTime", NULL),
            kl_cli_json_str(k, "endDateTime", NULL)};
        if (kl_cli_table_add_row(&t, row) < 0)
            goto nomem;
    }
    if (kl_cli_table_print(&t, c->out) < 0)
        code = kl_cli_output_failed(c);
    kl_cli_table_free(&t);
    return code;
nomem:
    kl_cli_table_free(&t);
    return kl_cli_out_of_memory(c);
}

/* {"keyCredentials":[{"keyId":..} for each kept one, + extra]} (extra taken, may be
 * NULL); skip_key names one to leave out (keyId or thumbprint), or NULL. */
static json_t *patch_body(const json_t *current, const char *skip_key, json_t *extra, bool *skipped)
{
    json_t *arr = json_array();
    size_t i;
    json_t *k;
    json_array_foreach(current, i, k)
    {
        const char *id = str_or_empty(k, "keyId");
        if (skip_key && (kl_str_ieq(id, skip_key) ||
                         kl_str_ieq(str_or_empty(k, "customKeyIdentifier"), skip_key))) {
            *skipped = true;
            continue;
        }
        if (!arr || json_array_append_new(arr, json_pack("{s:s}", "keyId", id))) {
            json_decref(arr);
            json_decref(extra);
            return NULL;
        }
    }
    if (extra && (!arr || json_array_append_new(arr, extra))) {
        json_decref(arr);
        return NULL;
    }
    json_t *body = json_object();
    if (!body || !arr || json_object_set_new(body, "keyCredentials", arr)) {
        json_decref(body);
        return NULL;
    }
    return body;
}

static int cert_add(kl_cli_ctx *c)
{
    json_t *app = NULL, *body = NULL, *answer = NULL;
    kl_buf file = {0}, target = {0};
    char *b64 = NULL;
    long status;
    int code = read_cert_file(c, c->args->pos[1], &file);
    if (code != KL_CLI_EXIT_OK)
        goto out;
    if ((code = find(c, &app, &target)) != KL_CLI_EXIT_OK)
        goto out;
    size_t bl = 4 * ((file.len + 2) / 3) + 1;
    char key_id[KL_UUID_LEN + 1];
    if (!(b64 = malloc(bl)) || kl_b64_encode(file.data, file.len, b64, bl) < 0 ||
        kl_uuid_v4(key_id) != 0) {
        code = kl_cli_out_of_memory(c);
        goto out;
    }
    bool skipped = false;
    body = patch_body(json_object_get(app, "keyCredentials"), NULL,
                      json_pack("{s:s, s:s, s:s, s:s}", "keyId", key_id, "type",
                                "AsymmetricX509Cert", "usage", "Verify", "key", b64),
                      &skipped);
    if (!body) {
        code = kl_cli_out_of_memory(c);
        goto out;
    }
    if ((code = kl_cli_call(c, "PATCH", target.data, body, 0, &status, &answer)) != KL_CLI_EXIT_OK)
        goto out;
    json_decref(app);
    app = NULL;
    json_decref(answer);
    answer = NULL;
    if ((code = kl_cli_call(c, "GET", target.data, NULL, 0, &status, &app)) != KL_CLI_EXIT_OK)
        goto out;
    code = print_certs(c, json_object_get(app, "keyCredentials"), key_id);
out:
    free(b64);
    kl_buf_free(&file);
    kl_buf_free(&target);
    json_decref(app);
    json_decref(body);
    json_decref(answer);
    return code;
}

static int cert_remove(kl_cli_ctx *c)
{
    json_t *app = NULL, *body = NULL, *answer = NULL;
    kl_buf target = {0};
    long status;
    const char *key = c->args->pos[1];
    int code = find(c, &app, &target);
    if (code != KL_CLI_EXIT_OK)
        goto out;
    bool skipped = false;
    if (!(body = patch_body(json_object_get(app, "keyCredentials"), key, NULL, &skipped))) {
        code = kl_cli_out_of_memory(c);
        goto out;
    }
    if (!skipped) {
        /* As for every delete: what does not exist is already removed. */
        if (c->args->output != KL_CLI_OUTPUT_JSON)
            fprintf(c->out, "the application has no certificate '%s'; nothing to remove\n", key);
        goto out;
    }
    if ((code = kl_cli_call(c, "PATCH", target.data, body, 0, &status, &answer)) != KL_CLI_EXIT_OK)
        goto out;
    if (c->args->output != KL_CLI_OUTPUT_JSON)
        fprintf(c->out, "removed certificate %s\n", key);
out:
    kl_buf_free(&target);
    json_decref(app);
    json_decref(body);
    json_decref(answer);
    return code;
}

int kl_cli_cmd_app_cert(kl_cli_ctx *c)
{
    json_t *app = NULL;
    kl_buf target = {0};
    int code;
    switch (c->args->cmd) {
    case KL_CLI_CMD_APP_CERT_ADD: return cert_add(c);
    case KL_CLI_CMD_APP_CERT_REMOVE: return cert_remove(c);
    case KL_CLI_CMD_APP_CERT_LIST:
        code = find(c, &app, &target);
        if (code == KL_CLI_EXIT_OK)
            code = print_certs(c, json_object_get(app, "keyCredentials"), NULL);
        json_decref(app);
        kl_buf_free(&target);
        return code;
    default: kl_cli_errorf(c, "internal error: not an app cert command"); return KL_CLI_EXIT_USAGE;
    }
}
