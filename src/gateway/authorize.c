/* The authorization-code flow (see authorize.h): the authorize endpoint and its sign-in
 * page, the authorization_code grant, sign-out. The request is checked in this order:
 * client_id, redirect_uri (refusals so far are pages: never a redirect), then
 * response_type, response_mode, scope, state, PKCE, prompt (refusals go back to the
 * redirect URI). The form repeats every authorize parameter in hidden fields and is
 * checked again in full when it is posted, so no server-side state lives between the
 * page and its answer but the CSRF cookie. */
#include "gateway/authorize.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/util.h"
#include "directory/lockout.h"
#include "gateway/clientaddr.h"
#include "gateway/webpage.h"
#include "policy/appcreds.h"

#define SESSION_COOKIE "kl_session"
#define MAX_CODE 128 /* a code we issue is KL_WEBPAGE_TOKEN_LEN characters */
#define MAX_HINT 256

/* One authorize request's parameters, from the query (GET) or the posted form (POST);
 * borrowed from the request or the form. */
typedef struct authz {
    kl_gateway_sts *s;
    kl_http_req *r;
    const kl_snapshot *snap;
    const kl_form *f; /* POST: the form; NULL for GET */
    bool v1;
    int64_t now;
    const char *client_id, *redirect_uri, *response_type, *response_mode, *scope, *resource, *state,
        *nonce, *code_challenge, *code_challenge_method, *prompt, *login_hint;
    const kl_principal *app;
    bool form_post; /* response_mode=form_post: answers are posted, not put in the URL */
    char scope_buf[KL_MAX_AUTHZ_SCOPE + 1]; /* v1: the scope made from resource */
    char origin[KL_MAX_URL];                /* the redirect URI's origin, for the page's CSP */
} authz;

static const char *param(authz *z, const char *name)
{
    if (z->f)
        return kl_form_get(z->f, name, NULL);
    return kl_http_req_query_param(z->r, name);
}

static bool empty(const char *v)
{
    return !v || !*v;
}

/* ------------------------------------------------------------------ encoding */

/* Appends v percent-encoded (everything but RFC 3986 unreserved characters). */
static int url_encode(kl_buf *b, const char *v)
{
    static const char hex[] = "0123456789ABCDEF";
    int err = 0;
    for (const unsigned char *p = (const unsigned char *)v; *p && !err; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            err = kl_buf_append(b, p, 1);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            err = kl_buf_append(b, e, 3);
        }
    }
    return err;
}

static void sha256(const char *v, unsigned char out[32])
{
    unsigned int n = 0;
    if (EVP_Digest(v, strlen(v), out, &n, EVP_sha256(), NULL) != 1 || n != 32)
        memset(out, 0, 32); /* never matches a stored hash of a random value */
}

/* ------------------------------------------------------------------ answers */

/* A refusal before the redirect URI is trusted: a page, never a redirect. */
static void error_page(authz *z, int status, int code, const char *text)
{
    char msg[1024];
    snprintf(msg, sizeof(msg), "AADSTS%d: %s", code, text);
    kl_http_req_log_field(z->r, "authorize_error", msg);
    kl_webpage_message(z->r, status, "Sign-in failed", msg);
}

/* Sends the answer's fields (names[i] = values[i]; NULL values left out) back to the
 * trusted redirect URI: in its query (302), or posted by a page for form_post. */
static int deliver(authz *z, const char *const *names, const char *const *values, size_t n)
{
    if (z->form_post) {
        kl_webpage_autopost(z->r, z->redirect_uri, z->origin, names, values, n);
        return 0;
    }
    kl_buf b;
    kl_buf_init_secret(&b, 3 * KL_MAX_URL + 4 * KL_MAX_AUTHZ_STATE);
    int err = kl_buf_append_str(&b, z->redirect_uri);
    char sep = strchr(z->redirect_uri, '?') ? '&' : '?';
    for (size_t i = 0; !err && i < n; i++) {
        if (!values[i])
            continue;
        if (!(err = kl_buf_appendf(&b, "%c%s=", sep, names[i])))
            err = url_encode(&b, values[i]);
        sep = '&';
    }
    if (!err)
        kl_webpage_redirect(z->r, b.data);
    kl_buf_free(&b);
    return err;
}

