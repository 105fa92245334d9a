/* keylessd configuration: command-line flags, each with an environment variable twin,
 * and documented defaults. */
#ifndef KL_DAEMON_CONFIG_H
#define KL_DAEMON_CONFIG_H

#include <stdbool.h>

#include "common/limits.h"
#include "common/log.h"

typedef struct kl_config {
    char data_dir[512];
    char listen[128];          /* public TLS listener host:port */
    char imds_listen[128];     /* managed identity endpoints: loopback or 169.254.169.254:80 */
    bool imds_listen_unsafe;   /* --imds-listen-unsafe: any address (the operator's risk) */
    char vm[KL_MAX_NAME + 1];  /* --vm: the VM whose identities the IMDS path serves; "" none */
    int mi_token_lifetime_min; /* managed-identity tokens (default 24 h, as Azure's) */
    char metrics_listen[128];  /* "" = no separate metrics listener */
    char tls_cert[512];        /* "" = self-signed in DIR/tls */
    char tls_key[512];
    char account_domain[256]; /* accounts reached by Host {name}.{domain}; "" disables */
    char public_url[512];     /* "" = derived from the public listener */
    /* Backends may only be reached at these CIDRs/host names; "" = anything but the
     * always-refused classes (policy/egress.h). Validated by kl_egress_allow. */
    char egress_allow[4096];
    /* PEM CAs that federated credentials' issuers (their discovery and JWKS) are verified
     * against; "" = the system's. */
    char federation_ca_file[512];
    /* --private-listen (repeatable) and --trusted-proxy (repeatable), each a list joined
     * with commas; checked and counted by the daemon. */
    char private_listen[KL_MAX_PRIVATE_LISTENERS * 130];
    char trusted_proxy[KL_MAX_TRUSTED_PROXIES * (KL_MAX_NETRULE_TEXT + 2)];
    char store[KL_MAX_STORE_URL + 1]; /* "" = sqlite:DIR/keyless.db */
    char kek_file[512];               /* "" = KEYLESS_KEK, else DIR/kek */
    int workers;
    int upstream_timeout_ms;
    int write_timeout_ms; /* client not taking a pending answer: disconnected */
    int body_timeout_ms;  /* request body not complete: 408 */
    int stop_grace_ms;    /* SIGTERM: requests in flight then cut off after this */
    /* The token service: days a signing key signs before the next one, the lifetime of
     * issued access tokens, and "RS256" (default) or "ES256" for new signing keys. */
    int signing_key_rotation_days;
    int token_lifetime_min;
    int device_code_lifetime_s; /* how long a device code may wait for its user */
    char signing_key_alg[8];
    bool access_log;
    bool allow_core_dumps; /* off: RLIMIT_CORE 0 and not dumpable (secrets stay in memory) */
    kl_log_level log_level;
    bool check; /* --check: validate and exit */
    bool help;
    bool version;
} kl_config;

/* Fills cfg from defaults, then the environment, then argv (later wins). Returns 0, or
 * KL_EINVAL after writing a message into err. */
int kl_config_load(kl_config *cfg, int argc, char **argv, char *err, size_t errlen);
/* Takes a secret from the environment: copies the value of variable name into out and
 * removes every copy of the variable from the process, overwriting its bytes in place,
 * so neither getenv() nor /proc/PID/environ (which shows the block the process started
 * with) reveal it afterwards. Call before any thread starts. Returns 1 when the variable
 * was set, 0 when not, KL_ETOOBIG when its value does not fit in out (it is removed all
 * the same). The caller wipes out after use. */
int kl_config_take_env_secret(const char *name, char *out, size_t outlen);
/* The usage text. */
const char *kl_config_usage(void);
/* The default data directory for this user, by kl_paths_default_data_dir
 * (common/paths.h) from the euid and the environment; "" when there is none. */
void kl_config_default_data_dir(char *out, size_t outlen);

#endif
