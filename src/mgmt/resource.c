/* Account and deployment bodies: what a client may PUT (validated field by field, with
 * ARM's defaults) and what we answer (see resource.h). Unknown members are ignored, as
 * ARM ignores them; members we keep are checked for type and size. */
#include "mgmt/resource.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/util.h"
#include "policy/netrules.h"

/* ---------------------------------------------------------------- helpers */

static int bad(kl_arm_error *e, const char *fmt, const char *field)
{
    kl_arm_error_set(e, 400, "InvalidRequestContent", fmt, field);
    return KL_EINVAL;
}

/* 1..max bytes of printable ASCII (spaces allowed inside). */
static bool printable(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

static char *dump(const json_t *j)
{
    return json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
}

static int dup_into(char **dst, const char *s)
{
    *dst = strdup(s);
    return *dst ? 0 : KL_ENOMEM;
}

static json_t *load_object(const char *text)
{
    json_t *j = text ? json_loads(text, 0, NULL) : NULL;
    if (j && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

static json_t *system_data(int64_t created, int64_t modified)
{
    char c[32], m[32];
    kl_time_iso8601(created, c, sizeof(c));
    kl_time_iso8601(modified, m, sizeof(m));
    json_t *sd = json_object();
    if (!sd || kl_arm_json_set(sd, "createdAt", json_string(c)) ||
        kl_arm_json_set(sd, "lastModifiedAt", json_string(m))) {
        json_decref(sd);
        return NULL;
    }
    return sd;
}

/* sku: {"name": string, "tier"?: string, "capacity"?: integer}; only these are kept. */
static int parse_sku(const json_t *v, char **out, kl_arm_error *e)
{
    if (!json_is_object(v))
        return bad(e, "The %s must be an object.", "sku");
    const char *name = json_string_value(json_object_get(v, "name"));
    if (!name || !printable(name, KL_ARM_MAX_SKU_NAME))
        return bad(
            e, "The %s must have a name of 1-" KL_STR(KL_ARM_MAX_SKU_NAME) " printable characters.",
            "sku");
    json_t *o = json_object();
    if (!o)
        return KL_ENOMEM;
    int err = kl_arm_json_set(o, "name", json_string(name)) ? KL_ENOMEM : 0;
    const json_t *tier = json_object_get(v, "tier");
    if (!err && tier && !json_is_null(tier)) {
        if (!json_is_string(tier) || !printable(json_string_value(tier), KL_ARM_MAX_SKU_NAME))
            err = bad(e, "The %s tier must be a short string.", "sku");
        else if (kl_arm_json_set(o, "tier", json_string(json_string_value(tier))))
            err = KL_ENOMEM;
    }
    const json_t *cap = json_object_get(v, "capacity");
    if (!err && cap && !json_is_null(cap)) {
        if (!json_is_integer(cap) || json_integer_value(cap) < 0 ||
            json_integer_value(cap) > 1000000000)
            err = bad(e, "The %s capacity must be a non-negative integer.", "sku");
        else if (kl_arm_json_set(o, "capacity", json_integer(json_integer_value(cap))))
            err = KL_ENOMEM;
    }
    if (!err && !(*out = dump(o)))
        err = KL_ENOMEM;
    json_decref(o);
    return err;
}

static int parse_tags(const json_t *v, char **out, kl_arm_error *e)
{
    if (json_is_null(v))
        return dup_into(out, "{}");
    if (!json_is_object(v))
        return bad(e, "The %s must be an object of strings.", "tags");
    if (json_object_size(v) > KL_ARM_MAX_TAGS) {
        kl_arm_error_set(e, 400, "InvalidTagCount", "At most %d tags are allowed.",
                         KL_ARM_MAX_TAGS);
        return KL_EINVAL;
    }
    const char *k;
    json_t *val;
    json_object_foreach((json_t *)v, k, val)
    {
        if (!printable(k, KL_ARM_MAX_TAG_NAME))
            return bad(
                e, "Each %s name must be 1-" KL_STR(KL_ARM_MAX_TAG_NAME) " printable characters.",
                "tag");
        const char *s = json_string_value(val);
        if (!s || (strlen(s) > 0 && !printable(s, KL_ARM_MAX_TAG_VALUE)))
            return bad(e, "Each %s value must be a string of at most 256 printable characters.",
                       "tag");
    }
    return (*out = dump(v)) ? 0 : KL_ENOMEM;
}

int kl_resource_parse_tracked(const json_t *body, const char *def_location, const char *def_tags,
                              char **location, char **tags, kl_arm_error *e)
{
    *location = *tags = NULL;
    const json_t *loc = json_object_get(body, "location");
    int err = 0;
    if (loc && !json_is_null(loc)) {
        const char *s = json_string_value(loc);
        if (!s || !printable(s, KL_MAX_NAME))
            err = bad(e, "The %s must be a string of 1-90 printable characters.", "location");
        else
            err = dup_into(location, s);
    } else {
        err = dup_into(location, def_location);
    }
    const json_t *t = json_object_get(body, "tags");
    if (!err)
        err = t ? parse_tags(t, tags, e) : dup_into(tags, def_tags);
    if (err) {
        free(*location);
        free(*tags);
        *location = *tags = NULL;
    }
    return err;
}

/* ---------------------------------------------------------------- accounts */

void kl_resource_account_input_free(kl_account_input *in)
{
    if (!in)
        return;
    free(in->location);
    free(in->kind);
    free(in->sku);
    free(in->tags);
    free(in->properties);
    free(in->network_acls);
    memset(in, 0, sizeof(*in));
}

/* ---------------------------------------------------------------- networkAcls */

static int bad_acls(kl_arm_error *e, const char *what)
{
    kl_arm_error_set(e, 400, "InvalidValuesForRequestParameters",
                     "Values for request parameters are invalid: properties.networkAcls.%s.", what);
    return KL_EINVAL;
}

/* One of the words in canon (case-insensitive) as its canonical spelling, or NULL. */
static const char *one_of(const json_t *v, const char *const *canon)
{
    const char *s = json_string_value(v);
    for (size_t i = 0; s && canon[i]; i++)
        if (kl_str_ieq(s, canon[i]))
            return canon[i];
    return NULL;
}

/* ipRules: [{"value": rule}], each rule checked by the same parser the snapshot
 * compiles it with, so what is accepted here is what is enforced. */
static int parse_ip_rules(const json_t *v, json_t *out, kl_arm_error *e)
{
    if (!json_is_array(v))
        return bad_acls(e, "ipRules (an array of {\"value\": address or CIDR})");
    if (json_array_size(v) > KL_MAX_NETWORK_RULES) {
        kl_arm_error_set(e, 400, "InvalidValuesForRequestParameters",
                         "Values for request parameters are invalid: properties.networkAcls."
                         "ipRules holds more than %d rules.",
                         KL_MAX_NETWORK_RULES);
        return KL_EINVAL;
    }
    size_t i;
    const json_t *item;
    json_array_foreach(v, i, item)
    {
        const json_t *val = json_object_get(item, "value");
        kl_netrange r;
        if (!json_is_string(val) ||
            kl_netrules_parse(json_string_value(val), json_string_length(val), &r) != 0) {
            /* The value is echoed only when it is short printable text. */
            const char *s = json_string_value(val);
            bool show =
                s && printable(s, KL_MAX_NETRULE_TEXT) && strlen(s) == json_string_length(val);
            kl_arm_error_set(e, 400, "InvalidValuesForRequestParameters",
                             "Values for request parameters are invalid: "
                             "properties.networkAcls.ipRules[%zu].value%s%s%s must be an IPv4 or "
                             "IPv6 address or CIDR range.",
                             i, show ? " '" : "", show ? s : "", show ? "'" : "");
            return KL_EINVAL;
        }
        json_t *rule = json_pack("{s:O}", "value", val);
        if (!rule || json_array_append_new(out, rule))
            return KL_ENOMEM;
    }
    return 0;
}

/* virtualNetworkRules: kept and echoed (keylessd has no virtual networks). */
static int parse_vnet_rules(const json_t *v, json_t *out, kl_arm_error *e)
{
    if (!json_is_array(v) || json_array_size(v) > KL_MAX_VNET_RULES)
        return bad_acls(e, "virtualNetworkRules (an array of at most " KL_STR(
                               KL_MAX_VNET_RULES) " {\"id\": ...})");
    size_t i;
    const json_t *item;
    json_array_foreach(v, i, item)
    {
        const json_t *id = json_object_get(item, "id");
        const json_t *ign = json_object_get(item, "ignoreMissingVnetServiceEndpoint");
        const json_t *state = json_object_get(item, "state");
        if (!json_is_string(id) || !printable(json_string_value(id), KL_MAX_SCOPE) ||
            (ign && !json_is_null(ign) && !json_is_boolean(ign)) ||
            (state && !json_is_null(state) &&
             (!json_is_string(state) ||
              !printable(json_string_value(state), KL_ARM_MAX_SHORT_STRING))))
            return bad_acls(e, "virtualNetworkRules (an array of at most " KL_STR(
                                   KL_MAX_VNET_RULES) " {\"id\": ...})");
        json_t *rule = json_pack("{s:O}", "id", id);
        if (!rule ||
            (ign && json_is_boolean(ign) &&
             json_object_set(rule, "ignoreMissingVnetServiceEndpoint", (json_t *)ign)) ||
            (json_is_string(state) && json_object_set(rule, "state", (json_t *)state)) ||
            json_array_append_new(out, rule)) {
            json_decref(rule);
            return KL_ENOMEM;
        }
    }
    return 0;
}

/* properties.networkAcls -> *out (canonical JSON text: defaultAction, ipRules,
 * virtualNetworkRules, bypass when given). Unknown members are dropped. */
static int parse_network_acls(const json_t *v, char **out, kl_arm_error *e)
{
    static const char *const actions[] = {"Allow", "Deny", NULL};
    static const char *const bypasses[] = {"AzureServices", "None", NULL};
    if (!json_is_object(v))
        return bad(e, "properties.%s must be an object.", "networkAcls");
    const json_t *da = json_object_get(v, "defaultAction");
    const char *action = (!da || json_is_null(da)) ? "Allow" : one_of(da, actions);
    if (!action)
        return bad_acls(e, "defaultAction (Allow or Deny)");
    json_t *o =
        json_pack("{s:s,s:[],s:[]}", "defaultAction", action, "ipRules", "virtualNetworkRules");
    if (!o)
        return KL_ENOMEM;
    int err = 0;
    const json_t *ip = json_object_get(v, "ipRules");
    if (ip && !json_is_null(ip))
        err = parse_ip_rules(ip, json_object_get(o, "ipRules"), e);
    const json_t *vn = json_object_get(v, "virtualNetworkRules");
    if (!err && vn && !json_is_null(vn))
        err = parse_vnet_rules(vn, json_object_get(o, "virtualNetworkRules"), e);
    const json_t *by = json_object_get(v, "bypass");
    if (!err && by && !json_is_null(by)) {
        const char *b = one_of(by, bypasses);
        if (!b)
            err = bad_acls(e, "bypass (AzureServices or None)");
        else if (kl_arm_json_set(o, "bypass", json_string(b)))
            err = KL_ENOMEM;
    }
    if (!err && !(*out = dump(o)))
        err = KL_ENOMEM;
    if (!err && strlen(*out) > KL_MAX_NETWORK_ACLS_JSON) {
        free(*out);
        *out = NULL;
        err = bad_acls(e, "(too large)");
    }
    json_decref(o);
    return err;
}

/* Client properties we keep and echo, with their types. Everything else we compute
 * (endpoint, provisioningState, ...) or ignore. */
static int merge_extra(json_t *extra, const char *key, const json_t *v, kl_arm_error *e)
{
    if (json_is_null(v)) {
        json_object_del(extra, key);
        return 0;
    }
    if (strcmp(key, "publicNetworkAccess") == 0) {
        const char *s = json_string_value(v);
        const char *canon = NULL;
        if (s && kl_str_ieq(s, "Enabled"))
            canon = "Enabled";
        else if (s && kl_str_ieq(s, "Disabled"))
            canon = "Disabled";
        if (!canon)
            return bad(e, "properties.%s must be Enabled or Disabled.", key);
        return json_object_set_new(extra, key, json_string(canon)) ? KL_ENOMEM : 0;
    }
    if (strcmp(key, "restrictOutboundNetworkAccess") == 0 ||
        strcmp(key, "dynamicThrottlingEnabled") == 0) {
        if (!json_is_boolean(v))
            return bad(e, "properties.%s must be a boolean.", key);
    } else if (strcmp(key, "networkAcls") == 0) {
        /* Kept apart (kl_account_input.network_acls); a copy stored here by an earlier
         * keylessd gives way to it. */
        json_object_del(extra, key);
        return 0;
    } else if (strcmp(key, "apiProperties") == 0) {
        if (!json_is_object(v))
            return bad(e, "properties.%s must be an object.", key);
    } else if (strcmp(key, "allowedFqdnList") == 0) {
        size_t i;
        const json_t *item;
        if (!json_is_array(v))
            return bad(e, "properties.%s must be an array of strings.", key);
        json_array_foreach(v, i, item)
        {
            if (!printable(json_string_value(item), KL_ARM_MAX_SHORT_STRING))
                return bad(e, "properties.%s must be an array of strings.", key);
        }
    } else {
        return 0; /* not kept */
    }
    return json_object_set(extra, key, (json_t *)v) ? KL_ENOMEM : 0;
}

static int parse_account_properties(const json_t *props, const char *name,
                                    const kl_store_account *base, kl_account_input *in,
                                    kl_arm_error *e)
{
    json_t *extra = base ? load_object(base->properties) : NULL;
    if (!extra)
        extra = json_object();
    if (!extra)
        return KL_ENOMEM;
    int err = 0;
    in->disable_local_auth = base ? base->disable_local_auth : false;
    const json_t *acls = json_is_object(props) ? json_object_get(props, "networkAcls") : NULL;
    if (acls && !json_is_null(acls)) {
        if ((err = parse_network_acls(acls, &in->network_acls, e)))
            goto out;
    } else if (!acls && base && base->network_acls &&
               !(in->network_acls = strdup(base->network_acls))) {
        err = KL_ENOMEM;
        goto out;
    }
    if (props && !json_is_null(props)) {
        if (!json_is_object(props)) {
            err = bad(e, "The %s must be an object.", "properties");
            goto out;
        }
        const json_t *dla = json_object_get(props, "disableLocalAuth");
        if (dla && !json_is_null(dla)) {
            if (!json_is_boolean(dla)) {
                err = bad(e, "properties.%s must be a boolean.", "disableLocalAuth");
                goto out;
            }
            in->disable_local_auth = json_is_true(dla);
        }
        const json_t *csd = json_object_get(props, "customSubDomainName");
        if (csd && !json_is_null(csd)) {
            const char *s = json_string_value(csd);
            if (!s || !kl_str_ieq(s, name)) {
                /* The account is reached by its name; a different subdomain would
                 * promise an endpoint that does not exist. */
                kl_arm_error_set(e, 400, "BadRequest",
                                 "properties.customSubDomainName must equal the account name "
                                 "'%s'.",
                                 name);
                err = KL_EINVAL;
                goto out;
            }
        }
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)props, k, v)
        {
            if ((err = merge_extra(extra, k, v, e)))
                goto out;
        }
    }
    in->properties = dump(extra);
    if (!in->properties)
        err = KL_ENOMEM;
    else if (strlen(in->properties) > KL_ARM_MAX_PROPERTIES_JSON)
        err = bad(e, "The %s are too large.", "properties");
out:
    json_decref(extra);
    return err;
}

int kl_resource_parse_account(const json_t *body, const char *name, const kl_store_account *base,
                              kl_account_input *in, kl_arm_error *e)
{
    memset(in, 0, sizeof(*in));
    int err = 0;
    if (!json_is_object(body)) {
        err = bad(e, "The request %s must be a JSON object.", "body");
        goto out;
    }

    const json_t *loc = json_object_get(body, "location");
    if (loc && !json_is_null(loc)) {
        const char *s = json_string_value(loc);
        if (!s || !printable(s, KL_MAX_NAME)) {
            err = bad(e, "The %s must be a string of 1-90 printable characters.", "location");
            goto out;
        }
        err = dup_into(&in->location, s);
    } else {
        err = dup_into(&in->location, base ? base->location : "local");
    }
    if (err)
        goto out;

    const json_t *kind = json_object_get(body, "kind");
    if (kind && !json_is_null(kind)) {
        const char *s = json_string_value(kind);
        if (s && kl_str_ieq(s, "OpenAI"))
            err = dup_into(&in->kind, "OpenAI");
        else if (s && kl_str_ieq(s, "AIServices"))
            err = dup_into(&in->kind, "AIServices");
        else {
            kl_arm_error_set(e, 400, "InvalidApiSetId",
                             "The account kind is invalid or unavailable: use OpenAI or "
                             "AIServices.");
            err = KL_EINVAL;
        }
    } else {
        err = dup_into(&in->kind, base ? base->kind : "OpenAI");
    }
    if (err)
        goto out;

    const json_t *sku = json_object_get(body, "sku");
    if (sku && !json_is_null(sku))
        err = parse_sku(sku, &in->sku, e);
    else
        err = dup_into(&in->sku, base ? base->sku : "{\"name\":\"S0\"}");
    if (err)
        goto out;

    const json_t *tags = json_object_get(body, "tags");
    if (tags)
        err = parse_tags(tags, &in->tags, e);
    else
        err = dup_into(&in->tags, base ? base->tags : "{}");
    if (err)
        goto out;

    err = parse_account_properties(json_object_get(body, "properties"), name, base, in, e);
out:
    if (err)
        kl_resource_account_input_free(in);
    return err;
}

/* properties.endpoints: the names Azure returns for an OpenAI account (taken from
 * captured `az cognitiveservices account show` answers of 2025), each mapped to the
 * account's one endpoint, as Azure maps them all to https://{name}.openai.azure.com/.
 * Scripts read endpoints["OpenAI Language Model Instance API"]. The same map is
 * returned for AIServices accounts: keyless serves only the OpenAI APIs on them. */
static const char *const ENDPOINT_NAMES[] = {
    "Azure OpenAI Legacy API - Latest moniker",
    "OpenAI Dall-E API",
    "OpenAI Language Model Instance API",
    "OpenAI Model Scaleset API",
    "OpenAI Moderations API",
    "OpenAI Realtime API",
    "OpenAI Sora API",
    "OpenAI Whisper API",
    "Token Service API",
};

static json_t *endpoints_json(const char *endpoint)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < sizeof(ENDPOINT_NAMES) / sizeof(ENDPOINT_NAMES[0]); i++) {
        if (kl_arm_json_set(o, ENDPOINT_NAMES[i], json_string(endpoint))) {
            json_decref(o);
            o = NULL;
        }
    }
    return o;
}

