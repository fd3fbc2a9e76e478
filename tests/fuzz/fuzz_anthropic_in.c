/* libFuzzer target for the Anthropic inbound converters. The first byte picks
 * the target, the rest is its input:
 *
 *   0  request: yr_anth_request_to_openai and yr_anth_count_tokens_estimate.
 *      Either both accept (the estimate does not need max_tokens) or the
 *      converter rejects with a known kind, a NUL-terminated message and an
 *      untouched output buffer; accepted output is a JSON object with the
 *      model and a non-empty messages array.
 *   1  stream: the rest is split at '\n' into OpenAI SSE data payloads fed
 *      through yr_openai_decode_event into one stream encoder, the way the
 *      proxy wires them ("[DONE]" lines included; a chunk's output is kept
 *      only when the whole chunk went through), then "[DONE]" or an error
 *      event. The output must be a well-formed Anthropic event stream: message_start
 *      first, blocks opened with consecutive indexes, one open at a time,
 *      deltas only into the open block, message_delta + message_stop or one
 *      error at the end; and every tool-call argument fragment the encoder
 *      accepted comes out in its tool_use block, in order.
 *   2  response: yr_openai_decode_response into a message encoder;
 *      accepted output is a JSON message object; rejected leaves the
 *      buffer untouched.
 *
 * Mode 0 also runs the passthrough check, yr_anth_peek, which must accept
 * whatever the full converter accepts, and agree on what it reports.
 *
 * Build and run from the repository root:
 *
 *   cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DYR_FUZZ=ON
 *   cmake --build build-fuzz -j2 --target fuzz_anthropic_in
 *   build-fuzz/tests/fuzz/fuzz_anthropic_in -max_total_time=60 NEW_CORPUS
 *       tests/fuzz/corpus/anthropic_in
 *
 * -DFUZZ_ANTH_MODE=N pins the target (the first byte is still skipped), to
 * spend a whole run on one converter.
 *
 * Seeds: one file per case, first byte 0/1/2 then a request body, newline-
 * separated chunks, or a completion (tests/unit/test_anthropic_in.c has
 * plenty). */
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/anthropic_in.h"
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

static void check_err(const yr_api_error_t *err)
{
    CHECK((unsigned)err->err < YR_E__COUNT);
    CHECK(memchr(err->message, '\0', sizeof(err->message)) != NULL);
    CHECK(memchr(err->param, '\0', sizeof(err->param)) != NULL);
    CHECK(err->message[0] != '\0');
}

static void fuzz_request(const char *body, size_t size)
{
    yr_buf_t out;
    yr_buf_init(&out, 4 * size + 4096);
    yr_anth_req_info_t info;
    yr_api_error_t err;
    int rc = yr_anth_request_to_openai(body, size, &out, &info, &err);
    int64_t tokens = -1;
    yr_api_error_t err2;
    int rc2 = yr_anth_count_tokens_estimate(body, size, &tokens, &err2);
    if (rc != 0) {
        CHECK(rc == -EINVAL || rc == -E2BIG);
        CHECK(out.len == 0);
        check_err(&err);
        if (rc2 != 0)
            check_err(&err2);
    } else {
        CHECK(rc2 == 0 && tokens >= 1);
        CHECK(info.model_len > 0 && info.model_len <= YR_ANTH_MODEL_MAX);
        CHECK(strlen(info.model) == info.model_len);
        json_error_t jerr;
        json_t *o = json_loadb(out.data, out.len, JSON_REJECT_DUPLICATES, &jerr);
        if (o == NULL) {
            fprintf(stderr, "output is not JSON (%s): %.*s\n", jerr.text, (int)out.len, out.data);
            abort();
        }
        CHECK(json_is_object(o));
        CHECK(strcmp(json_string_value(json_object_get(o, "model")), info.model) == 0);
        CHECK(json_is_array(json_object_get(o, "messages")));
        CHECK(json_is_true(json_object_get(o, "stream")) == info.stream);
        json_decref(o);
        CHECK(info.input_tokens_estimate == tokens);
        /* The passthrough check accepts what the converter accepts. */
        yr_anth_req_info_t pinfo;
        CHECK(yr_anth_peek(body, size, &pinfo, &err2) == 0);
        CHECK(pinfo.model_len == info.model_len && strcmp(pinfo.model, info.model) == 0);
        CHECK(pinfo.stream == info.stream && pinfo.thinking == info.thinking);
    }
    yr_anth_req_info_t pinfo;
    if (yr_anth_peek(body, size, &pinfo, &err2) != 0)
        check_err(&err2);
    else
        CHECK(pinfo.model_len > 0 && strlen(pinfo.model) == pinfo.model_len);
    yr_buf_free(&out);
}

