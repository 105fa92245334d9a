/* kl-upstream-stub: a small OpenAI-compatible model server (plain HTTP, libevent evhttp)
 * used as the upstream peer in proxy tests and benchmarks. Answers are canned and
 * deterministic; GET /_last and GET /_stats let tests see what the gateway forwarded
 * (/_stats: connections_accepted, requests, answers_pending).
 *
 * Request headers understood on the model routes:
 *   x-stub-delay-ms        delay the whole answer (timeouts)
 *   x-stub-chunks          number of content chunks when streaming (default 5)
 *   x-stub-chunk-delay-ms  delay between streamed events (default 0)
 *   x-stub-status          answer with this status and an OpenAI-style error body
 *   x-stub-answer-bytes    the answer is generated text of this many bytes (see
 *                          make_answer) instead of "stub:<model>:<prompt>"
 *   x-stub-pause-ms        streaming: pause this long after the first content chunk,
 *                          then send the rest in one burst
 * The same settings may also come in the JSON body as "x_stub":{"delay_ms","chunks",
 * "chunk_delay_ms","status","answer_bytes","pause_ms"} (headers win), so tests do not
 * depend on which client headers a gateway forwards. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#define STUB_MAX_BODY (8 * 1024 * 1024)
#define STUB_MAX_HEADERS (64 * 1024)
#define STUB_MAX_CHUNKS 1000
#define STUB_MAX_DELAY_MS 600000
#define STUB_IDLE_TIMEOUT_S 120
#define STUB_MAX_ANSWER (64 * 1024 * 1024)

struct stub_job;

typedef struct stub_ctx {
    struct event_base *base;
    struct stub_job *jobs; /* answers in progress, freed at shutdown */
    struct evhttp *http;
    json_t *last; /* last request seen on a model route (or any non-/_ route) */
    uint64_t connections_accepted;
    uint64_t requests;
    uint64_t id_counter;
} stub_ctx;

typedef enum job_kind { JOB_CHAT = 0, JOB_COMPLETIONS, JOB_EMBEDDINGS, JOB_ERROR } job_kind;

/* One answer in progress: waits for x-stub-delay-ms, then replies at once or streams
 * its events with x-stub-chunk-delay-ms between them. */
typedef struct stub_job {
    stub_ctx *ctx;
    struct stub_job *prev, *next;
    struct evhttp_request *req;
    struct event *timer;
    job_kind kind;
    bool stream;
    bool include_usage;
    bool started;
    int status;
    char *model;
    char *content; /* the answer text */
    size_t content_len;
    json_t *answer;  /* complete non-streaming answer (or error body) */
    long chunks;     /* number of content chunks */
    long next_event; /* streaming: index of the next event to send */
    long chunk_delay_ms;
    long pause_ms; /* after the first content chunk */
    char id[48];
    long long created;
    long prompt_tokens;
} stub_job;

static void job_free(stub_job *job)
{
    if (job == NULL)
        return;
    if (job->prev != NULL)
        job->prev->next = job->next;
    else if (job->ctx->jobs == job)
        job->ctx->jobs = job->next;
    if (job->next != NULL)
        job->next->prev = job->prev;
    if (job->timer != NULL)
        event_free(job->timer);
    free(job->model);
    free(job->content);
    json_decref(job->answer);
    free(job);
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

static long header_long(struct evkeyvalq *h, const char *name, long dflt, long lo, long hi)
{
    const char *v = evhttp_find_header(h, name);
    if (v == NULL || *v == '\0')
        return dflt;
    char *end = NULL;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || n < lo || n > hi)
        return dflt;
    return n;
}

/* A setting from the request header, else from the body's "x_stub" object. */
static long setting(struct evkeyvalq *h, json_t *doc, const char *header, const char *field,
                    long dflt, long lo, long hi)
{
    json_t *v = json_object_get(json_object_get(doc, "x_stub"), field);
    if (json_is_integer(v) && json_integer_value(v) >= lo && json_integer_value(v) <= hi)
        dflt = (long)json_integer_value(v);
    return header_long(h, header, dflt, lo, hi);
}

