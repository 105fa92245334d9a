/* Fuzz target for the control plane's request grammar (mgmt/arm.h, mgmt/resource.h):
 * ARM paths against every route pattern, api-version values, and JSON bodies through
 * the account, deployment and key parsers. Checks that whatever is accepted obeys the
 * documented rules, not only that nothing crashes. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "mgmt/arm.h"
#include "mgmt/resource.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

static const char *const patterns[] = {
    KL_ARM_ACCOUNTS_IN_SUB, KL_ARM_ACCOUNTS_IN_RG, KL_ARM_ACCOUNT,    KL_ARM_LIST_KEYS,
    KL_ARM_REGENERATE_KEY,  KL_ARM_DEPLOYMENTS,    KL_ARM_DEPLOYMENT,
};

static bool clean_name(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max || strstr(s, "..") || strchr(s, '/'))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

static void fuzz_path(const char *path)
{
    /* An unmatched path: either not ARM-shaped, or an error whose message fits. */
    kl_arm_error te;
    int tr = kl_arm_unknown_type(path, "2024-10-01", &te);
    CHECK(tr == KL_ENOTFOUND || (tr == KL_EINVAL && strlen(te.message) < sizeof(te.message)));
    for (size_t i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++) {
        kl_arm_match m;
        if (!kl_arm_match_path(patterns[i], path, &m))
            continue;
        CHECK(path[0] == '/');
        for (size_t k = 0; k < m.n; k++)
            CHECK(m.p[k].val_len > 0 && !memchr(m.p[k].val, '/', m.p[k].val_len));
        kl_arm_names n;
        kl_arm_error e;
        int err = kl_arm_resolve_names(&m, &n, &e);
        if (err) {
            CHECK(err == KL_EINVAL && e.status == 400 && e.code);
            continue;
        }
        CHECK(clean_name(n.subscription, KL_MAX_NAME));
        CHECK(clean_name(n.resource_group, KL_MAX_NAME));
        CHECK(clean_name(n.account, 64));
        CHECK(clean_name(n.deployment, 64));
        char id[KL_ARM_MAX_ID];
        if (n.account[0])
            CHECK(kl_arm_account_id(n.subscription, n.resource_group, n.account, id, sizeof(id)) ==
                  0);
    }
}

static void fuzz_api_version(const char *v)
{
    kl_arm_error e;
    if (kl_arm_check_api_version(v, kl_arm_versions_accounts, &e) != 0) {
        CHECK(strlen(e.message) < sizeof(e.message));
        return;
    }
    size_t n = strlen(v);
    CHECK(n == 10 || n == 18);
    for (size_t i = 0; i < 10; i++)
        CHECK(i == 4 || i == 7 ? v[i] == '-' : (v[i] >= '0' && v[i] <= '9'));
}

static bool object_text(const char *s)
{
    json_t *j = json_loads(s, 0, NULL);
    bool ok = j && json_is_object(j);
    json_decref(j);
    return ok;
}

static void fuzz_body(const uint8_t *data, size_t size)
{
    json_t *body = NULL;
    kl_arm_error e;
    if (kl_arm_parse_body(data, size, &body, &e) != 0) {
        CHECK(e.status == 400 && strcmp(e.code, "InvalidRequestContent") == 0);
        return;
    }
    CHECK(json_is_object(body));

    kl_account_input a;
    if (kl_resource_parse_account(body, "demo", NULL, &a, &e) == 0) {
        CHECK(object_text(a.sku) && object_text(a.tags) && object_text(a.properties));
        CHECK(strcmp(a.kind, "OpenAI") == 0 || strcmp(a.kind, "AIServices") == 0);
        kl_store_account sa = {.id = "/subscriptions/s/resourceGroups/g/providers/"
                                     "Microsoft.CognitiveServices/accounts/demo",
                               .subscription = "s",
                               .resource_group = "g",
                               .name = "demo",
                               .location = a.location,
                               .kind = a.kind,
                               .sku = a.sku,
                               .tags = a.tags,
                               .properties = a.properties,
                               .etag = "e"};
        json_t *out = kl_resource_account_json(&sa, "https://h");
        CHECK(out);
        /* Read-only members always come from us. */
        json_t *p = json_object_get(out, "properties");
        CHECK(strcmp(json_string_value(json_object_get(p, "endpoint")),
                     "https://h/accounts/demo/") == 0);
        json_decref(out);
        kl_resource_account_input_free(&a);
    }

    kl_deployment_input d;
    if (kl_resource_parse_deployment(body, "dep", &d, &e) == 0) {
        CHECK(object_text(d.sku));
        CHECK(!d.model || object_text(d.model));
        if (strcmp(d.backend, "upstream") == 0) {
            CHECK(kl_resource_valid_upstream_url(d.url) && d.upstream_model);
            CHECK(d.url[strlen(d.url) - 1] != '/');
            if (d.credential)
                for (const char *c = d.credential; *c; c++)
                    CHECK((unsigned char)*c > 0x20 && (unsigned char)*c < 0x7f);
        } else {
            CHECK(strcmp(d.backend, "echo") == 0 && !d.url && !d.credential);
        }
        kl_resource_deployment_input_free(&d);
    } else {
        /* A refusal never repeats the credential it was given. */
        const char *cred = json_string_value(json_object_get(
            json_object_get(json_object_get(body, "properties"), "backend"), "credential"));
        if (cred && strlen(cred) >= 8)
            CHECK(!strstr(e.message, cred));
    }

    int slot = 0;
    if (kl_resource_parse_key_name(body, &slot, &e) == 0)
        CHECK(slot == 1 || slot == 2);
    json_decref(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    uint8_t mode = data[0] % 3;
    data++;
    size--;
    if (mode == 2) {
        fuzz_body(data, size);
        return 0;
    }
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    if (mode == 0)
        fuzz_path(s);
    else
        fuzz_api_version(s);
    free(s);
    return 0;
}
