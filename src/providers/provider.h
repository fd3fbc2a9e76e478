/* A provider is a table of pure translation functions (nginx's upstream
 * create_request / process_header / input_filter): no sockets, no timers, so
 * each can be unit-tested and fuzzed on buffers alone. The gateway's proxy
 * drives them; the upstream module moves the bytes. */
#ifndef YR_PROVIDER_H
#define YR_PROVIDER_H

#include <stdbool.h>

#include "api/chat.h"
#include "api/sse.h"
#include "config/config.h"
#include "core/pool.h"
#include "upstream/upstream.h"

typedef struct {
    int64_t prompt_tokens;
    int64_t completion_tokens;
    int64_t cached_tokens;
    bool present;
} yr_usage_t;

/* What a provider function may read and keep for one upstream attempt.
 * Tagged so that providers/transport.h can name it (struct yr_call_ctx). */
typedef struct yr_call_ctx {
    yr_pool_t *pool;             /* the request's pool: lives until the response ended */
    const yr_chat_req_t *chat;   /* the client's request in the OpenAI model */
    const yr_route_conf_t *route;
    yr_str_t request_id;
    void *state;                 /* the provider's own per-attempt state (in pool) */
    yr_usage_t usage;            /* filled while the response is read */
    yr_api_error_t error;        /* filled when a function returns -ECANCELED */
    char error_type[64];         /* the provider's error type, e.g. overloaded_error */
    int error_status;            /* the HTTP status that error type stands for */
    /* Native passthrough only: the client's own protocol headers, and the
     * endpoint variant (count_tokens instead of messages). */
    yr_str_t client_version;     /* e.g. the client's anthropic-version */
    yr_str_t client_beta;        /* e.g. the client's anthropic-beta */
    bool count_tokens;
} yr_call_ctx_t;

typedef struct yr_provider_ops {
    const char *kind;
    /* The provider may report an error (overload) right after its opening
     * stream event: hold that event back so failover stays possible. */
    bool hold_first_event;
    /* Builds the upstream chat request. raw is the client's OpenAI body.
     * Strings that must outlive the call go in cx->pool or body_buf (owned
     * by the caller, kept until the call ends). Returns 0; -EINVAL with
     * cx->error filled when the request cannot be honoured by this provider
     * (the client gets a 400 if no other route can); other negatives on
     * internal failures. */
    int (*build_chat)(yr_call_ctx_t *cx, yr_str_t raw, yr_buf_t *body_buf,
                      yr_upstream_req_t *out);
    /* A complete 2xx body -> the OpenAI chat.completion for the client, in
     * *client (a slice of body or of out). -EINVAL when it is not valid. */
    int (*chat_response)(yr_call_ctx_t *cx, yr_str_t body, yr_buf_t *out, yr_str_t *client);
    /* One upstream SSE event -> OpenAI chunk events appended to out, each
     * framed "data: ...\n\n"; the terminal "data: [DONE]\n\n" too, with
     * *done set. -EINVAL on a malformed event; -ECANCELED when the provider
     * reported an error in the stream (cx->error, cx->error_status set). */
    int (*chat_event)(yr_call_ctx_t *cx, const yr_sse_event_t *ev, yr_buf_t *out, bool *done);
    /* Extracts a provider error body: message, param into err; the
     * provider's type and code strings into type/code. */
    void (*parse_error)(yr_str_t body, yr_api_error_t *err, char *type, size_t typelen,
                        char *code, size_t codelen);
} yr_provider_ops_t;

/* Passthrough for a client that already speaks the provider's protocol: the
 * body goes upstream with only "model" rewritten, and the answer comes back
 * validated but not re-encoded. */
typedef struct yr_native_ops {
    /* raw is the client's body in the provider's own format. */
    int (*build)(yr_call_ctx_t *cx, yr_str_t raw, yr_buf_t *body_buf, yr_upstream_req_t *out);
    /* A complete 2xx body: -EINVAL when it is not a valid answer. */
    int (*response)(yr_call_ctx_t *cx, yr_str_t body);
    /* One upstream SSE event re-framed into out; *done on the terminal
     * event; -EINVAL malformed; -ECANCELED for an error event (cx->error). */
    int (*event)(yr_call_ctx_t *cx, const yr_sse_event_t *ev, yr_buf_t *out, bool *done);
} yr_native_ops_t;

/* The passthrough for a client of dialect d calling a provider of kind k, or
 * NULL when the two protocols differ (then the request is translated). */
const yr_native_ops_t *yr_native_ops(yr_provider_kind_t k, yr_dialect_t d);

/* Anthropic's error types -> the HTTP status each stands for (529 for
 * overloaded_error); 500 for unknown types. */
int yr_anthropic_error_status(const char *type);

/* Helpers shared by the providers' build functions. */

/* body_buf <- raw with the top-level "model" replaced by the route's model;
 * points out->body at it. -EINVAL (cx->error filled) when the key cannot be
 * found byte-wise (spelled with escapes). */
__attribute__((warn_unused_result)) int yr_provider_splice_model(yr_call_ctx_t *cx, yr_str_t raw,
                                                                  yr_buf_t *body_buf,
                                                                  yr_upstream_req_t *out);
/* "Name: value" (value of vlen bytes) in pool, or NULL when out of memory. */
char *yr_provider_header(yr_pool_t *pool, const char *name, const char *value, size_t vlen);
/* base_url + path in pool, or NULL. */
char *yr_provider_url(yr_pool_t *pool, const yr_provider_conf_t *p, const char *path);
/* The provider's timeouts into out. */
void yr_provider_timeouts(const yr_provider_conf_t *p, yr_upstream_req_t *out);

/* The OpenAI provider's functions, shared with kinds that speak its wire
 * format over another transport (Azure, until the dialect x transport table
 * replaces provider tables). yr_openai_body puts the upstream body in
 * out->body: raw itself, or body_buf (the route's model spliced in, or the
 * rewritten tree serialised); 0, -EINVAL (cx->error filled) or -ENOMEM. */
__attribute__((warn_unused_result)) int yr_openai_body(yr_call_ctx_t *cx, yr_str_t raw,
                                                        yr_buf_t *body_buf,
                                                        yr_upstream_req_t *out);
int yr_openai_chat_response(yr_call_ctx_t *cx, yr_str_t body, yr_buf_t *out, yr_str_t *client);
int yr_openai_chat_event(yr_call_ctx_t *cx, const yr_sse_event_t *ev, yr_buf_t *out, bool *done);
void yr_openai_parse_error(yr_str_t body, yr_api_error_t *err, char *type, size_t typelen,
                           char *code, size_t codelen);

/* NULL when this build cannot talk to providers of that kind yet. */
const yr_provider_ops_t *yr_provider_ops(yr_provider_kind_t kind);

extern const yr_provider_ops_t yr_provider_openai;
extern const yr_provider_ops_t yr_provider_anthropic;
extern const yr_provider_ops_t yr_provider_azure; /* glue, see providers/azure.c */

#endif
