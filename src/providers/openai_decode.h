/* The OpenAI Chat Completions response decoder: a chat.completion body, or
 * the chat.completion.chunk stream, into the gateway's typed events
 * (api/events.h). These are the `response` and `event` functions of the
 * OpenAI dialect (providers/dialect.h); they also serve every
 * OpenAI-compatible server (Azure, vLLM, SGLang, DeepSeek, OpenRouter), whose
 * quirks are decoded here, once:
 *
 *   - finish_reason stop / length / tool_calls / function_call /
 *     content_filter -> yr_finish_t; vLLM's "stop_reason" and SGLang's
 *     "matched_stop" (when a string) -> FINISH.stop_sequence;
 *   - usage prompt_tokens, completion_tokens,
 *     prompt_tokens_details.cached_tokens,
 *     completion_tokens_details.reasoning_tokens -> yr_usage_t;
 *   - message.reasoning_content (DeepSeek, vLLM) or .reasoning (OpenRouter)
 *     -> REASONING; message.refusal -> REFUSAL;
 *   - Azure's opening chunk with "choices": [] and prompt_filter_results,
 *     its content-filter chunks with no (or an empty) delta, a usage chunk
 *     with "choices": [], and "usage": null on every chunk.
 *
 * Pure functions; per-attempt state lives in cx->state (allocated in
 * cx->pool on the first stream event; its heap buffers are released by a
 * pool cleanup). Every slice in an emitted event is valid only during the
 * consumer call. */
#ifndef YR_OPENAI_DECODE_H
#define YR_OPENAI_DECODE_H

#include <stdbool.h>

#include "api/events.h"
#include "api/sse.h"
#include "providers/provider.h"

/* Tool calls per response: a higher index is malformed. */
#define YR_OPENAI_MAX_TOOLS 128
/* Longest tool-call id or function name kept. */
#define YR_OPENAI_TOOL_STR_MAX 256
/* Argument bytes held for calls whose name has not arrived yet. */
#define YR_OPENAI_MAX_HELD (1024 * 1024)
/* Longest matched stop sequence reported (longer ones are not reported). */
#define YR_OPENAI_STOP_SEQ_MAX 4096

/* A complete chat.completion -> START, REASONING?, TEXT?, REFUSAL?,
 * (TOOL_START TOOL_ARGS? TOOL_END)*, FINISH?, USAGE?, END. Only
 * choices[0] is decoded (the gateway never asks for n > 1). Tool calls are
 * indexed by position; arguments sent as a JSON object (some servers do)
 * are passed as its raw bytes. Returns 0; -EINVAL when body is not a valid
 * completion (nothing is emitted then); a consumer's negative code as it
 * is; -ENOMEM. */
__attribute__((warn_unused_result)) int
yr_openai_decode_response(struct yr_call_ctx *cx, yr_str_t body, yr_ev_fn fn, void *arg);

/* One SSE event of a streamed answer: a chat.completion.chunk, or "[DONE]"
 * (-> the TOOL_ENDs still due, END, and *done = true). The first valid chunk
 * emits START, carrying that chunk's usage when it has some (START.usage,
 * for encoders that write a header at once); within a chunk, USAGE comes
 * first, then the choice's events. Tool calls keep the
 * chunk's index; a call opens (TOOL_START) once it has a name, and argument
 * fragments sent before that are held back (YR_OPENAI_MAX_HELD) and sent
 * right after it; a finish_reason emits TOOL_END for every open call, then
 * FINISH. An {"error": ...} chunk emits ERROR (status from a numeric code or
 * the type, else 500). A chunk is checked whole before any of its events is
 * emitted, so -EINVAL means nothing of it reached the consumer.
 * Returns 0; -EINVAL for a malformed chunk, output after the finish_reason,
 * a tool call that never got a name, or any call after END, ERROR or a
 * failure; a consumer's negative code as it is; -ENOMEM. */
__attribute__((warn_unused_result)) int yr_openai_decode_event(struct yr_call_ctx *cx,
                                                               const yr_sse_event_t *m, yr_ev_fn fn,
                                                               void *arg, bool *done);

#endif
