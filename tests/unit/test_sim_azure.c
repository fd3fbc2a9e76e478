/* The simulator's Azure OpenAI dialect: routing of both API shapes, the
 * api-version and api-key rules with Azure's own error bodies, the model
 * from the deployment path, the content filter results on answers and
 * streams, and the content-filter 400.
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

#include "../../sim/azure.c"
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
    f->req.headers = f->hdrs;
    f->req.method = HTTP_POST;
    f->req.path = yr_str(path);
    f->req.query = yr_str(query);
    f->x.sim = &f->sim;
    f->x.req = &f->req;
    f->x.pool = f->pool;
    f->x.dialect = &sim_dialect_azure;
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

static void add_header(fixture_t *f, const char *name, const char *value)
{
    f->hdrs[f->req.nheaders++] = (yr_http_header_t){yr_str(name), yr_str(value)};
}

/* Parses body as the request (with a behaviour) and builds the reply. */
static void prepare(fixture_t *f, const char *body, const char *behaviour)
{
    f->x.body = json_loads(body, 0, NULL);
    assert_non_null(f->x.body);
    if (behaviour != NULL) {
        json_t *b = json_loads(behaviour, 0, NULL);
        char why[256];
        assert_int_equal(sim_behaviour_parse(b, &f->x.beh, why, sizeof(why)), 0);
        json_decref(b);
    }
    sim_error_t err;
    int rc = sim_dialect_azure.parse(&f->x, f->x.body, &err);
    if (rc != 0)
        fail_msg("parse: %s", err.msgbuf);
    assert_int_equal(sim_reply_build(&f->x), 0);
}

static json_t *render_error(const sim_error_t *err)
{
    yr_buf_t b;
    yr_buf_init(&b, 1 << 16);
    assert_int_equal(sim_dialect_azure.render_error(err, &b), 0);
    json_t *v = json_loadb(b.data, b.len, 0, NULL);
    assert_non_null(v);
    yr_buf_free(&b);
    return v;
}

#define BODY                                                                                       \
    "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"Reply with exactly: a b\"}]}"
#define CLASSIC "/openai/deployments/my-dep/chat/completions"
#define V1 "/openai/v1/chat/completions"

/* ---- routing, api-version, auth ------------------------------------------------- */

