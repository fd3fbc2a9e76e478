/* The model catalog and the OpenAI-compatible presets (catalog.h).
 *
 * A snapshot of what the providers published in 2025 (models, limits,
 * prices in USD per million tokens); docs/providers.md has the table and
 * the date. Providers change these often: the config overrides any of it
 * (providers.NAME.models, routes[].price), and a model the catalog does not
 * know is assumed to be capable of everything, so a stale row can only
 * refuse less, never more, than its provider.
 *
 * Prices: a row with has_price false is priced by the built-in price table
 * (limits/price.c, by name), which already holds OpenAI's, Anthropic's and
 * Gemini's; so those rows carry limits and capabilities only. */
#include "providers/catalog.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define M(usd) ((int64_t)((usd)*1000000.0 + 0.5)) /* USD/1M tokens -> micro-USD/1M */

#define T YR_CAP_TOOLS
#define V YR_CAP_VISION
#define J YR_CAP_JSON_SCHEMA
#define R YR_CAP_REASONING
#define LMH (YR_EFFORT_LOW | YR_EFFORT_MEDIUM | YR_EFFORT_HIGH)
#define MLMH (YR_EFFORT_MINIMAL | LMH)
#define LH (YR_EFFORT_LOW | YR_EFFORT_HIGH)
#define ANY YR_EFFORT_ALL /* the dialect maps every value (Anthropic, Gemini) */
/* price: input, output, cache read (cache writes at the input price) */
#define P(i, o, c) true, M(i), M(o), M(c), 0
#define NOPRICE false, 0, 0, 0, 0

/* clang-format off */
static const yr_catalog_model_t openai_models[] = {
    {"gpt-4o",        128000,   16384,  T | V | J, 0, NOPRICE},
    {"gpt-4o-mini",   128000,   16384,  T | V | J, 0, NOPRICE},
    {"gpt-4.1",       1047576,  32768,  T | V | J, 0, NOPRICE},
    {"gpt-4.1-mini",  1047576,  32768,  T | V | J, 0, NOPRICE},
    {"gpt-4.1-nano",  1047576,  32768,  T | V | J, 0, NOPRICE},
    {"gpt-5",         400000,   128000, T | V | J | R, MLMH, NOPRICE},
    {"gpt-5-mini",    400000,   128000, T | V | J | R, MLMH, NOPRICE},
    {"gpt-5-nano",    400000,   128000, T | V | J | R, MLMH, NOPRICE},
    {"gpt-5-chat",    128000,   16384,  T | V | J, 0, NOPRICE},
    {"gpt-5.1",       400000,   128000, T | V | J | R, YR_EFFORT_NONE | LMH, NOPRICE},
    {"o4-mini",       200000,   100000, T | V | J | R, LMH, NOPRICE},
    {"o3",            200000,   100000, T | V | J | R, LMH, NOPRICE},
    {"o3-mini",       200000,   100000, T | J | R, LMH, NOPRICE},
    {"o3-pro",        200000,   100000, T | V | J | R, LMH, NOPRICE},
    {"o1",            200000,   100000, T | V | J | R, LMH, NOPRICE},
    {"o1-mini",       128000,   65536,  R, 0, NOPRICE},
    {"gpt-4-turbo",   128000,   4096,   T | V, 0, P(10.00, 30.00, 10.00)},
    {"gpt-3.5-turbo", 16385,    4096,   T, 0, P(0.50, 1.50, 0.50)},
};

/* Kind anthropic (and Claude on Bedrock and Vertex). json_schema is
 * honoured by the dialect (a forced tool); thinking from any effort. */
static const yr_catalog_model_t anthropic_models[] = {
    {"claude-opus-4-5",   200000, 64000, T | V | J | R, ANY,
     true, M(5.00), M(25.00), M(0.50), M(6.25)},
    {"claude-opus-4",     200000, 32000, T | V | J | R, ANY, NOPRICE},
    {"claude-sonnet-4",   200000, 64000, T | V | J | R, ANY, NOPRICE},
    {"claude-haiku-4",    200000, 64000, T | V | J | R, ANY, NOPRICE},
    {"claude-3-7-sonnet", 200000, 64000, T | V | J | R, ANY, NOPRICE},
    {"claude-3-5-sonnet", 200000, 8192,  T | V | J, 0, NOPRICE},
    {"claude-3-5-haiku",  200000, 8192,  T | V | J, 0, NOPRICE},
    {"claude-3-haiku",    200000, 4096,  T | V | J, 0, NOPRICE},
};

