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
    bool present;
} yr_usage_t;

typedef struct yr_provider_ops {
    const char *kind;
    /* Builds the upstream chat request for route. raw is the client's body.
     * Strings that must outlive the call go in pool or body_buf (owned by the
     * caller, kept until the call ends). */
    int (*build_chat)(const yr_route_conf_t *route, const yr_chat_req_t *chat, yr_str_t raw,
                      yr_pool_t *pool, yr_buf_t *body_buf, yr_upstream_req_t *out);
    /* A complete 2xx body -> the OpenAI chat.completion for the client, in
     * *client (a slice of body or of out). -EINVAL when it is not valid. */
    int (*chat_response)(yr_str_t body, yr_buf_t *out, yr_str_t *client, yr_usage_t *usage);
    /* One upstream SSE event -> OpenAI chunk events appended to out (already
     * framed "data: ...\n\n"). *done is set on the terminal event. -EINVAL on
     * a malformed event. */
    int (*chat_event)(const yr_sse_event_t *ev, yr_buf_t *out, bool *done, yr_usage_t *usage);
    /* Extracts a provider error body into err (message, type, param, code). */
    void (*parse_error)(yr_str_t body, yr_api_error_t *err, char *type, size_t typelen,
                        char *code, size_t codelen);
} yr_provider_ops_t;

/* NULL when this build cannot talk to providers of that kind yet. */
const yr_provider_ops_t *yr_provider_ops(yr_provider_kind_t kind);

extern const yr_provider_ops_t yr_provider_openai;

#endif
