/* The device-code flow (see devicecode.h): the devicecode endpoint, the verification
 * page at /devicelogin, and the device_code grant the client polls. The page is outside
 * any tenant, like microsoft.com/devicelogin: the user code alone names the sign-in, and
 * keyless has one tenant. */
#include "gateway/devicecode.h"
#include "gateway/sts_internal.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <pthread.h>
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
#include "token/form.h"
#include "token/throttle.h"

#define PAGE_PATH "/devicelogin"
/* Consonants only (RFC 8628 §6.1's example set): no vowels, so no words, and no digits,
 * so nothing to misread between 0 and O or 1 and I; 20 of them. */
static const char alphabet[] = "BCDFGHJKLMNPQRSTVWXZ";
#define ALPHABET_LEN 20
#define PAGE_MAX (64 * 1024) /* a page's body markup */
#define MAX_PAGE_FIELD 256   /* longest user code or user name taken from the page's form */
#define CREATE_TRIES 4       /* user codes drawn before giving up on collisions */

typedef struct poll_slot {
    uint64_t key;   /* from the code's hash; 0: empty */
    uint64_t at_ms; /* monotonic time of the last poll that reached the store */
} poll_slot;

struct kl_devicecode {
    int64_t lifetime_s;
    kl_throttle *guesses; /* wrong user codes, per source address */
    pthread_mutex_t mu;   /* guards polls */
    poll_slot polls[KL_DEVICE_CODE_POLL_SLOTS];
};

int kl_devicecode_new(int64_t lifetime_s, kl_devicecode **out)
{
    *out = NULL;
    if (lifetime_s == 0)
        lifetime_s = KL_DEVICE_CODE_LIFETIME_S;
    if (lifetime_s < KL_DEVICE_CODE_MIN_LIFETIME_S || lifetime_s > KL_DEVICE_CODE_MAX_LIFETIME_S)
        return KL_EINVAL;
    kl_devicecode *d = calloc(1, sizeof(*d));
    if (!d)
        return KL_ENOMEM;
    d->lifetime_s = lifetime_s;
    pthread_mutex_init(&d->mu, NULL);
    int err = kl_throttle_new(KL_DEVICE_GUESS_ENTRIES, &d->guesses);
    if (err) {
        kl_devicecode_free(d);
        return err;
    }
    *out = d;
    return 0;
}

