/* SSE event framing ("data: ...\n\n"). */
#include "gateway/sse.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"

int kl_sse_event(kl_buf *out, const char *data, size_t len)
{
    size_t i = 0;
    int rc;
    for (;;) {
        size_t j = i;
        while (j < len && data[j] != '\n' && data[j] != '\r')
            j++;
        if ((rc = kl_buf_append(out, "data: ", 6)) != 0 ||
            (rc = kl_buf_append(out, data + i, j - i)) != 0 ||
            (rc = kl_buf_append(out, "\n", 1)) != 0)
            return rc;
        if (j >= len)
            break;
        if (data[j] == '\r' && j + 1 < len && data[j + 1] == '\n')
            j++; /* CRLF is one line break */
        i = j + 1;
    }
    return kl_buf_append(out, "\n", 1);
}

int kl_sse_json(kl_buf *out, const json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!s)
        return KL_ENOMEM;
    int rc = kl_sse_event(out, s, strlen(s));
    free(s);
    return rc;
}

int kl_sse_done(kl_buf *out)
{
    return kl_buf_append_str(out, "data: [DONE]\n\n");
}
