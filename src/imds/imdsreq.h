/* The query of a managed-identity token request, parsed and checked before anything is
 * looked up: the IMDS style (GET /metadata/identity/oauth2/token, protocols.md 1.1) and
 * the App Service style (GET /msi/token, 2.1). Strict percent-decoding, each parameter at
 * most once, bounded sizes (KL_MAX_MI_*); unknown parameters (client-request-id, msal's
 * xms_cc and token_sha256_to_refresh) are ignored, as Azure does. Pure: no snapshot. */
#ifndef KL_IMDS_IMDSREQ_H
#define KL_IMDS_IMDSREQ_H

#include <stddef.h>

#include "imds/idselect.h"
#include "token/form.h"

typedef enum kl_imdsreq_style {
    KL_IMDSREQ_IMDS = 0,   /* selectors client_id, object_id, msi_res_id, mi_res_id */
    KL_IMDSREQ_APPSERVICE, /* selectors client_id, principal_id, object_id, mi_res_id */
} kl_imdsreq_style;

/* Why a query was refused; the first failing check wins, in this order. */
typedef enum kl_imdsreq_err {
    KL_IMDSREQ_OK = 0,
    KL_IMDSREQ_BAD_QUERY,       /* bad encoding, a repeated parameter, too many or too big */
    KL_IMDSREQ_NO_API_VERSION,  /* api-version absent or empty */
    KL_IMDSREQ_BAD_API_VERSION, /* not a date, or older than the style's first version */
    KL_IMDSREQ_NO_RESOURCE,     /* resource absent or empty */
    KL_IMDSREQ_BAD_RESOURCE,    /* longer than KL_MAX_MI_RESOURCE, or not printable ASCII */
    KL_IMDSREQ_MANY_SELECTORS,  /* more than one identity selector */
    KL_IMDSREQ_BAD_SELECTOR,    /* a selector longer than KL_MAX_MI_SELECTOR */
    KL_IMDSREQ_ERR_COUNT
} kl_imdsreq_err;

typedef struct kl_imdsreq {
    kl_form *query;          /* owned; the strings below point into it */
    const char *api_version; /* as sent */
    const char *resource;    /* as sent (decoded) */
    size_t resource_len;
    kl_idsel_kind sel;     /* KL_IDSEL_DEFAULT when none was given */
    const char *sel_name;  /* the selector's parameter name (static), NULL for none */
    const char *sel_value; /* decoded; may be "" */
    size_t sel_len;
} kl_imdsreq;

/* Parses query[0..n) (without '?'). On KL_IMDSREQ_OK *out holds the request (free it with
 * kl_imdsreq_free); otherwise *out is empty (and freeing it is harmless). */
kl_imdsreq_err kl_imdsreq_parse(kl_imdsreq_style style, const char *query, size_t n,
                                kl_imdsreq *out);
void kl_imdsreq_free(kl_imdsreq *r);

/* The error description for e, in the style's words (static text). */
const char *kl_imdsreq_err_message(kl_imdsreq_err e);

#endif
