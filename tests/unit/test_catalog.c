/* The model catalog and presets (providers/catalog.h), fitting a request to
 * a route's model (providers/fit.h), what a parsed request uses
 * (api/chat.h), and the config that selects and overrides them. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/chat.h"
#include "config/config.h"
#include "providers/catalog.h"
#include "providers/fit.h"

static int clear_env(void **state)
{
    (void)state;
    static const char *const vars[] = {
        "GROQ_API_KEY",      "DEEPSEEK_API_KEY", "TOGETHER_API_KEY",   "MISTRAL_API_KEY",
        "XAI_API_KEY",       "OPENROUTER_API_KEY", "FIREWORKS_API_KEY", "CEREBRAS_API_KEY",
        "OPENAI_API_KEY",    "OPENAI_BASE_URL",  "ANTHROPIC_API_KEY",  "ANTHROPIC_BASE_URL",
        "GEMINI_API_KEY",    "GEMINI_BASE_URL",  "YOUROUTER_MASTER_KEY", "YOUROUTER_LISTEN",
        "YOUROUTER_DB_URL",
    };
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        unsetenv(vars[i]);
    return 0;
}

static yr_config_t *load(const char *yaml, char *err, size_t errlen)
{
    yr_config_t *cfg = NULL;
    err[0] = '\0';
    if (yr_config_load_string("cfg.yaml", yaml, strlen(yaml), &cfg, err, errlen) < 0)
        return NULL;
    return cfg;
}

static yr_config_t *load_ok(const char *yaml)
{
    char err[512];
    yr_config_t *cfg = load(yaml, err, sizeof(err));
    if (cfg == NULL)
        fail_msg("unexpected error: %s", err);
    return cfg;
}

static void expect_error(const char *yaml, const char *want)
{
    char err[512];
    yr_config_t *cfg = load(yaml, err, sizeof(err));
    assert_null(cfg);
    if (strcmp(err, want) != 0)
        fail_msg("got:    %s\nwanted: %s", err, want);
}

/* ---- lookups ----------------------------------------------------------------------- */

static void test_presets(void **state)
{
    (void)state;
    static const char *const names[] = {"openai",   "groq",      "deepseek", "mistral",
                                        "xai",      "openrouter", "together", "fireworks",
                                        "cerebras", "ollama",    "vllm"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const yr_catalog_preset_t *p = yr_catalog_preset(yr_str(names[i]));
        assert_non_null(p);
        assert_string_equal(p->name, names[i]);
        assert_true(strncmp(p->base_url, "http", 4) == 0);
        assert_true(p->base_url[strlen(p->base_url) - 1] != '/');
        assert_int_equal(p->key_env == NULL, p->local); /* only local servers take no key */
    }
    assert_string_equal(yr_catalog_preset(YR_STR("groq"))->base_url,
                        "https://api.groq.com/openai/v1");
    assert_string_equal(yr_catalog_preset(YR_STR("groq"))->key_env, "GROQ_API_KEY");
    assert_null(yr_catalog_preset(YR_STR("nope")));
    assert_null(yr_catalog_preset(YR_STR("anthropic"))); /* a kind's table, not a preset */
    char buf[256];
    yr_catalog_preset_names(buf, sizeof(buf));
    assert_string_equal(buf, "openai, groq, deepseek, mistral, xai, openrouter, together, "
                             "fireworks, cerebras, ollama, vllm");
    yr_catalog_preset_names(buf, 12); /* cut cleanly, never past the buffer */
    assert_string_equal(buf, "openai");
}

