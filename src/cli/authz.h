/* The pure parts of the directory and RBAC commands: ARM scopes as the CLI accepts them
 * (and the --account shorthand), Microsoft.Authorization request targets, role definition
 * files, role assignment ids, and finding an application or a role in a listing. No I/O,
 * so every rule can be unit-tested. */
#ifndef KL_CLI_AUTHZ_H
#define KL_CLI_AUTHZ_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "common/limits.h"
#include "common/util.h"

#define KL_CLI_AUTHZ_API_VERSION "2022-04-01" /* Microsoft.Authorization routes */
#define KL_CLI_MAX_ROLE_FILE (1024 * 1024)    /* bytes of a role definition file */

/* True if s[0..n) can be one segment of a scope: not empty, not "." or "..", only
 * printable ASCII other than '/', space and \ ? # % " < > | * & [ ] { } ^ ` (which
 * keylessd refuses in a scope, or which a URL path cannot carry as they are). */
bool kl_cli_scope_segment_ok(const char *s, size_t n);

/* Checks an ARM scope given on the command line or in a role file, so that a bad one
 * is refused before anything is sent: every byte must be one a URL path carries as it is
 * (printable ASCII, none of space and \ ? # % " < > | * & [ ] { } ^ `), then the grammar
 * is keylessd's own, kl_scope_parse (rbac/scope.h: the forms, no empty or all-dot
 * segment, at most KL_MAX_SCOPE bytes and KL_MAX_SCOPE_DEPTH levels, one trailing '/'
 * dropped). Returns 0, or KL_EINVAL with a short reason (no "error:" prefix) in
 * err[errlen]: which byte is not allowed, or the daemon's own KL_SCOPE_RULE text
 * (followed by KL_SCOPE_DEPTH_RULE for a scope that is too deep). */
int kl_cli_scope_check(const char *scope, char *err, size_t errlen);

/* The scope a command works at, appended to out: with account set, the id of that
 * account, /subscriptions/{sub}/resourceGroups/{rg}/providers/
 * Microsoft.CognitiveServices/accounts/{account}; else scope with one trailing '/'
 * dropped ("/" stays); else dflt. Returns 0; KL_EINVAL when the result is not a valid
 * scope (reason in err: a subscription or group that cannot be a segment, a bad
 * scope); KL_ETOOBIG or KL_ENOMEM from out. */
int kl_cli_scope_resolve(const char *scope, const char *account, const char *sub, const char *rg,
                         const char *dflt, kl_buf *out, char *err, size_t errlen);

/* Appends the request target
 *   {scope}/providers/Microsoft.Authorization/{collection}[/{name}]
 *       ?api-version=2022-04-01[&$filter={filter}]
 * to out. scope must be valid (kl_cli_scope_check); "/" is the root, whose target
 * starts at /providers. name is escaped as one path segment; filter is an OData
 * expression, percent-encoded. 0 or a kl_err. */
int kl_cli_authz_target(kl_buf *out, const char *scope, const char *collection, const char *name,
                        const char *filter);

/* Appends s percent-encoded for a query value: only A-Z a-z 0-9 - . _ ~ are kept. */
int kl_cli_append_query_value(kl_buf *out, const char *s);

/* Splits a role assignment id {scope}/providers/Microsoft.Authorization/roleAssignments/
 * {guid} (the fixed words compared without regard to case) into its scope, appended to
 * scope_out ("/" for the root), and its GUID in lower case. 0, KL_EINVAL when id is not
 * such an id (or its scope is invalid), or a kl_err from scope_out. */
int kl_cli_assignment_id_split(const char *id, kl_buf *scope_out, char guid[KL_UUID_LEN + 1]);

/* The text after the last '/' of id (id itself when it has none); never NULL. */
const char *kl_cli_last_segment(const char *id);

/* Looks x up in the "value" array of a Graph listing (applications or service
 * principals): first the entries whose "id" or "appId" equals x, else those whose
 * "displayName" equals x, both without regard to case. Returns how many entries the
 * deciding rule found (0, 1, or more for an ambiguous name) and the first in *found
 * (borrowed from list; NULL when none). */
size_t kl_cli_directory_match(const json_t *list, const char *x, json_t **found);

/* The same for the "value" array of a role definitions listing: entries whose "name"
 * (the GUID) equals x, else whose properties.roleName equals x, without regard to case. */
size_t kl_cli_role_match(const json_t *list, const char *x, json_t **found);

/* The role name of the definition whose GUID ends role_definition_id (any scope prefix,
 * or a bare GUID), looked up in the "value" array of a role definitions listing; NULL
 * when list is NULL or holds no such role. Borrowed from list. */
const char *kl_cli_role_name_of(const json_t *list, const char *role_definition_id);

/* The displayName of the entry whose "id" is object_id in a Graph "value" array; NULL
 * when absent. Borrowed from list. */
const char *kl_cli_display_name_of(const json_t *list, const char *object_id);

/* Turns the content of a role definition file into the body of the PUT that creates it,
 * and the GUID to PUT it at. Two forms are accepted:
 *   - ARM: {"name":"<guid>","id":"..","type":"..","properties":{"roleName":..,
 *     "description":..,"assignableScopes":[..],"permissions":[{"actions":[..],..}]}}
 *     (what `role definition show -o json` prints): properties are sent as they are,
 *     less createdOn/updatedOn/createdBy/updatedBy;
 *   - flat, as `az role definition create` takes it: {"roleName" (or "Name" when it is
 *     not a GUID),"description","actions","notActions","dataActions","notDataActions",
 *     "assignableScopes","isCustom","id"}, keys compared without regard to case; the
 *     four lists default to [] and become one "permissions" entry.
 * In both, a missing assignableScopes becomes [default_scope], and every scope in it
 * must pass kl_cli_scope_check. The GUID is taken from "name" or "id" (a GUID or a full
 * role definition id; both given must agree), in lower case; guid is "" when the file
 * names none (the caller makes one). Returns 0 with *body a new reference, or KL_EINVAL
 * (or KL_ENOMEM) with a reason in err[errlen]. */
int kl_cli_role_definition_body(const json_t *file, const char *default_scope, json_t **body,
                                char guid[KL_UUID_LEN + 1], char *err, size_t errlen);

/* Appends the strings of a JSON array to out, separated by sep; non-strings are
 * skipped. 0 or a kl_err. */
int kl_cli_join_strings(const json_t *array, const char *sep, kl_buf *out);

#endif