static long count_words(const char *s)
{
    long n = 0;
    bool in = false;
    for (; s != NULL && *s != '\0'; s++) {
        bool space = (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r');
        if (!space && !in)
            n++;
        in = !space;
    }
    return n;
}

/* A deterministic answer of about n bytes that a test can rebuild: segments
 * "%08ld \"\u00e9\"\n" for 0, 1, 2, ... (14 bytes each, with a JSON escape and a two-byte
 * character), cut to the longest prefix of at most n bytes that ends on a character
 * boundary. */
static char *make_answer(long n)
{
    size_t cap = (size_t)n + 32;
    char *a = malloc(cap);
    if (a == NULL)
        return NULL;
    size_t len = 0;
    for (long i = 0; len < (size_t)n; i++)
        len += (size_t)snprintf(a + len, cap - len, "%08ld \"\xc3\xa9\"\n", i);
    len = (size_t)n;
    while (len > 0 && ((unsigned char)a[len] & 0xC0) == 0x80)
        len--;
    a[len] = '\0';
    return a;
}

static void send_json(struct evhttp_request *req, int status, json_t *body)
{
    struct evbuffer *out = evbuffer_new();
    char *text = json_dumps(body, JSON_COMPACT);
    if (out == NULL || text == NULL) {
        free(text);
        if (out != NULL)
            evbuffer_free(out);
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    evbuffer_add(out, text, strlen(text));
    free(text);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply(req, status, status < 300 ? "OK" : "Error", out);
    evbuffer_free(out);
}

static void send_error(struct evhttp_request *req, int status, const char *message)
{
    json_t *body = json_pack("{s:{s:s,s:s,s:n,s:n}}", "error", "message", message, "type",
                             "invalid_request_error", "param", "code");
    if (body == NULL) {
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    send_json(req, status, body);
    json_decref(body);
}

/* Records method, path, headers and body of the request for GET /_last. */
static void record_last(stub_ctx *ctx, struct evhttp_request *req, const char *body,
                        size_t body_len)
{
    const char *method = "OTHER";
    switch (evhttp_request_get_command(req)) {
    case EVHTTP_REQ_GET: method = "GET"; break;
    case EVHTTP_REQ_POST: method = "POST"; break;
    case EVHTTP_REQ_PUT: method = "PUT"; break;
    case EVHTTP_REQ_DELETE: method = "DELETE"; break;
    default: break;
    }
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
    const char *query = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
    json_t *headers = json_object();
    json_t *rec = json_object();
    if (headers == NULL || rec == NULL) {
        json_decref(headers);
        json_decref(rec);
        return;
    }
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    struct evkeyval *kv;
    for (kv = in->tqh_first; kv != NULL; kv = kv->next.tqe_next) {
        char name[256];
        size_t n = strlen(kv->key);
        if (n >= sizeof(name))
            continue;
        for (size_t i = 0; i < n; i++) {
            char c = kv->key[i];
            name[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
        }
        name[n] = '\0';
        json_t *val = json_string(kv->value);
        if (val == NULL)
            continue;
        json_t *prev = json_object_get(headers, name);
        if (prev != NULL) {
            /* A repeated header shows up as "first, second" (as HTTP allows folding). */
            size_t len = strlen(json_string_value(prev)) + 2 + strlen(kv->value) + 1;
            char *joined = malloc(len);
            if (joined != NULL) {
                snprintf(joined, len, "%s, %s", json_string_value(prev), kv->value);
                json_object_set_new(headers, name, json_string(joined));
                free(joined);
            }
            json_decref(val);
        } else {
            json_object_set_new(headers, name, val);
        }
    }
    json_object_set_new(rec, "method", json_string(method));
    json_object_set_new(rec, "uri", json_string(evhttp_request_get_uri(req)));
    json_object_set_new(rec, "path", path != NULL ? json_string(path) : json_null());
    json_object_set_new(rec, "query", query != NULL ? json_string(query) : json_null());
    json_object_set_new(rec, "headers", headers);
    json_t *b = json_stringn(body != NULL ? body : "", body_len);
    json_object_set_new(rec, "body", b != NULL ? b : json_null());
    json_object_set_new(rec, "body_bytes", json_integer((json_int_t)body_len));
    json_decref(ctx->last);
    ctx->last = rec;
}

/* The text of the last "user" message: a string, or the "text" parts of an array. */
static int last_user_text(json_t *messages, char **out)
{
    json_t *found = NULL;
    size_t i;
    json_t *m;
    json_array_foreach(messages, i, m)
    {
        const char *role = json_string_value(json_object_get(m, "role"));
        if (role != NULL && strcmp(role, "user") == 0)
            found = json_object_get(m, "content");
    }
    if (found == NULL) {
        *out = dup_str("");
        return *out != NULL ? 0 : -1;
    }
    if (json_is_string(found)) {
        *out = dup_str(json_string_value(found));
        return *out != NULL ? 0 : -1;
    }
    size_t total = 1;
    json_t *part;
    json_array_foreach(found, i, part)
    {
        const char *t = json_string_value(json_object_get(part, "text"));
        if (t != NULL)
            total += strlen(t);
    }
    char *s = malloc(total);
    if (s == NULL)
        return -1;
    size_t off = 0;
    json_array_foreach(found, i, part)
    {
        const char *t = json_string_value(json_object_get(part, "text"));
        if (t != NULL) {
            size_t n = strlen(t);
            memcpy(s + off, t, n);
            off += n;
        }
    }
    s[off] = '\0';
    *out = s;
    return 0;
}

static json_t *usage_json(long prompt, long completion)
{
    return json_pack("{s:I,s:I,s:I}", "prompt_tokens", (json_int_t)prompt, "completion_tokens",
                     (json_int_t)completion, "total_tokens", (json_int_t)(prompt + completion));
}

/* A deterministic 8-dimension vector from the bytes of the input. */
static json_t *embedding_for(const char *s)
{
    uint32_t h = 2166136261u;
    json_t *v = json_array();
    for (const char *p = s; *p != '\0'; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    for (int i = 0; v != NULL && i < 8; i++) {
        h = h * 1103515245u + 12345u;
        json_array_append_new(v, json_real((double)(h >> 8) / (double)(1u << 24) - 0.5));
    }
    return v;
}

static json_t *build_answer(stub_job *job, json_t *req_body)
{
    if (job->kind == JOB_CHAT) {
        return json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:{s:s,s:s},s:s}],s:o}", "id", job->id, "object",
                         "chat.completion", "created", (json_int_t)job->created, "model",
                         job->model, "choices", "index", 0, "message", "role", "assistant",
                         "content", job->content, "finish_reason", "stop", "usage",
                         usage_json(job->prompt_tokens, count_words(job->content)));
    }
    if (job->kind == JOB_COMPLETIONS) {
        return json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:s,s:s,s:n}],s:o}", "id", job->id, "object",
                         "text_completion", "created", (json_int_t)job->created, "model",
                         job->model, "choices", "index", 0, "text", job->content, "finish_reason",
                         "stop", "logprobs", "usage",
                         usage_json(job->prompt_tokens, count_words(job->content)));
    }
    /* embeddings */
    json_t *input = json_object_get(req_body, "input");
    json_t *data = json_array();
    if (data == NULL)
        return NULL;
    long words = 0;
    if (json_is_string(input)) {
        words += count_words(json_string_value(input));
        json_array_append_new(data,
                              json_pack("{s:s,s:i,s:o}", "object", "embedding", "index", 0,
                                        "embedding", embedding_for(json_string_value(input))));
    } else {
        size_t i;
        json_t *item;
        json_array_foreach(input, i, item)
        {
            const char *t = json_is_string(item) ? json_string_value(item) : "";
            words += count_words(t);
            json_array_append_new(data, json_pack("{s:s,s:i,s:o}", "object", "embedding", "index",
                                                  (int)i, "embedding", embedding_for(t)));
        }
    }
    return json_pack("{s:s,s:o,s:s,s:{s:I,s:I}}", "object", "list", "data", data, "model",
                     job->model, "usage", "prompt_tokens", (json_int_t)words, "total_tokens",
                     (json_int_t)words);
}

