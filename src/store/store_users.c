/* The users of the directory (see store.h): a principal of type User with its sign-in
 * name and password hash, and the per-name count of failed password sign-ins that
 * every node reads before it checks a password. */
#include <openssl/crypto.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/ids.h"
#include "common/limits.h"
#include "common/err.h"
#include "common/util.h"
#include "store/query.h"
#include "store/store.h"

#define COL KL_MAP_COL

static const kl_col user_cols[] = {
    COL(TEXT, kl_store_user, object_id),    COL(TEXT, kl_store_user, upn),
    COL(TEXT, kl_store_user, display_name), COL(BOOL, kl_store_user, enabled),
    COL(BOOL, kl_store_user, force_change), COL(BOOL, kl_store_user, has_password),
    COL(I64, kl_store_user, created_at),    COL(I64, kl_store_user, password_changed_at),
};
static const kl_rowmap user_map = KL_ROWMAP(kl_store_user, user_cols);

static const kl_col secret_cols[] = {
    COL(TEXT, kl_store_user_secret, object_id),    COL(BOOL, kl_store_user_secret, enabled),
    COL(BOOL, kl_store_user_secret, force_change), COL(SECRET, kl_store_user_secret, pw.hash),
    COL(SECRET, kl_store_user_secret, pw.salt),    COL(I64, kl_store_user_secret, pw.t),
    COL(I64, kl_store_user_secret, pw.m),          COL(I64, kl_store_user_secret, pw.p),
};
static const kl_rowmap secret_map = KL_ROWMAP(kl_store_user_secret, secret_cols);

static const kl_col failure_cols[] = {
    COL(I64, kl_store_signin_failures, failures),
    COL(I64, kl_store_signin_failures, first_at),
    COL(I64, kl_store_signin_failures, last_at),
    COL(I64, kl_store_signin_failures, locked_until),
};
static const kl_rowmap failure_map = KL_ROWMAP(kl_store_signin_failures, failure_cols);

#define USER_COLS                                                                                  \
    "SELECT p.object_id, u.upn, p.display_name, p.account_enabled, u.force_change, "               \
    "CASE WHEN u.pw_hash IS NULL THEN 0 ELSE 1 END, p.created_at, u.password_changed_at "          \
    "FROM users u JOIN principals p ON p.pk = u.principal_pk "

static bool valid_password(const kl_store_password *pw)
{
    return !pw || !pw->hash ||
           (pw->salt && pw->t > 0 && pw->m > 0 && pw->p > 0 && strlen(pw->hash) < 256 &&
            strlen(pw->salt) < 256);
}

int kl_store_create_user(kl_store *st, const kl_store_user *u, const kl_store_password *pw)
{
    if (!st || !u || !u->object_id || !kl_uuid_valid(u->object_id, strlen(u->object_id)) ||
        !kl_q_text_ok(u->upn, KL_MAX_UPN, false) ||
        !kl_q_text_ok(u->display_name, KL_STORE_MAX_DISPLAY_NAME, false) || !valid_password(pw))
        return KL_EINVAL;
    char *oid = kl_q_lower(u->object_id);
    char *lupn = kl_q_lower(u->upn);
    int64_t pk = 0, dummy = 0;
    bool has_pw = pw && pw->hash;
    int err = (oid && lupn) ? 0 : KL_ENOMEM;
    if (err || (err = kl_q_begin(st, true)))
        goto out;
    err = kl_q_int(st, "SELECT 1 FROM users WHERE upn_lower = ?1", KL_ARGS(kl_vt(lupn)), &dummy);
    if (err == 0)
        err = KL_ECONFLICT;
    else if (err == KL_ENOTFOUND) {
        err = kl_q_int(
            st,
            "INSERT INTO principals (object_id, type, display_name, app_id, "
            "application_pk, account_enabled, created_at) "
            "VALUES (?1, '" KL_PRINCIPAL_TYPE_USER "', ?2, NULL, NULL, ?3, ?4) RETURNING pk",
            KL_ARGS(kl_vt(oid), kl_vt(u->display_name), kl_vi(u->enabled), kl_vi(u->created_at)),
            &pk);
        if (err == KL_ECONFLICT)
            err = KL_EEXIST;
    }
    if (!err)
        err = kl_q_exec(st,
                        "INSERT INTO users (principal_pk, upn, upn_lower, pw_hash, pw_salt, pw_t, "
                        "pw_m, pw_p, force_change, password_changed_at) "
                        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                        KL_ARGS(kl_vi(pk), kl_vt(u->upn), kl_vt(lupn),
                                kl_vt(has_pw ? pw->hash : NULL), kl_vt(has_pw ? pw->salt : NULL),
                                kl_vi(has_pw ? pw->t : 0), kl_vi(has_pw ? pw->m : 0),
                                kl_vi(has_pw ? pw->p : 0), kl_vi(u->force_change),
                                kl_vi(has_pw ? u->created_at : 0)),
                        NULL);
    err = kl_q_end(st, err);
out:
    free(oid);
    free(lupn);
    return err;
}

