/* The Anthropic provider's pure translation functions: OpenAI requests ->
 * Messages requests (a table, compared as parsed JSON), every rejection,
 * message objects -> chat.completion, event sequences -> the exact chunk
 * sequence, usage with cache tokens, stop reasons and errors. */
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
    yr_oai_enc_t *enc; /* what an OpenAI client sees of the stream */
} fx_t;

static fx_t *fx_new(const char *request)
{
    fx_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->provider = (yr_provider_conf_t){
        .name = "anthropic",
        .kind = YR_KIND_ANTHROPIC,
        .base_url = "https://api.anthropic.com",
        .api_key = "sk-ant-test",
        .connect_timeout_ms = 5000,
        .first_byte_timeout_ms = 120000,
        .timeout_ms = 600000,
        .anthropic_version = "2023-06-01",
        .default_max_tokens = 4096,
    };
    f->route = (yr_route_conf_t){.provider = &f->provider, .model = "claude-x"};
    yr_api_error_t err;
    if (yr_chat_parse(request, strlen(request), &f->chat, &err) != 0)
        fail_msg("request does not parse: %s: %s", err.message, request);
    if (yr_chat_load_root(&f->chat) != 0)
        fail_msg("jansson refuses what the tokenizer accepted: %s", request);
    f->pool = yr_pool_create(4096);
    assert_non_null(f->pool);
    f->cx = (yr_call_ctx_t){
        .pool = f->pool,
        .chat = &f->chat,
        .route = &f->route,
        .request_id = YR_STR("req-1"),
    };
    yr_buf_init(&f->body, 1 << 20);
    return f;
}

static void fx_free(fx_t *f)
{
    yr_oai_enc_free(f->enc);
    yr_chat_free(&f->chat);
    yr_buf_free(&f->body);
    yr_pool_destroy(f->pool);
    free(f);
}

/* The dialect's body, then the transport's URL and headers: the request an
 * Anthropic route is sent. */
static int build(fx_t *f)
{
    const char *path = NULL;
    const char *const *extra = NULL;
    int rc = yr_dialect_anthropic.build(&f->cx, YR_STR(""), &f->body, &f->up, &path, &extra);
    if (rc == 0)
        rc = yr_transport_anthropic.prepare(&f->cx, path, extra, &f->up);
    return rc;
}

/* What an OpenAI client sees: the dialect's events through the OpenAI
 * encoder. In-band errors stop at the proxy, never at the encoder. */
typedef struct {
    yr_oai_enc_t *enc;
    yr_buf_t *out;
} oai_sink_t;

static int to_openai(void *arg, const yr_event_t *ev)
{
    oai_sink_t *k = arg;
    return ev->type == YR_EV_ERROR ? 0 : yr_oai_enc_event(k->enc, ev, k->out);
}

static int chat_response(fx_t *f, yr_str_t body, yr_buf_t *out)
{
    yr_oai_enc_opts_t o = {.id_seed = f->cx.request_id, .stream = false};
    oai_sink_t k = {yr_oai_enc_new(&o), out};
    assert_non_null(k.enc);
    int rc = yr_dialect_anthropic.response(&f->cx, body, to_openai, &k);
    yr_oai_enc_free(k.enc);
    return rc;
}

static int chat_event(fx_t *f, const yr_sse_event_t *ev, yr_buf_t *out, bool *done)
{
    if (f->enc == NULL) {
        yr_oai_enc_opts_t o = {.id_seed = f->cx.request_id,
                               .stream = true,
                               .include_usage = f->chat.include_usage};
        f->enc = yr_oai_enc_new(&o);
        assert_non_null(f->enc);
    }
    oai_sink_t k = {f->enc, out};
    return yr_dialect_anthropic.event(&f->cx, ev, to_openai, &k, done);
}

static json_t *parse_or_fail(const char *text, size_t len)
{
    json_error_t jerr;
    json_t *v = json_loadb(text, len, JSON_DECODE_ANY, &jerr);
    if (v == NULL)
        fail_msg("invalid JSON (%s): %.*s", jerr.text, (int)len, text);
    return v;
}

static void expect_json(const char *what, const json_t *got, const char *expected)
{
    json_t *want = parse_or_fail(expected, strlen(expected));
    if (!json_equal((json_t *)got, want)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
        char *w = json_dumps(want, JSON_COMPACT | JSON_ENCODE_ANY);
        print_error("%s\n  got:      %s\n  expected: %s\n", what, g, w);
        free(g);
        free(w);
        json_decref(want);
        fail();
    }
    json_decref(want);
}

/* ---- requests ------------------------------------------------------------------- */

typedef struct {
    const char *name;
    const char *request;  /* the client's OpenAI body */
    const char *expected; /* the Anthropic body, or NULL for a rejection */
    const char *param;    /* the rejected parameter */
} req_case_t;

#define U "{\"role\":\"user\",\"content\":\"hi\"}"
#define M "\"model\":\"gpt\""
#define PNG "iVBORw0KGgo="

