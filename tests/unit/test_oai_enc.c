/* The OpenAI encoder of the event stream: event sequences -> the exact bytes
 * (framing, field order) or the parsed chunks / completion, in stream and
 * non-stream mode; tool calls interleaved by index, usage, refusal,
 * reasoning, a missing FINISH, an empty answer, sequence errors; and a
 * torture test: every output cap from 0 up fails cleanly (out restored,
 * state untouched, so the same event succeeds with room) or succeeds. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "api/oai_enc.h"

#define T0 1700000000
#define HEAD                                                                                       \
    "data: "                                                                                       \
    "{\"id\":\"chatcmpl-msg_1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"      \
    "\"model\":\"claude-x\","
#define CHOICE(delta, fin)                                                                         \
    "\"choices\":[{\"index\":0,\"delta\":" delta ",\"logprobs\":null,\"finish_reason\":" fin "}]"

static const yr_event_t START = {
    .type = YR_EV_START, .id = {"msg_1", 5}, .name = {"claude-x", 8}, .created = T0};
static const yr_event_t FINISH_STOP = {.type = YR_EV_FINISH, .finish = YR_FINISH_STOP};
static const yr_event_t END = {.type = YR_EV_END};

static yr_event_t text(yr_ev_type_t type, const char *s)
{
    return (yr_event_t){.type = type, .text = yr_str(s)};
}

static yr_event_t tool_start(uint32_t i, const char *id, const char *name)
{
    return (yr_event_t){
        .type = YR_EV_TOOL_START, .index = i, .id = yr_str(id), .name = yr_str(name)};
}

static yr_event_t tool_args(uint32_t i, const char *frag)
{
    return (yr_event_t){.type = YR_EV_TOOL_ARGS, .index = i, .text = yr_str(frag)};
}

static yr_event_t tool_end(uint32_t i)
{
    return (yr_event_t){.type = YR_EV_TOOL_END, .index = i};
}

static yr_event_t usage(int64_t p, int64_t c, int64_t cached, int64_t reasoning)
{
    return (yr_event_t){.type = YR_EV_USAGE,
                        .usage = {.prompt_tokens = p,
                                  .completion_tokens = c,
                                  .cached_tokens = cached,
                                  .reasoning_tokens = reasoning,
                                  .present = true}};
}

static yr_oai_enc_opts_t opts(bool stream, bool include_usage)
{
    return (yr_oai_enc_opts_t){
        .id_seed = YR_STR("req-42"), .stream = stream, .include_usage = include_usage};
}

/* Runs the events through a new encoder; every event must succeed. Returns
 * the output (malloc'ed, NUL-terminated). */
static char *run(const yr_oai_enc_opts_t *o, const yr_event_t *evs, size_t n)
{
    yr_oai_enc_t *e = yr_oai_enc_new(o);
    assert_non_null(e);
    yr_buf_t out;
    yr_buf_init(&out, 1 << 20);
    for (size_t i = 0; i < n; i++) {
        int rc = yr_oai_enc_event(e, &evs[i], &out);
        if (rc != 0)
            fail_msg("event %zu (type %d): rc %d", i, (int)evs[i].type, rc);
    }
    yr_oai_enc_free(e);
    char *s = yr_buf_steal(&out, NULL);
    return s ? s : strdup("");
}

#define RUN(o, ...)                                                                                \
    run(&(o), (const yr_event_t[]){__VA_ARGS__},                                                   \
        sizeof((const yr_event_t[]){__VA_ARGS__}) / sizeof(yr_event_t))

static json_t *parse_or_fail(const char *p, size_t n)
{
    json_error_t err;
    json_t *v = json_loadb(p, n, 0, &err);
    if (v == NULL)
        fail_msg("invalid JSON (%s): %.*s", err.text, (int)n, p);
    return v;
}

static void expect_json(const char *what, const json_t *got, const char *expected)
{
    json_t *want = parse_or_fail(expected, strlen(expected));
    if (!json_equal((json_t *)got, want)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
        print_error("%s\n  got:      %s\n  expected: %s\n", what, g, expected);
        free(g);
        json_decref(want);
        fail();
    }
    json_decref(want);
}

