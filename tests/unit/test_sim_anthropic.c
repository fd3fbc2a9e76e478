/* The simulator's Anthropic dialect: validation with the Messages API's
 * messages, the message object, the event stream (framing, event names,
 * block indexes, deltas adding up to the non-streamed answer), thinking,
 * scripted stream errors, auth, routes and the error shape.
 *
 * The simulator is a separate binary, so its .c files are included here; the
 * two control-API responders script.c refers to are stubbed. */
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

#include "../../sim/anthropic.c"
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
    f->req.headers[0] = (yr_http_header_t){YR_STR("anthropic-version"), YR_STR("2023-06-01")};
    f->req.nheaders = 1;
    f->x.sim = &f->sim;
    f->x.req = &f->req;
    f->x.pool = f->pool;
    f->x.dialect = &sim_dialect_anthropic;
    f->x.created = 1700000000;
    memcpy(f->x.id, "chatcmpl-ABCDEFGHIJKLMNOPQRSTUVWXYZabc", 39);
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
    int rc = sim_dialect_anthropic.parse(&f->x, f->x.body, err);
    if (rc == 0)
        assert_int_equal(sim_reply_build(&f->x), 0);
    return rc;
}

static json_t *render(fixture_t *f)
{
    yr_buf_t b;
    yr_buf_init(&b, SIM_MAX_RESPONSE);
    assert_int_equal(sim_dialect_anthropic.render(&f->x, &b), 0);
    json_t *v = json_loadb(b.data, b.len, 0, NULL);
    assert_non_null(v);
    yr_buf_free(&b);
    return v;
}

/* Runs the stream: returns [{"event":name,"data":{...}}...]; checks the
 * framing, that each event's name is its data's type and the event count. */
static json_t *stream_all(fixture_t *f, bool check_count)
{
    f->x.dstate = yr_pcalloc(f->pool, sim_dialect_anthropic.stream_state_size);
    json_t *events = json_array();
    yr_buf_t b;
    yr_buf_init(&b, SIM_MAX_RESPONSE);
    for (;;) {
        yr_buf_reset(&b);
        int rc = sim_dialect_anthropic.stream_next(&f->x, &b);
        assert_true(rc == SIM_EVENT || rc == SIM_EVENT_LAST);
        f->x.events++;
        assert_memory_equal(b.data, "event: ", 7);
        const char *nl = strchr(b.data, '\n');
        assert_non_null(nl);
        assert_memory_equal(nl + 1, "data: ", 6);
        assert_memory_equal(b.data + b.len - 2, "\n\n", 2);
        const char *data = nl + 7;
        json_t *d = json_loadb(data, (size_t)(b.data + b.len - 2 - data), 0, NULL);
        assert_non_null(d);
        json_t *name = json_stringn(b.data + 7, (size_t)(nl - b.data - 7));
        assert_string_equal(json_string_value(name), json_string_value(json_object_get(d, "type")));
        json_array_append_new(events, json_pack("{s:o, s:o}", "event", name, "data", d));
        if (rc == SIM_EVENT_LAST)
            break;
    }
    if (check_count)
        assert_int_equal(json_array_size(events), sim_dialect_anthropic.stream_events(&f->x));
    yr_buf_free(&b);
    return events;
}

static const char *event_name(const json_t *events, size_t i)
{
    return json_string_value(json_object_get(json_array_get(events, i), "event"));
}

static json_t *event_data(const json_t *events, size_t i)
{
    return json_object_get(json_array_get(events, i), "data");
}

/* Concatenates the deltas of one kind ("text", "thinking", "partial_json")
 * for block index idx. */
static void join_deltas(const json_t *events, size_t idx, const char *field, char *out, size_t cap)
{
    out[0] = '\0';
    size_t i;
    json_t *ev;
    json_array_foreach(events, i, ev)
    {
        json_t *d = json_object_get(ev, "data");
        if (strcmp(json_string_value(json_object_get(d, "type")), "content_block_delta") != 0 ||
            (size_t)json_integer_value(json_object_get(d, "index")) != idx)
            continue;
        const char *s = json_string_value(json_object_get(json_object_get(d, "delta"), field));
        if (s == NULL)
            continue;
        assert_true(strlen(out) + strlen(s) < cap);
        memcpy(out + strlen(out), s, strlen(s) + 1);
    }
}

/* ---- validation ------------------------------------------------------------------ */

