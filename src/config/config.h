/* Validated configuration. A yr_config_t and everything it points to live in
 * its own pool (cfg->pool): freed whole by yr_config_free(), replaced whole by
 * a reload. Read-only once loaded, so workers share it without locks. */
#ifndef YR_CONFIG_H
#define YR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/pool.h"

typedef enum {
    YR_KIND_OPENAI = 0,
    YR_KIND_ANTHROPIC,
    YR_KIND_GEMINI,
    YR_KIND_AZURE,
    YR_KIND_BEDROCK,
    YR_KIND_VERTEX,
    YR_KIND__COUNT
} yr_provider_kind_t;

/* providers.NAME.models.ID: what the config says of one upstream model of
 * that provider, over the catalog's (providers/catalog.h). 0 / false:
 * not given, the catalog's value stays. */
typedef struct {
    const char *id;
    uint32_t context;    /* context_window */
    uint32_t max_output; /* max_output_tokens */
    bool has_caps;       /* capabilities: [...] (YR_CAP_* bits) */
    uint8_t caps;
    bool has_efforts;    /* reasoning_effort: [...] (YR_EFFORT_* bits) */
    uint8_t efforts;
    bool has_price;      /* price: micro-USD per million tokens */
    int64_t price_input, price_output, price_cache_read, price_cache_write;
} yr_model_override_t;

struct yr_catalog_preset;

typedef struct {
    const char *name;     /* vendor name: the key under providers: */
    yr_provider_kind_t kind;
    const char *base_url; /* no trailing slash */
    const char *api_key;  /* may be NULL (e.g. a local vLLM) */
    uint32_t connect_timeout_ms;    /* default 5000 */
    uint32_t first_byte_timeout_ms; /* default 120000: headers must arrive by then */
    uint32_t idle_timeout_ms;       /* default 30000: longest silence after the head */
    uint32_t timeout_ms;            /* whole transfer; default 600000 */
    const char *anthropic_version;  /* anthropic-version header; default 2023-06-01 */
    uint32_t default_max_tokens;    /* max_tokens when the client set none; default 4096 */
    bool inline_images;             /* fetch https image URLs and send them inline */
    /* kind azure: "v1" (POST {base_url}/openai/v1/chat/completions, the
     * deployment in the body's model) or a date such as 2024-10-21[-preview]
     * (POST .../openai/deployments/{model}/chat/completions?api-version=..). */
    const char *api_version;
    /* Responses clients on this provider: "native" (its upstream speaks
     * /v1/responses: passthrough), "translate" (through chat completions),
     * or "auto" (native for kind openai at https://api.openai.com). Read with
     * yr_provider_responses_native. */
    const char *responses;
    /* kind bedrock (config/aws.h resolves them at load): the region, and
     * SigV4 keys unless api_key is a Bedrock API key. */
    const char *region;
    const char *aws_access_key_id, *aws_secret_access_key, *aws_session_token;
    const char *aws_profile, *aws_credentials_file;
    /* kind vertex (providers/vertex.c): the project and location in every
     * path, the publisher (google | anthropic; NULL: "anthropic" for route
     * models named claude*, else "google"), and the service account whose
     * tokens authorise the calls (NULL with a static api_key). */
    const char *project, *location, *publisher;
    const char *credentials_file, *credentials_json;
    const struct yr_gcp_sa *gcp_sa; /* parsed, in the config pool */
    /* kind openai: preset: NAME (providers/catalog.h) gives base_url, the
     * key's variable and the model catalog; NULL: the kind's own catalog. */
    const struct yr_catalog_preset *preset;
    yr_model_override_t *models;    /* providers.NAME.models, in the config pool */
    size_t nmodels;
    /* tls.ca_file: PEM bundle that verifies the provider's certificate
     * instead of the system store (private CAs, corporate proxies); NULL:
     * the system store. Checked readable at load. */
    const char *tls_ca_file;
    /* tls.http2 (default true): HTTP/2 is offered in ALPN and used when the
     * provider picks it, so concurrent calls share a few connections */
    bool tls_http2;
    size_t index;                   /* position in cfg->providers */
} yr_provider_conf_t;

