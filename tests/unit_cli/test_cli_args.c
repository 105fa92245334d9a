/* Unit tests of the keyless CLI's pure parts: command-line parsing, table layout, the
 * exit-code mapping, error lines, request paths, scopes and role definition files, and
 * what the transport says when the admin socket is missing or dead. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/authz.h"
#include "cli/client.h"
#include "cli/commands.h"
#include "cli/http.h"
#include "cli/identity_ids.h"
#include "cli/output.h"
#include "common/err.h"
#include "common/paths.h"
#include "rbac/scope.h"

#define ARGV(...) ((char *const[]){"keyless", __VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((char *const[]){"keyless", __VA_ARGS__}) / sizeof(char *)))
#define PARSE(a, err, ...)                                                                         \
    kl_cli_args_parse(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), (a), (err), sizeof(err))

/* ---- argument parsing ---- */

#define MI_RG "/subscriptions/s/resourceGroups/rg"
#define MI_UAMI MI_RG "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/"

static void test_identity_commands(void **state)
{
    (void)state;
    kl_cli_args a;
    char err[512];
    assert_int_equal(PARSE(&a, err, "identity", "create", "id1", "--location", "x"), 0);
    assert_int_equal(a.cmd, KL_CLI_CMD_IDENTITY_CREATE);
    assert_int_equal(PARSE(&a, err, "identity", "assign", "id1", "--resource",
                           MI_RG "/providers/Microsoft.Web/sites/w", "--resource",
                           MI_RG "/providers/microsoft.compute/VIRTUALMACHINES/v"),
                     0);
    assert_int_equal(a.cmd, KL_CLI_CMD_IDENTITY_ASSIGN);
    assert_int_equal(a.n_resource, 2);
    assert_int_equal(PARSE(&a, err, "identity", "remove", "system"), KL_EINVAL);
    assert_string_equal(err, "identity remove: missing --resource ID (a site, VM or account id)");
    /* Only resources that carry identities, as whole ids. */
    assert_int_equal(PARSE(&a, err, "identity", "assign", "x", "--resource", MI_UAMI "u"),
                     KL_EINVAL);
    assert_int_equal(PARSE(&a, err, "identity", "assign", "x", "--resource", "web"), KL_EINVAL);
    assert_int_equal(PARSE(&a, err, "identity", "assign", "x", "--resource",
                           MI_RG "/providers/Microsoft.Web/sites/w/slots/s"),
                     KL_EINVAL);
    assert_int_equal(PARSE(&a, err, "site", "create", "w", "--assign-identity", "system",
                           "--assign-identity", "id1"),
                     0);
    assert_int_equal(a.cmd, KL_CLI_CMD_SITE_CREATE);
    assert_int_equal(a.n_assign_identity, 2);
    assert_int_equal(PARSE(&a, err, "vm", "create", "v", "--assign-identity", "system",
                           "--assign-identity", "system"),
                     KL_EINVAL);
    assert_int_equal(PARSE(&a, err, "vm", "show", "v", "--assign-identity", "system"), KL_EINVAL);
    assert_string_equal(err, "vm show does not take --assign-identity");
    assert_int_equal(PARSE(&a, err, "site", "delete", "w"), 0);
    assert_int_equal(a.cmd, KL_CLI_CMD_SITE_DELETE);
    assert_string_equal(kl_cli_cmd_name(KL_CLI_CMD_VM_DELETE), "vm delete");
}

static char *identity_id(const char *x)
{
    kl_buf b;
    kl_buf_init(&b, 4096);
    if (kl_cli_identity_id(x, "s", "rg", &b) < 0) {
        kl_buf_free(&b);
        return NULL;
    }
    return (char *)b.data;
}

/* The PATCH body as compact sorted JSON text, or "" for "nothing to change". */
static char *patch_text(const char *current, const char *uami, bool add)
{
    json_t *cur = current ? json_loads(current, 0, NULL) : NULL;
    json_t *body = NULL;
    bool changes = true;
    assert_int_equal(kl_cli_identity_patch(cur, uami, add, &body, &changes), 0);
    char *s = changes ? json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS) : strdup("");
    assert_true(changes == (body != NULL));
    json_decref(cur);
    json_decref(body);
    return s;
}

#define ASSERT_PATCH(cur, uami, add, want)                                                         \
    do {                                                                                           \
        char *got_ = patch_text(cur, uami, add);                                                   \
        assert_string_equal(got_, want);                                                           \
        free(got_);                                                                                \
    } while (0)

static void test_identity_helpers(void **state)
{
    (void)state;
    assert_string_equal(kl_cli_resource_kind(MI_RG "/providers/Microsoft.Web/sites/w")->noun,
                        "site");
    assert_string_equal(
        kl_cli_resource_kind(MI_RG "/providers/Microsoft.CognitiveServices/accounts/a")
            ->api_version,
        "2024-10-01");
    assert_null(kl_cli_resource_kind(MI_RG "/providers/Microsoft.Web/sitesx/w"));
    assert_null(kl_cli_resource_kind(MI_RG "/providers/Microsoft.Web/sites/"));
    assert_null(kl_cli_resource_kind("/subscriptions/s/providers/Microsoft.Web/sites/w"));

    char *id = identity_id("u1");
    assert_string_equal(id, MI_UAMI "u1");
    free(id);
    id = identity_id(MI_UAMI "other");
    assert_string_equal(id, MI_UAMI "other");
    free(id);
    assert_null(identity_id(MI_RG "/providers/Microsoft.Web/sites/w"));
    assert_null(identity_id("a/b"));

    const char *sys_user = "{\"type\":\"SystemAssigned, UserAssigned\",\"userAssignedIdentities\":"
                           "{\"" MI_UAMI "a\":{},\"" MI_UAMI "b\":{}}}";
    /* system: on when off, off when on; the user-assigned ones are not named. */
    ASSERT_PATCH(NULL, NULL, true, "{\"identity\":{\"type\":\"SystemAssigned\"}}");
    ASSERT_PATCH(sys_user, NULL, true, "");
    ASSERT_PATCH(sys_user, NULL, false, "{\"identity\":{\"type\":\"UserAssigned\"}}");
    ASSERT_PATCH("{\"type\":\"SystemAssigned\"}", NULL, false,
                 "{\"identity\":{\"type\":\"None\"}}");
    /* user-assigned: only the one that changes is named; any case matches. */
    ASSERT_PATCH("{\"type\":\"SystemAssigned\"}", MI_UAMI "c", true,
                 "{\"identity\":{\"type\":\"SystemAssigned, UserAssigned\","
                 "\"userAssignedIdentities\":{\"" MI_UAMI "c\":{}}}}");
    ASSERT_PATCH(sys_user, MI_UAMI "A", true, "");
    ASSERT_PATCH(sys_user, MI_UAMI "A", false,
                 "{\"identity\":{\"type\":\"SystemAssigned, UserAssigned\","
                 "\"userAssignedIdentities\":{\"" MI_UAMI "A\":null}}}");
    ASSERT_PATCH("{\"type\":\"UserAssigned\",\"userAssignedIdentities\":{\"" MI_UAMI "a\":{}}}",
                 MI_UAMI "a", false, "{\"identity\":{\"type\":\"None\"}}");
    ASSERT_PATCH(NULL, MI_UAMI "a", false, "");
}

static void test_global_options_anywhere(void **state)
{
    (void)state;
    kl_cli_args a;
    char err[256];

    assert_int_equal(PARSE(&a, err, "--data-dir", "/d", "-o", "json", "account", "show", "demo",
                           "--subscription", "s1", "--resource-group=rg1"),
                     0);
    assert_int_equal(a.cmd, KL_CLI_CMD_ACCOUNT_SHOW);
    assert_string_equal(a.data_dir, "/d");
    assert_int_equal(a.output, KL_CLI_OUTPUT_JSON);
    assert_string_equal(a.subscription, "s1");
    assert_string_equal(a.resource_group, "rg1");
    assert_int_equal(a.npos, 1);
    assert_string_equal(a.pos[0], "demo");

    /* Between noun and verb, and between positionals. */
    assert_int_equal(
        PARSE(&a, err, "deployment", "--output=table", "show", "acc", "--data-dir=/x", "dep"), 0);
    assert_int_equal(a.cmd, KL_CLI_CMD_DEPLOYMENT_SHOW);
    assert_int_equal(a.output, KL_CLI_OUTPUT_TABLE);
    assert_string_equal(a.data_dir, "/x");
    assert_string_equal(a.pos[0], "acc");
    assert_string_equal(a.pos[1], "dep");
    assert_null(a.subscription);
    assert_null(a.resource_group);

    /* The last occurrence wins. */
    assert_int_equal(PARSE(&a, err, "-o", "json", "health", "--output", "table"), 0);
    assert_int_equal(a.cmd, KL_CLI_CMD_HEALTH);
    assert_int_equal(a.output, KL_CLI_OUTPUT_TABLE);
}

static void test_every_command_resolves(void **state)
{
    (void)state;
    kl_cli_args a;
    char err[256];
    assert_int_equal(PARSE(&a, err, "account", "create", "n"), 0);
    assert_int_equal(a.cmd, KL_CLI_CMD_ACCOUNT_CREATE);
    assert_int_equal(PARSE(&a, err, "account", "update", "n", "--disable-local-auth", "true"), 0);
    assert_int_equal(a.cmd, KL_CLI_CMD_ACCOUNT_UPDATE);
    assert_int_equal(PARSE(&a, err, "account", "list"), 0);
    assert_int_equal(a.cmd, KL_CLI_CMD_ACCOUNT_LIST);
    assert_int_equal(a.npos, 0);
    assert_int_equal(PARSE(&a, err, "account", "delete", "n"), 0);
    assert_int_equal(a.cmd, KL_CLI_CMD_ACCOUNT_DELETE);
    assert_int_equal(PARSE(&a, err, "deployment", "create", "a", "d"), 0);
    assert_int_equal(a.cmd, KL_CLI_CMD_DEPLOYMENT_CREATE);
    assert_int_equal(PARSE(&a, err, "deployment", "list", "a"), 0);
    assert_int_equal(a.cmd, KL_CLI_CMD_DEPLOYMENT_LIST);
    assert_int_equal(PARSE(&a, err, "deployment", "delete", "a", "d"), 0);
    assert_int_equal(a.cmd, KL_CLI_CMD_DEPLOYMENT_DELETE);
    assert_int_equal(PARSE(&a, err, "keys", "list", "a"), 0);
    assert_int_equal(a.cmd, KL_CLI_CMD_KEYS_LIST);
    assert_int_equal(PARSE(&a, err, "keys", "regenerate", "a", "KEY2"), 0);
    assert_int_equal(a.cmd, KL_CLI_CMD_KEYS_REGENERATE);
    assert_string_equal(a.pos[1], "KEY2");
    assert_string_equal(kl_cli_cmd_name(KL_CLI_CMD_KEYS_REGENERATE), "keys regenerate");
}

