/* Managed identities on the control plane: the identity block every host resource takes
 * (see identity.h), Microsoft.ManagedIdentity/userAssignedIdentities (create/update, read,
 * list, delete) and the system-assigned identity of a resource
 * ({resource}/providers/Microsoft.ManagedIdentity/identities/default). No identity ever
 * has a credential: nothing here makes, stores or shows one. */
#include "mgmt/identity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "mgmt/internal.h"
#include "mgmt/resource.h"

/* ---------------------------------------------------------------- the identity block */

static int bad(kl_arm_error *e, const char *msg)
{
    kl_arm_error_set(e, 400, "InvalidRequestContent", "%s", msg);
    return KL_EINVAL;
}

/* Azure's answer for an identity block the identity service refuses (observed shape:
 * FailedIdentityOperation wrapping the service's own error). */
static int identity_refused(kl_arm_error *e, const char *status, const char *code,
                            const char *message)
{
    kl_arm_error_set(e, 400, "FailedIdentityOperation",
                     "Identity operation failed with error 'Failed to perform resource identity "
                     "operation. Status: '%s'. Response: '{\"error\":{\"code\":\"%s\",\"message\":"
                     "\"%s\"}}'.'.",
                     status, code, message);
    return KL_EINVAL;
}

/* type: "None", "SystemAssigned", "UserAssigned" or "SystemAssigned, UserAssigned" (any
 * case, spaces around the comma free). */
static int parse_type(const json_t *t, kl_identity_input *in, kl_arm_error *e)
{
    const char *s = json_string_value(t);
    size_t n = s ? json_string_length(t) : 0;
    if (!s || n == 0 || n > KL_ARM_MAX_IDENTITY_TYPE || strlen(s) != n)
        return bad(e, "identity.type is required: None, SystemAssigned, UserAssigned or "
                      "'SystemAssigned, UserAssigned'.");
    bool none = false;
    for (const char *p = s;;) {
        while (*p == ' ')
            p++;
        size_t len = strcspn(p, ",");
        size_t end = len;
        while (end > 0 && p[end - 1] == ' ')
            end--;
        if (end == 0)
            return bad(e, "identity.type is invalid: use None, SystemAssigned, UserAssigned or "
                          "'SystemAssigned, UserAssigned'.");
        if (kl_str_ieqn(p, end, "SystemAssigned", 14) && !in->system)
            in->system = true;
        else if (kl_str_ieqn(p, end, "UserAssigned", 12) && !in->user)
            in->user = true;
        else if (kl_str_ieqn(p, end, "None", 4) && !none)
            none = true;
        else
            return bad(e, "identity.type is invalid: use None, SystemAssigned, UserAssigned or "
                          "'SystemAssigned, UserAssigned'.");
        p += len;
        if (*p != ',')
            break;
        p++;
    }
    if (none && (in->system || in->user))
        return bad(e, "identity.type None cannot be combined with another type.");
    return 0;
}

/* The canonical ARM id of the user-assigned identity key names, into out; KL_EINVAL when
 * it is not one. */
static int uami_key(const char *key, char *out, size_t outlen)
{
    kl_arm_match m;
    kl_arm_names names;
    kl_arm_error e2;
    if (strnlen(key, KL_MAX_SCOPE + 1) > KL_MAX_SCOPE || !kl_arm_match_path(KL_ARM_UAMI, key, &m) ||
        kl_arm_resolve_names(&m, &names, &e2))
        return KL_EINVAL;
    return kl_mgmt_identity_scope(&names, out, outlen) ? 0 : KL_EINVAL;
}

