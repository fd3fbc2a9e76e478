/* Config loading: YAML text -> a validated, read-only yr_config_t.
 *
 * libyaml's document API parses the whole file into a node tree that keeps
 * the line of every node; we then walk that tree section by section. Scalar
 * settings are not parsed by hand: each one is a row in a table (name, type,
 * range, default, offset into the struct, validator), so adding a setting
 * means adding a row. Only the two structural parts, the providers mapping
 * and the models sequence, have code of their own.
 *
 * Everything the result points to is copied into cfg->pool; the libyaml
 * document is freed before we return, and a reload replaces the pool whole.
 *
 * Every error is "FILE:LINE: KEY.PATH: what is wrong" and only the first one
 * is reported. A message quotes the offending value only when that is safe:
 * never for secret settings (API keys, the master key, database URLs that
 * can carry a password) and never when the value came out of an environment
 * variable, since any variable may hold a secret.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "config/aws.h"
#include "config/config.h"
#include "limits/price.h"
#include "providers/gcp_auth.h"
#include "providers/catalog.h"
#include "upstream/fetch.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#define CFG_POOL_BLOCK (16 * 1024)
#define CFG_MAX_FILE (4u << 20)   /* a config file larger than this is a mistake */
#define CFG_MAX_VALUE (64 * 1024) /* one scalar, after ${VAR} expansion */
#define CFG_MAX_PATH 256          /* key path in messages */
#define CFG_MAX_SHOWN 64          /* characters of a value quoted in a message */
#define CFG_MAX_KEY_SHOWN 64      /* characters of one key in a path */
#define CFG_MAX_ENV_NAME 128
#define CFG_MAX_ROWS 32
#define CFG_MAX_NAME 64   /* provider (vendor) names */
#define CFG_MAX_MODEL 256 /* model ids and upstream model names */

/* ------------------------------------------------------------------------ */
/* The setting tables                                                         */

typedef enum {
    T_STR,    /* const char *; empty means NULL when F_NULLABLE */
    T_U32,    /* uint32_t, decimal */
    T_BYTES,  /* uint64_t, decimal with an optional k/m/g/KiB/MiB/GiB suffix */
    T_ENUM,   /* const char *, one of names[] */
    T_KIND,   /* yr_provider_kind_t, one of names[] */
    T_LISTEN, /* "host:port": host at offset, uint16_t port at aux_offset */
    T_BOOL,   /* bool: true/false (also yes/no, on/off) */
    T_CUSTOM, /* structural: the caller gets the node and handles it */
} setting_type_t;

enum {
    F_REQUIRED = 1 << 0,
    F_NULLABLE = 1 << 1, /* an empty value stores NULL */
    F_SECRET = 1 << 2,   /* never quote the value in a message */
};

/* A validator may shorten *value (e.g. strip trailing slashes). On failure it
 * returns -EINVAL and points *err at a static message that quotes nothing. */
typedef int (*check_fn)(yr_str_t *value, const char **err);

typedef struct {
    const char *name;
    setting_type_t type;
    unsigned flags;
    uint64_t min, max; /* integers: inclusive range; strings: max length */
    uint64_t def_num;
    uint64_t (*def_fn)(void); /* computed default, wins over def_num */
    const char *def_str;
    const char *const *names; /* T_ENUM, T_KIND: NULL-terminated */
    check_fn check;
    size_t offset;
    size_t aux_offset;
} setting_t;

static int check_token(yr_str_t *v, const char **err);
static int check_http_url(yr_str_t *v, const char **err);
static int check_storage_url(yr_str_t *v, const char **err);
static int check_redis_url(yr_str_t *v, const char **err);
static int check_model_name(yr_str_t *v, const char **err);
static int check_api_version(yr_str_t *v, const char **err);
static int check_segment(yr_str_t *v, const char **err);
static uint64_t default_workers(void);

static const char *const kind_names[] = {"openai",  "anthropic", "gemini", "azure",
                                         "bedrock", "vertex",    NULL};
_Static_assert(sizeof(kind_names) / sizeof(kind_names[0]) == YR_KIND__COUNT + 1,
               "one name per provider kind");

/* Where a provider of each kind lives when base_url is left out. */
static const char *const kind_base_urls[YR_KIND__COUNT] = {
    [YR_KIND_OPENAI] = "https://api.openai.com/v1",
    [YR_KIND_ANTHROPIC] = "https://api.anthropic.com",
    [YR_KIND_GEMINI] = "https://generativelanguage.googleapis.com",
};

static const char *const publisher_names[] = {"google", "anthropic", NULL};

static const char *const log_level_names[] = {"debug", "info", "warn", "error", "off", NULL};

static const char *const upstream_engine_names[] = {"lean", "curl", NULL};

#define CFG(f) offsetof(yr_config_t, f)
#define PRV(f) offsetof(yr_provider_conf_t, f)

/* One setting per row; clang-format would put every field on its own line. */
/* clang-format off */
static const setting_t server_rows[] = {
    {.name = "listen", .type = T_LISTEN, .def_str = "127.0.0.1:8080",
     .offset = CFG(server.listen_host), .aux_offset = CFG(server.listen_port)},
    {.name = "master_key", .type = T_STR, .flags = F_NULLABLE | F_SECRET, .max = 4096,
     .check = check_token, .offset = CFG(server.master_key)},
    {.name = "workers", .type = T_U32, .min = 1, .max = 256, .def_fn = default_workers,
     .offset = CFG(server.workers)},
    {.name = "max_body_bytes", .type = T_BYTES, .min = 1u << 10, .max = 1u << 30,
     .def_num = 32u << 20, .offset = CFG(server.max_body_bytes)},
    {.name = "shutdown_timeout_ms", .type = T_U32, .min = 0, .max = 600000, .def_num = 30000,
     .offset = CFG(server.shutdown_timeout_ms)},
    {.name = "idle_timeout_ms", .type = T_U32, .min = 1000, .max = 3600000, .def_num = 60000,
     .offset = CFG(server.idle_timeout_ms)},
    {.name = "linger_ms", .type = T_U32, .min = 100, .max = 60000, .def_num = 5000,
     .offset = CFG(server.linger_ms)},
    {.name = "header_timeout_ms", .type = T_U32, .min = 100, .max = 600000, .def_num = 10000,
     .offset = CFG(server.header_timeout_ms)},
    {.name = "body_timeout_ms", .type = T_U32, .min = 100, .max = 3600000, .def_num = 30000,
     .offset = CFG(server.body_timeout_ms)},
    {.name = "body_min_rate", .type = T_BYTES, .min = 0, .max = 1u << 30, .def_num = 1024,
     .offset = CFG(server.body_min_rate)},
    {.name = "max_body_memory", .type = T_BYTES, .min = 1u << 20, .max = 1ull << 40,
     .def_num = 256u << 20, .offset = CFG(server.max_body_memory)},
    {.name = "max_translation_memory", .type = T_BYTES, .min = 16u << 20, .max = 1ull << 40,
     .def_num = 512u << 20, .offset = CFG(server.max_translation_memory)},
    {.name = "max_connections", .type = T_U32, .min = 0, .max = 1000000, .def_num = 0,
     .offset = CFG(server.max_connections)},
    {.name = "log_level", .type = T_ENUM, .names = log_level_names, .def_str = "info",
     .offset = CFG(server.log_level)},
    {.name = "trust_forwarded_proto", .type = T_BOOL, .offset = CFG(server.trust_forwarded_proto)},
    {.name = "ui_session_ttl_s", .type = T_U32, .min = 300, .max = 30 * 86400, .def_num = 43200,
     .offset = CFG(server.ui_session_ttl_s)},
    {.name = "upstream_engine", .type = T_ENUM, .names = upstream_engine_names, .def_str = "lean",
     .offset = CFG(server.upstream_engine)},
};

static const setting_t storage_rows[] = {
    {.name = "url", .type = T_STR, .flags = F_SECRET, .max = 4096,
     .def_str = "sqlite://yourouter.db", .check = check_storage_url, .offset = CFG(storage.url)},
    {.name = "redis_url", .type = T_STR, .flags = F_NULLABLE | F_SECRET, .max = 4096,
     .check = check_redis_url, .offset = CFG(storage.redis_url)},
};

static const char *const responses_modes[] = {"auto", "native", "translate", NULL};

enum { PROVIDER_KIND, PROVIDER_PRESET, PROVIDER_MODELS, PROVIDER_TLS };
static const setting_t provider_rows[] = {
    [PROVIDER_KIND] = {.name = "kind", .type = T_KIND, .flags = F_REQUIRED, .names = kind_names,
                       .offset = PRV(kind)},
    /* kind openai: a provider of the catalog (providers/catalog.h): its
     * base_url, the variable of its key and its models, each overridable. */
    [PROVIDER_PRESET] = {.name = "preset", .type = T_CUSTOM},
    /* what the config says of this provider's models, over the catalog */
    [PROVIDER_MODELS] = {.name = "models", .type = T_CUSTOM},
    [PROVIDER_TLS] = {.name = "tls", .type = T_CUSTOM},
    /* Defaults to kind_base_urls[kind]; required for the other kinds. */
    {.name = "base_url", .type = T_STR, .max = 2048, .check = check_http_url,
     .offset = PRV(base_url)},
    {.name = "api_key", .type = T_STR, .flags = F_NULLABLE | F_SECRET, .max = 4096,
     .check = check_token, .offset = PRV(api_key)},
    {.name = "connect_timeout_ms", .type = T_U32, .min = 1, .max = 600000, .def_num = 5000,
     .offset = PRV(connect_timeout_ms)},
    {.name = "first_byte_timeout_ms", .type = T_U32, .min = 1, .max = 3600000,
     .def_num = 120000, .offset = PRV(first_byte_timeout_ms)},
    {.name = "idle_timeout_ms", .type = T_U32, .min = 1, .max = 3600000, .def_num = 30000,
     .offset = PRV(idle_timeout_ms)},
    {.name = "timeout_ms", .type = T_U32, .min = 1, .max = 86400000, .def_num = 600000,
     .offset = PRV(timeout_ms)},
    /* kind: anthropic — the anthropic-version header, and max_tokens for
     * requests that set none (the Messages API requires it). */
    {.name = "anthropic_version", .type = T_STR, .max = 64, .def_str = "2023-06-01",
     .check = check_token, .offset = PRV(anthropic_version)},
    {.name = "default_max_tokens", .type = T_U32, .min = 1, .max = 1000000, .def_num = 4096,
     .offset = PRV(default_max_tokens)},
    /* Providers that cannot fetch image URLs themselves: the gateway fetches
     * them (behind the SSRF guard of images:) and sends them inline. */
    {.name = "inline_images", .type = T_BOOL, .offset = PRV(inline_images)},
    /* kind: azure — "v1" (the v1 API, the deployment in the body) or a date
     * (the classic deployments API with ?api-version=). */
    {.name = "api_version", .type = T_STR, .max = 32, .def_str = "v1",
     .check = check_api_version, .offset = PRV(api_version)},
    /* kind: bedrock — the region, and the SigV4 credentials (config/aws.h:
     * else the AWS_* environment, else a credentials-file profile). */
    {.name = "region", .type = T_STR, .max = 32, .check = check_token, .offset = PRV(region)},
    {.name = "aws_access_key_id", .type = T_STR, .flags = F_NULLABLE | F_SECRET, .max = 128,
     .check = check_token, .offset = PRV(aws_access_key_id)},
    {.name = "aws_secret_access_key", .type = T_STR, .flags = F_NULLABLE | F_SECRET, .max = 256,
     .check = check_token, .offset = PRV(aws_secret_access_key)},
    {.name = "aws_session_token", .type = T_STR, .flags = F_NULLABLE | F_SECRET, .max = 8192,
     .check = check_token, .offset = PRV(aws_session_token)},
    {.name = "aws_profile", .type = T_STR, .max = 128, .check = check_token,
     .offset = PRV(aws_profile)},
    {.name = "aws_credentials_file", .type = T_STR, .max = 1024, .offset = PRV(aws_credentials_file)},
    /* kind: vertex — where (project, location), which publisher's models,
     * and the service account (check_vertex). */
    {.name = "project", .type = T_STR, .flags = F_NULLABLE, .max = 128, .check = check_segment,
     .offset = PRV(project)},
    {.name = "location", .type = T_STR, .max = 64, .def_str = "us-central1",
     .check = check_segment, .offset = PRV(location)},
    {.name = "publisher", .type = T_ENUM, .names = publisher_names, .offset = PRV(publisher)},
    {.name = "credentials_file", .type = T_STR, .flags = F_NULLABLE, .max = 4096,
     .offset = PRV(credentials_file)},
    {.name = "credentials_json", .type = T_STR, .flags = F_NULLABLE | F_SECRET,
     .max = YR_GCP_MAX_SA_JSON, .offset = PRV(credentials_json)},
    /* Responses clients: passthrough to an upstream /v1/responses or not. */
    {.name = "responses", .type = T_ENUM, .names = responses_modes, .def_str = "auto",
     .offset = PRV(responses)},
};