json_t *kl_resource_account_json(const kl_store_account *a, const char *public_base_url)
{
    json_t *o = json_object();
    json_t *props = load_object(a->properties);
    json_t *sku = load_object(a->sku);
    json_t *tags = load_object(a->tags);
    if (!props)
        props = json_object();
    if (!sku)
        sku = json_pack("{s:s}", "name", "S0");
    if (!tags)
        tags = json_object();
    const char *base = public_base_url ? public_base_url : "";
    size_t blen = strlen(base);
    while (blen > 0 && base[blen - 1] == '/')
        blen--;
    char *endpoint = NULL;
    char etag[96];
    char created[32];
    int err = !o || !props || !sku || !tags;
    if (!err) {
        size_t n = blen + strlen("/accounts/") + strlen(a->name) + 2;
        endpoint = malloc(n);
        err = !endpoint;
        if (endpoint)
            snprintf(endpoint, n, "%.*s/accounts/%s/", (int)blen, base, a->name);
    }
    snprintf(etag, sizeof(etag), "\"%s\"", a->etag ? a->etag : "");
    kl_time_iso8601(a->created_at, created, sizeof(created));
    if (!err) {
        if (!json_object_get(props, "publicNetworkAccess"))
            err |= kl_arm_json_set(props, "publicNetworkAccess", json_string("Enabled"));
        /* Computed members override anything stored under the same name. */
        err |= kl_arm_json_set(props, "provisioningState", json_string("Succeeded"));
        err |= kl_arm_json_set(props, "endpoint", json_string(endpoint));
        err |= kl_arm_json_set(props, "endpoints", endpoints_json(endpoint));
        err |= kl_arm_json_set(props, "disableLocalAuth", json_boolean(a->disable_local_auth));
        if (a->network_acls)
            err |= kl_arm_json_set(props, "networkAcls", load_object(a->network_acls));
        err |= kl_arm_json_set(props, "customSubDomainName", json_string(a->name));
        err |= kl_arm_json_set(props, "dateCreated", json_string(created));
        err |= kl_arm_json_set(o, "id", json_string(a->id));
        err |= kl_arm_json_set(o, "name", json_string(a->name));
        err |= kl_arm_json_set(o, "type", json_string(KL_ARM_ACCOUNT_TYPE));
        err |= kl_arm_json_set(o, "location", json_string(a->location));
        err |= kl_arm_json_set(o, "kind", json_string(a->kind));
        err |= json_object_set(o, "sku", sku);
        err |= json_object_set(o, "tags", tags);
        err |= kl_arm_json_set(o, "etag", json_string(etag));
        err |= json_object_set(o, "properties", props);
        err |= kl_arm_json_set(o, "systemData", system_data(a->created_at, a->modified_at));
    }
    free(endpoint);
    json_decref(props);
    json_decref(sku);
    json_decref(tags);
    if (err) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ---------------------------------------------------------------- deployments */

void kl_resource_deployment_input_free(kl_deployment_input *in)
{
    if (!in)
        return;
    free(in->sku);
    free(in->model);
    free(in->backend);
    free(in->url);
    free(in->upstream_model);
    if (in->credential) {
        OPENSSL_cleanse(in->credential, strlen(in->credential));
        free(in->credential);
    }
    memset(in, 0, sizeof(*in));
}

bool kl_resource_valid_upstream_url(const char *url)
{
    if (!url)
        return false;
    size_t n = strlen(url);
    if (n > KL_MAX_URL)
        return false;
    size_t scheme;
    if (kl_str_istarts(url, "http://"))
        scheme = 7;
    else if (kl_str_istarts(url, "https://"))
        scheme = 8;
    else
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c <= 0x20 || c >= 0x7f || c == '\\' || c == '?' || c == '#')
            return false;
    }
    const char *host = url + scheme;
    size_t auth = strcspn(host, "/");
    /* No user-info: a URL we echo back in GET must not carry a secret. */
    if (auth == 0 || memchr(host, '@', auth) || host[0] == ':')
        return false;
    return true;
}

