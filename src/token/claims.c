/* Access-token claim sets and the claim checks for access tokens and client assertions.
 * Signature verification (crypto/jws) always comes first; these functions only ever see
 * payloads whose signature verified. */
#include "token/claims.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"

#define UTI_BYTES 16 /* 22 base64url characters, like Entra's uti */

static const char *const reason_names[KL_CLAIMS_REASON_COUNT] = {
    [KL_CLAIMS_OK] = "ok",
    [KL_CLAIMS_MISSING] = "missing",
    [KL_CLAIMS_BAD_TYPE] = "bad_type",
    [KL_CLAIMS_BAD_VALUE] = "bad_value",
    [KL_CLAIMS_AUDIENCE] = "audience",
    [KL_CLAIMS_ISSUER] = "issuer",
    [KL_CLAIMS_TENANT] = "tenant",
    [KL_CLAIMS_EXPIRED] = "expired",
    [KL_CLAIMS_NOT_YET_VALID] = "not_yet_valid",
    [KL_CLAIMS_IAT_FUTURE] = "iat_future",
    [KL_CLAIMS_LIFETIME] = "lifetime",
    [KL_CLAIMS_SUBJECT] = "subject",
};

const char *kl_claims_reason_str(kl_claims_reason r)
{
    if ((unsigned)r >= KL_CLAIMS_REASON_COUNT)
        return "unknown";
    return reason_names[r];
}

static bool str_ok(const char *s)
{
    return s && s[0] && strlen(s) <= KL_MAX_CLAIM_STRING;
}

int kl_claims_issuer_v1(const char *tid, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "https://sts.windows.net/%s/", tid ? tid : "");
    return (n < 0 || (size_t)n >= outlen) ? KL_ETOOBIG : 0;
}

/* Writes the claim set's JSON text into out[0..cap): ok turns false on the first value
 * refused or byte that does not fit (full), and everything after is skipped. */
typedef struct jw {
    char *out;
    size_t cap, len;
    bool ok, full;
} jw;

static void jw_raw(jw *w, const char *v, size_t n)
{
    if (!w->ok)
        return;
    if (n > w->cap - w->len) {
        w->ok = false;
        w->full = true;
        return;
    }
    memcpy(w->out + w->len, v, n);
    w->len += n;
}

/* A JSON string literal of v: printable ASCII only (every value we put in a token is a
 * GUID, a URL or an ARM id; anything else is refused rather than guessed at), with '"'
 * and '\\' escaped. */
static void jw_str(jw *w, const char *v)
{
    jw_raw(w, "\"", 1);
    for (const char *p = v; *p && w->ok; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c > 0x7e)
            w->ok = false;
        else if (c == '"' || c == '\\')
            jw_raw(w, c == '"' ? "\\\"" : "\\\\", 2);
        else
            jw_raw(w, p, 1);
    }
    jw_raw(w, "\"", 1);
}

/* A JSON string literal of UTF-8 text v (a user's display name): '"', '\\' and control
 * characters escaped, bytes from 0x80 on copied as they are (jansson and every JSON
 * parser take UTF-8); a byte sequence that is not UTF-8 is refused. */
static void jw_text(jw *w, const char *v)
{
    jw_raw(w, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)v; *p && w->ok; p++) {
        if (*p >= 0x80) {
            size_t n = (*p & 0xe0) == 0xc0   ? 2
                       : (*p & 0xf0) == 0xe0 ? 3
                       : (*p & 0xf8) == 0xf0 ? 4
                                             : 0;
            for (size_t i = 1; n && i < n; i++)
                if ((p[i] & 0xc0) != 0x80)
                    n = 0;
            if (!n) {
                w->ok = false;
                break;
            }
            jw_raw(w, (const char *)p, n);
            p += n - 1;
        } else if (*p < 0x20) {
            char esc[8];
            snprintf(esc, sizeof(esc), "\\u%04x", *p);
            jw_raw(w, esc, 6);
        } else if (*p == '"' || *p == '\\') {
            jw_raw(w, *p == '"' ? "\\\"" : "\\\\", 2);
        } else {
            jw_raw(w, (const char *)p, 1);
        }
    }
    jw_raw(w, "\"", 1);
}