/* Kind gemini (and Gemini on Vertex). */
static const yr_catalog_model_t gemini_models[] = {
    {"gemini-3-pro",          1048576, 65536, T | V | J | R, ANY, NOPRICE},
    {"gemini-2.5-pro",        1048576, 65536, T | V | J | R, ANY, NOPRICE},
    {"gemini-2.5-flash",      1048576, 65536, T | V | J | R, ANY, NOPRICE},
    {"gemini-2.5-flash-lite", 1048576, 65536, T | V | J | R, ANY, NOPRICE},
    {"gemini-2.0-flash",      1048576, 8192,  T | V | J, 0, NOPRICE},
    {"gemini-2.0-flash-lite", 1048576, 8192,  T | V | J, 0, P(0.075, 0.30, 0.075)},
};

/* Kind bedrock: Amazon's own models (Claude is found in Anthropic's table
 * by its name under "us.anthropic."); Nova Micro takes text only. */
static const yr_catalog_model_t bedrock_models[] = {
    {"amazon.nova-pro", 300000, 10000, T | V | J, 0, P(0.80, 3.20, 0.20)},
    {"amazon.nova-lite", 300000, 10000, T | V | J, 0, P(0.06, 0.24, 0.015)},
    {"amazon.nova-micro", 128000, 10000, T | J, 0, P(0.035, 0.14, 0.00875)},
};

/* Groq: reasoning_effort only on gpt-oss (qwen3 takes none/default, which
 * the catalog does not map: dropped). */
static const yr_catalog_model_t groq_models[] = {
    {"llama-3.1-8b-instant",    131072, 131072, T, 0, P(0.05, 0.08, 0.05)},
    {"llama-3.3-70b-versatile", 131072, 32768,  T, 0, P(0.59, 0.79, 0.59)},
    {"meta-llama/llama-4-scout-17b-16e-instruct",     131072, 8192, T | V | J, 0,
     P(0.11, 0.34, 0.11)},
    {"meta-llama/llama-4-maverick-17b-128e-instruct", 131072, 8192, T | V | J, 0,
     P(0.20, 0.60, 0.20)},
    {"openai/gpt-oss-120b",     131072, 65536,  T | J | R, LMH, P(0.15, 0.75, 0.15)},
    {"openai/gpt-oss-20b",      131072, 65536,  T | J | R, LMH, P(0.10, 0.50, 0.10)},
    {"qwen/qwen3-32b",          131072, 40960,  T | R, 0, P(0.29, 0.59, 0.29)},
    {"moonshotai/kimi-k2-instruct", 262144, 16384, T | J, 0, P(1.00, 3.00, 0.50)},
    {"deepseek-r1-distill-llama-70b", 131072, 131072, T | R, 0, P(0.75, 0.99, 0.75)},
};

/* DeepSeek: json_object only (no json_schema), no images, reasoning by
 * model choice (no reasoning_effort). */
static const yr_catalog_model_t deepseek_models[] = {
    {"deepseek-chat",     131072, 8192,  T, 0, P(0.28, 0.42, 0.028)},
    {"deepseek-reasoner", 131072, 65536, T | R, 0, P(0.28, 0.42, 0.028)},
};

/* Mistral: extra fields are a 422, so reasoning_effort is always dropped;
 * output limits are not published apart from the context. */
