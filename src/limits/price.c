/* The price table (price.h). */
#include "limits/price.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#define M(usd) ((int64_t)((usd) * 1000000.0 + 0.5)) /* USD/1M tokens -> micro-USD/1M */

typedef struct {
    const char *prefix;
    yr_price_t p;
} entry_t;

/* Longest prefix wins, so order does not matter; keep families together. */
static const entry_t table[] = {
    /* OpenAI (cached input at the published discount) */
    {"gpt-4o-mini", {M(0.15), M(0.60), M(0.075), 0, 0, 0, 0, 0}},
    {"gpt-4o", {M(2.50), M(10.00), M(1.25), 0, 0, 0, 0, 0}},
    {"gpt-4.1-nano", {M(0.10), M(0.40), M(0.025), 0, 0, 0, 0, 0}},
    {"gpt-4.1-mini", {M(0.40), M(1.60), M(0.10), 0, 0, 0, 0, 0}},
    {"gpt-4.1", {M(2.00), M(8.00), M(0.50), 0, 0, 0, 0, 0}},
    {"gpt-5-nano", {M(0.05), M(0.40), M(0.005), 0, 0, 0, 0, 0}},
    {"gpt-5-mini", {M(0.25), M(2.00), M(0.025), 0, 0, 0, 0, 0}},
    {"gpt-5", {M(1.25), M(10.00), M(0.125), 0, 0, 0, 0, 0}},
    {"o4-mini", {M(1.10), M(4.40), M(0.275), 0, 0, 0, 0, 0}},
    {"o3-mini", {M(1.10), M(4.40), M(0.55), 0, 0, 0, 0, 0}},
    {"o3-pro", {M(20.00), M(80.00), M(20.00), 0, 0, 0, 0, 0}},
    {"o1-mini", {M(1.10), M(4.40), M(0.55), 0, 0, 0, 0, 0}},
    {"o3", {M(2.00), M(8.00), M(0.50), 0, 0, 0, 0, 0}},
    {"o1", {M(15.00), M(60.00), M(7.50), 0, 0, 0, 0, 0}},
    /* OpenAI embeddings (input only) */
    {"text-embedding-3-small", {M(0.02), 0, 0, 0, 0, 0, 0, 0}},
    {"text-embedding-3-large", {M(0.13), 0, 0, 0, 0, 0, 0, 0}},
    {"text-embedding-ada-002", {M(0.10), 0, 0, 0, 0, 0, 0, 0}},
    /* Anthropic: cache reads 0.1x input, 5-minute cache writes 1.25x */
    /* Anthropic: 1-hour cache writes 2x input */
    {"claude-opus-4", {M(15.00), M(75.00), M(1.50), M(18.75), M(30.00), 0, 0, 0}},
    {"claude-sonnet-4", {M(3.00), M(15.00), M(0.30), M(3.75), M(6.00), 200000, M(6.00), M(22.50)}},
    {"claude-3-7-sonnet", {M(3.00), M(15.00), M(0.30), M(3.75), M(6.00), 0, 0, 0}},
    {"claude-3-5-sonnet", {M(3.00), M(15.00), M(0.30), M(3.75), M(6.00), 0, 0, 0}},
    {"claude-haiku-4", {M(1.00), M(5.00), M(0.10), M(1.25), M(2.00), 0, 0, 0}},
    {"claude-3-5-haiku", {M(0.80), M(4.00), M(0.08), M(1.00), M(1.60), 0, 0, 0}},
    {"claude-3-haiku", {M(0.25), M(1.25), M(0.03), M(0.30), M(0.50), 0, 0, 0}},
    /* Google Gemini (prompts over 200k tokens at the long-context price) */
    {"gemini-2.5-pro", {M(1.25), M(10.00), M(0.31), 0, 0, 200000, M(2.50), M(15.00)}},
    {"gemini-2.5-flash-lite", {M(0.10), M(0.40), M(0.025), 0, 0, 0, 0, 0}},
    {"gemini-2.5-flash", {M(0.30), M(2.50), M(0.075), 0, 0, 0, 0, 0}},
    {"gemini-2.0-flash", {M(0.10), M(0.40), M(0.025), 0, 0, 0, 0, 0}},
    {"gemini-3-pro", {M(2.00), M(12.00), M(0.20), 0, 0, 200000, M(4.00), M(18.00)}},
    {"gemini-embedding-001", {M(0.15), 0, 0, 0, 0, 0, 0, 0}},
};

static const char *skip_namespace(const char *m)
{
    static const char *const prefixes[] = {"models/", "us.", "eu.", "apac.", "global.",
                                           "anthropic.", "google/", "openai/", "anthropic/"};
    for (int again = 1; again;) {
        again = 0;
        for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
            size_t n = strlen(prefixes[i]);
            if (strncasecmp(m, prefixes[i], n) == 0) {
                m += n;
                again = 1;
            }
        }
    }
    const char *pub = strstr(m, "/models/"); /* publishers/google/models/NAME */
    return pub != NULL ? pub + strlen("/models/") : m;
}

bool yr_price_builtin(const char *model, yr_price_t *out)
{
    if (model == NULL)
        return false;
    const char *m = skip_namespace(model);
    const entry_t *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        size_t n = strlen(table[i].prefix);
        if (n > best_len && strncasecmp(m, table[i].prefix, n) == 0) {
            best = &table[i];
            best_len = n;
        }
    }
    if (best == NULL)
        return false;
    *out = best->p;
    return true;
}

static int64_t nonneg(int64_t v)
{
    return v > 0 ? v : 0;
}

int64_t yr_cost_micros(const yr_price_t *p, const yr_usage_t *u)
{
    int64_t cached = nonneg(u->cached_tokens), written = nonneg(u->cache_write_tokens);
    int64_t written_1h = nonneg(u->cache_write_1h_tokens);
    if (written_1h > written)
        written_1h = written;
    int64_t prompt = nonneg(u->prompt_tokens);
    int64_t fresh = nonneg(prompt - cached - written);
    int64_t in = p->input, out = p->output;
    if (p->long_threshold > 0 && prompt > p->long_threshold) {
        in = p->long_input;
        out = p->long_output;
    }
    /* Cache prices default to the input price when the table has none. */
    int64_t read = p->cache_read > 0 ? p->cache_read : in;
    int64_t write = p->cache_write > 0 ? p->cache_write : in;
    int64_t write_1h = p->cache_write_1h > 0 ? p->cache_write_1h : write;
    /* tokens x micro-USD per million / 1e6, rounded half up, in 128 bits */
    __int128 sum = (__int128)fresh * in + (__int128)cached * read +
                   (__int128)(written - written_1h) * write + (__int128)written_1h * write_1h +
                   (__int128)nonneg(u->completion_tokens) * out;
    __int128 micros = (sum + 500000) / 1000000;
    return micros > INT64_MAX / 4 ? INT64_MAX / 4 : (int64_t)micros; /* absurd counts saturate */
}

int64_t yr_price_parse(const char *s)
{
    if (s == NULL || *s == '\0')
        return -1;
    int64_t whole = 0, frac = 0, scale = 1000000;
    const char *c = s;
    for (; *c >= '0' && *c <= '9'; c++) {
        whole = whole * 10 + (*c - '0');
        if (whole >= 1000000)
            return -1;
    }
    if (*c == '.') {
        for (c++; *c >= '0' && *c <= '9'; c++) {
            if (scale > 1) {
                scale /= 10;
                frac += (*c - '0') * scale;
            }
        }
    }
    if (*c != '\0' || c == s)
        return -1;
    return whole * 1000000 + frac;
}
