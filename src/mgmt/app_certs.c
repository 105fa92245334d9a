/* An application's certificates, in Graph's keyCredentials shape: uploaded with
 * PATCH /v1.0/applications/{id} {"keyCredentials":[...]} (the whole set, as in Graph: an
 * entry with "key" adds a certificate, an entry with only its "keyId" keeps one, anything
 * not listed is removed) and shown in the application. The certificate is public; it
 * is parsed and checked here (X.509, RSA of KL_MIN_RSA_BITS..KL_MAX_APP_CERT_BITS, one
 * our JWS verifier accepts) and stored with its thumbprints and validity dates. */
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/util.h"
#include "crypto/jws.h"
#include "mgmt/internal.h"

#define MAX_KEY_B64 (4 * ((2 * KL_MAX_APP_CERT_DER + 2) / 3)) /* base64 of a PEM file */
#define MAX_CERT_DISPLAY_NAME 256

/* One keyCredential as Graph shows it ("key" is never returned). */
static json_t *key_credential_json(const kl_store_key_credential *k)
{
    /* customKeyIdentifier: the SHA-1 thumbprint in upper-case hex, as Azure's tools show a
     * certificate's thumbprint; thumbprintSha256 (ours, not Graph's) is the x5t#S256. */
    return json_pack("{s:s, s:s, s:o, s:o, s:n, s:s, s:s, s:s, s:s}", "customKeyIdentifier",
                     k->thumbprint_sha1, "displayName", k->display_name, "endDateTime",
                     kl_arm_json_time(k->end_at), "startDateTime", kl_arm_json_time(k->start_at),
                     "key", "keyId", k->key_id, "type", "AsymmetricX509Cert", "usage", "Verify",
                     "thumbprintSha256", k->thumbprint_sha256);
}

int kl_mgmt_key_credentials_json(kl_mgmt_call *c, const char *app, json_t **out)
{
    *out = NULL;
    kl_store_key_credential **list = NULL;
    size_t n = 0;
    int err = kl_store_list_key_credentials(c->m->store, app, &list, &n);
    if (err)
        return err;
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        if (json_array_append_new(arr, key_credential_json(list[i]))) {
            json_decref(arr);
            arr = NULL;
        }
    kl_store_key_credentials_free(list, n);
    if (!arr)
        return KL_ENOMEM;
    *out = arr;
    return 0;
}

/* ---------------------------------------------------------------- parsing an upload */

static int64_t asn1_seconds(const ASN1_TIME *t, bool *ok)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1) {
        *ok = false;
        return 0;
    }
    return (int64_t)timegm(&tm);
}

/* The subject as "CN=...,O=..." (RFC 2253), printable ASCII only, or "" if none. */
static void subject_name(X509 *x, char *out, size_t outlen)
{
    out[0] = '\0';
    BIO *b = BIO_new(BIO_s_mem());
    if (!b)
        return;
    if (X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) >= 0) {
        char *p = NULL;
        long n = BIO_get_mem_data(b, &p);
        size_t o = 0;
        for (long i = 0; p && i < n && o + 1 < outlen; i++)
            out[o++] = (p[i] >= 0x20 && p[i] < 0x7f) ? p[i] : '?';
        out[o] = '\0';
    }
    BIO_free(b);
}

/* Parses an uploaded certificate: key is standard base64 of DER or of PEM, or PEM text.
 * Fills k (strings owned by it) on success; otherwise writes why into why. */
