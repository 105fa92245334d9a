/* The requests the directory and RBAC commands share: listings, and turning what the
 * user typed (an application's name, a role's name, a client id) into the ids the
 * control plane takes. Each function returns an exit code (enum kl_cli_exit) and prints
 * its own error line. */
#ifndef KL_CLI_LOOKUP_H
#define KL_CLI_LOOKUP_H

#include <jansson.h>
#include <stdbool.h>

#include "cli/client.h"
#include "common/util.h"

#define KL_CLI_GRAPH_ORGANIZATION "/v1.0/organization"
#define KL_CLI_GRAPH_APPLICATIONS "/v1.0/applications"
#define KL_CLI_GRAPH_SERVICE_PRINCIPALS "/v1.0/servicePrincipals"

/* GETs target, whose answer must be {"value":[...]}. On OK, *root is the answer (the
 * caller json_decref()s it) and *value the array inside it; otherwise both are NULL.
 * flags as for kl_cli_call; with KL_CLI_CALL_QUIET_ERRORS a missing "value" is not
 * reported either. */
int kl_cli_get_list(kl_cli_ctx *c, const char *target, unsigned flags, json_t **root,
                    json_t **value);

/* Finds the application x names (display name, object id or client id) through GET
 * /v1.0/applications. OK: *app is a new reference. NOTFOUND when nothing matches (an
 * error line is printed unless quiet_missing); REFUSED when several applications carry
 * that name. */
int kl_cli_find_app(kl_cli_ctx *c, const char *x, bool quiet_missing, json_t **app);

/* GETs the role definitions visible at the root scope (every built-in and custom role),
 * as kl_cli_get_list. */
int kl_cli_role_definitions(kl_cli_ctx *c, unsigned flags, json_t **root, json_t **value);

/* Resolves a role given as a GUID (used as it is, no request) or a role name (looked up
 * in the root listing, without regard to case). Writes the GUID in lower case. *def, if
 * def is not NULL, receives a new reference to the definition found by name (NULL for
 * a GUID). NOTFOUND (error line printed) when no role has that name. */
int kl_cli_resolve_role(kl_cli_ctx *c, const char *x, char guid[KL_UUID_LEN + 1], json_t **def);

typedef struct kl_cli_principal {
    char id[KL_UUID_LEN + 1]; /* object id, lower case */
    bool service_principal;   /* found among the service principals */
    char name[256];           /* display name when known, else "" */
} kl_cli_principal;

/* Resolves --assignee: a GUID that is the object id or the client id (appId) of a
 * service principal becomes that principal; any other GUID is taken as an object id
 * (of a user or group; keylessd says whether it exists); anything else is the display
 * name of an application, whose service principal is taken. NOTFOUND or REFUSED with an
 * error line when a name matches no application, or several. */
int kl_cli_resolve_assignee(kl_cli_ctx *c, const char *x, kl_cli_principal *p);

/* Builds in t (initialised here) the request target of a Microsoft.Authorization
 * collection at scope; see kl_cli_authz_target. OK, or USAGE with a line printed (t
 * then holds nothing). */
int kl_cli_authz(kl_cli_ctx *c, kl_buf *t, const char *scope, const char *collection,
                 const char *name, const char *filter);

/* Resolves the scope of the command (--account, --scope, else dflt) into scope
 * (initialised here). OK, or USAGE with a line printed (scope then holds nothing). */
int kl_cli_command_scope(kl_cli_ctx *c, const char *dflt, kl_buf *scope);

#endif
