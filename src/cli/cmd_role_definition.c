/* keyless role definition list|show|create|delete: the built-in and custom roles of
 * Microsoft.Authorization (api-version 2022-04-01). A role is named on the command line
 * by its roleName (without regard to case) or its GUID. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/authz.h"
#include "cli/commands.h"
#include "cli/lookup.h"
#include "cli/output.h"
#include "common/err.h"

#define COLLECTION "roleDefinitions"

/* Adds the strings of one permission list, one per row, the label on the first. */
static int add_list_rows(kl_cli_table *t, const char *label, const json_t *perms, const char *key)
{
    size_t i, j, rows = 0;
    json_t *p, *v;
    int rc;
    json_array_foreach(perms, i, p)
    {
        json_array_foreach(json_object_get(p, key), j, v)
        {
            if (!json_is_string(v))
                continue;
            const char *row[] = {rows++ == 0 ? label : "", json_string_value(v)};
            if ((rc = kl_cli_table_add_row(t, row)) < 0)
                return rc;
        }
    }
    if (rows == 0) {
        const char *row[] = {label, NULL};
        return kl_cli_table_add_row(t, row);
    }
    return 0;
}

static int print_definition(kl_cli_ctx *c, const json_t *def)
{
    if (c->args->output == KL_CLI_OUTPUT_JSON)
        return kl_cli_print_json(c->out, def) == 0 ? KL_CLI_EXIT_OK : kl_cli_output_failed(c);
    json_t *props = json_object_get(def, "properties");
    json_t *perms = json_object_get(props, "permissions");
    kl_cli_table t;
    kl_buf scopes;
    kl_buf_init(&scopes, 1 << 20);
    const kl_cli_field head[] = {
        {"NAME", kl_cli_json_str(props, "roleName", NULL)},
        {"GUID", kl_cli_json_str(def, "name", NULL)},
        {"TYPE", kl_cli_json_str(props, "type", NULL)},
        {"DESCRIPTION", kl_cli_json_str(props, "description", NULL)},
    };
    int rc = kl_cli_table_init(&t, 2, NULL);
    for (size_t i = 0; rc == 0 && i < sizeof(head) / sizeof(head[0]); i++) {
        const char *row[] = {head[i].label, head[i].value};
        rc = kl_cli_table_add_row(&t, row);
    }
    if (rc == 0)
        rc = kl_cli_join_strings(json_object_get(props, "assignableScopes"), ", ", &scopes);
    if (rc == 0) {
        const char *row[] = {"ASSIGNABLE-SCOPES", scopes.len ? scopes.data : NULL};
        rc = kl_cli_table_add_row(&t, row);
    }
    static const char *const lists[][2] = {{"ACTIONS", "actions"},
                                           {"NOT-ACTIONS", "notActions"},
                                           {"DATA-ACTIONS", "dataActions"},
                                           {"NOT-DATA-ACTIONS", "notDataActions"}};
    for (size_t i = 0; rc == 0 && i < sizeof(lists) / sizeof(lists[0]); i++)
        rc = add_list_rows(&t, lists[i][0], perms, lists[i][1]);
    if (rc == 0) {
        const char *row[] = {"ID", kl_cli_json_str(def, "id", NULL)};
        rc = kl_cli_table_add_row(&t, row);
    }
    if (rc == 0)
        rc = kl_cli_table_print(&t, c->out);
    kl_cli_table_free(&t);
    kl_buf_free(&scopes);
    return rc == 0 ? KL_CLI_EXIT_OK : kl_cli_output_failed(c);
}

static int definition_list(kl_cli_ctx *c, const char *scope)
{
    json_t *root = NULL, *value = NULL;
    kl_buf target;
    int code = kl_cli_authz(c, &target, scope, COLLECTION, NULL,
                            c->args->custom ? "type eq 'CustomRole'" : NULL);
    if (code != KL_CLI_EXIT_OK)
        return code;
    code = kl_cli_get_list(c, target.data, 0, &root, &value);
    if (code != KL_CLI_EXIT_OK)
        goto out;
    static const kl_cli_column cols[] = {
        {"NAME", {"properties", "roleName"}, NULL},
        {"TYPE", {"properties", "type"}, NULL},
        {"GUID", {"name"}, NULL},
    };
    code = kl_cli_print_list(c, NULL, root, value, cols, sizeof(cols) / sizeof(cols[0]));
out:
    kl_buf_free(&target);
    json_decref(root);
    return code;
}

