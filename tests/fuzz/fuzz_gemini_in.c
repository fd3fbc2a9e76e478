/* libFuzzer target for the Gemini inbound converters. The first byte picks
 * the target, the rest is its input:
 *
 *   0  request: yr_gem_request_to_openai (stream or not, by the second
 *      byte) and yr_gem_count_tokens_estimate. Accepted output is a JSON
 *      object with the model and a non-empty messages array; a rejection
 *      has a known kind, a NUL-terminated message and leaves the buffer
 *      untouched. yr_gem_peek must accept whatever the converter accepts.
 *   1  stream: the rest split at '\n' into OpenAI SSE data payloads, through
 *      yr_openai_decode_event into a stream encoder (SSE framing when the
 *      second byte is odd, else the JSON array) as the proxy wires them,
 *      then "[DONE]" or an error chunk. SSE output: every event is
 *      "data: <JSON object>\r\n\r\n"; array output: one JSON array of
 *      objects, each a GenerateContentResponse or one error at the end.
 *   2  response: yr_openai_decode_response into a message encoder; accepted
 *      output is one JSON object with candidates.
 *   3  the URL: yr_gem_parse_target on the rest as "path?query".
 *
 * Build and run from the repository root:
 *
 *   cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DYR_FUZZ=ON
 *   cmake --build build-fuzz -j2 --target fuzz_gemini_in
 *   build-fuzz/tests/fuzz/fuzz_gemini_in -max_total_time=30 NEW_CORPUS
 *       tests/fuzz/corpus/gemini_in */
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/gemini_in.h"
#include "core/pool.h"
#include "providers/openai_decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void check_err(const yr_api_error_t *err, int rc)
{
    CHECK(rc == -EINVAL || rc == -E2BIG || rc == -ENOMEM);
    CHECK(memchr(err->message, '\0', sizeof(err->message)) != NULL && err->message[0] != '\0');
    CHECK(memchr(err->param, '\0', sizeof(err->param)) != NULL);
    CHECK(err->err == YR_E_INVALID_JSON || err->err == YR_E_INVALID_REQUEST ||
          err->err == YR_E_TOO_LARGE || err->err == YR_E_INTERNAL);
}

static void fuzz_request(const char *body, size_t len, bool stream)
{
    yr_gem_req_info_t info = {.model = "m", .model_len = 1, .stream = stream};
    yr_buf_t out;
    yr_buf_init(&out, 1 << 22);
    yr_api_error_t err;
    int rc = yr_gem_request_to_openai(body, len, &info, &out, &err);
    yr_api_error_t perr;
    int prc = yr_gem_peek(body, len, &perr);
    if (rc == 0) {
        CHECK(prc == 0);
        json_t *j = json_loadb(out.data, out.len, 0, NULL);
        CHECK(json_is_object(j));
        CHECK(json_is_string(json_object_get(j, "model")));
        CHECK(json_array_size(json_object_get(j, "messages")) > 0);
        CHECK(info.input_tokens_estimate >= 1);
        json_decref(j);
    } else {
        check_err(&err, rc);
        CHECK(out.len == 0);
    }
    int64_t tokens;
    rc = yr_gem_count_tokens_estimate(body, len, &tokens, &err);
    if (rc == 0)
        CHECK(tokens >= 1);
    else
        check_err(&err, rc);
    yr_buf_free(&out);
}

typedef struct {
    yr_gem_enc_t *e;
    yr_buf_t *out;
} sink_t;

static int on_ev(void *arg, const yr_event_t *ev)
{
    sink_t *s = arg;
    if (ev->type == YR_EV_ERROR)
        return -ECANCELED;
    return yr_gem_enc_event(s->e, ev, s->out);
}

static void check_sse(const yr_buf_t *out, bool errored)
{
    const char *p = out->data ? out->data : "";
    const char *end = p + out->len;
    size_t n = 0;
    while (p < end) {
        CHECK((size_t)(end - p) > 6 && memcmp(p, "data: ", 6) == 0);
        const char *stop = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
        CHECK(stop != NULL);
        json_t *j = json_loadb(p + 6, (size_t)(stop - p - 6), 0, NULL);
        CHECK(json_is_object(j));
        bool is_err = json_object_get(j, "error") != NULL;
        CHECK(!is_err || (errored && stop + 4 == end));
        json_decref(j);
        p = stop + 4;
        n++;
    }
    CHECK(errored || n >= 1);
}

