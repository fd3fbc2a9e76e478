/* Inbound Gemini API (POST /v1beta/models/{model}:generateContent,
 * :streamGenerateContent and :countTokens): conversion between Gemini's
 * native format and the gateway's internal model, the OpenAI Chat
 * Completions format.
 *
 *   URL path + query --yr_gem_parse_target--> model, method, framing
 *   client (Gemini JSON) --yr_gem_request_to_openai--> OpenAI chat request
 *   typed events (api/events.h) --yr_gem_enc_event--> GenerateContentResponse,
 *                                                     or its stream chunks
 *
 * Pure functions: no I/O, no globals, no logging. Every output goes to a
 * caller-owned yr_buf_t whose cap is enforced (-E2BIG past it); on failure
 * `out` is restored to its length before the call. Mapping tables and what
 * is deliberately not mapped: docs/gemini_inbound.md. */
#ifndef YR_GEMINI_IN_H
#define YR_GEMINI_IN_H

#include <stdbool.h>
#include <stdint.h>

#include "api/chat.h"
#include "api/errors.h"
#include "api/events.h"
#include "core/buf.h"

/* Longest model id accepted from a client. */
#define YR_GEM_MODEL_MAX 256
/* Tool calls per response the encoder keeps. */
#define YR_GEM_ENC_MAX_TOOLS 128
/* Bytes of one non-streamed response (or of one call's arguments). */
#define YR_GEM_ENC_MAX_MESSAGE (64 * 1024 * 1024)

typedef enum {
    YR_GEM_GENERATE = 0, /* :generateContent */
    YR_GEM_STREAM,       /* :streamGenerateContent */
    YR_GEM_COUNT,        /* :countTokens */
} yr_gem_method_t;

typedef struct {
    /* The model named in the URL, percent-decoded and copied (NUL-terminated). */
    char model[YR_GEM_MODEL_MAX + 1];
    size_t model_len;
    yr_gem_method_t method;
    bool stream; /* method == YR_GEM_STREAM */
    bool sse;    /* ?alt=sse: an event stream; otherwise a streamed JSON array */
    /* generationConfig.thinkingConfig.includeThoughts: thought parts are shown */
    bool include_thoughts;
    /* The input tokens the request costs, estimated as countTokens does. */
    int64_t input_tokens_estimate;
} yr_gem_req_info_t;

/* True when path is one of the Gemini model-method paths this gateway
 * serves: /v1beta/models/{model}:{method} or /v1/models/{model}:{method}. */
bool yr_gem_is_target(yr_str_t path);

/* The model named by GET /v1beta/models/{model} (or /v1/models/{model}
 * when allow_v1: that path is OpenAI's on /v1 otherwise), percent-decoded
 * into info->model; an empty path tail is -ENOENT (the list), a malformed
 * name -EINVAL. A "models/" prefix the SDKs may repeat is not expected. */
__attribute__((warn_unused_result)) int yr_gem_parse_model_path(yr_str_t path,
                                                                yr_gem_req_info_t *info);
/* Appends one Model resource: {"name":"models/ID","displayName":ID,
 * "supportedGenerationMethods":[...]} (what the gateway serves for it). */
__attribute__((warn_unused_result)) int yr_gem_model_json(yr_str_t id, yr_buf_t *out);

/* Reads the model and method from such a path and the framing from the
 * query (alt=sse). Fills *info (the rest zeroed). Returns 0; -EINVAL with
 * *err filled (YR_E_NOT_FOUND for an unknown method, YR_E_INVALID_REQUEST
 * for a bad model name). */
__attribute__((warn_unused_result)) int
yr_gem_parse_target(yr_str_t path, yr_str_t query, yr_gem_req_info_t *info, yr_api_error_t *err);

/* The light check of a body that goes to a Gemini route as it is: one JSON
 * object without duplicate keys. Returns 0, or -EINVAL / -ENOMEM with *err. */
__attribute__((warn_unused_result)) int yr_gem_peek(const char *body, size_t len,
                                                    yr_api_error_t *err);

/* Validates a GenerateContentRequest and appends the equivalent OpenAI chat
 * request (model = info->model, stream = info->stream) to out. Fills
 * info->include_thoughts and info->input_tokens_estimate. Returns 0; on
 * failure fills *err (message "path: problem", param the dotted path, e.g.
 * "contents.1.parts.0.inlineData.mimeType") and returns -EINVAL
 * (YR_E_INVALID_JSON / YR_E_INVALID_REQUEST), -E2BIG (YR_E_TOO_LARGE) or
 * -ENOMEM (YR_E_INTERNAL). Nothing returned points into body. */
__attribute__((warn_unused_result)) int yr_gem_request_to_openai(const char *body, size_t len,
                                                                 yr_gem_req_info_t *info,
                                                                 yr_buf_t *out,
                                                                 yr_api_error_t *err);

