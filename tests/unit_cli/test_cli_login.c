/* Unit tests of `keyless login`'s client side that need no server: the login file (its
 * place, its modes, its atomic replacement, what is refused), where a command goes
 * (admin socket or the signed-in server), PKCE, form bodies, the loopback redirect and
 * which token a request needs. Each test works in a directory of its own under /tmp. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/client.h"
#include "cli/loginfile.h"
#include "cli/oauth.h"
#include "cli/output.h"
#include "common/err.h"

#define ARGV(...) ((char *const[]){"keyless", __VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((char *const[]){"keyless", __VA_ARGS__}) / sizeof(char *)))
#define PARSE(a, err, ...)                                                                         \
    kl_cli_args_parse(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), (a), (err), sizeof(err))

typedef struct fixture {
    char root[64];       /* a fresh directory standing in for $XDG_CONFIG_HOME */
    char dir[128];       /* root/keyless, where the login file goes */
    char file[PATH_MAX]; /* dir/login.json */
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    snprintf(f->root, sizeof(f->root), "/tmp/kl-cli-login-XXXXXX");
    if (!f || !mkdtemp(f->root))
        return -1;
    snprintf(f->dir, sizeof(f->dir), "%s/keyless", f->root);
    snprintf(f->file, sizeof(f->file), "%s/login.json", f->dir);
    *state = f;
    return 0;
}

static void rm_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char sub[PATH_MAX];
            snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
            rm_tree(sub);
        }
        closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static int teardown(void **state)
{
    fixture *f = *state;
    chmod(f->root, 0700);
    chmod(f->dir, 0700);
    rm_tree(f->root);
    free(f);
    return 0;
}

static void sample(kl_cli_login *l)
{
    memset(l, 0, sizeof(*l));
    snprintf(l->server, sizeof(l->server), "https://127.0.0.1:8443");
    snprintf(l->tenant, sizeof(l->tenant), "11111111-2222-3333-4444-555555555555");
    snprintf(l->ca_file, sizeof(l->ca_file), "/etc/keyless/ca.pem");
    snprintf(l->refresh_token, sizeof(l->refresh_token), "rt-one");
}

static size_t entries(const char *dir)
{
    size_t n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    if (d)
        closedir(d);
    return n;
}

static void test_login_dir(void **state)
{
    (void)state;
    char out[128];
    assert_int_equal(kl_cli_login_dir("/xdg", "/home/u", out, sizeof(out)), 0);
    assert_string_equal(out, "/xdg/keyless");
    assert_int_equal(kl_cli_login_dir("relative", "/home/u", out, sizeof(out)), 0);
    assert_string_equal(out, "/home/u/.config/keyless");
    assert_int_equal(kl_cli_login_dir(NULL, "/home/u", out, sizeof(out)), 0);
    assert_string_equal(out, "/home/u/.config/keyless");
    assert_int_equal(kl_cli_login_dir(NULL, NULL, out, sizeof(out)), KL_ENOTFOUND);
    assert_int_equal(kl_cli_login_dir(NULL, "", out, sizeof(out)), KL_ENOTFOUND);
    assert_int_equal(kl_cli_login_dir("/a/long/one", NULL, out, 8), KL_ETOOBIG);
}

/* Written 0600 in a 0700 directory made for it, read back whole; a second write
 * replaces the first and leaves no temporary file behind. */
