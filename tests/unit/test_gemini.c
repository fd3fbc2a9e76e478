/* The Gemini provider's pure functions: OpenAI requests -> generateContent
 * bodies (a table compared as parsed JSON, and every rejection), the schema
 * conversion, the transport's head, answers and event sequences -> what an
 * OpenAI client sees, thought signatures both ways, errors and their
 * outcomes, and the passthrough trio. */
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
#include "providers/gemini.h"
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
    yr_oai_enc_t *enc;
    const char *path;
} fx_t;

static fx_t *fx_model(const char *request, const char *model)
{
    fx_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->provider = (yr_provider_conf_t){
        .name = "google",
        .kind = YR_KIND_GEMINI,
        .base_url = "https://generativelanguage.googleapis.com",
        .api_key = "AIza-test",
        .connect_timeout_ms = 5000,
        .first_byte_timeout_ms = 120000,
        .timeout_ms = 600000,
    };
    f->route = (yr_route_conf_t){.provider = &f->provider, .model = model};
    yr_api_error_t err;
    if (yr_chat_parse(request, strlen(request), &f->chat, &err) != 0)
        fail_msg("request does not parse: %s: %s", err.message, request);
    if (yr_chat_load_root(&f->chat) != 0)
        fail_msg("jansson refuses what the tokenizer accepted: %s", request);
    f->pool = yr_pool_create(4096);
    f->cx = (yr_call_ctx_t){
        .pool = f->pool, .chat = &f->chat, .route = &f->route, .request_id = YR_STR("req-1")};
    yr_buf_init(&f->body, 1 << 20);
    return f;
}

static fx_t *fx_new(const char *request)
{
    return fx_model(request, "gemini-2.5-flash");
}

static void fx_free(fx_t *f)
{
    yr_oai_enc_free(f->enc);
    yr_chat_free(&f->chat);
    yr_buf_free(&f->body);
    yr_pool_destroy(f->pool);
    free(f);
}

static int build(fx_t *f)
{
    const char *const *extra = NULL;
    int rc = yr_dialect_gemini.build(&f->cx, YR_STR(""), &f->body, &f->up, &f->path, &extra);
    if (rc == 0)
        rc = yr_transport_gemini.prepare(&f->cx, f->path, extra, &f->up);
    return rc;
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
        char *g = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
        char *w = json_dumps(want, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
        print_error("%s\n  got:      %s\n  expected: %s\n", what, g, w);
        free(g);
        free(w);
        json_decref(want);
        fail();
    }
    json_decref(want);
}

typedef struct {
    yr_oai_enc_t *enc;
    yr_buf_t *out;
} oai_sink_t;

static int to_openai(void *arg, const yr_event_t *ev)
{
    oai_sink_t *k = arg;
    return ev->type == YR_EV_ERROR ? 0 : yr_oai_enc_event(k->enc, ev, k->out);
}

/* The chat.completion an OpenAI client gets for a Gemini body. */
static json_t *completion(fx_t *f, const char *body, int *rc)
{
    yr_buf_t out;
    yr_buf_init(&out, 1 << 20);
    yr_oai_enc_opts_t o = {.id_seed = f->cx.request_id};
    oai_sink_t k = {yr_oai_enc_new(&o), &out};
    *rc = yr_dialect_gemini.response(&f->cx, yr_str(body), to_openai, &k);
    yr_oai_enc_free(k.enc);
    json_t *v = *rc == 0 ? parse_or_fail(out.data, out.len) : NULL;
    yr_buf_free(&out);
    return v;
}

/* Feeds SSE data payloads; returns the chunks an OpenAI client got (parsed,
 * "[DONE]" as a string) and the rc of the first failing event. */
static json_t *stream(fx_t *f, const char *const *events, size_t n, int *rc, bool *done)
{
    if (f->enc == NULL) {
        yr_oai_enc_opts_t o = {.id_seed = f->cx.request_id,
                               .stream = true,
                               .include_usage = f->chat.include_usage};
        f->enc = yr_oai_enc_new(&o);
    }
    yr_buf_t out;
    yr_buf_init(&out, 1 << 20);
    oai_sink_t k = {f->enc, &out};
    *rc = 0;
    *done = false;
    for (size_t i = 0; i < n && *rc == 0; i++) {
        yr_frame_t m = {.event = YR_STR_NULL, .data = yr_str(events[i])};
        *rc = yr_dialect_gemini.event(&f->cx, &m, to_openai, &k, done);
    }
    json_t *chunks = json_array();
    const char *p = out.data ? out.data : "";
    while ((p = strstr(p, "data: ")) != NULL) {
        p += 6;
        const char *end = strstr(p, "\n\n");
        size_t len = end ? (size_t)(end - p) : strlen(p);
        json_array_append_new(chunks, len == 6 && memcmp(p, "[DONE]", 6) == 0
                                          ? json_string("[DONE]")
                                          : parse_or_fail(p, len));
        p += len;
    }
    yr_buf_free(&out);
    return chunks;
}

/* ---- requests ------------------------------------------------------------------- */

typedef struct {
    const char *name;
    const char *model;
    const char *request;
    const char *expected; /* the generateContent body, or NULL for a rejection */
    const char *param;
} req_case_t;

#define U "{\"role\":\"user\",\"content\":\"hi\"}"
#define M "\"model\":\"gpt\""
#define PNG "iVBORw0KGgo="
#define HI "{\"role\":\"user\",\"parts\":[{\"text\":\"hi\"}]}"
#define G25 "gemini-2.5-flash"
#define G3 "gemini-3-pro-preview"
#define WEATHER                                                                                    \
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":"   \
    "\"w\",\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},"  \
    "\"required\":[\"city\"],\"additionalProperties\":false}}}]"
#define WEATHER_DECL                                                                               \
    "\"tools\":[{\"functionDeclarations\":[{\"name\":\"get_weather\",\"description\":\"w\","      \
    "\"parameters\":{\"type\":\"OBJECT\",\"properties\":{\"city\":{\"type\":\"STRING\"}},"        \
    "\"required\":[\"city\"]}}]}]"

