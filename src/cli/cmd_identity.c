/* keyless identity create|show|list|delete|assign|remove and keyless site|vm
 * create|show|delete: user-assigned managed identities, the sites and VMs that carry
 * identities, and assigning identities to them (or to accounts), through the ARM
 * control plane on the admin socket. A managed identity has no secret: nothing here
 * makes or shows one. */
#include <string.h>

#include "cli/authz.h"
#include "cli/commands.h"
#include "cli/identity_ids.h"
#include "cli/output.h"
#include "common/err.h"
#include "common/util.h"

/* The target of a resource in the context's subscription and group:
 * .../providers/{provider}[/{name}]?api-version={v}; rg NULL lists the subscription. */
static int target(kl_cli_ctx *c, kl_buf *t, const char *rg, const char *provider, const char *name,
                  const char *version)
{
    kl_buf_init(t, KL_CLI_TARGET_MAX);
    int rc = kl_buf_append_str(t, "/subscriptions/");
    if (!rc)
        rc = kl_cli_append_segment(t, c->subscription);
    if (!rc && rg && !(rc = kl_buf_append_str(t, "/resourceGroups/")))
        rc = kl_cli_append_segment(t, rg);
    if (!rc && !(rc = kl_buf_append_str(t, "/providers/")))
        rc = kl_buf_append_str(t, provider);
    if (!rc && name && !(rc = kl_buf_append_str(t, "/")))
        rc = kl_cli_append_segment(t, name);
    if (!rc && !(rc = kl_buf_append_str(t, "?api-version=")))
        rc = kl_buf_append_str(t, version);
    if (rc) {
        kl_buf_free(t);
        kl_cli_errorf(c, "the request path is too long");
        return KL_CLI_EXIT_USAGE;
    }
    return KL_CLI_EXIT_OK;
}

static int nomem(kl_cli_ctx *c)
{
    return kl_cli_out_of_memory(c);
}

/* The last segment of each key of the identity's userAssignedIdentities, joined by ','
 * into out ("-" when none). */
static void user_names(const json_t *identity, char *out, size_t outlen)
{
    const json_t *map = json_object_get(identity, "userAssignedIdentities");
    const char *key;
    json_t *v;
    size_t used = 0;
    snprintf(out, outlen, "-");
    if (!json_is_object(map))
        return;
    json_object_foreach((json_t *)map, key, v)
    {
        int w =
            snprintf(out + used, outlen - used, "%s%s", used ? "," : "", kl_cli_last_segment(key));
        if (w < 0 || (size_t)w >= outlen - used)
            return;
        used += (size_t)w;
    }
}

/* A site, VM or account with its identities. */
static int print_resource(kl_cli_ctx *c, const json_t *r)
{
    if (c->args->output == KL_CLI_OUTPUT_JSON)
        return kl_cli_print_json(c->out, r) == 0 ? KL_CLI_EXIT_OK : kl_cli_output_failed(c);
    const char *id = kl_cli_json_str(r, "id", NULL);
    char rg[256], users[1024];
    if (!id || kl_cli_id_segment(id, "resourceGroups", rg, sizeof(rg)) < 0)
        memcpy(rg, "-", 2);
    const json_t *ident = json_object_get(r, "identity");
    user_names(ident, users, sizeof(users));
    const char *type = kl_cli_json_str(r, "identity", "type", NULL);
    const kl_cli_field fields[] = {
        {"NAME", kl_cli_json_str(r, "name", NULL)},
        {"RESOURCE-GROUP", rg},
        {"TYPE", kl_cli_json_str(r, "type", NULL)},
        {"LOCATION", kl_cli_json_str(r, "location", NULL)},
        {"IDENTITY", type ? type : "None"},
        {"PRINCIPAL-ID", kl_cli_json_str(r, "identity", "principalId", NULL)},
        {"USER-ASSIGNED", users},
        {"ID", id},
    };
    if (kl_cli_print_fields(c->out, fields, sizeof(fields) / sizeof(fields[0])) < 0)
        return kl_cli_output_failed(c);
    return KL_CLI_EXIT_OK;
}

static int print_identity(kl_cli_ctx *c, const json_t *r)
{
    if (c->args->output == KL_CLI_OUTPUT_JSON)
        return kl_cli_print_json(c->out, r) == 0 ? KL_CLI_EXIT_OK : kl_cli_output_failed(c);
    const char *id = kl_cli_json_str(r, "id", NULL);
    char rg[256];
    if (!id || kl_cli_id_segment(id, "resourceGroups", rg, sizeof(rg)) < 0)
        memcpy(rg, "-", 2);
    const kl_cli_field fields[] = {
        {"NAME", kl_cli_json_str(r, "name", NULL)},
        {"RESOURCE-GROUP", rg},
        {"LOCATION", kl_cli_json_str(r, "location", NULL)},
        {"CLIENT-ID", kl_cli_json_str(r, "properties", "clientId", NULL)},
        {"PRINCIPAL-ID", kl_cli_json_str(r, "properties", "principalId", NULL)},
        {"TENANT-ID", kl_cli_json_str(r, "properties", "tenantId", NULL)},
        {"ID", id},
    };
    if (kl_cli_print_fields(c->out, fields, sizeof(fields) / sizeof(fields[0])) < 0)
        return kl_cli_output_failed(c);
    return KL_CLI_EXIT_OK;
}

