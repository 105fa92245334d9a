/* ARM request grammar: path patterns, resource name rules, api-version and JSON body
 * intake (see arm.h). Pure functions over bounded input; nothing here answers HTTP. */
#include "mgmt/arm.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "mgmt/route.h"

void kl_arm_error_set(kl_arm_error *e, int status, const char *code, const char *fmt, ...)
{
    e->status = status;
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
}

json_t *kl_arm_error_body(const char *code, const char *message)
{
    json_t *inner = json_object();
    json_t *outer = json_object();
    if (!inner || !outer ||
        json_object_set_new(inner, "code", json_string(code ? code : "InternalServerError")) ||
        json_object_set_new(inner, "message", json_string(message ? message : "")) ||
        json_object_set_new(outer, "error", inner)) {
        json_decref(inner);
        json_decref(outer);
        return NULL;
    }
    return outer;
}

/* ---------------------------------------------------------------- names */

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool has_dotdot(const char *s, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (s[i] == '.' && s[i - 1] == '.')
            return true;
    return false;
}

/* The shared shape of subscription and resource group names. */
static bool valid_group_like(const char *s, size_t n)
{
    if (!s || n < 1 || n > KL_MAX_NAME || s[n - 1] == '.' || has_dotdot(s, n))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!is_alnum(c) && c != '-' && c != '_' && c != '.' && c != '(' && c != ')')
            return false;
    }
    return true;
}

bool kl_arm_valid_subscription(const char *s, size_t n)
{
    return valid_group_like(s, n);
}

bool kl_arm_valid_resource_group(const char *s, size_t n)
{
    return valid_group_like(s, n);
}

bool kl_arm_valid_account_name(const char *s, size_t n)
{
    if (!s || n < 2 || n > 64 || !is_alnum(s[0]) || !is_alnum(s[n - 1]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(s[i]) && s[i] != '-')
            return false;
    return true;
}

bool kl_arm_valid_deployment_name(const char *s, size_t n)
{
    if (!s || n < 2 || n > 64 || has_dotdot(s, n))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!is_alnum(c) && c != '-' && c != '_' && c != '.')
            return false;
    }
    return true;
}

/* ---------------------------------------------------------------- paths */

static bool is_capture(const char *seg, size_t len)
{
    return len >= 3 && seg[0] == '{' && seg[len - 1] == '}';
}

bool kl_arm_match_path(const char *pattern, const char *path, kl_arm_match *m)
{
    kl_arm_match tmp;
    memset(&tmp, 0, sizeof(tmp));
    if (!pattern || !path || pattern[0] != '/' || path[0] != '/')
        return false;
    const char *p = pattern + 1;
    const char *q = path + 1;
    for (size_t segs = 1;; segs++) {
        size_t pl = strcspn(p, "/");
        size_t ql = strcspn(q, "/");
        if (segs > KL_ARM_MAX_SEGMENTS || ql == 0 || pl == 0)
            return false;
        if (is_capture(p, pl)) {
            if (tmp.n == KL_ARM_MAX_PARAMS)
                return false;
            tmp.p[tmp.n].key = p + 1;
            tmp.p[tmp.n].key_len = pl - 2;
            tmp.p[tmp.n].val = q;
            tmp.p[tmp.n].val_len = ql;
            tmp.n++;
        } else if (!kl_str_ieqn(p, pl, q, ql)) {
            return false;
        }
        p += pl;
        q += ql;
        if (*p == '\0' || *q == '\0') {
            if (*p != *q)
                return false; /* one has more segments */
            break;
        }
        p++;
        q++;
    }
    if (m)
        *m = tmp;
    return true;
}

typedef struct name_rule {
    const char *key;
    bool (*valid)(const char *, size_t);
    size_t offset; /* of the destination in kl_arm_names */
    const char *code;
    const char *message;
} name_rule;

static const name_rule name_rules[] = {
    {"subscription", kl_arm_valid_subscription, offsetof(kl_arm_names, subscription),
     "InvalidResourceName",
     "The subscription is invalid: use 1-90 letters, digits, '-', '_', '.', '(' or ')', not "
     "ending in '.' (a GUID is recommended)."},
    {"resourceGroup", kl_arm_valid_resource_group, offsetof(kl_arm_names, resource_group),
     "InvalidResourceGroupName",
     "Resource group names only allow up to 90 characters and can only include alphanumeric, "
     "underscore, parentheses, hyphen, period (except at end) characters."},
    {"account", kl_arm_valid_account_name, offsetof(kl_arm_names, account), "InvalidResourceName",
     "The account name is invalid: use 2-64 letters, digits or '-', starting and ending with a "
     "letter or digit."},
    {"deployment", kl_arm_valid_deployment_name, offsetof(kl_arm_names, deployment),
     "InvalidResourceName",
     "The deployment name is invalid: use 2-64 letters, digits, '-', '_' or '.', without "
     "'..'."},
};

static const name_rule *find_rule(const char *key, size_t len)
{
    for (size_t i = 0; i < sizeof(name_rules) / sizeof(name_rules[0]); i++)
        if (strlen(name_rules[i].key) == len && memcmp(name_rules[i].key, key, len) == 0)
            return &name_rules[i];
    return NULL;
}

bool kl_arm_pattern_valid(const char *pattern)
{
    if (!pattern || pattern[0] != '/')
        return false;
    const char *p = pattern + 1;
    size_t captures = 0, segs = 0;
    for (;;) {
        size_t pl = strcspn(p, "/");
        if (pl == 0 || ++segs > KL_ARM_MAX_SEGMENTS)
            return false;
        if (is_capture(p, pl)) {
            if (++captures > KL_ARM_MAX_PARAMS || !find_rule(p + 1, pl - 2))
                return false;
        } else if (memchr(p, '{', pl) || memchr(p, '}', pl)) {
            return false;
        }
        p += pl;
        if (*p == '\0')
            return true;
        p++;
    }
}

