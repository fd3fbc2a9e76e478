/* The Bedrock provider's pure functions: OpenAI requests -> Converse bodies
 * (a table compared as parsed JSON, and the rejections), the model-id path
 * segment, answers and ConverseStream events -> the events an OpenAI
 * client's encoder gets (tool indexes across reasoning blocks, {} for a
 * call without input, exceptions as in-band errors), stop reasons, usage
 * with cache tokens, and the error classification. */
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

#include "providers/bedrock.h"
#include "providers/provider.h"

typedef struct {
    yr_provider_conf_t provider;
    yr_route_conf_t route;
    yr_chat_req_t chat;
    yr_pool_t *pool;
    yr_call_ctx_t cx;
    yr_buf_t body;
    yr_upstream_req_t up;
    const char *path;
    yr_buf_t log; /* the events, one line each */
} fx_t;

static fx_t *fx_new(const char *request, const char *model)
{
    fx_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->provider = (yr_provider_conf_t){.name = "aws", .kind = YR_KIND_BEDROCK,
                                       .base_url = "https://bedrock-runtime.us-east-1.amazonaws.com",
                                       .region = "us-east-1", .default_max_tokens = 4096};
    f->route = (yr_route_conf_t){.provider = &f->provider, .model = model};
    f->pool = yr_pool_create(4096);
    f->cx = (yr_call_ctx_t){.pool = f->pool, .chat = &f->chat, .route = &f->route,
                            .request_id = YR_STR("req-1")};
    yr_buf_init(&f->body, 1 << 20);
    yr_buf_init(&f->log, 1 << 20);
    if (request != NULL) {
        yr_api_error_t err;
        if (yr_chat_parse(request, strlen(request), &f->chat, &err) != 0)
            fail_msg("request does not parse: %s: %s", err.message, request);
        if (yr_chat_load_root(&f->chat) != 0)
            fail_msg("no tree: %s", request);
    }
    return f;
}

static void fx_free(fx_t *f)
{
    yr_buf_free(&f->body);
    yr_buf_free(&f->log);
    yr_chat_free(&f->chat);
    yr_pool_destroy(f->pool);
    free(f);
}

static int build(fx_t *f)
{
    const char *const *extra;
    return yr_dialect_bedrock.build(&f->cx, YR_STR(""), &f->body, &f->up, &f->path, &extra);
}

/* ---- requests ------------------------------------------------------------------------- */

static const char *const claude = "us.anthropic.claude-3-5-haiku-20241022-v1:0";

