/* TLS material for the public listener: a local CA and a server certificate it signs,
 * made on first start so https works out of the box (clients trust ca.pem), and the
 * server SSL_CTX. Existing files are never replaced. */
#include "crypto/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/util.h"

#define CA_DAYS (10 * 365 + 2)
#define SERVER_DAYS 825
#define BACKDATE_SECONDS 3600
#define MAX_DNS_NAME 253
#define PATH_CAP 4096
/* nameConstraints text: the fixed entries plus "permitted;DNS:" and a name per extra */
#define NC_CAP 4096

typedef struct tls_paths {
    char ca_pem[PATH_CAP];
    char ca_key[PATH_CAP];
    char srv_pem[PATH_CAP];
    char srv_key[PATH_CAP];
} tls_paths;

static int join(char *out, const char *dir, const char *name)
{
    int n = snprintf(out, PATH_CAP, "%s/%s", dir, name);
    return (n < 0 || n >= PATH_CAP) ? KL_EINVAL : 0;
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* The directory holds private keys: create it 0700, and tighten an existing one. */
static int ensure_dir(const char *dir)
{
    struct stat st;
    if (mkdir(dir, 0700) == 0)
        return 0;
    if (errno != EEXIST || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return KL_EIO;
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) && chmod(dir, 0700) != 0)
        return KL_EPERM;
    return 0;
}

static EVP_PKEY *read_key(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    return k;
}

static X509 *read_cert(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    return x;
}

/* Writes a PEM file that appears whole or not at all: a temporary file created with
 * O_EXCL and the final mode, then link()ed to the final name (which must not exist). */
static int write_pem(const char *path, mode_t mode, EVP_PKEY *key, X509 *cert)
{
    int rc = KL_EIO;
    char tmp[PATH_CAP];
    unsigned char rnd[8];
    char hex[sizeof(rnd) * 2 + 1];
    FILE *f = NULL;
    bool created = false;

    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        return KL_ECRYPTO;
    kl_hex_encode(rnd, sizeof(rnd), hex);
    int n = snprintf(tmp, sizeof(tmp), "%s.%s.tmp", path, hex);
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return KL_EINVAL;
    int fd = open(tmp, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0)
        return KL_EIO;
    created = true;
    f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        goto out;
    }
    int ok =
        key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) : PEM_write_X509(f, cert);
    if (ok != 1 || fflush(f) != 0 || fsync(fileno(f)) != 0)
        goto out;
    int cr = fclose(f);
    f = NULL;
    if (cr != 0)
        goto out;
    if (link(tmp, path) != 0) {
        rc = errno == EEXIST ? KL_EEXIST : KL_EIO;
        goto out;
    }
    rc = 0;
out:
    if (f)
        fclose(f);
    if (created)
        unlink(tmp);
    return rc;
}

static bool dns_name_ok(const char *s)
{
    size_t n = strnlen(s, MAX_DNS_NAME + 1);
    if (n == 0 || n > MAX_DNS_NAME || s[0] == '.' || s[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '.' || (c == '*' && i == 0 && n > 2 && s[1] == '.');
        if (!ok || (c == '.' && s[i + 1] == '.'))
            return false;
    }
    return true;
}

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    if (!ext)
        return KL_ECRYPTO;
    int ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok == 1 ? 0 : KL_ECRYPTO;
}

static int push_name(GENERAL_NAMES *gens, int type, const char *value)
{
    GENERAL_NAME *g = GENERAL_NAME_new();
    if (!g)
        return KL_ENOMEM;
    if (type == GEN_IPADD) {
        ASN1_OCTET_STRING *ip = a2i_IPADDRESS(value);
        if (!ip)
            goto fail;
        GENERAL_NAME_set0_value(g, GEN_IPADD, ip);
    } else {
        ASN1_IA5STRING *s = ASN1_IA5STRING_new();
        if (!s)
            goto fail;
        if (ASN1_STRING_set(s, value, (int)strlen(value)) != 1) {
            ASN1_IA5STRING_free(s);
            goto fail;
        }
        GENERAL_NAME_set0_value(g, GEN_DNS, s);
    }
    if (sk_GENERAL_NAME_push(gens, g) <= 0)
        goto fail;
    return 0;
fail:
    GENERAL_NAME_free(g);
    return KL_ECRYPTO;
}

static int add_san(X509 *x, const char *const *extra_dns, size_t n_extra)
{
    int rc = KL_ENOMEM;
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    if (!gens)
        goto out;
    if ((rc = push_name(gens, GEN_IPADD, "127.0.0.1")) != 0 ||
        (rc = push_name(gens, GEN_IPADD, "::1")) != 0 ||
        (rc = push_name(gens, GEN_DNS, "localhost")) != 0)
        goto out;
    for (size_t i = 0; i < n_extra; i++) {
        if ((rc = push_name(gens, GEN_DNS, extra_dns[i])) != 0)
            goto out;
    }
    rc = X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) == 1 ? 0
                                                                                      : KL_ECRYPTO;
