/* keyless group create|list|show|delete and group member add|remove|list: security
 * groups of the directory (Graph-shaped /v1.0/groups on the admin socket). A group is
 * named by its object id or display name; a member by a user's userPrincipalName, a
 * group's name, an application's name or client id, or any object id. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/lookup.h"
#include "cli/output.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/util.h"

#define GRAPH_GROUPS "/v1.0/groups"

static int print_group(kl_cli_ctx *c, const json_t *g)
{
    if (c->args->output == KL_CLI_OUTPUT_JSON)
        return kl_cli_print_json(c->out, g) == 0 ? KL_CLI_EXIT_OK : kl_cli_output_failed(c);
    const kl_cli_field fields[] = {
        {"NAME", kl_cli_json_str(g, "displayName", NULL)},
        {"OBJECT-ID", kl_cli_json_str(g, "id", NULL)},
        {"MAIL-NICKNAME", kl_cli_json_str(g, "mailNickname", NULL)},
        {"DESCRIPTION", kl_cli_json_str(g, "description", NULL)},
        {"CREATED", kl_cli_json_str(g, "createdDateTime", NULL)},
    };
    if (kl_cli_print_fields(c->out, fields, sizeof(fields) / sizeof(fields[0])) < 0)
        return kl_cli_output_failed(c);
    return KL_CLI_EXIT_OK;
}

/* The group x names (object id, or display name without regard to case) into *g (a new
 * reference). NOTFOUND (line printed unless quiet), REFUSED when the name is shared. */
static int find_group(kl_cli_ctx *c, const char *x, bool quiet, json_t **g)
{
    json_t *root = NULL, *value = NULL, *item, *hit = NULL;
    size_t i, hits = 0;
    *g = NULL;
    int code = kl_cli_get_list(c, GRAPH_GROUPS, 0, &root, &value);
    if (code != KL_CLI_EXIT_OK)
        return code;
    json_array_foreach(value, i, item)
    {
        const char *id = kl_cli_json_str(item, "id", NULL);
        const char *name = kl_cli_json_str(item, "displayName", NULL);
        if (id && kl_str_ieq(id, x)) {
            hit = item;
            hits = 1;
            break;
        }
        if (name && kl_str_ieq(name, x)) {
            hit = item;
            hits++;
        }
    }
    if (hits == 1) {
        *g = json_incref(hit);
    } else if (hits > 1) {
        kl_cli_errorf(c, "several groups are called '%s': name one by its object id", x);
        code = KL_CLI_EXIT_REFUSED;
    } else {
        if (!quiet)
            kl_cli_errorf(c, "no group '%s'", x);
        code = KL_CLI_EXIT_NOTFOUND;
    }
    json_decref(root);
    return code;
}

/* A mailNickname from a display name: its ASCII letters, digits, '-', '_' and '.', or
 * "group" when none is left. */
static void nickname(const char *name, char out[65])
{
    size_t j = 0;
    for (const char *p = name; *p && j < 64; p++)
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.')
            out[j++] = *p;
    out[j] = '\0';
    if (j == 0)
        snprintf(out, 65, "group");
}

static int group_create(kl_cli_ctx *c)
{
    char nick[65];
    json_t *g = NULL;
    long status;
    nickname(c->args->pos[0], nick);
    json_t *body = json_pack("{s:s, s:s, s:b, s:b}", "displayName", c->args->pos[0], "mailNickname",
                             nick, "mailEnabled", 0, "securityEnabled", 1);
    if (!body) {
        kl_cli_errorf(c, "cannot build the request (is NAME valid UTF-8?)");
        return KL_CLI_EXIT_USAGE;
    }
    int code = kl_cli_call(c, "POST", GRAPH_GROUPS, body, 0, &status, &g);
    if (code == KL_CLI_EXIT_OK)
        code = print_group(c, g);
    json_decref(body);
    json_decref(g);
    return code;
}

static const char *type_cell(const json_t *x, const void *data, char *buf, size_t buflen)
{
    (void)data;
    (void)buf;
    (void)buflen;
    const char *type = kl_cli_json_str(x, "@odata.type", NULL);
    if (type && strncmp(type, "#microsoft.graph.", 17) == 0)
        type += 17;
    return type;
}

