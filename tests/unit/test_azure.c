/* Azure OpenAI's transport: the URL of each API shape, the headers (api-key,
 * never Authorization), the response head (retry hints, rate-limit headroom),
 * error bodies and their classification, and the stream chunks made
 * OpenAI-shaped by the Azure dialect. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "providers/azure.h"
#include "providers/provider.h"

/* ---- fixtures ------------------------------------------------------------------- */

typedef struct {
    yr_provider_conf_t provider;
    yr_route_conf_t route;
    yr_chat_req_t chat;
    yr_pool_t *pool;
    yr_call_ctx_t cx;
    yr_buf_t body;
    yr_upstream_req_t up;
} fx_t;

static fx_t *fx_new(const char *api_version, const char *deployment, const char *request)
{
    fx_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->provider = (yr_provider_conf_t){
        .name = "azure",
        .kind = YR_KIND_AZURE,
        .base_url = "https://res.openai.azure.com",
        .api_key = "az-key-123",
        .connect_timeout_ms = 5000,
        .first_byte_timeout_ms = 120000,
        .timeout_ms = 600000,
        .api_version = api_version,
    };
    f->route = (yr_route_conf_t){.provider = &f->provider, .model = deployment};
    yr_api_error_t err;
    if (yr_chat_parse(request, strlen(request), &f->chat, &err) != 0)
        fail_msg("request does not parse: %s: %s", err.message, request);
    f->pool = yr_pool_create(4096);
    assert_non_null(f->pool);
    f->cx = (yr_call_ctx_t){.pool = f->pool, .chat = &f->chat, .route = &f->route};
    yr_buf_init(&f->body, 1 << 20);
    return f;
}

static void fx_free(fx_t *f)
{
    yr_chat_free(&f->chat);
    yr_buf_free(&f->body);
    yr_pool_destroy(f->pool);
    free(f);
}

#define REQ "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"
#define REQ_STREAM                                                                                 \
    "{\"model\":\"gpt-4o\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"

static bool has_header(const yr_upstream_req_t *up, const char *line)
{
    for (size_t i = 0; up->headers[i] != NULL; i++)
        if (strcmp(up->headers[i], line) == 0)
            return true;
    return false;
}

static bool has_header_named(const yr_upstream_req_t *up, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; up->headers[i] != NULL; i++)
        if (strncasecmp(up->headers[i], name, n) == 0 && up->headers[i][n] == ':')
            return true;
    return false;
}

/* ---- URLs --------------------------------------------------------------------------- */

static void test_urls(void **state)
{
    (void)state;
    static const struct {
        const char *version, *deployment, *path, *url;
    } cases[] = {
        {"v1", "my-gpt4o", "/chat/completions",
         "https://res.openai.azure.com/openai/v1/chat/completions"},
        {NULL, "my-gpt4o", "/chat/completions",
         "https://res.openai.azure.com/openai/v1/chat/completions"},
        {"2024-10-21", "my-gpt4o", "/chat/completions",
         "https://res.openai.azure.com/openai/deployments/my-gpt4o/chat/"
         "completions?api-version=2024-10-21"},
        {"2025-04-01-preview", "gpt-4o.mini_2~x", "/embeddings",
         "https://res.openai.azure.com/openai/deployments/gpt-4o.mini_2~x/"
         "embeddings?api-version=2025-04-01-preview"},
        /* A deployment is one path segment, whatever the config says. */
        {"2024-10-21", "a b/c?d#é", "/chat/completions",
         "https://res.openai.azure.com/openai/deployments/a%20b%2Fc%3Fd%23%C3%A9/chat/"
         "completions?api-version=2024-10-21"},
    };
    yr_pool_t *pool = yr_pool_create(1024);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        yr_provider_conf_t p = {.base_url = "https://res.openai.azure.com",
                                .api_version = cases[i].version};
        char *url = yr_azure_url(pool, &p, cases[i].deployment, cases[i].path);
        assert_non_null(url);
        assert_string_equal(url, cases[i].url);
    }
    yr_pool_destroy(pool);
}

/* ---- prepare ----------------------------------------------------------------------- */