static void jw_name(jw *w, const char *name)
{
    jw_raw(w, w->len > 1 ? ",\"" : "\"", w->len > 1 ? 2 : 1);
    jw_raw(w, name, strlen(name));
    jw_raw(w, "\":", 2);
}

static void jw_member(jw *w, const char *name, const char *v)
{
    jw_raw(w, w->len > 1 ? ",\"" : "\"", w->len > 1 ? 2 : 1);
    jw_raw(w, name, strlen(name));
    jw_raw(w, "\":", 2);
    jw_str(w, v);
}

static void jw_int(jw *w, const char *name, int64_t v)
{
    char num[32];
    int n = snprintf(num, sizeof(num), ",\"%s\":%lld", name, (long long)v);
    if (n < 0 || (size_t)n >= sizeof(num))
        w->ok = false;
    else
        jw_raw(w, num, (size_t)n);
}

int kl_claims_write_access(const kl_claims_access *in, char *out, size_t cap, size_t *len)
{
    unsigned char rnd[UTI_BYTES];
    char uti[2 * UTI_BYTES + 1];
    int64_t life = in->lifetime ? in->lifetime : KL_TOKEN_DEFAULT_LIFETIME_S;
    static const char *const acr[] = {"0", "1", "2"};
    if (!str_ok(in->aud) || !str_ok(in->iss) || !str_ok(in->tid) || !str_ok(in->appid) ||
        !str_ok(in->oid) || (in->xms_mirid && !str_ok(in->xms_mirid)) || in->appidacr < 0 ||
        in->appidacr > 2 || life < 1 || life > KL_TOKEN_MAX_LIFETIME_S || in->now <= 0)
        return KL_EINVAL;
    bool user = in->upn != NULL;
    if (user && (!str_ok(in->upn) || !str_ok(in->scp) || !str_ok(in->amr) ||
                 (in->name && strlen(in->name) > KL_MAX_CLAIM_STRING)))
        return KL_EINVAL;
    if (kl_random_id(rnd, sizeof(rnd)) != 0 ||
        kl_b64url_encode(rnd, sizeof(rnd), uti, sizeof(uti)) < 0)
        return KL_ECRYPTO;
    /* Member order follows observed Entra v1 tokens. */
    jw w = {.out = out, .cap = cap, .ok = cap > 0};
    jw_raw(&w, "{", 1);
    jw_member(&w, "aud", in->aud);
    jw_member(&w, "iss", in->iss);
    jw_int(&w, "iat", in->now);
    jw_int(&w, "nbf", in->now);
    jw_int(&w, "exp", in->now + life);
    if (user) {
        jw_name(&w, "amr");
        jw_raw(&w, "[", 1);
        jw_str(&w, in->amr);
        jw_raw(&w, "]", 1);
    }
    jw_member(&w, "appid", in->appid);
    jw_member(&w, "appidacr", acr[in->appidacr]);
    jw_member(&w, "idp", in->iss);
    jw_member(&w, "idtyp", user ? "user" : "app");
    if (user && in->name && in->name[0]) {
        jw_name(&w, "name");
        jw_text(&w, in->name);
    }
    jw_member(&w, "oid", in->oid);
    if (user)
        jw_member(&w, "scp", in->scp);
    jw_member(&w, "sub", in->oid);
    jw_member(&w, "tid", in->tid);
    if (user) {
        jw_member(&w, "unique_name", in->upn);
        jw_member(&w, "upn", in->upn);
    }
    jw_member(&w, "uti", uti);
    jw_member(&w, "ver", "1.0");
    if (in->xms_mirid)
        jw_member(&w, "xms_mirid", in->xms_mirid);
    jw_raw(&w, "}", 1);
    if (!w.ok)
        return w.full ? KL_ETOOBIG : KL_EINVAL;
    *len = w.len;
    return 0;
}

