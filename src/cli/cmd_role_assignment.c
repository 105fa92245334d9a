/* keyless role assignment create|list|delete and role check: who holds which role at
 * which scope (Microsoft.Authorization, api-version 2022-04-01), and what that lets a
 * principal do. Tables show role and principal names next to the GUIDs, from one
 * listing each per command. */
#include <string.h>

#include "cli/authz.h"
#include "cli/commands.h"
#include "cli/lookup.h"
#include "cli/output.h"
#include "common/err.h"

#define COLLECTION "roleAssignments"
#define LABEL_MAX 2048

/* "name (guid)", or the guid alone when the name is unknown; "-" when both are. */
static int name_and_id(kl_buf *out, const char *name, const char *id)
{
    kl_buf_init(out, LABEL_MAX);
    if (name && name[0] && id)
        return kl_buf_appendf(out, "%s (%s)", name, id);
    return kl_buf_append_str(out, name && name[0] ? name : id ? id : "-");
}

/* The names shown next to GUIDs: the root role listing and the service principals.
 * Either may be NULL when its look-up failed; the tables then show GUIDs alone. */
typedef struct names {
    json_t *roles_root, *roles;
    json_t *sps_root, *sps;
} names;

static void names_fetch(kl_cli_ctx *c, names *n, bool principals)
{
    memset(n, 0, sizeof(*n));
    kl_cli_role_definitions(c, KL_CLI_CALL_QUIET_ERRORS, &n->roles_root, &n->roles);
    if (principals)
        kl_cli_get_list(c, KL_CLI_GRAPH_SERVICE_PRINCIPALS, KL_CLI_CALL_QUIET_ERRORS, &n->sps_root,
                        &n->sps);
}

static void names_free(names *n)
{
    json_decref(n->roles_root);
    json_decref(n->sps_root);
    memset(n, 0, sizeof(*n));
}

static int print_assignment(kl_cli_ctx *c, const json_t *ra, const char *role_name,
                            const char *principal_name)
{
    if (c->args->output == KL_CLI_OUTPUT_JSON)
        return kl_cli_print_json(c->out, ra) == 0 ? KL_CLI_EXIT_OK : kl_cli_output_failed(c);
    const char *role_id = kl_cli_json_str(ra, "properties", "roleDefinitionId", NULL);
    kl_buf role, principal;
    int rc = name_and_id(&role, role_name, role_id ? kl_cli_last_segment(role_id) : NULL);
    if (rc == 0)
        rc = name_and_id(&principal, principal_name,
                         kl_cli_json_str(ra, "properties", "principalId", NULL));
    else
        kl_buf_init(&principal, LABEL_MAX);
    if (rc == 0) {
        const kl_cli_field fields[] = {
            {"ASSIGNMENT", kl_cli_json_str(ra, "name", NULL)},
            {"ROLE", role.data},
            {"PRINCIPAL", principal.data},
            {"PRINCIPAL-TYPE", kl_cli_json_str(ra, "properties", "principalType", NULL)},
            {"SCOPE", kl_cli_json_str(ra, "properties", "scope", NULL)},
            {"CREATED", kl_cli_json_str(ra, "properties", "createdOn", NULL)},
            {"ID", kl_cli_json_str(ra, "id", NULL)},
        };
        rc = kl_cli_print_fields(c->out, fields, sizeof(fields) / sizeof(fields[0]));
    }
    kl_buf_free(&role);
    kl_buf_free(&principal);
    return rc == 0 ? KL_CLI_EXIT_OK : kl_cli_output_failed(c);
}