static void test_missing_arguments_are_usage_errors(void **state)
{
    (void)state;
    kl_cli_args a;
    char err[256];

    assert_int_equal(kl_cli_args_parse(1, ARGV(NULL), &a, err, sizeof(err)), KL_EINVAL);
    assert_string_equal(err, "no command given");

    assert_int_equal(PARSE(&a, err, "account"), KL_EINVAL);
    assert_non_null(strstr(err, "'account' needs a command"));

    assert_int_equal(PARSE(&a, err, "account", "show"), KL_EINVAL);
    assert_string_equal(err, "account show: missing NAME");

    assert_int_equal(PARSE(&a, err, "deployment", "create", "acc"), KL_EINVAL);
    assert_string_equal(err, "deployment create: missing NAME");

    assert_int_equal(PARSE(&a, err, "keys", "regenerate", "acc"), KL_EINVAL);
    assert_string_equal(err, "keys regenerate: missing KEY");

    assert_int_equal(PARSE(&a, err, "account", "show", "a", "b"), KL_EINVAL);
    assert_string_equal(err, "account show: unexpected argument 'b'");

    assert_int_equal(PARSE(&a, err, "health", "now"), KL_EINVAL);
    assert_string_equal(err, "health: unexpected argument 'now'");

    /* An empty name would turn "show NAME" into a request for the list. */
    assert_int_equal(PARSE(&a, err, "account", "show", ""), KL_EINVAL);
    assert_string_equal(err, "account show: NAME must not be empty");

    /* A value-taking option at the end, or followed by another option. */
    assert_int_equal(PARSE(&a, err, "account", "list", "--data-dir"), KL_EINVAL);
    assert_string_equal(err, "--data-dir needs a value");
    assert_int_equal(
        PARSE(&a, err, "deployment", "create", "a", "d", "--model", "--backend", "echo"),
        KL_EINVAL);
    assert_string_equal(err, "--model needs a value");
    assert_int_equal(PARSE(&a, err, "account", "list", "--subscription="), KL_EINVAL);
    assert_string_equal(err, "--subscription needs a non-empty value");
}

static void test_unknown_options_and_commands(void **state)
{
    (void)state;
    kl_cli_args a;
    char err[256];

    assert_int_equal(PARSE(&a, err, "account", "list", "--colour"), KL_EINVAL);
    assert_string_equal(err, "unknown option '--colour'");
    /* The value of an unknown --x=value is not echoed (it might be a secret). */
    assert_int_equal(PARSE(&a, err, "account", "list", "--api-key=sk-secret"), KL_EINVAL);
    assert_string_equal(err, "unknown option '--api-key'");
    assert_int_equal(PARSE(&a, err, "-x", "account", "list"), KL_EINVAL);
    assert_string_equal(err, "unknown option '-x'");
    assert_int_equal(PARSE(&a, err, "accounts", "list"), KL_EINVAL);
    assert_string_equal(err, "unknown command 'accounts'");
    assert_int_equal(PARSE(&a, err, "account", "frob", "x"), KL_EINVAL);
    assert_non_null(strstr(err, "unknown command 'account frob'"));
    assert_int_equal(PARSE(&a, err, "-o", "yaml", "health"), KL_EINVAL);
    assert_string_equal(err, "-o must be json or table, not 'yaml'");
    assert_int_equal(PARSE(&a, err, "health", "--version=1"), KL_EINVAL);
    assert_string_equal(err, "--version takes no value");

    /* A real option, but not one this command takes. */
    assert_int_equal(PARSE(&a, err, "account", "show", "a", "--backend", "echo"), KL_EINVAL);
    assert_string_equal(err, "account show does not take --backend");
    assert_int_equal(PARSE(&a, err, "--kind", "OpenAI", "deployment", "list", "a"), KL_EINVAL);
    assert_string_equal(err, "deployment list does not take --kind");
}

static void test_disable_local_auth_forms(void **state)
{
    (void)state;
    kl_cli_args a;
    char err[256];

    assert_int_equal(PARSE(&a, err, "account", "create", "demo"), 0);
    assert_false(a.disable_local_auth);
    assert_int_equal(a.opts, 0);

    assert_int_equal(PARSE(&a, err, "account", "create", "demo", "--disable-local-auth"), 0);
    assert_true(a.disable_local_auth);
    assert_false(a.disable_local_auth_valued);

    assert_int_equal(PARSE(&a, err, "account", "create", "--disable-local-auth", "demo"), 0);
    assert_true(a.disable_local_auth);
    assert_string_equal(a.pos[0], "demo");

    assert_int_equal(PARSE(&a, err, "account", "update", "demo", "--disable-local-auth", "false"),
                     0);
    assert_false(a.disable_local_auth);
    assert_true(a.disable_local_auth_valued);

    assert_int_equal(PARSE(&a, err, "account", "update", "--disable-local-auth=true", "demo"), 0);
    assert_true(a.disable_local_auth);
    assert_true(a.disable_local_auth_valued);

    /* update must say what to change, and which way. */
    assert_int_equal(PARSE(&a, err, "account", "update", "demo"), KL_EINVAL);
    assert_string_equal(err, "account update: nothing to change (give --disable-local-auth "
                             "true|false, --public-network-access, --default-action or "
                             "--allow-ip)");
    assert_int_equal(PARSE(&a, err, "account", "update", "demo", "--disable-local-auth"),
                     KL_EINVAL);
    assert_string_equal(err, "account update: missing --disable-local-auth true|false");
    assert_int_equal(PARSE(&a, err, "account", "update", "demo", "--disable-local-auth=yes"),
                     KL_EINVAL);
    assert_string_equal(err, "--disable-local-auth takes true or false, not 'yes'");
}

static void test_network_and_age_options(void **state)
{
    (void)state;
    kl_cli_args a;
    char err[256];
    assert_int_equal(PARSE(&a, err, "account", "update", "demo", "--public-network-access",
                           "disabled", "--default-action", "Deny", "--allow-ip", "10.0.0.0/8",
                           "--allow-ip=2001:db8::/32"),
                     0);
    assert_string_equal(a.public_network_access, "disabled");
    assert_string_equal(a.default_action, "Deny");
    assert_int_equal(a.n_allow_ip, 2);
    assert_string_equal(a.allow_ip[1], "2001:db8::/32");
    assert_int_equal(PARSE(&a, err, "account", "update", "demo", "--public-network-access", "off"),
                     KL_EINVAL);
    assert_string_equal(err, "--public-network-access must be Enabled or Disabled, not 'off'");
    assert_int_equal(PARSE(&a, err, "account", "update", "demo", "--default-action", "Block"),
                     KL_EINVAL);
    assert_int_equal(PARSE(&a, err, "account", "create", "demo", "--allow-ip", "1.2.3.4"),
                     KL_EINVAL);
    assert_int_equal(PARSE(&a, err, "keys", "list", "demo", "--older-than", "90d"), 0);
    assert_int_equal(a.older_than_s, 90 * 86400);
    assert_int_equal(PARSE(&a, err, "keys", "list", "demo", "--older-than", "2w"), 0);
    assert_int_equal(a.older_than_s, 14 * 86400);
    assert_int_equal(PARSE(&a, err, "keys", "list", "demo", "--older-than", "90"), KL_EINVAL);
    assert_int_equal(PARSE(&a, err, "keys", "list", "demo", "--older-than", "d"), KL_EINVAL);
    assert_int_equal(PARSE(&a, err, "keys", "list", "demo", "--older-than", "0d"), KL_EINVAL);
    assert_int_equal(PARSE(&a, err, "keys", "list", "demo", "--older-than", "90x"), KL_EINVAL);
    assert_int_equal(PARSE(&a, err, "keys", "list", "demo", "--older-than", "9dd"), KL_EINVAL);
    assert_int_equal(PARSE(&a, err, "keys", "list", "demo", "--older-than", "-1d"), KL_EINVAL);
    assert_int_equal(PARSE(&a, err, "keys", "list", "demo", "--older-than", "99999999d"),
                     KL_EINVAL);
}

static void test_deployment_create_options(void **state)
{
    (void)state;
    kl_cli_args a;
    char err[256];

    assert_int_equal(PARSE(&a, err, "deployment", "create", "acc", "dep", "--backend",
                           "http://127.0.0.1:8000/v1", "--model", "m", "--upstream-model", "llama3",
                           "--credential-env", "UPSTREAM_KEY"),
                     0);
    assert_string_equal(a.backend, "http://127.0.0.1:8000/v1");
    assert_string_equal(a.model, "m");
    assert_string_equal(a.upstream_model, "llama3");
    assert_string_equal(a.credential_env, "UPSTREAM_KEY");

    assert_int_equal(PARSE(&a, err, "deployment", "create", "acc", "dep", "--backend", "echo"), 0);
    assert_int_equal(PARSE(&a, err, "deployment", "create", "acc", "dep", "--backend", "ftp://x"),
                     KL_EINVAL);
    assert_string_equal(err,
                        "deployment create: --backend must be echo or an http:// or https:// URL");
    assert_int_equal(PARSE(&a, err, "deployment", "create", "acc", "dep", "--credential-env", "K"),
                     KL_EINVAL);
    assert_string_equal(err, "deployment create: --credential-env needs --backend URL");
    assert_int_equal(PARSE(&a, err, "deployment", "create", "acc", "dep", "--backend", "echo",
                           "--upstream-model", "x"),
                     KL_EINVAL);
    assert_string_equal(err, "deployment create: --upstream-model needs --backend URL");

    assert_int_equal(PARSE(&a, err, "keys", "regenerate", "acc", "key3"), KL_EINVAL);
    assert_string_equal(err, "keys regenerate: KEY must be key1 or key2, not 'key3'");
}