int kl_identity_parse(const json_t *v, bool patch, kl_identity_input *in, kl_arm_error *e)
{
    memset(in, 0, sizeof(*in));
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_object(v))
        return bad(e, "identity must be an object.");
    in->given = true;
    int err = parse_type(json_object_get(v, "type"), in, e);
    const json_t *map = json_object_get(v, "userAssignedIdentities");
    if (err || !map || json_is_null(map))
        goto out;
    if (!json_is_object(map)) {
        err = bad(e, "identity.userAssignedIdentities must be an object keyed by identity id.");
        goto out;
    }
    size_t n = json_object_size(map);
    if (n > 0 && !in->user) {
        err = identity_refused(e, "BadRequest", "BadRequest",
                               "The request format was unexpected, a non-UserAssigned identity "
                               "type should not contain: userAssignedIdentities");
        goto out;
    }
    if (n > KL_MAX_HOST_USER_IDENTITIES) {
        kl_arm_error_set(e, 400, "InvalidRequestContent",
                         "identity.userAssignedIdentities may name at most %d identities.",
                         KL_MAX_HOST_USER_IDENTITIES);
        err = KL_EINVAL;
        goto out;
    }
    in->ids = calloc(n ? n : 1, sizeof(char *));
    in->removed = calloc(n ? n : 1, sizeof(bool));
    if (!in->ids || !in->removed) {
        err = KL_ENOMEM;
        goto out;
    }
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)map, key, val)
    {
        char id[KL_MAX_SCOPE + 1];
        if (uami_key(key, id, sizeof(id))) {
            /* Not echoed: it may be anything. */
            err = bad(e, "A key of identity.userAssignedIdentities is not the id of a "
                         "user-assigned identity: /subscriptions/{subscription}/resourceGroups/"
                         "{group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/"
                         "{name}.");
            goto out;
        }
        if (!json_is_object(val) && !(patch && json_is_null(val))) {
            err = bad(e, patch ? "Each value of identity.userAssignedIdentities must be {} "
                                 "(attach) or null (detach)."
                               : "Each value of identity.userAssignedIdentities must be {}.");
            goto out;
        }
        for (size_t i = 0; i < in->n; i++) {
            if (kl_str_ieq(in->ids[i], id)) {
                err = bad(e, "identity.userAssignedIdentities names an identity twice.");
                goto out;
            }
        }
        if (!(in->ids[in->n] = strdup(id))) {
            err = KL_ENOMEM;
            goto out;
        }
        in->removed[in->n++] = json_is_null(val);
    }
out:
    if (err)
        kl_identity_input_free(in);
    return err;
}

void kl_identity_input_free(kl_identity_input *in)
{
    for (size_t i = 0; in->ids && i < in->n; i++)
        free(in->ids[i]);
    free(in->ids);
    free(in->removed);
    memset(in, 0, sizeof(*in));
}

int kl_identity_json(kl_store_identity *const *ids, size_t n, const char *tenant_id, json_t **out)
{
    *out = NULL;
    if (n == 0)
        return 0;
    const kl_store_identity *sys = ids[0]->user_assigned ? NULL : ids[0];
    size_t n_user = n - (sys ? 1 : 0);
    const char *type = sys && n_user ? "SystemAssigned, UserAssigned"
                       : sys         ? "SystemAssigned"
                                     : "UserAssigned";
    json_t *o = json_object();
    int err = !o || kl_arm_json_set(o, "type", json_string(type));
    if (!err && sys)
        err = kl_arm_json_set(o, "principalId", json_string(sys->object_id)) ||
              kl_arm_json_set(o, "tenantId", json_string(tenant_id));
    if (!err && n_user) {
        json_t *map = json_object();
        err = kl_arm_json_set(o, "userAssignedIdentities", map);
        for (size_t i = sys ? 1 : 0; !err && i < n; i++)
            err = kl_arm_json_set(map, ids[i]->resource_id,
                                  json_pack("{s:s, s:s}", "principalId", ids[i]->object_id,
                                            "clientId", ids[i]->client_id));
    }
    if (err) {
        json_decref(o);
        return KL_ENOMEM;
    }
    *out = o;
    return 0;
}

