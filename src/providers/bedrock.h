/* AWS Bedrock Runtime, Converse and ConverseStream:
 *
 *   POST {base_url}/model/{modelId}/converse          one JSON answer
 *   POST {base_url}/model/{modelId}/converse-stream   an AWS eventstream
 *
 * base_url defaults to https://bedrock-runtime.{region}.amazonaws.com; the
 * model id (with its ':', an inference-profile prefix such as "us." or
 * "global.", or a whole ARN) is one percent-encoded path segment.
 *
 *   bedrock.c         the request: an OpenAI chat request -> a Converse body
 *                     (messages of content blocks, system, inferenceConfig,
 *                     toolConfig, additionalModelRequestFields)
 *   bedrock_decode.c  the answer: a Converse response, or the eventstream's
 *                     events and exceptions -> typed events (api/events.h);
 *                     errors; the transport (URL, SigV4 or a Bedrock API
 *                     key, x-amzn-ErrorType, x-amzn-RequestId)
 *
 * docs/providers.md has the mapping tables and what is deliberately not
 * mapped. There is no passthrough: no client speaks Converse to us. */
#ifndef YR_BEDROCK_H
#define YR_BEDROCK_H

#include <stdbool.h>

#include "providers/provider.h"

/* Content blocks of one answer whose tool index the decoder tracks; a
 * block index past it is a malformed stream. */
#define YR_BR_MAX_BLOCKS 256

/* Per-attempt state (cx->state, in cx->pool): what the transport saw in the
 * head and what the stream decoder keeps between events. */
typedef struct {
    char request_id[80]; /* x-amzn-RequestId: the response id */
    bool started, finished, stopped;
    uint32_t tools;                           /* toolUse blocks so far: the next OpenAI index */
    int32_t open_tool;                        /* the tool index of the open toolUse block, or -1 */
    size_t tool_args;                         /* bytes of input streamed for it */
    uint16_t tool_of_block[YR_BR_MAX_BLOCKS]; /* tool index + 1, 0: not a tool */
    char stop_reason[48];
    yr_usage_t usage;
} yr_br_state_t;

/* cx->state, created on first use; NULL when out of memory. */
yr_br_state_t *yr_bedrock_state(yr_call_ctx_t *cx);

/* "/model/{model}/converse" or ".../converse-stream" in pool, the model
 * percent-encoded as one segment (RFC 3986 unreserved kept). NULL when out
 * of memory. */
const char *yr_bedrock_path(yr_pool_t *pool, const char *model, bool stream);

/* True for Anthropic's models on Bedrock ("anthropic.claude-...", with or
 * without an inference-profile prefix, or an ARN naming one). */
bool yr_bedrock_is_claude(const char *model);

/* bedrock.c: the build slot of yr_dialect_bedrock. */
int yr_bedrock_build(yr_call_ctx_t *cx, yr_str_t raw, yr_buf_t *body_buf, yr_upstream_req_t *out,
                     const char **path, const char *const **extra);

/* An exception's or error's type (throttlingException, ValidationException,
 * ...; any case) -> the HTTP status it stands for; 500 when unknown. */
int yr_bedrock_error_status(const char *type);

extern const yr_dialect_ops_t yr_dialect_bedrock;
extern const yr_transport_ops_t yr_transport_bedrock;

#endif