static const setting_t responses_rows[] = {
    {.name = "secret", .type = T_STR, .flags = F_NULLABLE | F_SECRET, .max = 4096,
     .check = check_token, .offset = CFG(responses.secret)},
    {.name = "retention_days", .type = T_U32, .min = 0, .max = 36500, .def_num = 30,
     .offset = CFG(responses.retention_days)},
};

/* providers.NAME.tls */
static const setting_t provider_tls_rows[] = {
    {.name = "ca_file", .type = T_STR, .flags = F_NULLABLE, .max = 4096,
     .offset = PRV(tls_ca_file)},
    /* offer HTTP/2 in ALPN (libcurl's default for HTTPS); false: HTTP/1.1 only */
    {.name = "http2", .type = T_BOOL, .def_num = 1, .offset = PRV(tls_http2)},
};

#define OVR(f) offsetof(yr_model_override_t, f)
enum { OVR_CAPS, OVR_EFFORTS, OVR_PRICE };
static const setting_t override_rows[] = {
    [OVR_CAPS] = {.name = "capabilities", .type = T_CUSTOM},
    [OVR_EFFORTS] = {.name = "reasoning_effort", .type = T_CUSTOM},
    [OVR_PRICE] = {.name = "price", .type = T_CUSTOM},
    {.name = "context_window", .type = T_U32, .min = 1, .max = 100000000,
     .offset = OVR(context)},
    {.name = "max_output_tokens", .type = T_U32, .min = 1, .max = 100000000,
     .offset = OVR(max_output)},
};

enum { IMAGES_ALLOW = 5 };
static const setting_t images_rows[] = {
    {.name = "max_bytes", .type = T_BYTES, .min = 1024, .max = 64u << 20, .def_num = 10u << 20,
     .offset = CFG(images.max_bytes)},
    {.name = "timeout_ms", .type = T_U32, .min = 100, .max = 600000, .def_num = 10000,
     .offset = CFG(images.timeout_ms)},
    {.name = "max_redirects", .type = T_U32, .min = 0, .max = 10, .def_num = 3,
     .offset = CFG(images.max_redirects)},
    {.name = "max_per_request", .type = T_U32, .min = 1, .max = 64, .def_num = 8,
     .offset = CFG(images.max_per_request)},
    {.name = "allow_http", .type = T_BOOL, .offset = CFG(images.allow_http)},
    [IMAGES_ALLOW] = {.name = "allow", .type = T_CUSTOM},
    {.name = "max_request_bytes", .type = T_BYTES, .min = 1024, .max = 1u << 30,
     .def_num = 20u << 20, .offset = CFG(images.max_request_bytes)},
    {.name = "max_worker_bytes", .type = T_BYTES, .min = 1024, .max = 4ull << 30,
     .def_num = 64u << 20, .offset = CFG(images.max_worker_bytes)},
};

static const setting_t observability_rows[] = {
    {.name = "otlp_endpoint", .type = T_STR, .flags = F_NULLABLE | F_SECRET, .max = 2048,
     .check = check_http_url, .offset = CFG(observability.otlp_endpoint)},
    {.name = "otlp_timeout_ms", .type = T_U32, .min = 10, .max = 60000, .def_num = 2000,
     .offset = CFG(observability.otlp_timeout_ms)},
    {.name = "otlp_interval_ms", .type = T_U32, .min = 10, .max = 60000, .def_num = 1000,
     .offset = CFG(observability.otlp_interval_ms)},
    {.name = "otlp_queue", .type = T_U32, .min = 1, .max = 1000000, .def_num = 4096,
     .offset = CFG(observability.otlp_queue)},
    {.name = "otlp_batch", .type = T_U32, .min = 1, .max = 10000, .def_num = 512,
     .offset = CFG(observability.otlp_batch)},
    {.name = "service_name", .type = T_STR, .max = 128, .def_str = "yourouter",
     .check = check_token, .offset = CFG(observability.service_name)},
    {.name = "access_log", .type = T_STR, .max = 4096, .def_str = "off",
     .offset = CFG(observability.access_log)},
    {.name = "metrics_key_names", .type = T_BOOL, .offset = CFG(observability.metrics_key_names)},
};

#define MDL(f) offsetof(yr_model_conf_t, f)
enum { MODEL_ID, MODEL_ROUTES, MODEL_STRATEGY, MODEL_RETRY_ON };
static const setting_t model_rows[] = {
    [MODEL_ID] = {.name = "id", .type = T_STR, .flags = F_REQUIRED, .max = CFG_MAX_MODEL,
                  .check = check_model_name, .offset = MDL(id)},
    [MODEL_ROUTES] = {.name = "routes", .type = T_CUSTOM, .flags = F_REQUIRED},
    [MODEL_STRATEGY] = {.name = "strategy", .type = T_CUSTOM},
    [MODEL_RETRY_ON] = {.name = "retry_on", .type = T_CUSTOM},
    {.name = "retries", .type = T_U32, .min = 0, .max = 10, .def_num = 0, .offset = MDL(retries)},
    {.name = "timeout_ms", .type = T_U32, .min = 100, .max = 86400000, .def_num = 600000,
     .offset = MDL(timeout_ms)},
    {.name = "max_wait_ms", .type = T_U32, .min = 0, .max = 600000, .def_num = 2000,
     .offset = MDL(max_wait_ms)},
    {.name = "failure_threshold", .type = T_U32, .min = 1, .max = 1000, .def_num = 5,
     .offset = MDL(failure_threshold)},
    {.name = "cooldown_ms", .type = T_U32, .min = 10, .max = 3600000, .def_num = 5000,
     .offset = MDL(cooldown_ms)},
    {.name = "headroom", .type = T_BOOL, .def_num = 1, .offset = MDL(headroom)},
};

#define RTE(f) offsetof(yr_route_conf_t, f)
enum { ROUTE_PROVIDER, ROUTE_MODEL, ROUTE_PRICE };
static const setting_t route_rows[] = {
    [ROUTE_PROVIDER] = {.name = "provider", .type = T_CUSTOM, .flags = F_REQUIRED},
    [ROUTE_MODEL] = {.name = "model", .type = T_STR, .max = CFG_MAX_MODEL,
                     .check = check_model_name, .offset = RTE(model)},
    [ROUTE_PRICE] = {.name = "price", .type = T_CUSTOM},
    {.name = "api_key", .type = T_STR, .flags = F_NULLABLE | F_SECRET, .max = 4096,
     .check = check_token, .offset = RTE(api_key)},
    {.name = "weight", .type = T_U32, .min = 0, .max = 1000000, .def_num = 1,
     .offset = RTE(weight)},
    {.name = "max_concurrency", .type = T_U32, .min = 0, .max = 1000000, .def_num = 0,
     .offset = RTE(max_concurrency)},
    {.name = "connect_timeout_ms", .type = T_U32, .min = 1, .max = 600000,
     .offset = RTE(connect_timeout_ms)},
    {.name = "first_byte_timeout_ms", .type = T_U32, .min = 1, .max = 3600000,
     .offset = RTE(first_byte_timeout_ms)},
    {.name = "idle_timeout_ms", .type = T_U32, .min = 1, .max = 3600000,
     .offset = RTE(idle_timeout_ms)},
    {.name = "timeout_ms", .type = T_U32, .min = 1, .max = 86400000, .offset = RTE(timeout_ms)},
};
/* clang-format on */

#define NROWS(rows) (sizeof(rows) / sizeof((rows)[0]))

/* ------------------------------------------------------------------------ */
/* Validators: pure functions over one value                                  */

static uint64_t default_workers(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > 256 ? 256 : (uint64_t)n;
}

/* Keys travel in HTTP headers: printable ASCII without spaces. */
static int check_token(yr_str_t *v, const char **err)
{
    for (size_t i = 0; i < v->len; i++) {
        unsigned char c = (unsigned char)v->ptr[i];
        if (c <= 0x20 || c >= 0x7f) {
            *err = "must be printable ASCII without spaces or control characters";
            return -EINVAL;
        }
    }
    return 0;
}

/* One path segment of a URL (a Vertex project or location): letters,
 * digits, '-', '_' and '.', so nothing needs escaping. */
static int check_segment(yr_str_t *v, const char **err)
{
    for (size_t i = 0; i < v->len; i++) {
        char c = v->ptr[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.')) {
            *err = "may only contain letters, digits, '-', '_' and '.'";
            return -EINVAL;
        }
    }
    return 0;
}

static bool has_ctl_or_space(yr_str_t v)
{
    for (size_t i = 0; i < v.len; i++) {
        unsigned char c = (unsigned char)v.ptr[i];
        if (c <= 0x20 || c == 0x7f)
            return true;
    }
    return false;
}

/* http(s)://host[:port][/path]; trailing slashes are dropped because the
 * providers append their own paths ("/chat/completions"). */
static int check_http_url(yr_str_t *v, const char **err)
{
    yr_str_t rest;
    if (v->len >= 7 && yr_str_ieq((yr_str_t){v->ptr, 7}, YR_STR("http://"))) {
        rest = (yr_str_t){v->ptr + 7, v->len - 7};
    } else if (v->len >= 8 && yr_str_ieq((yr_str_t){v->ptr, 8}, YR_STR("https://"))) {
        rest = (yr_str_t){v->ptr + 8, v->len - 8};
    } else {
        *err = "must start with http:// or https://";
        return -EINVAL;
    }
    if (has_ctl_or_space(*v)) {
        *err = "must not contain spaces or control characters";
        return -EINVAL;
    }
    if (memchr(v->ptr, '?', v->len) != NULL || memchr(v->ptr, '#', v->len) != NULL) {
        *err = "must not contain a query string or fragment";
        return -EINVAL;
    }
    if (rest.len == 0 || rest.ptr[0] == '/') {
        *err = "has no host";
        return -EINVAL;
    }
    while (v->len > 0 && v->ptr[v->len - 1] == '/')
        v->len--;
    return 0;
}

static int check_storage_url(yr_str_t *v, const char **err)
{
    if (has_ctl_or_space(*v)) {
        *err = "must not contain spaces or control characters";
        return -EINVAL;
    }
    if (yr_str_eq(*v, YR_STR("sqlite::memory:")) || yr_str_has_prefix(*v, YR_STR("postgres://")) ||
        yr_str_has_prefix(*v, YR_STR("postgresql://")))
        return 0;
    if (yr_str_has_prefix(*v, YR_STR("sqlite://"))) {
        if (v->len > sizeof("sqlite://") - 1)
            return 0;
        *err = "sqlite:// needs a file path, e.g. sqlite://yourouter.db";
        return -EINVAL;
    }
    *err = "unsupported scheme (expected sqlite://PATH, sqlite::memory:, postgres://... or "
           "postgresql://...)";
    return -EINVAL;
}

static int check_redis_url(yr_str_t *v, const char **err)
{
    if (has_ctl_or_space(*v)) {
        *err = "must not contain spaces or control characters";
        return -EINVAL;
    }
    yr_str_t rest = YR_STR_NULL;
    if (yr_str_has_prefix(*v, YR_STR("redis://")))
        rest = (yr_str_t){v->ptr + 8, v->len - 8};
    else if (yr_str_has_prefix(*v, YR_STR("rediss://")))
        rest = (yr_str_t){v->ptr + 9, v->len - 9};
    else {
        *err = "must start with redis:// or rediss://";
        return -EINVAL;
    }
    if (rest.len == 0) {
        *err = "has no host";
        return -EINVAL;
    }
    return 0;
}

/* Model names go into JSON and logs: anything but control characters. */
static int check_model_name(yr_str_t *v, const char **err)
{
    for (size_t i = 0; i < v->len; i++) {
        unsigned char c = (unsigned char)v->ptr[i];
        if (c < 0x20 || c == 0x7f) {
            *err = "must not contain control characters";
            return -EINVAL;
        }
    }
    return 0;
}

static bool all_digits(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] < '0' || p[i] > '9')
            return false;
    return true;
}