static const req_case_t req_cases[] = {
    {"minimal", G25, "{" M ",\"messages\":[" U "]}", "{\"contents\":[" HI "]}", NULL},
    {"system and developer messages become systemInstruction (hoisted)", G25,
     "{" M ",\"messages\":[{\"role\":\"system\",\"content\":\"a\"}," U
     ",{\"role\":\"developer\",\"content\":[{\"type\":\"text\",\"text\":\"b\"}]}]}",
     "{\"systemInstruction\":{\"parts\":[{\"text\":\"a\"},{\"text\":\"b\"}]},\"contents\":[" HI
     "]}",
     NULL},
    {"same-role turns are merged; assistant is model; empty parts dropped", G25,
     "{" M ",\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\",\"content\":["
     "{\"type\":\"text\",\"text\":\"\"},{\"type\":\"text\",\"text\":\"b\"}]},{\"role\":"
     "\"assistant\",\"content\":\"c\"},{\"role\":\"assistant\",\"content\":\"\"},{\"role\":"
     "\"user\",\"content\":\"d\"}]}",
     "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"a\"},{\"text\":\"b\"}]},{\"role\":"
     "\"model\",\"parts\":[{\"text\":\"c\"}]},{\"role\":\"user\",\"parts\":[{\"text\":\"d\"}]}]}",
     NULL},
    {"data URL image -> inlineData", G25,
     "{" M ",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"what?\"},"
     "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:Image/JPG;base64," PNG
     "\",\"detail\":\"low\"}}]}]}",
     "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"what?\"},{\"inlineData\":{"
     "\"mimeType\":\"image/jpeg\",\"data\":\"" PNG "\"}}]}]}",
     NULL},
    {"sampling, limits, stop, seed, penalties", G25,
     "{" M ",\"messages\":[" U "],\"temperature\":0.5,\"top_p\":0.9,\"max_tokens\":100,\"stop\":"
     "\"END\",\"seed\":7,\"presence_penalty\":0.5,\"frequency_penalty\":0.25,\"n\":1,\"user\":"
     "\"u\"}",
     "{\"contents\":[" HI "],\"generationConfig\":{\"temperature\":0.5,\"topP\":0.9,"
     "\"presencePenalty\":0.5,\"frequencyPenalty\":0.25,\"seed\":7,\"maxOutputTokens\":100,"
     "\"stopSequences\":[\"END\"]}}",
     NULL},
    {"max_completion_tokens wins over max_tokens", G25,
     "{" M ",\"messages\":[" U "],\"max_tokens\":100,\"max_completion_tokens\":50}",
     "{\"contents\":[" HI "],\"generationConfig\":{\"maxOutputTokens\":50}}", NULL},
    {"tools: schema converted, additionalProperties dropped", G25,
     "{" M ",\"messages\":[" U "]," WEATHER "}", "{\"contents\":[" HI "]," WEATHER_DECL "}", NULL},
    {"a tool without parameters has none", G25,
     "{" M ",\"messages\":[" U "],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":"
     "\"now\",\"parameters\":{\"type\":\"object\",\"properties\":{}}}}]}",
     "{\"contents\":[" HI "],\"tools\":[{\"functionDeclarations\":[{\"name\":\"now\"}]}]}", NULL},
    {"tool_choice required -> ANY", G25,
     "{" M ",\"messages\":[" U "]," WEATHER ",\"tool_choice\":\"required\"}",
     "{\"contents\":[" HI "]," WEATHER_DECL
     ",\"toolConfig\":{\"functionCallingConfig\":{\"mode\":\"ANY\"}}}",
     NULL},
    {"tool_choice named -> ANY + allowedFunctionNames", G25,
     "{" M ",\"messages\":[" U "]," WEATHER
     ",\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}}}",
     "{\"contents\":[" HI "]," WEATHER_DECL
     ",\"toolConfig\":{\"functionCallingConfig\":{\"mode\":\"ANY\",\"allowedFunctionNames\":["
     "\"get_weather\"]}}}",
     NULL},
    {"tool_choice none and auto", G25,
     "{" M ",\"messages\":[" U "]," WEATHER ",\"tool_choice\":\"none\"}",
     "{\"contents\":[" HI "]," WEATHER_DECL
     ",\"toolConfig\":{\"functionCallingConfig\":{\"mode\":\"NONE\"}}}",
     NULL},
    {"tool calls and results: names recovered, one user turn, objects; Gemini ids echoed", G25,
     "{" M ",\"messages\":[" U ",{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":"
     "\"fc-1\",\"type\":\"function\",\"function\":{\"name\":\"a\",\"arguments\":\"{\\\"x\\\":1}\"}"
     ",\"extra_content\":{\"google\":{\"thought_signature\":\"SIG1\"}}},{\"id\":\"call_B\",\"type"
     "\":\"function\",\"function\":{\"name\":\"b\",\"arguments\":\"\"}}]},{\"role\":\"tool\","
     "\"tool_call_id\":\"fc-1\",\"content\":\"18C\"},{\"role\":\"tool\",\"tool_call_id\":"
     "\"call_B\",\"content\":\"{\\\"ok\\\":true}\"}]}",
     "{\"contents\":[" HI ",{\"role\":\"model\",\"parts\":[{\"functionCall\":{\"name\":\"a\","
     "\"args\":{\"x\":1},\"id\":\"fc-1\"},\"thoughtSignature\":\"SIG1\"},{\"functionCall\":{"
     "\"name\":\"b\",\"args\":{}}}]},{\"role\":\"user\",\"parts\":[{\"functionResponse\":{\"name\":"
     "\"a\",\"response\":{\"result\":\"18C\"},\"id\":\"fc-1\"}},{\"functionResponse\":{\"name\":"
     "\"b\",\"response\":{\"ok\":true}}}]}]}",
     NULL},
    {"no signature on the current turn's step: the documented placeholder", G3,
     "{" M ",\"messages\":[" U ",{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"call_1\","
     "\"type\":\"function\",\"function\":{\"name\":\"a\",\"arguments\":\"{}\"}}]},{\"role\":"
     "\"tool\",\"tool_call_id\":\"call_1\",\"content\":[{\"type\":\"text\",\"text\":\"r\"}]}]}",
     "{\"contents\":[" HI ",{\"role\":\"model\",\"parts\":[{\"functionCall\":{\"name\":\"a\","
     "\"args\":{}},\"thoughtSignature\":\"skip_thought_signature_validator\"}]},{\"role\":\"user\","
     "\"parts\":[{\"functionResponse\":{\"name\":\"a\",\"response\":{\"result\":\"r\"}}}]}]}",
     NULL},
    {"earlier turns need no signature; LiteLLM's id form is read", G3,
     "{" M ",\"messages\":[" U ",{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"x__thought__"
     "QUJD\",\"type\":\"function\",\"function\":{\"name\":\"a\",\"arguments\":\"{}\"}},{\"id\":"
     "\"call_2\",\"type\":\"function\",\"function\":{\"name\":\"a\",\"arguments\":\"{}\"}}]},{"
     "\"role\":\"tool\",\"tool_call_id\":\"x__thought__QUJD\",\"content\":\"1\"},{\"role\":"
     "\"tool\",\"tool_call_id\":\"call_2\",\"content\":\"2\"},{\"role\":\"assistant\",\"content\":"
     "\"done\"}," U "]}",
     "{\"contents\":[" HI ",{\"role\":\"model\",\"parts\":[{\"functionCall\":{\"name\":\"a\","
     "\"args\":{}},\"thoughtSignature\":\"QUJD\"},{\"functionCall\":{\"name\":\"a\",\"args\":{}}}]},"
     "{\"role\":\"user\",\"parts\":[{\"functionResponse\":{\"name\":\"a\",\"response\":{\"result\":"
     "\"1\"}}},{\"functionResponse\":{\"name\":\"a\",\"response\":{\"result\":\"2\"}}}]},{\"role\":"
     "\"model\",\"parts\":[{\"text\":\"done\"}]}," HI "]}",
     NULL},
    {"reasoning_effort on 2.5: a budget", G25,
     "{" M ",\"messages\":[" U "],\"reasoning_effort\":\"medium\"}",
     "{\"contents\":[" HI "],\"generationConfig\":{\"thinkingConfig\":{\"thinkingBudget\":8192,"
     "\"includeThoughts\":true}}}",
     NULL},
    {"reasoning_effort none on 2.5 Pro: its least budget", "gemini-2.5-pro",
     "{" M ",\"messages\":[" U "],\"reasoning_effort\":\"none\"}",
     "{\"contents\":[" HI "],\"generationConfig\":{\"thinkingConfig\":{\"thinkingBudget\":128,"
     "\"includeThoughts\":false}}}",
     NULL},
    {"reasoning_effort on 3: a level", G3,
     "{" M ",\"messages\":[" U "],\"reasoning_effort\":\"low\"}",
     "{\"contents\":[" HI "],\"generationConfig\":{\"thinkingConfig\":{\"thinkingLevel\":\"low\","
     "\"includeThoughts\":true}}}",
     NULL},
    {"reasoning_effort on 3 Flash: medium", "gemini-3-flash-preview",
     "{" M ",\"messages\":[" U "],\"reasoning_effort\":\"medium\"}",
     "{\"contents\":[" HI "],\"generationConfig\":{\"thinkingConfig\":{\"thinkingLevel\":\"medium\","
     "\"includeThoughts\":true}}}",
     NULL},
    {"reasoning_effort on 2.0: no thinking control", "gemini-2.0-flash",
     "{" M ",\"messages\":[" U "],\"reasoning_effort\":\"high\"}", "{\"contents\":[" HI "]}", NULL},
    {"json_object", G25, "{" M ",\"messages\":[" U "],\"response_format\":{\"type\":\"json_object\"}}",
     "{\"contents\":[" HI "],\"generationConfig\":{\"responseMimeType\":\"application/json\"}}",
     NULL},
    {"json_schema on 2.5 -> responseJsonSchema (documented keywords only)", G25,
     "{" M ",\"messages\":[" U "],\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{"
     "\"name\":\"x\",\"strict\":true,\"schema\":{\"$schema\":\"http://json-schema.org/draft-07/"
     "schema#\",\"type\":\"object\",\"properties\":{\"a\":{\"type\":[\"string\",\"null\"],"
     "\"const\":\"k\"}},\"required\":[\"a\"],\"additionalProperties\":false}}}}",
     "{\"contents\":[" HI "],\"generationConfig\":{\"responseMimeType\":\"application/json\","
     "\"responseJsonSchema\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":[\"string\","
     "\"null\"]}},\"required\":[\"a\"],\"additionalProperties\":false}}}",
     NULL},
    {"json_schema on 2.0 -> a converted responseSchema", "gemini-2.0-flash",
     "{" M ",\"messages\":[" U "],\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{"
     "\"name\":\"x\",\"schema\":{\"type\":\"object\",\"properties\":{\"a\":{\"anyOf\":[{\"$ref\":"
     "\"#/$defs/A\"},{\"type\":\"null\"}]},\"b\":{\"type\":\"integer\",\"exclusiveMinimum\":0,"
     "\"format\":\"uint8\"},\"c\":{\"type\":\"string\",\"format\":\"date-time\"}},\"$defs\":{\"A\":"
     "{\"type\":\"string\",\"enum\":[\"p\",\"q\"]}}}}}}",
     "{\"contents\":[" HI "],\"generationConfig\":{\"responseMimeType\":\"application/json\","
     "\"responseSchema\":{\"type\":\"OBJECT\",\"properties\":{\"a\":{\"type\":\"STRING\",\"enum\":"
     "[\"p\",\"q\"],\"nullable\":true},\"b\":{\"type\":\"INTEGER\"},\"c\":{\"type\":\"STRING\","
     "\"format\":\"date-time\"}},\"propertyOrdering\":[\"a\",\"b\",\"c\"]}}}",
     NULL},
    {"tool schema: $ref, allOf, type arrays, oneOf, const, prefixItems", G25,
     "{" M ",\"messages\":[" U "],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\","
     "\"parameters\":{\"$schema\":\"x\",\"type\":\"object\",\"properties\":{\"p\":{\"$ref\":"
     "\"#/definitions/P\",\"description\":\"the p\"},\"q\":{\"allOf\":[{\"type\":\"object\","
     "\"properties\":{\"a\":{\"type\":\"number\"}}},{\"properties\":{\"b\":{\"type\":\"boolean\"}},"
     "\"required\":[\"b\"]}]},\"r\":{\"type\":[\"string\",\"integer\"]},\"s\":{\"oneOf\":[{\"type\":"
     "\"string\"},{\"type\":\"number\"}]},\"t\":{\"const\":\"fixed\"},\"u\":{\"type\":\"array\","
     "\"prefixItems\":[{\"type\":\"string\"}],\"not\":{},\"if\":{},\"propertyNames\":{}}},"
     "\"definitions\":{\"P\":{\"type\":\"string\",\"minLength\":1}}}}}]}",
     "{\"contents\":[" HI "],\"tools\":[{\"functionDeclarations\":[{\"name\":\"f\",\"parameters\":"
     "{\"type\":\"OBJECT\",\"properties\":{\"p\":{\"type\":\"STRING\",\"minLength\":1,"
     "\"description\":\"the p\"},\"q\":{\"type\":\"OBJECT\",\"properties\":{\"a\":{\"type\":"
     "\"NUMBER\"},\"b\":{\"type\":\"BOOLEAN\"}},\"propertyOrdering\":[\"a\",\"b\"],\"required\":["
     "\"b\"]},\"r\":{\"anyOf\":[{\"type\":\"STRING\"},{\"type\":\"INTEGER\"}]},\"s\":{\"anyOf\":[{"
     "\"type\":\"STRING\"},{\"type\":\"NUMBER\"}]},\"t\":{\"type\":\"STRING\",\"enum\":[\"fixed\"]},"
     "\"u\":{\"type\":\"ARRAY\",\"items\":{\"type\":\"STRING\"}}},\"propertyOrdering\":[\"p\",\"q\","
     "\"r\",\"s\",\"t\",\"u\"]}}]}]}",
     NULL},
    {"tool schema: every schema typed, items only on arrays, required restricted", G25,
     "{" M ",\"messages\":[" U "],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\","
     "\"parameters\":{\"type\":\"object\",\"properties\":{\"any\":{},\"list\":{\"type\":"
     "\"array\"},\"mixed\":{\"type\":[\"string\",\"array\",\"null\"],\"items\":{\"type\":"
     "\"integer\"},\"minLength\":2,\"description\":\"d\"},\"n\":{\"type\":\"number\","
     "\"minimum\":1,\"minLength\":3}},\"required\":[\"any\",\"ghost\"]}}}]}",
     "{\"contents\":[" HI "],\"tools\":[{\"functionDeclarations\":[{\"name\":\"f\",\"parameters\":"
     "{\"type\":\"OBJECT\",\"properties\":{\"any\":{\"type\":\"STRING\"},\"list\":{\"type\":"
     "\"ARRAY\",\"items\":{\"type\":\"STRING\"}},\"mixed\":{\"anyOf\":[{\"type\":\"STRING\","
     "\"minLength\":2},{\"type\":\"ARRAY\",\"items\":{\"type\":\"INTEGER\"}}],\"description\":"
     "\"d\",\"nullable\":true},\"n\":{\"type\":\"NUMBER\",\"minimum\":1}},\"required\":[\"any\"],"
     "\"propertyOrdering\":[\"any\",\"list\",\"mixed\",\"n\"]}}]}]}",
     NULL},
    /* rejections */
    {"a function name Gemini refuses", G25,
     "{" M ",\"messages\":[" U "],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":"
     "\"1st-tool\"}}]}",
     NULL, "tools[0]"},
    {"only system messages", G25, "{" M ",\"messages\":[{\"role\":\"system\",\"content\":\"x\"}]}",
     NULL, "messages"},
    {"n > 1", G25, "{" M ",\"messages\":[" U "],\"n\":2}", NULL, "n"},
    {"logprobs", G25, "{" M ",\"messages\":[" U "],\"logprobs\":true}", NULL, "logprobs"},
    {"logit_bias", G25, "{" M ",\"messages\":[" U "],\"logit_bias\":{\"1\":2}}", NULL, "logit_bias"},
    {"audio", G25, "{" M ",\"messages\":[" U "],\"audio\":{\"voice\":\"x\"}}", NULL, "audio"},
    {"legacy functions", G25, "{" M ",\"messages\":[" U "],\"functions\":[]}", NULL, "functions"},
    {"unknown reasoning_effort", G25, "{" M ",\"messages\":[" U "],\"reasoning_effort\":\"max\"}",
     NULL, "reasoning_effort"},
    {"https image that was not fetched", G25,
     "{" M ",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{"
     "\"url\":\"https://example.com/a.png\"}}]}]}",
     NULL, "messages[0].content[0].image_url.url"},
    {"unsupported image type", G25,
     "{" M ",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{"
     "\"url\":\"data:image/gif;base64," PNG "\"}}]}]}",
     NULL, "messages[0].content[0].image_url.url"},
    {"a tool message answering no call", G25,
     "{" M ",\"messages\":[" U ",{\"role\":\"tool\",\"tool_call_id\":\"nope\",\"content\":\"x\"}]}",
     NULL, "messages[1].tool_call_id"},
    {"arguments that are not an object", G25,
     "{" M ",\"messages\":[" U ",{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c\",\"type\":"
     "\"function\",\"function\":{\"name\":\"a\",\"arguments\":\"[1]\"}}]}]}",
     NULL, "messages[1].tool_calls[0].function.arguments"},
    {"a recursive tool schema", G25,
     "{" M ",\"messages\":[" U "],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\","
     "\"parameters\":{\"type\":\"object\",\"properties\":{\"n\":{\"$ref\":\"#/$defs/N\"}},\"$defs\":"
     "{\"N\":{\"type\":\"object\",\"properties\":{\"next\":{\"$ref\":\"#/$defs/N\"}}}}}}}]}",
     NULL, "tools[0].function.parameters"},
    {"response_format with tools before Gemini 3", G25,
     "{" M ",\"messages\":[" U "]," WEATHER ",\"response_format\":{\"type\":\"json_object\"}}", NULL,
     "response_format"},
    {"tool_choice without tools", G25, "{" M ",\"messages\":[" U "],\"tool_choice\":\"required\"}",
     NULL, "tool_choice"},
    {"a tool of another type", G25,
     "{" M ",\"messages\":[" U "],\"tools\":[{\"type\":\"web_search\"}]}", NULL, "tools[0]"},
    {"legacy role function", G25,
     "{" M ",\"messages\":[" U ",{\"role\":\"function\",\"name\":\"f\",\"content\":\"x\"}]}", NULL,
     "messages[1].role"},
};

static void test_request_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(req_cases) / sizeof(req_cases[0]); i++) {
        const req_case_t *c = &req_cases[i];
        fx_t *f = fx_model(c->request, c->model);
        int rc = build(f);
        if (c->expected == NULL) {
            if (rc != -EINVAL)
                fail_msg("%s: expected -EINVAL, got %d", c->name, rc);
            if (strcmp(f->cx.error.param, c->param) != 0)
                fail_msg("%s: param '%s', expected '%s' (%s)", c->name, f->cx.error.param,
                         c->param, f->cx.error.message);
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
    fx_t *f = fx_new("{" M ",\"messages\":[" U "]}");
    assert_int_equal(build(f), 0);
    assert_string_equal(f->up.url, "https://generativelanguage.googleapis.com/v1beta/models/"
                                   "gemini-2.5-flash:generateContent");
    assert_true(has_header(&f->up, "x-goog-api-key: AIza-test"));
    assert_true(has_header(&f->up, "Accept: application/json"));
    assert_null(strstr(f->up.url, "key="));
    for (size_t i = 0; f->up.headers[i] != NULL; i++)
        assert_null(strstr(f->up.headers[i], "Authorization"));
    fx_free(f);

    f = fx_model("{" M ",\"stream\":true,\"messages\":[" U "]}", "tunedModels/my model");
    assert_int_equal(build(f), 0);
    assert_string_equal(f->up.url, "https://generativelanguage.googleapis.com/v1beta/tunedModels/"
                                   "my%20model:streamGenerateContent?alt=sse");
    assert_true(has_header(&f->up, "Accept: text/event-stream"));
    fx_free(f);

    f = fx_model("{" M ",\"messages\":[" U "]}", "models/gemini-3-pro-preview");
    f->provider.api_key = NULL;
    assert_int_equal(build(f), 0);
    assert_string_equal(f->up.url, "https://generativelanguage.googleapis.com/v1beta/models/"
                                   "gemini-3-pro-preview:generateContent");
    for (size_t i = 0; f->up.headers[i] != NULL; i++)
        assert_null(strstr(f->up.headers[i], "x-goog-api-key"));
    fx_free(f);
}

static void test_family_and_rejection_wording(void **state)
{
    (void)state;
    assert_int_equal(yr_gemini_family("gemini-2.5-flash-lite"), YR_GEMINI_2_5);
    assert_int_equal(yr_gemini_family("models/gemini-3-pro-preview"), YR_GEMINI_3);
    assert_int_equal(yr_gemini_family("gemini-3.1-flash"), YR_GEMINI_3);
    assert_int_equal(yr_gemini_family("gemini-2.0-flash"), YR_GEMINI_OTHER);
    assert_int_equal(yr_gemini_family("gemini-1.5-pro"), YR_GEMINI_OTHER);
    assert_int_equal(yr_gemini_family("gemma-3-27b"), YR_GEMINI_OTHER);
    fx_t *f = fx_new("{" M ",\"messages\":[" U "],\"n\":3}");
    f->provider.name = "google-eu";
    assert_int_equal(build(f), -EINVAL);
    assert_non_null(strstr(f->cx.error.message, "google-eu"));
    assert_non_null(strstr(f->cx.error.message, "'n'"));
    fx_free(f);
}

/* ---- answers -------------------------------------------------------------------- */

static void test_response_text_thoughts_usage(void **state)
{
    (void)state;
    fx_t *f = fx_new("{" M ",\"messages\":[" U "]}");
    int rc;
    json_t *v = completion(
        f,
        "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"plan\",\"thought\":true},{\"text\":"
        "\"Hel\"},{\"text\":\"lo\",\"thoughtSignature\":\"AAA\"}],\"role\":\"model\"},"
        "\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":10,"
        "\"candidatesTokenCount\":2,\"thoughtsTokenCount\":5,\"cachedContentTokenCount\":4,"
        "\"totalTokenCount\":17},\"modelVersion\":\"gemini-2.5-flash-001\",\"responseId\":\"R1\"}",
        &rc);
    assert_int_equal(rc, 0);
    json_t *ch = json_array_get(json_object_get(v, "choices"), 0);
    json_t *msg = json_object_get(ch, "message");
    assert_string_equal(json_string_value(json_object_get(v, "id")), "chatcmpl-R1");
    assert_string_equal(json_string_value(json_object_get(v, "model")), "gemini-2.5-flash-001");
    assert_string_equal(json_string_value(json_object_get(msg, "content")), "Hello");
    assert_string_equal(json_string_value(json_object_get(msg, "reasoning_content")), "plan");
    assert_string_equal(json_string_value(json_object_get(ch, "finish_reason")), "stop");
    expect_json("usage", json_object_get(v, "usage"),
                "{\"prompt_tokens\":10,\"completion_tokens\":7,\"total_tokens\":17,"
                "\"prompt_tokens_details\":{\"cached_tokens\":4},\"completion_tokens_details\":{"
                "\"reasoning_tokens\":5}}");
    assert_int_equal(f->cx.usage.completion_tokens, 7);
    json_decref(v);
    fx_free(f);
}

static void test_response_calls_with_signatures(void **state)
{
    (void)state;
    fx_t *f = fx_new("{" M ",\"messages\":[" U "]}");
    int rc;
    json_t *v = completion(
        f,
        "{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":\"a\",\"args\":{"
        "\"x\":1},\"id\":\"fc_1\"},\"thoughtSignature\":\"SIG\"},{\"functionCall\":{\"name\":\"b\"}}"
        "],\"role\":\"model\"},\"finishReason\":\"STOP\"}],\"responseId\":\"R2\"}",
        &rc);
    assert_int_equal(rc, 0);
    json_t *ch = json_array_get(json_object_get(v, "choices"), 0);
    assert_string_equal(json_string_value(json_object_get(ch, "finish_reason")), "tool_calls");
    expect_json("tool_calls", json_object_get(json_object_get(ch, "message"), "tool_calls"),
                "[{\"id\":\"fc_1\",\"type\":\"function\",\"function\":{\"name\":\"a\",\"arguments\":"
                "\"{\\\"x\\\":1}\"},\"extra_content\":{\"google\":{\"thought_signature\":\"SIG\"}}},"
                "{\"id\":\"call_R2_1\",\"type\":\"function\",\"function\":{\"name\":\"b\","
                "\"arguments\":\"{}\"}}]");
    json_decref(v);
    fx_free(f);
}

static const char *finish_for(const char *body)
{
    static char got[32];
    fx_t *f = fx_new("{" M ",\"messages\":[" U "]}");
    int rc;
    json_t *v = completion(f, body, &rc);
    assert_int_equal(rc, 0);
    snprintf(got, sizeof(got), "%s",
             json_string_value(json_object_get(json_array_get(json_object_get(v, "choices"), 0),
                                               "finish_reason")));
    json_decref(v);
    fx_free(f);
    return got;
}

static void test_finish_reasons(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"MAX_TOKENS", "length"},          {"SAFETY", "content_filter"},
        {"RECITATION", "content_filter"},  {"PROHIBITED_CONTENT", "content_filter"},
        {"SPII", "content_filter"},        {"BLOCKLIST", "content_filter"},
        {"IMAGE_SAFETY", "content_filter"}, {"MALFORMED_FUNCTION_CALL", "stop"},
        {"OTHER", "stop"},                 {"STOP", "stop"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char body[256];
        snprintf(body, sizeof(body),
                 "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\"}]},\"finishReason\":"
                 "\"%s\"}]}",
                 cases[i][0]);
        assert_string_equal(finish_for(body), cases[i][1]);
    }
    /* the budget went to thinking: no parts at all, a valid length answer */
    assert_string_equal(finish_for("{\"candidates\":[{\"content\":{\"role\":\"model\"},"
                                   "\"finishReason\":\"MAX_TOKENS\",\"index\":0}],"
                                   "\"usageMetadata\":{\"promptTokenCount\":3,"
                                   "\"thoughtsTokenCount\":64}}"),
                        "length");
    /* the prompt was blocked: no candidates */
    assert_string_equal(finish_for("{\"promptFeedback\":{\"blockReason\":\"SAFETY\"},"
                                   "\"usageMetadata\":{\"promptTokenCount\":3}}"),
                        "content_filter");
}