#define MSG "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]"

static void test_validation(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        const char *message; /* substring of the error, or NULL when valid */
    } cases[] = {
        {"{\"model\":\"c\",\"max_tokens\":5," MSG "}", NULL},
        {"{\"max_tokens\":5," MSG "}", "model: Field required"},
        {"{\"model\":\"c\"," MSG "}", "max_tokens: Field required"},
        {"{\"model\":\"c\",\"max_tokens\":0," MSG "}", "max_tokens: Input should be greater"},
        {"{\"model\":\"c\",\"max_tokens\":5}", "messages: Field required"},
        {"{\"model\":\"c\",\"max_tokens\":5,\"messages\":[]}", "at least one message"},
        {"{\"model\":\"c\",\"max_tokens\":5,\"messages\":[{\"role\":\"system\",\"content\":\"x\"}]"
         "}",
         "first message must use the \"user\" role"},
        {"{\"model\":\"c\",\"max_tokens\":5,\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]"
         "}",
         "messages.0.role"},
        {"{\"model\":\"c\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"},"
         "{\"role\":\"system\",\"content\":[{\"type\":\"image\"}]}]}",
         "system messages take text blocks only"},
        {"{\"model\":\"c\",\"max_tokens\":5,\"messages\":[{\"role\":\"assistant\",\"content\":"
         "\"x\"}"
         ",{\"role\":\"user\",\"content\":\"y\"}]}",
         "first message must use the \"user\" role"},
        {"{\"model\":\"c\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{"
         "\"role\":\"user\",\"content\":\"y\"},{\"role\":\"assistant\",\"content\":\"z\"},{"
         "\"role\":\"assistant\",\"content\":\"\"}]}",
         NULL}, /* consecutive roles are combined; a final assistant may be empty */
        {"{\"model\":\"c\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"\"}]}",
         "all messages must have non-empty content"},
        {"{\"model\":\"c\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\"}]}",
         "messages.0.content: Field required"},
        {"{\"model\":\"c\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\""
         ":\"text\",\"text\":\"\"}]}]}",
         "text content blocks must be non-empty"},
        {"{\"model\":\"c\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\""
         ":\"video\"}]}]}",
         "Input tag 'video'"},
        {"{\"model\":\"c\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\""
         ":\"image\",\"source\":{\"type\":\"file\",\"file_id\":\"f\"}}]}]}",
         "expected tags: 'base64', 'url'"},
        {"{\"model\":\"c\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\""
         ":\"image\",\"source\":{\"type\":\"base64\",\"data\":\"x\"}}]}]}",
         "media_type: Field required"},
        {"{\"model\":\"c\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\""
         ":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/tiff\",\"data\":\"x\"}}"
         "]}]}",
         "Input should be 'image/jpeg'"},
        {"{\"model\":\"c\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\""
         ":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\"}}]}]}",
         "data: Field required"},
        {"{\"model\":\"c\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\""
         ":\"image\",\"source\":{\"type\":\"url\"}}]}]}",
         "url: Field required"},
        {"{\"model\":\"c\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\""
         ":\"image\"}]}]}",
         "source: Field required"},
        {"{\"model\":\"c\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{"
         "\"role\":\"assistant\",\"content\":\"b\"},{\"role\":\"user\",\"content\":[{\"type\":"
         "\"tool_result\",\"tool_use_id\":\"toolu_9\"}]}]}",
         "unexpected `tool_use_id`"},
        {"{\"model\":\"c\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{"
         "\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":"
         "\"f\",\"input\":{}}]},{\"role\":\"user\",\"content\":\"b\"}]}",
         "without `tool_result` blocks"},
        {"{\"model\":\"c\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{"
         "\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":"
         "\"f\",\"input\":{}}]},{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","
         "\"tool_use_id\":\"toolu_1\",\"content\":[{\"type\":\"text\",\"text\":\"r\"}]},{\"type\":"
         "\"text\",\"text\":\"b\"}]}]}",
         NULL},
        {"{\"model\":\"c\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\""
         ":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":{}}]}]}",
         "only appear in assistant messages"},
        {"{\"model\":\"c\",\"max_tokens\":5,\"system\":[{\"type\":\"image\"}]," MSG "}",
         "system.0.type"},
        {"{\"model\":\"c\",\"max_tokens\":5,\"temperature\":2," MSG "}", "temperature"},
        {"{\"model\":\"c\",\"max_tokens\":5,\"n\":1," MSG "}", "n: Extra inputs are not permitted"},
        {"{\"model\":\"c\",\"max_tokens\":5,\"x_sim\":{}," MSG "}", NULL},
        {"{\"model\":\"c\",\"max_tokens\":5,\"stop_sequences\":\"x\"," MSG "}", "stop_sequences"},
        {"{\"model\":\"c\",\"max_tokens\":5,\"tools\":[{\"name\":\"f\"}]," MSG "}",
         "input_schema: Field required"},
        {"{\"model\":\"c\",\"max_tokens\":5,\"tools\":[{\"name\":\"f\",\"input_schema\":{\"type\":"
         "\"object\"}}],\"tool_choice\":{\"type\":\"required\"}," MSG "}",
         "tool_choice: Input tag 'required'"},
        {"{\"model\":\"c\",\"max_tokens\":5,\"tools\":[{\"type\":\"web_search_20250305\",\"name\":"
         "\"web_search\"}]," MSG "}",
         NULL}, /* server tools carry no input_schema */
        {"{\"model\":\"c\",\"max_tokens\":2000,\"thinking\":{\"type\":\"enabled\","
         "\"budget_tokens\":512}," MSG "}",
         "greater than or equal to 1024"},
        {"{\"model\":\"c\",\"max_tokens\":1024,\"thinking\":{\"type\":\"enabled\","
         "\"budget_tokens\":1024}," MSG "}",
         "`max_tokens` must be greater than `thinking.budget_tokens`"},
        {"{\"model\":\"c\",\"max_tokens\":2000,\"temperature\":0.5,\"thinking\":{\"type\":"
         "\"enabled\",\"budget_tokens\":1024}," MSG "}",
         "`temperature` may only be set to 1"},
        {"{\"model\":\"c\",\"max_tokens\":2000,\"thinking\":{\"type\":\"enabled\",\"budget_"
         "tokens\":"
         "1024},\"tools\":[{\"name\":\"f\",\"input_schema\":{\"type\":\"object\"}}],"
         "\"tool_choice\":{\"type\":\"tool\",\"name\":\"f\"}," MSG "}",
         "tool_choice forces tool use"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fixture_t *f = fixture_new();
        sim_error_t err;
        int rc = prepare(f, cases[i].body, NULL, &err);
        if (cases[i].message == NULL) {
            if (rc != 0)
                fail_msg("case %zu: unexpected error: %s", i, err.message.ptr);
        } else {
            if (rc != -EINVAL)
                fail_msg("case %zu: accepted, expected '%s'", i, cases[i].message);
            assert_int_equal(err.status, 400);
            assert_string_equal(err.type.ptr, "invalid_request_error");
            if (strstr(err.message.ptr, cases[i].message) == NULL)
                fail_msg("case %zu: '%s' does not contain '%s'", i, err.message.ptr,
                         cases[i].message);
        }
        fixture_free(f);
    }
}