/* The proxy's wiring: decoder events into the encoder; an in-band error is
 * a failure (encoders never see ERROR). */
typedef struct {
    yr_anth_enc_t *e;
    yr_buf_t *out;
} pipe_t;

static int on_pipe_event(void *arg, const yr_event_t *ev)
{
    pipe_t *p = arg;
    return ev->type == YR_EV_ERROR ? -EINVAL : yr_anth_enc_event(p->e, ev, p->out);
}

static void fuzz_response(const char *body, size_t size)
{
    yr_buf_t out;
    yr_buf_init(&out, 4 * size + 4096);
    yr_pool_t *pool = yr_pool_create(4096);
    yr_call_ctx_t cx = {.pool = pool};
    pipe_t p = {yr_anth_enc_new(YR_STR("claude-fuzz"), YR_STR_NULL, false, 0), &out};
    CHECK(pool != NULL && p.e != NULL);
    int rc = yr_openai_decode_response(&cx, (yr_str_t){body, size}, on_pipe_event, &p);
    if (rc != 0) {
        CHECK(rc == -EINVAL || rc == -E2BIG);
        CHECK(out.len == 0);
    } else {
        CHECK(yr_anth_enc_done(p.e));
        json_t *o = json_loadb(out.data, out.len, JSON_DECODE_INT_AS_REAL, NULL);
        CHECK(json_is_object(o));
        CHECK(json_is_array(json_object_get(o, "content")));
        CHECK(json_is_string(json_object_get(o, "stop_reason")));
        CHECK(json_is_number(json_object_get(json_object_get(o, "usage"), "input_tokens")));
        json_decref(o);
    }
    yr_anth_enc_free(p.e);
    yr_pool_destroy(pool);
    yr_buf_free(&out);
}

/* ---- stream ---------------------------------------------------------------- */

#define MAX_TOOLS YR_ANTH_ENC_MAX_TOOLS

typedef struct {
    yr_buf_t args[MAX_TOOLS]; /* fragments per OpenAI tool index, as accepted */
    bool seen[MAX_TOOLS];
    bool dup; /* a chunk had duplicate keys: which one counts is the decoder's
               * choice (RFC 8259 leaves it open), so no expectation */
} expect_t;

static void append_nows(yr_buf_t *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
            CHECK(yr_buf_append(b, s + i, 1) == 0);
}

/* Mirrors what the pipe keeps of an accepted chunk: choice 0, tool index
 * (or position), argument fragments. Whitespace is dropped on both sides:
 * whitespace-only fragments for a closed call are discarded by design. */
static void record_chunk(expect_t *x, const char *s, size_t n)
{
    json_t *root = json_loadb(s, n, JSON_REJECT_DUPLICATES, NULL);
    if (root == NULL) {
        x->dup = true; /* the decoder accepted it, so it parses but for that */
        return;
    }
    size_t i;
    json_t *ch;
    json_array_foreach(json_object_get(root, "choices"), i, ch) {
        json_t *idx = json_object_get(ch, "index");
        if (json_is_integer(idx) && json_integer_value(idx) != 0)
            continue;
        size_t k;
        json_t *tc;
        json_array_foreach(json_object_get(json_object_get(ch, "delta"), "tool_calls"), k, tc) {
            json_t *ti = json_object_get(tc, "index");
            size_t t = json_is_integer(ti) ? (size_t)json_integer_value(ti) : k;
            CHECK(t < MAX_TOOLS);
            x->seen[t] = true;
            json_t *a = json_object_get(json_object_get(tc, "function"), "arguments");
            if (json_is_string(a))
                append_nows(&x->args[t], json_string_value(a), json_string_length(a));
        }
        break; /* the decoder reads the first choice 0 only */
    }
    json_decref(root);
}