static const struct {
    const char *name, *request, *want;
} cases[] = {
    {"merge, blank text, system, sampling",
     "{\"model\":\"m\",\"temperature\":0.2,\"max_tokens\":9,\"stop\":[\"a\",\"b\"],\"messages\":["
     "{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"developer\",\"content\":\"  \"},"
     "{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\",\"content\":[{\"type\":\"text\","
     "\"text\":\"\\n\"},{\"type\":\"text\",\"text\":\"b\"}]}]}",
     "{\"system\":[{\"text\":\"S\"}],\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"a\"},"
     "{\"text\":\"b\"}]}],\"inferenceConfig\":{\"maxTokens\":9,\"temperature\":0.2,"
     "\"stopSequences\":[\"a\",\"b\"]}}"},
    {"cache_control becomes a cachePoint after the block",
     "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":[{\"type\":\"text\",\"text\":"
     "\"long\",\"cache_control\":{\"type\":\"ephemeral\"}}]},{\"role\":\"user\",\"content\":\"q\"}]}",
     "{\"system\":[{\"text\":\"long\"},{\"cachePoint\":{\"type\":\"default\"}}],\"messages\":[{\"role\":"
     "\"user\",\"content\":[{\"text\":\"q\"}]}]}"},
    {"image bytes",
     "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
     "\"image_url\":{\"url\":\"data:image/JPG;base64,AAAA\"}}]}]}",
     "{\"messages\":[{\"role\":\"user\",\"content\":[{\"image\":{\"format\":\"jpeg\",\"source\":"
     "{\"bytes\":\"AAAA\"}}}]}]}"},
    {"tool loop: {} for no arguments, results merged into one user turn, error status",
     "{\"model\":\"m\",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"description\":"
     "\"d\",\"parameters\":{\"properties\":{\"x\":{\"type\":\"string\"}}}}}],\"tool_choice\":"
     "\"required\",\"messages\":[{\"role\":\"user\",\"content\":\"go\"},{\"role\":\"assistant\","
     "\"content\":\"\",\"tool_calls\":[{\"id\":\"t1\",\"type\":\"function\",\"function\":{\"name\":"
     "\"f\",\"arguments\":\"\"}},{\"id\":\"t2\",\"type\":\"function\",\"function\":{\"name\":\"f\","
     "\"arguments\":\"{\\\"x\\\":\\\"1\\\"}\"}}]},{\"role\":\"tool\",\"tool_call_id\":\"t1\","
     "\"content\":\"ok\"},{\"role\":\"tool\",\"tool_call_id\":\"t2\",\"content\":\"\",\"is_error\":"
     "true},{\"role\":\"user\",\"content\":\"next\"}]}",
     "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"go\"}]},{\"role\":\"assistant\","
     "\"content\":[{\"toolUse\":{\"toolUseId\":\"t1\",\"name\":\"f\",\"input\":{}}},{\"toolUse\":"
     "{\"toolUseId\":\"t2\",\"name\":\"f\",\"input\":{\"x\":\"1\"}}}]},{\"role\":\"user\",\"content\":"
     "[{\"toolResult\":{\"toolUseId\":\"t1\",\"content\":[{\"text\":\"ok\"}]}},{\"toolResult\":"
     "{\"toolUseId\":\"t2\",\"content\":[],\"status\":\"error\"}},{\"text\":\"next\"}]}],"
     "\"toolConfig\":{\"tools\":[{\"toolSpec\":{\"name\":\"f\",\"inputSchema\":{\"json\":{\"type\":"
     "\"object\",\"properties\":{\"x\":{\"type\":\"string\"}}}},\"description\":\"d\"}}],"
     "\"toolChoice\":{\"any\":{}}}}"},
    {"tool_choice none without tool history: no toolConfig",
     "{\"model\":\"m\",\"tool_choice\":\"none\",\"tools\":[{\"type\":\"function\",\"function\":{"
     "\"name\":\"f\"}}],\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}",
     "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"q\"}]}]}"},
    {"tool_choice none with tool history: the tools, no toolChoice",
     "{\"model\":\"m\",\"tool_choice\":\"none\",\"tools\":[{\"type\":\"function\",\"function\":{"
     "\"name\":\"f\"}}],\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\","
     "\"tool_calls\":[{\"id\":\"t\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":"
     "\"{}\"}}]},{\"role\":\"tool\",\"tool_call_id\":\"t\",\"content\":\"r\"}]}",
     "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"q\"}]},{\"role\":\"assistant\","
     "\"content\":[{\"toolUse\":{\"toolUseId\":\"t\",\"name\":\"f\",\"input\":{}}}]},{\"role\":\"user\","
     "\"content\":[{\"toolResult\":{\"toolUseId\":\"t\",\"content\":[{\"text\":\"r\"}]}}]}],"
     "\"toolConfig\":{\"tools\":[{\"toolSpec\":{\"name\":\"f\",\"inputSchema\":{\"json\":{\"type\":"
     "\"object\",\"properties\":{}}}}}]}}"},
    {"kept thinking replayed as reasoningContent, first in the turn; thinking enabled",
     "{\"model\":\"m\",\"reasoning_effort\":\"medium\",\"messages\":[{\"role\":\"user\",\"content\":"
     "\"q\"},{\"role\":\"assistant\",\"content\":\"a\",\"thinking_blocks\":[{\"type\":\"thinking\","
     "\"thinking\":\"t\",\"signature\":\"s\"},{\"type\":\"redacted_thinking\",\"data\":\"R\"},"
     "{\"type\":\"thinking\",\"thinking\":\"unsigned\"}]},{\"role\":\"user\",\"content\":\"more\"}]}",
     "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"q\"}]},{\"role\":\"assistant\","
     "\"content\":[{\"reasoningContent\":{\"reasoningText\":{\"text\":\"t\",\"signature\":\"s\"}}},"
     "{\"reasoningContent\":{\"redactedContent\":\"R\"}},{\"text\":\"a\"}]},{\"role\":\"user\","
     "\"content\":[{\"text\":\"more\"}]}],\"inferenceConfig\":{\"maxTokens\":8192},"
     "\"additionalModelRequestFields\":{\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":4096}}}"},
};

