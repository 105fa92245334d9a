/* The HTTP/1.1 request parser (private to src/http/): http_parser for the framing, with the
 * server's own checks on top (limits, target splitting, framing headers, the daemon-wide
 * request budget). Bytes in; out comes a request's checked head, a whole request, or a
 * refusal with its status and JSON error code. No socket and no event loop: the
 * connection (conn.c) feeds it from its input buffer, fuzz/fuzz_http.c from memory. */
#ifndef KL_HTTP_PARSER_H
#define KL_HTTP_PARSER_H

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/server.h"

/* What kl_http_parser_feed found. */
typedef enum kl_http_parse {
    KL_HTTP_PARSE_MORE = 0, /* every byte was taken; the request is not complete yet */
    KL_HTTP_PARSE_HEAD,     /* the head is complete and checked; no byte of the body is read */
    KL_HTTP_PARSE_DONE,     /* the request is complete, body included */
    KL_HTTP_PARSE_REFUSED   /* refused: status, code and msg say why; parse no further */
} kl_http_parse;

/* Makes the request the parser fills when a request's first byte arrives; NULL if out of
 * memory (the request is then refused). The caller owns what it returns. */
typedef kl_http_req *(*kl_http_parser_new_req_fn)(void *arg);

typedef struct kl_http_parser {
    http_parser hp;
    kl_http_parser_new_req_fn new_req;
    void *new_req_arg;
    kl_http_req *req; /* the request being read: made by new_req, owned by the caller */
    bool head_done;   /* the callbacks paused after a complete head */
    /* Valid after KL_HTTP_PARSE_HEAD: whether the client allows another request on the
     * connection, and whether it waits for "100 Continue" before sending its body. */
    bool keep_alive;
    bool expect_100;
    /* The request line, read by the parser itself as the bytes arrive, so that what
     * decides a refusal there is a byte, not where the reads were cut: http_parser only
     * says "invalid method" (a 400 when the method is not a token, a 501 for a token it
     * does not know), and its callbacks see a target in as many pieces as it came in. */
    int line_state;
    size_t method_len;   /* token bytes of the method so far */
    size_t target_len;   /* bytes of the target so far */
    bool method_unknown; /* http_parser refused the method before its end: the rest decides */
    bool too_many_headers;
    /* A chunked body's framing, checked byte for byte: Debian's http_parser is built
     * lenient and takes any byte where a chunk's CR or LF belongs, which a proxy in
     * front would read differently. chunk_state is 0 for a body that is not chunked. */
    int chunk_state;
    uint64_t chunk_left; /* bytes of the current chunk's data (or its size, while read) */
    /* The refusal (status 0 until there is one). msg may point into msgbuf: copy it
     * before the parser is fed or reset again. */
    int status;
    const char *code;
    const char *msg;
    char msgbuf[160];
} kl_http_parser;

/* Process-wide, idempotent set-up of http_parser (its header limit is a global setting):
 * call once before any parser is fed, from one thread. */
void kl_http_parser_setup(void);
/* Makes p ready for a connection's first request; requests come from new_req(arg). */
void kl_http_parser_init(kl_http_parser *p, kl_http_parser_new_req_fn new_req, void *arg);
/* Makes p ready for the next request on the same connection (after DONE, or after a
 * refused head of a request without a body). Forgets the request, which stays the
 * caller's. */
void kl_http_parser_reset(kl_http_parser *p);
/* Parses up to len bytes of data (a request's bytes as they arrive, in any pieces). *used
 * gets how many were taken: on MORE all of them; on HEAD and DONE the request's bytes so
 * far (feed the rest again); on REFUSED the count is meaningless (the connection is to
 * close). The outcome does not depend on how the bytes are cut: a head, request or
 * refusal found in one piece is the one found byte by byte. After HEAD, the caller vets the head
 * and calls kl_http_parser_reserve_body before feeding the body. Never fails otherwise: every
 * problem is a refusal. */
kl_http_parse kl_http_parser_feed(kl_http_parser *p, const char *data, size_t len, size_t *used);
/* After HEAD: true if the request has a body (chunked, or a Content-Length above 0). */
bool kl_http_parser_has_body(const kl_http_parser *p);
/* After HEAD: charges a body of known length to the daemon-wide budget in one piece and
 * gives the request's body buffer its size at once. 0, or -1 with the refusal set (503
 * ServerBusy when the budget is spent, 500 if out of memory). */
int kl_http_parser_reserve_body(kl_http_parser *p);

#endif
