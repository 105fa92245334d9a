/* Fuzz target for the HTTP request parser (src/http/parser.h), in process: each input is
 * the raw bytes of one connection, fed to the parser as the server's connection feeds it
 * (head, headers hook, body, the next pipelined request), with no socket and no thread.
 * Every refusal must be one of the server's own, with a JSON error body; every head and
 * request handed on must keep the server's promises (normalised path, no duplicate or
 * disguised framing header, no header added by a trailer, a body matching Content-Length);
 * and every byte charged to the request budget must be given back. fuzz_httpserver.c
 * covers the connection and the answers around the parser, over a socket. */
#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "http/parser.h"
#include "http/req.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_http: check failed at line %d: %s\n", __LINE__, #cond);          \
            __builtin_trap();                                                                      \
        }                                                                                          \
    } while (0)

#define ERROR_PREFIX "{\"error\":{\"code\":"

/* The daemon-wide request budget, as the server holds it (libFuzzer gives no context). */
static atomic_size_t budget;
static bool dump; /* KL_FUZZ_HTTP_DUMP set: print what the parser found (read a reproducer) */

/* The refusals the parser may make, and nothing else. */
static const struct {
    int status;
    const char *code;
} refusals[] = {
    {400, "BadRequest"},
    {413, "RequestEntityTooLarge"},
    {414, "RequestUriTooLong"},
    {417, "ExpectationFailed"},
    {431, "RequestHeaderFieldsTooLarge"},
    {500, "InternalServerError"},
    {501, "NotImplemented"},
    {503, "ServerBusy"},
    {505, "HTTPVersionNotSupported"},
};

static kl_http_req *new_req(void *arg)
{
    kl_http_req **slot = arg;
    if (!*slot)
        *slot = kl_http_req_new(&budget);
    return *slot;
}

/* A refusal is one the server knows, and its answer is the JSON error shape. */
static void check_refusal(const kl_http_parser *p)
{
    bool known = false;
    for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++)
        known = known || (p->status == refusals[i].status && p->code &&
                          strcmp(p->code, refusals[i].code) == 0);
    CHECK(known);
    CHECK(p->msg && p->msg[0]);
    json_t *e = json_pack("{s:{s:s,s:s}}", "error", "code", p->code, "message", p->msg);
    CHECK(e != NULL);
    char *s = json_dumps(e, JSON_COMPACT | JSON_PRESERVE_ORDER);
    CHECK(s && strncmp(s, ERROR_PREFIX, strlen(ERROR_PREFIX)) == 0);
    free(s);
    json_decref(e);
    if (dump)
        fprintf(stderr, "refused: %d %s: %s\n", p->status, p->code, p->msg);
}

/* What the server promises about every head it hands to the headers hook. */
static void check_head(kl_http_req *r)
{
    const char *path = kl_http_req_path(r);
    size_t plen = strlen(path);
    CHECK(plen >= 1 && path[0] == '/');
    CHECK(strstr(path, "//") == NULL);
    CHECK(plen == 1 || path[plen - 1] != '/');
    for (size_t i = 0; i < plen; i++)
        CHECK((unsigned char)path[i] > 0x20 && (unsigned char)path[i] != 0x7f);
    CHECK(strchr(path, '?') == NULL);
    CHECK(strchr(kl_http_req_query(r), '#') == NULL);
    size_t rawlen;
    const char *raw = kl_http_req_raw_path(r, &rawlen);
    CHECK(rawlen >= 1 && raw[0] == '/' && memchr(raw, '?', rawlen) == NULL);
    CHECK(kl_http_req_method(r)[0] != '\0');
    CHECK(kl_http_req_header_count(r, "host") <= 1);
    CHECK(kl_http_req_header_count(r, "content-length") <= 1);
    CHECK(kl_http_req_header_count(r, "transfer-encoding") <= 1);
    /* Whitespace between a field name and its colon must be refused (RFC 9112, 5.1):
     * http_parser still reads such a name as the framing header it resembles. */
    CHECK(kl_http_req_header(r, "transfer-encoding ") == NULL);
    CHECK(kl_http_req_header(r, "content-length ") == NULL);
    CHECK(kl_http_req_header(r, "host ") == NULL);
    const char *te = kl_http_req_header(r, "transfer-encoding");
    CHECK(!te || strcasecmp(te, "chunked") == 0);
    (void)kl_http_req_query_param(r, "x");
    if (dump)
        fprintf(stderr, "head: %s %s ?%s (%d headers)\n", kl_http_req_method(r), path,
                kl_http_req_query(r), r->nheaders);
}

