/* The pages keylessd shows to people (see webpage.h): the shell, escaping, cookies, the
 * CSRF double-submit token and the security headers. */
#include "gateway/webpage.h"

#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/util.h"
#include "gateway/held.h"

/* The whole style of every page: readable on a phone (one column, large inputs), no
 * external fonts or images. The CSP names it by hash, so no other style can run. */
static const char page_css[] =
    "body{margin:0;font:17px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;"
    "background:#f3f4f6;color:#111827}"
    "main{max-width:26rem;margin:2rem auto;padding:1.5rem;background:#fff;"
    "border:1px solid #d1d5db;border-radius:8px}"
    "h1{font-size:1.4rem;margin:0 0 1rem}"
    "label{display:block;margin:1rem 0 .25rem;font-weight:600}"
    "input[type=text],input[type=password],input[type=email]{box-sizing:border-box;width:100%;"
    "padding:.7rem;font-size:1.05rem;border:1px solid #9ca3af;border-radius:6px}"
    "button{margin-top:1.25rem;width:100%;padding:.8rem;font-size:1.05rem;border:0;"
    "border-radius:6px;background:#1d4ed8;color:#fff;cursor:pointer}"
    "button.secondary{background:#e5e7eb;color:#111827}"
    ".err{padding:.6rem .8rem;border-radius:6px;background:#fee2e2;color:#991b1b}"
    ".note{color:#4b5563;font-size:.95rem}"
    "@media (max-width:30rem){main{margin:0;border:0;border-radius:0}}";

/* The one script any page runs: the form_post answer submits itself (a person without
 * script presses its button instead). Named by hash in that page's CSP only. */
static const char post_script[] = "document.forms[0].submit();";

static char css_hash[64];    /* "sha256-<base64>" of page_css */
static char script_hash[64]; /* and of post_script */
static pthread_once_t css_once = PTHREAD_ONCE_INIT;

/* "sha256-<base64>" of s into out; "sha256-none" (matches nothing: safe) on failure. */
static void hash_source(const char *s, size_t n, char out[64])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    char b64[48];
    if (EVP_Digest(s, n, md, &mdlen, EVP_sha256(), NULL) != 1 ||
        kl_b64_encode(md, mdlen, b64, sizeof(b64)) < 0) {
        snprintf(out, 64, "sha256-none");
        return;
    }
    snprintf(out, 64, "sha256-%s", b64);
}

static void css_hash_init(void)
{
    hash_source(page_css, sizeof(page_css) - 1, css_hash);
    hash_source(post_script, sizeof(post_script) - 1, script_hash);
}

/* ------------------------------------------------------------------ escaping */

int kl_webpage_escape(kl_buf *b, const char *s)
{
    if (!s)
        return 0;
    const char *run = s;
    int err = 0;
    for (const char *p = s; *p && !err; p++) {
        const char *rep = NULL;
        switch (*p) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default: continue;
        }
        if (p > run)
            err = kl_buf_append(b, run, (size_t)(p - run));
        if (!err)
            err = kl_buf_append_str(b, rep);
        run = p + 1;
    }
    if (!err && *run)
        err = kl_buf_append_str(b, run);
    return err;
}

/* ------------------------------------------------------------------ cookies */

/* RFC 6265 cookie-octet (no space, quote, comma, semicolon or backslash). */
static bool cookie_octet(unsigned char c)
{
    return c == 0x21 || (c >= 0x23 && c <= 0x2b) || (c >= 0x2d && c <= 0x3a) ||
           (c >= 0x3c && c <= 0x5b) || (c >= 0x5d && c <= 0x7e);
}

static bool cookie_name_ok(const char *n)
{
    if (!n || !*n)
        return false;
    for (; *n; n++)
        if (!cookie_octet((unsigned char)*n) || *n == '=')
            return false;
    return true;
}