/* Sends method to t with body and prints the object answered with print. */
static int send_and_print(kl_cli_ctx *c, const char *method, const char *t, const json_t *body,
                          int (*print)(kl_cli_ctx *, const json_t *))
{
    json_t *r = NULL;
    int code = kl_cli_call_object(c, method, t, body, "resource", NULL, &r);
    if (code == KL_CLI_EXIT_OK)
        code = print(c, r);
    json_decref(r);
    return code;
}

static int delete_and_say(kl_cli_ctx *c, const char *t, const char *what, const char *name,
                          const char *gone_with)
{
    char thing[1024], detail[512];
    snprintf(thing, sizeof(thing), "%s '%s'", what, name);
    snprintf(detail, sizeof(detail), " (%s)", gone_with);
    return kl_cli_delete(c, t, thing, detail);
}

/* ---------------------------------------------------------------- identity */

#define UAMI_PROVIDER "Microsoft.ManagedIdentity/userAssignedIdentities"

/* The target of the identity given as x (a name in the context's group, or an id). */
static int identity_target(kl_cli_ctx *c, const char *x, kl_buf *t)
{
    if (x[0] != '/')
        return target(c, t, c->resource_group, UAMI_PROVIDER, x, KL_CLI_MI_API_VERSION);
    kl_buf_init(t, KL_CLI_TARGET_MAX);
    if (kl_cli_identity_id(x, c->subscription, c->resource_group, t) < 0 ||
        kl_buf_append_str(t, "?api-version=" KL_CLI_MI_API_VERSION) < 0) {
        kl_buf_free(t);
        kl_cli_errorf(c, "'%s' is not the id of a user-assigned identity", x);
        return KL_CLI_EXIT_USAGE;
    }
    return KL_CLI_EXIT_OK;
}

static int identity_create(kl_cli_ctx *c)
{
    kl_buf t;
    json_t *existing = NULL, *body = NULL;
    long status;
    int code =
        target(c, &t, c->resource_group, UAMI_PROVIDER, c->args->pos[0], KL_CLI_MI_API_VERSION);
    if (code != KL_CLI_EXIT_OK)
        return code;
    /* A PUT of an existing identity would only change its tags: create refuses the name
     * so that a typo does not pass for a new identity. */
    code = kl_cli_call(c, "GET", t.data, NULL, KL_CLI_CALL_QUIET_404, &status, &existing);
    if (code == KL_CLI_EXIT_OK) {
        kl_cli_errorf(c, "identity '%s' already exists in resource group '%s'", c->args->pos[0],
                      c->resource_group);
        code = KL_CLI_EXIT_REFUSED;
    } else if (code == KL_CLI_EXIT_NOTFOUND) {
        body = json_pack("{s:s, s:{}}", "location", c->args->location ? c->args->location : "local",
                         "tags");
        code = body ? send_and_print(c, "PUT", t.data, body, print_identity) : nomem(c);
    }
    json_decref(existing);
    json_decref(body);
    kl_buf_free(&t);
    return code;
}

static int identity_list(kl_cli_ctx *c)
{
    kl_buf t;
    json_t *list = NULL;
    kl_cli_table tab = {0};
    long status;
    int code = target(c, &t, c->resource_group_given ? c->resource_group : NULL, UAMI_PROVIDER,
                      NULL, KL_CLI_MI_API_VERSION);
    if (code != KL_CLI_EXIT_OK)
        return code;
    code = kl_cli_call(c, "GET", t.data, NULL, 0, &status, &list);
    json_t *value = json_object_get(list, "value");
    if (code == KL_CLI_EXIT_OK && !json_is_array(value)) {
        kl_cli_errorf(c, "keylessd answered without a \"value\" list");
        code = KL_CLI_EXIT_REFUSED;
    }
    if (code != KL_CLI_EXIT_OK)
        goto out;
    if (c->args->output == KL_CLI_OUTPUT_JSON) {
        if (kl_cli_print_json(c->out, list) < 0)
            code = kl_cli_output_failed(c);
        goto out;
    }
    static const char *const headers[] = {"NAME", "RESOURCE-GROUP", "CLIENT-ID", "PRINCIPAL-ID"};
    if (kl_cli_table_init(&tab, 4, headers) < 0) {
        code = nomem(c);
        goto out;
    }
    size_t i;
    json_t *x;
    json_array_foreach(value, i, x)
    {
        const char *id = kl_cli_json_str(x, "id", NULL);
        char rg[256];
        if (!id || kl_cli_id_segment(id, "resourceGroups", rg, sizeof(rg)) < 0)
            memcpy(rg, "-", 2);
        const char *row[] = {kl_cli_json_str(x, "name", NULL), rg,
                             kl_cli_json_str(x, "properties", "clientId", NULL),
                             kl_cli_json_str(x, "properties", "principalId", NULL)};
        if (kl_cli_table_add_row(&tab, row) < 0) {
            code = nomem(c);
            goto out;
        }
    }
    if (kl_cli_table_print(&tab, c->out) < 0)
        code = kl_cli_output_failed(c);
out:
    kl_cli_table_free(&tab);
    json_decref(list);
    kl_buf_free(&t);
    return code;
}

