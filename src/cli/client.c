/* Shared plumbing of the keyless commands; see client.h. */
#include "cli/client.h"

#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli/output.h"
#include "common/err.h"
#include "common/util.h"

#define ERRLINE_MAX 4096

int kl_cli_arm_target(kl_buf *out, const char *sub, const char *rg, const char *account,
                      const char *child, const char *child_name)
{
    int rc;
    if ((rc = kl_buf_append_str(out, "/subscriptions/")) < 0 ||
        (rc = kl_cli_append_segment(out, sub)) < 0)
        return rc;
    if (rg) {
        if ((rc = kl_buf_append_str(out, "/resourceGroups/")) < 0 ||
            (rc = kl_cli_append_segment(out, rg)) < 0)
            return rc;
    }
    if ((rc = kl_buf_append_str(out, "/providers/Microsoft.CognitiveServices/accounts")) < 0)
        return rc;
    if (account) {
        if ((rc = kl_buf_append_str(out, "/")) < 0 ||
            (rc = kl_cli_append_segment(out, account)) < 0)
            return rc;
        if (child) {
            if ((rc = kl_buf_append_str(out, "/")) < 0 || (rc = kl_buf_append_str(out, child)) < 0)
                return rc;
            if (child_name && ((rc = kl_buf_append_str(out, "/")) < 0 ||
                               (rc = kl_cli_append_segment(out, child_name)) < 0))
                return rc;
        }
    }
    return kl_buf_append_str(out, "?api-version=" KL_CLI_API_VERSION);
}

int kl_cli_target(kl_cli_ctx *c, kl_buf *t, const char *account, const char *child,
                  const char *child_name)
{
    kl_buf_init(t, KL_CLI_TARGET_MAX);
    if (kl_cli_arm_target(t, c->subscription, c->resource_group, account, child, child_name) < 0) {
        kl_buf_free(t);
        kl_cli_errorf(c, "the request path is too long");
        return KL_CLI_EXIT_USAGE;
    }
    return KL_CLI_EXIT_OK;
}

int kl_cli_out_of_memory(kl_cli_ctx *c)
{
    kl_cli_errorf(c, "out of memory");
    return KL_CLI_EXIT_REFUSED;
}

int kl_cli_output_failed(kl_cli_ctx *c)
{
    kl_cli_errorf(c, "cannot write the output");
    return KL_CLI_EXIT_REFUSED;
}

void kl_cli_errorf(kl_cli_ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("error: ", c->err);
    vfprintf(c->err, fmt, ap);
    fputc('\n', c->err);
    va_end(ap);
}

static json_t *json_walk(const json_t *j, va_list ap)
{
    json_t *cur = (json_t *)j;
    const char *key;
    while (cur && (key = va_arg(ap, const char *)) != NULL)
        cur = json_object_get(cur, key);
    return cur;
}

json_t *kl_cli_json_at(const json_t *j, ...)
{
    va_list ap;
    va_start(ap, j);
    json_t *v = json_walk(j, ap);
    va_end(ap);
    return v;
}

const char *kl_cli_json_str(const json_t *j, ...)
{
    va_list ap;
    va_start(ap, j);
    json_t *v = json_walk(j, ap);
    va_end(ap);
    return json_string_value(v); /* NULL when v is NULL or not a string */
}

int kl_cli_id_segment(const char *id, const char *name, char *out, size_t outlen)
{
    size_t nlen = strlen(name);
    const char *p = id;
    while (p && *p) {
        if (*p == '/')
            p++;
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (kl_str_ieqn(p, len, name, nlen) && end) {
            const char *v = end + 1;
            const char *vend = strchr(v, '/');
            size_t vlen = vend ? (size_t)(vend - v) : strlen(v);
            if (vlen == 0)
                return KL_ENOTFOUND;
            if (vlen >= outlen)
                return KL_ETOOBIG;
            memcpy(out, v, vlen);
            out[vlen] = '\0';
            return 0;
        }
        p = end;
    }
    return KL_ENOTFOUND;
}

int kl_cli_exchange(kl_cli_ctx *c, const char *method, const char *target, const json_t *body,
                    unsigned flags, kl_cli_response *resp)
{
    char *payload = NULL;
    size_t payload_len = 0;
    char err[1024];
    int code;

    resp->status = 0;
    kl_buf_init(&resp->body, KL_CLI_MAX_RESPONSE);
    if (body) {
        payload = json_dumps(body, JSON_COMPACT);
        if (!payload)
            return kl_cli_out_of_memory(c);
        payload_len = strlen(payload);
    }

    const char *bearer = NULL;
    if (c->remote && (code = kl_cli_remote_bearer(c, target, &bearer)) != KL_CLI_EXIT_OK)
        goto out;
    kl_cli_http_msg m = {method, target, NULL, payload, payload_len, bearer};
    int rc = kl_cli_http_send(&c->http, &m, resp, err, sizeof(err));
    if (rc == KL_EIO) {
        kl_cli_errorf(c, "%s", err);
        if (c->http.connect_failed && !c->remote)
            fprintf(c->err, "hint: is keylessd running? Start it with: keylessd --data-dir %s\n",
                    c->data_dir);
        code = KL_CLI_EXIT_UNREACHABLE;
        goto out;
    }
    if (rc < 0) {
        kl_cli_errorf(c, "%s", rc == KL_ENOMEM ? "out of memory" : err);
        code = KL_CLI_EXIT_REFUSED;
        goto out;
    }

    code = kl_cli_exit_for_status(resp->status);
    bool quiet = (flags & KL_CLI_CALL_QUIET_ERRORS) ||
                 (resp->status == 404 && (flags & KL_CLI_CALL_QUIET_404));
    if (code != KL_CLI_EXIT_OK && !quiet) {
        kl_buf line;
        kl_buf_init(&line, ERRLINE_MAX);
        if (kl_cli_format_server_error(resp->status, resp->body.data, resp->body.len, &line) == 0)
            fprintf(c->err, "%s\n", line.data);
        else
            fprintf(c->err, "error: HTTP %ld\n", resp->status);
        kl_buf_free(&line);
    }
out:
    if (payload) {
        /* The body may carry an upstream credential. */
        OPENSSL_cleanse(payload, payload_len);
        free(payload);
    }
    return code;
}