static void test_invalid_responses(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "[]", "{}", "{\"candidates\":{}}", "{\"candidates\":[{\"content\":{\"parts\":{}}}]}",
        "{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"args\":{}}}]}}]}",
        "{\"error\":{\"code\":500,\"message\":\"x\",\"status\":\"INTERNAL\"}}", "{not json",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fx_t *f = fx_new("{" M ",\"messages\":[" U "]}");
        int rc;
        json_t *v = completion(f, bad[i], &rc);
        if (rc != -EINVAL)
            fail_msg("'%s': rc %d", bad[i], rc);
        json_decref(v);
        fx_free(f);
    }
}

/* ---- streams ------------------------------------------------------------------- */

#define CHUNK(parts, extra)                                                                        \
    "{\"candidates\":[{\"content\":{\"parts\":[" parts "],\"role\":\"model\"}" extra               \
    ",\"index\":0}],\"modelVersion\":\"gemini-3-pro-preview\",\"responseId\":\"RS\""

static void test_stream_text_cumulative_usage(void **state)
{
    (void)state;
    fx_t *f = fx_new("{" M ",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
                     "\"messages\":[" U "]}");
    const char *const evs[] = {
        CHUNK("{\"text\":\"Hel\"}", "") ",\"usageMetadata\":{\"promptTokenCount\":9,"
                                       "\"candidatesTokenCount\":1}}",
        CHUNK("{\"text\":\"lo\"}", "") ",\"usageMetadata\":{\"promptTokenCount\":9,"
                                      "\"candidatesTokenCount\":2}}",
        CHUNK("{\"text\":\"\"}", ",\"finishReason\":\"STOP\"") ",\"usageMetadata\":{"
                                                                "\"promptTokenCount\":9,"
                                                                "\"candidatesTokenCount\":2}}",
    };
    int rc;
    bool done;
    json_t *chunks = stream(f, evs, 3, &rc, &done);
    assert_int_equal(rc, 0);
    assert_true(done);
    size_t n = json_array_size(chunks);
    assert_true(n == 6);
    assert_string_equal(json_string_value(json_array_get(chunks, n - 1)), "[DONE]");
    json_t *first = json_array_get(chunks, 0);
    expect_json("role", json_object_get(json_array_get(json_object_get(first, "choices"), 0), "delta"),
                "{\"role\":\"assistant\",\"content\":\"\"}");
    json_t *fin = json_array_get(json_object_get(json_array_get(chunks, 3), "choices"), 0);
    assert_string_equal(json_string_value(json_object_get(fin, "finish_reason")), "stop");
    json_t *u = json_object_get(json_array_get(chunks, 4), "usage");
    assert_int_equal(json_integer_value(json_object_get(u, "prompt_tokens")), 9);
    assert_int_equal(json_integer_value(json_object_get(u, "completion_tokens")), 2); /* last, never a sum */
    /* a late event after the end is ignored */
    json_decref(chunks);
    chunks = stream(f, evs, 1, &rc, &done);
    assert_int_equal(rc, 0);
    assert_int_equal(json_array_size(chunks), 0);
    json_decref(chunks);
    fx_free(f);
}

