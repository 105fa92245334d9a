/* An answer held back before it is sent (a failed password's slowdown, lockout.h): a
 * timer on the request's event base sends it, so no worker waits, and it is dropped
 * when the client goes away first. The one owner of that timing for the token
 * endpoint's errors (gateway_sts.c) and the sign-in pages (webpage.c). */
#ifndef KL_GATEWAY_HELD_H
#define KL_GATEWAY_HELD_H

#include <stddef.h>
#include <stdint.h>

#include "http/server.h"

/* Sends payload (len bytes, or 0 where the payload knows its own size) as r's answer
 * with status; takes payload (frees it or hands it to the server). */
typedef void (*kl_held_send_fn)(kl_http_req *r, int status, void *payload, size_t len);
/* Frees a payload that will not be sent. */
typedef void (*kl_held_drop_fn)(void *payload);

/* Holds r's answer for delay_ms: send(r, status, payload, len) runs when the timer
 * fires, drop(payload) instead if the connection goes first; the delay is logged as
 * r's held_ms field. Returns 0 when the answer is held (payload is then the held
 * answer's); KL_EINVAL when delay_ms is 0 or payload NULL; KL_EUNAVAIL when r has no
 * event base; KL_ENOMEM or KL_EIO when no timer could be had. On an error payload
 * stays the caller's, who should answer at once (only the slowdown is lost). */
int kl_held_answer(kl_http_req *r, uint32_t delay_ms, int status, void *payload, size_t len,
                   kl_held_send_fn send, kl_held_drop_fn drop);

#endif
