/* Users and groups: name rules, the password policy, and creation (see users.h). */
#include "directory/users.h"

#include <openssl/crypto.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "crypto/argon2id.h"
#include "directory/directory.h"

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool valid_domain(const char *s, size_t n)
{
    size_t labels = 0, i = 0;
    while (i <= n) {
        size_t start = i;
        while (i < n && s[i] != '.')
            i++;
        size_t len = i - start;
        if (len == 0 || len > 63 || s[start] == '-' || s[i - 1] == '-')
            return false;
        for (size_t j = start; j < i; j++)
            if (!is_alnum(s[j]) && s[j] != '-')
                return false;
        labels++;
        i++; /* past the dot (or the end) */
    }
    return labels >= 2;
}

bool kl_users_valid_upn(const char *s, size_t n)
{
    if (!s || n == 0 || n > KL_MAX_UPN || memchr(s, '\0', n))
        return false;
    const char *at = memchr(s, '@', n);
    if (!at || memchr(at + 1, '@', n - (size_t)(at - s) - 1))
        return false;
    size_t local = (size_t)(at - s);
    if (local == 0 || local > KL_MAX_UPN_LOCAL || s[0] == '.' || s[local - 1] == '.')
        return false;
    for (size_t i = 0; i < local; i++) {
        if (!is_alnum(s[i]) && !strchr(".-_'!#^~+", s[i]))
            return false;
        if (s[i] == '.' && i + 1 < local && s[i + 1] == '.')
            return false;
    }
    return valid_domain(at + 1, n - local - 1);
}

int kl_users_password_policy(const char *pw, size_t n, const char *upn, const char *display_name,
                             char *why, size_t whylen)
{
    if (!pw || n < KL_MIN_PASSWORD || n > KL_MAX_PASSWORD)
        return kl_err_say(why, whylen, KL_EINVAL, "the password must be %d to %d bytes long",
                          KL_MIN_PASSWORD, KL_MAX_PASSWORD);
    if (memchr(pw, '\0', n))
        return kl_err_say(why, whylen, KL_EINVAL, "the password must not contain a NUL byte");
    if (upn) {
        const char *at = strchr(upn, '@');
        size_t local = at ? (size_t)(at - upn) : strlen(upn);
        if (kl_str_ieqn(pw, n, upn, strlen(upn)) || kl_str_ieqn(pw, n, upn, local))
            return kl_err_say(why, whylen, KL_EINVAL,
                              "the password must not be the user principal name or its local "
                              "part");
    }
    if (display_name && kl_str_ieqn(pw, n, display_name, strlen(display_name)))
        return kl_err_say(why, whylen, KL_EINVAL, "the password must not be the display name");
    return 0;
}

/* Hashes pw into the store's form; b64 buffers owned by the caller. */
static int hash_password(const char *pw, size_t n, char hash[KL_ARGON2ID_B64_HASH],
                         char salt[KL_ARGON2ID_B64_SALT], kl_store_password *out)
{
    kl_argon2id h;
    int err = kl_argon2id_hash(pw, n, &h);
    if (!err && (kl_b64_encode(h.hash, sizeof(h.hash), hash, KL_ARGON2ID_B64_HASH) < 0 ||
                 kl_b64_encode(h.salt, sizeof(h.salt), salt, KL_ARGON2ID_B64_SALT) < 0))
        err = KL_EINTERNAL;
    *out = (kl_store_password){.hash = hash, .salt = salt, .t = h.t, .m = h.m, .p = h.p};
    OPENSSL_cleanse(&h, sizeof(h));
    return err;
}

