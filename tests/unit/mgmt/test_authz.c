/* Unit tests of the control plane's authorization surface without HTTP: multi-segment
 * {scope} captures at every level and the hostile forms they refuse, $filter parsing,
 * the route table's actions, and the Microsoft.Authorization bodies (role definitions
 * and role assignments in and out). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "mgmt/arm.h"
#include "mgmt/internal.h"
#include "mgmt/roles.h"
#include "mgmt/mgmt_route.h"
#include "rbac/builtin.h"

#define SUB "/subscriptions/00000000-0000-0000-0000-000000000000"
#define RG SUB "/resourceGroups/rg"
#define ACCT RG "/providers/Microsoft.CognitiveServices/accounts/demo"
#define RA_NAME "6f6b2c1a-0d7e-4c1b-9a52-1f0e7d9c3b21"
#define RA "/providers/Microsoft.Authorization/roleAssignments"
#define OID "2c9d4c7e-7a0f-4a52-8a6e-5a1a2b3c4d5e"

/* Matches path against pattern and resolves its names; returns the resolve result
 * (or KL_ENOTFOUND when the pattern does not match). */
static int resolve(const char *pattern, const char *path, kl_arm_names *n, kl_arm_error *e)
{
    kl_arm_match m;
    memset(e, 0, sizeof(*e));
    if (!kl_arm_match_path(pattern, path, &m))
        return KL_ENOTFOUND;
    return kl_arm_resolve_names(&m, n, e);
}

static char *dumps(const json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    assert_non_null(s);
    return s;
}

/* ------------------------------------------------------------------ scope captures */

static void test_scope_levels(void **state)
{
    (void)state;
    kl_arm_names n;
    kl_arm_error e;
    static const struct {
        const char *path, *scope;
    } ok[] = {
        {RA "/" RA_NAME, "/"},
        {SUB RA "/" RA_NAME, SUB},
        {RG RA "/" RA_NAME, RG},
        {ACCT RA "/" RA_NAME, ACCT},
        {ACCT "/deployments/chat" RA "/" RA_NAME, ACCT "/deployments/chat"},
        /* An extension resource below a resource, and a management group. */
        {ACCT "/providers/Microsoft.Insights/diagnosticSettings/d" RA "/" RA_NAME,
         ACCT "/providers/Microsoft.Insights/diagnosticSettings/d"},
        {"/providers/Microsoft.Management/managementGroups/g" RA "/" RA_NAME,
         "/providers/Microsoft.Management/managementGroups/g"},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(resolve(KL_ARM_ROLE_ASSIGNMENT, ok[i].path, &n, &e), 0);
        assert_true(n.has_scope);
        assert_string_equal(n.scope, ok[i].scope);
        assert_string_equal(n.role_assignment, RA_NAME);
    }
    /* Collections and the other Microsoft.Authorization routes take the same scopes. */
    assert_int_equal(resolve(KL_ARM_ROLE_ASSIGNMENTS, RA, &n, &e), 0);
    assert_string_equal(n.scope, "/");
    assert_int_equal(resolve(KL_ARM_ROLE_ASSIGNMENTS, RG RA, &n, &e), 0);
    assert_string_equal(n.scope, RG);
    assert_int_equal(resolve(KL_ARM_ROLE_DEFINITION,
                             SUB "/providers/Microsoft.Authorization/roleDefinitions/" RA_NAME, &n,
                             &e),
                     0);
    assert_string_equal(n.scope, SUB);
    assert_string_equal(n.role_definition, RA_NAME);
    assert_int_equal(
        resolve(KL_ARM_PERMISSIONS, ACCT "/providers/Microsoft.Authorization/permissions", &n, &e),
        0);
    assert_string_equal(n.scope, ACCT);

    /* Mixed case: fixed words are respelled, names kept, the GUID lower-cased. */
    assert_int_equal(resolve(KL_ARM_ROLE_ASSIGNMENT,
                             "/SUBSCRIPTIONS/Sub1/RESOURCEGROUPS/Rg/PROVIDERS/microsoft.x/T/N"
                             "/providers/microsoft.authorization/ROLEASSIGNMENTS/" RA_NAME,
                             &n, &e),
                     0);
    assert_string_equal(n.scope, "/subscriptions/Sub1/resourceGroups/Rg/providers/microsoft.x/T/N");
    assert_int_equal(
        resolve(KL_ARM_ROLE_ASSIGNMENT, SUB RA "/6F6B2C1A-0D7E-4C1B-9A52-1F0E7D9C3B21", &n, &e), 0);
    assert_string_equal(n.role_assignment, RA_NAME);

    /* A path that only ends differently is another route (or none). */
    assert_int_equal(resolve(KL_ARM_ROLE_ASSIGNMENT, SUB RA, &n, &e), KL_ENOTFOUND);
    assert_int_equal(resolve(KL_ARM_ROLE_ASSIGNMENTS, SUB RA "/" RA_NAME, &n, &e), KL_ENOTFOUND);
    assert_int_equal(resolve(KL_ARM_ROLE_ASSIGNMENTS, "/", &n, &e), KL_ENOTFOUND);
    assert_int_equal(resolve(KL_ARM_ROLE_DEFINITIONS, SUB RA, &n, &e), KL_ENOTFOUND);
}

