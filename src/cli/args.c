/* Command-line parsing for the keyless CLI; see args.h. Options are looked up in one
 * table whatever their position, then checked against what the resolved command takes. */
#include "cli/args.h"

#include <stdio.h>
#include <string.h>

#include "cli/authz.h"
#include "cli/commands.h"
#include "cli/identity_ids.h"
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
    O_SERVER,
    O_TENANT,
    O_CA_FILE,
    O_BROWSER,
    O_PUBLIC_CLIENT,
    O_REDIRECT_URI,
    O_PASSWORD_GRANT,
} opt_id;

typedef struct opt_def {
    const char *name; /* without the leading "--" */
    char short_name;  /* 0 if none */
    opt_kind kind;
    opt_id id;
    uint64_t bit; /* KL_CLI_OPT_* for command options, 0 for global ones */
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
    {"server", 0, OPT_VALUE, O_SERVER, 0},
    {"tenant", 0, OPT_VALUE, O_TENANT, KL_CLI_OPT_TENANT},
    {"ca-file", 0, OPT_VALUE, O_CA_FILE, KL_CLI_OPT_CA_FILE},
    {"browser", 0, OPT_FLAG, O_BROWSER, KL_CLI_OPT_BROWSER},
    {"public-client", 0, OPT_FLAG, O_PUBLIC_CLIENT, KL_CLI_OPT_PUBLIC_CLIENT},
    {"redirect-uri", 0, OPT_VALUE, O_REDIRECT_URI, KL_CLI_OPT_REDIRECT_URI},
    {"password-grant", 0, OPT_VALUE, O_PASSWORD_GRANT, KL_CLI_OPT_PASSWORD_GRANT},
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

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

static const char *opt_name_of_bit(uint64_t bit)
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
    case O_BROWSER: a->browser = true; return 0;
    case O_PUBLIC_CLIENT: a->public_client = true; return 0;
    case O_OUTPUT:
        if (strcmp(v, "json") == 0)
            a->output = KL_CLI_OUTPUT_JSON;
        else if (strcmp(v, "table") == 0)
            a->output = KL_CLI_OUTPUT_TABLE;
        else
            return kl_err_say(err, errlen, KL_EINVAL, "%s must be json or table, not '%s'", shown,
                              v);
        return 0;
    case O_DISABLE_LOCAL_AUTH:
        a->disable_local_auth = true;
        a->disable_local_auth_valued = v != NULL;
        if (v && parse_bool(v, &a->disable_local_auth) < 0)
            return kl_err_say(err, errlen, KL_EINVAL, "%s takes true or false, not '%s'", shown, v);
        return 0;
    default: break;
    }
    /* The remaining options all take a value that must not be empty. */
    if (v[0] == '\0')
        return kl_err_say(err, errlen, KL_EINVAL, "%s needs a non-empty value", shown);
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
    case O_SERVER:
        if (!kl_str_istarts(v, "https://") || strlen(v) <= strlen("https://"))
            return kl_err_say(err, errlen, KL_EINVAL, "%s must be an https:// URL, not '%s'", shown,
                              v);
        a->server = v;
        break;
    case O_TENANT: a->tenant = v; break;
    case O_REDIRECT_URI:
        if (a->n_redirect_uri == KL_CLI_MAX_REDIRECT_URIS)
            return kl_err_say(err, errlen, KL_EINVAL, "at most %d %s options",
                              KL_CLI_MAX_REDIRECT_URIS, shown);
        a->redirect_uri[a->n_redirect_uri++] = v;
        break;
    case O_PASSWORD_GRANT:
        if (strcmp(v, "on") != 0 && strcmp(v, "off") != 0)
            return kl_err_say(err, errlen, KL_EINVAL, "%s takes on or off, not '%s'", shown, v);
        a->password_grant = strcmp(v, "on") == 0;
        break;
    case O_CA_FILE: a->ca_file = v; break;
    case O_PUBLIC_NETWORK_ACCESS:
        if (!kl_str_ieq(v, "Enabled") && !kl_str_ieq(v, "Disabled"))
            return kl_err_say(err, errlen, KL_EINVAL, "%s must be Enabled or Disabled, not '%s'",
                              shown, v);
        a->public_network_access = v;
        break;
    case O_DEFAULT_ACTION:
        if (!kl_str_ieq(v, "Allow") && !kl_str_ieq(v, "Deny"))
            return kl_err_say(err, errlen, KL_EINVAL, "%s must be Allow or Deny, not '%s'", shown,
                              v);
        a->default_action = v;
        break;
    case O_ALLOW_IP:
        if (a->n_allow_ip == KL_CLI_MAX_ALLOW_IP)
            return kl_err_say(err, errlen, KL_EINVAL, "at most %d %s options", KL_CLI_MAX_ALLOW_IP,
                              shown);
        a->allow_ip[a->n_allow_ip++] = v;
        break;
    case O_RESOURCE:
        if (a->n_resource == KL_CLI_MAX_RESOURCES)
            return kl_err_say(err, errlen, KL_EINVAL, "at most %d %s options", KL_CLI_MAX_RESOURCES,
                              shown);
        a->resource[a->n_resource++] = v;
        break;
    case O_ASSIGN_IDENTITY:
        if (a->n_assign_identity == KL_CLI_MAX_IDENTITIES)
            return kl_err_say(err, errlen, KL_EINVAL, "at most %d %s options",
                              KL_CLI_MAX_IDENTITIES, shown);
        a->assign_identity[a->n_assign_identity++] = v;
        break;
    case O_OLDER_THAN:
        if (parse_age(v, &a->older_than_s) < 0)
            return kl_err_say(err, errlen, KL_EINVAL,
                              "%s takes a number and a unit (s, m, h, d, w), not '%s'", shown, v);
        break;
    default:
        return kl_err_say(err, errlen, KL_EINVAL, "internal error: unhandled option %s", shown);
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
            return kl_err_say(err, errlen, KL_EINVAL, "unknown option '%.*s'",
                              (int)(strchr(arg, '=') - arg), arg);
        return kl_err_say(err, errlen, KL_EINVAL, "unknown option '%s'", arg);
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
            return kl_err_say(err, errlen, KL_EINVAL, "%s takes no value", shown);
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
                return kl_err_say(err, errlen, KL_EINVAL, "%s needs a value", shown);
            inline_val = argv[++*i];
        }
        return apply(a, o, shown, inline_val, err, errlen);
    }
    return kl_err_say(err, errlen, KL_EINVAL, "internal error: bad option kind");
}