static const req_case_t req_cases[] = {
    {"minimal", "{" M ",\"messages\":[" U "]}",
     "{\"model\":\"claude-x\",\"max_tokens\":4096,\"messages\":[{\"role\":\"user\",\"content\":"
     "\"hi\"}]}",
     NULL},
    {"one system message becomes a string",
     "{" M ",\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"}," U "]}",
     "{\"model\":\"claude-x\",\"max_tokens\":4096,\"system\":\"be brief\",\"messages\":[{\"role\":"
     "\"user\",\"content\":\"hi\"}]}",
     NULL},
    {"system and developer become text blocks",
     "{" M ",\"messages\":[{\"role\":\"system\",\"content\":\"a\"},{\"role\":\"developer\","
     "\"content\":[{\"type\":\"text\",\"text\":\"b\"},{\"type\":\"text\",\"text\":\"c\"}]}," U "]}",
     "{\"model\":\"claude-x\",\"max_tokens\":4096,\"system\":[{\"type\":\"text\",\"text\":\"a\"},"
     "{\"type\":\"text\",\"text\":\"b\"},{\"type\":\"text\",\"text\":\"c\"}],\"messages\":[{"
     "\"role\":\"user\",\"content\":\"hi\"}]}",
     NULL},
    {"consecutive same-role messages are merged",
     "{" M ",\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\",\"content\":["
     "{\"type\":\"text\",\"text\":\"b\"}]},{\"role\":\"assistant\",\"content\":\"c\"},{\"role\":"
     "\"assistant\",\"content\":\"d\"},{\"role\":\"user\",\"content\":\"e\"}]}",
     "{\"model\":\"claude-x\",\"max_tokens\":4096,\"messages\":[{\"role\":\"user\",\"content\":["
     "{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}]},{\"role\":"
     "\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"c\"},{\"type\":\"text\",\"text\":"
     "\"d\"}]},{\"role\":\"user\",\"content\":\"e\"}]}",
     NULL},
    {"empty assistant turns and empty text parts are dropped",
     "{" M ",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"\"},{"
     "\"type\":\"text\",\"text\":\"a\"}]},{\"role\":\"assistant\",\"content\":\"\"},{\"role\":"
     "\"user\",\"content\":\"b\"}]}",
     "{\"model\":\"claude-x\",\"max_tokens\":4096,\"messages\":[{\"role\":\"user\",\"content\":["
     "{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}]}]}",
     NULL},
    {"sampling, stop, user, stream",
     "{" M ",\"messages\":[" U "],\"temperature\":0.5,\"top_p\":0.9,\"stop\":\"END\",\"user\":"
     "\"u-1\",\"stream\":true,\"stream_options\":{\"include_usage\":true}}",
     "{\"model\":\"claude-x\",\"max_tokens\":4096,\"messages\":[{\"role\":\"user\",\"content\":"
     "\"hi\"}],\"temperature\":0.5,\"top_p\":0.9,\"stop_sequences\":[\"END\"],\"metadata\":{"
     "\"user_id\":\"u-1\"},\"stream\":true}",
     NULL},
    {"stop array, temperature 1 and 0",
     "{" M ",\"messages\":[" U "],\"temperature\":1,\"stop\":[\"a\",\"b\"]}",
     "{\"model\":\"claude-x\",\"max_tokens\":4096,\"messages\":[{\"role\":\"user\",\"content\":"
     "\"hi\"}],\"temperature\":1,\"stop_sequences\":[\"a\",\"b\"]}",
     NULL},
    {"max_completion_tokens wins over max_tokens",
     "{" M ",\"messages\":[" U "],\"max_tokens\":10,\"max_completion_tokens\":20}",
     "{\"model\":\"claude-x\",\"max_tokens\":20,\"messages\":[{\"role\":\"user\",\"content\":"
     "\"hi\"}]}",
     NULL},
    {"max_tokens", "{" M ",\"messages\":[" U "],\"max_tokens\":10}",
     "{\"model\":\"claude-x\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":"
     "\"hi\"}]}",
     NULL},
    {"harmless fields are dropped",
     "{" M ",\"messages\":[" U "],\"n\":1,\"seed\":7,\"service_tier\":\"auto\",\"store\":true,"
     "\"metadata\":{\"a\":\"b\"},\"prediction\":{\"type\":\"content\",\"content\":\"x\"},"
     "\"logprobs\":false,\"top_logprobs\":0,\"presence_penalty\":0,\"frequency_penalty\":0.0,"
     "\"logit_bias\":{},\"parallel_tool_calls\":false,\"modalities\":[\"text\"],\"verbosity\":"
     "\"low\",\"x_sim\":{\"text\":\"x\"}}",
     "{\"model\":\"claude-x\",\"max_tokens\":4096,\"messages\":[{\"role\":\"user\",\"content\":"
     "\"hi\"}]}",
     NULL},
    /* vision */
    {"data URL image",
     "{" M ",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"what?\"},"
     "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64," PNG "\",\"detail\":"
     "\"high\"}}]}]}",
     "{\"model\":\"claude-x\",\"max_tokens\":4096,\"messages\":[{\"role\":\"user\",\"content\":["
     "{\"type\":\"text\",\"text\":\"what?\"},{\"type\":\"image\",\"source\":{\"type\":\"base64\","
     "\"media_type\":\"image/png\",\"data\":\"" PNG "\"}}]}]}",
     NULL},
    {"data URL media type is case-insensitive; image/jpg is image/jpeg",
     "{" M ",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{"
     "\"url\":\"DATA:Image/JPG;base64," PNG "\"}},{\"type\":\"image_url\",\"image_url\":{\"url\":"
     "\"data:image/webp;name=x.webp;base64," PNG "\"}}]}]}",
     "{\"model\":\"claude-x\",\"max_tokens\":4096,\"messages\":[{\"role\":\"user\",\"content\":["
     "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/jpeg\",\"data\":"
     "\"" PNG "\"}},{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":"
     "\"image/webp\",\"data\":\"" PNG "\"}}]}]}",
     NULL},
    {"https image",
     "{" M ",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{"
     "\"url\":\"https://example.com/a.png\"}}]}]}",
     "{\"model\":\"claude-x\",\"max_tokens\":4096,\"messages\":[{\"role\":\"user\",\"content\":["
     "{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":\"https://example.com/a.png\"}}]}]}",
     NULL},
    {"cache_control on parts is kept",
     "{" M ",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"long\","
     "\"cache_control\":{\"type\":\"ephemeral\"}}]}]}",
     "{\"model\":\"claude-x\",\"max_tokens\":4096,\"messages\":[{\"role\":\"user\",\"content\":["
     "{\"type\":\"text\",\"text\":\"long\",\"cache_control\":{\"type\":\"ephemeral\"}}]}]}",
     NULL},
    /* tools */
    {"tools and the default schema",
     "{" M ",\"messages\":[" U "],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get"
     "_weather\",\"description\":\"Weather\",\"parameters\":{\"type\":\"object\",\"properties\":{"
     "\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]},\"strict\":true}},{\"type\":"
     "\"function\",\"function\":{\"name\":\"now\"}},{\"type\":\"function\",\"function\":{\"name\":"
     "\"empty\",\"parameters\":{}}}]}",
     "{\"model\":\"claude-x\",\"max_tokens\":4096,\"messages\":[{\"role\":\"user\",\"content\":"
     "\"hi\"}],\"tools\":[{\"name\":\"get_weather\",\"description\":\"Weather\",\"input_schema\":"
     "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]"
     "}},{\"name\":\"now\",\"input_schema\":{\"type\":\"object\",\"properties\":{}}},{\"name\":"
     "\"empty\",\"input_schema\":{\"type\":\"object\"}}]}",
     NULL},
#define TOOL "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]"
#define ATOOL                                                                                      \
    "\"tools\":[{\"name\":\"f\",\"input_schema\":{\"type\":\"object\",\"properties\":{}}}]"