static void test_scope_refusals(void **state)
{
    (void)state;
    kl_arm_names n;
    kl_arm_error e;
    static const char *const bad[] = {
        SUB "/resourceGroups/../x" RA "/" RA_NAME, /* dot-dot */
        SUB "/resourceGroups/." RA "/" RA_NAME,    /* dot */
        SUB "/resourceGroups" RA "/" RA_NAME,      /* a group without its name */
        "/subscriptions" RA "/" RA_NAME,           /* a subscription without its id */
        SUB "/bogus/x" RA "/" RA_NAME,             /* not a scope grammar */
        SUB "/resourceGroups/a\x01"
            "b" RA "/" RA_NAME,                       /* control character */
        SUB "/resourceGroups/a%2e%2e" RA "/" RA_NAME, /* escapes are not decoded */
        SUB "/resourceGroups/a'b\"c" RA "/" RA_NAME,  /* quotes */
        SUB "/resourceGroups/a;b|c" RA "/" RA_NAME,
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = resolve(KL_ARM_ROLE_ASSIGNMENT, bad[i], &n, &e);
        assert_int_equal(rc, KL_EINVAL);
        assert_int_equal(e.status, 400);
        assert_string_equal(e.code, "InvalidScope");
    }

    /* 10 KB of scope: refused without echoing it. */
    size_t big = 10 * 1024;
    char *p = malloc(big + 128);
    assert_non_null(p);
    memcpy(p, "/subscriptions/", 15);
    size_t at = 15;
    memset(p + at, 'a', big);
    snprintf(p + at + big, 128, RA "/" RA_NAME);
    assert_int_equal(resolve(KL_ARM_ROLE_ASSIGNMENT, p, &n, &e), KL_EINVAL);
    assert_string_equal(e.code, "InvalidScope");
    assert_null(strstr(e.message, "aaaa"));
    free(p);

    /* The raw path decides about "//" (the server collapses it) and a lone final '/'
     * is harmless. */
    const char *raw = SUB "//resourceGroups/rg" RA "/" RA_NAME;
    assert_int_equal(kl_arm_check_raw_scope_path(raw, strlen(raw), &e), KL_EINVAL);
    assert_string_equal(e.code, "InvalidScope");
    raw = "//providers/Microsoft.Authorization/roleAssignments";
    assert_int_equal(kl_arm_check_raw_scope_path(raw, strlen(raw), &e), KL_EINVAL);
    raw = RG RA "/" RA_NAME "/";
    assert_int_equal(kl_arm_check_raw_scope_path(raw, strlen(raw), &e), 0);
    raw = RG RA "/" RA_NAME "//";
    assert_int_equal(kl_arm_check_raw_scope_path(raw, strlen(raw), &e), KL_EINVAL);

    /* Non-GUID names. */
    assert_int_equal(resolve(KL_ARM_ROLE_ASSIGNMENT, SUB RA "/not-a-guid", &n, &e), KL_EINVAL);
    assert_string_equal(e.code, "InvalidRoleAssignmentId");
    assert_int_equal(resolve(KL_ARM_ROLE_DEFINITION,
                             SUB "/providers/Microsoft.Authorization/roleDefinitions/x'--", &n, &e),
                     KL_EINVAL);
    assert_string_equal(e.code, "InvalidRoleDefinitionId");
    assert_int_equal(resolve(KL_GRAPH_APPLICATION, "/v1.0/applications/my-app", &n, &e), KL_EINVAL);
    assert_string_equal(e.code, "Request_BadRequest");

    /* Scopes from bodies. */
    char out[KL_MAX_SCOPE + 1];
    assert_int_equal(kl_arm_canonical_scope("/", 1, out, &e), 0);
    assert_string_equal(out, "/");
    assert_int_equal(kl_arm_canonical_scope(SUB "/", strlen(SUB) + 1, out, &e), 0);
    assert_string_equal(out, SUB);
    assert_int_equal(kl_arm_canonical_scope("subscriptions/x", 15, out, &e), KL_EINVAL);
    assert_int_equal(kl_arm_canonical_scope(SUB "//", strlen(SUB) + 2, out, &e), KL_EINVAL);
}

