/* The OAuth client pieces of the keyless CLI; see oauth.h. */
#include "cli/oauth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include "cli/authz.h"
#include "cli/output.h"
#include "common/err.h"
#include "common/util.h"
#include "token/form.h"

int kl_cli_oauth_form_add(kl_buf *form, const char *name, const char *value)
{
    int rc;
    if ((form->len > 0 && (rc = kl_buf_append_str(form, "&")) < 0) ||
        (rc = kl_cli_append_query_value(form, name)) < 0 ||
        (rc = kl_buf_append_str(form, "=")) < 0 ||
        (rc = kl_cli_append_query_value(form, value)) < 0)
        return rc;
    return 0;
}

/* base64url of 32 bytes into out (KL_CLI_PKCE_LEN characters). The encoder writes the
 * padded form first, so it works in a larger buffer. 0 or KL_ECRYPTO. */
static int b64url32(const unsigned char in[32], char out[KL_CLI_PKCE_LEN + 1])
{
    char tmp[64];
    int n = kl_b64url_encode(in, 32, tmp, sizeof(tmp));
    int rc = n == KL_CLI_PKCE_LEN ? 0 : KL_ECRYPTO;
    if (rc == 0)
        memcpy(out, tmp, KL_CLI_PKCE_LEN + 1);
    OPENSSL_cleanse(tmp, sizeof(tmp));
    return rc;
}

int kl_cli_oauth_pkce_challenge(const char *verifier, char challenge[KL_CLI_PKCE_LEN + 1])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    if (EVP_Digest(verifier, strlen(verifier), md, &mdlen, EVP_sha256(), NULL) != 1 ||
        mdlen != sizeof(md))
        return KL_ECRYPTO;
    return b64url32(md, challenge);
}

int kl_cli_oauth_pkce_new(char verifier[KL_CLI_PKCE_LEN + 1], char challenge[KL_CLI_PKCE_LEN + 1])
{
    unsigned char rnd[32];
    int rc = KL_ECRYPTO;
    if (RAND_bytes(rnd, sizeof(rnd)) == 1 && b64url32(rnd, verifier) == 0)
        rc = kl_cli_oauth_pkce_challenge(verifier, challenge);
    OPENSSL_cleanse(rnd, sizeof(rnd));
    return rc;
}

const char *kl_cli_oauth_resource_for(const char *target)
{
    if (kl_str_istarts(target, "/v1.0") &&
        (target[5] == '\0' || target[5] == '/' || target[5] == '?'))
        return KL_CLI_GRAPH_RESOURCE;
    return KL_CLI_ARM_RESOURCE;
}

/* Copies v (a decoded form value) into out[outlen], up to its first CR or LF when
 * first_line is set; false when it does not fit or holds a control byte. */
static bool copy_value(const char *v, bool first_line, char *out, size_t outlen)
{
    size_t n = first_line ? strcspn(v, "\r\n") : strlen(v);
    if (n >= outlen)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
            return false;
    memcpy(out, v, n);
    out[n] = '\0';
    return true;
}