#define AHEAD                                                                                      \
    "{\"model\":\"claude-x\",\"max_tokens\":4096,\"messages\":[{\"role\":\"user\",\"content\":"    \
    "\"hi\"}],"
    {"tool_choice auto", "{" M ",\"messages\":[" U "]," TOOL ",\"tool_choice\":\"auto\"}",
     AHEAD ATOOL ",\"tool_choice\":{\"type\":\"auto\"}}", NULL},
    {"tool_choice none", "{" M ",\"messages\":[" U "]," TOOL ",\"tool_choice\":\"none\"}",
     AHEAD ATOOL ",\"tool_choice\":{\"type\":\"none\"}}", NULL},
    {"tool_choice required", "{" M ",\"messages\":[" U "]," TOOL ",\"tool_choice\":\"required\"}",
     AHEAD ATOOL ",\"tool_choice\":{\"type\":\"any\"}}", NULL},
    {"tool_choice named",
     "{" M ",\"messages\":[" U "]," TOOL ",\"tool_choice\":{\"type\":\"function\",\"function\":{"
     "\"name\":\"f\"}}}",
     AHEAD ATOOL ",\"tool_choice\":{\"type\":\"tool\",\"name\":\"f\"}}", NULL},
    {"parallel_tool_calls false without tool_choice",
     "{" M ",\"messages\":[" U "]," TOOL ",\"parallel_tool_calls\":false}",
     AHEAD ATOOL ",\"tool_choice\":{\"type\":\"auto\",\"disable_parallel_tool_use\":true}}", NULL},
    {"parallel_tool_calls false with required",
     "{" M ",\"messages\":[" U "]," TOOL ",\"tool_choice\":\"required\",\"parallel_tool_calls\":"
     "false}",
     AHEAD ATOOL ",\"tool_choice\":{\"type\":\"any\",\"disable_parallel_tool_use\":true}}", NULL},
    {"parallel_tool_calls false with none",
     "{" M ",\"messages\":[" U "]," TOOL ",\"tool_choice\":\"none\",\"parallel_tool_calls\":false}",
     AHEAD ATOOL ",\"tool_choice\":{\"type\":\"none\"}}", NULL},
    {"parallel_tool_calls true is the default",
     "{" M ",\"messages\":[" U "]," TOOL ",\"parallel_tool_calls\":true}", AHEAD ATOOL "}", NULL},
    {"tool_choice none/auto without tools is dropped",
     "{" M ",\"messages\":[" U "],\"tool_choice\":\"none\"}",
     "{\"model\":\"claude-x\",\"max_tokens\":4096,\"messages\":[{\"role\":\"user\",\"content\":"
     "\"hi\"}]}",
     NULL},
    {"a tool-call round trip",
     "{" M ",\"messages\":[" U ",{\"role\":\"assistant\",\"content\":\"Checking.\",\"tool_calls\":"
     "[{\"id\":\"toolu_1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":"
     "\"{\\\"a\\\":1}\"}},{\"id\":\"toolu_2\",\"type\":\"function\",\"function\":{\"name\":\"g\","
     "\"arguments\":\"\"}}]},{\"role\":\"tool\",\"tool_call_id\":\"toolu_1\",\"content\":\"one\"},"
     "{\"role\":\"tool\",\"tool_call_id\":\"toolu_2\",\"content\":[{\"type\":\"text\",\"text\":"
     "\"two\"}]},{\"role\":\"user\",\"content\":\"thanks\"}]," TOOL "}",
     "{\"model\":\"claude-x\",\"max_tokens\":4096,\"messages\":[{\"role\":\"user\",\"content\":"
     "\"hi\"},{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"Checking.\"},{"
     "\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"f\",\"input\":{\"a\":1}},{\"type\":"
     "\"tool_use\",\"id\":\"toolu_2\",\"name\":\"g\",\"input\":{}}]},{\"role\":\"user\","
     "\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_1\",\"content\":\"one\"},{"
     "\"type\":\"tool_result\",\"tool_use_id\":\"toolu_2\",\"content\":[{\"type\":\"text\","
     "\"text\":\"two\"}]},{\"type\":\"text\",\"text\":\"thanks\"}]}]," ATOOL "}",
     NULL},
    {"assistant with null content and a tool call; empty tool result",
     "{" M ",\"messages\":[" U ",{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":"
     "\"c1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},{"
     "\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"\"}]}",
     "{\"model\":\"claude-x\",\"max_tokens\":4096,\"messages\":[{\"role\":\"user\",\"content\":"
     "\"hi\"},{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"c1\",\"name\":"
     "\"f\",\"input\":{}}]},{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","
     "\"tool_use_id\":\"c1\"}]}]}",
     NULL},
    /* response_format */
    {"json_schema becomes a forced tool",
     "{" M ",\"messages\":[" U "],\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{"
     "\"name\":\"person\",\"strict\":true,\"schema\":{\"type\":\"object\",\"properties\":{\"name\""
     ":{\"type\":\"string\"}}}}}}",
     AHEAD "\"tools\":[{\"name\":\"person\",\"input_schema\":{\"type\":\"object\",\"properties\":{"
           "\"name\":{\"type\":\"string\"}}}}],\"tool_choice\":{\"type\":\"tool\",\"name\":"
           "\"person\"}}",
     NULL},
    {"json_object becomes a forced tool",
     "{" M ",\"messages\":[" U "],\"response_format\":{\"type\":\"json_object\"}}",
     AHEAD "\"tools\":[{\"name\":\"json_response\",\"input_schema\":{\"type\":\"object\"}}],"
           "\"tool_choice\":{\"type\":\"tool\",\"name\":\"json_response\"}}",
     NULL},
    {"response_format text", "{" M ",\"messages\":[" U "],\"response_format\":{\"type\":\"text\"}}",
     "{\"model\":\"claude-x\",\"max_tokens\":4096,\"messages\":[{\"role\":\"user\",\"content\":"
     "\"hi\"}]}",
     NULL},
    /* reasoning */
    {"reasoning_effort low raises a small max_tokens",
     "{" M ",\"messages\":[" U "],\"reasoning_effort\":\"low\",\"max_tokens\":1000}",
     "{\"model\":\"claude-x\",\"max_tokens\":2024,\"messages\":[{\"role\":\"user\",\"content\":"
     "\"hi\"}],\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":1024}}",
     NULL},
    {"reasoning_effort medium keeps a larger max_tokens",
     "{" M ",\"messages\":[" U "],\"reasoning_effort\":\"medium\",\"max_completion_tokens\":8000,"
     "\"temperature\":1,\"top_p\":0.95}",
     "{\"model\":\"claude-x\",\"max_tokens\":8000,\"messages\":[{\"role\":\"user\",\"content\":"
     "\"hi\"}],\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":4096},\"temperature\":1,"
     "\"top_p\":0.95}",
     NULL},
    {"reasoning_effort high with the default max_tokens",
     "{" M ",\"messages\":[" U "],\"reasoning_effort\":\"high\"}",
     "{\"model\":\"claude-x\",\"max_tokens\":20480,\"messages\":[{\"role\":\"user\",\"content\":"
     "\"hi\"}],\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":16384}}",
     NULL},
    {"reasoning_effort minimal means no thinking",
     "{" M ",\"messages\":[" U "],\"reasoning_effort\":\"minimal\"}",
     "{\"model\":\"claude-x\",\"max_tokens\":4096,\"messages\":[{\"role\":\"user\",\"content\":"
     "\"hi\"}]}",
     NULL},
    /* rejections */
    {"n > 1", "{" M ",\"messages\":[" U "],\"n\":2}", NULL, "n"},
    {"logprobs", "{" M ",\"messages\":[" U "],\"logprobs\":true}", NULL, "logprobs"},
    {"top_logprobs", "{" M ",\"messages\":[" U "],\"top_logprobs\":3}", NULL, "top_logprobs"},
    {"presence_penalty", "{" M ",\"messages\":[" U "],\"presence_penalty\":0.5}", NULL,
     "presence_penalty"},
    {"frequency_penalty", "{" M ",\"messages\":[" U "],\"frequency_penalty\":-1}", NULL,
     "frequency_penalty"},
    {"logit_bias", "{" M ",\"messages\":[" U "],\"logit_bias\":{\"50256\":-100}}", NULL,
     "logit_bias"},
    {"audio", "{" M ",\"messages\":[" U "],\"audio\":{\"voice\":\"alloy\",\"format\":\"wav\"}}",
     NULL, "audio"},
    {"modalities with audio", "{" M ",\"messages\":[" U "],\"modalities\":[\"text\",\"audio\"]}",
     NULL, "modalities"},
    {"legacy functions", "{" M ",\"messages\":[" U "],\"functions\":[{\"name\":\"f\"}]}", NULL,
     "functions"},
    {"legacy function role",
     "{" M ",\"messages\":[" U ",{\"role\":\"function\",\"name\":\"f\",\"content\":\"x\"}]}", NULL,
     "messages[1].role"},
    {"web_search_options", "{" M ",\"messages\":[" U "],\"web_search_options\":{}}", NULL,
     "web_search_options"},
    {"temperature above 1", "{" M ",\"messages\":[" U "],\"temperature\":1.5}", NULL,
     "temperature"},
    {"temperature with reasoning",
     "{" M ",\"messages\":[" U "],\"temperature\":0.2,\"reasoning_effort\":\"low\"}", NULL,
     "temperature"},
    {"top_p with reasoning",
     "{" M ",\"messages\":[" U "],\"top_p\":0.5,\"reasoning_effort\":\"low\"}", NULL, "top_p"},
    {"forced tool with reasoning",
     "{" M ",\"messages\":[" U "]," TOOL ",\"tool_choice\":\"required\",\"reasoning_effort\":"
     "\"high\"}",
     NULL, "tool_choice"},
    {"response_format with reasoning",
     "{" M ",\"messages\":[" U "],\"response_format\":{\"type\":\"json_object\"},"
     "\"reasoning_effort\":\"low\"}",
     NULL, "response_format"},
    {"response_format with tools",
     "{" M ",\"messages\":[" U "]," TOOL ",\"response_format\":{\"type\":\"json_object\"}}", NULL,
     "response_format"},
    {"response_format schema not an object",
     "{" M ",\"messages\":[" U "],\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{"
     "\"name\":\"x\",\"schema\":{\"type\":\"array\"}}}}",
     NULL, "response_format"},
    {"unknown reasoning_effort", "{" M ",\"messages\":[" U "],\"reasoning_effort\":\"max\"}", NULL,
     "reasoning_effort"},
    {"max_completion_tokens 0", "{" M ",\"messages\":[" U "],\"max_completion_tokens\":0}", NULL,
     "max_completion_tokens"},
    {"http image",
     "{" M ",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{"
     "\"url\":\"http://example.com/a.png\"}}]}]}",
     NULL, "messages[0].content[0].image_url.url"},
    {"ftp image",
     "{" M ",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"x\"},{"
     "\"type\":\"image_url\",\"image_url\":\"ftp://example.com/a.png\"}]}]}",
     NULL, "messages[0].content[1].image_url.url"},
    {"unsupported image type",
     "{" M ",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{"
     "\"url\":\"data:image/bmp;base64," PNG "\"}}]}]}",
     NULL, "messages[0].content[0].image_url.url"},
    {"data URL without a comma",
     "{" M ",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{"
     "\"url\":\"data:image/png;base64\"}}]}]}",
     NULL, "messages[0].content[0].image_url.url"},
    {"data URL not base64",
     "{" M ",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{"
     "\"url\":\"data:image/png,abc\"}}]}]}",
     NULL, "messages[0].content[0].image_url.url"},
    {"data URL with bad base64",
     "{" M ",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{"
     "\"url\":\"data:image/png;base64,ab%cd\"}}]}]}",
     NULL, "messages[0].content[0].image_url.url"},
    {"data URL with no data",
     "{" M ",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{"
     "\"url\":\"data:image/png;base64,\"}}]}]}",
     NULL, "messages[0].content[0].image_url.url"},
    {"audio input part",
     "{" M ",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_audio\","
     "\"input_audio\":{\"data\":\"x\",\"format\":\"wav\"}}]}]}",
     NULL, "messages[0].content[0]"},
    {"image in a system message",
     "{" M ",\"messages\":[{\"role\":\"system\",\"content\":[{\"type\":\"image_url\",\"image_url\""
     ":{\"url\":\"https://example.com/a.png\"}}]}," U "]}",
     NULL, "messages[0].content[0]"},
    {"invalid tool arguments",
     "{" M ",\"messages\":[" U ",{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c1\",\"type\":"
     "\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{not json\"}}]}]}",
     NULL, "messages[1].tool_calls[0].function.arguments"},
    {"tool arguments not an object",
     "{" M ",\"messages\":[" U ",{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c1\",\"type\":"
     "\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"[1]\"}}]}]}",
     NULL, "messages[1].tool_calls[0].function.arguments"},
    {"tool call without id",
     "{" M ",\"messages\":[" U ",{\"role\":\"assistant\",\"tool_calls\":[{\"type\":\"function\","
     "\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]}]}",
     NULL, "messages[1].tool_calls[0]"},
    {"tool message without tool_call_id",
     "{" M ",\"messages\":[" U ",{\"role\":\"tool\",\"content\":\"x\"}]}", NULL,
     "messages[1].tool_call_id"},
    {"tool_choice required without tools",
     "{" M ",\"messages\":[" U "],\"tool_choice\":\"required\"}", NULL, "tool_choice"},
    {"unknown tool_choice", "{" M ",\"messages\":[" U "]," TOOL ",\"tool_choice\":\"always\"}",
     NULL, "tool_choice"},
    {"non-function tool",
     "{" M ",\"messages\":[" U "],\"tools\":[{\"type\":\"custom\",\"custom\":{\"name\":\"x\"}}]}",
     NULL, "tools[0]"},
    {"tool without a name",
     "{" M ",\"messages\":[" U "],\"tools\":[{\"type\":\"function\",\"function\":{}}]}", NULL,
     "tools[0]"},
    {"system messages only", "{" M ",\"messages\":[{\"role\":\"system\",\"content\":\"x\"}]}", NULL,
     "messages"},
    {"empty user message", "{" M ",\"messages\":[{\"role\":\"user\",\"content\":\"\"}]}", NULL,
     "messages[0].content"},
    {"stop with a number", "{" M ",\"messages\":[" U "],\"stop\":[\"a\",1]}", NULL, "stop"},
};