static void test_route(void **state)
{
    (void)state;
    static const struct {
        int method;
        const char *path;
        sim_route_t route;
    } cases[] = {
        {HTTP_POST, CLASSIC, SIM_ROUTE_CHAT},
        {HTTP_POST, "/openai/deployments/a%2Fb/chat/completions", SIM_ROUTE_CHAT},
        {HTTP_POST, V1, SIM_ROUTE_CHAT},
        {HTTP_POST, "/openai/deployments//chat/completions", SIM_ROUTE_NONE},
        {HTTP_POST, "/openai/deployments/a/b/chat/completions", SIM_ROUTE_NONE},
        {HTTP_POST, "/v1/chat/completions", SIM_ROUTE_NONE}, /* OpenAI's */
        {HTTP_GET, V1, SIM_ROUTE_NONE},
        {HTTP_GET, "/openai/v1/models", SIM_ROUTE_NONE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        yr_http_req_t req = {.method = cases[i].method, .path = yr_str(cases[i].path)};
        if (az_route(&req) != cases[i].route)
            fail_msg("case %zu: %s", i, cases[i].path);
    }
}

static void test_api_version(void **state)
{
    (void)state;
    static const struct {
        const char *path, *query;
        int status; /* 0: accepted */
        const char *code;
    } cases[] = {
        {CLASSIC, "api-version=2024-10-21", 0, NULL},
        {CLASSIC, "x=1&api-version=2025-04-01-preview", 0, NULL},
        {CLASSIC, "", 404, "404"},
        {CLASSIC, "api-versions=2024-10-21", 404, "404"},
        {CLASSIC, "api-version=", 400, "BadRequest"},
        {CLASSIC, "api-version=v1", 400, "BadRequest"},
        {CLASSIC, "api-version=2024-10-21-beta", 400, "BadRequest"},
        {V1, "", 0, NULL},
        {V1, "api-version=preview", 0, NULL},
        {V1, "api-version=latest", 0, NULL},
        {V1, "api-version=2024-10-21", 400, "BadRequest"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        yr_http_req_t req = {
            .method = HTTP_POST, .path = yr_str(cases[i].path), .query = yr_str(cases[i].query)};
        sim_error_t err;
        int rc = az_check_auth(&req, YR_STR_NULL, &err);
        if ((rc == 0) != (cases[i].status == 0))
            fail_msg("case %zu: rc %d", i, rc);
        if (rc != 0) {
            assert_int_equal(err.status, cases[i].status);
            assert_true(yr_str_eq(err.code, yr_str(cases[i].code)));
        }
    }
    /* The front door's shape: only a code and a message. */
    yr_http_req_t req = {.method = HTTP_POST, .path = YR_STR(CLASSIC)};
    sim_error_t err;
    assert_int_not_equal(az_check_auth(&req, YR_STR_NULL, &err), 0);
    json_t *v = render_error(&err);
    json_t *want =
        json_pack("{s:{s:s, s:s}}", "error", "code", "404", "message", "Resource not found");
    assert_true(json_equal(v, want));
    json_decref(v);
    json_decref(want);
}

static void test_auth(void **state)
{
    (void)state;
    static const struct {
        const char *name, *value;
        bool ok;
        const char *says;
    } cases[] = {
        {"api-key", "k-123", true, NULL},
        {"API-Key", " k-123 ", true, NULL},
        {"api-key", "nope", false, "invalid subscription key"},
        {NULL, NULL, false, "missing subscription key"},
        {"authorization", "Bearer k-123", false, "Access token is missing"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fixture_t *f = fixture_new(V1, "");
        if (cases[i].name != NULL)
            add_header(f, cases[i].name, cases[i].value);
        sim_error_t err;
        int rc = az_check_auth(&f->req, YR_STR("k-123"), &err);
        if ((rc == 0) != cases[i].ok)
            fail_msg("case %zu: rc %d", i, rc);
        if (!cases[i].ok) {
            assert_int_equal(err.status, 401);
            assert_true(yr_str_eq(err.code, YR_STR("401")));
            assert_non_null(strstr(err.msgbuf, cases[i].says));
        }
        fixture_free(f);
    }
}

/* ---- the model ------------------------------------------------------------------- */

static void test_model(void **state)
{
    (void)state;
    fixture_t *f =
        fixture_new("/openai/deployments/my%20dep%2Fx/chat/completions", "api-version=2024-10-21");
    /* Classic: the deployment, and the body needs no model. */
    prepare(f, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", NULL);
    assert_true(yr_str_eq(f->x.prompt.model, YR_STR("my dep/x")));
    fixture_free(f);

    f = fixture_new(V1, "");
    prepare(f, BODY, NULL);
    assert_true(yr_str_eq(f->x.prompt.model, YR_STR("m")));
    fixture_free(f);

    f = fixture_new(V1, "");
    f->x.body = json_loads("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", 0, NULL);
    sim_error_t err;
    assert_int_equal(sim_dialect_azure.parse(&f->x, f->x.body, &err), -EINVAL);
    assert_non_null(strstr(err.msgbuf, "model"));
    fixture_free(f);
}

/* ---- answers ------------------------------------------------------------------------ */

static void test_render(void **state)
{
    (void)state;
    fixture_t *f = fixture_new(CLASSIC, "api-version=2024-10-21");
    prepare(f, BODY, NULL);
    yr_buf_t b;
    yr_buf_init(&b, 1 << 20);
    assert_int_equal(sim_dialect_azure.render(&f->x, &b), 0);
    json_t *v = json_loadb(b.data, b.len, 0, NULL);
    assert_non_null(v);
    assert_string_equal(json_string_value(json_object_get(v, "model")), "my-dep");
    json_t *ch = json_array_get(json_object_get(v, "choices"), 0);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(ch, "message"), "content")), "a b");
    json_t *cfr = json_object_get(ch, "content_filter_results");
    assert_true(json_is_false(json_object_get(json_object_get(cfr, "violence"), "filtered")));
    assert_non_null(json_object_get(cfr, "protected_material_text"));
    json_t *pfr = json_array_get(json_object_get(v, "prompt_filter_results"), 0);
    assert_non_null(json_object_get(json_object_get(pfr, "content_filter_results"), "jailbreak"));
    json_decref(v);
    yr_buf_free(&b);
    fixture_free(f);

    /* Filtered output: the category flagged, finish_reason content_filter. */
    f = fixture_new(V1, "");
    prepare(f, BODY, "{\"finish_reason\":\"content_filter\",\"content_filter\":\"hate\"}");
    yr_buf_init(&b, 1 << 20);
    assert_int_equal(sim_dialect_azure.render(&f->x, &b), 0);
    v = json_loadb(b.data, b.len, 0, NULL);
    ch = json_array_get(json_object_get(v, "choices"), 0);
    assert_string_equal(json_string_value(json_object_get(ch, "finish_reason")), "content_filter");
    cfr = json_object_get(ch, "content_filter_results");
    assert_true(json_is_true(json_object_get(json_object_get(cfr, "hate"), "filtered")));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(cfr, "hate"), "severity")), "medium");
    json_decref(v);
    yr_buf_free(&b);
    fixture_free(f);
}