static void test_prepare_classic(void **state)
{
    (void)state;
    fx_t *f = fx_new("2024-10-21", "prod-gpt4o", REQ_STREAM);
    const char *const extra[] = {"x-ms-useragent: test", NULL};
    assert_int_equal(yr_transport_azure.prepare(&f->cx, "/chat/completions", extra, &f->up), 0);
    assert_string_equal(f->up.url, "https://res.openai.azure.com/openai/deployments/prod-gpt4o/"
                                   "chat/completions?api-version=2024-10-21");
    assert_true(has_header(&f->up, "api-key: az-key-123"));
    assert_false(has_header_named(&f->up, "Authorization"));
    assert_true(has_header(&f->up, "Content-Type: application/json"));
    assert_true(has_header(&f->up, "Accept: text/event-stream"));
    assert_true(has_header(&f->up, "User-Agent: yourouter/0.1"));
    assert_true(has_header(&f->up, "x-ms-useragent: test"));
    assert_int_equal(f->up.connect_timeout_ms, 5000);
    assert_int_equal(f->up.first_byte_timeout_ms, 120000);
    assert_int_equal(f->up.timeout_ms, 600000);
    assert_string_equal(yr_transport_azure.name, "azure");
    assert_int_equal(yr_transport_azure.framing, YR_FRAME_SSE);
    fx_free(f);
}

static void test_prepare_v1_without_key(void **state)
{
    (void)state;
    fx_t *f = fx_new("v1", "prod-gpt4o", REQ);
    f->provider.api_key = NULL; /* e.g. a gateway in front that adds the key */
    assert_int_equal(yr_transport_azure.prepare(&f->cx, "/chat/completions", NULL, &f->up), 0);
    assert_string_equal(f->up.url, "https://res.openai.azure.com/openai/v1/chat/completions");
    assert_true(has_header(&f->up, "Accept: application/json"));
    assert_false(has_header_named(&f->up, "api-key"));
    assert_false(has_header_named(&f->up, "Authorization"));
    fx_free(f);
}

/* Kind azure: OpenAI's body (the deployment as the model) over Azure's URL. */
static int kind_build(fx_t *f, const char *req)
{
    const yr_provider_kind_ops_t *k = yr_provider_kind(YR_KIND_AZURE);
    const char *path = NULL;
    const char *const *extra = NULL;
    int rc = k->dialect->pass_build(&f->cx, yr_str(req), &f->body, &f->up, &path, &extra);
    return rc < 0 ? rc : k->transport->prepare(&f->cx, path, extra, &f->up);
}

static void test_kind_build(void **state)
{
    (void)state;
    fx_t *f = fx_new("v1", "prod-gpt4o", REQ);
    const yr_provider_kind_ops_t *k = yr_provider_kind(YR_KIND_AZURE);
    assert_non_null(k);
    assert_ptr_equal(k->dialect, &yr_dialect_azure);
    assert_ptr_equal(k->transport, &yr_transport_azure);
    assert_int_equal(k->dialect->native_client, YR_DIALECT_OPENAI);
    assert_int_equal(kind_build(f, REQ), 0);
    assert_string_equal(f->up.url, "https://res.openai.azure.com/openai/v1/chat/completions");
    assert_string_equal(f->up.body, "{\"model\":\"prod-gpt4o\",\"messages\":[{\"role\":\"user\","
                                    "\"content\":\"hi\"}]}");
    assert_true(has_header(&f->up, "api-key: az-key-123"));
    assert_false(has_header_named(&f->up, "Authorization"));
    fx_free(f);

    /* Same model name upstream: the client's bytes go as they are. */
    f = fx_new("2024-10-21", "gpt-4o", REQ);
    assert_int_equal(kind_build(f, REQ), 0);
    assert_ptr_equal(f->up.body, REQ);
    assert_string_equal(f->up.url, "https://res.openai.azure.com/openai/deployments/gpt-4o/chat/"
                                   "completions?api-version=2024-10-21");
    fx_free(f);
}

/* ---- the response head ----------------------------------------------------------------- */

typedef struct {
    const char *names[4], *values[4];
} heads_t;

