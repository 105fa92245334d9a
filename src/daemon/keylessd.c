/* keylessd: loads configuration and secrets, opens the store, publishes the first
 * snapshot, starts the listeners of every face and waits for a stop signal. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/util.h"
#include "crypto/keys.h"
#include "crypto/tls.h"
#include "daemon/config.h"
#include "daemon/datadir.h"
#include "daemon/router.h"
#include "gateway/gateway.h"
#include "gateway/gateway_sts.h"
#include "http/server.h"
#include "mgmt/arm.h"
#include "mgmt/mgmt.h"
#include "policy/build.h"
#include "policy/egress.h"
#include "policy/jwks.h"
#include "policy/signing.h"
#include "policy/signins.h"
#include "policy/keyusage.h"
#include "policy/netrules.h"
#include "policy/snapshot.h"
#include "daemon/kek_check.h"
#include "store/store.h"

/* Our TCP listeners: public, IMDS, metrics and the private ones; the admin socket is one
 * more of the server's. Both limits must hold them all. */
_Static_assert(3 + KL_MAX_PRIVATE_LISTENERS <= KL_MAX_EGRESS_LISTENERS,
               "the egress policy must know every TCP listener");
_Static_assert(4 + KL_MAX_PRIVATE_LISTENERS <= KL_MAX_HTTP_LISTENERS,
               "the HTTP server must take every listener");

/* The next entry of a comma- or space-separated list: *start and *len, or false at the
 * end. *pos moves past it. */
static bool next_item(const char *list, size_t *pos, size_t *start, size_t *len)
{
    size_t i = *pos;
    while (list[i] == ',' || list[i] == ' ' || list[i] == '\t')
        i++;
    if (!list[i])
        return false;
    size_t j = i;
    while (list[j] && list[j] != ',' && list[j] != ' ' && list[j] != '\t')
        j++;
    *start = i;
    *len = j - i;
    *pos = j;
    return true;
}

/* --trusted-proxy: every entry an address or CIDR, at most KL_MAX_TRUSTED_PROXIES. *out
 * is NULL when the list is empty. 0, or KL_EINVAL with err set. */
static int trusted_proxies(const char *list, kl_netrules **out, char *err, size_t errlen)
{
    kl_netrange r[KL_MAX_TRUSTED_PROXIES];
    size_t n = 0, pos = 0, start, len;
    *out = NULL;
    while (next_item(list, &pos, &start, &len)) {
        if (n == KL_MAX_TRUSTED_PROXIES)
            return kl_err_say(err, errlen, KL_EINVAL, "--trusted-proxy: more than %d entries",
                              KL_MAX_TRUSTED_PROXIES);
        if (kl_netrules_parse(list + start, len, &r[n]) != 0)
            return kl_err_say(err, errlen, KL_EINVAL,
                              "--trusted-proxy: '%.*s' is not an address or CIDR",
                              (int)(len > 64 ? 64 : len), list + start);
        n++;
    }
    if (n == 0)
        return 0;
    return kl_netrules_compile(r, n, out) == 0
               ? 0
               : kl_err_say(err, errlen, KL_EINVAL, "--trusted-proxy: cannot compile");
}
/* Without a core file or a ptrace-able process image, the KEK, the subkeys and the TLS
 * keys in memory cannot be copied out by a crash or by another process of the same user.
 * Both settings are inherited by nothing (keylessd starts no programs). */
static int forbid_core_dumps(void)
{
    struct rlimit none = {0, 0};
    if (setrlimit(RLIMIT_CORE, &none) != 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
        kl_log(KL_LOG_ERROR, "core_dumps", "reason", strerror(errno), NULL);
        return KL_EIO;
    }
    return 0;
}

