/* The few HTML pages keylessd serves to people (the sign-in page, the device-code
 * verification page, sign-out): one plain shell with inline CSS and no external assets,
 * HTML escaping, cookies, and the CSRF double-submit token that protects every form
 * (security.md T14). Every page carries the same security headers: a Content-Security-
 * Policy that allows nothing but the shell's own style and posting back to this origin,
 * no framing, no referrer, no caching.
 *
 * The CSRF token is a random value set in the kl_csrf cookie (HttpOnly; Secure;
 * SameSite=Lax; Path=/) and repeated in a hidden form field; a POST is accepted only
 * when both are present and equal (constant-time). It needs no server-side state or
 * shared secret, so any node behind a load balancer checks it. */
#ifndef KL_GATEWAY_WEBPAGE_H
#define KL_GATEWAY_WEBPAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "http/server.h"

#define KL_WEBPAGE_CSRF_COOKIE "kl_csrf"
#define KL_WEBPAGE_CSRF_FIELD "csrf_token" /* the hidden form field */
/* A random token (CSRF, session id, code) as written: 32 bytes base64url, no padding. */
#define KL_WEBPAGE_TOKEN_BYTES 32
#define KL_WEBPAGE_TOKEN_LEN 43

/* Appends s with &, <, >, " and ' escaped, so that it is text (or a quoted attribute
 * value) and never markup. NULL appends nothing. 0, KL_ETOOBIG or KL_ENOMEM (b's own
 * limit). */
int kl_webpage_escape(kl_buf *b, const char *s);

/* Finds the cookie name in the value of a Cookie header ("a=1; b=2") and copies its
 * value into out[0..outlen). The first cookie of that name counts. 0, KL_ENOTFOUND (no
 * header or no such cookie), KL_ETOOBIG (the value does not fit), KL_EINVAL. */
int kl_webpage_cookie_find(const char *header, const char *name, char *out, size_t outlen);
/* The same on r's Cookie header. */
int kl_webpage_cookie(const kl_http_req *r, const char *name, char *out, size_t outlen);

/* Writes "name=value; Path=/; Secure; HttpOnly; SameSite=Lax" into out, with
 * "; Max-Age=N" when max_age_s > 0, or an expired cookie (Max-Age=0, empty value) when
 * max_age_s == 0; max_age_s < 0 makes a browser-session cookie. KL_EINVAL when name or
 * value holds a character a cookie cannot carry; KL_ETOOBIG when out is too small. */
int kl_webpage_cookie_header(char *out, size_t outlen, const char *name, const char *value,
                             int64_t max_age_s);
/* Adds that Set-Cookie header to r. 0 or the error above. */
int kl_webpage_set_cookie(kl_http_req *r, const char *name, const char *value, int64_t max_age_s);

/* Writes a new random token (KL_WEBPAGE_TOKEN_BYTES from the OS CSPRNG, base64url) into
 * out. 0 or KL_ECRYPTO. */
int kl_webpage_token(char out[KL_WEBPAGE_TOKEN_LEN + 1]);
/* True when v is shaped like a token of kl_webpage_token (length and alphabet). */
bool kl_webpage_token_valid(const char *v);

/* The CSRF token for a page about to be shown: the one r's kl_csrf cookie already
 * carries when it is well formed (so that two tabs do not undo each other), else a new
 * one, set as the kl_csrf cookie on r. The caller puts out in the form's hidden field.
 * 0 or KL_ECRYPTO. */
int kl_webpage_csrf_issue(kl_http_req *r, char out[KL_WEBPAGE_TOKEN_LEN + 1]);
/* True when cookie and field are both well-formed tokens and equal (constant time). */
bool kl_webpage_csrf_equal(const char *cookie, const char *field);
/* The check of a POSTed form: kl_webpage_csrf_equal of r's kl_csrf cookie and field. */
bool kl_webpage_csrf_check(const kl_http_req *r, const char *field);

/* Writes the Content-Security-Policy of every page into out: default-src 'none', the
 * shell's style by its hash, form-action 'self' (and form_origin, an origin a form's
 * answer redirects to, e.g. the client's redirect URI; NULL for none), frame-ancestors
 * 'none', base-uri 'none'. KL_EINVAL when form_origin is not a plain origin
 * (scheme://host[:port] of safe characters); KL_ETOOBIG. */
int kl_webpage_csp(char *out, size_t outlen, const char *form_origin);

/* The origin (scheme://host[:port]) of an absolute http(s) URI into out, for
 * kl_webpage_csp. KL_EINVAL when uri is not one; KL_ETOOBIG. */
int kl_webpage_origin(const char *uri, char *out, size_t outlen);

/* Sets the security headers of every page on r (the CSP above, X-Frame-Options DENY,
 * Referrer-Policy no-referrer, X-Content-Type-Options nosniff, Cache-Control no-store,
 * Pragma no-cache). A form_origin the CSP refuses is left out (the policy then only
 * allows 'self'). */
void kl_webpage_headers(kl_http_req *r, const char *form_origin);

/* The whole page: the shell around body_html (markup the caller built, every caller
 * value in it escaped) under the heading title (text; escaped here). 0, KL_ETOOBIG,
 * KL_ENOMEM. */
int kl_webpage_render(kl_buf *out, const char *title, const char *body_html);

/* Answers r with the page (status, the headers above, text/html). On a render failure
 * answers a 500 page without the body. r is gone afterwards. */
void kl_webpage_respond(kl_http_req *r, int status, const char *form_origin, const char *title,
                        const char *body_html);
/* The same, sent delay_ms later by a timer on r's event base (a failed password's
 * slowdown: the worker does not wait). If the client goes away first the page is
 * dropped. delay_ms 0 answers now. */
void kl_webpage_respond_later(kl_http_req *r, uint32_t delay_ms, int status,
                              const char *form_origin, const char *title, const char *body_html);
/* A page of one paragraph of text (escaped): errors and notices. */
void kl_webpage_message(kl_http_req *r, int status, const char *title, const char *text);

/* OAuth's response_mode=form_post: answers r with a page whose form posts the fields
 * (names[i] = values[i]; a NULL value is left out) to action, the client's redirect URI,
 * submitted by the page's one script (allowed by its hash in this page's CSP alone) or by
 * a person's press of its button when script is off. action_origin (the origin of
 * action) is the CSP's form-action besides 'self'. The page holds a code: its buffers are
 * wiped. r is gone afterwards. */
void kl_webpage_autopost(kl_http_req *r, const char *action, const char *action_origin,
                         const char *const *names, const char *const *values, size_t n);

/* Answers 302 to location (Location header; the security headers; no body worth
 * reading). r is gone afterwards. */
void kl_webpage_redirect(kl_http_req *r, const char *location);

#endif