int kl_users_create(kl_store *st, const char *upn, const char *display_name, const char *pw,
                    size_t pw_len, bool force_change, kl_store_user **out, char *why, size_t whylen)
{
    if (out)
        *out = NULL;
    if (!st || !upn || !kl_users_valid_upn(upn, strlen(upn)))
        return kl_err_say(why, whylen, KL_EINVAL,
                          "userPrincipalName must be local@domain (see docs/directory.md)");
    if (!display_name ||
        !kl_directory_valid_name(display_name, strlen(display_name), KL_USERS_MAX_DISPLAY_NAME))
        return kl_err_say(why, whylen, KL_EINVAL,
                          "displayName must be 1-%d characters without control characters",
                          KL_USERS_MAX_DISPLAY_NAME);
    int err = pw ? kl_users_password_policy(pw, pw_len, upn, display_name, why, whylen) : 0;
    if (err)
        return err;
    char hash[KL_ARGON2ID_B64_HASH], salt[KL_ARGON2ID_B64_SALT], oid[KL_UUID_LEN + 1];
    kl_store_password sp;
    if (pw && (err = hash_password(pw, pw_len, hash, salt, &sp)))
        goto out;
    int64_t now = kl_now_unix();
    err = KL_EEXIST;
    for (int attempt = 0; attempt < 2 && err == KL_EEXIST; attempt++) {
        if ((err = kl_uuid_v4(oid)))
            goto out;
        kl_store_user u = {.object_id = oid,
                           .upn = (char *)upn,
                           .display_name = (char *)display_name,
                           .enabled = true,
                           .force_change = force_change,
                           .created_at = now};
        err = kl_store_create_user(st, &u, pw ? &sp : NULL);
    }
    if (!err && out)
        err = kl_store_get_user(st, oid, out);
    if (err == KL_ECONFLICT)
        kl_err_say(why, whylen, err, "another user has this userPrincipalName");
out:
    OPENSSL_cleanse(hash, sizeof(hash));
    OPENSSL_cleanse(salt, sizeof(salt));
    return err;
}

int kl_users_set_password(kl_store *st, const char *object_id, const char *pw, size_t pw_len,
                          bool force_change, char *why, size_t whylen)
{
    if (!st || !object_id || !pw)
        return KL_EINVAL;
    kl_store_user *u = NULL;
    int err = kl_store_get_user(st, object_id, &u);
    if (err)
        return err;
    char hash[KL_ARGON2ID_B64_HASH], salt[KL_ARGON2ID_B64_SALT];
    kl_store_password sp;
    if (!(err = kl_users_password_policy(pw, pw_len, u->upn, u->display_name, why, whylen)) &&
        !(err = hash_password(pw, pw_len, hash, salt, &sp)))
        err = kl_store_update_user(st, u->object_id, NULL, NULL, &sp, &force_change, kl_now_unix());
    OPENSSL_cleanse(hash, sizeof(hash));
    OPENSSL_cleanse(salt, sizeof(salt));
    kl_store_user_free(u);
    return err;
}

bool kl_users_valid_mail_nickname(const char *s, size_t n)
{
    if (!s || n == 0 || n > KL_MAX_MAIL_NICKNAME)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] <= 0x20 || s[i] >= 0x7f || strchr("@()\\[]\";:<>,", s[i]))
            return false;
    return true;
}

int kl_users_create_group(kl_store *st, const char *display_name, const char *mail_nickname,
                          const char *description, kl_store_group **out)
{
    if (out)
        *out = NULL;
    if (!st || !display_name ||
        !kl_directory_valid_name(display_name, strlen(display_name), KL_USERS_MAX_DISPLAY_NAME) ||
        !mail_nickname || !kl_users_valid_mail_nickname(mail_nickname, strlen(mail_nickname)) ||
        (description && strlen(description) > KL_MAX_GROUP_DESCRIPTION))
        return KL_EINVAL;
    char oid[KL_UUID_LEN + 1];
    int err = KL_EEXIST;
    for (int attempt = 0; attempt < 2 && err == KL_EEXIST; attempt++) {
        if ((err = kl_uuid_v4(oid)))
            return err;
        kl_store_group g = {.object_id = oid,
                            .display_name = (char *)display_name,
                            .mail_nickname = (char *)mail_nickname,
                            .description = (char *)description,
                            .created_at = kl_now_unix()};
        err = kl_store_create_group(st, &g);
    }
    if (!err && out)
        err = kl_store_get_group(st, oid, out);
    return err;
}
