/* keyless login / logout: signing in to a remote keylessd as a user, the way `az login`
 * does it — a device code by default (the code is typed on a page of keylessd's, from
 * any browser), or with --browser the authorization-code flow with PKCE and a loopback
 * redirect the CLI serves for one sign-in. The refresh token goes to the login file
 * (loginfile.h); every later command redeems it (remote.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/oauth.h"
#include "cli/output.h"
#include "common/err.h"
#include "common/util.h"

extern char **environ;

#define DEFAULT_SERVER "https://127.0.0.1:8443" /* keylessd's default --listen */
/* The name keylessd's one tenant answers to; the id the token names is what is kept. */
#define DEFAULT_TENANT "keyless"
#define BROWSER_WAIT_S 300      /* for the person to sign in in the browser */
#define BROWSER_MAX_REQUESTS 16 /* favicon and the like, before giving up */
#define MAX_CODE 4096           /* bytes of an authorization code */

/* The login file's directory from the environment, or an exit code after a line. */
static int login_dir(kl_cli_ctx *c, char *dir, size_t dirlen)
{
    int rc = kl_cli_login_dir(getenv("XDG_CONFIG_HOME"), getenv("HOME"), dir, dirlen);
    if (rc == KL_ENOTFOUND) {
        kl_cli_errorf(c, "neither XDG_CONFIG_HOME nor HOME is an absolute path: there is no "
                         "place for the login file");
        return KL_CLI_EXIT_USAGE;
    }
    if (rc < 0) {
        kl_cli_errorf(c, "the login file's path is too long");
        return KL_CLI_EXIT_USAGE;
    }
    return KL_CLI_EXIT_OK;
}

/* Sleeps s seconds (a device-code poll interval), resuming after signals. */
static void sleep_s(int64_t s)
{
    struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = 0};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* The tenant id a token answer names (client_info's utid), into out; false if none. */
static bool tenant_of(const json_t *answer, char *out, size_t outlen)
{
    const char *ci = json_string_value(json_object_get(answer, "client_info"));
    unsigned char raw[1024];
    bool ok = false;
    if (!ci)
        return false;
    int n = kl_b64url_decode(ci, strlen(ci), raw, sizeof(raw));
    if (n <= 0)
        return false;
    json_t *j = json_loadb((const char *)raw, (size_t)n, 0, NULL);
    const char *utid = json_string_value(json_object_get(j, "utid"));
    if (utid && kl_uuid_valid(utid, strlen(utid)) && strlen(utid) < outlen) {
        memcpy(out, utid, strlen(utid) + 1);
        ok = true;
    }
    json_decref(j);
    return ok;
}

/* Who signed in, for the message: the id token's preferred_username or upn (shown, not
 * trusted: nothing is decided on it). */
static void user_of(const json_t *answer, char *out, size_t outlen)
{
    const char *idt = json_string_value(json_object_get(answer, "id_token"));
    unsigned char raw[4096];
    snprintf(out, outlen, "?");
    const char *dot1 = idt ? strchr(idt, '.') : NULL;
    const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    if (!dot2)
        return;
    int n = kl_b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), raw, sizeof(raw));
    if (n <= 0)
        return;
    json_t *j = json_loadb((const char *)raw, (size_t)n, 0, NULL);
    const char *u = json_string_value(json_object_get(j, "preferred_username"));
    if (!u)
        u = json_string_value(json_object_get(j, "upn"));
    if (u) {
        kl_buf b;
        kl_buf_init(&b, outlen);
        if (kl_cli_append_printable(&b, u, strlen(u)) == 0 && b.data)
            snprintf(out, outlen, "%s", b.data);
        kl_buf_free(&b);
    }
    json_decref(j);
}

/* Prints text from the server on err, control characters shown as '?'. */
static void print_server_text(kl_cli_ctx *c, const char *text)
{
    kl_buf b;
    kl_buf_init(&b, 4096);
    if (kl_cli_append_printable(&b, text, strlen(text)) == 0 && b.data)
        fprintf(c->err, "%s\n", b.data);
    kl_buf_free(&b);
    fflush(c->err);
}

