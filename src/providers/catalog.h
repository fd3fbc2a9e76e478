/* The model catalog: what the gateway knows about upstream models (context
 * window, output limit, capabilities, prices) and the presets of the
 * OpenAI-compatible providers people point gateways at (base URL, key
 * variable, their models).
 *
 * Data only: const tables in catalog.c, a dated snapshot of what the
 * providers published (docs/providers.md says when). Every value can be
 * overridden in the config: providers.NAME.{preset, base_url, api_key,
 * models} and routes[].price. The lookups are pure, allocation-free and
 * thread-safe; what they return lives for the process (the tables) or as
 * long as the config the route came from (its overrides).
 *
 * Any provider kind can ask: yr_catalog_route_info() answers for a route,
 * whatever its kind; a kind without a table of its own (bedrock, vertex)
 * finds Anthropic and Gemini models by name under their namespaces. */
#ifndef YR_CATALOG_H
#define YR_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "limits/price.h"

/* What a model can take. The same bits as the request's uses (api/chat.h,
 * YR_USES_*): a request uses what a model must have. */
enum {
    YR_CAP_TOOLS = 1u << 0,       /* tools, tool_choice, tool messages */
    YR_CAP_VISION = 1u << 1,      /* image_url content parts */
    YR_CAP_JSON_SCHEMA = 1u << 2, /* response_format {type: json_schema} */
    YR_CAP_REASONING = 1u << 3,   /* it thinks; see efforts for the knob */
    YR_CAP_ALL = (1u << 4) - 1,
};

/* reasoning_effort values, as bits, in their order of effort. */
enum {
    YR_EFFORT_NONE = 1u << 0,
    YR_EFFORT_MINIMAL = 1u << 1,
    YR_EFFORT_LOW = 1u << 2,
    YR_EFFORT_MEDIUM = 1u << 3,
    YR_EFFORT_HIGH = 1u << 4,
    YR_EFFORT_ALL = (1u << 5) - 1,
};

/* One model as a provider serves it. Prices in micro-USD per million tokens
 * (limits/price.h); has_price false: the built-in price table decides. */
typedef struct {
    const char *id;      /* as the provider spells it; also a prefix (dated snapshots) */
    uint32_t context;    /* context window in tokens; 0: unknown */
    uint32_t max_output; /* most output tokens per answer; 0: unknown (never clamped) */
    uint8_t caps;        /* YR_CAP_* */
    uint8_t efforts;     /* reasoning_effort values it takes; 0: none (the field is dropped) */
    bool has_price;
    int64_t input, output, cache_read, cache_write;
} yr_catalog_model_t;

typedef struct yr_catalog_preset {
    const char *name;     /* preset: NAME */
    const char *base_url; /* no trailing slash */
    const char *key_env;  /* the key's usual variable; NULL: no key (local servers) */
    bool selectable;      /* false: a kind's own table (anthropic, gemini), not a preset */
    bool local;           /* self-hosted: every model costs nothing */
    bool vendor_prefixed; /* ids are "vendor/model": an unknown one is looked up by its vendor */
    const yr_catalog_model_t *models;
    size_t nmodels;
} yr_catalog_preset_t;

/* The preset called name (selectable ones only); NULL when unknown. */
const yr_catalog_preset_t *yr_catalog_preset(yr_str_t name);
/* The selectable presets, in order: yr_catalog_preset_at(i) for i below
 * yr_catalog_npresets() (the zero-config default walks them). */
size_t yr_catalog_npresets(void);
const yr_catalog_preset_t *yr_catalog_preset_at(size_t i);
/* "openai, groq, ..." into buf (cap bytes, NUL-terminated): for messages. */
void yr_catalog_preset_names(char *buf, size_t cap);
/* The table a provider without a preset uses: its kind's (openai and azure:
 * OpenAI's models; anthropic; gemini); NULL for kinds without one. */
const yr_catalog_preset_t *yr_catalog_of_kind(yr_provider_kind_t kind);

/* The model of preset p called model: an exact id, else the longest id
 * that is a prefix of it (dated snapshots), after provider namespaces
 * ("models/", "us.", "anthropic.", "publishers/.../models/"). NULL: unknown. */
const yr_catalog_model_t *yr_catalog_find(const yr_catalog_preset_t *p, const char *model);

/* What the gateway knows of the model a route calls, with the config's
 * overrides (providers.NAME.models) applied. */
typedef struct {
    bool known;          /* false: nothing known; every capability is assumed */
    uint32_t context;    /* 0: unknown */
    uint32_t max_output; /* 0: unknown */
    uint8_t caps;        /* YR_CAP_ALL when unknown */
    uint8_t efforts;     /* with YR_CAP_REASONING: the values it takes */
    bool has_price;      /* a price from the catalog or the overrides */
    yr_price_t price;
} yr_model_info_t;

/* Fills out for route r (any kind). Never fails: an unknown model is
 * reported as known = false with every capability. */
void yr_catalog_route_info(const yr_route_conf_t *r, yr_model_info_t *out);

/* A route's price: routes[].price, else the provider's model override,
 * else the catalog's (0 for local presets), else the built-in price table
 * by the upstream model's name. false: no price is known. */
bool yr_catalog_route_price(const yr_route_conf_t *r, yr_price_t *out);

/* The name of one YR_CAP_* bit ("tools", "vision", "json_schema",
 * "reasoning"); of one YR_EFFORT_* bit ("none" ... "high"). */
const char *yr_cap_name(unsigned cap);
const char *yr_effort_name(unsigned effort);
/* The YR_EFFORT_* bit of a reasoning_effort value; 0 when not one of ours. */
unsigned yr_effort_bit(yr_str_t value);

/* The reasoning_effort to send a model that takes `efforts`, for the value
 * the client sent: the value itself when taken, else the nearest value the
 * model takes (ties: the lesser effort); NULL: drop the field (the model
 * has no such knob). A value the catalog does not know is kept as it is
 * (the provider judges). The result is a static string or value itself;
 * .ptr NULL: drop. */
yr_str_t yr_catalog_map_effort(unsigned efforts, yr_str_t value);

#endif