/* Prints the listing value (as a table: header, then one row per item). */
static int print_rows(kl_cli_ctx *c, json_t *root, json_t *value, bool members)
{
    static const kl_cli_column groups[] = {
        {"NAME", {"displayName"}, NULL},
        {"OBJECT-ID", {"id"}, NULL},
        {"MAIL-NICKNAME", {"mailNickname"}, NULL},
    };
    static const kl_cli_column member_cols[] = {
        {"TYPE", {NULL}, type_cell},
        {"NAME", {"displayName"}, NULL},
        {"OBJECT-ID", {"id"}, NULL},
    };
    return kl_cli_print_list(c, NULL, root, value, members ? member_cols : groups, 3);
}

static int group_list(kl_cli_ctx *c)
{
    json_t *root = NULL, *value = NULL;
    int code = kl_cli_get_list(c, GRAPH_GROUPS, 0, &root, &value);
    if (code == KL_CLI_EXIT_OK)
        code = print_rows(c, root, value, false);
    json_decref(root);
    return code;
}

/* "/v1.0/groups/{id}" + suffix of group g into t. */
static int group_target(kl_cli_ctx *c, const json_t *g, const char *suffix, kl_buf *t)
{
    const char *id = kl_cli_json_str(g, "id", NULL);
    kl_buf_init(t, KL_CLI_TARGET_MAX);
    if (!id || !kl_uuid_valid(id, strlen(id)) ||
        kl_buf_appendf(t, "%s/%s%s", GRAPH_GROUPS, id, suffix) < 0) {
        kl_buf_free(t);
        kl_cli_errorf(c, "keylessd listed the group without a valid object id");
        return KL_CLI_EXIT_REFUSED;
    }
    return KL_CLI_EXIT_OK;
}

static int group_delete(kl_cli_ctx *c)
{
    const char *x = c->args->pos[0];
    json_t *g = NULL;
    kl_buf t;
    long status;
    int code = find_group(c, x, true, &g);
    if (code == KL_CLI_EXIT_NOTFOUND) {
        if (c->args->output != KL_CLI_OUTPUT_JSON)
            fprintf(c->out, "group '%s' does not exist; nothing to delete\n", x);
        return KL_CLI_EXIT_OK;
    }
    if (code == KL_CLI_EXIT_OK && (code = group_target(c, g, "", &t)) == KL_CLI_EXIT_OK) {
        code = kl_cli_call(c, "DELETE", t.data, NULL, KL_CLI_CALL_QUIET_404, &status, NULL);
        if (code == KL_CLI_EXIT_NOTFOUND)
            code = KL_CLI_EXIT_OK;
        if (code == KL_CLI_EXIT_OK && c->args->output != KL_CLI_OUTPUT_JSON)
            fprintf(c->out, "deleted group %s\n", x);
        kl_buf_free(&t);
    }
    json_decref(g);
    return code;
}

/* The object id MEMBER names into id: a userPrincipalName (contains '@'), a group's
 * name, else what role assignments accept for --assignee (an application's name or
 * client id, or any object id). */
static int resolve_member(kl_cli_ctx *c, const char *x, char id[KL_UUID_LEN + 1])
{
    json_t *j = NULL;
    long status;
    int code;
    if (strchr(x, '@')) {
        kl_buf t;
        kl_buf_init(&t, KL_CLI_TARGET_MAX);
        if (strpbrk(x, "/?#% ") || kl_buf_appendf(&t, "/v1.0/users/%s", x) < 0) {
            kl_buf_free(&t);
            kl_cli_errorf(c, "'%s' is not a userPrincipalName", x);
            return KL_CLI_EXIT_USAGE;
        }
        code = kl_cli_call(c, "GET", t.data, NULL, 0, &status, &j);
        kl_buf_free(&t);
    } else if (kl_uuid_valid(x, strlen(x))) {
        code = KL_CLI_EXIT_NOTFOUND;
    } else {
        code = find_group(c, x, true, &j);
    }
    if (code == KL_CLI_EXIT_OK) {
        const char *oid = kl_cli_json_str(j, "id", NULL);
        code = oid && kl_uuid_valid(oid, strlen(oid)) ? KL_CLI_EXIT_OK : KL_CLI_EXIT_REFUSED;
        if (code == KL_CLI_EXIT_OK)
            snprintf(id, KL_UUID_LEN + 1, "%s", oid);
        json_decref(j);
        return code;
    }
    json_decref(j);
    if (code != KL_CLI_EXIT_NOTFOUND || strchr(x, '@'))
        return code;
    kl_cli_principal p;
    if ((code = kl_cli_resolve_assignee(c, x, &p)) == KL_CLI_EXIT_OK)
        snprintf(id, KL_UUID_LEN + 1, "%s", p.id);
    return code;
}