out:
    GENERAL_NAMES_free(gens);
    return rc;
}

/* A positive 16-byte serial: random, with the top bit clear and the next set so the DER
 * encoding is always exactly 16 bytes. */
static int set_serial(X509 *x)
{
    unsigned char b[16];
    int rc = KL_ECRYPTO;
    BIGNUM *bn = NULL;
    if (RAND_bytes(b, sizeof(b)) != 1)
        goto out;
    b[0] = (unsigned char)((b[0] & 0x7f) | 0x40);
    bn = BN_bin2bn(b, sizeof(b), NULL);
    if (bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
        rc = 0;
out:
    BN_free(bn);
    return rc;
}

/* The CA's nameConstraints value: it may vouch for the loopback addresses, localhost
 * and the extra names (a wildcard's base domain covers its subdomains), and for nothing
 * else, so a client that trusts ca.pem trusts it for no other site even if ca.key leaks.
 * The names were checked by dns_name_ok, so they cannot break the list's syntax. */
static int name_constraints(const char *const *extra_dns, size_t n_extra, char *out, size_t outlen)
{
    int n = snprintf(out, outlen,
                     "critical,permitted;IP:127.0.0.1/255.255.255.255,"
                     "permitted;IP:::1/ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff,"
                     "permitted;DNS:localhost");
    if (n < 0 || (size_t)n >= outlen)
        return KL_ETOOBIG;
    size_t used = (size_t)n;
    for (size_t i = 0; i < n_extra; i++) {
        const char *name = extra_dns[i];
        if (!strncmp(name, "*.", 2))
            name += 2;
        n = snprintf(out + used, outlen - used, ",permitted;DNS:%s", name);
        if (n < 0 || (size_t)n >= outlen - used)
            return KL_ETOOBIG;
        used += (size_t)n;
    }
    return 0;
}

/* Issues a certificate for pub with common name cn. issuer NULL means self-signed (the
 * CA: pathlen 0, limited to the names given); otherwise a server certificate for the
 * names given, signed by issuer/issuer_key. */
static int make_cert(const char *cn, EVP_PKEY *pub, X509 *issuer, EVP_PKEY *issuer_key,
                     const char *const *extra_dns, size_t n_extra, X509 **out)
{
    int rc = KL_ECRYPTO;
    X509 *x = X509_new();
    X509_NAME *name = NULL;
    *out = NULL;
    if (!x)
        goto out;
    name = X509_NAME_new();
    if (!name || X509_set_version(x, 2) != 1 || set_serial(x) != 0 ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
                                   0) != 1 ||
        X509_set_subject_name(x, name) != 1 ||
        X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) != 1 ||
        X509_set_pubkey(x, pub) != 1)
        goto out;
    if (!X509_gmtime_adj(X509_getm_notBefore(x), -BACKDATE_SECONDS) ||
        !X509_time_adj_ex(X509_getm_notAfter(x), issuer ? SERVER_DAYS : CA_DAYS, 0, NULL))
        goto out;

    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
    if (!issuer) {
        char nc[NC_CAP];
        /* pathlen:0: the CA signs leaves only, never another CA that would escape the name
         * constraints' spirit by being trusted for more than this daemon. */
        if ((rc = name_constraints(extra_dns, n_extra, nc, sizeof(nc))) != 0 ||
            (rc = add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0")) != 0 ||
            (rc = add_ext(x, &ctx, NID_name_constraints, nc)) != 0 ||
            (rc = add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign")) != 0 ||
            (rc = add_ext(x, &ctx, NID_subject_key_identifier, "hash")) != 0)
            goto out;
    } else {
        if ((rc = add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE")) != 0 ||
            (rc = add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature")) != 0 ||
            (rc = add_ext(x, &ctx, NID_ext_key_usage, "serverAuth")) != 0 ||
            (rc = add_ext(x, &ctx, NID_subject_key_identifier, "hash")) != 0 ||
            (rc = add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always")) != 0 ||
            (rc = add_san(x, extra_dns, n_extra)) != 0)
            goto out;
    }
    rc = KL_ECRYPTO;
    if (X509_sign(x, issuer_key, EVP_sha256()) <= 0)
        goto out;
    *out = x;
    x = NULL;
    rc = 0;
out:
    X509_NAME_free(name);
    X509_free(x);
    return rc;
}

/* Loads path's key, or makes a fresh P-256 key and writes it 0600. */
static int load_or_make_key(const char *path, bool have, EVP_PKEY **out)
{
    *out = have ? read_key(path) : EVP_EC_gen("P-256");
    if (!*out)
        return have ? KL_EINVAL : KL_ECRYPTO;
    if (have)
        return 0;
    return write_pem(path, 0600, *out, NULL);
}

static int ensure_once(const tls_paths *p, const char *const *extra_dns, size_t n_extra)
{
    int rc = 0;
    EVP_PKEY *ca_key = NULL, *srv_key = NULL;
    X509 *ca = NULL, *srv = NULL;
    bool have_ca_pem = exists(p->ca_pem), have_ca_key = exists(p->ca_key);
    bool have_srv_pem = exists(p->srv_pem), have_srv_key = exists(p->srv_key);

    /* A server certificate with its key is all the listener needs; whatever the CA files
     * look like, they are the operator's business then. */
    if (have_srv_pem && have_srv_key)
        goto out;
    /* A certificate without its key cannot be used or replaced without losing a file. */
    rc = KL_EINVAL;
    if (have_srv_pem || (have_ca_pem && !have_ca_key))
        goto out;

    if ((rc = load_or_make_key(p->ca_key, have_ca_key, &ca_key)) != 0)
        goto out;
    if (have_ca_pem) {
        rc = KL_EINVAL;
        ca = read_cert(p->ca_pem);
        if (!ca || X509_check_private_key(ca, ca_key) != 1)
            goto out;
    } else {
        if ((rc = make_cert("keyless local CA", ca_key, NULL, ca_key, extra_dns, n_extra, &ca)) !=
                0 ||
            (rc = write_pem(p->ca_pem, 0644, NULL, ca)) != 0)
            goto out;
    }
    if ((rc = load_or_make_key(p->srv_key, have_srv_key, &srv_key)) != 0 ||
        (rc = make_cert("localhost", srv_key, ca, ca_key, extra_dns, n_extra, &srv)) != 0 ||
        (rc = write_pem(p->srv_pem, 0644, NULL, srv)) != 0)
        goto out;
out:
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(srv_key);
    X509_free(ca);
    X509_free(srv);
    ERR_clear_error();
    return rc;
}

int kl_tls_ensure_selfsigned(const char *tls_dir, const char *const *extra_dns, size_t n_extra)
{
    tls_paths p;
    int rc;
    if (!tls_dir || !*tls_dir || (n_extra && !extra_dns))
        return KL_EINVAL;
    for (size_t i = 0; i < n_extra; i++) {
        if (!extra_dns[i] || !dns_name_ok(extra_dns[i]))
            return KL_EINVAL;
    }
    if ((rc = join(p.ca_pem, tls_dir, "ca.pem")) != 0 ||
        (rc = join(p.ca_key, tls_dir, "ca.key")) != 0 ||
        (rc = join(p.srv_pem, tls_dir, "server.pem")) != 0 ||
        (rc = join(p.srv_key, tls_dir, "server.key")) != 0)
        return rc;
    if ((rc = ensure_dir(tls_dir)) != 0)
        return rc;
    /* Another process creating the same files makes link() fail with KL_EEXIST; looking
     * again then finds (and keeps) what it wrote. */
    for (int attempt = 0; attempt < 3; attempt++) {
        rc = ensure_once(&p, extra_dns, n_extra);
        if (rc != KL_EEXIST)
            break;
    }
    return rc;
}

static void set_err(char *err, size_t errlen, const char *what, const char *path)
{
    char reason[256] = "unknown error";
    unsigned long e = ERR_peek_last_error();
    if (e)
        ERR_error_string_n(e, reason, sizeof(reason));
    ERR_clear_error();
    if (err && errlen)
        snprintf(err, errlen, "%s%s%s: %s", what, path ? " " : "", path ? path : "", reason);
}

/* HTTP/1.1 is all the server speaks: a client offering only other protocols (h2) is sent a
 * no_application_protocol alert rather than a connection it cannot use. A client sending
 * no ALPN at all never reaches this callback and is served HTTP/1.1. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char ours[] = "\x08http/1.1";
    unsigned char *sel = NULL;
    unsigned char sel_len = 0;
    (void)ssl;
    (void)arg;
    if (SSL_select_next_proto(&sel, &sel_len, ours, sizeof(ours) - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = sel;
    *outlen = sel_len;
    return SSL_TLSEXT_ERR_OK;
}

SSL_CTX *kl_tls_server_ctx(const char *cert_pem, const char *key_pem, char *err, size_t errlen)
{
    static const unsigned char sid_ctx[] = "keyless";
    SSL_CTX *ctx = NULL;
    if (err && errlen)
        err[0] = '\0';
    ERR_clear_error();
    if (!cert_pem || !key_pem) {
        if (err && errlen)
            snprintf(err, errlen, "no TLS certificate or key file given");
        return NULL;
    }
    ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        set_err(err, errlen, "creating the TLS context", NULL);
        goto fail;
    }
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
        set_err(err, errlen, "setting the minimum TLS version", NULL);
        goto fail;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_pem) != 1) {
        set_err(err, errlen, "loading the certificate chain from", cert_pem);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_pem, SSL_FILETYPE_PEM) != 1) {
        set_err(err, errlen, "loading the private key from", key_pem);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        set_err(err, errlen, "the private key does not match the certificate in", cert_pem);
        goto fail;
    }
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    if (SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1) != 1) {
        set_err(err, errlen, "setting the session id context", NULL);
        goto fail;
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}
