/* The OpenAI Responses API (POST /v1/responses) in front of every route:
 *
 *   client (Responses JSON) --yr_resp_request_to_openai--> OpenAI chat request
 *   typed events (api/events.h) --yr_resp_enc_event--> a `response` object,
 *                                                       or its typed SSE events
 *
 * Pure functions: no I/O, no logging. Outputs go to caller-owned buffers
 * whose caps are enforced (-E2BIG). Mapping and what is not supported:
 * docs/responses.md. */
#ifndef YR_RESPONSES_H
#define YR_RESPONSES_H

#include <stdbool.h>
#include <stdint.h>

#include "api/chat.h"
#include "api/errors.h"
#include "api/events.h"
#include "api/resp_state.h"
#include "core/buf.h"

typedef struct {
    char model[256];
    bool stream;
    bool store;             /* the request's store (default true) */
    bool has_previous;      /* previous_response_id was given */
    bool include_enc;       /* include: ["reasoning.encrypted_content"] */
    int64_t max_output_tokens; /* -1: none */
    char dropped_tools[256];   /* built-in tools a translated route cannot run, comma
                                  separated (x-yourouter-dropped) */
    json_t *namespaces;     /* names of the namespace tools flattened to ns__name; owned */
    char *pass_body;        /* with previous_response_id: the request as a Responses
                               upstream gets it (the conversation inlined); malloc'ed */
    char previous_id[64];   /* previous_response_id */
    json_t *items;          /* every input item this response answers (the previous
                               response's input and output, then this request's), for the
                               store; owned */
    json_t *echo;           /* request fields the response repeats (instructions, tools,
                               tool_choice, temperature, top_p, text, reasoning, metadata,
                               parallel_tool_calls, max_output_tokens); owned */
} yr_resp_info_t;

void yr_resp_info_free(yr_resp_info_t *info);

/* The previous_response_id of a request (into id, 64 bytes), "" when none;
 * -EINVAL (err filled) when the body is not a JSON object or the id is bad. */
__attribute__((warn_unused_result)) int yr_resp_previous_id(const char *body, size_t len, char *id,
                                                            yr_api_error_t *err);

/* Converts a Responses request to the OpenAI chat request every dialect's
 * build takes. prev_items / prev_response: the stored input items and
 * response of previous_response_id (NULL when none): the conversation
 * continues from them. secret opens the provider state of reasoning items
 * (resp_state.h). On failure fills err (param is the Responses field,
 * e.g. "input[2].content[0].image_url") and returns -EINVAL / -E2BIG /
 * -ENOMEM; info->model[0] != 0 then tells that the request itself was
 * readable (model, stream, store, items set): only its translation failed,
 * and a Responses upstream may still take it. */
__attribute__((warn_unused_result)) int
yr_resp_request_to_openai(const char *body, size_t len, const char *prev_items,
                          const char *prev_response, const yr_resp_secret_t *secret,
                          yr_resp_info_t *info, yr_buf_t *out, yr_api_error_t *err);

typedef struct yr_resp_enc yr_resp_enc_t;

typedef struct {
    yr_str_t id_seed; /* the response id is resp_ + this (copied) */
    yr_str_t model;   /* the model the client asked for (copied) */
    bool stream;
    const yr_resp_info_t *info; /* echoed fields; must outlive the encoder */
    int64_t input_tokens_estimate;
    yr_resp_secret_t secret; /* seals provider state into encrypted_content; must outlive
                                the encoder */
} yr_resp_enc_opts_t;

yr_resp_enc_t *yr_resp_enc_new(const yr_resp_enc_opts_t *o);
void yr_resp_enc_free(yr_resp_enc_t *e);

/* Feeds one event, in order; appends to out what the client gets now
 * (stream: SSE events; otherwise the response object at END). 0, -EINVAL
 * (YR_EV_ERROR or an event out of order), -E2BIG, -ENOMEM. */
__attribute__((warn_unused_result)) int yr_resp_enc_event(yr_resp_enc_t *e, const yr_event_t *ev,
                                                          yr_buf_t *out);

/* The response object as it ended (after END), or NULL, as the store keeps
 * it (encrypted_content always there). Owned by e. */
const char *yr_resp_enc_final(const yr_resp_enc_t *e);
/* The response's id ("resp_..."). */
const char *yr_resp_enc_id(const yr_resp_enc_t *e);

/* Stream mode, after a failure past the first event: `response.failed`
 * with the error, then nothing. */
__attribute__((warn_unused_result)) int yr_resp_enc_fail(yr_resp_enc_t *e, yr_err_t err,
                                                         yr_str_t message, yr_buf_t *out);

#endif