static void test_find(void **state)
{
    (void)state;
    const yr_catalog_preset_t *oa = yr_catalog_of_kind(YR_KIND_OPENAI);
    const yr_catalog_model_t *m = yr_catalog_find(oa, "gpt-4o");
    assert_non_null(m);
    assert_int_equal(m->max_output, 16384);
    /* a dated snapshot finds its family; the longest prefix wins */
    assert_string_equal(yr_catalog_find(oa, "gpt-4o-2024-08-06")->id, "gpt-4o");
    assert_string_equal(yr_catalog_find(oa, "gpt-4o-mini-2024-07-18")->id, "gpt-4o-mini");
    assert_string_equal(yr_catalog_find(oa, "o3-mini")->id, "o3-mini");
    assert_false(yr_catalog_find(oa, "o3-mini")->caps & YR_CAP_VISION);
    assert_null(yr_catalog_find(oa, "llama-3"));
    /* namespaces of Bedrock and Vertex */
    const yr_catalog_preset_t *an = yr_catalog_of_kind(YR_KIND_ANTHROPIC);
    m = yr_catalog_find(an, "us.anthropic.claude-sonnet-4-20250514-v1:0");
    assert_non_null(m);
    assert_string_equal(m->id, "claude-sonnet-4");
    assert_string_equal(yr_catalog_find(yr_catalog_of_kind(YR_KIND_GEMINI),
                                        "publishers/google/models/gemini-2.5-flash")
                            ->id,
                        "gemini-2.5-flash");
    /* an aggregator's vendor/model ids */
    const yr_catalog_preset_t *orr = yr_catalog_preset(YR_STR("openrouter"));
    assert_string_equal(yr_catalog_find(orr, "anthropic/claude-3-5-haiku")->id, "claude-3-5-haiku");
    assert_string_equal(yr_catalog_find(orr, "deepseek/deepseek-chat")->id, "deepseek-chat");
    assert_null(yr_catalog_find(orr, "meta-llama/llama-3.3-70b-instruct"));
    /* case as the provider spells it, matched case-insensitively */
    assert_non_null(yr_catalog_find(yr_catalog_preset(YR_STR("together")),
                                    "meta-llama/llama-3.3-70b-instruct-turbo"));
    assert_null(yr_catalog_of_kind(YR_KIND_BEDROCK));
}

static const char groq_yaml[] =
    "providers:\n"
    "  groq:\n"
    "    kind: openai\n"
    "    preset: groq\n"
    "    models:\n"
    "      llama-3.3-70b-versatile:\n"
    "        max_output_tokens: 1000\n"
    "      my-finetune:\n"
    "        capabilities: [tools]\n"
    "        price: {input: 1, output: 2}\n"
    "  local:\n"
    "    kind: openai\n"
    "    preset: vllm\n"
    "  b:\n"
    "    kind: bedrock\n"
    "    base_url: https://bedrock-runtime.us-east-1.amazonaws.com\n"
    "    region: us-east-1\n"
    "    api_key: bedrock-api-key\n"
    "models:\n"
    "  - id: a\n"
    "    routes:\n"
    "      - provider: groq\n"
    "        model: llama-3.3-70b-versatile\n"
    "      - provider: groq\n"
    "        model: my-finetune\n"
    "      - provider: groq\n"
    "        model: openai/gpt-oss-120b\n"
    "      - provider: local\n"
    "        model: whatever\n"
    "      - provider: b\n"
    "        model: us.anthropic.claude-3-5-haiku-20241022-v1:0\n"
    "      - provider: groq\n"
    "        model: openai/gpt-oss-20b\n"
    "        price: {input: 9, output: 9}\n"
    "      - provider: b\n"
    "        model: us.amazon.nova-micro-v1:0\n";

