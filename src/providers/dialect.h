/* A dialect is pure translation between the gateway's internal model and one
 * provider wire format (openai, anthropic; next gemini, bedrock converse):
 *   request:  the client's request in the OpenAI model -> the provider body
 *   response: the provider's full body, or one framed stream message
 *             -> typed events (api/events.h)
 *   passthrough: when the client speaks the provider's own dialect, the body
 *             goes up with only "model" spliced and the answer is validated
 *             and relayed as it is (the hot OpenAI -> OpenAI path).
 * No I/O, no URLs, no auth: those are the transport's (providers/transport.h). */
#ifndef YR_DIALECT_H
#define YR_DIALECT_H

#include <stdbool.h>

#include "api/events.h"
#include "api/sse.h"
#include "providers/transport.h"

struct yr_call_ctx;

/* One message of a streamed body, as the transport's framer cut it. */
typedef yr_sse_event_t yr_frame_t;

typedef struct yr_dialect_ops {
    const char *name;
    /* The client dialect whose requests pass through unchanged. */
    yr_dialect_t native_client;
    /* The provider may report an error (overload) right after its opening
     * stream event: hold that event back so failover stays possible. */
    bool hold_first_event;
    /* build translates the parsed tree (yr_chat_load_root), not the bytes. */
    bool needs_tree;
    /* The provider cannot fetch image URLs: the gateway always fetches them
     * (behind the SSRF guard) and sends them inline, whatever the
     * provider's inline_images setting says. */
    bool inline_images;

    /* The OpenAI-model request (cx->chat; raw is its text) -> the provider's
     * body in body_buf (or raw itself), pointed to by out->body; *path is the
     * endpoint and *extra the protocol headers, for the transport. Returns 0;
     * -EINVAL with cx->error filled when the request cannot be honoured. */
    int (*build)(struct yr_call_ctx *cx, yr_str_t raw, yr_buf_t *body_buf,
                 yr_upstream_req_t *out, const char **path, const char *const **extra);
    /* A complete 2xx body -> the whole event sequence (START ... END).
     * -EINVAL when it is not a valid answer; a consumer's error as it is. */
    int (*response)(struct yr_call_ctx *cx, yr_str_t body, yr_ev_fn fn, void *arg);
    /* One stream message -> events; *done once the provider's terminal
     * message was seen (END emitted). -EINVAL when malformed. */
    int (*event)(struct yr_call_ctx *cx, const yr_frame_t *m, yr_ev_fn fn, void *arg,
                 bool *done);
    /* The provider's error body -> message, param, type, code, retry hint. */
    void (*parse_error)(yr_str_t body, yr_provider_error_t *out);

    /* Passthrough (native_client speaking to this dialect). */
    int (*pass_build)(struct yr_call_ctx *cx, yr_str_t raw, yr_buf_t *body_buf,
                      yr_upstream_req_t *out, const char **path, const char *const **extra);
    /* Validates a complete 2xx body (and reads its usage into cx->usage). */
    int (*pass_response)(struct yr_call_ctx *cx, yr_str_t body);
    /* Validates one message and re-frames it into out; *done at the
     * terminal one; -ECANCELED for an in-band error (cx->perr filled). */
    int (*pass_event)(struct yr_call_ctx *cx, const yr_frame_t *m, yr_buf_t *out, bool *done);
    /* pass_event sets cx->content_seen at the first message that carries
     * content (text, a tool call, a finish): messages before it (an opening
     * chunk) are held back, so a failure right after them still fails over.
     * false: every relayed message counts as content. */
    bool pass_marks_content;
} yr_dialect_ops_t;

extern const yr_dialect_ops_t yr_dialect_openai;
extern const yr_dialect_ops_t yr_dialect_anthropic;
extern const yr_dialect_ops_t yr_dialect_azure; /* OpenAI's, with Azure's quirks */
extern const yr_dialect_ops_t yr_dialect_gemini; /* gemini.c, gemini_decode.c */

#endif