/* Azure's API shapes: "v1", or a dated version "YYYY-MM-DD[-preview]". */
static int check_api_version(yr_str_t *v, const char **err)
{
    if (yr_str_eq(*v, YR_STR("v1")))
        return 0;
    const char *s = v->ptr;
    bool dated = (v->len == 10 || (v->len == 18 && memcmp(s + 10, "-preview", 8) == 0)) &&
                 all_digits(s, 4) && s[4] == '-' && all_digits(s + 5, 2) && s[7] == '-' &&
                 all_digits(s + 8, 2);
    int month = dated ? (s[5] - '0') * 10 + (s[6] - '0') : 0;
    int day = dated ? (s[8] - '0') * 10 + (s[9] - '0') : 0;
    if (!dated || month < 1 || month > 12 || day < 1 || day > 31) {
        *err = "expected v1 or a dated version such as 2024-10-21 or 2025-04-01-preview";
        return -EINVAL;
    }
    return 0;
}

static bool is_vendor_name(yr_str_t s)
{
    if (s.len == 0 || s.len > CFG_MAX_NAME)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* "IPV4:PORT", "localhost:PORT" or "[IPV6]:PORT". The host is stored without
 * brackets, and "localhost" as 127.0.0.1, so the listener never resolves
 * names. On failure *err is a static message. */
static int parse_listen(yr_pool_t *pool, yr_str_t v, const char **host, uint16_t *port,
                        const char **err)
{
    yr_str_t h, p;
    int family = AF_INET;
    if (v.len == 0) {
        *err = "expected HOST:PORT, e.g. 127.0.0.1:8080";
        return -EINVAL;
    }
    if (v.ptr[0] == '[') {
        const char *close = memchr(v.ptr, ']', v.len);
        if (close == NULL) {
            *err = "missing ']' after the IPv6 address";
            return -EINVAL;
        }
        h = (yr_str_t){v.ptr + 1, (size_t)(close - v.ptr) - 1};
        p = (yr_str_t){close + 1, v.len - (size_t)(close - v.ptr) - 1};
        if (p.len == 0 || p.ptr[0] != ':') {
            *err = "expected [IPV6]:PORT, e.g. [::1]:8080";
            return -EINVAL;
        }
        p.ptr++;
        p.len--;
        family = AF_INET6;
    } else {
        const char *colon = memchr(v.ptr, ':', v.len);
        if (colon == NULL) {
            *err = "expected HOST:PORT, e.g. 127.0.0.1:8080";
            return -EINVAL;
        }
        h = (yr_str_t){v.ptr, (size_t)(colon - v.ptr)};
        p = (yr_str_t){colon + 1, v.len - h.len - 1};
        if (memchr(p.ptr, ':', p.len) != NULL) {
            *err = "an IPv6 address must be in brackets, e.g. [::1]:8080";
            return -EINVAL;
        }
    }

    char buf[INET6_ADDRSTRLEN];
    unsigned char addr[sizeof(struct in6_addr)];
    if (family == AF_INET && yr_str_eq(h, YR_STR("localhost")))
        h = YR_STR("127.0.0.1");
    if (h.len == 0 || h.len >= sizeof(buf)) {
        *err = family == AF_INET ? "expected an IPv4 address or localhost before ':'"
                                 : "invalid IPv6 address";
        return -EINVAL;
    }
    memcpy(buf, h.ptr, h.len);
    buf[h.len] = '\0';
    if (inet_pton(family, buf, addr) != 1) {
        *err = family == AF_INET ? "expected an IPv4 address or localhost before ':'"
                                 : "invalid IPv6 address";
        return -EINVAL;
    }

    uint64_t n;
    bool digits = p.len > 0;
    for (size_t i = 0; i < p.len; i++)
        digits = digits && p.ptr[i] >= '0' && p.ptr[i] <= '9';
    if (!digits) {
        *err = "the port must be a number (0..65535)";
        return -EINVAL;
    }
    if (yr_str_to_u64(p, UINT64_MAX, &n) < 0 || n > 65535) {
        *err = "port out of range (0..65535)";
        return -EINVAL;
    }
    *host = yr_pstrndup(pool, buf, h.len);
    if (*host == NULL) {
        *err = "out of memory";
        return -ENOMEM;
    }
    *port = (uint16_t)n;
    return 0;
}

/* Decimal digits with an optional binary unit: 512k, 32MiB, 1g, 1 GiB. */
static int parse_bytes(yr_str_t s, uint64_t *out)
{
    static const struct {
        const char *unit;
        uint64_t mult;
    } units[] = {
        {"", 1},           {"k", 1u << 10}, {"kib", 1u << 10}, {"m", 1u << 20},
        {"mib", 1u << 20}, {"g", 1u << 30}, {"gib", 1u << 30},
    };
    size_t n = 0;
    while (n < s.len && s.ptr[n] >= '0' && s.ptr[n] <= '9')
        n++;
    uint64_t v;
    if (n == 0 || yr_str_to_u64((yr_str_t){s.ptr, n}, UINT64_MAX, &v) < 0)
        return n == 0 ? -EINVAL : -ERANGE;
    yr_str_t unit = yr_str_trim((yr_str_t){s.ptr + n, s.len - n});
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (yr_str_ieq(unit, yr_str(units[i].unit))) {
            if (v > UINT64_MAX / units[i].mult)
                return -ERANGE;
            *out = v * units[i].mult;
            return 0;
        }
    }
    return -EINVAL;
}

/* ------------------------------------------------------------------------ */
/* Walking the tree: context, key paths, messages                            */

typedef struct {
    yaml_document_t *doc;
    yr_config_t *cfg;
    const char *name; /* file name for messages */
    char *err;
    size_t errlen;
    char path[CFG_MAX_PATH]; /* "providers.openai.kind", "models[1].routes[0]" */
    size_t pathlen;
    char shown[CFG_MAX_SHOWN * 2 + 8];
} parse_t;

typedef struct {
    char *s; /* NUL-terminated, in the config pool */
    size_t len;
    size_t line;
    bool hidden; /* secret, or came out of ${VAR}: never quote it */
} scalar_t;

static size_t line_of(const yaml_node_t *n)
{
    return n->start_mark.line + 1;
}

static yaml_node_t *node_at(parse_t *p, int id)
{
    return yaml_document_get_node(p->doc, id);
}

