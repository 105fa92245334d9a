/* The self-signed TLS material and the server context: files, modes, the chain, the
 * subjectAltName, keeping existing files, and loading (or refusing) a key pair. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "crypto/tls.h"

typedef struct fixture {
    char base[64];
    char dir[128];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->base, sizeof(f->base), "/tmp/kl-tls-XXXXXX");
    assert_non_null(mkdtemp(f->base));
    /* A directory that does not exist yet, so its creation is tested too. */
    snprintf(f->dir, sizeof(f->dir), "%s/tls", f->base);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->base);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void path(char *out, size_t n, const fixture *f, const char *name)
{
    snprintf(out, n, "%s/%s", f->dir, name);
}

static X509 *load_cert(const fixture *f, const char *name)
{
    char p[256];
    path(p, sizeof(p), f, name);
    FILE *fp = fopen(p, "r");
    assert_non_null(fp);
    X509 *x = PEM_read_X509(fp, NULL, NULL, NULL);
    fclose(fp);
    assert_non_null(x);
    return x;
}

static mode_t mode_of(const char *p)
{
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    return st.st_mode & 07777;
}

static void assert_file_mode(const fixture *f, const char *name, mode_t want)
{
    char p[256];
    path(p, sizeof(p), f, name);
    assert_int_equal(mode_of(p), want);
}

static bool san_has(X509 *x, int type, const char *value)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    bool found = false;
    for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens) && !found; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type != type)
            continue;
        if (type == GEN_DNS) {
            const ASN1_IA5STRING *s = g->d.dNSName;
            found = (size_t)ASN1_STRING_length(s) == strlen(value) &&
                    memcmp(ASN1_STRING_get0_data(s), value, strlen(value)) == 0;
        } else {
            ASN1_OCTET_STRING *want = a2i_IPADDRESS(value);
            assert_non_null(want);
            found = ASN1_OCTET_STRING_cmp(want, g->d.iPAddress) == 0;
            ASN1_OCTET_STRING_free(want);
        }
    }
    GENERAL_NAMES_free(gens);
    return found;
}

static int verify(X509 *ca, X509 *leaf, const char *host, const char *ip)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    assert_non_null(store);
    assert_non_null(ctx);
    assert_int_equal(X509_STORE_add_cert(store, ca), 1);
    assert_int_equal(X509_STORE_CTX_init(ctx, store, leaf, NULL), 1);
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
    /* Strict mode is what recent clients (Python 3.13, for one) ask for. */
    X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT);
    X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_SERVER);
    if (host)
        assert_int_equal(X509_VERIFY_PARAM_set1_host(param, host, 0), 1);
    if (ip)
        assert_int_equal(X509_VERIFY_PARAM_set1_ip_asc(param, ip), 1);
    int ok = X509_verify_cert(ctx);
    int err = X509_STORE_CTX_get_error(ctx);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return ok == 1 ? 0 : (err ? err : -1);
}

static const char *const extra[] = {"*.openai.localhost", "keyless.example.test"};