static int assignment_create(kl_cli_ctx *c, const char *scope)
{
    const kl_cli_args *a = c->args;
    char role_guid[KL_UUID_LEN + 1], guid[KL_UUID_LEN + 1], role_id[128];
    kl_cli_principal p;
    json_t *def = NULL, *body = NULL, *ra = NULL;
    names n = {0};
    kl_buf target = {0};
    long status;

    int code = kl_cli_resolve_role(c, a->role, role_guid, &def);
    if (code != KL_CLI_EXIT_OK)
        goto out;
    if ((code = kl_cli_resolve_assignee(c, a->assignee, &p)) != KL_CLI_EXIT_OK)
        goto out;
    if (kl_uuid_v4(guid) < 0) {
        kl_cli_errorf(c, "cannot generate a GUID for the assignment");
        code = KL_CLI_EXIT_REFUSED;
        goto out;
    }
    snprintf(role_id, sizeof(role_id), "/providers/Microsoft.Authorization/roleDefinitions/%s",
             role_guid);
    body =
        json_pack("{s:{s:s, s:s}}", "properties", "roleDefinitionId", role_id, "principalId", p.id);
    if (!body || (p.service_principal &&
                  json_object_set_new(json_object_get(body, "properties"), "principalType",
                                      json_string("ServicePrincipal")) < 0)) {
        code = kl_cli_out_of_memory(c);
        goto out;
    }
    if ((code = kl_cli_authz(c, &target, scope, COLLECTION, guid, NULL)) != KL_CLI_EXIT_OK)
        goto out;
    code = kl_cli_call_object(c, "PUT", target.data, body, "role assignment", &status, &ra);
    if (code != KL_CLI_EXIT_OK)
        goto out;
    const char *role_name = kl_cli_json_str(def, "properties", "roleName", NULL);
    if (!role_name && c->args->output != KL_CLI_OUTPUT_JSON) {
        names_fetch(c, &n, false);
        role_name = kl_cli_role_name_of(n.roles, role_guid);
    }
    code = print_assignment(c, ra, role_name, p.name);
out:
    kl_buf_free(&target);
    names_free(&n);
    json_decref(def);
    json_decref(body);
    json_decref(ra);
    return code;
}

/* The role's name (from the definitions listing), else the GUID its id ends with. */
static const char *role_cell(const json_t *ra, const void *data, char *buf, size_t buflen)
{
    (void)buf;
    (void)buflen;
    const names *n = data;
    const char *role_id = kl_cli_json_str(ra, "properties", "roleDefinitionId", NULL);
    const char *role = kl_cli_role_name_of(n->roles, role_id);
    return role ? role : role_id ? kl_cli_last_segment(role_id) : NULL;
}

static const char *principal_name_cell(const json_t *ra, const void *data, char *buf, size_t buflen)
{
    (void)buf;
    (void)buflen;
    const names *n = data;
    return kl_cli_display_name_of(n->sps, kl_cli_json_str(ra, "properties", "principalId", NULL));
}

static int assignment_list(kl_cli_ctx *c, const char *scope)
{
    const kl_cli_args *a = c->args;
    json_t *root = NULL, *value = NULL;
    names n = {0};
    kl_buf target = {0}, filter;
    kl_cli_principal p;
    int code = KL_CLI_EXIT_OK;

    /* Without --all: the assignments that apply at the scope (there and above); with
     * it, also those below. */
    kl_buf_init(&filter, 256);
    if (!a->all && kl_buf_append_str(&filter, "atScope()") < 0)
        goto nomem;
    if (a->assignee) {
        if ((code = kl_cli_resolve_assignee(c, a->assignee, &p)) != KL_CLI_EXIT_OK)
            goto out;
        if (kl_buf_appendf(&filter, "%sprincipalId eq '%s'", filter.len ? " and " : "", p.id) < 0)
            goto nomem;
    }
    code = kl_cli_authz(c, &target, scope, COLLECTION, NULL, filter.len ? filter.data : NULL);
    if (code != KL_CLI_EXIT_OK)
        goto out;
    if ((code = kl_cli_get_list(c, target.data, 0, &root, &value)) != KL_CLI_EXIT_OK)
        goto out;
    /* The names are looked up only for the table (JSON carries the ids). */
    if (a->output != KL_CLI_OUTPUT_JSON)
        names_fetch(c, &n, true);
    static const kl_cli_column cols[] = {
        {"ASSIGNMENT", {"name"}, NULL},
        {"ROLE", {NULL}, role_cell},
        {"PRINCIPAL", {NULL}, principal_name_cell},
        {"PRINCIPAL-ID", {"properties", "principalId"}, NULL},
        {"TYPE", {"properties", "principalType"}, NULL},
        {"SCOPE", {"properties", "scope"}, NULL},
    };
    code = kl_cli_print_list(c, &n, root, value, cols, sizeof(cols) / sizeof(cols[0]));
    goto out;
nomem:
    code = kl_cli_out_of_memory(c);
out:
    names_free(&n);
    kl_buf_free(&target);
    kl_buf_free(&filter);
    json_decref(root);
    return code;
}