/* A stream as a JSON array: [delta, finish_reason] per choice chunk,
 * {"usage":…} for the usage chunk, "[DONE]". Checks what every chunk shares:
 * the framing, id, object, created, model, index 0, logprobs null, and
 * "usage":null on every choice chunk exactly when include_usage is set. */
static json_t *chunks(const char *s, bool include_usage, const char *id, const char *model)
{
    json_t *got = json_array();
    const char *p = s, *end = s + strlen(s);
    while (p < end) {
        const char *sep = strstr(p, "\n\n");
        assert_non_null(sep);
        assert_memory_equal(p, "data: ", 6);
        const char *data = p + 6;
        size_t len = (size_t)(sep - data);
        p = sep + 2;
        if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
            json_array_append_new(got, json_string("[DONE]"));
            assert_true(p == end); /* nothing after [DONE] */
            continue;
        }
        json_t *c = parse_or_fail(data, len);
        assert_string_equal(json_string_value(json_object_get(c, "object")),
                            "chat.completion.chunk");
        assert_string_equal(json_string_value(json_object_get(c, "id")), id);
        assert_string_equal(json_string_value(json_object_get(c, "model")), model);
        assert_true(json_integer_value(json_object_get(c, "created")) > 0);
        json_t *ch = json_object_get(c, "choices");
        if (json_array_size(ch) == 0) {
            json_array_append_new(got, json_pack("{s:O}", "usage", json_object_get(c, "usage")));
        } else {
            json_t *c0 = json_array_get(ch, 0);
            assert_int_equal(json_integer_value(json_object_get(c0, "index")), 0);
            assert_true(json_is_null(json_object_get(c0, "logprobs")));
            json_t *u = json_object_get(c, "usage");
            assert_true(include_usage ? json_is_null(u) : u == NULL);
            json_array_append_new(got, json_pack("[O,O]", json_object_get(c0, "delta"),
                                                 json_object_get(c0, "finish_reason")));
        }
        json_decref(c);
    }
    return got;
}

static void expect_chunks(const char *s, bool include_usage, const char *expected)
{
    json_t *got = chunks(s, include_usage, "chatcmpl-msg_1", "claude-x");
    expect_json(s, got, expected);
    json_decref(got);
}

#define ROLE "[{\"role\":\"assistant\",\"content\":\"\"},null]"

/* ---- stream ------------------------------------------------------------------------------- */

/* The chunks are laid out one per line; clang-format would interleave them. */
/* clang-format off */
static const char STREAM_BYTES[] =
    HEAD CHOICE("{\"role\":\"assistant\",\"content\":\"\"}", "null") "}\n\n"
    HEAD CHOICE("{\"content\":\"Hi \\\"you\\\"\\n\"}", "null") "}\n\n"
    HEAD CHOICE("{}", "\"stop\"") "}\n\n"
    "data: [DONE]\n\n";

static const char STREAM_USAGE_BYTES[] =
    HEAD CHOICE("{\"role\":\"assistant\",\"content\":\"\"}", "null") ",\"usage\":null}\n\n"
    HEAD CHOICE("{\"content\":\"ok\"}", "null") ",\"usage\":null}\n\n"
    HEAD CHOICE("{}", "\"stop\"") ",\"usage\":null}\n\n"
    HEAD "\"choices\":[],\"usage\":{\"prompt_tokens\":25,\"completion_tokens\":3,"
         "\"total_tokens\":28,\"prompt_tokens_details\":{\"cached_tokens\":10},"
         "\"completion_tokens_details\":{\"reasoning_tokens\":1}}}\n\n"
    "data: [DONE]\n\n";
/* clang-format on */

static void test_stream_exact_bytes(void **state)
{
    (void)state;
    yr_oai_enc_opts_t o = opts(true, false);
    char *s = RUN(o, START, text(YR_EV_TEXT, "Hi \"you\"\n"), FINISH_STOP, END);
    assert_string_equal(s, STREAM_BYTES);
    free(s);
}

