/* Simulator tests for the pure parts: text helpers (UTF-8 boundaries, words,
 * stream pieces), behaviour parsing, the dialect-neutral reply, and the
 * OpenAI dialect's validation and rendering (every streamed event must be
 * valid JSON and the deltas must add up to the non-streamed answer).
 *
 * The simulator is a separate binary, so its .c files are included here;
 * the two control-API responders script.c refers to are stubbed. */
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

#include "../../sim/openai.c"
#include "../../sim/script.c"
#include "../../sim/text.c"

void sim_respond_json(yr_http_req_t *req, int status, json_t *v)
{
    (void)req;
    (void)status;
    json_decref(v);
}

void sim_respond_control_error(yr_http_req_t *req, int status, const char *message)
{
    (void)req;
    (void)status;
    (void)message;
}

/* ---- fixtures --------------------------------------------------------------- */

typedef struct {
    sim_t sim;
    yr_http_req_t req;
    yr_http_header_t hdrs[8]; /* req.headers (the server sizes it per request) */
    sim_exchange_t x;
    yr_pool_t *pool;
} fixture_t;

static fixture_t *fixture_new(void)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->pool = yr_pool_create(4096);
    f->sim.queue = json_array();
    f->req.pool = f->pool;
    f->req.headers = f->hdrs;
    f->x.sim = &f->sim;
    f->x.req = &f->req;
    f->x.pool = f->pool;
    f->x.dialect = &sim_dialect_openai;
    f->x.created = 1700000000;
    memcpy(f->x.id, "chatcmpl-test", sizeof("chatcmpl-test"));
    sim_behaviour_init(&f->x.beh);
    return f;
}

static void fixture_free(fixture_t *f)
{
    sim_behaviour_clear(&f->x.beh);
    json_decref(f->x.body);
    json_decref(f->sim.queue);
    yr_pool_destroy(f->pool);
    free(f);
}

/* Parses body (JSON text) as the request, optionally with a behaviour. */
static int prepare(fixture_t *f, const char *body, const char *behaviour, sim_error_t *err)
{
    f->x.body = json_loads(body, 0, NULL);
    assert_non_null(f->x.body);
    if (behaviour != NULL) {
        json_t *b = json_loads(behaviour, 0, NULL);
        char why[200];
        assert_non_null(b);
        assert_int_equal(sim_behaviour_parse(b, &f->x.beh, why, sizeof(why)), 0);
        json_decref(b);
    }
    int rc = sim_dialect_openai.parse(&f->x, f->x.body, err);
    if (rc == 0)
        assert_int_equal(sim_reply_build(&f->x), 0);
    return rc;
}

static json_t *render(fixture_t *f)
{
    yr_buf_t b;
    yr_buf_init(&b, SIM_MAX_RESPONSE);
    assert_int_equal(sim_dialect_openai.render(&f->x, &b), 0);
    json_error_t jerr;
    json_t *v = json_loadb(b.data, b.len, 0, &jerr);
    assert_non_null(v);
    yr_buf_free(&b);
    return v;
}

/* Runs the whole stream; returns the parsed events (without [DONE]). */
static json_t *stream_all(fixture_t *f)
{
    f->x.dstate = yr_pcalloc(f->pool, sim_dialect_openai.stream_state_size);
    json_t *events = json_array();
    yr_buf_t b;
    yr_buf_init(&b, SIM_MAX_RESPONSE);
    size_t n = 0;
    for (;;) {
        yr_buf_reset(&b);
        int rc = sim_dialect_openai.stream_next(&f->x, &b);
        assert_true(rc == SIM_EVENT || rc == SIM_EVENT_LAST);
        n++;
        assert_true(b.len > 8);
        assert_memory_equal(b.data, "data: ", 6);
        assert_memory_equal(b.data + b.len - 2, "\n\n", 2);
        if (rc == SIM_EVENT_LAST) {
            assert_string_equal(b.data, "data: [DONE]\n\n");
            break;
        }
        json_t *ev = json_loadb(b.data + 6, b.len - 8, 0, NULL);
        assert_non_null(ev);
        json_array_append_new(events, ev);
    }
    assert_int_equal(n, sim_dialect_openai.stream_events(&f->x));
    yr_buf_free(&b);
    return events;
}

