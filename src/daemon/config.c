/* Parsing of keylessd's flags and environment. */
#include "daemon/config.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/paths.h"

/* One literal a line of output; limits spliced in with KL_STR. */
/* clang-format off */
static const char usage[] =
    "usage: keylessd [options]\n"
    "\n"
    "  --data-dir DIR            state directory (KEYLESS_DATA_DIR; default /var/lib/keyless\n"
    "                            as root, else $XDG_DATA_HOME/keyless)\n"
    "  --listen HOST:PORT        public TLS listener (KEYLESS_LISTEN; default 127.0.0.1:8443)\n"
    "  --imds-listen HOST:PORT   managed identity endpoints, plain HTTP: a loopback address\n"
    "                            or exactly 169.254.169.254:80 (KEYLESS_IMDS_LISTEN; default\n"
    "                            127.0.0.1:50342)\n"
    "  --imds-listen-unsafe on   allow any other --imds-listen address: whoever reaches it\n"
    "                            gets this host's identities' tokens (KEYLESS_IMDS_LISTEN_UNSAFE;\n"
    "                            default off)\n"
    "  --vm NAME                 the VM (Microsoft.Compute/virtualMachines) this node is: its\n"
    "                            identities are served on the IMDS path (KEYLESS_VM; default\n"
    "                            none)\n"
    "  --mi-token-lifetime-min N  lifetime of managed-identity tokens\n"
    "                            (KEYLESS_MI_TOKEN_LIFETIME_MIN; default 1440, " KL_STR(KL_MI_TOKEN_MIN_LIFETIME_MIN) " to " KL_STR(KL_MI_TOKEN_MAX_LIFETIME_MIN) ")\n"
    "  --metrics-listen HOST:PORT  plain-HTTP /metrics listener (KEYLESS_METRICS_LISTEN; off)\n"
    "  --tls-cert PEM --tls-key PEM  your own certificate chain and key (KEYLESS_TLS_CERT,\n"
    "                            KEYLESS_TLS_KEY; default: self-signed under DIR/tls)\n"
    "  --account-domain DOMAIN   reach account A at Host A.DOMAIN (KEYLESS_ACCOUNT_DOMAIN;\n"
    "                            default openai.localhost; \"\" turns Host routing off)\n"
    "  --public-url URL          base URL clients use, for properties.endpoint\n"
    "                            (KEYLESS_PUBLIC_URL; default https://<listen address>)\n"
    "  --egress-allow LIST       backends only at these CIDRs and host names, comma- or\n"
    "                            space-separated (KEYLESS_EGRESS_ALLOW; default: any address\n"
    "                            but link-local, multicast, unspecified and our own listeners)\n"
    "  --federation-ca-file PEM  CAs of federated credentials' OIDC issuers (e.g. a cluster's\n"
    "                            private CA; KEYLESS_FEDERATION_CA_FILE; default: the system's)\n"
    "  --private-listen HOST:PORT  a private listener (repeatable, at most " KL_STR(KL_MAX_PRIVATE_LISTENERS) ";\n"
    "                            KEYLESS_PRIVATE_LISTEN, comma-separated): the public face,\n"
    "                            where accounts with publicNetworkAccess Disabled still answer\n"
    "  --trusted-proxy CIDR      a reverse proxy whose X-Forwarded-For is believed (repeatable;\n"
    "                            KEYLESS_TRUSTED_PROXY, comma-separated; default none: the\n"
    "                            caller is the TCP peer and X-Forwarded-For is ignored)\n"
    "  --store URL               the database (KEYLESS_STORE; default sqlite:DIR/keyless.db):\n"
    "                            sqlite:PATH, or postgres://USER@HOST:PORT/DB?sslmode=...\n"
    "                            (libpq parameters; the password only from PGPASSFILE or\n"
    "                            PGPASSWORD, never in the URL)\n"
    "  --kek-file PATH           the key-encryption key, " KL_STR(KL_KEK_BYTES) " bytes, mode 0600 (KEYLESS_KEK_FILE;\n"
    "                            every node of a cluster needs the same one)\n"
    "  --workers N               worker threads (KEYLESS_WORKERS; default 2)\n"
    "  --upstream-timeout-ms MS  model server silence before 504 (KEYLESS_UPSTREAM_TIMEOUT_MS;\n"
    "                            default 120000)\n"
    "  --write-timeout-ms MS     disconnect a client that takes no byte of a pending answer\n"
    "                            for this long (KEYLESS_WRITE_TIMEOUT_MS; default 30000)\n"
    "  --body-timeout-ms MS      408 if a request body is not complete this long after its\n"
    "                            headers (KEYLESS_BODY_TIMEOUT_MS; default 30000)\n"
    "  --stop-grace-ms MS        on SIGTERM or SIGINT, requests in flight get this long to\n"
    "                            finish before they are cut off (KEYLESS_STOP_GRACE_MS;\n"
    "                            default " KL_STR(KL_STOP_GRACE_MS) ", " KL_STR(KL_MIN_STOP_GRACE_MS) " to " KL_STR(KL_MAX_STOP_GRACE_MS) ")\n"
    "  --signing-key-rotation-days N  days a token signing key signs before the next one\n"
    "                            takes over (KEYLESS_SIGNING_KEY_ROTATION_DAYS; default 30)\n"
    "  --signing-key-alg ALG     RS256 or ES256 for new signing keys\n"
    "                            (KEYLESS_SIGNING_KEY_ALG; default RS256)\n"
    "  --token-lifetime-min N    lifetime of issued access tokens (KEYLESS_TOKEN_LIFETIME_MIN;\n"
    "                            default 60, " KL_STR(KL_MIN_TOKEN_LIFETIME_MIN) " to " KL_STR(KL_MAX_TOKEN_LIFETIME_MIN) ")\n"
    "  --device-code-lifetime-s N  how long a device code waits for its user\n"
    "                            (KEYLESS_DEVICE_CODE_LIFETIME_S; default 900, Entra's,\n"
    "                            " KL_STR(KL_DEVICE_CODE_MIN_LIFETIME_S) " to " KL_STR(KL_DEVICE_CODE_MAX_LIFETIME_S) "; shorter only for tests of expiry)\n"
    "  --access-log on|off       one JSON line per request (KEYLESS_ACCESS_LOG; default on)\n"
    "  --log-level LEVEL         debug, info, warn or error (KEYLESS_LOG_LEVEL; default info)\n"
    "  --allow-core-dumps on|off  let the process dump core (KEYLESS_ALLOW_CORE_DUMPS;\n"
    "                            default off: a core file would hold the keys)\n"
    "  --check                   validate the configuration and exit\n"
    "  --version, --help\n"
    "\n"
    "The key-encryption key is read from --kek-file if given (an existing file of " KL_STR(KL_KEK_BYTES) " raw\n"
    "bytes, owned by the user keylessd runs as, not a link, no group or other permissions),\n"
    "else from KEYLESS_KEK (base64 of " KL_STR(KL_KEK_BYTES) " bytes) if set, which is then removed from the\n"
    "process environment, else from DIR/kek, created on first start.\n"
    "DIR and everything keylessd opens in it must belong to the user keylessd runs as, and\n"
    "DIR's parent must be writable by nobody else; one keylessd at a time uses a DIR.\n";