json_t *kl_identity_uami_json(const kl_store_identity *i, const char *tenant_id)
{
    json_t *tags = i->tags ? json_loads(i->tags, 0, NULL) : NULL;
    if (!json_is_object(tags)) {
        json_decref(tags);
        tags = json_object();
    }
    return json_pack("{s:s, s:s, s:s, s:s, s:o, s:{s:s, s:s, s:s}}", "id", i->resource_id, "name",
                     i->name, "type", KL_ARM_UAMI_TYPE, "location", i->location, "tags", tags,
                     "properties", "tenantId", tenant_id, "principalId", i->object_id, "clientId",
                     i->client_id);
}

/* ---------------------------------------------------------------- writes of hosts */

void kl_identity_prep_free(kl_identity_prep *p)
{
    kl_identity_input_free(&p->in);
    for (size_t i = 0; p->user && i < p->n_user; i++)
        free(p->user[i]);
    free(p->user);
    memset(p, 0, sizeof(*p));
}

static bool in_list(char *const *list, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (kl_str_ieq(list[i], id))
            return true;
    return false;
}

/* Adds id once; a resource carries at most KL_MAX_HOST_USER_IDENTITIES (cap, the array's
 * room, is at least that). */
static int add_user(kl_identity_prep *p, size_t cap, const char *id)
{
    if (in_list(p->user, p->n_user, id))
        return 0;
    if (p->n_user == cap || p->n_user == KL_MAX_HOST_USER_IDENTITIES)
        return KL_ETOOBIG;
    return (p->user[p->n_user++] = strdup(id)) ? 0 : KL_ENOMEM;
}

/* The host's user-assigned identities after the write: PUT names them all; PATCH adds
 * the non-null ones to what it has and takes the null ones away. */
static int final_users(kl_mgmt_call *c, const char *host_id, bool patch, kl_identity_prep *p)
{
    size_t cap = KL_MAX_HOST_USER_IDENTITIES + p->in.n;
    kl_store_identity **cur = NULL;
    size_t n_cur = 0;
    int err = 0;
    if (!(p->user = calloc(cap, sizeof(char *))))
        return KL_ENOMEM;
    if (!p->in.user)
        return 0;
    if (patch && (err = kl_store_host_identities(c->m->store, host_id, &cur, &n_cur)))
        return err;
    for (size_t i = 0; !err && i < n_cur; i++)
        if (cur[i]->user_assigned && !in_list(p->in.ids, p->in.n, cur[i]->resource_id))
            err = add_user(p, cap, cur[i]->resource_id);
    for (size_t i = 0; !err && i < p->in.n; i++)
        if (!p->in.removed[i])
            err = add_user(p, cap, p->in.ids[i]);
    kl_store_identities_free(cur, n_cur);
    return err;
}

/* 403 LinkedAuthorizationFailed naming every identity the caller may not assign, as Azure
 * words it; false when it may assign them all. */
static bool linked_denied(kl_mgmt_call *c, const char *host_id, const kl_identity_input *in)
{
    char denied[KL_MAX_SCOPE * 4];
    size_t used = 0;
    bool any = false;
    denied[0] = '\0';
    for (size_t i = 0; i < in->n; i++) {
        if (in->removed[i] || kl_mgmt_allowed(c, KL_MI_ASSIGN_ACTION, in->ids[i]))
            continue;
        int w = snprintf(denied + used, sizeof(denied) - used, "%s%s", any ? "," : "", in->ids[i]);
        if (w > 0 && (size_t)w < sizeof(denied) - used)
            used += (size_t)w;
        any = true;
    }
    if (!any)
        return false;
    kl_http_req_auth_failed(c->r, KL_AUTHFAIL_FORBIDDEN);
    kl_http_req_log_field(c->r, "denied_action", KL_MI_ASSIGN_ACTION);
    kl_mgmt_fail(c, 403, "LinkedAuthorizationFailed",
                 "The client '%s' with object id '%s' has permission to perform action '%s' on "
                 "scope '%s'; however, it does not have permission to perform action '%s' on the "
                 "linked scope(s) '%s' or the linked scope(s) are invalid.",
                 c->caller, c->caller, c->route->action, host_id, KL_MI_ASSIGN_ACTION, denied);
    return true;
}