static void test_login_file_round_trip(void **state)
{
    fixture *f = *state;
    kl_cli_login l, back;
    char err[512];
    struct stat st;

    sample(&l);
    assert_int_equal(kl_cli_login_read(f->dir, &back, err, sizeof(err)), KL_ENOTFOUND);
    assert_int_equal(kl_cli_login_write(f->dir, &l, err, sizeof(err)), 0);
    assert_int_equal(stat(f->dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(stat(f->file, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(kl_cli_login_read(f->dir, &back, err, sizeof(err)), 0);
    assert_string_equal(back.server, l.server);
    assert_string_equal(back.tenant, l.tenant);
    assert_string_equal(back.ca_file, l.ca_file);
    assert_string_equal(back.refresh_token, "rt-one");

    /* The rotated token replaces the old one; nothing else is left in the directory. */
    snprintf(l.refresh_token, sizeof(l.refresh_token), "rt-two");
    assert_int_equal(kl_cli_login_write(f->dir, &l, err, sizeof(err)), 0);
    assert_int_equal(kl_cli_login_read(f->dir, &back, err, sizeof(err)), 0);
    assert_string_equal(back.refresh_token, "rt-two");
    assert_int_equal(entries(f->dir), 1);
    assert_int_equal(stat(f->file, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* A umask that would leave the file readable by all changes nothing. */
    mode_t old = umask(0);
    assert_int_equal(kl_cli_login_write(f->dir, &l, err, sizeof(err)), 0);
    umask(old);
    assert_int_equal(stat(f->file, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    assert_int_equal(kl_cli_login_remove(f->dir, err, sizeof(err)), 0);
    assert_int_equal(stat(f->file, &st), -1);
    assert_int_equal(kl_cli_login_remove(f->dir, err, sizeof(err)), 0); /* gone is fine */
    assert_int_equal(kl_cli_login_read(f->dir, &back, err, sizeof(err)), KL_ENOTFOUND);
}

/* A token others could read is not used; nor one behind a symbolic link. */
static void test_login_file_refused(void **state)
{
    fixture *f = *state;
    kl_cli_login l, back;
    char err[512], other[PATH_MAX];

    sample(&l);
    assert_int_equal(kl_cli_login_write(f->dir, &l, err, sizeof(err)), 0);
    assert_int_equal(chmod(f->file, 0644), 0);
    assert_int_equal(kl_cli_login_read(f->dir, &back, err, sizeof(err)), KL_EPERM);
    assert_non_null(strstr(err, "only you can read (mode 0600)"));
    assert_string_equal(back.refresh_token, ""); /* wiped */
    assert_int_equal(chmod(f->file, 0600), 0);

    /* login.json as a link to a file elsewhere. */
    snprintf(other, sizeof(other), "%s/elsewhere.json", f->root);
    assert_int_equal(rename(f->file, other), 0);
    assert_int_equal(symlink(other, f->file), 0);
    assert_int_equal(kl_cli_login_read(f->dir, &back, err, sizeof(err)), KL_EPERM);
    assert_non_null(strstr(err, "symbolic link"));
    /* Writing replaces the link itself, never writes through it. */
    snprintf(l.refresh_token, sizeof(l.refresh_token), "rt-new");
    assert_int_equal(kl_cli_login_write(f->dir, &l, err, sizeof(err)), 0);
    assert_int_equal(kl_cli_login_read(f->dir, &back, err, sizeof(err)), 0);
    assert_string_equal(back.refresh_token, "rt-new");
    FILE *fp = fopen(other, "r");
    char text[4096] = {0};
    assert_non_null(fp);
    assert_true(fread(text, 1, sizeof(text) - 1, fp) > 0);
    fclose(fp);
    assert_non_null(strstr(text, "rt-one"));

    /* Not a login file. */
    fp = fopen(f->file, "w");
    assert_non_null(fp);
    fputs("{\"server\":\"https://x\"}", fp);
    fclose(fp);
    chmod(f->file, 0600);
    assert_int_equal(kl_cli_login_read(f->dir, &back, err, sizeof(err)), KL_EINVAL);
    assert_string_equal(err, "the login file has no \"tenant\"");

    /* A directory others may write to is not used for the token. */
    assert_int_equal(chmod(f->dir, 0777), 0);
    assert_int_equal(kl_cli_login_write(f->dir, &l, err, sizeof(err)), KL_EPERM);
    /* One only others may read is made private. */
    struct stat st;
    assert_int_equal(chmod(f->dir, 0755), 0);
    assert_int_equal(kl_cli_login_write(f->dir, &l, err, sizeof(err)), 0);
    assert_int_equal(stat(f->dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
}

/* Where a command goes: the login file's server unless a data directory is named;
 * --server must be the server signed in to. */
static void test_transport_choice(void **state)
{
    fixture *f = *state;
    kl_cli_login l;
    kl_cli_remote r;
    kl_cli_args a;
    char err[1024];
    bool remote;

    /* Not signed in: the admin socket, and --server says how to sign in. */
    memset(&r, 0, sizeof(r));
    assert_int_equal(PARSE(&a, err, "account", "list"), 0);
    assert_int_equal(kl_cli_remote_choose(&a, false, f->root, NULL, &r, &remote, err, sizeof(err)),
                     KL_CLI_EXIT_OK);
    assert_false(remote);
    assert_int_equal(PARSE(&a, err, "account", "list", "--server", "https://h:1"), 0);
    assert_int_equal(kl_cli_remote_choose(&a, false, f->root, NULL, &r, &remote, err, sizeof(err)),
                     KL_CLI_EXIT_USAGE);
    assert_string_equal(err, "not signed in to https://h:1; run: keyless login --server "
                             "https://h:1");

    sample(&l);
    assert_int_equal(kl_cli_login_write(f->dir, &l, err, sizeof(err)), 0);
    memset(&r, 0, sizeof(r));
    assert_int_equal(PARSE(&a, err, "account", "list"), 0);
    assert_int_equal(kl_cli_remote_choose(&a, false, f->root, NULL, &r, &remote, err, sizeof(err)),
                     KL_CLI_EXIT_OK);
    assert_true(remote);
    assert_string_equal(r.login.server, "https://127.0.0.1:8443");
    assert_string_equal(r.login.refresh_token, "rt-one");
    kl_cli_remote_free(&r);

    /* A named data directory (option or environment) means its admin socket. */
    assert_int_equal(PARSE(&a, err, "account", "list", "--data-dir", "/d"), 0);
    assert_int_equal(kl_cli_remote_choose(&a, false, f->root, NULL, &r, &remote, err, sizeof(err)),
                     KL_CLI_EXIT_OK);
    assert_false(remote);
    assert_int_equal(PARSE(&a, err, "account", "list"), 0);
    assert_int_equal(kl_cli_remote_choose(&a, true, f->root, NULL, &r, &remote, err, sizeof(err)),
                     KL_CLI_EXIT_OK);
    assert_false(remote);
    /* ...unless --server insists. */
    assert_int_equal(PARSE(&a, err, "account", "list", "--data-dir", "/d", "--server",
                           "https://127.0.0.1:8443/"),
                     0);
    assert_int_equal(kl_cli_remote_choose(&a, true, f->root, NULL, &r, &remote, err, sizeof(err)),
                     KL_CLI_EXIT_OK);
    assert_true(remote);
    kl_cli_remote_free(&r);
    assert_int_equal(PARSE(&a, err, "account", "list", "--server", "https://other:8443"), 0);
    assert_int_equal(kl_cli_remote_choose(&a, false, f->root, NULL, &r, &remote, err, sizeof(err)),
                     KL_CLI_EXIT_USAGE);
    assert_false(remote);
    assert_string_equal(err, "signed in to https://127.0.0.1:8443, not https://other:8443; run: "
                             "keyless login --server https://other:8443");
    /* login, logout and store migrate never use it. */
    assert_int_equal(PARSE(&a, err, "logout"), 0);
    assert_int_equal(kl_cli_remote_choose(&a, false, f->root, NULL, &r, &remote, err, sizeof(err)),
                     KL_CLI_EXIT_OK);
    assert_false(remote);
    /* A login file others can read stops the command, rather than going elsewhere. */
    assert_int_equal(chmod(f->file, 0640), 0);
    assert_int_equal(PARSE(&a, err, "account", "list"), 0);
    assert_int_equal(kl_cli_remote_choose(&a, false, f->root, NULL, &r, &remote, err, sizeof(err)),
                     KL_CLI_EXIT_REFUSED);
    assert_false(remote);
}

static void test_login_args(void **state)
{
    (void)state;
    kl_cli_args a;
    char err[512];
    assert_int_equal(PARSE(&a, err, "login", "--server", "https://kl.example:8443", "--tenant",
                           "t1", "--ca-file", "ca.pem", "--browser"),
                     0);
    assert_int_equal(a.cmd, KL_CLI_CMD_LOGIN);
    assert_string_equal(a.server, "https://kl.example:8443");
    assert_string_equal(a.tenant, "t1");
    assert_string_equal(a.ca_file, "ca.pem");
    assert_true(a.browser);
    /* Tokens never travel in clear. */
    assert_int_equal(PARSE(&a, err, "login", "--server", "http://kl.example"), KL_EINVAL);
    assert_string_equal(err, "--server must be an https:// URL, not 'http://kl.example'");
    assert_int_equal(PARSE(&a, err, "logout", "--browser"), KL_EINVAL);
    assert_string_equal(err, "logout does not take --browser");
    assert_int_equal(PARSE(&a, err, "account", "list", "--tenant", "x"), KL_EINVAL);
    assert_int_equal(PARSE(&a, err, "login", "extra"), KL_EINVAL);
}

/* The CLI of the user sign-in settings: public clients with redirect URIs, and the
 * tenant's password-grant switch. */
static void test_sign_in_settings_args(void **state)
{
    (void)state;
    kl_cli_args a;
    char err[512];
    assert_int_equal(PARSE(&a, err, "app", "create", "cli-tool", "--public-client",
                           "--redirect-uri", "http://localhost", "--redirect-uri",
                           "https://app.example/cb"),
                     0);
    assert_int_equal(a.cmd, KL_CLI_CMD_APP_CREATE);
    assert_true(a.public_client);
    assert_int_equal(a.n_redirect_uri, 2);
    assert_string_equal(a.redirect_uri[1], "https://app.example/cb");
    assert_int_equal(PARSE(&a, err, "app", "show", "x", "--public-client"), KL_EINVAL);
    assert_string_equal(err, "app show does not take --public-client");
    assert_int_equal(PARSE(&a, err, "app", "create", "x", "--redirect-uri", ""), KL_EINVAL);

    assert_int_equal(PARSE(&a, err, "tenant", "set", "--password-grant", "on"), 0);
    assert_int_equal(a.cmd, KL_CLI_CMD_TENANT_SET);
    assert_true(a.password_grant);
    assert_int_equal(PARSE(&a, err, "tenant", "set", "--password-grant", "off"), 0);
    assert_false(a.password_grant);
    assert_int_equal(PARSE(&a, err, "tenant", "set", "--password-grant", "yes"), KL_EINVAL);
    assert_string_equal(err, "--password-grant takes on or off, not 'yes'");
    assert_int_equal(PARSE(&a, err, "tenant", "set"), KL_EINVAL);
    assert_string_equal(err, "tenant set: nothing to change (give --password-grant on|off)");
}

/* RFC 7636 appendix B's example. */
static void test_pkce(void **state)
{
    (void)state;
    char v[KL_CLI_PKCE_LEN + 1], c[KL_CLI_PKCE_LEN + 1], c2[KL_CLI_PKCE_LEN + 1];
    assert_int_equal(kl_cli_oauth_pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", c),
                     0);
    assert_string_equal(c, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    assert_int_equal(kl_cli_oauth_pkce_new(v, c), 0);
    assert_int_equal(strlen(v), KL_CLI_PKCE_LEN);
    assert_int_equal(kl_cli_oauth_pkce_challenge(v, c2), 0);
    assert_string_equal(c, c2);
}

static void test_form_and_resource(void **state)
{
    (void)state;
    kl_buf b;
    kl_buf_init(&b, 1024);
    assert_int_equal(kl_cli_oauth_form_add(&b, "scope", KL_CLI_LOGIN_SCOPE), 0);
    assert_int_equal(kl_cli_oauth_form_add(&b, "refresh_token", "a+b/c=d&e"), 0);
    assert_string_equal(b.data, "scope=https%3A%2F%2Fmanagement.azure.com%2F.default%20openid%20"
                                "profile%20offline_access&refresh_token=a%2Bb%2Fc%3Dd%26e");
    kl_buf_free(&b);

    assert_string_equal(kl_cli_oauth_resource_for("/v1.0/users"), KL_CLI_GRAPH_RESOURCE);
    assert_string_equal(kl_cli_oauth_resource_for("/v1.0?x"), KL_CLI_GRAPH_RESOURCE);
    assert_string_equal(kl_cli_oauth_resource_for("/v1.0x/users"), KL_CLI_ARM_RESOURCE);
    assert_string_equal(kl_cli_oauth_resource_for("/subscriptions/s?api-version=1"),
                        KL_CLI_ARM_RESOURCE);
    assert_string_equal(kl_cli_oauth_resource_for("/keyless/signIns"), KL_CLI_ARM_RESOURCE);
}

#define REQ(target) "GET " target " HTTP/1.1\r\nHost: 127.0.0.1:5000\r\n\r\n"

static void test_redirect_parse(void **state)
{
    (void)state;
    char code[256], err[512];
    const char *r = REQ("/?code=abc%2Bdef&state=s1&session_state=x");
    assert_int_equal(
        kl_cli_oauth_redirect_parse(r, strlen(r), "s1", code, sizeof(code), err, sizeof(err)), 0);
    assert_string_equal(code, "abc+def");
    /* Another state: not this sign-in's answer (a forged or stale redirect). */
    assert_int_equal(
        kl_cli_oauth_redirect_parse(r, strlen(r), "s2", code, sizeof(code), err, sizeof(err)),
        KL_EINVAL);
    assert_non_null(strstr(err, "state"));
    r = REQ("/?code=abc");
    assert_int_equal(
        kl_cli_oauth_redirect_parse(r, strlen(r), "s1", code, sizeof(code), err, sizeof(err)),
        KL_EINVAL);
    /* The server's refusal, shown. */
    r = REQ("/?error=access_denied&error_description=AADSTS50126%3A+bad+password%0D%0ATrace&"
            "state=s1");
    assert_int_equal(
        kl_cli_oauth_redirect_parse(r, strlen(r), "s1", code, sizeof(code), err, sizeof(err)),
        KL_EINVAL);
    assert_string_equal(err, "sign-in refused: access_denied: AADSTS50126: bad password");
    /* The browser's other requests are not the redirect. */
    r = REQ("/favicon.ico");
    assert_int_equal(
        kl_cli_oauth_redirect_parse(r, strlen(r), "s1", code, sizeof(code), err, sizeof(err)),
        KL_ENOTFOUND);
    r = "POST /?code=a&state=s1 HTTP/1.1\r\n\r\n";
    assert_int_equal(
        kl_cli_oauth_redirect_parse(r, strlen(r), "s1", code, sizeof(code), err, sizeof(err)),
        KL_EINVAL);
    r = REQ("/?code=a%0Ab&state=s1"); /* no control bytes in a code */
    assert_int_equal(
        kl_cli_oauth_redirect_parse(r, strlen(r), "s1", code, sizeof(code), err, sizeof(err)),
        KL_EINVAL);
    r = REQ("/?code=a%2&state=s1");
    assert_int_equal(
        kl_cli_oauth_redirect_parse(r, strlen(r), "s1", code, sizeof(code), err, sizeof(err)),
        KL_EINVAL);
}

static void test_oauth_error_text(void **state)
{
    (void)state;
    char out[256];
    json_t *j = json_pack("{s:s, s:s}", "error", "invalid_grant", "error_description",
                          "AADSTS70008: The refresh token has expired.\r\nTrace ID: x");
    kl_cli_oauth_error_text(400, j, out, sizeof(out));
    assert_string_equal(out, "invalid_grant: AADSTS70008: The refresh token has expired.");
    json_decref(j);
    kl_cli_oauth_error_text(502, NULL, out, sizeof(out));
    assert_string_equal(out, "HTTP 502");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_login_dir),
        cmocka_unit_test_setup_teardown(test_login_file_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_login_file_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transport_choice, setup, teardown),
        cmocka_unit_test(test_login_args),
        cmocka_unit_test(test_sign_in_settings_args),
        cmocka_unit_test(test_pkce),
        cmocka_unit_test(test_form_and_resource),
        cmocka_unit_test(test_redirect_parse),
        cmocka_unit_test(test_oauth_error_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