/* A refusal after it is: back to the redirect URI as Entra does (error,
 * error_description, state). */
static void error_redirect(authz *z, const char *error, int code, const char *text)
{
    char desc[1024], trace[KL_UUID_LEN + 1], corr[KL_UUID_LEN + 1];
    if (kl_uuid_v4(trace) != 0)
        snprintf(trace, sizeof(trace), "00000000-0000-0000-0000-000000000000");
    kl_sts_correlation_id(z->r, corr);
    snprintf(desc, sizeof(desc), "AADSTS%d: %s Trace ID: %s Correlation ID: %s", code, text, trace,
             corr);
    kl_http_req_log_field(z->r, "authorize_error", error);
    const char *const names[] = {"error", "error_description", "state"};
    const char *const values[] = {error, desc, empty(z->state) ? NULL : z->state};
    if (deliver(z, names, values, 3) != 0)
        kl_webpage_message(z->r, 500, "Sign-in failed", "Something went wrong. Please try again.");
}

/* ------------------------------------------------------------------ validation */

/* True for a PKCE code challenge or verifier: 43..128 of [A-Za-z0-9-._~] (RFC 7636). */
static bool pkce_value(const char *v)
{
    size_t n = v ? strnlen(v, KL_MAX_PKCE_VERIFIER + 1) : 0;
    if (n < 43 || n > KL_MAX_PKCE_VERIFIER)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_' || c == '~'))
            return false;
    }
    return true;
}