static void identity_missing(kl_mgmt_call *c, const char *host_id, const char *id)
{
    char inner[KL_MAX_SCOPE + 64];
    kl_arm_error e;
    snprintf(inner, sizeof(inner), "Resource '%s' was not found.", id);
    identity_refused(&e, "NotFound", "NotFound", inner);
    /* Azure names the resource being written in front of the identity service's answer. */
    kl_mgmt_fail(c, 400, "FailedIdentityOperation", "Identity operation for resource '%s' %s",
                 host_id, e.message + strlen("Identity operation "));
}

int kl_mgmt_identity_prepare(kl_mgmt_call *c, const char *host_id, bool patch, kl_identity_prep *p)
{
    memset(p, 0, sizeof(*p));
    kl_arm_error e = {0};
    int err = kl_identity_parse(json_object_get(c->body, "identity"), patch, &p->in, &e);
    if (err == KL_EINVAL) {
        kl_mgmt_reply_error(c, &e);
        return err;
    }
    if (!err && !p->in.given)
        return 0;
    if (!err)
        err = final_users(c, host_id, patch, p);
    if (err == KL_ETOOBIG) {
        kl_mgmt_fail(c, 400, "InvalidRequestContent",
                     "A resource may carry at most %d user-assigned identities.",
                     KL_MAX_HOST_USER_IDENTITIES);
        goto refused;
    }
    if (err) {
        kl_mgmt_fail_internal(c, err, "identity_prepare");
        goto refused;
    }
    if (p->in.user && p->n_user == 0) {
        identity_refused(&e, "BadRequest", "BadRequest",
                         "The identity ids must not be null or empty for 'UserAssigned' "
                         "identity type.");
        kl_mgmt_reply_error(c, &e);
        err = KL_EINVAL;
        goto refused;
    }
    if (linked_denied(c, host_id, &p->in)) {
        err = KL_EPERM;
        goto refused;
    }
    for (size_t i = 0; i < p->n_user; i++) {
        kl_store_identity *id = NULL;
        err = kl_store_get_identity(c->m->store, p->user[i], &id);
        bool ok = !err && id->user_assigned;
        kl_store_identity_free(id);
        if (err && err != KL_ENOTFOUND) {
            kl_mgmt_fail_internal(c, err, "get_identity");
            goto refused;
        }
        if (!ok) {
            identity_missing(c, host_id, p->user[i]);
            err = KL_ENOTFOUND;
            goto refused;
        }
    }
    if ((err = kl_uuid_v4(p->sys_oid)) || (err = kl_uuid_v4(p->sys_cid))) {
        kl_mgmt_fail_internal(c, err, "identity_ids");
        goto refused;
    }
    p->spec = (kl_store_identity_spec){.system = p->in.system,
                                       .system_object_id = p->sys_oid,
                                       .system_client_id = p->sys_cid,
                                       .user = (const char *const *)p->user,
                                       .n_user = p->n_user};
    p->has_spec = true;
    return 0;
refused:
    kl_identity_prep_free(p);
    return err ? err : KL_EINVAL;
}

bool kl_mgmt_identity_write_failed(kl_mgmt_call *c, const char *host_id, int err)
{
    if (err == KL_ENOTFOUND) {
        identity_missing(c, host_id, "(a user-assigned identity named in the request)");
        return true;
    }
    if (err == KL_EPERM) {
        kl_mgmt_fail(c, 409, "LastOwnerCannotBeRemoved",
                     "The system-assigned identity of this resource holds the last Owner role "
                     "assignment at scope '/' of an enabled principal; assign Owner at '/' to "
                     "another principal first.");
        return true;
    }
    return false;
}

int kl_mgmt_identity_member(kl_mgmt_call *c, json_t *o, const char *host_id)
{
    kl_store_identity **ids = NULL;
    size_t n = 0;
    json_t *member = NULL;
    int err = kl_store_host_identities(c->m->store, host_id, &ids, &n);
    if (!err)
        err = kl_identity_json(ids, n, kl_mgmt_tenant(c), &member);
    if (!err && member && json_object_set_new(o, "identity", member))
        err = KL_ENOMEM;
    kl_store_identities_free(ids, n);
    return err;
}

