/* keyless app create|list|show|delete|disable|enable: applications of the directory
 * (Graph-shaped routes on the admin socket). Creating one also creates its service
 * principal (Graph's second call, POST /servicePrincipals {"appId"}), the identity role
 * assignments are given to and that is enabled or disabled; the CLI shows the two as one
 * (servicePrincipalId, accountEnabled). An application is named on the command line by
 * its display name, object id or client id (appId). */
#include <string.h>

#include "cli/authz.h"
#include "cli/commands.h"
#include "cli/lookup.h"
#include "cli/output.h"
#include "common/err.h"
#include "common/util.h"

#define APP_TARGET_MAX 256

static const char *enabled_text(const json_t *app)
{
    json_t *v = json_object_get(app, "accountEnabled");
    if (json_is_true(v))
        return "true";
    if (json_is_false(v))
        return "false";
    return NULL;
}

/* Appends the strings of list (a JSON array, or NULL) to out, space-separated. */
static void append_uris(const json_t *list, kl_buf *out)
{
    size_t i;
    json_t *u;
    json_array_foreach(list, i, u)
    {
        const char *s = json_string_value(u);
        if (s && ((out->len && kl_buf_append_str(out, " ") < 0) ||
                  kl_cli_append_printable(out, s, strlen(s)) < 0))
            return;
    }
}

static int print_app(kl_cli_ctx *c, const json_t *app)
{
    if (c->args->output == KL_CLI_OUTPUT_JSON)
        return kl_cli_print_json(c->out, app) == 0 ? KL_CLI_EXIT_OK : kl_cli_output_failed(c);
    kl_buf uris;
    kl_buf_init(&uris, 16384);
    append_uris(kl_cli_json_at(app, "publicClient", "redirectUris", NULL), &uris);
    append_uris(kl_cli_json_at(app, "web", "redirectUris", NULL), &uris);
    kl_cli_field fields[8] = {
        {"NAME", kl_cli_json_str(app, "displayName", NULL)},
        {"CLIENT-ID", kl_cli_json_str(app, "appId", NULL)},
        {"OBJECT-ID", kl_cli_json_str(app, "id", NULL)},
        {"SP-OBJECT-ID", kl_cli_json_str(app, "servicePrincipalId", NULL)},
        {"ENABLED", enabled_text(app)},
        {"CREATED", kl_cli_json_str(app, "createdDateTime", NULL)},
    };
    size_t n = 6;
    /* The user sign-in settings are shown only for an application that has some, so
     * that of one that signs nobody in reads as it always did. */
    if (json_is_true(json_object_get(app, "isFallbackPublicClient")))
        fields[n++] = (kl_cli_field){"PUBLIC-CLIENT", "true"};
    if (uris.len)
        fields[n++] = (kl_cli_field){"REDIRECT-URIS", uris.data};
    int rc = kl_cli_print_fields(c->out, fields, n);
    kl_buf_free(&uris);
    return rc < 0 ? kl_cli_output_failed(c) : KL_CLI_EXIT_OK;
}

/* POST /v1.0/applications's body: the name and, for user sign-in, whether it is a
 * public client and its redirect URIs (Graph's publicClient.redirectUris for a public
 * client, web.redirectUris for a confidential one). NULL on failure. */
static json_t *create_body(const kl_cli_args *a)
{
    json_t *body = json_pack("{s:s}", "displayName", a->pos[0]);
    json_t *uris = json_array();
    bool ok = body && uris;
    for (size_t i = 0; ok && i < a->n_redirect_uri; i++)
        ok = json_array_append_new(uris, json_string(a->redirect_uri[i])) == 0;
    if (ok && a->public_client)
        ok = json_object_set_new(body, "isFallbackPublicClient", json_true()) == 0;
    if (ok && a->n_redirect_uri)
        ok = json_object_set_new(body, a->public_client ? "publicClient" : "web",
                                 json_pack("{s:O}", "redirectUris", uris)) == 0;
    json_decref(uris);
    if (!ok) {
        json_decref(body);
        return NULL;
    }
    return body;
}

/* Adds servicePrincipalId and accountEnabled of sp (a Graph service principal) to app. */
static int merge_sp(kl_cli_ctx *c, json_t *app, const json_t *sp)
{
    json_t *id = json_object_get(sp, "id"), *en = json_object_get(sp, "accountEnabled");
    if (!json_is_string(id) || !json_is_boolean(en)) {
        kl_cli_errorf(c, "keylessd answered with something that is not a service principal");
        return KL_CLI_EXIT_REFUSED;
    }
    if (json_object_set(app, "servicePrincipalId", id) ||
        json_object_set(app, "accountEnabled", en))
        return kl_cli_out_of_memory(c);
    return KL_CLI_EXIT_OK;
}