int kl_cli_oauth_redirect_parse(const char *req, size_t len, const char *want_state, char *code,
                                size_t codelen, char *err, size_t errlen)
{
    char error[128], desc[512];
    kl_form *f = NULL;
    int rc;
    const char *eol = memchr(req, '\n', len);
    size_t line = eol ? (size_t)(eol - req) : len;
    if (line < 4 || memcmp(req, "GET ", 4) != 0)
        return kl_err_say(err, errlen, KL_EINVAL, "the browser sent something other than a GET");
    const char *target = req + 4;
    const char *sp = memchr(target, ' ', line - 4);
    if (!sp)
        return kl_err_say(err, errlen, KL_EINVAL, "the browser's request is not HTTP");
    size_t tlen = (size_t)(sp - target);
    const char *qm = memchr(target, '?', tlen);
    size_t plen = qm ? (size_t)(qm - target) : tlen;
    if (plen != 1 || target[0] != '/')
        return KL_ENOTFOUND; /* not the redirect URI (whose path is "/") */
    const char *q = qm ? qm + 1 : target + tlen;
    /* The query is a form (RFC 6749 4.1.2): the token service's own strict parser. */
    if (kl_form_parse(q, (size_t)(target + tlen - q), &f, NULL, 0) != KL_FORM_OK)
        return kl_err_say(err, errlen, KL_EINVAL, "the sign-in answer is not a valid query");
    const char *state = kl_form_get(f, "state", NULL);
    if (!state || !kl_ct_equal(state, strlen(state), want_state, strlen(want_state))) {
        rc = kl_err_say(err, errlen, KL_EINVAL,
                        "the sign-in answer does not carry this sign-in's state; ignored");
        goto out;
    }
    const char *e = kl_form_get(f, "error", NULL);
    if (e) {
        const char *d = kl_form_get(f, "error_description", NULL);
        if (!copy_value(e, false, error, sizeof(error)))
            snprintf(error, sizeof(error), "error");
        if (!d || !copy_value(d, true, desc, sizeof(desc)))
            desc[0] = '\0';
        rc = kl_err_say(err, errlen, KL_EINVAL, "sign-in refused: %s%s%s", error,
                        desc[0] ? ": " : "", desc);
        goto out;
    }
    const char *v = kl_form_get(f, "code", NULL);
    if (!v || !v[0] || !copy_value(v, false, code, codelen)) {
        rc = kl_err_say(err, errlen, KL_EINVAL, "the sign-in answer carries no code");
        goto out;
    }
    rc = 0;
out:
    kl_form_free(f);
    return rc;
}

int kl_cli_oauth_post(kl_cli_http *h, const char *tenant, const char *endpoint, const kl_buf *form,
                      long *status, json_t **answer, char *err, size_t errlen)
{
    kl_cli_response resp;
    kl_buf target;
    int rc;

    *status = 0;
    *answer = NULL;
    kl_buf_init(&target, 1024);
    if ((rc = kl_buf_append_str(&target, "/")) < 0 ||
        (rc = kl_cli_append_segment(&target, tenant)) < 0 ||
        (rc = kl_buf_appendf(&target, "/oauth2/v2.0/%s", endpoint)) < 0) {
        kl_buf_free(&target);
        return kl_err_say(err, errlen, rc, "the tenant is too long");
    }
    kl_cli_http_msg m = {"POST",     target.data, "application/x-www-form-urlencoded",
                         form->data, form->len,   NULL};
    rc = kl_cli_http_send(h, &m, &resp, err, errlen);
    kl_buf_free(&target);
    if (rc == 0) {
        *status = resp.status;
        if (resp.body.len > 0) {
            *answer = json_loadb(resp.body.data, resp.body.len, 0, NULL);
            if (*answer && !json_is_object(*answer)) {
                json_decref(*answer);
                *answer = NULL;
            }
        }
    }
    kl_cli_response_free(&resp); /* wipes: the body holds tokens */
    return rc;
}

void kl_cli_oauth_error_text(long status, const json_t *answer, char *out, size_t outlen)
{
    const char *e = json_string_value(json_object_get(answer, "error"));
    const char *d = json_string_value(json_object_get(answer, "error_description"));
    kl_buf b;
    kl_buf_init(&b, 1024);
    if (e) {
        (void)kl_cli_append_printable(&b, e, strlen(e));
        if (d) {
            (void)kl_buf_append_str(&b, ": ");
            /* Entra's descriptions end with "\r\nTrace ID: ..."; the first line says it. */
            (void)kl_cli_append_printable(&b, d, strcspn(d, "\r\n"));
        }
        snprintf(out, outlen, "%s", b.data ? b.data : "");
    } else {
        snprintf(out, outlen, "HTTP %ld", status);
    }
    kl_buf_free(&b);
}