/* clang-format on */

int kl_config_take_env_secret(const char *name, char *out, size_t outlen)
{
    extern char **environ;
    size_t nlen = strlen(name);
    int rc = 0;
    if (outlen)
        out[0] = '\0';
    if (!environ)
        return 0;
    /* Done by hand rather than with unsetenv(): that only drops the pointer, and the
     * bytes would stay readable in the process image and in /proc/PID/environ. */
    char **dst = environ;
    for (char **ep = environ; *ep; ep++) {
        char *e = *ep;
        if (strncmp(e, name, nlen) != 0 || e[nlen] != '=') {
            *dst++ = e;
            continue;
        }
        if (rc == 0) {
            size_t vlen = strlen(e + nlen + 1);
            if (vlen < outlen) {
                memcpy(out, e + nlen + 1, vlen + 1);
                rc = 1;
            } else {
                rc = KL_ETOOBIG;
            }
        }
        explicit_bzero(e, strlen(e));
    }
    *dst = NULL;
    return rc;
}

const char *kl_config_usage(void)
{
    return usage;
}

void kl_config_default_data_dir(char *out, size_t outlen)
{
    /* The rule itself lives in common/paths.c, shared with the CLI. On failure out is "". */
    (void)kl_paths_default_data_dir(geteuid() == 0, getenv("XDG_DATA_HOME"), getenv("HOME"), out,
                                    outlen);
}