typedef struct {
    int open; /* index of the open block, -1 = none */
    int next; /* index the next block must have */
    bool started, ended, is_tool;
    yr_buf_t cur;            /* partial_json of the open tool block */
    yr_buf_t got[MAX_TOOLS]; /* per tool block, in order of opening */
    size_t ngot;
} seen_t;

static void check_event(seen_t *s, const char *name, json_t *d)
{
    CHECK(!s->ended);
    if (strcmp(name, "error") == 0) {
        CHECK(json_is_string(json_object_get(json_object_get(d, "error"), "type")));
        s->ended = true;
        return;
    }
    if (strcmp(name, "message_start") == 0) {
        CHECK(!s->started);
        s->started = true;
        json_t *m = json_object_get(d, "message");
        CHECK(json_array_size(json_object_get(m, "content")) == 0);
        CHECK(strncmp(json_string_value(json_object_get(m, "id")), "msg_", 4) == 0);
        return;
    }
    CHECK(s->started);
    json_int_t idx = json_integer_value(json_object_get(d, "index"));
    if (strcmp(name, "ping") == 0) {
    } else if (strcmp(name, "content_block_start") == 0) {
        CHECK(s->open == -1 && idx == s->next);
        s->open = (int)idx;
        s->next++;
        json_t *cb = json_object_get(d, "content_block");
        s->is_tool = strcmp(json_string_value(json_object_get(cb, "type")), "tool_use") == 0;
        if (s->is_tool) {
            CHECK(json_string_length(json_object_get(cb, "name")) > 0);
            CHECK(json_string_length(json_object_get(cb, "id")) > 0);
        }
        yr_buf_reset(&s->cur);
    } else if (strcmp(name, "content_block_delta") == 0) {
        CHECK(s->open >= 0 && idx == s->open);
        json_t *delta = json_object_get(d, "delta");
        const char *type = json_string_value(json_object_get(delta, "type"));
        CHECK(type != NULL);
        CHECK((strcmp(type, "input_json_delta") == 0) == s->is_tool);
        json_t *pj = json_object_get(delta, "partial_json");
        if (s->is_tool)
            append_nows(&s->cur, json_string_value(pj), json_string_length(pj));
    } else if (strcmp(name, "content_block_stop") == 0) {
        CHECK(s->open >= 0 && idx == s->open);
        if (s->is_tool) {
            CHECK(s->ngot < MAX_TOOLS);
            CHECK(yr_buf_append(&s->got[s->ngot], s->cur.data ? s->cur.data : "", s->cur.len) == 0);
            s->ngot++;
        }
        s->open = -1;
    } else if (strcmp(name, "message_delta") == 0) {
        CHECK(s->open == -1);
        CHECK(json_is_string(json_object_get(json_object_get(d, "delta"), "stop_reason")));
        CHECK(json_is_integer(json_object_get(json_object_get(d, "usage"), "output_tokens")));
    } else if (strcmp(name, "message_stop") == 0) {
        CHECK(s->open == -1);
        s->ended = true;
    } else {
        CHECK(!"unknown event");
    }
}

static void check_stream(const yr_buf_t *out, seen_t *s)
{
    CHECK(out->len > 0); /* finish and error always write something */
    size_t i = 0;
    while (i < out->len) {
        const char *p = out->data + i;
        CHECK(strncmp(p, "event: ", 7) == 0);
        const char *nl = strchr(p + 7, '\n');
        CHECK(nl != NULL && strncmp(nl + 1, "data: ", 6) == 0);
        char name[32];
        size_t nlen = (size_t)(nl - (p + 7));
        CHECK(nlen < sizeof(name));
        memcpy(name, p + 7, nlen);
        name[nlen] = '\0';
        const char *d = nl + 7;
        const char *end = strstr(d, "\n\n");
        CHECK(end != NULL);
        CHECK(memchr(d, '\n', (size_t)(end - d)) == NULL);
        json_t *j = json_loadb(d, (size_t)(end - d), JSON_REJECT_DUPLICATES, NULL);
        CHECK(json_is_object(j));
        CHECK(strcmp(json_string_value(json_object_get(j, "type")), name) == 0);
        check_event(s, name, j);
        json_decref(j);
        i = (size_t)(end + 2 - out->data);
    }
}