static void test_request_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(req_cases) / sizeof(req_cases[0]); i++) {
        const req_case_t *c = &req_cases[i];
        fx_t *f = fx_new(c->request);
        int rc = build(f);
        if (c->expected == NULL) {
            if (rc != -EINVAL)
                fail_msg("%s: expected -EINVAL, got %d", c->name, rc);
            if (strcmp(f->cx.error.param, c->param) != 0)
                fail_msg("%s: param '%s', expected '%s' (%s)", c->name, f->cx.error.param, c->param,
                         f->cx.error.message);
            assert_int_equal(f->cx.error.err, YR_E_INVALID_REQUEST);
            assert_true(strlen(f->cx.error.message) > 10);
        } else {
            if (rc != 0)
                fail_msg("%s: rc %d: %s", c->name, rc, f->cx.error.message);
            json_t *got = parse_or_fail(f->up.body, f->up.body_len);
            expect_json(c->name, got, c->expected);
            json_decref(got);
        }
        fx_free(f);
    }
}

static void test_rejection_messages_name_the_vendor(void **state)
{
    (void)state;
    fx_t *f = fx_new("{" M ",\"messages\":[" U "],\"n\":3}");
    f->provider.name = "claude-eu";
    assert_int_equal(build(f), -EINVAL);
    assert_non_null(strstr(f->cx.error.message, "claude-eu"));
    assert_non_null(strstr(f->cx.error.message, "'n'"));
    fx_free(f);
}

static bool has_header(const yr_upstream_req_t *up, const char *line)
{
    for (size_t i = 0; up->headers[i] != NULL; i++)
        if (strcmp(up->headers[i], line) == 0)
            return true;
    return false;
}

static void test_request_head(void **state)
{
    (void)state;
    fx_t *f = fx_new("{" M ",\"messages\":[" U "],\"stream\":true}");
    f->provider.anthropic_version = "2023-01-01";
    assert_int_equal(build(f), 0);
    assert_string_equal(f->up.url, "https://api.anthropic.com/v1/messages");
    assert_true(has_header(&f->up, "Content-Type: application/json"));
    assert_true(has_header(&f->up, "Accept: text/event-stream"));
    assert_true(has_header(&f->up, "x-api-key: sk-ant-test"));
    assert_true(has_header(&f->up, "anthropic-version: 2023-01-01"));
    assert_int_equal(f->up.connect_timeout_ms, 5000);
    assert_int_equal(f->up.first_byte_timeout_ms, 120000);
    assert_int_equal(f->up.timeout_ms, 600000);
    assert_ptr_equal(f->up.body, f->body.data);
    fx_free(f);

    f = fx_new("{" M ",\"messages\":[" U "]}");
    f->provider.api_key = NULL;
    f->provider.anthropic_version = NULL;
    f->provider.default_max_tokens = 123;
    assert_int_equal(build(f), 0);
    assert_true(has_header(&f->up, "Accept: application/json"));
    assert_true(has_header(&f->up, "anthropic-version: 2023-06-01"));
    for (size_t i = 0; f->up.headers[i] != NULL; i++)
        assert_null(strstr(f->up.headers[i], "x-api-key"));
    json_t *got = parse_or_fail(f->up.body, f->up.body_len);
    assert_int_equal(json_integer_value(json_object_get(got, "max_tokens")), 123);
    json_decref(got);
    fx_free(f);
}

