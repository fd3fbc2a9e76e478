/* The simulator's Gemini dialect: routes and auth, validation with the
 * API's messages (unknown fields, schema keywords, thinking knobs, function
 * responses, Gemini 3 thought signatures), the GenerateContentResponse, the
 * SSE stream (framing, cumulative usage, one call per event, where the
 * finishReason goes) and the error shape with RetryInfo / QuotaFailure.
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

#include "../../sim/gemini.c"
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

typedef struct {
    sim_t sim;
    yr_http_req_t req;
    yr_http_header_t hdrs[4];
    sim_exchange_t x;
    yr_pool_t *pool;
} fixture_t;

static fixture_t *fixture_new(const char *path, const char *query)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->pool = yr_pool_create(4096);
    f->sim.queue = json_array();
    f->req.pool = f->pool;
    f->req.method = HTTP_POST;
    f->req.path = yr_str(path);
    f->req.query = yr_str(query);
    f->req.headers = f->hdrs;
    f->x.sim = &f->sim;
    f->x.req = &f->req;
    f->x.pool = f->pool;
    f->x.dialect = &sim_dialect_gemini;
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

#define GEN25 "/v1beta/models/gemini-2.5-flash:generateContent"
#define GEN3 "/v1beta/models/gemini-3-pro-preview:generateContent"
#define STREAM25 "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
#define STREAM3 "/v1beta/models/gemini-3-pro-preview:streamGenerateContent"

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
    int rc = sim_dialect_gemini.parse(&f->x, f->x.body, err);
    if (rc == 0)
        assert_int_equal(sim_reply_build(&f->x), 0);
    return rc;
}

static json_t *render(fixture_t *f)
{
    yr_buf_t b;
    yr_buf_init(&b, SIM_MAX_RESPONSE);
    assert_int_equal(sim_dialect_gemini.render(&f->x, &b), 0);
    json_t *v = json_loadb(b.data, b.len, 0, NULL);
    assert_non_null(v);
    yr_buf_free(&b);
    return v;
}

/* Every event "data: {json}\r\n\r\n"; returns the parsed objects. */
static json_t *stream_all(fixture_t *f)
{
    f->x.dstate = yr_pcalloc(f->pool, sim_dialect_gemini.stream_state_size);
    json_t *events = json_array();
    yr_buf_t b;
    yr_buf_init(&b, SIM_MAX_RESPONSE);
    for (int guard = 0; guard < 1000; guard++) {
        yr_buf_reset(&b);
        int rc = sim_dialect_gemini.stream_next(&f->x, &b);
        assert_true(rc == SIM_EVENT || rc == SIM_EVENT_LAST);
        f->x.events++;
        assert_memory_equal(b.data, "data: ", 6);
        assert_memory_equal(b.data + b.len - 4, "\r\n\r\n", 4);
        json_t *d = json_loadb(b.data + 6, b.len - 10, 0, NULL);
        assert_non_null(d);
        json_array_append_new(events, d);
        if (rc == SIM_EVENT_LAST)
            break;
    }
    yr_buf_free(&b);
    return events;
}

#define USER "{\"role\":\"user\",\"parts\":[{\"text\":\"Reply with exactly: a b c\"}]}"
#define CALL(sig) "{\"role\":\"model\",\"parts\":[{\"functionCall\":{\"name\":\"f\",\"args\":{}}" sig "}]}"
#define ANSWER "{\"role\":\"user\",\"parts\":[{\"functionResponse\":{\"name\":\"f\",\"response\":{\"r\":1}}}]}"

