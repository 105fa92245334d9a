/* ARM request grammar: path patterns, resource name rules, api-version and JSON body
 * intake (see arm.h). Pure functions over bounded input; nothing here answers HTTP. */
#include "mgmt/arm.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "common/util.h"
#include "directory/users.h"
#include "mgmt/mgmt_route.h"
#include "rbac/scope.h"

#define SCOPE_CAPTURE "/{scope}"

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
    if (!s || n < KL_ARM_MIN_ACCOUNT_NAME || n > KL_ARM_MAX_ACCOUNT_NAME || !is_alnum(s[0]) ||
        !is_alnum(s[n - 1]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(s[i]) && s[i] != '-')
            return false;
    return true;
}

bool kl_arm_valid_deployment_name(const char *s, size_t n)
{
    if (!s || n < KL_ARM_MIN_DEPLOYMENT_NAME || n > KL_ARM_MAX_DEPLOYMENT_NAME || has_dotdot(s, n))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!is_alnum(c) && c != '-' && c != '_' && c != '.')
            return false;
    }
    return true;
}

bool kl_arm_valid_site_name(const char *s, size_t n)
{
    if (!s || n < KL_ARM_MIN_SITE_NAME || n > KL_ARM_MAX_SITE_NAME || s[0] == '-' ||
        s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(s[i]) && s[i] != '-')
            return false;
    return true;
}

bool kl_arm_valid_vm_name(const char *s, size_t n)
{
    if (!s || n < KL_ARM_MIN_VM_NAME || n > KL_ARM_MAX_VM_NAME || !is_alnum(s[0]) ||
        s[n - 1] == '.' || s[n - 1] == '-' || has_dotdot(s, n))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return false;
    return true;
}