void kl_devicecode_free(kl_devicecode *d)
{
    if (!d)
        return;
    kl_throttle_free(d->guesses);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

/* ------------------------------------------------------------------ codes */

static void code_hash(const char *device_code, size_t n, unsigned char out[SHA256_DIGEST_LENGTH])
{
    SHA256((const unsigned char *)device_code, n, out);
}

/* KL_USER_CODE_LEN letters of the alphabet, uniformly (bytes >= 240 are redrawn). */
static int new_user_code(char out[KL_USER_CODE_LEN + 1])
{
    size_t have = 0;
    while (have < KL_USER_CODE_LEN) {
        unsigned char r[16];
        if (kl_random_id(r, sizeof(r)) != 0)
            return KL_ECRYPTO;
        for (size_t i = 0; i < sizeof(r) && have < KL_USER_CODE_LEN; i++)
            if (r[i] < 240)
                out[have++] = alphabet[r[i] % ALPHABET_LEN];
        OPENSSL_cleanse(r, sizeof(r));
    }
    out[KL_USER_CODE_LEN] = '\0';
    return 0;
}

/* The user code as a person may type it ("bcdf-ghjk", "BCDF GHJK") in the stored form;
 * false when it cannot be one. */
static bool normalise_user_code(const char *in, char out[KL_USER_CODE_LEN + 1])
{
    size_t have = 0;
    if (!in)
        return false;
    for (size_t i = 0; in[i] && i < MAX_PAGE_FIELD; i++) {
        char c = in[i];
        if (c == '-' || c == ' ')
            continue;
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        if (have == KL_USER_CODE_LEN || c == '\0' || !strchr(alphabet, c))
            return false;
        out[have++] = c;
    }
    out[have] = '\0';
    return have == KL_USER_CODE_LEN;
}

/* "BCDFGHJK" -> "BCDF-GHJK". */
static void show_user_code(const char *u, char out[KL_USER_CODE_LEN + 2])
{
    snprintf(out, KL_USER_CODE_LEN + 2, "%.4s-%.4s", u, u + 4);
}

/* True when this poll comes too soon after the code's last one on this node; otherwise
 * records it. A slot holds one code: a collision forgets the other code's poll, which
 * only makes the rule more lenient. */
static bool poll_too_fast(kl_devicecode *d, const unsigned char h[SHA256_DIGEST_LENGTH],
                          uint64_t now_ms)
{
    uint64_t key;
    uint32_t idx;
    memcpy(&key, h, sizeof(key));
    memcpy(&idx, h + sizeof(key), sizeof(idx));
    key |= 1; /* never the empty slot's 0 */
    poll_slot *p = &d->polls[idx % KL_DEVICE_CODE_POLL_SLOTS];
    const uint64_t gap = KL_DEVICE_CODE_INTERVAL_S * 1000 - KL_DEVICE_CODE_POLL_SLACK_MS;
    pthread_mutex_lock(&d->mu);
    bool fast = p->key == key && now_ms >= p->at_ms && now_ms - p->at_ms < gap;
    if (!fast) {
        p->key = key;
        p->at_ms = now_ms;
    }
    pthread_mutex_unlock(&d->mu);
    return fast;
}

/* ------------------------------------------------------------------ devicecode endpoint */

static bool form_body(kl_http_req *r)
{
    const char *ct = kl_http_req_header(r, "content-type");
    return ct && kl_str_istarts(ct, "application/x-www-form-urlencoded");
}

/* Parses r's form body; answers Entra's refusal (a: NULL) and returns NULL when it is
 * not one. */
static kl_form *sts_form(kl_http_req *r)
{
    kl_form *f = NULL;
    size_t blen = 0;
    const unsigned char *b = kl_http_req_body(r, &blen);
    char dup[64] = "";
    kl_form_reason fr = form_body(r) ? kl_form_parse((const char *)b, blen, &f, dup, sizeof(dup))
                                     : kl_form_parse("", 0, &f, NULL, 0);
    if (fr == KL_FORM_DUPLICATE) {
        kl_sts_error(NULL, r, 400, "invalid_request", 90015,
                     "The request contains the parameter '%s' more than once.", kl_sts_echo(dup));
        kl_form_free(f);
        return NULL;
    }
    if (fr != KL_FORM_OK) {
        kl_sts_error(NULL, r, 400, "invalid_request", 900144,
                     "The request body must be application/x-www-form-urlencoded (%s).",
                     kl_form_reason_str(fr));
        kl_form_free(f);
        return NULL;
    }
    return f;
}

/* The public client asking for a device code, or NULL (answered). */
static const kl_principal *device_client(kl_http_req *r, const kl_snapshot *snap, const kl_form *f)
{
    const char *tid = kl_snapshot_tenant_id(snap);
    const char *id = kl_form_get(f, "client_id", NULL);
    if (!id || !*id) {
        kl_sts_error(NULL, r, 400, "invalid_request", 900144,
                     "The request body must contain the following parameter: 'client_id'.");
        return NULL;
    }
    const kl_principal *sp =
        kl_uuid_valid(id, strlen(id)) ? kl_snapshot_principal_by_app_id(snap, id) : NULL;
    if (!sp || sp->type != KL_PRINCIPAL_SERVICE_PRINCIPAL) {
        kl_sts_error(NULL, r, 400, "unauthorized_client", 700016,
                     "Application with identifier '%s' was not found in the directory '%s'. This "
                     "can happen if the application has not been installed by the administrator "
                     "of the tenant or consented to by any user in the tenant. You may have sent "
                     "your authentication request to the wrong tenant.",
                     kl_sts_echo(id), tid);
        return NULL;
    }
    /* The device flow is a public client's (Entra: "Allow public client flows"); a
     * confidential app is told what Entra tells it at the token endpoint, before any
     * person is asked to sign in for a flow that cannot finish. */
    if (!kl_appcreds_public_client(kl_snapshot_appcreds(snap), sp->app_id)) {
        kl_sts_error(NULL, r, 401, "invalid_client", 7000218,
                     "The request body must contain the following parameter: 'client_assertion' "
                     "or 'client_secret'. The device code flow is open to public clients only.");
        return NULL;
    }
    if (kl_form_get(f, "client_secret", NULL) || kl_form_get(f, "client_assertion", NULL) ||
        kl_http_req_header(r, "authorization")) {
        kl_sts_error(NULL, r, 401, "invalid_client", 700025,
                     "Client is public so neither 'client_assertion' nor 'client_secret' should "
                     "be presented.");
        return NULL;
    }
    if (!sp->enabled) {
        kl_sts_error(NULL, r, 400, "unauthorized_client", 7000112,
                     "Application '%s'(%s) is disabled.", sp->app_id,
                     kl_sts_echo(sp->display_name));
        return NULL;
    }
    return sp;
}

/* The scope asked for: "scope", or on v1 a "resource" standing for "{resource}/.default"
 * (ADAL's form). Checked with kl_sts_scope_parse; false when answered. */
static bool device_scope(kl_http_req *r, const kl_form *f, bool v1, char *out, size_t outlen)
{
    const char *scope = kl_form_get(f, "scope", NULL);
    const char *resource = v1 ? kl_form_get(f, "resource", NULL) : NULL;
    int n = -1;
    if (scope && *scope)
        n = snprintf(out, outlen, "%s", scope);
    else if (resource && *resource)
        n = snprintf(out, outlen, "%s/.default", resource);
    else {
        kl_sts_error(NULL, r, 400, "invalid_request", 900144,
                     "The request body must contain the following parameter: '%s'.",
                     v1 ? "resource" : "scope");
        return false;
    }
    char res[512];
    bool openid = false, offline = false;
    if (n <= 0 || (size_t)n >= outlen ||
        kl_sts_scope_parse(out, res, sizeof(res), &openid, &offline) != 0) {
        kl_sts_error(NULL, r, 400, "invalid_scope", 70011,
                     "The provided value for the input parameter 'scope' is not valid. The scope "
                     "%s is not valid.",
                     kl_sts_echo(scope ? scope : resource));
        return false;
    }
    return true;
}

void kl_devicecode_issue(kl_gateway_sts *s, kl_http_req *r, const kl_snapshot *snap, bool v1)
{
    kl_form *f = sts_form(r);
    char scope[KL_DEVICE_SCOPE_MAX + 1], user_code[KL_USER_CODE_LEN + 1],
        shown[KL_USER_CODE_LEN + 2], uri[KL_MAX_URL], message[KL_MAX_URL + 128];
    char device_code[((KL_DEVICE_CODE_BYTES + 2) / 3) * 4 + 1];
    unsigned char raw[KL_DEVICE_CODE_BYTES], hash[SHA256_DIGEST_LENGTH];
    if (!f)
        return;
    const kl_principal *sp = device_client(r, snap, f);
    if (!sp || !device_scope(r, f, v1, scope, sizeof(scope)))
        goto out;
    int64_t now = kl_now_unix(), free_at = 0;
    _Static_assert(KL_MAX_DEVICE_CLIENT_ADDR >= KL_MAX_NETRULE_TEXT,
                   "a device code records the caller's address whole");
    char addr[KL_MAX_DEVICE_CLIENT_ADDR + 1] = "";
    kl_clientaddr_text(s->trusted_proxies, r, addr, sizeof(addr));
    kl_store_devicecode d = {.client_id = (char *)sp->app_id,
                             .scope = scope,
                             .client_addr = addr,
                             .created_at = now,
                             .expires_at = now + s->devicecode->lifetime_s};
    int err = KL_ECONFLICT;
    for (int i = 0; i < CREATE_TRIES && err == KL_ECONFLICT; i++) {
        if (kl_random_id(raw, sizeof(raw)) != 0 || new_user_code(user_code) != 0 ||
            kl_b64url_encode(raw, sizeof(raw), device_code, sizeof(device_code)) < 0) {
            err = KL_ECRYPTO;
            break;
        }
        code_hash(device_code, strlen(device_code), hash);
        d.user_code = user_code;
        err = s->store ? kl_store_devicecode_create(s->store, hash, &d, KL_DEVICE_CODE_KEEP_S,
                                                    KL_MAX_DEVICE_CODES_PER_ADDRESS, &free_at)
                       : KL_EUNAVAIL;
    }
    if (err == KL_ETOOBIG) {
        /* Entra's throttling answer, as the token endpoint's: the client may try again
         * once the first of this address's codes has expired, or sooner if one is used. */
        char ra[24];
        snprintf(ra, sizeof(ra), "%lld", (long long)(free_at > now ? free_at - now : 1));
        kl_http_set_header(r, "Retry-After", ra);
        kl_http_req_log_field(r, "throttled", "device_codes_per_address");
        kl_sts_error(
            NULL, r, 429, "temporarily_unavailable", 90055,
            "Too many device codes are waiting for sign-in from this address (at most " KL_STR(
                KL_MAX_DEVICE_CODES_PER_ADDRESS) "). Retry after %s seconds, or "
                                                 "finish or cancel a pending sign-in.",
            ra);
        goto out;
    }
    if (err) {
        kl_log(KL_LOG_ERROR, "devicecode_create_failed", "error", kl_err_str(err), NULL);
        kl_sts_unavailable(NULL, r);
        goto out;
    }
    show_user_code(user_code, shown);
    snprintf(uri, sizeof(uri), "%s" PAGE_PATH, s->base);
    snprintf(message, sizeof(message),
             "To sign in, use a web browser to open the page %s and enter the code %s to "
             "authenticate.",
             uri, shown);
    char corr[KL_UUID_LEN + 1];
    kl_sts_correlation_id(r, corr);
    kl_sts_no_store(r);
    kl_http_set_header(r, "client-request-id", corr);
    kl_http_req_log_field(r, "client_id", sp->app_id);
    json_t *body =
        json_pack("{s:s,s:s,s:s,s:I,s:i,s:s}", "device_code", device_code, "user_code", shown,
                  "verification_uri", uri, "expires_in", (json_int_t)s->devicecode->lifetime_s,
                  "interval", KL_DEVICE_CODE_INTERVAL_S, "message", message);
    /* ADAL (the v1 endpoint's clients) reads verification_url. */
    if (body && v1)
        json_object_set_new(body, "verification_url", json_string(uri));
    kl_http_respond_json(r, 200, body);
out:
    OPENSSL_cleanse(device_code, sizeof(device_code));
    OPENSSL_cleanse(raw, sizeof(raw));
    kl_form_free(f);
}

/* ------------------------------------------------------------------ the device_code grant */

/* The code was redeemed already (by an earlier poll, perhaps on another node). */
static void already_used(const kl_sts_audit *a, kl_http_req *r)
{
    kl_sts_error(a, r, 400, "invalid_grant", 70000,
                 "The provided value for the input parameter 'device_code' has already been "
                 "used.");
}

/* authorization_pending, never recorded in the sign-in log: a client polls every five
 * seconds for up to fifteen minutes, and a poll that is throttled must not reach the
 * store at all. */
static void pending(kl_http_req *r)
{
    kl_sts_error(NULL, r, 400, "authorization_pending", 70016,
                 "OAuth 2.0 device flow error. Authorization is pending. Continue polling.");
}

void kl_devicecode_redeem(kl_sts_grant *g)
{
    kl_http_req *r = g->r;
    kl_gateway_sts *s = g->s;
    kl_store_devicecode *d = NULL;
    unsigned char hash[SHA256_DIGEST_LENGTH];
    g->a->credential = "device_code";
    /* ADAL's v1 form names it "code". */
    const char *dc = kl_form_get(g->f, "device_code", NULL);
    if ((!dc || !*dc) && g->v1)
        dc = kl_form_get(g->f, "code", NULL);
    if (!dc || !*dc) {
        kl_sts_error(g->a, r, 400, "invalid_request", 900144,
                     "The request body must contain the following parameter: 'device_code'.");
        return;
    }
    size_t n = strnlen(dc, KL_MAX_DEVICE_CODE + 1);
    if (n > KL_MAX_DEVICE_CODE) {
        kl_sts_error(g->a, r, 400, "bad_verification_code", 70018,
                     "The provided value for the input parameter 'device_code' is not valid.");
        return;
    }
    code_hash(dc, n, hash);
    /* The too-fast rule: first this node's memory, then (for polls spread over nodes)
     * the store's last_poll, stamped in the same statement that reads the code. */
    if (poll_too_fast(s->devicecode, hash, kl_now_mono_ms())) {
        kl_http_req_log_field(r, "poll", "too_fast");
        pending(r);
        return;
    }
    int err = s->store ? kl_store_devicecode_poll(s->store, hash, g->now,
                                                  KL_DEVICE_CODE_INTERVAL_S - 1, &d)
                       : KL_EUNAVAIL;
    if (err == KL_EPERM) {
        kl_http_req_log_field(r, "poll", "too_fast_store");
        pending(r);
        goto out;
    }
    if (err == KL_ENOTFOUND || (!err && strcmp(d->client_id, g->client->app_id) != 0)) {
        kl_sts_error(g->a, r, 400, "bad_verification_code", 70018,
                     "The provided value for the input parameter 'device_code' is not valid: no "
                     "such code was issued to this client.");
        goto out;
    }
    if (err) {
        kl_sts_unavailable(g->a, r);
        goto out;
    }
    if (d->redeemed_at > 0) {
        already_used(g->a, r);
        goto out;
    }
    if (d->expires_at <= g->now) {
        kl_sts_error(g->a, r, 400, "expired_token", 70019,
                     "Verification code expired. Have the user retry the sign-in.");
        goto out;
    }
    switch (kl_store_dc_status_of(d)) {
    case KL_STORE_DC_PENDING: pending(r); goto out;
    case KL_STORE_DC_DECLINED:
        kl_sts_error(g->a, r, 400, "authorization_declined", 70000,
                     "The user declined the authorization request.");
        goto out;
    case KL_STORE_DC_APPROVED: break;
    }
    g->a->principal_id = d->user_oid;
    err = kl_store_devicecode_redeem(s->store, hash, g->now);
    if (err == KL_ECONFLICT) {
        already_used(g->a, r);
        goto out;
    }
    if (err) {
        kl_sts_unavailable(g->a, r);
        goto out;
    }
    kl_http_req_log_field(r, "device_code", "redeemed");
    kl_sts_user u = {.user_oid = d->user_oid,
                     .scope = d->scope,
                     .amr = "pwd",
                     .session_id = d->session_id,
                     .auth_time = d->auth_time};
    kl_sts_issue_user(g, &u);
out:
    kl_store_devicecode_free(d);
}

/* ------------------------------------------------------------------ the verification page */

bool kl_devicecode_page_matches(const char *path)
{
    return path && kl_str_ieq(path, PAGE_PATH);
}

static const char page_title[] = "Sign in to a device";

/* The verification page could not be built (no memory, or over its size limit). */
static void page_failed(kl_http_req *r)
{
    kl_webpage_message(r, 500, page_title, "The page could not be prepared. Try again.");
}

/* Sends the page built in b, or the failure page when err (a CSRF token, memory or the
 * size limit failed); frees b. */
static void page_send(kl_http_req *r, int err, kl_buf *b, int status, uint32_t delay_ms)
{
    if (err)
        page_failed(r);
    else
        kl_webpage_respond_later(r, delay_ms, status, NULL, page_title, b->data);
    kl_buf_free(b);
}

/* Appends the error line (when error is not NULL), then the form's opening tag and its
 * hidden CSRF field. */
static int form_open(kl_buf *b, const char *error, const char *csrf)
{
    int err = 0;
    if (error) {
        err = kl_buf_append_str(b, "<p class=\"err\" role=\"alert\">");
        if (!err)
            err = kl_webpage_escape(b, error);
        if (!err)
            err = kl_buf_append_str(b, "</p>");
    }
    if (!err)
        err = kl_buf_append_str(
            b, "<form method=\"post\"><input type=\"hidden\" name=\"" KL_WEBPAGE_CSRF_FIELD
               "\" value=\"");
    if (!err)
        err = kl_webpage_escape(b, csrf);
    if (!err)
        err = kl_buf_append_str(b, "\">");
    return err;
}

/* Step 1: the code. typed: what the person typed (shown again), or NULL. */
static void page_code(kl_http_req *r, int status, const char *typed, const char *error,
                      uint32_t delay_ms)
{
    char csrf[KL_WEBPAGE_TOKEN_LEN + 1];
    kl_buf b;
    kl_buf_init(&b, PAGE_MAX);
    int err = kl_webpage_csrf_issue(r, csrf);
    if (!err)
        err = kl_buf_append_str(&b, "<p>Enter the code displayed on your app or device.</p>");
    if (!err)
        err = form_open(&b, error, csrf);
    if (!err)
        err = kl_buf_appendf(&b,
                             "<label for=\"user_code\">Code</label>"
                             "<input id=\"user_code\" name=\"user_code\" type=\"text\" "
                             "autocomplete=\"off\" autocapitalize=\"characters\" "
                             "spellcheck=\"false\" maxlength=\"%d\" required autofocus value=\"",
                             KL_USER_CODE_TYPED_MAX);
    if (!err)
        err = kl_webpage_escape(&b, typed && strlen(typed) <= KL_USER_CODE_TYPED_MAX ? typed : "");
    if (!err)
        err = kl_buf_append_str(&b, "\"><button type=\"submit\" name=\"action\" "
                                    "value=\"next\">Next</button></form>");
    page_send(r, err, &b, status, delay_ms);
}

/* Step 2: who asks for what; sign in or decline. */
static void page_signin(kl_http_req *r, int status, const kl_snapshot *snap,
                        const kl_store_devicecode *d, const char *username, const char *error,
                        uint32_t delay_ms)
{
    char csrf[KL_WEBPAGE_TOKEN_LEN + 1], shown[KL_USER_CODE_LEN + 2];
    const kl_principal *app = kl_snapshot_principal_by_app_id(snap, d->client_id);
    kl_buf b;
    kl_buf_init(&b, PAGE_MAX);
    show_user_code(d->user_code, shown);
    int err = kl_webpage_csrf_issue(r, csrf);
    if (!err)
        err = kl_buf_append_str(&b, "<p><strong>");
    if (!err)
        err = kl_webpage_escape(&b, app && app->display_name ? app->display_name : d->client_id);
    if (!err)
        err = kl_buf_append_str(&b, "</strong> on another device is asking to sign in as "
                                    "you.</p><p>It asks for: <code>");
    if (!err)
        err = kl_webpage_escape(&b, d->scope);
    if (!err)
        err = kl_buf_append_str(&b, "</code></p><p>Continue only if you started this sign-in "
                                    "yourself, with the code <strong>");
    if (!err)
        err = kl_webpage_escape(&b, shown);
    if (!err)
        err = kl_buf_append_str(&b, "</strong>, on a device you trust.</p>");
    if (!err)
        err = form_open(&b, error, csrf);
    if (!err)
        err = kl_buf_append_str(&b, "<input type=\"hidden\" name=\"user_code\" value=\"");
    if (!err)
        err = kl_webpage_escape(&b, d->user_code);
    if (!err)
        err = kl_buf_append_str(&b, "\"><label for=\"username\">User name</label>"
                                    "<input id=\"username\" name=\"username\" type=\"text\" "
                                    "autocomplete=\"username\" autocapitalize=\"none\" "
                                    "spellcheck=\"false\" value=\"");
    if (!err)
        err = kl_webpage_escape(&b, username ? username : "");
    if (!err)
        err = kl_buf_append_str(
            &b, "\"><label for=\"password\">Password</label>"
                "<input id=\"password\" name=\"password\" type=\"password\" "
                "autocomplete=\"current-password\">"
                "<button type=\"submit\" name=\"action\" "
                "value=\"continue\">Continue</button> "
                "<button type=\"submit\" name=\"action\" value=\"cancel\" class=\"secondary\" "
                "formnovalidate>Cancel</button></form>");
    page_send(r, err, &b, status, delay_ms);
}

/* The code named by the form, pending and unexpired; NULL when answered (a wrong code
 * is counted against the address). */
static kl_store_devicecode *page_find(kl_gateway_sts *s, kl_http_req *r, const char *typed,
                                      const char *addr, int64_t now)
{
    char norm[KL_USER_CODE_LEN + 1];
    kl_store_devicecode *d = NULL;
    size_t al = strlen(addr);
    int err = normalise_user_code(typed, norm)
                  ? (s->store ? kl_store_devicecode_by_user_code(s->store, norm, &d) : KL_EUNAVAIL)
                  : KL_ENOTFOUND;
    if (err == KL_ENOTFOUND) {
        /* Keyed by the address alone: a guesser is held back wherever it aims, and
         * never someone else's address. */
        kl_throttle_failed(s->devicecode->guesses, addr, al, addr, al, (int64_t)kl_now_mono_ms());
        kl_http_req_log_field(r, "devicelogin", "wrong_code");
        page_code(r, 400, typed, "That code didn't work. Check the code and try again.", 0);
        return NULL;
    }
    if (err) {
        kl_webpage_message(r, 503, page_title,
                           "Sign-in is not available right now. Try again in a moment.");
        return NULL;
    }
    if (kl_store_dc_status_of(d) != KL_STORE_DC_PENDING || d->expires_at <= now) {
        kl_http_req_log_field(r, "devicelogin", "code_spent");
        page_code(r, 400, NULL,
                  "That code has expired or has already been used. Start again on your device "
                  "to get a new code.",
                  0);
        kl_store_devicecode_free(d);
        return NULL;
    }
    return d;
}

/* Continue: the user's name and password, then the approval. */
static void page_continue(kl_gateway_sts *s, kl_http_req *r, const kl_snapshot *snap,
                          const kl_store_devicecode *d, const kl_form *f, int64_t now)
{
    size_t pwlen = 0;
    const char *upn = kl_form_get(f, "username", NULL);
    const char *pw = kl_form_get(f, "password", &pwlen);
    if (!upn || !*upn || strlen(upn) > KL_MAX_UPN || !pw || pwlen == 0 || pwlen > KL_MAX_PASSWORD) {
        page_signin(r, 400, snap, d, upn && strlen(upn) <= KL_MAX_UPN ? upn : NULL,
                    "Enter your user name and password.", 0);
        return;
    }
    char addr[KL_MAX_NETRULE_TEXT + 1] = "";
    kl_clientaddr_text(s->trusted_proxies, r, addr, sizeof(addr));
    size_t ul = strlen(upn), al = strlen(addr);
    int64_t retry = 0;
    /* Per name and per address before Argon2 runs, as the password grant does
     * (security.md T9): an address that keeps failing cannot spend the node's CPU. */
    if (kl_throttle_check(s->pw_throttle, upn, ul, addr, al, (int64_t)kl_now_mono_ms(), &retry) ==
        KL_EPERM) {
        char ra[24];
        snprintf(ra, sizeof(ra), "%lld", (long long)retry);
        kl_http_set_header(r, "Retry-After", ra);
        kl_http_req_log_field(r, "throttled", "password");
        kl_webpage_message(r, 429, page_title,
                           "Too many failed sign-in attempts from your network. Wait a minute and "
                           "try again.");
        return;
    }
    kl_lockout_result res = KL_LOCKOUT_WRONG;
    uint32_t delay = 0;
    kl_lockout_user user = {0};
    int err = s->store
                  ? kl_lockout_verify_password(s->store, upn, pw, pwlen, now, &res, &delay, &user)
                  : KL_EUNAVAIL;
    if (err) {
        kl_webpage_message(r, 503, page_title,
                           "Sign-in is not available right now. Try again in a moment.");
        return;
    }
    kl_http_req_log_field(r, "password", kl_lockout_result_name(res));
    if (res == KL_LOCKOUT_WRONG || res == KL_LOCKOUT_LOCKED)
        kl_throttle_failed(s->pw_throttle, upn, ul, addr, al, (int64_t)kl_now_mono_ms());
    switch (res) {
    case KL_LOCKOUT_OK:
        kl_throttle_succeeded(s->pw_throttle, upn, ul, addr, al, (int64_t)kl_now_mono_ms());
        break;
    case KL_LOCKOUT_LOCKED:
        page_signin(r, 400, snap, d, upn,
                    "Your account is locked for a while after too many failed sign-ins. Try "
                    "again later.",
                    delay);
        return;
    case KL_LOCKOUT_DISABLED:
        page_signin(r, 400, snap, d, upn, "Your account is disabled.", delay);
        return;
    case KL_LOCKOUT_WRONG:
    default:
        page_signin(r, 400, snap, d, upn, "Your account or password is incorrect.", delay);
        return;
    }
    if (user.force_change) {
        page_signin(r, 400, snap, d, upn,
                    "You must change your password before you can sign in here. Ask your "
                    "administrator.",
                    0);
        return;
    }
    char session[KL_UUID_LEN + 1];
    if (kl_uuid_v4(session) != 0) {
        kl_webpage_message(r, 500, page_title, "The sign-in could not be completed. Try again.");
        return;
    }
    err = kl_store_devicecode_decide(s->store, d->user_code, user.object_id, session, now, now);
    if (err == KL_ECONFLICT || err == KL_ENOTFOUND) {
        page_code(r, 400, NULL,
                  "That code has expired or has already been used. Start again on your device "
                  "to get a new code.",
                  0);
        return;
    }
    if (err) {
        kl_webpage_message(r, 503, page_title,
                           "Sign-in is not available right now. Try again in a moment.");
        return;
    }
    kl_http_req_log_field(r, "devicelogin", "approved");
    const kl_principal *app = kl_snapshot_principal_by_app_id(snap, d->client_id);
    char text[512];
    snprintf(text, sizeof(text),
             "You have signed in to %s on your device. You may now close this window.",
             app && app->display_name ? app->display_name : "the application");
    kl_webpage_message(r, 200, "You're signed in", text);
}

void kl_devicecode_page(kl_gateway_sts *s, kl_http_req *r)
{
    kl_form *f = NULL;
    kl_store_devicecode *d = NULL;
    kl_snapshot *snap = NULL;
    kl_http_req_set_route(r, KL_ROUTE_STS);
    const char *m = kl_http_req_method(r);
    if (!strcmp(m, "GET") || !strcmp(m, "HEAD")) {
        page_code(r, 200, kl_http_req_query_param(r, "otc"), NULL, 0);
        return;
    }
    if (strcmp(m, "POST") != 0) {
        kl_http_set_header(r, "Allow", "GET, HEAD, POST");
        kl_webpage_message(r, 405, page_title, "Open this page in a web browser.");
        return;
    }
    size_t blen = 0;
    const unsigned char *b = kl_http_req_body(r, &blen);
    if (!form_body(r) || kl_form_parse((const char *)b, blen, &f, NULL, 0) != KL_FORM_OK) {
        kl_webpage_message(r, 400, page_title, "The form could not be read. Start again.");
        goto out;
    }
    if (!kl_webpage_csrf_check(r, kl_form_get(f, KL_WEBPAGE_CSRF_FIELD, NULL))) {
        kl_http_req_log_field(r, "devicelogin", "csrf_refused");
        kl_webpage_message(r, 403, page_title,
                           "This page has expired or was opened from somewhere else. Open the "
                           "sign-in page again and enter your code.");
        goto out;
    }
    char addr[KL_MAX_NETRULE_TEXT + 1] = "";
    kl_clientaddr_text(s->trusted_proxies, r, addr, sizeof(addr));
    size_t al = strlen(addr);
    int64_t retry = 0;
    if (kl_throttle_check(s->devicecode->guesses, addr, al, addr, al, (int64_t)kl_now_mono_ms(),
                          &retry) == KL_EPERM) {
        char ra[24];
        snprintf(ra, sizeof(ra), "%lld", (long long)retry);
        kl_http_set_header(r, "Retry-After", ra);
        kl_http_req_log_field(r, "throttled", "user_code");
        kl_webpage_message(r, 429, page_title,
                           "Too many wrong codes were entered from your network. Wait a minute "
                           "and try again.");
        goto out;
    }
    snap = kl_snapshot_acquire(s->holder);
    if (!snap) {
        kl_webpage_message(r, 503, page_title,
                           "Sign-in is not available right now. Try again in a moment.");
        goto out;
    }
    int64_t now = kl_now_unix();
    const char *action = kl_form_get(f, "action", NULL);
    if (!(d = page_find(s, r, kl_form_get(f, "user_code", NULL), addr, now)))
        goto out;
    if (!action || !strcmp(action, "next")) {
        page_signin(r, 200, snap, d, NULL, NULL, 0);
    } else if (!strcmp(action, "cancel")) {
        /* Declining needs no sign-in: whoever holds the code may refuse it, and the
         * device is told authorization_declined. */
        int err = kl_store_devicecode_decide(s->store, d->user_code, NULL, NULL, 0, now);
        if (err && err != KL_ECONFLICT && err != KL_ENOTFOUND)
            kl_webpage_message(r, 503, page_title,
                               "Sign-in is not available right now. Try again in a moment.");
        else {
            kl_http_req_log_field(r, "devicelogin", "declined");
            kl_webpage_message(r, 200, "Sign-in declined",
                               "You declined to sign in on the other device. You may now close "
                               "this window.");
        }
    } else if (!strcmp(action, "continue")) {
        page_continue(s, r, snap, d, f, now);
    } else {
        kl_webpage_message(r, 400, page_title, "The form could not be read. Start again.");
    }
out:
    kl_store_devicecode_free(d);
    if (snap)
        kl_snapshot_release(snap);
    kl_form_free(f);
}