static void test_help_and_end_of_options(void **state)
{
    (void)state;
    kl_cli_args a;
    char err[256];

    /* --help wins over missing arguments, and keeps the noun for the help page. */
    assert_int_equal(PARSE(&a, err, "account", "create", "--help"), 0);
    assert_true(a.help);
    assert_string_equal(a.noun, "account");
    assert_int_equal(PARSE(&a, err, "-h"), 0);
    assert_true(a.help);
    assert_null(a.noun);
    assert_int_equal(PARSE(&a, err, "--version"), 0);
    assert_true(a.version);
    /* An unknown option stays an error even with --help. */
    assert_int_equal(PARSE(&a, err, "--help", "--nope"), KL_EINVAL);

    /* After "--" everything is an argument. */
    assert_int_equal(PARSE(&a, err, "account", "show", "--", "--help"), 0);
    assert_false(a.help);
    assert_string_equal(a.pos[0], "--help");
}

/* The CLI looks for the socket where keylessd puts it: both call the one rule in
 * common/paths.c (no fallback under /tmp, as keylessd has none). */
static void test_default_data_dir(void **state)
{
    (void)state;
    char out[128];
    assert_int_equal(kl_paths_default_data_dir(true, "/x", "/home/u", out, sizeof(out)), 0);
    assert_string_equal(out, "/var/lib/keyless");
    assert_int_equal(kl_paths_default_data_dir(false, "/xdg", "/home/u", out, sizeof(out)), 0);
    assert_string_equal(out, "/xdg/keyless");
    assert_int_equal(kl_paths_default_data_dir(false, "", "/home/u", out, sizeof(out)), 0);
    assert_string_equal(out, "/home/u/.local/share/keyless");
    assert_int_equal(kl_paths_default_data_dir(false, NULL, "/home/u", out, sizeof(out)), 0);
    assert_string_equal(out, "/home/u/.local/share/keyless");
    /* A relative XDG_DATA_HOME is ignored, as the XDG spec (and keylessd) say. */
    assert_int_equal(kl_paths_default_data_dir(false, "rel/dir", "/home/u", out, sizeof(out)), 0);
    assert_string_equal(out, "/home/u/.local/share/keyless");
    assert_int_equal(kl_paths_default_data_dir(false, NULL, NULL, out, sizeof(out)), KL_ENOTFOUND);
    assert_string_equal(out, "");
    assert_int_equal(kl_paths_default_data_dir(false, NULL, "", out, sizeof(out)), KL_ENOTFOUND);
    assert_int_equal(kl_paths_default_data_dir(false, NULL, "rel", out, sizeof(out)), KL_ENOTFOUND);
    assert_int_equal(kl_paths_default_data_dir(false, "/a/very/long/path", NULL, out, 10),
                     KL_ETOOBIG);
    assert_string_equal(out, "");
}

/* ---- directory and RBAC commands ---- */

static void test_rbac_commands_resolve(void **state)
{
    (void)state;
    kl_cli_args a;
    char err[256];

    assert_int_equal(PARSE(&a, err, "tenant", "show"), 0);
    assert_int_equal(a.cmd, KL_CLI_CMD_TENANT_SHOW);
    assert_int_equal(PARSE(&a, err, "app", "create", "my app"), 0);
    assert_int_equal(a.cmd, KL_CLI_CMD_APP_CREATE);
    assert_string_equal(a.pos[0], "my app");
    assert_int_equal(PARSE(&a, err, "app", "list"), 0);
    assert_int_equal(a.cmd, KL_CLI_CMD_APP_LIST);
    assert_int_equal(PARSE(&a, err, "app", "disable", "x"), 0);
    assert_int_equal(a.cmd, KL_CLI_CMD_APP_DISABLE);
    assert_int_equal(PARSE(&a, err, "app", "enable", "x"), 0);
    assert_int_equal(a.cmd, KL_CLI_CMD_APP_ENABLE);

    assert_int_equal(PARSE(&a, err, "role", "definition", "list", "--custom"), 0);
    assert_int_equal(a.cmd, KL_CLI_CMD_ROLE_DEFINITION_LIST);
    assert_string_equal(a.verb, "definition");
    assert_string_equal(a.verb2, "list");
    assert_true(a.custom);
    assert_int_equal(a.npos, 0);
    assert_int_equal(PARSE(&a, err, "role", "definition", "show", "Reader"), 0);
    assert_int_equal(a.cmd, KL_CLI_CMD_ROLE_DEFINITION_SHOW);
    assert_string_equal(a.pos[0], "Reader");
    assert_int_equal(PARSE(&a, err, "role", "definition", "create", "--file=r.json"), 0);
    assert_int_equal(a.cmd, KL_CLI_CMD_ROLE_DEFINITION_CREATE);
    assert_string_equal(a.file, "r.json");
    assert_int_equal(PARSE(&a, err, "role", "definition", "delete", "My Role", "--scope", "/"), 0);
    assert_int_equal(a.cmd, KL_CLI_CMD_ROLE_DEFINITION_DELETE);

    assert_int_equal(PARSE(&a, err, "role", "assignment", "create", "--assignee", "my-app",
                           "--role", "Cognitive Services OpenAI User", "--account", "demo"),
                     0);
    assert_int_equal(a.cmd, KL_CLI_CMD_ROLE_ASSIGNMENT_CREATE);
    assert_string_equal(a.assignee, "my-app");
    assert_string_equal(a.role, "Cognitive Services OpenAI User");
    assert_string_equal(a.account, "demo");
    assert_null(a.scope);
    assert_int_equal(PARSE(&a, err, "role", "assignment", "list"), 0);
    assert_int_equal(a.cmd, KL_CLI_CMD_ROLE_ASSIGNMENT_LIST);
    assert_false(a.all);
    assert_int_equal(PARSE(&a, err, "role", "assignment", "list", "--all", "--assignee", "x",
                           "--scope", "/subscriptions/s"),
                     0);
    assert_true(a.all);
    assert_string_equal(a.scope, "/subscriptions/s");
    assert_int_equal(
        PARSE(&a, err, "role", "assignment", "delete", "0D1E2F3A-0000-4000-8000-000000000001"), 0);
    assert_int_equal(a.cmd, KL_CLI_CMD_ROLE_ASSIGNMENT_DELETE);
    assert_int_equal(PARSE(&a, err, "role", "check", "--assignee", "x", "--action", "A/read",
                           "--scope", "/", "--data"),
                     0);
    assert_int_equal(a.cmd, KL_CLI_CMD_ROLE_CHECK);
    assert_true(a.data);
    assert_string_equal(a.action, "A/read");
    assert_string_equal(kl_cli_cmd_name(KL_CLI_CMD_ROLE_ASSIGNMENT_CREATE),
                        "role assignment create");
    assert_string_equal(kl_cli_cmd_name(KL_CLI_CMD_ROLE_CHECK), "role check");

    /* Global options between the three words. */
    assert_int_equal(PARSE(&a, err, "role", "-o", "json", "definition", "--custom", "list"), 0);
    assert_int_equal(a.cmd, KL_CLI_CMD_ROLE_DEFINITION_LIST);
    assert_int_equal(a.output, KL_CLI_OUTPUT_JSON);

    /* --data-dir is not --data. */
    assert_int_equal(PARSE(&a, err, "role", "check", "--assignee", "x", "--action", "a", "--scope",
                           "/", "--data-dir", "/d"),
                     0);
    assert_false(a.data);
    assert_string_equal(a.data_dir, "/d");
}

static void test_token_service_commands(void **state)
{
    (void)state;
    kl_cli_args a;
    char err[256];

    assert_int_equal(
        PARSE(&a, err, "app", "secret", "add", "ci", "--days", "30", "--display-name", "nightly"),
        0);
    assert_int_equal(a.cmd, KL_CLI_CMD_APP_SECRET_ADD);
    assert_string_equal(a.pos[0], "ci");
    assert_string_equal(a.days, "30");
    assert_string_equal(a.display_name, "nightly");
    assert_int_equal(PARSE(&a, err, "app", "secret", "list", "ci"), 0);
    assert_int_equal(a.cmd, KL_CLI_CMD_APP_SECRET_LIST);
    assert_int_equal(PARSE(&a, err, "app", "secret", "remove", "ci", "k"), 0);
    assert_int_equal(a.cmd, KL_CLI_CMD_APP_SECRET_REMOVE);
    assert_string_equal(a.pos[1], "k");
    assert_int_equal(PARSE(&a, err, "app", "secret", "remove", "ci"), KL_EINVAL);
    assert_int_equal(PARSE(&a, err, "app", "secret", "list", "ci", "--days", "3"), KL_EINVAL);
    assert_int_equal(PARSE(&a, err, "signing-key", "list"), 0);
    assert_int_equal(a.cmd, KL_CLI_CMD_SIGNING_KEY_LIST);
    assert_int_equal(PARSE(&a, err, "signing-key", "rotate"), 0);
    assert_false(a.revoke_previous);
    assert_int_equal(PARSE(&a, err, "signing-key", "rotate", "--revoke-previous"), 0);
    assert_int_equal(a.cmd, KL_CLI_CMD_SIGNING_KEY_ROTATE);
    assert_true(a.revoke_previous);
    assert_int_equal(PARSE(&a, err, "signing-key", "list", "--revoke-previous"), KL_EINVAL);
    assert_int_equal(PARSE(&a, err, "signin", "list", "--failed", "--client", "c"), 0);
    assert_int_equal(a.cmd, KL_CLI_CMD_SIGNIN_LIST);
    assert_true(a.failed);
    assert_string_equal(a.client, "c");
}

/* keyless run: everything after "--" belongs to the command, options included; the
 * site and the command are both required. */
static void test_run_command(void **state)
{
    (void)state;
    kl_cli_args a;
    char err[256];
    assert_int_equal(PARSE(&a, err, "--data-dir", "/d", "run", "--site", "web", "--", "node",
                           "--version", "--site", "x"),
                     0);
    assert_int_equal(a.cmd, KL_CLI_CMD_RUN);
    assert_string_equal(a.site, "web");
    assert_string_equal(a.data_dir, "/d");
    assert_int_equal(a.run_argc, 4);
    assert_string_equal(a.run_argv[0], "node");
    assert_string_equal(a.run_argv[1], "--version");
    assert_string_equal(a.run_argv[3], "x");
    assert_null(a.run_argv[4]);
    assert_int_equal(PARSE(&a, err, "run", "--", "node"), KL_EINVAL);
    assert_non_null(strstr(err, "--site"));
    assert_int_equal(PARSE(&a, err, "run", "--site", "web", "--"), KL_EINVAL);
    assert_non_null(strstr(err, "command"));
    assert_int_equal(PARSE(&a, err, "run", "--site", "web", "node"), KL_EINVAL);
    assert_int_equal(PARSE(&a, err, "account", "list", "--site", "web"), KL_EINVAL);
}

