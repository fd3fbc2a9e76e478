/* What every translating dialect (anthropic.c, gemini.c) needs of an OpenAI
 * request: the 400 that names a parameter, jansson building blocks that
 * count a failed allocation as -ENOMEM, tool-call arguments as an object,
 * data: URLs as (media type, base64) checked against what the vendor
 * accepts, the bookkeeping that finds the assistant tool call a tool
 * message answers, and the dump of a tree into the capped body buffer.
 *
 * Pure functions; no I/O. Strings returned as slices point into the
 * request's tree (cx->chat->root) and live as long as it. */
#ifndef YR_TRANSLATE_H
#define YR_TRANSLATE_H

#include <jansson.h>
#include <stdbool.h>

#include "providers/provider.h"

/* A 400 for the client (cx->error, YR_E_INVALID_REQUEST, param set);
 * returns -EINVAL. */
int yr_tr_reject(yr_call_ctx_t *cx, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The provider's name for messages (the configured vendor), or dflt. */
const char *yr_tr_vendor(const yr_call_ctx_t *cx, const char *dflt);

/* Adds v (a new reference, may be NULL after a failed allocation) to obj /
 * arr; 0 or -ENOMEM (v is released either way). */
__attribute__((warn_unused_result)) int yr_tr_set_new(json_t *obj, const char *key, json_t *v);
__attribute__((warn_unused_result)) int yr_tr_append_new(json_t *arr, json_t *v);

/* Appends blocks (consumed) to turns as {"role": role, key: blocks}, merged
 * into the last turn (*cur, of *cur_role) when it has the same role, as the
 * providers that want alternating turns need; an empty list adds nothing.
 * 0 or -ENOMEM. */
__attribute__((warn_unused_result)) int yr_tr_push_turn(json_t *turns, json_t **cur,
                                                         const char **cur_role, const char *role,
                                                         const char *key, json_t *blocks);

bool yr_tr_str_is(const json_t *v, const char *s);
/* The string as a slice, or YR_STR_NULL when v is no string. */
yr_str_t yr_tr_jslice(const json_t *v);
/* A positive integer field, else 0. */
int64_t yr_tr_int_field(const json_t *obj, const char *key);
bool yr_tr_has_prefix_ci(const char *s, size_t len, const char *prefix);

/* "arguments" (JSON text, or the object itself as some clients send it)
 * -> a new reference to the object; "" and null are {}. Anything that is
 * not a JSON object is a 400 naming param. */
__attribute__((warn_unused_result)) int yr_tr_parse_arguments(yr_call_ctx_t *cx, const json_t *args, const char *param, json_t **out);

/* data:<media type>[;param]*;base64,<data> -> the media type, lower-cased
 * into media (image/jpg read as image/jpeg), and the base64 payload (a
 * slice of url). accepted is a NULL-terminated list; another type is a 400
 * that names them (accepted_text, e.g. "image/jpeg, image/png"). */
__attribute__((warn_unused_result)) int yr_tr_data_url(yr_call_ctx_t *cx, yr_str_t url, const char *param,
                   const char *const *accepted, const char *accepted_text, char *media,
                   size_t media_size, yr_str_t *data);

/* The assistant tool call a role:tool message at index mi answers: the
 * latest tool_calls[] entry before mi whose id is tool_call_id. NULL when
 * none has it. */
const json_t *yr_tr_find_tool_call(const json_t *messages, size_t mi, const char *tool_call_id);

/* Dumps v compactly (reals with 15 significant digits) into buf (within its
 * cap: -E2BIG beyond). */
__attribute__((warn_unused_result)) int yr_tr_dump(const json_t *v, yr_buf_t *buf);

/* A function's parameters as a tool input schema: Anthropic and Bedrock
 * require a root "type", and tool input is always an object, so a schema
 * without one gets "type":"object" (none at all: an empty object schema).
 * A new reference, or NULL when out of memory. */
json_t *yr_tr_object_schema(const json_t *params);

/* ---- parameters every translating dialect reads the same way ---- */

/* What no translating vendor has an equivalent for, and would change the
 * answer if dropped: n > 1, logprobs, top_logprobs, logit_bias, audio
 * output, the legacy functions / function_call / web_search_options; and
 * non-zero presence/frequency penalties unless penalties (the vendor has
 * them). 0 or a 400. */
__attribute__((warn_unused_result)) int yr_tr_check_unsupported(yr_call_ctx_t *cx,
                                                                 const json_t *root,
                                                                 bool penalties);

/* max_completion_tokens, else max_tokens -> *max (0 when neither is set);
 * a 400 when it is not an integer >= 1. */
__attribute__((warn_unused_result)) int yr_tr_max_tokens(yr_call_ctx_t *cx, const json_t *root,
                                                         int64_t *max);

/* stop (a string or an array of strings) -> a new reference to a non-empty
 * array in *out, or NULL when there is none; a 400 for another shape. */
__attribute__((warn_unused_result)) int yr_tr_stop(yr_call_ctx_t *cx, const json_t *root,
                                                   json_t **out);

/* reasoning_effort -> an extended-thinking token budget (Claude's, on
 * Anthropic and Bedrock): none and minimal 0, low 1024, medium 4096, high
 * 16384. 0 or a 400. */
__attribute__((warn_unused_result)) int yr_tr_thinking_budget(yr_call_ctx_t *cx,
                                                              const json_t *root,
                                                              int64_t *budget);

/* temperature and top_p for Claude: temperature within Claude's 0..1 (an
 * OpenAI 1.5 would mean something else there), and with a thinking budget
 * only what extended thinking allows (temperature 1, top_p >= 0.95).
 * *temperature / *top_p are borrowed from root, NULL when absent. */
__attribute__((warn_unused_result)) int yr_tr_claude_sampling(yr_call_ctx_t *cx,
                                                              const json_t *root, int64_t budget,
                                                              const json_t **temperature,
                                                              const json_t **top_p);

#endif
