/* The default locations of keyless's files; see paths.h. */
#include "common/paths.h"

#include <stdio.h>

#include "common/err.h"

int kl_paths_default_data_dir(bool is_root, const char *xdg_data_home, const char *home, char *out,
                              size_t outlen)
{
    int n;
    if (outlen == 0)
        return KL_ETOOBIG;
    if (is_root)
        n = snprintf(out, outlen, "/var/lib/keyless");
    else if (xdg_data_home && xdg_data_home[0] == '/')
        n = snprintf(out, outlen, "%s/keyless", xdg_data_home);
    else if (home && home[0] == '/')
        n = snprintf(out, outlen, "%s/.local/share/keyless", home);
    else {
        out[0] = '\0';
        return KL_ENOTFOUND;
    }
    if (n < 0 || (size_t)n >= outlen) {
        out[0] = '\0';
        return KL_ETOOBIG;
    }
    return 0;
}