static void test_route_info(void **state)
{
    (void)state;
    setenv("GROQ_API_KEY", "gsk-from-the-environment", 1);
    yr_config_t *cfg = load_ok(groq_yaml);
    const yr_provider_conf_t *groq = yr_config_provider(cfg, YR_STR("groq"));
    assert_string_equal(groq->base_url, "https://api.groq.com/openai/v1");
    assert_string_equal(groq->api_key, "gsk-from-the-environment");
    assert_string_equal(yr_config_provider(cfg, YR_STR("local"))->base_url,
                        "http://localhost:8000/v1");
    assert_null(yr_config_provider(cfg, YR_STR("local"))->api_key);
    const yr_route_conf_t *r = cfg->models[0].routes;
    yr_model_info_t info;

    yr_catalog_route_info(&r[0], &info); /* the catalog, with the config's limit */
    assert_true(info.known);
    assert_int_equal(info.max_output, 1000);
    assert_int_equal(info.context, 131072);
    assert_int_equal(info.caps, YR_CAP_TOOLS);
    yr_price_t p;
    assert_true(yr_catalog_route_price(&r[0], &p));
    assert_int_equal(p.input, 590000);
    assert_int_equal(p.output, 790000);

    yr_catalog_route_info(&r[1], &info); /* only in the config */
    assert_true(info.known);
    assert_int_equal(info.caps, YR_CAP_TOOLS);
    assert_int_equal(info.max_output, 0);
    assert_true(yr_catalog_route_price(&r[1], &p));
    assert_int_equal(p.input, 1000000);
    assert_int_equal(p.cache_read, 1000000); /* cache prices default to the input price */

    yr_catalog_route_info(&r[2], &info);
    assert_true(info.caps & YR_CAP_REASONING);
    assert_int_equal(info.efforts, YR_EFFORT_LOW | YR_EFFORT_MEDIUM | YR_EFFORT_HIGH);

    yr_catalog_route_info(&r[3], &info); /* unknown to the catalog: capable, free (local) */
    assert_false(info.known);
    assert_int_equal(info.caps, YR_CAP_ALL);
    assert_true(yr_catalog_route_price(&r[3], &p));
    assert_int_equal(p.input + p.output, 0);

    yr_catalog_route_info(&r[4], &info); /* Bedrock finds Claude by its own name */
    assert_true(info.known);
    assert_int_equal(info.max_output, 8192);
    assert_false(info.caps & YR_CAP_REASONING);
    assert_true(yr_catalog_route_price(&r[4], &p)); /* the built-in price table */
    assert_int_equal(p.input, 800000);

    assert_true(yr_catalog_route_price(&r[5], &p)); /* routes[].price wins */
    assert_int_equal(p.input, 9000000);

    yr_catalog_route_info(&r[6], &info); /* Amazon's own, text only */
    assert_true(info.known);
    assert_false(info.caps & YR_CAP_VISION);
    assert_true(yr_catalog_route_price(&r[6], &p));
    assert_int_equal(p.input, 35000);
    yr_config_free(cfg);
}

static void test_map_effort(void **state)
{
    (void)state;
    const unsigned lmh = YR_EFFORT_LOW | YR_EFFORT_MEDIUM | YR_EFFORT_HIGH;
    const unsigned lh = YR_EFFORT_LOW | YR_EFFORT_HIGH;
    yr_str_t v = YR_STR("medium");
    assert_true(yr_catalog_map_effort(lmh, v).ptr == v.ptr); /* taken: itself */
    assert_true(yr_str_eq(yr_catalog_map_effort(lmh, YR_STR("minimal")), YR_STR("low")));
    assert_true(yr_str_eq(yr_catalog_map_effort(lmh, YR_STR("none")), YR_STR("low")));
    assert_true(yr_str_eq(yr_catalog_map_effort(lh, YR_STR("medium")), YR_STR("low"))); /* tie */
    assert_true(yr_str_eq(yr_catalog_map_effort(lh, YR_STR("high")), YR_STR("high")));
    assert_true(yr_str_eq(yr_catalog_map_effort(YR_EFFORT_NONE | lmh, YR_STR("minimal")),
                          YR_STR("none")));
    assert_null(yr_catalog_map_effort(0, YR_STR("high")).ptr); /* no knob: dropped */
    assert_true(yr_str_eq(yr_catalog_map_effort(lmh, YR_STR("xhigh")), YR_STR("xhigh")));
    assert_int_equal(yr_effort_bit(YR_STR("minimal")), YR_EFFORT_MINIMAL);
    assert_string_equal(yr_cap_name(YR_CAP_JSON_SCHEMA), "json_schema");
    assert_string_equal(yr_effort_name(YR_EFFORT_HIGH), "high");
}

/* ---- what a request uses, and fitting it ------------------------------------------- */

static void parse(const char *body, yr_chat_req_t *req)
{
    yr_api_error_t err;
    if (yr_chat_parse(body, strlen(body), req, &err) < 0)
        fail_msg("parse: %s", err.message);
}