/* True when word i of c's name is w[0..strlen(w)); with w NULL, when there is no word i. */
static bool word_is(const kl_cli_command *c, size_t i, const char *w)
{
    const char *p;
    size_t n = kl_cli_command_word(c->name, i, &p);
    if (!w)
        return p == NULL;
    return p && strlen(w) == n && memcmp(p, w, n) == 0;
}

static const kl_cli_command *find_cmd(const char *noun, const char *verb, const char *verb2)
{
    const kl_cli_command *c;
    for (size_t i = 0; (c = kl_cli_command_at(i)) != NULL; i++) {
        if (!word_is(c, 0, noun))
            continue;
        if (word_is(c, 1, NULL))
            return c;
        if (!verb || !word_is(c, 1, verb))
            continue;
        if (word_is(c, 2, NULL) || (verb2 && word_is(c, 2, verb2)))
            return c;
    }
    return NULL;
}

static bool known_noun(const char *noun, bool *has_verbs)
{
    const kl_cli_command *c;
    for (size_t i = 0; (c = kl_cli_command_at(i)) != NULL; i++)
        if (word_is(c, 0, noun)) {
            *has_verbs = !word_is(c, 1, NULL);
            return true;
        }
    return false;
}

/* True when "noun verb" is a group of three-word commands, like "role definition". */
static bool verb_has_verbs(const char *noun, const char *verb)
{
    const kl_cli_command *c;
    for (size_t i = 0; (c = kl_cli_command_at(i)) != NULL; i++)
        if (word_is(c, 0, noun) && word_is(c, 1, verb))
            return !word_is(c, 2, NULL);
    return false;
}

