/* keyless user create|list|show|enable|disable|delete|reset-password: users of the
 * directory (Graph-shaped /v1.0/users on the admin socket). A user is named by its
 * userPrincipalName or object id. A password is read from standard input (one line) or,
 * on a terminal, from a prompt with echo off, never from the command line, and is
 * wiped from memory once sent. */
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/lookup.h"
#include "cli/output.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/util.h"

#define GRAPH_USERS "/v1.0/users"

/* Reads one line from f into buf (at most KL_MAX_PASSWORD bytes), without its line end.
 * Returns its length, or -1 when it is empty or too long. */
static long read_line(FILE *f, char buf[KL_MAX_PASSWORD + 2])
{
    if (!fgets(buf, KL_MAX_PASSWORD + 2, f))
        return -1;
    size_t n = strlen(buf);
    bool line_end = n > 0 && buf[n - 1] == '\n';
    if (line_end)
        buf[--n] = '\0';
    if (n > 0 && buf[n - 1] == '\r')
        buf[--n] = '\0';
    if (n == 0 || (!line_end && n > KL_MAX_PASSWORD) || n > KL_MAX_PASSWORD)
        return -1;
    return (long)n;
}

/* The new password into buf: from a prompt (twice, echo off) when standard input is a
 * terminal, else the first line of standard input. OK or USAGE (line printed). */
static int read_password(kl_cli_ctx *c, char buf[KL_MAX_PASSWORD + 2], size_t *len)
{
    long n = -1;
    if (!isatty(STDIN_FILENO)) {
        n = read_line(stdin, buf);
    } else {
        struct termios old, quiet;
        char again[KL_MAX_PASSWORD + 2];
        bool restore = tcgetattr(STDIN_FILENO, &old) == 0;
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        if (restore)
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
        fputs("New password: ", stderr);
        n = read_line(stdin, buf);
        fputs("\nRepeat it: ", stderr);
        long m = n < 0 ? -1 : read_line(stdin, again);
        fputs("\n", stderr);
        if (restore)
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        if (n >= 0 && (m != n || memcmp(buf, again, (size_t)n) != 0)) {
            OPENSSL_cleanse(again, sizeof(again));
            kl_cli_errorf(c, "the two passwords differ");
            return KL_CLI_EXIT_USAGE;
        }
        OPENSSL_cleanse(again, sizeof(again));
    }
    if (n < 0) {
        kl_cli_errorf(c, "no password: give one line of 1-%d bytes on standard input",
                      KL_MAX_PASSWORD);
        return KL_CLI_EXIT_USAGE;
    }
    *len = (size_t)n;
    return KL_CLI_EXIT_OK;
}

/* Wipes the password inside a request body built with it, then frees the body. */
static void body_free(json_t *body)
{
    json_t *pw = json_object_get(json_object_get(body, "passwordProfile"), "password");
    if (json_is_string(pw))
        OPENSSL_cleanse((char *)json_string_value(pw), json_string_length(pw));
    json_decref(body);
}

static const char *bool_text(const json_t *v)
{
    return json_is_true(v) ? "true" : json_is_false(v) ? "false" : NULL;
}

static int print_user(kl_cli_ctx *c, const json_t *u)
{
    if (c->args->output == KL_CLI_OUTPUT_JSON)
        return kl_cli_print_json(c->out, u) == 0 ? KL_CLI_EXIT_OK : kl_cli_output_failed(c);
    const kl_cli_field fields[] = {
        {"USER", kl_cli_json_str(u, "userPrincipalName", NULL)},
        {"NAME", kl_cli_json_str(u, "displayName", NULL)},
        {"OBJECT-ID", kl_cli_json_str(u, "id", NULL)},
        {"ENABLED", bool_text(json_object_get(u, "accountEnabled"))},
        {"CREATED", kl_cli_json_str(u, "createdDateTime", NULL)},
    };
    if (kl_cli_print_fields(c->out, fields, sizeof(fields) / sizeof(fields[0])) < 0)
        return kl_cli_output_failed(c);
    return KL_CLI_EXIT_OK;
}

/* /v1.0/users/{x} into t; USAGE when x is no plausible name or id. */
static int user_target(kl_cli_ctx *c, const char *x, kl_buf *t)
{
    kl_buf_init(t, KL_CLI_TARGET_MAX);
    size_t n = strlen(x);
    bool ok = n > 0 && n <= KL_MAX_UPN;
    for (size_t i = 0; ok && i < n; i++)
        ok = x[i] > 0x20 && x[i] < 0x7f && !strchr("/?#%", x[i]);
    if (!ok || kl_buf_appendf(t, "%s/%s", GRAPH_USERS, x) < 0) {
        kl_buf_free(t);
        kl_cli_errorf(c, "USER must be a userPrincipalName (local@domain) or an object id");
        return KL_CLI_EXIT_USAGE;
    }
    return KL_CLI_EXIT_OK;
}