static void test_version_header_required(void **state)
{
    (void)state;
    fixture_t *f = fixture_new();
    f->req.nheaders = 0;
    sim_error_t err;
    assert_int_equal(prepare(f, "{\"model\":\"c\",\"max_tokens\":5," MSG "}", NULL, &err), -EINVAL);
    assert_string_equal(err.message.ptr, "anthropic-version: header is required");
    fixture_free(f);
}

/* ---- responses ---------------------------------------------------------------------- */

static void test_render_text(void **state)
{
    (void)state;
    fixture_t *f = fixture_new();
    sim_error_t err;
    assert_int_equal(prepare(f,
                             "{\"model\":\"claude-x\",\"max_tokens\":50,\"system\":\"sys\","
                             "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
                             "\"text\":\"Reply with exactly: pong pong\"}]}]}",
                             NULL, &err),
                     0);
    json_t *v = render(f);
    json_t *want = json_loads(
        "{\"id\":\"msg_01ABCDEFGHIJKLMNOPQRSTUV\",\"type\":\"message\",\"role\":\"assistant\","
        "\"model\":\"claude-x\",\"content\":[{\"type\":\"text\",\"text\":\"pong pong\"}],"
        "\"stop_reason\":\"end_turn\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":8,"
        "\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":2,"
        "\"service_tier\":\"standard\"}}",
        0, NULL);
    assert_true(json_equal(v, want));
    json_decref(want);
    json_decref(v);
    fixture_free(f);
}