static void test_body_cap(void **state)
{
    (void)state;
    fx_t *f = fx_new("{" M ",\"messages\":[" U "]}");
    yr_buf_free(&f->body);
    yr_buf_init(&f->body, 16);
    assert_int_equal(build(f), -E2BIG);
    fx_free(f);
}

static void test_provider_lookup(void **state)
{
    (void)state;
    const yr_provider_kind_ops_t *k = yr_provider_kind(YR_KIND_ANTHROPIC);
    assert_non_null(k);
    assert_ptr_equal(k->dialect, &yr_dialect_anthropic);
    assert_ptr_equal(k->transport, &yr_transport_anthropic);
    assert_string_equal(yr_dialect_anthropic.name, "anthropic");
    assert_ptr_equal(yr_provider_kind(YR_KIND_OPENAI)->dialect, &yr_dialect_openai);
}

/* ---- responses -------------------------------------------------------------------- */

/* Runs chat_response on body; returns the client JSON without "created"
 * (checked to be a positive integer). */
static json_t *respond(fx_t *f, const char *body, int *rc_out)
{
    yr_buf_t out;
    yr_buf_init(&out, 1 << 20);
    int rc = chat_response(f, yr_str(body), &out);
    *rc_out = rc;
    json_t *v = NULL;
    if (rc == 0) {
        v = parse_or_fail(out.data, out.len);
        json_t *created = json_object_get(v, "created");
        assert_true(json_is_integer(created) && json_integer_value(created) > 0);
        json_object_del(v, "created");
    }
    yr_buf_free(&out);
    return v;
}

static void test_response_text(void **state)
{
    (void)state;
    fx_t *f = fx_new("{" M ",\"messages\":[" U "]}");
    int rc;
    json_t *v = respond(
        f,
        "{\"id\":\"msg_01\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-x-1\","
        "\"content\":[{\"type\":\"text\",\"text\":\"Hello\"},{\"type\":\"text\",\"text\":\" "
        "world\"}],\"stop_reason\":\"end_turn\",\"stop_sequence\":null,\"usage\":{\"input_tokens\""
        ":10,\"output_tokens\":5}}",
        &rc);
    assert_int_equal(rc, 0);
    expect_json("text response", v,
                "{\"id\":\"chatcmpl-msg_01\",\"object\":\"chat.completion\",\"model\":"
                "\"claude-x-1\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
                "\"content\":\"Hello world\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":\"stop\"}],"
                "\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":5,\"total_tokens\":15,"
                "\"prompt_tokens_details\":{\"cached_tokens\":0},\"completion_tokens_details\":{"
                "\"reasoning_tokens\":0}}}");
    assert_true(f->cx.usage.present);
    assert_int_equal(f->cx.usage.prompt_tokens, 10);
    assert_int_equal(f->cx.usage.completion_tokens, 5);
    json_decref(v);
    fx_free(f);
}

static void test_response_tools_thinking_cache(void **state)
{
    (void)state;
    fx_t *f = fx_new("{" M ",\"messages\":[" U "]}");
    int rc;
    json_t *v = respond(
        f,
        "{\"id\":\"msg_02\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-x\","
        "\"content\":[{\"type\":\"thinking\",\"thinking\":\"Weather needs a tool.\",\"signature\":"
        "\"sig\"},{\"type\":\"redacted_thinking\",\"data\":\"xx\"},{\"type\":\"tool_use\",\"id\":"
        "\"toolu_A\",\"name\":\"get_weather\",\"input\":{\"city\":\"Paris\",\"days\":2}},{\"type\":"
        "\"tool_use\",\"id\":\"toolu_B\",\"name\":\"now\",\"input\":{}}],\"stop_reason\":"
        "\"tool_use\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":100,"
        "\"cache_creation_input_tokens\":20,\"cache_read_input_tokens\":300,\"output_tokens\":40,"
        "\"service_tier\":\"standard\"}}",
        &rc);
    assert_int_equal(rc, 0);
    expect_json("tool response", v,
                "{\"id\":\"chatcmpl-msg_02\",\"object\":\"chat.completion\",\"model\":\"claude-x\","
                "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":null,"
                "\"refusal\":null,\"reasoning_content\":\"Weather needs a tool.\",\"tool_calls\":[{\"id\":"
                "\"toolu_A\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
                "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\",\\\"days\\\":2}\"}},{\"id\":"
                "\"toolu_B\",\"type\":\"function\",\"function\":{\"name\":\"now\",\"arguments\":"
                "\"{}\"}}]},\"logprobs\":null,\"finish_reason\":\"tool_calls\"}],\"usage\":{"
                "\"prompt_tokens\":420,\"completion_tokens\":40,\"total_tokens\":460,"
                "\"prompt_tokens_details\":{\"cached_tokens\":300},\"completion_tokens_details\":{"
                "\"reasoning_tokens\":0}}}");
    assert_int_equal(f->cx.usage.prompt_tokens, 420);
    assert_int_equal(f->cx.usage.cached_tokens, 300);
    json_decref(v);
    fx_free(f);
}

static void test_response_json_mode(void **state)
{
    (void)state;
    fx_t *f = fx_new("{" M ",\"messages\":[" U "],\"response_format\":{\"type\":\"json_schema\","
                     "\"json_schema\":{\"name\":\"person\",\"schema\":{\"type\":\"object\"}}}}");
    assert_int_equal(build(f), 0);
    int rc;
    json_t *v = respond(
        f,
        "{\"id\":\"msg_03\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-x\","
        "\"content\":[{\"type\":\"text\",\"text\":\"Here:\"},{\"type\":\"tool_use\",\"id\":\"t\","
        "\"name\":\"person\",\"input\":{\"name\":\"Ada\"}}],\"stop_reason\":\"tool_use\","
        "\"usage\":{\"input_tokens\":3,\"output_tokens\":4}}",
        &rc);
    assert_int_equal(rc, 0);
    expect_json("json mode", json_object_get(v, "choices"),
                "[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
                "\"{\\\"name\\\":\\\"Ada\\\"}\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":\"stop\"}]");
    json_decref(v);
    fx_free(f);
}

static void test_stop_reasons(void **state)
{
    (void)state;
    static const char *const map[][2] = {
        {"end_turn", "stop"},
        {"stop_sequence", "stop"},
        {"max_tokens", "length"},
        {"tool_use", "tool_calls"},
        {"refusal", "content_filter"},
        {"pause_turn", "stop"},
        {"model_context_window_exceeded", "length"},
        {"something_new", "stop"},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        fx_t *f = fx_new("{" M ",\"messages\":[" U "]}");
        char body[512];
        snprintf(body, sizeof(body),
                 "{\"id\":\"msg_x\",\"model\":\"c\",\"content\":[{\"type\":\"text\",\"text\":"
                 "\"x\"}],\"stop_reason\":\"%s\",\"usage\":{\"input_tokens\":1,\"output_tokens\""
                 ":1}}",
                 map[i][0]);
        int rc;
        json_t *v = respond(f, body, &rc);
        assert_int_equal(rc, 0);
        const char *fr = json_string_value(
            json_object_get(json_array_get(json_object_get(v, "choices"), 0), "finish_reason"));
        if (fr == NULL || strcmp(fr, map[i][1]) != 0)
            fail_msg("stop_reason %s -> %s, expected %s", map[i][0], fr ? fr : "(null)", map[i][1]);
        json_decref(v);
        fx_free(f);
    }
}