static void test_build_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fx_t *f = fx_new(cases[i].request, claude);
        int rc = build(f);
        if (rc != 0)
            fail_msg("%s: rc %d: %s", cases[i].name, rc, f->cx.error.message);
        json_t *got = json_loadb(f->up.body, f->up.body_len, 0, NULL);
        json_t *want = json_loads(cases[i].want, 0, NULL);
        assert_non_null(want);
        if (!json_equal(got, want))
            fail_msg("%s:\n got  %.*s\n want %s", cases[i].name, (int)f->up.body_len, f->up.body,
                     cases[i].want);
        json_decref(got);
        json_decref(want);
        assert_string_equal(f->path, "/model/us.anthropic.claude-3-5-haiku-20241022-v1%3A0/converse");
        fx_free(f);
    }
}

static void test_paths(void **state)
{
    (void)state;
    yr_pool_t *p = yr_pool_create(4096);
    assert_string_equal(yr_bedrock_path(p, "global.anthropic.claude-sonnet-4-5-20250929-v1:0", true),
                        "/model/global.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse-stream");
    assert_string_equal(
        yr_bedrock_path(p, "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.meta.llama3", false),
        "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.meta.llama3/"
        "converse");
    yr_pool_destroy(p);
    assert_true(yr_bedrock_is_claude("us.anthropic.claude-3-5-haiku-20241022-v1:0"));
    assert_false(yr_bedrock_is_claude("meta.llama3-70b-instruct-v1:0"));
}

