/* Command-line parsing for the keyless CLI; see args.h. Options are looked up in one
 * table whatever their position, then checked against what the resolved command takes. */
#include "cli/args.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli/authz.h"
#include "cli/mi.h"
#include "common/err.h"
#include "common/util.h"

#define MAX_WORDS 8 /* noun + verbs + positionals + room to name the first extra one */

typedef enum opt_kind {
    OPT_FLAG,    /* takes no value */
    OPT_VALUE,   /* takes one value: --name VALUE or --name=VALUE */
    OPT_BOOLISH, /* a flag that may be followed by true|false */
} opt_kind;

typedef enum opt_id {
    O_DATA_DIR,
    O_OUTPUT,
    O_SUBSCRIPTION,
    O_RESOURCE_GROUP,
    O_HELP,
    O_VERSION,
    O_DISABLE_LOCAL_AUTH,
    O_LOCATION,
    O_KIND,
    O_BACKEND,
    O_MODEL,
    O_UPSTREAM_MODEL,
    O_CREDENTIAL_ENV,
    O_SCOPE,
    O_ACCOUNT,
    O_ASSIGNEE,
    O_ROLE,
    O_ACTION,
    O_DATA,
    O_FILE,
    O_CUSTOM,
    O_ALL,
    O_FROM,
    O_TO,
    O_DISPLAY_NAME,
    O_DAYS,
    O_REVOKE_PREVIOUS,
    O_CLIENT,
    O_FAILED,
    O_PUBLIC_NETWORK_ACCESS,
    O_DEFAULT_ACTION,
    O_ALLOW_IP,
    O_OLDER_THAN,
    O_RESOURCE,
    O_ASSIGN_IDENTITY,
    O_SITE,
    O_FORCE_CHANGE,
} opt_id;

typedef struct opt_def {
    const char *name; /* without the leading "--" */
    char short_name;  /* 0 if none */
    opt_kind kind;
    opt_id id;
    unsigned bit; /* KL_CLI_OPT_* for command options, 0 for global ones */
} opt_def;

static const opt_def OPTS[] = {
    {"data-dir", 0, OPT_VALUE, O_DATA_DIR, 0},
    {"output", 'o', OPT_VALUE, O_OUTPUT, 0},
    {"subscription", 0, OPT_VALUE, O_SUBSCRIPTION, 0},
    {"resource-group", 0, OPT_VALUE, O_RESOURCE_GROUP, 0},
    {"help", 'h', OPT_FLAG, O_HELP, 0},
    {"version", 0, OPT_FLAG, O_VERSION, 0},
    {"disable-local-auth", 0, OPT_BOOLISH, O_DISABLE_LOCAL_AUTH, KL_CLI_OPT_DISABLE_LOCAL_AUTH},
    {"location", 0, OPT_VALUE, O_LOCATION, KL_CLI_OPT_LOCATION},
    {"kind", 0, OPT_VALUE, O_KIND, KL_CLI_OPT_KIND},
    {"backend", 0, OPT_VALUE, O_BACKEND, KL_CLI_OPT_BACKEND},
    {"model", 0, OPT_VALUE, O_MODEL, KL_CLI_OPT_MODEL},
    {"upstream-model", 0, OPT_VALUE, O_UPSTREAM_MODEL, KL_CLI_OPT_UPSTREAM_MODEL},
    {"credential-env", 0, OPT_VALUE, O_CREDENTIAL_ENV, KL_CLI_OPT_CREDENTIAL_ENV},
    {"scope", 0, OPT_VALUE, O_SCOPE, KL_CLI_OPT_SCOPE},
    {"account", 0, OPT_VALUE, O_ACCOUNT, KL_CLI_OPT_ACCOUNT},
    {"assignee", 0, OPT_VALUE, O_ASSIGNEE, KL_CLI_OPT_ASSIGNEE},
    {"role", 0, OPT_VALUE, O_ROLE, KL_CLI_OPT_ROLE},
    {"action", 0, OPT_VALUE, O_ACTION, KL_CLI_OPT_ACTION},
    {"data", 0, OPT_FLAG, O_DATA, KL_CLI_OPT_DATA},
    {"file", 0, OPT_VALUE, O_FILE, KL_CLI_OPT_FILE},
    {"custom", 0, OPT_FLAG, O_CUSTOM, KL_CLI_OPT_CUSTOM},
    {"all", 0, OPT_FLAG, O_ALL, KL_CLI_OPT_ALL},
    {"from", 0, OPT_VALUE, O_FROM, KL_CLI_OPT_FROM},
    {"to", 0, OPT_VALUE, O_TO, KL_CLI_OPT_TO},
    {"display-name", 0, OPT_VALUE, O_DISPLAY_NAME, KL_CLI_OPT_DISPLAY_NAME},
    {"days", 0, OPT_VALUE, O_DAYS, KL_CLI_OPT_DAYS},
    {"revoke-previous", 0, OPT_FLAG, O_REVOKE_PREVIOUS, KL_CLI_OPT_REVOKE_PREVIOUS},
    {"client", 0, OPT_VALUE, O_CLIENT, KL_CLI_OPT_CLIENT},
    {"failed", 0, OPT_FLAG, O_FAILED, KL_CLI_OPT_FAILED},
    {"public-network-access", 0, OPT_VALUE, O_PUBLIC_NETWORK_ACCESS,
     KL_CLI_OPT_PUBLIC_NETWORK_ACCESS},
    {"default-action", 0, OPT_VALUE, O_DEFAULT_ACTION, KL_CLI_OPT_DEFAULT_ACTION},
    {"allow-ip", 0, OPT_VALUE, O_ALLOW_IP, KL_CLI_OPT_ALLOW_IP},
    {"older-than", 0, OPT_VALUE, O_OLDER_THAN, KL_CLI_OPT_OLDER_THAN},
    {"resource", 0, OPT_VALUE, O_RESOURCE, KL_CLI_OPT_RESOURCE},
    {"assign-identity", 0, OPT_VALUE, O_ASSIGN_IDENTITY, KL_CLI_OPT_ASSIGN_IDENTITY},
    {"site", 0, OPT_VALUE, O_SITE, KL_CLI_OPT_SITE},
    {"force-change", 0, OPT_FLAG, O_FORCE_CHANGE, KL_CLI_OPT_FORCE_CHANGE},
};

