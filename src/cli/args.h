/* Command-line parsing for the keyless CLI: global options (accepted before or after the
 * command), the command itself (noun, verb, positional arguments) and its options, into
 * one struct. Pure: no environment, no I/O, so every rule can be unit-tested. */
#ifndef KL_CLI_ARGS_H
#define KL_CLI_ARGS_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#define KL_CLI_MAX_POS 4 /* most positional arguments any command takes */

typedef enum kl_cli_cmd {
    KL_CLI_CMD_NONE = 0, /* no command given (or only --help / --version) */
    KL_CLI_CMD_ACCOUNT_CREATE,
    KL_CLI_CMD_ACCOUNT_UPDATE,
    KL_CLI_CMD_ACCOUNT_SHOW,
    KL_CLI_CMD_ACCOUNT_LIST,
    KL_CLI_CMD_ACCOUNT_DELETE,
    KL_CLI_CMD_DEPLOYMENT_CREATE,
    KL_CLI_CMD_DEPLOYMENT_SHOW,
    KL_CLI_CMD_DEPLOYMENT_LIST,
    KL_CLI_CMD_DEPLOYMENT_DELETE,
    KL_CLI_CMD_KEYS_LIST,
    KL_CLI_CMD_KEYS_REGENERATE,
    KL_CLI_CMD_HEALTH,
    KL_CLI_CMD_TENANT_SHOW,
    KL_CLI_CMD_APP_CERT_ADD,
    KL_CLI_CMD_APP_CERT_LIST,
    KL_CLI_CMD_APP_CERT_REMOVE,
    KL_CLI_CMD_APP_FEDERATED_ADD,
    KL_CLI_CMD_APP_FEDERATED_LIST,
    KL_CLI_CMD_APP_FEDERATED_REMOVE,
    KL_CLI_CMD_APP_CREATE,
    KL_CLI_CMD_APP_LIST,
    KL_CLI_CMD_APP_SHOW,
    KL_CLI_CMD_APP_DELETE,
    KL_CLI_CMD_APP_DISABLE,
    KL_CLI_CMD_APP_ENABLE,
    KL_CLI_CMD_ROLE_DEFINITION_LIST,
    KL_CLI_CMD_ROLE_DEFINITION_SHOW,
    KL_CLI_CMD_ROLE_DEFINITION_CREATE,
    KL_CLI_CMD_ROLE_DEFINITION_DELETE,
    KL_CLI_CMD_ROLE_ASSIGNMENT_CREATE,
    KL_CLI_CMD_ROLE_ASSIGNMENT_LIST,
    KL_CLI_CMD_ROLE_ASSIGNMENT_DELETE,
    KL_CLI_CMD_ROLE_CHECK,
    KL_CLI_CMD_STORE_MIGRATE,
    KL_CLI_CMD_APP_SECRET_ADD,
    KL_CLI_CMD_APP_SECRET_LIST,
    KL_CLI_CMD_APP_SECRET_REMOVE,
    KL_CLI_CMD_SIGNING_KEY_LIST,
    KL_CLI_CMD_SIGNING_KEY_ROTATE,
    KL_CLI_CMD_SIGNIN_LIST,
    KL_CLI_CMD_IDENTITY_CREATE,
    KL_CLI_CMD_IDENTITY_SHOW,
    KL_CLI_CMD_IDENTITY_LIST,
    KL_CLI_CMD_IDENTITY_DELETE,
    KL_CLI_CMD_IDENTITY_ASSIGN,
    KL_CLI_CMD_IDENTITY_REMOVE,
    KL_CLI_CMD_SITE_CREATE,
    KL_CLI_CMD_SITE_SHOW,
    KL_CLI_CMD_SITE_DELETE,
    KL_CLI_CMD_VM_CREATE,
    KL_CLI_CMD_VM_SHOW,
    KL_CLI_CMD_VM_DELETE,
    KL_CLI_CMD_RUN,
    KL_CLI_CMD_USER_CREATE,
    KL_CLI_CMD_USER_LIST,
    KL_CLI_CMD_USER_SHOW,
    KL_CLI_CMD_USER_ENABLE,
    KL_CLI_CMD_USER_DISABLE,
    KL_CLI_CMD_USER_DELETE,
    KL_CLI_CMD_USER_RESET_PASSWORD,
    KL_CLI_CMD_GROUP_CREATE,
    KL_CLI_CMD_GROUP_LIST,
    KL_CLI_CMD_GROUP_SHOW,
    KL_CLI_CMD_GROUP_DELETE,
    KL_CLI_CMD_GROUP_MEMBER_ADD,
    KL_CLI_CMD_GROUP_MEMBER_REMOVE,
    KL_CLI_CMD_GROUP_MEMBER_LIST,
    KL_CLI_CMD_LOGIN,
    KL_CLI_CMD_LOGOUT,
    KL_CLI_CMD_TENANT_SET,
    KL_CLI_CMD_COUNT /* not a command: one more than the last; new commands go above */
} kl_cli_cmd;