bool kl_mgmt_identity_scope(const kl_arm_names *n, char *out, size_t outlen)
{
    const char *type = n->site[0]       ? "Microsoft.Web/sites"
                       : n->vm[0]       ? "Microsoft.Compute/virtualMachines"
                       : n->identity[0] ? KL_ARM_UAMI_TYPE
                                        : NULL;
    const char *name = n->site[0] ? n->site : n->vm[0] ? n->vm : n->identity;
    if (!type)
        return false;
    int w = snprintf(out, outlen, "/subscriptions/%s/resourceGroups/%s/providers/%s/%s",
                     n->subscription, n->resource_group, type, name);
    return w > 0 && (size_t)w < outlen;
}

bool kl_mgmt_mi_credential_refused(kl_mgmt_call *c)
{
    const kl_principal *p = kl_snapshot_principal(c->snap, c->names.object);
    if (!p)
        p = kl_snapshot_principal_by_app_id(c->snap, c->names.object);
    if (!p || p->type != KL_PRINCIPAL_MANAGED_IDENTITY)
        return false;
    kl_mgmt_fail(c, 400, "Request_BadRequest",
                 "'%s' is a managed identity: it takes no password, certificate or federated "
                 "credential. Its tokens come only from the identity endpoint of a resource that "
                 "carries it.",
                 c->names.object);
    return true;
}

/* ---------------------------------------------------------------- lists */

void kl_mgmt_reply_filtered_list(kl_mgmt_call *c, json_t **items, char *const *ids, size_t n)
{
    json_t *value = json_array();
    size_t shown = 0;
    bool ok = value != NULL;
    for (size_t i = 0; i < n; i++) {
        /* Not allowed on the whole collection: only what the caller may read. */
        if (!ok || !items[i] ||
            (c->list_filtered && !kl_mgmt_allowed(c, c->route->action, ids[i]))) {
            ok = ok && items[i];
            json_decref(items[i]);
            continue;
        }
        ok = json_array_append_new(value, items[i]) == 0;
        shown++;
    }
    if (c->list_filtered && shown == 0) {
        char scope[KL_MAX_SCOPE + 1];
        kl_mgmt_call_scope(c, scope, sizeof(scope));
        json_decref(value);
        kl_mgmt_deny(c, c->route->action, scope);
        return;
    }
    kl_mgmt_reply_json(c, 200, ok ? json_pack("{s:o}", "value", value) : NULL);
    if (!ok)
        json_decref(value);
}

/* ---------------------------------------------------------------- user-assigned identities */

static void uami_id(const kl_mgmt_call *c, char out[KL_MAX_SCOPE + 1])
{
    if (!kl_mgmt_identity_scope(&c->names, out, KL_MAX_SCOPE + 1))
        out[0] = '\0';
}

/* The identity the path names; KL_ENOTFOUND (answered 404 when reply) or another error
 * (answered 500). */
static int find_uami(kl_mgmt_call *c, bool reply, kl_store_identity **out)
{
    char id[KL_MAX_SCOPE + 1];
    uami_id(c, id);
    int err = kl_store_get_identity(c->m->store, id, out);
    if (!err && !(*out)->user_assigned) {
        kl_store_identity_free(*out);
        *out = NULL;
        err = KL_ENOTFOUND;
    }
    if (err == KL_ENOTFOUND && reply)
        kl_mgmt_fail(c, 404, "ResourceNotFound",
                     "The Resource '" KL_ARM_UAMI_TYPE "/%s' under resource group '%s' was not "
                     "found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
                     c->names.identity, c->names.resource_group);
    else if (err && err != KL_ENOTFOUND)
        kl_mgmt_fail_internal(c, err, "get_identity");
    return err;
}

/* PUT (base NULL) or PATCH (base: the stored identity, whose location and tags are the
 * defaults). Either way an existing identity keeps its ids. */
