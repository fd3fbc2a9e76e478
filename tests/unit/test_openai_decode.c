/* OpenAI response decoder tests: a recording consumer writes every event as
 * one short line-free token ("text(Hel)", "tool_start(0,call_a,f)", ...)
 * and each case compares the whole sequence, for completions and for
 * chunk streams, including what OpenAI-compatible servers really send
 * (Azure's filter chunks, usage chunks, vLLM's stop strings).
 *
 * JSON in the cases is written with single quotes; dq() turns them into
 * double quotes (no test text contains an apostrophe). */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/pool.h"
#include "providers/dialect.h"
#include "providers/openai_decode.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static char *dq(const char *s)
{
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    assert_non_null(d);
    for (size_t i = 0; i <= n; i++)
        d[i] = s[i] == '\'' ? '"' : s[i];
    return d;
}

/* ---- the recording consumer ------------------------------------------------- */

typedef struct {
    char log[8192];
    size_t len;
    unsigned calls;
    int fail_at; /* return fail_rc at this call (1-based); 0: never */
    int fail_rc;
} rec_t;

static void put(rec_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(rec_t *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = sizeof(r->log) - r->len;
    int n = vsnprintf(r->log + r->len, room, fmt, ap);
    va_end(ap);
    assert_true(n >= 0);
    r->len += (size_t)n < room ? (size_t)n : room - 1; /* a huge event is cut short */
}

static const char *finish_name(yr_finish_t f)
{
    return yr_finish_openai(f);
}

static int on_event(void *arg, const yr_event_t *ev)
{
    rec_t *r = arg;
    r->calls++;
    if (r->fail_at != 0 && (int)r->calls == r->fail_at)
        return r->fail_rc;
    if (r->len > 0)
        put(r, " ");
    int tl = (int)ev->text.len;
    const char *t = ev->text.ptr ? ev->text.ptr : "";
    switch (ev->type) {
    case YR_EV_START:
        put(r, "start(%.*s,%.*s,%" PRId64 ")", (int)ev->id.len, ev->id.ptr ? ev->id.ptr : "",
            (int)ev->name.len, ev->name.ptr ? ev->name.ptr : "", ev->created);
        if (ev->usage.present) /* the opening message's usage */
            put(r, "[u%" PRId64 "]", ev->usage.prompt_tokens);
        break;
    case YR_EV_TEXT: put(r, "text(%.*s)", tl, t); break;
    case YR_EV_REASONING: put(r, "reasoning(%.*s)", tl, t); break;
    case YR_EV_REFUSAL: put(r, "refusal(%.*s)", tl, t); break;
    case YR_EV_TOOL_START:
        put(r, "tool_start(%u,%.*s,%.*s)", ev->index, (int)ev->id.len, ev->id.ptr ? ev->id.ptr : "",
            (int)ev->name.len, ev->name.ptr);
        break;
    case YR_EV_TOOL_ARGS: put(r, "tool_args(%u,%.*s)", ev->index, tl, t); break;
    case YR_EV_TOOL_END: put(r, "tool_end(%u)", ev->index); break;
    case YR_EV_FINISH:
        put(r, "finish(%s", finish_name(ev->finish));
        if (ev->stop_sequence.len > 0)
            put(r, ",%.*s", (int)ev->stop_sequence.len, ev->stop_sequence.ptr);
        put(r, ")");
        break;
    case YR_EV_USAGE:
        put(r, "usage(%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ")",
            ev->usage.prompt_tokens, ev->usage.completion_tokens, ev->usage.cached_tokens,
            ev->usage.cache_write_tokens, ev->usage.reasoning_tokens);
        assert_true(ev->usage.present);
        break;
    case YR_EV_ERROR:
        put(r, "error(%d,%.*s,%.*s)", ev->status, (int)ev->error_type.len,
            ev->error_type.ptr ? ev->error_type.ptr : "", tl, t);
        break;
    case YR_EV_END: put(r, "end"); break;
    }
    return 0;
}

/* ---- completions ------------------------------------------------------------ */

/* The decoder is the OpenAI dialect's response half: its types must fit
 * the dialect table (the cases call it through this one). */
static const yr_dialect_ops_t openai_ops = {
    .name = "openai",
    .response = yr_openai_decode_response,
    .event = yr_openai_decode_event,
};

