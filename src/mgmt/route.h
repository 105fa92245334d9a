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
    KL_MGMT_BODY_REQUIRED  /* must be a JSON object */
} kl_mgmt_body;

typedef struct kl_mgmt_route {
    const char *method;  /* "GET", "PUT", ... (case-sensitive, as HTTP) */
    const char *pattern; /* see kl_arm_match_path; captures from arm.h's name rules */
    const char *action;  /* e.g. "Microsoft.CognitiveServices/accounts/write" */
    kl_mgmt_body body;
    void (*handler)(struct kl_mgmt_call *c);
} kl_mgmt_route;

/* 0 if every route has a method, a valid pattern, an action of the form
 * "<Namespace>/<type>/.../<read|write|delete|action>" and a handler, and no two routes
 * share method and pattern; else KL_EINVAL (deny by default: the table is refused). */
int kl_mgmt_routes_check(const kl_mgmt_route *routes, size_t n);

#endif