static void test_uses(void **state)
{
    (void)state;
    yr_chat_req_t req;
    parse("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &req);
    assert_int_equal(req.uses, 0);
    assert_int_equal(req.max_tokens_param, -1);
    yr_chat_free(&req);
    parse("{\"model\":\"m\",\"max_tokens\":7,\"max_completion_tokens\":9,\"reasoning_effort\":"
          "\"low\",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\"}},"
          "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
          "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://x/y.png\"}}]}]}",
          &req);
    assert_int_equal(req.uses, YR_USES_IMAGES | YR_USES_JSON_SCHEMA | YR_USES_REASONING);
    assert_int_equal(req.max_tokens_param, 7);
    assert_int_equal(req.max_completion_tokens_param, 9);
    assert_true(yr_str_eq(req.effort, YR_STR("low")));
    yr_chat_free(&req);
    /* tools: declared, or a tool result in the history; an empty array is none */
    parse("{\"model\":\"m\",\"tools\":[],\"response_format\":{\"type\":\"json_object\"},"
          "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
          &req);
    assert_int_equal(req.uses, 0);
    yr_chat_free(&req);
    parse("{\"model\":\"m\",\"messages\":[{\"role\":\"tool\",\"tool_call_id\":\"1\",\"content\":"
          "\"r\"}]}",
          &req);
    assert_int_equal(req.uses, YR_USES_TOOLS);
    yr_chat_free(&req);
}

static void test_lacks(void **state)
{
    (void)state;
    yr_model_info_t text = {.known = true, .caps = YR_CAP_TOOLS};
    assert_int_equal(yr_fit_lacks(&text, YR_USES_IMAGES | YR_USES_TOOLS), YR_CAP_VISION);
    assert_int_equal(yr_fit_lacks(&text, YR_USES_JSON_SCHEMA), YR_CAP_JSON_SCHEMA);
    assert_int_equal(yr_fit_lacks(&text, YR_USES_TOOLS | YR_USES_REASONING), 0);
    yr_model_info_t none = {.caps = 0};
    assert_int_equal(yr_fit_lacks(&none, YR_USES_TOOLS | YR_USES_IMAGES), YR_CAP_TOOLS);
    yr_model_info_t unknown = {.caps = YR_CAP_ALL};
    assert_int_equal(yr_fit_lacks(&unknown, YR_USES_TOOLS | YR_USES_IMAGES | YR_USES_JSON_SCHEMA),
                     0);
}

static const char fit_body[] =
    "{\"model\":\"m\", \"temperature\": 1.50, \"max_tokens\": 32000, "
    "\"max_completion_tokens\":100, \"reasoning_effort\":\"minimal\", "
    "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}], \"x_unknown\":{\"k\":[1, 2]}}";

static void test_fit_bytes(void **state)
{
    (void)state;
    yr_chat_req_t req;
    parse(fit_body, &req);
    yr_fit_t f;
    yr_buf_t out;
    yr_buf_init(&out, 1 << 20);

    /* an output limit of 16384: only the field above it is clamped; a
     * model without reasoning loses the effort */
    yr_model_info_t small = {.known = true, .max_output = 16384, .caps = YR_CAP_TOOLS};
    assert_true(yr_fit_plan(&small, &req, &f));
    assert_int_equal(yr_fit_bytes(&f, yr_str(fit_body), &out), 0);
    assert_string_equal(
        out.data,
        "{\"model\":\"m\",\"temperature\": 1.50,\"max_tokens\": 16384,\"max_completion_tokens\":100,"
        "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"x_unknown\":{\"k\":[1, 2]}}");

    /* a reasoning model with low/medium/high: minimal becomes low */
    yr_model_info_t o3 = {.known = true,
                          .max_output = 100000,
                          .caps = YR_CAP_ALL,
                          .efforts = YR_EFFORT_LOW | YR_EFFORT_MEDIUM | YR_EFFORT_HIGH};
    assert_true(yr_fit_plan(&o3, &req, &f));
    yr_buf_reset(&out);
    assert_int_equal(yr_fit_bytes(&f, yr_str(fit_body), &out), 0);
    assert_non_null(strstr(out.data, "\"reasoning_effort\":\"low\""));
    assert_non_null(strstr(out.data, "\"max_tokens\": 32000"));

    /* what fits is left alone; an unknown model is never changed */
    yr_model_info_t big = {.known = true, .max_output = 64000, .caps = YR_CAP_ALL,
                           .efforts = YR_EFFORT_ALL};
    assert_false(yr_fit_plan(&big, &req, &f));
    yr_model_info_t unknown = {.caps = YR_CAP_ALL, .efforts = YR_EFFORT_ALL};
    assert_false(yr_fit_plan(&unknown, &req, &f));
    yr_buf_free(&out);
    yr_chat_free(&req);
}

static void test_fit_tree_restores(void **state)
{
    (void)state;
    yr_chat_req_t req;
    parse(fit_body, &req);
    assert_int_equal(yr_chat_load_root(&req), 0);
    yr_fit_saved_t saved = {0};
    yr_fit_t f;
    yr_model_info_t small = {.known = true, .max_output = 16384, .caps = YR_CAP_TOOLS};
    assert_true(yr_fit_plan(&small, &req, &f));
    assert_int_equal(yr_fit_tree(&f, req.root, &saved), 0);
    assert_int_equal(json_integer_value(json_object_get(req.root, "max_tokens")), 16384);
    assert_null(json_object_get(req.root, "reasoning_effort"));
    /* the next attempt, on a model that takes it all: the client's values */
    assert_int_equal(yr_fit_tree(NULL, req.root, &saved), 0);
    assert_int_equal(json_integer_value(json_object_get(req.root, "max_tokens")), 32000);
    assert_string_equal(json_string_value(json_object_get(req.root, "reasoning_effort")),
                        "minimal");
    yr_model_info_t o3 = {.known = true, .caps = YR_CAP_ALL, .efforts = YR_EFFORT_HIGH};
    assert_true(yr_fit_plan(&o3, &req, &f));
    assert_int_equal(yr_fit_tree(&f, req.root, &saved), 0);
    assert_string_equal(json_string_value(json_object_get(req.root, "reasoning_effort")), "high");
    yr_fit_saved_free(&saved);
    yr_chat_free(&req);
}

static void test_edit_top(void **state)
{
    (void)state;
    yr_buf_t out;
    yr_buf_init(&out, 4096);
    const char *keys[] = {"a", "gone", "absent"};
    yr_str_t vals[] = {YR_STR("[1]"), YR_STR_NULL, YR_STR("2")};
    const char *in = " { \"gone\" : 1 , \"a\":\"x\\\"y\", \"b\" : {\"a\":3} } ";
    assert_int_equal(yr_json_edit_top(in, strlen(in), keys, vals, 3, &out), 0);
    assert_string_equal(out.data, "{\"a\":[1],\"b\" : {\"a\":3}}");
    yr_buf_reset(&out);
    assert_int_equal(yr_json_edit_top("{}", 2, keys, vals, 3, &out), 0);
    assert_string_equal(out.data, "{}");
    yr_buf_reset(&out);
    assert_int_equal(yr_json_edit_top("[1]", 3, keys, vals, 3, &out), -EINVAL);
    yr_buf_free(&out);
}

static void test_fit_native(void **state)
{
    (void)state;
    yr_buf_t out;
    yr_buf_init(&out, 1 << 16);
    yr_fit_t f = {.max_output = 8192, .clamp_max_tokens = true};
    /* Anthropic: max_tokens clamped, a budget at or above it halved */
    const char *a = "{\"model\":\"x\",\"max_tokens\":64000,\"thinking\":{\"type\":\"enabled\","
                    "\"budget_tokens\":10000},\"messages\":[]}";
    assert_int_equal(yr_fit_anthropic_bytes(&f, yr_str(a), &out), 1);
    assert_string_equal(out.data, "{\"model\":\"x\",\"max_tokens\":8192,\"thinking\":{\"type\":"
                                  "\"enabled\",\"budget_tokens\":4096},\"messages\":[]}");
    /* a model without reasoning: thinking goes */
    yr_buf_reset(&out);
    f.drop_effort = true;
    assert_int_equal(yr_fit_anthropic_bytes(&f, yr_str(a), &out), 1);
    assert_string_equal(out.data, "{\"model\":\"x\",\"max_tokens\":8192,\"messages\":[]}");
    /* nothing to do */
    yr_buf_reset(&out);
    yr_fit_t none = {.max_output = 8192, .clamp_max_tokens = true};
    assert_int_equal(yr_fit_anthropic_bytes(&none, yr_str("{\"max_tokens\":100}"), &out), 0);
    /* Gemini: inside generationConfig, every other byte kept */
    const char *g = "{\"contents\":[], \"generationConfig\": {\"temperature\": 0.50, "
                    "\"maxOutputTokens\": 60000, \"thinkingConfig\": {\"thinkingBudget\": 1024}}, "
                    "\"safetySettings\": []}";
    yr_buf_reset(&out);
    assert_int_equal(yr_fit_gemini_bytes(&f, yr_str(g), &out), 1);
    assert_string_equal(out.data, "{\"contents\":[],\"generationConfig\": {\"temperature\": 0.50,"
                                  "\"maxOutputTokens\": 8192},\"safetySettings\": []}");
    yr_buf_reset(&out);
    assert_int_equal(yr_fit_gemini_bytes(&f, yr_str("{\"contents\":[]}"), &out), 0);
    yr_buf_free(&out);
}

/* ---- config ------------------------------------------------------------------------- */

static void test_config_errors(void **state)
{
    (void)state;
    expect_error("providers:\n  g:\n    kind: openai\n    preset: groqq\n",
                 "cfg.yaml:4: providers.g.preset: unknown preset 'groqq' (known: openai, groq, "
                 "deepseek, mistral, xai, openrouter, together, fireworks, cerebras, ollama, vllm)");
    expect_error("providers:\n  a:\n    kind: anthropic\n    preset: groq\n",
                 "cfg.yaml:4: providers.a.preset: only kind openai takes a preset (kind anthropic "
                 "has its own catalog)");
    expect_error("providers:\n  g:\n    kind: openai\n    preset: groq\n    models:\n"
                 "      m:\n        capabilities: [tools, telepathy]\n",
                 "cfg.yaml:7: providers.g.models.m.capabilities[1]: unknown value 'telepathy' "
                 "(expected one of tools, vision, json_schema, reasoning)");
    expect_error("providers:\n  g:\n    kind: openai\n    models:\n      m:\n"
                 "        max_output_tokens: 0\n",
                 "cfg.yaml:6: providers.g.models.m.max_output_tokens: value '0' is out of range "
                 "(1..100000000)");
    expect_error("providers:\n  g:\n    kind: openai\n    models:\n      m:\n"
                 "        reasoning_effort: [low, extreme]\n",
                 "cfg.yaml:6: providers.g.models.m.reasoning_effort[1]: unknown value 'extreme' "
                 "(expected one of none, minimal, low, medium, high)");
    expect_error("providers:\n  g:\n    kind: openai\n    models:\n      m: {}\n      m: {}\n",
                 "cfg.yaml:6: providers.g.models.m: duplicate model");
    expect_error("providers:\n  g:\n    kind: openai\n    models:\n      m:\n"
                 "        price: {input: 1}\n",
                 "cfg.yaml:6: providers.g.models.m.price: input and output are required");
    /* a bad key in the preset's variable is an error that never shows it */
    setenv("GROQ_API_KEY", "has a space", 1);
    expect_error("providers:\n  g:\n    kind: openai\n    preset: groq\n",
                 "cfg.yaml:3: providers.g.api_key: the preset's GROQ_API_KEY must be printable "
                 "ASCII without spaces or control characters");
}

static void test_config_overrides_win(void **state)
{
    (void)state;
    setenv("GROQ_API_KEY", "gsk-env", 1);
    yr_config_t *cfg = load_ok("providers:\n"
                               "  g:\n"
                               "    kind: openai\n"
                               "    preset: groq\n"
                               "    base_url: http://127.0.0.1:9/openai/v1/\n"
                               "    api_key: gsk-config\n"
                               "  h:\n"
                               "    kind: openai\n"
                               "    preset: groq\n"
                               "    api_key: ''\n");
    const yr_provider_conf_t *g = yr_config_provider(cfg, YR_STR("g"));
    assert_string_equal(g->base_url, "http://127.0.0.1:9/openai/v1");
    assert_string_equal(g->api_key, "gsk-config");
    assert_string_equal(g->preset->name, "groq");
    /* an explicitly empty key stays empty: no variable fills it */
    assert_null(yr_config_provider(cfg, YR_STR("h"))->api_key);
    yr_config_free(cfg);
    unsetenv("GROQ_API_KEY");
    cfg = load_ok("providers:\n  g:\n    kind: openai\n    preset: groq\n");
    assert_null(yr_config_provider(cfg, YR_STR("g"))->api_key);
    yr_config_free(cfg);
}

/* Without a config file: a preset's provider for each key that is set,
 * serving the preset's models by their ids. */
static void test_zero_config(void **state)
{
    (void)state;
    setenv("GROQ_API_KEY", "gsk-zero-config", 1);
    setenv("TOGETHER_API_KEY", "tgp-zero-config", 1);
    setenv("ANTHROPIC_API_KEY", "sk-ant-zero-config", 1);
    yr_config_t *cfg = NULL;
    char err[256];
    assert_int_equal(yr_config_default(&cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg->nproviders, 3);
    const yr_provider_conf_t *groq = yr_config_provider(cfg, YR_STR("groq"));
    assert_non_null(groq);
    assert_string_equal(groq->preset->name, "groq");
    assert_string_equal(groq->base_url, "https://api.groq.com/openai/v1");
    assert_string_equal(groq->api_key, "gsk-zero-config");
    assert_null(yr_config_model(cfg, YR_STR("gpt-4o"))); /* no OpenAI key */
    assert_non_null(yr_config_model(cfg, YR_STR("claude-sonnet-4-20250514")));
    const yr_model_conf_t *m = yr_config_model(cfg, YR_STR("llama-3.3-70b-versatile"));
    assert_non_null(m);
    assert_int_equal(m->nroutes, 1);
    assert_ptr_equal(m->routes[0].provider, groq);
    assert_string_equal(m->routes[0].model, "llama-3.3-70b-versatile");
    /* served by both: a route to each, failover included */
    m = yr_config_model(cfg, YR_STR("openai/gpt-oss-120b"));
    assert_non_null(m);
    assert_int_equal(m->nroutes, 2);
    assert_string_equal(m->routes[0].provider->name, "groq");
    assert_string_equal(m->routes[1].provider->name, "together");
    assert_int_equal(m->retry_on, YR_RETRY_DEFAULT);
    yr_config_free(cfg);
    /* a bad key is named by its variable, never shown */
    setenv("GROQ_API_KEY", "bad key", 1);
    assert_true(yr_config_default(&cfg, err, sizeof(err)) < 0);
    assert_string_equal(err, "(environment): GROQ_API_KEY: must be printable ASCII without spaces "
                             "or control characters");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_presets, clear_env),
        cmocka_unit_test_setup(test_find, clear_env),
        cmocka_unit_test_setup(test_route_info, clear_env),
        cmocka_unit_test_setup(test_map_effort, clear_env),
        cmocka_unit_test_setup(test_uses, clear_env),
        cmocka_unit_test_setup(test_lacks, clear_env),
        cmocka_unit_test_setup(test_fit_bytes, clear_env),
        cmocka_unit_test_setup(test_fit_tree_restores, clear_env),
        cmocka_unit_test_setup(test_edit_top, clear_env),
        cmocka_unit_test_setup(test_fit_native, clear_env),
        cmocka_unit_test_setup(test_config_errors, clear_env),
        cmocka_unit_test_setup(test_config_overrides_win, clear_env),
        cmocka_unit_test_setup(test_zero_config, clear_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
