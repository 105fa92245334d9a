/* keyless: the command-line client of keylessd. Parses the command line, resolves the
 * settings (option, then environment, then default) and runs one command against the
 * control plane on DIR/admin.sock. Exit codes: see enum kl_cli_exit in output.h. */
#include <curl/curl.h>
#include <jansson.h>
#include <limits.h>
#include <malloc.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/help.h"
#include "cli/output.h"
#include "common/err.h"
#include "common/paths.h"
#include "common/util.h"

#ifndef KL_VERSION
#define KL_VERSION "0.1.0-dev"
#endif

/* jansson frees through this, so keys parsed from answers and credentials placed in
 * request bodies do not linger in freed memory. */
static void wipe_free(void *p)
{
    if (!p)
        return;
    OPENSSL_cleanse(p, malloc_usable_size(p));
    free(p);
}

static const char *env_nonempty(const char *name)
{
    const char *v = getenv(name);
    return v && v[0] ? v : NULL;
}

static const char *first_set(const char *a, const char *b, const char *dflt)
{
    return a ? a : b ? b : dflt;
}

/* Resolves the data directory into out; prints why on failure unless quiet. */
static int resolve_data_dir(const kl_cli_args *a, bool quiet, char *out, size_t outlen)
{
    const char *dir = first_set(a->data_dir, env_nonempty("KEYLESS_DATA_DIR"), NULL);
    if (dir) {
        size_t n = strlen(dir);
        if (n >= outlen) {
            fprintf(stderr, "error: data directory path is too long\n");
            return KL_CLI_EXIT_USAGE;
        }
        memcpy(out, dir, n + 1);
    } else {
        int rc = kl_paths_default_data_dir(geteuid() == 0, getenv("XDG_DATA_HOME"), getenv("HOME"),
                                           out, outlen);
        if (rc < 0 && quiet) {
            out[0] = '\0';
            return KL_CLI_EXIT_USAGE;
        }
        if (rc == KL_ENOTFOUND) {
            fprintf(stderr, "error: HOME is not set, so there is no default data directory; "
                            "give --data-dir DIR (or KEYLESS_DATA_DIR)\n");
            return KL_CLI_EXIT_USAGE;
        }
        if (rc < 0) {
            fprintf(stderr, "error: the default data directory path is too long; give "
                            "--data-dir\n");
            return KL_CLI_EXIT_USAGE;
        }
    }
    /* "dir/" and "dir" name the same socket; keep messages tidy. */
    size_t n = strlen(out);
    while (n > 1 && out[n - 1] == '/')
        out[--n] = '\0';
    return KL_CLI_EXIT_OK;
}

static int dispatch(kl_cli_ctx *c)
{
    const kl_cli_command *cmd = kl_cli_command_of(c->args->cmd);
    if (cmd)
        return cmd->run(c);
    fprintf(stderr, "error: no command given\nRun 'keyless --help' for usage.\n");
    return KL_CLI_EXIT_USAGE;
}

int main(int argc, char **argv)
{
    kl_cli_args args;
    char err[1024];
    char data_dir[PATH_MAX] = "";
    char sock_path[PATH_MAX + sizeof("/admin.sock")];
    kl_cli_ctx ctx;
    kl_cli_remote *remote = NULL;
    bool use_remote = false;
    int code;

    if (kl_cli_args_parse(argc, argv, &args, err, sizeof(err)) < 0) {
        fprintf(stderr, "error: %s\nRun 'keyless --help' for usage.\n", err);
        return KL_CLI_EXIT_USAGE;
    }
    if (args.help) {
        kl_cli_help(stdout, args.noun);
        return fflush(stdout) == 0 ? KL_CLI_EXIT_OK : KL_CLI_EXIT_REFUSED;
    }
    if (args.version) {
        printf("keyless %s\n", KL_VERSION);
        return fflush(stdout) == 0 ? KL_CLI_EXIT_OK : KL_CLI_EXIT_REFUSED;
    }

    json_set_alloc_funcs(malloc, wipe_free);
    remote = calloc(1, sizeof(*remote));
    if (!remote) {
        fprintf(stderr, "error: out of memory\n");
        return KL_CLI_EXIT_REFUSED;
    }
    code = kl_cli_remote_choose(&args, env_nonempty("KEYLESS_DATA_DIR") != NULL,
                                getenv("XDG_CONFIG_HOME"), getenv("HOME"), remote, &use_remote, err,
                                sizeof(err));
    if (code != KL_CLI_EXIT_OK) {
        fprintf(stderr, "error: %s\n", err);
        goto out_remote;
    }
    /* Not needed over TLS, and only for a default CA at login: a missing HOME is then no
     * error. */
    bool quiet = use_remote || args.cmd == KL_CLI_CMD_LOGIN || args.cmd == KL_CLI_CMD_LOGOUT;
    if ((code = resolve_data_dir(&args, quiet, data_dir, sizeof(data_dir))) != KL_CLI_EXIT_OK &&
        !quiet)
        goto out_remote;
    snprintf(sock_path, sizeof(sock_path), "%s/admin.sock", data_dir);

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "error: cannot initialise libcurl\n");
        code = KL_CLI_EXIT_REFUSED;
        goto out_remote;
    }

    memset(&ctx, 0, sizeof(ctx));
    ctx.args = &args;
    ctx.data_dir = data_dir[0] ? data_dir : NULL;
    ctx.sock_path = sock_path;
    ctx.subscription = first_set(args.subscription, env_nonempty("KEYLESS_SUBSCRIPTION"),
                                 KL_CLI_DEFAULT_SUBSCRIPTION);
    const char *rg_env = env_nonempty("KEYLESS_RESOURCE_GROUP");
    ctx.resource_group = first_set(args.resource_group, rg_env, KL_CLI_DEFAULT_RESOURCE_GROUP);
    ctx.resource_group_given = args.resource_group || rg_env;
    ctx.out = stdout;
    ctx.err = stderr;

    if (use_remote) {
        ctx.remote = remote;
        if (kl_cli_http_init_remote(&ctx.http, remote->login.server, remote->login.ca_file, err,
                                    sizeof(err)) < 0) {
            fprintf(stderr, "error: %s (in the login file)\n", err);
            code = KL_CLI_EXIT_USAGE;
            goto out;
        }
    } else if (kl_cli_http_init(&ctx.http, sock_path, err, sizeof(err)) < 0) {
        fprintf(stderr, "error: %s\n", err);
        code = KL_CLI_EXIT_UNREACHABLE;
        goto out;
    }
    code = dispatch(&ctx);
    if (fflush(stdout) != 0 && code == KL_CLI_EXIT_OK) {
        fprintf(stderr, "error: cannot write the output\n");
        code = KL_CLI_EXIT_REFUSED;
    }
out:
    kl_cli_http_free(&ctx.http);
    curl_global_cleanup();
out_remote:
    kl_cli_remote_free(remote);
    free(remote);
    return code;
}