static int set_str(char *dst, size_t dstlen, const char *v, const char *name, char *err,
                   size_t errlen)
{
    if (strlen(v) >= dstlen) {
        snprintf(err, errlen, "%s is too long (at most %zu bytes)", name, dstlen - 1);
        return KL_EINVAL;
    }
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

static int set_int(int *dst, const char *v, int lo, int hi, const char *name, char *err,
                   size_t errlen)
{
    char *end = NULL;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || !end || *end || end == v || n < lo || n > hi) {
        snprintf(err, errlen, "%s must be a whole number from %d to %d", name, lo, hi);
        return KL_EINVAL;
    }
    *dst = (int)n;
    return 0;
}

static int set_bool(bool *dst, const char *v, const char *name, char *err, size_t errlen)
{
    if (!strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "1")) {
        *dst = true;
        return 0;
    }
    if (!strcmp(v, "off") || !strcmp(v, "false") || !strcmp(v, "0")) {
        *dst = false;
        return 0;
    }
    snprintf(err, errlen, "%s must be on or off", name);
    return KL_EINVAL;
}

static int set_level(kl_log_level *dst, const char *v, char *err, size_t errlen)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        if (!strcmp(v, names[i])) {
            *dst = (kl_log_level)i;
            return 0;
        }
    }
    snprintf(err, errlen, "log level must be debug, info, warn or error");
    return KL_EINVAL;
}

/* One table drives both the flags and their environment twins. */
typedef enum opt_kind { O_STR, O_INT, O_BOOL, O_LEVEL, O_LIST } opt_kind;
typedef struct opt {
    const char *flag;
    const char *env;
    opt_kind kind;
    size_t off;
    size_t len;
    int lo, hi;
} opt;

#define STR(f, e, field)                                                                           \
    {                                                                                              \
        f, e, O_STR, offsetof(kl_config, field), sizeof(((kl_config *)0)->field), 0, 0             \
    }