static void test_rbac_usage_errors(void **state)
{
    (void)state;
    kl_cli_args a;
    char err[256];

    assert_int_equal(PARSE(&a, err, "role"), KL_EINVAL);
    assert_string_equal(err, "'role' needs a command: definition, assignment, check");
    assert_int_equal(PARSE(&a, err, "role", "definition"), KL_EINVAL);
    assert_string_equal(err, "'role definition' needs a command: list, show, create, delete");
    assert_int_equal(PARSE(&a, err, "role", "assignment", "show", "x"), KL_EINVAL);
    assert_string_equal(err, "unknown command 'role assignment show' (try: create, list, delete)");
    assert_int_equal(PARSE(&a, err, "role", "frob"), KL_EINVAL);
    assert_string_equal(err, "unknown command 'role frob' (try: definition, assignment, check)");
    assert_int_equal(PARSE(&a, err, "app"), KL_EINVAL);
    assert_string_equal(err, "'app' needs a command: create, list, show, delete, disable, enable, "
                             "cert, federated, secret");
    assert_int_equal(PARSE(&a, err, "app", "show"), KL_EINVAL);
    assert_string_equal(err, "app show: missing APP");
    assert_int_equal(PARSE(&a, err, "app", "cert"), KL_EINVAL);
    assert_string_equal(err, "'app cert' needs a command: add, list, remove");
    assert_int_equal(PARSE(&a, err, "app", "cert", "add", "x"), KL_EINVAL);
    assert_string_equal(err, "app cert add: missing FILE");
    assert_int_equal(PARSE(&a, err, "app", "cert", "remove", "x", "k"), 0);
    assert_int_equal(a.cmd, KL_CLI_CMD_APP_CERT_REMOVE);
    assert_string_equal(a.pos[1], "k");
    assert_int_equal(PARSE(&a, err, "app", "federated", "add", "x", "n", "https://i"), KL_EINVAL);
    assert_string_equal(err, "app federated add: missing SUBJECT");
    assert_int_equal(PARSE(&a, err, "app", "federated", "add", "x", "n", "https://i", "s"), 0);
    assert_int_equal(a.cmd, KL_CLI_CMD_APP_FEDERATED_ADD);
    assert_string_equal(a.pos[3], "s");
    assert_int_equal(PARSE(&a, err, "app", "federated", "add", "x", "n", "https://i", "s", "y"),
                     KL_EINVAL);
    assert_int_equal(PARSE(&a, err, "tenant", "show", "x"), KL_EINVAL);
    assert_string_equal(err, "tenant show: unexpected argument 'x'");
    assert_int_equal(PARSE(&a, err, "role", "definition", "show"), KL_EINVAL);
    assert_string_equal(err, "role definition show: missing ROLE");

    /* Required options. */
    assert_int_equal(PARSE(&a, err, "role", "definition", "create"), KL_EINVAL);
    assert_string_equal(err, "role definition create: missing --file ROLE.json");
    assert_int_equal(
        PARSE(&a, err, "role", "assignment", "create", "--role", "Reader", "--scope", "/"),
        KL_EINVAL);
    assert_string_equal(err, "role assignment create: missing --assignee");
    assert_int_equal(
        PARSE(&a, err, "role", "assignment", "create", "--assignee", "x", "--scope", "/"),
        KL_EINVAL);
    assert_string_equal(err, "role assignment create: missing --role");
    assert_int_equal(
        PARSE(&a, err, "role", "assignment", "create", "--assignee", "x", "--role", "Reader"),
        KL_EINVAL);
    assert_string_equal(err, "role assignment create: missing --scope SCOPE (or --account NAME)");
    assert_int_equal(PARSE(&a, err, "role", "check", "--assignee", "x", "--scope", "/"), KL_EINVAL);
    assert_string_equal(err, "role check: missing --action");
    assert_int_equal(PARSE(&a, err, "role", "check", "--action", "a", "--account", "demo"),
                     KL_EINVAL);
    assert_string_equal(err, "role check: missing --assignee");
    assert_int_equal(PARSE(&a, err, "role", "check", "--assignee", "x", "--action", "a"),
                     KL_EINVAL);
    assert_string_equal(err, "role check: missing --scope SCOPE (or --account NAME)");

    /* --scope and --account are two ways to say one thing. */
    assert_int_equal(PARSE(&a, err, "role", "assignment", "create", "--assignee", "x", "--role",
                           "r", "--scope", "/", "--account", "demo"),
                     KL_EINVAL);
    assert_string_equal(err, "role assignment create: give --scope or --account, not both");
    assert_int_equal(PARSE(&a, err, "role", "assignment", "list", "--scope", "subscriptions/s"),
                     KL_EINVAL);
    assert_string_equal(err, "role assignment list: invalid --scope: " KL_SCOPE_RULE);
    assert_int_equal(PARSE(&a, err, "role", "assignment", "list", "--scope", "/subscriptions//x"),
                     KL_EINVAL);
    assert_string_equal(err, "role assignment list: invalid --scope: " KL_SCOPE_RULE);
    assert_int_equal(PARSE(&a, err, "role", "assignment", "list", "--account", "a/b"), KL_EINVAL);
    assert_string_equal(err, "role assignment list: invalid --account: 'a/b' is not an account "
                             "name");

    /* Options of other commands. */
    assert_int_equal(PARSE(&a, err, "role", "assignment", "create", "--assignee", "x", "--role",
                           "r", "--scope", "/", "--all"),
                     KL_EINVAL);
    assert_string_equal(err, "role assignment create does not take --all");
    assert_int_equal(PARSE(&a, err, "role", "assignment", "list", "--custom"), KL_EINVAL);
    assert_string_equal(err, "role assignment list does not take --custom");
    assert_int_equal(PARSE(&a, err, "app", "list", "--scope", "/"), KL_EINVAL);
    assert_string_equal(err, "app list does not take --scope");
    assert_int_equal(PARSE(&a, err, "role", "check", "--assignee", "x", "--action", "a", "--scope",
                           "/", "--role", "r"),
                     KL_EINVAL);
    assert_string_equal(err, "role check does not take --role");
    assert_int_equal(PARSE(&a, err, "tenant", "show", "--data"), KL_EINVAL);
    assert_string_equal(err, "tenant show does not take --data");
    assert_int_equal(PARSE(&a, err, "role", "check", "--data=yes"), KL_EINVAL);
    assert_string_equal(err, "--data takes no value");

    /* An assignment is deleted by GUID or full id; a full id carries its scope. */
    assert_int_equal(PARSE(&a, err, "role", "assignment", "delete", "Reader"), KL_EINVAL);
    assert_string_equal(err, "role assignment delete: ASSIGNMENT must be the assignment's GUID or "
                             "its full id, not 'Reader'");
    char id[] = "/subscriptions/s/providers/Microsoft.Authorization/roleAssignments/"
                "0d1e2f3a-0000-4000-8000-000000000001";
    assert_int_equal(PARSE(&a, err, "role", "assignment", "delete", id), 0);
    assert_int_equal(PARSE(&a, err, "role", "assignment", "delete", id, "--scope", "/"), KL_EINVAL);
    assert_string_equal(err, "role assignment delete: a full assignment id names its scope; drop "
                             "--scope/--account");
    assert_int_equal(PARSE(&a, err, "role", "assignment", "delete",
                           "/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/"
                           "0d1e2f3a-0000-4000-8000-000000000001"),
                     KL_EINVAL);
    assert_non_null(strstr(err, "is not a role assignment id"));

    /* Help for a group needs none of that. */
    assert_int_equal(PARSE(&a, err, "role", "assignment", "create", "--help"), 0);
    assert_true(a.help);
    assert_string_equal(a.noun, "role");
    assert_int_equal(PARSE(&a, err, "role", "--help"), 0);
    assert_string_equal(a.noun, "role");
}

static void test_scope_check(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(kl_cli_scope_check("/", err, sizeof(err)), 0);
    assert_int_equal(kl_cli_scope_check("/subscriptions/s", err, sizeof(err)), 0);
    assert_int_equal(kl_cli_scope_check("/subscriptions/s/", err, sizeof(err)), 0);
    assert_int_equal(kl_cli_scope_check("/subscriptions/0000/resourceGroups/my.rg(1)/providers/"
                                        "Microsoft.CognitiveServices/accounts/demo",
                                        err, sizeof(err)),
                     0);
    assert_int_equal(
        kl_cli_scope_check("/providers/Microsoft.Management/managementGroups/g", err, sizeof(err)),
        0);

    assert_int_equal(kl_cli_scope_check("", err, sizeof(err)), KL_EINVAL);
    assert_string_equal(err, "the scope is empty");
    assert_int_equal(kl_cli_scope_check("subscriptions/s", err, sizeof(err)), KL_EINVAL);
    assert_string_equal(err, KL_SCOPE_RULE);
    assert_int_equal(kl_cli_scope_check("//", err, sizeof(err)), KL_EINVAL);
    assert_int_equal(kl_cli_scope_check("/subscriptions//s", err, sizeof(err)), KL_EINVAL);
    assert_int_equal(kl_cli_scope_check("/subscriptions/s//", err, sizeof(err)), KL_EINVAL);
    assert_int_equal(kl_cli_scope_check("/subscriptions/../x", err, sizeof(err)), KL_EINVAL);
    assert_string_equal(err, KL_SCOPE_RULE);
    assert_int_equal(kl_cli_scope_check("/subscriptions/.", err, sizeof(err)), KL_EINVAL);
    assert_int_equal(kl_cli_scope_check("/subscriptions/s?x=1", err, sizeof(err)), KL_EINVAL);
    assert_string_equal(err, "the character '?' is not allowed in a scope");
    assert_int_equal(kl_cli_scope_check("/subscriptions/a b", err, sizeof(err)), KL_EINVAL);
    assert_string_equal(err, "the byte 0x20 is not allowed in a scope");
    assert_int_equal(kl_cli_scope_check("/subscriptions/a\x1b[2J", err, sizeof(err)), KL_EINVAL);
    assert_string_equal(err, "the byte 0x1b is not allowed in a scope");
    assert_int_equal(kl_cli_scope_check("/subscriptions/a%2Fb", err, sizeof(err)), KL_EINVAL);
    assert_int_equal(kl_cli_scope_check("/subscriptions/caf\xc3\xa9", err, sizeof(err)), KL_EINVAL);

    /* KL_MAX_SCOPE (1024) bytes is the limit, as keylessd has it. */
    char big[1026];
    memset(big, 'a', sizeof(big));
    memcpy(big, "/subscriptions/", 15);
    big[1024] = '\0';
    assert_int_equal(kl_cli_scope_check(big, err, sizeof(err)), 0);
    big[1024] = 'a';
    big[1025] = '\0';
    assert_int_equal(kl_cli_scope_check(big, err, sizeof(err)), KL_EINVAL);
    assert_string_equal(err, KL_SCOPE_RULE);

    assert_true(kl_cli_scope_segment_ok("demo-1", 6));
    assert_false(kl_cli_scope_segment_ok("", 0));
    assert_false(kl_cli_scope_segment_ok("..", 2));
    assert_false(kl_cli_scope_segment_ok("a/b", 3));
}