static void test_validation(void **state)
{
    (void)state;
    static const struct {
        const char *path;
        const char *body;
        const char *message; /* substring of the error, or NULL when valid */
    } cases[] = {
        {GEN25, "{\"contents\":[" USER "]}", NULL},
        {GEN25, "{\"contents\":[" USER "],\"temperature\":1}", "Unknown name \"temperature\""},
        {GEN25, "{\"contents\":[]}", "contents is not specified"},
        {GEN25, "{\"contents\":[{\"role\":\"assistant\",\"parts\":[{\"text\":\"x\"}]}]}",
         "valid role"},
        {GEN25, "{\"contents\":[{\"role\":\"user\",\"parts\":[]}]}", "must not be empty"},
        {GEN25, "{\"contents\":[{\"parts\":[{\"txt\":\"x\"}]}]}", "Unknown name \"txt\""},
        {GEN25, "{\"contents\":[" USER "],\"generationConfig\":{\"max_tokens\":3}}",
         "Unknown name \"max_tokens\" at 'generation_config'"},
        {GEN25,
         "{\"contents\":[" USER "],\"tools\":[{\"functionDeclarations\":[{\"name\":\"f\","
         "\"parameters\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}},"
         "\"additionalProperties\":false}}]}]}",
         "Unknown name \"additionalProperties\" at 'tools[0].function_declarations[0].parameters'"},
        {GEN25,
         "{\"contents\":[" USER "],\"tools\":[{\"functionDeclarations\":[{\"name\":\"f\","
         "\"parameters\":{\"type\":\"OBJECT\",\"properties\":{\"a\":{\"type\":[\"string\","
         "\"null\"]}}}}]}]}",
         "a list of types"},
        {GEN25,
         "{\"contents\":[" USER "],\"tools\":[{\"functionDeclarations\":[{\"name\":\"f\","
         "\"parameters\":{\"type\":\"OBJECT\",\"properties\":{\"a\":{\"$ref\":\"#/x\"}}}}]}]}",
         "Unknown name \"$ref\""},
        {GEN25,
         "{\"contents\":[" USER "],\"tools\":[{\"functionDeclarations\":[{\"name\":\"f\","
         "\"parameters\":{\"type\":\"OBJECT\",\"properties\":{}}}]}]}",
         "should be non-empty for OBJECT type"},
        {GEN25,
         "{\"contents\":[" USER "],\"tools\":[{\"functionDeclarations\":[{\"name\":\"f\","
         "\"parameters\":{\"type\":\"OBJECT\",\"properties\":{\"a\":{\"description\":\"x\"}}}}]}]}",
         "properties[a].value.type: must be specified"},
        {GEN25,
         "{\"contents\":[" USER "],\"tools\":[{\"functionDeclarations\":[{\"name\":\"f\","
         "\"parameters\":{\"type\":\"OBJECT\",\"properties\":{\"a\":{\"type\":\"ARRAY\"}}}}]}]}",
         "properties[a].value.items: missing field."},
        {GEN25,
         "{\"contents\":[" USER "],\"tools\":[{\"functionDeclarations\":[{\"name\":\"f\","
         "\"parameters\":{\"type\":\"OBJECT\",\"properties\":{\"a\":{\"anyOf\":[{\"type\":"
         "\"STRING\"}],\"items\":{\"type\":\"STRING\"}}}}}]}]}",
         "field predicate failed: $type == Type.ARRAY"},
        {GEN25,
         "{\"contents\":[" USER "],\"tools\":[{\"functionDeclarations\":[{\"name\":\"f\","
         "\"parameters\":{\"type\":\"OBJECT\",\"properties\":{\"a\":{\"type\":\"STRING\"}},"
         "\"required\":[\"b\"]}}]}]}",
         "parameters.required[0]: property is not defined"},
        {GEN25,
         "{\"contents\":[" USER "],\"tools\":[{\"functionDeclarations\":[{\"name\":\"9f\"}]}]}",
         "Invalid function name"},
        {GEN25,
         "{\"contents\":[" USER "],\"generationConfig\":{\"responseMimeType\":\"application/json\","
         "\"responseSchema\":{\"type\":\"OBJECT\",\"properties\":{\"a\":{\"type\":\"STRING\","
         "\"const\":\"x\"}}}}}",
         "Unknown name \"const\""},
        {GEN25,
         "{\"contents\":[" USER "],\"generationConfig\":{\"thinkingConfig\":{\"thinkingBudget\":"
         "1024,\"thinkingLevel\":\"low\"}}}",
         "only one of thinking budget and thinking level"},
        {GEN25,
         "{\"contents\":[" USER "],\"generationConfig\":{\"thinkingConfig\":{\"thinkingLevel\":"
         "\"low\"}}}",
         "Thinking level is not supported"},
        {GEN3,
         "{\"contents\":[" USER "],\"generationConfig\":{\"thinkingConfig\":{\"thinkingLevel\":"
         "\"low\"}}}",
         NULL},
        {GEN25, "{\"contents\":[" USER "," CALL("") ",{\"role\":\"user\",\"parts\":[{\"text\":\"x\"}]}]}",
         "number of function response parts is equal"},
        {GEN25, "{\"contents\":[" USER "," CALL("") "," ANSWER "]}", NULL},
        {GEN3, "{\"contents\":[" USER "," CALL("") "," ANSWER "]}",
         "missing a thought_signature in functionCall parts"},
        {GEN3, "{\"contents\":[" USER "," CALL(",\"thoughtSignature\":\"Q0FGRQ==\"") "," ANSWER "]}",
         NULL},
        {GEN3,
         "{\"contents\":[" USER "," CALL(",\"thoughtSignature\":\"skip_thought_signature_validator\"")
         "," ANSWER "]}",
         NULL},
        {GEN3, "{\"contents\":[" USER "," CALL(",\"thoughtSignature\":\"not base64!\"") "," ANSWER "]}",
         "Base64 decoding failed"},
        /* an earlier turn is not checked */
        {GEN3, "{\"contents\":[" USER "," CALL("") "," ANSWER "," USER "]}", NULL},
        {STREAM25, "{\"contents\":[" USER "]}", "alt=sse"},
        {GEN25,
         "{\"contents\":[" USER "],\"toolConfig\":{\"functionCallingConfig\":{\"mode\":\"AUTO\","
         "\"allowedFunctionNames\":[\"f\"]}}}",
         "only be set when the Mode is ANY"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fixture_t *f = fixture_new(cases[i].path, "");
        sim_error_t err = {0};
        int rc = prepare(f, cases[i].body, NULL, &err);
        if (cases[i].message == NULL) {
            if (rc != 0)
                fail_msg("case %zu: unexpected error: %s", i, err.msgbuf);
        } else {
            if (rc != -EINVAL)
                fail_msg("case %zu: accepted, expected '%s'", i, cases[i].message);
            assert_int_equal(err.status, 400);
            assert_string_equal(err.type.ptr, "INVALID_ARGUMENT");
            if (strstr(err.msgbuf, cases[i].message) == NULL)
                fail_msg("case %zu: '%s' does not contain '%s'", i, err.msgbuf, cases[i].message);
        }
        fixture_free(f);
    }
}

static void test_routes_and_auth(void **state)
{
    (void)state;
    fixture_t *f = fixture_new(GEN25, "");
    assert_int_equal(gm_route(&f->req), SIM_ROUTE_CHAT);
    f->req.path = YR_STR("/v1beta/models/:generateContent");
    assert_int_equal(gm_route(&f->req), SIM_ROUTE_NONE);
    f->req.path = YR_STR("/v1/chat/completions");
    assert_int_equal(gm_route(&f->req), SIM_ROUTE_NONE);
    f->req.path = YR_STR("/v1beta/models/gemini-2.5-flash:countTokens");
    assert_int_equal(gm_route(&f->req), SIM_ROUTE_CHAT);
    f->req.method = HTTP_GET;
    assert_int_equal(gm_route(&f->req), SIM_ROUTE_NONE);

    sim_error_t err = {0};
    assert_int_equal(gm_check_auth(&f->req, YR_STR(""), &err), 0);
    assert_int_equal(gm_check_auth(&f->req, YR_STR("k1"), &err), -EACCES);
    assert_int_equal(err.status, 403);
    f->hdrs[0] = (yr_http_header_t){YR_STR("x-goog-api-key"), YR_STR("wrong")};
    f->req.nheaders = 1;
    assert_int_equal(gm_check_auth(&f->req, YR_STR("k1"), &err), -EACCES);
    assert_int_equal(err.status, 400);
    assert_string_equal(err.code.ptr, "API_KEY_INVALID");
    f->hdrs[0].value = YR_STR("k1");
    assert_int_equal(gm_check_auth(&f->req, YR_STR("k1"), &err), 0);
    f->req.nheaders = 0;
    f->req.query = YR_STR("alt=sse&key=k1");
    assert_int_equal(gm_check_auth(&f->req, YR_STR("k1"), &err), 0);
    fixture_free(f);
}

static void test_render_text_thoughts_calls(void **state)
{
    (void)state;
    fixture_t *f = fixture_new(GEN25, "");
    sim_error_t err;
    assert_int_equal(prepare(f, "{\"contents\":[" USER "],\"generationConfig\":{\"thinkingConfig\":"
                                "{\"includeThoughts\":true}}}",
                             NULL, &err),
                     0);
    json_t *v = render(f);
    json_t *c = json_array_get(json_object_get(v, "candidates"), 0);
    json_t *parts = json_object_get(json_object_get(c, "content"), "parts");
    assert_int_equal(json_array_size(parts), 2);
    assert_true(json_is_true(json_object_get(json_array_get(parts, 0), "thought")));
    assert_string_equal(json_string_value(json_object_get(json_array_get(parts, 1), "text")), "a b c");
    assert_string_equal(json_string_value(json_object_get(c, "finishReason")), "STOP");
    json_t *u = json_object_get(v, "usageMetadata");
    assert_int_equal(json_integer_value(json_object_get(u, "candidatesTokenCount")), 3);
    assert_true(json_integer_value(json_object_get(u, "thoughtsTokenCount")) > 0);
    assert_int_equal(json_integer_value(json_object_get(u, "totalTokenCount")),
                     json_integer_value(json_object_get(u, "promptTokenCount")) + 3 +
                         json_integer_value(json_object_get(u, "thoughtsTokenCount")));
    json_decref(v);
    fixture_free(f);

    f = fixture_new(GEN3, "");
    assert_int_equal(prepare(f, "{\"contents\":[" USER "],\"tools\":[{\"functionDeclarations\":[{"
                                "\"name\":\"f\"}]}]}",
                             "{\"tool_calls\":[{\"name\":\"f\",\"arguments\":{\"a\":1}},{\"name\":"
                             "\"f\",\"id\":\"fc_2\"}]}",
                             &err),
                     0);
    v = render(f);
    parts = json_object_get(
        json_object_get(json_array_get(json_object_get(v, "candidates"), 0), "content"), "parts");
    assert_int_equal(json_array_size(parts), 2);
    json_t *p0 = json_array_get(parts, 0), *p1 = json_array_get(parts, 1);
    assert_non_null(json_object_get(p0, "thoughtSignature")); /* the first call of the step */
    assert_null(json_object_get(p1, "thoughtSignature"));
    assert_null(json_object_get(json_object_get(p0, "functionCall"), "id"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(p1, "functionCall"), "id")),
                        "fc_2");
    json_decref(v);
    fixture_free(f);
}

