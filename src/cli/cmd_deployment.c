/* keyless deployment create|show|list|delete: the model deployments of an account and
 * the backend each one serves from (the echo model or an upstream model server). */
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/lookup.h"
#include "cli/output.h"
#include "common/err.h"

static const char *backend_type(const json_t *dep)
{
    const char *type = kl_cli_json_str(dep, "properties", "backend", "type", NULL);
    return type ? type : "echo"; /* no backend means the echo model */
}

/* The BACKEND column of a listing: "echo", or where an upstream deployment forwards to. */
static const char *backend_summary(const json_t *dep)
{
    const char *type = backend_type(dep);
    const char *url = kl_cli_json_str(dep, "properties", "backend", "url", NULL);
    if (strcmp(type, "upstream") == 0 && url)
        return url;
    return type;
}

static void add_field(kl_cli_field *fields, size_t *n, const char *label, const char *value)
{
    fields[*n].label = label;
    fields[*n].value = value;
    (*n)++;
}

static int print_deployment(kl_cli_ctx *c, const json_t *dep)
{
    if (c->args->output == KL_CLI_OUTPUT_JSON)
        return kl_cli_print_json(c->out, dep) == 0 ? KL_CLI_EXIT_OK : kl_cli_output_failed(c);

    const char *id = kl_cli_json_str(dep, "id", NULL);
    char account[256];
    if (!id || kl_cli_id_segment(id, "accounts", account, sizeof(account)) < 0)
        memcpy(account, "-", 2);
    bool upstream = strcmp(backend_type(dep), "upstream") == 0;
    json_t *has_cred = kl_cli_json_at(dep, "properties", "backend", "hasCredential", NULL);
    kl_cli_field fields[10];
    size_t n = 0;
    add_field(fields, &n, "NAME", kl_cli_json_str(dep, "name", NULL));
    add_field(fields, &n, "ACCOUNT", account);
    add_field(fields, &n, "MODEL", kl_cli_json_str(dep, "properties", "model", "name", NULL));
    add_field(fields, &n, "BACKEND", backend_type(dep));
    if (upstream) { /* these mean nothing for the echo model */
        add_field(fields, &n, "URL", kl_cli_json_str(dep, "properties", "backend", "url", NULL));
        add_field(fields, &n, "UPSTREAM-MODEL",
                  kl_cli_json_str(dep, "properties", "backend", "model", NULL));
        add_field(fields, &n, "CREDENTIAL", json_is_true(has_cred) ? "stored" : "none");
    }
    add_field(fields, &n, "SKU", kl_cli_json_str(dep, "sku", "name", NULL));
    add_field(fields, &n, "STATE", kl_cli_json_str(dep, "properties", "provisioningState", NULL));
    add_field(fields, &n, "ID", id);
    if (kl_cli_print_fields(c->out, fields, n) < 0)
        return kl_cli_output_failed(c);
    return KL_CLI_EXIT_OK;
}

/* Builds the PUT body. Returns an exit code; *out is set on OK. */
static int create_body(kl_cli_ctx *c, json_t **out)
{
    const kl_cli_args *a = c->args;
    const char *name = a->pos[1];
    const char *model = a->model ? a->model : name;
    json_t *body = NULL, *backend = NULL;
    int code = KL_CLI_EXIT_OK;

    *out = NULL;
    if (a->backend && strcmp(a->backend, "echo") != 0) {
        backend = json_pack("{s:s, s:s, s:s}", "type", "upstream", "url", a->backend, "model",
                            a->upstream_model ? a->upstream_model : model);
        if (!backend)
            goto bad;
        if (a->credential_env) {
            /* The secret comes from the environment, so it never shows in ps or in
             * shell history. */
            const char *secret = getenv(a->credential_env);
            if (!secret || secret[0] == '\0') {
                kl_cli_errorf(c,
                              "environment variable %s is not set or empty (it must hold "
                              "the upstream credential)",
                              a->credential_env);
                code = KL_CLI_EXIT_USAGE;
                goto out;
            }
            if (json_object_set_new(backend, "credential", json_string(secret)) < 0)
                goto bad;
        }
    } else {
        backend = json_pack("{s:s}", "type", "echo");
        if (!backend)
            goto bad;
    }
    body =
        json_pack("{s:{s:s, s:i}, s:{s:{s:s, s:s}, s:O}}", "sku", "name", "Standard", "capacity", 1,
                  "properties", "model", "format", "OpenAI", "name", model, "backend", backend);
    if (!body)
        goto bad;
    *out = body;
    goto out;
bad:
    kl_cli_errorf(c, "cannot build the request (is every value valid UTF-8?)");
    code = KL_CLI_EXIT_USAGE;
out:
    json_decref(backend);
    return code;
}