static void test_creates_files(void **state)
{
    fixture *f = *state;
    assert_int_equal(kl_tls_ensure_selfsigned(f->dir, extra, 2), 0);
    assert_int_equal(mode_of(f->dir), 0700);
    assert_file_mode(f, "ca.key", 0600);
    assert_file_mode(f, "server.key", 0600);
    char p[256];
    path(p, sizeof(p), f, "ca.pem");
    assert_int_equal(access(p, R_OK), 0);
    path(p, sizeof(p), f, "server.pem");
    assert_int_equal(access(p, R_OK), 0);
    /* Nothing but the four files. */
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "test $(ls -A '%s' | wc -l) -eq 4", f->dir);
    assert_int_equal(system(cmd), 0);

    X509 *ca = load_cert(f, "ca.pem");
    X509 *srv = load_cert(f, "server.pem");

    /* The chain verifies, for each name a client will use. */
    assert_int_equal(verify(ca, srv, "localhost", NULL), 0);
    assert_int_equal(verify(ca, srv, NULL, "127.0.0.1"), 0);
    assert_int_equal(verify(ca, srv, NULL, "::1"), 0);
    assert_int_equal(verify(ca, srv, "demo.openai.localhost", NULL), 0);
    assert_int_equal(verify(ca, srv, "keyless.example.test", NULL), 0);
    /* ... and only for those. */
    assert_int_equal(verify(ca, srv, "example.com", NULL), X509_V_ERR_HOSTNAME_MISMATCH);
    assert_int_equal(verify(ca, srv, NULL, "127.0.0.2"), X509_V_ERR_IP_ADDRESS_MISMATCH);
    /* The server certificate is not a CA. */
    assert_int_not_equal(verify(srv, srv, NULL, NULL), 0);

    assert_true(san_has(srv, GEN_IPADD, "127.0.0.1"));
    assert_true(san_has(srv, GEN_IPADD, "::1"));
    assert_true(san_has(srv, GEN_DNS, "localhost"));
    assert_true(san_has(srv, GEN_DNS, "*.openai.localhost"));
    assert_true(san_has(srv, GEN_DNS, "keyless.example.test"));
    assert_false(san_has(srv, GEN_DNS, "example.com"));

    /* The CA: self-signed, CA:TRUE, can sign certificates, P-256. */
    assert_int_equal(X509_check_ca(ca), 1);
    assert_int_equal(X509_check_ca(srv), 0);
    assert_true(X509_get_key_usage(ca) & KU_KEY_CERT_SIGN);
    assert_true(X509_get_extended_key_usage(srv) & XKU_SSL_SERVER);
    assert_non_null(X509_get0_subject_key_id(ca));
    assert_non_null(X509_get0_authority_key_id(srv));
    assert_int_equal(
        ASN1_OCTET_STRING_cmp(X509_get0_subject_key_id(ca), X509_get0_authority_key_id(srv)), 0);
    EVP_PKEY *pk = X509_get0_pubkey(srv);
    assert_int_equal(EVP_PKEY_get_base_id(pk), EVP_PKEY_EC);
    char group[32];
    size_t glen = 0;
    assert_int_equal(EVP_PKEY_get_group_name(pk, group, sizeof(group), &glen), 1);
    assert_string_equal(group, "prime256v1");

    /* Names and lifetimes. */
    char cn[64];
    assert_true(
        X509_NAME_get_text_by_NID(X509_get_subject_name(ca), NID_commonName, cn, sizeof(cn)) > 0);
    assert_string_equal(cn, "keyless local CA");
    assert_true(
        X509_NAME_get_text_by_NID(X509_get_subject_name(srv), NID_commonName, cn, sizeof(cn)) > 0);
    assert_string_equal(cn, "localhost");
    int days = 0, secs = 0;
    assert_int_equal(
        ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(srv), X509_get0_notAfter(srv)), 1);
    assert_int_equal(days, 825);
    assert_int_equal(ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notBefore(srv)), 1);
    assert_true(days == 0 && secs <= -3500 && secs >= -3700);
    assert_int_equal(ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(ca)), 1);
    assert_true(days >= 3640 && days <= 3660);

    /* A 16-byte positive serial, different for the two certificates. */
    const ASN1_INTEGER *s1 = X509_get0_serialNumber(ca);
    const ASN1_INTEGER *s2 = X509_get0_serialNumber(srv);
    assert_int_equal(ASN1_STRING_length(s1), 16);
    assert_int_equal(ASN1_STRING_length(s2), 16);
    assert_int_not_equal(ASN1_INTEGER_cmp(s1, s2), 0);

    X509_free(ca);
    X509_free(srv);
}

static EVP_PKEY *load_key(const fixture *f, const char *name)
{
    char p[256];
    path(p, sizeof(p), f, name);
    FILE *fp = fopen(p, "r");
    assert_non_null(fp);
    EVP_PKEY *k = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
    fclose(fp);
    assert_non_null(k);
    return k;
}