static void test_invalid_responses(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "not json",
        "[]",
        "{\"content\":\"x\"}",
        "{\"id\":\"m\"}",
        "{\"content\":[{\"text\":\"no type\"}]}",
        "{\"content\":[{\"type\":\"text\"}]}",
        "{\"content\":[{\"type\":\"tool_use\",\"input\":{}}]}",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        fx_t *f = fx_new("{" M ",\"messages\":[" U "]}");
        int rc;
        json_t *v = respond(f, bodies[i], &rc);
        if (rc != -EINVAL)
            fail_msg("body %s: rc %d", bodies[i], rc);
        assert_null(v);
        fx_free(f);
    }
}

/* ---- streams ------------------------------------------------------------------------ */

typedef struct {
    const char *event;
    const char *data;
} ev_t;

/* Feeds events one by one; the output must be exactly the expected chunks.
 * Each expected element is [delta, finish_reason] for a choice chunk,
 * {"usage":{...}} for the usage chunk, or "[DONE]". Returns the rc of the
 * last event fed (feeding stops at the first error). */
static int run_stream(fx_t *f, const ev_t *evs, size_t n, const char *expected, bool *done_out)
{
    yr_buf_t out;
    yr_buf_init(&out, 1 << 20);
    bool done = false;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        yr_sse_event_t ev = {yr_str(evs[i].event), yr_str(evs[i].data)};
        rc = chat_event(f, &ev, &out, &done);
    }
    *done_out = done;
    json_t *want = parse_or_fail(expected, strlen(expected));
    json_t *got = json_array();
    const char *p = out.data ? out.data : "", *end = p + out.len;
    while (p < end) {
        const char *sep = strstr(p, "\n\n");
        assert_non_null(sep);
        assert_memory_equal(p, "data: ", 6);
        const char *data = p + 6;
        size_t len = (size_t)(sep - data);
        if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
            json_array_append_new(got, json_string("[DONE]"));
        } else {
            json_t *c = parse_or_fail(data, len);
            assert_string_equal(json_string_value(json_object_get(c, "object")),
                                "chat.completion.chunk");
            assert_true(json_integer_value(json_object_get(c, "created")) > 0);
            json_t *ch = json_object_get(c, "choices");
            json_t *item;
            if (json_array_size(ch) == 0) {
                item = json_pack("{s:O}", "usage", json_object_get(c, "usage"));
            } else {
                json_t *c0 = json_array_get(ch, 0);
                assert_int_equal(json_integer_value(json_object_get(c0, "index")), 0);
                assert_true(json_is_null(json_object_get(c0, "logprobs")));
                item = json_pack("[O,O]", json_object_get(c0, "delta"),
                                 json_object_get(c0, "finish_reason"));
                /* with include_usage every other chunk carries "usage":null */
                json_t *u = json_object_get(c, "usage");
                assert_true(f->chat.include_usage ? json_is_null(u) : u == NULL);
            }
            json_array_append_new(got, item);
            /* every chunk shares the message's id and model */
            json_t *first = json_object_get(c, "id");
            assert_non_null(first);
            json_decref(c);
        }
        p = sep + 2;
    }
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_COMPACT);
        print_error("chunks:\n  got:      %s\n  expected: %s\n  raw: %.*s\n", g, expected,
                    (int)out.len, out.data ? out.data : "");
        free(g);
        fail();
    }
    json_decref(got);
    json_decref(want);
    yr_buf_free(&out);
    return rc;
}

#define START(id, in, extra)                                                                       \
    {                                                                                              \
        "message_start", "{\"type\":\"message_start\",\"message\":{\"id\":\"" id                   \
                         "\",\"type\":\"message\",\"role\":"                                       \
                         "\"assistant\",\"content\":[],\"model\":\"claude-x\",\"stop_reason\":"    \
                         "null,\"stop_sequence\""                                                  \
                         ":null,\"usage\":{\"input_tokens\":" #in extra ",\"output_tokens\":1}}}"  \
    }
#define BLOCK_TEXT(i)                                                                              \
    {                                                                                              \
        "content_block_start", "{\"type\":\"content_block_start\",\"index\":" #i                   \
                               ",\"content_block\":{\"type\":\"text\",\"text\":\"\"}}"             \
    }
#define TEXT(i, t)                                                                                 \
    {                                                                                              \
        "content_block_delta", "{\"type\":\"content_block_delta\",\"index\":" #i                   \
                               ",\"delta\":{\"type\":\"text_delta\",\"text\":\"" t "\"}}"          \
    }
#define JSON_DELTA(i, t)                                                                           \
    {                                                                                              \
        "content_block_delta",                                                                     \
            "{\"type\":\"content_block_delta\",\"index\":" #i                                      \
            ",\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"" t "\"}}"               \
    }
#define BLOCK_TOOL(i, id, name)                                                                    \
    {                                                                                              \
        "content_block_start",                                                                     \
            "{\"type\":\"content_block_start\",\"index\":" #i ",\"content_block\":{\"type\":"      \
            "\"tool_use\",\"id\":\"" id "\",\"name\":\"" name "\",\"input\":{}}}"                  \
    }
#define STOP_BLOCK(i)                                                                              \
    {                                                                                              \
        "content_block_stop", "{\"type\":\"content_block_stop\",\"index\":" #i "}"                 \
    }
#define MSG_DELTA(reason, out)                                                                     \
    {                                                                                              \
        "message_delta", "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"" reason        \
                         "\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":" #out "}}"      \
    }
#define MSG_STOP                                                                                   \
    {                                                                                              \
        "message_stop", "{\"type\":\"message_stop\"}"                                              \
    }
#define PING                                                                                       \
    {                                                                                              \
        "ping", "{\"type\": \"ping\"}"                                                             \
    }
#define ROLE "[{\"role\":\"assistant\",\"content\":\"\"},null]"
#define CONTENT(t) "[{\"content\":\"" t "\"},null]"

static void test_stream_text_with_usage(void **state)
{
    (void)state;
    fx_t *f = fx_new("{" M ",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
                     "\"messages\":[" U "]}");
    const ev_t evs[] = {
        START("msg_1", 25, ""),
        BLOCK_TEXT(0),
        PING,
        TEXT(0, "Hel"),
        TEXT(0, "lo \\\"you\\\""),
        STOP_BLOCK(0),
        MSG_DELTA("end_turn", 3),
        MSG_STOP,
    };
    bool done;
    int rc =
        run_stream(f, evs, sizeof(evs) / sizeof(evs[0]),
                   "[" ROLE "," CONTENT("Hel") "," CONTENT(
                       "lo \\\"you\\\"") ",[{},\"stop\"],"
                                         "{\"usage\":{\"prompt_tokens\":25,\"completion_tokens\":3,"
                                         "\"total_tokens\":28,\"prompt_tokens_details\":{\"cached_"
                                         "tokens\":0},\"completion_tokens_details\":{"
                                         "\"reasoning_tokens\":0}}},"
                                         "\"[DONE]\"]",
                   &done);
    assert_int_equal(rc, 0);
    assert_true(done);
    assert_true(f->cx.usage.present);
    assert_int_equal(f->cx.usage.completion_tokens, 3);
    fx_free(f);
}