static void test_rejects(void **state)
{
    (void)state;
    static const struct {
        const char *request, *param;
    } bad[] = {
        {"{\"model\":\"m\",\"n\":2,\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}", "n"},
        {"{\"model\":\"m\",\"response_format\":{\"type\":\"json_object\"},\"messages\":[{\"role\":"
         "\"user\",\"content\":\"q\"}]}",
         "response_format"},
        {"{\"model\":\"m\",\"temperature\":1.5,\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}",
         "temperature"},
        {"{\"model\":\"m\",\"presence_penalty\":1,\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}",
         "presence_penalty"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
         "\"image_url\":{\"url\":\"https://x/y.png\"}}]}]}",
         "messages[0].content[0].image_url.url"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
         "\"image_url\":{\"url\":\"data:image/bmp;base64,AAAA\"}}]}]}",
         "messages[0].content[0].image_url.url"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"  \"}]}",
         "messages[0].content"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"s\"}]}", "messages"},
        {"{\"model\":\"m\",\"reasoning_effort\":\"high\",\"tool_choice\":\"required\",\"tools\":[{"
         "\"type\":\"function\",\"function\":{\"name\":\"f\"}}],\"messages\":[{\"role\":\"user\","
         "\"content\":\"q\"}]}",
         "tool_choice"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\","
         "\"tool_calls\":[{\"id\":\"t\",\"type\":\"function\",\"function\":{\"name\":\"f\","
         "\"arguments\":\"[1]\"}}]}]}",
         "messages[1].tool_calls[0].function.arguments"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fx_t *f = fx_new(bad[i].request, claude);
        assert_int_equal(build(f), -EINVAL);
        if (strcmp(f->cx.error.param, bad[i].param) != 0)
            fail_msg("case %zu: param '%s', want '%s' (%s)", i, f->cx.error.param, bad[i].param,
                     f->cx.error.message);
        assert_int_equal(f->cx.error.err, YR_E_INVALID_REQUEST);
        fx_free(f);
    }
}

/* ---- answers ----------------------------------------------------------------------------- */

static int on_event(void *arg, const yr_event_t *ev)
{
    fx_t *f = arg;
    static const char *const names[] = {"START", "TEXT",  "REASONING", "REFUSAL", "TOOL_START", "TOOL_ARGS",
                                        "TOOL_END", "FINISH", "USAGE", "ERROR", "END"};
    int rc = yr_buf_printf(&f->log, "%s", names[ev->type]);
    switch (ev->type) {
    case YR_EV_START: rc = yr_buf_printf(&f->log, " %.*s", (int)ev->id.len, ev->id.ptr); break;
    case YR_EV_TEXT:
    case YR_EV_TOOL_ARGS:
    case YR_EV_REASONING:
        rc = yr_buf_printf(&f->log, " %u %.*s|%.*s%s", ev->index, (int)ev->text.len, ev->text.ptr,
                           (int)ev->signature.len, ev->signature.ptr, ev->redacted ? " redacted" : "");
        break;
    case YR_EV_TOOL_START:
        rc = yr_buf_printf(&f->log, " %u %.*s %.*s", ev->index, (int)ev->id.len, ev->id.ptr,
                           (int)ev->name.len, ev->name.ptr);
        break;
    case YR_EV_TOOL_END: rc = yr_buf_printf(&f->log, " %u", ev->index); break;
    case YR_EV_FINISH: rc = yr_buf_printf(&f->log, " %s", yr_finish_openai(ev->finish)); break;
    case YR_EV_USAGE:
        rc = yr_buf_printf(&f->log, " %lld/%lld c%lld w%lld", (long long)ev->usage.prompt_tokens,
                           (long long)ev->usage.completion_tokens, (long long)ev->usage.cached_tokens,
                           (long long)ev->usage.cache_write_tokens);
        break;
    case YR_EV_ERROR:
        rc = yr_buf_printf(&f->log, " %d %.*s %.*s", ev->status, (int)ev->error_type.len,
                           ev->error_type.ptr, (int)ev->text.len, ev->text.ptr);
        break;
    default: break;
    }
    return rc == 0 ? yr_buf_append(&f->log, "\n", 1) : rc;
}

static void test_response(void **state)
{
    (void)state;
    fx_t *f = fx_new(NULL, claude);
    const char *body =
        "{\"output\":{\"message\":{\"role\":\"assistant\",\"content\":[{\"reasoningContent\":{"
        "\"reasoningText\":{\"text\":\"hm\",\"signature\":\"S\"}}},{\"text\":\"Hi\"},{\"toolUse\":"
        "{\"toolUseId\":\"t1\",\"name\":\"f\",\"input\":{}}},{\"toolUse\":{\"toolUseId\":\"t2\","
        "\"name\":\"g\",\"input\":{\"a\":1}}}]}},\"stopReason\":\"tool_use\",\"usage\":{"
        "\"inputTokens\":10,\"outputTokens\":5,\"cacheReadInputTokens\":100,"
        "\"cacheWriteInputTokens\":7,\"totalTokens\":122}}";
    assert_int_equal(yr_dialect_bedrock.response(&f->cx, yr_str(body), on_event, f), 0);
    assert_string_equal(f->log.data, "START req-1\n"
                                     "REASONING 0 hm|S\n"
                                     "TEXT 0 Hi|\n"
                                     "TOOL_START 0 t1 f\nTOOL_ARGS 0 {}|\nTOOL_END 0\n"
                                     "TOOL_START 1 t2 g\nTOOL_ARGS 1 {\"a\":1}|\nTOOL_END 1\n"
                                     "FINISH tool_calls\nUSAGE 117/5 c100 w7\nEND\n");
    assert_int_equal(f->cx.usage.prompt_tokens, 117);
    fx_free(f);
    /* the stop reason table */
    static const char *const stops[][2] = {
        {"end_turn", "stop"},         {"stop_sequence", "stop"},
        {"max_tokens", "length"},     {"model_context_window_exceeded", "length"},
        {"guardrail_intervened", "content_filter"}, {"content_filtered", "content_filter"},
        {"tool_use", "tool_calls"},   {"something_new", "stop"},
    };
    for (size_t i = 0; i < sizeof(stops) / sizeof(stops[0]); i++) {
        f = fx_new(NULL, claude);
        char b[256], want[64];
        snprintf(b, sizeof(b),
                 "{\"output\":{\"message\":{\"role\":\"assistant\",\"content\":[]}},\"stopReason\":"
                 "\"%s\"}",
                 stops[i][0]);
        assert_int_equal(yr_dialect_bedrock.response(&f->cx, yr_str(b), on_event, f), 0);
        snprintf(want, sizeof(want), "FINISH %s\n", stops[i][1]);
        assert_non_null(strstr(f->log.data, want));
        fx_free(f);
    }
    /* broken answers fail over: nothing emitted */
    static const char *const broken[] = {
        "[]", "{}", "{\"output\":{\"message\":{\"content\":{}}}}",
        "{\"output\":{\"message\":{\"content\":[{\"text\":1}]}}}",
        "{\"output\":{\"message\":{\"content\":[{\"toolUse\":{\"name\":\"f\"}}]}}}",
    };
    for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
        f = fx_new(NULL, claude);
        assert_int_equal(yr_dialect_bedrock.response(&f->cx, yr_str(broken[i]), on_event, f), -EINVAL);
        assert_int_equal(f->log.len, 0);
        fx_free(f);
    }
}