static int user_create(kl_cli_ctx *c)
{
    const char *upn = c->args->pos[0];
    const char *name = c->args->display_name ? c->args->display_name : upn;
    char pw[KL_MAX_PASSWORD + 2];
    size_t len = 0;
    json_t *u = NULL;
    long status;
    int code = read_password(c, pw, &len);
    if (code != KL_CLI_EXIT_OK)
        return code;
    json_t *body =
        json_pack("{s:b, s:s, s:s, s:{s:s%, s:b}}", "accountEnabled", 1, "userPrincipalName", upn,
                  "displayName", name, "passwordProfile", "password", pw, len,
                  "forceChangePasswordNextSignIn", c->args->force_change);
    OPENSSL_cleanse(pw, sizeof(pw));
    if (!body) {
        kl_cli_errorf(c, "cannot build the request (are the names valid UTF-8?)");
        return KL_CLI_EXIT_USAGE;
    }
    code = kl_cli_call(c, "POST", GRAPH_USERS, body, 0, &status, &u);
    body_free(body);
    if (code == KL_CLI_EXIT_OK)
        code = print_user(c, u);
    json_decref(u);
    return code;
}

static const char *enabled_cell(const json_t *u, const void *data, char *buf, size_t buflen)
{
    (void)data;
    (void)buf;
    (void)buflen;
    return bool_text(json_object_get(u, "accountEnabled"));
}

static int user_list(kl_cli_ctx *c)
{
    json_t *root = NULL, *value = NULL;
    int code = kl_cli_get_list(c, GRAPH_USERS, 0, &root, &value);
    if (code != KL_CLI_EXIT_OK)
        return code;
    static const kl_cli_column cols[] = {
        {"USER", {"userPrincipalName"}, NULL},
        {"NAME", {"displayName"}, NULL},
        {"OBJECT-ID", {"id"}, NULL},
        {"ENABLED", {NULL}, enabled_cell},
    };
    code = kl_cli_print_list(c, NULL, root, value, cols, sizeof(cols) / sizeof(cols[0]));
    json_decref(root);
    return code;
}

static int user_show(kl_cli_ctx *c)
{
    kl_buf t;
    json_t *u = NULL;
    long status;
    int code = user_target(c, c->args->pos[0], &t);
    if (code != KL_CLI_EXIT_OK)
        return code;
    code = kl_cli_call(c, "GET", t.data, NULL, 0, &status, &u);
    if (code == KL_CLI_EXIT_OK)
        code = print_user(c, u);
    kl_buf_free(&t);
    json_decref(u);
    return code;
}

/* PATCHes body (taken) onto the user, or DELETEs it (body NULL). */
static int user_change(kl_cli_ctx *c, const char *method, json_t *body, const char *done)
{
    kl_buf t;
    long status;
    const char *x = c->args->pos[0];
    bool del = strcmp(method, "DELETE") == 0;
    if (!del && !body)
        return kl_cli_out_of_memory(c);
    int code = user_target(c, x, &t);
    if (code == KL_CLI_EXIT_OK) {
        unsigned flags = del ? KL_CLI_CALL_QUIET_404 : 0;
        code = kl_cli_call(c, method, t.data, body, flags, &status, NULL);
        if (del && code == KL_CLI_EXIT_NOTFOUND) {
            if (c->args->output != KL_CLI_OUTPUT_JSON)
                fprintf(c->out, "user '%s' does not exist; nothing to delete\n", x);
            code = KL_CLI_EXIT_OK;
        } else if (code == KL_CLI_EXIT_OK && c->args->output != KL_CLI_OUTPUT_JSON) {
            fprintf(c->out, "%s %s\n", done, x);
        }
        kl_buf_free(&t);
    }
    body_free(body);
    return code;
}

static int user_reset_password(kl_cli_ctx *c)
{
    char pw[KL_MAX_PASSWORD + 2];
    size_t len = 0;
    int code = read_password(c, pw, &len);
    if (code != KL_CLI_EXIT_OK)
        return code;
    json_t *body = json_pack("{s:{s:s%, s:b}}", "passwordProfile", "password", pw, len,
                             "forceChangePasswordNextSignIn", c->args->force_change);
    OPENSSL_cleanse(pw, sizeof(pw));
    if (!body) {
        kl_cli_errorf(c, "cannot build the request (is the password valid UTF-8?)");
        return KL_CLI_EXIT_USAGE;
    }
    return user_change(c, "PATCH", body, "password reset for");
}

int kl_cli_cmd_user(kl_cli_ctx *c)
{
    switch (c->args->cmd) {
    case KL_CLI_CMD_USER_CREATE: return user_create(c);
    case KL_CLI_CMD_USER_LIST: return user_list(c);
    case KL_CLI_CMD_USER_SHOW: return user_show(c);
    case KL_CLI_CMD_USER_ENABLE:
        return user_change(c, "PATCH", json_pack("{s:b}", "accountEnabled", 1), "enabled");
    case KL_CLI_CMD_USER_DISABLE:
        return user_change(c, "PATCH", json_pack("{s:b}", "accountEnabled", 0), "disabled");
    case KL_CLI_CMD_USER_DELETE: return user_change(c, "DELETE", NULL, "deleted");
    case KL_CLI_CMD_USER_RESET_PASSWORD: return user_reset_password(c);
    default: break;
    }
    kl_cli_errorf(c, "internal error: not a user command");
    return KL_CLI_EXIT_USAGE;
}
