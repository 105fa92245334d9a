/* Fuzz target for the identity endpoints' query parser (imds/imdsreq.h), in both styles
 * (first byte even: IMDS, odd: App Service; the rest is the query). Checks: a refusal
 * leaves nothing behind; an accepted query has an api-version (a date at least the
 * style's first), a resource of 1..KL_MAX_MI_RESOURCE printable ASCII bytes without a
 * space, at most one selector, of the style's names and at most KL_MAX_MI_SELECTOR bytes,
 * and what it says is what kl_form_get finds in the same query. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/limits.h"
#include "imds/imdsreq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    kl_imdsreq_style st = (data[0] & 1) ? KL_IMDSREQ_APPSERVICE : KL_IMDSREQ_IMDS;
    const char *q = (const char *)data + 1;
    size_t n = size - 1;
    kl_imdsreq r;
    kl_imdsreq_err e = kl_imdsreq_parse(st, q, n, &r);
    CHECK((unsigned)e < KL_IMDSREQ_ERR_COUNT);
    CHECK(kl_imdsreq_err_message(e) != NULL);
    if (e != KL_IMDSREQ_OK) {
        CHECK(r.query == NULL && r.resource == NULL && r.sel_name == NULL);
        kl_imdsreq_free(&r);
        return 0;
    }
    CHECK(r.query != NULL);
    CHECK(r.api_version && strlen(r.api_version) >= 10);
    CHECK(strncmp(r.api_version, st == KL_IMDSREQ_IMDS ? "2018-02-01" : "2019-08-01", 10) >= 0);
    CHECK(r.resource && r.resource_len >= 1 && r.resource_len <= KL_MAX_MI_RESOURCE);
    CHECK(strlen(r.resource) == r.resource_len);
    for (size_t i = 0; i < r.resource_len; i++)
        CHECK((unsigned char)r.resource[i] > 0x20 && (unsigned char)r.resource[i] < 0x7f);
    CHECK(kl_form_get(r.query, "resource", NULL) == r.resource);
    static const char *const names[] = {"client_id", "object_id", "principal_id", "msi_res_id",
                                        "mi_res_id"};
    size_t present = 0;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        bool mine = !(st == KL_IMDSREQ_IMDS && !strcmp(names[i], "principal_id")) &&
                    !(st == KL_IMDSREQ_APPSERVICE && !strcmp(names[i], "msi_res_id"));
        if (mine && kl_form_get(r.query, names[i], NULL))
            present++;
    }
    CHECK(present <= 1);
    CHECK((present == 1) == (r.sel != KL_IDSEL_DEFAULT));
    if (r.sel_name) {
        size_t len = 0;
        CHECK(kl_form_get(r.query, r.sel_name, &len) == r.sel_value);
        CHECK(len == r.sel_len && len <= KL_MAX_MI_SELECTOR);
    }
    kl_imdsreq_free(&r);
    CHECK(r.query == NULL);
    return 0;
}