int kl_claims_build_access(const kl_claims_access *in, json_t **out)
{
    char buf[KL_MAX_ACCESS_CLAIMS];
    size_t n = 0;
    int err = kl_claims_write_access(in, buf, sizeof(buf), &n);
    if (err)
        return err;
    json_t *o = json_loadb(buf, n, JSON_REJECT_DUPLICATES, NULL);
    if (!o)
        return KL_ENOMEM;
    *out = o;
    return 0;
}

/* A required string claim: *s set, or the reason. */
static kl_claims_reason get_str(const json_t *p, const char *name, size_t max, const char **s)
{
    const json_t *v = json_object_get(p, name);
    if (!v)
        return KL_CLAIMS_MISSING;
    if (!json_is_string(v))
        return KL_CLAIMS_BAD_TYPE;
    size_t n = json_string_length(v);
    if (n == 0 || n > max)
        return KL_CLAIMS_BAD_VALUE;
    *s = json_string_value(v);
    return KL_CLAIMS_OK;
}

/* A time claim: an integer of seconds since the epoch (never a real or a string). */
static kl_claims_reason get_time(const json_t *p, const char *name, bool required, int64_t *t,
                                 bool *present)
{
    const json_t *v = json_object_get(p, name);
    if (present)
        *present = v != NULL;
    if (!v)
        return required ? KL_CLAIMS_MISSING : KL_CLAIMS_OK;
    if (!json_is_integer(v))
        return KL_CLAIMS_BAD_TYPE;
    json_int_t x = json_integer_value(v);
    if (x < 0 || x > INT64_MAX / 2)
        return KL_CLAIMS_BAD_VALUE;
    *t = (int64_t)x;
    return KL_CLAIMS_OK;
}

/* Equality ignoring one trailing slash on either side, so "https://x" matches "https://x/". */
static bool aud_equal(const char *a, const char *b)
{
    size_t an = strlen(a), bn = strlen(b);
    if (an && a[an - 1] == '/')
        an--;
    if (bn && b[bn - 1] == '/')
        bn--;
    return an == bn && memcmp(a, b, an) == 0;
}

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        kl_claims_reason r_ = (expr);                                                              \
        if (r_ != KL_CLAIMS_OK)                                                                    \
            return r_;                                                                             \
    } while (0)

/* The time checks shared by both kinds of token. */
static kl_claims_reason check_times(int64_t now, int64_t exp, int64_t start, bool have_iat,
                                    int64_t iat, int64_t max_life)
{
    if (now >= exp + KL_TOKEN_CLOCK_SKEW_S)
        return KL_CLAIMS_EXPIRED;
    if (now + KL_TOKEN_CLOCK_SKEW_S < start)
        return KL_CLAIMS_NOT_YET_VALID;
    if (have_iat && now + KL_TOKEN_CLOCK_SKEW_S < iat)
        return KL_CLAIMS_IAT_FUTURE;
    if (exp <= start || exp - start > max_life)
        return KL_CLAIMS_LIFETIME;
    return KL_CLAIMS_OK;
}

static void copy_id(char *dst, const char *src)
{
    size_t n = strlen(src);
    memcpy(dst, src, n + 1);
}