/* Byte length of the k-th of n pieces of s, cut on UTF-8 character boundaries. */
static void piece_bounds(const char *s, size_t len, long n, long k, size_t *start, size_t *end)
{
    size_t a = len * (size_t)k / (size_t)n;
    size_t b = len * (size_t)(k + 1) / (size_t)n;
    while (a > 0 && a < len && ((unsigned char)s[a] & 0xC0) == 0x80)
        a++;
    while (b > 0 && b < len && ((unsigned char)s[b] & 0xC0) == 0x80)
        b++;
    if (b < a)
        b = a;
    *start = a;
    *end = b;
}

static json_t *chunk_event(stub_job *job, json_t *delta_or_text, const char *finish)
{
    json_t *choice;
    if (job->kind == JOB_CHAT)
        choice = json_pack("{s:i,s:o,s:o}", "index", 0, "delta", delta_or_text, "finish_reason",
                           finish != NULL ? json_string(finish) : json_null());
    else
        choice = json_pack("{s:i,s:o,s:n,s:o}", "index", 0, "text", delta_or_text, "logprobs",
                           "finish_reason", finish != NULL ? json_string(finish) : json_null());
    return json_pack("{s:s,s:s,s:I,s:s,s:[o]}", "id", job->id, "object",
                     job->kind == JOB_CHAT ? "chat.completion.chunk" : "text_completion", "created",
                     (json_int_t)job->created, "model", job->model, "choices", choice);
}