static void test_pattern_rules(void **state)
{
    (void)state;
    assert_true(kl_arm_pattern_valid(KL_ARM_ROLE_ASSIGNMENT));
    assert_true(kl_arm_pattern_valid(KL_GRAPH_APPLICATION));
    assert_true(kl_arm_pattern_has_scope(KL_ARM_PERMISSIONS));
    assert_false(kl_arm_pattern_has_scope(KL_ARM_CHECK_ACCESS));
    /* The scope capture only leads, and never stands alone. */
    assert_false(kl_arm_pattern_valid("/subscriptions/{scope}/x"));
    assert_false(kl_arm_pattern_valid("/{scope}"));
    assert_false(kl_arm_match_path("/{scope}", "/subscriptions/s", NULL));
}

/* ------------------------------------------------------------------ route table */

static const kl_mgmt_route *route_for(const char *method, const char *path)
{
    size_t n = 0;
    const kl_mgmt_route *r = kl_mgmt_routes(&n);
    const kl_mgmt_route *found = NULL;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(r[i].method, method) == 0 && kl_arm_match_path(r[i].pattern, path, NULL)) {
            assert_null(found); /* one route per method and path */
            found = &r[i];
        }
    }
    return found;
}

static void test_routes_declare_actions(void **state)
{
    (void)state;
    static const struct {
        const char *method, *path, *action;
        kl_mgmt_authz authz;
    } want[] = {
        {"PUT", RG RA "/" RA_NAME, "Microsoft.Authorization/roleAssignments/write",
         KL_MGMT_AUTHZ_SCOPE},
        {"DELETE", RA "/" RA_NAME, "Microsoft.Authorization/roleAssignments/delete",
         KL_MGMT_AUTHZ_SCOPE},
        {"GET", ACCT RA, "Microsoft.Authorization/roleAssignments/read", KL_MGMT_AUTHZ_SCOPE},
        {"PUT", SUB "/providers/Microsoft.Authorization/roleDefinitions/" RA_NAME,
         "Microsoft.Authorization/roleDefinitions/write", KL_MGMT_AUTHZ_SCOPE},
        {"GET", RG "/providers/Microsoft.Authorization/permissions",
         "Microsoft.Authorization/permissions/read", KL_MGMT_AUTHZ_SELF},
        {"POST", "/providers/Microsoft.Authorization/checkAccess",
         "Microsoft.Authorization/roleAssignments/read", KL_MGMT_AUTHZ_HANDLER},
        {"POST", "/v1.0/applications", "microsoft.directory/applications/create",
         KL_MGMT_AUTHZ_SCOPE},
        {"PATCH", "/v1.0/applications/" OID, "microsoft.directory/applications/basic/update",
         KL_MGMT_AUTHZ_SCOPE},
        {"GET", "/v1.0/servicePrincipals", "microsoft.directory/servicePrincipals/standard/read",
         KL_MGMT_AUTHZ_SCOPE},
        {"GET", "/v1.0/organization", "microsoft.directory/organization/standard/read",
         KL_MGMT_AUTHZ_SCOPE},
        {"GET", SUB "/providers/Microsoft.CognitiveServices/accounts",
         "Microsoft.CognitiveServices/accounts/read", KL_MGMT_AUTHZ_LIST},
        {"POST", ACCT "/listKeys", "Microsoft.CognitiveServices/accounts/listKeys/action",
         KL_MGMT_AUTHZ_SCOPE},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const kl_mgmt_route *r = route_for(want[i].method, want[i].path);
        assert_non_null(r);
        assert_string_equal(r->action, want[i].action);
        assert_int_equal(r->authz, want[i].authz);
    }
    assert_null(route_for("POST", RG RA "/" RA_NAME));

    /* The table check knows Entra's verbs but still refuses a route without one. */
    kl_mgmt_route t = *route_for("POST", "/v1.0/applications");
    assert_int_equal(kl_mgmt_routes_check(&t, 1), 0);
    t.action = "microsoft.directory/applications/creat";
    assert_int_equal(kl_mgmt_routes_check(&t, 1), KL_EINVAL);
    t.action = NULL;
    assert_int_equal(kl_mgmt_routes_check(&t, 1), KL_EINVAL);
}

