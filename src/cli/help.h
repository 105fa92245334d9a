/* The help text of the keyless CLI: the overview and one page per command group. */
#ifndef KL_CLI_HELP_H
#define KL_CLI_HELP_H

#include <stdio.h>

/* Prints the help for noun ("account", "deployment", "keys", "health", "tenant", "app",
 * "role"), or the overview when noun is NULL or not a command group. */
void kl_cli_help(FILE *f, const char *noun);

#endif