typedef struct cmd_def {
    const char *noun;
    const char *verb;  /* NULL for a command without a verb */
    const char *verb2; /* the third word of a three-word command, else NULL */
    kl_cli_cmd cmd;
    size_t npos;
    const char *pos_names[KL_CLI_MAX_POS];
    unsigned opts; /* command options it accepts */
} cmd_def;

#define SCOPE_OPTS (KL_CLI_OPT_SCOPE | KL_CLI_OPT_ACCOUNT)

static const cmd_def CMDS[] = {
    {"account",
     "create",
     NULL,
     KL_CLI_CMD_ACCOUNT_CREATE,
     1,
     {"NAME"},
     KL_CLI_OPT_DISABLE_LOCAL_AUTH | KL_CLI_OPT_LOCATION | KL_CLI_OPT_KIND},
    {"account",
     "update",
     NULL,
     KL_CLI_CMD_ACCOUNT_UPDATE,
     1,
     {"NAME"},
     KL_CLI_OPT_DISABLE_LOCAL_AUTH | KL_CLI_OPT_PUBLIC_NETWORK_ACCESS | KL_CLI_OPT_DEFAULT_ACTION |
         KL_CLI_OPT_ALLOW_IP},
    {"account", "show", NULL, KL_CLI_CMD_ACCOUNT_SHOW, 1, {"NAME"}, 0},
    {"account", "list", NULL, KL_CLI_CMD_ACCOUNT_LIST, 0, {NULL}, 0},
    {"account", "delete", NULL, KL_CLI_CMD_ACCOUNT_DELETE, 1, {"NAME"}, 0},
    {"deployment",
     "create",
     NULL,
     KL_CLI_CMD_DEPLOYMENT_CREATE,
     2,
     {"ACCOUNT", "NAME"},
     KL_CLI_OPT_BACKEND | KL_CLI_OPT_MODEL | KL_CLI_OPT_UPSTREAM_MODEL | KL_CLI_OPT_CREDENTIAL_ENV},
    {"deployment", "show", NULL, KL_CLI_CMD_DEPLOYMENT_SHOW, 2, {"ACCOUNT", "NAME"}, 0},
    {"deployment", "list", NULL, KL_CLI_CMD_DEPLOYMENT_LIST, 1, {"ACCOUNT"}, 0},
    {"deployment", "delete", NULL, KL_CLI_CMD_DEPLOYMENT_DELETE, 2, {"ACCOUNT", "NAME"}, 0},
    {"keys", "list", NULL, KL_CLI_CMD_KEYS_LIST, 1, {"ACCOUNT"}, KL_CLI_OPT_OLDER_THAN},
    {"keys", "regenerate", NULL, KL_CLI_CMD_KEYS_REGENERATE, 2, {"ACCOUNT", "KEY"}, 0},
    {"health", NULL, NULL, KL_CLI_CMD_HEALTH, 0, {NULL}, 0},
    {"tenant", "show", NULL, KL_CLI_CMD_TENANT_SHOW, 0, {NULL}, 0},
    {"store",
     "migrate",
     NULL,
     KL_CLI_CMD_STORE_MIGRATE,
     0,
     {NULL},
     KL_CLI_OPT_FROM | KL_CLI_OPT_TO},
    {"app", "create", NULL, KL_CLI_CMD_APP_CREATE, 1, {"NAME"}, 0},
    {"app", "list", NULL, KL_CLI_CMD_APP_LIST, 0, {NULL}, 0},
    {"app", "show", NULL, KL_CLI_CMD_APP_SHOW, 1, {"APP"}, 0},
    {"app", "delete", NULL, KL_CLI_CMD_APP_DELETE, 1, {"APP"}, 0},
    {"app", "disable", NULL, KL_CLI_CMD_APP_DISABLE, 1, {"APP"}, 0},
    {"app", "enable", NULL, KL_CLI_CMD_APP_ENABLE, 1, {"APP"}, 0},
    {"app", "cert", "add", KL_CLI_CMD_APP_CERT_ADD, 2, {"APP", "FILE"}, 0},
    {"app", "cert", "list", KL_CLI_CMD_APP_CERT_LIST, 1, {"APP"}, 0},
    {"app", "cert", "remove", KL_CLI_CMD_APP_CERT_REMOVE, 2, {"APP", "KEY"}, 0},
    {"app",
     "federated",
     "add",
     KL_CLI_CMD_APP_FEDERATED_ADD,
     4,
     {"APP", "NAME", "ISSUER", "SUBJECT"},
     0},
    {"app", "federated", "list", KL_CLI_CMD_APP_FEDERATED_LIST, 1, {"APP"}, 0},
    {"app", "federated", "remove", KL_CLI_CMD_APP_FEDERATED_REMOVE, 2, {"APP", "NAME"}, 0},
    {"app",
     "secret",
     "add",
     KL_CLI_CMD_APP_SECRET_ADD,
     1,
     {"APP"},
     KL_CLI_OPT_DISPLAY_NAME | KL_CLI_OPT_DAYS},
    {"app", "secret", "list", KL_CLI_CMD_APP_SECRET_LIST, 1, {"APP"}, 0},
    {"app", "secret", "remove", KL_CLI_CMD_APP_SECRET_REMOVE, 2, {"APP", "KEY-ID"}, 0},
    {"signing-key", "list", NULL, KL_CLI_CMD_SIGNING_KEY_LIST, 0, {NULL}, 0},
    {"user",
     "create",
     NULL,
     KL_CLI_CMD_USER_CREATE,
     1,
     {"UPN"},
     KL_CLI_OPT_DISPLAY_NAME | KL_CLI_OPT_FORCE_CHANGE},
    {"user", "list", NULL, KL_CLI_CMD_USER_LIST, 0, {NULL}, 0},
    {"user", "show", NULL, KL_CLI_CMD_USER_SHOW, 1, {"USER"}, 0},
    {"user", "enable", NULL, KL_CLI_CMD_USER_ENABLE, 1, {"USER"}, 0},
    {"user", "disable", NULL, KL_CLI_CMD_USER_DISABLE, 1, {"USER"}, 0},
    {"user", "delete", NULL, KL_CLI_CMD_USER_DELETE, 1, {"USER"}, 0},
    {"user",
     "reset-password",
     NULL,
     KL_CLI_CMD_USER_RESET_PASSWORD,
     1,
     {"USER"},
     KL_CLI_OPT_FORCE_CHANGE},
    {"group", "create", NULL, KL_CLI_CMD_GROUP_CREATE, 1, {"NAME"}, 0},
    {"group", "list", NULL, KL_CLI_CMD_GROUP_LIST, 0, {NULL}, 0},
    {"group", "show", NULL, KL_CLI_CMD_GROUP_SHOW, 1, {"GROUP"}, 0},
    {"group", "delete", NULL, KL_CLI_CMD_GROUP_DELETE, 1, {"GROUP"}, 0},
    {"group", "member", "add", KL_CLI_CMD_GROUP_MEMBER_ADD, 2, {"GROUP", "MEMBER"}, 0},
    {"group", "member", "remove", KL_CLI_CMD_GROUP_MEMBER_REMOVE, 2, {"GROUP", "MEMBER"}, 0},
    {"group", "member", "list", KL_CLI_CMD_GROUP_MEMBER_LIST, 1, {"GROUP"}, 0},
    {"signin",
     "list",
     NULL,
     KL_CLI_CMD_SIGNIN_LIST,
     0,
     {NULL},
     KL_CLI_OPT_CLIENT | KL_CLI_OPT_FAILED},
    /* run --site NAME -- COMMAND...: everything after "--" is the command's. */
    {"run", NULL, NULL, KL_CLI_CMD_RUN, 0, {NULL}, KL_CLI_OPT_SITE},
    {"signing-key",
     "rotate",
     NULL,
     KL_CLI_CMD_SIGNING_KEY_ROTATE,
     0,
     {NULL},
     KL_CLI_OPT_REVOKE_PREVIOUS},
    {"role",
     "definition",
     "list",
     KL_CLI_CMD_ROLE_DEFINITION_LIST,
     0,
     {NULL},
     KL_CLI_OPT_CUSTOM | SCOPE_OPTS},
    {"role", "definition", "show", KL_CLI_CMD_ROLE_DEFINITION_SHOW, 1, {"ROLE"}, SCOPE_OPTS},
    {"role",
     "definition",
     "create",
     KL_CLI_CMD_ROLE_DEFINITION_CREATE,
     0,
     {NULL},
     KL_CLI_OPT_FILE | SCOPE_OPTS},
    {"role", "definition", "delete", KL_CLI_CMD_ROLE_DEFINITION_DELETE, 1, {"ROLE"}, SCOPE_OPTS},
    {"role",
     "assignment",
     "create",
     KL_CLI_CMD_ROLE_ASSIGNMENT_CREATE,
     0,
     {NULL},
     KL_CLI_OPT_ASSIGNEE | KL_CLI_OPT_ROLE | SCOPE_OPTS},
    {"role",
     "assignment",
     "list",
     KL_CLI_CMD_ROLE_ASSIGNMENT_LIST,
     0,
     {NULL},
     KL_CLI_OPT_ASSIGNEE | KL_CLI_OPT_ALL | SCOPE_OPTS},
    {"role",
     "assignment",
     "delete",
     KL_CLI_CMD_ROLE_ASSIGNMENT_DELETE,
     1,
     {"ASSIGNMENT"},
     SCOPE_OPTS},
    {"role",
     "check",
     NULL,
     KL_CLI_CMD_ROLE_CHECK,
     0,
     {NULL},
     KL_CLI_OPT_ASSIGNEE | KL_CLI_OPT_ACTION | KL_CLI_OPT_DATA | SCOPE_OPTS},
    {"identity", "create", NULL, KL_CLI_CMD_IDENTITY_CREATE, 1, {"NAME"}, KL_CLI_OPT_LOCATION},
    {"identity", "show", NULL, KL_CLI_CMD_IDENTITY_SHOW, 1, {"IDENTITY"}, 0},
    {"identity", "list", NULL, KL_CLI_CMD_IDENTITY_LIST, 0, {NULL}, 0},
    {"identity", "delete", NULL, KL_CLI_CMD_IDENTITY_DELETE, 1, {"IDENTITY"}, 0},
    {"identity", "assign", NULL, KL_CLI_CMD_IDENTITY_ASSIGN, 1, {"IDENTITY"}, KL_CLI_OPT_RESOURCE},
    {"identity", "remove", NULL, KL_CLI_CMD_IDENTITY_REMOVE, 1, {"IDENTITY"}, KL_CLI_OPT_RESOURCE},
    {"site",
     "create",
     NULL,
     KL_CLI_CMD_SITE_CREATE,
     1,
     {"NAME"},
     KL_CLI_OPT_LOCATION | KL_CLI_OPT_ASSIGN_IDENTITY},
    {"site", "show", NULL, KL_CLI_CMD_SITE_SHOW, 1, {"NAME"}, 0},
    {"site", "delete", NULL, KL_CLI_CMD_SITE_DELETE, 1, {"NAME"}, 0},
    {"vm",
     "create",
     NULL,
     KL_CLI_CMD_VM_CREATE,
     1,
     {"NAME"},
     KL_CLI_OPT_LOCATION | KL_CLI_OPT_ASSIGN_IDENTITY},
    {"vm", "show", NULL, KL_CLI_CMD_VM_SHOW, 1, {"NAME"}, 0},
    {"vm", "delete", NULL, KL_CLI_CMD_VM_DELETE, 1, {"NAME"}, 0},
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

__attribute__((format(printf, 3, 4))) static int usage(char *err, size_t errlen, const char *fmt,
                                                       ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (errlen > 0)
        vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return KL_EINVAL;
}

const char *kl_cli_cmd_name(kl_cli_cmd cmd)
{
    switch (cmd) {
    case KL_CLI_CMD_NONE: return "";
    case KL_CLI_CMD_ACCOUNT_CREATE: return "account create";
    case KL_CLI_CMD_ACCOUNT_UPDATE: return "account update";
    case KL_CLI_CMD_ACCOUNT_SHOW: return "account show";
    case KL_CLI_CMD_ACCOUNT_LIST: return "account list";
    case KL_CLI_CMD_ACCOUNT_DELETE: return "account delete";
    case KL_CLI_CMD_DEPLOYMENT_CREATE: return "deployment create";
    case KL_CLI_CMD_DEPLOYMENT_SHOW: return "deployment show";
    case KL_CLI_CMD_DEPLOYMENT_LIST: return "deployment list";
    case KL_CLI_CMD_DEPLOYMENT_DELETE: return "deployment delete";
    case KL_CLI_CMD_KEYS_LIST: return "keys list";
    case KL_CLI_CMD_KEYS_REGENERATE: return "keys regenerate";
    case KL_CLI_CMD_HEALTH: return "health";
    case KL_CLI_CMD_TENANT_SHOW: return "tenant show";
    case KL_CLI_CMD_STORE_MIGRATE: return "store migrate";
    case KL_CLI_CMD_APP_CERT_ADD: return "app cert add";
    case KL_CLI_CMD_APP_CERT_LIST: return "app cert list";
    case KL_CLI_CMD_APP_CERT_REMOVE: return "app cert remove";
    case KL_CLI_CMD_APP_FEDERATED_ADD: return "app federated add";
    case KL_CLI_CMD_APP_FEDERATED_LIST: return "app federated list";
    case KL_CLI_CMD_APP_FEDERATED_REMOVE: return "app federated remove";
    case KL_CLI_CMD_APP_CREATE: return "app create";
    case KL_CLI_CMD_APP_LIST: return "app list";
    case KL_CLI_CMD_APP_SHOW: return "app show";
    case KL_CLI_CMD_APP_DELETE: return "app delete";
    case KL_CLI_CMD_APP_DISABLE: return "app disable";
    case KL_CLI_CMD_APP_ENABLE: return "app enable";
    case KL_CLI_CMD_APP_SECRET_ADD: return "app secret add";
    case KL_CLI_CMD_APP_SECRET_LIST: return "app secret list";
    case KL_CLI_CMD_APP_SECRET_REMOVE: return "app secret remove";
    case KL_CLI_CMD_SIGNING_KEY_LIST: return "signing-key list";
    case KL_CLI_CMD_SIGNING_KEY_ROTATE: return "signing-key rotate";
    case KL_CLI_CMD_SIGNIN_LIST: return "signin list";
    case KL_CLI_CMD_RUN: return "run";
    case KL_CLI_CMD_ROLE_DEFINITION_LIST: return "role definition list";
    case KL_CLI_CMD_ROLE_DEFINITION_SHOW: return "role definition show";
    case KL_CLI_CMD_ROLE_DEFINITION_CREATE: return "role definition create";
    case KL_CLI_CMD_ROLE_DEFINITION_DELETE: return "role definition delete";
    case KL_CLI_CMD_ROLE_ASSIGNMENT_CREATE: return "role assignment create";
    case KL_CLI_CMD_ROLE_ASSIGNMENT_LIST: return "role assignment list";
    case KL_CLI_CMD_ROLE_ASSIGNMENT_DELETE: return "role assignment delete";
    case KL_CLI_CMD_ROLE_CHECK: return "role check";
    case KL_CLI_CMD_IDENTITY_CREATE: return "identity create";
    case KL_CLI_CMD_IDENTITY_SHOW: return "identity show";
    case KL_CLI_CMD_IDENTITY_LIST: return "identity list";
    case KL_CLI_CMD_IDENTITY_DELETE: return "identity delete";
    case KL_CLI_CMD_IDENTITY_ASSIGN: return "identity assign";
    case KL_CLI_CMD_IDENTITY_REMOVE: return "identity remove";
    case KL_CLI_CMD_SITE_CREATE: return "site create";
    case KL_CLI_CMD_SITE_SHOW: return "site show";
    case KL_CLI_CMD_SITE_DELETE: return "site delete";
    case KL_CLI_CMD_VM_CREATE: return "vm create";
    case KL_CLI_CMD_VM_SHOW: return "vm show";
    case KL_CLI_CMD_VM_DELETE: return "vm delete";
    case KL_CLI_CMD_USER_CREATE: return "user create";
    case KL_CLI_CMD_USER_LIST: return "user list";
    case KL_CLI_CMD_USER_SHOW: return "user show";
    case KL_CLI_CMD_USER_ENABLE: return "user enable";
    case KL_CLI_CMD_USER_DISABLE: return "user disable";
    case KL_CLI_CMD_USER_DELETE: return "user delete";
    case KL_CLI_CMD_USER_RESET_PASSWORD: return "user reset-password";
    case KL_CLI_CMD_GROUP_CREATE: return "group create";
    case KL_CLI_CMD_GROUP_LIST: return "group list";
    case KL_CLI_CMD_GROUP_SHOW: return "group show";
    case KL_CLI_CMD_GROUP_DELETE: return "group delete";
    case KL_CLI_CMD_GROUP_MEMBER_ADD: return "group member add";
    case KL_CLI_CMD_GROUP_MEMBER_REMOVE: return "group member remove";
    case KL_CLI_CMD_GROUP_MEMBER_LIST: return "group member list";
    }
    return "";
}

static const opt_def *find_long(const char *name, size_t n)
{
    for (size_t i = 0; i < NELEM(OPTS); i++)
        if (strlen(OPTS[i].name) == n && memcmp(OPTS[i].name, name, n) == 0)
            return &OPTS[i];
    return NULL;
}

static const opt_def *find_short(char c)
{
    for (size_t i = 0; i < NELEM(OPTS); i++)
        if (OPTS[i].short_name == c)
            return &OPTS[i];
    return NULL;
}

static const char *opt_name_of_bit(unsigned bit)
{
    for (size_t i = 0; i < NELEM(OPTS); i++)
        if (OPTS[i].bit == bit)
            return OPTS[i].name;
    return "?";
}

/* "90d", "12h", "30m", "45s", "2w" -> seconds (1 to 100 years). */
static int parse_age(const char *v, int64_t *out)
{
    int64_t n = 0;
    size_t i = 0;
    for (; v[i] >= '0' && v[i] <= '9' && i < 7; i++)
        n = n * 10 + (v[i] - '0');
    if (i == 0 || n == 0 || v[i] == '\0' || v[i + 1] != '\0')
        return KL_EINVAL;
    static const struct {
        char unit;
        int64_t s;
    } units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}, {'w', 7 * 86400}};
    for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
        if (v[i] == units[u].unit && n * units[u].s <= 100LL * 366 * 86400) {
            *out = n * units[u].s;
            return 0;
        }
    }
    return KL_EINVAL;
}

