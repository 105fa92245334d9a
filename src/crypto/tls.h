/* TLS material: a self-signed CA and a server certificate made on first start, and the
 * server SSL_CTX. */
#ifndef KL_CRYPTO_TLS_H
#define KL_CRYPTO_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>

/* Ensures tls_dir holds ca.pem, ca.key, server.pem, server.key (keys 0600, dir 0700),
 * creating whatever is missing: an EC P-256 CA (10 years; pathLenConstraint 0 and critical
 * nameConstraints permitting only IP 127.0.0.1, IP ::1, DNS localhost and each of
 * extra_dns, a wildcard as its base domain) and a server certificate it signs (825 days)
 * whose subjectAltName has IP:127.0.0.1, IP:::1, DNS:localhost and each of extra_dns (may
 * be NULL/0), e.g. "*.openai.localhost". Existing files are kept (a CA made by an older
 * version keeps its lack of constraints until tls_dir is emptied). KL_EINVAL for a
 * malformed name, KL_ETOOBIG when the names do not fit in the CA's 4 KiB constraint list. */
int kl_tls_ensure_selfsigned(const char *tls_dir, const char *const *extra_dns, size_t n_extra);
/* A TLS 1.2+ server context for cert_pem (chain allowed) and key_pem; HTTP/1.1 only.
 * Returns NULL and writes a reason into err on failure. Caller frees with SSL_CTX_free. */
SSL_CTX *kl_tls_server_ctx(const char *cert_pem, const char *key_pem, char *err, size_t errlen);

#endif
