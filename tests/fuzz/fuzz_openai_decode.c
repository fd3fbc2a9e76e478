/* libFuzzer target for the OpenAI response decoder. The first byte picks
 * the entry point, the rest is its input:
 *
 *   even  yr_openai_decode_response on the whole rest (a chat.completion);
 *   odd   yr_openai_decode_event on each '\n'-separated line (chunks, with
 *         "[DONE]" lines), then "[DONE]" if the stream is still open.
 *
 * The consumer checks the event grammar of api/events.h: START first and
 * once; TOOL_ARGS and TOOL_END only for a started call, each call started
 * and ended once, all ended before FINISH and END; FINISH at most once;
 * nothing after END or ERROR; slices readable (every byte is summed, so
 * ASan sees an over-read) and ids/names within their caps. A call that
 * returns -EINVAL must have emitted nothing. A consumer that fails at the
 * Nth event (N from the input) checks that its code comes back as it is.
 *
 * Build with -DYR_FUZZ=ON (tests/fuzz/CMakeLists.txt) and run:
 *
 *   build-fuzz/tests/fuzz/fuzz_openai_decode -max_total_time=60 NEW_CORPUS \
 *       tests/fuzz/corpus/openai_decode
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

#define FAIL_RC (-12345)

typedef struct {
    bool started, finished, ended, errored;
    bool tool_started[YR_OPENAI_MAX_TOOLS], tool_ended[YR_OPENAI_MAX_TOOLS];
    unsigned events, fail_at;
    unsigned sum;
} grammar_t;

static void touch(grammar_t *g, yr_str_t s)
{
    for (size_t i = 0; i < s.len; i++)
        g->sum += (unsigned char)s.ptr[i];
}

static int on_event(void *arg, const yr_event_t *ev)
{
    grammar_t *g = arg;
    g->events++;
    CHECK(!g->ended && !g->errored);
    touch(g, ev->id);
    touch(g, ev->name);
    touch(g, ev->text);
    touch(g, ev->signature);
    touch(g, ev->stop_sequence);
    touch(g, ev->error_type);
    if (ev->type == YR_EV_ERROR) {
        CHECK(ev->status >= 400 && ev->status <= 599);
        g->errored = true;
    } else if (ev->type == YR_EV_START) {
        CHECK(!g->started);
        g->started = true;
    } else {
        CHECK(g->started);
    }
    switch (ev->type) {
    case YR_EV_TEXT:
    case YR_EV_REASONING:
    case YR_EV_REFUSAL: CHECK(!g->finished && ev->text.len > 0); break;
    case YR_EV_TOOL_START:
        CHECK(!g->finished && ev->index < YR_OPENAI_MAX_TOOLS);
        CHECK(!g->tool_started[ev->index]);
        CHECK(ev->name.len > 0 && ev->name.len <= YR_OPENAI_TOOL_STR_MAX);
        CHECK(ev->id.len <= YR_OPENAI_TOOL_STR_MAX);
        g->tool_started[ev->index] = true;
        break;
    case YR_EV_TOOL_ARGS:
        CHECK(!g->finished && ev->index < YR_OPENAI_MAX_TOOLS && ev->text.len > 0);
        CHECK(g->tool_started[ev->index] && !g->tool_ended[ev->index]);
        break;
    case YR_EV_TOOL_END:
        CHECK(ev->index < YR_OPENAI_MAX_TOOLS);
        CHECK(g->tool_started[ev->index] && !g->tool_ended[ev->index]);
        g->tool_ended[ev->index] = true;
        break;
    case YR_EV_FINISH:
    case YR_EV_END:
        CHECK(ev->type == YR_EV_END || !g->finished);
        CHECK(ev->stop_sequence.len <= YR_OPENAI_STOP_SEQ_MAX);
        for (size_t k = 0; k < YR_OPENAI_MAX_TOOLS; k++)
            CHECK(g->tool_started[k] == g->tool_ended[k]);
        g->finished = true;
        g->ended = ev->type == YR_EV_END;
        break;
    case YR_EV_USAGE:
        CHECK(ev->usage.present && ev->usage.prompt_tokens >= 0 && ev->usage.cached_tokens >= 0);
        break;
    default: break;
    }
    return g->fail_at != 0 && g->events == g->fail_at ? FAIL_RC : 0;
}

static void check_rc(int rc, const grammar_t *g, unsigned before)
{
    CHECK(rc == 0 || rc == -EINVAL || rc == -E2BIG || rc == FAIL_RC);
    if (rc == -EINVAL || rc == -E2BIG)
        CHECK(g->events == before); /* checked whole before emitting */
    if (rc == FAIL_RC)
        CHECK(g->fail_at != 0 && g->events == g->fail_at);
}

static void fuzz_response(yr_call_ctx_t *cx, const char *in, size_t n, grammar_t *g)
{
    int rc = yr_openai_decode_response(cx, (yr_str_t){in, n}, on_event, g);
    check_rc(rc, g, 0);
    if (rc == 0)
        CHECK(g->ended);
}

static void fuzz_stream(yr_call_ctx_t *cx, const char *in, size_t size, grammar_t *g)
{
    size_t pos = 0;
    bool done = false;
    int rc = 0;
    while (rc == 0 && !done && pos <= size) {
        const char *nl = memchr(in + pos, '\n', size - pos);
        size_t n = nl ? (size_t)(nl - (in + pos)) : size - pos;
        yr_sse_event_t m = {YR_STR(""), {in + pos, n}};
        unsigned before = g->events;
        rc = yr_openai_decode_event(cx, &m, on_event, g, &done);
        check_rc(rc, g, before);
        if (rc == 0 && g->errored)
            break;
        CHECK(done == (rc == 0 && g->ended));
        pos += n + 1;
    }
    yr_sse_event_t last = {YR_STR(""), YR_STR("[DONE]")};
    if (rc == 0 && !done && !g->errored) {
        unsigned before = g->events;
        rc = yr_openai_decode_event(cx, &last, on_event, g, &done);
        check_rc(rc, g, before);
        CHECK(done == (rc == 0));
    }
    /* Whatever happened, the decoder now refuses more. */
    unsigned before = g->events;
    CHECK(yr_openai_decode_event(cx, &last, on_event, g, &done) == -EINVAL);
    CHECK(g->events == before);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > (1 << 20))
        return 0;
    /* An exact-size copy: no NUL after it, so over-reads are caught. */
    size_t n = size - 2;
    char *body = malloc(n ? n : 1);
    memcpy(body, data + 2, n);
    yr_pool_t *pool = yr_pool_create(4096);
    CHECK(pool != NULL);
    yr_call_ctx_t cx = {.pool = pool};
    static grammar_t g;
    memset(&g, 0, sizeof(g));
    g.fail_at = data[1] < 16 ? data[1] : 0; /* mostly no consumer failure */
    if (data[0] & 1)
        fuzz_stream(&cx, body, n, &g);
    else
        fuzz_response(&cx, body, n, &g);
    yr_pool_destroy(pool);
    free(body);
    return 0;
}