static int parse_model(const json_t *v, char **out, kl_arm_error *e)
{
    if (!json_is_object(v))
        return bad(e, "The %s must be an object.", "properties.model");
    static const char *const fields[] = {"format", "name", "version", "source"};
    json_t *o = json_object();
    if (!o)
        return KL_ENOMEM;
    int err = 0;
    for (size_t i = 0; !err && i < sizeof(fields) / sizeof(fields[0]); i++) {
        const json_t *f = json_object_get(v, fields[i]);
        if (!f || json_is_null(f))
            continue;
        const char *s = json_string_value(f);
        if (!s || !printable(s, KL_ARM_MAX_SHORT_STRING))
            err = bad(e, "properties.model.%s must be a string of 1-256 printable characters.",
                      fields[i]);
        else if (kl_arm_json_set(o, fields[i], json_string(s)))
            err = KL_ENOMEM;
    }
    if (!err && !(*out = dump(o)))
        err = KL_ENOMEM;
    json_decref(o);
    return err;
}

/* 1..KL_MAX_TOKEN_BYTES of visible ASCII: it becomes an HTTP header value, so nothing
 * that could end or fold a header line. */
static bool valid_credential(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > KL_MAX_TOKEN_BYTES)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

static int parse_backend(const json_t *v, const char *model_name, const char *name,
                         kl_deployment_input *in, kl_arm_error *e)
{
    if (!json_is_object(v))
        return bad(e, "The %s must be an object.", "properties.backend");
    const json_t *type = json_object_get(v, "type");
    const char *t = json_is_null(type) || !type ? "echo" : json_string_value(type);
    const json_t *url = json_object_get(v, "url");
    const json_t *model = json_object_get(v, "model");
    const json_t *cred = json_object_get(v, "credential");
    if (t && kl_str_ieq(t, "echo")) {
        if ((url && !json_is_null(url)) || (model && !json_is_null(model)) ||
            (cred && !json_is_null(cred)))
            return bad(e, "The url, model and credential of %s apply only to type upstream.",
                       "properties.backend");
        return dup_into(&in->backend, "echo");
    }
    if (!t || !kl_str_ieq(t, "upstream"))
        return bad(e, "%s.type must be echo or upstream.", "properties.backend");

    const char *u = json_string_value(url);
    if (!u || !kl_resource_valid_upstream_url(u))
        return bad(e,
                   "%s.url must be an http:// or https:// URL of at most " KL_STR(
                       KL_MAX_URL) " characters, "
                                   "without user information, query or fragment.",
                   "properties.backend");
    int err = dup_into(&in->backend, "upstream");
    if (!err)
        err = dup_into(&in->url, u);
    if (err)
        return err;
    size_t ul = strlen(in->url);
    /* The gateway appends "/chat/completions" etc.; keep exactly one slash between. */
    while (ul > 0 && in->url[ul - 1] == '/')
        in->url[--ul] = '\0';
    if (!kl_resource_valid_upstream_url(in->url))
        return bad(e, "%s.url must name a host.", "properties.backend");

    const char *m = NULL;
    if (model && !json_is_null(model)) {
        m = json_string_value(model);
        if (!m || !printable(m, KL_ARM_MAX_SHORT_STRING))
            return bad(e, "%s.model must be a string of 1-256 printable characters.",
                       "properties.backend");
    } else {
        m = (model_name && *model_name) ? model_name : name;
    }
    if ((err = dup_into(&in->upstream_model, m)))
        return err;

    if (cred) {
        in->credential_given = true;
        if (!json_is_null(cred)) {
            const char *c = json_string_value(cred);
            if (!c)
                return bad(e, "%s.credential must be a string.", "properties.backend");
            if (*c) {
                if (!valid_credential(c))
                    return bad(e,
                               "%s.credential must be 1-16384 visible ASCII characters "
                               "without spaces.",
                               "properties.backend");
                if ((err = dup_into(&in->credential, c)))
                    return err;
            }
        }
    }
    return 0;
}