static void test_stream_exact_bytes(void **state)
{
    (void)state;
    /* The framing and the chunk's field order, byte for byte (created aside). */
    fx_t *f = fx_new("{" M ",\"stream\":true,\"messages\":[" U "]}");
    const ev_t evs[] = {START("msg_1", 2, ""), BLOCK_TEXT(0), TEXT(0, "Hi")};
    yr_buf_t out;
    yr_buf_init(&out, 1 << 16);
    bool done = false;
    for (size_t i = 0; i < 3; i++) {
        yr_sse_event_t ev = {yr_str(evs[i].event), yr_str(evs[i].data)};
        assert_int_equal(chat_event(f, &ev, &out, &done), 0);
    }
    char expected[1024];
    const char *c = strstr(out.data, "\"created\":");
    assert_non_null(c);
    long long created = strtoll(c + 10, NULL, 10);
    snprintf(expected, sizeof(expected),
             "data: {\"id\":\"chatcmpl-msg_1\",\"object\":\"chat.completion.chunk\",\"created\":"
             "%lld,\"model\":\"claude-x\",\"choices\":[{\"index\":0,\"delta\":{\"role\":"
             "\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n"
             "data: {\"id\":\"chatcmpl-msg_1\",\"object\":\"chat.completion.chunk\",\"created\":"
             "%lld,\"model\":\"claude-x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},"
             "\"logprobs\":null,\"finish_reason\":null}]}\n\n",
             created, created);
    assert_string_equal(out.data, expected);
    yr_buf_free(&out);
    fx_free(f);
}

static void test_stream_tool_use_fragments(void **state)
{
    (void)state;
    fx_t *f = fx_new("{" M ",\"stream\":true,\"messages\":[" U "]}");
    const ev_t evs[] = {
        START("msg_2", 9, ""),
        BLOCK_TEXT(0),
        TEXT(0, "Let me check."),
        STOP_BLOCK(0),
        BLOCK_TOOL(1, "toolu_01", "get_weather"),
        PING,
        JSON_DELTA(1, ""),
        JSON_DELTA(1, "{\\\"city\\\":"),
        JSON_DELTA(1, " \\\"Par"),
        JSON_DELTA(1, "is\\\"}"),
        STOP_BLOCK(1),
        MSG_DELTA("tool_use", 30),
        MSG_STOP,
    };
    bool done;
    int rc = run_stream(
        f, evs, sizeof(evs) / sizeof(evs[0]),
        "[" ROLE
        "," CONTENT("Let me check.") ","
                                     "[{\"tool_calls\":[{\"index\":0,\"id\":\"toolu_01\",\"type\":"
                                     "\"function\",\"function\":{"
                                     "\"name\":\"get_weather\",\"arguments\":\"\"}}]},null],"
                                     "[{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":"
                                     "\"{\\\"city\\\":\"}}]},null],"
                                     "[{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":"
                                     "\" \\\"Par\"}}]},null],"
                                     "[{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":"
                                     "\"is\\\"}\"}}]},null],"
                                     "[{},\"tool_calls\"],\"[DONE]\"]",
        &done);
    assert_int_equal(rc, 0);
    assert_true(done);
    fx_free(f);
}

static void test_stream_parallel_tools(void **state)
{
    (void)state;
    fx_t *f = fx_new("{" M ",\"stream\":true,\"messages\":[" U "]}");
    const ev_t evs[] = {
        START("msg_3", 9, ""),
        BLOCK_TOOL(0, "toolu_a", "f"),
        JSON_DELTA(0, "{\\\"x\\\""),
        JSON_DELTA(0, ":1}"),
        STOP_BLOCK(0),
        BLOCK_TOOL(1, "toolu_b", "g"),
        STOP_BLOCK(1),
        MSG_DELTA("tool_use", 12),
        MSG_STOP,
    };
    bool done;
    int rc = run_stream(
        f, evs, sizeof(evs) / sizeof(evs[0]),
        "[" ROLE ","
        "[{\"tool_calls\":[{\"index\":0,\"id\":\"toolu_a\",\"type\":\"function\",\"function\":{"
        "\"name\":\"f\",\"arguments\":\"\"}}]},null],"
        "[{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"x\\\"\"}}]},null],"
        "[{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\":1}\"}}]},null],"
        "[{\"tool_calls\":[{\"index\":1,\"id\":\"toolu_b\",\"type\":\"function\",\"function\":{"
        "\"name\":\"g\",\"arguments\":\"\"}}]},null],"
        "[{\"tool_calls\":[{\"index\":1,\"function\":{\"arguments\":\"{}\"}}]},null],"
        "[{},\"tool_calls\"],\"[DONE]\"]",
        &done);
    assert_int_equal(rc, 0);
    assert_true(done);
    fx_free(f);
}

static void test_stream_thinking(void **state)
{
    (void)state;
    fx_t *f = fx_new("{" M ",\"stream\":true,\"reasoning_effort\":\"low\",\"messages\":[" U "]}");
    assert_int_equal(build(f), 0);
    const ev_t evs[] = {
        START("msg_4", 5, ""),
        {"content_block_start", "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":"
                                "{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}"},
        {"content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                                "\"thinking_delta\",\"thinking\":\"Let me think.\"}}"},
        {"content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                                "\"signature_delta\",\"signature\":\"EqQBCgIYAhIM\"}}"},
        STOP_BLOCK(0),
        BLOCK_TEXT(1),
        TEXT(1, "42"),
        {"content_block_delta", "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":"
                                "\"citations_delta\",\"citation\":{}}}"},
        STOP_BLOCK(1),
        MSG_DELTA("max_tokens", 50),
        MSG_STOP,
    };
    bool done;
    int rc = run_stream(f, evs, sizeof(evs) / sizeof(evs[0]),
                        "[" ROLE ",[{\"reasoning_content\":\"Let me think.\"},null]," CONTENT(
                            "42") ",[{},\"length\"],\"[DONE]\"]",
                        &done);
    assert_int_equal(rc, 0);
    assert_true(done);
    fx_free(f);
}

static void test_stream_json_mode(void **state)
{
    (void)state;
    fx_t *f = fx_new("{" M ",\"stream\":true,\"response_format\":{\"type\":\"json_object\"},"
                     "\"messages\":[" U "]}");
    assert_int_equal(build(f), 0);
    const ev_t evs[] = {
        START("msg_5", 5, ""),
        BLOCK_TOOL(0, "toolu_j", "json_response"),
        JSON_DELTA(0, "{\\\"a\\\""),
        JSON_DELTA(0, ":true}"),
        STOP_BLOCK(0),
        MSG_DELTA("tool_use", 5),
        MSG_STOP,
    };
    bool done;
    int rc = run_stream(
        f, evs, sizeof(evs) / sizeof(evs[0]),
        "[" ROLE "," CONTENT("{\\\"a\\\"") "," CONTENT(":true}") ",[{},\"stop\"],\"[DONE]\"]",
        &done);
    assert_int_equal(rc, 0);
    fx_free(f);
}

static void test_stream_usage_with_cache(void **state)
{
    (void)state;
    fx_t *f = fx_new("{" M ",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
                     "\"messages\":[" U "]}");
    const ev_t evs[] = {
        START("msg_6", 100, ",\"cache_read_input_tokens\":50,\"cache_creation_input_tokens\":25"),
        BLOCK_TEXT(0),
        TEXT(0, "ok"),
        STOP_BLOCK(0),
        MSG_DELTA("end_turn", 7),
        MSG_STOP,
    };
    bool done;
    int rc = run_stream(
        f, evs, sizeof(evs) / sizeof(evs[0]),
        "[" ROLE "," CONTENT(
            "ok") ",[{},\"stop\"],{\"usage\":{\"prompt_tokens\":"
                  "175,\"completion_tokens\":7,\"total_tokens\":182,\"prompt_tokens_details\":"
                  "{\"cached_tokens\":50},\"completion_tokens_details\":{\"reasoning_tokens\":0}}},"
                  "\"[DONE]\"]",
        &done);
    assert_int_equal(rc, 0);
    assert_int_equal(f->cx.usage.prompt_tokens, 175);
    assert_int_equal(f->cx.usage.completion_tokens, 7);
    assert_int_equal(f->cx.usage.cached_tokens, 50);
    fx_free(f);
}

