/* What every keyless command shares: the resolved settings (data dir, subscription,
 * resource group), the connection to keylessd, ARM paths, and one call helper that
 * turns an HTTP exchange into parsed JSON or an error line and an exit code. */
#ifndef KL_CLI_CLIENT_H
#define KL_CLI_CLIENT_H

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>

#include "cli/args.h"
#include "cli/output.h"
#include "cli/http.h"
#include "cli/loginfile.h"
#include "common/buf.h"

#define KL_CLI_API_VERSION "2024-10-01"
#define KL_CLI_DEFAULT_SUBSCRIPTION "00000000-0000-0000-0000-000000000000"
#define KL_CLI_DEFAULT_RESOURCE_GROUP "default"

/* A remote keylessd signed in to with `keyless login` (remote.c). */
typedef struct kl_cli_remote {
    char dir[PATH_MAX]; /* the login file's directory */
    kl_cli_login login; /* the login file; its refresh token is rotated in place */
    char *access[2];    /* access tokens for ARM and Graph, fetched on first use; wiped */
} kl_cli_remote;

typedef struct kl_cli_ctx {
    const kl_cli_args *args;    /* borrowed */
    const char *data_dir;       /* borrowed; resolved (option, environment or default) */
    const char *sock_path;      /* borrowed; data_dir + "/admin.sock" */
    const char *subscription;   /* borrowed; resolved */
    const char *resource_group; /* borrowed; resolved */
    bool resource_group_given;  /* set by --resource-group or KEYLESS_RESOURCE_GROUP */
    kl_cli_http http;           /* owned by the caller of the commands */
    kl_cli_remote *remote;      /* borrowed; set when talking to a remote keylessd over TLS
                                   as the signed-in user, NULL on the admin socket */
    FILE *out;                  /* results */
    FILE *err;                  /* error lines */
} kl_cli_ctx;

/* Flags for kl_cli_call. */
enum {
    KL_CLI_CALL_QUIET_404 = 1u << 0,   /* a 404 is expected: no error line */
    KL_CLI_CALL_QUIET_ERRORS = 1u << 1 /* no error line for any HTTP error status (a
                                          look-up whose failure only costs a name) */
};

/* Appends an ARM request target (path and ?api-version=) to out:
 *   rg NULL, account NULL: /subscriptions/{sub}/providers/Microsoft.CognitiveServices/accounts
 *   account NULL:          .../resourceGroups/{rg}/providers/Microsoft.CognitiveServices/accounts
 *   account set:           .../accounts/{account}
 *   child set:             .../accounts/{account}/{child}[/{child_name}]
 * sub, rg, account and child_name are escaped as path segments; child is a literal such
 * as "deployments" or "listKeys". 0 or a kl_err. */
int kl_cli_arm_target(kl_buf *out, const char *sub, const char *rg, const char *account,
                      const char *child, const char *child_name);

#define KL_CLI_TARGET_MAX 16384 /* longest request target built */

/* Initialises t and builds in it the target of an account-level resource in the
 * context's subscription and resource group (see kl_cli_arm_target). Returns an exit
 * code: OK (free t with kl_buf_free) or USAGE (a line was printed; t holds nothing). */
int kl_cli_target(kl_cli_ctx *c, kl_buf *t, const char *account, const char *child,
                  const char *child_name);

/* Prints that memory ran out; returns KL_CLI_EXIT_REFUSED. */
int kl_cli_out_of_memory(kl_cli_ctx *c);

/* Prints that the output could not be written; returns KL_CLI_EXIT_REFUSED. */
int kl_cli_output_failed(kl_cli_ctx *c);

/* Sends one request (body serialised compactly when not NULL) and checks the answer.
 * resp is always initialised; the caller frees it with kl_cli_response_free. Returns an
 * exit code: OK for a 2xx; UNREACHABLE when keylessd could not be reached (an error line
 * and a hint were printed); NOTFOUND or REFUSED for any other status, after printing the
 * server's error as "error: <code>: <message>" (not for a 404 with
 * KL_CLI_CALL_QUIET_404, nor for any status with KL_CLI_CALL_QUIET_ERRORS); REFUSED
 * for an oversized answer. */
int kl_cli_exchange(kl_cli_ctx *c, const char *method, const char *target, const json_t *body,
                    unsigned flags, kl_cli_response *resp);

/* Sends one request (body serialised compactly when not NULL) and interprets the answer.
 * Returns an exit code (enum kl_cli_exit):
 *   OK: a 2xx arrived; *status holds it; *out_json (if out_json is not NULL) receives the
 *       parsed body, or NULL when the body was empty; the caller json_decref()s it;
 *   UNREACHABLE: keylessd could not be reached; an error line and a hint were printed;
 *   NOTFOUND / REFUSED: the server's error was printed as "error: <code>: <message>"
 *       (unless a 404 with KL_CLI_CALL_QUIET_404); *status holds the status;
 *   REFUSED also for a 2xx whose body is not JSON, or an oversized answer. */