typedef struct {
    const yr_provider_conf_t *provider;
    const char *model;   /* upstream model name; defaults to the model id */
    const char *api_key; /* this route's own key, or NULL: the provider's (yr_route_key) */
    uint32_t weight;     /* strategy weighted; default 1 */
    uint32_t max_concurrency; /* in flight on this route, all workers; 0 = no cap */
    /* routes[].price: micro-USD per million tokens; has_price false: the
     * built-in table (limits/price.c) decides. */
    bool has_price;
    int64_t price_input, price_output, price_cache_read, price_cache_write;
    /* Per-route overrides of the provider's timeouts; 0: the provider's. */
    uint32_t connect_timeout_ms, first_byte_timeout_ms, idle_timeout_ms, timeout_ms;
} yr_route_conf_t;

/* The key a call on r authenticates with (may be NULL: no auth header). */
static inline const char *yr_route_key(const yr_route_conf_t *r)
{
    return r->api_key != NULL ? r->api_key : r->provider->api_key;
}

/* How a model picks among its routes (src/route/route.c). */
typedef enum {
    YR_STRATEGY_PRIORITY = 0, /* config order; failover down the list */
    YR_STRATEGY_WEIGHTED,
    YR_STRATEGY_LEAST_LATENCY, /* EWMA of time to first byte, with exploration */
    YR_STRATEGY_LEAST_BUSY,    /* fewest in flight */
} yr_strategy_t;

/* What a failed attempt may be retried for (models[].retry_on). */
enum {
    YR_RETRY_429 = 1u << 0,
    YR_RETRY_500 = 1u << 1,
    YR_RETRY_502 = 1u << 2,
    YR_RETRY_503 = 1u << 3,
    YR_RETRY_504 = 1u << 4,
    YR_RETRY_529 = 1u << 5,
    YR_RETRY_OTHER_5XX = 1u << 6,
    YR_RETRY_CONNECT = 1u << 7, /* nothing was sent */
    YR_RETRY_RESET = 1u << 8,   /* reset or cut before the answer reached the client */
    YR_RETRY_TIMEOUT = 1u << 9, /* per-try timeout (first byte, idle) */
    YR_RETRY_BAD_RESPONSE = 1u << 10, /* malformed answer before the client saw any */
    YR_RETRY_DEFAULT = (1u << 11) - 1,
};

typedef struct {
    const char *id;
    yr_route_conf_t *routes;
    size_t nroutes;
    size_t index; /* position in cfg->models */
    yr_strategy_t strategy;     /* default priority */
    uint32_t retries;           /* extra tries of one route after a retryable failure; default 0 */
    uint32_t retry_on;          /* YR_RETRY_* mask; default YR_RETRY_DEFAULT */
    uint32_t timeout_ms;        /* total deadline of a request, all attempts; default 600000 */
    uint32_t max_wait_ms;       /* longest wait for a cooling or busy route; default 2000 */
    uint32_t failure_threshold; /* consecutive failures that eject a route; default 5 */
    uint32_t cooldown_ms;       /* first ejection; doubles per ejection up to 300 s; default 5000 */
    bool headroom;              /* prefer routes whose provider says requests are left; default true */
} yr_model_conf_t;