static int cmp_buf(const void *a, const void *b)
{
    const yr_buf_t *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = n ? memcmp(x->data, y->data, n) : 0;
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

static void fuzz_stream(const char *in, size_t size)
{
    yr_anth_enc_t *e = yr_anth_enc_new(
        YR_STR("claude-fuzz"), size & 1 ? YR_STR("seed") : YR_STR_NULL, true, (int64_t)size);
    CHECK(e != NULL);
    yr_pool_t *pool = yr_pool_create(4096);
    CHECK(pool != NULL);
    yr_call_ctx_t cx = {.pool = pool};
    yr_buf_t out, stage;
    yr_buf_init(&out, 64 * size + (1 << 16));
    yr_buf_init(&stage, 64 * size + (1 << 16));
    pipe_t p = {e, &stage};
    static expect_t x;
    static seen_t s;
    memset(&x, 0, sizeof(x));
    memset(&s, 0, sizeof(s));
    for (size_t t = 0; t < MAX_TOOLS; t++) {
        yr_buf_init(&x.args[t], 1 << 22);
        yr_buf_init(&s.got[t], 1 << 22);
    }
    yr_buf_init(&s.cur, 1 << 22);
    s.open = -1;
    int rc = 0;
    size_t pos = 0;
    bool done = false;
    /* Each chunk's output is staged and kept only when the whole chunk went
     * through, as the proxy does. */
    while (rc == 0 && !done && pos <= size) {
        const char *nl = memchr(in + pos, '\n', size - pos);
        size_t n = nl ? (size_t)(nl - (in + pos)) : size - pos;
        yr_sse_event_t m = {YR_STR(""), {in + pos, n}};
        yr_buf_reset(&stage);
        rc = yr_openai_decode_event(&cx, &m, on_pipe_event, &p, &done);
        if (rc == 0) {
            record_chunk(&x, in + pos, n);
            CHECK(yr_buf_append(&out, stage.data, stage.len) == 0);
        } else {
            CHECK(rc == -EINVAL || rc == -E2BIG);
        }
        pos += n + 1;
    }
    if (rc == 0 && !done) { /* a clean end without [DONE] */
        yr_sse_event_t m = {YR_STR(""), YR_STR("[DONE]")};
        yr_buf_reset(&stage);
        rc = yr_openai_decode_event(&cx, &m, on_pipe_event, &p, &done);
        if (rc == 0)
            CHECK(yr_buf_append(&out, stage.data, stage.len) == 0);
    }
    bool clean = rc == 0 && done;
    if (clean)
        CHECK(yr_anth_enc_done(e));
    else
        CHECK(yr_anth_enc_error(e, "api_error", "fuzz", &out) == 0);
    check_stream(&out, &s);
    CHECK(s.ended);
    if (clean && !x.dup) {
        /* Every accepted fragment, in order, in exactly one tool block. */
        yr_buf_t want[MAX_TOOLS];
        size_t nwant = 0;
        for (size_t t = 0; t < MAX_TOOLS; t++)
            if (x.seen[t])
                want[nwant++] = x.args[t];
        CHECK(nwant == s.ngot);
        qsort(want, nwant, sizeof(want[0]), cmp_buf);
        qsort(s.got, s.ngot, sizeof(s.got[0]), cmp_buf);
        for (size_t t = 0; t < nwant; t++)
            CHECK(cmp_buf(&want[t], &s.got[t]) == 0);
    }
    for (size_t t = 0; t < MAX_TOOLS; t++) {
        yr_buf_free(&x.args[t]);
        yr_buf_free(&s.got[t]);
    }
    yr_buf_free(&s.cur);
    yr_buf_free(&stage);
    yr_buf_free(&out);
    yr_anth_enc_free(e);
    yr_pool_destroy(pool);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1 << 20))
        return 0;
    /* An exact-size copy: no NUL after it, so over-reads are caught. */
    size_t n = size - 1;
    char *body = malloc(n ? n : 1);
    memcpy(body, data + 1, n);
#ifdef FUZZ_ANTH_MODE
    int mode = FUZZ_ANTH_MODE;
#else
    int mode = data[0] % 3;
#endif
    switch (mode) {
    case 0: fuzz_request(body, n); break;
    case 1: fuzz_stream(body, n); break;
    default: fuzz_response(body, n); break;
    }
    free(body);
    return 0;
}