static int decode_response(const char *single_quoted, rec_t *r)
{
    char *b = dq(single_quoted);
    yr_pool_t *pool = yr_pool_create(4096);
    yr_call_ctx_t cx = {.pool = pool};
    int rc = openai_ops.response(&cx, yr_str(b), on_event, r);
    yr_pool_destroy(pool);
    free(b);
    return rc;
}

static void response_is(const char *completion, const char *want)
{
    rec_t r = {0};
    int rc = decode_response(completion, &r);
    if (rc != 0)
        fail_msg("rejected (%d): %s", rc, completion);
    if (strcmp(r.log, want) != 0)
        fail_msg("%s\n  got:  %s\n  want: %s", completion, r.log, want);
}

static void test_response_text_and_usage(void **state)
{
    (void)state;
    response_is(
        "{'id':'chatcmpl-1','object':'chat.completion','created':1700000000,'model':'gpt-4o',"
        "'choices':[{'index':0,'message':{'role':'assistant','content':'Hi \\u00e9\\n'},"
        "'finish_reason':'stop'}],'usage':{'prompt_tokens':20,'completion_tokens':9,"
        "'prompt_tokens_details':{'cached_tokens':8},'completion_tokens_details':"
        "{'reasoning_tokens':4}}}",
        "start(chatcmpl-1,gpt-4o,1700000000)[u20] text(Hi \xc3\xa9\n) finish(stop) "
        "usage(20,9,8,0,4) end");
    /* Nothing but a message: no FINISH, no USAGE; bad counts are 0. */
    response_is("{'choices':[{'message':{'content':null}}],'usage':{'prompt_tokens':-3,"
                "'completion_tokens':'x'}}",
                "start(,,0)[u0] usage(0,0,0,0,0) end");
}

static void test_response_reasoning_refusal_tools(void **state)
{
    (void)state;
    response_is("{'id':'c','model':'m','choices':[{'message':{'reasoning_content':'think',"
                "'content':'ok','refusal':'no','tool_calls':[{'id':'call_1','type':'function',"
                "'function':{'name':'f','arguments':'{\\'a\\':1}'}},{'function':{'name':'g',"
                "'arguments':''}},{'id':'call_3','function':{'name':'h','arguments':{'b': [2]}}}]},"
                "'finish_reason':'tool_calls'}]}",
                "start(c,m,0) reasoning(think) text(ok) refusal(no) "
                "tool_start(0,call_1,f) tool_args(0,{\"a\":1}) tool_end(0) "
                "tool_start(1,,g) tool_end(1) "
                "tool_start(2,call_3,h) tool_args(2,{\"b\": [2]}) tool_end(2) "
                "finish(tool_calls) end");
    /* "reasoning" (OpenRouter); function_call is a tool finish too. */
    response_is("{'choices':[{'message':{'reasoning':'r'},'finish_reason':'function_call'}]}",
                "start(,,0) reasoning(r) finish(tool_calls) end");
}

static void test_response_details(void **state)
{
    (void)state;
    /* Text parts are joined, others skipped. */
    response_is(
        "{'choices':[{'message':{'content':[{'type':'text','text':'a'},{'type':'image_url'},"
        "{'type':'text','text':'b\\u0021'},{'type':'text','text':'c'}]}}]}",
        "start(,,0) text(ab!c) end");
    /* Finish reasons; a matched stop string only for "stop". */
    response_is("{'choices':[{'message':{'content':'x'},'finish_reason':'length'}]}",
                "start(,,0) text(x) finish(length) end");
    response_is("{'choices':[{'message':{},'finish_reason':'content_filter'}]}",
                "start(,,0) finish(content_filter) end");
    response_is("{'choices':[{'message':{},'finish_reason':'weird'}]}",
                "start(,,0) finish(stop) end");
    response_is("{'choices':[{'message':{},'finish_reason':'stop','stop_reason':'###'}]}",
                "start(,,0) finish(stop,###) end");
    response_is("{'choices':[{'message':{},'finish_reason':'stop','matched_stop':'END'}]}",
                "start(,,0) finish(stop,END) end");
    response_is("{'choices':[{'message':{},'finish_reason':'stop','stop_reason':128009}]}",
                "start(,,0) finish(stop) end");
    response_is("{'choices':[{'message':{},'finish_reason':'length','stop_reason':'x'}]}",
                "start(,,0) finish(length) end");
    /* Several choices: only the first. */
    response_is("{'choices':[{'index':0,'message':{'content':'one'}},{'index':1,'message':"
                "{'content':'two'}}]}",
                "start(,,0) text(one) end");
    response_is("{'choices':[{'index':3,'message':{'content':'first'}},{'index':0,'message':"
                "{'content':'second'}}]}",
                "start(,,0) text(first) end");
}