static void test_stream_usage_exact_bytes(void **state)
{
    (void)state;
    /* USAGE replaces the previous one; the usage chunk comes after FINISH's */
    yr_oai_enc_opts_t o = opts(true, true);
    char *s = RUN(o, START, text(YR_EV_TEXT, "ok"), FINISH_STOP, usage(1, 2, 0, 0),
                  usage(25, 3, 10, 1), END);
    assert_string_equal(s, STREAM_USAGE_BYTES);
    free(s);
}

static void test_stream_no_usage_seen(void **state)
{
    (void)state;
    /* include_usage without a USAGE: no made-up zeros, the stream just ends */
    yr_oai_enc_opts_t o = opts(true, true);
    char *s = RUN(o, START, FINISH_STOP, END);
    expect_chunks(s, true, "[" ROLE ",[{},\"stop\"],\"[DONE]\"]");
    free(s);
}

static void test_stream_interleaved_tools(void **state)
{
    (void)state;
    yr_oai_enc_opts_t o = opts(true, false);
    char *s = RUN(o, START, text(YR_EV_TEXT, "Let me check."), tool_start(0, "call_a", "f"),
                  tool_start(1, "call_b", "g"), tool_args(1, "{\"y\":"), tool_args(0, ""),
                  tool_args(0, "{\"x\":1}"), tool_args(1, "2}"), tool_end(1), tool_end(0),
                  (yr_event_t){.type = YR_EV_FINISH, .finish = YR_FINISH_TOOL_CALLS}, END);
    expect_chunks(
        s, false,
        "[" ROLE ",[{\"content\":\"Let me check.\"},null],"
        "[{\"tool_calls\":[{\"index\":0,\"id\":\"call_a\",\"type\":\"function\",\"function\":"
        "{\"name\":\"f\",\"arguments\":\"\"}}]},null],"
        "[{\"tool_calls\":[{\"index\":1,\"id\":\"call_b\",\"type\":\"function\",\"function\":"
        "{\"name\":\"g\",\"arguments\":\"\"}}]},null],"
        "[{\"tool_calls\":[{\"index\":1,\"function\":{\"arguments\":\"{\\\"y\\\":\"}}]},null],"
        "[{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"x\\\":1}\"}}]},null],"
        "[{\"tool_calls\":[{\"index\":1,\"function\":{\"arguments\":\"2}\"}}]},null],"
        "[{},\"tool_calls\"],\"[DONE]\"]");
    free(s);
}

static void test_stream_tool_without_args(void **state)
{
    (void)state;
    /* "{}" at TOOL_END; and for a call never ended, before the finish chunk */
    yr_oai_enc_opts_t o = opts(true, false);
    char *s = RUN(o, START, tool_start(0, "call_a", "now"), tool_end(0), tool_end(0),
                  tool_start(1, "call_b", "later"), END);
    expect_chunks(s, false,
                  "[" ROLE
                  ",[{\"tool_calls\":[{\"index\":0,\"id\":\"call_a\",\"type\":\"function\","
                  "\"function\":{\"name\":\"now\",\"arguments\":\"\"}}]},null],"
                  "[{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{}\"}}]},null],"
                  "[{\"tool_calls\":[{\"index\":1,\"id\":\"call_b\",\"type\":\"function\","
                  "\"function\":{\"name\":\"later\",\"arguments\":\"\"}}]},null],"
                  "[{\"tool_calls\":[{\"index\":1,\"function\":{\"arguments\":\"{}\"}}]},null],"
                  "[{},\"tool_calls\"],\"[DONE]\"]");
    free(s);
}

static void test_stream_reasoning_refusal(void **state)
{
    (void)state;
    yr_oai_enc_opts_t o = opts(true, false);
    yr_event_t sig = {.type = YR_EV_REASONING, .signature = YR_STR("EqQBCgIYAhIM")};
    yr_event_t redacted = {
        .type = YR_EV_REASONING, .signature = YR_STR("opaque"), .redacted = true};
    char *s =
        RUN(o, START, text(YR_EV_REASONING, "Let me think."), sig, redacted, text(YR_EV_TEXT, ""),
            text(YR_EV_REFUSAL, "I can't"), text(YR_EV_REFUSAL, " help."),
            (yr_event_t){.type = YR_EV_FINISH, .finish = YR_FINISH_CONTENT_FILTER}, END);
    expect_chunks(s, false,
                  "[" ROLE ",[{\"reasoning_content\":\"Let me think.\"},null],"
                  "[{\"refusal\":\"I can't\"},null],[{\"refusal\":\" help.\"},null],"
                  "[{},\"content_filter\"],\"[DONE]\"]");
    free(s);
}