/* identity assign|remove IDENTITY --resource ID...: one PATCH of each resource's
 * identity block, naming only the identity that changes. */
static int identity_assign(kl_cli_ctx *c, bool add)
{
    const kl_cli_args *a = c->args;
    bool system = strcmp(a->pos[0], "system") == 0;
    kl_buf uami;
    kl_buf_init(&uami, KL_CLI_TARGET_MAX);
    if (!system && kl_cli_identity_id(a->pos[0], c->subscription, c->resource_group, &uami) < 0) {
        kl_buf_free(&uami);
        kl_cli_errorf(c,
                      "IDENTITY must be 'system', a user-assigned identity's name or its id, "
                      "not '%s'",
                      a->pos[0]);
        return KL_CLI_EXIT_USAGE;
    }
    int code = KL_CLI_EXIT_OK;
    for (size_t i = 0; code == KL_CLI_EXIT_OK && i < a->n_resource; i++) {
        const kl_cli_resource_type *k = kl_cli_resource_kind(a->resource[i]);
        kl_buf t;
        json_t *res = NULL, *body = NULL;
        bool changes = false;
        long status;
        kl_buf_init(&t, KL_CLI_TARGET_MAX);
        if (!k || kl_buf_appendf(&t, "%s?api-version=%s", a->resource[i], k->api_version) < 0) {
            kl_cli_errorf(c, "the request path is too long");
            code = KL_CLI_EXIT_USAGE;
        } else {
            code = kl_cli_call(c, "GET", t.data, NULL, 0, &status, &res);
        }
        if (code == KL_CLI_EXIT_OK &&
            kl_cli_identity_patch(json_object_get(res, "identity"), system ? NULL : uami.data, add,
                                  &body, &changes) < 0)
            code = nomem(c);
        if (code == KL_CLI_EXIT_OK && changes)
            code = send_and_print(c, "PATCH", t.data, body, print_resource);
        else if (code == KL_CLI_EXIT_OK && c->args->output == KL_CLI_OUTPUT_JSON)
            code = print_resource(c, res);
        else if (code == KL_CLI_EXIT_OK)
            fprintf(c->out, "%s '%s' %s that identity; nothing to change\n", k->noun,
                    kl_cli_last_segment(a->resource[i]), add ? "already has" : "does not have");
        json_decref(res);
        json_decref(body);
        kl_buf_free(&t);
    }
    kl_buf_free(&uami);
    return code;
}

/* ---------------------------------------------------------------- site, vm */

typedef struct compute_kind {
    const char *provider;
    const char *version;
    const char *noun;
} compute_kind;

static const compute_kind SITE = {"Microsoft.Web/sites", KL_CLI_WEB_API_VERSION, "site"};
static const compute_kind VM = {"Microsoft.Compute/virtualMachines", KL_CLI_VM_API_VERSION, "vm"};