static void check_array(const yr_buf_t *out, bool errored)
{
    json_t *j = json_loadb(out->data ? out->data : "", out->len, 0, NULL);
    CHECK(json_is_array(j));
    size_t i;
    json_t *v;
    json_array_foreach(j, i, v)
    {
        CHECK(json_is_object(v));
        if (json_object_get(v, "error") != NULL)
            CHECK(errored && i + 1 == json_array_size(j));
        else
            CHECK(json_is_array(json_object_get(v, "candidates")));
    }
    json_decref(j);
}

static void fuzz_stream(const char *data, size_t len, bool sse)
{
    yr_pool_t *pool = yr_pool_create(4096);
    CHECK(pool != NULL);
    yr_call_ctx_t cx = {.pool = pool, .request_id = YR_STR("req_f")};
    yr_gem_enc_opts_t o = {.model = YR_STR("m"),
                           .id_seed = YR_STR("req_f"),
                           .stream = true,
                           .sse = sse,
                           .include_thoughts = len % 2 == 0};
    yr_gem_enc_t *e = yr_gem_enc_new(&o);
    CHECK(e != NULL);
    yr_buf_t out, chunk;
    yr_buf_init(&out, 1 << 24);
    yr_buf_init(&chunk, 1 << 22);
    sink_t s = {e, &chunk};
    bool done = false, failed = false;
    const char *p = data, *end = data + len;
    while (p <= end && !done && !failed) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        yr_sse_event_t m = {YR_STR(""), {p, n}};
        yr_buf_reset(&chunk);
        int rc = yr_openai_decode_event(&cx, &m, on_ev, &s, &done);
        if (rc < 0)
            failed = true;
        else
            CHECK(yr_buf_append(&out, chunk.data ? chunk.data : "", chunk.len) == 0);
        if (nl == NULL)
            break;
        p = nl + 1;
    }
    if (!done && !failed) {
        yr_sse_event_t m = {YR_STR(""), YR_STR("[DONE]")};
        yr_buf_reset(&chunk);
        if (yr_openai_decode_event(&cx, &m, on_ev, &s, &done) < 0)
            failed = true;
        else
            CHECK(yr_buf_append(&out, chunk.data ? chunk.data : "", chunk.len) == 0);
    }
    if (failed || !done)
        CHECK(yr_gem_enc_error(e, YR_E_UPSTREAM_ERROR, YR_STR("cut"), &out) == 0);
    if (sse)
        check_sse(&out, failed || !done);
    else
        check_array(&out, failed || !done);
    yr_buf_free(&out);
    yr_buf_free(&chunk);
    yr_gem_enc_free(e);
    yr_pool_destroy(pool);
}

static void fuzz_response(const char *data, size_t len)
{
    yr_pool_t *pool = yr_pool_create(4096);
    CHECK(pool != NULL);
    yr_call_ctx_t cx = {.pool = pool, .request_id = YR_STR("req_f")};
    yr_gem_enc_opts_t o = {.model = YR_STR("m"), .include_thoughts = true};
    yr_gem_enc_t *e = yr_gem_enc_new(&o);
    CHECK(e != NULL);
    yr_buf_t out;
    yr_buf_init(&out, 1 << 24);
    sink_t s = {e, &out};
    int rc = yr_openai_decode_response(&cx, (yr_str_t){data, len}, on_ev, &s);
    if (rc == 0) {
        json_t *j = json_loadb(out.data, out.len, 0, NULL);
        CHECK(json_is_array(json_object_get(j, "candidates")));
        json_decref(j);
    }
    yr_buf_free(&out);
    yr_gem_enc_free(e);
    yr_pool_destroy(pool);
}

static void fuzz_target(const char *data, size_t len)
{
    const char *q = memchr(data, '?', len);
    yr_str_t path = {data, q ? (size_t)(q - data) : len};
    yr_str_t query = q ? (yr_str_t){q + 1, len - path.len - 1} : YR_STR_NULL;
    yr_gem_req_info_t info;
    yr_api_error_t err;
    if (yr_gem_parse_target(path, query, &info, &err) == 0) {
        CHECK(yr_gem_is_target(path));
        CHECK(info.model_len > 0 && info.model_len <= YR_GEM_MODEL_MAX);
        CHECK(strlen(info.model) == info.model_len);
        CHECK(strchr(info.model, '/') == NULL);
    } else {
        CHECK(err.message[0] != '\0');
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    const char *body = (const char *)data + 2;
    size_t len = size - 2;
    switch (data[0] % 4) {
    case 0: fuzz_request(body, len, data[1] & 1); break;
    case 1: fuzz_stream(body, len, data[1] & 1); break;
    case 2: fuzz_response(body, len); break;
    default: fuzz_target(body, len); break;
    }
    return 0;
}
