/* Helpers shared by the Anthropic inbound converter (anthropic_in.c: the
 * request) and its outbound half (anthropic_out.c: responses and the stream
 * encoder). Private to src/api. */
#ifndef YR_ANTHROPIC_JSON_H
#define YR_ANTHROPIC_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

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

#endif