static void test_stream_parallel_calls_separate_events(void **state)
{
    (void)state;
    fx_t *f = fx_model("{" M ",\"stream\":true,\"messages\":[" U "]}", "gemini-3-pro-preview");
    const char *const evs[] = {
        CHUNK("{\"text\":\"plan \",\"thought\":true}", "") "}",
        CHUNK("{\"functionCall\":{\"name\":\"a\",\"args\":{\"q\":1}},\"thoughtSignature\":\"S1\"}",
              "") "}",
        CHUNK("{\"functionCall\":{\"name\":\"b\",\"args\":{},\"id\":\"fc_b\"}}", "") "}",
        CHUNK("{\"text\":\"\"}", ",\"finishReason\":\"STOP\"") "}",
    };
    int rc;
    bool done;
    json_t *chunks = stream(f, evs, 4, &rc, &done);
    assert_int_equal(rc, 0);
    assert_true(done);
    json_t *calls = json_array();
    const char *finish = NULL;
    const char *reasoning = NULL;
    size_t i;
    json_t *c;
    json_array_foreach(chunks, i, c)
    {
        json_t *ch = json_array_get(json_object_get(c, "choices"), 0);
        json_t *d = json_object_get(ch, "delta");
        if (json_object_get(d, "reasoning_content"))
            reasoning = json_string_value(json_object_get(d, "reasoning_content"));
        json_t *tc = json_array_get(json_object_get(d, "tool_calls"), 0);
        if (json_object_get(tc, "id"))
            json_array_append(calls, tc);
        if (json_is_string(json_object_get(ch, "finish_reason")))
            finish = json_string_value(json_object_get(ch, "finish_reason"));
    }
    assert_string_equal(reasoning, "plan ");
    assert_string_equal(finish, "tool_calls");
    expect_json("call heads", calls,
                "[{\"index\":0,\"id\":\"call_RS_0\",\"type\":\"function\",\"function\":{\"name\":"
                "\"a\",\"arguments\":\"\"},\"extra_content\":{\"google\":{\"thought_signature\":"
                "\"S1\"}}},{\"index\":1,\"id\":\"fc_b\",\"type\":\"function\",\"function\":{\"name\":"
                "\"b\",\"arguments\":\"\"}}]");
    json_decref(calls);
    json_decref(chunks);
    fx_free(f);
}