static const yr_catalog_model_t mistral_models[] = {
    {"mistral-large",   131072, 0, T | J, 0, P(2.00, 6.00, 2.00)},
    {"mistral-medium",  131072, 0, T | V | J, 0, P(0.40, 2.00, 0.40)},
    {"mistral-small",   131072, 0, T | V | J, 0, P(0.10, 0.30, 0.10)},
    {"magistral-medium", 131072, 0, T | V | J | R, 0, P(2.00, 5.00, 2.00)},
    {"magistral-small", 131072, 0, T | V | J | R, 0, P(0.50, 1.50, 0.50)},
    {"codestral",       262144, 0, T | J, 0, P(0.30, 0.90, 0.30)},
    {"pixtral-large",   131072, 0, T | V | J, 0, P(2.00, 6.00, 2.00)},
    {"ministral-8b",    131072, 0, T | J, 0, P(0.10, 0.10, 0.10)},
    {"ministral-3b",    131072, 0, T | J, 0, P(0.04, 0.04, 0.04)},
    {"open-mistral-nemo", 131072, 0, T | J, 0, P(0.15, 0.15, 0.15)},
};

/* xAI: Grok 4 reasons but refuses reasoning_effort; grok-3-mini takes low
 * and high only. */
static const yr_catalog_model_t xai_models[] = {
    {"grok-4",                     256000,  0, T | V | J | R, 0, P(3.00, 15.00, 0.75)},
    {"grok-4-fast-reasoning",      2000000, 0, T | V | J | R, 0, P(0.20, 0.50, 0.05)},
    {"grok-4-fast-non-reasoning",  2000000, 0, T | V | J, 0, P(0.20, 0.50, 0.05)},
    {"grok-4-1-fast-reasoning",    2000000, 0, T | V | J | R, 0, P(0.20, 0.50, 0.05)},
    {"grok-4-1-fast-non-reasoning", 2000000, 0, T | V | J, 0, P(0.20, 0.50, 0.05)},
    {"grok-code-fast-1",           256000,  0, T | J | R, 0, P(0.20, 1.50, 0.02)},
    {"grok-3",                     131072,  0, T | J, 0, P(3.00, 15.00, 0.75)},
    {"grok-3-mini",                131072,  0, T | J | R, LH, P(0.30, 0.50, 0.075)},
    {"grok-2-vision",              32768,   0, T | V | J, 0, P(2.00, 10.00, 2.00)},
};

static const yr_catalog_model_t together_models[] = {
    {"meta-llama/Llama-3.3-70B-Instruct-Turbo",        131072,  0, T | J, 0, P(0.88, 0.88, 0.88)},
    {"meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo",    131072,  0, T | J, 0, P(0.18, 0.18, 0.18)},
    {"meta-llama/Llama-4-Maverick-17B-128E-Instruct-FP8", 1048576, 0, T | V | J, 0,
     P(0.27, 0.85, 0.27)},
    {"meta-llama/Llama-4-Scout-17B-16E-Instruct",      1048576, 0, T | V | J, 0, P(0.18, 0.59, 0.18)},
    {"deepseek-ai/DeepSeek-V3",                        131072,  0, T | J, 0, P(1.25, 1.25, 1.25)},
    {"deepseek-ai/DeepSeek-R1",                        163840,  0, R, 0, P(3.00, 7.00, 3.00)},
    {"Qwen/Qwen2.5-72B-Instruct-Turbo",                32768,   0, T | J, 0, P(1.20, 1.20, 1.20)},
    {"Qwen/Qwen3-235B-A22B-Instruct-2507-tput",        262144,  0, T | J, 0, P(0.20, 0.60, 0.20)},
    {"openai/gpt-oss-120b",                            131072,  0, T | J | R, LMH, P(0.15, 0.60, 0.15)},
    {"moonshotai/Kimi-K2-Instruct",                    131072,  0, T | J, 0, P(1.00, 3.00, 1.00)},
};

static const yr_catalog_model_t fireworks_models[] = {
    {"accounts/fireworks/models/llama-v3p3-70b-instruct", 131072, 0, T | J, 0, P(0.90, 0.90, 0.90)},
    {"accounts/fireworks/models/llama-v3p1-8b-instruct",  131072, 0, T | J, 0, P(0.20, 0.20, 0.20)},
    {"accounts/fireworks/models/llama4-maverick-instruct-basic", 1048576, 0, T | V | J, 0,
     P(0.22, 0.88, 0.22)},
    {"accounts/fireworks/models/llama4-scout-instruct-basic", 1048576, 0, T | V | J, 0,
     P(0.15, 0.60, 0.15)},
    {"accounts/fireworks/models/deepseek-v3",  131072, 0, T | J, 0, P(0.90, 0.90, 0.90)},
    {"accounts/fireworks/models/deepseek-r1",  163840, 0, R, 0, P(3.00, 8.00, 3.00)},
    {"accounts/fireworks/models/qwen3-235b-a22b", 131072, 0, T | J | R, LMH, P(0.22, 0.88, 0.22)},
    {"accounts/fireworks/models/gpt-oss-120b", 131072, 0, T | J | R, LMH, P(0.15, 0.60, 0.15)},
    {"accounts/fireworks/models/kimi-k2-instruct", 131072, 0, T | J, 0, P(0.60, 2.50, 0.60)},
};