static void test_render_tools_and_limits(void **state)
{
    (void)state;
    fixture_t *f = fixture_new();
    sim_error_t err;
    assert_int_equal(
        prepare(f,
                "{\"model\":\"c\",\"max_tokens\":50,\"tools\":[{\"name\":\"f\",\"input_schema\":{"
                "\"type\":\"object\"}},{\"name\":\"g\",\"input_schema\":{\"type\":\"object\"}}],"
                "\"tool_choice\":{\"type\":\"tool\",\"name\":\"g\"}," MSG "}",
                NULL, &err),
        0);
    json_t *v = render(f);
    json_t *c0 = json_array_get(json_object_get(v, "content"), 0);
    assert_string_equal(json_string_value(json_object_get(c0, "type")), "tool_use");
    assert_string_equal(json_string_value(json_object_get(c0, "name")), "g");
    assert_true(json_is_object(json_object_get(c0, "input")));
    const char *id = json_string_value(json_object_get(c0, "id"));
    assert_int_equal(strncmp(id, "toolu_01", 8), 0);
    assert_int_equal(strlen(id), 32);
    assert_string_equal(json_string_value(json_object_get(v, "stop_reason")), "tool_use");
    json_decref(v);
    fixture_free(f);

    /* a scripted call keeps its id; max_tokens cuts the text */
    f = fixture_new();
    assert_int_equal(
        prepare(
            f,
            "{\"model\":\"c\",\"max_tokens\":2,\"tools\":[{\"name\":\"f\",\"input_schema\":{"
            "\"type\":\"object\"}}],\"messages\":[{\"role\":\"user\",\"content\":\"one two "
            "three\"}]}",
            "{\"tool_calls\":[{\"name\":\"f\",\"id\":\"toolu_mine\",\"arguments\":{\"a\":[1]}}],"
            "\"text\":\"Sure.\"}",
            &err),
        0);
    v = render(f);
    json_t *want = json_loads("[{\"type\":\"text\",\"text\":\"Sure.\"},{\"type\":\"tool_use\","
                              "\"id\":\"toolu_mine\",\"name\":\"f\",\"input\":{\"a\":[1]}}]",
                              0, NULL);
    assert_true(json_equal(json_object_get(v, "content"), want));
    json_decref(want);
    json_decref(v);
    fixture_free(f);

    f = fixture_new();
    assert_int_equal(prepare(f, "{\"model\":\"c\",\"max_tokens\":2," MSG "}", NULL, &err), 0);
    v = render(f);
    assert_string_equal(json_string_value(json_object_get(v, "stop_reason")), "max_tokens");
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(v, "content"), 0), "text")),
                        "Hello from");
    json_decref(v);
    fixture_free(f);
}

static void test_render_thinking(void **state)
{
    (void)state;
    fixture_t *f = fixture_new();
    sim_error_t err;
    assert_int_equal(prepare(f,
                             "{\"model\":\"c\",\"max_tokens\":2000,\"thinking\":{\"type\":"
                             "\"enabled\",\"budget_tokens\":1024},\"messages\":[{\"role\":\"user\","
                             "\"content\":\"Reply with exactly: 42\"}]}",
                             NULL, &err),
                     0);
    json_t *v = render(f);
    json_t *content = json_object_get(v, "content");
    assert_int_equal(json_array_size(content), 2);
    json_t *th = json_array_get(content, 0);
    assert_string_equal(json_string_value(json_object_get(th, "type")), "thinking");
    assert_string_equal(json_string_value(json_object_get(th, "thinking")),
                        "Thinking about: Reply with exactly: 42");
    assert_int_equal(json_string_length(json_object_get(th, "signature")), 64);
    /* output tokens count the thinking words too: 1 + 6 */
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(v, "usage"), "output_tokens")), 7);
    json_decref(v);
    fixture_free(f);
}

/* ---- streams -------------------------------------------------------------------------- */

