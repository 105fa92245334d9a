/* Output for the keyless CLI: aligned text tables for people, pretty-printed JSON for
 * scripts, the mapping from HTTP status to exit code, and the one-line error format.
 * Everything here is pure (no I/O except the explicit FILE * printers) so it can be tested. */
#ifndef KL_CLI_OUTPUT_H
#define KL_CLI_OUTPUT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "common/buf.h"

/* Exit codes of the keyless command (documented in `keyless --help` and docs/cli.md). */
enum kl_cli_exit {
    KL_CLI_EXIT_OK = 0,          /* success (also: delete of something that did not exist) */
    KL_CLI_EXIT_REFUSED = 1,     /* keylessd refused (4xx other than 404, 5xx) or answered
                                    something unusable */
    KL_CLI_EXIT_USAGE = 2,       /* unknown command or option, missing or bad argument */
    KL_CLI_EXIT_UNREACHABLE = 3, /* the admin socket is missing, refused or did not answer */
    KL_CLI_EXIT_NOTFOUND = 4     /* keylessd answered 404 */
};

/* Maps an HTTP status to an exit code: 2xx -> OK, 404 -> NOTFOUND, anything else (1xx,
 * 3xx, 4xx, 5xx, or 0 for "no status") -> REFUSED. */
int kl_cli_exit_for_status(long status);

/* A table of strings rendered with aligned columns. Cells are copied. */
typedef struct kl_cli_table {
    size_t ncols;
    size_t nrows; /* rows in cells, header row included when has_header */
    size_t cap;   /* rows allocated */
    bool has_header;
    char **cells; /* owned; nrows * ncols strings, row-major */
} kl_cli_table;

/* Starts a table of ncols (1..16) columns. headers is NULL for a table without a header
 * row (used for "field value" listings), else ncols strings. Returns 0, KL_EINVAL or
 * KL_ENOMEM; on error the table holds nothing that needs freeing. */
int kl_cli_table_init(kl_cli_table *t, size_t ncols, const char *const *headers);
/* Appends a row of ncols cells; a NULL cell is shown as "-". 0 or KL_ENOMEM. */
int kl_cli_table_add_row(kl_cli_table *t, const char *const *cells);
/* Renders into out (appending): columns separated by two spaces, each padded to the
 * widest cell of its column (width counted in UTF-8 code points), no trailing blanks,
 * one '\n' per row. Control characters in cells are shown as '?', so a value sent by the
 * server cannot move the terminal cursor. 0, KL_ETOOBIG or KL_ENOMEM. */
int kl_cli_table_render(const kl_cli_table *t, kl_buf *out);
/* Wipes and frees the cells; the table may be initialised again afterwards. */
void kl_cli_table_free(kl_cli_table *t);

/* Renders t to f. Returns 0 or a negative kl_err. */
int kl_cli_table_print(const kl_cli_table *t, FILE *f);

/* One line of a "field value" listing. */
typedef struct kl_cli_field {
    const char *label;
    const char *value; /* NULL shows as "-" */
} kl_cli_field;

/* Prints fields as a two-column table without a header. 0 or a negative kl_err. */
int kl_cli_print_fields(FILE *f, const kl_cli_field *fields, size_t n);

/* Pretty-prints j (2-space indent, keys in the server's order) followed by '\n'.
 * Returns 0 or a negative kl_err. */
int kl_cli_print_json(FILE *f, const json_t *j);

/* Formats the error answer of keylessd as "error: <code>: <message>" (no newline) into
 * out. body[0..len) is the response body: an ARM error {"error":{"code","message"}};
 * when it is not one, the line reads "error: HTTP <status>: <reason>". Control
 * characters are shown as '?' and the message is cut at 1000 bytes. 0 or a kl_err. */
int kl_cli_format_server_error(long status, const char *body, size_t len, kl_buf *out);

/* Appends s to out with control characters replaced by '?'. 0 or a kl_err. */
int kl_cli_append_printable(kl_buf *out, const char *s, size_t n);

#endif