static void test_stream_no_finish(void **state)
{
    (void)state;
    yr_oai_enc_opts_t o = opts(true, false);
    char *s = RUN(o, START, text(YR_EV_TEXT, "a"), END);
    expect_chunks(s, false, "[" ROLE ",[{\"content\":\"a\"},null],[{},\"stop\"],\"[DONE]\"]");
    free(s);
    s = RUN(o, START, tool_start(0, "c", "f"), tool_args(0, "{}"), tool_end(0), END);
    expect_chunks(s, false,
                  "[" ROLE ",[{\"tool_calls\":[{\"index\":0,\"id\":\"c\",\"type\":\"function\","
                  "\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]},null],"
                  "[{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{}\"}}]},null],"
                  "[{},\"tool_calls\"],\"[DONE]\"]");
    free(s);
}

static void test_stream_finish_reasons(void **state)
{
    (void)state;
    static const struct {
        yr_finish_t f;
        const char *want;
    } map[] = {{YR_FINISH_STOP, "stop"},
               {YR_FINISH_LENGTH, "length"},
               {YR_FINISH_TOOL_CALLS, "tool_calls"},
               {YR_FINISH_CONTENT_FILTER, "content_filter"}};
    yr_oai_enc_opts_t o = opts(true, false);
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        yr_event_t fin = {.type = YR_EV_FINISH, .finish = map[i].f};
        /* a second FINISH is ignored */
        char *s = RUN(o, START, fin, FINISH_STOP, END);
        char want[256];
        snprintf(want, sizeof(want), "[" ROLE ",[{},\"%s\"],\"[DONE]\"]", map[i].want);
        expect_chunks(s, false, want);
        free(s);
    }
}

static void test_stream_identity(void **state)
{
    (void)state;
    /* The client's model wins over the upstream's; an id that already is
     * "chatcmpl-…" is kept; created 0 means now. */
    yr_oai_enc_opts_t o = opts(true, false);
    o.model = YR_STR("fast-chat");
    yr_event_t st = {.type = YR_EV_START, .id = YR_STR("chatcmpl-abc"), .name = YR_STR("up")};
    char *s = RUN(o, st, END);
    json_t *got = chunks(s, false, "chatcmpl-abc", "fast-chat");
    json_decref(got);
    free(s);
    /* No id: the seed's. No START at all: the seed, the options' model. */
    st.id = YR_STR_NULL;
    s = RUN(o, st, text(YR_EV_TEXT, "x"), END);
    got = chunks(s, false, "chatcmpl-req-42", "fast-chat");
    expect_json("seeded", got, "[" ROLE ",[{\"content\":\"x\"},null],[{},\"stop\"],\"[DONE]\"]");
    json_decref(got);
    free(s);
    s = RUN(o, text(YR_EV_TEXT, "x"), END);
    got = chunks(s, false, "chatcmpl-req-42", "fast-chat");
    expect_json("no start", got, "[" ROLE ",[{\"content\":\"x\"},null],[{},\"stop\"],\"[DONE]\"]");
    json_decref(got);
    free(s);
}

static void test_stream_error_writes_nothing(void **state)
{
    (void)state;
    yr_oai_enc_opts_t o = opts(true, true);
    yr_event_t err = {.type = YR_EV_ERROR,
                      .status = 529,
                      .error_type = YR_STR("overloaded_error"),
                      .text = YR_STR("Overloaded")};
    char *s = RUN(o, START, text(YR_EV_TEXT, "a"), err, text(YR_EV_TEXT, "b"), END);
    expect_chunks(s, true, "[" ROLE ",[{\"content\":\"a\"},null]]");
    free(s);
    s = RUN(o, err, END);
    assert_string_equal(s, "");
    free(s);
}