/* The streamed events: 0 = role (chat only, empty text for completions), 1..chunks =
 * content pieces, chunks+1 = finish, chunks+2 = usage (if asked), then [DONE]. */
static json_t *stream_event(stub_job *job, long idx)
{
    if (idx == 0) {
        if (job->kind == JOB_CHAT)
            return chunk_event(job, json_pack("{s:s,s:s}", "role", "assistant", "content", ""),
                               NULL);
        return chunk_event(job, json_string(""), NULL);
    }
    if (idx <= job->chunks) {
        size_t a, b;
        piece_bounds(job->content, job->content_len, job->chunks, idx - 1, &a, &b);
        json_t *text = json_stringn(job->content + a, b - a);
        if (text == NULL)
            text = json_string("");
        if (job->kind == JOB_CHAT)
            return chunk_event(job, json_pack("{s:o}", "content", text), NULL);
        return chunk_event(job, text, NULL);
    }
    if (idx == job->chunks + 1) {
        if (job->kind == JOB_CHAT)
            return chunk_event(job, json_object(), "stop");
        return chunk_event(job, json_string(""), "stop");
    }
    return json_pack("{s:s,s:s,s:I,s:s,s:[],s:o}", "id", job->id, "object",
                     job->kind == JOB_CHAT ? "chat.completion.chunk" : "text_completion", "created",
                     (json_int_t)job->created, "model", job->model, "choices", "usage",
                     usage_json(job->prompt_tokens, count_words(job->content)));
}

static void job_step(evutil_socket_t fd, short what, void *arg);

static int job_schedule(stub_job *job, long ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    return event_add(job->timer, &tv);
}