static int parse_bool(const char *v, bool *out)
{
    if (strcmp(v, "true") == 0) {
        *out = true;
        return 0;
    }
    if (strcmp(v, "false") == 0) {
        *out = false;
        return 0;
    }
    return KL_EINVAL;
}

/* Stores one option value; shown is the option as the user wrote it, for messages. */
static int apply(kl_cli_args *a, const opt_def *o, const char *shown, const char *v, char *err,
                 size_t errlen)
{
    a->opts |= o->bit;
    switch (o->id) {
    case O_HELP: a->help = true; return 0;
    case O_VERSION: a->version = true; return 0;
    case O_DATA: a->data = true; return 0;
    case O_CUSTOM: a->custom = true; return 0;
    case O_ALL: a->all = true; return 0;
    case O_REVOKE_PREVIOUS: a->revoke_previous = true; return 0;
    case O_FAILED: a->failed = true; return 0;
    case O_FORCE_CHANGE: a->force_change = true; return 0;
    case O_OUTPUT:
        if (strcmp(v, "json") == 0)
            a->output = KL_CLI_OUTPUT_JSON;
        else if (strcmp(v, "table") == 0)
            a->output = KL_CLI_OUTPUT_TABLE;
        else
            return usage(err, errlen, "%s must be json or table, not '%s'", shown, v);
        return 0;
    case O_DISABLE_LOCAL_AUTH:
        a->disable_local_auth = true;
        a->disable_local_auth_valued = v != NULL;
        if (v && parse_bool(v, &a->disable_local_auth) < 0)
            return usage(err, errlen, "%s takes true or false, not '%s'", shown, v);
        return 0;
    default: break;
    }
    /* The remaining options all take a value that must not be empty. */
    if (v[0] == '\0')
        return usage(err, errlen, "%s needs a non-empty value", shown);
    switch (o->id) {
    case O_DATA_DIR: a->data_dir = v; break;
    case O_SUBSCRIPTION: a->subscription = v; break;
    case O_RESOURCE_GROUP: a->resource_group = v; break;
    case O_LOCATION: a->location = v; break;
    case O_KIND: a->kind = v; break;
    case O_BACKEND: a->backend = v; break;
    case O_MODEL: a->model = v; break;
    case O_UPSTREAM_MODEL: a->upstream_model = v; break;
    case O_CREDENTIAL_ENV: a->credential_env = v; break;
    case O_SCOPE: a->scope = v; break;
    case O_ACCOUNT: a->account = v; break;
    case O_ASSIGNEE: a->assignee = v; break;
    case O_ROLE: a->role = v; break;
    case O_ACTION: a->action = v; break;
    case O_FILE: a->file = v; break;
    case O_FROM: a->from = v; break;
    case O_TO: a->to = v; break;
    case O_DISPLAY_NAME: a->display_name = v; break;
    case O_DAYS: a->days = v; break;
    case O_CLIENT: a->client = v; break;
    case O_SITE: a->site = v; break;
    case O_PUBLIC_NETWORK_ACCESS:
        if (!kl_str_ieq(v, "Enabled") && !kl_str_ieq(v, "Disabled"))
            return usage(err, errlen, "%s must be Enabled or Disabled, not '%s'", shown, v);
        a->public_network_access = v;
        break;
    case O_DEFAULT_ACTION:
        if (!kl_str_ieq(v, "Allow") && !kl_str_ieq(v, "Deny"))
            return usage(err, errlen, "%s must be Allow or Deny, not '%s'", shown, v);
        a->default_action = v;
        break;
    case O_ALLOW_IP:
        if (a->n_allow_ip == KL_CLI_MAX_ALLOW_IP)
            return usage(err, errlen, "at most %d %s options", KL_CLI_MAX_ALLOW_IP, shown);
        a->allow_ip[a->n_allow_ip++] = v;
        break;
    case O_RESOURCE:
        if (a->n_resource == KL_CLI_MAX_RESOURCES)
            return usage(err, errlen, "at most %d %s options", KL_CLI_MAX_RESOURCES, shown);
        a->resource[a->n_resource++] = v;
        break;
    case O_ASSIGN_IDENTITY:
        if (a->n_assign_identity == KL_CLI_MAX_IDENTITIES)
            return usage(err, errlen, "at most %d %s options", KL_CLI_MAX_IDENTITIES, shown);
        a->assign_identity[a->n_assign_identity++] = v;
        break;
    case O_OLDER_THAN:
        if (parse_age(v, &a->older_than_s) < 0)
            return usage(err, errlen, "%s takes a number and a unit (s, m, h, d, w), not '%s'",
                         shown, v);
        break;
    default: return usage(err, errlen, "internal error: unhandled option %s", shown);
    }
    return 0;
}