/* The word of c that follows "noun" (verb NULL) or "noun verb", its length in *n; NULL
 * if c is not such a command. */
static const char *next_word(const kl_cli_command *c, const char *noun, const char *verb, size_t *n)
{
    const char *w;
    if (!word_is(c, 0, noun) || (verb && !word_is(c, 1, verb)))
        return NULL;
    *n = kl_cli_command_word(c->name, verb ? 2 : 1, &w);
    return w;
}

/* Lists the words that may follow "noun" (verb NULL) or "noun verb", once each. */
static void list_verbs(const char *noun, const char *verb, char *out, size_t outlen)
{
    const kl_cli_command *c;
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; (c = kl_cli_command_at(i)) != NULL; i++) {
        size_t n, pn;
        const char *word = next_word(c, noun, verb, &n);
        if (!word)
            continue;
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++) {
            const char *prev = next_word(kl_cli_command_at(j), noun, verb, &pn);
            seen = prev && pn == n && memcmp(prev, word, n) == 0;
        }
        if (seen)
            continue;
        int k = snprintf(out + used, outlen - used, "%s%.*s", used ? ", " : "", (int)n, word);
        if (k < 0 || (size_t)k >= outlen - used)
            return;
        used += (size_t)k;
    }
}

static bool is_http_url(const char *s)
{
    return kl_str_istarts(s, "http://") || kl_str_istarts(s, "https://");
}

/* The rules of the directory and RBAC commands: required options, --scope versus
 * --account, and the syntax of scopes and assignment ids. */
static int check_rbac(const kl_cli_args *a, const kl_cli_command *c, const char *name, char *err,
                      size_t errlen)
{
    char why[512];

    if (a->scope && a->account)
        return kl_err_say(err, errlen, KL_EINVAL, "%s: give --scope or --account, not both", name);
    if (a->scope && kl_cli_scope_check(a->scope, why, sizeof(why)) < 0)
        return kl_err_say(err, errlen, KL_EINVAL, "%s: invalid --scope: %s", name, why);
    if (a->account && !kl_cli_scope_segment_ok(a->account, strlen(a->account)))
        return kl_err_say(err, errlen, KL_EINVAL,
                          "%s: invalid --account: '%s' is not an account name", name, a->account);
    bool has_scope = a->scope || a->account;

    switch (c->cmd) {
    case KL_CLI_CMD_ROLE_DEFINITION_CREATE:
        if (!a->file)
            return kl_err_say(err, errlen, KL_EINVAL, "%s: missing --file ROLE.json", name);
        break;
    case KL_CLI_CMD_ROLE_ASSIGNMENT_CREATE:
        if (!a->assignee)
            return kl_err_say(err, errlen, KL_EINVAL, "%s: missing --assignee", name);
        if (!a->role)
            return kl_err_say(err, errlen, KL_EINVAL, "%s: missing --role", name);
        if (!has_scope)
            return kl_err_say(err, errlen, KL_EINVAL,
                              "%s: missing --scope SCOPE (or --account NAME)", name);
        break;
    case KL_CLI_CMD_ROLE_CHECK:
        if (!a->assignee)
            return kl_err_say(err, errlen, KL_EINVAL, "%s: missing --assignee", name);
        if (!a->action)
            return kl_err_say(err, errlen, KL_EINVAL, "%s: missing --action", name);
        if (!has_scope)
            return kl_err_say(err, errlen, KL_EINVAL,
                              "%s: missing --scope SCOPE (or --account NAME)", name);
        break;
    case KL_CLI_CMD_ROLE_ASSIGNMENT_DELETE: {
        const char *x = a->pos[0];
        if (x[0] == '/') {
            char guid[KL_UUID_LEN + 1];
            kl_buf scope;
            kl_buf_init(&scope, KL_MAX_SCOPE + 1);
            int rc = kl_cli_assignment_id_split(x, &scope, guid);
            kl_buf_free(&scope);
            if (rc < 0)
                return kl_err_say(
                    err, errlen, KL_EINVAL,
                    "%s: '%s' is not a role assignment id "
                    "({scope}/providers/Microsoft.Authorization/roleAssignments/{guid})",
                    name, x);
            if (has_scope)
                return kl_err_say(
                    err, errlen, KL_EINVAL,
                    "%s: a full assignment id names its scope; drop --scope/--account", name);
        } else if (!kl_uuid_valid(x, strlen(x))) {
            return kl_err_say(
                err, errlen, KL_EINVAL,
                "%s: ASSIGNMENT must be the assignment's GUID or its full id, not '%s'", name, x);
        }
        break;
    }
    default: break;
    }
    return 0;
}

