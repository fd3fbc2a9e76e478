/* A strict, allocation-light JSON tokenizer for the hot path.
 *
 * jansson builds a DOM (a malloc per value, a hash table per object) and
 * spends ~140 instructions per byte doing it; the OpenAI -> OpenAI path only
 * needs to know that a body is valid JSON and to read a handful of fields.
 * This validates RFC 8259 completely (grammar, string escapes, control
 * characters, UTF-8, number syntax, depth) and records one token per value
 * in a flat array, jsmn-style, so lookups walk the array without allocating.
 * Translating providers still use jansson on the rare paths that need a DOM. */
#ifndef YR_JSON_TOK_H
#define YR_JSON_TOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define YR_JSON_MAX_DEPTH 256
#define YR_JSON_MAX_TOKENS (4u * 1024 * 1024)

typedef enum {
    YR_JT_OBJECT = 1,
    YR_JT_ARRAY,
    YR_JT_STRING,
    YR_JT_NUMBER,
    YR_JT_TRUE,
    YR_JT_FALSE,
    YR_JT_NULL,
} yr_jtype_t;

typedef struct {
    uint32_t start, end; /* bytes; a string's range excludes its quotes */
    uint32_t size;       /* object: number of members; array: elements */
    uint32_t next;       /* index of the first token after this subtree */
    uint8_t type;        /* yr_jtype_t */
    bool escaped;        /* a string containing backslash escapes */
    bool integer;        /* a number without fraction or exponent */
} yr_jtok_t;

typedef struct {
    const char *js;
    size_t len;
    yr_jtok_t *toks; /* heap, owned by the doc: yr_json_free() */
    uint32_t ntoks;
    uint32_t cap;
    size_t err_off;  /* where parsing failed */
    const char *err; /* a static description of the failure */
} yr_jdoc_t;

/* Parses js[0..len) (one value, surrounding whitespace allowed). Returns 0,
 * or -EINVAL with d->err/d->err_off set, or -ENOMEM / -E2BIG (too many
 * tokens). With reject_dup, duplicate keys in any object are an error (a
 * second "model" or "role" must not slip past the checks). The doc keeps
 * pointing into js. Free with yr_json_free() whatever the result. */
__attribute__((warn_unused_result)) int yr_json_parse(yr_jdoc_t *d, const char *js, size_t len,
                                                       bool reject_dup);
void yr_json_free(yr_jdoc_t *d);
/* Only says whether js is one valid JSON value (same grammar, no tokens,
 * duplicate keys allowed): for streamed chunks that are relayed as they are.
 * Returns 0, -EINVAL or -E2BIG. */
__attribute__((warn_unused_result)) int yr_json_validate(const char *js, size_t len);

#include <jansson.h>

/* json_loadb for text from a client: a raw NUL byte is refused wherever it
 * is (JSON allows none; jansson takes one right after a number as that
 * number's end, so `{"a":1\0}` would pass its parse and fail ours). */
json_t *yr_json_loadb(const char *js, size_t len, size_t flags, json_error_t *jerr);

/* jansson's json_loadb, with its failures told apart: 0 with *out (any
 * JSON value, JSON_DECODE_ANY: the caller checks its type; the caller's
 * reference); -ENOMEM when it ran out of memory, which jansson
 * often reports as a syntax error (then js is checked with
 * yr_json_validate: valid text means the failure was memory); -EINVAL
 * when the text is not JSON or is JSON jansson refuses (\u0000, integers
 * past int64, duplicate keys with JSON_REJECT_DUPLICATES). A provider's
 * body that fails for memory is not the provider's fault, and a client's
 * is not a 400. */
struct json_t;
__attribute__((warn_unused_result)) int yr_json_load(const char *js, size_t len, size_t flags,
                                                      struct json_t **out);

/* Index of the value of key in object token obj, or -1. */
int yr_json_get(const yr_jdoc_t *d, int obj, const char *key);
/* Index of element i of array token arr, or -1. */
int yr_json_at(const yr_jdoc_t *d, int arr, uint32_t i);
/* The raw bytes of a token (a string without its quotes, escapes intact). */
yr_str_t yr_json_raw(const yr_jdoc_t *d, int tok);
/* True when tok is a string equal to s (escapes decoded). */
bool yr_json_str_eq(const yr_jdoc_t *d, int tok, const char *s);
/* A number token as int64 (integers only); false otherwise. */
bool yr_json_int(const yr_jdoc_t *d, int tok, int64_t *out);
/* Decodes a string token into out (escapes resolved, UTF-8). */
__attribute__((warn_unused_result)) int yr_json_str_decode(const yr_jdoc_t *d, int tok,
                                                            yr_buf_t *out);

static inline int yr_json_type(const yr_jdoc_t *d, int tok)
{
    return tok >= 0 ? d->toks[tok].type : 0;
}

#endif
