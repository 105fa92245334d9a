/* Application credentials in the snapshot: every registered certificate, parsed once
 * when the snapshot is built, by client id (app id). The token endpoint verifies client
 * assertions against these without touching the store. Immutable once finished, shared
 * read-only by workers with the snapshot that owns it. */
#ifndef KL_POLICY_APPCREDS_H
#define KL_POLICY_APPCREDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "token/assertion.h"

typedef struct kl_appcreds kl_appcreds;
typedef struct kl_appcreds_builder kl_appcreds_builder;

/* NULL on allocation failure. */
kl_appcreds_builder *kl_appcreds_builder_new(void);
void kl_appcreds_builder_free(kl_appcreds_builder *b);

/* Adds the certificate cert_b64 (standard base64 of DER) of client app_id with keyId
 * key_id and validity [start_s, end_s]. KL_EINVAL if it does not parse as an RSA
 * certificate we accept (the caller logs and leaves it out: one bad row must not take
 * the whole snapshot down), KL_ENOMEM. Strings are copied. */
int kl_appcreds_builder_cert(kl_appcreds_builder *b, const char *app_id, const char *key_id,
                             const char *cert_b64, int64_t start_s, int64_t end_s);

/* Adds a federated credential id of client app_id: issuer, subject and audiences_json (a
 * JSON array of strings). KL_EINVAL if audiences_json is not one; strings are copied. */
int kl_appcreds_builder_federated(kl_appcreds_builder *b, const char *app_id, const char *id,
                                  const char *issuer, const char *subject,
                                  const char *audiences_json);

/* Adds client app_id's settings for user sign-in: whether it is a public client (no
 * credential at the token endpoint) and its redirect URIs, Graph's two lists (each a
 * JSON array of strings, or NULL/"" for none), matched as one. At most one call per app
 * id. KL_EINVAL if a list is not a JSON array of strings, or longer than
 * KL_MAX_REDIRECT_URIS; KL_ENOMEM. Strings are copied. */
int kl_appcreds_builder_client(kl_appcreds_builder *b, const char *app_id, bool public_client,
                               const char *web_redirect_uris, const char *public_redirect_uris);

/* Builds the immutable set and empties the builder. *out is owned by the caller
 * (normally handed to the snapshot). */
int kl_appcreds_builder_finish(kl_appcreds_builder *b, kl_appcreds **out);
void kl_appcreds_free(kl_appcreds *ac);

/* The certificates of client_id (compared case-insensitively), *n of them, in
 * registration order; NULL with *n = 0 when there are none or ac is NULL. Borrowed from
 * ac. */
const kl_client_cert *kl_appcreds_certs(const kl_appcreds *ac, const char *client_id, size_t *n);
/* The federated credentials of client_id, as kl_appcreds_certs. */
const kl_federated_cred *kl_appcreds_federated(const kl_appcreds *ac, const char *client_id,
                                               size_t *n);

/* The developer clients @azure/identity and the Azure tools use by default, public
 * clients in every tenant: Azure CLI (the default of DeviceCodeCredential and
 * InteractiveBrowserCredential), Azure PowerShell, Visual Studio Code. They are not
 * stored: every snapshot holds them (kl_appcreds_well_known), with loopback redirect
 * URIs (http://localhost, http://127.0.0.1, any port) and an object id derived from the
 * tenant and the app id, the same on every node and at every start. */
#define KL_APPCREDS_AZURE_CLI_APP_ID "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
#define KL_APPCREDS_AZURE_POWERSHELL_APP_ID "1950a258-227b-4e31-a9cf-717495945fc2"
#define KL_APPCREDS_VSCODE_APP_ID "aebc6443-996d-45c2-90f0-388ff96faa56"
#define KL_APPCREDS_WELL_KNOWN_URIS "[\"http://localhost\",\"http://127.0.0.1\"]"

typedef struct kl_appcreds_client_info {
    const char *app_id;
    const char *display_name;
} kl_appcreds_client_info;

/* The well-known public clients, *n of them (static data). */
const kl_appcreds_client_info *kl_appcreds_well_known(size_t *n);

/* The object id of well-known client app_id's service principal in tenant tid: a GUID
 * from SHA-256(tid, app_id), lower case, in out. KL_ECRYPTO. */
int kl_appcreds_well_known_oid(const char *tid, const char *app_id, char out[37]);

/* True when client_id (case-insensitive) is registered as a public client. */
bool kl_appcreds_public_client(const kl_appcreds *ac, const char *client_id);

/* True when uri is one of client_id's redirect URIs: exact match, or, for a public
 * client, a registered http loopback URI (localhost, 127.0.0.1, [::1]) with the same host
 * and path on any port (RFC 8252 7.3). A URI with a fragment or longer than
 * KL_MAX_REDIRECT_URI never matches. */
bool kl_appcreds_redirect_ok(const kl_appcreds *ac, const char *client_id, const char *uri);

/* client_id's redirect URIs (borrowed from ac) in *uris; returns how many. */
size_t kl_appcreds_redirect_uris(const kl_appcreds *ac, const char *client_id,
                                 const char *const **uris);

/* Whether uri[0..len) may be registered as a redirect URI: https, or http on a loopback
 * host (localhost, 127.0.0.1, [::1]); printable ASCII without spaces, no fragment, at
 * most KL_MAX_REDIRECT_URI bytes. 0 or KL_EINVAL. */
int kl_appcreds_redirect_uri_check(const char *uri, size_t len);

/* The token endpoint's one call for a certificate client assertion: checks tok[0..len)
 * as client_id's against its certificates in ac (kl_assertion_check_cert) and spends
 * its jti in st (kl_store_use_jti: once on every node sharing the store). *key_id (may
 * be NULL) receives the certificate's keyCredential id on OK. The store is touched only
 * for an otherwise valid assertion; when it cannot be reached the answer is
 * KL_ASSERTION_UNAVAILABLE (503), never a token. */
kl_assertion_reason kl_appcreds_check_assertion(const kl_appcreds *ac, kl_store *st,
                                                const char *client_id, const char *tok, size_t len,
                                                const char *token_endpoint_url, int64_t now_s,
                                                const char **key_id);

#endif