typedef enum kl_cli_output { KL_CLI_OUTPUT_TABLE = 0, KL_CLI_OUTPUT_JSON } kl_cli_output;

/* Option bits, to know which command options were given (kl_cli_args.opts). */
#define KL_CLI_OPT_DISABLE_LOCAL_AUTH (UINT64_C(1) << 0)
#define KL_CLI_OPT_LOCATION (UINT64_C(1) << 1)
#define KL_CLI_OPT_KIND (UINT64_C(1) << 2)
#define KL_CLI_OPT_BACKEND (UINT64_C(1) << 3)
#define KL_CLI_OPT_MODEL (UINT64_C(1) << 4)
#define KL_CLI_OPT_UPSTREAM_MODEL (UINT64_C(1) << 5)
#define KL_CLI_OPT_CREDENTIAL_ENV (UINT64_C(1) << 6)
#define KL_CLI_OPT_SCOPE (UINT64_C(1) << 7)
#define KL_CLI_OPT_ACCOUNT (UINT64_C(1) << 8)
#define KL_CLI_OPT_ASSIGNEE (UINT64_C(1) << 9)
#define KL_CLI_OPT_ROLE (UINT64_C(1) << 10)
#define KL_CLI_OPT_ACTION (UINT64_C(1) << 11)
#define KL_CLI_OPT_DATA (UINT64_C(1) << 12)
#define KL_CLI_OPT_FILE (UINT64_C(1) << 13)
#define KL_CLI_OPT_CUSTOM (UINT64_C(1) << 14)
#define KL_CLI_OPT_ALL (UINT64_C(1) << 15)
#define KL_CLI_OPT_FROM (UINT64_C(1) << 16)
#define KL_CLI_OPT_TO (UINT64_C(1) << 17)
#define KL_CLI_OPT_DISPLAY_NAME (UINT64_C(1) << 18)
#define KL_CLI_OPT_DAYS (UINT64_C(1) << 19)
#define KL_CLI_OPT_REVOKE_PREVIOUS (UINT64_C(1) << 20)
#define KL_CLI_OPT_CLIENT (UINT64_C(1) << 21)
#define KL_CLI_OPT_FAILED (UINT64_C(1) << 22)
#define KL_CLI_OPT_PUBLIC_NETWORK_ACCESS (UINT64_C(1) << 23)
#define KL_CLI_OPT_DEFAULT_ACTION (UINT64_C(1) << 24)
#define KL_CLI_OPT_ALLOW_IP (UINT64_C(1) << 25)
#define KL_CLI_OPT_OLDER_THAN (UINT64_C(1) << 26)
#define KL_CLI_OPT_RESOURCE (UINT64_C(1) << 27)
#define KL_CLI_OPT_ASSIGN_IDENTITY (UINT64_C(1) << 28)
#define KL_CLI_OPT_SITE (UINT64_C(1) << 29)
#define KL_CLI_OPT_FORCE_CHANGE (UINT64_C(1) << 30)
#define KL_CLI_OPT_TENANT (UINT64_C(1) << 31)
#define KL_CLI_OPT_CA_FILE (UINT64_C(1) << 32)
#define KL_CLI_OPT_BROWSER (UINT64_C(1) << 33)
#define KL_CLI_OPT_PUBLIC_CLIENT (UINT64_C(1) << 34)
#define KL_CLI_OPT_REDIRECT_URI (UINT64_C(1) << 35)
#define KL_CLI_OPT_PASSWORD_GRANT (UINT64_C(1) << 36)