static void test_render_block_and_empty_candidate(void **state)
{
    (void)state;
    fixture_t *f = fixture_new(GEN25, "");
    sim_error_t err;
    assert_int_equal(prepare(f, "{\"contents\":[" USER "]}", "{\"block_reason\":\"SAFETY\"}", &err), 0);
    json_t *v = render(f);
    assert_null(json_object_get(v, "candidates"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(v, "promptFeedback"),
                                                          "blockReason")),
                        "SAFETY");
    json_decref(v);
    fixture_free(f);

    f = fixture_new(GEN25, "");
    assert_int_equal(prepare(f, "{\"contents\":[" USER "]}", "{\"empty_candidate\":true}", &err), 0);
    v = render(f);
    json_t *c = json_array_get(json_object_get(v, "candidates"), 0);
    assert_null(json_object_get(json_object_get(c, "content"), "parts"));
    assert_string_equal(json_string_value(json_object_get(c, "finishReason")), "MAX_TOKENS");
    json_decref(v);
    fixture_free(f);
}

static void test_stream_shapes(void **state)
{
    (void)state;
    /* 2.5: one event per word, cumulative usage, the finish on the last one */
    fixture_t *f = fixture_new(STREAM25, "alt=sse");
    sim_error_t err;
    assert_int_equal(prepare(f, "{\"contents\":[" USER "]}", NULL, &err), 0);
    json_t *evs = stream_all(f);
    assert_int_equal(json_array_size(evs), 3);
    assert_int_equal(json_array_size(evs), sim_dialect_gemini.stream_events(&f->x));
    int64_t prev = -1;
    char text[64] = "";
    size_t i;
    json_t *e;
    json_array_foreach(evs, i, e)
    {
        json_t *u = json_object_get(e, "usageMetadata");
        assert_non_null(u);
        int64_t n = json_integer_value(json_object_get(u, "candidatesTokenCount"));
        assert_true(n >= prev);
        prev = n;
        json_t *c = json_array_get(json_object_get(e, "candidates"), 0);
        const char *t = json_string_value(
            json_object_get(json_array_get(json_object_get(json_object_get(c, "content"), "parts"), 0),
                            "text"));
        strncat(text, t ? t : "", sizeof(text) - strlen(text) - 1);
        assert_true((i == 2) == (json_object_get(c, "finishReason") != NULL));
    }
    assert_string_equal(text, "a b c");
    assert_int_equal(prev, 3);
    json_decref(evs);
    fixture_free(f);

    /* 3 with parallel calls: one call per event at parts[0], STOP alone */
    f = fixture_new(STREAM3, "alt=sse");
    assert_int_equal(prepare(f, "{\"contents\":[" USER "],\"tools\":[{\"functionDeclarations\":[{"
                                "\"name\":\"f\"}]}]}",
                             "{\"tool_calls\":[{\"name\":\"f\"},{\"name\":\"f\"}]}", &err),
                     0);
    evs = stream_all(f);
    assert_int_equal(json_array_size(evs), 3);
    assert_int_equal(json_array_size(evs), sim_dialect_gemini.stream_events(&f->x));
    for (i = 0; i < 2; i++) {
        json_t *parts = json_object_get(
            json_object_get(json_array_get(json_object_get(json_array_get(evs, i), "candidates"), 0),
                            "content"),
            "parts");
        assert_int_equal(json_array_size(parts), 1);
        assert_non_null(json_object_get(json_array_get(parts, 0), "functionCall"));
        assert_true((i == 0) == (json_object_get(json_array_get(parts, 0), "thoughtSignature") != NULL));
    }
    json_t *last = json_array_get(json_object_get(json_array_get(evs, 2), "candidates"), 0);
    assert_string_equal(json_string_value(json_object_get(last, "finishReason")), "STOP");
    json_decref(evs);
    fixture_free(f);

    /* an error in place of the rest */
    f = fixture_new(STREAM25, "alt=sse");
    assert_int_equal(prepare(f, "{\"contents\":[" USER "]}",
                             "{\"stream_error\":\"UNAVAILABLE\",\"stream_error_after\":1}", &err),
                     0);
    evs = stream_all(f);
    assert_int_equal(json_array_size(evs), 2);
    json_t *ge = json_object_get(json_array_get(evs, 1), "error");
    assert_int_equal(json_integer_value(json_object_get(ge, "code")), 503);
    assert_string_equal(json_string_value(json_object_get(ge, "status")), "UNAVAILABLE");
    json_decref(evs);
    fixture_free(f);
}