int kl_resource_parse_deployment(const json_t *body, const char *name, kl_deployment_input *in,
                                 kl_arm_error *e)
{
    memset(in, 0, sizeof(*in));
    int err = 0;
    if (body && !json_is_object(body)) {
        err = bad(e, "The request %s must be a JSON object.", "body");
        goto out;
    }
    const json_t *sku = body ? json_object_get(body, "sku") : NULL;
    if (sku && !json_is_null(sku))
        err = parse_sku(sku, &in->sku, e);
    else
        err = dup_into(&in->sku, "{\"capacity\":1,\"name\":\"Standard\"}");
    if (err)
        goto out;

    const json_t *props = body ? json_object_get(body, "properties") : NULL;
    if (props && !json_is_null(props) && !json_is_object(props)) {
        err = bad(e, "The %s must be an object.", "properties");
        goto out;
    }
    const json_t *model = props ? json_object_get(props, "model") : NULL;
    const char *model_name = NULL;
    if (model && !json_is_null(model)) {
        if ((err = parse_model(model, &in->model, e)))
            goto out;
        model_name = json_string_value(json_object_get(model, "name"));
    }
    const json_t *backend = props ? json_object_get(props, "backend") : NULL;
    if (backend && !json_is_null(backend))
        err = parse_backend(backend, model_name, name, in, e);
    else
        err = dup_into(&in->backend, "echo");
out:
    if (err)
        kl_resource_deployment_input_free(in);
    return err;
}