#define KL_CLI_MAX_ALLOW_IP 64      /* --allow-ip options on one command line */
#define KL_CLI_MAX_RESOURCES 16     /* --resource options on one command line */
#define KL_CLI_MAX_IDENTITIES 16    /* --assign-identity options on one command line */
#define KL_CLI_MAX_REDIRECT_URIS 16 /* --redirect-uri options on one command line */

/* All strings are borrowed from argv. NULL means "not given on the command line". */
typedef struct kl_cli_args {
    /* global options */
    const char *data_dir;
    const char *subscription;
    const char *resource_group;
    const char *server; /* --server URL: a remote keylessd over TLS (after keyless login) */
    kl_cli_output output;
    bool help;
    bool version;

    /* the command */
    kl_cli_cmd cmd;
    const char *noun; /* as typed; set even when the verb is missing or unknown */
    const char *verb;
    const char *verb2; /* third word of "role definition list" and the like; else NULL */
    const char *pos[KL_CLI_MAX_POS];
    size_t npos;

    /* command options */
    uint64_t opts; /* KL_CLI_OPT_* bits of the options given */
    const char *location;
    const char *kind;
    const char *backend; /* "echo" or an http:// / https:// URL */
    const char *model;
    const char *upstream_model;
    const char *credential_env; /* name of an environment variable, never the secret */
    bool disable_local_auth;
    bool disable_local_auth_valued; /* written with an explicit true|false */
    const char *scope;              /* an ARM scope as typed (checked by kl_cli_scope_check) */
    const char *account;            /* --account NAME: the scope of that account */
    const char *assignee;           /* object id, client id (appId) or application name */
    const char *role;               /* role name or GUID */
    const char *action;             /* an action or data action name, for role check */
    const char *file;               /* path of a role definition file */
    bool data;                      /* role check: the action is a data action */
    bool custom;                    /* role definition list: custom roles only */
    bool all;                       /* role assignment list: also the assignments below the scope */
    const char *from;               /* store migrate: the source store URL */
    const char *to;                 /* store migrate: the destination store URL */
    const char *display_name;       /* app secret add: the secret's display name */
    const char *days;               /* app secret add: days until it expires (as typed) */
    bool revoke_previous;           /* signing-key rotate: refuse the earlier keys at once */
    const char *client;             /* signin list: only this client id */
    bool failed;                    /* signin list: only refusals */
    const char *public_network_access;         /* account update: Enabled|Disabled (as typed) */
    const char *default_action;                /* account update: Allow|Deny (as typed) */
    const char *allow_ip[KL_CLI_MAX_ALLOW_IP]; /* account update: rules to add (server checks) */
    size_t n_allow_ip;
    int64_t older_than_s; /* keys list --older-than: seconds (0: not given) */
    /* identity assign|remove: the ARM ids of the resources (sites, VMs, accounts) */
    const char *resource[KL_CLI_MAX_RESOURCES];
    size_t n_resource;
    /* site|vm create: "system" or a user-assigned identity (name or ARM id), as typed */
    const char *assign_identity[KL_CLI_MAX_IDENTITIES];
    size_t n_assign_identity;
    const char *site; /* run --site NAME */
    /* run: the command after "--" (borrowed from argv, NULL-terminated like argv). */
    char *const *run_argv;
    int run_argc;
    bool force_change;   /* user create / reset-password: change it at next sign-in */
    const char *tenant;  /* login --tenant */
    const char *ca_file; /* login --ca-file: the CA that signs the server's certificate */
    bool browser;        /* login --browser: authorization code + PKCE instead of a code */
    bool public_client;  /* app create --public-client: signs users in with no secret */
    const char *redirect_uri[KL_CLI_MAX_REDIRECT_URIS]; /* app create --redirect-uri */
    size_t n_redirect_uri;
    bool password_grant; /* tenant set --password-grant on|off */
} kl_cli_args;

/* Parses argv[1..argc) into out (zeroed first). Returns 0, or KL_EINVAL for a usage
 * error with a one-line explanation (no "error:" prefix, no newline) in err[errlen].
 * When --help is present, the command is resolved as far as it is valid and missing or
 * extra arguments are not errors, so the caller can show help for it; an unknown option
 * is still an error. argv must outlive out. */
int kl_cli_args_parse(int argc, char *const argv[], kl_cli_args *out, char *err, size_t errlen);

/* The words of a command ("account create", "health", "role definition list"); static,
 * never NULL. */
const char *kl_cli_cmd_name(kl_cli_cmd cmd);

#endif