/* Cerebras takes no images on any model. */
static const yr_catalog_model_t cerebras_models[] = {
    {"llama3.1-8b",     32768,  8192, T | J, 0, P(0.10, 0.10, 0.10)},
    {"llama-3.3-70b",   131072, 0,    T | J, 0, P(0.85, 1.20, 0.85)},
    {"llama-4-scout-17b-16e-instruct", 32768, 0, T | J, 0, P(0.65, 0.85, 0.65)},
    {"qwen-3-32b",      131072, 0,    T | J | R, 0, P(0.40, 0.80, 0.40)},
    {"qwen-3-235b-a22b-instruct-2507", 131072, 0, T | J, 0, P(0.60, 1.20, 0.60)},
    {"gpt-oss-120b",    131072, 0,    T | J | R, LMH, P(0.25, 0.69, 0.25)},
};

#define TABLE(t) t, sizeof(t) / sizeof((t)[0])
static const yr_catalog_preset_t presets[] = {
    {"openai",     "https://api.openai.com/v1",             "OPENAI_API_KEY", true, false, false,
     TABLE(openai_models)},
    {"groq",       "https://api.groq.com/openai/v1",        "GROQ_API_KEY", true, false, false,
     TABLE(groq_models)},
    {"deepseek",   "https://api.deepseek.com",              "DEEPSEEK_API_KEY", true, false, false,
     TABLE(deepseek_models)},
    {"mistral",    "https://api.mistral.ai/v1",             "MISTRAL_API_KEY", true, false, false,
     TABLE(mistral_models)},
    {"xai",        "https://api.x.ai/v1",                   "XAI_API_KEY", true, false, false,
     TABLE(xai_models)},
    {"openrouter", "https://openrouter.ai/api/v1",          "OPENROUTER_API_KEY", true, false, true,
     NULL, 0},
    {"together",   "https://api.together.xyz/v1",           "TOGETHER_API_KEY", true, false, false,
     TABLE(together_models)},
    {"fireworks",  "https://api.fireworks.ai/inference/v1", "FIREWORKS_API_KEY", true, false, false,
     TABLE(fireworks_models)},
    {"cerebras",   "https://api.cerebras.ai/v1",            "CEREBRAS_API_KEY", true, false, false,
     TABLE(cerebras_models)},
    {"ollama",     "http://localhost:11434/v1",             NULL, true, true, false, NULL, 0},
    {"vllm",       "http://localhost:8000/v1",              NULL, true, true, false, NULL, 0},
    /* the kinds' own tables, not presets */
    {"anthropic",  "https://api.anthropic.com",             "ANTHROPIC_API_KEY", false, false, false,
     TABLE(anthropic_models)},
    {"gemini",     "https://generativelanguage.googleapis.com", "GEMINI_API_KEY", false, false, false,
     TABLE(gemini_models)},
    {"bedrock",    "",                                      NULL, false, false, false,
     TABLE(bedrock_models)},
};
#define NPRESETS (sizeof(presets) / sizeof(presets[0]))
enum { P_OPENAI = 0, P_ANTHROPIC = NPRESETS - 3, P_GEMINI = NPRESETS - 2, P_BEDROCK = NPRESETS - 1 };

/* An aggregator's "vendor/model" ids: the vendor's table knows the model. */
static const struct {
    const char *vendor;
    const char *preset;
} vendors[] = {
    {"openai/", "openai"},     {"anthropic/", "anthropic"}, {"google/", "gemini"},
    {"deepseek/", "deepseek"}, {"mistralai/", "mistral"},   {"x-ai/", "xai"},
};
/* clang-format on */