bool kl_arm_valid_identity_name(const char *s, size_t n)
{
    if (!s || n < KL_ARM_MIN_IDENTITY_NAME || n > KL_MAX_NAME || !is_alnum(s[0]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '_')
            return false;
    return true;
}

/* ---------------------------------------------------------------- paths */

static bool is_capture(const char *seg, size_t len)
{
    return len >= 3 && seg[0] == '{' && seg[len - 1] == '}';
}

bool kl_arm_pattern_has_scope(const char *pattern)
{
    size_t n = strlen(SCOPE_CAPTURE);
    return pattern && strncmp(pattern, SCOPE_CAPTURE, n) == 0 &&
           (pattern[n] == '/' || pattern[n] == '\0');
}

static size_t count_segments(const char *p)
{
    size_t n = 0;
    for (; *p; p++)
        n += *p == '/';
    return n;
}

static bool match_fixed(const char *pattern, const char *path, kl_arm_match *tmp);

/* "/{scope}/rest...": the scope is everything before the path's last k segments, where
 * k is the number of segments of rest. */
static bool match_scoped(const char *pattern, const char *path, kl_arm_match *m)
{
    kl_arm_match tmp;
    memset(&tmp, 0, sizeof(tmp));
    const char *rest = pattern + strlen(SCOPE_CAPTURE);
    if (*rest == '\0')
        return false; /* a bare scope is not a route */
    size_t k = count_segments(rest);
    size_t total = strcmp(path, "/") == 0 ? 0 : count_segments(path);
    if (total < k)
        return false;
    /* The rest starts at the '/' opening segment total - k (0-based). */
    const char *start = NULL;
    size_t seen = 0;
    for (const char *c = path; *c && !start; c++)
        if (*c == '/' && seen++ == total - k)
            start = c;
    if (!start)
        return false;
    tmp.p[0].key = &SCOPE_CAPTURE[2];
    tmp.p[0].key_len = strlen("scope");
    tmp.p[0].val = path;
    tmp.p[0].val_len = (size_t)(start - path);
    tmp.n = 1;
    if (!match_fixed(rest, start, &tmp))
        return false;
    if (m)
        *m = tmp;
    return true;
}

bool kl_arm_match_path(const char *pattern, const char *path, kl_arm_match *m)
{
    if (!pattern || !path || pattern[0] != '/' || path[0] != '/')
        return false;
    if (kl_arm_pattern_has_scope(pattern))
        return match_scoped(pattern, path, m);
    kl_arm_match tmp;
    memset(&tmp, 0, sizeof(tmp));
    if (!match_fixed(pattern, path, &tmp))
        return false;
    if (m)
        *m = tmp;
    return true;
}

/* Matches segment by segment, appending captures to *tmp. */
static bool match_fixed(const char *pattern, const char *path, kl_arm_match *tmp_out)
{
    kl_arm_match tmp = *tmp_out;
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
    *tmp_out = tmp;
    return true;
}

static bool valid_guid(const char *s, size_t n)
{
    return kl_uuid_valid(s, n);
}

static bool valid_user_key(const char *s, size_t n)
{
    return kl_uuid_valid(s, n) || kl_users_valid_upn(s, n);
}

/* Checked (and canonicalised) by resolve_names itself, see scope_capture(). */
static bool valid_scope_len(const char *s, size_t n)
{
    (void)s;
    return n <= KL_MAX_SCOPE;
}

typedef struct name_rule {
    const char *key;
    bool (*valid)(const char *, size_t);
    size_t offset; /* of the destination in kl_arm_names */
    size_t size;   /* of the destination */
    bool lower;    /* lower-cased on the way (GUIDs) */
    /* Names an ARM resource (or the subscription or resource group holding it): a route's
     * scope ends at its last such capture (kl_arm_route_scope). */
    bool resource;
    const char *code;
    const char *message;
} name_rule;

#define FIELD(f) offsetof(kl_arm_names, f), sizeof(((kl_arm_names *)0)->f)

static const name_rule name_rules[] = {
    {"subscription", kl_arm_valid_subscription, FIELD(subscription), false, true,
     "InvalidResourceName",
     "The subscription is invalid: use 1-" KL_STR(
         KL_MAX_NAME) " letters, digits, '-', '_', '.', '(' or ')', not "
                      "ending in '.' (a GUID is recommended)."},
    {"resourceGroup", kl_arm_valid_resource_group, FIELD(resource_group), false, true,
     "InvalidResourceGroupName",
     "Resource group names only allow up to " KL_STR(
         KL_MAX_NAME) " characters and can only include alphanumeric, "
                      "underscore, parentheses, hyphen, period (except at end) characters."},
    {"account", kl_arm_valid_account_name, FIELD(account), false, true, "InvalidResourceName",
     "The account name is invalid: use " KL_STR(KL_ARM_MIN_ACCOUNT_NAME) "-" KL_STR(
         KL_ARM_MAX_ACCOUNT_NAME) " letters, digits or '-', starting and ending with a "
                                  "letter or digit."},
    {"deployment", kl_arm_valid_deployment_name, FIELD(deployment), false, true,
     "InvalidResourceName",
     "The deployment name is invalid: use " KL_STR(KL_ARM_MIN_DEPLOYMENT_NAME) "-" KL_STR(
         KL_ARM_MAX_DEPLOYMENT_NAME) " letters, digits, '-', '_' or '.', without "
                                     "'..'."},
    {"scope", valid_scope_len, FIELD(scope), false, false, "InvalidScope", KL_SCOPE_RULE},
    {"roleAssignment", valid_guid, FIELD(role_assignment), true, false, "InvalidRoleAssignmentId",
     "The role assignment ID is not valid. The role assignment ID must be a GUID."},
    {"roleDefinition", valid_guid, FIELD(role_definition), true, false, "InvalidRoleDefinitionId",
     "The role definition ID is not valid. The role definition ID must be a GUID."},
    {"object", valid_guid, FIELD(object), true, false, "Request_BadRequest",
     "Invalid object identifier: an id must be a GUID."},
    {"credential", valid_guid, FIELD(credential), true, false, "Request_BadRequest",
     "Invalid federated identity credential id: an id must be a GUID."},
    {"launch", valid_guid, FIELD(launch), true, false, "InvalidResourceName",
     "The launch id is invalid: it must be a GUID."},
    {"site", kl_arm_valid_site_name, FIELD(site), false, true, "InvalidResourceName",
     "The site name is invalid: use " KL_STR(KL_ARM_MIN_SITE_NAME) "-" KL_STR(
         KL_ARM_MAX_SITE_NAME) " letters, digits or '-', not starting or ending "
                               "with '-'."},
    {"vm", kl_arm_valid_vm_name, FIELD(vm), false, true, "InvalidResourceName",
     "The virtual machine name is invalid: use " KL_STR(KL_ARM_MIN_VM_NAME) "-" KL_STR(
         KL_ARM_MAX_VM_NAME) " letters, digits, '-', '_' or '.', "
                             "starting with a letter or digit and not ending with '.' or '-'."},
    {"identity", kl_arm_valid_identity_name, FIELD(identity), false, true, "InvalidResourceName",
     "The identity name is invalid: use " KL_STR(KL_ARM_MIN_IDENTITY_NAME) "-" KL_STR(
         KL_MAX_NAME) " letters, digits, '-' or '_', starting with a "
                      "letter or digit."},
    {"user", valid_user_key, FIELD(user), true, false, "Request_BadRequest",
     "Invalid object identifier: use the user's id (a GUID) or its userPrincipalName."},
    {"member", valid_guid, FIELD(member), true, false, "Request_BadRequest",
     "Invalid object identifier: an id must be a GUID."},
};

static const name_rule *find_rule(const char *key, size_t len)
{
    for (size_t i = 0; i < sizeof(name_rules) / sizeof(name_rules[0]); i++)
        if (strlen(name_rules[i].key) == len && memcmp(name_rules[i].key, key, len) == 0)
            return &name_rules[i];
    return NULL;
}

#define SCOPE_KEY "scope"

static const name_rule *scope_rule(void)
{
    return find_rule(SCOPE_KEY, sizeof(SCOPE_KEY) - 1);
}

int kl_arm_route_scope(const char *pattern, const kl_arm_names *n, char *out, size_t outlen)
{
    if (!pattern || !n || !out || outlen < 2)
        return KL_EINVAL;
    static const char lead[] = "/{" SCOPE_KEY "}";
    size_t ll = sizeof(lead) - 1;
    if (!strncmp(pattern, lead, ll) && (pattern[ll] == '/' || pattern[ll] == '\0')) {
        int w = snprintf(out, outlen, "%s", n->has_scope ? n->scope : "/");
        return w > 0 && (size_t)w < outlen ? 0 : KL_ETOOBIG;
    }
    /* The scope ends after the last capture naming a resource; literal segments keep the
     * pattern's spelling, which is the canonical one. */
    size_t end = 0;
    for (const char *p = pattern; *p;) {
        const char *q = strchr(p + 1, '/');
        size_t pl = q ? (size_t)(q - p) : strlen(p);
        if (pl > 3 && p[1] == '{' && p[pl - 1] == '}') {
            const name_rule *r = find_rule(p + 2, pl - 3);
            if (r && r->resource)
                end = (size_t)(p - pattern) + pl;
        }
        p += pl;
    }
    size_t w = 0;
    out[0] = '\0';
    for (const char *p = pattern; (size_t)(p - pattern) < end;) {
        const char *q = strchr(p + 1, '/');
        size_t pl = q ? (size_t)(q - p) : strlen(p);
        const char *v = p;
        size_t vl = pl;
        if (pl > 3 && p[1] == '{' && p[pl - 1] == '}') {
            const name_rule *r = find_rule(p + 2, pl - 3);
            if (!r || r == scope_rule())
                return KL_EINVAL;
            v = (const char *)n + r->offset;
            vl = strnlen(v, r->size);
            if (vl == 0)
                return KL_EINVAL;
            if (w + 1 >= outlen)
                return KL_ETOOBIG;
            out[w++] = '/';
        }
        if (w + vl >= outlen)
            return KL_ETOOBIG;
        memcpy(out + w, v, vl);
        w += vl;
        out[w] = '\0';
        p += pl;
    }
    if (w == 0)
        snprintf(out, outlen, "/");
    return 0;
}

bool kl_arm_pattern_valid(const char *pattern)
{
    if (!pattern || pattern[0] != '/')
        return false;
    const char *p = pattern + 1;
    size_t captures = 0, segs = 0;
    if (kl_arm_pattern_has_scope(pattern)) {
        /* The scope capture leads and is followed by at least one fixed segment. */
        p = pattern + strlen(SCOPE_CAPTURE);
        if (*p != '/')
            return false;
        p++;
        captures = 1;
    }
    for (;;) {
        size_t pl = strcspn(p, "/");
        if (pl == 0 || ++segs > KL_ARM_MAX_SEGMENTS)
            return false;
        if (is_capture(p, pl)) {
            if (++captures > KL_ARM_MAX_PARAMS || !find_rule(p + 1, pl - 2) ||
                find_rule(p + 1, pl - 2) == scope_rule())
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
        if (!r->valid(m->p[i].val, m->p[i].val_len) || m->p[i].val_len >= r->size) {
            kl_arm_error_set(e, 400, r->code, "%s", r->message);
            return KL_EINVAL;
        }
        char *dst = (char *)names + r->offset;
        if (r == scope_rule()) {
            if (kl_arm_canonical_scope(m->p[i].val, m->p[i].val_len, dst, e))
                return KL_EINVAL;
            names->has_scope = true;
            continue;
        }
        memcpy(dst, m->p[i].val, m->p[i].val_len);
        dst[m->p[i].val_len] = '\0';
        if (r->lower)
            kl_arm_lower(dst);
    }
    return 0;
}

int kl_arm_canonical_scope(const char *s, size_t n, char *out, kl_arm_error *e)
{
    kl_scope sc;
    /* The empty capture is the root; "/" itself is too. */
    if (n == 0 || (n == 1 && s[0] == '/')) {
        memcpy(out, "/", 2);
        return 0;
    }
    if (n > KL_MAX_SCOPE || kl_scope_parse(s, n, &sc) != 0) {
        kl_arm_error_set(e, 400, "InvalidScope", "%s", scope_rule()->message);
        return KL_EINVAL;
    }
    memcpy(out, sc.text, sc.len + 1);
    return 0;
}

int kl_arm_check_raw_scope_path(const char *raw, size_t len, kl_arm_error *e)
{
    /* The server collapses "//"; for a scope that would silently turn one id into
     * another, so the raw target decides. (A single final '/' is harmless and never
     * forms a pair.) */
    for (size_t i = 1; i < len; i++) {
        if (raw[i] == '/' && raw[i - 1] == '/') {
            kl_arm_error_set(e, 400, "InvalidScope", "%s", scope_rule()->message);
            return KL_EINVAL;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- $filter */

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

static bool ident_char(char c)
{
    return is_alnum(c) || c == '_' || c == '.';
}

/* A quoted value at *pp ('' stands for a quote) into out[0..size); advances past it. */
static int quoted_value(const char **pp, char *out, size_t size)
{
    const char *q = *pp;
    if (*q != '\'')
        return KL_EINVAL;
    q++;
    size_t o = 0;
    for (;;) {
        if (*q == '\0')
            return KL_EINVAL; /* unterminated */
        if (*q == '\'') {
            if (q[1] != '\'')
                break;
            q++; /* '' is a quote */
        }
        if (o + 1 >= size || (unsigned char)*q < 0x20)
            return KL_EINVAL;
        out[o++] = *q++;
    }
    out[o] = '\0';
    *pp = q + 1;
    return 0;
}

/* One term at *pp; advances past it. */
static int filter_term(const char **pp, kl_arm_filter_term *t)
{
    const char *p = skip_ws(*pp);
    size_t n = 0;
    while (ident_char(p[n]))
        n++;
    if (n == 0 || n >= sizeof(t->name))
        return KL_EINVAL;
    memcpy(t->name, p, n);
    t->name[n] = '\0';
    t->value[0] = '\0';
    t->has_arg = false;
    p += n;
    if (p[0] == '(') {
        /* name() or name('value'), e.g. assignedTo('{id}'). */
        t->call = true;
        p++;
        if (*p == '\'') {
            if (quoted_value(&p, t->value, sizeof(t->value)))
                return KL_EINVAL;
            t->has_arg = true;
        }
        if (*p != ')')
            return KL_EINVAL;
        *pp = p + 1;
        return 0;
    }
    t->call = false;
    const char *q = skip_ws(p);
    if (q == p || !((q[0] == 'e' || q[0] == 'E') && (q[1] == 'q' || q[1] == 'Q')))
        return KL_EINVAL;
    p = q + 2;
    q = skip_ws(p);
    if (q == p || quoted_value(&q, t->value, sizeof(t->value)))
        return KL_EINVAL;
    *pp = q;
    return 0;
}

int kl_arm_parse_filter(const char *f, kl_arm_filter_term *terms, size_t *n, const char *code,
                        kl_arm_error *e)
{
    *n = 0;
    const char *p = f ? f : "";
    for (;;) {
        if (*n == KL_ARM_MAX_FILTER_TERMS || filter_term(&p, &terms[*n]))
            goto bad;
        (*n)++;
        const char *q = skip_ws(p);
        if (*q == '\0')
            return 0;
        if (q == p || strncasecmp(q, "and", 3) != 0 || (q[3] != ' ' && q[3] != '\t'))
            goto bad;
        p = q + 3;
    }
bad:
    *n = 0;
    kl_arm_error_set(e, 400, code,
                     "The $filter is malformed or not supported: use terms such as "
                     "name() or property eq 'value', joined by 'and'.");
    return KL_EINVAL;
}

/* ---------------------------------------------------------------- api-version */

/* Versions are listed newest first, as ARM lists them in its refusal. The bodies
 * keyless serves are those of the newest version of each list; the older ones are
 * accepted because their request and response shapes are a subset of it for what
 * keyless implements (see docs/control-plane.md). */
const char *const kl_arm_versions_accounts[] = {
    "2025-12-01",         "2025-10-01-preview", "2025-09-01",
    "2025-07-01-preview", "2025-06-01",         "2025-04-01-preview",
    "2024-10-01",         "2024-06-01-preview", "2024-04-01-preview",
    "2023-10-01-preview", "2023-05-01",         "2022-12-01",
    "2022-10-01",         "2022-03-01",         "2021-10-01",
    "2021-04-30",         "2017-04-18",         NULL};
/* Deployments exist since 2021-10-01. */
const char *const kl_arm_versions_deployments[] = {
    "2025-12-01",         "2025-10-01-preview", "2025-09-01", "2025-07-01-preview",
    "2025-06-01",         "2025-04-01-preview", "2024-10-01", "2024-06-01-preview",
    "2024-04-01-preview", "2023-10-01-preview", "2023-05-01", "2022-12-01",
    "2022-10-01",         "2022-03-01",         "2021-10-01", NULL};
/* Role assignments with principalType and description (2018-09-01-preview on); the
 * body served is 2022-04-01's. */
const char *const kl_arm_versions_role_assignments[] = {"2022-04-01",         "2020-10-01-preview",
                                                        "2020-08-01-preview", "2020-04-01-preview",
                                                        "2018-09-01-preview", NULL};
/* Role definitions and permissions: the versions with dataActions (2018-01-01-preview
 * on) and the original 2015-07-01; the body served is 2022-04-01's. */
const char *const kl_arm_versions_role_definitions[] = {"2022-05-01-preview", "2022-04-01",
                                                        "2018-01-01-preview", "2015-07-01", NULL};
/* The versions the @azure/arm-appservice, @azure/arm-compute and @azure/arm-msi releases
 * of the last years send, and the older stable ones whose identity block is the same
 * (type, principalId, tenantId, userAssignedIdentities with principalId/clientId:
 * 2018-06-01 on for VMs, 2018-02-01 on for sites, 2018-11-30 on for identities); the body
 * served is the newest's, for what keyless implements (docs/managed-identities.md). */
const char *const kl_arm_versions_sites[] = {
    "2024-11-01", "2024-04-01", "2023-12-01", "2023-01-01", "2022-09-01", "2022-03-01",
    "2021-03-01", "2021-02-01", "2021-01-15", "2021-01-01", "2020-12-01", "2020-10-01",
    "2020-09-01", "2020-06-01", "2019-08-01", "2018-11-01", "2018-02-01", NULL};
const char *const kl_arm_versions_vms[] = {
    "2025-04-01", "2024-11-01", "2024-07-01", "2024-03-01", "2023-09-01", "2023-07-01",
    "2023-03-01", "2022-11-01", "2022-08-01", "2022-03-01", "2021-11-01", "2021-07-01",
    "2021-04-01", "2021-03-01", "2020-12-01", "2020-06-01", "2019-12-01", "2019-07-01",
    "2019-03-01", "2018-10-01", "2018-06-01", NULL};
const char *const kl_arm_versions_identities[] = {
    "2025-05-31-preview", "2025-01-31-preview", "2024-11-30",
    "2023-07-31-preview", "2023-01-31",         "2022-01-31-preview",
    "2021-09-30-preview", "2018-11-30",         NULL};

/* Echoed only when it looks like a version: it is client input. */
static bool version_echoable(const char *v)
{
    size_t n = strlen(v);
    if (n == 0 || n > KL_ARM_MAX_API_VERSION)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(v[i]) && v[i] != '-' && v[i] != '.')
            return false;
    return true;
}

int kl_arm_check_api_version(const char *v, const char *const *supported, kl_arm_error *e)
{
    if (!v || !*v) {
        kl_arm_error_set(e, 400, "MissingApiVersionParameter",
                         "The api-version query parameter (?api-version=) is required for all "
                         "requests.");
        return KL_EINVAL;
    }
    for (size_t i = 0; supported && supported[i]; i++)
        if (strcasecmp(v, supported[i]) == 0)
            return 0;
    char list[KL_ARM_MAX_VERSION_LIST] = "";
    size_t used = 0;
    for (size_t i = 0; supported && supported[i]; i++) {
        int w = snprintf(list + used, sizeof(list) - used, "%s%s", i ? "," : "", supported[i]);
        if (w < 0 || (size_t)w >= sizeof(list) - used)
            break; /* the lists are far shorter; a cut list beats a failure */
        used += (size_t)w;
    }
    if (version_echoable(v))
        kl_arm_error_set(e, 400, "InvalidApiVersionParameter",
                         "The api-version '%s' is invalid. The supported versions are '%s'.", v,
                         list);
    else
        kl_arm_error_set(e, 400, "InvalidApiVersionParameter",
                         "The api-version is invalid. The supported versions are '%s'.", list);
    return KL_EINVAL;
}

int kl_arm_unknown_type(const char *path, const char *api_version, kl_arm_error *e)
{
    /* The last "providers" segment names the namespace; the type is every other
     * segment after it (type, name, child type, name, ...). */
    const char *p = path, *ns = NULL;
    size_t ns_len = 0;
    while (p && *p) {
        const char *seg = p + 1;
        size_t len = strcspn(seg, "/");
        if (len == strlen("providers") && strncasecmp(seg, "providers", len) == 0 &&
            seg[len] == '/') {
            ns = seg + len + 1;
            ns_len = strcspn(ns, "/");
        }
        p = seg[len] ? seg + len : NULL;
    }
    if (!ns || ns_len == 0 || ns_len > KL_MAX_NAME || ns[ns_len] != '/')
        return KL_ENOTFOUND;
    char type[KL_MAX_SCOPE + 1];
    size_t tl = 0;
    const char *q = ns + ns_len + 1;
    for (size_t i = 0; *q; i++) {
        size_t len = strcspn(q, "/");
        if (len == 0 || len > KL_MAX_NAME)
            return KL_ENOTFOUND;
        for (size_t k = 0; k < len; k++)
            if (!is_alnum(q[k]) && q[k] != '-' && q[k] != '_' && q[k] != '.')
                return KL_ENOTFOUND; /* not a name: not echoed */
        if (i % 2 == 0) {
            if (tl + len + 2 > sizeof(type))
                return KL_ENOTFOUND;
            if (tl)
                type[tl++] = '/';
            memcpy(type + tl, q, len);
            tl += len;
        }
        q += len;
        if (*q == '/')
            q++;
    }
    for (size_t k = 0; k < ns_len; k++)
        if (!is_alnum(ns[k]) && ns[k] != '.')
            return KL_ENOTFOUND;
    if (tl == 0)
        return KL_ENOTFOUND;
    type[tl] = '\0';
    if (!api_version || !*api_version)
        return kl_arm_check_api_version(api_version, NULL, e);
    if (version_echoable(api_version))
        kl_arm_error_set(e, 404, "InvalidResourceType",
                         "The resource type '%s' could not be found in the namespace '%.*s' for "
                         "api version '%s'.",
                         type, (int)ns_len, ns, api_version);
    else
        kl_arm_error_set(e, 404, "InvalidResourceType",
                         "The resource type '%s' could not be found in the namespace '%.*s'.", type,
                         (int)ns_len, ns);
    return KL_EINVAL;
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

static int parse_body(const unsigned char *body, size_t len, size_t flags, json_t **out,
                      kl_arm_error *e)
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
        j = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES | flags, &jerr);
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

int kl_arm_parse_body(const unsigned char *body, size_t len, json_t **out, kl_arm_error *e)
{
    return parse_body(body, len, 0, out, e);
}

int kl_arm_parse_body_nul(const unsigned char *body, size_t len, json_t **out, kl_arm_error *e)
{
    return parse_body(body, len, JSON_ALLOW_NUL, out, e);
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
           strcmp(last, "action") == 0 || strcmp(last, "create") == 0 ||
           strcmp(last, "update") == 0;
}

int kl_mgmt_routes_check(const kl_mgmt_route *routes, size_t n)
{
    if (!routes || n == 0)
        return KL_EINVAL;
    for (size_t i = 0; i < n; i++) {
        const kl_mgmt_route *r = &routes[i];
        if (!r->method || !*r->method || !r->handler || !kl_arm_pattern_valid(r->pattern) ||
            !action_valid(r->action) ||
            (r->api == KL_MGMT_ARM && (!r->versions || !r->versions[0])))
            return KL_EINVAL;
        for (size_t j = 0; j < i; j++)
            if (strcmp(routes[j].method, r->method) == 0 &&
                kl_str_ieq(routes[j].pattern, r->pattern))
                return KL_EINVAL;
    }
    return 0;
}

int kl_arm_json_set(json_t *o, const char *k, json_t *v)
{
    return v ? json_object_set_new(o, k, v) : -1;
}

json_t *kl_arm_json_time(int64_t t)
{
    char buf[32];
    kl_time_iso8601(t, buf, sizeof(buf));
    return json_string(buf);
}

json_t *kl_arm_json_string_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}
