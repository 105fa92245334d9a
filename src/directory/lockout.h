/* Password sign-in for users: the one place a password is checked, with the lockout
 * that stops guessing (security.md T9). The sign-in flows (the password grant, the
 * sign-in page) call kl_lockout_verify_password and turn its answer into their own
 * protocol's error; this module never answers a client itself.
 *
 * Contract of kl_lockout_verify_password:
 *  - It does the same Argon2id work whether or not the user exists, has a password, is
 *    disabled or is locked, so its duration says nothing about the account.
 *  - Failures are counted per user principal name (lower-cased) in the store, existing
 *    name or not, so every node sees the same count and a name that does not exist
 *    locks exactly as one that does.
 *  - KL_LOCKOUT_OK is the only answer that lets a sign-in proceed. The others must reach
 *    the client as one generic refusal (same code and text for WRONG and for a user
 *    that does not exist); LOCKED may say "locked, try later" since it is answered
 *    alike for every name; DISABLED is only ever returned with the right password.
 *  - *delay_ms is how long the caller should hold its answer to a failure (0 until
 *    KL_SIGNIN_SLOWDOWN_AFTER failures, then doubling up to KL_SIGNIN_MAX_SLOWDOWN_MS).
 *    The caller waits without blocking a worker (a timer), never by sleeping.
 *  - The password is only read; it is never copied, logged or stored. */
#ifndef KL_DIRECTORY_LOCKOUT_H
#define KL_DIRECTORY_LOCKOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

typedef enum kl_lockout_result {
    KL_LOCKOUT_OK = 0,  /* the right password of an enabled user, not locked */
    KL_LOCKOUT_WRONG,   /* wrong password, no such user, or no password set */
    KL_LOCKOUT_LOCKED,  /* too many failures: refused until the lock ends */
    KL_LOCKOUT_DISABLED /* the right password of a disabled user */
} kl_lockout_result;

/* What a successful check tells the caller (object id of the user; whether it must
 * change its password now). Filled only on KL_LOCKOUT_OK. */
typedef struct kl_lockout_user {
    char object_id[40];
    bool force_change;
} kl_lockout_user;

/* Checks pw[0..pw_len) for the user called upn at time now (unix seconds) as the
 * contract above says. Returns 0 with the answer in *result (and *delay_ms, *user when
 * not NULL), or a store error (KL_EUNAVAIL, KL_EIO: the caller answers 503/500, never
 * "wrong password"), KL_EINVAL (NULL arguments). */
int kl_lockout_verify_password(kl_store *st, const char *upn, const char *pw, size_t pw_len,
                               int64_t now, kl_lockout_result *result, uint32_t *delay_ms,
                               kl_lockout_user *user);

/* The wait after the n-th failure in a window (see the contract). */
uint32_t kl_lockout_delay_ms(int64_t failures);

/* "ok", "wrong", "locked", "disabled". */
const char *kl_lockout_result_name(kl_lockout_result r);

#endif