typedef struct yr_config {
    yr_pool_t *pool;
    const char *path; /* file it came from, or "(defaults)" */
    struct {
        const char *listen_host;      /* default 127.0.0.1 */
        uint16_t listen_port;         /* default 8080; 0 = ephemeral */
        const char *master_key;       /* may be NULL */
        uint32_t workers;             /* default: number of cores */
        uint64_t max_body_bytes;      /* default 32 MiB */
        uint32_t shutdown_timeout_ms; /* default 30000 */
        uint32_t idle_timeout_ms;     /* keep-alive idle; default 60000 */
        uint32_t linger_ms;           /* lingering close after a refused body; default 5000 */
        uint32_t header_timeout_ms;   /* a whole request head; default 10000 */
        uint32_t body_timeout_ms;     /* longest gap in a body, grace of the rate; default 30000 */
        uint64_t body_min_rate;       /* bytes/s a body averages after the grace; default 1 KiB */
        uint32_t max_connections;     /* per worker; default 0 = from RLIMIT_NOFILE */
        uint64_t max_body_memory;     /* all in-flight bodies of a worker; default 256 MiB */
        uint64_t max_translation_memory; /* the JSON trees of a worker's translations; 512 MiB */
        const char *log_level;        /* debug|info|warn|error|off; default info */
        const char *upstream_engine;  /* lean|curl (upstream.h); default lean */
        bool trust_forwarded_proto;   /* X-Forwarded-Proto says https: Secure cookies; default false */
        uint32_t ui_session_ttl_s;    /* admin UI session lifetime; default 43200 */
    } server;
    struct {
        const char *url;       /* default sqlite://yourouter.db */
        const char *redis_url; /* may be NULL */
    } storage;
    struct {                   /* fetching image URLs for inline_images providers */
        uint64_t max_bytes;    /* default 10 MiB */
        uint32_t timeout_ms;   /* default 10000 */
        uint32_t max_redirects; /* default 3; 0 = none followed */
        uint32_t max_per_request; /* default 8 */
        uint64_t max_request_bytes; /* all images of one request; default 20 MiB */
        uint64_t max_worker_bytes;  /* image bytes being fetched per worker; default 64 MiB */
        bool allow_http;       /* default false: https only */
        const char **allow;    /* exceptions to the SSRF guard (CIDR[:port]) */
        size_t nallow;
    } images;
    struct {                   /* the Responses API (docs/responses.md) */
        const char *secret;    /* seals provider state in encrypted_content; NULL: the
                                  master key (with a domain prefix) */
        uint32_t retention_days; /* stored responses older than this are purged; 0: kept */
    } responses;
    struct {                    /* docs/observability.md; all restart-only */
        const char *otlp_endpoint; /* OTLP/HTTP JSON traces URL; NULL: no export */
        uint32_t otlp_timeout_ms;  /* one export call; default 2000 */
        uint32_t otlp_interval_ms; /* how often a worker exports; default 1000 */
        uint32_t otlp_queue;       /* spans queued per worker, then dropped; default 4096 */
        uint32_t otlp_batch;       /* spans per export call; default 512 */
        const char *service_name;  /* resource service.name; default yourouter */
        const char *access_log;    /* "off" (default), "stdout" or a file path */
        bool metrics_key_names;    /* label per-key metrics with key names; default false */
    } observability;
    yr_provider_conf_t *providers;
    size_t nproviders;
    yr_model_conf_t *models;
    size_t nmodels;
} yr_config_t;

/* Whether Responses clients get a passthrough on provider p. */
bool yr_provider_responses_native(const yr_provider_conf_t *p);

/* Loads and validates a YAML file. On success returns 0 and *out (owned by
 * the caller, free with yr_config_free). On failure returns a negative code
 * and writes "FILE:LINE: KEY: what is wrong" into err. */
__attribute__((warn_unused_result)) int yr_config_load(const char *path, yr_config_t **out,
                                                        char *err, size_t errlen);
/* Same, from a string (name is used in messages). */
__attribute__((warn_unused_result)) int yr_config_load_string(const char *name, const char *yaml,
                                                               size_t len, yr_config_t **out,
                                                               char *err, size_t errlen);
/* The zero-config default of SPEC §5, read from the environment. */
__attribute__((warn_unused_result)) int yr_config_default(yr_config_t **out, char *err,
                                                           size_t errlen);
void yr_config_free(yr_config_t *cfg);

/* Lookups; NULL when absent. Returned pointers live as long as cfg. */
const yr_model_conf_t *yr_config_model(const yr_config_t *cfg, yr_str_t id);
const yr_provider_conf_t *yr_config_provider(const yr_config_t *cfg, yr_str_t name);
const char *yr_provider_kind_name(yr_provider_kind_t kind);
const char *yr_strategy_name(yr_strategy_t s);

/* Secrets shorter than this are not redacted (they would match ordinary
 * words); config validation keeps real keys far longer. */
#define YR_REDACT_MIN_LEN 6
/* Replaces, in the NUL-terminated text s (cap bytes), every configured
 * secret (server.master_key, every provider's and route's api_key) with
 * "[redacted]". For text that came from an upstream (error messages,
 * params, codes) before it reaches a client or a log. */
void yr_config_redact(const yr_config_t *cfg, char *s, size_t cap);

#endif