static int feed(fx_t *f, const char *event, const char *data, bool *done)
{
    yr_frame_t m = {.event = yr_str(event), .data = yr_str(data)};
    return yr_dialect_bedrock.event(&f->cx, &m, on_event, f, done);
}

static void test_stream(void **state)
{
    (void)state;
    fx_t *f = fx_new(NULL, claude);
    bool done = false;
    static const char *const evs[][2] = {
        {"messageStart", "{\"role\":\"assistant\"}"},
        {"contentBlockDelta", "{\"contentBlockIndex\":0,\"delta\":{\"reasoningContent\":{\"text\":\"r\"}},\"p\":\"x\"}"},
        {"contentBlockDelta", "{\"contentBlockIndex\":0,\"delta\":{\"reasoningContent\":{\"signature\":\"S\"}}}"},
        {"contentBlockStop", "{\"contentBlockIndex\":0}"},
        {"contentBlockDelta", "{\"contentBlockIndex\":1,\"delta\":{\"text\":\"Hi\"}}"},
        {"contentBlockStop", "{\"contentBlockIndex\":1}"},
        {"contentBlockStart", "{\"contentBlockIndex\":2,\"start\":{\"toolUse\":{\"toolUseId\":\"t1\",\"name\":\"f\"}}}"},
        {"contentBlockStop", "{\"contentBlockIndex\":2}"},
        {"contentBlockStart", "{\"contentBlockIndex\":3,\"start\":{\"toolUse\":{\"toolUseId\":\"t2\",\"name\":\"g\"}}}"},
        {"contentBlockDelta", "{\"contentBlockIndex\":3,\"delta\":{\"toolUse\":{\"input\":\"{\\\"a\\\":\"}}}"},
        {"contentBlockDelta", "{\"contentBlockIndex\":3,\"delta\":{\"toolUse\":{\"input\":\"1}\"}}}"},
        {"contentBlockStop", "{\"contentBlockIndex\":3}"},
        {"someFutureEvent", "{}"},
        {"messageStop", "{\"stopReason\":\"tool_use\"}"},
    };
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++) {
        assert_int_equal(feed(f, evs[i][0], evs[i][1], &done), 0);
        assert_false(done);
    }
    assert_int_equal(feed(f, "metadata", "{\"usage\":{\"inputTokens\":3,\"outputTokens\":4,"
                                         "\"cacheReadInputTokens\":2},\"metrics\":{}}",
                          &done),
                     0);
    assert_true(done);
    assert_string_equal(f->log.data, "START req-1\n"
                                     "REASONING 0 r|\nREASONING 0 |S\n"
                                     "TEXT 0 Hi|\n"
                                     "TOOL_START 0 t1 f\nTOOL_ARGS 0 {}|\nTOOL_END 0\n"
                                     "TOOL_START 1 t2 g\nTOOL_ARGS 1 {\"a\":|\nTOOL_ARGS 1 1}|\n"
                                     "TOOL_END 1\n"
                                     "FINISH tool_calls\nUSAGE 5/4 c2 w0\nEND\n");
    fx_free(f);

    /* malformed: events before messageStart, input for a block that is no tool, bad JSON */
    static const char *const bad[][2] = {
        {"contentBlockDelta", "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"x\"}}"},
    };
    f = fx_new(NULL, claude);
    assert_int_equal(feed(f, bad[0][0], bad[0][1], &done), -EINVAL);
    fx_free(f);
    static const char *const after_start[][2] = {
        {"contentBlockDelta", "{\"contentBlockIndex\":0,\"delta\":{\"toolUse\":{\"input\":\"{}\"}}}"},
        {"contentBlockDelta", "{not json"},
        {"contentBlockDelta", "{\"contentBlockIndex\":999999,\"delta\":{\"text\":\"x\"}}"},
        {"contentBlockStart", "{\"contentBlockIndex\":1,\"start\":{\"toolUse\":{\"name\":\"f\"}}}"},
    };
    for (size_t i = 0; i < sizeof(after_start) / sizeof(after_start[0]); i++) {
        f = fx_new(NULL, claude);
        assert_int_equal(feed(f, "messageStart", "{\"role\":\"assistant\"}", &done), 0);
        assert_int_equal(feed(f, after_start[i][0], after_start[i][1], &done), -EINVAL);
        fx_free(f);
    }
}