static int parse_certificate(const char *key, size_t klen, kl_store_key_credential *k, char *why,
                             size_t wl)
{
    unsigned char *raw = NULL, *der = NULL;
    X509 *x = NULL;
    kl_jws_key *jk = NULL;
    int err = KL_EINVAL;
    const unsigned char *bytes = (const unsigned char *)key;
    size_t n = klen;
    snprintf(why, wl, "key is not a base64-encoded X.509 certificate (DER or PEM).");
    if (klen == 0 || klen > MAX_KEY_B64)
        goto out;
    if (strncmp(key, "-----BEGIN", 10) != 0) {
        if (!(raw = malloc(klen / 4 * 3 + 3))) {
            err = KL_ENOMEM;
            goto out;
        }
        int got = kl_b64_decode(key, klen, raw, klen / 4 * 3 + 3);
        if (got <= 0)
            goto out;
        bytes = raw;
        n = (size_t)got;
    }
    if (n >= 10 && memcmp(bytes, "-----BEGIN", 10) == 0) {
        BIO *b = BIO_new_mem_buf(bytes, (int)n);
        if (b)
            x = PEM_read_bio_X509(b, NULL, NULL, NULL);
        BIO_free(b);
    } else {
        const unsigned char *p = bytes;
        x = d2i_X509(NULL, &p, (long)n);
        if (x && p != bytes + n) {
            X509_free(x);
            x = NULL;
        }
    }
    if (!x)
        goto out;
    EVP_PKEY *pk = X509_get0_pubkey(x);
    int bits = pk ? EVP_PKEY_get_bits(pk) : 0;
    if (!pk || EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA || bits < KL_MIN_RSA_BITS ||
        bits > KL_MAX_APP_CERT_BITS) {
        snprintf(why, wl, "Only RSA certificates of %d to %d bits are supported.", KL_MIN_RSA_BITS,
                 KL_MAX_APP_CERT_BITS);
        goto out;
    }
    int dl = i2d_X509(x, &der);
    if (dl <= 0 || dl > KL_MAX_APP_CERT_DER)
        goto out;
    bool ok = true;
    k->start_at = asn1_seconds(X509_get0_notBefore(x), &ok);
    k->end_at = asn1_seconds(X509_get0_notAfter(x), &ok);
    if (!ok || k->end_at <= k->start_at) {
        snprintf(why, wl, "The certificate's validity dates cannot be read.");
        goto out;
    }
    /* The verifier must accept it too, so that what is registered can sign. */
    if (kl_jws_key_from_cert_der(der, (size_t)dl, KL_JWS_RS256 | KL_JWS_PS256, &jk))
        goto out;
    unsigned char sha1[20];
    char hex[41];
    if (EVP_Digest(der, (size_t)dl, sha1, NULL, EVP_sha1(), NULL) != 1) {
        err = KL_ECRYPTO;
        goto out;
    }
    kl_hex_encode(sha1, sizeof(sha1), hex);
    for (char *h = hex; *h; h++)
        if (*h >= 'a' && *h <= 'f')
            *h = (char)(*h - 'a' + 'A');
    size_t cl = 4 * (((size_t)dl + 2) / 3) + 1;
    char subject[MAX_CERT_DISPLAY_NAME];
    subject_name(x, subject, sizeof(subject));
    k->thumbprint_sha1 = kl_strndup(hex, 40);
    k->thumbprint_sha256 = kl_strndup(kl_jws_key_x5t_s256(jk), strlen(kl_jws_key_x5t_s256(jk)));
    k->cert = malloc(cl);
    if (!k->display_name)
        k->display_name = kl_strndup(subject, strlen(subject));
    if (!k->thumbprint_sha1 || !k->thumbprint_sha256 || !k->cert || !k->display_name ||
        kl_b64_encode(der, (size_t)dl, k->cert, cl) < 0) {
        err = KL_ENOMEM;
        goto out;
    }
    err = 0;
out:
    kl_jws_key_free(jk);
    OPENSSL_free(der);
    X509_free(x);
    free(raw);
    return err;
}

static void free_row(kl_store_key_credential *k)
{
    free(k->key_id);
    free(k->app_id);
    free(k->display_name);
    free(k->thumbprint_sha1);
    free(k->thumbprint_sha256);
    free(k->cert);
    memset(k, 0, sizeof(*k));
}

static bool bad_request(kl_mgmt_call *c, const char *fmt, const char *detail)
{
    kl_mgmt_fail(c, 400, "Request_BadRequest", fmt, detail ? detail : "");
    return false;
}