static void uami_write(kl_mgmt_call *c, const kl_store_identity *base)
{
    char id[KL_MAX_SCOPE + 1], oid[KL_UUID_LEN + 1], cid[KL_UUID_LEN + 1];
    char *location = NULL, *tags = NULL;
    kl_arm_error e = {0};
    kl_store_identity *got = NULL;
    bool created = false;
    int64_t now = kl_now_unix();
    uami_id(c, id);
    int err = kl_resource_parse_tracked(c->body, base ? base->location : "local",
                                        base ? base->tags : "{}", &location, &tags, &e);
    if (err == KL_EINVAL) {
        kl_mgmt_reply_error(c, &e);
        return;
    }
    if (!err && !(err = kl_uuid_v4(oid)) && !(err = kl_uuid_v4(cid))) {
        kl_store_identity i = {.resource_id = id,
                               .user_assigned = true,
                               .subscription = c->names.subscription,
                               .resource_group = c->names.resource_group,
                               .name = c->names.identity,
                               .location = location,
                               .tags = tags,
                               .object_id = oid,
                               .client_id = cid,
                               .created_at = now,
                               .modified_at = now};
        err = kl_store_put_user_identity(c->m->store, &i, &created);
    }
    if (!err)
        err = kl_store_get_identity(c->m->store, id, &got);
    if (!err && base && created)
        err = KL_ECONFLICT; /* deleted and re-created by someone else in between: not ours */
    if (err) {
        kl_mgmt_fail_internal(c, err, "put_identity");
        goto out;
    }
    kl_mgmt_log_change(c, created ? "identity_created" : "identity_updated", got->resource_id);
    kl_mgmt_applied(c);
    kl_mgmt_reply_json(c, created ? 201 : 200, kl_identity_uami_json(got, kl_mgmt_tenant(c)));
out:
    kl_store_identity_free(got);
    free(location);
    free(tags);
}

void kl_mgmt_uami_put(kl_mgmt_call *c)
{
    uami_write(c, NULL);
}

void kl_mgmt_uami_patch(kl_mgmt_call *c)
{
    kl_store_identity *base = NULL;
    if (find_uami(c, true, &base))
        return;
    uami_write(c, base);
    kl_store_identity_free(base);
}

void kl_mgmt_uami_get(kl_mgmt_call *c)
{
    kl_store_identity *i = NULL;
    if (find_uami(c, true, &i))
        return;
    kl_mgmt_reply_json(c, 200, kl_identity_uami_json(i, kl_mgmt_tenant(c)));
    kl_store_identity_free(i);
}

void kl_mgmt_uami_delete(kl_mgmt_call *c)
{
    kl_store_identity *i = NULL;
    int err = find_uami(c, false, &i);
    if (err == KL_ENOTFOUND) {
        kl_mgmt_reply_empty(c, 204);
        return;
    }
    if (err)
        return;
    /* Detached from every resource, with its principal and role assignments, at once. */
    err = kl_store_delete_user_identity(c->m->store, i->resource_id);
    if (err == KL_ENOTFOUND) {
        kl_mgmt_reply_empty(c, 204);
    } else if (err == KL_EPERM) {
        kl_mgmt_fail(c, 409, "LastOwnerCannotBeRemoved",
                     "This identity holds the last Owner role assignment at scope '/' of an "
                     "enabled principal; assign Owner at '/' to another principal first.");
    } else if (err) {
        kl_mgmt_fail_internal(c, err, "delete_identity");
    } else {
        kl_mgmt_log_change(c, "identity_deleted", i->resource_id);
        kl_mgmt_applied(c);
        kl_mgmt_reply_empty(c, 200);
    }
    kl_store_identity_free(i);
}