static void test_stream_error_event(void **state)
{
    (void)state;
    fx_t *f = fx_new("{" M ",\"stream\":true,\"messages\":[" U "]}");
    const ev_t evs[] = {
        START("msg_7", 5, ""),
        BLOCK_TEXT(0),
        TEXT(0, "Hi"),
        {"error", "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":"
                  "\"Overloaded\"}}"},
        MSG_STOP,
    };
    bool done;
    int rc =
        run_stream(f, evs, sizeof(evs) / sizeof(evs[0]), "[" ROLE "," CONTENT("Hi") "]", &done);
    assert_int_equal(rc, -ECANCELED);
    assert_false(done);
    assert_string_equal(f->cx.error.message, "Overloaded");
    assert_string_equal(f->cx.error_type, "overloaded_error");
    assert_int_equal(f->cx.error_status, 529);
    fx_free(f);
}

static void test_stream_error_statuses(void **state)
{
    (void)state;
    static const struct {
        const char *type;
        int status;
    } map[] = {
        {"overloaded_error", 529},      {"rate_limit_error", 429},     {"api_error", 500},
        {"invalid_request_error", 400}, {"authentication_error", 401}, {"permission_error", 403},
        {"not_found_error", 404},       {"request_too_large", 413},    {"brand_new_error", 500},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        fx_t *f = fx_new("{" M ",\"stream\":true,\"messages\":[" U "]}");
        char data[256];
        snprintf(data, sizeof(data),
                 "{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":\"m%zu\"}}",
                 map[i].type, i);
        yr_sse_event_t ev = {YR_STR("error"), yr_str(data)};
        yr_buf_t out;
        yr_buf_init(&out, 4096);
        bool done = false;
        /* an error before anything else is reported too (the gateway may fail over) */
        assert_int_equal(chat_event(f, &ev, &out, &done), -ECANCELED);
        assert_int_equal(out.len, 0);
        assert_int_equal(f->cx.error_status, map[i].status);
        assert_string_equal(f->cx.error_type, map[i].type);
        char m[16];
        snprintf(m, sizeof(m), "m%zu", i);
        assert_string_equal(f->cx.error.message, m);
        yr_buf_free(&out);
        fx_free(f);
    }
}

static void test_stream_ignores_ping_and_unknown(void **state)
{
    (void)state;
    fx_t *f = fx_new("{" M ",\"stream\":true,\"messages\":[" U "]}");
    const ev_t evs[] = {
        PING,
        START("msg_8", 5, ""),
        {"brand_new_event", "{\"type\":\"brand_new_event\",\"x\":1}"},
        {"", "{\"type\":\"ping\"}"},
        {"ping", "{}"},
        {"content_block_start", "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":"
                                "{\"type\":\"server_tool_use\",\"id\":\"srvtoolu_1\",\"name\":"
                                "\"web_search\",\"input\":{}}}"},
        STOP_BLOCK(0),
        BLOCK_TEXT(1),
        TEXT(1, "ok"),
        STOP_BLOCK(1),
        MSG_DELTA("end_turn", 2),
        MSG_STOP,
        PING,
    };
    bool done;
    int rc = run_stream(f, evs, sizeof(evs) / sizeof(evs[0]),
                        "[" ROLE "," CONTENT("ok") ",[{},\"stop\"],\"[DONE]\"]", &done);
    assert_int_equal(rc, 0);
    assert_true(done);
    fx_free(f);
}

static void test_stream_malformed(void **state)
{
    (void)state;
    static const ev_t bad[][2] = {
        {START("msg_9", 1, ""), {"content_block_delta", "{not json"}},
        {START("msg_9", 1, ""), {"content_block_delta", "[1,2]"}},
        {START("msg_9", 1, ""), {"", "{\"no\":\"type\"}"}},
        {START("msg_9", 1, ""), JSON_DELTA(0, "{")}, /* input_json_delta outside a tool block */
        {BLOCK_TEXT(0), TEXT(0, "x")},               /* blocks before message_start */
        {START("msg_9", 1, ""), {"content_block_start", "{\"type\":\"content_block_start\"}"}},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fx_t *f = fx_new("{" M ",\"stream\":true,\"messages\":[" U "]}");
        yr_buf_t out;
        yr_buf_init(&out, 1 << 16);
        bool done = false;
        int rc = 0;
        for (size_t k = 0; k < 2 && rc == 0; k++) {
            yr_sse_event_t ev = {yr_str(bad[i][k].event), yr_str(bad[i][k].data)};
            rc = chat_event(f, &ev, &out, &done);
        }
        if (rc != -EINVAL)
            fail_msg("case %zu: rc %d", i, rc);
        yr_buf_free(&out);
        fx_free(f);
    }
}

/* ---- parse_error ---------------------------------------------------------------------- */

static void test_parse_error(void **state)
{
    (void)state;
    yr_provider_error_t err;
    yr_dialect_anthropic.parse_error(
        YR_STR("{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":"
               "\"max_tokens: Field required\"},\"request_id\":\"req_1\"}"),
        &err);
    assert_string_equal(err.message, "max_tokens: Field required");
    assert_string_equal(err.type, "invalid_request_error");
    assert_string_equal(err.code, "invalid_request_error");
    assert_string_equal(err.param, "");
    assert_int_equal(err.retry_after_ms, -1);

    yr_dialect_anthropic.parse_error(YR_STR("<html>bad gateway</html>"), &err);
    assert_string_equal(err.message, "");
    assert_string_equal(err.type, "");
    assert_string_equal(err.code, "");
}

/* Found by fuzz_anthropic_decode: a passthrough stream message without an
 * "event:" line takes its name from the data's "type", which pointed into
 * the parsed JSON after it was freed (a use-after-free into the client's
 * bytes). The name comes out intact, re-framed with an event: line. */
static void test_pass_event_without_event_line(void **state)
{
    (void)state;
    fx_t *f = fx_new("{" M ",\"messages\":[" U "],\"stream\":true}");
    yr_buf_t out;
    yr_buf_init(&out, 1 << 16);
    bool done = false;
    static const char data[] = "{\"type\":\"message_stop\"}";
    yr_frame_t m = {.data = yr_str(data)};
    assert_int_equal(yr_dialect_anthropic.pass_event(&f->cx, &m, &out, &done), 0);
    assert_true(done);
    static const char want[] = "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    assert_int_equal(out.len, sizeof(want) - 1);
    assert_memory_equal(out.data, want, sizeof(want) - 1);
    yr_buf_free(&out);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_table),
        cmocka_unit_test(test_pass_event_without_event_line),
        cmocka_unit_test(test_rejection_messages_name_the_vendor),
        cmocka_unit_test(test_request_head),
        cmocka_unit_test(test_body_cap),
        cmocka_unit_test(test_provider_lookup),
        cmocka_unit_test(test_response_text),
        cmocka_unit_test(test_response_tools_thinking_cache),
        cmocka_unit_test(test_response_json_mode),
        cmocka_unit_test(test_stop_reasons),
        cmocka_unit_test(test_invalid_responses),
        cmocka_unit_test(test_stream_text_with_usage),
        cmocka_unit_test(test_stream_exact_bytes),
        cmocka_unit_test(test_stream_tool_use_fragments),
        cmocka_unit_test(test_stream_parallel_tools),
        cmocka_unit_test(test_stream_thinking),
        cmocka_unit_test(test_stream_json_mode),
        cmocka_unit_test(test_stream_usage_with_cache),
        cmocka_unit_test(test_stream_error_event),
        cmocka_unit_test(test_stream_error_statuses),
        cmocka_unit_test(test_stream_ignores_ping_and_unknown),
        cmocka_unit_test(test_stream_malformed),
        cmocka_unit_test(test_parse_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
