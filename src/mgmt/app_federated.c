/* Federated identity credentials of an application, in Graph's shape
 * (/v1.0/applications/{id}/federatedIdentityCredentials): an external OIDC issuer's
 * tokens about one subject, issued for one audience, accepted as the application's client
 * assertion (workload identity). Only the credentials are managed here. */
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/util.h"
#include "mgmt/internal.h"

#define MAX_AUDIENCE 600

static json_t *federated_json(const kl_store_federated_credential *f)
{
    json_t *aud = json_loads(f->audiences, 0, NULL);
    if (!json_is_array(aud)) {
        json_decref(aud);
        aud = json_array();
    }
    return json_pack("{s:s, s:s, s:s, s:s, s:o, s:o}", "id", f->id, "name", f->name, "issuer",
                     f->issuer, "subject", f->subject, "description",
                     f->description ? json_string(f->description) : json_null(), "audiences", aud);
}

static void not_found(kl_mgmt_call *c, const char *id)
{
    kl_mgmt_fail(c, 404, "Request_ResourceNotFound",
                 "Resource '%s' does not exist or one of its queried reference-property objects "
                 "are not present.",
                 id);
}

/* 0 with the list; otherwise answered (404 for the application, 500/503). */
static int load(kl_mgmt_call *c, kl_store_federated_credential ***list, size_t *n)
{
    int err = kl_store_list_federated_credentials(c->m->store, c->names.object, list, n);
    if (err == KL_ENOTFOUND)
        not_found(c, c->names.object);
    else if (err)
        kl_mgmt_fail_internal(c, err, "list_federated_credentials");
    return err;
}

static bool printable(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

/* A string member of 1..max printable bytes (or NULL when absent / null and optional). */
static bool get_text(kl_mgmt_call *c, const char *key, size_t max, bool required, const char **out)
{
    const json_t *v = json_object_get(c->body, key);
    *out = NULL;
    if (!v || json_is_null(v)) {
        if (!required)
            return true;
        kl_mgmt_fail(c, 400, "Request_BadRequest", "%s is required.", key);
        return false;
    }
    const char *s = json_string_value(v);
    if (!s || strlen(s) != json_string_length(v) || !s[0] || strlen(s) > max ||
        !printable(s, strlen(s))) {
        kl_mgmt_fail(c, 400, "Request_BadRequest",
                     "%s must be 1-%zu characters without control characters.", key, max);
        return false;
    }
    *out = s;
    return true;
}

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n < 3 || n > KL_MAX_FEDERATED_NAME)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_'))
            return false;
    }
    return true;
}

/* The body's audiences as a compact JSON array (malloc'd), or NULL after answering 400.
 * Graph accepts exactly one audience. */
static char *get_audiences(kl_mgmt_call *c, bool required, bool *absent)
{
    const json_t *a = json_object_get(c->body, "audiences");
    *absent = !a || json_is_null(a);
    if (*absent && !required)
        return NULL;
    const json_t *one = json_array_get(a, 0);
    const char *s = json_string_value(one);
    if (!json_is_array(a) || json_array_size(a) != 1 || !s ||
        strlen(s) != json_string_length(one) || !s[0] || strlen(s) > MAX_AUDIENCE ||
        !printable(s, strlen(s))) {
        kl_mgmt_fail(c, 400, "Request_BadRequest",
                     "audiences must be an array of exactly one string of 1-%d characters "
                     "(e.g. [\"api://AzureADTokenExchange\"]).",
                     MAX_AUDIENCE);
        return NULL;
    }
    char *out = json_dumps(a, JSON_COMPACT);
    if (!out)
        kl_mgmt_fail_internal(c, KL_ENOMEM, "audiences");
    return out;
}

static bool valid_issuer(kl_mgmt_call *c, const char *issuer)
{
    /* The issuer is where its keys are fetched from (discovery): https only. */
    if (issuer && !kl_str_istarts(issuer, "https://")) {
        kl_mgmt_fail(c, 400, "Request_BadRequest", "issuer must be an https:// URL.");
        return false;
    }
    return true;
}

void kl_mgmt_federated_list(kl_mgmt_call *c)
{
    kl_store_federated_credential **list = NULL;
    size_t n = 0;
    if (load(c, &list, &n))
        return;
    json_t *items = json_array();
    for (size_t i = 0; items && i < n; i++)
        if (json_array_append_new(items, federated_json(list[i]))) {
            json_decref(items);
            items = NULL;
        }
    kl_store_federated_credentials_free(list, n);
    json_t *o = items ? json_pack("{s:o}", "value", items) : NULL;
    kl_mgmt_reply_json(c, 200, o);
}

