/* Directory rules over the store's rows (see directory.h). */
#include "directory/directory.h"

#include <string.h>

#include "common/err.h"
#include "common/ids.h"
#include "common/util.h"

static const char *const type_names[] = {KL_PRINCIPAL_TYPE_SP, KL_PRINCIPAL_TYPE_MI,
                                         KL_PRINCIPAL_TYPE_USER, KL_PRINCIPAL_TYPE_GROUP};

const char *kl_directory_principal_type_name(kl_principal_type t)
{
    if ((unsigned)t >= sizeof(type_names) / sizeof(type_names[0]))
        return "?";
    return type_names[t];
}

int kl_directory_principal_type_parse(const char *s, kl_principal_type *out)
{
    for (size_t i = 0; s && i < sizeof(type_names) / sizeof(type_names[0]); i++) {
        if (strcmp(s, type_names[i]) == 0) {
            *out = (kl_principal_type)i;
            return 0;
        }
    }
    return KL_EINVAL;
}

const char *kl_directory_principal_type_arm(kl_principal_type t)
{
    return t == KL_PRINCIPAL_MANAGED_IDENTITY ? KL_PRINCIPAL_TYPE_SP
                                              : kl_directory_principal_type_name(t);
}

/* Length of the UTF-8 sequence at s[0..n), or 0 if it is not well formed (overlong
 * forms, surrogates and values above U+10FFFF included). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned int cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

bool kl_directory_valid_app_name(const char *s, size_t n)
{
    return kl_directory_valid_name(s, n, KL_DIRECTORY_MAX_APP_NAME);
}

bool kl_directory_valid_name(const char *s, size_t n, size_t max_chars)
{
    if (!s || n == 0 || n > 4 * max_chars)
        return false;
    const unsigned char *u = (const unsigned char *)s;
    size_t chars = 0;
    for (size_t i = 0; i < n;) {
        if (u[i] < 0x20 || u[i] == 0x7f)
            return false;
        size_t l = utf8_seq(u + i, n - i);
        if (l == 0)
            return false;
        i += l;
        if (++chars > max_chars)
            return false;
    }
    return true;
}

static int create_application(kl_store *st, const char *display_name, bool with_sp,
                              kl_store_application **out)
{
    if (out)
        *out = NULL;
    if (!st || !display_name || !kl_directory_valid_app_name(display_name, strlen(display_name)))
        return KL_EINVAL;
    char oid[KL_UUID_LEN + 1], app_id[KL_UUID_LEN + 1], sp[KL_UUID_LEN + 1];
    int err = KL_EEXIST;
    /* A GUID collision is not going to happen; one retry keeps the code honest if the
     * random source ever repeats. */
    for (int attempt = 0; attempt < 2 && err == KL_EEXIST; attempt++) {
        if ((err = kl_uuid_v4(oid)) || (err = kl_uuid_v4(app_id)) || (err = kl_uuid_v4(sp)))
            return err;
        kl_store_application a = {.object_id = oid,
                                  .app_id = app_id,
                                  .display_name = (char *)display_name,
                                  .sp_object_id = with_sp ? sp : NULL,
                                  .enabled = true,
                                  .created_at = kl_now_unix()};
        err = kl_store_create_application(st, &a);
    }
    if (!err && out)
        err = kl_store_get_application(st, oid, out);
    return err;
}

int kl_directory_create_application(kl_store *st, const char *display_name,
                                    kl_store_application **out)
{
    return create_application(st, display_name, true, out);
}

int kl_directory_register_application(kl_store *st, const char *display_name,
                                      kl_store_application **out)
{
    return create_application(st, display_name, false, out);
}

int kl_directory_create_service_principal(kl_store *st, const char *id_or_app_id,
                                          kl_store_principal **out)
{
    if (out)
        *out = NULL;
    if (!st || !id_or_app_id)
        return KL_EINVAL;
    char sp[KL_UUID_LEN + 1];
    int err = KL_EEXIST;
    for (int attempt = 0; attempt < 2 && err == KL_EEXIST; attempt++) {
        if ((err = kl_uuid_v4(sp)))
            return err;
        err = kl_store_create_service_principal(st, id_or_app_id, sp, true, kl_now_unix());
    }
    if (!err && out)
        err = kl_store_get_principal(st, sp, out);
    return err;
}

int kl_directory_find_application(kl_store *st, const char *key, kl_store_application **out)
{
    if (!st || !key || !out)
        return KL_EINVAL;
    *out = NULL;
    int err = KL_ENOTFOUND;
    if (kl_uuid_valid(key, strlen(key)))
        err = kl_store_get_application(st, key, out);
    if (err == KL_ENOTFOUND)
        err = kl_store_get_application_by_name(st, key, out);
    return err;
}