/* Each file and directory keylessd opens in its data directory, checked before use. */
static const struct {
    const char *name;
    mode_t type;
} data_entries[] = {
    {"kek", S_IFREG},
    {"keyless.db", S_IFREG},
    {"keyless.db-wal", S_IFREG},
    {"keyless.db-shm", S_IFREG},
    {"tls", S_IFDIR},
    {"tls/ca.pem", S_IFREG},
    {"tls/ca.key", S_IFREG},
    {"tls/server.pem", S_IFREG},
    {"tls/server.key", S_IFREG},
    {"admin.sock", S_IFSOCK},
};

/* Opens and locks the data directory and checks what it holds. One log line on refusal. */
static int open_data_dir(const kl_config *cfg, bool kek_from_env, kl_datadir **out)
{
    char err[1024] = "";
    int rc = kl_datadir_open(cfg->data_dir, out, err, sizeof(err));
    for (size_t i = 0; rc == 0 && i < sizeof(data_entries) / sizeof(data_entries[0]); i++) {
        /* A KEK given in the environment or by --kek-file leaves DIR/kek unused. */
        if (kek_from_env && !strcmp(data_entries[i].name, "kek"))
            continue;
        /* With the operator's own certificate, DIR/tls is not opened either. */
        if (cfg->tls_cert[0] && !strncmp(data_entries[i].name, "tls", 3))
            continue;
        rc = kl_datadir_check(*out, data_entries[i].name, data_entries[i].type, err, sizeof(err));
    }
    if (rc) {
        kl_log(KL_LOG_ERROR, "data_dir_refused", "reason", err, NULL);
        kl_datadir_close(*out);
        *out = NULL;
    }
    return rc;
}

static bool is_loopback_hostport(const char *hp)
{
    return !strncmp(hp, "127.", 4) || !strncmp(hp, "[::1]:", 6) || !strncmp(hp, "localhost:", 10);
}

/* Where the identity endpoints may listen without --imds-listen-unsafe: loopback, or the
 * link-local address and port Azure's clients call by default (on that address, routed
 * to this host only, as on Azure; docs/operations.md). */
static bool imds_address_allowed(const char *hp)
{
    return is_loopback_hostport(hp) || !strcmp(hp, "169.254.169.254:80");
}

static void public_base(const kl_config *cfg, int port, char *out, size_t outlen)
{
    if (cfg->public_url[0]) {
        size_t n = strlen(cfg->public_url);
        while (n > 0 && cfg->public_url[n - 1] == '/')
            n--;
        snprintf(out, outlen, "%.*s", (int)n, cfg->public_url);
        return;
    }
    char host[128];
    snprintf(host, sizeof(host), "%s", cfg->listen);
    char *colon = strrchr(host, ':');
    if (colon)
        *colon = '\0';
    if (!strcmp(host, "0.0.0.0") || !strcmp(host, "[::]") || !host[0])
        snprintf(host, sizeof(host), "127.0.0.1");
    snprintf(out, outlen, "https://%s:%d", host, port);
}

/* What the store watcher needs to rebuild the snapshot. */
typedef struct watch_ctx {
    kl_policy *policy;
    kl_snapshot_holder *holder;
} watch_ctx;

/* Runs on the store's watcher thread when another node committed a change: the
 * rebuild reads the committed state, so it is current however many notifications it
 * stands for. Which scopes the change touched is unknown here, so a failed build fences
 * everything (fail closed: 503 rather than a revoked key or role still honoured); the
 * watcher calls again on each wake-up until a build succeeds and lifts the fence. */
static int on_store_change(void *arg)
{
    watch_ctx *w = arg;
    bool fenced = kl_snapshot_fenced(w->holder);
    int err = kl_policy_apply(w->policy, "/");
    if (!err && fenced)
        kl_log(KL_LOG_INFO, "snapshot_fence_lifted", "by", "store_watcher", NULL);
    return err;
}