/* ------------------------------------------------------------------ $filter */

static void test_filter(void **state)
{
    (void)state;
    kl_arm_filter_term t[KL_ARM_MAX_FILTER_TERMS];
    size_t n = 0;
    kl_arm_error e;
    assert_int_equal(kl_arm_parse_filter("atScope()", t, &n, "InvalidFilterInQueryString", &e), 0);
    assert_int_equal(n, 1);
    assert_true(t[0].call);
    assert_string_equal(t[0].name, "atScope");

    assert_int_equal(kl_arm_parse_filter("principalId eq '" OID "'", t, &n, "X", &e), 0);
    assert_int_equal(n, 1);
    assert_false(t[0].call);
    assert_string_equal(t[0].name, "principalId");
    assert_string_equal(t[0].value, OID);

    assert_int_equal(
        kl_arm_parse_filter("  atScope()   AND principalId  EQ  '" OID "'  ", t, &n, "X", &e), 0);
    assert_int_equal(n, 2);
    assert_string_equal(t[1].value, OID);

    /* A call with one quoted argument: what az role assignment list --include-groups
     * sends. */
    assert_int_equal(kl_arm_parse_filter("atScope() and assignedTo('" OID "')", t, &n, "X", &e), 0);
    assert_int_equal(n, 2);
    assert_true(t[0].call);
    assert_false(t[0].has_arg);
    assert_true(t[1].call);
    assert_true(t[1].has_arg);
    assert_string_equal(t[1].name, "assignedTo");
    assert_string_equal(t[1].value, OID);

    /* '' is a quote inside a value; the value is data, never SQL. */
    assert_int_equal(
        kl_arm_parse_filter("roleName eq 'O''Brien''s; DROP TABLE x;--'", t, &n, "X", &e), 0);
    assert_string_equal(t[0].value, "O'Brien's; DROP TABLE x;--");

    static const char *const bad[] = {
        "",
        "atScope",
        "atScope() or principalId eq 'x'",
        "principalId eq 'x",
        "principalId ne 'x'",
        "principalId eq x",
        "principalId eq 'x' garbage",
        "atScope() and",
        "atScope()and principalId eq 'x'",
        "a() and b() and c() and d() and e()",
        "principalId eq 'a\x01'",
        "assignedTo('x'",
        "assignedTo('x' )",
        "assignedTo(x)",
        "assignedTo('x",
        "assignedTo('x'x",
        "atScope(x",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&e, 0, sizeof(e));
        assert_int_equal(kl_arm_parse_filter(bad[i], t, &n, "InvalidFilterInQueryString", &e),
                         KL_EINVAL);
        assert_int_equal(e.status, 400);
        assert_string_equal(e.code, "InvalidFilterInQueryString");
        assert_int_equal(n, 0);
    }
    /* A value longer than any name is refused, not truncated. */
    char *big = malloc(2000);
    assert_non_null(big);
    memcpy(big, "roleName eq '", 13);
    memset(big + 13, 'a', 1900);
    memcpy(big + 1913, "'", 2);
    assert_int_equal(kl_arm_parse_filter(big, t, &n, "X", &e), KL_EINVAL);
    free(big);
}

