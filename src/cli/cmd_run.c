/* keyless run --site NAME -- COMMAND...: starts COMMAND the way App Service starts an
 * app, with IDENTITY_ENDPOINT and IDENTITY_HEADER set for the site. The launch secret is
 * asked of keylessd (PUT .../sites/NAME/identityHeaders/{launch id}), handed to the
 * child only, renewed while the child runs (the secret's lease is bounded, so a CLI
 * killed with -9 leaves a secret that lapses on its own) and revoked (DELETE) when the
 * child exits. Signals sent to this process are passed on to the child. */
#include <errno.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/output.h"
#include "common/limits.h"
#include "common/util.h"

/* The api-version of the Microsoft.Web routes. */
#define SITES_API_VERSION "2024-04-01"

/* The signals passed on to the child (SIGCHLD is waited for, not passed on). */
static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};

static int launch_target(kl_cli_ctx *c, const char *launch_id, kl_buf *t)
{
    kl_buf_init(t, KL_CLI_TARGET_MAX);
    int rc = kl_buf_append_str(t, "/subscriptions/");
    if (!rc)
        rc = kl_cli_append_segment(t, c->subscription);
    if (!rc)
        rc = kl_buf_append_str(t, "/resourceGroups/");
    if (!rc)
        rc = kl_cli_append_segment(t, c->resource_group);
    if (!rc)
        rc = kl_buf_append_str(t, "/providers/Microsoft.Web/sites/");
    if (!rc)
        rc = kl_cli_append_segment(t, c->args->site);
    if (!rc)
        rc = kl_buf_append_str(t, "/identityHeaders/");
    if (!rc)
        rc = kl_cli_append_segment(t, launch_id);
    if (!rc)
        rc = kl_buf_append_str(t, "?api-version=" SITES_API_VERSION);
    if (rc < 0) {
        kl_buf_free(t);
        kl_cli_errorf(c, "the request path is too long");
        return KL_CLI_EXIT_USAGE;
    }
    return KL_CLI_EXIT_OK;
}

/* Renews the lease (the answer carries no secret on a renewal). A failure is reported
 * and otherwise ignored: the child keeps running, and the next renewal tries again. */
static void renew(kl_cli_ctx *c, const char *target)
{
    json_t *j = NULL;
    long status = 0;
    if (kl_cli_call(c, "PUT", target, NULL, 0, &status, &j) != KL_CLI_EXIT_OK)
        kl_cli_errorf(c, "could not renew the launch's identity header; it lapses unless a "
                         "later renewal succeeds");
    json_decref(j);
}

/* Runs argv with the endpoint variables set; never returns. */
static void exec_child(char *const *argv, const char *endpoint, const char *header,
                       const sigset_t *old_mask)
{
    /* The parent passes signals on; the child starts with the mask it would have had. */
    sigprocmask(SIG_SETMASK, old_mask, NULL);
    /* IDENTITY_SERVER_THUMBPRINT would turn the clients' App Service source into Service
     * Fabric; MSI_* would pick other sources first (protocols.md 3.2). */
    unsetenv("IDENTITY_SERVER_THUMBPRINT");
    unsetenv("MSI_ENDPOINT");
    unsetenv("MSI_SECRET");
    if (setenv("IDENTITY_ENDPOINT", endpoint, 1) != 0 ||
        setenv("IDENTITY_HEADER", header, 1) != 0) {
        fprintf(stderr, "error: cannot set the identity variables\n");
        _exit(KL_CLI_EXIT_REFUSED);
    }
    execvp(argv[0], argv);
    fprintf(stderr, "error: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

/* Waits for the child, passing signals on and renewing the lease every renew_s. Returns
 * the child's exit code (128+N when signal N ended it). */
static int supervise(kl_cli_ctx *c, pid_t child, const sigset_t *set, const char *target,
                     int renew_s)
{
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    next.tv_sec += renew_s;
    for (;;) {
        int status = 0;
        pid_t w = waitpid(child, &status, WNOHANG);
        if (w == child) {
            if (WIFEXITED(status))
                return WEXITSTATUS(status);
            if (WIFSIGNALED(status))
                return 128 + WTERMSIG(status);
        }
        struct timespec now, wait_for;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec >= next.tv_sec) {
            renew(c, target);
            next.tv_sec = now.tv_sec + renew_s;
        }
        wait_for.tv_sec = next.tv_sec - now.tv_sec;
        wait_for.tv_nsec = 0;
        siginfo_t info;
        int sig = sigtimedwait(set, &info, &wait_for);
        if (sig > 0 && sig != SIGCHLD)
            kill(child, sig);
    }
}

int kl_cli_cmd_run(kl_cli_ctx *c)
{
    char launch_id[KL_UUID_LEN + 1];
    char *endpoint = NULL, *header = NULL;
    kl_buf t;
    json_t *j = NULL;
    long status = 0;
    int rc;
    if (kl_uuid_v4(launch_id) != 0) {
        kl_cli_errorf(c, "cannot make a launch id");
        return KL_CLI_EXIT_REFUSED;
    }
    if ((rc = launch_target(c, launch_id, &t)) != KL_CLI_EXIT_OK)
        return rc;
    rc = kl_cli_call(c, "PUT", t.data, NULL, 0, &status, &j);
    if (rc != KL_CLI_EXIT_OK)
        goto out;
    const char *e = kl_cli_json_str(j, "properties", "identityEndpoint", NULL);
    const char *h = kl_cli_json_str(j, "properties", "identityHeader", NULL);
    json_t *lease = kl_cli_json_at(j, "properties", "leaseSeconds", NULL);
    int lease_s = json_is_integer(lease) ? (int)json_integer_value(lease) : 0;
    if (!e || !h || lease_s < 3 || !(endpoint = strdup(e)) || !(header = strdup(h))) {
        kl_cli_errorf(c, "keylessd answered without an identity endpoint and header");
        rc = KL_CLI_EXIT_REFUSED;
        goto out;
    }
    /* The secret lives in the child's environment only from here on. */
    {
        json_t *props = json_object_get(j, "properties");
        json_t *hv = json_object_get(props, "identityHeader");
        if (hv)
            OPENSSL_cleanse((char *)json_string_value(hv), json_string_length(hv));
        json_decref(j);
        j = NULL;
    }
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
        sigaddset(&set, forwarded[i]);
    sigprocmask(SIG_BLOCK, &set, &old);
    fflush(NULL);
    pid_t child = fork();
    if (child == 0)
        exec_child(c->args->run_argv, endpoint, header, &old);
    OPENSSL_cleanse(header, strlen(header));
    if (child < 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        kl_cli_errorf(c, "cannot start %s: %s", c->args->run_argv[0], strerror(errno));
        rc = KL_CLI_EXIT_REFUSED;
    } else {
        /* Renewed at a third of the lease: two renewals can fail before it lapses. */
        rc = supervise(c, child, &set, t.data, lease_s / 3);
        sigprocmask(SIG_SETMASK, &old, NULL);
    }
    /* Revoked whatever happened: the next request with this header gets 401. */
    if (kl_cli_call(c, "DELETE", t.data, NULL, KL_CLI_CALL_QUIET_404, &status, NULL) !=
        KL_CLI_EXIT_OK)
        kl_cli_errorf(c,
                      "could not revoke the launch's identity header; it lapses within %d "
                      "seconds",
                      lease_s);
out:
    json_decref(j);
    free(endpoint);
    if (header) {
        OPENSSL_cleanse(header, strlen(header));
        free(header);
    }
    kl_buf_free(&t);
    return rc;
}