static const opt opts[] = {
    STR("--data-dir", "KEYLESS_DATA_DIR", data_dir),
    STR("--listen", "KEYLESS_LISTEN", listen),
    STR("--imds-listen", "KEYLESS_IMDS_LISTEN", imds_listen),
    {"--imds-listen-unsafe", "KEYLESS_IMDS_LISTEN_UNSAFE", O_BOOL,
     offsetof(kl_config, imds_listen_unsafe), 0, 0, 0},
    STR("--vm", "KEYLESS_VM", vm),
    {"--mi-token-lifetime-min", "KEYLESS_MI_TOKEN_LIFETIME_MIN", O_INT,
     offsetof(kl_config, mi_token_lifetime_min), 0, KL_MI_TOKEN_MIN_LIFETIME_MIN,
     KL_MI_TOKEN_MAX_LIFETIME_MIN},
    STR("--metrics-listen", "KEYLESS_METRICS_LISTEN", metrics_listen),
    STR("--tls-cert", "KEYLESS_TLS_CERT", tls_cert),
    STR("--tls-key", "KEYLESS_TLS_KEY", tls_key),
    STR("--account-domain", "KEYLESS_ACCOUNT_DOMAIN", account_domain),
    STR("--public-url", "KEYLESS_PUBLIC_URL", public_url),
    STR("--egress-allow", "KEYLESS_EGRESS_ALLOW", egress_allow),
    STR("--federation-ca-file", "KEYLESS_FEDERATION_CA_FILE", federation_ca_file),
    STR("--store", "KEYLESS_STORE", store),
    {"--private-listen", "KEYLESS_PRIVATE_LISTEN", O_LIST, offsetof(kl_config, private_listen),
     sizeof(((kl_config *)0)->private_listen), 0, 0},
    {"--trusted-proxy", "KEYLESS_TRUSTED_PROXY", O_LIST, offsetof(kl_config, trusted_proxy),
     sizeof(((kl_config *)0)->trusted_proxy), 0, 0},
    STR("--kek-file", "KEYLESS_KEK_FILE", kek_file),
    {"--workers", "KEYLESS_WORKERS", O_INT, offsetof(kl_config, workers), 0, KL_MIN_WORKERS,
     KL_MAX_WORKERS},
    {"--upstream-timeout-ms", "KEYLESS_UPSTREAM_TIMEOUT_MS", O_INT,
     offsetof(kl_config, upstream_timeout_ms), 0, KL_MIN_UPSTREAM_TIMEOUT_MS,
     KL_MAX_UPSTREAM_TIMEOUT_MS},
    {"--write-timeout-ms", "KEYLESS_WRITE_TIMEOUT_MS", O_INT, offsetof(kl_config, write_timeout_ms),
     0, KL_MIN_CLIENT_TIMEOUT_MS, KL_MAX_CLIENT_TIMEOUT_MS},
    {"--body-timeout-ms", "KEYLESS_BODY_TIMEOUT_MS", O_INT, offsetof(kl_config, body_timeout_ms), 0,
     KL_MIN_CLIENT_TIMEOUT_MS, KL_MAX_CLIENT_TIMEOUT_MS},
    {"--stop-grace-ms", "KEYLESS_STOP_GRACE_MS", O_INT, offsetof(kl_config, stop_grace_ms), 0,
     KL_MIN_STOP_GRACE_MS, KL_MAX_STOP_GRACE_MS},
    {"--signing-key-rotation-days", "KEYLESS_SIGNING_KEY_ROTATION_DAYS", O_INT,
     offsetof(kl_config, signing_key_rotation_days), 0, KL_MIN_SIGNING_KEY_ROTATION_DAYS,
     KL_MAX_SIGNING_KEY_ROTATION_DAYS},
    STR("--signing-key-alg", "KEYLESS_SIGNING_KEY_ALG", signing_key_alg),
    {"--token-lifetime-min", "KEYLESS_TOKEN_LIFETIME_MIN", O_INT,
     offsetof(kl_config, token_lifetime_min), 0, KL_MIN_TOKEN_LIFETIME_MIN,
     KL_MAX_TOKEN_LIFETIME_MIN},
    {"--device-code-lifetime-s", "KEYLESS_DEVICE_CODE_LIFETIME_S", O_INT,
     offsetof(kl_config, device_code_lifetime_s), 0, KL_DEVICE_CODE_MIN_LIFETIME_S,
     KL_DEVICE_CODE_MAX_LIFETIME_S},
    {"--access-log", "KEYLESS_ACCESS_LOG", O_BOOL, offsetof(kl_config, access_log), 0, 0, 0},
    {"--log-level", "KEYLESS_LOG_LEVEL", O_LEVEL, offsetof(kl_config, log_level), 0, 0, 0},
    {"--allow-core-dumps", "KEYLESS_ALLOW_CORE_DUMPS", O_BOOL,
     offsetof(kl_config, allow_core_dumps), 0, 0, 0},
};

/* A repeatable option: each value is appended to the list, comma-separated. */
static int append_list(char *dst, size_t dstlen, const char *v, const char *name, char *err,
                       size_t errlen)
{
    size_t have = strlen(dst), n = strlen(v);
    if (have + (have ? 1 : 0) + n >= dstlen) {
        snprintf(err, errlen, "%s: too many values", name);
        return KL_EINVAL;
    }
    if (have)
        dst[have++] = ',';
    memcpy(dst + have, v, n + 1);
    return 0;
}

static int apply(kl_config *cfg, const opt *o, const char *v, char *err, size_t errlen)
{
    char *base = (char *)cfg;
    switch (o->kind) {
    case O_LIST: return append_list(base + o->off, o->len, v, o->flag, err, errlen);
    case O_STR: return set_str(base + o->off, o->len, v, o->flag, err, errlen);
    case O_INT:
        return set_int((int *)(void *)(base + o->off), v, o->lo, o->hi, o->flag, err, errlen);
    case O_BOOL: return set_bool((bool *)(void *)(base + o->off), v, o->flag, err, errlen);
    case O_LEVEL: return set_level((kl_log_level *)(void *)(base + o->off), v, err, errlen);
    }
    return KL_EINVAL;
}