int main(int argc, char **argv)
{
    kl_config cfg;
    char err[512] = "";
    int rc = 1;
    kl_keys *keys = NULL;
    kl_datadir *dd = NULL;
    char kek_env[KL_MAX_KEK_ENV];
    int kek_env_rc = 0;
    kl_store *store = NULL;
    kl_store *refresh_store = NULL; /* the refresh-token writer's own connection */
    kl_snapshot_holder *holder = NULL;
    kl_policy *policy = NULL;
    kl_metrics *metrics = NULL;
    kl_mgmt *mgmt = NULL;
    kl_gateway *gateway = NULL;
    kl_gateway_sts *sts = NULL;
    kl_imds *imds_ep = NULL;
    kl_signins *signins = NULL;
    kl_http_server *server = NULL;
    kl_egress *egress = NULL;
    kl_netrules *trusted = NULL;
    kl_keyusage *usage = NULL;
    SSL_CTX *tls = NULL;
    kl_router router;
    memset(&router, 0, sizeof(router));

    /* First of all, before anything can copy the environment: the KEK leaves it. */
    kek_env_rc = kl_config_take_env_secret("KEYLESS_KEK", kek_env, sizeof(kek_env));
    if (kl_config_load(&cfg, argc, argv, err, sizeof(err)) != 0) {
        fprintf(stderr, "keylessd: %s\n", err);
        rc = 2;
        goto out;
    }
    /* Before any thread: federated issuers' keys are fetched with libcurl. */
    if (kl_jwks_global_init() != 0) {
        fprintf(stderr, "keylessd: cannot initialise the HTTPS client\n");
        goto out;
    }
    if (cfg.help || cfg.version) {
        if (cfg.help)
            fputs(kl_config_usage(), stdout);
        else
            printf("keylessd %s\n", KL_VERSION);
        rc = 0;
        goto out;
    }
    kl_log_set_level(cfg.log_level);
    signal(SIGPIPE, SIG_IGN);
    /* SIGTERM and SIGINT are taken synchronously by this thread (sigwait below), and no
     * other thread may see them: blocked here, before the first thread starts (the
     * sign-in log's and the refresh-token writers, the store's watcher, the compactor,
     * the server's threads), so every thread inherits the mask. Blocked any later, a
     * signal could reach a thread started earlier and kill the process outright. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    if (!cfg.allow_core_dumps && forbid_core_dumps() != 0)
        goto out;
    if (kek_env_rc < 0) {
        kl_log(KL_LOG_ERROR, "kek", "reason",
               "KEYLESS_KEK is too long (base64 of " KL_STR(KL_KEK_BYTES) " bytes)", NULL);
        goto out;
    }

    if (!imds_address_allowed(cfg.imds_listen)) {
        /* The identity endpoint hands out tokens to whoever can reach it: that must only
         * ever be code on this host. */
        if (!cfg.imds_listen_unsafe) {
            kl_log(KL_LOG_ERROR, "config", "reason",
                   "--imds-listen must be a loopback address or 169.254.169.254:80 (any other "
                   "needs --imds-listen-unsafe on)",
                   "value", cfg.imds_listen, NULL);
            rc = 2;
            goto out;
        }
        kl_log(KL_LOG_WARN, "imds_listen_unsafe", "value", cfg.imds_listen, "detail",
               "whoever reaches this address gets the tokens of this host's identities", NULL);
    }
    /* A name no VM can have would make every IMDS request "Identity not found" in
     * silence; say so at start instead. */
    if (cfg.vm[0] && !kl_arm_valid_vm_name(cfg.vm, strlen(cfg.vm))) {
        kl_log(KL_LOG_ERROR, "config", "reason",
               "--vm is not a virtual machine name (1-64 letters, digits, '-', '_' or '.')",
               "value", cfg.vm, NULL);
        rc = 2;
        goto out;
    }
    /* The egress policy comes from the operator's configuration only; nothing the
     * control plane stores can widen it. */
    if (kl_egress_new(&egress) != 0)
        goto out;
    if (kl_egress_allow(egress, cfg.egress_allow, err, sizeof(err)) != 0) {
        kl_log(KL_LOG_ERROR, "config", "reason", err, NULL);
        rc = 2;
        goto out;
    }
    if (trusted_proxies(cfg.trusted_proxy, &trusted, err, sizeof(err)) != 0) {
        kl_log(KL_LOG_ERROR, "config", "reason", err, NULL);
        rc = 2;
        goto out;
    }
    {
        size_t pos = 0, start, len, n = 0;
        while (next_item(cfg.private_listen, &pos, &start, &len))
            n++;
        if (n > KL_MAX_PRIVATE_LISTENERS) {
            kl_log(KL_LOG_ERROR, "config", "reason",
                   "--private-listen: at most " KL_STR(KL_MAX_PRIVATE_LISTENERS) " listeners",
                   NULL);
            rc = 2;
            goto out;
        }
    }
    if (open_data_dir(&cfg, kek_env_rc == 1 || cfg.kek_file[0], &dd) != 0)
        goto out;

    char path[KL_MAX_STORE_URL + 16];
    int krc = cfg.kek_file[0]
                  ? kl_keys_load_file(cfg.kek_file, &keys)
                  : kl_keys_load(kl_datadir_fd(dd), kek_env_rc == 1 ? kek_env : NULL, &keys);
    explicit_bzero(kek_env, sizeof(kek_env));
    if (krc != 0) {
        char why[sizeof(cfg.kek_file) + sizeof(cfg.data_dir) + 256];
        if (cfg.kek_file[0])
            snprintf(why, sizeof(why),
                     "--kek-file %s is not usable: it must be an existing regular file (not a "
                     "link) of exactly " KL_STR(
                         KL_KEK_BYTES) " bytes, owned by this user, with mode 0600",
                     cfg.kek_file);
        else if (kek_env_rc == 1)
            snprintf(why, sizeof(why),
                     "KEYLESS_KEK is not usable: it must be the base64 of exactly " KL_STR(
                         KL_KEK_BYTES) " bytes");
        else
            snprintf(why, sizeof(why),
                     "%s/kek is not usable: it must be a file of exactly " KL_STR(
                         KL_KEK_BYTES) " bytes with mode 0600 "
                                       "(chmod 600 it if others can read it)",
                     cfg.data_dir);
        kl_log(KL_LOG_ERROR, "kek", "reason", why, NULL);
        goto out;
    }

    char cert[1100], key[1100];
    if (cfg.tls_cert[0]) {
        snprintf(cert, sizeof(cert), "%s", cfg.tls_cert);
        snprintf(key, sizeof(key), "%s", cfg.tls_key);
    } else {
        char tlsdir[1040];
        snprintf(tlsdir, sizeof(tlsdir), "%s/tls", cfg.data_dir);
        char wildcard[300];
        snprintf(wildcard, sizeof(wildcard), "*.%s", cfg.account_domain);
        const char *extra[2] = {wildcard, cfg.account_domain};
        if (kl_tls_ensure_selfsigned(tlsdir, extra, cfg.account_domain[0] ? 2 : 0) != 0) {
            kl_log(KL_LOG_ERROR, "tls", "reason", "cannot create the self-signed certificate",
                   "dir", tlsdir, NULL);
            goto out;
        }
        snprintf(cert, sizeof(cert), "%s/server.pem", tlsdir);
        snprintf(key, sizeof(key), "%s/server.key", tlsdir);
    }
    tls = kl_tls_server_ctx(cert, key, err, sizeof(err));
    if (!tls) {
        kl_log(KL_LOG_ERROR, "tls", "reason", err, "cert", cert, NULL);
        goto out;
    }

    if (cfg.store[0])
        snprintf(path, sizeof(path), "%s", cfg.store);
    else
        snprintf(path, sizeof(path), "sqlite:%s/keyless.db", cfg.data_dir);
    /* The URL is not logged: it may name hosts and users the log reader need not see;
     * the store logs what went wrong. */
    if (kl_store_open(path, &store) != 0) {
        kl_log(KL_LOG_ERROR, "store", "reason", "cannot open the database", NULL);
        goto out;
    }
    kl_log(KL_LOG_INFO, "store_opened", "engine", kl_store_engine(store), NULL);
    if (kl_kek_check(store, keys) != 0) {
        kl_log(KL_LOG_ERROR, "kek", "reason", "refusing to start", NULL);
        goto out;
    }
    /* The token service signs with a key of the store; the first node to start makes
     * it (the store decides, so nodes starting together make one). */
    kl_signing_cfg signing = {.rotation_s = (int64_t)cfg.signing_key_rotation_days * 86400,
                              .lead_s = KL_SIGNING_PUBLISH_LEAD_S,
                              .token_lifetime_s = (int64_t)cfg.token_lifetime_min * 60,
                              .alg = KL_JWS_RS256};
    if (!strcmp(cfg.signing_key_alg, "ES256")) {
        signing.alg = KL_JWS_ES256;
    } else if (strcmp(cfg.signing_key_alg, "RS256") != 0) {
        kl_log(KL_LOG_ERROR, "config", "reason", "--signing-key-alg must be RS256 or ES256", NULL);
        rc = 2;
        goto out;
    }
    if (kl_signing_tick(store, keys, &signing, kl_now_unix(), NULL) != 0) {
        kl_log(KL_LOG_ERROR, "signing_key", "reason", "cannot make the first signing key", NULL);
        goto out;
    }
    holder = kl_snapshot_holder_new();
    if (kl_keyusage_new(&usage) != 0)
        goto out;
    /* A deployment whose credential does not open is built as unavailable (logged once);
     * only a store that cannot be read at all keeps the daemon from starting. */
    if (holder && kl_policy_new(store, keys, holder, &policy) == 0)
        kl_policy_set_keyusage(policy, usage); /* before the first build: keys get cells */
    if (!policy || kl_policy_apply(policy, NULL) != 0) {
        kl_log(KL_LOG_ERROR, "snapshot", "reason", "cannot build the first snapshot", NULL);
        goto out;
    }
    if (cfg.check) {
        printf("keylessd: configuration OK (data dir %s)\n", cfg.data_dir);
        rc = 0;
        goto out;
    }

    metrics = kl_metrics_new();
    if (!metrics)
        goto out;

    kl_http_server_cfg scfg = {
        .workers = cfg.workers,
        .handler = kl_router_handle,
        .on_headers = kl_router_vet,
        .handler_arg = &router,
        .thread_init = kl_router_thread_init,
        .thread_fini = kl_router_thread_fini,
        .thread_arg = &router,
        .metrics = metrics,
        .access_log = cfg.access_log,
        .write_timeout_ms = cfg.write_timeout_ms,
        .body_timeout_ms = cfg.body_timeout_ms,
    };
    server = kl_http_server_new(&scfg);
    if (!server)
        goto out;
    int public_port = 0, imds_port = 0, metrics_port = 0;
    if (kl_http_server_listen_tcp(server, cfg.listen, tls, KL_FACE_PUBLIC, &public_port) != 0 ||
        kl_http_server_listen_tcp(server, cfg.imds_listen, NULL, KL_FACE_IMDS, &imds_port) != 0)
        goto out;
    if (cfg.metrics_listen[0] && kl_http_server_listen_tcp(server, cfg.metrics_listen, NULL,
                                                           KL_FACE_METRICS, &metrics_port) != 0)
        goto out;
    /* Private listeners: the ready line names each with its bound port. */
    char privs[KL_MAX_PRIVATE_LISTENERS * 140] = "";
    {
        size_t pos = 0, start, len, used = 0;
        while (next_item(cfg.private_listen, &pos, &start, &len)) {
            char hp[130];
            int port = 0;
            snprintf(hp, sizeof(hp), "%.*s", (int)len, cfg.private_listen + start);
            const char *colon = strrchr(hp, ':');
            if (!colon || kl_http_server_listen_private(server, hp, tls, &port) != 0) {
                kl_log(KL_LOG_ERROR, "config", "reason", "--private-listen: cannot listen", "value",
                       hp, NULL);
                rc = 2;
                goto out;
            }
            int w = snprintf(privs + used, sizeof(privs) - used, "%s%.*s:%d", used ? "," : "",
                             (int)(colon - hp), hp, port);
            if (w > 0 && (size_t)w < sizeof(privs) - used)
                used += (size_t)w;
        }
    }
    /* Our own listeners are never a backend; a wildcard one owns its port on every
     * address of this host. */
    if (kl_egress_add_interfaces(egress) != 0)
        kl_log(KL_LOG_WARN, "egress", "detail", "cannot list this host's addresses", NULL);
    struct sockaddr_storage own;
    for (int i = 0; kl_http_server_tcp_addr(server, i, &own) == 0; i++) {
        if (kl_egress_add_listener(egress, (const struct sockaddr *)&own) != 0) {
            kl_log(KL_LOG_ERROR, "egress", "reason", "cannot record an own listener", NULL);
            goto out;
        }
    }
    char admin_path[1024];
    snprintf(admin_path, sizeof(admin_path), "%s/admin.sock", cfg.data_dir);
    if (kl_http_server_listen_unix(server, admin_path, KL_FACE_ADMIN) != 0) {
        kl_log(KL_LOG_ERROR, "listen_failed", "address", admin_path, NULL);
        goto out;
    }

    char base_url[600];
    public_base(&cfg, public_port, base_url, sizeof(base_url));
    /* What keyless run hands its command as IDENTITY_ENDPOINT. */
    char identity_endpoint[200];
    snprintf(identity_endpoint, sizeof(identity_endpoint), "http://%.*s:%d/msi/token",
             (int)(strrchr(cfg.imds_listen, ':') - cfg.imds_listen), cfg.imds_listen, imds_port);
    kl_mgmt_cfg mcfg = {.identity_endpoint = identity_endpoint,
                        .store = store,
                        .holder = holder,
                        .keys = keys,
                        .policy = policy,
                        .public_base_url = base_url,
                        .egress = egress,
                        .signing = &signing,
                        .usage = usage};
    if (kl_mgmt_new(&mcfg, &mgmt) != 0) {
        kl_log(KL_LOG_ERROR, "mgmt", "reason", "control plane failed to start", NULL);
        goto out;
    }
    kl_gateway_cfg gcfg = {.holder = holder,
                           .keys = keys,
                           .metrics = metrics,
                           .account_domain = cfg.account_domain[0] ? cfg.account_domain : NULL,
                           .upstream_timeout_ms = cfg.upstream_timeout_ms,
                           .egress = egress,
                           .trusted_proxies = trusted};
    if (kl_gateway_new(&gcfg, &gateway) != 0)
        goto out;
    if (kl_signins_start(store, &signins) != 0)
        goto out;
    /* Refresh-token rotations commit on a connection of their own, so that requests
     * reading the store do not wait behind their group commits (gateway/refreshq.h). */
    if (kl_store_open(path, &refresh_store) != 0) {
        kl_log(KL_LOG_ERROR, "store", "reason", "cannot open the database", NULL);
        goto out;
    }
    kl_gateway_sts_cfg stscfg = {.signins = signins,
                                 .refresh_store = refresh_store,
                                 .holder = holder,
                                 .keys = keys,
                                 .public_base_url = base_url,
                                 .token_lifetime_s = (int64_t)cfg.token_lifetime_min * 60,
                                 .device_code_lifetime_s = cfg.device_code_lifetime_s,
                                 .store = store,
                                 .egress = egress,
                                 .trusted_proxies = trusted,
                                 .federation_ca_file =
                                     cfg.federation_ca_file[0] ? cfg.federation_ca_file : NULL};
    if (kl_gateway_sts_new(&stscfg, &sts) != 0)
        goto out;
    kl_imds_cfg icfg = {.holder = holder,
                        .keys = keys,
                        .vm = cfg.vm,
                        .token_lifetime_s = (int64_t)cfg.mi_token_lifetime_min * 60,
                        .signins = signins};
    if (kl_imds_new(&icfg, &imds_ep) != 0)
        goto out;
    router.imds = imds_ep;
    router.sts = sts;
    router.mgmt = mgmt;
    router.gateway = gateway;
    router.metrics = metrics;
    router.store = store;
    router.holder = holder;
    /* Changes committed by other nodes (PostgreSQL) are applied as they are announced. */
    watch_ctx wctx = {.policy = policy, .holder = holder};
    if (kl_store_watch(store, on_store_change, &wctx) != 0)
        goto out;

    if (kl_http_server_start(server) != 0)
        goto out;

    char pub[160], imds[160], met[160];
    snprintf(pub, sizeof(pub), "%.*s:%d", (int)(strrchr(cfg.listen, ':') - cfg.listen), cfg.listen,
             public_port);
    snprintf(imds, sizeof(imds), "%.*s:%d", (int)(strrchr(cfg.imds_listen, ':') - cfg.imds_listen),
             cfg.imds_listen, imds_port);
    if (metrics_port)
        snprintf(met, sizeof(met), "%.*s:%d",
                 (int)(strrchr(cfg.metrics_listen, ':') - cfg.metrics_listen), cfg.metrics_listen,
                 metrics_port);
    kl_log(KL_LOG_INFO, "ready", "public", pub, "imds", imds, "vm", cfg.vm[0] ? cfg.vm : NULL,
           "admin", admin_path, "metrics", metrics_port ? met : NULL, "private",
           privs[0] ? privs : NULL, "data_dir", cfg.data_dir, "endpoint_base", base_url, "egress",
           kl_egress_has_allowlist(egress) ? "allowlist" : "default", "version", KL_VERSION, NULL);

    int sig = 0;
    sigwait(&sigs, &sig);
    kl_log(KL_LOG_INFO, "stopping", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT", NULL);
    /* Each worker settles its refresh rotations still waiting for a commit before its
     * loop is freed (kl_router_thread_fini), so nothing is delivered onto a freed loop. */
    kl_http_server_stop(server, cfg.stop_grace_ms);
    /* Every request has finished: what the keys were used for since the last batch goes
     * to the store now (a crash would have lost it). */
    size_t flushed = 0;
    if (kl_keyusage_flush(usage, store, &flushed) != 0)
        kl_log(KL_LOG_WARN, "key_usage_not_saved", NULL);
    kl_log(KL_LOG_INFO, "stopped", NULL);
    rc = 0;
out:
    kl_http_server_free(server);
    kl_gateway_free(gateway);
    kl_gateway_sts_free(sts);
    kl_store_close(refresh_store);
    kl_imds_free(imds_ep);
    kl_signins_stop(signins); /* writes what is queued, before the store closes */
    kl_mgmt_free(mgmt);
    kl_policy_stop(policy); /* its compactor reads the store */
    kl_store_close(store);  /* stops the watcher, which uses policy and holder */
    kl_policy_free(policy);
    kl_snapshot_holder_free(holder); /* releases the snapshots' key usage cells */
    kl_keyusage_free(usage);
    kl_netrules_free(trusted);
    kl_metrics_free(metrics);
    SSL_CTX_free(tls);
    kl_keys_free(keys);
    kl_egress_free(egress);
    kl_datadir_close(dd);
    explicit_bzero(kek_env, sizeof(kek_env));
    return rc;
}