static void test_stream(void **state)
{
    (void)state;
    fixture_t *f = fixture_new(CLASSIC, "api-version=2024-10-21");
    prepare(f,
            "{\"model\":\"m\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
            "\"messages\":[{\"role\":\"user\",\"content\":\"Reply with exactly: a b\"}]}",
            NULL);
    f->x.dstate = yr_pcalloc(f->pool, sim_dialect_azure.stream_state_size);
    size_t expected = sim_dialect_azure.stream_events(&f->x);
    yr_buf_t b, text;
    yr_buf_init(&b, 1 << 20);
    yr_buf_init(&text, 1 << 10);
    json_t *events = json_array();
    int rc;
    size_t n = 0;
    do {
        yr_buf_reset(&b);
        rc = sim_dialect_azure.stream_next(&f->x, &b);
        assert_true(rc == SIM_EVENT || rc == SIM_EVENT_LAST);
        assert_true(yr_str_has_prefix((yr_str_t){b.data, b.len}, YR_STR("data: ")));
        n++;
        if (rc == SIM_EVENT_LAST) {
            assert_string_equal(b.data, "data: [DONE]\n\n");
            break;
        }
        json_t *v = json_loadb(b.data + 6, b.len - 8, 0, NULL);
        assert_non_null(v);
        json_array_append_new(events, v);
        const char *c = json_string_value(json_object_get(
            json_object_get(json_array_get(json_object_get(v, "choices"), 0), "delta"), "content"));
        if (c != NULL)
            assert_int_equal(yr_buf_append_str(&text, yr_str(c)), 0);
    } while (n < 100);
    assert_int_equal(n, expected);
    assert_string_equal(text.data, "a b");
    /* role, 2 words, finish, annotation, usage after the prompt chunk */
    assert_int_equal(json_array_size(events), 7);
    json_t *first = json_array_get(events, 0);
    assert_int_equal(json_array_size(json_object_get(first, "choices")), 0);
    assert_string_equal(json_string_value(json_object_get(first, "id")), "");
    assert_non_null(json_object_get(first, "prompt_filter_results"));
    json_t *fin = json_array_get(json_object_get(json_array_get(events, 4), "choices"), 0);
    assert_string_equal(json_string_value(json_object_get(fin, "finish_reason")), "stop");
    json_t *ann = json_array_get(json_object_get(json_array_get(events, 5), "choices"), 0);
    assert_null(json_object_get(ann, "delta"));
    assert_true(json_is_null(json_object_get(ann, "finish_reason")));
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(ann, "content_filter_offsets"), "end_offset")),
                     3);
    json_t *usage = json_array_get(events, 6);
    assert_int_equal(json_array_size(json_object_get(usage, "choices")), 0);
    assert_true(json_is_object(json_object_get(usage, "usage")));
    json_decref(events);
    yr_buf_free(&b);
    yr_buf_free(&text);
    fixture_free(f);
}