static yr_str_t lookup(void *arg, const char *name)
{
    const heads_t *h = arg;
    for (size_t i = 0; i < 4 && h->names[i] != NULL; i++)
        if (strcasecmp(h->names[i], name) == 0)
            return yr_str(h->values[i]);
    return YR_STR_NULL;
}

static void test_head_info(void **state)
{
    (void)state;
    yr_head_info_t info;
    heads_t h = {{"retry-after", "retry-after-ms", "x-ratelimit-remaining-requests",
                  "x-ratelimit-remaining-tokens"},
                 {"6", "5500", "0", "1200"}};
    yr_azure_head_info(429, lookup, &h, 1000, &info);
    assert_int_equal(info.status, 429);
    assert_int_equal(info.retry_after_ms, 5500); /* the finer hint wins */
    assert_int_equal(info.remaining_requests, 0);
    assert_int_equal(info.remaining_tokens, 1200);
    assert_int_equal(info.reset_requests_ms, -1);
    assert_int_equal(info.reset_tokens_ms, -1);

    heads_t secs = {{"Retry-After"}, {"6"}};
    yr_azure_head_info(429, lookup, &secs, 1000, &info);
    assert_int_equal(info.retry_after_ms, 6000);
    assert_int_equal(info.remaining_requests, -1);
    assert_int_equal(info.remaining_tokens, -1);

    heads_t junk = {{"retry-after", "x-ratelimit-remaining-tokens"}, {"soon", "-3"}};
    yr_azure_head_info(200, lookup, &junk, 1000, &info);
    assert_int_equal(info.status, 200);
    assert_int_equal(info.retry_after_ms, -1);
    assert_int_equal(info.remaining_tokens, -1);
}

/* ---- errors ------------------------------------------------------------------------------ */

#define FILTERED                                                                                   \
    "{\"error\":{\"message\":\"The response was filtered due to the prompt triggering Azure "      \
    "OpenAI's content management policy.\",\"type\":null,\"param\":\"prompt\",\"code\":"           \
    "\"content_filter\",\"status\":400,\"innererror\":{\"code\":\"ResponsibleAIPolicyViolation\"," \
    "\"content_filter_result\":{\"hate\":{\"filtered\":false,\"severity\":\"safe\"},\"violence\":" \
    "{\"filtered\":true,\"severity\":\"medium\"}}}}}"

static void test_parse_error(void **state)
{
    (void)state;
    yr_provider_error_t e;
    yr_azure_parse_error(YR_STR(FILTERED), &e);
    assert_string_equal(e.code, "content_filter");
    assert_string_equal(e.param, "prompt");
    assert_string_equal(e.type, "");
    assert_non_null(strstr(e.message, "content management policy"));
    assert_int_equal(e.retry_after_ms, -1);

    /* Only innererror names the filter. */
    yr_azure_parse_error(YR_STR("{\"error\":{\"message\":\"filtered\",\"innererror\":{\"code\":"
                                "\"ResponsibleAIPolicyViolation\"}}}"),
                         &e);
    assert_string_equal(e.code, "content_filter");

    yr_azure_parse_error(YR_STR("{\"error\":{\"code\":\"401\",\"message\":\"Access denied due to "
                                "invalid subscription key or wrong API endpoint.\"}}"),
                         &e);
    assert_string_equal(e.code, "401");
    assert_non_null(strstr(e.message, "Access denied"));

    yr_azure_parse_error(YR_STR("{\"statusCode\":401,\"message\":\"Unauthorized. Access token is "
                                "missing, invalid, audience is incorrect, or have expired.\"}"),
                         &e);
    assert_string_equal(e.code, "401");
    assert_non_null(strstr(e.message, "Unauthorized"));

    yr_azure_parse_error(YR_STR("not json"), &e);
    assert_string_equal(e.message, "");
    assert_string_equal(e.code, "");

    /* The dialect hands the code to the proxy, which gives it to the client. */
    yr_provider_error_t api;
    yr_dialect_azure.parse_error(YR_STR(FILTERED), &api);
    assert_string_equal(api.code, "content_filter");
    assert_string_equal(api.param, "prompt");
    assert_non_null(strstr(api.message, "filtered"));
}