/* Handles argv[*i], an option; may consume argv[*i + 1] as its value. */
static int parse_option(kl_cli_args *a, int argc, char *const argv[], int *i, char *err,
                        size_t errlen)
{
    const char *arg = argv[*i];
    const opt_def *o = NULL;
    const char *inline_val = NULL;

    if (arg[1] == '-') {
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t n = eq ? (size_t)(eq - name) : strlen(name);
        o = find_long(name, n);
        if (eq)
            inline_val = eq + 1;
    } else if (arg[2] == '\0') {
        o = find_short(arg[1]);
    }
    if (!o) {
        if (arg[1] == '-' && strchr(arg, '='))
            return usage(err, errlen, "unknown option '%.*s'", (int)(strchr(arg, '=') - arg), arg);
        return usage(err, errlen, "unknown option '%s'", arg);
    }
    /* Name the option as typed, without any "=value" (it might be long or sensitive). */
    char shown[64];
    if (arg[1] == '-')
        snprintf(shown, sizeof(shown), "--%s", o->name);
    else
        snprintf(shown, sizeof(shown), "-%c", arg[1]);

    switch (o->kind) {
    case OPT_FLAG:
        if (inline_val)
            return usage(err, errlen, "%s takes no value", shown);
        return apply(a, o, shown, NULL, err, errlen);
    case OPT_BOOLISH:
        if (!inline_val && *i + 1 < argc &&
            (strcmp(argv[*i + 1], "true") == 0 || strcmp(argv[*i + 1], "false") == 0))
            inline_val = argv[++*i];
        return apply(a, o, shown, inline_val, err, errlen);
    case OPT_VALUE:
        if (!inline_val) {
            /* A following option is a forgotten value, not the value. */
            if (*i + 1 >= argc || (argv[*i + 1][0] == '-' && argv[*i + 1][1] != '\0'))
                return usage(err, errlen, "%s needs a value", shown);
            inline_val = argv[++*i];
        }
        return apply(a, o, shown, inline_val, err, errlen);
    }
    return usage(err, errlen, "internal error: bad option kind");
}