static int deployment_create(kl_cli_ctx *c, const char *target)
{
    json_t *body = NULL, *dep = NULL;
    long status;
    int code = create_body(c, &body);
    if (code != KL_CLI_EXIT_OK)
        goto out;
    code = kl_cli_call_object(c, "PUT", target, body, "deployment", &status, &dep);
    if (code != KL_CLI_EXIT_OK)
        goto out;
    code = print_deployment(c, dep);
out:
    json_decref(body);
    json_decref(dep);
    return code;
}

static int deployment_show(kl_cli_ctx *c, const char *target)
{
    json_t *dep = NULL;
    long status;
    int code = kl_cli_call(c, "GET", target, NULL, 0, &status, &dep);
    if (code != KL_CLI_EXIT_OK)
        goto out;
    if (!json_is_object(dep)) {
        kl_cli_errorf(c, "keylessd answered with something that is not a deployment");
        code = KL_CLI_EXIT_REFUSED;
        goto out;
    }
    code = print_deployment(c, dep);
out:
    json_decref(dep);
    return code;
}

static int deployment_delete(kl_cli_ctx *c, const char *target)
{
    char what[1024];
    snprintf(what, sizeof(what), "deployment '%s' of account '%s'", c->args->pos[1],
             c->args->pos[0]);
    return kl_cli_delete(c, target, what, "");
}

static const char *backend_cell(const json_t *dep, const void *data, char *buf, size_t buflen)
{
    (void)data;
    (void)buf;
    (void)buflen;
    return backend_summary(dep);
}

static int deployment_list(kl_cli_ctx *c, const char *target)
{
    json_t *list = NULL, *value = NULL;
    int code = kl_cli_get_list(c, target, 0, &list, &value);
    if (code != KL_CLI_EXIT_OK)
        return code;
    static const kl_cli_column cols[] = {
        {"NAME", {"name"}, NULL},
        {"MODEL", {"properties", "model", "name"}, NULL},
        {"BACKEND", {NULL}, backend_cell},
    };
    code = kl_cli_print_list(c, NULL, list, value, cols, sizeof(cols) / sizeof(cols[0]));
    json_decref(list);
    return code;
}

int kl_cli_cmd_deployment(kl_cli_ctx *c)
{
    const kl_cli_args *a = c->args;
    kl_buf target;
    const char *name = a->cmd == KL_CLI_CMD_DEPLOYMENT_LIST ? NULL : a->pos[1];
    int code = kl_cli_target(c, &target, a->pos[0], "deployments", name);
    if (code != KL_CLI_EXIT_OK)
        return code;
    switch (a->cmd) {
    case KL_CLI_CMD_DEPLOYMENT_CREATE: code = deployment_create(c, target.data); break;
    case KL_CLI_CMD_DEPLOYMENT_SHOW: code = deployment_show(c, target.data); break;
    case KL_CLI_CMD_DEPLOYMENT_LIST: code = deployment_list(c, target.data); break;
    case KL_CLI_CMD_DEPLOYMENT_DELETE: code = deployment_delete(c, target.data); break;
    default:
        kl_cli_errorf(c, "internal error: not a deployment command");
        code = KL_CLI_EXIT_USAGE;
        break;
    }
    kl_buf_free(&target);
    return code;
}
