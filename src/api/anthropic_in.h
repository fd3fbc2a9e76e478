/* Inbound Anthropic Messages API (POST /v1/messages): conversion between
 * Anthropic's native format and the gateway's internal model, the OpenAI Chat
 * Completions format.
 *
 *   client (Anthropic JSON) --yr_anth_request_to_openai--> OpenAI chat request
 *   typed events (api/events.h) --yr_anth_enc_event--> Anthropic message, or
 *                                                      Anthropic events
 *   client (Anthropic JSON) --yr_anth_peek--> what routing needs (passthrough)
 *
 * Pure functions: no I/O, no globals, no logging. Every output goes to a
 * caller-owned yr_buf_t whose cap is enforced (-E2BIG past it). On failure
 * nothing is left half-written in `out`: its length is restored to what it
 * was before the call. The mapping tables, and what is dropped and why, are
 * in docs/anthropic_inbound.md. */
#ifndef YR_ANTHROPIC_IN_H
#define YR_ANTHROPIC_IN_H

#include <stdbool.h>
#include <stdint.h>

#include "api/chat.h"
#include "api/errors.h"
#include "api/events.h"
#include "core/buf.h"

/* Longest model id accepted from a client (Anthropic's are < 64 bytes). */
#define YR_ANTH_MODEL_MAX 256
/* Tool calls per response; an event naming a higher index is an error. */
#define YR_ANTH_ENC_MAX_TOOLS 128
/* Bytes of tool-call argument fragments the encoder may hold back while an
 * earlier tool_use block is still open (parallel calls interleaved by index). */
#define YR_ANTH_ENC_MAX_PENDING (1024 * 1024)
/* Bytes of one non-streamed message the encoder collects. */
#define YR_ANTH_ENC_MAX_MESSAGE (64 * 1024 * 1024)

typedef struct {
    /* The model the client asked for, copied (NUL-terminated), so it outlives
     * the request body and the JSON parsed from it. */
    char model[YR_ANTH_MODEL_MAX + 1];
    size_t model_len;
    bool stream;   /* the client asked for an event stream */
    bool thinking; /* thinking.type was "enabled" or "adaptive" */
    /* The input tokens the request will cost, estimated as
     * yr_anth_count_tokens_estimate does (0 from yr_anth_peek): a
     * translated stream reports it in message_start, before the provider's
     * own figure arrives. */
    int64_t input_tokens_estimate;
} yr_anth_req_info_t;

/* Validates an Anthropic Messages request the way the Anthropic API does and
 * appends the equivalent OpenAI chat request JSON to out. body need not be
 * NUL-terminated; nothing past len is read.
 *
 * Returns 0 and fills *info; on failure fills *err (message in Anthropic's
 * "path: problem" style, err->param = the dotted path, e.g.
 * "messages.1.content.0.source") and returns
 *   -EINVAL  the request is invalid (err->err YR_E_INVALID_JSON or
 *            YR_E_INVALID_REQUEST: HTTP 400),
 *   -E2BIG   the converted request is larger than out->max (YR_E_TOO_LARGE),
 *   -ENOMEM  (YR_E_INTERNAL).
 * info and err are written by the callee; nothing returned points into body. */
__attribute__((warn_unused_result)) int yr_anth_request_to_openai(const char *body, size_t len,
                                                                  yr_buf_t *out,
                                                                  yr_anth_req_info_t *info,
                                                                  yr_api_error_t *err);

/* The light check of a request that goes to an Anthropic provider as it is
 * (passthrough): only what the gateway itself needs. body must be one JSON
 * object without duplicate keys, "model" a non-empty string of at most
 * YR_ANTH_MODEL_MAX bytes, "stream" a boolean (or null) when present; info
 * gets the model (copied), stream, and thinking (thinking.type "enabled" or
 * "adaptive"; anything else in thinking is the provider's to judge).
 * Returns 0, or -EINVAL with *err filled (YR_E_INVALID_JSON or
 * YR_E_INVALID_REQUEST), or -ENOMEM (YR_E_INTERNAL). */
__attribute__((warn_unused_result)) int yr_anth_peek(const char *body, size_t len,
                                                     yr_anth_req_info_t *info, yr_api_error_t *err);

/* ---- the Anthropic client encoder --------------------------------------- */

/* Turns the typed events of one answer (api/events.h) into what an Anthropic
 * client expects: in stream mode, Anthropic's message event stream, each
 * event appended as soon as it can be sent; otherwise one message JSON,
 * appended at YR_EV_END. Heap-allocated (it holds argument fragments of
 * parallel tool calls, and a whole message, in growable buffers a pool could
 * not give back); owned by the caller, released with yr_anth_enc_free(). A
 * request pool owner can register yr_anth_enc_free as a pool cleanup. */
typedef struct yr_anth_enc yr_anth_enc_t;