static const cmd_def *find_cmd(const char *noun, const char *verb, const char *verb2)
{
    for (size_t i = 0; i < NELEM(CMDS); i++) {
        const cmd_def *c = &CMDS[i];
        if (strcmp(c->noun, noun) != 0)
            continue;
        if (c->verb == NULL)
            return c;
        if (!verb || strcmp(c->verb, verb) != 0)
            continue;
        if (c->verb2 == NULL || (verb2 && strcmp(c->verb2, verb2) == 0))
            return c;
    }
    return NULL;
}

static bool known_noun(const char *noun, bool *has_verbs)
{
    for (size_t i = 0; i < NELEM(CMDS); i++)
        if (strcmp(CMDS[i].noun, noun) == 0) {
            *has_verbs = CMDS[i].verb != NULL;
            return true;
        }
    return false;
}

/* True when "noun verb" is a group of three-word commands, like "role definition". */
static bool verb_has_verbs(const char *noun, const char *verb)
{
    for (size_t i = 0; i < NELEM(CMDS); i++)
        if (strcmp(CMDS[i].noun, noun) == 0 && CMDS[i].verb && strcmp(CMDS[i].verb, verb) == 0)
            return CMDS[i].verb2 != NULL;
    return false;
}

/* The word of c that follows "noun" (verb NULL) or "noun verb"; NULL if c is not such a
 * command. */