static bool printable(const char *v, size_t max)
{
    size_t n = strnlen(v, max + 1);
    if (n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
            return false;
    return true;
}

/* Checks client_id and redirect_uri; answers a page and returns false when either is
 * wrong. */
static bool check_client(authz *z)
{
    char msg[700];
    if (empty(z->client_id)) {
        error_page(z, 400, 900144,
                   "The request body must contain the following parameter: 'client_id'.");
        return false;
    }
    z->app = kl_uuid_valid(z->client_id, strlen(z->client_id))
                 ? kl_snapshot_principal_by_app_id(z->snap, z->client_id)
                 : NULL;
    if (!z->app || z->app->type != KL_PRINCIPAL_SERVICE_PRINCIPAL) {
        snprintf(msg, sizeof(msg),
                 "Application with identifier '%s' was not found in the directory '%s'.",
                 kl_sts_echo(z->client_id), kl_snapshot_tenant_id(z->snap));
        error_page(z, 400, 700016, msg);
        return false;
    }
    if (!z->app->enabled) {
        snprintf(msg, sizeof(msg), "Application '%s' is disabled.", z->app->app_id);
        error_page(z, 400, 7000112, msg);
        return false;
    }
    if (empty(z->redirect_uri)) {
        error_page(z, 400, 900144,
                   "The request body must contain the following parameter: 'redirect_uri'.");
        return false;
    }
    if (!kl_appcreds_redirect_ok(kl_snapshot_appcreds(z->snap), z->app->app_id, z->redirect_uri) ||
        kl_webpage_origin(z->redirect_uri, z->origin, sizeof(z->origin)) != 0) {
        snprintf(msg, sizeof(msg),
                 "The redirect URI '%s' specified in the request does not match the redirect "
                 "URIs configured for the application '%s'.",
                 kl_sts_echo(z->redirect_uri), z->app->app_id);
        error_page(z, 400, 50011, msg);
        return false;
    }
    return true;
}

/* The rest of the request, once the redirect URI is trusted; refusals are redirected. */
static bool check_request(authz *z)
{
    char resource[KL_MAX_URL];
    if (empty(z->response_type) || strcmp(z->response_type, "code") != 0) {
        error_redirect(z, "unsupported_response_type", 700054, "The response_type must be 'code'.");
        return false;
    }
    if (!empty(z->response_mode) && strcmp(z->response_mode, "query") != 0 &&
        strcmp(z->response_mode, "form_post") != 0) {
        error_redirect(z, "invalid_request", 900144,
                       "The response_mode must be 'query' or 'form_post'.");
        return false;
    }
    z->form_post = !empty(z->response_mode) && strcmp(z->response_mode, "form_post") == 0;
    /* v1 names the resource on its own; its scope is that resource's /.default. */
    const char *scope = z->scope;
    if (z->v1 && !empty(z->resource)) {
        int n = snprintf(z->scope_buf, sizeof(z->scope_buf), "%s/.default%s%s", z->resource,
                         empty(z->scope) ? "" : " ", empty(z->scope) ? "" : z->scope);
        scope = n > 0 && (size_t)n < sizeof(z->scope_buf) ? z->scope_buf : NULL;
    }
    if (empty(scope) || strlen(scope) > KL_MAX_AUTHZ_SCOPE ||
        !printable(scope, KL_MAX_AUTHZ_SCOPE) ||
        kl_sts_scope_parse(scope, resource, sizeof(resource), NULL, NULL) != 0) {
        error_redirect(z, "invalid_scope", 70011,
                       "The provided value for the input parameter 'scope' is not valid.");
        return false;
    }
    z->scope = scope;
    if ((z->state && !printable(z->state, KL_MAX_AUTHZ_STATE)) ||
        (z->nonce && !printable(z->nonce, KL_MAX_AUTHZ_NONCE))) {
        z->state = NULL; /* not echoed back: it is what is wrong */
        error_redirect(z, "invalid_request", 900144, "The state or nonce parameter is too long.");
        return false;
    }
    if (!empty(z->code_challenge)) {
        /* Without a method the challenge would be "plain": refused, as is "plain". */
        if (empty(z->code_challenge_method) || strcmp(z->code_challenge_method, "S256") != 0) {
            error_redirect(z, "invalid_request", 50149,
                           "Invalid Code_Challenge_method parameter: only S256 is accepted.");
            return false;
        }
        if (!pkce_value(z->code_challenge) || strlen(z->code_challenge) != 43) {
            error_redirect(z, "invalid_request", 501491,
                           "Invalid size of Code_Challenge parameter.");
            return false;
        }
    } else if (kl_appcreds_public_client(kl_snapshot_appcreds(z->snap), z->app->app_id)) {
        error_redirect(z, "invalid_request", 9002325,
                       "Proof Key for Code Exchange is required for public clients: send "
                       "code_challenge with code_challenge_method=S256.");
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------ codes and sessions */

/* Issues a code for user (signed in at auth_time in session sid) and redirects to the
 * client with it. */
static void issue_code(authz *z, const char *user_oid, const char *sid, int64_t auth_time)
{
    char code[KL_WEBPAGE_TOKEN_LEN + 1];
    unsigned char hash[32];
    int err = kl_webpage_token(code);
    if (!err) {
        sha256(code, hash);
        kl_store_authcode c = {.client_id = (char *)z->app->app_id,
                               .user_oid = (char *)user_oid,
                               .redirect_uri = (char *)z->redirect_uri,
                               .scope = (char *)z->scope,
                               .code_challenge =
                                   empty(z->code_challenge) ? NULL : (char *)z->code_challenge,
                               .nonce = empty(z->nonce) ? NULL : (char *)z->nonce,
                               .session_id = (char *)sid,
                               .auth_time = auth_time,
                               .created_at = z->now,
                               .expires_at = z->now + KL_AUTHCODE_LIFETIME_S};
        err = kl_store_put_authcode(z->s->store, hash, &c, z->now);
    }
    if (!err) {
        kl_http_req_log_field(z->r, "client_id", z->app->app_id);
        kl_http_req_log_field(z->r, "user", user_oid);
        const char *const names[] = {"code", "state", "session_state"};
        const char *const values[] = {code, empty(z->state) ? NULL : z->state, sid};
        err = deliver(z, names, values, 3);
    }
    OPENSSL_cleanse(code, sizeof(code));
    if (err) {
        kl_log(KL_LOG_ERROR, "authorize_code_failed", "error", kl_err_str(err), NULL);
        kl_webpage_message(z->r, 503, "Sign-in failed",
                           "Sign-in is not available right now. Please try again.");
    }
}

/* The live session of r's kl_session cookie whose user is enabled, or NULL. */
static kl_store_session *current_session(authz *z)
{
    char v[KL_WEBPAGE_TOKEN_LEN + 2];
    unsigned char hash[32];
    kl_store_session *sess = NULL;
    if (kl_webpage_cookie(z->r, SESSION_COOKIE, v, sizeof(v)) != 0 || !kl_webpage_token_valid(v))
        return NULL;
    sha256(v, hash);
    OPENSSL_cleanse(v, sizeof(v));
    if (kl_store_get_session(z->s->store, hash, z->now, &sess) != 0)
        return NULL;
    const kl_principal *u = kl_snapshot_principal(z->snap, sess->user_oid);
    if (!u || u->type != KL_PRINCIPAL_USER || !u->enabled) {
        kl_store_session_free(sess);
        return NULL;
    }
    return sess;
}

/* ------------------------------------------------------------------ the sign-in page */

static int hidden(kl_buf *b, const char *name, const char *value)
{
    if (empty(value))
        return 0;
    int err = kl_buf_appendf(b, "<input type=\"hidden\" name=\"%s\" value=\"", name);
    if (!err)
        err = kl_webpage_escape(b, value);
    if (!err)
        err = kl_buf_append_str(b, "\">");
    return err;
}

/* Shows the sign-in form (with error, a line of text, when not NULL), now or after
 * delay_ms. */
static void sign_in_page(authz *z, int status, const char *error, const char *username,
                         uint32_t delay_ms)
{
    char csrf[KL_WEBPAGE_TOKEN_LEN + 1];
    kl_buf b;
    kl_buf_init(&b, KL_MAX_WEBPAGE_BYTES);
    int err = kl_webpage_csrf_issue(z->r, csrf);
    if (!err && error) {
        err = kl_buf_append_str(&b, "<p class=\"err\" role=\"alert\">");
        if (!err)
            err = kl_webpage_escape(&b, error);
        if (!err)
            err = kl_buf_append_str(&b, "</p>");
    }
    if (!err)
        err = kl_buf_append_str(&b, "<p class=\"note\">to continue to <strong>");
    if (!err)
        err = kl_webpage_escape(&b, z->app->display_name ? z->app->display_name : z->app->app_id);
    if (!err)
        err = kl_buf_append_str(&b, "</strong></p><form method=\"post\" action=\"");
    if (!err)
        err = kl_webpage_escape(&b, kl_http_req_path(z->r));
    if (!err)
        err = kl_buf_append_str(&b, "\">");
    if (!err)
        err = hidden(&b, KL_WEBPAGE_CSRF_FIELD, csrf);
    const char *const names[] = {
        "client_id", "redirect_uri", "response_type",  "response_mode",         "scope", "resource",
        "state",     "nonce",        "code_challenge", "code_challenge_method", "prompt"};
    const char *const values[] = {z->client_id,
                                  z->redirect_uri,
                                  z->response_type,
                                  z->response_mode,
                                  z->v1 ? NULL : z->scope,
                                  z->resource,
                                  z->state,
                                  z->nonce,
                                  z->code_challenge,
                                  z->code_challenge_method,
                                  z->prompt};
    for (size_t i = 0; !err && i < sizeof(names) / sizeof(names[0]); i++)
        err = hidden(&b, names[i], values[i]);
    /* v1 carries the caller's own scope (if any) beside its resource. */
    if (!err && z->v1)
        err = hidden(&b, "scope", param(z, "scope"));
    if (!err)
        err = kl_buf_append_str(&b, "<label for=\"username\">Email or user name</label><input "
                                    "id=\"username\" name=\"username\" type=\"text\" "
                                    "autocomplete=\"username\" autocapitalize=\"none\" "
                                    "spellcheck=\"false\" required value=\"");
    if (!err)
        err = kl_webpage_escape(&b, username);
    if (!err)
        err = kl_buf_append_str(&b, "\"><label for=\"password\">Password</label><input "
                                    "id=\"password\" name=\"password\" type=\"password\" "
                                    "autocomplete=\"current-password\" required><button "
                                    "type=\"submit\">Sign in</button></form>");
    OPENSSL_cleanse(csrf, sizeof(csrf));
    if (err)
        kl_webpage_message(z->r, 500, "Sign in", "Something went wrong. Please try again.");
    else
        kl_webpage_respond_later(z->r, delay_ms, status, z->origin, "Sign in", b.data);
    kl_buf_free(&b);
}

/* The posted form: CSRF, then the password, then a session and a code. */
static void sign_in_post(authz *z)
{
    const char *username = param(z, "username");
    const char *password = param(z, "password");
    if (!kl_webpage_csrf_check(z->r, param(z, KL_WEBPAGE_CSRF_FIELD))) {
        /* Not sent by our own page (or its cookie is gone): nothing is checked, the
         * password is not even read. A fresh page lets a person try again. */
        kl_http_req_log_field(z->r, "authorize_error", "csrf");
        sign_in_page(z, 403, "This sign-in page has expired. Please sign in again.", username, 0);
        return;
    }
    if (empty(username) || !password || strnlen(username, KL_MAX_UPN + 1) > KL_MAX_UPN) {
        sign_in_page(z, 400, "Enter your user name and password.", username, 0);
        return;
    }
    /* The name is the lockout's to protect (in the store: every node); the address is
     * this node's throttle's, decided before any Argon2 work, so that one address can
     * neither spray a password over many names nor spend the node's CPU on hashes
     * (security.md T9). The caller's address, not a trusted proxy's: behind a proxy,
     * one sprayer must not lock every user out (gateway/clientaddr.h). */
    char addr[KL_MAX_NETRULE_TEXT + 1];
    kl_clientaddr_text(z->s->trusted_proxies, z->r, addr, sizeof(addr));
    size_t al = strlen(addr);
    int64_t retry = 0;
    if (kl_throttle_check(z->s->pw_throttle, addr, al, addr, al, (int64_t)kl_now_mono_ms(),
                          &retry) == KL_EPERM) {
        char ra[24], msg[160];
        snprintf(ra, sizeof(ra), "%lld", (long long)retry);
        snprintf(msg, sizeof(msg),
                 "Too many failed sign-in attempts from this address. Try again in %lld "
                 "seconds.",
                 (long long)retry);
        kl_http_set_header(z->r, "Retry-After", ra);
        kl_http_req_log_field(z->r, "throttled", "password");
        sign_in_page(z, 429, msg, username, 0);
        return;
    }
    kl_lockout_result res = KL_LOCKOUT_WRONG;
    uint32_t delay = 0;
    kl_lockout_user user = {0};
    int err = kl_lockout_verify_password(z->s->store, username, password, strlen(password), z->now,
                                         &res, &delay, &user);
    if (err) {
        kl_log(KL_LOG_ERROR, "authorize_password_check_failed", "error", kl_err_str(err), NULL);
        kl_webpage_message(z->r, 503, "Sign-in failed",
                           "Sign-in is not available right now. Please try again.");
        return;
    }
    kl_http_req_log_field(z->r, "signin", kl_lockout_result_name(res));
    if (res == KL_LOCKOUT_OK)
        kl_throttle_succeeded(z->s->pw_throttle, addr, al, addr, al, (int64_t)kl_now_mono_ms());
    else if (res != KL_LOCKOUT_DISABLED)
        kl_throttle_failed(z->s->pw_throttle, addr, al, addr, al, (int64_t)kl_now_mono_ms());
    switch (res) {
    case KL_LOCKOUT_OK: break;
    case KL_LOCKOUT_WRONG:
        /* One text for a wrong password and for a name that does not exist. */
        sign_in_page(z, 400, "Your account or password is incorrect.", username, delay);
        return;
    case KL_LOCKOUT_LOCKED:
        sign_in_page(z, 400,
                     "Your account is temporarily locked to prevent unauthorized use. Try again "
                     "later.",
                     username, delay);
        return;
    case KL_LOCKOUT_DISABLED:
        sign_in_page(z, 400, "Your account has been disabled. Contact your administrator.",
                     username, delay);
        return;
    }
    if (user.force_change) {
        sign_in_page(z, 400,
                     "You must change your password before you can sign in. Ask your "
                     "administrator to reset it.",
                     username, 0);
        return;
    }
    /* A new session (a new cookie) for every password sign-in: a session fixed by
     * someone else's cookie never becomes a signed-in one. */
    char sid[KL_UUID_LEN + 1], cookie[KL_WEBPAGE_TOKEN_LEN + 1];
    unsigned char hash[32];
    err = kl_uuid_v4(sid);
    if (!err)
        err = kl_webpage_token(cookie);
    if (!err) {
        sha256(cookie, hash);
        kl_store_session sess = {.id = sid,
                                 .user_oid = user.object_id,
                                 .auth_time = z->now,
                                 .created_at = z->now,
                                 .expires_at = z->now + KL_SIGNIN_SESSION_S};
        err = kl_store_put_session(z->s->store, hash, &sess, z->now);
    }
    if (!err)
        err = kl_webpage_set_cookie(z->r, SESSION_COOKIE, cookie, KL_SIGNIN_SESSION_S);
    OPENSSL_cleanse(cookie, sizeof(cookie));
    if (err) {
        kl_log(KL_LOG_ERROR, "authorize_session_failed", "error", kl_err_str(err), NULL);
        kl_webpage_message(z->r, 503, "Sign-in failed",
                           "Sign-in is not available right now. Please try again.");
        return;
    }
    issue_code(z, user.object_id, sid, z->now);
}

static bool form_body(kl_http_req *r)
{
    const char *ct = kl_http_req_header(r, "content-type");
    return ct && kl_str_istarts(ct, "application/x-www-form-urlencoded");
}

void kl_authorize_handle(kl_gateway_sts *s, kl_http_req *r, const kl_snapshot *snap)
{
    /* v1 is the path without a version: /{tenant}/oauth2/authorize (any case, as routed). */
    static const char v1_tail[] = "/oauth2/authorize";
    const char *path = kl_http_req_path(r);
    size_t pl = strlen(path), tl = sizeof(v1_tail) - 1;
    bool v1 = pl >= tl && kl_str_ieq(path + pl - tl, v1_tail);
    kl_form *f = NULL;
    authz *z = calloc(1, sizeof(*z));
    const char *m = kl_http_req_method(r);
    bool post = strcmp(m, "POST") == 0;
    if (!z) {
        kl_webpage_message(r, 503, "Sign-in failed", "Please try again.");
        return;
    }
    if (!post && strcmp(m, "GET") != 0) {
        kl_http_set_header(r, "Allow", "GET, POST");
        kl_webpage_message(r, 405, "Sign-in failed", "Use GET or POST.");
        goto out;
    }
    if (post) {
        size_t blen = 0;
        const unsigned char *b = kl_http_req_body(r, &blen);
        if (!form_body(r) || kl_form_parse((const char *)b, blen, &f, NULL, 0) != KL_FORM_OK) {
            kl_webpage_message(r, 400, "Sign-in failed", "The form could not be read.");
            goto out;
        }
    }
    *z = (authz){.s = s, .r = r, .snap = snap, .f = f, .v1 = v1, .now = kl_now_unix()};
    z->client_id = param(z, "client_id");
    z->redirect_uri = param(z, "redirect_uri");
    z->response_type = param(z, "response_type");
    z->response_mode = param(z, "response_mode");
    z->scope = param(z, "scope");
    z->resource = v1 ? param(z, "resource") : NULL;
    z->state = param(z, "state");
    z->nonce = param(z, "nonce");
    z->code_challenge = param(z, "code_challenge");
    z->code_challenge_method = param(z, "code_challenge_method");
    z->prompt = param(z, "prompt");
    z->login_hint = param(z, "login_hint");
    if (!check_client(z) || !check_request(z))
        goto out;
    if (post) {
        sign_in_post(z);
        goto out;
    }
    bool force_login = !empty(z->prompt) && strcmp(z->prompt, "login") == 0;
    kl_store_session *sess = force_login ? NULL : current_session(z);
    if (sess) {
        issue_code(z, sess->user_oid, sess->id, sess->auth_time);
        kl_store_session_free(sess);
        goto out;
    }
    if (!empty(z->prompt) && strcmp(z->prompt, "none") == 0) {
        error_redirect(z, "login_required", 50058,
                       "A silent sign-in request was sent but no user is signed in.");
        goto out;
    }
    const char *hint = z->login_hint && printable(z->login_hint, MAX_HINT) ? z->login_hint : "";
    sign_in_page(z, 200, NULL, hint, 0);
out:
    kl_form_free(f);
    free(z);
}

/* ------------------------------------------------------------------ the grant */

void kl_authorize_redeem(kl_sts_grant *g)
{
    const char *code = kl_form_get(g->f, "code", NULL);
    const char *redirect_uri = kl_form_get(g->f, "redirect_uri", NULL);
    const char *verifier = kl_form_get(g->f, "code_verifier", NULL);
    kl_store_authcode *c = NULL;
    unsigned char hash[32], want[32];
    g->a->credential = "authorization_code";
    if (empty(code)) {
        kl_sts_error(g->a, g->r, 400, "invalid_request", 900144,
                     "The request body must contain the following parameter: 'code'.");
        return;
    }
    if (strnlen(code, MAX_CODE + 1) > MAX_CODE) {
        kl_sts_error(g->a, g->r, 400, "invalid_grant", 9002313,
                     "Invalid request. Request is malformed or invalid.");
        return;
    }
    sha256(code, hash);
    int err = kl_store_redeem_authcode(g->s->store, hash, g->now, &c);
    switch (err) {
    case 0: break;
    case KL_ENOTFOUND:
        kl_sts_error(g->a, g->r, 400, "invalid_grant", 9002313,
                     "Invalid request. Request is malformed or invalid.");
        return;
    case KL_ECONFLICT:
        kl_sts_error(g->a, g->r, 400, "invalid_grant", 54005,
                     "OAuth2 Authorization code was already redeemed, please retry with a new "
                     "valid code or use an existing refresh token.");
        return;
    case KL_EPERM:
        kl_sts_error(g->a, g->r, 400, "invalid_grant", 70008,
                     "The provided authorization code or refresh token has expired due to "
                     "inactivity. Send a new interactive authorization request for this user and "
                     "resource.");
        return;
    default:
        kl_log(KL_LOG_ERROR, "authorize_redeem_failed", "error", kl_err_str(err), NULL);
        kl_sts_unavailable(g->a, g->r);
        return;
    }
    /* The code is spent from here on, whatever follows: a code presented with the wrong
     * verifier or by the wrong client is burnt rather than left for a second guess. */
    if (!kl_str_ieq(c->client_id, g->client->app_id)) {
        kl_sts_error(g->a, g->r, 400, "invalid_grant", 70000,
                     "The provided value for the 'code' parameter is not valid: it was issued "
                     "to another client.");
        goto out;
    }
    if (empty(redirect_uri) || strcmp(redirect_uri, c->redirect_uri) != 0) {
        kl_sts_error(g->a, g->r, 400, "invalid_grant", 70000,
                     "The provided value for the input parameter 'redirect_uri' is not valid. It "
                     "must be the redirect URI the authorization code was issued for.");
        goto out;
    }
    if (c->code_challenge) {
        char enc[48];
        bool ok = pkce_value(verifier);
        if (ok) {
            sha256(verifier, want);
            ok = kl_b64url_encode(want, sizeof(want), enc, sizeof(enc)) == 43 &&
                 CRYPTO_memcmp(enc, c->code_challenge, 43) == 0 && strlen(c->code_challenge) == 43;
        }
        if (!ok) {
            kl_sts_error(g->a, g->r, 400, "invalid_grant", 501481,
                         "The Code_Verifier does not match the code_challenge supplied in the "
                         "authorization request.");
            goto out;
        }
    }
    /* Signed out between the page and the redemption: the session's grants are gone. */
    bool live = true;
    if (c->session_id && (err = kl_store_session_live(g->s->store, c->session_id, g->now, &live))) {
        kl_sts_unavailable(g->a, g->r);
        goto out;
    }
    if (!live) {
        kl_sts_error(g->a, g->r, 400, "invalid_grant", 50173,
                     "The provided grant has expired due to it being revoked, a fresh auth token "
                     "is needed. The user might have signed out.");
        goto out;
    }
    kl_sts_user u = {.user_oid = c->user_oid,
                     .scope = c->scope,
                     .amr = "pwd",
                     .nonce = c->nonce,
                     .session_id = c->session_id,
                     .auth_time = c->auth_time};
    kl_sts_issue_user(g, &u);
out:
    kl_store_authcode_free(c);
}

/* ------------------------------------------------------------------ sign-out */

void kl_authorize_logout(kl_gateway_sts *s, kl_http_req *r, const kl_snapshot *snap)
{
    char v[KL_WEBPAGE_TOKEN_LEN + 2];
    unsigned char hash[32];
    kl_store_session *sess = NULL;
    int64_t now = kl_now_unix();
    int err = 0;
    /* HEAD is safe (RFC 9110 9.2.1): link checkers and prefetchers send it, and a
     * sign-out is the user's own act. The answer says so and changes nothing. */
    if (strcmp(kl_http_req_method(r), "HEAD") == 0) {
        kl_webpage_message(r, 200, "Sign out", "Open this address to sign out.");
        return;
    }
    if (kl_webpage_cookie(r, SESSION_COOKIE, v, sizeof(v)) == 0 && kl_webpage_token_valid(v)) {
        sha256(v, hash);
        err = kl_store_get_session(s->store, hash, now, &sess);
        if (err == KL_ENOTFOUND)
            err = 0;
    }
    OPENSSL_cleanse(v, sizeof(v));
    /* Refresh tokens first: were the session revoked and this failed, the tokens would
     * outlive a sign-out the user was told had happened. */
    if (!err && sess && !(err = kl_store_refresh_revoke_session(s->store, sess->id)))
        err = kl_store_revoke_session(s->store, sess->id, now);
    if (sess)
        kl_http_req_log_field(r, "session", sess->id);
    kl_store_session_free(sess);
    if (err) {
        kl_log(KL_LOG_ERROR, "logout_failed", "error", kl_err_str(err), NULL);
        kl_webpage_message(r, 503, "Sign-out failed",
                           "You could not be signed out right now. Please try again.");
        return;
    }
    kl_webpage_set_cookie(r, SESSION_COOKIE, "", 0);
    /* Only back to an address some application registered (the one named by client_id):
     * anything else would make this an open redirect. */
    const char *to = kl_http_req_query_param(r, "post_logout_redirect_uri");
    const char *client = kl_http_req_query_param(r, "client_id");
    const char *state = kl_http_req_query_param(r, "state");
    if (!empty(to) && !empty(client) &&
        kl_appcreds_redirect_ok(kl_snapshot_appcreds(snap), client, to)) {
        kl_buf b;
        kl_buf_init(&b, 3 * KL_MAX_URL + 4 * KL_MAX_AUTHZ_STATE);
        err = kl_buf_append_str(&b, to);
        if (!err && !empty(state) && printable(state, KL_MAX_AUTHZ_STATE) &&
            !(err = kl_buf_append_str(&b, strchr(to, '?') ? "&state=" : "?state=")))
            err = url_encode(&b, state);
        if (!err) {
            kl_webpage_redirect(r, b.data);
            kl_buf_free(&b);
            return;
        }
        kl_buf_free(&b);
    }
    kl_webpage_message(r, 200, "Signed out", "You have signed out. You can close this window.");
}