static void test_stream_errors(void **state)
{
    (void)state;
    fx_t *f = fx_new("{" M ",\"stream\":true,\"messages\":[" U "]}");
    const char *const evs[] = {
        CHUNK("{\"text\":\"a\"}", "") "}",
        "{\"error\":{\"code\":503,\"message\":\"The model is overloaded.\",\"status\":"
        "\"UNAVAILABLE\"}}",
    };
    int rc;
    bool done;
    json_t *chunks = stream(f, evs, 2, &rc, &done);
    assert_int_equal(rc, -ECANCELED);
    assert_false(done);
    assert_int_equal(f->cx.error_status, 503);
    assert_string_equal(f->cx.error_type, "UNAVAILABLE");
    assert_string_equal(f->cx.error.message, "The model is overloaded.");
    json_decref(chunks);
    fx_free(f);

    f = fx_new("{" M ",\"stream\":true,\"messages\":[" U "]}");
    const char *const wrapped[] = {"[{\"error\":{\"code\":429,\"message\":\"slow down\",\"status\":"
                                   "\"RESOURCE_EXHAUSTED\",\"details\":[{\"@type\":\"type.googleapis"
                                   ".com/google.rpc.RetryInfo\",\"retryDelay\":\"9s\"}]}}]"};
    chunks = stream(f, wrapped, 1, &rc, &done);
    assert_int_equal(rc, -ECANCELED);
    assert_int_equal(f->cx.error_status, 429);
    assert_int_equal(f->cx.error_retry_after_ms, 9000); /* the hint travels with the event */
    assert_string_equal(f->cx.error_code, "RESOURCE_EXHAUSTED");
    json_decref(chunks);
    fx_free(f);

    static const char *const malformed[] = {"{not json", "42", "{\"candidates\":7}",
                                            "[DONE]"};
    for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
        f = fx_new("{" M ",\"stream\":true,\"messages\":[" U "]}");
        chunks = stream(f, &malformed[i], 1, &rc, &done);
        if (rc != -EINVAL)
            fail_msg("'%s': rc %d", malformed[i], rc);
        json_decref(chunks);
        fx_free(f);
    }
}