/* A certificate for dns (or an intermediate CA when is_ca), signed by issuer with
 * issuer_key: what someone holding the CA key could make. *key_out gets its key. */
static X509 *sign_cert(X509 *issuer, EVP_PKEY *issuer_key, const char *dns, bool is_ca,
                       EVP_PKEY **key_out)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    assert_non_null(k);
    assert_non_null(x);
    assert_int_equal(X509_set_version(x, 2), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), is_ca ? 7 : 8), 1);
    X509_NAME *name = X509_NAME_new();
    assert_int_equal(
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)dns, -1, -1, 0),
        1);
    assert_int_equal(X509_set_subject_name(x, name), 1);
    X509_NAME_free(name);
    assert_int_equal(X509_set_issuer_name(x, X509_get_subject_name(issuer)), 1);
    assert_int_equal(X509_set_pubkey(x, k), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -60));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    char san[300];
    snprintf(san, sizeof(san), "DNS:%s", dns);
    const struct {
        int nid;
        const char *value;
    } exts[] = {
        {NID_basic_constraints, is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE"},
        {NID_key_usage, is_ca ? "critical,keyCertSign" : "critical,digitalSignature"},
        {NID_subject_key_identifier, "hash"},
        {NID_authority_key_identifier, "keyid:always"},
        {NID_subject_alt_name, san},
    };
    for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
        X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, exts[i].nid, exts[i].value);
        assert_non_null(e);
        assert_int_equal(X509_add_ext(x, e, -1), 1);
        X509_EXTENSION_free(e);
    }
    assert_true(X509_sign(x, issuer_key, EVP_sha256()) > 0);
    *key_out = k;
    return x;
}

static int verify_chain(X509 *ca, X509 *mid, X509 *leaf, const char *host)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *chain = sk_X509_new_null();
    assert_non_null(store);
    assert_non_null(ctx);
    assert_non_null(chain);
    assert_int_equal(X509_STORE_add_cert(store, ca), 1);
    if (mid)
        assert_true(sk_X509_push(chain, mid) > 0);
    assert_int_equal(X509_STORE_CTX_init(ctx, store, leaf, chain), 1);
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_SERVER);
    assert_int_equal(X509_VERIFY_PARAM_set1_host(param, host, 0), 1);
    int ok = X509_verify_cert(ctx);
    int err = X509_STORE_CTX_get_error(ctx);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    sk_X509_free(chain);
    return ok == 1 ? 0 : (err ? err : -1);
}

static bool subtree_is(const GENERAL_SUBTREE *t, int type, const char *value)
{
    const GENERAL_NAME *g = t->base;
    if (g->type != type || t->minimum || t->maximum)
        return false;
    if (type == GEN_DNS) {
        const ASN1_IA5STRING *s = g->d.dNSName;
        return (size_t)ASN1_STRING_length(s) == strlen(value) &&
               memcmp(ASN1_STRING_get0_data(s), value, strlen(value)) == 0;
    }
    /* value is "address/mask", as openssl prints it. */
    ASN1_OCTET_STRING *want = a2i_IPADDRESS_NC(value);
    assert_non_null(want);
    bool same = ASN1_OCTET_STRING_cmp(want, g->d.iPAddress) == 0;
    ASN1_OCTET_STRING_free(want);
    return same;
}

/* The CA made on first start can vouch for this daemon's names only, and for no other
 * CA: pathlen 0 and critical name constraints listing exactly the loopback addresses,
 * localhost and the extra names (a wildcard as its base domain). Someone holding ca.key
 * can then sign for example.com all they like: a client trusting ca.pem refuses it. */