static void test_sequence_errors(void **state)
{
    (void)state;
    for (int stream = 0; stream < 2; stream++) {
        yr_oai_enc_opts_t o = opts(stream, false);
        yr_oai_enc_t *e = yr_oai_enc_new(&o);
        yr_buf_t out;
        yr_buf_init(&out, 1 << 16);
        assert_int_equal(yr_oai_enc_event(e, &START, &out), 0);
        size_t len = out.len;
        yr_event_t ev = tool_args(0, "{}");
        assert_int_equal(yr_oai_enc_event(e, &START, &out), -EINVAL);
        assert_int_equal(yr_oai_enc_event(e, &ev, &out), -EINVAL);
        ev = tool_end(0);
        assert_int_equal(yr_oai_enc_event(e, &ev, &out), -EINVAL);
        ev = tool_start(1, "c", "f"); /* indexes count from 0 */
        assert_int_equal(yr_oai_enc_event(e, &ev, &out), -EINVAL);
        assert_int_equal(out.len, len);
        ev = tool_start(0, "c", "f");
        assert_int_equal(yr_oai_enc_event(e, &ev, &out), 0);
        assert_int_equal(yr_oai_enc_event(e, &ev, &out), -EINVAL); /* started twice */
        ev = tool_args(1, "{}");
        assert_int_equal(yr_oai_enc_event(e, &ev, &out), -EINVAL);
        assert_int_equal(yr_oai_enc_event(e, &END, &out), 0);
        len = out.len;
        assert_int_equal(yr_oai_enc_event(e, &END, &out), 0); /* after END: nothing */
        assert_int_equal(out.len, len);
        yr_buf_free(&out);
        yr_oai_enc_free(e);
    }
}

static void test_escaping(void **state)
{
    (void)state;
    /* Every string from the provider is escaped: ids, names, text, arguments. */
    const char *nasty = "q\"b\\n\nt\tc\x01\x1f \xc3\xa9";
    yr_event_t st = {.type = YR_EV_START, .id = yr_str(nasty), .name = yr_str(nasty)};
    for (int stream = 0; stream < 2; stream++) {
        yr_oai_enc_opts_t o = opts(stream, false);
        char *s = RUN(o, st, text(YR_EV_TEXT, nasty), tool_start(0, nasty, nasty),
                      tool_args(0, nasty), END);
        const char *p = s;
        size_t n = strlen(s);
        if (stream) { /* the tool-start chunk: after the role and the content chunks */
            for (int i = 0; i < 2; i++)
                p = strstr(p, "\n\n") + 2;
            n = (size_t)(strstr(p, "\n\n") - p) - 6;
            p += 6;
        }
        json_t *v = parse_or_fail(p, n);
        char want[64];
        snprintf(want, sizeof(want), "chatcmpl-%s", nasty);
        assert_string_equal(json_string_value(json_object_get(v, "id")), want);
        assert_string_equal(json_string_value(json_object_get(v, "model")), nasty);
        json_t *c0 = json_array_get(json_object_get(v, "choices"), 0);
        json_t *m = json_object_get(c0, stream ? "delta" : "message");
        json_t *call = json_array_get(json_object_get(m, "tool_calls"), 0);
        assert_string_equal(json_string_value(json_object_get(call, "id")), nasty);
        json_t *fn = json_object_get(call, "function");
        assert_string_equal(json_string_value(json_object_get(fn, "name")), nasty);
        if (!stream) {
            assert_string_equal(json_string_value(json_object_get(m, "content")), nasty);
            assert_string_equal(json_string_value(json_object_get(fn, "arguments")), nasty);
        }
        json_decref(v);
        free(s);
    }
}

static void test_names_too_long(void **state)
{
    (void)state;
    size_t n = 64 * 1024 + 1;
    char *big = malloc(n + 1);
    memset(big, 'x', n);
    big[n] = '\0';
    yr_oai_enc_opts_t o = opts(true, false);
    yr_oai_enc_t *e = yr_oai_enc_new(&o);
    yr_buf_t out;
    yr_buf_init(&out, 1 << 20);
    yr_event_t st = {.type = YR_EV_START, .id = yr_str(big)};
    assert_int_equal(yr_oai_enc_event(e, &st, &out), -E2BIG);
    assert_int_equal(yr_oai_enc_event(e, &START, &out), 0);
    yr_event_t ts = tool_start(0, "c", big);
    assert_int_equal(yr_oai_enc_event(e, &ts, &out), -E2BIG);
    yr_buf_free(&out);
    yr_oai_enc_free(e);
    free(big);
}

