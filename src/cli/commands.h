/* The keyless commands, one function per noun. Each runs the command named by
 * c->args->cmd and returns an exit code (enum kl_cli_exit in output.h), having printed
 * its result on c->out and any error line on c->err. */
#ifndef KL_CLI_COMMANDS_H
#define KL_CLI_COMMANDS_H

#include "cli/client.h"

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
/* run --site NAME -- COMMAND...: a workload with the site's identity endpoint */
int kl_cli_cmd_run(kl_cli_ctx *c);

#endif