static void test_stream_text(void **state)
{
    (void)state;
    fixture_t *f = fixture_new();
    sim_error_t err;
    assert_int_equal(prepare(f,
                             "{\"model\":\"c\",\"max_tokens\":50,\"stream\":true,\"messages\":[{"
                             "\"role\":\"user\",\"content\":\"Reply with exactly: a b c\"}]}",
                             "{\"usage\":{\"cache_read_input_tokens\":3}}", &err),
                     0);
    json_t *evs = stream_all(f, true);
    static const char *const names[] = {
        "message_start",       "content_block_start", "ping",
        "content_block_delta", "content_block_delta", "content_block_delta",
        "content_block_stop",  "message_delta",       "message_stop",
    };
    assert_int_equal(json_array_size(evs), 9);
    for (size_t i = 0; i < 9; i++)
        assert_string_equal(event_name(evs, i), names[i]);
    json_t *msg = json_object_get(event_data(evs, 0), "message");
    assert_int_equal(json_array_size(json_object_get(msg, "content")), 0);
    json_t *u = json_object_get(msg, "usage");
    assert_int_equal(json_integer_value(json_object_get(u, "output_tokens")), 1);
    assert_int_equal(json_integer_value(json_object_get(u, "cache_read_input_tokens")), 3);
    char text[256];
    join_deltas(evs, 0, "text", text, sizeof(text));
    assert_string_equal(text, "a b c");
    json_t *md = event_data(evs, 7);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(md, "delta"), "stop_reason")),
        "end_turn");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(md, "usage"), "output_tokens")), 3);
    json_decref(evs);
    fixture_free(f);
}

static void test_stream_tools_and_thinking(void **state)
{
    (void)state;
    fixture_t *f = fixture_new();
    sim_error_t err;
    assert_int_equal(
        prepare(f,
                "{\"model\":\"c\",\"max_tokens\":2000,\"stream\":true,\"thinking\":{\"type\":"
                "\"enabled\",\"budget_tokens\":1024},\"tools\":[{\"name\":\"f\",\"input_schema\":"
                "{\"type\":\"object\"}}],\"messages\":[{\"role\":\"user\",\"content\":\"weather "
                "in Paris\"}]}",
                "{\"tool_calls\":[{\"name\":\"f\",\"arguments\":{\"city\":\"Paris\"}},{\"name\":"
                "\"f\",\"arguments\":\"{}\"}]}",
                &err),
        0);
    json_t *evs = stream_all(f, true);
    char buf[256];
    join_deltas(evs, 0, "thinking", buf, sizeof(buf));
    assert_string_equal(buf, "Thinking about: weather in Paris");
    join_deltas(evs, 0, "signature", buf, sizeof(buf));
    assert_int_equal(strlen(buf), 64);
    join_deltas(evs, 1, "partial_json", buf, sizeof(buf));
    assert_string_equal(buf, "{\"city\":\"Paris\"}");
    join_deltas(evs, 2, "partial_json", buf, sizeof(buf));
    assert_string_equal(buf, "{}");
    /* block starts: thinking at 0, tools at 1 and 2 with empty input */
    size_t starts = 0, i;
    json_t *ev;
    json_array_foreach(evs, i, ev)
    {
        json_t *d = json_object_get(ev, "data");
        if (strcmp(event_name(evs, i), "content_block_start") != 0)
            continue;
        assert_int_equal(json_integer_value(json_object_get(d, "index")), starts);
        json_t *cb = json_object_get(d, "content_block");
        if (starts > 0) {
            assert_string_equal(json_string_value(json_object_get(cb, "type")), "tool_use");
            assert_int_equal(json_object_size(json_object_get(cb, "input")), 0);
        }
        starts++;
    }
    assert_int_equal(starts, 3);
    assert_string_equal(event_name(evs, 2), "ping"); /* right after the first block opens */
    json_decref(evs);
    fixture_free(f);
}

static void test_stream_error(void **state)
{
    (void)state;
    static const struct {
        const char *beh;
        size_t events; /* including the error */
        const char *type, *message;
    } cases[] = {
        {"{\"stream_error\":\"overloaded_error\"}", 2, "overloaded_error", "Overloaded"},
        {"{\"stream_error\":\"api_error\",\"stream_error_after\":4,\"error_message\":\"boom\"}", 5,
         "api_error", "boom"},
        {"{\"stream_error\":\"rate_limit_error\",\"stream_error_after\":0}", 1, "rate_limit_error",
         NULL},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        fixture_t *f = fixture_new();
        sim_error_t err;
        assert_int_equal(prepare(f,
                                 "{\"model\":\"c\",\"max_tokens\":50,\"stream\":true,\"messages\":"
                                 "[{\"role\":\"user\",\"content\":\"Reply with exactly: a b c\"}]}",
                                 cases[k].beh, &err),
                         0);
        json_t *evs = stream_all(f, false);
        assert_int_equal(json_array_size(evs), cases[k].events);
        size_t last = cases[k].events - 1;
        assert_string_equal(event_name(evs, last), "error");
        json_t *e = json_object_get(event_data(evs, last), "error");
        assert_string_equal(json_string_value(json_object_get(e, "type")), cases[k].type);
        if (cases[k].message)
            assert_string_equal(json_string_value(json_object_get(e, "message")), cases[k].message);
        json_decref(evs);
        fixture_free(f);
    }
}