/* ---- non-stream --------------------------------------------------------------------------- */

static json_t *completion(const char *s)
{
    json_t *v = parse_or_fail(s, strlen(s));
    assert_string_equal(json_string_value(json_object_get(v, "object")), "chat.completion");
    assert_int_equal(json_integer_value(json_object_get(v, "created")), T0);
    return v;
}

static void test_full_exact_bytes(void **state)
{
    (void)state;
    yr_oai_enc_opts_t o = opts(false, false);
    char *s = RUN(o, START, text(YR_EV_TEXT, "Hello"), text(YR_EV_TEXT, " world"), FINISH_STOP,
                  usage(10, 5, 0, 0), END);
    assert_string_equal(
        s, "{\"id\":\"chatcmpl-msg_1\",\"object\":\"chat.completion\",\"created\":1700000000,"
           "\"model\":\"claude-x\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
           "\"content\":\"Hello world\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":"
           "\"stop\"}],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":5,\"total_tokens\":"
           "15,\"prompt_tokens_details\":{\"cached_tokens\":0},\"completion_tokens_details\":{"
           "\"reasoning_tokens\":0}}}");
    free(s);
}

static void test_full_nothing_before_end(void **state)
{
    (void)state;
    yr_oai_enc_opts_t o = opts(false, true);
    yr_oai_enc_t *e = yr_oai_enc_new(&o);
    yr_buf_t out;
    yr_buf_init(&out, 1 << 16);
    const yr_event_t evs[] = {
        START,       text(YR_EV_TEXT, "a"), tool_start(0, "c", "f"), tool_args(0, "{}"),
        tool_end(0), FINISH_STOP,           usage(1, 1, 0, 0)};
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++) {
        assert_int_equal(yr_oai_enc_event(e, &evs[i], &out), 0);
        assert_int_equal(out.len, 0);
    }
    assert_int_equal(yr_oai_enc_event(e, &END, &out), 0);
    assert_true(out.len > 0);
    yr_buf_free(&out);
    yr_oai_enc_free(e);
}

static void test_full_tools_reasoning_usage(void **state)
{
    (void)state;
    yr_oai_enc_opts_t o = opts(false, false);
    yr_event_t sig = {.type = YR_EV_REASONING, .signature = YR_STR("sig")};
    yr_event_t ts = tool_start(0, "toolu_A", "get_weather");
    ts.signature = YR_STR("gemini-thought"); /* extra_content.google.thought_signature */
    char *s = RUN(o, START, text(YR_EV_REASONING, "Weather "),
                  text(YR_EV_REASONING, "needs a tool."), sig, ts, tool_start(1, "toolu_B", "now"),
                  tool_args(0, "{\"city\":"), tool_args(0, "\"Paris\"}"), tool_end(0), tool_end(1),
                  (yr_event_t){.type = YR_EV_FINISH, .finish = YR_FINISH_TOOL_CALLS},
                  usage(420, 40, 300, 12), END);
    json_t *v = completion(s);
    expect_json("tools", v,
                "{\"id\":\"chatcmpl-msg_1\",\"object\":\"chat.completion\",\"created\":1700000000,"
                "\"model\":\"claude-x\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
                "\"assistant\",\"content\":null,\"refusal\":null,\"tool_calls\":[{\"id\":"
                "\"toolu_A\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
                "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"},\"extra_content\":{\"google\":{"
                "\"thought_signature\":\"gemini-thought\"}}},{\"id\":\"toolu_B\",\"type\":"
                "\"function\",\"function\":{\"name\":\"now\",\"arguments\":\"{}\"}}],"
                "\"reasoning_content\":\"Weather needs a tool.\"},\"logprobs\":null,"
                "\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":420,"
                "\"completion_tokens\":40,\"total_tokens\":460,\"prompt_tokens_details\":{"
                "\"cached_tokens\":300},\"completion_tokens_details\":{\"reasoning_tokens\":12}}}");
    json_decref(v);
    free(s);
}