int kl_store_get_user(kl_store *st, const char *id_or_upn, kl_store_user **out)
{
    if (!st || !id_or_upn || !out)
        return KL_EINVAL;
    return kl_q_one_by_lower(st, USER_COLS "WHERE p.object_id = ?1 OR u.upn_lower = ?1", id_or_upn,
                             &user_map, (void **)out);
}

int kl_store_list_users(kl_store *st, kl_store_user ***out, size_t *n)
{
    if (!st || !out || !n)
        return KL_EINVAL;
    return kl_q_list_locked(st, USER_COLS "ORDER BY u.upn_lower", KL_NOARGS, &user_map,
                            (void ***)out, n);
}

int kl_store_update_user(kl_store *st, const char *object_id, const char *display_name,
                         const bool *enabled, const kl_store_password *pw, const bool *force_change,
                         int64_t now)
{
    if (!st || !object_id ||
        (display_name && !kl_q_text_ok(display_name, KL_STORE_MAX_DISPLAY_NAME, false)) ||
        (pw && (!pw->hash || !valid_password(pw))))
        return KL_EINVAL;
    char *oid = kl_q_lower(object_id);
    if (!oid)
        return KL_ENOMEM;
    int64_t pk = 0, before = 0;
    int err = kl_q_begin(st, true);
    if (err)
        goto out;
    err = kl_q_int(st,
                   "SELECT u.principal_pk FROM users u JOIN principals p ON p.pk = u.principal_pk "
                   "WHERE p.object_id = ?1",
                   KL_ARGS(kl_vt(oid)), &pk);
    if (!err)
        err = kl_store_root_owner_count(st, &before);
    if (!err && display_name)
        err = kl_q_exec(st, "UPDATE principals SET display_name = ?1 WHERE pk = ?2",
                        KL_ARGS(kl_vt(display_name), kl_vi(pk)), NULL);
    if (!err && enabled)
        err = kl_q_exec(st, "UPDATE principals SET account_enabled = ?1 WHERE pk = ?2",
                        KL_ARGS(kl_vi(*enabled), kl_vi(pk)), NULL);
    if (!err && pw)
        err = kl_q_exec(st,
                        "UPDATE users SET pw_hash = ?1, pw_salt = ?2, pw_t = ?3, pw_m = ?4, "
                        "pw_p = ?5, password_changed_at = ?6 WHERE principal_pk = ?7",
                        KL_ARGS(kl_vt(pw->hash), kl_vt(pw->salt), kl_vi(pw->t), kl_vi(pw->m),
                                kl_vi(pw->p), kl_vi(now), kl_vi(pk)),
                        NULL);
    /* A new password ends every sign-in made with the old one (security.md T15): the
     * user's refresh tokens stop working on every node. */
    if (!err && pw)
        err = kl_q_exec(st, "UPDATE refresh_families SET revoked = 1 WHERE user_oid = ?1",
                        KL_ARGS(kl_vt(oid)), NULL);
    if (!err && force_change)
        err = kl_q_exec(st, "UPDATE users SET force_change = ?1 WHERE principal_pk = ?2",
                        KL_ARGS(kl_vi(*force_change), kl_vi(pk)), NULL);
    if (!err)
        err = kl_store_check_root_owner(st, before);
    err = kl_q_end(st, err);
out:
    free(oid);
    return err;
}

int kl_store_get_user_secret(kl_store *st, const char *upn, kl_store_user_secret **out)
{
    if (!st || !upn || !out)
        return KL_EINVAL;
    return kl_q_one_by_lower(st,
                             "SELECT p.object_id, p.account_enabled, u.force_change, u.pw_hash, "
                             "u.pw_salt, u.pw_t, u.pw_m, u.pw_p FROM users u JOIN principals p "
                             "ON p.pk = u.principal_pk WHERE u.upn_lower = ?1",
                             upn, &secret_map, (void **)out);
}