json_t *kl_resource_deployment_json(const kl_store_deployment *d, const char *account_id)
{
    json_t *o = json_object();
    json_t *props = json_object();
    json_t *backend = json_object();
    json_t *sku = load_object(d->sku);
    json_t *model = load_object(d->model);
    size_t idlen = strlen(account_id) + strlen("/deployments/") + strlen(d->name) + 1;
    char *id = malloc(idlen);
    int err = !o || !props || !backend || !id;
    if (!err) {
        snprintf(id, idlen, "%s/deployments/%s", account_id, d->name);
        bool upstream = d->backend && strcmp(d->backend, "upstream") == 0;
        err |= kl_arm_json_set(backend, "type", json_string(upstream ? "upstream" : "echo"));
        if (upstream) {
            err |= kl_arm_json_set(backend, "url",
                                   json_string(d->upstream_url ? d->upstream_url : ""));
            err |= kl_arm_json_set(backend, "model",
                                   json_string(d->upstream_model ? d->upstream_model : ""));
            err |= kl_arm_json_set(backend, "hasCredential",
                                   json_boolean(d->credential_sealed != NULL));
        }
        err |= kl_arm_json_set(props, "provisioningState", json_string("Succeeded"));
        if (model)
            err |= json_object_set(props, "model", model);
        err |= json_object_set(props, "backend", backend);
        err |= kl_arm_json_set(o, "id", json_string(id));
        err |= kl_arm_json_set(o, "name", json_string(d->name));
        err |= kl_arm_json_set(o, "type", json_string(KL_ARM_DEPLOYMENT_TYPE));
        if (sku)
            err |= json_object_set(o, "sku", sku);
        err |= json_object_set(o, "properties", props);
        err |= kl_arm_json_set(o, "systemData", system_data(d->created_at, d->modified_at));
    }
    free(id);
    json_decref(props);
    json_decref(backend);
    json_decref(sku);
    json_decref(model);
    if (err) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ---------------------------------------------------------------- keys */

int kl_resource_parse_key_name(const json_t *body, int *slot, kl_arm_error *e)
{
    const char *k = json_string_value(json_object_get(body, "keyName"));
    if (k && kl_str_ieq(k, "Key1")) {
        *slot = 1;
        return 0;
    }
    if (k && kl_str_ieq(k, "Key2")) {
        *slot = 2;
        return 0;
    }
    kl_arm_error_set(e, 400, "BadRequest", "The keyName must be Key1 or Key2.");
    return KL_EINVAL;
}