static void test_full_refusal(void **state)
{
    (void)state;
    yr_oai_enc_opts_t o = opts(false, false);
    char *s = RUN(o, START, text(YR_EV_REFUSAL, "I can't "), text(YR_EV_REFUSAL, "help."),
                  (yr_event_t){.type = YR_EV_FINISH, .finish = YR_FINISH_CONTENT_FILTER}, END);
    json_t *v = completion(s);
    expect_json("refusal", json_object_get(v, "choices"),
                "[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":null,\"refusal\":"
                "\"I can't help.\"},\"logprobs\":null,\"finish_reason\":\"content_filter\"}]");
    assert_null(json_object_get(v, "usage"));
    json_decref(v);
    free(s);
}

static void test_full_no_finish(void **state)
{
    (void)state;
    yr_oai_enc_opts_t o = opts(false, false);
    char *s = RUN(o, START, tool_start(0, "c", "f"), END);
    json_t *v = completion(s);
    expect_json("no finish, tool", json_object_get(v, "choices"),
                "[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":null,\"refusal\":"
                "null,\"tool_calls\":[{\"id\":\"c\",\"type\":\"function\",\"function\":{\"name\":"
                "\"f\",\"arguments\":\"{}\"}}]},\"logprobs\":null,\"finish_reason\":"
                "\"tool_calls\"}]");
    json_decref(v);
    free(s);
    s = RUN(o, START, text(YR_EV_TEXT, "x"), END);
    v = completion(s);
    expect_json("no finish, text", json_object_get(v, "choices"),
                "[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"x\",\"refusal\":"
                "null},\"logprobs\":null,\"finish_reason\":\"stop\"}]");
    json_decref(v);
    free(s);
}

static void test_full_empty_answer(void **state)
{
    (void)state;
    yr_oai_enc_opts_t o = opts(false, false);
    char *s = RUN(o, START, FINISH_STOP, END);
    json_t *v = completion(s);
    expect_json("empty", json_object_get(v, "choices"),
                "[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":null,\"refusal\":"
                "null},\"logprobs\":null,\"finish_reason\":\"stop\"}]");
    json_decref(v);
    free(s);
    /* An empty text block is an empty answer, not a missing one. */
    s = RUN(o, START, text(YR_EV_TEXT, ""), END);
    v = completion(s);
    expect_json("empty text",
                json_object_get(json_array_get(json_object_get(v, "choices"), 0), "message"),
                "{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}");
    json_decref(v);
    free(s);
}

static void test_full_generated_call_id(void **state)
{
    (void)state;
    /* Gemini's function calls may come without an id: OpenAI requires one. */
    yr_oai_enc_opts_t o = opts(false, false);
    char *s = RUN(o, START, tool_start(0, "", "f"), tool_start(1, "", "g"), END);
    json_t *v = completion(s);
    json_t *calls = json_object_get(
        json_object_get(json_array_get(json_object_get(v, "choices"), 0), "message"), "tool_calls");
    assert_string_equal(json_string_value(json_object_get(json_array_get(calls, 0), "id")),
                        "call_msg_1_0");
    assert_string_equal(json_string_value(json_object_get(json_array_get(calls, 1), "id")),
                        "call_msg_1_1");
    json_decref(v);
    free(s);
}

static void test_full_held_bounded_by_cap(void **state)
{
    (void)state;
    /* What the encoder keeps for END cannot outgrow the buffer END writes to. */
    yr_oai_enc_opts_t o = opts(false, false);
    yr_oai_enc_t *e = yr_oai_enc_new(&o);
    yr_buf_t out;
    yr_buf_init(&out, 100);
    yr_event_t ev = text(YR_EV_TEXT, "0123456789012345678901234567890123456789");
    assert_int_equal(yr_oai_enc_event(e, &START, &out), 0);
    assert_int_equal(yr_oai_enc_event(e, &ev, &out), 0);
    assert_int_equal(yr_oai_enc_event(e, &ev, &out), 0);
    assert_int_equal(yr_oai_enc_event(e, &ev, &out), -E2BIG);
    assert_int_equal(out.len, 0);
    yr_buf_free(&out);
    yr_oai_enc_free(e);
}