static const char *next_word(const cmd_def *c, const char *noun, const char *verb)
{
    if (strcmp(c->noun, noun) != 0 || !c->verb)
        return NULL;
    if (!verb)
        return c->verb;
    return strcmp(c->verb, verb) == 0 ? c->verb2 : NULL;
}

/* Lists the words that may follow "noun" (verb NULL) or "noun verb", once each. */
static void list_verbs(const char *noun, const char *verb, char *out, size_t outlen)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < NELEM(CMDS); i++) {
        const char *word = next_word(&CMDS[i], noun, verb);
        if (!word)
            continue;
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++) {
            const char *prev = next_word(&CMDS[j], noun, verb);
            seen = prev && strcmp(prev, word) == 0;
        }
        if (seen)
            continue;
        int n = snprintf(out + used, outlen - used, "%s%s", used ? ", " : "", word);
        if (n < 0 || (size_t)n >= outlen - used)
            return;
        used += (size_t)n;
    }
}

static bool is_http_url(const char *s)
{
    return kl_str_istarts(s, "http://") || kl_str_istarts(s, "https://");
}

/* The rules of the directory and RBAC commands: required options, --scope versus
 * --account, and the syntax of scopes and assignment ids. */
static int check_rbac(const kl_cli_args *a, const cmd_def *c, const char *name, char *err,
                      size_t errlen)
{
    char why[256];

    if (a->scope && a->account)
        return usage(err, errlen, "%s: give --scope or --account, not both", name);
    if (a->scope && kl_cli_scope_check(a->scope, why, sizeof(why)) < 0)
        return usage(err, errlen, "%s: invalid --scope: %s", name, why);
    if (a->account && !kl_cli_scope_segment_ok(a->account, strlen(a->account)))
        return usage(err, errlen, "%s: invalid --account: '%s' is not an account name", name,
                     a->account);
    bool has_scope = a->scope || a->account;

    switch (c->cmd) {
    case KL_CLI_CMD_ROLE_DEFINITION_CREATE:
        if (!a->file)
            return usage(err, errlen, "%s: missing --file ROLE.json", name);
        break;
    case KL_CLI_CMD_ROLE_ASSIGNMENT_CREATE:
        if (!a->assignee)
            return usage(err, errlen, "%s: missing --assignee", name);
        if (!a->role)
            return usage(err, errlen, "%s: missing --role", name);
        if (!has_scope)
            return usage(err, errlen, "%s: missing --scope SCOPE (or --account NAME)", name);
        break;
    case KL_CLI_CMD_ROLE_CHECK:
        if (!a->assignee)
            return usage(err, errlen, "%s: missing --assignee", name);
        if (!a->action)
            return usage(err, errlen, "%s: missing --action", name);
        if (!has_scope)
            return usage(err, errlen, "%s: missing --scope SCOPE (or --account NAME)", name);
        break;
    case KL_CLI_CMD_ROLE_ASSIGNMENT_DELETE: {
        const char *x = a->pos[0];
        if (x[0] == '/') {
            char guid[KL_UUID_LEN + 1];
            kl_buf scope;
            kl_buf_init(&scope, KL_CLI_MAX_SCOPE + 1);
            int rc = kl_cli_assignment_id_split(x, &scope, guid);
            kl_buf_free(&scope);
            if (rc < 0)
                return usage(err, errlen,
                             "%s: '%s' is not a role assignment id "
                             "({scope}/providers/Microsoft.Authorization/roleAssignments/{guid})",
                             name, x);
            if (has_scope)
                return usage(err, errlen,
                             "%s: a full assignment id names its scope; drop --scope/--account",
                             name);
        } else if (!kl_uuid_valid(x, strlen(x))) {
            return usage(err, errlen,
                         "%s: ASSIGNMENT must be the assignment's GUID or its full id, not '%s'",
                         name, x);
        }
        break;
    }
    default: break;
    }
    return 0;
}