/* Appends a NUL-terminated piece to a fixed buffer; the test fails on overflow. */
static void append_piece(char *buf, size_t cap, const char *piece)
{
    size_t have = strlen(buf), add = strlen(piece);
    assert_true(have + add < cap);
    memcpy(buf + have, piece, add + 1);
}

static const char *content_of(const json_t *completion, size_t choice)
{
    return json_string_value(json_object_get(
        json_object_get(json_array_get(json_object_get(completion, "choices"), choice), "message"),
        "content"));
}

/* ---- text helpers --------------------------------------------------------------- */

static void test_utf8_floor_and_count(void **state)
{
    (void)state;
    const char *s = "a\xC3\xA9\xE2\x82\xAC"; /* a é € */
    assert_int_equal(sim_utf8_floor(s, 6, 10), 6);
    assert_int_equal(sim_utf8_floor(s, 6, 5), 3); /* never half a € */
    assert_int_equal(sim_utf8_floor(s, 6, 2), 1); /* never half an é */
    assert_int_equal(sim_utf8_count((yr_str_t){s, 6}), 3);
}

static void test_words(void **state)
{
    (void)state;
    yr_str_t s = YR_STR("  one two\tthree\n four ");
    assert_int_equal(sim_count_words(s), 4);
    yr_str_t two = sim_first_words(s, 2);
    assert_int_equal(two.len, strlen("  one two"));
    assert_int_equal(sim_first_words(s, 9).len, s.len);
    assert_int_equal(sim_count_words(YR_STR("")), 0);
}

static void check_pieces(yr_str_t s, size_t chunks, size_t expect_count)
{
    sim_pieces_t p;
    sim_pieces_init(&p, s, chunks);
    char joined[256] = {0};
    size_t len = 0, n = 0;
    yr_str_t piece;
    while (sim_pieces_next(&p, &piece)) {
        assert_true(piece.len > 0);
        /* no piece starts inside a UTF-8 sequence */
        assert_true(((unsigned char)piece.ptr[0] & 0xC0) != 0x80);
        memcpy(joined + len, piece.ptr, piece.len);
        len += piece.len;
        n++;
    }
    assert_int_equal(len, s.len);
    assert_memory_equal(joined, s.ptr, s.len);
    assert_int_equal(n, expect_count);
    assert_int_equal(sim_pieces_count(s, chunks), expect_count);
}

static void test_pieces(void **state)
{
    (void)state;
    check_pieces(YR_STR("Hello from the sim. "), 0, 4);
    check_pieces(YR_STR("  lead"), 0, 1);
    check_pieces(YR_STR("   "), 0, 1);
    check_pieces(YR_STR(""), 0, 0);
    check_pieces(YR_STR("h\xC3\xA9llo w\xC3\xB6rld \xF0\x9F\x8E\x89"), 3, 3);
    check_pieces(YR_STR("ab"), 5, 2); /* never more pieces than code points */
    check_pieces(YR_STR("{}"), sim_args_chunks(YR_STR("{}")), 2);
    check_pieces(YR_STR(""), 4, 0);
}

static void test_json_string_sanitises(void **state)
{
    (void)state;
    json_t *s = sim_json_string("ok\xFF\xC3", 4);
    assert_non_null(s);
    assert_string_equal(json_string_value(s), "ok\xEF\xBF\xBD\xEF\xBF\xBD");
    json_decref(s);
    s = sim_json_string("caf\xC3\xA9", 5);
    assert_string_equal(json_string_value(s), "caf\xC3\xA9");
    json_decref(s);
}

static void test_ids_deterministic(void **state)
{
    (void)state;
    char a[30], b[30], c[30];
    sim_random_alnum(7, a, 29);
    sim_random_alnum(7, b, 29);
    sim_random_alnum(8, c, 29);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    assert_int_equal(strlen(a), 29);
}

/* ---- behaviours ---------------------------------------------------------------------- */