/* POSTs form to the token endpoint and wants tokens back: OK with *answer, or an exit
 * code after an error line. When pending is set, authorization_pending and slow_down
 * answers return KL_CLI_EXIT_OK with *pending true (and *answer NULL). */
static int token_call(kl_cli_ctx *c, const kl_cli_login *l, const kl_buf *form, bool *pending,
                      int64_t *interval, json_t **answer)
{
    char err[1024];
    long status;
    *answer = NULL;
    if (pending)
        *pending = false;
    int rc =
        kl_cli_oauth_post(&c->http, l->tenant, "token", form, &status, answer, err, sizeof(err));
    if (rc < 0) {
        kl_cli_errorf(c, "%s", err);
        return rc == KL_EIO ? KL_CLI_EXIT_UNREACHABLE : KL_CLI_EXIT_REFUSED;
    }
    const char *e = json_string_value(json_object_get(*answer, "error"));
    if (pending && e && strcmp(e, "authorization_pending") == 0) {
        *pending = true;
    } else if (pending && e && strcmp(e, "slow_down") == 0) {
        *pending = true;
        *interval += 5; /* RFC 8628 §3.5 */
    } else if (status == 200 && !e && json_is_string(json_object_get(*answer, "access_token"))) {
        return KL_CLI_EXIT_OK;
    } else {
        kl_cli_oauth_error_text(status, *answer, err, sizeof(err));
        kl_cli_errorf(c, "sign-in failed: %s", err);
        json_decref(*answer);
        *answer = NULL;
        return KL_CLI_EXIT_REFUSED;
    }
    json_decref(*answer);
    *answer = NULL;
    return KL_CLI_EXIT_OK;
}

/* The device-code flow (RFC 8628, Entra's shape): OK with the token answer. */
static int device_flow(kl_cli_ctx *c, const kl_cli_login *l, json_t **tokens)
{
    kl_buf form;
    json_t *dc = NULL;
    char err[1024];
    long status;
    int code = KL_CLI_EXIT_REFUSED;

    kl_buf_init_secret(&form, KL_CLI_MAX_FORM);
    if (kl_cli_oauth_form_add(&form, "client_id", KL_CLI_CLIENT_ID) < 0 ||
        kl_cli_oauth_form_add(&form, "scope", KL_CLI_LOGIN_SCOPE) < 0)
        goto nomem;
    int rc =
        kl_cli_oauth_post(&c->http, l->tenant, "devicecode", &form, &status, &dc, err, sizeof(err));
    if (rc < 0) {
        kl_cli_errorf(c, "%s", err);
        code = rc == KL_EIO ? KL_CLI_EXIT_UNREACHABLE : KL_CLI_EXIT_REFUSED;
        goto out;
    }
    const char *device_code = json_string_value(json_object_get(dc, "device_code"));
    const char *message = json_string_value(json_object_get(dc, "message"));
    const char *user_code = json_string_value(json_object_get(dc, "user_code"));
    const char *uri = json_string_value(json_object_get(dc, "verification_uri"));
    int64_t interval = json_integer_value(json_object_get(dc, "interval"));
    int64_t expires_in = json_integer_value(json_object_get(dc, "expires_in"));
    if (status != 200 || !device_code || !user_code || !uri) {
        kl_cli_oauth_error_text(status, dc, err, sizeof(err));
        kl_cli_errorf(c, "cannot start the sign-in: %s", err);
        goto out;
    }
    if (interval <= 0 || interval > 60)
        interval = 5; /* RFC 8628's default; a bogus value must not spin or stall */
    if (expires_in <= 0 || expires_in > 3600)
        expires_in = 900;
    if (message) {
        print_server_text(c, message);
    } else {
        char line[1024];
        snprintf(line, sizeof(line), "To sign in, open %s and enter the code %s.", uri, user_code);
        print_server_text(c, line);
    }

    kl_buf_reset(&form);
    if (kl_cli_oauth_form_add(&form, "grant_type", "urn:ietf:params:oauth:grant-type:device_code") <
            0 ||
        kl_cli_oauth_form_add(&form, "client_id", KL_CLI_CLIENT_ID) < 0 ||
        kl_cli_oauth_form_add(&form, "device_code", device_code) < 0 ||
        kl_cli_oauth_form_add(&form, "client_info", "1") < 0)
        goto nomem;
    int64_t deadline = kl_now_unix() + expires_in;
    for (;;) {
        bool pending;
        sleep_s(interval);
        if ((code = token_call(c, l, &form, &pending, &interval, tokens)) != KL_CLI_EXIT_OK)
            goto out;
        if (!pending)
            break;
        if (kl_now_unix() + interval > deadline) {
            kl_cli_errorf(c, "the code expired before the sign-in was completed; run "
                             "'keyless login' again");
            code = KL_CLI_EXIT_REFUSED;
            goto out;
        }
    }
    code = KL_CLI_EXIT_OK;
    goto out;
nomem:
    code = kl_cli_out_of_memory(c);
out:
    kl_buf_cleanse_free(&form);
    json_decref(dc);
    return code;
}

