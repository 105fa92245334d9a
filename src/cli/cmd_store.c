/* keyless store migrate: copies one store into another (SQLite to PostgreSQL, or back)
 * by opening both databases directly; keylessd is not involved and should be stopped. */
#include <inttypes.h>
#include <stdio.h>

#include "cli/commands.h"
#include "cli/output.h"
#include "common/err.h"
#include "store/store.h"

int kl_cli_cmd_store(kl_cli_ctx *c)
{
    const kl_cli_args *a = c->args;
    if (!a->from || !a->to) {
        fprintf(c->err, "keyless: store migrate needs --from URL and --to URL\n");
        return KL_CLI_EXIT_USAGE;
    }
    kl_store *from = NULL, *to = NULL;
    int64_t rows = 0;
    int code = KL_CLI_EXIT_REFUSED;
    /* The store logs why an open failed, without the URL. */
    int err = kl_store_open(a->from, &from);
    if (err) {
        fprintf(c->err, "keyless: cannot open the source store: %s\n", kl_err_str(err));
        goto out;
    }
    if ((err = kl_store_open(a->to, &to))) {
        fprintf(c->err, "keyless: cannot open the destination store: %s\n", kl_err_str(err));
        goto out;
    }
    if ((err = kl_store_copy(from, to, &rows))) {
        fprintf(c->err, "keyless: store migrate failed (%s); nothing was written\n",
                err == KL_ECONFLICT ? "the destination store is not empty" : kl_err_str(err));
        goto out;
    }
    fprintf(c->out, "copied %" PRId64 " rows from %s to %s\n", rows, kl_store_engine(from),
            kl_store_engine(to));
    code = KL_CLI_EXIT_OK;
out:
    kl_store_close(to);
    kl_store_close(from);
    return code;
}
