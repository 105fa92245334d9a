/* The sign-in of `keyless login`: which keylessd (server URL, tenant, CA file) and the
 * refresh token that gets access tokens from it, in one JSON file only its owner can
 * read, $XDG_CONFIG_HOME/keyless/login.json (else ~/.config/keyless/login.json). The file
 * is replaced atomically (a new file made with O_CREAT|O_EXCL and mode 0600, then
 * renamed over the old one) so that a rotated refresh token is never half written, and
 * refused when others could read or replace it. */
#ifndef KL_CLI_LOGINFILE_H
#define KL_CLI_LOGINFILE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#define KL_CLI_LOGIN_FILE "login.json"
#define KL_CLI_LOGIN_LOCK "login.lock" /* serialises refresh-token rotation between runs */
#define KL_CLI_MAX_SERVER 512          /* bytes of a server URL */
#define KL_CLI_MAX_TENANT 128          /* bytes of a tenant (id or name) */
#define KL_CLI_MAX_REFRESH 8192        /* bytes of a refresh token */
#define KL_CLI_MAX_LOGIN_FILE 16384    /* bytes of the login file */

typedef struct kl_cli_login {
    char server[KL_CLI_MAX_SERVER + 1];         /* https://host:port, no trailing '/' */
    char tenant[KL_CLI_MAX_TENANT + 1];         /* the tenant of the endpoints */
    char ca_file[PATH_MAX];                     /* absolute path, or "" for the system's CAs */
    char refresh_token[KL_CLI_MAX_REFRESH + 1]; /* secret: wiped by kl_cli_login_clear */
} kl_cli_login;

/* The directory of the login file: $XDG_CONFIG_HOME/keyless when xdg_config_home is an
 * absolute path, else $HOME/.config/keyless when home is. 0; KL_ENOTFOUND when neither
 * is (out is ""); KL_ETOOBIG when it does not fit out[outlen]. */
int kl_cli_login_dir(const char *xdg_config_home, const char *home, char *out, size_t outlen);

/* Reads dir/login.json into *l. The file must be a regular file (not a link) owned by
 * the effective uid with no permission for group or others, and hold the four fields
 * (caFile may be empty). Returns 0; KL_ENOTFOUND when there is no file; KL_EPERM when
 * others could read or write it, or it is not ours (why in err); KL_EINVAL when it is
 * not a login file (why in err); KL_EIO on a read error. *l is wiped on failure. */
int kl_cli_login_read(const char *dir, kl_cli_login *l, char *err, size_t errlen);

/* Writes *l to dir/login.json, replacing any earlier one atomically: dir (and its
 * parent, when missing) is made with mode 0700; a directory that exists must be ours
 * and not writable by others (group or others' read and search are taken away); the
 * new file is created O_CREAT|O_EXCL with mode 0600 beside it, written, synced and
 * renamed over the old one. 0; KL_EPERM (why in err); KL_EIO (why in err). */
int kl_cli_login_write(const char *dir, const kl_cli_login *l, char *err, size_t errlen);

/* Deletes dir/login.json. 0 (also when there was none), or KL_EIO (why in err). */
int kl_cli_login_remove(const char *dir, char *err, size_t errlen);

/* Waits for the exclusive lock on dir/login.lock (made with mode 0600 when missing), so
 * that two commands run at once never redeem the same refresh token: with rotation, the
 * second redemption would look like a stolen token's reuse and end the sign-in. The
 * holder re-reads the login file under the lock. Returns the descriptor that holds the
 * lock (release it with kl_cli_login_unlock), or KL_EIO (why in err). */
int kl_cli_login_lock(const char *dir, char *err, size_t errlen);
void kl_cli_login_unlock(int fd);

/* Wipes *l (the refresh token with it). */
void kl_cli_login_clear(kl_cli_login *l);

#endif