/* Opens url in the desktop's browser when there is a desktop and xdg-open; never a
 * text browser in this terminal. The child is not waited for. */
static void open_browser(const char *url)
{
    if (!getenv("DISPLAY") && !getenv("WAYLAND_DISPLAY"))
        return;
    posix_spawn_file_actions_t fa;
    if (posix_spawn_file_actions_init(&fa) != 0)
        return;
    for (int fd = 0; fd <= 2; fd++)
        posix_spawn_file_actions_addopen(&fa, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0);
    char *argv[] = {"xdg-open", (char *)url, NULL};
    pid_t pid;
    (void)posix_spawnp(&pid, "xdg-open", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
}

/* Answers the browser and closes the connection. */
static void answer_browser(int fd, int status, const char *text)
{
    char resp[1024];
    int n =
        snprintf(resp, sizeof(resp),
                 "HTTP/1.1 %d %s\r\nContent-Type: text/html; charset=utf-8\r\n"
                 "Cache-Control: no-store\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n%s",
                 status,
                 status == 200   ? "OK"
                 : status == 404 ? "Not Found"
                                 : "Bad Request",
                 strlen(text), text);
    if (n > 0)
        (void)send(fd, resp, (size_t)n < sizeof(resp) ? (size_t)n : sizeof(resp) - 1, MSG_NOSIGNAL);
    close(fd);
}

/* Reads the request head from fd (bounded in size and time) into buf. Its length, or -1. */
static ssize_t read_head(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    struct timeval tv = {.tv_sec = 10, .tv_usec = 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    while (len + 1 < cap) {
        ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        len += (size_t)n;
        buf[len] = '\0';
        if (strstr(buf, "\r\n\r\n") || strstr(buf, "\n\n"))
            return (ssize_t)len;
    }
    return -1;
}

static const char PAGE_DONE[] = "<!doctype html><meta charset=utf-8><title>keyless</title>"
                                "<p>You are signed in to keyless. You can close this window.</p>";
static const char PAGE_FAILED[] = "<!doctype html><meta charset=utf-8><title>keyless</title>"
                                  "<p>The sign-in did not complete. See the terminal for why.</p>";

/* Waits on the loopback listener for the browser's redirect; OK with the code. */
static int wait_redirect(kl_cli_ctx *c, int lfd, const char *state, char *code, size_t codelen)
{
    char req[KL_CLI_MAX_REDIRECT_REQ], err[1024];
    int64_t deadline = kl_now_unix() + BROWSER_WAIT_S;
    for (int i = 0; i < BROWSER_MAX_REQUESTS; i++) {
        int64_t left = deadline - kl_now_unix();
        struct pollfd p = {.fd = lfd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)(left * 1000)) <= 0)
            break;
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read_head(fd, req, sizeof(req));
        if (n < 0) {
            close(fd);
            continue;
        }
        int rc =
            kl_cli_oauth_redirect_parse(req, (size_t)n, state, code, codelen, err, sizeof(err));
        OPENSSL_cleanse(req, sizeof(req));
        if (rc == KL_ENOTFOUND) {
            answer_browser(fd, 404, "");
            continue;
        }
        answer_browser(fd, rc == 0 ? 200 : 400, rc == 0 ? PAGE_DONE : PAGE_FAILED);
        if (rc < 0) {
            kl_cli_errorf(c, "%s", err);
            return KL_CLI_EXIT_REFUSED;
        }
        return KL_CLI_EXIT_OK;
    }
    kl_cli_errorf(c, "no sign-in arrived from the browser in time");
    return KL_CLI_EXIT_REFUSED;
}