static void test_ca_constraints(void **state)
{
    fixture *f = *state;
    assert_int_equal(kl_tls_ensure_selfsigned(f->dir, extra, 2), 0);
    X509 *ca = load_cert(f, "ca.pem");
    EVP_PKEY *ca_key = load_key(f, "ca.key");

    int crit = -1;
    BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(ca, NID_basic_constraints, &crit, NULL);
    assert_non_null(bc);
    assert_int_equal(crit, 1);
    assert_true(bc->ca);
    assert_non_null(bc->pathlen);
    assert_int_equal(ASN1_INTEGER_get(bc->pathlen), 0);
    BASIC_CONSTRAINTS_free(bc);

    crit = -1;
    NAME_CONSTRAINTS *nc = X509_get_ext_d2i(ca, NID_name_constraints, &crit, NULL);
    assert_non_null(nc);
    assert_int_equal(crit, 1);
    assert_null(nc->excludedSubtrees);
    assert_int_equal(sk_GENERAL_SUBTREE_num(nc->permittedSubtrees), 5);
    assert_true(subtree_is(sk_GENERAL_SUBTREE_value(nc->permittedSubtrees, 0), GEN_IPADD,
                           "127.0.0.1/255.255.255.255"));
    assert_true(subtree_is(sk_GENERAL_SUBTREE_value(nc->permittedSubtrees, 1), GEN_IPADD,
                           "::1/ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
    assert_true(
        subtree_is(sk_GENERAL_SUBTREE_value(nc->permittedSubtrees, 2), GEN_DNS, "localhost"));
    assert_true(subtree_is(sk_GENERAL_SUBTREE_value(nc->permittedSubtrees, 3), GEN_DNS,
                           "openai.localhost"));
    assert_true(subtree_is(sk_GENERAL_SUBTREE_value(nc->permittedSubtrees, 4), GEN_DNS,
                           "keyless.example.test"));
    NAME_CONSTRAINTS_free(nc);

    /* A leaf inside the constraints verifies; one for another site does not. */
    EVP_PKEY *k1 = NULL, *k2 = NULL, *k3 = NULL, *k4 = NULL;
    X509 *inside = sign_cert(ca, ca_key, "other.openai.localhost", false, &k1);
    assert_int_equal(verify_chain(ca, NULL, inside, "other.openai.localhost"), 0);
    X509 *outside = sign_cert(ca, ca_key, "example.com", false, &k2);
    assert_int_equal(verify_chain(ca, NULL, outside, "example.com"),
                     X509_V_ERR_PERMITTED_VIOLATION);
    /* Nor can it make a CA under it, even for a permitted name. */
    X509 *mid = sign_cert(ca, ca_key, "sub.openai.localhost", true, &k3);
    X509 *leaf = sign_cert(mid, k3, "leaf.openai.localhost", false, &k4);
    assert_int_equal(verify_chain(ca, mid, leaf, "leaf.openai.localhost"),
                     X509_V_ERR_PATH_LENGTH_EXCEEDED);

    X509_free(inside);
    X509_free(outside);
    X509_free(mid);
    X509_free(leaf);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
    EVP_PKEY_free(k3);
    EVP_PKEY_free(k4);
    EVP_PKEY_free(ca_key);
    X509_free(ca);
}

static void test_second_call_keeps_files(void **state)
{
    fixture *f = *state;
    assert_int_equal(kl_tls_ensure_selfsigned(f->dir, NULL, 0), 0);
    X509 *a = load_cert(f, "server.pem");
    X509 *ca_a = load_cert(f, "ca.pem");
    assert_int_equal(kl_tls_ensure_selfsigned(f->dir, extra, 2), 0);
    X509 *b = load_cert(f, "server.pem");
    X509 *ca_b = load_cert(f, "ca.pem");
    assert_int_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(a), X509_get0_serialNumber(b)), 0);
    assert_int_equal(X509_cmp(ca_a, ca_b), 0);
    /* The first call had no extra names, and the kept certificate still has none. */
    assert_false(san_has(b, GEN_DNS, "keyless.example.test"));
    X509_free(a);
    X509_free(b);
    X509_free(ca_a);
    X509_free(ca_b);
}

/* A deleted server certificate is reissued by the existing CA; a server pair without a
 * CA key is kept as it is. */