/* ---- torture ------------------------------------------------------------------------------ */

/* For every cap from 0 to the size of the whole output: feed the events
 * into a buffer of that cap; when an event fails, out must be exactly as
 * before it, and after raising the cap the same event must succeed (the
 * failed call changed nothing). The result must equal the reference. */
static void torture(const yr_oai_enc_opts_t *o, const yr_event_t *evs, size_t n)
{
    char *want = run(o, evs, n);
    size_t total = strlen(want);
    for (size_t cap = 0; cap <= total; cap++) {
        yr_oai_enc_t *e = yr_oai_enc_new(o);
        assert_non_null(e);
        yr_buf_t out;
        yr_buf_init(&out, cap);
        for (size_t i = 0; i < n; i++) {
            size_t len = out.len;
            char *before = out.data ? strndup(out.data, out.len) : NULL;
            int rc = yr_oai_enc_event(e, &evs[i], &out);
            if (rc != 0) {
                if (rc != -E2BIG)
                    fail_msg("cap %zu event %zu: rc %d", cap, i, rc);
                assert_int_equal(out.len, len);
                if (len > 0)
                    assert_memory_equal(out.data, before, len);
                out.max = total; /* room enough: the retry must succeed */
                rc = yr_oai_enc_event(e, &evs[i], &out);
                if (rc != 0)
                    fail_msg("cap %zu event %zu: retry rc %d", cap, i, rc);
                out.max = cap > out.len ? cap : out.len; /* tight again */
            }
            free(before);
        }
        if (out.len != total || memcmp(out.data, want, total) != 0)
            fail_msg("cap %zu: output differs:\n%.*s\nexpected:\n%s", cap, (int)out.len,
                     out.data ? out.data : "", want);
        yr_buf_free(&out);
        yr_oai_enc_free(e);
    }
    free(want);
}

static void test_torture(void **state)
{
    (void)state;
    const yr_event_t evs[] = {
        START,
        text(YR_EV_REASONING, "hmm"),
        text(YR_EV_TEXT, "Hi \"x\""),
        text(YR_EV_REFUSAL, "no"),
        tool_start(0, "call_a", "f"),
        tool_start(1, "", "g"),
        tool_args(0, "{\"a\":"),
        tool_args(1, "[1]"),
        tool_args(0, "1}"),
        tool_end(0),
        (yr_event_t){.type = YR_EV_FINISH, .finish = YR_FINISH_LENGTH},
        usage(7, 8, 2, 3),
        END,
    };
    const size_t n = sizeof(evs) / sizeof(evs[0]);
    for (int stream = 0; stream < 2; stream++)
        for (int iu = 0; iu < 2; iu++) {
            yr_oai_enc_opts_t o = opts(stream, iu);
            torture(&o, evs, n);
            /* (no START: created would be "now", which may tick mid-test) */
            /* no FINISH, an unfinished call closed at END */
            const yr_event_t tail[] = {START, tool_start(0, "c", "f"), END};
            torture(&o, tail, 3);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_exact_bytes),
        cmocka_unit_test(test_stream_usage_exact_bytes),
        cmocka_unit_test(test_stream_no_usage_seen),
        cmocka_unit_test(test_stream_interleaved_tools),
        cmocka_unit_test(test_stream_tool_without_args),
        cmocka_unit_test(test_stream_reasoning_refusal),
        cmocka_unit_test(test_stream_no_finish),
        cmocka_unit_test(test_stream_finish_reasons),
        cmocka_unit_test(test_stream_identity),
        cmocka_unit_test(test_stream_error_writes_nothing),
        cmocka_unit_test(test_sequence_errors),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_names_too_long),
        cmocka_unit_test(test_full_exact_bytes),
        cmocka_unit_test(test_full_nothing_before_end),
        cmocka_unit_test(test_full_tools_reasoning_usage),
        cmocka_unit_test(test_full_refusal),
        cmocka_unit_test(test_full_no_finish),
        cmocka_unit_test(test_full_empty_answer),
        cmocka_unit_test(test_full_generated_call_id),
        cmocka_unit_test(test_full_held_bounded_by_cap),
        cmocka_unit_test(test_torture),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