/* The authorization-code flow with PKCE and a loopback redirect (RFC 8252 §7.3). */
static int browser_flow(kl_cli_ctx *c, const kl_cli_login *l, json_t **tokens)
{
    char verifier[KL_CLI_PKCE_LEN + 1], challenge[KL_CLI_PKCE_LEN + 1];
    char state[32], redirect[64], *code = NULL;
    unsigned char rnd[16];
    kl_buf url, form;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t salen = sizeof(sa);
    int lfd = -1, rc = KL_CLI_EXIT_REFUSED;

    kl_buf_init(&url, 8192);
    kl_buf_init_secret(&form, KL_CLI_MAX_FORM);
    if (kl_cli_oauth_pkce_new(verifier, challenge) < 0 || kl_random_id(rnd, sizeof(rnd)) < 0 ||
        kl_b64url_encode(rnd, sizeof(rnd), state, sizeof(state)) < 0) {
        kl_cli_errorf(c, "cannot make the sign-in's secrets");
        goto out;
    }
    /* Port 0: the system picks a free one; loopback only, so nothing else can answer. */
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 4) != 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &salen) != 0) {
        kl_cli_errorf(c, "cannot listen on 127.0.0.1 for the browser: %s", strerror(errno));
        goto out;
    }
    snprintf(redirect, sizeof(redirect), "http://127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
    kl_buf query;
    kl_buf_init(&query, 4096);
    int qrc = kl_cli_oauth_form_add(&query, "client_id", KL_CLI_CLIENT_ID);
    qrc = qrc ? qrc : kl_cli_oauth_form_add(&query, "response_type", "code");
    qrc = qrc ? qrc : kl_cli_oauth_form_add(&query, "redirect_uri", redirect);
    qrc = qrc ? qrc : kl_cli_oauth_form_add(&query, "scope", KL_CLI_LOGIN_SCOPE);
    qrc = qrc ? qrc : kl_cli_oauth_form_add(&query, "state", state);
    qrc = qrc ? qrc : kl_cli_oauth_form_add(&query, "code_challenge", challenge);
    qrc = qrc ? qrc : kl_cli_oauth_form_add(&query, "code_challenge_method", "S256");
    qrc = qrc ? qrc : kl_cli_oauth_form_add(&query, "response_mode", "query");
    qrc = qrc ? qrc : kl_cli_oauth_form_add(&query, "client_info", "1");
    qrc = qrc ? qrc : kl_buf_append_str(&url, l->server);
    qrc = qrc ? qrc : kl_buf_append_str(&url, "/");
    qrc = qrc ? qrc : kl_cli_append_segment(&url, l->tenant);
    qrc = qrc ? qrc : kl_buf_appendf(&url, "/oauth2/v2.0/authorize?%s", query.data);
    kl_buf_free(&query);
    if (qrc < 0) {
        kl_cli_errorf(c, "cannot build the sign-in address");
        goto out;
    }
    fprintf(c->err, "To sign in, open this address in a browser on this machine:\n  %s\n",
            url.data);
    fflush(c->err);
    open_browser(url.data);
    if (!(code = OPENSSL_zalloc(MAX_CODE))) {
        kl_cli_errorf(c, "out of memory");
        goto out;
    }
    if ((rc = wait_redirect(c, lfd, state, code, MAX_CODE)) != KL_CLI_EXIT_OK)
        goto out;
    if (kl_cli_oauth_form_add(&form, "grant_type", "authorization_code") < 0 ||
        kl_cli_oauth_form_add(&form, "client_id", KL_CLI_CLIENT_ID) < 0 ||
        kl_cli_oauth_form_add(&form, "code", code) < 0 ||
        kl_cli_oauth_form_add(&form, "redirect_uri", redirect) < 0 ||
        kl_cli_oauth_form_add(&form, "code_verifier", verifier) < 0 ||
        kl_cli_oauth_form_add(&form, "scope", KL_CLI_LOGIN_SCOPE) < 0 ||
        kl_cli_oauth_form_add(&form, "client_info", "1") < 0) {
        kl_cli_errorf(c, "out of memory");
        rc = KL_CLI_EXIT_REFUSED;
        goto out;
    }
    rc = token_call(c, l, &form, NULL, NULL, tokens);
out:
    if (lfd >= 0)
        close(lfd);
    OPENSSL_cleanse(verifier, sizeof(verifier));
    if (code)
        OPENSSL_clear_free(code, MAX_CODE);
    kl_buf_free(&url);
    kl_buf_cleanse_free(&form);
    return rc;
}