/* countTokens when no route can count: the estimate of
 * yr_anth_count_tokens_estimate over the converted request. The body is a
 * CountTokensRequest: {"contents": [...]} or {"generateContentRequest":
 * {...}}. Returns 0 and *tokens >= 1, or -EINVAL / -ENOMEM with *err. */
__attribute__((warn_unused_result)) int
yr_gem_count_tokens_estimate(const char *body, size_t len, int64_t *tokens, yr_api_error_t *err);

/* ---- framing of a streamed answer -------------------------------------- */

/* alt=sse: each chunk is "data: <json>\r\n\r\n", as Gemini sends them.
 * Otherwise the stream is one JSON array written piece by piece: "[" before
 * the first chunk, ",\r\n" between chunks, "]" at the end. */
typedef struct {
    bool sse;
    bool opened; /* array: "[" was written */
    bool closed; /* array: "]" was written */
} yr_gem_frame_t;

/* Appends one GenerateContentResponse chunk (a JSON object). */
__attribute__((warn_unused_result)) int yr_gem_frame_chunk(yr_gem_frame_t *f, yr_str_t json,
                                                           yr_buf_t *out);
/* Re-frames SSE events (the data of each event, as a Gemini passthrough
 * relays them) into f's framing; comments and empty events are dropped.
 * sse must hold whole events only. */
__attribute__((warn_unused_result)) int yr_gem_frame_sse(yr_gem_frame_t *f, yr_str_t sse,
                                                         yr_buf_t *out);
/* The end of the stream: "]" (or "[]") for the array; nothing for SSE. */
__attribute__((warn_unused_result)) int yr_gem_frame_end(yr_gem_frame_t *f, yr_buf_t *out);
/* A failure after the 200: Gemini's error object as the last chunk (the
 * SDK raises on a chunk with an "error" object), then the end. */
__attribute__((warn_unused_result)) int yr_gem_frame_error(yr_gem_frame_t *f, yr_err_t e,
                                                           yr_str_t message, yr_buf_t *out);

/* ---- the Gemini client encoder ----------------------------------------- */

/* Turns the typed events of one answer into a GenerateContentResponse
 * (message mode, appended at END) or a stream of them (one chunk per text
 * or reasoning delta, one per function call at its end, a last one with
 * finishReason and usageMetadata). Heap-allocated; owned by the caller,
 * freed with yr_gem_enc_free. */
typedef struct yr_gem_enc yr_gem_enc_t;

typedef struct {
    yr_str_t model;   /* shown as modelVersion (START's when empty); copied */
    yr_str_t id_seed; /* responseId (START's id when empty); copied */
    bool stream;
    bool sse;                      /* stream framing, see yr_gem_frame_t */
    bool include_thoughts;         /* REASONING becomes thought parts; else only counted */
    int64_t input_tokens_estimate; /* promptTokenCount when the provider reports none */
} yr_gem_enc_opts_t;

yr_gem_enc_t *yr_gem_enc_new(const yr_gem_enc_opts_t *o);
void yr_gem_enc_free(yr_gem_enc_t *e);

/* Feeds one event, in order. YR_EV_ERROR is -EINVAL (the caller reports
 * in-band errors with yr_gem_enc_error). Returns 0, -EINVAL (an event that
 * breaks the sequence), -E2BIG or -ENOMEM; on failure out is as it was and
 * the encoder accepts only yr_gem_enc_error and _free. */
__attribute__((warn_unused_result)) int yr_gem_enc_event(yr_gem_enc_t *e, const yr_event_t *ev,
                                                         yr_buf_t *out);
/* For a yr_ev_fn producer: arg is a yr_gem_sink_t. */
typedef struct {
    yr_gem_enc_t *enc;
    yr_buf_t *out;
} yr_gem_sink_t;
int yr_gem_enc_sink(void *arg, const yr_event_t *ev);
/* Stream mode: the error chunk (yr_gem_frame_error) and the end. */
__attribute__((warn_unused_result)) int yr_gem_enc_error(yr_gem_enc_t *e, yr_err_t err,
                                                         yr_str_t message, yr_buf_t *out);

/* ---- errors ---------------------------------------------------------------- */

/* The HTTP status a Gemini client gets for a gateway error: the gateway's
 * own, except an unknown model, which Gemini reports as 404. */
int yr_gem_error_status(yr_err_t e);
/* The google.rpc status name for it (INVALID_ARGUMENT, UNAUTHENTICATED,
 * PERMISSION_DENIED, NOT_FOUND, RESOURCE_EXHAUSTED, INTERNAL,
 * UNIMPLEMENTED, UNAVAILABLE, DEADLINE_EXCEEDED). A static string. */
const char *yr_gem_error_status_name(yr_err_t e);
/* Appends {"error":{"code":N,"message":M,"status":S}}. */
__attribute__((warn_unused_result)) int yr_gem_error_body(yr_err_t e, yr_str_t message,
                                                          yr_buf_t *out);

#endif