static int group_member(kl_cli_ctx *c)
{
    json_t *g = NULL, *root = NULL, *value = NULL;
    kl_buf t = {0};
    long status;
    char member[KL_UUID_LEN + 1];
    kl_cli_cmd cmd = c->args->cmd;
    int code = find_group(c, c->args->pos[0], false, &g);
    if (code != KL_CLI_EXIT_OK)
        return code;
    if (cmd == KL_CLI_CMD_GROUP_MEMBER_LIST) {
        if ((code = group_target(c, g, "/members", &t)) == KL_CLI_EXIT_OK &&
            (code = kl_cli_get_list(c, t.data, 0, &root, &value)) == KL_CLI_EXIT_OK)
            code = print_rows(c, root, value, true);
        goto out;
    }
    if ((code = resolve_member(c, c->args->pos[1], member)) != KL_CLI_EXIT_OK)
        goto out;
    if (cmd == KL_CLI_CMD_GROUP_MEMBER_ADD) {
        json_t *body = json_pack("{s:s+}", "@odata.id",
                                 "https://graph.microsoft.com/v1.0/directoryObjects/", member);
        if (!body || (code = group_target(c, g, "/members/$ref", &t)) != KL_CLI_EXIT_OK) {
            json_decref(body);
            code = body ? code : KL_CLI_EXIT_REFUSED;
            goto out;
        }
        code = kl_cli_call(c, "POST", t.data, body, 0, &status, NULL);
        json_decref(body);
    } else {
        char suffix[80];
        snprintf(suffix, sizeof(suffix), "/members/%s/$ref", member);
        if ((code = group_target(c, g, suffix, &t)) == KL_CLI_EXIT_OK)
            code = kl_cli_call(c, "DELETE", t.data, NULL, 0, &status, NULL);
    }
    if (code == KL_CLI_EXIT_OK && c->args->output != KL_CLI_OUTPUT_JSON)
        fprintf(c->out, "%s %s %s group %s\n",
                cmd == KL_CLI_CMD_GROUP_MEMBER_ADD ? "added" : "removed", c->args->pos[1],
                cmd == KL_CLI_CMD_GROUP_MEMBER_ADD ? "to" : "from", c->args->pos[0]);
out:
    kl_buf_free(&t);
    json_decref(root);
    json_decref(g);
    return code;
}

int kl_cli_cmd_group(kl_cli_ctx *c)
{
    switch (c->args->cmd) {
    case KL_CLI_CMD_GROUP_CREATE: return group_create(c);
    case KL_CLI_CMD_GROUP_LIST: return group_list(c);
    case KL_CLI_CMD_GROUP_SHOW: {
        json_t *g = NULL;
        int code = find_group(c, c->args->pos[0], false, &g);
        if (code == KL_CLI_EXIT_OK)
            code = print_group(c, g);
        json_decref(g);
        return code;
    }
    case KL_CLI_CMD_GROUP_DELETE: return group_delete(c);
    case KL_CLI_CMD_GROUP_MEMBER_ADD:
    case KL_CLI_CMD_GROUP_MEMBER_REMOVE:
    case KL_CLI_CMD_GROUP_MEMBER_LIST: return group_member(c);
    default: break;
    }
    kl_cli_errorf(c, "internal error: not a group command");
    return KL_CLI_EXIT_USAGE;
}