__attribute__((format(printf, 3, 4))) static int fail(parse_t *p, size_t line, const char *fmt, ...)
{
    if (p->err == NULL || p->errlen == 0)
        return -EINVAL;
    int n = snprintf(p->err, p->errlen, "%s:%zu: %s: ", p->name, line,
                     p->pathlen > 0 ? p->path : "(top level)");
    if (n >= 0 && (size_t)n < p->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

static int fail_oom(parse_t *p)
{
    if (p->err != NULL && p->errlen > 0)
        snprintf(p->err, p->errlen, "%s: out of memory", p->name);
    return -ENOMEM;
}

/* Appends s to dst[*len..cap) with anything unprintable as '?', cut at max
 * characters with "...". Keeps dst NUL-terminated. */
static void append_printable(char *dst, size_t cap, size_t *len, const char *s, size_t n,
                             size_t max)
{
    bool cut = n > max;
    if (cut)
        n = max;
    for (size_t i = 0; i < n && *len + 1 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        dst[(*len)++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    for (int i = 0; cut && i < 3 && *len + 1 < cap; i++)
        dst[(*len)++] = '.';
    dst[*len] = '\0';
}

static size_t path_push(parse_t *p, const char *key, size_t n)
{
    size_t saved = p->pathlen;
    if (p->pathlen > 0 && p->pathlen + 1 < sizeof(p->path))
        p->path[p->pathlen++] = '.';
    append_printable(p->path, sizeof(p->path), &p->pathlen, key, n, CFG_MAX_KEY_SHOWN);
    return saved;
}

static size_t path_push_index(parse_t *p, size_t i)
{
    size_t saved = p->pathlen;
    size_t room = sizeof(p->path) - p->pathlen;
    int n = snprintf(p->path + p->pathlen, room, "[%zu]", i);
    if (n > 0)
        p->pathlen += (size_t)n < room ? (size_t)n : room - 1;
    return saved;
}

static void path_pop(parse_t *p, size_t saved)
{
    p->pathlen = saved;
    p->path[saved] = '\0';
}

/* " 'value'" when the value may be shown, "" when it must not be. */
static const char *shown(parse_t *p, const scalar_t *v)
{
    if (v->hidden)
        return "";
    size_t len = 0;
    append_printable(p->shown, sizeof(p->shown), &len, " '", 2, 2);
    append_printable(p->shown, sizeof(p->shown), &len, v->s, v->len, CFG_MAX_SHOWN);
    append_printable(p->shown, sizeof(p->shown), &len, "'", 1, 1);
    return p->shown;
}

/* A plain "", "~" or "null": the same as leaving the key out. */
static bool is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    yr_str_t s = {(const char *)n->data.scalar.value, n->data.scalar.length};
    return s.len == 0 || yr_str_eq(s, YR_STR("~")) || yr_str_eq(s, YR_STR("null")) ||
           yr_str_eq(s, YR_STR("Null")) || yr_str_eq(s, YR_STR("NULL"));
}

static const char *node_kind(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_MAPPING_NODE: return "a mapping";
    case YAML_SEQUENCE_NODE: return "a sequence";
    case YAML_SCALAR_NODE: return is_null(n) ? "an empty value" : "a scalar";
    default: return "nothing";
    }
}

static int fail_type(parse_t *p, const yaml_node_t *n, const char *expected)
{
    return fail(p, line_of(n), "expected %s, got %s", expected, node_kind(n));
}

/* ------------------------------------------------------------------------ */
/* ${VAR} expansion                                                           */

static bool is_env_name_char(char c, bool first)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
           (!first && c >= '0' && c <= '9');
}

/* Expands one "${...}" whose body (between the braces) is b. */
static int expand_one(parse_t *p, size_t line, yr_str_t b, yr_buf_t *out)
{
    size_t n = 0;
    while (n < b.len && is_env_name_char(b.ptr[n], n == 0))
        n++;
    bool has_default = n < b.len && b.len - n >= 2 && b.ptr[n] == ':' && b.ptr[n + 1] == '-';
    if (n == 0 || (n < b.len && !has_default))
        return fail(p, line,
                    "malformed '${': expected ${NAME} or ${NAME:-default}, where NAME "
                    "is letters, digits and '_'");
    if (n > CFG_MAX_ENV_NAME)
        return fail(p, line, "environment variable name longer than %d characters",
                    CFG_MAX_ENV_NAME);
    yr_str_t def = has_default ? (yr_str_t){b.ptr + n + 2, b.len - n - 2} : YR_STR_NULL;
    if (has_default && memmem(def.ptr, def.len, "${", 2) != NULL)
        return fail(p, line, "a ${NAME:-default} default cannot contain '${'");

    char name[CFG_MAX_ENV_NAME + 1];
    memcpy(name, b.ptr, n);
    name[n] = '\0';
    const char *val = getenv(name);
    int rc;
    if (has_default && (val == NULL || val[0] == '\0'))
        rc = yr_buf_append_str(out, def);
    else if (val == NULL)
        return fail(p, line,
                    "environment variable '%s' is not set (write ${%s:-default} to "
                    "give a default)",
                    name, name);
    else
        rc = yr_buf_append_str(out, yr_str(val));
    if (rc == -E2BIG)
        return fail(p, line, "value longer than %d bytes after ${} expansion", CFG_MAX_VALUE);
    return rc < 0 ? fail_oom(p) : 0;
}

/* ${NAME} and ${NAME:-default} (used when NAME is unset or empty) come from
 * the environment; "$$" is a literal '$'; any other '$' stands for itself. */
static int expand(parse_t *p, const yaml_node_t *node, scalar_t *out)
{
    const char *s = (const char *)node->data.scalar.value;
    size_t len = node->data.scalar.length;
    if (memchr(s, '$', len) == NULL) {
        out->s = yr_pstrndup(p->cfg->pool, s, len);
        out->len = len;
        return out->s != NULL ? 0 : fail_oom(p);
    }

    yr_buf_t b;
    yr_buf_init(&b, CFG_MAX_VALUE);
    int rc = 0;
    size_t i = 0;
    while (i < len && rc == 0) {
        const char *dollar = memchr(s + i, '$', len - i);
        size_t run = dollar != NULL ? (size_t)(dollar - (s + i)) : len - i;
        rc = yr_buf_append(&b, s + i, run);
        i += run;
        if (rc < 0 || i == len)
            break;
        if (i + 1 < len && s[i + 1] == '$') {
            rc = yr_buf_append(&b, "$", 1);
            i += 2;
        } else if (i + 1 < len && s[i + 1] == '{') {
            const char *close = memchr(s + i + 2, '}', len - i - 2);
            if (close == NULL) {
                rc = fail(p, out->line, "unterminated '${' (expected '}')");
                break;
            }
            yr_str_t body = {s + i + 2, (size_t)(close - (s + i + 2))};
            rc = expand_one(p, out->line, body, &b);
            i = (size_t)(close - s) + 1;
            out->hidden = true;
        } else {
            rc = yr_buf_append(&b, "$", 1);
            i++;
        }
    }
    if (rc == -E2BIG)
        rc = fail(p, out->line, "value longer than %d bytes after ${} expansion", CFG_MAX_VALUE);
    else if (rc == -ENOMEM)
        rc = fail_oom(p);
    if (rc == 0) {
        out->s = yr_pstrndup(p->cfg->pool, b.data != NULL ? b.data : "", b.len);
        out->len = b.len;
        rc = out->s != NULL ? 0 : fail_oom(p);
    }
    yr_buf_free(&b);
    return rc;
}

/* The scalar at node, expanded and copied into the config pool. */
static int get_scalar(parse_t *p, const yaml_node_t *node, bool secret, scalar_t *out)
{
    *out = (scalar_t){.line = line_of(node), .hidden = secret};
    if (node->type != YAML_SCALAR_NODE)
        return fail_type(p, node, "a scalar");
    if (memchr(node->data.scalar.value, '\0', node->data.scalar.length) != NULL)
        return fail(p, out->line, "contains a NUL character");
    return expand(p, node, out);
}

/* ------------------------------------------------------------------------ */
/* Applying table rows                                                        */

static int set_str(parse_t *p, const setting_t *row, scalar_t *v, char *field)
{
    if (v->len == 0) {
        if (!(row->flags & F_NULLABLE))
            return fail(p, v->line, "must not be empty");
        *(const char **)field = NULL;
        return 0;
    }
    uint64_t max = row->max ? row->max : CFG_MAX_VALUE;
    if (v->len > max)
        return fail(p, v->line, "too long (at most %llu bytes)", (unsigned long long)max);
    if (row->check != NULL) {
        yr_str_t s = {v->s, v->len};
        const char *why = "invalid value";
        if (row->check(&s, &why) < 0)
            return fail(p, v->line, "%s", why);
        v->len = s.len;
        v->s[v->len] = '\0';
    }
    *(const char **)field = v->s;
    return 0;
}

static int set_uint(parse_t *p, const setting_t *row, const scalar_t *v, char *field)
{
    yr_str_t s = {v->s, v->len};
    uint64_t n = 0;
    int rc;
    if (row->type == T_BYTES) {
        rc = parse_bytes(s, &n);
    } else {
        rc = -EINVAL;
        bool digits = s.len > 0;
        for (size_t i = 0; i < s.len; i++)
            digits = digits && s.ptr[i] >= '0' && s.ptr[i] <= '9';
        if (digits)
            rc = yr_str_to_u64(s, UINT64_MAX, &n) < 0 ? -ERANGE : 0;
    }
    if (rc == -EINVAL)
        return fail(p, v->line, "value%s is not %s", shown(p, v),
                    row->type == T_BYTES ? "a size (an integer, optionally followed by k, m, g, "
                                           "KiB, MiB or GiB)"
                                         : "a non-negative integer");
    if (rc < 0 || n < row->min || n > row->max)
        return fail(p, v->line, "value%s is out of range (%llu..%llu)", shown(p, v),
                    (unsigned long long)row->min, (unsigned long long)row->max);
    if (row->type == T_BYTES)
        *(uint64_t *)field = n;
    else
        *(uint32_t *)field = (uint32_t)n;
    return 0;
}

static int set_enum(parse_t *p, const setting_t *row, const scalar_t *v, char *field)
{
    char list[256];
    size_t len = 0;
    list[0] = '\0';
    for (size_t i = 0; row->names[i] != NULL; i++) {
        if (yr_str_eq((yr_str_t){v->s, v->len}, yr_str(row->names[i]))) {
            if (row->type == T_KIND)
                *(yr_provider_kind_t *)field = (yr_provider_kind_t)i;
            else
                *(const char **)field = v->s;
            return 0;
        }
        if (i > 0)
            append_printable(list, sizeof(list), &len, ", ", 2, 2);
        append_printable(list, sizeof(list), &len, row->names[i], strlen(row->names[i]), 32);
    }
    return fail(p, v->line, "unknown %s%s (expected one of %s)", row->name, shown(p, v), list);
}

static int set_bool(parse_t *p, const setting_t *row, const scalar_t *v, char *field)
{
    static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
    for (size_t i = 0; i < 3; i++) {
        if (strcmp(v->s, yes[i]) == 0 || strcmp(v->s, no[i]) == 0) {
            *(bool *)field = strcmp(v->s, yes[i]) == 0;
            return 0;
        }
    }
    return fail(p, v->line, "%s%s is not a boolean (true or false)", row->name, shown(p, v));
}

static int set_listen(parse_t *p, const setting_t *row, const scalar_t *v, char *base)
{
    const char *why = "invalid";
    const char **host = (const char **)(base + row->offset);
    uint16_t *port = (uint16_t *)(base + row->aux_offset);
    int rc = parse_listen(p->cfg->pool, (yr_str_t){v->s, v->len}, host, port, &why);
    if (rc == -ENOMEM)
        return fail_oom(p);
    if (rc < 0)
        return fail(p, v->line, "invalid listen address%s: %s", shown(p, v), why);
    return 0;
}

static int apply_row(parse_t *p, const setting_t *row, const yaml_node_t *node, void *base)
{
    scalar_t v;
    int rc = get_scalar(p, node, (row->flags & F_SECRET) != 0, &v);
    if (rc < 0)
        return rc;
    char *field = (char *)base + row->offset;
    switch (row->type) {
    case T_STR: return set_str(p, row, &v, field);
    case T_U32:
    case T_BYTES: return set_uint(p, row, &v, field);
    case T_ENUM:
    case T_KIND: return set_enum(p, row, &v, field);
    case T_LISTEN: return set_listen(p, row, &v, base);
    case T_BOOL: return set_bool(p, row, &v, field);
    case T_CUSTOM: break;
    }
    return 0;
}

static int apply_defaults(yr_pool_t *pool, const setting_t *rows, size_t n, void *base)
{
    for (size_t i = 0; i < n; i++) {
        const setting_t *row = &rows[i];
        char *field = (char *)base + row->offset;
        uint64_t num = row->def_fn != NULL ? row->def_fn() : row->def_num;
        const char *str = NULL;
        if (row->def_str != NULL &&
            (str = yr_pstrndup(pool, row->def_str, strlen(row->def_str))) == NULL)
            return -ENOMEM;
        switch (row->type) {
        case T_STR:
        case T_ENUM: *(const char **)field = str; break;
        case T_U32: *(uint32_t *)field = (uint32_t)num; break;
        case T_BYTES: *(uint64_t *)field = num; break;
        case T_KIND: *(yr_provider_kind_t *)field = (yr_provider_kind_t)num; break;
        case T_BOOL: *(bool *)field = num != 0; break;
        case T_LISTEN: {
            const char *why;
            if (str == NULL)
                break;
            int rc = parse_listen(pool, yr_str(str), (const char **)field,
                                  (uint16_t *)((char *)base + row->aux_offset), &why);
            if (rc < 0)
                return rc;
            break;
        }
        case T_CUSTOM: break;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Mappings                                                                   */

static void join_names(char *dst, size_t cap, const char *const *names, size_t n)
{
    size_t len = 0;
    dst[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            append_printable(dst, cap, &len, ", ", 2, 2);
        append_printable(dst, cap, &len, names[i], strlen(names[i]), 64);
    }
}

/* Checks a mapping's keys against names[]: keys[i]/vals[i] are the nodes of
 * names[i], or NULL when absent. Rejects unknown and duplicate keys. */
static int map_collect(parse_t *p, yaml_node_t *map, const char *const *names, size_t n,
                       yaml_node_t **keys, yaml_node_t **vals)
{
    for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top;
         pr++) {
        yaml_node_t *k = node_at(p, pr->key);
        if (k->type != YAML_SCALAR_NODE)
            return fail_type(p, k, "a scalar as the key");
        yr_str_t ks = {(const char *)k->data.scalar.value, k->data.scalar.length};
        size_t i = 0;
        while (i < n && !yr_str_eq(ks, yr_str(names[i])))
            i++;
        size_t saved = path_push(p, ks.ptr, ks.len);
        int rc = 0;
        if (i == n) {
            char list[512];
            join_names(list, sizeof(list), names, n);
            rc = fail(p, line_of(k), "unknown key (expected one of %s)", list);
        } else if (keys[i] != NULL) {
            rc = fail(p, line_of(k), "duplicate key (first at line %zu)", line_of(keys[i]));
        }
        path_pop(p, saved);
        if (rc < 0)
            return rc;
        keys[i] = k;
        vals[i] = node_at(p, pr->value);
    }
    return 0;
}

/* Applies rows to the mapping map (NULL or empty = no keys given). Values of
 * T_CUSTOM rows are handed back in custom[]. missing_line is where a missing
 * required key is reported when there is no mapping to point at. */
static int parse_table(parse_t *p, yaml_node_t *map, size_t missing_line, const setting_t *rows,
                       size_t n, void *base, yaml_node_t **custom)
{
    yaml_node_t *keys[CFG_MAX_ROWS] = {0}, *vals[CFG_MAX_ROWS] = {0};
    const char *names[CFG_MAX_ROWS];
    if (n > CFG_MAX_ROWS)
        return -EINVAL;
    if (map != NULL && !is_null(map)) {
        if (map->type != YAML_MAPPING_NODE)
            return fail_type(p, map, "a mapping");
        missing_line = line_of(map);
        for (size_t i = 0; i < n; i++)
            names[i] = rows[i].name;
        int rc = map_collect(p, map, names, n, keys, vals);
        if (rc < 0)
            return rc;
    }
    for (size_t i = 0; i < n; i++) {
        const setting_t *row = &rows[i];
        bool present = vals[i] != NULL && !is_null(vals[i]);
        size_t saved = path_push(p, row->name, strlen(row->name));
        int rc = 0;
        if (!present && (row->flags & F_REQUIRED))
            rc = vals[i] == NULL ? fail(p, missing_line, "required key is missing")
                                 : fail(p, line_of(keys[i]), "required value is empty");
        else if (present && row->type == T_CUSTOM)
            custom[i] = vals[i];
        else if (present)
            rc = apply_row(p, row, vals[i], base);
        path_pop(p, saved);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void *palloc_array(yr_pool_t *pool, size_t n, size_t size)
{
    if (n == 0 || n > SIZE_MAX / size)
        return NULL;
    return yr_pcalloc(pool, n * size);
}

/* ------------------------------------------------------------------------ */
/* Sections                                                                   */

static int parse_server(parse_t *p, yaml_node_t *v, size_t key_line)
{
    return parse_table(p, v, key_line, server_rows, NROWS(server_rows), p->cfg, NULL);
}

static int parse_storage(parse_t *p, yaml_node_t *v, size_t key_line)
{
    return parse_table(p, v, key_line, storage_rows, NROWS(storage_rows), p->cfg, NULL);
}

/* images.allow: a sequence of SSRF-guard exceptions, each checked by the
 * fetcher's own grammar so a typo is a config error, not a silent no-op. */
static int parse_image_allow(parse_t *p, yaml_node_t *v)
{
    yr_config_t *cfg = p->cfg;
    size_t saved = path_push(p, "allow", 5);
    int rc = 0;
    if (v->type != YAML_SEQUENCE_NODE) {
        rc = fail_type(p, v, "a sequence of CIDR[:port] entries");
        goto out;
    }
    yaml_node_item_t *start = v->data.sequence.items.start, *top = v->data.sequence.items.top;
    if (start == top)
        goto out;
    cfg->images.allow = palloc_array(cfg->pool, (size_t)(top - start), sizeof(char *));
    if (cfg->images.allow == NULL) {
        rc = fail_oom(p);
        goto out;
    }
    for (yaml_node_item_t *it = start; rc == 0 && it < top; it++) {
        size_t inner = path_push_index(p, cfg->images.nallow);
        scalar_t s;
        const char *why = NULL;
        rc = get_scalar(p, node_at(p, *it), false, &s);
        if (rc == 0 && !yr_fetch_allow_valid(s.s, &why))
            rc = fail(p, s.line, "invalid entry%s: %s", shown(p, &s), why ? why : "invalid");
        if (rc == 0)
            cfg->images.allow[cfg->images.nallow++] = s.s;
        path_pop(p, inner);
    }
out:
    path_pop(p, saved);
    return rc;
}

static int parse_images(parse_t *p, yaml_node_t *v, size_t key_line)
{
    yaml_node_t *custom[NROWS(images_rows)] = {0};
    int rc = parse_table(p, v, key_line, images_rows, NROWS(images_rows), p->cfg, custom);
    if (rc == 0 && custom[IMAGES_ALLOW] != NULL)
        rc = parse_image_allow(p, custom[IMAGES_ALLOW]);
    return rc;
}

static int parse_observability(parse_t *p, yaml_node_t *v, size_t key_line)
{
    return parse_table(p, v, key_line, observability_rows, NROWS(observability_rows), p->cfg,
                       NULL);
}

static size_t value_line(parse_t *p, yaml_node_t *v, const char *key);
static int parse_price(parse_t *p, yaml_node_t *v, int64_t *const dst[4], bool *has_price);

static int parse_responses(parse_t *p, yaml_node_t *v, size_t key_line)
{
    return parse_table(p, v, key_line, responses_rows, NROWS(responses_rows), p->cfg, NULL);
}

bool yr_provider_responses_native(const yr_provider_conf_t *p)
{
    if (p->responses != NULL && strcmp(p->responses, "native") == 0)
        return p->kind == YR_KIND_OPENAI;
    if (p->responses != NULL && strcmp(p->responses, "translate") == 0)
        return false;
    return p->kind == YR_KIND_OPENAI && p->base_url != NULL &&
           strncmp(p->base_url, "https://api.openai.com/", 23) == 0;
}

/* Azure's base_url is the resource endpoint: the gateway builds the rest of
 * the path from api_version and the route's model (the deployment), so a
 * pasted ".../openai/deployments/x" or ".../openai/v1" would be doubled. */
static int check_azure_endpoint(parse_t *p, yaml_node_t *v, const yr_provider_conf_t *pc)
{
    const char *host = strstr(pc->base_url, "://");
    const char *path = host != NULL ? strchr(host + 3, '/') : NULL;
    if (path == NULL || (strcmp(path, "/openai") != 0 && strncmp(path, "/openai/", 8) != 0))
        return 0;
    size_t saved = path_push(p, "base_url", 8);
    int rc = fail(p, value_line(p, v, "base_url"),
                  "kind azure wants the resource endpoint (https://NAME.openai.azure.com) "
                  "without /openai/...: the path comes from api_version and the route's model");
    path_pop(p, saved);
    return rc;
}

/* kind bedrock: region, endpoint and credentials (config/aws.h). */
static int resolve_aws(parse_t *p, yaml_node_t *v, size_t key_line, yr_provider_conf_t *pc)
{
    char why[400];
    int rc = yr_aws_resolve(p->cfg->pool, pc, why, sizeof(why));
    if (rc == -ENOMEM)
        return fail_oom(p);
    if (rc < 0)
        return fail(p, v->type == YAML_MAPPING_NODE ? line_of(v) : key_line, "%s", why);
    return 0;
}

/* Reads a service-account key file (at most YR_GCP_MAX_SA_JSON bytes) into
 * out. 0, or -errno / -E2BIG. */
static int read_small_file(const char *path, yr_buf_t *out)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -errno;
    char chunk[4096];
    int rc = 0;
    size_t n;
    while (rc == 0 && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        rc = yr_buf_append(out, chunk, n);
    if (rc == 0 && ferror(f))
        rc = -EIO;
    fclose(f);
    return rc;
}

/* kind vertex: one source of credentials (a static api_key, or a service
 * account: credentials_file, credentials_json or the file named by
 * GOOGLE_APPLICATION_CREDENTIALS), parsed and checked now so that a bad key
 * is a config error, not a failure at the first request; the project
 * (default: the key's project_id); the base_url from the location. */
static int check_vertex(parse_t *p, yaml_node_t *v, size_t key_line, yr_provider_conf_t *pc)
{
    size_t line = v->type == YAML_MAPPING_NODE ? line_of(v) : key_line;
    const char *key = "credentials_file";
    const char *file = pc->credentials_file;
    bool from_env = false;
    if (pc->credentials_file != NULL && pc->credentials_json != NULL)
        return fail(p, value_line(p, v, "credentials_json"),
                    "credentials_file and credentials_json are exclusive");
    if (pc->api_key != NULL && (pc->credentials_file != NULL || pc->credentials_json != NULL))
        return fail(p, value_line(p, v, "api_key"),
                    "api_key (a static access token) and service-account credentials are "
                    "exclusive");
    if (pc->api_key == NULL && file == NULL && pc->credentials_json == NULL) {
        file = getenv("GOOGLE_APPLICATION_CREDENTIALS");
        from_env = true;
        if (file == NULL || file[0] == '\0')
            return fail(p, line,
                        "kind vertex needs credentials: credentials_file, credentials_json, "
                        "api_key (an access token) or GOOGLE_APPLICATION_CREDENTIALS");
    }
    int rc = 0;
    if (file != NULL || pc->credentials_json != NULL) {
        yr_buf_t b;
        yr_buf_init(&b, YR_GCP_MAX_SA_JSON);
        char why[256];
        if (file != NULL) {
            rc = read_small_file(file, &b);
            if (rc < 0) {
                size_t l = from_env ? line : value_line(p, v, key);
                rc = fail(p, l, "%s%s: %s", from_env ? "GOOGLE_APPLICATION_CREDENTIALS: " : "",
                          from_env ? "cannot read the file it names" : "cannot read the file",
                          rc == -E2BIG ? "larger than 64 KiB" : strerror(-rc));
                yr_buf_free(&b);
                return rc;
            }
        } else {
            key = "credentials_json";
            rc = yr_buf_append_str(&b, yr_str(pc->credentials_json));
        }
        yr_gcp_sa_t *sa = yr_pcalloc(p->cfg->pool, sizeof(*sa));
        if (rc == 0 && sa == NULL)
            rc = -ENOMEM;
        if (rc == 0)
            rc = yr_gcp_sa_parse(p->cfg->pool, b.data ? b.data : "", b.len, sa, why, sizeof(why));
        if (b.data != NULL)
            memset(b.data, 0, b.len); /* a private key */
        yr_buf_free(&b);
        if (rc == -ENOMEM)
            return fail_oom(p);
        if (rc < 0)
            return fail(p, from_env ? line : value_line(p, v, key), "%s%s",
                        from_env ? "GOOGLE_APPLICATION_CREDENTIALS: " : "", why);
        pc->gcp_sa = sa;
        if (pc->project == NULL && sa->project_id != NULL) {
            yr_str_t s = yr_str(sa->project_id);
            const char *bad;
            if (check_segment(&s, &bad) == 0)
                pc->project = sa->project_id;
        }
    }
    if (pc->project == NULL)
        return fail(p, line, "kind vertex needs a project (none given, none in the credentials)");
    if (pc->base_url == NULL) {
        bool global = strcmp(pc->location, "global") == 0;
        char url[128];
        snprintf(url, sizeof(url), "https://%s%saiplatform.googleapis.com",
                 global ? "" : pc->location, global ? "" : "-");
        if ((pc->base_url = yr_pstrndup(p->cfg->pool, url, strlen(url))) == NULL)
            return fail_oom(p);
    }
    return 0;
}

/* Whether mapping v has the key (given, even as an empty value). */
static bool map_has(parse_t *p, yaml_node_t *v, const char *key)
{
    if (v == NULL || v->type != YAML_MAPPING_NODE)
        return false;
    for (yaml_node_pair_t *pr = v->data.mapping.pairs.start; pr < v->data.mapping.pairs.top; pr++) {
        yaml_node_t *k = node_at(p, pr->key);
        if (k->type == YAML_SCALAR_NODE &&
            yr_str_eq(yr_str(key),
                      (yr_str_t){(const char *)k->data.scalar.value, k->data.scalar.length}))
            return true;
    }
    return false;
}

/* preset: NAME, one of the catalog's (kind openai only). */
static int parse_preset(parse_t *p, yaml_node_t *v, yr_provider_conf_t *pc)
{
    size_t saved = path_push(p, "preset", 6);
    scalar_t s;
    int rc = get_scalar(p, v, false, &s);
    if (rc == 0 && pc->kind != YR_KIND_OPENAI) {
        rc = fail(p, s.line, "only kind openai takes a preset (kind %s has its own catalog)",
                  kind_names[pc->kind]);
    } else if (rc == 0 && (pc->preset = yr_catalog_preset((yr_str_t){s.s, s.len})) == NULL) {
        char known[256];
        yr_catalog_preset_names(known, sizeof(known));
        rc = fail(p, s.line, "unknown preset%s (known: %s)", shown(p, &s), known);
    }
    path_pop(p, saved);
    return rc;
}

/* A CA file that cannot be read or holds no certificate would only show up
 * as a TLS failure on the first request: say so at load instead. */
static int check_ca_file(parse_t *p, yaml_node_t *tls, const char *path)
{
    size_t saved = path_push(p, "ca_file", 7);
    size_t line = value_line(p, tls, "ca_file");
    int rc = 0;
    /* O_NONBLOCK: a FIFO or a device named here must not hang the load */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    FILE *f = NULL;
    if (fd < 0) {
        rc = fail(p, line, "cannot read the CA file: %s", strerror(errno));
    } else if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        rc = fail(p, line, "the CA file is not a regular file");
    } else if ((f = fdopen(fd, "r")) == NULL) {
        close(fd);
        rc = fail(p, line, "cannot read the CA file: %s", strerror(errno));
    } else {
        /* PEM: a certificate block in the first MiB (bundles are ~200 KB);
         * the last 26 bytes of a read carry over so a marker split between
         * two reads is found. */
        static const char mark[] = "-----BEGIN CERTIFICATE-----";
        const size_t mlen = sizeof(mark) - 1;
        char buf[8192];
        size_t have = 0, total = 0, n;
        bool found = false;
        while (!found && total < (1u << 20) &&
               (n = fread(buf + have, 1, sizeof(buf) - have, f)) > 0) {
            total += n;
            have += n;
            found = memmem(buf, have, mark, mlen) != NULL;
            if (have >= mlen - 1) {
                memmove(buf, buf + have - (mlen - 1), mlen - 1);
                have = mlen - 1;
            }
        }
        fclose(f);
        if (!found)
            rc = fail(p, line, "the CA file has no PEM certificate (-----BEGIN CERTIFICATE-----)");
    }
    path_pop(p, saved);
    return rc;
}

/* A preset's defaults for what the provider leaves out: its base_url, and
 * its key from the preset's variable (GROQ_API_KEY ...) when that is set. */
static int preset_defaults(parse_t *p, yaml_node_t *v, yr_provider_conf_t *pc)
{
    const yr_catalog_preset_t *ps = pc->preset;
    if (pc->base_url == NULL &&
        (pc->base_url = yr_pstrndup(p->cfg->pool, ps->base_url, strlen(ps->base_url))) == NULL)
        return fail_oom(p);
    if (ps->key_env == NULL || map_has(p, v, "api_key"))
        return 0;
    const char *key = getenv(ps->key_env);
    if (key == NULL || key[0] == '\0')
        return 0; /* no key: the provider will say so (401) */
    yr_str_t k = yr_str(key);
    const char *why = "invalid value";
    if (k.len > 4096 || check_token(&k, &why) < 0) {
        size_t saved = path_push(p, "api_key", 7);
        int rc = fail(p, line_of(v), "the preset's %s %s", ps->key_env,
                      k.len > 4096 ? "is too long" : why);
        path_pop(p, saved);
        return rc;
    }
    pc->api_key = yr_pstrndup(p->cfg->pool, k.ptr, k.len);
    return pc->api_key != NULL ? 0 : fail_oom(p);
}

/* A sequence of names (capabilities, reasoning_effort values) as bits:
 * names[i] is bit i. */
static int parse_name_bits(parse_t *p, yaml_node_t *v, const char *key, const char *const *names,
                           size_t n, uint8_t *out)
{
    size_t saved = path_push(p, key, strlen(key));
    int rc = 0;
    *out = 0;
    if (v->type != YAML_SEQUENCE_NODE) {
        rc = fail_type(p, v, "a sequence");
        goto out;
    }
    size_t i = 0;
    for (yaml_node_item_t *it = v->data.sequence.items.start;
         rc == 0 && it < v->data.sequence.items.top; it++, i++) {
        size_t inner = path_push_index(p, i);
        scalar_t s;
        rc = get_scalar(p, node_at(p, *it), false, &s);
        size_t k = 0;
        while (rc == 0 && k < n && strcmp(s.s, names[k]) != 0)
            k++;
        if (rc == 0 && k == n) {
            char list[128];
            join_names(list, sizeof(list), names, n);
            rc = fail(p, s.line, "unknown value%s (expected one of %s)", shown(p, &s), list);
        }
        if (rc == 0)
            *out |= (uint8_t)(1u << k);
        path_pop(p, inner);
    }
out:
    path_pop(p, saved);
    return rc;
}

static int parse_override(parse_t *p, yaml_node_t *v, yr_model_override_t *o)
{
    const char *caps[4], *efforts[5]; /* bit i is names[i], as the catalog spells them */
    for (unsigned i = 0; i < 5; i++) {
        if (i < 4)
            caps[i] = yr_cap_name(1u << i);
        efforts[i] = yr_effort_name(1u << i);
    }
    yaml_node_t *custom[NROWS(override_rows)] = {0};
    int rc = parse_table(p, v, line_of(v), override_rows, NROWS(override_rows), o, custom);
    if (rc == 0 && custom[OVR_CAPS] != NULL) {
        rc = parse_name_bits(p, custom[OVR_CAPS], "capabilities", caps, 4, &o->caps);
        o->has_caps = true;
    }
    if (rc == 0 && custom[OVR_EFFORTS] != NULL) {
        rc = parse_name_bits(p, custom[OVR_EFFORTS], "reasoning_effort", efforts, 5, &o->efforts);
        o->has_efforts = true;
    }
    int64_t *const prices[4] = {&o->price_input, &o->price_output, &o->price_cache_read,
                                &o->price_cache_write};
    if (rc == 0 && custom[OVR_PRICE] != NULL)
        rc = parse_price(p, custom[OVR_PRICE], prices, &o->has_price);
    return rc;
}

/* providers.NAME.models: upstream model id -> what the config says of it. */
static int parse_overrides(parse_t *p, yaml_node_t *v, yr_provider_conf_t *pc)
{
    size_t saved = path_push(p, "models", 6);
    int rc = 0;
    if (v->type != YAML_MAPPING_NODE) {
        rc = fail_type(p, v, "a mapping of upstream model id to its limits, capabilities, price");
        goto out;
    }
    yaml_node_pair_t *start = v->data.mapping.pairs.start, *top = v->data.mapping.pairs.top;
    if (start == top)
        goto out;
    pc->models = palloc_array(p->cfg->pool, (size_t)(top - start), sizeof(*pc->models));
    if (pc->models == NULL) {
        rc = fail_oom(p);
        goto out;
    }
    for (yaml_node_pair_t *pr = start; rc == 0 && pr < top; pr++) {
        scalar_t id;
        rc = get_scalar(p, node_at(p, pr->key), false, &id);
        if (rc < 0)
            break;
        size_t inner = path_push(p, id.s, id.len);
        yr_str_t ids = {id.s, id.len};
        const char *why = NULL;
        if (id.len == 0 || id.len > CFG_MAX_MODEL || check_model_name(&ids, &why) < 0)
            rc = fail(p, id.line, "invalid model id (1 to %d characters, no control characters)",
                      CFG_MAX_MODEL);
        for (size_t j = 0; rc == 0 && j < pc->nmodels; j++)
            if (strcmp(pc->models[j].id, id.s) == 0)
                rc = fail(p, id.line, "duplicate model");
        yr_model_override_t *o = &pc->models[pc->nmodels];
        o->id = id.s;
        if (rc == 0)
            rc = parse_override(p, node_at(p, pr->value), o);
        if (rc == 0)
            pc->nmodels++;
        path_pop(p, inner);
    }
out:
    path_pop(p, saved);
    return rc;
}

static int parse_provider_tls(parse_t *p, yaml_node_t *v, yr_provider_conf_t *pc)
{
    size_t saved = path_push(p, "tls", 3);
    int rc = parse_table(p, v, line_of(v), provider_tls_rows, NROWS(provider_tls_rows), pc, NULL);
    if (rc == 0 && pc->tls_ca_file != NULL)
        rc = check_ca_file(p, v, pc->tls_ca_file);
    path_pop(p, saved);
    return rc;
}

static int parse_provider(parse_t *p, yaml_node_t *v, size_t key_line, yr_provider_conf_t *pc)
{
    yaml_node_t *custom[NROWS(provider_rows)] = {0};
    int rc = apply_defaults(p->cfg->pool, provider_rows, NROWS(provider_rows), pc);
    if (rc == 0)
        rc = apply_defaults(p->cfg->pool, provider_tls_rows, NROWS(provider_tls_rows), pc);
    if (rc < 0)
        return fail_oom(p);
    rc = parse_table(p, v, key_line, provider_rows, NROWS(provider_rows), pc, custom);
    if (rc == 0 && custom[PROVIDER_PRESET] != NULL)
        rc = parse_preset(p, custom[PROVIDER_PRESET], pc);
    if (rc == 0 && custom[PROVIDER_MODELS] != NULL)
        rc = parse_overrides(p, custom[PROVIDER_MODELS], pc);
    if (rc == 0 && pc->preset != NULL)
        rc = preset_defaults(p, v, pc);
    if (rc == 0 && custom[PROVIDER_TLS] != NULL)
        rc = parse_provider_tls(p, custom[PROVIDER_TLS], pc);
    if (rc == 0 && pc->kind == YR_KIND_AZURE && pc->base_url != NULL)
        rc = check_azure_endpoint(p, v, pc);
    if (rc == 0 && pc->kind == YR_KIND_BEDROCK)
        rc = resolve_aws(p, v, key_line, pc);
    if (rc == 0 && pc->kind == YR_KIND_VERTEX)
        rc = check_vertex(p, v, key_line, pc);
    if (rc < 0 || pc->base_url != NULL)
        return rc;
    const char *def = kind_base_urls[pc->kind];
    if (def == NULL) {
        size_t saved = path_push(p, "base_url", 8);
        rc = fail(p, v->type == YAML_MAPPING_NODE ? line_of(v) : key_line,
                  "required key is missing (kind %s has no default)", kind_names[pc->kind]);
        path_pop(p, saved);
        return rc;
    }
    pc->base_url = yr_pstrndup(p->cfg->pool, def, strlen(def));
    return pc->base_url != NULL ? 0 : fail_oom(p);
}

static int parse_providers(parse_t *p, yaml_node_t *v, size_t key_line)
{
    yr_config_t *cfg = p->cfg;
    (void)key_line; /* an empty section is fine */
    if (is_null(v))
        return 0;
    if (v->type != YAML_MAPPING_NODE)
        return fail_type(p, v, "a mapping of provider name to settings");
    yaml_node_pair_t *start = v->data.mapping.pairs.start, *top = v->data.mapping.pairs.top;
    if (start == top)
        return 0;
    cfg->providers = palloc_array(cfg->pool, (size_t)(top - start), sizeof(*cfg->providers));
    if (cfg->providers == NULL)
        return fail_oom(p);
    for (yaml_node_pair_t *pr = start; pr < top; pr++) {
        yaml_node_t *k = node_at(p, pr->key);
        if (k->type != YAML_SCALAR_NODE)
            return fail_type(p, k, "a provider name");
        yr_str_t name = {(const char *)k->data.scalar.value, k->data.scalar.length};
        size_t saved = path_push(p, name.ptr, name.len);
        int rc = 0;
        if (!is_vendor_name(name))
            rc = fail(p, line_of(k),
                      "invalid provider name (expected 1 to %d characters of "
                      "a-z, 0-9, '_' and '-')",
                      CFG_MAX_NAME);
        for (yaml_node_pair_t *q = start; rc == 0 && q < pr; q++) {
            yaml_node_t *prev = node_at(p, q->key);
            if (yr_str_eq(name, (yr_str_t){(const char *)prev->data.scalar.value,
                                           prev->data.scalar.length}))
                rc = fail(p, line_of(k), "duplicate provider (first at line %zu)", line_of(prev));
        }
        yr_provider_conf_t *pc = &cfg->providers[cfg->nproviders];
        if (rc == 0) {
            pc->index = cfg->nproviders;
            pc->name = yr_pstrndup(cfg->pool, name.ptr, name.len);
            rc = pc->name != NULL ? parse_provider(p, node_at(p, pr->value), line_of(k), pc)
                                  : fail_oom(p);
        }
        path_pop(p, saved);
        if (rc < 0)
            return rc;
        cfg->nproviders++;
    }
    return 0;
}

static const char *const strategy_names[] = {"priority", "weighted", "least-latency", "least-busy",
                                             NULL};

static int parse_strategy(parse_t *p, yaml_node_t *v, yr_model_conf_t *m)
{
    size_t saved = path_push(p, "strategy", 8);
    scalar_t s;
    int rc = get_scalar(p, v, false, &s);
    if (rc == 0) {
        rc = -EINVAL;
        for (size_t i = 0; strategy_names[i] != NULL; i++) {
            if (strcmp(s.s, strategy_names[i]) == 0) {
                m->strategy = (yr_strategy_t)i;
                rc = 0;
            }
        }
        if (rc < 0)
            rc = fail(p, s.line,
                      "unknown strategy%s: one of priority, weighted, least-latency, least-busy",
                      shown(p, &s));
    }
    path_pop(p, saved);
    return rc;
}

static const struct {
    const char *name;
    uint32_t bit;
} retry_conds[] = {
    {"429", YR_RETRY_429},         {"500", YR_RETRY_500},
    {"502", YR_RETRY_502},         {"503", YR_RETRY_503},
    {"504", YR_RETRY_504},         {"529", YR_RETRY_529},
    {"5xx", YR_RETRY_OTHER_5XX},   {"connect", YR_RETRY_CONNECT},
    {"reset", YR_RETRY_RESET},     {"timeout", YR_RETRY_TIMEOUT},
    {"bad_response", YR_RETRY_BAD_RESPONSE},
};

/* retry_on: [429, 503, connect, ...]; an empty list retries nothing. */
static int parse_retry_on(parse_t *p, yaml_node_t *v, yr_model_conf_t *m)
{
    size_t saved = path_push(p, "retry_on", 8);
    int rc = 0;
    m->retry_on = 0;
    if (v->type != YAML_SEQUENCE_NODE) {
        rc = fail_type(p, v, "a sequence of conditions");
        goto out;
    }
    size_t i = 0;
    for (yaml_node_item_t *it = v->data.sequence.items.start;
         rc == 0 && it < v->data.sequence.items.top; it++, i++) {
        size_t inner = path_push_index(p, i);
        scalar_t s;
        rc = get_scalar(p, node_at(p, *it), false, &s);
        if (rc == 0) {
            uint32_t bit = 0;
            for (size_t k = 0; k < sizeof(retry_conds) / sizeof(retry_conds[0]); k++)
                if (strcmp(s.s, retry_conds[k].name) == 0)
                    bit = retry_conds[k].bit;
            if (bit == 0)
                rc = fail(p, s.line,
                          "unknown retry condition%s: one of 429, 500, 502, 503, 504, 529, 5xx, "
                          "connect, reset, timeout, bad_response",
                          shown(p, &s));
            m->retry_on |= bit;
        }
        path_pop(p, inner);
    }
out:
    path_pop(p, saved);
    return rc;
}

/* price: {input, output, cache_read, cache_write} in USD per million
 * tokens (routes[].price, providers.NAME.models.ID.price); input and output
 * required, the cache prices default to the input price. dst: the four
 * prices in that order, in micro-USD per million. */
static int parse_price(parse_t *p, yaml_node_t *v, int64_t *const dst[4], bool *has_price)
{
    static const char *const keys[] = {"input", "output", "cache_read", "cache_write"};
    size_t saved = path_push(p, "price", 5);
    int rc = 0;
    bool seen[4] = {false};
    if (v->type != YAML_MAPPING_NODE) {
        rc = fail_type(p, v, "a mapping with input, output, cache_read, cache_write");
        goto out;
    }
    for (yaml_node_pair_t *pr = v->data.mapping.pairs.start; rc == 0 && pr < v->data.mapping.pairs.top;
         pr++) {
        scalar_t k, val;
        rc = get_scalar(p, node_at(p, pr->key), false, &k);
        size_t i = 0;
        while (rc == 0 && i < 4 && strcmp(k.s, keys[i]) != 0)
            i++;
        if (rc == 0 && i == 4)
            rc = fail(p, k.line, "unknown key%s (expected one of input, output, cache_read, "
                                 "cache_write)",
                      shown(p, &k));
        if (rc == 0) {
            size_t inner = path_push(p, keys[i], strlen(keys[i]));
            rc = get_scalar(p, node_at(p, pr->value), false, &val);
            int64_t micros = rc == 0 ? yr_price_parse(val.s) : -1;
            if (rc == 0 && micros < 0)
                rc = fail(p, val.line, "must be USD per million tokens, such as 2.50");
            if (rc == 0) {
                *dst[i] = micros;
                seen[i] = true;
            }
            path_pop(p, inner);
        }
    }
    if (rc == 0 && (!seen[0] || !seen[1]))
        rc = fail(p, line_of(v), "input and output are required");
    if (rc == 0) {
        *has_price = true;
        if (!seen[2])
            *dst[2] = *dst[0];
        if (!seen[3])
            *dst[3] = *dst[0];
    }
out:
    path_pop(p, saved);
    return rc;
}

static int parse_route(parse_t *p, yaml_node_t *v, yr_model_conf_t *m, yr_route_conf_t *r)
{
    yaml_node_t *custom[NROWS(route_rows)] = {0};
    if (v->type != YAML_MAPPING_NODE)
        return fail_type(p, v, "a mapping with provider and model");
    if (apply_defaults(p->cfg->pool, route_rows, NROWS(route_rows), r) < 0)
        return fail_oom(p);
    int rc = parse_table(p, v, line_of(v), route_rows, NROWS(route_rows), r, custom);
    if (rc < 0)
        return rc;

    scalar_t name;
    size_t saved = path_push(p, "provider", 8);
    rc = get_scalar(p, custom[ROUTE_PROVIDER], false, &name);
    if (rc == 0) {
        r->provider = yr_config_provider(p->cfg, (yr_str_t){name.s, name.len});
        if (r->provider == NULL)
            rc = name.hidden ? fail(p, name.line, "no provider by that name")
                             : fail(p, name.line, "no provider named%s", shown(p, &name));
    }
    path_pop(p, saved);
    if (rc < 0)
        return rc;
    if (r->model == NULL)
        r->model = m->id;
    int64_t *const prices[4] = {&r->price_input, &r->price_output, &r->price_cache_read,
                                &r->price_cache_write};
    if (custom[ROUTE_PRICE] != NULL &&
        (rc = parse_price(p, custom[ROUTE_PRICE], prices, &r->has_price)) < 0)
        return rc;
    bool own_key = r->api_key != NULL;
    for (size_t j = 0; r != &m->routes[j]; j++) {
        const yr_route_conf_t *o = &m->routes[j];
        const char *ka = yr_route_key(o), *kb = yr_route_key(r);
        bool same_key = (ka == NULL && kb == NULL) || (ka != NULL && kb != NULL && strcmp(ka, kb) == 0);
        if (o->provider == r->provider && strcmp(o->model, r->model) == 0 && same_key)
            return fail(p, line_of(v),
                        own_key ? "duplicate route: same provider, model and key as routes[%zu]"
                                : "duplicate route: same provider and model as routes[%zu]",
                        j);
    }
    return 0;
}

static int parse_routes(parse_t *p, yaml_node_t *v, yr_model_conf_t *m)
{
    size_t saved = path_push(p, "routes", 6);
    int rc = 0;
    if (v->type != YAML_SEQUENCE_NODE)
        rc = fail_type(p, v, "a sequence of routes");
    else if (v->data.sequence.items.start == v->data.sequence.items.top)
        rc = fail(p, line_of(v), "must list at least one route");
    if (rc < 0) {
        path_pop(p, saved);
        return rc;
    }
    yaml_node_item_t *start = v->data.sequence.items.start, *top = v->data.sequence.items.top;
    m->routes = palloc_array(p->cfg->pool, (size_t)(top - start), sizeof(*m->routes));
    if (m->routes == NULL)
        rc = fail_oom(p);
    for (yaml_node_item_t *it = start; rc == 0 && it < top; it++) {
        size_t inner = path_push_index(p, m->nroutes);
        rc = parse_route(p, node_at(p, *it), m, &m->routes[m->nroutes]);
        path_pop(p, inner);
        if (rc == 0)
            m->nroutes++;
    }
    path_pop(p, saved);
    return rc;
}

static int parse_model(parse_t *p, yaml_node_t *v, yr_model_conf_t *m, size_t *id_lines)
{
    yaml_node_t *custom[NROWS(model_rows)] = {0};
    if (v->type != YAML_MAPPING_NODE)
        return fail_type(p, v, "a mapping with id and routes");
    if (apply_defaults(p->cfg->pool, model_rows, NROWS(model_rows), m) < 0)
        return fail_oom(p);
    int rc = parse_table(p, v, line_of(v), model_rows, NROWS(model_rows), m, custom);
    if (rc < 0)
        return rc;
    yr_model_conf_t *models = p->cfg->models;
    for (size_t j = 0; j < m->index; j++) {
        if (strcmp(models[j].id, m->id) == 0) {
            size_t saved = path_push(p, "id", 2);
            rc = fail(p, id_lines[m->index], "duplicate model id (first defined at line %zu)",
                      id_lines[j]);
            path_pop(p, saved);
            return rc;
        }
    }
    m->retry_on = YR_RETRY_DEFAULT;
    if (custom[MODEL_STRATEGY] != NULL && (rc = parse_strategy(p, custom[MODEL_STRATEGY], m)) < 0)
        return rc;
    if (custom[MODEL_RETRY_ON] != NULL && (rc = parse_retry_on(p, custom[MODEL_RETRY_ON], m)) < 0)
        return rc;
    return parse_routes(p, custom[MODEL_ROUTES], m);
}

/* The line of the value of key in mapping v (v is known to be a mapping). */
static size_t value_line(parse_t *p, yaml_node_t *v, const char *key)
{
    for (yaml_node_pair_t *pr = v->data.mapping.pairs.start; pr < v->data.mapping.pairs.top; pr++) {
        yaml_node_t *k = node_at(p, pr->key);
        if (k->type == YAML_SCALAR_NODE &&
            yr_str_eq(yr_str(key),
                      (yr_str_t){(const char *)k->data.scalar.value, k->data.scalar.length}))
            return line_of(node_at(p, pr->value));
    }
    return line_of(v);
}

static int parse_models(parse_t *p, yaml_node_t *v, size_t key_line)
{
    yr_config_t *cfg = p->cfg;
    (void)key_line; /* an empty section is fine */
    if (is_null(v))
        return 0;
    if (v->type != YAML_SEQUENCE_NODE)
        return fail_type(p, v, "a sequence of models");
    yaml_node_item_t *start = v->data.sequence.items.start, *top = v->data.sequence.items.top;
    if (start == top)
        return 0;
    size_t n = (size_t)(top - start);
    cfg->models = palloc_array(cfg->pool, n, sizeof(*cfg->models));
    size_t *id_lines = palloc_array(cfg->pool, n, sizeof(*id_lines));
    if (cfg->models == NULL || id_lines == NULL)
        return fail_oom(p);
    for (yaml_node_item_t *it = start; it < top; it++) {
        yaml_node_t *item = node_at(p, *it);
        yr_model_conf_t *m = &cfg->models[cfg->nmodels];
        m->index = cfg->nmodels;
        if (item->type == YAML_MAPPING_NODE)
            id_lines[m->index] = value_line(p, item, "id");
        size_t saved = path_push_index(p, m->index);
        int rc = parse_model(p, item, m, id_lines);
        path_pop(p, saved);
        if (rc < 0)
            return rc;
        cfg->nmodels++;
    }
    return 0;
}

typedef int (*section_fn)(parse_t *p, yaml_node_t *value, size_t key_line);

/* In this order: routes refer to providers, whatever the file's order. */
static const struct {
    const char *name;
    section_fn parse;
} sections[] = {
    {"server", parse_server},
    {"storage", parse_storage},
    {"images", parse_images},
    {"responses", parse_responses},
    {"observability", parse_observability},
    {"providers", parse_providers},
    {"models", parse_models},
};
#define NSECTIONS (sizeof(sections) / sizeof(sections[0]))

static int parse_root(parse_t *p, yaml_node_t *root)
{
    if (root == NULL || is_null(root))
        return 0;
    if (root->type != YAML_MAPPING_NODE)
        return fail_type(p, root, "a mapping with server, storage, providers and models");
    const char *names[NSECTIONS];
    yaml_node_t *keys[NSECTIONS] = {0}, *vals[NSECTIONS] = {0};
    for (size_t i = 0; i < NSECTIONS; i++)
        names[i] = sections[i].name;
    int rc = map_collect(p, root, names, NSECTIONS, keys, vals);
    for (size_t i = 0; rc == 0 && i < NSECTIONS; i++) {
        if (vals[i] == NULL)
            continue;
        size_t saved = path_push(p, names[i], strlen(names[i]));
        rc = sections[i].parse(p, vals[i], line_of(keys[i]));
        path_pop(p, saved);
    }
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Public API                                                                 */

static yr_config_t *config_new(const char *path)
{
    yr_pool_t *pool = yr_pool_create(CFG_POOL_BLOCK);
    if (pool == NULL)
        return NULL;
    yr_config_t *cfg = yr_pcalloc(pool, sizeof(*cfg));
    if (cfg == NULL)
        goto fail;
    cfg->pool = pool;
    cfg->path = yr_pstrndup(pool, path, strlen(path));
    if (cfg->path == NULL || apply_defaults(pool, server_rows, NROWS(server_rows), cfg) < 0 ||
        apply_defaults(pool, storage_rows, NROWS(storage_rows), cfg) < 0 ||
        apply_defaults(pool, images_rows, NROWS(images_rows), cfg) < 0 ||
        apply_defaults(pool, responses_rows, NROWS(responses_rows), cfg) < 0 ||
        apply_defaults(pool, observability_rows, NROWS(observability_rows), cfg) < 0)
        goto fail;
    return cfg;
fail:
    yr_pool_destroy(pool);
    return NULL;
}

void yr_config_free(yr_config_t *cfg)
{
    if (cfg != NULL)
        yr_pool_destroy(cfg->pool); /* cfg itself lives in the pool */
}

static int fail_syntax(parse_t *p, const yaml_parser_t *parser, const char *yaml, size_t len)
{
    if (parser->error == YAML_MEMORY_ERROR)
        return fail_oom(p);
    size_t line = parser->problem_mark.line + 1;
    if (parser->error == YAML_READER_ERROR) {
        /* The reader reports a byte offset, not a mark. */
        line = 1;
        for (size_t i = 0; i < parser->problem_offset && i < len; i++)
            line += yaml[i] == '\n';
    }
    const char *problem = parser->problem != NULL ? parser->problem : "invalid YAML";
    if (p->err == NULL || p->errlen == 0)
        return -EINVAL;
    if (parser->context != NULL)
        snprintf(p->err, p->errlen, "%s:%zu: syntax error: %s (%s at line %zu)", p->name, line,
                 problem, parser->context, parser->context_mark.line + 1);
    else
        snprintf(p->err, p->errlen, "%s:%zu: syntax error: %s", p->name, line, problem);
    return -EINVAL;
}

int yr_config_load_string(const char *name, const char *yaml, size_t len, yr_config_t **out,
                          char *err, size_t errlen)
{
    parse_t p = {.name = name != NULL ? name : "(string)", .err = err, .errlen = errlen};
    yaml_parser_t parser;
    yaml_document_t doc, next;
    bool have_doc = false;
    int rc = 0;

    *out = NULL;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (yaml == NULL)
        yaml = "";
    p.cfg = config_new(p.name);
    if (p.cfg == NULL)
        return fail_oom(&p);
    if (!yaml_parser_initialize(&parser)) {
        yr_config_free(p.cfg);
        return fail_oom(&p);
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    if (!yaml_parser_load(&parser, &doc)) {
        rc = fail_syntax(&p, &parser, yaml, len);
        goto out;
    }
    have_doc = true;
    p.doc = &doc;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root != NULL) {
        /* A second document would be silently ignored: refuse it. */
        if (!yaml_parser_load(&parser, &next)) {
            rc = fail_syntax(&p, &parser, yaml, len);
            goto out;
        }
        yaml_node_t *extra = yaml_document_get_root_node(&next);
        size_t extra_line = extra != NULL ? line_of(extra) : 0;
        yaml_document_delete(&next);
        if (extra != NULL) {
            rc = fail(&p, extra_line, "a config file holds one YAML document, found a second");
            goto out;
        }
    }
    rc = parse_root(&p, root);
out:
    if (have_doc)
        yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (rc < 0)
        yr_config_free(p.cfg);
    else
        *out = p.cfg;
    return rc;
}

int yr_config_load(const char *path, yr_config_t **out, char *err, size_t errlen)
{
    yr_buf_t b;
    char chunk[16384];
    int rc = 0;

    *out = NULL;
    yr_buf_init(&b, CFG_MAX_FILE);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        rc = -errno;
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return rc;
    }
    for (;;) {
        size_t n = fread(chunk, 1, sizeof(chunk), f);
        if (n > 0 && (rc = yr_buf_append(&b, chunk, n)) < 0) {
            snprintf(err, errlen, "%s: %s", path,
                     rc == -E2BIG ? "file is larger than 4 MiB" : "out of memory");
            goto out;
        }
        if (n < sizeof(chunk)) {
            if (ferror(f)) {
                rc = -EIO;
                snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
                goto out;
            }
            break;
        }
    }
    rc = yr_config_load_string(path, b.data != NULL ? b.data : "", b.len, out, err, errlen);
out:
    fclose(f);
    yr_buf_free(&b);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Zero-config defaults (SPEC §5)                                             */

static const struct {
    const char *name;
    yr_provider_kind_t kind;
    const char *key_env;
    const char *url_env;
} builtin_vendors[] = {
    {"openai", YR_KIND_OPENAI, "OPENAI_API_KEY", "OPENAI_BASE_URL"},
    {"anthropic", YR_KIND_ANTHROPIC, "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"},
    {"google", YR_KIND_GEMINI, "GEMINI_API_KEY", "GEMINI_BASE_URL"},
};
#define NVENDORS (sizeof(builtin_vendors) / sizeof(builtin_vendors[0]))

/* The models served when there is no config file; each routes to the vendor
 * of the same name with the id as the upstream model. */
static const struct {
    const char *id;
    const char *vendor;
} builtin_models[] = {
    {"gpt-4o", "openai"},
    {"gpt-4o-mini", "openai"},
    {"gpt-4.1", "openai"},
    {"gpt-4.1-mini", "openai"},
    {"gpt-4.1-nano", "openai"},
    {"o3", "openai"},
    {"o3-mini", "openai"},
    {"o4-mini", "openai"},
    {"claude-sonnet-4-20250514", "anthropic"},
    {"claude-opus-4-20250514", "anthropic"},
    {"claude-3-7-sonnet-latest", "anthropic"},
    {"claude-3-5-haiku-latest", "anthropic"},
    {"gemini-2.5-pro", "google"},
    {"gemini-2.5-flash", "google"},
    {"gemini-2.0-flash", "google"},
};
#define NBUILTIN_MODELS (sizeof(builtin_models) / sizeof(builtin_models[0]))

/* The environment variable's value, or NULL when unset or empty. */
static const char *env_value(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

/* Validates and copies the value of variable var; never quotes the value. */
static int env_setting(parse_t *p, const char *var, check_fn check, const char **dst)
{
    const char *v = env_value(var);
    if (v == NULL)
        return 0;
    yr_str_t s = yr_str(v);
    const char *why = "invalid value";
    if (s.len > CFG_MAX_VALUE || check(&s, &why) < 0) {
        snprintf(p->err, p->errlen, "(environment): %s: %s", var,
                 s.len > CFG_MAX_VALUE ? "too long" : why);
        return -EINVAL;
    }
    *dst = yr_pstrndup(p->cfg->pool, s.ptr, s.len);
    return *dst != NULL ? 0 : fail_oom(p);
}

/* One provider of the zero-config default, with the rows' defaults. */
static yr_provider_conf_t *default_provider(parse_t *p, const char *name, yr_provider_kind_t kind,
                                            const char *base_url)
{
    yr_config_t *cfg = p->cfg;
    yr_provider_conf_t *pc = &cfg->providers[cfg->nproviders];
    if (apply_defaults(cfg->pool, provider_rows, NROWS(provider_rows), pc) < 0)
        return NULL;
    pc->index = cfg->nproviders;
    pc->kind = kind;
    pc->name = yr_pstrndup(cfg->pool, name, strlen(name));
    pc->base_url = yr_pstrndup(cfg->pool, base_url, strlen(base_url));
    return pc->name != NULL && pc->base_url != NULL ? pc : NULL;
}

static int default_providers(parse_t *p)
{
    yr_config_t *cfg = p->cfg;
    cfg->providers =
        palloc_array(cfg->pool, NVENDORS + yr_catalog_npresets(), sizeof(*cfg->providers));
    if (cfg->providers == NULL)
        return fail_oom(p);
    for (size_t i = 0; i < NVENDORS; i++) {
        if (env_value(builtin_vendors[i].key_env) == NULL &&
            env_value(builtin_vendors[i].url_env) == NULL)
            continue;
        yr_provider_kind_t kind = builtin_vendors[i].kind;
        yr_provider_conf_t *pc = default_provider(p, builtin_vendors[i].name, kind,
                                                  kind_base_urls[kind]);
        if (pc == NULL)
            return fail_oom(p);
        int rc = env_setting(p, builtin_vendors[i].key_env, check_token, &pc->api_key);
        if (rc == 0)
            rc = env_setting(p, builtin_vendors[i].url_env, check_http_url, &pc->base_url);
        if (rc < 0)
            return rc;
        cfg->nproviders++;
    }
    /* The catalog's other hosted providers, each when its key is set
     * (GROQ_API_KEY, ...): named like the preset. OpenAI is above. */
    for (size_t i = 0; i < yr_catalog_npresets(); i++) {
        const yr_catalog_preset_t *ps = yr_catalog_preset_at(i);
        if (ps->key_env == NULL || yr_config_provider(cfg, yr_str(ps->name)) != NULL ||
            env_value(ps->key_env) == NULL)
            continue;
        yr_provider_conf_t *pc = default_provider(p, ps->name, YR_KIND_OPENAI, ps->base_url);
        if (pc == NULL)
            return fail_oom(p);
        pc->preset = ps;
        int rc = env_setting(p, ps->key_env, check_token, &pc->api_key);
        if (rc < 0)
            return rc;
        cfg->nproviders++;
    }
    return 0;
}

/* A model of the zero-config default with room for nroutes routes. */
static yr_model_conf_t *default_model(parse_t *p, const char *id, size_t nroutes)
{
    yr_config_t *cfg = p->cfg;
    yr_model_conf_t *m = &cfg->models[cfg->nmodels];
    if (apply_defaults(cfg->pool, model_rows, NROWS(model_rows), m) < 0)
        return NULL;
    m->index = cfg->nmodels;
    m->id = yr_pstrndup(cfg->pool, id, strlen(id));
    m->routes = palloc_array(cfg->pool, nroutes, sizeof(*m->routes));
    m->retry_on = YR_RETRY_DEFAULT;
    if (m->id == NULL || m->routes == NULL)
        return NULL;
    cfg->nmodels++;
    return m;
}

/* A route of m to pc, the model id as the upstream name. */
static int default_route(parse_t *p, yr_model_conf_t *m, const yr_provider_conf_t *pc)
{
    yr_route_conf_t *r = &m->routes[m->nroutes];
    if (apply_defaults(p->cfg->pool, route_rows, NROWS(route_rows), r) < 0)
        return -ENOMEM;
    r->provider = pc;
    r->model = m->id;
    m->nroutes++;
    return 0;
}

static int default_models(parse_t *p)
{
    yr_config_t *cfg = p->cfg;
    size_t cap = NBUILTIN_MODELS, npreset = 0;
    for (size_t i = 0; i < cfg->nproviders; i++) {
        if (cfg->providers[i].preset != NULL) {
            cap += cfg->providers[i].preset->nmodels;
            npreset++;
        }
    }
    cfg->models = palloc_array(cfg->pool, cap, sizeof(*cfg->models));
    if (cfg->models == NULL)
        return fail_oom(p);
    for (size_t i = 0; i < NBUILTIN_MODELS; i++) {
        const yr_provider_conf_t *pc = yr_config_provider(cfg, yr_str(builtin_models[i].vendor));
        if (pc == NULL)
            continue;
        yr_model_conf_t *m = default_model(p, builtin_models[i].id, 1);
        if (m == NULL || default_route(p, m, pc) < 0)
            return fail_oom(p);
    }
    /* Every model of a preset provider, by its id; a model several of them
     * serve gets a route to each, in the catalog's order. */
    size_t first_preset_model = cfg->nmodels;
    for (size_t i = 0; i < cfg->nproviders; i++) {
        const yr_provider_conf_t *pc = &cfg->providers[i];
        for (size_t k = 0; pc->preset != NULL && k < pc->preset->nmodels; k++) {
            const char *id = pc->preset->models[k].id;
            yr_model_conf_t *m = (yr_model_conf_t *)yr_config_model(cfg, yr_str(id));
            if (m != NULL && m->index < first_preset_model)
                continue; /* a built-in model keeps its vendor */
            if (m == NULL && (m = default_model(p, id, npreset)) == NULL)
                return fail_oom(p);
            if (default_route(p, m, pc) < 0)
                return fail_oom(p);
        }
    }
    return 0;
}

int yr_config_default(yr_config_t **out, char *err, size_t errlen)
{
    char scratch[1];
    parse_t p = {.name = "(defaults)",
                 .err = errlen > 0 ? err : scratch,
                 .errlen = errlen > 0 ? errlen : sizeof(scratch)};
    int rc;

    *out = NULL;
    p.err[0] = '\0';
    p.cfg = config_new(p.name);
    if (p.cfg == NULL)
        return fail_oom(&p);

    const char *listen = env_value("YOUROUTER_LISTEN");
    if (listen != NULL) {
        const char *why = "invalid";
        rc = parse_listen(p.cfg->pool, yr_str(listen), &p.cfg->server.listen_host,
                          &p.cfg->server.listen_port, &why);
        if (rc < 0) {
            snprintf(p.err, p.errlen, "(environment): YOUROUTER_LISTEN: invalid listen address: %s",
                     why);
            goto out;
        }
    }
    if ((rc = env_setting(&p, "YOUROUTER_MASTER_KEY", check_token, &p.cfg->server.master_key)) <
            0 ||
        (rc = env_setting(&p, "YOUROUTER_DB_URL", check_storage_url, &p.cfg->storage.url)) < 0 ||
        (rc = default_providers(&p)) < 0 || (rc = default_models(&p)) < 0)
        goto out;
out:
    if (rc < 0)
        yr_config_free(p.cfg);
    else
        *out = p.cfg;
    return rc;
}

const yr_model_conf_t *yr_config_model(const yr_config_t *cfg, yr_str_t id)
{
    for (size_t i = 0; i < cfg->nmodels; i++)
        if (yr_str_eq(yr_str(cfg->models[i].id), id))
            return &cfg->models[i];
    return NULL;
}

const yr_provider_conf_t *yr_config_provider(const yr_config_t *cfg, yr_str_t name)
{
    for (size_t i = 0; i < cfg->nproviders; i++)
        if (yr_str_eq(yr_str(cfg->providers[i].name), name))
            return &cfg->providers[i];
    return NULL;
}

const char *yr_strategy_name(yr_strategy_t s)
{
    return (unsigned)s < sizeof(strategy_names) / sizeof(strategy_names[0]) - 1
               ? strategy_names[s]
               : "unknown";
}

const char *yr_provider_kind_name(yr_provider_kind_t kind)
{
    return (unsigned)kind < YR_KIND__COUNT ? kind_names[kind] : "unknown";
}

/* Replaces every occurrence of secret in s (NUL-terminated, cap bytes) with
 * "[redacted]", cutting the tail when the text would outgrow cap. */
static void redact_one(char *s, size_t cap, const char *secret)
{
    static const char mark[] = "[redacted]";
    const size_t mlen = sizeof(mark) - 1;
    size_t slen = secret != NULL ? strlen(secret) : 0;
    if (slen < YR_REDACT_MIN_LEN)
        return; /* too short to tell from ordinary text */
    char *p = s;
    while ((p = strstr(p, secret)) != NULL) {
        size_t off = (size_t)(p - s);
        size_t tail = strlen(p + slen);
        if (off + mlen >= cap) { /* not even the mark fits: cut here */
            s[off] = '\0';
            return;
        }
        if (off + mlen + tail >= cap)
            tail = cap - 1 - off - mlen;
        memmove(p + mlen, p + slen, tail);
        memcpy(p, mark, mlen);
        p[mlen + tail] = '\0';
        p += mlen;
    }
}

void yr_config_redact(const yr_config_t *cfg, char *s, size_t cap)
{
    if (cfg == NULL || s == NULL || cap == 0)
        return;
    redact_one(s, cap, cfg->server.master_key);
    redact_one(s, cap, cfg->responses.secret);
    for (size_t i = 0; i < cfg->nproviders; i++) {
        redact_one(s, cap, cfg->providers[i].api_key);
        redact_one(s, cap, cfg->providers[i].aws_secret_access_key);
        redact_one(s, cap, cfg->providers[i].aws_session_token);
    }
    for (size_t i = 0; i < cfg->nmodels; i++)
        for (size_t j = 0; j < cfg->models[i].nroutes; j++)
            redact_one(s, cap, cfg->models[i].routes[j].api_key);
}