/* Finds the role x names in the listing at scope: a new reference in *def. NOTFOUND
 * (an error line printed unless quiet_missing) when no role has that name or GUID. */
static int find_definition(kl_cli_ctx *c, const char *scope, const char *x, bool quiet_missing,
                           json_t **def)
{
    json_t *root = NULL, *value = NULL, *found = NULL;
    kl_buf target;
    *def = NULL;
    int code = kl_cli_authz(c, &target, scope, COLLECTION, NULL, NULL);
    if (code != KL_CLI_EXIT_OK)
        return code;
    code = kl_cli_get_list(c, target.data, 0, &root, &value);
    kl_buf_free(&target);
    if (code != KL_CLI_EXIT_OK)
        return code;
    size_t n = kl_cli_role_match(value, x, &found);
    if (n == 0) {
        if (!quiet_missing)
            kl_cli_errorf(c,
                          "no role is named '%s' at scope %s (see 'keyless role definition "
                          "list')",
                          x, scope);
        code = KL_CLI_EXIT_NOTFOUND;
    } else if (n > 1) {
        kl_cli_errorf(c, "%zu roles are named '%s'; give the role's GUID instead", n, x);
        code = KL_CLI_EXIT_REFUSED;
    } else {
        *def = json_incref(found);
    }
    json_decref(root);
    return code;
}

static int definition_show(kl_cli_ctx *c, const char *scope)
{
    const char *x = c->args->pos[0];
    json_t *def = NULL;
    long status;
    int code;
    if (kl_uuid_valid(x, strlen(x))) {
        kl_buf target;
        if ((code = kl_cli_authz(c, &target, scope, COLLECTION, x, NULL)) != KL_CLI_EXIT_OK)
            return code;
        code = kl_cli_call(c, "GET", target.data, NULL, 0, &status, &def);
        kl_buf_free(&target);
        if (code == KL_CLI_EXIT_OK && !json_is_object(def)) {
            kl_cli_errorf(c, "keylessd answered with something that is not a role definition");
            code = KL_CLI_EXIT_REFUSED;
        }
    } else {
        code = find_definition(c, scope, x, false, &def);
    }
    if (code == KL_CLI_EXIT_OK)
        code = print_definition(c, def);
    json_decref(def);
    return code;
}

/* Reads the whole file at path (at most KL_CLI_MAX_ROLE_FILE bytes) as JSON. */
static int read_role_file(kl_cli_ctx *c, const char *path, json_t **out)
{
    json_error_t jerr;
    kl_buf data;
    char chunk[4096];
    int code = KL_CLI_EXIT_OK;
    FILE *f = fopen(path, "rb");

    *out = NULL;
    kl_buf_init(&data, KL_CLI_MAX_ROLE_FILE);
    if (!f) {
        kl_cli_errorf(c, "cannot open %s: %s", path, strerror(errno));
        return KL_CLI_EXIT_USAGE;
    }
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (kl_buf_append(&data, chunk, n) < 0) {
            kl_cli_errorf(c, "%s is larger than %d bytes", path, KL_CLI_MAX_ROLE_FILE);
            code = KL_CLI_EXIT_USAGE;
            goto out;
        }
    }
    if (ferror(f)) {
        kl_cli_errorf(c, "cannot read %s: %s", path, strerror(errno));
        code = KL_CLI_EXIT_USAGE;
        goto out;
    }
    *out = json_loadb(data.data ? data.data : "", data.len, 0, &jerr);
    if (!*out) {
        kl_cli_errorf(c, "%s is not valid JSON: %s (line %d, column %d)", path, jerr.text,
                      jerr.line, jerr.column);
        code = KL_CLI_EXIT_USAGE;
    }
out:
    fclose(f);
    kl_buf_free(&data);
    return code;
}