static void test_response_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "nope",
        "[]",
        "{}",
        "{'choices':[]}",
        "{'choices':{}}",
        "{'choices':[5]}",
        "{'choices':[{'finish_reason':'stop'}]}",
        "{'choices':[{'message':'hi'}]}",
        "{'choices':[{'message':{'content':5}}]}",
        "{'choices':[{'message':{'content':[5]}}]}",
        "{'choices':[{'message':{'content':[{'type':'text','text':5}]}}]}",
        "{'choices':[{'message':{'content':'x'},'finish_reason':5}]}",
        "{'choices':[{'message':{'tool_calls':{}}}]}",
        "{'choices':[{'message':{'tool_calls':[5]}}]}",
        "{'choices':[{'message':{'tool_calls':[{'id':'c','function':{'arguments':'{}'}}]}}]}",
        "{'choices':[{'message':{'tool_calls':[{'type':'custom','function':{'name':'f'}}]}}]}",
        "{'choices':[{'message':{'tool_calls':[{'function':{'name':'f','arguments':5}}]}}]}",
        "{'choices':[{'message':{'reasoning_content':[]}}]}",
        "{'choices':[{'message':{'refusal':{}}}]}",
        "{'id':5,'choices':[{'message':{'content':'x'}}]}",
        "{'usage':5,'choices':[{'message':{'content':'x'}}]}",
        "{'choices':[{'index':'0','message':{}}]}",
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        rec_t r = {0};
        int rc = decode_response(bad[i], &r);
        if (rc != -EINVAL || r.calls != 0)
            fail_msg("%s: rc %d after %u events (%s)", bad[i], rc, r.calls, r.log);
    }
    /* A tool-call name longer than kept is malformed too. */
    char big[YR_OPENAI_TOOL_STR_MAX + 128];
    int n =
        snprintf(big, sizeof(big), "{'choices':[{'message':{'tool_calls':[{'function':{'name':'");
    memset(big + n, 'n', YR_OPENAI_TOOL_STR_MAX + 1);
    snprintf(big + n + YR_OPENAI_TOOL_STR_MAX + 1, 32, "'}}]}}]}");
    rec_t r = {0};
    assert_int_equal(decode_response(big, &r), -EINVAL);
}

static void test_response_consumer_error(void **state)
{
    (void)state;
    /* The consumer's code comes back as it is, and nothing follows. */
    rec_t r = {.fail_at = 2, .fail_rc = -ECANCELED};
    assert_int_equal(decode_response("{'choices':[{'message':{'content':'x'}}]}", &r), -ECANCELED);
    assert_int_equal(r.calls, 2);
}

/* ---- streams ---------------------------------------------------------------- */

typedef struct {
    yr_pool_t *pool;
    yr_call_ctx_t cx;
    rec_t r;
    bool done;
} stream_t;

static void stream_open(stream_t *s)
{
    memset(s, 0, sizeof(*s));
    s->pool = yr_pool_create(4096);
    assert_non_null(s->pool);
    s->cx = (yr_call_ctx_t){.pool = s->pool};
}

static int feed(stream_t *s, const char *single_quoted)
{
    char *b = dq(single_quoted);
    yr_sse_event_t m = {YR_STR(""), yr_str(b)};
    s->done = false;
    int rc = openai_ops.event(&s->cx, &m, on_event, &s->r, &s->done);
    free(b);
    return rc;
}

static void feed_ok(stream_t *s, const char *chunk)
{
    int rc = feed(s, chunk);
    if (rc != 0)
        fail_msg("rejected (%d): %s", rc, chunk);
}

/* Feeds every chunk; the last must be accepted with *done when it is [DONE]. */
static void stream_is(const char *const *chunks, size_t n, const char *want)
{
    stream_t s;
    stream_open(&s);
    for (size_t i = 0; i < n; i++)
        feed_ok(&s, chunks[i]);
    assert_int_equal(s.done, strstr(chunks[n - 1], "[DONE]") != NULL);
    if (strcmp(s.r.log, want) != 0)
        fail_msg("\n  got:  %s\n  want: %s", s.r.log, want);
    yr_pool_destroy(s.pool);
}