/* Sends the next part of the answer; frees the job when it is complete. */
static void job_step(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    stub_job *job = arg;
    struct evhttp_request *req = job->req;
    if (evhttp_request_get_connection(req) == NULL) {
        /* The client went away while we waited: the request is ours to free. */
        evhttp_request_free(req);
        job_free(job);
        return;
    }
    if (!job->stream || job->status != 200) {
        send_json(req, job->status, job->answer);
        job_free(job);
        return;
    }
    if (!job->started) {
        struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
        evhttp_add_header(oh, "Content-Type", "text/event-stream");
        evhttp_add_header(oh, "Cache-Control", "no-cache");
        evhttp_send_reply_start(req, 200, "OK");
        job->started = true;
    }
    long last_json = job->chunks + (job->include_usage ? 2 : 1);
    struct evbuffer *out = evbuffer_new();
    if (out == NULL) {
        evhttp_send_reply_end(req);
        job_free(job);
        return;
    }
    bool done = false;
    if (job->next_event <= last_json) {
        json_t *ev = stream_event(job, job->next_event);
        char *text = ev != NULL ? json_dumps(ev, JSON_COMPACT) : NULL;
        json_decref(ev);
        if (text != NULL) {
            evbuffer_add_printf(out, "data: %s\n\n", text);
            free(text);
        }
    } else {
        evbuffer_add_printf(out, "data: [DONE]\n\n");
        done = true;
    }
    job->next_event++;
    evhttp_send_reply_chunk(req, out);
    evbuffer_free(out);
    if (done) {
        evhttp_send_reply_end(req);
        job_free(job);
        return;
    }
    long wait = job->chunk_delay_ms;
    if (job->pause_ms > 0 && job->next_event == 2)
        wait = job->pause_ms;
    if (wait == 0) {
        job_step(-1, 0, job);
        return;
    }
    if (job_schedule(job, wait) != 0) {
        evhttp_send_reply_end(req);
        job_free(job);
    }
}