/* The identity block of --assign-identity (NULL when none given). */
static int assign_body(kl_cli_ctx *c, json_t *body)
{
    const kl_cli_args *a = c->args;
    if (a->n_assign_identity == 0)
        return KL_CLI_EXIT_OK;
    bool system = false;
    json_t *map = json_object();
    if (!map)
        return nomem(c);
    for (size_t i = 0; i < a->n_assign_identity; i++) {
        if (strcmp(a->assign_identity[i], "system") == 0) {
            system = true;
            continue;
        }
        kl_buf id;
        kl_buf_init(&id, KL_CLI_TARGET_MAX);
        int rc = kl_cli_identity_id(a->assign_identity[i], c->subscription, c->resource_group, &id);
        if (!rc && json_object_set_new(map, id.data, json_object()) < 0)
            rc = KL_ENOMEM;
        kl_buf_free(&id);
        if (rc) {
            json_decref(map);
            if (rc == KL_ENOMEM)
                return nomem(c);
            kl_cli_errorf(c,
                          "--assign-identity must be 'system', a user-assigned identity's "
                          "name or its id, not '%s'",
                          a->assign_identity[i]);
            return KL_CLI_EXIT_USAGE;
        }
    }
    bool user = json_object_size(map) > 0;
    json_t *ident = json_pack("{s:s}", "type",
                              system && user ? "SystemAssigned, UserAssigned"
                              : system       ? "SystemAssigned"
                                             : "UserAssigned");
    if (!ident || (user && json_object_set(ident, "userAssignedIdentities", map) < 0) ||
        json_object_set_new(body, "identity", ident) < 0) {
        json_decref(map);
        return nomem(c);
    }
    json_decref(map);
    return KL_CLI_EXIT_OK;
}

static int compute_create(kl_cli_ctx *c, const compute_kind *k)
{
    kl_buf t;
    json_t *existing = NULL, *body = NULL;
    long status;
    int code = target(c, &t, c->resource_group, k->provider, c->args->pos[0], k->version);
    if (code != KL_CLI_EXIT_OK)
        return code;
    /* PUT would replace an existing one (and its identities): create refuses the name. */
    code = kl_cli_call(c, "GET", t.data, NULL, KL_CLI_CALL_QUIET_404, &status, &existing);
    if (code == KL_CLI_EXIT_OK) {
        kl_cli_errorf(c,
                      "%s '%s' already exists in resource group '%s' (assign identities with "
                      "'keyless identity assign')",
                      k->noun, c->args->pos[0], c->resource_group);
        code = KL_CLI_EXIT_REFUSED;
        goto out;
    }
    if (code != KL_CLI_EXIT_NOTFOUND)
        goto out;
    body = json_pack("{s:s, s:{}}", "location", c->args->location ? c->args->location : "local",
                     "tags");
    code = body ? assign_body(c, body) : nomem(c);
    if (code == KL_CLI_EXIT_OK)
        code = send_and_print(c, "PUT", t.data, body, print_resource);
out:
    json_decref(existing);
    json_decref(body);
    kl_buf_free(&t);
    return code;
}

static int compute_cmd(kl_cli_ctx *c, const compute_kind *k, int verb)
{
    if (verb == 0)
        return compute_create(c, k);
    kl_buf t;
    int code = target(c, &t, c->resource_group, k->provider, c->args->pos[0], k->version);
    if (code != KL_CLI_EXIT_OK)
        return code;
    if (verb == 1)
        code = send_and_print(c, "GET", t.data, NULL, print_resource);
    else
        code = delete_and_say(c, t.data, k->noun, c->args->pos[0],
                              "with its system-assigned identity and that identity's role "
                              "assignments; user-assigned identities are only detached");
    kl_buf_free(&t);
    return code;
}

int kl_cli_cmd_identity(kl_cli_ctx *c)
{
    kl_buf t;
    int code;
    switch (c->args->cmd) {
    case KL_CLI_CMD_IDENTITY_CREATE: return identity_create(c);
    case KL_CLI_CMD_IDENTITY_LIST: return identity_list(c);
    case KL_CLI_CMD_IDENTITY_ASSIGN: return identity_assign(c, true);
    case KL_CLI_CMD_IDENTITY_REMOVE: return identity_assign(c, false);
    case KL_CLI_CMD_IDENTITY_SHOW:
    case KL_CLI_CMD_IDENTITY_DELETE:
        if ((code = identity_target(c, c->args->pos[0], &t)) != KL_CLI_EXIT_OK)
            return code;
        if (c->args->cmd == KL_CLI_CMD_IDENTITY_SHOW)
            code = send_and_print(c, "GET", t.data, NULL, print_identity);
        else
            code = delete_and_say(c, t.data, "identity", c->args->pos[0],
                                  "detached from every resource, with its role assignments");
        kl_buf_free(&t);
        return code;
    case KL_CLI_CMD_SITE_CREATE: return compute_cmd(c, &SITE, 0);
    case KL_CLI_CMD_SITE_SHOW: return compute_cmd(c, &SITE, 1);
    case KL_CLI_CMD_SITE_DELETE: return compute_cmd(c, &SITE, 2);
    case KL_CLI_CMD_VM_CREATE: return compute_cmd(c, &VM, 0);
    case KL_CLI_CMD_VM_SHOW: return compute_cmd(c, &VM, 1);
    case KL_CLI_CMD_VM_DELETE: return compute_cmd(c, &VM, 2);
    default: break;
    }
    kl_cli_errorf(c, "internal error: not an identity command");
    return KL_CLI_EXIT_USAGE;
}