void kl_store_user_free(kl_store_user *u)
{
    kl_map_free(&user_map, u);
}

void kl_store_users_free(kl_store_user **u, size_t n)
{
    kl_map_free_all(&user_map, (void **)u, n);
}

void kl_store_user_secret_free(kl_store_user_secret *s)
{
    kl_map_free(&secret_map, s);
}

/* ---------------------------------------------------------------- failed sign-ins */

int kl_store_get_signin_failures(kl_store *st, const char *upn, kl_store_signin_failures *out)
{
    if (!st || !upn || !out)
        return KL_EINVAL;
    memset(out, 0, sizeof(*out));
    char *k = kl_q_lower(upn);
    if (!k)
        return KL_ENOMEM;
    kl_store_signin_failures *row = NULL;
    int err = kl_q_one_locked(st,
                              "SELECT failures, first_at, last_at, locked_until FROM "
                              "signin_failures WHERE upn_lower = ?1",
                              KL_ARGS(kl_vt(k)), &failure_map, (void **)&row);
    if (err == 0)
        *out = *row;
    else if (err == KL_ENOTFOUND)
        err = 0;
    kl_map_free(&failure_map, row);
    free(k);
    return err;
}

int kl_store_record_signin_failure(kl_store *st, const char *upn, int64_t now,
                                   const kl_store_lockout_rule *rule,
                                   kl_store_signin_failures *after)
{
    if (!st || !upn || !rule || rule->window_s <= 0 || rule->threshold <= 0 || rule->lock_s <= 0 ||
        strnlen(upn, KL_MAX_UPN + 1) > KL_MAX_UPN)
        return KL_EINVAL;
    char *k = kl_q_lower(upn);
    if (!k)
        return KL_ENOMEM;
    kl_store_signin_failures *row = NULL, f = {0};
    int err = kl_q_begin_unannounced(st);
    if (err)
        goto out;
    err = kl_q_one(st,
                   "SELECT failures, first_at, last_at, locked_until FROM signin_failures "
                   "WHERE upn_lower = ?1",
                   KL_ARGS(kl_vt(k)), &failure_map, (void **)&row);
    if (err == 0)
        f = *row;
    else if (err == KL_ENOTFOUND)
        err = 0;
    if (!err) {
        bool lock_over = f.locked_until != 0 && f.locked_until <= now;
        if (f.failures == 0 || lock_over || now - f.first_at >= rule->window_s)
            f = (kl_store_signin_failures){.failures = 0, .first_at = now};
        f.failures++;
        f.last_at = now;
        if (f.failures >= rule->threshold && f.locked_until <= now)
            f.locked_until = now + rule->lock_s;
        err = kl_q_exec(st,
                        "INSERT INTO signin_failures (upn_lower, failures, first_at, last_at, "
                        "locked_until) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (upn_lower) DO "
                        "UPDATE SET failures = excluded.failures, first_at = excluded.first_at, "
                        "last_at = excluded.last_at, locked_until = excluded.locked_until",
                        KL_ARGS(kl_vt(k), kl_vi(f.failures), kl_vi(f.first_at), kl_vi(f.last_at),
                                kl_vi(f.locked_until)),
                        NULL);
    }
    /* Rows nobody has failed on for a window and a lock can tell nothing any more. */
    if (!err)
        err = kl_q_exec(st, "DELETE FROM signin_failures WHERE last_at < ?1 AND locked_until < ?2",
                        KL_ARGS(kl_vi(now - rule->window_s - rule->lock_s), kl_vi(now)), NULL);
    err = kl_q_end_unannounced(st, err);
    if (!err && after)
        *after = f;
out:
    kl_map_free(&failure_map, row);
    free(k);
    return err;
}

int kl_store_clear_signin_failures(kl_store *st, const char *upn)
{
    if (!st || !upn)
        return KL_EINVAL;
    char *k = kl_q_lower(upn);
    if (!k)
        return KL_ENOMEM;
    int err = kl_q_begin_unannounced(st);
    if (!err)
        err = kl_q_end_unannounced(st,
                                   kl_q_exec(st, "DELETE FROM signin_failures WHERE upn_lower = ?1",
                                             KL_ARGS(kl_vt(k)), NULL));
    free(k);
    return err;
}