static void test_partial_state(void **state)
{
    fixture *f = *state;
    char p[256];
    assert_int_equal(kl_tls_ensure_selfsigned(f->dir, NULL, 0), 0);
    X509 *ca = load_cert(f, "ca.pem");
    X509 *old = load_cert(f, "server.pem");

    path(p, sizeof(p), f, "server.pem");
    assert_int_equal(unlink(p), 0);
    assert_int_equal(kl_tls_ensure_selfsigned(f->dir, NULL, 0), 0);
    X509 *ca2 = load_cert(f, "ca.pem");
    X509 *renewed = load_cert(f, "server.pem");
    assert_int_equal(X509_cmp(ca, ca2), 0);
    assert_int_not_equal(
        ASN1_INTEGER_cmp(X509_get0_serialNumber(old), X509_get0_serialNumber(renewed)), 0);
    assert_int_equal(verify(ca, renewed, "localhost", NULL), 0);
    /* It kept the existing server key. */
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(old), X509_get0_pubkey(renewed)), 1);

    path(p, sizeof(p), f, "ca.key");
    assert_int_equal(unlink(p), 0);
    assert_int_equal(kl_tls_ensure_selfsigned(f->dir, NULL, 0), 0);
    assert_int_equal(access(p, F_OK), -1);
    X509 *kept = load_cert(f, "server.pem");
    assert_int_equal(X509_cmp(kept, renewed), 0);

    /* A server certificate whose key is gone cannot be kept or replaced. */
    path(p, sizeof(p), f, "server.key");
    assert_int_equal(unlink(p), 0);
    assert_int_not_equal(kl_tls_ensure_selfsigned(f->dir, NULL, 0), 0);

    X509_free(ca);
    X509_free(ca2);
    X509_free(old);
    X509_free(renewed);
    X509_free(kept);
}

static void test_bad_names_refused(void **state)
{
    fixture *f = *state;
    static const char *const bad[] = {"a,DNS:evil", "", "a..b", ".lead", "x*.y", "sp ace", "*"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *one[] = {bad[i]};
        assert_int_equal(kl_tls_ensure_selfsigned(f->dir, one, 1), KL_EINVAL);
    }
    /* Nothing was written for the refused calls. */
    assert_int_equal(access(f->dir, F_OK), -1);
}