int kl_webpage_cookie_find(const char *header, const char *name, char *out, size_t outlen)
{
    if (!name || !out || outlen == 0)
        return KL_EINVAL;
    out[0] = '\0';
    if (!header)
        return KL_ENOTFOUND;
    size_t nl = strlen(name);
    const char *p = header;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ';')
            p++;
        const char *k = p;
        while (*p && *p != '=' && *p != ';')
            p++;
        size_t kl = (size_t)(p - k);
        while (kl > 0 && (k[kl - 1] == ' ' || k[kl - 1] == '\t'))
            kl--;
        const char *v = NULL;
        size_t vl = 0;
        if (*p == '=') {
            v = ++p;
            while (*p && *p != ';')
                p++;
            vl = (size_t)(p - v);
            while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
                vl--;
            if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
                v++;
                vl -= 2;
            }
        }
        if (v && kl == nl && memcmp(k, name, nl) == 0) {
            if (vl >= outlen)
                return KL_ETOOBIG;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return 0;
        }
    }
    return KL_ENOTFOUND;
}

int kl_webpage_cookie(const kl_http_req *r, const char *name, char *out, size_t outlen)
{
    return kl_webpage_cookie_find(kl_http_req_header(r, "cookie"), name, out, outlen);
}

int kl_webpage_cookie_header(char *out, size_t outlen, const char *name, const char *value,
                             int64_t max_age_s)
{
    if (!out || !cookie_name_ok(name) || !value)
        return KL_EINVAL;
    for (const char *p = value; *p; p++)
        if (!cookie_octet((unsigned char)*p))
            return KL_EINVAL;
    int n;
    if (max_age_s == 0)
        n = snprintf(out, outlen, "%s=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0", name);
    else if (max_age_s > 0)
        n = snprintf(out, outlen, "%s=%s; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=%lld",
                     name, value, (long long)max_age_s);
    else
        n = snprintf(out, outlen, "%s=%s; Path=/; Secure; HttpOnly; SameSite=Lax", name, value);
    return n < 0 || (size_t)n >= outlen ? KL_ETOOBIG : 0;
}

int kl_webpage_set_cookie(kl_http_req *r, const char *name, const char *value, int64_t max_age_s)
{
    char h[512];
    int err = kl_webpage_cookie_header(h, sizeof(h), name, value, max_age_s);
    if (!err)
        kl_http_set_header(r, "Set-Cookie", h);
    OPENSSL_cleanse(h, sizeof(h));
    return err;
}

/* ------------------------------------------------------------------ tokens, CSRF */

int kl_webpage_token(char out[KL_WEBPAGE_TOKEN_LEN + 1])
{
    unsigned char raw[KL_WEBPAGE_TOKEN_BYTES];
    char enc[4 * ((KL_WEBPAGE_TOKEN_BYTES + 2) / 3) + 1]; /* what the encoder asks room for */
    int err = 0;
    if (RAND_bytes(raw, sizeof(raw)) != 1 ||
        kl_b64url_encode(raw, sizeof(raw), enc, sizeof(enc)) != KL_WEBPAGE_TOKEN_LEN)
        err = KL_ECRYPTO;
    else
        memcpy(out, enc, KL_WEBPAGE_TOKEN_LEN + 1);
    OPENSSL_cleanse(raw, sizeof(raw));
    OPENSSL_cleanse(enc, sizeof(enc));
    return err;
}

bool kl_webpage_token_valid(const char *v)
{
    if (!v || strnlen(v, KL_WEBPAGE_TOKEN_LEN + 1) != KL_WEBPAGE_TOKEN_LEN)
        return false;
    for (size_t i = 0; i < KL_WEBPAGE_TOKEN_LEN; i++) {
        char c = v[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return false;
    }
    return true;
}

int kl_webpage_csrf_issue(kl_http_req *r, char out[KL_WEBPAGE_TOKEN_LEN + 1])
{
    char have[KL_WEBPAGE_TOKEN_LEN + 2];
    if (kl_webpage_cookie(r, KL_WEBPAGE_CSRF_COOKIE, have, sizeof(have)) == 0 &&
        kl_webpage_token_valid(have)) {
        memcpy(out, have, KL_WEBPAGE_TOKEN_LEN + 1);
        return 0;
    }
    int err = kl_webpage_token(out);
    if (!err)
        err = kl_webpage_set_cookie(r, KL_WEBPAGE_CSRF_COOKIE, out, -1);
    return err;
}

bool kl_webpage_csrf_equal(const char *cookie, const char *field)
{
    if (!kl_webpage_token_valid(cookie) || !kl_webpage_token_valid(field))
        return false;
    return CRYPTO_memcmp(cookie, field, KL_WEBPAGE_TOKEN_LEN) == 0;
}

bool kl_webpage_csrf_check(const kl_http_req *r, const char *field)
{
    char have[KL_WEBPAGE_TOKEN_LEN + 2];
    if (kl_webpage_cookie(r, KL_WEBPAGE_CSRF_COOKIE, have, sizeof(have)) != 0)
        return false;
    return kl_webpage_csrf_equal(have, field);
}

/* ------------------------------------------------------------------ headers */

static bool origin_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == ':' || c == '[' || c == ']';
}

