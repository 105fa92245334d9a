#include "token/bearer.h"

#include <string.h>

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
