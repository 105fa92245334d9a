/* Users over the control plane, in Microsoft Graph v1.0 shapes: create with a password
 * profile, list, read by id or userPrincipalName, update (displayName, accountEnabled,
 * an administrator's password reset) and delete. A password is read from the request
 * body, hashed (directory/users.h) and forgotten: it is never logged, stored or sent
 * back. */
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "directory/directory.h"
#include "directory/users.h"
#include "mgmt/internal.h"

#define ENTRA "microsoft.directory"

static json_t *user_json(const kl_store_user *u)
{
    char when[32];
    kl_time_iso8601(u->created_at, when, sizeof(when));
    json_t *o = json_object();
    if (!o || kl_arm_json_set(o, "id", json_string(u->object_id)) ||
        kl_arm_json_set(o, "displayName", json_string(u->display_name)) ||
        kl_arm_json_set(o, "userPrincipalName", json_string(u->upn)) ||
        kl_arm_json_set(o, "accountEnabled", json_boolean(u->enabled)) ||
        kl_arm_json_set(o, "createdDateTime", json_string(when)) ||
        kl_arm_json_set(o, "userType", json_string("Member"))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static void weak_password(kl_mgmt_call *c, const char *why)
{
    kl_mgmt_fail(c, 400, "Request_BadRequest",
                 "The specified password does not comply with password complexity requirements. "
                 "Please provide a different password (%s).",
                 why);
}

/* passwordProfile: {"password": "...", "forceChangePasswordNextSignIn": bool}. Answers
 * 400 and returns false when it is malformed. *pw borrowed from the body. */
static bool password_profile(kl_mgmt_call *c, const json_t *pp, const char **pw, size_t *len,
                             bool *force)
{
    const json_t *fc = json_object_get(pp, "forceChangePasswordNextSignIn");
    const json_t *p = json_object_get(pp, "password");
    if (!json_is_object(pp) || !json_is_string(p) ||
        (fc && !json_is_null(fc) && !json_is_boolean(fc))) {
        kl_mgmt_fail(c, 400, "Request_BadRequest",
                     "passwordProfile must be an object with a password (a string) and "
                     "optionally forceChangePasswordNextSignIn (a boolean).");
        return false;
    }
    *pw = json_string_value(p);
    *len = json_string_length(p);
    if (memchr(*pw, '\0', *len)) {
        kl_mgmt_fail(c, 400, "Request_BadRequest", "The password must not contain a NUL.");
        return false;
    }
    *force = fc ? json_is_true(fc) : true; /* Graph's default */
    return true;
}

/* Wipes the password out of the parsed body once it has been hashed (the body is freed
 * by the dispatcher, which does not know it held a secret). */
static void forget_password(kl_mgmt_call *c)
{
    json_t *p = json_object_get(json_object_get(c->body, "passwordProfile"), "password");
    if (json_is_string(p))
        OPENSSL_cleanse((char *)json_string_value(p), json_string_length(p));
}

void kl_mgmt_users_list(kl_mgmt_call *c)
{
    static const char *const props[] = {"userPrincipalName", "displayName"};
    const char *want[2];
    kl_arm_filter_term terms[KL_ARM_MAX_FILTER_TERMS];
    if (!kl_mgmt_graph_eq_filter(
            c, terms, props, 2,
            "userPrincipalName eq '{value}' or displayName eq '{value}', joined by 'and'", want))
        return;
    kl_store_user **list = NULL;
    size_t n = 0;
    int err = kl_store_list_users(c->m->store, &list, &n);
    if (err) {
        kl_mgmt_fail_internal(c, err, "list_users");
        return;
    }
    json_t *items = json_array();
    for (size_t i = 0; items && i < n; i++)
        if ((!want[0] || kl_str_ieq(want[0], list[i]->upn)) &&
            (!want[1] || kl_str_ieq(want[1], list[i]->display_name)) &&
            json_array_append_new(items, user_json(list[i]))) {
            json_decref(items);
            items = NULL;
        }
    kl_store_users_free(list, n);
    kl_mgmt_reply_value(c, items);
}

void kl_mgmt_user_create(kl_mgmt_call *c)
{
    bool has_upn = false, has_name = false;
    const char *upn = kl_mgmt_graph_body_string(c->body, "userPrincipalName", &has_upn);
    const char *name = kl_mgmt_graph_body_string(c->body, "displayName", &has_name);
    const json_t *en = json_object_get(c->body, "accountEnabled");
    const json_t *pp = json_object_get(c->body, "passwordProfile");
    const char *pw = NULL;
    size_t pw_len = 0;
    bool force = true;
    char why[160] = "";
    if (!upn || !kl_users_valid_upn(upn, strlen(upn))) {
        kl_mgmt_fail(c, 400, "Request_BadRequest",
                     has_upn ? "Property userPrincipalName is invalid: use local@domain."
                             : "Property userPrincipalName is required.");
        return;
    }
    if (!kl_mgmt_graph_display_name(c, name))
        return;
    if (en && !json_is_null(en) && !json_is_boolean(en)) {
        kl_mgmt_fail(c, 400, "Request_BadRequest", "accountEnabled must be a boolean.");
        return;
    }
    if (!pp || json_is_null(pp)) {
        kl_mgmt_fail(c, 400, "Request_BadRequest", "Property passwordProfile is required.");
        return;
    }
    if (!password_profile(c, pp, &pw, &pw_len, &force))
        return;
    if (kl_users_password_policy(pw, pw_len, upn, name, why, sizeof(why))) {
        weak_password(c, why);
        return;
    }
    kl_store_user *u = NULL;
    int err = kl_users_create(c->m->store, upn, name, pw, pw_len, force, &u, why, sizeof(why));
    if (!err && en && json_is_false(en)) {
        bool off = false;
        err = kl_store_update_user(c->m->store, u->object_id, NULL, &off, NULL, NULL, 0);
        u->enabled = false;
    }
    if (err == KL_ECONFLICT)
        kl_mgmt_fail(c, 400, "Request_BadRequest",
                     "Another object with the same value for property userPrincipalName already "
                     "exists.");
    else if (err == KL_EINVAL)
        kl_mgmt_fail(c, 400, "Request_BadRequest", "%s.", why);
    else if (err)
        kl_mgmt_fail_internal(c, err, "create_user");
    else {
        kl_mgmt_log_change(c, "user_created", u->object_id);
        kl_mgmt_applied(c);
        kl_mgmt_reply_json(c, 201, user_json(u));
    }
    forget_password(c);
    kl_store_user_free(u);
}

/* The user the path names; answers 404/500 and returns NULL when there is none. */
static kl_store_user *find_user(kl_mgmt_call *c)
{
    kl_store_user *u = NULL;
    int err = kl_store_get_user(c->m->store, c->names.user, &u);
    if (err == KL_ENOTFOUND)
        kl_mgmt_graph_not_found(c, c->names.user);
    else if (err)
        kl_mgmt_fail_internal(c, err, "get_user");
    return u;
}

void kl_mgmt_user_get(kl_mgmt_call *c)
{
    kl_store_user *u = find_user(c);
    if (u)
        kl_mgmt_reply_json(c, 200, user_json(u));
    kl_store_user_free(u);
}

void kl_mgmt_user_patch(kl_mgmt_call *c)
{
    bool has_name = false;
    const char *name = kl_mgmt_graph_body_string(c->body, "displayName", &has_name);
    const json_t *en = json_object_get(c->body, "accountEnabled");
    const json_t *pp = json_object_get(c->body, "passwordProfile");
    const char *pw = NULL;
    size_t pw_len = 0;
    bool force = true, enabled = false;
    char why[160] = "";
    if (json_object_get(c->body, "userPrincipalName")) {
        kl_mgmt_fail(c, 400, "Request_BadRequest",
                     "userPrincipalName cannot be changed: create a new user.");
        return;
    }
    if (has_name &&
        (!name || !kl_directory_valid_name(name, strlen(name), KL_USERS_MAX_DISPLAY_NAME))) {
        kl_mgmt_fail(c, 400, "Request_BadRequest",
                     "displayName must be 1-%d characters without control characters.",
                     KL_USERS_MAX_DISPLAY_NAME);
        return;
    }
    if (en && !json_is_null(en) && !json_is_boolean(en)) {
        kl_mgmt_fail(c, 400, "Request_BadRequest", "accountEnabled must be a boolean.");
        return;
    }
    enabled = json_is_true(en);
    bool reset = pp && !json_is_null(pp);
    if (reset && !password_profile(c, pp, &pw, &pw_len, &force))
        return;
    /* A reset is its own permission, as in Entra (an admin who may rename users may not
     * necessarily set their passwords). */
    if (reset && !kl_mgmt_authorize(c, ENTRA "/users/password/update", "/"))
        return;
    kl_store_user *u = find_user(c);
    if (!u)
        return;
    if (reset && kl_users_password_policy(pw, pw_len, u->upn, name ? name : u->display_name, why,
                                          sizeof(why))) {
        weak_password(c, why);
        kl_store_user_free(u);
        return;
    }
    int err = 0;
    if (reset)
        err = kl_users_set_password(c->m->store, u->object_id, pw, pw_len, force, why, sizeof(why));
    if (!err && (name || (en && !json_is_null(en))))
        err = kl_store_update_user(c->m->store, u->object_id, name,
                                   en && !json_is_null(en) ? &enabled : NULL, NULL, NULL, 0);
    if (err == KL_ENOTFOUND)
        kl_mgmt_graph_not_found(c, c->names.user);
    else if (err == KL_EPERM)
        kl_mgmt_graph_last_owner(c);
    else if (err == KL_EINVAL)
        weak_password(c, why);
    else if (err)
        kl_mgmt_fail_internal(c, err, "update_user");
    else {
        kl_mgmt_log_change(c, reset ? "user_password_reset" : "user_updated", u->object_id);
        kl_mgmt_applied(c);
        kl_mgmt_reply_empty(c, 204);
    }
    forget_password(c);
    kl_store_user_free(u);
}

void kl_mgmt_user_delete(kl_mgmt_call *c)
{
    kl_store_user *u = find_user(c);
    if (u)
        kl_mgmt_graph_delete_principal(c, u->object_id, c->names.user, "delete_user",
                                       "user_deleted");
    kl_store_user_free(u);
}
