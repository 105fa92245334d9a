/* The help text of the keyless CLI: the overview and one page per command group. */
#ifndef KL_CLI_HELP_H
#define KL_CLI_HELP_H

#include <stdio.h>

/* Prints the help page of noun (its commands' usage lines from the command table, then
 * the page's text), or the overview (every command's usage line) when noun is NULL or
 * not a command group. */
void kl_cli_help(FILE *f, const char *noun);

#endif