/* Returns a new encoder, or NULL when out of memory. model: the model the
 * client asked for (copied, at most YR_ANTH_MODEL_MAX bytes are kept; when
 * empty, START's model is shown). id_seed: makes the message id
 * "msg_<seed>" (only [A-Za-z0-9_-] are kept, a leading "chatcmpl-" is
 * dropped, 64 bytes at most); when empty START's id is used instead, and a
 * hash when that is empty too. stream: an event stream, or one message.
 * input_tokens_estimate: what message_start reports as input_tokens when
 * the provider has not reported usage by then (OpenAI reports it last);
 * 0 when unknown. Neither string is referenced after the call. */
yr_anth_enc_t *yr_anth_enc_new(yr_str_t model, yr_str_t id_seed, bool stream,
                               int64_t input_tokens_estimate);
void yr_anth_enc_free(yr_anth_enc_t *e);

/* Feeds one event, in order (START first; an event before START implies
 * one). YR_EV_ERROR is not for encoders (the caller reports in-band errors,
 * see yr_anth_enc_error) and is -EINVAL. Appends what can be sent now to
 * out; it may append nothing. Returns 0; -EINVAL for an event that breaks
 * the sequence (output after FINISH, TOOL_ARGS of a call never started, a
 * non-whitespace fragment for a call whose block had to be closed, anything
 * after END); -E2BIG when out, the fragment buffer
 * (YR_ANTH_ENC_MAX_PENDING) or the message (YR_ANTH_ENC_MAX_MESSAGE) is
 * full; -ENOMEM. On failure out is left as it was, and the encoder accepts
 * only yr_anth_enc_error and _free. */
__attribute__((warn_unused_result)) int yr_anth_enc_event(yr_anth_enc_t *e, const yr_event_t *ev,
                                                          yr_buf_t *out);

/* For a producer that takes a yr_ev_fn: arg is a yr_anth_sink_t. */
typedef struct {
    yr_anth_enc_t *enc;
    yr_buf_t *out;
} yr_anth_sink_t;
int yr_anth_enc_sink(void *arg, const yr_event_t *ev);

/* Ends the message as YR_EV_END does (stream: closes the open block, sends
 * the tool_use blocks still held back, then message_delta and message_stop;
 * otherwise appends the message). No-op once finished. For a truncated
 * stream call yr_anth_enc_error instead (never a silent end that looks like
 * success). Returns 0, -EINVAL (after an error), -E2BIG or -ENOMEM. */
__attribute__((warn_unused_result)) int yr_anth_enc_finish(yr_anth_enc_t *e, yr_buf_t *out);

/* Appends `event: error` with {"type":"error","error":{"type","message"}}
 * and ends the encoder (later events are -EINVAL). type is an Anthropic error
 * type (see yr_anth_error_type); NULL means "api_error". message may be NULL.
 * Returns 0, -E2BIG or -ENOMEM. */
__attribute__((warn_unused_result)) int yr_anth_enc_error(yr_anth_enc_t *e, const char *type,
                                                          const char *message, yr_buf_t *out);

/* True once the message was completed or an error event was produced. */
bool yr_anth_enc_done(const yr_anth_enc_t *e);

/* ---- errors -------------------------------------------------------------- */

/* The Anthropic error type for a gateway error: invalid_request_error,
 * authentication_error, permission_error, not_found_error,
 * request_too_large, rate_limit_error, api_error, timeout_error or
 * overloaded_error. A static string. */
const char *yr_anth_error_type(yr_err_t e);

/* The HTTP status to send with yr_anth_error_body: the gateway's own
 * (yr_err_info(e)->status); overloaded is 503, not Anthropic's 529, which
 * generic HTTP clients and proxies do not know. */
int yr_anth_error_status(yr_err_t e);

/* Appends Anthropic's error body:
 *   {"type":"error","error":{"type":T,"message":M},"request_id":ID}
 * request_id is null when empty. The message is not decorated with the
 * request id (Anthropic reports it only in the request_id field). Returns
 * 0, -E2BIG or -ENOMEM. */
__attribute__((warn_unused_result)) int yr_anth_error_body(yr_err_t e, yr_str_t message,
                                                           yr_str_t request_id, yr_buf_t *out);

/* ---- token counting ------------------------------------------------------ */

/* An estimate, not a tokenizer count, for POST /v1/messages/count_tokens when
 * the upstream cannot count: ceil(bytes / 4) of all text the model would
 * read (system, text blocks, tool_use names and inputs, tool results,
 * thinking, tool names, descriptions and input schemas) plus 4 per message,
 * plus a flat 1600 per image or PDF document (the size of a full-resolution
 * image; the real cost depends on pixels and pages, unknown here). The body
 * is validated like a Messages request except that max_tokens is not
 * required. Returns 0 and sets *tokens (>= 1), or -EINVAL / -ENOMEM with
 * *err filled. */
__attribute__((warn_unused_result)) int
yr_anth_count_tokens_estimate(const char *body, size_t len, int64_t *tokens, yr_api_error_t *err);

#endif