static void test_classify(void **state)
{
    (void)state;
    static const struct {
        int status;
        const char *body;
        yr_outcome_t outcome;
    } cases[] = {
        {400, FILTERED, YR_OUT_CLIENT_ERROR},
        /* A filter verdict is the request's fault whatever the status. */
        {500, "{\"error\":{\"code\":\"content_filter\",\"message\":\"x\"}}", YR_OUT_CLIENT_ERROR},
        {400, "{\"error\":{\"code\":\"BadRequest\",\"message\":\"API version not supported\"}}",
         YR_OUT_CLIENT_ERROR},
        {401, "{\"error\":{\"code\":\"401\",\"message\":\"Access denied\"}}", YR_OUT_AUTH},
        {404, "{\"error\":{\"code\":\"DeploymentNotFound\",\"message\":\"x\"}}",
         YR_OUT_SERVER_ERROR},
        {429,
         "{\"error\":{\"code\":\"429\",\"message\":\"Requests to the ChatCompletions_Create "
         "Operation have exceeded token rate limit.\"}}",
         YR_OUT_RATE_LIMITED},
        {429, "{\"error\":{\"code\":\"insufficient_quota\",\"message\":\"x\"}}", YR_OUT_QUOTA},
        {503, "", YR_OUT_OVERLOADED},
        {500, "", YR_OUT_SERVER_ERROR},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        yr_provider_error_t e;
        yr_azure_parse_error(yr_str(cases[i].body), &e);
        yr_outcome_t o = yr_transport_azure.classify(cases[i].status, &e);
        if (o != cases[i].outcome)
            fail_msg("case %zu: %s, want %s", i, yr_outcome_name(o),
                     yr_outcome_name(cases[i].outcome));
    }
}

/* ---- stream chunks ----------------------------------------------------------------------- */

#define CFR "\"content_filter_results\":{\"hate\":{\"filtered\":false,\"severity\":\"safe\"}}"
#define PROMPT_FILTER                                                                              \
    "{\"choices\":[],\"created\":0,\"id\":\"\",\"model\":\"\",\"object\":\"\","                    \
    "\"prompt_filter_results\":[{\"prompt_index\":0," CFR "}]}"
#define HEAD                                                                                       \
    "\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\""

static void test_stream_chunks(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *out; /* NULL: relayed as it is; "": dropped */
    } cases[] = {
        {"[DONE]", NULL},
        {PROMPT_FILTER, ""},
        /* An annotation: content_filter_results and no delta. */
        {"{" HEAD ",\"choices\":[{\"index\":0,\"finish_reason\":null," CFR
         ",\"content_filter_offsets\":{\"check_offset\":0,\"start_offset\":0,\"end_offset\":9}}]}",
         ""},
        {"{" HEAD
         ",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null," CFR
         "}]}",
         NULL},
        {"{" HEAD
         ",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"content_filter\"," CFR "}]}",
         NULL},
        /* The finish without a delta: clients read choices[0].delta. */
        {"{" HEAD ",\"choices\":[{\"index\":0,\"finish_reason\":\"stop\"}]}",
         "{" HEAD ",\"choices\":[{\"delta\":{},\"index\":0,\"finish_reason\":\"stop\"}]}"},
        {"{" HEAD ",\"choices\":[{}, {\"index\":1,\"delta\":{}}]}",
         "{" HEAD ",\"choices\":[{\"delta\":{}}, {\"index\":1,\"delta\":{}}]}"},
        /* include_usage: the usage chunk has no choices either, and stays. */
        {"{" HEAD ",\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}", NULL},
        {"{" HEAD ",\"usage\":null}", NULL},
    };
    yr_buf_t scratch;
    yr_buf_init(&scratch, 1 << 16);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        yr_str_t in = yr_str(cases[i].in), out;
        assert_int_equal(yr_azure_stream_chunk(in, &scratch, &out), 0);
        if (cases[i].out == NULL) {
            assert_ptr_equal(out.ptr, in.ptr);
            assert_int_equal(out.len, in.len);
        } else if (!yr_str_eq(out, yr_str(cases[i].out))) {
            fail_msg("case %zu: got %.*s", i, (int)out.len, out.ptr);
        }
    }
    yr_str_t out;
    assert_int_equal(
        yr_azure_stream_chunk(YR_STR("{\"error\":{\"message\":\"boom\"}}"), &scratch, &out),
        -ECANCELED);
    assert_int_equal(yr_azure_stream_chunk(YR_STR("{not json"), &scratch, &out), -EINVAL);
    assert_int_equal(yr_azure_stream_chunk(YR_STR("[1]"), &scratch, &out), -EINVAL);
    yr_buf_free(&scratch);
}

