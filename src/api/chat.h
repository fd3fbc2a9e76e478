/* OpenAI Chat Completions requests: parsing and the checks that produce a
 * clear 400 before anything is sent upstream. Pure functions (no I/O). */
#ifndef YR_CHAT_H
#define YR_CHAT_H

#include <jansson.h>
#include <stdbool.h>

#include "api/errors.h"
#include "core/buf.h"

typedef struct {
    json_t *root;   /* jansson DOM, NULL until yr_chat_load_root() */
    yr_str_t model; /* points into the body, or into model_buf when escaped */
    bool stream;
    bool include_usage;
    int64_t max_tokens; /* max_completion_tokens, else max_tokens; -1: neither */
    const char *body; /* the parsed text (not owned; must outlive the req) */
    size_t len;
    yr_buf_t model_buf;
    bool rewritten; /* root was changed (images inlined): body is stale */
    uint32_t nvalues; /* JSON values in the body (what its tree will cost) */
} yr_chat_req_t;

typedef struct {
    yr_err_t err;
    char message[512];
    char param[96]; /* empty = null */
} yr_api_error_t;

/* Parses and checks body (which must outlive out). Returns 0 and fills out,
 * or -EINVAL (the request's fault) / -ENOMEM and fills err either way.
 * Release out with yr_chat_free() either way. */
__attribute__((warn_unused_result)) int yr_chat_parse(const char *body, size_t len,
                                                       yr_chat_req_t *out, yr_api_error_t *err);
void yr_chat_free(yr_chat_req_t *req);
/* Builds req->root (jansson) for providers that translate the request;
 * the OpenAI passthrough never needs it. Returns 0 or -ENOMEM/-EINVAL. */
__attribute__((warn_unused_result)) int yr_chat_load_root(yr_chat_req_t *req);

/* Copies a JSON text into out with the value of top-level key `key` replaced
 * by the JSON string `value`; everything else stays byte for byte (numbers
 * keep their spelling, unknown fields their order). The text must be a valid
 * JSON object. Returns 0, -ENOENT when the key is absent, or a buffer error. */
__attribute__((warn_unused_result)) int yr_json_replace_top_string(const char *json, size_t len,
                                                                    const char *key,
                                                                    yr_str_t value, yr_buf_t *out);

#endif