/* The command table is the one place a command is named: every command has one row,
 * the words of each row parse back to it, and no two rows share words. */
static void test_command_table(void **state)
{
    (void)state;
    const kl_cli_command *row;
    size_t rows = 0;
    for (size_t i = 0; (row = kl_cli_command_at(i)) != NULL; i++, rows++) {
        char words[3][32] = {{0}};
        char *argv[8] = {"keyless"};
        int argc = 1;
        const char *w;
        size_t n;
        for (size_t k = 0; (n = kl_cli_command_word(row->name, k, &w)) > 0; k++) {
            assert_true(k < 3 && n < sizeof(words[k]));
            memcpy(words[k], w, n);
            argv[argc++] = words[k];
        }
        argv[argc++] = "--help"; /* resolves the command without its arguments */
        kl_cli_args a;
        char err[512];
        assert_int_equal(kl_cli_args_parse(argc, argv, &a, err, sizeof(err)), 0);
        assert_int_equal(a.cmd, row->cmd);
        assert_ptr_equal(kl_cli_command_of(row->cmd), row);
        assert_string_equal(kl_cli_cmd_name(row->cmd), row->name);
        assert_non_null(row->run);
        assert_non_null(row->usage);
        for (size_t j = 0; j < i; j++)
            assert_int_not_equal(kl_cli_command_at(j)->cmd, row->cmd);
    }
    /* Every command of the enum has its row. */
    for (int cmd = KL_CLI_CMD_NONE + 1; cmd < KL_CLI_CMD_COUNT; cmd++)
        assert_non_null(kl_cli_command_of((kl_cli_cmd)cmd));
    assert_int_equal(rows, KL_CLI_CMD_COUNT - 1);
    assert_null(kl_cli_command_of(KL_CLI_CMD_NONE));
    assert_string_equal(kl_cli_cmd_name(KL_CLI_CMD_NONE), "");
}

/* The CLI's scope grammar is keylessd's (kl_scope_parse): what the daemon refuses, the
 * CLI refuses before sending anything, with the daemon's words. Before, the CLI had its
 * own grammar that let "..." and over-deep scopes through. */
static void test_scope_grammar_is_the_daemons(void **state)
{
    (void)state;
    kl_cli_args a;
    char err[512];
    /* An all-dot name other than "." and "..". */
    assert_int_equal(kl_cli_scope_check("/subscriptions/...", err, sizeof(err)), KL_EINVAL);
    assert_string_equal(err, KL_SCOPE_RULE);
    assert_int_equal(kl_cli_scope_check("/subscriptions/s/resourceGroups/....", err, sizeof(err)),
                     KL_EINVAL);
    assert_int_equal(PARSE(&a, err, "role", "assignment", "list", "--scope", "/subscriptions/..."),
                     KL_EINVAL);
    assert_string_equal(err, "role assignment list: invalid --scope: " KL_SCOPE_RULE);
    /* Not one of the forms. */
    assert_int_equal(kl_cli_scope_check("/tenants/t", err, sizeof(err)), KL_EINVAL);
    assert_int_equal(kl_cli_scope_check("/subscriptions/s/providers/ns", err, sizeof(err)),
                     KL_EINVAL);

    /* KL_MAX_SCOPE_DEPTH levels: "/", the subscription, the group, then one a resource. */
    char deep[1024] = "/subscriptions/s/resourceGroups/rg/providers/ns";
    size_t n = strlen(deep);
    for (int i = 3; i < KL_MAX_SCOPE_DEPTH; i++, n += 4)
        memcpy(deep + n, "/t/n", 5);
    assert_int_equal(kl_cli_scope_check(deep, err, sizeof(err)), 0);
    assert_int_equal(PARSE(&a, err, "role", "assignment", "list", "--scope", deep), 0);
    memcpy(deep + n, "/t/n", 5);
    assert_int_equal(kl_cli_scope_check(deep, err, sizeof(err)), KL_EINVAL);
    assert_string_equal(err, KL_SCOPE_RULE " " KL_SCOPE_DEPTH_RULE);
    assert_int_equal(PARSE(&a, err, "role", "assignment", "list", "--scope", deep), KL_EINVAL);
    assert_string_equal(err, "role assignment list: invalid --scope: " KL_SCOPE_RULE
                             " " KL_SCOPE_DEPTH_RULE);
    /* The same in a role file's assignableScopes. */
    json_t *file = json_pack("{s:s, s:[s]}", "roleName", "R", "assignableScopes", deep);
    json_t *body = NULL;
    char guid[KL_UUID_LEN + 1];
    assert_int_equal(kl_cli_role_definition_body(file, "/", &body, guid, err, sizeof(err)),
                     KL_EINVAL);
    assert_non_null(strstr(err, KL_SCOPE_DEPTH_RULE));
    json_decref(file);
}

static char *resolved(const char *scope, const char *account, const char *sub, const char *rg,
                      int want_rc)
{
    kl_buf b;
    char err[512];
    kl_buf_init(&b, 2048);
    assert_int_equal(kl_cli_scope_resolve(scope, account, sub, rg, "/", &b, err, sizeof(err)),
                     want_rc);
    if (want_rc < 0) {
        kl_buf_free(&b);
        return strdup(err);
    }
    return kl_buf_steal(&b);
}

static void test_scope_resolve(void **state)
{
    (void)state;
    char *s = resolved(NULL, "demo", "00000000-0000-0000-0000-000000000000", "default", 0);
    assert_string_equal(s, "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/"
                           "default/providers/Microsoft.CognitiveServices/accounts/demo");
    free(s);
    s = resolved(NULL, "prod1", "s1", "prod", 0);
    assert_string_equal(s, "/subscriptions/s1/resourceGroups/prod/providers/"
                           "Microsoft.CognitiveServices/accounts/prod1");
    free(s);
    s = resolved(NULL, NULL, "s", "rg", 0);
    assert_string_equal(s, "/");
    free(s);
    s = resolved("/subscriptions/s/", NULL, "x", "y", 0);
    assert_string_equal(s, "/subscriptions/s");
    free(s);
    s = resolved("/", NULL, "x", "y", 0);
    assert_string_equal(s, "/");
    free(s);
    s = resolved(NULL, "demo", "s", "my rg", KL_EINVAL);
    assert_string_equal(s, "resource group 'my rg' cannot be part of a scope");
    free(s);
    s = resolved(NULL, "..", "s", "rg", KL_EINVAL);
    assert_string_equal(s, "'..' is not an account name");
    free(s);
    s = resolved("relative", NULL, "s", "rg", KL_EINVAL);
    assert_string_equal(s, KL_SCOPE_RULE);
    free(s);
}

static void test_authz_targets(void **state)
{
    (void)state;
    kl_buf b;
    kl_buf_init(&b, 4096);
    assert_int_equal(kl_cli_authz_target(&b, "/", "roleAssignments", NULL, NULL), 0);
    assert_string_equal(b.data, "/providers/Microsoft.Authorization/roleAssignments"
                                "?api-version=2022-04-01");
    kl_buf_reset(&b);
    assert_int_equal(kl_cli_authz_target(&b, "/subscriptions/s/resourceGroups/rg",
                                         "roleDefinitions", "0d1e2f3a-0000-4000-8000-000000000001",
                                         NULL),
                     0);
    assert_string_equal(b.data, "/subscriptions/s/resourceGroups/rg/providers/"
                                "Microsoft.Authorization/roleDefinitions/"
                                "0d1e2f3a-0000-4000-8000-000000000001?api-version=2022-04-01");
    kl_buf_reset(&b);
    assert_int_equal(kl_cli_authz_target(&b, "/subscriptions/s", "roleAssignments", NULL,
                                         "atScope() and principalId eq 'abc-1'"),
                     0);
    assert_string_equal(b.data, "/subscriptions/s/providers/Microsoft.Authorization/"
                                "roleAssignments?api-version=2022-04-01&$filter=atScope%28%29%20"
                                "and%20principalId%20eq%20%27abc-1%27");
    kl_buf_reset(&b);
    assert_int_equal(kl_cli_authz_target(&b, "/", "checkAccess", NULL, NULL), 0);
    assert_string_equal(b.data,
                        "/providers/Microsoft.Authorization/checkAccess?api-version=2022-04-01");
    kl_buf_reset(&b);
    /* A name cannot leave its segment. */
    assert_int_equal(kl_cli_authz_target(&b, "/", "roleDefinitions", "../x?y", NULL), 0);
    assert_string_equal(b.data, "/providers/Microsoft.Authorization/roleDefinitions/"
                                "..%2Fx%3Fy?api-version=2022-04-01");
    kl_buf_free(&b);
}

static void test_assignment_id_split(void **state)
{
    (void)state;
    kl_buf scope;
    char guid[KL_UUID_LEN + 1];
    kl_buf_init(&scope, 2048);

    assert_int_equal(kl_cli_assignment_id_split("/providers/Microsoft.Authorization/"
                                                "roleAssignments/0D1E2F3A-0000-4000-8000-"
                                                "00000000000A",
                                                &scope, guid),
                     0);
    assert_string_equal(scope.data, "/");
    assert_string_equal(guid, "0d1e2f3a-0000-4000-8000-00000000000a");
    kl_buf_reset(&scope);
    assert_int_equal(kl_cli_assignment_id_split("/subscriptions/s/resourceGroups/rg/providers/"
                                                "Microsoft.CognitiveServices/accounts/demo/"
                                                "providers/microsoft.authorization/"
                                                "ROLEASSIGNMENTS/0d1e2f3a-0000-4000-8000-"
                                                "000000000001",
                                                &scope, guid),
                     0);
    assert_string_equal(scope.data, "/subscriptions/s/resourceGroups/rg/providers/"
                                    "Microsoft.CognitiveServices/accounts/demo");
    kl_buf_reset(&scope);
    assert_int_equal(kl_cli_assignment_id_split("/subscriptions/s/providers/"
                                                "Microsoft.Authorization/roleAssignments/nope",
                                                &scope, guid),
                     KL_EINVAL);
    kl_buf_reset(&scope);
    assert_int_equal(kl_cli_assignment_id_split("subscriptions/s/providers/"
                                                "Microsoft.Authorization/roleAssignments/"
                                                "0d1e2f3a-0000-4000-8000-000000000001",
                                                &scope, guid),
                     KL_EINVAL);
    kl_buf_reset(&scope);
    assert_int_equal(kl_cli_assignment_id_split("/a//b/providers/Microsoft.Authorization/"
                                                "roleAssignments/"
                                                "0d1e2f3a-0000-4000-8000-000000000001",
                                                &scope, guid),
                     KL_EINVAL);
    kl_buf_free(&scope);

    assert_string_equal(kl_cli_last_segment("/providers/Microsoft.Authorization/"
                                            "roleDefinitions/abc"),
                        "abc");
    assert_string_equal(kl_cli_last_segment("abc"), "abc");
}