static void handle_model(stub_ctx *ctx, struct evhttp_request *req, job_kind kind, const char *body,
                         size_t body_len)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    json_error_t jerr;
    json_t *doc = json_loadb(body, body_len, 0, &jerr);
    if (doc == NULL || !json_is_object(doc)) {
        json_decref(doc);
        send_error(req, 400, "stub: request body is not a JSON object");
        return;
    }
    stub_job *job = calloc(1, sizeof(*job));
    if (job == NULL) {
        json_decref(doc);
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    job->ctx = ctx;
    job->next = ctx->jobs;
    if (ctx->jobs != NULL)
        ctx->jobs->prev = job;
    ctx->jobs = job;
    job->req = req;
    job->kind = kind;
    job->status = 200;
    job->created = (long long)time(NULL);
    job->chunks = setting(in, doc, "x-stub-chunks", "chunks", 5, 1, STUB_MAX_CHUNKS);
    job->chunk_delay_ms =
        setting(in, doc, "x-stub-chunk-delay-ms", "chunk_delay_ms", 0, 0, STUB_MAX_DELAY_MS);
    long delay = setting(in, doc, "x-stub-delay-ms", "delay_ms", 0, 0, STUB_MAX_DELAY_MS);
    long forced = setting(in, doc, "x-stub-status", "status", 200, 100, 599);
    long answer_bytes =
        setting(in, doc, "x-stub-answer-bytes", "answer_bytes", 0, 0, STUB_MAX_ANSWER);
    job->pause_ms = setting(in, doc, "x-stub-pause-ms", "pause_ms", 0, 0, STUB_MAX_DELAY_MS);
    ctx->id_counter++;
    snprintf(job->id, sizeof(job->id), "%s-stub%" PRIu64,
             kind == JOB_CHAT ? "chatcmpl" : (kind == JOB_COMPLETIONS ? "cmpl" : "emb"),
             ctx->id_counter);
    const char *model = json_string_value(json_object_get(doc, "model"));
    job->model = dup_str(model != NULL ? model : "");
    job->stream = kind != JOB_EMBEDDINGS && json_is_true(json_object_get(doc, "stream"));
    job->include_usage =
        json_is_true(json_object_get(json_object_get(doc, "stream_options"), "include_usage"));

    char *user = NULL;
    int rc = 0;
    if (kind == JOB_CHAT) {
        rc = last_user_text(json_object_get(doc, "messages"), &user);
    } else if (kind == JOB_COMPLETIONS) {
        json_t *p = json_object_get(doc, "prompt");
        if (json_is_array(p))
            p = json_array_get(p, 0);
        user = dup_str(json_is_string(p) ? json_string_value(p) : "");
        rc = user != NULL ? 0 : -1;
    }
    if (rc == 0 && kind != JOB_EMBEDDINGS) {
        job->prompt_tokens = count_words(user);
        size_t n = strlen(job->model) + strlen(user) + 8;
        job->content = malloc(n);
        if (job->content != NULL)
            snprintf(job->content, n, "stub:%s:%s", job->model, user);
    } else if (rc == 0) {
        job->content = dup_str("");
    }
    if (rc == 0 && answer_bytes > 0 && kind != JOB_EMBEDDINGS) {
        free(job->content);
        job->content = make_answer(answer_bytes);
    }
    free(user);
    if (job->content != NULL)
        job->content_len = strlen(job->content);
    if (rc != 0 || job->model == NULL || job->content == NULL) {
        json_decref(doc);
        job_free(job);
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    if (forced != 200) {
        job->status = (int)forced;
        job->answer = json_pack("{s:{s:s,s:s,s:n,s:s}}", "error", "message", "stub: forced status",
                                "type", "stub_error", "param", "code", "stub_forced");
    } else {
        job->answer = build_answer(job, doc);
    }
    json_decref(doc);
    job->timer = evtimer_new(ctx->base, job_step, job);
    if (job->answer == NULL || job->timer == NULL) {
        job_free(job);
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    if (delay == 0 && !job->stream) {
        job_step(-1, 0, job);
        return;
    }
    if (job_schedule(job, delay) != 0) {
        job_free(job);
        evhttp_send_error(req, 500, "timer failed");
    }
}

static void handle_request(struct evhttp_request *req, void *arg)
{
    stub_ctx *ctx = arg;
    ctx->requests++;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
    if (path == NULL)
        path = "";
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);

    if (strcmp(path, "/_last") == 0 || strcmp(path, "/_stats") == 0) {
        if (cmd != EVHTTP_REQ_GET) {
            send_error(req, 405, "stub: method not allowed");
            return;
        }
        if (strcmp(path, "/_last") == 0) {
            if (ctx->last == NULL) {
                json_t *none = json_null();
                send_json(req, 200, none);
                return;
            }
            send_json(req, 200, ctx->last);
            return;
        }
        /* answers_pending: answers still waiting or streaming, so a test can wait for
         * the stub to be done instead of sleeping. */
        json_int_t pending = 0;
        for (const stub_job *j = ctx->jobs; j != NULL; j = j->next)
            pending++;
        json_t *stats = json_pack("{s:I,s:I,s:I}", "connections_accepted",
                                  (json_int_t)ctx->connections_accepted, "requests",
                                  (json_int_t)ctx->requests, "answers_pending", pending);
        if (stats == NULL) {
            evhttp_send_error(req, 500, "out of memory");
            return;
        }
        send_json(req, 200, stats);
        json_decref(stats);
        return;
    }

    struct evbuffer *inbuf = evhttp_request_get_input_buffer(req);
    size_t body_len = evbuffer_get_length(inbuf);
    const char *body = body_len > 0 ? (const char *)evbuffer_pullup(inbuf, -1) : "";
    if (body == NULL) {
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    record_last(ctx, req, body, body_len);

    job_kind kind;
    if (strcmp(path, "/v1/chat/completions") == 0)
        kind = JOB_CHAT;
    else if (strcmp(path, "/v1/completions") == 0)
        kind = JOB_COMPLETIONS;
    else if (strcmp(path, "/v1/embeddings") == 0)
        kind = JOB_EMBEDDINGS;
    else {
        send_error(req, 404, "stub: no such route");
        return;
    }
    if (cmd != EVHTTP_REQ_POST) {
        send_error(req, 405, "stub: method not allowed");
        return;
    }
    handle_model(ctx, req, kind, body, body_len);
}

/* evhttp asks for a bufferevent once per accepted connection: that is where we count
 * connections (to let tests see keep-alive reuse). */
static struct bufferevent *new_conn_bev(struct event_base *base, void *arg)
{
    stub_ctx *ctx = arg;
    ctx->connections_accepted++;
    return bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    event_base_loopbreak(arg);
}

static int split_hostport(const char *hp, char *host, size_t hostlen, unsigned short *port)
{
    const char *colon = strrchr(hp, ':');
    if (colon == NULL || (size_t)(colon - hp) >= hostlen || colon == hp)
        return -1;
    memcpy(host, hp, (size_t)(colon - hp));
    host[colon - hp] = '\0';
    char *end = NULL;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (errno != 0 || end == colon + 1 || *end != '\0' || p < 0 || p > 65535)
        return -1;
    *port = (unsigned short)p;
    return 0;
}

int main(int argc, char **argv)
{
    const char *listen = "127.0.0.1:0";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
            listen = argv[++i];
        } else {
            fprintf(stderr, "usage: %s [--listen HOST:PORT]\n", argv[0]);
            return 2;
        }
    }
    char host[128];
    unsigned short port = 0;
    if (split_hostport(listen, host, sizeof(host), &port) != 0) {
        fprintf(stderr, "kl-upstream-stub: bad --listen %s\n", listen);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    int rc = 1;
    stub_ctx ctx = {0};
    struct event *sigterm = NULL, *sigint = NULL;
    ctx.base = event_base_new();
    if (ctx.base == NULL)
        goto out;
    ctx.http = evhttp_new(ctx.base);
    if (ctx.http == NULL)
        goto out;
    evhttp_set_max_body_size(ctx.http, STUB_MAX_BODY);
    evhttp_set_max_headers_size(ctx.http, STUB_MAX_HEADERS);
    evhttp_set_timeout(ctx.http, STUB_IDLE_TIMEOUT_S);
    evhttp_set_allowed_methods(ctx.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                             EVHTTP_REQ_DELETE);
    evhttp_set_gencb(ctx.http, handle_request, &ctx);
    evhttp_set_bevcb(ctx.http, new_conn_bev, &ctx);
    struct evhttp_bound_socket *bound = evhttp_bind_socket_with_handle(ctx.http, host, port);
    if (bound == NULL) {
        fprintf(stderr, "kl-upstream-stub: cannot listen on %s\n", listen);
        goto out;
    }
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof(ss);
    if (getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&ss, &sslen) != 0)
        goto out;
    char addr[INET6_ADDRSTRLEN] = "";
    unsigned bound_port = 0;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &sin->sin_addr, addr, sizeof(addr));
        bound_port = ntohs(sin->sin_port);
        printf("{\"event\":\"ready\",\"listen\":\"%s:%u\"}\n", addr, bound_port);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &sin6->sin6_addr, addr, sizeof(addr));
        bound_port = ntohs(sin6->sin6_port);
        printf("{\"event\":\"ready\",\"listen\":\"[%s]:%u\"}\n", addr, bound_port);
    }
    fflush(stdout);

    sigterm = evsignal_new(ctx.base, SIGTERM, on_signal, ctx.base);
    sigint = evsignal_new(ctx.base, SIGINT, on_signal, ctx.base);
    if (sigterm == NULL || sigint == NULL || event_add(sigterm, NULL) != 0 ||
        event_add(sigint, NULL) != 0)
        goto out;
    event_base_dispatch(ctx.base);
    rc = 0;
out:
    /* Answers still waiting: requests still on a connection are freed with it below;
     * those whose client already left are ours. */
    while (ctx.jobs != NULL) {
        if (evhttp_request_get_connection(ctx.jobs->req) == NULL)
            evhttp_request_free(ctx.jobs->req);
        job_free(ctx.jobs);
    }
    if (sigterm != NULL)
        event_free(sigterm);
    if (sigint != NULL)
        event_free(sigint);
    if (ctx.http != NULL)
        evhttp_free(ctx.http);
    json_decref(ctx.last);
    if (ctx.base != NULL)
        event_base_free(ctx.base);
    return rc;
}