static void test_server_ctx(void **state)
{
    fixture *f = *state;
    char cert[256], key[256], cakey[256], err[256];
    assert_int_equal(kl_tls_ensure_selfsigned(f->dir, extra, 2), 0);
    path(cert, sizeof(cert), f, "server.pem");
    path(key, sizeof(key), f, "server.key");
    path(cakey, sizeof(cakey), f, "ca.key");

    SSL_CTX *ctx = kl_tls_server_ctx(cert, key, err, sizeof(err));
    assert_non_null(ctx);
    assert_int_equal(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
    assert_true(SSL_CTX_get_options(ctx) & SSL_OP_NO_RENEGOTIATION);
    assert_true(SSL_CTX_get_session_cache_mode(ctx) & SSL_SESS_CACHE_SERVER);
    SSL_CTX_free(ctx);

    /* The CA's key with the server's certificate: refused, with a reason. */
    err[0] = '\0';
    ctx = kl_tls_server_ctx(cert, cakey, err, sizeof(err));
    assert_null(ctx);
    assert_true(strlen(err) > 0);
    assert_non_null(strstr(err, cakey));

    err[0] = '\0';
    ctx = kl_tls_server_ctx("/nonexistent/cert.pem", key, err, sizeof(err));
    assert_null(ctx);
    assert_non_null(strstr(err, "/nonexistent/cert.pem"));

    /* A key file where the certificate should be. */
    err[0] = '\0';
    ctx = kl_tls_server_ctx(key, key, err, sizeof(err));
    assert_null(ctx);
    assert_true(strlen(err) > 0);
    assert_int_equal(ERR_peek_error(), 0);
}

/* A real handshake over a socket pair: ALPN picks http/1.1, a client offering only h2 is
 * refused, a client offering nothing is served, and TLS 1.1 is refused. */
typedef struct hs_result {
    int client_ok;
    int server_ok;
    char alpn[16];
} hs_result;

static void handshake(SSL_CTX *sctx, const unsigned char *alpn, unsigned alpn_len, int max_ver,
                      const char *cafile, hs_result *r)
{
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(cctx);
    if (max_ver) {
        SSL_CTX_set_security_level(cctx, 0);
        SSL_CTX_set_max_proto_version(cctx, max_ver);
    }
    assert_int_equal(SSL_CTX_load_verify_locations(cctx, cafile, NULL), 1);
    SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);
    SSL *c = SSL_new(cctx), *s = SSL_new(sctx);
    assert_non_null(c);
    assert_non_null(s);
    SSL_set1_host(c, "localhost");
    if (alpn)
        assert_int_equal(SSL_set_alpn_protos(c, alpn, alpn_len), 0);
    BIO *bc = NULL, *bs = NULL;
    assert_int_equal(BIO_new_bio_pair(&bc, 0, &bs, 0), 1);
    SSL_set_bio(c, bc, bc);
    SSL_set_bio(s, bs, bs);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    int cdone = 0, sdone = 0, cfail = 0, sfail = 0;
    for (int i = 0; i < 50 && !(cdone && sdone) && !cfail && !sfail; i++) {
        if (!cdone) {
            int rc = SSL_do_handshake(c);
            if (rc == 1)
                cdone = 1;
            else if (SSL_get_error(c, rc) != SSL_ERROR_WANT_READ)
                cfail = 1;
        }
        if (!sdone) {
            int rc = SSL_do_handshake(s);
            if (rc == 1)
                sdone = 1;
            else if (SSL_get_error(s, rc) != SSL_ERROR_WANT_READ)
                sfail = 1;
        }
    }
    r->client_ok = cdone && !cfail;
    r->server_ok = sdone && !sfail;
    r->alpn[0] = '\0';
    const unsigned char *sel = NULL;
    unsigned sel_len = 0;
    SSL_get0_alpn_selected(c, &sel, &sel_len);
    if (sel && sel_len < sizeof(r->alpn)) {
        memcpy(r->alpn, sel, sel_len);
        r->alpn[sel_len] = '\0';
    }
    SSL_free(c);
    SSL_free(s);
    SSL_CTX_free(cctx);
    ERR_clear_error();
}

static void test_handshakes(void **state)
{
    fixture *f = *state;
    char cert[256], key[256], ca[256], err[256];
    assert_int_equal(kl_tls_ensure_selfsigned(f->dir, NULL, 0), 0);
    path(cert, sizeof(cert), f, "server.pem");
    path(key, sizeof(key), f, "server.key");
    path(ca, sizeof(ca), f, "ca.pem");
    SSL_CTX *sctx = kl_tls_server_ctx(cert, key, err, sizeof(err));
    assert_non_null(sctx);
    hs_result r;

    static const unsigned char both[] = "\x02h2\x08http/1.1";
    handshake(sctx, both, sizeof(both) - 1, 0, ca, &r);
    assert_true(r.client_ok && r.server_ok);
    assert_string_equal(r.alpn, "http/1.1");

    handshake(sctx, NULL, 0, 0, ca, &r);
    assert_true(r.client_ok && r.server_ok);
    assert_string_equal(r.alpn, "");

    static const unsigned char h2[] = "\x02h2";
    handshake(sctx, h2, sizeof(h2) - 1, 0, ca, &r);
    assert_false(r.client_ok);
    assert_false(r.server_ok);

    handshake(sctx, NULL, 0, TLS1_1_VERSION, ca, &r);
    assert_false(r.client_ok);
    assert_false(r.server_ok);

    handshake(sctx, NULL, 0, TLS1_2_VERSION, ca, &r);
    assert_true(r.client_ok && r.server_ok);

    SSL_CTX_free(sctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_creates_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ca_constraints, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_call_keeps_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partial_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_names_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_ctx, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handshakes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