const yr_catalog_preset_t *yr_catalog_preset(yr_str_t name)
{
    for (size_t i = 0; i < NPRESETS; i++)
        if (presets[i].selectable && yr_str_eq(name, yr_str(presets[i].name)))
            return &presets[i];
    return NULL;
}

size_t yr_catalog_npresets(void)
{
    return P_ANTHROPIC; /* the kinds' own tables come last */
}

const yr_catalog_preset_t *yr_catalog_preset_at(size_t i)
{
    return i < yr_catalog_npresets() ? &presets[i] : NULL;
}

static const yr_catalog_preset_t *preset_named(const char *name)
{
    for (size_t i = 0; i < NPRESETS; i++)
        if (strcmp(presets[i].name, name) == 0)
            return &presets[i];
    return NULL;
}

void yr_catalog_preset_names(char *buf, size_t cap)
{
    size_t off = 0;
    if (cap == 0)
        return;
    buf[0] = '\0';
    for (size_t i = 0; i < NPRESETS && off < cap; i++) {
        if (!presets[i].selectable)
            continue;
        int n = snprintf(buf + off, cap - off, "%s%s", off ? ", " : "", presets[i].name);
        if (n < 0 || (size_t)n >= cap - off) {
            buf[off] = '\0'; /* whole names only */
            break;
        }
        off += (size_t)n;
    }
}

const yr_catalog_preset_t *yr_catalog_of_kind(yr_provider_kind_t kind)
{
    switch (kind) {
    case YR_KIND_OPENAI:
    case YR_KIND_AZURE: return &presets[P_OPENAI];
    case YR_KIND_ANTHROPIC: return &presets[P_ANTHROPIC];
    case YR_KIND_GEMINI: return &presets[P_GEMINI];
    default: return NULL;
    }
}

/* Namespaces in front of a model's own name: Gemini's "models/", Bedrock's
 * region and vendor prefixes, Vertex's "publishers/X/models/". */
static const char *skip_namespace(const char *m)
{
    static const char *const prefixes[] = {"models/", "us.",        "eu.",    "apac.",
                                           "global.", "anthropic.", "google."};
    for (bool again = true; again;) {
        again = false;
        for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
            size_t n = strlen(prefixes[i]);
            if (strncasecmp(m, prefixes[i], n) == 0) {
                m += n;
                again = true;
            }
        }
    }
    const char *pub = strstr(m, "/models/");
    return pub != NULL && strncmp(m, "publishers/", 11) == 0 ? pub + strlen("/models/") : m;
}

/* Exact, else the longest id that prefixes m (case-insensitively). */
static const yr_catalog_model_t *find_in(const yr_catalog_preset_t *p, const char *m)
{
    const yr_catalog_model_t *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < p->nmodels; i++) {
        const char *id = p->models[i].id;
        size_t n = strlen(id);
        if (strcasecmp(m, id) == 0)
            return &p->models[i];
        if (n > best_len && strncasecmp(m, id, n) == 0) {
            best = &p->models[i];
            best_len = n;
        }
    }
    return best;
}

const yr_catalog_model_t *yr_catalog_find(const yr_catalog_preset_t *p, const char *model)
{
    if (p == NULL || model == NULL)
        return NULL;
    const yr_catalog_model_t *m = find_in(p, model);
    const char *bare = skip_namespace(model);
    if (m == NULL && bare != model)
        m = find_in(p, bare);
    for (size_t i = 0; m == NULL && p->vendor_prefixed && i < sizeof(vendors) / sizeof(vendors[0]);
         i++) {
        size_t n = strlen(vendors[i].vendor);
        if (strncasecmp(model, vendors[i].vendor, n) == 0)
            m = find_in(preset_named(vendors[i].preset), model + n);
    }
    return m;
}

/* The catalog row of a route's model: its provider's preset or kind table;
 * Bedrock and Vertex (no table of their own) look in Anthropic's and
 * Gemini's by the model's own name. */
