/* The token service's signing keys over the admin socket (keyless signing-key list and
 * rotate) and the control thread's rotation timer, which adds the first key when none
 * is usable and the next one when the signer is due (lead time before it signs). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "mgmt/internal.h"
#include "policy/signing.h"

/* "active" (signs now), "pending" (published, signs later), "retiring" (published until
 * its last token expires), "retired" or "revoked". */
static const char *key_status(const kl_store_signing_key *k, const char *signer, int64_t now)
{
    if (k->revoked_at)
        return "revoked";
    if (k->retire_at && k->retire_at <= now)
        return "retired";
    if (signer && strcmp(signer, k->kid) == 0)
        return "active";
    if (k->active_at > now)
        return "pending";
    return "retiring";
}

void kl_mgmt_signing_keys_list(kl_mgmt_call *c)
{
    kl_store_signing_key **rows = NULL;
    size_t n = 0;
    int err = kl_store_list_signing_keys(c->m->store, &rows, &n);
    if (err) {
        kl_mgmt_fail_internal(c, err, "signing_keys_list");
        return;
    }
    int64_t now = kl_now_unix();
    /* The signer is the newest usable key, as the snapshot decides it. */
    const kl_store_signing_key *signer = NULL;
    for (size_t i = 0; i < n; i++) {
        const kl_store_signing_key *k = rows[i];
        if (!k->revoked_at && k->active_at <= now && (!k->retire_at || k->retire_at > now) &&
            (!signer || k->active_at >= signer->active_at))
            signer = k;
    }
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        const kl_store_signing_key *k = rows[i];
        json_t *o = json_pack("{s:s,s:s,s:s,s:o,s:o}", "kid", k->kid, "alg", k->alg, "status",
                              key_status(k, signer ? signer->kid : NULL, now), "createdDateTime",
                              kl_arm_json_time(k->created_at), "activeDateTime",
                              kl_arm_json_time(k->active_at));
        if (o && k->retire_at)
            json_object_set_new(o, "retireDateTime", kl_arm_json_time(k->retire_at));
        if (o && k->revoked_at)
            json_object_set_new(o, "revokedDateTime", kl_arm_json_time(k->revoked_at));
        if (!o || json_array_append_new(arr, o) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    kl_store_signing_keys_free(rows, n);
    kl_mgmt_reply_value(c, arr);
}

void kl_mgmt_signing_key_rotate(kl_mgmt_call *c)
{
    bool revoke = false;
    json_t *rp = c->body ? json_object_get(c->body, "revokePrevious") : NULL;
    if (rp && !json_is_boolean(rp)) {
        kl_mgmt_fail(c, 400, "InvalidRequestContent", "revokePrevious must be true or false.");
        return;
    }
    revoke = rp && json_is_true(rp);
    char kid[KL_MAX_JWS_KID + 1] = "";
    int err =
        kl_signing_rotate(c->m->store, c->m->keys, &c->m->signing, kl_now_unix(), revoke, kid);
    if (err) {
        kl_mgmt_fail_internal(c, err, "signing_key_rotate");
        return;
    }
    kl_mgmt_log_change(c, revoke ? "signing_key_rotated_revoking" : "signing_key_rotated", kid);
    kl_mgmt_applied(c);
    kl_mgmt_reply_json(c, 200,
                       json_pack("{s:s,s:b}", "kid", kid, "previousRevoked", revoke ? 1 : 0));
}

/* The timer: checks every KL_SIGNING_CHECK_S whether a key is due; a key it adds is
 * built into the snapshot at once (other nodes see it through the store watcher). */
static void signing_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    kl_mgmt *m = arg;
    bool added = false;
    pthread_mutex_lock(&m->mu);
    int err = kl_signing_tick(m->store, m->keys, &m->signing, kl_now_unix(), &added);
    if (err)
        kl_log(KL_LOG_WARN, "signing_key_check_failed", "error", kl_err_str(err), NULL);
    else if (added && kl_policy_apply(m->policy, NULL) != 0)
        kl_log(KL_LOG_ERROR, "signing_key_not_built", NULL);
    pthread_mutex_unlock(&m->mu);
    struct timeval tv = {.tv_sec = KL_SIGNING_CHECK_S};
    evtimer_add(m->signing_timer, &tv);
}

int kl_mgmt_signing_start(kl_mgmt *m, struct event_base *base)
{
    m->signing_timer = evtimer_new(base, signing_tick, m);
    if (!m->signing_timer)
        return KL_ENOMEM;
    struct timeval tv = {.tv_sec = KL_SIGNING_CHECK_S};
    return evtimer_add(m->signing_timer, &tv) == 0 ? 0 : KL_ENOMEM;
}

void kl_mgmt_signing_stop(kl_mgmt *m)
{
    if (m->signing_timer)
        event_free(m->signing_timer);
    m->signing_timer = NULL;
}

/* ---------------------------------------------------------------- sign-in log */

#define SIGNINS_DEFAULT_TOP 100
#define SIGNINS_MAX_TOP 1000

void kl_mgmt_signins_list(kl_mgmt_call *c)
{
    const char *client = kl_http_req_query_param(c->r, "client");
    const char *failed = kl_http_req_query_param(c->r, "failed");
    const char *top = kl_http_req_query_param(c->r, "top");
    long n_top = SIGNINS_DEFAULT_TOP;
    if (top) {
        char *end = NULL;
        n_top = strtol(top, &end, 10);
        if (!end || *end || n_top < 1 || n_top > SIGNINS_MAX_TOP) {
            kl_mgmt_fail(c, 400, "Request_BadRequest", "top must be 1 to %d.", SIGNINS_MAX_TOP);
            return;
        }
    }
    kl_store_signin **rows = NULL;
    size_t n = 0;
    int err = kl_store_list_signins(c->m->store, client && *client ? client : NULL,
                                    failed && !strcmp(failed, "true"), (size_t)n_top, &rows, &n);
    if (err) {
        kl_mgmt_fail_internal(c, err, "signins_list");
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        const kl_store_signin *s = rows[i];
        json_t *o = json_pack("{s:o,s:s,s:s?,s:s,s:s?,s:s,s:s,s:i,s:s,s:s}", "createdDateTime",
                              kl_arm_json_time(s->at), "appId", s->client_id, "servicePrincipalId",
                              s->principal_id, "credentialType", s->credential, "resource",
                              s->resource, "ipAddress", s->source, "status",
                              s->success ? "success" : "failure", "errorCode", s->error_code,
                              "failureReason", s->reason, "correlationId", s->correlation_id);
        if (!o || json_array_append_new(arr, o) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    kl_store_signins_free(rows, n);
    kl_mgmt_reply_value(c, arr);
}
