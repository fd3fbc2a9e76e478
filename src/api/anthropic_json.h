/* Helpers shared by the inbound converters (anthropic_in.c, gemini_in.c: the
 * requests) and their outbound halves (anthropic_out.c, gemini_out.c:
 * responses and stream encoders). Private to src/api. */
#ifndef YR_ANTHROPIC_JSON_H
#define YR_ANTHROPIC_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "api/chat.h"
#include "core/buf.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
/* Longest message id suffix. */
#define ID_SUFFIX_MAX 64

/* A sticky-error JSON writer: the first failure sticks in rc and later
 * writes do nothing. */
typedef struct {
    yr_buf_t *b;
    int rc;
} yr_aj_w_t;

int yr_aj_restore(yr_buf_t *b, size_t len, int rc);
yr_str_t yr_aj_jstr_slice(const json_t *s);
bool yr_aj_jstr_is(const json_t *s, const char *lit);
json_t *yr_aj_opt_get(const json_t *obj, const char *key);
int yr_aj_jset(json_t *obj, const char *key, json_t *v);
int yr_aj_jset_ref(json_t *obj, const char *key, json_t *v);
int yr_aj_jpush(json_t *arr, json_t *v);
uint64_t yr_aj_fnv1a(yr_str_t s, uint64_t h);
bool yr_aj_id_char(char c);
size_t yr_aj_make_msg_id(char *dst, yr_str_t src, uint64_t hash);
void yr_aj_w_raw(yr_aj_w_t *w, const char *s);
void yr_aj_w_bytes(yr_aj_w_t *w, yr_str_t s);
void yr_aj_w_str(yr_aj_w_t *w, yr_str_t s);
void yr_aj_w_cstr(yr_aj_w_t *w, const char *s);
void yr_aj_w_int(yr_aj_w_t *w, int64_t v);
int yr_aj_dump_real(yr_buf_t *b, double d);
int yr_aj_dump_json(yr_buf_t *b, json_t *v, unsigned depth);

/* ---- request conversion --------------------------------------------------- */

/* Fills err: param = path + sub, message = "param: <fmt>". Returns -EINVAL. */
int yr_aj_fail(yr_api_error_t *err, yr_err_t kind, const char *path, const char *sub,
               const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Maps a non-validation failure (-E2BIG, -ENOMEM) onto err; returns rc. */
int yr_aj_fail_rc(yr_api_error_t *err, int rc);
/* {"type":"text","text":text} (text referenced), NULL when out of memory. */
json_t *yr_aj_text_part(json_t *text);
/* Standard base64 alphabet, non-empty, at most two '=' at the end. */
bool yr_aj_base64_ok(yr_str_t s);
/* "data:<media_type>;base64,<data>" as a new JSON string (scratch bounded
 * by body_len + 64); NULL when out of memory or too long. */
json_t *yr_aj_data_url(size_t body_len, json_t *media_type, json_t *data);
/* {"type":"image_url","image_url":{"url":url}}; steals url. */
json_t *yr_aj_image_url_part(json_t *url);
/* Whether an OpenAI strict json_schema would accept schema. */
bool yr_aj_strict_ok(json_t *s, unsigned depth);
/* The token estimate of an OpenAI-model request (see
 * yr_anth_count_tokens_estimate); len bounds the scratch buffer. */
int yr_aj_estimate_openai(json_t *req, size_t len, int64_t *tokens);

#endif