int kl_config_load(kl_config *cfg, int argc, char **argv, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof(*cfg));
    kl_config_default_data_dir(cfg->data_dir, sizeof(cfg->data_dir));
    bool no_default = !cfg->data_dir[0];
    snprintf(cfg->listen, sizeof(cfg->listen), "127.0.0.1:8443");
    snprintf(cfg->imds_listen, sizeof(cfg->imds_listen), "127.0.0.1:50342");
    snprintf(cfg->account_domain, sizeof(cfg->account_domain), "openai.localhost");
    cfg->workers = 2;
    cfg->upstream_timeout_ms = 120000;
    cfg->write_timeout_ms = KL_WRITE_TIMEOUT_MS;
    cfg->body_timeout_ms = KL_BODY_TIMEOUT_MS;
    cfg->stop_grace_ms = KL_STOP_GRACE_MS;
    cfg->signing_key_rotation_days = 30;
    cfg->token_lifetime_min = 60;
    cfg->device_code_lifetime_s = KL_DEVICE_CODE_LIFETIME_S;
    cfg->mi_token_lifetime_min = KL_MI_TOKEN_DEFAULT_LIFETIME_S / 60;
    snprintf(cfg->signing_key_alg, sizeof(cfg->signing_key_alg), "RS256");
    cfg->access_log = true;
    cfg->log_level = KL_LOG_INFO;
    const size_t nopts = sizeof(opts) / sizeof(opts[0]);
    for (size_t i = 0; i < nopts; i++) {
        const char *v = getenv(opts[i].env);
        if (v && apply(cfg, &opts[i], v, err, errlen) != 0)
            return KL_EINVAL;
    }
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        if (!strcmp(arg, "--check")) {
            cfg->check = true;
            continue;
        }
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            cfg->help = true;
            continue;
        }
        if (!strcmp(arg, "--version")) {
            cfg->version = true;
            continue;
        }
        const opt *o = NULL;
        const char *val = NULL;
        for (size_t i = 0; i < nopts && !o; i++) {
            size_t fl = strlen(opts[i].flag);
            if (!strcmp(arg, opts[i].flag)) {
                o = &opts[i];
                if (a + 1 >= argc) {
                    snprintf(err, errlen, "%s needs a value", opts[i].flag);
                    return KL_EINVAL;
                }
                val = argv[++a];
            } else if (!strncmp(arg, opts[i].flag, fl) && arg[fl] == '=') {
                o = &opts[i];
                val = arg + fl + 1;
            }
        }
        if (!o) {
            snprintf(err, errlen, "unknown option %.64s (see --help)", arg);
            return KL_EINVAL;
        }
        if (apply(cfg, o, val, err, errlen) != 0)
            return KL_EINVAL;
    }
    if (!cfg->data_dir[0] || cfg->data_dir[0] != '/') {
        char cwd[256];
        if (cfg->data_dir[0] && getcwd(cwd, sizeof(cwd))) {
            char abs[1024];
            int n = snprintf(abs, sizeof(abs), "%s/%s", cwd, cfg->data_dir);
            if (n < 0 || (size_t)n >= sizeof(cfg->data_dir)) {
                snprintf(err, errlen, "--data-dir is too long");
                return KL_EINVAL;
            }
            memcpy(cfg->data_dir, abs, (size_t)n + 1);
        } else if (!cfg->data_dir[0] && no_default) {
            snprintf(err, errlen,
                     "no data directory: HOME is not set, so there is no default; give "
                     "--data-dir DIR (or KEYLESS_DATA_DIR), in a directory only you or root can "
                     "write");
            return KL_EINVAL;
        } else {
            snprintf(err, errlen, "--data-dir must not be empty");
            return KL_EINVAL;
        }
    }
    if ((cfg->tls_cert[0] != '\0') != (cfg->tls_key[0] != '\0')) {
        snprintf(err, errlen, "--tls-cert and --tls-key go together");
        return KL_EINVAL;
    }
    return 0;
}