static void test_exceptions(void **state)
{
    (void)state;
    static const struct {
        const char *event, *data;
        int status;
        const char *type, *message;
        yr_outcome_t outcome;
    } ex[] = {
        {"exception:throttlingException", "{\"message\":\"slow down\"}", 429, "throttlingException",
         "slow down", YR_OUT_RATE_LIMITED},
        {"exception:modelStreamErrorException", "{\"message\":\"broke\",\"originalStatusCode\":500}",
         502, "modelStreamErrorException", "broke", YR_OUT_SERVER_ERROR},
        {"exception:serviceUnavailableException", "{\"Message\":\"busy\"}", 503,
         "serviceUnavailableException", "busy", YR_OUT_OVERLOADED},
        {"exception:validationException", "{\"message\":\"bad\"}", 400, "validationException", "bad",
         YR_OUT_CLIENT_ERROR},
        {"error:InternalFailure", "it failed", 500, "InternalFailure", "it failed",
         YR_OUT_SERVER_ERROR},
    };
    for (size_t i = 0; i < sizeof(ex) / sizeof(ex[0]); i++) {
        fx_t *f = fx_new(NULL, claude);
        bool done = false;
        assert_int_equal(feed(f, "messageStart", "{\"role\":\"assistant\"}", &done), 0);
        assert_int_equal(feed(f, ex[i].event, ex[i].data, &done), -ECANCELED);
        char want[256];
        snprintf(want, sizeof(want), "START req-1\nERROR %d %s %s\n", ex[i].status, ex[i].type,
                 ex[i].message);
        assert_string_equal(f->log.data, want);
        assert_int_equal(f->cx.error_status, ex[i].status);
        yr_provider_error_t perr = {.retry_after_ms = -1};
        snprintf(perr.type, sizeof(perr.type), "%s", f->cx.error_type);
        assert_int_equal(yr_transport_bedrock.classify(f->cx.error_status, &perr), ex[i].outcome);
        fx_free(f);
    }
}

static void test_errors(void **state)
{
    (void)state;
    static const struct {
        const char *type;
        int status;
        yr_outcome_t outcome;
    } t[] = {
        {"ThrottlingException", 429, YR_OUT_RATE_LIMITED},
        {"ServiceUnavailableException", 503, YR_OUT_OVERLOADED},
        {"ModelTimeoutException", 408, YR_OUT_TIMEOUT},
        {"ValidationException", 400, YR_OUT_CLIENT_ERROR},
        {"AccessDeniedException", 403, YR_OUT_AUTH},
        {"InvalidSignatureException", 403, YR_OUT_AUTH},
        {"UnrecognizedClientException", 403, YR_OUT_AUTH},
        {"ModelNotReadyException", 429, YR_OUT_OVERLOADED},
        {"InternalServerException", 500, YR_OUT_SERVER_ERROR},
        {"", 500, YR_OUT_SERVER_ERROR},
        {"", 429, YR_OUT_RATE_LIMITED},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        yr_provider_error_t perr = {.retry_after_ms = -1};
        snprintf(perr.type, sizeof(perr.type), "%s", t[i].type);
        assert_int_equal(yr_transport_bedrock.classify(t[i].status, &perr), t[i].outcome);
        if (t[i].type[0])
            assert_int_equal(yr_bedrock_error_status(t[i].type), t[i].status);
    }
    yr_provider_error_t perr;
    yr_dialect_bedrock.parse_error(YR_STR("{\"message\":\"The provided model identifier is invalid.\"}"), &perr);
    assert_string_equal(perr.message, "The provided model identifier is invalid.");
    assert_string_equal(perr.type, "");
    yr_dialect_bedrock.parse_error(
        YR_STR("{\"__type\":\"com.amazon.coral.validate#ValidationException\",\"Message\":\"m\"}"), &perr);
    assert_string_equal(perr.type, "ValidationException");
    assert_string_equal(perr.message, "m");
    yr_dialect_bedrock.parse_error(YR_STR("<html>"), &perr);
    assert_string_equal(perr.message, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_table), cmocka_unit_test(test_paths),
        cmocka_unit_test(test_rejects),     cmocka_unit_test(test_response),
        cmocka_unit_test(test_stream),      cmocka_unit_test(test_exceptions),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
