/* Snapshot builder: walks the store once and feeds the rows to the snapshot builder,
 * unsealing upstream credentials on the way. */
#include "policy/build.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "crypto/seal.h"
#include "policy/snapshot_builder.h"

typedef struct build_ctx {
    kl_snapshot_builder *b;
    const kl_keys *keys;
} build_ctx;

int kl_policy_credential_aad(const char *account_name, const char *deployment, const char *url,
                             char *out, size_t outlen)
{
    if (!account_name || !deployment || !url || !out || outlen == 0)
        return KL_EINVAL;
    int n = snprintf(out, outlen, "upstream-credential:%s:%s:%s", account_name, deployment, url);
    if (n < 0 || (size_t)n >= outlen)
        return KL_ETOOBIG;
    /* Only the account name is folded: account names are case-insensitive, deployment
     * names and URLs are not. */
    size_t start = strlen("upstream-credential:");
    for (size_t i = start; i < start + strlen(account_name); i++)
        if (out[i] >= 'A' && out[i] <= 'Z')
            out[i] = (char)(out[i] - 'A' + 'a');
    return 0;
}

static int on_account(void *arg, const kl_store_account *a)
{
    build_ctx *c = arg;
    return kl_snapshot_builder_account(c->b, a->id, a->name, a->subscription, a->resource_group,
                                       a->location, a->disable_local_auth);
}

static int on_key(void *arg, const char *account_name, const kl_store_key *k)
{
    build_ctx *c = arg;
    return kl_snapshot_builder_key(c->b, account_name, k->slot, k->index);
}

/* properties.model.name from the stored model object, or NULL. *owner must be
 * json_decref'd by the caller. */
static const char *model_name(const char *model_json, json_t **owner)
{
    *owner = NULL;
    if (!model_json)
        return NULL;
    *owner = json_loads(model_json, 0, NULL);
    const char *n = json_string_value(json_object_get(*owner, "name"));
    return n;
}

static int on_deployment(void *arg, const kl_store_deployment *d)
{
    build_ctx *c = arg;
    json_t *mj = NULL;
    const char *mname = model_name(d->model, &mj);
    unsigned char *cred = NULL;
    size_t cred_len = 0;
    int err = 0;
    kl_backend_kind kind = KL_BACKEND_ECHO;
    if (d->backend && strcmp(d->backend, "upstream") == 0)
        kind = KL_BACKEND_UPSTREAM;
    else if (!d->backend || strcmp(d->backend, "echo") != 0)
        err = KL_EINTERNAL;

    if (!err && kind == KL_BACKEND_UPSTREAM && d->credential_sealed) {
        char aad[KL_POLICY_AAD_MAX];
        err = kl_policy_credential_aad(d->account_name, d->name, d->upstream_url, aad, sizeof(aad));
        if (!err)
            err = kl_unseal(c->keys, aad, d->credential_sealed, &cred, &cred_len);
        if (!err && memchr(cred, '\0', cred_len))
            err = KL_ECRYPTO; /* a credential is text; refuse an embedded NUL */
        if (err)
            kl_log(KL_LOG_ERROR, "snapshot_credential_unseal_failed", "account", d->account_name,
                   "deployment", d->name, NULL);
    }
    if (!err)
        err = kl_snapshot_builder_deployment(c->b, d->account_name, d->name, mname, kind,
                                             kind == KL_BACKEND_UPSTREAM ? d->upstream_url : NULL,
                                             kind == KL_BACKEND_UPSTREAM ? d->upstream_model : NULL,
                                             (const char *)cred);
    if (cred) {
        OPENSSL_cleanse(cred, cred_len);
        free(cred);
    }
    json_decref(mj);
    return err;
}

int kl_policy_build(kl_store *st, const kl_keys *keys, kl_snapshot **out)
{
    if (!st || !keys || !out)
        return KL_EINVAL;
    *out = NULL;
    build_ctx c = {.b = kl_snapshot_builder_new(), .keys = keys};
    if (!c.b)
        return KL_ENOMEM;
    kl_store_visitor v = {
        .arg = &c, .account = on_account, .key = on_key, .deployment = on_deployment};
    int err = kl_store_load_all(st, &v);
    if (!err)
        err = kl_snapshot_builder_finish(c.b, out);
    kl_snapshot_builder_free(c.b);
    return err;
}

int kl_policy_rebuild(kl_store *st, const kl_keys *keys, kl_snapshot_holder *h)
{
    if (!h)
        return KL_EINVAL;
    kl_snapshot *s = NULL;
    int err = kl_policy_build(st, keys, &s);
    if (err) {
        kl_log(KL_LOG_ERROR, "snapshot_build_failed", "error", kl_err_str(err), NULL);
        return err;
    }
    kl_snapshot_publish(h, s);
    if (kl_log_enabled(KL_LOG_DEBUG)) {
        char g[24];
        snprintf(g, sizeof(g), "%llu", (unsigned long long)kl_snapshot_holder_generation(h));
        kl_log(KL_LOG_DEBUG, "snapshot_published", "generation", g, NULL);
    }
    return 0;
}