/* The scope of the assignment whose GUID is guid, from the listing of every assignment.
 * NOTFOUND (no line printed) when there is none. */
static int find_assignment_scope(kl_cli_ctx *c, const char *guid, kl_buf *scope)
{
    json_t *root = NULL, *value = NULL, *ra, *found = NULL;
    kl_buf target;
    char g[KL_UUID_LEN + 1];
    size_t i;
    int code = kl_cli_authz(c, &target, "/", COLLECTION, NULL, NULL);
    if (code != KL_CLI_EXIT_OK)
        return code;
    code = kl_cli_get_list(c, target.data, 0, &root, &value);
    kl_buf_free(&target);
    if (code != KL_CLI_EXIT_OK)
        return code;
    json_array_foreach(value, i, ra)
    {
        const char *name = kl_cli_json_str(ra, "name", NULL);
        if (name && kl_str_ieq(name, guid)) {
            found = ra;
            break;
        }
    }
    const char *id = kl_cli_json_str(found, "id", NULL);
    if (!found) {
        code = KL_CLI_EXIT_NOTFOUND;
    } else if (!id || kl_cli_assignment_id_split(id, scope, g) < 0) {
        kl_cli_errorf(c, "keylessd listed assignment %s with an id that is not one", guid);
        code = KL_CLI_EXIT_REFUSED;
    }
    json_decref(root);
    return code;
}

static int assignment_delete(kl_cli_ctx *c)
{
    const char *x = c->args->pos[0];
    char guid[KL_UUID_LEN + 1];
    json_t *answer = NULL;
    kl_buf scope, target = {0};
    long status = 0;
    int code = KL_CLI_EXIT_OK;

    kl_buf_init(&scope, KL_MAX_SCOPE + 1);
    if (x[0] == '/') {
        if (kl_cli_assignment_id_split(x, &scope, guid) < 0) { /* args.c checked it */
            kl_cli_errorf(c, "'%s' is not a role assignment id", x);
            code = KL_CLI_EXIT_USAGE;
            goto out;
        }
    } else {
        memcpy(guid, x, sizeof(guid));
        if (c->args->scope || c->args->account) {
            kl_buf_free(&scope);
            if ((code = kl_cli_command_scope(c, "/", &scope)) != KL_CLI_EXIT_OK)
                goto out;
        } else {
            /* A GUID alone: the assignment may sit at any scope, so find it. */
            code = find_assignment_scope(c, guid, &scope);
            if (code == KL_CLI_EXIT_NOTFOUND) {
                status = 204;
                code = KL_CLI_EXIT_OK;
                goto print;
            }
            if (code != KL_CLI_EXIT_OK)
                goto out;
        }
    }
    if ((code = kl_cli_authz(c, &target, scope.data, COLLECTION, guid, NULL)) != KL_CLI_EXIT_OK)
        goto out;
    code = kl_cli_call(c, "DELETE", target.data, NULL, 0, &status, &answer);
    if (code != KL_CLI_EXIT_OK)
        goto out;
print:
    if (c->args->output == KL_CLI_OUTPUT_JSON) {
        if (answer && kl_cli_print_json(c->out, answer) < 0)
            code = kl_cli_output_failed(c);
    } else if (status == 204) {
        fprintf(c->out, "role assignment %s does not exist; nothing to delete\n", guid);
    } else {
        const char *principal = kl_cli_json_str(answer, "properties", "principalId", NULL);
        fprintf(c->out, "deleted role assignment %s (principal %s at scope %s)\n", guid,
                principal && kl_uuid_valid(principal, strlen(principal)) ? principal : "-",
                scope.data);
    }
out:
    kl_buf_free(&scope);
    kl_buf_free(&target);
    json_decref(answer);
    return code;
}

