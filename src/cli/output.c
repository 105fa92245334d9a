/* Tables, JSON and error lines for the keyless CLI; see output.h for the contracts. */
#include "cli/output.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"

#define TABLE_MAX_COLS 16
#define TABLE_MAX_ROWS 100000       /* more than any listing keylessd can produce */
#define TABLE_MAX_BYTES (64u << 20) /* rendered size cap */
#define ERROR_MAX_TEXT 1000         /* bytes of server text shown in one error line */

int kl_cli_exit_for_status(long status)
{
    if (status >= 200 && status <= 299)
        return KL_CLI_EXIT_OK;
    if (status == 404)
        return KL_CLI_EXIT_NOTFOUND;
    return KL_CLI_EXIT_REFUSED;
}

int kl_cli_table_init(kl_cli_table *t, size_t ncols, const char *const *headers)
{
    memset(t, 0, sizeof(*t));
    if (ncols == 0 || ncols > TABLE_MAX_COLS)
        return KL_EINVAL;
    t->ncols = ncols;
    if (headers) {
        int rc = kl_cli_table_add_row(t, headers);
        if (rc < 0) {
            kl_cli_table_free(t);
            return rc;
        }
        t->has_header = true;
    }
    return 0;
}

int kl_cli_table_add_row(kl_cli_table *t, const char *const *cells)
{
    if (t->nrows >= TABLE_MAX_ROWS)
        return KL_ETOOBIG;
    if (t->nrows == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 8;
        char **n = realloc(t->cells, ncap * t->ncols * sizeof(*n));
        if (!n)
            return KL_ENOMEM;
        t->cells = n;
        t->cap = ncap;
    }
    char **row = t->cells + t->nrows * t->ncols;
    for (size_t i = 0; i < t->ncols; i++) {
        const char *s = cells[i] ? cells[i] : "-";
        row[i] = kl_strndup(s, strlen(s));
        if (!row[i]) {
            while (i > 0)
                free(row[--i]);
            return KL_ENOMEM;
        }
    }
    t->nrows++;
    return 0;
}

/* Display width in code points: every byte that is not a UTF-8 continuation byte counts
 * once. Wide (CJK) characters are not special-cased; names here are ASCII by ARM rule. */
static size_t text_width(const char *s)
{
    size_t w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xc0) != 0x80)
            w++;
    return w;
}

static bool is_control(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

int kl_cli_append_printable(kl_buf *out, const char *s, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_control((unsigned char)s[i]))
            continue;
        int rc = kl_buf_append(out, s + start, i - start);
        if (rc == 0)
            rc = kl_buf_append(out, "?", 1);
        if (rc < 0)
            return rc;
        start = i + 1;
    }
    return kl_buf_append(out, s + start, n - start);
}

static int append_spaces(kl_buf *out, size_t n)
{
    static const char spaces[] = "                                ";
    while (n > 0) {
        size_t k = n < sizeof(spaces) - 1 ? n : sizeof(spaces) - 1;
        int rc = kl_buf_append(out, spaces, k);
        if (rc < 0)
            return rc;
        n -= k;
    }
    return 0;
}

int kl_cli_table_render(const kl_cli_table *t, kl_buf *out)
{
    size_t width[TABLE_MAX_COLS] = {0};
    int rc = 0;

    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols; c++) {
            size_t w = text_width(t->cells[r * t->ncols + c]);
            if (w > width[c])
                width[c] = w;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            const char *cell = t->cells[r * t->ncols + c];
            bool last = c + 1 == t->ncols;
            if ((rc = kl_cli_append_printable(out, cell, strlen(cell))) < 0)
                return rc;
            if (!last && (rc = append_spaces(out, width[c] - text_width(cell) + 2)) < 0)
                return rc;
        }
        if ((rc = kl_buf_append(out, "\n", 1)) < 0)
            return rc;
    }
    return 0;
}

