/* Scopes, Microsoft.Authorization targets, role definition files and listing look-ups
 * for the RBAC and directory commands; see authz.h for the contracts. */
#include "cli/authz.h"

#include <stdio.h>
#include <string.h>

#include "cli/http.h"
#include "common/err.h"
#include "rbac/scope.h"

#define AUTHZ_PROVIDER "/providers/Microsoft.Authorization/"
#define ROLE_DEFINITIONS_PATH "/providers/Microsoft.Authorization/roleDefinitions"
#define ROLE_ASSIGNMENTS_PATH "/providers/Microsoft.Authorization/roleAssignments/"

static bool scope_char_ok(unsigned char ch)
{
    if (ch <= 0x20 || ch >= 0x7f)
        return false; /* control, space, DEL and non-ASCII */
    return strchr("/\\?#%\"<>|*&[]{}^`", ch) == NULL;
}

bool kl_cli_scope_segment_ok(const char *s, size_t n)
{
    if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!scope_char_ok((unsigned char)s[i]))
            return false;
    return true;
}

int kl_cli_scope_check(const char *scope, char *err, size_t errlen)
{
    kl_scope sc;
    if (!scope || scope[0] == '\0')
        return kl_err_say(err, errlen, KL_EINVAL, "the scope is empty");
    /* What only the CLI cares about: every byte must go into a URL path as it is. The
     * grammar itself is keylessd's (rbac/scope.c), so the CLI refuses exactly what the
     * daemon would, with the daemon's words. */
    size_t len = strlen(scope);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)scope[i];
        if (ch == '/' || scope_char_ok(ch))
            continue;
        if (ch > 0x20 && ch < 0x7f)
            return kl_err_say(err, errlen, KL_EINVAL,
                              "the character '%c' is not allowed in a scope", ch);
        return kl_err_say(err, errlen, KL_EINVAL, "the byte 0x%02x is not allowed in a scope", ch);
    }
    int rc = kl_scope_parse(scope, len, &sc);
    if (rc == 0)
        return 0;
    /* kl_scope_parse says KL_ETOOBIG for too long and for too deep; the length tells
     * them apart (one trailing '/' does not count). */
    if (rc == KL_ETOOBIG && len - (scope[len - 1] == '/') <= KL_MAX_SCOPE)
        return kl_err_say(err, errlen, KL_EINVAL, "%s %s", KL_SCOPE_RULE, KL_SCOPE_DEPTH_RULE);
    return kl_err_say(err, errlen, KL_EINVAL, "%s", KL_SCOPE_RULE);
}

int kl_cli_scope_resolve(const char *scope, const char *account, const char *sub, const char *rg,
                         const char *dflt, kl_buf *out, char *err, size_t errlen)
{
    int rc;
    size_t start = out->len;

    if (account) {
        if (!kl_cli_scope_segment_ok(sub, strlen(sub)))
            return kl_err_say(err, errlen, KL_EINVAL, "subscription '%s' cannot be part of a scope",
                              sub);
        if (!kl_cli_scope_segment_ok(rg, strlen(rg)))
            return kl_err_say(err, errlen, KL_EINVAL,
                              "resource group '%s' cannot be part of a scope", rg);
        if (!kl_cli_scope_segment_ok(account, strlen(account)))
            return kl_err_say(err, errlen, KL_EINVAL, "'%s' is not an account name", account);
        rc = kl_buf_appendf(out,
                            "/subscriptions/%s/resourceGroups/%s/providers/"
                            "Microsoft.CognitiveServices/accounts/%s",
                            sub, rg, account);
    } else {
        const char *s = scope ? scope : dflt;
        size_t n = strlen(s);
        if (n > 1 && s[n - 1] == '/')
            n--;
        rc = kl_buf_append(out, s, n);
    }
    if (rc < 0)
        return rc;
    return kl_cli_scope_check(out->data + start, err, errlen);
}

static bool query_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

int kl_cli_append_query_value(kl_buf *out, const char *s)
{
    return kl_cli_http_append_encoded(out, s, query_char);
}