int kl_webpage_origin(const char *uri, char *out, size_t outlen)
{
    if (!uri || !out || outlen == 0)
        return KL_EINVAL;
    size_t skip;
    if (kl_str_istarts(uri, "https://"))
        skip = 8;
    else if (kl_str_istarts(uri, "http://"))
        skip = 7;
    else
        return KL_EINVAL;
    size_t n = skip;
    while (uri[n] && uri[n] != '/' && uri[n] != '?' && uri[n] != '#')
        n++;
    if (n == skip)
        return KL_EINVAL;
    for (size_t i = skip; i < n; i++)
        if (!origin_char(uri[i]))
            return KL_EINVAL; /* userinfo ('@'), or anything a policy would misread */
    if (n >= outlen)
        return KL_ETOOBIG;
    memcpy(out, uri, n);
    out[n] = '\0';
    return 0;
}

/* The policy; with_script allows post_script (the form_post page) and nothing else. */
static int csp(char *out, size_t outlen, const char *form_origin, bool with_script)
{
    pthread_once(&css_once, css_hash_init);
    if (form_origin) {
        size_t skip = kl_str_istarts(form_origin, "https://")  ? 8
                      : kl_str_istarts(form_origin, "http://") ? 7
                                                               : 0;
        if (!skip || !form_origin[skip])
            return KL_EINVAL;
        for (const char *p = form_origin + skip; *p; p++)
            if (!origin_char(*p))
                return KL_EINVAL;
    }
    char script[96] = "";
    if (with_script)
        snprintf(script, sizeof(script), " script-src '%s';", script_hash);
    int n =
        snprintf(out, outlen,
                 "default-src 'none'; style-src '%s';%s img-src 'none'; form-action 'self'%s%s; "
                 "frame-ancestors 'none'; base-uri 'none'",
                 css_hash, script, form_origin ? " " : "", form_origin ? form_origin : "");
    return n < 0 || (size_t)n >= outlen ? KL_ETOOBIG : 0;
}

int kl_webpage_csp(char *out, size_t outlen, const char *form_origin)
{
    return csp(out, outlen, form_origin, false);
}

static void headers(kl_http_req *r, const char *form_origin, bool with_script)
{
    char policy[KL_MAX_URL + 256];
    if (csp(policy, sizeof(policy), form_origin, with_script) != 0)
        csp(policy, sizeof(policy), NULL, with_script);
    kl_http_set_header(r, "Content-Security-Policy", policy);
    kl_http_set_header(r, "X-Frame-Options", "DENY");
    kl_http_set_header(r, "Referrer-Policy", "no-referrer");
    kl_http_set_header(r, "X-Content-Type-Options", "nosniff");
    kl_http_set_header(r, "Cache-Control", "no-store, no-cache");
    kl_http_set_header(r, "Pragma", "no-cache");
}

void kl_webpage_headers(kl_http_req *r, const char *form_origin)
{
    headers(r, form_origin, false);
}

/* ------------------------------------------------------------------ pages */

int kl_webpage_render(kl_buf *out, const char *title, const char *body_html)
{
    int err = kl_buf_append_str(out, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta "
                                     "charset=\"utf-8\"><meta name=\"viewport\" "
                                     "content=\"width=device-width, initial-scale=1\"><meta "
                                     "name=\"referrer\" content=\"no-referrer\"><title>");
    if (!err)
        err = kl_webpage_escape(out, title);
    if (!err)
        err = kl_buf_appendf(out, " - keyless</title><style>%s</style></head><body><main><h1>",
                             page_css);
    if (!err)
        err = kl_webpage_escape(out, title);
    if (!err)
        err = kl_buf_append_str(out, "</h1>\n");
    if (!err && body_html)
        err = kl_buf_append_str(out, body_html);
    if (!err)
        err = kl_buf_append_str(out, "\n</main></body></html>\n");
    return err;
}