void kl_mgmt_uamis_list(kl_mgmt_call *c)
{
    kl_store_identity **list = NULL;
    size_t n = 0;
    const char *rg = c->names.resource_group[0] ? c->names.resource_group : NULL;
    int err = kl_store_list_user_identities(c->m->store, c->names.subscription, rg, &list, &n);
    json_t **items = err ? NULL : calloc(n ? n : 1, sizeof(json_t *));
    char **ids = err ? NULL : calloc(n ? n : 1, sizeof(char *));
    if (err || !items || !ids) {
        kl_mgmt_fail_internal(c, err ? err : KL_ENOMEM, "list_identities");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        items[i] = kl_identity_uami_json(list[i], kl_mgmt_tenant(c));
        ids[i] = list[i]->resource_id;
    }
    kl_mgmt_reply_filtered_list(c, items, ids, n);
out:
    free(items);
    free(ids);
    kl_store_identities_free(list, n);
}

/* ---------------------------------------------------------------- identities/default */

/* The host resource the scope names (a site, VM or account in the scope's subscription and
 * group): its id as created and its location, owned by the caller. KL_ENOTFOUND if none. */
static int find_host(kl_mgmt_call *c, const char *scope, char **id, char **location)
{
    kl_arm_match m;
    kl_arm_names n;
    kl_arm_error e;
    *id = *location = NULL;
    const char *kind = NULL;
    bool site = false;
    if ((site = kl_arm_match_path(KL_ARM_SITE, scope, &m)))
        kind = KL_STORE_COMPUTE_SITE;
    else if (kl_arm_match_path(KL_ARM_VM, scope, &m))
        kind = KL_STORE_COMPUTE_VM;
    else if (!kl_arm_match_path(KL_ARM_ACCOUNT, scope, &m))
        return KL_ENOTFOUND;
    if (kl_arm_resolve_names(&m, &n, &e))
        return KL_ENOTFOUND;
    int err = 0;
    const char *sub = NULL, *rg = NULL, *hid = NULL, *loc = NULL;
    kl_store_compute *cp = NULL;
    kl_store_account *a = NULL;
    if (kind) {
        err = kl_store_get_compute(c->m->store, kind, site ? n.site : n.vm, &cp);
        if (!err)
            sub = cp->subscription, rg = cp->resource_group, hid = cp->id, loc = cp->location;
    } else {
        err = kl_store_get_account(c->m->store, n.account, &a);
        if (!err)
            sub = a->subscription, rg = a->resource_group, hid = a->id, loc = a->location;
    }
    if (!err && (!kl_str_ieq(sub, n.subscription) || !kl_str_ieq(rg, n.resource_group)))
        err = KL_ENOTFOUND;
    if (!err && (!(*id = strdup(hid)) || !(*location = strdup(loc)))) {
        free(*id);
        *id = NULL;
        err = KL_ENOMEM;
    }
    kl_store_compute_free(cp);
    kl_store_account_free(a);
    return err;
}

void kl_mgmt_system_identity_get(kl_mgmt_call *c)
{
    char *host = NULL, *location = NULL;
    kl_store_identity *i = NULL;
    int err = find_host(c, c->names.scope, &host, &location);
    if (!err)
        err = kl_store_get_identity(c->m->store, host, &i);
    if (!err && i->user_assigned)
        err = KL_ENOTFOUND;
    if (err == KL_ENOTFOUND) {
        kl_mgmt_fail(c, 404, "ResourceNotFound",
                     "The resource '%s' has no system-assigned identity, or does not exist.",
                     c->names.scope);
    } else if (err) {
        kl_mgmt_fail_internal(c, err, "get_system_identity");
    } else {
        /* No clientSecretUrl: Azure's points at a credential of the identity, and a managed
         * identity here has none of any kind. */
        char id[KL_MAX_SCOPE + 64];
        snprintf(id, sizeof(id), "%s/providers/Microsoft.ManagedIdentity/identities/default", host);
        kl_mgmt_reply_json(c, 200,
                           json_pack("{s:s, s:s, s:s, s:s, s:{}, s:{s:s, s:s, s:s}}", "id", id,
                                     "name", "default", "type", KL_ARM_SYSTEM_IDENTITY_TYPE,
                                     "location", location, "tags", "properties", "tenantId",
                                     kl_mgmt_tenant(c), "principalId", i->object_id, "clientId",
                                     i->client_id));
    }
    kl_store_identity_free(i);
    free(host);
    free(location);
}
