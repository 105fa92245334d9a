/* Users and groups of the directory: the rules for their names and passwords, and
 * creating them with fresh object ids. Passwords are hashed here (Argon2id,
 * crypto/argon2id.h) and only the hash reaches the store. */
#ifndef KL_DIRECTORY_USERS_H
#define KL_DIRECTORY_USERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define KL_USERS_MAX_DISPLAY_NAME 256 /* characters (Graph's) */

/* A user principal name: local@domain, at most KL_MAX_UPN bytes. The local part is 1..
 * KL_MAX_UPN_LOCAL of letters, digits and . - _ ' ! # ^ ~ +, neither starting nor ending
 * with '.' and without "..". The domain is two or more DNS labels (letters, digits,
 * '-', not at either end of a label) separated by dots. Compared without regard to case. */
bool kl_users_valid_upn(const char *s, size_t n);

/* The password policy: KL_MIN_PASSWORD..KL_MAX_PASSWORD bytes, no NUL, and not equal
 * (ignoring case) to the user principal name, its local part or the display name (upn
 * and display_name may be NULL: not compared). 0, or KL_EINVAL with the rule broken in
 * why[whylen] (never the password). */
int kl_users_password_policy(const char *pw, size_t n, const char *upn, const char *display_name,
                             char *why, size_t whylen);

/* Creates an enabled user with a fresh object id. pw (may be NULL: no password yet)
 * must pass the policy; it is hashed with a fresh salt. force_change sets
 * forceChangePasswordNextSignIn. *out (may be NULL) receives the stored user (free with
 * kl_store_user_free). KL_EINVAL (bad name or password: why says which), KL_ECONFLICT
 * (the name is taken), KL_ECRYPTO, a store error. */
int kl_users_create(kl_store *st, const char *upn, const char *display_name, const char *pw,
                    size_t pw_len, bool force_change, kl_store_user **out, char *why,
                    size_t whylen);

/* An administrator's reset: the user's password becomes pw (checked against the
 * policy, hashed with a fresh salt) and forceChangePasswordNextSignIn force_change.
 * KL_ENOTFOUND, KL_EINVAL (why says which rule), KL_ECRYPTO, a store error. */
int kl_users_set_password(kl_store *st, const char *object_id, const char *pw, size_t pw_len,
                          bool force_change, char *why, size_t whylen);

/* A security group with a fresh object id; mail_nickname 1..KL_MAX_MAIL_NICKNAME of
 * printable ASCII except @ ( ) \ [ ] " ; : < > , and space (Graph's rule); description
 * may be NULL. *out (may be NULL) receives it. KL_EINVAL, a store error. */
int kl_users_create_group(kl_store *st, const char *display_name, const char *mail_nickname,
                          const char *description, kl_store_group **out);
bool kl_users_valid_mail_nickname(const char *s, size_t n);

#endif