static void test_behaviour_parse(void **state)
{
    (void)state;
    json_t *obj = json_loads("{\"text\":\"hi\",\"status\":429,\"retry_after\":1.5,\"chunks\":3,"
                             "\"cut_after\":0,\"_note\":\"ignored\",\"headers\":{\"x-a\":\"b\"},"
                             "\"tool_calls\":[{\"name\":\"f\",\"arguments\":{\"k\":[1,2]}}]}",
                             0, NULL);
    sim_behaviour_t b;
    char why[200];
    assert_int_equal(sim_behaviour_parse(obj, &b, why, sizeof(why)), 0);
    json_decref(obj); /* the behaviour holds its own reference */
    assert_true(b.has_text);
    assert_int_equal(b.status, 429);
    assert_int_equal(b.retry_after.len, 3);
    assert_memory_equal(b.retry_after.ptr, "1.5", 3);
    assert_int_equal(b.chunks, 3);
    assert_int_equal(b.cut_after, 0);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(b.tool_calls, 0), "arguments")),
        "{\"k\":[1,2]}");
    sim_behaviour_clear(&b);

    const char *bad[] = {"{\"txt\":1}",
                         "{\"status\":99}",
                         "{\"hang\":1}",
                         "[]",
                         "{\"headers\":{\"x\":\"a\\r\\nb\"}}",
                         "{\"tool_calls\":[{}]}",
                         "{\"chunk_delay_ms\":-1}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        obj = json_loads(bad[i], 0, NULL);
        assert_non_null(obj);
        assert_int_equal(sim_behaviour_parse(obj, &b, why, sizeof(why)), -EINVAL);
        assert_true(strlen(why) > 0);
        json_decref(obj);
    }
}

static void test_pick_order(void **state)
{
    (void)state;
    fixture_t *f = fixture_new();
    f->x.body = json_loads("{\"x_sim\":{\"text\":\"body\"}}", 0, NULL);
    char why[200];
    /* the body field */
    assert_int_equal(sim_script_pick(&f->x, why, sizeof(why)), 0);
    assert_memory_equal(f->x.beh.text.ptr, "body", 4);
    sim_behaviour_clear(&f->x.beh);
    /* the header beats the body */
    f->req.headers[0] = (yr_http_header_t){YR_STR("X-Sim"), YR_STR("{\"text\":\"header\"}")};
    f->req.nheaders = 1;
    assert_int_equal(sim_script_pick(&f->x, why, sizeof(why)), 0);
    assert_memory_equal(f->x.beh.text.ptr, "header", 6);
    sim_behaviour_clear(&f->x.beh);
    /* the queue beats both, and is consumed */
    json_array_append_new(f->sim.queue, json_pack("{s:s}", "text", "queued"));
    assert_int_equal(sim_script_pick(&f->x, why, sizeof(why)), 0);
    assert_memory_equal(f->x.beh.text.ptr, "queued", 6);
    assert_int_equal(json_array_size(f->sim.queue), 0);
    sim_behaviour_clear(&f->x.beh);
    /* an invalid header says where the problem is */
    f->req.headers[0].value = YR_STR("{nope");
    assert_int_equal(sim_script_pick(&f->x, why, sizeof(why)), -EINVAL);
    assert_non_null(strstr(why, "x-sim header"));
    fixture_free(f);
}

/* ---- the OpenAI dialect --------------------------------------------------------------- */

static void test_default_reply(void **state)
{
    (void)state;
    fixture_t *f = fixture_new();
    sim_error_t err;
    assert_int_equal(prepare(f,
                             "{\"model\":\"gpt-x\",\"messages\":[{\"role\":\"system\",\"content\":"
                             "\"sys\"},{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":"
                             "\"look\"},{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://"
                             "a/b.png\"}}]}]}",
                             NULL, &err),
                     0);
    json_t *v = render(f);
    assert_string_equal(json_string_value(json_object_get(v, "object")), "chat.completion");
    assert_string_equal(json_string_value(json_object_get(v, "model")), "gpt-x");
    assert_string_equal(content_of(v, 0), "Hello from yourouter-sim. You said: look [1 image]");
    json_t *usage = json_object_get(v, "usage");
    assert_int_equal(json_integer_value(json_object_get(usage, "prompt_tokens")), 1); /* 7 / 4 */
    assert_int_equal(json_integer_value(json_object_get(usage, "completion_tokens")), 8);
    assert_int_equal(json_integer_value(json_object_get(usage, "total_tokens")), 9);
    json_t *choice = json_array_get(json_object_get(v, "choices"), 0);
    assert_string_equal(json_string_value(json_object_get(choice, "finish_reason")), "stop");
    assert_true(json_is_null(json_object_get(choice, "logprobs")));
    assert_true(json_is_null(json_object_get(json_object_get(choice, "message"), "refusal")));
    json_decref(v);
    fixture_free(f);
}