int kl_cli_call(kl_cli_ctx *c, const char *method, const char *target, const json_t *body,
                unsigned flags, long *status, json_t **out_json);

/* Sends one request and wants a JSON object back (a resource): kl_cli_call, then, for
 * a 2xx without an object, the line "keylessd answered HTTP <status> without the
 * <what>" and REFUSED. On OK *obj is the object (the caller json_decref()s it); else
 * *obj is NULL. status may be NULL. */
int kl_cli_call_object(kl_cli_ctx *c, const char *method, const char *target, const json_t *body,
                       const char *what, long *status, json_t **obj);

/* DELETEs target and says what happened: with -o json the server's answer (if any);
 * else "<what> did not exist; nothing to delete" for a 204 (nothing was there), or
 * "deleted <what><detail>". what names the thing ("account 'demo'"); detail may be "".
 * Returns an exit code (kl_cli_call's). */
int kl_cli_delete(kl_cli_ctx *c, const char *target, const char *what, const char *detail);

/* One column of a listing printed as a table. */
typedef struct kl_cli_column {
    const char *header;
    const char *path[4]; /* keys from an item to its string cell (NULL-terminated) */
    /* When set, the cell instead: a string owned by the item or data, or written into
     * buf[buflen]; NULL shows as "-". data is kl_cli_print_list's. */
    const char *(*cell)(const json_t *item, const void *data, char *buf, size_t buflen);
} kl_cli_column;

/* Prints a listing: with -o json, root as it is; else a table of items (a JSON array;
 * NULL: no rows) with ncols (1..16) columns; data is handed to the columns' cell
 * functions (names looked up elsewhere). Returns an exit code: OK, or REFUSED after an
 * error line (out of memory, or the output could not be written). */
int kl_cli_print_list(kl_cli_ctx *c, const void *data, const json_t *root, const json_t *items,
                      const kl_cli_column *cols, size_t ncols);

/* The bearer token for a request to target on the remote keylessd: the one already
 * fetched for its resource (ARM or Graph, kl_cli_oauth_resource_for), else a new one
 * redeemed with the login file's refresh token, whose rotated successor is written back
 * to the login file before the access token is used. Returns an exit code: OK with
 * *bearer (owned by c->remote); UNREACHABLE or REFUSED after an error line (a refused
 * refresh token says to sign in again). */
int kl_cli_remote_bearer(kl_cli_ctx *c, const char *target, const char **bearer);

/* Decides where the command a names goes (docs/cli.md, "Sign in as yourself"):
 *   - login, logout (they connect by themselves) and store migrate (files): nowhere;
 *   - --server URL: the remote keylessd, which must be the login file's server;
 *   - else a named data directory (--data-dir, or data_dir_env for KEYLESS_DATA_DIR):
 *     its admin socket;
 *   - else the login file's server when there is a login file ($XDG_CONFIG_HOME or
 *     $HOME, as kl_cli_login_dir says); else the default admin socket.
 * Returns OK with *use_remote (r then holds the login file), or an exit code with the
 * reason in err: USAGE (not signed in to --server's URL, or to another one), REFUSED (a
 * login file others could read, or not a login file). */
int kl_cli_remote_choose(const kl_cli_args *a, bool data_dir_env, const char *xdg_config_home,
                         const char *home, kl_cli_remote *r, bool *use_remote, char *err,
                         size_t errlen);

/* Wipes and frees what r holds (access tokens, the refresh token). */
void kl_cli_remote_free(kl_cli_remote *r);

/* Prints "error: <text>\n" on the context's error stream. */
void kl_cli_errorf(kl_cli_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Follows a chain of object keys (terminated by NULL) from j; returns the string found
 * there (owned by j) or NULL when a step is missing or the value is not a string. */
const char *kl_cli_json_str(const json_t *j, ...) __attribute__((sentinel));
/* Same for any JSON value; NULL when a step is missing. */
json_t *kl_cli_json_at(const json_t *j, ...) __attribute__((sentinel));

/* Copies into out the path segment that follows the segment `name` (compared without
 * regard to case) in an ARM id; e.g. ("/subscriptions/s/resourceGroups/rg/..",
 * "resourceGroups") -> "rg". Returns 0, KL_ENOTFOUND or KL_ETOOBIG. */
int kl_cli_id_segment(const char *id, const char *name, char *out, size_t outlen);

#endif