void kl_mgmt_federated_create(kl_mgmt_call *c)
{
    const char *name = NULL, *issuer = NULL, *subject = NULL, *description = NULL;
    char *aud = NULL;
    bool absent = false;
    if (kl_mgmt_mi_credential_refused(c))
        return;
    if (!get_text(c, "name", KL_MAX_FEDERATED_NAME, true, &name))
        return;
    if (!valid_name(name)) {
        kl_mgmt_fail(c, 400, "Request_BadRequest", "name must be 3-%d letters, digits, '-' or '_'.",
                     KL_MAX_FEDERATED_NAME);
        return;
    }
    if (!get_text(c, "issuer", KL_MAX_FEDERATED_ISSUER, true, &issuer) ||
        !valid_issuer(c, issuer) ||
        !get_text(c, "subject", KL_MAX_FEDERATED_SUBJECT, true, &subject) ||
        !get_text(c, "description", KL_MAX_FEDERATED_DESCRIPTION, false, &description) ||
        !(aud = get_audiences(c, true, &absent)))
        return;
    char id[KL_UUID_LEN + 1];
    int err = kl_uuid_v4(id);
    kl_store_federated_credential fc = {.id = id,
                                        .name = (char *)name,
                                        .issuer = (char *)issuer,
                                        .subject = (char *)subject,
                                        .audiences = aud,
                                        .description = (char *)description,
                                        .created_at = kl_now_unix()};
    if (!err)
        err = kl_store_create_federated_credential(c->m->store, c->names.object, &fc);
    if (err == KL_ENOTFOUND)
        not_found(c, c->names.object);
    else if (err == KL_EEXIST)
        kl_mgmt_fail(c, 409, "Request_MultipleObjectsWithSameKeyValue",
                     "FederatedIdentityCredential with name %s, or with the same issuer and "
                     "subject, already exists.",
                     name);
    else if (err == KL_ETOOBIG)
        kl_mgmt_fail(c, 400, "Request_BadRequest",
                     "An application can have at most %d federated identity credentials.",
                     KL_MAX_APP_FEDERATED_CREDENTIALS);
    else if (err)
        kl_mgmt_fail_internal(c, err, "create_federated_credential");
    else {
        kl_mgmt_log_change(c, "federated_credential_created", id);
        kl_mgmt_applied(c);
        kl_mgmt_reply_json(c, 201, federated_json(&fc));
    }
    free(aud);
}

/* The credential the path names within the list, or NULL after answering 404. */
static kl_store_federated_credential *find_in(kl_mgmt_call *c, kl_store_federated_credential **list,
                                              size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (kl_str_ieq(list[i]->id, c->names.credential))
            return list[i];
    not_found(c, c->names.credential);
    return NULL;
}

void kl_mgmt_federated_get(kl_mgmt_call *c)
{
    kl_store_federated_credential **list = NULL;
    size_t n = 0;
    if (load(c, &list, &n))
        return;
    kl_store_federated_credential *f = find_in(c, list, n);
    if (f)
        kl_mgmt_reply_json(c, 200, federated_json(f));
    kl_store_federated_credentials_free(list, n);
}

void kl_mgmt_federated_patch(kl_mgmt_call *c)
{
    kl_store_federated_credential **list = NULL;
    size_t n = 0;
    const char *name = NULL, *issuer = NULL, *subject = NULL, *description = NULL;
    char *aud = NULL;
    bool absent = false;
    if (!get_text(c, "name", KL_MAX_FEDERATED_NAME, false, &name) ||
        !get_text(c, "issuer", KL_MAX_FEDERATED_ISSUER, false, &issuer) ||
        !valid_issuer(c, issuer) ||
        !get_text(c, "subject", KL_MAX_FEDERATED_SUBJECT, false, &subject) ||
        !get_text(c, "description", KL_MAX_FEDERATED_DESCRIPTION, false, &description))
        return;
    aud = get_audiences(c, false, &absent);
    if (!aud && !absent)
        return;
    if (load(c, &list, &n))
        goto out;
    kl_store_federated_credential *f = find_in(c, list, n);
    if (!f)
        goto out;
    if (name && strcmp(name, f->name) != 0) {
        kl_mgmt_fail(c, 400, "Request_BadRequest",
                     "The name of a federated identity credential cannot be changed.");
        goto out;
    }
    kl_store_federated_credential upd = {.issuer = issuer ? (char *)issuer : f->issuer,
                                         .subject = subject ? (char *)subject : f->subject,
                                         .audiences = aud ? aud : f->audiences,
                                         .description = json_object_get(c->body, "description")
                                                            ? (char *)description
                                                            : f->description};
    int err = kl_store_update_federated_credential(c->m->store, c->names.object, f->id, &upd);
    if (err == KL_ENOTFOUND)
        not_found(c, c->names.credential);
    else if (err == KL_EEXIST)
        kl_mgmt_fail(c, 409, "Request_MultipleObjectsWithSameKeyValue",
                     "A federated identity credential with the same issuer and subject already "
                     "exists.");
    else if (err)
        kl_mgmt_fail_internal(c, err, "update_federated_credential");
    else {
        kl_mgmt_log_change(c, "federated_credential_updated", f->id);
        kl_mgmt_applied(c);
        kl_mgmt_reply_empty(c, 204);
    }
out:
    free(aud);
    kl_store_federated_credentials_free(list, n);
}

void kl_mgmt_federated_delete(kl_mgmt_call *c)
{
    int err =
        kl_store_delete_federated_credential(c->m->store, c->names.object, c->names.credential);
    if (err == KL_ENOTFOUND)
        not_found(c, c->names.credential);
    else if (err)
        kl_mgmt_fail_internal(c, err, "delete_federated_credential");
    else {
        kl_mgmt_log_change(c, "federated_credential_deleted", c->names.credential);
        kl_mgmt_applied(c);
        kl_mgmt_reply_empty(c, 204);
    }
}