/* Checks that hold for one command whatever the server says. */
static int check_command(const kl_cli_args *a, const cmd_def *c, char *err, size_t errlen)
{
    const char *name = kl_cli_cmd_name(c->cmd);
    unsigned extra = a->opts & ~c->opts;
    if (extra) {
        unsigned bit = extra & ~(extra - 1);
        return usage(err, errlen, "%s does not take --%s", name, opt_name_of_bit(bit));
    }
    for (size_t i = 0; i < c->npos; i++)
        if (a->pos[i][0] == '\0')
            return usage(err, errlen, "%s: %s must not be empty", name, c->pos_names[i]);

    switch (c->cmd) {
    case KL_CLI_CMD_ACCOUNT_UPDATE:
        if ((a->opts & KL_CLI_OPT_DISABLE_LOCAL_AUTH) && !a->disable_local_auth_valued)
            return usage(err, errlen, "%s: missing --disable-local-auth true|false", name);
        if (!(a->opts & (KL_CLI_OPT_DISABLE_LOCAL_AUTH | KL_CLI_OPT_PUBLIC_NETWORK_ACCESS |
                         KL_CLI_OPT_DEFAULT_ACTION | KL_CLI_OPT_ALLOW_IP)))
            return usage(err, errlen,
                         "%s: nothing to change (give --disable-local-auth true|false, "
                         "--public-network-access, --default-action or --allow-ip)",
                         name);
        break;
    case KL_CLI_CMD_DEPLOYMENT_CREATE: {
        bool url = a->backend && strcmp(a->backend, "echo") != 0;
        if (url && !is_http_url(a->backend))
            return usage(err, errlen, "%s: --backend must be echo or an http:// or https:// URL",
                         name);
        if (!url && (a->opts & KL_CLI_OPT_UPSTREAM_MODEL))
            return usage(err, errlen, "%s: --upstream-model needs --backend URL", name);
        if (!url && (a->opts & KL_CLI_OPT_CREDENTIAL_ENV))
            return usage(err, errlen, "%s: --credential-env needs --backend URL", name);
        break;
    }
    case KL_CLI_CMD_RUN:
        if (!a->site)
            return usage(err, errlen, "%s: missing --site NAME", name);
        if (a->run_argc < 1)
            return usage(err, errlen, "%s: missing the command to start, after --", name);
        break;
    case KL_CLI_CMD_KEYS_REGENERATE:
        if (!kl_str_ieq(a->pos[1], "key1") && !kl_str_ieq(a->pos[1], "key2"))
            return usage(err, errlen, "%s: KEY must be key1 or key2, not '%s'", name, a->pos[1]);
        break;
    case KL_CLI_CMD_IDENTITY_ASSIGN:
    case KL_CLI_CMD_IDENTITY_REMOVE: {
        char why[256];
        if (a->n_resource == 0)
            return usage(err, errlen, "%s: missing --resource ID (a site, VM or account id)", name);
        for (size_t i = 0; i < a->n_resource; i++)
            if (a->resource[i][0] != '/' ||
                kl_cli_scope_check(a->resource[i], why, sizeof(why)) < 0 ||
                !kl_cli_resource_kind(a->resource[i]))
                return usage(err, errlen,
                             "%s: --resource must be the id of a site, VM or account "
                             "(/subscriptions/.../providers/Microsoft.Web/sites/NAME, "
                             "Microsoft.Compute/virtualMachines/NAME or "
                             "Microsoft.CognitiveServices/accounts/NAME), not '%s'",
                             name, a->resource[i]);
        break;
    }
    case KL_CLI_CMD_SITE_CREATE:
    case KL_CLI_CMD_VM_CREATE: {
        bool system = false;
        for (size_t i = 0; i < a->n_assign_identity; i++) {
            if (strcmp(a->assign_identity[i], "system") == 0) {
                if (system)
                    return usage(err, errlen, "%s: --assign-identity system given twice", name);
                system = true;
            }
        }
        break;
    }
    default: break;
    }
    return check_rbac(a, c, name, err, errlen);
}

