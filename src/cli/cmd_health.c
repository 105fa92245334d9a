/* keyless health: asks keylessd's /healthz over the admin socket; exits 0 when it
 * answers 2xx, so scripts can wait for the daemon with it. */
#include <string.h>

#include "cli/commands.h"
#include "cli/output.h"

int kl_cli_cmd_health(kl_cli_ctx *c)
{
    kl_cli_response resp;
    int code = kl_cli_exchange(c, "GET", "/healthz", NULL, 0, &resp);
    if (code != KL_CLI_EXIT_OK)
        goto out;

    json_t *j = NULL;
    if (resp.body.len > 0)
        j = json_loadb(resp.body.data, resp.body.len, JSON_DECODE_ANY, NULL);
    if (c->args->output == KL_CLI_OUTPUT_JSON) {
        int rc = 0;
        if (j) {
            rc = kl_cli_print_json(c->out, j);
        } else {
            /* Not JSON: say so in JSON rather than print text where JSON is expected. */
            json_t *wrap =
                json_pack("{s:s%}", "status", resp.body.data ? resp.body.data : "", resp.body.len);
            rc = wrap ? kl_cli_print_json(c->out, wrap) : -1;
            json_decref(wrap);
        }
        if (rc < 0)
            code = kl_cli_output_failed(c);
    } else {
        const char *status = kl_cli_json_str(j, "status", NULL);
        kl_buf line;
        kl_buf_init(&line, 4096);
        size_t n = resp.body.len;
        while (n > 0 && (resp.body.data[n - 1] == '\n' || resp.body.data[n - 1] == '\r'))
            n--;
        int rc;
        if (status)
            rc = kl_cli_append_printable(&line, status, strlen(status));
        else if (!j && n > 0 && n < 4096)
            rc = kl_cli_append_printable(&line, resp.body.data, n);
        else
            rc = kl_buf_append_str(&line, "ok");
        if (rc == 0)
            fprintf(c->out, "%s (keylessd %s %s)\n", line.data, c->remote ? "at" : "on",
                    c->remote ? c->http.base_url : c->sock_path);
        kl_buf_free(&line);
    }
    json_decref(j);
out:
    kl_cli_response_free(&resp);
    return code;
}