int kl_cli_call(kl_cli_ctx *c, const char *method, const char *target, const json_t *body,
                unsigned flags, long *status, json_t **out_json)
{
    kl_cli_response resp;

    if (out_json)
        *out_json = NULL;
    int code = kl_cli_exchange(c, method, target, body, flags, &resp);
    *status = resp.status;
    if (code == KL_CLI_EXIT_OK && out_json && resp.body.len > 0) {
        *out_json = json_loadb(resp.body.data, resp.body.len, JSON_DECODE_ANY, NULL);
        if (!*out_json) {
            kl_cli_errorf(c, "keylessd answered HTTP %ld with a body that is not JSON",
                          resp.status);
            code = KL_CLI_EXIT_REFUSED;
        }
    }
    kl_cli_response_free(&resp);
    return code;
}

int kl_cli_call_object(kl_cli_ctx *c, const char *method, const char *target, const json_t *body,
                       const char *what, long *status, json_t **obj)
{
    long st = 0;
    int code = kl_cli_call(c, method, target, body, 0, &st, obj);
    if (status)
        *status = st;
    if (code == KL_CLI_EXIT_OK && !json_is_object(*obj)) {
        kl_cli_errorf(c, "keylessd answered HTTP %ld without the %s", st, what);
        code = KL_CLI_EXIT_REFUSED;
    }
    if (code != KL_CLI_EXIT_OK) {
        json_decref(*obj);
        *obj = NULL;
    }
    return code;
}

#define MAX_COLUMNS 16
#define CELL_MAX 64 /* a computed cell written into a buffer (dates, counts, names) */

int kl_cli_print_list(kl_cli_ctx *c, const void *data, const json_t *root, const json_t *items,
                      const kl_cli_column *cols, size_t ncols)
{
    const char *headers[MAX_COLUMNS], *row[MAX_COLUMNS];
    char bufs[MAX_COLUMNS][CELL_MAX];
    kl_cli_table t = {0};
    int code = KL_CLI_EXIT_OK;

    if (c->args->output == KL_CLI_OUTPUT_JSON)
        return kl_cli_print_json(c->out, root) == 0 ? KL_CLI_EXIT_OK : kl_cli_output_failed(c);
    if (ncols == 0 || ncols > MAX_COLUMNS) {
        kl_cli_errorf(c, "internal error: %zu columns", ncols);
        return KL_CLI_EXIT_REFUSED;
    }
    for (size_t k = 0; k < ncols; k++)
        headers[k] = cols[k].header;
    if (kl_cli_table_init(&t, ncols, headers) < 0)
        goto nomem;
    size_t i;
    json_t *item;
    json_array_foreach(items, i, item)
    {
        for (size_t k = 0; k < ncols; k++) {
            if (cols[k].cell) {
                row[k] = cols[k].cell(item, data, bufs[k], sizeof(bufs[k]));
                continue;
            }
            const json_t *v = item;
            for (size_t p = 0; p < 4 && cols[k].path[p] && v; p++)
                v = json_object_get(v, cols[k].path[p]);
            row[k] = json_string_value(v);
        }
        if (kl_cli_table_add_row(&t, row) < 0)
            goto nomem;
    }
    if (kl_cli_table_print(&t, c->out) < 0)
        code = kl_cli_output_failed(c);
    goto out;
nomem:
    code = kl_cli_out_of_memory(c);
out:
    kl_cli_table_free(&t);
    return code;
}

int kl_cli_delete(kl_cli_ctx *c, const char *target, const char *what, const char *detail)
{
    json_t *answer = NULL;
    long status;
    int code = kl_cli_call(c, "DELETE", target, NULL, 0, &status, &answer);
    if (code != KL_CLI_EXIT_OK)
        goto out;
    if (c->args->output == KL_CLI_OUTPUT_JSON) {
        if (answer && kl_cli_print_json(c->out, answer) < 0)
            code = kl_cli_output_failed(c);
    } else if (status == 204) {
        fprintf(c->out, "%s did not exist; nothing to delete\n", what);
    } else {
        fprintf(c->out, "deleted %s%s\n", what, detail);
    }
out:
    json_decref(answer);
    return code;
}
