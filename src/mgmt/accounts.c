/* Microsoft.CognitiveServices/accounts: create/update, read, list, delete, and the two
 * key actions. Keys are generated here, stored only sealed and as a keyed-hash index;
 * every change is one store transaction followed by a snapshot rebuild. */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/util.h"
#include "crypto/apikey.h"
#include "crypto/seal.h"
#include "mgmt/identity.h"
#include "mgmt/internal.h"
#include "mgmt/resource.h"

/* A fresh key for slot of account_id: sealed and indexed into *k (k->sealed is malloc'd).
 * The plain key is wiped before returning; listKeys unseals it when asked. */
static int new_key(kl_mgmt *m, const char *account_id, int slot, int64_t now, kl_store_key *k)
{
    char plain[KL_APIKEY_LEN + 1];
    char aad[KL_ARM_MAX_ID + 32];
    memset(k, 0, sizeof(*k));
    k->slot = slot;
    k->created_at = now;
    int err = kl_arm_apikey_aad(account_id, slot, aad, sizeof(aad));
    if (!err)
        err = kl_apikey_generate(plain);
    if (!err)
        err = kl_apikey_index(m->keys, plain, KL_APIKEY_LEN, k->index);
    if (!err)
        err = kl_seal(m->keys, aad, plain, KL_APIKEY_LEN, &k->sealed);
    OPENSSL_cleanse(plain, sizeof(plain));
    return err;
}

static void free_key(kl_store_key *k)
{
    if (k->sealed) {
        OPENSSL_cleanse(k->sealed, strlen(k->sealed));
        free(k->sealed);
        k->sealed = NULL;
    }
}

