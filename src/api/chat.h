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
    unsigned uses;  /* YR_USES_*: what a model must be able to take */
    /* As the client sent them (-1: absent), for fitting the request to a
     * route's model (providers/fit.h); effort points into the body. */
    int64_t max_tokens_param, max_completion_tokens_param;
    yr_str_t effort; /* reasoning_effort, when a plain string */
} yr_chat_req_t;

/* What a request uses that not every model has (the same bits as the
 * catalog's YR_CAP_*, providers/catalog.h). */
enum {
    YR_USES_TOOLS = 1u << 0,       /* a non-empty tools array, or tool messages */
    YR_USES_IMAGES = 1u << 1,      /* image_url content parts */
    YR_USES_JSON_SCHEMA = 1u << 2, /* response_format {type: json_schema} */
    YR_USES_REASONING = 1u << 3,   /* reasoning_effort (adjusted, never a reason to skip) */
};

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

/* Copies a JSON object text into out with some of its top-level members
 * edited: the value of keys[i] becomes the raw JSON text values[i], or the
 * member goes when values[i].ptr is NULL; a key the object lacks is not
 * added. Every other member keeps its bytes (numbers their spelling, the
 * order of keys); only the blanks between members go. The text must be a
 * valid JSON object. Returns 0 or a buffer error (-EINVAL when not an
 * object). */
__attribute__((warn_unused_result)) int yr_json_edit_top(const char *json, size_t len,
                                                         const char *const *keys,
                                                         const yr_str_t *values, size_t n,
                                                         yr_buf_t *out);

#endif
