/* A provider kind is one dialect (providers/dialect.h: what the bodies say)
 * over one transport (providers/transport.h: where they go, how they are
 * authenticated and framed, what the response head means):
 *
 *   kind        dialect     transport
 *   openai      openai      bearer      (and every OpenAI-compatible server)
 *   azure       openai      azure       (api-key; deployments or v1 paths)
 *   anthropic   anthropic   anthropic   (x-api-key, anthropic-version)
 *   gemini      gemini      gemini      (x-goog-api-key; the model in the path)
 *   bedrock     bedrock     bedrock     (Converse; SigV4 or a Bedrock API key,
 *                                        eventstream framing)
 *   vertex      gemini      vertex      (OAuth: service-account tokens; publishers/google)
 *   vertex      anthropic   vertex      (... publishers/anthropic, rawPredict)
 *
 * Both halves are tables of pure functions (nginx's upstream create_request /
 * process_header / input_filter): no sockets, no timers, so each can be
 * unit-tested and fuzzed on buffers alone. The gateway's proxy drives them
 * through one attempt context; the upstream module moves the bytes. */
#ifndef YR_PROVIDER_H
#define YR_PROVIDER_H

#include <stdbool.h>

#include "api/chat.h"
#include "api/events.h"
#include "api/sse.h"
#include "config/config.h"
#include "core/pool.h"
#include "providers/dialect.h"
#include "providers/transport.h"
#include "upstream/upstream.h"

/* What the dialect and transport functions may read and keep for one
 * upstream attempt. The proxy owns it (one per attempt); nothing in it
 * outlives the request's pool. */
typedef struct yr_call_ctx {
    yr_pool_t *pool;             /* the request's pool: lives until the response ended */
    const yr_chat_req_t *chat;   /* the client's request in the OpenAI model */
    const yr_route_conf_t *route;
    yr_str_t request_id;
    void *state;                 /* the dialect's own per-attempt state (in pool) */
    yr_usage_t usage;            /* passthrough: filled while the response is read */
    yr_api_error_t error;        /* filled when build returns -EINVAL, or an in-band error */
    char error_type[64];         /* an in-band error's type, e.g. overloaded_error */
    int error_status;            /* the HTTP status that error type stands for */
    /* ... and what the event itself said (Gemini: RetryInfo, QuotaFailure):
     * a retry hint in ms (0: none) and a code for classify. */
    int64_t error_retry_after_ms;
    char error_code[64];
    /* The client's own protocol headers (passthrough), and the endpoint
     * variant (count_tokens instead of messages). */
    yr_str_t client_version;     /* e.g. the client's anthropic-version */
    yr_str_t client_beta;        /* e.g. the client's anthropic-beta */
    bool count_tokens;
    /* Passthrough: a relayed message carried content (pass_marks_content). */
    bool content_seen;
    /* Passthrough: the body the client gets when pass_response rewrote the
     * answer (embeddings from Gemini), in the pool; empty: the upstream's. */
    yr_str_t pass_out;
    /* Credentials (transport.h: credentials): the worker's cache of Google
     * service-account tokens, and the token the credentials step left for
     * prepare (in pool). */
    struct yr_gcp_tokens *gcp_tokens;
    const char *access_token;
} yr_call_ctx_t;

typedef struct {
    yr_provider_kind_t kind;
    const yr_dialect_ops_t *dialect;
    const yr_transport_ops_t *transport;
} yr_provider_kind_ops_t;

/* The dialect x transport of a kind; NULL when this build cannot call it.
 * A kind may speak more than one dialect (vertex: Gemini or Anthropic, by
 * publisher): this is its first; yr_provider_route_kind says which one a
 * route speaks. */
const yr_provider_kind_ops_t *yr_provider_kind(yr_provider_kind_t kind);
const yr_provider_kind_ops_t *yr_provider_route_kind(const yr_route_conf_t *r);
/* The kind a client of dialect client gets on route r: the route's
 * (yr_provider_route_kind), or the Responses passthrough for a Responses
 * client on a provider whose upstream speaks /v1/responses, or the kind's
 * embeddings dialect for an embeddings client. NULL when this build cannot
 * call it. */
const yr_provider_kind_ops_t *yr_provider_kind_for(const yr_route_conf_t *r, yr_dialect_t client);
/* Same, as a predicate (for route plans). */
bool yr_provider_callable(yr_provider_kind_t kind);

/* Anthropic's error types -> the HTTP status each stands for (529 for
 * overloaded_error); 500 for unknown types. */
int yr_anthropic_error_status(const char *type);

/* body_buf <- raw with the top-level "model" replaced by the route's model;
 * points out->body at it. -EINVAL (cx->error filled) when the key cannot be
 * found byte-wise (spelled with escapes). */
__attribute__((warn_unused_result)) int yr_provider_splice_model(yr_call_ctx_t *cx, yr_str_t raw,
                                                                  yr_buf_t *body_buf,
                                                                  yr_upstream_req_t *out);

/* An in-band provider error (an SSE error event) into cx: message, type,
 * the status it stands for, and the client-facing error kind. */
void yr_provider_inband_error(yr_call_ctx_t *cx, const char *type, const char *message,
                              int status);

#endif