/* A scripted stream_error: an error object where the next chunk would be. */
static void test_stream_error(void **state)
{
    (void)state;
    fixture_t *f = fixture_new(V1, "");
    prepare(
        f, "{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
        "{\"stream_error\":\"server_error\",\"stream_error_after\":2}");
    f->x.dstate = yr_pcalloc(f->pool, sim_dialect_azure.stream_state_size);
    yr_buf_t b;
    yr_buf_init(&b, 1 << 20);
    for (int i = 0; i < 2; i++) {
        yr_buf_reset(&b);
        assert_int_equal(sim_dialect_azure.stream_next(&f->x, &b), SIM_EVENT);
        f->x.events++; /* the machinery counts what it wrote */
    }
    yr_buf_reset(&b);
    assert_int_equal(sim_dialect_azure.stream_next(&f->x, &b), SIM_EVENT_LAST);
    json_t *v = json_loadb(b.data + 6, b.len - 8, 0, NULL);
    assert_non_null(v);
    json_t *e = json_object_get(v, "error");
    assert_string_equal(json_string_value(json_object_get(e, "type")), "server_error");
    assert_non_null(
        strstr(json_string_value(json_object_get(e, "message")), "server had an error"));
    json_decref(v);
    yr_buf_free(&b);
    fixture_free(f);
}

/* ---- errors ---------------------------------------------------------------------------- */

static void test_errors(void **state)
{
    (void)state;
    sim_error_t err;
    az_filter_error(YR_STR("jailbreak"), &err);
    json_t *v = render_error(&err);
    json_t *e = json_object_get(v, "error");
    assert_string_equal(json_string_value(json_object_get(e, "code")), "content_filter");
    assert_string_equal(json_string_value(json_object_get(e, "param")), "prompt");
    assert_true(json_is_null(json_object_get(e, "type")));
    assert_int_equal(json_integer_value(json_object_get(e, "status")), 400);
    json_t *inner = json_object_get(e, "innererror");
    assert_string_equal(json_string_value(json_object_get(inner, "code")),
                        "ResponsibleAIPolicyViolation");
    json_t *jb = json_object_get(json_object_get(inner, "content_filter_result"), "jailbreak");
    assert_true(json_is_true(json_object_get(jb, "detected")));
    json_decref(v);

    static const struct {
        int status;
        const char *code;
    } defaults[] = {{401, "401"}, {404, "DeploymentNotFound"}, {429, "429"}};
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
        az_error_defaults(defaults[i].status, &err);
        v = render_error(&err);
        e = json_object_get(v, "error");
        assert_int_equal(json_object_size(e), 2);
        assert_string_equal(json_string_value(json_object_get(e, "code")), defaults[i].code);
        json_decref(v);
    }
    /* The rest, and the model's own validation, keep OpenAI's shape. */
    az_error_defaults(500, &err);
    v = render_error(&err);
    assert_string_equal(json_string_value(json_object_get(json_object_get(v, "error"), "type")),
                        "server_error");
    json_decref(v);

    sim_behaviour_t b;
    sim_behaviour_init(&b);
    json_t *bad = json_pack("{s:s}", "content_filter", "rude");
    char why[256];
    assert_int_equal(sim_behaviour_parse(bad, &b, why, sizeof(why)), -EINVAL);
    assert_non_null(strstr(why, "content_filter"));
    json_decref(bad);
    sim_behaviour_clear(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_route),        cmocka_unit_test(test_api_version),
        cmocka_unit_test(test_auth),         cmocka_unit_test(test_model),
        cmocka_unit_test(test_render),       cmocka_unit_test(test_stream),
        cmocka_unit_test(test_stream_error), cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