int kl_arm_resolve_names(const kl_arm_match *m, kl_arm_names *names, kl_arm_error *e)
{
    memset(names, 0, sizeof(*names));
    for (size_t i = 0; i < m->n; i++) {
        const name_rule *r = find_rule(m->p[i].key, m->p[i].key_len);
        if (!r) {
            kl_arm_error_set(e, 500, "InternalServerError", "Unknown route parameter.");
            return KL_EINTERNAL;
        }
        /* The name itself is not echoed: it may be 10 KB of anything. */
        if (!r->valid(m->p[i].val, m->p[i].val_len)) {
            kl_arm_error_set(e, 400, r->code, "%s", r->message);
            return KL_EINVAL;
        }
        char *dst = (char *)names + r->offset;
        memcpy(dst, m->p[i].val, m->p[i].val_len);
        dst[m->p[i].val_len] = '\0';
    }
    return 0;
}

/* ---------------------------------------------------------------- api-version */

static bool digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

int kl_arm_check_api_version(const char *v, kl_arm_error *e)
{
    if (!v || !*v) {
        kl_arm_error_set(e, 400, "MissingApiVersionParameter",
                         "The api-version query parameter (?api-version=) is required for all "
                         "requests.");
        return KL_EINVAL;
    }
    size_t n = strlen(v);
    bool ok = (n == 10 || (n == 18 && strcmp(v + 10, "-preview") == 0)) && digits(v, 4) &&
              v[4] == '-' && digits(v + 5, 2) && v[7] == '-' && digits(v + 8, 2);
    if (ok) {
        int month = (v[5] - '0') * 10 + (v[6] - '0');
        int day = (v[8] - '0') * 10 + (v[9] - '0');
        ok = month >= 1 && month <= 12 && day >= 1 && day <= 31;
    }
    if (!ok) {
        kl_arm_error_set(e, 400, "InvalidApiVersionParameter",
                         "The api-version is invalid. It must have the form YYYY-MM-DD or "
                         "YYYY-MM-DD-preview, for example 2024-10-01.");
        return KL_EINVAL;
    }
    return 0;
}

/* ---------------------------------------------------------------- bodies */

bool kl_arm_json_depth_ok(const unsigned char *buf, size_t len, int max)
{
    int depth = 0;
    bool in_str = false, esc = false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = buf[i];
        if (in_str) {
            if (esc)
                esc = false;
            else if (c == '\\')
                esc = true;
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            if (++depth > max)
                return false;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return true;
}

int kl_arm_parse_body(const unsigned char *body, size_t len, json_t **out, kl_arm_error *e)
{
    *out = NULL;
    const char *what = NULL;
    json_t *j = NULL;
    if (!body || len == 0) {
        what = "the body is empty";
    } else if (!kl_arm_json_depth_ok(body, len, KL_MAX_JSON_DEPTH)) {
        what = "the JSON is nested too deeply";
    } else {
        json_error_t jerr;
        j = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!j) {
            /* jansson's text can quote the input, which may hold a credential: only
             * the position goes back. */
            kl_arm_error_set(e, 400, "InvalidRequestContent",
                             "The request content was invalid and could not be deserialized: "
                             "malformed JSON at line %d, column %d.",
                             jerr.line, jerr.column);
            return KL_EINVAL;
        }
        if (!json_is_object(j))
            what = "the body must be a JSON object";
    }
    if (what) {
        json_decref(j);
        kl_arm_error_set(e, 400, "InvalidRequestContent",
                         "The request content was invalid and could not be deserialized: %s.",
                         what);
        return KL_EINVAL;
    }
    *out = j;
    return 0;
}

/* ---------------------------------------------------------------- ids */

int kl_arm_account_id(const char *subscription, const char *resource_group, const char *account,
                      char *out, size_t outlen)
{
    int n = snprintf(out, outlen,
                     "/subscriptions/%s/resourceGroups/%s/providers/"
                     "Microsoft.CognitiveServices/accounts/%s",
                     subscription, resource_group, account);
    return (n < 0 || (size_t)n >= outlen) ? KL_ETOOBIG : 0;
}

void kl_arm_lower(char *s)
{
    for (; s && *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

int kl_arm_apikey_aad(const char *account_id, int slot, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "apikey:%s:%d", account_id, slot);
    if (n < 0 || (size_t)n >= outlen)
        return KL_ETOOBIG;
    kl_arm_lower(out);
    return 0;
}

/* ---------------------------------------------------------------- route table check */

static bool action_valid(const char *a)
{
    if (!a || !*a || strlen(a) > 256 || !strchr(a, '/'))
        return false;
    for (const char *p = a; *p; p++)
        if (!is_alnum(*p) && *p != '.' && *p != '/' && *p != '*')
            return false;
    const char *last = strrchr(a, '/') + 1;
    return strcmp(last, "read") == 0 || strcmp(last, "write") == 0 || strcmp(last, "delete") == 0 ||
           strcmp(last, "action") == 0;
}

int kl_mgmt_routes_check(const kl_mgmt_route *routes, size_t n)
{
    if (!routes || n == 0)
        return KL_EINVAL;
    for (size_t i = 0; i < n; i++) {
        const kl_mgmt_route *r = &routes[i];
        if (!r->method || !*r->method || !r->handler || !kl_arm_pattern_valid(r->pattern) ||
            !action_valid(r->action))
            return KL_EINVAL;
        for (size_t j = 0; j < i; j++)
            if (strcmp(routes[j].method, r->method) == 0 &&
                kl_str_ieq(routes[j].pattern, r->pattern))
                return KL_EINVAL;
    }
    return 0;
}