/* Fills l->server, tenant and ca_file from the options (see docs/cli.md). */
static int login_target(kl_cli_ctx *c, kl_cli_login *l)
{
    const kl_cli_args *a = c->args;
    const char *server = a->server ? a->server : DEFAULT_SERVER;
    size_t n = strlen(server);
    while (n > strlen("https://") && server[n - 1] == '/')
        n--;
    if (n >= sizeof(l->server)) {
        kl_cli_errorf(c, "--server is too long");
        return KL_CLI_EXIT_USAGE;
    }
    memcpy(l->server, server, n);
    l->server[n] = '\0';
    const char *tenant = a->tenant ? a->tenant : DEFAULT_TENANT;
    if (strlen(tenant) >= sizeof(l->tenant)) {
        kl_cli_errorf(c, "--tenant is too long");
        return KL_CLI_EXIT_USAGE;
    }
    memcpy(l->tenant, tenant, strlen(tenant) + 1);
    /* The CA file is kept by absolute path, so later commands find it from anywhere.
     * Without --ca-file, the local keylessd's own CA when signing in to it by default. */
    char local_ca[PATH_MAX];
    const char *ca = a->ca_file;
    if (!ca && !a->server && c->data_dir &&
        snprintf(local_ca, sizeof(local_ca), "%s/tls/ca.pem", c->data_dir) <
            (int)sizeof(local_ca) &&
        access(local_ca, R_OK) == 0)
        ca = local_ca;
    if (ca && !realpath(ca, l->ca_file)) {
        kl_cli_errorf(c, "--ca-file %s: %s", ca, strerror(errno));
        return KL_CLI_EXIT_USAGE;
    }
    return KL_CLI_EXIT_OK;
}

static int login(kl_cli_ctx *c)
{
    kl_cli_login *l = OPENSSL_zalloc(sizeof(*l));
    char dir[PATH_MAX], err[1024], user[256];
    json_t *tokens = NULL;
    int code;

    if (!l)
        return kl_cli_out_of_memory(c);
    if ((code = login_dir(c, dir, sizeof(dir))) != KL_CLI_EXIT_OK ||
        (code = login_target(c, l)) != KL_CLI_EXIT_OK)
        goto out;
    kl_cli_http_free(&c->http);
    if (kl_cli_http_init_remote(&c->http, l->server, l->ca_file, err, sizeof(err)) < 0) {
        kl_cli_errorf(c, "%s", err);
        code = KL_CLI_EXIT_USAGE;
        goto out;
    }
    code = c->args->browser ? browser_flow(c, l, &tokens) : device_flow(c, l, &tokens);
    if (code != KL_CLI_EXIT_OK)
        goto out;
    const char *rt = json_string_value(json_object_get(tokens, "refresh_token"));
    if (!rt || strlen(rt) >= sizeof(l->refresh_token)) {
        kl_cli_errorf(c, "keylessd issued no usable refresh token; nothing was saved");
        code = KL_CLI_EXIT_REFUSED;
        goto out;
    }
    memcpy(l->refresh_token, rt, strlen(rt) + 1);
    (void)tenant_of(tokens, l->tenant, sizeof(l->tenant));
    if (kl_cli_login_write(dir, l, err, sizeof(err)) < 0) {
        kl_cli_errorf(c, "%s", err);
        code = KL_CLI_EXIT_REFUSED;
        goto out;
    }
    user_of(tokens, user, sizeof(user));
    fprintf(c->out, "signed in to %s as %s (tenant %s)\n", l->server, user, l->tenant);
out:
    json_decref(tokens);
    kl_cli_login_clear(l);
    OPENSSL_free(l);
    return code;
}