/* Normalises text as a role file; returns the body as compact sorted JSON, or the error. */
static char *role_body(const char *text, const char *dflt, char guid[KL_UUID_LEN + 1], int want_rc)
{
    json_error_t jerr;
    json_t *file = json_loads(text, 0, &jerr);
    json_t *body = NULL;
    char err[512];
    assert_non_null(file);
    int rc = kl_cli_role_definition_body(file, dflt, &body, guid, err, sizeof(err));
    json_decref(file);
    assert_int_equal(rc, want_rc);
    if (rc < 0) {
        assert_null(body);
        assert_string_equal(guid, "");
        return strdup(err);
    }
    char *s = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(body);
    return s;
}

static void test_role_file_flat_form(void **state)
{
    (void)state;
    char guid[KL_UUID_LEN + 1];

    /* The az form, keys capitalised as az's documentation writes them. */
    char *s = role_body("{\"Name\":\"Deployment Reader\",\"IsCustom\":true,"
                        "\"Description\":\"Reads deployments\","
                        "\"Actions\":[\"Microsoft.CognitiveServices/accounts/deployments/read\"],"
                        "\"NotActions\":[],"
                        "\"DataActions\":[\"Microsoft.CognitiveServices/accounts/OpenAI/*\"],"
                        "\"AssignableScopes\":[\"/subscriptions/s\"]}",
                        "/", guid, 0);
    assert_string_equal(
        s, "{\"properties\":{\"assignableScopes\":[\"/subscriptions/s\"],"
           "\"description\":\"Reads deployments\","
           "\"permissions\":[{\"actions\":[\"Microsoft.CognitiveServices/accounts/deployments/"
           "read\"],\"dataActions\":[\"Microsoft.CognitiveServices/accounts/OpenAI/*\"],"
           "\"notActions\":[],\"notDataActions\":[]}],\"roleName\":\"Deployment Reader\"}}");
    assert_string_equal(guid, "");
    free(s);

    /* roleName, a GUID in "name", and the default assignable scope. */
    s = role_body("{\"roleName\":\"R\",\"name\":\"0D1E2F3A-0000-4000-8000-00000000000B\","
                  "\"actions\":[\"a/read\"]}",
                  "/subscriptions/s/resourceGroups/rg", guid, 0);
    assert_string_equal(s, "{\"properties\":{\"assignableScopes\":[\"/subscriptions/s/"
                           "resourceGroups/rg\"],\"description\":\"\",\"permissions\":[{"
                           "\"actions\":[\"a/read\"],\"dataActions\":[],\"notActions\":[],"
                           "\"notDataActions\":[]}],\"roleName\":\"R\"}}");
    assert_string_equal(guid, "0d1e2f3a-0000-4000-8000-00000000000b");
    free(s);

    /* The GUID from a full id. */
    s = role_body("{\"roleName\":\"R\",\"id\":\"/subscriptions/s/providers/"
                  "Microsoft.Authorization/roleDefinitions/0d1e2f3a-0000-4000-8000-00000000000c\"}",
                  "/", guid, 0);
    assert_string_equal(guid, "0d1e2f3a-0000-4000-8000-00000000000c");
    free(s);

    /* Mistakes are named rather than sent. */
    s = role_body("{\"roleName\":\"R\",\"Action\":[\"a/read\"]}", "/", guid, KL_EINVAL);
    assert_non_null(strstr(s, "unknown key \"Action\""));
    free(s);
    s = role_body("{\"description\":\"no name\"}", "/", guid, KL_EINVAL);
    assert_string_equal(s, "the role needs a name: \"roleName\" is missing or empty");
    free(s);
    s = role_body("{\"roleName\":\"\"}", "/", guid, KL_EINVAL);
    assert_string_equal(s, "the role needs a name: \"roleName\" is missing or empty");
    free(s);
    s = role_body("{\"roleName\":\"R\",\"name\":\"Other\"}", "/", guid, KL_EINVAL);
    assert_string_equal(s, "\"name\" must be the role's GUID when \"roleName\" is given");
    free(s);
    s = role_body("{\"roleName\":\"R\",\"actions\":\"a/read\"}", "/", guid, KL_EINVAL);
    assert_string_equal(s, "\"actions\" must be a list of strings");
    free(s);
    s = role_body("{\"roleName\":\"R\",\"notDataActions\":[1]}", "/", guid, KL_EINVAL);
    assert_string_equal(s, "\"notDataActions\" must be a list of non-empty strings");
    free(s);
    s = role_body("{\"roleName\":\"R\",\"assignableScopes\":[\"subscriptions/s\"]}", "/", guid,
                  KL_EINVAL);
    assert_string_equal(s, "assignable scope 'subscriptions/s': " KL_SCOPE_RULE);
    free(s);
    s = role_body("{\"roleName\":\"R\",\"assignableScopes\":[]}", "/", guid, KL_EINVAL);
    assert_string_equal(s, "\"assignableScopes\" must be a non-empty list of scopes");
    free(s);
    s = role_body("{\"roleName\":\"R\",\"Actions\":[],\"actions\":[]}", "/", guid, KL_EINVAL);
    assert_string_equal(s, "\"actions\" is given twice");
    free(s);
    s = role_body("{\"roleName\":\"R\",\"name\":\"0d1e2f3a-0000-4000-8000-00000000000b\","
                  "\"id\":\"0d1e2f3a-0000-4000-8000-00000000000c\"}",
                  "/", guid, KL_EINVAL);
    assert_string_equal(s, "\"name\" and \"id\" name different GUIDs");
    free(s);
    s = role_body("{\"roleName\":\"R\",\"id\":\"/subscriptions/s/roleAssignments/"
                  "0d1e2f3a-0000-4000-8000-00000000000c\"}",
                  "/", guid, KL_EINVAL);
    assert_string_equal(s, "\"id\" is neither a GUID nor a role definition id");
    free(s);
    s = role_body("[1]", "/", guid, KL_EINVAL);
    assert_string_equal(s, "a role definition is a JSON object");
    free(s);
}

static void test_role_file_arm_form(void **state)
{
    (void)state;
    char guid[KL_UUID_LEN + 1];

    /* What "role definition show -o json" prints goes back in, without what the server
     * sets. */
    char *s = role_body(
        "{\"id\":\"/providers/Microsoft.Authorization/roleDefinitions/"
        "0d1e2f3a-0000-4000-8000-00000000000d\",\"name\":\"0d1e2f3a-0000-4000-8000-00000000000d\","
        "\"type\":\"Microsoft.Authorization/roleDefinitions\",\"properties\":{\"roleName\":\"R\","
        "\"type\":\"CustomRole\",\"description\":\"d\",\"assignableScopes\":[\"/\"],"
        "\"permissions\":[{\"actions\":[\"a/read\"],\"notActions\":[],\"dataActions\":[],"
        "\"notDataActions\":[]}],\"createdOn\":\"2026-01-01T00:00:00Z\",\"updatedOn\":\"x\","
        "\"createdBy\":null,\"updatedBy\":null}}",
        "/subscriptions/s", guid, 0);
    assert_string_equal(s, "{\"properties\":{\"assignableScopes\":[\"/\"],\"description\":\"d\","
                           "\"permissions\":[{\"actions\":[\"a/read\"],\"dataActions\":[],"
                           "\"notActions\":[],\"notDataActions\":[]}],\"roleName\":\"R\","
                           "\"type\":\"CustomRole\"}}");
    assert_string_equal(guid, "0d1e2f3a-0000-4000-8000-00000000000d");
    free(s);

    /* No GUID, no assignable scopes: the caller's scope. */
    s = role_body("{\"properties\":{\"roleName\":\"R\",\"permissions\":[{\"actions\":[\"*\"]}]}}",
                  "/subscriptions/s", guid, 0);
    assert_string_equal(s, "{\"properties\":{\"assignableScopes\":[\"/subscriptions/s\"],"
                           "\"permissions\":[{\"actions\":[\"*\"]}],\"roleName\":\"R\"}}");
    assert_string_equal(guid, "");
    free(s);

    s = role_body("{\"name\":\"R\",\"properties\":{\"roleName\":\"R\"}}", "/", guid, KL_EINVAL);
    assert_non_null(strstr(s, "\"name\" must be the role's GUID"));
    free(s);
    s = role_body("{\"properties\":{\"description\":\"x\"}}", "/", guid, KL_EINVAL);
    assert_string_equal(s, "properties.roleName is missing or empty");
    free(s);
    s = role_body("{\"properties\":[]}", "/", guid, KL_EINVAL);
    assert_string_equal(s, "\"properties\" must be an object");
    free(s);
    s = role_body("{\"properties\":{\"roleName\":\"R\"},\"actions\":[]}", "/", guid, KL_EINVAL);
    assert_string_equal(s, "unknown key \"actions\" next to \"properties\"");
    free(s);
    s = role_body("{\"properties\":{\"roleName\":\"R\",\"assignableScopes\":[\"/a/../b\"]}}", "/",
                  guid, KL_EINVAL);
    assert_non_null(strstr(s, "assignable scope '/a/../b'"));
    free(s);
}

