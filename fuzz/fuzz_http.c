/* Fuzz target for the HTTP request parser (src/http/parser.h), in process: each input is
 * the raw bytes of one connection, fed to the parser as the server's connection feeds it
 * (head, headers hook, body, the next pipelined request), with no socket and no thread.
 * Every refusal must be one of the server's own, with a JSON error body; every head and
 * request handed on must keep the server's promises (normalised path, no duplicate or
 * disguised framing header, no header added by a trailer, a body matching Content-Length);
 * every byte charged to the request budget must be given back, and the same bytes must
 * give the same requests and refusals whether they come whole or cut into pieces.
 * fuzz_httpserver.c
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

/* What one pass over a connection's bytes found, event by event, to compare passes. */
#define MAX_EVENTS 64

typedef struct event {
    kl_http_parse st;
    int status;        /* a refusal's */
    int nheaders;      /* a head's or a request's */
    size_t body_len;   /* a request's */
    unsigned path_sum; /* a head's path, summed */
} event;

typedef struct transcript {
    event ev[MAX_EVENTS];
    size_t n;
} transcript;

static void record(transcript *t, kl_http_parse st, const kl_http_parser *p, kl_http_req *r)
{
    if (t->n == MAX_EVENTS)
        return;
    event *e = &t->ev[t->n++];
    memset(e, 0, sizeof(*e));
    e->st = st;
    if (st == KL_HTTP_PARSE_REFUSED) {
        e->status = p->status;
        return;
    }
    if (!r)
        return;
    e->nheaders = r->nheaders;
    for (const char *c = r->path ? r->path : ""; *c; c++)
        e->path_sum = e->path_sum * 31 + (unsigned char)*c;
    if (st == KL_HTTP_PARSE_DONE)
        kl_http_req_body(r, &e->body_len);
}

/* The next piece the connection hands the parser: everything that arrived (cut 0), or
 * a piece whose length the input's own bytes choose (1 to 13), as reads would cut it. */
static size_t piece(const char *in, size_t pos, size_t size, int cut)
{
    if (cut == 0)
        return size - pos;
    size_t n = 1 + (unsigned char)in[pos] % 13;
    return n < size - pos ? n : size - pos;
}

/* One connection over in, fed as the server's connection feeds it. */
static void run(const char *in, size_t size, int cut, transcript *t)
{
    kl_http_req *req = NULL;
    kl_http_parser p;
    kl_http_parser_init(&p, new_req, &req);
    size_t pos = 0;
    int head_headers = -1;
    while (pos < size) {
        size_t used = 0, n = piece(in, pos, size, cut);
        kl_http_parse st = kl_http_parser_feed(&p, in + pos, n, &used);
        if (st == KL_HTTP_PARSE_REFUSED) {
            check_refusal(&p);
            record(t, st, &p, NULL);
            break;
        }
        CHECK(used <= n);
        pos += used;
        if (st == KL_HTTP_PARSE_MORE) {
            CHECK(used == n);
            continue; /* at the end: an incomplete request, the connection would wait */
        }
        CHECK(req != NULL && p.req == req);
        record(t, st, &p, req);
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
                record(t, KL_HTTP_PARSE_REFUSED, &p, NULL);
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
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy, so a read past the end is caught. */
    char *in = malloc(size ? size : 1);
    CHECK(in != NULL);
    memcpy(in, data, size);
    /* The same bytes must mean the same requests however the reads cut them: a parser
     * that reads a connection two ways is a smuggling vector. */
    transcript whole = {.n = 0}, cut = {.n = 0};
    run(in, size, 0, &whole);
    run(in, size, 1, &cut);
    CHECK(whole.n == cut.n);
    for (size_t i = 0; i < whole.n; i++) {
        const event *a = &whole.ev[i], *b = &cut.ev[i];
        CHECK(a->st == b->st && a->status == b->status && a->nheaders == b->nheaders &&
              a->body_len == b->body_len && a->path_sum == b->path_sum);
    }
    free(in);
    return 0;
}
