#include "token/bearer.h"

#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"

bool kl_bearer_split(const char *h, const char **v, size_t *n)
{
    static const char scheme[] = "bearer";
    const size_t sl = sizeof(scheme) - 1;
    if (!h)
        return false;
    size_t hl = strlen(h);
    if (hl <= sl || !kl_str_ieqn(h, sl, scheme, sl))
        return false;
    const char *p = h + sl;
    if (*p != ' ' && *p != '\t')
        return false;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t len = strlen(p);
    while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
        len--;
    if (len == 0)
        return false;
    *v = p;
    *n = len;
    return true;
}

int kl_bearer_issuer(const char *tid, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "https://sts.windows.net/%s/", tid ? tid : "");
    return (n < 0 || (size_t)n >= outlen) ? KL_ETOOBIG : 0;
}
