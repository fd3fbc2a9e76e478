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

#endif
