/* The CLI as a signed-in user of a remote keylessd: access tokens redeemed from the
 * login file's refresh token, one per resource the command calls (ARM, Graph), each
 * redemption rotating the refresh token, which is saved before its access token is used
 * (so a crash never leaves the file holding a spent token). See client.h. */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/client.h"
#include "cli/oauth.h"
#include "cli/output.h"
#include "common/err.h"
#include "common/util.h"

static size_t slot_of(const char *resource)
{
    return strcmp(resource, KL_CLI_GRAPH_RESOURCE) == 0 ? 1 : 0;
}

static void wipe_str(char **s)
{
    if (*s) {
        OPENSSL_cleanse(*s, strlen(*s));
        free(*s);
        *s = NULL;
    }
}

void kl_cli_remote_free(kl_cli_remote *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < sizeof(r->access) / sizeof(r->access[0]); i++)
        wipe_str(&r->access[i]);
    kl_cli_login_clear(&r->login);
}

int kl_cli_remote_bearer(kl_cli_ctx *c, const char *target, const char **bearer)
{
    kl_cli_remote *r = c->remote;
    const char *resource = kl_cli_oauth_resource_for(target);
    size_t slot = slot_of(resource);
    char scope[128], err[1024];
    kl_buf form;
    json_t *answer = NULL;
    long status;
    int code = KL_CLI_EXIT_REFUSED, lock = -1;
    kl_cli_login *now = NULL;

    *bearer = NULL;
    if (r->access[slot]) {
        *bearer = r->access[slot];
        return KL_CLI_EXIT_OK;
    }
    /* Another command may have rotated the token since this one read the file: take
     * the lock, then the file's token as it is now. */
    kl_buf_init_secret(&form, KL_CLI_MAX_FORM);
    if ((lock = kl_cli_login_lock(r->dir, err, sizeof(err))) < 0) {
        kl_cli_errorf(c, "%s", err);
        goto out;
    }
    if (!(now = OPENSSL_zalloc(sizeof(*now)))) {
        kl_cli_errorf(c, "out of memory");
        goto out;
    }
    int rc = kl_cli_login_read(r->dir, now, err, sizeof(err));
    if (rc == KL_ENOTFOUND) {
        kl_cli_errorf(c, "signed out (by another command) meanwhile; sign in again with "
                         "'keyless login'");
        goto out;
    }
    if (rc < 0) {
        kl_cli_errorf(c, "%s", err);
        goto out;
    }
    if (strcmp(now->server, r->login.server) != 0) {
        kl_cli_errorf(c,
                      "signed in to %s (by another command) meanwhile; run the command "
                      "again",
                      now->server);
        goto out;
    }
    memcpy(r->login.refresh_token, now->refresh_token, sizeof(r->login.refresh_token));
    /* A refresh token redeems for any resource the user may have a token for, as
     * Entra's do; the scope names the one this request needs. */
    snprintf(scope, sizeof(scope), "%s/.default offline_access", resource);
    if (kl_cli_oauth_form_add(&form, "grant_type", "refresh_token") < 0 ||
        kl_cli_oauth_form_add(&form, "client_id", KL_CLI_CLIENT_ID) < 0 ||
        kl_cli_oauth_form_add(&form, "refresh_token", r->login.refresh_token) < 0 ||
        kl_cli_oauth_form_add(&form, "scope", scope) < 0 ||
        kl_cli_oauth_form_add(&form, "client_info", "1") < 0) {
        kl_cli_errorf(c, "cannot build the token request");
        goto out;
    }
    rc = kl_cli_oauth_post(&c->http, r->login.tenant, "token", &form, &status, &answer, err,
                           sizeof(err));
    if (rc < 0) {
        kl_cli_errorf(c, "%s", err);
        code = rc == KL_EIO ? KL_CLI_EXIT_UNREACHABLE : KL_CLI_EXIT_REFUSED;
        goto out;
    }
    const char *access = json_string_value(json_object_get(answer, "access_token"));
    const char *next = json_string_value(json_object_get(answer, "refresh_token"));
    if (status != 200 || !access || json_object_get(answer, "error")) {
        kl_cli_oauth_error_text(status, answer, err, sizeof(err));
        const char *e = json_string_value(json_object_get(answer, "error"));
        if (e && strcmp(e, "invalid_grant") == 0)
            kl_cli_errorf(c,
                          "the sign-in to %s has expired or was revoked (%s); sign in again "
                          "with 'keyless login'",
                          r->login.server, err);
        else
            kl_cli_errorf(c, "cannot get a token from %s: %s", r->login.server, err);
        goto out;
    }
    if (next) {
        /* Rotation: the token just sent is spent. Save its successor first. */
        if (strlen(next) >= sizeof(r->login.refresh_token)) {
            kl_cli_errorf(c, "keylessd issued a refresh token longer than %d bytes",
                          KL_CLI_MAX_REFRESH);
            goto out;
        }
        memcpy(r->login.refresh_token, next, strlen(next) + 1);
        if (kl_cli_login_write(r->dir, &r->login, err, sizeof(err)) < 0) {
            kl_cli_errorf(c, "%s; the sign-in is lost, sign in again with 'keyless login'", err);
            goto out;
        }
    }
    if (!(r->access[slot] = strdup(access))) {
        kl_cli_errorf(c, "out of memory");
        goto out;
    }
    *bearer = r->access[slot];
    code = KL_CLI_EXIT_OK;
out:
    kl_cli_login_unlock(lock); /* after the write: the next holder reads the new token */
    if (now) {
        kl_cli_login_clear(now);
        OPENSSL_free(now);
    }
    kl_buf_cleanse_free(&form);
    json_decref(answer); /* the CLI's jansson allocator wipes the tokens it held */
    return code;
}

