/* The OAuth 2.0 client side of `keyless login`, `keyless logout` and remote commands:
 * the Entra-shaped endpoints of a keylessd (/{tenant}/oauth2/v2.0/devicecode, /token,
 * /authorize, /revoke), form bodies, PKCE (RFC 7636) and the loopback redirect of a
 * browser sign-in (RFC 8252). The parsing parts are pure so they can be unit-tested. */
#ifndef KL_CLI_OAUTH_H
#define KL_CLI_OAUTH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "cli/http.h"
#include "common/buf.h"

/* The Azure CLI's public client id: the client keyless's CLI signs in as, as `az login`
 * does (keylessd registers it as a public client in every tenant). */
#define KL_CLI_CLIENT_ID "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
#define KL_CLI_ARM_RESOURCE "https://management.azure.com"
#define KL_CLI_GRAPH_RESOURCE "https://graph.microsoft.com"
/* What `keyless login` asks for: the control plane, the user's name, a refresh token. */
#define KL_CLI_LOGIN_SCOPE KL_CLI_ARM_RESOURCE "/.default openid profile offline_access"
#define KL_CLI_PKCE_LEN 43           /* base64url of 32 random bytes; of a SHA-256 */
#define KL_CLI_MAX_FORM 16384        /* bytes of a form body sent to the token service */
#define KL_CLI_MAX_REDIRECT_REQ 8192 /* bytes of the browser's request to the loopback */

/* Appends name=value to a form body (application/x-www-form-urlencoded), with '&'
 * before it unless form is empty; value is percent-encoded (all but A-Z a-z 0-9 - . _ ~).
 * 0 or a kl_err from form. */
int kl_cli_oauth_form_add(kl_buf *form, const char *name, const char *value);

/* The S256 code challenge of a PKCE verifier: base64url(SHA-256(verifier)), without
 * padding, into challenge. 0 or KL_ECRYPTO. */
int kl_cli_oauth_pkce_challenge(const char *verifier, char challenge[KL_CLI_PKCE_LEN + 1]);

/* A new PKCE verifier (32 random bytes, base64url) and its challenge. 0 or KL_ECRYPTO. */
int kl_cli_oauth_pkce_new(char verifier[KL_CLI_PKCE_LEN + 1], char challenge[KL_CLI_PKCE_LEN + 1]);

/* The resource whose token a control-plane request target needs: Graph's for /v1.0/...,
 * ARM's for everything else (ARM paths and keyless's own /keyless/...), as keylessd's
 * public listener checks the audience. Static, never NULL. */
const char *kl_cli_oauth_resource_for(const char *target);

/* Reads the browser's request to the loopback redirect URI: req[0..len) is the request
 * head ("GET /?code=...&state=... HTTP/1.1\r\n..."). On success the code, percent-
 * decoded, is in code[codelen] and 0 is returned. KL_EINVAL (why in err, with the
 * server's error and error_description when it sent those) for a request that is not
 * the redirect, a state other than want_state (compared in constant time), or a
 * refusal; KL_ENOTFOUND when the request is for another path (a browser's
 * /favicon.ico), so the caller answers 404 and waits for the redirect. */
int kl_cli_oauth_redirect_parse(const char *req, size_t len, const char *want_state, char *code,
                                size_t codelen, char *err, size_t errlen);

/* POSTs form to {server}/{tenant}/oauth2/v2.0/{endpoint} over h (a remote handle). On
 * 0, *status is the HTTP status and *answer the parsed JSON object of the body (NULL
 * when the body is empty or not a JSON object; the caller json_decref()s it). KL_EIO,
 * KL_ETOOBIG or KL_ENOMEM with why in err. The form is not kept. */
int kl_cli_oauth_post(kl_cli_http *h, const char *tenant, const char *endpoint, const kl_buf *form,
                      long *status, json_t **answer, char *err, size_t errlen);

/* Writes "<error>: <first line of error_description>" of an OAuth error answer (or
 * "HTTP <status>") into out, control characters shown as '?'. */
void kl_cli_oauth_error_text(long status, const json_t *answer, char *out, size_t outlen);

#endif