#define CH(delta, fr)                                                                              \
    "{'id':'chatcmpl-s','object':'chat.completion.chunk','created':7,'model':'up','choices':[{"    \
    "'index':0,'delta':" delta ",'finish_reason':" fr "}]}"
#define TC(i, rest) "{'tool_calls':[{'index':" #i "," rest "}]}"

static void test_stream_text(void **state)
{
    (void)state;
    static const char *const c[] = {
        CH("{'role':'assistant','content':''}", "null"),
        CH("{'content':'Hel'}", "null"),
        CH("{'content':'lo'}", "null"),
        CH("{}", "'stop'"),
        "{'id':'chatcmpl-s','choices':[],'usage':{'prompt_tokens':3,'completion_tokens':2}}",
        "[DONE]",
    };
    stream_is(c, ARRAY_LEN(c),
              "start(chatcmpl-s,up,7) text(Hel) text(lo) finish(stop) usage(3,2,0,0,0) end");
}

static void test_stream_azure(void **state)
{
    (void)state;
    /* Azure: an opening chunk without choices but with prompt filter
     * results; filter chunks without a delta (or with an empty one), also
     * after the finish; "usage": null on every chunk. */
    static const char *const c[] = {
        "{'id':'','object':'','created':0,'model':'','choices':[],'prompt_filter_results':[{"
        "'prompt_index':0,'content_filter_results':{'hate':{'filtered':false}}}]}",
        "{'id':'a','model':'gpt-4o','choices':[{'index':0,'delta':{'role':'assistant',"
        "'content':''},'finish_reason':null,'content_filter_results':{}}],'usage':null}",
        "{'id':'a','choices':[{'index':0,'delta':{'content':'Hi'},'finish_reason':null}],"
        "'usage':null}",
        "{'id':'a','choices':[{'index':0,'finish_reason':null,'content_filter_results':{"
        "'hate':{'filtered':false}}}],'usage':null}",
        "{'id':'a','choices':[{'index':0,'delta':{},'finish_reason':'content_filter'}],"
        "'usage':null}",
        "{'id':'a','choices':[{'index':0,'delta':{},'finish_reason':null,"
        "'content_filter_offsets':{'start_offset':0}}]}",
        "[DONE]",
    };
    stream_is(c, ARRAY_LEN(c), "start(,,0) text(Hi) finish(content_filter) end");
}

static void test_stream_choices_and_stops(void **state)
{
    (void)state;
    /* Several choices: index 0 only. vLLM's matched stop string. */
    static const char *const c1[] = {
        "{'choices':[{'index':1,'delta':{'content':'other'}},{'index':0,'delta':{'content':'me'}}]"
        "}",
        "{'choices':[{'index':0,'delta':{},'finish_reason':'stop','stop_reason':'</end>'},"
        "{'index':1,'delta':{},'finish_reason':'length'}]}",
        "[DONE]",
    };
    stream_is(c1, ARRAY_LEN(c1), "start(,,0) text(me) finish(stop,</end>) end");
    /* A token id is no stop string; a repeated finish_reason is ignored. */
    static const char *const c2[] = {
        CH("{'content':'x'}", "'stop'"),
        "{'choices':[{'index':0,'delta':{},'finish_reason':'stop','stop_reason':2}]}",
        "[DONE]",
    };
    stream_is(c2, ARRAY_LEN(c2), "start(chatcmpl-s,up,7) text(x) finish(stop) end");
    /* [DONE] alone; usage in the first chunk comes before its content. */
    static const char *const c3[] = {"[DONE]"};
    stream_is(c3, 1, "start(,,0) end");
    static const char *const c4[] = {
        "{'choices':[{'index':0,'delta':{'reasoning_content':'r','content':'t'}}],"
        "'usage':{'prompt_tokens':5,'completion_tokens':0,'prompt_tokens_details':"
        "{'cached_tokens':1}}}",
        " [DONE] ",
    };
    stream_is(c4, ARRAY_LEN(c4), "start(,,0)[u5] usage(5,0,1,0,0) reasoning(r) text(t) end");
}

