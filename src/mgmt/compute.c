/* Microsoft.Web/sites and Microsoft.Compute/virtualMachines: the resources workloads run
 * on, shaped as ARM shows them, reduced to what keyless uses — a name, a location, tags,
 * the client's properties echoed back, and the identity block (identity.h). A site's
 * workloads get the App-Service-style endpoint, a VM's host the IMDS-style one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/util.h"
#include "mgmt/identity.h"
#include "mgmt/internal.h"
#include "mgmt/resource.h"

typedef struct kind_info {
    const char *kind; /* KL_STORE_COMPUTE_* */
    const char *type; /* the ARM type */
} kind_info;

static const kind_info SITE = {KL_STORE_COMPUTE_SITE, KL_ARM_SITE_TYPE};
static const kind_info VM = {KL_STORE_COMPUTE_VM, KL_ARM_VM_TYPE};

static const char *path_name(const kl_mgmt_call *c, const kind_info *k)
{
    return k == &SITE ? c->names.site : c->names.vm;
}

/* properties: an object, kept as given (at most KL_ARM_MAX_PROPERTIES_JSON serialised)
 * except the members we compute; PATCH merges into base's. */
static int parse_properties(const json_t *body, const char *base, char **out, kl_arm_error *e)
{
    const json_t *p = json_object_get(body, "properties");
    json_t *merged = base ? json_loads(base, 0, NULL) : NULL;
    if (!json_is_object(merged)) {
        json_decref(merged);
        merged = json_object();
    }
    int err = merged ? 0 : KL_ENOMEM;
    if (!err && p && !json_is_null(p)) {
        if (!json_is_object(p))
            err = KL_EINVAL;
        else if (json_object_update(merged, (json_t *)p))
            err = KL_ENOMEM;
    }
    static const char *const computed[] = {"provisioningState", "state", "enabled"};
    for (size_t i = 0; !err && i < sizeof(computed) / sizeof(computed[0]); i++)
        json_object_del(merged, computed[i]);
    if (!err && !(*out = json_dumps(merged, JSON_COMPACT | JSON_SORT_KEYS)))
        err = KL_ENOMEM;
    if (!err && strlen(*out) > KL_ARM_MAX_PROPERTIES_JSON) {
        free(*out);
        *out = NULL;
        err = KL_EINVAL;
    }
    if (err == KL_EINVAL)
        kl_arm_error_set(e, 400, "InvalidRequestContent",
                         "The properties must be an object of at most %d bytes.",
                         KL_ARM_MAX_PROPERTIES_JSON);
    json_decref(merged);
    return err;
}