static int role_check(kl_cli_ctx *c, const char *scope)
{
    const kl_cli_args *a = c->args;
    kl_cli_principal p;
    json_t *body = NULL, *answer = NULL;
    names n = {0};
    kl_buf target = {0}, principal = {0}, role = {0};
    long status;

    int code = kl_cli_resolve_assignee(c, a->assignee, &p);
    if (code != KL_CLI_EXIT_OK)
        goto out;
    body = json_pack("{s:s, s:s, s:s, s:b}", "principalId", p.id, "action", a->action, "scope",
                     scope, "dataAction", a->data);
    if (!body) {
        kl_cli_errorf(c, "cannot build the request (is --action valid UTF-8?)");
        code = KL_CLI_EXIT_USAGE;
        goto out;
    }
    if ((code = kl_cli_authz(c, &target, "/", "checkAccess", NULL, NULL)) != KL_CLI_EXIT_OK)
        goto out;
    code = kl_cli_call(c, "POST", target.data, body, 0, &status, &answer);
    if (code != KL_CLI_EXIT_OK)
        goto out;
    json_t *allowed = json_object_get(answer, "allowed");
    if (!json_is_boolean(allowed)) {
        kl_cli_errorf(c, "keylessd answered HTTP %ld without \"allowed\"", status);
        code = KL_CLI_EXIT_REFUSED;
        goto out;
    }
    /* The answer is the result: exit 0 when allowed, 1 when denied, in both formats. */
    code = json_is_true(allowed) ? KL_CLI_EXIT_OK : KL_CLI_EXIT_REFUSED;
    if (a->output == KL_CLI_OUTPUT_JSON) {
        if (kl_cli_print_json(c->out, answer) < 0)
            code = kl_cli_output_failed(c);
        goto out;
    }
    const char *role_id = kl_cli_json_str(answer, "roleDefinitionId", NULL);
    const char *role_name = NULL;
    if (role_id) {
        names_fetch(c, &n, false);
        role_name = kl_cli_role_name_of(n.roles, role_id);
    }
    if (name_and_id(&principal, p.name, p.id) < 0 ||
        name_and_id(&role, role_name, role_id ? kl_cli_last_segment(role_id) : NULL) < 0) {
        code = kl_cli_out_of_memory(c);
        goto out;
    }
    const kl_cli_field fields[] = {
        {"RESULT", json_is_true(allowed) ? "ALLOWED" : "DENIED"},
        {"PRINCIPAL", principal.data},
        {a->data ? "DATA-ACTION" : "ACTION", a->action},
        {"SCOPE", scope},
        {"REASON", kl_cli_json_str(answer, "reason", NULL)},
        {"ROLE", role_id ? role.data : NULL},
        {"ASSIGNMENT", kl_cli_json_str(answer, "roleAssignmentId", NULL)},
    };
    if (kl_cli_print_fields(c->out, fields, sizeof(fields) / sizeof(fields[0])) < 0)
        code = kl_cli_output_failed(c);
out:
    kl_buf_free(&target);
    kl_buf_free(&principal);
    kl_buf_free(&role);
    names_free(&n);
    json_decref(body);
    json_decref(answer);
    return code;
}

int kl_cli_cmd_role_assignment(kl_cli_ctx *c)
{
    kl_buf scope;
    int code;
    if (c->args->cmd == KL_CLI_CMD_ROLE_ASSIGNMENT_DELETE)
        return assignment_delete(c);
    if ((code = kl_cli_command_scope(c, "/", &scope)) != KL_CLI_EXIT_OK)
        return code;
    switch (c->args->cmd) {
    case KL_CLI_CMD_ROLE_ASSIGNMENT_CREATE: code = assignment_create(c, scope.data); break;
    case KL_CLI_CMD_ROLE_ASSIGNMENT_LIST: code = assignment_list(c, scope.data); break;
    case KL_CLI_CMD_ROLE_CHECK: code = role_check(c, scope.data); break;
    default:
        kl_cli_errorf(c, "internal error: not a role assignment command");
        code = KL_CLI_EXIT_USAGE;
        break;
    }
    kl_buf_free(&scope);
    return code;
}