static void test_stream_tools(void **state)
{
    (void)state;
    /* Parallel calls interleaved by index; every open call ends before
     * FINISH, in index order. */
    static const char *const c1[] = {
        CH("{'tool_calls':[{'index':0,'id':'call_a','type':'function','function':{'name':'f',"
           "'arguments':''}},{'index':1,'id':'call_b','function':{'name':'g','arguments':'{'}}]}",
           "null"),
        CH(TC(1, "'function':{'arguments':'}'}"), "null"),
        CH(TC(0, "'function':{'arguments':'{\\'x\\':1}'}"), "null"),
        CH("{}", "'tool_calls'"),
        "[DONE]",
    };
    stream_is(c1, ARRAY_LEN(c1),
              "start(chatcmpl-s,up,7) tool_start(0,call_a,f) tool_start(1,call_b,g) "
              "tool_args(1,{) tool_args(1,}) tool_args(0,{\"x\":1}) tool_end(0) tool_end(1) "
              "finish(tool_calls) end");
    /* The name comes late: fragments wait for it and go out as one. No
     * index: the position is used. No finish_reason: [DONE] ends the calls. */
    static const char *const c2[] = {
        CH("{'tool_calls':[{'id':'c1','function':{'arguments':'{\\'a\\''}}]}", "null"),
        CH("{'tool_calls':[{'function':{'arguments':':'}}]}", "null"),
        CH("{'tool_calls':[{'function':{'name':'late','arguments':'1}'}}]}", "null"),
        CH("{'tool_calls':[{'id':'ignored','function':{'name':'also','arguments':''}}]}", "null"),
        "[DONE]",
    };
    stream_is(
        c2, ARRAY_LEN(c2),
        "start(chatcmpl-s,up,7) tool_start(0,c1,late) tool_args(0,{\"a\":1}) tool_end(0) end");
}

static void test_stream_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "not json",
        "[1]",
        "{'choices':{}}",
        "{'choices':[5]}",
        "{'choices':[{'index':'0','delta':{}}]}",
        "{'usage':5}",
        "{'id':5}",
        CH("'text'", "null"),
        CH("{'content':5}", "null"),
        CH("{'content':[{'type':'text','text':'x'}]}", "null"),
        CH("{'reasoning_content':{}}", "null"),
        CH("{'refusal':1}", "null"),
        CH("{'tool_calls':{}}", "null"),
        CH("{'tool_calls':[5]}", "null"),
        CH(TC(128, "'id':'a','function':{'name':'f'}"), "null"),
        CH(TC(-1, "'id':'a','function':{'name':'f'}"), "null"),
        CH(TC(0.5, "'id':'a','function':{'name':'f'}"), "null"),
        CH(TC(0, "'id':'a','function':{'name':'f','arguments':{}}"), "null"),
        CH(TC(0, "'id':5,'function':{'name':'f'}"), "null"),
        CH(TC(0, "'function':5"), "null"),
        CH("{}", "5"),
        /* A call without a name at the finish. */
        CH(TC(0, "'id':'a','function':{'arguments':'{}'}"), "'tool_calls'"),
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        stream_t s;
        stream_open(&s);
        int rc = feed(&s, bad[i]);
        if (rc != -EINVAL || s.r.calls != 0)
            fail_msg("%s: rc %d after %u events (%s)", bad[i], rc, s.r.calls, s.r.log);
        /* Nothing is accepted after a failure. */
        assert_int_equal(feed(&s, "[DONE]"), -EINVAL);
        assert_int_equal(s.r.calls, 0);
        yr_pool_destroy(s.pool);
    }
}

static void test_stream_protocol(void **state)
{
    (void)state;
    stream_t s;
    /* Output after the finish_reason. */
    stream_open(&s);
    feed_ok(&s, CH("{'content':'a'}", "'stop'"));
    assert_int_equal(feed(&s, CH("{'content':'late'}", "null")), -EINVAL);
    yr_pool_destroy(s.pool);
    /* A call that never gets a name: [DONE] is refused. */
    stream_open(&s);
    feed_ok(&s, CH(TC(0, "'id':'a','function':{'arguments':'{}'}"), "null"));
    assert_int_equal(feed(&s, "[DONE]"), -EINVAL);
    assert_false(s.done);
    yr_pool_destroy(s.pool);
    /* Anything after END. */
    stream_open(&s);
    feed_ok(&s, "[DONE]");
    assert_true(s.done);
    assert_int_equal(feed(&s, CH("{'content':'a'}", "null")), -EINVAL);
    assert_int_equal(feed(&s, "[DONE]"), -EINVAL);
    yr_pool_destroy(s.pool);
    /* The consumer's code as it is; the decoder stops there. */
    stream_open(&s);
    s.r.fail_at = 2;
    s.r.fail_rc = -E2BIG;
    assert_int_equal(feed(&s, CH("{'content':'a'}", "null")), -E2BIG);
    assert_int_equal(feed(&s, "[DONE]"), -EINVAL);
    yr_pool_destroy(s.pool);
}