/* ---- auth, routes, errors ---------------------------------------------------------------- */

static void test_auth(void **state)
{
    (void)state;
    yr_http_header_t hdrs[4];
    yr_http_req_t req = {.headers = hdrs};
    sim_error_t err;
    yr_str_t key = YR_STR("sk-ant-secret");
    assert_int_equal(sim_dialect_anthropic.check_auth(&req, YR_STR_NULL, &err), 0);
    assert_int_equal(sim_dialect_anthropic.check_auth(&req, key, &err), -EACCES);
    assert_int_equal(err.status, 401);
    assert_string_equal(err.type.ptr, "authentication_error");
    assert_string_equal(err.message.ptr, "x-api-key header is required");
    req.headers[0] = (yr_http_header_t){YR_STR("X-Api-Key"), YR_STR("sk-ant-secret")};
    req.nheaders = 1;
    assert_int_equal(sim_dialect_anthropic.check_auth(&req, key, &err), 0);
    req.headers[0].value = YR_STR("sk-ant-wrong");
    assert_int_equal(sim_dialect_anthropic.check_auth(&req, key, &err), -EACCES);
    assert_string_equal(err.message.ptr, "invalid x-api-key");
    /* a Bearer token is not how Anthropic authenticates */
    req.headers[0] = (yr_http_header_t){YR_STR("Authorization"), YR_STR("Bearer sk-ant-secret")};
    assert_int_equal(sim_dialect_anthropic.check_auth(&req, key, &err), -EACCES);
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
        {HTTP_POST, "/v1/messages", SIM_ROUTE_CHAT},
        {HTTP_POST, "/messages", SIM_ROUTE_CHAT},
        {HTTP_POST, "/anthropic/v1/messages", SIM_ROUTE_CHAT},
        {HTTP_GET, "/v1/messages", SIM_ROUTE_NONE},
        {HTTP_POST, "/v1/chat/completions", SIM_ROUTE_NONE},
        {HTTP_POST, "/v1/messages/count_tokens", SIM_ROUTE_CHAT},
        {HTTP_POST, "/v1/messages/batches", SIM_ROUTE_NONE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        req.method = cases[i].method;
        req.path = yr_str(cases[i].path);
        assert_int_equal(sim_dialect_anthropic.route(&req), cases[i].route);
    }
}

static void test_errors(void **state)
{
    (void)state;
    static const struct {
        int status;
        const char *type;
    } map[] = {
        {400, "invalid_request_error"},
        {401, "authentication_error"},
        {403, "permission_error"},
        {404, "not_found_error"},
        {413, "request_too_large"},
        {429, "rate_limit_error"},
        {500, "api_error"},
        {502, "api_error"},
        {529, "overloaded_error"},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        sim_error_t err;
        sim_dialect_anthropic.error_defaults(map[i].status, &err);
        assert_string_equal(err.type.ptr, map[i].type);
        yr_buf_t b;
        yr_buf_init(&b, 4096);
        assert_int_equal(sim_dialect_anthropic.render_error(&err, &b), 0);
        json_t *v = json_loadb(b.data, b.len, 0, NULL);
        assert_non_null(v);
        assert_string_equal(json_string_value(json_object_get(v, "type")), "error");
        json_t *e = json_object_get(v, "error");
        assert_string_equal(json_string_value(json_object_get(e, "type")), map[i].type);
        assert_true(json_string_length(json_object_get(e, "message")) > 0);
        assert_int_equal(json_object_size(e), 2);
        json_decref(v);
        yr_buf_free(&b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_version_header_required),
        cmocka_unit_test(test_render_text),
        cmocka_unit_test(test_render_tools_and_limits),
        cmocka_unit_test(test_render_thinking),
        cmocka_unit_test(test_stream_text),
        cmocka_unit_test(test_stream_tools_and_thinking),
        cmocka_unit_test(test_stream_error),
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