bool kl_mgmt_key_credentials_set(kl_mgmt_call *c, const kl_store_application *a, const json_t *kc)
{
    if (!json_is_array(kc))
        return bad_request(c, "keyCredentials must be an array.%s", NULL);
    size_t n = json_array_size(kc);
    if (n > KL_MAX_APP_KEY_CREDENTIALS) {
        kl_mgmt_fail(c, 400, "Request_BadRequest",
                     "An application can have at most %d keyCredentials.",
                     KL_MAX_APP_KEY_CREDENTIALS);
        return false;
    }
    kl_store_key_credential rows[KL_MAX_APP_KEY_CREDENTIALS];
    const kl_store_key_credential *ptrs[KL_MAX_APP_KEY_CREDENTIALS];
    bool owned[KL_MAX_APP_KEY_CREDENTIALS] = {false}; /* rows[i]'s strings are ours to free */
    kl_store_key_credential **have = NULL;
    size_t nh = 0;
    bool ok = false;
    char why[160];
    memset(rows, 0, sizeof(rows));
    int err = kl_store_list_key_credentials(c->m->store, a->object_id, &have, &nh);
    if (err) {
        kl_mgmt_fail_internal(c, err, "list_key_credentials");
        goto out;
    }
    int64_t now = kl_now_unix();
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(kc, i);
        const json_t *jkey = json_object_get(e, "key"), *jid = json_object_get(e, "keyId");
        const json_t *jtype = json_object_get(e, "type"), *jusage = json_object_get(e, "usage");
        const json_t *jname = json_object_get(e, "displayName");
        const char *id = json_string_value(jid);
        if (!json_is_object(e)) {
            bad_request(c, "Each keyCredential must be an object.%s", NULL);
            goto out;
        }
        if ((jtype && !json_is_null(jtype) &&
             !(json_is_string(jtype) &&
               strcmp(json_string_value(jtype), "AsymmetricX509Cert") == 0)) ||
            (jusage && !json_is_null(jusage) &&
             !(json_is_string(jusage) && strcmp(json_string_value(jusage), "Verify") == 0))) {
            bad_request(c,
                        "Only keyCredentials of type AsymmetricX509Cert and usage Verify are "
                        "supported.%s",
                        NULL);
            goto out;
        }
        if (jid && !json_is_null(jid) &&
            (!id || strlen(id) != json_string_length(jid) || !kl_uuid_valid(id, strlen(id)))) {
            bad_request(c, "keyId must be a GUID.%s", NULL);
            goto out;
        }
        if (!jkey || json_is_null(jkey)) {
            /* Keeps an existing certificate, named by its keyId. */
            const kl_store_key_credential *found = NULL;
            for (size_t h = 0; id && h < nh && !found; h++)
                if (kl_str_ieq(have[h]->key_id, id))
                    found = have[h];
            if (!found) {
                bad_request(c, "A keyCredential without a key must name an existing keyId.%s",
                            NULL);
                goto out;
            }
            rows[i] = *found; /* borrowed from have */
            ptrs[i] = &rows[i];
            continue;
        }
        const char *key = json_string_value(jkey);
        if (!key || strlen(key) != json_string_length(jkey)) {
            bad_request(c, "key must be a string.%s", NULL);
            goto out;
        }
        owned[i] = true;
        if (jname && !json_is_null(jname)) {
            const char *dn = json_string_value(jname);
            if (!dn || strlen(dn) != json_string_length(jname) || !dn[0] ||
                strlen(dn) >= MAX_CERT_DISPLAY_NAME) {
                bad_request(c, "displayName must be 1-%s characters.", "255");
                goto out;
            }
            for (const char *p = dn; *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f) {
                    bad_request(c, "displayName must not contain control characters.%s", NULL);
                    goto out;
                }
            rows[i].display_name = kl_strndup(dn, strlen(dn));
        }
        char kid[KL_UUID_LEN + 1];
        if (id)
            snprintf(kid, sizeof(kid), "%s", id);
        else if ((err = kl_uuid_v4(kid))) {
            kl_mgmt_fail_internal(c, err, "key_id");
            goto out;
        }
        rows[i].key_id = kl_strndup(kid, strlen(kid));
        rows[i].created_at = now;
        err = rows[i].key_id ? parse_certificate(key, strlen(key), &rows[i], why, sizeof(why))
                             : KL_ENOMEM;
        if (err == KL_EINVAL) {
            bad_request(c, "Invalid keyCredential: %s", why);
            goto out;
        }
        if (err) {
            kl_mgmt_fail_internal(c, err, "parse_certificate");
            goto out;
        }
        ptrs[i] = &rows[i];
    }
    err = kl_store_set_key_credentials(c->m->store, a->object_id, ptrs, n);
    if (err == KL_EEXIST)
        kl_mgmt_fail(c, 400, "Request_BadRequest",
                     "The keyCredentials list a certificate or a keyId twice, or a keyId that "
                     "is in use.");
    else if (err == KL_ENOTFOUND)
        kl_mgmt_fail(c, 404, "Request_ResourceNotFound",
                     "Resource '%s' does not exist or one of its queried reference-property "
                     "objects are not present.",
                     c->names.object);
    else if (err)
        kl_mgmt_fail_internal(c, err, "set_key_credentials");
    else {
        kl_mgmt_log_change(c, "application_key_credentials_set", a->object_id);
        kl_mgmt_applied(c);
        ok = true;
    }
out:
    for (size_t i = 0; i < n; i++)
        if (owned[i])
            free_row(&rows[i]);
    kl_store_key_credentials_free(have, nh);
    return ok;
}