/* Revokes the refresh token (RFC 7009) and deletes the login file; the file goes even
 * when the server cannot be told, and the exit code says so. */
static int logout(kl_cli_ctx *c)
{
    kl_cli_login *l = OPENSSL_zalloc(sizeof(*l));
    char dir[PATH_MAX], err[1024];
    json_t *answer = NULL;
    kl_buf form;
    long status = 0;
    int code, lock = -1;

    kl_buf_init_secret(&form, KL_CLI_MAX_FORM);
    if (!l)
        return kl_cli_out_of_memory(c);
    if ((code = login_dir(c, dir, sizeof(dir))) != KL_CLI_EXIT_OK)
        goto out;
    /* No command may rotate the token between the read and the revocation. With no
     * directory there is no lock, and no login file either. */
    lock = kl_cli_login_lock(dir, err, sizeof(err));
    int rc = kl_cli_login_read(dir, l, err, sizeof(err));
    if (rc == KL_ENOTFOUND) {
        fprintf(c->out, "not signed in\n");
        code = KL_CLI_EXIT_OK;
        goto out;
    }
    if (rc < 0) {
        /* Unusable (or readable by others): it goes, unrevoked, and the user is told. */
        kl_cli_errorf(c, "%s", err);
        code = KL_CLI_EXIT_REFUSED;
        goto remove;
    }
    kl_cli_http_free(&c->http);
    if (kl_cli_http_init_remote(&c->http, l->server, l->ca_file, err, sizeof(err)) < 0 ||
        kl_cli_oauth_form_add(&form, "token", l->refresh_token) < 0 ||
        kl_cli_oauth_form_add(&form, "token_type_hint", "refresh_token") < 0 ||
        kl_cli_oauth_form_add(&form, "client_id", KL_CLI_CLIENT_ID) < 0) {
        kl_cli_errorf(c, "cannot build the revocation request");
        code = KL_CLI_EXIT_REFUSED;
        goto remove;
    }
    rc =
        kl_cli_oauth_post(&c->http, l->tenant, "revoke", &form, &status, &answer, err, sizeof(err));
    if (rc < 0) {
        kl_cli_errorf(c, "the refresh token could not be revoked: %s", err);
        code = rc == KL_EIO ? KL_CLI_EXIT_UNREACHABLE : KL_CLI_EXIT_REFUSED;
    } else if (status != 200) {
        kl_cli_oauth_error_text(status, answer, err, sizeof(err));
        kl_cli_errorf(c, "the refresh token could not be revoked: %s", err);
        code = KL_CLI_EXIT_REFUSED;
    } else {
        code = KL_CLI_EXIT_OK;
    }
remove:
    if (kl_cli_login_remove(dir, err, sizeof(err)) < 0) {
        kl_cli_errorf(c, "%s", err);
        code = KL_CLI_EXIT_REFUSED;
    } else if (code == KL_CLI_EXIT_OK) {
        fprintf(c->out, "signed out of %s\n", l->server);
    } else {
        fprintf(c->err, "the login file was deleted\n");
    }
out:
    kl_cli_login_unlock(lock);
    json_decref(answer);
    kl_buf_cleanse_free(&form);
    kl_cli_login_clear(l);
    OPENSSL_free(l);
    return code;
}

int kl_cli_cmd_login(kl_cli_ctx *c)
{
    return c->args->cmd == KL_CLI_CMD_LOGOUT ? logout(c) : login(c);
}