/* A page rendered into a new buffer; NULL on failure. */
static char *page(const char *title, const char *body_html, size_t *len)
{
    kl_buf b;
    kl_buf_init(&b, KL_MAX_WEBPAGE_BYTES);
    if (kl_webpage_render(&b, title, body_html) != 0) {
        kl_buf_free(&b);
        return NULL;
    }
    *len = b.len;
    return kl_buf_steal(&b);
}

static const char fallback[] = "<!DOCTYPE html><title>Error</title><p>Something went wrong.</p>";

void kl_webpage_respond(kl_http_req *r, int status, const char *form_origin, const char *title,
                        const char *body_html)
{
    size_t len = 0;
    char *html = page(title, body_html, &len);
    kl_webpage_headers(r, form_origin);
    if (!html)
        kl_http_respond(r, 500, "text/html; charset=utf-8", fallback, sizeof(fallback) - 1);
    else
        kl_http_respond(r, status, "text/html; charset=utf-8", html, len);
    free(html);
}

/* held.h's callbacks for a page of len bytes. */
static void held_send_page(kl_http_req *r, int status, void *html, size_t len)
{
    kl_http_respond(r, status, "text/html; charset=utf-8", html, len);
    free(html);
}

static void held_drop_page(void *html)
{
    free(html);
}

void kl_webpage_respond_later(kl_http_req *r, uint32_t delay_ms, int status,
                              const char *form_origin, const char *title, const char *body_html)
{
    size_t len = 0;
    char *html = delay_ms > 0 ? page(title, body_html, &len) : NULL;
    if (html &&
        kl_held_answer(r, delay_ms, status, html, len, held_send_page, held_drop_page) == 0) {
        kl_webpage_headers(r, form_origin);
        return;
    }
    /* No delay asked, or no timer to be had: answering now only loses the slowdown. */
    free(html);
    kl_webpage_respond(r, status, form_origin, title, body_html);
}

void kl_webpage_message(kl_http_req *r, int status, const char *title, const char *text)
{
    kl_buf b;
    kl_buf_init(&b, KL_MAX_WEBPAGE_BYTES);
    int err = kl_buf_append_str(&b, status >= 400 ? "<p class=\"err\">" : "<p>");
    if (!err)
        err = kl_webpage_escape(&b, text);
    if (!err)
        err = kl_buf_append_str(&b, "</p>");
    kl_webpage_respond(r, status, NULL, title, err ? "" : b.data);
    kl_buf_free(&b);
}

void kl_webpage_redirect(kl_http_req *r, const char *location)
{
    static const char body[] = "Redirecting.";
    kl_webpage_headers(r, NULL);
    kl_http_set_header(r, "Location", location);
    kl_http_respond(r, 302, "text/plain; charset=utf-8", body, sizeof(body) - 1);
}

void kl_webpage_autopost(kl_http_req *r, const char *action, const char *action_origin,
                         const char *const *names, const char *const *values, size_t n)
{
    kl_buf body, html;
    kl_buf_init_secret(&body, KL_MAX_WEBPAGE_BYTES);
    kl_buf_init_secret(&html, KL_MAX_WEBPAGE_BYTES);
    int err =
        kl_buf_append_str(&body, "<p>Signing you in&hellip;</p><form method=\"post\" action=\"");
    if (!err)
        err = kl_webpage_escape(&body, action);
    if (!err)
        err = kl_buf_append_str(&body, "\">");
    for (size_t i = 0; !err && i < n; i++) {
        if (!values[i])
            continue;
        err = kl_buf_appendf(&body, "<input type=\"hidden\" name=\"%s\" value=\"", names[i]);
        if (!err)
            err = kl_webpage_escape(&body, values[i]);
        if (!err)
            err = kl_buf_append_str(&body, "\">");
    }
    if (!err)
        err = kl_buf_appendf(&body,
                             "<button type=\"submit\">Continue</button></form><script>%s</script>",
                             post_script);
    if (!err)
        err = kl_webpage_render(&html, "Signing in", body.data);
    if (err) {
        kl_webpage_message(r, 500, "Sign-in failed", "Something went wrong. Please try again.");
    } else {
        headers(r, action_origin, true);
        kl_http_respond(r, 200, "text/html; charset=utf-8", html.data, html.len);
    }
    kl_buf_free(&body);
    kl_buf_free(&html);
}