/* What the server promises about every complete request it hands to the handler. */
static void check_request(kl_http_req *r, int head_headers)
{
    check_head(r);
    /* Trailer fields after a chunked body are dropped, never added as headers. */
    CHECK(r->nheaders == head_headers);
    size_t blen;
    const unsigned char *body = kl_http_req_body(r, &blen);
    CHECK(body != NULL);
    const char *cl = kl_http_req_header(r, "content-length");
    if (cl && kl_http_req_header(r, "transfer-encoding") == NULL) {
        char *end = NULL;
        unsigned long long v = strtoull(cl, &end, 10);
        if (end != cl && *end == '\0' && cl[0] >= '0' && cl[0] <= '9')
            CHECK(v == blen);
    }
    if (dump)
        fprintf(stderr, "request: %zu body bytes\n", blen);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    dump = getenv("KL_FUZZ_HTTP_DUMP") != NULL;
    kl_log_set_level(KL_LOG_ERROR);
    kl_http_parser_setup();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy, so a read past the end is caught. */
    char *in = malloc(size ? size : 1);
    CHECK(in != NULL);
    memcpy(in, data, size);
    kl_http_req *req = NULL;
    kl_http_parser p;
    kl_http_parser_init(&p, new_req, &req);
    size_t pos = 0;
    int head_headers = -1;
    while (pos < size) {
        size_t used = 0;
        kl_http_parse st = kl_http_parser_feed(&p, in + pos, size - pos, &used);
        if (st == KL_HTTP_PARSE_REFUSED) {
            check_refusal(&p);
            break;
        }
        CHECK(used <= size - pos);
        pos += used;
        if (st == KL_HTTP_PARSE_MORE) {
            CHECK(pos == size); /* an incomplete request: the connection would wait */
            break;
        }
        CHECK(req != NULL && p.req == req);
        if (st == KL_HTTP_PARSE_HEAD) {
            check_head(req);
            size_t blen;
            kl_http_req_body(req, &blen);
            CHECK(blen == 0); /* nothing of the body is read yet */
            head_headers = req->nheaders;
            /* As the gateway's hook refuses a wrong key: paths under /deny are answered
             * from the head. With a body unread the connection closes; without one it
             * carries on (the parser, reset, skips the head's last LF). */
            if (strncmp(kl_http_req_path(req), "/deny", 5) == 0) {
                if (kl_http_parser_has_body(&p) || !p.keep_alive)
                    break;
                kl_http_req_free(req);
                req = NULL;
                kl_http_parser_reset(&p);
                continue;
            }
            if (kl_http_parser_reserve_body(&p) != 0) {
                check_refusal(&p);
                break;
            }
            continue;
        }
        CHECK(st == KL_HTTP_PARSE_DONE && head_headers >= 0);
        check_request(req, head_headers);
        head_headers = -1;
        bool keep_alive = p.keep_alive;
        kl_http_req_free(req);
        req = NULL;
        if (!keep_alive)
            break; /* "Connection: close": the server reads nothing more */
        kl_http_parser_reset(&p);
    }
    kl_http_req_free(req);
    /* Every byte charged to the daemon-wide budget came back with its request. */
    CHECK(atomic_load(&budget) == 0);
    free(in);
    return 0;
}
