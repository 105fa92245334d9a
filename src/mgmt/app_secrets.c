/* Client secrets of applications in Microsoft Graph's shapes: POST
 * /v1.0/applications/{id}/addPassword answers a passwordCredential whose secretText is
 * shown this once only (keylessd keeps an HMAC of it under the KEK's pepper), and
 * removePassword deletes one by keyId. The secret is 40 characters from the OS CSPRNG;
 * its first three are the hint, as in Entra. */
#define _DEFAULT_SOURCE /* timegm */
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "mgmt/internal.h"
#include "policy/sts.h"

#define SECRET_LEN 40
#define HINT_LEN 3
#define DEFAULT_DAYS 180
#define MAX_SECS (2 * 366 * 86400LL) /* Graph: at most two years */
#define MAX_SECRETS 16               /* per application */
#define MAX_SECRET_NAME 256

static const char ALNUM[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
static const char TAIL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.~-";

/* Fills out[0..n) with characters of alphabet (length a, at most 256) chosen uniformly
 * (rejection sampling over random bytes). */
static int random_chars(char *out, size_t n, const char *alphabet, size_t a)
{
    unsigned char buf[64];
    size_t limit = 256 - 256 % a, i = 0;
    while (i < n) {
        if (RAND_bytes(buf, sizeof(buf)) != 1)
            return KL_ECRYPTO;
        for (size_t j = 0; j < sizeof(buf) && i < n; j++)
            if (buf[j] < limit)
                out[i++] = alphabet[buf[j] % a];
    }
    OPENSSL_cleanse(buf, sizeof(buf));
    return 0;
}

/* A secret shaped like Entra's: three-character hint, "8Q~", 34 more characters
 * (about 204 bits from the tail alone). */
static int make_secret(char out[SECRET_LEN + 1])
{
    int err = random_chars(out, HINT_LEN, ALNUM, sizeof(ALNUM) - 1);
    if (!err) {
        memcpy(out + HINT_LEN, "8Q~", 3);
        err = random_chars(out + HINT_LEN + 3, SECRET_LEN - HINT_LEN - 3, TAIL, sizeof(TAIL) - 1);
    }
    out[SECRET_LEN] = '\0';
    return err;
}

/* Parses "YYYY-MM-DDTHH:MM:SS[.fraction]Z" (Graph's DateTimeOffset in UTC). */
static int parse_time(const char *s, int64_t *out)
{
    struct tm tm = {0};
    char *end = NULL;
    if (!s || strlen(s) < 20)
        return KL_EINVAL;
    for (int i = 0; i < 19; i++) {
        bool digit = s[i] >= '0' && s[i] <= '9';
        char want = (i == 4 || i == 7) ? '-' : i == 10 ? 'T' : (i == 13 || i == 16) ? ':' : 0;
        if (want ? s[i] != want : !digit)
            return KL_EINVAL;
    }
    tm.tm_year = (int)strtol(s, &end, 10) - 1900;
    tm.tm_mon = (int)strtol(s + 5, &end, 10) - 1;
    tm.tm_mday = (int)strtol(s + 8, &end, 10);
    tm.tm_hour = (int)strtol(s + 11, &end, 10);
    tm.tm_min = (int)strtol(s + 14, &end, 10);
    tm.tm_sec = (int)strtol(s + 17, &end, 10);
    const char *p = s + 19;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (strcmp(p, "Z") != 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
        tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
        return KL_EINVAL;
    *out = (int64_t)timegm(&tm);
    return 0;
}

/* Graph's passwordCredential; secret_text only in addPassword's answer. */
static json_t *credential_json(const kl_store_app_secret *s, const char *secret_text)
{
    return json_pack("{s:n,s:s,s:o,s:s,s:s,s:s?,s:o}", "customKeyIdentifier", "displayName",
                     s->display_name, "endDateTime", kl_arm_json_time(s->end_at), "hint", s->hint,
                     "keyId", s->key_id, "secretText", secret_text, "startDateTime",
                     kl_arm_json_time(s->start_at));
}

json_t *kl_mgmt_password_credentials(kl_mgmt_call *c, const char *app_object_id)
{
    kl_store_app_secret **l = NULL;
    size_t n = 0;
    if (kl_store_list_app_secrets(c->m->store, app_object_id, &l, &n) != 0)
        return NULL;
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        if (json_array_append_new(arr, credential_json(l[i], NULL)) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    kl_store_app_secrets_free(l, n);
    return arr;
}

static void app_not_found(kl_mgmt_call *c)
{
    kl_mgmt_fail(c, 404, "Request_ResourceNotFound",
                 "Resource '%s' does not exist or one of its queried reference-property objects "
                 "are not present.",
                 c->names.object);
}

void kl_mgmt_application_add_password(kl_mgmt_call *c)
{
    const json_t *pc = c->body ? json_object_get(c->body, "passwordCredential") : NULL;
    if (kl_mgmt_mi_credential_refused(c))
        return;
    if (pc && !json_is_object(pc) && !json_is_null(pc)) {
        kl_mgmt_fail(c, 400, "Request_BadRequest", "passwordCredential must be an object.");
        return;
    }
    int64_t now = kl_now_unix(), start = now, end = now + DEFAULT_DAYS * 86400LL;
    const char *name = "";
    const json_t *v;
    if (pc && (v = json_object_get(pc, "displayName")) && !json_is_null(v)) {
        name = json_string_value(v);
        if (!name || json_string_length(v) > MAX_SECRET_NAME ||
            strlen(name) != json_string_length(v)) {
            kl_mgmt_fail(c, 400, "Request_BadRequest",
                         "displayName must be a string of at most %d bytes.", MAX_SECRET_NAME);
            return;
        }
    }
    if (pc && (v = json_object_get(pc, "startDateTime")) && !json_is_null(v) &&
        parse_time(json_string_value(v), &start) != 0) {
        kl_mgmt_fail(c, 400, "Request_BadRequest", "startDateTime must be an ISO 8601 UTC time.");
        return;
    }
    if (pc && (v = json_object_get(pc, "endDateTime")) && !json_is_null(v) &&
        parse_time(json_string_value(v), &end) != 0) {
        kl_mgmt_fail(c, 400, "Request_BadRequest", "endDateTime must be an ISO 8601 UTC time.");
        return;
    }
    if (end <= start || end <= now || end - start > MAX_SECS) {
        kl_mgmt_fail(c, 400, "Request_BadRequest",
                     "endDateTime must be after startDateTime and now, and at most two years "
                     "after startDateTime.");
        return;
    }
    char secret[SECRET_LEN + 1], key_id[KL_UUID_LEN + 1], hint[HINT_LEN + 1];
    kl_store_app_secret s = {
        .display_name = (char *)name, .start_at = start, .end_at = end, .created_at = now};
    int err = make_secret(secret);
    if (!err)
        err = kl_uuid_v4(key_id);
    if (!err)
        err = kl_sts_secret_hash(c->m->keys, secret, SECRET_LEN, s.hash);
    if (err) {
        OPENSSL_cleanse(secret, sizeof(secret));
        kl_mgmt_fail_internal(c, err, "add_password");
        return;
    }
    memcpy(hint, secret, HINT_LEN);
    hint[HINT_LEN] = '\0';
    s.hint = hint;
    s.key_id = key_id;
    err = kl_store_add_app_secret(c->m->store, c->names.object, &s, MAX_SECRETS);
    if (err == KL_ENOTFOUND)
        app_not_found(c);
    else if (err == KL_ETOOBIG)
        kl_mgmt_fail(c, 400, "TooManyAppPasswords",
                     "The application already has %d password credentials; remove one first.",
                     MAX_SECRETS);
    else if (err)
        kl_mgmt_fail_internal(c, err, "add_password");
    else {
        kl_mgmt_log_change(c, "password_added", key_id);
        kl_mgmt_applied(c);
        kl_mgmt_reply_json(c, 200, credential_json(&s, secret));
    }
    OPENSSL_cleanse(secret, sizeof(secret));
    OPENSSL_cleanse(s.hash, sizeof(s.hash));
}

void kl_mgmt_application_remove_password(kl_mgmt_call *c)
{
    const json_t *k = c->body ? json_object_get(c->body, "keyId") : NULL;
    const char *key_id = json_string_value(k);
    if (!key_id || !kl_uuid_valid(key_id, json_string_length(k))) {
        kl_mgmt_fail(c, 400, "Request_BadRequest",
                     "keyId must be the GUID of a password credential.");
        return;
    }
    int err = kl_store_remove_app_secret(c->m->store, c->names.object, key_id);
    if (err == KL_ENOTFOUND) {
        kl_mgmt_fail(c, 404, "Request_ResourceNotFound",
                     "No password credential with keyId '%s' on application '%s'.", key_id,
                     c->names.object);
        return;
    }
    if (err) {
        kl_mgmt_fail_internal(c, err, "remove_password");
        return;
    }
    kl_mgmt_log_change(c, "password_removed", key_id);
    kl_mgmt_applied(c);
    kl_mgmt_reply_empty(c, 204);
}
