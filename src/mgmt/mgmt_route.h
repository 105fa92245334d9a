/* Internal to mgmt/: the shape of a control-plane route. Every route names the action
 * a caller must hold (Azure RBAC action strings), so authorisation cannot be forgotten:
 * kl_mgmt_new refuses a table with a route that declares none. */
#ifndef KL_MGMT_ROUTE_H
#define KL_MGMT_ROUTE_H

#include <stddef.h>

struct kl_mgmt_call;

typedef enum kl_mgmt_body {
    KL_MGMT_BODY_NONE = 0, /* any body is ignored */
    KL_MGMT_BODY_OPTIONAL, /* empty is fine; otherwise it must be a JSON object */
    KL_MGMT_BODY_REQUIRED, /* must be a JSON object */
    /* Must be a JSON object; its strings may contain \u0000, because the handler
     * compares every string it reads with json_string_length and refuses such a value
     * as that field's own error (e.g. a scope with a control character is
     * InvalidScope, not a malformed body). */
    KL_MGMT_BODY_CHECKED
} kl_mgmt_body;

/* Which API a route belongs to: ARM wants ?api-version=; the Graph-shaped directory
 * (/v1.0/...) does not. */
typedef enum kl_mgmt_api { KL_MGMT_ARM = 0, KL_MGMT_GRAPH } kl_mgmt_api;

/* Where a route's action is checked. Every mode denies by default; they differ only in
 * the scope and in who answers. */
typedef enum kl_mgmt_authz {
    /* At the scope the path names (the resource, the {scope} capture, "/" for the
     * directory); denied = 403 AuthorizationFailed before the handler runs. */
    KL_MGMT_AUTHZ_SCOPE = 0,
    /* A collection: allowed at its scope = everything; otherwise the handler shows only
     * the items the caller may read (call->list_filtered), and 403 if there are none. */
    KL_MGMT_AUTHZ_LIST,
    /* Answers only about the caller itself (its own permissions): nothing to check. */
    KL_MGMT_AUTHZ_SELF,
    /* The scope is in the body: the handler calls kl_mgmt_authorize before acting. */
    KL_MGMT_AUTHZ_HANDLER
} kl_mgmt_authz;

typedef struct kl_mgmt_route {
    const char *method;  /* "GET", "PUT", ... (case-sensitive, as HTTP) */
    const char *pattern; /* see kl_arm_match_path; captures from arm.h's name rules */
    const char *action;  /* e.g. "Microsoft.CognitiveServices/accounts/write" */
    kl_mgmt_body body;
    void (*handler)(struct kl_mgmt_call *c);
    kl_mgmt_api api;     /* default ARM */
    kl_mgmt_authz authz; /* default SCOPE */
    /* ARM routes: the api-versions accepted (arm.h's kl_arm_versions_*, newest first,
     * NULL-terminated); NULL for Graph routes, which take none. */
    const char *const *versions;
} kl_mgmt_route;

/* 0 if every route has a method, a valid pattern, api-versions if it is an ARM route, an action of
 * the form
 * "<Namespace>/<type>/.../<read|write|delete|action>" (directory routes may also end in
 * Entra's "create" or "update") and a handler, and no two routes share method and
 * pattern; else KL_EINVAL (deny by default: the table is refused). */
int kl_mgmt_routes_check(const kl_mgmt_route *routes, size_t n);

#endif