/* Checks that hold for one command whatever the server says. */
static int check_command(const kl_cli_args *a, const kl_cli_command *c, char *err, size_t errlen)
{
    const char *name = kl_cli_cmd_name(c->cmd);
    uint64_t extra = a->opts & ~c->opts;
    if (extra) {
        uint64_t bit = extra & ~(extra - 1);
        return kl_err_say(err, errlen, KL_EINVAL, "%s does not take --%s", name,
                          opt_name_of_bit(bit));
    }
    for (size_t i = 0; i < c->npos; i++)
        if (a->pos[i][0] == '\0')
            return kl_err_say(err, errlen, KL_EINVAL, "%s: %s must not be empty", name,
                              c->pos_names[i]);

    switch (c->cmd) {
    case KL_CLI_CMD_ACCOUNT_UPDATE:
        if ((a->opts & KL_CLI_OPT_DISABLE_LOCAL_AUTH) && !a->disable_local_auth_valued)
            return kl_err_say(err, errlen, KL_EINVAL, "%s: missing --disable-local-auth true|false",
                              name);
        if (!(a->opts & (KL_CLI_OPT_DISABLE_LOCAL_AUTH | KL_CLI_OPT_PUBLIC_NETWORK_ACCESS |
                         KL_CLI_OPT_DEFAULT_ACTION | KL_CLI_OPT_ALLOW_IP)))
            return kl_err_say(err, errlen, KL_EINVAL,
                              "%s: nothing to change (give --disable-local-auth true|false, "
                              "--public-network-access, --default-action or --allow-ip)",
                              name);
        break;
    case KL_CLI_CMD_DEPLOYMENT_CREATE: {
        bool url = a->backend && strcmp(a->backend, "echo") != 0;
        if (url && !is_http_url(a->backend))
            return kl_err_say(err, errlen, KL_EINVAL,
                              "%s: --backend must be echo or an http:// or https:// URL", name);
        if (!url && (a->opts & KL_CLI_OPT_UPSTREAM_MODEL))
            return kl_err_say(err, errlen, KL_EINVAL, "%s: --upstream-model needs --backend URL",
                              name);
        if (!url && (a->opts & KL_CLI_OPT_CREDENTIAL_ENV))
            return kl_err_say(err, errlen, KL_EINVAL, "%s: --credential-env needs --backend URL",
                              name);
        break;
    }
    case KL_CLI_CMD_RUN:
        if (!a->site)
            return kl_err_say(err, errlen, KL_EINVAL, "%s: missing --site NAME", name);
        if (a->run_argc < 1)
            return kl_err_say(err, errlen, KL_EINVAL, "%s: missing the command to start, after --",
                              name);
        break;
    case KL_CLI_CMD_TENANT_SET:
        if (!(a->opts & KL_CLI_OPT_PASSWORD_GRANT))
            return kl_err_say(err, errlen, KL_EINVAL,
                              "%s: nothing to change (give --password-grant on|off)", name);
        break;
    case KL_CLI_CMD_KEYS_REGENERATE:
        if (!kl_str_ieq(a->pos[1], "key1") && !kl_str_ieq(a->pos[1], "key2"))
            return kl_err_say(err, errlen, KL_EINVAL, "%s: KEY must be key1 or key2, not '%s'",
                              name, a->pos[1]);
        break;
    case KL_CLI_CMD_IDENTITY_ASSIGN:
    case KL_CLI_CMD_IDENTITY_REMOVE: {
        char why[512];
        if (a->n_resource == 0)
            return kl_err_say(err, errlen, KL_EINVAL,
                              "%s: missing --resource ID (a site, VM or account id)", name);
        for (size_t i = 0; i < a->n_resource; i++)
            if (a->resource[i][0] != '/' ||
                kl_cli_scope_check(a->resource[i], why, sizeof(why)) < 0 ||
                !kl_cli_resource_kind(a->resource[i]))
                return kl_err_say(err, errlen, KL_EINVAL,
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
                    return kl_err_say(err, errlen, KL_EINVAL,
                                      "%s: --assign-identity system given twice", name);
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
        return kl_err_say(err, errlen, KL_EINVAL, "no command given");
    }

    out->noun = words[0];
    bool has_verbs = false;
    if (!known_noun(out->noun, &has_verbs)) {
        if (out->help)
            return 0;
        return kl_err_say(err, errlen, KL_EINVAL, "unknown command '%s'", out->noun);
    }
    size_t first_pos = 1;
    char verbs[128];
    if (has_verbs) {
        list_verbs(out->noun, NULL, verbs, sizeof(verbs));
        if (nwords < 2) {
            if (out->help)
                return 0;
            return kl_err_say(err, errlen, KL_EINVAL, "'%s' needs a command: %s", out->noun, verbs);
        }
        out->verb = words[1];
        first_pos = 2;
        if (verb_has_verbs(out->noun, out->verb)) {
            if (nwords < 3) {
                if (out->help)
                    return 0;
                list_verbs(out->noun, out->verb, verbs, sizeof(verbs));
                return kl_err_say(err, errlen, KL_EINVAL, "'%s %s' needs a command: %s", out->noun,
                                  out->verb, verbs);
            }
            out->verb2 = words[2];
            first_pos = 3;
        }
    }
    const kl_cli_command *c = find_cmd(out->noun, out->verb, out->verb2);
    if (!c) {
        if (out->help)
            return 0;
        list_verbs(out->noun, out->verb2 ? out->verb : NULL, verbs, sizeof(verbs));
        if (out->verb2)
            return kl_err_say(err, errlen, KL_EINVAL, "unknown command '%s %s %s' (try: %s)",
                              out->noun, out->verb, out->verb2, verbs);
        return kl_err_say(err, errlen, KL_EINVAL, "unknown command '%s %s' (try: %s)", out->noun,
                          out->verb, verbs);
    }
    out->cmd = c->cmd;
    size_t given = nwords - first_pos;
    for (size_t i = 0; i < given && i < KL_CLI_MAX_POS; i++)
        out->pos[i] = words[first_pos + i];
    out->npos = given < KL_CLI_MAX_POS ? given : KL_CLI_MAX_POS;
    if (out->help)
        return 0;
    if (given < c->npos)
        return kl_err_say(err, errlen, KL_EINVAL, "%s: missing %s", kl_cli_cmd_name(c->cmd),
                          c->pos_names[given]);
    if (given > c->npos)
        return kl_err_say(err, errlen, KL_EINVAL, "%s: unexpected argument '%s'",
                          kl_cli_cmd_name(c->cmd), words[first_pos + c->npos]);
    return check_command(out, c, err, errlen);
}
