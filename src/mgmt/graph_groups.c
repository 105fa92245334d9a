/* Security groups over the control plane, in Microsoft Graph v1.0 shapes: create, list,
 * read, delete, and the members collection with Graph's $ref references. Members are
 * users, service principals (managed identities included) and groups; nesting rules
 * (no cycles, bounded depth and breadth) are the store's. A membership change rebuilds
 * the snapshot in full, so it is in force on the next request. */
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "directory/directory.h"
#include "directory/users.h"
#include "mgmt/internal.h"

static json_t *group_json(const kl_store_group *g)
{
    char when[32];
    kl_time_iso8601(g->created_at, when, sizeof(when));
    json_t *o = json_object();
    if (!o || kl_arm_json_set(o, "id", json_string(g->object_id)) ||
        kl_arm_json_set(o, "displayName", json_string(g->display_name)) ||
        kl_arm_json_set(o, "mailNickname", json_string(g->mail_nickname)) ||
        kl_arm_json_set(o, "description",
                        g->description ? json_string(g->description) : json_null()) ||
        kl_arm_json_set(o, "mailEnabled", json_false()) ||
        kl_arm_json_set(o, "securityEnabled", json_true()) ||
        kl_arm_json_set(o, "groupTypes", json_array()) ||
        kl_arm_json_set(o, "createdDateTime", json_string(when))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* A member as Graph lists directoryObjects: its @odata.type tells which kind. */
static json_t *member_json(const kl_store_principal *p)
{
    kl_principal_type t = KL_PRINCIPAL_USER;
    (void)kl_directory_principal_type_parse(p->type, &t);
    const char *odata = t == KL_PRINCIPAL_USER    ? "#microsoft.graph.user"
                        : t == KL_PRINCIPAL_GROUP ? "#microsoft.graph.group"
                                                  : "#microsoft.graph.servicePrincipal";
    json_t *o = json_object();
    if (!o || kl_arm_json_set(o, "@odata.type", json_string(odata)) ||
        kl_arm_json_set(o, "id", json_string(p->object_id)) ||
        kl_arm_json_set(o, "displayName", json_string(p->display_name)) ||
        (p->app_id && kl_arm_json_set(o, "appId", json_string(p->app_id)))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

void kl_mgmt_groups_list(kl_mgmt_call *c)
{
    static const char *const props[] = {"displayName"};
    const char *want[1];
    kl_arm_filter_term terms[KL_ARM_MAX_FILTER_TERMS];
    if (!kl_mgmt_graph_eq_filter(c, terms, props, 1, "displayName eq '{value}'", want))
        return;
    kl_store_group **list = NULL;
    size_t n = 0;
    int err = kl_store_list_groups(c->m->store, &list, &n);
    if (err) {
        kl_mgmt_fail_internal(c, err, "list_groups");
        return;
    }
    json_t *items = json_array();
    for (size_t i = 0; items && i < n; i++)
        if ((!want[0] || kl_str_ieq(want[0], list[i]->display_name)) &&
            json_array_append_new(items, group_json(list[i]))) {
            json_decref(items);
            items = NULL;
        }
    kl_store_groups_free(list, n);
    kl_mgmt_reply_value(c, items);
}

void kl_mgmt_group_create(kl_mgmt_call *c)
{
    bool has_desc = false;
    const char *name = kl_mgmt_graph_body_string(c->body, "displayName", NULL);
    const char *nick = kl_mgmt_graph_body_string(c->body, "mailNickname", NULL);
    const char *desc = kl_mgmt_graph_body_string(c->body, "description", &has_desc);
    const json_t *mail = json_object_get(c->body, "mailEnabled");
    const json_t *sec = json_object_get(c->body, "securityEnabled");
    const json_t *types = json_object_get(c->body, "groupTypes");
    if (!kl_mgmt_graph_display_name(c, name))
        return;
    if (!nick || !kl_users_valid_mail_nickname(nick, strlen(nick))) {
        kl_mgmt_fail(c, 400, "Request_BadRequest",
                     "Property mailNickname is required: 1-%d printable ASCII characters without "
                     "spaces or @()\\[]\";:<>,.",
                     KL_MAX_MAIL_NICKNAME);
        return;
    }
    if (has_desc && (!desc || strlen(desc) > KL_MAX_GROUP_DESCRIPTION)) {
        kl_mgmt_fail(c, 400, "Request_BadRequest", "description must be at most %d bytes.",
                     KL_MAX_GROUP_DESCRIPTION);
        return;
    }
    /* Only security groups: no mail, no Microsoft 365 ("Unified") or dynamic groups. */
    if ((mail && !json_is_false(mail) && !json_is_null(mail)) ||
        (sec && !json_is_true(sec) && !json_is_null(sec)) ||
        (types && !json_is_null(types) && (!json_is_array(types) || json_array_size(types)))) {
        kl_mgmt_fail(c, 400, "Request_BadRequest",
                     "Only security groups are supported: mailEnabled false, securityEnabled "
                     "true, groupTypes [].");
        return;
    }
    kl_store_group *g = NULL;
    int err = kl_users_create_group(c->m->store, name, nick, has_desc ? desc : NULL, &g);
    if (err == KL_EINVAL)
        kl_mgmt_fail(c, 400, "Request_BadRequest", "The group is malformed.");
    else if (err)
        kl_mgmt_fail_internal(c, err, "create_group");
    else {
        kl_mgmt_log_change(c, "group_created", g->object_id);
        kl_mgmt_applied(c);
        kl_mgmt_reply_json(c, 201, group_json(g));
    }
    kl_store_group_free(g);
}

static kl_store_group *find_group(kl_mgmt_call *c)
{
    kl_store_group *g = NULL;
    int err = kl_store_get_group(c->m->store, c->names.object, &g);
    if (err == KL_ENOTFOUND)
        kl_mgmt_graph_not_found(c, c->names.object);
    else if (err)
        kl_mgmt_fail_internal(c, err, "get_group");
    return g;
}

void kl_mgmt_group_get(kl_mgmt_call *c)
{
    kl_store_group *g = find_group(c);
    if (g)
        kl_mgmt_reply_json(c, 200, group_json(g));
    kl_store_group_free(g);
}

void kl_mgmt_group_delete(kl_mgmt_call *c)
{
    kl_store_group *g = find_group(c);
    if (g)
        kl_mgmt_graph_delete_principal(c, g->object_id, c->names.object, "delete_group",
                                       "group_deleted");
    kl_store_group_free(g);
}

void kl_mgmt_group_members_list(kl_mgmt_call *c)
{
    kl_store_principal **list = NULL;
    size_t n = 0;
    int err = kl_store_list_group_members(c->m->store, c->names.object, &list, &n);
    if (err == KL_ENOTFOUND) {
        kl_mgmt_graph_not_found(c, c->names.object);
        return;
    }
    if (err) {
        kl_mgmt_fail_internal(c, err, "list_group_members");
        return;
    }
    json_t *items = json_array();
    for (size_t i = 0; items && i < n; i++)
        if (json_array_append_new(items, member_json(list[i]))) {
            json_decref(items);
            items = NULL;
        }
    kl_store_principals_free(list, n);
    kl_mgmt_reply_value(c, items);
}

/* The member's object id from a reference: any URL whose last two segments are
 * directoryObjects (or users, groups, servicePrincipals) and a GUID, as Graph clients
 * send ("https://graph.microsoft.com/v1.0/directoryObjects/{id}"). out gets the
 * lower-case GUID. */
static bool parse_ref(const char *url, char out[KL_UUID_LEN + 1])
{
    static const char *const kinds[] = {"directoryObjects", "users", "groups", "servicePrincipals"};
    size_t n = url ? strlen(url) : 0;
    if (n < KL_UUID_LEN + 2 || n > KL_MAX_URL || url[n - KL_UUID_LEN - 1] != '/' ||
        !kl_uuid_valid(url + n - KL_UUID_LEN, KL_UUID_LEN))
        return false;
    size_t end = n - KL_UUID_LEN - 1, start = end;
    while (start > 0 && url[start - 1] != '/')
        start--;
    bool kind = false;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        kind = kind || kl_str_ieqn(url + start, end - start, kinds[i], strlen(kinds[i]));
    if (!kind)
        return false;
    memcpy(out, url + n - KL_UUID_LEN, KL_UUID_LEN + 1);
    kl_arm_lower(out);
    return true;
}

void kl_mgmt_group_member_add(kl_mgmt_call *c)
{
    char member[KL_UUID_LEN + 1];
    if (!parse_ref(kl_mgmt_graph_body_string(c->body, "@odata.id", NULL), member)) {
        kl_mgmt_fail(c, 400, "Request_BadRequest",
                     "Invalid @odata.id: use "
                     "\"https://graph.microsoft.com/v1.0/directoryObjects/{id}\".");
        return;
    }
    int err = kl_store_add_group_member(c->m->store, c->names.object, member, kl_now_unix());
    switch (err) {
    case 0:
        kl_mgmt_log_change(c, "group_member_added", member);
        kl_mgmt_applied(c);
        kl_mgmt_reply_empty(c, 204);
        return;
    case KL_ENOTFOUND: kl_mgmt_graph_not_found(c, c->names.object); return;
    case KL_EINVAL: kl_mgmt_graph_not_found(c, member); return;
    case KL_EEXIST:
        kl_mgmt_fail(c, 400, "Request_BadRequest",
                     "One or more added object references already exist for the following "
                     "modified properties: 'members'.");
        return;
    case KL_ECONFLICT:
        kl_mgmt_fail(c, 400, "Request_BadRequest",
                     "The member '%s' cannot be added: the group would contain itself (a "
                     "circular membership).",
                     member);
        return;
    case KL_ETOOBIG:
        kl_mgmt_fail(c, 400, "Request_BadRequest",
                     "The member cannot be added: a group holds at most %d members, groups nest "
                     "at most %d deep, and a principal is in at most %d groups.",
                     KL_MAX_GROUP_MEMBERS, KL_MAX_GROUP_NESTING, KL_MAX_GROUP_MEMBERSHIPS);
        return;
    default: kl_mgmt_fail_internal(c, err, "add_group_member"); return;
    }
}

void kl_mgmt_group_member_remove(kl_mgmt_call *c)
{
    kl_store_group *g = find_group(c);
    if (!g)
        return;
    int err = kl_store_remove_group_member(c->m->store, g->object_id, c->names.member);
    if (err == KL_ENOTFOUND)
        kl_mgmt_graph_not_found(c, c->names.member);
    else if (err)
        kl_mgmt_fail_internal(c, err, "remove_group_member");
    else {
        kl_mgmt_log_change(c, "group_member_removed", c->names.member);
        kl_mgmt_applied(c);
        kl_mgmt_reply_empty(c, 204);
    }
    kl_store_group_free(g);
}