static void test_error_shape(void **state)
{
    (void)state;
    sim_error_t err;
    gm_error_defaults(429, &err);
    err.retry_delay = YR_STR("57s");
    err.quota_id = YR_STR("GenerateRequestsPerDayPerProjectPerModel-FreeTier");
    yr_buf_t b;
    yr_buf_init(&b, 1 << 16);
    assert_int_equal(gm_render_error(&err, &b), 0);
    json_t *v = json_loadb(b.data, b.len, 0, NULL);
    assert_non_null(v);
    json_t *e = json_object_get(v, "error");
    assert_int_equal(json_integer_value(json_object_get(e, "code")), 429);
    assert_string_equal(json_string_value(json_object_get(e, "status")), "RESOURCE_EXHAUSTED");
    json_t *details = json_object_get(e, "details");
    assert_int_equal(json_array_size(details), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(details, 1), "retryDelay")),
                        "57s");
    assert_string_equal(
        json_string_value(json_object_get(
            json_array_get(json_object_get(json_array_get(details, 0), "violations"), 0), "quotaId")),
        "GenerateRequestsPerDayPerProjectPerModel-FreeTier");
    json_decref(v);
    yr_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_routes_and_auth),
        cmocka_unit_test(test_render_text_thoughts_calls),
        cmocka_unit_test(test_render_block_and_empty_candidate),
        cmocka_unit_test(test_stream_shapes),
        cmocka_unit_test(test_error_shape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