static const yr_catalog_model_t *route_row(const yr_route_conf_t *r)
{
    const yr_provider_conf_t *pc = r->provider;
    const yr_catalog_preset_t *p = pc->preset ? pc->preset : yr_catalog_of_kind(pc->kind);
    if (p != NULL)
        return yr_catalog_find(p, r->model);
    const yr_catalog_model_t *m = NULL;
    if (pc->kind == YR_KIND_BEDROCK)
        m = yr_catalog_find(&presets[P_BEDROCK], r->model);
    if (m == NULL)
        m = yr_catalog_find(&presets[P_ANTHROPIC], r->model);
    return m != NULL ? m : yr_catalog_find(&presets[P_GEMINI], r->model);
}

static const yr_model_override_t *route_override(const yr_route_conf_t *r)
{
    const yr_provider_conf_t *pc = r->provider;
    for (size_t i = 0; i < pc->nmodels; i++)
        if (strcmp(pc->models[i].id, r->model) == 0)
            return &pc->models[i];
    return NULL;
}

void yr_catalog_route_info(const yr_route_conf_t *r, yr_model_info_t *out)
{
    *out = (yr_model_info_t){.caps = YR_CAP_ALL, .efforts = YR_EFFORT_ALL};
    const yr_catalog_model_t *m = route_row(r);
    if (m != NULL) {
        out->known = true;
        out->context = m->context;
        out->max_output = m->max_output;
        out->caps = m->caps;
        out->efforts = m->efforts;
        out->has_price = m->has_price;
        out->price = (yr_price_t){.input = m->input,
                                  .output = m->output,
                                  .cache_read = m->cache_read,
                                  .cache_write = m->cache_write};
    }
    const yr_catalog_preset_t *p = r->provider->preset;
    if (!out->has_price && p != NULL && p->local) {
        out->has_price = true; /* self-hosted: free */
        out->price = (yr_price_t){0};
    }
    const yr_model_override_t *o = route_override(r);
    if (o == NULL)
        return;
    if (o->context)
        out->context = o->context;
    if (o->max_output)
        out->max_output = o->max_output;
    if (o->has_caps) {
        out->known = true;
        out->caps = o->caps;
    }
    if (o->has_efforts)
        out->efforts = o->efforts;
    if (o->has_price) {
        out->has_price = true;
        out->price = (yr_price_t){.input = o->price_input,
                                  .output = o->price_output,
                                  .cache_read = o->price_cache_read,
                                  .cache_write = o->price_cache_write};
    }
}

bool yr_catalog_route_price(const yr_route_conf_t *r, yr_price_t *out)
{
    if (r->has_price) {
        *out = (yr_price_t){.input = r->price_input,
                            .output = r->price_output,
                            .cache_read = r->price_cache_read,
                            .cache_write = r->price_cache_write};
        return true;
    }
    yr_model_info_t info;
    yr_catalog_route_info(r, &info);
    if (info.has_price) {
        *out = info.price;
        return true;
    }
    return yr_price_builtin(r->model, out);
}

static const char *const cap_names[] = {"tools", "vision", "json_schema", "reasoning"};
static const char *const effort_names[] = {"none", "minimal", "low", "medium", "high"};

const char *yr_cap_name(unsigned cap)
{
    for (unsigned i = 0; i < 4; i++)
        if (cap == 1u << i)
            return cap_names[i];
    return "?";
}

const char *yr_effort_name(unsigned effort)
{
    for (unsigned i = 0; i < 5; i++)
        if (effort == 1u << i)
            return effort_names[i];
    return "?";
}

unsigned yr_effort_bit(yr_str_t value)
{
    for (unsigned i = 0; i < 5; i++)
        if (yr_str_eq(value, yr_str(effort_names[i])))
            return 1u << i;
    return 0;
}

yr_str_t yr_catalog_map_effort(unsigned efforts, yr_str_t value)
{
    unsigned want = yr_effort_bit(value);
    if ((efforts & YR_EFFORT_ALL) == 0)
        return YR_STR_NULL;
    if (want == 0 || (efforts & want))
        return value;
    int w = __builtin_ctz(want), best = -1;
    for (int i = 0; i < 5; i++) {
        if (!(efforts & (1u << i)))
            continue;
        int d = i > w ? i - w : w - i, bd = best > w ? best - w : w - best;
        if (best < 0 || d < bd)
            best = i;
    }
    return yr_str(effort_names[best]);
}
