/* Launch secrets of sites (keyless run): PUT {site}/identityHeaders/{launch id} makes the
 * secret a workload sends as X-IDENTITY-HEADER to the App-Service-style identity
 * endpoint, shown in that answer only (keylessd keeps its keyed hash), with a lease of
 * KL_IDENTITY_HEADER_LEASE_S; the same PUT again renews the lease without a new secret;
 * DELETE revokes it. The secret is 32 bytes from the OS CSPRNG, base64url. */
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/util.h"
#include "mgmt/internal.h"
#include "policy/idheaders.h"

#define SITE_ID_FMT "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Web/sites/%s"

static void site_id(const kl_mgmt_call *c, char *out, size_t outlen)
{
    snprintf(out, outlen, SITE_ID_FMT, c->names.subscription, c->names.resource_group,
             c->names.site);
}

void kl_mgmt_identity_header_put(kl_mgmt_call *c)
{
    char site[KL_MAX_SCOPE + 1], id[KL_MAX_SCOPE + KL_MAX_NAME + 32];
    unsigned char raw[KL_IDENTITY_HEADER_BYTES], hash[32];
    char secret[2 * KL_IDENTITY_HEADER_BYTES + 1] = "";
    site_id(c, site, sizeof(site));
    snprintf(id, sizeof(id), "%s/identityHeaders/%s", site, c->names.launch);
    if (RAND_bytes(raw, sizeof(raw)) != 1 ||
        kl_b64url_encode(raw, sizeof(raw), secret, sizeof(secret)) < 0 ||
        kl_idheaders_hash(c->m->keys, secret, strlen(secret), hash) != 0) {
        OPENSSL_cleanse(raw, sizeof(raw));
        kl_mgmt_fail_internal(c, KL_ECRYPTO, "identity_header_secret");
        return;
    }
    OPENSSL_cleanse(raw, sizeof(raw));
    int64_t now = kl_now_unix(), expires = now + KL_IDENTITY_HEADER_LEASE_S;
    bool created = false;
    int err = kl_store_put_identity_header(c->m->store, site, c->names.launch, hash, now, expires,
                                           &created);
    OPENSSL_cleanse(hash, sizeof(hash));
    if (err == KL_ENOTFOUND) {
        kl_mgmt_fail(c, 404, "ResourceNotFound",
                     "The Resource 'Microsoft.Web/sites/%s' under resource group '%s' was not "
                     "found.",
                     c->names.site, c->names.resource_group);
    } else if (err == KL_EEXIST) {
        kl_mgmt_fail(c, 409, "Conflict", "The launch id %s belongs to another site.",
                     c->names.launch);
    } else if (err == KL_ETOOBIG) {
        kl_mgmt_fail(c, 409, "TooManyIdentityHeaders",
                     "At most %d launch secrets may be alive at once.", KL_MAX_IDENTITY_HEADERS);
    } else if (err) {
        kl_mgmt_fail_internal(c, err, "identity_header_put");
    } else {
        kl_mgmt_applied(c);
        kl_mgmt_log_change(c, created ? "identity_header_created" : "identity_header_renewed", id);
        json_t *props =
            json_pack("{s:s,s:o,s:i}", "identityEndpoint", c->m->identity_endpoint, "expiresOn",
                      kl_arm_json_time(expires), "leaseSeconds", KL_IDENTITY_HEADER_LEASE_S);
        /* The secret is shown when it is made, never again (a renewal answers without).
         * A reference of our own to its JSON copy lets that copy be wiped too. */
        json_t *shown = created ? json_string(secret) : NULL;
        if (props && shown)
            json_object_set(props, "identityHeader", shown);
        kl_mgmt_reply_json(c, created ? 201 : 200,
                           props ? json_pack("{s:s,s:s,s:s,s:o}", "id", id, "name", c->names.launch,
                                             "type", "Microsoft.Web/sites/identityHeaders",
                                             "properties", props)
                                 : NULL);
        if (shown)
            OPENSSL_cleanse((char *)json_string_value(shown), json_string_length(shown));
        json_decref(shown);
    }
    OPENSSL_cleanse(secret, sizeof(secret));
}

void kl_mgmt_identity_header_delete(kl_mgmt_call *c)
{
    char site[KL_MAX_SCOPE + 1];
    site_id(c, site, sizeof(site));
    int err = kl_store_delete_identity_header(c->m->store, site, c->names.launch);
    if (err == KL_ENOTFOUND) {
        kl_mgmt_reply_empty(c, 204);
        return;
    }
    if (err) {
        kl_mgmt_fail_internal(c, err, "identity_header_delete");
        return;
    }
    kl_mgmt_applied(c);
    kl_mgmt_log_change(c, "identity_header_revoked", c->names.launch);
    kl_mgmt_reply_empty(c, 200);
}