int kl_cli_args_parse(int argc, char *const argv[], kl_cli_args *out, char *err, size_t errlen)
{
    const char *words[MAX_WORDS];
    size_t nwords = 0;
    bool end_of_options = false;
    int rc;

    memset(out, 0, sizeof(*out));
    if (errlen > 0)
        err[0] = '\0';

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!end_of_options && strcmp(arg, "--") == 0) {
            /* keyless run: what follows is the command to start, options and all. */
            if (nwords == 1 && strcmp(words[0], "run") == 0) {
                out->run_argv = &argv[i + 1];
                out->run_argc = argc - i - 1;
                break;
            }
            end_of_options = true;
            continue;
        }
        if (!end_of_options && arg[0] == '-' && arg[1] != '\0') {
            if ((rc = parse_option(out, argc, argv, &i, err, errlen)) < 0)
                return rc;
            continue;
        }
        if (nwords == MAX_WORDS)
            continue; /* already too many; the first extra one is named below */
        words[nwords++] = arg;
    }

    if (nwords == 0) {
        if (out->help || out->version)
            return 0;
        return usage(err, errlen, "no command given");
    }

    out->noun = words[0];
    bool has_verbs = false;
    if (!known_noun(out->noun, &has_verbs)) {
        if (out->help)
            return 0;
        return usage(err, errlen, "unknown command '%s'", out->noun);
    }
    size_t first_pos = 1;
    char verbs[128];
    if (has_verbs) {
        list_verbs(out->noun, NULL, verbs, sizeof(verbs));
        if (nwords < 2) {
            if (out->help)
                return 0;
            return usage(err, errlen, "'%s' needs a command: %s", out->noun, verbs);
        }
        out->verb = words[1];
        first_pos = 2;
        if (verb_has_verbs(out->noun, out->verb)) {
            if (nwords < 3) {
                if (out->help)
                    return 0;
                list_verbs(out->noun, out->verb, verbs, sizeof(verbs));
                return usage(err, errlen, "'%s %s' needs a command: %s", out->noun, out->verb,
                             verbs);
            }
            out->verb2 = words[2];
            first_pos = 3;
        }
    }
    const cmd_def *c = find_cmd(out->noun, out->verb, out->verb2);
    if (!c) {
        if (out->help)
            return 0;
        list_verbs(out->noun, out->verb2 ? out->verb : NULL, verbs, sizeof(verbs));
        if (out->verb2)
            return usage(err, errlen, "unknown command '%s %s %s' (try: %s)", out->noun, out->verb,
                         out->verb2, verbs);
        return usage(err, errlen, "unknown command '%s %s' (try: %s)", out->noun, out->verb, verbs);
    }
    out->cmd = c->cmd;
    size_t given = nwords - first_pos;
    for (size_t i = 0; i < given && i < KL_CLI_MAX_POS; i++)
        out->pos[i] = words[first_pos + i];
    out->npos = given < KL_CLI_MAX_POS ? given : KL_CLI_MAX_POS;
    if (out->help)
        return 0;
    if (given < c->npos)
        return usage(err, errlen, "%s: missing %s", kl_cli_cmd_name(c->cmd), c->pos_names[given]);
    if (given > c->npos)
        return usage(err, errlen, "%s: unexpected argument '%s'", kl_cli_cmd_name(c->cmd),
                     words[first_pos + c->npos]);
    return check_command(out, c, err, errlen);
}

int kl_cli_default_data_dir(bool is_root, const char *xdg_data_home, const char *home, char *out,
                            size_t outlen)
{
    int n;
    /* Keep in step with kl_config_default_data_dir in keylessd, or the CLI would look
     * for the socket somewhere the daemon never put it. */
    if (is_root)
        n = snprintf(out, outlen, "/var/lib/keyless");
    else if (xdg_data_home && xdg_data_home[0] == '/')
        n = snprintf(out, outlen, "%s/keyless", xdg_data_home);
    else
        n = snprintf(out, outlen, "%s/.local/share/keyless", home && home[0] ? home : "/tmp");
    if (n < 0 || (size_t)n >= outlen)
        return KL_ETOOBIG;
    return 0;
}