/* Azure's stream passed through: the client gets OpenAI's chunks only. */
static void test_pass_stream(void **state)
{
    (void)state;
    fx_t *f = fx_new("2024-10-21", "dep", REQ_STREAM);
    static const char *const events[] = {
        PROMPT_FILTER,
        "{" HEAD ",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
        "\"finish_reason\":null,\"content_filter_results\":{}}]}",
        "{" HEAD
        ",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null," CFR
        "}]}",
        "{" HEAD ",\"choices\":[{\"index\":0,\"finish_reason\":null," CFR "}]}",
        "{" HEAD ",\"choices\":[{\"index\":0,\"finish_reason\":\"stop\"}]}",
        "[DONE]",
    };
    yr_buf_t out;
    yr_buf_init(&out, 1 << 16);
    bool done = false;
    for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
        yr_sse_event_t ev = {.event = YR_STR(""), .data = yr_str(events[i])};
        assert_false(done);
        assert_int_equal(yr_dialect_azure.pass_event(&f->cx, &ev, &out, &done), 0);
    }
    assert_true(done);
    assert_string_equal(
        out.data,
        "data: {" HEAD ",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":"
        "\"\"},\"finish_reason\":null,\"content_filter_results\":{}}]}\n\n"
        "data: {" HEAD ",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},"
        "\"finish_reason\":null," CFR "}]}\n\n"
        "data: {" HEAD ",\"choices\":[{\"delta\":{},\"index\":0,\"finish_reason\":\"stop\"}]}\n\n"
        "data: [DONE]\n\n");
    yr_sse_event_t bad = {.event = YR_STR(""), .data = YR_STR("{\"choices\":[")};
    assert_int_equal(yr_dialect_azure.pass_event(&f->cx, &bad, &out, &done), -EINVAL);
    yr_buf_free(&out);
    fx_free(f);
}

/* An error object in place of a chunk: the proxy's -ECANCELED contract. */
static void test_pass_stream_error(void **state)
{
    (void)state;
    static const struct {
        const char *data;
        int status;
        const char *type;
    } cases[] = {
        {"{\"error\":{\"message\":\"The server had an error\",\"type\":\"server_error\","
         "\"param\":null,\"code\":null}}",
         500, "server_error"},
        {"{\"error\":{\"code\":\"429\",\"message\":\"slow down\"}}", 429, "429"},
        {"{\"error\":{\"message\":\"filtered\",\"code\":\"content_filter\"}}", 400,
         "content_filter"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fx_t *f = fx_new("v1", "dep", REQ_STREAM);
        yr_buf_t out;
        yr_buf_init(&out, 1 << 16);
        bool done = false;
        yr_sse_event_t ev = {.event = YR_STR(""), .data = yr_str(cases[i].data)};
        assert_int_equal(yr_dialect_azure.pass_event(&f->cx, &ev, &out, &done), -ECANCELED);
        assert_int_equal(out.len, 0);
        assert_false(done);
        assert_int_equal(f->cx.error_status, cases[i].status);
        assert_string_equal(f->cx.error_type, cases[i].type);
        assert_true(f->cx.error.message[0] != '\0');
        yr_buf_free(&out);
        fx_free(f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_prepare_classic),
        cmocka_unit_test(test_prepare_v1_without_key),
        cmocka_unit_test(test_kind_build),
        cmocka_unit_test(test_head_info),
        cmocka_unit_test(test_parse_error),
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_stream_chunks),
        cmocka_unit_test(test_pass_stream),
        cmocka_unit_test(test_pass_stream_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