kl_claims_reason kl_claims_check_access(const json_t *payload, const kl_claims_expect *e,
                                        kl_claims_principal *who)
{
    const char *aud = NULL, *iss = NULL, *tid = NULL, *oid = NULL, *appid = NULL, *ver = NULL;
    int64_t exp = 0, nbf = 0, iat = 0;
    if (!json_is_object(payload))
        return KL_CLAIMS_BAD_TYPE;
    TRY(get_str(payload, "aud", KL_MAX_CLAIM_STRING, &aud));
    TRY(get_str(payload, "iss", KL_MAX_CLAIM_STRING, &iss));
    TRY(get_str(payload, "tid", KL_MAX_PRINCIPAL_ID, &tid));
    TRY(get_str(payload, "oid", KL_MAX_PRINCIPAL_ID, &oid));
    TRY(get_str(payload, "appid", KL_MAX_PRINCIPAL_ID, &appid));
    TRY(get_str(payload, "ver", KL_MAX_CLAIM_STRING, &ver));
    const char *upn = NULL;
    kl_claims_reason ur = get_str(payload, "upn", KL_MAX_UPN, &upn);
    if (ur != KL_CLAIMS_MISSING)
        TRY(ur);
    TRY(get_time(payload, "exp", true, &exp, NULL));
    TRY(get_time(payload, "nbf", true, &nbf, NULL));
    TRY(get_time(payload, "iat", true, &iat, NULL));
    if (strcmp(ver, "1.0") != 0)
        return KL_CLAIMS_BAD_VALUE;
    bool aud_ok = false;
    for (size_t i = 0; i < e->n_audiences && !aud_ok; i++)
        aud_ok = aud_equal(aud, e->audiences[i]);
    if (!aud_ok)
        return KL_CLAIMS_AUDIENCE;
    if (strcmp(iss, e->issuer) != 0)
        return KL_CLAIMS_ISSUER;
    if (e->tid && strcmp(tid, e->tid) != 0)
        return KL_CLAIMS_TENANT;
    TRY(check_times(e->now, exp, nbf, true, iat, KL_TOKEN_MAX_LIFETIME_S));
    if (who) {
        copy_id(who->oid, oid);
        copy_id(who->tid, tid);
        copy_id(who->appid, appid);
        copy_id(who->upn, upn ? upn : "");
        who->exp = exp;
    }
    return KL_CLAIMS_OK;
}

kl_claims_reason kl_claims_check_assertion(const json_t *payload, const char *client_id,
                                           const char *token_endpoint, int64_t now,
                                           kl_claims_assertion *out)
{
    const char *iss = NULL, *sub = NULL, *jti = NULL;
    int64_t exp = 0, nbf = 0, iat = 0;
    bool have_nbf = false, have_iat = false;
    if (!json_is_object(payload))
        return KL_CLAIMS_BAD_TYPE;
    TRY(get_str(payload, "iss", KL_MAX_CLAIM_STRING, &iss));
    TRY(get_str(payload, "sub", KL_MAX_CLAIM_STRING, &sub));
    TRY(get_str(payload, "jti", KL_MAX_JTI, &jti));
    const json_t *aud = json_object_get(payload, "aud");
    if (!aud)
        return KL_CLAIMS_MISSING;
    TRY(get_time(payload, "exp", true, &exp, NULL));
    TRY(get_time(payload, "nbf", false, &nbf, &have_nbf));
    TRY(get_time(payload, "iat", false, &iat, &have_iat));
    if (!have_nbf && !have_iat)
        return KL_CLAIMS_MISSING; /* without a start the lifetime cannot be bounded */
    if (strcmp(iss, client_id) != 0 || strcmp(sub, client_id) != 0)
        return KL_CLAIMS_SUBJECT;
    bool aud_ok = false;
    if (json_is_string(aud)) {
        aud_ok = strcmp(json_string_value(aud), token_endpoint) == 0;
    } else if (json_is_array(aud)) {
        size_t i;
        const json_t *a;
        json_array_foreach(aud, i, a)
        {
            if (!json_is_string(a))
                return KL_CLAIMS_BAD_TYPE;
            aud_ok = aud_ok || strcmp(json_string_value(a), token_endpoint) == 0;
        }
    } else {
        return KL_CLAIMS_BAD_TYPE;
    }
    if (!aud_ok)
        return KL_CLAIMS_AUDIENCE;
    TRY(check_times(now, exp, have_nbf ? nbf : iat, have_iat, iat, KL_ASSERTION_MAX_LIFETIME_S));
    if (out) {
        copy_id(out->jti, jti);
        out->exp = exp;
    }
    return KL_CLAIMS_OK;
}
