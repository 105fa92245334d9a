/* Managed-identity request queries (see imdsreq.h). */
#include "imds/imdsreq.h"

#include <string.h>

#include "common/limits.h"

/* The first api-version of each style: IMDS's identity endpoint started at 2018-02-01;
 * App Service's X-IDENTITY-HEADER protocol at 2019-08-01 (2017-09-01 is another protocol,
 * with another header and date strings for expires_on). */
static const char *const first_version[] = {
    [KL_IMDSREQ_IMDS] = "2018-02-01",
    [KL_IMDSREQ_APPSERVICE] = "2019-08-01",
};

static const struct {
    const char *name;
    kl_idsel_kind kind;
    unsigned styles; /* bit per kl_imdsreq_style */
} selectors[] = {
    {"client_id", KL_IDSEL_CLIENT_ID, 3},
    {"object_id", KL_IDSEL_OBJECT_ID, 3},
    {"principal_id", KL_IDSEL_OBJECT_ID, 1u << KL_IMDSREQ_APPSERVICE},
    /* IMDS documents msi_res_id; older msal-node sent mi_res_id there, so both. */
    {"msi_res_id", KL_IDSEL_RESOURCE_ID, 1u << KL_IMDSREQ_IMDS},
    {"mi_res_id", KL_IDSEL_RESOURCE_ID, 3},
};

static const char *const messages[KL_IMDSREQ_ERR_COUNT] = {
    [KL_IMDSREQ_OK] = "",
    [KL_IMDSREQ_BAD_QUERY] = "The query string is malformed: a parameter is badly encoded, "
                             "repeated or too long",
    [KL_IMDSREQ_NO_API_VERSION] = "Required query variable 'api-version' is missing",
    [KL_IMDSREQ_BAD_API_VERSION] = "The api-version is invalid or not supported",
    [KL_IMDSREQ_NO_RESOURCE] = "Required query variable 'resource' is missing",
    [KL_IMDSREQ_BAD_RESOURCE] = "The query variable 'resource' is invalid",
    [KL_IMDSREQ_MANY_SELECTORS] = "Only one of client_id, object_id, principal_id, msi_res_id "
                                  "and mi_res_id may be given",
    [KL_IMDSREQ_BAD_SELECTOR] = "The identity selector is too long",
};

const char *kl_imdsreq_err_message(kl_imdsreq_err e)
{
    return (unsigned)e < KL_IMDSREQ_ERR_COUNT ? messages[e] : "Bad request";
}

/* "YYYY-MM-DD" optionally followed by "-preview"; dates compare as strings. */
static bool version_ok(const char *v, const char *first)
{
    size_t n = strlen(v);
    if (n != 10 && !(n == 18 && !strcmp(v + 10, "-preview")))
        return false;
    for (size_t i = 0; i < 10; i++) {
        bool dash = i == 4 || i == 7;
        if (dash ? v[i] != '-' : (v[i] < '0' || v[i] > '9'))
            return false;
    }
    return strncmp(v, first, 10) >= 0;
}

static bool printable(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

void kl_imdsreq_free(kl_imdsreq *r)
{
    if (!r)
        return;
    kl_form_free(r->query);
    memset(r, 0, sizeof(*r));
}

kl_imdsreq_err kl_imdsreq_parse(kl_imdsreq_style style, const char *query, size_t n,
                                kl_imdsreq *out)
{
    memset(out, 0, sizeof(*out));
    kl_imdsreq_err e = KL_IMDSREQ_BAD_QUERY;
    kl_imdsreq r = {0};
    if (n > KL_MAX_MI_QUERY || kl_form_parse(query, n, &r.query, NULL, 0) != KL_FORM_OK)
        goto out;
    e = KL_IMDSREQ_NO_API_VERSION;
    r.api_version = kl_form_get(r.query, "api-version", NULL);
    if (!r.api_version || !*r.api_version)
        goto out;
    e = KL_IMDSREQ_BAD_API_VERSION;
    if (!version_ok(r.api_version, first_version[style]))
        goto out;
    e = KL_IMDSREQ_NO_RESOURCE;
    r.resource = kl_form_get(r.query, "resource", &r.resource_len);
    if (!r.resource || r.resource_len == 0)
        goto out;
    e = KL_IMDSREQ_BAD_RESOURCE;
    if (r.resource_len > KL_MAX_MI_RESOURCE || !printable(r.resource, r.resource_len))
        goto out;
    for (size_t i = 0; i < sizeof(selectors) / sizeof(selectors[0]); i++) {
        if (!(selectors[i].styles & (1u << style)))
            continue;
        size_t len = 0;
        const char *v = kl_form_get(r.query, selectors[i].name, &len);
        if (!v)
            continue;
        e = KL_IMDSREQ_MANY_SELECTORS;
        if (r.sel_name)
            goto out;
        e = KL_IMDSREQ_BAD_SELECTOR;
        if (len > KL_MAX_MI_SELECTOR)
            goto out;
        r.sel = selectors[i].kind;
        r.sel_name = selectors[i].name;
        r.sel_value = v;
        r.sel_len = len;
    }
    *out = r;
    return KL_IMDSREQ_OK;
out:
    kl_form_free(r.query);
    return e;
}
