/* The keyless commands: the command table (one row per command: words, arguments,
 * options, handler, usage line) and the handlers, one function per noun. Each handler
 * runs the command named by c->args->cmd and returns an exit code (enum kl_cli_exit in
 * output.h), having printed its result on c->out and any error line on c->err. */
#ifndef KL_CLI_COMMANDS_H
#define KL_CLI_COMMANDS_H

#include "cli/client.h"

/* One command of the CLI; the rows are in commands.c. */
typedef struct kl_cli_command {
    const char *name; /* its words, space-separated: "health", "role definition list" */
    kl_cli_cmd cmd;
    size_t npos;                           /* positional arguments it takes, exactly */
    const char *pos_names[KL_CLI_MAX_POS]; /* their names in messages ("NAME") */
    uint64_t opts;                         /* the KL_CLI_OPT_* command options it accepts */
    int (*run)(kl_cli_ctx *c);             /* the handler: an exit code (output.h) */
    const char *usage; /* what follows the name in its usage line; '\n' continues it on
                          the next line, aligned under the first argument */
} kl_cli_command;

/* The i-th command of the table (in the order help lists them), or NULL past the end. */
const kl_cli_command *kl_cli_command_at(size_t i);

/* The row of cmd, or NULL for KL_CLI_CMD_NONE (and any value with no row). */
const kl_cli_command *kl_cli_command_of(kl_cli_cmd cmd);

/* The i-th word of a command's name (0: the noun): its length, with *word pointing into
 * name; 0 and *word NULL when the name has fewer words. */
size_t kl_cli_command_word(const char *name, size_t i, const char **word);

/* The handlers, one per noun (or group of nouns): each runs the command named by
 * c->args->cmd. */

int kl_cli_cmd_account(kl_cli_ctx *c);
int kl_cli_cmd_deployment(kl_cli_ctx *c);
int kl_cli_cmd_keys(kl_cli_ctx *c);
int kl_cli_cmd_health(kl_cli_ctx *c);
int kl_cli_cmd_tenant(kl_cli_ctx *c);
/* store migrate: works on the databases themselves, not through keylessd */
int kl_cli_cmd_store(kl_cli_ctx *c);
int kl_cli_cmd_app(kl_cli_ctx *c);
/* app cert add|list|remove: an application's certificates (keyCredentials) */
int kl_cli_cmd_app_cert(kl_cli_ctx *c);
/* app federated add|list|remove: an application's federated identity credentials */
int kl_cli_cmd_app_federated(kl_cli_ctx *c);
/* app secret add|list|remove: client secrets (Graph addPassword / removePassword) */
int kl_cli_cmd_app_secret(kl_cli_ctx *c);
/* signing-key list|rotate: the token service's signing keys */
int kl_cli_cmd_signing_key(kl_cli_ctx *c);
int kl_cli_cmd_role_definition(kl_cli_ctx *c);
/* user create|list|show|enable|disable|delete|reset-password (passwords from stdin) */
int kl_cli_cmd_user(kl_cli_ctx *c);
/* group create|list|show|delete and group member add|remove|list */
int kl_cli_cmd_group(kl_cli_ctx *c);
/* role assignment create|list|delete and role check */
int kl_cli_cmd_role_assignment(kl_cli_ctx *c);
/* identity create|show|list|delete|assign|remove, site|vm create|show|delete */
int kl_cli_cmd_identity(kl_cli_ctx *c);
/* login and logout: sign in to a remote keylessd as a user (device code or browser),
 * and sign out (the refresh token revoked, the login file deleted) */
int kl_cli_cmd_login(kl_cli_ctx *c);
/* run --site NAME -- COMMAND...: a workload with the site's identity endpoint */
int kl_cli_cmd_run(kl_cli_ctx *c);

#endif