static int definition_create(kl_cli_ctx *c, const char *scope)
{
    const char *path = c->args->file;
    json_t *file = NULL, *body = NULL, *def = NULL;
    char guid[KL_UUID_LEN + 1], why[512];
    kl_buf target = {0};
    long status;
    int code = read_role_file(c, path, &file);
    if (code != KL_CLI_EXIT_OK)
        return code;
    int rc = kl_cli_role_definition_body(file, scope, &body, guid, why, sizeof(why));
    if (rc < 0) {
        kl_cli_errorf(c, "%s: %s", path, why);
        code = rc == KL_ENOMEM ? KL_CLI_EXIT_REFUSED : KL_CLI_EXIT_USAGE;
        goto out;
    }
    if (guid[0] == '\0' && kl_uuid_v4(guid) < 0) {
        kl_cli_errorf(c, "cannot generate a GUID for the role");
        code = KL_CLI_EXIT_REFUSED;
        goto out;
    }
    if ((code = kl_cli_authz(c, &target, scope, COLLECTION, guid, NULL)) != KL_CLI_EXIT_OK)
        goto out;
    code = kl_cli_call_object(c, "PUT", target.data, body, "role definition", &status, &def);
    if (code != KL_CLI_EXIT_OK)
        goto out;
    code = print_definition(c, def);
out:
    kl_buf_free(&target);
    json_decref(file);
    json_decref(body);
    json_decref(def);
    return code;
}

static int definition_delete(kl_cli_ctx *c, const char *scope)
{
    const char *x = c->args->pos[0];
    json_t *def = NULL, *answer = NULL;
    kl_buf target = {0};
    char guid[KL_UUID_LEN + 1];
    long status = 0;
    int code = KL_CLI_EXIT_OK;

    if (kl_uuid_valid(x, strlen(x))) {
        memcpy(guid, x, sizeof(guid));
    } else {
        code = find_definition(c, scope, x, true, &def);
        const char *g = kl_cli_json_str(def, "name", NULL);
        if (code == KL_CLI_EXIT_NOTFOUND) {
            status = 204; /* nothing by that name: nothing to delete */
            code = KL_CLI_EXIT_OK;
            goto print;
        }
        if (code != KL_CLI_EXIT_OK)
            goto out;
        if (!g || !kl_uuid_valid(g, strlen(g))) {
            kl_cli_errorf(c, "keylessd listed role '%s' without a GUID", x);
            code = KL_CLI_EXIT_REFUSED;
            goto out;
        }
        memcpy(guid, g, sizeof(guid));
    }
    if ((code = kl_cli_authz(c, &target, scope, COLLECTION, guid, NULL)) != KL_CLI_EXIT_OK)
        goto out;
    code = kl_cli_call(c, "DELETE", target.data, NULL, 0, &status, &answer);
    if (code != KL_CLI_EXIT_OK)
        goto out;
print:
    if (c->args->output == KL_CLI_OUTPUT_JSON) {
        if (answer && kl_cli_print_json(c->out, answer) < 0)
            code = kl_cli_output_failed(c);
    } else if (status == 204) {
        fprintf(c->out, "role '%s' does not exist; nothing to delete\n", x);
    } else {
        const char *name = kl_cli_json_str(answer, "properties", "roleName", NULL);
        kl_buf line;
        kl_buf_init(&line, 1024);
        if (kl_cli_append_printable(&line, name ? name : x, strlen(name ? name : x)) == 0)
            fprintf(c->out, "deleted role '%s' (%s)\n", line.data, guid);
        kl_buf_free(&line);
    }
out:
    kl_buf_free(&target);
    json_decref(def);
    json_decref(answer);
    return code;
}

int kl_cli_cmd_role_definition(kl_cli_ctx *c)
{
    kl_buf scope;
    int code = kl_cli_command_scope(c, "/", &scope);
    if (code != KL_CLI_EXIT_OK)
        return code;
    switch (c->args->cmd) {
    case KL_CLI_CMD_ROLE_DEFINITION_LIST: code = definition_list(c, scope.data); break;
    case KL_CLI_CMD_ROLE_DEFINITION_SHOW: code = definition_show(c, scope.data); break;
    case KL_CLI_CMD_ROLE_DEFINITION_CREATE: code = definition_create(c, scope.data); break;
    case KL_CLI_CMD_ROLE_DEFINITION_DELETE: code = definition_delete(c, scope.data); break;
    default:
        kl_cli_errorf(c, "internal error: not a role definition command");
        code = KL_CLI_EXIT_USAGE;
        break;
    }
    kl_buf_free(&scope);
    return code;
}