static void test_stream_error_chunk(void **state)
{
    (void)state;
    static const struct {
        const char *chunk, *want;
    } cases[] = {
        {"{'error':{'message':'Overloaded','type':'overloaded_error'}}",
         "error(529,overloaded_error,Overloaded)"},
        {"{'object':'error','message':'bad','type':'BadRequestError','param':null,'code':400,"
         "'error':{'message':'too long','type':'BadRequestError','code':400}}",
         "error(400,BadRequestError,too long)"},
        {"{'error':{'message':'slow down','type':'rate_limit_exceeded'}}",
         "error(429,rate_limit_exceeded,slow down)"},
        {"{'error':{'message':'x','type':'invalid_request_error'}}",
         "error(400,invalid_request_error,x)"},
        {"{'error':'plain \\u0021'}", "error(500,,plain !)"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        stream_t s;
        stream_open(&s);
        feed_ok(&s, cases[i].chunk);
        assert_string_equal(s.r.log, cases[i].want);
        assert_false(s.done);
        assert_int_equal(feed(&s, "[DONE]"), -EINVAL); /* ERROR is the tail */
        yr_pool_destroy(s.pool);
    }
    /* After content: START came before; ERROR replaces the rest. */
    stream_t s;
    stream_open(&s);
    feed_ok(&s, CH("{'content':'a'}", "null"));
    feed_ok(&s, "{'error':{'message':'m','type':'server_error'}}");
    assert_string_equal(s.r.log, "start(chatcmpl-s,up,7) text(a) error(500,server_error,m)");
    yr_pool_destroy(s.pool);
}

static void test_stream_held_cap(void **state)
{
    (void)state;
    /* Fragments of a nameless call are held up to YR_OPENAI_MAX_HELD. */
    stream_t s;
    stream_open(&s);
    size_t piece = 64 * 1024;
    char *big = malloc(piece + 256);
    assert_non_null(big);
    int n = snprintf(big, 256,
                     "{'choices':[{'index':0,'delta':{'tool_calls':[{'index':3,"
                     "'function':{'arguments':'");
    memset(big + n, 'a', piece);
    snprintf(big + n + piece, 64, "'}}]}}]}");
    int rc = 0;
    size_t sent = 0;
    while (rc == 0 && sent <= YR_OPENAI_MAX_HELD) {
        rc = feed(&s, big);
        sent += piece;
    }
    assert_int_equal(rc, -E2BIG);
    assert_int_equal(sent, YR_OPENAI_MAX_HELD + piece);
    free(big);
    yr_pool_destroy(s.pool);
    /* A named call's fragments are not held: no cap but the event's. */
    stream_open(&s);
    feed_ok(&s, CH(TC(0, "'id':'a','function':{'name':'f','arguments':''}"), "null"));
    big = malloc(YR_OPENAI_MAX_HELD + 256);
    assert_non_null(big);
    n = snprintf(big, 256,
                 "{'choices':[{'index':0,'delta':{'tool_calls':[{'index':0,"
                 "'function':{'arguments':'");
    memset(big + n, 'b', YR_OPENAI_MAX_HELD + 1);
    snprintf(big + n + YR_OPENAI_MAX_HELD + 1, 64, "'}}]}}]}");
    feed_ok(&s, big);
    free(big);
    yr_pool_destroy(s.pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_response_text_and_usage),
        cmocka_unit_test(test_response_reasoning_refusal_tools),
        cmocka_unit_test(test_response_details),
        cmocka_unit_test(test_response_invalid),
        cmocka_unit_test(test_response_consumer_error),
        cmocka_unit_test(test_stream_text),
        cmocka_unit_test(test_stream_azure),
        cmocka_unit_test(test_stream_choices_and_stops),
        cmocka_unit_test(test_stream_tools),
        cmocka_unit_test(test_stream_errors),
        cmocka_unit_test(test_stream_protocol),
        cmocka_unit_test(test_stream_error_chunk),
        cmocka_unit_test(test_stream_held_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
