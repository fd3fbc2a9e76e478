/* The OpenAI Chat Completions encoder of the typed event stream (events.h).
 *
 * A translating provider's decoder produces events; this turns them into what
 * an OpenAI client expects: chat.completion.chunk SSE events as they come
 * (stream), or one chat.completion object at YR_EV_END (non-stream). The JSON
 * is written straight into the caller's buffer, without a DOM: it runs once
 * per streamed event.
 *
 * Stream, one `data: {...}\n\n` per chunk, every chunk with the same id,
 * object, created and model, and choices[{index:0, delta, logprobs:null,
 * finish_reason}] (plus "usage":null when include_usage is set, as OpenAI
 * does):
 *
 *   START       delta {"role":"assistant","content":""}
 *   TEXT        delta {"content":...}            (empty deltas: nothing)
 *   REASONING   delta {"reasoning_content":...}  (the field DeepSeek, vLLM and
 *                                                 OpenRouter use)
 *   REFUSAL     delta {"refusal":...}
 *   TOOL_START  delta {"tool_calls":[{index,id,type:"function",
 *                                     function:{name,arguments:""}
 *                                     (,extra_content:{google:
 *                                       {thought_signature}})}]}
 *               (the signature when the provider bound one to the call:
 *               Gemini's thoughtSignature, as Google's OpenAI endpoint
 *               sends it; the same field in non-stream tool_calls)
 *   TOOL_ARGS   delta {"tool_calls":[{index,function:{arguments}}]}
 *   TOOL_END    nothing, or "{}" as the arguments of a call that streamed
 *               none, so that a client always parses valid JSON
 *   FINISH      delta {} with the finish_reason
 *   USAGE       nothing (kept for END)
 *   END         the FINISH chunk if none came; with include_usage and a
 *               USAGE seen, a chunk with choices [] and the usage; then
 *               "data: [DONE]\n\n"
 *   ERROR       nothing, and nothing after it: the proxy reports the failure
 *               in the client's dialect (or fails over before the first byte)
 *
 * Non-stream: nothing until END, then the chat.completion object (no SSE
 * framing). Without a FINISH the finish_reason is "tool_calls" when a tool
 * was called, else "stop".
 *
 * Every call appends to the caller's buffer within its cap; on failure
 * out->len is restored and the encoder's state is as before the call, so
 * the same event may be offered again. What a non-stream encoder keeps
 * (text, arguments) is bounded by the out buffer's cap too: an answer that
 * could not be written at END fails as soon as it is known to be too big. */
#ifndef YR_OAI_ENC_H
#define YR_OAI_ENC_H

#include <stdbool.h>

#include "api/events.h"
#include "core/buf.h"

typedef struct {
    yr_str_t model;   /* shown to the client; empty: START's name */
    yr_str_t id_seed; /* used when START has no id (e.g. the request id) */
    bool stream;
    bool include_usage; /* stream_options.include_usage */
} yr_oai_enc_opts_t;

typedef struct yr_oai_enc yr_oai_enc_t;

/* A new encoder (heap); the option strings are copied. NULL when out of
 * memory. The caller owns it and frees it with yr_oai_enc_free. */
yr_oai_enc_t *yr_oai_enc_new(const yr_oai_enc_opts_t *o);
void yr_oai_enc_free(yr_oai_enc_t *e);

/* Encodes one event, appending the client's bytes (possibly none) to out.
 * Returns 0, -E2BIG (out's cap, or the answer kept for END would not fit
 * it), -ENOMEM, or -EINVAL when the sequence breaks events.h's order (a
 * second START, a TOOL_START whose index is not the next one, arguments for
 * a call never started). Events after END or ERROR are ignored. */
__attribute__((warn_unused_result)) int yr_oai_enc_event(yr_oai_enc_t *e, const yr_event_t *ev,
                                                         yr_buf_t *out);

#endif
