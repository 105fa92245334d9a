/* Password checks with lockout (see lockout.h). The store holds the counts so every
 * node agrees; the numbers live in common/limits.h. */
#include "directory/lockout.h"

#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "crypto/argon2id.h"

static const kl_store_lockout_rule rule = {.window_s = KL_SIGNIN_FAILURE_WINDOW_S,
                                           .threshold = KL_SIGNIN_LOCKOUT_THRESHOLD,
                                           .lock_s = KL_SIGNIN_LOCKOUT_S};

uint32_t kl_lockout_delay_ms(int64_t failures)
{
    if (failures <= KL_SIGNIN_SLOWDOWN_AFTER)
        return 0;
    uint64_t d = KL_SIGNIN_SLOWDOWN_MS;
    for (int64_t i = KL_SIGNIN_SLOWDOWN_AFTER + 1; i < failures && d < KL_SIGNIN_MAX_SLOWDOWN_MS;
         i++)
        d *= 2;
    return d > KL_SIGNIN_MAX_SLOWDOWN_MS ? KL_SIGNIN_MAX_SLOWDOWN_MS : (uint32_t)d;
}

const char *kl_lockout_result_name(kl_lockout_result r)
{
    switch (r) {
    case KL_LOCKOUT_OK: return "ok";
    case KL_LOCKOUT_WRONG: return "wrong";
    case KL_LOCKOUT_LOCKED: return "locked";
    case KL_LOCKOUT_DISABLED: return "disabled";
    }
    return "?";
}

int kl_lockout_verify_password(kl_store *st, const char *upn, const char *pw, size_t pw_len,
                               int64_t now, kl_lockout_result *result, uint32_t *delay_ms,
                               kl_lockout_user *user)
{
    if (!st || !upn || !pw || !result)
        return KL_EINVAL;
    *result = KL_LOCKOUT_WRONG;
    if (delay_ms)
        *delay_ms = 0;
    /* A name longer than any user's cannot exist; it is still hashed (below) and
     * answered as wrong, but not counted, so the table holds only plausible names. */
    bool countable = strnlen(upn, KL_MAX_UPN + 1) <= KL_MAX_UPN;
    kl_store_signin_failures f = {0};
    kl_store_user_secret *u = NULL;
    kl_argon2id stored, *sp = NULL;
    int err = countable ? kl_store_get_signin_failures(st, upn, &f) : 0;
    if (err)
        return err;
    err = countable ? kl_store_get_user_secret(st, upn, &u) : KL_ENOTFOUND;
    if (err && err != KL_ENOTFOUND)
        return err;
    if (u && u->pw.hash &&
        kl_argon2id_decode(u->pw.hash, u->pw.salt, u->pw.t, u->pw.m, u->pw.p, &stored) == 0)
        sp = &stored;
    /* Always hashed: a missing user (sp NULL) is hashed against the dummy. */
    bool match = kl_argon2id_verify(pw, pw_len, sp);
    bool locked = f.locked_until > now;
    if (locked) {
        *result = KL_LOCKOUT_LOCKED;
    } else if (match) {
        *result = u->enabled ? KL_LOCKOUT_OK : KL_LOCKOUT_DISABLED;
        if (f.failures > 0)
            err = kl_store_clear_signin_failures(st, upn);
        if (!err && user && *result == KL_LOCKOUT_OK) {
            snprintf(user->object_id, sizeof(user->object_id), "%s", u->object_id);
            user->force_change = u->force_change;
        }
    } else if (countable) {
        kl_store_signin_failures after = {0};
        err = kl_store_record_signin_failure(st, upn, now, &rule, &after);
        if (!err) {
            *result = after.locked_until > now ? KL_LOCKOUT_LOCKED : KL_LOCKOUT_WRONG;
            if (delay_ms)
                *delay_ms = kl_lockout_delay_ms(after.failures);
        }
    }
    memset(&stored, 0, sizeof(stored));
    kl_store_user_secret_free(u);
    return err;
}