int kl_cli_authz_target(kl_buf *out, const char *scope, const char *collection, const char *name,
                        const char *filter)
{
    int rc;
    size_t n = strlen(scope);
    while (n > 0 && scope[n - 1] == '/')
        n--; /* "/" becomes "", so the path starts at /providers */
    /* The scope passed kl_cli_scope_check: every byte is one a URL path carries as is. */
    if ((rc = kl_buf_append(out, scope, n)) < 0 ||
        (rc = kl_buf_append_str(out, AUTHZ_PROVIDER)) < 0 ||
        (rc = kl_buf_append_str(out, collection)) < 0)
        return rc;
    if (name &&
        ((rc = kl_buf_append_str(out, "/")) < 0 || (rc = kl_cli_append_segment(out, name)) < 0))
        return rc;
    if ((rc = kl_buf_append_str(out, "?api-version=" KL_CLI_AUTHZ_API_VERSION)) < 0)
        return rc;
    if (filter && ((rc = kl_buf_append_str(out, "&$filter=")) < 0 ||
                   (rc = kl_cli_append_query_value(out, filter)) < 0))
        return rc;
    return 0;
}

static void lower_guid(const char *in, char out[KL_UUID_LEN + 1])
{
    for (size_t i = 0; i < KL_UUID_LEN; i++) {
        char ch = in[i];
        out[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
    }
    out[KL_UUID_LEN] = '\0';
}

/* Finds the last occurrence of needle in hay without regard to case. */
static const char *find_last_ci(const char *hay, const char *needle)
{
    size_t hn = strlen(hay), nn = strlen(needle);
    if (nn > hn)
        return NULL;
    for (size_t i = hn - nn + 1; i-- > 0;)
        if (kl_str_ieqn(hay + i, nn, needle, nn))
            return hay + i;
    return NULL;
}

int kl_cli_assignment_id_split(const char *id, kl_buf *scope_out, char guid[KL_UUID_LEN + 1])
{
    char why[128];
    const char *at = find_last_ci(id, ROLE_ASSIGNMENTS_PATH);
    if (!at)
        return KL_EINVAL;
    const char *g = at + strlen(ROLE_ASSIGNMENTS_PATH);
    if (!kl_uuid_valid(g, strlen(g)))
        return KL_EINVAL;
    int rc = at == id ? kl_buf_append_str(scope_out, "/")
                      : kl_buf_append(scope_out, id, (size_t)(at - id));
    if (rc < 0)
        return rc;
    if (scope_out->data[0] != '/' || kl_cli_scope_check(scope_out->data, why, sizeof(why)) < 0)
        return KL_EINVAL;
    lower_guid(g, guid);
    return 0;
}

const char *kl_cli_last_segment(const char *id)
{
    const char *slash = strrchr(id, '/');
    return slash ? slash + 1 : id;
}

static bool str_field_ieq(const json_t *obj, const char *key, const char *x)
{
    const char *v = json_string_value(json_object_get(obj, key));
    return v && kl_str_ieq(v, x);
}

size_t kl_cli_directory_match(const json_t *list, const char *x, json_t **found)
{
    size_t i, n = 0;
    json_t *e;

    *found = NULL;
    /* An id wins over a name, so an application whose name looks like another's id
     * cannot take its place. */
    json_array_foreach(list, i, e)
    {
        if (str_field_ieq(e, "id", x) || str_field_ieq(e, "appId", x)) {
            if (n++ == 0)
                *found = e;
        }
    }
    if (n > 0)
        return n;
    json_array_foreach(list, i, e)
    {
        if (str_field_ieq(e, "displayName", x)) {
            if (n++ == 0)
                *found = e;
        }
    }
    return n;
}

size_t kl_cli_role_match(const json_t *list, const char *x, json_t **found)
{
    size_t i, n = 0;
    json_t *e;

    *found = NULL;
    json_array_foreach(list, i, e)
    {
        if (str_field_ieq(e, "name", x)) {
            if (n++ == 0)
                *found = e;
        }
    }
    if (n > 0)
        return n;
    json_array_foreach(list, i, e)
    {
        if (str_field_ieq(json_object_get(e, "properties"), "roleName", x)) {
            if (n++ == 0)
                *found = e;
        }
    }
    return n;
}

const char *kl_cli_role_name_of(const json_t *list, const char *role_definition_id)
{
    size_t i;
    json_t *e;
    if (!role_definition_id)
        return NULL;
    const char *guid = kl_cli_last_segment(role_definition_id);
    json_array_foreach(list, i, e)
    {
        if (str_field_ieq(e, "name", guid))
            return json_string_value(json_object_get(json_object_get(e, "properties"), "roleName"));
    }
    return NULL;
}

const char *kl_cli_display_name_of(const json_t *list, const char *object_id)
{
    size_t i;
    json_t *e;
    if (!object_id)
        return NULL;
    json_array_foreach(list, i, e)
    {
        if (str_field_ieq(e, "id", object_id))
            return json_string_value(json_object_get(e, "displayName"));
    }
    return NULL;
}

int kl_cli_join_strings(const json_t *array, const char *sep, kl_buf *out)
{
    size_t i, k = 0;
    json_t *v;
    json_array_foreach(array, i, v)
    {
        if (!json_is_string(v))
            continue;
        int rc;
        if (k++ > 0 && (rc = kl_buf_append_str(out, sep)) < 0)
            return rc;
        if ((rc = kl_buf_append(out, json_string_value(v), json_string_length(v))) < 0)
            return rc;
    }
    return 0;
}

/* ---- role definition files ---- */

/* The value of key in obj compared without regard to case; KL_EINVAL (reason in err)
 * when two keys differ only by case. *v is NULL when absent. */
static int iget(const json_t *obj, const char *key, json_t **v, char *err, size_t errlen)
{
    const char *k;
    json_t *val;
    *v = NULL;
    json_object_foreach((json_t *)obj, k, val)
    {
        if (!kl_str_ieq(k, key))
            continue;
        if (*v)
            return kl_err_say(err, errlen, KL_EINVAL, "\"%s\" is given twice", key);
        *v = val;
    }
    return 0;
}

/* The GUID named by "id": a GUID, or a role definition id ending in one. */
static int guid_of_id(const char *id, char guid[KL_UUID_LEN + 1], char *err, size_t errlen)
{
    const char *g = id;
    if (strchr(id, '/')) {
        const char *at = find_last_ci(id, ROLE_DEFINITIONS_PATH "/");
        if (!at)
            return kl_err_say(err, errlen, KL_EINVAL,
                              "\"id\" is neither a GUID nor a role definition id");
        g = at + strlen(ROLE_DEFINITIONS_PATH "/");
    }
    if (!kl_uuid_valid(g, strlen(g)))
        return kl_err_say(err, errlen, KL_EINVAL,
                          "\"id\" is neither a GUID nor a role definition id");
    lower_guid(g, guid);
    return 0;
}

/* Takes the GUID from "name" (when name_is_guid says it is one) and "id". */
static int file_guid(const json_t *name, bool name_is_guid, const json_t *id,
                     char guid[KL_UUID_LEN + 1], char *err, size_t errlen)
{
    char from_id[KL_UUID_LEN + 1];
    guid[0] = '\0';
    if (name_is_guid)
        lower_guid(json_string_value(name), guid);
    if (id) {
        if (!json_is_string(id))
            return kl_err_say(err, errlen, KL_EINVAL, "\"id\" must be a string");
        int rc = guid_of_id(json_string_value(id), from_id, err, errlen);
        if (rc < 0)
            return rc;
        if (guid[0] && strcmp(guid, from_id) != 0)
            return kl_err_say(err, errlen, KL_EINVAL, "\"name\" and \"id\" name different GUIDs");
        memcpy(guid, from_id, sizeof(from_id));
    }
    return 0;
}

static bool is_guid_string(const json_t *v)
{
    return json_is_string(v) && kl_uuid_valid(json_string_value(v), json_string_length(v));
}

/* A list of action strings; a missing one becomes []. Returns a new reference. */
static int action_list(const json_t *v, const char *key, json_t **out, char *err, size_t errlen)
{
    size_t i;
    json_t *e;
    *out = NULL;
    if (!v) {
        *out = json_array();
        return *out ? 0 : KL_ENOMEM;
    }
    if (!json_is_array(v))
        return kl_err_say(err, errlen, KL_EINVAL, "\"%s\" must be a list of strings", key);
    json_array_foreach(v, i, e)
    {
        if (!json_is_string(e) || json_string_length(e) == 0)
            return kl_err_say(err, errlen, KL_EINVAL, "\"%s\" must be a list of non-empty strings",
                              key);
    }
    *out = json_deep_copy(v);
    return *out ? 0 : KL_ENOMEM;
}

/* assignableScopes: checked, or [default_scope] when missing. Returns a new reference. */
static int scope_list(const json_t *v, const char *default_scope, json_t **out, char *err,
                      size_t errlen)
{
    size_t i;
    json_t *e;
    char why[512];
    *out = NULL;
    if (!v) {
        *out = json_pack("[s]", default_scope);
        return *out ? 0 : KL_ENOMEM;
    }
    if (!json_is_array(v) || json_array_size(v) == 0)
        return kl_err_say(err, errlen, KL_EINVAL,
                          "\"assignableScopes\" must be a non-empty list of scopes");
    json_array_foreach(v, i, e)
    {
        if (!json_is_string(e))
            return kl_err_say(err, errlen, KL_EINVAL,
                              "\"assignableScopes\" must be a list of strings");
        if (kl_cli_scope_check(json_string_value(e), why, sizeof(why)) < 0)
            return kl_err_say(err, errlen, KL_EINVAL, "assignable scope '%s': %s",
                              json_string_value(e), why);
    }
    *out = json_deep_copy(v);
    return *out ? 0 : KL_ENOMEM;
}

/* Properties only the server sets; a file made from `show -o json` carries them. */
static const char *const SERVER_PROPERTIES[] = {"createdOn", "updatedOn", "createdBy", "updatedBy"};

static int arm_form(const json_t *file, const json_t *props, const char *default_scope,
                    json_t **body, char guid[KL_UUID_LEN + 1], char *err, size_t errlen)
{
    const char *k;
    json_t *v, *name = NULL, *id = NULL, *copy = NULL, *scopes = NULL;
    int rc;

    json_object_foreach((json_t *)file, k, v)
    {
        if (kl_str_ieq(k, "name"))
            name = v;
        else if (kl_str_ieq(k, "id"))
            id = v;
        else if (!kl_str_ieq(k, "type") && !kl_str_ieq(k, "properties"))
            return kl_err_say(err, errlen, KL_EINVAL, "unknown key \"%s\" next to \"properties\"",
                              k);
    }
    if (!json_is_object(props))
        return kl_err_say(err, errlen, KL_EINVAL, "\"properties\" must be an object");
    if (name && !is_guid_string(name))
        return kl_err_say(err, errlen, KL_EINVAL,
                          "\"name\" must be the role's GUID (the role's name goes in "
                          "properties.roleName)");
    if ((rc = file_guid(name, name != NULL, id, guid, err, errlen)) < 0)
        return rc;
    const char *role_name = json_string_value(json_object_get(props, "roleName"));
    if (!role_name || role_name[0] == '\0')
        return kl_err_say(err, errlen, KL_EINVAL, "properties.roleName is missing or empty");
    json_t *perms = json_object_get(props, "permissions");
    if (perms && !json_is_array(perms))
        return kl_err_say(err, errlen, KL_EINVAL, "properties.permissions must be a list");

    if (!(copy = json_deep_copy(props)))
        goto nomem;
    for (size_t i = 0; i < sizeof(SERVER_PROPERTIES) / sizeof(SERVER_PROPERTIES[0]); i++)
        json_object_del(copy, SERVER_PROPERTIES[i]);
    if ((rc = scope_list(json_object_get(props, "assignableScopes"), default_scope, &scopes, err,
                         errlen)) < 0)
        goto out;
    if (json_object_set_new(copy, "assignableScopes", scopes) < 0) {
        scopes = NULL;
        goto nomem;
    }
    scopes = NULL;
    if (!(*body = json_pack("{s:O}", "properties", copy)))
        goto nomem;
    rc = 0;
    goto out;
nomem:
    rc = KL_ENOMEM;
    kl_err_say(err, errlen, KL_EINVAL, "out of memory");
out:
    json_decref(copy);
    json_decref(scopes);
    return rc;
}

static int flat_form(const json_t *file, const char *default_scope, json_t **body,
                     char guid[KL_UUID_LEN + 1], char *err, size_t errlen)
{
    static const char *const KNOWN[] = {
        "name",    "id",         "roleName",    "isCustom",       "description",
        "actions", "notActions", "dataActions", "notDataActions", "assignableScopes",
    };
    static const char *const LISTS[] = {"actions", "notActions", "dataActions", "notDataActions"};
    const char *k;
    json_t *v, *got[sizeof(KNOWN) / sizeof(KNOWN[0])];
    json_t *lists[4] = {NULL, NULL, NULL, NULL}, *scopes = NULL;
    int rc;

    json_object_foreach((json_t *)file, k, v)
    {
        bool known = false;
        for (size_t i = 0; i < sizeof(KNOWN) / sizeof(KNOWN[0]) && !known; i++)
            known = kl_str_ieq(k, KNOWN[i]);
        if (!known)
            return kl_err_say(err, errlen, KL_EINVAL,
                              "unknown key \"%s\" (expected roleName, description, actions, "
                              "notActions, dataActions, notDataActions, assignableScopes)",
                              k);
    }
    for (size_t i = 0; i < sizeof(KNOWN) / sizeof(KNOWN[0]); i++)
        if ((rc = iget(file, KNOWN[i], &got[i], err, errlen)) < 0)
            return rc;
    json_t *name = got[0], *id = got[1], *role_name = got[2], *desc = got[4];

    /* `az role definition create` files name the role with "Name"; ARM uses "name" for
     * the GUID. A GUID is a GUID; anything else is the role's name. */
    bool name_is_guid = is_guid_string(name);
    if (name && !json_is_string(name))
        return kl_err_say(err, errlen, KL_EINVAL, "\"name\" must be a string");
    if (name && !name_is_guid) {
        if (role_name)
            return kl_err_say(err, errlen, KL_EINVAL,
                              "\"name\" must be the role's GUID when \"roleName\" is given");
        role_name = name;
    }
    if (!json_is_string(role_name) || json_string_length(role_name) == 0)
        return kl_err_say(err, errlen, KL_EINVAL,
                          "the role needs a name: \"roleName\" is missing or empty");
    if (desc && !json_is_string(desc))
        return kl_err_say(err, errlen, KL_EINVAL, "\"description\" must be a string");
    if (got[3] && !json_is_boolean(got[3]))
        return kl_err_say(err, errlen, KL_EINVAL, "\"isCustom\" must be true or false");
    if ((rc = file_guid(name, name_is_guid, id, guid, err, errlen)) < 0)
        return rc;

    for (size_t i = 0; i < 4; i++)
        if ((rc = action_list(got[5 + i], LISTS[i], &lists[i], err, errlen)) < 0)
            goto out;
    if ((rc = scope_list(got[9], default_scope, &scopes, err, errlen)) < 0)
        goto out;
    *body = json_pack("{s:{s:O, s:s, s:O, s:[{s:O, s:O, s:O, s:O}]}}", "properties", "roleName",
                      role_name, "description", desc ? json_string_value(desc) : "",
                      "assignableScopes", scopes, "permissions", "actions", lists[0], "notActions",
                      lists[1], "dataActions", lists[2], "notDataActions", lists[3]);
    if (!*body) {
        rc = KL_ENOMEM;
        kl_err_say(err, errlen, KL_EINVAL, "out of memory");
        goto out;
    }
    rc = 0;
out:
    if (rc == KL_ENOMEM && errlen > 0 && err[0] == '\0')
        kl_err_say(err, errlen, KL_EINVAL, "out of memory");
    for (size_t i = 0; i < 4; i++)
        json_decref(lists[i]);
    json_decref(scopes);
    return rc;
}

int kl_cli_role_definition_body(const json_t *file, const char *default_scope, json_t **body,
                                char guid[KL_UUID_LEN + 1], char *err, size_t errlen)
{
    json_t *props = NULL;
    *body = NULL;
    guid[0] = '\0';
    if (errlen > 0)
        err[0] = '\0';
    if (!json_is_object(file))
        return kl_err_say(err, errlen, KL_EINVAL, "a role definition is a JSON object");
    int rc = iget(file, "properties", &props, err, errlen);
    if (rc < 0)
        return rc;
    if (props)
        rc = arm_form(file, props, default_scope, body, guid, err, errlen);
    else
        rc = flat_form(file, default_scope, body, guid, err, errlen);
    if (rc < 0)
        guid[0] = '\0';
    return rc;
}