/* ------------------------------------------------------------------ role definitions */

static int parse_role(const char *body, const char *id, const char *scope, kl_role_input *in,
                      kl_arm_error *e)
{
    json_t *j = json_loads(body, 0, NULL);
    assert_non_null(j);
    memset(e, 0, sizeof(*e));
    int rc = kl_roles_parse_definition(j, id, scope, in, e);
    json_decref(j);
    return rc;
}

#define CUSTOM_ID "3d7c1a2b-0000-4000-8000-0000000000aa"

static void test_role_definition_body(void **state)
{
    (void)state;
    kl_role_input in;
    kl_arm_error e;
    assert_int_equal(
        parse_role("{\"properties\":{\"roleName\":\"Key Lister\",\"description\":\"d\","
                   "\"assignableScopes\":[\"/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000000/"
                   "resourcegroups/rg/\",\"" RG "\"],\"permissions\":[{\"actions\":["
                   "\"Microsoft.CognitiveServices/accounts/listKeys/action\"]}]}}",
                   CUSTOM_ID, SUB, &in, &e),
        0);
    assert_string_equal(in.name, "Key Lister");
    char *s = dumps(in.assignable_scopes);
    assert_string_equal(s, "[\"" RG "\"]"); /* canonical, duplicates dropped */
    free(s);
    s = dumps(in.permissions);
    assert_string_equal(s,
                        "[{\"actions\":[\"Microsoft.CognitiveServices/accounts/listKeys/"
                        "action\"],\"dataActions\":[],\"notActions\":[],\"notDataActions\":[]}]");
    free(s);
    kl_roles_definition_input_free(&in);

    /* Built-ins: their GUIDs cannot be written, their names not taken. */
    assert_int_equal(parse_role("{\"properties\":{}}", KL_ROLE_OWNER, "/", &in, &e), KL_EPERM);
    assert_int_equal(e.status, 400);
    assert_string_equal(e.code, "BuiltInRoleCannotBeModified");
    assert_int_equal(parse_role("{\"properties\":{\"roleName\":\"reader\",\"assignableScopes\":"
                                "[\"/\"],\"permissions\":[{\"actions\":[\"*/read\"]}]}}",
                                CUSTOM_ID, "/", &in, &e),
                     KL_ECONFLICT);
    assert_int_equal(e.status, 409);
    assert_string_equal(e.code, "RoleDefinitionWithSameNameExists");

    static const char *const bad[] = {
        "{}",
        "{\"properties\":{\"roleName\":\"\",\"assignableScopes\":[\"/\"],\"permissions\":"
        "[{\"actions\":[\"a/b\"]}]}}",
        "{\"properties\":{\"roleName\":\"r\",\"assignableScopes\":[\"/\"],\"permissions\":[]}}",
        "{\"properties\":{\"roleName\":\"r\",\"assignableScopes\":[\"/\"],\"permissions\":"
        "[{\"notActions\":[\"a/b\"]}]}}",
        "{\"properties\":{\"roleName\":\"r\",\"assignableScopes\":[\"/\"],\"permissions\":"
        "[{\"actions\":[\"has space\"]}]}}",
        "{\"properties\":{\"roleName\":\"r\",\"assignableScopes\":[],\"permissions\":"
        "[{\"actions\":[\"a/b\"]}]}}",
        "{\"properties\":{\"roleName\":\"r\",\"assignableScopes\":[\"" SUB
        "/resourceGroups/..\"],\"permissions\":[{\"actions\":[\"a/b\"]}]}}",
        "{\"properties\":{\"roleName\":\"r\",\"assignableScopes\":[\"\"],\"permissions\":"
        "[{\"actions\":[\"a/b\"]}]}}",
        /* outside the scope it is created at (SUB below) */
        "{\"properties\":{\"roleName\":\"r\",\"assignableScopes\":[\"/\"],\"permissions\":"
        "[{\"actions\":[\"a/b\"]}]}}",
        "{\"properties\":{\"roleName\":\"r\",\"assignableScopes\":[\"/subscriptions/other\"],"
        "\"permissions\":[{\"actions\":[\"a/b\"]}]}}",
        "{\"properties\":{\"roleName\":\"r\",\"type\":\"BuiltInRole\",\"assignableScopes\":[\"" SUB
        "\"],\"permissions\":[{\"actions\":[\"a/b\"]}]}}",
        "{\"properties\":{\"roleName\":\"a\\u0001b\",\"assignableScopes\":[\"" SUB
        "\"],\"permissions\":[{\"actions\":[\"a/b\"]}]}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse_role(bad[i], CUSTOM_ID, SUB, &in, &e), KL_EINVAL);
        assert_int_equal(e.status, 400);
        assert_string_equal(e.code, "InvalidRoleDefinition");
    }
}

