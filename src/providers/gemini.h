/* Google Gemini API (generativelanguage.googleapis.com, v1beta):
 *
 *   gemini.c         the request: an OpenAI chat request -> generateContent
 *                    (contents, systemInstruction, tools, toolConfig,
 *                    generationConfig), with the JSON-schema conversion
 *   gemini_decode.c  the answer: GenerateContentResponse objects (one body,
 *                    or one per SSE event) -> typed events (api/events.h);
 *                    errors; the passthrough trio; the transport
 *
 * docs/providers.md has the mapping tables and every field deliberately not
 * mapped.
 *
 * Passthrough, for a client that speaks Gemini natively (the /v1beta
 * inbound endpoints): yr_gemini_pass_build sends the client's own request
 * bytes unchanged to {base_url}/v1beta/models/{route model}:generateContent
 * (or :streamGenerateContent?alt=sse when cx->chat->stream, or :countTokens
 * when cx->count_tokens): the model lives in the path, so nothing in the body
 * is spliced. yr_gemini_pass_response validates a full answer (an object,
 * candidates an array when present) and reads its usageMetadata into
 * cx->usage; yr_gemini_pass_event validates one SSE message, reads its
 * (cumulative) usage, re-frames it as "data: {json}\r\n\r\n" and sets *done
 * when a candidate carries a finishReason or the prompt was blocked. An
 * in-band {"error":{...}} is -ECANCELED with cx->error, cx->error_type and
 * cx->error_status filled. The inbound side must pass cx->chat->stream (and
 * may leave the rest of cx->chat empty: pass_* never read the tree). */
#ifndef YR_GEMINI_H
#define YR_GEMINI_H

#include <jansson.h>

#include "providers/provider.h"

/* The documented placeholder for a thought signature a client could not
 * keep (https://ai.google.dev/gemini-api/docs/thought-signatures). */
#define YR_GEMINI_DUMMY_SIGNATURE "skip_thought_signature_validator"

typedef enum {
    YR_GEMINI_OTHER = 0, /* 1.x, 2.0, unknown names: no thinking controls */
    YR_GEMINI_2_5,       /* thinkingBudget */
    YR_GEMINI_3,         /* thinkingLevel; thought signatures enforced */
} yr_gemini_family_t;

/* The family of an upstream model name ("gemini-2.5-flash",
 * "models/gemini-3-pro-preview", ...). */
yr_gemini_family_t yr_gemini_family(const char *model);

/* "/v1beta/models/{model}:{method}" (plus "?alt=sse" for streams) in pool,
 * the model percent-encoded as a path segment ("models/" and "tunedModels/"
 * prefixes are kept as written). NULL when out of memory. */
const char *yr_gemini_path(yr_pool_t *pool, const char *model, const char *method);

/* An OpenAI (JSON Schema) tool or response schema -> Gemini's Schema object
 * (an OpenAPI 3.0 subset): $ref resolved against $defs/definitions, type
 * arrays and anyOf/oneOf with null -> nullable, allOf merged, const -> enum,
 * keywords Gemini refuses dropped. *out is a new reference. Returns 0,
 * -ENOMEM, or -EINVAL with why filled (a cyclic $ref, an unknown $ref). */
__attribute__((warn_unused_result)) int yr_gemini_schema(const json_t *schema, json_t **out, char *why, size_t whylen);
/* The same schema for responseJsonSchema (Gemini's JSON Schema subset):
 * only the keywords that API documents are kept. */
__attribute__((warn_unused_result)) int yr_gemini_json_schema(const json_t *schema, json_t **out);

/* Gemini's error body ({"error":{code,message,status,details}}, or the same
 * wrapped in [...]) -> message, type (the status, e.g. RESOURCE_EXHAUSTED),
 * code (the reason of an ErrorInfo detail, or "quota_exceeded_per_day" when a
 * QuotaFailure names a per-day quota) and retry_after_ms (RetryInfo). */
void yr_gemini_parse_error(yr_str_t body, yr_provider_error_t *out);
/* The HTTP status a google.rpc status name stands for (RESOURCE_EXHAUSTED
 * 429, UNAVAILABLE 503, ...); 500 for unknown names. */
int yr_gemini_status_http(const char *status);

int yr_gemini_pass_build(yr_call_ctx_t *cx, yr_str_t raw, yr_buf_t *body_buf,
                         yr_upstream_req_t *out, const char **path, const char *const **extra);

/* What differs between the APIs that speak the Gemini dialect. */
typedef struct {
    /* Vertex AI refuses a content without a role (the Gemini API reads a
     * missing role as "user"): translated requests always carry one, and a
     * passthrough body with a content that has none gets "role":"user"
     * added to it (the body is rewritten only then). */
    bool role_required;
} yr_gemini_opts_t;

/* yr_gemini_pass_build with the options of the API called. */
int yr_gemini_pass_build_opts(yr_call_ctx_t *cx, yr_str_t raw, yr_buf_t *body_buf,
                              yr_upstream_req_t *out, const char **path,
                              const char *const **extra, const yr_gemini_opts_t *opts);
/* Gemini's error statuses (UNAUTHENTICATED, RESOURCE_EXHAUSTED, a per-day
 * quota, ...) over the generic status table: the classify of every
 * transport that answers with google.rpc errors. */
yr_outcome_t yr_gemini_classify(int status, const yr_provider_error_t *perr);
int yr_gemini_pass_response(yr_call_ctx_t *cx, yr_str_t body);
/* gemini_decode.c's decoding slots of yr_dialect_gemini, for the dialects
 * built on it (vertex.c). */
int yr_gem_response(yr_call_ctx_t *cx, yr_str_t body, yr_ev_fn fn, void *arg);
int yr_gem_event(yr_call_ctx_t *cx, const yr_frame_t *m, yr_ev_fn fn, void *arg, bool *done);
int yr_gemini_pass_event(yr_call_ctx_t *cx, const yr_frame_t *m, yr_buf_t *out, bool *done);

/* gemini.c: the build slot of yr_dialect_gemini. */
int yr_gemini_build(yr_call_ctx_t *cx, yr_str_t raw, yr_buf_t *body_buf, yr_upstream_req_t *out,
                    const char **path, const char *const **extra);

#endif