static void test_exact_reply_max_tokens_and_n(void **state)
{
    (void)state;
    fixture_t *f = fixture_new();
    sim_error_t err;
    assert_int_equal(prepare(f,
                             "{\"model\":\"m\",\"n\":2,\"max_tokens\":2,\"messages\":[{\"role\":"
                             "\"user\",\"content\":\"x\\nReply with exactly: one two three\\n"
                             "tail\"}]}",
                             NULL, &err),
                     0);
    json_t *v = render(f);
    assert_int_equal(json_array_size(json_object_get(v, "choices")), 2);
    assert_string_equal(content_of(v, 1), "one two");
    json_t *choice = json_array_get(json_object_get(v, "choices"), 1);
    assert_string_equal(json_string_value(json_object_get(choice, "finish_reason")), "length");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(v, "usage"), "completion_tokens")), 4);
    json_decref(v);
    fixture_free(f);
}

static void test_validation_errors(void **state)
{
    (void)state;
    static const struct {
        const char *body, *param, *code;
    } cases[] = {
        {"[1]", NULL, NULL},
        {"{\"messages\":[]}", NULL, NULL},
        {"{\"model\":\"m\"}", "messages", "missing_required_parameter"},
        {"{\"model\":\"m\",\"messages\":[]}", "messages", "empty_array"},
        {"{\"model\":\"m\",\"messages\":\"hi\"}", "messages", "invalid_type"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"robot\",\"content\":\"x\"}]}",
         "messages[0].role", "invalid_value"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":5}]}",
         "messages[0].content", "invalid_type"},
        {"{\"model\":\"m\",\"n\":0,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "n",
         "integer_below_min_value"},
        {"{\"model\":\"m\",\"tool_choice\":\"auto\",\"messages\":[{\"role\":\"user\","
         "\"content\":\"x\"}]}",
         "tool_choice", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fixture_t *f = fixture_new();
        sim_error_t err;
        memset(&err, 0, sizeof(err));
        json_t *body = json_loads(cases[i].body, JSON_DECODE_ANY, NULL);
        assert_int_equal(sim_dialect_openai.parse(&f->x, body, &err), -EINVAL);
        assert_int_equal(err.status, 400);
        if (cases[i].param == NULL)
            assert_null(err.param.ptr);
        else
            assert_memory_equal(err.param.ptr, cases[i].param, strlen(cases[i].param));
        if (cases[i].code == NULL)
            assert_null(err.code.ptr);
        else
            assert_string_equal(err.code.ptr, cases[i].code);
        yr_buf_t b;
        yr_buf_init(&b, 4096);
        assert_int_equal(sim_dialect_openai.render_error(&err, &b), 0);
        json_t *e = json_loadb(b.data, b.len, 0, NULL);
        assert_non_null(json_object_get(json_object_get(e, "error"), "message"));
        assert_true(json_is_string(json_object_get(json_object_get(e, "error"), "type")));
        json_decref(e);
        yr_buf_free(&b);
        json_decref(body);
        fixture_free(f);
    }
}

static void test_stream_text_with_usage(void **state)
{
    (void)state;
    fixture_t *f = fixture_new();
    sim_error_t err;
    assert_int_equal(
        prepare(f,
                "{\"model\":\"m\",\"stream\":true,\"stream_options\":{\"include_usage\":"
                "true},\"n\":2,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
                "{\"chunks\":3,\"usage\":{\"completion_tokens\":50}}", &err),
        0);
    json_t *events = stream_all(f);
    char text[2][128] = {{0}};
    size_t i;
    json_t *ev;
    json_array_foreach(events, i, ev)
    {
        assert_string_equal(json_string_value(json_object_get(ev, "id")), "chatcmpl-test");
        assert_string_equal(json_string_value(json_object_get(ev, "object")),
                            "chat.completion.chunk");
        assert_non_null(json_object_get(ev, "usage")); /* null, or the final usage */
        json_t *choices = json_object_get(ev, "choices");
        if (i + 1 == json_array_size(events)) {
            assert_int_equal(json_array_size(choices), 0);
            json_t *u = json_object_get(ev, "usage");
            assert_int_equal(json_integer_value(json_object_get(u, "completion_tokens")), 50);
            assert_int_equal(json_integer_value(json_object_get(u, "total_tokens")), 51);
            continue;
        }
        assert_true(json_is_null(json_object_get(ev, "usage")));
        json_t *c = json_array_get(choices, 0);
        size_t idx = (size_t)json_integer_value(json_object_get(c, "index"));
        const char *piece =
            json_string_value(json_object_get(json_object_get(c, "delta"), "content"));
        if (piece != NULL)
            append_piece(text[idx], sizeof(text[idx]), piece);
    }
    assert_string_equal(text[0], "Hello from yourouter-sim. You said: hi");
    assert_string_equal(text[1], text[0]);
    json_decref(events);
    fixture_free(f);
}

static void test_stream_tool_calls(void **state)
{
    (void)state;
    fixture_t *f = fixture_new();
    sim_error_t err;
    assert_int_equal(
        prepare(f,
                "{\"model\":\"m\",\"stream\":true,\"tools\":[{\"type\":\"function\",\"function\":"
                "{\"name\":\"get\"}}],\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                "{\"tool_calls\":[{\"name\":\"get\",\"arguments\":{\"city\":\"Z\\u00fcrich\"}},"
                "{\"name\":\"put\",\"arguments\":\"{}\"}]}",
                &err),
        0);
    json_t *events = stream_all(f);
    char args[2][64] = {{0}};
    size_t frags[2] = {0}, i;
    json_t *ev;
    json_array_foreach(events, i, ev)
    {
        json_t *c = json_array_get(json_object_get(ev, "choices"), 0);
        json_t *delta = json_object_get(c, "delta");
        if (i == 0) {
            assert_string_equal(json_string_value(json_object_get(delta, "role")), "assistant");
            assert_true(json_is_null(json_object_get(delta, "content")));
        }
        json_t *tc = json_array_get(json_object_get(delta, "tool_calls"), 0);
        if (tc == NULL) {
            assert_int_equal(i + 1, json_array_size(events));
            assert_string_equal(json_string_value(json_object_get(c, "finish_reason")),
                                "tool_calls");
            continue;
        }
        size_t idx = (size_t)json_integer_value(json_object_get(tc, "index"));
        json_t *id = json_object_get(tc, "id");
        const char *a =
            json_string_value(json_object_get(json_object_get(tc, "function"), "arguments"));
        if (id != NULL) {
            assert_memory_equal(json_string_value(id), "call_", 5);
            assert_string_equal(a, "");
        } else {
            frags[idx]++;
            append_piece(args[idx], sizeof(args[idx]), a);
        }
    }
    assert_string_equal(args[0], "{\"city\":\"Z\xC3\xBCrich\"}");
    assert_string_equal(args[1], "{}");
    assert_true(frags[0] >= 2 && frags[1] >= 2);
    json_decref(events);
    fixture_free(f);
}

static void test_forced_tool_non_stream(void **state)
{
    (void)state;
    fixture_t *f = fixture_new();
    sim_error_t err;
    assert_int_equal(
        prepare(
            f,
            "{\"model\":\"m\",\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":"
            "\"b\"}},\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"a\"}},{\"type\":"
            "\"function\",\"function\":{\"name\":\"b\"}}],\"messages\":[{\"role\":\"user\","
            "\"content\":\"x\"}]}",
            NULL, &err),
        0);
    json_t *v = render(f);
    json_t *choice = json_array_get(json_object_get(v, "choices"), 0);
    json_t *msg = json_object_get(choice, "message");
    assert_true(json_is_null(json_object_get(msg, "content")));
    json_t *call = json_array_get(json_object_get(msg, "tool_calls"), 0);
    assert_string_equal(json_string_value(json_object_get(call, "type")), "function");
    json_t *fn = json_object_get(call, "function");
    assert_string_equal(json_string_value(json_object_get(fn, "name")), "b");
    assert_string_equal(json_string_value(json_object_get(fn, "arguments")), "{}");
    assert_string_equal(json_string_value(json_object_get(choice, "finish_reason")), "tool_calls");
    json_decref(v);
    fixture_free(f);

    /* tool_choice "none": scripted tool calls are not made */
    f = fixture_new();
    assert_int_equal(prepare(f,
                             "{\"model\":\"m\",\"tool_choice\":\"none\",\"tools\":[{\"type\":"
                             "\"function\",\"function\":{\"name\":\"a\"}}],\"messages\":[{\"role\":"
                             "\"user\",\"content\":\"x\"}]}",
                             "{\"tool_calls\":[{\"name\":\"a\"}]}", &err),
                     0);
    assert_int_equal(f->x.reply.ncalls, 0);
    assert_true(f->x.reply.has_text);
    fixture_free(f);
}

static void test_auth(void **state)
{
    (void)state;
    fixture_t *f = fixture_new();
    sim_error_t err;
    yr_str_t key = YR_STR("sk-secret-key-123456");
    assert_int_equal(sim_dialect_openai.check_auth(&f->req, YR_STR_NULL, &err), 0);
    assert_int_equal(sim_dialect_openai.check_auth(&f->req, key, &err), -EACCES);
    assert_int_equal(err.status, 401);
    f->req.headers[0] =
        (yr_http_header_t){YR_STR("Authorization"), YR_STR("Bearer sk-secret-key-123456")};
    f->req.nheaders = 1;
    assert_int_equal(sim_dialect_openai.check_auth(&f->req, key, &err), 0);
    f->req.headers[0].value = YR_STR("Bearer sk-wrong-key-abcdef");
    assert_int_equal(sim_dialect_openai.check_auth(&f->req, key, &err), -EACCES);
    assert_string_equal(err.code.ptr, "invalid_api_key");
    assert_null(strstr(err.message.ptr, "wrong-key")); /* masked */
    assert_non_null(strstr(err.message.ptr, "sk-***cdef"));
    fixture_free(f);
}

static void test_routes(void **state)
{
    (void)state;
    yr_http_req_t req = {0};
    static const struct {
        int method;
        const char *path;
        sim_route_t route;
    } cases[] = {
        {HTTP_POST, "/v1/chat/completions", SIM_ROUTE_CHAT},
        {HTTP_POST, "/chat/completions", SIM_ROUTE_CHAT},
        {HTTP_GET, "/v1/chat/completions", SIM_ROUTE_NONE},
        {HTTP_GET, "/v1/models", SIM_ROUTE_MODELS},
        {HTTP_GET, "/openai/v1/models/gpt-4o", SIM_ROUTE_MODEL},
        {HTTP_GET, "/v1beta/models/gemini-pro:generateContent", SIM_ROUTE_NONE},
        {HTTP_POST, "/v1/messages", SIM_ROUTE_NONE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        req.method = cases[i].method;
        req.path = yr_str(cases[i].path);
        assert_int_equal(sim_dialect_openai.route(&req), cases[i].route);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_floor_and_count),
        cmocka_unit_test(test_words),
        cmocka_unit_test(test_pieces),
        cmocka_unit_test(test_json_string_sanitises),
        cmocka_unit_test(test_ids_deterministic),
        cmocka_unit_test(test_behaviour_parse),
        cmocka_unit_test(test_pick_order),
        cmocka_unit_test(test_default_reply),
        cmocka_unit_test(test_exact_reply_max_tokens_and_n),
        cmocka_unit_test(test_validation_errors),
        cmocka_unit_test(test_stream_text_with_usage),
        cmocka_unit_test(test_stream_tool_calls),
        cmocka_unit_test(test_forced_tool_non_stream),
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_routes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