static void test_role_definition_json(void **state)
{
    (void)state;
    const kl_rbac_role_def *owner = kl_rbac_builtin_find(KL_ROLE_OWNER);
    assert_non_null(owner);
    json_t *j = kl_roles_definition_json(owner, "/", 0, 0);
    char *s = dumps(j);
    assert_string_equal(
        s,
        "{\"id\":\"/providers/Microsoft.Authorization/roleDefinitions/"
        "8e3af657-a8ff-443c-a75c-2fe8c4bcb635\",\"name\":\"8e3af657-a8ff-443c-a75c-2fe8c4bcb635\","
        "\"properties\":{\"assignableScopes\":[\"/"
        "\"],\"createdBy\":null,\"createdOn\":\"" KL_ARM_BUILTIN_ROLE_TIME
        "\",\"description\":\"Grants full access to manage all resources, including the ability "
        "to assign roles in Azure RBAC.\",\"permissions\":[{\"actions\":[\"*\"],\"dataActions\":"
        "[],\"notActions\":[],\"notDataActions\":[]}],\"roleName\":\"Owner\",\"type\":"
        "\"BuiltInRole\",\"updatedBy\":null,\"updatedOn\":\"" KL_ARM_BUILTIN_ROLE_TIME "\"},"
        "\"type\":\"Microsoft.Authorization/roleDefinitions\"}");
    free(s);
    json_decref(j);
    /* The id echoes the scope it was asked at. */
    j = kl_roles_definition_json(owner, SUB, 0, 0);
    assert_string_equal(json_string_value(json_object_get(j, "id")),
                        SUB "/providers/Microsoft.Authorization/roleDefinitions/" KL_ROLE_OWNER);
    json_decref(j);
}

/* ------------------------------------------------------------------ role assignments */

static int parse_assignment(const char *body, kl_assignment_input *in, kl_arm_error *e)
{
    json_t *j = json_loads(body, 0, NULL);
    assert_non_null(j);
    memset(e, 0, sizeof(*e));
    int rc = kl_roles_parse_assignment(j, "tenant-x", in, e);
    json_decref(j);
    return rc;
}