int kl_cli_remote_choose(const kl_cli_args *a, bool data_dir_env, const char *xdg_config_home,
                         const char *home, kl_cli_remote *r, bool *use_remote, char *err,
                         size_t errlen)
{
    char why[1024];
    *use_remote = false;
    if (errlen > 0)
        err[0] = '\0';
    if (a->cmd == KL_CLI_CMD_LOGIN || a->cmd == KL_CLI_CMD_LOGOUT ||
        a->cmd == KL_CLI_CMD_STORE_MIGRATE)
        return KL_CLI_EXIT_OK;
    if ((a->data_dir || data_dir_env) && !a->server)
        return KL_CLI_EXIT_OK;
    int rc = kl_cli_login_dir(xdg_config_home, home, r->dir, sizeof(r->dir));
    if (rc == 0)
        rc = kl_cli_login_read(r->dir, &r->login, why, sizeof(why));
    else
        rc = KL_ENOTFOUND; /* no place for a login file: there is none */
    if (rc == KL_ENOTFOUND) {
        if (!a->server)
            return KL_CLI_EXIT_OK; /* not signed in: the admin socket */
        snprintf(err, errlen, "not signed in to %s; run: keyless login --server %s", a->server,
                 a->server);
        return KL_CLI_EXIT_USAGE;
    }
    if (rc < 0) {
        snprintf(err, errlen, "%s", why);
        return KL_CLI_EXIT_REFUSED;
    }
    if (a->server) {
        size_t n = strlen(a->server);
        while (n > strlen("https://") && a->server[n - 1] == '/')
            n--;
        if (strlen(r->login.server) != n || !kl_str_ieqn(r->login.server, n, a->server, n)) {
            snprintf(err, errlen, "signed in to %s, not %s; run: keyless login --server %s",
                     r->login.server, a->server, a->server);
            kl_cli_login_clear(&r->login);
            return KL_CLI_EXIT_USAGE;
        }
    }
    *use_remote = true;
    return KL_CLI_EXIT_OK;
}
