/* Prices of models, for usage cost and budget reservations.
 *
 * A built-in table (USD per million tokens, as the providers published them
 * in 2025; docs/accounting.md lists it) matched by the longest prefix of the
 * upstream model name, so dated snapshots ("gpt-4o-2024-08-06") and
 * inference-profile ids find their family. A config may override a route's
 * price (routes[].price). Costs are integers in micro-USD (1e-6 USD). */
#ifndef YR_PRICE_H
#define YR_PRICE_H

#include <stdbool.h>
#include <stdint.h>

#include "api/events.h"

typedef struct {
    /* micro-USD per million tokens (= USD per token x 1e12) */
    int64_t input, output, cache_read, cache_write;
    int64_t cache_write_1h; /* Anthropic's 1-hour cache writes; 0: cache_write */
    /* Above this many prompt tokens (0: no tier), the long-context prices. */
    int64_t long_threshold;
    int64_t long_input, long_output;
} yr_price_t;

/* The built-in price of an upstream model; false when unknown. Names are
 * matched case-insensitively, provider prefixes ("us.", "anthropic.",
 * "models/", "publishers/…/models/") skipped. */
bool yr_price_builtin(const char *model, yr_price_t *out);

/* The cost of what an attempt used. usage follows yr_usage_t's rules:
 * prompt_tokens includes cached and cache-write tokens, completion_tokens
 * includes reasoning. Never negative. */
int64_t yr_cost_micros(const yr_price_t *p, const yr_usage_t *u);

/* USD per million tokens (a decimal string such as "2.50") -> micro-USD per
 * million; -1 when it is not a non-negative number below 1e6. */
int64_t yr_price_parse(const char *usd_per_million);

#endif