static void test_stream_blocked_prompt(void **state)
{
    (void)state;
    fx_t *f = fx_new("{" M ",\"stream\":true,\"messages\":[" U "]}");
    const char *const evs[] = {"{\"promptFeedback\":{\"blockReason\":\"PROHIBITED_CONTENT\"},"
                               "\"usageMetadata\":{\"promptTokenCount\":4}}"};
    int rc;
    bool done;
    json_t *chunks = stream(f, evs, 1, &rc, &done);
    assert_int_equal(rc, 0);
    assert_true(done);
    json_t *fin = json_array_get(json_object_get(json_array_get(chunks, 1), "choices"), 0);
    assert_string_equal(json_string_value(json_object_get(fin, "finish_reason")), "content_filter");
    json_decref(chunks);
    fx_free(f);
}

/* ---- errors ---------------------------------------------------------------------- */

static void test_parse_error_and_outcomes(void **state)
{
    (void)state;
    yr_provider_error_t e;
    yr_gemini_parse_error(
        yr_str("{\"error\":{\"code\":429,\"message\":\"quota\",\"status\":\"RESOURCE_EXHAUSTED\","
               "\"details\":[{\"@type\":\"type.googleapis.com/google.rpc.QuotaFailure\","
               "\"violations\":[{\"quotaId\":\"GenerateRequestsPerMinutePerProjectPerModel\"}]},"
               "{\"@type\":\"type.googleapis.com/google.rpc.RetryInfo\",\"retryDelay\":\"57s\"}]}}"),
        &e);
    assert_string_equal(e.message, "quota");
    assert_string_equal(e.type, "RESOURCE_EXHAUSTED");
    assert_int_equal(e.retry_after_ms, 57000);
    assert_int_equal(yr_transport_gemini.classify(429, &e), YR_OUT_RATE_LIMITED);

    yr_gemini_parse_error(
        yr_str("[{\"error\":{\"code\":429,\"message\":\"day\",\"status\":\"RESOURCE_EXHAUSTED\","
               "\"details\":[{\"@type\":\"type.googleapis.com/google.rpc.QuotaFailure\","
               "\"violations\":[{\"quotaId\":\"GenerateRequestsPerDayPerProjectPerModel-FreeTier\""
               "}]},{\"@type\":\"type.googleapis.com/google.rpc.RetryInfo\",\"retryDelay\":"
               "\"1.5s\"}]}}]"),
        &e);
    assert_string_equal(e.message, "day");
    assert_string_equal(e.code, "quota_exceeded_per_day");
    assert_int_equal(e.retry_after_ms, 1500);
    assert_int_equal(yr_transport_gemini.classify(429, &e), YR_OUT_QUOTA);

    yr_gemini_parse_error(
        yr_str("{\"error\":{\"code\":400,\"message\":\"API key not valid.\",\"status\":"
               "\"INVALID_ARGUMENT\",\"details\":[{\"@type\":\"type.googleapis.com/"
               "google.rpc.ErrorInfo\",\"reason\":\"API_KEY_INVALID\"}]}}"),
        &e);
    assert_string_equal(e.code, "API_KEY_INVALID");
    assert_int_equal(e.retry_after_ms, -1);
    assert_int_equal(yr_transport_gemini.classify(400, &e), YR_OUT_AUTH);

    static const struct {
        const char *status;
        int http;
        yr_outcome_t o;
    } table[] = {
        {"INVALID_ARGUMENT", 400, YR_OUT_CLIENT_ERROR}, {"UNAVAILABLE", 503, YR_OUT_OVERLOADED},
        {"INTERNAL", 500, YR_OUT_SERVER_ERROR},         {"DEADLINE_EXCEEDED", 504, YR_OUT_TIMEOUT},
        {"PERMISSION_DENIED", 403, YR_OUT_AUTH},        {"NOT_FOUND", 404, YR_OUT_SERVER_ERROR},
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        char body[160];
        snprintf(body, sizeof(body), "{\"error\":{\"code\":%d,\"message\":\"m\",\"status\":\"%s\"}}",
                 table[i].http, table[i].status);
        yr_gemini_parse_error(yr_str(body), &e);
        assert_int_equal(yr_gemini_status_http(table[i].status), table[i].http);
        assert_int_equal(yr_transport_gemini.classify(table[i].http, &e), table[i].o);
    }
    yr_gemini_parse_error(yr_str("<html>bad gateway</html>"), &e);
    assert_string_equal(e.message, "");
    assert_int_equal(yr_transport_gemini.classify(502, &e), YR_OUT_SERVER_ERROR);
}