static void test_role_assignment_body(void **state)
{
    (void)state;
    kl_assignment_input in;
    kl_arm_error e;
    assert_int_equal(
        parse_assignment("{\"properties\":{\"roleDefinitionId\":\"" SUB
                         "/providers/Microsoft.Authorization/roleDefinitions/"
                         "ACDD72A7-3385-48EF-BD42-F606FBA81AE7\",\"principalId\":\"" OID
                         "\",\"principalType\":\"serviceprincipal\","
                         "\"description\":\"for the worker\"}}",
                         &in, &e),
        0);
    assert_string_equal(in.role_id, KL_ROLE_READER);
    assert_string_equal(in.principal_id, OID);
    assert_string_equal(in.principal_type, "ServicePrincipal");
    assert_string_equal(in.description, "for the worker");
    kl_roles_assignment_input_free(&in);

    /* A bare GUID and a root-scoped id are fine; principalType is optional. */
    assert_int_equal(parse_assignment("{\"properties\":{\"roleDefinitionId\":\"" KL_ROLE_OWNER
                                      "\",\"principalId\":\"" OID "\"}}",
                                      &in, &e),
                     0);
    assert_string_equal(in.principal_type, "");
    assert_null(in.description);
    kl_roles_assignment_input_free(&in);
    assert_int_equal(parse_assignment("{\"properties\":{\"roleDefinitionId\":\"/providers/"
                                      "Microsoft.Authorization/roleDefinitions/" KL_ROLE_OWNER
                                      "\",\"principalId\":\"" OID "\",\"description\":null}}",
                                      &in, &e),
                     0);
    kl_roles_assignment_input_free(&in);

    static const struct {
        const char *body, *code;
    } bad[] = {
        {"{}", "InvalidRequestContent"},
        {"{\"properties\":{\"principalId\":\"" OID "\"}}", "InvalidRequestContent"},
        {"{\"properties\":{\"roleDefinitionId\":\"Owner\",\"principalId\":\"" OID "\"}}",
         "InvalidRoleDefinitionId"},
        {"{\"properties\":{\"roleDefinitionId\":\"/x/../providers/Microsoft.Authorization/"
         "roleDefinitions/" KL_ROLE_OWNER "\",\"principalId\":\"" OID "\"}}",
         "InvalidRoleDefinitionId"},
        {"{\"properties\":{\"roleDefinitionId\":\"/subscriptions/s/providers/Other/"
         "roleDefinitions/" KL_ROLE_OWNER "\",\"principalId\":\"" OID "\"}}",
         "InvalidRoleDefinitionId"},
        {"{\"properties\":{\"roleDefinitionId\":\"" KL_ROLE_OWNER "\",\"principalId\":\"bob\"}}",
         "PrincipalNotFound"},
        {"{\"properties\":{\"roleDefinitionId\":\"" KL_ROLE_OWNER "\",\"principalId\":\"" OID
         "' OR 1=1 --\"}}",
         "PrincipalNotFound"},
        {"{\"properties\":{\"roleDefinitionId\":\"" KL_ROLE_OWNER "\",\"principalId\":\"" OID
         "\",\"principalType\":\"Robot\"}}",
         "InvalidRequestContent"},
        {"{\"properties\":{\"roleDefinitionId\":\"" KL_ROLE_OWNER "\",\"principalId\":\"" OID
         "\",\"condition\":\"@Resource[x] StringEquals 'y'\"}}",
         "InvalidRequestContent"},
        {"{\"properties\":{\"roleDefinitionId\":\"" KL_ROLE_OWNER "\",\"principalId\":\"" OID
         "\",\"description\":\"a\\nb\"}}",
         "InvalidRequestContent"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse_assignment(bad[i].body, &in, &e), KL_EINVAL);
        assert_int_equal(e.status, 400);
        assert_string_equal(e.code, bad[i].code);
        assert_null(in.description);
    }
}

static void test_role_assignment_json(void **state)
{
    (void)state;
    kl_store_role_assignment ra = {.name = RA_NAME,
                                   .scope = ACCT,
                                   .principal_id = OID,
                                   .principal_type = "ManagedIdentity",
                                   .role_id = KL_ROLE_OPENAI_USER,
                                   .created_at = 0,
                                   .updated_at = 60,
                                   .created_by = OID};
    json_t *j = kl_roles_assignment_json(&ra, "ServicePrincipal");
    char *s = dumps(j);
    assert_string_equal(
        s,
        "{\"id\":\"" ACCT RA "/" RA_NAME "\",\"name\":\"" RA_NAME "\",\"properties\":{"
        "\"condition\":null,\"conditionVersion\":null,\"createdBy\":\"" OID "\","
        "\"createdOn\":\"1970-01-01T00:00:00.000Z\",\"delegatedManagedIdentityResourceId\":null,"
        "\"description\":null,\"principalId\":\"" OID "\",\"principalType\":\"ServicePrincipal\","
        "\"roleDefinitionId\":\"" SUB
        "/providers/Microsoft.Authorization/roleDefinitions/" KL_ROLE_OPENAI_USER
        "\",\"scope\":\"" ACCT "\",\"updatedBy\":null,"
        "\"updatedOn\":\"1970-01-01T00:01:00.000Z\"},"
        "\"type\":\"Microsoft.Authorization/roleAssignments\"}");
    free(s);
    json_decref(j);

    /* At the root: ids without a scope prefix, the role id tenant-level. */
    ra.scope = "/";
    j = kl_roles_assignment_json(&ra, "User");
    assert_string_equal(json_string_value(json_object_get(j, "id")), RA "/" RA_NAME);
    json_t *p = json_object_get(j, "properties");
    assert_string_equal(json_string_value(json_object_get(p, "roleDefinitionId")),
                        "/providers/Microsoft.Authorization/roleDefinitions/" KL_ROLE_OPENAI_USER);
    assert_string_equal(json_string_value(json_object_get(p, "scope")), "/");
    json_decref(j);
}

