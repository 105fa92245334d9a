/* Answers held back on a timer (held.h). */
#include "gateway/held.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/err.h"

typedef struct held {
    kl_http_req *r;
    struct event *ev;
    int status;
    void *payload; /* owned until sent or dropped */
    size_t len;
    kl_held_send_fn send;
    kl_held_drop_fn drop;
} held;

/* Frees h and its timer; the payload is no longer h's (sent, dropped or handed back). */
static void held_free(held *h)
{
    if (h->ev)
        event_free(h->ev);
    free(h);
}

static void held_aborted(void *arg)
{
    held *h = arg;
    h->drop(h->payload);
    held_free(h);
}

static void held_due(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    held *h = arg;
    kl_http_req_on_abort(h->r, NULL, NULL);
    h->send(h->r, h->status, h->payload, h->len);
    held_free(h);
}

int kl_held_answer(kl_http_req *r, uint32_t delay_ms, int status, void *payload, size_t len,
                   kl_held_send_fn send, kl_held_drop_fn drop)
{
    if (delay_ms == 0 || !payload)
        return KL_EINVAL;
    struct event_base *base = kl_http_req_base(r);
    if (!base)
        return KL_EUNAVAIL;
    held *h = calloc(1, sizeof(*h));
    if (!h)
        return KL_ENOMEM;
    *h = (held){
        .r = r, .status = status, .payload = payload, .len = len, .send = send, .drop = drop};
    h->ev = evtimer_new(base, held_due, h);
    struct timeval tv = {.tv_sec = delay_ms / 1000, .tv_usec = (delay_ms % 1000) * 1000};
    if (!h->ev || evtimer_add(h->ev, &tv) != 0) {
        held_free(h);
        return KL_EIO;
    }
    char ms[16];
    snprintf(ms, sizeof(ms), "%u", (unsigned)delay_ms);
    kl_http_req_log_field(r, "held_ms", ms);
    kl_http_req_on_abort(r, held_aborted, h);
    return 0;
}