void kl_cli_table_free(kl_cli_table *t)
{
    /* Tables of keys hold secrets, so every cell is wiped. */
    for (size_t i = 0; i < t->nrows * t->ncols; i++) {
        OPENSSL_cleanse(t->cells[i], strlen(t->cells[i]));
        free(t->cells[i]);
    }
    free(t->cells);
    memset(t, 0, sizeof(*t));
}

int kl_cli_table_print(const kl_cli_table *t, FILE *f)
{
    kl_buf b;
    kl_buf_init(&b, TABLE_MAX_BYTES);
    int rc = kl_cli_table_render(t, &b);
    if (rc == 0 && b.len > 0 && fwrite(b.data, 1, b.len, f) != b.len)
        rc = KL_EIO;
    /* Tables of keys hold secrets. */
    kl_buf_cleanse_free(&b);
    return rc;
}

int kl_cli_print_fields(FILE *f, const kl_cli_field *fields, size_t n)
{
    kl_cli_table t;
    int rc = kl_cli_table_init(&t, 2, NULL);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const char *row[] = {fields[i].label, fields[i].value};
        rc = kl_cli_table_add_row(&t, row);
    }
    if (rc == 0)
        rc = kl_cli_table_print(&t, f);
    kl_cli_table_free(&t);
    return rc;
}

int kl_cli_print_json(FILE *f, const json_t *j)
{
    if (json_dumpf(j, f, JSON_INDENT(2) | JSON_ENCODE_ANY) != 0)
        return KL_EIO;
    if (fputc('\n', f) == EOF)
        return KL_EIO;
    return 0;
}

static const char *status_reason(long status)
{
    switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    }
    return "unexpected response from keylessd";
}

static int append_limited(kl_buf *out, const char *s, size_t n)
{
    if (n > ERROR_MAX_TEXT)
        n = ERROR_MAX_TEXT;
    return kl_cli_append_printable(out, s, n);
}

int kl_cli_format_server_error(long status, const char *body, size_t len, kl_buf *out)
{
    json_t *root = NULL;
    int rc = 0;

    if (body && len > 0)
        root = json_loadb(body, len, 0, NULL);
    json_t *err = json_object_get(root, "error");
    json_t *code = json_object_get(err, "code");
    json_t *msg = json_object_get(err, "message");
    if (json_is_string(code) || json_is_integer(code)) {
        if ((rc = kl_buf_append_str(out, "error: ")) < 0)
            goto out;
        if (json_is_string(code))
            rc = append_limited(out, json_string_value(code), json_string_length(code));
        else
            rc = kl_buf_appendf(out, "%lld", (long long)json_integer_value(code));
        if (rc < 0)
            goto out;
        if ((rc = kl_buf_append_str(out, ": ")) < 0)
            goto out;
        if (json_is_string(msg))
            rc = append_limited(out, json_string_value(msg), json_string_length(msg));
        else
            rc = kl_buf_append_str(out, status_reason(status));
        goto out;
    }
    /* Not the ARM shape: an OAuth-style {"error":"..","error_description":".."} or a short
     * text body is still worth showing; anything else gets the status reason. */
    if (json_is_string(err)) {
        json_t *desc = json_object_get(root, "error_description");
        if ((rc = kl_buf_append_str(out, "error: ")) < 0 ||
            (rc = append_limited(out, json_string_value(err), json_string_length(err))) < 0 ||
            (rc = kl_buf_append_str(out, ": ")) < 0)
            goto out;
        if (json_is_string(desc))
            rc = append_limited(out, json_string_value(desc), json_string_length(desc));
        else
            rc = kl_buf_append_str(out, status_reason(status));
        goto out;
    }
    if ((rc = kl_buf_appendf(out, "error: HTTP %ld: ", status)) < 0)
        goto out;
    while (len > 0 && (body[len - 1] == '\n' || body[len - 1] == '\r' || body[len - 1] == ' '))
        len--;
    if (!root && len > 0)
        rc = append_limited(out, body, len);
    else
        rc = kl_buf_append_str(out, status_reason(status));
out:
    json_decref(root);
    return rc;
}