static void test_directory_and_role_match(void **state)
{
    (void)state;
    json_t *found;
    json_t *apps = json_loads(
        "[{\"id\":\"11111111-0000-4000-8000-000000000001\",\"appId\":\"22222222-0000-4000-8000-"
        "000000000001\",\"displayName\":\"billing\"},"
        "{\"id\":\"11111111-0000-4000-8000-000000000002\",\"appId\":\"22222222-0000-4000-8000-"
        "000000000002\",\"displayName\":\"11111111-0000-4000-8000-000000000001\"},"
        "{\"id\":\"11111111-0000-4000-8000-000000000003\",\"displayName\":\"Twin\"},"
        "{\"id\":\"11111111-0000-4000-8000-000000000004\",\"displayName\":\"twin\"}]",
        0, NULL);
    assert_non_null(apps);
    assert_int_equal(kl_cli_directory_match(apps, "BILLING", &found), 1);
    assert_ptr_equal(found, json_array_get(apps, 0));
    assert_int_equal(kl_cli_directory_match(apps, "22222222-0000-4000-8000-000000000002", &found),
                     1);
    assert_ptr_equal(found, json_array_get(apps, 1));
    /* An id wins over a display name that spells it. */
    assert_int_equal(kl_cli_directory_match(apps, "11111111-0000-4000-8000-000000000001", &found),
                     1);
    assert_ptr_equal(found, json_array_get(apps, 0));
    assert_int_equal(kl_cli_directory_match(apps, "twin", &found), 2);
    assert_int_equal(kl_cli_directory_match(apps, "nobody", &found), 0);
    assert_null(found);
    assert_string_equal(kl_cli_display_name_of(apps, "11111111-0000-4000-8000-000000000003"),
                        "Twin");
    assert_null(kl_cli_display_name_of(apps, "22222222-0000-4000-8000-000000000001"));
    json_decref(apps);

    json_t *roles = json_loads(
        "[{\"name\":\"acdd72a7-3385-48ef-bd42-f606fba81ae7\",\"properties\":{\"roleName\":"
        "\"Reader\"}},{\"name\":\"5e0bd9bd-7b93-4f28-af87-19fc36ad61bd\",\"properties\":{"
        "\"roleName\":\"Cognitive Services OpenAI User\"}}]",
        0, NULL);
    assert_non_null(roles);
    assert_int_equal(kl_cli_role_match(roles, "cognitive services openai user", &found), 1);
    assert_ptr_equal(found, json_array_get(roles, 1));
    assert_int_equal(kl_cli_role_match(roles, "ACDD72A7-3385-48EF-BD42-F606FBA81AE7", &found), 1);
    assert_ptr_equal(found, json_array_get(roles, 0));
    assert_int_equal(kl_cli_role_match(roles, "Owner", &found), 0);
    assert_string_equal(kl_cli_role_name_of(roles, "/subscriptions/s/providers/"
                                                   "Microsoft.Authorization/roleDefinitions/"
                                                   "acdd72a7-3385-48ef-bd42-f606fba81ae7"),
                        "Reader");
    assert_string_equal(kl_cli_role_name_of(roles, "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd"),
                        "Cognitive Services OpenAI User");
    assert_null(kl_cli_role_name_of(roles, "/providers/Microsoft.Authorization/roleDefinitions/x"));
    assert_null(kl_cli_role_name_of(NULL, "x"));
    json_decref(roles);
}

/* ---- output ---- */

static char *render(const kl_cli_table *t)
{
    kl_buf b;
    kl_buf_init(&b, 1 << 20);
    assert_int_equal(kl_cli_table_render(t, &b), 0);
    return kl_buf_steal(&b);
}

static void test_table_alignment(void **state)
{
    (void)state;
    kl_cli_table t;
    static const char *const headers[] = {"NAME", "MODEL", "BACKEND"};
    const char *r1[] = {"gpt-4o-mini", "gpt-4o-mini", "echo"};
    const char *r2[] = {"l", NULL, "http://127.0.0.1:8000/v1"};
    assert_int_equal(kl_cli_table_init(&t, 3, headers), 0);
    assert_int_equal(kl_cli_table_add_row(&t, r1), 0);
    assert_int_equal(kl_cli_table_add_row(&t, r2), 0);
    char *s = render(&t);
    assert_string_equal(s, "NAME         MODEL        BACKEND\n"
                           "gpt-4o-mini  gpt-4o-mini  echo\n"
                           "l            -            http://127.0.0.1:8000/v1\n");
    free(s);
    kl_cli_table_free(&t);

    /* Header only. */
    assert_int_equal(kl_cli_table_init(&t, 2, (const char *const[]){"KEY", "VALUE"}), 0);
    s = render(&t);
    assert_string_equal(s, "KEY  VALUE\n");
    free(s);
    kl_cli_table_free(&t);

    assert_int_equal(kl_cli_table_init(&t, 0, NULL), KL_EINVAL);
    assert_int_equal(kl_cli_table_init(&t, 17, NULL), KL_EINVAL);
}

static void test_table_width_and_control_chars(void **state)
{
    (void)state;
    kl_cli_table t;
    /* No header; "é" is two bytes but one column; an escape sequence from the server
     * must not reach the terminal. */
    assert_int_equal(kl_cli_table_init(&t, 2, NULL), 0);
    assert_int_equal(kl_cli_table_add_row(&t, (const char *const[]){"caf\xc3\xa9", "1"}), 0);
    assert_int_equal(kl_cli_table_add_row(&t, (const char *const[]){"ab", "x\x1b[2Jy\n"}), 0);
    char *s = render(&t);
    assert_string_equal(s, "caf\xc3\xa9  1\n"
                           "ab    x?[2Jy?\n");
    free(s);
    kl_cli_table_free(&t);
}

static void test_exit_code_mapping(void **state)
{
    (void)state;
    assert_int_equal(kl_cli_exit_for_status(200), KL_CLI_EXIT_OK);
    assert_int_equal(kl_cli_exit_for_status(201), KL_CLI_EXIT_OK);
    assert_int_equal(kl_cli_exit_for_status(204), KL_CLI_EXIT_OK);
    assert_int_equal(kl_cli_exit_for_status(404), KL_CLI_EXIT_NOTFOUND);
    assert_int_equal(kl_cli_exit_for_status(400), KL_CLI_EXIT_REFUSED);
    assert_int_equal(kl_cli_exit_for_status(401), KL_CLI_EXIT_REFUSED);
    assert_int_equal(kl_cli_exit_for_status(405), KL_CLI_EXIT_REFUSED);
    assert_int_equal(kl_cli_exit_for_status(409), KL_CLI_EXIT_REFUSED);
    assert_int_equal(kl_cli_exit_for_status(500), KL_CLI_EXIT_REFUSED);
    assert_int_equal(kl_cli_exit_for_status(503), KL_CLI_EXIT_REFUSED);
    assert_int_equal(kl_cli_exit_for_status(302), KL_CLI_EXIT_REFUSED);
    assert_int_equal(kl_cli_exit_for_status(100), KL_CLI_EXIT_REFUSED);
    assert_int_equal(kl_cli_exit_for_status(0), KL_CLI_EXIT_REFUSED);
    assert_int_equal(KL_CLI_EXIT_USAGE, 2);
    assert_int_equal(KL_CLI_EXIT_UNREACHABLE, 3);
}

static char *error_line(long status, const char *body)
{
    kl_buf b;
    kl_buf_init(&b, 1 << 16);
    assert_int_equal(kl_cli_format_server_error(status, body, body ? strlen(body) : 0, &b), 0);
    return kl_buf_steal(&b);
}

static void test_server_error_lines(void **state)
{
    (void)state;
    char *s = error_line(409, "{\"error\":{\"code\":\"CustomDomainInUse\",\"message\":\"The "
                              "name demo is taken.\"}}");
    assert_string_equal(s, "error: CustomDomainInUse: The name demo is taken.");
    free(s);
    s = error_line(401, "{\"error\":{\"code\":\"401\",\"message\":\"Access denied\"}}");
    assert_string_equal(s, "error: 401: Access denied");
    free(s);
    s = error_line(400, "{\"error\":{\"code\":\"Bad\",\"message\":\"a\\u001b[31mb\"}}");
    assert_string_equal(s, "error: Bad: a?[31mb");
    free(s);
    s = error_line(400, "{\"error\":\"invalid_request\",\"error_description\":\"nope\"}");
    assert_string_equal(s, "error: invalid_request: nope");
    free(s);
    s = error_line(503, "");
    assert_string_equal(s, "error: HTTP 503: Service Unavailable");
    free(s);
    s = error_line(403, "Forbidden\r\n");
    assert_string_equal(s, "error: HTTP 403: Forbidden");
    free(s);
    s = error_line(500, "[1,2]");
    assert_string_equal(s, "error: HTTP 500: Internal Server Error");
    free(s);
}

/* ---- requests ---- */

static void test_arm_targets(void **state)
{
    (void)state;
    kl_buf b;
    kl_buf_init(&b, 4096);
    const char *sub = "00000000-0000-0000-0000-000000000000";
    assert_int_equal(kl_cli_arm_target(&b, sub, "default", "demo", NULL, NULL), 0);
    assert_string_equal(b.data, "/subscriptions/00000000-0000-0000-0000-000000000000/"
                                "resourceGroups/default/providers/Microsoft.CognitiveServices/"
                                "accounts/demo?api-version=2024-10-01");
    kl_buf_reset(&b);
    assert_int_equal(kl_cli_arm_target(&b, "s", NULL, NULL, NULL, NULL), 0);
    assert_string_equal(b.data, "/subscriptions/s/providers/Microsoft.CognitiveServices/"
                                "accounts?api-version=2024-10-01");
    kl_buf_reset(&b);
    assert_int_equal(kl_cli_arm_target(&b, "s", "my.rg(1)", "a", "deployments", "gpt-4o_mini.v1"),
                     0);
    assert_string_equal(b.data, "/subscriptions/s/resourceGroups/my.rg(1)/providers/"
                                "Microsoft.CognitiveServices/accounts/a/deployments/"
                                "gpt-4o_mini.v1?api-version=2024-10-01");
    kl_buf_reset(&b);
    /* Arguments cannot add segments, queries or dot-segments. */
    assert_int_equal(kl_cli_arm_target(&b, "s", "rg", "a/../b?x=1#f", "listKeys", NULL), 0);
    assert_string_equal(b.data, "/subscriptions/s/resourceGroups/rg/providers/"
                                "Microsoft.CognitiveServices/accounts/"
                                "a%2F..%2Fb%3Fx%3D1%23f/listKeys?api-version=2024-10-01");
    kl_buf_reset(&b);
    assert_int_equal(kl_cli_arm_target(&b, "s", "rg", "..", "deployments", "."), 0);
    assert_string_equal(b.data, "/subscriptions/s/resourceGroups/rg/providers/"
                                "Microsoft.CognitiveServices/accounts/%2E%2E/deployments/"
                                "%2E?api-version=2024-10-01");
    kl_buf_reset(&b);
    assert_int_equal(kl_cli_append_segment(&b, "a b%\xc3\xa9"), 0);
    assert_string_equal(b.data, "a%20b%25%C3%A9");
    kl_buf_free(&b);
}