/* /v1.0/servicePrincipals/{appId} of app into *t (GET and PATCH accept the app id). */
static int sp_target(kl_cli_ctx *c, const json_t *app, kl_buf *t)
{
    const char *id = kl_cli_json_str(app, "appId", NULL);
    kl_buf_init(t, APP_TARGET_MAX);
    if (!id || !kl_uuid_valid(id, strlen(id)) ||
        kl_buf_appendf(t, "%s/%s", KL_CLI_GRAPH_SERVICE_PRINCIPALS, id) < 0) {
        kl_buf_free(t);
        kl_cli_errorf(c, "keylessd listed the application without a valid client id");
        return KL_CLI_EXIT_REFUSED;
    }
    return KL_CLI_EXIT_OK;
}

/* Reads app's service principal and merges it into app (an application without one
 * shows no principal and "false"). */
static int add_sp(kl_cli_ctx *c, json_t *app)
{
    kl_buf t = {0};
    json_t *sp = NULL;
    long status;
    int code = sp_target(c, app, &t);
    if (code != KL_CLI_EXIT_OK)
        return code;
    code = kl_cli_call(c, "GET", t.data, NULL, KL_CLI_CALL_QUIET_404, &status, &sp);
    if (code == KL_CLI_EXIT_NOTFOUND) {
        code = json_object_set_new(app, "accountEnabled", json_false()) ? KL_CLI_EXIT_REFUSED
                                                                        : KL_CLI_EXIT_OK;
        goto out;
    }
    if (code == KL_CLI_EXIT_OK)
        code = merge_sp(c, app, sp);
out:
    kl_buf_free(&t);
    json_decref(sp);
    return code;
}

/* /v1.0/applications/{object id} of a listed application. */
static int app_target(kl_cli_ctx *c, const json_t *app, kl_buf *t)
{
    const char *id = kl_cli_json_str(app, "id", NULL);
    kl_buf_init(t, APP_TARGET_MAX);
    if (!id || !kl_uuid_valid(id, strlen(id)) ||
        kl_buf_appendf(t, "%s/%s", KL_CLI_GRAPH_APPLICATIONS, id) < 0) {
        kl_buf_free(t);
        kl_cli_errorf(c, "keylessd listed the application without a valid object id");
        return KL_CLI_EXIT_REFUSED;
    }
    return KL_CLI_EXIT_OK;
}

static int app_create(kl_cli_ctx *c)
{
    json_t *body = create_body(c->args);
    json_t *app = NULL;
    long status;
    int code;
    if (!body) {
        kl_cli_errorf(c, "cannot build the request (are NAME and the URIs valid UTF-8?)");
        return KL_CLI_EXIT_USAGE;
    }
    json_t *sp_body = NULL, *sp = NULL;
    code = kl_cli_call(c, "POST", KL_CLI_GRAPH_APPLICATIONS, body, 0, &status, &app);
    if (code != KL_CLI_EXIT_OK)
        goto out;
    if (!json_is_object(app) || !json_is_string(json_object_get(app, "appId"))) {
        kl_cli_errorf(c, "keylessd answered HTTP %ld without the application", status);
        code = KL_CLI_EXIT_REFUSED;
        goto out;
    }
    if (!(sp_body = json_pack("{s:O}", "appId", json_object_get(app, "appId")))) {
        code = kl_cli_out_of_memory(c);
        goto out;
    }
    code = kl_cli_call(c, "POST", KL_CLI_GRAPH_SERVICE_PRINCIPALS, sp_body, 0, &status, &sp);
    if (code != KL_CLI_EXIT_OK) {
        kl_cli_errorf(c, "the application was registered without its service principal; "
                         "delete it and create it again");
        goto out;
    }
    if ((code = merge_sp(c, app, sp)) == KL_CLI_EXIT_OK)
        code = print_app(c, app);
out:
    json_decref(body);
    json_decref(sp_body);
    json_decref(sp);
    json_decref(app);
    return code;
}

/* The service principal in sps whose appId is app_id, or NULL. */
static const json_t *sp_of(const json_t *sps, const char *app_id)
{
    size_t i;
    json_t *sp;
    json_array_foreach(sps, i, sp)
    {
        const char *a = kl_cli_json_str(sp, "appId", NULL);
        if (a && app_id && kl_str_ieq(a, app_id))
            return sp;
    }
    return NULL;
}

static const char *enabled_cell(const json_t *app, const void *data, char *buf, size_t buflen)
{
    (void)data;
    (void)buf;
    (void)buflen;
    return enabled_text(app);
}