/* The account as ARM shows it, with its identity block; NULL on failure. */
static json_t *account_json(kl_mgmt_call *c, const kl_store_account *a)
{
    json_t *o = kl_resource_account_json(a, c->m->public_base_url);
    if (o && kl_mgmt_identity_member(c, o, a->id)) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

static void reply_account(kl_mgmt_call *c, int status)
{
    kl_store_account *a = NULL;
    int err = kl_store_get_account(c->m->store, c->names.account, &a);
    if (err) {
        kl_mgmt_fail_internal(c, err, "get_account");
        return;
    }
    kl_mgmt_reply_json(c, status, account_json(c, a));
    kl_store_account_free(a);
}

static void reply_conflict(kl_mgmt_call *c)
{
    kl_mgmt_fail(c, 409, "CustomDomainInUse",
                 "The subdomain name '%s' is not available as it's already used by a resource.",
                 c->names.account);
}

void kl_mgmt_account_put(kl_mgmt_call *c)
{
    kl_arm_names *n = &c->names;
    kl_account_input in = {0};
    kl_store_key keys[2] = {{0}, {0}};
    kl_arm_error e = {0};
    kl_identity_prep prep = {0};
    char id[KL_ARM_MAX_ID];
    char etag[KL_UUID_LEN + 1];
    int64_t now = kl_now_unix();
    bool created = false;

    int err = kl_arm_account_id(n->subscription, n->resource_group, n->account, id, sizeof(id));
    if (err) {
        kl_mgmt_fail_internal(c, err, "account_id");
        return;
    }
    err = kl_resource_parse_account(c->body, n->account, NULL, &in, &e);
    if (err == KL_EINVAL) {
        kl_mgmt_reply_error(c, &e);
        return;
    }
    if (!err && kl_mgmt_identity_prepare(c, id, false, &prep)) {
        kl_resource_account_input_free(&in);
        return;
    }
    /* Keys are made up front so that creating the account and its keys is one
     * transaction; on an update the store ignores them. */
    if (!err)
        err = kl_uuid_v4(etag);
    if (!err)
        err = new_key(c->m, id, 1, now, &keys[0]);
    if (!err)
        err = new_key(c->m, id, 2, now, &keys[1]);
    if (err) {
        kl_mgmt_fail_internal(c, err, "account_put");
        goto out;
    }
    kl_store_account a = {.id = id,
                          .subscription = n->subscription,
                          .resource_group = n->resource_group,
                          .name = n->account,
                          .location = in.location,
                          .kind = in.kind,
                          .sku = in.sku,
                          .tags = in.tags,
                          .properties = in.properties,
                          .disable_local_auth = in.disable_local_auth,
                          .network_acls = in.network_acls,
                          .etag = etag,
                          .created_at = now,
                          .modified_at = now};
    err = kl_store_put_account_ex(c->m->store, &a, keys, 2, prep.has_spec ? &prep.spec : NULL,
                                  &created);
    if (err == KL_ECONFLICT) {
        reply_conflict(c);
        goto out;
    }
    if (err && kl_mgmt_identity_write_failed(c, id, err))
        goto out;
    if (err) {
        kl_mgmt_fail_internal(c, err, "put_account");
        goto out;
    }
    kl_mgmt_log_change(c, created ? "account_created" : "account_updated", id);
    kl_mgmt_applied(c);
    reply_account(c, created ? 201 : 200);
out:
    free_key(&keys[0]);
    free_key(&keys[1]);
    kl_resource_account_input_free(&in);
    kl_identity_prep_free(&prep);
}

void kl_mgmt_account_patch(kl_mgmt_call *c)
{
    kl_store_account *base = NULL;
    kl_account_input in = {0};
    kl_arm_error e = {0};
    kl_identity_prep prep = {0};
    char etag[KL_UUID_LEN + 1];
    if (kl_mgmt_find_account(c, true, &base))
        return;
    int err = kl_resource_parse_account(c->body, base->name, base, &in, &e);
    if (err == KL_EINVAL) {
        kl_mgmt_reply_error(c, &e);
        goto out;
    }
    if (!err && kl_mgmt_identity_prepare(c, base->id, true, &prep))
        goto out;
    if (!err)
        err = kl_uuid_v4(etag);
    if (err) {
        kl_mgmt_fail_internal(c, err, "account_patch");
        goto out;
    }
    kl_store_account a = *base;
    a.location = in.location;
    a.kind = in.kind;
    a.sku = in.sku;
    a.tags = in.tags;
    a.properties = in.properties;
    a.disable_local_auth = in.disable_local_auth;
    a.network_acls = in.network_acls;
    a.etag = etag;
    a.modified_at = kl_now_unix();
    bool created = false;
    err = kl_store_put_account_ex(c->m->store, &a, NULL, 0, prep.has_spec ? &prep.spec : NULL,
                                  &created);
    if (err == KL_ECONFLICT) {
        reply_conflict(c);
        goto out;
    }
    if (err && kl_mgmt_identity_write_failed(c, base->id, err))
        goto out;
    if (err || created) {
        /* created: deleted and re-created by someone else in between; not ours. */
        kl_mgmt_fail_internal(c, err ? err : KL_ECONFLICT, "patch_account");
        goto out;
    }
    kl_mgmt_log_change(c, "account_updated", base->id);
    kl_mgmt_applied(c);
    reply_account(c, 200);
out:
    kl_resource_account_input_free(&in);
    kl_identity_prep_free(&prep);
    kl_store_account_free(base);
}

void kl_mgmt_account_get(kl_mgmt_call *c)
{
    kl_store_account *a = NULL;
    if (kl_mgmt_find_account(c, true, &a))
        return;
    kl_mgmt_reply_json(c, 200, account_json(c, a));
    kl_store_account_free(a);
}

void kl_mgmt_account_delete(kl_mgmt_call *c)
{
    kl_store_account *a = NULL;
    int err = kl_mgmt_find_account(c, false, &a);
    if (!err)
        kl_mgmt_reply_deleted(c, kl_store_delete_account(c->m->store, a->name), "delete_account",
                              "account_deleted", a->id);
    else if (err == KL_ENOTFOUND)
        kl_mgmt_reply_empty(c, 204);
    kl_store_account_free(a);
}

void kl_mgmt_accounts_list(kl_mgmt_call *c)
{
    kl_store_account **list = NULL;
    size_t n = 0;
    const char *rg = c->names.resource_group[0] ? c->names.resource_group : NULL;
    int err = kl_store_list_accounts(c->m->store, c->names.subscription, rg, &list, &n);
    if (err) {
        kl_mgmt_fail_internal(c, err, "list_accounts");
        return;
    }
    json_t *value = json_array();
    json_t *body = json_object();
    bool ok = value && body;
    size_t shown = 0;
    for (size_t i = 0; ok && i < n; i++) {
        /* Not allowed on the whole collection: only what the caller may read. */
        if (c->list_filtered && !kl_mgmt_allowed(c, c->route->action, list[i]->id))
            continue;
        ok = json_array_append_new(value, account_json(c, list[i])) == 0;
        shown++;
    }
    if (ok)
        ok = json_object_set(body, "value", value) == 0;
    json_decref(value);
    kl_store_accounts_free(list, n);
    if (!ok) {
        json_decref(body);
        body = NULL;
    }
    if (c->list_filtered && shown == 0) {
        char scope[KL_MAX_SCOPE + 1];
        kl_mgmt_call_scope(c, scope, sizeof(scope));
        json_decref(body);
        kl_mgmt_deny(c, c->route->action, scope);
        return;
    }
    kl_mgmt_reply_json(c, 200, body);
}

static void refuse_local_auth_disabled(kl_mgmt_call *c)
{
    kl_mgmt_fail(c, 400, "BadRequest", "Failed to list key. disableLocalAuth is set to be true");
}

/* Answers {"key1":..,"key2":..} with the account's keys unsealed. The body is built in
 * a buffer we wipe, not in JSON values we cannot. */
static void reply_keys(kl_mgmt_call *c, const kl_store_account *a)
{
    kl_store_key *keys = NULL;
    size_t n = 0;
    unsigned char *plain[2] = {NULL, NULL};
    size_t plen[2] = {0, 0};
    kl_buf out;
    kl_buf_init(&out, 512);
    int err = kl_store_get_account_keys(c->m->store, a->name, &keys, &n);
    for (size_t i = 0; !err && i < n; i++) {
        char aad[KL_ARM_MAX_ID + 32];
        int s = keys[i].slot - 1;
        err = kl_arm_apikey_aad(a->id, keys[i].slot, aad, sizeof(aad));
        if (!err)
            err = kl_unseal(c->m->keys, aad, keys[i].sealed, &plain[s], &plen[s]);
        /* Only a well-formed key goes into the JSON unescaped. */
        if (!err && !kl_apikey_wellformed((const char *)plain[s], plen[s]))
            err = KL_ECRYPTO;
    }
    if (!err) {
        err = kl_buf_append_str(&out, "{\"key1\":");
        for (int s = 0; !err && s < 2; s++) {
            if (s == 1)
                err = kl_buf_append_str(&out, ",\"key2\":");
            if (!err && plain[s])
                err = kl_buf_appendf(&out, "\"%.*s\"", (int)plen[s], (const char *)plain[s]);
            else if (!err)
                err = kl_buf_append_str(&out, "null");
        }
        if (!err)
            err = kl_buf_append_str(&out, "}");
    }
    if (err)
        kl_mgmt_fail_internal(c, err, "list_keys");
    else
        kl_http_respond(c->r, 200, "application/json", out.data, out.len);
    for (int s = 0; s < 2; s++) {
        if (plain[s]) {
            OPENSSL_cleanse(plain[s], plen[s]);
            free(plain[s]);
        }
    }
    kl_buf_cleanse_free(&out);
    kl_store_keys_free(keys, n);
}

void kl_mgmt_account_list_keys(kl_mgmt_call *c)
{
    kl_store_account *a = NULL;
    if (kl_mgmt_find_account(c, true, &a))
        return;
    if (a->disable_local_auth)
        refuse_local_auth_disabled(c);
    else
        reply_keys(c, a);
    kl_store_account_free(a);
}

void kl_mgmt_account_regenerate_key(kl_mgmt_call *c)
{
    int slot = 0;
    kl_arm_error e = {0};
    kl_store_account *a = NULL;
    kl_store_key k = {0};
    if (kl_resource_parse_key_name(c->body, &slot, &e)) {
        kl_mgmt_reply_error(c, &e);
        return;
    }
    if (kl_mgmt_find_account(c, true, &a))
        return;
    if (a->disable_local_auth) {
        refuse_local_auth_disabled(c);
        goto out;
    }
    int err = new_key(c->m, a->id, slot, kl_now_unix(), &k);
    if (!err)
        err = kl_store_regenerate_account_key(c->m->store, a->name, &k);
    if (err) {
        kl_mgmt_fail_internal(c, err, "regenerate_key");
        goto out;
    }
    kl_mgmt_log_change(c, slot == 1 ? "key1_regenerated" : "key2_regenerated", a->id);
    /* The snapshot is republished before we answer: the old key is refused from the
     * very next request on. */
    kl_mgmt_applied(c);
    reply_keys(c, a);
out:
    free_key(&k);
    kl_store_account_free(a);
}

/* {"value":[{"keyName":"Key1","createdAt":..,"lastUsed":..|null},...]}: lastUsed is the
 * start of the last day (UTC) the key was used, from the store and from this node's
 * usage not yet written. */
void kl_mgmt_account_list_key_usage(kl_mgmt_call *c)
{
    kl_store_account *a = NULL;
    kl_store_key *keys = NULL;
    size_t n = 0;
    if (kl_mgmt_find_account(c, true, &a))
        return;
    int err = kl_store_get_account_keys(c->m->store, a->name, &keys, &n);
    json_t *value = err ? NULL : json_array();
    for (size_t i = 0; value && i < n; i++) {
        char created[32], used[32];
        int64_t last = keys[i].last_used;
        int64_t mem = kl_keyusage_day_of(c->m->usage, keys[i].index);
        if (mem > last)
            last = mem;
        kl_time_iso8601(keys[i].created_at, created, sizeof(created));
        if (last > 0)
            kl_time_iso8601(last, used, sizeof(used));
        json_t *k =
            json_pack("{s:s,s:s,s:o}", "keyName", keys[i].slot == 2 ? "Key2" : "Key1", "createdAt",
                      created, "lastUsed", last > 0 ? json_string(used) : json_null());
        if (!k || json_array_append_new(value, k)) {
            json_decref(value);
            value = NULL;
        }
    }
    if (err)
        kl_mgmt_fail_internal(c, err, "list_key_usage");
    else
        kl_mgmt_reply_value(c, value);
    kl_store_keys_free(keys, n);
    kl_store_account_free(a);
}