static json_t *compute_json(kl_mgmt_call *c, const kind_info *k, const kl_store_compute *cp)
{
    json_t *props = json_loads(cp->properties ? cp->properties : "{}", 0, NULL);
    json_t *tags = json_loads(cp->tags ? cp->tags : "{}", 0, NULL);
    char etag[96];
    snprintf(etag, sizeof(etag), "\"%s\"", cp->etag ? cp->etag : "");
    if (!json_is_object(props)) {
        json_decref(props);
        props = json_object();
    }
    if (!json_is_object(tags)) {
        json_decref(tags);
        tags = json_object();
    }
    json_t *o = json_object();
    int err = !o || !props || !tags;
    if (!err) {
        err |= json_object_set_new(props, "provisioningState", json_string("Succeeded"));
        if (k == &SITE) {
            err |= json_object_set_new(props, "state", json_string("Running"));
            err |= json_object_set_new(props, "enabled", json_true());
            err |= json_object_set_new(o, "kind", json_string("app"));
        }
        err |= json_object_set_new(o, "id", json_string(cp->id));
        err |= json_object_set_new(o, "name", json_string(cp->name));
        err |= json_object_set_new(o, "type", json_string(k->type));
        err |= json_object_set_new(o, "location", json_string(cp->location));
        err |= json_object_set(o, "tags", tags);
        err |= json_object_set_new(o, "etag", json_string(etag));
        err |= json_object_set(o, "properties", props);
        err |= kl_mgmt_identity_member(c, o, cp->id) != 0;
    }
    json_decref(props);
    json_decref(tags);
    if (err) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* The resource the path names, checked to live in the path's subscription and group;
 * KL_ENOTFOUND (answered 404 when reply) or another error (answered 500). */
static int find_compute(kl_mgmt_call *c, const kind_info *k, bool reply, kl_store_compute **out)
{
    int err = kl_store_get_compute(c->m->store, k->kind, path_name(c, k), out);
    if (!err && (!kl_str_ieq((*out)->subscription, c->names.subscription) ||
                 !kl_str_ieq((*out)->resource_group, c->names.resource_group))) {
        /* The name is taken elsewhere: from here, it does not exist. */
        kl_store_compute_free(*out);
        *out = NULL;
        err = KL_ENOTFOUND;
    }
    if (err == KL_ENOTFOUND && reply)
        kl_mgmt_fail(c, 404, "ResourceNotFound",
                     "The Resource '%s/%s' under resource group '%s' was not found. For more "
                     "details please go to https://aka.ms/ARMResourceNotFoundFix",
                     k->type, path_name(c, k), c->names.resource_group);
    else if (err && err != KL_ENOTFOUND)
        kl_mgmt_fail_internal(c, err, "get_compute");
    return err;
}

static void reply_compute(kl_mgmt_call *c, const kind_info *k, int status)
{
    kl_store_compute *cp = NULL;
    int err = kl_store_get_compute(c->m->store, k->kind, path_name(c, k), &cp);
    if (err) {
        kl_mgmt_fail_internal(c, err, "get_compute");
        return;
    }
    kl_mgmt_reply_json(c, status, compute_json(c, k, cp));
    kl_store_compute_free(cp);
}

/* PUT (base NULL) or PATCH (base: the stored resource). */
static void compute_write(kl_mgmt_call *c, const kind_info *k, const kl_store_compute *base)
{
    char id[KL_MAX_SCOPE + 1], etag[KL_UUID_LEN + 1];
    char *location = NULL, *tags = NULL, *props = NULL;
    kl_arm_error e = {0};
    kl_identity_prep prep = {0};
    bool created = false, have_prep = false;
    int64_t now = kl_now_unix();
    if (!kl_mgmt_identity_scope(&c->names, id, sizeof(id))) {
        kl_mgmt_fail_internal(c, KL_EINTERNAL, "compute_id");
        return;
    }
    int err = kl_resource_parse_tracked(c->body, base ? base->location : "local",
                                        base ? base->tags : "{}", &location, &tags, &e);
    if (!err)
        err = parse_properties(c->body, base ? base->properties : NULL, &props, &e);
    if (err == KL_EINVAL) {
        kl_mgmt_reply_error(c, &e);
        goto out;
    }
    if (!err && kl_mgmt_identity_prepare(c, base ? base->id : id, base != NULL, &prep))
        goto out;
    have_prep = true;
    if (!err)
        err = kl_uuid_v4(etag);
    if (!err) {
        kl_store_compute cp = {.kind = (char *)k->kind,
                               .id = base ? base->id : id,
                               .subscription = c->names.subscription,
                               .resource_group = c->names.resource_group,
                               .name = base ? base->name : (char *)path_name(c, k),
                               .location = location,
                               .tags = tags,
                               .properties = props,
                               .etag = etag,
                               .created_at = now,
                               .modified_at = now};
        err = kl_store_put_compute(c->m->store, &cp, prep.has_spec ? &prep.spec : NULL, &created);
    }
    if (err == KL_ECONFLICT) {
        kl_mgmt_fail(c, 409, "Conflict",
                     "The name '%s' is already used by a %s in another resource group.",
                     path_name(c, k), k->type);
        goto out;
    }
    if (err && kl_mgmt_identity_write_failed(c, id, err))
        goto out;
    if (err || (base && created)) {
        /* created on a PATCH: deleted and re-created by someone else in between. */
        kl_mgmt_fail_internal(c, err ? err : KL_ECONFLICT, "put_compute");
        goto out;
    }
    kl_mgmt_log_change(c, created ? "compute_created" : "compute_updated", id);
    kl_mgmt_applied(c);
    reply_compute(c, k, created ? 201 : 200);
out:
    if (have_prep)
        kl_identity_prep_free(&prep);
    free(location);
    free(tags);
    free(props);
}

static void compute_patch(kl_mgmt_call *c, const kind_info *k)
{
    kl_store_compute *base = NULL;
    if (find_compute(c, k, true, &base))
        return;
    compute_write(c, k, base);
    kl_store_compute_free(base);
}

static void compute_get(kl_mgmt_call *c, const kind_info *k)
{
    kl_store_compute *cp = NULL;
    if (find_compute(c, k, true, &cp))
        return;
    kl_mgmt_reply_json(c, 200, compute_json(c, k, cp));
    kl_store_compute_free(cp);
}

static void compute_delete(kl_mgmt_call *c, const kind_info *k)
{
    kl_store_compute *cp = NULL;
    int err = find_compute(c, k, false, &cp);
    if (err == KL_ENOTFOUND) {
        kl_mgmt_reply_empty(c, 204);
        return;
    }
    if (err)
        return;
    /* Its system-assigned identity (principal, role assignments) goes with it; the
     * user-assigned ones are only detached. */
    err = kl_store_delete_compute(c->m->store, k->kind, cp->name);
    if (err == KL_ENOTFOUND)
        kl_mgmt_reply_empty(c, 204);
    else if (err == KL_EPERM)
        (void)kl_mgmt_identity_write_failed(c, cp->id, err);
    else if (err)
        kl_mgmt_fail_internal(c, err, "delete_compute");
    else {
        kl_mgmt_log_change(c, "compute_deleted", cp->id);
        kl_mgmt_applied(c);
        kl_mgmt_reply_empty(c, 200);
    }
    kl_store_compute_free(cp);
}

static void compute_list(kl_mgmt_call *c, const kind_info *k)
{
    kl_store_compute **list = NULL;
    size_t n = 0;
    const char *rg = c->names.resource_group[0] ? c->names.resource_group : NULL;
    int err = kl_store_list_computes(c->m->store, k->kind, c->names.subscription, rg, &list, &n);
    json_t **items = err ? NULL : calloc(n ? n : 1, sizeof(json_t *));
    char **ids = err ? NULL : calloc(n ? n : 1, sizeof(char *));
    if (err || !items || !ids) {
        kl_mgmt_fail_internal(c, err ? err : KL_ENOMEM, "list_computes");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        items[i] = compute_json(c, k, list[i]);
        ids[i] = list[i]->id;
    }
    kl_mgmt_reply_filtered_list(c, items, ids, n);
out:
    free(items);
    free(ids);
    kl_store_computes_free(list, n);
}

void kl_mgmt_site_put(kl_mgmt_call *c)
{
    compute_write(c, &SITE, NULL);
}
void kl_mgmt_site_patch(kl_mgmt_call *c)
{
    compute_patch(c, &SITE);
}
void kl_mgmt_site_get(kl_mgmt_call *c)
{
    compute_get(c, &SITE);
}
void kl_mgmt_site_delete(kl_mgmt_call *c)
{
    compute_delete(c, &SITE);
}
void kl_mgmt_sites_list(kl_mgmt_call *c)
{
    compute_list(c, &SITE);
}
void kl_mgmt_vm_put(kl_mgmt_call *c)
{
    compute_write(c, &VM, NULL);
}
void kl_mgmt_vm_patch(kl_mgmt_call *c)
{
    compute_patch(c, &VM);
}
void kl_mgmt_vm_get(kl_mgmt_call *c)
{
    compute_get(c, &VM);
}
void kl_mgmt_vm_delete(kl_mgmt_call *c)
{
    compute_delete(c, &VM);
}
void kl_mgmt_vms_list(kl_mgmt_call *c)
{
    compute_list(c, &VM);
}