static int app_list(kl_cli_ctx *c)
{
    json_t *root = NULL, *value = NULL, *sp_root = NULL, *sps = NULL;
    int code = kl_cli_get_list(c, KL_CLI_GRAPH_APPLICATIONS, 0, &root, &value);
    if (code != KL_CLI_EXIT_OK)
        return code;
    if ((code = kl_cli_get_list(c, KL_CLI_GRAPH_SERVICE_PRINCIPALS, 0, &sp_root, &sps)) !=
        KL_CLI_EXIT_OK)
        goto out;
    {
        size_t i;
        json_t *app;
        json_array_foreach(value, i, app)
        {
            const json_t *sp = sp_of(sps, kl_cli_json_str(app, "appId", NULL));
            if (sp && (code = merge_sp(c, app, sp)) != KL_CLI_EXIT_OK)
                goto out;
            if (!sp && json_object_set_new(app, "accountEnabled", json_false()))
                goto nomem;
        }
    }
    static const kl_cli_column cols[] = {
        {"NAME", {"displayName"}, NULL},
        {"CLIENT-ID", {"appId"}, NULL},
        {"SP-OBJECT-ID", {"servicePrincipalId"}, NULL},
        {"ENABLED", {NULL}, enabled_cell},
    };
    code = kl_cli_print_list(c, NULL, root, value, cols, sizeof(cols) / sizeof(cols[0]));
    goto out;
nomem:
    code = kl_cli_out_of_memory(c);
out:
    json_decref(root);
    json_decref(sp_root);
    return code;
}

static int app_delete(kl_cli_ctx *c)
{
    const char *x = c->args->pos[0];
    json_t *app = NULL, *answer = NULL;
    kl_buf t = {0};
    long status;
    int code = kl_cli_find_app(c, x, true, &app);
    if (code == KL_CLI_EXIT_NOTFOUND) {
        /* As for every delete: what does not exist is already deleted. */
        if (c->args->output != KL_CLI_OUTPUT_JSON)
            fprintf(c->out, "application '%s' does not exist; nothing to delete\n", x);
        return KL_CLI_EXIT_OK;
    }
    if (code != KL_CLI_EXIT_OK)
        return code;
    if ((code = app_target(c, app, &t)) != KL_CLI_EXIT_OK)
        goto out;
    code = kl_cli_call(c, "DELETE", t.data, NULL, KL_CLI_CALL_QUIET_404, &status, &answer);
    if (code == KL_CLI_EXIT_NOTFOUND) {
        status = 404; /* deleted in the meantime */
        code = KL_CLI_EXIT_OK;
    }
    if (code != KL_CLI_EXIT_OK)
        goto out;
    if (c->args->output == KL_CLI_OUTPUT_JSON) {
        if (answer && kl_cli_print_json(c->out, answer) < 0)
            code = kl_cli_output_failed(c);
    } else if (status == 404) {
        fprintf(c->out, "application '%s' does not exist; nothing to delete\n", x);
    } else {
        const char *name = kl_cli_json_str(app, "displayName", NULL);
        const char *app_id = kl_cli_json_str(app, "appId", NULL);
        kl_buf line;
        kl_buf_init(&line, 1024);
        if (kl_cli_append_printable(&line, name ? name : x, strlen(name ? name : x)) == 0)
            fprintf(c->out,
                    "deleted application '%s' (client id %s) with its service principal and "
                    "role assignments\n",
                    line.data, app_id ? app_id : "-");
        kl_buf_free(&line);
    }
out:
    kl_buf_free(&t);
    json_decref(app);
    json_decref(answer);
    return code;
}

/* PATCH accountEnabled on the application's service principal; prints the application
 * as it now is. */
static int app_set_enabled(kl_cli_ctx *c, bool enabled)
{
    json_t *app = NULL, *answer = NULL, *body = NULL;
    kl_buf t = {0};
    long status;
    int code = kl_cli_find_app(c, c->args->pos[0], false, &app);
    if (code != KL_CLI_EXIT_OK)
        return code;
    if ((code = sp_target(c, app, &t)) != KL_CLI_EXIT_OK)
        goto out;
    if (!(body = json_pack("{s:b}", "accountEnabled", enabled))) {
        code = kl_cli_out_of_memory(c);
        goto out;
    }
    code = kl_cli_call(c, "PATCH", t.data, body, 0, &status, &answer);
    if (code != KL_CLI_EXIT_OK)
        goto out;
    /* Graph answers a PATCH with 204 and no body: read the result back. */
    if ((code = add_sp(c, app)) == KL_CLI_EXIT_OK)
        code = print_app(c, app);
out:
    kl_buf_free(&t);
    json_decref(body);
    json_decref(app);
    json_decref(answer);
    return code;
}

int kl_cli_cmd_app(kl_cli_ctx *c)
{
    json_t *app = NULL;
    int code;
    switch (c->args->cmd) {
    case KL_CLI_CMD_APP_CREATE: return app_create(c);
    case KL_CLI_CMD_APP_LIST: return app_list(c);
    case KL_CLI_CMD_APP_SHOW:
        code = kl_cli_find_app(c, c->args->pos[0], false, &app);
        if (code == KL_CLI_EXIT_OK)
            code = add_sp(c, app);
        if (code == KL_CLI_EXIT_OK)
            code = print_app(c, app);
        json_decref(app);
        return code;
    case KL_CLI_CMD_APP_DELETE: return app_delete(c);
    case KL_CLI_CMD_APP_DISABLE: return app_set_enabled(c, false);
    case KL_CLI_CMD_APP_ENABLE: return app_set_enabled(c, true);
    default: kl_cli_errorf(c, "internal error: not an app command"); return KL_CLI_EXIT_USAGE;
    }
}
