/* The request router. Which face a listener serves decides what it may reach: the
 * control plane answers the admin socket as its local administrator, and the public
 * listener to bearer tokens only. */
#include "daemon/router.h"

#include <string.h>

#include "common/buf.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/util.h"
#include "gateway/devicecode.h"

static void not_found(kl_http_req *r)
{
    kl_http_respond_error(r, 404, "NotFound", "The requested resource does not exist.");
}

/* keyless_api_key_age_seconds{account,slot}: how old each key is, so that an alert can
 * ask for rotation. Account names are [A-Za-z0-9-] (ARM's rule), safe as label values. */
static int render_key_ages(kl_router *rt, kl_buf *b)
{
    kl_snapshot *s = rt->holder ? kl_snapshot_acquire(rt->holder) : NULL;
    if (!s)
        return 0;
    int64_t now = kl_now_unix();
    int err = kl_buf_append_str(b, "# HELP keyless_api_key_age_seconds Seconds since each API "
                                   "key was created or last regenerated.\n"
                                   "# TYPE keyless_api_key_age_seconds gauge\n");
    size_t n = kl_snapshot_account_count(s);
    for (size_t i = 0; !err && i < n; i++) {
        const kl_account *a = kl_snapshot_account_at(s, i);
        for (int k = 0; !err && k < 2; k++) {
            if (a->key_created[k] <= 0)
                continue;
            int64_t age = now > a->key_created[k] ? now - a->key_created[k] : 0;
            err = kl_buf_appendf(
                b, "keyless_api_key_age_seconds{account=\"%s\",slot=\"key%d\"} %lld\n", a->name,
                k + 1, (long long)age);
        }
    }
    kl_snapshot_release(s);
    return err;
}

static void metrics(kl_router *rt, kl_http_req *r)
{
    kl_http_req_set_route(r, KL_ROUTE_METRICS);
    if (strcmp(kl_http_req_method(r), "GET") != 0) {
        kl_http_respond_error(r, 405, "MethodNotAllowed", "Use GET.");
        return;
    }
    kl_buf b;
    kl_buf_init(&b, KL_MAX_METRICS_BYTES);
    if (kl_metrics_render(rt->metrics, &b) != 0 || render_key_ages(rt, &b) != 0) {
        kl_buf_free(&b);
        kl_http_respond_error(r, 500, "InternalServerError", "Metrics could not be rendered.");
        return;
    }
    kl_http_respond(r, 200, "text/plain; version=0.0.4; charset=utf-8", b.data ? b.data : "",
                    b.len);
    kl_buf_free(&b);
}

void kl_router_handle(kl_http_req *r, void *arg)
{
    kl_router *rt = arg;
    const char *path = kl_http_req_path(r);
    kl_face face = kl_http_req_face(r);

    if (!strcmp(path, "/healthz")) {
        kl_http_req_set_route(r, KL_ROUTE_HEALTH);
        const char *m = kl_http_req_method(r);
        if (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0) {
            kl_http_set_header(r, "Allow", "GET, HEAD");
            kl_http_respond_error(r, 405, "MethodNotAllowed", "Use GET.");
            return;
        }
        if (rt->store && !kl_store_reachable(rt->store)) {
            /* Still serving the data plane from the last snapshot, but a load balancer
             * should prefer a node that can also write. */
            static const char down[] =
                "{\"status\":\"not_ready\",\"reason\":\"store_unreachable\"}";
            kl_http_respond(r, 503, "application/json", down, sizeof(down) - 1);
            return;
        }
        static const char ok[] = "{\"status\":\"ok\"}";
        kl_http_respond(r, 200, "application/json", ok, sizeof(ok) - 1);
        return;
    }
    switch (face) {
    case KL_FACE_ADMIN:
        if (!strcmp(path, "/metrics")) {
            metrics(rt, r);
            return;
        }
        if (kl_mgmt_matches(path)) {
            kl_http_req_set_route(r, KL_ROUTE_MGMT);
            kl_http_req_log_field(r, "auth", "admin-socket");
            kl_mgmt_handle(rt->mgmt, r);
            return;
        }
        not_found(r);
        return;
    case KL_FACE_METRICS:
        if (!strcmp(path, "/metrics")) {
            metrics(rt, r);
            return;
        }
        not_found(r);
        return;
    case KL_FACE_IMDS:
        kl_http_req_set_route(r, KL_ROUTE_IDENTITY);
        if (rt->imds) {
            kl_imds_handle(rt->imds, r);
            return;
        }
        not_found(r);
        return;
    case KL_FACE_PUBLIC:
        /* The token service's paths first: with an account domain, every path of an
         * account host is the data plane's, but /{tenant}/oauth2/... never is. */
        if (rt->sts && kl_gateway_sts_matches(path)) {
            kl_gateway_sts_handle(rt->sts, r);
            return;
        }
        /* The device-code verification page, outside any tenant as Entra's
         * microsoft.com/devicelogin is. */
        if (rt->sts && kl_devicecode_page_matches(path)) {
            kl_devicecode_page(rt->sts, r);
            return;
        }
        if (kl_gateway_matches(rt->gateway, r)) {
            kl_gateway_handle(rt->gateway, kl_http_req_thread_state(r), r);
            return;
        }
        if (kl_mgmt_matches(path)) {
            kl_mgmt_handle_bearer(rt->mgmt, r);
            return;
        }
        not_found(r);
        return;
    }
    not_found(r);
}

kl_http_verdict kl_router_vet(kl_http_req *r, void *arg)
{
    kl_router *rt = arg;
    /* Only the public face takes untrusted callers; the admin socket is root's, and the
     * other faces take no bodies worth refusing early. */
    if (kl_http_req_face(r) != KL_FACE_PUBLIC || !strcmp(kl_http_req_path(r), "/healthz"))
        return KL_HTTP_CONTINUE;
    if (rt->sts && (kl_gateway_sts_matches(kl_http_req_path(r)) ||
                    kl_devicecode_page_matches(kl_http_req_path(r))))
        return KL_HTTP_CONTINUE; /* the token endpoint and the page need their form bodies */
    if (kl_gateway_matches(rt->gateway, r))
        return kl_gateway_vet(rt->gateway, kl_http_req_thread_state(r), r);
    if (kl_mgmt_matches(kl_http_req_path(r)))
        return kl_mgmt_vet_bearer(rt->mgmt, r); /* a refused token's body is never read */
    /* Every other public request is answered from its head alone (404): its body is
     * never needed. */
    kl_router_handle(r, arg);
    return KL_HTTP_ANSWERED;
}

void *kl_router_thread_init(int index, struct event_base *base, void *arg)
{
    kl_router *rt = arg;
    if (index < 0) {
        /* The control thread: the control plane's timers live on its base. Its state is
         * the router itself, which tells the fini below which thread it runs on. */
        if (kl_mgmt_thread_init(rt->mgmt, base) != 0)
            kl_log(KL_LOG_ERROR, "mgmt_thread_init_failed", NULL);
        return rt;
    }
    return kl_gateway_thread_init(rt->gateway, base);
}

void kl_router_thread_fini(void *state, struct event_base *base, void *arg)
{
    kl_router *rt = arg;
    /* First: refresh answers still due on this loop are settled while the loop exists. */
    kl_gateway_sts_thread_fini(rt->sts, base);
    if (state == rt)
        kl_mgmt_thread_fini(rt->mgmt);
    else if (state)
        kl_gateway_thread_fini(rt->gateway, state);
}