static void test_id_segments(void **state)
{
    (void)state;
    char out[64];
    const char *id = "/subscriptions/s/resourceGroups/rg-1/providers/"
                     "Microsoft.CognitiveServices/accounts/demo/deployments/d";
    assert_int_equal(kl_cli_id_segment(id, "resourcegroups", out, sizeof(out)), 0);
    assert_string_equal(out, "rg-1");
    assert_int_equal(kl_cli_id_segment(id, "accounts", out, sizeof(out)), 0);
    assert_string_equal(out, "demo");
    assert_int_equal(kl_cli_id_segment(id, "deployments", out, sizeof(out)), 0);
    assert_string_equal(out, "d");
    assert_int_equal(kl_cli_id_segment(id, "tenants", out, sizeof(out)), KL_ENOTFOUND);
    assert_int_equal(
        kl_cli_id_segment("/subscriptions/s/resourceGroups", "resourceGroups", out, sizeof(out)),
        KL_ENOTFOUND);
    assert_int_equal(kl_cli_id_segment(id, "accounts", out, 3), KL_ETOOBIG);
}

/* ---- transport failures (real sockets, no server) ---- */

typedef struct tmpdir {
    char path[64];
} tmpdir;

static int make_tmpdir(void **state)
{
    tmpdir *t = calloc(1, sizeof(*t));
    if (!t)
        return -1;
    snprintf(t->path, sizeof(t->path), "/tmp/kl-cli-test-XXXXXX");
    if (!mkdtemp(t->path)) {
        free(t);
        return -1;
    }
    *state = t;
    return 0;
}

static int remove_tmpdir(void **state)
{
    tmpdir *t = *state;
    char p[128];
    snprintf(p, sizeof(p), "%s/admin.sock", t->path);
    unlink(p);
    rmdir(t->path);
    free(t);
    return 0;
}

static int request_error(const char *sock, char *err, size_t errlen, bool *connect_failed)
{
    kl_cli_http h;
    kl_cli_response resp;
    int rc = kl_cli_http_init(&h, sock, err, errlen);
    if (rc < 0)
        return rc;
    rc = kl_cli_http_request(&h, "GET", "/healthz", NULL, 0, &resp, err, errlen);
    assert_int_equal(resp.status, 0);
    *connect_failed = h.connect_failed;
    kl_cli_response_free(&resp);
    kl_cli_http_free(&h);
    return rc;
}

static void *accept_and_close(void *arg)
{
    int c = accept(*(int *)arg, NULL, NULL);
    if (c >= 0)
        close(c);
    return NULL;
}

static void test_unreachable_socket(void **state)
{
    tmpdir *t = *state;
    char sock[128], err[1024], want[256];
    bool cf = false;
    snprintf(sock, sizeof(sock), "%s/admin.sock", t->path);

    /* Missing. */
    assert_int_equal(request_error(sock, err, sizeof(err), &cf), KL_EIO);
    snprintf(want, sizeof(want), "cannot reach keylessd: %s does not exist", sock);
    assert_string_equal(err, want);
    assert_true(cf); /* so the caller suggests starting keylessd */

    /* Not a socket. */
    FILE *f = fopen(sock, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(request_error(sock, err, sizeof(err), &cf), KL_EIO);
    snprintf(want, sizeof(want), "cannot reach keylessd: %s is not a socket", sock);
    assert_string_equal(err, want);
    unlink(sock);

    /* A socket nobody listens on (a daemon that died). */
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    memcpy(sun.sun_path, sock, strlen(sock) + 1);
    assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    assert_int_equal(request_error(sock, err, sizeof(err), &cf), KL_EIO);
    assert_non_null(strstr(err, "connection refused"));
    assert_true(cf);
    assert_non_null(strstr(err, sock));

    /* A peer that hangs up without a word (as a daemon refusing this uid might). */
    assert_int_equal(listen(fd, 4), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, accept_and_close, &fd), 0);
    assert_int_equal(request_error(sock, err, sizeof(err), &cf), KL_EIO);
    assert_non_null(strstr(err, "closed the connection without answering"));
    assert_non_null(strstr(err, "is this user allowed"));
    assert_false(cf);
    pthread_join(th, NULL);
    close(fd);

    /* Longer than a socket address can hold. */
    char longpath[200];
    memset(longpath, 'a', sizeof(longpath) - 1);
    longpath[0] = '/';
    longpath[sizeof(longpath) - 1] = '\0';
    assert_int_equal(request_error(longpath, err, sizeof(err), &cf), KL_ETOOBIG);
    assert_non_null(strstr(err, "too long"));
}

/* Users and groups: every command, the flag that forces a password change, and that a
 * password can never be given as an argument (no option takes one). */
static void test_user_group_commands(void **state)
{
    (void)state;
    kl_cli_args a;
    char err[256];

    assert_int_equal(PARSE(&a, err, "user", "create", "a@b.cd", "--display-name", "A"), 0);
    assert_int_equal(a.cmd, KL_CLI_CMD_USER_CREATE);
    assert_string_equal(a.pos[0], "a@b.cd");
    assert_false(a.force_change);
    assert_int_equal(PARSE(&a, err, "user", "create", "a@b.cd", "secret-password"), KL_EINVAL);
    assert_int_equal(PARSE(&a, err, "user", "create", "a@b.cd", "--password", "x"), KL_EINVAL);
    assert_int_equal(PARSE(&a, err, "user", "list"), 0);
    assert_int_equal(a.cmd, KL_CLI_CMD_USER_LIST);
    assert_int_equal(PARSE(&a, err, "user", "show", "a@b.cd"), 0);
    assert_int_equal(a.cmd, KL_CLI_CMD_USER_SHOW);
    assert_int_equal(PARSE(&a, err, "user", "enable", "a@b.cd"), 0);
    assert_int_equal(a.cmd, KL_CLI_CMD_USER_ENABLE);
    assert_int_equal(PARSE(&a, err, "user", "disable", "a@b.cd"), 0);
    assert_int_equal(a.cmd, KL_CLI_CMD_USER_DISABLE);
    assert_int_equal(PARSE(&a, err, "user", "delete", "a@b.cd"), 0);
    assert_int_equal(a.cmd, KL_CLI_CMD_USER_DELETE);
    assert_int_equal(PARSE(&a, err, "user", "reset-password", "a@b.cd", "--force-change"), 0);
    assert_int_equal(a.cmd, KL_CLI_CMD_USER_RESET_PASSWORD);
    assert_true(a.force_change);
    assert_string_equal(kl_cli_cmd_name(KL_CLI_CMD_USER_RESET_PASSWORD), "user reset-password");
    assert_int_equal(PARSE(&a, err, "user", "show", "a@b.cd", "--force-change"), KL_EINVAL);
    assert_int_equal(PARSE(&a, err, "group", "create", "ops"), 0);
    assert_int_equal(a.cmd, KL_CLI_CMD_GROUP_CREATE);
    assert_int_equal(PARSE(&a, err, "group", "list"), 0);
    assert_int_equal(a.cmd, KL_CLI_CMD_GROUP_LIST);
    assert_int_equal(PARSE(&a, err, "group", "show", "ops"), 0);
    assert_int_equal(a.cmd, KL_CLI_CMD_GROUP_SHOW);
    assert_int_equal(PARSE(&a, err, "group", "delete", "ops"), 0);
    assert_int_equal(a.cmd, KL_CLI_CMD_GROUP_DELETE);
    assert_int_equal(PARSE(&a, err, "group", "member", "add", "ops", "a@b.cd"), 0);
    assert_int_equal(a.cmd, KL_CLI_CMD_GROUP_MEMBER_ADD);
    assert_string_equal(a.pos[1], "a@b.cd");
    assert_int_equal(PARSE(&a, err, "group", "member", "remove", "ops", "a@b.cd"), 0);
    assert_int_equal(a.cmd, KL_CLI_CMD_GROUP_MEMBER_REMOVE);
    assert_int_equal(PARSE(&a, err, "group", "member", "list", "ops"), 0);
    assert_int_equal(a.cmd, KL_CLI_CMD_GROUP_MEMBER_LIST);
    assert_string_equal(kl_cli_cmd_name(KL_CLI_CMD_GROUP_MEMBER_LIST), "group member list");
    assert_int_equal(PARSE(&a, err, "group", "member", "add", "ops"), KL_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_global_options_anywhere),
        cmocka_unit_test(test_every_command_resolves),
        cmocka_unit_test(test_missing_arguments_are_usage_errors),
        cmocka_unit_test(test_unknown_options_and_commands),
        cmocka_unit_test(test_disable_local_auth_forms),
        cmocka_unit_test(test_network_and_age_options),
        cmocka_unit_test(test_deployment_create_options),
        cmocka_unit_test(test_help_and_end_of_options),
        cmocka_unit_test(test_default_data_dir),
        cmocka_unit_test(test_scope_grammar_is_the_daemons),
        cmocka_unit_test(test_command_table),
        cmocka_unit_test(test_rbac_commands_resolve),
        cmocka_unit_test(test_rbac_usage_errors),
        cmocka_unit_test(test_token_service_commands),
        cmocka_unit_test(test_run_command),
        cmocka_unit_test(test_scope_check),
        cmocka_unit_test(test_scope_resolve),
        cmocka_unit_test(test_authz_targets),
        cmocka_unit_test(test_assignment_id_split),
        cmocka_unit_test(test_role_file_flat_form),
        cmocka_unit_test(test_role_file_arm_form),
        cmocka_unit_test(test_directory_and_role_match),
        cmocka_unit_test(test_table_alignment),
        cmocka_unit_test(test_table_width_and_control_chars),
        cmocka_unit_test(test_exit_code_mapping),
        cmocka_unit_test(test_server_error_lines),
        cmocka_unit_test(test_user_group_commands),
        cmocka_unit_test(test_arm_targets),
        cmocka_unit_test(test_id_segments),
        cmocka_unit_test(test_identity_commands),
        cmocka_unit_test(test_identity_helpers),
        cmocka_unit_test_setup_teardown(test_unreachable_socket, make_tmpdir, remove_tmpdir),
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return failed;
}