/* ---- passthrough ------------------------------------------------------------------ */

static void test_passthrough(void **state)
{
    (void)state;
    const char *native = "{\"contents\":[{\"parts\":[{\"text\":\"hi\"}]}]}";
    fx_t *f = fx_new("{" M ",\"stream\":true,\"messages\":[" U "]}");
    const char *path;
    const char *const *extra;
    assert_int_equal(yr_dialect_gemini.pass_build(&f->cx, yr_str(native), &f->body, &f->up, &path,
                                                  &extra),
                     0);
    assert_string_equal(path, "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse");
    assert_ptr_equal(f->up.body, native);
    assert_int_equal(f->up.body_len, strlen(native));
    f->cx.count_tokens = true;
    assert_int_equal(yr_dialect_gemini.pass_build(&f->cx, yr_str(native), &f->body, &f->up, &path,
                                                  &extra),
                     0);
    assert_string_equal(path, "/v1beta/models/gemini-2.5-flash:countTokens");
    assert_int_equal(yr_dialect_gemini.pass_response(&f->cx, yr_str("{\"totalTokens\":12}")), 0);
    assert_int_equal(f->cx.usage.prompt_tokens, 12);
    f->cx.count_tokens = false;

    const char *ev1 = CHUNK("{\"text\":\"a\"}", "") ",\"usageMetadata\":{\"promptTokenCount\":3,"
                                                   "\"candidatesTokenCount\":1}}";
    yr_buf_t out;
    yr_buf_init(&out, 1 << 16);
    bool done = false;
    yr_frame_t m = {.data = yr_str(ev1)};
    assert_int_equal(yr_dialect_gemini.pass_event(&f->cx, &m, &out, &done), 0);
    assert_false(done);
    assert_int_equal(out.len, 6 + strlen(ev1) + 4);
    assert_int_equal(memcmp(out.data + out.len - 4, "\r\n\r\n", 4), 0);
    assert_int_equal(f->cx.usage.completion_tokens, 1);
    m.data = yr_str(CHUNK("{\"text\":\"\"}", ",\"finishReason\":\"STOP\"") "}");
    assert_int_equal(yr_dialect_gemini.pass_event(&f->cx, &m, &out, &done), 0);
    assert_true(done);
    m.data = yr_str("{\"error\":{\"code\":503,\"message\":\"busy\",\"status\":\"UNAVAILABLE\"}}");
    assert_int_equal(yr_dialect_gemini.pass_event(&f->cx, &m, &out, &done), -ECANCELED);
    assert_int_equal(f->cx.error_status, 503);
    m.data = yr_str("{nope");
    assert_int_equal(yr_dialect_gemini.pass_event(&f->cx, &m, &out, &done), -EINVAL);
    assert_int_equal(yr_dialect_gemini.pass_response(&f->cx, yr_str("{\"candidates\":[],"
                                                                    "\"usageMetadata\":{"
                                                                    "\"promptTokenCount\":5}}")),
                     0);
    assert_int_equal(f->cx.usage.prompt_tokens, 5);
    assert_int_equal(yr_dialect_gemini.pass_response(&f->cx, yr_str("[1]")), -EINVAL);
    yr_buf_free(&out);
    fx_free(f);
}

static void test_provider_lookup(void **state)
{
    (void)state;
    const yr_provider_kind_ops_t *k = yr_provider_kind(YR_KIND_GEMINI);
    assert_non_null(k);
    assert_ptr_equal(k->dialect, &yr_dialect_gemini);
    assert_ptr_equal(k->transport, &yr_transport_gemini);
    assert_true(k->dialect->inline_images);
    assert_int_equal(k->dialect->native_client, YR_DIALECT_GEMINI);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_table),
        cmocka_unit_test(test_request_head),
        cmocka_unit_test(test_family_and_rejection_wording),
        cmocka_unit_test(test_response_text_thoughts_usage),
        cmocka_unit_test(test_response_calls_with_signatures),
        cmocka_unit_test(test_finish_reasons),
        cmocka_unit_test(test_invalid_responses),
        cmocka_unit_test(test_stream_text_cumulative_usage),
        cmocka_unit_test(test_stream_parallel_calls_separate_events),
        cmocka_unit_test(test_stream_errors),
        cmocka_unit_test(test_stream_blocked_prompt),
        cmocka_unit_test(test_parse_error_and_outcomes),
        cmocka_unit_test(test_passthrough),
        cmocka_unit_test(test_provider_lookup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