/* Bodies whose handlers check each string's length may carry \u0000: the value is then
 * refused as that field's own error, never read short. */
static void test_nul_in_strings(void **state)
{
    (void)state;
    kl_arm_error e;
    json_t *j = NULL;
    const char text[] = "{\"scope\":\"/subscriptions/s\\u0000x\"}";
    assert_int_equal(kl_arm_parse_body((const unsigned char *)text, strlen(text), &j, &e),
                     KL_EINVAL);
    assert_int_equal(kl_arm_parse_body_nul((const unsigned char *)text, strlen(text), &j, &e), 0);
    const json_t *sc = json_object_get(j, "scope");
    assert_int_equal(json_string_length(sc), 18);
    char out[KL_MAX_SCOPE + 1];
    assert_int_equal(kl_arm_canonical_scope(json_string_value(sc), json_string_length(sc), out, &e),
                     KL_EINVAL);
    assert_string_equal(e.code, "InvalidScope");
    json_decref(j);

    static const struct {
        const char *body, *code;
    } bad[] = {
        {"{\"properties\":{\"roleDefinitionId\":\"" KL_ROLE_OWNER "\",\"principalId\":\"" OID
         "\",\"principalType\":\"User\\u0000Group\"}}",
         "InvalidRequestContent"},
        {"{\"properties\":{\"roleDefinitionId\":\"" KL_ROLE_OWNER "\\u0000\",\"principalId\":\"" OID
         "\"}}",
         "InvalidRoleDefinitionId"},
        {"{\"properties\":{\"roleDefinitionId\":\"" KL_ROLE_OWNER
         "\",\"principalId\":\"2c9d4c7e-7a0f-4a52-8a6e-5a1a2b3c4d5\\u0000\"}}",
         "PrincipalNotFound"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(
            kl_arm_parse_body_nul((const unsigned char *)bad[i].body, strlen(bad[i].body), &j, &e),
            0);
        kl_assignment_input in;
        memset(&e, 0, sizeof(e));
        assert_int_equal(kl_roles_parse_assignment(j, "t", &in, &e), KL_EINVAL);
        assert_string_equal(e.code, bad[i].code);
        json_decref(j);
    }
    const char role[] = "{\"properties\":{\"roleName\":\"r\",\"assignableScopes\":[\"/\"],"
                        "\"permissions\":[{\"actions\":[\"a/b\\u0000 evil\"]}]}}";
    assert_int_equal(kl_arm_parse_body_nul((const unsigned char *)role, strlen(role), &j, &e), 0);
    kl_role_input ri;
    assert_int_equal(kl_roles_parse_definition(j, CUSTOM_ID, "/", &ri, &e), KL_EINVAL);
    assert_string_equal(e.code, "InvalidRoleDefinition");
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scope_levels),
        cmocka_unit_test(test_scope_refusals),
        cmocka_unit_test(test_pattern_rules),
        cmocka_unit_test(test_routes_declare_actions),
        cmocka_unit_test(test_filter),
        cmocka_unit_test(test_role_definition_body),
        cmocka_unit_test(test_role_definition_json),
        cmocka_unit_test(test_role_assignment_body),
        cmocka_unit_test(test_role_assignment_json),
        cmocka_unit_test(test_nul_in_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
